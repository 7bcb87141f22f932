/*
 * arena.c -- the region allocator of arena.h.  Blocks grow from 1 KiB to
 * 256 KiB, doubling, so a small transaction costs one small block and a
 * large batch few mallocs; a request larger than the next block gets a block
 * of its own size.  Blocks are kept newest first; tail makes splicing O(1).
 */
#include "arena.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN 1024
#define ARENA_BLOCK_MAX (256 * 1024)

struct zdm_arena_block {
	zdm_arena_block *next;
	size_t size, used;
	max_align_t data[];
};

static void *
arena_alloc_aligned(zdm_arena *a, size_t n, size_t align)
{
	zdm_arena_block *b = a->head;
	size_t off, size;

	if (b != NULL) {
		off = (b->used + align - 1) & ~(align - 1);
		if (off <= b->size && n <= b->size - off) {
			b->used = off + n;
			return (char *)b->data + off;
		}
	}
	size = a->next_size ? a->next_size : ARENA_BLOCK_MIN;
	if (size < n)
		size = n;
	b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->used = n;
	b->next = a->head;
	a->head = b;
	if (a->tail == NULL)
		a->tail = b;
	if (a->next_size < ARENA_BLOCK_MAX)
		a->next_size =
			a->next_size ? a->next_size * 2 : ARENA_BLOCK_MIN * 2;
	return b->data;
}

void *
zdm_arena_alloc(zdm_arena *a, size_t n)
{
	return arena_alloc_aligned(a, n, alignof(max_align_t));
}

char *
zdm_arena_strndup(zdm_arena *a, const char *s, size_t n)
{
	/* text needs no alignment: strings pack tight */
	char *d = arena_alloc_aligned(a, n + 1, 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void
zdm_arena_reset(zdm_arena *a)
{
	zdm_arena_block *b, *next, *keep = NULL;

	/* the largest block no larger than the growth's cap: an outsized
	 * one was for one large value, not for the batches to come */
	for (b = a->head; b != NULL; b = b->next)
		if (b->size <= ARENA_BLOCK_MAX &&
		    (keep == NULL || b->size > keep->size))
			keep = b;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (b != keep)
			free(b);
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	a->head = a->tail = keep;
}

void
zdm_arena_splice(zdm_arena *dst, zdm_arena *src)
{
	if (src->head == NULL)
		return;
	src->tail->next = dst->head;
	dst->head = src->head;
	if (dst->tail == NULL)
		dst->tail = src->tail;
	memset(src, 0, sizeof(*src));
}

void
zdm_arena_free(zdm_arena *a)
{
	zdm_arena_block *b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	memset(a, 0, sizeof(*a));
}
