/* SPDX-License-Identifier: MIT */
/*
 * nvx repair ID|NAME [FILE]: finds the chunks of a model that do not hash
 * to their ids (or are missing), marks them missing, then takes them from
 * FILE (a file with the same bytes: read at the manifest's offsets and
 * re-hashed) or, without FILE, fetches them from peers through the running
 * nvxd (the model is then a partial model, which a fetch resumes).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_repair_main(cli_ctx *ctx, int argc, char **argv);
int cli_fetch_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_repair = {
    .name = "repair",
    .main = cli_repair_main,
    .usage = "repair ID|NAME [FILE]",
    .summary = "Restore corrupt or missing chunks from FILE or, through nvxd, from peers",
};

typedef struct bad_list {
    uint64_t *idx;
    size_t n, cap;
    bool all; /* the data file is missing: every chunk */
    int oom;
} bad_list;

static int
on_problem(void *userdata, const cas_store_problem *p)
{
    bad_list *b = userdata;
    if (p->chunk_index == CAS_STORE_NO_CHUNK) {
        b->all = b->all || p->error == -ENOENT;
        return 0;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint64_t *ni = realloc(b->idx, cap * sizeof(*ni));
        if (!ni)
            return b->oom = -ENOMEM;
        b->idx = ni;
        b->cap = cap;
    }
    b->idx[b->n++] = p->chunk_index;
    return 0;
}

/* Fills the forgotten chunks from path; returns the exit code. */
static int
from_file(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const char *hex, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail_errno(-errno, NULL, "cannot open %s", path);
    cas_partial *p = NULL;
    uint64_t got = 0;
    int r = cas_partial_open(s, id, &p);
    if (r == 0)
        r = cas_partial_fill_fd(p, fd, &got);
    if (r == 0)
        r = cas_partial_commit(p);
    uint64_t left = r == 0 ? cas_partial_n_chunks(p) - cas_partial_n_present(p) : 0;
    if (r == 0 && left == 0)
        r = cas_partial_complete(p);
    cas_partial_free(p);
    close(fd);
    if (r < 0)
        return cli_fail_errno(r, NULL, "repair of %.16s from %s stopped", hex, path);
    if (left > 0)
        return cli_fail(CLI_EXIT_PARTIAL,
                        "%s holds %" PRIu64 " of the missing chunks, %" PRIu64
                        " are still missing: run nvx repair %.16s without FILE to fetch them",
                        path, got, left, hex);
    printf("repaired %s  %" PRIu64 " chunk%s from %s\n", hex, got, got == 1 ? "" : "s", path);
    return CLI_EXIT_OK;
}

int
cli_repair_main(cli_ctx *ctx, int argc, char **argv)
{
    const cli_opt opts[] = { CLI_OPT_END };
    int npos, r = cli_parse(ctx, &cli_cmd_repair, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_repair, npos, 1, 2)) != CLI_GO)
        return r;
    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    cas_store *s = ctx->store;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    bad_list b = { 0 };
    cas_store_verify_opts o = { .problem = on_problem, .all_chunks = true, .userdata = &b };
    int vr = cas_store_verify(s, id, &o);
    if (b.oom || (vr < 0 && vr != -EBADMSG)) {
        r = cli_fail_errno(b.oom ? b.oom : vr, NULL, "verify of %.16s stopped", hex);
        goto out;
    }
    cas_model_info mi;
    if ((r = cas_store_model_info(s, id, &mi)) < 0) {
        r = cli_fail_errno(r, NULL, "cannot read model %.16s", hex);
        goto out;
    }
    if (vr == 0 && b.n == 0 && !b.all && mi.state == CAS_MODEL_COMPLETE) {
        printf("ok      %s  nothing to repair\n", hex);
        r = CLI_EXIT_OK;
        goto out;
    }
    if (b.all) {
        /* No data file: every chunk is to be restored. */
        free(b.idx);
        b.idx = malloc((mi.n_chunks ? mi.n_chunks : 1) * sizeof(*b.idx));
        if (!b.idx) {
            r = cli_fail_errno(-ENOMEM, NULL, "repair of %.16s", hex);
            goto out;
        }
        for (uint64_t i = 0; i < mi.n_chunks; i++)
            b.idx[i] = i;
        b.n = mi.n_chunks;
    }
    /* Without FILE the chunks come through nvxd: say so before the store
     * changes, rather than marking chunks missing and then failing on the
     * connection with advice that leaves out FILE. */
    if (npos == 1 && !cli_daemon_running(ctx)) {
        r = cli_fail(CLI_EXIT_FAIL,
                     "cannot fetch the bad chunks of %.16s: no nvxd serves %s: start `nvxd "
                     "--store %s`, or pass a file with the model's bytes: nvx repair %.16s FILE",
                     hex, ctx->store_dir, ctx->store_dir, hex);
        goto out;
    }
    r = cas_store_chunks_forget(s, id, b.idx, b.n);
    if (r < 0) {
        r = cli_fail_errno(r, NULL, "cannot mark the bad chunks of %.16s missing", hex);
        goto out;
    }
    if (npos == 2) {
        r = from_file(s, id, hex, argv[1]);
    } else {
        /* A partial model is what a fetch resumes: nvxd asks peers for the
         * missing chunks only. */
        char *fargv[] = { "fetch", hex, NULL };
        r = cli_fetch_main(ctx, 2, fargv);
    }
out:
    free(b.idx);
    return r;
}
