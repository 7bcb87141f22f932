/*
 * model.h -- a checked migration, ready to lower into a plan.
 *
 * check.c builds it from the AST only when the whole source is valid;
 * lower.c reads it and never reports errors.  A change is its op plus the
 * facts the op's check declared; nothing downstream asks which op it is.  Changes are grouped by table
 * (users and public.users are one table), in source order.
 *
 * Physical names while a migration is in flight: a new column is added as
 * zdm_new_<name> and renamed into place at contract; old columns keep their
 * names until contract.  So the old shape's names are the physical names,
 * and the new shape maps to physical names through zdmc_model_new_physical.
 */
#ifndef ZDMC_MODEL_H
#define ZDMC_MODEL_H

#include <stdbool.h>

#include "ast.h"
#include "options.h"
#include "sqlexpr.h"

#define ZDMC_NEW_COLUMN_PREFIX "zdm_new_"

struct zdmc_op;

/* A column a change creates: added as zdm_new_<name> while in flight. */
typedef struct zdmc_newcol {
	const char *name;      /* name in the new shape */
	const char *physical;  /* zdm_new_<name> until contract */
	const char *type;      /* NULL: the type of the existing column of
	                        * the same name, which the change replaces
	                        * (read from the catalog when the plan runs) */
	bool not_null;         /* declared "not null" on a split column */
	bool carry_not_null;   /* type change: keep the old column's NOT NULL */
	zdmc_sqlexpr *forward; /* in old-shape names */
	bool forward_implied;  /* no using written (a plain cast): the plan's
	                        * creates say using: null */
	/* the default new rows get (add column), NULL: none.  A change that
	 * registered with the column replacement adds the column without it
	 * (the view gives it to new-version inserts until contract sets it);
	 * one that did not adds the column with it, and with NOT NULL when
	 * not_null: a constant PostgreSQL keeps in the catalog. */
	zdmc_sqlexpr *default_expr;
} zdmc_newcol;

/* An existing column that keeps its data under a new name. */
typedef struct zdmc_colrename {
	const char *column;
	const char *to;
} zdmc_colrename;

/* An old-shape column computed from the new shape (reverse using). */
typedef struct zdmc_oldcol {
	const char *column;
	zdmc_sqlexpr *reverse; /* in new-shape names */
	bool identity;         /* not written: the new column as it is, so
	                        * there is no round trip to check */
} zdmc_oldcol;

/* A column's new default (defaults): NULL value when the default is
 * dropped. */
typedef struct zdmc_coldefault {
	const char *column;
	zdmc_sqlexpr *value; /* names no column */
} zdmc_coldefault;

/*
 * One operation of the migration, checked: its op (compiler/ops/), its node
 * and the facts its check declared (the vocabulary of plan format 3's
 * changes, docs in /work/notes/DESIGN.md).  Everything after check works
 * from these facts or through the op: the shared rules of check.c, the
 * column replacement (replace.c), the plan's changes.
 */
typedef struct zdmc_change {
	const struct zdmc_op *op;
	const zdmc_action *action;
	size_t offset;      /* of the action */
	const char **reads; /* existing columns it needs */
	size_t nreads;
	zdmc_newcol *cols; /* creates */
	size_t ncols;
	const char **replaces; /* existing columns dropped at contract */
	size_t nreplaces;
	zdmc_colrename *renames;
	size_t nrenames;
	zdmc_oldcol *reverse; /* empty when irreversible */
	size_t nreverse;
	/* existing columns dropped at contract with what depends on them
	 * alone (drop column); unlike replaces, nothing is carried over */
	const char **drops;
	size_t ndrops;
	/* existing columns that become NOT NULL, or stop being NOT NULL, at
	 * contract (preflight: they are nullable, NOT NULL, now) */
	const char **not_null_set;
	size_t nnot_null_set;
	const char **not_null_dropped;
	size_t nnot_null_dropped;
	bool irreversible;
	size_t irreversible_offset; /* of the clause, for the approval rule */
	/* the table's new name (same schema), or NULL: the new version sees
	 * it under this name from expand on, the table takes it at contract */
	const char *table_renamed_to;
	size_t table_renamed_offset; /* of the new name in the source */
	/* drop table: the new version no longer has the table, which goes at
	 * contract (the table's only change) */
	bool table_dropped;
	zdmc_coldefault *defaults; /* set or dropped column defaults */
	size_t ndefaults;
	/* the shared column replacement (replace.h), NULL if the change does
	 * not use it */
	const struct zdmc_replace *replace;
	/* what the op's check prepared for its own lowering and facts (a
	 * parsed expression, a qualified name), NULL if nothing; only the
	 * op that put it there reads it */
	const void *op_data;
} zdmc_change;

typedef struct zdmc_table {
	const char *schema; /* as PostgreSQL stores it */
	const char *name;
	const char *qname; /* quoted, qualified */
	zdmc_change *changes;
	size_t nchanges;
	bool needs_sync; /* a change uses the column replacement */
	/* with sync = cdc, zdm sync carries the table's changes: needs_sync, or
	 * a change whose op has a cdc_sync */
	bool cdc_carried;
	size_t offset; /* first statement about it */
	/* the name the new version knows it by: its view's in the version
	 * schema, and the table's own after contract (a change's
	 * table_renamed_to, else name) */
	const char *new_name;
	const char *version_schema; /* <schema>_<migration>: its view's */
} zdmc_table;

typedef struct zdmc_model {
	const char *migration;
	size_t migration_offset;
	zdmc_options options;
	const char *version_schema; /* the first table's <schema>_<migration> */
	/* the schemas the tables are in, in order of first appearance, and
	 * their version schemas (one each); nschemas is 1 for most
	 * migrations */
	const char **schemas;
	const char **version_schemas;
	size_t nschemas;
	zdmc_table *tables;
	size_t ntables;
	/* sql (...) statements, on no table, in source order */
	struct zdmc_sqlstmt *sqls;
	size_t nsqls;
} zdmc_model;

/*
 * A statement on no table (sqlstmt.h): sql (...), drop index, and the
 * enum type statements.  One step each, placed among the tables' in
 * source order; its facts are the plan's statements[] entry.
 */
typedef struct zdmc_sqlstmt {
	const char *statement; /* the plan's statement: sql, drop_index, ... */
	const char *summary;   /* one sentence for people */
	const char *description; /* its step's */
	const char *sql;
	const char *reverse; /* NULL: none, a point of no return */
	bool at_contract;
	bool autocommit; /* outside a transaction block (DROP INDEX
	                  * CONCURRENTLY) */
	size_t offset;
	/* facts, each NULL when it does not apply; names quoted, qualified */
	const char *index_dropped;    /* must exist, back no constraint */
	const char *type_created;     /* must be free */
	const char *enum_type;        /* must be an enum, or created above */
	const char *label_added;      /* enum_type must not have it yet */
	const char *label_neighbour;  /* before/after it: must be there */
	const char *label_renamed;    /* enum_type must have it ... */
	const char *label_renamed_to; /* ... and not this one */
} zdmc_sqlstmt;

/* Check mig; on success (no errors in diag) fill *out. Returns 0 or -1. */
int zdmc_check(zdmc_arena *arena, zdmc_diag *diag, const zdmc_migration *mig,
               zdmc_model *out);

/* Physical column behind a new-shape name of table (the name itself when
 * the migration does not touch it). */
const char *zdmc_model_new_physical(const zdmc_table *table, const char *name);

/* Does the change list name among its replaces / drops / renames? */
bool zdmc_change_replaces(const zdmc_change *change, const char *name);
bool zdmc_change_drops(const zdmc_change *change, const char *name);
/* A column the change changes in place (its NOT NULL), which both shapes
 * have under its name with the same values: not replaced, dropped or
 * renamed. */
bool zdmc_change_keeps(const zdmc_change *change, const char *name);
bool zdmc_change_drops_not_null(const zdmc_change *change, const char *name);
const zdmc_colrename *zdmc_change_renames(const zdmc_change *change,
                                          const char *name);
/* Its created column called name, or NULL. */
const zdmc_newcol *zdmc_change_creates(const zdmc_change *change,
                                       const char *name);

/* Lower a checked model into a plan (never fails). */
struct zdmc_plan;
struct zdmc_source;
void zdmc_lower(zdmc_arena *arena, const zdmc_model *model,
                const zdmc_source *src, struct zdmc_plan *plan);

#endif
