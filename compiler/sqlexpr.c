/*
 * sqlexpr.c -- SQL expressions and types, checked by libpg_query.
 *
 * libpg_query is PostgreSQL 15's own scanner and grammar as a library, so
 * what it accepts here the server's parser accepts later; the compiler keeps
 * no SQL grammar of its own and never connects anywhere.  An expression is
 * parsed as "SELECT (" text "\n)": the newline keeps a trailing -- comment
 * from swallowing our ")".  Node locations are byte offsets into that wrapped
 * string, so one subtraction maps them back into the .zdm file; error
 * cursors instead count characters from 1 and are converted to bytes first.
 *
 * Invariants: every libpg_query result and jansson tree is released before
 * a function returns, on every path (one cleanup label each); what we keep is
 * copied into the arena.  Column references are collected by walking the
 * whole tree generically, so a construct not thought of here still yields
 * its references.  PostgreSQL tells us only where a reference starts; the
 * small scanner below finds where it ends, and understands no more of SQL
 * than identifiers, dots, whitespace and comments -- PostgreSQL has already
 * decided that a reference is there.
 *
 * libpg_query keeps a per-thread memory context across calls; we must not
 * call pg_query_exit() here, the next parse would have to rebuild it.
 */
#include "sqlexpr.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pg_query.h>

/*
 * The newline before ")" ends a trailing -- comment.  Wrapping in
 * parentheses alone would let a text such as "a) FROM t WHERE (b" through;
 * a second parse as ARRAY[...] rejects it, since no production of
 * PostgreSQL's grammar closes "[" with ")".
 */
#define SQLEXPR_PREFIX "SELECT ("
#define SQLEXPR_SUFFIX "\n)"
#define SQLEXPR_ARRAY_PREFIX "SELECT ARRAY["
#define SQLEXPR_ARRAY_SUFFIX "\n]"
#define SQLEXPR_TYPE_PREFIX "SELECT NULL::"
#define SQLEXPR_TYPE_SUFFIX ""
/* create index's and create table's bodies follow a table's name; the
 * name is never seen */
#define SQLEXPR_INDEX_PREFIX "CREATE INDEX zdm_check ON zdm_check "
#define SQLEXPR_INDEX_SUFFIX ""
#define SQLEXPR_TABLE_PREFIX "CREATE TABLE zdm_check "

/* A text of the source, wrapped into a statement libpg_query can parse. */
typedef struct sqlexpr_query {
	const char *sql; /* prefix + text + suffix, in the arena */
	size_t prefix_len;
	const char *text; /* the part written in the source */
	size_t len;
	size_t src_offset; /* where text starts in the source */
} sqlexpr_query;

typedef enum sqlexpr_run_status {
	SQLEXPR_RUN_OK = 0,
	SQLEXPR_RUN_SYNTAX = -1, /* PostgreSQL rejected the text */
	SQLEXPR_RUN_TREE = -2    /* the parse tree could not be read back */
} sqlexpr_run_status;

/* Why libpg_query gave no tree, for the caller to word. */
typedef struct sqlexpr_failure {
	size_t offset;       /* in the source */
	const char *message; /* libpg_query's or jansson's */
	bool past_text;      /* PostgreSQL looked past the text: "at end" */
} sqlexpr_failure;

/* A construct the expression may not contain, reported in source order. */
typedef struct sqlexpr_problem {
	size_t offset;
	const char *message;
	size_t seq; /* keeps qsort stable */
} sqlexpr_problem;

typedef struct sqlexpr_walk {
	zdmc_arena *arena;
	const sqlexpr_query *q;
	const char *what;
	zdmc_colref *refs;
	size_t nrefs, refs_cap;
	sqlexpr_problem *problems;
	size_t nproblems, problems_cap;
} sqlexpr_walk;

/* ---- text -------------------------------------------------------------- */

static bool
sqlexpr_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

/* scan.l: ident_start [A-Za-z\200-\377_], ident_cont adds [0-9\$]. */
static bool
sqlexpr_is_ident_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       c >= 0x80;
}

static bool
sqlexpr_is_ident_cont(unsigned char c)
{
	return sqlexpr_is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool
sqlexpr_is_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!sqlexpr_is_space((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * Offset of the first byte that is not part of well-formed UTF-8 (or is NUL),
 * len if there is none.  libpg_query copies bytes into its JSON unchecked and
 * jansson then refuses the whole tree, so bad bytes are caught here where we
 * can still say where they are.  As strict as jansson: no overlong forms, no
 * surrogates, nothing above U+10FFFF.
 */
static size_t
sqlexpr_utf8_invalid(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t n, k;

		if (c == 0)
			return i;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 4;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i < n)
			return i;
		for (k = 1; k < n; k++) {
			unsigned char cc = (unsigned char)s[i + k];

			if ((cc & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (cc & 0x3F);
		}
		if ((n == 3 && cp < 0x800) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += n;
	}
	return len;
}

/* Byte length of the character at s, exactly as PostgreSQL's pg_utf_mblen
 * counts it when it turns a byte location into an error cursor. */
static size_t
sqlexpr_utf8_mblen(unsigned char c)
{
	if ((c & 0x80) == 0)
		return 1;
	if ((c & 0xE0) == 0xC0)
		return 2;
	if ((c & 0xF0) == 0xE0)
		return 3;
	if ((c & 0xF8) == 0xF0)
		return 4;
	return 1;
}

/* Skip whitespace and comments (nested slash-star, as in PostgreSQL), which
 * may separate the parts of a dotted name. */
static size_t
sqlexpr_skip_blank(const char *s, size_t len, size_t i)
{
	for (;;) {
		if (i < len && sqlexpr_is_space((unsigned char)s[i])) {
			i++;
		} else if (i + 1 < len && s[i] == '-' && s[i + 1] == '-') {
			while (i < len && s[i] != '\n' && s[i] != '\r')
				i++;
		} else if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
			int depth = 1;

			i += 2;
			while (i < len && depth > 0) {
				if (i + 1 < len && s[i] == '/' &&
				    s[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (i + 1 < len && s[i] == '*' &&
				           s[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			}
		} else {
			return i;
		}
	}
}

/* s[*i] is the opening quote; on success *i is just past the closing one.
 * A doubled quote stands for itself. */
static bool
sqlexpr_scan_quoted(const char *s, size_t len, size_t *i, char quote)
{
	size_t j = *i + 1;

	while (j < len) {
		if (s[j] == quote) {
			if (j + 1 < len && s[j + 1] == quote) {
				j += 2;
				continue;
			}
			*i = j + 1;
			return true;
		}
		j++;
	}
	return false;
}

static bool
sqlexpr_word_is(const char *s, size_t len, size_t i, const char *word)
{
	size_t n = strlen(word), k;

	if (len - i < n)
		return false;
	for (k = 0; k < n; k++) {
		char c = s[i + k];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != word[k])
			return false;
	}
	return i + n == len || !sqlexpr_is_ident_cont((unsigned char)s[i + n]);
}

/*
 * One identifier starting at s[*i]: plain, "quoted", or U&"escaped" with an
 * optional UESCAPE 'c', which PostgreSQL's lexer folds into the same token.
 */
static bool
sqlexpr_scan_ident(const char *s, size_t len, size_t *i)
{
	size_t j = *i;

	if (j >= len)
		return false;
	if (len - j >= 3 && (s[j] == 'U' || s[j] == 'u') && s[j + 1] == '&' &&
	    s[j + 2] == '"') {
		size_t k;

		j += 2;
		if (!sqlexpr_scan_quoted(s, len, &j, '"'))
			return false;
		k = sqlexpr_skip_blank(s, len, j);
		if (sqlexpr_word_is(s, len, k, "uescape")) {
			k = sqlexpr_skip_blank(s, len, k + 7);
			if (k < len && s[k] == '\'' &&
			    sqlexpr_scan_quoted(s, len, &k, '\''))
				j = k;
		}
		*i = j;
		return true;
	}
	if (s[j] == '"') {
		if (!sqlexpr_scan_quoted(s, len, &j, '"'))
			return false;
		*i = j;
		return true;
	}
	if (!sqlexpr_is_ident_start((unsigned char)s[j]))
		return false;
	j++;
	while (j < len && sqlexpr_is_ident_cont((unsigned char)s[j]))
		j++;
	*i = j;
	return true;
}

/* End of a column reference of nfields parts that starts at start. */
static bool
sqlexpr_ref_end(const char *s, size_t len, size_t start, size_t nfields,
                size_t *end)
{
	size_t i = start, k;

	for (k = 0; k < nfields; k++) {
		if (k > 0) {
			i = sqlexpr_skip_blank(s, len, i);
			if (i >= len || s[i] != '.')
				return false;
			i = sqlexpr_skip_blank(s, len, i + 1);
		}
		if (!sqlexpr_scan_ident(s, len, &i))
			return false;
	}
	*end = i;
	return true;
}

/* ---- lists of assignments ----------------------------------------------- */

/* Characters that would make "=" part of a longer operator (scan.l's
 * op_chars, less + and -, which PostgreSQL splits off: "=-1" is "=" "-1"). */
static bool
sqlexpr_is_op_char(unsigned char c)
{
	return c != '\0' && strchr("~!@#^&|`?%<>=*/", c) != NULL;
}

/* One item s[0..len) of a list, at source offset at. */
static bool
sqlexpr_assignment(zdmc_arena *arena, zdmc_diag *diag, const char *s,
                   size_t len, size_t at, const char *what, zdmc_sqlassign *out)
{
	size_t i = sqlexpr_skip_blank(s, len, 0), start = i, eq;

	if (i == len) {
		zdmc_diag_error(
			diag, at + (i ? i - 1 : 0),
			"empty item in %s: expected column = expression", what);
		return false;
	}
	if (s[i] == '"' || sqlexpr_is_ident_start((unsigned char)s[i])) {
		if (s[i] == '"') {
			if (!sqlexpr_scan_quoted(s, len, &i, '"'))
				i = start; /* not met: the scanner saw it closed */
		} else {
			while (i < len &&
			       sqlexpr_is_ident_cont((unsigned char)s[i]))
				i++;
		}
	}
	if (i == start || (s[start] == '"' && i - start == 2)) {
		zdmc_diag_error(
			diag, at + start,
			"expected a column name in %s: column = expression",
			what);
		return false;
	}
	eq = sqlexpr_skip_blank(s, len, i);
	if (eq >= len || s[eq] != '=' ||
	    (eq + 1 < len && sqlexpr_is_op_char((unsigned char)s[eq + 1]) &&
	     !(s[eq + 1] == '/' && eq + 2 < len && s[eq + 2] == '*'))) {
		zdmc_diag_error(
			diag, at + (eq < len ? eq : len - 1),
			"expected \"=\" after column name in %s: column = expression",
			what);
		return false;
	}
	if (s[start] == '"') {
		zdmc_buf b;

		zdmc_buf_init(&b, arena);
		for (size_t k = start + 1; k + 1 < i; k++) {
			zdmc_buf_append(&b, s + k, 1);
			if (s[k] == '"')
				k++;
		}
		out->column.name = zdmc_buf_cstr(&b);
		out->column.quoted = true;
	} else {
		char *folded = zdmc_arena_strndup(arena, s + start, i - start);

		for (char *c = folded; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		out->column.name = folded;
		out->column.quoted = false;
	}
	out->column.offset = at + start;
	/* the value without the blanks around it, which are the list's */
	for (i = eq + 1; i < len && sqlexpr_is_space((unsigned char)s[i]); i++)
		;
	while (len > i && sqlexpr_is_space((unsigned char)s[len - 1]))
		len--;
	memset(&out->value, 0, sizeof(out->value));
	out->value.text = zdmc_arena_strndup(arena, s + i, len - i);
	out->value.offset = at + i;
	out->value.len = len - i;
	return true;
}

size_t
zdmc_sqlexpr_assignments(zdmc_arena *arena, zdmc_diag *diag,
                         const zdmc_expr *list, const char *what,
                         zdmc_sqlassign **out)
{
	size_t n = 0, k, from = 0;

	assert(arena != NULL && diag != NULL && list != NULL && out != NULL);
	*out = zdmc_arena_alloc(arena,
	                        (list->ncommas + 1) * sizeof(zdmc_sqlassign));
	if (list->ncommas == 0 &&
	    sqlexpr_skip_blank(list->text, list->len, 0) == list->len) {
		zdmc_diag_error(diag, list->offset,
		                "empty %s: expected column = expression, ...",
		                what);
		return 0;
	}
	for (k = 0; k <= list->ncommas; k++) {
		size_t to = k < list->ncommas ? list->commas[k] - list->offset
		                              : list->len;

		if (sqlexpr_assignment(arena, diag, list->text + from,
		                       to - from, list->offset + from, what,
		                       &(*out)[n]))
			n++;
		from = to + 1;
	}
	return n;
}

/* ---- libpg_query ------------------------------------------------------- */

static void
sqlexpr_query_init(sqlexpr_query *q, zdmc_arena *arena, const char *prefix,
                   const char *text, size_t len, const char *suffix,
                   size_t src_offset)
{
	zdmc_buf buf;

	zdmc_buf_init(&buf, arena);
	zdmc_buf_puts(&buf, prefix);
	zdmc_buf_append(&buf, text, len);
	zdmc_buf_puts(&buf, suffix);
	q->sql = zdmc_buf_cstr(&buf);
	q->prefix_len = strlen(prefix);
	q->text = text;
	q->len = len;
	q->src_offset = src_offset;
}

/*
 * Source offset of a byte location in q->sql.  A location inside our prefix
 * means the text's start; one inside our suffix (PostgreSQL looked past the
 * text, "at end of input") means its last character, so the caret stays on
 * what the user wrote.  Negative is libpg_query's "unknown".
 */
static size_t
sqlexpr_map_location(const sqlexpr_query *q, long long loc)
{
	size_t rel, last;

	if (loc < 0 || (size_t)loc < q->prefix_len)
		return q->src_offset;
	rel = (size_t)loc - q->prefix_len;
	if (rel < q->len)
		return q->src_offset + rel;
	if (q->len == 0)
		return q->src_offset;
	last = q->len - 1;
	while (last > 0 && ((unsigned char)q->text[last] & 0xC0) == 0x80)
		last--;
	return q->src_offset + last;
}

/* error->cursorpos counts characters from 1 (0: no position); the byte
 * location it stands for, -1 if none. */
static long long
sqlexpr_error_location(const sqlexpr_query *q, int cursorpos)
{
	size_t pos = 0, sqllen = strlen(q->sql);
	int c;

	if (cursorpos <= 0)
		return -1;
	for (c = 1; c < cursorpos && pos < sqllen; c++)
		pos += sqlexpr_utf8_mblen((unsigned char)q->sql[pos]);
	if (pos > sqllen)
		pos = sqllen;
	return (long long)pos;
}

/*
 * PostgreSQL quotes the rest of the input after "at or near" for an
 * unterminated string or comment, which would show our suffix and every
 * later line; keep the quote to its first line.
 */
static const char *
sqlexpr_clean_message(zdmc_arena *arena, const char *msg)
{
	static const char marker[] = "at or near \"";
	const char *near = strstr(msg, marker), *cut;
	size_t n;

	if (near == NULL)
		return zdmc_arena_strdup(arena, msg);
	near += sizeof(marker) - 1;
	cut = strpbrk(near, "\r\n");
	if (cut == NULL)
		return zdmc_arena_strdup(arena, msg);
	n = (size_t)(cut - msg);
	while (n > (size_t)(near - msg) &&
	       (msg[n - 1] == ' ' || msg[n - 1] == '\t'))
		n--;
	return zdmc_arena_printf(arena, "%.*s\"", (int)n, msg);
}

/*
 * Parse q.  On success *tree is the parse tree (the caller json_decref()s
 * it).  Otherwise *fail says what went wrong, and nothing is reported: the
 * caller knows what the text was.
 */
static sqlexpr_run_status
sqlexpr_run(zdmc_arena *arena, const sqlexpr_query *q, json_t **tree,
            sqlexpr_failure *fail)
{
	PgQueryParseResult result;
	json_error_t jerr;
	sqlexpr_run_status status;

	*tree = NULL;
	memset(fail, 0, sizeof(*fail));
	result = pg_query_parse(q->sql);
	if (result.error != NULL) {
		long long loc =
			sqlexpr_error_location(q, result.error->cursorpos);

		fail->offset = sqlexpr_map_location(q, loc);
		fail->message =
			sqlexpr_clean_message(arena, result.error->message);
		fail->past_text = loc >= (long long)(q->prefix_len + q->len);
		status = SQLEXPR_RUN_SYNTAX;
		goto cleanup;
	}
	/* Deep nesting can exceed jansson's depth limit (2048). */
	*tree = json_loads(result.parse_tree, 0, &jerr);
	if (*tree == NULL) {
		fail->offset = q->src_offset;
		fail->message =
			json_error_code(&jerr) == json_error_stack_overflow
				? "nested too deeply"
				: zdmc_arena_strdup(arena, jerr.text);
		status = SQLEXPR_RUN_TREE;
		goto cleanup;
	}
	status = SQLEXPR_RUN_OK;

cleanup:
	pg_query_free_parse_result(result);
	return status;
}

/* ---- parse tree -------------------------------------------------------- */

static long long
sqlexpr_node_location(const json_t *fields)
{
	json_t *loc = json_object_get(fields, "location");

	return json_is_integer(loc) ? (long long)json_integer_value(loc) : -1;
}

/* Smallest known location anywhere under v, for nodes that carry none. */
static long long
sqlexpr_first_location(json_t *v)
{
	long long best = -1, loc;
	void *it;
	size_t i;

	for (i = 0; i < json_array_size(v); i++) {
		loc = sqlexpr_first_location(json_array_get(v, i));
		if (loc >= 0 && (best < 0 || loc < best))
			best = loc;
	}
	for (it = json_object_iter(v); it != NULL;
	     it = json_object_iter_next(v, it)) {
		json_t *member = json_object_iter_value(it);

		if (strcmp(json_object_iter_key(it), "location") == 0 &&
		    json_is_integer(member))
			loc = (long long)json_integer_value(member);
		else
			loc = sqlexpr_first_location(member);
		if (loc >= 0 && (best < 0 || loc < best))
			best = loc;
	}
	return best;
}

static bool
sqlexpr_string_is(const json_t *v, const char *s)
{
	const char *str = json_string_value(v);

	return str != NULL && strcmp(str, s) == 0;
}

/* Does a list (ColumnRef fields, A_Indirection) contain a "*"? */
static bool
sqlexpr_has_star(const json_t *list)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++)
		if (json_object_get(json_array_get(list, i), "A_Star") != NULL)
			return true;
	return false;
}

/*
 * The single expression of "SELECT <expr>": the ResTarget's val, or NULL if
 * the statement is anything more (several statements or targets, FROM,
 * WHERE, a set operation, an alias, ...).
 */
static json_t *
sqlexpr_single_target(json_t *tree)
{
	json_t *stmts = json_object_get(tree, "stmts");
	json_t *select, *targets, *target;
	void *it;

	if (json_array_size(stmts) != 1)
		return NULL;
	select = json_object_get(
		json_object_get(json_array_get(stmts, 0), "stmt"),
		"SelectStmt");
	if (!json_is_object(select))
		return NULL;
	for (it = json_object_iter(select); it != NULL;
	     it = json_object_iter_next(select, it)) {
		const char *key = json_object_iter_key(it);
		json_t *member = json_object_iter_value(it);

		if (strcmp(key, "targetList") == 0)
			continue;
		if (strcmp(key, "op") == 0 &&
		    sqlexpr_string_is(member, "SETOP_NONE"))
			continue;
		if (strcmp(key, "limitOption") == 0 &&
		    sqlexpr_string_is(member, "LIMIT_OPTION_DEFAULT"))
			continue;
		return NULL;
	}
	targets = json_object_get(select, "targetList");
	if (json_array_size(targets) != 1)
		return NULL;
	target = json_object_get(json_array_get(targets, 0), "ResTarget");
	if (!json_is_object(target) ||
	    json_object_get(target, "name") != NULL ||
	    json_object_get(target, "indirection") != NULL)
		return NULL;
	return json_object_get(target, "val");
}

static void sqlexpr_problem_add(sqlexpr_walk *w, long long loc, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

static void
sqlexpr_problem_add(sqlexpr_walk *w, long long loc, const char *fmt, ...)
{
	sqlexpr_problem *p;
	va_list ap;

	if (w->nproblems == w->problems_cap) {
		size_t cap = w->problems_cap ? w->problems_cap * 2 : 8;
		sqlexpr_problem *grown =
			zdmc_arena_alloc(w->arena, cap * sizeof(*grown));

		if (w->nproblems)
			memcpy(grown, w->problems,
			       w->nproblems * sizeof(*grown));
		w->problems = grown;
		w->problems_cap = cap;
	}
	p = &w->problems[w->nproblems];
	p->offset = sqlexpr_map_location(w->q, loc);
	va_start(ap, fmt);
	p->message = zdmc_arena_vprintf(w->arena, fmt, ap);
	va_end(ap);
	p->seq = w->nproblems++;
}

static zdmc_colref *
sqlexpr_ref_add(sqlexpr_walk *w)
{
	if (w->nrefs == w->refs_cap) {
		size_t cap = w->refs_cap ? w->refs_cap * 2 : 8;
		zdmc_colref *grown =
			zdmc_arena_alloc(w->arena, cap * sizeof(*grown));

		if (w->nrefs)
			memcpy(grown, w->refs, w->nrefs * sizeof(*grown));
		w->refs = grown;
		w->refs_cap = cap;
	}
	return &w->refs[w->nrefs++];
}

static void
sqlexpr_walk_columnref(sqlexpr_walk *w, json_t *node)
{
	json_t *fields = json_object_get(node, "fields");
	long long loc = sqlexpr_node_location(node);
	size_t nfields = json_array_size(fields), i, start, end;
	zdmc_buf qualifier;
	zdmc_colref *ref;
	const char *column = NULL;

	if (sqlexpr_has_star(fields)) {
		sqlexpr_problem_add(
			w, loc,
			"whole-row references (t.*) are not allowed in a %s expression",
			w->what);
		return;
	}
	if (nfields > 3) {
		sqlexpr_problem_add(
			w, loc,
			"column references with more than three parts are not allowed in a %s expression",
			w->what);
		return;
	}
	zdmc_buf_init(&qualifier, w->arena);
	for (i = 0; i < nfields; i++) {
		const char *sval = json_string_value(json_object_get(
			json_object_get(json_array_get(fields, i), "String"),
			"sval"));

		if (sval == NULL)
			break;
		if (i + 1 == nfields) {
			column = sval;
		} else {
			if (i > 0)
				zdmc_buf_puts(&qualifier, ".");
			zdmc_buf_puts(&qualifier, sval);
		}
	}
	start = loc >= (long long)w->q->prefix_len
	                ? (size_t)loc - w->q->prefix_len
	                : w->q->len;
	if (column == NULL || start >= w->q->len ||
	    !sqlexpr_ref_end(w->q->text, w->q->len, start, nfields, &end)) {
		/* Would mean libpg_query and this file disagree about SQL. */
		sqlexpr_problem_add(
			w, loc,
			"cannot find the extent of a column reference in a %s expression",
			w->what);
		return;
	}
	ref = sqlexpr_ref_add(w);
	ref->column = zdmc_arena_strdup(w->arena, column);
	ref->qualifier =
		nfields > 1
			? zdmc_arena_strdup(w->arena, zdmc_buf_cstr(&qualifier))
			: NULL;
	ref->offset = start;
	ref->length = end - start;
}

/* Does a FuncCall carry any of the syntax that only aggregates accept? */
static bool
sqlexpr_is_aggregate_call(json_t *node)
{
	static const char *const markers[] = {"agg_star", "agg_distinct",
	                                      "agg_within_group", "agg_order",
	                                      "agg_filter"};
	size_t i;

	for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		json_t *m = json_object_get(node, markers[i]);

		if (m != NULL && !json_is_false(m))
			return true;
	}
	return false;
}

/*
 * Judge one node (key is its type, node its fields); returns whether to look
 * inside it.  A subquery is not entered: whatever it contains is its own
 * business, and reporting it would only add noise to the one real error.
 */
static bool
sqlexpr_walk_node(sqlexpr_walk *w, const char *key, json_t *node)
{
	long long loc = sqlexpr_node_location(node);

	if (strcmp(key, "ColumnRef") == 0) {
		sqlexpr_walk_columnref(w, node);
		return false;
	}
	if (strcmp(key, "SubLink") == 0) {
		sqlexpr_problem_add(
			w, loc, "subqueries are not allowed in a %s expression",
			w->what);
		return false;
	}
	if (strcmp(key, "ParamRef") == 0) {
		sqlexpr_problem_add(
			w, loc,
			"parameters ($1) are not allowed in a %s expression",
			w->what);
		return false;
	}
	if (strcmp(key, "FuncCall") == 0) {
		if (json_object_get(node, "over") != NULL)
			sqlexpr_problem_add(
				w, loc,
				"window functions are not allowed in a %s expression",
				w->what);
		else if (sqlexpr_is_aggregate_call(node))
			sqlexpr_problem_add(
				w, loc,
				"aggregate functions are not allowed in a %s expression",
				w->what);
		return true;
	}
	if (strcmp(key, "A_Indirection") == 0) {
		/* (t).* or (f(x)).*: a whole row spelled differently */
		if (sqlexpr_has_star(json_object_get(node, "indirection"))) {
			sqlexpr_problem_add(
				w, sqlexpr_first_location(node),
				"whole-row references (t.*) are not allowed in a %s expression",
				w->what);
			return false;
		}
		return true;
	}
	return true;
}

/* Node types are the keys of single-member wrapper objects; descend into
 * every object and array so no reference is missed. */
static void
sqlexpr_walk_value(sqlexpr_walk *w, json_t *value)
{
	void *it;
	size_t i;

	for (i = 0; i < json_array_size(value); i++)
		sqlexpr_walk_value(w, json_array_get(value, i));
	for (it = json_object_iter(value); it != NULL;
	     it = json_object_iter_next(value, it)) {
		json_t *member = json_object_iter_value(it);

		if (json_is_object(member) &&
		    !sqlexpr_walk_node(w, json_object_iter_key(it), member))
			continue;
		sqlexpr_walk_value(w, member);
	}
}

static int
sqlexpr_ref_cmp(const void *a, const void *b)
{
	const zdmc_colref *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int
sqlexpr_problem_cmp(const void *a, const void *b)
{
	const sqlexpr_problem *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Report in source order, once per place and message. */
static void
sqlexpr_report_problems(zdmc_diag *diag, sqlexpr_walk *w)
{
	size_t i;

	qsort(w->problems, w->nproblems, sizeof(*w->problems),
	      sqlexpr_problem_cmp);
	for (i = 0; i < w->nproblems; i++) {
		const sqlexpr_problem *p = &w->problems[i];

		if (i > 0 && p->offset == w->problems[i - 1].offset &&
		    strcmp(p->message, w->problems[i - 1].message) == 0)
			continue;
		zdmc_diag_error(diag, p->offset, "%s", p->message);
	}
}

/* Sort the references into text order; a node the grammar shares between two
 * places would otherwise be listed (and rewritten) twice. */
static void
sqlexpr_sort_refs(sqlexpr_walk *w)
{
	size_t i, n = 0;

	if (w->nrefs < 2)
		return; /* refs may be NULL, which qsort must not see */
	qsort(w->refs, w->nrefs, sizeof(*w->refs), sqlexpr_ref_cmp);
	for (i = 0; i < w->nrefs; i++) {
		if (n > 0 && w->refs[i].offset < w->refs[n - 1].offset +
		                                         w->refs[n - 1].length)
			continue;
		w->refs[n++] = w->refs[i];
	}
	w->nrefs = n;
}

/*
 * A literal (A_Const), or a cast of one, however deep (TypeCast wraps
 * "'x'::text", "CAST(x AS t)" and "interval '1 day'"; PostgreSQL's grammar
 * already folds "-1" into the literal).  Parentheses leave no node.
 */
static zdmc_sqlexpr_kind
sqlexpr_kind_of(json_t *node)
{
	json_t *cast;

	while ((cast = json_object_get(node, "TypeCast")) != NULL)
		node = json_object_get(cast, "arg");
	node = json_object_get(node, "A_Const");
	if (!json_is_object(node))
		return ZDMC_SQLEXPR_COMPUTED;
	return json_is_true(json_object_get(node, "isnull"))
	               ? ZDMC_SQLEXPR_NULL
	               : ZDMC_SQLEXPR_CONSTANT;
}

/* ---- public ------------------------------------------------------------ */

zdmc_sqlexpr *
zdmc_sqlexpr_parse(zdmc_arena *arena, zdmc_diag *diag, const zdmc_expr *expr,
                   const char *what)
{
	const char *text = expr->text ? expr->text : "";
	size_t len = expr->text ? expr->len : 0, bad;
	sqlexpr_failure fail;
	sqlexpr_query q, aq;
	sqlexpr_walk w;
	sqlexpr_run_status status;
	json_t *tree = NULL, *atree = NULL, *target, *elements;
	zdmc_sqlexpr *result = NULL;

	assert(arena != NULL && diag != NULL && what != NULL);
	memset(&w, 0, sizeof(w));

	if (sqlexpr_is_blank(text, len)) {
		zdmc_diag_error(diag, expr->offset, "empty %s expression",
		                what);
		goto cleanup;
	}
	/* PostgreSQL's parser and libpg_query's tree output recurse once per
	 * operator: a flat 1+1+...+1 of 100,000 terms overflows the stack
	 * before any depth guard of ours sees the tree.  No real transform
	 * comes near this size. */
	if (len > ZDMC_SQLEXPR_MAX_BYTES) {
		zdmc_diag_error(
			diag, expr->offset,
			"%s expression is too long: %zu bytes, at most %d",
			what, len, ZDMC_SQLEXPR_MAX_BYTES);
		goto cleanup;
	}
	bad = sqlexpr_utf8_invalid(text, len);
	if (bad < len) {
		zdmc_diag_error(diag, expr->offset + bad,
		                "invalid byte 0x%02x in %s expression",
		                (unsigned char)text[bad], what);
		goto cleanup;
	}

	sqlexpr_query_init(&q, arena, SQLEXPR_PREFIX, text, len, SQLEXPR_SUFFIX,
	                   expr->offset);
	status = sqlexpr_run(arena, &q, &tree, &fail);
	if (status == SQLEXPR_RUN_SYNTAX && fail.past_text &&
	    sqlexpr_skip_blank(text, len, 0) == len) {
		/* nothing but comments */
		zdmc_diag_error(diag, expr->offset, "empty %s expression",
		                what);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_SYNTAX && fail.past_text) {
		/* PostgreSQL names the token it stopped at, which is our
		 * wrapping's, not the source's */
		zdmc_diag_error(
			diag, fail.offset,
			"syntax error in %s expression: it ends too early",
			what);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_SYNTAX) {
		zdmc_diag_error(diag, fail.offset,
		                "syntax error in %s expression: %s", what,
		                fail.message);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_TREE) {
		zdmc_diag_error(diag, fail.offset,
		                "%s expression is too complex: %s", what,
		                fail.message);
		goto cleanup;
	}

	w.arena = arena;
	w.q = &q;
	w.what = what;
	target = sqlexpr_single_target(tree);
	if (target != NULL)
		sqlexpr_walk_value(&w, target);

	/*
	 * Balanced parentheses: "a) + (b" is fine inside "SELECT (...)" but
	 * would change meaning wherever the plan puts the text.  A bare query
	 * ("select 1") fails here too, but the walk has already named it.
	 */
	sqlexpr_query_init(&aq, arena, SQLEXPR_ARRAY_PREFIX, text, len,
	                   SQLEXPR_ARRAY_SUFFIX, expr->offset);
	status = sqlexpr_run(arena, &aq, &atree, &fail);
	if (w.nproblems > 0) {
		sqlexpr_report_problems(diag, &w);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_SYNTAX) {
		zdmc_diag_error(diag, fail.offset,
		                "unbalanced parentheses in %s expression",
		                what);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_TREE) {
		zdmc_diag_error(diag, fail.offset,
		                "%s expression is too complex: %s", what,
		                fail.message);
		goto cleanup;
	}
	elements = json_object_get(
		json_object_get(sqlexpr_single_target(atree), "A_ArrayExpr"),
		"elements");
	if (target == NULL || json_array_size(elements) != 1) {
		/* "a, b": a row in one wrapping, two values in another */
		long long loc = json_array_size(elements) > 1
		                        ? sqlexpr_first_location(
						  json_array_get(elements, 1))
		                        : -1;

		zdmc_diag_error(diag, sqlexpr_map_location(&aq, loc),
		                "%s expression must be a single expression",
		                what);
		goto cleanup;
	}

	sqlexpr_sort_refs(&w);
	result = ZDMC_NEW(arena, zdmc_sqlexpr);
	result->text = zdmc_arena_strndup(arena, text, len);
	result->len = len;
	result->src_offset = expr->offset;
	result->refs = w.refs;
	result->nrefs = w.nrefs;
	result->kind = sqlexpr_kind_of(target);

cleanup:
	json_decref(atree);
	json_decref(tree);
	return result;
}

int
zdmc_sqlexpr_check_type(zdmc_arena *arena, zdmc_diag *diag,
                        const zdmc_type *type)
{
	const char *text = type->text ? type->text : "";
	size_t len = strlen(text), bad;
	sqlexpr_failure fail;
	sqlexpr_query q;
	sqlexpr_run_status status;
	json_t *tree = NULL, *cast, *arg, *type_name;
	int error = -1;

	assert(arena != NULL && diag != NULL);

	if (sqlexpr_is_blank(text, len)) {
		zdmc_diag_error(diag, type->offset, "empty type");
		goto cleanup;
	}
	bad = sqlexpr_utf8_invalid(text, len);
	if (bad < len) {
		zdmc_diag_error(diag, type->offset + bad,
		                "invalid byte 0x%02x in type",
		                (unsigned char)text[bad]);
		goto cleanup;
	}

	sqlexpr_query_init(&q, arena, SQLEXPR_TYPE_PREFIX, text, len,
	                   SQLEXPR_TYPE_SUFFIX, type->offset);
	status = sqlexpr_run(arena, &q, &tree, &fail);
	if (status == SQLEXPR_RUN_SYNTAX) {
		zdmc_diag_error(diag, fail.offset, "syntax error in type: %s",
		                fail.message);
		goto cleanup;
	}
	if (status == SQLEXPR_RUN_TREE) {
		zdmc_diag_error(diag, fail.offset, "type is too complex: %s",
		                fail.message);
		goto cleanup;
	}

	/* "int FROM t", "int COLLATE x", "int + 1" parse, but are no type. */
	cast = json_object_get(sqlexpr_single_target(tree), "TypeCast");
	arg = json_object_get(json_object_get(cast, "arg"), "A_Const");
	type_name = json_object_get(cast, "typeName");
	if (!json_is_true(json_object_get(arg, "isnull")) ||
	    !json_is_object(type_name)) {
		zdmc_diag_error(diag, type->offset, "\"%s\" is not a type name",
		                text);
		goto cleanup;
	}
	if (json_is_true(json_object_get(type_name, "setof"))) {
		zdmc_diag_error(diag, type->offset,
		                "setof is not allowed in a column type");
		goto cleanup;
	}
	error = 0;

cleanup:
	json_decref(tree);
	return error;
}

const char *
zdmc_sqlexpr_rewrite(zdmc_arena *arena, const zdmc_sqlexpr *expr,
                     zdmc_colref_map map, void *ctx)
{
	zdmc_buf buf;
	size_t pos = 0, i;

	assert(arena != NULL && expr != NULL && map != NULL);
	zdmc_buf_init(&buf, arena);
	for (i = 0; i < expr->nrefs; i++) {
		const zdmc_colref *ref = &expr->refs[i];
		const char *replacement;

		assert(ref->offset >= pos &&
		       ref->offset + ref->length <= expr->len);
		replacement = map(ctx, ref);
		if (replacement == NULL)
			continue;
		zdmc_buf_append(&buf, expr->text + pos, ref->offset - pos);
		zdmc_buf_puts(&buf, replacement);
		pos = ref->offset + ref->length;
	}
	zdmc_buf_append(&buf, expr->text + pos, expr->len - pos);
	return zdmc_buf_cstr(&buf);
}

/*
 * A body of PostgreSQL's syntax written in the source (create index's or
 * create table's, or a sql statement's), parsed behind prefix: *tree is
 * the parse tree (the caller json_decref()s it) or, on -1, NULL and the
 * problem reported at its place -- an empty body (empty names what it
 * needs), an invalid byte, a syntax error.  what names it in messages.
 */
static int
sqlexpr_parse_body(zdmc_arena *arena, zdmc_diag *diag, const zdmc_expr *body,
                   const char *prefix, const char *what, const char *empty,
                   json_t **tree)
{
	const char *text = body->text ? body->text : "";
	size_t len = strlen(text), bad;
	sqlexpr_failure fail;
	sqlexpr_query q;
	sqlexpr_run_status status;

	*tree = NULL;
	if (sqlexpr_is_blank(text, len)) {
		zdmc_diag_error(diag, body->offset, "%s", empty);
		return -1;
	}
	bad = sqlexpr_utf8_invalid(text, len);
	if (bad < len) {
		zdmc_diag_error(diag, body->offset + bad,
		                "invalid byte 0x%02x in %s",
		                (unsigned char)text[bad], what);
		return -1;
	}
	sqlexpr_query_init(&q, arena, prefix, text, len, "", body->offset);
	status = sqlexpr_run(arena, &q, tree, &fail);
	if (status == SQLEXPR_RUN_SYNTAX) {
		zdmc_diag_error(diag, fail.offset, "syntax error in %s: %s",
		                what, fail.message);
		return -1;
	}
	if (status == SQLEXPR_RUN_TREE) {
		zdmc_diag_error(diag, fail.offset, "%s is too complex: %s",
		                what, fail.message);
		return -1;
	}
	return 0;
}

/* Where a plain column name (an element, an include column) is in the
 * body: its first whole-word occurrence, else the body's start. */
static size_t
sqlexpr_index_name_offset(const zdmc_expr *body, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = body->text; p && (p = strstr(p, name)) != NULL;
	     p++) {
		bool start = p == body->text || !isalnum((unsigned char)p[-1]);
		bool end = !isalnum((unsigned char)p[n]) && p[n] != '_';

		if (start && end && (p == body->text || p[-1] != '_'))
			return body->offset + (size_t)(p - body->text);
	}
	return body->offset;
}

/*
 * The name PostgreSQL gives an index expression's column (FigureColname,
 * as the default index name uses it): a function call's name, a column's
 * name, through casts; anything else "expr".
 */
static const char *
sqlexpr_index_expr_name(json_t *node)
{
	json_t *v;

	if ((v = json_object_get(node, "TypeCast")) != NULL)
		return sqlexpr_index_expr_name(json_object_get(v, "arg"));
	if ((v = json_object_get(node, "FuncCall")) != NULL ||
	    (v = json_object_get(node, "ColumnRef")) != NULL) {
		json_t *names = json_object_get(v, "funcname");
		const char *last;

		if (names == NULL)
			names = json_object_get(v, "fields");
		last = json_string_value(json_object_get(
			json_object_get(
				json_array_get(names,
		                               json_array_size(names) - 1),
				"String"),
			"sval"));
		return last ? last : "expr";
	}
	return "expr";
}

static void
sqlexpr_index_add(zdmc_arena *arena, zdmc_sqlindex *out, size_t *cap,
                  const char *name, size_t offset)
{
	for (size_t i = 0; i < out->ncolumns; i++)
		if (strcmp(out->columns[i].name, name) == 0)
			return;
	if (out->ncolumns == *cap) {
		size_t grown = *cap ? 2 * *cap : 8;
		zdmc_name *v = zdmc_arena_alloc(arena, grown * sizeof(*v));

		if (out->ncolumns)
			memcpy(v, out->columns, out->ncolumns * sizeof(*v));
		out->columns = v;
		*cap = grown;
	}
	out->columns[out->ncolumns].name = zdmc_arena_strdup(arena, name);
	out->columns[out->ncolumns].offset = offset;
	out->columns[out->ncolumns].quoted = false;
	out->ncolumns++;
}

int
zdmc_sqlexpr_check_index(zdmc_arena *arena, zdmc_diag *diag,
                         const zdmc_expr *body, zdmc_sqlindex *out)
{
	size_t cap = 0;
	sqlexpr_query q;
	sqlexpr_walk w;
	json_t *tree = NULL, *stmts, *index, *lists[2];
	zdmc_buf name;
	int error = -1;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	if (sqlexpr_parse_body(arena, diag, body, SQLEXPR_INDEX_PREFIX,
	                       "create index",
	                       "create index needs its columns, as in (email)",
	                       &tree) != 0)
		goto cleanup;
	/* the walk maps its locations through the same wrapping */
	sqlexpr_query_init(&q, arena, SQLEXPR_INDEX_PREFIX, body->text,
	                   strlen(body->text), "", body->offset);
	stmts = json_object_get(tree, "stmts");
	index = json_object_get(
		json_object_get(json_array_get(stmts, 0), "stmt"), "IndexStmt");
	if (json_array_size(stmts) != 1 || !json_is_object(index)) {
		zdmc_diag_error(diag, body->offset,
		                "create index holds one statement");
		goto cleanup;
	}

	/* expressions and the predicate: judged as a using expression is,
	 * and their column references collected */
	w.arena = arena;
	w.q = &q;
	w.what = "create index";
	lists[0] = json_object_get(index, "indexParams");
	lists[1] = json_object_get(index, "indexIncludingParams");
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < json_array_size(lists[l]); i++)
			sqlexpr_walk_value(
				&w, json_object_get(
					    json_object_get(
						    json_array_get(lists[l], i),
						    "IndexElem"),
					    "expr"));
	if (json_object_get(index, "whereClause") != NULL)
		sqlexpr_walk_value(&w, json_object_get(index, "whereClause"));
	if (w.nproblems > 0) {
		sqlexpr_report_problems(diag, &w);
		goto cleanup;
	}

	zdmc_buf_init(&name, arena);
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < json_array_size(lists[l]); i++) {
			json_t *elem = json_object_get(
				json_array_get(lists[l], i), "IndexElem");
			const char *column = json_string_value(
				json_object_get(elem, "name"));

			if (l == 0)
				zdmc_buf_printf(
					&name, "%s%s", i ? "_" : "",
					column ? column
					       : sqlexpr_index_expr_name(
							 json_object_get(
								 elem,
								 "expr")));
			if (column != NULL)
				sqlexpr_index_add(arena, out, &cap, column,
				                  sqlexpr_index_name_offset(
							  body, column));
		}
	for (size_t i = 0; i < w.nrefs; i++)
		sqlexpr_index_add(arena, out, &cap, w.refs[i].column,
		                  body->offset + w.refs[i].offset);
	out->name_part = zdmc_buf_cstr(&name);
	out->has_where = json_object_get(index, "whereClause") != NULL;
	/* the elements are columns[0, nplain) when each is a plain column
	 * named once (the list holds each name once, elements first) */
	out->nplain = json_array_size(lists[0]);
	for (size_t i = 0; i < json_array_size(lists[0]); i++) {
		const char *column = json_string_value(json_object_get(
			json_object_get(json_array_get(lists[0], i),
		                        "IndexElem"),
			"name"));

		if (column == NULL || i >= out->ncolumns ||
		    strcmp(out->columns[i].name, column) != 0)
			out->nplain = 0;
	}
	error = 0;

cleanup:
	json_decref(tree);
	return error;
}

int
zdmc_sqlexpr_check_table(zdmc_arena *arena, zdmc_diag *diag,
                         const zdmc_expr *body)
{
	json_t *tree = NULL, *stmts;
	int error = -1;

	if (sqlexpr_parse_body(
		    arena, diag, body, SQLEXPR_TABLE_PREFIX, "create table",
		    "create table needs its columns, as in (id bigint PRIMARY KEY)",
		    &tree) != 0)
		goto cleanup;
	stmts = json_object_get(tree, "stmts");
	if (json_array_size(stmts) != 1 ||
	    !json_is_object(json_object_get(
		    json_object_get(json_array_get(stmts, 0), "stmt"),
		    "CreateStmt"))) {
		zdmc_diag_error(diag, body->offset,
		                "create table holds one statement");
		goto cleanup;
	}
	error = 0;

cleanup:
	json_decref(tree);
	return error;
}

/* Statements a step cannot hold, by parse node, and why. */
static const struct {
	const char *node;
	const char *flag; /* NULL: always; else only when this field is true */
	const char *why;
} sqlexpr_refused[] = {
	{"TransactionStmt", NULL,
         "a transaction command: zdm runs each step in a transaction of its own, and commits it with its journal row"},
	{"VacuumStmt", NULL,
         "VACUUM and ANALYZE cannot run in a transaction block"},
	{"IndexStmt", "concurrent",
         "CREATE INDEX CONCURRENTLY cannot run in a transaction block: write create index, which zdm builds concurrently"},
	{"ReindexStmt", "concurrent",
         "REINDEX CONCURRENTLY cannot run in a transaction block"},
	{"DropStmt", "concurrent",
         "DROP INDEX CONCURRENTLY cannot run in a transaction block"},
	{"CreatedbStmt", NULL,
         "CREATE DATABASE cannot run in a transaction block"},
	{"DropdbStmt", NULL, "DROP DATABASE cannot run in a transaction block"},
	{"AlterSystemStmt", NULL,
         "ALTER SYSTEM cannot run in a transaction block"},
	{"CreateTableSpaceStmt", NULL,
         "CREATE TABLESPACE cannot run in a transaction block"},
	{"DropTableSpaceStmt", NULL,
         "DROP TABLESPACE cannot run in a transaction block"},
	{"CreateSubscriptionStmt", NULL,
         "CREATE SUBSCRIPTION cannot run in a transaction block"},
};

int
zdmc_sqlexpr_check_statements(zdmc_arena *arena, zdmc_diag *diag,
                              const zdmc_expr *body, const char *what)
{
	const char *text = body->text ? body->text : "";
	size_t len = strlen(text);
	json_t *tree = NULL, *stmts;
	int error = -1;

	if (sqlexpr_parse_body(
		    arena, diag, body, "", what,
		    zdmc_arena_printf(arena, "empty %s: no statement", what),
		    &tree) != 0)
		goto cleanup;
	stmts = json_object_get(tree, "stmts");
	if (json_array_size(stmts) == 0) {
		zdmc_diag_error(diag, body->offset, "empty %s: no statement",
		                what);
		goto cleanup;
	}
	error = 0;
	for (size_t i = 0; i < json_array_size(stmts); i++) {
		json_t *raw = json_array_get(stmts, i);
		json_t *stmt = json_object_get(raw, "stmt");
		json_t *loc = json_object_get(raw, "stmt_location");
		size_t at =
			body->offset +
			(json_is_integer(loc) ? (size_t)json_integer_value(loc)
		                              : 0);

		/* stmt_location counts leading blanks; point at the word */
		while (at < body->offset + len &&
		       sqlexpr_is_space((unsigned char)text[at - body->offset]))
			at++;
		for (size_t k = 0;
		     k < sizeof(sqlexpr_refused) / sizeof(sqlexpr_refused[0]);
		     k++) {
			json_t *node =
				json_object_get(stmt, sqlexpr_refused[k].node);

			if (node == NULL ||
			    (sqlexpr_refused[k].flag != NULL &&
			     !json_is_true(json_object_get(
				     node, sqlexpr_refused[k].flag))))
				continue;
			zdmc_diag_error(diag, at, "%s cannot hold this: %s",
			                what, sqlexpr_refused[k].why);
			error = -1;
		}
	}

cleanup:
	json_decref(tree);
	return error;
}
