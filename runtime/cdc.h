/*
 * cdc.h -- row changes from the database's log, behind one interface.
 *
 * With sync = cdc the runtime, not a trigger, keeps the two shapes of a
 * table in step: it reads the table's changes and applies the transforms
 * itself.  Two sources produce the same zdm_cdc_change records:
 *
 *   native    (cdc_pgoutput.c) a publication and a logical replication slot
 *             with pgoutput, read through libpq's replication protocol;
 *   debezium  (cdc_debezium.c, its parser cdc_debezium_parse.c) Debezium
 *             change events from a Kafka topic, through librdkafka.
 *
 * Delivery is at least once.  A source hands out changes in order and
 * advances its durable position (the slot's confirmed_flush_lsn, the
 * consumer group's committed offsets) only when told, by ack, that every
 * change up to a position has been applied; after a crash the source
 * replays from the last acknowledged position and the applier's guarded,
 * idempotent writes make the replay harmless.
 *
 * Values are PostgreSQL's text representation (pgoutput's text format;
 * Debezium's JSON values converted to the same text), so the applier binds
 * them as text parameters and lets the server cast.  Nothing here writes to
 * the user's tables.
 */
#ifndef ZDM_CDC_H
#define ZDM_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zdm.h"

typedef enum zdm_cdc_op {
	ZDM_CDC_INSERT,  /* Debezium c, and r (snapshot read) */
	ZDM_CDC_UPDATE,  /* Debezium u */
	ZDM_CDC_DELETE,  /* Debezium d; a primary-key change arrives as
	                  * DELETE of the old key then INSERT of the new */
	ZDM_CDC_TRUNCATE /* Debezium t; pgoutput Truncate */
} zdm_cdc_op;

typedef struct zdm_cdc_column {
	const char *name;
	const char *value;    /* text representation; NULL is SQL NULL */
	bool unchanged_toast; /* pgoutput 'u': value not sent, unchanged */
} zdm_cdc_column;

/* Where a change is in its source; what ack takes. */
typedef struct zdm_cdc_position {
	int32_t partition; /* Kafka partition; 0 for the native source */
	uint64_t offset;   /* Kafka offset, or the commit LSN (native) */
} zdm_cdc_position;

typedef struct zdm_cdc_change {
	zdm_cdc_op op;
	const char *schema;
	const char *table;
	/* before image: the key columns, or the whole row with REPLICA
	 * IDENTITY FULL; nold is 0 when the source sent none.  For a DELETE
	 * it identifies the row: native, the replica identity's columns (the
	 * whole row with FULL); debezium, the key columns only, from the
	 * Kafka message key, never the before image's NULLs for columns it
	 * did not carry (the whole before image only when a message has no
	 * key; cdc_debezium_parse.c) */
	const zdm_cdc_column *old_cols;
	size_t nold;
	/* after image (INSERT, UPDATE) */
	const zdm_cdc_column *new_cols;
	size_t nnew;
	zdm_cdc_position position;
	/* the id of the transaction that wrote it, modulo 2^32 (pgoutput's
	 * Begin, Debezium's source.txId); 0 when the source did not say.  The
	 * applier waits for it to end before applying (cdc_apply.c) */
	uint32_t xid;
	/* the change was written by a session zdm marked as its own (native:
	 * a replication origin named zdm_*; debezium: see cdc_debezium_parse.c) */
	bool own_write;
} zdm_cdc_change;

/* What a source can say of its positions: the catch-up barriers' measure
 * (sync.c). */
typedef struct zdm_cdc_stats {
	/* every transaction committed at or before this LSN was received:
	 * handed out by next or buffered for it; 0 when the source cannot
	 * tell (debezium) */
	uint64_t received_lsn;
	/* every change committed at or before this LSN is acknowledged:
	 * native, the last position given to ack (at first the slot's
	 * confirmed_flush_lsn); debezium, the newest fence the group's
	 * committed offsets have reached since; 0 none yet */
	uint64_t applied_lsn;
} zdm_cdc_stats;

typedef struct zdm_cdc_source zdm_cdc_source;

typedef struct zdm_cdc_source_ops {
	/*
	 * Wait up to timeout_ms for changes; on return *changes holds *n of
	 * them (possibly 0 on timeout), valid until the next call.  -1 with
	 * err on failure (for a malformed event: which one, where).
	 */
	int (*next)(zdm_cdc_source *src, const zdm_cdc_change **changes,
	            size_t *n, int timeout_ms, zdm_error *err);
	/* Every change at or before pos (in its partition) is applied.
	 * debezium: for a partition revoked since, nothing is committed (its
	 * new owner reads it again) and ack succeeds. */
	int (*ack)(zdm_cdc_source *src, zdm_cdc_position pos, zdm_error *err);
	/*
	 * How far behind the applier is: seconds between the newest change the
	 * source knows of and the last acknowledged one (as well as the source
	 * can tell), and the backlog in bytes of WAL (native) or messages
	 * (debezium).
	 */
	int (*lag)(zdm_cdc_source *src, double *seconds, uint64_t *backlog,
	           zdm_error *err);
	/* Where the source is, in LSNs (zdm_cdc_stats). */
	int (*stats)(zdm_cdc_source *src, zdm_cdc_stats *out, zdm_error *err);
	/*
	 * A barrier: every change committed before lsn is in the source's
	 * stream now (debezium: lsn is the connector slot's
	 * confirmed_flush_lsn, read just before the call; the source records
	 * where every partition ends now); once everything up to there is
	 * acknowledged, stats' applied_lsn reaches lsn.  NULL when the
	 * source's positions are LSNs already (native).
	 */
	int (*fence)(zdm_cdc_source *src, uint64_t lsn, zdm_error *err);
	/*
	 * Mark transaction xid as zdm's own write: later changes whose
	 * transaction id is xid (modulo 2^32) come with own_write.  Called
	 * with the applier's pg_current_xact_id() before its COMMIT.  NULL
	 * when the source tells zdm's writes by itself (native: replication
	 * origin).
	 */
	void (*own_xid)(zdm_cdc_source *src, uint64_t xid);
	/*
	 * Work to do while a batch is applied, the applier's idle hook
	 * (zdm_cdc_applier_set_idle, which says what it returns); native:
	 * read and decode the next batch ahead.  NULL: none (debezium).
	 */
	int (*prefetch)(zdm_cdc_source *src, zdm_error *err);
	void (*close)(zdm_cdc_source *src);
} zdm_cdc_source_ops;

struct zdm_cdc_source {
	const zdm_cdc_source_ops *ops;
};

#endif
