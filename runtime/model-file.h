/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_MODEL_FILE_H
#define NVX_RUNTIME_MODEL_FILE_H
/*
 * mmap mode: maps a model file read-only (zero-copy: weights are used in
 * place unless requantized) and builds the model in an arena allocated once,
 * of exactly rt_model_plan's size. POSIX (mmap); a microcontroller build
 * leaves this file out and uses rt_model_init on its own buffers.
 */
#include "runtime/model.h"

typedef struct rt_model_file rt_model_file;

/* Opens path and builds its model with opts (NULL = defaults).
 * Returns 0 and *ret (free with rt_model_file_close); -errno from open,
 * fstat or mmap; -ENOMEM; errors of rt_model_plan / rt_model_init. */
int rt_model_file_open(const char *path, const rt_model_opts *opts, rt_model_file **ret);

/* The model (owned by f, valid until rt_model_file_close). */
rt_model *rt_model_file_model(rt_model_file *f);

/* The mapped file bytes and size (valid until close), e.g. for a tokenizer
 * reading GGUF metadata. */
const void *rt_model_file_data(const rt_model_file *f, size_t *ret_len);

/* Unmaps and frees; NULL is fine. */
void rt_model_file_close(rt_model_file *f);

#endif
