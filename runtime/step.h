/*
 * step.h -- one executor per step kind: how the runner runs a step, undoes
 * it, and cleans up after an attempt that did not finish.
 *
 * Contract.  The runner (runner.c) owns the run: the connection, the
 * migration's advisory lock, the journal and the git history.  It walks the
 * plan's steps in order, skips those the journal says are done, and hands
 * each pending one to the executor of its kind.  An executor:
 *
 *   - journals its step done when it ends, and running before it starts
 *     anything that takes time or changes something (zdm_journal_step_*);
 *     where PostgreSQL allows, done commits in the same transaction as the
 *     step's statements, so the journal never claims what did not commit;
 *   - retries lock timeouts and deadlocks with backoff, up to the plan's
 *     lock_retries, then stops (exit 3); stops within 100 ms of SIGINT or
 *     SIGTERM when it is waiting outside a transaction;
 *   - returns a ZDM_EXIT_* code having set the migration's state, the
 *     events and the history when it did not finish (r->err says why);
 *   - runs no statement the plan does not hold, besides the journal's and
 *     read-only catalog queries (and, for autocommit steps, the DROP INDEX
 *     CONCURRENTLY of the INVALID index a failed build of the step's own
 *     index leaves).
 *
 * Adding a step kind is: its zdm_step_kind and keys in plan_read, one
 * executor in runner.c, and one entry in runner.c's executor table.
 */
#ifndef ZDM_STEP_H
#define ZDM_STEP_H

#include <stdbool.h>
#include <stddef.h>

#include "plan_read.h"

/* The runner's state for one run; opaque outside runner.c. */
typedef struct zdm_runner zdm_runner;

typedef struct zdm_step_executor {
	zdm_step_kind kind;
	const char *name; /* the plan's "kind:" */
	/* Does next (pending, of this kind, right after the steps from
	 * first on) go to the same run call as first?  For sql steps: the
	 * same transaction label, run as one transaction; for checks: both
	 * count rows of one table, counted in one pass.  NULL: one step per
	 * call. */
	bool (*joins)(const zdm_step *first, const zdm_step *next);
	/* Run plan steps [from, to): one step (to == from + 1) unless the
	 * kind joins.  A ZDM_EXIT_* code. */
	int (*run)(zdm_runner *r, size_t from, size_t to);
	/* Rollback: undo the done steps idx[0..n), in that (reverse plan)
	 * order, and journal them compensated.  The runner passes together
	 * the consecutive done steps with the same compensate and the same
	 * transaction label.  NULL: the kind changes nothing, and rollback's
	 * last sweep marks it compensated. */
	int (*compensate)(zdm_runner *r, const size_t *idx, size_t n);
	/* Rollback, before anything is undone: a step that started but is
	 * not done (running, failed) may have left something behind that
	 * its compensation does not cover.  0, or -1 with the error set.
	 * NULL: an attempt that did not finish leaves nothing. */
	int (*abandon)(zdm_runner *r, size_t idx);
	/* Rollback marks the kind's done steps compensated first: after a
	 * rollback stopped half way, a resumed apply must pass them again
	 * (checks, gates). */
	bool redo_after_rollback;
} zdm_step_executor;

/* The executor of a kind; never NULL for a kind plan_read accepts. */
const zdm_step_executor *zdm_step_executor_of(zdm_step_kind kind);

#endif
