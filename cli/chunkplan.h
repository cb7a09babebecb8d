/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CHUNKPLAN_H
#define NVX_CLI_CHUNKPLAN_H
/*
 * Tensor-aware chunking for `nvx add`: runtime/ parses the model file's
 * layout (from a prefix of the file, never the whole file), and this turns
 * it into the forced cut points and the tensor map that libcas's add takes:
 *
 *   [0, header_size)     header and metadata: their own chunks (CDC inside)
 *   each tensor          a chunk starts at its first byte; CDC inside, so a
 *                        large tensor is split into ~avg-sized chunks and
 *                        alignment padding stays with the tensor before it
 *
 * So a changed metadata string or one re-quantized tensor leaves every
 * other chunk identical (dedup across versions of a model).
 */
#include <stddef.h>
#include <stdint.h>

#include "libcas/chunker.h"
#include "libcas/manifest.h"

/* What the user asked for with --chunker. */
typedef enum cli_chunker_mode {
    CLI_CHUNKER_AUTO = 0, /* GGUF or llama2.c when detected, else CDC */
    CLI_CHUNKER_CDC,
    CLI_CHUNKER_GGUF,
    CLI_CHUNKER_LLAMA2C,
    CLI_CHUNKER_FIXED,
    _CLI_CHUNKER_MODE_MAX
} cli_chunker_mode;

/* NULL-terminated names in cli_chunker_mode order, for CLI_OPT_CHOICE. */
extern const char *const cli_chunker_mode_names[];

enum {
    CLI_PLAN_PREFIX_FIRST = 64 * 1024, /* first read of a file's prefix */
    CLI_PLAN_PREFIX_MAX = 256 << 20,   /* largest header+metadata accepted */
    CLI_PLAN_STREAM_MAX = 16 << 20,    /* bytes of a pipe read ahead to plan it */
};

typedef struct cli_chunk_plan {
    cas_chunker_kind kind;
    const char *format; /* "gguf", "llama2c" or "raw" (a literal) */
    cas_chunk_region *regions;
    size_t n_regions;
    cas_tensor_info *tensors; /* names point into names */
    size_t n_tensors;
    char *names;
} cli_chunk_plan;

/*
 * Builds the plan for the regular file open at fd (size bytes) by reading
 * prefixes with pread (the file offset is not moved). AUTO falls back to
 * whole-file CDC when no format is recognised, but a file that starts with
 * the GGUF magic and does not parse is an error. Returns 0 and fills *ret
 * (free with cli_chunk_plan_free); -EBADMSG (not a valid file of the asked
 * format; a reason goes to why[0..why_cap)), -EMSGSIZE (more tensors or
 * metadata than the manifest or CLI_PLAN_PREFIX_MAX allow), -ENOMEM, -errno.
 */
int cli_chunk_plan_make(int fd, uint64_t size, cli_chunker_mode mode, cli_chunk_plan *ret,
                        char *why, size_t why_cap);

/*
 * Same over a buffer holding the first len bytes of a file of file_size
 * bytes. Returns -EAGAIN with *ret_need when more prefix is needed. Used by
 * cli_chunk_plan_make and by the tests.
 */
int cli_chunk_plan_from_buf(const void *buf, size_t len, uint64_t file_size, cli_chunker_mode mode,
                            cli_chunk_plan *ret, uint64_t *ret_need, char *why, size_t why_cap);

/*
 * Builds the plan for a stream (pipe) open at fd by reading its first
 * CLI_PLAN_STREAM_MAX bytes (or all of it, when shorter), so a model piped
 * in gets the same plan, and id, as the same file: a stream that ends
 * within them is planned exactly like a file of that size; a longer one as
 * GGUF when it starts with the magic (header and metadata within those
 * bytes), else by content (AUTO; llama2.c, whose format is its size, is
 * refused). The bytes read are handed back in *ret_prefix (malloc'd,
 * caller frees; give them to cas_store_add_opts.prefix). Errors as
 * cli_chunk_plan_make.
 */
int cli_chunk_plan_stream(int fd, cli_chunker_mode mode, cli_chunk_plan *ret, uint8_t **ret_prefix,
                          size_t *ret_prefix_len, char *why, size_t why_cap);

/* Plan for a stream of unknown layout (CDC/FIXED modes). */
void cli_chunk_plan_plain(cli_chunker_mode mode, cli_chunk_plan *ret);

void cli_chunk_plan_free(cli_chunk_plan *p);

#endif
