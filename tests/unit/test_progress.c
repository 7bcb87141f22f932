/*
 * test_progress.c -- runtime/progress.c: the exact text of progress lines,
 * and when they are written (a bar on every update, a log line only every
 * ZDM_PROGRESS_LOG_INTERVAL seconds, and always a last one).
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/progress.h"

static const zdm_progress_sample half = {
	.rows_done = 90000,
	.rows_total = 200000,
	.pages_done = 45,
	.pages_total = 100,
	.rate = 48000.4,
	.eta_seconds = 2.2,
};

static void
test_count(void **state)
{
	char buf[32];

	(void)state;
	zdm_progress_format_count(buf, sizeof(buf), 0);
	assert_string_equal(buf, "0");
	zdm_progress_format_count(buf, sizeof(buf), 999);
	assert_string_equal(buf, "999");
	zdm_progress_format_count(buf, sizeof(buf), 1000);
	assert_string_equal(buf, "1,000");
	zdm_progress_format_count(buf, sizeof(buf), 1234567);
	assert_string_equal(buf, "1,234,567");
	zdm_progress_format_count(buf, sizeof(buf), -1234);
	assert_string_equal(buf, "-1,234");
	zdm_progress_format_count(buf, sizeof(buf), -9223372036854775807LL - 1);
	assert_string_equal(buf, "-9,223,372,036,854,775,808");
	zdm_progress_format_count(buf, 4, 1234567);
	assert_string_equal(buf, "1,2");
}

static void
test_duration(void **state)
{
	char buf[32];

	(void)state;
	zdm_progress_format_duration(buf, sizeof(buf), 0);
	assert_string_equal(buf, "0s");
	zdm_progress_format_duration(buf, sizeof(buf), 59.4);
	assert_string_equal(buf, "59s");
	zdm_progress_format_duration(buf, sizeof(buf), 61);
	assert_string_equal(buf, "1m01s");
	zdm_progress_format_duration(buf, sizeof(buf), 3725);
	assert_string_equal(buf, "1h02m");
	zdm_progress_format_duration(buf, sizeof(buf), -3);
	assert_string_equal(buf, "0s");
}

static void
test_format(void **state)
{
	char buf[256];
	zdm_progress_sample s = half;
	size_t n;

	(void)state;
	n = zdm_progress_format(buf, sizeof(buf), "backfill.1", &s, 24);
	assert_string_equal(buf, "backfill.1 [##########..............]  45%, "
	                         "90,000 of ~200,000 rows, 48,000 rows/s, "
	                         "eta 2s");
	assert_int_equal(n, strlen(buf));

	zdm_progress_format(buf, sizeof(buf), "backfill.1", &s, 0);
	assert_string_equal(buf, "backfill.1: 45% of pages, 90,000 of "
	                         "~200,000 rows, 48,000 rows/s, eta 2s");

	/* nothing known yet */
	s = (zdm_progress_sample){
		.rows_total = -1, .pages_total = 100, .eta_seconds = -1};
	zdm_progress_format(buf, sizeof(buf), "b", &s, 0);
	assert_string_equal(buf, "b: 0% of pages, 0 rows, 0 rows/s");

	/* an empty table is done; 99.9% is not */
	s = (zdm_progress_sample){.rows_total = 0, .eta_seconds = -1};
	zdm_progress_format(buf, sizeof(buf), "b", &s, 4);
	assert_string_equal(buf, "b [####] 100%, 0 of ~0 rows, 0 rows/s");
	s = (zdm_progress_sample){.pages_done = 999,
	                          .pages_total = 1000,
	                          .rows_total = -1,
	                          .eta_seconds = -1};
	zdm_progress_format(buf, sizeof(buf), "b", &s, 0);
	assert_string_equal(buf, "b: 99% of pages, 0 rows, 0 rows/s");

	/* a short buffer: truncated, terminated, the length says so */
	n = zdm_progress_format(buf, 10, "backfill.1", &half, 24);
	assert_string_equal(buf, "backfill.");
	assert_int_equal(n, 9);
}

static char *
slurp(FILE *f)
{
	long len;
	char *text;

	fflush(f);
	len = ftell(f);
	assert_true(len >= 0);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	return text;
}

static void
test_log_interval(void **state)
{
	FILE *log = tmpfile();
	zdm_progress p;
	zdm_progress_sample s = half;
	char *text;

	(void)state;
	assert_non_null(log);
	zdm_progress_init(&p, "backfill.1", NULL, log, 100.0);
	zdm_progress_update(&p, &s, 101.0); /* too soon */
	zdm_progress_update(&p, &s, 105.0); /* a line */
	zdm_progress_update(&p, &s, 109.0); /* too soon after that */
	s.pages_done = 100;
	s.rows_done = 200000;
	s.eta_seconds = -1;
	zdm_progress_finish(&p, &s);
	text = slurp(log);
	assert_string_equal(
		text, "backfill.1: 45% of pages, 90,000 of ~200,000 rows, "
		      "48,000 rows/s, eta 2s\n"
		      "backfill.1: 100% of pages, 200,000 of ~200,000 "
		      "rows, 48,000 rows/s\n");
	free(text);
	fclose(log);
}

static void
test_bar(void **state)
{
	FILE *tty = tmpfile(), *log = tmpfile();
	zdm_progress p;
	zdm_progress_sample s = half;
	char *text;

	(void)state;
	assert_non_null(tty);
	assert_non_null(log);
	/* on a terminal the log gets nothing: the bar says it all */
	zdm_progress_init(&p, "b", tty, log, 0.0);
	zdm_progress_update(&p, &s, 0.1);
	s.rate = 5;
	s.eta_seconds = -1; /* shorter: the rest of the old line is blanked */
	zdm_progress_finish(&p, &s);
	text = slurp(tty);
	assert_string_equal(
		text, "\rb [##########..............]  45%, 90,000 of ~200,000 "
		      "rows, 48,000 rows/s, eta 2s"
		      "\rb [##########..............]  45%, 90,000 of ~200,000 "
		      "rows, 5 rows/s"
		      "             \n");
	free(text);
	assert_int_equal(ftell(log), 0);
	fclose(tty);
	fclose(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_log_interval),
		cmocka_unit_test(test_bar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
