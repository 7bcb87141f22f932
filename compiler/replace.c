/*
 * replace.c -- column replacement: shadow columns, the sync between the
 * two shapes (trigger or zdm sync), the backfill, the checks and the
 * contract renames, for every change that registered (replace.h).
 *
 * The mechanism, per table T with such changes (docs/plan-format.md tells
 * it for reviewers):
 *
 * expand (in the table's transaction, so no client ever sees half of it --
 * the lesson of pgroll's #905/#906): created columns are added as nullable
 * zdm_new_<name> (metadata only), plus zdm_sync_pending boolean NOT NULL
 * DEFAULT true, which marks rows whose new columns have never been computed
 * (a constant default is metadata only too).  A BEFORE trigger keeps both
 * shapes right: an old-version write (the old columns change) recomputes the
 * new columns with using; a new-version write (only new columns change)
 * recomputes the old ones with reverse using; either clears the marker.  The
 * UPDATE trigger has a WHEN clause, evaluated in C without entering
 * plpgsql, that is false when the marker flips -- which only the backfill
 * does -- so the backfill's own writes never pay for the trigger.
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
 * contract (in the table's transaction): drop the triggers, the old
 * columns; rename the new ones into place; SET NOT NULL, which skips its
 * scan because the validated check proves it.
 *
 * sync = cdc (plan format version 2 and up) replaces the trigger by a
 * running zdm sync: the plan's cdc section gives, per change, the rules and
 * the two guarded UPDATEs that carry a change event across (see "sync =
 * cdc" below).
 *
 * Everything here reads a change's facts (its replaced, created and
 * reverse columns), never which op it is.  It must not report errors.
 */
#include <string.h>

#include "ident.h"
#include "replace.h"

#define PENDING_COLUMN ZDMC_PENDING_COLUMN
#define INSERT_TRIGGER "zdm_sync_insert"
#define UPDATE_TRIGGER "zdm_sync_update"

typedef zdmc_lower_ctx lower_ctx;

void
zdmc_replace_register(zdmc_check_ctx *ck, zdmc_change *change,
                      const char *title)
{
	zdmc_replace *r = ZDMC_NEW(zdmc_check_arena(ck), zdmc_replace);

	r->title = title;
	change->replace = r;
}

/* ---- names ----------------------------------------------------------- */

static const char *
Q(lower_ctx *ctx, const char *name)
{
	return zdmc_lower_quote(ctx, name);
}

static bool
replace_has(const zdmc_change *c)
{
	return c->replace != NULL;
}

/* The change's old columns, which only the old version writes: those it
 * replaces and those it drops (a drop column with reverse using). */
static size_t
replace_nold(const zdmc_change *c)
{
	return c->nreplaces + c->ndrops;
}

static const char *
replace_old(const zdmc_change *c, size_t i)
{
	return i < c->nreplaces ? c->replaces[i] : c->drops[i - c->nreplaces];
}

/* Does any registered change of t create columns (which the backfill
 * fills)?  A table whose changes only write old columns back (drop column
 * with reverse using) has nothing to backfill. */
static bool
replace_creates(const zdmc_table *t)
{
	for (size_t i = 0; i < t->nchanges; i++)
		if (replace_has(&t->changes[i]) && t->changes[i].ncols > 0)
			return true;
	return false;
}

/* ---- expressions, rebound to where they are evaluated --------------------- */

typedef struct replace_map {
	lower_ctx *ctx;
	const zdmc_table *table;
	const zdmc_change *change; /* round trip: whose forwards to inline */
	const char *prefix;        /* "NEW." in triggers, "" elsewhere */
} replace_map;

/* A list of column names, each once, in the order first seen. */
typedef struct replace_names {
	const char **v;
	size_t n;
	size_t cap;
} replace_names;

static const char *
replace_sync_function(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(
		ctx->arena, t->schema,
		zdmc_arena_printf(ctx->arena, "zdm_sync_%s", t->name));
}

static const char *
replace_nn_constraint(lower_ctx *ctx, const zdmc_newcol *col)
{
	return Q(ctx, zdmc_arena_printf(ctx->arena, "zdm_nn_%s", col->name));
}

static const char *
replace_map_old(void *arg, const zdmc_colref *ref)
{
	replace_map *m = arg;

	return zdmc_arena_printf(m->ctx->arena, "%s%s", m->prefix,
	                         Q(m->ctx, ref->column));
}

static const char *
replace_map_new(void *arg, const zdmc_colref *ref)
{
	replace_map *m = arg;

	return zdmc_arena_printf(
		m->ctx->arena, "%s%s", m->prefix,
		Q(m->ctx, zdmc_model_new_physical(m->table, ref->column)));
}

static const char *
replace_forward(lower_ctx *ctx, const zdmc_table *t, const zdmc_newcol *col,
                const char *prefix)
{
	replace_map m = {ctx, t, NULL, prefix};

	return zdmc_sqlexpr_rewrite(ctx->arena, col->forward, replace_map_old,
	                            &m);
}

/* An old column from the new shape: its reverse using, in physical names. */
static const char *
replace_reverse(lower_ctx *ctx, const zdmc_table *t, const zdmc_oldcol *oc,
                const char *prefix)
{
	replace_map m = {ctx, t, NULL, prefix};

	return zdmc_sqlexpr_rewrite(ctx->arena, oc->reverse, replace_map_new,
	                            &m);
}

/* reverse(using(old)): each new column of the change becomes its using. */
static const char *
replace_map_round_trip(void *arg, const zdmc_colref *ref)
{
	replace_map *m = arg;
	size_t i;

	/* as stored: cast to the new column's type, so rounding or cutting
	 * by its type modifier shows in the round trip */
	for (i = 0; i < m->change->ncols; i++)
		if (strcmp(m->change->cols[i].name, ref->column) == 0 &&
		    m->change->cols[i].type == NULL)
			/* the old column's own type: nothing to cast */
			return zdmc_arena_printf(
				m->ctx->arena, "(%s)",
				replace_forward(m->ctx, m->table,
			                        &m->change->cols[i], ""));
		else if (strcmp(m->change->cols[i].name, ref->column) == 0)
			return zdmc_arena_printf(
				m->ctx->arena, "CAST((%s\n) AS %s)",
				replace_forward(m->ctx, m->table,
			                        &m->change->cols[i], ""),
				m->change->cols[i].type);
	return replace_map_new(arg, ref);
}

static const char *
replace_round_trip(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                   const zdmc_oldcol *oc)
{
	replace_map m = {ctx, t, c, ""};

	return zdmc_sqlexpr_rewrite(ctx->arena, oc->reverse,
	                            replace_map_round_trip, &m);
}

/* Old-shape columns whose change means "recompute the new columns". */
static void
replace_forward_sources(lower_ctx *ctx, const zdmc_change *c, zdmc_buf *cond,
                        const char **seen, size_t *nseen)
{
	size_t i, j, k;

	/* what using reads, then the old columns themselves */
	for (i = 0; i <= c->ncols; i++) {
		const zdmc_sqlexpr *e =
			i < c->ncols ? c->cols[i].forward : NULL;
		size_t nrefs = e ? e->nrefs : replace_nold(c);

		for (j = 0; j < nrefs; j++) {
			const char *col =
				e ? e->refs[j].column : replace_old(c, j);

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

static bool
replace_names_has(const replace_names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return true;
	return false;
}

static void
replace_names_add(lower_ctx *ctx, replace_names *l, const char *name)
{
	if (replace_names_has(l, name))
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
 * names other than the columns c replaces; for reverse the physical columns
 * behind its new-shape names other than c's own new columns.  A write to
 * one of them cannot be told apart by version, so the trigger (and the
 * cdc rules) look at them only after the change's own columns.
 */
static replace_names
replace_shared_columns(lower_ctx *ctx, const zdmc_table *t,
                       const zdmc_change *c, bool reverse)
{
	replace_names seen = {NULL, 0, 0};
	size_t i, j, k;

	for (i = 0; i < (reverse ? c->nreverse : c->ncols); i++) {
		const zdmc_sqlexpr *e =
			reverse ? c->reverse[i].reverse : c->cols[i].forward;

		for (j = 0; e != NULL && j < e->nrefs; j++) {
			const char *col = e->refs[j].column;
			bool own = zdmc_change_replaces(c, col) ||
			           zdmc_change_drops(c, col);

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
				replace_names_add(ctx, &seen, col);
		}
	}
	return seen;
}

static const char *
replace_shared_changed(lower_ctx *ctx, const zdmc_table *t,
                       const zdmc_change *c, bool reverse)
{
	replace_names seen = replace_shared_columns(ctx, t, c, reverse);
	zdmc_buf cond;

	zdmc_buf_init(&cond, ctx->arena);
	for (size_t i = 0; i < seen.n; i++)
		zdmc_buf_printf(&cond, "%sNEW.%s IS DISTINCT FROM OLD.%s",
		                i ? " OR " : "", Q(ctx, seen.v[i]),
		                Q(ctx, seen.v[i]));
	return zdmc_buf_cstr(&cond);
}

static size_t
replace_count_refs(const zdmc_change *c)
{
	size_t i, n = replace_nold(c);

	for (i = 0; i < c->ncols; i++)
		n += c->cols[i].forward->nrefs;
	return n;
}

static const char *
replace_new_changed(lower_ctx *ctx, const zdmc_change *c, const char *op,
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
	/* a change that creates nothing (drop column) has no new column a
	 * writer could set */
	return cond.len ? zdmc_buf_cstr(&cond) : "false";
}

/*
 * A client's write must never fail because a using cannot convert what it
 * wrote (issue 14: 'x12' in a text column turned integer made every later
 * old-version write of a non-number fail), nor because the table is not
 * what the migration expects (a column renamed under it).  So each
 * change's part of the trigger runs in a block that catches any error (one
 * subtransaction per change per write, no XID unless it writes), and
 * zdm_step says what it was doing when it failed (replace_guard): using
 * leaves the change's new columns NULL and the row pending, which verify
 * reports with the error (zdm_try_<table>); reverse using leaves the old
 * column as it was (an insert: NULL), which verify's agreement check
 * reports; anything else leaves the write as the client made it, pending.
 */
static void
replace_assign_forward(lower_ctx *ctx, zdmc_buf *b, const zdmc_table *t,
                       const zdmc_change *c, const char *indent)
{
	zdmc_buf_printf(b, "%szdm_step := 'using';\n", indent);
	for (size_t i = 0; i < c->ncols; i++)
		zdmc_buf_printf(b, "%sNEW.%s := (%s);\n", indent,
		                Q(ctx, c->cols[i].physical),
		                replace_forward(ctx, t, &c->cols[i], "NEW."));
}

static void
replace_assign_reverse(lower_ctx *ctx, zdmc_buf *b, const zdmc_table *t,
                       const zdmc_change *c, const char *indent)
{
	if (c->irreversible)
		zdmc_buf_printf(
			b,
			"%sNULL; -- irreversible: the old shape is not written back\n",
			indent);
	else if (c->nreverse == 0)
		zdmc_buf_printf(
			b,
			"%sNULL; -- the old shape has nothing to write back\n",
			indent);
	if (c->nreverse == 0)
		return;
	zdmc_buf_printf(b, "%szdm_step := 'reverse';\n", indent);
	for (size_t i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(
			b, "%sNEW.%s := (%s);\n", indent,
			Q(ctx, c->reverse[i].column),
			replace_reverse(ctx, t, &c->reverse[i], "NEW."));
}

/* One change's part of the trigger (chain, written at the trigger's own
 * indentation) into b, in its block and with its handler. */
static void
replace_guard(lower_ctx *ctx, zdmc_buf *b, const zdmc_change *c,
              zdmc_buf *chain)
{
	const char *line = zdmc_buf_cstr(chain), *nl;
	size_t i;

	zdmc_buf_printf(b,
	                "        -- %s\n"
	                "        BEGIN\n"
	                "            zdm_step := 'decide';\n",
	                zdmc_lower_comment_text(ctx, c->replace->title));
	for (; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			nl = line + strlen(line) - 1;
		zdmc_buf_printf(b, "    %.*s\n", (int)(nl - line), line);
	}
	zdmc_buf_puts(b, "        EXCEPTION WHEN OTHERS THEN\n");
	if (c->ncols > 0) {
		zdmc_buf_puts(
			b,
			"            IF zdm_step = 'using' THEN\n"
			"                -- using cannot convert this row: verify lists it\n");
		for (i = 0; i < c->ncols; i++)
			zdmc_buf_printf(b, "                NEW.%s := NULL;\n",
			                Q(ctx, c->cols[i].physical));
		zdmc_buf_puts(b, "                zdm_unconverted := true;\n"
		                 "            ELSIF");
	} else {
		zdmc_buf_puts(b, "            IF");
	}
	zdmc_buf_puts(
		b,
		" zdm_step = 'reverse' THEN\n"
		"                -- reverse using cannot convert it: the old shape keeps what it held\n");
	for (i = 0; i < c->nreverse; i++) {
		const char *col = Q(ctx, c->reverse[i].column);

		zdmc_buf_printf(
			b,
			"                IF TG_OP = 'UPDATE' THEN NEW.%s := OLD.%s; "
			"ELSE NEW.%s := NULL; END IF;\n",
			col, col, col);
	}
	if (c->nreverse == 0)
		zdmc_buf_puts(b, "                NULL;\n");
	zdmc_buf_puts(
		b,
		"            ELSE\n"
		"                -- the row is not what the migration expects (the table changed under it?):\n"
		"                -- the write goes through as the client made it, and verify lists the row\n"
		"                zdm_unconverted := true;\n"
		"            END IF;\n"
		"        END;\n");
}

/* An old-version write: one of the replaced columns changed. */
static const char *
replace_old_changed(lower_ctx *ctx, const zdmc_change *c)
{
	zdmc_buf cond;

	zdmc_buf_init(&cond, ctx->arena);
	for (size_t i = 0; i < replace_nold(c); i++)
		zdmc_buf_printf(&cond, "%sNEW.%s IS DISTINCT FROM OLD.%s",
		                i ? " OR " : "", Q(ctx, replace_old(c, i)),
		                Q(ctx, replace_old(c, i)));
	/* a change that replaces nothing (a column added with using) is
	 * never written by the old version */
	return cond.len ? zdmc_buf_cstr(&cond) : "false";
}

static const char *
replace_sync_function_sql(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_buf body, sql, chain;
	const char *tag;
	size_t i, j;

	zdmc_buf_init(&body, ctx->arena);
	zdmc_buf_printf(
		&body,
		"DECLARE\n"
		"    -- a using that failed on this row: it stays pending\n"
		"    zdm_unconverted boolean := false;\n"
		"    -- what a change was doing when it failed (replace_guard)\n"
		"    zdm_step text;\n"
		"BEGIN\n"
		"    -- zdm migration %s: keeps the old and the new shape of %s\n"
		"    -- in step while both application versions write.\n"
		"    IF TG_OP = 'INSERT' THEN\n",
		zdmc_lower_comment_text(ctx, ctx->model->migration),
		zdmc_lower_comment_text(ctx, t->qname));
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (!replace_has(c))
			continue;
		zdmc_buf_init(&chain, ctx->arena);
		/* old-version clients never write zdm_new_* columns, so a value
		 * there means the new version wrote the row (the old column may
		 * hold its default, which must not win) */
		/* ... and a new-version insert that leaves every new column
		 * NULL is told by its search_path (IS DISTINCT FROM NULL: a
		 * composite with a NULL field IS NOT NULL is false) */
		if (c->ncols == 0) {
			/* it creates nothing (drop column): only the
			 * search_path tells, and the old version's insert
			 * keeps what it gave */
			zdmc_buf_printf(
				&chain,
				"        IF pg_catalog.strpos(pg_catalog.current_setting('search_path'), %s) > 0 THEN\n",
				zdmc_ident_literal(
					ctx->arena,
					Q(ctx, ctx->model->version_schema)));
			replace_assign_reverse(ctx, &chain, t, c,
			                       "            ");
			zdmc_buf_puts(&chain, "        END IF;\n");
			replace_guard(ctx, &body, c, &chain);
			continue;
		}
		zdmc_buf_printf(
			&chain,
			"        IF %s\n"
			"           OR pg_catalog.strpos(pg_catalog.current_setting('search_path'), %s) > 0 THEN\n",
			replace_new_changed(ctx, c, "IS DISTINCT FROM NULL",
		                            " OR "),
			zdmc_ident_literal(ctx->arena,
		                           Q(ctx, t->version_schema)));
		replace_assign_reverse(ctx, &chain, t, c, "            ");
		zdmc_buf_puts(&chain, "        ELSE\n");
		replace_assign_forward(ctx, &chain, t, c, "            ");
		zdmc_buf_puts(&chain, "        END IF;\n");
		replace_guard(ctx, &body, c, &chain);
	}
	zdmc_buf_puts(&body, "    ELSE\n");
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (!replace_has(c))
			continue;
		zdmc_buf_init(&chain, ctx->arena);
		if (c->ncols == 0) {
			/* it creates nothing (drop column): a write of the
			 * old column is the old version's and stays; a write
			 * of what reverse using reads computes it again */
			const char *rev =
				replace_shared_changed(ctx, t, c, true);

			zdmc_buf_printf(
				&chain,
				"        IF %s THEN\n"
				"            NULL; -- the old version wrote it\n",
				replace_old_changed(ctx, c));
			if (rev[0]) {
				zdmc_buf_printf(&chain,
				                "        ELSIF %s THEN\n", rev);
				replace_assign_reverse(ctx, &chain, t, c,
				                       "            ");
			}
			zdmc_buf_puts(&chain, "        END IF;\n");
			replace_guard(ctx, &body, c, &chain);
			continue;
		}
		/* Who wrote the row: the change's own old column only the old
		 * version writes, its zdm_new_* columns only the new one; so
		 * those decide first.  A column both versions share (read by
		 * using or reverse using) only after them. */
		if (c->nreplaces > 0) {
			zdmc_buf_printf(&chain, "        IF %s THEN\n",
			                replace_old_changed(ctx, c));
			replace_assign_forward(ctx, &chain, t, c,
			                       "            ");
		}
		zdmc_buf_printf(&chain, "        %s %s THEN\n",
		                c->nreplaces > 0 ? "ELSIF" : "IF",
		                replace_new_changed(ctx, c, "IS DISTINCT FROM",
		                                    " OR "));
		zdmc_buf_printf(
			&chain,
			"            IF OLD.%s THEN\n"
			"                -- never backfilled: what the client did not set comes from the old shape\n"
			"                zdm_step := 'fill';\n",
			PENDING_COLUMN);
		for (j = 0; j < c->ncols; j++) {
			const char *p = Q(ctx, c->cols[j].physical);

			zdmc_buf_printf(
				&chain,
				"                IF NEW.%s IS NOT DISTINCT FROM OLD.%s THEN\n"
				"                    NEW.%s := (%s);\n"
				"                END IF;\n",
				p, p, p,
				replace_forward(ctx, t, &c->cols[j], "NEW."));
		}
		zdmc_buf_puts(&chain, "            END IF;\n");
		replace_assign_reverse(ctx, &chain, t, c, "            ");
		{
			const char *fwd =
				replace_shared_changed(ctx, t, c, false);
			const char *rev = c->irreversible
			                          ? ""
			                          : replace_shared_changed(
							    ctx, t, c, true);

			if (fwd[0] && c->nreplaces == 0) {
				/* no column of its own tells the old version's
				 * write: its search_path does, and a new-version
				 * write of a column using reads leaves the new
				 * column as that version left it */
				zdmc_buf_printf(
					&chain,
					"        ELSIF (%s)\n"
					"              AND pg_catalog.strpos(pg_catalog.current_setting('search_path'), %s) = 0 THEN\n",
					fwd,
					zdmc_ident_literal(
						ctx->arena,
						Q(ctx,
				                  ctx->model->version_schema)));
				replace_assign_forward(ctx, &chain, t, c,
				                       "            ");
			} else if (fwd[0]) {
				zdmc_buf_printf(&chain,
				                "        ELSIF %s THEN\n", fwd);
				replace_assign_forward(ctx, &chain, t, c,
				                       "            ");
			}
			if (rev[0]) {
				zdmc_buf_printf(&chain,
				                "        ELSIF %s THEN\n", rev);
				replace_assign_reverse(ctx, &chain, t, c,
				                       "            ");
			}
		}
		zdmc_buf_printf(&chain, "        ELSIF OLD.%s THEN\n",
		                PENDING_COLUMN);
		replace_assign_forward(ctx, &chain, t, c, "            ");
		zdmc_buf_puts(&chain, "        END IF;\n");
		replace_guard(ctx, &body, c, &chain);
	}
	zdmc_buf_printf(&body,
	                "    END IF;\n"
	                "    NEW.%s := zdm_unconverted;\n"
	                "    RETURN NEW;\n"
	                "END\n",
	                PENDING_COLUMN);
	tag = zdmc_lower_dollar_tag(ctx, zdmc_buf_cstr(&body));
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql,
	                "CREATE FUNCTION %s() RETURNS trigger\n"
	                "LANGUAGE plpgsql AS %s\n%s%s",
	                replace_sync_function(ctx, t), tag,
	                zdmc_buf_cstr(&body), tag);
	return zdmc_buf_cstr(&sql);
}

/* WHEN of the UPDATE trigger: a client write that touches what we sync.
 * The backfill flips the marker, so it never matches. */
static const char *
replace_update_when(lower_ctx *ctx, const zdmc_table *t)
{
	const char **seen;
	size_t nseen = 0, nrefs = 0, i;
	zdmc_buf cond, when;

	for (i = 0; i < t->nchanges; i++)
		if (replace_has(&t->changes[i]))
			nrefs += replace_count_refs(&t->changes[i]);
	seen = zdmc_arena_alloc(ctx->arena, (nrefs + 1) * sizeof(char *));
	zdmc_buf_init(&cond, ctx->arena);
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		/* a change that creates nothing recomputes nothing when
		 * its old column is written */
		if (!replace_has(c) || c->ncols == 0)
			continue;
		replace_forward_sources(ctx, c, &cond, seen, &nseen);
	}
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		/* a write to the new columns has something to carry back only
		 * when the change computes old columns from them */
		if (!replace_has(c) || c->irreversible || c->nreverse == 0)
			continue;
		if (c->ncols > 0)
			zdmc_buf_printf(
				&cond, "%s%s", cond.len ? "\n       OR " : "",
				replace_new_changed(ctx, c, "IS DISTINCT FROM",
			                            "\n       OR "));
		/* shared columns only reverse using reads: a write to them
		 * must reach the old shape too */
		{
			const char *rev =
				replace_shared_changed(ctx, t, c, true);

			if (rev[0])
				zdmc_buf_printf(&cond, "%s%s",
				                cond.len ? "\n       OR " : "",
				                rev);
		}
	}
	zdmc_buf_init(&when, ctx->arena);
	/* nothing read, nothing replaced, nothing to carry back: only the
	 * marker matters (a column added with a default and no using is
	 * computed once per row, when the row is first written) */
	if (cond.len == 0)
		zdmc_buf_printf(&when, "NEW.%s = OLD.%s\n      AND OLD.%s",
		                PENDING_COLUMN, PENDING_COLUMN, PENDING_COLUMN);
	else
		zdmc_buf_printf(&when,
		                "NEW.%s = OLD.%s\n"
		                "      AND (OLD.%s\n       OR %s)",
		                PENDING_COLUMN, PENDING_COLUMN, PENDING_COLUMN,
		                zdmc_buf_cstr(&cond));
	return zdmc_buf_cstr(&when);
}

/* ---- sync = cdc ---------------------------------------------------------- */

/*
 * With sync = cdc no trigger runs: zdm sync reads each change event and
 * decides, by the rules of cdc.tables[].syncs[], which of two guarded
 * UPDATEs carries it across.  The rules mirror the trigger function's
 * decision tree (replace_sync_function_sql) and its WHEN clause
 * (replace_update_when), so both modes end with the same data; only the
 * search_path test on INSERT has no equivalent (an event does not carry
 * the writer's settings).  Each statement changes at most the row whose key
 * and synced columns still equal the event's after-image, so an event
 * applied late never overwrites a newer write: that later write has its
 * own event.
 */

static size_t
replace_syncing_changes(const zdmc_table *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nchanges; i++)
		n += replace_has(&t->changes[i]);
	return n;
}

/* $1..$n of the statements of change c: key, replaced columns, shared
 * columns, new columns, the marker. */
static replace_names
replace_cdc_params(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c)
{
	const zdmc_options *o = &ctx->model->options;
	replace_names params = {NULL, 0, 0};
	replace_names fwd = replace_shared_columns(ctx, t, c, false);
	replace_names rev = replace_shared_columns(ctx, t, c, true);
	size_t i;

	for (i = 0; i < o->nkey; i++)
		replace_names_add(ctx, &params, o->key[i].name);
	for (i = 0; i < replace_nold(c); i++)
		replace_names_add(ctx, &params, replace_old(c, i));
	for (i = 0; i < fwd.n; i++)
		replace_names_add(ctx, &params, fwd.v[i]);
	for (i = 0; i < rev.n; i++)
		replace_names_add(ctx, &params, rev.v[i]);
	for (i = 0; i < c->ncols; i++)
		replace_names_add(ctx, &params, c->cols[i].physical);
	replace_names_add(ctx, &params, PENDING_COLUMN);
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
replace_cdc_with(lower_ctx *ctx, const zdmc_table *t)
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
replace_cdc_event(lower_ctx *ctx, const char *column)
{
	return zdmc_arena_printf(ctx->arena, "(zdm_event.zdm_row).%s",
	                         Q(ctx, column));
}

/* Whether the event set a new column (reverse's merge). */
static const char *
replace_cdc_touched(lower_ctx *ctx, const char *column)
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
replace_cdc_guard(lower_ctx *ctx, const zdmc_table *t,
                  const replace_names *params)
{
	const zdmc_options *o = &ctx->model->options;
	zdmc_buf w;
	size_t i;

	zdmc_buf_init(&w, ctx->arena);
	zdmc_buf_puts(&w, "  FROM zdm_event\n");
	for (i = 0; i < params->n; i++) {
		const char *col = Q(ctx, params->v[i]);
		const char *ev = replace_cdc_event(ctx, params->v[i]);

		if (i < o->nkey)
			zdmc_buf_printf(&w, "%s %s = %s\n",
			                i ? "   AND" : " WHERE", col, ev);
		else if (strcmp(params->v[i], PENDING_COLUMN) == 0 &&
		         replace_syncing_changes(t) > 1)
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
replace_cdc_pending(lower_ctx *ctx, const zdmc_table *t,
                    const replace_names *params, const char *prefix)
{
	(void)params;
	if (replace_syncing_changes(t) > 1)
		return replace_cdc_event(ctx, PENDING_COLUMN);
	return zdmc_arena_printf(ctx->arena, "%s%s", prefix, PENDING_COLUMN);
}

static const char *
replace_cdc_forward(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                    const replace_names *params)
{
	zdmc_buf sql;
	size_t i;

	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET ", replace_cdc_with(ctx, t),
	                t->qname);
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&sql, "%s = (%s),\n       ",
		                Q(ctx, c->cols[i].physical),
		                replace_forward(ctx, t, &c->cols[i], ""));
	zdmc_buf_printf(&sql, "%s = false\n%s   AND (%s", PENDING_COLUMN,
	                replace_cdc_guard(ctx, t, params),
	                replace_cdc_pending(ctx, t, params, ""));
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&sql, "\n        OR %s IS DISTINCT FROM (%s)",
		                Q(ctx, c->cols[i].physical),
		                replace_forward(ctx, t, &c->cols[i], ""));
	zdmc_buf_puts(&sql, ")");
	return zdmc_buf_cstr(&sql);
}

/*
 * A row whose forward statement fails on the event's values (a using that
 * cannot convert what the old version wrote): what the trigger's guard
 * does, for zdm sync to run instead.  The change's new columns NULL and
 * the row pending, so verify lists it with the error (zdm_try_<table>),
 * under the same guard as forward, without forward's last condition,
 * which computes the using that fails.
 */
static const char *
replace_cdc_unconvertible(lower_ctx *ctx, const zdmc_table *t,
                          const zdmc_change *c, const replace_names *params)
{
	const char *guard;
	zdmc_buf sql;

	if (c->ncols == 0)
		return NULL;
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET ", replace_cdc_with(ctx, t),
	                t->qname);
	for (size_t i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&sql, "%s = NULL,\n       ",
		                Q(ctx, c->cols[i].physical));
	guard = replace_cdc_guard(ctx, t, params);
	/* the guard's text ends with a newline, the statement does not */
	zdmc_buf_printf(&sql, "%s = true\n%.*s", PENDING_COLUMN,
	                (int)(strlen(guard) - 1), guard);
	return zdmc_buf_cstr(&sql);
}

/*
 * The old columns from the new shape.  On a row never backfilled, a new
 * column the event did not set first comes from the old shape (as the
 * trigger does), so the assignment reads merged values: the inner derived
 * table is named with the physical names, and the reverse expression,
 * written in physical names, resolves to them.  Irreversible: only that
 * merge and the marker, the old column is never written.
 */
static const char *
replace_cdc_reverse(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                    const replace_names *params)
{
	const char *outer =
		zdmc_arena_printf(ctx->arena, "%s.", Q(ctx, t->name));
	const char *pending_in = replace_cdc_pending(ctx, t, params, outer);
	zdmc_buf sql, cols;
	size_t i;

	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_init(&cols, ctx->arena);
	if (c->ncols == 0) {
		/* no new column (drop column): nothing to merge */
		zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET ",
		                replace_cdc_with(ctx, t), t->qname);
		for (i = 0; i < c->nreverse; i++)
			zdmc_buf_printf(
				&sql, "%s = (%s),\n       ",
				Q(ctx, c->reverse[i].column),
				replace_reverse(ctx, t, &c->reverse[i], ""));
		zdmc_buf_printf(&sql, "%s = false\n%s   AND (%s",
		                PENDING_COLUMN,
		                replace_cdc_guard(ctx, t, params),
		                replace_cdc_pending(ctx, t, params, ""));
		for (i = 0; i < c->nreverse; i++)
			zdmc_buf_printf(
				&sql, " OR %s IS DISTINCT FROM (%s)",
				Q(ctx, c->reverse[i].column),
				replace_reverse(ctx, t, &c->reverse[i], ""));
		zdmc_buf_puts(&sql, ")");
		return zdmc_buf_cstr(&sql);
	}
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(&cols, "%s%s", i ? ", " : "",
		                Q(ctx, c->cols[i].physical));
	zdmc_buf_printf(&sql, "%sUPDATE %s\n   SET (%s, ",
	                replace_cdc_with(ctx, t), t->qname,
	                zdmc_buf_cstr(&cols));
	for (i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(&sql, "%s, ", Q(ctx, c->reverse[i].column));
	zdmc_buf_printf(&sql, "%s) =\n       (SELECT %s,\n               ",
	                PENDING_COLUMN, zdmc_buf_cstr(&cols));
	for (i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(&sql, "(%s), ",
		                replace_reverse(ctx, t, &c->reverse[i], ""));
	zdmc_buf_puts(&sql, "false\n          FROM (SELECT ");
	for (i = 0; i < c->ncols; i++)
		zdmc_buf_printf(
			&sql,
			"%sCASE WHEN %s AND NOT %s THEN (%s) ELSE %s%s END",
			i ? ",\n                       " : "", pending_in,
			replace_cdc_touched(ctx, c->cols[i].physical),
			replace_forward(ctx, t, &c->cols[i], outer), outer,
			Q(ctx, c->cols[i].physical));
	zdmc_buf_printf(&sql,
	                ")\n               AS zdm_merged(%s))\n%s   AND (%s",
	                zdmc_buf_cstr(&cols), replace_cdc_guard(ctx, t, params),
	                replace_cdc_pending(ctx, t, params, ""));
	for (i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(&sql, " OR %s IS DISTINCT FROM (%s)",
		                Q(ctx, c->reverse[i].column),
		                replace_reverse(ctx, t, &c->reverse[i], ""));
	zdmc_buf_puts(&sql, ")");
	return zdmc_buf_cstr(&sql);
}

static zdmc_plan_cdc_rule *
replace_cdc_rule(lower_ctx *ctx, zdmc_plan_cdc_rule ***tail, zdmc_cdc_cond cond,
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
replace_cdc_rule_cols(lower_ctx *ctx, zdmc_plan_cdc_rule ***tail,
                      zdmc_cdc_cond cond, const replace_names *cols,
                      const char *apply)
{
	zdmc_plan_cdc_rule *r;

	if (cols->n == 0)
		return;
	r = replace_cdc_rule(ctx, tail, cond, apply);
	r->columns = cols->v;
	r->ncolumns = cols->n;
}

/* Are the change's old columns all NOT NULL when the plan starts (it
 * drops that NOT NULL)? */
static bool
replace_old_not_null(const zdmc_change *c)
{
	for (size_t i = 0; i < replace_nold(c); i++)
		if (!zdmc_change_drops_not_null(c, replace_old(c, i)))
			return false;
	return replace_nold(c) > 0;
}

static zdmc_plan_cdc_sync *
replace_cdc_sync(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c)
{
	zdmc_plan_cdc_sync *s = ZDMC_NEW(ctx->arena, zdmc_plan_cdc_sync);
	replace_names params = replace_cdc_params(ctx, t, c);
	replace_names news = {NULL, 0, 0}, one = {NULL, 0, 0},
		      marker = {NULL, 0, 0};
	replace_names fwd = replace_shared_columns(ctx, t, c, false);
	replace_names rev = replace_shared_columns(ctx, t, c, true);
	zdmc_plan_cdc_rule **tail;
	size_t i;

	for (i = 0; i < c->ncols; i++)
		replace_names_add(ctx, &news, c->cols[i].physical);
	for (i = 0; i < replace_nold(c); i++)
		replace_names_add(ctx, &one, replace_old(c, i));
	replace_names_add(ctx, &marker, PENDING_COLUMN);
	s->at = zdmc_lower_at(ctx, c->offset);
	s->params = params.v;
	s->nparams = params.n;
	s->touched = news.v;
	s->ntouched = news.n;
	/* INSERT: only the new version writes zdm_new_* columns.  When it
	 * cannot give the old columns a value either -- the change creates
	 * none (drop column), or they are NOT NULL when the plan starts
	 * (drop not null; preflight checks it), so the old version always
	 * gives one -- an INSERT that leaves them NULL is the new version's
	 * too, even when it leaves every new column NULL. */
	tail = &s->on_insert;
	replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_NOT_NULL, &news, "reverse");
	if (c->ncols == 0 || replace_old_not_null(c)) {
		replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_NOT_NULL, &one,
		                      c->ncols ? "forward" : "nothing");
		replace_cdc_rule(ctx, &tail, ZDMC_CDC_ALWAYS, "reverse");
	} else {
		replace_cdc_rule(ctx, &tail, ZDMC_CDC_ALWAYS, "forward");
	}
	/* UPDATE, as the trigger: its WHEN clause first (the backfill and
	 * the sync's own writes flip the marker), then who wrote the row */
	tail = &s->on_update;
	replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &marker, "nothing");
	replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &one, "forward");
	replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &news, "reverse");
	replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &fwd, "forward");
	if (!c->irreversible)
		replace_cdc_rule_cols(ctx, &tail, ZDMC_CDC_CHANGED, &rev,
		                      "reverse");
	replace_cdc_rule(ctx, &tail, ZDMC_CDC_PENDING, "forward");
	replace_cdc_rule(ctx, &tail, ZDMC_CDC_ALWAYS, "nothing");
	s->forward = replace_cdc_forward(ctx, t, c, &params);
	s->reverse = replace_cdc_reverse(ctx, t, c, &params);
	s->unconvertible = replace_cdc_unconvertible(ctx, t, c, &params);
	return s;
}

/* The old columns whose NOT NULL expand drops: those of reversible changes,
 * which a new-version INSERT through the view cannot fill (zdm sync does,
 * within the lag). */
static replace_names
replace_cdc_old_columns(lower_ctx *ctx, const zdmc_table *t)
{
	replace_names cols = {NULL, 0, 0};

	for (size_t i = 0; i < t->nchanges; i++)
		for (size_t j = 0;
		     replace_has(&t->changes[i]) && j < t->changes[i].nreverse;
		     j++)
			replace_names_add(ctx, &cols,
			                  t->changes[i].reverse[j].column);
	return cols;
}

/* Reads what expand saved in the comment on the marker into "saved". */
static const char *
replace_cdc_read_saved(lower_ctx *ctx, const zdmc_table *t)
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
replace_cdc_restore_identity(lower_ctx *ctx, const zdmc_table *t)
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
replace_cdc_expand_table(lower_ctx *ctx, const zdmc_table *t)
{
	replace_names old = replace_cdc_old_columns(ctx, t);
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
	zdmc_lower_step(
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
			replace_cdc_read_saved(ctx, t), zdmc_buf_cstr(&restore),
			replace_cdc_restore_identity(ctx, t)));
}

/* contract: the table's replica identity as it was, before the marker (and
 * its comment) is dropped. */
static void
replace_cdc_contract_identity(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_plan_step *s = zdmc_lower_step(
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
	                          replace_cdc_read_saved(ctx, t),
	                          replace_cdc_restore_identity(ctx, t)),
		NULL);

	s->point_of_no_return = true;
}

static void
replace_not_null_checks(lower_ctx *ctx, const zdmc_table *t,
                        const zdmc_newcol *col)
{
	const char *con = replace_nn_constraint(ctx, col);
	const char *add = zdmc_arena_printf(
		ctx->arena,
		"ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
		t->qname, con, Q(ctx, col->physical));
	const char *validate = zdmc_arena_printf(
		ctx->arena, "ALTER TABLE %s VALIDATE CONSTRAINT %s", t->qname,
		con);
	const char *was_not_null;

	if (col->not_null) {
		zdmc_lower_step(
			ctx, ZDMC_STEP_SQL, t,
			zdmc_arena_printf(
				ctx->arena,
				"require %s NOT NULL, first as a check NOT VALID (no scan under the lock)",
				col->name),
			add,
			zdmc_arena_printf(ctx->arena,
		                          "ALTER TABLE %s DROP CONSTRAINT %s",
		                          t->qname, con));
		zdmc_lower_step(
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
	 * at expand (replace_cdc_expand_table) and saved it in the comment on
	 * the marker: the saved list says it too */
	was_not_null =
		zdmc_lower_is_cdc(ctx)
			? zdmc_arena_printf(
				  ctx->arena,
				  "\n        OR coalesce((SELECT (pg_catalog.col_description(a.attrelid, a.attnum)::pg_catalog.jsonb -> 'not_null') ? %s\n"
				  "                       FROM pg_catalog.pg_attribute AS a\n"
				  "                      WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = '" PENDING_COLUMN
				  "'), false)",
				  zdmc_ident_literal(ctx->arena, col->name),
				  zdmc_ident_literal(ctx->arena, t->qname))
			: "";
	zdmc_lower_step(
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
	zdmc_lower_step(
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

/* ---- table-wide steps, by phase ------------------------------------------ */

/* The type of the created column col: as written, or, when the change
 * keeps the column's type (type NULL), the existing column's, as a
 * subquery on the catalog for the DO block of replace_add_columns. */
static const char *
replace_column_type(lower_ctx *ctx, const zdmc_table *t, const zdmc_newcol *col)
{
	if (col->type != NULL)
		return col->type;
	return zdmc_arena_printf(
		ctx->arena,
		"(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a\n"
		"          WHERE a.attrelid = %s::pg_catalog.regclass AND a.attname = %s\n"
		"            AND NOT a.attisdropped)",
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, col->name));
}

/* text as a literal part of a format() string: each % doubled */
static const char *
replace_format_escape(lower_ctx *ctx, const char *text)
{
	zdmc_buf b;

	zdmc_buf_init(&b, ctx->arena);
	for (; *text; text++)
		zdmc_buf_puts(&b, *text == '%' ? "%%" : (char[]){*text, 0});
	return zdmc_buf_cstr(&b);
}

/*
 * Every column the table's changes create, in source order, and (marker)
 * the marker, in one ALTER TABLE.  A change that registered adds its
 * columns nullable and without a default, for the backfill and the sync to
 * fill; one that did not (add column, catalog only) with its constant
 * default, and NOT NULL -- which PostgreSQL then neither rewrites nor scans
 * for.  One statement keeps the columns in source order, the order the
 * view shows and contract leaves.  A column that keeps an existing
 * column's type (set or drop not null) gets it from the catalog when the
 * plan runs, through format_type in a DO block (the compiler never sees
 * the table); its collation is the type's, since preflight refuses an
 * explicit one on a column the change replaces.  The marker starts true
 * ("never computed") when there is something to backfill, false when the
 * registered changes create no column.
 */
static void
replace_add_columns(lower_ctx *ctx, const zdmc_table *t, bool marker)
{
	zdmc_buf add, fmt, drop, names, types, binding;
	const char *sep = "", *binds = "";
	bool creates = replace_creates(t);
	size_t j, k;

	zdmc_buf_init(&add, ctx->arena);
	zdmc_buf_init(&fmt, ctx->arena);
	zdmc_buf_init(&drop, ctx->arena);
	zdmc_buf_init(&names, ctx->arena);
	zdmc_buf_init(&types, ctx->arena);
	zdmc_buf_init(&binding, ctx->arena);
	zdmc_buf_printf(&add, "ALTER TABLE %s", t->qname);
	zdmc_buf_printf(&fmt, "ALTER TABLE %s",
	                replace_format_escape(ctx, t->qname));
	zdmc_buf_printf(&drop, "ALTER TABLE %s", t->qname);
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		for (k = 0; k < c->ncols; k++) {
			const zdmc_newcol *col = &c->cols[k];
			const char *p = Q(ctx, col->physical);
			const char *extra = "";

			if (!replace_has(c) && col->default_expr != NULL)
				extra = zdmc_arena_printf(
					ctx->arena, " DEFAULT %s",
					col->default_expr->text);
			if (!replace_has(c) && col->not_null) {
				extra = zdmc_arena_printf(ctx->arena,
				                          "%s NOT NULL", extra);
				zdmc_buf_printf(&binding, "%s%s",
				                binding.len ? ", " : "",
				                col->name);
			}
			zdmc_buf_printf(&add, "%s\n    ADD COLUMN %s %s%s", sep,
			                p, col->type ? col->type : "", extra);
			zdmc_buf_printf(&fmt, "%s\n    ADD COLUMN %s %s%s", sep,
			                replace_format_escape(ctx, p),
			                col->type ? replace_format_escape(
							    ctx, col->type)
			                          : "%s",
			                replace_format_escape(ctx, extra));
			if (col->type == NULL)
				zdmc_buf_printf(
					&types, ",\n        %s",
					replace_column_type(ctx, t, col));
			zdmc_buf_printf(&drop, "%s\n    DROP COLUMN %s", sep,
			                p);
			sep = ",";
			zdmc_buf_printf(&names, "%s%s", names.len ? ", " : "",
			                col->physical);
		}
	}
	/* a NOT NULL that holds from expand on binds the old version too,
	 * and the plan must say so */
	if (binding.len)
		binds = zdmc_arena_printf(
			ctx->arena,
			"; NOT NULL on %s binds every writer from now on (old-version inserts take the default)",
			zdmc_buf_cstr(&binding));
	if (!marker && names.len == 0)
		return;
	if (marker) {
		zdmc_buf_printf(
			&add,
			"%s\n    ADD COLUMN %s boolean NOT NULL DEFAULT %s",
			sep, PENDING_COLUMN, creates ? "true" : "false");
		zdmc_buf_printf(
			&fmt,
			"%s\n    ADD COLUMN %s boolean NOT NULL DEFAULT %s",
			sep, PENDING_COLUMN, creates ? "true" : "false");
		zdmc_buf_printf(&drop, "%s\n    DROP COLUMN %s", sep,
		                PENDING_COLUMN);
	}
	if (types.len) {
		zdmc_buf_init(&add, ctx->arena);
		zdmc_buf_printf(
			&add,
			"DO $zdm$\n"
			"BEGIN\n"
			"    -- a column that keeps its type gets it from the catalog\n"
			"    EXECUTE pg_catalog.format(%s%s);\n"
			"END\n"
			"$zdm$",
			zdmc_ident_literal(ctx->arena, zdmc_buf_cstr(&fmt)),
			zdmc_buf_cstr(&types));
	}
	zdmc_lower_step(
		ctx, ZDMC_STEP_SQL, t,
		!marker ? zdmc_arena_printf(
				  ctx->arena,
				  "add %s to %s (nullable, or a constant default: catalog only, no table rewrite or scan)%s",
				  zdmc_buf_cstr(&names), t->qname, binds)
		: creates
			? zdmc_arena_printf(
				  ctx->arena,
				  "add %s%sthe backfill marker %s to %s (nullable and a constant default: no table rewrite)%s",
				  zdmc_buf_cstr(&names),
				  names.len ? ", and " : "", PENDING_COLUMN,
				  t->qname, binds)
		: names.len == 0
			? zdmc_arena_printf(
				  ctx->arena,
				  "add the sync marker %s to %s, false for every row: its changes create no column, so nothing needs a backfill",
				  PENDING_COLUMN, t->qname)
			: zdmc_arena_printf(
				  ctx->arena,
				  "add %s, and the sync marker %s to %s, false for every row: nothing needs a backfill%s",
				  zdmc_buf_cstr(&names), PENDING_COLUMN,
				  t->qname, binds),
		zdmc_buf_cstr(&add), zdmc_buf_cstr(&drop));
}

/* The sync function and the triggers that run it. */
static void
replace_add_triggers(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"create the function that keeps both shapes of %s in sync",
			t->qname),
		replace_sync_function_sql(ctx, t),
		zdmc_arena_printf(ctx->arena, "DROP FUNCTION %s()",
	                          replace_sync_function(ctx, t)));
	zdmc_lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(ctx->arena, "run it on every insert into %s",
	                          t->qname),
		zdmc_arena_printf(ctx->arena,
	                          "CREATE TRIGGER %s BEFORE INSERT ON %s\n"
	                          "    FOR EACH ROW EXECUTE FUNCTION %s()",
	                          INSERT_TRIGGER, t->qname,
	                          replace_sync_function(ctx, t)),
		zdmc_arena_printf(ctx->arena, "DROP TRIGGER %s ON %s",
	                          INSERT_TRIGGER, t->qname));
	zdmc_lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"run it on updates of %s that change a synced column (the backfill's writes do not match the WHEN clause)",
			t->qname),
		zdmc_arena_printf(ctx->arena,
	                          "CREATE TRIGGER %s BEFORE UPDATE ON %s\n"
	                          "    FOR EACH ROW\n"
	                          "    WHEN (%s)\n"
	                          "    EXECUTE FUNCTION %s()",
	                          UPDATE_TRIGGER, t->qname,
	                          replace_update_when(ctx, t),
	                          replace_sync_function(ctx, t)),
		zdmc_arena_printf(ctx->arena, "DROP TRIGGER %s ON %s",
	                          UPDATE_TRIGGER, t->qname));
}

/* zdm_try_<table>(row): fits where zdm_sync_<table> fits (check.c). */
static const char *
replace_try_function(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(
		ctx->arena, t->schema,
		zdmc_arena_printf(ctx->arena, "zdm_try_%s", t->name));
}

/*
 * zdm_try_<table>(row) text: NULL when every using of the table's changes
 * computes on the row, else which change failed and PostgreSQL's error.  A
 * row a using cannot convert stays pending (the sync leaves its new
 * columns NULL, the backfill steps over it), and verify's examples of
 * pending rows call this to say why.  SQL cannot catch an error, so this
 * is a function; it writes nothing.
 */
static void
replace_add_try_function(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_buf body, sql;
	const char *tag;

	zdmc_buf_init(&body, ctx->arena);
	zdmc_buf_printf(
		&body,
		"BEGIN\n"
		"    -- zdm migration %s: why a row of %s is not converted\n",
		zdmc_lower_comment_text(ctx, ctx->model->migration),
		zdmc_lower_comment_text(ctx, t->qname));
	for (size_t i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (!replace_has(c) || c->ncols == 0)
			continue;
		zdmc_buf_puts(&body, "    BEGIN\n        PERFORM ");
		for (size_t k = 0; k < c->ncols; k++)
			zdmc_buf_printf(
				&body, "%s(%s)", k ? ", " : "",
				replace_forward(ctx, t, &c->cols[k], "r."));
		zdmc_buf_printf(
			&body,
			";\n"
			"    EXCEPTION WHEN OTHERS THEN\n"
			"        RETURN %s || SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';\n"
			"    END;\n",
			zdmc_ident_literal(
				ctx->arena,
				zdmc_arena_printf(ctx->arena,
		                                  "%s: ", c->replace->title)));
	}
	zdmc_buf_puts(&body, "    RETURN NULL;\nEND\n");
	tag = zdmc_lower_dollar_tag(ctx, zdmc_buf_cstr(&body));
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(&sql,
	                "CREATE FUNCTION %s(r %s) RETURNS text\n"
	                "LANGUAGE plpgsql AS %s\n%s%s",
	                replace_try_function(ctx, t), t->qname, tag,
	                zdmc_buf_cstr(&body), tag);
	zdmc_lower_step(
		ctx, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			ctx->arena,
			"create the function that says why a row of %s cannot be converted (verify's examples call it)",
			t->qname),
		zdmc_buf_cstr(&sql),
		zdmc_arena_printf(ctx->arena, "DROP FUNCTION %s(%s)",
	                          replace_try_function(ctx, t), t->qname));
}

void
zdmc_replace_add_created(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	replace_add_columns(ctx, t, false);
}

void
zdmc_replace_expand(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	replace_add_columns(ctx, t, true);
	if (replace_creates(t))
		replace_add_try_function(ctx, t);
	if (zdmc_lower_is_cdc(ctx))
		replace_cdc_expand_table(ctx, t);
	else
		replace_add_triggers(ctx, t);
}

void
zdmc_replace_backfill(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	const zdmc_model *m = ctx->model;
	zdmc_buf sql, names;
	zdmc_plan_step *s;
	size_t j, k;

	if (!replace_creates(t))
		return; /* the marker started false: nothing is pending */

	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_init(&names, ctx->arena);
	zdmc_buf_printf(&sql, "UPDATE %s\n   SET ", t->qname);
	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		for (k = 0; replace_has(c) && k < c->ncols; k++) {
			zdmc_buf_printf(
				&sql, "%s = (%s),\n       ",
				Q(ctx, c->cols[k].physical),
				replace_forward(ctx, t, &c->cols[k], ""));
			zdmc_buf_printf(&names, "%s%s", names.len ? ", " : "",
			                c->cols[k].name);
		}
	}
	zdmc_buf_printf(
		&sql,
		"%s = false\n"
		" WHERE ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid\n"
		"   AND %s",
		PENDING_COLUMN, PENDING_COLUMN);
	/* cdc: a new-version write the sync has yet to carry back must not
	 * be overwritten; its new columns are not all NULL */
	for (j = 0; zdmc_lower_is_cdc(ctx) && j < t->nchanges; j++)
		for (k = 0;
		     replace_has(&t->changes[j]) && k < t->changes[j].ncols;
		     k++)
			zdmc_buf_printf(&sql, "\n   AND %s IS NULL",
			                Q(ctx, t->changes[j].cols[k].physical));
	/* cdc: so is a new-version insert that left the new columns NULL,
	 * where the old version always gives the old column a value (drop
	 * not null with reverse using): its old column NULL says it, as the
	 * sync's INSERT rule reads it, and its reverse fills it; computed
	 * forward here first, its marker cleared, that reverse would find the
	 * row changed and the old column would stay NULL */
	for (j = 0; zdmc_lower_is_cdc(ctx) && j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		for (k = 0; replace_has(c) && k < c->nnot_null_dropped; k++)
			if (zdmc_change_replaces(c, c->not_null_dropped[k]))
				zdmc_buf_printf(&sql, "\n   AND %s IS NOT NULL",
				                Q(ctx, c->not_null_dropped[k]));
	}
	s = zdmc_lower_step(
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

void
zdmc_replace_verify_begin(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	if (!replace_creates(t))
		return;
	zdmc_buf ex;

	zdmc_buf_init(&ex, ctx->arena);
	/* each example by its primary key (NULL without one: the ctid
	 * says where), the old values and why using fails on it */
	zdmc_buf_printf(
		&ex,
		"SELECT t.ctid,\n"
		"       (SELECT pg_catalog.jsonb_object_agg(a.attname, pg_catalog.to_jsonb(t) -> a.attname::text)\n"
		"          FROM pg_catalog.pg_index i\n"
		"          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)\n"
		"         WHERE i.indrelid = %s::pg_catalog.regclass AND i.indisprimary) AS key,\n",
		zdmc_ident_literal(ctx->arena, t->qname));
	for (size_t i = 0; i < t->nchanges; i++)
		for (size_t k = 0;
		     replace_has(&t->changes[i]) && k < t->changes[i].nreplaces;
		     k++)
			zdmc_buf_printf(&ex, "       t.%s,\n",
			                Q(ctx, t->changes[i].replaces[k]));
	zdmc_buf_printf(&ex,
	                "       %s(t) AS error\n"
	                "  FROM %s t WHERE t.%s LIMIT 5",
	                replace_try_function(ctx, t), t->qname, PENDING_COLUMN);
	zdmc_lower_scan_check(
		ctx, t,
		zdmc_arena_printf(
			ctx->arena,
			"no row of %s is left unsynced (the backfill reached every row, and every using converted it)",
			t->qname),
		PENDING_COLUMN, zdmc_buf_cstr(&ex), true);
}

/* Where the new version wrote: every old column equals its reverse using
 * (agree) or some does not (!agree). */
static const char *
replace_old_matches(lower_ctx *ctx, const zdmc_table *t, const zdmc_change *c,
                    bool agree)
{
	zdmc_buf b;

	zdmc_buf_init(&b, ctx->arena);
	for (size_t i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(&b, "%s%s IS %sDISTINCT FROM (%s)",
		                i ? (agree ? " AND " : " OR ") : "",
		                Q(ctx, c->reverse[i].column),
		                agree ? "NOT " : "",
		                replace_reverse(ctx, t, &c->reverse[i], ""));
	if (c->nreverse > 1)
		return zdmc_arena_printf(ctx->arena, "(%s)", zdmc_buf_cstr(&b));
	return zdmc_buf_cstr(&b);
}

/* The replaced columns computed back, as a list for descriptions. */
static const char *
replace_reverse_names(lower_ctx *ctx, const zdmc_change *c)
{
	zdmc_buf b;

	zdmc_buf_init(&b, ctx->arena);
	for (size_t i = 0; i < c->nreverse; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "",
		                c->reverse[i].column);
	return zdmc_buf_cstr(&b);
}

/*
 * The rows the round trip of oc samples: those where some column the change
 * replaces holds a value.  For one replaced column (a split, a type change)
 * that is oc itself not NULL; for several (a merge) a row whose oc is NULL
 * but whose other columns are not is sampled too, so that a reverse turning
 * that NULL into a value ('' or a piece of another column) is found.
 */
static const char *
replace_sampled(lower_ctx *ctx, const zdmc_change *c, const zdmc_oldcol *oc)
{
	zdmc_buf b;

	if (c->nreplaces < 2)
		return zdmc_arena_printf(ctx->arena, "%s IS NOT NULL",
		                         Q(ctx, oc->column));
	zdmc_buf_init(&b, ctx->arena);
	for (size_t i = 0; i < c->nreplaces; i++)
		zdmc_buf_printf(&b, "%s%s IS NOT NULL", i ? " OR " : "(",
		                Q(ctx, c->replaces[i]));
	zdmc_buf_puts(&b, ")");
	return zdmc_buf_cstr(&b);
}

void
zdmc_replace_verify_change(zdmc_lower_ctx *ctx, const zdmc_table *t,
                           const zdmc_change *c)
{
	const zdmc_model *m = ctx->model;
	zdmc_buf forward;
	const char *where;
	size_t k;

	zdmc_buf_init(&forward, ctx->arena);
	for (k = 0; k < c->ncols; k++) {
		const zdmc_newcol *col = &c->cols[k];
		const char *f = replace_forward(ctx, t, col, "");

		zdmc_buf_printf(&forward, "%s%s IS NOT DISTINCT FROM (%s)",
		                k ? "\n        AND " : "",
		                Q(ctx, col->physical), f);
		/* irreversible: a NULL the new version wrote stays NULL and
		 * the old column keeps its value, so no such check */
		if (c->nreverse == 0)
			continue;
		/* a NULL the new version wrote is fine when the old column
		 * was computed from it */
		where = zdmc_arena_printf(
			ctx->arena,
			"%s IS NULL AND (%s) IS NOT NULL\n   AND %s",
			Q(ctx, col->physical), f,
			replace_old_matches(ctx, t, c, false));
		zdmc_lower_scan_check(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"%s is never NULL where its using expression is not",
				col->name),
			where,
			zdmc_arena_printf(
				ctx->arena,
				"SELECT ctid FROM %s WHERE %s LIMIT 5",
				t->qname, where),
			true);
	}
	if (c->nreverse == 0)
		return; /* the old shape goes stale by design: no parity */
	where = zdmc_arena_printf(ctx->arena, "NOT ((%s)\n       OR %s)",
	                          zdmc_buf_cstr(&forward),
	                          replace_old_matches(ctx, t, c, true));
	zdmc_lower_scan_check(
		ctx, t,
		zdmc_arena_printf(
			ctx->arena,
			"every row agrees: the new columns equal using (old), or, where the new version wrote, %s %s reverse using (new)",
			replace_reverse_names(ctx, c),
			c->nreverse > 1 ? "equal" : "equals"),
		where,
		zdmc_arena_printf(ctx->arena,
	                          "SELECT ctid FROM %s\n WHERE %s\n LIMIT 5",
	                          t->qname, where),
		true);
	for (k = 0; k < c->nreverse; k++) {
		const zdmc_oldcol *oc = &c->reverse[k];
		const char *col = Q(ctx, oc->column);
		const char *round_trip, *sampled;

		/* the new value written back as it is: using may rewrite
		 * values (that is what it is for), so there is nothing to get
		 * back */
		if (oc->identity)
			continue;
		round_trip = replace_round_trip(ctx, t, c, oc);
		sampled = replace_sampled(ctx, c, oc);

		where = zdmc_arena_printf(ctx->arena,
		                          "%s IS DISTINCT FROM (%s)", col,
		                          round_trip);
		zdmc_lower_check(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"reverse using gives %s back from using on a random sample of %ld rows (finds lossy transforms)",
				oc->column, m->options.verify_sample),
			zdmc_arena_printf(
				ctx->arena,
				"(SELECT * FROM %s WHERE %s\n"
				"        ORDER BY pg_catalog.random() LIMIT %ld) AS sample\n"
				" WHERE %s",
				t->qname, sampled, m->options.verify_sample,
				where),
			zdmc_arena_printf(
				ctx->arena,
				"SELECT ctid, %s, (%s) AS round_trip FROM %s\n"
				" WHERE %s AND %s\n LIMIT 5",
				col, round_trip, t->qname, sampled, where),
			NULL);
	}
}

/* The new columns' NOT NULL, as validated checks, and a check that they
 * are. */
static void
replace_not_null_table(lower_ctx *ctx, const zdmc_table *t)
{
	bool constraints = false;
	size_t j, k;

	/* NOT NULL after the counts: a row the backfill missed then fails a
	 * check that names it (exit 3 with examples), not VALIDATE (23514) */
	for (j = 0; j < t->nchanges; j++)
		for (k = 0;
		     replace_has(&t->changes[j]) && k < t->changes[j].ncols;
		     k++) {
			const zdmc_newcol *col = &t->changes[j].cols[k];

			if (col->not_null || col->carry_not_null) {
				replace_not_null_checks(ctx, t, col);
				constraints = true;
			}
		}
	if (constraints)
		zdmc_lower_check(
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

void
zdmc_replace_verify_end(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	/* with cdc an old-version INSERT leaves the new columns NULL until
	 * the sync fills them: NOT NULL waits for contract */
	if (!zdmc_lower_is_cdc(ctx))
		replace_not_null_table(ctx, t);
}

void
zdmc_replace_contract_prepare(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	if (zdmc_lower_is_cdc(ctx))
		replace_not_null_table(ctx, t);
}

void
zdmc_replace_contract_sync(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	if (replace_creates(t))
		zdmc_lower_final_step(
			ctx, t,
			"drop the function that explained unconverted rows",
			zdmc_arena_printf(ctx->arena, "DROP FUNCTION %s(%s)",
		                          replace_try_function(ctx, t),
		                          t->qname));
	if (zdmc_lower_is_cdc(ctx)) {
		replace_cdc_contract_identity(ctx, t);
		return;
	}
	zdmc_lower_final_step(ctx, t, "drop the update sync trigger",
	                      zdmc_arena_printf(ctx->arena,
	                                        "DROP TRIGGER %s ON %s",
	                                        UPDATE_TRIGGER, t->qname));
	zdmc_lower_final_step(ctx, t, "drop the insert sync trigger",
	                      zdmc_arena_printf(ctx->arena,
	                                        "DROP TRIGGER %s ON %s",
	                                        INSERT_TRIGGER, t->qname));
	zdmc_lower_final_step(ctx, t, "drop the sync function",
	                      zdmc_arena_printf(ctx->arena,
	                                        "DROP FUNCTION %s()",
	                                        replace_sync_function(ctx, t)));
}

/*
 * A created column that takes the place of the replaced column of its own
 * name (a type change, a NOT NULL or a check with using) keeps that
 * column's default, as ALTER COLUMN ... TYPE keeps it: cast to the new type
 * (not converted by using, which PostgreSQL does not apply to a default
 * either).  The compiler never sees the default; the catalog says at run
 * time.  A column the change gives a default of its own (add column) has
 * that one.
 */
static bool
replace_keeps_default(const zdmc_change *c, const zdmc_newcol *col)
{
	return replace_has(c) && col->default_expr == NULL &&
	       zdmc_change_replaces(c, col->name);
}

/*
 * A DO block that gives target's column col (both quoted, col plain) the
 * default of table's column from (plain), cast to type (NULL: the same
 * type), if from has one.  format() with %%s: pg_get_expr gives the
 * default as SQL text, and type is the plan's own, checked at compile time.
 */
static const char *
replace_copy_default(lower_ctx *ctx, const zdmc_table *t, const char *from,
                     const char *what, const char *target, const char *col,
                     const char *type)
{
	return zdmc_arena_printf(
		ctx->arena,
		"DO $zdm$\n"
		"DECLARE\n"
		"    old_default text;\n"
		"BEGIN\n"
		"    SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) INTO old_default\n"
		"      FROM pg_catalog.pg_attrdef AS d\n"
		"      JOIN pg_catalog.pg_attribute AS a\n"
		"        ON a.attrelid = d.adrelid AND a.attnum = d.adnum\n"
		"     WHERE d.adrelid = %s::pg_catalog.regclass AND a.attname = %s;\n"
		"    IF old_default IS NOT NULL THEN\n"
		"        EXECUTE pg_catalog.format('ALTER %s %%s ALTER COLUMN %%I SET DEFAULT (%%s)%s',\n"
		"                                  %s, %s, old_default);\n"
		"    END IF;\n"
		"END\n"
		"$zdm$",
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_ident_literal(ctx->arena, from), what,
		type ? zdmc_arena_printf(ctx->arena, "::%s", type) : "",
		zdmc_ident_literal(ctx->arena, target),
		zdmc_ident_literal(ctx->arena, col));
}

void
zdmc_replace_view_defaults(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	for (size_t i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		for (size_t k = 0; k < c->ncols; k++) {
			const zdmc_newcol *col = &c->cols[k];

			if (!replace_keeps_default(c, col))
				continue;
			zdmc_lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"new-version inserts get %s's default, if it has one%s (the view's; the table's at contract)",
					col->name,
					col->type
						? zdmc_arena_printf(ctx->arena,
			                                            ", as %s",
			                                            col->type)
						: ""),
				replace_copy_default(ctx, t, col->name, "VIEW",
			                             zdmc_lower_view(ctx, t),
			                             col->name, col->type),
				NULL);
		}
	}
}

void
zdmc_replace_drop_replaced(zdmc_lower_ctx *ctx, const zdmc_table *t,
                           const zdmc_change *c)
{
	for (size_t k = 0; k < c->ncols; k++)
		if (replace_keeps_default(c, &c->cols[k]))
			zdmc_lower_final_step(
				ctx, t,
				zdmc_arena_printf(
					ctx->arena,
					"give %s the default of %s, if it has one",
					c->cols[k].physical, c->cols[k].name),
				replace_copy_default(ctx, t, c->cols[k].name,
			                             "TABLE", t->qname,
			                             c->cols[k].physical,
			                             c->cols[k].type));
	for (size_t i = 0; i < c->nreplaces; i++)
		zdmc_lower_final_step(
			ctx, t,
			zdmc_arena_printf(
				ctx->arena,
				"drop the old column %s (rollback is impossible from here)",
				c->replaces[i]),
			zdmc_arena_printf(ctx->arena,
		                          "ALTER TABLE %s DROP COLUMN %s",
		                          t->qname, Q(ctx, c->replaces[i])));
}

void
zdmc_replace_contract_marker(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_lower_final_step(ctx, t, "drop the backfill marker",
	                      zdmc_arena_printf(ctx->arena,
	                                        "ALTER TABLE %s DROP COLUMN %s",
	                                        t->qname, PENDING_COLUMN));
}

void
zdmc_replace_rename_into_place(zdmc_lower_ctx *ctx, const zdmc_table *t,
                               const zdmc_change *c)
{
	for (size_t k = 0; k < c->ncols; k++)
		zdmc_lower_final_step(
			ctx, t,
			zdmc_arena_printf(ctx->arena,
		                          "rename %s into place as %s",
		                          c->cols[k].physical, c->cols[k].name),
			zdmc_arena_printf(
				ctx->arena,
				"ALTER TABLE %s RENAME COLUMN %s TO %s",
				t->qname, Q(ctx, c->cols[k].physical),
				Q(ctx, c->cols[k].name)));
}

void
zdmc_replace_contract_finish(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	size_t j, k;

	for (j = 0; j < t->nchanges; j++) {
		const zdmc_change *c = &t->changes[j];

		for (k = 0; replace_has(c) && k < c->ncols; k++) {
			const zdmc_newcol *col = &c->cols[k];
			const char *con = replace_nn_constraint(ctx, col);
			const char *set = zdmc_arena_printf(
				ctx->arena,
				"ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
				t->qname, Q(ctx, col->name));
			const char *drop = zdmc_arena_printf(
				ctx->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
				t->qname, con);

			if (col->not_null) {
				zdmc_lower_final_step(
					ctx, t,
					zdmc_arena_printf(
						ctx->arena,
						"set NOT NULL on %s (no scan: the validated check proves it)",
						col->name),
					set);
				zdmc_lower_final_step(
					ctx, t,
					zdmc_arena_printf(
						ctx->arena,
						"drop the check %s, now redundant",
						con),
					drop);
			} else if (col->carry_not_null) {
				zdmc_lower_final_step(
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
}

zdmc_plan_cdc_sync *
zdmc_replace_cdc_syncs(zdmc_lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_plan_cdc_sync *first = NULL, **tail = &first;

	for (size_t j = 0; j < t->nchanges; j++) {
		if (!replace_has(&t->changes[j]))
			continue;
		*tail = replace_cdc_sync(ctx, t, &t->changes[j]);
		tail = &(*tail)->next;
	}
	return first;
}
