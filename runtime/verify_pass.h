/*
 * verify_pass.h -- count a table's checks in one pass over its pages.
 *
 * A verify phase holds several checks of one table that each count the
 * rows where a condition holds (a plan's count_where).  Run one at a time,
 * each is a scan of the whole table in one statement: the table is read
 * once per check, and one statement over a big table is what a role's or
 * the plan's statement_timeout cancels.  The pass reads the table once for
 * all of them: ranges of heap pages, each one short statement that counts
 * every condition (count(*) FILTER), run by several connections at once.
 *
 * The pass only counts.  It journals nothing and decides nothing: the
 * runner compares each count with its check's expect, and runs a check that
 * does not pass again on its own (one snapshot, the in-flight recheck of a
 * cdc plan, the examples), so what a failed check reports does not depend
 * on how it was counted.
 */
#ifndef ZDM_VERIFY_PASS_H
#define ZDM_VERIFY_PASS_H

#include <signal.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "plan_read.h"
#include "zdm.h"

typedef struct zdm_verify_pass_opts {
	/* the pass opens its own connections (zdm_conn_open) */
	const char *conninfo;
	const char *schema; /* search_path of those sessions */
	int jobs;           /* connections counting at once (>= 1) */
	long lock_timeout_ms;
	/* retries of one range after a lock timeout, with backoff */
	long lock_retries;
	/* the sessions' statement_timeout (0: none): ranges are sized to
	 * take a small part of it */
	long statement_timeout_ms;
	/* when *interrupt becomes nonzero the pass stops within ~0.2 s and
	 * returns 1; NULL: never */
	const volatile sig_atomic_t *interrupt;
} zdm_verify_pass_opts;

typedef struct zdm_verify_pass_stats {
	long long pages;  /* pages counted (the table's, at the start) */
	long long ranges; /* statements run */
	long long splits; /* ranges cut in half after a statement_timeout */
	double seconds;
} zdm_verify_pass_stats;

/*
 * Count, for each of the n checks steps[0..n) (all with count_where, all
 * of one table), the rows of the table where its count_where holds, into
 * counts[0..n).  control is the runner's connection, used only to measure
 * the table before the counting starts.
 *
 * Every range is read in one snapshot, exported once and imported by each
 * counting connection (verify_pass.c): the counts are those of one
 * statement over the table, however rows move between pages meanwhile.
 * A count that is not the check's expect is not a verdict: the runner
 * counts that check again, on its own.
 *
 * Returns 0 with counts filled; 1 when interrupted; -1 with err filled
 * (err->sqlstate 55P03 when a range's lock retries ran out).
 */
int zdm_verify_pass(PGconn *control, const zdm_step *const *steps, size_t n,
                    const zdm_verify_pass_opts *opts, long long *counts,
                    zdm_verify_pass_stats *stats, zdm_error *err);

#endif
