/*
 * backfill.c -- a backfill step: the step's UPDATE over ranges of heap
 * pages, by parallel workers, checkpointed in zdm.backfill.
 *
 * Design.  When the step first starts, the table's size in pages is
 * measured and [0, pages) is cut into one contiguous range per worker; the
 * ranges go into zdm.backfill in one transaction, and from then on the
 * journal, not the options, says how the work is divided: a resume runs one
 * worker per unfinished range, whatever --jobs says.  Pages added after the
 * start hold rows that the sync trigger has already written (inserts, and
 * the new versions of updated rows), so they need no backfill.
 *
 * Invariants.
 *   - A batch is one transaction: BEGIN; SET LOCAL lock_timeout; the
 *     step's UPDATE for pages [lo, hi); the worker's journal row moves from
 *     next_page = lo to hi and adds the rows; COMMIT.  The checkpoint
 *     commits with the work or not at all, so after a crash the journal is
 *     exact: no batch lost, none counted twice.  (Redoing a batch would be
 *     harmless anyway: the step's SQL touches only rows still pending.)
 *   - The journal update requires next_page = lo: a second process running
 *     the same range cannot both commit; the loser fails instead of
 *     counting rows twice.
 *   - Workers share nothing but the run's counters, under one mutex; each
 *     has its own connection, opened by the calling thread before any
 *     batch runs (so a refused connection fails the step before it starts)
 *     and closed by it after every worker is joined.  The control
 *     connection is touched only by the calling thread, and never while a
 *     worker could be in a batch.
 *   - Stopping (an error, an interrupt, max_batches) lets every worker
 *     finish the batch it is in, commit it, and stop; a worker waiting out a
 *     lock backoff or a pause stops at once.  The first error is the one
 *     reported.
 * No global state: two backfills may run in one process.
 */
#include "backfill.h"
#include "progress.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the calling thread wakes to draw progress. */
#define POLL_MS 200
/* Lock backoff: the first retry waits about this long, doubling up to CAP. */
#define BACKOFF_FIRST_MS 50
#define BACKOFF_CAP_MS 2000
/*
 * Batch durations go into a log-scale histogram, buckets 2% wide from
 * 0.01 ms: bounded memory, no allocation in a worker, and percentiles
 * good to 1%, which is all a report needs.
 */
#define LAT_BUCKETS 1200
#define LAT_MIN_MS 0.01
#define LAT_RATIO 1.02
/* Without statistics a worker may grow its batch at most this much at once. */
#define ADAPT_MAX_GROWTH 8

/*
 * Batches are sized by time as well as by rows: a batch holds row locks and
 * its WAL must be flushed before the next client commit can be, so long
 * batches show up as client latency.  The target leaves headroom under the
 * 100 ms that a batch must never exceed on a loaded machine (40 ms left
 * outliers over 100 ms in bench/run.sh on a busy 2-core machine).
 */
#define BATCH_TARGET_MS 30.0

/*
 * Yielding to the application: while client sessions other than zdm's are
 * active, a worker sleeps YIELD_FACTOR times as long as its last batch took
 * (so it uses about 1 / (1 + YIELD_FACTOR) of the time), giving WAL
 * bandwidth, CPU and row locks back to them; with no one else active it
 * runs flat out.  The check is one cheap pg_stat_activity query per batch.
 */
#define YIELD_FACTOR 3.0

/*
 * The table's size now, and its statistics.  pg_relation_size is the main
 * fork as it is, not as of the last VACUUM (relpages), so every page that
 * exists when the step starts is walked.  reltuples is -1 before the first
 * VACUUM or ANALYZE.
 */
static const char SQL_TABLE_SIZE[] =
	"SELECT pg_catalog.pg_relation_size(c.oid)"
	" / pg_catalog.current_setting('block_size')::bigint,"
	" c.reltuples::float8, c.relpages::bigint"
	" FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass";

/*
 * The step's partition.  FOR UPDATE: a resume holds the rows until its
 * decision commits (nothing to decide, but it keeps the read and the insert
 * of a first start one consistent transaction).
 */
static const char SQL_JOURNAL_READ[] =
	"SELECT worker, first_page, end_page, next_page, rows"
	" FROM zdm.backfill WHERE migration = $1 AND step_id = $2"
	" ORDER BY worker FOR UPDATE";

static const char SQL_JOURNAL_INSERT[] =
	"INSERT INTO zdm.backfill (migration, step_id, worker, first_page,"
	" end_page, next_page, rows, relfilenode)"
	" VALUES ($1, $2, $3, $4, $5, $4, 0,"
	" pg_catalog.pg_relation_filenode($6::pg_catalog.regclass))";

/*
 * A partition is a list of page ranges of one physical file.  VACUUM FULL,
 * CLUSTER or pg_repack between two runs write the table anew (a new
 * relfilenode), and rows still pending may then sit in pages the old
 * checkpoints count as done; so a partition made for another file is
 * dropped and the table walked again from its first page (a walk over
 * rows already synced writes nothing).
 */
static const char SQL_JOURNAL_DROP_STALE[] =
	"DELETE FROM zdm.backfill WHERE migration = $1 AND step_id = $2"
	" AND relfilenode IS DISTINCT FROM"
	"     pg_catalog.pg_relation_filenode($3::pg_catalog.regclass)";

/*
 * The checkpoint, in the batch's transaction.  next_page = $6 (the batch's
 * lower bound) makes a concurrent runner of the same range fail rather
 * than double-count; its row lock makes the second one wait for the first.
 */
/*
 * More rows than this that a using cannot convert is not bad data but a
 * bad expression: stop with the first error rather than step over the
 * whole table row by row.
 */
#define BACKFILL_MAX_UNCONVERTED 10000

/* One row of a page, in a savepoint of the page's transaction. */
static const char SQL_ROW_SAVEPOINT[] = "SAVEPOINT zdm_row";
static const char SQL_ROW_RELEASE[] = "RELEASE SAVEPOINT zdm_row";
static const char SQL_ROW_ROLLBACK[] = "ROLLBACK TO SAVEPOINT zdm_row";
/* The most line pointers a heap page can hold (MaxHeapTuplesPerPage):
 * (block size - 24-byte page header) / (24-byte tuple header + 4-byte
 * line pointer). */
static const char SQL_MAX_TUPLES_PER_PAGE[] =
	"SELECT (pg_catalog.current_setting('block_size')::int - 24) / 28";

static const char SQL_JOURNAL_ADVANCE[] =
	"UPDATE zdm.backfill SET next_page = $4, rows = rows + $5"
	" WHERE migration = $1 AND step_id = $2 AND worker = $3"
	" AND next_page = $6"
	" AND relfilenode ="
	"     pg_catalog.pg_relation_filenode($7::pg_catalog.regclass)";

/*
 * Why a checkpoint matched no row: the table was rewritten (VACUUM FULL,
 * CLUSTER, pg_repack) while the backfill ran, so this batch walked page
 * numbers of a file that no longer holds the rows.  The batch's UPDATE holds
 * a lock on the table, so the file cannot change again before it ends.
 */
static const char SQL_JOURNAL_REWRITTEN[] =
	"SELECT 1 FROM zdm.backfill"
	" WHERE migration = $1 AND step_id = $2 AND worker = $3"
	" AND relfilenode IS DISTINCT FROM"
	"     pg_catalog.pg_relation_filenode($4::pg_catalog.regclass)";

typedef struct bf_latency {
	long long count[LAT_BUCKETS];
	long long n;
	double max_ms;
} bf_latency;

struct bf_run;

typedef struct bf_worker {
	struct bf_run *run;
	int number; /* zdm.backfill.worker */
	long long first_page, end_page, next_page;
	long long journal_rows; /* rows the journal had at the start */
	long long pages_per_batch;
	long long
		max_pages_per_batch; /* from batch_size; time never exceeds it */
	double last_batch_ms;
	PGconn *conn;
	pthread_t thread;
	bool started;
	uint64_t rng; /* backoff jitter; per worker, so no shared state */
} bf_worker;

typedef struct bf_run {
	const zdm_step *step;
	const zdm_backfill_opts *opts;
	long batch_size, pause_ms, lock_timeout_ms, lock_retries;
	double tuples_per_page; /* from statistics; 0: unknown */
	char begin_sql[192];
	bf_worker *workers;
	int nworkers;

	pthread_mutex_t lock; /* guards everything below */
	/* broadcast on stop (wakes sleeping workers) and on a worker's exit
	 * (wakes the calling thread) */
	pthread_cond_t cond;
	bool stop;
	bool failed;
	zdm_error err; /* the first failure */
	int running;
	long long claimed; /* batches started, for max_batches */
	long long rows, batches, retries, pages;
	/* rows the step's using could not convert: left pending, for verify
	 * to list (worker_page_rows) */
	long long unconverted;
	bf_latency latency;
} bf_run;

/* ---- small helpers ----------------------------------------------------- */

static void
latency_add(bf_latency *l, double ms)
{
	int b = 0;

	if (ms > LAT_MIN_MS)
		b = (int)(log(ms / LAT_MIN_MS) / log(LAT_RATIO));
	if (b < 0)
		b = 0;
	if (b >= LAT_BUCKETS)
		b = LAT_BUCKETS - 1;
	l->count[b]++;
	l->n++;
	if (ms > l->max_ms)
		l->max_ms = ms;
}

/* The q-quantile (nearest rank), as the middle of its bucket. */
static double
latency_quantile(const bf_latency *l, double q)
{
	long long rank, seen = 0;
	double v;

	if (l->n == 0)
		return 0;
	rank = (long long)ceil(q * (double)l->n);
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < LAT_BUCKETS; b++) {
		seen += l->count[b];
		if (seen >= rank) {
			v = LAT_MIN_MS * pow(LAT_RATIO, b + 0.5);
			return v < l->max_ms ? v : l->max_ms;
		}
	}
	return l->max_ms;
}

static uint64_t
next_random(uint64_t *state)
{
	/* xorshift64* */
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1DULL;
}

/* Backoff before retry number attempt (0-based): exponential, with half of
 * it random so workers that timed out together do not retry together. */
static long
backoff_ms(bf_worker *w, long attempt)
{
	long base = BACKOFF_FIRST_MS;

	for (long i = 0; i < attempt && base < BACKOFF_CAP_MS; i++)
		base *= 2;
	if (base > BACKOFF_CAP_MS)
		base = BACKOFF_CAP_MS;
	return base / 2 +
	       (long)(next_random(&w->rng) % (uint64_t)(base / 2 + 1));
}

static void
deadline_after(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Only the calling thread reads *interrupt (workers run with signals
 * blocked, so a handler never runs in one of them; reading a
 * sig_atomic_t another thread's handler wrote would be a data race).
 * Workers learn of it through run->stop.
 */
static bool
interrupt_requested(const bf_run *run)
{
	return run->opts->interrupt != NULL && *run->opts->interrupt != 0;
}

/* Caller holds run->lock. */
static void
request_stop_locked(bf_run *run)
{
	if (!run->stop) {
		run->stop = true;
		pthread_cond_broadcast(&run->cond);
	}
}

static void
run_fail(bf_run *run, const zdm_error *err)
{
	pthread_mutex_lock(&run->lock);
	if (!run->failed) {
		run->failed = true;
		run->err = *err;
	}
	request_stop_locked(run);
	pthread_mutex_unlock(&run->lock);
}

/* Sleep ms unless the run stops first; returns whether it did. */
static bool
run_sleep(bf_run *run, long ms)
{
	struct timespec deadline;
	bool stopped;

	if (ms <= 0)
		return false;
	deadline_after(&deadline, ms);
	pthread_mutex_lock(&run->lock);
	while (!run->stop) {
		if (pthread_cond_timedwait(&run->cond, &run->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	}
	stopped = run->stop;
	pthread_mutex_unlock(&run->lock);
	return stopped;
}

/* May a worker start another batch?  Counts it against max_batches. */
static bool
run_claim_batch(bf_run *run)
{
	bool ok;

	pthread_mutex_lock(&run->lock);
	if (!run->stop && run->opts->max_batches > 0 &&
	    run->claimed >= run->opts->max_batches)
		request_stop_locked(run);
	ok = !run->stop;
	if (ok)
		run->claimed++;
	pthread_mutex_unlock(&run->lock);
	return ok;
}

static void
run_record_batch(bf_run *run, long long rows, long long pages, double ms)
{
	pthread_mutex_lock(&run->lock);
	run->rows += rows;
	run->pages += pages;
	run->batches++;
	latency_add(&run->latency, ms);
	pthread_mutex_unlock(&run->lock);
}

static void
run_record_retry(bf_run *run)
{
	pthread_mutex_lock(&run->lock);
	run->retries++;
	pthread_mutex_unlock(&run->lock);
}

static void log_line(const bf_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
log_line(const bf_run *run, const char *fmt, ...)
{
	va_list ap;
	FILE *out = run->opts->log;
	char line[1024];
	int n;

	if (out == NULL)
		return;
	/* one fputs per line: workers log at once, and stdio keeps each
	 * call whole, not a vfprintf and its newline */
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n] = '\n';
	line[n + 1] = '\0';
	fputs(line, out);
	fflush(out);
}

/* ---- one batch ----------------------------------------------------------- */

static void
rollback_quietly(PGconn *conn)
{
	if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
	    PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, "ROLLBACK"));
}

/*
 * True (err set, without a SQLSTATE: no statement failed) if the worker's
 * partition was made for another file than the table's.  The batch is
 * rolled back by the caller; the partition stays, and the next run's
 * SQL_JOURNAL_DROP_STALE drops it and walks the new file from page 0.
 */
static bool
batch_table_rewritten(bf_worker *w, zdm_error *err)
{
	const zdm_step *step = w->run->step;
	const char *params[4];
	char worker[16];
	PGresult *res;
	zdm_error ignored;
	bool rewritten;

	snprintf(worker, sizeof(worker), "%d", w->number);
	params[0] = w->run->opts->migration;
	params[1] = step->id;
	params[2] = worker;
	params[3] = step->table;
	if (zdm_conn_query(w->conn, SQL_JOURNAL_REWRITTEN, 4, params, &res,
	                   &ignored) != 0)
		return false;
	rewritten = PQntuples(res) > 0;
	PQclear(res);
	if (rewritten) {
		zdm_error_set(err,
		              "%s was rewritten while the backfill ran (VACUUM "
		              "FULL, CLUSTER, pg_repack); run zdm apply again: "
		              "the backfill starts over on the new file",
		              step->table);
		snprintf(err->detail, sizeof(err->detail),
		         "worker %d's batches walk the page numbers of the "
		         "table's old file; this batch was rolled back",
		         w->number);
	}
	return rewritten;
}

/*
 * Pages [lo, hi) in one transaction with the checkpoint.  *rows: rows the
 * step's UPDATE changed.  On failure the transaction is rolled back.
 */
static int
batch_once(bf_worker *w, long long lo, long long hi, long long *rows,
           zdm_error *err)
{
	bf_run *run = w->run;
	const zdm_step *step = run->step;
	char lo_tid[32], hi_tid[32], worker[16], lo_s[24], hi_s[24], rows_s[24];
	const char *params[7];
	PGresult *res = NULL;

	snprintf(lo_tid, sizeof(lo_tid), "(%lld,0)", lo);
	snprintf(hi_tid, sizeof(hi_tid), "(%lld,0)", hi);
	*rows = 0;

	/* BEGIN and SET LOCAL in one round trip (a simple query may hold
	 * several statements; parameters need one statement each) */
	if (zdm_conn_exec(w->conn, run->begin_sql, err) != 0)
		goto fail;

	params[0] = lo_tid;
	params[1] = hi_tid;
	if (zdm_conn_query(w->conn, step->sql, 2, params, &res, err) != 0)
		goto fail;
	*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);

	snprintf(worker, sizeof(worker), "%d", w->number);
	snprintf(lo_s, sizeof(lo_s), "%lld", lo);
	snprintf(hi_s, sizeof(hi_s), "%lld", hi);
	snprintf(rows_s, sizeof(rows_s), "%lld", *rows);
	params[0] = run->opts->migration;
	params[1] = step->id;
	params[2] = worker;
	params[3] = hi_s;
	params[4] = rows_s;
	params[5] = lo_s;
	params[6] = step->table;
	if (zdm_conn_query(w->conn, SQL_JOURNAL_ADVANCE, 7, params, &res,
	                   err) != 0)
		goto fail;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PQclear(res);
		if (batch_table_rewritten(w, err))
			goto fail;
		zdm_error_set(
			err,
			"the journal of worker %d no longer says page %lld is next",
			w->number, lo);
		snprintf(
			err->detail, sizeof(err->detail),
			"zdm.backfill for migration %s, step %s, worker %d was changed or removed while this run had it",
			run->opts->migration, step->id, w->number);
		snprintf(err->hint, sizeof(err->hint),
		         "is another zdm running this migration?");
		goto fail;
	}
	PQclear(res);

	if (zdm_conn_query(w->conn, "COMMIT", 0, NULL, &res, err) != 0)
		goto fail;
	/* a COMMIT of a failed transaction "succeeds" as ROLLBACK */
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		PQclear(res);
		zdm_error_set(err,
		              "batch of pages %lld..%lld rolled back at commit",
		              lo, hi);
		return -1;
	}
	PQclear(res);
	return 0;

fail:
	*rows = 0;
	rollback_quietly(w->conn);
	return -1;
}

/*
 * Batch size without statistics.  The first batch is one page; after each
 * batch the worker sizes the next from what the last one did, rows
 * updated / pages, which is the work a batch costs (rows the trigger has
 * already synced cost a scan, not a write).  Growth is bounded per batch
 * (a sparse stretch must not make the next, maybe dense, batch huge) and
 * shrinking is immediate.  Rejected alternatives: one page a batch for the
 * whole table (a transaction per ~60 rows: several times slower), and
 * counting tuples in a sample of pages first (an extra scan, and it counts
 * rows already synced, which are not work).
 */
static void
worker_adapt(bf_worker *w, long long pages, long long rows)
{
	const bf_run *run = w->run;
	long long next, cap = w->pages_per_batch * ADAPT_MAX_GROWTH;

	if (run->tuples_per_page > 0)
		return;
	if (rows > 0)
		next = (long long)((double)run->batch_size * (double)pages /
		                   (double)rows);
	else
		next = cap;
	if (next > cap)
		next = cap;
	if (next < 1)
		next = 1;
	w->pages_per_batch = next;
}

/*
 * Keep batches near BATCH_TARGET_MS: shrink at once when one ran long
 * (load, bigger rows, a busy disk), grow back by at most half again per
 * batch, never beyond the size batch_size asks for.
 */
static void
worker_fit_time(bf_worker *w, long long pages, double ms)
{
	long long next = w->pages_per_batch;

	if (ms > BATCH_TARGET_MS * 1.25 && pages > 1)
		next = (long long)((double)pages * BATCH_TARGET_MS / ms);
	else if (ms < BATCH_TARGET_MS * 0.75)
		next = w->pages_per_batch + (w->pages_per_batch + 1) / 2;
	if (w->max_pages_per_batch > 0 && next > w->max_pages_per_batch)
		next = w->max_pages_per_batch;
	if (next < 1)
		next = 1;
	w->pages_per_batch = next;
}

/*
 * An error the data of some row raised in the step's expressions (a
 * using that cannot convert a value: 22P02 'x12'::integer, a division by
 * zero, a RAISE in a function it calls), as opposed to one of the run
 * (locks, connection, cancel) or of the plan.
 */
static bool
backfill_row_error(const zdm_error *err)
{
	return strncmp(err->sqlstate, "22", 2) == 0 ||
	       strncmp(err->sqlstate, "23", 2) == 0 ||
	       strncmp(err->sqlstate, "P0", 2) == 0;
}

/*
 * Page p, whose batch failed on the data of a row: each line pointer in a
 * savepoint of one transaction, with the checkpoint.  A row the step's
 * expressions cannot convert is rolled back to its savepoint and left
 * pending (verify lists it, with the key and the error); the others are
 * written.  0: the page is done; -1: err (a run error, or too many rows).
 */
static int
worker_page_rows(bf_worker *w, long long p, zdm_error *err)
{
	bf_run *run = w->run;
	const zdm_step *step = run->step;
	char lo_tid[40], hi_tid[40], worker[16], lo_s[24], hi_s[24], rows_s[24];
	const char *params[7];
	PGresult *res = NULL;
	long long rows = 0, total;
	int max_tuples;
	zdm_error row_err;

	if (zdm_conn_query(w->conn, SQL_MAX_TUPLES_PER_PAGE, 0, NULL, &res,
	                   err) != 0)
		return -1;
	max_tuples = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (zdm_conn_exec(w->conn, run->begin_sql, err) != 0)
		goto fail;
	for (int i = 1; i <= max_tuples; i++) {
		snprintf(lo_tid, sizeof(lo_tid), "(%lld,%d)", p, i);
		snprintf(hi_tid, sizeof(hi_tid), "(%lld,%d)", p, i + 1);
		params[0] = lo_tid;
		params[1] = hi_tid;
		if (zdm_conn_exec(w->conn, SQL_ROW_SAVEPOINT, err) != 0)
			goto fail;
		if (zdm_conn_query(w->conn, step->sql, 2, params, &res,
		                   &row_err) == 0) {
			rows += strtoll(PQcmdTuples(res), NULL, 10);
			PQclear(res);
			if (zdm_conn_exec(w->conn, SQL_ROW_RELEASE, err) != 0)
				goto fail;
			continue;
		}
		if (!backfill_row_error(&row_err)) {
			*err = row_err;
			goto fail;
		}
		if (zdm_conn_exec(w->conn, SQL_ROW_ROLLBACK, err) != 0)
			goto fail;
		log_line(
			run,
			"%s: row %s of %s left unconverted (verify lists it): %s "
			"(SQLSTATE %s)",
			step->id, lo_tid, step->table, row_err.message,
			row_err.sqlstate);
		pthread_mutex_lock(&run->lock);
		total = ++run->unconverted;
		pthread_mutex_unlock(&run->lock);
		if (total > BACKFILL_MAX_UNCONVERTED) {
			*err = row_err;
			snprintf(err->hint, sizeof(err->hint),
			         "more than %d rows of %s fail the same way: "
			         "check the using expression, fix it, zdm "
			         "rollback and compile again",
			         BACKFILL_MAX_UNCONVERTED, step->table);
			goto fail;
		}
	}
	snprintf(worker, sizeof(worker), "%d", w->number);
	snprintf(lo_s, sizeof(lo_s), "%lld", p);
	snprintf(hi_s, sizeof(hi_s), "%lld", p + 1);
	snprintf(rows_s, sizeof(rows_s), "%lld", rows);
	params[0] = run->opts->migration;
	params[1] = step->id;
	params[2] = worker;
	params[3] = hi_s;
	params[4] = rows_s;
	params[5] = lo_s;
	params[6] = step->table;
	if (zdm_conn_query(w->conn, SQL_JOURNAL_ADVANCE, 7, params, &res,
	                   err) != 0)
		goto fail;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PQclear(res);
		zdm_error_set(
			err,
			"the journal of worker %d no longer says page %lld is next",
			w->number, p);
		goto fail;
	}
	PQclear(res);
	if (zdm_conn_exec(w->conn, "COMMIT", err) != 0)
		goto fail;
	run_record_batch(run, rows, 1, 0.0);
	w->next_page = p + 1;
	return 0;
fail:
	rollback_quietly(w->conn);
	return -1;
}

/* Other client sessions busy right now (not zdm's): the application. */
static bool
worker_clients_active(bf_worker *w)
{
	PGresult *res = PQexec(
		w->conn,
		"SELECT count(*) FROM pg_catalog.pg_stat_activity"
		" WHERE backend_type = 'client backend' AND state = 'active'"
		"   AND pid <> pg_catalog.pg_backend_pid()"
		"   AND application_name NOT LIKE 'zdm %'");
	bool active = PQresultStatus(res) == PGRES_TUPLES_OK &&
	              PQntuples(res) == 1 &&
	              strcmp(PQgetvalue(res, 0, 0), "0") != 0;

	PQclear(res);
	return active;
}

/*
 * One batch with its lock retries.  0: committed; 1: the run stopped while
 * this worker waited to retry (nothing committed, nothing wrong); -1: err.
 */
static int
worker_batch(bf_worker *w, long long lo, long long hi, zdm_error *err)
{
	bf_run *run = w->run;
	long long rows;
	double t0;

	for (long attempt = 0;; attempt++) {
		t0 = zdm_now();
		if (batch_once(w, lo, hi, &rows, err) == 0) {
			run_record_batch(run, rows, hi - lo,
			                 (zdm_now() - t0) * 1000.0);
			w->last_batch_ms = (zdm_now() - t0) * 1000.0;
			worker_adapt(w, hi - lo, rows);
			worker_fit_time(w, hi - lo, w->last_batch_ms);
			w->next_page = hi;
			return 0;
		}
		if (zdm_error_is_statement_timeout(err) && hi - lo > 1) {
			/* Too big for the plan's statement_timeout (nothing
			 * committed): halve it, at once, and never grow past
			 * what fitted.  A single page that does not fit stops
			 * the run with the hint that names the option. */
			hi = lo + (hi - lo) / 2;
			w->pages_per_batch = hi - lo;
			w->max_pages_per_batch = hi - lo;
			log_line(
				run,
				"%s: worker %d: a batch ran into statement_timeout; "
				"batches of %lld pages from now on",
				run->step->id, w->number, hi - lo);
			attempt--;
			continue;
		}
		if (backfill_row_error(err)) {
			/* a row's data: the pages one by one, and the page
			 * that fails row by row (worker_page_rows) */
			if (hi - lo == 1)
				return worker_page_rows(w, lo, err);
			for (long long p = lo; p < hi; p++) {
				int rc = worker_batch(w, p, p + 1, err);

				if (rc != 0)
					return rc;
			}
			return 0;
		}
		if (!zdm_error_is_lock_conflict(err))
			return -1;
		if (attempt >= run->lock_retries) {
			zdm_error cause = *err;

			zdm_error_set(
				err,
				"pages %lld..%lld of %s: %s, and %ld retries did not get past it",
				lo, hi, run->step->table, cause.message,
				run->lock_retries);
			snprintf(err->sqlstate, sizeof(err->sqlstate), "%s",
			         ZDM_SQLSTATE_LOCK_NOT_AVAILABLE);
			snprintf(err->detail, sizeof(err->detail), "%s",
			         cause.detail);
			snprintf(
				err->hint, sizeof(err->hint),
				"another session holds locks on these rows; run again later (the backfill resumes where it stopped), or raise lock_retries or lock_timeout");
			return -1;
		}
		run_record_retry(run);
		if (run_sleep(run, backoff_ms(w, attempt)))
			return 1;
	}
}

static void *
worker_main(void *arg)
{
	bf_worker *w = arg;
	bf_run *run = w->run;
	zdm_error err;
	int rc = 0;

	zdm_error_clear(&err);
	while (w->next_page < w->end_page) {
		long long lo = w->next_page, hi;

		hi = w->end_page - lo > w->pages_per_batch
		             ? lo + w->pages_per_batch
		             : w->end_page;
		if (!run_claim_batch(run))
			break;
		rc = worker_batch(w, lo, hi, &err);
		if (rc != 0)
			break;
		if (w->next_page < w->end_page && run->opts->yield_to_clients &&
		    worker_clients_active(w) &&
		    run_sleep(run, (long)(w->last_batch_ms * YIELD_FACTOR)))
			break;
		if (w->next_page < w->end_page && run_sleep(run, run->pause_ms))
			break;
	}
	if (rc < 0) {
		log_line(run, "%s: worker %d: pages %lld.. failed: %s",
		         run->step->id, w->number, w->next_page, err.message);
		run_fail(run, &err);
	}
	pthread_mutex_lock(&run->lock);
	run->running--;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

/* ---- start or resume ------------------------------------------------------- */

typedef struct bf_table {
	long long pages;
	double reltuples; /* < 0: unknown */
	long long relpages;
} bf_table;

static int
table_measure(PGconn *control, const zdm_step *step, bf_table *t,
              zdm_error *err)
{
	const char *params[1] = {step->table};
	PGresult *res;

	if (zdm_conn_query(control, SQL_TABLE_SIZE, 1, params, &res, err) != 0)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		zdm_error_set(err, "table %s not found", step->table);
		return -1;
	}
	t->pages = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	t->reltuples = strtod(PQgetvalue(res, 0, 1), NULL);
	t->relpages = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	return 0;
}

/*
 * Read the step's partition, or create it: [0, pages) in nworkers
 * contiguous ranges (no more ranges than pages; an empty table gets one
 * empty range, so the journal shows the step started and was complete).
 * One transaction, so a partition is recorded whole or not at all.
 */
static int
journal_load_or_create(PGconn *control, bf_run *run, long long pages,
                       bf_worker **out, int *nout, bool *resumed,
                       zdm_error *err)
{
	const zdm_step *step = run->step;
	const char *params[6];
	char worker_s[16], first_s[24], end_s[24];
	PGresult *res = NULL;
	bf_worker *w = NULL;
	int n = 0, jobs;

	*out = NULL;
	*nout = 0;
	if (zdm_conn_exec(control, "BEGIN", err) != 0)
		return -1;
	params[0] = run->opts->migration;
	params[1] = step->id;
	params[2] = step->table;
	if (zdm_conn_query(control, SQL_JOURNAL_DROP_STALE, 3, params, &res,
	                   err) != 0)
		goto fail;
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_line(run,
		         "%s: %s was rewritten since the backfill started "
		         "(VACUUM FULL, CLUSTER or the like): walking it again",
		         step->id, step->table);
	PQclear(res);
	res = NULL;
	if (zdm_conn_query(control, SQL_JOURNAL_READ, 2, params, &res, err) !=
	    0)
		goto fail;
	n = PQntuples(res);
	*resumed = n > 0;
	if (n > 0) {
		w = calloc((size_t)n, sizeof(*w));
		if (w == NULL) {
			PQclear(res);
			zdm_error_set(err, "out of memory");
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			w[i].number = atoi(PQgetvalue(res, i, 0));
			w[i].first_page =
				strtoll(PQgetvalue(res, i, 1), NULL, 10);
			w[i].end_page =
				strtoll(PQgetvalue(res, i, 2), NULL, 10);
			w[i].next_page =
				strtoll(PQgetvalue(res, i, 3), NULL, 10);
			w[i].journal_rows =
				strtoll(PQgetvalue(res, i, 4), NULL, 10);
			if (w[i].first_page > w[i].next_page ||
			    w[i].next_page > w[i].end_page) {
				zdm_error_set(
					err,
					"zdm.backfill row of worker %d is inconsistent: pages %lld..%lld, next %lld",
					w[i].number, w[i].first_page,
					w[i].end_page, w[i].next_page);
				PQclear(res);
				goto fail;
			}
		}
		PQclear(res);
		res = NULL;
	} else {
		PQclear(res);
		res = NULL;
		jobs = run->opts->jobs;
		if ((long long)jobs > pages)
			jobs = pages > 0 ? (int)pages : 1;
		w = calloc((size_t)jobs, sizeof(*w));
		if (w == NULL) {
			zdm_error_set(err, "out of memory");
			goto fail;
		}
		for (int i = 0; i < jobs; i++) {
			w[i].number = i;
			w[i].first_page = pages * i / jobs;
			w[i].end_page = pages * (i + 1) / jobs;
			w[i].next_page = w[i].first_page;
			snprintf(worker_s, sizeof(worker_s), "%d", i);
			snprintf(first_s, sizeof(first_s), "%lld",
			         w[i].first_page);
			snprintf(end_s, sizeof(end_s), "%lld", w[i].end_page);
			params[2] = worker_s;
			params[3] = first_s;
			params[4] = end_s;
			params[5] = step->table;
			if (zdm_conn_query(control, SQL_JOURNAL_INSERT, 6,
			                   params, &res, err) != 0)
				goto fail;
			PQclear(res);
			res = NULL;
		}
		n = jobs;
	}
	if (zdm_conn_exec(control, "COMMIT", err) != 0)
		goto fail;
	*out = w;
	*nout = n;
	return 0;

fail:
	free(w);
	rollback_quietly(control);
	return -1;
}

/* ---- the calling thread ----------------------------------------------------- */

/* What the journal held when this run started, for progress. */
typedef struct bf_before {
	long long rows, pages, pages_total;
} bf_before;

/* Caller holds run->lock. */
static void
sample_locked(const bf_run *run, const bf_before *before, const bf_table *t,
              double elapsed, zdm_progress_sample *s)
{
	s->rows_done = before->rows + run->rows;
	s->pages_done = before->pages + run->pages;
	s->pages_total = before->pages_total;
	s->rate = elapsed > 0 ? (double)run->rows / elapsed : 0;
	/* the ETA counts pages: their total is exact, the rows' is not */
	s->eta_seconds = run->pages > 0
	                         ? (double)(s->pages_total - s->pages_done) *
	                                   elapsed / (double)run->pages
	                         : -1;
	if (t->reltuples >= 0)
		s->rows_total = (long long)t->reltuples;
	else if (s->pages_done > 0)
		s->rows_total = (long long)((double)s->rows_done *
		                            (double)s->pages_total /
		                            (double)s->pages_done);
	else
		s->rows_total = -1;
	if (s->rows_total >= 0 && s->rows_total < s->rows_done)
		s->rows_total = s->rows_done;
}

static void
fill_stats(const bf_run *run, double started, zdm_backfill_stats *stats)
{
	stats->rows = run->rows;
	stats->batches = run->batches;
	stats->retries = run->retries;
	stats->unconverted = run->unconverted;
	stats->seconds = zdm_now() - started;
	stats->batch_ms_p50 = latency_quantile(&run->latency, 0.50);
	stats->batch_ms_p99 = latency_quantile(&run->latency, 0.99);
	stats->batch_ms_max = run->latency.max_ms;
}

static int
check_arguments(PGconn *control, const zdm_step *step,
                const zdm_backfill_opts *opts, zdm_error *err)
{
	if (step->kind != ZDM_STEP_BACKFILL || step->sql == NULL ||
	    step->table == NULL) {
		zdm_error_set(err, "not a backfill step with a table and sql");
		return -1;
	}
	if (step->key == NULL || strcmp(step->key, "ctid") != 0) {
		zdm_error_set(err, "backfill key \"%s\" is not supported",
		              step->key ? step->key : "");
		snprintf(err->hint, sizeof(err->hint),
		         "this zdm knows key: ctid (plan format 1)");
		return -1;
	}
	if (opts->migration == NULL || opts->jobs < 1) {
		zdm_error_set(
			err, "backfill needs a migration and at least one job");
		return -1;
	}
	if (PQtransactionStatus(control) != PQTRANS_IDLE) {
		zdm_error_set(err, "the control connection is not idle");
		return -1;
	}
	return 0;
}

/* Wait for the workers, drawing progress; forwards an interrupt. */
static void
watch_workers(bf_run *run, const bf_before *before, const bf_table *t,
              double started)
{
	const zdm_backfill_opts *opts = run->opts;
	zdm_progress progress;
	zdm_progress_sample s;
	struct timespec deadline;
	bool more = true;

	zdm_progress_init(&progress, run->step->id,
	                  opts->progress_tty ? stderr : NULL, opts->log,
	                  zdm_now());
	while (more) {
		deadline_after(&deadline, POLL_MS);
		pthread_mutex_lock(&run->lock);
		while (run->running > 0 &&
		       pthread_cond_timedwait(&run->cond, &run->lock,
		                              &deadline) != ETIMEDOUT)
			;
		if (interrupt_requested(run))
			request_stop_locked(run);
		more = run->running > 0;
		sample_locked(run, before, t, zdm_now() - started, &s);
		pthread_mutex_unlock(&run->lock);
		if (more)
			zdm_progress_update(&progress, &s, zdm_now());
	}
	s.eta_seconds = -1;
	zdm_progress_finish(&progress, &s);
}

/* The run's mutex, and a condition variable on the monotonic clock (the
 * waits must not jump with the wall clock). */
static int
sync_init(bf_run *run, zdm_error *err)
{
	pthread_condattr_t attr;
	int rc = -1;

	if (pthread_condattr_init(&attr) != 0) {
		zdm_error_set(err, "cannot initialize a condition variable");
		return -1;
	}
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&run->cond, &attr) != 0) {
		zdm_error_set(err, "cannot initialize a condition variable");
	} else if (pthread_mutex_init(&run->lock, NULL) != 0) {
		pthread_cond_destroy(&run->cond);
		zdm_error_set(err, "cannot initialize a mutex");
	} else {
		rc = 0;
	}
	pthread_condattr_destroy(&attr);
	return rc;
}

int
zdm_backfill_run(PGconn *control, const zdm_step *step,
                 const zdm_backfill_opts *opts, zdm_backfill_stats *stats,
                 zdm_error *err)
{
	double started = zdm_now();
	bf_run *run = NULL;
	bf_table table;
	bf_before before = {0, 0, 0};
	sigset_t all_signals, old_mask;
	bool sync_ready = false, resumed = false;
	long long pages_per_batch, left = 0;
	int rc = -1, unfinished = 0;

	memset(stats, 0, sizeof(*stats));
	zdm_error_clear(err);
	if (check_arguments(control, step, opts, err) != 0)
		goto done;
	run = calloc(1, sizeof(*run));
	if (run == NULL) {
		zdm_error_set(err, "out of memory");
		goto done;
	}
	run->step = step;
	run->opts = opts;
	run->batch_size =
		opts->batch_size > 0 ? opts->batch_size : step->batch_size;
	if (run->batch_size < 1)
		run->batch_size = 1;
	run->pause_ms =
		opts->pause_ms >= 0 ? opts->pause_ms : step->batch_pause_ms;
	run->lock_timeout_ms = opts->lock_timeout_ms > 0
	                               ? opts->lock_timeout_ms
	                               : step->lock_timeout_ms;
	run->lock_retries = opts->lock_retries > 0 ? opts->lock_retries : 0;
	/* READ COMMITTED whatever the role's default: each statement sees
	 * the rows committed before it, so a batch never fails on a
	 * serialization error against the application's writes */
	/* synchronous_commit off: a batch and its checkpoint commit in one
	 * transaction, so a server crash can only lose both together, and the
	 * resumed backfill redoes the batch (it writes only rows still
	 * pending).  What it saves is a synchronous flush of the batch's
	 * megabytes of WAL at every commit. */
	snprintf(
		run->begin_sql, sizeof(run->begin_sql),
		"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = "
		"'%ldms'; SET LOCAL synchronous_commit = off",
		run->lock_timeout_ms);

	if (table_measure(control, step, &table, err) != 0)
		goto done;
	if (journal_load_or_create(control, run, table.pages, &run->workers,
	                           &run->nworkers, &resumed, err) != 0)
		goto done;
	for (int i = 0; i < run->nworkers; i++) {
		const bf_worker *w = &run->workers[i];

		before.rows += w->journal_rows;
		before.pages += w->next_page - w->first_page;
		before.pages_total += w->end_page - w->first_page;
		if (w->next_page < w->end_page)
			unfinished++;
	}
	left = before.pages_total - before.pages;

	/* rows per page from the statistics when there are any (see
	 * worker_adapt for what happens when there are none) */
	if (table.reltuples > 0 && table.relpages > 0)
		run->tuples_per_page = table.reltuples / (double)table.relpages;
	pages_per_batch = run->tuples_per_page > 0
	                          ? (long long)((double)run->batch_size /
	                                        run->tuples_per_page)
	                          : 1;
	if (pages_per_batch < 1)
		pages_per_batch = 1;

	if (unfinished == 0 && resumed)
		log_line(run, "%s: %s: all %lld pages already done", step->id,
		         step->table, before.pages_total);
	else if (unfinished == 0)
		log_line(run, "%s: %s is empty: nothing to backfill", step->id,
		         step->table);
	else if (run->tuples_per_page > 0)
		log_line(
			run,
			"%s: %s %s: %lld of %lld pages left, %d worker%s, %lld pages a batch (%.1f rows a page)",
			step->id, resumed ? "resuming" : "starting",
			step->table, left, before.pages_total, unfinished,
			unfinished == 1 ? "" : "s", pages_per_batch,
			run->tuples_per_page);
	else
		log_line(
			run,
			"%s: %s %s: %lld of %lld pages left, %d worker%s, batch size measured as it goes (no statistics)",
			step->id, resumed ? "resuming" : "starting",
			step->table, left, before.pages_total, unfinished,
			unfinished == 1 ? "" : "s");
	if (resumed && opts->jobs != run->nworkers)
		log_line(
			run,
			"%s: the journal's partition has %d workers; keeping it (jobs %d applies to a fresh start)",
			step->id, run->nworkers, opts->jobs);
	if (unfinished == 0) {
		rc = 0;
		goto done;
	}

	if (sync_init(run, err) != 0)
		goto done;
	sync_ready = true;

	for (int i = 0; i < run->nworkers; i++) {
		bf_worker *w = &run->workers[i];

		if (w->next_page >= w->end_page)
			continue;
		w->conn = zdm_conn_open(opts->conninfo, "backfill",
		                        opts->schema, err);
		if (w->conn == NULL)
			goto done;
	}
	/* threads inherit the signal mask: signals go to the caller's
	 * threads, where a handler may set *interrupt */
	sigfillset(&all_signals);
	pthread_sigmask(SIG_BLOCK, &all_signals, &old_mask);
	for (int i = 0; i < run->nworkers; i++) {
		bf_worker *w = &run->workers[i];

		if (w->conn == NULL)
			continue;
		w->run = run;
		w->pages_per_batch = pages_per_batch;
		w->max_pages_per_batch =
			run->tuples_per_page > 0 ? pages_per_batch : 0;
		w->rng = ((uint64_t)(zdm_now() * 1e9) ^
		          (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL) |
		         1;
		pthread_mutex_lock(&run->lock);
		run->running++;
		pthread_mutex_unlock(&run->lock);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			zdm_error e;

			zdm_error_set(&e, "cannot start backfill worker %d",
			              w->number);
			pthread_mutex_lock(&run->lock);
			run->running--;
			pthread_mutex_unlock(&run->lock);
			run_fail(run, &e);
			break;
		}
		w->started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

	watch_workers(run, &before, &table, started);
	for (int i = 0; i < run->nworkers; i++)
		if (run->workers[i].started)
			pthread_join(run->workers[i].thread, NULL);

	left = 0;
	for (int i = 0; i < run->nworkers; i++)
		left += run->workers[i].end_page - run->workers[i].next_page;
	if (run->failed) {
		*err = run->err;
	} else if (left > 0) {
		zdm_error_set(
			err,
			"backfill stopped with %lld pages left, after %lld batches of this run",
			left, run->batches);
		snprintf(err->hint, sizeof(err->hint),
		         "run it again to resume where it stopped");
		rc = 1;
	} else {
		rc = 0;
	}

done:
	if (run != NULL) {
		fill_stats(run, started, stats);
		for (int i = 0; i < run->nworkers; i++)
			if (run->workers[i].conn != NULL)
				PQfinish(run->workers[i].conn);
		if (sync_ready) {
			pthread_cond_destroy(&run->cond);
			pthread_mutex_destroy(&run->lock);
		}
		free(run->workers);
		free(run);
	} else {
		stats->seconds = zdm_now() - started;
	}
	if (rc != 0 && step != NULL && step->id != NULL)
		snprintf(err->step, sizeof(err->step), "%s", step->id);
	return rc;
}
