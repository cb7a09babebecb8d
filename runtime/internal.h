/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_INTERNAL_H
#define NVX_RUNTIME_INTERNAL_H
/*
 * Internals shared by the runtime's files (rt__ prefix). Not installed;
 * exported from the static library for the tests.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/bytes.h"
#include "runtime/model.h"
#include "runtime/types.h"

/* An activation block: 32 values quantized to int8 with one float scale,
 * x[i] ~= d * qs[i], qs in [-127, 127]. */
typedef struct rt__blockq8 {
    float d;
    int8_t qs[RT_QK];
} rt__blockq8;

/* An activation super-block for the K-quant kernels (ggml's Q8_K): 256
 * values x[i] ~= d * qs[i], and the sum of qs over each 32-value sub-block
 * (for the K-quant minimums). 276 bytes: fewer than the 8 rt__blockq8 of
 * the same 256 values, so a state's xq buffer holds either kind. */
typedef struct rt__blockq8k {
    float d;
    int8_t qs[RT_QK_K];
    int16_t bsums[RT_QK_K / 32];
} rt__blockq8k;

/* A matrix [rows, cols] of type F32, F16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K,
 * row-major. For the
 * block types each row holds nb = cols_pad / 32 blocks; cols_pad >= cols and
 * the weights past cols are zero (requantized rows of any width). */
typedef struct rt__mat {
    rt_type type;
    uint32_t rows, cols, cols_pad;
    size_t row_bytes;
    const uint8_t *data;
} rt__mat;

/* Float accumulators of the quantized dot products (see kernels.c), and
 * the bytes of weight rows a batched product takes at a time (about an L1
 * data cache: measured on the 110M F32 model, 6-128 KiB all beat no
 * blocking, 6 KiB least). */
enum {
    RT_DOT_LANES = 4,
    RT_ROW_BLOCK_BYTES = 32768
};

struct rt__mm;

/* One kernel set. dot_* return one row's dot product; sums_* write the
 * integer dot product of every block (for the equality tests). */
typedef struct rt__kernels {
    const char *name;
    float (*dot_f32)(const float *w, const float *x, size_t n);
    float (*dot_f16)(const uint8_t *w, const float *x, size_t n);
    /* y[i] += a * v[i] for n halves v (the F16 cache's value product):
     * one multiply and one add per element, never fused, so every set
     * gives the same bits. */
    void (*axpy_f16)(float a, const uint8_t *v, float *y, size_t n);
    float (*dot_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb);
    float (*dot_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb);
    void (*sums_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret);
    void (*sums_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret);
    /* K-quants: nb super-blocks of 256 (see kquant.c for the shared fold). */
    float (*dot_q4_k)(const uint8_t *w, const rt__blockq8k *x, size_t nb);
    float (*dot_q5_k)(const uint8_t *w, const rt__blockq8k *x, size_t nb);
    float (*dot_q6_k)(const uint8_t *w, const rt__blockq8k *x, size_t nb);
    /* Optional (NULL: one token at a time): the dot products of one row
     * with 4 tokens' activations, xq + t * xq_stride bytes for token t,
     * into out[0..3], each bit-identical to the one-token kernel's (for
     * dot4_f32: x + t * x_stride floats, n of them). The
     * row's unpacking and scales are shared by the 4 tokens: batched
     * prompts run faster. */
    void (*dot4_f32)(const float *w, const float *x, size_t x_stride, size_t n, float *out);
    void (*dot4_q8_0)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out);
    void (*dot4_q4_0)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out);
    void (*dot4_q4_k)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out);
    void (*dot4_q6_k)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out);
    /* Optional (NULL: the kernels above): a batched product's rows r0..r1
     * for every token at once, as rt__matmul_rows, each result
     * bit-identical to the one-token kernel's; the activations come
     * unsigned (rt__act_unsigned). rt__mm_tiled says when they run. */
    void (*mm_q8_0)(const struct rt__mm *a, uint32_t r0, uint32_t r1);
    void (*mm_q4_0)(const struct rt__mm *a, uint32_t r0, uint32_t r1);
    void (*mm_q4_k)(const struct rt__mm *a, uint32_t r0, uint32_t r1);
    void (*mm_q6_k)(const struct rt__mm *a, uint32_t r0, uint32_t r1);
    /* Optional: F32 rows r0..r1 for every token, each result
     * bit-identical to the same set's dot_f32 (float activations). Runs
     * for any n up to RT_BATCH_MAX, one token included: four rows read
     * at once keep more of memory's bandwidth busy than dot_f32's one
     * row (F32 generation 20% faster). */
    void (*mm_f32)(const struct rt__mm *a, uint32_t r0, uint32_t r1);
} rt__kernels;

extern const rt__kernels rt__kernels_portable;
/* The portable axpy_f16 (sets without their own reuse it). */
void rt__axpy_f16_portable(float a, const uint8_t *v, float *y, size_t n);
/* The SIMD set for this CPU, or NULL when it has none (or the build has
 * none for this architecture). */
const rt__kernels *rt__kernels_simd(void);
/* Every SIMD set this CPU can run, the one rt__kernels_simd picks first:
 * the i-th, or NULL past the last (the tests compare each with portable). */
const rt__kernels *rt__kernels_simd_all(size_t i);

/* IEEE half <-> float (round to nearest even). Inline: the F16 cache
 * converts every key and value it stores and rounds every query (4% of a
 * prompt's time as calls). */
static inline float
rt__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t
rt__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
    if (ax >= 0x477ff000) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000) { /* below the smallest normal half: subnormal or 0 */
        if (ax < 0x33000000)
            return (uint16_t)sign;
        uint32_t e = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000; /* rebias exponent 127 -> 15 */
    uint32_t q = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1)))
        q++;
    return (uint16_t)(sign | q);
}

/* lrintf(v) clamped to [-127, 127], NaN giving 0, without libm: the
 * activation quantizers round every value, and lrintf is a library call
 * on baseline x86-64 (8% of a Q4_K_M prompt's time went to it). Adding
 * then subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to
 * an integer, to nearest even, as lrintf does in the default rounding
 * mode; each step is stored to a float, so excess precision cannot skip
 * the rounding. Equal to the lrintf form (test-kquant test_round_i8). */
static inline int
rt__round_i8(float v)
{
    if (!(v == v))
        return 0;
    if (v <= -127.0f)
        return -127;
    if (v >= 127.0f)
        return 127;
    float r = v + 12582912.0f;
    r -= 12582912.0f;
    return (int)r;
}

/* Quantizes n floats into ceil(n/32) activation blocks, zero-padding the
 * last block. */
void rt__quantize_act(const float *x, size_t n, rt__blockq8 *out);

/* Quantizes n floats (zero-padded to ceil(n/32)*32) into Q8_0 / Q4_0 blocks
 * at out, round to nearest (Q4_0 as ggml: d = m / -8 where m is the value
 * of largest magnitude). */
void rt__quantize_row_q8_0(const float *x, size_t n, uint8_t *out);
void rt__quantize_row_q4_0(const float *x, size_t n, uint8_t *out);

/* Converts n values of a row of type t to floats (n a multiple of the
 * block for block types). */
void rt__dequant_row(rt_type t, const uint8_t *in, float *out, size_t n);

/* ---- K-quants (kquant.c) ---- */

/* Scale and min (6 bits each) of sub-block j (0..7) from the 12 packed
 * bytes s of a Q4_K / Q5_K super-block: bytes 0-3 hold the low 6 bits of
 * scales 0-3 (top 2 bits: high bits of scales 4-7), bytes 4-7 the same
 * for mins, bytes 8-11 the low 4 bits of scale (low nibble) and min (high
 * nibble) 4-7. Inline: the kernels call it per sub-block. */
static inline void
rt__kq_scale_min(const uint8_t *s, unsigned j, uint8_t *ret_sc, uint8_t *ret_m)
{
    if (j < 4) {
        *ret_sc = s[j] & 63;
        *ret_m = s[j + 4] & 63;
    } else {
        *ret_sc = (uint8_t)((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4);
        *ret_m = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

/* All 8 scales and mins at once (rt__kq_scale_min for j = 0..7), from the
 * 12 bytes read as three little-endian words: 16 shifts and masks per
 * super-block instead of 8 calls' byte arithmetic. */
static inline void
rt__kq_scales(const uint8_t *s, uint8_t sc[8], uint8_t m[8])
{
    uint32_t u0 = le32_load(s), u1 = le32_load(s + 4), u2 = le32_load(s + 8);
    uint32_t lo_sc = u0 & 0x3f3f3f3fu, lo_m = u1 & 0x3f3f3f3fu;
    uint32_t hi_sc = (u2 & 0x0f0f0f0fu) | ((u0 >> 6) & 0x03030303u) << 4;
    uint32_t hi_m = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 6) & 0x03030303u) << 4;
    for (unsigned k = 0; k < 4; k++) {
        sc[k] = (uint8_t)(lo_sc >> (8 * k));
        sc[k + 4] = (uint8_t)(hi_sc >> (8 * k));
        m[k] = (uint8_t)(lo_m >> (8 * k));
        m[k + 4] = (uint8_t)(hi_m >> (8 * k));
    }
}

/* acc + d * dx * sumi - dmin * dx * summ, in that order: the float step
 * every K-quant kernel set shares (bit-exactness). d and dmin are the
 * super-block's fp16 scales as floats (every set converts them exactly,
 * by hardware or not). Inline: once per super-block and row. */
static inline float
rt__kq_fold(float acc, float dx, float d, float dmin, int32_t sumi, int32_t summ)
{
    acc += (d * dx) * (float)sumi;
    acc -= (dmin * dx) * (float)summ;
    return acc;
}

/* Dequantizes n (a multiple of 256) weights of a Q4_K, Q5_K or Q6_K row. */
void rt__dequant_kquant(rt_type t, const uint8_t *in, float *out, size_t n);

/* Quantizes n (a multiple of 256) floats into n / 256 Q8_K blocks. */
void rt__quantize_act_k(const float *x, size_t n, rt__blockq8k *out);

/* The portable K-quant kernels (the SIMD sets may reuse them). */
float rt__dot_q4_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb);
float rt__dot_q5_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb);
float rt__dot_q6_k_portable(const uint8_t *w, const rt__blockq8k *x, size_t nb);

/* True for the types whose activations are Q8_K blocks. */
static inline bool
rt__is_kquant(rt_type t)
{
    return t == RT_TYPE_Q4_K || t == RT_TYPE_Q5_K || t == RT_TYPE_Q6_K;
}

/* out[r] = W[r, :] . x for every row; xq holds x quantized (only read for
 * block types): rt__blockq8 blocks for Q8_0 / Q4_0, rt__blockq8k for the
 * K-quants. */
void rt__matvec(const rt__kernels *k, const rt__mat *w, const float *x, const void *xq, float *out);

/* A matrix times n activation vectors (a batch of tokens): token t's
 * input is x + t * x_stride floats (and, quantized as for rt__matvec,
 * xq + t * xq_stride bytes), its output out + t * out_stride floats. */
typedef struct rt__mm {
    const rt__kernels *k;
    const rt__mat *w;
    const float *x;
    size_t x_stride;
    const void *xq;
    size_t xq_stride;
    float *out;
    size_t out_stride;
    size_t n;
} rt__mm;

/* out[t][r] = W[r, :] . x_t for the rows r0 <= r < r1 and every token t,
 * with the very kernel call rt__matvec makes per row: each result is
 * bit-identical to the one-token product. Rows split between threads give
 * the same results as one thread. */
void rt__matmul_rows(const rt__mm *a, uint32_t r0, uint32_t r1);

/* Batches of at least this many tokens (and at most RT_BATCH_MAX) run a
 * set's tile kernels: below it, repacking the rows costs more than the
 * one-row kernels lose. */
enum {
    RT_TILE_MIN_TOKENS = 4
};

/* True when rt__matmul_rows of n tokens over a matrix of type t runs a
 * tile kernel of k, which takes its activations unsigned (block types;
 * F32's takes the floats, and any n from 1). */
bool rt__mm_tiled(const rt__kernels *k, rt_type t, size_t n);

/* Turns nb quantized activation blocks (rt__blockq8, or rt__blockq8k
 * when kq) at xq into the tile kernels' unsigned form: each qs byte q
 * becomes q + 128 (the K-quant bsums stay the signed sums). */
void rt__act_unsigned(void *xq, size_t nb, bool kq);

/* Bytes of one GGUF scalar of value type t (rt_gguf_vtype), or 0 for a
 * string, an array or an unknown type (gguf.c; the writer shares it). */
unsigned rt__gguf_scalar_size(uint32_t t);

/* Reads general.architecture and the "{arch}.*" hyper-parameters into c
 * (arch, rope_neox, dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * model_seq_len, norm_eps and rope_theta when present), refusing unknown
 * architectures, head counts that do not divide, and RoPE scaling (arch.c).
 * Returns 0, or -EBADMSG with a one-line reason in why[0..cap) naming the
 * key. */
int rt__arch_config(const rt_gguf *g, rt_config *c, char *why, size_t cap);

/* ---- the engine's files (model.c builds, model-forward.c runs) ---- */

/* One transformer layer's weights. */
typedef struct rt_layer {
    const float *attn_norm, *ffn_norm; /* [dim] */
    const float *bq, *bk, *bv;         /* [dim], [kv_dim]: qwen2's biases, else NULL */
    rt__mat wq, wk, wv, wo;            /* [dim|kv_dim, dim] */
    rt__mat w1, w2, w3;                /* gate [hidden, dim], down [dim, hidden], up */
} rt_layer;

/* rt_state and rt_model (opaque in model.h); all pointers into the arena. */
struct rt_state {
    const rt_model *m;
    uint32_t seq_len; /* positions the KV cache holds */
    rt_kv_type kv_type;
    size_t kv_dim;
    float *x, *xb, *xb2, *q, *hb, *hb2, *att, *logits;
    rt__blockq8 *xq;
    float *kc, *vc;         /* f32 cache [layers][seq][kv_dim] */
    int8_t *kq, *vq;        /* int8 cache */
    uint8_t *kh, *vh;       /* f16 cache, little-endian halves */
    float *ks, *vs;         /* int8 scales [layers][seq][n_kv_heads] */
    const rt_parallel *par; /* borrowed, or NULL: matrix products in the caller */
};

struct rt_model {
    rt_config cfg;
    rt_arena_report rep;
    const rt__kernels *k;
    rt__mat tok_embd, output;
    const float *output_norm;
    rt_layer *layers;
    rt_state st; /* the state rt_forward uses */
};

/* ---- the quantizer's files (quantize.c, quantize-model.c, quantize-awq.c) ---- */

/* A tensor of a model being converted, held as F32. */
typedef struct rt__qtensor {
    char name[RT_TENSOR_NAME_MAX + 1];
    uint32_t n_dims;
    uint64_t dims[RT_TENSOR_DIMS_MAX]; /* dims[0] = row length */
    float *w;                          /* owned, prod(dims) floats */
    float *imp;                        /* owned or NULL: per-column importance [dims[0]] */
    uint8_t *q4;                       /* owned or NULL: Q4_0 blocks made by GPTQ */
} rt__qtensor;

/* A llama model held as F32 arrays while it is converted. */
typedef struct rt__qmodel {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float eps, rope_base;
    bool llama;     /* architecture llama (the activation-aware pass needs it) */
    rt__qtensor *t; /* in output order */
    size_t n_t;
} rt__qmodel;

/* The tensor called name, or NULL; points into m->t. */
rt__qtensor *rt__qmodel_find(rt__qmodel *m, const char *name);

/* The activation-aware pass (quantize-awq.c): calibrates m on n_tokens
 * positions it samples itself (seed), folds channel scales into m's
 * weights and leaves Q4_0 blocks in each matrix's q4 (and importances in
 * imp). Returns 0, -EBADMSG (a model it cannot calibrate), -ENOMEM. */
int rt__quant_awq(rt__qmodel *m, uint64_t seed, uint32_t n_tokens);

/* Q4_0 code of v = x / d + 8: floor(v + 0.5) clamped to 0..15 (NaN gives
 * 0), as ggml's reference quantizer. Inline and without floorf (a libm
 * call on baseline x86-64): the Q4_0 scale search calls it ~3,200 times
 * per block. Equal to the floorf form for every float (checked). */
static inline uint8_t
rt__quant_code4(float v)
{
    float u = v + 0.5f;
    if (!(u >= 0.0f)) /* also NaN */
        return 0;
    if (u >= 15.0f)
        return 15;
    return (uint8_t)(int)u; /* truncation = floor for u >= 0 */
}

/* Packs 32 codes 0..15 into 16 bytes: byte j holds q[j] (low nibble) and
 * q[j + 16] (high). */
void rt__quant_pack_q4(uint8_t *qs, const uint8_t *q);

#endif
