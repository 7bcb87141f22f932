/*
 * sync_wait.c -- zdm apply's side of sync = cdc: read what zdm sync
 * reports in zdm.cdc and wait for it (sync_wait.h).
 *
 * A report is fresh when its seen_at is under ZDM_SYNC_FRESH_S old: zdm sync
 * reports at least every 250 ms, so a stale row means the process is gone
 * (or stuck) whatever its state column says.  Waits poll every 100 ms, on
 * the caller's connection, outside any transaction: a catch-up can last
 * minutes and must hold no lock and no snapshot meanwhile.
 */
#include "sync_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZDM_SYNC_FRESH_S 5.0
#define ZDM_SYNC_POLL_MS 100
#define ZDM_SYNC_NO_SYNC_DEFAULT_MS 60000
#define ZDM_SYNC_PROGRESS_EVERY_S 5.0

static const char sync_report_sql[] =
	"SELECT source, state, stop_requested,"
	"       EXTRACT(epoch FROM pg_catalog.clock_timestamp() - seen_at)::float8,"
	"       lag_seconds, backlog,"
	"       coalesce(applied_lsn >= $2::pg_catalog.pg_lsn, false),"
	"       coalesce(seen_at > $3::timestamptz, false),"
	"       last_error, applied_lsn::text"
	"  FROM zdm.cdc WHERE migration = $1";

typedef struct sync_report {
	bool present;
	char source[16];
	char state[16];
	bool stop_requested;
	double age_s;
	bool lag_known;
	double lag_s;
	long long backlog; /* -1: unknown */
	bool past_lsn;     /* applied_lsn >= the barrier */
	bool after_start;  /* reported after the barrier was set */
	char last_error[512];
	char applied_lsn[32];
} sync_report;

static double
sync_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
sync_plain_sleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	return true;
}

static int
sync_read(PGconn *conn, const char *migration, const char *lsn,
          const char *since, sync_report *rep, zdm_error *err)
{
	const char *params[3] = {migration, lsn, since};
	PGresult *res;

	memset(rep, 0, sizeof(*rep));
	rep->backlog = -1;
	if (zdm_conn_query(conn, sync_report_sql, 3, params, &res, err) != 0)
		return -1;
	if (PQntuples(res) == 1) {
		rep->present = true;
		snprintf(rep->source, sizeof(rep->source), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(rep->state, sizeof(rep->state), "%s",
		         PQgetvalue(res, 0, 1));
		rep->stop_requested = PQgetvalue(res, 0, 2)[0] == 't';
		rep->age_s = PQgetisnull(res, 0, 3)
		                     ? 1e9
		                     : strtod(PQgetvalue(res, 0, 3), NULL);
		rep->lag_known = !PQgetisnull(res, 0, 4);
		if (rep->lag_known)
			rep->lag_s = strtod(PQgetvalue(res, 0, 4), NULL);
		if (!PQgetisnull(res, 0, 5))
			rep->backlog = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
		rep->past_lsn = PQgetvalue(res, 0, 6)[0] == 't';
		rep->after_start = PQgetvalue(res, 0, 7)[0] == 't';
		if (!PQgetisnull(res, 0, 8))
			snprintf(rep->last_error, sizeof(rep->last_error), "%s",
			         PQgetvalue(res, 0, 8));
		if (!PQgetisnull(res, 0, 9))
			snprintf(rep->applied_lsn, sizeof(rep->applied_lsn),
			         "%s", PQgetvalue(res, 0, 9));
	}
	PQclear(res);
	return 0;
}

static bool
sync_running(const sync_report *rep)
{
	return rep->present && strcmp(rep->state, "running") == 0 &&
	       rep->age_s < ZDM_SYNC_FRESH_S;
}

/* Why no usable report, for the progress line and the final message. */
static void
sync_absent_reason(const sync_report *rep, char *buf, size_t len)
{
	if (!rep->present)
		snprintf(buf, len, "zdm sync has never run for this migration");
	else if (strcmp(rep->state, "failed") == 0)
		snprintf(buf, len, "zdm sync failed: %s",
		         rep->last_error[0] ? rep->last_error : "(no message)");
	else if (strcmp(rep->state, "running") != 0)
		snprintf(buf, len, "zdm sync is %s", rep->state);
	else
		snprintf(buf, len, "zdm sync last reported %.0f s ago",
		         rep->age_s);
}

/* The barrier's position and start time, read from the server. */
static int
sync_barrier_start(PGconn *conn, char *lsn, size_t lsnlen, char *since,
                   size_t sincelen, zdm_error *err)
{
	PGresult *res;

	if (zdm_conn_query(
		    conn,
		    "SELECT pg_catalog.pg_current_wal_insert_lsn()::text,"
		    " pg_catalog.clock_timestamp()::text",
		    0, NULL, &res, err) != 0)
		return -1;
	snprintf(lsn, lsnlen, "%s", PQgetvalue(res, 0, 0));
	snprintf(since, sincelen, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

static bool
sync_barrier_passed(const sync_report *rep)
{
	if (!sync_running(rep) || !rep->after_start)
		return false;
	/* native, and debezium with the connector's slot: every change
	 * committed before the barrier is applied */
	if (strcmp(rep->source, "native") == 0 || rep->applied_lsn[0] != '\0')
		return rep->past_lsn;
	/* debezium without it: the topic is drained, which says nothing of
	 * changes the connector has yet to write (zdm sync --connector-slot) */
	return rep->backlog == 0;
}

zdm_sync_wait_result
zdm_sync_wait(PGconn *conn, const char *migration,
              const zdm_sync_wait_opts *opts, char *result, size_t len,
              zdm_error *err)
{
	bool (*sleep_ms)(long) =
		opts->sleep_ms ? opts->sleep_ms : sync_plain_sleep;
	long no_sync_ms = opts->no_sync_timeout_ms > 0
	                          ? opts->no_sync_timeout_ms
	                          : ZDM_SYNC_NO_SYNC_DEFAULT_MS;
	char lsn[32] = "0/0", since[64] = "-infinity";
	double start = sync_now(), last_progress = start;
	double stable_since = -1.0, absent_since = -1.0;
	bool stop_sent = false, barrier_done = false;
	sync_report rep;
	char why[600];

	if (opts->mode != ZDM_SYNC_WAIT_LAG &&
	    sync_barrier_start(conn, lsn, sizeof(lsn), since, sizeof(since),
	                       err) != 0)
		return ZDM_SYNC_WAIT_ERROR;

	for (;;) {
		double now;

		if (sync_read(conn, migration, lsn, since, &rep, err) != 0)
			return ZDM_SYNC_WAIT_ERROR;
		now = sync_now();

		if (opts->mode == ZDM_SYNC_WAIT_STOP && stop_sent &&
		    rep.present && strcmp(rep.state, "running") != 0) {
			if (strcmp(rep.state, "stopped") == 0) {
				if (result)
					snprintf(
						result, len,
						"zdm sync applied every change up to %s and stopped",
						lsn);
				return ZDM_SYNC_WAIT_DONE;
			}
		}

		if (!sync_running(&rep)) {
			stable_since = -1.0;
			if (absent_since < 0)
				absent_since = now;
			if ((now - absent_since) * 1000.0 >= no_sync_ms) {
				sync_absent_reason(&rep, why, sizeof(why));
				zdm_error_set(
					err,
					"no zdm sync is running for migration %s: %s",
					migration, why);
				return ZDM_SYNC_WAIT_NO_SYNC;
			}
		} else {
			absent_since = -1.0;
			switch (opts->mode) {
			case ZDM_SYNC_WAIT_LAG:
				if (rep.lag_known &&
				    rep.lag_s * 1000.0 <= opts->max_lag_ms) {
					if (stable_since < 0)
						stable_since = now;
					if ((now - stable_since) * 1000.0 >=
					    opts->stable_for_ms) {
						if (result)
							snprintf(
								result, len,
								"lag %.0f ms, at most %ld ms for %.1f s",
								rep.lag_s *
									1000.0,
								opts->max_lag_ms,
								now - stable_since);
						return ZDM_SYNC_WAIT_DONE;
					}
				} else {
					stable_since = -1.0;
				}
				break;
			case ZDM_SYNC_WAIT_BARRIER:
				if (sync_barrier_passed(&rep)) {
					if (result)
						snprintf(
							result, len,
							"zdm sync applied every change committed before %s (%.1f s)",
							lsn, now - start);
					return ZDM_SYNC_WAIT_DONE;
				}
				break;
			case ZDM_SYNC_WAIT_STOP:
				if (!barrier_done && sync_barrier_passed(&rep))
					barrier_done = true;
				if (barrier_done && !stop_sent) {
					const char *params[1] = {migration};
					PGresult *res;

					if (zdm_conn_query(
						    conn,
						    "UPDATE zdm.cdc SET stop_requested = true"
						    " WHERE migration = $1",
						    1, params, &res, err) != 0)
						return ZDM_SYNC_WAIT_ERROR;
					PQclear(res);
					stop_sent = true;
				}
				break;
			}
		}

		if (opts->progress_prefix &&
		    now - last_progress >= ZDM_SYNC_PROGRESS_EVERY_S) {
			last_progress = now;
			if (sync_running(&rep))
				printf("%swaiting for zdm sync: lag %.0f ms, backlog %lld%s\n",
				       opts->progress_prefix,
				       rep.lag_known ? rep.lag_s * 1000.0 : 0.0,
				       rep.backlog < 0 ? 0 : rep.backlog,
				       opts->mode == ZDM_SYNC_WAIT_LAG
				               ? ""
				               : (stop_sent ? " (stopping)"
				                            : " (barrier)"));
			else {
				sync_absent_reason(&rep, why, sizeof(why));
				printf("%swaiting for zdm sync: %s; start it with: zdm sync PLAN (giving up in %.0f s)\n",
				       opts->progress_prefix, why,
				       (no_sync_ms -
				        (now - absent_since) * 1000.0) /
				               1000.0);
			}
			fflush(stdout);
		}
		if (!sleep_ms(ZDM_SYNC_POLL_MS))
			return ZDM_SYNC_WAIT_INTERRUPTED;
	}
}

int
zdm_sync_clear_stop(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;

	if (zdm_conn_query(conn,
	                   "UPDATE zdm.cdc SET stop_requested = false"
	                   " WHERE migration = $1",
	                   1, params, &res, err) != 0)
		return -1;
	PQclear(res);
	return 0;
}
