/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_GGUF_H
#define NVX_RUNTIME_GGUF_H
/*
 * GGUF reader (versions 2 and 3, little-endian) over a caller-given byte
 * buffer. No allocation: an rt_gguf is a small struct that points into the
 * buffer, which the caller keeps alive and unchanged while it is used.
 *
 * The buffer may be a PREFIX of the file (the caller passes the file's full
 * size): parsing then returns -EAGAIN when the header, metadata or tensor
 * infos do not fit in the prefix although the file is long enough, and
 * reports through *ret_need how many bytes of prefix it needs at least (a
 * lower bound: call again with at least that many bytes). Tensor data is
 * never read by the parser, so a prefix up to the data section suffices.
 *
 * File layout (all integers little-endian; "str" = u64 length + bytes, no NUL):
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    magic "GGUF"
 *   4      4    u32 version (2 or 3)
 *   8      8    u64 tensor_count      (<= RT_GGUF_MAX_TENSORS)
 *   16     8    u64 metadata_kv_count (<= RT_GGUF_MAX_KV)
 *   24     ...  metadata: per KV: str key, u32 value type, value
 *                 value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
 *                 7 bool (1 byte, 0 or 1), 8 str, 9 array (u32 elem type,
 *                 u64 count, elements), 10 u64, 11 i64, 12 f64
 *   ...    ...  tensor infos: str name (<= 64 bytes), u32 n_dims (1..4),
 *                 u64 dims[n_dims] (dims[0] innermost), u32 ggml type,
 *                 u64 offset relative to the data section (multiple of the
 *                 alignment)
 *   ...    ...  zero padding to the alignment (general.alignment, u32,
 *                 power of two, default 32)
 *   data   ...  tensor data
 *
 * Checks made before anything is used: magic, version, counts against the
 * named maxima and against the bytes the file can hold, every length against
 * the file size, value types, bool values, alignment a power of two, tensor
 * names of at most 64 bytes without NUL (uniqueness is not checked: lookups
 * return the first), dims >= 1 with no overflow, known tensor type with the
 * row length a multiple of its block, offsets aligned, every tensor's data
 * inside the file. Arrays of arrays are rejected
 * (no llama model uses them). Malformed input gives -EBADMSG.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/types.h"

enum {
    RT_GGUF_MAGIC = 0x46554747, /* "GGUF" read as a little-endian u32 */
    RT_GGUF_DEFAULT_ALIGNMENT = 32,
    RT_GGUF_MAX_ALIGNMENT = 1 << 16,
    RT_GGUF_MAX_KEY = 65535,  /* bytes in a metadata key */
    RT_GGUF_HEADER_SIZE = 24, /* fixed header bytes */
};

#define RT_GGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define RT_GGUF_MAX_KV      ((uint64_t)1 << 20)
#define RT_GGUF_MAX_STRING  ((uint64_t)1 << 24) /* bytes in one string value */
#define RT_GGUF_MAX_ARRAY   ((uint64_t)1 << 26) /* elements in one array */

typedef enum rt_gguf_vtype {
    RT_GGUF_U8 = 0,
    RT_GGUF_I8 = 1,
    RT_GGUF_U16 = 2,
    RT_GGUF_I16 = 3,
    RT_GGUF_U32 = 4,
    RT_GGUF_I32 = 5,
    RT_GGUF_F32 = 6,
    RT_GGUF_BOOL = 7,
    RT_GGUF_STRING = 8,
    RT_GGUF_ARRAY = 9,
    RT_GGUF_U64 = 10,
    RT_GGUF_I64 = 11,
    RT_GGUF_F64 = 12,
    _RT_GGUF_VTYPE_MAX = 13,
} rt_gguf_vtype;

/* A parsed file. Fields are read-only for callers; pointers point into the
 * caller's buffer. Embeddable (no allocation); initialise with rt_gguf_parse. */
typedef struct rt_gguf {
    const uint8_t *buf; /* the prefix given to rt_gguf_parse */
    size_t len;         /* its length */
    uint64_t file_size; /* full file size */
    uint32_t version;   /* 2 or 3 */
    uint32_t alignment; /* general.alignment or 32 */
    uint64_t n_tensors;
    uint64_t n_kv;
    size_t kv_off;     /* offset of the first metadata KV */
    size_t ti_off;     /* offset of the first tensor info */
    uint64_t data_off; /* absolute offset of the data section (aligned) */
} rt_gguf;

/* A metadata value. For scalars the value is decoded into u/i/f/b; for
 * strings str/str_len point into the buffer; for arrays elem_type, count and
 * data (the raw encoded elements, data_len bytes) describe it. */
typedef struct rt_gguf_value {
    rt_gguf_vtype type;
    uint64_t u; /* unsigned integer types and bool */
    int64_t i;  /* signed integer types (also set for unsigned that fit) */
    double f;   /* f32 / f64 */
    const char *str;
    uint64_t str_len;
    rt_gguf_vtype elem_type;
    uint64_t count;
    const uint8_t *data;
    uint64_t data_len;
} rt_gguf_value;

/* Iterator over tensor infos; initialise with RT_GGUF_ITER_INIT. */
typedef struct rt_gguf_iter {
    size_t off;
    uint64_t index;
} rt_gguf_iter;
#define RT_GGUF_ITER_INIT \
    {                     \
        0, 0              \
    }

/* Parses and validates the header, all metadata and all tensor infos of the
 * GGUF file whose first len bytes are buf and whose total size is file_size
 * (len <= file_size). buf must stay valid while *ret is used.
 * Returns 0 and fills *ret; -EAGAIN if more prefix is needed (then writes
 * *ret_need, the prefix length needed at least, <= file_size; ret_need may
 * be NULL); -EBADMSG if the bytes are not a valid GGUF v2/v3 file;
 * -EINVAL on caller error (NULL, len > file_size). */
int rt_gguf_parse(const void *buf, size_t len, uint64_t file_size, rt_gguf *ret,
                  uint64_t *ret_need);

/* True if buf (len bytes) starts with the GGUF magic. */
bool rt_gguf_is_gguf(const void *buf, size_t len);

/* Finds the metadata key named by the NUL-terminated string key and decodes
 * its value into *ret (pointers into the buffer). Returns 0, or -ENOENT if
 * absent. O(n_kv). */
int rt_gguf_get(const rt_gguf *g, const char *key, rt_gguf_value *ret);

/* Typed getters. Integers of any integer type are accepted if the value fits
 * the destination; -ERANGE if not, -EBADMSG (wrong type), -ENOENT (absent). */
int rt_gguf_get_u32(const rt_gguf *g, const char *key, uint32_t *ret);
int rt_gguf_get_i32(const rt_gguf *g, const char *key, int32_t *ret);
/* Accepts f32 and f64 values. */
int rt_gguf_get_f32(const rt_gguf *g, const char *key, float *ret);
/* String value: *ret_str points into the buffer (not NUL-terminated). */
int rt_gguf_get_str(const rt_gguf *g, const char *key, const char **ret_str, uint64_t *ret_len);
/* Array value of the given element type: -EBADMSG if it has another one. */
int rt_gguf_get_arr(const rt_gguf *g, const char *key, rt_gguf_vtype elem_type, rt_gguf_value *ret);

/* Reads element i of an array of fixed-size elements (i < arr->count).
 * rt_gguf_arr_f32 accepts f32 arrays; rt_gguf_arr_i64 any integer or bool
 * array. Asserts on a wrong type or index (caller error). */
float rt_gguf_arr_f32(const rt_gguf_value *arr, uint64_t i);
int64_t rt_gguf_arr_i64(const rt_gguf_value *arr, uint64_t i);

/* Iterates the strings of a string array: *cursor starts at 0; each call
 * returns 1 and the next string (pointer into the buffer, length), or 0 at
 * the end. The array was validated by rt_gguf_parse. */
int rt_gguf_arr_str_next(const rt_gguf_value *arr, uint64_t *cursor, const char **ret_str,
                         uint64_t *ret_len);

/* Iterates metadata in file order: returns 1 and the key (pointer into the
 * buffer, length) and value, or 0 at the end. *cursor starts at 0. */
int rt_gguf_kv_next(const rt_gguf *g, uint64_t *cursor, const char **ret_key, uint64_t *ret_key_len,
                    rt_gguf_value *ret);

/* Returns 1 and the next tensor info (absolute offset, byte size), or 0 at
 * the end. */
int rt_gguf_tensor_next(const rt_gguf *g, rt_gguf_iter *it, rt_tensor_info *ret);

/* Finds a tensor by name. Returns 0, -ENOENT, or -EBADMSG if two tensors
 * have that name. O(n_tensors). */
int rt_gguf_tensor_find(const rt_gguf *g, const char *name, rt_tensor_info *ret);

#endif
