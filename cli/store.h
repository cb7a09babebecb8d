/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_STORE_H
#define NVX_CLI_STORE_H
/*
 * The CLI's view of the store: opening it from ctx->store_dir with clear
 * errors, and resolving what a user typed (full id, unique prefix of at
 * least 8 hex characters, or a local name) to a model id.
 */
#include "cli/cli.h"

/* Closes ctx->store if it is open (called by cli_main after the command). */
void cli_store_close(cli_ctx *ctx);

#endif
