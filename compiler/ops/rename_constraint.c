/*
 * rename_constraint.c -- rename constraint A to B.
 *
 * A name only: both versions see A until contract renames it (ACCESS
 * EXCLUSIVE for an instant; a unique or primary key constraint's index is
 * renamed with it).  Facts: constraint_renames [A -> B]; preflight checks
 * that A exists and B is free (and, when A has an index, free as a
 * relation name in the table's schema).
 */
#include <string.h>

#include "constraint.h"

static const zdmc_rename_constraint *
rename_constraint_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_rename_constraint,
	                        ZDMC_ACTION_RENAME_CONSTRAINT, change->action);
}

static void
rename_constraint_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_rename_constraint *n = rename_constraint_node(change);

	zdmc_check_constraint_name(ck, change, &n->name);
	if (strcmp(n->name.name, n->to.name) == 0)
		zdmc_diag_error(zdmc_check_diag(ck), n->to.offset,
		                "constraint \"%s\" is renamed to itself",
		                n->to.name);
	else
		zdmc_check_constraint_name(ck, change, &n->to);
}

/* "rename constraint users_email_key to users_email_unique" */
static const char *
rename_constraint_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_rename_constraint *n = rename_constraint_node(change);

	return zdmc_arena_printf(arena, "rename constraint %s to %s",
	                         n->name.name, n->to.name);
}

static void
rename_constraint_facts(zdmc_arena *arena, const zdmc_change *change,
                        zdmc_plan_change *out)
{
	const zdmc_rename_constraint *n = rename_constraint_node(change);
	zdmc_plan_rename *r = ZDMC_NEW(arena, zdmc_plan_rename);

	r->name = n->name.name;
	r->to = n->to.name;
	out->constraint_renames = r;
}

static void
rename_constraint_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                           const zdmc_change *change)
{
	const zdmc_rename_constraint *n = rename_constraint_node(change);

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena, "rename constraint %s to %s",
	                          n->name.name, n->to.name),
		zdmc_arena_printf(l->arena,
	                          "ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
	                          t->qname, zdmc_lower_quote(l, n->name.name),
	                          zdmc_lower_quote(l, n->to.name)));
}

const zdmc_op zdmc_op_rename_constraint = {
	.name = "rename_constraint",
	.check = rename_constraint_check,
	.summary = rename_constraint_summary,
	.facts = rename_constraint_facts,
	.lower =
		{
			[ZDMC_SLOT_CONTRACT] = rename_constraint_contract,
		},
};
