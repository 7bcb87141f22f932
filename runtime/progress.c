/*
 * progress.c -- progress lines for long steps (the backfill).
 *
 * The percentage counts pages, not rows: pages are what a backfill walks,
 * and their total is exact, while the row total is only an estimate (rows
 * the sync trigger already handled are never counted as backfilled, so the
 * row count may stop short of the estimate and still be complete).  The
 * caller computes rate and ETA; this file only formats and decides when to
 * write.  Writes go to the streams given, nowhere else.
 */
#include "progress.h"

#include <string.h>

#define BAR_WIDTH 24

void
zdm_progress_format_count(char *buf, size_t len, long long n)
{
	char digits[32], out[48];
	size_t nd, o = 0;
	unsigned long long u;

	if (len == 0)
		return;
	u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
	nd = (size_t)snprintf(digits, sizeof(digits), "%llu", u);
	if (n < 0)
		out[o++] = '-';
	for (size_t i = 0; i < nd; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	snprintf(buf, len, "%s", out);
}

void
zdm_progress_format_duration(char *buf, size_t len, double seconds)
{
	long long s;

	if (!(seconds >= 0) || seconds > 1e9)
		seconds = 0;
	s = (long long)(seconds + 0.5);
	if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
}

/* Percent of the pages done, 0..100; an empty table is done. */
static int
percent_done(const zdm_progress_sample *s)
{
	double f;

	if (s->pages_total <= 0)
		return 100;
	f = (double)s->pages_done / (double)s->pages_total;
	if (f < 0)
		f = 0;
	if (f > 1)
		f = 1;
	/* floor: 100% only when the last page is done */
	return (int)(f * 100.0);
}

size_t
zdm_progress_format(char *buf, size_t len, const char *label,
                    const zdm_progress_sample *s, int bar_width)
{
	char done[48], total[48], rate[48], eta[32];
	size_t n = 0;
	int pct = percent_done(s);

#define APPEND(...)                                                       \
	do {                                                              \
		if (n < len) {                                            \
			int w_ = snprintf(buf + n, len - n, __VA_ARGS__); \
			n += w_ > 0 ? (size_t)w_ : 0;                     \
		}                                                         \
	} while (0)

	if (len == 0)
		return 0;
	buf[0] = '\0';
	APPEND("%s", label);
	if (bar_width > 0) {
		int fill = pct * bar_width / 100;

		APPEND(" [");
		for (int i = 0; i < bar_width; i++)
			APPEND("%c", i < fill ? '#' : '.');
		APPEND("] %3d%%", pct);
	} else {
		APPEND(": %d%% of pages", pct);
	}
	zdm_progress_format_count(done, sizeof(done), s->rows_done);
	if (s->rows_total >= 0) {
		zdm_progress_format_count(total, sizeof(total), s->rows_total);
		APPEND(", %s of ~%s rows", done, total);
	} else {
		APPEND(", %s rows", done);
	}
	zdm_progress_format_count(rate, sizeof(rate),
	                          s->rate > 0 ? (long long)(s->rate + 0.5) : 0);
	APPEND(", %s rows/s", rate);
	if (s->eta_seconds >= 0) {
		zdm_progress_format_duration(eta, sizeof(eta), s->eta_seconds);
		APPEND(", eta %s", eta);
	}
#undef APPEND
	return n < len ? n : len - 1;
}

void
zdm_progress_init(zdm_progress *p, const char *label, FILE *tty, FILE *log,
                  double now)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->tty = tty;
	p->log = tty ? NULL : log;
	p->last_log = now;
}

static void
draw_bar(zdm_progress *p, const zdm_progress_sample *s)
{
	char line[256];
	size_t n =
		zdm_progress_format(line, sizeof(line), p->label, s, BAR_WIDTH);

	/* pad over a longer previous line instead of relying on ANSI codes */
	fprintf(p->tty, "\r%s%*s", line,
	        p->last_len > n ? (int)(p->last_len - n) : 0, "");
	fflush(p->tty);
	p->last_len = n;
}

void
zdm_progress_update(zdm_progress *p, const zdm_progress_sample *s, double now)
{
	char line[256];

	if (p->tty) {
		draw_bar(p, s);
	} else if (p->log && now - p->last_log >= ZDM_PROGRESS_LOG_INTERVAL) {
		zdm_progress_format(line, sizeof(line), p->label, s, 0);
		fprintf(p->log, "%s\n", line);
		fflush(p->log);
		p->last_log = now;
	}
}

void
zdm_progress_finish(zdm_progress *p, const zdm_progress_sample *s)
{
	char line[256];

	if (p->tty) {
		draw_bar(p, s);
		fputc('\n', p->tty);
		fflush(p->tty);
	} else if (p->log) {
		zdm_progress_format(line, sizeof(line), p->label, s, 0);
		fprintf(p->log, "%s\n", line);
		fflush(p->log);
	}
}
