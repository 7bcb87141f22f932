/*
 * arena.h -- one region of memory per compilation, freed at once.
 *
 * Every AST node, string and plan object of a compile lives in the arena, so
 * error paths never leak and nothing is freed piecemeal.  Allocation failure
 * aborts: the compiler has no sensible way to continue without memory, and a
 * half-written plan is worse than none (plans are written only at the end).
 */
#ifndef ZDMC_ARENA_H
#define ZDMC_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct zdmc_arena zdmc_arena;

zdmc_arena *zdmc_arena_new(void);
void zdmc_arena_free(zdmc_arena *arena);

/* Zeroed memory, aligned for any object. */
void *zdmc_arena_alloc(zdmc_arena *arena, size_t size);
char *zdmc_arena_strdup(zdmc_arena *arena, const char *s);
char *zdmc_arena_strndup(zdmc_arena *arena, const char *s, size_t n);
char *zdmc_arena_printf(zdmc_arena *arena, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *zdmc_arena_vprintf(zdmc_arena *arena, const char *fmt, va_list ap);

#define ZDMC_NEW(arena, type) ((type *)zdmc_arena_alloc((arena), sizeof(type)))

/*
 * A growable string built in the arena; the old buffer is abandoned on growth
 * (the arena frees it with everything else).
 */
typedef struct zdmc_buf {
	zdmc_arena *arena;
	char *data;
	size_t len;
	size_t cap;
} zdmc_buf;

void zdmc_buf_init(zdmc_buf *buf, zdmc_arena *arena);
void zdmc_buf_append(zdmc_buf *buf, const char *s, size_t n);
void zdmc_buf_puts(zdmc_buf *buf, const char *s);
void zdmc_buf_printf(zdmc_buf *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* NUL-terminated contents (never NULL, "" when empty). */
const char *zdmc_buf_cstr(zdmc_buf *buf);

#endif
