/*
 * test_arena.c - the bump allocator: alignment, copies, and a reset that
 * keeps one block, so memory stays flat over batches of the same shape.
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
    size_t first, kept;
    (void)state;

    round_of(a, 1000); /* ~100 KiB: many 4 KiB blocks */
    first = ig_arena_reserved(a);
    assert_true(first >= 100 * 1000);
    ig_arena_reset(a);
    assert_int_equal(ig_arena_used(a), 0);
    kept = ig_arena_reserved(a); /* one block kept for reuse */
    assert_true(kept >= 4096 && kept < first);
    /* Round after round of the same shape, the arena does not creep. */
    for (int r = 0; r < 10; r++) {
        round_of(a, 1000);
        assert_int_equal(ig_arena_reserved(a), first);
        ig_arena_reset(a);
        assert_int_equal(ig_arena_reserved(a), kept);
    }
    /* One large allocation gets a block of its own, kept by the reset. */
    assert_non_null(ig_arena_alloc(a, 1 << 20));
    ig_arena_reset(a);
    assert_true(ig_arena_reserved(a) >= 1 << 20);
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
