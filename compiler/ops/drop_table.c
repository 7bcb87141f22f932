/*
 * drop_table.c -- drop table [S.]T.
 *
 * The old version keeps the table until contract; the new version loses
 * it at expand: lower.c gives it, instead of the table's view, a view of
 * no column and no row under the table's name in the version schema, so
 * that the name no longer reaches the table through the search_path (a
 * read finds nothing, a write fails).  Contract drops the table, with its
 * rows, indexes and constraints: a point of no return.  Preflight refuses
 * a table that something outside it depends on (another table's foreign
 * key, a view), which DROP TABLE would refuse at contract.  The table's
 * only change (check.c's rule).  Facts: table_dropped.
 */
#include "constraint.h"

static void
drop_table_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	zdmc_change_set_table_drop(ck, change);
}

static const char *
drop_table_summary(zdmc_arena *arena, const zdmc_change *change)
{
	(void)change;
	return zdmc_arena_strdup(arena, "drop the table");
}

/* contract, after the version schema's view of it is gone */
static void
drop_table_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	(void)change;
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop table %s, with its rows (rollback is impossible from here)",
			t->qname),
		zdmc_arena_printf(l->arena, "DROP TABLE %s", t->qname));
}

const zdmc_op zdmc_op_drop_table = {
	.name = "drop_table",
	.check = drop_table_check,
	.summary = drop_table_summary,
	.lower =
		{
			[ZDMC_SLOT_CONTRACT_DROP] = drop_table_contract,
		},
};
