/*
 * plan_write.c -- serialise a zdmc_plan as the YAML plan file (plan.out).
 *
 * This is the compiler's half of the only contract between zdmc and zdm;
 * runtime/plan_read.c is the other half and docs/plan-format.md describes
 * both.  The YAML is produced with libyaml's emitter, never with printf, so
 * quoting and escaping are libyaml's job and no SQL text, however odd, can
 * break out of its scalar.
 *
 * Invariants:
 *   - Deterministic: the same plan gives the same bytes.  Keys come in a
 *     fixed order, nothing depends on time or addresses, and width, indent
 *     and line breaks are pinned, so a plan can be diffed and committed.
 *   - Every string reads back as exactly the string written: a plain scalar
 *     that a YAML 1.1 or 1.2 reader would take for null, a boolean or a
 *     number is quoted; multi-line text uses literal style, and libyaml
 *     falls back to double quotes whenever literal style cannot hold the text
 *     exactly (trailing spaces, control characters, line breaks other than
 *     \n).
 *   - The last line is "plan_sha256: <hex>", the SHA-256 of every byte
 *     before that line.
 *   - What this writes, the runtime accepts: a field the format requires
 *     that is NULL here, or a count the runtime would refuse, is a bug in
 *     lowering and is reported as an error instead of becoming a plan that
 *     zdm rejects later, far from the cause.
 *
 * It must not touch the file system (the caller stores the bytes) or decide
 * anything about the migration: it writes what lower.c built, nothing more.
 */
#include "plan.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* The final line is written with this placeholder, then hashed and patched;
 * the emitter decides the bytes, so the hash can only be taken afterwards. */
#define CHECKSUM_PREFIX "plan_sha256: "
#define CHECKSUM_PLACEHOLDER \
	"0000000000000000000000000000000000000000000000000000000000000000"

typedef struct plan_writer {
	yaml_emitter_t emitter;
	char *buf; /* the output so far, malloc'd */
	size_t len;
	size_t cap;
	bool out_of_memory;
	/*
	 * Sticky failure: serialising is one long straight sequence of events,
	 * so every emit helper does nothing once something failed and the first
	 * message is the one reported.  This keeps the sequence readable
	 * instead of one error check per key.
	 */
	bool failed;
	char where[160]; /* "step expand.1", "options": prefix for messages */
	char *errbuf;
	size_t errlen;
} plan_writer;

void
zdmc_sha256_hex(const void *data, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/*
	 * SHA-256 over a memory buffer fails only when OpenSSL cannot allocate
	 * its context.  The compiler treats running out of memory as fatal
	 * (arena.h), and a plan with a made-up checksum would be worse.
	 */
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		fputs("zdmc: SHA-256 failed (out of memory?)\n", stderr);
		abort();
	}
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
}

static void writer_fail(plan_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
writer_fail(plan_writer *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->failed)
		return;
	w->failed = true;
	if (!w->errbuf || w->errlen == 0)
		return;
	/* no "cannot write the plan" here: the caller says what failed */
	n = snprintf(w->errbuf, w->errlen, "%s%s", w->where,
	             w->where[0] ? ": " : "");
	if (n < 0 || (size_t)n >= w->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(w->errbuf + n, w->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void writer_where(plan_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
writer_where(plan_writer *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->where, sizeof(w->where), fmt, ap);
	va_end(ap);
}

/* libyaml's output handler: append to w->buf, keeping room for a NUL. */
static int
write_handler(void *data, unsigned char *bytes, size_t size)
{
	plan_writer *w = data;
	size_t cap;
	char *grown;

	if (size >= w->cap - w->len) {
		cap = w->cap ? w->cap : 8192;
		while (size >= cap - w->len) {
			if (cap > SIZE_MAX / 2) {
				w->out_of_memory = true;
				return 0;
			}
			cap *= 2;
		}
		grown = realloc(w->buf, cap);
		if (!grown) {
			w->out_of_memory = true;
			return 0;
		}
		w->buf = grown;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, bytes, size);
	w->len += size;
	return 1;
}

/* Hand one event to the emitter, which owns it from here on, even on
 * failure. */
static void
emit(plan_writer *w, yaml_event_t *event)
{
	if (yaml_emitter_emit(&w->emitter, event))
		return;
	if (w->out_of_memory || w->emitter.error == YAML_MEMORY_ERROR)
		writer_fail(w, "out of memory");
	else
		writer_fail(w, "libyaml: %s",
		            w->emitter.problem ? w->emitter.problem
		                               : "unknown emitter error");
}

/*
 * Would s, written as a plain scalar, be read as something other than a
 * string by a YAML 1.1 or 1.2 (core schema) reader?  The plan is read by zdm
 * but also by reviewers' tools (Python, Go, jq via yq), most of them YAML 1.1,
 * so both schemas count.  This errs towards yes: quoting a string that did
 * not need it costs two characters, not quoting one that did changes its
 * type for every other reader.  Numbers of every base and form, sexagesimals
 * and timestamps all start with a digit or a dot after an optional sign;
 * what follows is matched loosely, by the characters each may contain,
 * rather than by the exact regular expressions of the two specs.
 */
static bool
plain_would_resolve(const char *s)
{
	static const char *const words[] = {
		"",     "~",    "null",  "Null",  "NULL",  "true",
		"True", "TRUE", "false", "False", "FALSE", "y",
		"Y",    "yes",  "Yes",   "YES",   "n",     "N",
		"no",   "No",   "NO",    "on",    "On",    "ON",
		"off",  "Off",  "OFF",   "<<",    "=",
	};
	static const char *const specials[] = {
		".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN",
	};
	const char *p = s;

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	if (*p == '+' || *p == '-')
		p++;
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (strcmp(p, specials[i]) == 0)
			return true;
	if (!((*p >= '0' && *p <= '9') || *p == '.'))
		return false;
	/* 0x1F, 0o17, 0b101 (1.1 allows '_' in all of them) */
	if (p[0] == '0' && strchr("xXoObB", p[1]) && p[1] != '\0')
		return p[strspn(p + 2, "0123456789abcdefABCDEF_") + 2] == '\0';
	/* 12, -3.5, 1e9, 1_000, .5, 1:30 (sexagesimal), 1.2.3 for safety */
	if (p[strspn(p, "0123456789_.:eE+-")] == '\0')
		return true;
	/* 2001-12-14, 2001-12-14t21:59:43.10-05:00 and longer: quote anything
	 * that opens like a YAML 1.1 timestamp */
	return strspn(p, "0123456789") == 4 && p[4] == '-' && p == s;
}

/*
 * Line breaks other than \n (CR, NEL, LS, PS) would be written raw in a
 * literal or single-quoted scalar and come back normalised or folded, so a
 * string holding one goes double-quoted, where libyaml escapes it.
 */
static bool
has_odd_line_break(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (p[0] == '\r')
			return true;
		if (p[0] == 0xc2 && p[1] == 0x85)
			return true;
		if (p[0] == 0xe2 && p[1] == 0x80 &&
		    (p[2] == 0xa8 || p[2] == 0xa9))
			return true;
	}
	return false;
}

/*
 * A literal scalar that ends in more than one line break ("\n\n", or just
 * "\n") needs the keep indicator, "|+".  libyaml 0.2.5 then marks the
 * document open-ended and writes a "..." line after plan_sha256, which would
 * no longer be the last line; such strings go double-quoted instead.
 */
static bool
needs_keep_chomping(const char *s, size_t len)
{
	return len > 0 && s[len - 1] == '\n' &&
	       (len == 1 || s[len - 2] == '\n');
}

/* The same test libyaml makes before it accepts a scalar, done first so the
 * message can say which field is at fault. */
static bool
utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned int c = *p, width, value;

		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			width = 2;
			value = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			width = 3;
			value = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			width = 4;
			value = c & 0x07;
		} else {
			return false;
		}
		for (unsigned int k = 1; k < width; k++) {
			if ((p[k] & 0xc0) != 0x80)
				return false;
			value = (value << 6) | (p[k] & 0x3f);
		}
		if ((width == 2 && value < 0x80) ||
		    (width == 3 && value < 0x800) ||
		    (width == 4 && value < 0x10000) || value > 0x10ffff ||
		    (value >= 0xd800 && value <= 0xdfff))
			return false;
		p += width;
	}
	return true;
}

static void
emit_scalar(plan_writer *w, const char *what, const char *value,
            bool plain_implicit, yaml_scalar_style_t style)
{
	yaml_event_t event;
	size_t len;

	if (w->failed)
		return;
	len = strlen(value);
	if (len > INT_MAX) {
		writer_fail(w, "\"%s\" is too long", what);
		return;
	}
	if (!utf8_valid(value)) {
		writer_fail(w, "\"%s\" is not valid UTF-8", what);
		return;
	}
	/* quoted_implicit = 1 always: a quoted scalar is a string without a
	 * tag, so libyaml never needs to write "!". */
	if (!yaml_scalar_event_initialize(&event, NULL, NULL,
	                                  (const yaml_char_t *)value, (int)len,
	                                  plain_implicit, 1, style)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
}

/* Mapping keys: fixed identifiers of the format, always plain. */
static void
emit_key(plan_writer *w, const char *key)
{
	emit_scalar(w, key, key, true, YAML_PLAIN_SCALAR_STYLE);
}

/*
 * A string value.  Plain is only asked for: libyaml quotes by itself when a
 * plain scalar would not parse back (": ", " #", leading spaces, indicators),
 * and plain_implicit = 0 makes it quote the strings that would parse back
 * as another type.
 */
static void
emit_string(plan_writer *w, const char *what, const char *value)
{
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
	size_t len = strlen(value);

	if (has_odd_line_break(value))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	else if (needs_keep_chomping(value, len))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	else if (memchr(value, '\n', len))
		style = YAML_LITERAL_SCALAR_STYLE;
	emit_scalar(w, what, value, !plain_would_resolve(value), style);
}

static void
emit_mapping_start(plan_writer *w)
{
	yaml_event_t event;

	if (w->failed)
		return;
	if (!yaml_mapping_start_event_initialize(&event, NULL, NULL, 1,
	                                         YAML_BLOCK_MAPPING_STYLE)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
}

static void
emit_mapping_end(plan_writer *w)
{
	yaml_event_t event;

	if (w->failed)
		return;
	if (!yaml_mapping_end_event_initialize(&event)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
}

static void
emit_sequence_start(plan_writer *w, yaml_sequence_style_t style)
{
	yaml_event_t event;

	if (w->failed)
		return;
	if (!yaml_sequence_start_event_initialize(&event, NULL, NULL, 1,
	                                          style)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
}

static void
emit_sequence_end(plan_writer *w)
{
	yaml_event_t event;

	if (w->failed)
		return;
	if (!yaml_sequence_end_event_initialize(&event)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
}

/* key: value, for a field the format requires. */
static void
put_string(plan_writer *w, const char *key, const char *value)
{
	if (w->failed)
		return;
	if (!value) {
		writer_fail(w, "\"%s\" is missing", key);
		return;
	}
	emit_key(w, key);
	emit_string(w, key, value);
}

/* key: value, left out when value is NULL. */
static void
put_optional_string(plan_writer *w, const char *key, const char *value)
{
	if (value)
		put_string(w, key, value);
}

/* key: value, or key: null -- the key is always there (compensation). */
static void
put_string_or_null(plan_writer *w, const char *key, const char *value)
{
	emit_key(w, key);
	if (value)
		emit_string(w, key, value);
	else
		emit_scalar(w, key, "null", true, YAML_PLAIN_SCALAR_STYLE);
}

/* Integers are plain and implicit: they are meant to resolve as int.  min
 * mirrors what plan_read.c accepts. */
static void
put_integer(plan_writer *w, const char *key, long long value, long long min)
{
	char text[32];

	if (w->failed)
		return;
	if (value < min) {
		writer_fail(w, "\"%s\" is %lld, below its minimum %lld", key,
		            value, min);
		return;
	}
	snprintf(text, sizeof(text), "%lld", value);
	emit_key(w, key);
	emit_scalar(w, key, text, true, YAML_PLAIN_SCALAR_STYLE);
}

static void
put_bool(plan_writer *w, const char *key, bool value)
{
	emit_key(w, key);
	emit_scalar(w, key, value ? "true" : "false", true,
	            YAML_PLAIN_SCALAR_STYLE);
}

/* Durations are always whole milliseconds with the unit, "500ms", so a
 * reader never guesses the unit of a bare number. */
static void
put_duration(plan_writer *w, const char *key, long ms)
{
	char text[32];

	if (w->failed)
		return;
	if (ms < 0) {
		writer_fail(w, "\"%s\" is negative (%ldms)", key, ms);
		return;
	}
	snprintf(text, sizeof(text), "%ldms", ms);
	emit_key(w, key);
	emit_string(w, key, text);
}

static void
write_options(plan_writer *w, const zdmc_plan *plan)
{
	writer_where(w, "options");
	emit_key(w, "options");
	emit_mapping_start(w);
	put_integer(w, "batch_size", plan->batch_size, 1);
	put_duration(w, "batch_pause", plan->batch_pause_ms);
	put_duration(w, "lock_timeout", plan->lock_timeout_ms);
	put_integer(w, "lock_retries", plan->lock_retries, 0);
	/* absent: 0, no limit (a plan that does not set it stays as it was,
	 * byte for byte) */
	if (plan->statement_timeout_ms > 0)
		put_duration(w, "statement_timeout",
		             plan->statement_timeout_ms);
	/* Flow style: a short list of gate names reads best on one line. */
	emit_key(w, "approve");
	emit_sequence_start(w, YAML_FLOW_SEQUENCE_STYLE);
	for (size_t i = 0; i < plan->napprove; i++) {
		if (!plan->approve[i]) {
			writer_fail(w, "approve[%zu] is missing", i);
			break;
		}
		emit_string(w, "approve", plan->approve[i]);
	}
	emit_sequence_end(w);
	put_string(w, "sync", plan->sync);
	put_integer(w, "verify_sample", plan->verify_sample, 0);
	emit_mapping_end(w);
}

/* A list of column names on one line: [id], [name, zdm_new_first_name]. */
static void
put_name_list(plan_writer *w, const char *key, const char **names, size_t n)
{
	emit_key(w, key);
	emit_sequence_start(w, YAML_FLOW_SEQUENCE_STYLE);
	for (size_t i = 0; i < n; i++) {
		if (!names[i]) {
			writer_fail(w, "%s[%zu] is missing", key, i);
			break;
		}
		emit_string(w, key, names[i]);
	}
	emit_sequence_end(w);
}

/* A list of (name, to) pairs as block mappings; key names the first. */
static void
put_renames(plan_writer *w, const char *list, const char *key,
            const zdmc_plan_rename *r)
{
	if (!r)
		return;
	emit_key(w, list);
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (; r; r = r->next) {
		emit_mapping_start(w);
		put_string(w, key, r->name);
		put_string(w, "to", r->to);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
}

/* A list of names on one line, left out when empty. */
static void
put_facts(plan_writer *w, const char *key, const char **names, size_t n)
{
	if (n)
		put_name_list(w, key, names, n);
}

/*
 * One change, as facts (plan format 3), keys in the order DESIGN fixes:
 * change, at, summary always; every other list only when it has items.
 */
static void
write_change(plan_writer *w, const zdmc_plan_change *change)
{
	emit_mapping_start(w);
	put_string(w, "change", change->change);
	put_string(w, "at", change->at);
	put_string(w, "summary", change->summary);
	put_facts(w, "reads", change->reads, change->nreads);
	if (change->creates) {
		emit_key(w, "creates");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_column *col = change->creates; col;
		     col = col->next) {
			emit_mapping_start(w);
			put_string(w, "column", col->name);
			/* null: the type of the column of that name */
			put_string_or_null(w, "type", col->type);
			put_bool(w, "not_null", col->not_null);
			put_string_or_null(w, "using", col->using);
			emit_mapping_end(w);
		}
		emit_sequence_end(w);
	}
	put_facts(w, "replaces", change->replaces, change->nreplaces);
	put_renames(w, "renames", "column", change->renames);
	if (change->reverse) {
		emit_key(w, "reverse");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_reverse *r = change->reverse; r;
		     r = r->next) {
			emit_mapping_start(w);
			put_string(w, "column", r->column);
			put_string(w, "using", r->using);
			emit_mapping_end(w);
		}
		emit_sequence_end(w);
	}
	if (change->irreversible)
		put_bool(w, "irreversible", true);
	if (change->table_created)
		put_bool(w, "table_created", true);
	if (change->table_dropped)
		put_bool(w, "table_dropped", true);
	put_facts(w, "constraints_created", change->constraints_created,
	          change->nconstraints_created);
	put_facts(w, "constraints_dropped", change->constraints_dropped,
	          change->nconstraints_dropped);
	put_renames(w, "constraint_renames", "constraint",
	            change->constraint_renames);
	put_facts(w, "indexes_created", change->indexes_created,
	          change->nindexes_created);
	if (change->references) {
		emit_key(w, "references");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_reference *r = change->references; r;
		     r = r->next) {
			emit_mapping_start(w);
			put_string(w, "table", r->table);
			put_name_list(w, "columns", r->columns, r->ncolumns);
			emit_mapping_end(w);
		}
		emit_sequence_end(w);
	}
	put_optional_string(w, "table_renamed_to", change->table_renamed_to);
	put_optional_string(w, "split_into", change->split_into);
	if (change->defaults) {
		emit_key(w, "defaults");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_default *d = change->defaults; d;
		     d = d->next) {
			emit_mapping_start(w);
			put_string(w, "column", d->column);
			put_string_or_null(w, "default", d->value);
			emit_mapping_end(w);
		}
		emit_sequence_end(w);
	}
	put_facts(w, "drops", change->drops, change->ndrops);
	put_facts(w, "not_null_set", change->not_null_set,
	          change->nnot_null_set);
	put_facts(w, "not_null_dropped", change->not_null_dropped,
	          change->nnot_null_dropped);
	emit_mapping_end(w);
}

static void
write_tables(plan_writer *w, const zdmc_plan *plan)
{
	size_t n = 0;

	emit_key(w, "tables");
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (const zdmc_plan_table *t = plan->tables; t; t = t->next) {
		writer_where(w, "tables[%zu]", ++n);
		emit_mapping_start(w);
		put_string(w, "table", t->name);
		emit_key(w, "changes");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_change *c = t->changes; c; c = c->next)
			write_change(w, c);
		emit_sequence_end(w);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
}

/* statements[]: left out when the migration has none, so that a plan
 * without them reads as before */
static void
write_statements(plan_writer *w, const zdmc_plan *plan)
{
	size_t n = 0;

	if (plan->statements == NULL)
		return;
	emit_key(w, "statements");
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (const zdmc_plan_statement *s = plan->statements; s; s = s->next) {
		writer_where(w, "statements[%zu]", ++n);
		emit_mapping_start(w);
		put_string(w, "statement", s->statement);
		put_string(w, "at", s->at);
		put_string(w, "summary", s->summary);
		put_optional_string(w, "index_dropped", s->index_dropped);
		put_optional_string(w, "type_created", s->type_created);
		put_optional_string(w, "enum_type", s->enum_type);
		put_optional_string(w, "label_added", s->label_added);
		put_optional_string(w, "label_neighbour", s->label_neighbour);
		put_optional_string(w, "label_renamed", s->label_renamed);
		put_optional_string(w, "label_renamed_to", s->label_renamed_to);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
}

static const char *
step_kind_name(zdmc_step_kind kind)
{
	switch (kind) {
	case ZDMC_STEP_SQL:
		return "sql";
	case ZDMC_STEP_BACKFILL:
		return "backfill";
	case ZDMC_STEP_CHECK:
		return "check";
	case ZDMC_STEP_GATE:
		return "gate";
	case ZDMC_STEP_CATCH_UP:
		return "catch_up";
	case ZDMC_STEP_STOP_SYNC:
		return "stop_sync";
	case ZDMC_STEP_AUTOCOMMIT:
		return "autocommit";
	}
	return NULL;
}

/*
 * One step.  The order of keys is part of the format's look (reviewers read
 * plans top to bottom): what it is, what it touches, how it runs, what it
 * runs, how to undo it, then what is special about its kind.
 */
static void
write_step(plan_writer *w, const zdmc_plan_step *step)
{
	const char *kind = step_kind_name(step->kind);

	if (w->failed)
		return;
	if (!step->id) {
		writer_fail(w, "a step has no id");
		return;
	}
	writer_where(w, "step %s", step->id);
	if (!kind) {
		writer_fail(w, "unknown step kind %d", (int)step->kind);
		return;
	}
	emit_mapping_start(w);
	put_string(w, "id", step->id);
	put_string(w, "kind", kind);
	put_string(w, "description", step->description);
	if (step->kind == ZDMC_STEP_GATE) {
		put_string(w, "gate", step->gate);
		put_bool(w, "approval", step->approval);
	}
	if (step->kind == ZDMC_STEP_CATCH_UP) {
		put_duration(w, "max_lag", step->max_lag_ms);
		put_duration(w, "stable_for", step->stable_for_ms);
		put_bool(w, "barrier", step->barrier);
	}
	put_optional_string(w, "table", step->table);
	if (step->kind != ZDMC_STEP_GATE && step->kind != ZDMC_STEP_CATCH_UP &&
	    step->kind != ZDMC_STEP_STOP_SYNC) {
		put_string(w, "transaction", step->transaction);
		put_duration(w, "lock_timeout", step->lock_timeout_ms);
		if (step->kind == ZDMC_STEP_AUTOCOMMIT)
			put_optional_string(w, "index", step->index);
		if (step->kind == ZDMC_STEP_BACKFILL) {
			put_string(w, "key", step->key);
			put_integer(w, "batch_size", step->batch_size, 1);
			put_duration(w, "batch_pause", step->batch_pause_ms);
		}
		put_string(w, "sql", step->sql);
		put_string_or_null(w, "compensation", step->compensation);
		if (step->kind == ZDMC_STEP_AUTOCOMMIT && step->diagnose_sql) {
			emit_key(w, "diagnose");
			emit_mapping_start(w);
			put_string(w, "description",
			           step->diagnose_description);
			put_string(w, "sql", step->diagnose_sql);
			put_integer(w, "expect", 0, LLONG_MIN);
			put_optional_string(w, "examples",
			                    step->diagnose_examples);
			emit_mapping_end(w);
		}
		if (step->kind == ZDMC_STEP_CHECK) {
			put_integer(w, "expect", step->expect, LLONG_MIN);
			put_optional_string(w, "examples", step->examples_sql);
			put_optional_string(w, "count_where",
			                    step->count_where);
			if (step->in_flight_offenders ||
			    step->in_flight_recheck) {
				emit_key(w, "in_flight");
				emit_mapping_start(w);
				put_string(w, "offenders",
				           step->in_flight_offenders);
				put_string(w, "recheck",
				           step->in_flight_recheck);
				emit_mapping_end(w);
			}
		}
	}
	if (step->point_of_no_return)
		put_bool(w, "point_of_no_return", true);
	emit_mapping_end(w);
}

static void
write_cdc_rules(plan_writer *w, const char *key, const zdmc_plan_cdc_rule *r)
{
	emit_key(w, key);
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (; r; r = r->next) {
		emit_mapping_start(w);
		switch (r->cond) {
		case ZDMC_CDC_ALWAYS:
			break;
		case ZDMC_CDC_CHANGED:
			put_name_list(w, "changed", r->columns, r->ncolumns);
			break;
		case ZDMC_CDC_NOT_NULL:
			put_name_list(w, "not_null", r->columns, r->ncolumns);
			break;
		case ZDMC_CDC_PENDING:
			put_bool(w, "pending", true);
			break;
		}
		put_string(w, "apply", r->apply);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
}

/* The cdc section (version 2): what zdm sync needs to carry a change event
 * across, table by table. */
static void
write_cdc(plan_writer *w, const zdmc_plan_cdc *cdc)
{
	size_t n = 0;

	writer_where(w, "cdc");
	emit_key(w, "cdc");
	emit_mapping_start(w);
	put_string(w, "source", cdc->source);
	put_string_or_null(w, "publication", cdc->publication);
	put_string_or_null(w, "slot", cdc->slot);
	put_string_or_null(w, "origin", cdc->origin);
	put_duration(w, "max_lag", cdc->max_lag_ms);
	put_duration(w, "stable_for", cdc->stable_for_ms);
	emit_key(w, "tables");
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (const zdmc_plan_cdc_table *t = cdc->tables; t; t = t->next) {
		writer_where(w, "cdc.tables[%zu]", ++n);
		emit_mapping_start(w);
		put_string(w, "table", t->table);
		put_name_list(w, "key", t->key, t->nkey);
		emit_key(w, "syncs");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_cdc_sync *s = t->syncs; s; s = s->next) {
			emit_mapping_start(w);
			put_string(w, "at", s->at);
			put_name_list(w, "params", s->params, s->nparams);
			put_name_list(w, "touched", s->touched, s->ntouched);
			write_cdc_rules(w, "on_insert", s->on_insert);
			write_cdc_rules(w, "on_update", s->on_update);
			put_string(w, "forward", s->forward);
			put_string_or_null(w, "reverse", s->reverse);
			put_optional_string(w, "unconvertible",
			                    s->unconvertible);
			emit_mapping_end(w);
		}
		emit_sequence_end(w);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
	emit_mapping_end(w);
}

static void
write_phases(plan_writer *w, const zdmc_plan *plan)
{
	size_t n = 0;

	emit_key(w, "phases");
	emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
	for (const zdmc_plan_phase *ph = plan->phases; ph; ph = ph->next) {
		writer_where(w, "phases[%zu]", ++n);
		emit_mapping_start(w);
		put_string(w, "phase", ph->name);
		emit_key(w, "steps");
		emit_sequence_start(w, YAML_BLOCK_SEQUENCE_STYLE);
		for (const zdmc_plan_step *s = ph->steps; s; s = s->next)
			write_step(w, s);
		emit_sequence_end(w);
		emit_mapping_end(w);
	}
	emit_sequence_end(w);
}

static void
write_document(plan_writer *w, const zdmc_plan *plan)
{
	yaml_event_t event;

	if (!yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
	if (!w->failed) {
		/* implicit: no "---"; the plan is always exactly one document */
		if (!yaml_document_start_event_initialize(&event, NULL, NULL,
		                                          NULL, 1))
			writer_fail(w, "out of memory");
		else
			emit(w, &event);
	}
	emit_mapping_start(w);

	writer_where(w, "%s", "");
	put_integer(w, "zdm_plan", plan->format_version, 0);
	put_optional_string(w, "compiler", plan->compiler);
	put_string(w, "migration", plan->migration);

	writer_where(w, "source");
	emit_key(w, "source");
	emit_mapping_start(w);
	put_string(w, "file", plan->source_file);
	put_string(w, "sha256", plan->source_sha256);
	emit_mapping_end(w);

	writer_where(w, "requires");
	emit_key(w, "requires");
	emit_mapping_start(w);
	put_integer(w, "server_version_num", plan->min_server_version_num, 0);
	emit_mapping_end(w);

	write_options(w, plan);

	writer_where(w, "new_version");
	emit_key(w, "new_version");
	emit_mapping_start(w);
	put_string(w, "schema", plan->version_schema);
	/* only with several: a one-schema plan is as it always was */
	if (plan->nversion_schemas > 1)
		put_name_list(w, "schemas", plan->version_schemas,
		              plan->nversion_schemas);
	put_string(w, "search_path", plan->search_path);
	emit_mapping_end(w);

	write_tables(w, plan);
	write_statements(w, plan);
	if (plan->cdc)
		write_cdc(w, plan->cdc);
	write_phases(w, plan);

	writer_where(w, "%s", "");
	/*
	 * Always plain, whatever the digits: the runtime reads this line as
	 * bytes, and the format promises "plan_sha256: " and 64 hex digits.
	 */
	emit_key(w, "plan_sha256");
	emit_scalar(w, "plan_sha256", CHECKSUM_PLACEHOLDER, true,
	            YAML_PLAIN_SCALAR_STYLE);
	emit_mapping_end(w);

	if (w->failed)
		return;
	if (!yaml_document_end_event_initialize(&event, 1)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
	if (w->failed)
		return;
	if (!yaml_stream_end_event_initialize(&event)) {
		writer_fail(w, "out of memory");
		return;
	}
	emit(w, &event);
	if (!w->failed && !yaml_emitter_flush(&w->emitter))
		writer_fail(w, "out of memory");
}

/*
 * Replace the placeholder on the last line with the hash of everything
 * before that line.  The tail is checked byte for byte first: if libyaml
 * ever wrote it differently (a "..." end marker, say), the plan must not go
 * out with a checksum the runtime would compute differently.
 */
static void
seal(plan_writer *w)
{
	static const char tail[] = CHECKSUM_PREFIX CHECKSUM_PLACEHOLDER "\n";
	size_t taillen = sizeof(tail) - 1;
	size_t start;
	char hex[65];

	if (w->len < taillen ||
	    memcmp(w->buf + w->len - taillen, tail, taillen) != 0) {
		writer_fail(
			w,
			"libyaml did not end the plan with the plan_sha256 line");
		return;
	}
	start = w->len - taillen;
	if (start > 0 && w->buf[start - 1] != '\n') {
		writer_fail(
			w,
			"libyaml did not start plan_sha256 on a line of its own");
		return;
	}
	zdmc_sha256_hex(w->buf, start, hex);
	memcpy(w->buf + start + strlen(CHECKSUM_PREFIX), hex, 64);
}

int
zdmc_plan_write(const zdmc_plan *plan, char **out, size_t *outlen, char *errbuf,
                size_t errlen)
{
	plan_writer w;
	bool emitter_ready = false;
	int error = -1, expected;

	memset(&w, 0, sizeof(w));
	w.errbuf = errbuf;
	w.errlen = errlen;
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!plan || !out || !outlen) {
		writer_fail(&w, "no plan or no place to put it");
		goto cleanup;
	}
	expected = ZDMC_PLAN_FORMAT_VERSION;
	if (plan->format_version != expected) {
		writer_fail(&w,
		            "this zdmc writes plan format version %d, not %d",
		            expected, plan->format_version);
		goto cleanup;
	}

	if (!yaml_emitter_initialize(&w.emitter)) {
		writer_fail(&w, "out of memory");
		goto cleanup;
	}
	emitter_ready = true;
	yaml_emitter_set_output(&w.emitter, write_handler, &w);
	yaml_emitter_set_encoding(&w.emitter, YAML_UTF8_ENCODING);
	yaml_emitter_set_unicode(&w.emitter, 1);
	/* Never fold: a folded line is a diff on every rewrap, and SQL in a
	 * plain scalar is easier to review on one line. */
	yaml_emitter_set_width(&w.emitter, -1);
	yaml_emitter_set_indent(&w.emitter, 2);
	yaml_emitter_set_break(&w.emitter, YAML_LN_BREAK);

	write_document(&w, plan);
	if (w.failed)
		goto cleanup;
	seal(&w);
	if (w.failed)
		goto cleanup;

	/* write_handler always leaves room for this NUL; callers may treat the
	 * plan as a C string. */
	w.buf[w.len] = '\0';
	*out = w.buf;
	*outlen = w.len;
	w.buf = NULL;
	error = 0;

cleanup:
	if (emitter_ready)
		yaml_emitter_delete(&w.emitter);
	free(w.buf);
	return error;
}
