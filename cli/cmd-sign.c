/* SPDX-License-Identifier: MIT */
/*
 * nvx sign ID [--key FILE] [--name NAME]: signs a model's canonical manifest
 * bytes (prehashed minisign "ED" signature, trusted comment with the model
 * id, name and time) and attaches the signature to the model in the store.
 * One signature per key and model: a new one replaces the key's older ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/keyfile.h"
#include "cli/store.h"
#include "libcas/sig-store.h"
#include "libcas/sig.h"
#include "libcas/store.h"

int cli_sign_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_sign = {
    .name = "sign",
    .main = cli_sign_main,
    .usage = "sign ID|NAME [--key FILE] [--name NAME]",
    .summary = "Sign a model with your key (minisign format) and attach the signature",
};

/* Collects the stored signatures made by one key id (to replace them). */
typedef struct old_sigs {
    uint8_t keyid[CAS_KEYID_LEN];
    const char *keep; /* the new blob: never collected */
    size_t keep_len;
    struct blob {
        uint8_t *p;
        size_t len;
    } * v;
    size_t n;
    int err;
} old_sigs;

static int
collect(void *userdata, const void *blob, size_t len)
{
    old_sigs *o = userdata;
    cas_sig_info *info = malloc(sizeof(*info));
    if (!info)
        return o->err = -ENOMEM;
    bool mine = cas_sig_parse(blob, len, info) == 0 &&
                memcmp(info->keyid, o->keyid, CAS_KEYID_LEN) == 0 &&
                !(len == o->keep_len && memcmp(blob, o->keep, len) == 0);
    free(info);
    if (!mine)
        return 0;
    struct blob *nv = realloc(o->v, (o->n + 1) * sizeof(*nv));
    if (!nv)
        return o->err = -ENOMEM;
    o->v = nv;
    if (!(o->v[o->n].p = malloc(len)))
        return o->err = -ENOMEM;
    memcpy(o->v[o->n].p, blob, len);
    o->v[o->n++].len = len;
    return 0;
}

/* The model's first local name, or "" (names are comma-separated). */
static void
first_name(cas_store *s, const uint8_t id[CAS_HASH_LEN], char *buf, size_t cap)
{
    buf[0] = '\0';
    if (cli_model_names(s, id, buf, cap) < 0) {
        buf[0] = '\0';
        return;
    }
    char *comma = strchr(buf, ',');
    if (comma)
        *comma = '\0';
}

static int
report(cli_ctx *ctx, const char *idhex, const char *kid, const char *name, uint64_t ts,
       size_t replaced)
{
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "id", idhex);
        cli_json_kv_str(&j, "key_id", kid);
        cli_json_kv_str(&j, "name", name);
        cli_json_kv_u64(&j, "timestamp", ts);
        cli_json_kv_u64(&j, "replaced", replaced);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        printf("signed %s with key %s\n", idhex, kid);
    return CLI_EXIT_OK;
}

/* Removes the signatures of model id by keyid other than the new one
 * (sig); returns how many went. Failures only warn: the old signatures
 * stay valid, they are just redundant. */
static size_t
drop_older(cas_store *s, const uint8_t id[CAS_HASH_LEN], const uint8_t keyid[CAS_KEYID_LEN],
           const char *sig, size_t slen, const char *idhex)
{
    old_sigs old = { .keep = sig, .keep_len = slen };
    memcpy(old.keyid, keyid, CAS_KEYID_LEN);
    size_t gone = 0;
    int r = cas_store_sig_list(s, id, collect, &old);
    if (r < 0 || old.err < 0)
        cli_warn("cannot list the older signatures of %s: they are kept", idhex);
    else
        for (size_t i = 0; i < old.n; i++)
            if (cas_store_sig_del(s, id, old.v[i].p, old.v[i].len) == 0)
                gone++;
            else
                cli_warn("cannot remove an older signature of %s", idhex);
    for (size_t i = 0; i < old.n; i++)
        free(old.v[i].p);
    free(old.v);
    return gone;
}

/* Signs the manifest, checks the signature, stores it and drops the key's
 * older ones. Returns the command's exit code (errors printed). */
static int
sign_store(cli_ctx *ctx, const uint8_t id[CAS_HASH_LEN], const char *idhex, const cas_seckey *sk,
           const char *keypath, const char *name)
{
    uint8_t *manifest = NULL;
    size_t mlen = 0, slen = 0;
    char *sig = NULL, kid[CAS_KEYID_HEX_SIZE];
    int ret = CLI_GO;
    int r = cas_store_manifest_get(ctx->store, id, &manifest, &mlen);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot read the manifest of %s", idhex);
    uint64_t ts = (uint64_t)time(NULL);
    r = cas_sig_sign(sk, manifest, mlen, name, ts, &sig, &slen);
    if (r < 0) {
        ret = cli_fail_errno(r, NULL, "cannot sign %s", idhex);
        goto out;
    }
    /* A damaged key must not leave signatures nobody can verify. */
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    cas_keyid_format(pk.keyid, kid);
    if (cas_sig_verify(&pk, (const uint8_t *)sig, slen, manifest, mlen, NULL) < 0) {
        ret = cli_fail(CLI_EXIT_CORRUPT,
                       "the new signature does not verify: the key %s is damaged; make a new "
                       "one with nvx key new",
                       keypath);
        goto out;
    }
    r = cas_store_sig_add_key(ctx->store, id, sig, slen, &pk);
    if (r < 0) {
        ret = cli_fail_errno(r, NULL, "cannot store the signature of %s", idhex);
        goto out;
    }
    size_t gone = drop_older(ctx->store, id, pk.keyid, sig, slen, idhex);
    ret = report(ctx, idhex, kid, name ? name : "", ts, gone);
out:
    free(sig);
    free(manifest);
    return ret;
}

int
cli_sign_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *keyfile = NULL, *name = NULL;
    const cli_opt opts[] = {
        CLI_KEYFILE_OPT(&keyfile),
        { .lname = "name",
          .type = CLI_OPT_STR,
          .dest = &name,
          .metavar = "NAME",
          .help = "model name for the trusted comment (default: its local name)" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_sign, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_sign, npos, 1, 1)) != CLI_GO)
        return r;
    if (name && strlen(name) > CAS_SIG_NAME_MAXBYTES)
        return cli_fail(CLI_EXIT_USAGE, "--name is too long: use at most %d bytes",
                        CAS_SIG_NAME_MAXBYTES);
    for (const char *p = name; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cli_fail(CLI_EXIT_USAGE, "--name holds control characters: use plain text");

    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    char idhex[CAS_HASH_HEX_LEN + 1], local[CAS_SIG_NAME_MAXBYTES + 1];
    cas_hash_to_hex(id, idhex);
    if (!name) {
        first_name(ctx->store, id, local, sizeof(local));
        name = local[0] ? local : NULL;
    }
    char *sec = NULL, *pub = NULL;
    cas_seckey *sk = NULL;
    if ((r = cli_key_paths(keyfile, &sec, &pub)) != CLI_GO)
        return r;
    r = cli_seckey_load(sec, &sk);
    if (r == CLI_GO)
        r = sign_store(ctx, id, idhex, sk, sec, name);
    cas_seckey_free(sk);
    free(sec);
    free(pub);
    return r == CLI_GO ? CLI_EXIT_OK : r;
}
