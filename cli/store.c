/* SPDX-License-Identifier: MIT */
#include "cli/store.h"

#include <stddef.h>

void
cli_store_close(cli_ctx *ctx)
{
    ctx->store = NULL;
}
