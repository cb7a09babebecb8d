/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_RUNTIME_SYNTH_H
#define NVX_TESTS_RUNTIME_SYNTH_H
/*
 * Tiny GGUF writer for tests, written from the GGUF specification (not using
 * the runtime), so tests can build small synthetic and malformed files.
 * Test-only: aborts on allocation failure.
 */
#include <stddef.h>
#include <stdint.h>

enum {
    SYNTH_MAX_TENSORS = 64
};

typedef struct synth {
    uint8_t *kv;
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    uint32_t version;
    uint32_t alignment;
    size_t n_tensors;
    struct {
        char name[80];
        uint32_t type, n_dims;
        uint64_t dims[4];
        const void *data;
        size_t size;
    } t[SYNTH_MAX_TENSORS];
    /* Filled by synth_finish: absolute offsets of each tensor info and of
     * the tensor data, and of the data section. */
    size_t ti_off[SYNTH_MAX_TENSORS];
    size_t data_abs[SYNTH_MAX_TENSORS];
    size_t data_off;
} synth;

void synth_init(synth *s, uint32_t version);
void synth_kv_u32(synth *s, const char *key, uint32_t v);
void synth_kv_i32(synth *s, const char *key, int32_t v);
void synth_kv_f32(synth *s, const char *key, float v);
void synth_kv_bool(synth *s, const char *key, int v);
void synth_kv_str(synth *s, const char *key, const char *v);
void synth_kv_arr_str(synth *s, const char *key, const char *const *v, size_t n);
void synth_kv_arr_f32(synth *s, const char *key, const float *v, size_t n);
void synth_kv_arr_i32(synth *s, const char *key, const int32_t *v, size_t n);
/* Sets general.alignment (also written as a KV). */
void synth_alignment(synth *s, uint32_t a);
/* Adds a tensor; data (size bytes) is borrowed until synth_finish. */
void synth_tensor(synth *s, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *dims,
                  const void *data, size_t size);
/* Returns the malloc'd file and frees the builder's own memory. */
uint8_t *synth_finish(synth *s, size_t *ret_len);

/* The small fixed file used by the malformed-input tests: 2 tensors
 * ("a": f32 [4,2]; "b": q8_0 [32,1]) and a few KVs. */
uint8_t *synth_small(synth *s, size_t *ret_len);

#endif
