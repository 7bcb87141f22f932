/*
 * set_default.c -- alter column C set default EXPR.
 *
 * Catalog only, nothing to backfill: a default is what an INSERT that
 * leaves C out gets.  The new version gets EXPR from expand on, as the
 * default of C in its view (an auto-updatable view's own column default
 * wins over the table's); the table keeps its default, so the old version
 * sees no change, until contract sets EXPR on the table itself.  Its facts:
 * reads [C], defaults [{C, EXPR}].  EXPR is checked as PostgreSQL checks a
 * DEFAULT: it may not read the row (no column references), and sqlexpr.c
 * already refuses subqueries, window functions, aggregates and parameters
 * in it.  One clause per column, as for every op that changes a column.
 */
#include <string.h>

#include "ops.h"

static void
set_default_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_column_default *n = ZDMC_ACTION_CAST(
		zdmc_column_default, ZDMC_ACTION_SET_DEFAULT, change->action);
	zdmc_sqlexpr *value;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_changed_column(ck, change, &n->column);
	zdmc_change_add_read(ck, change, n->column.name);
	value = zdmc_check_expr(ck, &n->value, "default");
	if (value != NULL && value->nrefs > 0) {
		/* PostgreSQL: "cannot use column reference in DEFAULT
		 * expression"; said here at the reference */
		for (size_t i = 0; i < value->nrefs; i++)
			zdmc_diag_error(
				zdmc_check_diag(ck),
				value->src_offset + value->refs[i].offset,
				"a default may not read the row, and \"%.*s\" is a column; PostgreSQL evaluates a default before the row exists",
				(int)value->refs[i].length,
				value->text + value->refs[i].offset);
		return;
	}
	zdmc_change_add_default(ck, change, n->column.name, value);
}

/* "set the default of email to 'x'"; a long or many-line expression is
 * left to the facts */
static const char *
set_default_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_coldefault *d = &change->defaults[0];

	if (strlen(d->value->text) <= 60 && !strchr(d->value->text, '\n'))
		return zdmc_arena_printf(arena, "set the default of %s to %s",
		                         d->column, d->value->text);
	return zdmc_arena_printf(arena, "set a new default of %s", d->column);
}

/* expand, after the view: the new version's inserts get the new default */
static void
set_default_expand_view(zdmc_lower_ctx *l, const zdmc_table *t,
                        const zdmc_change *change)
{
	const zdmc_coldefault *d = &change->defaults[0];
	const char *view = zdmc_lower_view(l, t);
	const char *column = zdmc_lower_quote(l, d->column);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"new-version inserts that leave out %s get its new default (%s keeps the old one until contract)",
			d->column, t->qname),
		zdmc_arena_printf(
			l->arena,
			"ALTER VIEW %s ALTER COLUMN %s SET DEFAULT %s", view,
			column, d->value->text),
		zdmc_arena_printf(l->arena,
	                          "ALTER VIEW %s ALTER COLUMN %s DROP DEFAULT",
	                          view, column));
}

/* contract: the table's own default, for everyone */
static void
set_default_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const zdmc_coldefault *d = &change->defaults[0];

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena, "set the new default of %s",
	                          d->column),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s",
			t->qname, zdmc_lower_quote(l, d->column),
			d->value->text));
}

const zdmc_op zdmc_op_set_default = {
	.name = "set_default",
	.check = set_default_check,
	.summary = set_default_summary,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_VIEW] = set_default_expand_view,
			[ZDMC_SLOT_CONTRACT] = set_default_contract,
		},
};
