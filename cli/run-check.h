/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_RUN_CHECK_H
#define NVX_CLI_RUN_CHECK_H
/*
 * What the runtime commands (run, eval, quantize) check before they map a
 * store model: "run only what verifies".
 *
 * - Every chunk is re-hashed against the manifest with the store's verify
 *   path (libcas, several threads) on every run, whatever the model's
 *   size: a complete model's chunks were verified when they entered the
 *   store, but the data file can rot or be changed since, and the store
 *   keeps no record that would prove otherwise (a fetch's verified bits
 *   are dropped when the model completes). A bad chunk is named.
 * - With CLI_RUN_REQUIRE_TRUSTED (nvx run --require-trusted, or
 *   NVX_REQUIRE_TRUSTED=1 in the environment) the model must carry a
 *   signature that verifies with a key of the store's keyring (cli/sigs.h);
 *   others are refused, and so are plain files (nothing signs them).
 */
#include <stdbool.h>
#include <stdint.h>

#include "cli/cli.h"
#include "libcas/hash.h"
#include "libcas/run-policy.h"

enum {
    CLI_RUN_REQUIRE_TRUSTED = 1u << 0,
};

/* The environment setting that turns CLI_RUN_REQUIRE_TRUSTED on ("1",
 * "yes" or "true"; anything else, or unset, leaves it off). */
#define CLI_RUN_REQUIRE_TRUSTED_ENV CAS_RUN_REQUIRE_TRUSTED_ENV

/* Flags from the environment, ORed into the caller's. */
unsigned cli_run_check_env(void);

/* Checks store model id (text is what the user typed, for messages) as
 * above. Returns CLI_GO or prints one error line and returns the exit code
 * (CLI_EXIT_CORRUPT for a bad chunk, CLI_EXIT_UNTRUSTED without a trusted
 * signature). */
int cli_run_check(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *text,
                  unsigned flags);

#endif
