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
	 * not: the applier marks its transactions instead, through the
	 * source's own_xid, cdc.h) */
	const char *own_origin_field;
	/* optional: the connector's unavailable.value.placeholder; NULL means
	 * Debezium's default "__debezium_unavailable_value" */
	const char *unavailable_placeholder;
} zdm_cdc_debezium_opts;

/*
 * Open a consumer in opts->group_id subscribed to opts->topic.  The group
 * joins in the background; the first next() may return nothing for a few
 * seconds.  The caller closes *out with (*out)->ops->close.  Besides next,
 * ack, lag and close, the source has stats, fence (cdc_debezium.c,
 * "Barriers"; the last 64 fences are kept, in memory) and own_xid (the
 * last 16384 ids are remembered, in memory only).
 */
int zdm_cdc_debezium_open(zdm_cdc_source **out,
                          const zdm_cdc_debezium_opts *opts, zdm_error *err);

#endif
