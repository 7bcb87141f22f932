/*
 * sync.h -- `zdm sync PLAN`: the long-running process that keeps the two
 * shapes of a cdc migration's tables in step (sync.c says how).
 */
#ifndef ZDM_SYNC_H
#define ZDM_SYNC_H

#include "plan_read.h"
#include "zdm.h"

typedef struct zdm_sync_opts {
	const char *conninfo; /* NULL: DATABASE_URL, else libpq's environment */
	const char *plan_path; /* as given, for messages */
	/* debezium only */
	const char *topic;
	const char *group_id;          /* NULL: "zdm-<migration>" */
	const char *const *kafka_conf; /* "key=value", NULL-terminated */
	/* the Debezium connector's replication slot: its confirmed_flush_lsn
	 * says what the connector has written to Kafka, which makes the
	 * catch-up barriers sound (sync.c); NULL: not known */
	const char *connector_slot;
	/* seconds between progress lines on stdout (<= 0: 5) */
	double progress_interval;
} zdm_sync_opts;

/*
 * Run until asked to stop (zdm.cdc.stop_requested, SIGINT/SIGTERM), until
 * the migration is done or rolled back, or until an error.  Returns a
 * process exit code: 0 stopped cleanly, 1 failed (zdm.cdc says why; a
 * restart replays from the last acknowledged position), 2 bad usage or a
 * plan without cdc.
 */
int zdm_sync(const zdm_plan *plan, const zdm_sync_opts *opts);

#endif
