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

/* Sum of w[i] * x[i] over 32 int8 pairs: products of two int8 fit in
 * int16 and so does the sum of two (|w| <= 128, |x| <= 127). */
static inline int32_t
dot_i8x32(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
    int32x4_t acc = vpaddlq_s16(p0);
    acc = vpadalq_s16(acc, p1);
    return vaddvq_s32(acc);
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

static const rt__kernels kernels_neon = {
    .name = "neon",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .axpy_f16 = rt__axpy_f16_portable,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .sums_q8_0 = sums_q8_0,
    .sums_q4_0 = sums_q4_0,
    /* TODO(kquant): NEON K-quant kernels; the portable ones are bit-exact
     * by definition meanwhile. */
    .dot_q4_k = rt__dot_q4_k_portable,
    .dot_q5_k = rt__dot_q5_k_portable,
    .dot_q6_k = rt__dot_q6_k_portable,
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
