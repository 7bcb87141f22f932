/*
 * journal.h -- the durable record of every migration, in the target
 * database itself (schema zdm, created on first use).
 *
 * The journal is the source of truth for where a migration stands.  Where
 * PostgreSQL allows, a step's statements and the journal row that says the
 * step is done commit in one transaction, so a crash can never leave the
 * journal claiming something that did not happen, or missing something that
 * did.  Tables (created by zdm_journal_init, idempotently):
 *
 *   zdm.migrations (migration text PRIMARY KEY, plan_sha256, source_file,
 *                   plan text -- the plan as applied, state, current_step,
 *                   waiting_gate, started_at, updated_at, finished_at,
 *                   last_error, last_sqlstate)
 *       state: running | paused | stopped | failed | done |
 *              rolling_back | rolled_back
 *   zdm.steps (migration, step_id, position, phase, state, attempts,
 *              started_at, finished_at, rows bigint, result text,
 *              error, sqlstate; PRIMARY KEY (migration, step_id))
 *       state: pending | running | done | failed | compensated
 *   zdm.backfill (migration, step_id, worker integer, first_page bigint,
 *                 end_page bigint, next_page bigint, rows bigint,
 *                 relfilenode oid -- the file the pages are of;
 *                 PRIMARY KEY (migration, step_id, worker))
 *       one row per backfill worker: it owns pages [first_page, end_page)
 *       and has finished every page below next_page (checkpoint)
 *   zdm.approvals (migration, gate, approved_by, approved_at;
 *                  PRIMARY KEY (migration, gate))
 *   zdm.events (id bigserial, migration, at, step_id, event, message)
 */
#ifndef ZDM_JOURNAL_H
#define ZDM_JOURNAL_H

#include "plan_read.h"
#include "zdm.h"

typedef enum zdm_step_state {
	ZDM_STATE_PENDING,
	ZDM_STATE_RUNNING,
	ZDM_STATE_DONE,
	ZDM_STATE_FAILED,
	ZDM_STATE_COMPENSATED
} zdm_step_state;

/* Create schema zdm and its tables if missing (safe to run concurrently). */
int zdm_journal_init(PGconn *conn, zdm_error *err);

#endif
