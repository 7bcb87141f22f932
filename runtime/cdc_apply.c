/*
 * cdc_apply.c -- the applier: a cdc plan's rules and guarded statements run
 * for each change event (cdc_apply.h; the contract is docs/plan-format.md,
 * "Change data capture").
 *
 * Design:
 *  - Every forward and reverse statement is PREPAREd once, at start, so a
 *    bad statement fails before any change is read.
 *  - The statements take a set of events ($1, a JSON array; plan-format.md
 *    says its shape): each change's decision goes into its sync's forward
 *    or reverse set, and a set is sent as one statement.  The executor's
 *    cost per statement was most of the time when each event had its own.
 *    Events of one row must apply in order, so the sets are sent (flushed)
 *    before a key already in them comes again (a hash of table and key
 *    values; a collision only flushes early), and every AP_CHUNK events.
 *    Within a flush each row appears once, so the order of the statements
 *    matters only between the syncs of one table (in plan order: an
 *    earlier change's statement clears the marker the next one reads).
 *  - A batch runs in one transaction with libpq's pipeline mode: the
 *    statements are sent without waiting for each other's results, with a
 *    Sync (and a read of the results so far) every AP_SENT statements so
 *    that libpq's buffers stay bounded on a huge transaction.  A Sync inside
 *    an explicit transaction block commits nothing; the caller commits.
 *    While the server works, an idle hook may read another stream
 *    (zdm_cdc_applier_set_idle: zdm sync lets the native source read and
 *    decode ahead, so the walsender is not left waiting for room).
 *  - The columns a table's rules and statements need are collected once,
 *    per table, into "slots"; for each change the slots are matched to the
 *    event's column arrays, starting from where they were in the last event
 *    of the table (events of one relation share a layout, so the guess
 *    almost always holds and costs one strcmp per slot).  Names are always
 *    compared, never pointers: a source may free a relation's names and
 *    reuse the memory for another.
 *
 *  - A change arrives once its commit record is flushed, which is a moment
 *    (or, with synchronous replication, as long as the standby takes)
 *    before the committing backend leaves the proc array: until then its
 *    writes are invisible to a new snapshot (an inserted row is not there;
 *    an updated row still shows its old version, which the guard rejects),
 *    and a guarded statement run then would change nothing and lose the
 *    change.  So before a batch's statements are sent, every transaction
 *    the batch's changes come from (their xid) must have left the proc
 *    array: one pg_current_snapshot() says so for all of them, and the
 *    snapshot's xmin answers later batches of older transactions without a
 *    query.  The wait is bounded per call (AP_VISIBLE_WAIT_MS); past it,
 *    apply returns "not yet" with nothing sent, so the caller keeps
 *    reporting and can be stopped.  A change without an xid (a Debezium
 *    event without source.txId) cannot be waited for.
 *
 *  - A batch locks many rows in one transaction while clients lock rows
 *    in their own order: the two can deadlock, and the deadlock detector
 *    may pick the client.  So a batch runs with lock_timeout at half the
 *    server's deadlock_timeout: the applier gives up first, rolls the batch
 *    back and says "not yet" (as for a writer still running), and the
 *    client goes on.  A deadlock or serialization failure it is picked for
 *    is treated the same.
 *
 * Invariants: nothing here commits or acknowledges; the statements are the
 * plan's, run as written, with the event's values as text parameters (the
 * guards in them make a replay harmless).  Own writes are skipped before
 * anything else looks at them.
 */
#define _GNU_SOURCE /* ppoll; before any system header */
#include "cdc_apply.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Events in the sets before they are sent. */
#define AP_CHUNK 2000
/* Slots of the key table: a power of 2 (the probe masks with it), over
 * four times AP_CHUNK so that probes stay short. */
#define AP_KEYS 8192
_Static_assert((AP_KEYS & (AP_KEYS - 1)) == 0 && AP_KEYS > 4 * AP_CHUNK,
               "AP_KEYS");
/* Statements between two Syncs of the pipeline (results read at each). */
#define AP_SENT 64
/* While it waits for results with an idle hook: the hook's period, ns
 * (a quarter of the time the walsender takes to fill a Unix socket). */
#define AP_IDLE_NS 100000
/* Per call, the longest wait for the batch's writers to end. */
#define AP_VISIBLE_WAIT_MS 100

typedef struct ap_rule {
	zdm_cdc_cond cond;
	zdm_cdc_apply apply;
	int *slots; /* CHANGED, NOT_NULL: the columns; PENDING: one */
	size_t nslots;
} ap_rule;

/* Events waiting to be sent as one statement: a JSON array being built. */
typedef struct ap_set {
	zdm_strbuf json;
	size_t n;           /* events in it */
	size_t first, last; /* their indexes in the batch, for messages */
} ap_set;

typedef struct ap_sync {
	const zdm_cdc_sync *sync;
	int *param_slots;
	bool *param_json; /* the column is json or jsonb: its value is JSON */
	int *touched_slots;
	ap_set fwd_set;
	ap_set rev_set;
	ap_rule *on_insert;
	ap_rule *on_update;
	char fwd_name[64];
	char rev_name[64];
	char unc_name[64]; /* "" when the plan has no unconvertible */
} ap_sync;

typedef struct ap_table {
	const zdm_cdc_table *table;
	char **slot_names; /* borrowed from the plan, or the literal below */
	size_t nslots;
	size_t slot_cap;
	int pending_slot; /* zdm_sync_pending; -1: no sync reads it */
	int *key_slots;   /* the key columns: a row's events keep their order */
	int *new_idx;     /* per slot: index in the last after-image, or -1 */
	int *old_idx;     /* per slot: index in the last before-image, or -1 */
	ap_sync *syncs;
	zdm_cdc_apply *decided; /* per sync, for the event at hand */
	size_t nsyncs;
} ap_table;

/* What one sent statement was for: a failure names it. */
typedef struct ap_sent {
	size_t first,
		last; /* the changes in its set; first (size_t)-1: BEGIN */
	size_t n;
	size_t table;
	size_t sync;
	bool reverse;
} ap_sent;

struct zdm_cdc_applier {
	PGconn *conn;
	const zdm_cdc_plan *cdc;
	bool lsn_positions;
	ap_table *tables;
	size_t ntables;
	size_t last_table; /* the table of the last event: usually the next */
	ap_sent *sent;
	size_t nsent;   /* since the last Sync */
	size_t pending; /* events in the sets, not sent yet */
	uint64_t *keys; /* hashes of the (table, key) in the sets; 0 empty */
	char lock_timeout_sql[80]; /* SET LOCAL lock_timeout, each batch */
	size_t nkeys;
	/* every xid before this one has ended: the xmin of the last snapshot
	 * taken to wait for writers (0: none taken yet) */
	uint32_t ended_before;
	bool in_txn;
	/* the batch is being redone one event at a time, each statement in a
	 * savepoint, because a statement failed on an event's values */
	bool careful;
	zdm_strbuf notes; /* zdm_cdc_applier_notes */
	zdm_cdc_apply_stats stats;
	/* zdm_cdc_applier_set_idle */
	int (*idle)(void *arg, zdm_error *err);
	void *idle_arg;
};

static const char ap_pending_column[] = "zdm_sync_pending";

/* ---- small helpers ----------------------------------------------------- */

static const char *
ap_op_name(zdm_cdc_op op)
{
	switch (op) {
	case ZDM_CDC_INSERT:
		return "INSERT";
	case ZDM_CDC_UPDATE:
		return "UPDATE";
	case ZDM_CDC_DELETE:
		return "DELETE";
	case ZDM_CDC_TRUNCATE:
		return "TRUNCATE";
	}
	return "change";
}

static void
ap_position(const zdm_cdc_applier *a, zdm_cdc_position pos, char *buf,
            size_t len)
{
	if (a->lsn_positions)
		snprintf(buf, len, "LSN %X/%X", (unsigned)(pos.offset >> 32),
		         (unsigned)pos.offset);
	else
		snprintf(buf, len, "partition %d offset %" PRIu64,
		         (int)pos.partition, pos.offset);
}

/* The slot of name in t, added when new; -1 out of memory. */
static int
ap_slot(ap_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nslots; i++)
		if (strcmp(t->slot_names[i], name) == 0)
			return (int)i;
	if (t->nslots == t->slot_cap) {
		size_t cap = t->slot_cap ? t->slot_cap * 2 : 8;
		char **grown = realloc(t->slot_names, cap * sizeof(char *));

		if (grown == NULL)
			return -1;
		t->slot_names = grown;
		t->slot_cap = cap;
	}
	t->slot_names[t->nslots] = (char *)name;
	return (int)t->nslots++;
}

static int
ap_slots(ap_table *t, char **names, size_t n, int **out)
{
	size_t i;

	*out = calloc(n ? n : 1, sizeof(int));
	if (*out == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (((*out)[i] = ap_slot(t, names[i])) < 0)
			return -1;
	return 0;
}

static int
ap_rules(ap_table *t, const zdm_cdc_rule *rules, size_t n, ap_rule **out)
{
	size_t i;

	*out = calloc(n ? n : 1, sizeof(ap_rule));
	if (*out == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		ap_rule *r = &(*out)[i];

		r->cond = rules[i].cond;
		r->apply = rules[i].apply;
		if (r->cond == ZDM_CDC_COND_PENDING) {
			r->slots = malloc(sizeof(int));
			if (r->slots == NULL)
				return -1;
			r->slots[0] = ap_slot(t, ap_pending_column);
			if (r->slots[0] < 0)
				return -1;
			r->nslots = 1;
		} else if (r->cond != ZDM_CDC_COND_ALWAYS) {
			if (ap_slots(t, rules[i].columns, rules[i].ncolumns,
			             &r->slots) != 0)
				return -1;
			r->nslots = rules[i].ncolumns;
		}
	}
	return 0;
}

static int
ap_prepare(zdm_cdc_applier *a, const zdm_cdc_table *t, const zdm_cdc_sync *s,
           const char *name, const char *sql, int nparams, const char *which,
           zdm_error *err)
{
	PGresult *res = PQprepare(a->conn, name, sql, nparams, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		zdm_error tmp;

		zdm_error_from_result(&tmp, res, a->conn);
		PQclear(res);
		zdm_error_set(err,
		              "table %s, change at %s: the %s statement cannot "
		              "be prepared: %s",
		              t->table, s->at, which, tmp.message);
		memcpy(err->sqlstate, tmp.sqlstate, sizeof(err->sqlstate));
		/* a long statement is cut: the plan has it whole */
		if (snprintf(err->detail, sizeof(err->detail),
		             "%s%sstatement: %s", tmp.detail,
		             tmp.detail[0] ? "\n" : "",
		             sql) >= (int)sizeof(err->detail))
			memcpy(err->detail + sizeof(err->detail) - 4, "...", 4);
		memcpy(err->hint, tmp.hint, sizeof(err->hint));
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---- setup ------------------------------------------------------------- */

/* lock_timeout for the batches: half of deadlock_timeout, at least 10 ms
 * (see the opening comment). */
static int
ap_lock_timeout(zdm_cdc_applier *a, zdm_error *err)
{
	PGresult *res;
	long ms;

	if (zdm_conn_query(
		    a->conn,
		    "SELECT (EXTRACT(epoch FROM pg_catalog.current_setting("
		    "'deadlock_timeout')::pg_catalog.interval) * 1000)"
		    "::pg_catalog.int8",
		    0, NULL, &res, err) != 0)
		return -1;
	ms = strtol(PQgetvalue(res, 0, 0), NULL, 10) / 2;
	PQclear(res);
	snprintf(a->lock_timeout_sql, sizeof(a->lock_timeout_sql),
	         "SET LOCAL lock_timeout = '%ldms'", ms < 10 ? 10 : ms);
	return 0;
}

/*
 * Which params of s are json or jsonb columns (a domain over them too):
 * their text is put into the events' JSON as JSON, since
 * jsonb_populate_record would keep a JSON string as a string.
 */
static int
ap_json_params(zdm_cdc_applier *a, const zdm_cdc_table *ct, ap_sync *s,
               zdm_error *err)
{
	const char *params[1] = {ct->table};
	PGresult *res;
	size_t i;
	int r;

	s->param_json =
		calloc(s->sync->nparams ? s->sync->nparams : 1, sizeof(bool));
	if (s->param_json == NULL) {
		zdm_error_set(err,
		              "out of memory preparing the change applier");
		return -1;
	}
	if (zdm_conn_query(a->conn,
	                   "SELECT a.attname FROM pg_catalog.pg_attribute a"
	                   "  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
	                   " WHERE a.attrelid = $1::pg_catalog.regclass"
	                   "   AND a.attnum > 0 AND NOT a.attisdropped"
	                   "   AND CASE WHEN t.typtype = 'd' THEN t.typbasetype"
	                   "            ELSE t.oid END IN"
	                   "       ('pg_catalog.json'::pg_catalog.regtype,"
	                   "        'pg_catalog.jsonb'::pg_catalog.regtype)",
	                   1, params, &res, err) != 0)
		return -1;
	for (r = 0; r < PQntuples(res); r++)
		for (i = 0; i < s->sync->nparams; i++)
			if (strcmp(s->sync->params[i], PQgetvalue(res, r, 0)) ==
			    0)
				s->param_json[i] = true;
	PQclear(res);
	return 0;
}

/* Does a sync of table ct read the backfill marker, as a parameter or in a
 * rule (a column replacement's sync does; split table's has no marker)? */
static bool
ap_reads_marker(const zdm_cdc_table *ct)
{
	for (size_t si = 0; si < ct->nsyncs; si++) {
		const zdm_cdc_sync *cs = &ct->syncs[si];

		for (size_t pi = 0; pi < cs->nparams; pi++)
			if (strcmp(cs->params[pi], ap_pending_column) == 0)
				return true;
		for (size_t ri = 0; ri < cs->non_insert; ri++)
			if (cs->on_insert[ri].cond == ZDM_CDC_COND_PENDING)
				return true;
		for (size_t ri = 0; ri < cs->non_update; ri++)
			if (cs->on_update[ri].cond == ZDM_CDC_COND_PENDING)
				return true;
	}
	return false;
}

int
zdm_cdc_applier_new(zdm_cdc_applier **out, PGconn *conn,
                    const zdm_cdc_plan *cdc, bool lsn_positions, zdm_error *err)
{
	zdm_cdc_applier *a;
	size_t ti, si;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto oom;
	a->conn = conn;
	a->cdc = cdc;
	a->lsn_positions = lsn_positions;
	a->ntables = cdc->ntables;
	a->tables = calloc(cdc->ntables ? cdc->ntables : 1, sizeof(ap_table));
	a->sent = calloc(AP_SENT + 1, sizeof(ap_sent));
	a->nkeys = AP_KEYS;
	a->keys = calloc(a->nkeys, sizeof(uint64_t));
	if (a->tables == NULL || a->sent == NULL || a->keys == NULL)
		goto oom;
	if (ap_lock_timeout(a, err) != 0)
		goto fail;
	for (ti = 0; ti < cdc->ntables; ti++) {
		const zdm_cdc_table *ct = &cdc->tables[ti];
		ap_table *t = &a->tables[ti];

		t->table = ct;
		t->nsyncs = ct->nsyncs;
		t->syncs = calloc(ct->nsyncs ? ct->nsyncs : 1, sizeof(ap_sync));
		t->decided = calloc(ct->nsyncs ? ct->nsyncs : 1,
		                    sizeof(zdm_cdc_apply));
		if (t->syncs == NULL || t->decided == NULL)
			goto oom;
		for (si = 0; si < ct->nsyncs; si++) {
			const zdm_cdc_sync *cs = &ct->syncs[si];
			ap_sync *s = &t->syncs[si];

			s->sync = cs;
			if (ap_slots(t, cs->params, cs->nparams,
			             &s->param_slots) != 0 ||
			    ap_slots(t, cs->touched, cs->ntouched,
			             &s->touched_slots) != 0 ||
			    ap_rules(t, cs->on_insert, cs->non_insert,
			             &s->on_insert) != 0 ||
			    ap_rules(t, cs->on_update, cs->non_update,
			             &s->on_update) != 0)
				goto oom;
			if (ap_json_params(a, ct, s, err) != 0)
				goto fail;
			snprintf(s->fwd_name, sizeof(s->fwd_name),
			         "zdm_cdc_forward_%zu_%zu", ti, si);
			snprintf(s->rev_name, sizeof(s->rev_name),
			         "zdm_cdc_reverse_%zu_%zu", ti, si);
			if (ap_prepare(a, ct, cs, s->fwd_name, cs->forward, 1,
			               "forward", err) != 0)
				goto fail;
			if (cs->reverse != NULL &&
			    ap_prepare(a, ct, cs, s->rev_name, cs->reverse, 1,
			               "reverse", err) != 0)
				goto fail;
			if (cs->unconvertible != NULL) {
				snprintf(s->unc_name, sizeof(s->unc_name),
				         "zdm_cdc_unconvertible_%zu_%zu", ti,
				         si);
				if (ap_prepare(a, ct, cs, s->unc_name,
				               cs->unconvertible, 1,
				               "unconvertible", err) != 0)
					goto fail;
			}
		}
		/* the backfill marker, where a sync reads it (a column
		 * replacement's); a table without one (split table's) has
		 * none to miss in its events */
		t->pending_slot = -1;
		if (ap_reads_marker(ct) &&
		    (t->pending_slot = ap_slot(t, ap_pending_column)) < 0)
			goto oom;
		if (ap_slots(t, ct->key, ct->nkey, &t->key_slots) != 0)
			goto oom;
		t->new_idx = malloc((t->nslots ? t->nslots : 1) * sizeof(int));
		t->old_idx = malloc((t->nslots ? t->nslots : 1) * sizeof(int));
		if (t->new_idx == NULL || t->old_idx == NULL)
			goto oom;
		for (si = 0; si < t->nslots; si++)
			t->new_idx[si] = t->old_idx[si] = -1;
	}
	*out = a;
	return 0;
oom:
	zdm_error_set(err, "out of memory preparing the change applier");
fail:
	zdm_cdc_applier_free(a);
	return -1;
}

void
zdm_cdc_applier_free(zdm_cdc_applier *a)
{
	size_t ti, si, i;

	if (a == NULL)
		return;
	for (ti = 0; a->tables && ti < a->ntables; ti++) {
		ap_table *t = &a->tables[ti];

		for (si = 0; t->syncs && si < t->nsyncs; si++) {
			ap_sync *s = &t->syncs[si];

			free(s->param_slots);
			free(s->param_json);
			zdm_strbuf_free(&s->fwd_set.json);
			zdm_strbuf_free(&s->rev_set.json);
			free(s->touched_slots);
			for (i = 0; s->on_insert && i < s->sync->non_insert;
			     i++)
				free(s->on_insert[i].slots);
			for (i = 0; s->on_update && i < s->sync->non_update;
			     i++)
				free(s->on_update[i].slots);
			free(s->on_insert);
			free(s->on_update);
		}
		free(t->syncs);
		free(t->decided);
		free(t->key_slots);
		free(t->slot_names);
		free(t->new_idx);
		free(t->old_idx);
	}
	free(a->tables);
	free(a->keys);
	free(a->sent);
	zdm_strbuf_free(&a->notes);
	free(a);
}

void
zdm_cdc_applier_stats(const zdm_cdc_applier *a, zdm_cdc_apply_stats *out)
{
	*out = a->stats;
}

/* ---- one event --------------------------------------------------------- */

/* Where each slot's column is in cols (hint: where it was last time). */
static void
ap_match(const ap_table *t, const zdm_cdc_column *cols, size_t n, int *idx)
{
	size_t s, j;

	for (s = 0; s < t->nslots; s++) {
		int h = idx[s];

		if (h >= 0 && (size_t)h < n &&
		    strcmp(cols[h].name, t->slot_names[s]) == 0)
			continue;
		idx[s] = -1;
		for (j = 0; j < n; j++)
			if (strcmp(cols[j].name, t->slot_names[s]) == 0) {
				idx[s] = (int)j;
				break;
			}
	}
}

/* The event as the rules see it, its columns matched to the table's slots. */
typedef struct ap_event {
	const zdm_cdc_applier *a;
	const ap_table *t;
	const zdm_cdc_change *c;
} ap_event;

static int
ap_event_fail(const ap_event *ev, zdm_error *err, const char *column,
              const char *what)
{
	char pos[64];

	ap_position(ev->a, ev->c->position, pos, sizeof(pos));
	zdm_error_set(err, "table %s, column %s: the %s at %s %s",
	              ev->t->table->table, column, ap_op_name(ev->c->op), pos,
	              what);
	return -1;
}

/*
 * The after-image value of slot s (an unchanged TOASTed value from the
 * before-image).  0 with *value (NULL for SQL NULL), -1 with err when the
 * event carries no value for it.
 */
static int
ap_value(const ap_event *ev, int s, const char **value, zdm_error *err)
{
	int ni = ev->t->new_idx[s], oi = ev->t->old_idx[s];

	if (ni >= 0 && !ev->c->new_cols[ni].unchanged_toast) {
		*value = ev->c->new_cols[ni].value;
		return 0;
	}
	if (oi >= 0 && !ev->c->old_cols[oi].unchanged_toast) {
		*value = ev->c->old_cols[oi].value;
		return 0;
	}
	return ap_event_fail(
		ev, err, ev->t->slot_names[s],
		ni >= 0 ? "carries an unchanged TOASTed value and no "
			  "before-image of it"
			: "carries no value for it (not in its after-image "
			  "nor its before-image)");
}

/*
 * Whether the event set slot s: always on INSERT; on UPDATE when its after
 * text differs from its before text.  -1 when the before-image lacks it.
 */
static int
ap_changed(const ap_event *ev, int s, bool *changed, zdm_error *err)
{
	int ni = ev->t->new_idx[s], oi = ev->t->old_idx[s];
	const char *nv, *ov;

	if (ev->c->op != ZDM_CDC_UPDATE) {
		*changed = true;
		return 0;
	}
	if (ni >= 0 && ev->c->new_cols[ni].unchanged_toast) {
		*changed = false;
		return 0;
	}
	if (oi < 0) {
		ap_event_fail(ev, err, ev->t->slot_names[s],
		              "has no before-image of it, which is needed to "
		              "tell whether it changed");
		snprintf(
			err->hint, sizeof(err->hint),
			"the table needs REPLICA IDENTITY FULL (the plan's "
			"expand sets it): ALTER TABLE %s REPLICA IDENTITY FULL",
			ev->t->table->table);
		return -1;
	}
	if (ni < 0)
		return ap_event_fail(ev, err, ev->t->slot_names[s],
		                     "has no after-image of it");
	if (ev->c->old_cols[oi].unchanged_toast) {
		/* cannot compare: say changed, the guard decides */
		*changed = true;
		return 0;
	}
	nv = ev->c->new_cols[ni].value;
	ov = ev->c->old_cols[oi].value;
	*changed = (nv == NULL) != (ov == NULL) ||
	           (nv != NULL && strcmp(nv, ov) != 0);
	return 0;
}

/* Does rule r hold for the event?  -1 with err when it cannot be told. */
static int
ap_holds(const ap_event *ev, const ap_rule *r, bool *holds, zdm_error *err)
{
	size_t i;
	const char *v;
	bool b;

	*holds = false;
	switch (r->cond) {
	case ZDM_CDC_COND_ALWAYS:
		*holds = true;
		return 0;
	case ZDM_CDC_COND_CHANGED:
		for (i = 0; i < r->nslots && !*holds; i++) {
			if (ap_changed(ev, r->slots[i], &b, err) != 0)
				return -1;
			*holds = b;
		}
		return 0;
	case ZDM_CDC_COND_NOT_NULL:
		for (i = 0; i < r->nslots && !*holds; i++) {
			int ni = ev->t->new_idx[r->slots[i]];

			/* a TOASTed value is never NULL */
			if (ni >= 0 && ev->c->new_cols[ni].unchanged_toast) {
				*holds = true;
				continue;
			}
			if (ap_value(ev, r->slots[i], &v, err) != 0)
				return -1;
			*holds = v != NULL;
		}
		return 0;
	case ZDM_CDC_COND_PENDING:
		if (ap_value(ev, r->slots[0], &v, err) != 0)
			return -1;
		*holds = v != NULL &&
		         (strcmp(v, "t") == 0 || strcmp(v, "true") == 0);
		return 0;
	}
	return 0;
}

/* ---- the pipeline ------------------------------------------------------ */

static void
ap_exec_fail(const zdm_cdc_applier *a, const zdm_cdc_change *changes,
             const ap_sent *s, PGresult *res, zdm_error *err)
{
	const ap_table *t = &a->tables[s->table];
	const ap_sync *sy = &t->syncs[s->sync];
	zdm_error tmp;
	char pos[64];

	char last[64];

	zdm_error_from_result(&tmp, res, a->conn);
	ap_position(a, changes[s->first].position, pos, sizeof(pos));
	if (s->n == 1) {
		zdm_error_set(
			err,
			"table %s, change at %s: the %s statement for the "
			"%s at %s failed: %s",
			t->table->table, sy->sync->at,
			s->reverse ? "reverse" : "forward",
			ap_op_name(changes[s->first].op), pos, tmp.message);
	} else {
		ap_position(a, changes[s->last].position, last, sizeof(last));
		zdm_error_set(
			err,
			"table %s, change at %s: the %s statement for %zu "
			"changes from %s to %s failed: %s",
			t->table->table, sy->sync->at,
			s->reverse ? "reverse" : "forward", s->n, pos, last,
			tmp.message);
	}
	memcpy(err->sqlstate, tmp.sqlstate, sizeof(err->sqlstate));
	memcpy(err->detail, tmp.detail, sizeof(err->detail));
	memcpy(err->hint, tmp.hint, sizeof(err->hint));
}

/*
 * Until a result can be read without blocking: with an idle hook, wait for
 * the connection AP_IDLE_NS at a time and call the hook in between.
 * Without one, PQgetResult simply blocks.  On a timer, not on the other
 * stream's fd: that fd turns readable for every message the walsender
 * sends, and a wake-up per message cost the walsender and zdm sync more
 * CPU than the messages.
 */
static int
ap_await(zdm_cdc_applier *a, zdm_error *err)
{
	const struct timespec every = {0, AP_IDLE_NS};
	struct pollfd pfd;
	bool call = a->idle != NULL;
	int rc;

	while (call && PQisBusy(a->conn)) {
		pfd.fd = PQsocket(a->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = ppoll(&pfd, 1, &every, NULL);
		if (rc < 0 && errno != EINTR) {
			zdm_error_set(err, "waiting for the apply results: %s",
			              strerror(errno));
			return -1;
		}
		if (rc > 0 && PQconsumeInput(a->conn) == 0)
			return 0; /* PQgetResult reports the broken connection */
		if (rc == 0) {
			switch (a->idle(a->idle_arg, err)) {
			case -1:
				return -1;
			case 1:
				call = false;
				break;
			}
		}
	}
	return 0;
}

/*
 * Sync, then read the results of everything sent since the last Sync.  The
 * first failure goes to err (later statements come back aborted).  With
 * xid_query, the last result sent is the transaction id query.
 */
static int
ap_drain(zdm_cdc_applier *a, const zdm_cdc_change *changes, bool xid_query,
         uint64_t *xid, zdm_error *err)
{
	PGresult *res;
	size_t i;
	int rc = 0;
	bool failed = false;

	if (PQpipelineSync(a->conn) != 1) {
		zdm_error_from_result(err, NULL, a->conn);
		a->nsent = 0;
		return -1;
	}
	for (i = 0; i < a->nsent + (xid_query ? 1 : 0); i++) {
		ExecStatusType st;

		if (ap_await(a, err) != 0) {
			a->nsent = 0;
			return -1;
		}
		res = PQgetResult(a->conn);
		if (res == NULL) {
			/* the connection is gone */
			if (!failed)
				zdm_error_from_result(err, NULL, a->conn);
			a->nsent = 0;
			return -1;
		}
		st = PQresultStatus(res);
		if (i == a->nsent) {
			/* the xid query */
			if (st == PGRES_TUPLES_OK) {
				*xid = PQgetisnull(res, 0, 0)
				               ? 0
				               : strtoull(PQgetvalue(res, 0, 0),
				                          NULL, 10);
			} else if (!failed && st != PGRES_PIPELINE_ABORTED) {
				zdm_error_from_result(err, res, a->conn);
				failed = true;
			}
		} else if (st == PGRES_COMMAND_OK) {
			/* rows changed; the guards held for the others */
			if (a->sent[i].first != (size_t)-1) {
				a->stats.statements += a->sent[i].n;
				a->stats.applied +=
					strtoull(PQcmdTuples(res), NULL, 10);
			}
		} else if (!failed && st != PGRES_PIPELINE_ABORTED) {
			if (a->sent[i].first == (size_t)-1)
				zdm_error_from_result(err, res, a->conn);
			else
				ap_exec_fail(a, changes, &a->sent[i], res, err);
			failed = true;
		}
		PQclear(res);
		/* each query's results end with a NULL */
		res = PQgetResult(a->conn);
		if (res != NULL) {
			PQclear(res);
			if (!failed) {
				zdm_error_set(err, "unexpected extra result in "
				                   "the apply pipeline");
				failed = true;
			}
		}
	}
	res = PQgetResult(a->conn);
	if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		if (!failed)
			zdm_error_from_result(err, res, a->conn);
		failed = true;
	}
	PQclear(res);
	a->nsent = 0;
	if (failed)
		rc = -1;
	return rc;
}

/*
 * A statement failed on the values of the events it was given, not on the
 * database: a using or reverse using that cannot convert what a client
 * wrote (data exceptions, integrity violations, a RAISE), as backfill.c
 * judges a batch.
 */
static bool
ap_data_error(const char *sqlstate)
{
	return strncmp(sqlstate, "22", 2) == 0 ||
	       strncmp(sqlstate, "23", 2) == 0 ||
	       strncmp(sqlstate, "P0", 2) == 0;
}

/* "id=7" (every key column), for a note; "" when a value is missing. */
static void
ap_key_text(const zdm_cdc_applier *a, const zdm_cdc_change *c,
            const ap_table *t, char *buf, size_t len)
{
	ap_event ev = {a, t, c};
	zdm_error ignored;
	size_t used = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < t->table->nkey && used < len; k++) {
		const char *v;

		if (ap_value(&ev, t->key_slots[k], &v, &ignored) != 0)
			return;
		used += (size_t)snprintf(buf + used, len - used, "%s%s=%s",
		                         k ? ", " : "", t->table->key[k],
		                         v ? v : "NULL");
	}
}

/*
 * The careful path (a->careful): one event's statement, run at once in a
 * savepoint.  When it fails on the event's values, the savepoint is rolled
 * back and the event is left as the trigger's guard leaves such a write:
 * a forward statement's row gets the plan's unconvertible statement (new
 * columns NULL, pending: verify lists it), a reverse statement's row keeps
 * its old columns.  Either way a note names it, and the batch goes on.
 */
static int
ap_send_careful(zdm_cdc_applier *a, const zdm_cdc_change *changes, ap_sent what,
                const char *name, const char *param, zdm_error *err)
{
	const ap_table *t = &a->tables[what.table];
	const ap_sync *s = &t->syncs[what.sync];
	char key[256];
	PGresult *res;
	zdm_error failed;

	if (!a->in_txn) {
		if (zdm_conn_exec(a->conn, "BEGIN", err) != 0)
			return -1;
		a->in_txn = true;
		if (zdm_conn_exec(a->conn, a->lock_timeout_sql, err) != 0)
			return -1;
	}
	if (zdm_conn_exec(a->conn, "SAVEPOINT zdm_event", err) != 0)
		return -1;
	res = PQexecPrepared(a->conn, name, 1, &param, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		a->stats.statements += what.n;
		a->stats.applied += strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		return zdm_conn_exec(a->conn, "RELEASE SAVEPOINT zdm_event",
		                     err);
	}
	ap_exec_fail(a, changes, &what, res, err);
	PQclear(res);
	if (!ap_data_error(err->sqlstate) ||
	    (!what.reverse && s->unc_name[0] == '\0'))
		return -1;
	failed = *err;
	if (zdm_conn_exec(a->conn, "ROLLBACK TO SAVEPOINT zdm_event", err) != 0)
		return -1;
	if (!what.reverse) {
		res = PQexecPrepared(a->conn, s->unc_name, 1, &param, NULL,
		                     NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			/* e.g. the new column is NOT NULL by now: then this
			 * write cannot be kept either, and zdm sync stops
			 * with the conversion's error */
			PQclear(res);
			*err = failed;
			return -1;
		}
		PQclear(res);
	}
	a->stats.unconverted++;
	ap_key_text(a, &changes[what.first], t, key, sizeof(key));
	zdm_strbuf_printf(
		&a->notes, "%s (%s): %s; %s\n", key, failed.sqlstate,
		failed.message,
		what.reverse ? "its old columns are left as they were"
			     : "the row is left pending with its new columns "
			       "NULL, and verify lists it");
	return zdm_conn_exec(a->conn, "RELEASE SAVEPOINT zdm_event", err);
}

/* Send one statement with $1 = param; drains every AP_SENT statements.
 * The BEGIN that opens the transaction is sent first, recorded with first
 * (size_t)-1.  In careful mode, runs it at once (ap_send_careful). */
static int
ap_send(zdm_cdc_applier *a, const zdm_cdc_change *changes, ap_sent what,
        const char *name, const char *param, zdm_error *err)
{
	if (a->careful)
		return ap_send_careful(a, changes, what, name, param, err);
	if (!a->in_txn) {
		if (PQenterPipelineMode(a->conn) != 1) {
			zdm_error_from_result(err, NULL, a->conn);
			return -1;
		}
		a->in_txn = true;
		a->sent[0].first = a->sent[1].first = (size_t)-1;
		a->nsent = 2;
		if (PQsendQueryParams(a->conn, "BEGIN", 0, NULL, NULL, NULL,
		                      NULL, 0) != 1 ||
		    PQsendQueryParams(a->conn, a->lock_timeout_sql, 0, NULL,
		                      NULL, NULL, NULL, 0) != 1) {
			zdm_error_from_result(err, NULL, a->conn);
			return -1;
		}
	}
	if (PQsendQueryPrepared(a->conn, name, 1, &param, NULL, NULL, 0) != 1) {
		zdm_error_from_result(err, NULL, a->conn);
		return -1;
	}
	a->sent[a->nsent++] = what;
	if (a->nsent >= AP_SENT)
		return ap_drain(a, changes, false, NULL, err);
	return 0;
}

/*
 * Whether slot s was already set by a new-version write the sync has not
 * applied yet: the before-image shows the row pending (never backfilled nor
 * synced) with a value in s.  On a pending row only a new-version client
 * fills a new column (the backfill and the sync clear pending), so that
 * value is an earlier write of the same row, e.g. in the same transaction,
 * whose own reverse statement found the row already moved on.  The trigger
 * merged that write at once; reverse must keep it too, not compute it.
 */
static bool
ap_touched_before(const ap_event *ev, int s)
{
	int pi = ev->t->pending_slot < 0 ? -1
	                                 : ev->t->old_idx[ev->t->pending_slot];
	int oi = ev->t->old_idx[s];
	const zdm_cdc_column *pending, *col;

	if (ev->c->op != ZDM_CDC_UPDATE || pi < 0 || oi < 0)
		return false;
	pending = &ev->c->old_cols[pi];
	col = &ev->c->old_cols[oi];
	return pending->value != NULL &&
	       (strcmp(pending->value, "t") == 0 ||
	        strcmp(pending->value, "true") == 0) &&
	       (col->unchanged_toast || col->value != NULL);
}

/* ---- the sets ---------------------------------------------------------- */

static int
ap_set_put(ap_set *set, const char *text, size_t len)
{
	return zdm_strbuf_put(&set->json, text, len);
}

static int
ap_set_puts(ap_set *set, const char *text)
{
	return zdm_strbuf_puts(&set->json, text);
}

/* text as a JSON string (UTF-8 passes through: the server sends UTF-8) */
static int
ap_set_string(ap_set *set, const char *text)
{
	const char *run = text, *p;
	char esc[8];

	if (ap_set_put(set, "\"", 1) != 0)
		return -1;
	for (p = text; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		if (ap_set_put(set, run, (size_t)(p - run)) != 0)
			return -1;
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof(esc), "\\%c", ch);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
		if (ap_set_puts(set, esc) != 0)
			return -1;
		run = p + 1;
	}
	if (ap_set_put(set, run, (size_t)(p - run)) != 0)
		return -1;
	return ap_set_put(set, "\"", 1);
}

/*
 * The event as one element of its set: the params by name, and for reverse
 * the touched flags: set by this event, or by an earlier one not yet merged
 * (ap_touched_before).
 */
static int
ap_set_add(zdm_cdc_applier *a, const ap_event *ev, const ap_sync *s,
           ap_set *set, size_t ci, bool reverse, zdm_error *err)
{
	const char *v;
	size_t i;
	bool b;
	int ok = 0;

	ok |= ap_set_puts(set, set->n ? ",{" : "[{");
	for (i = 0; i < s->sync->nparams; i++) {
		if (ap_value(ev, s->param_slots[i], &v, err) != 0)
			return -1;
		ok |= ap_set_puts(set, i ? "," : "");
		ok |= ap_set_string(set, s->sync->params[i]);
		ok |= ap_set_puts(set, ":");
		if (v == NULL)
			ok |= ap_set_puts(set, "null");
		else if (s->param_json[i])
			ok |= ap_set_puts(set, v);
		else
			ok |= ap_set_string(set, v);
	}
	if (reverse) {
		ok |= ap_set_puts(set, ",\"zdm_touched\":{");
		for (i = 0; i < s->sync->ntouched; i++) {
			if (ap_changed(ev, s->touched_slots[i], &b, err) != 0)
				return -1;
			b = b || ap_touched_before(ev, s->touched_slots[i]);
			ok |= ap_set_puts(set, i ? "," : "");
			ok |= ap_set_string(set, s->sync->touched[i]);
			ok |= ap_set_puts(set, b ? ":true" : ":false");
		}
		ok |= ap_set_puts(set, "}");
	}
	ok |= ap_set_puts(set, "}");
	if (ok != 0) {
		zdm_error_set(err, "out of memory applying changes");
		return -1;
	}
	if (set->n == 0)
		set->first = ci;
	set->last = ci;
	set->n++;
	a->pending++;
	return 0;
}

/* Send every set that has events, table by table, each table's syncs in
 * plan order; forget the keys. */
static int
ap_flush(zdm_cdc_applier *a, const zdm_cdc_change *changes, zdm_error *err)
{
	size_t ti, si;
	int r, rc;

	for (ti = 0; ti < a->ntables; ti++) {
		ap_table *t = &a->tables[ti];

		for (si = 0; si < t->nsyncs; si++) {
			ap_sync *s = &t->syncs[si];

			for (r = 0; r < 2; r++) {
				ap_set *set = r ? &s->rev_set : &s->fwd_set;
				ap_sent what;

				if (set->n == 0)
					continue;
				if (ap_set_puts(set, "]") != 0) {
					zdm_error_set(err, "out of memory "
					                   "applying changes");
					return -1;
				}
				what.first = set->first;
				what.last = set->last;
				what.n = set->n;
				what.table = ti;
				what.sync = si;
				what.reverse = r == 1;
				set->n = 0;
				rc = ap_send(a, changes, what,
				             r ? s->rev_name : s->fwd_name,
				             set->json.data, err);
				zdm_strbuf_reset(&set->json);
				if (rc != 0)
					return -1;
			}
		}
	}
	if (a->pending > 0)
		memset(a->keys, 0, a->nkeys * sizeof(uint64_t));
	a->pending = 0;
	return 0;
}

/* Forget what the sets hold (after a failure). */
static void
ap_sets_clear(zdm_cdc_applier *a)
{
	size_t ti, si;

	for (ti = 0; ti < a->ntables; ti++)
		for (si = 0; si < a->tables[ti].nsyncs; si++) {
			a->tables[ti].syncs[si].fwd_set.n = 0;
			zdm_strbuf_reset(&a->tables[ti].syncs[si].fwd_set.json);
			a->tables[ti].syncs[si].rev_set.n = 0;
			zdm_strbuf_reset(&a->tables[ti].syncs[si].rev_set.json);
		}
	if (a->pending > 0)
		memset(a->keys, 0, a->nkeys * sizeof(uint64_t));
	a->pending = 0;
}

/* FNV-1a over the table and the event's key values; never 0. */
static int
ap_key_hash(const ap_event *ev, uint64_t *hash, zdm_error *err)
{
	const ap_table *t = ev->t;
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;
	const char *v;
	size_t i;

	h = (h ^ (uint64_t)(t - ev->a->tables)) * 1099511628211ULL;
	for (i = 0; i < t->table->nkey; i++) {
		if (ap_value(ev, t->key_slots[i], &v, err) != 0)
			return -1;
		h = (h ^ (v ? 0x01u : 0x02u)) * 1099511628211ULL;
		for (p = (const unsigned char *)(v ? v : ""); *p; p++)
			h = (h ^ *p) * 1099511628211ULL;
	}
	*hash = h ? h : 1;
	return 0;
}

/* Is h among the keys in the sets?  Adds it when not. */
static bool
ap_key_seen(zdm_cdc_applier *a, uint64_t h)
{
	size_t i = (size_t)h & (a->nkeys - 1);

	while (a->keys[i] != 0) {
		if (a->keys[i] == h)
			return true;
		i = (i + 1) & (a->nkeys - 1);
	}
	a->keys[i] = h;
	return false;
}

/* ---- waiting for the writers ------------------------------------------- */

/* a precedes b, modulo 2^32, as PostgreSQL compares normal xids */
static bool
ap_xid_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* Is x in the comma-separated xip list of a snapshot's text? */
static bool
ap_xip_has(const char *xip, uint32_t x)
{
	char *end;

	while (*xip != '\0') {
		if ((uint32_t)strtoull(xip, &end, 10) == x)
			return true;
		if (end == xip)
			return false;
		xip = *end == ',' ? end + 1 : end;
	}
	return false;
}

/* The first change from i on whose writer may still run: not ours, with an
 * xid, not before a->ended_before.  n when none. */
static size_t
ap_next_unsettled(const zdm_cdc_applier *a, const zdm_cdc_change *changes,
                  size_t i, size_t n)
{
	for (; i < n; i++) {
		uint32_t x = changes[i].xid;

		if (x == 0 || changes[i].own_write)
			continue;
		if (a->ended_before != 0 && ap_xid_before(x, a->ended_before))
			continue;
		return i;
	}
	return n;
}

/*
 * 1 when every transaction that wrote changes[0..n) has ended for a new
 * snapshot (see the opening comment), 0 when one is still running after
 * AP_VISIBLE_WAIT_MS (its xid in stats.waiting_xid), -1 with err.
 */
static int
ap_wait_writers(zdm_cdc_applier *a, const zdm_cdc_change *changes, size_t n,
                zdm_error *err)
{
	double deadline = 0;
	long sleep_ms = 1;

	a->stats.waiting_xid = 0;
	for (;;) {
		size_t i = ap_next_unsettled(a, changes, 0, n);
		uint32_t xmin, xmax = 0, prev = 0, running = 0;
		const char *snap;
		char *end;
		PGresult *res;

		if (i == n)
			return 1;
		res = PQexec(a->conn,
		             "SELECT pg_catalog.pg_current_snapshot()::text");
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    PQntuples(res) != 1) {
			zdm_error_from_result(err, res, a->conn);
			PQclear(res);
			return -1;
		}
		/* xmin:xmax:xip,... with 64-bit ids; the low 32 bits are the
		 * xid */
		snap = PQgetvalue(res, 0, 0);
		xmin = (uint32_t)strtoull(snap, &end, 10);
		if (*end == ':')
			xmax = (uint32_t)strtoull(end + 1, &end, 10);
		if (*end != ':') {
			zdm_error_set(err, "unexpected snapshot \"%s\"", snap);
			PQclear(res);
			return -1;
		}
		a->ended_before = xmin;
		for (; i < n; i = ap_next_unsettled(a, changes, i + 1, n)) {
			uint32_t x = changes[i].xid;

			if (x == prev)
				continue; /* same transaction, already settled */
			/* at or after xmax: committed in the log, not yet out
			 * of the proc array (latestCompletedXid not past it) */
			if (!ap_xid_before(x, xmax) || ap_xip_has(end + 1, x)) {
				running = x;
				break;
			}
			prev = x;
		}
		PQclear(res);
		if (running == 0)
			return 1;
		if (deadline == 0) {
			deadline = zdm_now() + AP_VISIBLE_WAIT_MS / 1000.0;
		} else if (zdm_now() >= deadline) {
			a->stats.waiting_xid = running;
			return 0;
		}
		zdm_sleep_ms(sleep_ms);
		if (sleep_ms < 8)
			sleep_ms *= 2;
	}
}

/* The table a change is for, or NULL. */
static ap_table *
ap_find_table(zdm_cdc_applier *a, const zdm_cdc_change *c)
{
	size_t i;

	for (i = 0; i < a->ntables; i++) {
		size_t k = (a->last_table + i) % a->ntables;
		const zdm_cdc_table *t = a->tables[k].table;

		if (strcmp(t->relname, c->table) == 0 &&
		    strcmp(t->nspname, c->schema) == 0) {
			a->last_table = k;
			return &a->tables[k];
		}
	}
	return NULL;
}

/* Decide and send what one change needs, every sync of its table. */
static int
ap_one(zdm_cdc_applier *a, const zdm_cdc_change *changes, size_t ci,
       zdm_error *err)
{
	const zdm_cdc_change *c = &changes[ci];
	ap_table *t;
	ap_event ev;
	size_t si, ri;
	uint64_t key;
	int deciding = 0;

	a->stats.seen++;
	if (c->own_write) {
		a->stats.own_skipped++;
		return 0;
	}
	if (c->op != ZDM_CDC_INSERT && c->op != ZDM_CDC_UPDATE) {
		a->stats.ignored++;
		return 0;
	}
	t = ap_find_table(a, c);
	if (t == NULL) {
		a->stats.ignored++;
		return 0;
	}
	ap_match(t, c->new_cols, c->nnew, t->new_idx);
	ap_match(t, c->old_cols, c->nold, t->old_idx);
	/*
	 * The slot exists before expand's table transaction, so it also holds
	 * the writes committed in between, on the table without zdm's columns
	 * (and without REPLICA IDENTITY FULL).  Such a row gets the new columns
	 * NULL and zdm_sync_pending true when expand commits, and the backfill
	 * computes it from its current values: nothing to apply.
	 */
	for (si = 0; si < t->nslots; si++) {
		if (t->new_idx[si] < 0 &&
		    strncmp(t->slot_names[si], "zdm_", 4) == 0) {
			a->stats.ignored++;
			return 0;
		}
	}
	ev.a = a;
	ev.t = t;
	ev.c = c;
	for (si = 0; si < t->nsyncs; si++) {
		const ap_sync *s = &t->syncs[si];
		const ap_rule *rules =
			c->op == ZDM_CDC_INSERT ? s->on_insert : s->on_update;
		size_t nrules = c->op == ZDM_CDC_INSERT ? s->sync->non_insert
		                                        : s->sync->non_update;
		zdm_cdc_apply apply = ZDM_CDC_APPLY_NOTHING;
		bool holds = false;

		for (ri = 0; ri < nrules; ri++) {
			if (ap_holds(&ev, &rules[ri], &holds, err) != 0)
				return -1;
			if (holds) {
				apply = rules[ri].apply;
				break;
			}
		}
		if (apply == ZDM_CDC_APPLY_REVERSE && s->sync->reverse == NULL)
			apply = ZDM_CDC_APPLY_NOTHING;
		t->decided[si] = apply;
		deciding += apply != ZDM_CDC_APPLY_NOTHING;
	}
	if (deciding == 0) {
		a->stats.ignored++;
		return 0;
	}
	/* the row already has an event in the sets: send those first */
	if (ap_key_hash(&ev, &key, err) != 0)
		return -1;
	if (ap_key_seen(a, key)) {
		if (ap_flush(a, changes, err) != 0)
			return -1;
		(void)ap_key_seen(a, key);
	}
	for (si = 0; si < t->nsyncs; si++) {
		ap_sync *s = &t->syncs[si];
		bool reverse = t->decided[si] == ZDM_CDC_APPLY_REVERSE;

		if (t->decided[si] == ZDM_CDC_APPLY_NOTHING)
			continue;
		if (ap_set_add(a, &ev, s, reverse ? &s->rev_set : &s->fwd_set,
		               ci, reverse, err) != 0)
			return -1;
	}
	/* careful: each event's statements on their own */
	if (a->pending >= (a->careful ? 1 : AP_CHUNK))
		return ap_flush(a, changes, err);
	return 0;
}

int
zdm_cdc_applier_apply(zdm_cdc_applier *a, const zdm_cdc_change *changes,
                      size_t n, uint64_t *xid, zdm_error *err)
{
	size_t i;
	zdm_error tmp;
	zdm_cdc_apply_stats before;

	if (xid)
		*xid = 0;
	if (a->in_txn) {
		zdm_error_set(err, "apply: the previous batch is neither "
		                   "committed nor rolled back");
		return -1;
	}
	switch (ap_wait_writers(a, changes, n, err)) {
	case -1:
		return -1;
	case 0:
		a->stats.writer_waits++;
		return 1;
	}
	before = a->stats;
	zdm_strbuf_reset(&a->notes);
again:
	for (i = 0; i < n; i++)
		if (ap_one(a, changes, i, err) != 0)
			goto fail;
	if (a->pending > 0 && ap_flush(a, changes, err) != 0)
		goto fail;
	if (!a->in_txn) {
		a->careful = false;
		return 0;
	}
	if (a->careful) {
		PGresult *res = PQexec(
			a->conn,
			"SELECT pg_catalog.pg_current_xact_id_if_assigned()::text");

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			zdm_error_from_result(err, res, a->conn);
			PQclear(res);
			goto fail;
		}
		if (xid && !PQgetisnull(res, 0, 0))
			*xid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		a->careful = false;
		return 0;
	}
	if (xid && PQsendQueryParams(a->conn,
	                             "SELECT pg_catalog.pg_current_xact_id_"
	                             "if_assigned()::text",
	                             0, NULL, NULL, NULL, NULL, 0) != 1) {
		zdm_error_from_result(err, NULL, a->conn);
		goto fail;
	}
	if (ap_drain(a, changes, xid != NULL, xid, err) != 0)
		goto fail;
	if (PQexitPipelineMode(a->conn) != 1) {
		zdm_error_from_result(err, NULL, a->conn);
		goto fail;
	}
	return 0;
fail:
	/* read what is still coming so the connection is usable again */
	if (a->in_txn && PQpipelineStatus(a->conn) != PQ_PIPELINE_OFF &&
	    a->nsent > 0)
		(void)ap_drain(a, changes, false, NULL, &tmp);
	ap_sets_clear(a);
	zdm_cdc_applier_rollback(a);
	/* a statement failed on some event's values: the batch again, one
	 * event at a time, so that the others are applied and that one left
	 * as the trigger's guard would leave it (ap_send_careful) */
	if (!a->careful && ap_data_error(err->sqlstate)) {
		a->careful = true;
		a->stats = before;
		zdm_error_clear(err);
		goto again;
	}
	a->careful = false;
	if (strcmp(err->sqlstate, ZDM_SQLSTATE_LOCK_NOT_AVAILABLE) == 0 ||
	    strcmp(err->sqlstate, ZDM_SQLSTATE_DEADLOCK) == 0 ||
	    strcmp(err->sqlstate, ZDM_SQLSTATE_SERIALIZATION) == 0) {
		a->stats.lock_retries++;
		memcpy(a->stats.last_retry, err->message,
		       sizeof(a->stats.last_retry) - 1);
		a->stats.last_retry[sizeof(a->stats.last_retry) - 1] = '\0';
		zdm_error_clear(err);
		return 1;
	}
	return -1;
}

void
zdm_cdc_applier_set_idle(zdm_cdc_applier *a,
                         int (*idle)(void *arg, zdm_error *err), void *arg)
{
	a->idle = idle;
	a->idle_arg = arg;
}

const char *
zdm_cdc_applier_notes(zdm_cdc_applier *a)
{
	return a->notes.data && !a->notes.failed ? a->notes.data : "";
}

int
zdm_cdc_applier_commit(zdm_cdc_applier *a, zdm_error *err)
{
	if (!a->in_txn)
		return 0;
	a->in_txn = false;
	return zdm_conn_exec(a->conn, "COMMIT", err);
}

void
zdm_cdc_applier_rollback(zdm_cdc_applier *a)
{
	zdm_error ignored;

	if (!a->in_txn)
		return;
	a->in_txn = false;
	a->nsent = 0;
	if (PQpipelineStatus(a->conn) != PQ_PIPELINE_OFF)
		(void)PQexitPipelineMode(a->conn);
	if (PQstatus(a->conn) == CONNECTION_OK)
		(void)zdm_conn_exec(a->conn, "ROLLBACK", &ignored);
}
