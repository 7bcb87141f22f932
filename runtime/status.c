/*
 * status.c -- where a migration stands, read from the journal only.
 *
 * Read-only: it never creates the journal (a database zdm never touched has
 * no migrations) and never takes the migration's advisory lock, so it works
 * while a runner is busy.  --json prints one object per migration with the
 * same facts, for scripts.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "runner.h"

static const char status_migrations_sql[] =
	"SELECT m.migration, m.state, m.plan_sha256, m.current_step, m.waiting_gate,"
	"       pg_catalog.to_char(m.started_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'),"
	"       pg_catalog.to_char(m.updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'),"
	"       m.last_error, m.last_sqlstate,"
	"       (SELECT count(*) FROM zdm.steps s WHERE s.migration = m.migration AND s.state = 'done'),"
	"       (SELECT count(*) FROM zdm.steps s WHERE s.migration = m.migration),"
	"       (SELECT s.phase FROM zdm.steps s WHERE s.migration = m.migration"
	"         AND s.step_id = m.current_step),"
	"       (SELECT s.step_id FROM zdm.steps s WHERE s.migration = m.migration"
	"         AND s.state = 'failed' ORDER BY s.position DESC LIMIT 1),"
	"       (SELECT sum(b.rows) FROM zdm.backfill b WHERE b.migration = m.migration),"
	"       (SELECT sum(b.next_page - b.first_page) FROM zdm.backfill b WHERE b.migration = m.migration),"
	"       (SELECT sum(b.end_page - b.first_page) FROM zdm.backfill b WHERE b.migration = m.migration),"
	/* 16: a runner holds the migration's lock (journal.h) */
	"       " ZDM_JOURNAL_RUNNER_ALIVE_SQL "  FROM zdm.migrations m"
	" WHERE $1::text IS NULL OR m.migration = $1"
	" ORDER BY m.started_at";

static const char status_steps_sql[] =
	"SELECT step_id, phase, state, attempts, rows, result, error, sqlstate"
	"  FROM zdm.steps WHERE migration = $1 ORDER BY position";

/*
 * Never NULL: json_pack fails on a NULL "o" and the row would vanish.  The
 * session is UTF8, but an error text copied from an older journal row may not
 * be: such bytes print as '?' rather than losing the value.
 */
static json_t *
status_str(PGresult *res, int row, int col)
{
	const char *value;
	json_t *str;
	char *copy;
	size_t i;

	if (PQgetisnull(res, row, col))
		return json_null();
	value = PQgetvalue(res, row, col);
	str = json_string(value);
	if (str != NULL)
		return str;
	copy = strdup(value);
	if (copy == NULL)
		return json_null();
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	str = json_string(copy);
	free(copy);
	return str ? str : json_null();
}

static json_t *
status_int(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_integer(
				 strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *
status_steps(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;
	json_t *steps = json_array();
	int row;

	if (steps == NULL)
		return json_null();
	if (zdm_conn_query(conn, status_steps_sql, 1, params, &res, err) != 0)
		return steps;
	for (row = 0; row < PQntuples(res); row++) {
		json_t *step =
			json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		                  "id", status_str(res, row, 0), "phase",
		                  status_str(res, row, 1), "state",
		                  status_str(res, row, 2), "attempts",
		                  status_int(res, row, 3), "rows",
		                  status_int(res, row, 4), "result",
		                  status_str(res, row, 5), "error",
		                  status_str(res, row, 6), "sqlstate",
		                  status_str(res, row, 7));

		/* only out of memory gets here: keep the row visible */
		json_array_append_new(steps, step ? step : json_null());
	}
	PQclear(res);
	return steps;
}

/*
 * What zdm sync last reported (sync = cdc), or NULL with no error when the
 * migration has no sync (or the journal predates zdm.cdc).
 */
static PGresult *
status_sync_query(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;
	bool present;

	if (zdm_conn_query(
		    conn,
		    "SELECT pg_catalog.to_regclass('zdm.cdc') IS NOT NULL", 0,
		    NULL, &res, err) != 0)
		return NULL;
	present = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!present)
		return NULL;
	if (zdm_conn_query(
		    conn,
		    "SELECT source, state, lag_seconds, backlog, applied_lsn::text,"
		    "       changes_seen, changes_applied, own_skipped,"
		    "       EXTRACT(epoch FROM pg_catalog.clock_timestamp() - seen_at)::float8,"
		    "       last_error, stop_requested"
		    "  FROM zdm.cdc"
		    " WHERE migration = $1",
		    1, params, &res, err) != 0)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return NULL;
	}
	return res;
}

static void
status_print_sync(PGconn *conn, const char *migration)
{
	zdm_error err;
	PGresult *res = status_sync_query(conn, migration, &err);
	double age;

	if (!res)
		return;
	age = PQgetisnull(res, 0, 8) ? -1.0
	                             : strtod(PQgetvalue(res, 0, 8), NULL);
	printf("  sync        %s, %s%s", PQgetvalue(res, 0, 0),
	       PQgetvalue(res, 0, 1),
	       strcmp(PQgetvalue(res, 0, 1), "running") == 0 && age > 5.0
	               ? " (not reporting: is zdm sync still alive?)"
	               : "");
	if (!PQgetisnull(res, 0, 2))
		printf(": lag %.0f ms",
		       strtod(PQgetvalue(res, 0, 2), NULL) * 1000.0);
	if (!PQgetisnull(res, 0, 3))
		printf(", backlog %s", PQgetvalue(res, 0, 3));
	if (!PQgetisnull(res, 0, 4))
		printf(", applied up to %s", PQgetvalue(res, 0, 4));
	printf("\n              %s changes seen, %s rows written, %s own writes skipped; reported %.1f s ago\n",
	       PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6),
	       PQgetvalue(res, 0, 7), age);
	if (!PQgetisnull(res, 0, 9))
		printf("  sync error  %s\n", PQgetvalue(res, 0, 9));
	PQclear(res);
}

static json_t *
status_sync_json(PGconn *conn, const char *migration)
{
	zdm_error err;
	PGresult *res = status_sync_query(conn, migration, &err);
	json_t *out;

	if (!res)
		return json_null();
	out = json_pack(
		"{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
		"source", status_str(res, 0, 0), "state", status_str(res, 0, 1),
		"lag_seconds",
		PQgetisnull(res, 0, 2)
			? json_null()
			: json_real(strtod(PQgetvalue(res, 0, 2), NULL)),
		"backlog", status_int(res, 0, 3), "applied_lsn",
		status_str(res, 0, 4), "changes_seen", status_int(res, 0, 5),
		"changes_applied", status_int(res, 0, 6), "own_skipped",
		status_int(res, 0, 7), "seconds_since_report",
		PQgetisnull(res, 0, 8)
			? json_null()
			: json_real(strtod(PQgetvalue(res, 0, 8), NULL)),
		"last_error", status_str(res, 0, 9), "stop_requested",
		PQgetvalue(res, 0, 10)[0] == 't');
	PQclear(res);
	return out ? out : json_null();
}

/*
 * Earlier attempts of the migration (a rolled-back migration started again),
 * oldest first, each with the last step that failed and its error; NULL
 * when there are none (or the journal predates zdm.attempts).
 */
static const char status_attempts_sql[] =
	"SELECT a.attempt, a.plan_sha256, a.state,"
	"       pg_catalog.to_char(a.started_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'),"
	"       f.value->>'step_id', f.value->>'error'"
	"  FROM zdm.attempts a LEFT JOIN LATERAL"
	"       (SELECT e.value FROM pg_catalog.jsonb_array_elements(a.steps)"
	"          WITH ORDINALITY AS e(value, n)"
	"         WHERE e.value->>'error' IS NOT NULL"
	"         ORDER BY e.n DESC LIMIT 1) f ON true"
	" WHERE a.migration = $1 ORDER BY a.attempt";

static PGresult *
status_attempts_query(PGconn *conn, const char *migration)
{
	const char *params[1] = {migration};
	zdm_error err;
	PGresult *res;
	bool present;

	if (zdm_conn_query(
		    conn,
		    "SELECT pg_catalog.to_regclass('zdm.attempts') IS NOT NULL",
		    0, NULL, &res, &err) != 0)
		return NULL;
	present = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!present || zdm_conn_query(conn, status_attempts_sql, 1, params,
	                               &res, &err) != 0)
		return NULL;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return NULL;
	}
	return res;
}

static void
status_print_attempts(PGconn *conn, const char *migration)
{
	PGresult *res = status_attempts_query(conn, migration);

	if (res == NULL)
		return;
	printf("  attempt     %d; earlier:\n", PQntuples(res) + 1);
	for (int row = 0; row < PQntuples(res); row++) {
		printf("              %s: plan %.12s..., %s, started %s",
		       PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
		       PQgetvalue(res, row, 2), PQgetvalue(res, row, 3));
		if (!PQgetisnull(res, row, 4))
			printf("; %s failed: %s", PQgetvalue(res, row, 4),
			       PQgetvalue(res, row, 5));
		putchar('\n');
	}
	PQclear(res);
}

/* "attempt" and "earlier_attempts" of the JSON form. */
static void
status_attempts_json(PGconn *conn, const char *migration, json_t *entry)
{
	PGresult *res = status_attempts_query(conn, migration);
	json_t *list = json_array();
	int n = res ? PQntuples(res) : 0;

	for (int row = 0; row < n && list; row++)
		json_array_append_new(
			list, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}",
		                        "attempt", status_int(res, row, 0),
		                        "plan_sha256", status_str(res, row, 1),
		                        "state", status_str(res, row, 2),
		                        "started_at", status_str(res, row, 3),
		                        "failed_step", status_str(res, row, 4),
		                        "error", status_str(res, row, 5)));
	json_object_set_new(entry, "attempt", json_integer(n + 1));
	json_object_set_new(entry, "earlier_attempts",
	                    list ? list : json_null());
	if (res)
		PQclear(res);
}

/*
 * The journal says "running" (or "rolling_back") from the moment a runner
 * starts until it writes how it ended; a runner killed with -9, or whose
 * machine died, never writes it.  The runner holds the migration's advisory
 * lock for as long as it lives, so a journal that says running while no
 * session holds that lock means the runner is gone: the migration is
 * stopped, and the command that goes on is the one it was running.
 */
static const char *
status_state(PGresult *res, int row, const char **resume)
{
	const char *state = PQgetvalue(res, row, 1);
	bool runner = PQgetvalue(res, row, 16)[0] == 't';

	*resume = NULL;
	if (runner)
		return state;
	if (strcmp(state, "running") == 0)
		*resume = "apply";
	else if (strcmp(state, "rolling_back") == 0)
		*resume = "rollback";
	return *resume ? "stopped" : state;
}

static void
status_print_human(PGresult *res, int row, const char *plan_path)
{
	const char *migration = PQgetvalue(res, row, 0);
	const char *resume;
	const char *state = status_state(res, row, &resume);

	printf("migration %s: %s\n", migration, state);
	if (resume != NULL)
		printf("  stopped     the journal says %s, but no zdm runner holds "
		       "the migration's lock: it was killed or lost its "
		       "connection; go on with: zdm %s %s\n",
		       PQgetvalue(res, row, 1), resume,
		       plan_path ? plan_path : "PLAN");
	printf("  plan        %.12s...  started %s, updated %s\n",
	       PQgetvalue(res, row, 2), PQgetvalue(res, row, 5),
	       PQgetvalue(res, row, 6));
	printf("  progress    %s of %s steps done", PQgetvalue(res, row, 9),
	       PQgetvalue(res, row, 10));
	if (!PQgetisnull(res, row, 3))
		printf("; last step %s (phase %s)", PQgetvalue(res, row, 3),
		       PQgetisnull(res, row, 11) ? "?"
		                                 : PQgetvalue(res, row, 11));
	putchar('\n');
	if (!PQgetisnull(res, row, 13))
		printf("  backfill    %s rows written, %s of %s pages done\n",
		       PQgetvalue(res, row, 13), PQgetvalue(res, row, 14),
		       PQgetvalue(res, row, 15));
	if (!PQgetisnull(res, row, 4))
		printf("  waiting     at gate %s: zdm approve %s %s\n",
		       PQgetvalue(res, row, 4), plan_path ? plan_path : "PLAN",
		       PQgetvalue(res, row, 4));
	if (!PQgetisnull(res, row, 7))
		printf("  last error  %s%s%s (SQLSTATE %s)\n",
		       PQgetisnull(res, row, 12) ? ""
		                                 : PQgetvalue(res, row, 12),
		       PQgetisnull(res, row, 12) ? "" : ": ",
		       PQgetvalue(res, row, 7),
		       PQgetisnull(res, row, 8) ? "none"
		                                : PQgetvalue(res, row, 8));
}

int
zdm_status(const zdm_plan *plan, const char *plan_path, const char *conninfo,
           bool json)
{
	zdm_error err;
	PGconn *conn;
	PGresult *res = NULL;
	const char *params[1] = {plan ? plan->migration : NULL};
	json_t *all = NULL, *entry;
	const char *resume;
	int rc = ZDM_EXIT_FAILED, row;

	zdm_error_clear(&err);
	conn = zdm_conn_open(conninfo, "status", NULL, &err);
	if (conn == NULL)
		goto done;
	switch (zdm_journal_exists(conn, &err)) {
	case -1:
		goto done;
	case 0:
		if (json)
			puts(plan ? "null" : "[]");
		else
			printf("no zdm migration has run in this database\n");
		rc = ZDM_EXIT_OK;
		goto done;
	}
	if (zdm_conn_query(conn, status_migrations_sql, 1, params, &res,
	                   &err) != 0)
		goto done;
	if (json)
		all = json_array();
	if (PQntuples(res) == 0 && !json)
		printf("%s\n",
		       plan ? "this migration has not started"
		            : "no zdm migration has run in this database");
	for (row = 0; row < PQntuples(res); row++) {
		if (!json) {
			status_print_human(res, row, plan_path);
			status_print_attempts(conn, PQgetvalue(res, row, 0));
			status_print_sync(conn, PQgetvalue(res, row, 0));
			continue;
		}
		entry = json_pack(
			"{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o}, s:o, s:o}",
			"migration", status_str(res, row, 0), "state",
			json_string(status_state(res, row, &resume)),
			"journal_state", status_str(res, row, 1),
			"runner_alive", PQgetvalue(res, row, 16)[0] == 't',
			"plan_sha256", status_str(res, row, 2), "current_step",
			status_str(res, row, 3), "phase",
			status_str(res, row, 11), "waiting_gate",
			status_str(res, row, 4), "started_at",
			status_str(res, row, 5), "updated_at",
			status_str(res, row, 6), "steps_done",
			status_int(res, row, 9), "backfill", "rows",
			status_int(res, row, 13), "pages_done",
			status_int(res, row, 14), "pages_total",
			status_int(res, row, 15), "last_error", "message",
			status_str(res, row, 7), "sqlstate",
			status_str(res, row, 8), "step",
			status_str(res, row, 12), "steps",
			status_steps(conn, PQgetvalue(res, row, 0), &err),
			"sync",
			status_sync_json(conn, PQgetvalue(res, row, 0)));
		if (entry == NULL) {
			zdm_error_set(&err,
			              "out of memory building the "
			              "status of migration %s",
			              PQgetvalue(res, row, 0));
			goto done;
		}
		status_attempts_json(conn, PQgetvalue(res, row, 0), entry);
		json_array_append_new(all, entry);
	}
	if (json) {
		json_t *out = plan ? json_array_get(all, 0) : all;
		char *text = out ? json_dumps(out, JSON_INDENT(2) |
		                                           JSON_PRESERVE_ORDER)
		                 : NULL;

		puts(text ? text : "null");
		free(text);
	}
	rc = ZDM_EXIT_OK;
done:
	if (rc != ZDM_EXIT_OK)
		zdm_error_print(&err, stderr);
	if (all)
		json_decref(all);
	if (res)
		PQclear(res);
	if (conn)
		PQfinish(conn);
	return rc;
}
