/*
 * add_check.c -- add constraint N check (EXPRESSION) [using (COL = EXPR,
 * ...)].
 *
 * Without using: expand adds the constraint NOT VALID: no scan, ACCESS
 * EXCLUSIVE for an instant, and from then on it binds every writer (the
 * old version on the table, the new one through its view), which the
 * step's description says.  Verify validates it without blocking writes,
 * counting the rows that break it only when the validation finds some
 * (constraint.h, "validate").  Contract has nothing to do; rollback drops
 * it.  Facts: reads (the columns it names), constraints_created [N].
 *
 * With using, the rows that break it are mapped instead of refused: every
 * column the check reads moves to a new-shape column through the column
 * replacement (replace.h), as set not null with using does -- a shadow
 * column of the column's own type (type NULL: the catalog's when the plan
 * runs), keeping its NOT NULL, whose value, for the existing rows and every
 * old-version write, is
 *
 *     CASE WHEN NOT (check) THEN (EXPR) ELSE COL END
 *
 * so the old value where the check holds or is NULL (a CHECK passes on
 * NULL, as PostgreSQL's does), EXPR where it is false; a column using
 * keeps is assigned as itself (COL = COL).  The new version's writes go
 * back to the old column as they are (the identity reverse).  The
 * constraint goes on the shadow columns, NOT VALID at expand (it binds
 * the new version's writes; an old-version write is mapped before it is
 * checked); after expand a count stops the run, naming rows, if the
 * mapping leaves some breaking the check (the backfill would fail on the
 * first); verify validates it; contract drops the old columns and renames
 * the shadows into place, the constraint with them.  With sync = cdc an
 * old-version write leaves the shadows NULL until zdm sync maps it, so
 * expand first makes sure the check lets a row of NULLs through.  Facts:
 * reads (what the check and EXPR read), creates [COL, using the CASE
 * above], replaces [COL], reverse [COL from COL], constraints_created [N].
 *
 * Every column the check reads must be assigned: a column both versions
 * shared would let a new-version write that breaks the check be mapped
 * instead of refused (the trigger cannot tell who wrote a shared column),
 * and with sync = cdc an old-version write of it would be checked against
 * a shadow the sync has not recomputed yet, and fail.
 *
 * The expressions are checked like a using: parsed by PostgreSQL's parser,
 * one row, no subqueries, aggregates or system columns; without using the
 * check names no column another action changes (check.h).  The plain
 * form's two statements are also add column's inline check's
 * (zdmc_constraint_check_add and _validate, constraint.h).  This file must
 * not look at other changes.
 */
#include <string.h>

#include "constraint.h"
#include "ident.h"
#include "replace.h"

typedef struct add_check_data {
	zdmc_sqlexpr *expr;
} add_check_data;

/* Does expr read column? */
static bool
add_check_reads(const zdmc_sqlexpr *expr, const char *column)
{
	for (size_t i = 0; expr != NULL && i < expr->nrefs; i++)
		if (strcmp(expr->refs[i].column, column) == 0)
			return true;
	return false;
}

static void
add_check_read(zdmc_check_ctx *ck, zdmc_change *change,
               const zdmc_sqlexpr *expr)
{
	for (size_t i = 0; expr != NULL && i < expr->nrefs; i++) {
		const char *col = expr->refs[i].column;
		size_t j;

		for (j = 0; j < change->nreads; j++)
			if (strcmp(change->reads[j], col) == 0)
				break;
		if (j == change->nreads)
			zdmc_change_add_read(ck, change, col);
	}
}

/* What ends a piece of the CASE below: a newline after text that may end
 * in a -- comment, which would swallow the ")" after it. */
static const char *
add_check_eol(const zdmc_expr *e)
{
	for (size_t i = 0; i + 1 < e->len; i++)
		if (e->text[i] == '-' && e->text[i + 1] == '-')
			return "\n";
	return "";
}

/*
 * CASE WHEN NOT (check) THEN (value) ELSE column END, parsed as one
 * expression in old-shape names.  Both parts parsed alone, so this cannot
 * fail but for its length; its source offset is set so that the
 * references of value (the part a later rule may report on) point into
 * the source (unsigned arithmetic: the offset wraps and unwraps).
 */
static zdmc_sqlexpr *
add_check_forward(zdmc_check_ctx *ck, const zdmc_add_check *n,
                  const zdmc_sqlassign *a)
{
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char *head = zdmc_arena_printf(
		arena, "CASE WHEN NOT (%.*s%s) THEN (", (int)n->expr.len,
		n->expr.text, add_check_eol(&n->expr));
	zdmc_expr e;

	e.text = zdmc_arena_printf(arena, "%s%.*s%s) ELSE %s END", head,
	                           (int)a->value.len, a->value.text,
	                           add_check_eol(&a->value),
	                           zdmc_ident_quote(arena, a->column.name));
	e.len = strlen(e.text);
	e.offset = a->value.offset - strlen(head);
	e.commas = NULL;
	e.ncommas = 0;
	if (e.len > ZDMC_SQLEXPR_MAX_BYTES) {
		zdmc_diag_error(
			zdmc_check_diag(ck), a->column.offset,
			"the check of constraint \"%s\" and the using of \"%s\" are too long together (%zu bytes, at most %d)",
			n->name.name, a->column.name, e.len,
			ZDMC_SQLEXPR_MAX_BYTES);
		return NULL;
	}
	return zdmc_check_expr(ck, &e, "using");
}

/* using (COL = EXPR, ...): its rules, then its facts when they hold. */
static void
add_check_using(zdmc_check_ctx *ck, zdmc_change *change,
                const zdmc_add_check *n, const zdmc_sqlexpr *expr)
{
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	int errors = diag->nerrors;
	bool refs_ok = expr != NULL &&
	               zdmc_check_row_expr(ck, expr, "a check constraint");
	zdmc_sqlassign *items;
	zdmc_sqlexpr **values; /* by item; NULL: did not parse */
	bool *assigned;        /* by item: a column the change moves */
	size_t nitems, i, j;
	zdmc_buf names;

	nitems = zdmc_sqlexpr_assignments(arena, diag, &n->using, "using",
	                                  &items);
	values = zdmc_arena_alloc(arena, (nitems + 1) * sizeof(*values));
	assigned = zdmc_arena_alloc(arena, (nitems + 1) * sizeof(*assigned));
	for (i = 0; i < nitems; i++) {
		const zdmc_sqlassign *a = &items[i];

		values[i] = NULL;
		assigned[i] = false;
		for (j = 0; j < i; j++)
			if (strcmp(items[j].column.name, a->column.name) == 0)
				break;
		if (j < i) {
			zdmc_diag_error(diag, a->column.offset,
			                "using assigns \"%s\" twice",
			                a->column.name);
			zdmc_diag_note(diag, items[j].column.offset,
			               "first assigned here");
			continue;
		}
		values[i] = zdmc_check_expr(ck, &a->value, "using");
		if (expr != NULL && !add_check_reads(expr, a->column.name)) {
			zdmc_diag_error(
				diag, a->column.offset,
				"using assigns \"%s\", which the check of constraint \"%s\" does not read: a new value there cannot make a row satisfy it",
				a->column.name, n->name.name);
			continue;
		}
		/* a column the check may not read was reported there */
		if (!refs_ok)
			continue;
		zdmc_check_ident_length(ck, &a->column);
		zdmc_check_changed_column(ck, change, &a->column);
		zdmc_check_added_column(ck, &a->column);
		zdmc_check_new_name(ck, change, &a->column);
		assigned[i] = true;
	}
	/* every column the check reads, assigned (a malformed item may be
	 * the missing one's: then say only that) */
	for (i = 0;
	     refs_ok && nitems == n->using.ncommas + 1 && i < expr->nrefs;
	     i++) {
		const char *col = expr->refs[i].column;

		for (j = 0; j < i; j++)
			if (strcmp(expr->refs[j].column, col) == 0)
				break;
		if (j < i)
			continue; /* reported at its first reference */
		for (j = 0; j < nitems; j++)
			if (strcmp(items[j].column.name, col) == 0)
				break;
		if (j < nitems)
			continue;
		zdmc_diag_error(
			diag, expr->src_offset + expr->refs[i].offset,
			"the check of constraint \"%s\" reads \"%s\", which using does not assign: every column the check reads moves to the new shape, so that the check binds the new version's writes and never refuses an old-version write; write %s = %s to keep its values",
			n->name.name, col, col, col);
	}
	/* the facts; each forward only when nothing was wrong (it is parsed
	 * from pieces whose errors were reported where they are) */
	add_check_read(ck, change, expr);
	zdmc_buf_init(&names, arena);
	for (i = 0; i < nitems; i++) {
		const zdmc_sqlassign *a = &items[i];
		zdmc_newcol *col;
		zdmc_expr identity;

		if (!assigned[i])
			continue;
		add_check_read(ck, change, values[i]);
		col = zdmc_change_add_create(ck, change, a->column.name, NULL);
		/* a NOT NULL column stays NOT NULL (the catalog says) */
		col->carry_not_null = true;
		if (values[i] != NULL && diag->nerrors == errors)
			col->forward = add_check_forward(ck, n, a);
		zdmc_change_add_replace(ck, change, a->column.name);
		/* the old version gets the new value back as it is */
		identity.text = zdmc_ident_quote(arena, a->column.name);
		identity.len = strlen(identity.text);
		identity.offset = a->column.offset;
		identity.commas = NULL;
		identity.ncommas = 0;
		zdmc_change_add_reverse(
			ck, change, a->column.name,
			zdmc_check_expr(ck, &identity, "reverse using"))
			->identity = true;
		zdmc_buf_printf(&names, "%s%s", names.len ? ", " : "",
		                a->column.name);
	}
	zdmc_replace_register(
		ck, change,
		zdmc_arena_printf(arena,
	                          "add check %s, mapping %s where it fails",
	                          n->name.name, zdmc_buf_cstr(&names)));
}

static void
add_check_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	add_check_data *d = ZDMC_NEW(zdmc_check_arena(ck), add_check_data);

	zdmc_check_constraint_name(ck, change, &n->name);
	d->expr = zdmc_check_expr(ck, &n->expr, "check");
	change->op_data = d;
	if (n->using.text != NULL) {
		add_check_using(ck, change, n, d->expr);
		return;
	}
	if (d->expr != NULL) {
		zdmc_check_kept_expr(ck, change, d->expr, "a check constraint");
		add_check_read(ck, change, d->expr);
	}
}

/* "add check users_email_at", "add check price_positive, mapping price
 * where it fails" */
static const char *
add_check_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "add check %s", n->name.name);
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : ", mapping ",
		                change->cols[i].name);
	if (change->ncols > 0)
		zdmc_buf_puts(&b, " where it fails");
	return zdmc_buf_cstr(&b);
}

static void
add_check_facts(zdmc_arena *arena, const zdmc_change *change,
                zdmc_plan_change *out)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);

	zdmc_constraint_created(arena, out, n->name.name);
}

typedef struct add_check_map {
	zdmc_lower_ctx *l;
	const zdmc_table *t;
	bool shadow; /* the new shape's columns, zdm_new_* while in flight */
	const zdmc_change *change;
} add_check_map;

/* Each column as the table names it, unqualified: a check constraint sees
 * only its own row.  With using, the check reads the shadow columns. */
static const char *
add_check_column(void *arg, const zdmc_colref *ref)
{
	add_check_map *m = arg;

	return zdmc_lower_quote(
		m->l, m->shadow ? zdmc_model_new_physical(m->t, ref->column)
				: ref->column);
}

static const char *
add_check_expr(zdmc_lower_ctx *l, const zdmc_table *t,
               const zdmc_change *change)
{
	const add_check_data *d = change->op_data;
	add_check_map m = {l, t, change->replace != NULL, change};

	return zdmc_sqlexpr_rewrite(l->arena, d->expr, add_check_column, &m);
}

/*
 * sync = cdc, with using: an old-version write leaves the shadow columns
 * NULL until zdm sync has computed them, and the constraint on them then
 * sees only NULLs (the check reads no other column).  A check that is
 * false there would refuse such writes: the step finds out on a row of
 * NULLs of the table's own types, before anything binds, and stops the
 * expand (its transaction leaves nothing behind).
 */
static void
add_check_cdc_nulls(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	const add_check_data *d = change->op_data;
	add_check_map m = {l, t, false, change};
	zdmc_buf cols;
	const char *body;

	zdmc_buf_init(&cols, l->arena);
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(&cols, "%s%s", i ? ", " : "",
		                change->cols[i].name);
	body = zdmc_arena_printf(
		l->arena,
		"BEGIN\n"
		"    -- with sync = cdc an old-version write leaves the new shape's columns\n"
		"    -- (%s) NULL until zdm sync maps it: the check must let NULLs through\n"
		"    IF (SELECT (%s) IS FALSE\n"
		"          FROM pg_catalog.jsonb_populate_record(NULL::%s, '{}'::pg_catalog.jsonb)) THEN\n"
		"        RAISE EXCEPTION USING\n"
		"            ERRCODE = 'check_violation',\n"
		"            MESSAGE = %s,\n"
		"            HINT = 'use sync = trigger, whose trigger maps each old-version write before the check sees it, or a check that is not false when those columns are NULL';\n"
		"    END IF;\n"
		"END\n",
		zdmc_buf_cstr(&cols),
		zdmc_sqlexpr_rewrite(l->arena, d->expr, add_check_column, &m),
		t->qname,
		zdmc_ident_literal(
			l->arena,
			zdmc_arena_printf(
				l->arena,
				"check %s is false when %s %s NULL, which an old-version write leaves there until zdm sync has mapped it: such writes would fail",
				n->name.name, zdmc_buf_cstr(&cols),
				change->ncols > 1 ? "are" : "is")));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"make sure check %s lets a row through whose %s %s NULL (sync = cdc leaves them so until zdm sync has caught up); stop here if not",
			n->name.name, zdmc_buf_cstr(&cols),
			change->ncols > 1 ? "are" : "is"),
		zdmc_constraint_do(l, body), NULL);
}

/* ADD CONSTRAINT name CHECK (expr) NOT VALID, described by what. */
static void
add_check_add_step(zdmc_lower_ctx *l, const zdmc_table *t, const char *name,
                   const char *expr, const char *what)
{
	const char *qname = zdmc_lower_quote(l, name);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t, what,
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s) NOT VALID",
			t->qname, qname, expr),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
	                          t->qname, qname));
}

void
zdmc_constraint_check_add(zdmc_lower_ctx *l, const zdmc_table *t,
                          const char *name, const char *expr)
{
	add_check_add_step(
		l, t, name, expr,
		zdmc_arena_printf(
			l->arena,
			"add check constraint %s NOT VALID (no scan): from here on every write to %s, old version or new, must satisfy it; the rows already there are checked at verify",
			name, t->qname));
}

/* The validation (constraint.h); what describes the rows that break it. */
static void
add_check_validate(zdmc_lower_ctx *l, const zdmc_table *t, const char *name,
                   const char *expr, const char *shown, const char *what)
{
	zdmc_constraint_validate(
		l, t, name, "check_violation",
		zdmc_arena_printf(l->arena, "%s WHERE (%s) IS FALSE", t->qname,
	                          expr),
		zdmc_arena_printf(
			l->arena,
			"SELECT %s FROM %s WHERE (%s) IS FALSE LIMIT 5", shown,
			t->qname, expr),
		what);
}

void
zdmc_constraint_check_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                               const char *name, const char *expr,
                               const char *shown)
{
	add_check_validate(l, t, name, expr, shown,
	                   "rows for which the expression is false");
}

/* With using, the constraint goes on the shadow columns, and the old
 * version's writes are mapped rather than refused. */
static void
add_check_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                 const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	const char *expr = add_check_expr(l, t, change);

	if (change->replace == NULL) {
		zdmc_constraint_check_add(l, t, n->name.name, expr);
		return;
	}
	if (zdmc_lower_is_cdc(l))
		add_check_cdc_nulls(l, t, change);
	add_check_add_step(
		l, t, n->name.name, expr,
		zdmc_arena_printf(
			l->arena,
			"add check constraint %s NOT VALID (no scan) on the new shape's columns: from here on every new-version write must satisfy it, while %s; the rows already there are mapped by the backfill and checked at verify",
			n->name.name,
			zdmc_lower_is_cdc(l)
				? "an old-version write that breaks it is mapped by zdm sync (until then its new columns hold NULL, which the step before made sure the check lets through)"
				: "the sync trigger maps an old-version write that breaks it before it is checked"));
}

/* A column the check reads, as using maps it: its forward, in old-shape
 * names (with using, every column the check reads is mapped). */
static const char *
add_check_mapped_column(void *arg, const zdmc_colref *ref)
{
	add_check_map *m = arg;
	const zdmc_change *change = m->change;

	for (size_t i = 0; i < change->ncols; i++)
		if (strcmp(change->cols[i].name, ref->column) == 0)
			return zdmc_arena_printf(m->l->arena, "(%s)",
			                         change->cols[i].forward->text);
	return zdmc_lower_quote(m->l, ref->column);
}

/*
 * With using, after expand: the rows whose mapped values still break the
 * check, counted before the backfill writes them (each such write would
 * fail on the constraint, the first one stopping the backfill with
 * PostgreSQL's message): the run stops here (exit 3) with examples, their
 * old values and the mapped ones.  A scan that blocks no write.
 */
static void
add_check_mapping(zdmc_lower_ctx *l, const zdmc_table *t,
                  const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	const add_check_data *d = change->op_data;
	add_check_map m = {l, t, false, change};
	const char *where;
	zdmc_buf cols;

	if (change->replace == NULL)
		return;
	where = zdmc_arena_printf(l->arena, "(%s) IS FALSE",
	                          zdmc_sqlexpr_rewrite(l->arena, d->expr,
	                                               add_check_mapped_column,
	                                               &m));
	zdmc_buf_init(&cols, l->arena);
	zdmc_buf_puts(&cols, "ctid");
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(&cols, ", %s",
		                zdmc_lower_quote(l, change->cols[i].name));
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(
			&cols, ", (%s) AS %s", change->cols[i].forward->text,
			zdmc_lower_quote(
				l, zdmc_arena_printf(l->arena, "mapped_%s",
		                                     change->cols[i].name)));
	zdmc_lower_scan_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"no row of %s still breaks %s once using has mapped it (the backfill would fail on it): a scan that blocks no write",
			t->qname, n->name.name),
		where,
		zdmc_arena_printf(l->arena,
	                          "SELECT %s FROM %s WHERE %s LIMIT 5",
	                          zdmc_buf_cstr(&cols), t->qname, where),
		false);
}

static void
add_check_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                 const zdmc_change *change)
{
	const zdmc_add_check *n = ZDMC_ACTION_CAST(
		zdmc_add_check, ZDMC_ACTION_ADD_CHECK, change->action);
	zdmc_buf cols;

	/* the mapped columns agree with using first: a row that breaks the
	 * check after its mapping is then the mapping's fault */
	if (change->replace != NULL)
		zdmc_replace_verify_change(l, t, change);
	/* the examples show the row's location and what the check read
	 * (with using, the old value and the mapped one) */
	zdmc_buf_init(&cols, l->arena);
	zdmc_buf_puts(&cols, "ctid");
	for (size_t i = 0; i < change->nreads; i++)
		zdmc_buf_printf(&cols, ", %s",
		                zdmc_lower_quote(l, change->reads[i]));
	for (size_t i = 0; i < change->ncols; i++)
		zdmc_buf_printf(
			&cols, ", %s AS %s",
			zdmc_lower_quote(l, change->cols[i].physical),
			zdmc_lower_quote(
				l, zdmc_arena_printf(l->arena, "mapped_%s",
		                                     change->cols[i].name)));
	add_check_validate(
		l, t, n->name.name, add_check_expr(l, t, change),
		zdmc_buf_cstr(&cols),
		change->replace != NULL
			? "rows whose mapped values break the check: using must map every row that breaks it to one that does not"
			: "rows for which the expression is false");
}

static void
add_check_drop(zdmc_lower_ctx *l, const zdmc_table *t,
               const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_drop_replaced(l, t, change);
}

static void
add_check_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                   const zdmc_change *change)
{
	if (change->replace != NULL)
		zdmc_replace_rename_into_place(l, t, change);
}

const zdmc_op zdmc_op_add_check = {
	.name = "add_check",
	.check = add_check_check,
	.summary = add_check_summary,
	.facts = add_check_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = add_check_expand,
			[ZDMC_SLOT_EXPAND_AFTER] = add_check_mapping,
			[ZDMC_SLOT_VERIFY] = add_check_verify,
			[ZDMC_SLOT_CONTRACT_DROP] = add_check_drop,
			[ZDMC_SLOT_CONTRACT] = add_check_contract,
		},
};
