/* SPDX-License-Identifier: MIT */
/*
 * nvx gc [--dry-run] [--max-bytes SIZE]: remove unpinned models, oldest
 * first (all of them, or only until the store fits SIZE).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_gc_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_gc = {
    .name = "gc",
    .main = cli_gc_main,
    .usage = "gc [--dry-run] [--max-bytes SIZE]",
    .summary = "Remove unpinned models (oldest first; --max-bytes: only until the store fits)",
};

typedef struct gc_state {
    cli_ctx *ctx;
    cli_json *j;
    bool dry;
} gc_state;

static int
one(void *userdata, const cas_model_info *m)
{
    gc_state *st = userdata;
    char hex[CAS_HASH_HEX_LEN + 1], sz[16];
    cas_hash_to_hex(m->id, hex);
    if (st->ctx->json) {
        cli_json_obj_begin(st->j);
        cli_json_kv_str(st->j, "id", hex);
        cli_json_kv_u64(st->j, "size", m->size);
        cli_json_obj_end(st->j);
    } else if (!st->ctx->quiet) {
        printf("%s %s  %s\n", st->dry ? "would remove" : "removed", hex,
               cli_fmt_bytes(m->size, sz));
    }
    return 0;
}

int
cli_gc_main(cli_ctx *ctx, int argc, char **argv)
{
    bool dry = false, max_seen = false;
    uint64_t max_bytes = 0;
    const cli_opt opts[] = {
        { .lname = "max-bytes",
          .type = CLI_OPT_SIZE,
          .dest = &max_bytes,
          .metavar = "SIZE",
          .min = 1,
          .max = UINT64_MAX,
          .seen = &max_seen,
          .help = "remove unpinned models, oldest first, only until all models take at most "
                  "SIZE bytes (K, M, G suffixes); pinned and fetched models stay" },
        { .lname = "dry-run",
          .sname = 'n',
          .type = CLI_OPT_FLAG,
          .dest = &dry,
          .help = "show what would be removed, remove nothing" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_gc, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_gc, npos, 0, 0)) != CLI_GO)
        return r;
    cas_store *s;
    if ((r = cli_store_open(ctx, CLI_STORE_EXISTING, &s)) != CLI_GO)
        return r;
    cli_json j;
    cli_json_init(&j, stdout);
    gc_state st = { ctx, &j, dry };
    if (ctx->json) {
        cli_json_obj_begin(&j);
        cli_json_kv_bool(&j, "dry_run", dry);
        cli_json_key(&j, "models");
        cli_json_arr_begin(&j);
    }
    cas_gc_result res = { 0 };
    unsigned flags = dry ? CAS_GC_DRY_RUN : 0;
    r = max_seen ? cas_store_gc_to(s, max_bytes, flags, one, &st, &res)
                 : cas_store_gc(s, flags, one, &st, &res);
    if (ctx->json) {
        cli_json_arr_end(&j);
        cli_json_kv_u64(&j, "removed", res.n_models);
        cli_json_kv_u64(&j, "bytes", res.bytes);
        cli_json_obj_end(&j);
        if (cli_json_finish(&j) < 0 && r >= 0)
            return CLI_EXIT_FAIL;
    }
    if (r < 0)
        return cli_fail_errno(r, NULL, "gc stopped");
    if (!ctx->json && !ctx->quiet) {
        char sz[16];
        printf("%s %llu model%s, %s\n", dry ? "would free" : "freed",
               (unsigned long long)res.n_models, res.n_models == 1 ? "" : "s",
               cli_fmt_bytes(res.bytes, sz));
    }
    return CLI_EXIT_OK;
}
