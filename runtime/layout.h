/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_LAYOUT_H
#define NVX_RUNTIME_LAYOUT_H
/*
 * Format-independent layout of a model file: which format it is, how many
 * leading bytes are header/metadata, and the tensor table (name, type, dims,
 * absolute offset, byte size) in file order. The CLI uses it for
 * tensor-aware chunking: header bytes [0, header_size) are one chunk stream
 * and every tensor's bytes start a new chunk.
 *
 * Works on a prefix of the file: rt_layout_parse returns -EAGAIN with the
 * prefix length it needs. No allocation; the layout points into the buffer,
 * which must stay valid while the layout is used.
 *
 * Typical use:
 *
 *   size_t len = 64 * 1024;      (read that much, or the whole file)
 *   for (;;) {
 *       r = rt_layout_parse(buf, len, file_size, &l, &need);
 *       if (r != -EAGAIN) break;
 *       (read the first `need` bytes, or more, then loop)
 *   }
 *   rt_layout_iter it = RT_LAYOUT_ITER_INIT;
 *   while ((r = rt_layout_next(&l, &it, &t)) > 0) use(t.offset, t.size);
 */
#include <stddef.h>
#include <stdint.h>

#include "runtime/gguf.h"
#include "runtime/llama2c.h"
#include "runtime/types.h"

typedef enum rt_format {
    RT_FORMAT_UNKNOWN = 0,
    RT_FORMAT_GGUF,
    RT_FORMAT_LLAMA2C,
    _RT_FORMAT_MAX,
} rt_format;

typedef struct rt_layout {
    rt_format format;
    uint64_t file_size;
    uint64_t header_size; /* bytes before the first tensor's data (GGUF: the
                             aligned start of the data section) */
    uint64_t n_tensors;
    union {
        rt_gguf gguf;
        rt_llama2c l2c;
    } u;
} rt_layout;

typedef struct rt_layout_iter {
    rt_gguf_iter g;
    uint64_t index;
} rt_layout_iter;
#define RT_LAYOUT_ITER_INIT  \
    {                        \
        RT_GGUF_ITER_INIT, 0 \
    }

/* Guesses the format from the first len bytes: GGUF by its magic, llama2.c
 * by a plausible header whose implied size equals file_size. */
rt_format rt_layout_detect(const void *buf, size_t len, uint64_t file_size);

/* "gguf", "llama2c" or "unknown". */
const char *rt_format_name(rt_format f);

/* Parses the layout of a file (first len bytes in buf, total file_size).
 * Returns 0; -EAGAIN with *ret_need (prefix bytes needed at least, may be
 * NULL) when the prefix is too short; -EBADMSG if the file is malformed or
 * of no known format; -EINVAL on caller error. */
int rt_layout_parse(const void *buf, size_t len, uint64_t file_size, rt_layout *ret,
                    uint64_t *ret_need);

/* Returns 1 and the next tensor, or 0 at the end. Order: llama2.c in file
 * order; GGUF in tensor-info order, which is data order in files written by
 * llama.cpp and nvx but not required by the format (sort by offset when
 * order matters). */
int rt_layout_next(const rt_layout *l, rt_layout_iter *it, rt_tensor_info *ret);

/* Finds a tensor by name: 0, or -ENOENT. */
int rt_layout_find(const rt_layout *l, const char *name, rt_tensor_info *ret);

#endif
