/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_MODEL_FILE_H
#define NVX_RUNTIME_MODEL_FILE_H
/*
 * mmap mode: maps a model file read-only (zero-copy: weights are used in
 * place unless requantized) and builds the model in an arena allocated once,
 * of exactly rt_model_plan's size. POSIX (mmap); a microcontroller build
 * leaves this file out and uses rt_model_init on its own buffers.
 */
#include <sys/mman.h>

#include "runtime/model.h"

/* mmap flag for a model's file: every weight is read for each token, so
 * the page tables are filled at load (MAP_POPULATE, where there is one)
 * rather than by a page fault per 4 KiB inside the first forward pass,
 * where threads fault in turn on one lock. llama.cpp's loader prefetches
 * the same way. Visible where the includer defines _DEFAULT_SOURCE. */
#ifdef MAP_POPULATE
#define RT_MAP_PREFAULT MAP_POPULATE
#else
#define RT_MAP_PREFAULT 0
#endif

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
