/* SPDX-License-Identifier: MIT */
/*
 * proto/gcm.c, AES-256-GCM through OpenSSL's EVP, held to libsodium's
 * crypto_aead_aes256gcm byte for byte: NIST known answers; every message
 * length up to a few registers past the 256-byte group, and large ones;
 * associated data from none to 4 KiB; in place and not; buffers of exact
 * size (AddressSanitizer sees any byte past an end); each side opening the
 * other's output; a flipped bit anywhere refused with the plaintext wiped,
 * as is a length past GCM's limit; a context keyed again (the session's
 * ratchet) uses the new key. libsodium's side needs AES-NI: elsewhere
 * (arm64, armhf under qemu) the comparisons skip and the known answers and
 * tampering checks still run.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/internal.h"
#include "testutil.h"

enum {
    TAG = PROTO__TAG_LEN,
    BIG = 256 * 1024 + 48, /* a DATA frame's body, as the daemons send it */
};

static bool have_ref; /* libsodium's AES-256-GCM (x86 with AES-NI only) */

static int
setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    have_ref = crypto_aead_aes256gcm_is_available();
    if (!have_ref)
        printf("no AES-NI: comparisons with libsodium's AES-256-GCM skip\n");
    return 0;
}

/* A seal and an open context for one key, as a session holds per
 * direction. */
struct pair {
    struct proto__gcm_key s, o;
};

static void
pair_init(struct pair *k, const uint8_t key[32])
{
    memset(k, 0, sizeof(*k));
    assert_true(proto__gcm_init(&k->s, key, true));
    assert_true(proto__gcm_init(&k->o, key, false));
}

static void
pair_free(struct pair *k)
{
    proto__gcm_free(&k->s);
    proto__gcm_free(&k->o);
}

static void
unhex(uint8_t *out, const char *hex, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The GCM paper's AES-256 test cases 13 and 14 (zero key, zero IV). */
static void
test_known_answers(void **state)
{
    (void)state;
    uint8_t key[32] = { 0 }, npub[12] = { 0 }, out[16 + TAG], want[16 + TAG];
    struct pair k;
    pair_init(&k, key);

    assert_true(proto__gcm_seal(&k.s, out, NULL, 0, NULL, 0, npub));
    unhex(want, "530f8afbc74536b9a963b4f1c4cb738b", TAG);
    assert_memory_equal(out, want, TAG);

    uint8_t zero[16] = { 0 };
    assert_true(proto__gcm_seal(&k.s, out, zero, 16, NULL, 0, npub));
    unhex(want, "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919", 16 + TAG);
    assert_memory_equal(out, want, 16 + TAG);
    uint8_t back[16];
    assert_true(proto__gcm_open(&k.o, back, out, 16 + TAG, NULL, 0, npub));
    assert_memory_equal(back, zero, 16);

    /* Keyed again (the ratchet): the new key seals, the old one no longer
     * opens. */
    uint8_t key2[32];
    memset(key2, 0x42, sizeof(key2));
    assert_true(proto__gcm_init(&k.s, key2, true));
    assert_true(proto__gcm_seal(&k.s, out, zero, 16, NULL, 0, npub));
    assert_false(proto__gcm_open(&k.o, back, out, 16 + TAG, NULL, 0, npub));
    assert_true(proto__gcm_init(&k.o, key2, false));
    assert_true(proto__gcm_open(&k.o, back, out, 16 + TAG, NULL, 0, npub));
    pair_free(&k);
}

static uint8_t *
dup_exact(const uint8_t *src, size_t n)
{
    uint8_t *d = malloc(n);
    assert_true(d != NULL || n == 0);
    if (n)
        memcpy(d, src, n);
    return d;
}

/* Seals m both ways and checks the bytes agree, then that each side opens
 * the other's output, out of place and in place. Every buffer is allocated
 * at its exact size, so under AddressSanitizer a byte read or written past
 * any end fails the test. */
static void
check_against_sodium(const uint8_t key[32], const uint8_t *m_in, size_t mlen, const uint8_t *ad_in,
                     size_t adlen, const uint8_t npub[12])
{
    struct pair k;
    crypto_aead_aes256gcm_state ref;
    pair_init(&k, key);
    crypto_aead_aes256gcm_beforenm(&ref, key);
    uint8_t *m = dup_exact(m_in, mlen), *ad = dup_exact(ad_in, adlen);
    uint8_t *c1 = malloc(mlen + TAG), *c2 = malloc(mlen + TAG), *p = malloc(mlen);
    assert_true(c1 && c2 && (p || mlen == 0));

    unsigned long long clen = 0;
    assert_int_equal(
        crypto_aead_aes256gcm_encrypt_afternm(c1, &clen, m, mlen, ad, adlen, NULL, npub, &ref), 0);
    assert_int_equal(clen, mlen + TAG);
    assert_true(proto__gcm_seal(&k.s, c2, m, mlen, ad, adlen, npub));
    if (memcmp(c1, c2, mlen + TAG) != 0)
        fail_msg("ciphertext differs from libsodium at mlen %zu adlen %zu", mlen, adlen);

    if (mlen)
        memset(p, 0xa5, mlen);
    assert_true(proto__gcm_open(&k.o, p, c1, mlen + TAG, ad, adlen, npub));
    assert_memory_equal(p, m, mlen);
    unsigned long long plen = 0;
    assert_int_equal(crypto_aead_aes256gcm_decrypt_afternm(p, &plen, NULL, c2, mlen + TAG, ad,
                                                           adlen, npub, &ref),
                     0);
    assert_memory_equal(p, m, mlen);

    /* In place: c2 holds m, is sealed over itself, then opened over itself. */
    if (mlen)
        memcpy(c2, m, mlen);
    assert_true(proto__gcm_seal(&k.s, c2, c2, mlen, ad, adlen, npub));
    assert_memory_equal(c2, c1, mlen + TAG);
    assert_true(proto__gcm_open(&k.o, c2, c2, mlen + TAG, ad, adlen, npub));
    assert_memory_equal(c2, m, mlen);
    pair_free(&k);
    free(m), free(ad), free(c1), free(c2), free(p);
}

static void
test_every_length(void **state)
{
    if (!have_ref)
        skip();
    (void)state;
    enum {
        MAX = 1100
    };
    uint8_t key[32], npub[12], ad[80], m[MAX];
    static const size_t adlens[] = { 0, 1, 15, 16, 17, 31, 32, 33, 64, 79 };
    for (size_t mlen = 0; mlen <= MAX; mlen++) {
        tu_fill_random(key, sizeof(key), 3 * mlen + 1);
        tu_fill_random(npub, sizeof(npub), 3 * mlen + 2);
        tu_fill_random(m, mlen, 3 * mlen + 3);
        tu_fill_random(ad, sizeof(ad), mlen);
        size_t adlen = adlens[mlen % (sizeof(adlens) / sizeof(adlens[0]))];
        check_against_sodium(key, m, mlen, ad, adlen, npub);
    }
}

/* Associated data longer than the 16 bytes sessions use. */
static void
test_long_ad(void **state)
{
    if (!have_ref)
        skip();
    (void)state;
    static const size_t adlens[] = { 80, 255, 256, 257, 1000, 4103 };
    static const size_t mlens[] = { 0, 17, 300 };
    uint8_t key[32], npub[12], ad[4103], m[300];
    for (size_t i = 0; i < sizeof(adlens) / sizeof(adlens[0]); i++) {
        for (size_t j = 0; j < sizeof(mlens) / sizeof(mlens[0]); j++) {
            tu_fill_random(key, sizeof(key), 10 * i + j + 1);
            tu_fill_random(npub, sizeof(npub), 10 * i + j + 2);
            tu_fill_random(ad, adlens[i], 10 * i + j + 3);
            tu_fill_random(m, mlens[j], 10 * i + j + 4);
            check_against_sodium(key, m, mlens[j], ad, adlens[i], npub);
        }
    }
}

/* Frame-sized messages and larger, with all-ones nonces on every other. */
static void
test_large(void **state)
{
    if (!have_ref)
        skip();
    (void)state;
    size_t cap = 4u << 20;
    uint8_t *m = malloc(cap);
    assert_non_null(m);
    tu_fill_random(m, cap, 99);
    static const size_t lens[] = { 4095, 4096, 4097, 65536 + 17, BIG - 1, BIG, BIG + 1, 4u << 20 };
    uint8_t key[32], npub[12], ad[PROTO__SEAL_HDR];
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        tu_fill_random(key, sizeof(key), 1000 + i);
        tu_fill_random(npub, sizeof(npub), 2000 + i);
        if (i % 2)
            memset(npub, 0xff, sizeof(npub));
        tu_fill_random(ad, sizeof(ad), 3000 + i);
        check_against_sodium(key, m, lens[i], ad, sizeof(ad), npub);
    }
    free(m);
}

/* Every flipped bit of ciphertext, tag, AD or nonce is refused, and the
 * output buffer holds zeros afterwards, not a near-plaintext. */
static void
test_tampering(void **state)
{
    (void)state;
    enum {
        MLEN = 300
    };
    uint8_t key[32], npub[12], ad[PROTO__SEAL_HDR], m[MLEN], c[MLEN + TAG], t[MLEN + TAG], p[MLEN];
    tu_fill_random(key, sizeof(key), 7);
    tu_fill_random(npub, sizeof(npub), 8);
    tu_fill_random(ad, sizeof(ad), 9);
    tu_fill_random(m, sizeof(m), 10);
    struct pair k;
    pair_init(&k, key);
    assert_true(proto__gcm_seal(&k.s, c, m, MLEN, ad, sizeof(ad), npub));
    static const uint8_t zero[MLEN];
    for (size_t bit = 0; bit < 8 * sizeof(c); bit++) {
        memcpy(t, c, sizeof(c));
        t[bit / 8] ^= (uint8_t)(1u << bit % 8);
        memset(p, 0x5a, sizeof(p));
        assert_false(proto__gcm_open(&k.o, p, t, sizeof(t), ad, sizeof(ad), npub));
        assert_memory_equal(p, zero, MLEN);
    }
    for (size_t bit = 0; bit < 8 * sizeof(ad); bit++) {
        ad[bit / 8] ^= (uint8_t)(1u << bit % 8);
        assert_false(proto__gcm_open(&k.o, p, c, sizeof(c), ad, sizeof(ad), npub));
        ad[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
    for (size_t bit = 0; bit < 8 * sizeof(npub); bit++) {
        npub[bit / 8] ^= (uint8_t)(1u << bit % 8);
        assert_false(proto__gcm_open(&k.o, p, c, sizeof(c), ad, sizeof(ad), npub));
        npub[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
    /* In place, a refused frame is wiped where it lay. */
    memcpy(t, c, sizeof(c));
    t[5] ^= 1;
    assert_false(proto__gcm_open(&k.o, t, t, sizeof(t), ad, sizeof(ad), npub));
    assert_memory_equal(t, zero, MLEN);
    /* Shorter than a tag, and a truncated message: refused. */
    assert_false(proto__gcm_open(&k.o, p, c, TAG - 1, ad, sizeof(ad), npub));
    assert_false(proto__gcm_open(&k.o, p, c, sizeof(c) - 1, ad, sizeof(ad), npub));
    assert_true(proto__gcm_open(&k.o, p, c, sizeof(c), ad, sizeof(ad), npub));
    assert_memory_equal(p, m, MLEN);
    /* Past 2^32 - 2 blocks the counter would wrap: refused before any byte
     * is touched (the buffers here are far smaller than the lengths). */
#if SIZE_MAX > UINT32_MAX /* a 32-bit size_t cannot even say such a length */
    assert_false(proto__gcm_seal(&k.s, t, m, PROTO__GCM_MSG_MAX + 1, ad, sizeof(ad), npub));
    assert_false(proto__gcm_open(&k.o, p, c, PROTO__GCM_MSG_MAX + 1 + TAG, ad, sizeof(ad), npub));
#endif
    /* Past OpenSSL's int lengths, on every size_t. */
    assert_false(proto__gcm_seal(&k.s, t, m, (size_t)INT_MAX + 1, ad, sizeof(ad), npub));
    assert_false(proto__gcm_open(&k.o, p, c, (size_t)INT_MAX + 1 + TAG, ad, sizeof(ad), npub));
    pair_free(&k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers), cmocka_unit_test(test_every_length),
        cmocka_unit_test(test_long_ad),       cmocka_unit_test(test_large),
        cmocka_unit_test(test_tampering),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
