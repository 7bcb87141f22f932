/*
 * model.h -- a checked migration, ready to lower into a plan.
 *
 * check.c builds it from the AST only when the whole source is valid;
 * lower.c reads it and never reports errors.  Changes are grouped by table
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

typedef struct zdmc_newcol {
	const char *name;     /* name in the new shape */
	const char *physical; /* zdm_new_<name> until contract */
	const char *type;
	bool not_null;         /* declared "not null" on a split column */
	bool carry_not_null;   /* type change: keep the old column's NOT NULL */
	zdmc_sqlexpr *forward; /* in old-shape names */
} zdmc_newcol;

typedef struct zdmc_change {
	zdmc_action_kind kind;
	const zdmc_action *action;
	const char *column;    /* the existing (old-shape) column */
	const char *rename_to; /* RENAME */
	zdmc_newcol *cols;     /* SPLIT: n, TYPE: 1, RENAME: 0 */
	size_t ncols;
	zdmc_sqlexpr *reverse; /* in new-shape names; NULL if irreversible */
	bool irreversible;
} zdmc_change;

typedef struct zdmc_table {
	const char *schema; /* as PostgreSQL stores it */
	const char *name;
	const char *qname; /* quoted, qualified */
	zdmc_change *changes;
	size_t nchanges;
	bool needs_sync; /* has a split or type change (not only renames) */
	size_t offset;   /* first statement about it */
} zdmc_table;

typedef struct zdmc_model {
	const char *migration;
	size_t migration_offset;
	zdmc_options options;
	const char *version_schema; /* <schema>_<migration> */
	zdmc_table *tables;
	size_t ntables;
} zdmc_model;

/* Check mig; on success (no errors in diag) fill *out. Returns 0 or -1. */
int zdmc_check(zdmc_arena *arena, zdmc_diag *diag, const zdmc_migration *mig,
               zdmc_model *out);

/* Physical column behind a new-shape name of table (the name itself when
 * the migration does not touch it). */
const char *zdmc_model_new_physical(const zdmc_table *table, const char *name);

/* Lower a checked model into a plan (never fails). */
struct zdmc_plan;
struct zdmc_source;
void zdmc_lower(zdmc_arena *arena, const zdmc_model *model,
                const zdmc_source *src, struct zdmc_plan *plan);

#endif
