/*
 * options.h -- the migration's options (with (...)), checked and defaulted.
 *
 * Every option has a documented default (docs/language.md), so a migration
 * with no with-clause is complete.  Durations are kept in milliseconds.
 */
#ifndef ZDMC_OPTIONS_H
#define ZDMC_OPTIONS_H

#include "ast.h"
#include "diag.h"

typedef enum zdmc_phase {
	ZDMC_PHASE_EXPAND,
	ZDMC_PHASE_BACKFILL,
	ZDMC_PHASE_VERIFY,
	ZDMC_PHASE_SWITCH,
	ZDMC_PHASE_CONTRACT,
	ZDMC_NPHASES
} zdmc_phase;

extern const char *const zdmc_phase_names[ZDMC_NPHASES];

typedef struct zdmc_options {
	long batch_size;
	long batch_pause_ms;
	long lock_timeout_ms;
	long lock_retries;
	long statement_timeout_ms; /* zdm's sessions; 0: no limit */
	long verify_sample;
	unsigned
		approve; /* bit (1u << zdmc_phase) set: gate before that phase */
	const char *sync; /* "trigger" or "cdc" */
	size_t sync_offset;
	/* sync = cdc only (options_resolve refuses them with trigger) */
	const char *cdc_source; /* "native" (default) or "debezium" */
	const zdmc_name *key;   /* key = (col, ...): identifies a row */
	size_t nkey;
	long max_lag_ms;    /* catch_up passes at or under this lag ... */
	long stable_for_ms; /* ... held this long */
} zdmc_options;

/* Fill out with defaults, then apply list, reporting every bad option. */
void zdmc_options_resolve(zdmc_diag *diag, const zdmc_option *list,
                          zdmc_options *out);

#endif
