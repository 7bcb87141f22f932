/*
 * add_unique.c -- add constraint N unique (COLUMN, ...).
 *
 * Nothing until verify: there the unique index N is built by CREATE
 * UNIQUE INDEX CONCURRENTLY, an autocommit step that blocks no write; from
 * that step on every writer must keep the key unique, as its description
 * says.  A build that fails leaves an INVALID index, which the runtime
 * drops; then, and only then, the step's diagnose counts the key values
 * that more than one row holds, and if there are any the run stops (exit
 * 3) with their count and a few of them; a build that failed for another
 * reason stops with PostgreSQL's error.
 * Contract makes the index the constraint (ADD CONSTRAINT ... UNIQUE USING
 * INDEX: catalog only); rollback drops the index concurrently.
 * (constraint.h, "unique".)  Facts: reads (the key), constraints_created
 * [N], indexes_created [schema.N].
 */
#include "constraint.h"

static const zdmc_add_key *
add_unique_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_add_key, ZDMC_ACTION_ADD_UNIQUE,
	                        change->action);
}

static void
add_unique_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	zdmc_constraint_check_key(ck, change, add_unique_node(change));
}

/* "add unique users_email_key (email)" */
static const char *
add_unique_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_add_key *n = add_unique_node(change);
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "add unique %s (", n->name.name);
	for (size_t i = 0; i < n->columns.n; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "",
		                n->columns.items[i].name);
	zdmc_buf_puts(&b, ")");
	return zdmc_buf_cstr(&b);
}

static void
add_unique_facts(zdmc_arena *arena, const zdmc_change *change,
                 zdmc_plan_change *out)
{
	zdmc_constraint_key_facts(arena, change, add_unique_node(change), out);
}

static void
add_unique_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                  const zdmc_change *change)
{
	const zdmc_add_key *n = add_unique_node(change);

	zdmc_constraint_unique_index(l, t, n->name.name, &n->columns);
}

void
zdmc_constraint_unique_attach(zdmc_lower_ctx *l, const zdmc_table *t,
                              const char *name)
{
	const char *qname = zdmc_lower_quote(l, name);

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"make index %s the unique constraint %s (catalog only: the index already holds the key)",
			name, name),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s",
			t->qname, qname, qname));
}

static void
add_unique_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	zdmc_constraint_unique_attach(l, t, add_unique_node(change)->name.name);
}

const zdmc_op zdmc_op_add_unique = {
	.name = "add_unique",
	.check = add_unique_check,
	.summary = add_unique_summary,
	.facts = add_unique_facts,
	.lower =
		{
			[ZDMC_SLOT_VERIFY] = add_unique_verify,
			[ZDMC_SLOT_CONTRACT] = add_unique_contract,
		},
};
