/*
 * test_sqlrisk.c -- unit tests of compiler/sqlrisk.c: the lock each
 * statement takes and how long it holds it.
 *
 * One table of statements, each with what a PostgreSQL reviewer would say:
 * the lock mode, on what, for how long, and the flags that decide whether
 * zdmc explain and zdmc diff call it dangerous.  The statements are the
 * ones zdmc writes plus the hand edits a review must catch.  A second group
 * checks what depends on the order of a plan's statements (a validated NOT
 * NULL check lets SET NOT NULL skip its scan) and DO blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "sqlrisk.h"

typedef struct risk_case {
	const char *sql;
	const char *what;   /* the statement's label */
	const char *target; /* NULL: none */
	zdmc_lock lock;
	zdmc_hold hold;
	unsigned flags;     /* must all be set ... */
	unsigned not_flags; /* ... and none of these */
} risk_case;

#define D ZDMC_RISK_DANGER
static const risk_case cases[] = {
	{"ALTER TABLE public.users ADD COLUMN a text, ADD COLUMN b boolean "
         "NOT NULL DEFAULT true",
         "ALTER TABLE ADD COLUMN a, b", "public.users",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	{"ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()",
         "ALTER TABLE ADD COLUMN c", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_BRIEF, 0, D},
	{"ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid()",
         "ALTER TABLE ADD COLUMN u", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_REWRITE, ZDMC_RISK_REWRITE | D, 0},
	{"ALTER TABLE t ADD COLUMN id bigserial", "ALTER TABLE ADD COLUMN id",
         "t", ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_REWRITE, D, 0},
	{"alter table T drop column X", "ALTER TABLE DROP COLUMN x", "t",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, ZDMC_RISK_DATA_LOSS, D},
	{"ALTER TABLE \"Sales\".\"Order\" RENAME COLUMN a TO b",
         "ALTER TABLE RENAME COLUMN a TO b", "\"Sales\".\"Order\"",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	{"ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
         "ALTER TABLE ADD CONSTRAINT c CHECK NOT VALID", "t",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D | ZDMC_RISK_SCAN},
	{"ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)",
         "ALTER TABLE ADD CONSTRAINT c CHECK", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_SCAN, ZDMC_RISK_SCAN | D, 0},
	{"ALTER TABLE t VALIDATE CONSTRAINT c",
         "ALTER TABLE VALIDATE CONSTRAINT c", "t",
         ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE, ZDMC_HOLD_SCAN, ZDMC_RISK_SCAN, D},
	{"ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p (b)",
         "ALTER TABLE ADD CONSTRAINT f FOREIGN KEY", "t",
         ZDMC_LOCK_SHARE_ROW_EXCLUSIVE, ZDMC_HOLD_SCAN, D, 0},
	{"ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i",
         "ALTER TABLE ADD CONSTRAINT u UNIQUE", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_BRIEF, 0, D},
	{"ALTER TABLE t ALTER COLUMN a TYPE bigint",
         "ALTER TABLE ALTER COLUMN a TYPE", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_REWRITE, ZDMC_RISK_REWRITE | D, 0},
	{"ALTER TABLE t ALTER COLUMN a SET NOT NULL",
         "ALTER TABLE ALTER COLUMN a SET NOT NULL", "t",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_SCAN, D, 0},
	{"ALTER TABLE t ALTER COLUMN a SET DEFAULT 1, ALTER COLUMN b DROP "
         "NOT NULL",
         "ALTER TABLE ALTER COLUMN a SET DEFAULT, ALTER COLUMN b DROP NOT NULL",
         "t", ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	/* one statement, one lock: the scan runs under the strongest */
	{"ALTER TABLE t ADD COLUMN a int, VALIDATE CONSTRAINT c",
         "ALTER TABLE ADD COLUMN a, VALIDATE CONSTRAINT c", "t",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_SCAN, D, 0},
	{"CREATE INDEX i ON public.users (email)", "CREATE INDEX i",
         "public.users", ZDMC_LOCK_SHARE, ZDMC_HOLD_SCAN, D, 0},
	{"CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)",
         "CREATE UNIQUE INDEX CONCURRENTLY i", "t",
         ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE, ZDMC_HOLD_SCAN, ZDMC_RISK_NO_TXN | D,
         0},
	{"CREATE TRIGGER zdm_sync_insert BEFORE INSERT ON public.users FOR "
         "EACH ROW EXECUTE FUNCTION public.f()",
         "CREATE TRIGGER zdm_sync_insert", "public.users",
         ZDMC_LOCK_SHARE_ROW_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	{"DROP TRIGGER zdm_sync_insert ON public.users",
         "DROP TRIGGER zdm_sync_insert", "public.users",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	{"CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS "
         "$$BEGIN RETURN NEW; END$$",
         "CREATE FUNCTION public.f()", NULL, ZDMC_LOCK_NONE, ZDMC_HOLD_NONE, 0,
         D},
	{"DROP FUNCTION public.f()", "DROP FUNCTION public.f()", NULL,
         ZDMC_LOCK_NONE, ZDMC_HOLD_NONE, 0, D},
	{"CREATE SCHEMA s", "CREATE SCHEMA s", NULL, ZDMC_LOCK_NONE,
         ZDMC_HOLD_NONE, 0, D},
	{"DROP SCHEMA s CASCADE", "DROP SCHEMA s CASCADE", NULL, ZDMC_LOCK_NONE,
         ZDMC_HOLD_NONE, ZDMC_RISK_CASCADE, D},
	{"DROP VIEW v.users", "DROP VIEW v.users", "v.users",
         ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF, 0, D},
	{"CREATE VIEW v.u AS SELECT a FROM public.users", "CREATE VIEW v.u",
         "public.users", ZDMC_LOCK_ACCESS_SHARE, ZDMC_HOLD_BRIEF, 0, D},
	{"DROP TABLE t", "DROP TABLE t", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_BRIEF, ZDMC_RISK_DATA_LOSS | D, 0},
	{"UPDATE public.users SET a = 1 WHERE ctid >= $1::pg_catalog.tid",
         "UPDATE", "public.users", ZDMC_LOCK_ROW_EXCLUSIVE, ZDMC_HOLD_ROWS,
         ZDMC_RISK_WRITES_ROWS, D | ZDMC_RISK_ALL_ROWS},
	{"UPDATE t SET a = 1", "UPDATE", "t", ZDMC_LOCK_ROW_EXCLUSIVE,
         ZDMC_HOLD_ROWS, ZDMC_RISK_ALL_ROWS | D, 0},
	{"SELECT count(*) FROM public.users WHERE zdm_sync_pending", "SELECT",
         "public.users", ZDMC_LOCK_ACCESS_SHARE, ZDMC_HOLD_SCAN, ZDMC_RISK_SCAN,
         D},
	{"SELECT count(*) FROM pg_catalog.pg_constraint WHERE NOT convalidated",
         "SELECT", NULL, ZDMC_LOCK_ACCESS_SHARE, ZDMC_HOLD_BRIEF,
         ZDMC_RISK_CATALOG, D},
	{"LOCK TABLE t IN SHARE MODE", "LOCK TABLE", "t", ZDMC_LOCK_SHARE,
         ZDMC_HOLD_TXN, 0, D},
	{"TRUNCATE t", "TRUNCATE", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_BRIEF, ZDMC_RISK_DATA_LOSS | D, 0},
	{"VACUUM FULL t", "VACUUM FULL", "t", ZDMC_LOCK_ACCESS_EXCLUSIVE,
         ZDMC_HOLD_REWRITE, D, 0},
	{"COMMIT", "a transaction command", NULL, ZDMC_LOCK_NONE,
         ZDMC_HOLD_NONE, D, 0},
	{"CREATE EXTENSION pg_trgm", "CREATE EXTENSION", NULL, ZDMC_LOCK_NONE,
         ZDMC_HOLD_UNKNOWN, ZDMC_RISK_UNKNOWN, 0},
};

static void
test_statements(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const risk_case *c = &cases[i];
		zdmc_arena *arena = zdmc_arena_new();
		zdmc_sqlrisk r;
		const zdmc_stmt_risk *s;

		print_message("%s\n", c->sql);
		assert_int_equal(
			zdmc_sqlrisk_classify(zdmc_sqlrisk_ctx_new(arena),
		                              c->sql, &r),
			0);
		assert_int_equal(r.nstmts, 1);
		s = &r.stmts[0];
		assert_string_equal(s->what, c->what);
		if (c->target == NULL)
			assert_null(s->target);
		else
			assert_string_equal(s->target, c->target);
		assert_int_equal(s->lock, c->lock);
		assert_int_equal(s->hold, c->hold);
		assert_int_equal(s->flags & c->flags, c->flags);
		assert_int_equal(s->flags & c->not_flags, 0);
		zdmc_arena_free(arena);
	}
}

/* Classify sql through ctx; its only statement. */
static const zdmc_stmt_risk *
one(zdmc_sqlrisk_ctx *ctx, const char *sql)
{
	static zdmc_sqlrisk r;

	assert_int_equal(zdmc_sqlrisk_classify(ctx, sql, &r), 0);
	assert_int_equal(r.nstmts, 1);
	return &r.stmts[0];
}

/* SET NOT NULL scans unless a validated CHECK (col IS NOT NULL) proves
 * it, followed through renames and undone by drops. */
static void
test_not_null_proof(void **state)
{
	zdmc_arena *arena = zdmc_arena_new();
	zdmc_sqlrisk_ctx *ctx = zdmc_sqlrisk_ctx_new(arena);
	const char *set = "ALTER TABLE public.t ALTER COLUMN a SET NOT NULL";

	(void)state;
	one(ctx, "ALTER TABLE public.t ADD CONSTRAINT zdm_nn_a CHECK "
	         "(zdm_new_a IS NOT NULL) NOT VALID");
	one(ctx, "ALTER TABLE public.t RENAME COLUMN zdm_new_a TO a");
	/* not validated yet */
	assert_int_equal(one(ctx, set)->hold, ZDMC_HOLD_SCAN);
	one(ctx, "ALTER TABLE public.t VALIDATE CONSTRAINT zdm_nn_a");
	assert_int_equal(one(ctx, set)->hold, ZDMC_HOLD_BRIEF);
	/* another table is not proven */
	assert_int_equal(
		one(ctx, "ALTER TABLE public.u ALTER COLUMN a SET NOT NULL")
			->hold,
		ZDMC_HOLD_SCAN);
	one(ctx, "ALTER TABLE public.t DROP CONSTRAINT zdm_nn_a");
	assert_int_equal(one(ctx, set)->hold, ZDMC_HOLD_SCAN);
	zdmc_arena_free(arena);
}

/* A DO block: its statements, conditional ones marked, catalog reads left
 * out, EXECUTE classified from the text it builds. */
static void
test_do_block(void **state)
{
	zdmc_arena *arena = zdmc_arena_new();
	zdmc_sqlrisk r;

	(void)state;
	assert_int_equal(
		zdmc_sqlrisk_classify(
			zdmc_sqlrisk_ctx_new(arena),
			"DO $zdm$\n"
			"DECLARE l text;\n"
			"BEGIN\n"
			"    IF (SELECT attnotnull FROM pg_catalog.pg_attribute\n"
			"         WHERE attname = 'a') THEN\n"
			"        ALTER TABLE public.t ADD CONSTRAINT c CHECK (a IS "
			"NOT NULL) NOT VALID;\n"
			"    END IF;\n"
			"    SELECT string_agg(attname, ', ') INTO l FROM "
			"pg_catalog.pg_attribute;\n"
			"    EXECUTE 'CREATE VIEW s.t AS SELECT ' || l || ' FROM "
			"public.t';\n"
			"    EXECUTE format('CREATE INDEX ON %I (a)', 'x');\n"
			"    EXECUTE l;\n"
			"END\n"
			"$zdm$",
			&r),
		0);
	assert_int_equal(r.nstmts, 4);
	assert_string_equal(r.stmts[0].what,
	                    "ALTER TABLE ADD CONSTRAINT c CHECK NOT VALID");
	assert_true(r.stmts[0].flags & ZDMC_RISK_CONDITIONAL);
	assert_true(r.stmts[0].flags & ZDMC_RISK_IN_DO);
	assert_string_equal(r.stmts[1].what, "CREATE VIEW s.t");
	assert_true(r.stmts[1].flags & ZDMC_RISK_DYNAMIC);
	assert_false(r.stmts[1].flags & ZDMC_RISK_CONDITIONAL);
	assert_string_equal(r.stmts[2].what, "CREATE INDEX");
	assert_string_equal(r.stmts[2].target, "x");
	assert_true(r.stmts[2].flags & ZDMC_RISK_DANGER);
	assert_string_equal(r.stmts[3].what,
	                    "EXECUTE of SQL built at run time");
	assert_true(r.stmts[3].flags & ZDMC_RISK_UNKNOWN);
	zdmc_arena_free(arena);
}

static void
test_parse_error(void **state)
{
	zdmc_arena *arena = zdmc_arena_new();
	zdmc_sqlrisk r;

	(void)state;
	assert_int_equal(zdmc_sqlrisk_classify(zdmc_sqlrisk_ctx_new(arena),
	                                       "ALTER TABLE t ADD COLUMN", &r),
	                 -1);
	assert_non_null(r.error);
	assert_int_equal(r.nstmts, 1);
	assert_true(r.stmts[0].flags & ZDMC_RISK_UNKNOWN);
	zdmc_arena_free(arena);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements),
		cmocka_unit_test(test_not_null_proof),
		cmocka_unit_test(test_do_block),
		cmocka_unit_test(test_parse_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
