/* SPDX-License-Identifier: MIT */
/*
 * nvx tag ID NAME, nvx untag NAME: local names for models (the store's name
 * table; nvx add --name and a fetch by PUBLISHER/NAME set them too). A name
 * names one model; a model may have several names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_tag_main(cli_ctx *ctx, int argc, char **argv);
int cli_untag_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_tag = {
    .name = "tag",
    .main = cli_tag_main,
    .usage = "tag ID|NAME NEWNAME [--force]",
    .summary = "Give a model a local name (nvx run NEWNAME, nvx ls)",
};

const cli_command cli_cmd_untag = {
    .name = "untag",
    .main = cli_untag_main,
    .usage = "untag NAME",
    .summary = "Remove a local name (the model stays)",
};

static int
done(cli_ctx *ctx, const char *verb, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "name", name);
        cli_json_kv_str(&j, "id", hex);
        cli_json_kv_str(&j, "action", verb);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        printf("%s %s %s\n", verb, name, hex);
    return CLI_EXIT_OK;
}

int
cli_tag_main(cli_ctx *ctx, int argc, char **argv)
{
    bool force = false;
    const cli_opt opts[] = {
        { .lname = "force",
          .sname = 'f',
          .type = CLI_OPT_FLAG,
          .dest = &force,
          .help = "move the name when it names another model" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_tag, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_tag, npos, 2, 2)) != CLI_GO)
        return r;
    const char *name = argv[1];
    if ((r = cli_name_check(name)) != CLI_GO)
        return r;
    uint8_t id[CAS_HASH_LEN], had[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    r = cas_store_name_get(ctx->store, name, had);
    if (r == 0 && memcmp(had, id, CAS_HASH_LEN) != 0 && !force) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(had, hex);
        return cli_fail(CLI_EXIT_FAIL,
                        "the name '%s' already names %.16s: nvx untag it first, or pass --force "
                        "to move it",
                        name, hex);
    }
    if (r < 0 && r != -ENOENT)
        return cli_fail_errno(r, "run nvx verify --all", "cannot look up the name '%s'", name);
    r = cas_store_name_set(ctx->store, name, id);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot name %s '%s'", argv[0], name);
    return done(ctx, "tagged", name, id);
}

int
cli_untag_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_untag, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_untag, npos, 1, 1)) != CLI_GO)
        return r;
    cas_store *s;
    if ((r = cli_store_open(ctx, CLI_STORE_EXISTING, &s)) != CLI_GO)
        return r;
    uint8_t id[CAS_HASH_LEN];
    r = cas_store_name_get(s, argv[0], id);
    if (r == 0)
        r = cas_store_name_del(s, argv[0]);
    if (r == -ENOENT)
        return cli_fail(CLI_EXIT_NOTFOUND, "no local name '%s': nvx ls shows the names", argv[0]);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot remove the name '%s'", argv[0]);
    return done(ctx, "untagged", argv[0], id);
}
