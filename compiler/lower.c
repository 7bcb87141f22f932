/*
 * lower.c -- turn a checked migration into the plan: every statement, in
 * phases, with its compensation.
 *
 * The mechanism, per changed table T (docs/plan-format.md tells it for
 * reviewers):
 *
 * expand (one transaction per table, so no client ever sees half of it --
 * the lesson of pgroll's #905/#906): new columns are added as nullable
 * zdm_new_<name> (metadata only), plus zdm_sync_pending boolean NOT NULL
 * DEFAULT true, which marks rows whose new columns have never been computed
 * (a constant default is metadata only too).  A BEFORE trigger keeps both
 * shapes right: an old-version write (the old columns change) recomputes the
 * new columns with using; a new-version write (only new columns change)
 * recomputes the old ones with reverse using; either clears the marker.  The
 * UPDATE trigger has a WHEN clause, evaluated in C without entering
 * plpgsql, that is false when the marker flips -- which only the backfill
 * does -- so the backfill's own writes never pay for the trigger.  The new
 * version is a schema of views that rename columns; it is built from the
 * catalog at run time (the compiler never sees the table's other columns),
 * by a DO block whose every line is in the plan.
 *
 * backfill: one UPDATE per batch of heap pages (ctid ranges: no key needed,
 * TID range scans, batches on disjoint ranges can run in parallel), touching
 * only rows still marked pending, so it never overwrites a value a trigger
 * wrote.  Every row that moves (an UPDATE) goes through the trigger and is
 * no longer pending, so one pass over the pages that existed when the
 * backfill started finds every pending row.
 *
 * verify: NOT NULL as CHECK ... NOT VALID, then VALIDATE (no long lock);
 * checks that return a count that must be zero.
 *
 * contract (one transaction per table): drop the triggers, the view, the
 * old columns; rename the new ones into place; SET NOT NULL, which skips its
 * scan because the validated check proves it.  Dropping the version schema
 * lets new-version clients, whose search_path is "<version>, public", fall
 * through to the contracted table, which now has their shape.
 *
 * sync = cdc (plan format version 2) replaces the trigger by a running
 * zdm sync: the plan's cdc section gives, per change, the rules and the two
 * guarded UPDATEs that carry a change event across (see "sync = cdc"
 * below), and catch_up / stop_sync steps wait for it.
 *
 * This file must not report errors: everything it relies on was checked.
 */
#include <string.h>

#include "ident.h"
#include "model.h"
#include "plan.h"
#include "source.h"
#include "zdmc.h"

#define PENDING_COLUMN "zdm_sync_pending"
#define INSERT_TRIGGER "zdm_sync_insert"
#define UPDATE_TRIGGER "zdm_sync_update"

typedef struct lower_ctx {
	zdmc_arena *arena;
	const zdmc_model *model;
	const zdmc_source *src;
	zdmc_plan *plan;
	zdmc_plan_phase *phase;
	zdmc_plan_step **tail;
	int nsteps;           /* in the current phase */
	const char *tx_label; /* NULL: each step is its own transaction */
} lower_ctx;

/* ---- names ----------------------------------------------------------- */

static const char *
Q(lower_ctx *ctx, const char *name)
{
	return zdmc_ident_quote(ctx->arena, name);
}

static const char *
lower_sync_function(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(
		ctx->arena, t->schema,
		zdmc_arena_printf(ctx->arena, "zdm_sync_%s", t->name));
}

static const char *
lower_view(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(ctx->arena, ctx->model->version_schema,
	                            t->name);
}

static const char *
lower_nn_constraint(lower_ctx *ctx, const zdmc_newcol *col)
{
	return Q(ctx, zdmc_arena_printf(ctx->arena, "zdm_nn_%s", col->name));
}

/* ---- expressions, rebound to where they are evaluated --------------------- */

typedef struct lower_map {
	lower_ctx *ctx;
	const zdmc_table *table;
	const zdmc_change *change; /* round trip: whose forwards to inline */
	const char *prefix;        /* "NEW." in triggers, "" elsewhere */
} lower_map;

static const char *
lower_map_old(void *arg, const zdmc_colref *ref)
{
	lower_map *m = arg;

	return zdmc_arena_printf(m->ctx->arena, "%s%s", m->prefix,
	                         Q(m->ctx, ref->column));
}

static const char *
lower_map_new(void *arg, const zdmc_colref *ref)
{
	lower_map *m = arg;

	return zdmc_arena_printf(
		m->ctx->arena, "%s%s", m->prefix,
		Q(m->ctx, zdmc_model_new_physical(m->table, ref->column)));
}

static const char *
lower_forward(lower_ctx *ctx, const zdmc_table *t, const zdmc_newcol *col,
              const char *prefix)
{
	lower_map m = {ctx, t, NULL, prefix};

	return zdmc_sqlexpr_rewrite(ctx->arena, col->forward, lower_map_old,
	                            &m);
}

static const char *
lower_reverse(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
              const char *prefix)
{
	lower_map m = {ctx, t, NULL, prefix};

	return zdmc_sqlexpr_rewrite(ctx->arena, c->reverse, lower_map_new, &m);
}

/* reverse(using(old)): each new column of the change becomes its using. */
static const char *
lower_map_round_trip(void *arg, const zdmc_colref *ref)
{
	lower_map *m = arg;
	size_t i;

	/* as stored: cast to the new column's type, so rounding or cutting
	 * by its type modifier shows in the round trip */
	for (i = 0; i < m->change->ncols; i++)
		if (strcmp(m->change->cols[i].name, ref->column) == 0)
			return zdmc_arena_printf(
				m->ctx->arena, "CAST((%s\n) AS %s)",
				lower_forward(m->ctx, m->table,
			                      &m->change->cols[i], ""),
				m->change->cols[i].type);
	return lower_map_new(arg, ref);
}

static const char *
lower_round_trip(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c)
{
	lower_map m = {ctx, t, c, ""};

	return zdmc_sqlexpr_rewrite(ctx->arena, c->reverse,
	                            lower_map_round_trip, &m);
}

/* Old-shape columns whose change means "recompute the new columns". */
static void
lower_forward_sources(lower_ctx *ctx, const zdmc_change *c, zdmc_buf *cond,
                      const char **seen, size_t *nseen)
{
	size_t i, j, k;

	for (i = 0; i <= c->ncols; i++) {
		const zdmc_sqlexpr *e =
			i < c->ncols ? c->cols[i].forward : NULL;
		size_t nrefs = e ? e->nrefs : 1;

		for (j = 0; j < nrefs; j++) {
			const char *col = e ? e->refs[j].column : c->column;

			for (k = 0; k < *nseen; k++)
				if (strcmp(seen[k], col) == 0)
					break;
			if (k < *nseen)
				continue;
			seen[(*nseen)++] = col;
			if (cond->len)
				zdmc_buf_puts(cond, " OR ");
			zdmc_buf_printf(cond, "NEW.%s IS DISTINCT FROM OLD.%s",
			                Q(ctx, col), Q(ctx, col));
		}
	}
}

/* A list of column names, each once, in the order first seen. */
typedef struct lower_names {
	const char **v;
	size_t n;
	size_t cap;
} lower_names;

static bool
lower_names_has(const lower_names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return true;
	return false;
}

static void
lower_names_add(lower_ctx *ctx, lower_names *l, const char *name)
{
	if (lower_names_has(l, name))
		return;
	if (l->n == l->cap) {
		const char **v;

		l->cap = l->cap ? 2 * l->cap : 8;
		v = zdmc_arena_alloc(ctx->arena, l->cap * sizeof(char *));
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(char *));
		l->v = v;
	}
	l->v[l->n++] = name;
}

/*
 * Columns an expression of change c reads that both versions share (the
 * migration does not change them): for forward (using) the old-shape
 * names other than c's own column; for reverse the physical columns
 * behind its new-shape names other than c's own new columns.  A write to
 * one of them cannot be told apart by version, so the trigger (and the
 * cdc rules) look at them only after the change's own columns.
 */
static lower_names
lower_shared_columns(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                     bool reverse)
{
	lower_names seen = {NULL, 0, 0};
	size_t i, j, k;

	for (i = 0; i < (reverse ? 1 : c->ncols); i++) {
		const zdmc_sqlexpr *e =
			reverse ? c->reverse : c->cols[i].forward;

		for (j = 0; e != NULL && j < e->nrefs; j++) {
			const char *col = e->refs[j].column;
			bool own = strcmp(col, c->column) == 0;

			if (reverse) {
				col = zdmc_model_new_physical(t, col);
				for (k = 0; k < c->ncols; k++) {
					const zdmc_sqlexpr *f =
						c->cols[k].forward;

					if (strcmp(c->cols[k].physical, col) ==
					    0)
						own = true;
					/* read by using too: the forward test
					 * comes first and covers it */
					for (size_t r = 0; r < f->nrefs; r++)
						if (strcmp(f->refs[r].column,
						           col) == 0)
							own = true;
				}
			}
			if (!own)
				lower_names_add(ctx, &seen, col);
		}
	}
	return seen;
}

static const char *
lower_shared_changed(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                     bool reverse)
{
	lower_names seen = lower_shared_columns(ctx, t, c, reverse);
	zdmc_buf cond;

	zdmc_buf_init(&cond, ctx->arena);
	for (size_t i = 0; i < seen.n; i++)
		zdmc_buf_printf(&cond, "%sNEW.%s IS DISTINCT FROM OLD.%s",
		                i ? " OR " : "", Q(ctx, seen.v[i]),
		                Q(ctx, seen.v[i]));
	return zdmc_buf_cstr(&cond);
}

static size_t
lower_count_refs(const zdmc_change *c)
{
	size_t i, n = 1;

	for (i = 0; i < c->ncols; i++)
		n += c->cols[i].forward->nrefs;
	return n;
}

static const char *
lower_new_changed(lower_ctx *ctx, const zdmc_change *c, const char *op,
                  const char *join)
{
	zdmc_buf cond;
	size_t i;

	zdmc_buf_init(&cond, ctx->arena);
	for (i = 0; i < c->ncols; i++) {
		const char *p = Q(ctx, c->cols[i].physical);

		if (i)
			zdmc_buf_puts(&cond, join);
		if (strcmp(op, "IS NOT NULL") == 0 ||
		    strcmp(op, "IS DISTINCT FROM NULL") == 0)
			zdmc_buf_printf(&cond, "NEW.%s %s", p, op);
		else
			zdmc_buf_printf(&cond, "NEW.%s %s OLD.%s", p, op, p);
	}
	return zdmc_buf_cstr(&cond);
}

/* ---- steps ------------------------------------------------------------- */

static void
lower_phase(lower_ctx *ctx, zdmc_phase phase)
{
	zdmc_plan_phase *p = ZDMC_NEW(ctx->arena, zdmc_plan_phase);
	zdmc_plan_phase **tail = &ctx->plan->phases;

	p->name = zdmc_phase_names[phase];
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = p;
	ctx->phase = p;
	ctx->tail = &p->steps;
	ctx->nsteps = 0;
	ctx->tx_label = NULL;
}

static const char *lower_do_block(lower_ctx *ctx, const char *body);
static const char *lower_at(lower_ctx *ctx, size_t offset);

static zdmc_plan_step *
lower_step(lower_ctx *ctx, zdmc_step_kind kind, const zdmc_table *t,
           const char *description, const char *sql, const char *compensation)
{
	zdmc_plan_step *s = ZDMC_NEW(ctx->arena, zdmc_plan_step);

	/* every DO block is written with $zdm$; give it a tag its body
	 * cannot close */
	if (sql != NULL && strncmp(sql, "DO $zdm$\n", 9) == 0 &&
	    strlen(sql) >= 14 && strcmp(sql + strlen(sql) - 5, "$zdm$") == 0) {
		const char *body = zdmc_arena_strndup(ctx->arena, sql + 9,
		                                      strlen(sql) - 14);

		if (strstr(body, "$zdm$") != NULL)
			sql = lower_do_block(ctx, body);
	}
	s->kind = kind;
	s->id = zdmc_arena_printf(ctx->arena, "%s.%d", ctx->phase->name,
	                          ++ctx->nsteps);
	s->description = description;
	s->table = t ? t->qname : NULL;
	if (kind != ZDMC_STEP_GATE && kind != ZDMC_STEP_CATCH_UP &&
	    kind != ZDMC_STEP_STOP_SYNC) {
		s->transaction = ctx->tx_label ? ctx->tx_label : s->id;
		s->lock_timeout_ms = ctx->model->options.lock_timeout_ms;
	}
	s->sql = sql;
	s->compensation = compensation;
	*ctx->tail = s;
	ctx->tail = &s->next;
	return s;
}

static void
lower_approval_gate(lower_ctx *ctx, zdmc_phase phase)
{
	zdmc_plan_step *s;

	if (!(ctx->model->options.approve & (1u << phase)))
		return;
	s = lower_step(ctx, ZDMC_STEP_GATE, NULL,
	               zdmc_arena_printf(ctx->arena,
	                                 "approval needed before %s",
	                                 zdmc_phase_names[phase]),
	               NULL, NULL);
	s->gate = zdmc_phase_names[phase];
	s->approval = true;
}

/* A dollar-quote tag that does not occur in body. */
static const char *
lower_dollar_tag(lower_ctx *ctx, const char *body)
{
	const char *tag = "$zdm$";
	int n = 0;

	while (strstr(body, tag) != NULL)
		tag = zdmc_arena_printf(ctx->arena, "$zdm%d$", ++n);
	return tag;
}

static const char *
lower_new_column_list(lower_ctx *ctx, const zdmc_change *c)
{
	zdmc_buf list;
	size_t i;

	zdmc_buf_init(&list, ctx->arena);
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&list, "%s%s", i ? ", " : "", c->cols[i].name);
	return zdmc_buf_cstr(&list);
}

/* ---- expand ------------------------------------------------------------ */

static void
lower_assign_forward(lower_ctx *ctx, zdmc_buf *b, const zdmc_table *t,
                     const zdmc_change *c, const char *indent)
{
	size_t i;

	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(b, "%sNEW.%s := (%s);\n", indent,
		                Q(ctx, c->cols[i].physical),
		                lower_forward(ctx, t, &c->cols[i], "NEW."));
}

static void
lower_assign_reverse(lower_ctx *ctx, zdmc_buf *b, const zdmc_table *t,
                     const zdmc_change *c, const char *indent)
{
	if (c->irreversible)
		zdmc_buf_printf(
			b,
			"%sNULL; -- irreversible: the old shape is not written back\n",
			indent);
	else
		zdmc_buf_printf(b, "%sNEW.%s := (%s);\n", indent,
		                Q(ctx, c->column),
		                lower_reverse(ctx, t, c, "NEW."));
}

/* Text from the source inside a -- comment of generated SQL: a newline in
 * a quoted name or between the words of a type would end the comment and
 * make the rest code. */
static const char *
lower_comment_text(lower_ctx *ctx, const char *text)
{
	char *copy = zdmc_arena_strdup(ctx->arena, text);

	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return copy;
}

static const char *
lower_change_title(lower_ctx *ctx, const zdmc_change *c)
{
	if (c->kind == ZDMC_ACTION_SPLIT)
		return lower_comment_text(
			ctx, zdmc_arena_printf(
				     ctx->arena, "split column %s into %s",
				     c->column, lower_new_column_list(ctx, c)));
	return lower_comment_text(
		ctx, zdmc_arena_printf(ctx->arena, "alter column %s type %s",
	                               c->column, c->cols[0].type));
}

/* A DO block around body, with a dollar-quote tag the body cannot close
 * (a column named x$zdm$ would close a fixed one). */
static const char *
lower_do_block(lower_ctx *ctx, const char *body)
{
	const char *tag = lower_dollar_tag(ctx, body);

	return zdmc_arena_printf(ctx->arena, "DO %s\n%s%s", tag, body, tag);
}

static const char *
lower_sync_function_sql(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_buf body, sql;
	const char *tag;
	size_t i, j;

	zdmc_buf_init(&body, ctx->arena);
	zdmc_buf_printf(
		&body,
		"BEGIN\n"
		"    -- zdm migration %s: keeps the old and the new shape of %s\n"
		"    -- in step while both application versions write.\n"
		"    IF TG_OP = 'INSERT' THEN\n",
		lower_comment_text(ctx, ctx->model->migration),
		lower_comment_text(ctx, t->qname));
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->kind == ZDMC_ACTION_RENAME)
			continue;
		/* old-version clients never write zdm_new_* columns, so a value
		 * there means the new version wrote the row (the old column may
		 * hold its default, which must not win) */
		/* ... and a new-version insert that leaves every new column
		 * NULL is told by its search_path (IS DISTINCT FROM NULL: a
		 * composite with a NULL field IS NOT NULL is false) */
		zdmc_buf_printf(
			&body,
			"        -- %s\n"
			"        IF %s\n"
			"           OR pg_catalog.strpos(pg_catalog.current_setting('search_path'), %s) > 0 THEN\n",
			lower_change_title(ctx, c),
			lower_new_changed(ctx, c, "IS DISTINCT FROM NULL",
		                          " OR "),
			zdmc_ident_literal(ctx->arena,
		                           Q(ctx, ctx->model->version_schema)));
		lower_assign_reverse(ctx, &body, t, c, "            ");
		zdmc_buf_puts(&body, "        ELSE\n");
		lower_assign_forward(ctx, &body, t, c, "            ");
		zdmc_buf_puts(&body, "        END IF;\n");
	}
	zdmc_buf_puts(&body, "    ELSE\n");
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->kind == ZDMC_ACTION_RENAME)
			continue;
		zdmc_buf_printf(&body, "        -- %s\n",
		                lower_change_title(ctx, c));
		/* Who wrote the row: the change's own old column only the old
		 * version writes, its zdm_new_* columns only the new one; so
		 * those decide first.  A column both versions share (read by
		 * using or reverse using) only after them. */
		zdmc_buf_printf(
			&body,
			"        IF NEW.%s IS DISTINCT FROM OLD.%s THEN\n",
			Q(ctx, c->column), Q(ctx, c->column));
		lower_assign_forward(ctx, &body, t, c, "            ");
		zdmc_buf_printf(
			&body, "        ELSIF %s THEN\n",
			lower_new_changed(ctx, c, "IS DISTINCT FROM", " OR "));
		zdmc_buf_printf(
			&body,
			"            IF OLD.%s THEN\n"
			"                -- never backfilled: what the client did not set comes from the old shape\n",
			PENDING_COLUMN);
		for (j = 0; j < c->ncols; j++) {
			const char *p = Q(ctx, c->cols[j].physical);

			zdmc_buf_printf(
				&body,
				"                IF NEW.%s IS NOT DISTINCT FROM OLD.%s THEN\n"
				"                    NEW.%s := (%s);\n"
				"                END IF;\n",
				p, p, p,
				lower_forward(ctx, t, &c->cols[j], "NEW."));
		}
		zdmc_buf_puts(&body, "            END IF;\n");
		lower_assign_reverse(ctx, &body, t, c, "            ");
		{
			const char *fwd =
				lower_shared_changed(ctx, t, c, false);
			const char *rev =
				c->irreversible
					? ""
					: lower_shared_changed(ctx, t, c, true);

			if (fwd[0]) {
				zdmc_buf_printf(&body,
				                "        ELSIF %s THEN\n", fwd);
				lower_assign_forward(ctx, &body, t, c,
				                     "            ");
			}
			if (rev[0]) {
				zdmc_buf_printf(&body,
				                "        ELSIF %s THEN\n", rev);
				lower_assign_reverse(ctx, &body, t, c,
				                     "            ");
			}
		}
		zdmc_buf_printf(&body, "        ELSIF OLD.%s THEN\n",
		                PENDING_COLUMN);
		lower_assign_forward(ctx, &body, t, c, "            ");
		zdmc_buf_puts(&body, "        END IF;\n");
	}
	zdmc_buf_printf(&body,
	                "    END IF;\n"
	                "    NEW.%s := false;\n"
	                "    RETURN NEW;\n"
	                "END\n",
	                PENDING_COLUMN);
	tag = lower_dollar_tag(ctx, zdmc_buf_cstr(&body));
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql,
	                "CREATE FUNCTION %s() RETURNS trigger\n"
	                "LANGUAGE plpgsql AS %s\n%s%s",
	                lower_sync_function(ctx, t), tag, zdmc_buf_cstr(&body),
	                tag);
	return zdmc_buf_cstr(&sql);
}

/* WHEN of the UPDATE trigger: a client write that touches what we sync.
 * The backfill flips the marker, so it never matches. */
static const char *
lower_update_when(lower_ctx *ctx, const zdmc_table *t)
{
	const char **seen;
	size_t nseen = 0, nrefs = 0, i;
	zdmc_buf cond, when;

	for (i = 0; i < t->nchanges; i++)
		if (t->changes[i].kind != ZDMC_ACTION_RENAME)
			nrefs += lower_count_refs(&t->changes[i]);
	seen = zdmc_arena_alloc(ctx->arena, (nrefs + 1) * sizeof(char *));
	zdmc_buf_init(&cond, ctx->arena);
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->kind == ZDMC_ACTION_RENAME)
			continue;
		lower_forward_sources(ctx, c, &cond, seen, &nseen);
	}
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->kind == ZDMC_ACTION_RENAME || c->irreversible)
			continue;
		zdmc_buf_printf(&cond, "\n       OR %s",
		                lower_new_changed(ctx, c, "IS DISTINCT FROM",
		                                  "\n       OR "));
		/* shared columns only reverse using reads: a write to them
		 * must reach the old shape too */
		{
			const char *rev = lower_shared_changed(ctx, t, c, true);

			if (rev[0])
				zdmc_buf_printf(&cond, "\n       OR %s", rev);
		}
	}
	zdmc_buf_init(&when, ctx->arena);
	zdmc_buf_printf(&when,
	                "NEW.%s = OLD.%s\n"
	                "      AND (OLD.%s\n       OR %s)",
	                PENDING_COLUMN, PENDING_COLUMN, PENDING_COLUMN,
	                zdmc_buf_cstr(&cond));
	return zdmc_buf_cstr(&when);
}

/* The new version's view, built from the catalog: every column of the table
 * in order, the changed ones replaced in place by their new shape. */
static const char *
lower_view_sql(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_buf values, sql;
	size_t i, j;

	zdmc_buf_init(&values, ctx->arena);
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->kind == ZDMC_ACTION_RENAME) {
			zdmc_buf_printf(
				&values, "%s(%s, 1, %s)",
				values.len ? ",\n                        " : "",
				zdmc_ident_literal(ctx->arena, c->column),
				zdmc_ident_literal(
					ctx->arena,
					zdmc_arena_printf(
						ctx->arena, "%s AS %s",
						Q(ctx, c->column),
						Q(ctx, c->rename_to))));
			continue;
		}
		for (j = 0; j < c->ncols; j++)
			zdmc_buf_printf(
				&values, "%s(%s, %zu, %s)",
				values.len ? ",\n                        " : "",
				zdmc_ident_literal(ctx->arena, c->column),
				j + 1,
				zdmc_ident_literal(
					ctx->arena,
					zdmc_arena_printf(
						ctx->arena, "%s AS %s",
						Q(ctx, c->cols[j].physical),
						Q(ctx, c->cols[j].name))));
	}
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(
		&sql,
		"DO $zdm$\n"
		"DECLARE\n"
		"    select_list text;\n"
		"    acl record;\n"
		"BEGIN\n"
		"    -- every column of %s in order; zdm's own columns hidden;\n"
		"    -- the columns this migration changes replaced by their new shape\n"
		"    SELECT pg_catalog.string_agg(coalesce(m.new_shape, pg_catalog.quote_ident(a.attname)),\n"
		"                                 ', ' ORDER BY a.attnum, m.position)\n"
		"      INTO select_list\n"
		"      FROM pg_catalog.pg_attribute AS a\n"
		"      LEFT JOIN (VALUES %s)\n"
		"           AS m(old_column, position, new_shape)\n"
		"        ON m.old_column = a.attname\n"
		"     WHERE a.attrelid = %s::pg_catalog.regclass\n"
		"       AND a.attnum > 0 AND NOT a.attisdropped\n"
		"       AND a.attname !~ '^zdm_';\n"
		"    EXECUTE pg_catalog.format('CREATE VIEW %%s WITH (security_invoker = true)'\n"
		"                              ' AS SELECT %%s FROM %%s', %s, select_list, %s);\n"
		"    -- whoever may use the table may use its new shape: the view gets\n"
		"    -- the table's grants, the schema USAGE (security_invoker: the\n"
		"    -- table's own privileges and policies still apply beneath it)\n"
		"    FOR acl IN\n"
		"        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC'\n"
		"                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee))\n"
		"               END AS grantee,\n"
		"               a.privilege_type, a.is_grantable\n"
		"          FROM pg_catalog.pg_class AS c,\n"
		"               LATERAL pg_catalog.aclexplode(c.relacl) AS a\n"
		"         WHERE c.oid = %s::pg_catalog.regclass AND a.grantee <> c.relowner\n"
		"    LOOP\n"
		"        EXECUTE pg_catalog.format('GRANT %%s ON %%s TO %%s%%s', acl.privilege_type,\n"
		"                %s, acl.grantee,\n"
		"                CASE WHEN acl.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);\n"
		"        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %%s TO %%s', %s,\n"
		"                acl.grantee);\n"
		"    END LOOP;\n"
		"END\n"
		"$zdm$",
		t->qname, zdmc_buf_cstr(&values),
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, lower_view(ctx, t)),
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, lower_view(ctx, t)),
		zdmc_ident_literal(ctx->arena,
	                           Q(ctx, ctx->model->version_schema)));
	return zdmc_buf_cstr(&sql);
}

/* ---- sync = cdc ---------------------------------------------------------- */

/*
 * With sync = cdc no trigger runs: zdm sync reads each change event and
 * decides, by the rules of cdc.tables[].syncs[], which of two guarded
 * UPDATEs carries it across.  The rules mirror the trigger function's
 * decision tree (lower_sync_function_sql) and its WHEN clause
 * (lower_update_when), so both modes end with the same data; only the
 * search_path test on INSERT has no equivalent (an event does not carry
 * the writer's settings).  Each statement changes at most the row whose key
 * and synced columns still equal the event's after-image, so an event
 * applied late never overwrites a newer write: that later write has its
 * own event.
 */

static bool
lower_is_cdc(const lower_ctx *ctx)
{
	return strcmp(ctx->model->options.sync, "cdc") == 0;
}

static bool
lower_is_native(const lower_ctx *ctx)
{
	return lower_is_cdc(ctx) &&
	       strcmp(ctx->model->options.cdc_source, "native") == 0;
}

/* The slot, the publication and the origin: zdm_<migration> (check.c made
 * sure it is a valid slot name). */
static const char *
lower_cdc_name(lower_ctx *ctx)
{
	return zdmc_arena_printf(ctx->arena, "zdm_%s", ctx->model->migration);
}

static size_t
lower_syncing_changes(const zdmc_table *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nchanges; i++)
		n += t->changes[i].kind != ZDMC_ACTION_RENAME;
	return n;
}

/* $1..$n of the statements of change c: key, old column, shared columns,
 * new columns, the marker. */
static lower_names
lower_cdc_params(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c)
{
	const zdmc_options *o = &ctx->model->options;
	lower_names params = {NULL, 0, 0};
	lower_names fwd = lower_shared_columns(ctx, t, c, false);
	lower_names rev = lower_shared_columns(ctx, t, c, true);
	size_t i;

	for (i = 0; i < o->nkey; i++)
		lower_names_add(ctx, &params, o->key[i].name);
	lower_names_add(ctx, &params, c->column);
	for (i = 0; i < fwd.n; i++)
		lower_names_add(ctx, &params, fwd.v[i]);
	for (i = 0; i < rev.n; i++)
		lower_names_add(ctx, &params, rev.v[i]);
	for (i = 0; i < c->ncols; i++)
		lower_names_add(ctx, &params, c->cols[i].physical);
	lower_names_add(ctx, &params, PENDING_COLUMN);
	return params;
}

/*
 * Both statements apply a set of events at once (one statement per batch
 * instead of one per event: the executor's per-statement cost was most of
 * the sync's time).  $1 is a JSON array, one object per event: the params
 * by name, as text or null (json and jsonb values as JSON), and for
 * reverse a "zdm_touched" object of booleans.  jsonb_populate_record casts
 * each value to its column's type, so the compiler needs no types; the CTE
 * is MATERIALIZED so that it runs once, not once per reference.  Its
 * columns are named zdm_*, so the transforms' unqualified column names
 * still resolve to the table.
 */
static const char *
lower_cdc_with(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_arena_printf(
		ctx->arena,
		"WITH zdm_event AS MATERIALIZED (\n"
		"  SELECT pg_catalog.jsonb_populate_record(NULL::%s, zdm_e.j) AS zdm_row,\n"
		"         zdm_e.j -> 'zdm_touched' AS zdm_touched\n"
		"    FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) AS zdm_e(j))\n",
		t->qname);
}

/* The event's value of a param column. */
static const char *
lower_cdc_event(lower_ctx *ctx, const char *column)
{
	return zdmc_arena_printf(ctx->arena, "(zdm_event.zdm_row).%s",
	                         Q(ctx, column));
}

/* Whether the event set a new column (reverse's merge). */
static const char *
lower_cdc_touched(lower_ctx *ctx, const char *column)
{
	return zdmc_arena_printf(
		ctx->arena, "(zdm_event.zdm_touched ->> %s)::pg_catalog.bool",
		zdmc_ident_literal(ctx->arena, column));
}

/*
 * WHERE of both statements: the row by its key, and only while its synced
 * columns still hold the event's after-image.  In a table with several
 * changes, the statement of an earlier change of the same event has already
 * cleared the marker, so there the guard also accepts a cleared marker and
 * the statements read the event's marker ($k) instead of the row's.
 */
static const char *
lower_cdc_guard(lower_ctx *ctx, const zdmc_table *t, const lower_names *params)
{
	const zdmc_options *o = &ctx->model->options;
	zdmc_buf w;
	size_t i;

	zdmc_buf_init(&w, ctx->arena);
	zdmc_buf_puts(&w, "  FROM zdm_event\n");
	for (i = 0; i < params->n; i++) {
		const char *col = Q(ctx, params->v[i]);
		const char *ev = lower_cdc_event(ctx, params->v[i]);

		if (i < o->nkey)
			zdmc_buf_printf(&w, "%s %s = %s\n",
			                i ? "   AND" : " WHERE", col, ev);
		else if (strcmp(params->v[i], PENDING_COLUMN) == 0 &&
		         lower_syncing_changes(t) > 1)
			zdmc_buf_printf(
				&w,
				"   AND (%s IS NOT DISTINCT FROM %s OR NOT %s)\n",
				col, ev, col);
		else
			zdmc_buf_printf(&w,
			                "   AND %s IS NOT DISTINCT FROM %s\n",
			                col, ev);
	}
	return zdmc_buf_cstr(&w);
}

/* The marker as the statements read it: the row's, or (several changes)
 * the event's. */
static const char *
lower_cdc_pending(lower_ctx *ctx, const zdmc_table *t,
                  const lower_names *params, const char *prefix)
{
	(void)params;
	if (lower_syncing_changes(t) > 1)
		return lower_cdc_event(ctx, PENDING_COLUMN);
	return zdmc_arena_printf(ctx->arena, "%s%s", prefix, PENDING_COLUMN);
}

static const char *
lower_cdc_forward(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                  const lower_names *params)
{
	zdmc_buf sql;
	size_t i;

	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET ", lower_cdc_with(ctx, t),
	                t->qname);
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&sql, "%s = (%s),\n       ",
		                Q(ctx, c->cols[i].physical),
		                lower_forward(ctx, t, &c->cols[i], ""));
	zdmc_buf_printf(&sql, "%s = false\n%s   AND (%s", PENDING_COLUMN,
	                lower_cdc_guard(ctx, t, params),
	                lower_cdc_pending(ctx, t, params, ""));
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&sql, "\n        OR %s IS DISTINCT FROM (%s)",
		                Q(ctx, c->cols[i].physical),
		                lower_forward(ctx, t, &c->cols[i], ""));
	zdmc_buf_puts(&sql, ")");
	return zdmc_buf_cstr(&sql);
}

/*
 * The old column from the new shape.  On a row never backfilled, a new
 * column the event did not set first comes from the old shape (as the
 * trigger does), so the assignment reads merged values: the inner derived
 * table is named with the physical names, and the reverse expression,
 * written in physical names, resolves to them.  Irreversible: only that
 * merge and the marker, the old column is never written.
 */
static const char *
lower_cdc_reverse(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                  const lower_names *params)
{
	const char *outer =
		zdmc_arena_printf(ctx->arena, "%s.", Q(ctx, t->name));
	const char *pending_in = lower_cdc_pending(ctx, t, params, outer);
	zdmc_buf sql, cols;
	size_t i;

	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_init(&cols, ctx->arena);
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&cols, "%s%s", i ? ", " : "",
		                Q(ctx, c->cols[i].physical));
	zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET (%s, ",
	                lower_cdc_with(ctx, t), t->qname, zdmc_buf_cstr(&cols));
	if (!c->irreversible)
		zdmc_buf_printf(&sql, "%s, ", Q(ctx, c->column));
	zdmc_buf_printf(&sql, "%s) =\n       (SELECT %s,\n               ",
	                PENDING_COLUMN, zdmc_buf_cstr(&cols));
	if (!c->irreversible)
		zdmc_buf_printf(&sql, "(%s), ", lower_reverse(ctx, t, c, ""));
	zdmc_buf_puts(&sql, "false\n          FROM (SELECT ");
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(
			&sql,
			"%sCASE WHEN %s AND NOT %s THEN (%s) ELSE %s%s END",
			i ? ",\n                       " : "", pending_in,
			lower_cdc_touched(ctx, c->cols[i].physical),
			lower_forward(ctx, t, &c->cols[i], outer), outer,
			Q(ctx, c->cols[i].physical));
	zdmc_buf_printf(&sql,
	                ")\n               AS zdm_merged(%s))\n%s   AND (%s",
	                zdmc_buf_cstr(&cols), lower_cdc_guard(ctx, t, params),
	                lower_cdc_pending(ctx, t, params, ""));
	if (!c->irreversible)
		zdmc_buf_printf(&sql, " OR %s IS DISTINCT FROM (%s)",
		                Q(ctx, c->column),
		                lower_reverse(ctx, t, c, ""));
	zdmc_buf_puts(&sql, ")");
	return zdmc_buf_cstr(&sql);
}

static zdmc_plan_cdc_rule *
lower_cdc_rule(lower_ctx *ctx, zdmc_plan_cdc_rule ***tail, zdmc_cdc_cond cond,
               const char *apply)
{
	zdmc_plan_cdc_rule *r = ZDMC_NEW(ctx->arena, zdmc_plan_cdc_rule);

	r->cond = cond;
	r->apply = apply;
	**tail = r;
	*tail = &r->next;
	return r;
}

static void
lower_cdc_rule_cols(lower_ctx *ctx, zdmc_plan_cdc_rule ***tail,
                    zdmc_cdc_cond cond, const lower_names *cols,
                    const char *apply)
{
	zdmc_plan_cdc_rule *r;

	if (cols->n == 0)
		return;
	r = lower_cdc_rule(ctx, tail, cond, apply);
	r->columns = cols->v;
	r->ncolumns = cols->n;
}

static zdmc_plan_cdc_sync *
lower_cdc_sync(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c)
{
	zdmc_plan_cdc_sync *s = ZDMC_NEW(ctx->arena, zdmc_plan_cdc_sync);
	lower_names params = lower_cdc_params(ctx, t, c);
	lower_names news = {NULL, 0, 0}, one = {NULL, 0, 0},
		    marker = {NULL, 0, 0};
	lower_names fwd = lower_shared_columns(ctx, t, c, false);
	lower_names rev = lower_shared_columns(ctx, t, c, true);
	zdmc_plan_cdc_rule **tail;
	size_t i;

	for (i = 0; i < c->ncols; i++)
		lower_names_add(ctx, &news, c->cols[i].physical);
	lower_names_add(ctx, &one, c->column);
	lower_names_add(ctx, &marker, PENDING_COLUMN);
	s->at = lower_at(ctx, c->action->offset);
	s->params = params.v;
	s->nparams = params.n;
	s->touched = news.v;
	s->ntouched = news.n;
	/* INSERT: only the new version writes zdm_new_* columns */
	tail = &s->on_insert;
	lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_NOT_NULL, &news, "reverse");
	lower_cdc_rule(ctx, &tail, ZDMC_CDC_ALWAYS, "forward");
	/* UPDATE, as the trigger: its WHEN clause first (the backfill and
	 * the sync's own writes flip the marker), then who wrote the row */
	tail = &s->on_update;
	lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &marker, "nothing");
	lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &one, "forward");
	lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &news, "reverse");
	lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &fwd, "forward");
	if (!c->irreversible)
		lower_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &rev,
		                    "reverse");
	lower_cdc_rule(ctx, &tail, ZDMC_CDC_PENDING, "forward");
	lower_cdc_rule(ctx, &tail, ZDMC_CDC_ALWAYS, "nothing");
	s->forward = lower_cdc_forward(ctx, t, c, &params);
	s->reverse = lower_cdc_reverse(ctx, t, c, &params);
	return s;
}

static void
lower_cdc(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	zdmc_plan_cdc *cdc = ZDMC_NEW(ctx->arena, zdmc_plan_cdc);
	zdmc_plan_cdc_table **ttail = &cdc->tables;
	const char **key;
	size_t i, j;

	cdc->source = m->options.cdc_source;
	if (lower_is_native(ctx)) {
		cdc->publication = lower_cdc_name(ctx);
		cdc->slot = lower_cdc_name(ctx);
		cdc->origin = lower_cdc_name(ctx);
	}
	cdc->max_lag_ms = m->options.max_lag_ms;
	cdc->stable_for_ms = m->options.stable_for_ms;
	key = zdmc_arena_alloc(ctx->arena,
	                       (m->options.nkey + 1) * sizeof(char *));
	for (i = 0; i < m->options.nkey; i++)
		key[i] = m->options.key[i].name;
	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];
		zdmc_plan_cdc_table *pt;
		zdmc_plan_cdc_sync **stail;

		if (!t->needs_sync)
			continue;
		pt = ZDMC_NEW(ctx->arena, zdmc_plan_cdc_table);
		pt->table = t->qname;
		pt->key = key;
		pt->nkey = m->options.nkey;
		stail = &pt->syncs;
		for (j = 0; j < t->nchanges; j++) {
			if (t->changes[j].kind == ZDMC_ACTION_RENAME)
				continue;
			*stail = lower_cdc_sync(ctx, t, &t->changes[j]);
			stail = &(*stail)->next;
		}
		*ttail = pt;
		ttail = &pt->next;
	}
	ctx->plan->cdc = cdc;
}

/* Wait for zdm sync: until its lag holds under max_lag for stable_for, or
 * (barrier) until it has applied everything committed before the step. */
static void
lower_catch_up(lower_ctx *ctx, bool barrier, const char *description)
{
	zdmc_plan_step *s = lower_step(ctx, ZDMC_STEP_CATCH_UP, NULL,
	                               description, NULL, NULL);

	s->max_lag_ms = ctx->model->options.max_lag_ms;
	s->stable_for_ms = ctx->model->options.stable_for_ms;
	s->barrier = barrier;
}

/* Drop the slot, ending the walsender of a zdm sync that still reads it
 * (an active slot cannot be dropped); retried for about 10 s. */
static const char *
lower_drop_slot_sql(lower_ctx *ctx)
{
	const char *lit = zdmc_ident_literal(ctx->arena, lower_cdc_name(ctx));

	return zdmc_arena_printf(
		ctx->arena,
		"DO $zdm$\n"
		"DECLARE\n"
		"    pid integer;\n"
		"BEGIN\n"
		"    FOR attempt IN 1..100 LOOP\n"
		"        SELECT active_pid INTO pid FROM pg_catalog.pg_replication_slots\n"
		"         WHERE slot_name = %s;\n"
		"        IF NOT FOUND THEN\n"
		"            RETURN;\n"
		"        END IF;\n"
		"        IF pid IS NULL THEN\n"
		"            BEGIN\n"
		"                PERFORM pg_catalog.pg_drop_replication_slot(%s);\n"
		"                RETURN;\n"
		"            EXCEPTION WHEN object_in_use THEN\n"
		"                NULL; -- a walsender took it again: end it too\n"
		"            END;\n"
		"        ELSE\n"
		"            PERFORM pg_catalog.pg_terminate_backend(pid);\n"
		"        END IF;\n"
		"        PERFORM pg_catalog.pg_sleep(0.1);\n"
		"    END LOOP;\n"
		"    RAISE EXCEPTION 'replication slot %%s is still in use after 10 s', %s;\n"
		"END\n"
		"$zdm$",
		lit, lit, lit);
}

/* Drop the origin; a zdm sync that just stopped may hold it a moment
 * longer (55006, object_in_use), so retry for about 10 s. */
static const char *
lower_drop_origin_sql(lower_ctx *ctx)
{
	const char *lit = zdmc_ident_literal(ctx->arena, lower_cdc_name(ctx));

	return zdmc_arena_printf(
		ctx->arena,
		"DO $zdm$\n"
		"BEGIN\n"
		"    FOR attempt IN 1..100 LOOP\n"
		"        IF NOT EXISTS (SELECT FROM pg_catalog.pg_replication_origin\n"
		"                        WHERE roname = %s) THEN\n"
		"            RETURN;\n"
		"        END IF;\n"
		"        BEGIN\n"
		"            PERFORM pg_catalog.pg_replication_origin_drop(%s);\n"
		"            RETURN;\n"
		"        EXCEPTION WHEN object_in_use THEN\n"
		"            PERFORM pg_catalog.pg_sleep(0.1);\n"
		"        END;\n"
		"    END LOOP;\n"
		"    RAISE EXCEPTION 'replication origin %%s is still in use after 10 s', %s;\n"
		"END\n"
		"$zdm$",
		lit, lit, lit);
}

static const char *
lower_drop_publication_sql(lower_ctx *ctx)
{
	return zdmc_arena_printf(ctx->arena, "DROP PUBLICATION %s",
	                         Q(ctx, lower_cdc_name(ctx)));
}

/* expand, native: the origin, the publication, the slot, each alone and
 * before any table changes, so every write after expand is in the slot. */
static void
lower_cdc_expand_source(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	const char *name = lower_cdc_name(ctx);
	const char *lit = zdmc_ident_literal(ctx->arena, name);
	zdmc_buf tables;
	size_t i;

	zdmc_buf_init(&tables, ctx->arena);
	for (i = 0; i < m->ntables; i++)
		if (m->tables[i].needs_sync)
			zdmc_buf_printf(&tables, "%s%s", tables.len ? ", " : "",
			                m->tables[i].qname);
	lower_step(
		ctx, ZDMC_STEP_SQL, NULL,
		zdmc_arena_printf(
			ctx->arena,
			"create replication origin %s, which marks zdm sync's own writes",
			name),
		zdmc_arena_printf(
			ctx->arena,
			"SELECT pg_catalog.pg_replication_origin_create(%s)",
			lit),
		lower_drop_origin_sql(ctx));
	lower_step(ctx, ZDMC_STEP_SQL, NULL,
	           zdmc_arena_printf(ctx->arena, "create publication %s for %s",
	                             name, zdmc_buf_cstr(&tables)),
	           zdmc_arena_printf(ctx->arena,
	                             "CREATE PUBLICATION %s FOR TABLE %s",
	                             Q(ctx, name), zdmc_buf_cstr(&tables)),
	           lower_drop_publication_sql(ctx));
	lower_step(
		ctx, ZDMC_STEP_SQL, NULL,
		zdmc_arena_printf(
			ctx->arena,
			"create logical replication slot %s (pgoutput); waits for transactions running now to end",
			name),
		zdmc_arena_printf(
			ctx->arena,
			"SELECT pg_catalog.pg_create_logical_replication_slot(%s, 'pgoutput')",
			lit),
		lower_drop_slot_sql(ctx));
}

/* The old columns whose NOT NULL expand drops: those of reversible changes,
 * which a new-version INSERT through the view cannot fill (zdm sync does,
 * within the lag). */
static lower_names
lower_cdc_old_columns(lower_ctx *ctx, const zdmc_table *t)
{
	lower_names cols = {NULL, 0, 0};

	for (size_t i = 0; i < t->nchanges; i++)
		if (t->changes[i].kind != ZDMC_ACTION_RENAME &&
		    !t->changes[i].irreversible)
			lower_names_add(ctx, &cols, t->changes[i].column);
	return cols;
}

/* Reads what expand saved in the comment on the marker into "saved". */
static const char *
lower_cdc_read_saved(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_arena_printf(
		ctx->arena,
		"    SELECT pg_catalog.col_description(a.attrelid, a.attnum)::pg_catalog.jsonb\n"
		"      INTO saved\n"
		"      FROM pg_catalog.pg_attribute AS a\n"
		"     WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = %s;\n",
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, PENDING_COLUMN));
}

static const char *
lower_cdc_restore_identity(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_arena_printf(
		ctx->arena,
		"    CASE saved->>'replident'\n"
		"    WHEN 'd' THEN\n"
		"        ALTER TABLE %s REPLICA IDENTITY DEFAULT;\n"
		"    WHEN 'n' THEN\n"
		"        ALTER TABLE %s REPLICA IDENTITY NOTHING;\n"
		"    WHEN 'i' THEN\n"
		"        EXECUTE pg_catalog.format('ALTER TABLE %%s REPLICA IDENTITY USING INDEX %%I',\n"
		"                                  %s, saved->>'replident_index');\n"
		"    ELSE\n"
		"        NULL; -- it was FULL before zdm\n"
		"    END CASE;\n",
		t->qname, t->qname, zdmc_ident_literal(ctx->arena, t->qname));
}

/*
 * expand, per table: a change event must carry the whole old row to tell an
 * old-version write from a new-version one (REPLICA IDENTITY FULL), and a
 * new-version INSERT must be possible without the old columns.  What was
 * there before is saved as JSON in the comment on the marker, so that
 * rollback can restore it.
 */
static void
lower_cdc_expand_table(lower_ctx *ctx, const zdmc_table *t)
{
	lower_names old = lower_cdc_old_columns(ctx, t);
	zdmc_buf in, drops, restore, names;
	const char *lit = zdmc_ident_literal(ctx->arena, t->qname);
	size_t i;

	zdmc_buf_init(&names, ctx->arena);
	for (i = 0; i < old.n; i++)
		zdmc_buf_printf(&names, "%s%s", i ? ", " : "", old.v[i]);
	zdmc_buf_init(&in, ctx->arena);
	zdmc_buf_init(&drops, ctx->arena);
	zdmc_buf_init(&restore, ctx->arena);
	for (i = 0; i < old.n; i++) {
		const char *col = zdmc_ident_literal(ctx->arena, old.v[i]);

		zdmc_buf_printf(&in, "%s%s", i ? ", " : "", col);
		zdmc_buf_printf(
			&drops,
			"    IF saved->'not_null' ? %s THEN\n"
			"        ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;\n"
			"    END IF;\n",
			col, t->qname, Q(ctx, old.v[i]));
		zdmc_buf_printf(
			&restore,
			"    IF saved->'not_null' ? %s THEN\n"
			"        SELECT count(*) INTO missing FROM %s WHERE %s IS NULL;\n"
			"        IF missing > 0 THEN\n"
			"            RAISE EXCEPTION USING\n"
			"                MESSAGE = pg_catalog.format('cannot restore NOT NULL on %%s of %%s: %%s rows have no value there', %s, %s, missing),\n"
			"                HINT = 'new-version inserts left it for zdm sync to fill: run zdm sync until it has caught up, or fill those rows, then roll back again';\n"
			"        END IF;\n"
			"        ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n"
			"    END IF;\n",
			col, t->qname, Q(ctx, old.v[i]), col, lit, t->qname,
			Q(ctx, old.v[i]));
	}
	lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"set REPLICA IDENTITY FULL on %s%s%s, saving what was there for rollback",
			t->qname, old.n ? " and drop NOT NULL from " : "",
			old.n ? zdmc_buf_cstr(&names) : ""),
		zdmc_arena_printf(
			ctx->arena,
			"DO $zdm$\n"
			"DECLARE\n"
			"    saved pg_catalog.jsonb;\n"
			"BEGIN\n"
			"    -- what rollback restores, kept with the table: the replica identity\n"
			"    -- (and its index) and the old columns that are NOT NULL\n"
			"    SELECT pg_catalog.jsonb_build_object(\n"
			"               'replident', c.relreplident::pg_catalog.text,\n"
			"               'replident_index', (SELECT ic.relname::pg_catalog.text\n"
			"                                     FROM pg_catalog.pg_index AS i\n"
			"                                     JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid\n"
			"                                    WHERE i.indrelid = c.oid AND i.indisreplident),\n"
			"               'not_null', (SELECT coalesce(pg_catalog.jsonb_agg(a.attname::pg_catalog.text ORDER BY a.attnum),\n"
			"                                            '[]'::pg_catalog.jsonb)\n"
			"                              FROM pg_catalog.pg_attribute AS a\n"
			"                             WHERE a.attrelid = c.oid AND a.attnotnull AND NOT a.attisdropped\n"
			"                               AND a.attname = ANY (ARRAY[%s]::pg_catalog.name[])))\n"
			"      INTO saved\n"
			"      FROM pg_catalog.pg_class AS c\n"
			"     WHERE c.oid = %s::pg_catalog.regclass;\n"
			"    EXECUTE pg_catalog.format('COMMENT ON COLUMN %%s.%%I IS %%L', %s, %s, saved::pg_catalog.text);\n"
			"    -- a change event must carry the whole old row\n"
			"    ALTER TABLE %s REPLICA IDENTITY FULL;\n"
			"%s"
			"END\n"
			"$zdm$",
			in.len ? zdmc_buf_cstr(&in) : "NULL", lit, lit,
			zdmc_ident_literal(ctx->arena, PENDING_COLUMN),
			t->qname, zdmc_buf_cstr(&drops)),
		zdmc_arena_printf(
			ctx->arena,
			"DO $zdm$\n"
			"DECLARE\n"
			"    saved pg_catalog.jsonb;\n"
			"    missing bigint;\n"
			"BEGIN\n"
			"%s"
			"    IF saved IS NULL THEN\n"
			"        RETURN; -- nothing was saved, so nothing was changed\n"
			"    END IF;\n"
			"%s%s"
			"END\n"
			"$zdm$",
			lower_cdc_read_saved(ctx, t), zdmc_buf_cstr(&restore),
			lower_cdc_restore_identity(ctx, t)));
}

/* contract: the table's replica identity as it was, before the marker (and
 * its comment) is dropped. */
static void
lower_cdc_contract_identity(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_plan_step *s = lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"restore the replica identity of %s saved at expand",
			t->qname),
		zdmc_arena_printf(ctx->arena,
	                          "DO $zdm$\n"
	                          "DECLARE\n"
	                          "    saved pg_catalog.jsonb;\n"
	                          "BEGIN\n"
	                          "%s"
	                          "    IF saved IS NULL THEN\n"
	                          "        RETURN;\n"
	                          "    END IF;\n"
	                          "%s"
	                          "END\n"
	                          "$zdm$",
	                          lower_cdc_read_saved(ctx, t),
	                          lower_cdc_restore_identity(ctx, t)),
		NULL);

	s->point_of_no_return = true;
}

/* A check's in_flight statements: the offending row versions, and the
 * count of those that still offend after a barrier. */
static void
lower_in_flight(lower_ctx *ctx, zdmc_plan_step *s, const zdmc_table *t,
                const char *cond)
{
	s->in_flight_offenders = zdmc_arena_printf(
		ctx->arena,
		"SELECT ctid::text, xmin::text FROM %s WHERE %s LIMIT 1001",
		t->qname, cond);
	s->in_flight_recheck = zdmc_arena_printf(
		ctx->arena,
		"SELECT count(*) FROM %s WHERE ctid = ANY($1::pg_catalog.tid[])\n"
		"   AND (ctid::text || '/' || xmin::text) = ANY($2::text[])\n"
		"   AND (%s)",
		t->qname, cond);
}

static void
lower_expand(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	const char *schema = Q(ctx, m->version_schema);
	size_t i, j, k;

	lower_phase(ctx, ZDMC_PHASE_EXPAND);
	lower_approval_gate(ctx, ZDMC_PHASE_EXPAND);
	if (lower_is_native(ctx))
		lower_cdc_expand_source(ctx);
	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];

		ctx->tx_label =
			zdmc_arena_printf(ctx->arena, "expand %s", t->qname);
		if (i == 0)
			lower_step(
				ctx, ZDMC_STEP_SQL, NULL,
				zdmc_arena_printf(
					ctx->arena,
					"create schema %s for the new version's views",
					m->version_schema),
				zdmc_arena_printf(ctx->arena,
			                          "CREATE SCHEMA %s", schema),
				zdmc_arena_printf(ctx->arena, "DROP SCHEMA %s",
			                          schema));
		if (t->needs_sync) {
			zdmc_buf add, drop, names;
			const char *sep = "";

			zdmc_buf_init(&add, ctx->arena);
			zdmc_buf_init(&drop, ctx->arena);
			zdmc_buf_init(&names, ctx->arena);
			zdmc_buf_printf(&add, "ALTER TABLE %s", t->qname);
			zdmc_buf_printf(&drop, "ALTER TABLE %s", t->qname);
			for (j = 0; j < t->nchanges; j++) {
				const zdmc_change *c = &t->changes[j];

				for (k = 0; k < c->ncols; k++) {
					const char *p =
						Q(ctx, c->cols[k].physical);

					zdmc_buf_printf(
						&add,
						"%s\n    ADD COLUMN %s %s", sep,
						p, c->cols[k].type);
					zdmc_buf_printf(
						&drop, "%s\n    DROP COLUMN %s",
						sep, p);
					sep = ",";
					zdmc_buf_printf(&names, "%s, ",
					                c->cols[k].physical);
				}
			}
			zdmc_buf_printf(
				&add,
				",\n    ADD COLUMN %s boolean NOT NULL DEFAULT true",
				PENDING_COLUMN);
			zdmc_buf_printf(&drop, ",\n    DROP COLUMN %s",
			                PENDING_COLUMN);
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"add %sand the backfill marker %s to %s (nullable and a constant default: no table rewrite)",
					zdmc_buf_cstr(&names), PENDING_COLUMN,
					t->qname),
				zdmc_buf_cstr(&add), zdmc_buf_cstr(&drop));
		}
		if (t->needs_sync && lower_is_cdc(ctx))
			lower_cdc_expand_table(ctx, t);
		if (t->needs_sync && !lower_is_cdc(ctx)) {
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"create the function that keeps both shapes of %s in sync",
					t->qname),
				lower_sync_function_sql(ctx, t),
				zdmc_arena_printf(ctx->arena,
			                          "DROP FUNCTION %s()",
			                          lower_sync_function(ctx, t)));
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"run it on every insert into %s",
					t->qname),
				zdmc_arena_printf(
					ctx->arena,
					"CREATE TRIGGER %s BEFORE INSERT ON %s\n"
					"    FOR EACH ROW EXECUTE FUNCTION %s()",
					INSERT_TRIGGER, t->qname,
					lower_sync_function(ctx, t)),
				zdmc_arena_printf(ctx->arena,
			                          "DROP TRIGGER %s ON %s",
			                          INSERT_TRIGGER, t->qname));
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"run it on updates of %s that change a synced column (the backfill's writes do not match the WHEN clause)",
					t->qname),
				zdmc_arena_printf(
					ctx->arena,
					"CREATE TRIGGER %s BEFORE UPDATE ON %s\n"
					"    FOR EACH ROW\n"
					"    WHEN (%s)\n"
					"    EXECUTE FUNCTION %s()",
					UPDATE_TRIGGER, t->qname,
					lower_update_when(ctx, t),
					lower_sync_function(ctx, t)),
				zdmc_arena_printf(ctx->arena,
			                          "DROP TRIGGER %s ON %s",
			                          UPDATE_TRIGGER, t->qname));
		}
		lower_step(ctx, ZDMC_STEP_SQL, t,
		           zdmc_arena_printf(
				   ctx->arena,
				   "create view %s.%s: %s in the new shape",
				   m->version_schema, t->name, t->qname),
		           lower_view_sql(ctx, t),
		           zdmc_arena_printf(ctx->arena, "DROP VIEW %s",
		                             lower_view(ctx, t)));
	}
	ctx->tx_label = NULL;
}

/* ---- backfill ------------------------------------------------------------ */

static void
lower_backfill(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	size_t i, j, k;

	lower_phase(ctx, ZDMC_PHASE_BACKFILL);
	lower_approval_gate(ctx, ZDMC_PHASE_BACKFILL);
	if (lower_is_cdc(ctx))
		lower_catch_up(
			ctx, false,
			"wait until zdm sync is caught up: writes since expand reach both shapes before the backfill");
	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];
		zdmc_buf sql, names;
		zdmc_plan_step *s;

		if (!t->needs_sync)
			continue;
		zdmc_buf_init(&sql, ctx->arena);
		zdmc_buf_init(&names, ctx->arena);
		zdmc_buf_printf(&sql, "UPDATE %s\n   SET ", t->qname);
		for (j = 0; j < t->nchanges; j++) {
			const zdmc_change *c = &t->changes[j];

			for (k = 0; k < c->ncols; k++) {
				zdmc_buf_printf(
					&sql, "%s = (%s),\n       ",
					Q(ctx, c->cols[k].physical),
					lower_forward(ctx, t, &c->cols[k], ""));
				zdmc_buf_printf(&names, "%s%s",
				                names.len ? ", " : "",
				                c->cols[k].name);
			}
		}
		zdmc_buf_printf(
			&sql,
			"%s = false\n"
			" WHERE ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid\n"
			"   AND %s",
			PENDING_COLUMN, PENDING_COLUMN);
		/* cdc: a new-version write the sync has yet to carry back must
		 * not be overwritten; its new columns are not all NULL */
		for (j = 0; lower_is_cdc(ctx) && j < t->nchanges; j++)
			for (k = 0; k < t->changes[j].ncols; k++)
				zdmc_buf_printf(
					&sql, "\n   AND %s IS NULL",
					Q(ctx, t->changes[j].cols[k].physical));
		s = lower_step(
			ctx, ZDMC_STEP_BACKFILL, t,
			zdmc_arena_printf(
				ctx->arena,
				"compute %s for the rows of %s that no write has synced yet, in batches of pages",
				zdmc_buf_cstr(&names), t->qname),
			zdmc_buf_cstr(&sql), NULL);
		s->key = "ctid";
		s->batch_size = m->options.batch_size;
		s->batch_pause_ms = m->options.batch_pause_ms;
	}
}

/* ---- verify ------------------------------------------------------------ */

/* cond: the check's condition on rows of t, for in_flight in a cdc plan
 * (NULL: a count that changes in flight cannot make wrong) */
static void
lower_check(lower_ctx *ctx, const zdmc_table *t, const char *description,
            const char *from_where, const char *examples, const char *cond)
{
	zdmc_plan_step *s;

	s = lower_step(ctx, ZDMC_STEP_CHECK, t, description,
	               zdmc_arena_printf(ctx->arena, "SELECT count(*) FROM %s",
	                                 from_where),
	               NULL);
	s->expect = 0;
	s->examples_sql = examples;
	if (cond != NULL && lower_is_cdc(ctx))
		lower_in_flight(ctx, s, t, cond);
}

static void
lower_not_null_checks(lower_ctx *ctx, const zdmc_table *t,
                      const zdmc_newcol *col)
{
	const char *con = lower_nn_constraint(ctx, col);
	const char *add = zdmc_arena_printf(
		ctx->arena,
		"ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
		t->qname, con, Q(ctx, col->physical));
	const char *validate = zdmc_arena_printf(
		ctx->arena, "ALTER TABLE %s VALIDATE CONSTRAINT %s", t->qname,
		con);
	const char *was_not_null;

	if (col->not_null) {
		lower_step(
			ctx, ZDMC_STEP_SQL, t,
			zdmc_arena_printf(
				ctx->arena,
				"require %s NOT NULL, first as a check NOT VALID (no scan under the lock)",
				col->name),
			add,
			zdmc_arena_printf(ctx->arena,
		                          "ALTER TABLE %s DROP CONSTRAINT %s",
		                          t->qname, con));
		lower_step(
			ctx, ZDMC_STEP_SQL, t,
			zdmc_arena_printf(
				ctx->arena,
				"validate %s (scans the table without blocking writes)",
				con),
			validate, NULL);
		return;
	}
	/* type change: only if the old column is NOT NULL, which the catalog
	 * knows and the compiler does not.  A cdc plan dropped that NOT NULL
	 * at expand (lower_cdc_expand_table) and saved it in the comment on
	 * the marker: the saved list says it too */
	was_not_null =
		lower_is_cdc(ctx)
			? zdmc_arena_printf(
				  ctx->arena,
				  "\n        OR coalesce((SELECT (pg_catalog.col_description(a.attrelid, a.attnum)::pg_catalog.jsonb -> 'not_null') ? %s\n"
				  "                       FROM pg_catalog.pg_attribute AS a\n"
				  "                      WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = '" PENDING_COLUMN
				  "'), false)",
				  zdmc_ident_literal(ctx->arena, col->name),
				  zdmc_ident_literal(ctx->arena, t->qname))
			: "";
	lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"if %s is NOT NULL, require the same of its new type, first as a check NOT VALID",
			col->name),
		zdmc_arena_printf(
			ctx->arena,
			"DO $zdm$\n"
			"BEGIN\n"
			"    IF (SELECT attnotnull FROM pg_catalog.pg_attribute\n"
			"         WHERE attrelid = %s::pg_catalog.regclass AND attname = %s)%s THEN\n"
			"        %s;\n"
			"    END IF;\n"
			"END\n"
			"$zdm$",
			zdmc_ident_literal(ctx->arena, t->qname),
			zdmc_ident_literal(ctx->arena, col->name), was_not_null,
			add),
		zdmc_arena_printf(ctx->arena,
	                          "ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s",
	                          t->qname, con));
	lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"validate %s if it was added (scans the table without blocking writes)",
			con),
		zdmc_arena_printf(
			ctx->arena,
			"DO $zdm$\n"
			"BEGIN\n"
			"    IF EXISTS (SELECT FROM pg_catalog.pg_constraint\n"
			"                WHERE conrelid = %s::pg_catalog.regclass AND conname = %s) THEN\n"
			"        %s;\n"
			"    END IF;\n"
			"END\n"
			"$zdm$",
			zdmc_ident_literal(ctx->arena, t->qname),
			zdmc_ident_literal(ctx->arena,
	                                   zdmc_arena_printf(ctx->arena,
	                                                     "zdm_nn_%s",
	                                                     col->name)),
			validate),
		NULL);
}

static void lower_not_null_table(lower_ctx *ctx, const zdmc_table *t);

static void
lower_verify_table(lower_ctx *ctx, const zdmc_table *t)
{
	const zdmc_model *m = ctx->model;
	size_t j, k;

	lower_check(
		ctx, t,
		zdmc_arena_printf(
			ctx->arena,
			"no row of %s is left unsynced (the backfill reached every row)",
			t->qname),
		zdmc_arena_printf(ctx->arena, "%s WHERE %s", t->qname,
	                          PENDING_COLUMN),
		zdmc_arena_printf(ctx->arena,
	                          "SELECT ctid FROM %s WHERE %s LIMIT 5",
	                          t->qname, PENDING_COLUMN),
		PENDING_COLUMN);
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];
		zdmc_buf forward;
		const char *where;

		if (c->kind == ZDMC_ACTION_RENAME)
			continue;
		zdmc_buf_init(&forward, ctx->arena);
		for (k = 0; k < c->ncols; k++) {
			const zdmc_newcol *col = &c->cols[k];
			const char *f = lower_forward(ctx, t, col, "");

			zdmc_buf_printf(&forward,
			                "%s%s IS NOT DISTINCT FROM (%s)",
			                k ? "\n        AND " : "",
			                Q(ctx, col->physical), f);
			/* irreversible: a NULL the new version wrote stays NULL
			 * and the old column keeps its value, so no such check */
			if (c->irreversible)
				continue;
			/* a NULL the new version wrote is fine when the old
			 * column was computed from it */
			where = zdmc_arena_printf(
				ctx->arena,
				"%s IS NULL AND (%s) IS NOT NULL\n   AND %s IS DISTINCT FROM (%s)",
				Q(ctx, col->physical), f, Q(ctx, c->column),
				lower_reverse(ctx, t, c, ""));
			lower_check(
				ctx, t,
				zdmc_arena_printf(
					ctx->arena,
					"%s is never NULL where its using expression is not",
					col->name),
				zdmc_arena_printf(ctx->arena, "%s WHERE %s",
			                          t->qname, where),
				zdmc_arena_printf(
					ctx->arena,
					"SELECT ctid FROM %s WHERE %s LIMIT 5",
					t->qname, where),
				where);
		}
		if (c->irreversible)
			continue; /* the old shape goes stale by design: no parity */
		where = zdmc_arena_printf(
			ctx->arena,
			"NOT ((%s)\n       OR %s IS NOT DISTINCT FROM (%s))",
			zdmc_buf_cstr(&forward), Q(ctx, c->column),
			lower_reverse(ctx, t, c, ""));
		lower_check(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"every row agrees: the new columns equal using (old), or, where the new version wrote, %s equals reverse using (new)",
				c->column),
			zdmc_arena_printf(ctx->arena, "%s\n WHERE %s", t->qname,
		                          where),
			zdmc_arena_printf(
				ctx->arena,
				"SELECT ctid FROM %s\n WHERE %s\n LIMIT 5",
				t->qname, where),
			where);
		where = zdmc_arena_printf(
			ctx->arena, "%s IS DISTINCT FROM (%s)",
			Q(ctx, c->column), lower_round_trip(ctx, t, c));
		lower_check(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"reverse using gives %s back from using on a random sample of %ld rows (finds lossy transforms)",
				c->column, m->options.verify_sample),
			zdmc_arena_printf(
				ctx->arena,
				"(SELECT * FROM %s WHERE %s IS NOT NULL\n"
				"        ORDER BY pg_catalog.random() LIMIT %ld) AS sample\n"
				" WHERE %s",
				t->qname, Q(ctx, c->column),
				m->options.verify_sample, where),
			zdmc_arena_printf(
				ctx->arena,
				"SELECT ctid, %s, (%s) AS round_trip FROM %s\n"
				" WHERE %s IS NOT NULL AND %s\n LIMIT 5",
				Q(ctx, c->column), lower_round_trip(ctx, t, c),
				t->qname, Q(ctx, c->column), where),
			NULL);
	}
	/* with cdc an old-version INSERT leaves the new columns NULL until
	 * the sync fills them: NOT NULL waits for contract */
	if (!lower_is_cdc(ctx))
		lower_not_null_table(ctx, t);
}

/* The new columns' NOT NULL, as validated checks, and a check that they
 * are. */
static void
lower_not_null_table(lower_ctx *ctx, const zdmc_table *t)
{
	bool constraints = false;
	size_t j, k;

	/* NOT NULL after the counts: a row the backfill missed then fails a
	 * check that names it (exit 3 with examples), not VALIDATE (23514) */
	for (j = 0; j < t->nchanges; j++)
		for (k = 0; k < t->changes[j].ncols; k++) {
			const zdmc_newcol *col = &t->changes[j].cols[k];

			if (col->not_null || col->carry_not_null) {
				lower_not_null_checks(ctx, t, col);
				constraints = true;
			}
		}
	if (constraints)
		lower_check(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"every constraint zdm added to %s is validated",
				t->qname),
			zdmc_arena_printf(
				ctx->arena,
				"pg_catalog.pg_constraint\n"
				" WHERE conrelid = %s::pg_catalog.regclass\n"
				"   AND conname ~ '^zdm_' AND NOT convalidated",
				zdmc_ident_literal(ctx->arena, t->qname)),
			zdmc_arena_printf(
				ctx->arena,
				"SELECT conname FROM pg_catalog.pg_constraint\n"
				" WHERE conrelid = %s::pg_catalog.regclass\n"
				"   AND conname ~ '^zdm_' AND NOT convalidated",
				zdmc_ident_literal(ctx->arena, t->qname)),
			NULL);
}

static void
lower_verify(lower_ctx *ctx)
{
	size_t i;

	lower_phase(ctx, ZDMC_PHASE_VERIFY);
	lower_approval_gate(ctx, ZDMC_PHASE_VERIFY);
	if (lower_is_cdc(ctx))
		lower_catch_up(
			ctx, false,
			"wait until zdm sync is caught up, so the checks see few changes in flight");
	for (i = 0; i < ctx->model->ntables; i++)
		if (ctx->model->tables[i].needs_sync)
			lower_verify_table(ctx, &ctx->model->tables[i]);
}

/* ---- switch ------------------------------------------------------------- */

static void
lower_switch(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	zdmc_plan_step *s;
	bool irreversible = false;
	size_t i, j;

	for (i = 0; i < m->ntables; i++)
		for (j = 0; j < m->tables[i].nchanges; j++)
			irreversible |= m->tables[i].changes[j].irreversible;
	lower_phase(ctx, ZDMC_PHASE_SWITCH);
	if (lower_is_cdc(ctx))
		lower_catch_up(
			ctx, false,
			"wait until zdm sync is caught up before applications move");
	s = lower_step(
		ctx, ZDMC_STEP_GATE, NULL,
		zdmc_arena_printf(
			ctx->arena,
			"applications move to the new version (SET search_path = %s); old-version clients must stop before contract",
			ctx->plan->search_path),
		NULL, NULL);
	s->gate = "switch";
	s->approval = (m->options.approve & (1u << ZDMC_PHASE_SWITCH)) != 0;
	/* an irreversible change stops writing the old shape back, so once
	 * the new version writes, the old shape is stale */
	s->point_of_no_return = irreversible;
}

/* ---- contract ------------------------------------------------------------ */

static zdmc_plan_step *
lower_final_step(lower_ctx *ctx, const zdmc_table *t, const char *description,
                 const char *sql)
{
	zdmc_plan_step *s =
		lower_step(ctx, ZDMC_STEP_SQL, t, description, sql, NULL);

	s->point_of_no_return = true;
	return s;
}

static void
lower_contract_table(lower_ctx *ctx, const zdmc_table *t)
{
	size_t j, k;

	ctx->tx_label = zdmc_arena_printf(ctx->arena, "contract %s", t->qname);
	/* The view first: a query through it locks the view, then the table;
	 * taking the table first (DROP TRIGGER) and the view second would
	 * deadlock with every new-version query in between. */
	lower_final_step(
		ctx, t,
		zdmc_arena_printf(
			ctx->arena,
			"drop view %s.%s (new-version clients fall through to %s)",
			ctx->model->version_schema, t->name, t->qname),
		zdmc_arena_printf(ctx->arena, "DROP VIEW %s",
	                          lower_view(ctx, t)));
	if (t->needs_sync && lower_is_cdc(ctx))
		lower_cdc_contract_identity(ctx, t);
	if (t->needs_sync && !lower_is_cdc(ctx)) {
		lower_final_step(ctx, t, "drop the update sync trigger",
		                 zdmc_arena_printf(ctx->arena,
		                                   "DROP TRIGGER %s ON %s",
		                                   UPDATE_TRIGGER, t->qname));
		lower_final_step(ctx, t, "drop the insert sync trigger",
		                 zdmc_arena_printf(ctx->arena,
		                                   "DROP TRIGGER %s ON %s",
		                                   INSERT_TRIGGER, t->qname));
		lower_final_step(
			ctx, t, "drop the sync function",
			zdmc_arena_printf(ctx->arena, "DROP FUNCTION %s()",
		                          lower_sync_function(ctx, t)));
	}
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		if (c->kind == ZDMC_ACTION_RENAME)
			continue;
		lower_final_step(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"drop the old column %s (rollback is impossible from here)",
				c->column),
			zdmc_arena_printf(ctx->arena,
		                          "ALTER TABLE %s DROP COLUMN %s",
		                          t->qname, Q(ctx, c->column)));
	}
	if (t->needs_sync)
		lower_final_step(
			ctx, t, "drop the backfill marker",
			zdmc_arena_printf(ctx->arena,
		                          "ALTER TABLE %s DROP COLUMN %s",
		                          t->qname, PENDING_COLUMN));
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		if (c->kind == ZDMC_ACTION_RENAME) {
			lower_final_step(
				ctx, t,
				zdmc_arena_printf(ctx->arena, "rename %s to %s",
			                          c->column, c->rename_to),
				zdmc_arena_printf(
					ctx->arena,
					"ALTER TABLE %s RENAME COLUMN %s TO %s",
					t->qname, Q(ctx, c->column),
					Q(ctx, c->rename_to)));
			continue;
		}
		for (k = 0; k < c->ncols; k++)
			lower_final_step(
				ctx, t,
				zdmc_arena_printf(ctx->arena,
			                          "rename %s into place as %s",
			                          c->cols[k].physical,
			                          c->cols[k].name),
				zdmc_arena_printf(
					ctx->arena,
					"ALTER TABLE %s RENAME COLUMN %s TO %s",
					t->qname, Q(ctx, c->cols[k].physical),
					Q(ctx, c->cols[k].name)));
	}
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		for (k = 0; k < c->ncols; k++) {
			const zdmc_newcol *col = &c->cols[k];
			const char *con = lower_nn_constraint(ctx, col);
			const char *set = zdmc_arena_printf(
				ctx->arena,
				"ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
				t->qname, Q(ctx, col->name));
			const char *drop = zdmc_arena_printf(
				ctx->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
				t->qname, con);

			if (col->not_null) {
				lower_final_step(
					ctx, t,
					zdmc_arena_printf(
						ctx->arena,
						"set NOT NULL on %s (no scan: the validated check proves it)",
						col->name),
					set);
				lower_final_step(
					ctx, t,
					zdmc_arena_printf(
						ctx->arena,
						"drop the check %s, now redundant",
						con),
					drop);
			} else if (col->carry_not_null) {
				lower_final_step(
					ctx, t,
					zdmc_arena_printf(
						ctx->arena,
						"if the check %s exists, set NOT NULL on %s (no scan) and drop the check",
						con, col->name),
					zdmc_arena_printf(
						ctx->arena,
						"DO $zdm$\n"
						"BEGIN\n"
						"    IF EXISTS (SELECT FROM pg_catalog.pg_constraint\n"
						"                WHERE conrelid = %s::pg_catalog.regclass AND conname = %s) THEN\n"
						"        %s;\n"
						"        %s;\n"
						"    END IF;\n"
						"END\n"
						"$zdm$",
						zdmc_ident_literal(ctx->arena,
				                                   t->qname),
						zdmc_ident_literal(
							ctx->arena,
							zdmc_arena_printf(
								ctx->arena,
								"zdm_nn_%s",
								col->name)),
						set, drop));
			}
		}
	}
	ctx->tx_label = NULL;
}

static void
lower_contract(lower_ctx *ctx)
{
	size_t i;

	lower_phase(ctx, ZDMC_PHASE_CONTRACT);
	lower_approval_gate(ctx, ZDMC_PHASE_CONTRACT);
	if (lower_is_cdc(ctx)) {
		lower_catch_up(
			ctx, true,
			"wait until zdm sync has applied every change committed before this step");
		for (i = 0; i < ctx->model->ntables; i++)
			if (ctx->model->tables[i].needs_sync)
				lower_not_null_table(ctx,
				                     &ctx->model->tables[i]);
		lower_step(
			ctx, ZDMC_STEP_STOP_SYNC, NULL,
			"stop zdm sync after it has applied every change so far: contract drops what it writes to",
			NULL, NULL);
	}
	for (i = 0; i < ctx->model->ntables; i++)
		lower_contract_table(ctx, &ctx->model->tables[i]);
	if (lower_is_native(ctx)) {
		const char *name = lower_cdc_name(ctx);

		lower_final_step(ctx, NULL,
		                 zdmc_arena_printf(ctx->arena,
		                                   "drop replication slot %s",
		                                   name),
		                 lower_drop_slot_sql(ctx));
		lower_final_step(ctx, NULL,
		                 zdmc_arena_printf(ctx->arena,
		                                   "drop publication %s", name),
		                 lower_drop_publication_sql(ctx));
		lower_final_step(ctx, NULL,
		                 zdmc_arena_printf(ctx->arena,
		                                   "drop replication origin %s",
		                                   name),
		                 lower_drop_origin_sql(ctx));
	}
	lower_final_step(
		ctx, NULL,
		zdmc_arena_printf(ctx->arena,
	                          "drop schema %s: the migration is complete",
	                          ctx->model->version_schema),
		zdmc_arena_printf(ctx->arena, "DROP SCHEMA %s",
	                          Q(ctx, ctx->model->version_schema)));
}

/* ---- the plan's header --------------------------------------------------- */

static const char *
lower_at(lower_ctx *ctx, size_t offset)
{
	int line, col;

	zdmc_source_position(ctx->src, offset, &line, &col);
	return zdmc_arena_printf(ctx->arena, "%s:%d:%d", ctx->plan->source_file,
	                         line, col);
}

static void
lower_summary(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	zdmc_plan_table **ttail = &ctx->plan->tables;
	size_t i, j, k;

	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];
		zdmc_plan_table *pt = ZDMC_NEW(ctx->arena, zdmc_plan_table);
		zdmc_plan_change **ctail = &pt->changes;

		pt->name = t->qname;
		for (j = 0; j < t->nchanges; j++) {
			const zdmc_change *c = &t->changes[j];
			zdmc_plan_change *pc =
				ZDMC_NEW(ctx->arena, zdmc_plan_change);
			zdmc_plan_column **coltail = &pc->into;

			pc->at = lower_at(ctx, c->action->offset);
			pc->column = c->column;
			pc->irreversible = c->irreversible;
			pc->reverse_using =
				c->reverse ? c->reverse->text : NULL;
			switch (c->kind) {
			case ZDMC_ACTION_RENAME:
				pc->kind = "rename_column";
				pc->to = c->rename_to;
				break;
			case ZDMC_ACTION_TYPE:
				pc->kind = "alter_column_type";
				pc->type = c->cols[0].type;
				pc->using = c->cols[0].forward->text;
				break;
			case ZDMC_ACTION_SPLIT:
				pc->kind = "split_column";
				for (k = 0; k < c->ncols; k++) {
					zdmc_plan_column *col = ZDMC_NEW(
						ctx->arena, zdmc_plan_column);

					col->name = c->cols[k].name;
					col->type = c->cols[k].type;
					col->using = c->cols[k].forward->text;
					col->not_null = c->cols[k].not_null;
					*coltail = col;
					coltail = &col->next;
				}
				break;
			}
			*ctail = pc;
			ctail = &pc->next;
		}
		*ttail = pt;
		ttail = &pt->next;
	}
}

void
zdmc_lower(zdmc_arena *arena, const zdmc_model *model, const zdmc_source *src,
           zdmc_plan *plan)
{
	lower_ctx ctx;
	const char *slash = strrchr(src->name, '/');
	size_t n = 0;
	int i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.arena = arena;
	ctx.model = model;
	ctx.src = src;
	ctx.plan = plan;

	memset(plan, 0, sizeof(*plan));
	plan->format_version = strcmp(model->options.sync, "cdc") == 0
	                               ? ZDMC_PLAN_FORMAT_VERSION_CDC
	                               : ZDMC_PLAN_FORMAT_VERSION;
	plan->compiler = "zdmc " ZDMC_VERSION;
	plan->migration = model->migration;
	plan->source_file = slash ? slash + 1 : src->name;
	plan->min_server_version_num = 150000; /* security_invoker views */
	plan->batch_size = model->options.batch_size;
	plan->batch_pause_ms = model->options.batch_pause_ms;
	plan->lock_timeout_ms = model->options.lock_timeout_ms;
	plan->lock_retries = model->options.lock_retries;
	plan->approve = zdmc_arena_alloc(arena, ZDMC_NPHASES * sizeof(char *));
	for (i = 0; i < ZDMC_NPHASES; i++)
		if (model->options.approve & (1u << i))
			plan->approve[n++] = zdmc_phase_names[i];
	plan->napprove = n;
	plan->sync = model->options.sync;
	plan->verify_sample = model->options.verify_sample;
	plan->version_schema = model->version_schema;
	plan->search_path = zdmc_arena_printf(arena, "%s, %s",
	                                      Q(&ctx, model->version_schema),
	                                      Q(&ctx, model->tables[0].schema));

	lower_summary(&ctx);
	if (lower_is_cdc(&ctx))
		lower_cdc(&ctx);
	lower_expand(&ctx);
	lower_backfill(&ctx);
	lower_verify(&ctx);
	lower_switch(&ctx);
	lower_contract(&ctx);
}
