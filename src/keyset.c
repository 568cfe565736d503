/*
 * keyset.c - open-addressing fingerprint set; see keyset.h.
 *
 * Linear probing over two parallel arrays (fingerprints, rows). Fingerprint
 * 0 marks an empty slot, so a real fingerprint of 0 is stored as 1.
 */
#include "keyset.h"

#include "err.h"

#include <stdlib.h>
#include <xxhash.h>

struct ig_keyset {
    uint64_t *fp;
    uint32_t *row;
    size_t cap; /* power of two */
    size_t n;
};

ig_keyset *ig_keyset_new(void)
{
    ig_keyset *s = ig_xcalloc(1, sizeof(*s));
    s->cap = 1024;
    s->fp = ig_xcalloc(s->cap, sizeof(*s->fp));
    s->row = ig_xcalloc(s->cap, sizeof(*s->row));
    return s;
}

void ig_keyset_free(ig_keyset *s)
{
    if (s == NULL)
        return;
    free(s->fp);
    free(s->row);
    free(s);
}

static uint64_t fingerprint(const void *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    return h ? h : 1;
}

static size_t probe(const ig_keyset *s, uint64_t h)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)(h ^ (h >> 29)) & mask;
    while (s->fp[i] != 0 && s->fp[i] != h)
        i = (i + 1) & mask;
    return i;
}

static void grow(ig_keyset *s)
{
    ig_keyset old = *s;

    s->cap *= 2;
    s->fp = ig_xcalloc(s->cap, sizeof(*s->fp));
    s->row = ig_xcalloc(s->cap, sizeof(*s->row));
    for (size_t i = 0; i < old.cap; i++) {
        if (old.fp[i] != 0) {
            size_t j = probe(s, old.fp[i]);
            s->fp[j] = old.fp[i];
            s->row[j] = old.row[i];
        }
    }
    free(old.fp);
    free(old.row);
}

uint32_t ig_keyset_check_add(ig_keyset *s, const void *key, size_t len,
                             uint32_t row)
{
    uint64_t h = fingerprint(key, len);
    size_t i;

    if ((s->n + 1) * 4 > s->cap * 3)
        grow(s);
    i = probe(s, h);
    if (s->fp[i] == h)
        return s->row[i];
    s->fp[i] = h;
    s->row[i] = row;
    s->n++;
    return 0;
}

uint32_t ig_keyset_find(const ig_keyset *s, const void *key, size_t len)
{
    size_t i = probe(s, fingerprint(key, len));
    return s->fp[i] ? s->row[i] : 0;
}

void ig_keyset_add(ig_keyset *s, const void *key, size_t len, uint32_t row)
{
    (void)ig_keyset_check_add(s, key, len, row);
}

size_t ig_keyset_count(const ig_keyset *s)
{
    return s->n;
}

size_t ig_keyset_bytes(const ig_keyset *s)
{
    return s->cap * (sizeof(*s->fp) + sizeof(*s->row));
}
