/*
 * check.c -- every semantic rule of the language, and the model it yields.
 *
 * The parser accepted the shape of the source; here we judge its meaning
 * without a database: what the compiler can know is what the source says.
 * Every rule reports at the token it is about and carries on, so one run
 * lists every problem.  Rules about the live table (does the column exist,
 * what type is it, is the new name free) belong to the runtime's preflight.
 *
 * Expressions are parsed by PostgreSQL's own parser (sqlexpr.c); their
 * column references are checked against the two shapes: using (...) sees
 * the old shape, reverse using (...) the new one.  A column the migration
 * does not mention exists in both shapes and is always allowed.
 *
 * What each operation means is its op's business (compiler/ops/, through
 * check.h): this file adds a change per action, calls the op's check, and
 * then applies the rules that span changes to the facts the ops declared.
 * It must not test which op a change is.
 */
#include <string.h>
#include <strings.h>

#include "check.h"
#include "ident.h"
#include "ops/ops.h"
#include "sqlstmt.h"

/* A column name the migration mentions, for the duplicate/clash rules. */
/* The change is kept by its index: the table's array of changes moves as
 * it grows, so a pointer taken while checking an early change would not
 * survive a ninth one. */
typedef struct check_name {
	const char *name;
	size_t offset;
	size_t change;
} check_name;

typedef struct check_table {
	zdmc_table *table;
	check_name *old_names; /* columns the migration changes */
	size_t nold;
	check_name *new_names; /* names the new shape gains */
	size_t nnew;
	check_name *constraints; /* constraint names its actions name */
	size_t ncons;
	check_name *kept; /* columns a constraint names: no action may
	                   * change them */
	size_t nkept;
	size_t primary_key; /* offset of its primary key action, or 0 */
	bool has_primary_key;
	size_t cap_changes, cap_old, cap_new, cap_cons, cap_kept;
	const zdmc_change *rename; /* the change that renames the table */
} check_table;

struct zdmc_check_ctx {
	zdmc_arena *arena;
	zdmc_diag *diag;
	zdmc_model *model;
	check_table *tables;
	size_t cap_tables;
	check_table *cur; /* the table of the change being checked */
};

typedef struct zdmc_check_ctx check_ctx;

/* Grow an arena array (the old copy is left to the arena). */
static void *
check_grow(zdmc_arena *arena, void *array, size_t n, size_t *cap, size_t elem)
{
	void *bigger;

	if (n < *cap)
		return array;
	*cap = *cap ? *cap * 2 : 8;
	bigger = zdmc_arena_alloc(arena, *cap * elem);
	if (n)
		memcpy(bigger, array, n * elem);
	return bigger;
}

static bool
check_reserved(const char *name)
{
	return strncasecmp(name, "zdm", 3) == 0;
}

/* Columns every row has and no expression of zdm's may read: a BEFORE
 * trigger's row has none, and its WHEN clause may not name them. */
static bool
check_system_column(const char *name)
{
	return strcmp(name, "ctid") == 0 || strcmp(name, "xmin") == 0 ||
	       strcmp(name, "xmax") == 0 || strcmp(name, "cmin") == 0 ||
	       strcmp(name, "cmax") == 0 || strcmp(name, "tableoid") == 0;
}

static const check_name *check_find(const check_name *names, size_t n,
                                    const char *name);

static void
check_ident_length(check_ctx *ctx, const zdmc_name *name)
{
	if (strlen(name->name) > ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			ctx->diag, name->offset,
			"identifier \"%s\" is longer than PostgreSQL's limit of %d bytes",
			name->name, ZDMC_MAX_IDENT_BYTES);
}

static check_table *
check_table_for(check_ctx *ctx, const zdmc_stmt *stmt)
{
	zdmc_model *model = ctx->model;
	const char *schema = stmt->schema.name ? stmt->schema.name : "public";
	check_table *ct;
	size_t i;

	for (i = 0; i < model->ntables; i++) {
		zdmc_table *t = &model->tables[i];

		if (strcmp(t->schema, schema) == 0 &&
		    strcmp(t->name, stmt->table.name) == 0)
			return &ctx->tables[i];
	}
	if (model->ntables >= ctx->cap_tables) {
		size_t cap = ctx->cap_tables;

		model->tables =
			check_grow(ctx->arena, model->tables, model->ntables,
		                   &cap, sizeof(zdmc_table));
		ctx->tables =
			check_grow(ctx->arena, ctx->tables, model->ntables,
		                   &ctx->cap_tables, sizeof(check_table));
		/* both arrays share one capacity */
		for (i = 0; i < model->ntables; i++)
			ctx->tables[i].table = &model->tables[i];
	}
	i = model->ntables++;
	model->tables[i].schema = schema;
	model->tables[i].name = stmt->table.name;
	model->tables[i].qname =
		zdmc_ident_qualified(ctx->arena, schema, stmt->table.name);
	model->tables[i].offset = stmt->offset;
	ct = &ctx->tables[i];
	memset(ct, 0, sizeof(*ct));
	ct->table = &model->tables[i];
	return ct;
}

static zdmc_change *
check_add_change(check_ctx *ctx, check_table *ct)
{
	zdmc_table *t = ct->table;
	zdmc_change *c;

	t->changes = check_grow(ctx->arena, t->changes, t->nchanges,
	                        &ct->cap_changes, sizeof(zdmc_change));
	c = &t->changes[t->nchanges++];
	memset(c, 0, sizeof(*c));
	return c;
}

/* ---- check.h: what an op's check uses -------------------------------- */

zdmc_arena *
zdmc_check_arena(const zdmc_check_ctx *ck)
{
	return ck->arena;
}

zdmc_diag *
zdmc_check_diag(const zdmc_check_ctx *ck)
{
	return ck->diag;
}

const zdmc_table *
zdmc_check_table(const zdmc_check_ctx *ck)
{
	return ck->cur->table;
}

bool
zdmc_check_sync_is_cdc(const zdmc_check_ctx *ck)
{
	const char *sync = ck->model->options.sync;

	return sync != NULL && strcmp(sync, "cdc") == 0;
}

void
zdmc_check_ident_length(zdmc_check_ctx *ck, const zdmc_name *name)
{
	check_ident_length(ck, name);
}

bool
zdmc_check_reserved(zdmc_check_ctx *ck, const zdmc_name *name)
{
	if (!check_reserved(name->name))
		return false;
	zdmc_diag_error(
		ck->diag, name->offset,
		"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
		name->name);
	return true;
}

/* Record that a clause changes column; one clause per column. */
void
zdmc_check_changed_column(zdmc_check_ctx *ctx, const zdmc_change *change,
                          const zdmc_name *column)
{
	check_table *ct = ctx->cur;
	size_t i;

	for (i = 0; i < ct->nold; i++) {
		if (strcmp(ct->old_names[i].name, column->name) == 0) {
			zdmc_diag_error(
				ctx->diag, column->offset,
				"column \"%s\" of %s is changed by two clauses; a migration changes a column once",
				column->name, ct->table->qname);
			zdmc_diag_note(ctx->diag, ct->old_names[i].offset,
			               "first changed here");
			return;
		}
	}
	zdmc_check_reserved(ctx, column);
	ct->old_names = check_grow(ctx->arena, ct->old_names, ct->nold,
	                           &ct->cap_old, sizeof(check_name));
	ct->old_names[ct->nold].name = column->name;
	ct->old_names[ct->nold].offset = change->offset;
	ct->old_names[ct->nold].change = (size_t)(change - ct->table->changes);
	ct->nold++;
}

void
zdmc_check_new_name(zdmc_check_ctx *ctx, const zdmc_change *change,
                    const zdmc_name *name)
{
	check_table *ct = ctx->cur;
	size_t i;

	for (i = 0; i < ct->nnew; i++) {
		if (strcmp(ct->new_names[i].name, name->name) == 0) {
			zdmc_diag_error(
				ctx->diag, name->offset,
				"column \"%s\" would appear twice in the new shape of %s",
				name->name, ct->table->qname);
			zdmc_diag_note(ctx->diag, ct->new_names[i].offset,
			               "first named here");
			return;
		}
	}
	ct->new_names = check_grow(ctx->arena, ct->new_names, ct->nnew,
	                           &ct->cap_new, sizeof(check_name));
	ct->new_names[ct->nnew].name = name->name;
	ct->new_names[ct->nnew].offset = name->offset;
	ct->new_names[ct->nnew].change = (size_t)(change - ct->table->changes);
	ct->nnew++;
}

/* A name the new shape gains: reserved prefix, length, clash rules. */
void
zdmc_check_added_column(zdmc_check_ctx *ctx, const zdmc_name *name)
{
	if (zdmc_check_reserved(ctx, name))
		return;
	if (strlen(name->name) + strlen(ZDMC_NEW_COLUMN_PREFIX) >
	    ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			ctx->diag, name->offset,
			"column name \"%s\" is too long: while in flight it is added as \"%s%s\", which must fit in %d bytes",
			name->name, ZDMC_NEW_COLUMN_PREFIX, name->name,
			ZDMC_MAX_IDENT_BYTES);
}

zdmc_sqlexpr *
zdmc_check_expr(zdmc_check_ctx *ctx, const zdmc_expr *expr, const char *what)
{
	return zdmc_sqlexpr_parse(ctx->arena, ctx->diag, expr, what);
}

int
zdmc_check_type(zdmc_check_ctx *ctx, const zdmc_type *type)
{
	return zdmc_sqlexpr_check_type(ctx->arena, ctx->diag, type);
}

void
zdmc_check_reverse(zdmc_check_ctx *ctx, zdmc_change *change,
                   const zdmc_reverse *reverse, const zdmc_name *column,
                   const char *what)
{
	switch (reverse->kind) {
	case ZDMC_REVERSE_USING:
		zdmc_change_add_reverse(
			ctx, change, column->name,
			zdmc_check_expr(ctx, &reverse->expr, "reverse using"));
		break;
	case ZDMC_REVERSE_IRREVERSIBLE:
		change->irreversible = true;
		change->irreversible_offset = reverse->offset;
		break;
	case ZDMC_REVERSE_MISSING:
		zdmc_diag_error(
			ctx->diag, reverse->offset,
			"%s \"%s\" has no reverse using; add reverse using (...) computing \"%s\" from the new shape, or mark it irreversible",
			what, column->name, column->name);
		break;
	}
}

/* A constraint name: once per table across the migration's actions. */
void
zdmc_check_constraint_name(zdmc_check_ctx *ctx, const zdmc_change *change,
                           const zdmc_name *name)
{
	check_table *ct = ctx->cur;
	const check_name *seen;

	check_ident_length(ctx, name);
	if (check_reserved(name->name)) {
		zdmc_diag_error(
			ctx->diag, name->offset,
			"constraint \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			name->name);
		return;
	}
	seen = check_find(ct->constraints, ct->ncons, name->name);
	if (seen != NULL) {
		zdmc_diag_error(
			ctx->diag, name->offset,
			"constraint \"%s\" of %s is named by two actions; a migration adds, drops or renames a constraint once (to change one, add it under a new name and drop the old)",
			name->name, ct->table->qname);
		zdmc_diag_note(ctx->diag, seen->offset, "first named here");
		return;
	}
	ct->constraints = check_grow(ctx->arena, ct->constraints, ct->ncons,
	                             &ct->cap_cons, sizeof(check_name));
	ct->constraints[ct->ncons].name = name->name;
	ct->constraints[ct->ncons].offset = name->offset;
	ct->constraints[ct->ncons].change =
		(size_t)(change - ct->table->changes);
	ct->ncons++;
}

/* A column a constraint names, as the table has it before and after. */
static void
check_add_kept(check_ctx *ctx, const zdmc_change *change, const char *column,
               size_t offset)
{
	check_table *ct = ctx->cur;

	ct->kept = check_grow(ctx->arena, ct->kept, ct->nkept, &ct->cap_kept,
	                      sizeof(check_name));
	ct->kept[ct->nkept].name = column;
	ct->kept[ct->nkept].offset = offset;
	ct->kept[ct->nkept].change = (size_t)(change - ct->table->changes);
	ct->nkept++;
}

void
zdmc_check_kept_column(zdmc_check_ctx *ctx, const zdmc_change *change,
                       const zdmc_name *column)
{
	check_ident_length(ctx, column);
	if (zdmc_check_reserved(ctx, column))
		return;
	check_add_kept(ctx, change, column->name, column->offset);
}

/* A reference of an expression that sees one row of the table (a check
 * constraint): bare or qualified by the table, not a system column, not a
 * name of zdm's.  Reports and returns false otherwise. */
static bool
check_row_ref(check_ctx *ctx, const zdmc_sqlexpr *expr, const zdmc_colref *ref,
              const char *what)
{
	const zdmc_table *t = ctx->cur->table;
	const char *qualified =
		zdmc_arena_printf(ctx->arena, "%s.%s", t->schema, t->name);
	size_t at = expr->src_offset + ref->offset;

	if (ref->qualifier != NULL && strcmp(ref->qualifier, t->name) != 0 &&
	    strcmp(ref->qualifier, qualified) != 0)
		zdmc_diag_error(
			ctx->diag, at,
			"\"%s.%s\" does not refer to %s; %s sees only the row being written",
			ref->qualifier, ref->column, t->qname, what);
	else if (check_system_column(ref->column))
		zdmc_diag_error(
			ctx->diag, at,
			"\"%s\" is a system column; %s sees only the row's own columns",
			ref->column, what);
	else if (check_reserved(ref->column))
		zdmc_diag_error(
			ctx->diag, at,
			"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			ref->column);
	else
		return true;
	return false;
}

void
zdmc_check_kept_expr(zdmc_check_ctx *ctx, const zdmc_change *change,
                     const zdmc_sqlexpr *expr, const char *what)
{
	for (size_t i = 0; expr != NULL && i < expr->nrefs; i++)
		if (check_row_ref(ctx, expr, &expr->refs[i], what))
			check_add_kept(ctx, change, expr->refs[i].column,
			               expr->src_offset + expr->refs[i].offset);
}

bool
zdmc_check_row_expr(zdmc_check_ctx *ctx, const zdmc_sqlexpr *expr,
                    const char *what)
{
	bool ok = true;

	for (size_t i = 0; expr != NULL && i < expr->nrefs; i++)
		ok = check_row_ref(ctx, expr, &expr->refs[i], what) && ok;
	return ok;
}

void
zdmc_check_primary_key(zdmc_check_ctx *ctx, size_t offset)
{
	check_table *ct = ctx->cur;

	if (ct->has_primary_key) {
		zdmc_diag_error(ctx->diag, offset,
		                "%s gets a second primary key; a table has one",
		                ct->table->qname);
		zdmc_diag_note(ctx->diag, ct->primary_key,
		               "the first is added here");
		return;
	}
	ct->has_primary_key = true;
	ct->primary_key = offset;
}

/* One more element of an arena array of n (the old copy is left to the
 * arena; a change declares a handful of facts). */
static void *
check_append(zdmc_arena *arena, void *array, size_t *n, size_t elem)
{
	void *bigger = zdmc_arena_alloc(arena, (*n + 1) * elem);

	if (*n)
		memcpy(bigger, array, *n * elem);
	(*n)++;
	return bigger;
}

void
zdmc_change_add_read(zdmc_check_ctx *ck, zdmc_change *change,
                     const char *column)
{
	change->reads = check_append(ck->arena, change->reads, &change->nreads,
	                             sizeof(char *));
	change->reads[change->nreads - 1] = column;
}

zdmc_newcol *
zdmc_change_add_create(zdmc_check_ctx *ck, zdmc_change *change,
                       const char *name, const char *type)
{
	zdmc_newcol *col;

	change->cols = check_append(ck->arena, change->cols, &change->ncols,
	                            sizeof(zdmc_newcol));
	col = &change->cols[change->ncols - 1];
	memset(col, 0, sizeof(*col));
	col->name = name;
	col->physical = zdmc_arena_printf(ck->arena, "%s%s",
	                                  ZDMC_NEW_COLUMN_PREFIX, name);
	col->type = type;
	return col;
}

void
zdmc_change_add_replace(zdmc_check_ctx *ck, zdmc_change *change,
                        const char *column)
{
	change->replaces = check_append(ck->arena, change->replaces,
	                                &change->nreplaces, sizeof(char *));
	change->replaces[change->nreplaces - 1] = column;
}

void
zdmc_change_add_rename(zdmc_check_ctx *ck, zdmc_change *change,
                       const char *column, const char *to)
{
	change->renames =
		check_append(ck->arena, change->renames, &change->nrenames,
	                     sizeof(zdmc_colrename));
	change->renames[change->nrenames - 1].column = column;
	change->renames[change->nrenames - 1].to = to;
}

zdmc_oldcol *
zdmc_change_add_reverse(zdmc_check_ctx *ck, zdmc_change *change,
                        const char *column, zdmc_sqlexpr *reverse)
{
	change->reverse = check_append(ck->arena, change->reverse,
	                               &change->nreverse, sizeof(zdmc_oldcol));
	change->reverse[change->nreverse - 1].column = column;
	change->reverse[change->nreverse - 1].reverse = reverse;
	return &change->reverse[change->nreverse - 1];
}

void
zdmc_change_add_drop(zdmc_check_ctx *ck, zdmc_change *change,
                     const char *column)
{
	change->drops = check_append(ck->arena, change->drops, &change->ndrops,
	                             sizeof(char *));
	change->drops[change->ndrops - 1] = column;
}

void
zdmc_change_add_not_null_set(zdmc_check_ctx *ck, zdmc_change *change,
                             const char *column)
{
	change->not_null_set =
		check_append(ck->arena, change->not_null_set,
	                     &change->nnot_null_set, sizeof(char *));
	change->not_null_set[change->nnot_null_set - 1] = column;
}

void
zdmc_change_add_not_null_dropped(zdmc_check_ctx *ck, zdmc_change *change,
                                 const char *column)
{
	change->not_null_dropped =
		check_append(ck->arena, change->not_null_dropped,
	                     &change->nnot_null_dropped, sizeof(char *));
	change->not_null_dropped[change->nnot_null_dropped - 1] = column;
}

void
zdmc_change_set_table_drop(zdmc_check_ctx *ck, zdmc_change *change)
{
	(void)ck;
	change->table_dropped = true;
}

void
zdmc_change_set_table_rename(zdmc_check_ctx *ck, zdmc_change *change,
                             const zdmc_name *to)
{
	check_table *ct = ck->cur;

	if (ct->rename != NULL) {
		zdmc_diag_error(
			ck->diag, to->offset,
			"table %s is renamed twice; a migration renames a table once",
			ct->table->qname);
		zdmc_diag_note(ck->diag, ct->rename->table_renamed_offset,
		               "first renamed here");
		return;
	}
	change->table_renamed_to = to->name;
	change->table_renamed_offset = to->offset;
	ct->rename = change;
}

void
zdmc_change_add_default(zdmc_check_ctx *ck, zdmc_change *change,
                        const char *column, zdmc_sqlexpr *value)
{
	change->defaults =
		check_append(ck->arena, change->defaults, &change->ndefaults,
	                     sizeof(zdmc_coldefault));
	change->defaults[change->ndefaults - 1].column = column;
	change->defaults[change->ndefaults - 1].value = value;
}

/* ---- the rules that span changes, on their facts ----------------------- */

/* A name the new shape gains must not be a column the migration knows the
 * old shape has (renames and splits into an existing column are refused:
 * the compiler cannot prove the old column is gone when the new one comes). */
static void
check_clashes(check_ctx *ctx, check_table *ct)
{
	size_t i, j;

	for (i = 0; i < ct->nnew; i++) {
		const check_name *nn = &ct->new_names[i];

		/* a change may create a column with the name of one it
		 * replaces (a type change keeps its name by design) */
		if (zdmc_change_replaces(&ct->table->changes[nn->change],
		                         nn->name))
			continue;
		for (j = 0; j < ct->nold; j++) {
			if (strcmp(nn->name, ct->old_names[j].name) == 0) {
				zdmc_diag_error(
					ctx->diag, nn->offset,
					"column \"%s\" already exists in %s (this migration changes it)",
					nn->name, ct->table->qname);
				zdmc_diag_note(
					ctx->diag, ct->old_names[j].offset,
					"\"%s\" is changed here", nn->name);
				break;
			}
		}
	}
}

static const check_name *
check_find(const check_name *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i].name, name) == 0)
			return &names[i];
	return NULL;
}

/* Column references of one expression against one shape. */
static void
check_refs(check_ctx *ctx, const check_table *ct, const zdmc_change *self,
           const zdmc_sqlexpr *expr, bool new_shape)
{
	const zdmc_table *t = ct->table;
	const char *qualified =
		zdmc_arena_printf(ctx->arena, "%s.%s", t->schema, t->name);
	size_t i;

	if (expr == NULL)
		return;
	for (i = 0; i < expr->nrefs; i++) {
		const zdmc_colref *ref = &expr->refs[i];
		size_t at = expr->src_offset + ref->offset;
		const check_name *old =
			check_find(ct->old_names, ct->nold, ref->column);
		const check_name *added =
			check_find(ct->new_names, ct->nnew, ref->column);

		if (ref->qualifier != NULL &&
		    strcmp(ref->qualifier, t->name) != 0 &&
		    strcmp(ref->qualifier, qualified) != 0) {
			zdmc_diag_error(
				ctx->diag, at,
				"\"%s.%s\" does not refer to %s; a using expression sees only the row being changed",
				ref->qualifier, ref->column, t->qname);
			continue;
		}
		if (check_system_column(ref->column)) {
			zdmc_diag_error(
				ctx->diag, at,
				"\"%s\" is a system column; a using expression sees only the row's own columns",
				ref->column);
			continue;
		}
		if (check_reserved(ref->column)) {
			zdmc_diag_error(
				ctx->diag, at,
				"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
				ref->column);
			continue;
		}
		if (!new_shape && added != NULL && old == NULL) {
			zdmc_diag_error(
				ctx->diag, at,
				"using refers to \"%s\", which exists only in the new shape; using computes the new shape from the old",
				ref->column);
		} else if (new_shape && old != NULL && added == NULL &&
		           !zdmc_change_keeps(&t->changes[old->change],
		                              ref->column)) {
			const zdmc_colrename *r = zdmc_change_renames(
				&t->changes[old->change], ref->column);

			if (r != NULL)
				zdmc_diag_error(
					ctx->diag, at,
					"reverse using refers to \"%s\", which the new shape calls \"%s\"",
					ref->column, r->to);
			else
				zdmc_diag_error(
					ctx->diag, at,
					"reverse using refers to \"%s\", which the new shape no longer has; reverse using computes the old shape from the new",
					ref->column);
		} else if (!new_shape && old != NULL &&
		           &t->changes[old->change] != self &&
		           zdmc_change_replaces(&t->changes[old->change],
		                                ref->column)) {
			/* the sync trigger runs one change after the other: a
			 * column another change rewrites would be read before
			 * or after that rewrite depending on source order */
			zdmc_diag_error(
				ctx->diag, at,
				"using refers to \"%s\", which another change of %s rewrites; zdm cannot order the two, so a change may read only its own column and columns the migration does not change",
				ref->column, t->qname);
		} else if (new_shape && added != NULL &&
		           &t->changes[added->change] != self &&
		           zdmc_change_creates(&t->changes[added->change],
		                               ref->column)) {
			zdmc_diag_error(
				ctx->diag, at,
				"reverse using refers to \"%s\", a new column of another change of %s; zdm cannot order the two, so reverse using may read only its own change's new columns and columns the migration does not change",
				ref->column, t->qname);
		}
	}
}

/*
 * A constraint names columns as the table has them: none that another
 * action renames, replaces or creates.  The constraint binds from a step
 * before contract, when such a column goes by another name (or does not
 * exist yet, or still holds the old shape), so which column it means would
 * depend on the phase.
 */
static void
check_kept(check_ctx *ctx, const check_table *ct)
{
	size_t i;

	for (i = 0; i < ct->nkept; i++) {
		const check_name *k = &ct->kept[i];
		const check_name *old =
			check_find(ct->old_names, ct->nold, k->name);
		const check_name *added =
			check_find(ct->new_names, ct->nnew, k->name);
		const check_name *other = old ? old : added;
		const char *how, *done;

		if (other == NULL)
			continue;
		if (old == NULL)
			how = "add", done = "added";
		else if (zdmc_change_renames(&ct->table->changes[old->change],
		                             k->name))
			how = "rename", done = "renamed";
		else
			how = "replace", done = "replaced";
		zdmc_diag_error(
			ctx->diag, k->offset,
			"a constraint or an index on column \"%s\", which another action of this migration %ss, is not supported yet; add it in a migration of its own",
			k->name, how);
		zdmc_diag_note(ctx->diag, other->offset, "\"%s\" is %s here",
		               k->name, done);
	}
}

static void
check_table_refs(check_ctx *ctx, const check_table *ct)
{
	const zdmc_table *t = ct->table;
	size_t i, j;

	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		for (j = 0; j < c->ncols; j++)
			check_refs(ctx, ct, c, c->cols[j].forward, false);
		for (j = 0; j < c->nreverse; j++)
			check_refs(ctx, ct, c, c->reverse[j].reverse, true);
	}
}

/*
 * Several schemas: one version schema per schema, <schema>_<migration>, in
 * the order the schemas first appear.  A version schema may not be one of
 * the schemas the migration changes (expand would find it taken, and its
 * tables would be hidden behind their own views' schema).
 */
static void
check_schemas(check_ctx *ctx)
{
	zdmc_model *model = ctx->model;
	size_t i, j;

	model->schemas = zdmc_arena_alloc(ctx->arena, (model->ntables + 1) *
	                                                      sizeof(char *));
	model->version_schemas = zdmc_arena_alloc(
		ctx->arena, (model->ntables + 1) * sizeof(char *));
	for (i = 0; i < model->ntables; i++) {
		zdmc_table *t = &model->tables[i];

		for (j = 0; j < model->nschemas; j++)
			if (strcmp(model->schemas[j], t->schema) == 0)
				break;
		if (j == model->nschemas) {
			model->schemas[j] = t->schema;
			model->version_schemas[j] =
				zdmc_arena_printf(ctx->arena, "%s_%s",
			                          t->schema, model->migration);
			model->nschemas++;
		}
		t->version_schema = model->version_schemas[j];
	}
	if (model->ntables == 0) {
		/* statements on no table alone: the new version still gets its
		 * schema (empty), so that both versions connect as for any
		 * migration and the plan keeps its shape */
		model->schemas[0] = "public";
		model->version_schemas[0] = zdmc_arena_printf(
			ctx->arena, "public_%s", model->migration);
		model->nschemas = 1;
	}
	model->version_schema = model->version_schemas[0];
	for (i = 0; i < model->nschemas; i++)
		for (j = 0; j < model->ntables; j++) {
			const zdmc_table *t = &model->tables[j];

			if (strcmp(t->schema, model->version_schemas[i]) != 0)
				continue;
			zdmc_diag_error(
				ctx->diag, t->offset,
				"the new version's schema for \"%s\" is \"%s\", a schema this migration changes tables in; use another migration name",
				model->schemas[i], model->version_schemas[i]);
			break;
		}
}

/*
 * The names the new version knows the tables by.  A statement names a
 * table by its current name, so a new name may not be the name of another
 * table of the migration in the same schema (it is taken, or it is the
 * renamed table written under its new name); and the new version reaches
 * every table by its name alone (search_path), so no two tables may end up
 * with one name, in one schema or in two.
 */
static void
check_table_names(check_ctx *ctx)
{
	zdmc_model *model = ctx->model;
	size_t i, j;

	/* a table the migration drops has nothing else done to it: the new
	 * version never sees it, and contract drops it whole */
	for (i = 0; i < model->ntables; i++) {
		const zdmc_table *t = &model->tables[i];
		const zdmc_change *drop = NULL;

		for (j = 0; j < t->nchanges && drop == NULL; j++)
			if (t->changes[j].table_dropped)
				drop = &t->changes[j];
		for (j = 0; drop != NULL && j < t->nchanges; j++)
			if (&t->changes[j] != drop) {
				zdmc_diag_error(
					ctx->diag, t->changes[j].offset,
					"table %s is dropped by this migration: nothing else can be done to it in the same migration",
					t->qname);
				zdmc_diag_note(ctx->diag, drop->offset,
				               "dropped here");
			}
	}

	for (i = 0; i < model->ntables; i++) {
		zdmc_table *t = &model->tables[i];
		const zdmc_change *r = ctx->tables[i].rename;

		t->new_name = r ? r->table_renamed_to : t->name;
	}
	for (i = 0; i < model->ntables; i++) {
		const zdmc_table *t = &model->tables[i];
		const zdmc_change *r = ctx->tables[i].rename;

		for (j = 0; j < model->ntables; j++) {
			const zdmc_table *u = &model->tables[j];
			const zdmc_change *ur = ctx->tables[j].rename;
			bool same_schema = strcmp(t->schema, u->schema) == 0;

			/* a table in schema zdm is reported already */
			if (i == j || strcmp(t->new_name, u->new_name) != 0 ||
			    check_reserved(t->schema) ||
			    check_reserved(u->schema))
				continue;
			if (r != NULL && ur == NULL && same_schema) {
				zdmc_diag_error(
					ctx->diag, r->table_renamed_offset,
					"%s is renamed to \"%s\", but this migration also changes %s; a statement names a table by its current name, and a new name must be free",
					t->qname, t->new_name, u->qname);
				zdmc_diag_note(ctx->diag, u->offset,
				               "%s is changed here", u->qname);
			} else if (j > i) {
				/* reported once per pair, at the later one */
			} else if (r != NULL && ur != NULL && same_schema) {
				zdmc_diag_error(
					ctx->diag, r->table_renamed_offset,
					"%s and %s are both renamed to \"%s\"",
					u->qname, t->qname, t->new_name);
				zdmc_diag_note(ctx->diag,
				               ur->table_renamed_offset,
				               "first renamed here");
			} else if (!same_schema) {
				zdmc_diag_error(
					ctx->diag,
					r ? r->table_renamed_offset : t->offset,
					"%s and %s would both be \"%s\" to the new version, which names tables without their schema",
					u->qname, t->qname, t->new_name);
				zdmc_diag_note(ctx->diag,
				               ur ? ur->table_renamed_offset
				                  : u->offset,
				               "%s is here", u->qname);
			}
		}
	}
}

/*
 * A migration's name is also a directory in the git history (runtime/
 * history.c, refs/zdm/history) and part of file names in a plan directory:
 * one plain path component, nothing git would refuse or hide.  "a/b" would be
 * two directories, ".." and ".git" are refused by git, and a name starting
 * with "." hides.  The runtime refuses the same names when it records; this
 * rule makes the refusal happen at the source, before any run.
 */
static void
check_migration_name(check_ctx *ctx, const zdmc_name *name)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_-.";
	const char *s = name->name;
	size_t n = strlen(s);
	size_t ok = strspn(s, allowed);

	if (n == 0)
		return; /* the empty quoted name is the lexer's error */
	if (ok < n && (unsigned char)s[ok] >= 0x80)
		zdmc_diag_error(
			ctx->diag, name->offset,
			"migration name \"%s\" holds a character outside ASCII: it names a directory in the git history, so only letters, digits, '_', '-' and '.' are allowed",
			s);
	else if (ok < n)
		zdmc_diag_error(
			ctx->diag, name->offset,
			"migration name \"%s\" holds '%c': it names a directory in the git history, so only letters, digits, '_', '-' and '.' are allowed",
			s, s[ok]);
	else if (s[0] == '.')
		zdmc_diag_error(
			ctx->diag, name->offset,
			"migration name \"%s\" starts with '.': it names a directory in the git history, which git would refuse or hide",
			s);
}

/* Names zdm derives from the source must fit PostgreSQL's 63 bytes. */
static void
check_derived_names(check_ctx *ctx, const zdmc_migration *mig)
{
	zdmc_model *model = ctx->model;
	size_t i;

	for (i = 0; i < model->ntables; i++) {
		const zdmc_table *t = &model->tables[i];

		if (strlen("zdm_sync_") + strlen(t->name) >
		    ZDMC_MAX_IDENT_BYTES)
			zdmc_diag_error(
				ctx->diag, t->offset,
				"table name \"%s\" is too long: zdm names its trigger function \"zdm_sync_%s\", which must fit in %d bytes",
				t->name, t->name, ZDMC_MAX_IDENT_BYTES);
	}
	for (i = 0; i < model->nschemas; i++)
		if (strlen(model->version_schemas[i]) > ZDMC_MAX_IDENT_BYTES)
			zdmc_diag_error(
				ctx->diag, mig->name.offset,
				"the new version's schema \"%s\" (schema, \"_\", migration name) is longer than %d bytes; use a shorter migration name",
				model->version_schemas[i],
				ZDMC_MAX_IDENT_BYTES);
}

/*
 * sync = cdc: the slot, publication and origin are all named zdm_<migration>,
 * so that name must be a valid replication slot name; and the key must
 * identify a row in both shapes, so no key column may be one the migration
 * changes, renames or replaces (the statements of the sync find the row by
 * it, whichever version wrote).
 */
static void
check_cdc(check_ctx *ctx, const zdmc_migration *mig)
{
	const zdmc_model *model = ctx->model;
	const zdmc_options *o = &model->options;
	size_t i, j, k;

	if (strcmp(o->sync, "cdc") != 0)
		return;
	/* nothing would be in the publication (renames and columns added
	 * from the catalog only keep no second shape in step) */
	for (i = 0; i < model->ntables && !model->tables[i].cdc_carried; i++)
		;
	if (model->ntables > 0 && i == model->ntables)
		zdmc_diag_error(
			ctx->diag, o->sync_offset,
			"sync = cdc, but no change of this migration keeps two shapes of a table in step (renames and columns added from the catalog need no sync); leave sync out");
	if (model->migration != NULL) {
		const char *p = model->migration;
		bool ok = strlen("zdm_") + strlen(p) <= ZDMC_MAX_IDENT_BYTES;

		for (; *p && ok; p++)
			ok = (*p >= 'a' && *p <= 'z') ||
			     (*p >= '0' && *p <= '9') || *p == '_';
		if (!ok)
			zdmc_diag_error(
				ctx->diag, mig->name.offset,
				"with sync = cdc the replication slot is named \"zdm_%s\", which must be lower-case letters, digits and _ only, at most %d bytes; rename the migration",
				model->migration, ZDMC_MAX_IDENT_BYTES);
	}
	for (k = 0; k < o->nkey; k++) {
		const zdmc_name *key = &o->key[k];

		check_ident_length(ctx, key);
		for (i = 0; i < model->ntables; i++)
			for (j = 0; j < model->tables[i].nchanges; j++) {
				const zdmc_change *c =
					&model->tables[i].changes[j];

				/* a key column made nullable no longer
				 * identifies a row either */
				const char *how =
					zdmc_change_replaces(c, key->name)
						? "replaced"
					: zdmc_change_renames(c, key->name)
						? "renamed"
					: zdmc_change_drops(c, key->name)
						? "dropped"
					: zdmc_change_drops_not_null(c,
				                                     key->name)
						? "made nullable"
						: NULL;

				if (how == NULL)
					continue;
				zdmc_diag_error(
					ctx->diag, key->offset,
					"key column \"%s\" is %s by this migration (%s); the key must identify a row in both shapes",
					key->name, how, model->tables[i].qname);
				zdmc_diag_note(ctx->diag, c->offset,
				               "changed here");
			}
	}
}

int
zdmc_check(zdmc_arena *arena, zdmc_diag *diag, const zdmc_migration *mig,
           zdmc_model *out)
{
	check_ctx ctx;
	const zdmc_stmt *stmt;
	const zdmc_action *a;
	int before = diag->nerrors;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = arena;
	ctx.diag = diag;
	ctx.model = out;

	if (!mig->has_header) {
		if (!mig->header_broken)
			zdmc_diag_error(
				diag, mig->stmts ? mig->stmts->offset : 0,
				"missing migration header: a .zdm file starts with \"migration NAME;\"");
	} else {
		out->migration = mig->name.name;
		out->migration_offset = mig->name.offset;
		check_ident_length(&ctx, &mig->name);
		check_migration_name(&ctx, &mig->name);
	}
	zdmc_options_resolve(diag, mig->options, &out->options);
	if (mig->stmts == NULL && mig->has_header)
		zdmc_diag_error(diag, mig->name.offset,
		                "migration \"%s\" has no statements",
		                mig->name.name);

	for (stmt = mig->stmts; stmt != NULL; stmt = stmt->next) {
		check_table *ct;

		if (stmt->broken)
			continue;
		if (stmt->schema.name != NULL) {
			check_ident_length(&ctx, &stmt->schema);
			if (check_reserved(stmt->schema.name))
				zdmc_diag_error(
					diag, stmt->schema.offset,
					"schema \"%s\": schema names starting with \"zdm\" are reserved for zdm's own objects",
					stmt->schema.name);
		}
		/* a statement on no table: sql (...), drop index, ... */
		if (stmt->table.name == NULL) {
			for (a = stmt->actions; a != NULL; a = a->next)
				zdmc_sqlstmt_check(&ctx, &out->options, a,
				                   &out->sqls, &out->nsqls);
			continue;
		}
		check_ident_length(&ctx, &stmt->table);
		ct = check_table_for(&ctx, stmt);
		ctx.cur = ct;
		for (a = stmt->actions; a != NULL; a = a->next) {
			zdmc_change *c = check_add_change(&ctx, ct);

			c->op = zdmc_op_for(a);
			c->action = a;
			c->offset = a->offset;
			c->op->check(&ctx, c);
		}
		ctx.cur = NULL;
	}
	/* zdm sync carries the changes of tables: with none, it has
	 * nothing to do */
	if (out->ntables == 0 && out->nsqls > 0 &&
	    strcmp(out->options.sync, "cdc") == 0)
		zdmc_diag_error(
			diag, out->sqls[0].offset,
			"sync = cdc needs a table to keep in sync, and this migration changes none: leave sync out");
	for (i = 0; i < out->ntables; i++) {
		size_t j;

		check_clashes(&ctx, &ctx.tables[i]);
		check_table_refs(&ctx, &ctx.tables[i]);
		check_kept(&ctx, &ctx.tables[i]);
		for (j = 0; j < out->tables[i].nchanges; j++) {
			const zdmc_change *c = &out->tables[i].changes[j];

			if (c->replace != NULL)
				out->tables[i].needs_sync = true;
			if (c->replace != NULL || c->op->cdc_sync != NULL)
				out->tables[i].cdc_carried = true;
		}
	}
	/* an irreversible change makes switch a point of no return: a person
	 * must decide to pass it */
	if (!(out->options.approve & (1u << ZDMC_PHASE_SWITCH))) {
		for (i = 0; i < out->ntables; i++)
			for (size_t j = 0; j < out->tables[i].nchanges; j++) {
				const zdmc_change *c =
					&out->tables[i].changes[j];

				if (c->irreversible)
					zdmc_diag_error(
						diag, c->irreversible_offset,
						"an irreversible change makes the switch gate a point of no return; approve must include switch");
			}
	}
	check_table_names(&ctx);
	if (out->migration != NULL && (out->ntables > 0 || out->nsqls > 0))
		check_schemas(&ctx);
	check_derived_names(&ctx, mig);
	check_cdc(&ctx, mig);
	return diag->nerrors > before ? -1 : 0;
}

const char *
zdmc_model_new_physical(const zdmc_table *table, const char *name)
{
	size_t i, j;

	for (i = 0; i < table->nchanges; i++) {
		const zdmc_change *c = &table->changes[i];

		for (j = 0; j < c->nrenames; j++)
			if (strcmp(c->renames[j].to, name) == 0)
				return c->renames[j].column;
		for (j = 0; j < c->ncols; j++)
			if (strcmp(c->cols[j].name, name) == 0)
				return c->cols[j].physical;
	}
	return name;
}

bool
zdmc_change_replaces(const zdmc_change *change, const char *name)
{
	for (size_t i = 0; i < change->nreplaces; i++)
		if (strcmp(change->replaces[i], name) == 0)
			return true;
	return false;
}

static bool
check_names_have(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

bool
zdmc_change_keeps(const zdmc_change *change, const char *name)
{
	return !zdmc_change_replaces(change, name) &&
	       !zdmc_change_drops(change, name) &&
	       zdmc_change_renames(change, name) == NULL;
}

bool
zdmc_change_drops(const zdmc_change *change, const char *name)
{
	return check_names_have(change->drops, change->ndrops, name);
}

bool
zdmc_change_drops_not_null(const zdmc_change *change, const char *name)
{
	return check_names_have(change->not_null_dropped,
	                        change->nnot_null_dropped, name);
}

const zdmc_colrename *
zdmc_change_renames(const zdmc_change *change, const char *name)
{
	for (size_t i = 0; i < change->nrenames; i++)
		if (strcmp(change->renames[i].column, name) == 0)
			return &change->renames[i];
	return NULL;
}

const zdmc_newcol *
zdmc_change_creates(const zdmc_change *change, const char *name)
{
	for (size_t i = 0; i < change->ncols; i++)
		if (strcmp(change->cols[i].name, name) == 0)
			return &change->cols[i];
	return NULL;
}
