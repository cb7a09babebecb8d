/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_GGUF_WRITE_H
#define NVX_RUNTIME_GGUF_WRITE_H
/*
 * GGUF v3 writer, following the published specification
 * (github.com/ggml-org/ggml docs/gguf.md). The file it produces:
 *
 *   OFFSET SIZE DESCRIPTION (little-endian; str = u64 length + bytes, no NUL)
 *   0      4    magic "GGUF"
 *   4      4    u32 version = 3
 *   8      8    u64 tensor_count
 *   16     8    u64 metadata_kv_count
 *   24     ...  metadata KVs in the order added: str key, u32 value type,
 *               value (arrays: u32 element type, u64 count, elements);
 *               "general.alignment" (u32) is appended unless already added
 *   ...    ...  tensor infos in the order added: str name, u32 n_dims,
 *               u64 dims[n_dims] (dims[0] = row length), u32 ggml type,
 *               u64 offset relative to the data section
 *   ...    ...  zero bytes up to a multiple of the alignment
 *   data   ...  each tensor's bytes at its offset (a multiple of the
 *               alignment), followed by zero bytes up to the next multiple,
 *               the last one included, so the file size is a multiple too
 *
 * Spec rules checked when adding: keys are 1..RT_GGUF_MAX_KEY bytes of
 * ASCII and unique; tensor names 1..64 bytes, unique; 1..4 dims, each >= 1;
 * the data size equals what the type and dims imply, with the row length a
 * multiple of the type's block; the alignment is a power of two (>= 8: every
 * offset must suit the largest scalar).
 *
 * The writer copies keys, values and names; tensor DATA is borrowed and
 * must stay valid and unchanged until rt_gguf_writer_write returns.
 * One writer is used by one thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/gguf.h"
#include "runtime/types.h"

enum {
    RT_GGUFW_VERSION = 3,
};

typedef struct rt_gguf_writer rt_gguf_writer;

/* Creates an empty writer. alignment 0 means RT_GGUF_DEFAULT_ALIGNMENT (32).
 * Returns 0, -EINVAL (alignment not a power of two in [8, 65536]), -ENOMEM. */
int rt_gguf_writer_new(uint32_t alignment, rt_gguf_writer **ret);

/* Frees w (NULL is fine). */
void rt_gguf_writer_free(rt_gguf_writer *w);

/* Scalar and string metadata. key is NUL-terminated. Return 0, -EINVAL
 * (bad or duplicate key, NULL), -ENOMEM. A "general.alignment" key must be
 * a u32 equal to the writer's alignment. */
int rt_gguf_writer_add_u32(rt_gguf_writer *w, const char *key, uint32_t v);
int rt_gguf_writer_add_i32(rt_gguf_writer *w, const char *key, int32_t v);
int rt_gguf_writer_add_u64(rt_gguf_writer *w, const char *key, uint64_t v);
int rt_gguf_writer_add_f32(rt_gguf_writer *w, const char *key, float v);
int rt_gguf_writer_add_bool(rt_gguf_writer *w, const char *key, bool v);
int rt_gguf_writer_add_str(rt_gguf_writer *w, const char *key, const char *s, size_t len);

/* Array of fixed-size elements (elem_type not STRING/ARRAY) given in host
 * order: u8/i8/bool 1 byte, u16/i16 2, u32/i32/f32 4, u64/i64/f64 8.
 * Bool elements must be 0 or 1. */
int rt_gguf_writer_add_arr(rt_gguf_writer *w, const char *key, rt_gguf_vtype elem_type,
                           const void *elems, uint64_t count);

/* Array of strings: strs[i] holds lens[i] bytes. */
int rt_gguf_writer_add_arr_str(rt_gguf_writer *w, const char *key, const char *const *strs,
                               const size_t *lens, uint64_t count);

/* Copies one metadata value read by runtime/gguf.h (any type, arrays
 * included) under key; used to carry metadata from an input file over. */
int rt_gguf_writer_add_value(rt_gguf_writer *w, const char *key, const rt_gguf_value *v);

/* Adds a tensor. name is NUL-terminated; dims[0] is the row length; size
 * must equal rt_type_size(type, prod(dims), dims[0]). data is borrowed (see
 * above). Returns 0, -EINVAL (bad/duplicate name, dims, size mismatch),
 * -ENOMEM. */
int rt_gguf_writer_add_tensor(rt_gguf_writer *w, const char *name, rt_type type, uint32_t n_dims,
                              const uint64_t *dims, const void *data, uint64_t size);

/* Total bytes rt_gguf_writer_write will produce. */
uint64_t rt_gguf_writer_size(const rt_gguf_writer *w);

/* Sink for the bytes: returns 0 or a negative errno, which aborts writing
 * and is returned by rt_gguf_writer_write. */
typedef int (*rt_gguf_sink)(void *userdata, const void *buf, size_t len);

/* Streams the whole file to sink. Returns 0 or the sink's error. */
int rt_gguf_writer_write(const rt_gguf_writer *w, rt_gguf_sink sink, void *userdata);

/* Writes the file to path: to "path.tmp" first, fsync, then rename over
 * path, so a reader never sees half a file. Returns 0 or -errno. POSIX:
 * defined in file-io.c, which builds without <unistd.h> leave out. */
int rt_gguf_writer_write_file(const rt_gguf_writer *w, const char *path);

#endif
