/*
 * backfill_driver.c -- zdm_backfill_driver: one backfill step, alone.
 *
 *   zdm_backfill_driver --db CONNINFO PLAN STEP_ID --jobs N
 *                       [--batch-size N] [--pause-ms MS]
 *                       [--lock-timeout-ms MS] [--lock-retries N]
 *                       [--stop-after-batches K] [--schema S] [--log]
 *                       [--bar]
 *
 * A test harness for runtime/backfill.c, as tests/runtime/backfill_test.sh
 * uses it: it creates the journal (zdm_journal_init) and the migration's
 * and step's rows the journal's foreign keys want, then calls
 * zdm_backfill_run as the runner would, and prints one line of stats:
 *
 *   backfill STEP: rows=N batches=N retries=N seconds=S rows_per_s=R
 *   p50_ms=X p99_ms=Y max_ms=Z
 *
 * (one line).  SIGINT and SIGTERM ask the backfill to stop after the
 * batches in flight.  --log writes the progress lines to stdout; --bar
 * draws the terminal's progress bar on stderr (terminal or not).
 * Options default to the step's values; --lock-retries to the plan's.
 *
 * Exit status: 0 every page done; 3 stopped safely (--stop-after-batches,
 * a signal, or lock retries ran out: SQLSTATE 55P03 on stderr); 1 any other
 * failure; 2 usage, plan or connection errors.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "journal.h"
#include "plan_read.h"
#include "zdm.h"

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
usage(FILE *out)
{
	fputs("usage: zdm_backfill_driver --db CONNINFO PLAN STEP_ID --jobs N\n",
	      out);
	fputs("           [--batch-size N] [--pause-ms MS] [--lock-timeout-ms MS]\n",
	      out);
	fputs("           [--lock-retries N] [--stop-after-batches K] [--schema S]\n",
	      out);
	fputs("           [--log] [--bar]\n", out);
}

static int
parse_long(const char *s, long *out)
{
	char *end;

	*out = strtol(s, &end, 10);
	return s[0] != '\0' && *end == '\0' ? 0 : -1;
}

/* zdm_journal_init's IF NOT EXISTS notices are noise in a test's output. */
static void
quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The rows zdm.backfill's foreign key needs: the migration and the step. */
static int
journal_prepare(PGconn *conn, const zdm_plan *plan, const zdm_step *step,
                size_t position, zdm_error *err)
{
	char pos[24];
	const char *params[4];
	PGresult *res;

	if (zdm_journal_init(conn, err) != 0)
		return -1;
	params[0] = plan->migration;
	params[1] = plan->plan_sha256 ? plan->plan_sha256 : "";
	if (zdm_conn_query(
		    conn,
		    "INSERT INTO zdm.migrations (migration, plan_sha256, plan, state) VALUES ($1, $2, '', 'running') ON CONFLICT DO NOTHING",
		    2, params, &res, err) != 0)
		return -1;
	PQclear(res);
	snprintf(pos, sizeof(pos), "%zu", position);
	params[1] = step->id;
	params[2] = pos;
	params[3] = step->phase;
	if (zdm_conn_query(
		    conn,
		    "INSERT INTO zdm.steps (migration, step_id, position, phase, state) VALUES ($1, $2, $3, $4, 'running') ON CONFLICT DO NOTHING",
		    4, params, &res, err) != 0)
		return -1;
	PQclear(res);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL, *path = NULL, *step_id = NULL;
	const char *schema = "public";
	long jobs = 0, batch_size = 0, pause_ms = -1, lock_timeout_ms = 0;
	long lock_retries = -1, stop_after = 0;
	bool log = false, bar = false;
	zdm_plan *plan = NULL;
	const zdm_step *step = NULL;
	size_t position = 0;
	PGconn *conn = NULL;
	zdm_backfill_opts opts;
	zdm_backfill_stats stats;
	zdm_error err;
	struct sigaction sa;
	char errbuf[1024];
	int rc, status = 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long *num = NULL;

		if (strcmp(a, "--log") == 0) {
			log = true;
			continue;
		}
		if (strcmp(a, "--bar") == 0) {
			bar = true;
			continue;
		}
		if (a[0] != '-' || a[1] != '-') {
			if (path == NULL)
				path = a;
			else if (step_id == NULL)
				step_id = a;
			else
				goto usage;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(a, "--db") == 0) {
			conninfo = argv[++i];
			continue;
		}
		if (strcmp(a, "--schema") == 0) {
			schema = argv[++i];
			continue;
		}
		if (strcmp(a, "--jobs") == 0)
			num = &jobs;
		else if (strcmp(a, "--batch-size") == 0)
			num = &batch_size;
		else if (strcmp(a, "--pause-ms") == 0)
			num = &pause_ms;
		else if (strcmp(a, "--lock-timeout-ms") == 0)
			num = &lock_timeout_ms;
		else if (strcmp(a, "--lock-retries") == 0)
			num = &lock_retries;
		else if (strcmp(a, "--stop-after-batches") == 0)
			num = &stop_after;
		if (num == NULL || parse_long(argv[++i], num) != 0)
			goto usage;
	}
	if (conninfo == NULL || path == NULL || step_id == NULL || jobs < 1)
		goto usage;

	if (zdm_plan_load(&plan, path, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "zdm_backfill_driver: %s\n", errbuf);
		return 2;
	}
	for (size_t i = 0; i < plan->nsteps; i++) {
		if (strcmp(plan->steps[i].id, step_id) == 0) {
			step = &plan->steps[i];
			position = i + 1;
		}
	}
	if (step == NULL || step->kind != ZDM_STEP_BACKFILL) {
		fprintf(stderr,
		        "zdm_backfill_driver: %s: no backfill step %s\n", path,
		        step_id);
		goto out;
	}
	conn = zdm_conn_open(conninfo, "backfill driver", schema, &err);
	if (conn != NULL)
		PQsetNoticeProcessor(conn, quiet_notices, NULL);
	if (conn == NULL || journal_prepare(conn, plan, step, position, &err)) {
		zdm_error_print(&err, stderr);
		goto out;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	memset(&opts, 0, sizeof(opts));
	opts.conninfo = conninfo;
	opts.schema = schema;
	opts.migration = plan->migration;
	opts.jobs = (int)jobs;
	opts.batch_size = batch_size > 0 ? batch_size : step->batch_size;
	opts.pause_ms = pause_ms >= 0 ? pause_ms : step->batch_pause_ms;
	opts.lock_timeout_ms =
		lock_timeout_ms > 0 ? lock_timeout_ms : step->lock_timeout_ms;
	opts.lock_retries =
		lock_retries >= 0 ? lock_retries : plan->lock_retries;
	opts.progress_tty = bar;
	opts.log = log ? stdout : NULL;
	opts.interrupt = &interrupted;
	opts.max_batches = stop_after;

	rc = zdm_backfill_run(conn, step, &opts, &stats, &err);
	printf("backfill %s: rows=%lld batches=%lld retries=%lld seconds=%.3f rows_per_s=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
	       step->id, stats.rows, stats.batches, stats.retries,
	       stats.seconds,
	       stats.seconds > 0 ? (double)stats.rows / stats.seconds : 0.0,
	       stats.batch_ms_p50, stats.batch_ms_p99, stats.batch_ms_max);
	fflush(stdout);
	if (rc == 0) {
		status = 0;
	} else {
		zdm_error_print(&err, stderr);
		status = rc > 0 || strcmp(err.sqlstate,
		                          ZDM_SQLSTATE_LOCK_NOT_AVAILABLE) == 0
		                 ? 3
		                 : 1;
	}
out:
	if (conn != NULL)
		PQfinish(conn);
	zdm_plan_free(plan);
	return status;

usage:
	usage(stderr);
	return 2;
}
