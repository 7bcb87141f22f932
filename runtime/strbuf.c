/*
 * strbuf.c -- the growable buffer of strbuf.h.  Doubles from 4 KiB, so a
 * buffer that is reset and refilled (a set of events per batch) settles at
 * its largest size and stops allocating.
 */
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

int
zdm_strbuf_put(zdm_strbuf *b, const char *text, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *grown;

		while (b->len + len + 1 > cap)
			cap *= 2;
		if ((grown = realloc(b->data, cap)) == NULL)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
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

void
zdm_strbuf_reset(zdm_strbuf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
zdm_strbuf_free(zdm_strbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
