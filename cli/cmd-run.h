/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_CMD_RUN_H
#define NVX_CLI_CMD_RUN_H
/*
 * Helpers shared by the runtime commands (run, quantize, eval), defined in
 * cmd-run.c: finding a model given as ID, NAME or FILE (refusing store
 * models that are not complete and verified) and mapping it, loading
 * the tokenizer that goes with it, building a model in its own block and
 * sampling text from it (what quantize and eval measure on).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"
#include "runtime/model.h"
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
 * checks a store model is complete, re-hashes it and, with
 * CLI_RUN_REQUIRE_TRUSTED in flags or the environment, checks it has a
 * trusted signature (cli/run-check.h), and maps it. Returns CLI_GO, or
 * prints one error line and returns the exit code. */
int cli_rt_open(cli_ctx *ctx, const char *text, unsigned flags, cli_rt_file *ret);

/* Unmaps and frees (zeroed f is fine). */
void cli_rt_close(cli_rt_file *f);

/* Loads the tokenizer: tokenizer_path (llama2.c tokenizer.bin, n_vocab
 * records) if given, else the GGUF vocabulary of f. Returns CLI_GO or prints
 * an error and returns the exit code. */
int cli_rt_tokenizer(const cli_rt_file *f, const char *tokenizer_path, uint32_t n_vocab,
                     rt_tokenizer **ret);

/* A model built in its own aligned block (arena mode over a borrowed file
 * buffer, weights read in place). */
typedef struct cli_rt_model {
    void *arena; /* malloc'd; free() it when done with m */
    rt_model *m;
} cli_rt_model;

/* Builds the model held in data[0..len) (which must outlive it) with the
 * given KV cache type. Returns 0 and *ret, or a negative errno as
 * rt_model_plan/rt_model_init (nothing to free then). */
int cli_rt_build(const void *data, size_t len, rt_kv_type kv, cli_rt_model *ret);

/* Samples about n positions from m at temperature 1 (seed): sequences from
 * BOS that end at BOS/EOS or the context end. Writes the tokens to t and
 * returns their count (<= n). Uses m's own state. */
size_t cli_rt_sample(rt_model *m, uint64_t seed, int32_t *t, size_t n);

#endif
