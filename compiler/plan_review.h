/*
 * plan_review.h -- compiled plans read back for people: zdmc explain and
 * zdmc diff.
 *
 * Both commands load plans with the runtime's own reader (runtime/
 * plan_read.c), so they show exactly what zdm would run and refuse exactly
 * the plans zdm would refuse; they print Markdown, for a terminal or a
 * pull-request comment.  plan_review.c classifies every step once
 * (sqlrisk.c, in plan order) and holds the wording both commands share;
 * plan_explain.c and plan_diff.c lay it out.  Nothing here writes files or
 * connects anywhere: the output goes into an arena buffer the caller prints.
 */
#ifndef ZDMC_PLAN_REVIEW_H
#define ZDMC_PLAN_REVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "plan_read.h"
#include "sqlrisk.h"

/* One step of a plan, classified. */
typedef struct zdmc_step_review {
	const zdm_step *step;
	zdmc_sqlrisk sql; /* its statements; none for a gate */
	zdmc_lock lock;   /* the strongest lock its statements take */
	unsigned flags;   /* ZDMC_RISK_* of its statements, and its group's */
	/* its transaction: steps group_first..group_last of the plan */
	size_t group_first, group_last;
	/* set when a lock an earlier statement of the same transaction holds
	 * makes this step's scan or rewrite block the application (Markdown) */
	const char *group_note;
} zdmc_step_review;

typedef struct zdmc_plan_review {
	const zdm_plan *plan;
	zdmc_step_review *steps; /* parallel to plan->steps */
	size_t nsteps;
	/* the phases in order, including the standard ones with no steps */
	const char **phases;
	size_t nphases;
} zdmc_plan_review;

/* Classify every step of plan, in order. */
zdmc_plan_review *zdmc_plan_review_new(zdmc_arena *arena, const zdm_plan *plan);

/*
 * zdmc explain: the whole plan for a first review.  source names the plan
 * file in the title.
 */
void zdmc_plan_explain(zdmc_buf *out, const zdm_plan *plan, const char *source);

/*
 * zdmc diff: what changed from old_plan to new_plan, with the risk of every
 * added or changed step.  Writes "No changes." when nothing did.
 */
void zdmc_plan_diff(zdmc_buf *out, const zdm_plan *old_plan,
                    const char *old_name, const zdm_plan *new_plan,
                    const char *new_name);

/* ---- shared wording (plan_review.c) ---------------------------------- */

/* Inline Markdown text, escaped; in_table also escapes "|". */
void zdmc_md_text(zdmc_buf *b, const char *s, bool in_table);
/* An inline code span holding s on one line (runs of white space become
 * one space). */
void zdmc_md_code(zdmc_buf *b, const char *s, bool in_table);
/* A fenced code block, its fence longer than any run of backticks in it. */
void zdmc_md_fence(zdmc_buf *b, const char *info, const char *body);

/* One statement: "`WHAT`: LOCK on `T` (what it blocks), how long -- why". */
void zdmc_review_stmt(zdmc_buf *b, const zdmc_step_review *sr,
                      const zdmc_stmt_risk *s, bool in_table);
/* Every statement of a step, separated by sep; "--" for a gate. */
void zdmc_review_step_locks(zdmc_buf *b, const zdmc_step_review *sr,
                            const char *sep, bool in_table);
/* What undoes the step, or "**point of no return**", or "nothing to
 * undo". */
void zdmc_review_undo(zdmc_buf *b, const zdm_step *step, bool in_table);
/* The step's transaction: "its own", "one transaction: `a`-`b`", ... */
void zdmc_review_txn(zdmc_buf *b, const zdmc_plan_review *rv, size_t i);
/* The headline risks of a step, "; "-separated; "" when none. */
void zdmc_review_headline(zdmc_buf *b, const zdmc_step_review *sr);
/* Whether the step's own statements or its transaction make it dangerous. */
bool zdmc_review_is_danger(const zdmc_step_review *sr);

#endif
