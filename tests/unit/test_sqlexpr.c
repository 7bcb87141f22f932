/*
 * test_sqlexpr.c -- unit tests of compiler/sqlexpr.c.
 *
 * Every expression is placed in a small .zdm-like source, starting in the
 * middle of line 3, so the tests check source offsets (and line:column) the
 * way users see them rather than offsets into the wrapped SQL.  Messages are
 * compared exactly: they are part of the interface.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "diag.h"
#include "source.h"
#include "sqlexpr.h"

/* The expression starts on line 3, column 28. */
#define LEAD \
	"alter table users\n  split column name into\n    first_name text using ("
#define LEAD_LEN (sizeof(LEAD) - 1)
#define LEAD_COL 28
#define TYPE_LEAD "alter table users\n  alter column id type "
#define TYPE_LEAD_LEN (sizeof(TYPE_LEAD) - 1)

typedef struct test_state {
	zdmc_arena *arena;
	zdmc_source *src;
	zdmc_diag diag;
} test_state;

static int
setup(void **state)
{
	test_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return -1;
	st->arena = zdmc_arena_new();
	*state = st;
	return 0;
}

static int
teardown(void **state)
{
	test_state *st = *state;

	zdmc_arena_free(st->arena);
	free(st);
	return 0;
}

static void
load(test_state *st, const char *lead, const char *text, size_t len,
     const char *trail)
{
	zdmc_buf buf;

	zdmc_buf_init(&buf, st->arena);
	zdmc_buf_puts(&buf, lead);
	zdmc_buf_append(&buf, text, len);
	zdmc_buf_puts(&buf, trail);
	st->src = zdmc_source_new(st->arena, "test.zdm", zdmc_buf_cstr(&buf),
	                          buf.len);
	zdmc_diag_init(&st->diag, st->arena, st->src);
}

static zdmc_sqlexpr *
parse_len(test_state *st, const char *text, size_t len, const char *what)
{
	zdmc_expr expr;

	load(st, LEAD, text, len, ")\n");
	memset(&expr, 0, sizeof(expr));
	expr.text = st->src->text + LEAD_LEN;
	expr.offset = LEAD_LEN;
	expr.len = len;
	return zdmc_sqlexpr_parse(st->arena, &st->diag, &expr, what);
}

static zdmc_sqlexpr *
parse(test_state *st, const char *text)
{
	return parse_len(st, text, strlen(text), "using");
}

static int
check_type(test_state *st, const char *text)
{
	zdmc_type type;

	load(st, TYPE_LEAD, text, strlen(text), ",\n");
	type.text = text;
	type.offset = TYPE_LEAD_LEN;
	return zdmc_sqlexpr_check_type(st->arena, &st->diag, &type);
}

/* The parse succeeded, reported nothing and found nrefs references. */
static void
assert_ok(test_state *st, const zdmc_sqlexpr *e, size_t nrefs)
{
	if (st->diag.first != NULL)
		print_error("unexpected error: %s\n", st->diag.first->message);
	assert_non_null(e);
	assert_int_equal(st->diag.nerrors, 0);
	assert_int_equal(e->nrefs, nrefs);
	assert_int_equal(e->src_offset, LEAD_LEN);
}

/* Reference i is qualifier.column, spelled span, at offset in the text. */
static void
assert_ref(const zdmc_sqlexpr *e, size_t i, const char *qualifier,
           const char *column, size_t offset, const char *span)
{
	const zdmc_colref *ref;

	assert_true(i < e->nrefs);
	ref = &e->refs[i];
	assert_string_equal(ref->column, column);
	if (qualifier == NULL)
		assert_null(ref->qualifier);
	else
		assert_string_equal(ref->qualifier, qualifier);
	assert_int_equal(ref->offset, offset);
	assert_int_equal(ref->length, strlen(span));
	assert_memory_equal(e->text + ref->offset, span, ref->length);
}

/* Exactly one error, with this message, at this offset from base. */
static void
assert_error(test_state *st, size_t base, size_t offset, const char *message)
{
	assert_int_equal(st->diag.nerrors, 1);
	assert_non_null(st->diag.first);
	assert_string_equal(st->diag.first->message, message);
	assert_int_equal(st->diag.first->offset, base + offset);
}

static void
assert_expr_error(test_state *st, const zdmc_sqlexpr *e, size_t offset,
                  const char *message)
{
	assert_null(e);
	assert_error(st, LEAD_LEN, offset, message);
}

/* ---- column references ------------------------------------------------- */

static void
test_ref_function_argument(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "split_part(name, ' ', 1)");

	assert_ok(st, e, 1);
	assert_ref(e, 0, NULL, "name", 11, "name");
	assert_string_equal(e->text, "split_part(name, ' ', 1)");
	assert_int_equal(e->len, 24);
}

static void
test_ref_qualified(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "users.name || public.users.\"Name\"");

	assert_ok(st, e, 2);
	assert_ref(e, 0, "users", "name", 0, "users.name");
	assert_ref(e, 1, "public.users", "Name", 14, "public.users.\"Name\"");
}

static void
test_ref_quoted(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "\"a\"\"b\" || \"Mixed Case\" || NaMe");

	assert_ok(st, e, 3);
	assert_ref(e, 0, NULL, "a\"b", 0, "\"a\"\"b\"");
	assert_ref(e, 1, NULL, "Mixed Case", 10, "\"Mixed Case\"");
	/* unquoted names fold to lower case, as PostgreSQL resolves them */
	assert_ref(e, 2, NULL, "name", 26, "NaMe");
}

static void
test_ref_spaced_and_commented(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(
		st,
		"users . /* the table */ name -- why\n  || u&\"d!0061t\" UESCAPE '!'");

	assert_ok(st, e, 2);
	assert_ref(e, 0, "users", "name", 0, "users . /* the table */ name");
	assert_ref(e, 1, NULL, "dat", 41, "u&\"d!0061t\" UESCAPE '!'");
}

static void
test_ref_casts(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(
		st,
		"name::text || (age)::int::text || CAST(t.code AS varchar(10))");

	assert_ok(st, e, 3);
	assert_ref(e, 0, NULL, "name", 0, "name");
	assert_ref(e, 1, NULL, "age", 15, "age");
	assert_ref(e, 2, "t", "code", 39, "t.code");
}

static void
test_ref_case(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(
		st,
		"CASE WHEN status = 'x' THEN a WHEN b IS NULL THEN 'none' ELSE c END");

	assert_ok(st, e, 4);
	assert_ref(e, 0, NULL, "status", 10, "status");
	assert_ref(e, 1, NULL, "a", 28, "a");
	assert_ref(e, 2, NULL, "b", 35, "b");
	assert_ref(e, 3, NULL, "c", 62, "c");
}

static void
test_ref_nested_parens(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "((a + (b)) * coalesce(c, (d)))");

	assert_ok(st, e, 4);
	assert_ref(e, 0, NULL, "a", 2, "a");
	assert_ref(e, 1, NULL, "b", 7, "b");
	assert_ref(e, 2, NULL, "c", 22, "c");
	assert_ref(e, 3, NULL, "d", 26, "d");
}

static void
test_ref_not_in_strings_or_comments(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e =
		parse(st, "'name' || $x$name$x$ || $$name$$ || /* name */ "
	                  "E'it\\'s name' || name -- name\n");

	assert_ok(st, e, 1);
	assert_ref(e, 0, NULL, "name", 64, "name");
}

static void
test_ref_multibyte(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "'h\xc3\xa9llo' || n\xc3\xa9v\xc3\xa9");

	/* offsets and lengths are bytes */
	assert_ok(st, e, 1);
	assert_ref(e, 0, NULL, "n\xc3\xa9v\xc3\xa9", 12, "n\xc3\xa9v\xc3\xa9");
}

static void
test_ref_row_constructor(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "(a, b)");

	assert_ok(st, e, 2);
	assert_ref(e, 0, NULL, "a", 1, "a");
	assert_ref(e, 1, NULL, "b", 4, "b");
}

static void
test_no_refs(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "now() - interval '1 day'");

	assert_ok(st, e, 0);
}

/* ---- rewrite ----------------------------------------------------------- */

static const char *
map_name_to_new(void *ctx, const zdmc_colref *ref)
{
	int *calls = ctx;

	(*calls)++;
	if (ref->qualifier == NULL && strcmp(ref->column, "name") == 0)
		return "NEW.name";
	if (ref->qualifier != NULL && strcmp(ref->qualifier, "users") == 0)
		return "\"u\".x";
	return NULL;
}

static void
test_rewrite(void **state)
{
	test_state *st = *state;
	const char *text = "split_part(name, ' ', 1) /* name */ || 'name' || "
			   "\"name\" || users.id || other.name || Name";
	zdmc_sqlexpr *e = parse(st, text);
	const char *out;
	int calls = 0;

	assert_ok(st, e, 5);
	out = zdmc_sqlexpr_rewrite(st->arena, e, map_name_to_new, &calls);
	assert_int_equal(calls, 5);
	assert_string_equal(
		out, "split_part(NEW.name, ' ', 1) /* name */ || 'name' || "
		     "NEW.name || \"u\".x || other.name || NEW.name");
}

static void
test_rewrite_keeps_text(void **state)
{
	test_state *st = *state;
	const char *text = "  lower(\n\tname)  -- keep me\n";
	zdmc_sqlexpr *e = parse(st, text);
	int calls = 0;

	assert_ok(st, e, 1);
	assert_string_equal(
		zdmc_sqlexpr_rewrite(st->arena, e, map_name_to_new, &calls),
		"  lower(\n\tNEW.name)  -- keep me\n");
	/* nothing mapped: byte for byte the original */
	e = parse(st, "other + 1");
	assert_ok(st, e, 1);
	assert_string_equal(
		zdmc_sqlexpr_rewrite(st->arena, e, map_name_to_new, &calls),
		"other + 1");
}

/* ---- syntax errors ----------------------------------------------------- */

static void
test_syntax_error_position(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "split_part(name,, 1)");
	int line, col;

	assert_expr_error(
		st, e, 16,
		"syntax error in using expression: syntax error at or near \",\"");
	zdmc_source_position(st->src, st->diag.first->offset, &line, &col);
	assert_int_equal(line, 3);
	assert_int_equal(col, LEAD_COL + 16);
}

static void
test_syntax_error_multiline(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "a ||\n      b c");
	int line, col;

	assert_expr_error(
		st, e, 13,
		"syntax error in using expression: syntax error at or near \"c\"");
	zdmc_source_position(st->src, st->diag.first->offset, &line, &col);
	assert_int_equal(line, 4);
	assert_int_equal(col, 9);
}

static void
test_syntax_error_at_end(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "a +\n b +");

	/* PostgreSQL stops at our closing ")": point at the last byte, and
	 * say what it means rather than name a token of the wrapping */
	assert_expr_error(
		st, e, 7,
		"syntax error in using expression: it ends too early");
}

static void
test_syntax_error_after_multibyte(void **state)
{
	test_state *st = *state;
	/* 3 three-byte characters: the cursor is 6 characters, 12 bytes, in */
	zdmc_sqlexpr *e =
		parse(st, "'\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e' ||, x");
	int line, col;

	assert_expr_error(
		st, e, 14,
		"syntax error in using expression: syntax error at or near \",\"");
	zdmc_source_position(st->src, st->diag.first->offset, &line, &col);
	assert_int_equal(col, LEAD_COL + 8);
}

static void
test_unterminated_string(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "x || 'abc\n  more");

	/* the quoted rest of input stops at the line end, without our ")" */
	assert_expr_error(
		st, e, 5,
		"syntax error in using expression: unterminated quoted string at or near \"'abc\"");
}

static void
test_trailing_line_comment(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "name -- the closing paren is ours");

	assert_ok(st, e, 1);
	assert_ref(e, 0, NULL, "name", 0, "name");
}

static void
test_empty(void **state)
{
	test_state *st = *state;

	assert_expr_error(st, parse(st, ""), 0, "empty using expression");
	assert_expr_error(st, parse(st, "  \n\t "), 0,
	                  "empty using expression");
	assert_expr_error(st, parse(st, " /* nothing */ -- here\n"), 0,
	                  "empty using expression");
	assert_expr_error(st, parse_len(st, "", 0, "reverse using"), 0,
	                  "empty reverse using expression");
}

static void
test_bad_bytes(void **state)
{
	test_state *st = *state;

	assert_expr_error(st, parse(st, "a || '\xff'"), 6,
	                  "invalid byte 0xff in using expression");
	assert_expr_error(st, parse_len(st, "a\0b", 3, "using"), 1,
	                  "invalid byte 0x00 in using expression");
}

static void
test_what_in_messages(void **state)
{
	test_state *st = *state;

	assert_expr_error(
		st, parse_len(st, "1 +", 3, "reverse using"), 2,
		"syntax error in reverse using expression: it ends too early");
	assert_expr_error(
		st, parse_len(st, "$1", 2, "reverse using"), 0,
		"parameters ($1) are not allowed in a reverse using expression");
}

/* ---- rejected constructs ----------------------------------------------- */

static void
test_reject_subqueries(void **state)
{
	test_state *st = *state;
	const char *msg = "subqueries are not allowed in a using expression";

	assert_expr_error(st, parse(st, "(select max(id) from users)"), 0, msg);
	assert_expr_error(st, parse(st, "select 1"), 0, msg);
	assert_expr_error(st, parse(st, "exists (select 1 from t)"), 0, msg);
	assert_expr_error(st, parse(st, "name in (select x from t)"), 5, msg);
	assert_expr_error(st, parse(st, "array(select 1)"), 0, msg);
}

static void
test_reject_window_and_aggregates(void **state)
{
	test_state *st = *state;
	const char *window =
		"window functions are not allowed in a using expression";
	const char *agg =
		"aggregate functions are not allowed in a using expression";

	assert_expr_error(st, parse(st, "row_number() over (order by id)"), 0,
	                  window);
	assert_expr_error(st, parse(st, "1 + sum(x) over w"), 4, window);
	assert_expr_error(st, parse(st, "count(*)"), 0, agg);
	assert_expr_error(st, parse(st, "1 + count(distinct x)"), 4, agg);
	assert_expr_error(st, parse(st, "sum(x) filter (where x > 0)"), 0, agg);
	assert_expr_error(st, parse(st, "string_agg(x, ',' order by x)"), 0,
	                  agg);
	assert_expr_error(
		st, parse(st, "percentile_cont(0.5) within group (order by x)"),
		0, agg);
}

static void
test_reject_parameters(void **state)
{
	test_state *st = *state;

	assert_expr_error(
		st, parse(st, "name || $2"), 8,
		"parameters ($1) are not allowed in a using expression");
}

static void
test_reject_whole_row(void **state)
{
	test_state *st = *state;
	const char *msg =
		"whole-row references (t.*) are not allowed in a using expression";

	assert_expr_error(st, parse(st, "row_to_json(t.*)"), 12, msg);
	assert_expr_error(st, parse(st, "row_to_json((users).*)"), 13, msg);
}

static void
test_reject_long_names(void **state)
{
	test_state *st = *state;

	assert_expr_error(
		st, parse(st, "1 + db.public.users.name"), 4,
		"column references with more than three parts are not allowed in a using expression");
}

static void
test_reject_several_in_order(void **state)
{
	test_state *st = *state;
	zdmc_sqlexpr *e = parse(st, "$1 + count(*) + (select 1) + t.*");
	const zdmc_diagnostic *d;

	assert_null(e);
	assert_int_equal(st->diag.nerrors, 4);
	d = st->diag.first;
	assert_int_equal(d->offset, LEAD_LEN + 0);
	assert_string_equal(
		d->message,
		"parameters ($1) are not allowed in a using expression");
	d = d->next;
	assert_int_equal(d->offset, LEAD_LEN + 5);
	assert_string_equal(
		d->message,
		"aggregate functions are not allowed in a using expression");
	d = d->next;
	assert_int_equal(d->offset, LEAD_LEN + 16);
	assert_string_equal(d->message,
	                    "subqueries are not allowed in a using expression");
	d = d->next;
	assert_int_equal(d->offset, LEAD_LEN + 29);
	assert_string_equal(
		d->message,
		"whole-row references (t.*) are not allowed in a using expression");
}

static void
test_reject_unbalanced(void **state)
{
	test_state *st = *state;
	const char *msg = "unbalanced parentheses in using expression";

	/* each parses inside "SELECT (...)", but is not one expression */
	assert_expr_error(st, parse(st, "a) + (b"), 1, msg);
	assert_expr_error(st, parse(st, "a) FROM t WHERE (b"), 1, msg);
	assert_expr_error(st, parse(st, "1); DROP TABLE users; SELECT (1"), 1,
	                  msg);
}

static void
test_reject_list(void **state)
{
	test_state *st = *state;

	assert_expr_error(st, parse(st, "a, b"), 3,
	                  "using expression must be a single expression");
}

/* ---- constants --------------------------------------------------------- */

static void
test_kind(void **state)
{
	test_state *st = *state;
	static const struct {
		const char *text;
		zdmc_sqlexpr_kind kind;
	} cases[] = {
		{"'active'", ZDMC_SQLEXPR_CONSTANT},
		{"0", ZDMC_SQLEXPR_CONSTANT},
		{"-1", ZDMC_SQLEXPR_CONSTANT},
		{"- 1.5", ZDMC_SQLEXPR_CONSTANT},
		{"true", ZDMC_SQLEXPR_CONSTANT},
		{"B'101'", ZDMC_SQLEXPR_CONSTANT},
		{"'x'::text", ZDMC_SQLEXPR_CONSTANT},
		{"('{}'::int[])", ZDMC_SQLEXPR_CONSTANT},
		{"interval '1 day'", ZDMC_SQLEXPR_CONSTANT},
		{"CAST('1' AS integer)::bigint", ZDMC_SQLEXPR_CONSTANT},
		{"'now'::timestamptz", ZDMC_SQLEXPR_CONSTANT},
		{"null", ZDMC_SQLEXPR_NULL},
		{"NULL::text", ZDMC_SQLEXPR_NULL},
		{"CAST(NULL AS integer)", ZDMC_SQLEXPR_NULL},
		{"now()", ZDMC_SQLEXPR_COMPUTED},
		{"current_timestamp", ZDMC_SQLEXPR_COMPUTED},
		{"gen_random_uuid()", ZDMC_SQLEXPR_COMPUTED},
		{"nextval('users_id_seq')", ZDMC_SQLEXPR_COMPUTED},
		{"1 + 1", ZDMC_SQLEXPR_COMPUTED},
		{"'a' || 'b'", ZDMC_SQLEXPR_COMPUTED},
		{"'a' COLLATE \"C\"", ZDMC_SQLEXPR_COMPUTED},
		{"ARRAY[1, 2]", ZDMC_SQLEXPR_COMPUTED},
		{"(1, 2)", ZDMC_SQLEXPR_COMPUTED},
		{"name", ZDMC_SQLEXPR_COMPUTED},
		{"name::text", ZDMC_SQLEXPR_COMPUTED},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zdmc_sqlexpr *e = parse(st, cases[i].text);

		if (e == NULL)
			fail_msg("%s: %s", cases[i].text,
			         st->diag.first->message);
		if (e->kind != cases[i].kind)
			fail_msg("%s: kind %d, expected %d", cases[i].text,
			         (int)e->kind, (int)cases[i].kind);
	}
}

/* ---- types ------------------------------------------------------------- */

static void
test_types_ok(void **state)
{
	test_state *st = *state;
	static const char *const ok[] = {
		"numeric(12,2)",  "timestamp with time zone",
		"text[]",         "double precision",
		"varchar(20)",    "character varying(5)[]",
		"public.my_type", "\"My Type\"",
		"int4range",      "interval day to second(3)",
		"bit varying(8)", "int -- trailing comment",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (check_type(st, ok[i]) != 0)
			fail_msg("%s: %s", ok[i], st->diag.first->message);
		assert_int_equal(st->diag.nerrors, 0);
	}
}

static void
test_types_bad(void **state)
{
	test_state *st = *state;

	assert_int_equal(check_type(st, "numeric(12,"), -1);
	assert_error(st, TYPE_LEAD_LEN, 10,
	             "syntax error in type: syntax error at end of input");

	assert_int_equal(check_type(st, "integer primary key"), -1);
	assert_error(st, TYPE_LEAD_LEN, 16,
	             "syntax error in type: syntax error at or near \"key\"");

	/* PostgreSQL 14+ takes "primary" as a bare column alias */
	assert_int_equal(check_type(st, "integer primary"), -1);
	assert_error(st, TYPE_LEAD_LEN, 0,
	             "\"integer primary\" is not a type name");

	assert_int_equal(check_type(st, "int FROM t"), -1);
	assert_error(st, TYPE_LEAD_LEN, 0, "\"int FROM t\" is not a type name");

	assert_int_equal(check_type(st, "int COLLATE \"C\""), -1);
	assert_error(st, TYPE_LEAD_LEN, 0,
	             "\"int COLLATE \"C\"\" is not a type name");

	assert_int_equal(check_type(st, "int; select 1"), -1);
	assert_error(st, TYPE_LEAD_LEN, 0,
	             "\"int; select 1\" is not a type name");

	assert_int_equal(check_type(st, "setof int"), -1);
	assert_error(st, TYPE_LEAD_LEN, 0,
	             "setof is not allowed in a column type");

	assert_int_equal(check_type(st, ""), -1);
	assert_error(st, TYPE_LEAD_LEN, 0, "empty type");
}

/* ---- lists of assignments (merge's reverse using) ---------------------- */

/*
 * Split text as zdmc_sqlexpr_assignments would after the scanner: the
 * commas are given by the test, as "^" under the text marks them (the
 * scanner's job, tested through the golden diagnostics).
 */
static size_t
assign(test_state *st, const char *text, const char *marks,
       zdmc_sqlassign **out)
{
	size_t len = strlen(text), n = 0, *commas;
	zdmc_expr expr;

	commas = zdmc_arena_alloc(st->arena, (len + 1) * sizeof(size_t));
	for (size_t i = 0; marks[i] != '\0'; i++)
		if (marks[i] == '^')
			commas[n++] = LEAD_LEN + i;
	load(st, LEAD, text, len, ")\n");
	memset(&expr, 0, sizeof(expr));
	expr.text = st->src->text + LEAD_LEN;
	expr.offset = LEAD_LEN;
	expr.len = len;
	expr.commas = commas;
	expr.ncommas = n;
	return zdmc_sqlexpr_assignments(st->arena, &st->diag, &expr,
	                                "reverse using", out);
}

static void
assert_assign(const zdmc_sqlassign *a, const char *column, bool quoted,
              size_t column_at, const char *value, size_t value_at)
{
	assert_string_equal(a->column.name, column);
	assert_int_equal(a->column.quoted, quoted);
	assert_int_equal(a->column.offset, LEAD_LEN + column_at);
	assert_int_equal(a->value.len, strlen(value));
	assert_memory_equal(a->value.text, value, strlen(value));
	assert_int_equal(a->value.offset, LEAD_LEN + value_at);
}

static void
test_assignments(void **state)
{
	test_state *st = *state;
	zdmc_sqlassign *a;

	/* the blanks around a value are the list's, not the value's */
	assert_int_equal(
		assign(st, "a = x,  B =f(y, z) ", "     ^             ", &a),
		2);
	assert_int_equal(st->diag.nerrors, 0);
	assert_assign(&a[0], "a", false, 0, "x", 4);
	assert_assign(&a[1], "b", false, 8, "f(y, z)", 11);
	/* quoted names keep their case; comments may sit anywhere; "=-1" is
	 * "=" then "-1", as PostgreSQL reads it */
	assert_int_equal(
		assign(st, "\"Mixed \"\"Case\"\" \" /* c */ =-1", "", &a), 1);
	assert_int_equal(st->diag.nerrors, 0);
	assert_assign(&a[0], "Mixed \"Case\" ", true, 0, "-1", 27);
	assert_int_equal(assign(st, "-- x\n  a /* = */ = /* v */ 1", "", &a),
	                 1);
	assert_assign(&a[0], "a", false, 7, "/* v */ 1", 19);
}

static void
test_assignments_bad(void **state)
{
	test_state *st = *state;
	zdmc_sqlassign *a;

	/* "=>" is another operator */
	assert_int_equal(assign(st, "a => 1, b = 2", "      ^      ", &a), 1);
	assert_error(
		st, LEAD_LEN, 2,
		"expected \"=\" after column name in reverse using: column = expression");
	zdmc_diag_init(&st->diag, st->arena, st->src);
	assert_int_equal(assign(st, "(a) = 1", "", &a), 0);
	assert_error(
		st, LEAD_LEN, 0,
		"expected a column name in reverse using: column = expression");
	zdmc_diag_init(&st->diag, st->arena, st->src);
	assert_int_equal(assign(st, "a = 1, , b = 2", "     ^ ^      ", &a), 2);
	assert_error(
		st, LEAD_LEN, 6,
		"empty item in reverse using: expected column = expression");
	zdmc_diag_init(&st->diag, st->arena, st->src);
	assert_int_equal(assign(st, " /* none */ ", "", &a), 0);
	assert_error(st, LEAD_LEN, 0,
	             "empty reverse using: expected column = expression, ...");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ref_function_argument,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_qualified, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_ref_quoted, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_ref_spaced_and_commented,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_casts, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_ref_case, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_nested_parens, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(
			test_ref_not_in_strings_or_comments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ref_multibyte, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_ref_row_constructor, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_no_refs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_keeps_text, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_position,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_multiline,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_at_end, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(
			test_syntax_error_after_multibyte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unterminated_string, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_trailing_line_comment,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_bytes, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_what_in_messages, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_reject_subqueries, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(
			test_reject_window_and_aggregates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_parameters, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_reject_whole_row, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_reject_long_names, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_reject_several_in_order,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_unbalanced, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_reject_list, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assignments, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_assignments_bad, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_types_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_bad, setup,
	                                        teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
