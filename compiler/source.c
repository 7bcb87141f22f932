/*
 * source.c -- line table of a .zdm file.
 *
 * Offsets are bytes; columns are characters, so a caret lines up under
 * multi-byte names.  Invalid UTF-8 still counts one column per lead byte:
 * positions must never fail, whatever the input.
 */
#include "source.h"

#include <string.h>

zdmc_source *
zdmc_source_new(zdmc_arena *arena, const char *name, const char *text,
                size_t len)
{
	zdmc_source *src = ZDMC_NEW(arena, zdmc_source);
	size_t i, n = 1;

	src->name = zdmc_arena_strdup(arena, name);
	src->text = zdmc_arena_strndup(arena, text, len);
	src->len = len;
	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			n++;
	src->line_starts = zdmc_arena_alloc(arena, n * sizeof(size_t));
	src->nlines = n;
	src->line_starts[0] = 0;
	n = 1;
	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			src->line_starts[n++] = i + 1;
	return src;
}

/* Index of the line containing offset (binary search over line starts). */
static size_t
source_line_index(const zdmc_source *src, size_t offset)
{
	size_t lo = 0, hi = src->nlines;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (src->line_starts[mid] <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void
zdmc_source_position(const zdmc_source *src, size_t offset, int *line,
                     int *column)
{
	size_t idx, i;
	int col = 1;

	if (offset > src->len)
		offset = src->len;
	idx = source_line_index(src, offset);
	for (i = src->line_starts[idx]; i < offset; i++)
		if (((unsigned char)src->text[i] & 0xC0) != 0x80)
			col++;
	*line = (int)idx + 1;
	*column = col;
}

const char *
zdmc_source_line(const zdmc_source *src, size_t offset, size_t *line_len)
{
	size_t idx, start, end;

	if (offset > src->len)
		offset = src->len;
	idx = source_line_index(src, offset);
	start = src->line_starts[idx];
	end = start;
	while (end < src->len && src->text[end] != '\n')
		end++;
	if (end > start && src->text[end - 1] == '\r')
		end--;
	*line_len = end - start;
	return src->text + start;
}
