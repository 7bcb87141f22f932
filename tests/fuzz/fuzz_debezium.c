/*
 * fuzz_debezium.c -- libFuzzer target for the debezium message parser.
 *
 * Feeds arbitrary bytes to zdm_cdc_debezium_parse(), the function the
 * Kafka source runs on every message value, so JSON decoding, both envelope
 * shapes, the schema-driven conversions (dates, times, bytes, arrays) and
 * every malformed-event error are in reach without a broker.  Any input must
 * end in a change, in "no change" (a tombstone) or in an error with a
 * message: a crash, a sanitizer report or a leak is a bug.  The same bytes
 * are then parsed as the message key of a fixed delete, the one op whose
 * key is read (its old_cols come from it).  One parser
 * serves every input, as one serves a whole consumer, so its reuse is
 * fuzzed too; its memory stays reachable from the static pointer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdc_debezium_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
touch_columns(const zdm_cdc_column *cols, size_t n)
{
	size_t i;

	if (n > 0 && cols == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (cols[i].name == NULL)
			abort();
		if (cols[i].unchanged_toast && cols[i].value != NULL)
			abort(); /* unchanged means no value */
		if (cols[i].value != NULL && strlen(cols[i].value) > (1u << 30))
			abort(); /* reads the whole value under ASan */
	}
}

static void
check_change(int rc, const zdm_cdc_change *c, const zdm_error *err)
{
	switch (rc) {
	case 1:
		if (c->schema == NULL || c->table == NULL ||
		    c->op > ZDM_CDC_TRUNCATE)
			abort();
		touch_columns(c->old_cols, c->nold);
		touch_columns(c->new_cols, c->nnew);
		if (c->op == ZDM_CDC_TRUNCATE && (c->nold || c->nnew))
			abort();
		if (c->op == ZDM_CDC_DELETE && c->nnew)
			abort();
		break;
	case 0:
		break;
	case -1:
		if (err->message[0] == '\0')
			abort(); /* every refusal says why */
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char del[] =
		"{\"before\":{\"id\":1,\"name\":null},\"after\":null,"
		"\"source\":{\"schema\":\"public\",\"table\":\"t\"},"
		"\"op\":\"d\"}";
	static zdm_cdc_debezium_parser *p;
	zdm_cdc_change c;
	zdm_error err;
	int rc;

	if (p == NULL) {
		zdm_cdc_debezium_opts o = {0};

		o.own_origin_field = "source.origin";
		if (zdm_cdc_debezium_parser_new(&p, &o, &err) < 0)
			abort();
		zdm_cdc_debezium_parser_own_xid(p, 555);
	}
	zdm_error_clear(&err);
	rc = zdm_cdc_debezium_parse(p, data, size, &c, &err);
	check_change(rc, &c, &err);
	zdm_error_clear(&err);
	rc = zdm_cdc_debezium_parse_message(p, data, size, del, sizeof(del) - 1,
	                                    &c, &err);
	if (rc == 0 || (rc == 1 && c.nold == 0))
		abort(); /* no tombstone; the key or the before image */
	check_change(rc, &c, &err);
	return 0;
}
