/*
 * test_ident.c -- unit tests of compiler/ident.c.
 *
 * The expected spellings are what PostgreSQL 15's quote_ident() returns for
 * the same input, so generated SQL matches what pg_dump would write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "arena.h"
#include "ident.h"

static int
setup(void **state)
{
	*state = zdmc_arena_new();
	return 0;
}

static int
teardown(void **state)
{
	zdmc_arena_free(*state);
	return 0;
}

static void
test_quote_plain(void **state)
{
	zdmc_arena *arena = *state;

	assert_string_equal(zdmc_ident_quote(arena, "users"), "users");
	assert_string_equal(zdmc_ident_quote(arena, "first_name"),
	                    "first_name");
	assert_string_equal(zdmc_ident_quote(arena, "_x1"), "_x1");
	assert_string_equal(zdmc_ident_quote(arena, "a$"), "\"a$\"");
}

static void
test_quote_case_and_characters(void **state)
{
	zdmc_arena *arena = *state;

	assert_string_equal(zdmc_ident_quote(arena, "Users"), "\"Users\"");
	assert_string_equal(zdmc_ident_quote(arena, "first name"),
	                    "\"first name\"");
	assert_string_equal(zdmc_ident_quote(arena, "1abc"), "\"1abc\"");
	assert_string_equal(zdmc_ident_quote(arena, "a\"b"), "\"a\"\"b\"");
	assert_string_equal(zdmc_ident_quote(arena, "\""), "\"\"\"\"");
	assert_string_equal(zdmc_ident_quote(arena, ""), "\"\"");
	/* like PostgreSQL, only ASCII stays bare */
	assert_string_equal(zdmc_ident_quote(arena, "caf\xc3\xa9"),
	                    "\"caf\xc3\xa9\"");
}

static void
test_quote_keywords(void **state)
{
	zdmc_arena *arena = *state;

	/* reserved */
	assert_string_equal(zdmc_ident_quote(arena, "user"), "\"user\"");
	assert_string_equal(zdmc_ident_quote(arena, "order"), "\"order\"");
	assert_string_equal(zdmc_ident_quote(arena, "all"), "\"all\"");
	/* col_name */
	assert_string_equal(zdmc_ident_quote(arena, "int"), "\"int\"");
	assert_string_equal(zdmc_ident_quote(arena, "between"), "\"between\"");
	/* type_func_name */
	assert_string_equal(zdmc_ident_quote(arena, "left"), "\"left\"");
	assert_string_equal(zdmc_ident_quote(arena, "authorization"),
	                    "\"authorization\"");
	/* the last of the list, to catch an unsorted table */
	assert_string_equal(zdmc_ident_quote(arena, "xmltable"),
	                    "\"xmltable\"");
	/* unreserved keywords need no quotes */
	assert_string_equal(zdmc_ident_quote(arena, "name"), "name");
	assert_string_equal(zdmc_ident_quote(arena, "data"), "data");
	assert_string_equal(zdmc_ident_quote(arena, "over"), "over");
	/* new in PostgreSQL 16, not a keyword in 15 */
	assert_string_equal(zdmc_ident_quote(arena, "system_user"),
	                    "system_user");
}

static void
test_is_keyword(void **state)
{
	static const char *const yes[] = {
		"all",       "analyse",       "select",   "from",
		"table",     "normalize",     "setof",    "time",
		"timestamp", "xmlattributes", "xmltable", "current_user",
	};
	static const char *const no[] = {
		"name",  "abort", "zone",    "",
		"users", "selec", "selects", "SELECT",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!zdmc_ident_is_keyword(yes[i]))
			fail_msg("%s should be a keyword", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (zdmc_ident_is_keyword(no[i]))
			fail_msg("%s should not be a keyword", no[i]);
}

static void
test_qualified(void **state)
{
	zdmc_arena *arena = *state;

	assert_string_equal(zdmc_ident_qualified(arena, "public", "users"),
	                    "public.users");
	assert_string_equal(zdmc_ident_qualified(arena, "My Schema", "user"),
	                    "\"My Schema\".\"user\"");
	assert_string_equal(zdmc_ident_qualified(arena, NULL, "Users"),
	                    "\"Users\"");
}

static void
test_literal(void **state)
{
	zdmc_arena *arena = *state;

	assert_string_equal(zdmc_ident_literal(arena, "abc"), "'abc'");
	assert_string_equal(zdmc_ident_literal(arena, "it's"), "'it''s'");
	assert_string_equal(zdmc_ident_literal(arena, "''"), "''''''");
	assert_string_equal(zdmc_ident_literal(arena, ""), "''");
	/* standard_conforming_strings: the backslash is an ordinary character */
	assert_string_equal(zdmc_ident_literal(arena, "a\\b"), "'a\\b'");
	assert_string_equal(zdmc_ident_literal(arena, "caf\xc3\xa9"),
	                    "'caf\xc3\xa9'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quote_plain, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_quote_case_and_characters,
	                                        setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote_keywords, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_is_keyword, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_qualified, setup,
	                                        teardown),
		cmocka_unit_test_setup_teardown(test_literal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
