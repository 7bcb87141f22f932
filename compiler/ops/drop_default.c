/*
 * drop_default.c -- alter column C drop default.
 *
 * Catalog only, as set_default.c, with one catch in expand.  An INSERT
 * through an auto-updatable view that leaves out a column with no default
 * of the view's own gets the table's default, and PostgreSQL stores SET
 * DEFAULT NULL as no default at all (a bare NULL constant is dropped, even
 * cast to the column's type): so the view gets a NULL the server keeps,
 * CASE WHEN false THEN NULL::<type> END, the type read from the catalog by
 * a DO block (the compiler never sees the table).  Unless the type is a
 * domain with a default of its own: that is what C falls back to once the
 * table's default is dropped, and what a view column without a default
 * gives, so the view keeps none.  Contract drops the table's default.  Its
 * facts: reads [C], defaults [{C, null}].
 */
#include "ident.h"
#include "ops.h"

static void
drop_default_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_column_default *n = ZDMC_ACTION_CAST(
		zdmc_column_default, ZDMC_ACTION_DROP_DEFAULT, change->action);

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, n->column.name);
	zdmc_change_add_default(ck, change, n->column.name, NULL);
}

/* "drop the default of tier" */
static const char *
drop_default_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "drop the default of %s",
	                         change->defaults[0].column);
}

/* expand, after the view: the new version's inserts get no default */
static void
drop_default_expand_view(zdmc_lower_ctx *l, const zdmc_table *t,
                         const zdmc_change *change)
{
	const zdmc_coldefault *d = &change->defaults[0];
	const char *view = zdmc_lower_view(l, t);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"new-version inserts that leave out %s get no default (%s keeps its own until contract)",
			d->column, t->qname),
		zdmc_arena_printf(
			l->arena,
			"DO $zdm$\n"
			"DECLARE\n"
			"    no_default text;\n"
			"BEGIN\n"
			"    -- a view column without a default takes the table's, and\n"
			"    -- PostgreSQL stores SET DEFAULT NULL as no default at all: the\n"
			"    -- view gets a NULL of the column's type that it keeps; unless the\n"
			"    -- type is a domain with a default, which is what the column falls\n"
			"    -- back to once the table's default is dropped (then none)\n"
			"    SELECT CASE WHEN t.typdefaultbin IS NULL\n"
			"                THEN pg_catalog.format('CASE WHEN false THEN NULL::%%s END',\n"
			"                                       pg_catalog.format_type(a.atttypid, a.atttypmod))\n"
			"           END\n"
			"      INTO no_default\n"
			"      FROM pg_catalog.pg_attribute AS a\n"
			"      JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid\n"
			"     WHERE a.attrelid = %s::pg_catalog.regclass\n"
			"       AND a.attname = %s;\n"
			"    IF no_default IS NOT NULL THEN\n"
			"        EXECUTE pg_catalog.format('ALTER VIEW %%s ALTER COLUMN %%s SET DEFAULT %%s',\n"
			"                                  %s, %s, no_default);\n"
			"    END IF;\n"
			"END\n"
			"$zdm$",
			zdmc_ident_literal(l->arena, view),
			zdmc_ident_literal(l->arena, d->column),
			zdmc_ident_literal(l->arena, view),
			zdmc_ident_literal(l->arena,
	                                   zdmc_lower_quote(l, d->column))),
		zdmc_arena_printf(l->arena,
	                          "ALTER VIEW %s ALTER COLUMN %s DROP DEFAULT",
	                          view, zdmc_lower_quote(l, d->column)));
}

/* contract: the table's default goes, for everyone */
static void
drop_default_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                      const zdmc_change *change)
{
	const zdmc_coldefault *d = &change->defaults[0];

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena, "drop the default of %s",
	                          d->column),
		zdmc_arena_printf(l->arena,
	                          "ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT",
	                          t->qname, zdmc_lower_quote(l, d->column)));
}

const zdmc_op zdmc_op_drop_default = {
	.name = "drop_default",
	.check = drop_default_check,
	.summary = drop_default_summary,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_VIEW] = drop_default_expand_view,
			[ZDMC_SLOT_CONTRACT] = drop_default_contract,
		},
};
