/*
 * lower.h -- what the phase driver (lower.c) offers the code that adds
 * steps to a plan: the ops' hooks (ops/) and the column replacement
 * (replace.c).
 *
 * The driver owns the phases, their order, the step ids, the transaction
 * labels, the gates and the cdc source's steps; the others only append
 * steps to the phase the driver is in, through these functions, and never
 * report errors (everything was checked).  zdmc_lower_ctx is the driver's
 * context: read its fields, change them only through these functions.
 */
#ifndef ZDMC_LOWER_H
#define ZDMC_LOWER_H

#include <stdbool.h>

#include "model.h"
#include "plan.h"
#include "source.h"

typedef struct zdmc_lower_ctx {
	zdmc_arena *arena;
	const zdmc_model *model;
	const zdmc_source *src;
	zdmc_plan *plan;
	zdmc_plan_phase *phase;
	zdmc_plan_step **tail;
	int nsteps;           /* in the current phase */
	const char *tx_label; /* NULL: each step is its own transaction */
} zdmc_lower_ctx;

/* name, quoted as PostgreSQL needs it. */
const char *zdmc_lower_quote(zdmc_lower_ctx *l, const char *name);
/* The new version's view of table, quoted and qualified (its version
 * schema, its new name). */
const char *zdmc_lower_view(zdmc_lower_ctx *l, const zdmc_table *table);
/* sync = cdc: zdm sync, not a trigger, keeps the shapes in step. */
bool zdmc_lower_is_cdc(const zdmc_lower_ctx *l);

/*
 * Append a step to the current phase, in the current transaction label
 * (its own when none).  A DO block written with $zdm$ gets a tag its body
 * cannot close.
 */
zdmc_plan_step *zdmc_lower_step(zdmc_lower_ctx *l, zdmc_step_kind kind,
                                const zdmc_table *table,
                                const char *description, const char *sql,
                                const char *compensation);
/* A contract step: a point of no return, with no compensation. */
zdmc_plan_step *zdmc_lower_final_step(zdmc_lower_ctx *l,
                                      const zdmc_table *table,
                                      const char *description, const char *sql);
/*
 * A statement PostgreSQL will not run in a transaction block, always in a
 * transaction label of its own; index (or NULL) is the index it builds,
 * dropped by the runtime if a failed build left it INVALID.  Only where no
 * table's transaction is open: the *_AFTER slots, and verify.
 */
zdmc_plan_step *
zdmc_lower_autocommit_step(zdmc_lower_ctx *l, const zdmc_table *table,
                           const char *description, const char *sql,
                           const char *compensation, const char *index);
/*
 * The diagnose of autocommit step s: when its statement fails (not for a
 * lock), the runtime counts SELECT count(*) FROM from_where, and a count
 * other than 0 stops the run as a failed check does, with description
 * (what a count of 0 means) and examples (up to 5 rows); else the
 * statement's own error stands.  A check that costs a scan only when the
 * statement it explains has failed.
 */
void zdmc_lower_diagnose(zdmc_lower_ctx *l, zdmc_plan_step *s,
                         const char *description, const char *from_where,
                         const char *examples);
/*
 * A check: SELECT count(*) FROM from_where must be 0; examples lists up to
 * 5 offending rows.  cond (or NULL) is its condition on rows of table,
 * which a cdc plan rechecks for rows in flight.
 */
void zdmc_lower_check(zdmc_lower_ctx *l, const zdmc_table *table,
                      const char *description, const char *from_where,
                      const char *examples, const char *cond);
/*
 * A check that counts the rows of table where cond holds: SELECT count(*)
 * FROM table WHERE cond must be 0; examples lists up to 5 of them.  The
 * plan says so (count_where), and the runtime counts a table's consecutive
 * such checks in one pass over its pages.  in_flight: a cdc plan rechecks
 * the offending rows that are changes zdm sync has not applied yet.
 */
void zdmc_lower_scan_check(zdmc_lower_ctx *l, const zdmc_table *table,
                           const char *description, const char *cond,
                           const char *examples, bool in_flight);

/*
 * The statements of a DO block (which declares "acl record") that give
 * view table's grants, and its grantees USAGE on schema (quoted): whoever
 * may use the table may use the view over it (security_invoker: the
 * table's own privileges and policies still apply beneath it).  table and
 * view quoted and qualified.
 */
const char *zdmc_lower_view_grants(zdmc_lower_ctx *l, const char *table,
                                   const char *view, const char *schema);
/* "file.zdm:8:3" of a source offset. */
const char *zdmc_lower_at(zdmc_lower_ctx *l, size_t offset);
/* Source text made safe inside a -- comment of generated SQL. */
const char *zdmc_lower_comment_text(zdmc_lower_ctx *l, const char *text);
/* A dollar-quote tag ($zdm$, $zdm1$, ...) that does not occur in body. */
const char *zdmc_lower_dollar_tag(zdmc_lower_ctx *l, const char *body);

#endif
