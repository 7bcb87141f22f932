/*
 * drop_not_null.c -- alter column C drop not null [reverse using (...)].
 *
 * Without reverse using: expand drops the constraint (catalog only), so both
 * versions may write NULL from expand on -- new-version clients run from
 * expand, and a NOT NULL kept until switch would fail their NULL writes in
 * between -- and old-version readers see those NULLs.  Nothing is left for
 * contract.  The undo must put NOT NULL back without a scan under ACCESS
 * EXCLUSIVE: CHECK NOT VALID, VALIDATE, SET NOT NULL (proved by the check),
 * each committed on its own, which no transaction block allows; so the step
 * is an autocommit step whose compensation is one DO block that commits
 * between them, picks up where a failed run of it stopped, and refuses,
 * naming the count, while rows hold NULL.  Facts: reads [C],
 * not_null_dropped [C].
 *
 * With reverse using: C stays NOT NULL for the old version, which never
 * sees a NULL; the new version gets a nullable shadow column of C's type
 * (the column replacement, replace.h), filled with C as it is, and each of
 * its writes sets C to reverse using (coalesce(c, '')).  Facts: reads [C],
 * creates [C, using C], replaces [C], reverse [C], not_null_dropped [C] --
 * which also tells the cdc rules that an INSERT leaving C NULL is the new
 * version's.
 *
 * Preflight refuses a C that is nullable already, in the primary key or in
 * the replica identity's index.  This file must not look at other changes.
 */
#include <string.h>

#include "ident.h"
#include "ops.h"
#include "replace.h"

static void
drop_not_null_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_alter_not_null *n = ZDMC_ACTION_CAST(
		zdmc_alter_not_null, ZDMC_ACTION_DROP_NOT_NULL, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	const char *c = n->column.name;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, c);
	if (n->using.text != NULL)
		zdmc_diag_error(
			diag, n->using_offset,
			"drop not null on column \"%s\" takes no using: the new version starts from the old values as they are; reverse using (...) gives the old version a value where the new one writes NULL",
			c);
	if (n->reverse.kind == ZDMC_REVERSE_IRREVERSIBLE)
		zdmc_diag_error(
			diag, n->reverse.offset,
			"drop not null on column \"%s\" takes no irreversible: without reverse using, the old version reads the NULLs the new one writes, and a rollback puts NOT NULL back only if none was written",
			c);
	if (n->reverse.kind == ZDMC_REVERSE_USING) {
		zdmc_expr identity;
		zdmc_newcol *col;

		zdmc_check_added_column(ck, &n->column);
		zdmc_check_new_name(ck, change, &n->column);
		col = zdmc_change_add_create(ck, change, c, NULL);
		/* the new version starts from C as it is */
		identity.text = zdmc_ident_quote(arena, c);
		identity.len = strlen(identity.text);
		identity.offset = n->column.offset;
		col->forward = zdmc_check_expr(ck, &identity, "using");
		col->forward_implied = true;
		zdmc_change_add_replace(ck, change, c);
		zdmc_change_add_reverse(
			ck, change, c,
			zdmc_check_expr(ck, &n->reverse.expr, "reverse using"));
		zdmc_replace_register(
			ck, change,
			zdmc_arena_printf(arena,
		                          "alter column %s drop not null", c));
	} else if (strlen("zdm_nn_") + strlen(c) > ZDMC_MAX_IDENT_BYTES) {
		/* the undo's check zdm_nn_<C> */
		zdmc_diag_error(
			diag, n->column.offset,
			"column name \"%s\" is too long: to put NOT NULL back, a rollback adds the check \"zdm_nn_%s\", which must fit in %d bytes",
			c, c, ZDMC_MAX_IDENT_BYTES);
	}
	zdmc_change_add_not_null_dropped(ck, change, c);
}

/* "let phone be NULL" */
static const char *
drop_not_null_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "let %s be NULL",
	                         change->not_null_dropped[0]);
}

/*
 * The undo of DROP NOT NULL.  Each ALTER runs under the session's
 * lock_timeout (the runtime sets it before an autocommit step); a lock
 * timeout retries the whole block, which skips what is already done.
 */
static const char *
drop_not_null_undo(zdmc_lower_ctx *l, const zdmc_table *t, const char *column)
{
	const char *q = zdmc_lower_quote(l, column);
	const char *con_name = zdmc_arena_printf(l->arena, "zdm_nn_%s", column);
	const char *con = zdmc_lower_quote(l, con_name);
	const char *lit = zdmc_ident_literal(l->arena, t->qname);

	return zdmc_arena_printf(
		l->arena,
		"DO $zdm$\n"
		"DECLARE\n"
		"    missing bigint;\n"
		"BEGIN\n"
		"    IF (SELECT a.attnotnull FROM pg_catalog.pg_attribute AS a\n"
		"         WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = %s) THEN\n"
		"        RETURN; -- put back by an earlier run of this block\n"
		"    END IF;\n"
		"    SELECT count(*) INTO missing FROM %s WHERE %s IS NULL;\n"
		"    IF missing > 0 THEN\n"
		"        RAISE EXCEPTION USING\n"
		"            MESSAGE = pg_catalog.format('cannot restore NOT NULL on %%s of %%s: %%s rows are NULL there', %s, %s, missing),\n"
		"            DETAIL = 'expand dropped NOT NULL, and NULL has been written since',\n"
		"            HINT = %s;\n"
		"    END IF;\n"
		"    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint\n"
		"                    WHERE conrelid = %s::pg_catalog.regclass AND conname = %s) THEN\n"
		"        ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;\n"
		"    END IF;\n"
		"    COMMIT;\n"
		"    -- the scan, under SHARE UPDATE EXCLUSIVE: reads and writes go on\n"
		"    ALTER TABLE %s VALIDATE CONSTRAINT %s;\n"
		"    COMMIT;\n"
		"    -- no scan: the validated check proves it\n"
		"    ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n"
		"    ALTER TABLE %s DROP CONSTRAINT %s;\n"
		"END\n"
		"$zdm$",
		lit, zdmc_ident_literal(l->arena, column), t->qname, q,
		zdmc_ident_literal(l->arena, column), lit,
		zdmc_ident_literal(
			l->arena,
			zdmc_arena_printf(
				l->arena,
				"give those rows a value (UPDATE %s SET %s = ... WHERE %s IS NULL) and roll back again, or go forward",
				t->qname, q, q)),
		lit, zdmc_ident_literal(l->arena, con_name), t->qname, con, q,
		t->qname, con, t->qname, q, t->qname, con);
}

/* expand, after the table's transaction: the constraint goes */
static void
drop_not_null_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const char *column = change->not_null_dropped[0];

	if (change->replace != NULL)
		return;
	zdmc_lower_autocommit_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop NOT NULL from %s (catalog only): from here on both versions may write NULL there; its undo puts NOT NULL back without a long lock, and refuses while rows hold NULL",
			column),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL",
			t->qname, zdmc_lower_quote(l, column)),
		drop_not_null_undo(l, t, column), NULL);
}

static void
drop_not_null_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_verify_change(l, t, change);
}

static void
drop_not_null_drop(zdmc_lower_ctx *l, const zdmc_table *t,
                   const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_drop_replaced(l, t, change);
}

static void
drop_not_null_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_rename_into_place(l, t, change);
}

const zdmc_op zdmc_op_drop_not_null = {
	.name = "drop_not_null",
	.check = drop_not_null_check,
	.summary = drop_not_null_summary,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_AFTER] = drop_not_null_expand,
			[ZDMC_SLOT_VERIFY] = drop_not_null_verify,
			[ZDMC_SLOT_CONTRACT_DROP] = drop_not_null_drop,
			[ZDMC_SLOT_CONTRACT] = drop_not_null_contract,
		},
};
