/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CMD_ADD_H
#define NVX_CLI_CMD_ADD_H
/*
 * The add path of `nvx add`, shared with `nvx import` (defined in
 * cmd-add.c): open a file, plan its chunking, stream it into the store
 * (memory stays bounded whatever the file's size: libcas's add pipeline),
 * optionally checking its SHA-256 in the same read.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/chunkplan.h"
#include "cli/cli.h"
#include "libcas/store.h"

enum {
    CLI_SHA256_LEN = 32,
    CLI_SHA256_HEX_LEN = 64,
};

typedef struct cli_add_req {
    const char *path;                 /* the file; "-" is stdin */
    const char *label;                /* how messages name it; NULL: path */
    cli_chunker_mode mode;            /* CLI_CHUNKER_AUTO for imports */
    const cas_chunker_params *params; /* NULL: the default sizes */
    bool pin;
    const char *name; /* local name to set, or NULL */
    /* When not NULL, the SHA-256 the bytes must have: computed while the
     * add reads them, and a mismatch adds nothing (CLI_EXIT_CORRUPT). */
    const uint8_t *sha256;
} cli_add_req;

typedef struct cli_add_result {
    uint8_t id[CAS_HASH_LEN];
    bool is_new; /* false: the store held the model already */
    cas_model_info info;
    cas_chunker_kind kind;
    const char *format; /* "gguf", "llama2c" or "raw" (a literal) */
    size_t n_tensors;
} cli_add_result;

/* Adds req->path to the store (opened, or created, through ctx) and writes
 * *ret. Returns CLI_GO, or prints one error line naming the file and what
 * to do and returns the exit code. Warns when req->name moves from another
 * model. */
int cli_add_file(cli_ctx *ctx, const cli_add_req *req, cli_add_result *ret);

#endif
