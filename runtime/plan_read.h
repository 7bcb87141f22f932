/*
 * plan_read.h -- the runtime's view of a compiled plan (plan.out).
 *
 * The plan file is the only contract between zdmc and zdm: this reader knows
 * docs/plan-format.md and nothing of the compiler's code.  A plan is refused,
 * before anything touches a database, when it is not valid YAML, has an
 * unknown format version, lacks a required field, or when its plan_sha256
 * does not match its content (edited by hand after compiling).
 */
#ifndef ZDM_PLAN_READ_H
#define ZDM_PLAN_READ_H

#include <stdbool.h>
#include <stddef.h>

/* Version 1: trigger sync.  Version 2: version 1 plus sync = cdc (the cdc
 * section and the catch_up and stop_sync steps). */
#define ZDM_PLAN_FORMAT_VERSION 2

typedef enum zdm_step_kind {
	ZDM_STEP_SQL,
	ZDM_STEP_BACKFILL,
	ZDM_STEP_CHECK,
	ZDM_STEP_GATE,
	ZDM_STEP_CATCH_UP,  /* cdc: wait for zdm sync (lag, or a barrier) */
	ZDM_STEP_STOP_SYNC, /* cdc: barrier, then stop zdm sync */
	ZDM_STEP_AUTOCOMMIT /* one statement outside any transaction block
	                     * (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD
	                     * VALUE); runner.c */
} zdm_step_kind;

typedef struct zdm_step {
	zdm_step_kind kind;
	char *id;    /* "expand.1" */
	char *phase; /* "expand" */
	char *description;
	char *table;       /* NULL when absent */
	char *transaction; /* label shared by steps that run in one transaction */
	long lock_timeout_ms;
	char *sql;          /* NULL for gates */
	char *compensation; /* NULL: nothing to undo */
	bool point_of_no_return;
	/* autocommit: the index the step builds, "schema.name" as written;
	 * NULL when absent.  An INVALID index of that name is what a failed
	 * or killed concurrent build leaves behind, and is dropped. */
	char *index;
	/* backfill */
	char *key;
	long batch_size;
	long batch_pause_ms;
	/* check */
	long long expect;
	char *examples_sql;
	/* check, cdc plans: offending row versions and their recheck (both
	 * NULL when absent); see docs/plan-format.md */
	char *in_flight_offenders;
	char *in_flight_recheck;
	/* gate */
	char *gate;
	bool approval;
	/* catch_up */
	long max_lag_ms;
	long stable_for_ms;
	bool barrier;
} zdm_step;

/* cdc.tables[].syncs[].on_insert / on_update: the first rule that holds
 * decides what a change event does. */
typedef enum zdm_cdc_cond {
	ZDM_CDC_COND_ALWAYS,   /* no condition */
	ZDM_CDC_COND_CHANGED,  /* any column's after text differs from before */
	ZDM_CDC_COND_NOT_NULL, /* any column is not NULL after */
	ZDM_CDC_COND_PENDING   /* after-image's zdm_sync_pending is true */
} zdm_cdc_cond;

typedef enum zdm_cdc_apply {
	ZDM_CDC_APPLY_NOTHING,
	ZDM_CDC_APPLY_FORWARD,
	ZDM_CDC_APPLY_REVERSE
} zdm_cdc_apply;

typedef struct zdm_cdc_rule {
	zdm_cdc_cond cond;
	char **columns; /* CHANGED, NOT_NULL */
	size_t ncolumns;
	zdm_cdc_apply apply;
} zdm_cdc_rule;

/* One change of a table that needs sync, as the applier runs it. */
typedef struct zdm_cdc_sync {
	char *at;
	char **params; /* $1..$n: after-image values of these columns */
	size_t nparams;
	char **touched; /* reverse's $n+1..$n+m: did the event set them */
	size_t ntouched;
	zdm_cdc_rule *on_insert;
	size_t non_insert;
	zdm_cdc_rule *on_update;
	size_t non_update;
	char *forward;
	char *reverse; /* NULL when irreversible */
} zdm_cdc_sync;

typedef struct zdm_cdc_table {
	char *table;   /* as in tables[].table: quoted, qualified */
	char *nspname; /* unquoted, as change events name it */
	char *relname; /* unquoted */
	char **key;    /* plain column names */
	size_t nkey;
	zdm_cdc_sync *syncs;
	size_t nsyncs;
} zdm_cdc_table;

typedef struct zdm_cdc_plan {
	char *source;      /* "native" or "debezium" */
	char *publication; /* native only; else NULL */
	char *slot;        /* native only; else NULL */
	char *origin;      /* native only; else NULL */
	long max_lag_ms;
	long stable_for_ms;
	zdm_cdc_table *tables;
	size_t ntables;
} zdm_cdc_plan;

/*
 * One item of tables[].changes: the source's intent, restated.  The steps
 * are what runs; the preflight reads these to know which columns the
 * migration replaces (split, retype: the old column is dropped at contract),
 * renames, or creates, and checks the live table against them.
 */
typedef struct zdm_change {
	char *kind;   /* split_column | rename_column | alter_column_type */
	char *at;     /* "file.zdm:8:3" in the source; NULL when absent */
	char *column; /* the existing column (a plain name, not quoted) */
	char *to;     /* rename_column: the new name; else NULL */
	char *type;   /* alter_column_type: the new type; else NULL */
	char *using;  /* alter_column_type: the new value; NULL when absent */
	char *reverse_using; /* split, type change: NULL when irreversible */
	/* split_column: the new columns, ninto of each (else NULL and 0) */
	char **into;
	char **into_types;
	bool *into_not_null;
	char **into_using;
	size_t ninto;
	bool irreversible;
} zdm_change;

/* A changed table with its changes, in plan order (parallel to tables). */
typedef struct zdm_table_info {
	char *name; /* as in tables[].table: quoted, qualified */
	zdm_change *changes;
	size_t nchanges;
} zdm_table_info;

typedef struct zdm_plan {
	int format_version;
	char *migration;
	char *source_file;
	char *source_sha256;
	char *plan_sha256;
	int min_server_version_num;
	long batch_size;
	long batch_pause_ms;
	long lock_timeout_ms;
	long lock_retries;
	char **approve;
	size_t napprove;
	char *sync; /* "trigger" or "cdc" */
	long verify_sample;
	char *version_schema;
	char *search_path;
	char **tables; /* quoted qualified names, in plan order */
	size_t ntables;
	zdm_table_info *table_info; /* the same tables, with their changes */
	size_t ntable_info;
	zdm_cdc_plan *cdc; /* sync = cdc (version 2); else NULL */
	zdm_step *steps;   /* every step of every phase, in order */
	size_t nsteps;
} zdm_plan;

/*
 * Read and validate the plan at path.  On failure returns -1 and writes a
 * message to errbuf ("plan.out:12:5: error: ..." where a position is known).
 */
int zdm_plan_load(zdm_plan **out, const char *path, char *errbuf,
                  size_t errlen);
/* The same, from bytes already in memory (name is used in messages). */
int zdm_plan_parse(zdm_plan **out, const char *name, const char *data,
                   size_t len, char *errbuf, size_t errlen);
void zdm_plan_free(zdm_plan *plan);
/* The last schema of the plan's search_path ("public" when it has none):
 * where its tables are; malloc'd, NULL when out of memory. */
char *zdm_plan_schema(const zdm_plan *plan);

#endif
