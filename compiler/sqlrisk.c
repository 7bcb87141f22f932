/*
 * sqlrisk.c -- the lock each statement of a plan takes, and for how long.
 *
 * zdmc explain and zdmc diff tell a reviewer, for every statement a plan
 * runs, which lock it takes on which table and how long it holds it: a
 * moment of catalog work, a scan of the whole table, a rewrite, or row
 * locks.  The statement is parsed by libpg_query (PostgreSQL 15's own
 * grammar) and the answer read from the parse tree, never from the text, so
 * case, spacing, comments and quoting cannot fool it.  A DO block is parsed
 * with libpg_query's PL/pgSQL parser and the statements in it classified
 * the same way; an EXECUTE is classified from the text it builds, with the
 * parts computed at run time replaced by a placeholder identifier.
 *
 * The lock levels are PostgreSQL's (AlterTableGetLockLevel, the executor's
 * RangeTblEntry locks, DDL commands' own): for the statements zdmc writes
 * and those a hand edit is likely to add.  Anything else is reported as
 * unknown, never guessed.  A context carried through one plan's statements,
 * in order, remembers validated CHECK (col IS NOT NULL) constraints (through
 * renames and drops), so SET NOT NULL is said to skip its scan exactly when
 * PostgreSQL 12 and later would skip it.
 *
 * Everything is allocated in the context's arena; every libpg_query result
 * and jansson tree is freed before the function that made it returns.
 * Nothing here connects anywhere, and libpg_query's per-thread memory
 * context is left for the next parse (no pg_query_exit()).
 */
#include "sqlrisk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pg_query.h>

/* DO blocks inside DO blocks (EXECUTE 'DO ...') stop here. */
#define SQLRISK_MAX_DEPTH 4
/* What stands for a part of an EXECUTE string computed at run time. */
#define SQLRISK_PLACEHOLDER "zdm_dynamic"

/* A CHECK (column IS NOT NULL) constraint the plan has added. */
typedef struct sqlrisk_nncheck {
	const char *table;
	const char *conname;
	const char *column;
	bool validated;
	bool dropped;
} sqlrisk_nncheck;

struct zdmc_sqlrisk_ctx {
	zdmc_arena *arena;
	sqlrisk_nncheck *checks;
	size_t nchecks, checks_cap;
};

/* One classification in progress: the statements found so far. */
typedef struct sqlrisk_run {
	zdmc_sqlrisk_ctx *ctx;
	zdmc_arena *arena;
	zdmc_stmt_risk *stmts;
	size_t nstmts, cap;
	unsigned inherit; /* flags of the enclosing DO block's context */
	int depth;
} sqlrisk_run;

/* An ALTER TABLE subcommand; a statement takes the strongest of its locks
 * for all of its work. */
typedef struct sqlrisk_cmd {
	const char *label; /* "ADD COLUMN" */
	const char *name;  /* "zdm_new_x", NULL when none */
	zdmc_lock lock;
	zdmc_hold hold;
	unsigned flags;
	const char *note;
} sqlrisk_cmd;

static int sqlrisk_sql(sqlrisk_run *r, const char *sql, const char **error);

/* ---- lock modes ------------------------------------------------------ */

const char *
zdmc_lock_name(zdmc_lock lock)
{
	static const char *const names[] = {
		"none",
		"ACCESS SHARE",
		"ROW SHARE",
		"ROW EXCLUSIVE",
		"SHARE UPDATE EXCLUSIVE",
		"SHARE",
		"SHARE ROW EXCLUSIVE",
		"EXCLUSIVE",
		"ACCESS EXCLUSIVE",
	};

	return (size_t)lock < sizeof(names) / sizeof(names[0]) ? names[lock]
	                                                       : "unknown";
}

const char *
zdmc_lock_blocks(zdmc_lock lock)
{
	switch (lock) {
	case ZDMC_LOCK_NONE:
		return "blocks nothing";
	case ZDMC_LOCK_ACCESS_SHARE:
	case ZDMC_LOCK_ROW_SHARE:
		return "reads and writes go on";
	case ZDMC_LOCK_ROW_EXCLUSIVE:
		return "reads and writes go on; blocks CREATE INDEX and DDL";
	case ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE:
		return "reads and writes go on; blocks DDL and VACUUM";
	case ZDMC_LOCK_SHARE:
	case ZDMC_LOCK_SHARE_ROW_EXCLUSIVE:
		return "blocks writes, reads go on";
	case ZDMC_LOCK_EXCLUSIVE:
		return "blocks writes and SELECT FOR UPDATE, plain reads go on";
	case ZDMC_LOCK_ACCESS_EXCLUSIVE:
		return "blocks reads and writes";
	}
	return "unknown";
}

bool
zdmc_lock_blocks_writes(zdmc_lock lock)
{
	return lock >= ZDMC_LOCK_SHARE;
}

/* ---- parse trees ------------------------------------------------------- */

/* The fields of node {"Type": {...}}, NULL when node is not of that type. */
static json_t *
sqlrisk_node(json_t *node, const char *type)
{
	json_t *fields = json_object_get(node, type);

	return json_is_object(fields) ? fields : NULL;
}

/* The type of node {"Type": {...}}: its one key. */
static const char *
sqlrisk_node_type(json_t *node)
{
	void *it = json_object_iter(node);

	return it != NULL ? json_object_iter_key(it) : "";
}

static const char *
sqlrisk_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static bool
sqlrisk_is(json_t *obj, const char *key, const char *value)
{
	const char *s = sqlrisk_str(obj, key);

	return s != NULL && strcmp(s, value) == 0;
}

static bool
sqlrisk_true(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

/* The text of a String node. */
static const char *
sqlrisk_string(json_t *node)
{
	return sqlrisk_str(sqlrisk_node(node, "String"), "sval");
}

/* Append s as PostgreSQL's quote_ident would write it (keywords aside). */
static void
sqlrisk_put_ident(zdmc_buf *b, const char *s)
{
	const char *p;
	bool plain = s[0] != '\0' && !(s[0] >= '0' && s[0] <= '9');

	for (p = s; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '$';
	if (plain) {
		zdmc_buf_puts(b, s);
		return;
	}
	zdmc_buf_puts(b, "\"");
	for (p = s; *p; p++) {
		if (*p == '"')
			zdmc_buf_puts(b, "\"");
		zdmc_buf_append(b, p, 1);
	}
	zdmc_buf_puts(b, "\"");
}

/* "schema.table" of a RangeVar's fields. */
static const char *
sqlrisk_relname(zdmc_arena *arena, json_t *rv)
{
	zdmc_buf b;
	const char *schema = sqlrisk_str(rv, "schemaname");
	const char *rel = sqlrisk_str(rv, "relname");

	if (rel == NULL)
		return NULL;
	zdmc_buf_init(&b, arena);
	if (schema != NULL) {
		sqlrisk_put_ident(&b, schema);
		zdmc_buf_puts(&b, ".");
	}
	sqlrisk_put_ident(&b, rel);
	return zdmc_buf_cstr(&b);
}

/* The first n String items of a list, dotted: a qualified name. */
static const char *
sqlrisk_dotted(zdmc_arena *arena, json_t *list, size_t n)
{
	zdmc_buf b;
	size_t i;

	zdmc_buf_init(&b, arena);
	for (i = 0; i < n && i < json_array_size(list); i++) {
		const char *s = sqlrisk_string(json_array_get(list, i));

		if (i > 0)
			zdmc_buf_puts(&b, ".");
		sqlrisk_put_ident(&b, s != NULL ? s : "?");
	}
	return zdmc_buf_cstr(&b);
}

/* The items of a DROP's object: a List of Strings, or one String. */
static json_t *
sqlrisk_object_names(json_t *object)
{
	json_t *list = sqlrisk_node(object, "List");

	if (list != NULL)
		return json_object_get(list, "items");
	list = sqlrisk_node(object, "ObjectWithArgs");
	if (list != NULL)
		return json_object_get(list, "objname");
	return NULL;
}

/*
 * Every RangeVar under v, qualified, in tree order, without duplicates;
 * *user says whether one is outside pg_catalog and information_schema.
 */
static void
sqlrisk_collect_tables(zdmc_arena *arena, json_t *v, zdmc_buf *names,
                       bool *user)
{
	void *it;
	size_t i;

	for (i = 0; i < json_array_size(v); i++)
		sqlrisk_collect_tables(arena, json_array_get(v, i), names,
		                       user);
	for (it = json_object_iter(v); it != NULL;
	     it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		json_t *member = json_object_iter_value(it);

		/* a RangeVar node, or a bare one (VacuumRelation, DML) */
		if ((strcmp(key, "RangeVar") == 0 ||
		     (strcmp(key, "relation") == 0 &&
		      json_object_get(member, "relname") != NULL)) &&
		    json_is_object(member)) {
			const char *schema = sqlrisk_str(member, "schemaname");
			const char *name = sqlrisk_relname(arena, member);
			const char *have = zdmc_buf_cstr(names);
			size_t len = strlen(name);
			const char *hit = strstr(have, name);

			if (schema != NULL &&
			    (strcmp(schema, "pg_catalog") == 0 ||
			     strcmp(schema, "information_schema") == 0))
				continue;
			*user = true;
			/* a whole item of the ", " list already? */
			while (hit != NULL &&
			       !((hit == have || hit[-1] == ' ') &&
			         (hit[len] == '\0' || hit[len] == ',')))
				hit = strstr(hit + 1, name);
			if (hit != NULL)
				continue;
			if (names->len > 0)
				zdmc_buf_puts(names, ", ");
			zdmc_buf_puts(names, name);
			continue;
		}
		sqlrisk_collect_tables(arena, member, names, user);
	}
}

/*
 * A default that cannot make ADD COLUMN rewrite the table: constants, casts
 * of them, and the stable clock functions.  Anything else may be volatile.
 */
static bool
sqlrisk_default_is_stable(json_t *node)
{
	static const char *const stable[] = {
		"now",
		"statement_timestamp",
		"transaction_timestamp",
		"current_timestamp",
		"localtimestamp",
		"current_date",
	};
	const char *type = sqlrisk_node_type(node);
	json_t *f = json_object_iter_value(json_object_iter(node));
	size_t i;

	if (strcmp(type, "A_Const") == 0 ||
	    strcmp(type, "SQLValueFunction") == 0)
		return true;
	if (strcmp(type, "TypeCast") == 0)
		return sqlrisk_default_is_stable(json_object_get(f, "arg"));
	if (strcmp(type, "A_Expr") == 0) {
		json_t *l = json_object_get(f, "lexpr");

		return (l == NULL || sqlrisk_default_is_stable(l)) &&
		       sqlrisk_default_is_stable(json_object_get(f, "rexpr"));
	}
	if (strcmp(type, "FuncCall") == 0 &&
	    json_array_size(json_object_get(f, "args")) == 0) {
		json_t *name = json_object_get(f, "funcname");
		const char *last = sqlrisk_string(
			json_array_get(name, json_array_size(name) - 1));

		for (i = 0;
		     last != NULL && i < sizeof(stable) / sizeof(*stable); i++)
			if (strcmp(last, stable[i]) == 0)
				return true;
	}
	return false;
}

/* ---- the plan's NOT NULL checks --------------------------------------- */

zdmc_sqlrisk_ctx *
zdmc_sqlrisk_ctx_new(zdmc_arena *arena)
{
	zdmc_sqlrisk_ctx *ctx = ZDMC_NEW(arena, zdmc_sqlrisk_ctx);

	ctx->arena = arena;
	return ctx;
}

static sqlrisk_nncheck *
sqlrisk_check_find(zdmc_sqlrisk_ctx *ctx, const char *table,
                   const char *conname, const char *column)
{
	size_t i;

	for (i = ctx->nchecks; i-- > 0;) {
		sqlrisk_nncheck *c = &ctx->checks[i];

		if (c->dropped || strcmp(c->table, table) != 0)
			continue;
		if (conname != NULL && strcmp(c->conname, conname) == 0)
			return c;
		if (column != NULL && c->validated &&
		    strcmp(c->column, column) == 0)
			return c;
	}
	return NULL;
}

static void
sqlrisk_check_add(zdmc_sqlrisk_ctx *ctx, const char *table, const char *conname,
                  const char *column, bool validated)
{
	sqlrisk_nncheck *c;

	if (ctx->nchecks == ctx->checks_cap) {
		size_t cap = ctx->checks_cap ? ctx->checks_cap * 2 : 8;
		sqlrisk_nncheck *grown = zdmc_arena_alloc(
			ctx->arena, cap * sizeof(sqlrisk_nncheck));

		if (ctx->nchecks > 0)
			memcpy(grown, ctx->checks,
			       ctx->nchecks * sizeof(sqlrisk_nncheck));
		ctx->checks = grown;
		ctx->checks_cap = cap;
	}
	c = &ctx->checks[ctx->nchecks++];
	c->table = table;
	c->conname = zdmc_arena_strdup(ctx->arena, conname);
	c->column = zdmc_arena_strdup(ctx->arena, column);
	c->validated = validated;
	c->dropped = false;
}

/* The column of CHECK (column IS NOT NULL), NULL for any other check. */
static const char *
sqlrisk_nn_column(json_t *con)
{
	json_t *test =
		sqlrisk_node(json_object_get(con, "raw_expr"), "NullTest");
	json_t *ref, *fields;

	if (test == NULL || !sqlrisk_is(test, "nulltesttype", "IS_NOT_NULL"))
		return NULL;
	ref = sqlrisk_node(json_object_get(test, "arg"), "ColumnRef");
	fields = json_object_get(ref, "fields");
	if (json_array_size(fields) != 1)
		return NULL;
	return sqlrisk_string(json_array_get(fields, 0));
}

/* ---- statements ------------------------------------------------------- */

static zdmc_stmt_risk *
sqlrisk_push(sqlrisk_run *r, const char *what)
{
	zdmc_stmt_risk *s;

	if (r->nstmts == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		zdmc_stmt_risk *grown =
			zdmc_arena_alloc(r->arena, cap * sizeof(*grown));

		if (r->nstmts > 0)
			memcpy(grown, r->stmts, r->nstmts * sizeof(*grown));
		r->stmts = grown;
		r->cap = cap;
	}
	s = &r->stmts[r->nstmts++];
	memset(s, 0, sizeof(*s));
	s->what = what;
	s->flags = r->inherit;
	return s;
}

/* The flags that follow from lock and hold; called once a statement is
 * complete. */
static void
sqlrisk_finish(zdmc_stmt_risk *s)
{
	if (s->hold == ZDMC_HOLD_SCAN)
		s->flags |= ZDMC_RISK_SCAN;
	if (s->hold == ZDMC_HOLD_REWRITE)
		s->flags |= ZDMC_RISK_REWRITE;
	if (s->hold == ZDMC_HOLD_UNKNOWN)
		s->flags |= ZDMC_RISK_UNKNOWN;
	if (zdmc_lock_blocks_writes(s->lock) &&
	    (s->hold == ZDMC_HOLD_SCAN || s->hold == ZDMC_HOLD_REWRITE))
		s->flags |= ZDMC_RISK_DANGER;
	if (s->flags & (ZDMC_RISK_NO_TXN | ZDMC_RISK_ALL_ROWS))
		s->flags |= ZDMC_RISK_DANGER;
}

static zdmc_stmt_risk *
sqlrisk_unknown(sqlrisk_run *r, const char *what, const char *note)
{
	zdmc_stmt_risk *s = sqlrisk_push(r, what);

	s->lock = ZDMC_LOCK_NONE;
	s->hold = ZDMC_HOLD_UNKNOWN;
	s->note = note;
	sqlrisk_finish(s);
	return s;
}

/* ---- ALTER TABLE -------------------------------------------------------- */

static void
sqlrisk_add_column(sqlrisk_run *r, json_t *def, sqlrisk_cmd *c)
{
	json_t *cd = sqlrisk_node(def, "ColumnDef");
	json_t *type = json_object_get(cd, "typeName");
	json_t *names = json_object_get(type, "names");
	json_t *cons = json_object_get(cd, "constraints");
	const char *tname = sqlrisk_string(
		json_array_get(names, json_array_size(names) - 1));
	bool notnull = false, filled = false;
	size_t i;

	c->label = "ADD COLUMN %s";
	c->name = zdmc_arena_strdup(
		r->arena,
		sqlrisk_str(cd, "colname") ? sqlrisk_str(cd, "colname") : "?");
	c->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
	c->hold = ZDMC_HOLD_BRIEF;
	if (tname != NULL && strstr(tname, "serial") != NULL) {
		c->hold = ZDMC_HOLD_REWRITE;
		c->note = "a serial column's default (nextval) is volatile: "
			  "every row gets a value, the table is rewritten";
		filled = true;
	}
	for (i = 0; i < json_array_size(cons); i++) {
		json_t *con =
			sqlrisk_node(json_array_get(cons, i), "Constraint");
		const char *t = sqlrisk_str(con, "contype");

		if (t == NULL)
			continue;
		if (strcmp(t, "CONSTR_NOTNULL") == 0) {
			notnull = true;
		} else if (strcmp(t, "CONSTR_DEFAULT") == 0) {
			filled = true;
			if (!sqlrisk_default_is_stable(
				    json_object_get(con, "raw_expr"))) {
				c->hold = ZDMC_HOLD_REWRITE;
				c->note =
					"a default that is not a constant "
					"rewrites the table if it is volatile "
					"(random(), clock_timestamp(), "
					"gen_random_uuid(), ...)";
			}
		} else if (strcmp(t, "CONSTR_GENERATED") == 0 ||
		           strcmp(t, "CONSTR_IDENTITY") == 0) {
			filled = true;
			c->hold = ZDMC_HOLD_REWRITE;
			c->note = "an identity or stored generated column is "
				  "filled in on every row: the table is "
				  "rewritten";
		} else if (strcmp(t, "CONSTR_CHECK") == 0 ||
		           strcmp(t, "CONSTR_FOREIGN") == 0) {
			if (c->hold < ZDMC_HOLD_SCAN) {
				c->hold = ZDMC_HOLD_SCAN;
				c->note = "its constraint is checked on every "
					  "row while the lock is held";
			}
		} else if (strcmp(t, "CONSTR_PRIMARY") == 0 ||
		           strcmp(t, "CONSTR_UNIQUE") == 0) {
			if (c->hold < ZDMC_HOLD_SCAN) {
				c->hold = ZDMC_HOLD_SCAN;
				c->note =
					"its index is built while the lock is "
					"held";
			}
		}
	}
	if (notnull && !filled && c->note == NULL)
		c->note = "NOT NULL without a default fails if the table has "
			  "rows";
	if (c->note == NULL)
		c->note = "catalog only: a nullable column or a constant "
			  "default needs no rewrite";
}

static void
sqlrisk_add_constraint(sqlrisk_run *r, const char *table, json_t *def,
                       sqlrisk_cmd *c)
{
	json_t *con = sqlrisk_node(def, "Constraint");
	const char *t = sqlrisk_str(con, "contype");
	const char *conname = sqlrisk_str(con, "conname");
	bool not_valid = sqlrisk_true(con, "skip_validation");

	c->name = conname != NULL ? zdmc_arena_strdup(r->arena, conname) : NULL;
	c->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
	c->hold = ZDMC_HOLD_BRIEF;
	if (t == NULL)
		t = "";
	if (strcmp(t, "CONSTR_CHECK") == 0) {
		const char *col = sqlrisk_nn_column(con);

		c->label = not_valid ? "ADD CONSTRAINT %s CHECK NOT VALID"
		                     : "ADD CONSTRAINT %s CHECK";
		if (not_valid) {
			c->note = "NOT VALID: existing rows are not checked, "
				  "no scan";
		} else {
			c->hold = ZDMC_HOLD_SCAN;
			c->note = "checks every row while ACCESS EXCLUSIVE is "
				  "held: add it NOT VALID, then VALIDATE "
				  "CONSTRAINT";
		}
		if (col != NULL && conname != NULL)
			sqlrisk_check_add(r->ctx, table, conname, col,
			                  !not_valid);
	} else if (strcmp(t, "CONSTR_FOREIGN") == 0) {
		const char *pk = sqlrisk_relname(
			r->arena, json_object_get(con, "pktable"));
		/* A self-reference (a tree of rows) locks one table, not two. */
		bool self =
			pk != NULL && table != NULL && strcmp(pk, table) == 0;

		c->label = not_valid ? "ADD CONSTRAINT %s FOREIGN KEY NOT VALID"
		                     : "ADD CONSTRAINT %s FOREIGN KEY";
		c->lock = ZDMC_LOCK_SHARE_ROW_EXCLUSIVE;
		if (!not_valid)
			c->hold = ZDMC_HOLD_SCAN;
		c->note = zdmc_arena_printf(
			r->arena, "%s%s%s",
			self ? "references its own table"
			     : "also takes SHARE ROW EXCLUSIVE on ",
			self ? "" : (pk ? pk : "?"),
			not_valid ? "; NOT VALID: existing rows are not checked"
				  : "; checks every row while writes are "
				    "blocked: add it NOT VALID, then VALIDATE "
				    "CONSTRAINT");
	} else if (strcmp(t, "CONSTR_PRIMARY") == 0 ||
	           strcmp(t, "CONSTR_UNIQUE") == 0 ||
	           strcmp(t, "CONSTR_EXCLUSION") == 0) {
		bool using_index = sqlrisk_str(con, "indexname") != NULL;

		c->label = strcmp(t, "CONSTR_PRIMARY") == 0
		                   ? "ADD CONSTRAINT %s PRIMARY KEY"
		           : strcmp(t, "CONSTR_UNIQUE") == 0
		                   ? "ADD CONSTRAINT %s UNIQUE"
		                   : "ADD CONSTRAINT %s EXCLUDE";
		if (using_index) {
			c->note = "USING INDEX: the index exists, no build";
		} else {
			c->hold = ZDMC_HOLD_SCAN;
			c->note = "builds its index while ACCESS EXCLUSIVE is "
				  "held: build it with CREATE UNIQUE INDEX "
				  "CONCURRENTLY, then add it USING INDEX";
		}
	} else {
		c->label = "ADD CONSTRAINT %s";
		c->hold = ZDMC_HOLD_UNKNOWN;
	}
}

static void
sqlrisk_alter_cmd(sqlrisk_run *r, const char *table, json_t *cmd,
                  sqlrisk_cmd *c)
{
	const char *sub = sqlrisk_str(cmd, "subtype");
	const char *name = sqlrisk_str(cmd, "name");
	json_t *def = json_object_get(cmd, "def");
	sqlrisk_nncheck *chk;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
	c->hold = ZDMC_HOLD_BRIEF;
	c->name = name != NULL ? zdmc_arena_strdup(r->arena, name) : NULL;
	if (sub == NULL)
		sub = "";
	if (strcmp(sub, "AT_AddColumn") == 0) {
		sqlrisk_add_column(r, def, c);
	} else if (strcmp(sub, "AT_DropColumn") == 0) {
		c->label = "DROP COLUMN %s";
		c->flags = ZDMC_RISK_DATA_LOSS;
		c->note = "catalog only: the column is marked dropped, no "
			  "rewrite; its data is gone";
		for (i = 0; i < r->ctx->nchecks; i++)
			if (name != NULL &&
			    strcmp(r->ctx->checks[i].table, table) == 0 &&
			    strcmp(r->ctx->checks[i].column, name) == 0)
				r->ctx->checks[i].dropped = true;
	} else if (strcmp(sub, "AT_AlterColumnType") == 0) {
		c->label = "ALTER COLUMN %s TYPE";
		c->hold = ZDMC_HOLD_REWRITE;
		c->note = "rewrites the table and rebuilds its indexes while "
			  "ACCESS EXCLUSIVE is held (unless the new type is "
			  "binary-compatible, such as varchar(n) to text); "
			  "zdm's alter column ... type avoids this";
	} else if (strcmp(sub, "AT_SetNotNull") == 0) {
		c->label = "ALTER COLUMN %s SET NOT NULL";
		chk = name != NULL
		              ? sqlrisk_check_find(r->ctx, table, NULL, name)
		              : NULL;
		if (chk != NULL) {
			c->note = zdmc_arena_printf(
				r->arena,
				"no scan: the validated check %s proves it",
				chk->conname);
		} else {
			c->hold = ZDMC_HOLD_SCAN;
			c->note =
				"scans the whole table under ACCESS "
				"EXCLUSIVE, unless a validated CHECK (col IS "
				"NOT NULL) exists (none earlier in this plan)";
		}
	} else if (strcmp(sub, "AT_DropNotNull") == 0) {
		c->label = "ALTER COLUMN %s DROP NOT NULL";
		c->note = "catalog only: no scan";
	} else if (strcmp(sub, "AT_ReplicaIdentity") == 0) {
		c->label = "REPLICA IDENTITY";
		c->note = "catalog only; FULL makes every UPDATE and DELETE "
			  "write the whole old row to the WAL";
	} else if (strcmp(sub, "AT_ColumnDefault") == 0 ||
	           strcmp(sub, "AT_CookedColumnDefault") == 0) {
		c->label = def != NULL ? "ALTER COLUMN %s SET DEFAULT"
		                       : "ALTER COLUMN %s DROP DEFAULT";
		c->note = "catalog only: existing rows keep their values";
	} else if (strcmp(sub, "AT_AddConstraint") == 0) {
		sqlrisk_add_constraint(r, table, def, c);
	} else if (strcmp(sub, "AT_ValidateConstraint") == 0) {
		c->label = "VALIDATE CONSTRAINT %s";
		c->lock = ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE;
		c->hold = ZDMC_HOLD_SCAN;
		chk = name != NULL
		              ? sqlrisk_check_find(r->ctx, table, name, NULL)
		              : NULL;
		if (chk != NULL)
			chk->validated = true;
	} else if (strcmp(sub, "AT_DropConstraint") == 0) {
		c->label = "DROP CONSTRAINT %s";
		chk = name != NULL
		              ? sqlrisk_check_find(r->ctx, table, name, NULL)
		              : NULL;
		if (chk != NULL)
			chk->dropped = true;
	} else if (strncmp(sub, "AT_EnableTrig", 13) == 0 ||
	           strncmp(sub, "AT_EnableAlwaysTrig", 19) == 0 ||
	           strncmp(sub, "AT_EnableReplicaTrig", 20) == 0 ||
	           strncmp(sub, "AT_DisableTrig", 14) == 0) {
		c->label = strncmp(sub, "AT_Disable", 10) == 0
		                   ? "DISABLE TRIGGER %s"
		                   : "ENABLE TRIGGER %s";
		c->lock = ZDMC_LOCK_SHARE_ROW_EXCLUSIVE;
	} else if (strcmp(sub, "AT_SetStatistics") == 0 ||
	           strcmp(sub, "AT_SetOptions") == 0 ||
	           strcmp(sub, "AT_ResetOptions") == 0 ||
	           strcmp(sub, "AT_SetRelOptions") == 0 ||
	           strcmp(sub, "AT_ResetRelOptions") == 0 ||
	           strcmp(sub, "AT_ClusterOn") == 0 ||
	           strcmp(sub, "AT_DropCluster") == 0) {
		c->label = "SET storage parameter";
		c->lock = ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE;
	} else if (strcmp(sub, "AT_SetLogged") == 0 ||
	           strcmp(sub, "AT_SetUnLogged") == 0 ||
	           strcmp(sub, "AT_SetTableSpace") == 0 ||
	           strcmp(sub, "AT_SetAccessMethod") == 0) {
		c->label = strcmp(sub, "AT_SetTableSpace") == 0
		                   ? "SET TABLESPACE"
		           : strcmp(sub, "AT_SetAccessMethod") == 0
		                   ? "SET ACCESS METHOD"
		                   : "SET LOGGED/UNLOGGED";
		c->hold = ZDMC_HOLD_REWRITE;
		c->note = "copies the whole table while ACCESS EXCLUSIVE is "
			  "held";
	} else if (strcmp(sub, "AT_AttachPartition") == 0) {
		c->label = "ATTACH PARTITION";
		c->lock = ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE;
		c->hold = ZDMC_HOLD_SCAN;
		c->note = "scans the new partition under ACCESS EXCLUSIVE "
			  "unless a validated CHECK matches its bounds";
	} else if (strcmp(sub, "AT_DetachPartition") == 0) {
		c->label = "DETACH PARTITION";
	} else if (strcmp(sub, "AT_ChangeOwner") == 0 ||
	           strcmp(sub, "AT_SetStorage") == 0 ||
	           strcmp(sub, "AT_SetCompression") == 0 ||
	           strcmp(sub, "AT_AddIdentity") == 0 ||
	           strcmp(sub, "AT_SetIdentity") == 0 ||
	           strcmp(sub, "AT_DropIdentity") == 0 ||
	           strcmp(sub, "AT_EnableRowSecurity") == 0 ||
	           strcmp(sub, "AT_DisableRowSecurity") == 0 ||
	           strcmp(sub, "AT_ForceRowSecurity") == 0 ||
	           strcmp(sub, "AT_NoForceRowSecurity") == 0 ||
	           strcmp(sub, "AT_AddInherit") == 0 ||
	           strcmp(sub, "AT_DropInherit") == 0) {
		c->label = zdmc_arena_strdup(r->arena, sub + 3);
	} else {
		c->label = zdmc_arena_strdup(r->arena, sub[0] ? sub + 3 : "?");
		c->hold = ZDMC_HOLD_UNKNOWN;
		c->note = "a subcommand zdmc does not classify: read the SQL";
	}
}

/* label with its "%s" replaced by name (and dropped, with a space, when
 * there is no name). */
static void
sqlrisk_put_label(zdmc_buf *b, const char *label, const char *name)
{
	const char *hole = strstr(label, "%s");

	if (hole == NULL) {
		zdmc_buf_puts(b, label);
		return;
	}
	if (name != NULL) {
		zdmc_buf_append(b, label, (size_t)(hole - label));
		zdmc_buf_puts(b, name);
		zdmc_buf_puts(b, hole + 2);
	} else {
		zdmc_buf_append(b, label,
		                (size_t)(hole - label) - (hole > label));
		zdmc_buf_puts(b, hole + 2);
	}
}

static void
sqlrisk_alter_table(sqlrisk_run *r, json_t *f)
{
	json_t *cmds = json_object_get(f, "cmds");
	const char *table =
		sqlrisk_relname(r->arena, json_object_get(f, "relation"));
	const char *objtype = sqlrisk_str(f, "objtype");
	const char *prev_label = NULL;
	zdmc_buf what, notes;
	zdmc_stmt_risk *s;
	size_t i;

	if (table == NULL)
		table = "?";
	zdmc_buf_init(&what, r->arena);
	zdmc_buf_init(&notes, r->arena);
	zdmc_buf_puts(&what, objtype && strcmp(objtype, "OBJECT_INDEX") == 0
	                             ? "ALTER INDEX"
	                     : objtype && strcmp(objtype, "OBJECT_VIEW") == 0
	                             ? "ALTER VIEW"
	                             : "ALTER TABLE");
	s = sqlrisk_push(r, NULL);
	s->target = table;
	s->target_kind = ZDMC_TARGET_TABLE;
	for (i = 0; i < json_array_size(cmds); i++) {
		json_t *cmd =
			sqlrisk_node(json_array_get(cmds, i), "AlterTableCmd");
		sqlrisk_cmd c;

		sqlrisk_alter_cmd(r, table, cmd, &c);
		/* ADD COLUMN a, ADD COLUMN b -> "ADD COLUMN a, b" */
		if (prev_label != NULL && strcmp(prev_label, c.label) == 0 &&
		    c.name != NULL &&
		    strcmp(c.label + strlen(c.label) - 2, "%s") == 0) {
			zdmc_buf_puts(&what, ", ");
			zdmc_buf_puts(&what, c.name);
		} else {
			zdmc_buf_puts(&what, i > 0 ? ", " : " ");
			sqlrisk_put_label(&what, c.label, c.name);
		}
		prev_label = c.label;
		if (c.lock > s->lock)
			s->lock = c.lock;
		if (c.hold > s->hold)
			s->hold = c.hold;
		s->flags |= c.flags;
		if (c.note != NULL &&
		    strstr(zdmc_buf_cstr(&notes), c.note) == NULL) {
			if (notes.len > 0)
				zdmc_buf_puts(&notes, "; ");
			zdmc_buf_puts(&notes, c.note);
		}
	}
	s->what = zdmc_buf_cstr(&what);
	s->note = notes.len > 0 ? zdmc_buf_cstr(&notes) : NULL;
	if (objtype != NULL && strcmp(objtype, "OBJECT_VIEW") == 0)
		s->target_kind = ZDMC_TARGET_VIEW;
	sqlrisk_finish(s);
}

static void
sqlrisk_rename(sqlrisk_run *r, json_t *f)
{
	const char *type = sqlrisk_str(f, "renameType");
	const char *rel =
		sqlrisk_relname(r->arena, json_object_get(f, "relation"));
	const char *sub = sqlrisk_str(f, "subname");
	const char *to = sqlrisk_str(f, "newname");
	zdmc_stmt_risk *s;
	size_t i;

	if (type == NULL)
		type = "";
	s = sqlrisk_push(r, NULL);
	s->target = rel;
	s->target_kind = rel != NULL ? ZDMC_TARGET_TABLE : ZDMC_TARGET_NONE;
	s->lock = rel != NULL ? ZDMC_LOCK_ACCESS_EXCLUSIVE : ZDMC_LOCK_NONE;
	s->hold = rel != NULL ? ZDMC_HOLD_BRIEF : ZDMC_HOLD_NONE;
	if (strcmp(type, "OBJECT_COLUMN") == 0 && rel != NULL) {
		s->what = zdmc_arena_printf(
			r->arena, "ALTER TABLE RENAME COLUMN %s TO %s",
			sub ? sub : "?", to ? to : "?");
		s->note = "catalog only";
		for (i = 0; sub && to && i < r->ctx->nchecks; i++)
			if (strcmp(r->ctx->checks[i].table, rel) == 0 &&
			    strcmp(r->ctx->checks[i].column, sub) == 0)
				r->ctx->checks[i].column =
					zdmc_arena_strdup(r->arena, to);
	} else if (strcmp(type, "OBJECT_TABCONSTRAINT") == 0 && rel != NULL) {
		s->what = zdmc_arena_printf(
			r->arena, "ALTER TABLE RENAME CONSTRAINT %s TO %s",
			sub ? sub : "?", to ? to : "?");
		for (i = 0; sub && to && i < r->ctx->nchecks; i++)
			if (strcmp(r->ctx->checks[i].table, rel) == 0 &&
			    strcmp(r->ctx->checks[i].conname, sub) == 0)
				r->ctx->checks[i].conname =
					zdmc_arena_strdup(r->arena, to);
	} else if (strcmp(type, "OBJECT_TABLE") == 0 && rel != NULL) {
		s->what = zdmc_arena_printf(
			r->arena, "ALTER TABLE RENAME TO %s", to ? to : "?");
		s->note = "every query that names the old name fails from "
			  "then on";
	} else if (strcmp(type, "OBJECT_INDEX") == 0 && rel != NULL) {
		s->what = "ALTER INDEX RENAME";
		s->target_kind = ZDMC_TARGET_INDEX;
		s->lock = ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE;
	} else if ((strcmp(type, "OBJECT_VIEW") == 0 ||
	            strcmp(type, "OBJECT_MATVIEW") == 0) &&
	           rel != NULL) {
		s->what = "ALTER VIEW RENAME";
		s->target_kind = ZDMC_TARGET_VIEW;
	} else if (strcmp(type, "OBJECT_TRIGGER") == 0 && rel != NULL) {
		s->what = "ALTER TRIGGER RENAME";
	} else {
		s->what = zdmc_arena_printf(r->arena, "RENAME %s",
		                            type[0] ? type + 7 : "?");
		if (rel != NULL)
			s->hold = ZDMC_HOLD_UNKNOWN;
	}
	sqlrisk_finish(s);
}

/* ---- other DDL ---------------------------------------------------------- */

static void
sqlrisk_create_index(sqlrisk_run *r, json_t *f)
{
	bool concurrent = sqlrisk_true(f, "concurrent");
	bool unique = sqlrisk_true(f, "unique");
	const char *idx = sqlrisk_str(f, "idxname");
	zdmc_stmt_risk *s;

	s = sqlrisk_push(r, zdmc_arena_printf(r->arena, "CREATE %sINDEX%s%s%s",
	                                      unique ? "UNIQUE " : "",
	                                      concurrent ? " CONCURRENTLY" : "",
	                                      idx ? " " : "", idx ? idx : ""));
	s->target = sqlrisk_relname(r->arena, json_object_get(f, "relation"));
	s->target_kind = ZDMC_TARGET_TABLE;
	s->hold = ZDMC_HOLD_SCAN;
	if (concurrent) {
		s->lock = ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE;
		s->flags |= ZDMC_RISK_NO_TXN;
		s->note = "CONCURRENTLY cannot run inside a transaction "
			  "block, and zdm runs every step in one: this step "
			  "fails";
	} else {
		s->lock = ZDMC_LOCK_SHARE;
		s->note = "without CONCURRENTLY, writes wait for the whole "
			  "index build";
	}
	sqlrisk_finish(s);
}

static void
sqlrisk_drop(sqlrisk_run *r, json_t *f)
{
	const char *type = sqlrisk_str(f, "removeType");
	json_t *objects = json_object_get(f, "objects");
	bool cascade = sqlrisk_is(f, "behavior", "DROP_CASCADE");
	bool concurrent = sqlrisk_true(f, "concurrent");
	size_t i;

	if (type == NULL)
		type = "";
	for (i = 0; i < json_array_size(objects) || i == 0; i++) {
		json_t *obj = json_array_get(objects, i);
		json_t *names = sqlrisk_object_names(obj);
		size_t n = json_array_size(names);
		const char *name = n > 0 ? sqlrisk_dotted(r->arena, names, n)
		                         : sqlrisk_string(obj);
		const char *noun = type[0] ? type + 7 : "?";
		zdmc_stmt_risk *s;

		if (name == NULL)
			name = "?";
		if (strcmp(type, "OBJECT_FUNCTION") == 0 ||
		    strcmp(type, "OBJECT_PROCEDURE") == 0)
			name = zdmc_arena_printf(r->arena, "%s()", name);
		s = sqlrisk_push(
			r, zdmc_arena_printf(r->arena, "DROP %s%s %s%s", noun,
		                             concurrent ? " CONCURRENTLY" : "",
		                             name, cascade ? " CASCADE" : ""));
		s->lock = ZDMC_LOCK_NONE;
		s->hold = ZDMC_HOLD_NONE;
		if (strcmp(type, "OBJECT_TABLE") == 0) {
			s->target = name;
			s->target_kind = ZDMC_TARGET_TABLE;
			s->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
			s->hold = ZDMC_HOLD_BRIEF;
			s->flags |= ZDMC_RISK_DATA_LOSS | ZDMC_RISK_DANGER;
			s->note = "drops the table and every row in it";
		} else if (strcmp(type, "OBJECT_INDEX") == 0) {
			s->target = name;
			s->target_kind = ZDMC_TARGET_INDEX;
			s->hold = ZDMC_HOLD_BRIEF;
			s->lock = concurrent ? ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE
			                     : ZDMC_LOCK_ACCESS_EXCLUSIVE;
			if (concurrent) {
				s->flags |= ZDMC_RISK_NO_TXN;
				s->note =
					"CONCURRENTLY cannot run inside a "
					"transaction block, and zdm runs every "
					"step in one: this step fails";
			}
		} else if (strcmp(type, "OBJECT_VIEW") == 0 ||
		           strcmp(type, "OBJECT_MATVIEW") == 0) {
			s->target = name;
			s->target_kind = ZDMC_TARGET_VIEW;
			s->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
			s->hold = ZDMC_HOLD_BRIEF;
			s->note = "no lock on the table under it; queries "
				  "through the view fail from then on";
		} else if (strcmp(type, "OBJECT_TRIGGER") == 0 ||
		           strcmp(type, "OBJECT_RULE") == 0 ||
		           strcmp(type, "OBJECT_POLICY") == 0) {
			/* objects: table name items, then the trigger's */
			s->what = zdmc_arena_printf(
				r->arena, "DROP %s %s", noun,
				n > 0 ? sqlrisk_string(
						json_array_get(names, n - 1))
				      : "?");
			s->target =
				n > 1 ? sqlrisk_dotted(r->arena, names, n - 1)
				      : "?";
			s->target_kind = ZDMC_TARGET_TABLE;
			s->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
			s->hold = ZDMC_HOLD_BRIEF;
		} else if (strcmp(type, "OBJECT_FOREIGN_TABLE") == 0 ||
		           strcmp(type, "OBJECT_SEQUENCE") == 0) {
			s->target = name;
			s->target_kind = ZDMC_TARGET_TABLE;
			s->lock = ZDMC_LOCK_ACCESS_EXCLUSIVE;
			s->hold = ZDMC_HOLD_BRIEF;
		}
		if (cascade) {
			s->flags |= ZDMC_RISK_CASCADE;
			s->note = "CASCADE also drops everything that depends "
				  "on it (views, foreign keys, ...)";
		}
		sqlrisk_finish(s);
		if (json_array_size(objects) == 0)
			break;
	}
}

static void
sqlrisk_create_trigger(sqlrisk_run *r, json_t *f)
{
	const char *name = sqlrisk_str(f, "trigname");
	zdmc_stmt_risk *s = sqlrisk_push(
		r, zdmc_arena_printf(r->arena, "CREATE %sTRIGGER %s",
	                             sqlrisk_true(f, "replace") ? "OR REPLACE "
	                                                        : "",
	                             name ? name : "?"));

	s->target = sqlrisk_relname(r->arena, json_object_get(f, "relation"));
	s->target_kind = ZDMC_TARGET_TABLE;
	s->lock = ZDMC_LOCK_SHARE_ROW_EXCLUSIVE;
	s->hold = ZDMC_HOLD_BRIEF;
	sqlrisk_finish(s);
}

static void
sqlrisk_create_function(sqlrisk_run *r, json_t *f)
{
	json_t *names = json_object_get(f, "funcname");
	bool replace = sqlrisk_true(f, "replace");
	zdmc_stmt_risk *s = sqlrisk_push(
		r,
		zdmc_arena_printf(r->arena, "CREATE %s%s %s()",
	                          replace ? "OR REPLACE " : "",
	                          sqlrisk_true(f, "is_procedure") ? "PROCEDURE"
	                                                          : "FUNCTION",
	                          sqlrisk_dotted(r->arena, names,
	                                         json_array_size(names))));

	s->lock = ZDMC_LOCK_NONE;
	s->hold = ZDMC_HOLD_NONE;
	if (replace)
		s->note = "replaces the function in place: every caller runs "
			  "the new body at once";
	sqlrisk_finish(s);
}

static void
sqlrisk_create_view(sqlrisk_run *r, json_t *f)
{
	zdmc_buf tables;
	bool user = false;
	zdmc_stmt_risk *s;

	zdmc_buf_init(&tables, r->arena);
	sqlrisk_collect_tables(r->arena, json_object_get(f, "query"), &tables,
	                       &user);
	s = sqlrisk_push(
		r,
		zdmc_arena_printf(
			r->arena, "CREATE %sVIEW %s",
			sqlrisk_true(f, "replace") ? "OR REPLACE " : "",
			sqlrisk_relname(r->arena, json_object_get(f, "view"))));
	if (user) {
		s->target = zdmc_buf_cstr(&tables);
		s->target_kind = ZDMC_TARGET_TABLE;
		s->lock = ZDMC_LOCK_ACCESS_SHARE;
		s->hold = ZDMC_HOLD_BRIEF;
		s->note = "catalog only: it reads the definition of the "
			  "tables, not their rows";
	}
	sqlrisk_finish(s);
}

/* ---- DML and queries ---------------------------------------------------- */

/* Does the tree under v call the function named name? */
static bool
sqlrisk_calls(json_t *v, const char *name)
{
	if (json_is_object(v)) {
		json_t *fc = json_object_get(v, "FuncCall");
		const char *key;
		json_t *child;

		if (fc != NULL) {
			json_t *names = json_object_get(fc, "funcname");
			size_t n = json_array_size(names);
			const char *last =
				n > 0 ? sqlrisk_string(
						json_array_get(names, n - 1))
				      : NULL;

			if (last != NULL && strcmp(last, name) == 0)
				return true;
		}
		json_object_foreach(v, key, child)
		{
			(void)key;
			if (sqlrisk_calls(child, name))
				return true;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *child;

		json_array_foreach(v, i, child)
		{
			if (sqlrisk_calls(child, name))
				return true;
		}
	}
	return false;
}

static void
sqlrisk_select(sqlrisk_run *r, json_t *f)
{
	zdmc_buf tables;
	bool user = false;
	zdmc_stmt_risk *s;

	zdmc_buf_init(&tables, r->arena);
	sqlrisk_collect_tables(r->arena, f, &tables, &user);
	s = sqlrisk_push(r, "SELECT");
	if (sqlrisk_calls(f, "pg_create_logical_replication_slot")) {
		/* no table lock, but it waits for every transaction that has
		 * an xid to end, and lock_timeout does not bound that wait */
		s->what = "SELECT pg_create_logical_replication_slot";
		s->flags |= ZDMC_RISK_CATALOG;
		s->note = "no table lock, but it waits until every transaction "
			  "running when it starts has ended (lock_timeout does "
			  "not bound that wait): a long transaction holds up "
			  "this step, and nothing waits behind it";
	} else if (!user) {
		s->flags |= ZDMC_RISK_CATALOG;
		s->lock = ZDMC_LOCK_ACCESS_SHARE;
		s->hold = ZDMC_HOLD_BRIEF;
		s->note = "reads the system catalog only";
	} else {
		s->target = zdmc_buf_cstr(&tables);
		s->target_kind = ZDMC_TARGET_TABLE;
		s->lock = json_object_get(f, "lockingClause") != NULL
		                  ? ZDMC_LOCK_ROW_SHARE
		                  : ZDMC_LOCK_ACCESS_SHARE;
		s->hold = ZDMC_HOLD_SCAN;
		s->note = s->lock == ZDMC_LOCK_ROW_SHARE
		                  ? "locks the rows it reads (FOR UPDATE/SHARE)"
		                  : NULL;
	}
	sqlrisk_finish(s);
}

static void
sqlrisk_dml(sqlrisk_run *r, json_t *f, const char *verb)
{
	zdmc_buf tables;
	bool user = false, all = json_object_get(f, "whereClause") == NULL;
	zdmc_stmt_risk *s = sqlrisk_push(r, verb);

	zdmc_buf_init(&tables, r->arena);
	s->target = sqlrisk_relname(r->arena, json_object_get(f, "relation"));
	s->target_kind = ZDMC_TARGET_TABLE;
	s->lock = ZDMC_LOCK_ROW_EXCLUSIVE;
	s->hold = ZDMC_HOLD_ROWS;
	s->flags |= ZDMC_RISK_WRITES_ROWS;
	if (strcmp(verb, "DELETE") == 0)
		s->flags |= ZDMC_RISK_DATA_LOSS;
	if (strcmp(verb, "INSERT") == 0) {
		sqlrisk_collect_tables(r->arena,
		                       json_object_get(f, "selectStmt"),
		                       &tables, &user);
		if (user)
			s->note = zdmc_arena_printf(r->arena, "reads %s",
			                            zdmc_buf_cstr(&tables));
	} else if (all) {
		s->flags |= ZDMC_RISK_ALL_ROWS;
		s->note = "no WHERE: every row in one transaction; each stays "
			  "locked until it commits and gets a new version at "
			  "once";
	} else {
		s->note = "locks the rows it changes until the transaction "
			  "commits; each gets a new version";
	}
	sqlrisk_finish(s);
}

/* ---- DO blocks ----------------------------------------------------------- */

/*
 * The text an EXECUTE builds, as far as it is known before it runs: string
 * constants kept, format() templates filled in, everything computed
 * replaced by a placeholder identifier.  Returns false when nothing of it is
 * a constant.
 */
static bool
sqlrisk_dynamic_part(zdmc_buf *b, json_t *node, int depth)
{
	const char *type = sqlrisk_node_type(node);
	json_t *f = json_object_iter_value(json_object_iter(node));
	json_t *args;
	bool any = false;
	size_t i;

	if (depth > 64)
		return false;
	if (strcmp(type, "A_Const") == 0 && json_object_get(f, "sval")) {
		zdmc_buf_puts(b,
		              sqlrisk_str(json_object_get(f, "sval"), "sval"));
		return true;
	}
	if (strcmp(type, "TypeCast") == 0)
		return sqlrisk_dynamic_part(b, json_object_get(f, "arg"),
		                            depth + 1);
	if (strcmp(type, "A_Expr") == 0 && json_object_get(f, "lexpr") &&
	    sqlrisk_string(json_array_get(json_object_get(f, "name"), 0)) &&
	    strcmp(sqlrisk_string(
			   json_array_get(json_object_get(f, "name"), 0)),
	           "||") == 0) {
		any = sqlrisk_dynamic_part(b, json_object_get(f, "lexpr"),
		                           depth + 1);
		return sqlrisk_dynamic_part(b, json_object_get(f, "rexpr"),
		                            depth + 1) ||
		       any;
	}
	if (strcmp(type, "FuncCall") == 0) {
		json_t *names = json_object_get(f, "funcname");
		const char *fn = sqlrisk_string(
			json_array_get(names, json_array_size(names) - 1));
		json_t *tmpl;

		args = json_object_get(f, "args");
		if (fn != NULL && strcmp(fn, "concat") == 0) {
			for (i = 0; i < json_array_size(args); i++)
				any = sqlrisk_dynamic_part(
					      b, json_array_get(args, i),
					      depth + 1) ||
				      any;
			return any;
		}
		tmpl = sqlrisk_node(json_array_get(args, 0), "A_Const");
		if (fn != NULL && strcmp(fn, "format") == 0 &&
		    json_object_get(tmpl, "sval") != NULL) {
			const char *p = sqlrisk_str(
				json_object_get(tmpl, "sval"), "sval");
			size_t next = 1;

			for (; *p; p++) {
				size_t argn = 0;

				if (*p != '%') {
					zdmc_buf_append(b, p, 1);
					continue;
				}
				p++;
				if (*p == '%') {
					zdmc_buf_puts(b, "%");
					continue;
				}
				/* %n$, flags, width: kept out of the text */
				while ((*p >= '0' && *p <= '9') || *p == '$' ||
				       *p == '-' || *p == '*') {
					if (*p >= '0' && *p <= '9')
						argn = argn * 10 +
						       (size_t)(*p - '0');
					if (*p == '$')
						next = argn;
					p++;
				}
				if (*p == '\0')
					break;
				{
					json_t *a = sqlrisk_node(
						json_array_get(args, next++),
						"A_Const");
					const char *v =
						a && json_object_get(a, "sval")
							? sqlrisk_str(
								  json_object_get(
									  a,
									  "sval"),
								  "sval")
							: NULL;

					if (*p == 'L')
						zdmc_buf_puts(b, "NULL");
					else if (v == NULL)
						zdmc_buf_puts(
							b, SQLRISK_PLACEHOLDER);
					else if (*p == 'I')
						sqlrisk_put_ident(b, v);
					else
						zdmc_buf_puts(b, v);
				}
			}
			return true;
		}
	}
	zdmc_buf_puts(b, SQLRISK_PLACEHOLDER);
	return false;
}

static const char *
sqlrisk_dynamic_text(zdmc_arena *arena, const char *expr)
{
	PgQueryParseResult result;
	json_t *tree = NULL, *select, *target;
	const char *text = NULL;
	zdmc_buf b;

	result = pg_query_parse(zdmc_arena_printf(arena, "SELECT %s", expr));
	if (result.error != NULL)
		goto cleanup;
	tree = json_loads(result.parse_tree, 0, NULL);
	select = sqlrisk_node(
		json_object_get(
			json_array_get(json_object_get(tree, "stmts"), 0),
			"stmt"),
		"SelectStmt");
	target = sqlrisk_node(
		json_array_get(json_object_get(select, "targetList"), 0),
		"ResTarget");
	if (target == NULL)
		goto cleanup;
	zdmc_buf_init(&b, arena);
	if (sqlrisk_dynamic_part(&b, json_object_get(target, "val"), 0))
		text = zdmc_buf_cstr(&b);

cleanup:
	json_decref(tree);
	pg_query_free_parse_result(result);
	return text;
}

/* A statement of a DO block; quiet ones that only read the catalog are
 * left out (the IF conditions zdmc writes). */
static void
sqlrisk_nested(sqlrisk_run *r, const char *sql, unsigned flags, bool quiet)
{
	unsigned saved = r->inherit;
	size_t before = r->nstmts, i, kept;
	const char *error = NULL;

	r->inherit |= flags;
	r->depth++;
	if (sqlrisk_sql(r, sql, &error) != 0)
		sqlrisk_unknown(r, "a statement that did not parse",
		                zdmc_arena_printf(r->arena, "%s", error));
	r->depth--;
	r->inherit = saved;
	if (!quiet)
		return;
	for (i = kept = before; i < r->nstmts; i++)
		if (!(r->stmts[i].flags & ZDMC_RISK_CATALOG))
			r->stmts[kept++] = r->stmts[i];
	r->nstmts = kept;
}

static void
sqlrisk_dynamic(sqlrisk_run *r, const char *expr)
{
	const char *text = sqlrisk_dynamic_text(r->arena, expr);
	unsigned saved = r->inherit;
	const char *error = NULL;

	r->inherit |= ZDMC_RISK_DYNAMIC;
	r->depth++;
	if (text == NULL || sqlrisk_sql(r, text, &error) != 0)
		sqlrisk_unknown(r, "EXECUTE of SQL built at run time",
		                "its text is computed when it runs: read the "
		                "SQL");
	r->depth--;
	r->inherit = saved;
}

static const char *
sqlrisk_expr_query(json_t *holder, const char *key)
{
	return sqlrisk_str(
		sqlrisk_node(json_object_get(holder, key), "PLpgSQL_expr"),
		"query");
}

static void
sqlrisk_plpgsql_walk(sqlrisk_run *r, json_t *v)
{
	static const char *const loops[] = {
		"PLpgSQL_stmt_loop",    "PLpgSQL_stmt_while",
		"PLpgSQL_stmt_fori",    "PLpgSQL_stmt_fors",
		"PLpgSQL_stmt_forc",    "PLpgSQL_stmt_foreach_a",
		"PLpgSQL_stmt_dynfors",
	};
	void *it;
	size_t i;

	for (i = 0; i < json_array_size(v); i++)
		sqlrisk_plpgsql_walk(r, json_array_get(v, i));
	for (it = json_object_iter(v); it != NULL;
	     it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		json_t *member = json_object_iter_value(it);
		unsigned saved = r->inherit;
		const char *q;

		if (strcmp(key, "datums") == 0)
			continue;
		if (strcmp(key, "PLpgSQL_stmt_execsql") == 0) {
			q = sqlrisk_expr_query(member, "sqlstmt");
			if (q != NULL)
				sqlrisk_nested(r, q, 0, true);
			continue;
		}
		if (strcmp(key, "PLpgSQL_stmt_dynexecute") == 0) {
			q = sqlrisk_expr_query(member, "query");
			if (q != NULL)
				sqlrisk_dynamic(r, q);
			continue;
		}
		if (strcmp(key, "PLpgSQL_stmt_perform") == 0) {
			q = sqlrisk_expr_query(member, "expr");
			if (q != NULL)
				sqlrisk_nested(r, q, 0, true);
			continue;
		}
		if (strcmp(key, "cond") == 0) {
			q = sqlrisk_str(sqlrisk_node(member, "PLpgSQL_expr"),
			                "query");
			if (q != NULL)
				sqlrisk_nested(r,
				               zdmc_arena_printf(r->arena,
				                                 "SELECT %s",
				                                 q),
				               0, true);
			continue;
		}
		if (strcmp(key, "PLpgSQL_stmt_if") == 0 ||
		    strcmp(key, "PLpgSQL_stmt_case") == 0)
			r->inherit |= ZDMC_RISK_CONDITIONAL;
		for (i = 0; i < sizeof(loops) / sizeof(*loops); i++)
			if (strcmp(key, loops[i]) == 0)
				r->inherit |= ZDMC_RISK_LOOP;
		sqlrisk_plpgsql_walk(r, member);
		r->inherit = saved;
	}
}

static void
sqlrisk_do(sqlrisk_run *r, json_t *f)
{
	json_t *args = json_object_get(f, "args");
	const char *body = NULL, *lang = "plpgsql";
	PgQueryPlpgsqlParseResult result;
	json_t *funcs = NULL;
	zdmc_buf wrap, tag;
	size_t i, before = r->nstmts;
	unsigned saved;
	zdmc_stmt_risk *s;

	for (i = 0; i < json_array_size(args); i++) {
		json_t *d = sqlrisk_node(json_array_get(args, i), "DefElem");
		const char *v = sqlrisk_string(json_object_get(d, "arg"));

		if (sqlrisk_is(d, "defname", "as"))
			body = v;
		else if (sqlrisk_is(d, "defname", "language") && v != NULL)
			lang = v;
	}
	if (body == NULL || strcmp(lang, "plpgsql") != 0 ||
	    r->depth >= SQLRISK_MAX_DEPTH) {
		sqlrisk_unknown(r, "DO block",
		                "a DO block zdmc cannot read: read the SQL");
		return;
	}
	/* libpg_query parses PL/pgSQL from a CREATE FUNCTION: wrap the body
	 * in one, with a dollar quote the body does not contain. */
	zdmc_buf_init(&tag, r->arena);
	zdmc_buf_puts(&tag, "$zdm_explain$");
	while (strstr(body, zdmc_buf_cstr(&tag)) != NULL) {
		tag.len--;
		zdmc_buf_puts(&tag, "x$");
	}
	zdmc_buf_init(&wrap, r->arena);
	zdmc_buf_printf(&wrap,
	                "CREATE FUNCTION zdm_explain() RETURNS void "
	                "LANGUAGE plpgsql AS %s%s%s",
	                zdmc_buf_cstr(&tag), body, zdmc_buf_cstr(&tag));
	result = pg_query_parse_plpgsql(zdmc_buf_cstr(&wrap));
	if (result.error != NULL) {
		sqlrisk_unknown(r, "DO block",
		                zdmc_arena_printf(r->arena,
		                                  "its body does not parse: %s",
		                                  result.error->message));
		goto cleanup;
	}
	funcs = json_loads(result.plpgsql_funcs, 0, NULL);
	if (funcs == NULL) {
		sqlrisk_unknown(r, "DO block", "its body could not be read");
		goto cleanup;
	}
	saved = r->inherit;
	r->inherit |= ZDMC_RISK_IN_DO;
	sqlrisk_plpgsql_walk(r, funcs);
	r->inherit = saved;
	if (r->nstmts == before) {
		s = sqlrisk_push(r, "DO block");
		s->flags |= ZDMC_RISK_IN_DO;
		s->note = "runs no statement that takes a lock on a table";
		sqlrisk_finish(s);
	}

cleanup:
	json_decref(funcs);
	pg_query_free_plpgsql_parse_result(result);
}

/* ---- dispatch ------------------------------------------------------------ */

static void
sqlrisk_simple(sqlrisk_run *r, const char *what, const char *target,
               zdmc_lock lock, zdmc_hold hold, unsigned flags, const char *note)
{
	zdmc_stmt_risk *s = sqlrisk_push(r, what);

	s->target = target;
	s->target_kind = target != NULL ? ZDMC_TARGET_TABLE : ZDMC_TARGET_NONE;
	s->lock = lock;
	s->hold = hold;
	s->flags |= flags;
	s->note = note;
	sqlrisk_finish(s);
}

static bool
sqlrisk_has_option(json_t *list, const char *name)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++)
		if (sqlrisk_is(sqlrisk_node(json_array_get(list, i), "DefElem"),
		               "defname", name))
			return true;
	return false;
}

/* "CreateExtensionStmt" -> "CREATE EXTENSION": a statement's name from
 * its node type, for the ones without a wording of their own. */
static const char *
sqlrisk_stmt_name(zdmc_arena *arena, const char *type)
{
	size_t len = strlen(type), i;
	zdmc_buf b;

	if (strcmp(type, "VariableSetStmt") == 0)
		return "SET";
	if (len > 4 && strcmp(type + len - 4, "Stmt") == 0)
		len -= 4;
	zdmc_buf_init(&b, arena);
	for (i = 0; i < len; i++) {
		char c = type[i];

		if (i > 0 && c >= 'A' && c <= 'Z')
			zdmc_buf_puts(&b, " ");
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		zdmc_buf_append(&b, &c, 1);
	}
	return zdmc_buf_cstr(&b);
}

static void
sqlrisk_stmt(sqlrisk_run *r, json_t *stmt)
{
	const char *type = sqlrisk_node_type(stmt);
	json_t *f = json_object_iter_value(json_object_iter(stmt));
	const char *rel =
		sqlrisk_relname(r->arena, json_object_get(f, "relation"));

	if (strcmp(type, "AlterTableStmt") == 0) {
		sqlrisk_alter_table(r, f);
	} else if (strcmp(type, "RenameStmt") == 0) {
		sqlrisk_rename(r, f);
	} else if (strcmp(type, "IndexStmt") == 0) {
		sqlrisk_create_index(r, f);
	} else if (strcmp(type, "DropStmt") == 0) {
		sqlrisk_drop(r, f);
	} else if (strcmp(type, "CreateTrigStmt") == 0) {
		sqlrisk_create_trigger(r, f);
	} else if (strcmp(type, "CreateFunctionStmt") == 0) {
		sqlrisk_create_function(r, f);
	} else if (strcmp(type, "ViewStmt") == 0) {
		sqlrisk_create_view(r, f);
	} else if (strcmp(type, "CreateSchemaStmt") == 0) {
		sqlrisk_simple(
			r,
			zdmc_arena_printf(r->arena, "CREATE SCHEMA %s",
		                          sqlrisk_str(f, "schemaname")
		                                  ? sqlrisk_str(f, "schemaname")
		                                  : "?"),
			NULL, ZDMC_LOCK_NONE, ZDMC_HOLD_NONE, 0, NULL);
	} else if (strcmp(type, "CreateStmt") == 0) {
		sqlrisk_simple(r,
		               zdmc_arena_printf(r->arena, "CREATE TABLE %s",
		                                 rel ? rel : "?"),
		               NULL, ZDMC_LOCK_NONE, ZDMC_HOLD_NONE, 0,
		               "a new table: nothing else is locked");
	} else if (strcmp(type, "SelectStmt") == 0) {
		sqlrisk_select(r, f);
	} else if (strcmp(type, "UpdateStmt") == 0) {
		sqlrisk_dml(r, f, "UPDATE");
	} else if (strcmp(type, "DeleteStmt") == 0) {
		sqlrisk_dml(r, f, "DELETE");
	} else if (strcmp(type, "InsertStmt") == 0) {
		sqlrisk_dml(r, f, "INSERT");
	} else if (strcmp(type, "DoStmt") == 0) {
		sqlrisk_do(r, f);
	} else if (strcmp(type, "LockStmt") == 0) {
		json_t *rels = json_object_get(f, "relations");
		zdmc_buf names;
		bool user = false;
		long long mode = json_integer_value(json_object_get(f, "mode"));

		zdmc_buf_init(&names, r->arena);
		sqlrisk_collect_tables(r->arena, rels, &names, &user);
		sqlrisk_simple(r, "LOCK TABLE", zdmc_buf_cstr(&names),
		               mode >= 1 && mode <= 8
		                       ? (zdmc_lock)mode
		                       : ZDMC_LOCK_ACCESS_EXCLUSIVE,
		               ZDMC_HOLD_TXN, 0,
		               "held until the step's transaction ends");
	} else if (strcmp(type, "TruncateStmt") == 0) {
		zdmc_buf names;
		bool user = false;

		zdmc_buf_init(&names, r->arena);
		sqlrisk_collect_tables(r->arena,
		                       json_object_get(f, "relations"), &names,
		                       &user);
		sqlrisk_simple(r, "TRUNCATE", zdmc_buf_cstr(&names),
		               ZDMC_LOCK_ACCESS_EXCLUSIVE, ZDMC_HOLD_BRIEF,
		               ZDMC_RISK_DATA_LOSS | ZDMC_RISK_DANGER,
		               "removes every row");
	} else if (strcmp(type, "VacuumStmt") == 0) {
		zdmc_buf names;
		bool user = false, vacuum = sqlrisk_true(f, "is_vacuumcmd");
		bool full = sqlrisk_has_option(json_object_get(f, "options"),
		                               "full");

		zdmc_buf_init(&names, r->arena);
		sqlrisk_collect_tables(r->arena, json_object_get(f, "rels"),
		                       &names, &user);
		sqlrisk_simple(
			r,
			full     ? "VACUUM FULL"
			: vacuum ? "VACUUM"
				 : "ANALYZE",
			user ? zdmc_buf_cstr(&names) : NULL,
			full ? ZDMC_LOCK_ACCESS_EXCLUSIVE
			     : ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE,
			full ? ZDMC_HOLD_REWRITE : ZDMC_HOLD_SCAN,
			vacuum ? ZDMC_RISK_NO_TXN : 0,
			vacuum ? "VACUUM cannot run inside a transaction block, "
				 "and zdm runs every step in one: this step "
				 "fails"
			       : NULL);
	} else if (strcmp(type, "ClusterStmt") == 0) {
		sqlrisk_simple(r, "CLUSTER", rel, ZDMC_LOCK_ACCESS_EXCLUSIVE,
		               ZDMC_HOLD_REWRITE, 0, NULL);
	} else if (strcmp(type, "ReindexStmt") == 0) {
		bool conc = sqlrisk_has_option(json_object_get(f, "params"),
		                               "concurrently");

		sqlrisk_simple(r, conc ? "REINDEX CONCURRENTLY" : "REINDEX",
		               rel,
		               conc ? ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE
		                    : ZDMC_LOCK_SHARE,
		               ZDMC_HOLD_SCAN, conc ? ZDMC_RISK_NO_TXN : 0,
		               conc ? "CONCURRENTLY cannot run inside a "
		                      "transaction block, and zdm runs every "
		                      "step in one: this step fails"
		                    : NULL);
	} else if (strcmp(type, "RefreshMatViewStmt") == 0) {
		bool conc = sqlrisk_true(f, "concurrent");

		sqlrisk_simple(r, "REFRESH MATERIALIZED VIEW", rel,
		               conc ? ZDMC_LOCK_EXCLUSIVE
		                    : ZDMC_LOCK_ACCESS_EXCLUSIVE,
		               ZDMC_HOLD_REWRITE, 0, NULL);
	} else if (strcmp(type, "CreatePublicationStmt") == 0 ||
	           strcmp(type, "AlterPublicationStmt") == 0) {
		zdmc_buf tables;
		bool user = false;

		zdmc_buf_init(&tables, r->arena);
		sqlrisk_collect_tables(r->arena, f, &tables, &user);
		sqlrisk_simple(r, sqlrisk_stmt_name(r->arena, type),
		               user ? zdmc_buf_cstr(&tables) : NULL,
		               user ? ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE
		                    : ZDMC_LOCK_NONE,
		               user ? ZDMC_HOLD_BRIEF : ZDMC_HOLD_NONE, 0,
		               "catalog only: from its commit on, the tables' "
		               "changes go to the logical replication slots "
		               "that read this publication");
	} else if (strcmp(type, "TransactionStmt") == 0) {
		sqlrisk_simple(
			r, "a transaction command", NULL, ZDMC_LOCK_NONE,
			ZDMC_HOLD_NONE, ZDMC_RISK_DANGER,
			"zdm runs each step in its own transaction; "
			"BEGIN, COMMIT or ROLLBACK in a step breaks that");
	} else if (strcmp(type, "CreateSeqStmt") == 0 ||
	           strcmp(type, "AlterSeqStmt") == 0 ||
	           strcmp(type, "CommentStmt") == 0 ||
	           strcmp(type, "GrantStmt") == 0 ||
	           strcmp(type, "VariableSetStmt") == 0 ||
	           strcmp(type, "CompositeTypeStmt") == 0 ||
	           strcmp(type, "CreateEnumStmt") == 0 ||
	           strcmp(type, "CreateDomainStmt") == 0) {
		sqlrisk_simple(r, sqlrisk_stmt_name(r->arena, type), NULL,
		               ZDMC_LOCK_NONE, ZDMC_HOLD_NONE, 0, NULL);
	} else {
		sqlrisk_unknown(r, sqlrisk_stmt_name(r->arena, type),
		                "a statement zdmc does not classify: read the "
		                "SQL");
	}
}

/* Classify every statement of sql into r.  -1 (nothing added) with *error
 * set when it does not parse. */
static int
sqlrisk_sql(sqlrisk_run *r, const char *sql, const char **error)
{
	PgQueryParseResult result;
	json_t *tree = NULL, *stmts;
	int rc = -1;
	size_t i;

	result = pg_query_parse(sql);
	if (result.error != NULL) {
		*error = zdmc_arena_strdup(r->arena, result.error->message);
		goto cleanup;
	}
	tree = json_loads(result.parse_tree, 0, NULL);
	if (tree == NULL) {
		*error = "the parse tree could not be read";
		goto cleanup;
	}
	stmts = json_object_get(tree, "stmts");
	for (i = 0; i < json_array_size(stmts); i++)
		sqlrisk_stmt(r,
		             json_object_get(json_array_get(stmts, i), "stmt"));
	rc = 0;

cleanup:
	json_decref(tree);
	pg_query_free_parse_result(result);
	return rc;
}

int
zdmc_sqlrisk_classify(zdmc_sqlrisk_ctx *ctx, const char *sql, zdmc_sqlrisk *out)
{
	sqlrisk_run r;
	const char *error = NULL;
	int rc;

	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.arena = ctx->arena;
	memset(out, 0, sizeof(*out));
	rc = sqlrisk_sql(&r, sql, &error);
	if (rc != 0) {
		out->error = error;
		sqlrisk_unknown(&r, "SQL that does not parse",
		                zdmc_arena_printf(
					r.arena, "PostgreSQL's parser says: %s",
					error));
	}
	out->stmts = r.stmts;
	out->nstmts = r.nstmts;
	return rc;
}
