/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_INTERNAL_H
#define NVX_LIBCAS_INTERNAL_H
/*
 * Cross-file internals of libcas (cas__ prefix). Not installed; exported from
 * the static library only for libcas's own files and its tests.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bytes.h"
#include "libcas/hash.h"

/* BLAKE2b-256 through libb2 (reference for the libsodium hot path). */
void cas__hash_b2(const void *buf, size_t len, uint8_t ret[static CAS_HASH_LEN]);

/* The value of one hex digit (either case), or -1. */
int cas__hex_value(char c);

/* The chunker's 256-entry gear table. */
extern const uint64_t *const cas__gear;

/* --- a cursor over untrusted bytes (integers: common/bytes.h) ------------- */

/* Bounds-checked reader over untrusted bytes (STYLE 6): every getter checks
 * the bytes that remain first, in subtraction form, and fails with -EBADMSG
 * without moving. Initialise as (cas__cursor){ buf, len, 0 }. */
typedef struct cas__cursor {
    const uint8_t *p;
    size_t len;
    size_t off; /* <= len */
} cas__cursor;

/* Takes n bytes: *ret points into the buffer. */
static inline int
cas__cursor_bytes(cas__cursor *c, size_t n, const uint8_t **ret)
{
    if (c->len - c->off < n)
        return -EBADMSG;
    *ret = c->p + c->off;
    c->off += n;
    return 0;
}

static inline int
cas__cursor_u8(cas__cursor *c, uint8_t *ret)
{
    const uint8_t *b;
    int r = cas__cursor_bytes(c, 1, &b);
    if (r == 0)
        *ret = b[0];
    return r;
}

static inline int
cas__cursor_u16(cas__cursor *c, uint16_t *ret)
{
    const uint8_t *b;
    int r = cas__cursor_bytes(c, 2, &b);
    if (r == 0)
        *ret = (uint16_t)(b[0] | (unsigned)b[1] << 8);
    return r;
}

static inline int
cas__cursor_u32(cas__cursor *c, uint32_t *ret)
{
    const uint8_t *b;
    int r = cas__cursor_bytes(c, 4, &b);
    if (r == 0)
        *ret = le32_load(b);
    return r;
}

static inline int
cas__cursor_u64(cas__cursor *c, uint64_t *ret)
{
    const uint8_t *b;
    int r = cas__cursor_bytes(c, 8, &b);
    if (r == 0)
        *ret = le64_load(b);
    return r;
}

#endif
