/* SPDX-License-Identifier: MIT */
/*
 * BLAKE2b-256 of many chunks at once (RFC 7693), for the store's hot paths
 * (verify, export, add). On x86-64 CPUs with AVX-512F, eight messages are
 * hashed in the eight 64-bit lanes of the zmm registers: lane i holds word k
 * of message i's state, so one G step runs on eight messages with no
 * shuffles between rows, and a lane whose message ends is refilled with the
 * next one. About four times the single-message speed of libsodium on the
 * reference CPU. Everywhere else (and for one message) it is cas_hash().
 * test-store checks it against cas_hash() on lengths around every block
 * boundary.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "libcas/store-internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MB_TARGET __attribute__((target("avx512f")))
#define MB_LANES  8
#define MB_BLOCK  128

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t blake2b_sigma[12][16] = {
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
    { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
    { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
    { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
    { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
    { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
    { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
    { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
    { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
};

/* The G mixing function on eight lanes (RFC 7693 section 3.1). */
#define G(a, b, c, d, x, y)                                         \
    do {                                                            \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (x)); \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 32);  \
        v[c] = _mm512_add_epi64(v[c], v[d]);                        \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 24);  \
        v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), (y)); \
        v[d] = _mm512_ror_epi64(_mm512_xor_si512(v[d], v[a]), 16);  \
        v[c] = _mm512_add_epi64(v[c], v[d]);                        \
        v[b] = _mm512_ror_epi64(_mm512_xor_si512(v[b], v[c]), 63);  \
    } while (0)

/* Compression F (RFC 7693 section 3.2) of one block per lane: m[16] are the
 * message words, t the byte counters (messages stay below 2^64 bytes), last
 * the lanes whose block is their message's final one. */
MB_TARGET static void
compress8(__m512i h[8], const __m512i m[16], __m512i t, __mmask8 last)
{
    __m512i v[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = _mm512_set1_epi64((long long)blake2b_iv[i]);
    }
    v[12] = _mm512_xor_si512(v[12], t);
    v[14] = _mm512_mask_xor_epi64(v[14], last, v[14], _mm512_set1_epi64(-1));
    /* Unrolled, the message schedule is constant offsets, not a table walk:
     * 0.323 -> 0.289-0.304 CPU s/GiB (the transpose's bench below). */
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        h[i] = _mm512_xor_si512(h[i], _mm512_xor_si512(v[i], v[i + 8]));
}

/* Transposes the 8x8 words r[0..7] (lane-major) into m[0..7] (word-major). */
MB_TARGET static void
transpose8(const __m512i r[8], __m512i m[8])
{
    __m512i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_epi64(r[2 * i], r[2 * i + 1]);     /* words 0 2 4 6 */
        t[2 * i + 1] = _mm512_unpackhi_epi64(r[2 * i], r[2 * i + 1]); /* words 1 3 5 7 */
    }
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 2; k++) {
            /* 128-bit blocks 0 and 2 (words 0/4 or 1/5), 1 and 3 (2/6, 3/7) */
            u[4 * i + k] = _mm512_shuffle_i64x2(t[4 * i + k], t[4 * i + 2 + k], 0x88);
            u[4 * i + 2 + k] = _mm512_shuffle_i64x2(t[4 * i + k], t[4 * i + 2 + k], 0xdd);
        }
    }
    /* u[0]: words 0,4 of lanes 0-3; u[1]: 1,5; u[2]: 2,6; u[3]: 3,7; u[4..7]
     * the same of lanes 4-7. */
    for (int w = 0; w < 4; w++) {
        m[w] = _mm512_shuffle_i64x2(u[w], u[4 + w], 0x88);
        m[w + 4] = _mm512_shuffle_i64x2(u[w], u[4 + w], 0xdd);
    }
}

/* The 16 message words of the block at addr[i] of each lane i, word-major:
 * plain loads and a transpose. 16 gathers took 15% of the hash's samples;
 * the transpose cut it from 0.333-0.347 to 0.311-0.326 CPU s/GiB (64 KiB
 * messages, 2-core Xeon VM). */
MB_TARGET static void
load_transposed(const uint64_t addr[MB_LANES], __m512i m[16])
{
    __m512i r[8];
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < 8; i++)
            r[i] = _mm512_loadu_si512((const void *)(uintptr_t)(addr[i] + 64 * (uint64_t)h));
        transpose8(r, m + 8 * h);
    }
}

typedef struct lane {
    const uint8_t *p; /* next unread byte */
    size_t left;      /* bytes not yet compressed */
    uint64_t t;       /* bytes compressed so far */
    size_t job;       /* index of the message */
    bool active;
} lane;

MB_TARGET static void
hash_many_avx512(const uint8_t *const *bufs, const size_t *lens, size_t n,
                 uint8_t (*ret)[CAS_HASH_LEN])
{
    /* Parameter block of unkeyed BLAKE2b with a 32-byte digest. */
    __m512i init[8];
    for (int k = 0; k < 8; k++)
        init[k] = _mm512_set1_epi64((long long)(blake2b_iv[k] ^ (k == 0 ? 0x01010020u : 0)));
    __m512i h[8];
    memcpy(h, init, sizeof(h));
    lane l[MB_LANES];
    _Alignas(64) uint8_t pad[MB_LANES][MB_BLOCK];
    size_t next = 0;
    for (int i = 0; i < MB_LANES; i++) {
        l[i] = (lane){ .active = next < n };
        if (l[i].active) {
            l[i].p = bufs[next];
            l[i].left = lens[next];
            l[i].job = next++;
        }
    }
    for (;;) {
        _Alignas(64) uint64_t addr[MB_LANES], cnt[MB_LANES];
        __mmask8 last = 0;
        bool any = false;
        for (int i = 0; i < MB_LANES; i++) {
            cnt[i] = 0;
            addr[i] = (uint64_t)(uintptr_t)pad[i]; /* idle lanes hash padding */
            if (!l[i].active)
                continue;
            any = true;
            if (l[i].left > MB_BLOCK) {
                addr[i] = (uint64_t)(uintptr_t)l[i].p;
                l[i].p += MB_BLOCK;
                l[i].left -= MB_BLOCK;
                l[i].t += MB_BLOCK;
            } else {
                /* The final block (full or not, or empty), zero padded. */
                memset(pad[i], 0, MB_BLOCK);
                if (l[i].left > 0)
                    memcpy(pad[i], l[i].p, l[i].left);
                l[i].t += l[i].left;
                l[i].left = 0;
                last |= (__mmask8)(1u << i);
            }
            cnt[i] = l[i].t;
        }
        if (!any)
            break;
        __m512i m[16];
        load_transposed(addr, m);
        compress8(h, m, _mm512_load_si512((const void *)cnt), last);
        if (!last)
            continue;
        _Alignas(64) uint64_t hv[8][MB_LANES];
        for (int k = 0; k < 4; k++)
            _mm512_store_si512((void *)hv[k], h[k]);
        __mmask8 refill = 0;
        for (int i = 0; i < MB_LANES; i++) {
            if (!(last & (1u << i)))
                continue;
            for (int k = 0; k < 4; k++)
                memcpy(ret[l[i].job] + 8 * k, &hv[k][i], 8); /* x86: little-endian */
            l[i].active = next < n;
            if (l[i].active) {
                l[i].p = bufs[next];
                l[i].left = lens[next];
                l[i].t = 0;
                l[i].job = next++;
                refill |= (__mmask8)(1u << i);
            }
        }
        for (int k = 0; k < 8; k++)
            h[k] = _mm512_mask_mov_epi64(h[k], refill, init[k]);
    }
}

static bool
have_avx512(void)
{
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c == 1;
}

/* Messages handed to the lanes in one longest-first group. */
#define MB_GROUP 64

/* hash_many_avx512() of up to MB_GROUP messages, fed to it longest first:
 * a lane that finishes takes the next message, so in arrival order one
 * long message left for last keeps one lane busy while seven idle (chunks
 * of 16 to 256 KiB, 32 at a time: 0.44 s/GiB in arrival order, 0.36 s/GiB
 * longest first, the same as 32 chunks of equal length). The order only
 * changes which lane hashes which message, never a digest. */
MB_TARGET static void
hash_group_sorted(const uint8_t *const *bufs, const size_t *lens, size_t n,
                  uint8_t (*ret)[CAS_HASH_LEN])
{
    size_t ord[MB_GROUP];
    for (size_t i = 0; i < n; i++) {
        size_t k = i; /* insertion sort: n is small */
        while (k > 0 && lens[ord[k - 1]] < lens[i]) {
            ord[k] = ord[k - 1];
            k--;
        }
        ord[k] = i;
    }
    const uint8_t *b[MB_GROUP];
    size_t l[MB_GROUP];
    uint8_t out[MB_GROUP][CAS_HASH_LEN];
    for (size_t i = 0; i < n; i++) {
        b[i] = bufs[ord[i]];
        l[i] = lens[ord[i]];
    }
    hash_many_avx512(b, l, n, out);
    for (size_t i = 0; i < n; i++)
        memcpy(ret[ord[i]], out[i], CAS_HASH_LEN);
}
#endif

void
cas__hash_many(const uint8_t *const *bufs, const size_t *lens, size_t n,
               uint8_t (*ret)[CAS_HASH_LEN])
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (n >= 2 && have_avx512()) {
        for (size_t i = 0; i < n; i += MB_GROUP)
            hash_group_sorted(bufs + i, lens + i, n - i < MB_GROUP ? n - i : MB_GROUP, ret + i);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        cas_hash(bufs[i], lens[i], ret[i]);
}

const char *
cas_hash_many_path(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (have_avx512())
        return "avx512 x8";
#endif
    return "libsodium x1";
}

void
cas_hash_many(const void *const bufs[], const size_t lens[], size_t n, uint8_t ret[][CAS_HASH_LEN])
{
    cas__hash_many((const uint8_t *const *)bufs, lens, n, ret);
}
