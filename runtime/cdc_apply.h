/*
 * cdc_apply.h -- the applier: runs a cdc plan's guarded statements for a
 * batch of change events (cdc.h), on one ordinary connection.
 *
 * It interprets plan->cdc (docs/plan-format.md, "Change data capture"):
 * for each INSERT or UPDATE of a synced table, and each sync of that table,
 * the first rule that holds picks forward, reverse or nothing, and the
 * chosen statement runs with the event's after-image as parameters.  It
 * never reads from a source, never acknowledges anything and never commits
 * on its own: the caller (sync.c) decides when a batch is durable.
 */
#ifndef ZDM_CDC_APPLY_H
#define ZDM_CDC_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdc.h"
#include "plan_read.h"
#include "zdm.h"

typedef struct zdm_cdc_applier zdm_cdc_applier;

/* Counters since the applier was made. */
typedef struct zdm_cdc_apply_stats {
	uint64_t seen;        /* changes given to apply */
	uint64_t own_skipped; /* own writes, skipped */
	uint64_t ignored;     /* other tables, DELETE, TRUNCATE, rule nothing */
	uint64_t statements;  /* forward/reverse statements run */
	uint64_t applied;     /* of those, the ones that changed a row */
	uint64_t writer_waits; /* apply calls that returned 1: a writer runs */
	uint32_t waiting_xid;  /* after such a call: the writer waited for */
	uint64_t lock_retries; /* apply calls that returned 1: rows locked */
	char last_retry[256];  /* why the last of those gave up */
	/* events whose forward statement could not convert the row's values
	 * (the row left pending for verify) or whose reverse could not (the
	 * old columns left as they were) */
	uint64_t unconverted;
} zdm_cdc_apply_stats;

/*
 * PREPARE every forward and reverse statement of cdc on conn (a plain
 * connection, outside a transaction, that stays the applier's until
 * zdm_cdc_applier_free).  lsn_positions: positions are LSNs (the native
 * source), for messages.  A statement that fails to prepare is an error
 * naming its table, the change's `at`, the statement and the SQLSTATE.
 */
int zdm_cdc_applier_new(zdm_cdc_applier **out, PGconn *conn,
                        const zdm_cdc_plan *cdc, bool lsn_positions,
                        zdm_error *err);

/*
 * Apply changes[0..n) in order, in one transaction, statements pipelined.
 * First it waits, up to a moment, until every transaction the changes come
 * from has ended for a new snapshot (a change can arrive while its writer
 * is still in the proc array; cdc_apply.c says why that matters): 1 when
 * one still runs, nothing done (stats.waiting_xid names it; call again
 * with the same changes).  1 too when a row it must change stayed locked
 * past its lock_timeout, or it was picked in a deadlock: the batch was
 * rolled back (stats.lock_retries counts it; call again).  0 on success: the transaction is left open when
 * any statement ran (commit or roll back with the functions below), and
 * *xid (when not NULL) is the transaction's id, or 0 when it wrote nothing
 * (so there are no own writes to recognise).  -1 on failure: the
 * transaction is rolled back and err names the table, the change's `at`,
 * the event's position and the SQLSTATE.
 */
int zdm_cdc_applier_apply(zdm_cdc_applier *a, const zdm_cdc_change *changes,
                          size_t n, uint64_t *xid, zdm_error *err);
/*
 * While apply waits for its statements' results, call idle(arg, err) every
 * tenth of a millisecond or so, so that another stream is read meanwhile
 * (the native source takes in what the walsender sends: it decodes the next
 * changes while these are applied).  idle returns 0, 1 to be left alone
 * until the next wait, or -1 with err set (the batch then fails).  NULL: no
 * hook (the default).
 */
void zdm_cdc_applier_set_idle(zdm_cdc_applier *a,
                              int (*idle)(void *arg, zdm_error *err),
                              void *arg);
/*
 * The lines the last apply has to report (one per event it could not
 * convert: key, SQLSTATE, the message naming table, change and position,
 * and what became of the row), "" when none; owned by the applier, valid
 * until its next apply.
 */
const char *zdm_cdc_applier_notes(zdm_cdc_applier *a);
/* COMMIT the transaction apply left open; nothing when none is open. */
int zdm_cdc_applier_commit(zdm_cdc_applier *a, zdm_error *err);
/* ROLLBACK it (errors ignored: the connection may be gone). */
void zdm_cdc_applier_rollback(zdm_cdc_applier *a);

void zdm_cdc_applier_stats(const zdm_cdc_applier *a, zdm_cdc_apply_stats *out);
/* Deallocates nothing on the server: the session ends with the connection. */
void zdm_cdc_applier_free(zdm_cdc_applier *a);

#endif
