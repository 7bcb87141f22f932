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

#define ZDM_PLAN_FORMAT_VERSION 1

typedef enum zdm_step_kind {
	ZDM_STEP_SQL,
	ZDM_STEP_BACKFILL,
	ZDM_STEP_CHECK,
	ZDM_STEP_GATE
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
	/* backfill */
	char *key;
	long batch_size;
	long batch_pause_ms;
	/* check */
	long long expect;
	char *examples_sql;
	/* gate */
	char *gate;
	bool approval;
} zdm_step;

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
	char *sync;
	long verify_sample;
	char *version_schema;
	char *search_path;
	char **tables; /* quoted qualified names, in plan order */
	size_t ntables;
	zdm_table_info *table_info; /* the same tables, with their changes */
	size_t ntable_info;
	zdm_step *steps; /* every step of every phase, in order */
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

#endif
