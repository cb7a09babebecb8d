/* SPDX-License-Identifier: MIT */
/*
 * NEON kernels for AArch64 (Advanced SIMD is part of the base AArch64
 * architecture, so they are always available there). Integer block sums
 * equal the portable ones exactly and the float accumulation over blocks
 * runs in the same order, so quantized results are bit-identical to
 * kernels.c; F32/F16 dot products use 4 lanes and may differ in the last
 * bits.
 */
#include "runtime/internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* Sum of w[i] * x[i] over 16 int8 pairs in 4 int32 lanes: products of
 * two int8 fit in int16 and so does the sum of two (|w| <= 128,
 * |x| <= 127). */
static inline int32x4_t
dot_i8x16(int8x16_t w, int8x16_t x)
{
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    p = vmlal_s8(p, vget_high_s8(w), vget_high_s8(x));
    return vpaddlq_s16(p);
}

/* The same over 32 pairs, not yet reduced. */
static inline int32x4_t
dot_i8x32_lanes(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
    return vaddq_s32(dot_i8x16(w0, vld1q_s8(x)), dot_i8x16(w1, vld1q_s8(x + 16)));
}

static inline int32_t
dot_i8x32(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
    return vaddvq_s32(dot_i8x32_lanes(w0, w1, x));
}

static inline void
load_q4(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi)
{
    uint8x16_t b = vld1q_u8(qs);
    int8x16_t eight = vdupq_n_s8(8);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0f))), eight);
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
}

static float
dot_f32(const float *w, const float *x, size_t n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++)
        s += w[i] * x[i];
    return s;
}

static float
dot_f16(const uint8_t *w, const float *x, size_t n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint16x4_t h = vreinterpret_u16_u8(vld1_u8(w + 2 * i));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vreinterpret_f16_u16(h)), vld1q_f32(x + i));
    }
    float s = vaddvq_f32(a0);
    for (; i < n; i++)
        s += rt__f16_to_f32(le16_load(w + 2 * i)) * x[i];
    return s;
}

static void
sums_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES)
        ret[b] = dot_i8x32(vld1q_s8((const int8_t *)(w + 2)), vld1q_s8((const int8_t *)(w + 18)),
                           x[b].qs);
}

static void
sums_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES) {
        int8x16_t lo, hi;
        load_q4(w + 2, &lo, &hi);
        ret[b] = dot_i8x32(lo, hi, x[b].qs);
    }
}

/* Four float lanes, block b into lane b % 4, as in the portable kernel
 * (kernels.c), so the results are bit-identical. */
static float
dot_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    float acc[RT_DOT_LANES] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES) {
        int32_t si = dot_i8x32(vld1q_s8((const int8_t *)(w + 2)),
                               vld1q_s8((const int8_t *)(w + 18)), x[b].qs);
        acc[b % RT_DOT_LANES] += (float)si * (rt__f16_to_f32(le16_load(w)) * x[b].d);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static float
dot_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    float acc[RT_DOT_LANES] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES) {
        int8x16_t lo, hi;
        load_q4(w + 2, &lo, &hi);
        int32_t si = dot_i8x32(lo, hi, x[b].qs);
        acc[b % RT_DOT_LANES] += (float)si * (rt__f16_to_f32(le16_load(w)) * x[b].d);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* ---- K-quants: the integers sumi and summ of each super-block as
 * kquant.c defines them (integer sums: any order gives the same value),
 * folded with the shared rt__kq_fold in block order, so results equal the
 * portable ones bit for bit. A super-block's 256 codes are unpacked once
 * into 16 registers of 16 codes in element order; the 4-token kernels
 * reuse them for every token. ---- */

/* Q4_K (qh == NULL) or Q5_K codes, unsigned (0..15 or 0..31, so they
 * read as int8 too): run j (32 weights, one scale) is q[2j], q[2j + 1].
 * Chunk c's low nibbles are run 2c, its high nibbles run 2c + 1; Q5_K's
 * bit 4 comes from bit 2c (2c + 1) of qh[l]. */
static inline void
unpack_q45(const uint8_t *qs, const uint8_t *qh, int8x16_t q[16])
{
    const uint8x16_t m4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = h0;
    if (qh) {
        h0 = vld1q_u8(qh);
        h1 = vld1q_u8(qh + 16);
    }
    for (unsigned c = 0; c < 4; c++) {
        uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);
        uint8x16_t l0 = vandq_u8(v0, m4), l1 = vandq_u8(v1, m4);
        uint8x16_t u0 = vshrq_n_u8(v0, 4), u1 = vshrq_n_u8(v1, 4);
        if (qh) {
            l0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(h0, one), 4));
            l1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(h1, one), 4));
            u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(vshrq_n_u8(h0, 1), one), 4));
            u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(vshrq_n_u8(h1, 1), one), 4));
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
        }
        q[4 * c] = vreinterpretq_s8_u8(l0);
        q[4 * c + 1] = vreinterpretq_s8_u8(l1);
        q[4 * c + 2] = vreinterpretq_s8_u8(u0);
        q[4 * c + 3] = vreinterpretq_s8_u8(u1);
    }
}

/* sumi = sum_j sc[j] * (run j . x) for one token's Q8_K block. */
static inline int32_t
sumi_q45(const int8x16_t q[16], const uint8_t sc[8], const int8_t *x)
{
    int32x4_t sum = vdupq_n_s32(0);
    for (unsigned j = 0; j < 8; j++)
        sum = vmlaq_n_s32(sum, dot_i8x32_lanes(q[2 * j], q[2 * j + 1], x + 32 * j), sc[j]);
    return vaddvq_s32(sum);
}

/* summ = sum_j m[j] * bsums[j]. */
static inline int32_t
summ_q45(const uint8_t m[8], const int16_t *bsums)
{
    int16x8_t mv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m))), bs = vld1q_s16(bsums);
    int32x4_t p = vmull_s16(vget_low_s16(mv), vget_low_s16(bs));
    p = vmlal_s16(p, vget_high_s16(mv), vget_high_s16(bs));
    return vaddvq_s32(p);
}

static inline float
f16(const uint8_t *p)
{
    return rt__f16_to_f32(le16_load(p));
}

/* One-token Q4_K, or Q5_K (q5: codes at 48, high bits at 16). */
static inline float
dot_q45(const uint8_t *w, const rt__blockq8k *x, size_t nb, size_t bytes, bool q5)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += bytes) {
        int8x16_t q[16];
        uint8_t sc[8], m[8];
        unpack_q45(w + (q5 ? 48 : 16), q5 ? w + 16 : NULL, q);
        rt__kq_scales(w + 4, sc, m);
        acc = rt__kq_fold(acc, x[b].d, f16(w), f16(w + 2), sumi_q45(q, sc, x[b].qs),
                          summ_q45(m, x[b].bsums));
    }
    return acc;
}

static float
dot_q4_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    return dot_q45(w, x, nb, RT_Q4_K_BYTES, false);
}

static float
dot_q5_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    return dot_q45(w, x, nb, RT_Q5_K_BYTES, true);
}

/* Q6_K codes q - 32 (-32..31): q[g] holds group g's 16 weights (one
 * scale each), element 128h + 32t + l in group 8h + 2t + l / 16; the low
 * 4 bits from ql (low nibbles for t < 2, the second 32 bytes for odd t),
 * the high 2 from bits 2t, 2t + 1 of qh[32h + l]. */
static inline void
unpack_q6(const uint8_t *w, int8x16_t q[16])
{
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(32);
    for (unsigned h = 0; h < 2; h++)
        for (unsigned k = 0; k < 2; k++) {
            uint8x16_t a = vld1q_u8(w + 64 * h + 16 * k), b = vld1q_u8(w + 64 * h + 32 + 16 * k);
            uint8x16_t hb = vld1q_u8(w + 128 + 32 * h + 16 * k);
            uint8x16_t lo[4] = { vandq_u8(a, m4), vandq_u8(b, m4), vshrq_n_u8(a, 4),
                                 vshrq_n_u8(b, 4) };
            uint8x16_t hi[4] = { vandq_u8(hb, m2), vandq_u8(vshrq_n_u8(hb, 2), m2),
                                 vandq_u8(vshrq_n_u8(hb, 4), m2), vshrq_n_u8(hb, 6) };
            for (unsigned t = 0; t < 4; t++)
                q[8 * h + 2 * t + k] =
                    vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo[t], vshlq_n_u8(hi[t], 4))), off);
        }
}

/* sumi = sum_g sc[g] * (group g . x). */
static inline int32_t
sumi_q6(const int8x16_t q[16], const int8_t *sc, const int8_t *x)
{
    int32x4_t sum = vdupq_n_s32(0);
    for (unsigned g = 0; g < 16; g++)
        sum = vmlaq_n_s32(sum, dot_i8x16(q[g], vld1q_s8(x + 16 * g)), sc[g]);
    return vaddvq_s32(sum);
}

static float
dot_q6_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        int8x16_t q[16];
        unpack_q6(w, q);
        int32_t sumi = sumi_q6(q, (const int8_t *)(w + 192), x[b].qs);
        acc = rt__kq_fold(acc, x[b].d, f16(w + 208), 0.0f, sumi, 0);
    }
    return acc;
}

/* ---- 4 tokens per row (batched prompts): per token the one-token
 * kernels' integers and folds, in the same order; the row's unpacking
 * and scales are shared. ---- */

#define XK(t) ((const rt__blockq8k *)(const void *)((const uint8_t *)xq + (t)*xq_stride))

static void
dot4_q4_k(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    float a[4] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q4_K_BYTES) {
        int8x16_t q[16];
        uint8_t sc[8], m[8];
        unpack_q45(w + 16, NULL, q);
        rt__kq_scales(w + 4, sc, m);
        float d = f16(w), dmin = f16(w + 2);
        for (unsigned t = 0; t < 4; t++) {
            const rt__blockq8k *x = XK(t) + b;
            a[t] = rt__kq_fold(a[t], x->d, d, dmin, sumi_q45(q, sc, x->qs), summ_q45(m, x->bsums));
        }
    }
    for (unsigned t = 0; t < 4; t++)
        out[t] = a[t];
}

static void
dot4_q6_k(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    float a[4] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        int8x16_t q[16];
        unpack_q6(w, q);
        float d = f16(w + 208);
        for (unsigned t = 0; t < 4; t++) {
            const rt__blockq8k *x = XK(t) + b;
            a[t] =
                rt__kq_fold(a[t], x->d, d, 0.0f, sumi_q6(q, (const int8_t *)(w + 192), x->qs), 0);
        }
    }
    for (unsigned t = 0; t < 4; t++)
        out[t] = a[t];
}

#undef XK

static const rt__kernels kernels_neon = {
    .name = "neon",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .axpy_f16 = rt__axpy_f16_portable,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .sums_q8_0 = sums_q8_0,
    .sums_q4_0 = sums_q4_0,
    .dot_q4_k = dot_q4_k,
    .dot_q5_k = dot_q5_k,
    .dot_q6_k = dot_q6_k,
    .dot4_q4_k = dot4_q4_k,
    .dot4_q6_k = dot4_q6_k,
};

const rt__kernels *
rt__kernels_simd(void)
{
    return &kernels_neon;
}

const rt__kernels *
rt__kernels_simd_all(size_t i)
{
    return i == 0 ? &kernels_neon : NULL;
}
#endif
