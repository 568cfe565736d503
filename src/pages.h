/*
 * pages.h - the large buffers of the first batch, on transparent huge
 * pages.
 *
 * A batch of 10,000 rows touches about 5 MiB of fresh memory (its fields,
 * COPY lines, row array), and every fresh 4 KiB page costs a page fault:
 * on the virtual machines ingot runs on, 10-14 us each, a third of the
 * time it takes to read and map those rows, and ingot waits for the
 * first batch's. A huge batch (the first, see batch.h) therefore maps its
 * buffers of IG_PAGES_MIN bytes or more on their own, aligned to 2 MiB
 * and advised for huge pages (madvise MADV_HUGEPAGE): where transparent
 * huge pages are on ("always" or "madvise") and the kernel has one free,
 * one fault and 2 MiB zeroed instead of 512 faults. Otherwise the mapping
 * behaves as any other: 4 KiB pages, the untouched ones costing nothing.
 * Rounded up to whole huge pages, a buffer is resident whole once
 * touched: the threshold keeps the rounding to at most half of it. Other
 * buffers, and the other batches', whose filling overlaps the database's
 * work, come from malloc. Under valgrind the huge buffers are aligned heap
 * blocks (ig_pages_mapped), checked as malloc's are; AddressSanitizer
 * does not see inside the mappings (they have one owner each, an arena or
 * a batch).
 */
#ifndef IG_PAGES_H
#define IG_PAGES_H

#include <stddef.h>

/* The huge page size ingot aligns to (x86-64 and arm64 with 4 KiB
 * pages). */
#define IG_PAGES_HUGE ((size_t)2 << 20)

/* Requests of a huge buffer from this size on are mapped; below it,
 * malloc'ed. */
#define IG_PAGES_MIN ((size_t)1 << 20)

/* Resize the buffer p of *cap bytes, whose first used bytes are kept, to
 * at least want bytes (want >= used; p NULL and *cap 0 for a new one).
 * With huge, a buffer of IG_PAGES_MIN bytes or more is mapped, rounded up
 * to whole huge pages and advised for them; anything else is malloc'ed.
 * Sets *cap to the bytes it really has, which with huge is how
 * ig_pages_free knows where they came from. Owned: free with
 * ig_pages_free(p, *cap, huge), huge as here. Aborts on OOM (see
 * err.h). */
void *ig_pages_resize(void *p, size_t *cap, size_t used, size_t want,
                      int huge);

/* Free a buffer of cap bytes (the *cap ig_pages_resize set, the same
 * huge). NULL is a no-op. */
void ig_pages_free(void *p, size_t cap, int huge);

/* Whether huge buffers are mappings: 0 under valgrind, where they are
 * heap blocks aligned to 2 MiB. */
int ig_pages_mapped(void);

#endif
