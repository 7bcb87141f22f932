/*
 * sqlrisk.h -- what a plan's SQL does to the tables it touches.
 *
 * For zdmc explain and zdmc diff: each statement of a step, parsed by
 * PostgreSQL's own parser (libpg_query), becomes the lock it takes, on what,
 * and how long it holds it -- a moment of catalog work, a scan of the whole
 * table, a rewrite, or row locks -- plus what a reviewer must not miss (data
 * dropped, a statement that cannot run in a transaction, one that could not
 * be classified).  Nothing here connects to a database.
 */
#ifndef ZDMC_SQLRISK_H
#define ZDMC_SQLRISK_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

/* PostgreSQL's table lock modes, weakest first (the order matters). */
typedef enum zdmc_lock {
	ZDMC_LOCK_NONE = 0,
	ZDMC_LOCK_ACCESS_SHARE,
	ZDMC_LOCK_ROW_SHARE,
	ZDMC_LOCK_ROW_EXCLUSIVE,
	ZDMC_LOCK_SHARE_UPDATE_EXCLUSIVE,
	ZDMC_LOCK_SHARE,
	ZDMC_LOCK_SHARE_ROW_EXCLUSIVE,
	ZDMC_LOCK_EXCLUSIVE,
	ZDMC_LOCK_ACCESS_EXCLUSIVE
} zdmc_lock;

/* How long the lock is held, shortest first (the order matters). */
typedef enum zdmc_hold {
	ZDMC_HOLD_NONE = 0, /* no lock on a table */
	ZDMC_HOLD_BRIEF,    /* catalog work only: a moment once granted */
	ZDMC_HOLD_ROWS,     /* row locks on the rows written */
	ZDMC_HOLD_TXN,      /* until the transaction ends (LOCK TABLE) */
	ZDMC_HOLD_SCAN,     /* while it reads the whole table */
	ZDMC_HOLD_REWRITE,  /* while it writes a new copy of the table */
	ZDMC_HOLD_UNKNOWN   /* not classified: read the SQL */
} zdmc_hold;

/* What kind of object the lock is on. */
typedef enum zdmc_target_kind {
	ZDMC_TARGET_NONE = 0, /* no table: a function, a schema, the catalog */
	ZDMC_TARGET_TABLE,    /* target names one or more tables */
	ZDMC_TARGET_VIEW,     /* a view, not the table under it */
	ZDMC_TARGET_INDEX     /* an index: the lock is on its table */
} zdmc_target_kind;

enum {
	ZDMC_RISK_SCAN = 1u << 0,        /* reads every row of a table */
	ZDMC_RISK_REWRITE = 1u << 1,     /* writes a new copy of a table */
	ZDMC_RISK_WRITES_ROWS = 1u << 2, /* UPDATE, DELETE, INSERT */
	ZDMC_RISK_ALL_ROWS = 1u << 3,    /* ... with no WHERE clause */
	ZDMC_RISK_DATA_LOSS = 1u << 4,   /* drops a column, a table, rows */
	ZDMC_RISK_NO_TXN = 1u << 5,      /* cannot run in a transaction block */
	ZDMC_RISK_DANGER = 1u << 6,      /* blocks the application for long,
	                                    or cannot work: flag it */
	ZDMC_RISK_UNKNOWN = 1u << 7,     /* not classified: review by hand */
	ZDMC_RISK_DYNAMIC = 1u << 8,     /* built at run time by EXECUTE */
	ZDMC_RISK_CONDITIONAL = 1u << 9, /* inside IF/CASE of a DO block */
	ZDMC_RISK_LOOP = 1u << 10,       /* inside a loop of a DO block */
	ZDMC_RISK_CATALOG = 1u << 11,    /* reads the system catalog only */
	ZDMC_RISK_CASCADE = 1u << 12,    /* DROP ... CASCADE */
	ZDMC_RISK_IN_DO = 1u << 13       /* a statement of a DO block */
};

/* One statement, classified. */
typedef struct zdmc_stmt_risk {
	const char *what;   /* "ALTER TABLE ADD COLUMN x3", "CREATE TRIGGER" */
	const char *target; /* "public.users" (several: ", "), NULL if none */
	zdmc_target_kind target_kind;
	zdmc_lock lock;
	zdmc_hold hold;
	unsigned flags;   /* ZDMC_RISK_* */
	const char *note; /* why, in a sentence or two; NULL when obvious */
} zdmc_stmt_risk;

typedef struct zdmc_sqlrisk {
	zdmc_stmt_risk *stmts; /* in execution order; DO blocks expanded */
	size_t nstmts;
	const char *error; /* why the SQL did not parse, NULL when it did */
} zdmc_sqlrisk;

/*
 * What the statements of one plan have established so far, in plan order:
 * the validated CHECK (col IS NOT NULL) constraints, which let SET NOT NULL
 * skip its scan.  Classify a plan's statements in order through one context.
 */
typedef struct zdmc_sqlrisk_ctx zdmc_sqlrisk_ctx;

zdmc_sqlrisk_ctx *zdmc_sqlrisk_ctx_new(zdmc_arena *arena);

/*
 * Classify sql (one or more statements).  Fills *out (allocated in the
 * context's arena).  Returns 0, or -1 when the SQL does not parse: then
 * out->error says why and out holds one statement of unknown risk.
 */
int zdmc_sqlrisk_classify(zdmc_sqlrisk_ctx *ctx, const char *sql,
                          zdmc_sqlrisk *out);

/* "ACCESS EXCLUSIVE", ... ("none" for ZDMC_LOCK_NONE) */
const char *zdmc_lock_name(zdmc_lock lock);
/* What the mode blocks, for people: "blocks reads and writes". */
const char *zdmc_lock_blocks(zdmc_lock lock);
/* Whether the mode conflicts with ROW EXCLUSIVE (INSERT/UPDATE/DELETE). */
bool zdmc_lock_blocks_writes(zdmc_lock lock);

#endif
