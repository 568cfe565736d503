/*
 * test_arena.c - the bump allocator: alignment, copies, and a reset that
 * keeps its blocks, so batches of the same shape reuse the same memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "arena.h"

static void test_arena_alignment_and_copies(void **state)
{
    ig_arena *a = ig_arena_new(128);
    char *s;
    (void)state;

    for (size_t n = 1; n < 300; n += 7) {
        void *p = ig_arena_alloc(a, n);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, n); /* the whole span is writable (ASan checks) */
    }
    s = ig_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_string_equal(ig_arena_strdup(a, ""), "");
    assert_true(ig_arena_used(a) > 0);
    assert_true(ig_arena_reserved(a) >= ig_arena_used(a));
    ig_arena_free(a);
}

/* One round: what a batch of `rows` rows of ~100 bytes allocates. */
static void round_of(ig_arena *a, int rows)
{
    for (int i = 0; i < rows; i++) {
        char *p = ig_arena_alloc(a, 96 + (size_t)(i % 9));
        p[0] = 'x';
    }
}

static void test_arena_reset_keeps_memory_flat(void **state)
{
    ig_arena *a = ig_arena_new(4096);
    size_t first;
    char *p0, *p;
    (void)state;

    p0 = ig_arena_alloc(a, 16);
    round_of(a, 1000); /* ~100 KiB: many 4 KiB blocks */
    first = ig_arena_reserved(a);
    assert_true(first >= 100 * 1000);
    ig_arena_reset(a);
    assert_int_equal(ig_arena_used(a), 0);
    assert_int_equal(ig_arena_reserved(a), first); /* every block kept */
    /* Round after round of the same shape, the same memory again. */
    for (int r = 0; r < 10; r++) {
        p = ig_arena_alloc(a, 16);
        assert_ptr_equal(p, p0);
        round_of(a, 1000);
        assert_int_equal(ig_arena_reserved(a), first);
        ig_arena_reset(a);
    }
    /* A smaller round takes no more; a larger one grows it once. */
    round_of(a, 10);
    assert_int_equal(ig_arena_reserved(a), first);
    ig_arena_reset(a);
    round_of(a, 2000);
    assert_true(ig_arena_reserved(a) > first);
    first = ig_arena_reserved(a);
    ig_arena_reset(a);
    round_of(a, 2000);
    assert_int_equal(ig_arena_reserved(a), first);
    ig_arena_reset(a);
    /* One large allocation gets a block of its own, kept by the reset and
     * taken again by the next one that size; the small blocks it skipped
     * serve the small ones. */
    assert_non_null(ig_arena_alloc(a, 1 << 20));
    first = ig_arena_reserved(a);
    assert_true(first >= 1 << 20);
    ig_arena_reset(a);
    for (int r = 0; r < 3; r++) {
        round_of(a, 500);
        assert_non_null(ig_arena_alloc(a, 1 << 20));
        assert_int_equal(ig_arena_reserved(a), first);
        ig_arena_reset(a);
    }
    ig_arena_free(a);
}

static void test_arena_reset_of_an_unused_arena(void **state)
{
    ig_arena *a = ig_arena_new(0);
    (void)state;

    ig_arena_reset(a); /* no block yet: nothing to keep */
    assert_int_equal(ig_arena_reserved(a), 0);
    assert_non_null(ig_arena_alloc(a, 0));
    ig_arena_free(a);
    ig_arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alignment_and_copies),
        cmocka_unit_test(test_arena_reset_keeps_memory_flat),
        cmocka_unit_test(test_arena_reset_of_an_unused_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
