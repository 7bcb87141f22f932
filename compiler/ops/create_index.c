/*
 * create_index.c -- create [unique] index [N] on T BODY.
 *
 * One statement, built concurrently as an autocommit step (CREATE INDEX
 * CONCURRENTLY cannot run in a transaction block; it takes SHARE UPDATE
 * EXCLUSIVE, so reads and writes go on while it scans).  A build that
 * fails or is killed leaves an INVALID index, which the runtime drops
 * (the step's index) before a retry, a resume or a rollback.
 *
 *   - A plain index is built right after expand: both versions may use it,
 *     and neither can tell it is there.
 *   - A unique index binds every writer, old version or new, from its
 *     build on; it is built at verify, as add constraint ... unique is, and
 *     when its build fails on duplicates (and its elements are plain
 *     columns, with no predicate) the step's diagnose counts the duplicated
 *     keys and stops the run (exit 3) with a few of them; else the build's
 *     own error (23505, with PostgreSQL's example key) stands.
 *
 * Rollback drops the index concurrently.  The body (elements, using,
 * include, with, where) is PostgreSQL's syntax, judged by libpg_query at
 * compile time and written to the plan as it was written.  The columns it
 * names must be ones no other action of the migration adds, renames or
 * replaces (check.c's rule for constraints, which bind from a step before
 * contract as an index does).  The default name is PostgreSQL's
 * (<table>_<columns>_idx, an expression as "expr").  Facts: reads (the
 * columns), indexes_created [schema.N].
 */
#include "constraint.h"

#include <string.h>
#include <strings.h>

#include "ident.h"
#include "sqlexpr.h"

/* What check prepared for lowering and facts. */
typedef struct create_index_data {
	const char *name;  /* the index's name, unquoted */
	const char *index; /* schema-qualified, quoted */
	/* a unique index whose elements are plain columns, with no
	 * predicate: its key ("a, b") and "a IS NOT NULL AND b IS NOT NULL"
	 * (NULLs never clash), for the duplicate count; else NULL */
	const char *key, *key_not_null;
} create_index_data;

static const zdmc_create_index *
create_index_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_create_index, ZDMC_ACTION_CREATE_INDEX,
	                        change->action);
}

static void
create_index_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	const zdmc_create_index *n = create_index_node(change);
	zdmc_arena *arena = zdmc_check_arena(ck);
	const zdmc_table *t = zdmc_check_table(ck);
	create_index_data *d = ZDMC_NEW(arena, create_index_data);
	zdmc_sqlindex ix;

	if (n->name.name != NULL) {
		zdmc_check_ident_length(ck, &n->name);
		if (strncasecmp(n->name.name, "zdm", 3) == 0)
			zdmc_diag_error(
				zdmc_check_diag(ck), n->name.offset,
				"index \"%s\": names starting with \"zdm\" are reserved for zdm's own objects",
				n->name.name);
	}
	if (zdmc_sqlexpr_check_index(arena, zdmc_check_diag(ck), &n->body,
	                             &ix) != 0)
		return;
	for (size_t i = 0; i < ix.ncolumns; i++) {
		zdmc_check_kept_column(ck, change, &ix.columns[i]);
		zdmc_change_add_read(ck, change, ix.columns[i].name);
	}
	if (n->name.name != NULL)
		d->name = n->name.name;
	else {
		d->name = zdmc_arena_printf(arena, "%s_%s_idx", t->name,
		                            ix.name_part);
		if (strlen(d->name) > 63) {
			zdmc_diag_error(
				zdmc_check_diag(ck), change->offset,
				"the index's default name, \"%s\", is longer than 63 bytes; name the index (create index NAME on ...)",
				d->name);
			return;
		}
	}
	d->index = zdmc_constraint_index_name(arena, t, d->name);
	if (n->unique && ix.nplain > 0 && !ix.has_where) {
		zdmc_buf key, nn;

		zdmc_buf_init(&key, arena);
		zdmc_buf_init(&nn, arena);
		for (size_t i = 0; i < ix.nplain; i++) {
			const char *c =
				zdmc_ident_quote(arena, ix.columns[i].name);

			zdmc_buf_printf(&key, "%s%s", i ? ", " : "", c);
			zdmc_buf_printf(&nn, "%s%s IS NOT NULL",
			                i ? " AND " : "", c);
		}
		d->key = zdmc_buf_cstr(&key);
		d->key_not_null = zdmc_buf_cstr(&nn);
	}
	change->op_data = d;
}

/* "create unique index users_email_idx on public.users" */
static const char *
create_index_summary(zdmc_arena *arena, const zdmc_change *change)
{
	const zdmc_create_index *n = create_index_node(change);
	const create_index_data *d = change->op_data;

	return zdmc_arena_printf(arena, "create %sindex %s",
	                         n->unique ? "unique " : "", d ? d->name : "?");
}

static void
create_index_facts(zdmc_arena *arena, const zdmc_change *change,
                   zdmc_plan_change *out)
{
	const create_index_data *d = change->op_data;

	out->indexes_created = zdmc_arena_alloc(arena, sizeof(char *));
	out->indexes_created[0] = d->index;
	out->nindexes_created = 1;
}

static zdmc_plan_step *
create_index_build(zdmc_lower_ctx *l, const zdmc_table *t,
                   const zdmc_change *change, const char *what)
{
	const zdmc_create_index *n = create_index_node(change);
	const create_index_data *d = change->op_data;

	return zdmc_lower_autocommit_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"build %sindex %s on %s concurrently (SHARE UPDATE EXCLUSIVE: reads and writes go on)%s",
			n->unique ? "unique " : "", d->name, t->qname, what),
		zdmc_arena_printf(
			l->arena, "CREATE %sINDEX CONCURRENTLY %s ON %s %s",
			n->unique ? "UNIQUE " : "",
			zdmc_lower_quote(l, d->name), t->qname, n->body.text),
		/* IF EXISTS: an undo that timed out waiting for a lock left
		 * the index INVALID, and the runtime drops such an index
		 * before it tries the undo again */
		zdmc_arena_printf(l->arena,
	                          "DROP INDEX CONCURRENTLY IF EXISTS %s",
	                          d->index),
		d->index);
}

static void
create_index_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	if (!create_index_node(change)->unique)
		create_index_build(l, t, change, "");
}

static void
create_index_verify(zdmc_lower_ctx *l, const zdmc_table *t,
                    const zdmc_change *change)
{
	const create_index_data *d = change->op_data;
	zdmc_plan_step *step;

	if (!create_index_node(change)->unique)
		return;
	step = create_index_build(
		l, t, change,
		"; from this step on every write, old version or new, must keep its key unique");
	if (d->key == NULL)
		return; /* the build's own error names a duplicated key */
	zdmc_lower_diagnose(
		l, step,
		zdmc_arena_printf(
			l->arena,
			"no two rows of %s have the same (%s), which %s makes unique",
			t->qname, d->key, d->name),
		zdmc_arena_printf(
			l->arena,
			"(SELECT FROM %s WHERE %s\n"
			"         GROUP BY %s HAVING count(*) > 1) AS duplicated",
			t->qname, d->key_not_null, d->key),
		zdmc_arena_printf(
			l->arena,
			"SELECT %s, count(*) AS rows FROM %s WHERE %s\n"
			" GROUP BY %s HAVING count(*) > 1 LIMIT 5",
			d->key, t->qname, d->key_not_null, d->key));
}

const zdmc_op zdmc_op_create_index = {
	.name = "create_index",
	.check = create_index_check,
	.summary = create_index_summary,
	.facts = create_index_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND_AFTER] = create_index_expand,
			[ZDMC_SLOT_VERIFY] = create_index_verify,
		},
};
