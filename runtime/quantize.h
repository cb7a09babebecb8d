/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_QUANTIZE_H
#define NVX_RUNTIME_QUANTIZE_H
/*
 * Weight quantization to GGUF's Q8_0 and Q4_0 blocks (layouts in
 * runtime/types.h) and whole-model conversion to a GGUF file.
 *
 * Row quantizers (n a multiple of RT_QK = 32):
 *   Q8_0 round-to-nearest: d = max|x| / 127, q = round(x / d).
 *   Q4_0 round-to-nearest: m = the x of largest magnitude (sign kept),
 *        d = m / -8, q = clamp(round(x / d) + 8, 0, 15); so the extreme
 *        weight is exact and the grid is [-8, 7] * d.
 *   Q4_0 search: per block, tries scales d = m / k for a range of k around
 *        -8 (and +8), rounds with each, refits d by weighted least squares
 *        and keeps the one with the smallest sum of imp[j] * (x - d*(q-8))^2.
 *        imp (per column, may be NULL = all 1) is the mean squared input
 *        activation of that column, so errors where activations are large
 *        count more. Reads and writes the same block format.
 *
 * Model conversion (rt_quant_model) reads a llama2.c checkpoint or a GGUF
 * file of an architecture the engine runs (llama, qwen2, phi3) and writes a
 * GGUF of the same architecture and metadata. Input tensors may be F32, F16
 * or already quantized (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: decoded to floats
 * first, so the output carries both roundings; llama.cpp asks for
 * --allow-requantize there). 2-D weight matrices become the target type
 * when their rows are a multiple of 32, otherwise F16 (e.g. ffn_down of
 * aidreams260K, rows of 172); 1-D tensors (norms, biases) stay F32. For
 * Q4_0 the output classifier is Q8_0 (a shared classifier is then written
 * as its own output.weight). The K-quant targets are llama-quantize's
 * mixtures (the rule is at pick_type in quantize-model.c): Q4_K_M and
 * Q5_K_M give the output matrix, and attn_v and ffn_down in about 40% of
 * the layers, Q6_K; Q6_K gives every matrix Q6_K. With awq, the
 * model is first calibrated (see below), then channel scales s are chosen
 * per matrix group and folded into the preceding weights, so the file
 * stays standard Q4_0 and every reader benefits:
 *   attn_norm  <- / s   for wq, wk, wv columns * s
 *   ffn_norm   <- / s   for w1 (gate), w3 (up) columns * s
 *   wv rows    <- / s   for wo columns * s   (attention is linear in v)
 *   w3 rows    <- / s   for w2 columns * s   (silu(w1 x) * (w3 x) is linear
 *                                             in w3 x; w2 usually stays F16)
 * with s_j = mean|x_j|^alpha, alpha searched on a grid to minimise the
 * output error on the calibration activations. Each matrix is then
 * quantized GPTQ-style: column by column, every rounding error pushed onto
 * the columns not yet quantized through the inverse Hessian of the
 * (scaled) inputs (damping 0.1% of its mean diagonal), each block's scale
 * chosen by the importance-weighted search when its first column comes up.
 * Matrices with inputs wider than 1,024 skip that step (O(n^3)) and use
 * the search alone. On aidreams260K this lowers the mean KL divergence
 * against F32 by about a third relative to round-to-nearest Q4_0
 * (tests/bench/bench-quality).
 * Calibration: the F32 model itself samples RT_QUANT_CALIB_TOKENS tokens at
 * temperature 1 (seed opts->seed) from BOS, and the inputs of every matrix
 * are recorded while it runs (a plain F32 forward pass inside this module).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/gguf-write.h"
#include "runtime/tokenizer.h"
#include "runtime/types.h"

enum {
    RT_QUANT_CALIB_TOKENS = 4096, /* calibration positions for --awq */
};

/* IEEE half <-> float, round to nearest even; NaN/Inf kept. */
uint16_t rt_quant_f16(float f);
float rt_quant_f32(uint16_t h);

/* Quantize n floats (n % 32 == 0) into n/32 blocks at out. */
void rt_quant_row_q8_0(const float *x, uint8_t *out, size_t n);
void rt_quant_row_q4_0(const float *x, uint8_t *out, size_t n);
/* imp: n importance weights (>= 0) or NULL. */
void rt_quant_row_q4_0_search(const float *x, const float *imp, uint8_t *out, size_t n);

/* K-quant rows (n % 256 == 0) into n/256 super-blocks at out, fitted as
 * quantize-k.c describes: per sub-block a searched, least-squares scale
 * (and minimum), the sub-block scales then quantized against one fp16
 * super-scale (6 bits for Q4_K/Q5_K, int8 for Q6_K). */
void rt_quant_row_q4_k(const float *x, uint8_t *out, size_t n);
void rt_quant_row_q5_k(const float *x, uint8_t *out, size_t n);
void rt_quant_row_q6_k(const float *x, uint8_t *out, size_t n);

/* Converts one row of n values of type t (F32, F16, Q8_0, Q4_0, Q4_K, Q5_K,
 * Q6_K) to floats. Returns 0 or -EINVAL (other type, or n not a multiple
 * of the block). */
int rt_quant_dequant_row(rt_type t, const void *in, float *out, size_t n);

typedef enum rt_quant_method {
    RT_QUANT_RTN = 0,    /* round to nearest */
    RT_QUANT_SEARCH = 1, /* Q4_0 error-minimizing scale search (no calibration) */
    RT_QUANT_AWQ = 2,    /* calibrated channel scaling + importance search */
    _RT_QUANT_METHOD_MAX,
} rt_quant_method;

typedef struct rt_quant_opts {
    rt_type type;            /* RT_TYPE_Q8_0, RT_TYPE_Q4_0, RT_TYPE_F16, RT_TYPE_F32, or a
                                K-quant mixture: RT_TYPE_Q4_K (Q4_K_M), RT_TYPE_Q5_K
                                (Q5_K_M), RT_TYPE_Q6_K (see below) */
    rt_quant_method method;  /* RTN for Q8_0 */
    const rt_tokenizer *tok; /* vocabulary to embed (llama2.c input), or NULL:
                                a GGUF input keeps its own */
    const char *name;        /* general.name, or NULL: input's or "llama" */
    uint64_t seed;           /* calibration sampling seed */
    uint32_t calib_tokens;   /* 0: RT_QUANT_CALIB_TOKENS */
} rt_quant_opts;

/* Statistics of a conversion. */
typedef struct rt_quant_report {
    uint64_t n_tensors;
    uint64_t n_quantized;             /* tensors written as a quantized type */
    uint64_t n_f16;                   /* matrices kept F16 (rows not a multiple of 32) */
    uint64_t n_by_type[_RT_TYPE_MAX]; /* tensors written per type */
    uint64_t bytes_in, bytes_out;
    double weight_rmse; /* RMS of (dequantized - original) over quantized tensors */
    bool requantized;   /* the input had quantized tensors (decoded first) */
} rt_quant_report;

/* A converted model: the writer and the memory its tensor data lives in. */
typedef struct rt_quant_result rt_quant_result;

/* Converts the model file held in buf[0..len) (llama2.c or GGUF).
 * Returns 0 and *ret (free with rt_quant_result_free), -EBADMSG for a
 * malformed or unsupported input (unknown architecture or tensor type),
 * -ENOTSUP for awq on an architecture other than llama, -EINVAL for bad
 * options, -ENOMEM. buf is only read during the call. */
int rt_quant_model(const void *buf, size_t len, const rt_quant_opts *opts, rt_quant_result **ret,
                   rt_quant_report *ret_report);

/* The GGUF writer holding the converted model (owned by r). */
rt_gguf_writer *rt_quant_result_writer(rt_quant_result *r);

void rt_quant_result_free(rt_quant_result *r);

/* Adds a tokenizer's vocabulary as GGUF llama tokenizer metadata
 * (tokenizer.ggml.model "llama", tokens with " " spelled "▁", BOS/EOS as
 * "<s>"/"</s>", scores, token types, bos/eos/unknown ids). */
int rt_quant_add_vocab(rt_gguf_writer *w, const rt_tokenizer *tok);

#endif
