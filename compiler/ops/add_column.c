/*
 * add_column.c -- add [column] C T [not null] [default EXPR] [using (...)].
 *
 * The new version sees C through its view from expand on; the old version
 * never does (the column is zdm_new_C until contract renames it).  What
 * the rows that exist get decides how:
 *
 *   catalog only -- no using, and no default or a constant one (a literal
 *     or a cast of one, judged from the parse tree: sqlexpr.h).  Expand
 *     adds zdm_new_C with its DEFAULT and NOT NULL, which PostgreSQL keeps
 *     in the catalog without a rewrite or a scan; contract renames it.
 *     Nothing to sync or backfill: both versions' inserts get the default.
 *   backfilled -- using, or a computed default (now(), nextval(...)), or
 *     not null without a constant default.  The column replacement
 *     (replace.h) with nothing replaced: zdm_new_C nullable and without a
 *     default, filled by the backfill and the sync from using (or the
 *     default) for the rows that exist and every row the old version
 *     writes; new-version inserts get the default from the view
 *     (ALTER VIEW ... SET DEFAULT, slot EXPAND_VIEW); NOT NULL through a
 *     check validated at verify; the table's DEFAULT set at contract.
 *
 * Its facts: reads [what using reads], creates [C, with using (or the
 * default) as its value], defaults [C]; nothing replaced, renamed or
 * reversed.  Inline constraints (check, unique, references) are refused
 * until add constraint can take them.  This file must not look at other
 * changes.
 */
#include <string.h>

#include "ident.h"
#include "ops.h"
#include "replace.h"

/* The clauses of one add column, each at most once. */
typedef struct add_clauses {
	const zdmc_colclause *not_null, *default_, *using;
} add_clauses;

static const char *
add_clause_name(zdmc_colclause_kind kind)
{
	switch (kind) {
	case ZDMC_COLCLAUSE_NOT_NULL:
		return "not null";
	case ZDMC_COLCLAUSE_DEFAULT:
		return "default";
	case ZDMC_COLCLAUSE_USING:
		return "using";
	case ZDMC_COLCLAUSE_CHECK:
		return "check";
	case ZDMC_COLCLAUSE_UNIQUE:
		return "unique";
	case ZDMC_COLCLAUSE_REFERENCES:
		return "references";
	}
	return "?";
}

/* Sort the clauses out: repeats and what is not supported are reported. */
static void
add_column_clauses(zdmc_check_ctx *ck, const zdmc_add_column *n,
                   add_clauses *out)
{
	zdmc_diag *diag = zdmc_check_diag(ck);
	const zdmc_colclause *cl;

	memset(out, 0, sizeof(*out));
	for (cl = n->clauses; cl != NULL; cl = cl->next) {
		const zdmc_colclause **slot = NULL;

		switch (cl->kind) {
		case ZDMC_COLCLAUSE_NOT_NULL:
			slot = &out->not_null;
			break;
		case ZDMC_COLCLAUSE_DEFAULT:
			slot = &out->default_;
			break;
		case ZDMC_COLCLAUSE_USING:
			slot = &out->using;
			break;
		case ZDMC_COLCLAUSE_CHECK:
		case ZDMC_COLCLAUSE_UNIQUE:
		case ZDMC_COLCLAUSE_REFERENCES:
			zdmc_diag_error(
				diag, cl->offset,
				"%s on a new column is not supported yet: add column \"%s\" without it, and add the constraint in a later migration",
				add_clause_name(cl->kind), n->column.name);
			continue;
		}
		if (*slot != NULL) {
			zdmc_diag_error(diag, cl->offset,
			                "%s is given twice for column \"%s\"",
			                add_clause_name(cl->kind),
			                n->column.name);
			zdmc_diag_note(diag, (*slot)->offset,
			               "first given here");
			continue;
		}
		*slot = cl;
	}
}

static void
add_column_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_add_column *n = ZDMC_ACTION_CAST(
		zdmc_add_column, ZDMC_ACTION_ADD_COLUMN, change->action);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	zdmc_sqlexpr *def = NULL, *using = NULL;
	zdmc_newcol *col;
	add_clauses cl;
	bool backfill;
	size_t i;

	zdmc_check_ident_length(ck, &n->column);
	zdmc_check_added_column(ck, &n->column);
	zdmc_check_new_name(ck, change, &n->column);
	zdmc_check_type(ck, &n->type);
	add_column_clauses(ck, n, &cl);
	if (cl.default_ != NULL) {
		def = zdmc_check_expr(ck, &cl.default_->expr, "default");
		/* as PostgreSQL: a default is computed without the row */
		if (def != NULL && def->nrefs > 0) {
			zdmc_diag_error(
				diag, def->src_offset + def->refs[0].offset,
				"a default may not refer to a column (\"%s\"); to compute the existing rows from other columns, give using (...)",
				def->refs[0].column);
			def = NULL;
		}
	}
	if (cl.using != NULL)
		using = zdmc_check_expr(ck, &cl.using->expr, "using");
	if (cl.not_null != NULL && cl.using == NULL &&
	    (cl.default_ == NULL ||
	     (def != NULL && def->kind == ZDMC_SQLEXPR_NULL)))
		zdmc_diag_error(
			diag, cl.not_null->offset,
			cl.default_ == NULL
				? "column \"%s\" is not null but has neither a default nor using (...): the rows that exist would have no value"
				: "column \"%s\" is not null but its default is NULL: the rows that exist would have no value; give a default or using (...)",
			n->column.name);

	col = zdmc_change_add_create(ck, change, n->column.name, n->type.text);
	col->not_null = cl.not_null != NULL;
	col->default_expr = def;
	col->forward = using != NULL ? using : def;
	for (i = 0; using != NULL && i < using->nrefs; i++) {
		size_t k;

		for (k = 0; k < change->nreads; k++)
			if (strcmp(change->reads[k], using->refs[i].column) ==
			    0)
				break;
		if (k == change->nreads)
			zdmc_change_add_read(ck, change, using->refs[i].column);
	}
	/* a value per row: using, or a default the catalog cannot keep */
	backfill = cl.using != NULL ||
	           (def != NULL && def->kind == ZDMC_SQLEXPR_COMPUTED);
	if (backfill)
		zdmc_replace_register(ck, change,
		                      zdmc_arena_printf(arena, "add column %s",
		                                        n->column.name));
}

/* "add created_at timestamptz not null default now()" */
static const char *
add_column_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];
	const zdmc_sqlexpr *using =
		col->forward != col->default_expr ? col->forward : NULL;
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "add %s %s", col->name, col->type);
	if (col->not_null)
		zdmc_buf_puts(&b, " not null");
	if (col->default_expr != NULL)
		zdmc_buf_printf(&b, " default %s", col->default_expr->text);
	if (using != NULL)
		zdmc_buf_printf(&b, " using (%s)", using->text);
	return zdmc_buf_cstr(&b);
}

/* defaults: [C], when it has one */
static void
add_column_facts(zdmc_arena *arena, const zdmc_change *change,
                 zdmc_plan_change *out)
{
	const zdmc_newcol *col = &change->cols[0];
	zdmc_plan_default *d;

	if (col->default_expr == NULL)
		return;
	d = ZDMC_NEW(arena, zdmc_plan_default);
	d->column = col->name;
	d->value = col->default_expr->text;
	out->defaults = d;
}

/* expand, after the view: while the table's column has no default (the
 * backfill and the sync tell rows the new version wrote by a value being
 * there), new-version inserts get it from the view */
static void
add_column_view_default(zdmc_lower_ctx *l, const zdmc_table *t,
                        const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];
	const char *view = zdmc_lower_view(l, t);
	const char *c = zdmc_lower_quote(l, col->name);

	if (change->replace == NULL || col->default_expr == NULL)
		return;
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"new-version inserts through %s get %s's default, %s (the table's column gets it at contract)",
			view, col->name,
			zdmc_lower_comment_text(l, col->default_expr->text)),
		zdmc_arena_printf(
			l->arena,
			"ALTER VIEW %s ALTER COLUMN %s SET DEFAULT %s", view, c,
			col->default_expr->text),
		zdmc_arena_printf(l->arena,
	                          "ALTER VIEW %s ALTER COLUMN %s DROP DEFAULT",
	                          view, c));
}

/* verify: a NULL left in a not null column fails a check that names the
 * rows, before the NOT NULL constraint (replace.h) would fail on it */
static void
add_column_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                  const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];
	const char *where;

	if (change->replace == NULL || !col->not_null)
		return;
	where = zdmc_arena_printf(l->arena, "%s IS NULL",
	                          zdmc_lower_quote(l, col->physical));
	zdmc_lower_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"no row of %s has %s NULL (it is to be NOT NULL: using, or the default, gave every row a value, and no new-version write set NULL)",
			t->qname, col->name),
		zdmc_arena_printf(l->arena, "%s WHERE %s", t->qname, where),
		zdmc_arena_printf(l->arena,
	                          "SELECT ctid FROM %s WHERE %s LIMIT 5",
	                          t->qname, where),
		where);
}

/* contract: the column under its name, then (backfilled) its default */
static void
add_column_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];

	zdmc_replace_rename_into_place(l, t, change);
	if (change->replace == NULL || col->default_expr == NULL)
		return;
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena, "set the default of %s to %s", col->name,
			zdmc_lower_comment_text(l, col->default_expr->text)),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s",
			t->qname, zdmc_lower_quote(l, col->name),
			col->default_expr->text));
}

const zdmc_op zdmc_op_add_column = {
	.name = "add_column",
	.check = add_column_check,
	.summary = add_column_summary,
	.facts = add_column_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_VIEW] = add_column_view_default,
			[ZDMC_SLOT_VERIFY] = add_column_verify,
			[ZDMC_SLOT_CONTRACT] = add_column_contract,
		},
};
