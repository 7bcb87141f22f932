/*
 * cdc_debezium.c -- the debezium CDC source: Debezium PostgreSQL change
 * events from a Kafka topic, as zdm_cdc_change records (cdc.h).
 *
 * A librdkafka consumer in the migration's consumer group, subscribed to the
 * table's topic, with enable.auto.commit and enable.auto.offset.store off:
 * the group's committed offset moves only in ack, synchronously, to the
 * acknowledged offset + 1 of that partition.  So delivery is at least once:
 * whatever was not acknowledged comes again after a restart or a rebalance.
 * Order is Kafka's: per partition.
 *
 * Where a partition starts.  At assignment the group's committed offsets are
 * read: a partition with none (a new group) starts at its beginning (the
 * connector's snapshot), the others at their committed offset.
 * auto.offset.reset is "error", never "earliest": a committed offset that is
 * no longer in the topic (retention deleted messages zdm had not read) would
 * otherwise send the consumer to the earliest message left and lose the
 * changes between without a word.  next() fails instead, naming topic,
 * partition, the committed offset and the earliest available: the migration
 * must start over.
 *
 * Rebalances.  A revoked partition is read again by its new owner from the
 * committed offset.  Its changes gathered into the batch next() is building
 * are dropped, nothing more of it is handed out, and an ack for a change of
 * it handed out earlier commits nothing and succeeds: a commit would fail
 * or, worse, move the new owner's offset past changes it has not applied.
 * (librdkafka pauses the partitions when a rebalance starts and discards
 * what was fetched and not yet polled; the batch drop covers what next()
 * polled before the revoke reached it.)
 *
 * Message values are Debezium's JSON envelope, with the JsonConverter's
 * schema ({"schema": ..., "payload": {envelope}}) or without it (the
 * envelope alone); both are accepted.  op c and r (snapshot read) are
 * INSERT, u UPDATE, d DELETE, t TRUNCATE; schema and table come from
 * source.schema and source.table.
 *
 * A delete's old_cols are the key columns only, from the Kafka message key
 * when it has one: Debezium puts the primary key (or message.key.columns)
 * there, with or without schema like the value.  The before image of a
 * delete with REPLICA IDENTITY DEFAULT carries the key columns and NULL for
 * every other column, NULLs that are not the row's values; with FULL it is
 * the whole row, still only the key is passed on, so a delete means the same
 * whatever the table's identity.  Key fields that are not columns of the
 * before image (a routing transform's __dbz__physicalTableIdentifier) are
 * left out.  Without a key (a table without one, a converter or transform
 * that drops it) old_cols is the before image as sent.  A key that is not
 * Debezium's JSON is a malformed event, for deletes; other ops ignore it.
 *
 * A primary-key change.  Debezium sends an UPDATE that changes the key as
 * a delete of the old key (header __debezium.newkey), its tombstone, and a
 * create of the new key (header __debezium.oldkey).  Applied as an INSERT,
 * the create would lose which columns the statement wrote, and the
 * applier's insert rules would pick a direction from the row's values
 * alone: an old-version write of the key and an old column, on a row whose
 * new columns are set, would be reverted.  So when the create follows its
 * delete in the same partition (only the tombstone between) and comes from
 * the same transaction, the two are handed out as one UPDATE, the delete's
 * whole before image (REPLICA IDENTITY FULL, which a cdc plan's expand
 * sets) and the create's after image, at the create's position: what the
 * native source gives for the same statement.  A batch that ends right
 * after such a delete waits up to half a second for its create.  Where
 * the two are in different partitions (a topic with more than one: the
 * keys hash apart) or the headers are gone (a transform dropped them),
 * they stay a DELETE and an INSERT.
 *
 * A null value (a tombstone, which follows
 * every delete and so a primary-key change: delete, tombstone, create) is no
 * change; its offset is committed with the next ack of its partition, or at
 * once when nothing before it is waiting.  Anything else is a malformed
 * event: next returns -1 with "topic T partition P offset O: what is wrong",
 * after first handing out the changes before it, and from then on returns
 * that error on every call; the event's offset is never committed, so a
 * restart stops at it again until an operator deals with it.
 *
 * Values become PostgreSQL text, as cdc.h promises: strings as they are,
 * integers in decimal, reals in the shortest form that reads back as the
 * same double (jansson keeps no lexeme: "1.0" arrives as "1", "1.5E300" as
 * "1.5e+300", the same value to the server), true and false as t and f,
 * null as SQL NULL, arrays as PostgreSQL array literals ({1,2,"a b"}: the
 * PostgreSQL connector sends array columns as JSON arrays, and their
 * PostgreSQL text is a literal, not JSON), objects as compact JSON.  An
 * integer beyond 64 bits or a real beyond a double is refused as "not JSON"
 * (Debezium sends neither for PostgreSQL).  The connector's placeholder for
 * an unchanged TOASTed value (unavailable.value.placeholder) becomes
 * unchanged_toast.
 *
 * Debezium encodes some types by its settings, and only the schema says
 * which encoding a column has.  With schemas enabled (recommended) zdm
 * converts: io.debezium.time.Date and Connect Date (days) to a date;
 * Time, MicroTime, NanoTime and Connect Time to a time; Timestamp,
 * MicroTimestamp, NanoTimestamp and Connect Timestamp to a timestamp;
 * MicroDuration to an interval in microseconds (Debezium's own value,
 * months counted as 365.25/12 days); Connect bytes (bytea with
 * binary.handling.mode=bytes) to bytea hex text.  It refuses
 * decimal.handling.mode=precise (Decimal and VariableScaleDecimal, base64
 * bytes) and bit strings (io.debezium.data.Bits) with an error naming the
 * column: set decimal.handling.mode=string (or double).  Without schemas
 * these columns arrive as bare integers or base64 strings that cannot be
 * told from others and pass through unconverted: the server then refuses
 * the cast (date, time, numeric) or, for bytea, stores the base64 text.
 * String-encoded settings need no schema: timestamptz and timetz
 * (ZonedTimestamp, ZonedTime), decimal.handling.mode=string,
 * interval.handling.mode=string (ISO 8601, which PostgreSQL reads),
 * binary.handling.mode=hex is not (PostgreSQL wants the \x).
 *
 * Own writes.  The native source recognises zdm's writes by their
 * replication origin; Debezium drops pgoutput's Origin messages (its decoder
 * skips them), so no event says which session wrote it.  Decision: own_write
 * is false unless the applier says otherwise, and the applier's writes must
 * converge anyway: they are guarded (UPDATE ... WHERE new IS DISTINCT FROM
 * old), so the event zdm's own write produces, applied again, computes the
 * same values and writes nothing; the loop ends after one echo.  That holds
 * only when the two directions of a transform are inverses on the values
 * involved; for the rest, and to save the echo's round trip, the applier can
 * mark its transactions: zdm_cdc_debezium_own_xid(pg_current_xact_id())
 * before COMMIT, and every event whose source.txId is that xid comes with
 * own_write set (Debezium's txId is the 32-bit xid, so ids compare modulo
 * 2^32).  The marks live in memory (the last 16384): after a restart the
 * replayed echoes are recognised only by convergence again.  own_origin_field
 * is for pipelines that do carry a marker (an SMT, a future Debezium that
 * exposes the origin): a dotted path into the envelope whose string value
 * beginning "zdm_" marks an own write, the native source's naming.
 *
 * Lag.  backlog: for every partition of the topic, its high watermark minus
 * the group's committed offset (the low watermark when nothing is
 * committed), summed -- messages, tombstones included.  The watermarks
 * are librdkafka's, from the last fetch, when it has them: a measure of
 * progress, not a proof that every change up to some point is applied
 * (they can predate messages already in the topic, and the topic knows
 * nothing of changes the connector has yet to write: see Barriers).
 * seconds: 0 when the backlog is 0; otherwise, over partitions with a
 * backlog, the largest age (now, by this host's clock, minus the event's
 * source.ts_ms, the commit time in the database; envelope ts_ms or the
 * Kafka timestamp when absent) of the oldest change handed out and not
 * acknowledged, or, when everything handed out is acknowledged, of the
 * last acknowledged change (an upper bound until the next fetch); 0 when
 * nothing is known yet.  Clock skew between the database host and this
 * one shows up in it.
 *
 * Barriers.  "Every change committed before LSN L is applied" cannot be
 * read from Kafka alone: a drained topic may still be missing what the
 * connector has yet to write.  The connector's replication slot says it:
 * Debezium confirms an LSN there (confirmed_flush_lsn) once everything
 * before it is in Kafka.  So the caller reads that LSN, F, then calls
 * zdm_cdc_debezium_fence(F), which asks the brokers for the end of every
 * partition of the topic; once the group's committed offsets (moved only
 * by ack, after the applier's COMMIT) have reached all those ends,
 * zdm_cdc_debezium_fenced() returns F.  Under steady writes that is a
 * batch or two later, where waiting for a backlog of 0 may never come.
 * The last DBZ_FENCES fences are kept, in memory.
 *
 * No global state: everything hangs off the source or the parser.  Nothing
 * here talks to PostgreSQL.
 */
#include "cdc_debezium.h"

#include <assert.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define DBZ_DEFAULT_PLACEHOLDER "__debezium_unavailable_value"
#define DBZ_BATCH_MAX 500    /* messages per next() */
#define DBZ_TIMEOUT_MS 10000 /* metadata, committed offsets, commits */
#define DBZ_OWN_XIDS 16384   /* own transaction ids remembered */
#define DBZ_OWN_SLOTS 32768  /* their hash table: a power of two */
#define DBZ_ARENA_BLOCK 65536
/* How long a batch that ends on a key change's delete waits for its create */
#define DBZ_MOVE_WAIT_MS 500
#define DBZ_HEADER_NEWKEY "__debezium.newkey"
#define DBZ_HEADER_OLDKEY "__debezium.oldkey"
#define DBZ_FENCES 64 /* barriers' marks kept (zdm_cdc_debezium_fence) */

/* ---- memory: an arena per batch, a growable buffer per value ------------ */

typedef struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t cap;
	max_align_t data[];
} arena_block;

typedef struct arena {
	arena_block *head;
} arena;

static void *
arena_alloc(arena *a, size_t n)
{
	arena_block *b = a->head;
	size_t align = alignof(max_align_t);
	size_t need = (n + align - 1) & ~(align - 1);
	void *p;

	if (b == NULL || b->cap - b->used < need) {
		size_t cap = need > DBZ_ARENA_BLOCK ? need : DBZ_ARENA_BLOCK;

		b = malloc(sizeof(*b) + cap);
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	return p;
}

static char *
arena_strndup(arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Keep one standard block for the next batch; free the rest. */
static void
arena_reset(arena *a)
{
	arena_block *keep = NULL;

	while (a->head != NULL) {
		arena_block *b = a->head;

		a->head = b->next;
		if (keep == NULL && b->cap == DBZ_ARENA_BLOCK) {
			keep = b;
			continue;
		}
		free(b);
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	a->head = keep;
}

static void
arena_free(arena *a)
{
	while (a->head != NULL) {
		arena_block *b = a->head;

		a->head = b->next;
		free(b);
	}
}

typedef struct strbuf {
	char *data;
	size_t len;
	size_t cap;
	bool oom; /* sticky: checked once the value is built */
} strbuf;

static void
sb_putn(strbuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->cap - sb->len < n + 1) {
		size_t cap = sb->cap ? sb->cap : 256;
		char *data;

		while (cap - sb->len < n + 1)
			cap *= 2;
		data = realloc(sb->data, cap);
		if (data == NULL) {
			sb->oom = true;
			return;
		}
		sb->data = data;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

static void
sb_puts(strbuf *sb, const char *s)
{
	sb_putn(sb, s, strlen(s));
}

static void
sb_putc(strbuf *sb, char c)
{
	sb_putn(sb, &c, 1);
}

static void sb_printf(strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sb_printf(strbuf *sb, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert(n >= 0 && (size_t)n < sizeof(buf)); /* short numeric texts */
	sb_putn(sb, buf, (size_t)n);
}

/* ---- own transaction ids: the last DBZ_OWN_XIDS, a ring and a hash ------ */

typedef struct own_xids {
	uint32_t ring[DBZ_OWN_XIDS]; /* oldest at head */
	size_t head;
	size_t count;
	uint32_t slots[DBZ_OWN_SLOTS]; /* 0 is empty: never a normal xid */
} own_xids;

static size_t
xid_slot(uint32_t xid)
{
	return (size_t)((xid * 2654435761u) & (DBZ_OWN_SLOTS - 1));
}

static bool
xids_has(const own_xids *x, uint32_t xid)
{
	size_t i;

	if (x == NULL || xid == 0)
		return false;
	for (i = xid_slot(xid); x->slots[i] != 0;
	     i = (i + 1) & (DBZ_OWN_SLOTS - 1))
		if (x->slots[i] == xid)
			return true;
	return false;
}

/* Linear probing's deletion: shift later members of the run back. */
static void
xids_remove(own_xids *x, uint32_t xid)
{
	size_t i = xid_slot(xid), j;

	while (x->slots[i] != xid) {
		if (x->slots[i] == 0)
			return;
		i = (i + 1) & (DBZ_OWN_SLOTS - 1);
	}
	x->slots[i] = 0;
	for (j = (i + 1) & (DBZ_OWN_SLOTS - 1); x->slots[j] != 0;
	     j = (j + 1) & (DBZ_OWN_SLOTS - 1)) {
		size_t k = xid_slot(x->slots[j]);
		bool move = i <= j ? (k <= i || k > j) : (k <= i && k > j);

		if (move) {
			x->slots[i] = x->slots[j];
			x->slots[j] = 0;
			i = j;
		}
	}
}

static void
xids_add(own_xids *x, uint32_t xid)
{
	size_t i;

	if (xid == 0 || xids_has(x, xid))
		return;
	if (x->count == DBZ_OWN_XIDS) {
		xids_remove(x, x->ring[x->head]);
		x->head = (x->head + 1) % DBZ_OWN_XIDS;
		x->count--;
	}
	x->ring[(x->head + x->count) % DBZ_OWN_XIDS] = xid;
	x->count++;
	for (i = xid_slot(xid); x->slots[i] != 0;
	     i = (i + 1) & (DBZ_OWN_SLOTS - 1))
		;
	x->slots[i] = xid;
}

/* ---- the parser ----------------------------------------------------------- */

struct zdm_cdc_debezium_parser {
	char *own_origin_field;
	char *placeholder;
	size_t placeholder_len;
	own_xids *own; /* allocated at the first mark */
	arena arena;   /* the current change (or batch: the source's) */
	strbuf sb;     /* the value being built */
	strbuf elem;   /* an array element being built */
};

/* An event's part in a primary-key change, from Debezium's headers. */
typedef enum key_move {
	MOVE_NONE,
	MOVE_DELETE, /* the delete of the old key: __debezium.newkey */
	MOVE_CREATE  /* the create of the new key: __debezium.oldkey */
} key_move;

/* What the source needs beyond the change. */
typedef struct event_meta {
	int64_t ts_ms; /* source.ts_ms, else ts_ms; -1 when neither */
	key_move move; /* in: from the headers (the source's; the parser
	                * alone never sees headers) */
	/* out, for MOVE_DELETE: the whole before image, which old_cols (the
	 * key) leaves out; nbefore 0 when the event had none */
	const zdm_cdc_column *before;
	size_t nbefore;
} event_meta;

/* How a column's value is encoded, from its schema. */
typedef enum semantic {
	SEM_PLAIN,
	SEM_BYTES,
	SEM_DATE,
	SEM_TIME_MS,
	SEM_TIME_US,
	SEM_TIME_NS,
	SEM_TS_MS,
	SEM_TS_US,
	SEM_TS_NS,
	SEM_DURATION_US,
	SEM_DECIMAL,
	SEM_BITS
} semantic;

static const struct {
	const char *name;
	semantic sem;
} semantic_names[] = {
	{"io.debezium.time.Date", SEM_DATE},
	{"org.apache.kafka.connect.data.Date", SEM_DATE},
	{"io.debezium.time.Time", SEM_TIME_MS},
	{"org.apache.kafka.connect.data.Time", SEM_TIME_MS},
	{"io.debezium.time.MicroTime", SEM_TIME_US},
	{"io.debezium.time.NanoTime", SEM_TIME_NS},
	{"io.debezium.time.Timestamp", SEM_TS_MS},
	{"org.apache.kafka.connect.data.Timestamp", SEM_TS_MS},
	{"io.debezium.time.MicroTimestamp", SEM_TS_US},
	{"io.debezium.time.NanoTimestamp", SEM_TS_NS},
	{"io.debezium.time.MicroDuration", SEM_DURATION_US},
	{"org.apache.kafka.connect.data.Decimal", SEM_DECIMAL},
	{"io.debezium.data.VariableScaleDecimal", SEM_DECIMAL},
	{"io.debezium.data.Bits", SEM_BITS},
};

static semantic
semantic_of(const json_t *fs)
{
	const char *name, *type;
	size_t i;

	if (!json_is_object(fs))
		return SEM_PLAIN;
	name = json_string_value(json_object_get(fs, "name"));
	type = json_string_value(json_object_get(fs, "type"));
	if (name != NULL)
		for (i = 0;
		     i < sizeof(semantic_names) / sizeof(*semantic_names); i++)
			if (strcmp(name, semantic_names[i].name) == 0)
				return semantic_names[i].sem;
	if (type != NULL && strcmp(type, "bytes") == 0)
		return SEM_BYTES;
	return SEM_PLAIN;
}

/* A string for a message: quoted, at most 64 bytes, control bytes as '?'. */
static const char *
msg_quote(const char *s, char *buf, size_t len)
{
	size_t i, o = 0;

	assert(len >= 8);
	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 5 < len && i < 64; i++)
		buf[o++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
	if (s[i] != '\0') {
		/* cut before a UTF-8 sequence rather than through it */
		while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 1 && (unsigned char)buf[o - 1] >= 0xc0)
			o--;
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static int col_error(zdm_error *err, const char *col, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "column "c": ..." */
static int
col_error(zdm_error *err, const char *col, const char *fmt, ...)
{
	char q[80], what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	zdm_error_set(err, "column %s: %s", msg_quote(col, q, sizeof(q)), what);
	return -1;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant). */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

/* PostgreSQL's date text; the era is returned for the caller to append. */
static bool
sb_date(strbuf *sb, int64_t days)
{
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	if (y <= 0) { /* year 0 is 1 BC */
		sb_printf(sb, "%04" PRId64 "-%02u-%02u", 1 - y, m, d);
		return true;
	}
	sb_printf(sb, "%04" PRId64 "-%02u-%02u", y, m, d);
	return false;
}

/* HH:MM:SS[.ffffff], trailing zeros of the fraction dropped. */
static void
sb_time_of_day(strbuf *sb, int64_t us)
{
	int64_t s = us / 1000000, frac = us % 1000000;

	sb_printf(sb, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, s / 3600,
	          s / 60 % 60, s % 60);
	if (frac != 0) {
		char f[8];
		int n = 6;

		snprintf(f, sizeof(f), "%06" PRId64, frac);
		while (f[n - 1] == '0')
			n--;
		sb_putc(sb, '.');
		sb_putn(sb, f, (size_t)n);
	}
}

/* PostgreSQL's date range, with room: refuse what cannot be a date. */
#define DBZ_MAX_DAYS ((int64_t)1 << 31)

/* v in units of 1/per_sec s (10^3, 10^6 or 10^9) to microseconds, floored */
static int64_t
to_us(int64_t v, int64_t per_sec)
{
	return per_sec <= 1000000 ? v * (1000000 / per_sec)
	                          : v / (per_sec / 1000000);
}

static int
sb_timestamp(strbuf *sb, int64_t v, int64_t per_sec, const char *col,
             zdm_error *err)
{
	int64_t per_day = per_sec * 86400;
	int64_t days = floor_div(v, per_day);
	bool bc;

	if (days > DBZ_MAX_DAYS || days < -DBZ_MAX_DAYS)
		return col_error(err, col, "timestamp %" PRId64 " out of range",
		                 v);
	bc = sb_date(sb, days);
	sb_putc(sb, ' ');
	sb_time_of_day(sb, to_us(v - days * per_day, per_sec));
	if (bc)
		sb_puts(sb, " BC");
	return 0;
}

/* PostgreSQL's time runs from 00:00:00 to 24:00:00 inclusive. */
static int
sb_time(strbuf *sb, int64_t v, int64_t per_sec, const char *col, zdm_error *err)
{
	if (v < 0 || v > 86400 * per_sec)
		return col_error(err, col, "time %" PRId64 " out of range", v);
	sb_time_of_day(sb, to_us(v, per_sec));
	return 0;
}

/* Shortest "%.Ng" that reads back as the same double. */
static void
sb_real(strbuf *sb, double v)
{
	char buf[40];
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	sb_puts(sb, buf);
}

static void
sb_json_string(strbuf *sb, const char *s, size_t n)
{
	size_t i;

	sb_putc(sb, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':
			sb_puts(sb, "\\\"");
			break;
		case '\\':
			sb_puts(sb, "\\\\");
			break;
		case '\n':
			sb_puts(sb, "\\n");
			break;
		case '\r':
			sb_puts(sb, "\\r");
			break;
		case '\t':
			sb_puts(sb, "\\t");
			break;
		default:
			if (c < 0x20)
				sb_printf(sb, "\\u%04x", c);
			else
				sb_putc(sb, (char)c);
		}
	}
	sb_putc(sb, '"');
}

/* Compact JSON, numbers as sb_real and integers print them. */
static void
sb_json(strbuf *sb, const json_t *v)
{
	void *it;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sb_putc(sb, '{');
		for (it = json_object_iter((json_t *)v); it != NULL;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);

			if (it != json_object_iter((json_t *)v))
				sb_putc(sb, ',');
			sb_json_string(sb, key, strlen(key));
			sb_putc(sb, ':');
			sb_json(sb, json_object_iter_value(it));
		}
		sb_putc(sb, '}');
		break;
	case JSON_ARRAY:
		sb_putc(sb, '[');
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				sb_putc(sb, ',');
			sb_json(sb, json_array_get(v, i));
		}
		sb_putc(sb, ']');
		break;
	case JSON_STRING:
		sb_json_string(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		sb_printf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		sb_real(sb, json_real_value(v));
		break;
	case JSON_TRUE:
		sb_puts(sb, "true");
		break;
	case JSON_FALSE:
		sb_puts(sb, "false");
		break;
	case JSON_NULL:
		sb_puts(sb, "null");
		break;
	}
}

static int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Base64 (standard or URL-safe, padding optional) into out; -1 if not. */
static int
base64_decode(const char *s, size_t n, strbuf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i;

	while (n > 0 && s[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++) {
		int v = base64_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	return bits >= 6 ? -1 : 0; /* a lone sextet is no byte */
}

static bool
is_placeholder(const zdm_cdc_debezium_parser *p, const char *s, size_t n)
{
	return n == p->placeholder_len && memcmp(s, p->placeholder, n) == 0;
}

/*
 * A scalar (not null, not an array) as PostgreSQL text into sb.  *unchanged
 * is set for the unavailable-value placeholder (then sb is left alone).
 */
static int
scalar_text(zdm_cdc_debezium_parser *p, const char *col, const json_t *v,
            semantic sem, strbuf *sb, bool *unchanged, zdm_error *err)
{
	json_int_t iv;

	*unchanged = false;
	switch (sem) {
	case SEM_DECIMAL:
		return col_error(
			err, col,
			"decimal.handling.mode=precise is not supported (the value "
			"is base64 bytes with a scale in the schema); set "
			"decimal.handling.mode=string on the connector");
	case SEM_BITS:
		return col_error(err, col,
		                 "bit strings (io.debezium.data.Bits) are not "
		                 "supported");
	default:
		break;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (is_placeholder(p, s, n)) {
			*unchanged = true;
			return 0;
		}
		if (sem == SEM_BYTES) {
			static const char hex[] = "0123456789abcdef";
			size_t i;

			p->elem.len = 0;
			if (base64_decode(s, n, &p->elem) < 0)
				return col_error(err, col,
				                 "bytes value is not base64");
			if (is_placeholder(p, p->elem.data, p->elem.len)) {
				*unchanged = true;
				return 0;
			}
			sb_puts(sb, "\\x");
			for (i = 0; i < p->elem.len && !sb->oom; i++) {
				unsigned char c =
					(unsigned char)p->elem.data[i];

				sb_putc(sb, hex[c >> 4]);
				sb_putc(sb, hex[c & 15]);
			}
			return 0;
		}
		if (sem != SEM_PLAIN)
			return col_error(err, col,
			                 "a string where the schema says an "
			                 "integer (a date, time or interval)");
		sb_putn(sb, s, n);
		return 0;
	}
	if (sem != SEM_PLAIN && sem != SEM_BYTES && !json_is_integer(v))
		return col_error(err, col,
		                 "not an integer where the schema "
		                 "says a date, time or interval");
	switch (json_typeof(v)) {
	case JSON_INTEGER:
		iv = json_integer_value(v);
		switch (sem) {
		case SEM_DATE:
			if (iv > DBZ_MAX_DAYS || iv < -DBZ_MAX_DAYS)
				return col_error(err, col,
				                 "date %" JSON_INTEGER_FORMAT
				                 " out of range",
				                 iv);
			if (sb_date(sb, iv))
				sb_puts(sb, " BC");
			return 0;
		case SEM_TIME_MS:
			return sb_time(sb, iv, 1000, col, err);
		case SEM_TIME_US:
			return sb_time(sb, iv, 1000000, col, err);
		case SEM_TIME_NS:
			return sb_time(sb, iv, 1000000000, col, err);
		case SEM_TS_MS:
			return sb_timestamp(sb, iv, 1000, col, err);
		case SEM_TS_US:
			return sb_timestamp(sb, iv, 1000000, col, err);
		case SEM_TS_NS:
			return sb_timestamp(sb, iv, 1000000000, col, err);
		case SEM_DURATION_US:
			sb_printf(sb, "%" JSON_INTEGER_FORMAT " microseconds",
			          iv);
			return 0;
		default:
			sb_printf(sb, "%" JSON_INTEGER_FORMAT, iv);
			return 0;
		}
	case JSON_REAL:
		sb_real(sb, json_real_value(v));
		return 0;
	case JSON_TRUE:
		sb_putc(sb, 't');
		return 0;
	case JSON_FALSE:
		sb_putc(sb, 'f');
		return 0;
	case JSON_OBJECT:
		sb_json(sb, v);
		return 0;
	default: /* null and arrays are the caller's */
		assert(!"scalar_text: not a scalar");
		return -1;
	}
}

/* An element of a PostgreSQL array literal needs quotes unless it is a
 * number or a boolean; inside them only " and \ are special. */
static void
sb_array_quoted(strbuf *sb, const char *s, size_t n)
{
	size_t i;

	sb_putc(sb, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			sb_putc(sb, '\\');
		sb_putc(sb, s[i]);
	}
	sb_putc(sb, '"');
}

static int
array_text(zdm_cdc_debezium_parser *p, const char *col, const json_t *arr,
           const json_t *items, strbuf *sb, zdm_error *err)
{
	semantic sem = semantic_of(items);
	const json_t *inner = json_object_get(items, "items");
	size_t i;

	sb_putc(sb, '{');
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		bool unchanged;

		if (i > 0)
			sb_putc(sb, ',');
		if (json_is_null(e)) {
			sb_puts(sb, "NULL");
			continue;
		}
		if (json_is_array(e)) {
			/* a nested array: the same element schema below */
			if (array_text(p, col, e, inner ? inner : items, sb,
			               err) < 0)
				return -1;
			continue;
		}
		if (json_is_number(e) && sem == SEM_PLAIN) {
			if (scalar_text(p, col, e, sem, sb, &unchanged, err) <
			    0)
				return -1;
			continue;
		}
		if (json_is_boolean(e)) {
			sb_putc(sb, json_is_true(e) ? 't' : 'f');
			continue;
		}
		{
			strbuf one = {0};
			int rc = scalar_text(p, col, e, sem, &one, &unchanged,
			                     err);

			if (rc == 0 && unchanged)
				sb_array_quoted(sb, p->placeholder,
				                p->placeholder_len);
			else if (rc == 0)
				sb_array_quoted(sb, one.data ? one.data : "",
				                one.len);
			if (one.oom)
				sb->oom = true;
			free(one.data);
			if (rc < 0)
				return -1;
		}
	}
	sb_putc(sb, '}');
	return 0;
}

static const json_t *
field_schema(const json_t *fields, const char *name)
{
	size_t i;

	if (!json_is_array(fields))
		return NULL;
	for (i = 0; i < json_array_size(fields); i++) {
		const json_t *f = json_array_get(fields, i);
		const char *n = json_string_value(json_object_get(f, "field"));

		if (n != NULL && strcmp(n, name) == 0)
			return f;
	}
	return NULL;
}

/* before or after into columns, in the object's key order. */
static int
row_columns(zdm_cdc_debezium_parser *p, const json_t *row,
            const json_t *row_schema, const zdm_cdc_column **out, size_t *nout,
            zdm_error *err)
{
	const json_t *fields = json_object_get(row_schema, "fields");
	zdm_cdc_column *cols;
	size_t n = json_object_size(row), i = 0;
	void *it;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	cols = arena_alloc(&p->arena, n * sizeof(*cols));
	if (cols == NULL)
		goto oom;
	for (it = json_object_iter((json_t *)row); it != NULL;
	     it = json_object_iter_next((json_t *)row, it)) {
		const char *key = json_object_iter_key(it);
		const json_t *v = json_object_iter_value(it);
		const json_t *fs = field_schema(fields, key);
		bool unchanged = false;

		cols[i].name = arena_strndup(&p->arena, key, strlen(key));
		cols[i].value = NULL;
		cols[i].unchanged_toast = false;
		if (cols[i].name == NULL)
			goto oom;
		if (!json_is_null(v)) {
			p->sb.len = 0;
			p->sb.oom = false;
			sb_putn(&p->sb, "", 0); /* data non-NULL from here */
			if (json_is_array(v)) {
				if (json_array_size(v) == 1 &&
				    json_is_string(json_array_get(v, 0)) &&
				    is_placeholder(
					    p,
					    json_string_value(
						    json_array_get(v, 0)),
					    json_string_length(
						    json_array_get(v, 0))))
					unchanged = true;
				else if (array_text(
						 p, key, v,
						 json_object_get(fs, "items"),
						 &p->sb, err) < 0)
					return -1;
			} else if (scalar_text(p, key, v, semantic_of(fs),
			                       &p->sb, &unchanged, err) < 0) {
				return -1;
			}
			if (p->sb.oom)
				goto oom;
			if (unchanged) {
				cols[i].unchanged_toast = true;
			} else {
				cols[i].value = arena_strndup(
					&p->arena, p->sb.data, p->sb.len);
				if (cols[i].value == NULL)
					goto oom;
			}
		} else if (semantic_of(fs) == SEM_DECIMAL ||
		           semantic_of(fs) == SEM_BITS) {
			/* refuse the setting even while this value is null */
			return scalar_text(p, key, v, semantic_of(fs), &p->sb,
			                   &unchanged, err);
		}
		i++;
	}
	*out = cols;
	*nout = n;
	return 0;
oom:
	zdm_error_set(err, "out of memory decoding a change");
	return -1;
}

/* The value at a dotted path, or NULL. */
static const json_t *
json_path(const json_t *v, const char *path)
{
	char key[256];

	while (v != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		path += n + (dot != NULL);
	}
	return v;
}

static int
optional_integer(const json_t *obj, const char *field, const char *label,
                 json_int_t *out, bool *present, zdm_error *err)
{
	const json_t *v = json_object_get(obj, field);

	*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v)) {
		zdm_error_set(err, "\"%s\" is not an integer", label);
		return -1;
	}
	*out = json_integer_value(v);
	*present = true;
	return 0;
}

static int
required_string(const json_t *obj, const char *field, const char *label,
                const char **out, zdm_error *err)
{
	const json_t *v = json_object_get(obj, field);

	if (v == NULL || json_is_null(v)) {
		zdm_error_set(err, "no \"%s\"", label);
		return -1;
	}
	if (!json_is_string(v)) {
		zdm_error_set(err, "\"%s\" is not a string", label);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

/* before/after: absent or null (NULL), else an object. */
static int
optional_row(const json_t *env, const char *field, const json_t **out,
             zdm_error *err)
{
	const json_t *v = json_object_get(env, field);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		zdm_error_set(err, "\"%s\" is not an object", field);
		return -1;
	}
	*out = v;
	return 0;
}

/* err's message behind a prefix, its hint kept. */
static void
error_prefix(zdm_error *err, const char *prefix)
{
	zdm_error e = *err;

	zdm_error_set(err, "%s%s", prefix, e.message);
	memcpy(err->hint, e.hint, sizeof(err->hint));
}

/*
 * A delete's old_cols from the Kafka message key, Debezium's key struct (the
 * table's primary key, or message.key.columns) with the JsonConverter's
 * schema or without.  *nout is 0 when there is no key: none, null, a null
 * payload, an empty struct (a table without a key).  Fields that are not
 * columns of the before image are left out: a routing transform adds its
 * own (__dbz__physicalTableIdentifier).
 */
static int
key_columns(zdm_cdc_debezium_parser *p, const void *key, size_t key_len,
            const json_t *before, const zdm_cdc_column **out, size_t *nout,
            zdm_error *err)
{
	const json_t *k, *schema = NULL;
	const zdm_cdc_column *cols;
	zdm_cdc_column *kept;
	json_error_t jerr;
	json_t *root;
	size_t n, i, nkept = 0;
	int rc = -1;

	*out = NULL;
	*nout = 0;
	if (key == NULL || key_len == 0)
		return 0;
	root = json_loadb(key, key_len,
	                  JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		zdm_error_set(err,
		              "message key: not JSON: %s (line %d, column %d)",
		              jerr.text, jerr.line, jerr.column);
		snprintf(
			err->hint, sizeof(err->hint),
			"zdm reads a delete's key columns from the message key "
			"as Debezium writes it with the JsonConverter "
			"(key.converter)");
		return -1;
	}
	k = root;
	if (json_is_object(root) && json_object_get(root, "payload") &&
	    json_object_get(root, "schema")) {
		k = json_object_get(root, "payload");
		schema = json_object_get(root, "schema");
	}
	if (json_is_null(k)) {
		rc = 0;
		goto cleanup;
	}
	if (!json_is_object(k)) {
		zdm_error_set(err, "message key: %s is not a JSON object",
		              k == root ? "the key" : "\"payload\"");
		goto cleanup;
	}
	if (row_columns(p, k, schema, &cols, &n, err) < 0) {
		error_prefix(err, "message key: ");
		goto cleanup;
	}
	/* arena memory of ours: filtered in place */
	kept = (zdm_cdc_column *)cols;
	for (i = 0; i < n; i++)
		if (before == NULL ||
		    json_object_get(before, cols[i].name) != NULL)
			kept[nkept++] = cols[i];
	if (n > 0 && nkept == 0) {
		zdm_error_set(err, "message key: no field of the key is a "
		                   "column of \"before\"");
		goto cleanup;
	}
	*out = nkept > 0 ? kept : NULL;
	*nout = nkept;
	rc = 0;
cleanup:
	json_decref(root);
	return rc;
}

static int
envelope_change(zdm_cdc_debezium_parser *p, const json_t *env,
                const json_t *schema, const void *key, size_t key_len,
                zdm_cdc_change *change, event_meta *meta, zdm_error *err)
{
	const json_t *opv, *source, *before, *after, *env_fields;
	const char *op, *s_schema, *s_table;
	json_int_t ts = 0, txid = 0;
	bool has_ts, has_txid;
	char q[80];

	opv = json_object_get(env, "op");
	if (opv == NULL) {
		zdm_error_set(err, "no \"op\": not a Debezium change event");
		snprintf(err->hint, sizeof(err->hint),
		         "zdm reads Debezium's change event envelope "
		         "(before, after, source, op); a connector with the "
		         "ExtractNewRecordState transform sends rows instead");
		return -1;
	}
	if (!json_is_string(opv)) {
		zdm_error_set(err, "\"op\" is not a string");
		return -1;
	}
	op = json_string_value(opv);
	if (strcmp(op, "c") == 0 || strcmp(op, "r") == 0)
		change->op = ZDM_CDC_INSERT;
	else if (strcmp(op, "u") == 0)
		change->op = ZDM_CDC_UPDATE;
	else if (strcmp(op, "d") == 0)
		change->op = ZDM_CDC_DELETE;
	else if (strcmp(op, "t") == 0)
		change->op = ZDM_CDC_TRUNCATE;
	else {
		zdm_error_set(err, "unknown op %s",
		              msg_quote(op, q, sizeof(q)));
		return -1;
	}

	source = json_object_get(env, "source");
	if (source == NULL || json_is_null(source)) {
		zdm_error_set(err, "no \"source\"");
		return -1;
	}
	if (!json_is_object(source)) {
		zdm_error_set(err, "\"source\" is not an object");
		return -1;
	}
	if (required_string(source, "schema", "source.schema", &s_schema, err) <
	            0 ||
	    required_string(source, "table", "source.table", &s_table, err) < 0)
		return -1;
	if (optional_integer(source, "txId", "source.txId", &txid, &has_txid,
	                     err) < 0)
		return -1;
	if (optional_integer(source, "ts_ms", "source.ts_ms", &ts, &has_ts,
	                     err) < 0)
		return -1;
	meta->ts_ms = has_ts ? ts : -1;
	if (optional_integer(env, "ts_ms", "ts_ms", &ts, &has_ts, err) < 0)
		return -1;
	if (meta->ts_ms < 0 && has_ts)
		meta->ts_ms = ts;

	if (optional_row(env, "before", &before, err) < 0 ||
	    optional_row(env, "after", &after, err) < 0)
		return -1;
	if ((change->op == ZDM_CDC_INSERT || change->op == ZDM_CDC_UPDATE) &&
	    after == NULL) {
		zdm_error_set(err, "no \"after\" for op \"%s\"", op);
		return -1;
	}
	if (change->op == ZDM_CDC_DELETE) {
		if (key_columns(p, key, key_len, before, &change->old_cols,
		                &change->nold, err) < 0)
			return -1;
		/* the before image of a key change's delete becomes the
		 * before image of the UPDATE it is merged into (dbz_take) */
		if (meta->move == MOVE_DELETE && before != NULL &&
		    row_columns(p, before,
		                field_schema(json_object_get(schema, "fields"),
		                             "before"),
		                &meta->before, &meta->nbefore, err) < 0)
			return -1;
		if (change->nold == 0 && before == NULL) {
			zdm_error_set(err, "no \"before\" for op \"d\"");
			return -1;
		}
	}

	change->schema = arena_strndup(&p->arena, s_schema, strlen(s_schema));
	change->table = arena_strndup(&p->arena, s_table, strlen(s_table));
	if (change->schema == NULL || change->table == NULL) {
		zdm_error_set(err, "out of memory decoding a change");
		return -1;
	}
	env_fields = json_object_get(schema, "fields");
	if (change->op != ZDM_CDC_TRUNCATE) {
		/* a delete with a key has its old_cols already */
		if (before != NULL &&
		    !(change->op == ZDM_CDC_DELETE && change->nold > 0) &&
		    row_columns(p, before, field_schema(env_fields, "before"),
		                &change->old_cols, &change->nold, err) < 0)
			return -1;
		if (after != NULL && change->op != ZDM_CDC_DELETE &&
		    row_columns(p, after, field_schema(env_fields, "after"),
		                &change->new_cols, &change->nnew, err) < 0)
			return -1;
	}

	change->xid = has_txid ? (uint32_t)txid : 0;
	change->own_write = has_txid && xids_has(p->own, (uint32_t)txid);
	if (!change->own_write && p->own_origin_field != NULL) {
		const char *mark =
			json_string_value(json_path(env, p->own_origin_field));

		change->own_write =
			mark != NULL && strncmp(mark, "zdm_", 4) == 0;
	}
	return 1;
}

/* 1 a change, 0 none (tombstone), -1 err; allocates from p->arena. */
static int
parser_parse(zdm_cdc_debezium_parser *p, const void *key, size_t key_len,
             const void *value, size_t len, zdm_cdc_change *change,
             event_meta *meta, zdm_error *err)
{
	const json_t *env, *schema = NULL;
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(change, 0, sizeof(*change));
	meta->ts_ms = -1;
	meta->before = NULL;
	meta->nbefore = 0;
	if (value == NULL || len == 0)
		return 0;
	root = json_loadb(value, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                  &jerr);
	if (root == NULL) {
		zdm_error_set(err, "not JSON: %s (line %d, column %d)",
		              jerr.text, jerr.line, jerr.column);
		return -1;
	}
	env = root;
	if (json_is_object(root) && json_object_get(root, "payload") &&
	    json_object_get(root, "schema")) {
		/* the JsonConverter with schemas.enable=true */
		env = json_object_get(root, "payload");
		schema = json_object_get(root, "schema");
		if (!json_is_object(schema))
			schema = NULL;
	}
	if (json_is_null(env)) {
		rc = 0;
	} else if (!json_is_object(env)) {
		zdm_error_set(err, "%s is not a JSON object",
		              env == root ? "the value" : "\"payload\"");
		rc = -1;
	} else {
		rc = envelope_change(p, env, schema, key, key_len, change, meta,
		                     err);
	}
	json_decref(root);
	return rc;
}

static void
parser_destroy(zdm_cdc_debezium_parser *p)
{
	if (p == NULL)
		return;
	arena_free(&p->arena);
	free(p->sb.data);
	free(p->elem.data);
	free(p->own);
	free(p->own_origin_field);
	free(p->placeholder);
	free(p);
}

static zdm_cdc_debezium_parser *
parser_create(const zdm_cdc_debezium_opts *opts, zdm_error *err)
{
	zdm_cdc_debezium_parser *p = calloc(1, sizeof(*p));
	const char *ph = opts && opts->unavailable_placeholder
	                         ? opts->unavailable_placeholder
	                         : DBZ_DEFAULT_PLACEHOLDER;

	if (p == NULL)
		goto oom;
	p->placeholder = strdup(ph);
	if (p->placeholder == NULL)
		goto oom;
	p->placeholder_len = strlen(ph);
	if (opts && opts->own_origin_field && opts->own_origin_field[0]) {
		p->own_origin_field = strdup(opts->own_origin_field);
		if (p->own_origin_field == NULL)
			goto oom;
	}
	return p;
oom:
	parser_destroy(p);
	zdm_error_set(err, "out of memory");
	return NULL;
}

static void
parser_mark_own(zdm_cdc_debezium_parser *p, uint64_t xid)
{
	if (p->own == NULL) {
		p->own = calloc(1, sizeof(*p->own));
		if (p->own == NULL)
			return; /* unmarked: convergence still holds */
	}
	xids_add(p->own, (uint32_t)xid);
}

int
zdm_cdc_debezium_parser_new(zdm_cdc_debezium_parser **out,
                            const zdm_cdc_debezium_opts *opts, zdm_error *err)
{
	*out = parser_create(opts, err);
	return *out ? 0 : -1;
}

void
zdm_cdc_debezium_parser_own_xid(zdm_cdc_debezium_parser *p, uint64_t xid)
{
	parser_mark_own(p, xid);
}

int
zdm_cdc_debezium_parse(zdm_cdc_debezium_parser *p, const void *value,
                       size_t len, zdm_cdc_change *change, zdm_error *err)
{
	return zdm_cdc_debezium_parse_message(p, NULL, 0, value, len, change,
	                                      err);
}

int
zdm_cdc_debezium_parse_message(zdm_cdc_debezium_parser *p, const void *key,
                               size_t key_len, const void *value, size_t len,
                               zdm_cdc_change *change, zdm_error *err)
{
	event_meta meta;

	arena_reset(&p->arena);
	meta.move = MOVE_NONE;
	return parser_parse(p, key, key_len, value, len, change, &meta, err);
}

void
zdm_cdc_debezium_parser_free(zdm_cdc_debezium_parser *p)
{
	parser_destroy(p);
}

/* ---- the source ----------------------------------------------------------- */

/* A message handed out (or skipped) and not yet acknowledged. */
typedef struct pending {
	int64_t offset;
	int64_t ts_ms; /* -1 unknown */
	bool skip;     /* a tombstone: nothing to apply */
} pending;

typedef struct part_state {
	int32_t partition;
	bool owned; /* assigned to us now (dbz_rebalance) */
	/* the group's committed offset as last known: read at assignment,
	 * moved by our commits; -1 none */
	int64_t committed;
	int64_t delivered_next; /* highest offset handed out + 1; -1 none */
	int64_t acked_ts_ms;    /* ts of the last acknowledged change; -1 */
	pending *q;             /* in offset order */
	size_t qhead, qlen, qcap;
	/* the index in the batch being built of this partition's last
	 * change; -1 none (dbz_take: a key change's create meets its
	 * delete there) */
	long last_change;
} part_state;

/* Per change of the batch: is it a key change's delete still waiting for
 * its create, and that delete's whole before image. */
typedef struct move_state {
	bool open;
	const zdm_cdc_column *before;
	size_t nbefore;
} move_state;

typedef struct dbz_source {
	zdm_cdc_source base;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt; /* for metadata in lag */
	char *topic;
	zdm_cdc_debezium_parser *parser;
	zdm_cdc_change *changes;
	move_state *moves; /* beside changes, changes_cap of them */
	size_t nchanges, changes_cap;
	part_state *parts;
	size_t nparts, parts_cap;
	bool failed; /* sticky: every next() returns failure */
	zdm_error failure;
	/* barriers (see the opening comment): fences oldest first, their
	 * LSNs and ends rising; fenced, the LSN of the last one reached */
	struct dbz_fence {
		uint64_t lsn;
		int32_t *partition;
		int64_t *end; /* -1: the partition was empty */
		int n;
	} fences[DBZ_FENCES];
	size_t fence_head, nfences;
	uint64_t fenced;
} dbz_source;

static part_state *
part_find(dbz_source *src, int32_t partition)
{
	size_t i;

	for (i = 0; i < src->nparts; i++)
		if (src->parts[i].partition == partition)
			return &src->parts[i];
	return NULL;
}

static part_state *
part_get(dbz_source *src, int32_t partition)
{
	part_state *ps = part_find(src, partition);

	if (ps != NULL)
		return ps;
	if (src->nparts == src->parts_cap) {
		size_t cap = src->parts_cap ? src->parts_cap * 2 : 8;
		part_state *parts = realloc(src->parts, cap * sizeof(*parts));

		if (parts == NULL)
			return NULL;
		src->parts = parts;
		src->parts_cap = cap;
	}
	ps = &src->parts[src->nparts++];
	memset(ps, 0, sizeof(*ps));
	ps->owned = false;
	ps->partition = partition;
	ps->committed = -1;
	ps->delivered_next = -1;
	ps->acked_ts_ms = -1;
	ps->last_change = -1;
	return ps;
}

static int
part_push(part_state *ps, int64_t offset, int64_t ts_ms, bool skip)
{
	if (ps->qhead > 0 && ps->qhead + ps->qlen == ps->qcap) {
		memmove(ps->q, ps->q + ps->qhead, ps->qlen * sizeof(*ps->q));
		ps->qhead = 0;
	}
	if (ps->qhead + ps->qlen == ps->qcap) {
		size_t cap = ps->qcap ? ps->qcap * 2 : 64;
		pending *q = realloc(ps->q, cap * sizeof(*q));

		if (q == NULL)
			return -1;
		ps->q = q;
		ps->qcap = cap;
	}
	ps->q[ps->qhead + ps->qlen].offset = offset;
	ps->q[ps->qhead + ps->qlen].ts_ms = ts_ms;
	ps->q[ps->qhead + ps->qlen].skip = skip;
	ps->qlen++;
	return 0;
}

static pending *
part_head(part_state *ps)
{
	return ps->qlen > 0 ? &ps->q[ps->qhead] : NULL;
}

static void
part_pop(part_state *ps)
{
	pending *h = part_head(ps);

	if (!h->skip && h->ts_ms >= 0)
		ps->acked_ts_ms = h->ts_ms;
	ps->qhead++;
	ps->qlen--;
	if (ps->qlen == 0)
		ps->qhead = 0;
}

static int
dbz_commit(dbz_source *src, part_state *ps, int64_t offset, bool async,
           zdm_error *err)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t e;

	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, src->topic, ps->partition)
		->offset = offset;
	e = rd_kafka_commit(src->rk, list, async ? 1 : 0);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR && !async)
		e = list->elems[0].err;
	rd_kafka_topic_partition_list_destroy(list);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (err != NULL)
			zdm_error_set(err,
			              "topic %s partition %" PRId32
			              ": committing offset %" PRId64 ": %s",
			              src->topic, ps->partition, offset,
			              rd_kafka_err2str(e));
		return -1;
	}
	if (offset > ps->committed)
		ps->committed = offset;
	return 0;
}

/*
 * Tombstones at the head of a partition's queue have nothing waiting before
 * them: commit past them now (asynchronously; a failure only means they are
 * read again), so an idle topic ending in a delete shows no backlog.
 */
static void
dbz_commit_skips(dbz_source *src)
{
	size_t i;

	for (i = 0; i < src->nparts; i++) {
		part_state *ps = &src->parts[i];
		int64_t upto = -1;
		pending *h;

		if (!ps->owned)
			continue;
		while ((h = part_head(ps)) != NULL && h->skip) {
			upto = h->offset;
			part_pop(ps);
		}
		if (upto >= 0 && upto + 1 > ps->committed)
			(void)dbz_commit(src, ps, upto + 1, true, NULL);
	}
}

static void
dbz_fail(dbz_source *src, zdm_error *perr, const rd_kafka_message_t *m)
{
	zdm_error e;

	zdm_error_set(&e,
	              "topic %s partition %" PRId32 " offset %" PRId64 ": %s",
	              src->topic, m->partition, m->offset, perr->message);
	memcpy(e.hint, perr->hint, sizeof(e.hint));
	src->failure = e;
	src->failed = true;
}

static bool
dbz_error_is_permanent(rd_kafka_t *rk, rd_kafka_resp_err_t e)
{
	char buf[8];

	if (e == RD_KAFKA_RESP_ERR__FATAL ||
	    rd_kafka_fatal_error(rk, buf, sizeof(buf)) !=
	            RD_KAFKA_RESP_ERR_NO_ERROR)
		return true;
	switch (e) {
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true;
	default:
		/* brokers down, a topic not created yet (Debezium creates it
		 * at the table's first change), timeouts: librdkafka retries */
		return false;
	}
}

/*
 * The offset a partition was to be read from is not in the topic
 * (auto.offset.reset=error): messages zdm never read are gone, most likely
 * to retention.  Starting elsewhere would skip them without a word.
 */
static void
dbz_offset_lost(dbz_source *src, const rd_kafka_message_t *m)
{
	part_state *ps = part_find(src, m->partition);
	int64_t lo = -1, hi = -1;
	char what[96];
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (ps != NULL && m->offset == ps->committed)
		snprintf(what, sizeof(what), "the committed offset %" PRId64,
		         m->offset);
	else
		snprintf(what, sizeof(what),
		         "offset %" PRId64 ", the next to read,", m->offset);
	if (m->offset >= 0)
		e = rd_kafka_query_watermark_offsets(src->rk, src->topic,
		                                     m->partition, &lo, &hi,
		                                     DBZ_TIMEOUT_MS);
	if (m->offset < 0 || e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s", src->topic,
		              m->partition, rd_kafka_message_errstr(m));
	} else if (m->offset < lo) {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s"
		              " is no longer in the topic (the earliest "
		              "available is %" PRId64
		              "): changes were lost to retention; start the "
		              "migration over",
		              src->topic, m->partition, what, lo);
		snprintf(src->failure.hint, sizeof(src->failure.hint),
		         "the topic's retention deleted changes zdm had not "
		         "read; keep them (retention.ms, retention.bytes) "
		         "longer than zdm may be stopped");
	} else {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s"
		              " is out of range (the earliest available is "
		              "%" PRId64 ", the end %" PRId64
		              "): was the topic recreated? changes may be "
		              "lost; start the migration over",
		              src->topic, m->partition, what, lo, hi);
	}
	src->failed = true;
}

/* Debezium marks the two events of a primary-key change by headers. */
static key_move
dbz_key_move(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *v;
	size_t n;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return MOVE_NONE;
	if (rd_kafka_header_get_last(hdrs, DBZ_HEADER_NEWKEY, &v, &n) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return MOVE_DELETE;
	if (rd_kafka_header_get_last(hdrs, DBZ_HEADER_OLDKEY, &v, &n) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return MOVE_CREATE;
	return MOVE_NONE;
}

/*
 * A key change's create, c, whose delete is this partition's last change of
 * the batch (only its tombstone between them) and from the same
 * transaction: the two become the UPDATE the database saw, the delete's
 * before image and c's after image, at c's position (acknowledging it
 * covers the delete).  false: c stays an INSERT.
 */
static bool
dbz_merge_move(dbz_source *src, part_state *ps, const zdm_cdc_change *c)
{
	zdm_cdc_change *d;
	move_state *mv;

	if (ps->last_change < 0 || (size_t)ps->last_change >= src->nchanges)
		return false;
	d = &src->changes[ps->last_change];
	mv = &src->moves[ps->last_change];
	if (!mv->open || d->op != ZDM_CDC_DELETE || d->xid != c->xid ||
	    c->xid == 0 || strcmp(d->schema, c->schema) != 0 ||
	    strcmp(d->table, c->table) != 0)
		return false;
	d->op = ZDM_CDC_UPDATE;
	d->old_cols = mv->before;
	d->nold = mv->nbefore;
	d->new_cols = c->new_cols;
	d->nnew = c->nnew;
	d->position = c->position;
	d->own_write = d->own_write || c->own_write;
	mv->open = false;
	return true;
}

/* Is a key change's delete the last change of its partition in the batch,
 * its create perhaps not fetched yet? */
static bool
dbz_move_open(const dbz_source *src)
{
	size_t i;

	for (i = 0; i < src->nparts; i++) {
		const part_state *ps = &src->parts[i];

		if (ps->owned && ps->last_change >= 0 &&
		    (size_t)ps->last_change < src->nchanges &&
		    src->moves[ps->last_change].open)
			return true;
	}
	return false;
}

/* One message: 0 taken (or skipped), -1 the source failed. */
static int
dbz_take(dbz_source *src, const rd_kafka_message_t *m)
{
	part_state *ps;
	zdm_cdc_change change;
	event_meta meta;
	zdm_error perr;
	int rc;

	if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
		dbz_offset_lost(src, m);
		return -1;
	}
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
		    !dbz_error_is_permanent(src->rk, m->err))
			return 0;
		zdm_error_set(&src->failure, "topic %s: %s", src->topic,
		              rd_kafka_message_errstr(m));
		src->failed = true;
		return -1;
	}
	ps = part_find(src, m->partition);
	if (ps == NULL || !ps->owned)
		return 0; /* fetched before a revoke: its new owner reads it */
	zdm_error_clear(&perr);
	meta.move = dbz_key_move(m);
	rc = parser_parse(src->parser, m->key, m->key_len, m->payload, m->len,
	                  &change, &meta, &perr);
	if (rc < 0) {
		dbz_fail(src, &perr, m);
		return -1;
	}
	if (meta.ts_ms < 0) {
		rd_kafka_timestamp_type_t tstype;
		int64_t kts = rd_kafka_message_timestamp(m, &tstype);

		meta.ts_ms = kts >= 0 ? kts : -1;
	}
	if (m->offset + 1 > ps->delivered_next)
		ps->delivered_next = m->offset + 1;
	/* already acknowledged (read again after a rebalance): hand it out,
	 * at least once, but there is nothing left to acknowledge */
	if (m->offset >= ps->committed &&
	    part_push(ps, m->offset, meta.ts_ms, rc == 0) < 0)
		goto oom;
	if (rc == 0)
		return 0;
	change.position.partition = m->partition;
	change.position.offset = (uint64_t)m->offset;
	if (meta.move == MOVE_CREATE && change.op == ZDM_CDC_INSERT &&
	    dbz_merge_move(src, ps, &change))
		return 0;
	if (src->nchanges == src->changes_cap) {
		size_t cap = src->changes_cap ? src->changes_cap * 2 : 64;
		zdm_cdc_change *c = realloc(src->changes, cap * sizeof(*c));
		move_state *mv;

		if (c == NULL)
			goto oom;
		src->changes = c;
		mv = realloc(src->moves, cap * sizeof(*mv));
		if (mv == NULL)
			goto oom;
		src->moves = mv;
		src->changes_cap = cap;
	}
	src->moves[src->nchanges].open = meta.move == MOVE_DELETE &&
	                                 change.op == ZDM_CDC_DELETE &&
	                                 meta.nbefore > 0;
	src->moves[src->nchanges].before = meta.before;
	src->moves[src->nchanges].nbefore = meta.nbefore;
	ps->last_change = (long)src->nchanges;
	src->changes[src->nchanges++] = change;
	return 0;
oom:
	zdm_error_set(&src->failure, "topic %s: out of memory", src->topic);
	src->failed = true;
	return -1;
}

static int
dbz_next(zdm_cdc_source *base, const zdm_cdc_change **changes, size_t *n,
         int timeout_ms, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	double deadline = zdm_now() + (timeout_ms > 0 ? timeout_ms : 0) / 1e3;
	double pair_deadline;
	int taken = 0;
	size_t i;

	*changes = NULL;
	*n = 0;
	if (src->failed) {
		*err = src->failure;
		return -1;
	}
	arena_reset(&src->parser->arena);
	src->nchanges = 0;
	for (i = 0; i < src->nparts; i++)
		src->parts[i].last_change = -1;
	while (taken < DBZ_BATCH_MAX) {
		int wait = 0;
		rd_kafka_message_t *m;

		if (src->nchanges == 0) {
			double left = deadline - zdm_now();

			wait = left > 0 ? (int)(left * 1e3 + 0.5) : 0;
		}
		m = rd_kafka_consumer_poll(src->rk, wait);
		if (m == NULL) {
			if (src->nchanges > 0 || wait == 0)
				break;
			continue;
		}
		taken++;
		if (dbz_take(src, m) < 0) {
			rd_kafka_message_destroy(m);
			break;
		}
		rd_kafka_message_destroy(m);
	}
	/* Debezium sends a key change's delete, tombstone and create back to
	 * back: a batch that ends between them waits a little for the
	 * create, so the two can be merged */
	pair_deadline = zdm_now() + DBZ_MOVE_WAIT_MS / 1e3;
	while (!src->failed && dbz_move_open(src) &&
	       zdm_now() < pair_deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(src->rk, 10);

		if (m == NULL)
			continue;
		(void)dbz_take(src, m);
		rd_kafka_message_destroy(m);
	}
	dbz_commit_skips(src);
	if (src->failed && src->nchanges == 0) {
		*err = src->failure;
		return -1;
	}
	/* changes before a malformed event go out first; the failure
	 * follows on the next call */
	*changes = src->changes;
	*n = src->nchanges;
	return 0;
}

static int
dbz_ack(zdm_cdc_source *base, zdm_cdc_position pos, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	part_state *ps = NULL;
	int64_t off, upto;
	pending *h;
	size_t i;

	for (i = 0; i < src->nparts; i++)
		if (src->parts[i].partition == pos.partition)
			ps = &src->parts[i];
	/* revoked: its new owner reads it again from the committed offset,
	 * and a commit here would move that owner's offset */
	if (ps != NULL && !ps->owned)
		return 0;
	off = pos.offset < (uint64_t)INT64_MAX ? (int64_t)pos.offset : -2;
	upto = off;
	if (ps == NULL || off < 0 || off + 1 > ps->delivered_next) {
		zdm_error_set(err,
		              "topic %s partition %" PRId32
		              ": ack of offset %" PRIu64
		              ", which was never handed out",
		              src->topic, pos.partition, pos.offset);
		return -1;
	}
	while ((h = part_head(ps)) != NULL && h->offset <= off)
		part_pop(ps);
	/* tombstones right after the acknowledged change go with it */
	while ((h = part_head(ps)) != NULL && h->skip) {
		upto = h->offset;
		part_pop(ps);
	}
	if (upto + 1 <= ps->committed)
		return 0;
	return dbz_commit(src, ps, upto + 1, false, err);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The topic's metadata, for lag and the fences: 1 with *md (its one topic
 * is md->topics[0]; the caller destroys it), 0 when the topic does not
 * exist yet (nothing was ever written to it), -1 with err.
 */
static int
dbz_topic_metadata(dbz_source *src, const struct rd_kafka_metadata **md,
                   zdm_error *err)
{
	rd_kafka_resp_err_t e;

	*md = NULL;
	e = rd_kafka_metadata(src->rk, 0, src->rkt, md, DBZ_TIMEOUT_MS);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: reading metadata: %s", src->topic,
		              rd_kafka_err2str(e));
		return -1;
	}
	e = (*md)->topic_cnt == 1 ? (*md)->topics[0].err
	                          : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 1;
	rd_kafka_metadata_destroy(*md);
	*md = NULL;
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		return 0;
	zdm_error_set(err, "topic %s: %s", src->topic, rd_kafka_err2str(e));
	return -1;
}

static int
dbz_lag(zdm_cdc_source *base, double *seconds, uint64_t *backlog,
        zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *list = NULL;
	rd_kafka_resp_err_t e;
	int64_t now = wall_ms();
	uint64_t total = 0;
	double worst = 0;
	int i, rc = -1;

	*seconds = 0;
	*backlog = 0;
	switch (dbz_topic_metadata(src, &md, err)) {
	case -1:
		return -1;
	case 0:
		return 0; /* no topic yet: no change yet */
	}
	list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(
			list, src->topic, md->topics[0].partitions[i].id);
	e = rd_kafka_committed(src->rk, list, DBZ_TIMEOUT_MS);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: reading committed offsets: %s",
		              src->topic, rd_kafka_err2str(e));
		goto cleanup;
	}
	for (i = 0; i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		int64_t lo = -1, hi = -1, from;
		part_state *ps = NULL;
		size_t k;

		if (rd_kafka_get_watermark_offsets(src->rk, src->topic,
		                                   tp->partition, &lo, &hi) !=
		            RD_KAFKA_RESP_ERR_NO_ERROR ||
		    lo < 0 || hi < 0) {
			e = rd_kafka_query_watermark_offsets(
				src->rk, src->topic, tp->partition, &lo, &hi,
				DBZ_TIMEOUT_MS);
			if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
				zdm_error_set(err,
				              "topic %s partition %" PRId32
				              ": reading watermarks: %s",
				              src->topic, tp->partition,
				              rd_kafka_err2str(e));
				goto cleanup;
			}
		}
		from = tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0
		               ? tp->offset
		               : lo;
		if (hi <= from)
			continue;
		total += (uint64_t)(hi - from);
		for (k = 0; k < src->nparts; k++)
			if (src->parts[k].partition == tp->partition)
				ps = &src->parts[k];
		if (ps != NULL) {
			int64_t ts = ps->acked_ts_ms;

			/* the oldest change waiting, else the last one done */
			for (k = ps->qhead; k < ps->qhead + ps->qlen; k++)
				if (!ps->q[k].skip && ps->q[k].ts_ms >= 0) {
					ts = ps->q[k].ts_ms;
					break;
				}
			if (ts >= 0 && (double)(now - ts) / 1e3 > worst)
				worst = (double)(now - ts) / 1e3;
		}
	}
	*backlog = total;
	*seconds = worst;
	rc = 0;
cleanup:
	if (list != NULL)
		rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_metadata_destroy(md);
	return rc;
}

static void
dbz_fence_drop(dbz_source *src)
{
	struct dbz_fence *f = &src->fences[src->fence_head];

	free(f->partition);
	free(f->end);
	f->partition = NULL;
	f->end = NULL;
	src->fence_head = (src->fence_head + 1) % DBZ_FENCES;
	src->nfences--;
}

/* Fences whose ends the committed offsets have reached: fenced moves up. */
static void
dbz_fences_check(dbz_source *src)
{
	while (src->nfences > 0) {
		struct dbz_fence *f = &src->fences[src->fence_head];
		int i;

		for (i = 0; i < f->n; i++) {
			part_state *ps;

			if (f->end[i] < 0)
				continue;
			ps = part_find(src, f->partition[i]);
			if (ps == NULL || ps->committed < f->end[i])
				return; /* the later fences cannot be reached */
		}
		if (f->lsn > src->fenced)
			src->fenced = f->lsn;
		dbz_fence_drop(src);
	}
}

static void
dbz_close(zdm_cdc_source *base)
{
	dbz_source *src = (dbz_source *)base;
	size_t i;

	if (src == NULL)
		return;
	if (src->rkt != NULL)
		rd_kafka_topic_destroy(src->rkt);
	if (src->rk != NULL) {
		/* leave the group now rather than after the session timeout;
		 * nothing is committed here (auto commit is off) */
		rd_kafka_consumer_close(src->rk);
		rd_kafka_destroy(src->rk);
	}
	parser_destroy(src->parser);
	for (i = 0; i < src->nparts; i++)
		free(src->parts[i].q);
	free(src->parts);
	free(src->changes);
	free(src->moves);
	free(src->topic);
	while (src->nfences > 0)
		dbz_fence_drop(src);
	free(src);
}

static const zdm_cdc_source_ops dbz_ops = {
	.next = dbz_next,
	.ack = dbz_ack,
	.lag = dbz_lag,
	.close = dbz_close,
};

/*
 * Assigned partitions start at the group's committed offset, read here; one
 * with none (a new group) starts at its beginning, the connector's
 * snapshot.  That is explicit because auto.offset.reset is "error": a
 * committed offset that is no longer in the topic must stop zdm
 * (dbz_offset_lost), not send it to the earliest message left.
 */
static void
dbz_assigned(dbz_source *src, rd_kafka_t *rk,
             rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, DBZ_TIMEOUT_MS);
	int i;

	for (i = 0; i < parts->cnt && e == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			e = parts->elems[i].err;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure,
		              "topic %s: reading the group's committed "
		              "offsets: %s",
		              src->topic, rd_kafka_err2str(e));
		src->failed = true;
	}
	for (i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		part_state *ps = part_get(src, tp->partition);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			tp->offset = RD_KAFKA_OFFSET_INVALID;
			continue;
		}
		if (ps == NULL) {
			zdm_error_set(&src->failure, "topic %s: out of memory",
			              src->topic);
			src->failed = true;
			tp->offset = RD_KAFKA_OFFSET_INVALID;
			continue;
		}
		ps->owned = true;
		ps->committed = tp->offset >= 0 ? tp->offset : -1;
		if (tp->offset < 0)
			tp->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
}

/*
 * A revoked partition is another member's now (or ours again after the
 * rebalance, from the committed offset).  What of it was handed out and not
 * acknowledged, or gathered into the batch next() is building and not
 * handed out yet, its owner reads again from the committed offset: the
 * batch drops it, and an ack for it commits nothing (dbz_ack).
 */
static void
dbz_revoked(dbz_source *src, const rd_kafka_topic_partition_list_t *parts)
{
	size_t i, kept = 0;
	int k;

	for (k = 0; k < parts->cnt; k++) {
		part_state *ps = part_find(src, parts->elems[k].partition);

		if (ps != NULL)
			ps->owned = false;
	}
	for (i = 0; i < src->nchanges; i++) {
		part_state *ps =
			part_find(src, src->changes[i].position.partition);

		if (ps != NULL && ps->owned) {
			src->moves[kept] = src->moves[i];
			src->changes[kept++] = src->changes[i];
		}
	}
	src->nchanges = kept;
	/* the indexes moved: a key change split by the revoke stays split */
	for (i = 0; i < src->nparts; i++)
		src->parts[i].last_change = -1;
}

/*
 * Partitions come and go with the group.  Whatever of a partition was
 * handed out and not acknowledged is read again from the committed offset
 * when it is assigned (to us or another member), so its queue starts over.
 */
static void
dbz_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
              rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dbz_source *src = opaque;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
	int i;

	for (i = 0; i < parts->cnt; i++) {
		part_state *ps = part_find(src, parts->elems[i].partition);

		if (ps != NULL) {
			ps->qhead = 0;
			ps->qlen = 0;
		}
	}
	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		dbz_assigned(src, rk, parts);
		if (coop)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			ae = rd_kafka_assign(rk, parts);
	} else {
		dbz_revoked(src, parts);
		if (coop)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			ae = rd_kafka_assign(rk, NULL);
	}
	if (error != NULL) {
		zdm_error_set(&src->failure, "topic %s: rebalance: %s",
		              src->topic, rd_kafka_error_string(error));
		src->failed = true;
		rd_kafka_error_destroy(error);
	} else if (ae != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure, "topic %s: rebalance: %s",
		              src->topic, rd_kafka_err2str(ae));
		src->failed = true;
	}
}

/* Settings that are zdm's: a user value must say what zdm sets anyway. */
static const struct {
	const char *key;
	const char *allowed[3];
	const char *why;
} dbz_owned_conf[] = {
	{"group.id", {NULL}, "use the group_id option"},
	{"enable.auto.commit",
         {"false", NULL},
         "zdm commits offsets only once changes are applied"},
	{"enable.auto.offset.store",
         {"false", NULL},
         "zdm commits offsets only once changes are applied"},
	{"auto.offset.reset",
         {"error", NULL},
         "zdm starts a new group at the topic's beginning itself, and a "
         "committed offset no longer in the topic must stop it"},
};

static bool
conf_is_secret(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") ||
	       strstr(key, "key") || strstr(key, "sasl") ||
	       strstr(key, "oauth") || strstr(key, "jaas");
}

static int
dbz_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
             zdm_error *err)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		if (conf_is_secret(key))
			zdm_error_set(err, "kafka_conf %s: invalid setting",
			              key);
		else
			zdm_error_set(err, "kafka_conf %s: %s", key, errstr);
		return -1;
	}
	return 0;
}

static int
dbz_conf_user(rd_kafka_conf_t *conf, const char *entry, bool *has_bootstrap,
              zdm_error *err)
{
	const char *eq = strchr(entry, '=');
	char key[256];
	size_t i, n;

	if (eq == NULL || eq == entry || (size_t)(eq - entry) >= sizeof(key)) {
		char q[80];

		zdm_error_set(err, "kafka_conf entry %s: expected key=value",
		              msg_quote(conf_is_secret(entry) ? "..." : entry,
		                        q, sizeof(q)));
		return -1;
	}
	n = (size_t)(eq - entry);
	memcpy(key, entry, n);
	key[n] = '\0';
	for (i = 0; i < sizeof(dbz_owned_conf) / sizeof(*dbz_owned_conf); i++) {
		size_t a;
		bool ok = false;

		if (strcmp(key, dbz_owned_conf[i].key) != 0)
			continue;
		for (a = 0; a < 3 && dbz_owned_conf[i].allowed[a]; a++)
			if (strcmp(eq + 1, dbz_owned_conf[i].allowed[a]) == 0)
				ok = true;
		if (!ok) {
			zdm_error_set(err,
			              "kafka_conf %s=%s is not allowed: %s",
			              key, eq + 1, dbz_owned_conf[i].why);
			return -1;
		}
	}
	if (strcmp(key, "bootstrap.servers") == 0 ||
	    strcmp(key, "metadata.broker.list") == 0 ||
	    strcmp(key, "test.mock.num.brokers") == 0)
		*has_bootstrap = true;
	return dbz_conf_set(conf, key, eq + 1, err);
}

int
zdm_cdc_debezium_open(zdm_cdc_source **out, const zdm_cdc_debezium_opts *opts,
                      zdm_error *err)
{
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *subs;
	rd_kafka_resp_err_t e;
	dbz_source *src = NULL;
	bool has_bootstrap = false;
	char errstr[512];
	size_t i;

	*out = NULL;
	if (opts == NULL || opts->topic == NULL || opts->topic[0] == '\0') {
		zdm_error_set(err, "debezium source: no topic");
		return -1;
	}
	if (opts->group_id == NULL || opts->group_id[0] == '\0') {
		zdm_error_set(err, "debezium source: no consumer group");
		return -1;
	}
	src = calloc(1, sizeof(*src));
	if (src == NULL)
		goto oom;
	src->base.ops = &dbz_ops;
	src->topic = strdup(opts->topic);
	if (src->topic == NULL)
		goto oom;
	src->parser = parser_create(opts, err);
	if (src->parser == NULL)
		goto fail;

	conf = rd_kafka_conf_new();
	if (dbz_conf_set(conf, "client.id", "zdm", err) < 0)
		goto fail;
	for (i = 0; opts->kafka_conf && opts->kafka_conf[i]; i++)
		if (dbz_conf_user(conf, opts->kafka_conf[i], &has_bootstrap,
		                  err) < 0)
			goto fail;
	if (!has_bootstrap) {
		zdm_error_set(err, "kafka_conf has no bootstrap.servers");
		goto fail;
	}
	if (dbz_conf_set(conf, "group.id", opts->group_id, err) < 0 ||
	    dbz_conf_set(conf, "enable.auto.commit", "false", err) < 0 ||
	    dbz_conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
	    dbz_conf_set(conf, "auto.offset.reset", "error", err) < 0)
		goto fail;
	rd_kafka_conf_set_opaque(conf, src);
	rd_kafka_conf_set_rebalance_cb(conf, dbz_rebalance);

	src->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (src->rk == NULL) {
		zdm_error_set(err, "creating the Kafka consumer: %s", errstr);
		goto fail;
	}
	conf = NULL; /* the consumer owns it now */
	rd_kafka_poll_set_consumer(src->rk);
	src->rkt = rd_kafka_topic_new(src->rk, src->topic, NULL);
	if (src->rkt == NULL) {
		zdm_error_set(err, "topic %s: %s", src->topic,
		              rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, src->topic,
	                                  RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(src->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: subscribing: %s", src->topic,
		              rd_kafka_err2str(e));
		goto fail;
	}
	*out = &src->base;
	return 0;
oom:
	zdm_error_set(err, "out of memory");
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	if (src != NULL)
		dbz_close(&src->base);
	return -1;
}

void
zdm_cdc_debezium_own_xid(zdm_cdc_source *base, uint64_t xid)
{
	dbz_source *src = (dbz_source *)base;

	assert(base->ops == &dbz_ops);
	parser_mark_own(src->parser, xid);
}

int
zdm_cdc_debezium_fence(zdm_cdc_source *base, uint64_t lsn, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	const struct rd_kafka_metadata *md = NULL;
	struct dbz_fence f = {lsn, NULL, NULL, 0};
	rd_kafka_resp_err_t e;
	int i, rc = -1;

	assert(base->ops == &dbz_ops);
	if (lsn <= src->fenced ||
	    (src->nfences > 0 &&
	     src->fences[(src->fence_head + src->nfences - 1) % DBZ_FENCES]
	                     .lsn >= lsn))
		return 0; /* nothing newer to mark */
	switch (dbz_topic_metadata(src, &md, err)) {
	case -1:
		return -1;
	case 0:
		/* no topic: the connector has written no change of the table,
		 * so none before lsn is waiting */
		src->fenced = lsn;
		return 0;
	}
	f.n = md->topics[0].partition_cnt;
	f.partition = calloc(f.n > 0 ? (size_t)f.n : 1, sizeof(*f.partition));
	f.end = calloc(f.n > 0 ? (size_t)f.n : 1, sizeof(*f.end));
	if (f.partition == NULL || f.end == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < f.n; i++) {
		int64_t lo = -1, hi = -1;

		f.partition[i] = md->topics[0].partitions[i].id;
		e = rd_kafka_query_watermark_offsets(src->rk, src->topic,
		                                     f.partition[i], &lo, &hi,
		                                     DBZ_TIMEOUT_MS);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			zdm_error_set(err,
			              "topic %s partition %" PRId32
			              ": reading watermarks: %s",
			              src->topic, f.partition[i],
			              rd_kafka_err2str(e));
			goto cleanup;
		}
		f.end[i] = hi > lo ? hi : -1;
	}
	if (src->nfences == DBZ_FENCES)
		dbz_fence_drop(src); /* a later fence covers it */
	src->fences[(src->fence_head + src->nfences) % DBZ_FENCES] = f;
	src->nfences++;
	f.partition = NULL;
	f.end = NULL;
	dbz_fences_check(src);
	rc = 0;
cleanup:
	free(f.partition);
	free(f.end);
	rd_kafka_metadata_destroy(md);
	return rc;
}

uint64_t
zdm_cdc_debezium_fenced(zdm_cdc_source *base)
{
	dbz_source *src = (dbz_source *)base;

	assert(base->ops == &dbz_ops);
	dbz_fences_check(src);
	return src->fenced;
}
