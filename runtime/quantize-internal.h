/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_QUANTIZE_INTERNAL_H
#define NVX_RUNTIME_QUANTIZE_INTERNAL_H
/*
 * Shared between quantize.c (conversion) and quantize-awq.c (calibration):
 * a llama model held as F32 arrays. Not installed.
 */
#include <stdint.h>

#include "runtime/types.h"

typedef struct rt__qtensor {
    char name[RT_TENSOR_NAME_MAX + 1];
    uint32_t n_dims;
    uint64_t dims[RT_TENSOR_DIMS_MAX]; /* dims[0] = row length */
    float *w;                          /* owned, prod(dims) floats */
    float *imp;                        /* owned or NULL: per-column importance [dims[0]] */
} rt__qtensor;

typedef struct rt__qmodel {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float eps, rope_base;
    rt__qtensor *t; /* in output order */
    size_t n_t;
} rt__qmodel;

/* The tensor named name, or NULL. */
rt__qtensor *rt__qmodel_find(rt__qmodel *m, const char *name);

/* Calibrates the model on n_tokens positions it samples itself (temperature
 * 1, seed), folds activation-aware channel scales into the weights (see
 * quantize.h) and sets the importance vectors of the matrices. Returns 0,
 * -EBADMSG (a tensor the llama forward pass needs is missing or has the
 * wrong shape) or -ENOMEM. */
int rt__quant_awq(rt__qmodel *m, uint64_t seed, uint32_t n_tokens);

#endif
