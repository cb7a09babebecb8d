/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_TYPES_H
#define NVX_RUNTIME_TYPES_H
/*
 * Tensor element types shared by every model format the runtime reads.
 *
 * The numeric values are ggml's (and therefore GGUF's) type ids, so a GGUF
 * tensor-info type field is an rt_type without translation. Only F32, F16,
 * Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are computed on; the others are known
 * here so that the
 * layout of any GGUF file (byte size of each tensor) can be computed.
 *
 * Block layouts computed on (little-endian, packed):
 *
 *   Q8_0, 32 weights, 34 bytes        Q4_0, 32 weights, 18 bytes
 *   OFFSET SIZE DESCRIPTION           OFFSET SIZE DESCRIPTION
 *   0      2    scale d (IEEE fp16)   0      2    scale d (IEEE fp16)
 *   2      32   int8 q[i], w = d*q    2      16   byte j: low nibble = q[j],
 *                                                 high nibble = q[j+16],
 *                                                 w = d * (q - 8)
 *
 * K-quants: super-blocks of 256 weights in 8 sub-blocks of 32 (Q4_K, Q5_K)
 * or 16 of 16 (Q6_K).
 *
 *   Q4_K, 144 bytes                     Q5_K, 176 bytes
 *   OFFSET SIZE DESCRIPTION             OFFSET SIZE DESCRIPTION
 *   0      2    d (fp16)                0      2    d (fp16)
 *   2      2    dmin (fp16)             2      2    dmin (fp16)
 *   4      12   8 x (6-bit scale sc,    4      12   scales/mins as Q4_K
 *                6-bit min m), packed   16     32   qh: bit c of qh[l] is bit 4
 *                (rt__kq_scale_min)                  of weight 32c + l
 *   16     128  4-bit q: bytes 32c..    48     128  low 4 bits as Q4_K
 *                32c+31 hold weights
 *                64c+l (low nibble) and
 *                64c+32+l (high)
 *   w = d * sc_j * q - dmin * m_j for weight i of sub-block j = i / 32.
 *
 *   Q6_K, 210 bytes
 *   OFFSET SIZE DESCRIPTION
 *   0      128  ql: low 4 bits; weight 128h + 32t + l uses the low (t < 2)
 *                or high nibble of ql[64h + 32(t & 1) + l]
 *   128    64   qh: bits 2t, 2t+1 of qh[32h + l] are its bits 4-5
 *   192    16   int8 scales, one per 16 weights
 *   208    2    d (fp16); w = d * scale[i / 16] * (q - 32)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rt_type {
    RT_TYPE_F32 = 0,
    RT_TYPE_F16 = 1,
    RT_TYPE_Q4_0 = 2,
    RT_TYPE_Q4_1 = 3,
    RT_TYPE_Q5_0 = 6,
    RT_TYPE_Q5_1 = 7,
    RT_TYPE_Q8_0 = 8,
    RT_TYPE_Q8_1 = 9,
    RT_TYPE_Q2_K = 10,
    RT_TYPE_Q3_K = 11,
    RT_TYPE_Q4_K = 12,
    RT_TYPE_Q5_K = 13,
    RT_TYPE_Q6_K = 14,
    RT_TYPE_Q8_K = 15,
    RT_TYPE_IQ2_XXS = 16,
    RT_TYPE_IQ2_XS = 17,
    RT_TYPE_IQ3_XXS = 18,
    RT_TYPE_IQ1_S = 19,
    RT_TYPE_IQ4_NL = 20,
    RT_TYPE_IQ3_S = 21,
    RT_TYPE_IQ2_S = 22,
    RT_TYPE_IQ4_XS = 23,
    RT_TYPE_I8 = 24,
    RT_TYPE_I16 = 25,
    RT_TYPE_I32 = 26,
    RT_TYPE_I64 = 27,
    RT_TYPE_F64 = 28,
    RT_TYPE_IQ1_M = 29,
    RT_TYPE_BF16 = 30,
    RT_TYPE_TQ1_0 = 34,
    RT_TYPE_TQ2_0 = 35,
    _RT_TYPE_MAX = 36,
} rt_type;

enum {
    RT_QK = 32,         /* weights per Q8_0 / Q4_0 block */
    RT_Q8_0_BYTES = 34, /* bytes per Q8_0 block */
    RT_Q4_0_BYTES = 18, /* bytes per Q4_0 block */
    RT_QK_K = 256,      /* weights per K-quant super-block */
    RT_Q4_K_BYTES = 144,
    RT_Q5_K_BYTES = 176,
    RT_Q6_K_BYTES = 210,
    RT_TENSOR_NAME_MAX = 64, /* GGUF: tensor names are at most 64 bytes */
    RT_TENSOR_DIMS_MAX = 4,  /* GGUF/ggml: at most 4 dimensions */
};

/* One tensor of a model file, as the layout reports it. dims[0] is the
 * innermost (contiguous) dimension, i.e. the row length of a matrix, as in
 * GGUF; dims[1] the number of rows. offset is absolute in the file. */
typedef struct rt_tensor_info {
    char name[RT_TENSOR_NAME_MAX + 1]; /* NUL-terminated */
    rt_type type;
    uint32_t n_dims;
    uint64_t dims[RT_TENSOR_DIMS_MAX]; /* unused entries are 1 */
    uint64_t offset;                   /* absolute byte offset in the file */
    uint64_t size;                     /* byte size */
} rt_tensor_info;

/* Weights per block of type t (1 for plain types), or 0 if t is unknown. */
uint32_t rt_type_block_elems(uint32_t t);

/* Bytes per block of type t, or 0 if t is unknown. */
uint32_t rt_type_block_bytes(uint32_t t);

/* Short name of type t ("f32", "q8_0", ...), or "?" if unknown. */
const char *rt_type_name(uint32_t t);

/* Byte size of a tensor of type t with n_elems elements whose rows hold
 * row_elems elements. Returns 0 and writes *ret on success, -EBADMSG if the
 * type is unknown, row_elems is not a multiple of the block, or the size
 * overflows. */
int rt_type_size(uint32_t t, uint64_t n_elems, uint64_t row_elems, uint64_t *ret);

#endif
