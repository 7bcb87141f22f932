/*
 * runner.c -- apply a plan, roll it back, approve its gates.
 *
 * Invariants:
 * - One runner per migration: a session-level advisory lock on
 *   hashtextextended('zdm:' || migration, 0), held on the control connection
 *   for the whole run; a second runner is refused at once.
 * - A run never runs a statement the plan does not hold.  The only SQL of
 *   zdm's own is the journal's (schema zdm, journal.c), read-only catalog
 *   queries, and the DROP INDEX CONCURRENTLY of an INVALID index that an
 *   autocommit step's own failed build left behind.
 * - Each step kind has one executor (step.h), listed in runner_executors
 *   below; the walk over the steps and the rollback know kinds only
 *   through it.
 * - Steps that share a transaction label run in one transaction together
 *   with the journal rows that mark them done, so after a crash the journal
 *   says exactly what committed.  A step found "running" on resume did not
 *   commit, and is run again.  Autocommit steps are the exception: they
 *   run outside a transaction, journaled running before and done after.
 * - Every transaction sets lock_timeout from the plan; a lock timeout or a
 *   deadlock rolls back, waits with backoff and retries, up to the plan's
 *   lock_retries, then stops safely (exit 3) with the journal saying where.
 * - Rollback runs the compensations of completed steps in reverse, a
 *   transaction group at a time, and is refused once a step marked
 *   point_of_no_return is done.
 */
#include "runner.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfill.h"
#include "history.h"
#include "journal.h"
#include "preflight.h"
#include "signals.h"
#include "step.h"
#include "sync_wait.h"
#include "verify_pass.h"

/* zdm_interrupted (signals.c), set by SIGINT/SIGTERM: the backfill
 * finishes its batches in flight, checkpoints and returns; waits (lock
 * retries, a --wait gate) give up; the run then stops with exit 3.  A
 * statement already running is left to finish (no PQcancel): every wait
 * that gives up is outside a transaction, so nothing is left half
 * committed. */

/* Sleep ms in slices, so a signal is seen within 100 ms.  false: the run
 * was interrupted (before or during the sleep). */
static bool
runner_sleep_ms(long ms)
{
	while (ms > 0 && !zdm_interrupted) {
		long slice = ms < 100 ? ms : 100;

		zdm_sleep_ms(slice);
		ms -= slice;
	}
	return !zdm_interrupted;
}

struct zdm_runner {
	const zdm_plan *plan;
	const zdm_apply_opts *opts;
	PGconn *conn;
	char *schema; /* the plan's schema, the session's search_path */
	zdm_step_state *states; /* per plan step, from the journal */
	zdm_history *history;   /* NULL: not recording (said once) */
	zdm_error err;
};
typedef zdm_runner runner;

/* ---- small helpers --------------------------------------------------- */

static long
runner_backoff_ms(int attempt)
{
	long ms = 100L << (attempt < 6 ? attempt : 6);

	if (ms > 5000)
		ms = 5000;
	return ms + (long)(rand() % 50);
}

/*
 * After a failed attempt of a transaction: when r->err is a lock timeout or
 * deadlock and retries are left, say so (label NULL: silently; with
 * event, also in zdm.events), wait with backoff and return 1: try again.
 * 0: give up (not a lock conflict, or no retries left); -1: interrupted
 * while waiting.  The caller has rolled back already.
 */
static void runner_event(runner *r, const char *step_id, const char *event,
                         const char *message);

static int
runner_retry_lock(runner *r, int attempt, const char *step_id,
                  const char *label, bool event)
{
	long wait;

	if (!zdm_error_is_lock_conflict(&r->err) ||
	    attempt >= r->plan->lock_retries)
		return 0;
	wait = runner_backoff_ms(attempt);
	if (label != NULL) {
		char msg[1200];

		snprintf(msg, sizeof(msg), "%s; retry %d of %ld in %ld ms",
		         r->err.message, attempt + 1, r->plan->lock_retries,
		         wait);
		printf("  %-12s %s%s\n", step_id, label, msg);
		fflush(stdout);
		if (event)
			runner_event(r, step_id, "lock_retry", msg);
	}
	return runner_sleep_ms(wait) ? 1 : -1;
}

static void
runner_rollback_quietly(runner *r)
{
	zdm_error ignored;

	if (PQtransactionStatus(r->conn) != PQTRANS_IDLE)
		(void)zdm_conn_exec(r->conn, "ROLLBACK", &ignored);
}

/* Events and state changes are reported, never fatal: r->err keeps the
 * error that led to them. */
static void
runner_event(runner *r, const char *step_id, const char *event,
             const char *message)
{
	zdm_error ignored;

	(void)zdm_journal_event(r->conn, r->plan->migration, step_id, event,
	                        message, &ignored);
}

/* Open the git history; a run without one still runs (the journal is the
 * source of truth), and says so once. */
static void
runner_open_history(runner *r)
{
	zdm_error herr;

	zdm_error_clear(&herr);
	if (zdm_history_open(&r->history, r->opts->history_dir,
	                     r->opts->plan_path, &herr) != 0) {
		r->history = NULL;
		fprintf(stderr,
		        "zdm: warning: not recording this run in git: %s\n",
		        herr.message);
	}
}

/* Commit the migration's state to the history, outside any transaction.
 * A failure is reported and the run carries on. */
static void runner_record(runner *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
runner_record(runner *r, const char *fmt, ...)
{
	char message[1400];
	int n;
	va_list ap;
	zdm_error herr;

	if (r->history == NULL || r->conn == NULL)
		return;
	n = snprintf(message, sizeof(message), "%s: ", r->plan->migration);
	/* a long migration name fills the buffer: the rest is cut */
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(message) - 1)
		n = (int)sizeof(message) - 1;
	va_start(ap, fmt);
	vsnprintf(message + n, sizeof(message) - (size_t)n, fmt, ap);
	va_end(ap);
	zdm_error_clear(&herr);
	if (zdm_history_record(r->history, r->conn, r->plan->migration, message,
	                       &herr) != 0)
		fprintf(stderr,
		        "zdm: warning: could not record in the git history: %s; "
		        "the journal has it, and `zdm history sync` records it later\n",
		        herr.message);
}

/* The migration row's state, outside any step transaction. */
static void
runner_set_state(runner *r, const char *state, const char *step_id,
                 const char *gate, const zdm_error *err)
{
	zdm_error ignored;

	(void)zdm_journal_set_state(r->conn, r->plan->migration, state, step_id,
	                            gate, err, &ignored);
}

static void
runner_step_failed(runner *r, const zdm_step *step, const char *result)
{
	zdm_error ignored;

	(void)zdm_journal_step_failed(r->conn, r->plan->migration, step->id,
	                              &r->err, result, &ignored);
}

/* Steps [from, to) still 'running' did not commit (their transaction
 * failed, or the run stopped before it began): back to 'pending'. */
static void
runner_steps_pending(runner *r, size_t from, size_t to)
{
	zdm_error ignored;
	size_t i;

	for (i = from; i < to; i++)
		if (zdm_journal_step_pending(r->conn, r->plan->migration,
		                             r->plan->steps[i].id, NULL,
		                             &ignored) == 0 &&
		    r->states[i] == ZDM_STATE_RUNNING)
			r->states[i] = ZDM_STATE_PENDING;
}

/* A signal came during a wait outside any transaction: steps [from, to)
 * go back to pending and the run stops (exit 3). */
static int
runner_stop_interrupted(runner *r, size_t from, size_t to, const char *what)
{
	const char *step_id = r->plan->steps[from].id;

	runner_steps_pending(r, from, to);
	zdm_error_set(&r->err, "interrupted while %s", what);
	snprintf(r->err.step, sizeof(r->err.step), "%s", step_id);
	snprintf(r->err.hint, sizeof(r->err.hint),
	         "nothing is half done; zdm apply %s continues from here",
	         r->opts->plan_path);
	runner_set_state(r, "stopped", step_id, NULL, &r->err);
	runner_event(r, step_id, "stopped", r->err.message);
	runner_record(r, "interrupted at %s while %s", step_id, what);
	return ZDM_EXIT_STOPPED;
}

static int
runner_mark_running(runner *r, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++) {
		if (zdm_journal_step_running(r->conn, r->plan->migration,
		                             r->plan->steps[i].id,
		                             &r->err) != 0)
			return -1;
		r->states[i] = ZDM_STATE_RUNNING;
	}
	return 0;
}

static int
runner_mark_done(runner *r, const zdm_step *step, const char *rows,
                 const char *result)
{
	return zdm_journal_step_done(r->conn, r->plan->migration, step->id,
	                             rows, result, &r->err);
}

static int
runner_set_lock_timeout(runner *r, long ms)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = '%ldms'", ms);
	return zdm_conn_exec(r->conn, sql, &r->err);
}

/* ---- start or resume --------------------------------------------------- */

static int
runner_lock_migration(runner *r)
{
	const char *params[1] = {r->plan->migration};
	PGresult *res;
	int got;

	char detail[sizeof(r->err.detail)] = "";
	double deadline = zdm_now() + 1.0 + r->plan->lock_timeout_ms / 1000.0;

	/* A runner killed a moment ago may still own a backend that has not
	 * noticed (it finishes its statement first): wait a little for it. */
	for (;;) {
		if (zdm_conn_query(
			    r->conn,
			    "SELECT pg_catalog.pg_try_advisory_lock("
			    "pg_catalog.hashtextextended('zdm:' || $1, 0))",
			    1, params, &res, &r->err) != 0)
			return -1;
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
			return 0;
		if (zdm_now() >= deadline)
			break;
		if (!runner_sleep_ms(100)) {
			zdm_error_set(&r->err,
			              "interrupted while waiting for migration "
			              "%s's lock; nothing was started",
			              r->plan->migration);
			return -1;
		}
	}
	if (zdm_conn_query(
		    r->conn,
		    "SELECT a.pid, coalesce(a.application_name, ''),"
		    " coalesce(a.client_addr::text, 'local'),"
		    " pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')"
		    " FROM pg_catalog.pg_locks l"
		    " JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
		    " WHERE l.locktype = 'advisory' AND l.granted"
		    " AND l.database = (SELECT oid FROM pg_catalog.pg_database"
		    "     WHERE datname = pg_catalog.current_database())"
		    " AND (l.classid::bigint << 32 | l.objid::bigint) ="
		    "     pg_catalog.hashtextextended('zdm:' || $1, 0)",
		    1, params, &res, &r->err) == 0) {
		if (PQntuples(res) > 0)
			snprintf(
				detail, sizeof(detail),
				"held by backend pid %s (%s, from %s, connected "
				"since %s)",
				PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
				PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
		PQclear(res);
	}
	zdm_error_set(
		&r->err,
		"another zdm is already running migration %s; one runner at a time",
		r->plan->migration);
	snprintf(r->err.detail, sizeof(r->err.detail), "%s", detail);
	snprintf(r->err.hint, sizeof(r->err.hint),
	         "wait for it, or see where it stands with: zdm status %s",
	         r->opts->plan_path);
	return -1;
}

static int
runner_connect(runner *r)
{
	r->schema = zdm_plan_schema(r->plan);
	/* this session's and every backfill worker's: the plan's, not the
	 * role's (a sequence sets it again for each plan) */
	zdm_conn_set_statement_timeout(r->plan->statement_timeout_ms);
	r->conn = zdm_conn_open(r->opts->conninfo, r->plan->migration,
	                        r->schema, &r->err);
	if (r->conn == NULL)
		return -1;
	/* a journal it may not write stops it before anything else, with
	 * the owner and the grants (not "permission denied for schema") */
	if (zdm_journal_access(r->conn, true, &r->err) != 0)
		return -1;
	return runner_lock_migration(r);
}

static void
runner_close(runner *r)
{
	zdm_history_close(r->history);
	if (r->conn)
		PQfinish(r->conn); /* also releases the advisory lock */
	free(r->schema);
	free(r->states);
}

/* Journal row of this migration: 0 found, 1 none, -1 error.  A database
 * zdm never touched stays untouched until a migration passes preflight. */
static int
runner_load_migration(runner *r, char **state, char **sha)
{
	return zdm_journal_migration(r->conn, r->plan->migration, state, sha,
	                             &r->err);
}

static int
runner_load_states(runner *r)
{
	r->states = calloc(r->plan->nsteps ? r->plan->nsteps : 1,
	                   sizeof(zdm_step_state));
	if (r->states == NULL) {
		zdm_error_set(&r->err, "out of memory");
		return -1;
	}
	return zdm_journal_step_states(r->conn, r->plan, r->states, &r->err);
}

/* ---- steps ----------------------------------------------------------- */

/* Run steps [from, to), which share a transaction label, as one
 * transaction with their journal rows; retry on lock conflicts. */
static int
runner_run_group(runner *r, size_t from, size_t to)
{
	const zdm_plan *plan = r->plan;
	const zdm_step *first = &plan->steps[from];
	int attempt;
	size_t i;

	for (attempt = 0;; attempt++) {
		double t0 = zdm_now();

		if (runner_mark_running(r, from, to) != 0)
			return ZDM_EXIT_FAILED;
		if (zdm_conn_exec(r->conn, "BEGIN", &r->err) != 0 ||
		    runner_set_lock_timeout(r, first->lock_timeout_ms) != 0)
			goto failed;
		for (i = from; i < to; i++) {
			if (zdm_conn_exec(r->conn, plan->steps[i].sql,
			                  &r->err) != 0) {
				snprintf(r->err.step, sizeof(r->err.step), "%s",
				         plan->steps[i].id);
				goto failed;
			}
		}
		for (i = from; i < to; i++)
			if (runner_mark_done(r, &plan->steps[i], NULL, NULL) !=
			    0)
				goto failed;
		if (zdm_journal_set_current_step(r->conn, plan->migration,
		                                 plan->steps[to - 1].id,
		                                 &r->err) != 0)
			goto failed;
		if (zdm_conn_exec(r->conn, "COMMIT", &r->err) != 0)
			goto failed;
		for (i = from; i < to; i++) {
			r->states[i] = ZDM_STATE_DONE;
			printf("  %-12s %s\n", plan->steps[i].id,
			       plan->steps[i].description);
		}
		printf("  %-12s committed in %.0f ms (%zu statement%s, transaction \"%s\")\n",
		       "", (zdm_now() - t0) * 1000.0, to - from,
		       to - from == 1 ? "" : "s", first->transaction);
		fflush(stdout);
		if (to - from == 1)
			runner_record(r, "%s done: %s", first->id,
			              first->description);
		else
			runner_record(r, "%s to %s done (transaction \"%s\")",
			              first->id, plan->steps[to - 1].id,
			              first->transaction);
		return ZDM_EXIT_OK;

	failed : {
		zdm_error failure = r->err;
		const zdm_step *at = &plan->steps[from];

		for (i = from; i < to; i++)
			if (strcmp(plan->steps[i].id, failure.step) == 0)
				at = &plan->steps[i];
		runner_rollback_quietly(r);
		r->err = failure;
		switch (runner_retry_lock(r, attempt, at->id, "", true)) {
		case 1:
			continue;
		case -1:
			return runner_stop_interrupted(
				r, from, to, "waiting to retry a lock");
		}
		if (r->err.step[0] == '\0')
			snprintf(r->err.step, sizeof(r->err.step), "%s",
			         at->id);
		runner_step_failed(r, at, NULL);
		/* the others of the group rolled back with it */
		runner_steps_pending(r, from, to);
		if (zdm_error_is_lock_conflict(&failure)) {
			snprintf(
				r->err.hint, sizeof(r->err.hint),
				"a lock on %s was not granted within %ld ms in %ld attempts; nothing of this step was left half done. Find the blocking session (pg_locks, pg_stat_activity), then run zdm apply %s again",
				at->table ? at->table : "the table",
				at->lock_timeout_ms, plan->lock_retries + 1,
				r->opts->plan_path);
			runner_set_state(r, "stopped", at->id, NULL, &r->err);
			runner_event(r, at->id, "stopped", r->err.message);
			runner_record(r, "stopped at %s: %s (SQLSTATE %s)",
			              at->id, r->err.message, r->err.sqlstate);
			return ZDM_EXIT_STOPPED;
		}
		runner_set_state(r, "failed", at->id, NULL, &r->err);
		runner_event(r, at->id, "failed", r->err.message);
		runner_record(r, "failed at %s: %s (SQLSTATE %s)", at->id,
		              r->err.message,
		              r->err.sqlstate[0] ? r->err.sqlstate : "none");
		return ZDM_EXIT_FAILED;
	}
	}
}

/* NULL and *out set if res is exactly one non-NULL whole number; else what
 * it is instead. */
static const char *
runner_check_count(const PGresult *res, long long *out)
{
	const char *text;
	char *end;

	if (PQnfields(res) != 1)
		return PQnfields(res) == 0 ? "no column" : "several columns";
	if (PQntuples(res) != 1)
		return PQntuples(res) == 0 ? "no row" : "several rows";
	if (PQgetisnull(res, 0, 0))
		return "NULL";
	text = PQgetvalue(res, 0, 0);
	errno = 0;
	*out = strtoll(text, &end, 10);
	if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
		return "a value that is not a whole number";
	return NULL;
}

/* The runner's interruptible sleep, in the shape sync_wait wants. */
static bool
runner_wait_sleep(long ms)
{
	return runner_sleep_ms(ms);
}

/*
 * sync = cdc: wait for zdm sync (catch_up), or stop it (stop_sync).
 * Outside any transaction; a missing zdm sync stops the run with exit 4
 * (waiting, nothing undone), the same as a gate waiting for a person.
 */
static int
runner_run_sync_wait(runner *r, size_t idx)
{
	const zdm_step *step = &r->plan->steps[idx];
	zdm_sync_wait_opts wo;
	char result[512];

	memset(&wo, 0, sizeof(wo));
	if (step->kind == ZDM_STEP_STOP_SYNC)
		wo.mode = ZDM_SYNC_WAIT_STOP;
	else
		wo.mode = step->barrier ? ZDM_SYNC_WAIT_BARRIER
		                        : ZDM_SYNC_WAIT_LAG;
	wo.max_lag_ms = step->max_lag_ms;
	wo.stable_for_ms = step->stable_for_ms;
	wo.progress_prefix = "               ";
	wo.sleep_ms = runner_wait_sleep;
	wo.no_sync_timeout_ms = r->opts->sync_wait_ms;
	if (runner_mark_running(r, idx, idx + 1) != 0)
		return ZDM_EXIT_FAILED;
	printf("  %-12s %s\n", step->id, step->description);
	fflush(stdout);
	switch (zdm_sync_wait(r->conn, r->plan->migration, &wo, result,
	                      sizeof(result), &r->err)) {
	case ZDM_SYNC_WAIT_DONE:
		break;
	case ZDM_SYNC_WAIT_INTERRUPTED:
		return runner_stop_interrupted(r, idx, idx + 1,
		                               "waiting for zdm sync");
	case ZDM_SYNC_WAIT_NO_SYNC:
		snprintf(r->err.step, sizeof(r->err.step), "%s", step->id);
		snprintf(
			r->err.hint, sizeof(r->err.hint),
			"nothing is undone; run zdm sync %s (it keeps running for the whole migration), then zdm apply %s again",
			r->opts->plan_path, r->opts->plan_path);
		runner_steps_pending(r, idx, idx + 1);
		runner_set_state(r, "paused", step->id, NULL, &r->err);
		runner_event(r, step->id, "waiting_for_sync", r->err.message);
		runner_record(r, "waiting at %s: %s", step->id, r->err.message);
		/* exit 4 says "waiting"; the message says for what */
		zdm_error_print(&r->err, stderr);
		return ZDM_EXIT_GATE;
	case ZDM_SYNC_WAIT_ERROR:
	default:
		snprintf(r->err.step, sizeof(r->err.step), "%s", step->id);
		runner_step_failed(r, step, NULL);
		runner_set_state(r, "failed", step->id, NULL, &r->err);
		runner_event(r, step->id, "failed", r->err.message);
		return ZDM_EXIT_FAILED;
	}
	if (runner_mark_done(r, step, NULL, result) != 0)
		return ZDM_EXIT_FAILED;
	r->states[idx] = ZDM_STATE_DONE;
	printf("  %-12s %s\n", "", result);
	fflush(stdout);
	runner_record(r, "%s done: %s", step->id, result);
	return ZDM_EXIT_OK;
}

/*
 * A PostgreSQL array literal of strings that need no escaping beyond
 * double quotes (ctids and "ctid/xmin" pairs): {"(0,1)","(0,2)"}.
 */
static char *
runner_array_literal(const PGresult *res, bool pairs)
{
	int n = PQntuples(res);
	size_t cap = 3 + (size_t)n * 64, used = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	buf[used++] = '{';
	for (int i = 0; i < n; i++) {
		int w = snprintf(buf + used, cap - used, "%s\"%s%s%s\"",
		                 i ? "," : "", PQgetvalue(res, i, 0),
		                 pairs ? "/" : "",
		                 pairs ? PQgetvalue(res, i, 1) : "");

		if (w < 0 || (size_t)w >= cap - used) {
			free(buf);
			return NULL;
		}
		used += (size_t)w;
	}
	buf[used++] = '}';
	buf[used] = '\0';
	return buf;
}

/*
 * A cdc check that did not return its expected count may be counting
 * changes zdm sync has not applied yet.  Read the offending row versions,
 * wait until every change committed before them is applied, and count the
 * same versions (ctid and xmin) that still offend: a version that offends
 * after its own change was applied is a real failure; one rewritten since
 * was in flight.  Over 1000 offenders, try the whole check again after the
 * barrier, up to 3 times.  1: passed (result says how), 0: still failing
 * (*got is the count to report), -1: error in r->err.
 */
static int
runner_recheck_in_flight(runner *r, const zdm_step *step, long long *got,
                         char *result, size_t len)
{
	zdm_sync_wait_opts wo;

	memset(&wo, 0, sizeof(wo));
	wo.mode = ZDM_SYNC_WAIT_BARRIER;
	wo.progress_prefix = "               ";
	wo.sleep_ms = runner_wait_sleep;
	wo.no_sync_timeout_ms = r->opts->sync_wait_ms;
	for (int attempt = 0; attempt < 3; attempt++) {
		PGresult *res = NULL, *cnt = NULL;
		char *tids, *pairs;
		const char *params[2];
		const char *why;
		long long still;
		int n;

		if (zdm_conn_query(r->conn, step->in_flight_offenders, 0, NULL,
		                   &res, &r->err) != 0)
			return -1;
		n = PQntuples(res);
		if (n == 0) {
			PQclear(res);
			snprintf(
				result, len,
				"0 (expected %lld; %lld counted at first were changes in flight, applied since)",
				step->expect, *got);
			return 1;
		}
		if (zdm_sync_wait(r->conn, r->plan->migration, &wo, NULL, 0,
		                  &r->err) != ZDM_SYNC_WAIT_DONE) {
			PQclear(res);
			return -1;
		}
		if (n > 1000) {
			PQclear(res);
			continue;
		}
		tids = runner_array_literal(res, false);
		pairs = runner_array_literal(res, true);
		PQclear(res);
		if (!tids || !pairs) {
			free(tids);
			free(pairs);
			zdm_error_set(&r->err, "out of memory");
			return -1;
		}
		params[0] = tids;
		params[1] = pairs;
		if (zdm_conn_query(r->conn, step->in_flight_recheck, 2, params,
		                   &cnt, &r->err) != 0) {
			free(tids);
			free(pairs);
			return -1;
		}
		free(tids);
		free(pairs);
		why = runner_check_count(cnt, &still);
		PQclear(cnt);
		if (why != NULL) {
			zdm_error_set(&r->err,
			              "the in-flight recheck of %s returned %s",
			              step->id, why);
			return -1;
		}
		if (still == 0) {
			snprintf(
				result, len,
				"0 (expected %lld; the %d offending rows counted at first were changes in flight, applied since)",
				step->expect, n);
			return 1;
		}
		*got = still;
		return 0;
	}
	return 0;
}

/*
 * A count that failed, for people: "N rows (expected E)", or what the
 * query returned instead of one count, then up to 5 rows of examples_sql
 * (NULL: none), run in the transaction that ran the count.
 */
static void
runner_count_result(runner *r, const char *why, long long got, long long expect,
                    const char *examples_sql, char *result, size_t size)
{
	PGresult *res = NULL;
	size_t n;

	if (why != NULL)
		n = (size_t)snprintf(result, size,
		                     "the check's query returned %s "
		                     "(expected one count, %lld)",
		                     why, expect);
	else
		n = (size_t)snprintf(result, size, "%lld rows (expected %lld)",
		                     got, expect);

	if (why == NULL && examples_sql != NULL &&
	    zdm_conn_query(r->conn, examples_sql, 0, NULL, &res, &r->err) ==
	            0 &&
	    PQnfields(res) == 0)
		PQclear(res); /* no columns: nothing to show */
	else if (res != NULL) {
		int row, col;

		n += (size_t)snprintf(result + n, n < size ? size - n : 0,
		                      "; examples (%s", PQfname(res, 0));
		for (col = 1; col < PQnfields(res); col++)
			n += (size_t)snprintf(result + n,
			                      n < size ? size - n : 0, ", %s",
			                      PQfname(res, col));
		n += (size_t)snprintf(result + n, n < size ? size - n : 0,
		                      "):");
		for (row = 0; row < PQntuples(res) && row < 5; row++) {
			n += (size_t)snprintf(
				result + n, n < size ? size - n : 0, "%s %s",
				row ? ";" : "", PQgetvalue(res, row, 0));
			for (col = 1; col < PQnfields(res); col++)
				n += (size_t)snprintf(
					result + n, n < size ? size - n : 0,
					", %s",
					PQgetisnull(res, row, col)
						? "NULL"
						: PQgetvalue(res, row, col));
		}
		PQclear(res);
	}
}

/*
 * A check, or an autocommit step's diagnose, found what it counts: the run
 * stops before switch (exit 3), saying what (description), how many and
 * which (result); before (or "") opens the hint.  No transaction is open.
 */
static int
runner_verification_failed(runner *r, const zdm_step *step,
                           const char *description, const char *result,
                           const char *before)
{
	zdm_error_set(&r->err, "verification failed: %s", description);
	snprintf(r->err.step, sizeof(r->err.step), "%s", step->id);
	snprintf(r->err.detail, sizeof(r->err.detail), "%s", result);
	snprintf(
		r->err.hint, sizeof(r->err.hint),
		"%sthe migration is stopped before switch; inspect the rows, then fix the data and run zdm apply %s again, or undo with zdm rollback %s",
		before, r->opts->plan_path, r->opts->plan_path);
	runner_step_failed(r, step, result);
	runner_set_state(r, "stopped", step->id, NULL, &r->err);
	runner_event(r, step->id, "check_failed", result);
	runner_record(r, "verification failed at %s: %s", step->id, result);
	return ZDM_EXIT_STOPPED;
}

/* A check passed: journal it as done with its result, in the open
 * transaction, and commit. */
static int
runner_check_passed(runner *r, size_t idx, const char *result)
{
	const zdm_step *step = &r->plan->steps[idx];

	if (runner_mark_done(r, step, NULL, result) != 0 ||
	    zdm_conn_exec(r->conn, "COMMIT", &r->err) != 0) {
		runner_rollback_quietly(r);
		return ZDM_EXIT_FAILED;
	}
	r->states[idx] = ZDM_STATE_DONE;
	printf("  %-12s ok: %s\n", step->id, step->description);
	fflush(stdout);
	runner_record(r, "%s passed: %s", step->id, result);
	return ZDM_EXIT_OK;
}

/*
 * A check could not run (not a count that failed it): stopped when it kept
 * waiting for a lock (exit 3, resumable), failed otherwise.
 */
static int
runner_check_error(runner *r, const zdm_step *step)
{
	bool stopped = zdm_error_is_lock_conflict(&r->err);

	snprintf(r->err.step, sizeof(r->err.step), "%s", step->id);
	runner_step_failed(r, step, NULL);
	runner_set_state(r, stopped ? "stopped" : "failed", step->id, NULL,
	                 &r->err);
	runner_event(r, step->id, stopped ? "stopped" : "failed",
	             r->err.message);
	runner_record(r, "%s at %s: %s (SQLSTATE %s)",
	              stopped ? "stopped" : "failed", step->id, r->err.message,
	              r->err.sqlstate[0] ? r->err.sqlstate : "none");
	return stopped ? ZDM_EXIT_STOPPED : ZDM_EXIT_FAILED;
}

static int
runner_run_check(runner *r, size_t idx)
{
	const zdm_step *step = &r->plan->steps[idx];
	PGresult *res = NULL;
	long long got = 0;
	const char *why;
	char result[1024];
	int attempt;

	if (runner_mark_running(r, idx, idx + 1) != 0)
		return ZDM_EXIT_FAILED;
	for (attempt = 0;; attempt++) {
		if (zdm_conn_exec(r->conn, "BEGIN", &r->err) == 0 &&
		    runner_set_lock_timeout(r, step->lock_timeout_ms) == 0 &&
		    zdm_conn_query(r->conn, step->sql, 0, NULL, &res,
		                   &r->err) == 0)
			break;
		{
			zdm_error failure = r->err;

			runner_rollback_quietly(r);
			r->err = failure;
		}
		switch (runner_retry_lock(r, attempt, step->id, NULL, false)) {
		case 1:
			continue;
		case -1:
			return runner_stop_interrupted(
				r, idx, idx + 1, "waiting to retry a lock");
		}
		return runner_check_error(r, step);
	}
	/* one row, one column, a whole number: anything else is not a count
	 * and fails the check rather than passing as 0 or -1 */
	why = runner_check_count(res, &got);
	PQclear(res);
	res = NULL;
	if (why == NULL && got != step->expect && step->expect == 0 &&
	    step->in_flight_offenders && step->in_flight_recheck) {
		int passed;

		/* no snapshot held while waiting for zdm sync */
		runner_rollback_quietly(r);
		printf("  %-12s %lld rows offend; checking whether they are changes zdm sync has not applied yet\n",
		       step->id, got);
		fflush(stdout);
		passed = runner_recheck_in_flight(r, step, &got, result,
		                                  sizeof(result));
		if (passed < 0) {
			snprintf(r->err.step, sizeof(r->err.step), "%s",
			         step->id);
			runner_step_failed(r, step, NULL);
			runner_set_state(r, "stopped", step->id, NULL, &r->err);
			runner_event(r, step->id, "stopped", r->err.message);
			return ZDM_EXIT_STOPPED;
		}
		if (zdm_conn_exec(r->conn, "BEGIN", &r->err) != 0)
			return ZDM_EXIT_FAILED;
		if (passed)
			return runner_check_passed(r, idx, result);
	} else if (why == NULL && got == step->expect) {
		snprintf(result, sizeof(result), "%lld (expected %lld)", got,
		         step->expect);
		return runner_check_passed(r, idx, result);
	}

	/* failed: say what, how many, and a few examples */
	runner_count_result(r, why, got, step->expect, step->examples_sql,
	                    result, sizeof(result));
	runner_rollback_quietly(r);
	return runner_verification_failed(r, step, step->description, result,
	                                  "");
}

/*
 * Checks [from, to) all count rows of one table (count_where): count them
 * together, in one pass over the table's pages by --jobs connections
 * (verify_pass.h).  A count that is its check's expect passes the check;
 * any other is no verdict yet: that check runs again on its own
 * (runner_run_check, one snapshot), which decides, rechecks a cdc plan's
 * changes in flight and shows examples.
 */
static int
runner_run_check_pass(runner *r, size_t from, size_t to)
{
	size_t n = to - from;
	const zdm_step **steps = calloc(n, sizeof(*steps));
	long long *counts = calloc(n, sizeof(*counts));
	zdm_verify_pass_opts vo;
	zdm_verify_pass_stats stats;
	int rc = ZDM_EXIT_FAILED, pass;

	if (steps == NULL || counts == NULL) {
		zdm_error_set(&r->err, "out of memory");
		goto done;
	}
	for (size_t k = 0; k < n; k++)
		steps[k] = &r->plan->steps[from + k];
	memset(&vo, 0, sizeof(vo));
	vo.conninfo = r->opts->conninfo;
	vo.schema = r->schema;
	vo.jobs = r->opts->jobs > 0 ? r->opts->jobs : 1;
	vo.lock_timeout_ms = steps[0]->lock_timeout_ms;
	vo.lock_retries = r->plan->lock_retries;
	vo.statement_timeout_ms = r->plan->statement_timeout_ms;
	vo.interrupt = &zdm_interrupted;

	if (runner_mark_running(r, from, to) != 0)
		goto done;
	printf("  %-12s counting %s to %s in one pass over %s\n", steps[0]->id,
	       steps[0]->id, steps[n - 1]->id, steps[0]->table);
	fflush(stdout);
	pass = zdm_verify_pass(r->conn, steps, n, &vo, counts, &stats, &r->err);
	if (pass == 1) {
		rc = runner_stop_interrupted(r, from, to, "counting");
		goto done;
	}
	if (pass == 0) {
		printf("               %lld pages in %lld ranges (%lld cut in half for statement_timeout), %.2f s\n",
		       stats.pages, stats.ranges, stats.splits, stats.seconds);
		fflush(stdout);
	}
	if (pass < 0 && zdm_error_is_lock_conflict(&r->err)) {
		runner_steps_pending(r, from + 1, to);
		rc = runner_check_error(r, steps[0]);
		goto done;
	}
	/* A condition that fails on some row: a check run alone would have
	 * stopped earlier (the pending count lists the rows a using cannot
	 * convert before the counts that convert them again), so the
	 * checks run alone, and say what they find. */
	if (pass < 0) {
		printf("  %-12s the pass failed (%s, SQLSTATE %s); counting each check on its own\n",
		       steps[0]->id, r->err.message,
		       r->err.sqlstate[0] ? r->err.sqlstate : "none");
		fflush(stdout);
		zdm_error_clear(&r->err);
	}
	for (size_t k = 0; k < n; k++) {
		char result[256];

		if (pass < 0 || counts[k] != steps[k]->expect) {
			if (pass == 0)
				printf("  %-12s %lld rows counted in the pass; counting again on its own\n",
				       steps[k]->id, counts[k]);
			fflush(stdout);
			if ((rc = runner_run_check(r, from + k)) !=
			    ZDM_EXIT_OK) {
				runner_steps_pending(r, from + k + 1, to);
				goto done;
			}
			continue;
		}
		snprintf(
			result, sizeof(result),
			"%lld (expected %lld; one pass with %s to %s over %lld pages: %lld ranges, %.2f s)",
			counts[k], steps[k]->expect, steps[0]->id,
			steps[n - 1]->id, stats.pages, stats.ranges,
			stats.seconds);
		if (zdm_conn_exec(r->conn, "BEGIN", &r->err) != 0)
			goto done;
		if ((rc = runner_check_passed(r, from + k, result)) !=
		    ZDM_EXIT_OK)
			goto done;
	}
	rc = ZDM_EXIT_OK;
done:
	free(steps);
	free(counts);
	return rc;
}

static bool
runner_gate_preapproved(const zdm_apply_opts *opts, const char *gate)
{
	size_t i;

	if (opts->approve_all)
		return true;
	for (i = 0; i < opts->napprove; i++)
		if (strcmp(opts->approve[i], gate) == 0)
			return true;
	return false;
}

static const char *
runner_who(const zdm_apply_opts *opts)
{
	const char *who = opts->approved_by;

	if (who == NULL || who[0] == '\0')
		who = getenv("USER");
	if (who == NULL || who[0] == '\0')
		who = getenv("LOGNAME");
	if (who == NULL || who[0] == '\0') {
		struct passwd *pw = getpwuid(getuid());

		who = pw ? pw->pw_name : NULL;
	}
	return who && who[0] ? who : "unknown";
}

/* 1 approved (result filled), 0 not, -1 error. */
static int
runner_gate_approved(runner *r, const char *gate, char *result, size_t len)
{
	return zdm_journal_approval(r->conn, r->plan->migration, gate, result,
	                            len, &r->err);
}

static int
runner_record_approval(runner *r, const char *gate, const char *who)
{
	return zdm_journal_approve(r->conn, r->plan->migration, gate, who,
	                           &r->err) < 0
	               ? -1
	               : 0;
}

static int
runner_run_gate(runner *r, size_t idx)
{
	const zdm_step *step = &r->plan->steps[idx];
	char result[256] = "no approval needed";
	int approved = 1;
	bool announced = false;

	printf("  %-12s gate %s: %s\n", step->id, step->gate,
	       step->description);
	if (step->approval) {
		for (;;) {
			approved = runner_gate_approved(r, step->gate, result,
			                                sizeof(result));
			if (approved < 0)
				return ZDM_EXIT_FAILED;
			if (!approved &&
			    runner_gate_preapproved(r->opts, step->gate)) {
				if (runner_record_approval(
					    r, step->gate,
					    runner_who(r->opts)) != 0)
					return ZDM_EXIT_FAILED;
				runner_event(r, step->id, "approved",
				             runner_who(r->opts));
				continue;
			}
			if (approved || !r->opts->wait)
				break;
			if (!announced) {
				runner_set_state(r, "paused", step->id,
				                 step->gate, NULL);
				printf("  %-12s waiting for approval: zdm approve %s %s\n",
				       "", r->opts->plan_path, step->gate);
				fflush(stdout);
				announced = true;
			}
			if (!runner_sleep_ms(1000))
				return runner_stop_interrupted(
					r, idx, idx + 1,
					"waiting for approval at a gate");
		}
		if (!approved) {
			runner_set_state(r, "paused", step->id, step->gate,
			                 NULL);
			runner_event(r, step->id, "paused", step->gate);
			runner_record(r,
			              "paused at gate %s, waiting for approval",
			              step->gate);
			printf("\nzdm: paused at gate \"%s\" of migration %s; it needs an approval.\n"
			       "To continue:\n"
			       "    zdm approve %s %s && zdm apply %s\n",
			       step->gate, r->plan->migration,
			       r->opts->plan_path, step->gate,
			       r->opts->plan_path);
			return ZDM_EXIT_GATE;
		}
	}
	if (runner_mark_done(r, step, NULL, result) != 0)
		return ZDM_EXIT_FAILED;
	r->states[idx] = ZDM_STATE_DONE;
	printf("  %-12s %s\n", "", result);
	runner_set_state(r, "running", step->id, NULL, NULL);
	runner_record(r, "gate %s passed: %s", step->gate, result);
	return ZDM_EXIT_OK;
}

static int
runner_run_backfill(runner *r, size_t idx)
{
	const zdm_step *step = &r->plan->steps[idx];
	zdm_backfill_opts bo;
	zdm_backfill_stats stats;
	char rows[32], result[256];
	long long total;
	int rc;

	memset(&bo, 0, sizeof(bo));
	memset(&stats, 0, sizeof(stats));
	bo.conninfo = r->opts->conninfo;
	bo.schema = r->schema;
	bo.migration = r->plan->migration;
	bo.jobs = r->opts->jobs > 0 ? r->opts->jobs : 1;
	bo.batch_size = r->opts->batch_size > 0 ? r->opts->batch_size
	                                        : step->batch_size;
	bo.pause_ms = r->opts->pause_ms >= 0 ? r->opts->pause_ms
	                                     : step->batch_pause_ms;
	bo.lock_timeout_ms = step->lock_timeout_ms;
	bo.lock_retries = r->plan->lock_retries;
	bo.progress_tty = isatty(STDERR_FILENO);
	bo.log = bo.progress_tty ? NULL : stdout;
	bo.interrupt = &zdm_interrupted;
	bo.yield_to_clients = !r->opts->full_speed;

	if (runner_mark_running(r, idx, idx + 1) != 0)
		return ZDM_EXIT_FAILED;
	printf("  %-12s %s\n", step->id, step->description);
	fflush(stdout);
	rc = zdm_backfill_run(r->conn, step, &bo, &stats, &r->err);
	if (rc != 0) {
		if (r->err.step[0] == '\0')
			snprintf(r->err.step, sizeof(r->err.step), "%s",
			         step->id);
		if (rc == 1) {
			/* interrupted: every committed batch is checkpointed;
			 * the step is pending again, zdm.backfill has the
			 * progress */
			snprintf(r->err.hint, sizeof(r->err.hint),
			         "zdm apply %s continues from the checkpoints",
			         r->opts->plan_path);
			runner_steps_pending(r, idx, idx + 1);
			runner_set_state(r, "stopped", step->id, NULL, &r->err);
			runner_event(r, step->id, "stopped", r->err.message);
			runner_record(
				r,
				"backfill interrupted at %s; checkpoints kept",
				step->id);
			return ZDM_EXIT_STOPPED;
		}
		runner_step_failed(r, step, NULL);
		if (zdm_error_is_lock_conflict(&r->err)) {
			snprintf(
				r->err.hint, sizeof(r->err.hint),
				"batches keep waiting for row locks; every committed batch is checkpointed, so zdm apply %s continues from where it stopped",
				r->opts->plan_path);
			runner_set_state(r, "stopped", step->id, NULL, &r->err);
			runner_record(
				r, "backfill stopped at %s: %s (SQLSTATE %s)",
				step->id, r->err.message, r->err.sqlstate);
			return ZDM_EXIT_STOPPED;
		}
		runner_set_state(r, "failed", step->id, NULL, &r->err);
		runner_record(r, "backfill failed at %s: %s", step->id,
		              r->err.message);
		return ZDM_EXIT_FAILED;
	}
	/* a resumed backfill: the step's rows are every run's, which the
	 * journal's checkpoints add up */
	total = stats.rows;
	if (zdm_journal_backfill_rows(r->conn, r->plan->migration, step->id,
	                              &total, &r->err) < 0)
		return ZDM_EXIT_FAILED;
	snprintf(rows, sizeof(rows), "%lld", total);
	snprintf(
		result, sizeof(result),
		"%lld rows (%lld this run) in %.1f s (%.0f rows/s), %lld batches, batch p50 %.1f ms, p99 %.1f ms, max %.1f ms, %lld lock retries",
		total, stats.rows, stats.seconds,
		stats.seconds > 0 ? (double)stats.rows / stats.seconds : 0.0,
		stats.batches, stats.batch_ms_p50, stats.batch_ms_p99,
		stats.batch_ms_max, stats.retries);
	if (stats.unconverted > 0) {
		size_t n = strlen(result);

		snprintf(result + n, sizeof(result) - n,
		         "; %lld rows left unconverted: a using fails on "
		         "them, and verify lists them",
		         stats.unconverted);
	}
	if (runner_mark_done(r, step, rows, result) != 0)
		return ZDM_EXIT_FAILED;
	r->states[idx] = ZDM_STATE_DONE;
	printf("  %-12s %s\n", "", result);
	fflush(stdout);
	/* the history's format is pinned by history_test.sh: the total */
	runner_record(r, "backfill done, %lld rows in %.1f s", total,
	              stats.seconds);
	return ZDM_EXIT_OK;
}

/* ---- autocommit steps ---------------------------------------------------- */

/*
 * The step's index: its qualified, quoted name and whether it is valid.
 * to_regclass resolves the name as written in the plan (qualified or on
 * the session's search_path) and is NULL, not an error, when there is no
 * such relation.  Read-only.
 */
static const char runner_index_state_sql[] =
	"SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),"
	" i.indisvalid"
	" FROM pg_catalog.pg_index i"
	" JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE i.indexrelid = pg_catalog.to_regclass($1)";

/* The session's lock_timeout for a statement that runs outside a
 * transaction block (SET LOCAL would not outlive it). */
static int
runner_set_session_lock_timeout(runner *r, long ms)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SET lock_timeout = '%ldms'", ms);
	return zdm_conn_exec(r->conn, sql, &r->err);
}

static int
runner_reset_session_lock_timeout(runner *r)
{
	return zdm_conn_exec(r->conn, "RESET lock_timeout", &r->err);
}

/* 0 no such index, 1 valid, 2 INVALID (qualified: its quoted name), -1
 * error. */
static int
runner_index_state(runner *r, const zdm_step *step, char *qualified, size_t len)
{
	const char *params[1] = {step->index};
	PGresult *res;
	int state = 0;

	if (zdm_conn_query(r->conn, runner_index_state_sql, 1, params, &res,
	                   &r->err) != 0)
		return -1;
	if (PQntuples(res) == 1) {
		snprintf(qualified, len, "%s", PQgetvalue(res, 0, 0));
		state = strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? 1 : 2;
	}
	PQclear(res);
	return state;
}

/*
 * A concurrent build that fails, or whose session dies, leaves its index
 * behind marked INVALID: not used by queries, yet maintained by every
 * write, and in the way of the next CREATE INDEX of that name.  Before a
 * step with an index runs again, is undone or given up, such an index of
 * that name goes, without blocking writes.  No other session can be
 * building it: a build of this step runs only under the migration's
 * advisory lock, which this runner holds.  0, or -1 with r->err.
 */
static int
runner_drop_invalid_index(runner *r, const zdm_step *step)
{
	char qualified[200], sql[300];
	int state;

	if (step->index == NULL)
		return 0;
	state = runner_index_state(r, step, qualified, sizeof(qualified));
	if (state != 2)
		return state < 0 ? -1 : 0;
	printf("  %-12s dropping INVALID index %s, left by a build that did not finish\n",
	       step->id, qualified);
	fflush(stdout);
	snprintf(sql, sizeof(sql), "DROP INDEX CONCURRENTLY IF EXISTS %s",
	         qualified);
	if (runner_set_session_lock_timeout(r, step->lock_timeout_ms) != 0 ||
	    zdm_conn_exec(r->conn, sql, &r->err) != 0) {
		zdm_error failure = r->err;

		(void)runner_reset_session_lock_timeout(r);
		r->err = failure;
		return -1;
	}
	runner_event(r, step->id, "invalid_index_dropped", qualified);
	return runner_reset_session_lock_timeout(r);
}

/*
 * An autocommit step's statement failed, not for a lock, and its INVALID
 * index is gone: the step's diagnose (plan_read.h) tells data that makes
 * it fail from anything else.  Its count runs in a read-only transaction
 * of its own with the step's lock_timeout; a count other than expect stops
 * the run as a failed check does (the count, the examples, the statement's
 * error in the hint): ZDM_EXIT_STOPPED.  Otherwise ZDM_EXIT_OK with r->err
 * the statement's error again, to be reported as it is; a diagnose that
 * could not count says so in its detail.  Counting only here keeps a
 * second full pass off the way of a statement that succeeds.
 */
static int
runner_diagnose(runner *r, const zdm_step *step)
{
	const zdm_diagnosis *d = step->diagnose;
	const zdm_error failure = r->err;
	PGresult *res = NULL;
	const char *why = NULL;
	long long got = 0;
	char result[1024], before[400];

	printf("  %-12s failed (SQLSTATE %s); counting whether %s\n", step->id,
	       failure.sqlstate[0] ? failure.sqlstate : "none", d->description);
	fflush(stdout);
	if (zdm_conn_exec(r->conn, "BEGIN READ ONLY", &r->err) != 0 ||
	    runner_set_lock_timeout(r, step->lock_timeout_ms) != 0 ||
	    zdm_conn_query(r->conn, d->sql, 0, NULL, &res, &r->err) != 0 ||
	    (why = runner_check_count(res, &got)) != NULL) {
		char message[sizeof(r->err.message)];

		snprintf(message, sizeof(message), "%s",
		         why ? why : r->err.message);
		PQclear(res);
		runner_rollback_quietly(r);
		r->err = failure;
		/* after the statement's own detail, if it has one */
		snprintf(r->err.detail, sizeof(r->err.detail),
		         "%.500s%sits diagnose could not count: %.400s",
		         failure.detail, failure.detail[0] ? "; " : "",
		         message);
		return ZDM_EXIT_OK;
	}
	PQclear(res);
	if (got == d->expect) {
		runner_rollback_quietly(r);
		r->err = failure;
		return ZDM_EXIT_OK;
	}
	runner_count_result(r, NULL, got, d->expect, d->examples_sql, result,
	                    sizeof(result));
	runner_rollback_quietly(r);
	snprintf(before, sizeof(before),
	         "the step's statement failed: %.250s (SQLSTATE %s); ",
	         failure.message,
	         failure.sqlstate[0] ? failure.sqlstate : "none");
	return runner_verification_failed(r, step, d->description, result,
	                                  before);
}

/*
 * One statement PostgreSQL will not run in a transaction block: journaled
 * running (committed) before, run on its own with the step's lock_timeout
 * set on the session, journaled done after.  A crash in between leaves the
 * step running: on resume it runs again, after its INVALID index (if it
 * names one) is dropped; if the index is there and valid, the build
 * committed and only the journal missed it, so the step is done.  Lock
 * conflicts are retried like a transaction's.
 */
static int
runner_run_autocommit(runner *r, size_t idx)
{
	const zdm_step *step = &r->plan->steps[idx];
	bool resumed = r->states[idx] == ZDM_STATE_RUNNING;
	int attempt;

	for (attempt = 0;; attempt++) {
		double t0 = zdm_now();

		if (resumed && step->index != NULL) {
			char qualified[200];
			int state = runner_index_state(r, step, qualified,
			                               sizeof(qualified));

			if (state < 0)
				goto failed;
			if (state == 1) {
				char result[300];

				snprintf(
					result, sizeof(result),
					"index %s found built and valid by an earlier attempt",
					qualified);
				if (runner_mark_done(r, step, NULL, result) !=
				    0)
					return ZDM_EXIT_FAILED;
				r->states[idx] = ZDM_STATE_DONE;
				printf("  %-12s %s\n  %-12s %s\n", step->id,
				       step->description, "", result);
				fflush(stdout);
				runner_record(r, "%s done: %s", step->id,
				              result);
				return ZDM_EXIT_OK;
			}
		}
		resumed = false;
		if (runner_mark_running(r, idx, idx + 1) != 0)
			return ZDM_EXIT_FAILED;
		if (runner_drop_invalid_index(r, step) != 0 ||
		    runner_set_session_lock_timeout(r, step->lock_timeout_ms) !=
		            0 ||
		    zdm_conn_exec(r->conn, step->sql, &r->err) != 0 ||
		    runner_reset_session_lock_timeout(r) != 0)
			goto failed;
		if (runner_mark_done(r, step, NULL, NULL) != 0 ||
		    zdm_journal_set_current_step(r->conn, r->plan->migration,
		                                 step->id, &r->err) != 0)
			return ZDM_EXIT_FAILED;
		r->states[idx] = ZDM_STATE_DONE;
		printf("  %-12s %s\n", step->id, step->description);
		printf("  %-12s done in %.0f ms (outside a transaction)\n", "",
		       (zdm_now() - t0) * 1000.0);
		fflush(stdout);
		runner_record(r, "%s done: %s", step->id, step->description);
		return ZDM_EXIT_OK;

	failed : {
		zdm_error failure = r->err;

		/* what the failed statement left: its INVALID index */
		(void)runner_reset_session_lock_timeout(r);
		if (runner_drop_invalid_index(r, step) != 0 &&
		    failure.detail[0] == '\0')
			snprintf(
				failure.detail, sizeof(failure.detail),
				"its INVALID index %.200s could not be dropped: %.700s",
				step->index, r->err.message);
		r->err = failure;
	}
		snprintf(r->err.step, sizeof(r->err.step), "%s", step->id);
		switch (runner_retry_lock(r, attempt, step->id, "", true)) {
		case 1:
			continue;
		case -1:
			return runner_stop_interrupted(
				r, idx, idx + 1, "waiting to retry a lock");
		}
		if (step->diagnose != NULL &&
		    !zdm_error_is_lock_conflict(&r->err) &&
		    runner_diagnose(r, step) == ZDM_EXIT_STOPPED)
			return ZDM_EXIT_STOPPED;
		runner_step_failed(r, step, NULL);
		if (zdm_error_is_lock_conflict(&r->err)) {
			snprintf(
				r->err.hint, sizeof(r->err.hint),
				"a lock on %s was not granted within %ld ms in %ld attempts; nothing of this step was left behind. Find the blocking session (pg_locks, pg_stat_activity), then run zdm apply %s again",
				step->table ? step->table : "the table",
				step->lock_timeout_ms,
				r->plan->lock_retries + 1, r->opts->plan_path);
			runner_set_state(r, "stopped", step->id, NULL, &r->err);
			runner_event(r, step->id, "stopped", r->err.message);
			runner_record(r, "stopped at %s: %s (SQLSTATE %s)",
			              step->id, r->err.message,
			              r->err.sqlstate);
			return ZDM_EXIT_STOPPED;
		}
		runner_set_state(r, "failed", step->id, NULL, &r->err);
		runner_event(r, step->id, "failed", r->err.message);
		runner_record(r, "failed at %s: %s (SQLSTATE %s)", step->id,
		              r->err.message,
		              r->err.sqlstate[0] ? r->err.sqlstate : "none");
		return ZDM_EXIT_FAILED;
	}
}

static int
runner_run_steps(runner *r)
{
	const zdm_plan *plan = r->plan;
	const char *phase = NULL;
	size_t i = 0;

	while (i < plan->nsteps) {
		const zdm_step *step = &plan->steps[i];
		const zdm_step_executor *exec;
		size_t j;
		int rc;

		if (r->states[i] == ZDM_STATE_DONE) {
			i++;
			continue;
		}
		if (zdm_interrupted) {
			zdm_error_set(&r->err, "interrupted before step %s",
			              step->id);
			snprintf(
				r->err.hint, sizeof(r->err.hint),
				"nothing is half done; zdm apply %s continues from here",
				r->opts->plan_path);
			runner_set_state(r, "stopped", step->id, NULL, &r->err);
			runner_record(r, "interrupted before %s", step->id);
			return ZDM_EXIT_STOPPED;
		}
		if (phase == NULL || strcmp(phase, step->phase) != 0) {
			phase = step->phase;
			printf("%s\n", phase);
			fflush(stdout);
		}
		exec = zdm_step_executor_of(step->kind);
		j = i + 1;
		if (exec->joins)
			while (j < plan->nsteps &&
			       plan->steps[j].kind == step->kind &&
			       r->states[j] != ZDM_STATE_DONE &&
			       exec->joins(step, &plan->steps[j]))
				j++;
		rc = exec->run(r, i, j);
		i = j;
		if (rc != ZDM_EXIT_OK)
			return rc;
	}
	return ZDM_EXIT_OK;
}

/* The plan file's bytes, for the journal ("the plan as applied"). */
static char *
runner_read_plan_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)len + 1);
		if (buf != NULL) {
			size_t got = fread(buf, 1, (size_t)len, f);

			buf[got] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/*
 * The journal has a row of this migration (state, sha): may this plan run?
 * ZDM_EXIT_OK with *start true when it starts a new attempt (the row was
 * rolled back, or no step of it ever ran), false when it resumes the row
 * (or the row is done with this plan); else the refusal's exit status with
 * r->err.  A done migration never starts again; one in flight runs the
 * plan it started with.
 */
static int
runner_check_restart(runner *r, const char *state, const char *sha, bool *start)
{
	const zdm_plan *plan = r->plan;
	bool same = strcmp(sha, plan->plan_sha256) == 0;
	int replaceable;

	*start = false;
	if (strcmp(state, "done") == 0) {
		if (same)
			return ZDM_EXIT_OK;
		zdm_error_set(
			&r->err,
			"migration %s is done, with another plan (plan_sha256 %.12s... in the journal); this plan is %.12s...",
			plan->migration, sha, plan->plan_sha256);
		snprintf(
			r->err.hint, sizeof(r->err.hint),
			"a done migration is never applied again: restore %s as it was applied (the journal and the git record hold it, %s/plan.yaml) and put a further change in a new migration",
			r->opts->plan_path, plan->migration);
		return ZDM_EXIT_USAGE;
	}
	if (same && strcmp(state, "rolled_back") != 0)
		return ZDM_EXIT_OK; /* resume */
	/* the tables the replaceable query reads are in every journal */
	if (zdm_journal_ensure(r->conn, &r->err) != 0 ||
	    (replaceable = zdm_journal_replaceable(r->conn, plan->migration,
	                                           &r->err)) < 0)
		return ZDM_EXIT_FAILED;
	if (!replaceable) {
		zdm_error_set(
			&r->err,
			"migration %s was started with a different plan (plan_sha256 %.12s...); this plan is %.12s...",
			plan->migration, sha, plan->plan_sha256);
		snprintf(r->err.detail, sizeof(r->err.detail),
		         "the migration is %s, and steps of that plan have run",
		         state);
		snprintf(
			r->err.hint, sizeof(r->err.hint),
			"a migration in flight runs the plan it started with: finish it, or roll it back with that plan (zdm rollback; the git record holds it, %s/plan.yaml), then apply this one",
			plan->migration);
		return ZDM_EXIT_USAGE;
	}
	if (!same)
		printf("migration %s: the attempt with plan %.12s... is %s%s; "
		       "starting again with this plan\n",
		       plan->migration, sha, state,
		       strcmp(state, "rolled_back") == 0
		               ? ""
		               : " and none of its steps ran");
	*start = true;
	return ZDM_EXIT_OK;
}

int
zdm_apply(const zdm_plan *plan, const zdm_apply_opts *opts)
{
	runner r;
	char *state = NULL, *sha = NULL;
	int rc = ZDM_EXIT_FAILED, found;
	bool start = false;

	memset(&r, 0, sizeof(r));
	r.plan = plan;
	r.opts = opts;
	srand((unsigned)getpid());
	zdm_catch_signals();
	if (runner_connect(&r) != 0)
		goto done;
	runner_open_history(&r);
	for (size_t g = 0; g < opts->napprove; g++) {
		bool known = false;

		for (size_t k = 0; k < plan->nsteps; k++)
			if (plan->steps[k].kind == ZDM_STEP_GATE &&
			    strcmp(plan->steps[k].gate, opts->approve[g]) == 0)
				known = true;
		if (!known) {
			zdm_error_set(
				&r.err,
				"--approve %s: migration %s has no gate of that name",
				opts->approve[g], plan->migration);
			rc = ZDM_EXIT_USAGE;
			goto done;
		}
	}
	found = runner_load_migration(&r, &state, &sha);
	if (found < 0)
		goto done;
	if (found == 0) {
		rc = runner_check_restart(&r, state, sha, &start);
		if (rc != ZDM_EXIT_OK)
			goto done;
		if (strcmp(state, "done") == 0 && !start) {
			printf("migration %s is already done\n",
			       plan->migration);
			goto done;
		}
	}
	rc = ZDM_EXIT_FAILED;
	if (found == 1 || start) {
		char *text;
		int attempt, started, exists;

		printf("migration %s: preflight\n", plan->migration);
		/* A journal an earlier zdm wrote is brought up to date first:
		 * its migrations in flight claim their tables then, so that
		 * preflight names them.  A database without a journal is left
		 * untouched until the plan passes. */
		if ((exists = zdm_journal_exists(r.conn, &r.err)) < 0 ||
		    (exists == 1 && zdm_journal_ensure(r.conn, &r.err) != 0))
			goto done;
		if (zdm_preflight(r.conn, plan, stderr, &r.err) != 0) {
			/* problems found: the plan does not fit this database
			 * (nothing touched); a SQLSTATE: the check itself failed */
			rc = r.err.sqlstate[0] ? ZDM_EXIT_FAILED
			                       : ZDM_EXIT_USAGE;
			goto done;
		}
		if (zdm_journal_ensure(r.conn, &r.err) != 0)
			goto done;
		text = runner_read_plan_text(opts->plan_path);
		if (text == NULL) {
			zdm_error_set(&r.err, "cannot read %s again",
			              opts->plan_path);
			goto done;
		}
		started =
			zdm_journal_start(r.conn, plan, text, &attempt, &r.err);
		free(text);
		if (started != 0) {
			/* 1: another migration claimed a table since the
			 * preflight looked; nothing was written */
			rc = started == 1 ? ZDM_EXIT_USAGE : ZDM_EXIT_FAILED;
			goto done;
		}
		if (attempt > 1) {
			printf("migration %s: started attempt %d (plan "
			       "%.12s...)\n",
			       plan->migration, attempt, plan->plan_sha256);
			runner_record(&r, "started attempt %d (plan %.12s)",
			              attempt, plan->plan_sha256);
		} else {
			printf("migration %s: started (plan %.12s...)\n",
			       plan->migration, plan->plan_sha256);
			runner_record(&r, "started (plan %.12s)",
			              plan->plan_sha256);
		}
	} else {
		/* a journal an earlier zdm wrote: its new tables, and the
		 * claims that zdm did not take */
		if (zdm_journal_ensure(r.conn, &r.err) != 0)
			goto done;
		printf("migration %s: resuming (was %s)\n", plan->migration,
		       state);
		runner_set_state(&r, "running", NULL, NULL, NULL);
	}
	if (runner_load_states(&r) != 0)
		goto done;
	rc = runner_run_steps(&r);
	if (rc == ZDM_EXIT_OK) {
		runner_set_state(&r, "done", NULL, NULL, NULL);
		runner_event(&r, NULL, "done", NULL);
		runner_record(&r, "done");
		printf("migration %s: done\n", plan->migration);
	}
done:
	if (rc != ZDM_EXIT_OK && rc != ZDM_EXIT_GATE)
		zdm_error_print(&r.err, stderr);
	free(state);
	free(sha);
	runner_close(&r);
	return rc;
}

/* ---- rollback ---------------------------------------------------------- */

/* A signal during a rollback, between two undo transactions: the steps
 * undone so far stay undone, the others stay done. */
static int
runner_stop_rollback_interrupted(runner *r, size_t at)
{
	const char *step_id = r->plan->steps[at].id;

	zdm_error_set(&r->err, "rollback interrupted before undoing %s",
	              step_id);
	snprintf(r->err.step, sizeof(r->err.step), "%s", step_id);
	snprintf(r->err.hint, sizeof(r->err.hint),
	         "the steps undone so far stay undone; zdm rollback %s "
	         "finishes it",
	         r->opts->plan_path);
	runner_set_state(r, "stopped", step_id, NULL, &r->err);
	runner_event(r, step_id, "stopped", r->err.message);
	runner_record(r, "rollback interrupted before %s", step_id);
	return ZDM_EXIT_STOPPED;
}

/*
 * An undo failed (r->err, r->err.step say where): the step stays done (its
 * undo failed, not the step), so the next rollback undoes it again.  A lock
 * conflict stops (exit 3), anything else fails (exit 1).
 */
static int
runner_undo_failed(runner *r)
{
	zdm_error ignored;

	(void)zdm_journal_step_undo_failed(r->conn, r->plan->migration,
	                                   r->err.step, &r->err, &ignored);
	if (zdm_error_is_lock_conflict(&r->err)) {
		snprintf(r->err.hint, sizeof(r->err.hint),
		         "the steps undone so far stay undone; once the "
		         "blocking session is gone, run zdm rollback %s "
		         "again to finish",
		         r->opts->plan_path);
		runner_set_state(r, "stopped", r->err.step, NULL, &r->err);
		runner_record(r, "rollback stopped at %s: %s (SQLSTATE %s)",
		              r->err.step, r->err.message, r->err.sqlstate);
		return ZDM_EXIT_STOPPED;
	}
	runner_set_state(r, "failed", r->err.step, NULL, &r->err);
	runner_record(r, "rollback failed at %s: %s", r->err.step,
	              r->err.message);
	return ZDM_EXIT_FAILED;
}

/* sql and backfill steps: a transaction group's compensations in one
 * transaction, with the journal rows that say they are undone. */
static int
runner_compensate_group(runner *r, const size_t *idx, size_t n)
{
	const zdm_plan *plan = r->plan;
	int attempt;
	size_t k;

	for (attempt = 0;; attempt++) {
		if (zdm_interrupted)
			return runner_stop_rollback_interrupted(r, idx[0]);
		if (zdm_conn_exec(r->conn, "BEGIN", &r->err) != 0 ||
		    runner_set_lock_timeout(
			    r, plan->steps[idx[0]].lock_timeout_ms) != 0)
			goto failed;
		for (k = 0; k < n; k++) {
			const zdm_step *s = &plan->steps[idx[k]];

			if (s->compensation != NULL &&
			    zdm_conn_exec(r->conn, s->compensation, &r->err) !=
			            0) {
				snprintf(r->err.step, sizeof(r->err.step), "%s",
				         s->id);
				goto failed;
			}
			if (zdm_journal_step_compensated(r->conn,
			                                 plan->migration, s->id,
			                                 &r->err) != 0)
				goto failed;
		}
		if (zdm_conn_exec(r->conn, "COMMIT", &r->err) != 0)
			goto failed;
		for (k = 0; k < n; k++) {
			const zdm_step *s = &plan->steps[idx[k]];

			r->states[idx[k]] = ZDM_STATE_COMPENSATED;
			printf("  %-12s undone%s\n", s->id,
			       s->compensation ? "" : " (nothing to undo)");
		}
		fflush(stdout);
		return ZDM_EXIT_OK;
	failed : {
		zdm_error failure = r->err;

		runner_rollback_quietly(r);
		r->err = failure;
	}
		if (r->err.step[0] == '\0')
			snprintf(r->err.step, sizeof(r->err.step), "%s",
			         plan->steps[idx[0]].id);
		switch (runner_retry_lock(r, attempt, r->err.step,
		                          "undo: ", false)) {
		case 1:
			continue;
		case -1:
			return runner_stop_rollback_interrupted(r, idx[0]);
		}
		return runner_undo_failed(r);
	}
}

/* autocommit steps: each compensation on its own, outside a transaction
 * (DROP INDEX CONCURRENTLY refuses to run in one), after dropping an
 * INVALID index of the step's; journaled compensated once it ran. */
static int
runner_compensate_autocommit(runner *r, const size_t *idx, size_t n)
{
	const zdm_plan *plan = r->plan;

	for (size_t k = 0; k < n; k++) {
		const zdm_step *s = &plan->steps[idx[k]];

		for (int attempt = 0;; attempt++) {
			if (zdm_interrupted)
				return runner_stop_rollback_interrupted(r,
				                                        idx[k]);
			if (runner_drop_invalid_index(r, s) != 0 ||
			    runner_set_session_lock_timeout(
				    r, s->lock_timeout_ms) != 0 ||
			    (s->compensation != NULL &&
			     zdm_conn_exec(r->conn, s->compensation, &r->err) !=
			             0) ||
			    runner_reset_session_lock_timeout(r) != 0 ||
			    zdm_journal_step_compensated(r->conn,
			                                 plan->migration, s->id,
			                                 &r->err) != 0) {
				zdm_error failure = r->err;

				(void)runner_reset_session_lock_timeout(r);
				r->err = failure;
				snprintf(r->err.step, sizeof(r->err.step), "%s",
				         s->id);
				switch (runner_retry_lock(r, attempt, s->id,
				                          "undo: ", false)) {
				case 1:
					continue;
				case -1:
					return runner_stop_rollback_interrupted(
						r, idx[k]);
				}
				return runner_undo_failed(r);
			}
			break;
		}
		r->states[idx[k]] = ZDM_STATE_COMPENSATED;
		printf("  %-12s undone%s\n", s->id,
		       s->compensation ? "" : " (nothing to undo)");
		fflush(stdout);
	}
	return ZDM_EXIT_OK;
}

/* autocommit steps that started and did not finish: their INVALID index
 * goes before anything is undone. */
static int
runner_abandon_autocommit(runner *r, size_t idx)
{
	const zdm_step *s = &r->plan->steps[idx];

	if (runner_drop_invalid_index(r, s) != 0) {
		snprintf(r->err.step, sizeof(r->err.step), "%s", s->id);
		return -1;
	}
	return 0;
}

/* ---- the executors ------------------------------------------------------ */

/* The kinds that run one step at a time take [from, from + 1). */
static int
runner_exec_gate(runner *r, size_t from, size_t to)
{
	(void)to;
	return runner_run_gate(r, from);
}

/* sql steps: one transaction label, one transaction */
static bool
runner_same_transaction(const zdm_step *first, const zdm_step *next)
{
	return strcmp(first->transaction, next->transaction) == 0;
}

/* checks: counts of rows of one table, in one pass (verify_pass.h) */
static bool
runner_same_pass(const zdm_step *first, const zdm_step *next)
{
	return first->count_where != NULL && next->count_where != NULL &&
	       strcmp(first->table, next->table) == 0;
}

static int
runner_exec_check(runner *r, size_t from, size_t to)
{
	if (to - from > 1)
		return runner_run_check_pass(r, from, to);
	return runner_run_check(r, from);
}

static int
runner_exec_backfill(runner *r, size_t from, size_t to)
{
	(void)to;
	return runner_run_backfill(r, from);
}

static int
runner_exec_sync_wait(runner *r, size_t from, size_t to)
{
	(void)to;
	return runner_run_sync_wait(r, from);
}

static int
runner_exec_autocommit(runner *r, size_t from, size_t to)
{
	(void)to;
	return runner_run_autocommit(r, from);
}

/*
 * One entry per zdm_step_kind.  Gates, checks and the waits for zdm sync
 * change nothing, so they have nothing to undo; backfill steps undo with
 * the sql steps of their transaction label (their compensation, when they
 * have one, is SQL like any other).
 */
static const zdm_step_executor runner_executors[] = {
	{ZDM_STEP_SQL, "sql", runner_same_transaction, runner_run_group,
         runner_compensate_group, NULL, false},
	{ZDM_STEP_BACKFILL, "backfill", NULL, runner_exec_backfill,
         runner_compensate_group, NULL, false},
	{ZDM_STEP_CHECK, "check", runner_same_pass, runner_exec_check, NULL,
         NULL, true},
	{ZDM_STEP_GATE, "gate", NULL, runner_exec_gate, NULL, NULL, true},
	{ZDM_STEP_CATCH_UP, "catch_up", NULL, runner_exec_sync_wait, NULL, NULL,
         false},
	{ZDM_STEP_STOP_SYNC, "stop_sync", NULL, runner_exec_sync_wait, NULL,
         NULL, false},
	{ZDM_STEP_AUTOCOMMIT, "autocommit", NULL, runner_exec_autocommit,
         runner_compensate_autocommit, runner_abandon_autocommit, false},
};

const zdm_step_executor *
zdm_step_executor_of(zdm_step_kind kind)
{
	for (size_t i = 0;
	     i < sizeof(runner_executors) / sizeof(runner_executors[0]); i++)
		if (runner_executors[i].kind == kind)
			return &runner_executors[i];
	/* plan_read accepts no kind without an executor */
	return &runner_executors[0];
}

int
zdm_rollback(const zdm_plan *plan, const zdm_apply_opts *opts)
{
	runner r;
	char *state = NULL, *sha = NULL;
	size_t *group = NULL, ngroup = 0, i;
	const zdm_step_executor *group_exec = NULL;
	int rc = ZDM_EXIT_FAILED, found;

	memset(&r, 0, sizeof(r));
	r.plan = plan;
	r.opts = opts;
	zdm_catch_signals();
	if (runner_connect(&r) != 0)
		goto done;
	/* read by the compensation of create table (a placeholder setting,
	 * this session's only) */
	if (opts->discard_new_rows &&
	    zdm_conn_exec(r.conn, "SET zdm.discard_new_rows = on", &r.err) != 0)
		goto done;
	runner_open_history(&r);
	found = runner_load_migration(&r, &state, &sha);
	if (found < 0)
		goto done;
	if (found == 1) {
		printf("migration %s has not started: nothing to roll back\n",
		       plan->migration);
		rc = ZDM_EXIT_OK;
		goto done;
	}
	/* whatever the plan: a rolled-back attempt has nothing left to undo */
	if (strcmp(state, "rolled_back") == 0) {
		printf("migration %s is already rolled back\n",
		       plan->migration);
		rc = ZDM_EXIT_OK;
		goto done;
	}
	if (strcmp(sha, plan->plan_sha256) != 0) {
		zdm_error_set(
			&r.err,
			"migration %s was started with a different plan (plan_sha256 %.12s...); roll back with that plan",
			plan->migration, sha);
		snprintf(r.err.hint, sizeof(r.err.hint),
		         "the plan as applied is in the journal "
		         "(zdm.migrations.plan) and in the git record, "
		         "%s/plan.yaml",
		         plan->migration);
		rc = ZDM_EXIT_USAGE;
		goto done;
	}
	/* the release of the claims at the end needs zdm.claims */
	if (zdm_journal_ensure(r.conn, &r.err) != 0)
		goto done;
	if (runner_load_states(&r) != 0)
		goto done;
	for (i = 0; i < plan->nsteps; i++) {
		if (r.states[i] == ZDM_STATE_DONE &&
		    plan->steps[i].point_of_no_return) {
			zdm_error_set(
				&r.err,
				"cannot roll back migration %s: step %s (%s) is done, past the point of no return",
				plan->migration, plan->steps[i].id,
				plan->steps[i].description);
			snprintf(
				r.err.detail, sizeof(r.err.detail), "%s",
				strcmp(plan->steps[i].phase, "contract") == 0
					? "contract has dropped or renamed the old shape; there is nothing left to go back to"
					: "an irreversible change stopped writing the old shape back once the new version took over");
			snprintf(
				r.err.hint, sizeof(r.err.hint),
				"finish the migration with zdm apply %s; to go back, write a new migration",
				opts->plan_path);
			rc = ZDM_EXIT_STOPPED;
			goto done;
		}
	}
	printf("migration %s: rolling back\n", plan->migration);
	runner_set_state(&r, "rolling_back", NULL, NULL, NULL);
	/* Whatever the rollback reaches, this attempt's checkpoints and
	 * approvals no longer hold, and checks and gates that passed must
	 * pass again: a rollback stopped half way then resumed by apply
	 * redoes them. */
	if (zdm_journal_forget_attempt(r.conn, plan->migration, &r.err) != 0)
		goto done;
	/* a contract that stopped zdm sync and then failed: rollback needs it
	 * running again (until the slot is dropped, it carries new-version
	 * writes back to the old shape) */
	if (plan->cdc &&
	    zdm_sync_clear_stop(r.conn, plan->migration, &r.err) != 0)
		goto done;
	for (i = 0; i < plan->nsteps; i++) {
		const zdm_step_executor *exec =
			zdm_step_executor_of(plan->steps[i].kind);

		if (exec->redo_after_rollback &&
		    r.states[i] != ZDM_STATE_PENDING &&
		    r.states[i] != ZDM_STATE_COMPENSATED) {
			if (zdm_journal_step_compensated(
				    r.conn, plan->migration, plan->steps[i].id,
				    &r.err) != 0)
				goto done;
			r.states[i] = ZDM_STATE_COMPENSATED;
		}
		/* an attempt that did not finish may have left something
		 * behind (an INVALID index) */
		if (exec->abandon != NULL &&
		    (r.states[i] == ZDM_STATE_RUNNING ||
		     r.states[i] == ZDM_STATE_FAILED) &&
		    exec->abandon(&r, i) != 0) {
			rc = runner_undo_failed(&r);
			goto done;
		}
	}
	group = calloc(plan->nsteps ? plan->nsteps : 1, sizeof(size_t));
	if (group == NULL) {
		zdm_error_set(&r.err, "out of memory");
		goto done;
	}
	/* reverse order; steps with the same transaction label and the same
	 * compensation are undone together (sql: in one transaction) */
	for (i = plan->nsteps; i-- > 0;) {
		const zdm_step *s = &plan->steps[i];
		const zdm_step_executor *exec = zdm_step_executor_of(s->kind);

		if (r.states[i] != ZDM_STATE_DONE || exec->compensate == NULL)
			continue;
		if (ngroup > 0 && (group_exec->compensate != exec->compensate ||
		                   strcmp(plan->steps[group[0]].transaction,
		                          s->transaction) != 0)) {
			rc = group_exec->compensate(&r, group, ngroup);
			ngroup = 0;
			if (rc != ZDM_EXIT_OK)
				goto done;
		}
		group_exec = exec;
		group[ngroup++] = i;
	}
	if (ngroup > 0) {
		rc = group_exec->compensate(&r, group, ngroup);
		if (rc != ZDM_EXIT_OK)
			goto done;
	}
	rc = ZDM_EXIT_FAILED;
	if (zdm_journal_forget_attempt(r.conn, plan->migration, &r.err) != 0 ||
	    zdm_journal_all_compensated(r.conn, plan->migration, &r.err) != 0)
		goto done;
	runner_set_state(&r, "rolled_back", NULL, NULL, NULL);
	runner_event(&r, NULL, "rolled_back", NULL);
	runner_record(&r, "rolled back");
	printf("migration %s: rolled back\n", plan->migration);
	rc = ZDM_EXIT_OK;
done:
	if (rc != ZDM_EXIT_OK)
		zdm_error_print(&r.err, stderr);
	free(group);
	free(state);
	free(sha);
	runner_close(&r);
	return rc;
}

/* ---- approve ---------------------------------------------------------- */

int
zdm_approve(const zdm_plan *plan, const zdm_apply_opts *opts, const char *gate)
{
	zdm_error err;
	PGconn *conn;
	char *schema = zdm_plan_schema(plan);
	const char *who = runner_who(opts);
	size_t i;
	bool known = false;
	int rc = ZDM_EXIT_FAILED, recorded;

	for (i = 0; i < plan->nsteps; i++)
		if (plan->steps[i].kind == ZDM_STEP_GATE &&
		    plan->steps[i].approval &&
		    strcmp(plan->steps[i].gate, gate) == 0)
			known = true;
	if (!known) {
		fprintf(stderr,
		        "zdm: error: migration %s has no gate \"%s\" that needs approval; its gates are:",
		        plan->migration, gate);
		for (i = 0; i < plan->nsteps; i++)
			if (plan->steps[i].kind == ZDM_STEP_GATE &&
			    plan->steps[i].approval)
				fprintf(stderr, " %s", plan->steps[i].gate);
		fputc('\n', stderr);
		free(schema);
		return ZDM_EXIT_USAGE;
	}
	conn = zdm_conn_open(opts->conninfo, "approve", schema, &err);
	free(schema);
	if (conn == NULL) {
		zdm_error_print(&err, stderr);
		return ZDM_EXIT_FAILED;
	}
	if (zdm_journal_ensure(conn, &err) != 0 ||
	    (recorded = zdm_journal_approve(conn, plan->migration, gate, who,
	                                    &err)) < 0) {
		zdm_error_print(&err, stderr);
		goto done;
	}
	if (recorded == 0) {
		/* nothing changed: no event, no history commit */
		printf("gate %s of migration %s was already approved\n", gate,
		       plan->migration);
		rc = ZDM_EXIT_OK;
		goto done;
	}
	printf("gate %s of migration %s approved by %s\n", gate,
	       plan->migration, who);
	{
		char message[512];
		zdm_error ignored;

		snprintf(message, sizeof(message), "%s by %s", gate, who);
		(void)zdm_journal_event(conn, plan->migration, NULL, "approved",
		                        message, &ignored);
	}
	{
		zdm_history *history = NULL;
		zdm_error herr;
		char message[512];

		zdm_error_clear(&herr);
		snprintf(message, sizeof(message), "%s: gate %s approved by %s",
		         plan->migration, gate, who);
		if (zdm_history_open(&history, opts->history_dir,
		                     opts->plan_path, &herr) != 0 ||
		    zdm_history_record(history, conn, plan->migration, message,
		                       &herr) != 0)
			fprintf(stderr,
			        "zdm: warning: not recorded in the git history: %s\n",
			        herr.message);
		zdm_history_close(history);
	}
	rc = ZDM_EXIT_OK;
done:
	PQfinish(conn);
	return rc;
}
