/*
 * history.h -- every run recorded in git, with libgit2 (no git CLI).
 *
 * The journal in the database is the source of truth; the history is its
 * readable copy, where the team already looks.  Each state change of a
 * migration (steps done, a gate reached or approved, a failure, a rollback)
 * becomes a commit on refs/zdm/history of the repository that holds the
 * plan file, or of the repository named with --history (created if
 * missing).  A commit's tree holds, for every migration recorded so far,
 * <migration>/plan.yaml (the plan as applied) and <migration>/state.yaml
 * (its state, from the journal: steps with timings, rows backfilled, check
 * results, approvals with who and when, errors).  Commits chain; the ref is
 * moved with a compare-and-swap, retried, so concurrent runners lose
 * nothing.  The working tree, the index and HEAD are never touched, and
 * nothing secret is written (zdm never holds a password in what it records).
 *
 * Recording may fail (a locked repository, a full disk): callers report it
 * and carry on; zdm_history_sync re-records from the journal later.
 */
#ifndef ZDM_HISTORY_H
#define ZDM_HISTORY_H

#include <stdbool.h>

#include "zdm.h"

#define ZDM_HISTORY_REF "refs/zdm/history"

typedef struct zdm_history zdm_history;

/*
 * Open the history: history_dir (a repository, created if missing) when
 * given, else the git repository that contains plan_path (found upward from
 * its directory).  Returns 0, or -1 with err (e.g. the plan is not in a
 * repository and no --history was given).
 */
int zdm_history_open(zdm_history **out, const char *history_dir,
                     const char *plan_path, zdm_error *err);
void zdm_history_close(zdm_history *history);

/*
 * Commit the migration's current state, read from the journal through conn
 * (outside any transaction), with a one-line message such as
 * "split_user_name: backfill done, 1000000 rows in 3.1 s".  Returns 0, or -1
 * with err; the journal is unaffected either way.
 */
int zdm_history_record(zdm_history *history, PGconn *conn,
                       const char *migration, const char *message,
                       zdm_error *err);

/*
 * `zdm history sync`: for each migration in the journal (or only the named
 * one), record a commit if the state in the history differs from the
 * journal's.  Prints what it recorded; returns a ZDM_EXIT_* code.
 */
int zdm_history_sync(const char *conninfo, const char *history_dir,
                     const char *plan_path, const char *migration);

/* `zdm log [MIGRATION]`: the history, newest first, readable in a
 * terminal.  Returns a ZDM_EXIT_* code. */
int zdm_history_log(const char *history_dir, const char *plan_path,
                    const char *migration);

#endif
