/*
 * drop_column.c -- drop column C [reverse using (...)].
 *
 * The new version stops seeing C at expand (the driver's view leaves out
 * every column a change drops); the old version reads and writes it until
 * contract drops it, the point of no return.  Nothing is copied, so there is
 * no backfill and nothing to verify.  Rows the new version inserts cannot
 * name C: they get its default, or, with reverse using, the value computed
 * from their new shape, which the column replacement (replace.h) writes as
 * it writes any old column back -- a change that creates no column, so the
 * replacement adds no backfill.  Its facts: reads [C], drops [C], reverse
 * [C] when written.
 *
 * drops, unlike replaces, tells preflight that what depends on C alone (an
 * index, a CHECK, a foreign key from C) goes with it, as the user means, and
 * that C NOT NULL without a default needs reverse using.  Dependents that
 * also read other columns, and those of other tables, are refused there:
 * the compiler never sees the catalog.  This file must not look at other
 * changes.
 */
#include "ops.h"
#include "replace.h"

static void
drop_column_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_drop_column *n = ZDMC_ACTION_CAST(
		zdmc_drop_column, ZDMC_ACTION_DROP_COLUMN, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, n->column.name);
	zdmc_change_add_drop(ck, change, n->column.name);
	switch (n->reverse.kind) {
	case ZDMC_REVERSE_USING:
		zdmc_change_add_reverse(
			ck, change, n->column.name,
			zdmc_check_expr(ck, &n->reverse.expr, "reverse using"));
		zdmc_replace_register(ck, change,
		                      zdmc_arena_printf(arena, "drop column %s",
		                                        n->column.name));
		break;
	case ZDMC_REVERSE_IRREVERSIBLE:
		zdmc_diag_error(
			zdmc_check_diag(ck), n->reverse.offset,
			"drop column \"%s\" takes no irreversible: without reverse using, rows the new version inserts get the column's default (or NULL), and a rollback loses nothing",
			n->column.name);
		break;
	case ZDMC_REVERSE_MISSING:
		break;
	}
}

/* "drop legacy_code" */
static const char *
drop_column_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "drop %s", change->drops[0]);
}

/* contract: the column goes, with the indexes, constraints and statistics
 * on it alone (preflight refused any that read another column) */
static void
drop_column_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const char *column = change->drops[0];

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop column %s, with what depends on it alone (rollback is impossible from here)",
			column),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP COLUMN %s",
	                          t->qname, zdmc_lower_quote(l, column)));
}

const zdmc_op zdmc_op_drop_column = {
	.name = "drop_column",
	.check = drop_column_check,
	.summary = drop_column_summary,
	.lower =
		{
			[ZDMC_SLOT_CONTRACT_DROP] = drop_column_contract,
		},
};
