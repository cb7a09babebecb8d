/* SPDX-License-Identifier: MIT */
/*
 * nvx add FILE: stream a file into the store and print its model id.
 */
#include "cli/cmd-add.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/chunkplan.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/stats.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_add_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_add = {
    .name = "add",
    .main = cli_add_main,
    .usage = "add FILE [--pin] [--name NAME] [--sha256 HEX] "
             "[--chunker auto|cdc|gguf|llama2c|fixed] [--min SIZE] [--avg SIZE] [--max SIZE]",
    .summary = "Add a model file (or - for stdin) to the store and print its id",
};

typedef struct add_args {
    bool pin;
    const char *name;
    const char *sha256;
    int mode;
    uint64_t min, avg, max;
    bool min_seen, max_seen;
} add_args;

/* min and max not given follow avg in the default ratio (16K/64K/256K), so
 * --avg alone (or --chunker fixed --avg 16K) is always a valid request. */
static cas_chunker_params
chunk_params(const add_args *a)
{
    uint64_t min = a->min_seen ? a->min : a->avg / 4;
    uint64_t max = a->max_seen ? a->max : a->avg * 4;
    if (min < CAS_CHUNK_SIZE_FLOOR)
        min = CAS_CHUNK_SIZE_FLOOR;
    if (max > CAS_CHUNK_SIZE_CEIL)
        max = CAS_CHUNK_SIZE_CEIL;
    return (cas_chunker_params){ (uint32_t)min, (uint32_t)a->avg, (uint32_t)max };
}

/* A local name must not be mistaken for an id prefix, and is printed back. */
static bool
name_ok(const char *name)
{
    size_t n = strlen(name), hex = strspn(name, "0123456789abcdefABCDEF");
    if (n == 0 || n > CAS_STORE_NAME_MAX)
        return false;
    if (hex == n && n >= CAS_HASH_PREFIX_MIN)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int
open_input(const char *path, int *ret_fd, struct stat *st)
{
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        return cli_fail_errno(r, r == -ENOENT ? "check the path" : "check the file's permissions",
                              "cannot open %s", path);
    }
    if (fstat(fd, st) < 0) {
        int r = -errno;
        close(fd);
        return cli_fail_errno(r, NULL, "cannot read %s", path);
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        return cli_fail(CLI_EXIT_USAGE, "%s is a directory: give a model file", path);
    }
    *ret_fd = fd;
    return CLI_GO;
}

/* Plans the chunking; for a pipe, the bytes read ahead go to *prefix. */
static int
make_plan(const char *path, int fd, const struct stat *st, cli_chunker_mode mode,
          cli_chunk_plan *plan, uint8_t **prefix, size_t *prefix_len)
{
    char why[256];
    int r = S_ISREG(st->st_mode)
                ? cli_chunk_plan_make(fd, (uint64_t)st->st_size, mode, plan, why, sizeof(why))
                : cli_chunk_plan_stream(fd, mode, plan, prefix, prefix_len, why, sizeof(why));
    if (r == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT, "cannot add %s: %s: check the file or use --chunker cdc",
                        path, why);
    if (r == -EMSGSIZE)
        return cli_fail(CLI_EXIT_FAIL, "cannot add %s: %s: use --chunker cdc", path, why);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot read %s", path);
    return CLI_GO;
}

static int
report(cli_ctx *ctx, const cli_add_result *res, const char *name)
{
    char hex[CAS_HASH_HEX_LEN + 1], sz[16];
    cas_hash_to_hex(res->id, hex);
    const cas_model_info *mi = &res->info;
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "id", hex);
        cli_json_kv_bool(&j, "new", res->is_new);
        cli_json_kv_u64(&j, "size", mi->size);
        cli_json_kv_u64(&j, "chunks", mi->n_chunks);
        cli_json_kv_str(&j, "chunker", cas_chunker_kind_to_string(res->kind));
        cli_json_kv_str(&j, "format", res->format);
        cli_json_kv_u64(&j, "tensors", res->n_tensors);
        cli_json_kv_bool(&j, "pinned", mi->pinned);
        cli_json_kv_str(&j, "name", name);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (ctx->quiet) {
        printf("%s\n", hex);
        return CLI_EXIT_OK;
    }
    printf("%s %s: %s, %llu chunk%s (%s)", res->is_new ? "added" : "already stored", res->format,
           cli_fmt_bytes(mi->size, sz), (unsigned long long)mi->n_chunks,
           mi->n_chunks == 1 ? "" : "s", cas_chunker_kind_to_string(res->kind));
    if (res->n_tensors)
        printf(", %zu tensors", res->n_tensors);
    printf("%s%s\n", mi->pinned ? ", pinned" : "", name ? ", named" : "");
    printf("id %s\n", hex);
    return CLI_EXIT_OK;
}

static int
add_error(int r, const char *path, const char *store_dir)
{
    switch (r) {
    case -ENOSPC:
    case -EFBIG:
        return cli_fail_errno(r, "free space or raise the store limit; the store is unchanged",
                              "cannot add %s to %s", path, store_dir);
    case -EINVAL:
        return cli_fail(CLI_EXIT_USAGE,
                        "cannot add %s: invalid chunker parameters or name: "
                        "see nvx add --help",
                        path);
    default:
        return cli_fail_errno(r, NULL, "cannot add %s", path);
    }
}

/* The SHA-256 of the bytes as the add reads them (its tap), so a file
 * is read once: OpenSSL, which uses the CPU's SHA instructions where there
 * are some (several times libsodium's portable code on a multi-GiB file). */
typedef struct sha_tap {
    EVP_MD_CTX *md;
    const uint8_t *want;
    uint8_t got[CLI_SHA256_LEN];
    bool mismatch;
} sha_tap;

static int
sha_tap_fn(void *arg, const void *buf, size_t len)
{
    sha_tap *t = arg;
    if (buf)
        return EVP_DigestUpdate(t->md, buf, len) == 1 ? 0 : -ENOMEM;
    unsigned n = 0;
    if (EVP_DigestFinal_ex(t->md, t->got, &n) != 1 || n != CLI_SHA256_LEN)
        return -ENOMEM;
    t->mismatch = memcmp(t->got, t->want, CLI_SHA256_LEN) != 0;
    return t->mismatch ? -EBADMSG : 0;
}

/* Exactly 64 hex characters, either case. */
static bool
sha256_from_hex(const char *s, uint8_t ret[static CLI_SHA256_LEN])
{
    size_t n = 0, len = strlen(s);
    const char *end = NULL;
    return len == CLI_SHA256_HEX_LEN &&
           sodium_hex2bin(ret, CLI_SHA256_LEN, s, len, NULL, &n, &end) == 0 &&
           n == CLI_SHA256_LEN && end == s + len;
}

static int
sha_error(const char *label, const sha_tap *t)
{
    char got[CLI_SHA256_HEX_LEN + 1], want[CLI_SHA256_HEX_LEN + 1];
    sodium_bin2hex(got, sizeof(got), t->got, CLI_SHA256_LEN);
    sodium_bin2hex(want, sizeof(want), t->want, CLI_SHA256_LEN);
    return cli_fail(CLI_EXIT_CORRUPT,
                    "cannot add %s: its sha256 is %.16s..., not the expected %.16s...: the file "
                    "is damaged or was changed; download it again",
                    label, got, want);
}

int
cli_add_file(cli_ctx *ctx, const cli_add_req *req, cli_add_result *ret)
{
    const char *label = req->label ? req->label : req->path;
    int fd = -1, r;
    struct stat st;
    cli_chunk_plan plan = { 0 };
    uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    sha_tap tap = { .want = req->sha256 };
    r = open_input(req->path, &fd, &st);
    if (r != CLI_GO)
        return r;
    r = make_plan(label, fd, &st, req->mode, &plan, &prefix, &prefix_len);
    if (r != CLI_GO)
        goto out;
    cas_store *s;
    r = cli_store_open(ctx, CLI_STORE_CREATE, &s);
    if (r != CLI_GO)
        goto out;
    if (req->sha256 &&
        (!(tap.md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(tap.md, EVP_sha256(), NULL) != 1)) {
        r = cli_fail_errno(-ENOMEM, NULL, "cannot add %s", label);
        goto out;
    }
    cas_store_meta meta[] = { { CAS_META_FORMAT, plan.format } };
    cli_progress pr;
    cli_progress_begin(&pr, ctx->progress, "adding",
                       S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
    cas_store_add_opts o = {
        .kind = plan.kind,
        .params = req->params,
        .regions = plan.regions,
        .n_regions = plan.n_regions,
        .tensors = plan.tensors,
        .n_tensors = plan.n_tensors,
        .meta = meta,
        .n_meta = 1,
        .pin = req->pin,
        .name = req->name,
        .progress = cli_progress_cas,
        .userdata = &pr,
        .prefix = prefix,
        .prefix_len = prefix_len,
        .tap = req->sha256 ? sha_tap_fn : NULL,
        .tap_arg = &tap,
    };
    /* A name names one model: adding under a name in use moves it. Say so,
     * since the model that had it keeps no name of its own. */
    uint8_t id[CAS_HASH_LEN], had[CAS_HASH_LEN];
    bool name_used = req->name && cas_store_name_get(s, req->name, had) == 0;
    cas_store_add_stats ws = { 0 };
    o.stats = &ws;
    cli_stats stats;
    cli_stats_begin(ctx, &stats);
    int ar = cas_store_add_fd(s, fd, &o, id);
    cli_progress_end(&pr);
    if (ar >= 0) {
        char writes[80];
        if (ws.buffered_bytes == 0)
            snprintf(writes, sizeof(writes), "%s", ws.direct_bytes ? "O_DIRECT" : "none");
        else if (ws.direct_bytes == 0)
            snprintf(writes, sizeof(writes), "buffered");
        else
            snprintf(writes, sizeof(writes), "O_DIRECT, buffered tail %llu bytes",
                     (unsigned long long)ws.buffered_bytes);
        cli_stats_end(&stats, "add", ws.direct_bytes + ws.buffered_bytes, writes);
    }
    if (ar == -EBADMSG && tap.mismatch) {
        r = sha_error(label, &tap);
        goto out;
    }
    if (ar < 0) {
        r = add_error(ar, label, ctx->store_dir);
        goto out;
    }
    if (name_used && memcmp(had, id, CAS_HASH_LEN) != 0) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(had, hex);
        cli_warn("the name '%s' moved to this model from %s", req->name, hex);
    }
    *ret = (cli_add_result){
        .is_new = ar == 1, .kind = plan.kind, .format = plan.format, .n_tensors = plan.n_tensors
    };
    memcpy(ret->id, id, CAS_HASH_LEN);
    r = cas_store_model_info(s, id, &ret->info);
    r = r < 0
            ? cli_fail_errno(r, "run nvx verify --all", "added %s, but cannot read it back", label)
            : CLI_GO;
out:
    EVP_MD_CTX_free(tap.md);
    cli_chunk_plan_free(&plan);
    free(prefix);
    close(fd);
    return r;
}

int
cli_add_main(cli_ctx *ctx, int argc, char **argv)
{
    add_args a = { .mode = CLI_CHUNKER_AUTO, .avg = CAS_CHUNK_AVG_DEFAULT };
    const cli_opt opts[] = {
        { .lname = "pin",
          .type = CLI_OPT_FLAG,
          .dest = &a.pin,
          .help = "pin the model (gc keeps it)" },
        { .lname = "name",
          .type = CLI_OPT_STR,
          .dest = &a.name,
          .metavar = "NAME",
          .help = "give the model a local name" },
        { .lname = "sha256",
          .type = CLI_OPT_STR,
          .dest = &a.sha256,
          .metavar = "HEX",
          .help = "refuse the file unless its SHA-256 is HEX (checked in the same read)" },
        { .lname = "chunker",
          .type = CLI_OPT_CHOICE,
          .dest = &a.mode,
          .metavar = "MODE",
          .choices = cli_chunker_mode_names,
          .help = "auto (default), cdc, gguf, llama2c or fixed" },
        { .lname = "min",
          .type = CLI_OPT_SIZE,
          .dest = &a.min,
          .metavar = "SIZE",
          .min = CAS_CHUNK_SIZE_FLOOR,
          .max = CAS_CHUNK_SIZE_CEIL,
          .seen = &a.min_seen,
          .help = "smallest CDC chunk (default avg/4: 16K)" },
        { .lname = "avg",
          .type = CLI_OPT_SIZE,
          .dest = &a.avg,
          .metavar = "SIZE",
          .min = CAS_CHUNK_AVG_FLOOR,
          .max = CAS_CHUNK_SIZE_CEIL,
          .help = "average chunk, a power of two (default 64K)" },
        { .lname = "max",
          .type = CLI_OPT_SIZE,
          .dest = &a.max,
          .metavar = "SIZE",
          .min = CAS_CHUNK_SIZE_FLOOR,
          .max = CAS_CHUNK_SIZE_CEIL,
          .seen = &a.max_seen,
          .help = "largest chunk (default 4*avg: 256K)" },
        { .lname = "stats",
          .type = CLI_OPT_FLAG,
          .dest = &ctx->stats,
          .help = "then print time, CPU s/GiB, hash path and write mode on stderr" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_add, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_add, npos, 1, 1)) != CLI_GO)
        return r;
    cas_chunker_params params = chunk_params(&a);
    if (cas_chunker_params_validate(&params) < 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "invalid chunk sizes --min %llu --avg %llu --max %llu: need min < avg < "
                        "max and avg a power of two",
                        (unsigned long long)params.min, (unsigned long long)params.avg,
                        (unsigned long long)params.max);
    if (a.name && !name_ok(a.name))
        return cli_fail(CLI_EXIT_USAGE,
                        "invalid name '%s': use 1 to %u printable bytes that do not look like an "
                        "id (not all hex)",
                        a.name, CAS_STORE_NAME_MAX);
    uint8_t sha[CLI_SHA256_LEN];
    if (a.sha256 && !sha256_from_hex(a.sha256, sha))
        return cli_fail(CLI_EXIT_USAGE, "invalid --sha256 '%s': give 64 hex characters", a.sha256);
    cli_add_req req = { .path = argv[0],
                        .mode = (cli_chunker_mode)a.mode,
                        .params = &params,
                        .pin = a.pin,
                        .name = a.name,
                        .sha256 = a.sha256 ? sha : NULL };
    cli_add_result res;
    r = cli_add_file(ctx, &req, &res);
    return r != CLI_GO ? r : report(ctx, &res, a.name);
}
