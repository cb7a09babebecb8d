/* SPDX-License-Identifier: MIT */
/* Tests for libcas/hash.c: known answers, libsodium vs libb2, incremental
 * hashing, hex encoding and id prefixes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libcas/hash.h"
#include "libcas/internal.h"
#include "testutil.h"

static void
hex_of(const void *buf, size_t len, char out[static CAS_HASH_HEX_LEN + 1])
{
    uint8_t id[CAS_HASH_LEN];
    cas_hash(buf, len, id);
    cas_hash_to_hex(id, out);
}

static void
test_known_answers(void **state)
{
    /* BLAKE2b with a 32-byte digest, unkeyed (RFC 7693 parameters). */
    static const struct {
        const char *in;
        const char *hex;
    } kat[] = {
        { "", "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8" },
        { "abc", "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319" },
    };
    assert_int_equal(cas_init(), 0);
    assert_int_equal(cas_init(), 0); /* idempotent */
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        char hex[CAS_HASH_HEX_LEN + 1];
        hex_of(kat[i].in, strlen(kat[i].in), hex);
        assert_string_equal(hex, kat[i].hex);
        uint8_t b2[CAS_HASH_LEN];
        cas__hash_b2(kat[i].in, strlen(kat[i].in), b2);
        cas_hash_to_hex(b2, hex);
        assert_string_equal(hex, kat[i].hex);
    }
    /* NULL with length 0 is the empty input. */
    char hex[CAS_HASH_HEX_LEN + 1];
    hex_of(NULL, 0, hex);
    assert_string_equal(hex, kat[0].hex);
}

static void
test_libs_agree(void **state)
{
    size_t max = 1 << 20;
    uint8_t *buf = malloc(max);
    assert_non_null(buf);
    tu_fill_random(buf, max, 17);
    /* Every length around the 128-byte block boundaries, then larger ones. */
    for (size_t len = 0; len <= 1100; len++) {
        uint8_t a[CAS_HASH_LEN], b[CAS_HASH_LEN];
        cas_hash(buf, len, a);
        cas__hash_b2(buf, len, b);
        assert_memory_equal(a, b, CAS_HASH_LEN);
    }
    static const size_t big[] = { 4095, 4096, 65536, 65537, 262144, 1 << 20 };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        uint8_t a[CAS_HASH_LEN], b[CAS_HASH_LEN];
        cas_hash(buf, big[i], a);
        cas__hash_b2(buf, big[i], b);
        assert_memory_equal(a, b, CAS_HASH_LEN);
        assert_true(cas_hash_equal(a, b));
        b[31] ^= 1;
        assert_false(cas_hash_equal(a, b));
    }
    free(buf);
}

static void
test_incremental(void **state)
{
    size_t len = 300000;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    tu_fill_random(buf, len, 23);
    uint8_t want[CAS_HASH_LEN];
    cas_hash(buf, len, want);
    static const size_t steps[] = { 1, 127, 128, 129, 4096, 65536, 299999 };
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        cas_hasher h;
        cas_hasher_init(&h);
        cas_hasher_update(&h, NULL, 0);
        for (size_t off = 0; off < len; off += steps[s]) {
            size_t n = len - off < steps[s] ? len - off : steps[s];
            cas_hasher_update(&h, buf + off, n);
        }
        uint8_t got[CAS_HASH_LEN];
        cas_hasher_final(&h, got);
        assert_memory_equal(got, want, CAS_HASH_LEN);
    }
    free(buf);
}

static void
test_hex(void **state)
{
    uint8_t id[CAS_HASH_LEN], back[CAS_HASH_LEN];
    for (size_t i = 0; i < CAS_HASH_LEN; i++)
        id[i] = (uint8_t)(i * 37 + 5);
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    assert_int_equal(strlen(hex), CAS_HASH_HEX_LEN);
    for (size_t i = 0; i < CAS_HASH_HEX_LEN; i++)
        assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    assert_int_equal(cas_hash_from_hex(hex, back), 0);
    assert_memory_equal(id, back, CAS_HASH_LEN);
    /* Upper case is accepted on input. */
    char upper[CAS_HASH_HEX_LEN + 1];
    for (size_t i = 0; i <= CAS_HASH_HEX_LEN; i++)
        upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 'a' + 'A') : hex[i];
    memset(back, 0, sizeof(back));
    assert_int_equal(cas_hash_from_hex(upper, back), 0);
    assert_memory_equal(id, back, CAS_HASH_LEN);
    /* Rejected: wrong lengths, non-hex characters, NULL. Output untouched. */
    char bad[CAS_HASH_HEX_LEN + 2];
    memcpy(bad, hex, sizeof(hex));
    bad[63] = '\0';
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(cas_hash_from_hex(bad, back), -EINVAL);
    for (size_t i = 0; i < CAS_HASH_LEN; i++)
        assert_int_equal(back[i], 0xaa);
    memcpy(bad, hex, sizeof(hex));
    bad[64] = '0';
    bad[65] = '\0';
    assert_int_equal(cas_hash_from_hex(bad, back), -EINVAL);
    static const char nonhex[] = { 'g', ' ', 'x', '-', ':', '\n', (char)0xc3 };
    for (size_t i = 0; i < sizeof(nonhex); i++) {
        memcpy(bad, hex, sizeof(hex));
        bad[10] = nonhex[i];
        assert_int_equal(cas_hash_from_hex(bad, back), -EINVAL);
    }
    assert_int_equal(cas_hash_from_hex("", back), -EINVAL);
    assert_int_equal(cas_hash_from_hex(NULL, back), -EINVAL);
}

static void
test_prefix(void **state)
{
    uint8_t id[CAS_HASH_LEN];
    cas_hash("abc", 3, id); /* bddd813c6342... */
    cas_hash_prefix p;
    assert_int_equal(cas_hash_prefix_parse("bddd813", &p), -EINVAL); /* 7: too short */
    assert_int_equal(cas_hash_prefix_parse("bddd813c", &p), 0);
    assert_int_equal(p.nibbles, 8);
    assert_true(cas_hash_prefix_match(&p, id));
    assert_int_equal(cas_hash_prefix_parse("BDDD813C6", &p), 0); /* odd, upper */
    assert_int_equal(p.nibbles, 9);
    assert_int_equal(p.bytes[4], 0x60);
    assert_true(cas_hash_prefix_match(&p, id));
    assert_int_equal(cas_hash_prefix_parse("bddd813c7", &p), 0); /* last nibble differs */
    assert_false(cas_hash_prefix_match(&p, id));
    assert_int_equal(cas_hash_prefix_parse("cddd813c", &p), 0);
    assert_false(cas_hash_prefix_match(&p, id));
    assert_int_equal(cas_hash_prefix_parse("bddd813z", &p), -EINVAL);
    assert_int_equal(cas_hash_prefix_parse("bddd 813c", &p), -EINVAL);
    assert_int_equal(cas_hash_prefix_parse(NULL, &p), -EINVAL);
    char hex[CAS_HASH_HEX_LEN + 2];
    cas_hash_to_hex(id, hex);
    assert_int_equal(cas_hash_prefix_parse(hex, &p), 0);
    assert_int_equal(p.nibbles, 64);
    assert_true(cas_hash_prefix_match(&p, id));
    hex[64] = '0';
    hex[65] = '\0';
    assert_int_equal(cas_hash_prefix_parse(hex, &p), -EINVAL); /* 65 */
    /* Range of an odd prefix: [bddd813c60..00, bddd813c6f..ff]. */
    uint8_t lo[CAS_HASH_LEN], hi[CAS_HASH_LEN];
    assert_int_equal(cas_hash_prefix_parse("bddd813c6", &p), 0);
    cas_hash_prefix_range(&p, lo, hi);
    static const uint8_t lo4[] = { 0xbd, 0xdd, 0x81, 0x3c, 0x60, 0x00 };
    static const uint8_t hi4[] = { 0xbd, 0xdd, 0x81, 0x3c, 0x6f, 0xff };
    assert_memory_equal(lo, lo4, sizeof(lo4));
    assert_memory_equal(hi, hi4, sizeof(hi4));
    assert_int_equal(lo[31], 0x00);
    assert_int_equal(hi[31], 0xff);
    assert_true(memcmp(lo, id, CAS_HASH_LEN) <= 0 && memcmp(id, hi, CAS_HASH_LEN) <= 0);
    /* Full-length prefix: a one-element range. */
    cas_hash_to_hex(id, hex);
    assert_int_equal(cas_hash_prefix_parse(hex, &p), 0);
    cas_hash_prefix_range(&p, lo, hi);
    assert_memory_equal(lo, id, CAS_HASH_LEN);
    assert_memory_equal(hi, id, CAS_HASH_LEN);
}

/* cas_hash_many() agrees with cas_hash() for every count 0..11 (a refill
 * of the eight lanes and a tail) and lengths around block boundaries. */
static void
test_hash_many(void **state)
{
    (void)state;
    enum {
        N = 11,
        MAX = 3 * 128 + 1
    };
    static const size_t len_of[N] = { 0, 1, 127, 128, 129, 255, 256, 257, MAX, 64, 200 };
    uint8_t *data = malloc((size_t)N * MAX);
    assert_non_null(data);
    for (size_t i = 0; i < (size_t)N * MAX; i++)
        data[i] = (uint8_t)(i * 131u + 7u);
    for (size_t n = 0; n <= N; n++) {
        const void *bufs[N];
        size_t lens[N];
        uint8_t got[N][CAS_HASH_LEN], want[CAS_HASH_LEN];
        for (size_t i = 0; i < n; i++) {
            lens[i] = len_of[(i + n) % N];
            bufs[i] = lens[i] ? data + i * MAX : NULL;
        }
        cas_hash_many(bufs, lens, n, got);
        for (size_t i = 0; i < n; i++) {
            cas_hash(bufs[i], lens[i], want);
            assert_memory_equal(got[i], want, CAS_HASH_LEN);
        }
    }
    free(data);
}

/* More messages than one longest-first group (libcas/store-hash.c takes
 * 64 at a time), lengths mixed so that sorting moves every one: each
 * digest still lands at its message's index. */
static void
test_hash_many_groups(void **state)
{
    (void)state;
    enum {
        N = 150,
        MAX = 4 * 128 + 3
    };
    uint8_t *data = malloc((size_t)N * MAX);
    assert_non_null(data);
    for (size_t i = 0; i < (size_t)N * MAX; i++)
        data[i] = (uint8_t)(i * 151u + 3u);
    const void *bufs[N];
    size_t lens[N];
    uint8_t got[N][CAS_HASH_LEN], want[CAS_HASH_LEN];
    for (size_t i = 0; i < N; i++) {
        lens[i] = (i * 37u) % MAX;
        bufs[i] = data + i * MAX;
    }
    cas_hash_many(bufs, lens, N, got);
    for (size_t i = 0; i < N; i++) {
        cas_hash(bufs[i], lens[i], want);
        assert_memory_equal(got[i], want, CAS_HASH_LEN);
    }
    free(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),    cmocka_unit_test(test_libs_agree),
        cmocka_unit_test(test_incremental),      cmocka_unit_test(test_hex),
        cmocka_unit_test(test_prefix),           cmocka_unit_test(test_hash_many),
        cmocka_unit_test(test_hash_many_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
