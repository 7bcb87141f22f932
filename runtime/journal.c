/*
 * journal.c -- the zdm schema in the target database, and every statement
 * that writes it.
 *
 * Created on first use, idempotently, under a transaction-scoped advisory
 * lock so two first runs at once cannot race on CREATE TABLE.  The schema is
 * zdm's own: nothing here touches the user's objects.
 *
 * The SQL is here as named constants, each with why it is shaped so; the
 * functions run one each and leave transactions to their callers (except
 * zdm_journal_init and zdm_journal_start, which are whole transactions).
 * Timestamps are clock_timestamp(), not now(): a step's journal rows are
 * often written inside the step's own transaction, and now() would stamp
 * every step of a long transaction with its start.
 */
#include "journal.h"

#include <stdlib.h>
#include <string.h>

/* A fixed key for "creating the journal"; per-migration locks use
 * hashtextextended('zdm:' || migration, 0) and cannot collide with it in
 * practice. */
static const char journal_schema_sql[] =
	"SET LOCAL client_min_messages = warning;\n"
	"SELECT pg_catalog.pg_advisory_xact_lock(7306541063204617568);\n"
	"CREATE SCHEMA IF NOT EXISTS zdm;\n"
	"CREATE TABLE IF NOT EXISTS zdm.migrations (\n"
	"    migration     text PRIMARY KEY,\n"
	"    plan_sha256   text NOT NULL,\n"
	"    source_file   text,\n"
	"    plan          text NOT NULL,\n"
	"    state         text NOT NULL,\n"
	"    current_step  text,\n"
	"    waiting_gate  text,\n"
	"    started_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"
	"    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"
	"    finished_at   timestamptz,\n"
	"    last_error    text,\n"
	"    last_sqlstate text\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS zdm.steps (\n"
	"    migration   text NOT NULL REFERENCES zdm.migrations ON DELETE CASCADE,\n"
	"    step_id     text NOT NULL,\n"
	"    position    integer NOT NULL,\n"
	"    phase       text NOT NULL,\n"
	"    state       text NOT NULL DEFAULT 'pending',\n"
	"    attempts    integer NOT NULL DEFAULT 0,\n"
	"    started_at  timestamptz,\n"
	"    finished_at timestamptz,\n"
	"    rows        bigint,\n"
	"    result      text,\n"
	"    error       text,\n"
	"    sqlstate    text,\n"
	"    PRIMARY KEY (migration, step_id)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS zdm.backfill (\n"
	"    migration  text NOT NULL,\n"
	"    step_id    text NOT NULL,\n"
	"    worker     integer NOT NULL,\n"
	"    first_page bigint NOT NULL,\n"
	"    end_page   bigint NOT NULL,\n"
	"    next_page  bigint NOT NULL,\n"
	"    rows       bigint NOT NULL DEFAULT 0,\n"
	"    relfilenode oid,\n"
	"    PRIMARY KEY (migration, step_id, worker),\n"
	"    FOREIGN KEY (migration, step_id) REFERENCES zdm.steps ON DELETE CASCADE\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS zdm.approvals (\n"
	"    migration   text NOT NULL,\n"
	"    gate        text NOT NULL,\n"
	"    approved_by text NOT NULL,\n"
	"    approved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"
	"    PRIMARY KEY (migration, gate)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS zdm.events (\n"
	"    id        bigserial PRIMARY KEY,\n"
	"    migration text NOT NULL,\n"
	"    at        timestamptz NOT NULL DEFAULT pg_catalog.now(),\n"
	"    step_id   text,\n"
	"    event     text NOT NULL,\n"
	"    message   text\n"
	");\n"
	/* sync = cdc: what the running zdm sync reports, for catch-up steps
	 * and status; the runner asks it to stop through stop_requested */
	"CREATE TABLE IF NOT EXISTS zdm.cdc (\n"
	"    migration       text PRIMARY KEY,\n"
	"    source          text NOT NULL,\n"
	"    state           text NOT NULL,\n"
	"    stop_requested  boolean NOT NULL DEFAULT false,\n"
	"    pid             integer,\n"
	"    host            text,\n"
	"    started_at      timestamptz,\n"
	"    seen_at         timestamptz,\n"
	"    applied_lsn     pg_lsn,\n"
	"    lag_seconds     double precision,\n"
	"    backlog         bigint,\n"
	"    changes_seen    bigint NOT NULL DEFAULT 0,\n"
	"    changes_applied bigint NOT NULL DEFAULT 0,\n"
	"    own_skipped     bigint NOT NULL DEFAULT 0,\n"
	"    last_error      text\n"
	");\n";

int
zdm_journal_init(PGconn *conn, zdm_error *err)
{
	if (zdm_conn_exec(conn, "BEGIN", err) != 0)
		return -1;
	if (zdm_conn_exec(conn, journal_schema_sql, err) != 0 ||
	    zdm_conn_exec(conn, "COMMIT", err) != 0) {
		zdm_error tmp;

		(void)zdm_conn_exec(conn, "ROLLBACK", &tmp);
		return -1;
	}
	return 0;
}

/* ---- the statements ---------------------------------------------------- */

/* to_regclass: never an error, and creates nothing; status and history
 * must not create the schema in a database zdm never ran in. */
static const char journal_exists_sql[] =
	"SELECT pg_catalog.to_regclass('zdm.migrations') IS NOT NULL";

static const char journal_migration_sql[] =
	"SELECT state, plan_sha256 FROM zdm.migrations WHERE migration = $1";

static const char journal_step_states_sql[] =
	"SELECT step_id, state FROM zdm.steps WHERE migration = $1";

/* A migration of the same name that was rolled back is started again from
 * nothing: its steps go with it (ON DELETE CASCADE), its checkpoints too. */
static const char journal_delete_migration_sql[] =
	"DELETE FROM zdm.migrations WHERE migration = $1";
static const char journal_delete_backfill_sql[] =
	"DELETE FROM zdm.backfill WHERE migration = $1";
static const char journal_insert_migration_sql[] =
	"INSERT INTO zdm.migrations"
	" (migration, plan_sha256, source_file, plan, state)"
	" VALUES ($1, $2, $3, $4, 'running')";
static const char journal_insert_step_sql[] =
	"INSERT INTO zdm.steps (migration, step_id, position, phase)"
	" VALUES ($1, $2, $3::integer, $4)";

/* current_step keeps its value when $3 is NULL (a state change that is
 * not about a step); finished_at is set only by the two final states. */
static const char journal_set_state_sql[] =
	"UPDATE zdm.migrations SET state = $2,"
	" current_step = coalesce($3, current_step),"
	" waiting_gate = $4, last_error = $5, last_sqlstate = $6,"
	" updated_at = pg_catalog.clock_timestamp(),"
	" finished_at = CASE WHEN $2 IN ('done', 'rolled_back')"
	"   THEN pg_catalog.clock_timestamp() END"
	" WHERE migration = $1";

static const char journal_set_current_step_sql[] =
	"UPDATE zdm.migrations SET current_step = $2,"
	" updated_at = pg_catalog.clock_timestamp() WHERE migration = $1";

static const char journal_event_sql[] =
	"INSERT INTO zdm.events (migration, step_id, event, message)"
	" VALUES ($1, $2, $3, $4)";

/* attempts counts every start, so status shows a step that was retried or
 * resumed; the previous attempt's error is cleared with it. */
static const char journal_step_running_sql[] =
	"UPDATE zdm.steps SET state = 'running',"
	" attempts = attempts + 1, started_at = pg_catalog.clock_timestamp(),"
	" error = NULL, sqlstate = NULL"
	" WHERE migration = $1 AND step_id = $2";

static const char journal_step_done_sql[] =
	"UPDATE zdm.steps SET state = 'done',"
	" finished_at = pg_catalog.clock_timestamp(), rows = $3::bigint,"
	" result = $4, error = NULL, sqlstate = NULL"
	" WHERE migration = $1 AND step_id = $2";

/* result: a failed check's counts and examples; NULL keeps what is there */
static const char journal_step_failed_sql[] =
	"UPDATE zdm.steps SET state = 'failed', error = $3,"
	" sqlstate = $4, result = coalesce($5, result),"
	" finished_at = pg_catalog.clock_timestamp()"
	" WHERE migration = $1 AND step_id = $2";

/* Only a step still marked running: one that committed (done) or failed
 * keeps its state.  RETURNING says whether it was. */
static const char journal_step_pending_sql[] =
	"UPDATE zdm.steps SET state = 'pending'"
	" WHERE migration = $1 AND step_id = $2 AND state = 'running'"
	" RETURNING step_id";

static const char journal_step_compensated_sql[] =
	"UPDATE zdm.steps SET state = 'compensated',"
	" finished_at = pg_catalog.clock_timestamp()"
	" WHERE migration = $1 AND step_id = $2";

/* The state stays done: the next rollback undoes the step again. */
static const char journal_step_undo_failed_sql[] =
	"UPDATE zdm.steps SET error = 'undo: ' || $3,"
	" sqlstate = $4 WHERE migration = $1 AND step_id = $2";

static const char journal_delete_approvals_sql[] =
	"DELETE FROM zdm.approvals WHERE migration = $1";

/* Steps that never started stay pending: status tells the two apart. */
static const char journal_all_compensated_sql[] =
	"UPDATE zdm.steps SET state = 'compensated'"
	" WHERE migration = $1 AND state <> 'pending'";

static const char journal_approval_sql[] =
	"SELECT approved_by, pg_catalog.to_char(approved_at,"
	" 'YYYY-MM-DD\"T\"HH24:MI:SSOF') FROM zdm.approvals"
	" WHERE migration = $1 AND gate = $2";

/* The first approval stands; RETURNING tells a new one from a repeat, so a
 * repeat writes no event and no history commit. */
static const char journal_approve_sql[] =
	"INSERT INTO zdm.approvals (migration, gate, approved_by)"
	" VALUES ($1, $2, $3) ON CONFLICT (migration, gate) DO NOTHING"
	" RETURNING approved_by";

/* Every worker's rows of every run: a resumed backfill's total. */
static const char journal_backfill_rows_sql[] =
	"SELECT pg_catalog.sum(rows) FROM zdm.backfill"
	" WHERE migration = $1 AND step_id = $2";

/* ---- the functions ------------------------------------------------------ */

static int
journal_exec(PGconn *conn, const char *sql, int n, const char *const *params,
             zdm_error *err)
{
	PGresult *res;

	if (zdm_conn_query(conn, sql, n, params, &res, err) != 0)
		return -1;
	PQclear(res);
	return 0;
}

int
zdm_journal_exists(PGconn *conn, zdm_error *err)
{
	PGresult *res;
	int exists;

	if (zdm_conn_query(conn, journal_exists_sql, 0, NULL, &res, err) != 0)
		return -1;
	exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return exists;
}

int
zdm_journal_migration(PGconn *conn, const char *migration, char **state,
                      char **plan_sha256, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;

	*state = *plan_sha256 = NULL;
	switch (zdm_journal_exists(conn, err)) {
	case -1:
		return -1;
	case 0:
		return 1;
	}
	if (zdm_conn_query(conn, journal_migration_sql, 1, params, &res, err) !=
	    0)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 1;
	}
	*state = strdup(PQgetvalue(res, 0, 0));
	*plan_sha256 = strdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (*state == NULL || *plan_sha256 == NULL) {
		free(*state);
		free(*plan_sha256);
		*state = *plan_sha256 = NULL;
		zdm_error_set(err, "out of memory");
		return -1;
	}
	return 0;
}

int
zdm_journal_step_states(PGconn *conn, const zdm_plan *plan,
                        zdm_step_state *states, zdm_error *err)
{
	static const struct {
		const char *name;
		zdm_step_state state;
	} names[] = {
		{"done", ZDM_STATE_DONE},
		{"running", ZDM_STATE_RUNNING},
		{"failed", ZDM_STATE_FAILED},
		{"compensated", ZDM_STATE_COMPENSATED},
	};
	const char *params[1] = {plan->migration};
	PGresult *res;
	int row;

	for (size_t i = 0; i < plan->nsteps; i++)
		states[i] = ZDM_STATE_PENDING;
	if (zdm_conn_query(conn, journal_step_states_sql, 1, params, &res,
	                   err) != 0)
		return -1;
	for (row = 0; row < PQntuples(res); row++) {
		const char *id = PQgetvalue(res, row, 0);
		const char *st = PQgetvalue(res, row, 1);

		for (size_t i = 0; i < plan->nsteps; i++) {
			if (strcmp(plan->steps[i].id, id) != 0)
				continue;
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]);
			     k++)
				if (strcmp(st, names[k].name) == 0)
					states[i] = names[k].state;
		}
	}
	PQclear(res);
	return 0;
}

int
zdm_journal_start(PGconn *conn, const zdm_plan *plan, const char *plan_text,
                  zdm_error *err)
{
	const char *params[4] = {plan->migration, plan->plan_sha256,
	                         plan->source_file, plan_text};
	zdm_error ignored;

	if (zdm_conn_exec(conn, "BEGIN", err) != 0)
		return -1;
	if (journal_exec(conn, journal_delete_migration_sql, 1, params, err) !=
	            0 ||
	    journal_exec(conn, journal_delete_backfill_sql, 1, params, err) !=
	            0 ||
	    journal_exec(conn, journal_insert_migration_sql, 4, params, err) !=
	            0)
		goto fail;
	for (size_t i = 0; i < plan->nsteps; i++) {
		char pos[32];
		const char *p[4] = {plan->migration, plan->steps[i].id, pos,
		                    plan->steps[i].phase};

		snprintf(pos, sizeof(pos), "%zu", i + 1);
		if (journal_exec(conn, journal_insert_step_sql, 4, p, err) != 0)
			goto fail;
	}
	if (zdm_conn_exec(conn, "COMMIT", err) != 0)
		goto fail;
	return 0;
fail:
	(void)zdm_conn_exec(conn, "ROLLBACK", &ignored);
	return -1;
}

int
zdm_journal_set_state(PGconn *conn, const char *migration, const char *state,
                      const char *step_id, const char *gate,
                      const zdm_error *why, zdm_error *err)
{
	const char *params[6] = {
		migration,
		state,
		step_id,
		gate,
		why && why->message[0] ? why->message : NULL,
		why && why->sqlstate[0] ? why->sqlstate : NULL,
	};

	return journal_exec(conn, journal_set_state_sql, 6, params, err);
}

int
zdm_journal_set_current_step(PGconn *conn, const char *migration,
                             const char *step_id, zdm_error *err)
{
	const char *params[2] = {migration, step_id};

	return journal_exec(conn, journal_set_current_step_sql, 2, params, err);
}

int
zdm_journal_event(PGconn *conn, const char *migration, const char *step_id,
                  const char *event, const char *message, zdm_error *err)
{
	const char *params[4] = {migration, step_id, event, message};

	return journal_exec(conn, journal_event_sql, 4, params, err);
}

int
zdm_journal_step_running(PGconn *conn, const char *migration,
                         const char *step_id, zdm_error *err)
{
	const char *params[2] = {migration, step_id};

	return journal_exec(conn, journal_step_running_sql, 2, params, err);
}

int
zdm_journal_step_done(PGconn *conn, const char *migration, const char *step_id,
                      const char *rows, const char *result, zdm_error *err)
{
	const char *params[4] = {migration, step_id, rows, result};

	return journal_exec(conn, journal_step_done_sql, 4, params, err);
}

int
zdm_journal_step_failed(PGconn *conn, const char *migration,
                        const char *step_id, const zdm_error *why,
                        const char *result, zdm_error *err)
{
	const char *params[5] = {migration, step_id, why->message,
	                         why->sqlstate[0] ? why->sqlstate : NULL,
	                         result};

	return journal_exec(conn, journal_step_failed_sql, 5, params, err);
}

int
zdm_journal_step_pending(PGconn *conn, const char *migration,
                         const char *step_id, bool *changed, zdm_error *err)
{
	const char *params[2] = {migration, step_id};
	PGresult *res;

	if (zdm_conn_query(conn, journal_step_pending_sql, 2, params, &res,
	                   err) != 0)
		return -1;
	if (changed != NULL)
		*changed = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int
zdm_journal_step_compensated(PGconn *conn, const char *migration,
                             const char *step_id, zdm_error *err)
{
	const char *params[2] = {migration, step_id};

	return journal_exec(conn, journal_step_compensated_sql, 2, params, err);
}

int
zdm_journal_step_undo_failed(PGconn *conn, const char *migration,
                             const char *step_id, const zdm_error *why,
                             zdm_error *err)
{
	const char *params[4] = {migration, step_id, why->message,
	                         why->sqlstate[0] ? why->sqlstate : NULL};

	return journal_exec(conn, journal_step_undo_failed_sql, 4, params, err);
}

int
zdm_journal_forget_attempt(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};

	if (journal_exec(conn, journal_delete_backfill_sql, 1, params, err) !=
	    0)
		return -1;
	return journal_exec(conn, journal_delete_approvals_sql, 1, params, err);
}

int
zdm_journal_all_compensated(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};

	return journal_exec(conn, journal_all_compensated_sql, 1, params, err);
}

int
zdm_journal_approval(PGconn *conn, const char *migration, const char *gate,
                     char *who_at, size_t len, zdm_error *err)
{
	const char *params[2] = {migration, gate};
	PGresult *res;
	int found;

	if (zdm_conn_query(conn, journal_approval_sql, 2, params, &res, err) !=
	    0)
		return -1;
	found = PQntuples(res) > 0;
	if (found)
		snprintf(who_at, len, "approved by %s at %s",
		         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
	return found;
}

int
zdm_journal_approve(PGconn *conn, const char *migration, const char *gate,
                    const char *who, zdm_error *err)
{
	const char *params[3] = {migration, gate, who};
	PGresult *res;
	int recorded;

	if (zdm_conn_query(conn, journal_approve_sql, 3, params, &res, err) !=
	    0)
		return -1;
	recorded = PQntuples(res) > 0;
	PQclear(res);
	return recorded;
}

int
zdm_journal_backfill_rows(PGconn *conn, const char *migration,
                          const char *step_id, long long *rows, zdm_error *err)
{
	const char *params[2] = {migration, step_id};
	PGresult *res;
	int none;

	if (zdm_conn_query(conn, journal_backfill_rows_sql, 2, params, &res,
	                   err) != 0)
		return -1;
	none = PQntuples(res) != 1 || PQgetisnull(res, 0, 0);
	if (!none)
		*rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return none;
}
