/*
 * rename_column.c -- rename column C to D.
 *
 * Catalog only: the new version's view shows C as D from expand on (the
 * driver builds the view from the renames fact), and contract renames the
 * column itself.  No data moves, so it registers nothing with the column
 * replacement.  Its facts: reads [C], renames [C -> D].  It must not look at
 * other changes: a D that another change also names, or that the old shape
 * already has, is check.c's rule over every change's facts.
 */
#include <string.h>

#include "ops.h"

static void
rename_column_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_rename_column *n = ZDMC_ACTION_CAST(
		zdmc_rename_column, ZDMC_ACTION_RENAME_COLUMN, change->action);

	zdmc_change_add_read(ck, change, n->column.name);
	zdmc_change_add_rename(ck, change, n->column.name, n->to.name);
	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_ident_length(ck, &n->to);
	zdmc_check_changed_column(ck, change, &n->column);
	if (strcmp(n->column.name, n->to.name) == 0) {
		zdmc_diag_error(zdmc_check_diag(ck), n->to.offset,
		                "column \"%s\" is renamed to itself",
		                n->to.name);
		return;
	}
	zdmc_check_reserved(ck, &n->to);
	zdmc_check_new_name(ck, change, &n->to);
}

/* "rename email to email_address" */
static const char *
rename_column_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "rename %s to %s",
	                         change->renames[0].column,
	                         change->renames[0].to);
}

/* contract: the column takes its new name (the view that showed it so is
 * gone by now) */
static void
rename_column_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const zdmc_colrename *r = &change->renames[0];

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena, "rename %s to %s", r->column,
	                          r->to),
		zdmc_arena_printf(l->arena,
	                          "ALTER TABLE %s RENAME COLUMN %s TO %s",
	                          t->qname, zdmc_lower_quote(l, r->column),
	                          zdmc_lower_quote(l, r->to)));
}

const zdmc_op zdmc_op_rename_column = {
	.name = "rename_column",
	.check = rename_column_check,
	.summary = rename_column_summary,
	.lower =
		{
			[ZDMC_SLOT_CONTRACT] = rename_column_contract,
		},
};
