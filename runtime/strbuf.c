/*
 * strbuf.c -- the growable buffer of strbuf.h.  Doubles from 256 bytes, so a
 * buffer that is reset and refilled (a set of events per batch, a value per
 * column) settles at its largest size and stops allocating.
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for len more bytes and the NUL: 0, or -1 (failed set). */
static int
strbuf_reserve(zdm_strbuf *b, size_t len)
{
	size_t cap;
	char *grown;

	if (b->cap - b->len >= len + 1)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < len + 1)
		cap *= 2;
	if ((grown = realloc(b->data, cap)) == NULL) {
		b->failed = true;
		return -1;
	}
	b->data = grown;
	b->cap = cap;
	return 0;
}

int
zdm_strbuf_put(zdm_strbuf *b, const char *text, size_t len)
{
	if (strbuf_reserve(b, len) < 0)
		return -1;
	memcpy(b->data + b->len, text, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
zdm_strbuf_puts(zdm_strbuf *b, const char *text)
{
	return zdm_strbuf_put(b, text, strlen(text));
}

int
zdm_strbuf_putc(zdm_strbuf *b, char c)
{
	return zdm_strbuf_put(b, &c, 1);
}

int
zdm_strbuf_printf(zdm_strbuf *b, const char *fmt, ...)
{
	char small[128]; /* most texts: one vsnprintf */
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return -1;
	}
	if ((size_t)n < sizeof(small))
		return zdm_strbuf_put(b, small, (size_t)n);
	if (strbuf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
zdm_strbuf_reset(zdm_strbuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
zdm_strbuf_free(zdm_strbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}
