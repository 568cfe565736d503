/*
 * test_pages.c - the large buffers of a huge batch: small ones from
 * malloc, large ones mapped at a 2 MiB boundary, whole huge pages and
 * advised for them (under valgrind heap blocks aligned alike), contents
 * kept as they grow; other buffers malloc'ed; a huge arena's blocks and a
 * huge batch's arrays on them.
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
#include "batch.h"
#include "pages.h"

typedef struct vma {
    uintptr_t lo, hi; /* 0, 0: p is in no mapping */
    int huge;         /* VmFlags "hg": advised MADV_HUGEPAGE */
} vma;

/* The mapping that holds p, from /proc/self/smaps (Linux, as pages.c). */
static vma mapping_of(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    vma v = {0, 0, 0}, cur = {0, 0, 0};
    int in = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ':')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            cur.lo = lo;
            cur.hi = hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            v = cur;
            v.huge = strstr(line, " hg") != NULL;
            in = 0;
        }
    }
    fclose(f);
    return v;
}

static int thp_kernel(void)
{
    return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

/* A huge buffer of cap bytes at p: aligned, and where buffers are
 * mappings, a mapping of its own, exactly that long, advised. */
static void assert_huge_buffer(const char *p, size_t cap)
{
    vma v;

    assert_int_equal(cap % IG_PAGES_HUGE, 0);
    assert_int_equal((uintptr_t)p % IG_PAGES_HUGE, 0);
    if (!ig_pages_mapped())
        return;
    v = mapping_of(p);
    assert_int_equal(v.lo, (uintptr_t)p);
    assert_int_equal(v.hi, (uintptr_t)p + cap);
    if (thp_kernel()) /* the advice; the kernel keeps it where THP is off */
        assert_int_equal(v.huge, 1);
}

static void test_pages_huge_buffers(void **state)
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

    /* From IG_PAGES_MIN on: whole huge pages, aligned, contents kept. */
    p = ig_pages_resize(p, &cap, 4, IG_PAGES_MIN, 1);
    assert_int_equal(cap, IG_PAGES_HUGE);
    assert_huge_buffer(p, cap);
    assert_string_equal(p, "abc");
    memset(p + 4, 0x5a, cap - 4); /* all of it is writable */
    p = ig_pages_resize(p, &cap, cap, 3 * IG_PAGES_HUGE + 1, 1);
    assert_int_equal(cap, 4 * IG_PAGES_HUGE);
    assert_huge_buffer(p, cap);
    assert_string_equal(p, "abc");
    assert_int_equal((unsigned char)p[IG_PAGES_HUGE - 1], 0x5a);
    memset(p + IG_PAGES_HUGE, 0x5b, cap - IG_PAGES_HUGE);
    ig_pages_free(p, cap, 1);
    if (ig_pages_mapped())
        assert_int_equal(mapping_of(p).lo == (uintptr_t)p, 0); /* unmapped */
    ig_pages_free(NULL, 0, 1);
    ig_pages_free(NULL, IG_PAGES_HUGE, 1);

    /* Not huge: malloc'ed whatever the size, exactly what was asked. */
    cap = 0;
    p = ig_pages_resize(NULL, &cap, 0, IG_PAGES_MIN + 5, 0);
    assert_int_equal(cap, IG_PAGES_MIN + 5);
    memcpy(p, "xyz", 4);
    p = ig_pages_resize(p, &cap, 4, 3 * IG_PAGES_HUGE, 0);
    assert_int_equal(cap, 3 * IG_PAGES_HUGE);
    assert_string_equal(p, "xyz");
    memset(p + 4, 0x11, cap - 4);
    assert_int_equal(mapping_of(p).huge, 0);
    ig_pages_free(p, cap, 0);
}

static void test_pages_arena_blocks(void **state)
{
    ig_arena *a = ig_arena_new_huge(IG_PAGES_MIN), *small = ig_arena_new(0);
    char *p, *q;
    vma v;
    (void)state;

    /* One block: a whole huge page less the block's own header. */
    p = ig_arena_alloc(a, 100);
    assert_true(ig_arena_reserved(a) < IG_PAGES_HUGE);
    assert_true(ig_arena_reserved(a) >= IG_PAGES_HUGE - 64);
    assert_int_equal((uintptr_t)p / IG_PAGES_HUGE,
                     ((uintptr_t)p + IG_PAGES_HUGE - 64) / IG_PAGES_HUGE);
    if (ig_pages_mapped()) {
        v = mapping_of(p);
        assert_int_equal(v.lo, (uintptr_t)p / IG_PAGES_HUGE * IG_PAGES_HUGE);
        assert_int_equal(v.hi - v.lo, IG_PAGES_HUGE);
    }
    /* Filled up, the next block is another huge page, just one. */
    q = ig_arena_alloc(a, IG_PAGES_HUGE - 100);
    assert_true(ig_arena_reserved(a) >= 2 * (IG_PAGES_HUGE - 64));
    assert_true(ig_arena_reserved(a) < 2 * IG_PAGES_HUGE);
    memset(q, 1, IG_PAGES_HUGE - 100);
    ig_arena_reset(a);
    assert_ptr_equal(ig_arena_alloc(a, 100), p); /* kept, reused */
    ig_arena_free(a);

    /* Another arena's blocks are malloc'ed whatever their size, doubled
     * from its block size. */
    ig_arena_alloc(small, 10);
    assert_int_equal(ig_arena_reserved(small), 64 * 1024);
    p = ig_arena_alloc(small, 1 << 20);
    assert_int_equal(ig_arena_reserved(small), 64 * 1024 + (1 << 20));
    memset(p, 2, 1 << 20);
    assert_int_equal(mapping_of(p).huge, 0);
    ig_arena_free(small);
}

/* A huge batch reserved for 9000 rows takes 20000 longer ones: its row
 * array and COPY lines move to larger huge buffers, every line intact. */
static void test_pages_huge_batch(void **state)
{
    ig_batch *b = ig_batch_new_huge();
    ig_record rec;
    char val[151], want[200];
    const char *data, *line;
    size_t len;
    (void)state;

    assert_true(9000 * sizeof(ig_batch_row) >= IG_PAGES_MIN);
    assert_true(9000 * 128 >= IG_PAGES_MIN); /* ig_batch_reserve's guess */
    ig_batch_reserve(b, 9000);
    memset(&rec, 0, sizeof(rec));
    for (size_t i = 0; i < 20000; i++) {
        ig_value v;
        if (i == 1) { /* reserved: both arrays on huge pages already */
            assert_int_equal((uintptr_t)ig_batch_row_at(b, 0) %
                                 IG_PAGES_HUGE, 0);
            assert_int_equal((uintptr_t)ig_batch_copy_data(b, &len) %
                                 IG_PAGES_HUGE, 0);
        }
        snprintf(val, sizeof(val), "%0150zu", i);
        v = (ig_value){val, 150, 0};
        rec.recno = (long long)i + 1;
        ig_batch_begin_row(b, &rec);
        ig_batch_put_value(b, v);
        ig_batch_end_row(b);
    }
    assert_int_equal(ig_batch_nrows(b), 20000);
    data = ig_batch_copy_data(b, &len);
    assert_int_equal((uintptr_t)data % IG_PAGES_HUGE, 0);
    assert_int_equal((uintptr_t)ig_batch_row_at(b, 0) % IG_PAGES_HUGE, 0);
    for (size_t i = 0; i < 20000; i++) {
        size_t n;
        line = ig_batch_line(b, i, &n);
        snprintf(want, sizeof(want), "%zu\t%0150zu\n", i, i);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(line, want, n);
        assert_int_equal(ig_batch_row_at(b, i)->rec.recno, (long long)i + 1);
    }
    ig_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_huge_buffers),
        cmocka_unit_test(test_pages_arena_blocks),
        cmocka_unit_test(test_pages_huge_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
