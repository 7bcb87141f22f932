/*
 * cdc_debezium_parse.c -- the Debezium event parser: one Kafka message (its
 * key and its JSON value) into a zdm_cdc_change (cdc.h).
 *
 * It is for turning Debezium's change event envelope into the records the
 * applier takes, and for nothing else: it must not include librdkafka or
 * know of topics, partitions, offsets, consumer groups or headers (the
 * consumer, cdc_debezium.c, reads those and passes what matters in the
 * event's meta), must not talk to PostgreSQL, and keeps no global state:
 * everything hangs off the parser.  So tests and the fuzz target
 * (tests/fuzz/fuzz_debezium.c) reach all of it without a broker.  Memory of
 * a change lives in the parser's arena until the next reset.
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
 * A null value (a tombstone, which follows every delete and so a
 * primary-key change) is no change: the parser says so and the consumer
 * commits its offset (cdc_debezium.c).  Anything else that is not a
 * Debezium change event is a malformed event, an error saying what is
 * wrong with it.
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
 * mark its transactions: the source's own_xid(pg_current_xact_id()) (cdc.h)
 * before COMMIT, and every event whose source.txId is that xid comes with
 * own_write set (Debezium's txId is the 32-bit xid, so ids compare modulo
 * 2^32).  The marks live in memory (the last 16384): after a restart the
 * replayed echoes are recognised only by convergence again.  own_origin_field
 * is for pipelines that do carry a marker (an SMT, a future Debezium that
 * exposes the origin): a dotted path into the envelope whose string value
 * beginning "zdm_" marks an own write, the native source's naming.
 */
#include "cdc_debezium_parse.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "strbuf.h"

#define DBZ_DEFAULT_PLACEHOLDER "__debezium_unavailable_value"
#define DBZ_OWN_XIDS 16384  /* own transaction ids remembered */
#define DBZ_OWN_SLOTS 32768 /* their hash table: a power of two */

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
	own_xids *own;   /* allocated at the first mark */
	zdm_arena arena; /* the current change (or batch: the source's) */
	zdm_strbuf sb;   /* the value being built */
	zdm_strbuf elem; /* an array element being built */
};

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

const char *
zdm_cdc_debezium_quote(const char *s, char *buf, size_t len)
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
	zdm_error_set(err, "column %s: %s",
	              zdm_cdc_debezium_quote(col, q, sizeof(q)), what);
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
sb_date(zdm_strbuf *sb, int64_t days)
{
	int64_t y;
	unsigned m, d;

	civil_from_days(days, &y, &m, &d);
	if (y <= 0) { /* year 0 is 1 BC */
		zdm_strbuf_printf(sb, "%04" PRId64 "-%02u-%02u", 1 - y, m, d);
		return true;
	}
	zdm_strbuf_printf(sb, "%04" PRId64 "-%02u-%02u", y, m, d);
	return false;
}

/* HH:MM:SS[.ffffff], trailing zeros of the fraction dropped. */
static void
sb_time_of_day(zdm_strbuf *sb, int64_t us)
{
	int64_t s = us / 1000000, frac = us % 1000000;

	zdm_strbuf_printf(sb, "%02" PRId64 ":%02" PRId64 ":%02" PRId64,
	                  s / 3600, s / 60 % 60, s % 60);
	if (frac != 0) {
		char f[8];
		int n = 6;

		snprintf(f, sizeof(f), "%06" PRId64, frac);
		while (f[n - 1] == '0')
			n--;
		zdm_strbuf_putc(sb, '.');
		zdm_strbuf_put(sb, f, (size_t)n);
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
sb_timestamp(zdm_strbuf *sb, int64_t v, int64_t per_sec, const char *col,
             zdm_error *err)
{
	int64_t per_day = per_sec * 86400;
	int64_t days = floor_div(v, per_day);
	bool bc;

	if (days > DBZ_MAX_DAYS || days < -DBZ_MAX_DAYS)
		return col_error(err, col, "timestamp %" PRId64 " out of range",
		                 v);
	bc = sb_date(sb, days);
	zdm_strbuf_putc(sb, ' ');
	sb_time_of_day(sb, to_us(v - days * per_day, per_sec));
	if (bc)
		zdm_strbuf_puts(sb, " BC");
	return 0;
}

/* PostgreSQL's time runs from 00:00:00 to 24:00:00 inclusive. */
static int
sb_time(zdm_strbuf *sb, int64_t v, int64_t per_sec, const char *col,
        zdm_error *err)
{
	if (v < 0 || v > 86400 * per_sec)
		return col_error(err, col, "time %" PRId64 " out of range", v);
	sb_time_of_day(sb, to_us(v, per_sec));
	return 0;
}

/* Shortest "%.Ng" that reads back as the same double. */
static void
sb_real(zdm_strbuf *sb, double v)
{
	char buf[40];
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	zdm_strbuf_puts(sb, buf);
}

static void
sb_json_string(zdm_strbuf *sb, const char *s, size_t n)
{
	size_t i;

	zdm_strbuf_putc(sb, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':
			zdm_strbuf_puts(sb, "\\\"");
			break;
		case '\\':
			zdm_strbuf_puts(sb, "\\\\");
			break;
		case '\n':
			zdm_strbuf_puts(sb, "\\n");
			break;
		case '\r':
			zdm_strbuf_puts(sb, "\\r");
			break;
		case '\t':
			zdm_strbuf_puts(sb, "\\t");
			break;
		default:
			if (c < 0x20)
				zdm_strbuf_printf(sb, "\\u%04x", c);
			else
				zdm_strbuf_putc(sb, (char)c);
		}
	}
	zdm_strbuf_putc(sb, '"');
}

/* Compact JSON, numbers as sb_real and integers print them. */
static void
sb_json(zdm_strbuf *sb, const json_t *v)
{
	void *it;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		zdm_strbuf_putc(sb, '{');
		for (it = json_object_iter((json_t *)v); it != NULL;
		     it = json_object_iter_next((json_t *)v, it)) {
			const char *key = json_object_iter_key(it);

			if (it != json_object_iter((json_t *)v))
				zdm_strbuf_putc(sb, ',');
			sb_json_string(sb, key, strlen(key));
			zdm_strbuf_putc(sb, ':');
			sb_json(sb, json_object_iter_value(it));
		}
		zdm_strbuf_putc(sb, '}');
		break;
	case JSON_ARRAY:
		zdm_strbuf_putc(sb, '[');
		for (i = 0; i < json_array_size(v); i++) {
			if (i > 0)
				zdm_strbuf_putc(sb, ',');
			sb_json(sb, json_array_get(v, i));
		}
		zdm_strbuf_putc(sb, ']');
		break;
	case JSON_STRING:
		sb_json_string(sb, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		zdm_strbuf_printf(sb, "%" JSON_INTEGER_FORMAT,
		                  json_integer_value(v));
		break;
	case JSON_REAL:
		sb_real(sb, json_real_value(v));
		break;
	case JSON_TRUE:
		zdm_strbuf_puts(sb, "true");
		break;
	case JSON_FALSE:
		zdm_strbuf_puts(sb, "false");
		break;
	case JSON_NULL:
		zdm_strbuf_puts(sb, "null");
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
base64_decode(const char *s, size_t n, zdm_strbuf *out)
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
			zdm_strbuf_putc(out, (char)((acc >> bits) & 0xff));
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
            semantic sem, zdm_strbuf *sb, bool *unchanged, zdm_error *err)
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

			zdm_strbuf_reset(&p->elem);
			if (base64_decode(s, n, &p->elem) < 0)
				return col_error(err, col,
				                 "bytes value is not base64");
			if (is_placeholder(p, p->elem.data, p->elem.len)) {
				*unchanged = true;
				return 0;
			}
			zdm_strbuf_puts(sb, "\\x");
			for (i = 0; i < p->elem.len && !sb->failed; i++) {
				unsigned char c =
					(unsigned char)p->elem.data[i];

				zdm_strbuf_putc(sb, hex[c >> 4]);
				zdm_strbuf_putc(sb, hex[c & 15]);
			}
			return 0;
		}
		if (sem != SEM_PLAIN)
			return col_error(err, col,
			                 "a string where the schema says an "
			                 "integer (a date, time or interval)");
		zdm_strbuf_put(sb, s, n);
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
				zdm_strbuf_puts(sb, " BC");
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
			zdm_strbuf_printf(
				sb, "%" JSON_INTEGER_FORMAT " microseconds",
				iv);
			return 0;
		default:
			zdm_strbuf_printf(sb, "%" JSON_INTEGER_FORMAT, iv);
			return 0;
		}
	case JSON_REAL:
		sb_real(sb, json_real_value(v));
		return 0;
	case JSON_TRUE:
		zdm_strbuf_putc(sb, 't');
		return 0;
	case JSON_FALSE:
		zdm_strbuf_putc(sb, 'f');
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
sb_array_quoted(zdm_strbuf *sb, const char *s, size_t n)
{
	size_t i;

	zdm_strbuf_putc(sb, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			zdm_strbuf_putc(sb, '\\');
		zdm_strbuf_putc(sb, s[i]);
	}
	zdm_strbuf_putc(sb, '"');
}

static int
array_text(zdm_cdc_debezium_parser *p, const char *col, const json_t *arr,
           const json_t *items, zdm_strbuf *sb, zdm_error *err)
{
	semantic sem = semantic_of(items);
	const json_t *inner = json_object_get(items, "items");
	size_t i;

	zdm_strbuf_putc(sb, '{');
	for (i = 0; i < json_array_size(arr); i++) {
		const json_t *e = json_array_get(arr, i);
		bool unchanged;

		if (i > 0)
			zdm_strbuf_putc(sb, ',');
		if (json_is_null(e)) {
			zdm_strbuf_puts(sb, "NULL");
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
			zdm_strbuf_putc(sb, json_is_true(e) ? 't' : 'f');
			continue;
		}
		{
			zdm_strbuf one = {0};
			int rc = scalar_text(p, col, e, sem, &one, &unchanged,
			                     err);

			if (rc == 0 && unchanged)
				sb_array_quoted(sb, p->placeholder,
				                p->placeholder_len);
			else if (rc == 0)
				sb_array_quoted(sb, one.data ? one.data : "",
				                one.len);
			if (one.failed)
				sb->failed = true;
			zdm_strbuf_free(&one);
			if (rc < 0)
				return -1;
		}
	}
	zdm_strbuf_putc(sb, '}');
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
	cols = zdm_arena_alloc(&p->arena, n * sizeof(*cols));
	if (cols == NULL)
		goto oom;
	for (it = json_object_iter((json_t *)row); it != NULL;
	     it = json_object_iter_next((json_t *)row, it)) {
		const char *key = json_object_iter_key(it);
		const json_t *v = json_object_iter_value(it);
		const json_t *fs = field_schema(fields, key);
		bool unchanged = false;

		cols[i].name = zdm_arena_strndup(&p->arena, key, strlen(key));
		cols[i].value = NULL;
		cols[i].unchanged_toast = false;
		if (cols[i].name == NULL)
			goto oom;
		if (!json_is_null(v)) {
			zdm_strbuf_reset(&p->sb);
			/* data non-NULL from here */
			zdm_strbuf_put(&p->sb, "", 0);
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
			if (p->sb.failed)
				goto oom;
			if (unchanged) {
				cols[i].unchanged_toast = true;
			} else {
				cols[i].value = zdm_arena_strndup(
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
                zdm_cdc_change *change, zdm_cdc_debezium_meta *meta,
                zdm_error *err)
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
		              zdm_cdc_debezium_quote(op, q, sizeof(q)));
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
		if (meta->move == ZDM_DBZ_MOVE_DELETE && before != NULL &&
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

	change->schema =
		zdm_arena_strndup(&p->arena, s_schema, strlen(s_schema));
	change->table = zdm_arena_strndup(&p->arena, s_table, strlen(s_table));
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

int
zdm_cdc_debezium_parse_event(zdm_cdc_debezium_parser *p, const void *key,
                             size_t key_len, const void *value, size_t len,
                             zdm_cdc_change *change,
                             zdm_cdc_debezium_meta *meta, zdm_error *err)
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
	zdm_arena_free(&p->arena);
	zdm_strbuf_free(&p->sb);
	zdm_strbuf_free(&p->elem);
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
	zdm_cdc_debezium_meta meta;

	zdm_cdc_debezium_parser_reset(p);
	meta.move = ZDM_DBZ_MOVE_NONE;
	return zdm_cdc_debezium_parse_event(p, key, key_len, value, len, change,
	                                    &meta, err);
}

void
zdm_cdc_debezium_parser_reset(zdm_cdc_debezium_parser *p)
{
	zdm_arena_reset(&p->arena);
}

void
zdm_cdc_debezium_parser_free(zdm_cdc_debezium_parser *p)
{
	parser_destroy(p);
}
