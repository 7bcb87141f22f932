/*
 * split_table.c -- split table T move (C1, C2, ...) into [S.]T2 key (K, ...).
 *
 * The seeds' "move optional fields into their own table".  The old version
 * keeps T as it is until contract; the new version sees T without the
 * moved columns (the driver's view leaves out what a change drops) and T2,
 * a real table, with them:
 *
 *   expand    T2 made from T's own column types (CREATE TABLE AS ... WITH
 *             NO DATA), keyed by K, with a foreign key to T that follows
 *             T's deletes and key updates.  Two AFTER triggers keep the two
 *             shapes equal: an old-version write of the moved columns to T
 *             reaches T2 (an upsert; a row of T whose moved columns are all
 *             NULL needs no T2 row), a new-version write to T2 reaches T
 *             (a deleted T2 row leaves NULLs in T).  Each sets the
 *             transaction-local zdm.splitting while it writes, and the
 *             other's WHEN lets such a write pass (SPLIT_NOT_OURS), so
 *             neither echoes the other.
 *   backfill  INSERT INTO T2 ... SELECT from T over ranges of pages, for the
 *             rows with a moved value; ON CONFLICT DO NOTHING, since a row
 *             a trigger reached first holds a newer value.  FOR SHARE: the
 *             statement's snapshot may be older than a write that a trigger
 *             carried to T2 and another then took away (an old-version
 *             update to NULLs where T2 had no row yet, a new-version delete
 *             of the T2 row), or than a delete of T's row (the foreign key
 *             would refuse the copy); the lock waits for such a writer and
 *             reads the row as it committed, or skips it if it is gone, so
 *             nothing stale is copied.  A deadlock with a new-version write
 *             (it holds the T2 row and waits for T's) ends on the
 *             backfill's side: its lock_timeout is shorter than the
 *             server's deadlock_timeout, and it tries the batch again.  It sets
 *             zdm.splitting for its batch: what it copies needs no carrying
 *             back to T.
 *   verify    every row of T with a moved value, or with a T2 row, has a
 *             T2 row equal to its moved columns.
 *   contract  the triggers and their functions go, then the moved columns
 *             of T (the point of no return).  T2 stays, with its key and
 *             foreign key.
 *
 * Rollback drops T2: T's columns were kept equal all along, so nothing
 * written by either version is lost.  Preflight wants T2's name free, K a
 * unique key of T (a references fact), and the moved columns droppable as
 * drop column wants them (not NOT NULL without a default, nothing on them
 * and another column).  Facts: reads (K and the moved columns), drops (the
 * moved columns), references (T's K), split_into (T2).
 *
 * Must not: support sync = cdc yet (zdm sync knows one table per change),
 * or guess K (the compiler never sees the catalog: key (...) is required).
 */
#include <string.h>
#include <strings.h>

#include "../ident.h"
#include "ops.h"

/*
 * A write that is not zdm's own: the triggers' functions, and the
 * backfill, set zdm.splitting for their transaction (the functions only
 * around their own write).  In the triggers' WHEN, so that zdm's writes do
 * not even queue an event.
 */
#define SPLIT_NOT_OURS \
	"pg_catalog.current_setting('zdm.splitting', true) IS DISTINCT FROM 'on'"

typedef struct split_table_data {
	const char *table;         /* T, quoted and qualified */
	const char *into;          /* T2, quoted and qualified */
	const char *fwd_fn;        /* zdm_split_<T>(), in T's schema */
	const char *back_fn;       /* zdm_split_back_<T>(), in T's schema */
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
	if (zdmc_check_sync_is_cdc(ck))
		zdmc_diag_error(
			diag, change->offset,
			"split table is not supported with sync = cdc yet: zdm sync carries the changes of one table per change, and a split writes two");
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
		if (strncasecmp(schema, "zdm", 3) == 0)
			zdmc_diag_error(
				diag, n->into_schema.offset,
				"schema \"%s\": schema names starting with \"zdm\" are reserved for zdm's own objects",
				schema);
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
	d->back_fn = zdmc_ident_qualified(
		arena, t->schema,
		zdmc_arena_printf(arena, "zdm_split_back_%s", t->name));
	if (strlen(t->name) + strlen("zdm_split_back_") > ZDMC_MAX_IDENT_BYTES)
		zdmc_diag_error(
			diag, change->offset,
			"table name \"%s\" is too long for zdm's split functions (zdm_split_back_%s must fit in %d bytes)",
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

/*
 * CREATE FUNCTION name() for a trigger, whose write (what) sets
 * zdm.splitting around itself: the other trigger's WHEN (SPLIT_NOT_OURS)
 * then lets it pass without carrying it back.
 */
static const char *
split_function(zdmc_lower_ctx *l, const char *name, const char *what)
{
	zdmc_buf body, sql;
	const char *tag;

	zdmc_buf_init(&body, l->arena);
	zdmc_buf_printf(
		&body,
		"\nBEGIN\n"
		"    PERFORM pg_catalog.set_config('zdm.splitting', 'on', true);\n"
		"%s"
		"    PERFORM pg_catalog.set_config('zdm.splitting', '', true);\n"
		"    RETURN NULL;\n"
		"END\n",
		what);
	tag = zdmc_lower_dollar_tag(l, zdmc_buf_cstr(&body));
	zdmc_buf_init(&sql, l->arena);
	zdmc_buf_printf(&sql,
	                "CREATE FUNCTION %s() RETURNS trigger\n"
	                "LANGUAGE plpgsql AS %s%s%s",
	                name, tag, zdmc_buf_cstr(&body), tag);
	return zdmc_buf_cstr(&sql);
}

/* The function behind the trigger on T: an old-version write of the moved
 * columns reaches T2. */
static const char *
split_forward_sql(zdmc_lower_ctx *l, const split_table_data *d)
{
	return split_function(
		l, d->fwd_fn,
		zdmc_arena_printf(
			l->arena,
			"    IF %s THEN\n"
			"        INSERT INTO %s (%s, %s)\n"
			"        VALUES (%s, %s)\n"
			"        ON CONFLICT (%s) DO UPDATE SET %s;\n"
			"    ELSE\n"
			"        -- no moved value: a row of %s needs none, one that is\n"
			"        -- there keeps its key with NULLs\n"
			"        UPDATE %s SET %s WHERE %s;\n"
			"    END IF;\n",
			split_any_value(l, d, "NEW"), d->into, d->key_list,
			d->moved_list,
			split_list(l->arena, d->key, d->nkey, "NEW."),
			split_list(l->arena, d->moved, d->nmoved, "NEW."),
			d->key_list, split_assign(l, d, "EXCLUDED"), d->into,
			d->into, split_assign(l, d, NULL),
			split_key_match(l, d, "NEW")));
}

/* The function behind the trigger on T2: a new-version write reaches T (a
 * deleted row leaves NULLs). */
static const char *
split_back_sql(zdmc_lower_ctx *l, const zdmc_table *t,
               const split_table_data *d)
{
	return split_function(
		l, d->back_fn,
		zdmc_arena_printf(l->arena,
	                          "    IF TG_OP = 'DELETE' THEN\n"
	                          "        UPDATE ONLY %s SET %s WHERE %s;\n"
	                          "    ELSE\n"
	                          "        UPDATE ONLY %s SET %s WHERE %s;\n"
	                          "    END IF;\n",
	                          t->qname, split_assign(l, d, NULL),
	                          split_key_match(l, d, "OLD"), t->qname,
	                          split_assign(l, d, "NEW"),
	                          split_key_match(l, d, "NEW")));
}

/* expand, in T's transaction: T2, its keys, the two triggers */
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
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create the function that carries old-version writes of %s's %s to %s",
			t->qname, d->moved_list, d->into),
		split_forward_sql(l, d),
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
			"    FOR EACH ROW\n"
			"    WHEN (%s)\n"
			"    EXECUTE FUNCTION %s()",
			d->moved_list, t->qname, SPLIT_NOT_OURS, d->fwd_fn),
		zdmc_arena_printf(l->arena, "DROP TRIGGER zdm_split ON %s",
	                          t->qname));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create the function that carries new-version writes of %s back to %s",
			d->into, t->qname),
		split_back_sql(l, t, d),
		zdmc_arena_printf(l->arena, "DROP FUNCTION %s()", d->back_fn));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(l->arena, "run it after every write to %s",
	                          d->into),
		zdmc_arena_printf(
			l->arena,
			"CREATE TRIGGER zdm_split_back AFTER INSERT OR UPDATE OR DELETE ON %s\n"
			"    FOR EACH ROW\n"
			"    WHEN (%s)\n"
			"    EXECUTE FUNCTION %s()",
			d->into, SPLIT_NOT_OURS, d->back_fn),
		zdmc_arena_printf(l->arena, "DROP TRIGGER zdm_split_back ON %s",
	                          d->into));
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
			"   -- these inserts copy what %s holds: nothing to carry back\n"
			"   AND pg_catalog.set_config('zdm.splitting', 'on', true) = 'on'\n"
			"   -- the row as it is now, not as the statement's snapshot saw it\n"
			"   FOR SHARE\n"
			"ON CONFLICT (%s) DO NOTHING",
			d->into, d->key_list, d->moved_list, d->key_list,
			d->moved_list, t->qname, split_any_value(l, d, NULL),
			t->qname, d->key_list),
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
	cond = zdmc_arena_printf(
		l->arena,
		"(%s\n"
		"     OR EXISTS (SELECT FROM %s AS s WHERE %s))\n"
		"   AND NOT EXISTS (SELECT FROM %s AS s WHERE %s%s)",
		split_any_value(l, d, t->qname), d->into, zdmc_buf_cstr(&key),
		d->into, zdmc_buf_cstr(&key), zdmc_buf_cstr(&same));
	zdmc_lower_scan_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"every row of %s with a value in %s, or a row in %s, has that row in %s with the same values",
			t->qname, d->moved_list, d->into, d->into),
		cond,
		zdmc_arena_printf(l->arena,
	                          "SELECT %s FROM %s WHERE %s LIMIT 5",
	                          d->key_list, t->qname, cond),
		false);
}

/* contract, after the view is gone: the triggers, then the moved columns */
static void
split_table_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                     const zdmc_change *change)
{
	const split_table_data *d = change->op_data;
	zdmc_buf drop;

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(l->arena,
	                          "stop carrying writes between %s and %s",
	                          t->qname, d->into),
		zdmc_arena_printf(l->arena,
	                          "DROP TRIGGER zdm_split ON %s;\n"
	                          "DROP TRIGGER zdm_split_back ON %s;\n"
	                          "DROP FUNCTION %s();\n"
	                          "DROP FUNCTION %s()",
	                          t->qname, d->into, d->fwd_fn, d->back_fn));
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

const zdmc_op zdmc_op_split_table = {
	.name = "split_table",
	.check = split_table_check,
	.summary = split_table_summary,
	.facts = split_table_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = split_table_expand,
			[ZDMC_SLOT_BACKFILL] = split_table_backfill,
			[ZDMC_SLOT_VERIFY] = split_table_verify,
			[ZDMC_SLOT_CONTRACT_DROP] = split_table_contract,
		},
};
