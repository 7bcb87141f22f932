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
 */
#include <string.h>
#include <strings.h>

#include "ident.h"
#include "model.h"

/* A column name the migration mentions, for the duplicate/clash rules. */
typedef struct check_name {
	const char *name;
	size_t offset;
	const zdmc_change *change;
} check_name;

typedef struct check_table {
	zdmc_table *table;
	check_name *old_names; /* columns the migration changes */
	size_t nold;
	check_name *new_names; /* names the new shape gains */
	size_t nnew;
	size_t cap_changes, cap_old, cap_new;
} check_table;

typedef struct check_ctx {
	zdmc_arena *arena;
	zdmc_diag *diag;
	zdmc_model *model;
	check_table *tables;
	size_t cap_tables;
} check_ctx;

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

/* Record that a clause changes column; one clause per column. */
static void
check_old_name(check_ctx *ctx, check_table *ct, const zdmc_name *column,
               size_t offset, const zdmc_change *change)
{
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
	if (check_reserved(column->name))
		zdmc_diag_error(
			ctx->diag, column->offset,
			"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			column->name);
	ct->old_names = check_grow(ctx->arena, ct->old_names, ct->nold,
	                           &ct->cap_old, sizeof(check_name));
	ct->old_names[ct->nold].name = column->name;
	ct->old_names[ct->nold].offset = offset;
	ct->old_names[ct->nold].change = change;
	ct->nold++;
}

static void
check_new_name(check_ctx *ctx, check_table *ct, const zdmc_name *name,
               const zdmc_change *change)
{
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
	ct->new_names[ct->nnew].change = change;
	ct->nnew++;
}

/* A name the new shape gains: reserved prefix, length, clash rules. */
static void
check_added_column(check_ctx *ctx, const zdmc_name *name)
{
	if (check_reserved(name->name)) {
		zdmc_diag_error(
			ctx->diag, name->offset,
			"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			name->name);
		return;
	}
	if (strlen(name->name) + strlen(ZDMC_NEW_COLUMN_PREFIX) >
	    ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			ctx->diag, name->offset,
			"column name \"%s\" is too long: while in flight it is added as \"%s%s\", which must fit in %d bytes",
			name->name, ZDMC_NEW_COLUMN_PREFIX, name->name,
			ZDMC_MAX_IDENT_BYTES);
}

static zdmc_sqlexpr *
check_expr(check_ctx *ctx, const zdmc_expr *expr, const char *what)
{
	return zdmc_sqlexpr_parse(ctx->arena, ctx->diag, expr, what);
}

/* The reverse clause of a split or type change. */
static void
check_reverse(check_ctx *ctx, zdmc_change *change, const zdmc_action *a,
              const char *what)
{
	switch (a->reverse.kind) {
	case ZDMC_REVERSE_USING:
		change->reverse =
			check_expr(ctx, &a->reverse.expr, "reverse using");
		break;
	case ZDMC_REVERSE_IRREVERSIBLE:
		change->irreversible = true;
		break;
	case ZDMC_REVERSE_MISSING:
		zdmc_diag_error(
			ctx->diag, a->reverse.offset,
			"%s \"%s\" has no reverse using; add reverse using (...) computing \"%s\" from the new shape, or mark it irreversible",
			what, a->column.name, a->column.name);
		break;
	}
}

static void
check_split(check_ctx *ctx, check_table *ct, const zdmc_action *a)
{
	zdmc_change *change = check_add_change(ctx, ct);
	const zdmc_coldef *def;
	size_t i = 0;

	change->kind = ZDMC_ACTION_SPLIT;
	change->action = a;
	change->column = a->column.name;
	check_ident_length(ctx, &a->column);
	check_old_name(ctx, ct, &a->column, a->offset, change);
	if (a->ninto < 2)
		zdmc_diag_error(
			ctx->diag, a->offset,
			"split column \"%s\" needs at least two new columns; to transform one column use alter column ... type ... using",
			a->column.name);
	change->cols = zdmc_arena_alloc(
		ctx->arena, (a->ninto ? a->ninto : 1) * sizeof(zdmc_newcol));
	for (def = a->into; def != NULL; def = def->next, i++) {
		zdmc_newcol *col = &change->cols[i];

		col->name = def->name.name;
		col->physical = zdmc_arena_printf(ctx->arena, "%s%s",
		                                  ZDMC_NEW_COLUMN_PREFIX,
		                                  def->name.name);
		col->type = def->type.text;
		col->not_null = def->not_null;
		check_ident_length(ctx, &def->name);
		check_added_column(ctx, &def->name);
		check_new_name(ctx, ct, &def->name, change);
		zdmc_sqlexpr_check_type(ctx->arena, ctx->diag, &def->type);
		if (def->using.text == NULL)
			zdmc_diag_error(
				ctx->diag, def->name.offset,
				"new column \"%s\" needs a using (...) expression computing it from the old shape",
				def->name.name);
		else
			col->forward = check_expr(ctx, &def->using, "using");
	}
	change->ncols = i;
	check_reverse(ctx, change, a, "split of column");
}

static void
check_type_change(check_ctx *ctx, check_table *ct, const zdmc_action *a)
{
	zdmc_change *change = check_add_change(ctx, ct);
	zdmc_newcol *col;

	change->kind = ZDMC_ACTION_TYPE;
	change->action = a;
	change->column = a->column.name;
	check_ident_length(ctx, &a->column);
	check_old_name(ctx, ct, &a->column, a->offset, change);
	check_added_column(ctx, &a->column);
	check_new_name(ctx, ct, &a->column, change);
	change->cols = ZDMC_NEW(ctx->arena, zdmc_newcol);
	change->ncols = 1;
	col = &change->cols[0];
	col->name = a->column.name;
	col->physical = zdmc_arena_printf(
		ctx->arena, "%s%s", ZDMC_NEW_COLUMN_PREFIX, a->column.name);
	col->type = a->type.text;
	col->carry_not_null = true;
	if (zdmc_sqlexpr_check_type(ctx->arena, ctx->diag, &a->type) != 0)
		return;
	if (a->using.text != NULL) {
		col->forward = check_expr(ctx, &a->using, "using");
	} else {
		/* no using: the column itself, converted by the assignment to
		 * the new column as ALTER TABLE ... TYPE would (an assignment
		 * cast: a value too long for varchar(5) is an error, where an
		 * explicit CAST would cut it silently) */
		zdmc_expr cast;

		cast.text = zdmc_ident_quote(ctx->arena, a->column.name);
		cast.len = strlen(cast.text);
		cast.offset = a->type.offset;
		col->forward = check_expr(ctx, &cast, "using");
	}
	check_reverse(ctx, change, a, "type change of column");
}

static void
check_rename(check_ctx *ctx, check_table *ct, const zdmc_action *a)
{
	zdmc_change *change = check_add_change(ctx, ct);

	change->kind = ZDMC_ACTION_RENAME;
	change->action = a;
	change->column = a->column.name;
	change->rename_to = a->to.name;
	check_ident_length(ctx, &a->column);
	check_ident_length(ctx, &a->to);
	check_old_name(ctx, ct, &a->column, a->offset, change);
	if (strcmp(a->column.name, a->to.name) == 0) {
		zdmc_diag_error(ctx->diag, a->to.offset,
		                "column \"%s\" is renamed to itself",
		                a->to.name);
		return;
	}
	if (check_reserved(a->to.name))
		zdmc_diag_error(
			ctx->diag, a->to.offset,
			"column \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			a->to.name);
	check_new_name(ctx, ct, &a->to, change);
}

/* A name the new shape gains must not be a column the migration knows the
 * old shape has (renames and splits into an existing column are refused:
 * the compiler cannot prove the old column is gone when the new one comes). */
static void
check_clashes(check_ctx *ctx, check_table *ct)
{
	size_t i, j;

	for (i = 0; i < ct->nnew; i++) {
		const check_name *nn = &ct->new_names[i];

		if (nn->change->kind == ZDMC_ACTION_TYPE)
			continue; /* keeps its own name by design */
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
		if (strcmp(ref->column, "ctid") == 0 ||
		    strcmp(ref->column, "xmin") == 0 ||
		    strcmp(ref->column, "xmax") == 0 ||
		    strcmp(ref->column, "cmin") == 0 ||
		    strcmp(ref->column, "cmax") == 0 ||
		    strcmp(ref->column, "tableoid") == 0) {
			/* a BEFORE trigger's row has none, and its WHEN
			 * clause may not name them */
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
		} else if (new_shape && old != NULL && added == NULL) {
			if (old->change->kind == ZDMC_ACTION_RENAME)
				zdmc_diag_error(
					ctx->diag, at,
					"reverse using refers to \"%s\", which the new shape calls \"%s\"",
					ref->column, old->change->rename_to);
			else
				zdmc_diag_error(
					ctx->diag, at,
					"reverse using refers to \"%s\", which the new shape no longer has; reverse using computes the old shape from the new",
					ref->column);
		} else if (!new_shape && old != NULL && old->change != self &&
		           old->change->kind != ZDMC_ACTION_RENAME) {
			/* the sync trigger runs one change after the other: a
			 * column another change rewrites would be read before
			 * or after that rewrite depending on source order */
			zdmc_diag_error(
				ctx->diag, at,
				"using refers to \"%s\", which another change of %s rewrites; zdm cannot order the two, so a change may read only its own column and columns the migration does not change",
				ref->column, t->qname);
		} else if (new_shape && added != NULL &&
		           added->change != self &&
		           added->change->kind != ZDMC_ACTION_RENAME) {
			zdmc_diag_error(
				ctx->diag, at,
				"reverse using refers to \"%s\", a new column of another change of %s; zdm cannot order the two, so reverse using may read only its own change's new columns and columns the migration does not change",
				ref->column, t->qname);
		}
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
		check_refs(ctx, ct, c, c->reverse, true);
	}
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
	if (model->version_schema != NULL &&
	    strlen(model->version_schema) > ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			ctx->diag, mig->name.offset,
			"the new version's schema \"%s\" (schema, \"_\", migration name) is longer than %d bytes; use a shorter migration name",
			model->version_schema, ZDMC_MAX_IDENT_BYTES);
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

				if (strcmp(c->column, key->name) != 0)
					continue;
				zdmc_diag_error(
					ctx->diag, key->offset,
					"key column \"%s\" is %s by this migration (%s); the key must identify a row in both shapes",
					key->name,
					c->kind == ZDMC_ACTION_RENAME
						? "renamed"
						: "replaced",
					model->tables[i].qname);
				zdmc_diag_note(ctx->diag, c->action->offset,
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
		check_ident_length(&ctx, &stmt->table);
		ct = check_table_for(&ctx, stmt);
		if (ctx.model->ntables > 1 &&
		    !check_reserved(ct->table->schema) &&
		    strcmp(ct->table->schema, out->tables[0].schema) != 0)
			zdmc_diag_error(
				diag,
				stmt->schema.name ? stmt->schema.offset
						  : stmt->table.offset,
				"all tables of one migration must be in one schema: %s is in \"%s\", %s in \"%s\"",
				ct->table->qname, ct->table->schema,
				out->tables[0].qname, out->tables[0].schema);
		for (a = stmt->actions; a != NULL; a = a->next) {
			switch (a->kind) {
			case ZDMC_ACTION_SPLIT:
				check_split(&ctx, ct, a);
				break;
			case ZDMC_ACTION_TYPE:
				check_type_change(&ctx, ct, a);
				break;
			case ZDMC_ACTION_RENAME:
				check_rename(&ctx, ct, a);
				break;
			}
		}
	}
	for (i = 0; i < out->ntables; i++) {
		size_t j;

		check_clashes(&ctx, &ctx.tables[i]);
		check_table_refs(&ctx, &ctx.tables[i]);
		for (j = 0; j < out->tables[i].nchanges; j++)
			if (out->tables[i].changes[j].kind !=
			    ZDMC_ACTION_RENAME)
				out->tables[i].needs_sync = true;
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
						diag, c->action->reverse.offset,
						"an irreversible change makes the switch gate a point of no return; approve must include switch");
			}
	}
	if (out->migration != NULL && out->ntables > 0)
		out->version_schema = zdmc_arena_printf(
			arena, "%s_%s", out->tables[0].schema, out->migration);
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

		if (c->kind == ZDMC_ACTION_RENAME &&
		    strcmp(c->rename_to, name) == 0)
			return c->column;
		for (j = 0; j < c->ncols; j++)
			if (strcmp(c->cols[j].name, name) == 0)
				return c->cols[j].physical;
	}
	return name;
}
