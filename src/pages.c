/*
 * pages.c - the large buffers of a batch, on transparent huge pages; see
 * pages.h.
 */
#define _GNU_SOURCE
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "err.h"

/* Under valgrind a mapping would be memory it knows nothing of: defined
 * from the start (zeroed), never reported leaked. Told it is a heap block,
 * memcheck checks it as it checks malloc's. Without the header (a build
 * machine without valgrind), nothing to tell. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TELL_ALLOC(p, n) VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0)
#define TELL_FREE(p) VALGRIND_FREELIKE_BLOCK(p, 0)
#endif
#endif
#ifndef TELL_ALLOC
#define TELL_ALLOC(p, n) ((void)(p), (void)(n))
#define TELL_FREE(p) ((void)(p))
#endif

/* n rounded up to a multiple of unit (a power of two). */
static size_t round_up(size_t n, size_t unit)
{
    if (n > SIZE_MAX - unit)
        ig_oom(n);
    return (n + unit - 1) & ~(unit - 1);
}

/* len bytes mapped; with huge, len is a multiple of IG_PAGES_HUGE and the
 * mapping starts at a 2 MiB boundary (a huge page can only back an
 * aligned 2 MiB of a mapping): mapped with one huge page to spare, the
 * unaligned head and tail given back, and advised for huge pages. */
static void *map(size_t len, int huge)
{
    size_t span = huge ? round_up(len + IG_PAGES_HUGE, IG_PAGES_HUGE) : len;
    char *p, *a;

    p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        ig_oom(len);
    a = p;
    if (huge) {
        a = (char *)(((uintptr_t)p + IG_PAGES_HUGE - 1) &
                     ~(uintptr_t)(IG_PAGES_HUGE - 1));
        if (a > p)
            munmap(p, (size_t)(a - p));
        if (p + span > a + len)
            munmap(a + len, (size_t)(p + span - (a + len)));
#ifdef MADV_HUGEPAGE
        /* Advice only: without THP (or with it off) the mapping still
         * works, page by page. */
        (void)madvise(a, len, MADV_HUGEPAGE);
#endif
    }
    TELL_ALLOC(a, len);
    return a;
}

void *ig_pages_resize(void *p, size_t *cap, size_t used, size_t want,
                      int huge)
{
    void *q;
    size_t len;

    if (p != NULL && want <= *cap)
        return p;
    if (want < IG_PAGES_MIN) { /* and so was *cap: malloc'ed */
        *cap = want ? want : 1;
        return ig_xrealloc(p, *cap);
    }
    len = round_up(want, huge ? IG_PAGES_HUGE : 4096);
    q = map(len, huge);
    if (used > 0)
        memcpy(q, p, used);
    ig_pages_free(p, *cap);
    *cap = len;
    return q;
}

void ig_pages_free(void *p, size_t cap)
{
    if (p == NULL)
        return;
    if (cap < IG_PAGES_MIN) {
        free(p);
    } else {
        TELL_FREE(p);
        munmap(p, cap);
    }
}
