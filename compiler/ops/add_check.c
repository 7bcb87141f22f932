/*
 * add_check.c -- add constraint N check (EXPRESSION).
 *
 * Expand adds the constraint NOT VALID: no scan, ACCESS EXCLUSIVE for an
 * instant, and from then on it binds every writer (the old version on the
 * table, the new one through its view), which the step's description says.
 * Verify validates it without blocking writes, counting the rows that
 * break it only when the validation finds some (constraint.h, "validate").
 * Contract has nothing to do; rollback drops it.
 *
 * The expression is checked like a using: parsed by PostgreSQL's parser,
 * one row, no subqueries, aggregates or system columns; it names the
 * table's own columns, none that another action changes (check.h).  Its
 * facts: reads (the columns it names), constraints_created [N].  The form
 * with using (COL = EXPRESSION, ...), rewriting the rows that break it, is
 * refused: not supported yet.
 */
#include <string.h>

#include "constraint.h"

typedef struct add_check_data {
	zdmc_sqlexpr *expr;
} add_check_data;

static void
add_check_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	add_check_data *d = ZDMC_NEW(zdmc_check_arena(ck), add_check_data);

	zdmc_check_constraint_name(ck, change, &n->name);
	if (n->using.text != NULL)
		zdmc_diag_error(
			zdmc_check_diag(ck), n->using_offset,
			"check (...) using (...) is not supported yet: zdm cannot rewrite the rows that break constraint \"%s\"; fix them before the migration (verify names a few if any remain) and leave out using",
			n->name.name);
	d->expr = zdmc_check_expr(ck, &n->expr, "check");
	if (d->expr != NULL) {
		zdmc_check_kept_expr(ck, change, d->expr, "a check constraint");
		for (size_t i = 0; i < d->expr->nrefs; i++) {
			const char *col = d->expr->refs[i].column;
			size_t j;

			for (j = 0; j < change->nreads; j++)
				if (strcmp(change->reads[j], col) == 0)
					break;
			if (j == change->nreads)
				zdmc_change_add_read(ck, change, col);
		}
	}
	change->op_data = d;
}

/* "add check users_email_at" */
static const char *
add_check_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);

	return zdmc_arena_printf(arena, "add check %s", n->name.name);
}

static void
add_check_facts(zdmc_arena *arena, const zdmc_change *change,
                zdmc_plan_change *out)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);

	zdmc_constraint_created(arena, out, n->name.name);
}

/* Each column as the table names it, unqualified: a check constraint sees
 * only its own row. */
static const char *
add_check_column(void *arg, const zdmc_colref *ref)
{
	return zdmc_lower_quote(arg, ref->column);
}

static const char *
add_check_expr(zdmc_lower_ctx *l, const zdmc_change *change)
{
	const add_check_data *d = change->op_data;

	return zdmc_sqlexpr_rewrite(l->arena, d->expr, add_check_column, l);
}

void
zdmc_constraint_check_add(zdmc_lower_ctx *l, const zdmc_table *t,
                          const char *name, const char *expr)
{
	const char *qname = zdmc_lower_quote(l, name);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"add check constraint %s NOT VALID (no scan): from here on every write to %s, old version or new, must satisfy it; the rows already there are checked at verify",
			name, t->qname),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s) NOT VALID",
			t->qname, qname, expr),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
	                          t->qname, qname));
}

void
zdmc_constraint_check_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                               const char *name, const char *expr,
                               const char *shown)
{
	zdmc_constraint_validate(
		l, t, name, "check_violation",
		zdmc_arena_printf(l->arena, "%s WHERE (%s) IS FALSE", t->qname,
	                          expr),
		zdmc_arena_printf(
			l->arena,
			"SELECT %s FROM %s WHERE (%s) IS FALSE LIMIT 5", shown,
			t->qname, expr),
		"rows for which the expression is false");
}

static void
add_check_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                 const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);

	zdmc_constraint_check_add(l, t, n->name.name,
	                          add_check_expr(l, change));
}

static void
add_check_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                 const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	zdmc_buf cols;

	/* the examples show the row's location and what the check read */
	zdmc_buf_init(&cols, l->arena);
	zdmc_buf_puts(&cols, "ctid");
	for (size_t i = 0; i < change->nreads; i++)
		zdmc_buf_printf(&cols, ", %s",
		                zdmc_lower_quote(l, change->reads[i]));
	zdmc_constraint_check_validate(l, t, n->name.name,
	                               add_check_expr(l, change),
	                               zdmc_buf_cstr(&cols));
}

const zdmc_op zdmc_op_add_check = {
	.name = "add_check",
	.check = add_check_check,
	.summary = add_check_summary,
	.facts = add_check_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = add_check_expand,
			[ZDMC_SLOT_VERIFY] = add_check_verify,
		},
};
