/*
 * arena.c - bump allocator; see arena.h.
 */
#include "arena.h"

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
    block *head; /* current block (first in list) */
    size_t block_size;
    size_t used;
    size_t reserved;
};

static size_t header_size(void)
{
    return (sizeof(block) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static block *block_new(size_t size)
{
    block *b = ig_xmalloc(header_size() + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

ig_arena *ig_arena_new(size_t block_size)
{
    ig_arena *a = ig_xcalloc(1, sizeof(*a));
    a->block_size = block_size ? block_size : 64 * 1024;
    return a;
}

void ig_arena_free(ig_arena *a)
{
    block *b, *next;

    if (a == NULL)
        return;
    for (b = a->head; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

void ig_arena_reset(ig_arena *a)
{
    block *keep, *b, *next;

    if (a->head == NULL)
        return;
    /* Keep the largest block: after a reset the arena should not need to
     * grow again for a batch of the same shape. */
    keep = a->head;
    for (b = a->head; b; b = b->next)
        if (b->size > keep->size)
            keep = b;
    for (b = a->head; b; b = next) {
        next = b->next;
        if (b != keep)
            free(b);
    }
    keep->next = NULL;
    keep->used = 0;
    a->head = keep;
    a->used = 0;
    a->reserved = keep->size;
}

void *ig_arena_alloc(ig_arena *a, size_t n)
{
    block *b = a->head;
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (need == 0)
        need = ARENA_ALIGN;
    if (b == NULL || b->size - b->used < need) {
        size_t size = a->block_size;
        while (size < need)
            size *= 2;
        /* A new block goes in front; the old one's tail is abandoned. */
        b = block_new(size);
        b->next = a->head;
        a->head = b;
        a->reserved += size;
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
