/*
 * cdc_debezium_parse.h -- the Debezium event parser (cdc_debezium_parse.c):
 * one Kafka message, its key and its JSON value, into a zdm_cdc_change.
 *
 * Used by the Kafka consumer (cdc_debezium.c), by the tests and by the fuzz
 * target.  It knows Debezium's envelope and nothing of Kafka: no librdkafka
 * type appears here, and what the consumer reads from a message's headers
 * comes in through zdm_cdc_debezium_meta.  Of the options only
 * own_origin_field and unavailable_placeholder are read.
 */
#ifndef ZDM_CDC_DEBEZIUM_PARSE_H
#define ZDM_CDC_DEBEZIUM_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "cdc.h"
#include "cdc_debezium.h"
#include "zdm.h"

typedef struct zdm_cdc_debezium_parser zdm_cdc_debezium_parser;

int zdm_cdc_debezium_parser_new(zdm_cdc_debezium_parser **out,
                                const zdm_cdc_debezium_opts *opts,
                                zdm_error *err);
/* Later events whose source.txId is xid (modulo 2^32) come with own_write;
 * the last 16384 ids are remembered (the source's own_xid, cdc.h). */
void zdm_cdc_debezium_parser_own_xid(zdm_cdc_debezium_parser *p, uint64_t xid);
/*
 * Parse one Kafka message: its key (NULL or empty: none) and its value
 * (NULL or empty: a tombstone).  1 with *change filled (valid until the
 * next call on p; position is {0, 0}), 0 when the message carries no
 * change (a tombstone), -1 with err saying what is wrong with it.  The key
 * is read only for a delete, whose old_cols it gives (cdc_debezium_parse.c
 * says why).
 */
int zdm_cdc_debezium_parse_message(zdm_cdc_debezium_parser *p, const void *key,
                                   size_t key_len, const void *value,
                                   size_t len, zdm_cdc_change *change,
                                   zdm_error *err);
/* The same for a message without a key. */
int zdm_cdc_debezium_parse(zdm_cdc_debezium_parser *p, const void *value,
                           size_t len, zdm_cdc_change *change, zdm_error *err);
void zdm_cdc_debezium_parser_free(zdm_cdc_debezium_parser *p);

/* ---- for the consumer: a batch of changes, and what headers say -------- */

/* An event's part in a primary-key change, from Debezium's headers. */
typedef enum zdm_cdc_debezium_key_move {
	ZDM_DBZ_MOVE_NONE,
	ZDM_DBZ_MOVE_DELETE, /* the delete of the old key: __debezium.newkey */
	ZDM_DBZ_MOVE_CREATE  /* the create of the new key: __debezium.oldkey */
} zdm_cdc_debezium_key_move;

/* What the consumer needs beyond the change. */
typedef struct zdm_cdc_debezium_meta {
	int64_t ts_ms; /* out: source.ts_ms, else ts_ms; -1 when neither */
	/* in: from the headers (the consumer's; the parser never sees
	 * headers) */
	zdm_cdc_debezium_key_move move;
	/* out, for ZDM_DBZ_MOVE_DELETE: the whole before image, which
	 * old_cols (the key) leaves out; nbefore 0 when the event had none */
	const zdm_cdc_column *before;
	size_t nbefore;
} zdm_cdc_debezium_meta;

/*
 * As zdm_cdc_debezium_parse_message, with meta, and keeping what earlier
 * calls returned: everything stays valid until zdm_cdc_debezium_parser_reset
 * (the consumer resets once per batch).
 */
int zdm_cdc_debezium_parse_event(zdm_cdc_debezium_parser *p, const void *key,
                                 size_t key_len, const void *value, size_t len,
                                 zdm_cdc_change *change,
                                 zdm_cdc_debezium_meta *meta, zdm_error *err);
/* Forget every change parsed so far, keeping the memory for the next. */
void zdm_cdc_debezium_parser_reset(zdm_cdc_debezium_parser *p);

/* s for an error message into buf: quoted, at most 64 bytes, control bytes
 * as '?' (len at least 8). */
const char *zdm_cdc_debezium_quote(const char *s, char *buf, size_t len);

#endif
