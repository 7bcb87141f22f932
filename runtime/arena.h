/*
 * arena.h -- the runtime's region allocator: bump allocation in blocks,
 * everything freed at once.
 *
 * For memory whose lifetime is a batch or a transaction of change events
 * (the two CDC sources' decoded rows and their strings), where freeing piece
 * by piece would cost more than the work.  A zeroed zdm_arena is empty and
 * ready; it may be copied by assignment while it owns blocks (then only the
 * copy is used).  Allocation failure returns NULL: unlike the compiler's
 * arena (compiler/arena.c) the runtime never aborts, its callers report
 * and roll back.  Not thread-safe; no global state.
 */
#ifndef ZDM_ARENA_H
#define ZDM_ARENA_H

#include <stddef.h>

typedef struct zdm_arena_block zdm_arena_block;

typedef struct zdm_arena {
	zdm_arena_block *head; /* allocation happens here */
	zdm_arena_block *tail;
	size_t next_size; /* the next block's size; 0 before the first */
} zdm_arena;

/* n bytes aligned for any object, or NULL out of memory. */
void *zdm_arena_alloc(zdm_arena *a, size_t n);
/* A NUL-terminated copy of n bytes of s, or NULL out of memory. */
char *zdm_arena_strndup(zdm_arena *a, const char *s, size_t n);
/*
 * Forget everything allocated, keeping the largest ordinary block for what
 * comes next: an arena reset per batch settles at one block and stops
 * allocating.
 */
void zdm_arena_reset(zdm_arena *a);
/* Move every block of src into dst, which frees them with its own; src is
 * left empty. */
void zdm_arena_splice(zdm_arena *dst, zdm_arena *src);
/* Free every block; a stays usable, empty. */
void zdm_arena_free(zdm_arena *a);

#endif
