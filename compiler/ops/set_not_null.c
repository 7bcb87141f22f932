/*
 * set_not_null.c -- alter column C set not null [using (...)].
 *
 * Without using, C keeps its data and its place: verify counts the rows
 * where C is NULL (and stops, naming some, if there are any), then adds
 * CHECK (C IS NOT NULL) NOT VALID -- from that step on every writer's NULL
 * is refused, which its description says -- and validates it while writes
 * go on; contract sets NOT NULL, which PostgreSQL proves from the validated
 * check without a scan, and drops the check.  Facts: reads [C],
 * not_null_set [C].
 *
 * With using, the new version sees using (coalesce(c, ...)) where C is NULL
 * while the old version may still write NULL: the column replacement
 * (replace.h) with a shadow column of C's own type (created with type
 * NULL: the catalog's, when the plan runs) declared NOT NULL, filled by
 * using, written back to C as it is (the identity reverse, which has no
 * round trip to check).  Facts: reads [C], creates [C NOT NULL, using],
 * replaces [C], reverse [C from C], not_null_set [C].
 *
 * Preflight refuses a C that is already NOT NULL.  This file must not look
 * at other changes.
 */
#include <string.h>

#include "ident.h"
#include "ops.h"
#include "replace.h"

static void
set_not_null_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_alter_not_null *n = ZDMC_ACTION_CAST(
		zdmc_alter_not_null, ZDMC_ACTION_SET_NOT_NULL, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	const char *c = n->column.name;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, c);
	if (n->reverse.kind == ZDMC_REVERSE_USING)
		zdmc_diag_error(
			diag, n->reverse.offset,
			"set not null on column \"%s\" takes no reverse using: the old version reads the new version's values as they are; using (...) gives the NULLs a value",
			c);
	else if (n->reverse.kind == ZDMC_REVERSE_IRREVERSIBLE)
		zdmc_diag_error(
			diag, n->reverse.offset,
			"set not null on column \"%s\" takes no irreversible: it keeps the old version's column as it is until contract",
			c);
	if (n->using.text == NULL) {
		/* the check zdm_nn_<C> */
		if (strlen("zdm_nn_") + strlen(c) > ZDMC_MAX_IDENT_BYTES)
			zdmc_diag_error(
				diag, n->column.offset,
				"column name \"%s\" is too long: zdm names its check \"zdm_nn_%s\", which must fit in %d bytes",
				c, c, ZDMC_MAX_IDENT_BYTES);
	} else {
		zdmc_expr identity;
		zdmc_newcol *col;

		zdmc_check_added_column(ck, &n->column);
		zdmc_check_new_name(ck, change, &n->column);
		col = zdmc_change_add_create(ck, change, c, NULL);
		col->not_null = true;
		col->forward = zdmc_check_expr(ck, &n->using, "using");
		zdmc_change_add_replace(ck, change, c);
		/* the old version gets the new value back as it is */
		identity.text = zdmc_ident_quote(arena, c);
		identity.len = strlen(identity.text);
		identity.offset = n->column.offset;
		zdmc_change_add_reverse(
			ck, change, c,
			zdmc_check_expr(ck, &identity, "reverse using"))
			->identity = true;
		zdmc_replace_register(
			ck, change,
			zdmc_arena_printf(arena, "alter column %s set not null",
		                          c));
	}
	zdmc_change_add_not_null_set(ck, change, c);
}

/* "make email NOT NULL" */
static const char *
set_not_null_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "make %s NOT NULL",
	                         change->not_null_set[0]);
}

static const char *
set_not_null_constraint(zdmc_lower_ctx *l, const char *column)
{
	return zdmc_lower_quote(
		l, zdmc_arena_printf(l->arena, "zdm_nn_%s", column));
}

/*
 * verify, without using: the count first, so that NULLs left in the table
 * stop the run with rows named (exit 3) before any writer is refused; then
 * the check, which refuses NULL from every writer at once, and its scan
 * under SHARE UPDATE EXCLUSIVE.  A NULL written between the count and the
 * check makes VALIDATE fail (23514): the run stops there, undoable.
 */
static void
set_not_null_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	const char *column = change->not_null_set[0];
	const char *q = zdmc_lower_quote(l, column);
	const char *con = set_not_null_constraint(l, column);
	const char *where;

	if (change->replace != NULL) {
		zdmc_replace_verify_change(l, t, change);
		return;
	}
	where = zdmc_arena_printf(l->arena, "%s IS NULL", q);
	zdmc_lower_scan_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"no row of %s has %s NULL (give them a value, or write set not null using (...), and run again)",
			t->qname, column),
		where,
		zdmc_arena_printf(l->arena,
	                          "SELECT ctid FROM %s WHERE %s LIMIT 5",
	                          t->qname, where),
		false);
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"require %s NOT NULL as a check NOT VALID (no scan under the lock): from here on, writes of NULL to %s fail, from either version",
			column, column),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
			t->qname, con, q),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
	                          t->qname, con));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"validate %s (scans the table without blocking writes)",
			con),
		zdmc_arena_printf(l->arena,
	                          "ALTER TABLE %s VALIDATE CONSTRAINT %s",
	                          t->qname, con),
		NULL);
	where = zdmc_arena_printf(
		l->arena,
		"conrelid = %s::pg_catalog.regclass\n"
		"   AND conname = %s AND NOT convalidated",
		zdmc_ident_literal(l->arena, t->qname),
		zdmc_ident_literal(
			l->arena,
			zdmc_arena_printf(l->arena, "zdm_nn_%s", column)));
	zdmc_lower_check(
		l, t, zdmc_arena_printf(l->arena, "%s is validated", con),
		zdmc_arena_printf(l->arena,
	                          "pg_catalog.pg_constraint\n WHERE %s", where),
		zdmc_arena_printf(
			l->arena,
			"SELECT conname FROM pg_catalog.pg_constraint\n WHERE %s",
			where),
		NULL);
}

static void
set_not_null_drop(zdmc_lower_ctx *l, const zdmc_table *t,
                  const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_drop_replaced(l, t, change);
}

/* contract, without using: NOT NULL proved by the validated check, which
 * then goes */
static void
set_not_null_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                      const zdmc_change *change)
{
	const char *column = change->not_null_set[0];
	const char *con = set_not_null_constraint(l, column);

	if (change->replace != NULL) {
		zdmc_replace_rename_into_place(l, t, change);
		return;
	}
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"set NOT NULL on %s (no scan: the validated check proves it)",
			column),
		zdmc_arena_printf(l->arena,
	                          "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
	                          t->qname, zdmc_lower_quote(l, column)));
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena, "drop the check %s, now redundant",
	                          con),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
	                          t->qname, con));
}

const zdmc_op zdmc_op_set_not_null = {
	.name = "set_not_null",
	.check = set_not_null_check,
	.summary = set_not_null_summary,
	.lower =
		{
			[ZDMC_SLOT_VERIFY] = set_not_null_verify,
			[ZDMC_SLOT_CONTRACT_DROP] = set_not_null_drop,
			[ZDMC_SLOT_CONTRACT] = set_not_null_contract,
		},
};
