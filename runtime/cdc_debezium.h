/*
 * cdc_debezium.h -- the debezium CDC source: Debezium change events from a
 * Kafka topic as zdm_cdc_change records (cdc.h), through librdkafka.
 *
 * The connector settings zdm expects, why, and what it refuses are in the
 * opening comments of cdc_debezium.c (the consumer) and
 * cdc_debezium_parse.c (the event parser, declared in cdc_debezium_parse.h
 * so that tests and the fuzz target reach it without a broker).
 */
#ifndef ZDM_CDC_DEBEZIUM_H
#define ZDM_CDC_DEBEZIUM_H

#include <stddef.h>
#include <stdint.h>

#include "cdc.h"
#include "zdm.h"

typedef struct zdm_cdc_debezium_opts {
	/* e.g. "dbserver1.public.users": one topic per table, Debezium's
	 * default */
	const char *topic;
	/* the consumer group whose committed offsets are the durable
	 * position, e.g. "zdm-<migration>" */
	const char *group_id;
	/* "key=value" librdkafka settings passed through (bootstrap.servers,
	 * security.protocol, sasl.*, ssl.*, ...); NULL-terminated, may be
	 * NULL.  group.id, enable.auto.commit, enable.auto.offset.store and
	 * auto.offset.reset (error: zdm starts a new group at the beginning
	 * itself) are zdm's and refused here unless they say what zdm sets
	 * anyway. */
	const char *const *kafka_conf;
	/* optional: a dotted path into the event ("source.origin") whose
	 * value, a string beginning "zdm_", marks the change as zdm's own
	 * write; for pipelines that carry such a marker (stock Debezium does
	 * not: see zdm_cdc_debezium_own_xid) */
	const char *own_origin_field;
	/* optional: the connector's unavailable.value.placeholder; NULL means
	 * Debezium's default "__debezium_unavailable_value" */
	const char *unavailable_placeholder;
} zdm_cdc_debezium_opts;

/*
 * Open a consumer in opts->group_id subscribed to opts->topic.  The group
 * joins in the background; the first next() may return nothing for a few
 * seconds.  The caller closes *out with (*out)->ops->close.
 */
int zdm_cdc_debezium_open(zdm_cdc_source **out,
                          const zdm_cdc_debezium_opts *opts, zdm_error *err);

/*
 * Mark transaction id xid as one of zdm's own writes: every later change
 * whose source.txId is xid (compared modulo 2^32, as Debezium reports the
 * 32-bit xid) comes with own_write set.  Call it with pg_current_xact_id()
 * of the applier's transaction before its COMMIT.  The source remembers the
 * last 16384 ids, in memory only.  src must come from zdm_cdc_debezium_open.
 */
void zdm_cdc_debezium_own_xid(zdm_cdc_source *src, uint64_t xid);

/*
 * Barriers (cdc_debezium.c, "Barriers"): lsn is the connector slot's
 * confirmed_flush_lsn, read just before the call; the fence records the end
 * of every partition of the topic now.  zdm_cdc_debezium_fenced is the
 * largest lsn of a fence whose ends the group's committed offsets have all
 * reached since (every change committed before it is applied), 0 when none.
 * src must come from zdm_cdc_debezium_open.
 */
int zdm_cdc_debezium_fence(zdm_cdc_source *src, uint64_t lsn, zdm_error *err);
uint64_t zdm_cdc_debezium_fenced(zdm_cdc_source *src);

#endif
