/*
 * cdc_pgoutput.c -- the native change source: pgoutput (protocol version 1)
 * from a logical replication slot, through libpq's replication protocol.
 *
 * The connection is a walsender (replication=database): it takes only the
 * simple query protocol, so the few catalog queries before streaming are
 * PQexec with literals escaped by libpq.  It forces the settings that make
 * text values unambiguous, as PostgreSQL's own subscriber does (datestyle
 * ISO, intervalstyle postgres, extra_float_digits 3) and client_encoding
 * UTF8, so values and names arrive as UTF-8 whatever the environment says.
 *
 * Protocol version 1 sends a transaction only after it has committed,
 * whole, between a Begin and a Commit.  It is buffered here and handed out
 * by next() only once its Commit has arrived, each change carrying the
 * commit's end LSN as its position: exactly what the slot's
 * confirmed_flush_lsn means (a transaction whose commit ends at or before
 * it is never sent again), so ack(position) is reported as the flush
 * position as is.  A transaction is held in memory whole, however large: a
 * bulk UPDATE of 10M rows in one transaction needs that many changes in
 * memory at once.  Streaming in-progress transactions (protocol version 2+)
 * would bound it; it is not used.
 *
 * Invariants:
 *  - The flush position sent to the server never moves backwards and is
 *    never ahead of what the applier acknowledged, except in one way that
 *    skips no change: when every transaction received has been acknowledged
 *    and a keepalive outside a transaction says the walsender has read WAL
 *    up to X, every transaction committed before X has been received (and
 *    so acknowledged), and X is reported.  Without that, a quiet table on a
 *    busy server would pin its WAL until the next change to the table.
 *  - PostgreSQL 15 moves confirmed_flush_lsn to whatever a client reports,
 *    backwards too: reporting starts at the slot's confirmed_flush_lsn, read
 *    before streaming starts.
 *  - Every read from a message is bounds-checked; a malformed or unknown
 *    message is an error naming it and where it was.  After any error the
 *    source is dead: the caller closes it and opens a new one, which
 *    replays from the last acknowledged position.
 *  - Memory (arena.c): the open transaction's values live in one arena,
 *    the batch last handed out in another; at a Commit the first joins the
 *    second, and the second is freed when next() is called again.  A
 *    transaction that completes while the batch is out (decoded ahead,
 *    through the source's prefetch while the batch is applied) joins a
 *    third, the next batch, which next() swaps in.  Relations are cached by
 *    id; a Relation message replaces an entry, and the old one is freed
 *    only when no buffered or handed-out change can point into it.  No
 *    global state.
 *
 * Open refuses a publication that would hide changes: one that does not
 * publish insert, update and delete, or that has a row filter or a column
 * list for any of its tables (PGO_SQL_PUBLICATION says why).
 *
 * This file never writes to the database: no DDL, no slot or publication
 * management (the plan does that with ordinary SQL).
 */
#include "cdc_pgoutput.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "arena.h"

/* PostgreSQL timestamps count microseconds from 2000-01-01 00:00:00 UTC. */
#define PGO_PG_EPOCH_UNIX 946684800LL
/* Stop gathering a batch once this many changes are ready. */
#define PGO_BATCH_MAX 10000
/*
 * A batch smaller than this waits up to PGO_LINGER_MS for more changes
 * before it is handed out: every batch costs the applier a transaction, a
 * statement per sync and a commit (a WAL flush) and an ack, so a stream
 * that arrives a few transactions at a time is worth gathering.  At 6k
 * client writes/s, 50 ms instead of 10 took the apply backend from 17 to
 * 15 us of CPU per write (bench/cdc.sh); the lag it adds is far under any
 * sensible max_lag.
 */
#define PGO_BATCH_MIN 1000
#define PGO_LINGER_MS 50
/*
 * While a batch gathers from a stream that trickles, the source sleeps
 * this long between reads instead of waking for every transaction
 * (pgo_nap).  Short, because the walsender sends each message on its own
 * and a Unix socket's buffer holds only a few hundred of those: a longer
 * sleep would leave the walsender blocked.  The stream trickles while
 * transactions come in at under PGO_NAP_RATE a millisecond (about 3
 * messages each: a nap then fills a quarter of the socket); faster, as
 * from a backlog, the walsender would be kept waiting for room (2 ms naps
 * read a backlog at a third of the speed), so the naps are far shorter
 * (pgo_gather_wait).
 */
#define PGO_NAP_MS 2
#define PGO_NAP_RATE 16
/* The nap while transactions come faster: a fraction of the half
 * millisecond in which the walsender fills the socket at full speed. */
#define PGO_FLOW_NAP_US 100
/* How long open waits for a previous walsender to release the slot. */
#define PGO_SLOT_WAIT_MS 10000
/* How long close waits for the server to end the stream cleanly. */
#define PGO_CLOSE_WAIT_MS 5000
/* A transaction from a replication origin named so is zdm's own write. */
#define PGO_OWN_ORIGIN_PREFIX "zdm_"
/*
 * What PostgreSQL's subscriber forces on its publisher connection
 * (libpqwalreceiver.c): dates, intervals and floats in text that reads back
 * the same in any session.  Appended after the user's options, so it wins.
 * And no statement_timeout: a role's, set for the application, must not
 * cancel the stream (zdm's other sessions take the plan's, conn.c).
 */
#define PGO_FORCED_OPTIONS                                                   \
	"-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3" \
	" -c statement_timeout=0"

/*
 * The slot's state, read before streaming: it must be a logical slot with
 * pgoutput in this database, not in use, and still have its WAL.
 */
#define PGO_SQL_SLOT                                         \
	"SELECT s.plugin, s.slot_type,"                      \
	" s.database = pg_catalog.current_database(),"       \
	" s.active_pid, s.confirmed_flush_lsn, s.wal_status" \
	" FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = "
/*
 * The publication must hand over every change of every column: zdm keeps a
 * second shape of each table in step, and a change it never sees (an
 * operation the publication does not publish, a row a row filter drops) or
 * a column it never sees (a column list) leaves that shape silently wrong.
 * Truncate is optional (a plan may not need it).  Row filters and column
 * lists exist from PostgreSQL 15 on (pg_publication_rel.prqual, prattrs);
 * before that the second query is not run.  Tables named as schema.table,
 * each part quoted when it needs to be, sorted, for a stable message.
 */
#define PGO_SQL_PUBLICATION                            \
	"SELECT p.pubinsert, p.pubupdate, p.pubdelete" \
	" FROM pg_catalog.pg_publication p WHERE p.pubname = "
#define PGO_SQL_PUBLICATION_TABLES                                           \
	"SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname," \
	" c.relname), ', ' ORDER BY n.nspname, c.relname)"                   \
	"   FILTER (WHERE r.prqual IS NOT NULL),"                            \
	" pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname,"       \
	" c.relname), ', ' ORDER BY n.nspname, c.relname)"                   \
	"   FILTER (WHERE r.prattrs IS NOT NULL)"                            \
	" FROM pg_catalog.pg_publication p"                                  \
	" JOIN pg_catalog.pg_publication_rel r ON r.prpubid = p.oid"         \
	" JOIN pg_catalog.pg_class c ON c.oid = r.prrelid"                   \
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"          \
	" WHERE p.pubname = "

/* A relation as its latest Relation message described it. */
typedef struct pgo_rel {
	uint32_t relid;
	char replident; /* 'd' default, 'f' full, 'i' index, 'n' nothing */
	uint16_t ncols;
	uint16_t nkey;
	const char *schema;
	const char *table;
	const char **names;
	uint32_t *types; /* type oids; kept for a later consumer */
	bool *key;       /* part of the replica identity */
	zdm_arena mem;   /* everything above */
	struct pgo_rel *retired_next;
} pgo_rel;

/* A transaction received but not yet acknowledged (for lag). */
typedef struct pgo_pending {
	uint64_t end_lsn;
	int64_t commit_time;
} pgo_pending;

typedef struct pgo_source {
	zdm_cdc_source base; /* first: what callers hold */
	PGconn *conn;        /* NULL: offline (the test seam) */
	int status_interval_ms;
	bool dead; /* an error happened; only close is allowed */

	/* relation cache: open addressing by relid */
	pgo_rel **rels;
	size_t rels_cap, rels_n;
	pgo_rel *retired;

	/* the transaction being received */
	bool in_txn;
	uint64_t txn_final_lsn;
	int64_t txn_commit_time;
	uint32_t txn_xid;
	bool txn_own;
	zdm_arena txn_mem;
	zdm_cdc_change *txn;
	size_t txn_n, txn_cap;

	/* complete transactions' changes: the batch next() hands out */
	zdm_arena batch_mem;
	zdm_cdc_change *batch;
	size_t batch_n, batch_cap;
	bool batch_handed_out;
	bool flowing; /* the batch filled up: reading ahead pays */

	/* transactions completed while the batch is out (read ahead by
	 * pgo_prefetch): the next batch */
	zdm_arena ahead_mem;
	zdm_cdc_change *ahead;
	size_t ahead_n, ahead_cap;
	/* what reading ahead met, for next to report: a failure, or the end
	 * of the stream (PQgetCopyData's code; 0 none) */
	bool ahead_failed;
	zdm_error ahead_err;
	int ahead_end;

	/* received, not acknowledged, oldest first (a ring) */
	pgo_pending *pend;
	size_t pend_head, pend_n, pend_cap;

	/* positions */
	uint64_t acked;       /* newest ack (starts at confirmed_flush_lsn) */
	uint64_t recv_end;    /* newest non-empty transaction's end */
	uint64_t last_commit; /* newest Commit's end this session, any */
	uint64_t quiet;       /* newest keepalive WAL end outside a txn */
	uint64_t reported;    /* last flush position sent */
	uint64_t wal_end;     /* newest WAL end the server mentioned */
	uint64_t msg_lsn;     /* the current XLogData's start (often 0) */

	/* the server's clock, from the newest message, and when it came */
	int64_t server_clock;
	double server_clock_at;
	double last_status; /* zdm_now() of the last status update */

	zdm_cdc_pgoutput_stats stats;
} pgo_source;

/* A cursor over one message; every read checks the bounds. */
typedef struct pgo_reader {
	const unsigned char *p;
	size_t len, pos;
	size_t want;       /* bytes a failed read needed */
	bool unterminated; /* a failed read was a string without NUL */
} pgo_reader;

static int pgo_next(zdm_cdc_source *base, const zdm_cdc_change **changes,
                    size_t *n, int timeout_ms, zdm_error *err);
static int pgo_ack(zdm_cdc_source *base, zdm_cdc_position pos, zdm_error *err);
static int pgo_lag(zdm_cdc_source *base, double *seconds, uint64_t *backlog,
                   zdm_error *err);
static int pgo_stats(zdm_cdc_source *base, zdm_cdc_stats *out, zdm_error *err);
static int pgo_prefetch(zdm_cdc_source *base, zdm_error *err);
static void pgo_close(zdm_cdc_source *base);

static const zdm_cdc_source_ops pgo_ops = {
	.next = pgo_next,
	.ack = pgo_ack,
	.lag = pgo_lag,
	.stats = pgo_stats,
	/* no fence: the slot's positions are LSNs; no own_xid: zdm's writes
	 * carry their replication origin */
	.prefetch = pgo_prefetch,
	.close = pgo_close,
};

/* ---- small helpers ---------------------------------------------------- */

static uint16_t
pgo_be16(const unsigned char *p)
{
	return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static uint32_t
pgo_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t
pgo_be64(const unsigned char *p)
{
	return ((uint64_t)pgo_be32(p) << 32) | pgo_be32(p + 4);
}

static void
pgo_put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* "16/B374D848", PostgreSQL's way of writing an LSN. */
static const char *
pgo_lsn(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
	return buf;
}

/* A message or column kind byte for an error: 'B', or 0x01. */
static const char *
pgo_byte(uint8_t c, char *buf, size_t len)
{
	if (c >= 0x20 && c < 0x7f && c != '\'')
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "0x%02x", c);
	return buf;
}

/* Now, as a PostgreSQL timestamp (the client's wall clock). */
static int64_t
pgo_pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec - PGO_PG_EPOCH_UNIX) * 1000000 +
	       ts.tv_nsec / 1000;
}

/* ---- errors ------------------------------------------------------------- */

/* Where the message being decoded was, as well as it can be told. */
static void
pgo_where(const pgo_source *src, char *buf, size_t len)
{
	char l[32];

	if (src->msg_lsn != 0)
		snprintf(buf, len, "at LSN %s",
		         pgo_lsn(src->msg_lsn, l, sizeof(l)));
	else if (src->in_txn)
		snprintf(buf, len,
		         "in the transaction committing at LSN %s (xid %u)",
		         pgo_lsn(src->txn_final_lsn, l, sizeof(l)),
		         src->txn_xid);
	else
		snprintf(buf, len, "after LSN %s",
		         pgo_lsn(src->last_commit > src->quiet
		                         ? src->last_commit
		                         : src->quiet,
		                 l, sizeof(l)));
}

/* "pgoutput: <what> <where>"; returns -1. */
__attribute__((format(printf, 3, 4))) static int
pgo_fail(const pgo_source *src, zdm_error *err, const char *fmt, ...)
{
	char what[768], where[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pgo_where(src, where, sizeof(where));
	zdm_error_set(err, "pgoutput: %s %s", what, where);
	return -1;
}

static int
pgo_truncated(const pgo_source *src, const pgo_reader *r, const char *msg,
              zdm_error *err)
{
	if (r->unterminated)
		return pgo_fail(
			src, err,
			"malformed %s message: unterminated string at byte %zu of %zu",
			msg, r->pos, r->len);
	return pgo_fail(
		src, err,
		"truncated %s message: %zu bytes needed at byte %zu of %zu",
		msg, r->want, r->pos, r->len);
}

static int
pgo_oom(zdm_error *err)
{
	zdm_error_set(err, "pgoutput: out of memory");
	return -1;
}

/* ---- reading a message ---------------------------------------------------- */

static bool
pgo_need(pgo_reader *r, size_t n)
{
	if (r->len - r->pos < n) {
		r->want = n;
		return false;
	}
	return true;
}

static bool
pgo_u8(pgo_reader *r, uint8_t *v)
{
	if (!pgo_need(r, 1))
		return false;
	*v = r->p[r->pos++];
	return true;
}

static bool
pgo_u16(pgo_reader *r, uint16_t *v)
{
	if (!pgo_need(r, 2))
		return false;
	*v = pgo_be16(r->p + r->pos);
	r->pos += 2;
	return true;
}

static bool
pgo_u32(pgo_reader *r, uint32_t *v)
{
	if (!pgo_need(r, 4))
		return false;
	*v = pgo_be32(r->p + r->pos);
	r->pos += 4;
	return true;
}

static bool
pgo_u64(pgo_reader *r, uint64_t *v)
{
	if (!pgo_need(r, 8))
		return false;
	*v = pgo_be64(r->p + r->pos);
	r->pos += 8;
	return true;
}

/* A NUL-terminated string; *s points into the message. */
static bool
pgo_str(pgo_reader *r, const char **s, size_t *n)
{
	const unsigned char *nul;

	nul = memchr(r->p + r->pos, '\0', r->len - r->pos);
	if (nul == NULL) {
		r->unterminated = true;
		return false;
	}
	*s = (const char *)r->p + r->pos;
	*n = (size_t)(nul - (r->p + r->pos));
	r->pos += *n + 1;
	return true;
}

static bool
pgo_bytes(pgo_reader *r, size_t n, const unsigned char **p)
{
	if (!pgo_need(r, n))
		return false;
	*p = r->p + r->pos;
	r->pos += n;
	return true;
}

/* The message must end here. */
static int
pgo_end(const pgo_source *src, const pgo_reader *r, const char *msg,
        zdm_error *err)
{
	if (r->pos != r->len)
		return pgo_fail(
			src, err,
			"malformed %s message: %zu unexpected bytes after byte %zu",
			msg, r->len - r->pos, r->pos);
	return 0;
}

/* ---- relation cache -------------------------------------------------------- */

static size_t
pgo_rel_slot(const pgo_source *src, uint32_t relid)
{
	size_t mask = src->rels_cap - 1;
	size_t i = (size_t)(relid * 2654435761u) & mask;

	while (src->rels[i] != NULL && src->rels[i]->relid != relid)
		i = (i + 1) & mask;
	return i;
}

static pgo_rel *
pgo_rel_find(const pgo_source *src, uint32_t relid)
{
	if (src->rels_cap == 0)
		return NULL;
	return src->rels[pgo_rel_slot(src, relid)];
}

static void
pgo_rel_free(pgo_rel *rel)
{
	if (rel != NULL) {
		zdm_arena_free(&rel->mem);
		free(rel);
	}
}

/* Add rel, or replace the entry for its id (the old one is retired). */
static int
pgo_rel_put(pgo_source *src, pgo_rel *rel)
{
	size_t i;

	if (src->rels_n + 1 > src->rels_cap / 2) {
		size_t oldcap = src->rels_cap, ncap = oldcap ? oldcap * 2 : 16;
		pgo_rel **old = src->rels;

		src->rels = calloc(ncap, sizeof(*src->rels));
		if (src->rels == NULL) {
			src->rels = old;
			return -1;
		}
		src->rels_cap = ncap;
		for (i = 0; i < oldcap; i++)
			if (old[i] != NULL)
				src->rels[pgo_rel_slot(src, old[i]->relid)] =
					old[i];
		free(old);
	}
	i = pgo_rel_slot(src, rel->relid);
	if (src->rels[i] != NULL) {
		src->rels[i]->retired_next = src->retired;
		src->retired = src->rels[i];
	} else {
		src->rels_n++;
	}
	src->rels[i] = rel;
	return 0;
}

/* ---- positions and status updates -------------------------------------- */

/* The flush position to report: see the invariants at the top. */
static uint64_t
pgo_flush_pos(const pgo_source *src)
{
	uint64_t pos = src->acked;

	if (src->acked >= src->recv_end && src->quiet > pos)
		pos = src->quiet;
	return pos > src->reported ? pos : src->reported;
}

static int
pgo_send_status(pgo_source *src, zdm_error *err)
{
	unsigned char msg[1 + 8 * 4 + 1];
	uint64_t pos = pgo_flush_pos(src);

	if (src->conn == NULL) {
		src->reported = pos;
		return 0;
	}
	msg[0] = 'r';
	pgo_put_be64(msg + 1, pos);  /* written */
	pgo_put_be64(msg + 9, pos);  /* flushed: moves confirmed_flush_lsn */
	pgo_put_be64(msg + 17, pos); /* applied */
	pgo_put_be64(msg + 25, (uint64_t)pgo_pg_now());
	msg[33] = 0; /* no reply wanted */
	if (PQputCopyData(src->conn, (const char *)msg, (int)sizeof(msg)) !=
	            1 ||
	    PQflush(src->conn) != 0) {
		zdm_error_from_result(err, NULL, src->conn);
		return -1;
	}
	src->reported = pos;
	src->last_status = zdm_now();
	src->stats.status_updates++;
	return 0;
}

static int
pgo_status_if_due(pgo_source *src, zdm_error *err)
{
	if (src->conn == NULL ||
	    (zdm_now() - src->last_status) * 1000.0 < src->status_interval_ms)
		return 0;
	return pgo_send_status(src, err);
}

static void
pgo_note_server(pgo_source *src, uint64_t wal_end, int64_t send_time)
{
	if (wal_end > src->wal_end)
		src->wal_end = wal_end;
	if (send_time != 0) {
		src->server_clock = send_time;
		src->server_clock_at = zdm_now();
	}
}

static int
pgo_pend_push(pgo_source *src, uint64_t end_lsn, int64_t commit_time)
{
	if (src->pend_n == src->pend_cap) {
		size_t ncap = src->pend_cap ? src->pend_cap * 2 : 64, i;
		pgo_pending *p = malloc(ncap * sizeof(*p));

		if (p == NULL)
			return -1;
		for (i = 0; i < src->pend_n; i++)
			p[i] = src->pend[(src->pend_head + i) % src->pend_cap];
		free(src->pend);
		src->pend = p;
		src->pend_cap = ncap;
		src->pend_head = 0;
	}
	src->pend[(src->pend_head + src->pend_n) % src->pend_cap] =
		(pgo_pending){end_lsn, commit_time};
	src->pend_n++;
	return 0;
}

/* ---- decoding -------------------------------------------------------------- */

static zdm_cdc_change *
pgo_txn_push(pgo_source *src)
{
	zdm_cdc_change *c;

	if (src->txn_n == src->txn_cap) {
		size_t ncap = src->txn_cap ? src->txn_cap * 2 : 16;
		zdm_cdc_change *t = realloc(src->txn, ncap * sizeof(*t));

		if (t == NULL)
			return NULL;
		src->txn = t;
		src->txn_cap = ncap;
	}
	c = &src->txn[src->txn_n++];
	memset(c, 0, sizeof(*c));
	return c;
}

static int
pgo_begin(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint64_t final_lsn, commit_time;
	uint32_t xid;

	if (src->in_txn)
		return pgo_fail(src, err, "Begin inside a transaction");
	if (!pgo_u64(r, &final_lsn) || !pgo_u64(r, &commit_time) ||
	    !pgo_u32(r, &xid))
		return pgo_truncated(src, r, "Begin", err);
	if (pgo_end(src, r, "Begin", err) < 0)
		return -1;
	src->in_txn = true;
	src->txn_final_lsn = final_lsn;
	src->txn_commit_time = (int64_t)commit_time;
	src->txn_xid = xid;
	src->txn_own = false;
	src->txn_n = 0;
	return 0;
}

/* Move the transaction's changes to the end of a batch (*list). */
static int
pgo_take_txn(pgo_source *src, zdm_cdc_change **list, size_t *n, size_t *cap,
             zdm_arena *mem)
{
	if (*n == 0) {
		zdm_cdc_change *t = *list;
		size_t c = *cap;

		*list = src->txn;
		*cap = src->txn_cap;
		*n = src->txn_n;
		src->txn = t;
		src->txn_cap = c;
	} else {
		if (*n + src->txn_n > *cap) {
			size_t ncap = (*n + src->txn_n) * 2;
			zdm_cdc_change *t = realloc(*list, ncap * sizeof(*t));

			if (t == NULL)
				return -1;
			*list = t;
			*cap = ncap;
		}
		memcpy(*list + *n, src->txn, src->txn_n * sizeof(*src->txn));
		*n += src->txn_n;
	}
	zdm_arena_splice(mem, &src->txn_mem);
	return 0;
}

static int
pgo_commit(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint8_t flags;
	uint64_t commit_lsn, end_lsn, commit_time;
	char a[32], b[32];
	size_t i;

	if (!src->in_txn)
		return pgo_fail(src, err, "Commit without a Begin");
	if (!pgo_u8(r, &flags) || !pgo_u64(r, &commit_lsn) ||
	    !pgo_u64(r, &end_lsn) || !pgo_u64(r, &commit_time))
		return pgo_truncated(src, r, "Commit", err);
	if (pgo_end(src, r, "Commit", err) < 0)
		return -1;
	if (flags != 0)
		return pgo_fail(src, err, "unknown Commit flags 0x%02x", flags);
	if (commit_lsn != src->txn_final_lsn)
		return pgo_fail(src, err, "Commit at LSN %s, Begin said %s",
		                pgo_lsn(commit_lsn, a, sizeof(a)),
		                pgo_lsn(src->txn_final_lsn, b, sizeof(b)));
	if (end_lsn <= commit_lsn || end_lsn <= src->last_commit)
		return pgo_fail(
			src, err,
			"Commit ends at LSN %s, not after its start or the previous transaction's end %s",
			pgo_lsn(end_lsn, a, sizeof(a)),
			pgo_lsn(src->last_commit, b, sizeof(b)));
	src->last_commit = end_lsn;
	src->in_txn = false;
	/* Only an empty transaction (older servers send them) can be
	 * ignored whole: no change carries its position, none will ack it. */
	if (src->txn_n == 0) {
		zdm_arena_free(&src->txn_mem);
		return 0;
	}
	for (i = 0; i < src->txn_n; i++) {
		src->txn[i].position.partition = 0;
		src->txn[i].position.offset = end_lsn;
		src->txn[i].own_write = src->txn_own;
		src->txn[i].xid = src->txn_xid;
	}
	if (pgo_pend_push(src, end_lsn, (int64_t)commit_time) < 0)
		return pgo_oom(err);
	if (src->batch_handed_out) {
		if (pgo_take_txn(src, &src->ahead, &src->ahead_n,
		                 &src->ahead_cap, &src->ahead_mem) < 0)
			return pgo_oom(err);
	} else if (pgo_take_txn(src, &src->batch, &src->batch_n,
	                        &src->batch_cap, &src->batch_mem) < 0) {
		return pgo_oom(err);
	}
	src->stats.transactions++;
	src->stats.changes += src->txn_n;
	src->txn_n = 0;
	src->recv_end = end_lsn;
	return 0;
}

static int
pgo_origin(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint64_t origin_lsn;
	const char *name;
	size_t n;

	if (!src->in_txn)
		return pgo_fail(src, err, "Origin outside a transaction");
	if (!pgo_u64(r, &origin_lsn) || !pgo_str(r, &name, &n))
		return pgo_truncated(src, r, "Origin", err);
	if (pgo_end(src, r, "Origin", err) < 0)
		return -1;
	src->txn_own = n >= strlen(PGO_OWN_ORIGIN_PREFIX) &&
	               memcmp(name, PGO_OWN_ORIGIN_PREFIX,
	                      strlen(PGO_OWN_ORIGIN_PREFIX)) == 0;
	return 0;
}

static int
pgo_relation(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	pgo_rel *rel;
	const char *s;
	size_t n;
	uint8_t ident, flags;
	uint32_t typmod;
	uint16_t i;

	rel = calloc(1, sizeof(*rel));
	if (rel == NULL)
		return pgo_oom(err);
	if (!pgo_u32(r, &rel->relid) || !pgo_str(r, &s, &n))
		goto truncated;
	/* an empty namespace is pg_catalog's, to save bytes */
	rel->schema = n ? zdm_arena_strndup(&rel->mem, s, n)
	                : zdm_arena_strndup(&rel->mem, "pg_catalog", 10);
	if (!pgo_str(r, &s, &n))
		goto truncated;
	rel->table = zdm_arena_strndup(&rel->mem, s, n);
	if (!pgo_u8(r, &ident) || !pgo_u16(r, &rel->ncols))
		goto truncated;
	rel->replident = (char)ident;
	rel->names =
		zdm_arena_alloc(&rel->mem, (rel->ncols + 1u) * sizeof(char *));
	rel->types = zdm_arena_alloc(&rel->mem,
	                             (rel->ncols + 1u) * sizeof(uint32_t));
	rel->key = zdm_arena_alloc(&rel->mem, rel->ncols + 1u);
	if (rel->schema == NULL || rel->table == NULL || rel->names == NULL ||
	    rel->types == NULL || rel->key == NULL)
		goto oom;
	for (i = 0; i < rel->ncols; i++) {
		if (!pgo_u8(r, &flags) || !pgo_str(r, &s, &n) ||
		    !pgo_u32(r, &rel->types[i]) || !pgo_u32(r, &typmod))
			goto truncated;
		rel->names[i] = zdm_arena_strndup(&rel->mem, s, n);
		if (rel->names[i] == NULL)
			goto oom;
		rel->key[i] = (flags & 1) != 0;
		if (rel->key[i])
			rel->nkey++;
	}
	if (pgo_end(src, r, "Relation", err) < 0)
		goto fail;
	if (pgo_rel_put(src, rel) < 0)
		goto oom;
	return 0;
truncated:
	pgo_truncated(src, r, "Relation", err);
	goto fail;
oom:
	pgo_oom(err);
fail:
	pgo_rel_free(rel);
	return -1;
}

static int
pgo_type(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint32_t oid;
	const char *s;
	size_t n;

	/* Names of non-built-in types: values are text, nothing to do. */
	if (!pgo_u32(r, &oid) || !pgo_str(r, &s, &n) || !pgo_str(r, &s, &n))
		return pgo_truncated(src, r, "Type", err);
	return pgo_end(src, r, "Type", err);
}

/*
 * TupleData into columns in the transaction's arena.  An old key ('K')
 * carries every column, NULL where not part of the key: only the key's are
 * kept (all of them when the relation named no key).
 */
static int
pgo_tuple(pgo_source *src, pgo_reader *r, const pgo_rel *rel, bool key_only,
          const char *msg, const zdm_cdc_column **out, size_t *nout,
          zdm_error *err)
{
	uint16_t ncols, i;
	uint8_t kind;
	uint32_t len;
	const unsigned char *v;
	zdm_cdc_column *cols;
	bool keyed = key_only && rel->nkey > 0, keep;
	size_t k = 0;
	char kb[8];

	if (!pgo_u16(r, &ncols))
		return pgo_truncated(src, r, msg, err);
	if (ncols != rel->ncols)
		return pgo_fail(
			src, err,
			"%s message with %u columns for %s.%s, which has %u",
			msg, ncols, rel->schema, rel->table, rel->ncols);
	cols = zdm_arena_alloc(&src->txn_mem, ((keyed ? rel->nkey : ncols) +
	                                       1u) * sizeof(*cols));
	if (cols == NULL)
		return pgo_oom(err);
	for (i = 0; i < ncols; i++) {
		keep = !keyed || rel->key[i];
		if (!pgo_u8(r, &kind))
			return pgo_truncated(src, r, msg, err);
		if (keep) {
			cols[k].name = rel->names[i];
			cols[k].value = NULL;
			cols[k].unchanged_toast = false;
		}
		switch (kind) {
		case 'n':
			break;
		case 'u':
			if (keep)
				cols[k].unchanged_toast = true;
			break;
		case 't':
			if (!pgo_u32(r, &len) || !pgo_bytes(r, len, &v))
				return pgo_truncated(src, r, msg, err);
			if (memchr(v, '\0', len) != NULL)
				return pgo_fail(
					src, err,
					"%s message: a NUL byte in the value of %s.%s.%s",
					msg, rel->schema, rel->table,
					rel->names[i]);
			if (keep) {
				cols[k].value = zdm_arena_strndup(
					&src->txn_mem, (const char *)v, len);
				if (cols[k].value == NULL)
					return pgo_oom(err);
			}
			break;
		default:
			/* 'b' (binary) only comes when asked for */
			return pgo_fail(
				src, err,
				"%s message: unknown column kind %s for %s.%s.%s",
				msg, pgo_byte(kind, kb, sizeof(kb)),
				rel->schema, rel->table, rel->names[i]);
		}
		if (keep)
			k++;
	}
	*out = cols;
	*nout = k;
	return 0;
}

/* Insert, Update and Delete. */
static int
pgo_row(pgo_source *src, pgo_reader *r, uint8_t tag, zdm_error *err)
{
	const char *msg = tag == 'I'   ? "Insert"
	                  : tag == 'U' ? "Update"
	                               : "Delete";
	uint32_t relid;
	uint8_t kind;
	const pgo_rel *rel;
	zdm_cdc_change *c;
	char kb[8];

	if (!src->in_txn)
		return pgo_fail(src, err, "%s outside a transaction", msg);
	if (!pgo_u32(r, &relid) || !pgo_u8(r, &kind))
		return pgo_truncated(src, r, msg, err);
	rel = pgo_rel_find(src, relid);
	if (rel == NULL)
		return pgo_fail(
			src, err,
			"%s for relation id %u, which no Relation message described",
			msg, relid);
	c = pgo_txn_push(src);
	if (c == NULL)
		return pgo_oom(err);
	c->op = tag == 'I'   ? ZDM_CDC_INSERT
	        : tag == 'U' ? ZDM_CDC_UPDATE
	                     : ZDM_CDC_DELETE;
	c->schema = rel->schema;
	c->table = rel->table;
	if (tag != 'I' && (kind == 'K' || kind == 'O')) {
		if (pgo_tuple(src, r, rel, kind == 'K', msg, &c->old_cols,
		              &c->nold, err) < 0)
			return -1;
		if (tag == 'D')
			return pgo_end(src, r, msg, err);
		if (!pgo_u8(r, &kind))
			return pgo_truncated(src, r, msg, err);
	} else if (tag == 'D') {
		return pgo_fail(src, err,
		                "Delete message: %s where 'K' or 'O' belongs",
		                pgo_byte(kind, kb, sizeof(kb)));
	}
	if (kind != 'N')
		return pgo_fail(src, err, "%s message: %s where 'N' belongs",
		                msg, pgo_byte(kind, kb, sizeof(kb)));
	if (pgo_tuple(src, r, rel, false, msg, &c->new_cols, &c->nnew, err) < 0)
		return -1;
	return pgo_end(src, r, msg, err);
}

static int
pgo_truncate(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint32_t nrels, relid, i;
	uint8_t flags;
	const pgo_rel *rel;
	zdm_cdc_change *c;

	if (!src->in_txn)
		return pgo_fail(src, err, "Truncate outside a transaction");
	if (!pgo_u32(r, &nrels) || !pgo_u8(r, &flags))
		return pgo_truncated(src, r, "Truncate", err);
	if (nrels > (r->len - r->pos) / 4) {
		r->want = (size_t)nrels * 4;
		return pgo_truncated(src, r, "Truncate", err);
	}
	for (i = 0; i < nrels; i++) {
		if (!pgo_u32(r, &relid))
			return pgo_truncated(src, r, "Truncate", err);
		rel = pgo_rel_find(src, relid);
		if (rel == NULL)
			return pgo_fail(
				src, err,
				"Truncate of relation id %u, which no Relation message described",
				relid);
		c = pgo_txn_push(src);
		if (c == NULL)
			return pgo_oom(err);
		c->op = ZDM_CDC_TRUNCATE;
		c->schema = rel->schema;
		c->table = rel->table;
	}
	return pgo_end(src, r, "Truncate", err);
}

/* One pgoutput message: the payload of an XLogData. */
static int
pgo_decode(pgo_source *src, pgo_reader *r, zdm_error *err)
{
	uint8_t tag;
	char tb[8];

	if (!pgo_u8(r, &tag))
		return pgo_fail(src, err, "empty XLogData message");
	switch (tag) {
	case 'B':
		return pgo_begin(src, r, err);
	case 'C':
		return pgo_commit(src, r, err);
	case 'O':
		return pgo_origin(src, r, err);
	case 'R':
		return pgo_relation(src, r, err);
	case 'Y':
		return pgo_type(src, r, err);
	case 'I':
	case 'U':
	case 'D':
		return pgo_row(src, r, tag, err);
	case 'T':
		return pgo_truncate(src, r, err);
	default:
		return pgo_fail(src, err, "unknown message type %s",
		                pgo_byte(tag, tb, sizeof(tb)));
	}
}

/* One CopyData message of the replication stream. */
static int
pgo_handle(pgo_source *src, const unsigned char *msg, size_t len,
           zdm_error *err)
{
	pgo_reader r = {msg, len, 0, 0, false};
	uint64_t data_start, wal_end, send_time;
	uint8_t type, reply;
	char tb[8];

	src->stats.bytes += len;
	src->msg_lsn = 0;
	if (!pgo_u8(&r, &type))
		return pgo_fail(src, err, "empty replication message");
	switch (type) {
	case 'w':
		if (!pgo_u64(&r, &data_start) || !pgo_u64(&r, &wal_end) ||
		    !pgo_u64(&r, &send_time))
			return pgo_truncated(src, &r, "XLogData", err);
		src->msg_lsn = data_start;
		pgo_note_server(src, wal_end, (int64_t)send_time);
		return pgo_decode(src, &r, err);
	case 'k':
		if (!pgo_u64(&r, &wal_end) || !pgo_u64(&r, &send_time) ||
		    !pgo_u8(&r, &reply))
			return pgo_truncated(src, &r, "keepalive", err);
		if (pgo_end(src, &r, "keepalive", err) < 0)
			return -1;
		pgo_note_server(src, wal_end, (int64_t)send_time);
		src->stats.keepalives++;
		/* every transaction that ends before wal_end has been sent */
		if (!src->in_txn && wal_end > src->quiet)
			src->quiet = wal_end;
		if (reply || pgo_flush_pos(src) != src->reported)
			return pgo_send_status(src, err);
		return 0;
	default:
		return pgo_fail(src, err,
		                "unexpected replication message type %s",
		                pgo_byte(type, tb, sizeof(tb)));
	}
}

/* ---- the stream ----------------------------------------------------------- */

/* Forget the batch handed out last time (and relations it alone used). */
static void
pgo_batch_release(pgo_source *src)
{
	pgo_rel *rel, *next;

	if (src->batch_handed_out) {
		zdm_arena_free(&src->batch_mem);
		src->batch_n = 0;
		src->batch_handed_out = false;
		if (src->ahead_n > 0) {
			zdm_cdc_change *t = src->batch;
			size_t cap = src->batch_cap;

			src->batch = src->ahead;
			src->batch_cap = src->ahead_cap;
			src->batch_n = src->ahead_n;
			src->batch_mem = src->ahead_mem;
			src->ahead = t;
			src->ahead_cap = cap;
			src->ahead_n = 0;
			memset(&src->ahead_mem, 0, sizeof(src->ahead_mem));
		}
	}
	if (!src->in_txn && src->batch_n == 0) {
		for (rel = src->retired; rel != NULL; rel = next) {
			next = rel->retired_next;
			pgo_rel_free(rel);
		}
		src->retired = NULL;
	}
}

/* The COPY ended or failed: the server's reason. */
static int
pgo_stream_error(pgo_source *src, int rc, zdm_error *err)
{
	PGresult *res;
	bool set = false;

	if (rc == -1) {
		while ((res = PQgetResult(src->conn)) != NULL) {
			if (!set && PQresultStatus(res) != PGRES_COMMAND_OK &&
			    PQresultStatus(res) != PGRES_COPY_BOTH) {
				zdm_error_from_result(err, res, src->conn);
				set = true;
			}
			PQclear(res);
		}
		if (!set)
			zdm_error_set(
				err, "the server ended the replication stream");
		return -1;
	}
	zdm_error_from_result(err, NULL, src->conn);
	return -1;
}

/* Wait for the socket: 1 readable or timed out, 0 interrupted, -1 error. */
static int
pgo_wait(pgo_source *src, int ms, zdm_error *err)
{
	struct pollfd pfd;
	int rc;

	pfd.fd = PQsocket(src->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0) {
		zdm_error_from_result(err, NULL, src->conn);
		return -1;
	}
	rc = poll(&pfd, 1, ms);
	if (rc < 0) {
		if (errno == EINTR)
			return 0;
		zdm_error_set(err, "waiting for the replication stream: %s",
		              strerror(errno));
		return -1;
	}
	if (rc > 0 && PQconsumeInput(src->conn) == 0) {
		zdm_error_from_result(err, NULL, src->conn);
		return -1;
	}
	return 1;
}

/* pgo_gather_wait's measure of the stream, per call of next */
typedef struct pgo_naps {
	double since;  /* when the first nap was taken; 0: none yet */
	uint64_t txns; /* transactions received by then */
} pgo_naps;

/*
 * Sleep for seconds, then take in what came meanwhile: 1 done, 0
 * interrupted, -1 error.  For gathering a batch: a poll there wakes once
 * for every transaction the walsender sends, and at a few thousand commits
 * a second the wake-ups cost this process and the walsender (which then
 * sends each message on its own) more CPU than the changes.  While this
 * sleeps, the walsender fills the socket, or waits for room in it.
 */
static int
pgo_nap(pgo_source *src, double seconds, zdm_error *err)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	if (nanosleep(&ts, NULL) != 0) {
		if (errno == EINTR)
			return 0;
		zdm_error_set(err, "sleeping for the replication stream: %s",
		              strerror(errno));
		return -1;
	}
	if (PQconsumeInput(src->conn) == 0) {
		zdm_error_from_result(err, NULL, src->conn);
		return -1;
	}
	return 1;
}

/*
 * Wait up to seconds for more of a batch: take what is in the socket at
 * once; else nap, PGO_NAP_MS while the stream trickles, PGO_FLOW_NAP_US
 * while it flows.  Never a poll: that wakes for each of the walsender's
 * messages (this reads faster than it decodes), and those wake-ups cost
 * both processes more CPU than the messages.  *napped: when the first nap
 * was taken, and the transactions received by then; the rate since then
 * says whether the stream trickles (what the socket held at once, such as
 * what came during the last apply, says nothing of it).
 */
static int
pgo_gather_wait(pgo_source *src, double seconds, pgo_naps *napped,
                zdm_error *err)
{
	double now = zdm_now(), nap = PGO_FLOW_NAP_US / 1e6;
	int avail = 0;

	if (ioctl(PQsocket(src->conn), FIONREAD, &avail) == 0 && avail > 0) {
		if (PQconsumeInput(src->conn) == 0) {
			zdm_error_from_result(err, NULL, src->conn);
			return -1;
		}
		return 1;
	}
	if (napped->since == 0) {
		napped->since = now;
		napped->txns = src->stats.transactions;
	} else if ((double)(src->stats.transactions - napped->txns) <
	           PGO_NAP_RATE * (now - napped->since) * 1000.0) {
		nap = PGO_NAP_MS / 1000.0;
	}
	return pgo_nap(src, seconds < nap ? seconds : nap, err);
}

static int
pgo_next(zdm_cdc_source *base, const zdm_cdc_change **changes, size_t *n,
         int timeout_ms, zdm_error *err)
{
	pgo_source *src = (pgo_source *)base;
	double deadline, now, due, linger_until = 0;
	pgo_naps napped = {0, 0};
	bool polled = false;
	char *buf;
	int len, rc, wait_ms;

	*changes = NULL;
	*n = 0;
	if (src->dead) {
		zdm_error_set(
			err,
			"pgoutput: the replication stream failed earlier; close the source and open a new one");
		return -1;
	}
	pgo_batch_release(src);
	if (src->ahead_failed) {
		*err = src->ahead_err;
		goto fail;
	}
	if (src->ahead_end != 0) {
		pgo_stream_error(src, src->ahead_end, err);
		goto fail;
	}
	deadline = zdm_now() + (timeout_ms > 0 ? timeout_ms : 0) / 1000.0;
	while (src->conn != NULL) {
		if (pgo_status_if_due(src, err) < 0)
			goto fail;
		buf = NULL;
		len = PQgetCopyData(src->conn, &buf, 1);
		if (len > 0) {
			rc = pgo_handle(src, (const unsigned char *)buf,
			                (size_t)len, err);
			PQfreemem(buf);
			if (rc < 0)
				goto fail;
			if (src->batch_n >= PGO_BATCH_MAX)
				break;
			continue;
		}
		if (len < 0) {
			pgo_stream_error(src, len, err);
			goto fail;
		}
		/* nothing complete in libpq's buffer */
		now = zdm_now();
		if (src->batch_n > 0) {
			if (src->batch_n >= PGO_BATCH_MIN)
				break;
			if (linger_until == 0)
				linger_until = now + PGO_LINGER_MS / 1000.0;
			if (now >= linger_until)
				break;
			rc = pgo_gather_wait(src, linger_until - now, &napped,
			                     err);
			if (rc < 0)
				goto fail;
			if (rc == 0)
				break;
			continue;
		}
		if (timeout_ms >= 0 && now >= deadline && polled)
			break;
		due = src->last_status + src->status_interval_ms / 1000.0;
		if (timeout_ms < 0 || due < deadline)
			wait_ms = (int)((due - now) * 1000.0) + 1;
		else
			wait_ms = (int)((deadline - now) * 1000.0) + 1;
		if (wait_ms < 0)
			wait_ms = 0;
		rc = pgo_wait(src, wait_ms, err);
		if (rc < 0)
			goto fail;
		if (rc == 0) /* a signal: let the caller look at it */
			break;
		polled = true;
	}
	*changes = src->batch;
	*n = src->batch_n;
	src->batch_handed_out = true;
	src->flowing = src->batch_n >= PGO_BATCH_MIN;
	return 0;
fail:
	src->dead = true;
	return -1;
}

static int
pgo_ack(zdm_cdc_source *base, zdm_cdc_position pos, zdm_error *err)
{
	pgo_source *src = (pgo_source *)base;
	char a[32], b[32];

	if (pos.partition != 0) {
		zdm_error_set(
			err,
			"pgoutput: ack of partition %d; the native source has only partition 0",
			(int)pos.partition);
		return -1;
	}
	if (pos.offset > src->recv_end) {
		zdm_error_set(
			err,
			"pgoutput: ack of LSN %s, beyond the newest transaction received (%s)",
			pgo_lsn(pos.offset, a, sizeof(a)),
			pgo_lsn(src->recv_end, b, sizeof(b)));
		return -1;
	}
	if (pos.offset <= src->acked)
		return 0;
	src->acked = pos.offset;
	src->stats.acked_lsn = pos.offset;
	while (src->pend_n > 0 &&
	       src->pend[src->pend_head].end_lsn <= src->acked) {
		src->pend_head = (src->pend_head + 1) % src->pend_cap;
		src->pend_n--;
	}
	if (src->dead) {
		zdm_error_set(
			err,
			"pgoutput: cannot report the ack: the replication stream failed earlier");
		return -1;
	}
	if (pgo_send_status(src, err) < 0) {
		src->dead = true;
		return -1;
	}
	return 0;
}

/*
 * seconds: 0 when every transaction received has been acknowledged;
 * otherwise how long ago, by the server's clock, the oldest unacknowledged
 * one committed (the server's clock is the send time of its newest message,
 * advanced by the time since it came, so the two clocks are never
 * compared).  It cannot see transactions the walsender has not decoded
 * yet.  backlog: the newest WAL end the server mentioned minus the flush
 * position reported, in bytes of WAL (not all of it for the published
 * tables).
 */
static int
pgo_lag(zdm_cdc_source *base, double *seconds, uint64_t *backlog,
        zdm_error *err)
{
	pgo_source *src = (pgo_source *)base;
	int64_t oldest, server_now;
	uint64_t flushed;

	if (!src->dead && pgo_status_if_due(src, err) < 0) {
		src->dead = true;
		return -1;
	}
	*seconds = 0;
	if (src->pend_n > 0 || src->in_txn) {
		oldest = src->pend_n > 0 ? src->pend[src->pend_head].commit_time
		                         : src->txn_commit_time;
		if (src->server_clock != 0)
			server_now =
				src->server_clock +
				(int64_t)((zdm_now() - src->server_clock_at) *
			                  1e6);
		else
			server_now = pgo_pg_now();
		if (server_now > oldest)
			*seconds = (double)(server_now - oldest) / 1e6;
	}
	flushed = pgo_flush_pos(src);
	*backlog = src->wal_end > flushed ? src->wal_end - flushed : 0;
	return 0;
}

/*
 * End the stream cleanly (CopyDone, then the command's end) so the
 * walsender lets go of the slot before we hang up: a new session can then
 * take it at once.  Bounded: a stuck server is simply hung up on.
 */
static void
pgo_stop_streaming(pgo_source *src)
{
	zdm_error ignored;
	double deadline = zdm_now() + PGO_CLOSE_WAIT_MS / 1000.0;
	char *buf;
	int len, ms;
	PGresult *res;

	if (pgo_send_status(src, &ignored) < 0 ||
	    PQputCopyEnd(src->conn, NULL) != 1 || PQflush(src->conn) != 0)
		return;
	for (;;) {
		buf = NULL;
		len = PQgetCopyData(src->conn, &buf, 1);
		if (len > 0) {
			PQfreemem(buf);
			continue;
		}
		if (len < 0)
			break;
		ms = (int)((deadline - zdm_now()) * 1000.0);
		if (ms <= 0 || pgo_wait(src, ms, &ignored) <= 0)
			return;
	}
	for (;;) {
		if (PQconsumeInput(src->conn) == 0)
			return;
		if (!PQisBusy(src->conn)) {
			res = PQgetResult(src->conn);
			if (res == NULL)
				return;
			PQclear(res);
			continue;
		}
		ms = (int)((deadline - zdm_now()) * 1000.0);
		if (ms <= 0 || pgo_wait(src, ms, &ignored) <= 0)
			return;
	}
}

static void
pgo_close(zdm_cdc_source *base)
{
	pgo_source *src = (pgo_source *)base;
	pgo_rel *rel, *next;
	size_t i;

	if (src == NULL)
		return;
	if (src->conn != NULL) {
		if (!src->dead && PQstatus(src->conn) == CONNECTION_OK)
			pgo_stop_streaming(src);
		PQfinish(src->conn);
	}
	for (i = 0; i < src->rels_cap; i++)
		pgo_rel_free(src->rels[i]);
	free(src->rels);
	for (rel = src->retired; rel != NULL; rel = next) {
		next = rel->retired_next;
		pgo_rel_free(rel);
	}
	zdm_arena_free(&src->txn_mem);
	zdm_arena_free(&src->batch_mem);
	zdm_arena_free(&src->ahead_mem);
	free(src->txn);
	free(src->batch);
	free(src->ahead);
	free(src->pend);
	free(src);
}

/* ---- opening ------------------------------------------------------------- */

/* PostgreSQL's rule for slot names (ReplicationSlotValidateName). */
static bool
pgo_slot_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= 64)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static PGconn *
pgo_connect(const char *conninfo, zdm_error *err)
{
	const char *keywords[6], *values[6];
	char *options;
	PGconn *conn;

	if (conninfo == NULL)
		conninfo = getenv("DATABASE_URL");
	if (conninfo == NULL)
		conninfo = "";
	options = zdm_conninfo_options(conninfo, PGO_FORCED_OPTIONS);
	if (options == NULL) {
		zdm_error_set(err, "out of memory connecting to the database");
		return NULL;
	}
	/* expand_dbname: dbname may be a full conninfo or URI; the keywords
	 * after it override what it says */
	keywords[0] = "dbname";
	values[0] = conninfo;
	keywords[1] = "replication";
	values[1] = "database";
	keywords[2] = "application_name";
	values[2] = "zdm cdc";
	keywords[3] = "client_encoding";
	values[3] = "UTF8";
	keywords[4] = "options";
	values[4] = options;
	keywords[5] = NULL;
	values[5] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	free(options);
	if (conn == NULL) {
		zdm_error_set(err, "out of memory connecting to the database");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		zdm_error_from_result(err, NULL, conn);
		snprintf(err->sqlstate, sizeof(err->sqlstate), "08001");
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* A simple-protocol query (all a walsender takes) expecting rows. */
static PGresult *
pgo_query(PGconn *conn, const char *sql, zdm_error *err)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		zdm_error_from_result(err, res, conn);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* sql_prefix followed by value as a literal. */
static PGresult *
pgo_query_lit(PGconn *conn, const char *sql_prefix, const char *value,
              zdm_error *err)
{
	char *lit, *sql;
	size_t n;
	PGresult *res = NULL;

	lit = PQescapeLiteral(conn, value, strlen(value));
	if (lit == NULL) {
		zdm_error_from_result(err, NULL, conn);
		return NULL;
	}
	n = strlen(sql_prefix) + strlen(lit) + 1;
	sql = malloc(n);
	if (sql == NULL) {
		zdm_error_set(err, "pgoutput: out of memory");
	} else {
		snprintf(sql, n, "%s%s", sql_prefix, lit);
		res = pgo_query(conn, sql, err);
	}
	free(sql);
	PQfreemem(lit);
	return res;
}

static int
pgo_identify(pgo_source *src, zdm_error *err)
{
	PGresult *res = pgo_query(src->conn, "IDENTIFY_SYSTEM", err);
	unsigned hi, lo;
	int rc = -1;

	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1 || PQnfields(res) < 4) {
		zdm_error_set(
			err,
			"pgoutput: IDENTIFY_SYSTEM returned %d rows of %d columns, expected 1 of 4",
			PQntuples(res), PQnfields(res));
		goto cleanup;
	}
	if (PQgetisnull(res, 0, 3)) {
		zdm_error_set(
			err,
			"pgoutput: the replication connection is not bound to a database");
		goto cleanup;
	}
	if (sscanf(PQgetvalue(res, 0, 2), "%X/%X", &hi, &lo) == 2)
		src->wal_end = ((uint64_t)hi << 32) | lo;
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

/* The slot is usable; its confirmed_flush_lsn is where reporting starts. */
static int
pgo_check_slot(pgo_source *src, const char *slot, zdm_error *err)
{
	double give_up = zdm_now() + PGO_SLOT_WAIT_MS / 1000.0;
	PGresult *res;
	unsigned hi, lo;
	int rc = -1;

	for (;;) {
		res = pgo_query_lit(src->conn, PGO_SQL_SLOT, slot, err);
		if (res == NULL)
			return -1;
		if (PQntuples(res) == 0) {
			zdm_error_set(err,
			              "replication slot \"%s\" does not exist",
			              slot);
			goto cleanup;
		}
		if (strcmp(PQgetvalue(res, 0, 1), "logical") != 0 ||
		    strcmp(PQgetvalue(res, 0, 0), "pgoutput") != 0) {
			zdm_error_set(
				err,
				"replication slot \"%s\" is a %s slot with plugin \"%s\", not a logical slot with pgoutput",
				slot, PQgetvalue(res, 0, 1),
				PQgetvalue(res, 0, 0));
			goto cleanup;
		}
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
			zdm_error_set(
				err,
				"replication slot \"%s\" belongs to another database",
				slot);
			goto cleanup;
		}
		if (strcmp(PQgetvalue(res, 0, 5), "lost") == 0) {
			zdm_error_set(
				err,
				"replication slot \"%s\" has lost WAL it needs (wal_status lost)",
				slot);
			snprintf(
				err->hint, sizeof(err->hint),
				"the changes since it was last read are gone; the migration must start its sync again");
			goto cleanup;
		}
		if (PQgetisnull(res, 0, 3))
			break;
		if (zdm_now() >= give_up) {
			zdm_error_set(
				err,
				"replication slot \"%s\" is in use by process %s",
				slot, PQgetvalue(res, 0, 3));
			snprintf(
				err->hint, sizeof(err->hint),
				"another reader holds the slot; only one may read it at a time");
			goto cleanup;
		}
		PQclear(res);
		zdm_sleep_ms(100);
	}
	if (PQgetisnull(res, 0, 4) ||
	    sscanf(PQgetvalue(res, 0, 4), "%X/%X", &hi, &lo) != 2) {
		zdm_error_set(
			err,
			"replication slot \"%s\" has no confirmed_flush_lsn",
			slot);
		goto cleanup;
	}
	src->acked = ((uint64_t)hi << 32) | lo;
	src->recv_end = src->acked;
	src->reported = src->acked;
	src->stats.acked_lsn = src->acked;
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

static int
pgo_check_publication(pgo_source *src, const char *publication, zdm_error *err)
{
	static const char *const ops[] = {"insert", "update", "delete"};
	PGresult *res =
		pgo_query_lit(src->conn, PGO_SQL_PUBLICATION, publication, err);
	char missing[64] = "";
	int i, rc = -1;

	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		zdm_error_set(err, "publication \"%s\" does not exist",
		              publication);
		goto cleanup;
	}
	for (i = 0; i < 3; i++)
		if (strcmp(PQgetvalue(res, 0, i), "t") != 0)
			snprintf(missing + strlen(missing),
			         sizeof(missing) - strlen(missing), "%s%s",
			         missing[0] ? ", " : "", ops[i]);
	if (missing[0] != '\0') {
		zdm_error_set(err, "publication \"%s\" does not publish %s",
		              publication, missing);
		snprintf(err->hint, sizeof(err->hint),
		         "zdm needs every insert, update and delete: ALTER "
		         "PUBLICATION ... SET (publish = 'insert, update, "
		         "delete, truncate')");
		goto cleanup;
	}
	if (PQserverVersion(src->conn) < 150000) {
		rc = 0; /* no row filters, no column lists */
		goto cleanup;
	}
	PQclear(res);
	res = pgo_query_lit(src->conn, PGO_SQL_PUBLICATION_TABLES, publication,
	                    err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		zdm_error_set(err, "publication \"%s\" has a row filter for %s",
		              publication, PQgetvalue(res, 0, 0));
		snprintf(err->hint, sizeof(err->hint),
		         "zdm needs every change of its tables: publish them "
		         "without a WHERE clause");
		goto cleanup;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
		zdm_error_set(err,
		              "publication \"%s\" has a column list for %s",
		              publication, PQgetvalue(res, 0, 1));
		snprintf(err->hint, sizeof(err->hint),
		         "zdm needs every column of its tables: publish them "
		         "without a column list");
		goto cleanup;
	}
	rc = 0;
cleanup:
	PQclear(res);
	return rc;
}

/* Append s doubling every q (a quoted name or a literal's body). */
static size_t
pgo_quote_into(char *out, const char *s, char q)
{
	size_t n = 0;

	out[n++] = q;
	for (; *s; s++) {
		if (*s == q)
			out[n++] = q;
		out[n++] = *s;
	}
	out[n++] = q;
	out[n] = '\0';
	return n;
}

/*
 * START_REPLICATION SLOT "slot" LOGICAL 0/0 (proto_version '1',
 * publication_names '"pub"'): the publication list is a string of quoted
 * identifiers, and the replication grammar's strings know only '' (no E''),
 * so both layers are quoted here by hand.  0/0 means the slot's
 * confirmed_flush_lsn.
 */
static int
pgo_start(pgo_source *src, const char *slot, const char *publication,
          zdm_error *err)
{
	size_t ns = strlen(slot), np = strlen(publication), n;
	char *ident, *lit, *sql, *q;
	PGresult *res;
	int rc = -1;

	ident = malloc(2 * np + 3);
	lit = malloc(2 * (2 * np + 2) + 3);
	n = 2 * ns + 2 * (2 * np + 2) + 128;
	sql = malloc(n);
	if (ident == NULL || lit == NULL || sql == NULL) {
		zdm_error_set(err, "pgoutput: out of memory");
		goto cleanup;
	}
	pgo_quote_into(ident, publication, '"');
	pgo_quote_into(lit, ident, '\'');
	q = sql + snprintf(sql, n, "START_REPLICATION SLOT ");
	q += pgo_quote_into(q, slot, '"');
	snprintf(q, n - (size_t)(q - sql),
	         " LOGICAL 0/0 (proto_version '1', publication_names %s)", lit);
	res = PQexec(src->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		zdm_error_from_result(err, res, src->conn);
		PQclear(res);
		goto cleanup;
	}
	PQclear(res);
	rc = 0;
cleanup:
	free(ident);
	free(lit);
	free(sql);
	return rc;
}

static pgo_source *
pgo_new(void)
{
	pgo_source *src = calloc(1, sizeof(*src));

	if (src != NULL) {
		src->base.ops = &pgo_ops;
		src->status_interval_ms = 1000;
		src->last_status = zdm_now();
	}
	return src;
}

int
zdm_cdc_pgoutput_open(zdm_cdc_source **out, const zdm_cdc_pgoutput_opts *opts,
                      zdm_error *err)
{
	pgo_source *src;

	*out = NULL;
	if (opts == NULL || opts->slot == NULL || opts->publication == NULL ||
	    opts->publication[0] == '\0') {
		zdm_error_set(err,
		              "pgoutput: a slot and a publication are needed");
		return -1;
	}
	if (!pgo_slot_name_ok(opts->slot)) {
		zdm_error_set(
			err,
			"invalid replication slot name \"%s\": only lower-case letters, digits and underscores, at most 63",
			opts->slot);
		return -1;
	}
	src = pgo_new();
	if (src == NULL)
		return pgo_oom(err);
	if (opts->status_interval_ms > 0)
		src->status_interval_ms = opts->status_interval_ms;
	src->conn = pgo_connect(opts->conninfo, err);
	if (src->conn == NULL || pgo_identify(src, err) < 0 ||
	    pgo_check_slot(src, opts->slot, err) < 0 ||
	    pgo_check_publication(src, opts->publication, err) < 0 ||
	    pgo_start(src, opts->slot, opts->publication, err) < 0) {
		src->dead = true; /* not streaming: nothing to stop */
		pgo_close(&src->base);
		return -1;
	}
	src->last_status = zdm_now();
	*out = &src->base;
	return 0;
}

/*
 * Reading ahead, the source's prefetch: while the batch next handed out is
 * being applied, take in and decode what the walsender sends, into the next
 * batch, so that neither the walsender nor the decoding waits for the
 * apply.  Returns 1 (leave it alone until the next batch) when the last
 * batch did not fill up (the stream trickles: little to read ahead), once
 * the next batch is full, and on any trouble, which next then reports;
 * else 0.
 */
static int
pgo_prefetch(zdm_cdc_source *base, zdm_error *err)
{
	pgo_source *src = (pgo_source *)base;
	char *buf;
	int avail = 0, len, rc;

	(void)err; /* nothing fails here: next reports what this met */
	/* a batch that did not fill up leaves little behind it: the periodic
	 * calls would cost more than they save */
	if (src->conn == NULL || src->dead || !src->flowing ||
	    !src->batch_handed_out || src->ahead_failed ||
	    src->ahead_end != 0 || src->ahead_n >= PGO_BATCH_MAX)
		return 1;
	if (ioctl(PQsocket(src->conn), FIONREAD, &avail) != 0)
		return 1;
	if (avail <= 0)
		return 0; /* nothing yet (or the end: next finds it) */
	if (PQconsumeInput(src->conn) == 0)
		return 1;
	for (;;) {
		buf = NULL;
		len = PQgetCopyData(src->conn, &buf, 1);
		if (len == 0)
			return 0;
		if (len < 0) {
			src->ahead_end = len;
			return 1;
		}
		rc = pgo_handle(src, (const unsigned char *)buf, (size_t)len,
		                &src->ahead_err);
		PQfreemem(buf);
		if (rc < 0) {
			src->ahead_failed = true;
			return 1;
		}
		if (src->ahead_n >= PGO_BATCH_MAX)
			return 1;
	}
}

static int
pgo_stats(zdm_cdc_source *base, zdm_cdc_stats *out, zdm_error *err)
{
	zdm_cdc_pgoutput_stats st;

	if (zdm_cdc_pgoutput_get_stats(base, &st, err) != 0)
		return -1;
	out->received_lsn = st.received_lsn;
	out->applied_lsn = st.acked_lsn;
	return 0;
}

int
zdm_cdc_pgoutput_get_stats(zdm_cdc_source *base, zdm_cdc_pgoutput_stats *out,
                           zdm_error *err)
{
	const pgo_source *src = (const pgo_source *)base;

	if (base == NULL || base->ops != &pgo_ops) {
		zdm_error_set(err, "not a pgoutput change source");
		return -1;
	}
	*out = src->stats;
	out->received_lsn =
		src->last_commit > src->quiet ? src->last_commit : src->quiet;
	if (out->received_lsn < src->recv_end)
		out->received_lsn = src->recv_end;
	out->acked_lsn = src->acked;
	out->reported_lsn = src->reported;
	out->server_wal_end = src->wal_end;
	return 0;
}

int
zdm_cdc_pgoutput_open_offline(zdm_cdc_source **out, zdm_error *err)
{
	pgo_source *src = pgo_new();

	*out = NULL;
	if (src == NULL)
		return pgo_oom(err);
	*out = &src->base;
	return 0;
}

int
zdm_cdc_pgoutput_feed(zdm_cdc_source *base, const void *msg, size_t len,
                      zdm_error *err)
{
	pgo_source *src = (pgo_source *)base;

	if (base == NULL || base->ops != &pgo_ops || src->conn != NULL) {
		zdm_error_set(err, "not an offline pgoutput change source");
		return -1;
	}
	if (src->dead) {
		zdm_error_set(err, "pgoutput: the source failed earlier");
		return -1;
	}
	if (src->batch_handed_out)
		pgo_batch_release(src);
	if (pgo_handle(src, msg, len, err) < 0) {
		src->dead = true;
		return -1;
	}
	return 0;
}
