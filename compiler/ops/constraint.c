/*
 * constraint.c -- what the constraint operations share; constraint.h says
 * what and why.
 *
 * The SQL here is the plan's: every statement is written out in full, with
 * the table's and the constraint's names spliced in quoted (identifiers)
 * or as literals (in catalog lookups), so that a reviewer reads exactly
 * what runs.  Lowering never fails: everything was checked.
 */
#include <string.h>

#include "constraint.h"
#include "ident.h"

void
zdmc_constraint_check_columns(zdmc_check_ctx *ck, zdmc_change *change,
                              const zdmc_name_list *columns, const char *what)
{
	for (size_t i = 0; i < columns->n; i++) {
		const zdmc_name *col = &columns->items[i];
		size_t j;

		for (j = 0; j < i; j++)
			if (strcmp(columns->items[j].name, col->name) == 0)
				break;
		if (j < i) {
			zdmc_diag_error(zdmc_check_diag(ck), col->offset,
			                "column \"%s\" appears twice in %s",
			                col->name, what);
			continue;
		}
		zdmc_check_kept_column(ck, change, col);
		zdmc_change_add_read(ck, change, col->name);
	}
}

void
zdmc_constraint_check_key(zdmc_check_ctx *ck, zdmc_change *change,
                          const zdmc_add_key *key)
{
	zdmc_constraint_check_columns(ck, change, &key->columns,
	                              "the key of a constraint");
	zdmc_check_constraint_name(ck, change, &key->name);
	/* the index takes the constraint's name, in the table's schema */
	change->op_data = zdmc_constraint_index_name(
		zdmc_check_arena(ck), zdmc_check_table(ck), key->name.name);
}

void
zdmc_constraint_created(zdmc_arena *arena, zdmc_plan_change *out,
                        const char *name)
{
	const char **v = zdmc_arena_alloc(
		arena, (out->nconstraints_created + 1) * sizeof(char *));

	if (out->nconstraints_created > 0)
		memcpy(v, out->constraints_created,
		       out->nconstraints_created * sizeof(char *));
	v[out->nconstraints_created++] = name;
	out->constraints_created = v;
}

void
zdmc_constraint_key_facts(zdmc_arena *arena, const zdmc_change *change,
                          const zdmc_add_key *key, zdmc_plan_change *out)
{
	zdmc_constraint_created(arena, out, key->name.name);
	out->indexes_created = zdmc_arena_alloc(arena, sizeof(char *));
	out->indexes_created[0] = change->op_data;
	out->nindexes_created = 1;
}

const char *
zdmc_constraint_column_list(zdmc_lower_ctx *l, const zdmc_name_list *columns,
                            const char *prefix)
{
	zdmc_buf b;

	zdmc_buf_init(&b, l->arena);
	for (size_t i = 0; i < columns->n; i++)
		zdmc_buf_printf(&b, "%s%s%s", i ? ", " : "", prefix,
		                zdmc_lower_quote(l, columns->items[i].name));
	return zdmc_buf_cstr(&b);
}

const char *
zdmc_constraint_array_item(zdmc_arena *arena, const char *s)
{
	zdmc_buf b;

	zdmc_buf_init(&b, arena);
	zdmc_buf_puts(&b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			zdmc_buf_puts(&b, "\\");
		zdmc_buf_append(&b, s, 1);
	}
	zdmc_buf_puts(&b, "\"");
	return zdmc_buf_cstr(&b);
}

const char *
zdmc_constraint_regclass(zdmc_lower_ctx *l, const zdmc_table *t)
{
	return zdmc_arena_printf(l->arena, "%s::pg_catalog.regclass",
	                         zdmc_ident_literal(l->arena, t->qname));
}

const char *
zdmc_constraint_do(zdmc_lower_ctx *l, const char *body)
{
	const char *tag = zdmc_lower_dollar_tag(l, body);

	return zdmc_arena_printf(l->arena, "DO %s\n%s%s", tag, body, tag);
}

const char *
zdmc_constraint_index_name(zdmc_arena *arena, const zdmc_table *t,
                           const char *name)
{
	return zdmc_ident_qualified(arena, t->schema, name);
}

/* ---- validate ---------------------------------------------------------- */

void
zdmc_constraint_validate(zdmc_lower_ctx *l, const zdmc_table *t,
                         const char *name, const char *violation,
                         const char *offenders, const char *examples,
                         const char *what)
{
	const char *qname = zdmc_lower_quote(l, name);
	const char *validate = zdmc_arena_printf(
		l->arena, "ALTER TABLE %s VALIDATE CONSTRAINT %s", t->qname,
		qname);
	/* true while the constraint is not validated (a missing one counts
	 * as not validated: the count runs, and the last step says why) */
	const char *not_valid = zdmc_arena_printf(
		l->arena,
		"NOT coalesce((SELECT convalidated FROM pg_catalog.pg_constraint\n"
		"                       WHERE conrelid = %s AND conname = %s), false)",
		zdmc_constraint_regclass(l, t),
		zdmc_ident_literal(l->arena, name));

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"validate %s, a scan that blocks no write (SHARE UPDATE EXCLUSIVE); if rows break it, it stays NOT VALID and the next step counts them",
			name),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    %s;\n"
				"EXCEPTION WHEN %s THEN\n"
				"    -- rows break it: it stays NOT VALID (still binding every\n"
				"    -- new write), and the next step counts them\n"
				"    NULL;\n"
				"END\n",
				validate, violation)),
		NULL);
	zdmc_lower_check(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"no row of %s breaks %s (counted only if it is not validated: %s)",
			t->qname, name, what),
		zdmc_arena_printf(l->arena, "%s\n   AND %s", offenders,
	                          not_valid),
		examples, NULL);
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"validate %s (nothing to do if the first validation passed; after rows were fixed and the run resumed, the scan)",
			name),
		validate, NULL);
}

/* ---- unique ------------------------------------------------------------- */

void
zdmc_constraint_unique_index(zdmc_lower_ctx *l, const zdmc_table *t,
                             const char *name, const zdmc_name_list *columns)
{
	const char *cols = zdmc_constraint_column_list(l, columns, "");
	const char *index = zdmc_constraint_index_name(l->arena, t, name);
	zdmc_plan_step *step;
	zdmc_buf nn;

	/* rows with a NULL in the key never clash (NULLs are distinct) */
	zdmc_buf_init(&nn, l->arena);
	for (size_t i = 0; i < columns->n; i++) {
		const char *c = zdmc_lower_quote(l, columns->items[i].name);

		zdmc_buf_printf(&nn, "%s%s IS NOT NULL", i ? " AND " : "", c);
	}
	/* Built straight away: a count of duplicated keys first would cost
	 * half a build again on every run (bench/constraints.sh), only to say
	 * what a failed build says less well.  So the count is the build's
	 * diagnose, run only when the build failed (after the runtime dropped
	 * the INVALID index it left): duplicates then stop the run with their
	 * count and examples, any other failure is reported as it is.  The
	 * key values themselves are grouped (hashed, or sorted where a type
	 * cannot hash: any type a btree index can hold can be grouped). */
	step = zdmc_lower_autocommit_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"build unique index %s on %s (%s) concurrently (SHARE UPDATE EXCLUSIVE: reads and writes go on); from this step on every write, old version or new, must keep (%s) unique",
			name, t->qname, cols, cols),
		zdmc_arena_printf(
			l->arena,
			"CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)",
			zdmc_lower_quote(l, name), t->qname, cols),
		/* IF EXISTS: an undo that timed out waiting for a lock left the
		 * index INVALID, and the runtime drops such an index before it
		 * tries the undo again */
		zdmc_arena_printf(l->arena,
	                          "DROP INDEX CONCURRENTLY IF EXISTS %s",
	                          index),
		index);
	zdmc_lower_diagnose(
		l, step,
		zdmc_arena_printf(
			l->arena,
			"no two rows of %s have the same (%s), which %s makes unique",
			t->qname, cols, name),
		zdmc_arena_printf(
			l->arena,
			"(SELECT FROM %s WHERE %s\n"
			"         GROUP BY %s HAVING count(*) > 1) AS duplicated",
			t->qname, zdmc_buf_cstr(&nn), cols),
		zdmc_arena_printf(
			l->arena,
			"SELECT %s, count(*) AS rows FROM %s WHERE %s\n"
			" GROUP BY %s HAVING count(*) > 1 LIMIT 5",
			cols, t->qname, zdmc_buf_cstr(&nn), cols));
}
