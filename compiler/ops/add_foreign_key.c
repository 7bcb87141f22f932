/*
 * add_foreign_key.c -- add constraint N foreign key (COLUMN, ...)
 * references [SCHEMA.]TABLE [(COLUMN, ...)] [on delete ACTION] [on update
 * ACTION].
 *
 * Expand adds the constraint NOT VALID: no scan, SHARE ROW EXCLUSIVE on
 * both tables for an instant, and from then on every write binds to it (a
 * row of the table must name a row of the referenced one; a delete there
 * applies on delete), which the step's description says.  Verify validates
 * it without blocking writes and counts the rows that name no referenced
 * row only when the validation finds some (constraint.h, "validate").
 * Contract has nothing to do; rollback drops it.
 *
 * The referenced table's schema defaults to the table's own.  Without
 * referenced columns the referenced table's primary key is meant; the
 * compiler does not know its columns, so the count compares the key
 * values as jsonb, the referenced columns' names read from the
 * constraint's catalog entry (it runs only when the validation failed).
 * Facts: reads (its columns), constraints_created [N], references
 * [{table, columns}] (preflight: the referenced table exists with a
 * primary key or unique index on exactly those columns).
 */
#include <string.h>
#include <strings.h>

#include "constraint.h"
#include "ident.h"

typedef struct add_foreign_key_data {
	const char *ref_qname; /* the referenced table, quoted, qualified */
} add_foreign_key_data;

static const zdmc_add_foreign_key *
add_foreign_key_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_add_foreign_key,
	                        ZDMC_ACTION_ADD_FOREIGN_KEY, change->action);
}

const char *
zdmc_constraint_check_references(zdmc_check_ctx *ck,
                                 const zdmc_add_foreign_key *refs,
                                 const char *name, size_t ncolumns)
{
	zdmc_diag *diag = zdmc_check_diag(ck);
	const char *schema = refs->ref_schema.name
	                             ? refs->ref_schema.name
	                             : zdmc_check_table(ck)->schema;

	if (refs->ref_schema.name != NULL) {
		zdmc_check_ident_length(ck, &refs->ref_schema);
		if (strncasecmp(refs->ref_schema.name, "zdm", 3) == 0)
			zdmc_diag_error(
				diag, refs->ref_schema.offset,
				"schema \"%s\": schema names starting with \"zdm\" are reserved for zdm's own objects",
				refs->ref_schema.name);
	}
	zdmc_check_ident_length(ck, &refs->ref_table);
	for (size_t i = 0; i < refs->ref_columns.n; i++) {
		const zdmc_name *col = &refs->ref_columns.items[i];

		zdmc_check_ident_length(ck, col);
		zdmc_check_reserved(ck, col);
		for (size_t j = 0; j < i; j++)
			if (strcmp(refs->ref_columns.items[j].name,
			           col->name) == 0) {
				zdmc_diag_error(
					diag, col->offset,
					"column \"%s\" appears twice in the referenced columns",
					col->name);
				break;
			}
	}
	if (refs->ref_columns.n > 0 && refs->ref_columns.n != ncolumns)
		zdmc_diag_error(
			diag, refs->ref_columns.offset,
			"foreign key \"%s\" has %zu column%s and references %zu; the two lists pair up one to one",
			name, ncolumns, ncolumns == 1 ? "" : "s",
			refs->ref_columns.n);
	if (refs->repeated_action != 0)
		zdmc_diag_error(
			diag, refs->repeated_action,
			"a referential action is given twice (on delete, or on update)");
	return zdmc_ident_qualified(zdmc_check_arena(ck), schema,
	                            refs->ref_table.name);
}

static void
add_foreign_key_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_add_foreign_key *n = add_foreign_key_node(change);
	add_foreign_key_data *d =
		ZDMC_NEW(zdmc_check_arena(ck), add_foreign_key_data);

	zdmc_check_constraint_name(ck, change, &n->name);
	zdmc_constraint_check_columns(ck, change, &n->columns,
	                              "the columns of a foreign key");
	d->ref_qname = zdmc_constraint_check_references(ck, n, n->name.name,
	                                                n->columns.n);
	change->op_data = d;
}

/* "add foreign key orders_user_id_fkey (user_id) references
 * public.users (id)" */
static const char *
add_foreign_key_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_add_foreign_key *n = add_foreign_key_node(change);
	const add_foreign_key_data *d = change->op_data;
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_printf(&b, "add foreign key %s (", n->name.name);
	for (size_t i = 0; i < n->columns.n; i++)
		zdmc_buf_printf(&b, "%s%s", i ? ", " : "",
		                n->columns.items[i].name);
	zdmc_buf_printf(&b, ") references %s", d->ref_qname);
	if (n->ref_columns.n > 0) {
		zdmc_buf_puts(&b, " (");
		for (size_t i = 0; i < n->ref_columns.n; i++)
			zdmc_buf_printf(&b, "%s%s", i ? ", " : "",
			                n->ref_columns.items[i].name);
		zdmc_buf_puts(&b, ")");
	}
	return zdmc_buf_cstr(&b);
}

void
zdmc_constraint_references_fact(zdmc_arena *arena,
                                const zdmc_add_foreign_key *refs,
                                const char *ref_qname, zdmc_plan_change *out)
{
	zdmc_plan_reference *ref = ZDMC_NEW(arena, zdmc_plan_reference);

	ref->table = ref_qname;
	ref->ncolumns = refs->ref_columns.n;
	ref->columns = zdmc_arena_alloc(arena, (refs->ref_columns.n + 1) *
	                                               sizeof(char *));
	for (size_t i = 0; i < refs->ref_columns.n; i++)
		ref->columns[i] = refs->ref_columns.items[i].name;
	out->references = ref;
}

static void
add_foreign_key_facts(zdmc_arena *arena, const zdmc_change *change,
                      zdmc_plan_change *out)
{
	const zdmc_add_foreign_key *n = add_foreign_key_node(change);
	const add_foreign_key_data *d = change->op_data;

	zdmc_constraint_created(arena, out, n->name.name);
	zdmc_constraint_references_fact(arena, n, d->ref_qname, out);
}

void
zdmc_constraint_foreign_key_add(zdmc_lower_ctx *l, const zdmc_table *t,
                                const char *name, const zdmc_name_list *columns,
                                const zdmc_add_foreign_key *refs,
                                const char *ref_qname)
{
	const char *qname = zdmc_lower_quote(l, name);
	/* A self-reference (a tree of rows) locks one table, not two. */
	bool self = strcmp(t->qname, ref_qname) == 0;
	zdmc_buf sql;

	zdmc_buf_init(&sql, l->arena);
	zdmc_buf_printf(&sql,
	                "ALTER TABLE %s ADD CONSTRAINT %s\n"
	                "    FOREIGN KEY (%s) REFERENCES %s",
	                t->qname, qname,
	                zdmc_constraint_column_list(l, columns, ""), ref_qname);
	if (refs->ref_columns.n > 0)
		zdmc_buf_printf(
			&sql, " (%s)",
			zdmc_constraint_column_list(l, &refs->ref_columns, ""));
	if (refs->on_delete.sql != NULL)
		zdmc_buf_printf(&sql, " ON DELETE %s", refs->on_delete.sql);
	if (refs->on_update.sql != NULL)
		zdmc_buf_printf(&sql, " ON UPDATE %s", refs->on_update.sql);
	zdmc_buf_puts(&sql, " NOT VALID");
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"add foreign key %s NOT VALID (no scan; SHARE ROW EXCLUSIVE on %s%s%s for an instant): from here on every write to %s, old version or new, must name a row of %s that exists, and deletes and updates there act on it; the rows already there are checked at verify",
			name, t->qname, self ? "" : " and ",
			self ? "" : ref_qname, t->qname, ref_qname),
		zdmc_buf_cstr(&sql),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s DROP CONSTRAINT %s",
	                          t->qname, qname));
}

static void
add_foreign_key_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const zdmc_add_foreign_key *n = add_foreign_key_node(change);
	const add_foreign_key_data *d = change->op_data;

	zdmc_constraint_foreign_key_add(l, t, n->name.name, &n->columns, n,
	                                d->ref_qname);
}

/*
 * "p.a = c.x AND p.b = c.y" with the referenced columns as written; without
 * them, each referenced column's value, found by its name in the
 * constraint's catalog entry, as jsonb against the column's own.
 */
static const char *
add_foreign_key_match(zdmc_lower_ctx *l, const zdmc_table *t, const char *name,
                      const zdmc_name_list *columns,
                      const zdmc_add_foreign_key *refs)
{
	zdmc_buf b;

	zdmc_buf_init(&b, l->arena);
	for (size_t i = 0; i < columns->n; i++) {
		const char *col = zdmc_lower_quote(l, columns->items[i].name);

		if (refs->ref_columns.n > 0)
			zdmc_buf_printf(
				&b, "%sp.%s = c.%s", i ? " AND " : " ",
				zdmc_lower_quote(
					l, refs->ref_columns.items[i].name),
				col);
		else
			zdmc_buf_printf(
				&b,
				"%s\n"
				"                     pg_catalog.to_jsonb(p) -> (SELECT a.attname::text\n"
				"                           FROM pg_catalog.pg_constraint AS k\n"
				"                           JOIN pg_catalog.pg_attribute AS a\n"
				"                             ON a.attrelid = k.confrelid AND a.attnum = k.confkey[%zu]\n"
				"                          WHERE k.conrelid = %s AND k.conname = %s)\n"
				"                     = pg_catalog.to_jsonb(c.%s)",
				i ? " AND" : "", i + 1,
				zdmc_constraint_regclass(l, t),
				zdmc_ident_literal(l->arena, name), col);
	}
	return zdmc_buf_cstr(&b);
}

void
zdmc_constraint_foreign_key_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                                     const char *name,
                                     const zdmc_name_list *columns,
                                     const zdmc_add_foreign_key *refs,
                                     const char *ref_qname)
{
	const char *cols = zdmc_constraint_column_list(l, columns, "c.");
	zdmc_buf orphan;

	/* MATCH SIMPLE: a row with a NULL in its key references nothing */
	zdmc_buf_init(&orphan, l->arena);
	for (size_t i = 0; i < columns->n; i++)
		zdmc_buf_printf(&orphan, "%sc.%s IS NOT NULL", i ? " AND " : "",
		                zdmc_lower_quote(l, columns->items[i].name));
	zdmc_buf_printf(
		&orphan, "\n   AND NOT EXISTS (SELECT FROM %s AS p WHERE%s)",
		ref_qname, add_foreign_key_match(l, t, name, columns, refs));
	zdmc_constraint_validate(
		l, t, name, "foreign_key_violation",
		zdmc_arena_printf(l->arena, "%s AS c\n WHERE %s", t->qname,
	                          zdmc_buf_cstr(&orphan)),
		zdmc_arena_printf(l->arena,
	                          "SELECT c.ctid, %s FROM %s AS c\n"
	                          " WHERE %s\n"
	                          " LIMIT 5",
	                          cols, t->qname, zdmc_buf_cstr(&orphan)),
		zdmc_arena_printf(l->arena, "rows that name no row of %s",
	                          ref_qname));
}

static void
add_foreign_key_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const zdmc_add_foreign_key *n = add_foreign_key_node(change);
	const add_foreign_key_data *d = change->op_data;

	zdmc_constraint_foreign_key_validate(l, t, n->name.name, &n->columns, n,
	                                     d->ref_qname);
}

const zdmc_op zdmc_op_add_foreign_key = {
	.name = "add_foreign_key",
	.check = add_foreign_key_check,
	.summary = add_foreign_key_summary,
	.facts = add_foreign_key_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = add_foreign_key_expand,
			[ZDMC_SLOT_VERIFY] = add_foreign_key_verify,
		},
};
