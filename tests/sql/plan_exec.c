/*
 * plan_exec.c -- zdm_plan_exec: run one phase of a plan, or undo up to one.
 *
 *   zdm_plan_exec --db CONNINFO [--batch-size ROWS] PLAN run PHASE
 *   zdm_plan_exec --db CONNINFO PLAN undo PHASE
 *   zdm_plan_exec PLAN get search_path|version_schema|version_schemas|tables
 *
 * A test harness, not the product runtime (that is `zdm apply`): it has no
 * journal, approves every gate and keeps no state between calls, so the
 * integration tests can drive a plan phase by phase while traffic runs.  It
 * does follow the plan's execution rules exactly, since those are what the
 * tests are about:
 *   - consecutive steps with the same transaction label run in one
 *     transaction; any failure rolls the whole group back;
 *   - every step runs under SET LOCAL lock_timeout = '<lock_timeout_ms>ms';
 *     a group that fails on a lock timeout or a deadlock is retried up to
 *     the plan's lock_retries times, as the runtime does;
 *   - a backfill step (key ctid) runs its statement once per page range,
 *     each batch its own transaction, $1/$2 the tids '(P,0)' and '(P+n,0)',
 *     n = max(1, batch_size / tuples per page), over the pages the table
 *     has when the step starts;
 *   - a check's statement returns one bigint that must equal expect; when it
 *     does not, examples_sql shows the offending rows;
 *   - undo runs the compensations of every step up to the end of PHASE in
 *     reverse order, each in its own transaction, and refuses when any of
 *     those steps is a point of no return;
 *   - an autocommit step, and its compensation, run outside a transaction
 *     block, under a session-level lock_timeout (RESET after).
 * --batch-size replaces the plan's batch size, so a test can cut a small
 * table into many batches and let its clients write between them.
 * The session's search_path is empty, as the runtime's is: the plan's SQL
 * must name everything it touches.
 *
 * Exit status: 0 done, 1 a step or check failed (or undo refused), 2 usage,
 * plan or connection errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "plan_read.h"

static const char *const phase_names[] = {"expand", "backfill", "verify",
                                          "switch", "contract"};
#define NPHASES (sizeof(phase_names) / sizeof(phase_names[0]))

/* SQLSTATEs after which a group is worth another try. */
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
#define SQLSTATE_DEADLOCK "40P01"

typedef enum outcome {
	OUTCOME_OK,
	OUTCOME_RETRY,     /* transient: lock timeout or deadlock */
	OUTCOME_FAILED,    /* a statement failed */
	OUTCOME_CHECK_FAIL /* statements ran, a check did not hold */
} outcome;

typedef struct exec {
	PGconn *conn;
	const zdm_plan *plan;
	long batch_size; /* --batch-size: overrides the plan's; 0: the plan's */
} exec;

static int
phase_index(const char *name)
{
	for (size_t i = 0; i < NPHASES; i++)
		if (strcmp(phase_names[i], name) == 0)
			return (int)i;
	return -1;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *
field(const PGresult *res, int code)
{
	const char *v = res ? PQresultErrorField(res, code) : NULL;

	return v ? v : "";
}

/*
 * Print a failed statement: step, SQLSTATE, message, detail, hint and the
 * statement itself.  Returns whether the failure is worth retrying.
 */
static outcome
report_error(PGconn *conn, const PGresult *res, const char *step_id,
             const char *what, const char *sql)
{
	const char *state = field(res, PG_DIAG_SQLSTATE);
	const char *msg = field(res, PG_DIAG_MESSAGE_PRIMARY);

	if (*msg == '\0')
		msg = PQerrorMessage(conn);
	fprintf(stderr, "zdm_plan_exec: step %s: %s failed: SQLSTATE %s: %s\n",
	        step_id, what, *state ? state : "(none)", msg);
	if (*field(res, PG_DIAG_MESSAGE_DETAIL))
		fprintf(stderr, "detail: %s\n",
		        field(res, PG_DIAG_MESSAGE_DETAIL));
	if (*field(res, PG_DIAG_MESSAGE_HINT))
		fprintf(stderr, "hint: %s\n", field(res, PG_DIAG_MESSAGE_HINT));
	if (*field(res, PG_DIAG_CONTEXT))
		fprintf(stderr, "context: %s\n", field(res, PG_DIAG_CONTEXT));
	if (sql)
		fprintf(stderr, "statement:\n%s\n", sql);
	if (strcmp(state, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
	    strcmp(state, SQLSTATE_DEADLOCK) == 0)
		return OUTCOME_RETRY;
	return OUTCOME_FAILED;
}

/* Run a statement that returns no rows. */
static outcome
run_command(exec *x, const char *step_id, const char *what, const char *sql)
{
	PGresult *res = PQexec(x->conn, sql);
	outcome r = OUTCOME_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		r = report_error(x->conn, res, step_id, what, sql);
	PQclear(res);
	return r;
}

static outcome
begin(exec *x, const char *step_id)
{
	return run_command(x, step_id, "BEGIN", "BEGIN");
}

static void
rollback(exec *x)
{
	PQclear(PQexec(x->conn, "ROLLBACK"));
}

static outcome
set_lock_timeout(exec *x, const char *step_id, long ms)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = '%ldms'", ms);
	return run_command(x, step_id, "SET lock_timeout", sql);
}

/* Print the rows of examples_sql, tab-separated under a header line. */
static void
print_examples(exec *x, const zdm_step *step)
{
	PGresult *res;

	if (step->examples_sql == NULL)
		return;
	res = PQexec(x->conn, step->examples_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_error(x->conn, res, step->id, "examples query",
		             step->examples_sql);
		PQclear(res);
		return;
	}
	fprintf(stderr, "examples (%d rows):\n", PQntuples(res));
	for (int c = 0; c < PQnfields(res); c++)
		fprintf(stderr, "%s%s", c ? "\t" : "  ", PQfname(res, c));
	fputc('\n', stderr);
	for (int r = 0; r < PQntuples(res); r++) {
		for (int c = 0; c < PQnfields(res); c++)
			fprintf(stderr, "%s%s", c ? "\t" : "  ",
			        PQgetisnull(res, r, c) ? "NULL"
			                               : PQgetvalue(res, r, c));
		fputc('\n', stderr);
	}
	PQclear(res);
}

/* A check: one row, one bigint, equal to expect. */
static outcome
run_check(exec *x, const zdm_step *step)
{
	PGresult *res = PQexec(x->conn, step->sql);
	outcome r = OUTCOME_OK;
	long long got = 0;
	char *end = NULL;
	const char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		r = report_error(x->conn, res, step->id, "check", step->sql);
		PQclear(res);
		return r;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1 ||
	    PQgetisnull(res, 0, 0)) {
		fprintf(stderr,
		        "zdm_plan_exec: step %s: check must return one non-null "
		        "value, got %d rows of %d columns\nstatement:\n%s\n",
		        step->id, PQntuples(res), PQnfields(res), step->sql);
		PQclear(res);
		return OUTCOME_FAILED;
	}
	v = PQgetvalue(res, 0, 0);
	errno = 0;
	got = strtoll(v, &end, 10);
	if (errno || *end) {
		fprintf(stderr,
		        "zdm_plan_exec: step %s: check returned '%s', not an "
		        "integer\n",
		        step->id, v);
		r = OUTCOME_FAILED;
	} else if (got != step->expect) {
		fprintf(stderr,
		        "zdm_plan_exec: step %s: check failed: %s\n"
		        "  expected %lld, got %lld\nstatement:\n%s\n",
		        step->id, step->description ? step->description : "",
		        step->expect, got, step->sql);
		print_examples(x, step);
		r = OUTCOME_CHECK_FAIL;
	} else {
		printf("%s: check ok (%lld)\n", step->id, got);
	}
	PQclear(res);
	return r;
}

static void
print_gate(const zdm_step *step)
{
	printf("%s: gate %s%s: approved by the test harness\n", step->id,
	       step->gate ? step->gate : "?",
	       step->approval ? " (needs approval)" : "");
}

/* A statement PostgreSQL will not run in a transaction block (an
 * autocommit step or its compensation): on its own, the lock_timeout set on
 * the session around it. */
static outcome
run_outside(exec *x, const zdm_step *step, const char *what, const char *sql)
{
	char set[96];
	outcome r;

	snprintf(set, sizeof(set), "SET lock_timeout = '%ldms'",
	         step->lock_timeout_ms);
	r = run_command(x, step->id, "SET lock_timeout", set);
	if (r == OUTCOME_OK)
		r = run_command(x, step->id, what, sql);
	PQclear(PQexec(x->conn, "RESET lock_timeout"));
	if (r == OUTCOME_OK && strcmp(what, "statement") == 0)
		printf("%s: %s\n", step->id,
		       step->description ? step->description : "done");
	return r;
}

/*
 * Run steps [first, last] as one transaction.  After a failed check the
 * remaining checks of the group still run (to report all of them), nothing
 * else does, and the group rolls back.
 */
static outcome
run_group(exec *x, size_t first, size_t last)
{
	const zdm_plan *plan = x->plan;
	outcome r, worst = OUTCOME_OK;

	if ((r = begin(x, plan->steps[first].id)) != OUTCOME_OK)
		return r;
	for (size_t i = first; i <= last; i++) {
		const zdm_step *step = &plan->steps[i];

		if (step->kind == ZDM_STEP_GATE) {
			print_gate(step);
			continue;
		}
		if (worst == OUTCOME_CHECK_FAIL && step->kind != ZDM_STEP_CHECK)
			break;
		r = set_lock_timeout(x, step->id, step->lock_timeout_ms);
		if (r == OUTCOME_OK && step->kind == ZDM_STEP_CHECK) {
			r = run_check(x, step);
		} else if (r == OUTCOME_OK) {
			r = run_command(x, step->id, "statement", step->sql);
			if (r == OUTCOME_OK)
				printf("%s: %s\n", step->id,
				       step->description ? step->description
				                         : "done");
		}
		if (r == OUTCOME_CHECK_FAIL) {
			worst = r;
		} else if (r != OUTCOME_OK) {
			rollback(x);
			return r;
		}
	}
	if (worst != OUTCOME_OK) {
		rollback(x);
		return worst;
	}
	return run_command(x, plan->steps[last].id, "COMMIT", "COMMIT");
}

/* The table's size in pages now, and rows per page from its statistics. */
static int
table_pages(exec *x, const zdm_step *step, long long *pages, double *per_page)
{
	static const char sql[] =
		"SELECT pg_catalog.pg_relation_size(c.oid) / "
		"pg_catalog.current_setting('block_size')::bigint, "
		"c.reltuples::float8, c.relpages "
		"FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass";
	const char *params[1] = {step->table};
	PGresult *res;
	double tuples, relpages;

	if (step->table == NULL) {
		fprintf(stderr,
		        "zdm_plan_exec: step %s: backfill has no table\n",
		        step->id);
		return -1;
	}
	res = PQexecParams(x->conn, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		report_error(x->conn, res, step->id, "table size", sql);
		PQclear(res);
		return -1;
	}
	*pages = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	tuples = strtod(PQgetvalue(res, 0, 1), NULL);
	relpages = strtod(PQgetvalue(res, 0, 2), NULL);
	PQclear(res);
	/* reltuples is -1 before the first VACUUM/ANALYZE. */
	*per_page = tuples > 0 && relpages > 0 ? tuples / relpages : 0;
	return 0;
}

static outcome
run_backfill(exec *x, const zdm_step *step)
{
	long long pages, step_pages, rows = 0, batches = 0;
	long batch_size;
	double per_page;
	outcome r;

	if (step->key == NULL || strcmp(step->key, "ctid") != 0) {
		fprintf(stderr,
		        "zdm_plan_exec: step %s: backfill key '%s' not supported "
		        "(only ctid)\n",
		        step->id, step->key ? step->key : "(none)");
		return OUTCOME_FAILED;
	}
	if (table_pages(x, step, &pages, &per_page) != 0)
		return OUTCOME_FAILED;
	batch_size = x->batch_size > 0 ? x->batch_size : step->batch_size;
	step_pages = per_page > 0 ? (long long)(batch_size / per_page) : 1;
	if (step_pages < 1)
		step_pages = 1;

	for (long long p = 0; p < pages; p += step_pages) {
		char lo[48], hi[48];
		const char *params[2] = {lo, hi};
		long tries = 0;

		snprintf(lo, sizeof(lo), "(%lld,0)", p);
		snprintf(hi, sizeof(hi), "(%lld,0)", p + step_pages);
		for (;;) {
			PGresult *res;

			r = begin(x, step->id);
			if (r == OUTCOME_OK)
				r = set_lock_timeout(x, step->id,
				                     step->lock_timeout_ms);
			if (r == OUTCOME_OK) {
				res = PQexecParams(x->conn, step->sql, 2, NULL,
				                   params, NULL, NULL, 0);
				if (PQresultStatus(res) == PGRES_COMMAND_OK ||
				    PQresultStatus(res) == PGRES_TUPLES_OK)
					rows += strtoll(PQcmdTuples(res), NULL,
					                10);
				else
					r = report_error(x->conn, res, step->id,
					                 "backfill batch",
					                 step->sql);
				PQclear(res);
			}
			if (r == OUTCOME_OK)
				r = run_command(x, step->id, "COMMIT",
				                "COMMIT");
			else
				rollback(x);
			if (r != OUTCOME_RETRY ||
			    tries++ >= x->plan->lock_retries)
				break;
			fprintf(stderr,
			        "zdm_plan_exec: step %s: retrying batch %s\n",
			        step->id, lo);
			sleep_ms(100 * tries);
		}
		if (r != OUTCOME_OK) {
			fprintf(stderr,
			        "zdm_plan_exec: step %s: batch %s..%s failed\n",
			        step->id, lo, hi);
			return OUTCOME_FAILED;
		}
		batches++;
		if (step->batch_pause_ms > 0 && p + step_pages < pages)
			sleep_ms(step->batch_pause_ms);
	}
	printf("%s: backfill: %lld rows updated in %lld batches of %lld "
	       "pages (%lld pages)\n",
	       step->id, rows, batches, step_pages, pages);
	return OUTCOME_OK;
}

static bool
same_label(const zdm_step *a, const zdm_step *b)
{
	return a->transaction && b->transaction &&
	       strcmp(a->transaction, b->transaction) == 0 &&
	       strcmp(a->phase, b->phase) == 0;
}

static int
cmd_run(exec *x, const char *phase)
{
	const zdm_plan *plan = x->plan;
	size_t i = 0, nrun = 0;
	bool check_failed = false;

	while (i < plan->nsteps) {
		size_t last = i;
		outcome r;
		long tries = 0;

		if (strcmp(plan->steps[i].phase, phase) != 0) {
			i++;
			continue;
		}
		/* The harness approves every gate; a gate runs no SQL. */
		if (plan->steps[i].kind == ZDM_STEP_GATE && !check_failed) {
			print_gate(&plan->steps[i]);
			nrun++;
			i++;
			continue;
		}
		/* A backfill is batched: it is never part of a larger group. */
		if (plan->steps[i].kind != ZDM_STEP_BACKFILL)
			while (last + 1 < plan->nsteps &&
			       plan->steps[last + 1].kind !=
			               ZDM_STEP_BACKFILL &&
			       same_label(&plan->steps[i],
			                  &plan->steps[last + 1]))
				last++;
		/* After a failed check, only further checks run. */
		if (check_failed && plan->steps[i].kind != ZDM_STEP_CHECK)
			break;
		for (;;) {
			if (plan->steps[i].kind == ZDM_STEP_BACKFILL)
				r = run_backfill(x, &plan->steps[i]);
			else if (plan->steps[i].kind == ZDM_STEP_AUTOCOMMIT)
				r = run_outside(x, &plan->steps[i], "statement",
				                plan->steps[i].sql);
			else
				r = run_group(x, i, last);
			if (r != OUTCOME_RETRY || tries++ >= plan->lock_retries)
				break;
			fprintf(stderr,
			        "zdm_plan_exec: step %s: retrying (%ld of %ld)\n",
			        plan->steps[i].id, tries, plan->lock_retries);
			sleep_ms(100 * tries);
		}
		if (r == OUTCOME_CHECK_FAIL) {
			check_failed = true;
		} else if (r != OUTCOME_OK) {
			fprintf(stderr,
			        "zdm_plan_exec: phase %s failed at step %s\n",
			        phase, plan->steps[i].id);
			return 1;
		}
		nrun += last - i + 1;
		i = last + 1;
	}
	if (check_failed) {
		fprintf(stderr, "zdm_plan_exec: phase %s: checks failed\n",
		        phase);
		return 1;
	}
	printf("phase %s: %zu steps done\n", phase, nrun);
	return 0;
}

static int
cmd_undo(exec *x, const char *phase)
{
	const zdm_plan *plan = x->plan;
	int upto = phase_index(phase);
	size_t end = 0, nundone = 0;

	/* Steps [0, end) belong to phases up to and including phase. */
	while (end < plan->nsteps) {
		int p = phase_index(plan->steps[end].phase);

		if (p < 0) {
			fprintf(stderr,
			        "zdm_plan_exec: step %s has unknown phase %s\n",
			        plan->steps[end].id, plan->steps[end].phase);
			return 2;
		}
		if (p > upto)
			break;
		end++;
	}
	for (size_t i = 0; i < end; i++) {
		if (plan->steps[i].point_of_no_return) {
			fprintf(stderr,
			        "zdm_plan_exec: undo %s refused: step %s is a point of "
			        "no return\n",
			        phase, plan->steps[i].id);
			return 1;
		}
	}
	for (size_t i = end; i-- > 0;) {
		const zdm_step *step = &plan->steps[i];
		outcome r;
		long tries = 0;

		if (step->compensation == NULL)
			continue;
		for (;;) {
			if (step->kind == ZDM_STEP_AUTOCOMMIT) {
				r = run_outside(x, step, "compensation",
				                step->compensation);
				if (r != OUTCOME_RETRY ||
				    tries++ >= plan->lock_retries)
					break;
				continue;
			}
			r = begin(x, step->id);
			if (r == OUTCOME_OK)
				r = set_lock_timeout(x, step->id,
				                     step->lock_timeout_ms);
			if (r == OUTCOME_OK)
				r = run_command(x, step->id, "compensation",
				                step->compensation);
			if (r == OUTCOME_OK)
				r = run_command(x, step->id, "COMMIT",
				                "COMMIT");
			else
				rollback(x);
			if (r != OUTCOME_RETRY || tries++ >= plan->lock_retries)
				break;
		}
		if (r != OUTCOME_OK) {
			fprintf(stderr,
			        "zdm_plan_exec: undo failed at step %s\n",
			        step->id);
			return 1;
		}
		printf("%s: undone\n", step->id);
		nundone++;
	}
	printf("undo %s: %zu compensations done\n", phase, nundone);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: zdm_plan_exec --db CONNINFO [--batch-size ROWS] "
	             "PLAN run PHASE\n"
	             "       zdm_plan_exec --db CONNINFO PLAN undo PHASE\n"
	             "       zdm_plan_exec PLAN get "
	             "search_path|version_schema|version_schemas|tables\n"
	             "phases: expand, backfill, verify, switch, contract\n");
}

/* Print one field of the plan, for scripts (one line per table). */
static int
cmd_get(const char *path, const char *what)
{
	zdm_plan *plan = NULL;
	char errbuf[1024];
	int rc = 0;

	if (zdm_plan_load(&plan, path, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "zdm_plan_exec: %s\n", errbuf);
		return 2;
	}
	if (strcmp(what, "search_path") == 0) {
		printf("%s\n", plan->search_path ? plan->search_path : "");
	} else if (strcmp(what, "version_schema") == 0) {
		printf("%s\n",
		       plan->version_schema ? plan->version_schema : "");
	} else if (strcmp(what, "version_schemas") == 0) {
		/* one a line: a plan over several schemas has one each */
		for (size_t i = 0; i < plan->nversion_schemas; i++)
			printf("%s\n", plan->version_schemas[i]);
	} else if (strcmp(what, "tables") == 0) {
		for (size_t i = 0; i < plan->ntables; i++)
			printf("%s\n", plan->tables[i]);
	} else {
		usage(stderr);
		rc = 2;
	}
	zdm_plan_free(plan);
	return rc;
}

static PGconn *
connect_db(const char *conninfo)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *values[] = {conninfo, "zdm_plan_exec", NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "zdm_plan_exec: cannot connect: %s",
		        PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	res = PQexec(conn,
	             "SELECT pg_catalog.set_config('search_path', '', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "zdm_plan_exec: cannot clear search_path: %s",
		        PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL, *path, *verb, *phase;
	zdm_plan *plan = NULL;
	exec x = {0};
	char errbuf[1024];
	int rc, i = 1;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc == 4 && strcmp(argv[2], "get") == 0)
		return cmd_get(argv[1], argv[3]);
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--db") == 0) {
			conninfo = argv[i + 1];
		} else if (strcmp(argv[i], "--batch-size") == 0) {
			x.batch_size = atol(argv[i + 1]);
			if (x.batch_size < 1) {
				fprintf(stderr,
				        "zdm_plan_exec: --batch-size must be a positive number of rows\n");
				return 2;
			}
		} else {
			break;
		}
	}
	if (conninfo == NULL || argc - i != 3) {
		usage(stderr);
		return 2;
	}
	path = argv[i];
	verb = argv[i + 1];
	phase = argv[i + 2];
	if ((strcmp(verb, "run") != 0 && strcmp(verb, "undo") != 0) ||
	    phase_index(phase) < 0) {
		usage(stderr);
		return 2;
	}
	if (zdm_plan_load(&plan, path, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "zdm_plan_exec: %s\n", errbuf);
		return 2;
	}
	x.plan = plan;
	x.conn = connect_db(conninfo);
	if (x.conn == NULL) {
		zdm_plan_free(plan);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(verb, "run") == 0)
		rc = cmd_run(&x, phase);
	else
		rc = cmd_undo(&x, phase);
	PQfinish(x.conn);
	zdm_plan_free(plan);
	return rc;
}
