/*
 * add_column.c -- add [column] C T [not null] [default EXPR] [check (...)]
 * [unique] [references [S.]T [(R)] [on delete A] [on update A]] [using (...)].
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
 * Inline constraints are add constraint's, named as PostgreSQL names a
 * column's (T_C_check, T_C_key, T_C_fkey), on zdm_new_C, all at verify:
 * after the backfill, so that the backfill's and the sync's writes are not
 * checked row by row (a check or foreign key would otherwise fail a batch,
 * or look up every row's reference one at a time), and the rows that break
 * one are counted with examples.  check and references are added NOT VALID
 * and validated (add_check.c, add_foreign_key.c); unique is a concurrent
 * index build that contract makes the constraint (add_unique.c), renaming
 * the index's column, which keeps its zdm_new_ name otherwise.  From its
 * step on, each binds every writer; before it, nothing does.  The SQL is
 * theirs (constraint.h): this file only says on which column.
 *
 * Its facts: reads [what using reads, and the other columns a check
 * reads], creates [C, with using (or the default) as its value], defaults
 * [C], and for inline constraints constraints_created, indexes_created
 * (unique) and references; nothing replaced, renamed or reversed.  This
 * file must not look at other changes.
 */
#include <string.h>

#include "constraint.h"
#include "ident.h"
#include "ops.h"
#include "replace.h"

/* The clauses of one add column, each at most once. */
typedef struct add_clauses {
	const zdmc_colclause *not_null, *default_, *using;
	const zdmc_colclause *check, *unique, *references;
} add_clauses;

/* What lowering needs of the inline constraints (names NULL: none). */
typedef struct add_column_data {
	const char *check_name;
	zdmc_sqlexpr *check;
	const char *unique_name;
	const char *index; /* unique's: "schema.name" */
	const char *fkey_name;
	const zdmc_add_foreign_key *fkey; /* the references clause */
	const char *ref_qname;
} add_column_data;

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
			slot = &out->check;
			break;
		case ZDMC_COLCLAUSE_UNIQUE:
			slot = &out->unique;
			break;
		case ZDMC_COLCLAUSE_REFERENCES:
			slot = &out->references;
			break;
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

/*
 * The name PostgreSQL gives a column's constraint: table_column_label,
 * table and column shortened (the longer first) to fit in 63 bytes, never
 * inside a UTF-8 character (makeObjectName).  PostgreSQL would then add a
 * number if the name were taken; zdm's preflight refuses a taken name
 * instead (constraints_created), and a constraint clause of PostgreSQL's
 * own with the same name says how to get another.
 */
static const char *
add_column_constraint_name(zdmc_arena *arena, const char *table,
                           const char *column, const char *label)
{
	size_t n1 = strlen(table), n2 = strlen(column);
	size_t avail = ZDMC_MAX_IDENT_BYTES - strlen(label) - 2;

	while (n1 + n2 > avail) {
		if (n1 > n2)
			n1--;
		else
			n2--;
	}
	/* back off to the start of a character */
	while (n1 > 0 && ((unsigned char)table[n1] & 0xC0) == 0x80)
		n1--;
	while (n2 > 0 && ((unsigned char)column[n2] & 0xC0) == 0x80)
		n2--;
	return zdmc_arena_printf(arena, "%.*s_%.*s_%s", (int)n1, table, (int)n2,
	                         column, label);
}

/* Whether ref is the new column itself (bare, or qualified by its table). */
static bool
add_column_is_own(const zdmc_table *t, const char *column,
                  const zdmc_colref *ref)
{
	if (strcmp(ref->column, column) != 0)
		return false;
	if (ref->qualifier == NULL || strcmp(ref->qualifier, t->name) == 0)
		return true;
	return strncmp(ref->qualifier, t->schema, strlen(t->schema)) == 0 &&
	       ref->qualifier[strlen(t->schema)] == '.' &&
	       strcmp(ref->qualifier + strlen(t->schema) + 1, t->name) == 0;
}

/* A constraint name of an inline constraint, as check.h wants it. */
static const char *
add_column_name_constraint(zdmc_check_ctx *ck, const zdmc_change *change,
                           const zdmc_add_column *n, const char *label,
                           size_t offset)
{
	zdmc_name name;

	memset(&name, 0, sizeof(name));
	name.name = add_column_constraint_name(zdmc_check_arena(ck),
	                                       zdmc_check_table(ck)->name,
	                                       n->column.name, label);
	name.offset = offset;
	zdmc_check_constraint_name(ck, change, &name);
	return name.name;
}

/*
 * check (EXPR): checked as add constraint's; it may read the new column
 * and the table's columns that no other action changes (those are read
 * from the live table: reads).
 */
static void
add_column_inline_check(zdmc_check_ctx *ck, zdmc_change *change,
                        const zdmc_add_column *n, const zdmc_colclause *cl,
                        add_column_data *d)
{
	zdmc_arena *arena = zdmc_check_arena(ck);
	const zdmc_table *t = zdmc_check_table(ck);
	zdmc_sqlexpr *e = zdmc_check_expr(ck, &cl->expr, "check");
	zdmc_sqlexpr others;
	size_t i, k;

	d->check_name =
		add_column_name_constraint(ck, change, n, "check", cl->offset);
	if (e == NULL)
		return;
	d->check = e;
	others = *e;
	others.refs =
		zdmc_arena_alloc(arena, (e->nrefs + 1) * sizeof(zdmc_colref));
	others.nrefs = 0;
	for (i = 0; i < e->nrefs; i++)
		if (!add_column_is_own(t, n->column.name, &e->refs[i]))
			others.refs[others.nrefs++] = e->refs[i];
	zdmc_check_kept_expr(ck, change, &others, "a check constraint");
	for (i = 0; i < others.nrefs; i++) {
		for (k = 0; k < change->nreads; k++)
			if (strcmp(change->reads[k], others.refs[i].column) ==
			    0)
				break;
		if (k == change->nreads)
			zdmc_change_add_read(ck, change, others.refs[i].column);
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
	add_column_data *data;
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
	/* inline constraints, named as PostgreSQL names them */
	data = ZDMC_NEW(arena, add_column_data);
	if (cl.check != NULL)
		add_column_inline_check(ck, change, n, cl.check, data);
	if (cl.unique != NULL) {
		data->unique_name = add_column_name_constraint(
			ck, change, n, "key", cl.unique->offset);
		data->index = zdmc_constraint_index_name(
			arena, zdmc_check_table(ck), data->unique_name);
	}
	if (cl.references != NULL) {
		data->fkey = cl.references->fkey;
		data->fkey_name = add_column_name_constraint(
			ck, change, n, "fkey", cl.references->offset);
		data->ref_qname = zdmc_constraint_check_references(
			ck, data->fkey, data->fkey_name, 1);
	}
	change->op_data = data;
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
	const add_column_data *d = change->op_data;
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "add %s %s", col->name, col->type);
	if (col->not_null)
		zdmc_buf_puts(&b, " not null");
	if (col->default_expr != NULL)
		zdmc_buf_printf(&b, " default %s", col->default_expr->text);
	if (d->check != NULL)
		zdmc_buf_printf(&b, " check (%s)", d->check->text);
	if (d->unique_name != NULL)
		zdmc_buf_puts(&b, " unique");
	if (d->fkey != NULL) {
		zdmc_buf_printf(&b, " references %s", d->ref_qname);
		if (d->fkey->ref_columns.n > 0)
			zdmc_buf_printf(&b, " (%s)",
			                d->fkey->ref_columns.items[0].name);
	}
	if (using != NULL)
		zdmc_buf_printf(&b, " using (%s)", using->text);
	return zdmc_buf_cstr(&b);
}

/* constraints_created, indexes_created, references: the inline
 * constraints'; defaults: [C], when it has one */
static void
add_column_facts(zdmc_arena *arena, const zdmc_change *change,
                 zdmc_plan_change *out)
{
	const zdmc_newcol *col = &change->cols[0];
	const add_column_data *data = change->op_data;
	zdmc_plan_default *d;

	if (data->check_name != NULL)
		zdmc_constraint_created(arena, out, data->check_name);
	if (data->unique_name != NULL) {
		zdmc_constraint_created(arena, out, data->unique_name);
		out->indexes_created = zdmc_arena_alloc(arena, sizeof(char *));
		out->indexes_created[0] = data->index;
		out->nindexes_created = 1;
	}
	if (data->fkey != NULL) {
		zdmc_constraint_created(arena, out, data->fkey_name);
		zdmc_constraint_references_fact(arena, data->fkey,
		                                data->ref_qname, out);
	}
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

/* The check's expression on the table as it is until contract: the new
 * column by its zdm_new_ name. */
typedef struct add_column_map {
	zdmc_lower_ctx *l;
	const zdmc_table *t;
	const zdmc_newcol *col;
} add_column_map;

static const char *
add_column_map_ref(void *arg, const zdmc_colref *ref)
{
	const add_column_map *m = arg;

	return zdmc_lower_quote(m->l, add_column_is_own(m->t, m->col->name, ref)
	                                      ? m->col->physical
	                                      : ref->column);
}

/*
 * verify: the inline constraints on zdm_new_C, after the backfill (the
 * header says why): each added and validated, or the unique index built,
 * by add constraint's own statements.
 */
static void
add_column_constraints(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const add_column_data *d = change->op_data;
	const zdmc_newcol *col = &change->cols[0];
	zdmc_name physical;
	zdmc_name_list columns;

	memset(&physical, 0, sizeof(physical));
	physical.name = col->physical;
	columns.items = &physical;
	columns.n = 1;
	columns.offset = 0;
	if (d->check != NULL) {
		add_column_map m = {l, t, col};
		const char *expr = zdmc_sqlexpr_rewrite(l->arena, d->check,
		                                        add_column_map_ref, &m);
		zdmc_buf shown;

		/* the examples show the row's location and what the check
		 * read */
		zdmc_buf_init(&shown, l->arena);
		zdmc_buf_printf(&shown, "ctid, %s",
		                zdmc_lower_quote(l, col->physical));
		for (size_t i = 0; i < change->nreads; i++)
			zdmc_buf_printf(&shown, ", %s",
			                zdmc_lower_quote(l, change->reads[i]));
		zdmc_constraint_check_add(l, t, d->check_name, expr);
		zdmc_constraint_check_validate(l, t, d->check_name, expr,
		                               zdmc_buf_cstr(&shown));
	}
	if (d->fkey != NULL) {
		zdmc_constraint_foreign_key_add(l, t, d->fkey_name, &columns,
		                                d->fkey, d->ref_qname);
		zdmc_constraint_foreign_key_validate(
			l, t, d->fkey_name, &columns, d->fkey, d->ref_qname);
	}
	if (d->unique_name != NULL)
		zdmc_constraint_unique_index(l, t, d->unique_name, &columns);
}

/* verify: a NULL left in a not null column fails a check that names the
 * rows, before the NOT NULL constraint (replace.h) would fail on it; then
 * the inline constraints */
static void
add_column_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                  const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];
	const char *where;

	if (change->replace == NULL || !col->not_null) {
		add_column_constraints(l, t, change);
		return;
	}
	where = zdmc_arena_printf(l->arena, "%s IS NULL",
	                          zdmc_lower_quote(l, col->physical));
	zdmc_lower_scan_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"no row of %s has %s NULL (it is to be NOT NULL: using, or the default, gave every row a value, and no new-version write set NULL)",
			t->qname, col->name),
		where,
		zdmc_arena_printf(l->arena,
	                          "SELECT ctid FROM %s WHERE %s LIMIT 5",
	                          t->qname, where),
		true);
	add_column_constraints(l, t, change);
}

/* contract: the column under its name, its unique index made the
 * constraint, then (backfilled) its default */
static void
add_column_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	const zdmc_newcol *col = &change->cols[0];

	const add_column_data *d = change->op_data;

	zdmc_replace_rename_into_place(l, t, change);
	if (d->unique_name != NULL) {
		zdmc_constraint_unique_attach(l, t, d->unique_name);
		/* an index's columns keep the names they had when it was
		 * built; ALTER INDEX has no RENAME COLUMN, ALTER TABLE does */
		zdmc_lower_final_step(
			l, t,
			zdmc_arena_printf(
				l->arena,
				"rename the column of index %s from %s to %s (an index keeps the names its columns had when it was built)",
				d->unique_name, col->physical, col->name),
			zdmc_arena_printf(
				l->arena,
				"ALTER TABLE %s RENAME COLUMN %s TO %s",
				d->index, zdmc_lower_quote(l, col->physical),
				zdmc_lower_quote(l, col->name)));
	}
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
