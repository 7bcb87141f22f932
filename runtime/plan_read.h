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
 * section and the catch_up and stop_sync steps).  Version 3: changes
 * described by their facts, and the autocommit step.  All three are read. */
#define ZDM_PLAN_FORMAT_VERSION 3

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

/*
 * An autocommit step's diagnose: a check the runner runs only after the
 * step's statement failed (not for a lock conflict), to tell data that
 * makes it fail (duplicated keys under a unique index's build) from any
 * other failure.  sql returns one count; when it is not expect, the run
 * stops as a failed check does (exit 3, the count, examples_sql's rows);
 * otherwise the statement's own error is the one reported.
 */
typedef struct zdm_diagnosis {
	char *description; /* what holds when the count is expect */
	char *sql;
	long long expect;
	char *examples_sql; /* NULL when absent */
} zdm_diagnosis;

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
	/* autocommit: run after the statement failed; NULL when absent */
	zdm_diagnosis *diagnose;
	/* backfill */
	char *key;
	long batch_size;
	long batch_pause_ms;
	/* check */
	long long expect;
	char *examples_sql;
	/* check: the rows it counts, when its sql is SELECT count(*) FROM
	 * table WHERE count_where (NULL when absent); such checks of one
	 * table, in a row, are counted in one pass (verify_pass.h) */
	char *count_where;
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
	/* run instead of forward for an event forward cannot convert: the
	 * row's new columns NULL, pending (NULL when absent: such an event
	 * stops zdm sync) */
	char *unconvertible;
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

/* creates[]: a column the change adds (it must not exist yet). */
typedef struct zdm_created_column {
	char *column; /* a plain name, not quoted */
	char *type;   /* NULL: the type of the existing column of that name */
	bool not_null;
	char *using; /* its value from the old shape; NULL: none */
} zdm_created_column;

/* renames[]: an existing column and its new name. */
typedef struct zdm_column_rename {
	char *column;
	char *to;
} zdm_column_rename;

/* reverse[]: an old-shape column computed from the new shape. */
typedef struct zdm_reverse_column {
	char *column;
	char *using;
} zdm_reverse_column;

/* constraint_renames[]: an existing constraint and its new name. */
typedef struct zdm_constraint_rename {
	char *constraint;
	char *to;
} zdm_constraint_rename;

/* references[]: a table the change points a foreign key at, and the columns
 * it references (none: its primary key). */
typedef struct zdm_reference {
	char *table; /* quoted, qualified, as tables[].table */
	char **columns;
	size_t ncolumns;
} zdm_reference;

/* defaults[]: a column's new default (NULL: the default is dropped). */
typedef struct zdm_column_default {
	char *column;
	char *value;
} zdm_column_default;

/*
 * One item of tables[].changes: what the change needs of the live table and
 * what it does to it, as facts (docs/plan-format.md, "Changes").  The steps
 * are what runs; the preflight, zdmc explain and zdmc diff read these, and
 * never the change's name, which is for people only.  A version 1 or 2
 * plan's changes (kind-specific keys) are converted into the same facts as
 * they are read, so nothing downstream knows older plans exist.  Every
 * list is NULL with its count 0 when empty; names are plain, not quoted.
 */
typedef struct zdm_change {
	char *change;  /* the operation's name: "split_column", ... */
	char *at;      /* "file.zdm:8:3" in the source; NULL when absent */
	char *summary; /* one sentence for people */
	char **reads;  /* existing columns the change needs */
	size_t nreads;
	zdm_created_column *creates;
	size_t ncreates;
	char **replaces; /* existing columns dropped at contract */
	size_t nreplaces;
	zdm_column_rename *renames;
	size_t nrenames;
	zdm_reverse_column *reverse;
	size_t nreverse;
	bool irreversible;
	/* create table: the table must not exist yet (nor a type of its
	 * name); every other fact of the table then describes the new one */
	bool table_created;
	/* drop table: must exist, and nothing outside it may depend on it
	 * (a foreign key of another table, a view) */
	bool table_dropped;
	char **constraints_created; /* must not exist on the table */
	size_t nconstraints_created;
	char **constraints_dropped; /* must exist on the table */
	size_t nconstraints_dropped;
	zdm_constraint_rename *constraint_renames;
	size_t nconstraint_renames;
	char **indexes_created; /* "schema.name"; must not exist */
	size_t nindexes_created;
	zdm_reference *references;
	size_t nreferences;
	char *table_renamed_to; /* the table's new name (same schema); or NULL */
	char *split_into; /* split table: the new table (quoted, qualified) */
	zdm_column_default *defaults;
	size_t ndefaults;
	/* must exist; dropped at contract with what depends on them alone
	 * (preflight refuses what also reads another column, and NOT NULL
	 * without a default unless reverse computes them) */
	char **drops;
	size_t ndrops;
	char **not_null_set; /* must exist and be nullable now */
	size_t nnot_null_set;
	char **not_null_dropped; /* must exist and be NOT NULL now */
	size_t nnot_null_dropped;
} zdm_change;

/* A changed table with its changes, in plan order (parallel to tables). */
typedef struct zdm_table_info {
	char *name; /* as in tables[].table: quoted, qualified */
	zdm_change *changes;
	size_t nchanges;
} zdm_table_info;

/*
 * A statement on no table (statements[], format 3, optional): sql, a
 * dropped index, an enum type.  Its facts are what preflight checks; each
 * NULL when it does not apply.
 */
typedef struct zdm_statement {
	char *statement; /* sql, drop_index, create_type, add_enum_value, ... */
	char *at;
	char *summary;
	char *index_dropped;    /* exists, backs no constraint */
	char *type_created;     /* the name is free */
	char *enum_type;        /* an enum, or a type_created above */
	char *label_added;      /* enum_type lacks it ... */
	char *label_neighbour;  /* ... and has this one (NULL: none) */
	char *label_renamed;    /* enum_type has it ... */
	char *label_renamed_to; /* ... and lacks this one */
} zdm_statement;

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
	/* options.statement_timeout: every zdm session's statement_timeout;
	 * absent (0): no limit, whatever the role or database sets */
	long statement_timeout_ms;
	char **approve;
	size_t napprove;
	char *sync; /* "trigger" or "cdc" */
	long verify_sample;
	char *version_schema; /* the first (often the only) version schema */
	/* every version schema, version_schema first: new_version.schemas
	 * (format version 3, a migration over several schemas), else
	 * version_schema alone */
	char **version_schemas;
	size_t nversion_schemas;
	char *search_path;
	char **tables; /* quoted qualified names, in plan order */
	size_t ntables;
	zdm_table_info *table_info; /* the same tables, with their changes */
	size_t ntable_info;
	zdm_statement *statements; /* statements[] (none: NULL, 0) */
	size_t nstatements;
	zdm_cdc_plan *cdc; /* sync = cdc (version 2); else NULL */
	zdm_step *steps;   /* every step of every phase, in order */
	size_t nsteps;
} zdm_plan;

/*
 * Limits on what is parsed at all (docs/plan-format.md): the largest plan
 * zdmc writes for a real migration is tens of KB, nested under ten levels.
 * Far above both, so no real plan meets them; low enough that refusing a
 * hostile plan costs milliseconds, not libyaml's minutes.
 */
#define ZDM_PLAN_MAX_BYTES (16 * 1024 * 1024)
#define ZDM_PLAN_MAX_DEPTH 64

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
/* A migration's name names a directory in the git history and files of a
 * plan directory: one plain path component (the rule zdmc's check applies
 * to the source). */
bool zdm_plan_migration_name_ok(const char *name);
/* The plan's search_path without its version schemas (which come first):
 * the schemas its tables are in, "public" or "public, sales" ("public"
 * when there is nothing else); zdm's sessions use it.  malloc'd, NULL when
 * out of memory. */
char *zdm_plan_schema(const zdm_plan *plan);

#endif
