/*
 * arena.h - bump allocator for per-batch data (fields, transformed values).
 *
 * Memory is taken from the system in blocks and handed out by bumping a
 * pointer; nothing is freed individually. ig_arena_reset() makes the whole
 * arena reusable (keeping its blocks), so a batch loop allocates from the
 * system only while the arena grows, then reuses the same memory: it
 * stays flat whatever the file size, and no fresh page is touched again.
 * Not thread-safe: one owner at a time.
 */
#ifndef IG_ARENA_H
#define IG_ARENA_H

#include <stddef.h>

#include "err.h"

typedef struct ig_arena ig_arena; /* opaque */

/* New arena whose blocks are at least block_size bytes (0 = 64 KiB).
 * Owned; free with ig_arena_free(). Aborts on OOM (see err.h). */
ig_arena *ig_arena_new(size_t block_size);

/* The same, a block that takes IG_PAGES_MIN bytes or more (with its few
 * bytes of header) mapped on huge pages and rounded up to whole ones (see
 * pages.h): ig_arena_new_huge(IG_PAGES_MIN) makes blocks of one huge page
 * each, and an allocation larger than that a block of as many as it
 * needs. */
ig_arena *ig_arena_new_huge(size_t block_size);

/* Free all blocks. NULL is a no-op. */
void ig_arena_free(ig_arena *a);

/* Release everything allocated so far; keeps the blocks for reuse. All
 * pointers handed out before become invalid. Cannot fail. */
void ig_arena_reset(ig_arena *a);

/* n bytes aligned for any type. Borrowed from the arena: valid until the
 * next reset/free. Aborts on OOM. */
void *ig_arena_alloc(ig_arena *a, size_t n);

/* Copy of p[0..n) plus a terminating NUL, in the arena. */
char *ig_arena_strndup(ig_arena *a, const char *p, size_t n);
char *ig_arena_strdup(ig_arena *a, const char *s);

/* Bytes currently handed out and bytes held from the system. */
size_t ig_arena_used(const ig_arena *a);
size_t ig_arena_reserved(const ig_arena *a);

#endif /* IG_ARENA_H */
