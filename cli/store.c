/* SPDX-License-Identifier: MIT */
#include "cli/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/fsutil.h"
#include "cli/progress.h"
#include "libcas/store.h"

int
cli_store_open(cli_ctx *ctx, cli_store_mode mode, cas_store **ret)
{
    bool create = mode == CLI_STORE_CREATE;
    if (ctx->store) {
        *ret = ctx->store;
        return CLI_GO;
    }
    const char *dir = ctx->store_dir;
    if (!dir || !*dir)
        return cli_fail(CLI_EXIT_USAGE, "no store directory: pass --store DIR or set NVX_STORE");
    if (create) {
        struct stat st;
        if (stat(dir, &st) < 0 && errno == ENOENT) {
            int r = cli_mkdir_p(dir, true);
            if (r < 0)
                return cli_fail_errno(r, "pass --store with a writable directory",
                                      "cannot create the store directory %s", dir);
        }
    }
    int r = cas_store_open(dir, create ? CAS_STORE_CREATE : 0, &ctx->store);
    switch (r) {
    case 0:
        *ret = ctx->store;
        return CLI_GO;
    case -ENOENT:
        if (mode == CLI_STORE_IF_EXISTS) {
            *ret = NULL;
            return CLI_GO;
        }
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "no store at %s: add a model first (nvx add FILE) or pass --store DIR",
                        dir);
    case -ENOTDIR:
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "%s is not an nvx store: pass --store with a store directory (or an "
                        "empty one)",
                        dir);
    case -EBADMSG:
        return cli_fail(CLI_EXIT_CORRUPT,
                        "the store at %s is damaged or of an unknown version: check the "
                        "directory or use another --store",
                        dir);
    default:
        return cli_fail_errno(r, "check the directory and its permissions",
                              "cannot open the store at %s", dir);
    }
}

void
cli_store_close(cli_ctx *ctx)
{
    cas_store_free(ctx->store);
    ctx->store = NULL;
}

int
cli_resolve(cli_ctx *ctx, const char *text, uint8_t ret_id[static CAS_HASH_LEN])
{
    cas_store *s;
    int r = cli_store_open(ctx, CLI_STORE_EXISTING, &s);
    if (r != CLI_GO)
        return r;
    uint8_t id[CAS_HASH_LEN];
    bool full = strlen(text) == CAS_HASH_HEX_LEN && cas_hash_from_hex(text, id) == 0;
    if (!full) {
        r = cas_store_name_get(s, text, id);
        if (r == 0) {
            memcpy(ret_id, id, CAS_HASH_LEN);
            return CLI_GO;
        }
        if (r != -ENOENT && r != -EINVAL)
            return cli_fail_errno(r, NULL, "cannot look up the name '%s'", text);
    }
    r = cas_store_resolve(s, text, id);
    switch (r) {
    case 0:
        memcpy(ret_id, id, CAS_HASH_LEN);
        return CLI_GO;
    case -ENOTUNIQ:
        return cli_fail(CLI_EXIT_USAGE,
                        "'%s' matches several models: give more characters of the id", text);
    case -ENOENT:
        return cli_fail(CLI_EXIT_NOTFOUND, "no model matches '%s': run nvx ls to see the models",
                        text);
    case -EINVAL:
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "no model named '%s' (an id prefix needs %d or more hex characters): "
                        "run nvx ls to see the models",
                        text, CAS_HASH_PREFIX_MIN);
    default:
        return cli_fail_errno(r, NULL, "cannot resolve '%s'", text);
    }
}

int
cli_name_check(const char *name)
{
    size_t n = strlen(name), hex = 0;
    if (n == 0 || n > CAS_STORE_NAME_MAX)
        return cli_fail(CLI_EXIT_USAGE, "a name has 1 to %u characters: pick a shorter one",
                        CAS_STORE_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f)
            return cli_fail(CLI_EXIT_USAGE,
                            "bad name: use printable ASCII without blanks (letters, digits, "
                            "'-', '_', '.', '/', ':')");
        hex += (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
    if (name[0] == '-')
        return cli_fail(CLI_EXIT_USAGE, "bad name '%s': a name cannot start with '-'", name);
    if (hex == n && n >= CAS_HASH_PREFIX_MIN)
        return cli_fail(CLI_EXIT_USAGE,
                        "bad name '%s': it reads as a model id prefix; add a letter past 'f'",
                        name);
    return CLI_GO;
}

typedef struct names_acc {
    const uint8_t *id;
    char *buf;
    size_t cap, len;
} names_acc;

static int
collect_name(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    names_acc *a = userdata;
    if (memcmp(id, a->id, CAS_HASH_LEN) != 0)
        return 0;
    size_t n = strlen(name), sep = a->len ? 2 : 0;
    if (a->cap - a->len <= n + sep)
        return 0; /* keep what fits; names are shown, not parsed */
    memcpy(a->buf + a->len, ", ", sep);
    memcpy(a->buf + a->len + sep, name, n + 1);
    a->len += sep + n;
    return 0;
}

int
cli_model_names(cas_store *s, const uint8_t id[static CAS_HASH_LEN], char *buf, size_t cap)
{
    names_acc a = { id, buf, cap, 0 };
    if (cap)
        buf[0] = '\0';
    return cas_store_name_list(s, collect_name, &a);
}

typedef struct names_json {
    const uint8_t *id;
    cli_json *j;
} names_json;

static int
emit_name(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    names_json *n = userdata;
    if (memcmp(id, n->id, CAS_HASH_LEN) == 0)
        cli_json_str(n->j, name);
    return 0;
}

int
cli_model_names_json(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cli_json *j)
{
    names_json n = { id, j };
    cli_json_arr_begin(j);
    int r = cas_store_name_list(s, emit_name, &n);
    cli_json_arr_end(j);
    return r;
}

int
cli_progress_cas(void *userdata, uint64_t done, uint64_t total)
{
    cli_progress_cb(userdata, done, total);
    return 0;
}
