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
 *   zdm.cdc (migration, ...): what a running zdm sync reports
 *   zdm.claims (relation regclass PRIMARY KEY, table_name, migration,
 *               claimed_at): the tables of each migration in flight; one
 *       migration per table, from its start until done or rolled back
 *   zdm.attempts (migration, attempt, plan_sha256, source_file, plan,
 *                 state, current_step, started_at, finished_at,
 *                 last_error, last_sqlstate, steps jsonb, replaced_at;
 *                 PRIMARY KEY (migration, attempt)): earlier attempts of a
 *       migration that started again, as they ended
 */
#ifndef ZDM_JOURNAL_H
#define ZDM_JOURNAL_H

#include "plan_read.h"
#include "zdm.h"

/*
 * A SQL expression, over zdm.migrations aliased m: does a session hold the
 * migration's advisory lock, the one a runner (apply or rollback) holds for
 * its whole run (key hashtextextended('zdm:' || migration, 0), runner.c)?
 * pg_locks shows a bigint key as its high half in classid and its low half
 * in objid, objsubid 1.  Read from pg_locks, never taken, so the readers of
 * the journal (status, a sequence's listing) never stand in a runner's way.
 * The journal says running or rolling_back until the runner writes how it
 * ended, which a runner killed with -9 never does: running without a runner
 * is stopped (ZDM_JOURNAL_STATE_SQL).
 */
#define ZDM_JOURNAL_RUNNER_ALIVE_SQL                                              \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_locks l"                             \
	"         WHERE l.locktype = 'advisory' AND l.granted"                    \
	"           AND l.objsubid = 1"                                           \
	"           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d" \
	"                              WHERE d.datname = "                        \
	"                                    pg_catalog.current_database())"      \
	"           AND ((l.classid::pg_catalog.int8 << 32)"                      \
	"                | l.objid::pg_catalog.int8)"                             \
	"               = pg_catalog.hashtextextended('zdm:' || m.migration, 0))"
/* m.state as a person should read it: stopped for a runner that is gone. */
#define ZDM_JOURNAL_STATE_SQL                                                                    \
	"CASE WHEN m.state IN ('running', 'rolling_back') AND NOT " ZDM_JOURNAL_RUNNER_ALIVE_SQL \
	" THEN 'stopped' ELSE m.state END"

typedef enum zdm_step_state {
	ZDM_STATE_PENDING,
	ZDM_STATE_RUNNING,
	ZDM_STATE_DONE,
	ZDM_STATE_FAILED,
	ZDM_STATE_COMPENSATED
} zdm_step_state;

/* Create schema zdm and its tables if missing (safe to run concurrently);
 * migrations in flight that an earlier zdm started (no claims) claim their
 * plans' tables then. */
int zdm_journal_init(PGconn *conn, zdm_error *err);

/*
 * Every other statement on the journal is one of the functions below (the
 * readers status.c and history.c keep their own SELECTs, shaped for what
 * they print, and use zdm_journal_exists).  Each returns 0, or -1 with err
 * set; none opens or ends a transaction unless it says so, so a caller can
 * put a journal write in the same transaction as the step it records.
 * Parameters named migration and step_id identify the rows.
 */

/* 1 when the journal exists in this database, 0 when not (zdm never ran
 * here: nothing is created by asking), -1 on error.  An existing journal
 * the role may not read is an error (zdm_journal_access). */
int zdm_journal_exists(PGconn *conn, zdm_error *err);

/* 0 when there is no journal or the role may read it (with write: write
 * it); otherwise -1 and a 42501 error that names the journal's owner, what
 * the role lacks and the grants that would do.  Asked of the catalog, so it
 * works where PostgreSQL would only say "permission denied for schema
 * zdm".  A runner asks with write before it reads anything. */
int zdm_journal_access(PGconn *conn, bool write, zdm_error *err);

/* The migration's row: 0 found (*state and *plan_sha256 malloc'd, the
 * caller frees), 1 none (or no journal at all), -1 error. */
int zdm_journal_migration(PGconn *conn, const char *migration, char **state,
                          char **plan_sha256, zdm_error *err);

/* states[i] for plan->steps[i], from zdm.steps (pending when no row). */
int zdm_journal_step_states(PGconn *conn, const zdm_plan *plan,
                            zdm_step_state *states, zdm_error *err);

/* Bring a journal that an earlier zdm created up to this version's tables
 * (zdm_journal_init, only when something is missing). */
int zdm_journal_ensure(PGconn *conn, zdm_error *err);

/*
 * A new journal entry, in a transaction of its own: the migration (an older
 * entry of that name kept in zdm.attempts, then replaced with its
 * checkpoints), running, every step pending, and a claim on each of the
 * plan's tables.  0 started (*attempt: its number, 1 for the first), 1
 * refused because another migration holds one of the tables (err says
 * which, in whose hands, and what to do; nothing written), -1 error.
 */
int zdm_journal_start(PGconn *conn, const zdm_plan *plan, const char *plan_text,
                      int *attempt, zdm_error *err);

/* Who holds a claim on a table, for a refusal. */
typedef struct zdm_claim_holder {
	char migration[256];
	char where
		[512]; /* "running, last step backfill.1", "paused at gate switch" */
} zdm_claim_holder;

/* Another migration's claim on table (a quoted qualified name): 1 with
 * *holder, 0 none (or a journal without claims), -1 error.  Reads only; in
 * the caller's transaction. */
int zdm_journal_claim_holder(PGconn *conn, const char *migration,
                             const char *table, zdm_claim_holder *holder,
                             zdm_error *err);
/* The refusal's sentence (after "TABLE: ") and its hint: one text for the
 * preflight and the start. */
void zdm_journal_claim_problem(const zdm_claim_holder *holder, char *problem,
                               size_t plen, char *hint, size_t hlen);
/* 1 when the migration may start again, perhaps with another plan (rolled
 * back, or no step of it ever ran), 0 when not, -1 error. */
int zdm_journal_replaceable(PGconn *conn, const char *migration,
                            zdm_error *err);
/* The number of the migration's current attempt (1 without earlier ones),
 * or -1 with err. */
int zdm_journal_attempt(PGconn *conn, const char *migration, zdm_error *err);

/* The migration row's state; step_id NULL keeps current_step; why NULL (or
 * empty) clears last_error. */
int zdm_journal_set_state(PGconn *conn, const char *migration,
                          const char *state, const char *step_id,
                          const char *gate, const zdm_error *why,
                          zdm_error *err);
int zdm_journal_set_current_step(PGconn *conn, const char *migration,
                                 const char *step_id, zdm_error *err);
/* A line in zdm.events; step_id and message may be NULL. */
int zdm_journal_event(PGconn *conn, const char *migration, const char *step_id,
                      const char *event, const char *message, zdm_error *err);

/* Step transitions.  running counts an attempt and clears the last error;
 * done records rows (NULL: none) and a result (NULL: none). */
int zdm_journal_step_running(PGconn *conn, const char *migration,
                             const char *step_id, zdm_error *err);
int zdm_journal_step_done(PGconn *conn, const char *migration,
                          const char *step_id, const char *rows,
                          const char *result, zdm_error *err);
/* failed, with why's message and SQLSTATE; result NULL keeps the old one. */
int zdm_journal_step_failed(PGconn *conn, const char *migration,
                            const char *step_id, const zdm_error *why,
                            const char *result, zdm_error *err);
/* running -> pending (the attempt did not commit); *changed says whether
 * the step was running.  changed may be NULL. */
int zdm_journal_step_pending(PGconn *conn, const char *migration,
                             const char *step_id, bool *changed,
                             zdm_error *err);
int zdm_journal_step_compensated(PGconn *conn, const char *migration,
                                 const char *step_id, zdm_error *err);
/* The step's undo failed: the step stays done, its error says "undo: ". */
int zdm_journal_step_undo_failed(PGconn *conn, const char *migration,
                                 const char *step_id, const zdm_error *why,
                                 zdm_error *err);

/* Rollback: this attempt's backfill checkpoints and approvals go. */
int zdm_journal_forget_attempt(PGconn *conn, const char *migration,
                               zdm_error *err);
/* Rollback's end: every step that ever started is compensated. */
int zdm_journal_all_compensated(PGconn *conn, const char *migration,
                                zdm_error *err);

/* The gate's approval: 1 approved (who_at says by whom and when), 0 not,
 * -1 error. */
int zdm_journal_approval(PGconn *conn, const char *migration, const char *gate,
                         char *who_at, size_t len, zdm_error *err);
/* Record an approval: 1 recorded now, 0 it was already there, -1 error. */
int zdm_journal_approve(PGconn *conn, const char *migration, const char *gate,
                        const char *who, zdm_error *err);

/* The rows every run of a backfill step checkpointed: 0 with *rows, 1 when
 * there are no checkpoints, -1 error. */
int zdm_journal_backfill_rows(PGconn *conn, const char *migration,
                              const char *step_id, long long *rows,
                              zdm_error *err);

#endif
