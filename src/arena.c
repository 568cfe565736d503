/*
 * arena.c - bump allocator; see arena.h.
 */
#include "arena.h"
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

typedef struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    /* data follows, aligned */
} block;

struct ig_arena {
    block *head;  /* blocks in use since the last reset, current first */
    block *spare; /* blocks a reset gave back, in the order they were used */
    size_t block_size;
    int huge; /* large blocks on huge pages (pages.h) */
    size_t used;
    size_t reserved;
};

static size_t header_size(void)
{
    return (sizeof(block) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

/* A block with at least size usable bytes: in a huge arena a large one
 * is mapped on huge pages, and has what rounding up to them gave. */
static block *block_new(size_t size, int huge)
{
    size_t cap = 0;
    block *b = ig_pages_resize(NULL, &cap, 0, header_size() + size, huge);
    b->next = NULL;
    b->size = cap - header_size();
    b->used = 0;
    return b;
}

static void free_list(block *b, int huge)
{
    while (b) {
        block *next = b->next;
        ig_pages_free(b, header_size() + b->size, huge);
        b = next;
    }
}

ig_arena *ig_arena_new(size_t block_size)
{
    ig_arena *a = ig_xcalloc(1, sizeof(*a));
    a->block_size = block_size ? block_size : 64 * 1024;
    return a;
}

ig_arena *ig_arena_new_huge(size_t block_size)
{
    ig_arena *a = ig_arena_new(block_size);
    a->huge = 1;
    return a;
}

void ig_arena_free(ig_arena *a)
{
    if (a == NULL)
        return;
    free_list(a->head, a->huge);
    free_list(a->spare, a->huge);
    free(a);
}

void ig_arena_reset(ig_arena *a)
{
    block *b, *order = NULL;

    /* Every block is kept, in the order the last round took them: a
     * round of the same shape takes the same blocks again, so a batch
     * loop touches no fresh memory (fresh pages each cost a page fault)
     * and the arena holds what its largest round needed, no more. */
    while (a->head) {
        b = a->head;
        a->head = b->next;
        b->used = 0;
        b->next = order;
        order = b;
    }
    if (order != NULL) {
        for (b = order; b->next; b = b->next)
            ;
        b->next = a->spare;
        a->spare = order;
    }
    a->used = 0;
}

/* The smallest spare block with room for need, unlinked (NULL if none):
 * small allocations leave the large blocks to the large ones. */
static block *take_spare(ig_arena *a, size_t need)
{
    block **best = NULL, *b;

    for (block **pp = &a->spare; *pp; pp = &(*pp)->next)
        if ((*pp)->size >= need &&
            (best == NULL || (*pp)->size < (*best)->size))
            best = pp;
    if (best == NULL)
        return NULL;
    b = *best;
    *best = b->next;
    b->next = NULL;
    return b;
}

void *ig_arena_alloc(ig_arena *a, size_t n)
{
    block *b = a->head;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (need == 0)
        need = ARENA_ALIGN;
    if (b == NULL || b->size - b->used < need) {
        b = take_spare(a, need);
        if (b == NULL) {
            size_t size = a->block_size;
            while (size < need)
                size *= 2;
            /* A huge arena's mapped block is rounded up to whole huge
             * pages anyway: doubled first, one just over a power of two
             * took twice the pages it needed. */
            if (a->huge && header_size() + size >= IG_PAGES_MIN)
                size = need > a->block_size ? need : a->block_size;
            b = block_new(size, a->huge);
            a->reserved += b->size;
        }
        /* In front; the old block's tail is abandoned until the reset. */
        b->next = a->head;
        a->head = b;
    }
    p = (char *)b + header_size() + b->used;
    b->used += need;
    a->used += need;
    return p;
}

char *ig_arena_strndup(ig_arena *a, const char *p, size_t n)
{
    char *s = ig_arena_alloc(a, n + 1);
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *ig_arena_strdup(ig_arena *a, const char *s)
{
    return ig_arena_strndup(a, s, strlen(s));
}

size_t ig_arena_used(const ig_arena *a)
{
    return a->used;
}

size_t ig_arena_reserved(const ig_arena *a)
{
    return a->reserved;
}
