/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CMD_RUN_H
#define NVX_CLI_CMD_RUN_H
/*
 * Helpers shared by the runtime commands (run, quantize, eval), defined in
 * cmd-run.c: finding a model given as ID, NAME or FILE (refusing store
 * models that are not complete and verified) and mapping it, and loading
 * the tokenizer that goes with it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"
#include "runtime/tokenizer.h"

/* A model file mapped read-only. */
typedef struct cli_rt_file {
    char *path;       /* malloc'd: the file, or the store's data file */
    const char *what; /* what the user typed (borrowed), for messages */
    const uint8_t *data;
    size_t len;
    bool from_store;
} cli_rt_file;

/* Resolves text (an existing file path first, else a store id/prefix/name),
 * checks a store model is complete (and, with verify, re-hashes it), and
 * maps it. Returns CLI_GO, or prints one error line and returns the exit
 * code. */
int cli_rt_open(cli_ctx *ctx, const char *text, bool verify, cli_rt_file *ret);

/* Unmaps and frees (zeroed f is fine). */
void cli_rt_close(cli_rt_file *f);

/* Loads the tokenizer: tokenizer_path (llama2.c tokenizer.bin, n_vocab
 * records) if given, else the GGUF vocabulary of f. Returns CLI_GO or prints
 * an error and returns the exit code. */
int cli_rt_tokenizer(const cli_rt_file *f, const char *tokenizer_path, uint32_t n_vocab,
                     rt_tokenizer **ret);

#endif
