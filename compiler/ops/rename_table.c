/*
 * rename_table.c -- alter table T rename to N.
 *
 * Catalog only.  The new version knows the table as N from expand on: the
 * driver names the table's view in the version schema after the
 * table_renamed_to fact, so the view carries the table's other changes
 * too.  The old version keeps T until contract, whose last statement for
 * the table renames it (every statement before names it T).  Nothing else
 * is renamed: its indexes, constraints, sequences and triggers keep their
 * names, and so do zdm's own (zdm_sync_T, the plan's tables and cdc
 * sections), which are gone by contract or name the table until then.
 * Its fact: table_renamed_to N; the preflight checks that N is free in T's
 * schema.  Whether N clashes with another table of the migration is
 * check.c's rule over every table.
 */
#include <string.h>
#include <strings.h>

#include "ops.h"

static void
rename_table_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_rename_table *n = ZDMC_ACTION_CAST(
		zdmc_rename_table, ZDMC_ACTION_RENAME_TABLE, change->action);
	const zdmc_table *t = zdmc_check_table(ck);

	zdmc_check_ident_length(ck, &n->to);
	if (strcmp(n->to.name, t->name) == 0) {
		zdmc_diag_error(zdmc_check_diag(ck), n->to.offset,
		                "table %s is renamed to itself", t->qname);
		return;
	}
	if (strncasecmp(n->to.name, "zdm", 3) == 0) {
		zdmc_diag_error(
			zdmc_check_diag(ck), n->to.offset,
			"table \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			n->to.name);
		return;
	}
	zdmc_change_set_table_rename(ck, change, &n->to);
}

/* "rename the table to accounts" */
static const char *
rename_table_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "rename the table to %s",
	                         change->table_renamed_to);
}

/* contract, last of the table's transaction */
static void
rename_table_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                      const zdmc_change *change)
{
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"rename table %s to %s (its indexes, constraints, sequences and triggers keep their names)",
			t->qname, change->table_renamed_to),
		zdmc_arena_printf(
			l->arena, "ALTER TABLE %s RENAME TO %s", t->qname,
			zdmc_lower_quote(l, change->table_renamed_to)));
}

const zdmc_op zdmc_op_rename_table = {
	.name = "rename_table",
	.check = rename_table_check,
	.summary = rename_table_summary,
	.lower =
		{
			[ZDMC_SLOT_CONTRACT_LAST] = rename_table_contract,
		},
};
