/*
 * cdc_pgoutput_driver.c -- reads a slot through the native change source
 * (runtime/cdc_pgoutput.c) and prints what it decodes, for
 * cdc_pgoutput_test.sh.
 *
 *   zdm_cdc_pgoutput_driver [options] SLOT PUBLICATION
 *
 *   -c CONNINFO  where to connect (default: the environment, as zdm does)
 *   -t MS        stop once no change has come for MS ms (default 3000)
 *   -n N         stop after N changes
 *   -a N         acknowledge only through the N-th change (its
 *                transaction's position); -a 0: nothing.  Default: all of
 *                each batch, after printing it
 *   -i MS        status_interval_ms
 *   -w MS        next()'s timeout (default 200)
 *   -l           end each line with the change's position, " @LSN"
 *   -q           print no changes (throughput runs)
 *
 * stdout, one change a line:
 *
 *   OP SCHEMA.TABLE[ own][ old(COL=V ...)][ new(COL=V ...)]
 *
 * V is NULL, <unchanged> (an unchanged TOASTed value), or the text in
 * single quotes with '' for ', and \\ \n \r \t \xNN for a backslash and
 * control bytes (UTF-8 as is); a value over 200 bytes shows its first 16
 * and its length: 'c4ca4238a0b92382'...<32000 bytes>.
 *
 * stderr: "acked LSN" at each ack, then at the end
 *   "changes N in S s: R changes/s, cpu C s (U us/change)"
 *   "lag S s, backlog B bytes"
 *   "stats transactions T changes C keepalives K status_updates S
 *    received LSN acked LSN reported LSN"
 * Exit 0, or 1 with the error on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cdc_pgoutput.h"

#define DRIVER_LONG_VALUE 200

static void
driver_lsn(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

static void
driver_value(const zdm_cdc_column *col, FILE *out)
{
	const unsigned char *p;
	size_t len, i, show;

	if (col->unchanged_toast) {
		fputs("<unchanged>", out);
		return;
	}
	if (col->value == NULL) {
		fputs("NULL", out);
		return;
	}
	p = (const unsigned char *)col->value;
	len = strlen(col->value);
	show = len > DRIVER_LONG_VALUE ? 16 : len;
	fputc('\'', out);
	for (i = 0; i < show; i++) {
		switch (p[i]) {
		case '\'':
			fputs("''", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f)
				fprintf(out, "\\x%02x", p[i]);
			else
				fputc(p[i], out);
		}
	}
	fputc('\'', out);
	if (show < len)
		fprintf(out, "...<%zu bytes>", len);
}

static void
driver_cols(const char *what, const zdm_cdc_column *cols, size_t n, FILE *out)
{
	size_t i;

	fprintf(out, " %s(", what);
	for (i = 0; i < n; i++) {
		fprintf(out, "%s%s=", i ? " " : "", cols[i].name);
		driver_value(&cols[i], out);
	}
	fputc(')', out);
}

static void
driver_print(const zdm_cdc_change *c, int with_lsn, FILE *out)
{
	static const char *const ops[] = {"INSERT", "UPDATE", "DELETE",
	                                  "TRUNCATE"};
	char lsn[32];

	fprintf(out, "%s %s.%s", ops[c->op], c->schema, c->table);
	if (c->own_write)
		fputs(" own", out);
	if (c->nold > 0)
		driver_cols("old", c->old_cols, c->nold, out);
	if (c->nnew > 0)
		driver_cols("new", c->new_cols, c->nnew, out);
	if (with_lsn) {
		driver_lsn(c->position.offset, lsn, sizeof(lsn));
		fprintf(out, " @%s", lsn);
	}
	fputc('\n', out);
}

static double
driver_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int
driver_usage(void)
{
	fprintf(stderr,
	        "usage: zdm_cdc_pgoutput_driver [-c CONNINFO] [-t MS] [-n N] [-a N] [-i MS] [-w MS] [-l] [-q] SLOT PUBLICATION\n");
	return 2;
}

int
main(int argc, char **argv)
{
	zdm_cdc_pgoutput_opts opts = {0};
	zdm_cdc_pgoutput_stats st;
	zdm_cdc_source *src = NULL;
	const zdm_cdc_change *changes;
	zdm_cdc_position ack = {0, 0}, acked = {0, 0};
	zdm_error err;
	long idle_ms = 3000, stop_after = -1, ack_upto = -1, wait_ms = 200;
	int with_lsn = 0, quiet = 0, opt, rc = 1;
	unsigned long long count = 0;
	double t0, cpu0, last_change, now, lag_s;
	uint64_t backlog;
	size_t n, i;
	char a[32], b[32], c[32];

	while ((opt = getopt(argc, argv, "c:t:n:a:i:w:lq")) != -1) {
		switch (opt) {
		case 'c':
			opts.conninfo = optarg;
			break;
		case 't':
			idle_ms = atol(optarg);
			break;
		case 'n':
			stop_after = atol(optarg);
			break;
		case 'a':
			ack_upto = atol(optarg);
			break;
		case 'i':
			opts.status_interval_ms = atoi(optarg);
			break;
		case 'w':
			wait_ms = atol(optarg);
			break;
		case 'l':
			with_lsn = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		default:
			return driver_usage();
		}
	}
	if (argc - optind != 2)
		return driver_usage();
	opts.slot = argv[optind];
	opts.publication = argv[optind + 1];
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	if (zdm_cdc_pgoutput_open(&src, &opts, &err) < 0) {
		zdm_error_print(&err, stderr);
		return 1;
	}
	t0 = zdm_now();
	cpu0 = driver_cpu();
	last_change = t0;
	for (;;) {
		int stop = 0;

		if (src->ops->next(src, &changes, &n, (int)wait_ms, &err) < 0)
			goto fail;
		now = zdm_now();
		if (n == 0) {
			if ((now - last_change) * 1000.0 >= idle_ms)
				break;
			continue;
		}
		last_change = now;
		for (i = 0; i < n && !stop; i++) {
			count++;
			if (!quiet)
				driver_print(&changes[i], with_lsn, stdout);
			if (ack_upto < 0 || (long long)count <= ack_upto)
				ack = changes[i].position;
			if (stop_after >= 0 && (long long)count >= stop_after)
				stop = 1;
		}
		fflush(stdout);
		if (ack.offset > acked.offset) {
			if (src->ops->ack(src, ack, &err) < 0)
				goto fail;
			acked = ack;
			driver_lsn(acked.offset, a, sizeof(a));
			fprintf(stderr, "acked %s\n", a);
		}
		if (stop)
			break;
	}
	now = driver_cpu() - cpu0;
	fprintf(stderr,
	        "changes %llu in %.3f s: %.0f changes/s, cpu %.3f s (%.2f us/change)\n",
	        count, last_change - t0,
	        last_change > t0 ? (double)count / (last_change - t0) : 0.0,
	        now, count ? now * 1e6 / (double)count : 0.0);
	if (src->ops->lag(src, &lag_s, &backlog, &err) < 0)
		goto fail;
	fprintf(stderr, "lag %.3f s, backlog %" PRIu64 " bytes\n", lag_s,
	        backlog);
	if (zdm_cdc_pgoutput_get_stats(src, &st, &err) < 0)
		goto fail;
	driver_lsn(st.received_lsn, a, sizeof(a));
	driver_lsn(st.acked_lsn, b, sizeof(b));
	driver_lsn(st.reported_lsn, c, sizeof(c));
	fprintf(stderr,
	        "stats transactions %" PRIu64 " changes %" PRIu64
	        " keepalives %" PRIu64 " status_updates %" PRIu64
	        " received %s acked %s reported %s\n",
	        st.transactions, st.changes, st.keepalives, st.status_updates,
	        a, b, c);
	rc = 0;
	goto done;
fail:
	zdm_error_print(&err, stderr);
done:
	fflush(stdout);
	src->ops->close(src);
	return rc;
}
