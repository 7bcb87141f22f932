/*
 * verify_pass.c -- a table's counting checks in one pass over its pages
 * (verify_pass.h says what the counts mean).
 *
 * Design.  The table's size in pages is measured once; ranges of pages are
 * handed out from the first page on, each to the next idle connection, as
 * one statement:
 *
 *   SELECT count(*) FILTER (WHERE <check 1's count_where>), ...
 *     FROM <table> WHERE ctid >= $1 AND ctid < $2
 *
 * a TID range scan (PostgreSQL 14 and later) that reads those pages and
 * nothing else.  After the measured pages, one open-ended range counts the
 * rows on pages added since (usually none).  One thread drives every
 * connection with libpq's asynchronous calls and poll(): the connections
 * share nothing, and the counts are summed where the results arrive.
 *
 * Sizing.  A range is sized by time: the first ones are small, and each
 * next one from the last one's rate, aiming at RANGE_TARGET_MS, or a small
 * part of the statement_timeout when that is shorter.  A range the server
 * still cancels for statement_timeout (57014) is cut in half and both
 * halves go back in the queue; a one-page range that is cancelled is an
 * error, with conn.c's hint naming the option.  A lock timeout (the scan
 * queues behind an ALTER TABLE waiting for its lock) retries the range
 * with backoff, up to lock_retries.
 *
 * One snapshot.  Every range is read in one MVCC snapshot, exported by a
 * connection that only holds it (SQL_EXPORT) and imported by each counting
 * connection's REPEATABLE READ transaction (SQL_IMPORT): a row that an
 * update moves between pages while the pass runs is then seen exactly
 * once, where the snapshot has it, and the counts are those of one
 * statement over the table.  (With a snapshot per range, a bad row moved
 * from a page not yet read to one already read was counted nowhere: a
 * false pass.)  A range that fails (statement_timeout, a lock timeout)
 * aborts its connection's transaction: the connection rolls back and
 * imports the snapshot again before its next range.  The snapshot is
 * held for the pass, as one statement over the table would hold its own.
 *
 * Must not: write anything, or touch the runner's connection after the
 * measurement.
 */
#include "verify_pass.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* A range's aimed duration: long enough that the per-statement cost is
 * small, short enough that statement_timeout has room and a range never
 * holds its snapshot long. */
#define RANGE_TARGET_MS 250.0
/* The first range of each connection, before any rate is known. */
#define RANGE_FIRST_PAGES 128LL
/* A range grows at most this much over the last one. */
#define RANGE_MAX_GROWTH 8
/* The block number no page reaches: the open end of the last range. */
#define PAGE_END 4294967295LL
#define POLL_MS 200
#define BACKOFF_FIRST_MS 50
#define BACKOFF_CAP_MS 2000

/* The snapshot every range is read in: exported by a transaction that
 * only holds it, imported by each counting connection. */
static const char SQL_EXPORT_BEGIN[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
static const char SQL_EXPORT[] = "SELECT pg_catalog.pg_export_snapshot()";
static const char SQL_IMPORT_BEGIN[] =
	"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/* SET takes no parameter: the server's own snapshot name, as a literal */
static const char SQL_IMPORT_FMT[] = "SET TRANSACTION SNAPSHOT '%s'";
static const char SQL_ROLLBACK[] = "ROLLBACK";

/* The table's size now, in pages (pg_relation_size: every page it has,
 * not relpages as of the last VACUUM). */
static const char SQL_TABLE_PAGES[] =
	"SELECT pg_catalog.pg_relation_size($1::pg_catalog.regclass)"
	" / pg_catalog.current_setting('block_size')::bigint";

typedef struct vp_range {
	long long lo, hi; /* pages [lo, hi); hi == PAGE_END: open */
	long attempts;    /* lock timeouts met so far */
} vp_range;

typedef struct vp_conn {
	PGconn *conn;
	bool busy;
	vp_range range;
	double started;       /* zdm_now() when the range was sent */
	double ms_per_page;   /* the last range's rate; 0: none yet */
	long long last_pages; /* the last range's size */
} vp_conn;

typedef struct vp_pass {
	const zdm_verify_pass_opts *opts;
	char snapshot[64]; /* pg_export_snapshot()'s name */
	size_t n;
	long long *counts;
	char *sql;
	long long pages;     /* measured at the start */
	long long next_page; /* the first page no range has claimed */
	bool open_end_sent;  /* the last, open-ended range is claimed */
	/* ranges to run again (cut after a timeout, or after a lock
	 * timeout), before any new one */
	vp_range *retry;
	size_t nretry, cap_retry;
	zdm_verify_pass_stats *stats;
} vp_pass;

/* The pass's statement: one count per check, over a range of pages. */
static char *
pass_sql(const zdm_step *const *steps, size_t n)
{
	zdm_strbuf b = {0};

	zdm_strbuf_puts(&b, "SELECT ");
	for (size_t i = 0; i < n; i++)
		zdm_strbuf_printf(&b, "%scount(*) FILTER (WHERE (%s))",
		                  i ? ",\n       " : "", steps[i]->count_where);
	zdm_strbuf_printf(&b,
	                  "\n  FROM %s"
	                  "\n WHERE ctid >= $1::pg_catalog.tid"
	                  " AND ctid < $2::pg_catalog.tid",
	                  steps[0]->table);
	if (b.failed) {
		zdm_strbuf_free(&b);
		return NULL;
	}
	return b.data;
}

static int
pass_push_retry(vp_pass *p, vp_range range, zdm_error *err)
{
	if (p->nretry == p->cap_retry) {
		size_t cap = p->cap_retry ? 2 * p->cap_retry : 8;
		vp_range *grown = realloc(p->retry, cap * sizeof(*grown));

		if (grown == NULL) {
			zdm_error_set(err, "out of memory");
			return -1;
		}
		p->retry = grown;
		p->cap_retry = cap;
	}
	p->retry[p->nretry++] = range;
	return 0;
}

/* The next range for c, or false when every page is claimed. */
static bool
pass_claim(vp_pass *p, vp_conn *c, vp_range *out)
{
	double target = RANGE_TARGET_MS;
	long long size;

	if (p->nretry > 0) {
		*out = p->retry[--p->nretry];
		return true;
	}
	if (p->next_page >= p->pages) {
		if (p->open_end_sent)
			return false;
		/* the pages added since the measurement, usually none */
		out->lo = p->pages;
		out->hi = PAGE_END;
		out->attempts = 0;
		p->open_end_sent = true;
		return true;
	}
	/* a small part of the statement_timeout: a slower range (a busy
	 * server, a page of wide rows) still fits */
	if (p->opts->statement_timeout_ms > 0 &&
	    p->opts->statement_timeout_ms / 8.0 < target)
		target = p->opts->statement_timeout_ms / 8.0;
	if (c->ms_per_page > 0) {
		size = (long long)(target / c->ms_per_page);
		if (size > c->last_pages * RANGE_MAX_GROWTH)
			size = c->last_pages * RANGE_MAX_GROWTH;
	} else
		size = RANGE_FIRST_PAGES;
	if (size < 1)
		size = 1;
	out->lo = p->next_page;
	out->hi =
		p->next_page + size < p->pages ? p->next_page + size : p->pages;
	out->attempts = 0;
	p->next_page = out->hi;
	return true;
}

/* c's transaction, in the pass's snapshot (after a failed range too). */
static int
pass_import(vp_pass *p, PGconn *conn, zdm_error *err)
{
	char sql[128];

	if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
	    zdm_conn_exec(conn, SQL_ROLLBACK, err) != 0)
		return -1;
	snprintf(sql, sizeof(sql), SQL_IMPORT_FMT, p->snapshot);
	return zdm_conn_exec(conn, SQL_IMPORT_BEGIN, err) != 0 ||
	                       zdm_conn_exec(conn, sql, err) != 0
	               ? -1
	               : 0;
}

static int
pass_send(vp_pass *p, vp_conn *c, vp_range range, zdm_error *err)
{
	char lo[40], hi[40];
	const char *params[2] = {lo, hi};

	snprintf(lo, sizeof(lo), "(%lld,0)", range.lo);
	snprintf(hi, sizeof(hi), "(%lld,0)", range.hi);
	if (!PQsendQueryParams(c->conn, p->sql, 2, NULL, params, NULL, NULL,
	                       0)) {
		zdm_error_from_result(err, NULL, c->conn);
		return -1;
	}
	c->busy = true;
	c->range = range;
	c->started = zdm_now();
	return 0;
}

/* A range's result arrived on c: add its counts, or decide what to do
 * with its failure.  0, or -1 with err set. */
static int
pass_result(vp_pass *p, vp_conn *c, PGresult *res, zdm_error *err)
{
	vp_range range = c->range;

	c->busy = false;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    (size_t)PQnfields(res) == p->n) {
		long long pages =
			range.hi == PAGE_END ? 0 : range.hi - range.lo;

		for (size_t i = 0; i < p->n; i++)
			p->counts[i] +=
				strtoll(PQgetvalue(res, 0, (int)i), NULL, 10);
		if (pages > 0) {
			c->ms_per_page = 1000.0 * (zdm_now() - c->started) /
			                 (double)pages;
			c->last_pages = pages;
		}
		p->stats->ranges++;
		return 0;
	}
	zdm_error_from_result(err, res, c->conn);
	/* the failure aborted c's transaction: back in the snapshot */
	{
		zdm_error again;

		zdm_error_clear(&again);
		if (pass_import(p, c->conn, &again) != 0) {
			*err = again;
			return -1;
		}
	}
	if (zdm_error_is_statement_timeout(err) && range.hi != PAGE_END &&
	    range.hi - range.lo > 1) {
		long long mid = range.lo + (range.hi - range.lo) / 2;
		vp_range a = {range.lo, mid, 0}, b = {mid, range.hi, 0};

		/* smaller from now on too */
		c->ms_per_page = 0;
		p->stats->splits++;
		zdm_error_clear(err);
		return pass_push_retry(p, b, err) || pass_push_retry(p, a, err)
		               ? -1
		               : 0;
	}
	if (zdm_error_is_lock_conflict(err) &&
	    range.attempts < p->opts->lock_retries) {
		long ms = BACKOFF_FIRST_MS
		          << (range.attempts < 6 ? range.attempts : 6);

		zdm_sleep_ms(ms < BACKOFF_CAP_MS ? ms : BACKOFF_CAP_MS);
		range.attempts++;
		zdm_error_clear(err);
		return pass_push_retry(p, range, err);
	}
	return -1;
}

static bool
pass_interrupted(const vp_pass *p)
{
	return p->opts->interrupt != NULL && *p->opts->interrupt;
}

int
zdm_verify_pass(PGconn *control, const zdm_step *const *steps, size_t n,
                const zdm_verify_pass_opts *opts, long long *counts,
                zdm_verify_pass_stats *stats, zdm_error *err)
{
	vp_pass p;
	vp_conn *conns = NULL;
	PGresult *res = NULL;
	const char *params[1];
	double started = zdm_now();
	int jobs = opts->jobs > 0 ? opts->jobs : 1;
	int rc = -1, nopen = 0;
	PGconn *exporter = NULL;

	memset(&p, 0, sizeof(p));
	memset(stats, 0, sizeof(*stats));
	for (size_t i = 0; i < n; i++)
		counts[i] = 0;
	p.opts = opts;
	p.n = n;
	p.counts = counts;
	p.stats = stats;

	params[0] = steps[0]->table;
	if (zdm_conn_query(control, SQL_TABLE_PAGES, 1, params, &res, err) != 0)
		goto done;
	p.pages = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	stats->pages = p.pages;
	p.sql = pass_sql(steps, n);
	if (p.sql == NULL) {
		zdm_error_set(err, "out of memory");
		goto done;
	}
	/* no more connections than the first ranges can keep busy */
	if (p.pages / RANGE_FIRST_PAGES + 1 < jobs)
		jobs = (int)(p.pages / RANGE_FIRST_PAGES + 1);
	conns = calloc((size_t)jobs, sizeof(*conns));
	if (conns == NULL) {
		zdm_error_set(err, "out of memory");
		goto done;
	}
	exporter = zdm_conn_open(opts->conninfo, "verify", opts->schema, err);
	if (exporter == NULL ||
	    zdm_conn_exec(exporter, SQL_EXPORT_BEGIN, err) != 0 ||
	    zdm_conn_query(exporter, SQL_EXPORT, 0, NULL, &res, err) != 0)
		goto done;
	snprintf(p.snapshot, sizeof(p.snapshot), "%s", PQgetvalue(res, 0, 0));
	/* hex digits and dashes, as the server makes them: safe in quotes */
	if (strspn(p.snapshot, "0123456789ABCDEFabcdef-") !=
	    strlen(p.snapshot)) {
		zdm_error_set(err, "pg_export_snapshot() gave \"%s\"",
		              p.snapshot);
		goto done;
	}
	PQclear(res);
	res = NULL;
	for (nopen = 0; nopen < jobs; nopen++) {
		char set[96];

		conns[nopen].conn = zdm_conn_open(opts->conninfo, "verify",
		                                  opts->schema, err);
		if (conns[nopen].conn == NULL)
			goto done;
		snprintf(set, sizeof(set), "SET lock_timeout = '%ldms'",
		         opts->lock_timeout_ms);
		if (zdm_conn_exec(conns[nopen].conn, set, err) != 0 ||
		    pass_import(&p, conns[nopen].conn, err) != 0) {
			nopen++;
			goto done;
		}
	}

	for (;;) {
		struct pollfd fds[64];
		int busy = 0, polled = 0;

		if (pass_interrupted(&p)) {
			rc = 1;
			goto done;
		}
		/* hand out ranges to the idle connections */
		for (int i = 0; i < jobs; i++) {
			vp_range range;

			if (conns[i].busy || !pass_claim(&p, &conns[i], &range))
				continue;
			if (pass_send(&p, &conns[i], range, err) != 0)
				goto done;
		}
		for (int i = 0; i < jobs; i++)
			busy += conns[i].busy;
		if (busy == 0)
			break; /* every page is counted */
		for (int i = 0; i < jobs && polled < 64; i++)
			if (conns[i].busy) {
				fds[polled].fd = PQsocket(conns[i].conn);
				fds[polled].events = POLLIN;
				fds[polled].revents = 0;
				polled++;
			}
		if (poll(fds, (nfds_t)polled, POLL_MS) < 0 && errno != EINTR) {
			zdm_error_set(err, "poll: %s", strerror(errno));
			goto done;
		}
		for (int i = 0; i < jobs; i++) {
			vp_conn *c = &conns[i];
			PGresult *r, *last = NULL;

			if (!c->busy)
				continue;
			if (!PQconsumeInput(c->conn)) {
				zdm_error_from_result(err, NULL, c->conn);
				goto done;
			}
			if (PQisBusy(c->conn))
				continue;
			/* the statement's result, then NULL: keep the
			 * first failure or the rows */
			while ((r = PQgetResult(c->conn)) != NULL) {
				if (last == NULL)
					last = r;
				else
					PQclear(r);
			}
			if (last == NULL) {
				zdm_error_set(err, "no result for pages %lld..",
				              c->range.lo);
				goto done;
			}
			if (pass_result(&p, c, last, err) != 0) {
				PQclear(last);
				goto done;
			}
			PQclear(last);
		}
	}
	rc = 0;

done:
	if (rc < 0 && err->step[0] == '\0')
		snprintf(err->step, sizeof(err->step), "%s", steps[0]->id);
	for (int i = 0; i < nopen; i++)
		PQfinish(conns[i].conn);
	if (exporter != NULL)
		PQfinish(exporter);
	free(conns);
	free(p.sql);
	free(p.retry);
	stats->seconds = zdm_now() - started;
	return rc;
}
