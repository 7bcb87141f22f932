/*
 * dbz_relay.c -- zdm_dbz_relay: a stand-in for Debezium's PostgreSQL
 * connector and a Kafka broker, for apply_debezium.sh.  A test tool.
 *
 *   zdm_dbz_relay [-d CONNINFO] -s SLOT -p PUBLICATION -o FILE
 *                 [-x PREFIX] [-k PARTITIONS] [-S] [-r SCHEMA.TABLE]
 *                 [-w MS]
 *
 *   -d CONNINFO    the database (default: the environment, as zdm's)
 *   -s SLOT        an existing logical slot using pgoutput: the relay's own,
 *                  never the migration's
 *   -p PUBLICATION an existing publication of the tables to relay
 *   -o FILE        where to write the mock cluster's bootstrap servers
 *                  (written whole: temp file, then rename)
 *   -x PREFIX      topic.prefix: table T of schema S goes to PREFIX.S.T
 *                  (default dbz)
 *   -k PARTITIONS  partitions of each topic (default 1)
 *   -S             the JsonConverter with schemas.enable=true: each key
 *                  and value is {"schema": ..., "payload": ...}; without
 *                  -S the bare key and envelope
 *   -r S.T         first a snapshot of table S.T: one op "r" event a row
 *   -w MS          hold each batch MS ms before producing it: a connector
 *                  that lags the database, as a loaded one does
 *
 * What it does.  It starts librdkafka's mock cluster in this process (one
 * broker, the real protocol on a loopback port, so zdm sync in another
 * process consumes over TCP), creates a topic per published table, then
 * reads the slot through zdm's own pgoutput source (runtime/cdc_pgoutput.h)
 * and produces every change of every writer (zdm sync's own included: like
 * Debezium it cannot tell them apart) as the change event the Debezium
 * PostgreSQL connector would produce:
 *
 *   key    the primary key columns, {"id": 5}; none (null) for a table
 *          without one and for a truncate
 *   value  {"before", "after", "source": {version, connector, name, ts_ms,
 *          snapshot, db, sequence, schema, table, txId, lsn, xmin}, "op",
 *          "ts_ms", "transaction": null}
 *
 * op c (INSERT), u (UPDATE), d (DELETE, then a tombstone: same key, null
 * value), t (TRUNCATE), r (snapshot rows).  An UPDATE that changes the
 * primary key is, as Debezium sends it, a delete of the old key (with a
 * header __debezium.newkey), its tombstone, and a create of the new one
 * (header __debezium.oldkey; each header holds the other key, serialized
 * like a key).  before is pgoutput's old tuple (the whole row with REPLICA
 * IDENTITY FULL, else null for an update); a delete's before has the
 * table's other columns null when only the key was sent, as Debezium's
 * does.  source.txId is the transaction id from
 * pgoutput's Begin (zdm_cdc_change.xid), which is what lets zdm sync skip
 * its own writes.  An unchanged TOASTed value is Debezium's placeholder
 * "__debezium_unavailable_value".  Messages are keyed and partitioned with
 * murmur2 as Kafka's Java producer does, so a row's events stay in order in
 * one partition; batches are lz4-compressed (the mock keeps only 5 MB a
 * partition, counted compressed).
 *
 * Values follow the connector's settings zdm documents
 * (decimal.handling.mode=string, time.precision.mode=adaptive): integers
 * and booleans as JSON numbers and booleans, float4/float8 as numbers,
 * numeric as a string, timestamptz as io.debezium.time.ZonedTimestamp
 * (ISO 8601, "2024-01-01T00:00:00Z"); every other type as PostgreSQL's
 * text in a string.  That last part is NOT what Debezium does for date,
 * time, timestamp, interval, bytea, bit or arrays: the relay is good for
 * tables of the types above and text.  Types come from the catalog, read
 * again when a change names a column the relay has not seen or the
 * relation's column count changes; the catalog is today's, not the one at
 * the change, so right after a DDL a value may be typed as its new column
 * (a value that does not parse as its type is sent as a string).
 *
 * Delivery: after each batch from the slot (whole transactions) it waits
 * until every message is delivered, then acknowledges the batch on the slot;
 * a relay that dies sends the unacknowledged transactions again, as
 * Debezium does after a crash.  So, as with Debezium, the slot's
 * confirmed_flush_lsn never passes a change that is not in Kafka.  A failed
 * delivery stops the relay (exit 1) without acknowledging.
 *
 * What it is not: Debezium.  No Kafka Connect, no schema history, no
 * heartbeat or transaction-metadata topics, no exported snapshot (-r reads
 * the table in a plain REPEATABLE READ transaction, so rows written between
 * the slot's creation and the snapshot come twice, harmless to an
 * idempotent consumer), source.lsn is the transaction's commit LSN (zdm's
 * source gives no per-change LSN), ts_ms is this host's clock when the
 * relay read the change.  It never writes to the user's tables and never
 * creates or drops the slot or the publication.
 *
 * Runs until SIGINT or SIGTERM, then delivers what it has, acknowledges it
 * and prints "dbz_relay: N transactions, C changes, M messages (T
 * tombstones), R snapshot rows" on stderr.  Exit 0, 1 on any error.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cdc_pgoutput.h"

#define RELAY_PLACEHOLDER "__debezium_unavailable_value"
#define RELAY_NEXT_MS 100
#define RELAY_MAX_HOLD_MS 10000
#define RELAY_FLUSH_MS 30000
#define RELAY_MAX_TABLES 64

/* pg_type oids of the types with a JSON form of their own */
#define RELAY_BOOLOID 16
#define RELAY_INT8OID 20
#define RELAY_INT2OID 21
#define RELAY_INT4OID 23
#define RELAY_FLOAT4OID 700
#define RELAY_FLOAT8OID 701
#define RELAY_TIMESTAMPTZOID 1184

static volatile sig_atomic_t relay_stop;

static void
relay_on_signal(int signo)
{
	(void)signo;
	relay_stop = 1;
}

typedef struct relay_col {
	char *name;
	uint32_t type;
	bool notnull;
	bool key; /* part of the primary key */
} relay_col;

/* A table as the catalog describes it now. */
typedef struct relay_table {
	char *schema;
	char *table;
	char *topic;
	relay_col *cols;
	size_t ncols;
	size_t nkey;
	size_t seen_ncols; /* of the last after image: a change means DDL */
} relay_table;

typedef struct relay {
	const char *prefix;
	int partitions;
	bool schemas;
	char dbname[128];
	PGconn *conn; /* catalog queries and the snapshot */
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	relay_table tables[RELAY_MAX_TABLES];
	size_t ntables;
	bool bad_value; /* a value jansson refused (not UTF-8) */
	/* delivery reports */
	uint64_t delivered, failed;
	char failure[256];
	/* what the summary says */
	uint64_t transactions, changes, messages, tombstones, snapshot_rows;
} relay;

static void relay_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
relay_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("dbz_relay: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t
relay_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
relay_strdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		relay_fail("out of memory");
		exit(1);
	}
	return p;
}

/* ---- the catalog ------------------------------------------------------- */

static void
relay_table_clear(relay_table *t)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		free(t->cols[i].name);
	free(t->cols);
	t->cols = NULL;
	t->ncols = 0;
	t->nkey = 0;
}

/* Today's columns of t, with their types and primary key. */
static int
relay_table_load(relay *r, relay_table *t)
{
	const char *params[2] = {t->schema, t->table};
	PGresult *res;
	int i, n;

	res = PQexecParams(
		r->conn,
		"SELECT a.attname, a.atttypid::pg_catalog.int8, a.attnotnull,"
		" coalesce(a.attnum = ANY (i.indkey::pg_catalog.int2[]), false)"
		" FROM pg_catalog.pg_attribute a"
		" JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" LEFT JOIN pg_catalog.pg_index i"
		"   ON i.indrelid = c.oid AND i.indisprimary"
		" WHERE n.nspname = $1 AND c.relname = $2"
		"   AND a.attnum > 0 AND NOT a.attisdropped"
		" ORDER BY a.attnum",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		relay_fail("reading the columns of %s.%s: %s", t->schema,
		           t->table, PQerrorMessage(r->conn));
		PQclear(res);
		return -1;
	}
	relay_table_clear(t);
	n = PQntuples(res);
	t->cols = calloc(n > 0 ? (size_t)n : 1, sizeof(*t->cols));
	if (t->cols == NULL) {
		PQclear(res);
		relay_fail("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		relay_col *c = &t->cols[i];

		c->name = relay_strdup(PQgetvalue(res, i, 0));
		c->type = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
		c->notnull = PQgetvalue(res, i, 2)[0] == 't';
		c->key = PQgetvalue(res, i, 3)[0] == 't';
		if (c->key)
			t->nkey++;
	}
	t->ncols = (size_t)n;
	PQclear(res);
	return 0;
}

static const relay_col *
relay_col_find(const relay_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return &t->cols[i];
	return NULL;
}

static relay_table *
relay_table_find(relay *r, const char *schema, const char *table)
{
	size_t i;

	for (i = 0; i < r->ntables; i++)
		if (strcmp(r->tables[i].schema, schema) == 0 &&
		    strcmp(r->tables[i].table, table) == 0)
			return &r->tables[i];
	return NULL;
}

/* Add a table and its topic (created in the mock cluster). */
static relay_table *
relay_table_add(relay *r, const char *schema, const char *table)
{
	relay_table *t;
	size_t len;
	rd_kafka_resp_err_t e;

	if (r->ntables == RELAY_MAX_TABLES) {
		relay_fail("more than %d tables", RELAY_MAX_TABLES);
		return NULL;
	}
	t = &r->tables[r->ntables];
	memset(t, 0, sizeof(*t));
	t->schema = relay_strdup(schema);
	t->table = relay_strdup(table);
	len = strlen(r->prefix) + strlen(schema) + strlen(table) + 3;
	t->topic = malloc(len);
	if (t->topic == NULL) {
		relay_fail("out of memory");
		return NULL;
	}
	snprintf(t->topic, len, "%s.%s.%s", r->prefix, schema, table);
	e = rd_kafka_mock_topic_create(r->mc, t->topic, r->partitions, 1);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		relay_fail("creating topic %s: %s", t->topic,
		           rd_kafka_err2str(e));
		return NULL;
	}
	if (relay_table_load(r, t) != 0)
		return NULL;
	r->ntables++;
	return t;
}

/*
 * The table of a change, its catalog entry read again when the change has a
 * column the entry lacks or the width of its after image changed (a DDL;
 * before images are left out of that: a delete carries only the key).
 */
static relay_table *
relay_table_for(relay *r, const zdm_cdc_change *c)
{
	relay_table *t = relay_table_find(r, c->schema, c->table);
	bool stale = false;
	size_t i;

	if (t == NULL)
		return relay_table_add(r, c->schema, c->table);
	if (c->nnew > 0) {
		stale = t->seen_ncols != 0 && c->nnew != t->seen_ncols;
		t->seen_ncols = c->nnew;
	}
	for (i = 0; i < c->nnew && !stale; i++)
		if (relay_col_find(t, c->new_cols[i].name) == NULL)
			stale = true;
	for (i = 0; i < c->nold && !stale; i++)
		if (relay_col_find(t, c->old_cols[i].name) == NULL)
			stale = true;
	if (stale && relay_table_load(r, t) != 0)
		return NULL;
	return t;
}

/* ---- values ------------------------------------------------------------ */

/* "2024-01-01 10:00:00.5+02" (datestyle ISO) as ISO 8601,
 * "2024-01-01T10:00:00.5+02:00"; "+00" becomes "Z" as Debezium writes UTC */
static json_t *
relay_zoned(const char *v)
{
	char buf[96];
	size_t len = strlen(v), i, o = 0;
	const char *sign;

	if (len < 20 || len >= sizeof(buf) - 8 || v[10] != ' ')
		return json_string(v); /* infinity, BC dates: as they are */
	sign = strpbrk(v + 19, "+-");
	if (sign == NULL)
		return json_string(v);
	for (i = 0; v + i < sign; i++)
		buf[o++] = i == 10 ? 'T' : v[i];
	if (strcmp(sign, "+00") == 0) {
		buf[o++] = 'Z';
	} else {
		size_t rest = strlen(sign);

		memcpy(buf + o, sign, rest);
		o += rest;
		if (rest == 3) { /* +HH */
			memcpy(buf + o, ":00", 3);
			o += 3;
		}
	}
	buf[o] = '\0';
	return json_string(buf);
}

/* A column's value as Debezium's JSON (see the opening comment). */
static json_t *
relay_value(const relay_col *col, const zdm_cdc_column *c)
{
	const char *v = c->value;
	char *end;

	if (c->unchanged_toast)
		return json_string(RELAY_PLACEHOLDER);
	if (v == NULL)
		return json_null();
	switch (col ? col->type : 0) {
	case RELAY_INT2OID:
	case RELAY_INT4OID:
	case RELAY_INT8OID: {
		long long i;

		errno = 0;
		i = strtoll(v, &end, 10);
		if (errno == 0 && end != v && *end == '\0')
			return json_integer(i);
		break;
	}
	case RELAY_BOOLOID:
		if (strcmp(v, "t") == 0)
			return json_true();
		if (strcmp(v, "f") == 0)
			return json_false();
		break;
	case RELAY_FLOAT4OID:
	case RELAY_FLOAT8OID: {
		double d = strtod(v, &end);

		if (end != v && *end == '\0' && isfinite(d))
			return json_real(d);
		break;
	}
	case RELAY_TIMESTAMPTZOID:
		return relay_zoned(v);
	default:
		break;
	}
	return json_string(v);
}

/* The Kafka Connect schema of a column (schemas.enable=true). */
static json_t *
relay_field_schema(const relay_col *col, const char *name, bool optional)
{
	const char *type = "string";
	json_t *f;

	switch (col ? col->type : 0) {
	case RELAY_INT2OID:
		type = "int16";
		break;
	case RELAY_INT4OID:
		type = "int32";
		break;
	case RELAY_INT8OID:
		type = "int64";
		break;
	case RELAY_BOOLOID:
		type = "boolean";
		break;
	case RELAY_FLOAT4OID:
		type = "float";
		break;
	case RELAY_FLOAT8OID:
		type = "double";
		break;
	default:
		break;
	}
	f = json_pack("{s:s, s:b}", "type", type, "optional", optional);
	if (col && col->type == RELAY_TIMESTAMPTZOID) {
		json_object_set_new(
			f, "name",
			json_string("io.debezium.time.ZonedTimestamp"));
		json_object_set_new(f, "version", json_integer(1));
	}
	json_object_set_new(f, "field", json_string(name));
	return f;
}

/*
 * A row image: the change's columns, in their order.  fill: also every
 * column of the table the change did not carry, as null (a delete's
 * before image with only the key sent).
 */
static json_t *
relay_row(relay *r, const relay_table *t, const zdm_cdc_column *cols, size_t n,
          bool fill)
{
	json_t *row = json_object();
	size_t i;

	if (fill) {
		for (i = 0; i < t->ncols; i++)
			json_object_set_new(row, t->cols[i].name, json_null());
	}
	for (i = 0; i < n; i++) {
		json_t *v =
			relay_value(relay_col_find(t, cols[i].name), &cols[i]);

		if (v == NULL) { /* not UTF-8: pgoutput's client_encoding
		                  * is UTF8, so this is a bug */
			r->bad_value = true;
			v = json_null();
		}
		json_object_set_new(row, cols[i].name, v);
	}
	return row;
}

/* The value schema of a row: one field per column of the row. */
static json_t *
relay_row_schema(const relay_table *t, const json_t *row, const char *field,
                 const char *prefix)
{
	json_t *fields = json_array(), *s;
	const char *name;
	json_t *v;
	char sname[512];

	json_object_foreach((json_t *)row, name, v)
	{
		const relay_col *c = relay_col_find(t, name);

		json_array_append_new(
			fields,
			relay_field_schema(c, name, !(c && c->notnull)));
	}
	snprintf(sname, sizeof(sname), "%s.%s.%s.Value", prefix, t->schema,
	         t->table);
	s = json_pack("{s:s, s:o, s:b, s:s}", "type", "struct", "fields",
	              fields, "optional", true, "name", sname);
	if (field != NULL)
		json_object_set_new(s, "field", json_string(field));
	return s;
}

/* The key: the primary key columns found in cols; NULL when none. */
static json_t *
relay_key(const relay_table *t, const zdm_cdc_column *cols, size_t n)
{
	json_t *key;
	size_t i;

	if (t->nkey == 0)
		return NULL;
	key = json_object();
	for (i = 0; i < n; i++) {
		const relay_col *c = relay_col_find(t, cols[i].name);

		if (c != NULL && c->key)
			json_object_set_new(key, cols[i].name,
			                    relay_value(c, &cols[i]));
	}
	if (json_object_size(key) == 0) {
		json_decref(key);
		return NULL;
	}
	return key;
}

/* ---- producing ---------------------------------------------------------- */

static void
relay_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	relay *r = opaque;

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		r->delivered++;
		return;
	}
	if (r->failed++ == 0)
		snprintf(r->failure, sizeof(r->failure), "%s",
		         rd_kafka_err2str(m->err));
}

/*
 * Serialize and send one message (nothing is freed); value NULL: a
 * tombstone.  header, when not NULL, is a header of that name whose value
 * is hkey serialized like a key.
 */
static int
relay_send(relay *r, const relay_table *t, const json_t *key,
           const json_t *value, const char *header, const json_t *hkey)
{
	char *k = NULL, *v = NULL, *h = NULL;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t e;
	int rc = -1;

	if (key != NULL &&
	    (k = json_dumps(key, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		goto done;
	if (value != NULL &&
	    (v = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		goto done;
	if (header != NULL && hkey != NULL) {
		h = json_dumps(hkey, JSON_COMPACT | JSON_ENCODE_ANY);
		if (h == NULL)
			goto done;
	}
	for (;;) {
		if (h != NULL) {
			/* producev takes the headers only when it succeeds */
			hdrs = rd_kafka_headers_new(1);
			rd_kafka_header_add(hdrs, header, -1, h, -1);
		}
		e = rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(t->topic),
		                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                      RD_KAFKA_V_KEY(k, k ? strlen(k) : 0),
		                      RD_KAFKA_V_VALUE(v, v ? strlen(v) : 0),
		                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			hdrs = NULL;
		if (hdrs != NULL) {
			rd_kafka_headers_destroy(hdrs);
			hdrs = NULL;
		}
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(r->rk, 100);
	}
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		relay_fail("producing to %s: %s", t->topic,
		           rd_kafka_err2str(e));
		goto done;
	}
	r->messages++;
	if (v == NULL)
		r->tombstones++;
	rc = 0;
done:
	if (rc != 0 && (k == NULL) != (key == NULL))
		relay_fail("cannot serialize a key");
	free(k);
	free(v);
	free(h);
	return rc;
}

/* With -S, {"schema": ..., "payload": ...}; the key's schema from its
 * fields. */
static json_t *
relay_wrap_key(const relay *r, const relay_table *t, json_t *key)
{
	json_t *fields, *v;
	const char *name;
	char sname[512];

	if (key == NULL || !r->schemas)
		return key;
	fields = json_array();
	json_object_foreach(key, name, v)
	{
		json_array_append_new(
			fields, relay_field_schema(relay_col_find(t, name),
		                                   name, false));
	}
	snprintf(sname, sizeof(sname), "%s.%s.%s.Key", r->prefix, t->schema,
	         t->table);
	return json_pack("{s:{s:s, s:o, s:b, s:s}, s:o}", "schema", "type",
	                 "struct", "fields", fields, "optional", false, "name",
	                 sname, "payload", key);
}

/* The envelope's schema: before, after, source, op, ts_ms, transaction. */
static json_t *
relay_envelope_schema(const relay *r, const relay_table *t, const json_t *row)
{
	char sname[512];
	json_t *value_schema =
		row ? relay_row_schema(t, row, NULL, r->prefix)
		    : json_pack("{s:s, s:[], s:b}", "type", "struct", "fields",
	                        "optional", true);
	json_t *before = json_deep_copy(value_schema);
	json_t *source;

	json_object_set_new(before, "field", json_string("before"));
	json_object_set_new(value_schema, "field", json_string("after"));
	source = json_pack(
		"{s:s, s:[{s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s},"
		" {s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s},"
		" {s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s},"
		" {s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s}],"
		" s:b, s:s, s:s}",
		"type", "struct", "fields", "type", "string", "optional", false,
		"field", "version", "type", "string", "optional", false,
		"field", "connector", "type", "string", "optional", false,
		"field", "name", "type", "int64", "optional", false, "field",
		"ts_ms", "type", "string", "optional", true, "field",
		"snapshot", "type", "string", "optional", false, "field", "db",
		"type", "string", "optional", true, "field", "sequence", "type",
		"string", "optional", false, "field", "schema", "type",
		"string", "optional", false, "field", "table", "type", "int64",
		"optional", true, "field", "txId", "type", "int64", "optional",
		true, "field", "lsn", "type", "int64", "optional", true,
		"field", "xmin", "optional", false, "name",
		"io.debezium.connector.postgresql.Source", "field", "source");
	snprintf(sname, sizeof(sname), "%s.%s.%s.Envelope", r->prefix,
	         t->schema, t->table);
	return json_pack(
		"{s:s, s:[o, o, o, {s:s, s:b, s:s}, {s:s, s:b, s:s},"
		" {s:s, s:[{s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s}],"
		" s:b, s:s, s:i, s:s}], s:b, s:s, s:i}",
		"type", "struct", "fields", before, value_schema, source,
		"type", "string", "optional", false, "field", "op", "type",
		"int64", "optional", true, "field", "ts_ms", "type", "struct",
		"fields", "type", "string", "optional", false, "field", "id",
		"type", "int64", "optional", false, "field", "total_order",
		"type", "int64", "optional", false, "field",
		"data_collection_order", "optional", true, "name",
		"event.block", "version", 1, "field", "transaction", "optional",
		false, "name", sname, "version", 1);
}

/*
 * One change event: op, before and after (each NULL for null; taken), the
 * transaction id and position.  With -S wrapped in the schema.
 */
static int
relay_event(relay *r, const relay_table *t, const char *op, json_t *before,
            json_t *after, json_t *key, uint32_t xid, uint64_t lsn,
            const char *snapshot, const char *header, const json_t *hkey)
{
	char seq[64];
	int64_t now = relay_wall_ms();
	json_t *env, *source;

	if (r->bad_value) {
		relay_fail("%s.%s: a value is not UTF-8", t->schema, t->table);
		json_decref(before);
		json_decref(after);
		json_decref(key);
		return -1;
	}

	snprintf(seq, sizeof(seq), "[\"%" PRIu64 "\",\"%" PRIu64 "\"]", lsn,
	         lsn);
	source = json_pack(
		"{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:n}",
		"version", "zdm_dbz_relay", "connector", "postgresql", "name",
		r->prefix, "ts_ms", (json_int_t)now, "snapshot", snapshot, "db",
		r->dbname, "sequence", seq, "schema", t->schema, "table",
		t->table, "txId",
		xid != 0 ? json_integer((json_int_t)xid) : json_null(), "lsn",
		(json_int_t)lsn, "xmin");
	env = json_pack("{s:o, s:o, s:o, s:s, s:I, s:n}", "before",
	                before ? before : json_null(), "after",
	                after ? after : json_null(), "source", source, "op", op,
	                "ts_ms", (json_int_t)now, "transaction");
	if (env == NULL) {
		relay_fail("cannot build an event");
		json_decref(key);
		return -1;
	}
	if (r->schemas) {
		json_t *row = json_object_get(env, "after");

		if (json_is_null(row))
			row = json_object_get(env, "before");
		env = json_pack("{s:o, s:o}", "schema",
		                relay_envelope_schema(
					r, t, json_is_null(row) ? NULL : row),
		                "payload", env);
		if (env == NULL) {
			relay_fail("cannot build an event's schema");
			json_decref(key);
			return -1;
		}
	}
	key = relay_wrap_key(r, t, key);
	if (relay_send(r, t, key, env, header, hkey) != 0) {
		json_decref(key);
		json_decref(env);
		return -1;
	}
	json_decref(env);
	/* Debezium follows every delete with a tombstone for compaction */
	if (strcmp(op, "d") == 0 && key != NULL &&
	    relay_send(r, t, key, NULL, NULL, NULL) != 0) {
		json_decref(key);
		return -1;
	}
	json_decref(key);
	return 0;
}

static bool
relay_same(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

/* Does an UPDATE move the row to another primary key? */
static bool
relay_key_changed(const relay_table *t, const zdm_cdc_change *c)
{
	size_t i, j;

	for (i = 0; i < c->nold; i++) {
		const relay_col *col = relay_col_find(t, c->old_cols[i].name);

		if (col == NULL || !col->key)
			continue;
		for (j = 0; j < c->nnew; j++)
			if (strcmp(c->new_cols[j].name, c->old_cols[i].name) ==
			            0 &&
			    !relay_same(c->new_cols[j].value,
			                c->old_cols[i].value))
				return true;
	}
	return false;
}

/*
 * An UPDATE that moves the row to another key: the delete of the old key
 * (header __debezium.newkey) and its tombstone, then the create of the new
 * (header __debezium.oldkey), as Debezium's RelationalChangeRecordEmitter
 * sends it.  Each header holds the other key, serialized like a key.
 */
static int
relay_key_change(relay *r, const relay_table *t, const zdm_cdc_change *c)
{
	json_t *oldkey =
		relay_wrap_key(r, t, relay_key(t, c->old_cols, c->nold));
	json_t *newkey =
		relay_wrap_key(r, t, relay_key(t, c->new_cols, c->nnew));
	int rc = -1;

	if (oldkey == NULL || newkey == NULL) {
		relay_fail("%s.%s: a key change without both keys", t->schema,
		           t->table);
		goto done;
	}
	/* relay_event takes a key (and wraps it): give it copies of the
	 * payloads, keep the wrapped ones for the headers */
	if (relay_event(r, t, "d", relay_row(r, t, c->old_cols, c->nold, true),
	                NULL, relay_key(t, c->old_cols, c->nold), c->xid,
	                c->position.offset, "false", "__debezium.newkey",
	                newkey) != 0)
		goto done;
	rc = relay_event(
		r, t, "c", NULL, relay_row(r, t, c->new_cols, c->nnew, false),
		relay_key(t, c->new_cols, c->nnew), c->xid, c->position.offset,
		"false", "__debezium.oldkey", oldkey);
done:
	json_decref(oldkey);
	json_decref(newkey);
	return rc;
}

static int
relay_change(relay *r, const zdm_cdc_change *c)
{
	relay_table *t = relay_table_for(r, c);
	uint64_t lsn = c->position.offset;

	if (t == NULL)
		return -1;
	r->changes++;
	switch (c->op) {
	case ZDM_CDC_INSERT:
		return relay_event(r, t, "c", NULL,
		                   relay_row(r, t, c->new_cols, c->nnew, false),
		                   relay_key(t, c->new_cols, c->nnew), c->xid,
		                   lsn, "false", NULL, NULL);
	case ZDM_CDC_UPDATE:
		if (relay_key_changed(t, c))
			return relay_key_change(r, t, c);
		return relay_event(r, t, "u",
		                   c->nold > 0 ? relay_row(r, t, c->old_cols,
		                                           c->nold, false)
		                               : NULL,
		                   relay_row(r, t, c->new_cols, c->nnew, false),
		                   relay_key(t, c->new_cols, c->nnew), c->xid,
		                   lsn, "false", NULL, NULL);
	case ZDM_CDC_DELETE:
		return relay_event(r, t, "d",
		                   relay_row(r, t, c->old_cols, c->nold, true),
		                   NULL, relay_key(t, c->old_cols, c->nold),
		                   c->xid, lsn, "false", NULL, NULL);
	case ZDM_CDC_TRUNCATE:
		return relay_event(r, t, "t", NULL, NULL, NULL, c->xid, lsn,
		                   "false", NULL, NULL);
	}
	return 0;
}

/* Wait until everything produced is delivered; -1 on any failure. */
static int
relay_flush(relay *r)
{
	rd_kafka_resp_err_t e = rd_kafka_flush(r->rk, RELAY_FLUSH_MS);

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		relay_fail("delivery: %s (%d messages undelivered)",
		           rd_kafka_err2str(e), rd_kafka_outq_len(r->rk));
		return -1;
	}
	if (r->failed > 0) {
		relay_fail("delivery failed for %" PRIu64 " messages: %s",
		           r->failed, r->failure);
		return -1;
	}
	return 0;
}

/* ---- setup ------------------------------------------------------------- */

static int
relay_kafka_start(relay *r, const char *bootstrap_file)
{
	static const char *const settings[][2] = {
		/* starts the mock cluster, owned by this producer */
		{"test.mock.num.brokers", "1"},
		/* Kafka's Java producer partitions by murmur2 of the key */
		{"partitioner", "murmur2_random"},
		{"compression.type", "lz4"},
		{"linger.ms", "5"},
		{"enable.idempotence", "true"},
	};
	char errstr[512], tmp[4096];
	const char *bootstraps;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	FILE *f;
	size_t i;

	for (i = 0; i < sizeof(settings) / sizeof(*settings); i++)
		if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1],
		                      errstr,
		                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
			relay_fail("%s: %s", settings[i][0], errstr);
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	rd_kafka_conf_set_opaque(conf, r);
	rd_kafka_conf_set_dr_msg_cb(conf, relay_dr);
	r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (r->rk == NULL) {
		relay_fail("creating the producer: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	r->mc = rd_kafka_handle_mock_cluster(r->rk);
	bootstraps = r->mc ? rd_kafka_mock_cluster_bootstraps(r->mc) : NULL;
	if (bootstraps == NULL) {
		relay_fail("no mock cluster");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", bootstrap_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", bootstraps) < 0 || fclose(f) != 0 ||
	    rename(tmp, bootstrap_file) != 0) {
		relay_fail("writing %s: %s", bootstrap_file, strerror(errno));
		return -1;
	}
	return 0;
}

/* A topic for each table of the publication, before any change. */
static int
relay_publication_tables(relay *r, const char *publication)
{
	const char *params[1] = {publication};
	PGresult *res;
	int i, rc = 0;

	res = PQexecParams(r->conn,
	                   "SELECT schemaname, tablename"
	                   " FROM pg_catalog.pg_publication_tables"
	                   " WHERE pubname = $1 ORDER BY 1, 2",
	                   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		relay_fail("reading publication %s: %s", publication,
		           PQerrorMessage(r->conn));
		PQclear(res);
		return -1;
	}
	for (i = 0; i < PQntuples(res) && rc == 0; i++)
		if (relay_table_add(r, PQgetvalue(res, i, 0),
		                    PQgetvalue(res, i, 1)) == NULL)
			rc = -1;
	PQclear(res);
	return rc;
}

static int
relay_exec(relay *r, const char *sql)
{
	PGresult *res = PQexec(r->conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	         PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		relay_fail("%s: %s", sql, PQerrorMessage(r->conn));
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * op "r" for every row of schema.table, in one REPEATABLE READ
 * transaction, text as pgoutput sends it (the same session settings).
 */
static int
relay_snapshot(relay *r, const char *qualified)
{
	char schema[128], sql[512];
	const char *dot = strchr(qualified, '.');
	char *qs = NULL, *qt = NULL;
	PGresult *res = NULL, *info = NULL;
	zdm_cdc_column *cols = NULL;
	relay_table *t;
	uint32_t xid;
	uint64_t lsn;
	unsigned hi, lo;
	int i, j, n, rc = -1;

	if (dot == NULL || (size_t)(dot - qualified) >= sizeof(schema)) {
		relay_fail("-r %s: expected SCHEMA.TABLE", qualified);
		return -1;
	}
	memcpy(schema, qualified, (size_t)(dot - qualified));
	schema[dot - qualified] = '\0';
	t = relay_table_find(r, schema, dot + 1);
	if (t == NULL) {
		relay_fail("-r %s: not in the publication", qualified);
		return -1;
	}
	if (relay_exec(r, "BEGIN ISOLATION LEVEL REPEATABLE READ") != 0)
		return -1;
	info = PQexec(r->conn, "SELECT pg_catalog.pg_current_xact_id()::text,"
	                       " pg_catalog.pg_current_wal_lsn()::text");
	if (PQresultStatus(info) != PGRES_TUPLES_OK ||
	    sscanf(PQgetvalue(info, 0, 1), "%X/%X", &hi, &lo) != 2) {
		relay_fail("snapshot: %s", PQerrorMessage(r->conn));
		goto done;
	}
	xid = (uint32_t)strtoull(PQgetvalue(info, 0, 0), NULL, 10);
	lsn = (uint64_t)hi << 32 | lo;
	qs = PQescapeIdentifier(r->conn, t->schema, strlen(t->schema));
	qt = PQescapeIdentifier(r->conn, t->table, strlen(t->table));
	if (qs == NULL || qt == NULL) {
		relay_fail("snapshot: %s", PQerrorMessage(r->conn));
		goto done;
	}
	snprintf(sql, sizeof(sql), "SELECT * FROM %s.%s", qs, qt);
	res = PQexec(r->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		relay_fail("snapshot: %s", PQerrorMessage(r->conn));
		goto done;
	}
	n = PQnfields(res);
	cols = calloc(n > 0 ? (size_t)n : 1, sizeof(*cols));
	if (cols == NULL) {
		relay_fail("out of memory");
		goto done;
	}
	for (i = 0; i < PQntuples(res); i++) {
		for (j = 0; j < n; j++) {
			cols[j].name = PQfname(res, j);
			cols[j].value = PQgetisnull(res, i, j)
			                        ? NULL
			                        : PQgetvalue(res, i, j);
			cols[j].unchanged_toast = false;
		}
		if (relay_event(r, t, "r", NULL,
		                relay_row(r, t, cols, (size_t)n, false),
		                relay_key(t, cols, (size_t)n), xid, lsn,
		                i + 1 == PQntuples(res) ? "last" : "true", NULL,
		                NULL) != 0)
			goto done;
		r->snapshot_rows++;
	}
	rc = relay_exec(r, "COMMIT");
done:
	if (rc != 0)
		(void)relay_exec(r, "ROLLBACK");
	free(cols);
	PQfreemem(qs);
	PQfreemem(qt);
	PQclear(res);
	PQclear(info);
	return rc;
}

static int
relay_usage(void)
{
	fprintf(stderr, "usage: zdm_dbz_relay [-d CONNINFO] -s SLOT -p "
	                "PUBLICATION -o FILE [-x PREFIX] [-k PARTITIONS] [-S] "
	                "[-r SCHEMA.TABLE] [-w MS]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	relay r;
	zdm_cdc_pgoutput_opts po = {0};
	const char *conninfo = NULL, *bootstrap_file = NULL, *snapshot = NULL;
	long hold_ms = 0;
	const char *keywords[5], *values[5];
	zdm_cdc_source *src = NULL;
	const zdm_cdc_change *changes;
	struct sigaction sa;
	zdm_error err;
	size_t n, i;
	int opt, rc = 1;

	memset(&r, 0, sizeof(r));
	r.prefix = "dbz";
	r.partitions = 1;
	while ((opt = getopt(argc, argv, "d:s:p:o:x:k:Sr:w:")) != -1) {
		switch (opt) {
		case 'd':
			conninfo = optarg;
			break;
		case 's':
			po.slot = optarg;
			break;
		case 'p':
			po.publication = optarg;
			break;
		case 'o':
			bootstrap_file = optarg;
			break;
		case 'x':
			r.prefix = optarg;
			break;
		case 'k':
			r.partitions = atoi(optarg);
			break;
		case 'S':
			r.schemas = true;
			break;
		case 'r':
			snapshot = optarg;
			break;
		case 'w':
			hold_ms = atol(optarg);
			break;
		default:
			return relay_usage();
		}
	}
	if (optind != argc || po.slot == NULL || po.publication == NULL ||
	    bootstrap_file == NULL || r.partitions < 1 || hold_ms < 0 ||
	    hold_ms > RELAY_MAX_HOLD_MS)
		return relay_usage();
	po.conninfo = conninfo;

	/* No SA_RESTART: a signal ends the wait in next() early. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = relay_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* the same session settings as pgoutput's, for the snapshot's text */
	keywords[0] = "dbname";
	values[0] = conninfo;
	keywords[1] = "application_name";
	values[1] = "dbz_relay";
	keywords[2] = "client_encoding";
	values[2] = "UTF8";
	keywords[3] = "options";
	values[3] = "-c datestyle=ISO -c intervalstyle=postgres"
		    " -c extra_float_digits=3 -c search_path=";
	keywords[4] = NULL;
	values[4] = NULL;
	r.conn = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(r.conn) != CONNECTION_OK) {
		relay_fail("connecting: %s", PQerrorMessage(r.conn));
		goto done;
	}
	snprintf(r.dbname, sizeof(r.dbname), "%s", PQdb(r.conn));
	if (relay_kafka_start(&r, bootstrap_file) != 0 ||
	    relay_publication_tables(&r, po.publication) != 0)
		goto done;
	if (snapshot != NULL &&
	    (relay_snapshot(&r, snapshot) != 0 || relay_flush(&r) != 0))
		goto done;
	if (zdm_cdc_pgoutput_open(&src, &po, &err) != 0) {
		zdm_error_print(&err, stderr);
		goto done;
	}
	while (!relay_stop) {
		uint32_t last_xid = 0;

		if (src->ops->next(src, &changes, &n, RELAY_NEXT_MS, &err) !=
		    0) {
			zdm_error_print(&err, stderr);
			goto done;
		}
		if (n == 0)
			continue;
		/* well within wal_sender_timeout: the source sends no status
		 * update meanwhile */
		if (hold_ms > 0)
			zdm_sleep_ms(hold_ms);
		for (i = 0; i < n; i++) {
			if (relay_change(&r, &changes[i]) != 0)
				goto done;
			if (i == 0 || changes[i].xid != last_xid)
				r.transactions++;
			last_xid = changes[i].xid;
			/* serve delivery reports as we go */
			rd_kafka_poll(r.rk, 0);
		}
		/* the slot moves only past what Kafka has */
		if (relay_flush(&r) != 0)
			goto done;
		if (src->ops->ack(src, changes[n - 1].position, &err) != 0) {
			zdm_error_print(&err, stderr);
			goto done;
		}
	}
	rc = 0;
done:
	if (rc == 0 && r.rk != NULL && relay_flush(&r) != 0)
		rc = 1;
	fprintf(stderr,
	        "dbz_relay: %" PRIu64 " transactions, %" PRIu64
	        " changes, %" PRIu64 " messages (%" PRIu64
	        " tombstones), %" PRIu64 " snapshot rows\n",
	        r.transactions, r.changes, r.messages, r.tombstones,
	        r.snapshot_rows);
	if (src != NULL)
		src->ops->close(src);
	if (r.rk != NULL)
		rd_kafka_destroy(r.rk); /* and the mock cluster with it */
	for (i = 0; i < r.ntables; i++) {
		relay_table_clear(&r.tables[i]);
		free(r.tables[i].schema);
		free(r.tables[i].table);
		free(r.tables[i].topic);
	}
	PQfinish(r.conn);
	return rc;
}
