/* SPDX-License-Identifier: MIT */
/*
 * K-quant row quantizers (Q4_K, Q5_K, Q6_K; layouts in types.h), written
 * from the block format: what the engine's decoder (kquant.c) reads back is
 * what these pack, and the tests check that round trip.
 *
 * Each super-block of 256 weights is fitted in two levels. First every
 * sub-block gets its own float scale (and, for Q4_K/Q5_K, offset) by a
 * small search: a few candidate grids spanning the sub-block's range,
 * each followed by a weighted least-squares refit of scale and offset for
 * the codes it produced, the one with the smallest weighted error kept.
 * The weights favour large-magnitude values (w = |x| + rms of the
 * super-block): errors there move the dot products most. Then the
 * sub-block scales are themselves quantized (6 bits for Q4_K/Q5_K, 8 for
 * Q6_K) against one fp16 super-scale, and the codes are recomputed with
 * the scales as stored, so the decoder sees exactly the grid the codes
 * were rounded to.
 */
#include <math.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/quantize.h"

enum {
    SUB45 = 32,   /* weights per Q4_K / Q5_K sub-block */
    SUB6 = 16,    /* weights per Q6_K sub-block */
    N_GRIDS = 21, /* candidate grids tried per Q4_K/Q5_K sub-block */
    N_GRIDS6 = 7, /* per Q6_K sub-block: 64 levels leave less to win */
};

/* Codes as floats, clamped then rounded half up with a truncating
 * conversion: branch-free so the compiler can vectorize the search loops
 * (lrintf/floorf are libm calls on baseline x86-64, and the search rounds
 * each weight about 40 times). Inputs are finite: the model loader
 * refuses NaN and Inf weights. */
static inline float
code_u(float v, float nmax)
{
    v = v < 0.0f ? 0.0f : v;
    v = v > nmax ? nmax : v;
    return (float)(int)(v + 0.5f);
}

/* Signed code in [-32, 31] (Q6_K). */
static inline float
code_s(float v)
{
    return code_u(v + 32.0f, 63.0f) - 32.0f;
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* fp16 round trip: the value the decoder will read. */
static float
as_stored(float v)
{
    return rt__f16_to_f32(rt__f32_to_f16(v));
}

/* Importance of each weight of one super-block (see the file comment). */
static void
weights(const float *x, float *w)
{
    float s2 = 0.0f;
    for (int i = 0; i < RT_QK_K; i++)
        s2 += x[i] * x[i];
    float rms = sqrtf(s2 / RT_QK_K);
    for (int i = 0; i < RT_QK_K; i++)
        w[i] = rms + fabsf(x[i]);
}

/* Weighted squared error of x ~ s * q + b, q = clamp(round((x - b) / s)). */
static float
affine_err(const float *x, const float *w, int n, int nmax, float s, float b)
{
    float is = 1.0f / s, e = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = s * code_u((x[i] - b) * is, (float)nmax) + b - x[i];
        e += w[i] * d * d;
    }
    return e;
}

/* Fits x[0..n) ~ s * q - m with codes q in [0, nmax], s >= 0 and m >= 0
 * (the format subtracts a non-negative minimum). */
static void
fit_affine(const float *x, const float *w, int n, int nmax, float *ret_s, float *ret_m)
{
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    lo = fminf(lo, 0.0f);
    if (!(hi > lo)) { /* all zero (or all equal to a negative lo) */
        *ret_s = 0.0f;
        *ret_m = -lo;
        return;
    }
    float best_s = (hi - lo) / (float)nmax, best_b = lo;
    float best = affine_err(x, w, n, nmax, best_s, best_b);
    for (int k = 0; k < N_GRIDS; k++) {
        /* Grids a little finer and a little coarser than the range needs:
         * clipping the extremes can pay off for the bulk. */
        float s = (hi - lo) / ((float)nmax + 0.1f * (float)(k - N_GRIDS / 2));
        float is = 1.0f / s, sw = 0, swq = 0, swqq = 0, swx = 0, swqx = 0;
        for (int i = 0; i < n; i++) {
            float q = code_u((x[i] - lo) * is, (float)nmax);
            sw += w[i];
            swq += w[i] * q;
            swqq += w[i] * q * q;
            swx += w[i] * x[i];
            swqx += w[i] * q * x[i];
        }
        /* Least squares for s and b with these codes; b must stay <= 0. */
        /* In double: det is a difference of near-equal products. */
        double det = (double)sw * swqq - (double)swq * swq, s2 = 0, b2 = 0;
        if (det > 0) {
            s2 = ((double)sw * swqx - (double)swq * swx) / det;
            b2 = ((double)swqq * swx - (double)swq * swqx) / det;
        }
        if (b2 > 0 && swqq > 0) {
            b2 = 0;
            s2 = (double)swqx / swqq;
        }
        if (!(s2 > 0))
            continue;
        float e = affine_err(x, w, n, nmax, (float)s2, (float)b2);
        if (e < best) {
            best = e;
            best_s = (float)s2;
            best_b = (float)b2;
        }
    }
    *ret_s = best_s;
    *ret_m = -best_b;
}

/* Packs the 8 (scale, min) pairs of 6 bits as rt__kq_scale_min reads them. */
static void
pack_scale_min(uint8_t s[12], const uint8_t *sc, const uint8_t *m)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* One Q4_K (nmax 15) or Q5_K (nmax 31) super-block: header (d, dmin,
 * scales) at out, codes (0..nmax) to q. */
static void
quant_block45(const float *x, int nmax, uint8_t *out, uint8_t q[RT_QK_K])
{
    float w[RT_QK_K], s[8], m[8], smax = 0.0f, mmax = 0.0f;
    weights(x, w);
    for (int j = 0; j < 8; j++) {
        fit_affine(x + SUB45 * j, w + SUB45 * j, SUB45, nmax, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    float d = as_stored(smax / 63.0f), dmin = as_stored(mmax / 63.0f);
    uint8_t sc[8], mc[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0.0f ? code_u(s[j] / d, 63.0f) : 0.0f);
        mc[j] = (uint8_t)(dmin > 0.0f ? code_u(m[j] / dmin, 63.0f) : 0.0f);
    }
    put16(out, rt__f32_to_f16(d));
    put16(out + 2, rt__f32_to_f16(dmin));
    pack_scale_min(out + 4, sc, mc);
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)mc[j];
        float ids = ds > 0.0f ? 1.0f / ds : 0.0f;
        for (int i = 0; i < SUB45; i++)
            q[SUB45 * j + i] = (uint8_t)code_u((x[SUB45 * j + i] + dm) * ids, (float)nmax);
    }
}

/* Low nibbles: bytes 32c..32c+31 hold weights 64c+l (low) and 64c+32+l. */
static void
pack_nibbles(uint8_t *qs, const uint8_t q[RT_QK_K])
{
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4);
}

void
rt_quant_row_q4_k(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK_K; b++, x += RT_QK_K, out += RT_Q4_K_BYTES) {
        uint8_t q[RT_QK_K];
        quant_block45(x, 15, out, q);
        pack_nibbles(out + 16, q);
    }
}

void
rt_quant_row_q5_k(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK_K; b++, x += RT_QK_K, out += RT_Q5_K_BYTES) {
        uint8_t q[RT_QK_K];
        quant_block45(x, 31, out, q);
        /* qh: bit c of byte l is bit 4 of weight 32c + l. */
        memset(out + 16, 0, 32);
        for (int e = 0; e < RT_QK_K; e++)
            out[16 + e % 32] = (uint8_t)(out[16 + e % 32] | ((q[e] >> 4) & 1) << (e / 32));
        pack_nibbles(out + 48, q);
    }
}

/* Weighted squared error of x ~ s * q, q = clamp(round(x / s), -32, 31). */
static float
sym_err(const float *x, const float *w, float s)
{
    float is = 1.0f / s, e = 0.0f;
    for (int i = 0; i < SUB6; i++) {
        float d = s * code_s(x[i] * is) - x[i];
        e += w[i] * d * d;
    }
    return e;
}

/* Fits x[0..16) ~ s * q, q in [-32, 31]; s may be negative (then the
 * largest magnitude can take the -32 end whatever its sign). */
static float
fit_sym(const float *x, const float *w)
{
    float amax = 0.0f, ext = 0.0f;
    for (int i = 0; i < SUB6; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            ext = x[i];
        }
    if (!(amax > 0.0f))
        return 0.0f;
    float best_s = ext / -32.0f, best = sym_err(x, w, best_s);
    for (int k = 0; k < N_GRIDS6; k++) {
        float s = ext / (-32.0f + 0.25f * (float)(k - N_GRIDS6 / 2));
        float is = 1.0f / s, swqx = 0.0f, swqq = 0.0f;
        for (int i = 0; i < SUB6; i++) {
            float q = code_s(x[i] * is);
            swqx += w[i] * q * x[i];
            swqq += w[i] * q * q;
        }
        if (!(swqq > 0.0f))
            continue;
        float s2 = swqx / swqq;
        if (s2 == 0.0f)
            continue;
        float e = sym_err(x, w, s2);
        if (e < best) {
            best = e;
            best_s = s2;
        }
    }
    return best_s;
}

void
rt_quant_row_q6_k(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK_K; b++, x += RT_QK_K, out += RT_Q6_K_BYTES) {
        float w[RT_QK_K], s[16], amax = 0.0f;
        weights(x, w);
        for (int j = 0; j < 16; j++) {
            s[j] = fit_sym(x + SUB6 * j, w + SUB6 * j);
            amax = fmaxf(amax, fabsf(s[j]));
        }
        float d = as_stored(amax / 127.0f);
        uint8_t *ql = out, *qh = out + 128;
        int8_t *sc = (int8_t *)(void *)(out + 192);
        memset(out, 0, 192);
        for (int j = 0; j < 16; j++)
            sc[j] = (int8_t)(d > 0.0f ? code_u(s[j] / d + 127.0f, 254.0f) - 127.0f : 0.0f);
        put16(out + 208, rt__f32_to_f16(d));
        for (int e = 0; e < RT_QK_K; e++) {
            float ds = d * (float)sc[e / SUB6];
            unsigned u = (unsigned)(ds != 0.0f ? code_s(x[e] / ds) + 32.0f : 32.0f),
                     h = (unsigned)e / 128, t = ((unsigned)e % 128) / 32, l = (unsigned)e % 32;
            /* Weight 128h + 32t + l: a nibble of ql[64h + 32(t & 1) + l]
             * (low for t < 2) and bits 2t, 2t+1 of qh[32h + l]. */
            ql[64 * h + 32 * (t & 1) + l] |= (uint8_t)((u & 15) << (t < 2 ? 0 : 4));
            qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * t));
        }
    }
}
