/* SPDX-License-Identifier: MIT */
#include "runtime/types.h"

#include <errno.h>

/* Block geometry of the ggml types: weights per block, bytes per block. */
static const struct {
    uint16_t elems;
    uint16_t bytes;
    const char *name;
} type_table[_RT_TYPE_MAX] = {
    [RT_TYPE_F32] = { 1, 4, "f32" },
    [RT_TYPE_F16] = { 1, 2, "f16" },
    [RT_TYPE_Q4_0] = { 32, 18, "q4_0" },
    [RT_TYPE_Q4_1] = { 32, 20, "q4_1" },
    [RT_TYPE_Q5_0] = { 32, 22, "q5_0" },
    [RT_TYPE_Q5_1] = { 32, 24, "q5_1" },
    [RT_TYPE_Q8_0] = { 32, 34, "q8_0" },
    [RT_TYPE_Q8_1] = { 32, 36, "q8_1" },
    [RT_TYPE_Q2_K] = { 256, 84, "q2_k" },
    [RT_TYPE_Q3_K] = { 256, 110, "q3_k" },
    [RT_TYPE_Q4_K] = { 256, 144, "q4_k" },
    [RT_TYPE_Q5_K] = { 256, 176, "q5_k" },
    [RT_TYPE_Q6_K] = { 256, 210, "q6_k" },
    [RT_TYPE_Q8_K] = { 256, 292, "q8_k" },
    [RT_TYPE_IQ2_XXS] = { 256, 66, "iq2_xxs" },
    [RT_TYPE_IQ2_XS] = { 256, 74, "iq2_xs" },
    [RT_TYPE_IQ3_XXS] = { 256, 98, "iq3_xxs" },
    [RT_TYPE_IQ1_S] = { 256, 50, "iq1_s" },
    [RT_TYPE_IQ4_NL] = { 32, 18, "iq4_nl" },
    [RT_TYPE_IQ3_S] = { 256, 110, "iq3_s" },
    [RT_TYPE_IQ2_S] = { 256, 82, "iq2_s" },
    [RT_TYPE_IQ4_XS] = { 256, 136, "iq4_xs" },
    [RT_TYPE_I8] = { 1, 1, "i8" },
    [RT_TYPE_I16] = { 1, 2, "i16" },
    [RT_TYPE_I32] = { 1, 4, "i32" },
    [RT_TYPE_I64] = { 1, 8, "i64" },
    [RT_TYPE_F64] = { 1, 8, "f64" },
    [RT_TYPE_IQ1_M] = { 256, 56, "iq1_m" },
    [RT_TYPE_BF16] = { 1, 2, "bf16" },
    [RT_TYPE_TQ1_0] = { 256, 54, "tq1_0" },
    [RT_TYPE_TQ2_0] = { 256, 66, "tq2_0" },
};

uint32_t
rt_type_block_elems(uint32_t t)
{
    return t < _RT_TYPE_MAX ? type_table[t].elems : 0;
}

uint32_t
rt_type_block_bytes(uint32_t t)
{
    return t < _RT_TYPE_MAX ? type_table[t].bytes : 0;
}

const char *
rt_type_name(uint32_t t)
{
    return t < _RT_TYPE_MAX && type_table[t].name ? type_table[t].name : "?";
}

int
rt_type_size(uint32_t t, uint64_t n_elems, uint64_t row_elems, uint64_t *ret)
{
    uint32_t be = rt_type_block_elems(t);
    uint32_t bb = rt_type_block_bytes(t);
    if (be == 0 || row_elems == 0 || row_elems % be != 0 || n_elems % be != 0)
        return -EBADMSG;
    uint64_t blocks = n_elems / be;
    if (blocks > UINT64_MAX / bb)
        return -EBADMSG;
    *ret = blocks * bb;
    return 0;
}
