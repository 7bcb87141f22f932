/*
 * zdm.h -- what every part of the runtime shares: exit codes, errors, and
 * the connection helpers (conn.c).
 *
 * Errors travel up as a zdm_error filled by the code that saw them (with the
 * server's SQLSTATE, detail and hint when there is one) and are printed once,
 * by main.c.  Deep code never exits: the journal and the rollback must run.
 */
#ifndef ZDM_H
#define ZDM_H

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

#define ZDM_VERSION "0.1.0"

/* Exit codes, documented in docs/runbook.md. */
#define ZDM_EXIT_OK 0      /* done, or already done */
#define ZDM_EXIT_FAILED 1  /* failed; the journal holds the state */
#define ZDM_EXIT_USAGE 2   /* bad usage or bad plan; nothing touched */
#define ZDM_EXIT_STOPPED 3 /* stopped safely, an operator is needed */
#define ZDM_EXIT_GATE 4    /* paused at a gate awaiting approval */

/* SQLSTATEs the runtime reacts to. */
#define ZDM_SQLSTATE_LOCK_NOT_AVAILABLE "55P03" /* lock_timeout expired */
#define ZDM_SQLSTATE_DEADLOCK "40P01"
#define ZDM_SQLSTATE_SERIALIZATION "40001"
#define ZDM_SQLSTATE_UNDEFINED_TABLE "42P01" /* or a FROM item named wrong */

typedef struct zdm_error {
	char sqlstate[6]; /* "" when the error is not the server's */
	char step[64];    /* the step it happened in, "" when none */
	char message[1024];
	char detail[1024];
	char hint[512];
} zdm_error;

void zdm_error_clear(zdm_error *err);
void zdm_error_set(zdm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* From a failed result (or, with res NULL, the connection's message). */
void zdm_error_from_result(zdm_error *err, const PGresult *res,
                           const PGconn *conn);
/* "zdm: error: [step S: ]message (SQLSTATE x)" then DETAIL and HINT lines. */
void zdm_error_print(const zdm_error *err, FILE *out);
/* A lock timeout or deadlock: worth retrying after a pause. */
bool zdm_error_is_lock_conflict(const zdm_error *err);
/* The server cancelled a statement for statement_timeout (not a cancel
 * by pg_cancel_backend or a person). */
bool zdm_error_is_statement_timeout(const zdm_error *err);

/*
 * Open a connection.  conninfo may be a keyword/value string or a URI; NULL
 * means $DATABASE_URL, else libpq's own PG* environment (so .pgpass,
 * service files and sslmode behave as libpq users expect).
 * application_name is "zdm <purpose>".  The session gets
 * standard_conforming_strings on and search_path = schema (the schema the
 * plan's tables are in: user expressions may call its functions).
 */
PGconn *zdm_conn_open(const char *conninfo, const char *purpose,
                      const char *schema, zdm_error *err);
/*
 * The statement_timeout of every session opened from now on (the plan's
 * option, set once by main before any connection; 0, the default: no
 * limit).  zdm's statements are sized by zdm (batches, lock_timeout), so
 * a role's or database's statement_timeout, set for the application,
 * must not cancel them; a statement the server still cancels gets a hint
 * naming the option.
 */
void zdm_conn_set_statement_timeout(long ms);
/* Run sql (no parameters) expecting no rows; -1 with err on failure. */
int zdm_conn_exec(PGconn *conn, const char *sql, zdm_error *err);
/* Run sql with text parameters; *out holds the result (PQclear it). */
int zdm_conn_query(PGconn *conn, const char *sql, int nparams,
                   const char *const *params, PGresult **out, zdm_error *err);
/*
 * The "options" a connection to conninfo must carry for zdm to add forced
 * (command-line options such as "-c name=value"): the conninfo's own (or
 * $PGOPTIONS when the conninfo has none), then forced, which so wins.
 * malloc'd; NULL when out of memory.
 */
char *zdm_conninfo_options(const char *conninfo, const char *forced);
/* The conninfo with any password replaced by "********", for messages. */
void zdm_conninfo_redact(const char *conninfo, char *buf, size_t len);

/* Monotonic clock, seconds. */
double zdm_now(void);
/* Sleep ms milliseconds. */
void zdm_sleep_ms(long ms);

#endif
