/*
 * test_memory.c -- runtime/arena.c and runtime/strbuf.c, the runtime's one
 * region allocator and one text buffer: alignment, contents surviving
 * growth, reset keeping one block, splicing, printf past its small buffer.
 */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/arena.h"
#include "../../runtime/strbuf.h"

static void
test_arena_alloc(void **state)
{
	zdm_arena a = {0};
	unsigned char *p[200];
	size_t i, j;

	(void)state;
	/* sizes across block boundaries, one larger than any block */
	for (i = 0; i < 200; i++) {
		size_t n = i == 100 ? 300 * 1024 : 1 + i * 37;

		p[i] = zdm_arena_alloc(&a, n);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % alignof(max_align_t), 0);
		memset(p[i], (int)(i & 0xff), n);
	}
	/* nothing written later overwrote anything earlier */
	for (i = 0; i < 200; i++) {
		size_t n = i == 100 ? 300 * 1024 : 1 + i * 37;

		for (j = 0; j < n; j++)
			if (p[i][j] != (unsigned char)(i & 0xff))
				fail_msg("allocation %zu byte %zu overwritten",
				         i, j);
	}
	zdm_arena_free(&a);
	assert_null(a.head);
}

static void
test_arena_strndup(void **state)
{
	zdm_arena a = {0};
	char *s = zdm_arena_strndup(&a, "users.name", 5);
	char *t = zdm_arena_strndup(&a, "", 0);

	(void)state;
	assert_string_equal(s, "users");
	assert_string_equal(t, "");
	zdm_arena_free(&a);
}

/* A reset keeps exactly one ordinary block, and the next batch uses it. */
static void
test_arena_reset(void **state)
{
	zdm_arena a = {0};
	void *first;
	size_t i;

	(void)state;
	for (i = 0; i < 5000; i++)
		assert_non_null(zdm_arena_alloc(&a, 64));
	assert_non_null(zdm_arena_alloc(&a, 1024 * 1024)); /* outsized */
	zdm_arena_reset(&a);
	assert_non_null(a.head);
	assert_ptr_equal(a.head, a.tail);
	first = zdm_arena_alloc(&a, 64);
	assert_non_null(first);
	assert_ptr_equal(a.head, a.tail); /* no new block for it */
	zdm_arena_reset(&a);
	assert_ptr_equal(zdm_arena_alloc(&a, 64), first);
	zdm_arena_free(&a);
	/* an empty arena resets to empty */
	zdm_arena_reset(&a);
	assert_null(a.head);
	assert_null(a.tail);
}

static void
test_arena_splice(void **state)
{
	zdm_arena dst = {0}, src = {0}, empty = {0};
	char *d = zdm_arena_strndup(&dst, "kept", 4);
	char *s;
	size_t i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_non_null(zdm_arena_alloc(&src, 1000));
	s = zdm_arena_strndup(&src, "moved", 5);
	zdm_arena_splice(&dst, &src);
	assert_null(src.head);
	assert_null(src.tail);
	zdm_arena_free(&src); /* owns nothing now */
	assert_string_equal(s, "moved");
	assert_string_equal(d, "kept");
	zdm_arena_splice(&dst, &empty); /* nothing to move */
	/* into an empty arena */
	zdm_arena_splice(&empty, &dst);
	assert_string_equal(s, "moved");
	assert_non_null(empty.tail);
	zdm_arena_free(&empty); /* ASan: every block freed once */
}

static void
test_strbuf(void **state)
{
	zdm_strbuf b = {0};
	char want[400];
	size_t i;

	(void)state;
	assert_int_equal(zdm_strbuf_puts(&b, "a"), 0);
	assert_int_equal(zdm_strbuf_put(&b, "bcd", 2), 0);
	assert_int_equal(zdm_strbuf_putc(&b, '-'), 0);
	assert_int_equal(zdm_strbuf_printf(&b, "%d:%s", 42, "x"), 0);
	assert_string_equal(b.data, "abc-42:x");
	assert_int_equal(b.len, 8);
	/* past printf's small buffer, and past the first allocation */
	for (i = 0; i < 300; i++)
		want[i] = (char)('a' + i % 26);
	want[300] = '\0';
	assert_int_equal(zdm_strbuf_printf(&b, "[%s]", want), 0);
	assert_int_equal(b.len, 8 + 302);
	assert_memory_equal(b.data + 9, want, 300);
	assert_string_equal(b.data + 309, "]");
	assert_false(b.failed);
	zdm_strbuf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	/* a reset clears a failure */
	b.failed = true;
	zdm_strbuf_reset(&b);
	assert_false(b.failed);
	zdm_strbuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_alloc),
		cmocka_unit_test(test_arena_strndup),
		cmocka_unit_test(test_arena_reset),
		cmocka_unit_test(test_arena_splice),
		cmocka_unit_test(test_strbuf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
