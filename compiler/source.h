/*
 * source.h -- the text of one .zdm file and byte-offset <-> line:column.
 *
 * Like PostgreSQL's scanner, every location in the compiler is a byte offset
 * into the source; it becomes line:column only when a message is printed.
 * Columns count characters (UTF-8 code points), starting at 1.
 */
#ifndef ZDMC_SOURCE_H
#define ZDMC_SOURCE_H

#include <stddef.h>

#include "arena.h"

typedef struct zdmc_source {
	const char
		*name; /* as shown in messages, e.g. "plans/split_name.zdm" */
	const char *text; /* NUL-terminated copy of the file */
	size_t len;       /* bytes, excluding the terminating NUL */
	size_t *line_starts;
	size_t nlines;
} zdmc_source;

zdmc_source *zdmc_source_new(zdmc_arena *arena, const char *name,
                             const char *text, size_t len);

/* 1-based line and column of a byte offset (offset may equal len). */
void zdmc_source_position(const zdmc_source *src, size_t offset, int *line,
                          int *column);

/* The line holding offset, without its newline. */
const char *zdmc_source_line(const zdmc_source *src, size_t offset,
                             size_t *line_len);

#endif
