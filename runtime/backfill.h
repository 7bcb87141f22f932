/*
 * backfill.h -- run or resume one backfill step (key: ctid).
 *
 * A backfill walks the heap pages the table has when the step first starts,
 * split into contiguous ranges, one per worker thread, each with its own
 * connection.  Every batch (a range of pages) is its own transaction, and
 * the worker's checkpoint in zdm.backfill commits in that same transaction:
 * a crash loses at most the batch in flight, and never counts one twice.
 * A later call resumes from the journal, with the partition it recorded.
 */
#ifndef ZDM_BACKFILL_H
#define ZDM_BACKFILL_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "plan_read.h"
#include "zdm.h"

typedef struct zdm_backfill_opts {
	/* workers open their own connections (zdm_conn_open) */
	const char *conninfo;
	const char *schema; /* search_path for worker sessions */
	const char *migration;
	/* parallel workers (>= 1), used when the backfill starts; a resume
	 * keeps the journal's partition */
	int jobs;
	long batch_size;      /* rows per batch; <= 0: the step's */
	long pause_ms;        /* between a worker's batches; < 0: the step's */
	long lock_timeout_ms; /* <= 0: the step's lock_timeout */
	/* retries of one batch after a lock timeout or deadlock, with
	 * backoff */
	long lock_retries;
	bool progress_tty; /* draw a one-line progress bar on stderr */
	/* plain progress lines (every ~5 s) when not a tty; NULL: none */
	FILE *log;
	/*
	 * Optional.  When *interrupt becomes nonzero (a signal handler sets
	 * it; the calling thread polls it every 0.2 s, workers run with
	 * signals blocked), every worker finishes the batch it is in and
	 * stops, and the call returns 1.  NULL: never.
	 */
	const volatile sig_atomic_t *interrupt;
	/* Stop the same way once this run has committed this many batches
	 * (tests, and "do a little" runs); 0: no limit. */
	long long max_batches;
	/* while other client sessions are active, sleep in proportion to each
	 * batch (see YIELD_FACTOR in backfill.c); false: full speed always */
	bool yield_to_clients;
} zdm_backfill_opts;

typedef struct zdm_backfill_stats {
	long long rows;    /* rows updated by this run */
	long long batches; /* batches committed by this run */
	long long retries; /* lock-timeout retries that happened */
	/* rows a using could not convert, left pending for verify to list */
	long long unconverted;
	double seconds;
	double batch_ms_p50, batch_ms_p99, batch_ms_max;
} zdm_backfill_stats;

/*
 * Run or resume one backfill step.  control is the runner's connection
 * (used only outside batches, from the calling thread: to read and create
 * the journal rows and the table's size).
 *
 * Returns 0 when every page is done (also when it already was); 1 when
 * stopped by opts->interrupt or opts->max_batches with pages left (nothing
 * failed, every committed batch is in the journal; err says where it
 * stopped); -1 with err filled otherwise.  err->step is the step's id;
 * err->sqlstate is 55P03 when a batch's lock retries ran out, so the
 * caller exits ZDM_EXIT_STOPPED.  stats is filled on every return.
 */
int zdm_backfill_run(PGconn *control, const zdm_step *step,
                     const zdm_backfill_opts *opts, zdm_backfill_stats *stats,
                     zdm_error *err);

#endif
