/*
 * sqlstmt.h -- the statements on no table: sql (STATEMENTS), drop index,
 * and the enum type statements (create type ... as enum, alter type ...
 * add value / rename value).
 *
 * check.c hands such a statement's action here instead of to an op; its
 * check, found in a small table by the action's tag, judges it and
 * describes it as a zdmc_sqlstmt: one step (its SQL, its undo, its phase)
 * and the facts preflight checks before anything runs (the plan's
 * statements[]).  lower.c places the steps among the tables' in the order
 * written.  Adding such a statement: a tag and node in ast.h, a grammar
 * production, its check (one file), one line in sqlstmt.c's table.
 */
#ifndef ZDMC_SQLSTMT_H
#define ZDMC_SQLSTMT_H

#include "check.h"
#include "lower.h"
#include "model.h"

/*
 * A statement's check: judge action, reporting at the token at fault and
 * carrying on; when it holds, fill out (which arrives zeroed, with offset
 * set) and return 0; else return -1.
 */
typedef int (*zdmc_sqlstmt_check_fn)(zdmc_check_ctx *ck,
                                     const zdmc_options *options,
                                     const zdmc_action *action,
                                     zdmc_sqlstmt *out);

int zdmc_sql_check(zdmc_check_ctx *ck, const zdmc_options *options,
                   const zdmc_action *action, zdmc_sqlstmt *out);
int zdmc_drop_index_check(zdmc_check_ctx *ck, const zdmc_options *options,
                          const zdmc_action *action, zdmc_sqlstmt *out);
int zdmc_create_type_check(zdmc_check_ctx *ck, const zdmc_options *options,
                           const zdmc_action *action, zdmc_sqlstmt *out);
int zdmc_add_enum_value_check(zdmc_check_ctx *ck, const zdmc_options *options,
                              const zdmc_action *action, zdmc_sqlstmt *out);
int zdmc_rename_enum_value_check(zdmc_check_ctx *ck,
                                 const zdmc_options *options,
                                 const zdmc_action *action, zdmc_sqlstmt *out);

/* Is action a statement on no table? */
bool zdmc_sqlstmt_is(const zdmc_action *action);

/* Judge action (a statement on no table) and, when it holds, append its
 * description to *sqls. */
void zdmc_sqlstmt_check(zdmc_check_ctx *ck, const zdmc_options *options,
                        const zdmc_action *action, zdmc_sqlstmt **sqls,
                        size_t *nsqls);

/* [schema.]name as the plan writes it: quoted, qualified, "public" when
 * no schema is written (as for a table); the names' lengths and zdm's
 * reserved prefix are judged on the way. */
const char *zdmc_sqlstmt_object(zdmc_check_ctx *ck, const zdmc_name *schema,
                                const zdmc_name *name);

/* Its step, in the current phase: a transaction of its own, or outside
 * any (autocommit); without reverse, a point of no return. */
void zdmc_sqlstmt_lower(zdmc_lower_ctx *l, const zdmc_sqlstmt *s);

#endif
