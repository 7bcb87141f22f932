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
	");\n"
	/* One migration in flight per table (docs/runbook.md, "Two migrations
	 * on one table").  A row per table a started migration changes, taken
	 * in the transaction that starts it (zdm_journal_start, before any
	 * expand step) and deleted by the statement that makes it done or
	 * rolled_back, or with its migration row (ON DELETE CASCADE).  Keyed
	 * by the table itself, not its name: a rename (rename to, or a schema
	 * change of the name) is still the same table.  regclass, not oid:
	 * pg_dump writes it as a name and a restore resolves it again, and
	 * pg_upgrade keeps relation OIDs.  The primary key is the enforcement;
	 * the check under claim_lock_sql only makes the refusal readable. */
	"CREATE TABLE IF NOT EXISTS zdm.claims (\n"
	"    relation   regclass PRIMARY KEY,\n"
	"    table_name text NOT NULL,\n"
	"    migration  text NOT NULL\n"
	"               REFERENCES zdm.migrations ON DELETE CASCADE,\n"
	"    claimed_at timestamptz NOT NULL DEFAULT pg_catalog.now()\n"
	");\n"
	/* Earlier attempts of a migration: when a rolled-back migration (or
	 * one that never ran a step) starts again, perhaps with a new plan,
	 * its row and its steps as they ended are kept here before they are
	 * replaced.  The current attempt's number is one more than the
	 * highest here. */
	"CREATE TABLE IF NOT EXISTS zdm.attempts (\n"
	"    migration     text NOT NULL,\n"
	"    attempt       integer NOT NULL,\n"
	"    plan_sha256   text NOT NULL,\n"
	"    source_file   text,\n"
	"    plan          text NOT NULL,\n"
	"    state         text NOT NULL,\n"
	"    current_step  text,\n"
	"    started_at    timestamptz NOT NULL,\n"
	"    finished_at   timestamptz,\n"
	"    last_error    text,\n"
	"    last_sqlstate text,\n"
	"    steps         jsonb NOT NULL,\n"
	"    replaced_at   timestamptz NOT NULL\n"
	"                  DEFAULT pg_catalog.clock_timestamp(),\n"
	"    PRIMARY KEY (migration, attempt)\n"
	");\n";

/* The newest table of journal_schema_sql: when it exists, the journal is of
 * this version (every table is created IF NOT EXISTS, so a journal of an
 * earlier version is brought up to date by running the whole script). */
static const char journal_current_sql[] =
	"SELECT pg_catalog.to_regclass('zdm.attempts') IS NOT NULL";

/*
 * Taken by every transaction that claims tables, so that the check of
 * journal_claim_holder_sql and the INSERT are one step for all runners:
 * the second of two migrations started together sees the first's claim and
 * is refused by name, rather than failing on the primary key with a bare
 * duplicate key (or deadlocking, when two plans claim the same tables in
 * another order).  Held to the end of a short transaction; a fixed key
 * beside the journal creation's.
 */
static const char journal_claim_lock_sql[] =
	"SELECT pg_catalog.pg_advisory_xact_lock(7306541063204617569)";

/* A migration in flight that an earlier zdm started holds no claim: it
 * takes those that are free (journal_claim_unclaimed). */
static const char journal_claim_missing_sql[] =
	"INSERT INTO zdm.claims (relation, table_name, migration)"
	" SELECT r, $2, $1 FROM pg_catalog.to_regclass($2) AS r"
	" WHERE r IS NOT NULL"
	"   AND NOT EXISTS (SELECT FROM zdm.claims c WHERE c.relation = r)";

/*
 * Migrations in flight that hold no claim: started by a zdm from before
 * claims (zdm.claims was created just now, in this transaction, for a
 * journal that had migrations), with the plan each was started with.
 */
static const char journal_unclaimed_sql[] =
	"SELECT m.migration, m.plan FROM zdm.migrations m"
	" WHERE m.state NOT IN ('done', 'rolled_back')"
	"   AND NOT EXISTS (SELECT FROM zdm.claims c"
	"                    WHERE c.migration = m.migration)";

static int journal_exec(PGconn *conn, const char *sql, int n,
                        const char *const *params, zdm_error *err);

/* Each unclaimed migration in flight claims its plan's tables that are
 * free (two such migrations on one table: the first keeps it).  A plan
 * that no longer reads is left unclaimed: its resume would refuse it. */
static int
journal_claim_unclaimed(PGconn *conn, zdm_error *err)
{
	PGresult *res;
	int rc = 0;

	if (zdm_conn_exec(conn, journal_claim_lock_sql, err) != 0 ||
	    zdm_conn_query(conn, journal_unclaimed_sql, 0, NULL, &res, err) !=
	            0)
		return -1;
	for (int row = 0; rc == 0 && row < PQntuples(res); row++) {
		zdm_plan *plan = NULL;
		char errbuf[256];

		if (zdm_plan_parse(&plan, PQgetvalue(res, row, 0),
		                   PQgetvalue(res, row, 1),
		                   (size_t)PQgetlength(res, row, 1), errbuf,
		                   sizeof(errbuf)) != 0)
			continue;
		for (size_t i = 0; rc == 0 && i < plan->ntables; i++) {
			const char *p[2] = {PQgetvalue(res, row, 0),
			                    plan->tables[i]};

			rc = journal_exec(conn, journal_claim_missing_sql, 2, p,
			                  err);
		}
		zdm_plan_free(plan);
	}
	PQclear(res);
	return rc;
}

/*
 * Whether the connected role may use an existing journal, asked of the
 * catalog (readable by every role) before any statement touches schema zdm:
 * PostgreSQL's own refusal ("permission denied for schema zdm") names
 * neither who owns the journal nor what to grant.  Rows: the schema's
 * owner, the current user, USAGE on the schema, the journal tables the role
 * may not read (or, with $1, write: SELECT, INSERT, UPDATE and DELETE, each
 * asked alone because has_table_privilege with a list is true if any one is
 * held), and with $1 the sequences it may not use.  No row: no journal.
 */
static const char journal_access_sql[] =
	"SELECT pg_catalog.quote_ident(o.rolname),"
	"       pg_catalog.quote_ident(CURRENT_USER),"
	"       pg_catalog.has_schema_privilege(n.oid, 'USAGE'),"
	"       (SELECT pg_catalog.string_agg('zdm.' || c.relname, ', '"
	"                                     ORDER BY c.relname)"
	"          FROM pg_catalog.pg_class c"
	"         WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')"
	"           AND NOT (pg_catalog.has_table_privilege(c.oid, 'SELECT')"
	"                    AND (NOT $1::bool"
	"                         OR (pg_catalog.has_table_privilege(c.oid, 'INSERT')"
	"                             AND pg_catalog.has_table_privilege(c.oid, 'UPDATE')"
	"                             AND pg_catalog.has_table_privilege(c.oid, 'DELETE'))))),"
	"       (SELECT pg_catalog.string_agg('zdm.' || c.relname, ', '"
	"                                     ORDER BY c.relname)"
	"          FROM pg_catalog.pg_class c"
	"         WHERE $1::bool AND c.relnamespace = n.oid"
	/* CASE: the planner may ask before it filters on relkind, and
	 * has_sequence_privilege fails on anything but a sequence */
	"           AND CASE WHEN c.relkind = 'S'"
	"                    THEN NOT pg_catalog.has_sequence_privilege(c.oid, 'USAGE')"
	"               END)"
	"  FROM pg_catalog.pg_namespace n"
	"  JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner"
	" WHERE n.nspname = 'zdm'";

int
zdm_journal_access(PGconn *conn, bool write, zdm_error *err)
{
	const char *params[1] = {write ? "true" : "false"};
	PGresult *res;
	const char *owner, *role;
	char missing[256];

	if (zdm_conn_query(conn, journal_access_sql, 1, params, &res, err) != 0)
		return -1;
	if (PQntuples(res) == 0 ||
	    (PQgetvalue(res, 0, 2)[0] == 't' && PQgetisnull(res, 0, 3) &&
	     PQgetisnull(res, 0, 4))) {
		PQclear(res);
		return 0;
	}
	owner = PQgetvalue(res, 0, 0);
	role = PQgetvalue(res, 0, 1);
	if (PQgetvalue(res, 0, 2)[0] != 't')
		snprintf(missing, sizeof(missing), "USAGE on schema zdm");
	else if (!PQgetisnull(res, 0, 3))
		snprintf(missing, sizeof(missing), "%s on %s",
		         write ? "SELECT, INSERT, UPDATE and DELETE" : "SELECT",
		         PQgetvalue(res, 0, 3));
	else
		snprintf(missing, sizeof(missing), "USAGE on %s",
		         PQgetvalue(res, 0, 4));
	zdm_error_set(err,
	              "role %s may not %s zdm's journal (schema zdm, owned by "
	              "%s): it lacks %s",
	              role, write ? "write" : "read", owner, missing);
	snprintf(err->sqlstate, sizeof(err->sqlstate), "42501");
	if (write)
		snprintf(err->hint, sizeof(err->hint),
		         "run zdm as %s (a journal an earlier zdm made is "
		         "upgraded by its owner), or as %s: GRANT USAGE ON "
		         "SCHEMA zdm TO %s; GRANT SELECT, INSERT, UPDATE, "
		         "DELETE ON ALL TABLES IN SCHEMA zdm TO %s; GRANT "
		         "USAGE ON ALL SEQUENCES IN SCHEMA zdm TO %s",
		         owner, owner, role, role, role);
	else
		snprintf(err->hint, sizeof(err->hint),
		         "run zdm as %s, or as %s: GRANT USAGE ON SCHEMA zdm "
		         "TO %s; GRANT SELECT ON ALL TABLES IN SCHEMA zdm TO "
		         "%s",
		         owner, owner, role, role);
	PQclear(res);
	return -1;
}

int
zdm_journal_init(PGconn *conn, zdm_error *err)
{
	if (zdm_journal_access(conn, true, err) != 0)
		return -1;
	if (zdm_conn_exec(conn, "BEGIN", err) != 0)
		return -1;
	if (zdm_conn_exec(conn, journal_schema_sql, err) != 0 ||
	    journal_claim_unclaimed(conn, err) != 0 ||
	    zdm_conn_exec(conn, "COMMIT", err) != 0) {
		zdm_error tmp;

		(void)zdm_conn_exec(conn, "ROLLBACK", &tmp);
		return -1;
	}
	return 0;
}

/* A journal of an earlier version (or none): bring it up to date.  Only
 * then, because creating needs the CREATE privilege a runner that resumes
 * may not have, and a journal already current needs nothing. */
int
zdm_journal_ensure(PGconn *conn, zdm_error *err)
{
	PGresult *res;
	bool current;

	if (zdm_journal_access(conn, true, err) != 0 ||
	    zdm_conn_query(conn, journal_current_sql, 0, NULL, &res, err) != 0)
		return -1;
	current = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return current ? 0 : zdm_journal_init(conn, err);
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

/*
 * A migration that may start again, perhaps with another plan: it was
 * rolled back, or no step of it ever ran (it stopped before its first step
 * committed or began: nothing of it is in the database).  A step that
 * failed on a lock it was not granted (55P03, the run stopped) counts as
 * never run: its transaction rolled back whole, and an autocommit step's
 * INVALID index was dropped before the run stopped (runner.c says so in
 * the hint).  Any other failed step does not: an autocommit step's failed
 * build leaves an INVALID index that only its rollback drops.
 */
static const char journal_replaceable_sql[] =
	"SELECT m.state = 'rolled_back' OR (m.state <> 'done' AND NOT EXISTS"
	"  (SELECT FROM zdm.steps s WHERE s.migration = m.migration"
	"    AND s.state <> 'pending'"
	"    AND NOT (s.state = 'failed' AND s.sqlstate = '55P03'"
	"             AND m.state = 'stopped')))"
	" FROM zdm.migrations m WHERE m.migration = $1";

/* The number of the migration's current attempt (no row: 1). */
static const char journal_attempt_sql[] =
	"SELECT coalesce(pg_catalog.max(attempt), 0) + 1 FROM zdm.attempts"
	" WHERE migration = $1";

/*
 * Before a migration of the same name starts again: its row and its steps
 * as they ended, under the next attempt number.  Run in the starting
 * transaction, so an attempt is kept exactly when it is replaced.
 */
static const char journal_archive_attempt_sql[] =
	"INSERT INTO zdm.attempts (migration, attempt, plan_sha256,"
	"  source_file, plan, state, current_step, started_at, finished_at,"
	"  last_error, last_sqlstate, steps)"
	" SELECT m.migration,"
	"  coalesce((SELECT pg_catalog.max(a.attempt) FROM zdm.attempts a"
	"            WHERE a.migration = m.migration), 0) + 1,"
	"  m.plan_sha256, m.source_file, m.plan, m.state, m.current_step,"
	"  m.started_at, m.finished_at, m.last_error, m.last_sqlstate,"
	"  coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
	"     'step_id', s.step_id, 'phase', s.phase, 'state', s.state,"
	"     'attempts', s.attempts, 'rows', s.rows, 'result', s.result,"
	"     'error', s.error, 'sqlstate', s.sqlstate) ORDER BY s.position)"
	"   FROM zdm.steps s WHERE s.migration = m.migration), '[]')"
	" FROM zdm.migrations m WHERE m.migration = $1"
	" RETURNING attempt, state, plan_sha256";

/* A migration of the same name that was rolled back is started again from
 * nothing: its steps go with it (ON DELETE CASCADE), its claims and its
 * checkpoints too. */
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

/* Readers that must not create anything (preflight) ask first. */
static const char journal_claims_exist_sql[] =
	"SELECT pg_catalog.to_regclass('zdm.claims') IS NOT NULL";

/* Another migration's claim on the table $2 names, with where that
 * migration stands.  A name that resolves to nothing (a table the claiming
 * migration renamed) is held by nobody. */
static const char journal_claim_holder_sql[] =
	"SELECT c.migration, m.state, m.current_step, m.waiting_gate"
	" FROM zdm.claims c JOIN zdm.migrations m ON m.migration = c.migration"
	" WHERE c.relation = pg_catalog.to_regclass($2) AND c.migration <> $1";

/* A plain INSERT: a claim that is there already fails on the primary key,
 * whoever wrote it. */
static const char journal_claim_sql[] =
	"INSERT INTO zdm.claims (relation, table_name, migration)"
	" SELECT r, $2, $1 FROM pg_catalog.to_regclass($2) AS r"
	" WHERE r IS NOT NULL";

/* current_step keeps its value when $3 is NULL (a state change that is
 * not about a step); finished_at is set only by the two final states,
 * which also release the migration's claims, in the same statement. */
static const char journal_set_state_sql[] =
	"WITH released AS (DELETE FROM zdm.claims WHERE migration = $1"
	"   AND $2::text IN ('done', 'rolled_back'))"
	" UPDATE zdm.migrations SET state = $2,"
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

	if (zdm_journal_access(conn, false, err) != 0 ||
	    zdm_conn_query(conn, journal_exists_sql, 0, NULL, &res, err) != 0)
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

/* Where the migration holding a claim stands, for the refusal. */
static void
journal_holder_where(const PGresult *res, char *where, size_t len)
{
	const char *state = PQgetvalue(res, 0, 1);

	if (!PQgetisnull(res, 0, 3))
		snprintf(where, len, "%s at gate %s", state,
		         PQgetvalue(res, 0, 3));
	else if (!PQgetisnull(res, 0, 2))
		snprintf(where, len, "%s, last step %s", state,
		         PQgetvalue(res, 0, 2));
	else
		snprintf(where, len, "%s", state);
}

int
zdm_journal_claim_holder(PGconn *conn, const char *migration, const char *table,
                         zdm_claim_holder *holder, zdm_error *err)
{
	const char *params[2] = {migration, table};
	PGresult *res;
	int held;

	memset(holder, 0, sizeof(*holder));
	if (zdm_conn_query(conn, journal_claims_exist_sql, 0, NULL, &res,
	                   err) != 0)
		return -1;
	held = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!held)
		return 0; /* no journal, or one of an earlier version */
	if (zdm_conn_query(conn, journal_claim_holder_sql, 2, params, &res,
	                   err) != 0)
		return -1;
	held = PQntuples(res) > 0;
	if (held) {
		snprintf(holder->migration, sizeof(holder->migration), "%s",
		         PQgetvalue(res, 0, 0));
		journal_holder_where(res, holder->where, sizeof(holder->where));
	}
	PQclear(res);
	return held;
}

void
zdm_journal_claim_problem(const zdm_claim_holder *holder, char *problem,
                          size_t plen, char *hint, size_t hlen)
{
	snprintf(problem, plen,
	         "migration %s is in flight on this table (%s); one migration "
	         "per table at a time",
	         holder->migration, holder->where);
	snprintf(hint, hlen,
	         "finish %s (zdm apply with its plan) or roll it back (zdm "
	         "rollback with its plan), then apply this plan; zdm status "
	         "shows where it stands",
	         holder->migration);
}

/* Every table of the plan free, or err says which is not (1).  In the
 * caller's transaction, after journal_claim_lock_sql. */
static int
journal_check_claims(PGconn *conn, const zdm_plan *plan, zdm_error *err)
{
	for (size_t i = 0; i < plan->ntables; i++) {
		zdm_claim_holder holder;
		char problem[sizeof(err->message)], hint[sizeof(err->hint)];

		switch (zdm_journal_claim_holder(
			conn, plan->migration, plan->tables[i], &holder, err)) {
		case -1:
			return -1;
		case 0:
			continue;
		}
		zdm_journal_claim_problem(&holder, problem, sizeof(problem),
		                          hint, sizeof(hint));
		zdm_error_set(err, "%s: %s", plan->tables[i], problem);
		snprintf(err->hint, sizeof(err->hint), "%s", hint);
		return 1;
	}
	return 0;
}

int
zdm_journal_start(PGconn *conn, const zdm_plan *plan, const char *plan_text,
                  int *attempt, zdm_error *err)
{
	const char *params[4] = {plan->migration, plan->plan_sha256,
	                         plan->source_file, plan_text};
	PGresult *res = NULL;
	zdm_error ignored;
	int rc = -1;

	*attempt = 1;
	if (zdm_conn_exec(conn, "BEGIN", err) != 0)
		return -1;
	if (zdm_conn_exec(conn, journal_claim_lock_sql, err) != 0)
		goto fail;
	if ((rc = journal_check_claims(conn, plan, err)) != 0)
		goto fail;
	rc = -1;
	if (zdm_conn_query(conn, journal_archive_attempt_sql, 1, params, &res,
	                   err) != 0)
		goto fail;
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
	for (size_t i = 0; i < plan->ntables; i++) {
		const char *p[2] = {plan->migration, plan->tables[i]};

		if (journal_exec(conn, journal_claim_sql, 2, p, err) != 0)
			goto fail;
	}
	/* An approval belongs to the attempt it was given in: a new plan (an
	 * attempt that never ran a step is replaced without the rollback that
	 * would have forgotten them) needs its gates approved again. */
	if (PQntuples(res) > 0 &&
	    journal_exec(conn, journal_delete_approvals_sql, 1, params, err) !=
	            0)
		goto fail;
	if (PQntuples(res) > 0) {
		char message[256];

		*attempt = atoi(PQgetvalue(res, 0, 0)) + 1;
		snprintf(message, sizeof(message),
		         "attempt %d with plan %.12s...; attempt %s (plan "
		         "%.12s...) ended %s",
		         *attempt, plan->plan_sha256, PQgetvalue(res, 0, 0),
		         PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
		if (zdm_journal_event(conn, plan->migration, NULL, "attempt",
		                      message, err) != 0)
			goto fail;
	}
	if (zdm_conn_exec(conn, "COMMIT", err) != 0)
		goto fail;
	PQclear(res);
	return 0;
fail:
	PQclear(res);
	(void)zdm_conn_exec(conn, "ROLLBACK", &ignored);
	return rc;
}

int
zdm_journal_replaceable(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;
	int yes;

	if (zdm_conn_query(conn, journal_replaceable_sql, 1, params, &res,
	                   err) != 0)
		return -1;
	yes = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return yes;
}

int
zdm_journal_attempt(PGconn *conn, const char *migration, zdm_error *err)
{
	const char *params[1] = {migration};
	PGresult *res;
	int n;

	if (zdm_conn_query(conn, journal_current_sql, 0, NULL, &res, err) != 0)
		return -1;
	n = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!n)
		return 1;
	if (zdm_conn_query(conn, journal_attempt_sql, 1, params, &res, err) !=
	    0)
		return -1;
	n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
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
