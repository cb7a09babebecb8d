/* SPDX-License-Identifier: MIT */
/*
 * Portable kernels and quantizers (the half-float conversions are inline
 * in internal.h). The SIMD files (kernels-x86.c, kernels-arm.c) must give
 * the same integer block sums as these and do the float accumulation over
 * blocks in the same order.
 */
#include <math.h>
#include <string.h>

#include "runtime/internal.h"

void
rt__quantize_act(const float *x, size_t n, rt__blockq8 *out)
{
    size_t nb = (n + RT_QK - 1) / RT_QK;
    for (size_t b = 0; b < nb; b++) {
        size_t base = b * RT_QK, m = n - base < RT_QK ? n - base : RT_QK;
        float amax = 0.0f;
        for (size_t i = 0; i < m; i++) {
            /* fmaxf's result (NaN skipped), inline: the libm call was a
             * third of this function's time in prompts. */
            float v = fabsf(x[base + i]);
            amax = v > amax ? v : amax;
        }
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (size_t i = 0; i < RT_QK; i++)
            out[b].qs[i] = (int8_t)(i < m ? rt__round_i8(x[base + i] * id) : 0);
    }
}

void
rt__quantize_row_q8_0(const float *x, size_t n, uint8_t *out)
{
    size_t nb = (n + RT_QK - 1) / RT_QK;
    for (size_t b = 0; b < nb; b++, out += RT_Q8_0_BYTES) {
        size_t base = b * RT_QK, m = n - base < RT_QK ? n - base : RT_QK;
        float amax = 0.0f;
        for (size_t i = 0; i < m; i++)
            amax = fmaxf(amax, fabsf(x[base + i]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = rt__f32_to_f16(d);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        for (size_t i = 0; i < RT_QK; i++)
            out[2 + i] = (uint8_t)(int8_t)(i < m ? rt__round_i8(x[base + i] * id) : 0);
    }
}

void
rt__quantize_row_q4_0(const float *x, size_t n, uint8_t *out)
{
    size_t nb = (n + RT_QK - 1) / RT_QK;
    for (size_t b = 0; b < nb; b++, out += RT_Q4_0_BYTES) {
        size_t base = b * RT_QK, m = n - base < RT_QK ? n - base : RT_QK;
        float v[RT_QK] = { 0 }, amax = 0.0f, max = 0.0f;
        for (size_t i = 0; i < m; i++) {
            v[i] = x[base + i];
            if (fabsf(v[i]) > amax) {
                amax = fabsf(v[i]);
                max = v[i];
            }
        }
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t h = rt__f32_to_f16(d);
        out[0] = (uint8_t)h;
        out[1] = (uint8_t)(h >> 8);
        for (size_t j = 0; j < RT_QK / 2; j++) {
            /* Zero padding quantizes to 8, which decodes to exactly 0. */
            /* As ggml: truncate x/d + 8.5 (x/d is in [-8, 8]), clamp to 15. */
            float f0 = v[j] * id + 8.5f, f1 = v[j + 16] * id + 8.5f;
            int q0 = f0 >= 0.0f && f0 < 15.0f ? (int)f0 : f0 >= 15.0f ? 15 : 0;
            int q1 = f1 >= 0.0f && f1 < 15.0f ? (int)f1 : f1 >= 15.0f ? 15 : 0;
            out[2 + j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void
rt__dequant_row(rt_type t, const uint8_t *in, float *out, size_t n)
{
    switch (t) {
    case RT_TYPE_F32:
        memcpy(out, in, n * 4);
        break;
    case RT_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = rt__f16_to_f32(le16_load(in + 2 * i));
        break;
    case RT_TYPE_Q8_0:
        for (size_t b = 0; b < n / RT_QK; b++, in += RT_Q8_0_BYTES) {
            float d = rt__f16_to_f32(le16_load(in));
            for (size_t i = 0; i < RT_QK; i++)
                out[b * RT_QK + i] = d * (float)(int8_t)in[2 + i];
        }
        break;
    case RT_TYPE_Q4_0:
        for (size_t b = 0; b < n / RT_QK; b++, in += RT_Q4_0_BYTES) {
            float d = rt__f16_to_f32(le16_load(in));
            for (size_t j = 0; j < RT_QK / 2; j++) {
                out[b * RT_QK + j] = d * (float)((in[2 + j] & 0xf) - 8);
                out[b * RT_QK + j + 16] = d * (float)((in[2 + j] >> 4) - 8);
            }
        }
        break;
    case RT_TYPE_Q4_K:
    case RT_TYPE_Q5_K:
    case RT_TYPE_Q6_K:
        rt__dequant_kquant(t, in, out, n);
        break;
    default:
        break;
    }
}

static float
dot_f32(const float *w, const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += w[i] * x[i];
    return s;
}

static float
dot_f16(const uint8_t *w, const float *x, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += rt__f16_to_f32(le16_load(w + 2 * i)) * x[i];
    return s;
}

void
rt__axpy_f16_portable(float a, const uint8_t *v, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * rt__f16_to_f32(le16_load(v + 2 * i));
}

static void
sums_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES) {
        int32_t s = 0;
        for (size_t i = 0; i < RT_QK; i++)
            s += (int32_t)(int8_t)w[2 + i] * x[b].qs[i];
        ret[b] = s;
    }
}

static void
sums_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES) {
        int32_t s = 0;
        for (size_t j = 0; j < RT_QK / 2; j++) {
            s += ((w[2 + j] & 0xf) - 8) * x[b].qs[j];
            s += ((w[2 + j] >> 4) - 8) * x[b].qs[j + 16];
        }
        ret[b] = s;
    }
}

/* The float part shared by every kernel set: block b adds
 * (float)sum_b * (d_w * d_x) to lane b % 4 (RT_DOT_LANES), and the result is
 * (lane0 + lane1) + (lane2 + lane3). Four lanes let SIMD code do the float
 * work four blocks at a time with the very same IEEE operations, so every
 * kernel set gives bit-identical results. */
static float
dot_q8_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    float acc[RT_DOT_LANES] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES) {
        int32_t si = 0;
        for (size_t i = 0; i < RT_QK; i++)
            si += (int32_t)(int8_t)w[2 + i] * x[b].qs[i];
        acc[b % RT_DOT_LANES] += (float)si * (rt__f16_to_f32(le16_load(w)) * x[b].d);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

static float
dot_q4_0(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    float acc[RT_DOT_LANES] = { 0 };
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES) {
        int32_t si = 0;
        for (size_t j = 0; j < RT_QK / 2; j++) {
            si += ((w[2 + j] & 0xf) - 8) * x[b].qs[j];
            si += ((w[2 + j] >> 4) - 8) * x[b].qs[j + 16];
        }
        acc[b % RT_DOT_LANES] += (float)si * (rt__f16_to_f32(le16_load(w)) * x[b].d);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

const rt__kernels rt__kernels_portable = {
    .name = "portable",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .axpy_f16 = rt__axpy_f16_portable,
    .dot_q8_0 = dot_q8_0,
    .dot_q4_0 = dot_q4_0,
    .sums_q8_0 = sums_q8_0,
    .sums_q4_0 = sums_q4_0,
    .dot_q4_k = rt__dot_q4_k_portable,
    .dot_q5_k = rt__dot_q5_k_portable,
    .dot_q6_k = rt__dot_q6_k_portable,
};

/* Every (row, token) pair of rows r0..r1 meets one kernel call, DOT, with
 * row and in (token t's input, IN) set; where the set has a 4-token kernel
 * (HAVE4), DOT4 takes the tokens 4 at a time into o[4] (same results: the
 * kernels promise it). The type switch stays outside the loops.
 * Cache blocking: rows go in blocks of about RT_ROW_BLOCK_BYTES, and each
 * block meets every token tile before the next block starts. A block is
 * fetched from memory once per batch and stays in cache while the tiles
 * pass; a tile's inputs stay in L1 while the block's rows pass. (Rows
 * outer, tokens inner read every token's input once per row: for F32 a
 * 32-token batch is 96 KiB, past L1, and the products waited on L2; F32
 * prompts ran 25-35% slower.) The order of the calls changes nothing in
 * their results. */
#define EACH_ROW_TOKEN(IN, HAVE4, DOT4, DOT)                             \
    for (uint32_t rb = r0; rb < r1; rb += blk) {                         \
        uint32_t re = r1 - rb < blk ? r1 : rb + blk;                     \
        size_t t = 0;                                                    \
        for (; (HAVE4) && t + 4 <= a->n; t += 4)                         \
            for (uint32_t r = rb; r < re; r++) {                         \
                const uint8_t *row = w->data + (size_t)r * w->row_bytes; \
                float o[4];                                              \
                (void)row;                                               \
                DOT4;                                                    \
                for (size_t j = 0; j < 4; j++)                           \
                    a->out[(t + j) * a->out_stride + r] = o[j];          \
            }                                                            \
        for (; t < a->n; t++)                                            \
            for (uint32_t r = rb; r < re; r++) {                         \
                const uint8_t *row = w->data + (size_t)r * w->row_bytes; \
                const void *in = (IN);                                   \
                a->out[t * a->out_stride + r] = (DOT);                   \
            }                                                            \
    }
#define FLOAT_IN (a->x + t * a->x_stride)
#define QUANT_IN (xq + t * a->xq_stride)
/* DOT4 of a block type's 4-token kernel K4 over NB blocks. */
#define Q4CALL(K4, NB) K4(row, QUANT_IN, a->xq_stride, NB, o)

typedef void (*tile_fn)(const rt__mm *a, uint32_t r0, uint32_t r1);

static tile_fn
tile_of(const rt__kernels *k, rt_type t, size_t n)
{
    if (t == RT_TYPE_F32 && n <= RT_BATCH_MAX) /* no repacking: worth it from one token */
        return k->mm_f32;
    if (n < RT_TILE_MIN_TOKENS || n > RT_BATCH_MAX)
        return NULL;
    switch (t) {
    case RT_TYPE_Q8_0:
        return k->mm_q8_0;
    case RT_TYPE_Q4_0:
        return k->mm_q4_0;
    case RT_TYPE_Q4_K:
        return k->mm_q4_k;
    case RT_TYPE_Q6_K:
        return k->mm_q6_k;
    default:
        return NULL;
    }
}

bool
rt__mm_tiled(const rt__kernels *k, rt_type t, size_t n)
{
    return tile_of(k, t, n) != NULL;
}

void
rt__act_unsigned(void *xq, size_t nb, bool kq)
{
    for (size_t b = 0; b < nb; b++) {
        int8_t *qs = kq ? ((rt__blockq8k *)xq)[b].qs : ((rt__blockq8 *)xq)[b].qs;
        size_t len = kq ? RT_QK_K : RT_QK;
        for (size_t i = 0; i < len; i++)
            qs[i] = (int8_t)((uint8_t)qs[i] ^ 0x80u);
    }
}

void
rt__matmul_rows(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    const rt__mat *w = a->w;
    const rt__kernels *k = a->k;
    tile_fn tile = tile_of(k, w->type, a->n);
    if (tile) {
        tile(a, r0, r1);
        return;
    }
    const uint8_t *xq = a->xq;
    size_t nb = w->cols_pad / RT_QK, nbk = w->cols_pad / RT_QK_K;
    size_t blk_rows = w->row_bytes ? RT_ROW_BLOCK_BYTES / w->row_bytes : 1;
    uint32_t blk = a->n == 1 ? r1 - r0 : blk_rows > 1 ? (uint32_t)blk_rows : 1;
    switch (w->type) {
    case RT_TYPE_F32:
        EACH_ROW_TOKEN(
            FLOAT_IN, k->dot4_f32,
            k->dot4_f32((const float *)(const void *)row, FLOAT_IN, a->x_stride, w->cols, o),
            k->dot_f32((const float *)(const void *)row, in, w->cols));
        break;
    case RT_TYPE_F16:
        EACH_ROW_TOKEN(FLOAT_IN, false, (void)o, k->dot_f16(row, in, w->cols));
        break;
    case RT_TYPE_Q8_0:
        EACH_ROW_TOKEN(QUANT_IN, k->dot4_q8_0, Q4CALL(k->dot4_q8_0, nb), k->dot_q8_0(row, in, nb));
        break;
    case RT_TYPE_Q4_0:
        EACH_ROW_TOKEN(QUANT_IN, k->dot4_q4_0, Q4CALL(k->dot4_q4_0, nb), k->dot_q4_0(row, in, nb));
        break;
    case RT_TYPE_Q4_K:
        EACH_ROW_TOKEN(QUANT_IN, k->dot4_q4_k, Q4CALL(k->dot4_q4_k, nbk),
                       k->dot_q4_k(row, in, nbk));
        break;
    case RT_TYPE_Q5_K:
        EACH_ROW_TOKEN(QUANT_IN, false, (void)o, k->dot_q5_k(row, in, nbk));
        break;
    case RT_TYPE_Q6_K:
        EACH_ROW_TOKEN(QUANT_IN, k->dot4_q6_k, Q4CALL(k->dot4_q6_k, nbk),
                       k->dot_q6_k(row, in, nbk));
        break;
    default:
        break;
    }
}
#undef EACH_ROW_TOKEN
#undef FLOAT_IN
#undef QUANT_IN
#undef Q4CALL

void
rt__matvec(const rt__kernels *k, const rt__mat *w, const float *x, const void *xq, float *out)
{
    rt__mm a = { .k = k, .w = w, .x = x, .xq = xq, .out = out, .n = 1 };
    rt__matmul_rows(&a, 0, w->rows);
}

#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))) && !defined(__aarch64__)
const rt__kernels *
rt__kernels_simd(void)
{
    return NULL;
}

const rt__kernels *
rt__kernels_simd_all(size_t i)
{
    (void)i;
    return NULL;
}
#endif
