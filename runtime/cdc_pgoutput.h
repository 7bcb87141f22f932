/*
 * cdc_pgoutput.h -- the native change source: a logical replication slot
 * with pgoutput (protocol version 1), read through libpq's replication
 * protocol.  It implements zdm_cdc_source (cdc.h); cdc_pgoutput.c says how.
 *
 * The slot and the publication exist before open (the plan creates them
 * with ordinary SQL); this source never creates, alters or drops anything.
 */
#ifndef ZDM_CDC_PGOUTPUT_H
#define ZDM_CDC_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "cdc.h"
#include "zdm.h"

typedef struct zdm_cdc_pgoutput_opts {
	/* an ordinary conninfo or URI (NULL: $DATABASE_URL, else libpq's
	 * environment); replication=database is added */
	const char *conninfo;
	const char *slot;        /* an existing logical slot using pgoutput */
	const char *publication; /* an existing publication */
	/* a standby status update at least this often (<= 0: 1000) */
	int status_interval_ms;
} zdm_cdc_pgoutput_opts;

/*
 * Connect, check the slot (logical, pgoutput, this database, not in use:
 * waits up to 10 s for a previous session's walsender to let go of it) and
 * the publication, and start streaming from the slot's confirmed_flush_lsn.
 * The caller owns *out and frees it with (*out)->ops->close.
 *
 * Status updates are sent only from inside next, ack and lag: call one of
 * them well within the server's wal_sender_timeout (60 s by default), even
 * while applying a long batch.  next with timeout_ms < 0 waits for changes
 * indefinitely; a signal makes it return early, with what it has (maybe
 * nothing).  After any error the source is dead: close it and open a new
 * one, which replays from the last acknowledged position.
 */
int zdm_cdc_pgoutput_open(zdm_cdc_source **out,
                          const zdm_cdc_pgoutput_opts *opts, zdm_error *err);

/* What the stream has shown so far, in detail, for tests and measurements
 * (the source's stats op, cdc.h, gives the positions sync needs). */
typedef struct zdm_cdc_pgoutput_stats {
	/*
	 * Every transaction that committed at or before this LSN has been
	 * received: its changes were handed out by next() already or are
	 * buffered for the next call.  For a cutover barrier, a marker
	 * transaction's own change arriving is the surest sign; this says
	 * the same about any LSN the server gave (a commit's end).
	 */
	uint64_t received_lsn;
	/* the newest position ack was given (at first, the slot's
	 * confirmed_flush_lsn) */
	uint64_t acked_lsn;
	uint64_t reported_lsn;   /* the flush position sent to the server */
	uint64_t server_wal_end; /* the newest WAL end the server mentioned */
	uint64_t transactions;   /* committed transactions received */
	uint64_t changes;        /* changes received */
	uint64_t keepalives;     /* keepalive messages received */
	uint64_t status_updates; /* standby status updates sent */
	uint64_t bytes;          /* replication message bytes received */
} zdm_cdc_pgoutput_stats;

/* -1 with err when src is not a pgoutput source. */
int zdm_cdc_pgoutput_get_stats(zdm_cdc_source *src, zdm_cdc_pgoutput_stats *out,
                               zdm_error *err);

/*
 * Test seam: a source with no connection, fed replication messages (the
 * bytes of one CopyData: 'w' XLogData or 'k' keepalive) by hand.  next()
 * then only returns what feeding made ready; nothing is sent anywhere.
 * Used by the decoder's unit test to try malformed input.
 */
int zdm_cdc_pgoutput_open_offline(zdm_cdc_source **out, zdm_error *err);
int zdm_cdc_pgoutput_feed(zdm_cdc_source *src, const void *msg, size_t len,
                          zdm_error *err);

#endif
