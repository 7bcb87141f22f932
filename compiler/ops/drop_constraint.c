/*
 * drop_constraint.c -- drop constraint N.
 *
 * The new version wants writes that N refuses to succeed, so N goes right
 * after the switch gate -- when it is a check or a foreign key.  Those
 * come back exactly: switch first saves N's definition
 * (pg_get_constraintdef, with the session's empty search_path: every name
 * qualified), its comment and whether it was validated, in
 * <version schema>.zdm_saved_constraints (created at expand by the first
 * drop constraint action, dropped at contract by the last); the undo of
 * the drop adds N back from it NOT VALID (no scan under the lock), and the
 * undo of the save, a transaction later, validates it (a scan that blocks
 * no write).  If rows written since break it, that validation fails and
 * the rollback stops, naming N and PostgreSQL's reason; N is back NOT
 * VALID meanwhile, binding every new write, and the rollback goes on once
 * the rows are fixed.
 *
 * A unique, primary key or exclusion constraint binds until contract, past
 * the point of no return: putting it back would need its index built again
 * concurrently, which no compensation can do (CREATE INDEX CONCURRENTLY
 * runs in no transaction and no DO block, and the compiler does not know
 * the index).  The compiler does not know N's kind either, so the switch
 * step reads it from the catalog.  Facts: constraints_dropped [N].
 */
#include "constraint.h"
#include "ident.h"

#define SAVED_TABLE "zdm_saved_constraints"

static const zdmc_drop_constraint *
drop_constraint_node(const zdmc_change *change)
{
	return ZDMC_ACTION_CAST(zdmc_drop_constraint,
	                        ZDMC_ACTION_DROP_CONSTRAINT, change->action);
}

static void
drop_constraint_check(zdmc_check_ctx *ck, zdmc_change *change)
{
	zdmc_check_constraint_name(ck, change,
	                           &drop_constraint_node(change)->name);
}

/* "drop constraint users_name_length" */
static const char *
drop_constraint_summary(zdmc_arena *arena, const zdmc_change *change)
{
	return zdmc_arena_printf(arena, "drop constraint %s",
	                         drop_constraint_node(change)->name.name);
}

static void
drop_constraint_facts(zdmc_arena *arena, const zdmc_change *change,
                      zdmc_plan_change *out)
{
	out->constraints_dropped = zdmc_arena_alloc(arena, sizeof(char *));
	out->constraints_dropped[0] = drop_constraint_node(change)->name.name;
	out->nconstraints_dropped = 1;
}

/* What every statement of this file names. */
typedef struct drop_names {
	const char *saved;     /* <version schema>.zdm_saved_constraints */
	const char *saved_lit; /* ... as a literal */
	const char *regclass;  /* 'schema.table'::pg_catalog.regclass */
	const char *name;      /* N, quoted as needed */
	const char *name_lit;  /* 'N' */
	const char *table_lit; /* 'schema.table' */
	const char *this_row;  /* the saved row of N: a WHERE condition */
} drop_names;

static drop_names
drop_constraint_names(zdmc_lower_ctx *l, const zdmc_table *t,
                      const zdmc_change *change)
{
	const char *name = drop_constraint_node(change)->name.name;
	drop_names d;

	d.saved = zdmc_ident_qualified(l->arena, l->model->version_schema,
	                               SAVED_TABLE);
	d.saved_lit = zdmc_ident_literal(l->arena, d.saved);
	d.regclass = zdmc_constraint_regclass(l, t);
	d.name = zdmc_lower_quote(l, name);
	d.name_lit = zdmc_ident_literal(l->arena, name);
	d.table_lit = zdmc_ident_literal(l->arena, t->qname);
	d.this_row =
		zdmc_arena_printf(l->arena, "conrelid = %s AND conname = %s",
	                          d.regclass, d.name_lit);
	return d;
}

static void
drop_constraint_expand(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	drop_names d = drop_constraint_names(l, t, change);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"create %s (if no other drop constraint did), where switch saves each constraint it drops, so that a rollback can put it back",
			d.saved),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    IF pg_catalog.to_regclass(%s) IS NULL THEN\n"
				"        CREATE TABLE %s (\n"
				"            conrelid oid NOT NULL,\n"
				"            conname name NOT NULL,\n"
				"            contype \"char\" NOT NULL,\n"
				"            definition text NOT NULL,\n"
				"            validated boolean NOT NULL,\n"
				"            comment text,\n"
				"            PRIMARY KEY (conrelid, conname));\n"
				"    END IF;\n"
				"END\n",
				d.saved_lit, d.saved)),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    IF pg_catalog.to_regclass(%s) IS NOT NULL THEN\n"
				"        DROP TABLE %s;\n"
				"    END IF;\n"
				"END\n",
				d.saved_lit, d.saved)));
}

static void
drop_constraint_switch(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const char *name = drop_constraint_node(change)->name.name;
	drop_names d = drop_constraint_names(l, t, change);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"save the definition of %s (pg_get_constraintdef), its comment and whether it is validated, so that a rollback can put it back exactly",
			name),
		zdmc_arena_printf(
			l->arena,
			"INSERT INTO %s (conrelid, conname, contype, definition, validated, comment)\n"
			"SELECT conrelid, conname, contype, pg_catalog.pg_get_constraintdef(oid), convalidated,\n"
			"       pg_catalog.obj_description(oid, 'pg_constraint')\n"
			"  FROM pg_catalog.pg_constraint\n"
			" WHERE %s",
			d.saved, d.this_row),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"DECLARE\n"
				"    detail text;\n"
				"BEGIN\n"
				"    -- the undo of the next step put it back NOT VALID; validate it\n"
				"    -- again if it was validated (a scan that blocks no write)\n"
				"    IF EXISTS (SELECT FROM %s AS s\n"
				"                 JOIN pg_catalog.pg_constraint AS c USING (conrelid, conname)\n"
				"                WHERE s.conrelid = %s AND s.conname = %s\n"
				"                  AND s.validated AND NOT c.convalidated) THEN\n"
				"        BEGIN\n"
				"            ALTER TABLE %s VALIDATE CONSTRAINT %s;\n"
				"        EXCEPTION WHEN check_violation OR foreign_key_violation THEN\n"
				"            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;\n"
				"            RAISE EXCEPTION 'cannot put constraint %% of %% back as it was: rows written since it was dropped break it',\n"
				"                            %s, %s\n"
				"                  USING ERRCODE = SQLSTATE,\n"
				"                        DETAIL = SQLERRM || CASE WHEN detail <> '' THEN ': ' || detail ELSE '' END,\n"
				"                        HINT = 'it is back NOT VALID, so no new write can break it; fix those rows, then run zdm rollback again';\n"
				"        END;\n"
				"    END IF;\n"
				"    DELETE FROM %s WHERE %s;\n"
				"END\n",
				d.saved, d.regclass, d.name_lit, t->qname,
				d.name, d.name_lit, d.table_lit, d.saved,
				d.this_row)));
	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"drop %s if it is a check or a foreign key (ACCESS EXCLUSIVE for an instant): from here on the writes it refused succeed, whichever version writes; a unique, primary key or exclusion constraint is dropped at contract",
			name),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    IF EXISTS (SELECT FROM pg_catalog.pg_constraint\n"
				"                WHERE %s AND contype IN ('c', 'f')) THEN\n"
				"        ALTER TABLE %s DROP CONSTRAINT %s;\n"
				"    END IF;\n"
				"END\n",
				d.this_row, t->qname, d.name)),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"DECLARE\n"
				"    saved record;\n"
				"BEGIN\n"
				"    -- back from its saved definition, NOT VALID: no scan under this\n"
				"    -- lock (the undo of the step before validates it)\n"
				"    SELECT * INTO saved FROM %s WHERE %s;\n"
				"    IF FOUND AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE %s) THEN\n"
				"        EXECUTE pg_catalog.format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s%%s', %s, %s,\n"
				"                                  saved.definition,\n"
				"                                  CASE WHEN saved.validated THEN ' NOT VALID' ELSE '' END);\n"
				"        IF saved.comment IS NOT NULL THEN\n"
				"            EXECUTE pg_catalog.format('COMMENT ON CONSTRAINT %%I ON %%s IS %%L', %s, %s,\n"
				"                                      saved.comment);\n"
				"        END IF;\n"
				"    END IF;\n"
				"END\n",
				d.saved, d.this_row, d.this_row, d.table_lit,
				d.name_lit, d.name_lit, d.table_lit)));
}

static void
drop_constraint_contract(zdmc_lower_ctx *l, const zdmc_table *t,
                         const zdmc_change *change)
{
	const char *name = drop_constraint_node(change)->name.name;
	drop_names d = drop_constraint_names(l, t, change);

	zdmc_lower_final_step(
		l, t,
		zdmc_arena_printf(
			l->arena,
			"drop %s if it is still there (a unique, primary key or exclusion constraint: here, past the point of no return, because putting its index back would need a concurrent build); forget its saved definition",
			name),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE %s) THEN\n"
				"        ALTER TABLE %s DROP CONSTRAINT %s;\n"
				"    END IF;\n"
				"    DELETE FROM %s WHERE %s;\n"
				"    IF NOT EXISTS (SELECT FROM %s) THEN\n"
				"        DROP TABLE %s;\n"
				"    END IF;\n"
				"END\n",
				d.this_row, t->qname, d.name, d.saved,
				d.this_row, d.saved, d.saved)));
}

const zdmc_op zdmc_op_drop_constraint = {
	.name = "drop_constraint",
	.check = drop_constraint_check,
	.summary = drop_constraint_summary,
	.facts = drop_constraint_facts,
	.lower =
		{
			[ZDMC_SLOT_EXPAND] = drop_constraint_expand,
			[ZDMC_SLOT_SWITCH] = drop_constraint_switch,
			[ZDMC_SLOT_CONTRACT] = drop_constraint_contract,
		},
};
