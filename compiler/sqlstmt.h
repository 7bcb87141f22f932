/*
 * sqlstmt.h -- sql (STATEMENTS) [reverse (STATEMENTS)] [at contract]: the
 * escape hatch, plain SQL for what no operation covers.
 *
 * A statement on no table: check.c hands its action here instead of to an
 * op, and lower.c places its step among the tables' in the order written.
 */
#ifndef ZDMC_SQLSTMT_H
#define ZDMC_SQLSTMT_H

#include "lower.h"
#include "model.h"

/*
 * Judge action (a ZDMC_ACTION_SQL) and, when it holds, append it to
 * *sqls: the bodies parse as PostgreSQL statements a step can hold
 * (sqlexpr.h), "at contract" is spelled so, and one without reverse --
 * which rollback cannot undo -- stands behind an approval gate of its
 * phase.
 */
void zdmc_sqlstmt_check(zdmc_arena *arena, zdmc_diag *diag,
                        const zdmc_options *options, const zdmc_action *action,
                        zdmc_sqlstmt **sqls, size_t *nsqls);

/* Its step, in the current phase: a transaction of its own; without
 * reverse, a point of no return. */
void zdmc_sqlstmt_lower(zdmc_lower_ctx *l, const zdmc_sqlstmt *s);

#endif
