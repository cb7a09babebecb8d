/* SPDX-License-Identifier: MIT */
/*
 * nvx ls: a table of the models (a header row, then one row per model), or a
 * JSON array. What a row shows of the model's contents comes from its data
 * file's header (cli/modeldesc.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/modeldesc.h"
#include "cli/progress.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_ls_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_ls = {
    .name = "ls",
    .main = cli_ls_main,
    .usage = "ls [--json]",
    .summary = "List the models: names, id, size, architecture, quantization, state, signatures",
};

enum {
    LS_SHORT_ID = 12,    /* hex digits shown (a unique prefix in any store we expect) */
    LS_NAMES_MAX = 1024, /* bytes of the names column before escaping */
    LS_COLS = 7,
};

/* One row of the table, as printed. */
typedef struct ls_row {
    char names[4 * LS_NAMES_MAX + 1]; /* room for cli_escape's worst case */
    char cell[LS_COLS][48];           /* the other columns (cell[0] unused) */
} ls_row;

static const char *
cell(const ls_row *row, size_t c)
{
    return c == 0 ? row->names : row->cell[c];
}

typedef struct ls_state {
    cli_ctx *ctx;
    cas_store *s;
    cli_json j;
    ls_row *rows;
    size_t n, cap;
} ls_state;

static const char *const ls_head[LS_COLS] = {
    "NAME", "ID", "SIZE", "ARCH", "QUANT", "STATE", "SIGS"
};

static void
json_model(ls_state *st, const cas_model_info *m, const char *hex, const cli_modeldesc *d)
{
    cli_json *j = &st->j;
    cli_json_obj_begin(j);
    cli_json_kv_str(j, "id", hex);
    cli_json_key(j, "names");
    cli_model_names_json(st->s, m->id, j);
    cli_json_kv_u64(j, "size", m->size);
    cli_json_kv_u64(j, "chunks", m->n_chunks);
    cli_json_kv_u64(j, "present", m->n_present);
    cli_json_kv_str(j, "state", m->state == CAS_MODEL_COMPLETE ? "complete" : "partial");
    cli_json_kv_bool(j, "pinned", m->pinned);
    cli_json_kv_u64(j, "signatures", m->n_sigs);
    cli_json_kv_u64(j, "added", m->added);
    cli_modeldesc_json(j, d);
    cli_json_obj_end(j);
}

static int
add_row(ls_state *st, const cas_model_info *m, const char *hex, const cli_modeldesc *d)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 8;
        ls_row *nr = realloc(st->rows, cap * sizeof(*nr));
        if (!nr)
            return -ENOMEM;
        st->rows = nr;
        st->cap = cap;
    }
    ls_row *row = &st->rows[st->n++];
    char names[LS_NAMES_MAX], sz[16];
    if (cli_model_names(st->s, m->id, names, sizeof(names)) < 0 || !names[0])
        snprintf(names, sizeof(names), "-");
    cli_escape(names, strlen(names), row->names, sizeof(row->names));
    snprintf(row->cell[1], sizeof(row->cell[1]), "%.*s", LS_SHORT_ID, hex);
    snprintf(row->cell[2], sizeof(row->cell[2]), "%s", cli_fmt_bytes(m->size, sz));
    snprintf(row->cell[3], sizeof(row->cell[3]), "%s", d->known && d->arch[0] ? d->arch : "-");
    snprintf(row->cell[4], sizeof(row->cell[4]), "%s", cli_modeldesc_quant(d));
    if (m->state == CAS_MODEL_COMPLETE)
        snprintf(row->cell[5], sizeof(row->cell[5]), "%s", m->pinned ? "pinned" : "unpinned");
    else
        snprintf(row->cell[5], sizeof(row->cell[5]), "partial %llu/%llu%s",
                 (unsigned long long)m->n_present, (unsigned long long)m->n_chunks,
                 m->pinned ? " pinned" : "");
    snprintf(row->cell[6], sizeof(row->cell[6]), "%llu", (unsigned long long)m->n_sigs);
    return 0;
}

static int
list_model(void *userdata, const cas_model_info *m)
{
    ls_state *st = userdata;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(m->id, hex);
    if (st->ctx->quiet && !st->ctx->json) {
        printf("%s\n", hex);
        return 0;
    }
    cli_modeldesc d;
    cli_modeldesc_get(st->s, m->id, &d); /* unknown contents show as "-" */
    if (st->ctx->json) {
        json_model(st, m, hex, &d);
        return 0;
    }
    return add_row(st, m, hex, &d);
}

/* Display width of an escaped cell: code points (escapes are ASCII). */
static size_t
width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void
print_table(const ls_state *st)
{
    size_t w[LS_COLS];
    for (size_t c = 0; c < LS_COLS; c++) {
        w[c] = strlen(ls_head[c]);
        for (size_t i = 0; i < st->n; i++)
            if (width(cell(&st->rows[i], c)) > w[c])
                w[c] = width(cell(&st->rows[i], c));
    }
    for (size_t i = 0; i <= st->n; i++) {
        for (size_t c = 0; c < LS_COLS; c++) {
            const char *s = i == 0 ? ls_head[c] : cell(&st->rows[i - 1], c);
            bool last = c + 1 == LS_COLS;
            /* SIZE and SIGS are numbers: right-aligned. */
            bool right = c == 2 || c == 6;
            size_t pad = w[c] - width(s);
            printf("%*s%s%*s%s", right ? (int)pad : 0, "", s, right || last ? 0 : (int)pad, "",
                   last ? "\n" : "  ");
        }
    }
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
        int lr = cas_store_list(st.s, list_model, &st);
        if (lr < 0) {
            free(st.rows);
            if (ctx->json)
                cli_json_arr_end(&st.j);
            return cli_fail_errno(lr, "run nvx verify --all", "cannot list the store");
        }
    }
    if (ctx->json) {
        cli_json_arr_end(&st.j);
        return cli_json_finish(&st.j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        print_table(&st);
    free(st.rows);
    return CLI_EXIT_OK;
}
