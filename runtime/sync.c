/*
 * sync.c -- `zdm sync PLAN`: reads a cdc migration's change events and
 * applies them (cdc_apply.c), until told to stop.
 *
 * One loop: next (up to SYNC_NEXT_MS) -> apply the batch in one
 * transaction -> COMMIT -> ack the batch's last position.  When a writer of
 * the batch has not yet ended (cdc_apply.c), the same batch is tried again
 * on the next turn, with no next in between, so the loop still reports and
 * notices a stop while it waits.  A change is
 * acknowledged only after the transaction that applied it committed, so a
 * crash anywhere replays from the last acknowledged position, and the
 * plan's guarded statements make the replay harmless.  With the native
 * source, the stream is read and decoded ahead while a batch is applied,
 * so neither the walsender nor the decoding waits for the apply.
 *
 * Invariants:
 *  - One zdm sync per migration: a session advisory lock keyed on
 *    'zdm-sync:' || migration, held by the apply connection for the life
 *    of the process.  A second one is refused before it writes anything.
 *  - The native source marks its own writes by replication origin: the
 *    apply connection runs pg_replication_origin_session_setup(origin)
 *    before anything else, so every transaction it commits carries it and
 *    the pgoutput source flags those changes own_write.  Debezium carries
 *    no origin: each applier transaction's id is given to the source before
 *    COMMIT instead.
 *  - zdm.cdc (journal.c) is this process's report, written at least every
 *    SYNC_REPORT_MS outside any apply transaction; the runner's catch-up
 *    steps read it and ask for a stop through stop_requested.  A stop
 *    request found at start is honoured too (the runner clears it when it
 *    wants the sync back), so a sync started late cannot write to columns
 *    a contract is dropping.
 *  - applied_lsn in zdm.cdc, the catch-up barriers' measure, is never
 *    ahead of what is applied.  native: the slot's acknowledged position.
 *    debezium: only with --connector-slot, the connector slot's
 *    confirmed_flush_lsn once the committed offsets have reached the
 *    topic's end as it was when that LSN was read (Debezium confirms an
 *    LSN once what precedes it is in Kafka; the source's fence and
 *    stats, cdc.h, and cdc_debezium.c, "Barriers");
 *    without it, NULL, and a barrier can only wait for a drained topic,
 *    which says nothing of changes the connector has yet to write
 *    (sync_wait.c).
 *  - Nothing here creates or drops the slot, publication or origin: the
 *    plan's steps own them.
 */
#include "sync.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc.h"
#include "cdc_apply.h"
#include "cdc_debezium.h"
#include "cdc_pgoutput.h"
#include "journal.h"
#include "signals.h"

/* How long next waits for changes: also the bound on noticing a signal. */
#define SYNC_NEXT_MS 100
/* zdm.cdc is updated (and a WAL position sampled for the lag) this often. */
#define SYNC_REPORT_MS 200
/* A logical message this often keeps a quiet slot moving (native). */
#define SYNC_HEARTBEAT_MS 1000
/* Samples of (time, WAL insert position) kept for the lag: at one per
 * report, about 200 s; an older backlog reads as at least that old. */
#define SYNC_RING 1024
/* A killed sync's backend may take a moment to notice: wait this long for
 * its lock before refusing. */
#define SYNC_LOCK_WAIT_MS 2000
/* A batch not applied after this long is reported (and again after as
 * long): a commit waiting for a synchronous standby holds it, or a client
 * holding its rows locked. */
#define SYNC_WRITER_WARN_S 10.0
/* After a source error during a rollback: how long to wait for the drop. */
#define SYNC_GONE_WAIT_MS 5000

typedef struct sync_sample {
	double at;
	uint64_t lsn;
} sync_sample;

typedef struct sync_run {
	const zdm_plan *plan;
	const zdm_cdc_plan *cdc;
	const zdm_sync_opts *opts;
	bool native;
	char *schema;
	char group[256];
	PGconn *conn;
	zdm_cdc_source *src;
	zdm_cdc_applier *applier;
	zdm_error err;
	/* lag (native) */
	sync_sample ring[SYNC_RING];
	size_t ring_head, ring_n;
	/* what the last report said */
	bool idle;           /* the last next returned nothing */
	bool stop_requested; /* zdm.cdc.stop_requested */
	char mstate[32];     /* zdm.migrations.state, "" when none */
	double lag;
	uint64_t backlog;
	uint64_t applied_lsn; /* 0: none yet */
} sync_run;

static void
sync_lsn_text(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

static uint64_t
sync_lsn_parse(const char *text)
{
	unsigned hi = 0, lo = 0;

	if (text == NULL || sscanf(text, "%X/%X", &hi, &lo) != 2)
		return 0;
	return (uint64_t)hi << 32 | lo;
}

static bool
sync_state_final(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "completed") == 0 ||
	       strcmp(state, "rolled_back") == 0;
}

/* ---- start ------------------------------------------------------------- */

static int
sync_lock(sync_run *r)
{
	const char *params[1] = {r->plan->migration};
	PGresult *res;
	double deadline = zdm_now() + SYNC_LOCK_WAIT_MS / 1000.0;
	char detail[sizeof(r->err.detail)] = "";
	int got;

	for (;;) {
		if (zdm_conn_query(r->conn,
		                   "SELECT pg_catalog.pg_try_advisory_lock("
		                   "pg_catalog.hashtextextended('zdm-sync:' || "
		                   "$1, 0))",
		                   1, params, &res, &r->err) != 0)
			return -1;
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
			return 0;
		if (zdm_now() >= deadline || zdm_interrupted)
			break;
		zdm_sleep_ms(100);
	}
	if (zdm_conn_query(
		    r->conn,
		    "SELECT a.pid, coalesce(a.client_addr::text, 'local'),"
		    " pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS'),"
		    " coalesce((SELECT c.pid::text || ' on ' || c.host"
		    "   FROM zdm.cdc c WHERE c.migration = $1), '')"
		    " FROM pg_catalog.pg_locks l"
		    " JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
		    " WHERE l.locktype = 'advisory' AND l.granted"
		    " AND l.database = (SELECT oid FROM pg_catalog.pg_database"
		    "     WHERE datname = pg_catalog.current_database())"
		    " AND (l.classid::bigint << 32 | l.objid::bigint) ="
		    "     pg_catalog.hashtextextended('zdm-sync:' || $1, 0)",
		    1, params, &res, &r->err) == 0) {
		if (PQntuples(res) > 0)
			snprintf(detail, sizeof(detail),
			         "held by backend pid %s (from %s, connected "
			         "since %s)%s%s",
			         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
			         PQgetvalue(res, 0, 2),
			         PQgetvalue(res, 0, 3)[0]
			                 ? "; zdm sync process "
			                 : "",
			         PQgetvalue(res, 0, 3));
		PQclear(res);
	}
	zdm_error_set(&r->err,
	              "another zdm sync is already running for migration %s; "
	              "one at a time",
	              r->plan->migration);
	snprintf(r->err.detail, sizeof(r->err.detail), "%s", detail);
	snprintf(r->err.hint, sizeof(r->err.hint),
	         "stop it first (SIGTERM, or UPDATE zdm.cdc SET stop_requested "
	         "= true WHERE migration = '%s')",
	         r->plan->migration);
	return -1;
}

/* The journal must exist: zdm apply makes it (and the slot) at expand. */
static int
sync_journal(sync_run *r)
{
	int exists = zdm_journal_access(r->conn, true, &r->err) != 0
	                     ? -1
	                     : zdm_journal_exists(r->conn, &r->err);

	if (exists < 0)
		return -1;
	if (!exists) {
		zdm_error_set(&r->err,
		              "there is no zdm journal in this database: "
		              "migration %s has not started",
		              r->plan->migration);
		snprintf(
			r->err.hint, sizeof(r->err.hint),
			"run zdm apply %s first: its expand phase creates what "
			"zdm sync reads",
			r->opts->plan_path ? r->opts->plan_path : "PLAN");
		return -1;
	}
	/* adds zdm.cdc to a journal made by an older zdm */
	return zdm_journal_ensure(r->conn, &r->err);
}

static int
sync_register(sync_run *r)
{
	char pid[32], host[256];
	const char *params[4];
	PGresult *res;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	params[0] = r->plan->migration;
	params[1] = r->cdc->source;
	params[2] = pid;
	params[3] = host;
	if (zdm_conn_query(
		    r->conn,
		    "INSERT INTO zdm.cdc AS c (migration, source, state, pid, host,"
		    " started_at, seen_at)"
		    " VALUES ($1, $2, 'running', $3::integer, $4,"
		    " pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp())"
		    " ON CONFLICT (migration) DO UPDATE SET source = $2,"
		    " state = 'running', pid = $3::integer, host = $4,"
		    " started_at = pg_catalog.clock_timestamp(),"
		    " seen_at = pg_catalog.clock_timestamp(), applied_lsn = NULL,"
		    " lag_seconds = NULL, backlog = NULL, changes_seen = 0,"
		    " changes_applied = 0, own_skipped = 0, last_error = NULL"
		    " RETURNING c.stop_requested,"
		    " coalesce((SELECT m.state FROM zdm.migrations m"
		    "   WHERE m.migration = $1), '')",
		    4, params, &res, &r->err) != 0)
		return -1;
	r->stop_requested = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	snprintf(r->mstate, sizeof(r->mstate), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

static int
sync_open_source(sync_run *r)
{
	if (r->native) {
		zdm_cdc_pgoutput_opts po;
		const char *params[1] = {r->cdc->origin};
		PGresult *res;

		if (r->cdc->origin != NULL) {
			if (zdm_conn_query(
				    r->conn,
				    "SELECT pg_catalog."
				    "pg_replication_origin_session_setup($1)",
				    1, params, &res, &r->err) != 0)
				return -1;
			PQclear(res);
		}
		memset(&po, 0, sizeof(po));
		po.conninfo = r->opts->conninfo;
		po.slot = r->cdc->slot;
		po.publication = r->cdc->publication;
		return zdm_cdc_pgoutput_open(&r->src, &po, &r->err);
	} else {
		zdm_cdc_debezium_opts dz;

		if (r->opts->connector_slot != NULL) {
			const char *slot[1] = {r->opts->connector_slot};
			PGresult *res;
			bool found;

			if (zdm_conn_query(r->conn,
			                   "SELECT FROM pg_catalog."
			                   "pg_replication_slots WHERE "
			                   "slot_name = $1 AND slot_type = "
			                   "'logical'",
			                   1, slot, &res, &r->err) != 0)
				return -1;
			found = PQntuples(res) == 1;
			PQclear(res);
			if (!found) {
				zdm_error_set(&r->err,
				              "--connector-slot %s: no logical "
				              "replication slot of that name",
				              r->opts->connector_slot);
				snprintf(r->err.hint, sizeof(r->err.hint),
				         "give the Debezium connector's "
				         "slot.name (default \"debezium\")");
				return -1;
			}
		}
		memset(&dz, 0, sizeof(dz));
		dz.topic = r->opts->topic;
		dz.group_id = r->group;
		dz.kafka_conf = r->opts->kafka_conf;
		return zdm_cdc_debezium_open(&r->src, &dz, &r->err);
	}
}

/* ---- lag (native) ------------------------------------------------------ */

static void
sync_sample_push(sync_run *r, double at, uint64_t lsn)
{
	size_t i;

	if (r->ring_n == SYNC_RING) {
		r->ring_head = (r->ring_head + 1) % SYNC_RING;
		r->ring_n--;
	}
	i = (r->ring_head + r->ring_n) % SYNC_RING;
	r->ring[i].at = at;
	r->ring[i].lsn = lsn;
	r->ring_n++;
}

/* 0 when applied is at or past the newest sample; else how long ago the
 * oldest sample past applied was taken (WAL written then is not applied).
 * Samples at or before applied are dropped, the newest kept. */
static double
sync_native_lag(sync_run *r, uint64_t applied, double now)
{
	const sync_sample *newest;

	if (r->ring_n == 0)
		return 0;
	newest = &r->ring[(r->ring_head + r->ring_n - 1) % SYNC_RING];
	if (applied >= newest->lsn)
		return 0;
	while (r->ring_n > 1 && r->ring[r->ring_head].lsn <= applied) {
		r->ring_head = (r->ring_head + 1) % SYNC_RING;
		r->ring_n--;
	}
	return now - r->ring[r->ring_head].at;
}

/* ---- report ------------------------------------------------------------ */

/*
 * Update zdm.cdc and read back what may stop this process.  native: sample
 * the WAL insert position first, and report the lag against the samples.
 */
static int
sync_report(sync_run *r)
{
	zdm_cdc_apply_stats st;
	char lsn[32], lag[32], backlog[32], seen[32], applied[32], own[32];
	const char *params[7];
	double seconds = 0, now = 0;
	uint64_t bl = 0;
	zdm_cdc_stats cs;
	PGresult *res;

	/* debezium: how far the connector has written to Kafka (its slot),
	 * fenced at the topic's end now; the source's applied_lsn is the last
	 * fence the committed offsets have reached (cdc_debezium.c,
	 * "Barriers").  zdm_sync takes a connector slot only for a source
	 * with fences. */
	if (r->opts->connector_slot != NULL && r->src->ops->fence != NULL) {
		const char *slot[1] = {r->opts->connector_slot};
		uint64_t flushed = 0;

		if (zdm_conn_query(r->conn,
		                   "SELECT confirmed_flush_lsn FROM "
		                   "pg_catalog.pg_replication_slots "
		                   "WHERE slot_name = $1",
		                   1, slot, &res, &r->err) != 0)
			return -1;
		if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			flushed = sync_lsn_parse(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (flushed != 0 &&
		    r->src->ops->fence(r->src, flushed, &r->err) != 0)
			return -1;
	}
	if (r->src->ops->lag(r->src, &seconds, &bl, &r->err) != 0)
		return -1;
	/* native: the lag from samples of the WAL insert position, taken
	 * before the positions are read */
	if (r->native) {
		if (zdm_conn_query(
			    r->conn,
			    "SELECT pg_catalog.pg_current_wal_insert_lsn()", 0,
			    NULL, &res, &r->err) != 0)
			return -1;
		now = zdm_now();
		sync_sample_push(r, now, sync_lsn_parse(PQgetvalue(res, 0, 0)));
		PQclear(res);
	}
	if (r->src->ops->stats(r->src, &cs, &r->err) != 0)
		return -1;
	/* everything handed out is acknowledged by now (each batch is acked
	 * after its commit); with nothing left to hand out, all that was
	 * received is applied */
	r->applied_lsn = r->idle && cs.received_lsn > cs.applied_lsn
	                         ? cs.received_lsn
	                         : cs.applied_lsn;
	if (r->native)
		seconds = sync_native_lag(r, r->applied_lsn, now);
	if (r->native || r->applied_lsn != 0)
		sync_lsn_text(r->applied_lsn, lsn, sizeof(lsn));
	r->lag = seconds;
	r->backlog = bl;
	zdm_cdc_applier_stats(r->applier, &st);
	snprintf(lag, sizeof(lag), "%.3f", seconds);
	snprintf(backlog, sizeof(backlog), "%" PRIu64, bl);
	snprintf(seen, sizeof(seen), "%" PRIu64, st.seen);
	snprintf(applied, sizeof(applied), "%" PRIu64, st.applied);
	snprintf(own, sizeof(own), "%" PRIu64, st.own_skipped);
	params[0] = r->plan->migration;
	params[1] = r->native || r->applied_lsn != 0 ? lsn : NULL;
	params[2] = lag;
	params[3] = backlog;
	params[4] = seen;
	params[5] = applied;
	params[6] = own;
	if (zdm_conn_query(
		    r->conn,
		    "UPDATE zdm.cdc c SET seen_at = pg_catalog.clock_timestamp(),"
		    " applied_lsn = $2::pg_lsn, lag_seconds = $3::float8,"
		    " backlog = $4::bigint, changes_seen = $5::bigint,"
		    " changes_applied = $6::bigint, own_skipped = $7::bigint"
		    " WHERE c.migration = $1"
		    " RETURNING c.stop_requested,"
		    " coalesce((SELECT m.state FROM zdm.migrations m"
		    "   WHERE m.migration = $1), '')",
		    7, params, &res, &r->err) != 0)
		return -1;
	if (PQntuples(res) == 0) {
		/* someone deleted the row: put it back */
		PQclear(res);
		if (sync_register(r) != 0)
			return -1;
		return 0;
	}
	r->stop_requested = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	snprintf(r->mstate, sizeof(r->mstate), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* The final state in zdm.cdc, on a connection that may have failed. */
static void
sync_finish(sync_run *r, const char *state, const char *error)
{
	const char *params[3] = {r->plan->migration, state, error};
	zdm_error ignored;
	PGconn *conn = r->conn;
	PGresult *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
	    PQtransactionStatus(conn) != PQTRANS_IDLE) {
		conn = zdm_conn_open(r->opts->conninfo, "sync", r->schema,
		                     &ignored);
		if (conn == NULL)
			return;
	}
	if (zdm_conn_query(conn,
	                   "UPDATE zdm.cdc SET state = $2, last_error = $3,"
	                   " seen_at = pg_catalog.clock_timestamp()"
	                   " WHERE migration = $1",
	                   3, params, &res, &ignored) == 0)
		PQclear(res);
	if (conn != r->conn)
		PQfinish(conn);
}

/*
 * After a source error: was the slot dropped because the migration is being
 * rolled back (or is over)?  Then there is nothing left to sync.  The
 * rollback ends the walsender first and drops the slot a moment later:
 * while the journal says rolling back, wait a little for the drop.
 */
static bool
sync_source_gone(sync_run *r)
{
	const char *params[2] = {r->plan->migration, r->cdc->slot};
	PGresult *res;
	zdm_error ignored;
	double deadline = zdm_now() + SYNC_GONE_WAIT_MS / 1000.0;
	bool gone, winding_up;

	for (;;) {
		if (PQstatus(r->conn) != CONNECTION_OK ||
		    zdm_conn_query(
			    r->conn,
			    "SELECT coalesce((SELECT m.state FROM zdm.migrations m"
			    "   WHERE m.migration = $1), ''),"
			    " $2::text IS NULL OR NOT EXISTS (SELECT 1 FROM"
			    "   pg_catalog.pg_replication_slots WHERE slot_name = $2)",
			    2, params, &res, &ignored) != 0)
			return false;
		snprintf(r->mstate, sizeof(r->mstate), "%s",
		         PQgetvalue(res, 0, 0));
		gone = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		PQclear(res);
		winding_up = strcmp(r->mstate, "rolling_back") == 0 ||
		             sync_state_final(r->mstate);
		if (!winding_up)
			return false;
		if (gone)
			return true;
		if (zdm_now() >= deadline)
			return false;
		zdm_sleep_ms(100);
	}
}

/* ---- the loop ---------------------------------------------------------- */

/* Ack the last position of each partition in the batch. */
static int
sync_ack(sync_run *r, const zdm_cdc_change *changes, size_t n)
{
	zdm_cdc_position last[64];
	size_t nlast = 0, i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < nlast; j++)
			if (last[j].partition == changes[i].position.partition)
				break;
		if (j == nlast) {
			if (nlast == sizeof(last) / sizeof(last[0])) {
				if (r->src->ops->ack(r->src, last[0],
				                     &r->err) != 0)
					return -1;
				memmove(last, last + 1,
				        (nlast - 1) * sizeof(last[0]));
				j = --nlast;
			}
			nlast++;
		}
		last[j] = changes[i].position;
	}
	for (j = 0; j < nlast; j++)
		if (r->src->ops->ack(r->src, last[j], &r->err) != 0)
			return -1;
	return 0;
}

/* 0 applied and acknowledged, 1 not yet (a writer of the batch still runs,
 * or rows it changes stayed locked: try the same batch again), -1 error in
 * r->err. */
static int
sync_batch(sync_run *r, const zdm_cdc_change *changes, size_t n)
{
	uint64_t xid = 0;
	int rc;

	/* a source that cannot tell zdm's writes itself is told their
	 * transactions' ids */
	rc = zdm_cdc_applier_apply(r->applier, changes, n,
	                           r->src->ops->own_xid != NULL ? &xid : NULL,
	                           &r->err);
	if (rc != 0)
		return rc;
	if (r->src->ops->own_xid != NULL && xid != 0)
		r->src->ops->own_xid(r->src, xid);
	if (zdm_cdc_applier_commit(r->applier, &r->err) != 0)
		return -1;
	/* events a using could not convert: applied as the trigger would
	 * have, each said once (verify lists the rows again) */
	for (const char *line = zdm_cdc_applier_notes(r->applier), *nl;
	     *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		printf("zdm sync: %s: not converted: %.*s\n",
		       r->plan->migration, (int)(nl - line), line);
	}
	fflush(stdout);
	return sync_ack(r, changes, n);
}

/* The applier's idle hook: the source's prefetch. */
static int
sync_prefetch(void *arg, zdm_error *err)
{
	zdm_cdc_source *src = arg;

	return src->ops->prefetch(src, err);
}

static int
sync_heartbeat(sync_run *r)
{
	const char *params[1] = {r->plan->migration};
	PGresult *res;

	if (zdm_conn_query(r->conn,
	                   "SELECT pg_catalog.pg_logical_emit_message(false,"
	                   " 'zdm_heartbeat', $1)",
	                   1, params, &res, &r->err) != 0)
		return -1;
	PQclear(res);
	return 0;
}

/* 0 stopped (why in *why), -1 error in r->err, 1 the source failed. */
static int
sync_loop(sync_run *r, const char **why)
{
	const zdm_cdc_change *changes = NULL;
	size_t n = 0;
	bool pending = false; /* changes wait for a writer or a row lock */
	double now, last_report = 0, last_heartbeat = 0, last_progress,
		    progress_every, waiting_since = 0;
	int rc;
	uint64_t seen_at_progress = 0;
	zdm_cdc_apply_stats st;

	progress_every = r->opts->progress_interval > 0
	                         ? r->opts->progress_interval
	                         : 5.0;
	last_progress = zdm_now();
	for (;;) {
		if (!pending && r->src->ops->next(r->src, &changes, &n,
		                                  SYNC_NEXT_MS, &r->err) != 0)
			return 1;
		r->idle = n == 0;
		if (n > 0) {
			if ((rc = sync_batch(r, changes, n)) < 0)
				return -1;
			pending = rc == 1;
		}
		now = zdm_now();
		if (!pending) {
			waiting_since = 0;
		} else if (waiting_since == 0) {
			waiting_since = now;
		} else if (now - waiting_since >= SYNC_WRITER_WARN_S) {
			zdm_cdc_applier_stats(r->applier, &st);
			if (st.waiting_xid != 0)
				printf("zdm sync: %s: waiting %.0f s for "
				       "transaction %" PRIu32 " to end: its "
				       "commit is in the log but it still runs "
				       "(synchronous replication waiting for a "
				       "standby?)\n",
				       r->plan->migration, now - waiting_since,
				       st.waiting_xid);
			else
				printf("zdm sync: %s: retrying a batch for "
				       "%.0f s: rows it changes are locked by "
				       "other transactions (%s)\n",
				       r->plan->migration, now - waiting_since,
				       st.last_retry);
			fflush(stdout);
			waiting_since = now;
		}
		if (zdm_interrupted) {
			*why = "interrupted by a signal";
			return 0;
		}
		if (now - last_report >= SYNC_REPORT_MS / 1000.0) {
			last_report = now;
			if (sync_report(r) != 0)
				return PQstatus(r->conn) == CONNECTION_OK ? 1
				                                          : -1;
			if (r->stop_requested) {
				*why = "stop requested (zdm.cdc.stop_requested)";
				return 0;
			}
			if (sync_state_final(r->mstate)) {
				*why = strcmp(r->mstate, "rolled_back") == 0
				               ? "the migration was rolled back"
				               : "the migration is done";
				return 0;
			}
		}
		if (r->native &&
		    now - last_heartbeat >= SYNC_HEARTBEAT_MS / 1000.0) {
			last_heartbeat = now;
			if (sync_heartbeat(r) != 0)
				return -1;
		}
		if (now - last_progress >= progress_every) {
			zdm_cdc_applier_stats(r->applier, &st);
			printf("zdm sync: %s: %.0f changes/s, %" PRIu64
			       " rows changed, %" PRIu64
			       " own writes skipped, lag %.1f s\n",
			       r->plan->migration,
			       (double)(st.seen - seen_at_progress) /
			               (now - last_progress),
			       st.applied, st.own_skipped, r->lag);
			fflush(stdout);
			seen_at_progress = st.seen;
			last_progress = now;
		}
	}
}

int
zdm_sync(const zdm_plan *plan, const zdm_sync_opts *opts)
{
	sync_run r;
	const char *why = NULL;
	zdm_cdc_apply_stats st;
	int rc = ZDM_EXIT_FAILED, lrc;
	bool registered = false;

	memset(&r, 0, sizeof(r));
	r.plan = plan;
	r.cdc = plan->cdc;
	r.opts = opts;
	zdm_error_clear(&r.err);
	zdm_conn_set_statement_timeout(plan->statement_timeout_ms);
	if (r.cdc == NULL) {
		fprintf(stderr,
		        "zdm: error: plan %s is not a cdc plan (sync: %s): it "
		        "keeps its tables in step with triggers, and has "
		        "nothing for zdm sync to do\n",
		        opts->plan_path ? opts->plan_path : plan->migration,
		        plan->sync ? plan->sync : "trigger");
		return ZDM_EXIT_USAGE;
	}
	r.native = strcmp(r.cdc->source, "native") == 0;
	if (r.native && (r.cdc->slot == NULL || r.cdc->publication == NULL)) {
		fprintf(stderr, "zdm: error: the plan's cdc source is native "
		                "but it names no slot or publication\n");
		return ZDM_EXIT_USAGE;
	}
	if (r.native && opts->connector_slot != NULL) {
		fprintf(stderr,
		        "zdm: error: --connector-slot is for a plan "
		        "that reads Debezium events; this one reads its "
		        "own slot\n");
		return ZDM_EXIT_USAGE;
	}
	if (!r.native && (opts->topic == NULL || opts->topic[0] == '\0')) {
		fprintf(stderr,
		        "zdm: error: the plan reads Debezium events: say from "
		        "which Kafka topic with --topic (and where the brokers "
		        "are with --kafka bootstrap.servers=HOST:PORT)\n");
		return ZDM_EXIT_USAGE;
	}
	snprintf(r.group, sizeof(r.group), "%s",
	         opts->group_id ? opts->group_id : "");
	if (opts->group_id == NULL)
		snprintf(r.group, sizeof(r.group), "zdm-%s", plan->migration);
	zdm_catch_signals();

	r.schema = zdm_plan_schema(plan);
	r.conn = zdm_conn_open(opts->conninfo, "sync", r.schema, &r.err);
	if (r.conn == NULL || sync_lock(&r) != 0 || sync_journal(&r) != 0)
		goto fail;
	if (sync_register(&r) != 0)
		goto fail;
	registered = true;
	if (r.stop_requested) {
		why = "a stop was requested before it started "
		      "(zdm.cdc.stop_requested)";
		goto stopped;
	}
	if (sync_state_final(r.mstate)) {
		why = strcmp(r.mstate, "rolled_back") == 0
		              ? "the migration was rolled back"
		              : "the migration is done";
		goto stopped;
	}
	if (zdm_cdc_applier_new(&r.applier, r.conn, r.cdc, r.native, &r.err) !=
	    0)
		goto fail;
	if (sync_open_source(&r) != 0) {
		if (sync_source_gone(&r)) {
			why = "its slot is gone with the migration";
			goto stopped;
		}
		goto fail;
	}
	/* native: the walsender's changes are decoded while a batch is
	 * applied */
	if (r.src->ops->prefetch != NULL)
		zdm_cdc_applier_set_idle(r.applier, sync_prefetch, r.src);
	if (r.native)
		printf("zdm sync: %s: reading slot %s (publication %s), "
		       "applying to %zu table%s\n",
		       plan->migration, r.cdc->slot, r.cdc->publication,
		       r.cdc->ntables, r.cdc->ntables == 1 ? "" : "s");
	else
		printf("zdm sync: %s: reading Debezium events from topic %s "
		       "(consumer group %s), applying to %zu table%s\n",
		       plan->migration, opts->topic, r.group, r.cdc->ntables,
		       r.cdc->ntables == 1 ? "" : "s");
	fflush(stdout);

	lrc = sync_loop(&r, &why);
	if (lrc == 1 && sync_source_gone(&r)) {
		why = "its slot was dropped: the migration is being rolled "
		      "back or is over";
		lrc = 0;
	}
	if (lrc != 0)
		goto fail;
	/* a last report, so zdm.cdc shows what was applied */
	if (sync_report(&r) != 0)
		goto fail;
stopped:
	sync_finish(&r, "stopped", NULL);
	if (r.applier) {
		zdm_cdc_applier_stats(r.applier, &st);
		printf("zdm sync: %s: stopped, %s: %" PRIu64
		       " changes seen, %" PRIu64 " rows changed, %" PRIu64
		       " own writes skipped\n",
		       plan->migration, why, st.seen, st.applied,
		       st.own_skipped);
	} else {
		printf("zdm sync: %s: not started: %s\n", plan->migration, why);
	}
	rc = ZDM_EXIT_OK;
	goto done;
fail:
	zdm_error_print(&r.err, stderr);
	if (registered) {
		char msg[sizeof(r.err.message) + 32];

		snprintf(msg, sizeof(msg), "%s%s%s%s", r.err.message,
		         r.err.sqlstate[0] ? " (SQLSTATE " : "", r.err.sqlstate,
		         r.err.sqlstate[0] ? ")" : "");
		if (r.applier)
			zdm_cdc_applier_rollback(r.applier);
		sync_finish(&r, "failed", msg);
		fprintf(stderr,
		        "zdm: sync failed; a restart replays from the last "
		        "acknowledged change\n");
	}
	rc = ZDM_EXIT_FAILED;
done:
	if (r.src)
		r.src->ops->close(r.src);
	zdm_cdc_applier_free(r.applier);
	if (r.conn)
		PQfinish(r.conn);
	free(r.schema);
	fflush(stdout);
	return rc;
}
