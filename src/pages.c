/*
 * pages.c - the large buffers of a huge batch, on transparent huge pages;
 * see pages.h.
 */
#define _GNU_SOURCE
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "err.h"

/* Under valgrind a mapping is memory memcheck checks less: defined from
 * the start, scanned as a root by the leak check. There the buffers are
 * heap blocks, aligned alike. A build machine without valgrind's header
 * cannot ask. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

int ig_pages_mapped(void)
{
    return !UNDER_VALGRIND();
}

/* len bytes (a multiple of IG_PAGES_HUGE) at a 2 MiB boundary, advised
 * for huge pages: a huge page can only back an aligned 2 MiB of a
 * mapping. Mapped with one huge page to spare, the unaligned head and
 * tail given back. */
static void *map_huge(size_t len)
{
    size_t span;
    char *p, *a;

    if (!ig_pages_mapped()) {
        void *q = NULL;
        if (posix_memalign(&q, IG_PAGES_HUGE, len) != 0)
            ig_oom(len);
        return q;
    }
    if (len > SIZE_MAX - IG_PAGES_HUGE)
        ig_oom(len);
    span = len + IG_PAGES_HUGE;
    p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if (p == MAP_FAILED)
        ig_oom(len);
    a = (char *)(((uintptr_t)p + IG_PAGES_HUGE - 1) &
                 ~(uintptr_t)(IG_PAGES_HUGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (p + span > a + len)
        munmap(a + len, (size_t)(p + span - (a + len)));
#ifdef MADV_HUGEPAGE
    /* Advice only: without THP (or with it off) the mapping still works,
     * page by page. */
    (void)madvise(a, len, MADV_HUGEPAGE);
#endif
    return a;
}

void *ig_pages_resize(void *p, size_t *cap, size_t used, size_t want,
                      int huge)
{
    void *q;
    size_t len;

    if (p != NULL && want <= *cap)
        return p;
    if (!huge || want < IG_PAGES_MIN) { /* and so was *cap: malloc'ed */
        *cap = want ? want : 1;
        return ig_xrealloc(p, *cap);
    }
    if (want > SIZE_MAX - IG_PAGES_HUGE)
        ig_oom(want);
    len = (want + IG_PAGES_HUGE - 1) & ~(IG_PAGES_HUGE - 1);
    q = map_huge(len);
    if (used > 0)
        memcpy(q, p, used);
    ig_pages_free(p, *cap, huge);
    *cap = len;
    return q;
}

void ig_pages_free(void *p, size_t cap, int huge)
{
    if (p == NULL)
        return;
    if (!huge || cap < IG_PAGES_MIN || !ig_pages_mapped())
        free(p);
    else
        munmap(p, cap);
}
