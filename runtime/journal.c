/*
 * journal.c -- the zdm schema in the target database.
 *
 * Created on first use, idempotently, under a transaction-scoped advisory
 * lock so two first runs at once cannot race on CREATE TABLE.  The schema is
 * zdm's own: nothing here touches the user's objects.
 */
#include "journal.h"

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
