/*
 * arena.c -- bump allocation in chained blocks.
 *
 * Objects are never freed one by one; zdmc_arena_free releases every block.
 * Large requests get a block of their own so the common small allocations
 * keep packing densely.
 */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_SIZE (64 * 1024)
#define ARENA_ALIGN (sizeof(max_align_t))

typedef struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t size;
	max_align_t data[]; /* aligned start of the usable bytes */
} arena_block;

struct zdmc_arena {
	arena_block *blocks;
};

static void *
arena_xmalloc(size_t size)
{
	void *p = malloc(size);

	if (p == NULL) {
		fputs("zdmc: out of memory\n", stderr);
		abort();
	}
	return p;
}

zdmc_arena *
zdmc_arena_new(void)
{
	zdmc_arena *arena = arena_xmalloc(sizeof(*arena));

	arena->blocks = NULL;
	return arena;
}

void
zdmc_arena_free(zdmc_arena *arena)
{
	arena_block *block, *next;

	if (arena == NULL)
		return;
	for (block = arena->blocks; block != NULL; block = next) {
		next = block->next;
		free(block);
	}
	free(arena);
}

void *
zdmc_arena_alloc(zdmc_arena *arena, size_t size)
{
	arena_block *block = arena->blocks;
	size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	void *p;

	if (rounded == 0)
		rounded = ARENA_ALIGN;
	if (block == NULL || block->size - block->used < rounded) {
		size_t bsize = rounded > ARENA_BLOCK_SIZE / 4
		                       ? rounded
		                       : ARENA_BLOCK_SIZE;

		block = arena_xmalloc(sizeof(arena_block) + bsize);
		block->size = bsize;
		block->used = 0;
		if (rounded > ARENA_BLOCK_SIZE / 4 && arena->blocks != NULL) {
			/* keep the current block for small objects */
			block->next = arena->blocks->next;
			arena->blocks->next = block;
		} else {
			block->next = arena->blocks;
			arena->blocks = block;
		}
	}
	p = (char *)block->data + block->used;
	block->used += rounded;
	memset(p, 0, size);
	return p;
}

char *
zdmc_arena_strndup(zdmc_arena *arena, const char *s, size_t n)
{
	char *copy = zdmc_arena_alloc(arena, n + 1);

	memcpy(copy, s, n);
	copy[n] = '\0';
	return copy;
}

char *
zdmc_arena_strdup(zdmc_arena *arena, const char *s)
{
	return zdmc_arena_strndup(arena, s, strlen(s));
}

char *
zdmc_arena_vprintf(zdmc_arena *arena, const char *fmt, va_list ap)
{
	va_list copy;
	int n;
	char *out;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		n = 0;
	out = zdmc_arena_alloc(arena, (size_t)n + 1);
	vsnprintf(out, (size_t)n + 1, fmt, ap);
	return out;
}

char *
zdmc_arena_printf(zdmc_arena *arena, const char *fmt, ...)
{
	va_list ap;
	char *out;

	va_start(ap, fmt);
	out = zdmc_arena_vprintf(arena, fmt, ap);
	va_end(ap);
	return out;
}

void
zdmc_buf_init(zdmc_buf *buf, zdmc_arena *arena)
{
	buf->arena = arena;
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void
zdmc_buf_append(zdmc_buf *buf, const char *s, size_t n)
{
	if (buf->len + n + 1 > buf->cap) {
		size_t cap = buf->cap ? buf->cap * 2 : 256;
		char *data;

		while (cap < buf->len + n + 1)
			cap *= 2;
		data = zdmc_arena_alloc(buf->arena, cap);
		if (buf->len)
			memcpy(data, buf->data, buf->len);
		buf->data = data;
		buf->cap = cap;
	}
	memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
}

void
zdmc_buf_puts(zdmc_buf *buf, const char *s)
{
	zdmc_buf_append(buf, s, strlen(s));
}

void
zdmc_buf_printf(zdmc_buf *buf, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = zdmc_arena_vprintf(buf->arena, fmt, ap);
	va_end(ap);
	zdmc_buf_puts(buf, s);
}

const char *
zdmc_buf_cstr(zdmc_buf *buf)
{
	return buf->data ? buf->data : "";
}
