/*
 * drop_constraint.c -- drop constraint N.
 *
 * The new version wants writes that N refuses to succeed, so N goes right
 * after the switch gate -- when it is a check or a foreign key.  Those
 * come back exactly: switch first saves N's definition
 * (pg_get_constraintdef, with the session's empty search_path: every name
 * qualified), its comment and whether it was validated, as JSON in the
 * comment of the version schema (which the plan creates, and drops with
 * its comment at contract or rollback); the undo of the drop adds N back
 * from it NOT VALID (no scan under the lock), and the undo of the save, a
 * transaction later, validates it (a scan that blocks no write).  If rows
 * written since break it, that validation fails and the rollback stops,
 * naming N and PostgreSQL's reason; N is back NOT VALID meanwhile,
 * binding every new write, and the rollback goes on once the rows are
 * fixed.
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

/*
 * What every statement of this file names.  The saved definitions live in
 * the comment of the version schema, as JSON: {"<table>": {"<constraint>":
 * {"definition": ..., "validated": ..., "comment": ...}}}.  The plan
 * created that schema and drops it at contract (or rollback does), so the
 * comment goes with it and nothing needs a DROP of its own.
 */
typedef struct drop_names {
	const char *schema_lit; /* the version schema, as a literal */
	const char *saved;      /* SQL: the schema's comment, as jsonb */
	const char *path;       /* '{<table>,<constraint>}' (text[]) */
	const char *regclass;   /* 'schema.table'::pg_catalog.regclass */
	const char *name;       /* N, quoted as needed */
	const char *name_lit;   /* 'N' */
	const char *table_lit;  /* 'schema.table' */
	const char *this_row;   /* N in pg_constraint: a WHERE condition */
} drop_names;

static drop_names
drop_constraint_names(zdmc_lower_ctx *l, const zdmc_table *t,
                      const zdmc_change *change)
{
	const char *name = drop_constraint_node(change)->name.name;
	drop_names d;

	d.schema_lit = zdmc_ident_literal(l->arena, l->model->version_schema);
	d.saved = zdmc_arena_printf(
		l->arena,
		"(SELECT pg_catalog.obj_description(oid, 'pg_namespace')::jsonb\n"
		"                FROM pg_catalog.pg_namespace WHERE nspname = %s)",
		d.schema_lit);
	d.path = zdmc_ident_literal(
		l->arena,
		zdmc_arena_printf(
			l->arena, "{%s,%s}",
			zdmc_constraint_array_item(l->arena, t->qname),
			zdmc_constraint_array_item(l->arena, name)));
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
drop_constraint_switch(zdmc_lower_ctx *l, const zdmc_table *t,
                       const zdmc_change *change)
{
	const char *name = drop_constraint_node(change)->name.name;
	drop_names d = drop_constraint_names(l, t, change);

	zdmc_lower_step(
		l, ZDMC_STEP_SQL, t,
		zdmc_arena_printf(
			l->arena,
			"save the definition of %s (pg_get_constraintdef), its comment and whether it is validated in the comment of schema %s, so that a rollback can put it back exactly",
			name, l->model->version_schema),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"DECLARE\n"
				"    saved jsonb := coalesce(%s, '{}');\n"
				"BEGIN\n"
				"    -- jsonb_set adds a missing last key only: the table's first\n"
				"    saved := pg_catalog.jsonb_set(saved, ARRAY[%s], coalesce(saved -> %s, '{}'));\n"
				"    SELECT pg_catalog.jsonb_set(saved, %s::text[],\n"
				"                                pg_catalog.jsonb_build_object(\n"
				"                                    'definition', pg_catalog.pg_get_constraintdef(oid),\n"
				"                                    'validated', convalidated,\n"
				"                                    'comment', pg_catalog.obj_description(oid, 'pg_constraint')))\n"
				"      INTO saved\n"
				"      FROM pg_catalog.pg_constraint WHERE %s;\n"
				"    IF NOT FOUND THEN\n"
				"        RAISE EXCEPTION 'constraint %% of %% does not exist', %s, %s;\n"
				"    END IF;\n"
				"    EXECUTE pg_catalog.format('COMMENT ON SCHEMA %%I IS %%L', %s, saved::text);\n"
				"END\n",
				d.saved, d.table_lit, d.table_lit, d.path,
				d.this_row, d.name_lit, d.table_lit,
				d.schema_lit)),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"DECLARE\n"
				"    saved jsonb := %s;\n"
				"    detail text;\n"
				"BEGIN\n"
				"    -- the undo of the next step put it back NOT VALID; validate it\n"
				"    -- again if it was validated (a scan that blocks no write)\n"
				"    IF (saved #> %s::text[] ->> 'validated')::boolean\n"
				"       AND EXISTS (SELECT FROM pg_catalog.pg_constraint\n"
				"                    WHERE %s AND NOT convalidated) THEN\n"
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
				"    EXECUTE pg_catalog.format('COMMENT ON SCHEMA %%I IS %%L', %s,\n"
				"                              nullif(saved #- %s::text[], '{}')::text);\n"
				"END\n",
				d.saved, d.path, d.this_row, t->qname, d.name,
				d.name_lit, d.table_lit, d.schema_lit,
				d.path)));
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
				"    saved jsonb := %s #> %s::text[];\n"
				"BEGIN\n"
				"    -- back from its saved definition, NOT VALID: no scan under this\n"
				"    -- lock (the undo of the step before validates it)\n"
				"    IF saved IS NOT NULL\n"
				"       AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE %s) THEN\n"
				"        EXECUTE pg_catalog.format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s%%s', %s, %s,\n"
				"                                  saved ->> 'definition',\n"
				"                                  CASE WHEN (saved ->> 'validated')::boolean\n"
				"                                       THEN ' NOT VALID' ELSE '' END);\n"
				"        IF saved ->> 'comment' IS NOT NULL THEN\n"
				"            EXECUTE pg_catalog.format('COMMENT ON CONSTRAINT %%I ON %%s IS %%L', %s, %s,\n"
				"                                      saved ->> 'comment');\n"
				"        END IF;\n"
				"    END IF;\n"
				"END\n",
				d.saved, d.path, d.this_row, d.table_lit,
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
			"drop %s if it is still there (a unique, primary key or exclusion constraint: here, past the point of no return, because putting its index back would need a concurrent build)",
			name),
		zdmc_constraint_do(
			l,
			zdmc_arena_printf(
				l->arena,
				"BEGIN\n"
				"    IF EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE %s) THEN\n"
				"        ALTER TABLE %s DROP CONSTRAINT %s;\n"
				"    END IF;\n"
				"END\n",
				d.this_row, t->qname, d.name)));
}

const zdmc_op zdmc_op_drop_constraint = {
	.name = "drop_constraint",
	.check = drop_constraint_check,
	.summary = drop_constraint_summary,
	.facts = drop_constraint_facts,
	.lower =
		{
			[ZDMC_SLOT_SWITCH] = drop_constraint_switch,
			[ZDMC_SLOT_CONTRACT] = drop_constraint_contract,
		},
};
