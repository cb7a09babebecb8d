/* SPDX-License-Identifier: MIT */
/*
 * AVX2 kernels for x86-64, compiled with target attributes so the rest of
 * the build needs no -mavx2; chosen at run time by __builtin_cpu_supports.
 * Integer block sums equal the portable ones exactly, and the float
 * accumulation over blocks runs in the same order, so quantized results are
 * bit-identical to kernels.c. The F32/F16 dot products sum in 8 lanes and
 * may differ from the sequential portable sum in the last bits.
 */
#include "runtime/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))

TARGET static inline int32_t
hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

TARGET static inline float
hsum_f32(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Products w[i] * x[i] of 32 int8 pairs, summed into 8 int32 lanes.
 * maddubs needs an unsigned operand: |w| times x with w's sign moved onto x
 * (pairs stay below 2^15 since x is in [-127, 127]). */
TARGET static inline __m256i
prod_i8x32(__m256i w, __m256i x)
{
    __m256i aw = _mm256_sign_epi8(w, w);
    __m256i sx = _mm256_sign_epi8(x, w);
    __m256i p16 = _mm256_maddubs_epi16(aw, sx);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

TARGET static inline int32_t
dot_i8x32(__m256i w, __m256i x)
{
    return hsum_i32(prod_i8x32(w, x));
}

TARGET static inline float
f16(const uint8_t *p)
{
    return _cvtsh_ss(le16_load(p));
}

/* The four block sums of p0..p3, reduced together (integer addition is
 * associative: the same values as four separate reductions). */
TARGET static inline __m128i
hsum4_i32(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* acc[j] += (float)si[j] * (d_w[j] * d_x[j]) for four blocks: the portable
 * lanes' operations, four at a time. */
TARGET static inline __m128
lanes_add(__m128 acc, __m128i si, const uint8_t *w, size_t stride, const rt__blockq8 *x)
{
    __m128 dw = _mm_set_ps(f16(w + 3 * stride), f16(w + 2 * stride), f16(w + stride), f16(w));
    __m128 dx = _mm_set_ps(x[3].d, x[2].d, x[1].d, x[0].d);
    return _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(si), _mm_mul_ps(dw, dx)));
}

/* The 32 weights of a Q4_0 block as int8 in [-8, 7], in element order. */
TARGET static inline __m256i
load_q4(const uint8_t *qs)
{
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m128i m = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(b, m);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

TARGET static inline __m256i
load_i8x32(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

TARGET static float
dot_f32(const float *w, const float *x, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum_f32(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += w[i] * x[i];
    return s;
}

TARGET static float
dot_f16(const uint8_t *w, const float *x, size_t n)
{
    __m256 a0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        a0 = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + i), a0);
    }
    float s = hsum_f32(a0);
    for (; i < n; i++)
        s += f16(w + 2 * i) * x[i];
    return s;
}

TARGET static void
sums_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES)
        ret[b] = dot_i8x32(load_i8x32(w + 2), load_i8x32(x[b].qs));
}

TARGET static void
sums_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES)
        ret[b] = dot_i8x32(load_q4(w + 2), load_i8x32(x[b].qs));
}

/* Tail blocks (nb % 4) go to lanes 0.., as in the portable kernel. */
TARGET static inline float
lanes_finish(__m128 acc4, const float *tail, size_t n_tail)
{
    float acc[RT_DOT_LANES];
    _mm_storeu_ps(acc, acc4);
    for (size_t j = 0; j < n_tail; j++)
        acc[j] += tail[j];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

TARGET static float
dot_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    __m128 acc = _mm_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *wb = w + b * RT_Q8_0_BYTES;
        __m128i si = hsum4_i32(prod_i8x32(load_i8x32(wb + 2), load_i8x32(x[b].qs)),
                               prod_i8x32(load_i8x32(wb + 36), load_i8x32(x[b + 1].qs)),
                               prod_i8x32(load_i8x32(wb + 70), load_i8x32(x[b + 2].qs)),
                               prod_i8x32(load_i8x32(wb + 104), load_i8x32(x[b + 3].qs)));
        acc = lanes_add(acc, si, wb, RT_Q8_0_BYTES, x + b);
    }
    float tail[RT_DOT_LANES];
    size_t n_tail = 0;
    for (; b < nb; b++) {
        const uint8_t *wb = w + b * RT_Q8_0_BYTES;
        int32_t si = dot_i8x32(load_i8x32(wb + 2), load_i8x32(x[b].qs));
        tail[n_tail++] = (float)si * (f16(wb) * x[b].d);
    }
    return lanes_finish(acc, tail, n_tail);
}

TARGET static float
dot_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    __m128 acc = _mm_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *wb = w + b * RT_Q4_0_BYTES;
        __m128i si = hsum4_i32(prod_i8x32(load_q4(wb + 2), load_i8x32(x[b].qs)),
                               prod_i8x32(load_q4(wb + 20), load_i8x32(x[b + 1].qs)),
                               prod_i8x32(load_q4(wb + 38), load_i8x32(x[b + 2].qs)),
                               prod_i8x32(load_q4(wb + 56), load_i8x32(x[b + 3].qs)));
        acc = lanes_add(acc, si, wb, RT_Q4_0_BYTES, x + b);
    }
    float tail[RT_DOT_LANES];
    size_t n_tail = 0;
    for (; b < nb; b++) {
        const uint8_t *wb = w + b * RT_Q4_0_BYTES;
        int32_t si = dot_i8x32(load_q4(wb + 2), load_i8x32(x[b].qs));
        tail[n_tail++] = (float)si * (f16(wb) * x[b].d);
    }
    return lanes_finish(acc, tail, n_tail);
}

/* ---- K-quants: integer sums per super-block as kquant.c defines them,
 * folded with the shared rt__kq_fold, so results equal the portable ones
 * bit for bit. ---- */

/* sc * (q . x) over 32 weights, in 8 int32 lanes: q unsigned (Q4_K codes
 * 0..15, Q5_K 0..31), so maddubs takes it directly (pairs at most
 * 31 * 127 * 2 < 2^15); the scale multiplies in the madd. */
TARGET static inline __m256i
scaled_u8x32(__m256i q, const int8_t *x, uint8_t sc)
{
    __m256i p16 = _mm256_maddubs_epi16(q, load_i8x32(x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(sc));
}

/* One Q4_K (qh == NULL) or Q5_K super-block: sumi and summ. */
TARGET static inline int32_t
sums_q45(const uint8_t *w, const uint8_t *qs, const uint8_t *qh, const rt__blockq8k *x,
         int32_t *ret_summ)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), sixteen = _mm256_set1_epi8(16);
    __m256i hv = qh ? load_i8x32(qh) : _mm256_setzero_si256();
    __m256i sum = _mm256_setzero_si256();
    int32_t summ = 0;
    for (unsigned c = 0; c < 4; c++) {
        __m256i v = load_i8x32(qs + 32 * c);
        __m256i lo = _mm256_and_si256(v, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (qh) {
            __m256i b0 = _mm256_set1_epi8((char)(1u << (2 * c)));
            __m256i b1 = _mm256_set1_epi8((char)(1u << (2 * c + 1)));
            lo = _mm256_or_si256(
                lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b0), b0), sixteen));
            hi = _mm256_or_si256(
                hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b1), b1), sixteen));
        }
        uint8_t sc0, m0, sc1, m1;
        rt__kq_scale_min(w + 4, 2 * c, &sc0, &m0);
        rt__kq_scale_min(w + 4, 2 * c + 1, &sc1, &m1);
        sum = _mm256_add_epi32(sum, scaled_u8x32(lo, x->qs + 64 * c, sc0));
        sum = _mm256_add_epi32(sum, scaled_u8x32(hi, x->qs + 64 * c + 32, sc1));
        summ += m0 * x->bsums[2 * c] + m1 * x->bsums[2 * c + 1];
    }
    *ret_summ = summ;
    return hsum_i32(sum);
}

TARGET static float
dot_q4_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q4_K_BYTES) {
        int32_t summ, sumi = sums_q45(w, w + 16, NULL, &x[b], &summ);
        acc = rt__kq_fold(acc, x[b].d, le16_load(w), le16_load(w + 2), sumi, summ);
    }
    return acc;
}

TARGET static float
dot_q5_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q5_K_BYTES) {
        int32_t summ, sumi = sums_q45(w, w + 48, w + 16, &x[b], &summ);
        acc = rt__kq_fold(acc, x[b].d, le16_load(w), le16_load(w + 2), sumi, summ);
    }
    return acc;
}

/* Q6_K: codes q - 32 in -32..31 are signed, so the sign trick of
 * prod_i8x32 applies; the two 16-weight groups of a 32-weight run take
 * their own scale (low and high 128-bit halves). */
TARGET static float
dot_q6_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        const int8_t *sc = (const int8_t *)(w + 192);
        __m256i sum = _mm256_setzero_si256();
        for (unsigned h = 0; h < 2; h++) {
            __m256i ql0 = load_i8x32(w + 64 * h), ql1 = load_i8x32(w + 64 * h + 32);
            __m256i qh = load_i8x32(w + 128 + 32 * h);
            for (unsigned t = 0; t < 4; t++) {
                __m256i l = t & 1 ? ql1 : ql0;
                __m256i lo =
                    t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * t)), m2);
                __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), off);
                __m256i xv = load_i8x32(x[b].qs + 128 * h + 32 * t);
                __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xv, q));
                unsigned g = 8 * h + 2 * t;
                __m256i s16 = _mm256_setr_m128i(_mm_set1_epi16(sc[g]), _mm_set1_epi16(sc[g + 1]));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, s16));
            }
        }
        acc = rt__kq_fold(acc, x[b].d, le16_load(w + 208), 0, hsum_i32(sum), 0);
    }
    return acc;
}

static const rt__kernels kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .sums_q8_0 = sums_q8_0,
    .sums_q4_0 = sums_q4_0,
    .dot_q4_k = dot_q4_k,
    .dot_q5_k = dot_q5_k,
    .dot_q6_k = dot_q6_k,
};

/* AVX2, FMA and F16C present, and the OS saves the YMM registers. Read
 * from CPUID directly: not every compiler's __builtin_cpu_supports knows
 * "f16c". */
static bool
has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
         f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c))
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) /* XMM and YMM state enabled */
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 5);
}

const rt__kernels *
rt__kernels_simd(void)
{
    /* Asked once per model init: cheap enough not to cache (no shared state). */
    return has_avx2() ? &kernels_avx2 : NULL;
}
#endif
