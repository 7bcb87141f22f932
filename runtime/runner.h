/*
 * runner.h -- the commands that change a migration's state: apply,
 * rollback, approve; and status, which only reads.
 *
 * Each returns a process exit code (ZDM_EXIT_*) and prints what happened;
 * main.c only parses arguments and loads the plan.
 */
#ifndef ZDM_RUNNER_H
#define ZDM_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "plan_read.h"
#include "zdm.h"

typedef struct zdm_apply_opts {
	const char *conninfo; /* NULL: DATABASE_URL, else libpq's environment */
	const char *plan_path;   /* as given, for the commands we print */
	const char *history_dir; /* --history: git repository of the record;
	                          * NULL: the one holding the plan */
	char **approve;          /* --approve GATE[,GATE] */
	size_t napprove;
	bool approve_all;
	bool wait; /* block at a gate until approved */
	const char *approved_by;
	long batch_size;   /* 0: the plan's */
	long pause_ms;     /* < 0: the plan's */
	int jobs;          /* backfill workers */
	bool full_speed;   /* --full-speed: the backfill never yields */
	long sync_wait_ms; /* --sync-wait: no zdm sync this long -> exit 4;
	                    * 0: sync_wait.c's default */
	/* rollback --discard-new-rows: a table the migration created is
	 * dropped with the rows written into it since (zdm.discard_new_rows
	 * on for the rollback's session) */
	bool discard_new_rows;
} zdm_apply_opts;

int zdm_apply(const zdm_plan *plan, const zdm_apply_opts *opts);
int zdm_rollback(const zdm_plan *plan, const zdm_apply_opts *opts);
int zdm_approve(const zdm_plan *plan, const zdm_apply_opts *opts,
                const char *gate);
/* plan NULL: every migration in the journal. */
int zdm_status(const zdm_plan *plan, const char *plan_path,
               const char *conninfo, bool json);

#endif
