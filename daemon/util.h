/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_UTIL_H
#define NVX_DAEMON_UTIL_H
/*
 * Small pure helpers shared by daemon/ cores (header-only, no state).
 */
#include <stdint.h>

/* splitmix64: the next number of the sequence in *x. Seeded by the caller
 * (the sans-I/O cores have no randomness of their own, so a simulation can
 * replay a run); not for secrets. */
static inline uint64_t
nvx_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* qsort comparator for uint32_t, ascending. */
static inline int
nvx_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

#endif
