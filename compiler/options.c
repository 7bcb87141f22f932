/*
 * options.c -- the with (...) clause of a migration.
 *
 * The table below is the single list of options: name, kind, bounds and
 * default.  docs/language.md documents the same list; a golden error test
 * pins the messages.  An unknown name gets a "did you mean" when one option
 * is close, because a typo in batch_size should not silently mean 10000.
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char *const zdmc_phase_names[ZDMC_NPHASES] = {
	"expand", "backfill", "verify", "switch", "contract",
};

typedef enum option_type {
	OPT_COUNT,    /* integer within [min, max] */
	OPT_DURATION, /* '500ms', '2s', '1min' within [min, max] ms */
	OPT_GATES,    /* (phase, ...), a single phase, or none */
	OPT_SYNC,     /* trigger or cdc */
	OPT_SOURCE,   /* cdc_source: native or debezium */
	OPT_KEY       /* key = (col, ...) */
} option_type;

typedef struct option_spec {
	const char *name;
	option_type type;
	long min;
	long max;
	size_t field; /* offset of the long field in zdmc_options */
} option_spec;

static const option_spec option_specs[] = {
	{"approve", OPT_GATES, 0, 0, 0},
	{"batch_pause", OPT_DURATION, 0, 3600000L,
         offsetof(zdmc_options, batch_pause_ms)},
	{"batch_size", OPT_COUNT, 1, 1000000L,
         offsetof(zdmc_options, batch_size)},
	{"cdc_source", OPT_SOURCE, 0, 0, 0},
	{"key", OPT_KEY, 0, 0, 0},
	{"lock_retries", OPT_COUNT, 0, 1000L,
         offsetof(zdmc_options, lock_retries)},
	{"lock_timeout", OPT_DURATION, 1, 600000L,
         offsetof(zdmc_options, lock_timeout_ms)},
	{"max_lag", OPT_DURATION, 1, 3600000L,
         offsetof(zdmc_options, max_lag_ms)},
	{"stable_for", OPT_DURATION, 0, 3600000L,
         offsetof(zdmc_options, stable_for_ms)},
	{"statement_timeout", OPT_DURATION, 0, 86400000L,
         offsetof(zdmc_options, statement_timeout_ms)},
	{"sync", OPT_SYNC, 0, 0, 0},
	{"verify_sample", OPT_COUNT, 1, 100000000L,
         offsetof(zdmc_options, verify_sample)},
};

#define NOPTIONS (sizeof(option_specs) / sizeof(option_specs[0]))

static void
options_set_defaults(zdmc_options *out)
{
	out->batch_size = 10000;
	out->batch_pause_ms = 0;
	out->lock_timeout_ms = 500;
	out->lock_retries = 10;
	out->statement_timeout_ms = 0;
	out->verify_sample = 10000;
	out->approve = (1u << ZDMC_PHASE_SWITCH) | (1u << ZDMC_PHASE_CONTRACT);
	out->sync = "trigger";
	out->cdc_source = "native";
	out->max_lag_ms = 1000;
	out->stable_for_ms = 10000;
}

/* Edit distance, for suggestions; names are short. */
static size_t
options_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const option_spec *
options_find(const char *name)
{
	size_t i;

	for (i = 0; i < NOPTIONS; i++)
		if (strcmp(option_specs[i].name, name) == 0)
			return &option_specs[i];
	return NULL;
}

static void
options_unknown(zdmc_diag *diag, const zdmc_option *opt)
{
	const char *best = NULL;
	size_t best_dist = 3, i;

	for (i = 0; i < NOPTIONS; i++) {
		size_t d =
			options_distance(opt->name.name, option_specs[i].name);

		if (d < best_dist) {
			best_dist = d;
			best = option_specs[i].name;
		}
	}
	if (best != NULL)
		zdmc_diag_error(diag, opt->name.offset,
		                "unknown option \"%s\" (did you mean \"%s\"?)",
		                opt->name.name, best);
	else
		zdmc_diag_error(
			diag, opt->name.offset,
			"unknown option \"%s\"; options are approve, batch_pause, batch_size, cdc_source, key, lock_retries, lock_timeout, max_lag, stable_for, statement_timeout, sync, verify_sample",
			opt->name.name);
}

static const char *
options_kind_name(zdmc_option_kind kind)
{
	switch (kind) {
	case ZDMC_OPTVAL_INTEGER:
		return "a number";
	case ZDMC_OPTVAL_STRING:
		return "a string";
	case ZDMC_OPTVAL_WORD:
		return "a word";
	case ZDMC_OPTVAL_LIST:
		return "a list";
	}
	return "a value";
}

static void
options_count(zdmc_diag *diag, const option_spec *spec, const zdmc_option *opt,
              long *field)
{
	long value;
	char *end;

	if (opt->kind != ZDMC_OPTVAL_INTEGER) {
		zdmc_diag_error(diag, opt->value_offset,
		                "%s must be a number, not %s", spec->name,
		                options_kind_name(opt->kind));
		return;
	}
	errno = 0;
	value = strtol(opt->text, &end, 10);
	if (errno != 0 || *end != '\0' || value < spec->min ||
	    value > spec->max) {
		zdmc_diag_error(diag, opt->value_offset,
		                "%s must be between %ld and %ld", spec->name,
		                spec->min, spec->max);
		return;
	}
	*field = value;
}

static void
options_duration(zdmc_diag *diag, const option_spec *spec,
                 const zdmc_option *opt, long *field)
{
	const char *p;
	char *unit;
	long value, scale;

	if (opt->kind == ZDMC_OPTVAL_INTEGER) {
		zdmc_diag_error(
			diag, opt->value_offset,
			"%s needs a unit, as in '%sms', '%ss' or '%smin'",
			spec->name, opt->text, opt->text, opt->text);
		return;
	}
	if (opt->kind != ZDMC_OPTVAL_STRING) {
		zdmc_diag_error(diag, opt->value_offset,
		                "%s must be a duration such as '500ms', not %s",
		                spec->name, options_kind_name(opt->kind));
		return;
	}
	p = opt->text;
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9') {
		zdmc_diag_error(
			diag, opt->value_offset,
			"invalid duration '%s' for %s: expected a whole number and a unit (ms, s, min)",
			opt->text, spec->name);
		return;
	}
	errno = 0;
	value = strtol(p, &unit, 10);
	while (*unit == ' ')
		unit++;
	if (strcmp(unit, "ms") == 0)
		scale = 1;
	else if (strcmp(unit, "s") == 0)
		scale = 1000;
	else if (strcmp(unit, "min") == 0)
		scale = 60000;
	else {
		if (*unit == '\0')
			zdmc_diag_error(
				diag, opt->value_offset,
				"%s needs a unit, as in '%ldms', '%lds' or '%ldmin'",
				spec->name, value, value, value);
		else
			zdmc_diag_error(
				diag, opt->value_offset,
				"unknown unit \"%s\" in %s; use ms, s or min",
				unit, spec->name);
		return;
	}
	if (errno != 0 || value > spec->max / scale ||
	    value * scale < spec->min || value * scale > spec->max) {
		zdmc_diag_error(diag, opt->value_offset,
		                "%s must be between %ldms and %ldms",
		                spec->name, spec->min, spec->max);
		return;
	}
	*field = value * scale;
}

static int
options_phase(const char *name)
{
	int i;

	for (i = 0; i < ZDMC_NPHASES; i++)
		if (strcmp(zdmc_phase_names[i], name) == 0)
			return i;
	return -1;
}

static void
options_gates(zdmc_diag *diag, const zdmc_option *opt, unsigned *out)
{
	unsigned mask = 0;
	size_t i;

	if (opt->kind == ZDMC_OPTVAL_WORD && strcmp(opt->text, "none") == 0) {
		*out = 0;
		return;
	}
	if (opt->kind == ZDMC_OPTVAL_WORD) {
		int phase = options_phase(opt->text);

		if (phase < 0) {
			zdmc_diag_error(
				diag, opt->value_offset,
				"unknown gate \"%s\"; gates are expand, backfill, verify, switch, contract (or none)",
				opt->text);
			return;
		}
		*out = 1u << phase;
		return;
	}
	if (opt->kind != ZDMC_OPTVAL_LIST) {
		zdmc_diag_error(
			diag, opt->value_offset,
			"approve takes a list of gates, as in (switch, contract)");
		return;
	}
	for (i = 0; i < opt->nitems; i++) {
		int phase = options_phase(opt->items[i].name);

		if (phase < 0) {
			zdmc_diag_error(
				diag, opt->items[i].offset,
				"unknown gate \"%s\"; gates are expand, backfill, verify, switch, contract",
				opt->items[i].name);
			continue;
		}
		if (mask & (1u << phase))
			zdmc_diag_error(diag, opt->items[i].offset,
			                "gate \"%s\" is listed twice",
			                opt->items[i].name);
		mask |= 1u << phase;
	}
	*out = mask;
}

static void
options_sync(zdmc_diag *diag, const zdmc_option *opt, const char **out)
{
	if (opt->kind != ZDMC_OPTVAL_WORD && opt->kind != ZDMC_OPTVAL_STRING) {
		zdmc_diag_error(diag, opt->value_offset,
		                "sync must be trigger or cdc, not %s",
		                options_kind_name(opt->kind));
		return;
	}
	if (strcmp(opt->text, "trigger") == 0)
		*out = "trigger";
	else if (strcmp(opt->text, "cdc") == 0)
		*out = "cdc";
	else
		zdmc_diag_error(diag, opt->value_offset,
		                "unknown sync mode \"%s\"; use trigger or cdc",
		                opt->text);
}

static void
options_source(zdmc_diag *diag, const zdmc_option *opt, const char **out)
{
	if (opt->kind != ZDMC_OPTVAL_WORD && opt->kind != ZDMC_OPTVAL_STRING) {
		zdmc_diag_error(diag, opt->value_offset,
		                "cdc_source must be native or debezium, not %s",
		                options_kind_name(opt->kind));
		return;
	}
	if (strcmp(opt->text, "native") == 0)
		*out = "native";
	else if (strcmp(opt->text, "debezium") == 0)
		*out = "debezium";
	else
		zdmc_diag_error(
			diag, opt->value_offset,
			"unknown cdc_source \"%s\"; use native or debezium",
			opt->text);
}

/* key = (id): the columns that identify a row, for every table
 * of the migration (check.c refuses a key column the migration changes) */
static void
options_key(zdmc_diag *diag, const zdmc_option *opt, zdmc_options *out)
{
	size_t i, j;

	if (opt->kind != ZDMC_OPTVAL_LIST || opt->nitems == 0) {
		zdmc_diag_error(
			diag, opt->value_offset,
			"key takes a list of the columns that identify a row, as in key = (id)");
		return;
	}
	for (i = 0; i < opt->nitems; i++)
		for (j = 0; j < i; j++)
			if (strcmp(opt->items[i].name, opt->items[j].name) == 0)
				zdmc_diag_error(
					diag, opt->items[i].offset,
					"key column \"%s\" is listed twice",
					opt->items[i].name);
	out->key = opt->items;
	out->nkey = opt->nitems;
}

/* Options that mean something only with sync = cdc are refused with a
 * trigger: a reader of the source would think they do something. */
static void
options_cdc_only(zdmc_diag *diag, const zdmc_option *list,
                 const zdmc_options *out)
{
	const zdmc_option *opt;
	bool have_key = false;

	for (opt = list; opt != NULL; opt = opt->next) {
		const char *name = opt->name.name;

		if (strcmp(name, "key") == 0)
			have_key = true;
		if (strcmp(out->sync, "cdc") == 0)
			continue;
		if (strcmp(name, "key") == 0 || strcmp(name, "cdc_source") == 0)
			zdmc_diag_error(
				diag, opt->name.offset,
				"%s only applies to sync = cdc; a trigger needs no key and reads no change stream",
				name);
		else if (strcmp(name, "max_lag") == 0 ||
		         strcmp(name, "stable_for") == 0)
			zdmc_diag_error(
				diag, opt->name.offset,
				"%s only applies to sync = cdc; a trigger keeps both shapes in step with no lag",
				name);
	}
	if (strcmp(out->sync, "cdc") == 0 && !have_key)
		zdmc_diag_error(
			diag, out->sync_offset,
			"sync = cdc needs key = (column, ...): the columns that identify a row of every table of the migration");
}

/*
 * A statement waiting for a lock is cancelled by whichever timeout comes
 * first.  lock_timeout's cancel is retried with backoff (lock_retries);
 * statement_timeout's stops the step.  So a statement_timeout at or under
 * lock_timeout would turn every lock wait into a failed step.
 */
static void
options_timeouts(zdmc_diag *diag, const zdmc_option *list,
                 const zdmc_options *out)
{
	const zdmc_option *opt;

	if (out->statement_timeout_ms == 0 ||
	    out->statement_timeout_ms > out->lock_timeout_ms)
		return;
	for (opt = list; opt != NULL; opt = opt->next)
		if (strcmp(opt->name.name, "statement_timeout") == 0)
			zdmc_diag_error(
				diag, opt->value_offset,
				"statement_timeout (%ldms) must be longer than lock_timeout (%ldms), or 0 for no limit: a statement waiting for a lock would be cancelled as too long instead of retried",
				out->statement_timeout_ms,
				out->lock_timeout_ms);
}

void
zdmc_options_resolve(zdmc_diag *diag, const zdmc_option *list,
                     zdmc_options *out)
{
	const zdmc_option *opt, *prev;

	options_set_defaults(out);
	for (opt = list; opt != NULL; opt = opt->next) {
		const option_spec *spec = options_find(opt->name.name);

		if (spec == NULL) {
			options_unknown(diag, opt);
			continue;
		}
		for (prev = list; prev != opt; prev = prev->next)
			if (strcmp(prev->name.name, opt->name.name) == 0)
				break;
		if (prev != opt) {
			zdmc_diag_error(diag, opt->name.offset,
			                "option \"%s\" is given twice",
			                opt->name.name);
			zdmc_diag_note(diag, prev->name.offset,
			               "first given here");
			continue;
		}
		switch (spec->type) {
		case OPT_COUNT:
			options_count(diag, spec, opt,
			              (long *)((char *)out + spec->field));
			break;
		case OPT_DURATION:
			options_duration(diag, spec, opt,
			                 (long *)((char *)out + spec->field));
			break;
		case OPT_GATES:
			options_gates(diag, opt, &out->approve);
			break;
		case OPT_SYNC:
			options_sync(diag, opt, &out->sync);
			out->sync_offset = opt->value_offset;
			break;
		case OPT_SOURCE:
			options_source(diag, opt, &out->cdc_source);
			break;
		case OPT_KEY:
			options_key(diag, opt, out);
			break;
		}
	}
	options_cdc_only(diag, list, out);
	options_timeouts(diag, list, out);
}
