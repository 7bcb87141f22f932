/*
 * progress.h -- how far a long step has come, told to a person.
 *
 * Two forms: on a terminal a one-line bar redrawn in place with '\r'; in a
 * log (not a terminal) a plain line every few seconds and a final one, so a
 * log file shows the pace without thousands of redraws.  The caller samples
 * its own counters and passes them in; nothing here reads a database, keeps
 * global state or allocates, so a test can pin the exact text.
 */
#ifndef ZDM_PROGRESS_H
#define ZDM_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Seconds between two log lines when not on a terminal. */
#define ZDM_PROGRESS_LOG_INTERVAL 5.0

typedef struct zdm_progress_sample {
	long long rows_done;  /* every run's rows, not only this one's */
	long long rows_total; /* estimate; < 0: unknown */
	long long pages_done;
	long long pages_total;
	double rate;        /* rows per second, this run */
	double eta_seconds; /* < 0: unknown */
} zdm_progress_sample;

typedef struct zdm_progress {
	const char *label; /* the step id, borrowed */
	FILE *tty;         /* the terminal the bar is drawn on, or NULL */
	FILE *log;         /* where log lines go, or NULL */
	double last_log;   /* zdm_now() of the last log line */
	size_t last_len;   /* length of the bar last drawn (to blank it) */
} zdm_progress;

/*
 * tty: draw the bar on this stream (stderr), or NULL; log: when tty is NULL,
 * write plain lines here, or NULL for none.  now: zdm_now().
 */
void zdm_progress_init(zdm_progress *p, const char *label, FILE *tty, FILE *log,
                       double now);
/* Redraw the bar, or write a log line if the interval has passed. */
void zdm_progress_update(zdm_progress *p, const zdm_progress_sample *s,
                         double now);
/* The final state: the bar ends with a newline; the log gets its last line. */
void zdm_progress_finish(zdm_progress *p, const zdm_progress_sample *s);

/*
 * The text of one progress line into buf (always terminated); bar_width > 0
 * puts a bar of that many cells first.  Returns the length written.
 */
size_t zdm_progress_format(char *buf, size_t len, const char *label,
                           const zdm_progress_sample *s, int bar_width);
/* 1234567 as "1,234,567" (negative numbers keep their sign). */
void zdm_progress_format_count(char *buf, size_t len, long long n);
/* A duration as "45s", "12m05s" or "3h07m". */
void zdm_progress_format_duration(char *buf, size_t len, double seconds);

#endif
