/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_STORE_H
#define NVX_CLI_STORE_H
/*
 * The CLI's view of the store: opening it from ctx->store_dir with clear
 * errors, and resolving what a user typed (full id, unique prefix of at
 * least 8 hex characters, or a local name) to a model id.
 *
 * Like cli_parse(), these return CLI_GO on success, or print one error line
 * and return the exit code the command should return.
 */
#include <stdint.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "libcas/hash.h"

/* How cli_store_open treats a store that does not exist yet. */
typedef enum cli_store_mode {
    CLI_STORE_EXISTING = 0,  /* an error (false: the old bool argument) */
    CLI_STORE_CREATE = 1,    /* made (mode 0700, parents too) (true) */
    CLI_STORE_IF_EXISTS = 2, /* CLI_GO with *ret NULL: nothing to list */
} cli_store_mode;

/* Opens ctx->store (once; later calls reuse it) and writes it to *ret.
 * "Does not exist" means a missing or empty directory. */
int cli_store_open(cli_ctx *ctx, cli_store_mode mode, cas_store **ret);

/* Closes ctx->store if it is open (called by cli_main after the command). */
void cli_store_close(cli_ctx *ctx);

/* Resolves text to a model id: a full id, a local name, or a unique id
 * prefix (in that order). Errors name text and say what to do. */
int cli_resolve(cli_ctx *ctx, const char *text, uint8_t ret_id[static CAS_HASH_LEN]);

/* Checks a local name a person gives to nvx tag: 1 to
 * CAS_STORE_NAME_MAX printable ASCII bytes without blanks, not starting
 * with '-' (it would read as an option), and not CAS_HASH_PREFIX_MIN or
 * more hex digits only (cli_resolve tries names before id prefixes, so such
 * a name would hide the models whose ids start with it). Returns CLI_GO or
 * prints why and returns CLI_EXIT_USAGE. */
int cli_name_check(const char *name);

/* Writes the model's local names, comma-separated, into buf (cap bytes;
 * "" when none). Returns 0 or a negative errno. */
int cli_model_names(cas_store *s, const uint8_t id[static CAS_HASH_LEN], char *buf, size_t cap);

/* Emits the model's local names as a JSON array of strings. Returns 0 or a
 * negative errno (the array is closed either way). */
int cli_model_names_json(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cli_json *j);

/* Adapter from libcas progress callbacks to cli_progress (userdata is a
 * cli_progress *). Always returns 0. */
int cli_progress_cas(void *userdata, uint64_t done, uint64_t total);

#endif
