/* SPDX-License-Identifier: MIT */
/*
 * nvx trust add|ls|rm: the keyring of trusted publisher keys, kept in the
 * store's index (so --store isolates it). A key is stored under its 8-byte
 * minisign key id; the blob is the bare public key line ("RW...").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/store.h"
#include "libcas/sig-store.h"
#include "libcas/sig.h"
#include "libcas/store.h"

int cli_trust_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_trust = {
    .name = "trust",
    .main = cli_trust_main,
    .usage = "trust add KEY [NAME] | trust ls | trust rm KEYID|NAME",
    .summary = "Manage trusted publisher keys (KEY: minisign public key line or .pub file)",
};

/* KEY is a path to an existing file (a .pub file) or the key text itself. */
static int
parse_key_arg(const char *arg, cas_pubkey *ret)
{
    struct stat st;
    int r;
    if (stat(arg, &st) == 0) {
        r = cas_pubkey_load_file(arg, ret);
        if (r < 0)
            return cli_fail(CLI_EXIT_CORRUPT,
                            "%s is not a minisign public key (%s): pass the .pub file or the "
                            "\"RW...\" line",
                            arg, strerror(-r));
        return CLI_GO;
    }
    r = cas_pubkey_decode((const uint8_t *)arg, strlen(arg), ret);
    if (r < 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "'%s' is neither a file nor a minisign public key: pass the .pub file "
                        "or the \"RW...\" line",
                        arg);
    return CLI_GO;
}

static int
trust_add(cli_ctx *ctx, const char *key, const char *name)
{
    cas_pubkey pk;
    cas_store *s;
    int r = parse_key_arg(key, &pk);
    if (r != CLI_GO)
        return r;
    if (name && strlen(name) > CAS_STORE_NAME_MAX)
        return cli_fail(CLI_EXIT_USAGE, "the name is too long: use at most %u bytes",
                        CAS_STORE_NAME_MAX);
    if ((r = cli_store_open(ctx, CLI_STORE_CREATE, &s)) != CLI_GO)
        return r;
    char b64[CAS_PUBKEY_B64_SIZE], kid[CAS_KEYID_HEX_SIZE];
    cas_pubkey_base64(&pk, b64);
    cas_keyid_format(pk.keyid, kid);
    /* Key ids are random and short: say so when one comes back with
     * another public key instead of silently trusting the new one. */
    uint8_t *old = NULL;
    size_t old_len = 0;
    if (cas_store_key_get(s, pk.keyid, CAS_KEYID_LEN, &old, &old_len, NULL) == 0) {
        if (old_len != strlen(b64) || memcmp(old, b64, old_len) != 0)
            cli_warn("key id %s was trusted with another public key: it is replaced", kid);
        free(old);
    }
    r = cas_store_key_put(s, pk.keyid, CAS_KEYID_LEN, b64, strlen(b64), name ? name : "");
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot add key %s to the keyring", kid);
    /* Signatures of this key kept apart are checked now; forgeries under
     * it go, so they can never make nvx verify fail an intact model. */
    cas_sig_recheck_result rc = { 0 };
    r = cas_store_sig_recheck(s, pk.keyid, &rc);
    if (r < 0)
        cli_warn("cannot check the stored signatures of key %s (%s): run nvx trust add again", kid,
                 strerror(-r));
    else if (rc.dropped && !ctx->quiet)
        fprintf(stderr, "removed %u signature%s by key %s that did not verify\n", rc.dropped,
                rc.dropped == 1 ? "" : "s", kid);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "key_id", kid);
        cli_json_kv_str(&j, "name", name ? name : "");
        cli_json_kv_str(&j, "public_key", b64);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet) {
        printf("trusted %s", kid);
        if (name && *name) {
            printf(" ");
            cli_print_escaped_str(stdout, name);
        }
        printf("\n");
    }
    return CLI_EXIT_OK;
}

typedef struct ls_state {
    cli_ctx *ctx;
    cli_json j;
    size_t n;
} ls_state;

static int
ls_one(void *userdata, const uint8_t *key_id, size_t key_id_len, const uint8_t *blob,
       size_t blob_len, const char *name)
{
    ls_state *st = userdata;
    char kid[CAS_KEYID_HEX_SIZE], b64[CAS_PUBKEY_B64_SIZE];
    cas_pubkey pk;
    bool ok = key_id_len == CAS_KEYID_LEN && cas_pubkey_decode(blob, blob_len, &pk) == 0 &&
              memcmp(pk.keyid, key_id, CAS_KEYID_LEN) == 0;
    if (!ok)
        return 0; /* not a minisign key record: not ours to show */
    cas_keyid_format(pk.keyid, kid);
    cas_pubkey_base64(&pk, b64);
    st->n++;
    if (st->ctx->json) {
        cli_json_obj_begin(&st->j);
        cli_json_kv_str(&st->j, "key_id", kid);
        cli_json_kv_str(&st->j, "name", name);
        cli_json_kv_str(&st->j, "public_key", b64);
        cli_json_obj_end(&st->j);
        return 0;
    }
    printf("%-16s  %s", kid, b64);
    if (*name) {
        fputs("  ", stdout);
        cli_print_escaped_str(stdout, name);
    }
    putchar('\n');
    return 0;
}

static int
trust_ls(cli_ctx *ctx)
{
    cas_store *s;
    int r = cli_store_open(ctx, CLI_STORE_IF_EXISTS, &s);
    if (r != CLI_GO)
        return r;
    ls_state st = { .ctx = ctx };
    if (ctx->json) {
        cli_json_init(&st.j, stdout);
        cli_json_arr_begin(&st.j);
    }
    r = s ? cas_store_key_list(s, ls_one, &st) : 0; /* no store yet: no keys */
    if (ctx->json) {
        cli_json_arr_end(&st.j);
        if (cli_json_finish(&st.j) < 0 && r >= 0)
            return CLI_EXIT_FAIL;
    }
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot list the keyring");
    if (!ctx->json && st.n == 0 && !ctx->quiet)
        fprintf(stderr, "no trusted keys: add one with nvx trust add KEY [NAME]\n");
    return CLI_EXIT_OK;
}

typedef struct rm_state {
    const char *name;
    uint8_t keyid[CAS_KEYID_LEN];
    size_t n;
} rm_state;

static int
find_name(void *userdata, const uint8_t *key_id, size_t key_id_len, const uint8_t *blob,
          size_t blob_len, const char *name)
{
    rm_state *st = userdata;
    if (key_id_len == CAS_KEYID_LEN && strcmp(name, st->name) == 0) {
        if (st->n++ == 0)
            memcpy(st->keyid, key_id, CAS_KEYID_LEN);
    }
    return 0;
}

static int
trust_rm(cli_ctx *ctx, const char *what)
{
    cas_store *s;
    int r = cli_store_open(ctx, CLI_STORE_EXISTING, &s);
    if (r != CLI_GO)
        return r;
    rm_state st = { .name = what };
    uint8_t keyid[CAS_KEYID_LEN];
    bool by_id = cas_keyid_parse(what, keyid) == 0;
    if (by_id) {
        r = cas_store_key_del(s, keyid, CAS_KEYID_LEN);
        if (r == -ENOENT)
            by_id = false; /* maybe a name that looks like a key id */
        else if (r < 0)
            return cli_fail_errno(r, NULL, "cannot remove key %s", what);
    }
    if (!by_id) {
        r = cas_store_key_list(s, find_name, &st);
        if (r < 0)
            return cli_fail_errno(r, NULL, "cannot list the keyring");
        if (st.n == 0)
            return cli_fail(CLI_EXIT_NOTFOUND,
                            "no trusted key with id or name '%s': see nvx trust ls", what);
        if (st.n > 1)
            return cli_fail(CLI_EXIT_USAGE,
                            "%zu trusted keys are named '%s': remove one by its key id", st.n,
                            what);
        memcpy(keyid, st.keyid, CAS_KEYID_LEN);
        r = cas_store_key_del(s, keyid, CAS_KEYID_LEN);
        if (r < 0)
            return cli_fail_errno(r, NULL, "cannot remove the key named '%s'", what);
    }
    char kid[CAS_KEYID_HEX_SIZE];
    cas_keyid_format(keyid, kid);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "removed", kid);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        printf("removed %s\n", kid);
    return CLI_EXIT_OK;
}

int
cli_trust_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_trust, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_trust, npos, 1, 3)) != CLI_GO)
        return r;
    const char *sub = argv[0];
    if (strcmp(sub, "add") == 0) {
        if (npos < 2)
            return cli_fail(CLI_EXIT_USAGE, "trust add needs a key: nvx trust add KEY [NAME]");
        return trust_add(ctx, argv[1], npos == 3 ? argv[2] : NULL);
    }
    if (strcmp(sub, "ls") == 0) {
        if (npos != 1)
            return cli_fail(CLI_EXIT_USAGE, "trust ls takes no arguments: nvx trust ls [--json]");
        return trust_ls(ctx);
    }
    if (strcmp(sub, "rm") == 0) {
        if (npos != 2)
            return cli_fail(CLI_EXIT_USAGE, "trust rm takes one key: nvx trust rm KEYID|NAME");
        return trust_rm(ctx, argv[1]);
    }
    return cli_fail(CLI_EXIT_USAGE, "unknown trust command '%s': use add, ls or rm", sub);
}
