/* SPDX-License-Identifier: MIT */
/*
 * Block quantizers (round to nearest and the Q4_0 scale search) and the
 * block decoder; see quantize.h. The block layouts are GGUF's
 * (runtime/types.h). Model conversion is in quantize-model.c, the
 * activation-aware Q4 pass in quantize-awq.c.
 */
#include "runtime/quantize.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "runtime/internal.h"

/* ---- half precision ---- */

/* The engine's converters (kernels.c): one definition of the rounding. */
uint16_t
rt_quant_f16(float f)
{
    return rt__f32_to_f16(f);
}

float
rt_quant_f32(uint16_t h)
{
    return rt__f16_to_f32(h);
}

/* ---- row quantizers ---- */

static void
put_d(uint8_t *p, float d)
{
    uint16_t h = rt_quant_f16(d);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static float
get_d(const uint8_t *p)
{
    return rt__f16_to_f32(le16_load(p));
}

void
rt_quant_row_q8_0(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < RT_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_d(out, d);
        for (int j = 0; j < RT_QK; j++) {
            /* |x * id| <= 127 for finite x; the clamp keeps a NaN or Inf
             * (never in a loaded model: rt_quant_model refuses them) from
             * reaching an undefined conversion. */
            float v = roundf(x[j] * id);
            int q = v >= -127.0f && v <= 127.0f ? (int)v : v > 0.0f ? 127 : v < 0.0f ? -127 : 0;
            out[2 + j] = (uint8_t)(int8_t)q;
        }
    }
}

/* Packs 32 codes 0..15: byte j holds q[j] (low nibble) and q[j+16] (high). */
void
rt__quant_pack_q4(uint8_t *qs, const uint8_t *q)
{
    for (int j = 0; j < RT_QK / 2; j++)
        qs[j] = (uint8_t)(q[j] | q[j + RT_QK / 2] << 4);
}

void
rt_quant_row_q4_0(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q4_0_BYTES) {
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < RT_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_d(out, d);
        uint8_t q[RT_QK];
        for (int j = 0; j < RT_QK; j++)
            q[j] = rt__quant_code4(x[j] * id + 8.0f);
        rt__quant_pack_q4(out + 2, q);
    }
}

/* Weighted error of block x quantized with scale d (as stored in fp16);
 * writes the codes to q. */
static double
q4_try(const float *x, const float *w, float d, uint8_t *q)
{
    d = rt_quant_f32(rt_quant_f16(d));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    double err = 0.0;
    for (int j = 0; j < RT_QK; j++) {
        q[j] = rt__quant_code4(x[j] * id + 8.0f);
        double e = x[j] - d * (float)(q[j] - 8);
        err += (w ? w[j] : 1.0) * e * e;
    }
    return err;
}

void
rt_quant_row_q4_0_search(const float *x, const float *imp, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q4_0_BYTES) {
        const float *w = imp ? imp + b * RT_QK : NULL;
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < RT_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        uint8_t q[RT_QK], best_q[RT_QK];
        float best_d = m / -8.0f;
        double best = q4_try(x, w, best_d, best_q);
        if (amax > 0.0f) {
            /* Candidate grids: the extreme weight at -8 +- t/4 (or at +7
             * side), then a weighted least-squares refit of d for the codes
             * each produced. */
            for (int t = -8; t <= 16; t++) {
                for (int side = 0; side < 2; side++) {
                    float k = side ? 7.0f + 0.125f * (float)t : -8.0f - 0.125f * (float)t;
                    if (fabsf(k) < 2.0f)
                        continue;
                    float d = m / k;
                    double e = q4_try(x, w, d, q);
                    double sxq = 0.0, sqq = 0.0;
                    for (int j = 0; j < RT_QK; j++) {
                        double wj = w ? w[j] : 1.0, c = (double)q[j] - 8.0;
                        sxq += wj * x[j] * c;
                        sqq += wj * c * c;
                    }
                    if (e < best) {
                        best = e;
                        best_d = d;
                        memcpy(best_q, q, sizeof(q));
                    }
                    if (sqq > 0.0) {
                        float d2 = (float)(sxq / sqq);
                        double e2 = q4_try(x, w, d2, q);
                        if (e2 < best) {
                            best = e2;
                            best_d = d2;
                            memcpy(best_q, q, sizeof(q));
                        }
                    }
                }
            }
        }
        put_d(out, best_d);
        rt__quant_pack_q4(out + 2, best_q);
    }
}

int
rt_quant_dequant_row(rt_type t, const void *in, float *out, size_t n)
{
    const uint8_t *p = in;
    switch (t) {
    case RT_TYPE_F32:
        memcpy(out, in, n * sizeof(float));
        return 0;
    case RT_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = rt_quant_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case RT_TYPE_Q8_0:
        if (n % RT_QK)
            return -EINVAL;
        for (size_t b = 0; b < n / RT_QK; b++, p += RT_Q8_0_BYTES) {
            float d = get_d(p);
            for (int j = 0; j < RT_QK; j++)
                out[b * RT_QK + j] = d * (float)(int8_t)p[2 + j];
        }
        return 0;
    case RT_TYPE_Q4_0:
        if (n % RT_QK)
            return -EINVAL;
        for (size_t b = 0; b < n / RT_QK; b++, p += RT_Q4_0_BYTES) {
            float d = get_d(p);
            for (int j = 0; j < RT_QK / 2; j++) {
                out[b * RT_QK + j] = d * (float)((p[2 + j] & 0x0F) - 8);
                out[b * RT_QK + j + RT_QK / 2] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        return 0;
    case RT_TYPE_Q4_K:
    case RT_TYPE_Q5_K:
    case RT_TYPE_Q6_K:
        if (n % RT_QK_K)
            return -EINVAL;
        rt__dequant_kquant(t, p, out, n);
        return 0;
    default:
        return -EINVAL;
    }
}
