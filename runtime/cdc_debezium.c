/*
 * cdc_debezium.c -- the debezium CDC source's Kafka consumer: Debezium
 * PostgreSQL change events from a Kafka topic, as zdm_cdc_change records
 * (cdc.h), through librdkafka: offsets, rebalances, lag and fences.
 *
 * A librdkafka consumer in the migration's consumer group, subscribed to the
 * table's topic, with enable.auto.commit and enable.auto.offset.store off:
 * the group's committed offset moves only in ack, synchronously, to the
 * acknowledged offset + 1 of that partition.  So delivery is at least once:
 * whatever was not acknowledged comes again after a restart or a rebalance.
 * Order is Kafka's: per partition.
 *
 * Where a partition starts.  At assignment the group's committed offsets are
 * read: a partition with none (a new group) starts at its beginning (the
 * connector's snapshot), the others at their committed offset.
 * auto.offset.reset is "error", never "earliest": a committed offset that is
 * no longer in the topic (retention deleted messages zdm had not read) would
 * otherwise send the consumer to the earliest message left and lose the
 * changes between without a word.  next() fails instead, naming topic,
 * partition, the committed offset and the earliest available: the migration
 * must start over.
 *
 * Rebalances.  A revoked partition is read again by its new owner from the
 * committed offset.  Its changes gathered into the batch next() is building
 * are dropped, nothing more of it is handed out, and an ack for a change of
 * it handed out earlier commits nothing and succeeds: a commit would fail
 * or, worse, move the new owner's offset past changes it has not applied.
 * (librdkafka pauses the partitions when a rebalance starts and discards
 * what was fetched and not yet polled; the batch drop covers what next()
 * polled before the revoke reached it.)
 *
 * What a message means (the envelope, values, keys, own writes) is the
 * parser's, cdc_debezium_parse.c: this file must not decode JSON itself.
 * It reads the headers the parser never sees (a primary-key change's
 * __debezium.newkey and __debezium.oldkey) and merges what the parser
 * hands it.
 *
 * A primary-key change.  Debezium sends an UPDATE that changes the key as
 * a delete of the old key (header __debezium.newkey), its tombstone, and a
 * create of the new key (header __debezium.oldkey).  Applied as an INSERT,
 * the create would lose which columns the statement wrote, and the
 * applier's insert rules would pick a direction from the row's values
 * alone: an old-version write of the key and an old column, on a row whose
 * new columns are set, would be reverted.  So when the create follows its
 * delete in the same partition (only the tombstone between) and comes from
 * the same transaction, the two are handed out as one UPDATE, the delete's
 * whole before image (REPLICA IDENTITY FULL, which a cdc plan's expand
 * sets) and the create's after image, at the create's position: what the
 * native source gives for the same statement.  A batch that ends right
 * after such a delete waits up to half a second for its create.  Where
 * the two are in different partitions (a topic with more than one: the
 * keys hash apart) or the headers are gone (a transform dropped them),
 * they stay a DELETE and an INSERT.
 *
 * A null value (a tombstone, which follows
 * every delete and so a primary-key change: delete, tombstone, create) is no
 * change; its offset is committed with the next ack of its partition, or at
 * once when nothing before it is waiting.  Anything else is a malformed
 * event: next returns -1 with "topic T partition P offset O: what is wrong",
 * after first handing out the changes before it, and from then on returns
 * that error on every call; the event's offset is never committed, so a
 * restart stops at it again until an operator deals with it.
 *
 * Lag.  backlog: for every partition of the topic, its high watermark minus
 * the group's committed offset (the low watermark when nothing is
 * committed), summed -- messages, tombstones included.  The watermarks
 * are librdkafka's, from the last fetch, when it has them: a measure of
 * progress, not a proof that every change up to some point is applied
 * (they can predate messages already in the topic, and the topic knows
 * nothing of changes the connector has yet to write: see Barriers).
 * seconds: 0 when the backlog is 0; otherwise, over partitions with a
 * backlog, the largest age (now, by this host's clock, minus the event's
 * source.ts_ms, the commit time in the database; envelope ts_ms or the
 * Kafka timestamp when absent) of the oldest change handed out and not
 * acknowledged, or, when everything handed out is acknowledged, of the
 * last acknowledged change (an upper bound until the next fetch); 0 when
 * nothing is known yet.  Clock skew between the database host and this
 * one shows up in it.
 *
 * Barriers.  "Every change committed before LSN L is applied" cannot be
 * read from Kafka alone: a drained topic may still be missing what the
 * connector has yet to write.  The connector's replication slot says it:
 * Debezium confirms an LSN there (confirmed_flush_lsn) once everything
 * before it is in Kafka.  So the caller reads that LSN, F, then calls
 * the source's fence(F), which asks the brokers for the end of every
 * partition of the topic; once the group's committed offsets (moved only
 * by ack, after the applier's COMMIT) have reached all those ends,
 * the source's stats say F is applied.  Under steady writes that is a
 * batch or two later, where waiting for a backlog of 0 may never come.
 * The last DBZ_FENCES fences are kept, in memory.
 *
 * No global state: everything hangs off the source or the parser.  Nothing
 * here talks to PostgreSQL.
 */
#include "cdc_debezium.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cdc_debezium_parse.h"

#define DBZ_BATCH_MAX 500    /* messages per next() */
#define DBZ_TIMEOUT_MS 10000 /* metadata, committed offsets, commits */
/* How long a batch that ends on a key change's delete waits for its create */
#define DBZ_MOVE_WAIT_MS 500
#define DBZ_HEADER_NEWKEY "__debezium.newkey"
#define DBZ_HEADER_OLDKEY "__debezium.oldkey"
#define DBZ_FENCES 64 /* barriers' marks kept (dbz_fence) */

/* ---- the source ----------------------------------------------------------- */

/* A message handed out (or skipped) and not yet acknowledged. */
typedef struct pending {
	int64_t offset;
	int64_t ts_ms; /* -1 unknown */
	bool skip;     /* a tombstone: nothing to apply */
} pending;

typedef struct part_state {
	int32_t partition;
	bool owned; /* assigned to us now (dbz_rebalance) */
	/* the group's committed offset as last known: read at assignment,
	 * moved by our commits; -1 none */
	int64_t committed;
	int64_t delivered_next; /* highest offset handed out + 1; -1 none */
	int64_t acked_ts_ms;    /* ts of the last acknowledged change; -1 */
	pending *q;             /* in offset order */
	size_t qhead, qlen, qcap;
	/* the index in the batch being built of this partition's last
	 * change; -1 none (dbz_take: a key change's create meets its
	 * delete there) */
	long last_change;
} part_state;

/* Per change of the batch: is it a key change's delete still waiting for
 * its create, and that delete's whole before image. */
typedef struct move_state {
	bool open;
	const zdm_cdc_column *before;
	size_t nbefore;
} move_state;

typedef struct dbz_source {
	zdm_cdc_source base;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt; /* for metadata in lag */
	char *topic;
	zdm_cdc_debezium_parser *parser;
	zdm_cdc_change *changes;
	move_state *moves; /* beside changes, changes_cap of them */
	size_t nchanges, changes_cap;
	part_state *parts;
	size_t nparts, parts_cap;
	bool failed; /* sticky: every next() returns failure */
	zdm_error failure;
	/* barriers (see the opening comment): fences oldest first, their
	 * LSNs and ends rising; fenced, the LSN of the last one reached */
	struct dbz_fence {
		uint64_t lsn;
		int32_t *partition;
		int64_t *end; /* -1: the partition was empty */
		int n;
	} fences[DBZ_FENCES];
	size_t fence_head, nfences;
	uint64_t fenced;
} dbz_source;

static part_state *
part_find(dbz_source *src, int32_t partition)
{
	size_t i;

	for (i = 0; i < src->nparts; i++)
		if (src->parts[i].partition == partition)
			return &src->parts[i];
	return NULL;
}

static part_state *
part_get(dbz_source *src, int32_t partition)
{
	part_state *ps = part_find(src, partition);

	if (ps != NULL)
		return ps;
	if (src->nparts == src->parts_cap) {
		size_t cap = src->parts_cap ? src->parts_cap * 2 : 8;
		part_state *parts = realloc(src->parts, cap * sizeof(*parts));

		if (parts == NULL)
			return NULL;
		src->parts = parts;
		src->parts_cap = cap;
	}
	ps = &src->parts[src->nparts++];
	memset(ps, 0, sizeof(*ps));
	ps->owned = false;
	ps->partition = partition;
	ps->committed = -1;
	ps->delivered_next = -1;
	ps->acked_ts_ms = -1;
	ps->last_change = -1;
	return ps;
}

static int
part_push(part_state *ps, int64_t offset, int64_t ts_ms, bool skip)
{
	if (ps->qhead > 0 && ps->qhead + ps->qlen == ps->qcap) {
		memmove(ps->q, ps->q + ps->qhead, ps->qlen * sizeof(*ps->q));
		ps->qhead = 0;
	}
	if (ps->qhead + ps->qlen == ps->qcap) {
		size_t cap = ps->qcap ? ps->qcap * 2 : 64;
		pending *q = realloc(ps->q, cap * sizeof(*q));

		if (q == NULL)
			return -1;
		ps->q = q;
		ps->qcap = cap;
	}
	ps->q[ps->qhead + ps->qlen].offset = offset;
	ps->q[ps->qhead + ps->qlen].ts_ms = ts_ms;
	ps->q[ps->qhead + ps->qlen].skip = skip;
	ps->qlen++;
	return 0;
}

static pending *
part_head(part_state *ps)
{
	return ps->qlen > 0 ? &ps->q[ps->qhead] : NULL;
}

static void
part_pop(part_state *ps)
{
	pending *h = part_head(ps);

	if (!h->skip && h->ts_ms >= 0)
		ps->acked_ts_ms = h->ts_ms;
	ps->qhead++;
	ps->qlen--;
	if (ps->qlen == 0)
		ps->qhead = 0;
}

static int
dbz_commit(dbz_source *src, part_state *ps, int64_t offset, bool async,
           zdm_error *err)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t e;

	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, src->topic, ps->partition)
		->offset = offset;
	e = rd_kafka_commit(src->rk, list, async ? 1 : 0);
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR && !async)
		e = list->elems[0].err;
	rd_kafka_topic_partition_list_destroy(list);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (err != NULL)
			zdm_error_set(err,
			              "topic %s partition %" PRId32
			              ": committing offset %" PRId64 ": %s",
			              src->topic, ps->partition, offset,
			              rd_kafka_err2str(e));
		return -1;
	}
	if (offset > ps->committed)
		ps->committed = offset;
	return 0;
}

/*
 * Tombstones at the head of a partition's queue have nothing waiting before
 * them: commit past them now (asynchronously; a failure only means they are
 * read again), so an idle topic ending in a delete shows no backlog.
 */
static void
dbz_commit_skips(dbz_source *src)
{
	size_t i;

	for (i = 0; i < src->nparts; i++) {
		part_state *ps = &src->parts[i];
		int64_t upto = -1;
		pending *h;

		if (!ps->owned)
			continue;
		while ((h = part_head(ps)) != NULL && h->skip) {
			upto = h->offset;
			part_pop(ps);
		}
		if (upto >= 0 && upto + 1 > ps->committed)
			(void)dbz_commit(src, ps, upto + 1, true, NULL);
	}
}

static void
dbz_fail(dbz_source *src, zdm_error *perr, const rd_kafka_message_t *m)
{
	zdm_error e;

	zdm_error_set(&e,
	              "topic %s partition %" PRId32 " offset %" PRId64 ": %s",
	              src->topic, m->partition, m->offset, perr->message);
	memcpy(e.hint, perr->hint, sizeof(e.hint));
	src->failure = e;
	src->failed = true;
}

static bool
dbz_error_is_permanent(rd_kafka_t *rk, rd_kafka_resp_err_t e)
{
	char buf[8];

	if (e == RD_KAFKA_RESP_ERR__FATAL ||
	    rd_kafka_fatal_error(rk, buf, sizeof(buf)) !=
	            RD_KAFKA_RESP_ERR_NO_ERROR)
		return true;
	switch (e) {
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true;
	default:
		/* brokers down, a topic not created yet (Debezium creates it
		 * at the table's first change), timeouts: librdkafka retries */
		return false;
	}
}

/*
 * The offset a partition was to be read from is not in the topic
 * (auto.offset.reset=error): messages zdm never read are gone, most likely
 * to retention.  Starting elsewhere would skip them without a word.
 */
static void
dbz_offset_lost(dbz_source *src, const rd_kafka_message_t *m)
{
	part_state *ps = part_find(src, m->partition);
	int64_t lo = -1, hi = -1;
	char what[96];
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (ps != NULL && m->offset == ps->committed)
		snprintf(what, sizeof(what), "the committed offset %" PRId64,
		         m->offset);
	else
		snprintf(what, sizeof(what),
		         "offset %" PRId64 ", the next to read,", m->offset);
	if (m->offset >= 0)
		e = rd_kafka_query_watermark_offsets(src->rk, src->topic,
		                                     m->partition, &lo, &hi,
		                                     DBZ_TIMEOUT_MS);
	if (m->offset < 0 || e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s", src->topic,
		              m->partition, rd_kafka_message_errstr(m));
	} else if (m->offset < lo) {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s"
		              " is no longer in the topic (the earliest "
		              "available is %" PRId64
		              "): changes were lost to retention; start the "
		              "migration over",
		              src->topic, m->partition, what, lo);
		snprintf(src->failure.hint, sizeof(src->failure.hint),
		         "the topic's retention deleted changes zdm had not "
		         "read; keep them (retention.ms, retention.bytes) "
		         "longer than zdm may be stopped");
	} else {
		zdm_error_set(&src->failure,
		              "topic %s partition %" PRId32 ": %s"
		              " is out of range (the earliest available is "
		              "%" PRId64 ", the end %" PRId64
		              "): was the topic recreated? changes may be "
		              "lost; start the migration over",
		              src->topic, m->partition, what, lo, hi);
	}
	src->failed = true;
}

/* Debezium marks the two events of a primary-key change by headers. */
static zdm_cdc_debezium_key_move
dbz_key_move(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *v;
	size_t n;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return ZDM_DBZ_MOVE_NONE;
	if (rd_kafka_header_get_last(hdrs, DBZ_HEADER_NEWKEY, &v, &n) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return ZDM_DBZ_MOVE_DELETE;
	if (rd_kafka_header_get_last(hdrs, DBZ_HEADER_OLDKEY, &v, &n) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return ZDM_DBZ_MOVE_CREATE;
	return ZDM_DBZ_MOVE_NONE;
}

/*
 * A key change's create, c, whose delete is this partition's last change of
 * the batch (only its tombstone between them) and from the same
 * transaction: the two become the UPDATE the database saw, the delete's
 * before image and c's after image, at c's position (acknowledging it
 * covers the delete).  false: c stays an INSERT.
 */
static bool
dbz_merge_move(dbz_source *src, part_state *ps, const zdm_cdc_change *c)
{
	zdm_cdc_change *d;
	move_state *mv;

	if (ps->last_change < 0 || (size_t)ps->last_change >= src->nchanges)
		return false;
	d = &src->changes[ps->last_change];
	mv = &src->moves[ps->last_change];
	if (!mv->open || d->op != ZDM_CDC_DELETE || d->xid != c->xid ||
	    c->xid == 0 || strcmp(d->schema, c->schema) != 0 ||
	    strcmp(d->table, c->table) != 0)
		return false;
	d->op = ZDM_CDC_UPDATE;
	d->old_cols = mv->before;
	d->nold = mv->nbefore;
	d->new_cols = c->new_cols;
	d->nnew = c->nnew;
	d->position = c->position;
	d->own_write = d->own_write || c->own_write;
	mv->open = false;
	return true;
}

/* Is a key change's delete the last change of its partition in the batch,
 * its create perhaps not fetched yet? */
static bool
dbz_move_open(const dbz_source *src)
{
	size_t i;

	for (i = 0; i < src->nparts; i++) {
		const part_state *ps = &src->parts[i];

		if (ps->owned && ps->last_change >= 0 &&
		    (size_t)ps->last_change < src->nchanges &&
		    src->moves[ps->last_change].open)
			return true;
	}
	return false;
}

/* One message: 0 taken (or skipped), -1 the source failed. */
static int
dbz_take(dbz_source *src, const rd_kafka_message_t *m)
{
	part_state *ps;
	zdm_cdc_change change;
	zdm_cdc_debezium_meta meta;
	zdm_error perr;
	int rc;

	if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
		dbz_offset_lost(src, m);
		return -1;
	}
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
		    !dbz_error_is_permanent(src->rk, m->err))
			return 0;
		zdm_error_set(&src->failure, "topic %s: %s", src->topic,
		              rd_kafka_message_errstr(m));
		src->failed = true;
		return -1;
	}
	ps = part_find(src, m->partition);
	if (ps == NULL || !ps->owned)
		return 0; /* fetched before a revoke: its new owner reads it */
	zdm_error_clear(&perr);
	meta.move = dbz_key_move(m);
	rc = zdm_cdc_debezium_parse_event(src->parser, m->key, m->key_len,
	                                  m->payload, m->len, &change, &meta,
	                                  &perr);
	if (rc < 0) {
		dbz_fail(src, &perr, m);
		return -1;
	}
	if (meta.ts_ms < 0) {
		rd_kafka_timestamp_type_t tstype;
		int64_t kts = rd_kafka_message_timestamp(m, &tstype);

		meta.ts_ms = kts >= 0 ? kts : -1;
	}
	if (m->offset + 1 > ps->delivered_next)
		ps->delivered_next = m->offset + 1;
	/* already acknowledged (read again after a rebalance): hand it out,
	 * at least once, but there is nothing left to acknowledge */
	if (m->offset >= ps->committed &&
	    part_push(ps, m->offset, meta.ts_ms, rc == 0) < 0)
		goto oom;
	if (rc == 0)
		return 0;
	change.position.partition = m->partition;
	change.position.offset = (uint64_t)m->offset;
	if (meta.move == ZDM_DBZ_MOVE_CREATE && change.op == ZDM_CDC_INSERT &&
	    dbz_merge_move(src, ps, &change))
		return 0;
	if (src->nchanges == src->changes_cap) {
		size_t cap = src->changes_cap ? src->changes_cap * 2 : 64;
		zdm_cdc_change *c = realloc(src->changes, cap * sizeof(*c));
		move_state *mv;

		if (c == NULL)
			goto oom;
		src->changes = c;
		mv = realloc(src->moves, cap * sizeof(*mv));
		if (mv == NULL)
			goto oom;
		src->moves = mv;
		src->changes_cap = cap;
	}
	src->moves[src->nchanges].open = meta.move == ZDM_DBZ_MOVE_DELETE &&
	                                 change.op == ZDM_CDC_DELETE &&
	                                 meta.nbefore > 0;
	src->moves[src->nchanges].before = meta.before;
	src->moves[src->nchanges].nbefore = meta.nbefore;
	ps->last_change = (long)src->nchanges;
	src->changes[src->nchanges++] = change;
	return 0;
oom:
	zdm_error_set(&src->failure, "topic %s: out of memory", src->topic);
	src->failed = true;
	return -1;
}

static int
dbz_next(zdm_cdc_source *base, const zdm_cdc_change **changes, size_t *n,
         int timeout_ms, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	double deadline = zdm_now() + (timeout_ms > 0 ? timeout_ms : 0) / 1e3;
	double pair_deadline;
	int taken = 0;
	size_t i;

	*changes = NULL;
	*n = 0;
	if (src->failed) {
		*err = src->failure;
		return -1;
	}
	zdm_cdc_debezium_parser_reset(src->parser);
	src->nchanges = 0;
	for (i = 0; i < src->nparts; i++)
		src->parts[i].last_change = -1;
	while (taken < DBZ_BATCH_MAX) {
		int wait = 0;
		rd_kafka_message_t *m;

		if (src->nchanges == 0) {
			double left = deadline - zdm_now();

			wait = left > 0 ? (int)(left * 1e3 + 0.5) : 0;
		}
		m = rd_kafka_consumer_poll(src->rk, wait);
		if (m == NULL) {
			if (src->nchanges > 0 || wait == 0)
				break;
			continue;
		}
		taken++;
		if (dbz_take(src, m) < 0) {
			rd_kafka_message_destroy(m);
			break;
		}
		rd_kafka_message_destroy(m);
	}
	/* Debezium sends a key change's delete, tombstone and create back to
	 * back: a batch that ends between them waits a little for the
	 * create, so the two can be merged */
	pair_deadline = zdm_now() + DBZ_MOVE_WAIT_MS / 1e3;
	while (!src->failed && dbz_move_open(src) &&
	       zdm_now() < pair_deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(src->rk, 10);

		if (m == NULL)
			continue;
		(void)dbz_take(src, m);
		rd_kafka_message_destroy(m);
	}
	dbz_commit_skips(src);
	if (src->failed && src->nchanges == 0) {
		*err = src->failure;
		return -1;
	}
	/* changes before a malformed event go out first; the failure
	 * follows on the next call */
	*changes = src->changes;
	*n = src->nchanges;
	return 0;
}

static int
dbz_ack(zdm_cdc_source *base, zdm_cdc_position pos, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	part_state *ps = NULL;
	int64_t off, upto;
	pending *h;
	size_t i;

	for (i = 0; i < src->nparts; i++)
		if (src->parts[i].partition == pos.partition)
			ps = &src->parts[i];
	/* revoked: its new owner reads it again from the committed offset,
	 * and a commit here would move that owner's offset */
	if (ps != NULL && !ps->owned)
		return 0;
	off = pos.offset < (uint64_t)INT64_MAX ? (int64_t)pos.offset : -2;
	upto = off;
	if (ps == NULL || off < 0 || off + 1 > ps->delivered_next) {
		zdm_error_set(err,
		              "topic %s partition %" PRId32
		              ": ack of offset %" PRIu64
		              ", which was never handed out",
		              src->topic, pos.partition, pos.offset);
		return -1;
	}
	while ((h = part_head(ps)) != NULL && h->offset <= off)
		part_pop(ps);
	/* tombstones right after the acknowledged change go with it */
	while ((h = part_head(ps)) != NULL && h->skip) {
		upto = h->offset;
		part_pop(ps);
	}
	if (upto + 1 <= ps->committed)
		return 0;
	return dbz_commit(src, ps, upto + 1, false, err);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The topic's metadata, for lag and the fences: 1 with *md (its one topic
 * is md->topics[0]; the caller destroys it), 0 when the topic does not
 * exist yet (nothing was ever written to it), -1 with err.
 */
static int
dbz_topic_metadata(dbz_source *src, const struct rd_kafka_metadata **md,
                   zdm_error *err)
{
	rd_kafka_resp_err_t e;

	*md = NULL;
	e = rd_kafka_metadata(src->rk, 0, src->rkt, md, DBZ_TIMEOUT_MS);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: reading metadata: %s", src->topic,
		              rd_kafka_err2str(e));
		return -1;
	}
	e = (*md)->topic_cnt == 1 ? (*md)->topics[0].err
	                          : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 1;
	rd_kafka_metadata_destroy(*md);
	*md = NULL;
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		return 0;
	zdm_error_set(err, "topic %s: %s", src->topic, rd_kafka_err2str(e));
	return -1;
}

static int
dbz_lag(zdm_cdc_source *base, double *seconds, uint64_t *backlog,
        zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *list = NULL;
	rd_kafka_resp_err_t e;
	int64_t now = wall_ms();
	uint64_t total = 0;
	double worst = 0;
	int i, rc = -1;

	*seconds = 0;
	*backlog = 0;
	switch (dbz_topic_metadata(src, &md, err)) {
	case -1:
		return -1;
	case 0:
		return 0; /* no topic yet: no change yet */
	}
	list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(
			list, src->topic, md->topics[0].partitions[i].id);
	e = rd_kafka_committed(src->rk, list, DBZ_TIMEOUT_MS);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: reading committed offsets: %s",
		              src->topic, rd_kafka_err2str(e));
		goto cleanup;
	}
	for (i = 0; i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		int64_t lo = -1, hi = -1, from;
		part_state *ps = NULL;
		size_t k;

		if (rd_kafka_get_watermark_offsets(src->rk, src->topic,
		                                   tp->partition, &lo, &hi) !=
		            RD_KAFKA_RESP_ERR_NO_ERROR ||
		    lo < 0 || hi < 0) {
			e = rd_kafka_query_watermark_offsets(
				src->rk, src->topic, tp->partition, &lo, &hi,
				DBZ_TIMEOUT_MS);
			if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
				zdm_error_set(err,
				              "topic %s partition %" PRId32
				              ": reading watermarks: %s",
				              src->topic, tp->partition,
				              rd_kafka_err2str(e));
				goto cleanup;
			}
		}
		from = tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0
		               ? tp->offset
		               : lo;
		if (hi <= from)
			continue;
		total += (uint64_t)(hi - from);
		for (k = 0; k < src->nparts; k++)
			if (src->parts[k].partition == tp->partition)
				ps = &src->parts[k];
		if (ps != NULL) {
			int64_t ts = ps->acked_ts_ms;

			/* the oldest change waiting, else the last one done */
			for (k = ps->qhead; k < ps->qhead + ps->qlen; k++)
				if (!ps->q[k].skip && ps->q[k].ts_ms >= 0) {
					ts = ps->q[k].ts_ms;
					break;
				}
			if (ts >= 0 && (double)(now - ts) / 1e3 > worst)
				worst = (double)(now - ts) / 1e3;
		}
	}
	*backlog = total;
	*seconds = worst;
	rc = 0;
cleanup:
	if (list != NULL)
		rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_metadata_destroy(md);
	return rc;
}

static void
dbz_fence_drop(dbz_source *src)
{
	struct dbz_fence *f = &src->fences[src->fence_head];

	free(f->partition);
	free(f->end);
	f->partition = NULL;
	f->end = NULL;
	src->fence_head = (src->fence_head + 1) % DBZ_FENCES;
	src->nfences--;
}

/* Fences whose ends the committed offsets have reached: fenced moves up. */
static void
dbz_fences_check(dbz_source *src)
{
	while (src->nfences > 0) {
		struct dbz_fence *f = &src->fences[src->fence_head];
		int i;

		for (i = 0; i < f->n; i++) {
			part_state *ps;

			if (f->end[i] < 0)
				continue;
			ps = part_find(src, f->partition[i]);
			if (ps == NULL || ps->committed < f->end[i])
				return; /* the later fences cannot be reached */
		}
		if (f->lsn > src->fenced)
			src->fenced = f->lsn;
		dbz_fence_drop(src);
	}
}

static void
dbz_close(zdm_cdc_source *base)
{
	dbz_source *src = (dbz_source *)base;
	size_t i;

	if (src == NULL)
		return;
	if (src->rkt != NULL)
		rd_kafka_topic_destroy(src->rkt);
	if (src->rk != NULL) {
		/* leave the group now rather than after the session timeout;
		 * nothing is committed here (auto commit is off) */
		rd_kafka_consumer_close(src->rk);
		rd_kafka_destroy(src->rk);
	}
	zdm_cdc_debezium_parser_free(src->parser);
	for (i = 0; i < src->nparts; i++)
		free(src->parts[i].q);
	free(src->parts);
	free(src->changes);
	free(src->moves);
	free(src->topic);
	while (src->nfences > 0)
		dbz_fence_drop(src);
	free(src);
}

static int dbz_stats(zdm_cdc_source *base, zdm_cdc_stats *out, zdm_error *err);
static int dbz_fence(zdm_cdc_source *base, uint64_t lsn, zdm_error *err);
static void dbz_own_xid(zdm_cdc_source *base, uint64_t xid);

static const zdm_cdc_source_ops dbz_ops = {
	.next = dbz_next,
	.ack = dbz_ack,
	.lag = dbz_lag,
	.stats = dbz_stats,
	.fence = dbz_fence,
	.own_xid = dbz_own_xid,
	.close = dbz_close,
};

/*
 * Assigned partitions start at the group's committed offset, read here; one
 * with none (a new group) starts at its beginning, the connector's
 * snapshot.  That is explicit because auto.offset.reset is "error": a
 * committed offset that is no longer in the topic must stop zdm
 * (dbz_offset_lost), not send it to the earliest message left.
 */
static void
dbz_assigned(dbz_source *src, rd_kafka_t *rk,
             rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, DBZ_TIMEOUT_MS);
	int i;

	for (i = 0; i < parts->cnt && e == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			e = parts->elems[i].err;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure,
		              "topic %s: reading the group's committed "
		              "offsets: %s",
		              src->topic, rd_kafka_err2str(e));
		src->failed = true;
	}
	for (i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		part_state *ps = part_get(src, tp->partition);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			tp->offset = RD_KAFKA_OFFSET_INVALID;
			continue;
		}
		if (ps == NULL) {
			zdm_error_set(&src->failure, "topic %s: out of memory",
			              src->topic);
			src->failed = true;
			tp->offset = RD_KAFKA_OFFSET_INVALID;
			continue;
		}
		ps->owned = true;
		ps->committed = tp->offset >= 0 ? tp->offset : -1;
		if (tp->offset < 0)
			tp->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
}

/*
 * A revoked partition is another member's now (or ours again after the
 * rebalance, from the committed offset).  What of it was handed out and not
 * acknowledged, or gathered into the batch next() is building and not
 * handed out yet, its owner reads again from the committed offset: the
 * batch drops it, and an ack for it commits nothing (dbz_ack).
 */
static void
dbz_revoked(dbz_source *src, const rd_kafka_topic_partition_list_t *parts)
{
	size_t i, kept = 0;
	int k;

	for (k = 0; k < parts->cnt; k++) {
		part_state *ps = part_find(src, parts->elems[k].partition);

		if (ps != NULL)
			ps->owned = false;
	}
	for (i = 0; i < src->nchanges; i++) {
		part_state *ps =
			part_find(src, src->changes[i].position.partition);

		if (ps != NULL && ps->owned) {
			src->moves[kept] = src->moves[i];
			src->changes[kept++] = src->changes[i];
		}
	}
	src->nchanges = kept;
	/* the indexes moved: a key change split by the revoke stays split */
	for (i = 0; i < src->nparts; i++)
		src->parts[i].last_change = -1;
}

/*
 * Partitions come and go with the group.  Whatever of a partition was
 * handed out and not acknowledged is read again from the committed offset
 * when it is assigned (to us or another member), so its queue starts over.
 */
static void
dbz_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e,
              rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	dbz_source *src = opaque;
	bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;
	int i;

	for (i = 0; i < parts->cnt; i++) {
		part_state *ps = part_find(src, parts->elems[i].partition);

		if (ps != NULL) {
			ps->qhead = 0;
			ps->qlen = 0;
		}
	}
	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		dbz_assigned(src, rk, parts);
		if (coop)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			ae = rd_kafka_assign(rk, parts);
	} else {
		dbz_revoked(src, parts);
		if (coop)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			ae = rd_kafka_assign(rk, NULL);
	}
	if (error != NULL) {
		zdm_error_set(&src->failure, "topic %s: rebalance: %s",
		              src->topic, rd_kafka_error_string(error));
		src->failed = true;
		rd_kafka_error_destroy(error);
	} else if (ae != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(&src->failure, "topic %s: rebalance: %s",
		              src->topic, rd_kafka_err2str(ae));
		src->failed = true;
	}
}

/* Settings that are zdm's: a user value must say what zdm sets anyway. */
static const struct {
	const char *key;
	const char *allowed[3];
	const char *why;
} dbz_owned_conf[] = {
	{"group.id", {NULL}, "use the group_id option"},
	{"enable.auto.commit",
         {"false", NULL},
         "zdm commits offsets only once changes are applied"},
	{"enable.auto.offset.store",
         {"false", NULL},
         "zdm commits offsets only once changes are applied"},
	{"auto.offset.reset",
         {"error", NULL},
         "zdm starts a new group at the topic's beginning itself, and a "
         "committed offset no longer in the topic must stop it"},
};

static bool
conf_is_secret(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") ||
	       strstr(key, "key") || strstr(key, "sasl") ||
	       strstr(key, "oauth") || strstr(key, "jaas");
}

static int
dbz_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
             zdm_error *err)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		if (conf_is_secret(key))
			zdm_error_set(err, "kafka_conf %s: invalid setting",
			              key);
		else
			zdm_error_set(err, "kafka_conf %s: %s", key, errstr);
		return -1;
	}
	return 0;
}

static int
dbz_conf_user(rd_kafka_conf_t *conf, const char *entry, bool *has_bootstrap,
              zdm_error *err)
{
	const char *eq = strchr(entry, '=');
	char key[256];
	size_t i, n;

	if (eq == NULL || eq == entry || (size_t)(eq - entry) >= sizeof(key)) {
		char q[80];

		zdm_error_set(err, "kafka_conf entry %s: expected key=value",
		              zdm_cdc_debezium_quote(
				      conf_is_secret(entry) ? "..." : entry, q,
				      sizeof(q)));
		return -1;
	}
	n = (size_t)(eq - entry);
	memcpy(key, entry, n);
	key[n] = '\0';
	for (i = 0; i < sizeof(dbz_owned_conf) / sizeof(*dbz_owned_conf); i++) {
		size_t a;
		bool ok = false;

		if (strcmp(key, dbz_owned_conf[i].key) != 0)
			continue;
		for (a = 0; a < 3 && dbz_owned_conf[i].allowed[a]; a++)
			if (strcmp(eq + 1, dbz_owned_conf[i].allowed[a]) == 0)
				ok = true;
		if (!ok) {
			zdm_error_set(err,
			              "kafka_conf %s=%s is not allowed: %s",
			              key, eq + 1, dbz_owned_conf[i].why);
			return -1;
		}
	}
	if (strcmp(key, "bootstrap.servers") == 0 ||
	    strcmp(key, "metadata.broker.list") == 0 ||
	    strcmp(key, "test.mock.num.brokers") == 0)
		*has_bootstrap = true;
	return dbz_conf_set(conf, key, eq + 1, err);
}

int
zdm_cdc_debezium_open(zdm_cdc_source **out, const zdm_cdc_debezium_opts *opts,
                      zdm_error *err)
{
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *subs;
	rd_kafka_resp_err_t e;
	dbz_source *src = NULL;
	bool has_bootstrap = false;
	char errstr[512];
	size_t i;

	*out = NULL;
	if (opts == NULL || opts->topic == NULL || opts->topic[0] == '\0') {
		zdm_error_set(err, "debezium source: no topic");
		return -1;
	}
	if (opts->group_id == NULL || opts->group_id[0] == '\0') {
		zdm_error_set(err, "debezium source: no consumer group");
		return -1;
	}
	src = calloc(1, sizeof(*src));
	if (src == NULL)
		goto oom;
	src->base.ops = &dbz_ops;
	src->topic = strdup(opts->topic);
	if (src->topic == NULL)
		goto oom;
	if (zdm_cdc_debezium_parser_new(&src->parser, opts, err) < 0)
		goto fail;

	conf = rd_kafka_conf_new();
	if (dbz_conf_set(conf, "client.id", "zdm", err) < 0)
		goto fail;
	for (i = 0; opts->kafka_conf && opts->kafka_conf[i]; i++)
		if (dbz_conf_user(conf, opts->kafka_conf[i], &has_bootstrap,
		                  err) < 0)
			goto fail;
	if (!has_bootstrap) {
		zdm_error_set(err, "kafka_conf has no bootstrap.servers");
		goto fail;
	}
	if (dbz_conf_set(conf, "group.id", opts->group_id, err) < 0 ||
	    dbz_conf_set(conf, "enable.auto.commit", "false", err) < 0 ||
	    dbz_conf_set(conf, "enable.auto.offset.store", "false", err) < 0 ||
	    dbz_conf_set(conf, "auto.offset.reset", "error", err) < 0)
		goto fail;
	rd_kafka_conf_set_opaque(conf, src);
	rd_kafka_conf_set_rebalance_cb(conf, dbz_rebalance);

	src->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (src->rk == NULL) {
		zdm_error_set(err, "creating the Kafka consumer: %s", errstr);
		goto fail;
	}
	conf = NULL; /* the consumer owns it now */
	rd_kafka_poll_set_consumer(src->rk);
	src->rkt = rd_kafka_topic_new(src->rk, src->topic, NULL);
	if (src->rkt == NULL) {
		zdm_error_set(err, "topic %s: %s", src->topic,
		              rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, src->topic,
	                                  RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(src->rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		zdm_error_set(err, "topic %s: subscribing: %s", src->topic,
		              rd_kafka_err2str(e));
		goto fail;
	}
	*out = &src->base;
	return 0;
oom:
	zdm_error_set(err, "out of memory");
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	if (src != NULL)
		dbz_close(&src->base);
	return -1;
}

/* The marks are the parser's: it sees each event's source.txId. */
static void
dbz_own_xid(zdm_cdc_source *base, uint64_t xid)
{
	dbz_source *src = (dbz_source *)base;

	zdm_cdc_debezium_parser_own_xid(src->parser, xid);
}

/* See "Barriers" above. */
static int
dbz_fence(zdm_cdc_source *base, uint64_t lsn, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;
	const struct rd_kafka_metadata *md = NULL;
	struct dbz_fence f = {lsn, NULL, NULL, 0};
	rd_kafka_resp_err_t e;
	int i, rc = -1;

	if (lsn <= src->fenced ||
	    (src->nfences > 0 &&
	     src->fences[(src->fence_head + src->nfences - 1) % DBZ_FENCES]
	                     .lsn >= lsn))
		return 0; /* nothing newer to mark */
	switch (dbz_topic_metadata(src, &md, err)) {
	case -1:
		return -1;
	case 0:
		/* no topic: the connector has written no change of the table,
		 * so none before lsn is waiting */
		src->fenced = lsn;
		return 0;
	}
	f.n = md->topics[0].partition_cnt;
	f.partition = calloc(f.n > 0 ? (size_t)f.n : 1, sizeof(*f.partition));
	f.end = calloc(f.n > 0 ? (size_t)f.n : 1, sizeof(*f.end));
	if (f.partition == NULL || f.end == NULL) {
		zdm_error_set(err, "out of memory");
		goto cleanup;
	}
	for (i = 0; i < f.n; i++) {
		int64_t lo = -1, hi = -1;

		f.partition[i] = md->topics[0].partitions[i].id;
		e = rd_kafka_query_watermark_offsets(src->rk, src->topic,
		                                     f.partition[i], &lo, &hi,
		                                     DBZ_TIMEOUT_MS);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			zdm_error_set(err,
			              "topic %s partition %" PRId32
			              ": reading watermarks: %s",
			              src->topic, f.partition[i],
			              rd_kafka_err2str(e));
			goto cleanup;
		}
		f.end[i] = hi > lo ? hi : -1;
	}
	if (src->nfences == DBZ_FENCES)
		dbz_fence_drop(src); /* a later fence covers it */
	src->fences[(src->fence_head + src->nfences) % DBZ_FENCES] = f;
	src->nfences++;
	f.partition = NULL;
	f.end = NULL;
	dbz_fences_check(src);
	rc = 0;
cleanup:
	free(f.partition);
	free(f.end);
	rd_kafka_metadata_destroy(md);
	return rc;
}

/* Kafka offsets are no LSNs: only the fences say which LSN is applied. */
static int
dbz_stats(zdm_cdc_source *base, zdm_cdc_stats *out, zdm_error *err)
{
	dbz_source *src = (dbz_source *)base;

	(void)err;
	dbz_fences_check(src);
	out->received_lsn = 0;
	out->applied_lsn = src->fenced;
	return 0;
}
