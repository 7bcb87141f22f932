/*
 * diag.c -- collect diagnostics, print them with the line and a caret.
 *
 * The caret line copies tabs from the source line so it lines up in any
 * terminal; other characters become one space per code point.
 */
#include "diag.h"

#include <stdarg.h>

void
zdmc_diag_init(zdmc_diag *diag, zdmc_arena *arena, const zdmc_source *src)
{
	diag->arena = arena;
	diag->src = src;
	diag->first = NULL;
	diag->last = NULL;
	diag->nerrors = 0;
	diag->dropping = false;
}

/*
 * Like a C compiler, stop listing after so many errors: a pathological
 * input (a list of 20,000 repeated gates) would otherwise print each error
 * with its source line.  The count goes on, so the compile still fails.
 */
#define DIAG_MAX_ERRORS 100

static void
diag_add(zdmc_diag *diag, zdmc_diag_level level, size_t offset, const char *fmt,
         va_list ap)
{
	zdmc_diagnostic *d;

	if (level == ZDMC_DIAG_ERROR && diag->nerrors >= DIAG_MAX_ERRORS) {
		diag->nerrors++;
		diag->dropping = true;
		return;
	}
	if (level == ZDMC_DIAG_NOTE && diag->dropping)
		return; /* its error was not kept */
	d = ZDMC_NEW(diag->arena, zdmc_diagnostic);

	d->level = level;
	d->offset = offset;
	d->message = zdmc_arena_vprintf(diag->arena, fmt, ap);
	if (diag->last)
		diag->last->next = d;
	else
		diag->first = d;
	diag->last = d;
	if (level == ZDMC_DIAG_ERROR)
		diag->nerrors++;
}

void
zdmc_diag_error(zdmc_diag *diag, size_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(diag, ZDMC_DIAG_ERROR, offset, fmt, ap);
	va_end(ap);
}

void
zdmc_diag_note(zdmc_diag *diag, size_t offset, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(diag, ZDMC_DIAG_NOTE, offset, fmt, ap);
	va_end(ap);
}

bool
zdmc_diag_has_error_at(const zdmc_diag *diag, size_t offset)
{
	const zdmc_diagnostic *d;

	for (d = diag->first; d != NULL; d = d->next)
		if (d->level == ZDMC_DIAG_ERROR && d->offset == offset)
			return true;
	return false;
}

static void
diag_print_one(const zdmc_diag *diag, const zdmc_diagnostic *d, FILE *out)
{
	const zdmc_source *src = diag->src;
	const char *line;
	size_t line_len, i, upto;
	int lineno, col;

	zdmc_source_position(src, d->offset, &lineno, &col);
	fprintf(out, "%s:%d:%d: %s: %s\n", src->name, lineno, col,
	        d->level == ZDMC_DIAG_ERROR ? "error" : "note", d->message);
	line = zdmc_source_line(src, d->offset, &line_len);
	upto = (size_t)(src->text +
	                (d->offset > src->len ? src->len : d->offset) - line);
	if (upto > line_len)
		upto = line_len;
	/* a very long line: show the stretch around the caret */
	if (line_len > 240) {
		size_t from = upto > 120 ? upto - 120 : 0;

		while (from > 0 && ((unsigned char)line[from] & 0xC0) == 0x80)
			from--;
		line += from;
		line_len -= from;
		upto -= from;
		if (line_len > 240)
			line_len = 240 > upto ? 240 : upto;
	}
	fprintf(out, "%.*s\n", (int)line_len, line);
	for (i = 0; i < upto; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\t')
			fputc('\t', out);
		else if ((c & 0xC0) != 0x80)
			fputc(' ', out);
	}
	fputs("^\n", out);
}

/*
 * Passes report in their own order (syntax first, then meaning); readers
 * want source order.  Each error keeps the notes that follow it, and equal
 * offsets keep the order they were reported in (a stable insertion sort:
 * there are never many).
 */
void
zdmc_diag_print(const zdmc_diag *diag, FILE *out)
{
	const zdmc_diagnostic *d, **groups;
	size_t n = 0, i, j;

	if (out == NULL || diag->first == NULL)
		return;
	for (d = diag->first; d != NULL; d = d->next)
		n++;
	groups = zdmc_arena_alloc(diag->arena, n * sizeof(*groups));
	n = 0;
	for (d = diag->first; d != NULL; d = d->next)
		if (d->level == ZDMC_DIAG_ERROR || n == 0)
			groups[n++] = d;
	for (i = 1; i < n; i++) {
		const zdmc_diagnostic *g = groups[i];

		for (j = i; j > 0 && groups[j - 1]->offset > g->offset; j--)
			groups[j] = groups[j - 1];
		groups[j] = g;
	}
	for (i = 0; i < n; i++) {
		diag_print_one(diag, groups[i], out);
		for (d = groups[i]->next;
		     d != NULL && d->level == ZDMC_DIAG_NOTE; d = d->next)
			diag_print_one(diag, d, out);
	}
	if (diag->nerrors > DIAG_MAX_ERRORS)
		fprintf(out, "%s: error: %d more errors not shown\n",
		        diag->src->name, diag->nerrors - DIAG_MAX_ERRORS);
}
