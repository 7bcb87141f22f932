/*
 * strbuf.h -- a growable, always NUL-terminated byte buffer.
 *
 * For text the runtime builds piece by piece (the applier's JSON sets of
 * events, the history's YAML).  It only appends; it never parses or
 * escapes: callers own the format.  A failed append (out of memory) leaves
 * the buffer as it was.
 */
#ifndef ZDM_STRBUF_H
#define ZDM_STRBUF_H

#include <stddef.h>

typedef struct zdm_strbuf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
} zdm_strbuf;

/* Append len bytes of text: 0, or -1 out of memory. */
int zdm_strbuf_put(zdm_strbuf *b, const char *text, size_t len);
/* Append a NUL-terminated string. */
int zdm_strbuf_puts(zdm_strbuf *b, const char *text);
/* Empty it, keeping its memory. */
void zdm_strbuf_reset(zdm_strbuf *b);
void zdm_strbuf_free(zdm_strbuf *b);

#endif
