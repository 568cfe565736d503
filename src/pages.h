/*
 * pages.h - the large buffers of a batch, on transparent huge pages.
 *
 * A batch of 10,000 rows touches about 5 MiB of fresh memory (its fields,
 * COPY lines, row array), and every fresh 4 KiB page costs a page fault:
 * on the virtual machines ingot runs on, 10-14 us each, a third of the
 * time it takes to read and map those rows, and ingot waits for the
 * first batch's. That batch's buffers of IG_PAGES_MIN bytes or more are
 * therefore mapped on their own, aligned to 2 MiB and advised for huge
 * pages (madvise MADV_HUGEPAGE): where transparent huge pages are on
 * ("always" or "madvise") and the kernel has one free, one fault and
 * 2 MiB zeroed instead of 512 faults. Otherwise the mapping behaves as
 * any other: 4 KiB pages, the untouched ones costing nothing. Rounded up
 * to whole huge pages, a buffer is resident whole once touched: the
 * threshold keeps that under half of it, and the later batches, whose
 * filling overlaps the database's work and whose memory is reused batch
 * after batch, keep to 4 KiB pages. Smaller buffers come from malloc.
 * Under valgrind the mappings are checked as heap blocks;
 * AddressSanitizer's leak check does not see them (they have one owner
 * each: an arena, a batch, a mapper).
 */
#ifndef IG_PAGES_H
#define IG_PAGES_H

#include <stddef.h>

/* The huge page size ingot aligns to (x86-64 and arm64 with 4 KiB
 * pages). */
#define IG_PAGES_HUGE ((size_t)2 << 20)

/* Requests from this size on are mapped; below it, malloc'ed. */
#define IG_PAGES_MIN ((size_t)1 << 20)

/* Resize the buffer p of *cap bytes, whose first used bytes are kept, to
 * at least want bytes (want >= used; p NULL and *cap 0 for a new one).
 * With huge, a mapped buffer is rounded up to whole huge pages and
 * advised for them; without, it is mapped as malloc maps a large block.
 * Sets *cap to the bytes it really has, which is how ig_pages_free knows
 * where they came from. Owned: free with ig_pages_free(p, *cap). Aborts
 * on OOM (see err.h). */
void *ig_pages_resize(void *p, size_t *cap, size_t used, size_t want,
                      int huge);

/* Free a buffer of cap bytes (the *cap ig_pages_resize set). NULL is a
 * no-op. */
void ig_pages_free(void *p, size_t cap);

#endif
