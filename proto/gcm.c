/* SPDX-License-Identifier: MIT */
/*
 * AES-256-GCM (NIST SP 800-38D: 96-bit nonce, 128-bit tag) on VAES and
 * VPCLMULQDQ, four blocks per 512-bit register. The bytes are exactly those
 * of libsodium's crypto_aead_aes256gcm, which stays the implementation on
 * every other CPU and is the reference the tests hold this one to.
 *
 * Why our own: libsodium 1.0.18 (Debian 12; the dependency set is fixed)
 * does AES-GCM with 128-bit AES-NI instructions and opens in two passes
 * (GHASH, then CTR), which made the AEAD 41% of a node's CPU per fetched
 * byte (1.25 GB/s open, 2.2 GB/s seal per core). This file only adds
 * speed: no new construction, no new key or nonce handling.
 *
 * Side channels: AES rounds and carry-less multiplies are instructions with
 * data-independent timing, there are no tables and no branches on secrets,
 * and the tag is compared with sodium_memcmp. open() writes plaintext before
 * it knows the tag is right (one pass), then wipes it all on a mismatch:
 * callers must not look at m unless it returns true.
 *
 * GHASH arithmetic. A block is byte-reversed into a 128-bit integer whose bit
 * j is the coefficient of x^(127-j). In that form the carry-less product of
 * two blocks, reduced Montgomery-style by 2^128 in two 64-bit folds with
 * the constant 0xc2000000_00000000 (the reduction polynomial
 * x^128+x^7+x^2+x+1 seen bit-reversed), is the field product times x^-1; the
 * stored powers of H are pre-multiplied by x to cancel it ("H<<1", Gueron
 * and Kounavis, Intel white paper 2010). Sixteen blocks are multiplied by
 * H^16..H^1 and summed before a single reduction.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "proto/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define GCM_TARGET  \
    __attribute__(( \
        target("aes,pclmul,ssse3,sse4.1,avx,avx2,avx512f,avx512bw,avx512vl,vaes,vpclmulqdq")))
#define GCM_INLINE GCM_TARGET static inline __attribute__((always_inline))
/* Round and lane loops are short and fixed: unrolled, the round keys and
 * blocks stay in the 32 vector registers instead of stack arrays. */
#define UNROLL _Pragma("GCC unroll 16")

/* CPUID leaf 1 ECX, leaf 7 EBX/ECX bits, and the XCR0 state the OS must
 * save for 512-bit registers (SSE, AVX, opmask, ZMM0-15 high, ZMM16-31).
 * Every extension GCM_TARGET lets the compiler use is checked, even those
 * that every AVX-512 CPU has: a hypervisor may report any mix. */
static const unsigned L1C_PCLMUL = 1u << 1, L1C_SSSE3 = 1u << 9, L1C_SSE41 = 1u << 19,
                      L1C_AES = 1u << 25, L1C_OSXSAVE = 1u << 27, L1C_AVX = 1u << 28;
static const unsigned L7B_AVX2 = 1u << 5, L7B_AVX512F = 1u << 16, L7B_AVX512BW = 1u << 30,
                      L7B_AVX512VL = 1u << 31;
static const unsigned L7C_VAES = 1u << 9, L7C_VPCLMULQDQ = 1u << 10;
static const unsigned XCR0_ZMM = 0xe6;

/* The stack that burn_stack() overwrites after each call: over twice the
 * largest frame of the functions below (0x700 bytes with clang 14 -O2,
 * 0x5c0 with GCC 12; objdump shows them). */
enum {
    BURN_BYTES = 4096
};

bool
proto__gcm_available(void)
{
    /* CPUID directly: not every compiler's __builtin_cpu_supports knows
     * "vaes" and "vpclmulqdq". */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    unsigned want_1c = L1C_PCLMUL | L1C_SSSE3 | L1C_SSE41 | L1C_AES | L1C_OSXSAVE | L1C_AVX;
    if ((c & want_1c) != want_1c)
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & XCR0_ZMM) != XCR0_ZMM || __get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned want_b = L7B_AVX2 | L7B_AVX512F | L7B_AVX512BW | L7B_AVX512VL;
    return (b & want_b) == want_b &&
           (c & (L7C_VAES | L7C_VPCLMULQDQ)) == (L7C_VAES | L7C_VPCLMULQDQ);
}

/* ---- AES-256 --------------------------------------------------------------- */

GCM_INLINE __m128i
expand_step(__m128i prev, __m128i assist)
{
    prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
    prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
    prev = _mm_xor_si128(prev, _mm_slli_si128(prev, 4));
    return _mm_xor_si128(prev, assist);
}

/* FIPS 197 key expansion: even round keys take RotWord/SubWord/Rcon of the
 * previous one, odd ones SubWord only. aeskeygenassist needs its round
 * constant as an immediate, hence the macros. */
#define EXPAND_EVEN(i, rcon)       \
    rk[i] = expand_step(rk[(i)-2], \
                        _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i)-1], rcon), 0xff))
#define EXPAND_ODD(i) \
    rk[i] = expand_step(rk[(i)-2], _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i)-1], 0), 0xaa))

GCM_INLINE __m128i
round_key(const struct proto__gcm_key *k, int r)
{
    return _mm_loadu_si128((const __m128i *)(k->rk + 16 * r));
}

GCM_INLINE __m128i
aes_block(const struct proto__gcm_key *k, __m128i x)
{
    x = _mm_xor_si128(x, round_key(k, 0));
    UNROLL
    for (int r = 1; r < PROTO__GCM_ROUNDS; r++)
        x = _mm_aesenc_si128(x, round_key(k, r));
    return _mm_aesenclast_si128(x, round_key(k, PROTO__GCM_ROUNDS));
}

/* ---- GHASH ----------------------------------------------------------------- */

GCM_INLINE __m128i
bswap128(__m128i x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

GCM_INLINE __m512i
bswap512(__m512i x)
{
    return _mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                      10, 11, 12, 13, 14, 15)));
}

/* High qword: the folding constant; low qword 1: together, x^-1 reduced,
 * which the "multiply H by x" step adds when a bit falls off the top. */
GCM_INLINE __m128i
gf_poly(void)
{
    return _mm_set_epi64x((long long)0xc200000000000000ull, 1);
}

/* (hi:mi:lo), the 256-bit product with mi at bit 64, reduced to 128 bits:
 * two Montgomery folds of 64 bits each. */
GCM_INLINE __m128i
gf_reduce(__m128i lo, __m128i mi, __m128i hi)
{
    __m128i p = gf_poly();
    mi = _mm_xor_si128(
        mi, _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, p, 0x10)));
    return _mm_xor_si128(
        hi, _mm_xor_si128(_mm_shuffle_epi32(mi, 0x4e), _mm_clmulepi64_si128(mi, p, 0x10)));
}

GCM_INLINE __m128i
gf_mul(__m128i a, __m128i b)
{
    __m128i lo = _mm_clmulepi64_si128(a, b, 0x00), hi = _mm_clmulepi64_si128(a, b, 0x11);
    __m128i mi = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01), _mm_clmulepi64_si128(a, b, 0x10));
    return gf_reduce(lo, mi, hi);
}

/* Unreduced products of four lanes, accumulated. */
typedef struct {
    __m512i lo, mi, hi;
} acc512;

GCM_INLINE void
acc_mul(acc512 *a, __m512i x, __m512i h)
{
    a->lo = _mm512_xor_si512(a->lo, _mm512_clmulepi64_epi128(x, h, 0x00));
    a->hi = _mm512_xor_si512(a->hi, _mm512_clmulepi64_epi128(x, h, 0x11));
    a->mi = _mm512_ternarylogic_epi64(a->mi, _mm512_clmulepi64_epi128(x, h, 0x01),
                                      _mm512_clmulepi64_epi128(x, h, 0x10), 0x96);
}

GCM_INLINE __m128i
xor_lanes(__m512i v)
{
    __m256i y = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    return _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
}

GCM_INLINE __m128i
acc_reduce(const acc512 *a)
{
    return gf_reduce(xor_lanes(a->lo), xor_lanes(a->mi), xor_lanes(a->hi));
}

/* y = (y ^ x[0])*H^(4n) ^ x[1]*H^(4n-1) ^ ... over n registers of four
 * byte-reversed blocks each; pw points at the power for lane 0 of x[0]. */
GCM_INLINE __m128i
ghash_regs(__m128i y, const __m512i *x, int n, const uint8_t *pw)
{
    acc512 a = { _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512() };
    __m512i first = _mm512_xor_si512(x[0], _mm512_zextsi128_si512(y));
    acc_mul(&a, first, _mm512_loadu_si512(pw));
    UNROLL
    for (int i = 1; i < n; i++)
        acc_mul(&a, x[i], _mm512_loadu_si512(pw + 64 * i));
    return acc_reduce(&a);
}

/* Plain 16-byte-at-a-time GHASH for the associated data. */
GCM_INLINE __m128i
ghash_bytes(__m128i y, __m128i h1, const uint8_t *p, size_t len)
{
    for (; len >= 16; p += 16, len -= 16)
        y = gf_mul(_mm_xor_si128(y, bswap128(_mm_loadu_si128((const __m128i *)p))), h1);
    if (len) {
        uint8_t last[16] = { 0 };
        memcpy(last, p, len);
        y = gf_mul(_mm_xor_si128(y, bswap128(_mm_loadu_si128((const __m128i *)last))), h1);
    }
    return y;
}

/* ---- key setup ------------------------------------------------------------- */

/* AES-256 round keys (the first two are the key itself), H and keystream
 * do not all fit in registers: the compiler spills some to the stack, where
 * they would outlive the call. So each entry point below runs its work in a
 * function of its own and then overwrites that stretch of stack, as
 * libgcrypt's _gcry_burn_stack does. */
static __attribute__((noinline)) void
burn_stack(void)
{
    uint8_t b[BURN_BYTES];
    sodium_memzero(b, sizeof(b));
}

GCM_TARGET static __attribute__((noinline)) void
init_vaes(struct proto__gcm_key *k, const uint8_t key[static PROTO__KEY_LEN])
{
    __m128i rk[PROTO__GCM_ROUNDS + 1];
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
    EXPAND_EVEN(2, 0x01);
    EXPAND_ODD(3);
    EXPAND_EVEN(4, 0x02);
    EXPAND_ODD(5);
    EXPAND_EVEN(6, 0x04);
    EXPAND_ODD(7);
    EXPAND_EVEN(8, 0x08);
    EXPAND_ODD(9);
    EXPAND_EVEN(10, 0x10);
    EXPAND_ODD(11);
    EXPAND_EVEN(12, 0x20);
    EXPAND_ODD(13);
    EXPAND_EVEN(14, 0x40);
    for (int r = 0; r <= PROTO__GCM_ROUNDS; r++)
        _mm_storeu_si128((__m128i *)(k->rk + 16 * r), rk[r]);

    /* H = E(0), byte-reversed, times x: shift left one bit, and where a bit
     * falls off the top, add the reduced x^-1 (no branch on the key). */
    __m128i h = bswap128(aes_block(k, _mm_setzero_si128()));
    __m128i top = _mm_shuffle_epi32(_mm_srai_epi32(h, 31), 0xff);
    __m128i carry = _mm_slli_si128(_mm_srli_epi64(h, 63), 8);
    h = _mm_xor_si128(_mm_or_si128(_mm_slli_epi64(h, 1), carry), _mm_and_si128(top, gf_poly()));

    /* pow[i] = H^(PROTO__GCM_POWERS - i); then four zero entries, so a
     * 64-byte load for the last n < 4 blocks stays inside the table. */
    __m128i p = h;
    for (int i = PROTO__GCM_POWERS - 1; i >= 0; i--) {
        _mm_storeu_si128((__m128i *)(k->pow + 16 * i), p);
        p = gf_mul(p, h);
    }
    memset(k->pow + 16 * PROTO__GCM_POWERS, 0, 64);
    sodium_memzero(rk, sizeof(rk));
}

/* ---- CTR + GHASH ----------------------------------------------------------- */

/* Counter blocks kept byte-reversed, so the big-endian 32-bit block counter
 * of GCM is the low dword of each lane and vpaddd is exactly inc32 (it wraps
 * without touching the nonce). */
GCM_INLINE __m512i
ctr_lanes(__m128i j0_rev, int first)
{
    return _mm512_add_epi32(_mm512_broadcast_i32x4(j0_rev),
                            _mm512_set_epi32(0, 0, 0, first + 3, 0, 0, 0, first + 2, 0, 0, 0,
                                             first + 1, 0, 0, 0, first));
}

GCM_INLINE void
aes_regs(const __m512i rkz[static PROTO__GCM_ROUNDS + 1], __m512i *b, int n)
{
    UNROLL
    for (int i = 0; i < n; i++)
        b[i] = _mm512_xor_si512(bswap512(b[i]), rkz[0]);
    UNROLL
    for (int r = 1; r < PROTO__GCM_ROUNDS; r++) {
        UNROLL
        for (int i = 0; i < n; i++)
            b[i] = _mm512_aesenc_epi128(b[i], rkz[r]);
    }
    UNROLL
    for (int i = 0; i < n; i++)
        b[i] = _mm512_aesenclast_epi128(b[i], rkz[PROTO__GCM_ROUNDS]);
}

/* Encrypts or decrypts len bytes from in to out (which may be the same
 * buffer) with counters from 2 (1 is the tag's), folding the ciphertext
 * into *y; the caller finishes the tag. */
GCM_INLINE void
gcm_ctr(const struct proto__gcm_key *k, uint8_t *out, const uint8_t *in, size_t len, __m128i j0_rev,
        __m128i *y, bool enc)
{
    enum {
        GROUP = 4,
        GROUP_BYTES = 64 * GROUP
    };
    _Static_assert(PROTO__GCM_POWERS == 4 * GROUP, "one power of H per block of a group");
    __m512i rkz[PROTO__GCM_ROUNDS + 1];
    UNROLL
    for (int r = 0; r <= PROTO__GCM_ROUNDS; r++)
        rkz[r] = _mm512_broadcast_i32x4(round_key(k, r));
    const __m512i step = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4);
    __m512i ctr = ctr_lanes(j0_rev, 1); /* J0 + 1: counter 2 */
    const uint8_t *pow16 = k->pow;
    __m128i acc = *y;

    for (; len >= GROUP_BYTES; in += GROUP_BYTES, out += GROUP_BYTES, len -= GROUP_BYTES) {
        __m512i ks[GROUP], c[GROUP];
        UNROLL
        for (int i = 0; i < GROUP; i++) {
            ks[i] = ctr;
            ctr = _mm512_add_epi32(ctr, step);
        }
        if (!enc) {
            UNROLL
            for (int i = 0; i < GROUP; i++)
                c[i] = _mm512_loadu_si512(in + 64 * i);
        }
        aes_regs(rkz, ks, GROUP);
        UNROLL
        for (int i = 0; i < GROUP; i++) {
            __m512i x = enc ? _mm512_loadu_si512(in + 64 * i) : c[i];
            __m512i o = _mm512_xor_si512(x, ks[i]);
            _mm512_storeu_si512(out + 64 * i, o);
            c[i] = bswap512(enc ? o : x);
        }
        acc = ghash_regs(acc, c, GROUP, pow16);
    }
    /* Whole 64-byte registers, then one last partial register through a
     * zero-padded buffer (blocks past the end stay zero: no GHASH input). */
    while (len) {
        size_t n = len < 64 ? len : 64;
        uint8_t buf[64];
        __m512i x;
        if (n == 64) {
            x = _mm512_loadu_si512(in);
        } else {
            memset(buf, 0, sizeof(buf));
            memcpy(buf, in, n);
            x = _mm512_loadu_si512(buf);
        }
        __m512i ks = ctr;
        ctr = _mm512_add_epi32(ctr, step);
        aes_regs(rkz, &ks, 1);
        __m512i o = _mm512_xor_si512(x, ks), cipher;
        if (n == 64) {
            _mm512_storeu_si512(out, o);
            cipher = enc ? o : x;
        } else {
            _mm512_storeu_si512(buf, o);
            memcpy(out, buf, n);
            /* Encrypting, the keystream past the end is not ciphertext. */
            memset(buf + n, 0, sizeof(buf) - n);
            cipher = enc ? _mm512_loadu_si512(buf) : x;
            sodium_memzero(buf, sizeof(buf));
        }
        /* n bytes = nb blocks; powers H^nb..H^1, then zeros. */
        size_t nb = (n + 15) / 16;
        __m512i c = bswap512(cipher);
        acc = ghash_regs(acc, &c, 1, pow16 + 16 * (PROTO__GCM_POWERS - nb));
        in += n;
        out += n;
        len -= n;
    }
    *y = acc;
}

/* Tag = E(J0) ^ GHASH(ad, c, lengths). */
GCM_INLINE __m128i
gcm_tag(const struct proto__gcm_key *k, __m128i y, __m128i j0, size_t adlen, size_t clen)
{
    __m128i h1 = _mm_loadu_si128((const __m128i *)(k->pow + 16 * (PROTO__GCM_POWERS - 1)));
    __m128i lens =
        _mm_set_epi64x((long long)((uint64_t)adlen * 8), (long long)((uint64_t)clen * 8));
    y = gf_mul(_mm_xor_si128(y, lens), h1);
    return _mm_xor_si128(bswap128(y), aes_block(k, j0));
}

GCM_INLINE __m128i
gcm_j0(const uint8_t npub[static PROTO__GCM_NPUB])
{
    uint8_t b[16];
    memcpy(b, npub, PROTO__GCM_NPUB);
    b[12] = b[13] = b[14] = 0;
    b[15] = 1;
    return _mm_loadu_si128((const __m128i *)b);
}

GCM_INLINE __m128i
gcm_ad(const struct proto__gcm_key *k, const uint8_t *ad, size_t adlen)
{
    __m128i h1 = _mm_loadu_si128((const __m128i *)(k->pow + 16 * (PROTO__GCM_POWERS - 1)));
    return ghash_bytes(_mm_setzero_si128(), h1, ad, adlen);
}

GCM_TARGET static __attribute__((noinline)) void
seal_vaes(const struct proto__gcm_key *k, uint8_t *c, const uint8_t *m, size_t mlen,
          const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    __m128i j0 = gcm_j0(npub), y = gcm_ad(k, ad, adlen);
    gcm_ctr(k, c, m, mlen, bswap128(j0), &y, true);
    _mm_storeu_si128((__m128i *)(c + mlen), gcm_tag(k, y, j0, adlen, mlen));
}

GCM_TARGET static __attribute__((noinline)) bool
open_vaes(const struct proto__gcm_key *k, uint8_t *m, const uint8_t *c, size_t mlen,
          const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    uint8_t want[PROTO__TAG_LEN];
    memcpy(want, c + mlen, sizeof(want)); /* before m, which may overlap c, is written */
    __m128i j0 = gcm_j0(npub), y = gcm_ad(k, ad, adlen);
    gcm_ctr(k, m, c, mlen, bswap128(j0), &y, false);
    uint8_t got[PROTO__TAG_LEN];
    _mm_storeu_si128((__m128i *)got, gcm_tag(k, y, j0, adlen, mlen));
    bool ok = sodium_memcmp(got, want, sizeof(got)) == 0;
    if (!ok)
        sodium_memzero(m, mlen);
    return ok;
}

void
proto__gcm_init(struct proto__gcm_key *k, const uint8_t key[static PROTO__KEY_LEN])
{
    init_vaes(k, key);
    burn_stack();
}

bool
proto__gcm_seal(const struct proto__gcm_key *k, uint8_t *c, const uint8_t *m, size_t mlen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    if (mlen > PROTO__GCM_MSG_MAX)
        return false;
    seal_vaes(k, c, m, mlen, ad, adlen, npub);
    burn_stack();
    return true;
}

bool
proto__gcm_open(const struct proto__gcm_key *k, uint8_t *m, const uint8_t *c, size_t clen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    if (clen < PROTO__TAG_LEN || clen - PROTO__TAG_LEN > PROTO__GCM_MSG_MAX)
        return false;
    bool ok = open_vaes(k, m, c, clen - PROTO__TAG_LEN, ad, adlen, npub);
    burn_stack();
    return ok;
}

#else /* no VAES code for this compiler or CPU family: libsodium does it all */

bool
proto__gcm_available(void)
{
    return false;
}

void
proto__gcm_init(struct proto__gcm_key *k, const uint8_t key[static PROTO__KEY_LEN])
{
    (void)key;
    memset(k, 0, sizeof(*k));
}

bool
proto__gcm_seal(const struct proto__gcm_key *k, uint8_t *c, const uint8_t *m, size_t mlen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    (void)k, (void)c, (void)m, (void)mlen, (void)ad, (void)adlen, (void)npub;
    return false; /* callers check proto__gcm_available() first */
}

bool
proto__gcm_open(const struct proto__gcm_key *k, uint8_t *m, const uint8_t *c, size_t clen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    (void)k, (void)m, (void)c, (void)clen, (void)ad, (void)adlen, (void)npub;
    return false;
}
#endif
