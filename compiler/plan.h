/*
 * plan.h -- the compiled plan, as a tree, before it is written as YAML.
 *
 * lower.c builds it; plan_write.c serialises it.  It mirrors
 * docs/plan-format.md field for field: whatever is here the runtime sees,
 * and the runtime sees nothing else.  All strings live in the compile arena;
 * NULL means "absent" (written as null, or left out where the format says).
 */
#ifndef ZDMC_PLAN_H
#define ZDMC_PLAN_H

#include <stdbool.h>
#include <stddef.h>

/* Version 1: trigger sync.  Version 2 (only for sync = cdc): version 1 plus
 * the cdc section, catch_up and stop_sync steps, in_flight on checks.
 * Version 3, what this compiler writes for every plan: version 2 with
 * changes that describe themselves by facts (reads, creates, replaces,
 * ...) and the autocommit step kind. */
#define ZDMC_PLAN_FORMAT_VERSION 3

typedef enum zdmc_step_kind {
	ZDMC_STEP_SQL,      /* run sql */
	ZDMC_STEP_BACKFILL, /* run sql once per batch, $1/$2 = batch bounds */
	ZDMC_STEP_CHECK, /* run sql, it returns one bigint that must = expect */
	ZDMC_STEP_GATE,  /* stop here until approved (if approval) */
	ZDMC_STEP_CATCH_UP,  /* cdc: wait until zdm sync is caught up */
	ZDMC_STEP_STOP_SYNC, /* cdc: a barrier, then zdm sync stops */
	ZDMC_STEP_AUTOCOMMIT /* run sql outside a transaction block (CREATE
	                      * INDEX CONCURRENTLY); its own label always */
} zdmc_step_kind;

typedef struct zdmc_plan_step {
	zdmc_step_kind kind;
	const char *id;          /* "expand.1": phase name and 1-based number */
	const char *description; /* one line for people */
	const char *table;       /* quoted qualified name, or NULL */
	const char *transaction; /* label: consecutive steps that share it run
	                          * in one transaction */
	long lock_timeout_ms;
	const char *sql;          /* NULL only for GATE */
	const char *compensation; /* NULL: nothing to undo */
	bool point_of_no_return;  /* once done, rollback is refused */
	/* BACKFILL */
	const char *key; /* "ctid" */
	long batch_size;
	long batch_pause_ms;
	/* CHECK */
	long long expect;
	const char *examples_sql; /* returns up to 5 offending rows' keys */
	/* CHECK that counts rows of its table: sql is exactly
	 * SELECT count(*) FROM table WHERE count_where (NULL: another
	 * count).  The runtime may count such checks of one table together,
	 * over ranges of pages (docs/plan-format.md, "Checks in one pass"). */
	const char *count_where;
	/* CHECK in a cdc plan: offending row versions, and their recheck
	 * after a barrier (both NULL: none) */
	const char *in_flight_offenders;
	const char *in_flight_recheck;
	/* CATCH_UP */
	long max_lag_ms;
	long stable_for_ms;
	bool barrier;
	/* GATE */
	const char *gate; /* "switch", "contract", ... */
	bool approval;    /* needs `zdm approve` before it passes */
	/* AUTOCOMMIT: the index it builds (quoted, qualified), or NULL; an
	 * INVALID one left by a failed build is dropped before a retry */
	const char *index;
	/* AUTOCOMMIT: a count the runtime runs only after sql failed, to stop
	 * as a failed check does when the data is why (diagnose in
	 * docs/plan-format.md); NULL: none */
	const char *diagnose_description;
	const char *diagnose_sql; /* returns one bigint; expect: 0 */
	const char *diagnose_examples;
	struct zdmc_plan_step *next;
} zdmc_plan_step;

typedef struct zdmc_plan_phase {
	const char *name; /* expand, backfill, verify, switch, contract */
	zdmc_plan_step *steps;
	struct zdmc_plan_phase *next;
} zdmc_plan_phase;

/* A column a change creates (changes[].creates). */
typedef struct zdmc_plan_column {
	const char *name;
	const char *type;
	const char *using; /* from the old shape; NULL: none (null) */
	bool not_null;
	struct zdmc_plan_column *next;
} zdmc_plan_column;

/* column -> to (renames), or constraint -> to (constraint_renames). */
typedef struct zdmc_plan_rename {
	const char *name;
	const char *to;
	struct zdmc_plan_rename *next;
} zdmc_plan_rename;

/* An old-shape column computed from the new shape (reverse). */
typedef struct zdmc_plan_reverse {
	const char *column;
	const char *using;
	struct zdmc_plan_reverse *next;
} zdmc_plan_reverse;

/* references: a table whose unique key on columns must exist. */
typedef struct zdmc_plan_reference {
	const char *table;
	const char **columns;
	size_t ncolumns;
	struct zdmc_plan_reference *next;
} zdmc_plan_reference;

/* defaults: a column's new default (NULL: dropped). */
typedef struct zdmc_plan_default {
	const char *column;
	const char *value;
	struct zdmc_plan_default *next;
} zdmc_plan_default;

/*
 * A change, described by its facts (plan format 3): what it needs of the
 * live table and what it does to it, so that preflight, explain and diff
 * never need to know the operation.  Empty lists are left out.
 */
typedef struct zdmc_plan_change {
	const char *change;  /* the op's name: split_column, ... */
	const char *at;      /* "file.zdm:8:3" */
	const char *summary; /* one sentence for people */
	const char **reads;  /* existing columns it needs */
	size_t nreads;
	zdmc_plan_column *creates;
	const char **replaces; /* existing columns dropped at contract */
	size_t nreplaces;
	zdmc_plan_rename *renames; /* existing column -> new name */
	zdmc_plan_reverse *reverse;
	bool irreversible;
	/* later operations (each optional) */
	bool table_created; /* create table: the table does not exist yet */
	bool table_dropped; /* drop table: dropped at contract */
	const char **constraints_created;
	size_t nconstraints_created;
	const char **constraints_dropped;
	size_t nconstraints_dropped;
	zdmc_plan_rename *constraint_renames;
	const char **indexes_created;
	size_t nindexes_created;
	zdmc_plan_reference *references;
	const char *table_renamed_to;
	/* split table: the new table the moved columns go to (quoted,
	 * qualified); it must not exist yet */
	const char *split_into;
	zdmc_plan_default *defaults;
	/* existing columns dropped at contract with what depends on them
	 * alone; columns made NOT NULL; columns let be NULL */
	const char **drops;
	size_t ndrops;
	const char **not_null_set;
	size_t nnot_null_set;
	const char **not_null_dropped;
	size_t nnot_null_dropped;
	struct zdmc_plan_change *next;
} zdmc_plan_change;

/*
 * A statement on no table (statements[], plan format 3, optional): what
 * it is, and the facts preflight checks before anything runs.  Each fact
 * NULL when it does not apply.
 */
typedef struct zdmc_plan_statement {
	const char *statement; /* sql, drop_index, create_type, ... */
	const char *at;
	const char *summary;
	const char *index_dropped;    /* exists, backs no constraint */
	const char *type_created;     /* the name is free */
	const char *enum_type;        /* an enum, or created above */
	const char *label_added;      /* enum_type lacks it ... */
	const char *label_neighbour;  /* ... and has this one (or NULL) */
	const char *label_renamed;    /* enum_type has it ... */
	const char *label_renamed_to; /* ... and lacks this one */
	struct zdmc_plan_statement *next;
} zdmc_plan_statement;

typedef struct zdmc_plan_table {
	const char *name; /* quoted qualified, e.g. public.users */
	zdmc_plan_change *changes;
	struct zdmc_plan_table *next;
} zdmc_plan_table;

/* cdc: a rule of on_insert / on_update (first that holds decides) */
typedef enum zdmc_cdc_cond {
	ZDMC_CDC_ALWAYS,
	ZDMC_CDC_CHANGED,  /* any column's after text differs from before */
	ZDMC_CDC_NOT_NULL, /* any column is not NULL after */
	ZDMC_CDC_PENDING   /* after-image's zdm_sync_pending is true */
} zdmc_cdc_cond;

typedef struct zdmc_plan_cdc_rule {
	zdmc_cdc_cond cond;
	const char **columns; /* CHANGED, NOT_NULL: physical names */
	size_t ncolumns;
	const char *apply; /* forward, reverse, nothing */
	struct zdmc_plan_cdc_rule *next;
} zdmc_plan_cdc_rule;

/* One change of a table, as zdm sync carries it across. */
typedef struct zdmc_plan_cdc_sync {
	const char *at;
	const char **params; /* $1..$n: after-image values of these */
	size_t nparams;
	const char **touched; /* reverse's $n+1..$n+m */
	size_t ntouched;
	zdmc_plan_cdc_rule *on_insert;
	zdmc_plan_cdc_rule *on_update;
	const char *forward;
	const char *reverse; /* NULL: none */
	/* the row of an event whose forward cannot convert it: new columns
	 * NULL and pending, as the trigger leaves it (NULL: no new column) */
	const char *unconvertible;
	struct zdmc_plan_cdc_sync *next;
} zdmc_plan_cdc_sync;

typedef struct zdmc_plan_cdc_table {
	const char *table; /* as in tables */
	const char **key;  /* plain column names */
	size_t nkey;
	zdmc_plan_cdc_sync *syncs;
	struct zdmc_plan_cdc_table *next;
} zdmc_plan_cdc_table;

typedef struct zdmc_plan_cdc {
	const char *source;      /* native, debezium */
	const char *publication; /* native: zdm_<migration>; else NULL */
	const char *slot;
	const char *origin;
	long max_lag_ms;
	long stable_for_ms;
	zdmc_plan_cdc_table *tables;
} zdmc_plan_cdc;

typedef struct zdmc_plan {
	int format_version;
	const char *compiler; /* "zdmc 0.1.0" */
	const char *migration;
	const char *source_file;   /* file name only, never a directory */
	const char *source_sha256; /* hex of the source bytes */
	int min_server_version_num;
	/* options, resolved with defaults */
	long batch_size;
	long batch_pause_ms;
	long lock_timeout_ms;
	long lock_retries;
	long statement_timeout_ms; /* 0: no limit; written only when set */
	const char **approve;      /* gate names, in phase order */
	size_t napprove;
	const char *sync; /* "trigger" or "cdc" */
	long verify_sample;
	/* the new version */
	const char *version_schema; /* public_split_user_name */
	/* with tables in several schemas, every version schema (the first is
	 * version_schema), written as new_version.schemas; else NULL, 0 */
	const char **version_schemas;
	size_t nversion_schemas;
	const char *search_path; /* what new-version clients set */
	zdmc_plan_table *tables;
	zdmc_plan_statement *statements; /* NULL: none */
	zdmc_plan_cdc *cdc;              /* sync = cdc; else NULL */
	zdmc_plan_phase *phases;
} zdmc_plan;

/*
 * Serialise plan as YAML (libyaml's emitter).  The last line is
 * "plan_sha256: <hex>", the SHA-256 of every byte before that line.  *out is
 * malloc'd.  Returns 0, or -1 with a message in errbuf.
 */
int zdmc_plan_write(const zdmc_plan *plan, char **out, size_t *outlen,
                    char *errbuf, size_t errlen);

/* Lower-case hex SHA-256 of data into hex[65]. */
void zdmc_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
