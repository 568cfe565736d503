/*
 * testrng.h - the seeded pseudo-random generator of the randomized tests
 * (splitmix64): the same seed gives the same inputs on every machine, so
 * a failure can be replayed from the seed it prints. Header-only (static
 * inline), test code only.
 */
#ifndef IG_TESTRNG_H
#define IG_TESTRNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s;
} rng;

static inline uint64_t next64(rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline size_t below(rng *g, size_t n)
{
    return n ? (size_t)(next64(g) % n) : 0;
}

#endif /* IG_TESTRNG_H */
