/*
 * create_table.c -- create table [S.]T BODY.
 *
 * The table is created at expand, first in its table's transaction (slot
 * EXPAND_CREATE), with its body as written: columns, constraints,
 * identity, generated columns, a partitioning clause, storage options --
 * PostgreSQL's syntax, judged by libpg_query at compile time.  A new table
 * is nobody's yet: the old version never names it, the new version sees it
 * through its view like any other table, and nothing needs to be synced.
 * Other actions on T in the same migration (an index, a column) come after
 * it in the same phases.
 *
 * Rollback drops it, but not the rows written since: while T holds any,
 * the compensation stops the rollback (SQLSTATE 55000, naming the table)
 * unless `zdm rollback --discard-new-rows` set zdm.discard_new_rows for
 * its session.  Facts: table_created (preflight: no relation or type of
 * that name exists).
 */
#include "constraint.h"

#include <strings.h>

#include "ident.h"
#include "sqlexpr.h"

static const zdmc_create_table *
create_table_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_create_table, ZDMC_ACTION_CREATE_TABLE,
	                        change->action);
}

static void
create_table_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_table *t = zdmc_check_table(ck);

	if (strncasecmp(t->name, "zdm", 3) == 0)
		zdmc_diag_error(
			zdmc_check_diag(ck), change->offset,
			"table \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			t->name);
	(void)zdmc_sqlexpr_check_table(zdmc_check_arena(ck),
	                               zdmc_check_diag(ck),
	                               &create_table_node(change)->body);
}

static const char *
create_table_summary(zdmc_arena *arena, const zdmc_change *change)
{
	(void)change;
	return zdmc_arena_strdup(arena, "create the table");
}

static void
create_table_facts(zdmc_arena *arena, const zdmc_change *change,
                   zdmc_plan_change *out)
{
	(void)arena;
	(void)change;
	out->table_created = true;
}

static void
create_table_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create table %s (a new table: no other session can hold a lock on it)",
			t->qname),
		zdmc_arena_printf(l->arena, "CREATE TABLE %s %s", t->qname,
	                          create_table_node(change)->body.text),
		/* the rows written since expand are data the new version
		 * wrote: dropped only when the operator says so */
		zdmc_arena_printf(
			l->arena,
			"DO $zdm$\n"
			"BEGIN\n"
			"    IF EXISTS (SELECT FROM %s)\n"
			"       AND coalesce(current_setting('zdm.discard_new_rows', true), '') <> 'on' THEN\n"
			"        RAISE EXCEPTION 'table %% holds rows written since expand; rollback would drop them', %s\n"
			"            USING ERRCODE = '55000',\n"
			"                  HINT = 'keep them elsewhere first, or run zdm rollback --discard-new-rows to drop them with the table';\n"
			"    END IF;\n"
			"    DROP TABLE %s;\n"
			"END\n"
			"$zdm$",
			t->qname, zdmc_ident_literal(l->arena, t->qname),
			t->qname));
}

const zdmc_op zdmc_op_create_table = {
	.name = "create_table",
	.check = create_table_check,
	.summary = create_table_summary,
	.facts = create_table_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_CREATE] = create_table_expand,
		},
};
