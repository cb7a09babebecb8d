/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_MANIFEST_H
#define NVX_LIBCAS_MANIFEST_H
/*
 * Manifests: the canonical, versioned binary record of one model file, whose
 * BLAKE2b-256 is the model id. Byte layout and canonical-form rules:
 * libcas/FORMAT.md ("Manifest"). Summary, all integers little-endian:
 *
 *   header (40 bytes): magic "NVXM", version, chunker kind and parameters,
 *                      total size, chunk, tensor and metadata counts
 *   metadata:          sorted unique (key, UTF-8 value) pairs
 *   chunks:            count x (32-byte id, u32 length); offsets implied
 *   tensors:           sorted by offset: name, type, shape, offset, size
 *
 * A cas_manifest is immutable once made (by the decoder or the builder) and
 * owns a copy of its canonical bytes; it may be read from several threads.
 * Every pointer an accessor returns points into the manifest and lives until
 * cas_manifest_free().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libcas/chunker.h"
#include "libcas/hash.h"

enum {
    CAS_MANIFEST_VERSION = 1,
    CAS_MANIFEST_HEADER_LEN = 40,
    CAS_MANIFEST_CHUNK_REC_LEN = CAS_HASH_LEN + 4,
    CAS_MANIFEST_CHUNKS_MAX = 1 << 22, /* 256 GiB at 64 KiB average */
    CAS_MANIFEST_TENSORS_MAX = 1 << 16,
    CAS_MANIFEST_META_MAX = 32,    /* metadata entries */
    CAS_MANIFEST_KEY_MAX = 32,     /* bytes of a key: [a-z0-9._-]+ */
    CAS_MANIFEST_VALUE_MAX = 1024, /* bytes of a value: UTF-8, no NUL */
    CAS_TENSOR_NAME_MAX = 256,     /* bytes of a tensor name: UTF-8, no NUL */
    CAS_TENSOR_DIMS_MAX = 8,
};
#define CAS_MANIFEST_SIZE_MAX (UINT64_C(1) << 48) /* largest model file: 256 TiB */

/* Well-known metadata keys (others may be set if they follow the key rule). */
#define CAS_META_NAME     "name"     /* human name given at add time */
#define CAS_META_FILENAME "filename" /* base name of the source file */
#define CAS_META_FORMAT   "format"   /* "gguf", "llama2c" or "raw" */

typedef struct cas_manifest cas_manifest;

typedef struct cas_chunk_info {
    const uint8_t *id; /* CAS_HASH_LEN bytes inside the manifest */
    uint64_t offset;   /* in the model file */
    uint32_t len;      /* > 0 */
} cas_chunk_info;

typedef struct cas_tensor_info {
    const char *name;                   /* NUL-terminated UTF-8, 1..CAS_TENSOR_NAME_MAX bytes */
    uint32_t type;                      /* format-specific type code (e.g. ggml_type) */
    uint32_t n_dims;                    /* 0..CAS_TENSOR_DIMS_MAX */
    uint64_t dims[CAS_TENSOR_DIMS_MAX]; /* entries past n_dims are 0 */
    uint64_t offset;                    /* absolute offset of the tensor's data in the file */
    uint64_t size;                      /* bytes; offset + size <= total size */
} cas_tensor_info;

/* Decodes and validates canonical manifest bytes (copied). Returns 0 and
 * writes *ret; -EBADMSG for anything that is not a canonical version-1
 * manifest; -ENOMEM. */
int cas_manifest_decode(const void *buf, size_t len, cas_manifest **ret);

/* Frees m (NULL is a no-op). */
void cas_manifest_free(cas_manifest *m);

/* Canonical bytes; *ret_len gets their length. */
const uint8_t *cas_manifest_bytes(const cas_manifest *m, size_t *ret_len);

/* The model id: BLAKE2b-256 of the canonical bytes (computed once). */
const uint8_t *cas_manifest_id(const cas_manifest *m);

/* Total size of the model file in bytes. */
uint64_t cas_manifest_size(const cas_manifest *m);

/* Chunker kind; writes its parameters to *ret_params unless NULL. */
cas_chunker_kind cas_manifest_chunker(const cas_manifest *m, cas_chunker_params *ret_params);

size_t cas_manifest_chunk_count(const cas_manifest *m);

/* Chunk i (0-based). Returns 0, or -ERANGE when i >= count. */
int cas_manifest_chunk(const cas_manifest *m, size_t i, cas_chunk_info *ret);

/* Index of the chunk that holds byte `offset`. Returns 0, or -ERANGE when
 * offset >= total size. */
int cas_manifest_chunk_at(const cas_manifest *m, uint64_t offset, size_t *ret_index);

size_t cas_manifest_tensor_count(const cas_manifest *m);

/* Tensor i in offset order. Returns 0, or -ERANGE. */
int cas_manifest_tensor(const cas_manifest *m, size_t i, cas_tensor_info *ret);

size_t cas_manifest_meta_count(const cas_manifest *m);

/* Metadata entry i in key order. Returns 0, or -ERANGE. */
int cas_manifest_meta(const cas_manifest *m, size_t i, const char **ret_key,
                      const char **ret_value);

/* Value of key, or NULL when absent. */
const char *cas_manifest_meta_get(const cas_manifest *m, const char *key);

/*
 * Builder for the add pipeline: append chunks in file order as they are cut,
 * set tensors and metadata in any order, then finish. Not thread-safe.
 */
typedef struct cas_manifest_builder cas_manifest_builder;

/* Returns 0 and writes *ret; -EINVAL (bad kind or params), -ENOMEM. */
int cas_manifest_builder_new(cas_chunker_kind kind, const cas_chunker_params *params,
                             cas_manifest_builder **ret);

void cas_manifest_builder_free(cas_manifest_builder *b);

/* Appends the next chunk. Returns 0; -EINVAL (len 0 or over params.max),
 * -EMSGSIZE (over CAS_MANIFEST_CHUNKS_MAX or CAS_MANIFEST_SIZE_MAX), -ENOMEM. */
int cas_manifest_builder_add_chunk(cas_manifest_builder *b, const uint8_t id[static CAS_HASH_LEN],
                                   uint32_t len);

/* Adds a tensor (name copied; order of calls does not matter, tensors are
 * sorted by offset at finish). Returns 0; -EINVAL (bad name, n_dims),
 * -EMSGSIZE (over CAS_TENSOR_NAME_MAX or CAS_MANIFEST_TENSORS_MAX), -ENOMEM. */
int cas_manifest_builder_add_tensor(cas_manifest_builder *b, const cas_tensor_info *t);

/* Sets (or replaces) a metadata entry; key and value are copied. Returns 0;
 * -EINVAL (bad key or value: see limits), -EMSGSIZE (too many), -ENOMEM. */
int cas_manifest_builder_set_meta(cas_manifest_builder *b, const char *key, const char *value);

/* Encodes and validates (through the decoder). Returns 0 and writes *ret (the
 * builder may then be freed or reused for nothing else); -EBADMSG when the
 * content is inconsistent (e.g. overlapping tensors, tensor past EOF, equal
 * tensor offsets), -ENOMEM. */
int cas_manifest_builder_finish(cas_manifest_builder *b, cas_manifest **ret);

#endif
