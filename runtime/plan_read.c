/*
 * plan_read.c -- read and validate a compiled plan (plan.out).
 *
 * The runtime's half of the only contract between zdmc and zdm; it knows
 * docs/plan-format.md and nothing of the compiler's code (compiler/
 * plan_write.c is the other half, and a unit test holds the two together).
 * The YAML is loaded with libyaml's document API, then walked once into a
 * zdm_plan of plain malloc'd C data, so nothing downstream sees YAML.
 *
 * Invariants:
 *   - A plan is accepted whole or refused with one message, before anything
 *     touches a database.  The checks run in the order that gives the most
 *     useful message: is it YAML, is it a plan, is it a version we read, do
 *     its bytes still match plan_sha256 (an edited plan is reported as
 *     edited, not as whatever the edit broke), and only then is every field
 *     checked for presence and type.
 *   - The checksum is over the raw bytes, not over a re-serialisation:
 *     everything before the final line, which must be exactly
 *     "plan_sha256: " and 64 lower-case hex digits.
 *   - Messages are "NAME:line:col: error: ..." (1-based, from libyaml's
 *     marks) when a place is known, "NAME: error: ..." otherwise.
 *   - Values this runtime cannot run are refused here, not part way
 *     through: an unknown sync, a backfill key other than ctid,
 *     a server older than 15, a gate or an approve entry that names no
 *     phase, a lock_timeout of 0 (which PostgreSQL takes as forever).
 *   - A hostile plan costs little to refuse: one larger than
 *     ZDM_PLAN_MAX_BYTES is refused before it is parsed (zdm_plan_load
 *     stops reading there), and libyaml's event parser walks the bytes
 *     first, counting nesting, and stops at ZDM_PLAN_MAX_DEPTH (libyaml's
 *     scanner is quadratic in flow nesting: 400 KB of '[' cost 95 s of CPU
 *     before this check).
 *   - Keys this version does not know are ignored: the format may grow
 *     optional keys without a version bump.  Keys it knows must have the
 *     right type; a string that is a plain null reads as absent.
 *   - Versions 1, 2 and 3 are read.  tables[].changes come out as facts
 *     (zdm_change) whatever the version: a version 3 change states them,
 *     a version 1 or 2 change (split_column, rename_column,
 *     alter_column_type with their own keys) is converted here, so nothing
 *     downstream knows that older plans exist.  A version 3 change's name
 *     is never interpreted: one this runtime does not know is read like any
 *     other.
 *
 * It must not guess: no defaults for required fields (the compiler resolved
 * every option; a missing one means a broken plan, not "use the default"),
 * no repair of a bad checksum, and no knowledge of what the SQL does.
 */
#include "plan_read.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CHECKSUM_PREFIX "plan_sha256: "
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* The oldest server this runtime's SQL is written for (security_invoker
 * views are 15's). */
#define ZDM_MIN_SERVER_VERSION_NUM 150000

typedef struct plan_reader {
	const char *name; /* for messages: the path, or what the caller said */
	yaml_document_t doc;
	char *errbuf;
	size_t errlen;
	int format_version; /* once read: what the rest may contain */
} plan_reader;

static int reader_fail(plan_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int reader_fail_line(plan_reader *r, size_t line, size_t col,
                            const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int reader_fail_at(plan_reader *r, const yaml_node_t *node,
                          const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
reader_vfail(plan_reader *r, size_t line, size_t col, const char *fmt,
             va_list ap)
{
	int n;

	if (!r->errbuf || r->errlen == 0)
		return -1;
	if (line)
		n = snprintf(r->errbuf, r->errlen,
		             "%s:%zu:%zu: error: ", r->name, line, col);
	else
		n = snprintf(r->errbuf, r->errlen, "%s: error: ", r->name);
	if (n >= 0 && (size_t)n < r->errlen)
		vsnprintf(r->errbuf + n, r->errlen - (size_t)n, fmt, ap);
	return -1;
}

/* "NAME: error: ..." -- about the whole plan.  Always returns -1. */
static int
reader_fail(plan_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reader_vfail(r, 0, 0, fmt, ap);
	va_end(ap);
	return -1;
}

/* "NAME:line:col: error: ..." with a 1-based line and column. */
static int
reader_fail_line(plan_reader *r, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reader_vfail(r, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* At the start of node (libyaml's marks are 0-based). */
static int
reader_fail_at(plan_reader *r, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reader_vfail(r, node->start_mark.line + 1, node->start_mark.column + 1,
	             fmt, ap);
	va_end(ap);
	return -1;
}

/* libyaml's own account of why the bytes are not YAML. */
static int
reader_fail_yaml(plan_reader *r, const yaml_parser_t *parser)
{
	if (parser->error == YAML_MEMORY_ERROR)
		return reader_fail(r, "out of memory");
	if (parser->error == YAML_READER_ERROR)
		/* the reader reports a byte offset, not a line */
		return reader_fail(r, "not valid YAML: %s at byte %zu",
		                   parser->problem ? parser->problem
		                                   : "unknown",
		                   parser->problem_offset);
	if (parser->context)
		return reader_fail_line(
			r, parser->problem_mark.line + 1,
			parser->problem_mark.column + 1,
			"not valid YAML: %s (%s at line %zu, column %zu)",
			parser->problem ? parser->problem : "unknown",
			parser->context, parser->context_mark.line + 1,
			parser->context_mark.column + 1);
	return reader_fail_line(r, parser->problem_mark.line + 1,
	                        parser->problem_mark.column + 1,
	                        "not valid YAML: %s",
	                        parser->problem ? parser->problem : "unknown");
}

static const char *
node_type_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "empty";
	}
}

/* ---- scalars ------------------------------------------------------------ */

static bool
scalar_is(const yaml_node_t *node, const char *text)
{
	size_t len = strlen(text);

	return node->type == YAML_SCALAR_NODE &&
	       node->data.scalar.length == len &&
	       memcmp(node->data.scalar.value, text, len) == 0;
}

static bool
scalar_is_plain(const yaml_node_t *node)
{
	return node->type == YAML_SCALAR_NODE &&
	       node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML's null: a plain ~, null, Null, NULL or nothing at all.  A quoted
 * 'null' is the four-letter string. */
static bool
node_is_null(const yaml_node_t *node)
{
	return scalar_is_plain(node) &&
	       (node->data.scalar.length == 0 || scalar_is(node, "~") ||
	        scalar_is(node, "null") || scalar_is(node, "Null") ||
	        scalar_is(node, "NULL"));
}

/*
 * A plain decimal integer, as YAML 1.2's core schema has it ([-+]?[0-9]+).
 * The other spellings YAML allows (0x, 0o, 1_000) are refused: zdmc never
 * writes them and a plan is not the place to be clever.
 */
static bool
scalar_to_integer(const yaml_node_t *node, long long *out, bool *overflow)
{
	const char *s = (const char *)node->data.scalar.value;
	size_t len = node->data.scalar.length;
	size_t i = 0;
	char text[32];
	char *end;

	*overflow = false;
	if (!scalar_is_plain(node) || len == 0 || len >= sizeof(text))
		return false;
	if (s[0] == '-' || s[0] == '+')
		i++;
	if (i == len)
		return false;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	memcpy(text, s, len);
	text[len] = '\0';
	errno = 0;
	*out = strtoll(text, &end, 10);
	if (errno == ERANGE)
		*overflow = true;
	return true;
}

/* ---- mappings ----------------------------------------------------------- */

/* The value for key in map, or NULL.  Keys that are not scalars are never
 * ours, so they are skipped. */
static yaml_node_t *
map_get(plan_reader *r, const yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(&r->doc, pair->key);

		if (k && scalar_is(k, key))
			return yaml_document_get_node(&r->doc, pair->value);
	}
	return NULL;
}

/*
 * A mapping we are about to read: it must be one, and no key may appear
 * twice (libyaml keeps both; which one counted would be an accident).
 */
static int
check_mapping(plan_reader *r, const yaml_node_t *node, const char *what)
{
	yaml_node_pair_t *start, *top;

	if (node->type != YAML_MAPPING_NODE)
		return reader_fail_at(r, node, "%s must be a mapping, not %s",
		                      what, node_type_name(node));
	start = node->data.mapping.pairs.start;
	top = node->data.mapping.pairs.top;
	for (yaml_node_pair_t *a = start; a < top; a++) {
		yaml_node_t *ka = yaml_document_get_node(&r->doc, a->key);

		if (!ka || ka->type != YAML_SCALAR_NODE)
			continue;
		for (yaml_node_pair_t *b = start; b < a; b++) {
			yaml_node_t *kb =
				yaml_document_get_node(&r->doc, b->key);

			if (kb && kb->type == YAML_SCALAR_NODE &&
			    kb->data.scalar.length == ka->data.scalar.length &&
			    memcmp(kb->data.scalar.value, ka->data.scalar.value,
			           ka->data.scalar.length) == 0)
				return reader_fail_at(
					r, ka,
					"%s has key \"%.*s\" twice (first at line %zu)",
					what, (int)ka->data.scalar.length,
					(const char *)ka->data.scalar.value,
					kb->start_mark.line + 1);
		}
	}
	return 0;
}

/*
 * Every key in keys[] must be in map.  All the missing ones are named in
 * one message, so a tool writer fixes them in one go.
 */
static int
require_keys(plan_reader *r, const yaml_node_t *map, const char *what,
             const char *const *keys, size_t nkeys)
{
	char list[512];
	size_t used = 0, missing = 0;

	list[0] = '\0';
	for (size_t i = 0; i < nkeys; i++) {
		int n;

		if (map_get(r, map, keys[i]))
			continue;
		n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
		             missing ? ", " : "", keys[i]);
		if (n > 0 && (size_t)n < sizeof(list) - used)
			used += (size_t)n;
		missing++;
	}
	if (missing == 0)
		return 0;
	return reader_fail_at(r, map, "%s%smissing required key%s %s", what,
	                      what[0] ? ": " : "", missing > 1 ? "s" : "",
	                      list);
}

/*
 * Field readers.  what names the enclosing mapping in messages ("options",
 * "step expand.1", "" at the top); the key has been checked present by
 * require_keys where the format requires it.
 */
#define WHAT_SEP(what) ((what)[0] ? ": " : "")

/*
 * A string, malloc'd into *out.  Absent or null gives NULL when nullable;
 * otherwise null is an error.  Any scalar style is a string: the writer
 * quotes what must be quoted, and a plain "10" in a string field means the
 * text 10 to any reader that asked for a string.
 */
static int
get_string(plan_reader *r, const yaml_node_t *map, const char *what,
           const char *key, bool nullable, char **out)
{
	yaml_node_t *node = map_get(r, map, key);
	size_t len;

	*out = NULL;
	if (!node || (nullable && node_is_null(node)))
		return 0;
	if (node->type != YAML_SCALAR_NODE)
		return reader_fail_at(
			r, node, "%s%s\"%s\" must be a string, not %s", what,
			WHAT_SEP(what), key, node_type_name(node));
	if (node_is_null(node))
		return reader_fail_at(r, node,
		                      "%s%s\"%s\" must be a string, not null",
		                      what, WHAT_SEP(what), key);
	len = node->data.scalar.length;
	/* "\0" in a double-quoted scalar: C strings cannot carry it, and
	 * silently cutting SQL short is the worst way to fail */
	if (memchr(node->data.scalar.value, '\0', len))
		return reader_fail_at(r, node,
		                      "%s%s\"%s\" contains a NUL character",
		                      what, WHAT_SEP(what), key);
	*out = malloc(len + 1);
	if (!*out)
		return reader_fail(r, "out of memory");
	memcpy(*out, node->data.scalar.value, len);
	(*out)[len] = '\0';
	return 0;
}

static int
get_integer(plan_reader *r, const yaml_node_t *map, const char *what,
            const char *key, long long min, long long max, long long *out)
{
	yaml_node_t *node = map_get(r, map, key);
	bool overflow;

	*out = 0;
	if (!node)
		return 0;
	if (!scalar_to_integer(node, out, &overflow))
		return reader_fail_at(r, node, "%s%s\"%s\" must be an integer",
		                      what, WHAT_SEP(what), key);
	if (overflow)
		return reader_fail_at(r, node, "%s%s\"%s\" is out of range",
		                      what, WHAT_SEP(what), key);
	if (*out < min || *out > max) {
		if (max == LLONG_MAX)
			return reader_fail_at(
				r, node,
				"%s%s\"%s\" must be at least %lld, not %.*s",
				what, WHAT_SEP(what), key, min,
				(int)node->data.scalar.length,
				(const char *)node->data.scalar.value);
		return reader_fail_at(
			r, node,
			"%s%s\"%s\" must be between %lld and %lld, not %.*s",
			what, WHAT_SEP(what), key, min, max,
			(int)node->data.scalar.length,
			(const char *)node->data.scalar.value);
	}
	return 0;
}

static int
get_long(plan_reader *r, const yaml_node_t *map, const char *what,
         const char *key, long min, long *out)
{
	long long v;
	int error = get_integer(r, map, what, key, min, LONG_MAX, &v);

	*out = (long)v;
	return error;
}

/* A duration: whole milliseconds with the unit, "500ms". */
static int
get_duration(plan_reader *r, const yaml_node_t *map, const char *what,
             const char *key, long *out)
{
	yaml_node_t *node = map_get(r, map, key);
	const char *s;
	size_t len, digits;
	long long v = 0;

	*out = 0;
	if (!node)
		return 0;
	if (node->type != YAML_SCALAR_NODE)
		goto bad;
	s = (const char *)node->data.scalar.value;
	len = node->data.scalar.length;
	for (digits = 0; digits < len && s[digits] >= '0' && s[digits] <= '9';
	     digits++) {
		if (v > (LONG_MAX - (s[digits] - '0')) / 10)
			return reader_fail_at(r, node,
			                      "%s%s\"%s\" is out of range",
			                      what, WHAT_SEP(what), key);
		v = v * 10 + (s[digits] - '0');
	}
	if (digits == 0 || len != digits + 2 ||
	    memcmp(s + digits, "ms", 2) != 0)
		goto bad;
	*out = (long)v;
	return 0;

bad:
	return reader_fail_at(
		r, node,
		"%s%s\"%s\" must be a duration in milliseconds, like 500ms",
		what, WHAT_SEP(what), key);
}

/*
 * A lock_timeout: a duration PostgreSQL takes as one, 1ms to INT_MAX ms.
 * 0 is refused, not passed on: to PostgreSQL it means wait forever, and a
 * DDL waiting forever for its lock queues every query behind it.
 */
static int
get_lock_timeout(plan_reader *r, const yaml_node_t *map, const char *what,
                 const char *key, long *out)
{
	int error = get_duration(r, map, what, key, out);

	if (error == 0 && map_get(r, map, key) && (*out < 1 || *out > INT_MAX))
		return reader_fail_at(
			r, map_get(r, map, key),
			"%s%s\"%s\" must be between 1ms and %dms (PostgreSQL takes 0 as forever), not %ldms",
			what, WHAT_SEP(what), key, INT_MAX, *out);
	return error;
}

/* The phases a gate can stand before, and so the names approve may hold. */
static const char *const gate_names[] = {"expand", "backfill", "verify",
                                         "switch", "contract"};

static bool
is_gate_name(const char *s)
{
	for (size_t i = 0; i < NELEM(gate_names); i++)
		if (strcmp(s, gate_names[i]) == 0)
			return true;
	return false;
}

/* true or false (the YAML 1.2 core spellings); absent is false. */
static int
get_bool(plan_reader *r, const yaml_node_t *map, const char *what,
         const char *key, bool *out)
{
	yaml_node_t *node = map_get(r, map, key);

	*out = false;
	if (!node)
		return 0;
	if (scalar_is_plain(node) &&
	    (scalar_is(node, "true") || scalar_is(node, "True") ||
	     scalar_is(node, "TRUE"))) {
		*out = true;
		return 0;
	}
	if (scalar_is_plain(node) &&
	    (scalar_is(node, "false") || scalar_is(node, "False") ||
	     scalar_is(node, "FALSE")))
		return 0;
	return reader_fail_at(r, node, "%s%s\"%s\" must be true or false", what,
	                      WHAT_SEP(what), key);
}

/* The list under key, which must be one. */
static int
get_list(plan_reader *r, const yaml_node_t *map, const char *what,
         const char *key, yaml_node_t **out)
{
	yaml_node_t *node = map_get(r, map, key);

	*out = NULL;
	if (!node)
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return reader_fail_at(
			r, node, "%s%s\"%s\" must be a list, not %s", what,
			WHAT_SEP(what), key, node_type_name(node));
	*out = node;
	return 0;
}

static size_t
list_length(const yaml_node_t *list)
{
	return (size_t)(list->data.sequence.items.top -
	                list->data.sequence.items.start);
}

static yaml_node_t *
list_item(plan_reader *r, const yaml_node_t *list, size_t i)
{
	return yaml_document_get_node(&r->doc,
	                              list->data.sequence.items.start[i]);
}

/* ---- the checksum ------------------------------------------------------- */

static int
sha256_hex(plan_reader *r, const void *data, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return reader_fail(
			r, "could not compute SHA-256 (OpenSSL failed)");
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
	return 0;
}

static size_t
line_number_at(const char *data, size_t offset)
{
	size_t line = 1;

	for (size_t i = 0; i < offset; i++)
		if (data[i] == '\n')
			line++;
	return line;
}

/*
 * The final line must be "plan_sha256: <64 lower-case hex>", optionally
 * followed by one \n, and must be the top-level key libyaml saw (not, say,
 * the tail of a multi-line string).  Its value is the SHA-256 of every byte
 * before that line.  The hex is copied to hex_out.
 */
static int
verify_checksum(plan_reader *r, const yaml_node_t *root, const char *data,
                size_t len, char hex_out[65])
{
	const size_t prefixlen = sizeof(CHECKSUM_PREFIX) - 1;
	size_t end = len, start, line;
	const char *hex;
	bool well_formed;
	yaml_node_t *node;
	char actual[65];

	if (end > 0 && data[end - 1] == '\n')
		end--;
	start = end;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	line = line_number_at(data, start);

	if (end - start < prefixlen ||
	    memcmp(data + start, CHECKSUM_PREFIX, prefixlen) != 0) {
		/* Appended to after compiling?  Then say so, not "truncated". */
		for (size_t i = start; i-- > 0;) {
			if ((i == 0 || data[i - 1] == '\n') &&
			    len - i >= prefixlen &&
			    memcmp(data + i, CHECKSUM_PREFIX, prefixlen) == 0)
				return reader_fail_line(
					r, line_number_at(data, i), 1,
					"plan_sha256 must be the last line of the plan");
		}
		return reader_fail(
			r,
			"the plan does not end with a plan_sha256 line; it is truncated or was not written by zdmc");
	}
	hex = data + start + prefixlen;
	well_formed = end - start - prefixlen == 64;
	/* data need not be NUL-terminated: no strspn here */
	for (size_t i = 0; well_formed && i < 64; i++)
		well_formed = (hex[i] >= '0' && hex[i] <= '9') ||
		              (hex[i] >= 'a' && hex[i] <= 'f');
	if (!well_formed)
		return reader_fail_line(
			r, line, prefixlen + 1,
			"malformed plan_sha256: expected 64 lower-case hexadecimal digits");
	node = map_get(r, root, "plan_sha256");
	if (!node || node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.length != 64 ||
	    memcmp(node->data.scalar.value, hex, 64) != 0 ||
	    node->start_mark.line + 1 != line)
		return reader_fail_line(
			r, line, 1,
			"malformed plan_sha256: the last line is not the plan's top-level plan_sha256 key");

	if (sha256_hex(r, data, start, actual) < 0)
		return -1;
	if (memcmp(actual, hex, 64) != 0)
		return reader_fail(
			r,
			"plan checksum mismatch: the plan was edited after it was compiled; recompile it with zdmc");
	memcpy(hex_out, hex, 64);
	hex_out[64] = '\0';
	return 0;
}

/* ---- the parts of a plan ------------------------------------------------ */

static int
read_source(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"file", "sha256"};
	yaml_node_t *map = map_get(r, root, "source");
	int error;

	if ((error = check_mapping(r, map, "\"source\"")) < 0 ||
	    (error = require_keys(r, map, "source", required, 2)) < 0 ||
	    (error = get_string(r, map, "source", "file", false,
	                        &plan->source_file)) < 0 ||
	    (error = get_string(r, map, "source", "sha256", false,
	                        &plan->source_sha256)) < 0)
		return error;
	return 0;
}

static int
read_requires(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"server_version_num"};
	yaml_node_t *map = map_get(r, root, "requires");
	long long v;
	int error;

	if ((error = check_mapping(r, map, "\"requires\"")) < 0 ||
	    (error = require_keys(r, map, "requires", required, 1)) < 0 ||
	    (error = get_integer(r, map, "requires", "server_version_num",
	                         ZDM_MIN_SERVER_VERSION_NUM, INT_MAX, &v)) < 0)
		return error;
	plan->min_server_version_num = (int)v;
	return 0;
}

static int
read_options(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {
		"batch_size", "batch_pause", "lock_timeout", "lock_retries",
		"approve",    "sync",        "verify_sample"};
	yaml_node_t *map = map_get(r, root, "options");
	yaml_node_t *approve;
	int error;

	if ((error = check_mapping(r, map, "\"options\"")) < 0 ||
	    (error = require_keys(r, map, "options", required,
	                          NELEM(required))) < 0 ||
	    (error = get_long(r, map, "options", "batch_size", 1,
	                      &plan->batch_size)) < 0 ||
	    (error = get_duration(r, map, "options", "batch_pause",
	                          &plan->batch_pause_ms)) < 0 ||
	    (error = get_lock_timeout(r, map, "options", "lock_timeout",
	                              &plan->lock_timeout_ms)) < 0 ||
	    (error = get_long(r, map, "options", "lock_retries", 0,
	                      &plan->lock_retries)) < 0 ||
	    (error = get_duration(r, map, "options", "statement_timeout",
	                          &plan->statement_timeout_ms)) < 0 ||
	    (error = get_list(r, map, "options", "approve", &approve)) < 0 ||
	    (error = get_string(r, map, "options", "sync", false,
	                        &plan->sync)) < 0 ||
	    (error = get_long(r, map, "options", "verify_sample", 0,
	                      &plan->verify_sample)) < 0)
		return error;
	if (plan->statement_timeout_ms > INT_MAX)
		return reader_fail_at(
			r, map_get(r, map, "statement_timeout"),
			"options: \"statement_timeout\" is longer than PostgreSQL "
			"takes (%d ms)",
			INT_MAX);
	/* a sync this runtime does not know would run a trigger-less expand
	 * and never sync a row; cdc needs the version-2 format, which says
	 * how (a version-1 plan saying cdc is broken, not newer) */
	if (strcmp(plan->sync, "trigger") != 0 &&
	    !(strcmp(plan->sync, "cdc") == 0 && plan->format_version >= 2))
		return reader_fail_at(
			r, map_get(r, map, "sync"),
			strcmp(plan->sync, "cdc") == 0
				? "options: \"sync\" is \"%s\" in a version-%d plan; cdc plans are format version 2"
				: "options: \"sync\" is \"%s\", and this zdm syncs by trigger or cdc only; the plan needs a newer zdm",
			plan->sync, plan->format_version);

	plan->napprove = list_length(approve);
	if (plan->napprove == 0)
		return 0;
	plan->approve = calloc(plan->napprove, sizeof(char *));
	if (!plan->approve) {
		plan->napprove = 0;
		return reader_fail(r, "out of memory");
	}
	for (size_t i = 0; i < plan->napprove; i++) {
		yaml_node_t *item = list_item(r, approve, i);
		size_t len;

		if (item->type != YAML_SCALAR_NODE || node_is_null(item))
			return reader_fail_at(
				r, item,
				"options: \"approve\" must be a list of gate names");
		len = item->data.scalar.length;
		if (memchr(item->data.scalar.value, '\0', len))
			return reader_fail_at(
				r, item,
				"options: \"approve\" holds a name with a NUL character");
		plan->approve[i] = malloc(len + 1);
		if (!plan->approve[i])
			return reader_fail(r, "out of memory");
		memcpy(plan->approve[i], item->data.scalar.value, len);
		plan->approve[i][len] = '\0';
		if (!is_gate_name(plan->approve[i]))
			return reader_fail_at(
				r, item,
				"options: \"approve\" holds \"%s\", which is not a gate (expected expand, backfill, verify, switch or contract)",
				plan->approve[i]);
	}
	return 0;
}

static int get_string_list(plan_reader *r, const yaml_node_t *map,
                           const char *what, const char *key, char ***out,
                           size_t *n);

/*
 * schema, and (version 3, a migration over several schemas) schemas: every
 * version schema, schema first, each once.  Without schemas the plan has
 * one, schema.
 */
static int
read_new_version(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"schema", "search_path"};
	yaml_node_t *map = map_get(r, root, "new_version");
	yaml_node_t *list;
	int error;

	if ((error = check_mapping(r, map, "\"new_version\"")) < 0 ||
	    (error = require_keys(r, map, "new_version", required, 2)) < 0 ||
	    (error = get_string(r, map, "new_version", "schema", false,
	                        &plan->version_schema)) < 0 ||
	    (error = get_string(r, map, "new_version", "search_path", false,
	                        &plan->search_path)) < 0)
		return error;
	list = map_get(r, map, "schemas");
	if (list == NULL) {
		plan->version_schemas = calloc(1, sizeof(char *));
		if (!plan->version_schemas)
			return reader_fail(r, "out of memory");
		plan->version_schemas[0] = strdup(plan->version_schema);
		if (!plan->version_schemas[0])
			return reader_fail(r, "out of memory");
		plan->nversion_schemas = 1;
		return 0;
	}
	if (r->format_version < 3)
		return reader_fail_at(
			r, list,
			"new_version: \"schemas\" needs plan format version 3");
	if ((error = get_string_list(r, map, "new_version", "schemas",
	                             &plan->version_schemas,
	                             &plan->nversion_schemas)) < 0)
		return error;
	if (plan->nversion_schemas == 0 ||
	    strcmp(plan->version_schemas[0], plan->version_schema) != 0)
		return reader_fail_at(
			r, list,
			"new_version: \"schemas\" must start with \"schema\" (%s)",
			plan->version_schema);
	for (size_t i = 1; i < plan->nversion_schemas; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(plan->version_schemas[i],
			           plan->version_schemas[j]) == 0)
				return reader_fail_at(
					r, list,
					"new_version: schema %s is listed twice in \"schemas\"",
					plan->version_schemas[i]);
	return 0;
}

/* ---- tables and their changes ------------------------------------------ */

static void string_list_free(char **list, size_t n);

/* A list of names that may be left out: absent is empty. */
static int
get_optional_names(plan_reader *r, const yaml_node_t *map, const char *what,
                   const char *key, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!map_get(r, map, key))
		return 0;
	return get_string_list(r, map, what, key, out, n);
}

/*
 * A list of mappings that may be left out (absent is empty): *out gets n
 * zeroed items of size bytes each, for the caller to fill from *list.  The
 * count is set with the array, so a half-read change frees cleanly.
 */
static int
get_item_list(plan_reader *r, const yaml_node_t *map, const char *what,
              const char *key, size_t size, void **out, size_t *n,
              yaml_node_t **list)
{
	int error;

	*out = NULL;
	*n = 0;
	if ((error = get_list(r, map, what, key, list)) < 0)
		return error;
	if (!*list || list_length(*list) == 0)
		return 0;
	*out = calloc(list_length(*list), size);
	if (!*out)
		return reader_fail(r, "out of memory");
	*n = list_length(*list);
	return 0;
}

/* One mapping of a fact's list: tables[1].changes[2].creates[1]. */
static int
item_begin(plan_reader *r, const yaml_node_t *list, size_t i, const char *what,
           const char *key, const char *const *required, size_t nrequired,
           char *item_what, size_t len, yaml_node_t **item)
{
	int error;

	*item = list_item(r, list, i);
	snprintf(item_what, len, "%s.%s[%zu]", what, key, i + 1);
	if ((error = check_mapping(r, *item, item_what)) < 0 ||
	    (error = require_keys(r, *item, item_what, required, nrequired)) <
	            0)
		return error;
	return 0;
}

/* creates[] item. */
static int
read_created_column(plan_reader *r, const yaml_node_t *map, const char *what,
                    zdm_created_column *col)
{
	int error;

	if ((error = get_string(r, map, what, "column", false, &col->column)) <
	            0 ||
	    /* null: the type of the existing column of that name */
	    (error = get_string(r, map, what, "type", true, &col->type)) < 0 ||
	    (error = get_bool(r, map, what, "not_null", &col->not_null)) < 0 ||
	    (error = get_string(r, map, what, "using", true, &col->using)) < 0)
		return error;
	return 0;
}

static int
read_creates(plan_reader *r, const yaml_node_t *map, const char *what,
             zdm_change *c)
{
	static const char *const required[] = {"column", "type", "not_null"};
	yaml_node_t *list, *item;
	char iw[192];
	int error;

	if ((error = get_item_list(
		     r, map, what, "creates", sizeof(zdm_created_column),
		     (void **)&c->creates, &c->ncreates, &list)) < 0)
		return error;
	for (size_t i = 0; i < c->ncreates; i++)
		if ((error = item_begin(r, list, i, what, "creates", required,
		                        NELEM(required), iw, sizeof(iw),
		                        &item)) < 0 ||
		    (error = read_created_column(r, item, iw, &c->creates[i])) <
		            0)
			return error;
	return 0;
}

/*
 * A list of {A: name, B: name} pairs (renames, reverse,
 * constraint_renames); b_nullable allows null for the second, which then
 * reads as NULL.
 */
static int
read_pairs(plan_reader *r, const yaml_node_t *map, const char *what,
           const char *key, const char *a, const char *b, bool b_nullable,
           size_t size, void **out, size_t *n)
{
	const char *const required[] = {a, b};
	yaml_node_t *list, *item;
	char iw[192];
	int error;

	if ((error = get_item_list(r, map, what, key, size, out, n, &list)) < 0)
		return error;
	for (size_t i = 0; i < *n; i++) {
		/* every pair type here is two char * fields */
		char **pair = (char **)((char *)*out + i * size);

		if ((error = item_begin(r, list, i, what, key, required, 2, iw,
		                        sizeof(iw), &item)) < 0 ||
		    (error = get_string(r, item, iw, a, false, &pair[0])) < 0 ||
		    (error = get_string(r, item, iw, b, b_nullable, &pair[1])) <
		            0)
			return error;
	}
	return 0;
}

static int
read_references(plan_reader *r, const yaml_node_t *map, const char *what,
                zdm_change *c)
{
	static const char *const required[] = {"table", "columns"};
	yaml_node_t *list, *item;
	char iw[192];
	int error;

	if ((error = get_item_list(
		     r, map, what, "references", sizeof(zdm_reference),
		     (void **)&c->references, &c->nreferences, &list)) < 0)
		return error;
	for (size_t i = 0; i < c->nreferences; i++) {
		zdm_reference *ref = &c->references[i];

		if ((error = item_begin(r, list, i, what, "references",
		                        required, NELEM(required), iw,
		                        sizeof(iw), &item)) < 0 ||
		    (error = get_string(r, item, iw, "table", false,
		                        &ref->table)) < 0 ||
		    (error = get_string_list(r, item, iw, "columns",
		                             &ref->columns, &ref->ncolumns)) <
		            0)
			return error;
	}
	return 0;
}

/*
 * A version 3 change: its facts, each checked for its type.  The name is
 * kept but never interpreted, so a change this runtime has never heard of
 * is run like any other: the facts say what the preflight must check.
 */
static int
read_change_facts(plan_reader *r, const yaml_node_t *map, const char *what,
                  zdm_change *c)
{
	static const char *const required[] = {"change", "at", "summary"};
	int error;

	if ((error = require_keys(r, map, what, required, NELEM(required))) <
	            0 ||
	    (error = get_string(r, map, what, "change", false, &c->change)) <
	            0 ||
	    (error = get_string(r, map, what, "at", false, &c->at)) < 0 ||
	    (error = get_string(r, map, what, "summary", false, &c->summary)) <
	            0 ||
	    (error = get_optional_names(r, map, what, "reads", &c->reads,
	                                &c->nreads)) < 0 ||
	    (error = read_creates(r, map, what, c)) < 0 ||
	    (error = get_optional_names(r, map, what, "replaces", &c->replaces,
	                                &c->nreplaces)) < 0 ||
	    (error = read_pairs(r, map, what, "renames", "column", "to", false,
	                        sizeof(zdm_column_rename), (void **)&c->renames,
	                        &c->nrenames)) < 0 ||
	    (error = read_pairs(r, map, what, "reverse", "column", "using",
	                        false, sizeof(zdm_reverse_column),
	                        (void **)&c->reverse, &c->nreverse)) < 0 ||
	    (error = get_bool(r, map, what, "irreversible", &c->irreversible)) <
	            0 ||
	    (error = get_bool(r, map, what, "table_created",
	                      &c->table_created)) < 0 ||
	    (error = get_bool(r, map, what, "table_dropped",
	                      &c->table_dropped)) < 0 ||
	    (error = get_optional_names(r, map, what, "constraints_created",
	                                &c->constraints_created,
	                                &c->nconstraints_created)) < 0 ||
	    (error = get_optional_names(r, map, what, "constraints_dropped",
	                                &c->constraints_dropped,
	                                &c->nconstraints_dropped)) < 0 ||
	    (error = read_pairs(r, map, what, "constraint_renames",
	                        "constraint", "to", false,
	                        sizeof(zdm_constraint_rename),
	                        (void **)&c->constraint_renames,
	                        &c->nconstraint_renames)) < 0 ||
	    (error = get_optional_names(r, map, what, "indexes_created",
	                                &c->indexes_created,
	                                &c->nindexes_created)) < 0 ||
	    (error = read_references(r, map, what, c)) < 0 ||
	    (error = get_string(r, map, what, "table_renamed_to", true,
	                        &c->table_renamed_to)) < 0 ||
	    (error = get_string(r, map, what, "split_into", true,
	                        &c->split_into)) < 0 ||
	    (error = read_pairs(r, map, what, "defaults", "column", "default",
	                        true, sizeof(zdm_column_default),
	                        (void **)&c->defaults, &c->ndefaults)) < 0 ||
	    (error = get_optional_names(r, map, what, "drops", &c->drops,
	                                &c->ndrops)) < 0 ||
	    (error = get_optional_names(r, map, what, "not_null_set",
	                                &c->not_null_set, &c->nnot_null_set)) <
	            0 ||
	    (error = get_optional_names(r, map, what, "not_null_dropped",
	                                &c->not_null_dropped,
	                                &c->nnot_null_dropped)) < 0)
		return error;
	return 0;
}

/* ---- version 1 and 2 changes, converted into facts --------------------- */

static const char *const change_kinds[] = {"split_column", "rename_column",
                                           "alter_column_type"};

/* A malloc'd string from a format; NULL when out of memory. */
static char *format_string(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *
format_string(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A one-name list holding a copy of name. */
static int
one_name(char ***out, size_t *n, const char *name)
{
	if (!(*out = calloc(1, sizeof(char *))))
		return -1;
	*n = 1;
	return ((*out)[0] = strdup(name)) ? 0 : -1;
}

/* split_column's into: the new columns, read straight into creates. */
static int
read_split_into(plan_reader *r, const yaml_node_t *map, const char *what,
                zdm_change *c)
{
	static const char *const required[] = {"into"};
	static const char *const col_required[] = {"column", "type",
	                                           "not_null"};
	yaml_node_t *list, *item;
	char iw[192];
	int error;

	if ((error = require_keys(r, map, what, required, 1)) < 0 ||
	    (error = get_list(r, map, what, "into", &list)) < 0)
		return error;
	if (list_length(list) == 0)
		return reader_fail_at(r, list,
		                      "%s: \"into\" must list the new columns",
		                      what);
	if ((error = get_item_list(
		     r, map, what, "into", sizeof(zdm_created_column),
		     (void **)&c->creates, &c->ncreates, &list)) < 0)
		return error;
	for (size_t i = 0; i < c->ncreates; i++)
		if ((error = item_begin(r, list, i, what, "into", col_required,
		                        NELEM(col_required), iw, sizeof(iw),
		                        &item)) < 0 ||
		    (error = get_string(r, item, iw, "column", false,
		                        &c->creates[i].column)) < 0 ||
		    (error = get_string(r, item, iw, "type", false,
		                        &c->creates[i].type)) < 0 ||
		    (error = get_bool(r, item, iw, "not_null",
		                      &c->creates[i].not_null)) < 0 ||
		    (error = get_string(r, item, iw, "using", false,
		                        &c->creates[i].using)) < 0)
			return error;
	return 0;
}

/* "split name into first_name, last_name" */
static char *
split_summary(const char *column, const zdm_change *c)
{
	size_t len = strlen(column) + 16;
	char *s;

	for (size_t i = 0; i < c->ncreates; i++)
		len += strlen(c->creates[i].column) + 2;
	if (!(s = malloc(len)))
		return NULL;
	snprintf(s, len, "split %s into ", column);
	for (size_t i = 0; i < c->ncreates; i++) {
		if (i > 0)
			strcat(s, ", ");
		strcat(s, c->creates[i].column);
	}
	return s;
}

/*
 * A version 1 or 2 change: the kind says which keys it has (column, to,
 * type, using, into, reverse_using), and they are turned into the facts a
 * version 3 plan states (docs/plan-format.md, "Older plans"):
 *   split_column       reads [C], creates into, replaces [C],
 *                      reverse [{C, reverse_using}]
 *   alter_column_type  reads [C], creates [{C, type, false, using}],
 *                      replaces [C], reverse [{C, reverse_using}]
 *   rename_column      reads [C], renames [{C, to}]
 * The kind is checked first, since it says which other keys are required;
 * keys that belong to another kind are ignored.
 */
static int
read_change_legacy(plan_reader *r, const yaml_node_t *map, const char *what,
                   zdm_change *c)
{
	static const char *const base[] = {"change", "column"};
	static const char *const rename[] = {"to"};
	static const char *const retype[] = {"type"};
	yaml_node_t *kind_node;
	char *column = NULL, *to = NULL, *type = NULL, *using = NULL,
	     *reverse_using = NULL;
	size_t k;
	int error;

	if ((error = require_keys(r, map, what, base, NELEM(base))) < 0)
		return error;
	kind_node = map_get(r, map, "change");
	for (k = 0; k < NELEM(change_kinds); k++)
		if (scalar_is(kind_node, change_kinds[k]))
			break;
	if (k == NELEM(change_kinds)) {
		if (kind_node->type != YAML_SCALAR_NODE)
			return reader_fail_at(
				r, kind_node,
				"%s: \"change\" must be a string, not %s", what,
				node_type_name(kind_node));
		return reader_fail_at(
			r, kind_node,
			"%s: unknown change \"%.*s\" (expected split_column, rename_column or alter_column_type)",
			what, (int)kind_node->data.scalar.length,
			(const char *)kind_node->data.scalar.value);
	}
	if (!(c->change = strdup(change_kinds[k])))
		return reader_fail(r, "out of memory");

	if ((error = get_string(r, map, what, "at", false, &c->at)) < 0 ||
	    (error = get_string(r, map, what, "column", false, &column)) < 0 ||
	    (error = get_bool(r, map, what, "irreversible", &c->irreversible)) <
	            0)
		goto cleanup;
	if (one_name(&c->reads, &c->nreads, column) < 0)
		goto oom;

	if (k == 1) { /* rename_column */
		if ((error = require_keys(r, map, what, rename, 1)) < 0 ||
		    (error = get_string(r, map, what, "to", false, &to)) < 0)
			goto cleanup;
		if (!(c->renames = calloc(1, sizeof(zdm_column_rename))))
			goto oom;
		c->nrenames = 1;
		if (!(c->renames[0].column = strdup(column)) ||
		    !(c->renames[0].to = strdup(to)) ||
		    !(c->summary =
		              format_string("rename %s to %s", column, to)))
			goto oom;
		error = 0;
		goto cleanup;
	}

	if ((error = get_string(r, map, what, "reverse_using", true,
	                        &reverse_using)) < 0)
		goto cleanup;
	if (k == 2) { /* alter_column_type */
		if ((error = require_keys(r, map, what, retype, 1)) < 0 ||
		    (error = get_string(r, map, what, "type", false, &type)) <
		            0 ||
		    (error = get_string(r, map, what, "using", false, &using)) <
		            0)
			goto cleanup;
		/* NOT NULL is the old column's, learnt from the catalog */
		if (!(c->creates = calloc(1, sizeof(zdm_created_column))))
			goto oom;
		c->ncreates = 1;
		c->creates[0].column = column;
		c->creates[0].type = type;
		c->creates[0].using = using;
		column = type = using = NULL;
		if (!(column = strdup(c->creates[0].column)) ||
		    !(c->summary = format_string("change %s to %s", column,
		                                 c->creates[0].type)))
			goto oom;
	} else { /* split_column */
		if ((error = read_split_into(r, map, what, c)) < 0)
			goto cleanup;
		if (!(c->summary = split_summary(column, c)))
			goto oom;
	}
	if (one_name(&c->replaces, &c->nreplaces, column) < 0)
		goto oom;
	if (reverse_using) {
		if (!(c->reverse = calloc(1, sizeof(zdm_reverse_column))))
			goto oom;
		c->nreverse = 1;
		if (!(c->reverse[0].column = strdup(column)))
			goto oom;
		c->reverse[0].using = reverse_using;
		reverse_using = NULL;
	}
	error = 0;
	goto cleanup;

oom:
	error = reader_fail(r, "out of memory");
cleanup:
	free(column);
	free(to);
	free(type);
	free(using);
	free(reverse_using);
	return error;
}

/* One item of tables[].changes, as facts whatever the plan's version. */
static int
read_change(plan_reader *r, const yaml_node_t *map, const char *what,
            zdm_change *change)
{
	int error;

	if ((error = check_mapping(r, map, what)) < 0)
		return error;
	if (r->format_version >= 3)
		return read_change_facts(r, map, what, change);
	return read_change_legacy(r, map, what, change);
}

/*
 * The tables, twice: tables[] keeps the plain list of names the steps
 * refer to, table_info[] the same names with their changes.  Every count
 * is set right after its array is allocated, so zdm_plan_free can free a
 * plan whose read stopped half way.
 */
/* statements[] (optional): each entry's kind, place and facts; the
 * count is set right after the array is allocated (zdm_plan_free). */
static int
read_statements(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"statement", "at", "summary"};
	yaml_node_t *list;
	char what[64];
	int error;

	if ((error = get_list(r, root, "", "statements", &list)) < 0)
		return error;
	if (!list || list_length(list) == 0)
		return 0;
	plan->statements = calloc(list_length(list), sizeof(zdm_statement));
	if (!plan->statements)
		return reader_fail(r, "out of memory");
	plan->nstatements = list_length(list);
	for (size_t i = 0; i < plan->nstatements; i++) {
		yaml_node_t *item = list_item(r, list, i);
		zdm_statement *s = &plan->statements[i];

		snprintf(what, sizeof(what), "statements[%zu]", i + 1);
		if ((error = check_mapping(r, item, what)) < 0 ||
		    (error = require_keys(r, item, what, required,
		                          NELEM(required))) < 0 ||
		    (error = get_string(r, item, what, "statement", false,
		                        &s->statement)) < 0 ||
		    (error = get_string(r, item, what, "at", false, &s->at)) <
		            0 ||
		    (error = get_string(r, item, what, "summary", false,
		                        &s->summary)) < 0 ||
		    (error = get_string(r, item, what, "index_dropped", true,
		                        &s->index_dropped)) < 0 ||
		    (error = get_string(r, item, what, "type_created", true,
		                        &s->type_created)) < 0 ||
		    (error = get_string(r, item, what, "enum_type", true,
		                        &s->enum_type)) < 0 ||
		    (error = get_string(r, item, what, "label_added", true,
		                        &s->label_added)) < 0 ||
		    (error = get_string(r, item, what, "label_neighbour", true,
		                        &s->label_neighbour)) < 0 ||
		    (error = get_string(r, item, what, "label_renamed", true,
		                        &s->label_renamed)) < 0 ||
		    (error = get_string(r, item, what, "label_renamed_to", true,
		                        &s->label_renamed_to)) < 0)
			return error;
		if ((s->label_added || s->label_renamed) && !s->enum_type)
			return reader_fail_at(
				r, item, "%s: a label without \"enum_type\"",
				what);
		if ((s->label_renamed == NULL) != (s->label_renamed_to == NULL))
			return reader_fail_at(
				r, item,
				"%s: \"label_renamed\" and \"label_renamed_to\" go together",
				what);
	}
	return 0;
}

static int
read_tables(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"table"};
	yaml_node_t *list;
	char what[64];
	int error;

	if ((error = get_list(r, root, "", "tables", &list)) < 0)
		return error;
	if (list_length(list) == 0)
		return 0;
	plan->tables = calloc(list_length(list), sizeof(char *));
	plan->table_info = calloc(list_length(list), sizeof(zdm_table_info));
	if (!plan->tables || !plan->table_info)
		return reader_fail(r, "out of memory");
	plan->ntables = plan->ntable_info = list_length(list);
	for (size_t i = 0; i < plan->ntables; i++) {
		yaml_node_t *item = list_item(r, list, i);
		zdm_table_info *info = &plan->table_info[i];
		yaml_node_t *changes;

		snprintf(what, sizeof(what), "tables[%zu]", i + 1);
		if ((error = check_mapping(r, item, what)) < 0 ||
		    (error = require_keys(r, item, what, required, 1)) < 0 ||
		    (error = get_string(r, item, what, "table", false,
		                        &plan->tables[i])) < 0 ||
		    (error = get_list(r, item, what, "changes", &changes)) < 0)
			return error;
		info->name = strdup(plan->tables[i]);
		if (!info->name)
			return reader_fail(r, "out of memory");
		if (!changes || list_length(changes) == 0)
			continue;
		info->changes =
			calloc(list_length(changes), sizeof(zdm_change));
		if (!info->changes)
			return reader_fail(r, "out of memory");
		info->nchanges = list_length(changes);
		for (size_t j = 0; j < info->nchanges; j++) {
			char change_what[96];

			snprintf(change_what, sizeof(change_what),
			         "tables[%zu].changes[%zu]", i + 1, j + 1);
			if ((error = read_change(r, list_item(r, changes, j),
			                         change_what,
			                         &info->changes[j])) < 0)
				return error;
		}
	}
	return 0;
}

static int
parse_step_kind(const yaml_node_t *node, zdm_step_kind *out)
{
	static const struct {
		const char *name;
		zdm_step_kind kind;
	} kinds[] = {
		{"sql", ZDM_STEP_SQL},
		{"backfill", ZDM_STEP_BACKFILL},
		{"check", ZDM_STEP_CHECK},
		{"gate", ZDM_STEP_GATE},
		{"catch_up", ZDM_STEP_CATCH_UP},
		{"stop_sync", ZDM_STEP_STOP_SYNC},
		{"autocommit", ZDM_STEP_AUTOCOMMIT},
	};

	for (size_t i = 0; i < NELEM(kinds); i++) {
		if (scalar_is(node, kinds[i].name)) {
			*out = kinds[i].kind;
			return 0;
		}
	}
	return -1;
}

/*
 * An autocommit step's optional diagnose: description, sql and expect
 * required, examples optional (the keys of a check step).
 */
static int
read_diagnose(plan_reader *r, const yaml_node_t *map, const char *what,
              zdm_step *step)
{
	static const char *const keys[] = {"description", "sql", "expect"};
	yaml_node_t *d = map_get(r, map, "diagnose");
	char dwhat[192];
	int error;

	if (d == NULL)
		return 0;
	snprintf(dwhat, sizeof(dwhat), "%s: diagnose", what);
	step->diagnose = calloc(1, sizeof(*step->diagnose));
	if (step->diagnose == NULL)
		return reader_fail(r, "out of memory");
	if ((error = check_mapping(r, d, dwhat)) < 0 ||
	    (error = require_keys(r, d, dwhat, keys, 3)) < 0 ||
	    (error = get_string(r, d, dwhat, "description", false,
	                        &step->diagnose->description)) < 0 ||
	    (error = get_string(r, d, dwhat, "sql", false,
	                        &step->diagnose->sql)) < 0 ||
	    (error = get_integer(r, d, dwhat, "expect", LLONG_MIN, LLONG_MAX,
	                         &step->diagnose->expect)) < 0 ||
	    (error = get_string(r, d, dwhat, "examples", true,
	                        &step->diagnose->examples_sql)) < 0)
		return error;
	return 0;
}

/*
 * One step.  Which keys are required depends on the kind, so the kind is
 * read first; the id next, so every later message can name the step.
 */
static int
read_step(plan_reader *r, const yaml_node_t *map, const char *position,
          const char *phase, zdm_step *step)
{
	static const char *const base[] = {"id", "kind", "description"};
	static const char *const runs[] = {"transaction", "lock_timeout", "sql",
	                                   "compensation"};
	static const char *const backfill[] = {"key", "batch_size",
	                                       "batch_pause"};
	static const char *const check[] = {"expect"};
	static const char *const gate[] = {"gate", "approval"};
	char what[160];
	yaml_node_t *kind_node;
	int error;

	if ((error = check_mapping(r, map, position)) < 0 ||
	    (error = require_keys(r, map, position, base, 3)) < 0 ||
	    (error = get_string(r, map, position, "id", false, &step->id)) < 0)
		return error;
	snprintf(what, sizeof(what), "step %s", step->id);

	step->phase = strdup(phase);
	if (!step->phase)
		return reader_fail(r, "out of memory");

	kind_node = map_get(r, map, "kind");
	if (parse_step_kind(kind_node, &step->kind) < 0) {
		if (kind_node->type != YAML_SCALAR_NODE)
			return reader_fail_at(
				r, kind_node,
				"%s: \"kind\" must be a string, not %s", what,
				node_type_name(kind_node));
		return reader_fail_at(
			r, kind_node,
			"%s: unknown step kind \"%.*s\" (expected sql, backfill, check, gate, catch_up, stop_sync or autocommit)",
			what, (int)kind_node->data.scalar.length,
			(const char *)kind_node->data.scalar.value);
	}
	if ((step->kind == ZDM_STEP_CATCH_UP ||
	     step->kind == ZDM_STEP_STOP_SYNC) &&
	    r->format_version < 2)
		return reader_fail_at(
			r, kind_node,
			"%s: step kind \"%s\" needs plan format version 2",
			what,
			step->kind == ZDM_STEP_CATCH_UP ? "catch_up"
							: "stop_sync");
	if (step->kind == ZDM_STEP_AUTOCOMMIT && r->format_version < 3)
		return reader_fail_at(
			r, kind_node,
			"%s: step kind \"autocommit\" needs plan format version 3",
			what);

	if ((error = get_string(r, map, what, "description", false,
	                        &step->description)) < 0 ||
	    (error = get_string(r, map, what, "table", true, &step->table)) <
	            0 ||
	    (error = get_bool(r, map, what, "point_of_no_return",
	                      &step->point_of_no_return)) < 0)
		return error;

	if (step->kind == ZDM_STEP_CATCH_UP) {
		static const char *const catch_up[] = {"max_lag", "stable_for",
		                                       "barrier"};

		if ((error = require_keys(r, map, what, catch_up, 3)) < 0 ||
		    (error = get_duration(r, map, what, "max_lag",
		                          &step->max_lag_ms)) < 0 ||
		    (error = get_duration(r, map, what, "stable_for",
		                          &step->stable_for_ms)) < 0 ||
		    (error = get_bool(r, map, what, "barrier",
		                      &step->barrier)) < 0)
			return error;
		return 0;
	}
	if (step->kind == ZDM_STEP_STOP_SYNC)
		return 0;

	if (step->kind == ZDM_STEP_GATE) {
		/* A gate runs nothing; any sql or transaction key is ignored
		 * like any other key this version does not expect. */
		if ((error = require_keys(r, map, what, gate, 2)) < 0 ||
		    (error = get_string(r, map, what, "gate", false,
		                        &step->gate)) < 0 ||
		    (error = get_bool(r, map, what, "approval",
		                      &step->approval)) < 0)
			return error;
		if (!is_gate_name(step->gate))
			return reader_fail_at(
				r, map_get(r, map, "gate"),
				"%s: \"gate\" is \"%s\", which is not a gate (expected expand, backfill, verify, switch or contract)",
				what, step->gate);
		return 0;
	}

	/* compensation is required as a key even though it may be null: a
	 * plan that leaves it out says nothing, and "nothing to undo" must be
	 * said */
	if ((error = require_keys(r, map, what, runs, 4)) < 0 ||
	    (error = get_string(r, map, what, "transaction", false,
	                        &step->transaction)) < 0 ||
	    (error = get_lock_timeout(r, map, what, "lock_timeout",
	                              &step->lock_timeout_ms)) < 0 ||
	    (error = get_string(r, map, what, "sql", false, &step->sql)) < 0 ||
	    (error = get_string(r, map, what, "compensation", true,
	                        &step->compensation)) < 0)
		return error;

	if (step->kind == ZDM_STEP_AUTOCOMMIT) {
		if ((error = get_string(r, map, what, "index", true,
		                        &step->index)) < 0 ||
		    (error = read_diagnose(r, map, what, step)) < 0)
			return error;
	} else if (step->kind == ZDM_STEP_BACKFILL) {
		if ((error = require_keys(r, map, what, backfill, 3)) < 0 ||
		    (error = get_string(r, map, what, "key", false,
		                        &step->key)) < 0 ||
		    (error = get_long(r, map, what, "batch_size", 1,
		                      &step->batch_size)) < 0 ||
		    (error = get_duration(r, map, what, "batch_pause",
		                          &step->batch_pause_ms)) < 0)
			return error;
		/* the backfill walks pages by ctid; a plan keyed otherwise is
		 * from a newer compiler */
		if (strcmp(step->key, "ctid") != 0)
			return reader_fail_at(
				r, map_get(r, map, "key"),
				"%s: \"key\" is \"%s\", and this zdm backfills by ctid only; the plan needs a newer zdm",
				what, step->key);
	} else if (step->kind == ZDM_STEP_CHECK) {
		if ((error = require_keys(r, map, what, check, 1)) < 0 ||
		    (error = get_integer(r, map, what, "expect", LLONG_MIN,
		                         LLONG_MAX, &step->expect)) < 0 ||
		    (error = get_string(r, map, what, "examples", true,
		                        &step->examples_sql)) < 0 ||
		    (error = get_string(r, map, what, "count_where", true,
		                        &step->count_where)) < 0)
			return error;
		if (step->count_where != NULL && step->table == NULL)
			return reader_fail_at(
				r, map_get(r, map, "count_where"),
				"%s: \"count_where\" counts rows of the step's table, and the step has no \"table\"",
				what);
		if (map_get(r, map, "in_flight")) {
			static const char *const in_flight[] = {"offenders",
			                                        "recheck"};
			yaml_node_t *f = map_get(r, map, "in_flight");
			char fwhat[192];

			snprintf(fwhat, sizeof(fwhat), "%s: in_flight", what);
			if (r->format_version < 2)
				return reader_fail_at(
					r, f,
					"%s: \"in_flight\" needs plan format version 2",
					what);
			if ((error = check_mapping(r, f, fwhat)) < 0 ||
			    (error = require_keys(r, f, fwhat, in_flight, 2)) <
			            0 ||
			    (error = get_string(r, f, fwhat, "offenders", false,
			                        &step->in_flight_offenders)) <
			            0 ||
			    (error = get_string(r, f, fwhat, "recheck", false,
			                        &step->in_flight_recheck)) < 0)
				return error;
		}
	}
	return 0;
}

/*
 * Phases, flattened: each step keeps its phase's name.  Two passes over the
 * list, one to size the array and one to fill it, so zdm_plan holds one
 * allocation of steps and the count is right even on a failed read (which
 * zdm_plan_free relies on).
 */
static int
read_phases(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {"phase", "steps"};
	yaml_node_t *phases;
	size_t nphases, total = 0, k = 0;
	size_t *id_lines = NULL; /* where each step's id is, for duplicates */
	char what[64];
	int error;

	if ((error = get_list(r, root, "", "phases", &phases)) < 0)
		goto cleanup;
	nphases = list_length(phases);
	for (size_t i = 0; i < nphases; i++) {
		yaml_node_t *ph = list_item(r, phases, i);
		yaml_node_t *steps;

		snprintf(what, sizeof(what), "phases[%zu]", i + 1);
		if ((error = check_mapping(r, ph, what)) < 0 ||
		    (error = require_keys(r, ph, what, required, 2)) < 0 ||
		    (error = get_list(r, ph, what, "steps", &steps)) < 0)
			goto cleanup;
		total += list_length(steps);
	}
	if (total == 0) {
		error = 0;
		goto cleanup;
	}

	plan->steps = calloc(total, sizeof(zdm_step));
	id_lines = calloc(total, sizeof(size_t));
	if (!plan->steps || !id_lines) {
		error = reader_fail(r, "out of memory");
		goto cleanup;
	}
	plan->nsteps = total;

	for (size_t i = 0; i < nphases; i++) {
		yaml_node_t *ph = list_item(r, phases, i);
		yaml_node_t *steps = map_get(r, ph, "steps");
		char *phase_name = NULL;

		snprintf(what, sizeof(what), "phases[%zu]", i + 1);
		if ((error = get_string(r, ph, what, "phase", false,
		                        &phase_name)) < 0)
			goto cleanup;
		for (size_t j = 0; j < list_length(steps); j++, k++) {
			yaml_node_t *item = list_item(r, steps, j);
			char position[96];

			snprintf(position, sizeof(position),
			         "phases[%zu].steps[%zu]", i + 1, j + 1);
			error = read_step(r, item, position, phase_name,
			                  &plan->steps[k]);
			if (error == 0)
				id_lines[k] = map_get(r, item, "id")
				                      ->start_mark.line +
				              1;
			for (size_t m = 0; error == 0 && m < k; m++) {
				if (strcmp(plan->steps[m].id,
				           plan->steps[k].id) == 0)
					error = reader_fail_at(
						r, map_get(r, item, "id"),
						"duplicate step id \"%s\" (first at line %zu)",
						plan->steps[k].id, id_lines[m]);
			}
			if (error < 0) {
				free(phase_name);
				goto cleanup;
			}
		}
		free(phase_name);
	}
	error = 0;

cleanup:
	free(id_lines);
	return error;
}

/* ---- sync = cdc (format version 2) ------------------------------------- */

/* A list of plain strings under key (required; may be empty). */
static int
get_string_list(plan_reader *r, const yaml_node_t *map, const char *what,
                const char *key, char ***out, size_t *n)
{
	yaml_node_t *list;
	int error;

	*out = NULL;
	*n = 0;
	if ((error = get_list(r, map, what, key, &list)) < 0)
		return error;
	if (!list)
		return reader_fail_at(r, map, "%s%smissing required key \"%s\"",
		                      what, WHAT_SEP(what), key);
	if (list_length(list) == 0)
		return 0;
	*out = calloc(list_length(list), sizeof(char *));
	if (!*out)
		return reader_fail(r, "out of memory");
	*n = list_length(list);
	for (size_t i = 0; i < *n; i++) {
		yaml_node_t *item = list_item(r, list, i);
		size_t len;

		if (item->type != YAML_SCALAR_NODE || node_is_null(item) ||
		    item->data.scalar.length == 0 ||
		    memchr(item->data.scalar.value, '\0',
		           item->data.scalar.length))
			return reader_fail_at(
				r, item, "%s%s\"%s\" must be a list of names",
				what, WHAT_SEP(what), key);
		len = item->data.scalar.length;
		(*out)[i] = malloc(len + 1);
		if (!(*out)[i])
			return reader_fail(r, "out of memory");
		memcpy((*out)[i], item->data.scalar.value, len);
		(*out)[i][len] = '\0';
	}
	return 0;
}

static void
string_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/*
 * One identifier of a qualified name as PostgreSQL stores it: "..." with
 * "" for a quote, or a bare name taken as it is (the compiler quotes
 * whatever is not already a plain lower-case name).  Advances *p.
 */
static char *
split_identifier(const char **p)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	if (*s == '"') {
		for (s++; *s; s++) {
			if (*s == '"') {
				if (s[1] != '"')
					break;
				s++;
			}
			*o++ = *s;
		}
		if (*s != '"') {
			free(out);
			return NULL;
		}
		s++;
	} else {
		while (*s && *s != '.')
			*o++ = *s++;
	}
	*o = '\0';
	*p = s;
	return out;
}

/* "schema.table", each part possibly quoted, into its two stored names. */
static int
split_qualified(const char *qname, char **nspname, char **relname)
{
	const char *p = qname;

	*nspname = *relname = NULL;
	if (!(*nspname = split_identifier(&p)) || *p != '.' || !**nspname)
		goto bad;
	p++;
	if (!(*relname = split_identifier(&p)) || *p != '\0' || !**relname)
		goto bad;
	return 0;
bad:
	free(*nspname);
	free(*relname);
	*nspname = *relname = NULL;
	return -1;
}

static int
read_cdc_rules(plan_reader *r, const yaml_node_t *map, const char *what,
               const char *key, zdm_cdc_rule **out, size_t *n)
{
	yaml_node_t *list;
	char rwhat[224];
	int error;

	*out = NULL;
	*n = 0;
	if ((error = get_list(r, map, what, key, &list)) < 0)
		return error;
	if (!list || list_length(list) == 0)
		return reader_fail_at(r, map,
		                      "%s: \"%s\" must be a list of rules",
		                      what, key);
	*out = calloc(list_length(list), sizeof(zdm_cdc_rule));
	if (!*out)
		return reader_fail(r, "out of memory");
	*n = list_length(list);
	for (size_t i = 0; i < *n; i++) {
		yaml_node_t *item = list_item(r, list, i);
		zdm_cdc_rule *rule = &(*out)[i];
		char *apply = NULL;
		int conditions = 0;
		bool pending = false;

		snprintf(rwhat, sizeof(rwhat), "%s: %s[%zu]", what, key, i + 1);
		if ((error = check_mapping(r, item, rwhat)) < 0 ||
		    (error = get_string(r, item, rwhat, "apply", false,
		                        &apply)) < 0)
			return error;
		if (!apply)
			return reader_fail_at(
				r, item, "%s: missing required key \"apply\"",
				rwhat);
		if (strcmp(apply, "forward") == 0)
			rule->apply = ZDM_CDC_APPLY_FORWARD;
		else if (strcmp(apply, "reverse") == 0)
			rule->apply = ZDM_CDC_APPLY_REVERSE;
		else if (strcmp(apply, "nothing") == 0)
			rule->apply = ZDM_CDC_APPLY_NOTHING;
		else {
			error = reader_fail_at(
				r, map_get(r, item, "apply"),
				"%s: \"apply\" is \"%s\" (expected forward, reverse or nothing)",
				rwhat, apply);
			free(apply);
			return error;
		}
		free(apply);
		rule->cond = ZDM_CDC_COND_ALWAYS;
		if (map_get(r, item, "changed")) {
			conditions++;
			rule->cond = ZDM_CDC_COND_CHANGED;
			if ((error = get_string_list(r, item, rwhat, "changed",
			                             &rule->columns,
			                             &rule->ncolumns)) < 0)
				return error;
		}
		if (map_get(r, item, "not_null")) {
			conditions++;
			rule->cond = ZDM_CDC_COND_NOT_NULL;
			if (conditions == 1 &&
			    (error = get_string_list(r, item, rwhat, "not_null",
			                             &rule->columns,
			                             &rule->ncolumns)) < 0)
				return error;
		}
		if (map_get(r, item, "pending")) {
			conditions++;
			rule->cond = ZDM_CDC_COND_PENDING;
			if ((error = get_bool(r, item, rwhat, "pending",
			                      &pending)) < 0)
				return error;
			if (!pending)
				return reader_fail_at(
					r, map_get(r, item, "pending"),
					"%s: \"pending\" can only be true",
					rwhat);
		}
		if (conditions > 1)
			return reader_fail_at(
				r, item,
				"%s: a rule has at most one condition (changed, not_null or pending)",
				rwhat);
	}
	return 0;
}

static int
read_cdc_sync(plan_reader *r, const yaml_node_t *map, const char *what,
              zdm_cdc_sync *sync)
{
	static const char *const required[] = {
		"at",        "params",  "touched", "on_insert",
		"on_update", "forward", "reverse"};
	int error;

	if ((error = check_mapping(r, map, what)) < 0 ||
	    (error = require_keys(r, map, what, required, NELEM(required))) <
	            0 ||
	    (error = get_string(r, map, what, "at", false, &sync->at)) < 0 ||
	    (error = get_string_list(r, map, what, "params", &sync->params,
	                             &sync->nparams)) < 0 ||
	    (error = get_string_list(r, map, what, "touched", &sync->touched,
	                             &sync->ntouched)) < 0 ||
	    (error = read_cdc_rules(r, map, what, "on_insert", &sync->on_insert,
	                            &sync->non_insert)) < 0 ||
	    (error = read_cdc_rules(r, map, what, "on_update", &sync->on_update,
	                            &sync->non_update)) < 0 ||
	    (error = get_string(r, map, what, "forward", false,
	                        &sync->forward)) < 0 ||
	    (error = get_string(r, map, what, "reverse", true,
	                        &sync->reverse)) < 0 ||
	    (error = get_string(r, map, what, "unconvertible", true,
	                        &sync->unconvertible)) < 0)
		return error;
	if (sync->nparams == 0)
		return reader_fail_at(r, map_get(r, map, "params"),
		                      "%s: \"params\" is empty", what);
	/* a rule that applies reverse needs a reverse statement */
	for (size_t i = 0;
	     !sync->reverse && i < sync->non_insert + sync->non_update; i++) {
		const zdm_cdc_rule *rule =
			i < sync->non_insert
				? &sync->on_insert[i]
				: &sync->on_update[i - sync->non_insert];

		if (rule->apply == ZDM_CDC_APPLY_REVERSE)
			return reader_fail_at(
				r, map,
				"%s: a rule applies reverse, and \"reverse\" is null",
				what);
	}
	return 0;
}

static int
read_cdc(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	static const char *const required[] = {
		"source",  "publication", "slot",  "origin",
		"max_lag", "stable_for",  "tables"};
	static const char *const table_required[] = {"table", "key", "syncs"};
	yaml_node_t *map = map_get(r, root, "cdc");
	yaml_node_t *tables;
	zdm_cdc_plan *cdc;
	char what[160];
	int error;

	if (strcmp(plan->sync, "cdc") != 0) {
		if (map)
			return reader_fail_at(
				r, map,
				"\"cdc\" is present, and options.sync is \"%s\"",
				plan->sync);
		return 0;
	}
	if (!map)
		return reader_fail_at(
			r, root,
			"options.sync is cdc, and the plan has no \"cdc\" section");
	cdc = plan->cdc = calloc(1, sizeof(zdm_cdc_plan));
	if (!cdc)
		return reader_fail(r, "out of memory");
	if ((error = check_mapping(r, map, "\"cdc\"")) < 0 ||
	    (error = require_keys(r, map, "cdc", required, NELEM(required))) <
	            0 ||
	    (error = get_string(r, map, "cdc", "source", false, &cdc->source)) <
	            0 ||
	    (error = get_string(r, map, "cdc", "publication", true,
	                        &cdc->publication)) < 0 ||
	    (error = get_string(r, map, "cdc", "slot", true, &cdc->slot)) < 0 ||
	    (error = get_string(r, map, "cdc", "origin", true, &cdc->origin)) <
	            0 ||
	    (error = get_duration(r, map, "cdc", "max_lag", &cdc->max_lag_ms)) <
	            0 ||
	    (error = get_duration(r, map, "cdc", "stable_for",
	                          &cdc->stable_for_ms)) < 0 ||
	    (error = get_list(r, map, "cdc", "tables", &tables)) < 0)
		return error;
	if (strcmp(cdc->source, "native") == 0) {
		if (!cdc->publication || !cdc->slot || !cdc->origin)
			return reader_fail_at(
				r, map,
				"cdc: a native source needs \"publication\", \"slot\" and \"origin\"");
	} else if (strcmp(cdc->source, "debezium") != 0) {
		return reader_fail_at(
			r, map_get(r, map, "source"),
			"cdc: \"source\" is \"%s\" (expected native or debezium)",
			cdc->source);
	}
	if (list_length(tables) == 0)
		return 0;
	cdc->tables = calloc(list_length(tables), sizeof(zdm_cdc_table));
	if (!cdc->tables)
		return reader_fail(r, "out of memory");
	cdc->ntables = list_length(tables);
	for (size_t i = 0; i < cdc->ntables; i++) {
		yaml_node_t *item = list_item(r, tables, i);
		zdm_cdc_table *t = &cdc->tables[i];
		yaml_node_t *syncs;

		snprintf(what, sizeof(what), "cdc.tables[%zu]", i + 1);
		if ((error = check_mapping(r, item, what)) < 0 ||
		    (error = require_keys(r, item, what, table_required, 3)) <
		            0 ||
		    (error = get_string(r, item, what, "table", false,
		                        &t->table)) < 0 ||
		    (error = get_string_list(r, item, what, "key", &t->key,
		                             &t->nkey)) < 0 ||
		    (error = get_list(r, item, what, "syncs", &syncs)) < 0)
			return error;
		if (split_qualified(t->table, &t->nspname, &t->relname) < 0)
			return reader_fail_at(
				r, map_get(r, item, "table"),
				"%s: \"%s\" is not a schema-qualified table name",
				what, t->table);
		if (t->nkey == 0)
			return reader_fail_at(r, map_get(r, item, "key"),
			                      "%s: \"key\" is empty", what);
		if (list_length(syncs) == 0)
			continue;
		t->syncs = calloc(list_length(syncs), sizeof(zdm_cdc_sync));
		if (!t->syncs)
			return reader_fail(r, "out of memory");
		t->nsyncs = list_length(syncs);
		for (size_t j = 0; j < t->nsyncs; j++) {
			char swhat[192];

			snprintf(swhat, sizeof(swhat), "%s.syncs[%zu]", what,
			         j + 1);
			if ((error = read_cdc_sync(r, list_item(r, syncs, j),
			                           swhat, &t->syncs[j])) < 0)
				return error;
		}
	}
	return 0;
}

/* catch_up and stop_sync wait for zdm sync: only a cdc plan has one. */
static int
check_cdc_steps(plan_reader *r, const zdm_plan *plan)
{
	for (size_t i = 0; i < plan->nsteps; i++) {
		const zdm_step *s = &plan->steps[i];

		if (!plan->cdc &&
		    (s->kind == ZDM_STEP_CATCH_UP ||
		     s->kind == ZDM_STEP_STOP_SYNC || s->in_flight_offenders))
			return reader_fail(
				r,
				"step %s waits for zdm sync, and options.sync is \"%s\"",
				s->id, plan->sync);
	}
	return 0;
}

/*
 * An autocommit step runs outside any transaction block, so no other step
 * may share its transaction label: the runner would otherwise try to run
 * the two in one BEGIN ... COMMIT.
 */
static int
check_autocommit_steps(plan_reader *r, const zdm_plan *plan)
{
	for (size_t i = 0; i < plan->nsteps; i++) {
		const zdm_step *a = &plan->steps[i];

		if (a->kind != ZDM_STEP_AUTOCOMMIT)
			continue;
		for (size_t j = 0; j < plan->nsteps; j++) {
			const zdm_step *s = &plan->steps[j];

			if (j != i && s->transaction &&
			    strcmp(s->transaction, a->transaction) == 0)
				return reader_fail(
					r,
					"step %s is autocommit, and step %s shares its transaction \"%s\"",
					a->id, s->id, a->transaction);
		}
	}
	return 0;
}

static void
cdc_rules_free(zdm_cdc_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		string_list_free(rules[i].columns, rules[i].ncolumns);
	free(rules);
}

static void
cdc_free(zdm_cdc_plan *cdc)
{
	if (!cdc)
		return;
	free(cdc->source);
	free(cdc->publication);
	free(cdc->slot);
	free(cdc->origin);
	for (size_t i = 0; i < cdc->ntables; i++) {
		zdm_cdc_table *t = &cdc->tables[i];

		free(t->table);
		free(t->nspname);
		free(t->relname);
		string_list_free(t->key, t->nkey);
		for (size_t j = 0; j < t->nsyncs; j++) {
			zdm_cdc_sync *s = &t->syncs[j];

			free(s->at);
			string_list_free(s->params, s->nparams);
			string_list_free(s->touched, s->ntouched);
			cdc_rules_free(s->on_insert, s->non_insert);
			cdc_rules_free(s->on_update, s->non_update);
			free(s->forward);
			free(s->reverse);
			free(s->unconvertible);
		}
		free(t->syncs);
	}
	free(cdc->tables);
	free(cdc);
}

/* zdm_plan: the first thing checked, so a newer plan gets the one message
 * that helps ("upgrade zdm") rather than whatever else changed. */
static int
read_version(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	yaml_node_t *node = map_get(r, root, "zdm_plan");
	long long version;
	bool overflow;

	if (!node)
		return reader_fail_at(
			r, root,
			"not a zdm plan: no \"zdm_plan\" key at the top level");
	if (!scalar_to_integer(node, &version, &overflow))
		return reader_fail_at(
			r, node,
			"\"zdm_plan\" must be an integer (the plan format version)");
	if (overflow || version < 1 || version > ZDM_PLAN_FORMAT_VERSION)
		return reader_fail_at(
			r, node,
			"unsupported plan format version %.*s; this zdm reads versions 1 to %d",
			(int)node->data.scalar.length,
			(const char *)node->data.scalar.value,
			ZDM_PLAN_FORMAT_VERSION);
	plan->format_version = (int)version;
	r->format_version = (int)version;
	return 0;
}

bool
zdm_plan_migration_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 200 && name[0] != '.' &&
	       strspn(name,
	              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789_-.") == n;
}

/* zdmc refuses these names at the source; a plan edited by hand must not
 * bring one in (the history could never record its run). */
static int
check_migration_name(plan_reader *r, const yaml_node_t *root, const char *name)
{
	if (zdm_plan_migration_name_ok(name))
		return 0;
	return reader_fail_at(
		r, map_get(r, root, "migration"),
		"migration name \"%s\" is not one plain path component "
		"(letters, digits, '_', '-' and '.', not starting with '.'): "
		"it names a directory in the git history",
		name);
}

static int
read_plan(plan_reader *r, const yaml_node_t *root, zdm_plan *plan)
{
	/* plan_sha256 and zdm_plan were checked before the content */
	static const char *const required[] = {
		"migration",   "source", "requires", "options",
		"new_version", "tables", "phases"};
	int error;

	if ((error = check_mapping(r, root, "the plan")) < 0 ||
	    (error = require_keys(r, root, "", required, NELEM(required))) <
	            0 ||
	    (error = get_string(r, root, "", "migration", false,
	                        &plan->migration)) < 0 ||
	    (error = check_migration_name(r, root, plan->migration)) < 0 ||
	    (error = read_source(r, root, plan)) < 0 ||
	    (error = read_requires(r, root, plan)) < 0 ||
	    (error = read_options(r, root, plan)) < 0 ||
	    (error = read_new_version(r, root, plan)) < 0 ||
	    (error = read_tables(r, root, plan)) < 0 ||
	    (error = read_statements(r, root, plan)) < 0 ||
	    (error = read_cdc(r, root, plan)) < 0 ||
	    (error = read_phases(r, root, plan)) < 0)
		return error;
	if ((error = check_cdc_steps(r, plan)) < 0)
		return error;
	return check_autocommit_steps(r, plan);
}

/*
 * Walk the bytes with libyaml's event parser before building a document,
 * and stop as soon as collections nest deeper than ZDM_PLAN_MAX_DEPTH: the
 * scanner's cost grows with the square of the flow nesting, so the walk
 * must stop while the nesting is still shallow, not after it.  A syntax
 * error is reported as the document loader would report it (same scanner).
 */
static int
check_depth(plan_reader *r, const char *data, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t event;
	int depth = 0, error = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser))
		return reader_fail(r, "out of memory");
	yaml_parser_set_input_string(
		&parser, (const unsigned char *)(data ? data : ""), len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &event)) {
			error = reader_fail_yaml(r, &parser);
			break;
		}
		switch (event.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > ZDM_PLAN_MAX_DEPTH) {
				error = reader_fail_line(
					r, event.start_mark.line + 1,
					event.start_mark.column + 1,
					"the plan nests deeper than %d levels "
					"(the limit for a plan; zdmc writes "
					"far fewer): not a plan zdmc wrote",
					ZDM_PLAN_MAX_DEPTH);
				done = true;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
	}
	yaml_parser_delete(&parser);
	return error;
}

int
zdm_plan_parse(zdm_plan **out, const char *name, const char *data, size_t len,
               char *errbuf, size_t errlen)
{
	plan_reader r;
	yaml_parser_t parser;
	yaml_document_t extra;
	bool parser_ready = false, doc_ready = false;
	yaml_node_t *root;
	zdm_plan *plan = NULL;
	char hex[65];
	int error = -1;

	assert(out && name && (data || len == 0));
	*out = NULL;
	memset(&r, 0, sizeof(r));
	r.name = name;
	r.errbuf = errbuf;
	r.errlen = errlen;
	if (errbuf && errlen)
		errbuf[0] = '\0';

	if (len > ZDM_PLAN_MAX_BYTES) {
		reader_fail(&r,
		            "the plan is larger than %d bytes (the limit for a "
		            "plan): not a plan zdmc wrote",
		            ZDM_PLAN_MAX_BYTES);
		goto cleanup;
	}
	if (check_depth(&r, data, len) < 0)
		goto cleanup;
	if (!yaml_parser_initialize(&parser)) {
		reader_fail(&r, "out of memory");
		goto cleanup;
	}
	parser_ready = true;
	/* libyaml asserts on a NULL input even when its size is 0 */
	yaml_parser_set_input_string(
		&parser, (const unsigned char *)(data ? data : ""), len);
	if (!yaml_parser_load(&parser, &r.doc)) {
		reader_fail_yaml(&r, &parser);
		goto cleanup;
	}
	doc_ready = true;

	root = yaml_document_get_root_node(&r.doc);
	if (!root) {
		reader_fail(&r, "the plan is empty");
		goto cleanup;
	}
	/* A second document would be bytes the runtime never reads, so it is
	 * refused rather than ignored. */
	if (!yaml_parser_load(&parser, &extra)) {
		reader_fail_yaml(&r, &parser);
		goto cleanup;
	}
	if (yaml_document_get_root_node(&extra)) {
		reader_fail_line(&r, extra.start_mark.line + 1,
		                 extra.start_mark.column + 1,
		                 "the plan holds more than one YAML document");
		yaml_document_delete(&extra);
		goto cleanup;
	}
	yaml_document_delete(&extra);

	if (root->type != YAML_MAPPING_NODE) {
		reader_fail_at(
			&r, root,
			"not a zdm plan: the top level is %s, not a mapping",
			node_type_name(root));
		goto cleanup;
	}

	plan = calloc(1, sizeof(*plan));
	if (!plan) {
		reader_fail(&r, "out of memory");
		goto cleanup;
	}
	if (read_version(&r, root, plan) < 0 ||
	    verify_checksum(&r, root, data, len, hex) < 0)
		goto cleanup;
	plan->plan_sha256 = strdup(hex);
	if (!plan->plan_sha256) {
		reader_fail(&r, "out of memory");
		goto cleanup;
	}
	if (read_plan(&r, root, plan) < 0)
		goto cleanup;

	*out = plan;
	plan = NULL;
	error = 0;

cleanup:
	zdm_plan_free(plan);
	if (doc_ready)
		yaml_document_delete(&r.doc);
	if (parser_ready)
		yaml_parser_delete(&parser);
	return error;
}

int
zdm_plan_load(zdm_plan **out, const char *path, char *errbuf, size_t errlen)
{
	plan_reader r;
	FILE *f = NULL;
	char *data = NULL, *grown;
	size_t len = 0, cap = 0, n;
	int error = -1;

	assert(out && path);
	*out = NULL;
	memset(&r, 0, sizeof(r));
	r.name = path;
	r.errbuf = errbuf;
	r.errlen = errlen;

	f = fopen(path, "rb");
	if (!f) {
		reader_fail(&r, "could not open plan: %s", strerror(errno));
		goto cleanup;
	}
	/* Read to the end rather than trusting a size from stat: the path may
	 * be a pipe (zdm run <(zdmc ...)). */
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			grown = realloc(data, cap);
			if (!grown) {
				reader_fail(&r, "out of memory");
				goto cleanup;
			}
			data = grown;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		/* one byte over is enough for zdm_plan_parse to refuse it */
		if (len > ZDM_PLAN_MAX_BYTES)
			break;
	}
	if (ferror(f)) {
		reader_fail(&r, "could not read plan: %s", strerror(errno));
		goto cleanup;
	}

	error = zdm_plan_parse(out, path, data, len, errbuf, errlen);

cleanup:
	if (f)
		fclose(f);
	free(data);
	return error;
}

static void
change_free(zdm_change *c)
{
	free(c->change);
	free(c->at);
	free(c->summary);
	string_list_free(c->reads, c->nreads);
	for (size_t i = 0; i < c->ncreates; i++) {
		free(c->creates[i].column);
		free(c->creates[i].type);
		free(c->creates[i].using);
	}
	free(c->creates);
	string_list_free(c->replaces, c->nreplaces);
	for (size_t i = 0; i < c->nrenames; i++) {
		free(c->renames[i].column);
		free(c->renames[i].to);
	}
	free(c->renames);
	for (size_t i = 0; i < c->nreverse; i++) {
		free(c->reverse[i].column);
		free(c->reverse[i].using);
	}
	free(c->reverse);
	string_list_free(c->constraints_created, c->nconstraints_created);
	string_list_free(c->constraints_dropped, c->nconstraints_dropped);
	string_list_free(c->drops, c->ndrops);
	string_list_free(c->not_null_set, c->nnot_null_set);
	string_list_free(c->not_null_dropped, c->nnot_null_dropped);
	for (size_t i = 0; i < c->nconstraint_renames; i++) {
		free(c->constraint_renames[i].constraint);
		free(c->constraint_renames[i].to);
	}
	free(c->constraint_renames);
	string_list_free(c->indexes_created, c->nindexes_created);
	for (size_t i = 0; i < c->nreferences; i++) {
		free(c->references[i].table);
		string_list_free(c->references[i].columns,
		                 c->references[i].ncolumns);
	}
	free(c->references);
	free(c->table_renamed_to);
	free(c->split_into);
	for (size_t i = 0; i < c->ndefaults; i++) {
		free(c->defaults[i].column);
		free(c->defaults[i].value);
	}
	free(c->defaults);
}

void
zdm_plan_free(zdm_plan *plan)
{
	if (!plan)
		return;
	free(plan->migration);
	free(plan->source_file);
	free(plan->source_sha256);
	free(plan->plan_sha256);
	for (size_t i = 0; i < plan->napprove; i++)
		free(plan->approve[i]);
	free(plan->approve);
	free(plan->sync);
	free(plan->version_schema);
	string_list_free(plan->version_schemas, plan->nversion_schemas);
	free(plan->search_path);
	for (size_t i = 0; i < plan->ntables; i++)
		free(plan->tables[i]);
	free(plan->tables);
	for (size_t i = 0; i < plan->ntable_info; i++) {
		zdm_table_info *info = &plan->table_info[i];

		for (size_t j = 0; j < info->nchanges; j++)
			change_free(&info->changes[j]);
		free(info->changes);
		free(info->name);
	}
	free(plan->table_info);
	for (size_t i = 0; i < plan->nstatements; i++) {
		zdm_statement *st = &plan->statements[i];

		free(st->statement);
		free(st->at);
		free(st->summary);
		free(st->index_dropped);
		free(st->type_created);
		free(st->enum_type);
		free(st->label_added);
		free(st->label_neighbour);
		free(st->label_renamed);
		free(st->label_renamed_to);
	}
	free(plan->statements);
	for (size_t i = 0; i < plan->nsteps; i++) {
		zdm_step *s = &plan->steps[i];

		free(s->id);
		free(s->phase);
		free(s->description);
		free(s->table);
		free(s->transaction);
		free(s->sql);
		free(s->compensation);
		free(s->index);
		if (s->diagnose != NULL) {
			free(s->diagnose->description);
			free(s->diagnose->sql);
			free(s->diagnose->examples_sql);
			free(s->diagnose);
		}
		free(s->key);
		free(s->examples_sql);
		free(s->count_where);
		free(s->in_flight_offenders);
		free(s->in_flight_recheck);
		free(s->gate);
	}
	free(plan->steps);
	cdc_free(plan->cdc);
	free(plan);
}

/*
 * The search_path lists the version schemas first (as many as the plan
 * has), then the tables' schemas: skip the first, keep the rest.  Commas
 * inside a "quoted" name do not separate.  A search_path with nothing
 * after its version schemas keeps its last entry, as it always did.
 */
char *
zdm_plan_schema(const zdm_plan *plan)
{
	const char *sp = plan->search_path ? plan->search_path : "public";
	size_t skip = plan->nversion_schemas ? plan->nversion_schemas : 1;
	const char *p = sp, *last = sp;
	bool quoted = false;
	size_t n = 0;

	for (; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted) {
			last = p + 1;
			if (++n == skip)
				break;
		}
	}
	if (*p == '\0')
		p = last; /* fewer entries than version schemas */
	else
		p++;
	while (*p == ' ')
		p++;
	return strdup(p);
}
