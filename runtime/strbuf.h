/*
 * strbuf.h -- a growable, always NUL-terminated byte buffer.
 *
 * For text the runtime builds piece by piece (the applier's JSON sets of
 * events, the history's YAML, the Debezium parser's values).  It only
 * appends; it never parses or escapes: callers own the format.  A failed
 * append (out of memory) leaves the buffer as it was and sets failed, which
 * stays set until a reset, so a caller may append many pieces and check
 * once.  A zeroed zdm_strbuf ({0}) is empty and ready.
 */
#ifndef ZDM_STRBUF_H
#define ZDM_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct zdm_strbuf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
	bool failed; /* an append failed since the last reset */
} zdm_strbuf;

/* Append len bytes of text: 0, or -1 out of memory. */
int zdm_strbuf_put(zdm_strbuf *b, const char *text, size_t len);
/* Append a NUL-terminated string. */
int zdm_strbuf_puts(zdm_strbuf *b, const char *text);
/* Append one byte. */
int zdm_strbuf_putc(zdm_strbuf *b, char c);
/* Append printf's output. */
int zdm_strbuf_printf(zdm_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Empty it and clear failed, keeping its memory. */
void zdm_strbuf_reset(zdm_strbuf *b);
void zdm_strbuf_free(zdm_strbuf *b);

#endif
