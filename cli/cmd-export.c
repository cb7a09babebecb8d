/* SPDX-License-Identifier: MIT */
/*
 * nvx export ID -o FILE and nvx cat ID: the model's bytes, re-hashed chunk
 * by chunk while they are written. export never leaves a partial FILE
 * (libcas writes a temp file beside it and renames it when complete).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/stats.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_export_main(cli_ctx *ctx, int argc, char **argv);
int cli_cat_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_export = {
    .name = "export",
    .main = cli_export_main,
    .usage = "export ID|NAME -o FILE",
    .summary = "Write a verified, bit-identical copy of a model to FILE",
};

const cli_command cli_cmd_cat = {
    .name = "cat",
    .main = cli_cat_main,
    .usage = "cat ID|NAME",
    .summary = "Write a model's verified bytes to stdout",
};

/* Reports a failed export; names the bad chunk when there is one. */
static int
export_error(int r, const char *what, const char *dest, const cas_store_problem *pb,
             const char *after)
{
    if (r == -EBADMSG && pb->chunk_index != CAS_STORE_NO_CHUNK)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s is corrupt: chunk %llu (offset %llu, %u bytes) does not match "
                        "its id; %s: run nvx verify %s, then re-add or fetch the model",
                        what, (unsigned long long)pb->chunk_index, (unsigned long long)pb->offset,
                        pb->len, after, what);
    if (r == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s is damaged (data file or manifest); %s: run nvx verify %s", what,
                        after, what);
    if (r == -EAGAIN)
        return cli_fail(CLI_EXIT_FAIL, "model %s is not complete yet: fetch it first", what);
    if (r == -ENOSPC)
        return cli_fail_errno(r, "free space and try again", "cannot export %s to %s", what, dest);
    return cli_fail_errno(r, NULL, "cannot export %s to %s", what, dest);
}

static void
print_done(cli_ctx *ctx, const uint8_t id[CAS_HASH_LEN], const char *out)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "id", hex);
        cli_json_kv_str(&j, "file", out);
        cli_json_kv_bool(&j, "verified", true);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
    } else if (!ctx->quiet) {
        fputs("exported ", stdout);
        fputs(hex, stdout);
        fputs(" to ", stdout);
        cli_print_escaped_str(stdout, out);
        fputc('\n', stdout);
    }
}

static uint64_t
model_size(cas_store *s, const uint8_t id[CAS_HASH_LEN])
{
    cas_model_info mi;
    return cas_store_model_info(s, id, &mi) == 0 ? mi.size : 0;
}

/* Writes the model to stdout (cat, export -o -). libcas writes a regular
 * file with pwrite from offset 0, so a non-empty file (nvx cat ID >> FILE)
 * would be overwritten from its start: refuse that. */
static int
to_stdout(cli_ctx *ctx, const char *what)
{
    struct stat st;
    if (isatty(STDOUT_FILENO))
        return cli_fail(CLI_EXIT_USAGE, "stdout is a terminal: redirect it (nvx cat ID > FILE) "
                                        "or use nvx export ID -o FILE");
    if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_size != 0 || lseek(STDOUT_FILENO, 0, SEEK_CUR) != 0))
        return cli_fail(CLI_EXIT_USAGE, "stdout is a non-empty file: write to an empty file or a "
                                        "pipe, or use nvx export ID -o FILE");
    uint8_t id[CAS_HASH_LEN];
    int r = cli_resolve(ctx, what, id);
    if (r != CLI_GO)
        return r;
    fflush(stdout);
    cas_store_problem pb = { .chunk_index = CAS_STORE_NO_CHUNK };
    r = cas_store_export_fd(ctx->store, id, STDOUT_FILENO, NULL, NULL, &pb);
    if (r < 0)
        return export_error(r, what, "stdout", &pb, "the output is incomplete");
    return CLI_EXIT_OK;
}

int
cli_export_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL;
    const cli_opt opts[] = {
        { .lname = "output",
          .sname = 'o',
          .type = CLI_OPT_STR,
          .dest = &out,
          .metavar = "FILE",
          .help = "file to write (replaced atomically)" },
        { .lname = "stats",
          .type = CLI_OPT_FLAG,
          .dest = &ctx->stats,
          .help = "then print time, CPU s/GiB, hash path and write mode on stderr" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_export, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_export, npos, 1, 1)) != CLI_GO)
        return r;
    if (!out || !*out)
        return cli_fail(CLI_EXIT_USAGE,
                        "export needs an output file: nvx export %s -o FILE "
                        "(or nvx cat for stdout)",
                        argv[0]);
    if (strcmp(out, "-") == 0)
        return to_stdout(ctx, argv[0]);
    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    cli_progress pr;
    cli_progress_begin(&pr, ctx->progress, "export", model_size(ctx->store, id));
    cas_store_problem pb = { .chunk_index = CAS_STORE_NO_CHUNK };
    cli_stats stats;
    cli_stats_begin(ctx, &stats);
    r = cas_store_export_path(ctx->store, id, out, cli_progress_cas, &pr, &pb);
    cli_progress_end(&pr);
    if (r < 0)
        return export_error(r, argv[0], out, &pb, "nothing was written");
    cli_stats_end(&stats, "export", model_size(ctx->store, id), "buffered");
    print_done(ctx, id, out);
    return CLI_EXIT_OK;
}

int
cli_cat_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_cat, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_cat, npos, 1, 1)) != CLI_GO)
        return r;
    return to_stdout(ctx, argv[0]);
}
