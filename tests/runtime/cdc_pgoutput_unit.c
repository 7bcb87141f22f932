/*
 * cdc_pgoutput_unit.c -- the pgoutput decoder (runtime/cdc_pgoutput.c) fed
 * hand-made replication messages through its offline seam, no server:
 *
 *   - a stream with every message kind decodes to the expected changes
 *     (old key filtered to the key columns, whole old row with 'O', NULL,
 *     unchanged TOAST, truncate per relation, origin zdm* = own write,
 *     a relation re-described, an empty transaction ignored);
 *   - ack moves the reported position, never backwards, never beyond what
 *     was received, and the keepalive rule advances it only when all is
 *     acknowledged;
 *   - each message cut short at every length, and the stream with bytes
 *     flipped at random (fixed seed), fail cleanly or decode: never a
 *     crash or an out-of-bounds read (run it under ASan);
 *   - malformed and unknown messages fail with the exact messages below.
 *
 * Exit 0, or 1 after printing each failed check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc_pgoutput.h"

typedef struct msgbuf {
	unsigned char d[1024];
	size_t n;
} msgbuf;

static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                 \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		if (g_ == NULL || strcmp(g_, w_) != 0) {                     \
			fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n",  \
			        __FILE__, __LINE__, g_ ? g_ : "(null)", w_); \
			failures++;                                          \
		}                                                            \
	} while (0)

static void
put_u8(msgbuf *b, unsigned v)
{
	b->d[b->n++] = (unsigned char)v;
}

static void
put_u16(msgbuf *b, unsigned v)
{
	put_u8(b, (v >> 8) & 0xff);
	put_u8(b, v & 0xff);
}

static void
put_u32(msgbuf *b, uint32_t v)
{
	put_u16(b, v >> 16);
	put_u16(b, v & 0xffff);
}

static void
put_u64(msgbuf *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

static void
put_str(msgbuf *b, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(b->d + b->n, s, n);
	b->n += n;
}

static void
put_text(msgbuf *b, const char *s)
{
	put_u8(b, 't');
	put_u32(b, (uint32_t)strlen(s));
	memcpy(b->d + b->n, s, strlen(s));
	b->n += strlen(s);
}

/* An XLogData header: data start, WAL end, send time. */
static msgbuf
xlog(uint64_t lsn)
{
	msgbuf b = {{0}, 0};

	put_u8(&b, 'w');
	put_u64(&b, lsn);
	put_u64(&b, lsn);
	put_u64(&b, 800000000000000ull);
	return b;
}

static msgbuf
keepalive(uint64_t wal_end, int reply)
{
	msgbuf b = {{0}, 0};

	put_u8(&b, 'k');
	put_u64(&b, wal_end);
	put_u64(&b, 800000000000000ull);
	put_u8(&b, (unsigned)reply);
	return b;
}

static msgbuf
m_begin(uint64_t final_lsn, uint32_t xid)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'B');
	put_u64(&b, final_lsn);
	put_u64(&b, 799999999000000ull);
	put_u32(&b, xid);
	return b;
}

static msgbuf
m_commit(uint64_t commit_lsn, uint64_t end_lsn)
{
	msgbuf b = xlog(end_lsn);

	put_u8(&b, 'C');
	put_u8(&b, 0);
	put_u64(&b, commit_lsn);
	put_u64(&b, end_lsn);
	put_u64(&b, 799999999000000ull);
	return b;
}

static msgbuf
m_origin(const char *name)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'O');
	put_u64(&b, 0x99);
	put_str(&b, name);
	return b;
}

/* users(id key, name, bio) or, with extra, users(id key, name, bio, age). */
static msgbuf
m_rel_users(int extra)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'R');
	put_u32(&b, 16384);
	put_str(&b, "app");
	put_str(&b, "users");
	put_u8(&b, 'd');
	put_u16(&b, extra ? 4 : 3);
	put_u8(&b, 1);
	put_str(&b, "id");
	put_u32(&b, 20);
	put_u32(&b, 0xffffffff);
	put_u8(&b, 0);
	put_str(&b, "name");
	put_u32(&b, 25);
	put_u32(&b, 0xffffffff);
	put_u8(&b, 0);
	put_str(&b, "bio");
	put_u32(&b, 25);
	put_u32(&b, 0xffffffff);
	if (extra) {
		put_u8(&b, 0);
		put_str(&b, "age");
		put_u32(&b, 23);
		put_u32(&b, 0xffffffff);
	}
	return b;
}

/* pg_catalog-less namespace: "" means pg_catalog. */
static msgbuf
m_rel_full(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'R');
	put_u32(&b, 16390);
	put_str(&b, "");
	put_str(&b, "log");
	put_u8(&b, 'f');
	put_u16(&b, 2);
	put_u8(&b, 1);
	put_str(&b, "k");
	put_u32(&b, 23);
	put_u32(&b, 0xffffffff);
	put_u8(&b, 1);
	put_str(&b, "v");
	put_u32(&b, 25);
	put_u32(&b, 0xffffffff);
	return b;
}

static msgbuf
m_type(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'Y');
	put_u32(&b, 70000);
	put_str(&b, "app");
	put_str(&b, "mood");
	return b;
}

static msgbuf
m_insert_users(const char *id, const char *name)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'I');
	put_u32(&b, 16384);
	put_u8(&b, 'N');
	put_u16(&b, 3);
	put_text(&b, id);
	put_text(&b, name);
	put_u8(&b, 'n');
	return b;
}

/* UPDATE with the key changed: 'K' carries all columns, NULL but id. */
static msgbuf
m_update_key(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'U');
	put_u32(&b, 16384);
	put_u8(&b, 'K');
	put_u16(&b, 3);
	put_text(&b, "1");
	put_u8(&b, 'n');
	put_u8(&b, 'n');
	put_u8(&b, 'N');
	put_u16(&b, 3);
	put_text(&b, "2");
	put_text(&b, "it's\n");
	put_u8(&b, 'u');
	return b;
}

static msgbuf
m_update_full(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'U');
	put_u32(&b, 16390);
	put_u8(&b, 'O');
	put_u16(&b, 2);
	put_text(&b, "7");
	put_text(&b, "old");
	put_u8(&b, 'N');
	put_u16(&b, 2);
	put_text(&b, "7");
	put_text(&b, "new");
	return b;
}

static msgbuf
m_delete_users(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'D');
	put_u32(&b, 16384);
	put_u8(&b, 'K');
	put_u16(&b, 3);
	put_text(&b, "2");
	put_u8(&b, 'n');
	put_u8(&b, 'n');
	return b;
}

static msgbuf
m_truncate(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'T');
	put_u32(&b, 2);
	put_u8(&b, 0);
	put_u32(&b, 16384);
	put_u32(&b, 16390);
	return b;
}

static msgbuf
m_insert_users4(void)
{
	msgbuf b = xlog(0);

	put_u8(&b, 'I');
	put_u32(&b, 16384);
	put_u8(&b, 'N');
	put_u16(&b, 4);
	put_text(&b, "3");
	put_text(&b, "Zoë");
	put_u8(&b, 'n');
	put_text(&b, "41");
	return b;
}

/* The whole valid stream, in order. */
static size_t
stream(msgbuf *m)
{
	size_t n = 0;

	m[n++] = keepalive(0x500, 0);
	m[n++] = m_begin(0x1000, 700);
	m[n++] = m_origin("zdm_apply");
	m[n++] = m_rel_users(0);
	m[n++] = m_type();
	m[n++] = m_insert_users("1", "ann");
	m[n++] = m_update_key();
	m[n++] = m_rel_full();
	m[n++] = m_update_full();
	m[n++] = m_delete_users();
	m[n++] = m_commit(0x1000, 0x1100);
	m[n++] = m_begin(0x1200, 701); /* empty: ignored */
	m[n++] = m_commit(0x1200, 0x1280);
	m[n++] = m_begin(0x1300, 702);
	m[n++] = m_origin("pg_16400");
	m[n++] = m_truncate();
	m[n++] = m_rel_users(1);
	m[n++] = m_insert_users4();
	m[n++] = m_commit(0x1300, 0x1400);
	return n;
}

static zdm_cdc_source *
offline(void)
{
	zdm_cdc_source *src;
	zdm_error err;

	if (zdm_cdc_pgoutput_open_offline(&src, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		exit(1);
	}
	return src;
}

static int
feed(zdm_cdc_source *src, const msgbuf *m, zdm_error *err)
{
	return zdm_cdc_pgoutput_feed(src, m->d, m->n, err);
}

static void
test_stream(void)
{
	msgbuf m[32];
	size_t n = stream(m), i, nch;
	zdm_cdc_source *src = offline();
	const zdm_cdc_change *c;
	zdm_cdc_pgoutput_stats st;
	zdm_error err;
	double lag;
	uint64_t backlog;

	for (i = 0; i < n; i++)
		if (feed(src, &m[i], &err) < 0) {
			fprintf(stderr, "message %zu: %s\n", i, err.message);
			failures++;
		}
	CHECK(src->ops->next(src, &c, &nch, 0, &err) == 0);
	CHECK(nch == 7);
	if (nch != 7)
		goto done;
	/* INSERT app.users own new(id='1' name='ann' bio=NULL) */
	CHECK(c[0].op == ZDM_CDC_INSERT && c[0].own_write);
	CHECK_STR(c[0].schema, "app");
	CHECK_STR(c[0].table, "users");
	CHECK(c[0].nold == 0 && c[0].nnew == 3);
	CHECK_STR(c[0].new_cols[1].value, "ann");
	CHECK(c[0].new_cols[2].value == NULL &&
	      !c[0].new_cols[2].unchanged_toast);
	CHECK(c[0].position.offset == 0x1100 && c[0].position.partition == 0);
	/* old key: only id */
	CHECK(c[1].op == ZDM_CDC_UPDATE && c[1].nold == 1 && c[1].nnew == 3);
	CHECK_STR(c[1].old_cols[0].name, "id");
	CHECK_STR(c[1].old_cols[0].value, "1");
	CHECK_STR(c[1].new_cols[1].value, "it's\n");
	CHECK(c[1].new_cols[2].unchanged_toast &&
	      c[1].new_cols[2].value == NULL);
	CHECK_STR(c[1].new_cols[2].name, "bio");
	/* FULL: the whole old row; "" namespace is pg_catalog */
	CHECK(c[2].op == ZDM_CDC_UPDATE && c[2].nold == 2);
	CHECK_STR(c[2].schema, "pg_catalog");
	CHECK_STR(c[2].old_cols[1].value, "old");
	CHECK_STR(c[2].new_cols[1].value, "new");
	CHECK(c[3].op == ZDM_CDC_DELETE && c[3].nold == 1 && c[3].nnew == 0);
	CHECK_STR(c[3].old_cols[0].value, "2");
	/* second transaction: truncate per relation, not own */
	CHECK(c[4].op == ZDM_CDC_TRUNCATE && !c[4].own_write);
	CHECK_STR(c[4].table, "users");
	CHECK(c[5].op == ZDM_CDC_TRUNCATE && c[5].nold == 0 && c[5].nnew == 0);
	CHECK_STR(c[5].table, "log");
	CHECK(c[4].position.offset == 0x1400);
	/* re-described relation: the new column is there */
	CHECK(c[6].nnew == 4);
	CHECK_STR(c[6].new_cols[3].name, "age");
	CHECK_STR(c[6].new_cols[1].value, "Zoë");
	/* the old description is still readable by the earlier change */
	CHECK_STR(c[0].new_cols[0].name, "id");

	/* acks: not beyond received, never backwards */
	CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1500}, &err) < 0);
	CHECK_STR(
		err.message,
		"pgoutput: ack of LSN 0/1500, beyond the newest transaction received (0/1400)");
	CHECK(src->ops->ack(src, (zdm_cdc_position){1, 0x1100}, &err) < 0);
	CHECK(src->ops->lag(src, &lag, &backlog, &err) == 0);
	/* 1 s between commit and clock */
	if (!(lag > 0.9 && lag < 1.1)) {
		fprintf(stderr, "lag %f\n", lag);
		failures++;
	}
	CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1100}, &err) == 0);
	CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1000}, &err) == 0);
	CHECK(zdm_cdc_pgoutput_get_stats(src, &st, &err) == 0);
	CHECK(st.reported_lsn == 0x1100 && st.acked_lsn == 0x1100);
	CHECK(st.transactions == 2 && st.changes == 7);
	/* a quiet keepalive while something is unacknowledged: no advance */
	{
		msgbuf k = keepalive(0x1800, 1);

		CHECK(feed(src, &k, &err) == 0);
		zdm_cdc_pgoutput_get_stats(src, &st, &err);
		CHECK(st.reported_lsn == 0x1100);
	}
	CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1400}, &err) == 0);
	CHECK(src->ops->lag(src, &lag, &backlog, &err) == 0);
	CHECK(lag == 0 && backlog == 0);
	/* everything acknowledged: a keepalive outside a txn moves it */
	CHECK(src->ops->next(src, &c, &nch, 0, &err) == 0 && nch == 0);
done:
	src->ops->close(src);

	src = offline();
	for (i = 0; i < n; i++)
		feed(src, &m[i], &err);
	{
		msgbuf k = keepalive(0x2000, 0);

		CHECK(feed(src, &k, &err) == 0);
		zdm_cdc_pgoutput_get_stats(src, &st, &err);
		/* the first keepalive, before any transaction, moved it */
		CHECK(st.reported_lsn == 0x500);
		CHECK(st.received_lsn == 0x2000);
		/* the interface's view (cdc.h): the same positions; no fence
		 * and no own_xid, the slot's positions are LSNs and zdm's
		 * writes carry their origin */
		{
			zdm_cdc_stats cs;

			CHECK(src->ops->stats(src, &cs, &err) == 0);
			CHECK(cs.received_lsn == 0x2000 &&
			      cs.applied_lsn == st.acked_lsn);
			CHECK(src->ops->fence == NULL &&
			      src->ops->own_xid == NULL &&
			      src->ops->prefetch != NULL);
		}
		CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1100}, &err) ==
		      0);
		zdm_cdc_pgoutput_get_stats(src, &st, &err);
		CHECK(st.reported_lsn == 0x1100);
		CHECK(src->ops->ack(src, (zdm_cdc_position){0, 0x1400}, &err) ==
		      0);
		zdm_cdc_pgoutput_get_stats(src, &st, &err);
		CHECK(st.reported_lsn == 0x2000);
	}
	src->ops->close(src);
}

/* Feed m[0..upto) whole, then m[upto] cut to len bytes. */
static int
feed_cut(const msgbuf *m, size_t upto, size_t len, zdm_error *err)
{
	zdm_cdc_source *src = offline();
	size_t i;
	int rc = 0;

	for (i = 0; i < upto && rc == 0; i++)
		rc = feed(src, &m[i], err);
	if (rc == 0)
		rc = zdm_cdc_pgoutput_feed(src, m[upto].d, len, err);
	src->ops->close(src);
	return rc;
}

static void
test_truncation(void)
{
	msgbuf m[32];
	size_t n = stream(m), i, len;
	zdm_error err;

	for (i = 0; i < n; i++) {
		for (len = 0; len < m[i].n; len++) {
			if (feed_cut(m, i, len, &err) == 0) {
				/* a Type or Origin cut inside its last string
				 * must still fail; nothing may pass short */
				fprintf(stderr,
				        "message %zu cut to %zu of %zu bytes was accepted\n",
				        i, len, m[i].n);
				failures++;
			} else if (strncmp(err.message, "pgoutput: ", 10) !=
			           0) {
				fprintf(stderr, "message %zu cut to %zu: %s\n",
				        i, len, err.message);
				failures++;
			}
		}
	}
}

static void
test_flips(void)
{
	msgbuf m[32], f[32];
	size_t n = stream(m), round, i;
	uint32_t seed = 12345;
	zdm_cdc_source *src;
	const zdm_cdc_change *c;
	size_t nch;
	zdm_error err;

	for (round = 0; round < 20000; round++) {
		memcpy(f, m, sizeof(f));
		for (i = 0; i < 3; i++) {
			size_t which, at;

			seed = seed * 1103515245u + 12345u;
			which = (seed >> 8) % n;
			seed = seed * 1103515245u + 12345u;
			at = (seed >> 8) % f[which].n;
			seed = seed * 1103515245u + 12345u;
			f[which].d[at] ^=
				(unsigned char)(1u << ((seed >> 8) % 8));
		}
		src = offline();
		for (i = 0; i < n; i++)
			if (feed(src, &f[i], &err) < 0)
				break;
		if (i == n && src->ops->next(src, &c, &nch, 0, &err) == 0) {
			size_t k, j;

			/* touch everything, so ASan sees any bad pointer */
			for (k = 0; k < nch; k++) {
				for (j = 0; j < c[k].nold; j++)
					if (c[k].old_cols[j].value)
						(void)strlen(
							c[k].old_cols[j].value);
				for (j = 0; j < c[k].nnew; j++)
					if (c[k].new_cols[j].value)
						(void)strlen(
							c[k].new_cols[j].value);
				(void)strlen(c[k].schema);
				(void)strlen(c[k].table);
			}
		}
		src->ops->close(src);
	}
}

/* Feed prefix m[0..upto), then bad; return the error message. */
static void
expect_error(const msgbuf *m, size_t upto, const msgbuf *bad, const char *want)
{
	zdm_cdc_source *src = offline();
	zdm_error err;
	size_t i;

	for (i = 0; i < upto; i++)
		if (feed(src, &m[i], &err) < 0) {
			fprintf(stderr, "prefix %zu failed: %s\n", i,
			        err.message);
			failures++;
		}
	if (feed(src, bad, &err) == 0) {
		fprintf(stderr, "accepted, wanted: %s\n", want);
		failures++;
	} else {
		CHECK_STR(err.message, want);
	}
	src->ops->close(src);
}

static void
test_errors(void)
{
	msgbuf m[32], b;

	stream(m);
	b = xlog(0x2A00);
	put_u8(&b, 'X');
	expect_error(m, 0, &b,
	             "pgoutput: unknown message type 'X' at LSN 0/2A00");
	b = xlog(0);
	put_u8(&b, 'M');
	expect_error(
		m, 2, &b,
		"pgoutput: unknown message type 'M' in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_insert_users("1", "x");
	expect_error(
		m, 2, &b,
		"pgoutput: Insert for relation id 16384, which no Relation message described in the transaction committing at LSN 0/1000 (xid 700)");
	expect_error(m, 1, &m[10],
	             "pgoutput: Commit without a Begin at LSN 0/1100");
	b = m_insert_users4();
	expect_error(
		m, 4, &b,
		"pgoutput: Insert message with 4 columns for app.users, which has 3 in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_insert_users("1", "x");
	b.d[b.n - 1] = 'b';
	expect_error(
		m, 4, &b,
		"pgoutput: Insert message: unknown column kind 'b' for app.users.bio in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_insert_users("1", "x");
	b.d[b.n - 2] = '\0';
	expect_error(
		m, 4, &b,
		"pgoutput: Insert message: a NUL byte in the value of app.users.name in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_insert_users("1", "x");
	put_u8(&b, 0);
	expect_error(
		m, 4, &b,
		"pgoutput: malformed Insert message: 1 unexpected bytes after byte 46 in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_insert_users("1", "x");
	b.n -= 3;
	expect_error(
		m, 4, &b,
		"pgoutput: truncated Insert message: 4 bytes needed at byte 40 of 43 in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_begin(0x1000, 1);
	expect_error(
		m, 2, &b,
		"pgoutput: Begin inside a transaction in the transaction committing at LSN 0/1000 (xid 700)");
	b = m_commit(0x1001, 0x1100);
	expect_error(
		m, 2, &b,
		"pgoutput: Commit at LSN 0/1001, Begin said 0/1000 at LSN 0/1100");
	b = keepalive(1, 0);
	b.n--;
	expect_error(
		m, 0, &b,
		"pgoutput: truncated keepalive message: 1 bytes needed at byte 17 of 17 after LSN 0/0");
	b.n = 1;
	b.d[0] = 'x';
	expect_error(
		m, 0, &b,
		"pgoutput: unexpected replication message type 'x' after LSN 0/0");
}

int
main(void)
{
	test_stream();
	test_errors();
	test_truncation();
	test_flips();
	if (failures) {
		fprintf(stderr, "cdc_pgoutput_unit: %d checks failed\n",
		        failures);
		return 1;
	}
	printf("cdc_pgoutput_unit: ok\n");
	return 0;
}
