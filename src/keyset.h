/*
 * keyset.h - the set of conflict keys one import has seen, for the
 * duplicates: error / first policies.
 *
 * A key is remembered as a 64-bit XXH3 fingerprint of its canonical bytes
 * plus the row number that first used it: 12 bytes a slot, kept at most
 * 3/4 full, so about 16-25 MB for a million distinct keys. Two different
 * keys share a fingerprint with probability about n^2 / 2^65 (3e-8 for a
 * million keys); that rare false duplicate is reported like any other, as a
 * row error naming the earlier row, never silently dropped. The
 * duplicates: last policy needs no set (PostgreSQL resolves it in the
 * batch) and costs nothing. Not thread-safe: one per import, used by the
 * map thread.
 */
#ifndef IG_KEYSET_H
#define IG_KEYSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct ig_keyset ig_keyset; /* opaque */

ig_keyset *ig_keyset_new(void);
void ig_keyset_free(ig_keyset *s);

/* Look the key up; when absent, remember it with row and return 0; when
 * present, return the row that first used it (>= 1). */
uint32_t ig_keyset_check_add(ig_keyset *s, const void *key, size_t len,
                             uint32_t row);

/* Look up without adding: the first row, or 0. */
uint32_t ig_keyset_find(const ig_keyset *s, const void *key, size_t len);

/* Add (or keep the existing entry). */
void ig_keyset_add(ig_keyset *s, const void *key, size_t len, uint32_t row);

size_t ig_keyset_count(const ig_keyset *s);
size_t ig_keyset_bytes(const ig_keyset *s);

#endif /* IG_KEYSET_H */
