/* SPDX-License-Identifier: MIT */
/*
 * nvx ls: one line per model (or a JSON array).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_ls_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_ls = {
    .name = "ls",
    .main = cli_ls_main,
    .usage = "ls [--json]",
    .summary = "List the models in the store",
};

typedef struct ls_state {
    cli_ctx *ctx;
    cas_store *s;
    cli_json j;
    uint64_t n;
} ls_state;

static void
json_model(ls_state *st, const cas_model_info *m, const char *hex)
{
    cli_json *j = &st->j;
    cli_json_obj_begin(j);
    cli_json_kv_str(j, "id", hex);
    cli_json_kv_u64(j, "size", m->size);
    cli_json_kv_u64(j, "chunks", m->n_chunks);
    cli_json_kv_u64(j, "present", m->n_present);
    cli_json_kv_str(j, "state", m->state == CAS_MODEL_COMPLETE ? "complete" : "partial");
    cli_json_kv_bool(j, "pinned", m->pinned);
    cli_json_kv_u64(j, "signatures", m->n_sigs);
    cli_json_kv_u64(j, "added", m->added);
    cli_json_key(j, "names");
    cli_model_names_json(st->s, m->id, j);
    cli_json_obj_end(j);
}

static int
print_model(void *userdata, const cas_model_info *m)
{
    ls_state *st = userdata;
    char hex[CAS_HASH_HEX_LEN + 1], names[1024], sz[16], state[48];
    cas_hash_to_hex(m->id, hex);
    if (cli_model_names(st->s, m->id, names, sizeof(names)) < 0)
        names[0] = '\0';
    st->n++;
    if (st->ctx->json) {
        json_model(st, m, hex);
        return 0;
    }
    if (st->ctx->quiet) {
        printf("%s\n", hex);
        return 0;
    }
    if (m->state == CAS_MODEL_COMPLETE)
        snprintf(state, sizeof(state), "complete");
    else
        snprintf(state, sizeof(state), "partial %llu/%llu", (unsigned long long)m->n_present,
                 (unsigned long long)m->n_chunks);
    printf("%s  %10s  %-6s  %-8s  ", hex, cli_fmt_bytes(m->size, sz), m->pinned ? "pinned" : "-",
           state);
    cli_print_escaped_str(stdout, names[0] ? names : "-");
    putchar('\n');
    return 0;
}

int
cli_ls_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_ls, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_ls, npos, 0, 0)) != CLI_GO)
        return r;
    ls_state st = { .ctx = ctx };
    r = cli_store_open(ctx, CLI_STORE_IF_EXISTS, &st.s);
    if (r != CLI_GO)
        return r;
    cli_json_init(&st.j, stdout);
    if (ctx->json)
        cli_json_arr_begin(&st.j);
    if (st.s) {
        int lr = cas_store_list(st.s, print_model, &st);
        if (lr < 0) {
            if (ctx->json)
                cli_json_arr_end(&st.j);
            return cli_fail_errno(lr, "run nvx verify --all", "cannot list the store");
        }
    }
    if (ctx->json) {
        cli_json_arr_end(&st.j);
        return cli_json_finish(&st.j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    return CLI_EXIT_OK;
}
