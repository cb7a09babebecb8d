/* SPDX-License-Identifier: MIT */
/*
 * Bit sets as byte arrays, bit i in byte i / 8 at 1 << (i % 8): the order of
 * the wire's chunk sets (proto/PROTOCOL.md) and the store's bitmaps
 * (libcas/FORMAT.md). The caller checks i against the set's size.
 */
#ifndef NVX_COMMON_BITS_H
#define NVX_COMMON_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes for a set of n bits. */
static inline size_t
bits_bytes(size_t n)
{
    return n / 8 + (n % 8 != 0);
}

static inline bool
bit_get(const uint8_t *b, size_t i)
{
    return (b[i / 8] >> (i % 8)) & 1u;
}

static inline void
bit_set(uint8_t *b, size_t i)
{
    b[i / 8] |= (uint8_t)(1u << (i % 8));
}

static inline void
bit_clear(uint8_t *b, size_t i)
{
    b[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

#endif
