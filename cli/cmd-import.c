/* SPDX-License-Identifier: MIT */
/*
 * nvx import ollama [MODEL[:TAG]] | hf [ORG/NAME]: takes in the models a
 * user already has in Ollama's store or the Hugging Face hub cache (layouts
 * and names: cli/import-parse.h). Each model file goes through nvx add's
 * own path (cli_add_file: streamed, memory bounded) with its SHA-256
 * checked in the same read where the source gives one, so a damaged or
 * half-written blob never enters the store. A model that fails is named on
 * stderr and the others go on; the exit code is the first failure's.
 * Importing again stores nothing new (the store is content-addressed): the
 * file is read and hashed again, and the names are set again.
 */
#include "cli/cmd-import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd-add.h"
#include "cli/escape.h"
#include "cli/import-parse.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/store.h"

int cli_import_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_import = {
    .name = "import",
    .main = cli_import_main,
    .usage = "import ollama [MODEL[:TAG]] | hf [ORG/NAME] [--from DIR] [--pin] [--dry-run] "
             "[--revision REV]",
    .summary = "Import models from Ollama's store or the Hugging Face cache, keeping their names",
};

int
cli_import_fail(cli_import *im, const cli_import_item *it, int code)
{
    im->n_failed++;
    if (!im->first_fail)
        im->first_fail = code;
    if (im->ctx->json) {
        cli_json_obj_begin(&im->j);
        cli_json_kv_str(&im->j, "name", it->name);
        cli_json_kv_str(&im->j, "file", it->path);
        cli_json_kv_str(&im->j, "status", "failed");
        cli_json_kv_u64(&im->j, "exit", (uint64_t)code);
        cli_json_obj_end(&im->j);
    }
    return code;
}

/* The blob is there, a regular file, and of the size the source gives. */
static int
check_file(cli_import *im, const cli_import_item *it, struct stat *st)
{
    if (stat(it->path, st) < 0) {
        int r = -errno;
        return cli_import_fail(
            im, it, cli_fail_errno(r, it->hint, "cannot import %s: %s", it->name, it->path));
    }
    if (!S_ISREG(st->st_mode))
        return cli_import_fail(im, it,
                               cli_fail(CLI_EXIT_CORRUPT,
                                        "cannot import %s: %s is not a regular file: %s", it->name,
                                        it->path, it->hint));
    if (it->size != UINT64_MAX && (uint64_t)st->st_size != it->size)
        return cli_import_fail(
            im, it,
            cli_fail(CLI_EXIT_CORRUPT,
                     "cannot import %s: %s is %llu bytes, its manifest says %llu: %s", it->name,
                     it->path, (unsigned long long)st->st_size, (unsigned long long)it->size,
                     it->hint));
    return 0;
}

/* Reports one model: imported (res) or, dry run (res NULL), would be. */
static void
report(cli_import *im, const cli_import_item *it, uint64_t size, const cli_add_result *res)
{
    char hex[CAS_HASH_HEX_LEN + 1] = "", sz[16];
    if (res)
        cas_hash_to_hex(res->id, hex);
    const char *status = !res ? "would import" : res->is_new ? "imported" : "already stored";
    im->n_ok++;
    im->n_new += res && res->is_new;
    if (im->ctx->json) {
        cli_json *j = &im->j;
        cli_json_obj_begin(j);
        cli_json_kv_str(j, "name", it->name);
        if (it->alias)
            cli_json_kv_str(j, "alias", it->alias);
        cli_json_kv_str(j, "file", it->path);
        if (res)
            cli_json_kv_str(j, "id", hex);
        cli_json_kv_u64(j, "size", size);
        if (res)
            cli_json_kv_str(j, "format", res->format);
        cli_json_kv_bool(j, "sha256_checked", it->sha256 != NULL);
        cli_json_kv_str(j, "status", status);
        if (res)
            cli_json_kv_bool(j, "pinned", res->info.pinned);
        cli_json_key(j, "left_out");
        cli_json_arr_begin(j);
        for (size_t i = 0; i < it->n_left_out; i++)
            cli_json_str(j, it->left_out[i]);
        cli_json_arr_end(j);
        cli_json_obj_end(j);
        return;
    }
    if (im->ctx->quiet) {
        if (res)
            printf("%s\n", hex);
        return;
    }
    printf("%s ", status);
    cli_print_escaped_str(stdout, it->name);
    if (it->alias) {
        fputs(" (also ", stdout);
        cli_print_escaped_str(stdout, it->alias);
        fputs(")", stdout);
    }
    if (res) {
        printf(": %s %s, id %.16s%s", cli_fmt_bytes(size, sz), res->format, hex,
               res->info.pinned ? ", pinned" : "");
    } else {
        printf(": %s from ", cli_fmt_bytes(size, sz));
        cli_print_escaped_str(stdout, it->path);
    }
    for (size_t i = 0; i < it->n_left_out; i++) /* plain words: import-parse.c */
        printf("%s%s", i ? ", " : "; not imported: ", it->left_out[i]);
    fputs("\n", stdout);
}

/* A local name must be printable (it is printed back) and fit the store. */
static bool
name_fits(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CAS_STORE_NAME_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

int
cli_import_file(cli_import *im, const cli_import_item *it)
{
    if (!name_fits(it->name) || (it->alias && !name_fits(it->alias)))
        return cli_import_fail(im, it,
                               cli_fail(CLI_EXIT_FAIL,
                                        "cannot import %s: the name is longer than %u bytes or "
                                        "not printable: import the file with nvx add --name",
                                        it->name, CAS_STORE_NAME_MAX));
    struct stat st;
    int r = check_file(im, it, &st);
    if (r != 0)
        return r;
    if (im->dry_run) {
        report(im, it, (uint64_t)st.st_size, NULL);
        return 0;
    }
    char label[PATH_MAX + 2 * CAS_STORE_NAME_MAX];
    snprintf(label, sizeof(label), "%s (%s)", it->name, it->path);
    cli_add_req req = { .path = it->path,
                        .label = label,
                        .mode = CLI_CHUNKER_AUTO,
                        .pin = im->pin,
                        .name = it->name,
                        .sha256 = it->sha256 };
    cli_add_result res;
    r = cli_add_file(im->ctx, &req, &res);
    if (r != CLI_GO)
        return cli_import_fail(im, it, r);
    if (it->alias) {
        cas_store *s;
        r = cli_store_open(im->ctx, CLI_STORE_EXISTING, &s);
        if (r != CLI_GO)
            return cli_import_fail(im, it, r);
        r = cas_store_name_set(s, it->alias, res.id);
        if (r < 0)
            return cli_import_fail(
                im, it,
                cli_fail_errno(r, NULL, "imported %s, but cannot name it %s", it->name, it->alias));
    }
    report(im, it, res.info.size, &res);
    return 0;
}

int
cli_import_read_small(int dirfd, const char *path, size_t max, char *buf, size_t *ret_len)
{
    /* O_NONBLOCK: a FIFO planted in a store must not hang the open. */
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = -EBADMSG;
    else if ((uint64_t)st.st_size > max)
        r = -EMSGSIZE;
    size_t n = 0;
    while (r == 0 && n <= max) {
        ssize_t k = read(fd, buf + n, max + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            r = -errno;
        else if (k == 0)
            break;
        else
            n += (size_t)k;
    }
    close(fd);
    if (r == 0 && n > max)
        r = -EMSGSIZE; /* grew since fstat */
    if (r == 0)
        *ret_len = n;
    return r;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int
cli_import_list_dir(const char *path, cli_import_entries *ret)
{
    struct dirent **ents = NULL;
    ret->names = NULL;
    ret->n = 0;
    int n = scandir(path, &ents, NULL, by_name);
    if (n < 0)
        return -errno;
    int r = 0;
    size_t kept = 0;
    for (int i = 0; i < n; i++)
        kept += ents[i]->d_name[0] != '.';
    if (kept > CLI_IMPORT_DIR_MAX)
        r = -EMSGSIZE;
    else if (kept && !(ret->names = calloc(kept, sizeof(*ret->names))))
        r = -ENOMEM;
    for (int i = 0; i < n; i++) {
        /* Hidden entries (".", "..", ".locks", ".DS_Store") are never models. */
        if (r == 0 && ents[i]->d_name[0] != '.' &&
            !(ret->names[ret->n++] = strdup(ents[i]->d_name)))
            r = -ENOMEM;
        free(ents[i]);
    }
    free(ents);
    if (r < 0)
        cli_import_entries_free(ret);
    return r;
}

void
cli_import_entries_free(cli_import_entries *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->names[i]);
    free(e->names);
    e->names = NULL;
    e->n = 0;
}

bool
cli_import_join(char ret[static PATH_MAX], const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb >= PATH_MAX)
        return false;
    memmove(ret, a, la);
    ret[la] = '/';
    memcpy(ret + la + 1, b, lb + 1);
    return true;
}

bool
cli_import_is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The source's directory: --from, else the first environment variable of
 * envs[] set (with its suffix appended), else $HOME + home_rel. */
int
cli_import_source_dir(const char *from, const char *const envs[][2], const char *home_rel,
                      char ret[static PATH_MAX])
{
    int n = -1;
    if (from)
        n = snprintf(ret, PATH_MAX, "%s", from);
    for (size_t i = 0; n < 0 && envs[i][0]; i++) {
        const char *v = getenv(envs[i][0]);
        if (v && *v)
            n = snprintf(ret, PATH_MAX, "%s%s", v, envs[i][1]);
    }
    if (n < 0) {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return cli_fail(CLI_EXIT_USAGE, "$HOME is not set: give the directory with --from DIR");
        n = snprintf(ret, PATH_MAX, "%s/%s", home, home_rel);
    }
    if (n >= PATH_MAX)
        return cli_fail(CLI_EXIT_USAGE, "the source directory path is too long: use --from DIR");
    return CLI_GO;
}

static int
finish(cli_import *im)
{
    if (im->ctx->json) {
        cli_json_arr_end(&im->j);
        cli_json_kv_u64(&im->j, "failed", im->n_failed);
        cli_json_obj_end(&im->j);
        if (cli_json_finish(&im->j) < 0)
            return CLI_EXIT_FAIL;
    } else if (!im->ctx->quiet) {
        if (im->dry_run)
            printf("%u model%s would be imported", im->n_ok, im->n_ok == 1 ? "" : "s");
        else
            printf("%u model%s imported (%u new)", im->n_ok, im->n_ok == 1 ? "" : "s", im->n_new);
        printf(", %u failed, from %s\n", im->n_failed, im->dir);
    }
    return im->n_failed ? im->first_fail : CLI_EXIT_OK;
}

void
cli_import_begin(cli_import *im, const char *dir)
{
    snprintf(im->dir, sizeof(im->dir), "%s", dir);
    if (!im->ctx->json)
        return;
    cli_json_init(&im->j, stdout);
    cli_json_obj_begin(&im->j);
    cli_json_kv_str(&im->j, "source", im->source);
    cli_json_kv_str(&im->j, "dir", dir);
    cli_json_kv_bool(&im->j, "dry_run", im->dry_run);
    cli_json_key(&im->j, "models");
    cli_json_arr_begin(&im->j);
}

int
cli_import_main(cli_ctx *ctx, int argc, char **argv)
{
    cli_import im = { .ctx = ctx };
    const cli_opt opts[] = {
        { .lname = "from",
          .type = CLI_OPT_STR,
          .dest = &im.from,
          .metavar = "DIR",
          .help = "the source's directory (default: $OLLAMA_MODELS or ~/.ollama/models; "
                  "$HF_HUB_CACHE or ~/.cache/huggingface/hub)" },
        { .lname = "pin",
          .type = CLI_OPT_FLAG,
          .dest = &im.pin,
          .help = "pin the imported models (gc keeps them; nvxd shares them)" },
        { .lname = "dry-run",
          .type = CLI_OPT_FLAG,
          .dest = &im.dry_run,
          .help = "check the source and list what would be imported; change nothing" },
        { .lname = "revision",
          .type = CLI_OPT_STR,
          .dest = &im.revision,
          .metavar = "REV",
          .help = "hf: the branch or commit to import (default: main)" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_import, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_import, npos, 1, 2)) != CLI_GO)
        return r;
    im.source = argv[0];
    const char *what = npos == 2 ? argv[1] : NULL;
    if (strcmp(im.source, "ollama") == 0) {
        if (im.revision)
            return cli_fail(CLI_EXIT_USAGE, "--revision is for hf: Ollama models have tags");
        r = cli_import_ollama(&im, what);
    } else if (strcmp(im.source, "hf") == 0) {
        r = cli_import_hf(&im, what);
    } else {
        return cli_fail(CLI_EXIT_USAGE, "unknown source '%s': use ollama or hf", im.source);
    }
    return r != CLI_GO ? r : finish(&im);
}
