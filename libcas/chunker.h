/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_CHUNKER_H
#define NVX_LIBCAS_CHUNKER_H
/*
 * Content-defined chunking: a gear-hash scanner of the FastCDC family with
 * normalized chunking, plus caller-given forced cut points and a per-region
 * mode (CDC or fixed-size split).
 *
 * Cut rule (CDC regions). A chunk starts at the region start or at the
 * previous cut. Its first `min` bytes are never a cut candidate and are not
 * hashed. From there a 64-bit gear hash h = (h << 1) + gear[byte] (h = 0 at
 * chunk start + min) is updated per byte; after the byte at chunk position i
 * (1-based length i), the chunk ends when
 *     i <  avg  and (h & mask_s) == 0    (mask_s: log2(avg) + 2 top bits), or
 *     i >= avg  and (h & mask_l) == 0    (mask_l: log2(avg) - 2 top bits), or
 *     i == max.
 * The masks take the high bits of h, which depend on the last 64 bytes. The
 * gear table is fixed (see chunker.c) and part of the on-disk contract: any
 * change re-chunks every model (bump the manifest version).
 *
 * Regions. The caller may give sorted absolute offsets where a chunk must
 * begin (the CLI derives them from runtime's tensor table), each with a mode
 * for the bytes up to the next region: CAS_CHUNK_MODE_CDC as above, or
 * CAS_CHUNK_MODE_FIXED: pieces of exactly `avg` bytes from the region start
 * (the last one shorter). Bytes before the first region are CDC. A region's
 * last chunk may be shorter than min; every chunk is at most max bytes.
 *
 * Streaming. The caller feeds the stream in buffers of any size. Cut points
 * do not depend on how the stream is split into buffers. Typical loop:
 *
 *     while (len > 0) {
 *         size_t used;
 *         int r = cas_chunker_next(c, p, len, &used);
 *         hash/copy p[0..used) into the current chunk;
 *         p += used, len -= used;
 *         if (r == 1) the current chunk ends here (cas_chunker_offset(c));
 *     }
 *     at EOF: cas_chunker_finish() says whether a last chunk is pending.
 *
 * Not thread-safe: one chunker per stream.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits. */
#define CAS_CHUNK_MIN_DEFAULT    (16u * 1024)
#define CAS_CHUNK_AVG_DEFAULT    (64u * 1024)
#define CAS_CHUNK_MAX_DEFAULT    (256u * 1024)
#define CAS_CHUNK_SIZE_FLOOR     64u                 /* smallest min allowed */
#define CAS_CHUNK_AVG_FLOOR      256u                /* smallest avg allowed */
#define CAS_CHUNK_SIZE_CEIL      (16u * 1024 * 1024) /* largest max allowed */
#define CAS_CHUNKER_NORMAL_LEVEL 2                   /* mask bits added/removed around avg */
#define CAS_CHUNKER_REGIONS_MAX  (1u << 20)          /* forced cut points per stream */

/* How a model was cut into chunks; recorded in the manifest. */
typedef enum cas_chunker_kind {
    CAS_CHUNKER_CDC = 0,     /* whole file CDC */
    CAS_CHUNKER_GGUF = 1,    /* tensor-aware, GGUF layout */
    CAS_CHUNKER_LLAMA2C = 2, /* tensor-aware, llama2.c checkpoint */
    CAS_CHUNKER_FIXED = 3,   /* whole file in fixed pieces of `avg` bytes */
    _CAS_CHUNKER_KIND_MAX,
} cas_chunker_kind;

/* Returns "cdc", "gguf", "llama2c", "fixed", or NULL for an invalid kind. */
const char *cas_chunker_kind_to_string(cas_chunker_kind kind);

/* Parses one of the names above. Returns the kind or -EINVAL. */
int cas_chunker_kind_from_string(const char *s);

typedef enum cas_chunk_mode {
    CAS_CHUNK_MODE_CDC = 0,
    CAS_CHUNK_MODE_FIXED = 1, /* pieces of exactly avg bytes */
    _CAS_CHUNK_MODE_MAX,
} cas_chunk_mode;

typedef struct cas_chunker_params {
    uint32_t min; /* >= CAS_CHUNK_SIZE_FLOOR */
    uint32_t avg; /* power of two, >= CAS_CHUNK_AVG_FLOOR, min < avg */
    uint32_t max; /* avg < max <= CAS_CHUNK_SIZE_CEIL */
} cas_chunker_params;

#define CAS_CHUNKER_PARAMS_DEFAULT \
    ((cas_chunker_params){ CAS_CHUNK_MIN_DEFAULT, CAS_CHUNK_AVG_DEFAULT, CAS_CHUNK_MAX_DEFAULT })

/* Returns 0 when p satisfies the constraints above, else -EINVAL. */
int cas_chunker_params_validate(const cas_chunker_params *p);

/* A forced cut: a chunk begins at `offset`; bytes from there to the next
 * region (or EOF) are cut with `mode`. */
typedef struct cas_chunk_region {
    uint64_t offset;
    cas_chunk_mode mode;
} cas_chunk_region;

typedef struct cas_chunker cas_chunker;

/* Creates a chunker at stream offset 0 (p NULL: defaults). Returns 0 and
 * writes *ret, -EINVAL for bad parameters, -ENOMEM. */
int cas_chunker_new(const cas_chunker_params *p, cas_chunker **ret);

/* Frees c (NULL is a no-op). */
void cas_chunker_free(cas_chunker *c);

/* Sets the forced cuts: n regions with strictly increasing offsets (the
 * array is copied). Must be called before any byte is fed. Returns 0,
 * -EINVAL (unsorted, bad mode, bytes already fed), -EMSGSIZE (n over
 * CAS_CHUNKER_REGIONS_MAX), -ENOMEM. Regions past EOF are ignored. */
int cas_chunker_set_regions(cas_chunker *c, const cas_chunk_region *regions, size_t n);

/* Scans buf, the next len bytes of the stream. Writes to *ret_used how many
 * bytes of buf belong to the current chunk (1..len; 0 only when len is 0).
 * Returns 1 when the current chunk ends after those bytes, 0 when all len
 * bytes were consumed and the chunk continues. Never fails. */
int cas_chunker_next(cas_chunker *c, const void *buf, size_t len, size_t *ret_used);

/* At end of stream: returns true and writes the pending chunk's length when
 * bytes since the last cut remain (that chunk ends at EOF), false otherwise.
 * The chunker is then at a chunk boundary again. */
bool cas_chunker_finish(cas_chunker *c, uint64_t *ret_len);

/* Absolute stream offset after the bytes fed so far. */
uint64_t cas_chunker_offset(const cas_chunker *c);

/* Convenience for whole buffers: appends the lengths of all chunks of buf
 * (treated as a complete stream) to a malloc'd array. Returns 0 and writes
 * *ret_lens (caller frees) and *ret_n; -EINVAL, -ENOMEM. */
int cas_chunker_split(const cas_chunker_params *p, const cas_chunk_region *regions,
                      size_t n_regions, const void *buf, size_t len, uint32_t **ret_lens,
                      size_t *ret_n);

#endif
