/*
 * sync_wait.h -- how zdm apply waits for zdm sync (sync = cdc).
 *
 * zdm sync is a separate long-running process; it reports into zdm.cdc
 * (journal.c) at least every 250 ms.  The runner reads those reports to pass
 * catch_up steps, to stop the sync before contract, and to tell a change
 * still in flight from a real verification failure.  Nothing here talks to
 * the change source or writes to the user's tables; the only write is
 * zdm.cdc.stop_requested.
 */
#ifndef ZDM_SYNC_WAIT_H
#define ZDM_SYNC_WAIT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "zdm.h"

typedef enum zdm_sync_wait_mode {
	/* lag at most max_lag_ms, without a break, for stable_for_ms */
	ZDM_SYNC_WAIT_LAG,
	/* every change committed before the wait began is applied (native:
	 * applied_lsn passes the WAL insert position read at the start;
	 * debezium: a report after the start with a backlog of 0) */
	ZDM_SYNC_WAIT_BARRIER,
	/* a barrier, then stop_requested, then the sync's state "stopped" */
	ZDM_SYNC_WAIT_STOP
} zdm_sync_wait_mode;

typedef struct zdm_sync_wait_opts {
	zdm_sync_wait_mode mode;
	long max_lag_ms;
	long stable_for_ms;
	/* give up when no zdm sync has reported for this long (<= 0: 60 s) */
	long no_sync_timeout_ms;
	/* prefix for the progress lines printed while waiting; NULL: quiet */
	const char *progress_prefix;
	/* sleeps ms, returns false when interrupted (the runner's signal
	 * handling); NULL: plain sleep, never interrupted */
	bool (*sleep_ms)(long ms);
} zdm_sync_wait_opts;

typedef enum zdm_sync_wait_result {
	ZDM_SYNC_WAIT_DONE = 0,
	ZDM_SYNC_WAIT_INTERRUPTED,
	ZDM_SYNC_WAIT_NO_SYNC, /* err says why: never started, stale, failed */
	ZDM_SYNC_WAIT_ERROR    /* a query failed: err has the server's words */
} zdm_sync_wait_result;

/*
 * Wait as opts says for migration's zdm sync.  On DONE, result (if not NULL)
 * holds one line for the journal ("lag 12 ms, stable for 2.0 s").
 */
zdm_sync_wait_result zdm_sync_wait(PGconn *conn, const char *migration,
                                   const zdm_sync_wait_opts *opts, char *result,
                                   size_t len, zdm_error *err);

/* Let a stopped zdm sync start again (rollback needs it running). */
int zdm_sync_clear_stop(PGconn *conn, const char *migration, zdm_error *err);

#endif
