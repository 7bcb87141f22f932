/*
 * check.h -- what an operation's check may use: the shared naming rules and
 * the facts it declares about itself.
 *
 * check.c drives the checking of a migration: for every action it adds a
 * change to the action's table and calls the op's check (compiler/ops/),
 * which judges its own node with the helpers below and declares its facts
 * (reads, creates, replaces, renames, reverse).  The rules that span
 * changes -- a column changed twice, a name the new shape would hold twice
 * or that clashes with a changed column, what using and reverse using may
 * read, the cdc key -- run in check.c afterwards, on those facts only, so a
 * new op gets them by declaring its facts.  An op's check reports at the
 * token it is about and carries on; it never looks at another change.
 */
#ifndef ZDMC_CHECK_H
#define ZDMC_CHECK_H

#include "model.h"

typedef struct zdmc_check_ctx zdmc_check_ctx;

zdmc_arena *zdmc_check_arena(const zdmc_check_ctx *ck);
zdmc_diag *zdmc_check_diag(const zdmc_check_ctx *ck);
/* The table of the change being checked (as far as it is known yet). */
const zdmc_table *zdmc_check_table(const zdmc_check_ctx *ck);
/* Whether the migration's sync option is cdc (options are resolved before
 * any op's check runs), for an op that refuses one sync mode. */
bool zdmc_check_sync_is_cdc(const zdmc_check_ctx *ck);

/* Names: longer than 63 bytes; starting with "zdm" (reported and true). */
void zdmc_check_ident_length(zdmc_check_ctx *ck, const zdmc_name *name);
bool zdmc_check_reserved(zdmc_check_ctx *ck, const zdmc_name *name);
/* An existing column this change changes (replaces or renames): one
 * clause per column, and not a name of zdm's. */
void zdmc_check_changed_column(zdmc_check_ctx *ck, const zdmc_change *change,
                               const zdmc_name *column);
/* A name the new shape gains through this change: once per table. */
void zdmc_check_new_name(zdmc_check_ctx *ck, const zdmc_change *change,
                         const zdmc_name *name);
/* A column added while in flight as zdm_new_<name>: not reserved, and
 * short enough with the prefix. */
void zdmc_check_added_column(zdmc_check_ctx *ck, const zdmc_name *name);
/* An expression (libpg_query); what names the clause.  NULL on error. */
zdmc_sqlexpr *zdmc_check_expr(zdmc_check_ctx *ck, const zdmc_expr *expr,
                              const char *what);
/* A column type; 0 or -1. */
int zdmc_check_type(zdmc_check_ctx *ck, const zdmc_type *type);
/*
 * The reverse clause of a change that replaces column: records the reverse
 * fact (reverse using) or irreversible, or reports that neither was written
 * ("<what> "<column>" has no reverse using ...").
 */
void zdmc_check_reverse(zdmc_check_ctx *ck, zdmc_change *change,
                        const zdmc_reverse *reverse, const zdmc_name *column,
                        const char *what);

/*
 * Constraints.  A constraint name (length, not reserved): once per table
 * across the migration's actions.  A column a constraint names, and the
 * columns an expression of a constraint reads (as what: "a check
 * constraint"): the table's own, and none that another action changes.  A
 * primary key: one per table.
 */
void zdmc_check_constraint_name(zdmc_check_ctx *ck, const zdmc_change *change,
                                const zdmc_name *name);
void zdmc_check_kept_column(zdmc_check_ctx *ck, const zdmc_change *change,
                            const zdmc_name *column);
void zdmc_check_kept_expr(zdmc_check_ctx *ck, const zdmc_change *change,
                          const zdmc_sqlexpr *expr, const char *what);
void zdmc_check_primary_key(zdmc_check_ctx *ck, size_t offset);
/* The columns an expression of a constraint reads, as zdmc_check_kept_expr
 * judges them, for a constraint whose columns its own change replaces (so
 * not kept): true when all are the row's own. */
bool zdmc_check_row_expr(zdmc_check_ctx *ck, const zdmc_sqlexpr *expr,
                         const char *what);

/* Facts, in the order the plan lists them. */
void zdmc_change_add_read(zdmc_check_ctx *ck, zdmc_change *change,
                          const char *column);
/* A created column: physical name zdm_new_<name>; fill in the rest. */
zdmc_newcol *zdmc_change_add_create(zdmc_check_ctx *ck, zdmc_change *change,
                                    const char *name, const char *type);
void zdmc_change_add_replace(zdmc_check_ctx *ck, zdmc_change *change,
                             const char *column);
void zdmc_change_add_rename(zdmc_check_ctx *ck, zdmc_change *change,
                            const char *column, const char *to);
zdmc_oldcol *zdmc_change_add_reverse(zdmc_check_ctx *ck, zdmc_change *change,
                                     const char *column, zdmc_sqlexpr *reverse);
void zdmc_change_add_drop(zdmc_check_ctx *ck, zdmc_change *change,
                          const char *column);
void zdmc_change_add_not_null_set(zdmc_check_ctx *ck, zdmc_change *change,
                                  const char *column);
void zdmc_change_add_not_null_dropped(zdmc_check_ctx *ck, zdmc_change *change,
                                      const char *column);
/* The table's new name: once per table (a second is reported). */
/* drop table: the change drops its table, and must be its only change
 * (check.c's rule, once every change is known). */
void zdmc_change_set_table_drop(zdmc_check_ctx *ck, zdmc_change *change);
void zdmc_change_set_table_rename(zdmc_check_ctx *ck, zdmc_change *change,
                                  const zdmc_name *to);
/* A column's new default; value NULL: the default is dropped. */
void zdmc_change_add_default(zdmc_check_ctx *ck, zdmc_change *change,
                             const char *column, zdmc_sqlexpr *value);

#endif
