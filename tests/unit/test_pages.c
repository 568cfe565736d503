/*
 * test_pages.c - the large buffers of a batch: small ones from malloc,
 * large ones mapped (for a huge batch at a 2 MiB boundary, advised for
 * huge pages), contents kept as they grow; a huge arena asked for
 * IG_PAGES_MIN blocks gets them whole huge pages, another arena plain
 * mappings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "pages.h"

/* Whether the mapping holding p carries the kernel's "hg" flag (advised
 * MADV_HUGEPAGE), from /proc/self/smaps; -1 if p is in no mapping. */
static int advised_huge(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r"); /* Linux, as pages.c */
    char line[512];
    int in = 0, found = -1;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ':') &&
            strncmp(line, "VmFlags", 7) != 0) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            found = strstr(line, " hg") != NULL;
            in = 0;
        }
    }
    fclose(f);
    return found;
}

static void test_pages_small_from_malloc_large_mapped(void **state)
{
    size_t cap = 0;
    char *p;
    (void)state;

    p = ig_pages_resize(NULL, &cap, 0, 1000, 1);
    assert_int_equal(cap, 1000); /* malloc'ed: exactly what was asked */
    memcpy(p, "abc", 4);
    p = ig_pages_resize(p, &cap, 4, 5000, 1);
    assert_int_equal(cap, 5000);
    assert_string_equal(p, "abc");
    /* Asking for no more than it has changes nothing. */
    assert_ptr_equal(ig_pages_resize(p, &cap, 4, 10, 1), p);
    assert_int_equal(cap, 5000);

    /* Past IG_PAGES_MIN: mapped, whole huge pages, aligned, contents
     * kept. */
    p = ig_pages_resize(p, &cap, 4, IG_PAGES_MIN, 1);
    assert_int_equal(cap, IG_PAGES_HUGE);
    assert_int_equal((uintptr_t)p % IG_PAGES_HUGE, 0);
    assert_string_equal(p, "abc");
    memset(p + 4, 0x5a, cap - 4); /* all of it is mapped, writable */
    /* The advice, not the huge pages themselves: the kernel keeps it
     * (VmFlags "hg") also where THP is "never". */
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
        assert_int_equal(advised_huge(p), 1);
    p = ig_pages_resize(p, &cap, cap, 3 * IG_PAGES_HUGE + 1, 1);
    assert_int_equal(cap, 4 * IG_PAGES_HUGE);
    assert_int_equal((uintptr_t)p % IG_PAGES_HUGE, 0);
    assert_string_equal(p, "abc");
    assert_int_equal((unsigned char)p[IG_PAGES_HUGE - 1], 0x5a);
    ig_pages_free(p, cap);
    assert_int_equal(advised_huge(p), -1); /* unmapped */
    ig_pages_free(NULL, 0);
    ig_pages_free(NULL, IG_PAGES_HUGE);

    /* Not huge: mapped too, but to the page, and without the advice. */
    cap = 0;
    p = ig_pages_resize(NULL, &cap, 0, IG_PAGES_MIN + 5, 0);
    assert_int_equal(cap, IG_PAGES_MIN + 4096);
    memset(p, 0x11, cap);
    assert_int_equal(advised_huge(p), 0);
    memcpy(p, "xyz", 4);
    p = ig_pages_resize(p, &cap, 4, 2 * IG_PAGES_MIN, 0);
    assert_int_equal(cap, 2 * IG_PAGES_MIN);
    assert_string_equal(p, "xyz");
    ig_pages_free(p, cap);
    assert_int_equal(advised_huge(p), -1);
}

static void test_pages_arena_blocks(void **state)
{
    ig_arena *a = ig_arena_new_huge(IG_PAGES_MIN), *small = ig_arena_new(0);
    char *p, *q;
    (void)state;

    /* One block: a whole huge page less the block's own header. */
    p = ig_arena_alloc(a, 100);
    assert_true(ig_arena_reserved(a) < IG_PAGES_HUGE);
    assert_true(ig_arena_reserved(a) >= IG_PAGES_HUGE - 64);
    assert_int_equal((uintptr_t)p / IG_PAGES_HUGE,
                     ((uintptr_t)p + IG_PAGES_HUGE - 64) / IG_PAGES_HUGE);
    /* Filled up, the next block is another huge page, just one. */
    q = ig_arena_alloc(a, IG_PAGES_HUGE - 100);
    assert_true(ig_arena_reserved(a) >= 2 * (IG_PAGES_HUGE - 64));
    assert_true(ig_arena_reserved(a) < 2 * IG_PAGES_HUGE);
    memset(q, 1, IG_PAGES_HUGE - 100);
    ig_arena_reset(a);
    assert_ptr_equal(ig_arena_alloc(a, 100), p); /* kept, reused */
    ig_arena_free(a);

    /* Another arena's blocks stay malloc'ed, but one too large for them
     * is mapped, to the page, without the advice. */
    ig_arena_alloc(small, 10);
    assert_int_equal(ig_arena_reserved(small), 64 * 1024);
    p = ig_arena_alloc(small, 1 << 20);
    assert_true(ig_arena_reserved(small) >= 64 * 1024 + (1 << 20));
    assert_true(ig_arena_reserved(small) < 64 * 1024 + (1 << 20) + 4096);
    memset(p, 2, 1 << 20);
    assert_int_equal(advised_huge(p), 0);
    ig_arena_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_small_from_malloc_large_mapped),
        cmocka_unit_test(test_pages_arena_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
