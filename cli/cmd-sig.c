/* SPDX-License-Identifier: MIT */
/*
 * nvx sig ls ID | sig rm ID KEY: the signatures a store holds for a model,
 * attached ones and those kept apart because their key is not trusted
 * (libcas/sig-store.h), and removing those of one key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/sigs.h"
#include "cli/store.h"
#include "libcas/sig.h"
#include "libcas/store.h"

int cli_sig_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_sig = {
    .name = "sig",
    .main = cli_sig_main,
    .usage = "sig ls ID | sig rm ID KEYID",
    .summary = "List a model's signatures (attached and kept apart), or remove those of one key",
};

typedef struct blob_list {
    struct {
        uint8_t *p;
        size_t len;
        bool pending;
    } v[64];
    size_t n;
    bool pending;
} blob_list;

/* Enough for CAS_STORE_SIG_PENDING_PER_MODEL kept apart and a few
 * publishers; more are listed as "more". */
static int
take(void *userdata, const void *blob, size_t len)
{
    blob_list *l = userdata;
    if (l->n == sizeof(l->v) / sizeof(l->v[0]))
        return 0;
    uint8_t *p = malloc(len);
    if (!p)
        return -ENOMEM;
    memcpy(p, blob, len);
    l->v[l->n].p = p;
    l->v[l->n].len = len;
    l->v[l->n++].pending = l->pending;
    return 0;
}

static int
load(cas_store *s, const uint8_t id[static CAS_HASH_LEN], blob_list *l)
{
    l->pending = false;
    int r = cas_store_sig_list(s, id, take, l);
    l->pending = true;
    if (r >= 0)
        r = cas_store_sig_list_pending(s, id, take, l);
    return r;
}

static void
release(blob_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].p);
}

static int
sig_ls(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *what)
{
    blob_list l = { .n = 0 };
    int r = load(ctx->store, id, &l);
    if (r < 0) {
        release(&l);
        return cli_fail_errno(r, NULL, "cannot list the signatures of %s", what);
    }
    for (size_t i = 0; i < l.n; i++) {
        cas_sig_info info;
        char kid[CAS_KEYID_HEX_SIZE] = "?";
        if (cas_sig_parse(l.v[i].p, l.v[i].len, &info) == 0)
            cas_keyid_format(info.keyid, kid);
        /* Kept-apart ones were never checked: say so rather than guess. */
        printf("%-16s  %s\n", kid, l.v[i].pending ? "kept apart (key not trusted)" : "attached");
    }
    if (l.n == 0 && !ctx->quiet)
        fprintf(stderr, "no signatures on %s: sign it with nvx sign ID\n", what);
    release(&l);
    return CLI_EXIT_OK;
}

static int
sig_rm(cli_ctx *ctx, const uint8_t id[static CAS_HASH_LEN], const char *what, const char *key)
{
    uint8_t keyid[CAS_KEYID_LEN];
    if (cas_keyid_parse(key, keyid) < 0)
        return cli_fail(CLI_EXIT_USAGE, "'%s' is not a key id: use the id nvx sig ls shows", key);
    blob_list l = { .n = 0 };
    int r = load(ctx->store, id, &l);
    size_t gone = 0;
    for (size_t i = 0; r >= 0 && i < l.n; i++) {
        cas_sig_info info;
        if (cas_sig_parse(l.v[i].p, l.v[i].len, &info) < 0 ||
            memcmp(info.keyid, keyid, CAS_KEYID_LEN) != 0)
            continue;
        r = cas_store_sig_del(ctx->store, id, l.v[i].p, l.v[i].len);
        if (r == 0)
            gone++;
        else if (r == -ENOENT)
            r = 0; /* removed meanwhile */
    }
    release(&l);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot remove the signatures of %s", what);
    if (gone == 0)
        return cli_fail(CLI_EXIT_NOTFOUND, "%s has no signature by key %s: see nvx sig ls %s", what,
                        key, what);
    if (!ctx->quiet)
        printf("removed %zu signature%s\n", gone, gone == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

int
cli_sig_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_sig, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_sig, npos, 2, 3)) != CLI_GO)
        return r;
    bool ls = strcmp(argv[0], "ls") == 0, rm = strcmp(argv[0], "rm") == 0;
    if (!ls && !rm)
        return cli_fail(CLI_EXIT_USAGE, "unknown sig command '%s': use ls or rm", argv[0]);
    if (ls && npos != 2)
        return cli_fail(CLI_EXIT_USAGE, "sig ls takes one model: nvx sig ls ID");
    if (rm && npos != 3)
        return cli_fail(CLI_EXIT_USAGE, "sig rm takes a model and a key id: nvx sig rm ID KEYID");
    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[1], id)) != CLI_GO)
        return r;
    return ls ? sig_ls(ctx, id, argv[1]) : sig_rm(ctx, id, argv[1], argv[2]);
}
