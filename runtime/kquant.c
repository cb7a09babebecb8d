/* SPDX-License-Identifier: MIT */
/*
 * K-quant blocks (Q4_K, Q5_K, Q6_K): dequantization, the Q8_K activation
 * quantizer and the portable dot kernels. Layouts are in types.h.
 *
 * Every dot kernel works one super-block (256 weights) at a time: it forms
 * two exact integers, sumi = sum over sub-blocks of scale * (q . x) and
 * summ = sum over sub-blocks of min * (sum of x), and folds them into one
 * float accumulator with rt__kq_fold. SIMD kernels compute the same
 * integers in their own way and call the same fold in the same order, so
 * every kernel set gives bit-identical results.
 */
#include <math.h>
#include <string.h>

#include "runtime/internal.h"

/* Unsigned codes of one Q4_K (qh == NULL) or Q5_K super-block, element
 * order: 64-weight chunk c takes the low nibbles of qs[32c..32c+31], then
 * their high nibbles; Q5_K adds bit (e / 32) of qh[e % 32] as bit 4. */
static void
unpack_q45(const uint8_t *qs, const uint8_t *qh, uint8_t q[RT_QK_K])
{
    for (unsigned c = 0; c < 4; c++)
        for (unsigned l = 0; l < 32; l++) {
            uint8_t b = qs[32 * c + l];
            q[64 * c + l] = b & 0x0f;
            q[64 * c + 32 + l] = b >> 4;
        }
    if (qh)
        for (unsigned e = 0; e < RT_QK_K; e++)
            q[e] = (uint8_t)(q[e] | ((qh[e % 32] >> (e / 32)) & 1) << 4);
}

/* Signed codes (-32..31) of one Q6_K super-block: element e in half h =
 * e / 128, quarter t = (e % 128) / 32, l = e % 32 takes a nibble of
 * ql[64h + 32(t & 1) + l] (low for t < 2) and bits 2t, 2t+1 of qh[32h + l]. */
static void
unpack_q6(const uint8_t *ql, const uint8_t *qh, int8_t q[RT_QK_K])
{
    for (unsigned e = 0; e < RT_QK_K; e++) {
        unsigned h = e / 128, t = (e % 128) / 32, l = e % 32;
        uint8_t b = ql[64 * h + 32 * (t & 1) + l];
        unsigned lo = t < 2 ? (b & 0x0fu) : (unsigned)(b >> 4);
        unsigned hi = (qh[32 * h + l] >> (2 * t)) & 3;
        q[e] = (int8_t)((int)(lo | hi << 4) - 32);
    }
}

void
rt__dequant_kquant(rt_type t, const uint8_t *in, float *out, size_t n)
{
    size_t bytes = rt_type_block_bytes(t);
    for (size_t b = 0; b < n / RT_QK_K; b++, in += bytes, out += RT_QK_K) {
        if (t == RT_TYPE_Q6_K) {
            int8_t q[RT_QK_K];
            unpack_q6(in, in + 128, q);
            float d = rt__f16_to_f32(le16_load(in + 208));
            for (unsigned e = 0; e < RT_QK_K; e++)
                out[e] = d * (float)(int8_t)in[192 + e / 16] * (float)q[e];
            continue;
        }
        uint8_t q[RT_QK_K];
        unpack_q45(in + (t == RT_TYPE_Q5_K ? 48 : 16), t == RT_TYPE_Q5_K ? in + 16 : NULL, q);
        float d = rt__f16_to_f32(le16_load(in)), dmin = rt__f16_to_f32(le16_load(in + 2));
        for (unsigned j = 0; j < 8; j++) {
            uint8_t sc, m;
            rt__kq_scale_min(in + 4, j, &sc, &m);
            float ds = d * (float)sc, dm = dmin * (float)m;
            for (unsigned i = 0; i < 32; i++)
                out[32 * j + i] = ds * (float)q[32 * j + i] - dm;
        }
    }
}

/* As ggml's Q8_K: the scale comes from the value of largest magnitude,
 * iscale = -127 / max, q = round-to-even(iscale * x) capped at 127, and
 * d = 1 / iscale. Matching it keeps nvx within llama.cpp's own noise. */
void
rt__quantize_act_k(const float *x, size_t n, rt__blockq8k *out)
{
    for (size_t b = 0; b < n / RT_QK_K; b++, x += RT_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (unsigned i = 0; i < RT_QK_K; i++)
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        memset(&out[b], 0, sizeof(out[b]));
        if (!(amax > 0.0f) || !(amax <= 3.4e38f)) /* zero, NaN or Inf: all 0 */
            continue;
        float iscale = -127.0f / max;
        for (unsigned i = 0; i < RT_QK_K; i++) {
            float v = iscale * x[i];
            int q = rt__round_i8(v);
            out[b].qs[i] = (int8_t)q;
            out[b].bsums[i / 32] = (int16_t)(out[b].bsums[i / 32] + q);
        }
        out[b].d = 1.0f / iscale;
    }
}

float
rt__dot_q4_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q4_K_BYTES) {
        uint8_t q[RT_QK_K];
        unpack_q45(w + 16, NULL, q);
        int32_t sumi = 0, summ = 0;
        for (unsigned j = 0; j < 8; j++) {
            uint8_t sc, m;
            rt__kq_scale_min(w + 4, j, &sc, &m);
            int32_t s = 0;
            for (unsigned i = 0; i < 32; i++)
                s += q[32 * j + i] * x[b].qs[32 * j + i];
            sumi += sc * s;
            summ += m * x[b].bsums[j];
        }
        acc = rt__kq_fold(acc, x[b].d, rt__f16_to_f32(le16_load(w)),
                          rt__f16_to_f32(le16_load(w + 2)), sumi, summ);
    }
    return acc;
}

float
rt__dot_q5_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q5_K_BYTES) {
        uint8_t q[RT_QK_K];
        unpack_q45(w + 48, w + 16, q);
        int32_t sumi = 0, summ = 0;
        for (unsigned j = 0; j < 8; j++) {
            uint8_t sc, m;
            rt__kq_scale_min(w + 4, j, &sc, &m);
            int32_t s = 0;
            for (unsigned i = 0; i < 32; i++)
                s += q[32 * j + i] * x[b].qs[32 * j + i];
            sumi += sc * s;
            summ += m * x[b].bsums[j];
        }
        acc = rt__kq_fold(acc, x[b].d, rt__f16_to_f32(le16_load(w)),
                          rt__f16_to_f32(le16_load(w + 2)), sumi, summ);
    }
    return acc;
}

float
rt__dot_q6_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        int8_t q[RT_QK_K];
        unpack_q6(w, w + 128, q);
        int32_t sumi = 0;
        for (unsigned g = 0; g < 16; g++) {
            int32_t s = 0;
            for (unsigned i = 0; i < 16; i++)
                s += q[16 * g + i] * x[b].qs[16 * g + i];
            sumi += (int8_t)w[192 + g] * s;
        }
        acc = rt__kq_fold(acc, x[b].d, rt__f16_to_f32(le16_load(w + 208)), 0.0f, sumi, 0);
    }
    return acc;
}
