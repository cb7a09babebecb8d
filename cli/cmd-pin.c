/* SPDX-License-Identifier: MIT */
/*
 * nvx pin|unpin|rm ID: small state changes on one model.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_pin_main(cli_ctx *ctx, int argc, char **argv);
int cli_unpin_main(cli_ctx *ctx, int argc, char **argv);
int cli_rm_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_pin = {
    .name = "pin",
    .main = cli_pin_main,
    .usage = "pin ID|NAME",
    .summary = "Pin a model so that gc keeps it",
};

const cli_command cli_cmd_unpin = {
    .name = "unpin",
    .main = cli_unpin_main,
    .usage = "unpin ID|NAME",
    .summary = "Unpin a model (gc may then remove it)",
};

const cli_command cli_cmd_rm = {
    .name = "rm",
    .main = cli_rm_main,
    .usage = "rm ID|NAME [--force]",
    .summary = "Remove a model from the store (--force: even when pinned)",
};

static int
done(cli_ctx *ctx, const char *verb, const uint8_t id[CAS_HASH_LEN])
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "id", hex);
        cli_json_kv_str(&j, "action", verb);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        printf("%s %s\n", verb, hex);
    return CLI_EXIT_OK;
}

/* Shared front half: parse, one argument, resolve. */
static int
one_model(cli_ctx *ctx, const cli_command *cmd, const cli_opt *opts, int argc, char **argv,
          uint8_t id[CAS_HASH_LEN])
{
    int npos, r = cli_parse(ctx, cmd, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(cmd, npos, 1, 1)) != CLI_GO)
        return r;
    return cli_resolve(ctx, argv[0], id);
}

int
cli_pin_main(cli_ctx *ctx, int argc, char **argv)
{
    uint8_t id[CAS_HASH_LEN];
    int r = one_model(ctx, &cli_cmd_pin, NULL, argc, argv, id);
    if (r != CLI_GO)
        return r;
    r = cas_store_pin(ctx->store, id);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot pin %s", argv[0]);
    return done(ctx, "pinned", id);
}

int
cli_unpin_main(cli_ctx *ctx, int argc, char **argv)
{
    uint8_t id[CAS_HASH_LEN];
    int r = one_model(ctx, &cli_cmd_unpin, NULL, argc, argv, id);
    if (r != CLI_GO)
        return r;
    r = cas_store_unpin(ctx->store, id);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot unpin %s", argv[0]);
    return done(ctx, "unpinned", id);
}

int
cli_rm_main(cli_ctx *ctx, int argc, char **argv)
{
    bool force = false;
    const cli_opt opts[] = {
        { .lname = "force",
          .sname = 'f',
          .type = CLI_OPT_FLAG,
          .dest = &force,
          .help = "remove even a pinned model" },
        CLI_OPT_END,
    };
    uint8_t id[CAS_HASH_LEN];
    int r = one_model(ctx, &cli_cmd_rm, opts, argc, argv, id);
    if (r != CLI_GO)
        return r;
    r = cas_store_rm(ctx->store, id, force ? CAS_RM_FORCE : 0);
    if (r == -EBUSY)
        return cli_fail(CLI_EXIT_FAIL, "%s is pinned: unpin it first or use nvx rm --force",
                        argv[0]);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot remove %s", argv[0]);
    return done(ctx, "removed", id);
}
