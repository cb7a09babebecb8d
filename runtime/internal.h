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

#include "runtime/types.h"

/* An activation block: 32 values quantized to int8 with one float scale,
 * x[i] ~= d * qs[i], qs in [-127, 127]. */
typedef struct rt__blockq8 {
    float d;
    int8_t qs[RT_QK];
} rt__blockq8;

/* A matrix [rows, cols] of type F32, F16, Q8_0 or Q4_0, row-major. For the
 * block types each row holds nb = cols_pad / 32 blocks; cols_pad >= cols and
 * the weights past cols are zero (requantized rows of any width). */
typedef struct rt__mat {
    rt_type type;
    uint32_t rows, cols, cols_pad;
    size_t row_bytes;
    const uint8_t *data;
} rt__mat;

/* Float accumulators of the quantized dot products (see kernels.c). */
enum {
    RT_DOT_LANES = 4
};

/* One kernel set. dot_* return one row's dot product; sums_* write the
 * integer dot product of every block (for the equality tests). */
typedef struct rt__kernels {
    const char *name;
    float (*dot_f32)(const float *w, const float *x, size_t n);
    float (*dot_f16)(const uint8_t *w, const float *x, size_t n);
    float (*dot_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb);
    float (*dot_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb);
    void (*sums_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret);
    void (*sums_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret);
} rt__kernels;

extern const rt__kernels rt__kernels_portable;
/* The SIMD set for this CPU, or NULL when it has none (or the build has
 * none for this architecture). */
const rt__kernels *rt__kernels_simd(void);

/* IEEE half <-> float (round to nearest even). */
float rt__f16_to_f32(uint16_t h);
uint16_t rt__f32_to_f16(float f);

/* Little-endian loads that need no alignment. */
static inline uint16_t
rt__le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
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

/* out[r] = W[r, :] . x for every row; xq holds x quantized (only read for
 * block types). */
void rt__matvec(const rt__kernels *k, const rt__mat *w, const float *x, const rt__blockq8 *xq,
                float *out);

#endif
