/*
 * split_table.c -- split table T move (C1, C2, ...) into T2 key (K, ...).
 *
 * The seeds' "move optional fields into their own table".  The old version
 * keeps T as it is until contract.  The new version sees T without the
 * moved columns (the driver's view leaves out what a change drops), and,
 * under T2's name in the version schema, a view of T's rows that have a
 * moved value: K and the moved columns.  T itself stays the one place both
 * versions write, as for every change zdm makes; T2 is its shadow, a real
 * table that contract leaves in place:
 *
 *   expand    T2 made from T's own column types (CREATE TABLE AS ... WITH
 *             NO DATA), keyed by K, with a foreign key to T that follows
 *             T's deletes and key updates.  An AFTER trigger on T carries
 *             every write of the moved columns to T2: an upsert when one
 *             has a value, a delete of T2's row when none has.  The new
 *             version's view has INSTEAD OF triggers that write T: an
 *             insert sets the moved columns of a row of T that has none
 *             (a row with some is a duplicate key; no row of T, a foreign
 *             key violation, as T2 would say), an update sets them, a
 *             delete sets them NULL.  Every write reaches T first and T2
 *             from there, in one order: old and new versions writing one
 *             row cannot deadlock on the two tables.  With sync = cdc,
 *             there is no trigger on T: zdm sync does its work
 *             (split_table_cdc_sync).
 *   backfill  INSERT INTO T2 ... SELECT from T over ranges of pages, for the
 *             rows with a moved value, FOR SHARE, ON CONFLICT DO NOTHING: a
 *             row the trigger reached first is as it is now; the lock waits
 *             for a writer of the row, and reads it as it committed (or
 *             skips it, gone or without a value), where the statement's
 *             snapshot may be older than that write: the trigger may have
 *             deleted T2's row meanwhile, and the foreign key would refuse
 *             a row of T that is gone.
 *   verify    a row of T has a row of T2 if and only if it has a moved
 *             value, and then the same values.
 *   contract  the view, the trigger and its function go, then the moved
 *             columns of T (the point of no return).  T2 stays, with its
 *             key and foreign key; the new version finds it under the same
 *             name.
 *
 * Rollback drops T2 and the view: T held every value all along.
 * Preflight wants T2's name free, K a unique key of T (a references fact),
 * and the moved columns droppable as drop column wants them (not NOT NULL
 * without a default, nothing on them and another column).  Facts: reads
 * (the moved columns, K), drops (the moved columns), references (T's K),
 * split_into (T2).
 *
 * Must not: guess K (the compiler never sees the catalog: key (...) is
 * required).
 */
#include <string.h>
#include <strings.h>

#include "../ident.h"
#include "ops.h"

typedef struct split_table_data {
	const char *table;         /* T, quoted and qualified */
	const char *into;          /* T2, quoted and qualified */
	const char *into_name;     /* T2's own name, plain */
	const char *fwd_fn;        /* zdm_split_<T>(), in T's schema */
	const char *view_fn;       /* zdm_split_view_<T>(), in T's schema */
	const char *key_list;      /* "id" or "a, b", quoted */
	const char *moved_list;    /* "bio, avatar_url", quoted */
	const char **key, **moved; /* plain */
	size_t nkey, nmoved;
} split_table_data;

static const zdmc_split_table *
split_table_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_split_table, ZDMC_ACTION_SPLIT_TABLE,
	                        change->action);
}

/* names as a quoted, comma-separated list */
static const char *
split_list(zdmc_arena *arena, const char **names, size_t n, const char *prefix)
{
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	for (size_t i = 0; i < n; i++)
		zdmc_buf_printf(&b, "%s%s%s", i ? ", " : "", prefix,
		                zdmc_ident_quote(arena, names[i]));
	return zdmc_buf_cstr(&b);
}

/* a list of names, each checked once and not reserved; NULL on error */
static const char **
split_names(zdmc_check_ctx *ck, const zdmc_name_list *list, const char *what)
{
	zdmc_arena *arena = zdmc_check_arena(ck);
	const char **names =
		zdmc_arena_alloc(arena, (list->n + 1) * sizeof(char *));
	bool bad = false;

	for (size_t i = 0; i < list->n; i++) {
		const zdmc_name *n = &list->items[i];

		zdmc_check_ident_length(ck, n);
		bad |= zdmc_check_reserved(ck, n);
		for (size_t j = 0; j < i; j++)
			if (strcmp(names[j], n->name) == 0) {
				zdmc_diag_error(
					zdmc_check_diag(ck), n->offset,
					"%s column \"%s\" is listed twice",
					what, n->name);
				bad = true;
			}
		names[i] = n->name;
	}
	return bad ? NULL : names;
}

static void
split_table_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_split_table *n = split_table_node(change);
	const zdmc_table *t = zdmc_check_table(ck);
	zdmc_arena *arena = zdmc_check_arena(ck);
	zdmc_diag *diag = zdmc_check_diag(ck);
	split_table_data *d = ZDMC_NEW(arena, split_table_data);
	const char *schema;

	if (strcmp(n->move.name, "move") != 0) {
		zdmc_diag_error(
			diag, n->move.offset,
			"expected \"move\" after the table's name, not \"%s\"",
			n->move.name);
		return;
	}
	if (n->key.items == NULL) {
		zdmc_diag_error(
			diag, n->into.offset + strlen(n->into.name),
			"split table needs key (COLUMN, ...) after the new table's name: the columns of a unique key of %s (its primary key), which the new table is keyed by (the compiler never reads the catalog)",
			t->qname);
		return;
	}
	zdmc_check_ident_length(ck, &n->into);
	schema = n->into_schema.name ? n->into_schema.name : t->schema;
	if (n->into_schema.name != NULL) {
		zdmc_check_ident_length(ck, &n->into_schema);
		/* the new version finds it in the version schema of T's */
		if (strcmp(schema, t->schema) != 0)
			zdmc_diag_error(
				diag, n->into_schema.offset,
				"the new table goes in %s's schema, \"%s\", not \"%s\" (another schema is not supported yet)",
				t->qname, t->schema, schema);
	}
	if (strncasecmp(n->into.name, "zdm", 3) == 0)
		zdmc_diag_error(
			diag, n->into.offset,
			"table \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
			n->into.name);
	if (strcmp(schema, t->schema) == 0 &&
	    strcmp(n->into.name, t->name) == 0)
		zdmc_diag_error(diag, n->into.offset,
		                "split table %s into itself", t->qname);
	d->moved = split_names(ck, &n->columns, "moved");
	d->key = split_names(ck, &n->key, "key");
	if (d->moved == NULL || d->key == NULL)
		return;
	d->nmoved = n->columns.n;
	d->nkey = n->key.n;
	for (size_t i = 0; i < n->key.n; i++)
		for (size_t j = 0; j < n->columns.n; j++)
			if (strcmp(d->key[i], d->moved[j]) == 0)
				zdmc_diag_error(
					diag, n->key.items[i].offset,
					"key column \"%s\" is moved too: the key stays in %s and is copied into the new table",
					d->key[i], t->qname);
	for (size_t i = 0; i < n->columns.n; i++) {
		zdmc_check_changed_column(ck, change, &n->columns.items[i]);
		zdmc_change_add_read(ck, change, d->moved[i]);
		zdmc_change_add_drop(ck, change, d->moved[i]);
	}
	for (size_t i = 0; i < n->key.n; i++)
		zdmc_change_add_read(ck, change, d->key[i]);
	d->table = t->qname;
	d->into = zdmc_ident_qualified(arena, schema, n->into.name);
	d->fwd_fn = zdmc_ident_qualified(
		arena, t->schema,
		zdmc_arena_printf(arena, "zdm_split_%s", t->name));
	d->view_fn = zdmc_ident_qualified(
		arena, t->schema,
		zdmc_arena_printf(arena, "zdm_split_view_%s", t->name));
	d->into_name = n->into.name;
	if (strlen(t->name) + strlen("zdm_split_view_") > ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			diag, change->offset,
			"table name \"%s\" is too long for zdm's split functions (zdm_split_view_%s must fit in %d bytes)",
			t->name, t->name, ZDMC_MAX_IDENT_BYTES);
	d->key_list = split_list(arena, d->key, d->nkey, "");
	d->moved_list = split_list(arena, d->moved, d->nmoved, "");
	change->op_data = d;
}

/* "move bio, avatar_url into public.user_profiles (key id)" */
static const char *
split_table_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const split_table_data *d = change->op_data;

	return zdmc_arena_printf(arena, "move %s into %s (key %s)",
	                         d->moved_list, d->into, d->key_list);
}

static void
split_table_facts(zdmc_arena *arena, const zdmc_change *change,
                  zdmc_plan_change *out)
{
	const split_table_data *d = change->op_data;
	zdmc_plan_reference *ref = ZDMC_NEW(arena, zdmc_plan_reference);

	ref->table = d->table;
	ref->columns = d->key;
	ref->ncolumns = d->nkey;
	out->references = ref;
	out->split_into = d->into;
}

/* "a = NEW.a AND b = NEW.b" over the key, for a row image (NEW, OLD) */
static const char *
split_key_match(zdmc_lower_ctx *l, const split_table_data *d, const char *row)
{
	zdmc_buf b;

	zdmc_buf_init(&b, l->arena);
	for (size_t i = 0; i < d->nkey; i++) {
		const char *k = zdmc_lower_quote(l, d->key[i]);

		zdmc_buf_printf(&b, "%s%s = %s.%s", i ? " AND " : "", k, row,
		                k);
	}
	return zdmc_buf_cstr(&b);
}

/* "a = NEW.a, b = NEW.b" (or "a = NULL, ...") over the moved columns */
static const char *
split_assign(zdmc_lower_ctx *l, const split_table_data *d, const char *from)
{
	zdmc_buf b;

	zdmc_buf_init(&b, l->arena);
	for (size_t i = 0; i < d->nmoved; i++) {
		const char *c = zdmc_lower_quote(l, d->moved[i]);

		if (from == NULL)
			zdmc_buf_printf(&b, "%s%s = NULL", i ? ", " : "", c);
		else
			zdmc_buf_printf(&b, "%s%s = %s.%s", i ? ", " : "", c,
			                from, c);
	}
	return zdmc_buf_cstr(&b);
}

/* "(NEW.a IS NOT NULL OR NEW.b IS NOT NULL)": a moved value to carry */
static const char *
split_any_value(zdmc_lower_ctx *l, const split_table_data *d, const char *row)
{
	zdmc_buf b;

	zdmc_buf_init(&b, l->arena);
	zdmc_buf_puts(&b, "(");
	for (size_t i = 0; i < d->nmoved; i++)
		zdmc_buf_printf(&b, "%s%s%s%s IS NOT NULL", i ? " OR " : "",
		                row ? row : "", row ? "." : "",
		                zdmc_lower_quote(l, d->moved[i]));
	zdmc_buf_puts(&b, ")");
	return zdmc_buf_cstr(&b);
}

/* CREATE FUNCTION name() RETURNS trigger with body (plpgsql) */
static const char *
split_function(zdmc_lower_ctx *l, const char *name, const char *body)
{
	const char *tag = zdmc_lower_dollar_tag(l, body);

	return zdmc_arena_printf(l->arena,
	                         "CREATE FUNCTION %s() RETURNS trigger\n"
	                         "LANGUAGE plpgsql AS %s%s%s",
	                         name, tag, body, tag);
}

/*
 * The function behind the trigger on T: every write of the moved columns
 * reaches T2.  It reads the row as it is when the trigger fires, not NEW:
 * an AFTER trigger fires at the end of its statement, and a later write of
 * the same statement (an INSTEAD OF trigger of the new version's view,
 * setting the moved columns of a row inserted in a WITH clause) may have
 * fired first.
 */
static const char *
split_forward_sql(zdmc_lower_ctx *l, const zdmc_table *t,
                  const split_table_data *d)
{
	return split_function(
		l, d->fwd_fn,
		zdmc_arena_printf(
			l->arena,
			"\nDECLARE\n"
			"    cur record;\n"
			"BEGIN\n"
			"    SELECT %s INTO cur FROM ONLY %s WHERE %s;\n"
			"    IF FOUND AND %s THEN\n"
			"        INSERT INTO %s (%s, %s)\n"
			"        VALUES (%s, %s)\n"
			"        ON CONFLICT (%s) DO UPDATE SET %s;\n"
			"    ELSE\n"
			"        -- no moved value (or no row): no row in %s\n"
			"        DELETE FROM %s WHERE %s;\n"
			"    END IF;\n"
			"    RETURN NULL;\n"
			"END\n",
			d->moved_list, t->qname, split_key_match(l, d, "NEW"),
			split_any_value(l, d, "cur"), d->into, d->key_list,
			d->moved_list,
			split_list(l->arena, d->key, d->nkey, "NEW."),
			split_list(l->arena, d->moved, d->nmoved, "cur."),
			d->key_list, split_assign(l, d, "EXCLUDED"), d->into,
			d->into, split_key_match(l, d, "NEW")));
}

/*
 * The function behind the INSTEAD OF triggers of the new version's view
 * of T2: each write goes to T (the trigger on T carries it to T2), with
 * the errors T2 itself would give.  A key is not updated through it.
 */
/* fmt with a and b (or a alone), as a SQL string literal */
static const char *
split_literal(zdmc_lower_ctx *l, const char *fmt, const char *a, const char *b)
{
	return zdmc_ident_literal(l->arena,
	                          zdmc_arena_printf(l->arena, fmt, a, b));
}

static const char *
split_view_sql(zdmc_lower_ctx *l, const zdmc_table *t,
               const split_table_data *d)
{
	zdmc_buf key_changed;

	zdmc_buf_init(&key_changed, l->arena);
	for (size_t i = 0; i < d->nkey; i++) {
		const char *k = zdmc_lower_quote(l, d->key[i]);

		zdmc_buf_printf(&key_changed,
		                "%sNEW.%s IS DISTINCT FROM OLD.%s",
		                i ? " OR " : "", k, k);
	}
	return split_function(
		l, d->view_fn,
		zdmc_arena_printf(
			l->arena,
			"\nBEGIN\n"
			"    IF TG_OP = 'INSERT' THEN\n"
			"        UPDATE ONLY %s SET %s\n"
			"         WHERE %s AND NOT %s;\n"
			"        IF NOT FOUND THEN\n"
			"            IF EXISTS (SELECT FROM ONLY %s WHERE %s) THEN\n"
			"                RAISE unique_violation USING\n"
			"                    MESSAGE = %s,\n"
			"                    DETAIL = %s;\n"
			"            END IF;\n"
			"            RAISE foreign_key_violation USING\n"
			"                MESSAGE = %s,\n"
			"                DETAIL = %s;\n"
			"        END IF;\n"
			"        RETURN NEW;\n"
			"    ELSIF TG_OP = 'UPDATE' THEN\n"
			"        IF %s THEN\n"
			"            RAISE feature_not_supported USING\n"
			"                MESSAGE = %s;\n"
			"        END IF;\n"
			"        UPDATE ONLY %s SET %s WHERE %s;\n"
			"        RETURN NEW;\n"
			"    END IF;\n"
			"    UPDATE ONLY %s SET %s WHERE %s;\n"
			"    RETURN OLD;\n"
			"END\n",
			t->qname, split_assign(l, d, "NEW"),
			split_key_match(l, d, "NEW"),
			split_any_value(l, d, NULL), t->qname,
			split_key_match(l, d, "NEW"),
			/* the messages as literals: a quoted name may hold a ' */
			split_literal(
				l,
				"duplicate key value violates unique constraint \"%s_pkey\"",
				d->into_name, NULL),
			split_literal(
				l, "a row of %s with this key exists already",
				d->into, NULL),
			split_literal(
				l,
				"insert or update on table \"%s\" violates foreign key constraint",
				d->into_name, NULL),
			split_literal(l, "no row of %s has this key", t->qname,
	                              NULL),
			zdmc_buf_cstr(&key_changed),
			split_literal(
				l,
				"the key of %s cannot change while zdm splits %s",
				d->into, t->qname),
			t->qname, split_assign(l, d, "NEW"),
			split_key_match(l, d, "OLD"), t->qname,
			split_assign(l, d, NULL),
			split_key_match(l, d, "OLD")));
}

/* The new version's name for T2 until contract: a view in T's version
 * schema. */
static const char *
split_view(zdmc_lower_ctx *l, const zdmc_table *t, const split_table_data *d)
{
	return zdmc_ident_qualified(l->arena, t->version_schema, d->into_name);
}

/* expand, in T's transaction: T2, its keys, the trigger on T */
static void
split_table_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                   const zdmc_change *change)
{
	const split_table_data *d = change->op_data;

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create %s with the types of %s's %s and %s, empty",
			d->into, t->qname, d->key_list, d->moved_list),
		zdmc_arena_printf(l->arena,
	                          "CREATE TABLE %s AS\n"
	                          "    SELECT %s, %s FROM ONLY %s WITH NO DATA",
	                          d->into, d->key_list, d->moved_list,
	                          t->qname),
		zdmc_arena_printf(l->arena, "DROP TABLE %s", d->into));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"key %s by %s, with a foreign key to %s that follows its deletes and key updates (the new table is empty: nothing to scan)",
			d->into, d->key_list, t->qname),
		zdmc_arena_printf(
			l->arena,
			"ALTER TABLE %s\n"
			"    ADD PRIMARY KEY (%s),\n"
			"    ADD FOREIGN KEY (%s) REFERENCES %s (%s)\n"
			"        ON DELETE CASCADE ON UPDATE CASCADE",
			d->into, d->key_list, d->key_list, t->qname,
			d->key_list),
		NULL);
	/* with sync = cdc, zdm sync carries them (split_table_cdc_sync) */
	if (zdmc_lower_is_cdc(l))
		return;
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create the function that carries every write of %s's %s to %s",
			t->qname, d->moved_list, d->into),
		split_forward_sql(l, t, d),
		zdmc_arena_printf(l->arena, "DROP FUNCTION %s()", d->fwd_fn));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"run it after inserts into %s and updates of %s",
			t->qname, d->moved_list),
		zdmc_arena_printf(
			l->arena,
			"CREATE TRIGGER zdm_split AFTER INSERT OR UPDATE OF %s ON %s\n"
			"    FOR EACH ROW EXECUTE FUNCTION %s()",
			d->moved_list, t->qname, d->fwd_fn),
		zdmc_arena_printf(l->arena, "DROP TRIGGER zdm_split ON %s",
	                          t->qname));
}

/* expand, after T's view: the new version's T2, over T */
static void
split_table_expand_view(zdmc_lower_ctx *l, const zdmc_table *t,
                        const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	const char *view = split_view(l, t, d);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create view %s: the rows of %s with a value in %s, as the new version's %s until contract",
			view, t->qname, d->moved_list, d->into),
		zdmc_arena_printf(
			l->arena,
			"DO $zdm$\n"
			"DECLARE\n"
			"    acl record;\n"
			"BEGIN\n"
			"    CREATE VIEW %s WITH (security_invoker = true) AS\n"
			"        SELECT %s, %s FROM ONLY %s WHERE %s;\n"
			"%s"
			"END\n"
			"$zdm$",
			view, d->key_list, d->moved_list, t->qname,
			split_any_value(l, d, NULL),
			zdmc_lower_view_grants(
				l, t->qname, view,
				zdmc_lower_quote(l, t->version_schema))),
		zdmc_arena_printf(l->arena, "DROP VIEW %s", view));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create the function that writes what the new version writes to %s into %s",
			view, t->qname),
		split_view_sql(l, t, d),
		zdmc_arena_printf(l->arena, "DROP FUNCTION %s()", d->view_fn));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(l->arena,
	                          "run it instead of every write to %s", view),
		zdmc_arena_printf(
			l->arena,
			"CREATE TRIGGER zdm_split INSTEAD OF INSERT OR UPDATE OR DELETE ON %s\n"
			"    FOR EACH ROW EXECUTE FUNCTION %s()",
			view, d->view_fn),
		zdmc_arena_printf(l->arena, "DROP TRIGGER zdm_split ON %s",
	                          view));
}

/* backfill: the rows of T with a moved value, page range by page range */
static void
split_table_backfill(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	zdmc_plan_step *s = zdmc_lower_step(
		l, ZDMC_STEP_BACKFILL, t,
		zdmc_arena_printf(
			l->arena,
			"copy %s of the rows of %s that have a value into %s, in batches of pages (a row a write reached first is left as that write made it)",
			d->moved_list, t->qname, d->into),
		zdmc_arena_printf(
			l->arena,
			"INSERT INTO %s (%s, %s)\n"
			"SELECT %s, %s\n"
			"  FROM ONLY %s\n"
			" WHERE ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid\n"
			"   AND %s\n"
			"   -- the row as it is now, not as the statement's snapshot saw it\n"
			"   FOR SHARE\n"
			"ON CONFLICT (%s) DO NOTHING",
			d->into, d->key_list, d->moved_list, d->key_list,
			d->moved_list, t->qname, split_any_value(l, d, NULL),
			d->key_list),
		NULL);

	s->key = "ctid";
	s->batch_size = l->model->options.batch_size;
	s->batch_pause_ms = l->model->options.batch_pause_ms;
}

/* verify: T and T2 say the same of every row */
static void
split_table_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                   const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	zdmc_buf key, same;
	const char *cond;

	zdmc_buf_init(&key, l->arena);
	zdmc_buf_init(&same, l->arena);
	for (size_t i = 0; i < d->nkey; i++) {
		const char *k = zdmc_lower_quote(l, d->key[i]);

		zdmc_buf_printf(&key, "%ss.%s = %s.%s", i ? " AND " : "", k,
		                t->qname, k);
	}
	for (size_t i = 0; i < d->nmoved; i++) {
		const char *c = zdmc_lower_quote(l, d->moved[i]);

		zdmc_buf_printf(&same, " AND s.%s IS NOT DISTINCT FROM %s.%s",
		                c, t->qname, c);
	}
	/* with a value: no equal row in T2; without: a row in T2 */
	cond = zdmc_arena_printf(
		l->arena,
		"CASE WHEN %s\n"
		"     THEN NOT EXISTS (SELECT FROM %s AS s WHERE %s%s)\n"
		"     ELSE EXISTS (SELECT FROM %s AS s WHERE %s)\n"
		"END",
		split_any_value(l, d, t->qname), d->into, zdmc_buf_cstr(&key),
		zdmc_buf_cstr(&same), d->into, zdmc_buf_cstr(&key));
	zdmc_lower_scan_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"a row of %s has a row in %s if and only if it has a value in %s, and then the same values",
			t->qname, d->into, d->moved_list),
		cond,
		zdmc_arena_printf(l->arena,
	                          "SELECT %s FROM %s WHERE %s LIMIT 5",
	                          d->key_list, t->qname, cond),
		zdmc_lower_is_cdc(l));
}

/* contract: the new version's view of T2 (before the table's view goes,
 * new-version queries find T2 itself), the trigger, the moved columns */
static void
split_table_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	zdmc_buf drop;

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop view %s%s: the new version uses %s itself, and nothing carries writes to it any more",
			split_view(l, t, d),
			zdmc_lower_is_cdc(l)
				? ""
				: zdmc_arena_printf(l->arena,
	                                            " and the trigger on %s",
	                                            t->qname),
			d->into),
		zdmc_arena_printf(
			l->arena,
			"DROP VIEW %s;\n"
			"DROP FUNCTION %s()%s",
			split_view(l, t, d), d->view_fn,
			/* with sync = cdc, zdm sync carried them */
			zdmc_lower_is_cdc(l)
				? ""
				: zdmc_arena_printf(
					  l->arena,
					  ";\n"
					  "DROP TRIGGER zdm_split ON %s;\n"
					  "DROP FUNCTION %s()",
					  t->qname, d->fwd_fn)));
	zdmc_buf_init(&drop, l->arena);
	for (size_t i = 0; i < d->nmoved; i++)
		zdmc_buf_printf(&drop, "%s\n    DROP COLUMN %s", i ? "," : "",
		                zdmc_lower_quote(l, d->moved[i]));
	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop %s from %s: they live in %s now (rollback is impossible from here)",
			d->moved_list, t->qname, d->into),
		zdmc_arena_printf(l->arena, "ALTER TABLE %s%s", t->qname,
	                          zdmc_buf_cstr(&drop)));
}

/* a rule of a cdc sync: every event applies forward */
static zdmc_plan_cdc_rule *
split_cdc_always(zdmc_lower_ctx *l)
{
	zdmc_plan_cdc_rule *r = ZDMC_NEW(l->arena, zdmc_plan_cdc_rule);

	r->cond = ZDMC_CDC_ALWAYS;
	r->apply = "forward";
	return r;
}

/*
 * sync = cdc: zdm sync does what the trigger on T does with trigger sync.
 * For each batch of T's events, the forward statement reads the rows of T
 * as they are now (not the events' images: a later event of the row may
 * still be on its way, and will bring it to the same end) and makes T2
 * say the same: an upsert where a moved column has a value, a delete
 * where none has or the row is gone (T's deletes also reach T2 by the
 * foreign key).  So applying a batch twice, or late, changes nothing more.
 * Every insert and update applies: reading the before-image to see which
 * columns changed would need REPLICA IDENTITY FULL on T.
 */
static zdmc_plan_cdc_sync *
split_table_cdc_sync(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	zdmc_plan_cdc_sync *s = ZDMC_NEW(l->arena, zdmc_plan_cdc_sync);
	const char **params = zdmc_arena_alloc(
		l->arena, (d->nkey + d->nmoved + 1) * sizeof(char *));
	zdmc_buf keys, join;

	for (size_t i = 0; i < d->nkey; i++)
		params[i] = d->key[i];
	for (size_t i = 0; i < d->nmoved; i++)
		params[d->nkey + i] = d->moved[i];
	s->at = zdmc_lower_at(l, change->offset);
	s->params = params;
	s->nparams = d->nkey + d->nmoved;
	s->on_insert = split_cdc_always(l);
	s->on_update = split_cdc_always(l);
	zdmc_buf_init(&keys, l->arena);
	zdmc_buf_init(&join, l->arena);
	for (size_t i = 0; i < d->nkey; i++) {
		const char *k = zdmc_lower_quote(l, d->key[i]);

		zdmc_buf_printf(&keys, "%s(zdm_row).%s AS %s", i ? ", " : "", k,
		                k);
		zdmc_buf_printf(&join, "%sp.%s = zdm_event.%s",
		                i ? " AND " : "", k, k);
	}
	s->forward = zdmc_arena_printf(
		l->arena,
		"WITH zdm_event AS MATERIALIZED (\n"
		"  SELECT DISTINCT %s\n"
		"    FROM (SELECT pg_catalog.jsonb_populate_record(NULL::%s, zdm_e.j) AS zdm_row\n"
		"            FROM pg_catalog.jsonb_array_elements($1::pg_catalog.jsonb) AS zdm_e(j)) AS zdm_r),\n"
		"zdm_now AS MATERIALIZED (\n"
		"  SELECT %s, %s FROM ONLY %s JOIN zdm_event USING (%s)\n"
		"   WHERE %s),\n"
		"zdm_upserted AS (\n"
		"  INSERT INTO %s (%s, %s)\n"
		"  SELECT %s, %s FROM zdm_now\n"
		"  ON CONFLICT (%s) DO UPDATE SET %s\n"
		"  RETURNING 1)\n"
		"DELETE FROM %s AS p\n"
		" USING zdm_event\n"
		" WHERE %s\n"
		"   AND NOT EXISTS (SELECT FROM zdm_now WHERE %s)",
		zdmc_buf_cstr(&keys), t->qname, d->key_list, d->moved_list,
		t->qname, d->key_list, split_any_value(l, d, NULL), d->into,
		d->key_list, d->moved_list, d->key_list, d->moved_list,
		d->key_list, split_assign(l, d, "EXCLUDED"), d->into,
		zdmc_buf_cstr(&join), split_key_match(l, d, "p"));
	return s;
}

const zdmc_op zdmc_op_split_table = {
	.name = "split_table",
	.check = split_table_check,
	.summary = split_table_summary,
	.facts = split_table_facts,
	.cdc_sync = split_table_cdc_sync,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = split_table_expand,
			[ZDMC_SLOT_EXPAND_VIEW] = split_table_expand_view,
			[ZDMC_SLOT_BACKFILL] = split_table_backfill,
			[ZDMC_SLOT_VERIFY] = split_table_verify,
			[ZDMC_SLOT_CONTRACT_DROP] = split_table_contract,
		},
};
