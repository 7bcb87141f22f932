/*
 * test_debezium.c -- the debezium CDC source (runtime/cdc_debezium.c and
 * its event parser, runtime/cdc_debezium_parse.c).
 *
 * First the message parser alone: every op, both envelope shapes, value
 * conversion, the schema-driven types, own-write marks and the exact text of
 * every malformed-event error.  Then the source against one librdkafka mock
 * cluster (in this process, real protocol on loopback) shared by every case:
 * a producer writes Debezium JSON events, sources consume them through
 * consumer groups.  A group join costs the mock about 3 s, so the sources
 * of all cases are opened together and join in parallel; the cases that
 * restart a consumer reopen theirs together in a second round.  No database.
 *
 * Each check prints nothing when it passes; a failure prints the file:line,
 * what was expected and what came.  Exit 0 when every check passed.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cdc_debezium.h"
#include "cdc_debezium_parse.h"

static int checks, failures;

#define CHECK(cond) check((cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_STR(got, want) check_str((got), (want), __FILE__, __LINE__)
#define CHECK_INT(got, want)                                             \
	check((long long)(got) == (long long)(want), __FILE__, __LINE__, \
	      "%s = %lld, want %lld", #got, (long long)(got),            \
	      (long long)(want))

static void check(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
check(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok)
		return;
	failures++;
	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
check_str(const char *got, const char *want, const char *file, int line)
{
	check(got != NULL && want != NULL ? strcmp(got, want) == 0
	                                  : got == want,
	      file, line, "\n  got:  %s\n  want: %s", got ? got : "(null)",
	      want ? want : "(null)");
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- describing changes: one line each, compared whole ----------------- */

static void cat(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
cat(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static void
describe_cols(char *buf, size_t len, const char *label,
              const zdm_cdc_column *cols, size_t n)
{
	size_t i;

	cat(buf, len, " %s[", label);
	for (i = 0; i < n; i++) {
		cat(buf, len, "%s%s=", i ? " " : "", cols[i].name);
		if (cols[i].unchanged_toast)
			cat(buf, len, "UNCHANGED");
		else if (cols[i].value == NULL)
			cat(buf, len, "NULL");
		else
			cat(buf, len, "'%s'", cols[i].value);
	}
	cat(buf, len, "]");
}

/* "INSERT public.users new[id='1' name='a']", " old[...]", " own" */
static const char *
describe(const zdm_cdc_change *c, char *buf, size_t len)
{
	static const char *const ops[] = {"INSERT", "UPDATE", "DELETE",
	                                  "TRUNCATE"};

	buf[0] = '\0';
	cat(buf, len, "%s %s.%s", ops[c->op], c->schema, c->table);
	if (c->nold > 0)
		describe_cols(buf, len, "old", c->old_cols, c->nold);
	if (c->nnew > 0)
		describe_cols(buf, len, "new", c->new_cols, c->nnew);
	if (c->own_write)
		cat(buf, len, " own");
	return buf;
}

/* ---- events ---------------------------------------------------------------- */

/* A schema-less Debezium envelope for public.<table>. */
static const char *
ev(char *buf, size_t len, const char *op, const char *table, const char *before,
   const char *after, long long txid, long long ts_ms)
{
	snprintf(buf, len,
	         "{\"before\":%s,\"after\":%s,\"source\":{\"version\":"
	         "\"2.5.0.Final\",\"connector\":\"postgresql\",\"name\":"
	         "\"dbserver1\",\"ts_ms\":%lld,\"snapshot\":\"%s\",\"db\":"
	         "\"app\",\"sequence\":\"[null,\\\"23\\\"]\",\"schema\":"
	         "\"public\",\"table\":\"%s\",\"txId\":%lld,\"lsn\":%lld,"
	         "\"xmin\":null},\"op\":\"%s\",\"ts_ms\":%lld,"
	         "\"transaction\":null}",
	         before ? before : "null", after ? after : "null", ts_ms,
	         strcmp(op, "r") == 0 ? "true" : "false", table, txid,
	         txid * 1000, op, ts_ms + 20);
	return buf;
}

/* The same wrapped by the JsonConverter with schemas.enable=true; the
 * row schema has id int32, born Date, seen MicroTimestamp, at ZonedTimestamp,
 * alarm MicroTime, blob bytes, span MicroDuration, price string (decimal
 * string mode), days Date[]. */
#define ROW_SCHEMA(field)                                                      \
	"{\"type\":\"struct\",\"optional\":true,\"name\":"                     \
	"\"dbserver1.public.events.Value\",\"field\":\"" field "\","           \
	"\"fields\":[{\"type\":\"int32\",\"optional\":false,\"field\":"        \
	"\"id\"},{\"type\":\"int32\",\"optional\":true,\"name\":"              \
	"\"io.debezium.time.Date\",\"version\":1,\"field\":\"born\"},"         \
	"{\"type\":\"int64\",\"optional\":true,\"name\":"                      \
	"\"io.debezium.time.MicroTimestamp\",\"version\":1,\"field\":"         \
	"\"seen\"},{\"type\":\"string\",\"optional\":true,\"name\":"           \
	"\"io.debezium.time.ZonedTimestamp\",\"version\":1,\"field\":\"at\"}," \
	"{\"type\":\"int64\",\"optional\":true,\"name\":"                      \
	"\"io.debezium.time.MicroTime\",\"version\":1,\"field\":\"alarm\"},"   \
	"{\"type\":\"bytes\",\"optional\":true,\"field\":\"blob\"},"           \
	"{\"type\":\"int64\",\"optional\":true,\"name\":"                      \
	"\"io.debezium.time.MicroDuration\",\"version\":1,\"field\":"          \
	"\"span\"},{\"type\":\"string\",\"optional\":true,\"field\":"          \
	"\"price\"},{\"type\":\"array\",\"optional\":true,\"items\":{"         \
	"\"type\":\"int32\",\"optional\":true,\"name\":"                       \
	"\"io.debezium.time.Date\",\"version\":1},\"field\":\"days\"}]}"

#define ENVELOPE_SCHEMA                                                                                        \
	"{\"type\":\"struct\",\"optional\":false,\"name\":"                                                    \
	"\"dbserver1.public.events.Envelope\",\"version\":1,\"fields\":[" ROW_SCHEMA("before") "," ROW_SCHEMA( \
		"after") ",{\"type\":\"struct\",\"fields\":[{\"type\":\"string\","                             \
			 "\"optional\":false,\"field\":\"schema\"},{\"type\":\"string\","                      \
			 "\"optional\":false,\"field\":\"table\"}],\"optional\":false,"                        \
			 "\"name\":\"io.debezium.connector.postgresql.Source\",\"field\":"                     \
			 "\"source\"},{\"type\":\"string\",\"optional\":false,\"field\":"                      \
			 "\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":"                            \
			 "\"ts_ms\"}]}"

static const char *
ev_schema(char *buf, size_t len, const char *op, const char *before,
          const char *after)
{
	snprintf(buf, len,
	         "{\"schema\":" ENVELOPE_SCHEMA ",\"payload\":{\"before\":%s,"
	         "\"after\":%s,\"source\":{\"version\":\"2.5.0.Final\","
	         "\"connector\":\"postgresql\",\"name\":\"dbserver1\","
	         "\"ts_ms\":%lld,\"snapshot\":\"false\",\"db\":\"app\","
	         "\"schema\":\"public\",\"table\":\"events\",\"txId\":777,"
	         "\"lsn\":123456},\"op\":\"%s\",\"ts_ms\":%lld}}",
	         before ? before : "null", after ? after : "null", now_ms(), op,
	         now_ms());
	return buf;
}

/* ---- the parser alone ----------------------------------------------------- */

/* Parse value; return the description, or "ERROR: message", or "NONE". */
static const char *
parse_desc(zdm_cdc_debezium_parser *p, const char *value, char *buf, size_t len)
{
	zdm_cdc_change c;
	zdm_error err;
	int rc;

	zdm_error_clear(&err);
	rc = zdm_cdc_debezium_parse(p, value, value ? strlen(value) : 0, &c,
	                            &err);
	if (rc < 0)
		snprintf(buf, len, "ERROR: %s", err.message);
	else if (rc == 0)
		snprintf(buf, len, "NONE");
	else
		describe(&c, buf, len);
	return buf;
}

/* The same with a message key. */
static const char *
parse_desc_key(zdm_cdc_debezium_parser *p, const char *key, const char *value,
               char *buf, size_t len)
{
	zdm_cdc_change c;
	zdm_error err;
	int rc;

	zdm_error_clear(&err);
	rc = zdm_cdc_debezium_parse_message(p, key, key ? strlen(key) : 0,
	                                    value, value ? strlen(value) : 0,
	                                    &c, &err);
	if (rc < 0)
		snprintf(buf, len, "ERROR: %s", err.message);
	else if (rc == 0)
		snprintf(buf, len, "NONE");
	else
		describe(&c, buf, len);
	return buf;
}

/*
 * A delete's before image with REPLICA IDENTITY DEFAULT has the key columns
 * and NULL for the rest: old_cols come from the message key instead, with
 * its schema or without, and only its fields that are columns of the row.
 */
static void
test_parser_keys(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_error err;
	char e[8192], d[4096];
	const char *del_default = "{\"id\":1,\"name\":null,\"born\":null}";

	CHECK(zdm_cdc_debezium_parser_new(&p, NULL, &err) == 0);
	ev(e, sizeof(e), "d", "users", del_default, NULL, 8, 1000);
	CHECK_STR(parse_desc_key(p, "{\"id\":1}", e, d, sizeof(d)),
	          "DELETE public.users old[id='1']");
	/* with the key's schema: a date key column converted */
	CHECK_STR(
		parse_desc_key(
			p,
			"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
			"\"int32\",\"optional\":false,\"field\":\"id\"},{"
			"\"type\":\"int32\",\"optional\":false,\"name\":"
			"\"io.debezium.time.Date\",\"field\":\"born\"}],"
			"\"optional\":false,\"name\":"
			"\"dbserver1.public.users.Key\"},\"payload\":{\"id\":1,"
			"\"born\":1}}",
			e, d, sizeof(d)),
		"DELETE public.users old[id='1' born='1970-01-02']");
	/* a routing transform's own key field is not a column */
	CHECK_STR(parse_desc_key(p,
	                         "{\"id\":1,\"__dbz__physicalTableIdentifier\":"
	                         "\"dbserver1.public.users\"}",
	                         e, d, sizeof(d)),
	          "DELETE public.users old[id='1']");
	/* REPLICA IDENTITY FULL: still the key only */
	CHECK_STR(parse_desc_key(p, "{\"id\":1}",
	                         ev(e, sizeof(e), "d", "users",
	                            "{\"id\":1,\"name\":\"a\"}", NULL, 8, 1000),
	                         d, sizeof(d)),
	          "DELETE public.users old[id='1']");
	/* no before image at all: the key is enough */
	CHECK_STR(parse_desc_key(
			  p, "{\"id\":1}",
			  ev(e, sizeof(e), "d", "users", NULL, NULL, 8, 1000),
			  d, sizeof(d)),
	          "DELETE public.users old[id='1']");
	/* no key (null, empty, a null payload, an empty struct): the before
	 * image as sent */
	ev(e, sizeof(e), "d", "users", "{\"id\":1,\"name\":null}", NULL, 8,
	   1000);
	CHECK_STR(parse_desc_key(p, NULL, e, d, sizeof(d)),
	          "DELETE public.users old[id='1' name=NULL]");
	CHECK_STR(parse_desc_key(p, "null", e, d, sizeof(d)),
	          "DELETE public.users old[id='1' name=NULL]");
	CHECK_STR(parse_desc_key(p, "{\"schema\":null,\"payload\":null}", e, d,
	                         sizeof(d)),
	          "DELETE public.users old[id='1' name=NULL]");
	CHECK_STR(parse_desc_key(p, "{}", e, d, sizeof(d)),
	          "DELETE public.users old[id='1' name=NULL]");
	/* other ops ignore the key */
	CHECK_STR(parse_desc_key(p, "{\"id\":1}",
	                         ev(e, sizeof(e), "u", "users",
	                            "{\"id\":1,\"name\":\"a\"}",
	                            "{\"id\":1,\"name\":\"b\"}", 8, 1000),
	                         d, sizeof(d)),
	          "UPDATE public.users old[id='1' name='a'] new[id='1' "
	          "name='b']");
	CHECK_STR(parse_desc_key(p, "not json either",
	                         ev(e, sizeof(e), "c", "users", NULL,
	                            "{\"id\":1}", 8, 1000),
	                         d, sizeof(d)),
	          "INSERT public.users new[id='1']");
	/* a delete's key that cannot be read is an error */
	ev(e, sizeof(e), "d", "users", del_default, NULL, 8, 1000);
	CHECK_STR(parse_desc_key(p, "Struct{id=1}", e, d, sizeof(d)),
	          "ERROR: message key: not JSON: invalid token near 'Struct' "
	          "(line 1, column 6)");
	CHECK_STR(parse_desc_key(p, "[1]", e, d, sizeof(d)),
	          "ERROR: message key: the key is not a JSON object");
	CHECK_STR(parse_desc_key(p, "{\"other\":1}", e, d, sizeof(d)),
	          "ERROR: message key: no field of the key is a column of "
	          "\"before\"");
	CHECK_STR(
		parse_desc_key(p,
	                       "{\"schema\":{\"type\":\"struct\",\"fields\":[{"
	                       "\"type\":\"bytes\",\"name\":\"org.apache.kafka."
	                       "connect.data.Decimal\",\"field\":\"id\"}]},"
	                       "\"payload\":{\"id\":\"AQ==\"}}",
	                       e, d, sizeof(d)),
		"ERROR: message key: column \"id\": "
		"decimal.handling.mode=precise is not supported (the value "
		"is base64 bytes with a scale in the schema); set "
		"decimal.handling.mode=string on the connector");
	zdm_cdc_debezium_parser_free(p);
}

static void
test_parser_ops(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_error err;
	char e[8192], d[4096];

	CHECK(zdm_cdc_debezium_parser_new(&p, NULL, &err) == 0);
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "r", "users", NULL,
	                        "{\"id\":1,\"name\":\"alice\"}", 5, 1000),
	                     d, sizeof(d)),
	          "INSERT public.users new[id='1' name='alice']");
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "users", NULL,
	                        "{\"id\":2,\"name\":\"bob\",\"email\":null}", 6,
	                        1000),
	                     d, sizeof(d)),
	          "INSERT public.users new[id='2' name='bob' email=NULL]");
	/* REPLICA IDENTITY DEFAULT: no before image for an update */
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "u", "users", NULL,
	                        "{\"id\":2,\"name\":\"robert\"}", 7, 1000),
	                     d, sizeof(d)),
	          "UPDATE public.users new[id='2' name='robert']");
	/* REPLICA IDENTITY FULL: both */
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "u", "users",
	                        "{\"id\":2,\"name\":\"bob\"}",
	                        "{\"id\":2,\"name\":\"robert\"}", 7, 1000),
	                     d, sizeof(d)),
	          "UPDATE public.users old[id='2' name='bob'] new[id='2' "
	          "name='robert']");
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "d", "users",
	                        "{\"id\":1,\"name\":null}", NULL, 8, 1000),
	                     d, sizeof(d)),
	          "DELETE public.users old[id='1' name=NULL]");
	CHECK_STR(
		parse_desc(p,
	                   ev(e, sizeof(e), "t", "users", NULL, NULL, 9, 1000),
	                   d, sizeof(d)),
		"TRUNCATE public.users");
	/* column order is the object's, not sorted */
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "users", NULL,
	                        "{\"zeta\":1,\"alpha\":2,\"mid\":3}", 9, 1000),
	                     d, sizeof(d)),
	          "INSERT public.users new[zeta='1' alpha='2' mid='3']");
	/* tombstones: a null value, an empty one, a wrapped null */
	CHECK_STR(parse_desc(p, NULL, d, sizeof(d)), "NONE");
	CHECK_STR(parse_desc(p, "", d, sizeof(d)), "NONE");
	CHECK_STR(parse_desc(p, "null", d, sizeof(d)), "NONE");
	CHECK_STR(parse_desc(p, "{\"schema\":null,\"payload\":null}", d,
	                     sizeof(d)),
	          "NONE");
	zdm_cdc_debezium_parser_free(p);
}

static void
test_parser_values(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_error err;
	char e[8192], d[4096];

	CHECK(zdm_cdc_debezium_parser_new(&p, NULL, &err) == 0);
	CHECK_STR(
		parse_desc(
			p,
			ev(e, sizeof(e), "c", "vals", NULL,
	                   "{\"n\":null,\"u\":\"h\\u00e9llo \\u2713 \\u65e5\\u672c "
	                   "\\ud83d\\ude00\",\"q\":\"it's \\\"q\\\" \\\\ back\","
	                   "\"nl\":\"a\\nb\\tc\",\"t\":true,\"f\":false,"
	                   "\"big\":9223372036854775807,"
	                   "\"small\":-9223372036854775808,\"zero\":0,"
	                   "\"r1\":0.1,\"r2\":1.5E300,\"r3\":1.0,\"r4\":-2.5e-7,"
	                   "\"r5\":0.30000000000000004,"
	                   "\"dec\":\"12345678901234567890.123456789\","
	                   "\"json\":{\"a\":[1,2.5,{\"b\":null}],\"c\":\"x\\\"y\","
	                   "\"d\":true},\"empty\":\"\"}",
	                   10, 1000),
			d, sizeof(d)),
		"INSERT public.vals new[n=NULL u='h\xc3\xa9llo \xe2\x9c\x93 "
		"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80' q='it's \"q\" \\ "
		"back' nl='a\nb\tc' t='t' f='f' big='9223372036854775807' "
		"small='-9223372036854775808' zero='0' r1='0.1' r2='1.5e+300' "
		"r3='1' r4='-2.5e-07' r5='0.30000000000000004' "
		"dec='12345678901234567890.123456789' "
		"json='{\"a\":[1,2.5,{\"b\":null}],\"c\":\"x\\\"y\",\"d\":true}' "
		"empty='']");
	/* arrays become PostgreSQL array literals */
	CHECK_STR(
		parse_desc(p,
	                   ev(e, sizeof(e), "c", "arrs", NULL,
	                      "{\"ints\":[1,2,3],\"texts\":[\"a\",\"b c\","
	                      "\"q\\\"uote\",\"back\\\\slash\",null,\"NULL\"],"
	                      "\"nested\":[[1,2],[3,4]],\"bools\":[true,false],"
	                      "\"none\":[],\"objs\":[{\"k\":1}]}",
	                      11, 1000),
	                   d, sizeof(d)),
		"INSERT public.arrs new[ints='{1,2,3}' texts='{\"a\",\"b c\","
		"\"q\\\"uote\",\"back\\\\slash\",NULL,\"NULL\"}' "
		"nested='{{1,2},{3,4}}' bools='{t,f}' none='{}' "
		"objs='{\"{\\\"k\\\":1}\"}']");
	/* the unchanged-TOAST placeholder, alone or as an array's only
	 * element */
	CHECK_STR(
		parse_desc(p,
	                   ev(e, sizeof(e), "u", "docs", NULL,
	                      "{\"id\":1,\"body\":"
	                      "\"__debezium_unavailable_value\",\"tags\":["
	                      "\"__debezium_unavailable_value\"]}",
	                      12, 1000),
	                   d, sizeof(d)),
		"UPDATE public.docs new[id='1' body=UNCHANGED tags=UNCHANGED]");
	zdm_cdc_debezium_parser_free(p);

	/* a connector with its own placeholder */
	{
		zdm_cdc_debezium_opts o = {0};

		o.unavailable_placeholder = "~toast~";
		CHECK(zdm_cdc_debezium_parser_new(&p, &o, &err) == 0);
		CHECK_STR(parse_desc(p,
		                     ev(e, sizeof(e), "u", "docs", NULL,
		                        "{\"a\":\"~toast~\",\"b\":"
		                        "\"__debezium_unavailable_value\"}",
		                        12, 1000),
		                     d, sizeof(d)),
		          "UPDATE public.docs new[a=UNCHANGED "
		          "b='__debezium_unavailable_value']");
		zdm_cdc_debezium_parser_free(p);
	}
}

static void
test_parser_schema(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_error err;
	char e[16384], d[4096];

	CHECK(zdm_cdc_debezium_parser_new(&p, NULL, &err) == 0);
	/* 19000 days = 2022-01-08; 1700000000123456 us = 2023-11-14
	 * 22:13:20.123456; 45296789000 us = 12:34:56.789; "3q2+7w==" is
	 * de ad be ef; -719162 days = 0001-01-01, -719468 = 0000-03-01,
	 * which PostgreSQL calls 0001-03-01 BC */
	CHECK_STR(
		parse_desc(
			p,
			ev_schema(e, sizeof(e), "c", NULL,
	                          "{\"id\":1,\"born\":19000,\"seen\":"
	                          "1700000000123456,\"at\":"
	                          "\"2023-11-14T22:13:20.123456Z\",\"alarm\":"
	                          "45296789000,\"blob\":\"3q2+7w==\",\"span\":"
	                          "90061000000,\"price\":\"19.99\",\"days\":"
	                          "[0,-1,null]}"),
			d, sizeof(d)),
		"INSERT public.events new[id='1' born='2022-01-08' "
		"seen='2023-11-14 22:13:20.123456' "
		"at='2023-11-14T22:13:20.123456Z' alarm='12:34:56.789' "
		"blob='\\xdeadbeef' span='90061000000 microseconds' "
		"price='19.99' days='{\"1970-01-01\",\"1969-12-31\",NULL}']");
	CHECK_STR(parse_desc(p,
	                     ev_schema(e, sizeof(e), "u",
	                               "{\"id\":1,\"born\":-719162,\"seen\":-1,"
	                               "\"alarm\":86400000000,\"blob\":\"\"}",
	                               "{\"id\":1,\"born\":-719468,\"seen\":0,"
	                               "\"alarm\":0,\"blob\":null}"),
	                     d, sizeof(d)),
	          "UPDATE public.events old[id='1' born='0001-01-01' "
	          "seen='1969-12-31 23:59:59.999999' alarm='24:00:00' "
	          "blob='\\x'] new[id='1' born='0001-03-01 BC' "
	          "seen='1970-01-01 00:00:00' alarm='00:00:00' blob=NULL]");
	/* a bytea placeholder arrives base64-encoded */
	CHECK_STR(
		parse_desc(p,
	                   ev_schema(e, sizeof(e), "u", NULL,
	                             "{\"id\":1,\"blob\":\"X19kZWJleml1bV91bmF"
	                             "2YWlsYWJsZV92YWx1ZQ==\"}"),
	                   d, sizeof(d)),
		"UPDATE public.events new[id='1' blob=UNCHANGED]");
	CHECK_STR(parse_desc(p,
	                     ev_schema(e, sizeof(e), "c", NULL,
	                               "{\"id\":1,\"blob\":\"not base64!\"}"),
	                     d, sizeof(d)),
	          "ERROR: column \"blob\": bytes value is not base64");
	CHECK_STR(parse_desc(p,
	                     ev_schema(e, sizeof(e), "c", NULL,
	                               "{\"id\":1,\"born\":\"2020-01-01\"}"),
	                     d, sizeof(d)),
	          "ERROR: column \"born\": a string where the schema says an "
	          "integer (a date, time or interval)");
	CHECK_STR(parse_desc(p,
	                     ev_schema(e, sizeof(e), "c", NULL,
	                               "{\"id\":1,\"alarm\":86400000001}"),
	                     d, sizeof(d)),
	          "ERROR: column \"alarm\": time 86400000001 out of range");

	/* decimal.handling.mode=precise: refused, even for a null value */
	{
		static const char precise[] =
			"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
			"\"struct\",\"field\":\"after\",\"fields\":[{\"type\":"
			"\"int32\",\"field\":\"id\"},{\"type\":\"bytes\","
			"\"optional\":true,\"name\":"
			"\"org.apache.kafka.connect.data.Decimal\",\"version\":1,"
			"\"parameters\":{\"scale\":\"2\",\"connect.decimal."
			"precision\":\"10\"},\"field\":\"price\"}]}]},"
			"\"payload\":{\"before\":null,\"after\":{\"id\":1,"
			"\"price\":%s},\"source\":{\"schema\":\"public\","
			"\"table\":\"items\"},\"op\":\"c\"}}";
		const char *want =
			"ERROR: column \"price\": decimal.handling.mode=precise "
			"is not supported (the value is base64 bytes with a scale "
			"in the schema); set decimal.handling.mode=string on the "
			"connector";

		snprintf(e, sizeof(e), precise, "\"B9A=\"");
		CHECK_STR(parse_desc(p, e, d, sizeof(d)), want);
		snprintf(e, sizeof(e), precise, "null");
		CHECK_STR(parse_desc(p, e, d, sizeof(d)), want);
	}
	zdm_cdc_debezium_parser_free(p);
}

static void
test_parser_errors(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_cdc_change c;
	zdm_error err;
	char e[8192], d[4096];
	const char *src = "\"source\":{\"schema\":\"public\",\"table\":\"t\"}";

	CHECK(zdm_cdc_debezium_parser_new(&p, NULL, &err) == 0);
	CHECK_STR(parse_desc(p, "hello", d, sizeof(d)),
	          "ERROR: not JSON: invalid token near 'hello' (line 1, "
	          "column 5)");
	CHECK_STR(parse_desc(p, "{\"op\":\"c\"", d, sizeof(d)),
	          "ERROR: not JSON: '}' expected near end of file (line 1, "
	          "column 9)");
	CHECK_STR(parse_desc(p, "[1,2]", d, sizeof(d)),
	          "ERROR: the value is not a JSON object");
	CHECK_STR(parse_desc(p, "{\"schema\":{},\"payload\":42}", d, sizeof(d)),
	          "ERROR: \"payload\" is not a JSON object");
	snprintf(e, sizeof(e), "{\"after\":{\"id\":1},%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: no \"op\": not a Debezium change event");
	/* the hint names the usual cause */
	snprintf(e, sizeof(e), "{\"id\":1,\"name\":\"x\"}");
	zdm_cdc_debezium_parse(p, e, strlen(e), &c, &err);
	CHECK(strstr(err.hint, "ExtractNewRecordState") != NULL);
	snprintf(e, sizeof(e), "{\"op\":1,\"after\":{\"id\":1},%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: \"op\" is not a string");
	snprintf(e, sizeof(e), "{\"op\":\"x\",\"after\":{\"id\":1},%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)), "ERROR: unknown op \"x\"");
	snprintf(e, sizeof(e), "{\"op\":\"m\",%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)), "ERROR: unknown op \"m\"");
	snprintf(e, sizeof(e), "{\"op\":\"c\",\"before\":null,%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: no \"after\" for op \"c\"");
	snprintf(e, sizeof(e), "{\"op\":\"u\",\"after\":null,%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: no \"after\" for op \"u\"");
	snprintf(e, sizeof(e), "{\"op\":\"r\",%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: no \"after\" for op \"r\"");
	snprintf(e, sizeof(e), "{\"op\":\"d\",\"after\":null,%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: no \"before\" for op \"d\"");
	snprintf(e, sizeof(e), "{\"op\":\"c\",\"after\":[1],%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: \"after\" is not an object");
	snprintf(e, sizeof(e), "{\"op\":\"d\",\"before\":\"x\",%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: \"before\" is not an object");
	CHECK_STR(parse_desc(p, "{\"op\":\"c\",\"after\":{}}", d, sizeof(d)),
	          "ERROR: no \"source\"");
	CHECK_STR(parse_desc(p, "{\"op\":\"c\",\"after\":{},\"source\":[]}", d,
	                     sizeof(d)),
	          "ERROR: \"source\" is not an object");
	CHECK_STR(
		parse_desc(p,
	                   "{\"op\":\"c\",\"after\":{},\"source\":{\"schema\":"
	                   "\"public\"}}",
	                   d, sizeof(d)),
		"ERROR: no \"source.table\"");
	CHECK_STR(
		parse_desc(p,
	                   "{\"op\":\"c\",\"after\":{},\"source\":{\"schema\":"
	                   "7,\"table\":\"t\"}}",
	                   d, sizeof(d)),
		"ERROR: \"source.schema\" is not a string");
	CHECK_STR(
		parse_desc(p,
	                   "{\"op\":\"c\",\"after\":{},\"source\":{\"schema\":"
	                   "\"s\",\"table\":\"t\",\"txId\":\"12\"}}",
	                   d, sizeof(d)),
		"ERROR: \"source.txId\" is not an integer");
	CHECK_STR(parse_desc(p,
	                     "{\"op\":\"c\",\"after\":{},\"ts_ms\":1.5,"
	                     "\"source\":{\"schema\":\"s\",\"table\":\"t\"}}",
	                     d, sizeof(d)),
	          "ERROR: \"ts_ms\" is not an integer");
	snprintf(e, sizeof(e), "{\"op\":\"c\",\"after\":{\"a\":1,\"a\":2},%s}",
	         src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: not JSON: duplicate object key near '\"a\"' (line 1, "
	          "column 28)");
	/* PostgreSQL text cannot hold NUL */
	snprintf(e, sizeof(e),
	         "{\"op\":\"c\",\"after\":{\"a\":\"x\\u0000\"},%s}", src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: not JSON: \\u0000 is not allowed without "
	          "JSON_ALLOW_NUL near '\"x\\u0000\"' (line 1, column 32)");
	snprintf(e, sizeof(e),
	         "{\"op\":\"c\",\"after\":{\"a\":123456789012345678901234},%s}",
	         src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: not JSON: too big integer (line 1, column 47)");
	/* a long, odd op is cut short in the message */
	snprintf(e, sizeof(e), "{\"op\":\"\\u0001%070d\",\"after\":{},%s}", 0,
	         src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: unknown op \"?000000000000000000000000000000000000000"
	          "000000000000000000000000...\"");
	/* ... and never through a UTF-8 sequence */
	snprintf(e, sizeof(e), "{\"op\":\"%063d\u00e9\u00e9\",%s}", 0, src);
	CHECK_STR(parse_desc(p, e, d, sizeof(d)),
	          "ERROR: unknown op \"0000000000000000000000000000000000000000"
	          "00000000000000000000000...\"");
	/* after an error the parser still works */
	CHECK_STR(
		parse_desc(p,
	                   ev(e, sizeof(e), "c", "t", NULL, "{\"id\":1}", 1, 1),
	                   d, sizeof(d)),
		"INSERT public.t new[id='1']");
	zdm_cdc_debezium_parser_free(p);
}

static void
test_parser_own(void)
{
	zdm_cdc_debezium_parser *p;
	zdm_cdc_debezium_opts o = {0};
	zdm_error err;
	char e[8192], d[4096];
	uint64_t x;

	o.own_origin_field = "source.origin";
	CHECK(zdm_cdc_debezium_parser_new(&p, &o, &err) == 0);
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "t", NULL, "{\"id\":1}",
	                        1000, 1),
	                     d, sizeof(d)),
	          "INSERT public.t new[id='1']");
	zdm_cdc_debezium_parser_own_xid(p, 1000);
	/* xid8 from pg_current_xact_id(): epoch 3, xid 1001 */
	zdm_cdc_debezium_parser_own_xid(p, ((uint64_t)3 << 32) | 1001);
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "t", NULL, "{\"id\":1}",
	                        1000, 1),
	                     d, sizeof(d)),
	          "INSERT public.t new[id='1'] own");
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "u", "t", NULL, "{\"id\":1}",
	                        1001, 1),
	                     d, sizeof(d)),
	          "UPDATE public.t new[id='1'] own");
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "t", NULL, "{\"id\":1}",
	                        1002, 1),
	                     d, sizeof(d)),
	          "INSERT public.t new[id='1']");
	/* the origin field */
	CHECK_STR(parse_desc(p,
	                     "{\"op\":\"c\",\"after\":{\"id\":1},\"source\":{"
	                     "\"schema\":\"s\",\"table\":\"t\",\"origin\":"
	                     "\"zdm_m1\"}}",
	                     d, sizeof(d)),
	          "INSERT s.t new[id='1'] own");
	CHECK_STR(parse_desc(p,
	                     "{\"op\":\"c\",\"after\":{\"id\":1},\"source\":{"
	                     "\"schema\":\"s\",\"table\":\"t\",\"origin\":"
	                     "\"pg_1\"}}",
	                     d, sizeof(d)),
	          "INSERT s.t new[id='1']");
	/* marks are bounded: the oldest go first, the newest stay */
	for (x = 100000; x < 100000 + 20000; x++)
		zdm_cdc_debezium_parser_own_xid(p, x);
	CHECK_STR(parse_desc(p,
	                     ev(e, sizeof(e), "c", "t", NULL, "{\"id\":1}",
	                        1000, 1),
	                     d, sizeof(d)),
	          "INSERT public.t new[id='1']");
	for (x = 100000; x < 100000 + 20000; x += 997) {
		char want[64];
		bool kept = x >= 100000 + 20000 - 16384;

		snprintf(want, sizeof(want), "INSERT public.t new[id='1']%s",
		         kept ? " own" : "");
		CHECK_STR(parse_desc(p,
		                     ev(e, sizeof(e), "c", "t", NULL,
		                        "{\"id\":1}", (long long)x, 1),
		                     d, sizeof(d)),
		          want);
	}
	zdm_cdc_debezium_parser_free(p);
}

static void
test_open_errors(void)
{
	zdm_cdc_source *src;
	zdm_cdc_debezium_opts o = {0};
	zdm_error err;
	const char *bad_entry[] = {"bootstrap.servers", NULL};
	const char *auto_commit[] = {"bootstrap.servers=127.0.0.1:1",
	                             "enable.auto.commit=true", NULL};
	const char *group[] = {"bootstrap.servers=127.0.0.1:1",
	                       "group.id=other", NULL};
	const char *no_bootstrap[] = {"client.id=x", NULL};
	const char *bad_value[] = {"bootstrap.servers=127.0.0.1:1",
	                           "fetch.wait.max.ms=soon", NULL};
	const char *bad_secret[] = {"bootstrap.servers=127.0.0.1:1",
	                            "sasl.password.nope=hunter2", NULL};
	const char *reset[] = {"bootstrap.servers=127.0.0.1:1",
	                       "auto.offset.reset=earliest", NULL};

	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0 && src == NULL);
	CHECK_STR(err.message, "debezium source: no topic");
	o.topic = "t";
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message, "debezium source: no consumer group");
	o.group_id = "g";
	o.kafka_conf = bad_entry;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message, "kafka_conf entry \"bootstrap.servers\": "
	                       "expected key=value");
	o.kafka_conf = auto_commit;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message,
	          "kafka_conf enable.auto.commit=true is not allowed: zdm "
	          "commits offsets only once changes are applied");
	o.kafka_conf = group;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message, "kafka_conf group.id=other is not allowed: use "
	                       "the group_id option");
	o.kafka_conf = no_bootstrap;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message, "kafka_conf has no bootstrap.servers");
	o.kafka_conf = bad_value;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message, "kafka_conf fetch.wait.max.ms: Invalid value "
	                       "for configuration property "
	                       "\"fetch.wait.max.ms\"");
	o.kafka_conf = bad_secret;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message,
	          "kafka_conf sasl.password.nope: invalid setting");
	o.kafka_conf = reset;
	CHECK(zdm_cdc_debezium_open(&src, &o, &err) < 0);
	CHECK_STR(err.message,
	          "kafka_conf auto.offset.reset=earliest is not allowed: zdm "
	          "starts a new group at the topic's beginning itself, and a "
	          "committed offset no longer in the topic must stop it");
}

/* ---- against the mock cluster ----------------------------------------------- */

static rd_kafka_t *producer;
static const char *bootstraps;

static void
produce_kv(const char *topic, int32_t partition, const char *key,
           const char *value)
{
	rd_kafka_resp_err_t e;

	e = rd_kafka_producev(
		producer, RD_KAFKA_V_TOPIC(topic),
		RD_KAFKA_V_PARTITION(partition),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
		RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
		RD_KAFKA_V_END);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "produce %s: %s\n", topic, rd_kafka_err2str(e));
		exit(1);
	}
}

static void
produce(const char *topic, int32_t partition, const char *value)
{
	produce_kv(topic, partition, NULL, value);
}

static zdm_cdc_source *
open_source(const char *topic, const char *group)
{
	char bs[512];
	/* The mock keeps a group its last member left "joining" for most of
	 * a session timeout (a broker empties it at once): keep it short so
	 * a restarted consumer rejoins quickly. */
	const char *conf[] = {bs, "fetch.wait.max.ms=50",
	                      "session.timeout.ms=3000",
	                      "heartbeat.interval.ms=300", NULL};
	zdm_cdc_debezium_opts o = {0};
	zdm_cdc_source *src;
	zdm_error err;

	snprintf(bs, sizeof(bs), "bootstrap.servers=%s", bootstraps);
	o.topic = topic;
	o.group_id = group;
	o.kafka_conf = conf;
	if (zdm_cdc_debezium_open(&src, &o, &err) < 0) {
		fprintf(stderr, "open %s: %s\n", topic, err.message);
		exit(1);
	}
	return src;
}

#define MAX_GOT 64

typedef struct got {
	size_t n;
	char desc[MAX_GOT][512];
	zdm_cdc_position pos[MAX_GOT];
	int rc;        /* -1 when next failed */
	zdm_error err; /* then why */
} got;

/* next() until want changes came, an error, or timeout_s passed. */
static void
collect(zdm_cdc_source *src, size_t want, double timeout_s, got *g)
{
	double deadline = mono() + timeout_s;

	memset(g, 0, sizeof(*g));
	while (g->n < want && mono() < deadline) {
		const zdm_cdc_change *c;
		size_t n, i;

		if (src->ops->next(src, &c, &n, 200, &g->err) < 0) {
			g->rc = -1;
			return;
		}
		for (i = 0; i < n && g->n < MAX_GOT; i++, g->n++) {
			describe(&c[i], g->desc[g->n], sizeof(g->desc[0]));
			g->pos[g->n] = c[i].position;
		}
	}
}

static void
ack(zdm_cdc_source *src, int32_t partition, uint64_t offset)
{
	zdm_cdc_position pos = {partition, offset};
	zdm_error err;

	if (src->ops->ack(src, pos, &err) < 0) {
		check(0, __FILE__, __LINE__, "ack %d@%" PRIu64 ": %s",
		      (int)partition, offset, err.message);
	}
}

static void
lag(zdm_cdc_source *src, double *seconds, uint64_t *backlog)
{
	zdm_error err;

	if (src->ops->lag(src, seconds, backlog, &err) < 0) {
		check(0, __FILE__, __LINE__, "lag: %s", err.message);
		*seconds = -1;
		*backlog = UINT64_MAX;
	}
}

/* The newest barrier the committed offsets have reached (stats'
 * applied_lsn); UINT64_MAX when stats fails. */
static uint64_t
fenced(zdm_cdc_source *src)
{
	zdm_cdc_stats st;
	zdm_error err;

	if (src->ops->stats(src, &st, &err) < 0) {
		check(0, __FILE__, __LINE__, "stats: %s", err.message);
		return UINT64_MAX;
	}
	CHECK_INT(st.received_lsn, 0); /* Kafka offsets are no LSNs */
	return st.applied_lsn;
}

/*
 * basic: every op, schema-less, on one partition, with tombstones, a
 * primary-key change and a duplicate; positions skip the tombstones and
 * acking the last change leaves no backlog (the trailing tombstone goes
 * with it).
 */
#define T_BASIC "dbz.public.basic"
static const char *const basic_want[] = {
	"INSERT public.users new[id='1' name='alice']",
	"INSERT public.users new[id='2' name='bob']",
	"UPDATE public.users old[id='2' name='bob'] new[id='2' name='robert']",
	"DELETE public.users old[id='1' name=NULL]",
	/* a tombstone (offset 4) */
	"TRUNCATE public.users", "INSERT public.users new[id='3' name='dup']",
	"INSERT public.users new[id='3' name='dup']",
	/* primary-key change 2 -> 20: delete, tombstone (9), create */
	"DELETE public.users old[id='2' name=NULL]",
	"INSERT public.users new[id='20' name='robert']",
	"INSERT public.users new[n=NULL u='\xc3\xa9\xe2\x9c\x93' "
	"q='say \"hi\"' t='t' f='f' big='-9223372036854775808' "
	"dec='0.000000000000000000001' j='{\"k\":[1,\"2\"]}']",
	"DELETE public.users old[id='3' name=NULL]",
	/* a tombstone (13) ends the partition */
};
static const uint64_t basic_offsets[] = {0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12};

static void
basic_produce(void)
{
	char e[4096];
	long long ts = now_ms();

	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "r", "users", NULL,
	           "{\"id\":1,\"name\":\"alice\"}", 500, ts));
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "c", "users", NULL,
	           "{\"id\":2,\"name\":\"bob\"}", 501, ts));
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "u", "users", "{\"id\":2,\"name\":\"bob\"}",
	           "{\"id\":2,\"name\":\"robert\"}", 502, ts));
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "d", "users", "{\"id\":1,\"name\":null}", NULL,
	           503, ts));
	produce(T_BASIC, 0, NULL);
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "t", "users", NULL, NULL, 504, ts));
	ev(e, sizeof(e), "c", "users", NULL, "{\"id\":3,\"name\":\"dup\"}", 505,
	   ts);
	produce(T_BASIC, 0, e);
	produce(T_BASIC, 0, e);
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "d", "users", "{\"id\":2,\"name\":null}", NULL,
	           506, ts));
	produce(T_BASIC, 0, NULL);
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "c", "users", NULL,
	           "{\"id\":20,\"name\":\"robert\"}", 506, ts));
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "c", "users", NULL,
	           "{\"n\":null,\"u\":\"\\u00e9\\u2713\",\"q\":\"say "
	           "\\\"hi\\\"\",\"t\":true,\"f\":false,\"big\":"
	           "-9223372036854775808,\"dec\":"
	           "\"0.000000000000000000001\",\"j\":{\"k\":[1,\"2\"]}}",
	           507, ts));
	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "d", "users", "{\"id\":3,\"name\":null}", NULL,
	           508, ts));
	produce(T_BASIC, 0, NULL);
}

static void
basic_check(zdm_cdc_source *src)
{
	size_t nwant = sizeof(basic_want) / sizeof(*basic_want), i;
	double seconds;
	uint64_t backlog;
	got g;

	collect(src, nwant, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, nwant);
	for (i = 0; i < g.n && i < nwant; i++) {
		CHECK_STR(g.desc[i], basic_want[i]);
		CHECK_INT(g.pos[i].partition, 0);
		CHECK_INT(g.pos[i].offset, basic_offsets[i]);
	}
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 14);
	CHECK(seconds >= 0 && seconds < 60);
	/* the trailing tombstone (13) may come in a later fetch than the
	 * last change (a loaded machine): poll it before the ack it goes
	 * with */
	collect(src, 1, 1.0, &g);
	CHECK_INT(g.n, 0);
	ack(src, 0, 12);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 0);
	CHECK(seconds == 0);
	/* acking what never came is refused */
	{
		zdm_cdc_position far = {0, 14}, other = {5, 0};
		zdm_error err;

		CHECK(src->ops->ack(src, far, &err) < 0);
		CHECK_STR(err.message,
		          "topic dbz.public.basic partition 0: ack "
		          "of offset 14, which was never handed "
		          "out");
		CHECK(src->ops->ack(src, other, &err) < 0);
	}
}

/*
 * A tombstone that arrives alone, after everything before it was acked, is
 * committed by next() itself: an idle topic ending in a delete shows no
 * backlog.
 */
static void
basic_tail(zdm_cdc_source *src)
{
	char e[4096];
	double seconds, deadline;
	uint64_t backlog;
	got g;

	produce(T_BASIC, 0,
	        ev(e, sizeof(e), "d", "users", "{\"id\":20}", NULL, 509,
	           now_ms()));
	rd_kafka_flush(producer, 5000);
	collect(src, 1, 20, &g);
	CHECK_INT(g.n, 1);
	CHECK_INT(g.pos[0].offset, 14);
	ack(src, 0, 14);
	produce(T_BASIC, 0, NULL);
	rd_kafka_flush(producer, 5000);
	collect(src, 1, 1.0, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 0);
	deadline = mono() + 5;
	do {
		lag(src, &seconds, &backlog);
	} while (backlog != 0 && mono() < deadline);
	CHECK_INT(backlog, 0);
}

/* A topic Debezium has not created yet (no change to its table so far) is
 * no error: nothing comes, there is no backlog, and a barrier has nothing
 * to wait for. */
static void
missing_check(zdm_cdc_source *src)
{
	double seconds;
	uint64_t backlog;
	got g;

	zdm_error err;

	collect(src, 1, 1.0, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 0);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 0);
	CHECK(seconds == 0);
	/* nor anything for a barrier to wait for */
	CHECK(src->ops->fence(src, 7, &err) == 0);
	CHECK_INT(fenced(src), 7);
}

/* schema: the JsonConverter's schema-and-payload form, with conversions. */
#define T_SCHEMA "dbz.public.events"

static void
schema_produce(void)
{
	char e[16384];

	produce(T_SCHEMA, 0,
	        ev_schema(e, sizeof(e), "c", NULL,
	                  "{\"id\":7,\"born\":0,\"seen\":1000000,\"blob\":"
	                  "\"AAEC\",\"price\":\"1.50\"}"));
	produce(T_SCHEMA, 0,
	        ev_schema(e, sizeof(e), "u",
	                  "{\"id\":7,\"born\":0,\"price\":\"1.50\"}",
	                  "{\"id\":7,\"born\":1,\"price\":\"2.00\"}"));
	/* keyed, as Debezium sends it: the key gives the delete's old_cols,
	 * not the before image's NULLs */
	produce_kv(
		T_SCHEMA, 0,
		"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
		"\"int32\",\"optional\":false,\"field\":\"id\"}],"
		"\"optional\":false,\"name\":\"dbserver1.public.events."
		"Key\"},\"payload\":{\"id\":7}}",
		ev_schema(e, sizeof(e), "d", "{\"id\":7,\"born\":null}", NULL));
	produce_kv(T_SCHEMA, 0, "{\"id\":7}", NULL);
}

static void
schema_check(zdm_cdc_source *src)
{
	got g;

	/* the applier marks its transaction: these events are its own */
	src->ops->own_xid(src, 777);
	collect(src, 3, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 3);
	CHECK_STR(g.desc[0], "INSERT public.events new[id='7' "
	                     "born='1970-01-01' seen='1970-01-01 00:00:01' "
	                     "blob='\\x000102' price='1.50'] own");
	CHECK_STR(g.desc[1], "UPDATE public.events old[id='7' "
	                     "born='1970-01-01' price='1.50'] new[id='7' "
	                     "born='1970-01-02' price='2.00'] own");
	CHECK_STR(g.desc[2], "DELETE public.events old[id='7'] own");
	ack(src, 0, 2);
}

/*
 * keymove: Debezium sends a primary-key change as a delete of the old key
 * (header __debezium.newkey), its tombstone and a create of the new key
 * (header __debezium.oldkey).  The source hands the pair out as the UPDATE
 * it was, the delete's whole before image and the create's after image, at
 * the create's position: applied as an INSERT, the create would lose which
 * shape the statement wrote.  Without the headers (a delete and an insert
 * of another key in one transaction) or from another transaction, the
 * events stay a DELETE and an INSERT.  And a barrier's fence: its LSN is
 * reached once the committed offsets reach the topic's end as it was at
 * the fence, not before.
 */
#define T_KEYMOVE "dbz.public.keymove"
static const char *const keymove_want[] = {
	"INSERT public.users new[id='1' amount='100']",
	/* one string (clang's -Wstring-concatenation wants the parentheses) */
	("UPDATE public.users old[id='1' amount='100'] new[id='2' "
         "amount='250']"),
	"DELETE public.users old[id='2']",
	"INSERT public.users new[id='3' amount='250']",
	"DELETE public.users old[id='3']",
	"INSERT public.users new[id='4' amount='250']",
};
static const uint64_t keymove_offsets[] = {0, 3, 4, 6, 7, 9};

static void
produce_h(const char *topic, const char *key, const char *value,
          const char *header, const char *hvalue)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
	rd_kafka_resp_err_t e;

	rd_kafka_header_add(hdrs, header, -1, hvalue, -1);
	e = rd_kafka_producev(
		producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_KEY((void *)key, strlen(key)),
		RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
		RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "produce %s: %s\n", topic, rd_kafka_err2str(e));
		exit(1);
	}
}

static void
keymove_produce(void)
{
	char e[4096];
	long long ts = now_ms();

	produce_kv(T_KEYMOVE, 0, "{\"id\":1}",
	           ev(e, sizeof(e), "c", "users", NULL,
	              "{\"id\":1,\"amount\":100}", 600, ts));
	/* UPDATE users SET id = 2, amount = 250 WHERE id = 1 */
	produce_h(T_KEYMOVE, "{\"id\":1}",
	          ev(e, sizeof(e), "d", "users", "{\"id\":1,\"amount\":100}",
	             NULL, 601, ts),
	          "__debezium.newkey", "{\"id\":2}");
	produce_kv(T_KEYMOVE, 0, "{\"id\":1}", NULL);
	produce_h(T_KEYMOVE, "{\"id\":2}",
	          ev(e, sizeof(e), "c", "users", NULL,
	             "{\"id\":2,\"amount\":250}", 601, ts),
	          "__debezium.oldkey", "{\"id\":1}");
	/* DELETE id 2 and INSERT id 3 in one transaction: no headers */
	produce_kv(T_KEYMOVE, 0, "{\"id\":2}",
	           ev(e, sizeof(e), "d", "users", "{\"id\":2,\"amount\":250}",
	              NULL, 602, ts));
	produce_kv(T_KEYMOVE, 0, "{\"id\":2}", NULL);
	produce_kv(T_KEYMOVE, 0, "{\"id\":3}",
	           ev(e, sizeof(e), "c", "users", NULL,
	              "{\"id\":3,\"amount\":250}", 602, ts));
	/* headers, but the create is from another transaction */
	produce_h(T_KEYMOVE, "{\"id\":3}",
	          ev(e, sizeof(e), "d", "users", "{\"id\":3,\"amount\":250}",
	             NULL, 603, ts),
	          "__debezium.newkey", "{\"id\":4}");
	produce_kv(T_KEYMOVE, 0, "{\"id\":3}", NULL);
	produce_h(T_KEYMOVE, "{\"id\":4}",
	          ev(e, sizeof(e), "c", "users", NULL,
	             "{\"id\":4,\"amount\":250}", 604, ts),
	          "__debezium.oldkey", "{\"id\":3}");
}

static void
keymove_check(zdm_cdc_source *src)
{
	size_t nwant = sizeof(keymove_want) / sizeof(*keymove_want), i;
	double seconds;
	uint64_t backlog;
	got g;

	zdm_error err;

	collect(src, nwant, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, nwant);
	for (i = 0; i < g.n && i < nwant; i++) {
		CHECK_STR(g.desc[i], keymove_want[i]);
		CHECK_INT(g.pos[i].offset, keymove_offsets[i]);
	}
	CHECK(src->ops->fence(src, 1000, &err) == 0);
	CHECK_INT(fenced(src), 0);
	/* the merged change's position covers its delete and tombstone */
	ack(src, 0, 3);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 6);
	CHECK_INT(fenced(src), 0);
	ack(src, 0, 9);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 0);
	CHECK_INT(fenced(src), 1000);
	/* an older LSN moves nothing back */
	CHECK(src->ops->fence(src, 900, &err) == 0);
	CHECK_INT(fenced(src), 1000);
	/* nothing new in the topic: reached at once */
	CHECK(src->ops->fence(src, 1100, &err) == 0);
	CHECK_INT(fenced(src), 1100);
}

/*
 * multi: three partitions; order holds within each, acks are per
 * partition, and a restart redelivers per partition what was not acked.
 */
#define T_MULTI "dbz.public.multi"

static void
multi_produce(void)
{
	char e[4096], row[64];
	int i, p;

	for (i = 0; i < 4; i++)
		for (p = 0; p < 3; p++) {
			snprintf(row, sizeof(row), "{\"p\":%d,\"seq\":%d}", p,
			         i);
			produce(T_MULTI, p,
			        ev(e, sizeof(e), "c", "multi", NULL, row, 600,
			           now_ms()));
		}
}

static void
multi_check_order(const got *g, int64_t next_seq[3])
{
	size_t i;

	for (i = 0; i < g->n; i++) {
		int32_t p = g->pos[i].partition;
		char want[128];

		CHECK(p >= 0 && p < 3);
		if (p < 0 || p >= 3)
			continue;
		snprintf(want, sizeof(want),
		         "INSERT public.multi new[p='%d' seq='%" PRId64 "']",
		         (int)p, next_seq[p]);
		CHECK_STR(g->desc[i], want);
		CHECK_INT(g->pos[i].offset, next_seq[p]);
		next_seq[p]++;
	}
}

static void
multi_check_first(zdm_cdc_source *src)
{
	int64_t next_seq[3] = {0, 0, 0};
	double seconds;
	uint64_t backlog;
	got g;

	collect(src, 12, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 12);
	multi_check_order(&g, next_seq);
	ack(src, 0, 3); /* all of partition 0 */
	ack(src, 1, 1); /* half of partition 1; none of 2 */
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 0 + 2 + 4);
}

static void
multi_check_again(zdm_cdc_source *src)
{
	int64_t next_seq[3] = {4, 2, 0};
	got g;

	collect(src, 6, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 6);
	multi_check_order(&g, next_seq);
	CHECK_INT(next_seq[0], 4);
	CHECK_INT(next_seq[1], 4);
	CHECK_INT(next_seq[2], 4);
	/* and nothing more */
	collect(src, 1, 1.0, &g);
	CHECK_INT(g.n, 0);
}

/* redeliver: consume 6, ack 3, close; reopened, the last 3 come again. */
#define T_REDELIVER "dbz.public.redeliver"

static void
redeliver_produce(void)
{
	char e[4096], row[64];
	int i;

	for (i = 0; i < 6; i++) {
		snprintf(row, sizeof(row), "{\"id\":%d}", i);
		/* committed in the database 5 s ago */
		produce(T_REDELIVER, 0,
		        ev(e, sizeof(e), "c", "r", NULL, row, 700 + i,
		           now_ms() - 5000));
	}
}

static void
redeliver_check_first(zdm_cdc_source *src)
{
	double seconds;
	uint64_t backlog;
	got g;

	collect(src, 6, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 6);
	CHECK_STR(g.desc[0], "INSERT public.r new[id='0']");
	CHECK_STR(g.desc[5], "INSERT public.r new[id='5']");
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 6);
	CHECK(seconds >= 4.5 && seconds < 60);
	ack(src, 0, 2);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 3);
	CHECK(seconds >= 4.5 && seconds < 60);
}

static void
redeliver_check_again(zdm_cdc_source *src)
{
	double seconds;
	uint64_t backlog;
	got g;

	collect(src, 3, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 3);
	CHECK_STR(g.desc[0], "INSERT public.r new[id='3']");
	CHECK_INT(g.pos[0].offset, 3);
	CHECK_STR(g.desc[2], "INSERT public.r new[id='5']");
	CHECK_INT(g.pos[2].offset, 5);
	collect(src, 1, 1.0, &g);
	CHECK_INT(g.n, 0);
	ack(src, 0, 5);
	lag(src, &seconds, &backlog);
	CHECK_INT(backlog, 0);
	CHECK(seconds == 0);
}

/*
 * Malformed events, one topic each: a good change, the bad event, a good
 * change after it.  The first comes out, then the error naming the bad
 * event's place, again on every call; the one after never comes.
 */
static const struct {
	const char *topic;
	const char *value; /* the bad event */
	const char *error;
} bad_cases[] = {
	{"dbz.bad.json", "{not json",
         "topic dbz.bad.json partition 0 offset 1: not JSON: string or '}' "
         "expected near 'not' (line 1, column 4)"},
	{"dbz.bad.noop",
         "{\"before\":null,\"after\":{\"id\":1},\"source\":{\"schema\":"
         "\"public\",\"table\":\"t\"}}",
         "topic dbz.bad.noop partition 0 offset 1: no \"op\": not a Debezium "
         "change event"},
	{"dbz.bad.unknownop",
         "{\"before\":null,\"after\":{\"id\":1},\"source\":{\"schema\":"
         "\"public\",\"table\":\"t\"},\"op\":\"z\"}",
         "topic dbz.bad.unknownop partition 0 offset 1: unknown op \"z\""},
	{"dbz.bad.noafter",
         "{\"before\":null,\"source\":{\"schema\":\"public\",\"table\":\"t\"},"
         "\"op\":\"c\"}",
         "topic dbz.bad.noafter partition 0 offset 1: no \"after\" for op "
         "\"c\""},
};
#define NBAD (sizeof(bad_cases) / sizeof(*bad_cases))

static void
bad_produce(void)
{
	char e[4096];
	size_t i;

	for (i = 0; i < NBAD; i++) {
		produce(bad_cases[i].topic, 0,
		        ev(e, sizeof(e), "c", "t", NULL, "{\"id\":0}", 800,
		           now_ms()));
		produce(bad_cases[i].topic, 0, bad_cases[i].value);
		produce(bad_cases[i].topic, 0,
		        ev(e, sizeof(e), "c", "t", NULL, "{\"id\":2}", 802,
		           now_ms()));
	}
}

static void
bad_check(zdm_cdc_source *src, size_t i, bool reopened)
{
	const zdm_cdc_change *c;
	double seconds;
	uint64_t backlog;
	zdm_error err;
	size_t n;
	got g;

	collect(src, MAX_GOT, 20, &g);
	CHECK_INT(g.rc, -1);
	CHECK_STR(g.err.message, bad_cases[i].error);
	if (!reopened) {
		/* the good one before it came first */
		CHECK_INT(g.n, 1);
		CHECK_STR(g.desc[0], "INSERT public.t new[id='0']");
		CHECK(src->ops->next(src, &c, &n, 100, &err) < 0 && n == 0);
		CHECK_STR(err.message, bad_cases[i].error);
		lag(src, &seconds, &backlog);
		CHECK_INT(backlog, 3); /* nothing committed unless acked */
		if (i == 0)
			ack(src, 0, 0);
	} else {
		/* acked before: straight to the error; not acked: again */
		CHECK_INT(g.n, i == 0 ? 0 : 1);
	}
}

/*
 * retain: a group's committed offset that retention has deleted is an
 * error naming it and the earliest offset left, not a silent jump there.
 * The mock keeps 5 MB a partition (rdkafka_mock.c, not settable): 7
 * messages of 900 kB push the first ones out.
 */
#define T_RETAIN "dbz.public.retain"
#define RETAIN_BIG 900000

static void
retain_produce(void)
{
	char e[4096];

	produce(T_RETAIN, 0,
	        ev(e, sizeof(e), "c", "r", NULL, "{\"id\":0}", 900, now_ms()));
	produce(T_RETAIN, 0,
	        ev(e, sizeof(e), "c", "r", NULL, "{\"id\":1}", 901, now_ms()));
}

static void
retain_check_first(zdm_cdc_source *src)
{
	got g;

	collect(src, 2, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 2);
	ack(src, 0, 0); /* the group's committed offset is 1 */
}

/* Valid events, so that a consumer sent to the earliest left reads them. */
static int64_t
retain_expire(void)
{
	char *row = malloc(RETAIN_BIG), *e = malloc(RETAIN_BIG + 4096);
	int64_t lo = -1, hi = -1;
	int i;

	if (row == NULL || e == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	snprintf(row, RETAIN_BIG, "{\"id\":2,\"pad\":\"%0*d\"}",
	         RETAIN_BIG - 100, 0);
	for (i = 0; i < 7; i++) {
		produce(T_RETAIN, 0,
		        ev(e, RETAIN_BIG + 4096, "c", "r", NULL, row, 902,
		           now_ms()));
		rd_kafka_flush(producer, 5000); /* one message set each */
	}
	free(row);
	free(e);
	CHECK(rd_kafka_query_watermark_offsets(producer, T_RETAIN, 0, &lo, &hi,
	                                       5000) ==
	      RD_KAFKA_RESP_ERR_NO_ERROR);
	CHECK(lo > 1 && hi == 9);
	return lo;
}

static void
retain_check_again(zdm_cdc_source *src, int64_t lo)
{
	char want[512];
	got g;

	collect(src, MAX_GOT, 20, &g);
	CHECK_INT(g.rc, -1);
	CHECK_INT(g.n, 0);
	snprintf(want, sizeof(want),
	         "topic " T_RETAIN " partition 0: the committed offset 1 is "
	         "no longer in the topic (the earliest available is %" PRId64
	         "): changes were lost to retention; start the migration over",
	         lo);
	CHECK_STR(g.err.message, want);
}

/*
 * beyond: a committed offset past the end of the partition (the topic was
 * recreated) is an error too.  The offset is committed by a consumer that
 * never joins the group, before zdm's does.
 */
#define T_BEYOND "dbz.public.beyond"

static void
commit_offset(const char *group, const char *topic, int64_t offset)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *list;
	char errstr[512];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
	                       sizeof(errstr))) == NULL) {
		fprintf(stderr, "committer: %s\n", errstr);
		exit(1);
	}
	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, topic, 0)->offset = offset;
	CHECK_INT(rd_kafka_commit(rk, list, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_destroy(rk);
}

static void
beyond_check(zdm_cdc_source *src)
{
	got g;

	collect(src, MAX_GOT, 20, &g);
	CHECK_INT(g.rc, -1);
	CHECK_INT(g.n, 0);
	CHECK_STR(g.err.message,
	          "topic " T_BEYOND " partition 0: the committed offset 50 is "
	          "out of range (the earliest available is 0, the end 2): was "
	          "the topic recreated? changes may be lost; start the "
	          "migration over");
}

/*
 * rebal: A alone reads both partitions and acknowledges nothing; B joins
 * the group and takes one.  After that A hands out nothing of B's
 * partition, its ack for it commits nothing (B's offset stays where it
 * was), and each reads its own partition from the committed offset.
 */
#define T_REBAL "dbz.public.rebal"

static void
rebal_produce(int seq)
{
	char e[4096], row[64];
	int p;

	for (p = 0; p < 2; p++) {
		snprintf(row, sizeof(row), "{\"p\":%d,\"seq\":%d}", p, seq);
		produce(T_REBAL, p,
		        ev(e, sizeof(e), "c", "rebal", NULL, row, 950,
		           now_ms()));
	}
}

static void
rebal_check_first(zdm_cdc_source *a)
{
	got g;

	collect(a, 2, 20, &g);
	CHECK_INT(g.rc, 0);
	CHECK_INT(g.n, 2);
	CHECK(g.n == 2 && g.pos[0].partition != g.pos[1].partition);
}

/*
 * next() on src once, appending to g the changes not seen before.  On a
 * loaded machine the group may rebalance more than once, and a consumer
 * then reads its partition again from the committed offset: the same
 * changes, delivered at least once, which is the contract.  Only their
 * first delivery counts here.
 */
static void
rebal_next(zdm_cdc_source *src, got *g)
{
	const zdm_cdc_change *c;
	zdm_error err;
	size_t n, i, k;

	if (src->ops->next(src, &c, &n, 100, &err) < 0) {
		check(0, __FILE__, __LINE__, "next: %s", err.message);
		return;
	}
	for (i = 0; i < n && g->n < MAX_GOT; i++) {
		for (k = 0; k < g->n; k++)
			if (g->pos[k].partition == c[i].position.partition &&
			    g->pos[k].offset == c[i].position.offset)
				break;
		if (k < g->n)
			continue;
		describe(&c[i], g->desc[g->n], sizeof(g->desc[0]));
		g->pos[g->n++] = c[i].position;
	}
}

static void
rebal_check(zdm_cdc_source *a, zdm_cdc_source *b)
{
	double deadline = mono() + 20, seconds;
	int32_t pa, pb;
	uint64_t backlog;
	char want[128];
	zdm_cdc_position other;
	zdm_error err;
	size_t i;
	got ga, gb;

	memset(&ga, 0, sizeof(ga));
	memset(&gb, 0, sizeof(gb));
	while ((ga.n < 2 || gb.n < 2) && mono() < deadline) {
		rebal_next(a, &ga);
		rebal_next(b, &gb);
	}
	CHECK_INT(ga.n, 2);
	CHECK_INT(gb.n, 2);
	if (ga.n < 1 || gb.n < 1)
		return;
	pa = ga.pos[0].partition;
	pb = gb.pos[0].partition;
	CHECK(pa != pb);
	for (i = 0; i < ga.n; i++) {
		snprintf(want, sizeof(want),
		         "INSERT public.rebal new[p='%d' seq='%d']", (int)pa,
		         (int)i);
		CHECK_STR(ga.desc[i], want);
		CHECK_INT(ga.pos[i].partition, pa);
	}
	for (i = 0; i < gb.n; i++) {
		snprintf(want, sizeof(want),
		         "INSERT public.rebal new[p='%d' seq='%d']", (int)pb,
		         (int)i);
		CHECK_STR(gb.desc[i], want);
	}
	/* A handed out pb@0 before B came: acking it now commits nothing */
	other.partition = pb;
	other.offset = 0;
	CHECK(a->ops->ack(a, other, &err) == 0);
	lag(a, &seconds, &backlog);
	CHECK_INT(backlog, 4);
	/* its own partition still commits */
	ack(a, pa, 1);
	lag(b, &seconds, &backlog);
	CHECK_INT(backlog, 2);
}

int
main(void)
{
	static const char *const topics[] = {T_BASIC,  T_SCHEMA, T_REDELIVER,
	                                     T_RETAIN, T_BEYOND, T_KEYMOVE};
	rd_kafka_conf_t *conf;
	rd_kafka_mock_cluster_t *mc;
	zdm_cdc_source *basic, *schema, *multi, *redeliver, *missing;
	zdm_cdc_source *retain, *beyond, *rebal_a, *rebal_b, *keymove;
	int64_t retain_lo;
	zdm_cdc_source *bad[NBAD];
	char errstr[512];
	double t0 = mono(), t1;
	size_t i;

	test_parser_ops();
	test_parser_values();
	test_parser_schema();
	test_parser_errors();
	test_parser_own();
	test_parser_keys();
	test_open_errors();
	printf("parser: %d checks, %d failed (%.1f s)\n", checks, failures,
	       mono() - t0);

	/* one mock cluster for every case: the producer starts it */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr,
	                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
	            RD_KAFKA_CONF_OK) {
		fprintf(stderr, "conf: %s\n", errstr);
		return 1;
	}
	producer =
		rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (producer == NULL) {
		fprintf(stderr, "producer: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_handle_mock_cluster(producer);
	bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
	for (i = 0; i < sizeof(topics) / sizeof(*topics); i++)
		rd_kafka_mock_topic_create(mc, topics[i], 1, 1);
	rd_kafka_mock_topic_create(mc, T_MULTI, 3, 1);
	rd_kafka_mock_topic_create(mc, T_REBAL, 2, 1);
	for (i = 0; i < NBAD; i++)
		rd_kafka_mock_topic_create(mc, bad_cases[i].topic, 1, 1);
	basic_produce();
	schema_produce();
	keymove_produce();
	multi_produce();
	redeliver_produce();
	retain_produce();
	produce(T_BEYOND, 0, "{\"never\":\"read\"}");
	produce(T_BEYOND, 0, "{\"never\":\"read\"}");
	rebal_produce(0);
	bad_produce();
	if (rd_kafka_flush(producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "flush: timed out\n");
		return 1;
	}

	commit_offset("zdm-beyond", T_BEYOND, 50);

	/* round 1: every source at once, so the group joins overlap */
	t1 = mono();
	basic = open_source(T_BASIC, "zdm-basic");
	schema = open_source(T_SCHEMA, "zdm-schema");
	keymove = open_source(T_KEYMOVE, "zdm-keymove");
	multi = open_source(T_MULTI, "zdm-multi");
	redeliver = open_source(T_REDELIVER, "zdm-redeliver");
	missing = open_source("dbz.public.missing", "zdm-missing");
	retain = open_source(T_RETAIN, "zdm-retain");
	beyond = open_source(T_BEYOND, "zdm-beyond");
	rebal_a = open_source(T_REBAL, "zdm-rebal");
	for (i = 0; i < NBAD; i++)
		bad[i] = open_source(bad_cases[i].topic, bad_cases[i].topic);
	basic_check(basic);
	basic_tail(basic);
	missing_check(missing);
	schema_check(schema);
	keymove_check(keymove);
	multi_check_first(multi);
	redeliver_check_first(redeliver);
	for (i = 0; i < NBAD; i++)
		bad_check(bad[i], i, false);
	retain_check_first(retain);
	beyond_check(beyond);
	rebal_check_first(rebal_a);
	rebal_produce(1);
	retain->ops->close(retain);
	beyond->ops->close(beyond);
	retain_lo = retain_expire();
	basic->ops->close(basic);
	missing->ops->close(missing);
	schema->ops->close(schema);
	keymove->ops->close(keymove);
	multi->ops->close(multi);
	redeliver->ops->close(redeliver);
	for (i = 0; i < 2; i++)
		bad[i]->ops->close(bad[i]);
	printf("kafka round 1: %.1f s\n", mono() - t1);

	/* round 2: the same groups again, after a restart */
	t1 = mono();
	multi = open_source(T_MULTI, "zdm-multi");
	redeliver = open_source(T_REDELIVER, "zdm-redeliver");
	for (i = 0; i < 2; i++)
		bad[i] = open_source(bad_cases[i].topic, bad_cases[i].topic);
	retain = open_source(T_RETAIN, "zdm-retain");
	rebal_b = open_source(T_REBAL, "zdm-rebal");
	multi_check_again(multi);
	redeliver_check_again(redeliver);
	for (i = 0; i < 2; i++)
		bad_check(bad[i], i, true);
	retain_check_again(retain, retain_lo);
	rebal_check(rebal_a, rebal_b);
	retain->ops->close(retain);
	rebal_a->ops->close(rebal_a);
	rebal_b->ops->close(rebal_b);
	multi->ops->close(multi);
	redeliver->ops->close(redeliver);
	for (i = 0; i < NBAD; i++)
		bad[i]->ops->close(bad[i]);
	printf("kafka round 2: %.1f s\n", mono() - t1);

	rd_kafka_destroy(producer);
	CHECK(rd_kafka_wait_destroyed(5000) == 0);
	printf("test_debezium: %d checks, %d failed (%.1f s)\n", checks,
	       failures, mono() - t0);
	return failures ? 1 : 0;
}
