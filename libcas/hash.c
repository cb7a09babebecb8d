/* SPDX-License-Identifier: MIT */
/*
 * BLAKE2b-256 ids (libsodium in the hot path, libb2 as reference) and their
 * hex encoding.
 */
#include "libcas/hash.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <blake2.h>
#include <sodium.h>

#include "libcas/internal.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result;

static void
init_sodium(void)
{
    /* sodium_init() returns 0 on first success, 1 when already done (another
     * library in the process may have called it), -1 on failure. */
    init_result = sodium_init() < 0 ? -EIO : 0;
}

int
cas_init(void)
{
    pthread_once(&init_once, init_sodium);
    return init_result;
}

void
cas_hasher_init(cas_hasher *h)
{
    (void)cas_init();
    crypto_generichash_init(&h->st, NULL, 0, CAS_HASH_LEN);
}

void
cas_hasher_update(cas_hasher *h, const void *buf, size_t len)
{
    if (len > 0)
        crypto_generichash_update(&h->st, buf, len);
}

void
cas_hasher_final(cas_hasher *h, uint8_t ret[static CAS_HASH_LEN])
{
    crypto_generichash_final(&h->st, ret, CAS_HASH_LEN);
}

void
cas_hash(const void *buf, size_t len, uint8_t ret[static CAS_HASH_LEN])
{
    static const uint8_t empty;

    (void)cas_init();
    crypto_generichash(ret, CAS_HASH_LEN, len > 0 ? buf : &empty, len, NULL, 0);
}

void
cas__hash_b2(const void *buf, size_t len, uint8_t ret[static CAS_HASH_LEN])
{
    static const uint8_t empty;

    blake2b(ret, len > 0 ? buf : &empty, NULL, CAS_HASH_LEN, len, 0);
}

bool
cas_hash_equal(const uint8_t a[static CAS_HASH_LEN], const uint8_t b[static CAS_HASH_LEN])
{
    return sodium_memcmp(a, b, CAS_HASH_LEN) == 0;
}

void
cas_hash_to_hex(const uint8_t id[static CAS_HASH_LEN], char ret[static CAS_HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < CAS_HASH_LEN; i++) {
        ret[2 * i] = digits[id[i] >> 4];
        ret[2 * i + 1] = digits[id[i] & 0xf];
    }
    ret[CAS_HASH_HEX_LEN] = '\0';
}

int
cas__hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
cas_hash_prefix_parse(const char *s, cas_hash_prefix *ret)
{
    cas_hash_prefix p = { .nibbles = 0 };

    if (!s)
        return -EINVAL;
    /* Bounded scan: never read past CAS_HASH_HEX_LEN + 1 characters. */
    size_t n = strnlen(s, CAS_HASH_HEX_LEN + 1);
    if (n < CAS_HASH_PREFIX_MIN || n > CAS_HASH_HEX_LEN)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = cas__hex_value(s[i]);
        if (v < 0)
            return -EINVAL;
        p.bytes[i / 2] |= (uint8_t)(i % 2 == 0 ? v << 4 : v);
    }
    p.nibbles = (unsigned)n;
    *ret = p;
    return 0;
}

int
cas_hash_from_hex(const char *s, uint8_t ret[static CAS_HASH_LEN])
{
    cas_hash_prefix p;

    int r = cas_hash_prefix_parse(s, &p);
    if (r < 0)
        return r;
    if (p.nibbles != CAS_HASH_HEX_LEN)
        return -EINVAL;
    memcpy(ret, p.bytes, CAS_HASH_LEN);
    return 0;
}

bool
cas_hash_prefix_match(const cas_hash_prefix *p, const uint8_t id[static CAS_HASH_LEN])
{
    size_t full = p->nibbles / 2;

    if (memcmp(p->bytes, id, full) != 0)
        return false;
    if (p->nibbles % 2 == 1 && (id[full] & 0xf0) != p->bytes[full])
        return false;
    return true;
}

void
cas_hash_prefix_range(const cas_hash_prefix *p, uint8_t ret_lo[static CAS_HASH_LEN],
                      uint8_t ret_hi[static CAS_HASH_LEN])
{
    size_t full = p->nibbles / 2;

    memcpy(ret_lo, p->bytes, CAS_HASH_LEN);
    memcpy(ret_hi, p->bytes, CAS_HASH_LEN);
    memset(ret_hi + full, 0xff, CAS_HASH_LEN - full);
    if (p->nibbles % 2 == 1)
        ret_hi[full] = p->bytes[full] | 0x0f;
}
