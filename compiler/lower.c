/*
 * lower.c -- the phase driver: turn a checked migration into the plan,
 * every statement in its phase, with its compensation.
 *
 * The driver owns what is the same for every migration: the five phases
 * in order, their approval gates, step ids and transaction labels (one
 * transaction per table in expand and contract, so no client ever sees
 * half of a table's change -- the lesson of pgroll's #905/#906), the new
 * version's schema and a view per table in it, the switch gate, and with
 * sync = cdc the slot, publication and origin and the catch_up and
 * stop_sync steps.  Per table and phase it then calls, in a fixed order,
 * the column replacement's table-wide steps (replace.h, for tables with a
 * change that registered with it) and the ops' hooks slot by slot
 * (ops/ops.h), each change in source order.
 *
 * The new version is a schema of views that rename columns; each is built
 * from the catalog at run time (the compiler never sees the table's other
 * columns), by a DO block whose every line is in the plan.  Its columns
 * come from the changes' facts: a created column takes the place of the
 * first column its change replaces, the others vanish, a renamed one shows
 * under its new name.  A view is named after its table's new name (a
 * change's table_renamed_to fact, else its own), and lives in the version
 * schema of its table's schema: one version schema per schema, created in
 * the expand transaction of that schema's first table, all dropped by the
 * last step of contract.  Dropping them lets new-version clients, whose
 * search_path is "<version schemas>, <schemas>" ("public_m, public" for
 * most migrations), fall through to the contracted tables, which now have
 * their shape and their names.
 *
 * This file must not report errors (everything it relies on was checked)
 * and must not test which op a change is: what differs by operation is in
 * the op's hooks and facts.
 */
#include <stdint.h>
#include <string.h>

#include "ident.h"
#include "lower.h"
#include "ops/ops.h"
#include "replace.h"
#include "sqlstmt.h"
#include "zdmc.h"

typedef zdmc_lower_ctx lower_ctx;

/* ---- names ----------------------------------------------------------- */

static const char *
Q(lower_ctx *ctx, const char *name)
{
	return zdmc_ident_quote(ctx->arena, name);
}

const char *
zdmc_lower_quote(zdmc_lower_ctx *l, const char *name)
{
	return Q(l, name);
}

static const char *
lower_view(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(ctx->arena, t->version_schema, t->new_name);
}

const char *
zdmc_lower_view(zdmc_lower_ctx *l, const zdmc_table *table)
{
	return lower_view(l, table);
}

/* The view as the descriptions name it: unquoted, as the source does. */
static const char *
lower_view_title(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_arena_printf(ctx->arena, "%s.%s", t->version_schema,
	                         t->new_name);
}

/* The table as it is after contract (its new name, if renamed). */
static const char *
lower_final_qname(lower_ctx *ctx, const zdmc_table *t)
{
	return zdmc_ident_qualified(ctx->arena, t->schema, t->new_name);
}

/* "a, b": names of the model, quoted, joined. */
static const char *
lower_join(lower_ctx *ctx, const char *const *names, size_t n)
{
	zdmc_buf b;

	zdmc_buf_init(&b, ctx->arena);
	for (size_t i = 0; i < n; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "", Q(ctx, names[i]));
	return zdmc_buf_cstr(&b);
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

/* A DO block around body, with a dollar-quote tag the body cannot close
 * (a column named x$zdm$ would close a fixed one). */
static const char *
lower_do_block(lower_ctx *ctx, const char *body)
{
	const char *tag = lower_dollar_tag(ctx, body);

	return zdmc_arena_printf(ctx->arena, "DO %s\n%s%s", tag, body, tag);
}

zdmc_plan_step *
zdmc_lower_step(zdmc_lower_ctx *l, zdmc_step_kind kind, const zdmc_table *table,
                const char *description, const char *sql,
                const char *compensation)
{
	return lower_step(l, kind, table, description, sql, compensation);
}

zdmc_plan_step *
zdmc_lower_autocommit_step(zdmc_lower_ctx *l, const zdmc_table *table,
                           const char *description, const char *sql,
                           const char *compensation, const char *index)
{
	/* never grouped: the runtime runs it outside any transaction */
	const char *label = l->tx_label;
	zdmc_plan_step *s;

	l->tx_label = NULL;
	s = lower_step(l, ZDMC_STEP_AUTOCOMMIT, table, description, sql,
	               compensation);
	l->tx_label = label;
	s->index = index;
	return s;
}

const char *
zdmc_lower_comment_text(zdmc_lower_ctx *l, const char *text)
{
	return lower_comment_text(l, text);
}

const char *
zdmc_lower_dollar_tag(zdmc_lower_ctx *l, const char *body)
{
	return lower_dollar_tag(l, body);
}

/* The hooks of every change of t at slot, in source order. */
static void
lower_slot(lower_ctx *ctx, const zdmc_table *t, zdmc_slot slot)
{
	for (size_t i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		if (c->op->lower[slot] != NULL)
			c->op->lower[slot](ctx, t, c);
	}
}

/* One line of the view's VALUES: old_column's place shows new_shape
 * (position orders several in one place; '' hides the column). */
static void
lower_view_value(lower_ctx *ctx, zdmc_buf *values, const char *old_column,
                 size_t position, const char *new_shape)
{
	zdmc_buf_printf(values, "%s(%s, %zu, %s)",
	                values->len ? ",\n                        " : "",
	                zdmc_ident_literal(ctx->arena, old_column), position,
	                zdmc_ident_literal(ctx->arena, new_shape));
}

/*
 * The new version's view, built from the catalog: every column of the table
 * in order, the changed ones replaced in place by their new shape.  From
 * the facts: a renamed column shows under its new name; a change that
 * replaces columns through shadow columns shows its created columns in
 * the place of the first column it replaces and hides the others; created
 * columns that replace nothing come last; dropped columns are hidden.
 */
const char *
zdmc_lower_view_grants(zdmc_lower_ctx *l, const char *table, const char *view,
                       const char *schema)
{
	return zdmc_arena_printf(
		l->arena,
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
		"    END LOOP;\n",
		zdmc_ident_literal(l->arena, table),
		zdmc_ident_literal(l->arena, view),
		zdmc_ident_literal(l->arena, schema));
}

static const char *
lower_view_sql(lower_ctx *ctx, const zdmc_table *t)
{
	zdmc_buf values, extra, select, sql;
	bool hidden = false;
	size_t i, j;

	zdmc_buf_init(&values, ctx->arena);
	zdmc_buf_init(&extra, ctx->arena);
	for (i = 0; i < t->nchanges; i++) {
		const zdmc_change *c = &t->changes[i];

		/* a dropped column is gone from the new shape */
		for (j = 0; j < c->ndrops; j++) {
			lower_view_value(ctx, &values, c->drops[j], 1, "");
			hidden = true;
		}
		for (j = 0; j < c->nrenames; j++)
			lower_view_value(
				ctx, &values, c->renames[j].column, 1,
				zdmc_arena_printf(ctx->arena, "%s AS %s",
			                          Q(ctx, c->renames[j].column),
			                          Q(ctx, c->renames[j].to)));
		for (j = 0; j < c->ncols; j++) {
			const char *shape =
				zdmc_arena_printf(ctx->arena, "%s AS %s",
			                          Q(ctx, c->cols[j].physical),
			                          Q(ctx, c->cols[j].name));

			if (c->nreplaces > 0)
				lower_view_value(ctx, &values, c->replaces[0],
				                 j + 1, shape);
			else
				zdmc_buf_printf(&extra, ", %s", shape);
		}
		for (j = c->ncols ? 1 : 0;
		     c->replace != NULL && j < c->nreplaces; j++) {
			lower_view_value(ctx, &values, c->replaces[j], 1, "");
			hidden = true;
		}
	}
	zdmc_buf_init(&select, ctx->arena);
	if (values.len == 0)
		/* no column changes shape (the table is only renamed, gets
		 * new defaults, or only gains columns, which come last):
		 * every column as it is */
		zdmc_buf_printf(
			&select,
			"    -- every column of %s in order; zdm's own columns hidden\n"
			"    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)\n"
			"      INTO select_list\n"
			"      FROM pg_catalog.pg_attribute AS a\n"
			"     WHERE a.attrelid = %s::pg_catalog.regclass\n"
			"       AND a.attnum > 0 AND NOT a.attisdropped\n"
			"       AND a.attname !~ '^zdm_';\n",
			t->qname, zdmc_ident_literal(ctx->arena, t->qname));
	else
		zdmc_buf_printf(
			&select,
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
			"       AND a.attname !~ '^zdm_'%s;\n",
			t->qname, zdmc_buf_cstr(&values),
			zdmc_ident_literal(ctx->arena, t->qname),
			hidden ? "\n       AND m.new_shape IS DISTINCT FROM ''"
			       : "");
	zdmc_buf_init(&sql, ctx->arena);
	zdmc_buf_printf(
		&sql,
		"DO $zdm$\n"
		"DECLARE\n"
		"    select_list text;\n"
		"    acl record;\n"
		"BEGIN\n"
		"%s"
		"%s"
		"    EXECUTE pg_catalog.format('CREATE VIEW %%s WITH (security_invoker = true)'\n"
		"                              ' AS SELECT %%s FROM %%s', %s, select_list, %s);\n"
		"%s"
		"END\n"
		"$zdm$",
		zdmc_buf_cstr(&select),
		extra.len ? zdmc_arena_printf(
				    ctx->arena,
				    "    select_list := select_list || %s;\n",
				    zdmc_ident_literal(ctx->arena,
	                                               zdmc_buf_cstr(&extra)))
			  : "",
		zdmc_ident_literal(ctx->arena, lower_view(ctx, t)),
		zdmc_ident_literal(ctx->arena, t->qname),
		zdmc_lower_view_grants(ctx, t->qname, lower_view(ctx, t),
	                               Q(ctx, t->version_schema)));
	return zdmc_buf_cstr(&sql);
}

/* ---- sync = cdc: the source ---------------------------------------------- */

static bool
lower_is_cdc(const lower_ctx *ctx)
{
	return strcmp(ctx->model->options.sync, "cdc") == 0;
}

bool
zdmc_lower_is_cdc(const zdmc_lower_ctx *l)
{
	return lower_is_cdc(l);
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

static void
lower_cdc(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	zdmc_plan_cdc *cdc = ZDMC_NEW(ctx->arena, zdmc_plan_cdc);
	zdmc_plan_cdc_table **ttail = &cdc->tables;
	const char **key;
	size_t i;

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

		if (!t->cdc_carried)
			continue;
		pt = ZDMC_NEW(ctx->arena, zdmc_plan_cdc_table);
		pt->table = t->qname;
		pt->key = key;
		pt->nkey = m->options.nkey;
		pt->syncs =
			t->needs_sync ? zdmc_replace_cdc_syncs(ctx, t) : NULL;
		for (stail = &pt->syncs; *stail; stail = &(*stail)->next)
			;
		/* the changes that keep a second shape on their own */
		for (size_t j = 0; j < t->nchanges; j++)
			if (t->changes[j].op->cdc_sync != NULL) {
				*stail = t->changes[j].op->cdc_sync(
					ctx, t, &t->changes[j]);
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

/*
 * Drop the publication with its tables held in SHARE mode (writes wait, for
 * an instant, under lock_timeout).  Without the lock PostgreSQL 15 lets a
 * write that is building the table's publication list meet the publication
 * half gone, and the client's statement fails with XX000 "cache lookup
 * failed for publication" (seen under new-version traffic at contract).
 * With it, a writer takes its lock after the drop commits and reads the
 * catalog afresh.  The tables are found by the publication, by OID: a
 * table renamed earlier in contract is still locked.
 */
static const char *
lower_drop_publication_sql(lower_ctx *ctx)
{
	const char *name = lower_cdc_name(ctx);

	return zdmc_arena_printf(
		ctx->arena,
		"DO $zdm$\n"
		"DECLARE\n"
		"    published regclass;\n"
		"BEGIN\n"
		"    FOR published IN SELECT pr.prrelid::pg_catalog.regclass\n"
		"                       FROM pg_catalog.pg_publication_rel AS pr\n"
		"                       JOIN pg_catalog.pg_publication AS p ON p.oid = pr.prpubid\n"
		"                      WHERE p.pubname = %s ORDER BY pr.prrelid LOOP\n"
		"        EXECUTE pg_catalog.format('LOCK TABLE %%s IN SHARE MODE', published);\n"
		"    END LOOP;\n"
		"END\n"
		"$zdm$;\n"
		"DROP PUBLICATION %s",
		zdmc_ident_literal(ctx->arena, name), Q(ctx, name));
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
		if (m->tables[i].cdc_carried)
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

/* ---- the phases ----------------------------------------------------------- */

/* cond: the check's condition on rows of t, for in_flight in a cdc plan
 * (NULL: a count that changes in flight cannot make wrong) */
static zdmc_plan_step *
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
	return s;
}

void
zdmc_lower_check(zdmc_lower_ctx *l, const zdmc_table *table,
                 const char *description, const char *from_where,
                 const char *examples, const char *cond)
{
	lower_check(l, table, description, from_where, examples, cond);
}

void
zdmc_lower_scan_check(zdmc_lower_ctx *l, const zdmc_table *table,
                      const char *description, const char *cond,
                      const char *examples, bool in_flight)
{
	zdmc_plan_step *s = lower_check(
		l, table, description,
		zdmc_arena_printf(l->arena, "%s WHERE %s", table->qname, cond),
		examples, in_flight ? cond : NULL);

	s->count_where = cond;
}

void
zdmc_lower_diagnose(zdmc_lower_ctx *l, zdmc_plan_step *s,
                    const char *description, const char *from_where,
                    const char *examples)
{
	s->diagnose_description = description;
	s->diagnose_sql = zdmc_arena_printf(l->arena, "SELECT count(*) FROM %s",
	                                    from_where);
	s->diagnose_examples = examples;
}

/*
 * The sql (...) statements of the phase (contract: those "at contract";
 * expand: the others) written before source offset before, that are not
 * in the plan yet: their steps, in source order, between the tables'.
 */
static void
lower_sqls_before(lower_ctx *ctx, bool contract, size_t before, size_t *next)
{
	const zdmc_model *m = ctx->model;

	for (; *next < m->nsqls && m->sqls[*next].offset < before; (*next)++)
		if (m->sqls[*next].at_contract == contract)
			zdmc_sqlstmt_lower(ctx, &m->sqls[*next]);
}

/* Does the migration drop t (drop table)? */
static bool
lower_table_dropped(const zdmc_table *t)
{
	for (size_t i = 0; i < t->nchanges; i++)
		if (t->changes[i].table_dropped)
			return true;
	return false;
}

/* Is t the first table of its schema (whose expand creates the schema's
 * version schema)? */
static bool
lower_first_of_schema(const zdmc_model *m, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(m->tables[j].schema, m->tables[i].schema) == 0)
			return false;
	return true;
}

static void
lower_expand(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	size_t i, next_sql = 0;

	lower_phase(ctx, ZDMC_PHASE_EXPAND);
	lower_approval_gate(ctx, ZDMC_PHASE_EXPAND);
	if (lower_is_native(ctx))
		lower_cdc_expand_source(ctx);
	if (m->ntables == 0)
		/* statements on no table alone: an empty schema for the new
		 * version, made as a table's first one would be */
		lower_step(ctx, ZDMC_STEP_SQL, NULL,
		           zdmc_arena_printf(
				   ctx->arena,
				   "create schema %s for the new version",
				   m->version_schema),
		           zdmc_arena_printf(ctx->arena, "CREATE SCHEMA %s",
		                             Q(ctx, m->version_schema)),
		           zdmc_arena_printf(ctx->arena, "DROP SCHEMA %s",
		                             Q(ctx, m->version_schema)));
	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];
		const char *schema = Q(ctx, t->version_schema);

		lower_sqls_before(ctx, false, t->offset, &next_sql);
		ctx->tx_label =
			zdmc_arena_printf(ctx->arena, "expand %s", t->qname);
		if (lower_first_of_schema(m, i))
			lower_step(
				ctx, ZDMC_STEP_SQL, NULL,
				zdmc_arena_printf(
					ctx->arena,
					"create schema %s for the new version's views",
					t->version_schema),
				zdmc_arena_printf(ctx->arena,
			                          "CREATE SCHEMA %s", schema),
				zdmc_arena_printf(ctx->arena, "DROP SCHEMA %s",
			                          schema));
		lower_slot(ctx, t, ZDMC_SLOT_EXPAND_CREATE);
		if (t->needs_sync)
			zdmc_replace_expand(ctx, t);
		else
			zdmc_replace_add_created(ctx, t);
		lower_slot(ctx, t, ZDMC_SLOT_EXPAND);
		if (lower_table_dropped(t))
			/* the new version has no such table: the name resolves
			 * to a view of no column and no row, so its reads find
			 * nothing and its writes fail, instead of reaching the
			 * table through the search_path */
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"hide %s from the new version: view %s has no column and no row",
					t->qname, lower_view_title(ctx, t)),
				zdmc_arena_printf(
					ctx->arena,
					"CREATE VIEW %s AS SELECT FROM %s WHERE false",
					lower_view(ctx, t), t->qname),
				zdmc_arena_printf(ctx->arena, "DROP VIEW %s",
			                          lower_view(ctx, t)));
		else
			lower_step(
				ctx, ZDMC_STEP_SQL, t,
				zdmc_arena_printf(
					ctx->arena,
					"create view %s: %s in the new shape",
					lower_view_title(ctx, t), t->qname),
				lower_view_sql(ctx, t),
				zdmc_arena_printf(ctx->arena, "DROP VIEW %s",
			                          lower_view(ctx, t)));
		if (t->needs_sync)
			zdmc_replace_view_defaults(ctx, t);
		lower_slot(ctx, t, ZDMC_SLOT_EXPAND_VIEW);
		ctx->tx_label = NULL;
		lower_slot(ctx, t, ZDMC_SLOT_EXPAND_AFTER);
	}
	lower_sqls_before(ctx, false, SIZE_MAX, &next_sql);
}

static void
lower_backfill(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	size_t i;

	lower_phase(ctx, ZDMC_PHASE_BACKFILL);
	lower_approval_gate(ctx, ZDMC_PHASE_BACKFILL);
	if (lower_is_cdc(ctx))
		lower_catch_up(
			ctx, false,
			"wait until zdm sync is caught up: writes since expand reach both shapes before the backfill");
	for (i = 0; i < m->ntables; i++) {
		if (m->tables[i].needs_sync)
			zdmc_replace_backfill(ctx, &m->tables[i]);
		lower_slot(ctx, &m->tables[i], ZDMC_SLOT_BACKFILL);
	}
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
	for (i = 0; i < ctx->model->ntables; i++) {
		const zdmc_table *t = &ctx->model->tables[i];

		if (t->needs_sync)
			zdmc_replace_verify_begin(ctx, t);
		lower_slot(ctx, t, ZDMC_SLOT_VERIFY);
		if (t->needs_sync)
			zdmc_replace_verify_end(ctx, t);
	}
}

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
	for (i = 0; i < m->ntables; i++)
		lower_slot(ctx, &m->tables[i], ZDMC_SLOT_SWITCH);
}

static zdmc_plan_step *
lower_final_step(lower_ctx *ctx, const zdmc_table *t, const char *description,
                 const char *sql)
{
	zdmc_plan_step *s =
		lower_step(ctx, ZDMC_STEP_SQL, t, description, sql, NULL);

	s->point_of_no_return = true;
	return s;
}

zdmc_plan_step *
zdmc_lower_final_step(zdmc_lower_ctx *l, const zdmc_table *table,
                      const char *description, const char *sql)
{
	return lower_final_step(l, table, description, sql);
}

static void
lower_contract_table(lower_ctx *ctx, const zdmc_table *t)
{
	ctx->tx_label = zdmc_arena_printf(ctx->arena, "contract %s", t->qname);
	/* The view first: a query through it locks the view, then the table;
	 * taking the table first (DROP TRIGGER) and the view second would
	 * deadlock with every new-version query in between. */
	lower_final_step(
		ctx, t,
		zdmc_arena_printf(
			ctx->arena,
			"drop view %s (new-version clients fall through to %s)",
			lower_view_title(ctx, t), lower_final_qname(ctx, t)),
		zdmc_arena_printf(ctx->arena, "DROP VIEW %s",
	                          lower_view(ctx, t)));
	if (t->needs_sync)
		zdmc_replace_contract_sync(ctx, t);
	lower_slot(ctx, t, ZDMC_SLOT_CONTRACT_DROP);
	if (t->needs_sync)
		zdmc_replace_contract_marker(ctx, t);
	lower_slot(ctx, t, ZDMC_SLOT_CONTRACT);
	if (t->needs_sync)
		zdmc_replace_contract_finish(ctx, t);
	lower_slot(ctx, t, ZDMC_SLOT_CONTRACT_LAST);
	ctx->tx_label = NULL;
	lower_slot(ctx, t, ZDMC_SLOT_CONTRACT_AFTER);
}

static void
lower_contract(lower_ctx *ctx)
{
	size_t i, next_sql = 0;

	lower_phase(ctx, ZDMC_PHASE_CONTRACT);
	lower_approval_gate(ctx, ZDMC_PHASE_CONTRACT);
	if (lower_is_cdc(ctx)) {
		lower_catch_up(
			ctx, true,
			"wait until zdm sync has applied every change committed before this step");
		for (i = 0; i < ctx->model->ntables; i++)
			if (ctx->model->tables[i].needs_sync)
				zdmc_replace_contract_prepare(
					ctx, &ctx->model->tables[i]);
		lower_step(
			ctx, ZDMC_STEP_STOP_SYNC, NULL,
			"stop zdm sync after it has applied every change so far: contract drops what it writes to",
			NULL, NULL);
	}
	for (i = 0; i < ctx->model->ntables; i++) {
		lower_sqls_before(ctx, true, ctx->model->tables[i].offset,
		                  &next_sql);
		lower_contract_table(ctx, &ctx->model->tables[i]);
	}
	lower_sqls_before(ctx, true, SIZE_MAX, &next_sql);
	if (lower_is_native(ctx)) {
		const char *name = lower_cdc_name(ctx);

		lower_final_step(ctx, NULL,
		                 zdmc_arena_printf(ctx->arena,
		                                   "drop replication slot %s",
		                                   name),
		                 lower_drop_slot_sql(ctx));
		lower_final_step(
			ctx, NULL,
			zdmc_arena_printf(
				ctx->arena,
				"drop publication %s (its tables held in SHARE mode for an instant: writes wait, reads go on)",
				name),
			lower_drop_publication_sql(ctx));
		lower_final_step(ctx, NULL,
		                 zdmc_arena_printf(ctx->arena,
		                                   "drop replication origin %s",
		                                   name),
		                 lower_drop_origin_sql(ctx));
	}
	/* every version schema in one statement: one step, all or none */
	lower_final_step(
		ctx, NULL,
		zdmc_arena_printf(
			ctx->arena, "drop %s %s: the migration is complete",
			ctx->model->nschemas > 1 ? "schemas" : "schema",
			lower_join(ctx, ctx->model->version_schemas,
	                           ctx->model->nschemas)),
		zdmc_arena_printf(ctx->arena, "DROP SCHEMA %s",
	                          lower_join(ctx, ctx->model->version_schemas,
	                                     ctx->model->nschemas)));
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

const char *
zdmc_lower_at(zdmc_lower_ctx *l, size_t offset)
{
	return lower_at(l, offset);
}

/* An arena copy of a list of names (the plan outlives nothing here, but
 * keeps the model's lists as they are). */
static const char **
lower_names_copy(lower_ctx *ctx, const char *const *names, size_t n)
{
	const char **v = zdmc_arena_alloc(ctx->arena, (n + 1) * sizeof(char *));

	for (size_t i = 0; i < n; i++)
		v[i] = names[i];
	return v;
}

/* A change's facts, as plan format 3 states them. */
static zdmc_plan_change *
lower_change_facts(lower_ctx *ctx, const zdmc_change *c)
{
	zdmc_plan_change *pc = ZDMC_NEW(ctx->arena, zdmc_plan_change);
	zdmc_plan_column **coltail = &pc->creates;
	zdmc_plan_rename **rtail = &pc->renames;
	zdmc_plan_reverse **vtail = &pc->reverse;
	zdmc_plan_default **dtail = &pc->defaults;
	size_t k;

	pc->change = c->op->name;
	pc->at = lower_at(ctx, c->offset);
	pc->summary = c->op->summary(ctx->arena, c);
	pc->reads = lower_names_copy(ctx, c->reads, c->nreads);
	pc->nreads = c->nreads;
	for (k = 0; k < c->ncols; k++) {
		zdmc_plan_column *col = ZDMC_NEW(ctx->arena, zdmc_plan_column);

		col->name = c->cols[k].name;
		col->type = c->cols[k].type;
		col->using =
			c->cols[k].forward_implied || c->cols[k].forward == NULL
				? NULL
				: c->cols[k].forward->text;
		/* what the source declares; a NOT NULL carried from the old
		 * column is the catalog's to tell */
		col->not_null = c->cols[k].not_null;
		*coltail = col;
		coltail = &col->next;
	}
	pc->replaces = lower_names_copy(ctx, c->replaces, c->nreplaces);
	pc->nreplaces = c->nreplaces;
	for (k = 0; k < c->nrenames; k++) {
		zdmc_plan_rename *r = ZDMC_NEW(ctx->arena, zdmc_plan_rename);

		r->name = c->renames[k].column;
		r->to = c->renames[k].to;
		*rtail = r;
		rtail = &r->next;
	}
	for (k = 0; k < c->nreverse; k++) {
		zdmc_plan_reverse *r = ZDMC_NEW(ctx->arena, zdmc_plan_reverse);

		r->column = c->reverse[k].column;
		r->using = c->reverse[k].reverse->text;
		*vtail = r;
		vtail = &r->next;
	}
	pc->irreversible = c->irreversible;
	pc->drops = lower_names_copy(ctx, c->drops, c->ndrops);
	pc->ndrops = c->ndrops;
	pc->not_null_set =
		lower_names_copy(ctx, c->not_null_set, c->nnot_null_set);
	pc->nnot_null_set = c->nnot_null_set;
	pc->not_null_dropped = lower_names_copy(ctx, c->not_null_dropped,
	                                        c->nnot_null_dropped);
	pc->nnot_null_dropped = c->nnot_null_dropped;
	pc->table_renamed_to = c->table_renamed_to;
	pc->table_dropped = c->table_dropped;
	for (k = 0; k < c->ndefaults; k++) {
		zdmc_plan_default *d = ZDMC_NEW(ctx->arena, zdmc_plan_default);

		d->column = c->defaults[k].column;
		d->value = c->defaults[k].value ? c->defaults[k].value->text
		                                : NULL;
		*dtail = d;
		dtail = &d->next;
	}
	if (c->op->facts != NULL)
		c->op->facts(ctx->arena, c, pc);
	return pc;
}

static void
lower_summary(lower_ctx *ctx)
{
	const zdmc_model *m = ctx->model;
	zdmc_plan_table **ttail = &ctx->plan->tables;
	zdmc_plan_statement **stail = &ctx->plan->statements;
	size_t i, j;

	for (i = 0; i < m->ntables; i++) {
		const zdmc_table *t = &m->tables[i];
		zdmc_plan_table *pt = ZDMC_NEW(ctx->arena, zdmc_plan_table);
		zdmc_plan_change **ctail = &pt->changes;

		pt->name = t->qname;
		for (j = 0; j < t->nchanges; j++) {
			*ctail = lower_change_facts(ctx, &t->changes[j]);
			ctail = &(*ctail)->next;
		}
		*ttail = pt;
		ttail = &pt->next;
	}
	for (i = 0; i < m->nsqls; i++) {
		const zdmc_sqlstmt *q = &m->sqls[i];
		zdmc_plan_statement *ps =
			ZDMC_NEW(ctx->arena, zdmc_plan_statement);

		ps->statement = q->statement;
		ps->at = lower_at(ctx, q->offset);
		ps->summary = q->summary;
		ps->index_dropped = q->index_dropped;
		ps->type_created = q->type_created;
		ps->enum_type = q->enum_type;
		ps->label_added = q->label_added;
		ps->label_neighbour = q->label_neighbour;
		ps->label_renamed = q->label_renamed;
		ps->label_renamed_to = q->label_renamed_to;
		*stail = ps;
		stail = &ps->next;
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
	plan->format_version = ZDMC_PLAN_FORMAT_VERSION;
	plan->compiler = "zdmc " ZDMC_VERSION;
	plan->migration = model->migration;
	plan->source_file = slash ? slash + 1 : src->name;
	plan->min_server_version_num = 150000; /* security_invoker views */
	plan->batch_size = model->options.batch_size;
	plan->batch_pause_ms = model->options.batch_pause_ms;
	plan->lock_timeout_ms = model->options.lock_timeout_ms;
	plan->lock_retries = model->options.lock_retries;
	plan->statement_timeout_ms = model->options.statement_timeout_ms;
	plan->approve = zdmc_arena_alloc(arena, ZDMC_NPHASES * sizeof(char *));
	for (i = 0; i < ZDMC_NPHASES; i++)
		if (model->options.approve & (1u << i))
			plan->approve[n++] = zdmc_phase_names[i];
	plan->napprove = n;
	plan->sync = model->options.sync;
	plan->verify_sample = model->options.verify_sample;
	plan->version_schema = model->version_schema;
	if (model->nschemas > 1) {
		plan->version_schemas = model->version_schemas;
		plan->nversion_schemas = model->nschemas;
	}
	/* every version schema, then every schema: a name resolves as it did
	 * in the old version's "public, sales", through the views first */
	plan->search_path = zdmc_arena_printf(
		arena, "%s, %s",
		lower_join(&ctx, model->version_schemas, model->nschemas),
		lower_join(&ctx, model->schemas, model->nschemas));

	lower_summary(&ctx);
	if (lower_is_cdc(&ctx))
		lower_cdc(&ctx);
	lower_expand(&ctx);
	lower_backfill(&ctx);
	lower_verify(&ctx);
	lower_switch(&ctx);
	lower_contract(&ctx);
}
