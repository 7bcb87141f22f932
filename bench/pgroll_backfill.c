/*
 * pgroll_backfill.c -- pgroll's backfill loop, re-enacted as a yardstick.
 *
 *   pgroll_backfill DBNAME [BATCH_SIZE]
 *
 * pgroll (xataio/pgroll, pkg/backfill) fills new columns without computing
 * them itself: it "touches" every row with an UPDATE that sets the primary
 * key to itself, so that the per-row plpgsql trigger installed at start
 * (bench/pgroll_setup.sql) computes the new columns and clears the
 * _pgroll_needs_backfill marker.  Rows are taken in primary-key order,
 * BATCH_SIZE at a time (pgroll's default is 1000), each batch its own
 * transaction driven from the client: BEGIN, one statement that locks the
 * batch, touches it and returns the last key reached, COMMIT.  The loop ends
 * on the first batch that touches nothing, as pgroll's does.
 *
 * The statement below is written here from that description, with the same
 * shape and cost: the CTE picks the keys (index scan, marker as a filter,
 * FOR NO KEY UPDATE), the UPDATE joins on them, and every touched row is
 * sent back with the window value of the highest key, as pgroll's
 * LAST_VALUE() OVER () does.  The key is inlined as a literal and sent with
 * the simple query protocol, as pgroll's driver sends a statement without
 * parameters.
 *
 * Prints one line: "rows=N batches=B seconds=S rows_per_s=R p50_ms=..
 * p99_ms=.. max_ms=..", a batch's time being BEGIN to COMMIT as the client
 * sees it.  Connection parameters come from libpq's PG* environment.  Exit
 * status 1 on any error: a benchmark that half-ran has no result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values (p in 0..100). */
static double
percentile(const double *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)((p / 100.0) * n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int
exec_command(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "pgroll_backfill: %s: %s", sql,
		        PQerrorMessage(conn));
	PQclear(res);
	return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *keywords[] = {"dbname", "application_name", NULL};
	const char *values[] = {NULL, "pgroll_backfill", NULL};
	PGconn *conn;
	long batch_size = 1000;
	char last[32] = "";
	char sql[1024];
	double *times = NULL, start, total_ms;
	size_t ntimes = 0, cap = 0;
	long long rows = 0;
	int rc = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: pgroll_backfill DBNAME [BATCH_SIZE]\n");
		return 2;
	}
	values[0] = argv[1];
	if (argc == 3) {
		batch_size = strtol(argv[2], NULL, 10);
		if (batch_size < 1) {
			fprintf(stderr, "pgroll_backfill: bad batch size %s\n",
			        argv[2]);
			return 2;
		}
	}
	conn = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pgroll_backfill: %s", PQerrorMessage(conn));
		goto cleanup;
	}

	start = now_ms();
	for (;;) {
		double t0 = now_ms();
		PGresult *res;
		int ntuples;

		/* First batch: no lower bound, as pgroll's template. */
		snprintf(sql, sizeof(sql),
		         "WITH batch AS (\n"
		         "  SELECT id FROM public.users\n"
		         "   WHERE _pgroll_needs_backfill = true%s%s%s\n"
		         "   ORDER BY id LIMIT %ld\n"
		         "     FOR NO KEY UPDATE),\n"
		         "touched AS (\n"
		         "  UPDATE public.users AS u SET id = u.id\n"
		         "    FROM batch WHERE u.id = batch.id\n"
		         "  RETURNING u.id)\n"
		         "SELECT max(id) OVER () FROM touched",
		         last[0] ? " AND (id) > ('" : "", last,
		         last[0] ? "')" : "", batch_size);
		if (exec_command(conn, "BEGIN") != 0)
			goto cleanup;
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr,
			        "pgroll_backfill: batch after id %s: %s",
			        last[0] ? last : "(none)",
			        PQerrorMessage(conn));
			PQclear(res);
			goto cleanup;
		}
		ntuples = PQntuples(res);
		if (ntuples > 0)
			snprintf(last, sizeof(last), "%s",
			         PQgetvalue(res, 0, 0));
		PQclear(res);
		if (exec_command(conn, "COMMIT") != 0)
			goto cleanup;
		if (ntuples == 0)
			break;
		rows += ntuples;
		if (ntimes == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			double *grown = realloc(times, ncap * sizeof(double));

			if (grown == NULL) {
				fprintf(stderr,
				        "pgroll_backfill: out of memory\n");
				goto cleanup;
			}
			times = grown;
			cap = ncap;
		}
		times[ntimes++] = now_ms() - t0;
	}
	total_ms = now_ms() - start;

	qsort(times, ntimes, sizeof(double), cmp_double);
	printf("rows=%lld batches=%zu seconds=%.3f rows_per_s=%.0f "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       rows, ntimes, total_ms / 1000.0,
	       total_ms > 0 ? rows / (total_ms / 1000.0) : 0.0,
	       percentile(times, ntimes, 50), percentile(times, ntimes, 99),
	       ntimes ? times[ntimes - 1] : 0.0);
	rc = 0;
cleanup:
	free(times);
	PQfinish(conn);
	return rc;
}
