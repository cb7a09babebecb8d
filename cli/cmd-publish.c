/* SPDX-License-Identifier: MIT */
/*
 * nvx publish ID NAME [--key FILE]: signs a name record "NAME is model ID"
 * with the user's minisign key (libcas/namerec.h), stores it, pins the model
 * (a published model is shared: daemon/share.h), and asks the
 * nvxd serving the store to announce it to the mesh (control PUBLISH). The
 * record goes into the store first, so the daemon never needs the secret
 * key, and a daemon that is not running announces it when it starts.
 *
 * nvx resolve PUBLISHER/NAME [--allow-untrusted]: shows what a name
 * resolves to through the stored records, and whether the signing key is
 * trusted. cli_name_resolve() (cmd-publish.h) is the same resolution for
 * `nvx fetch PUBLISHER/NAME`.
 */
#include "cli/cmd-publish.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/json.h"
#include "cli/keyfile.h"
#include "cli/store.h"
#include "libcas/namerec.h"
#include "libcas/sig.h"
#include "libcas/store.h"
#include "proto/control.h"

int cli_publish_main(cli_ctx *ctx, int argc, char **argv);
int cli_resolve_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_publish = {
    .name = "publish",
    .main = cli_publish_main,
    .usage = "publish ID NAME [--key FILE]",
    .summary = "Sign NAME -> ID with your key and announce it to the mesh",
};

const cli_command cli_cmd_resolve = {
    .name = "resolve",
    .main = cli_resolve_main,
    .usage = "resolve PUBLISHER/NAME [--allow-untrusted]",
    .summary = "Show what a published name resolves to, and whether its key is trusted",
};

enum {
    ANNOUNCE_TIMEOUT_S = 10
};

/* ---------------------------------------------------------------------- */
/* Asking nvxd to announce */

enum announce_result {
    ANN_SENT,
    ANN_NO_DAEMON,
    ANN_FAILED
};

/* Sends PUBLISH (MODEL_ID, NAME, and for the DHT the record and its BEP 44
 * signature dsig when dsig is not NULL) to the nvxd serving the store, if
 * one runs (cli/daemon-client.h, without printing: the record is stored
 * either way and the caller words the outcome). */
static enum announce_result
announce(cli_ctx *ctx, const cas_namerec *rec, const uint8_t *dsig, char *why, size_t cap)
{
    if (!cli_daemon_running(ctx))
        return ANN_NO_DAEMON;
    cli_daemon *d = malloc(sizeof(*d));
    proto_ctl_msg *m = malloc(sizeof(*m));
    enum announce_result res = ANN_FAILED;
    if (d)
        d->fd = -1;
    if (!d || !m || cli_daemon_connect(ctx, d) != CLI_GO)
        goto out;
    /* The record is stored already: a daemon that does not answer must not
     * hang the command. */
    struct timeval tv = { .tv_sec = ANNOUNCE_TIMEOUT_S };
    (void)setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(d->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    uint32_t req = cli_daemon_next_id(d);
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_PUBLISH, req);
    proto_ctl_put_id(&w, PROTO_CTL_T_MODEL_ID, rec->model_id);
    proto_ctl_put_str(&w, PROTO_CTL_T_NAME, rec->name);
    uint8_t buf[CAS_NAMEREC_MAX];
    int n = dsig ? cas_namerec_encode(rec, buf, sizeof(buf)) : -EINVAL;
    if (n > 0) {
        char hex[2 * CAS_NAMEREC_MAX + 1], sighex[2 * CAS_SIGBYTES + 1];
        sodium_bin2hex(hex, sizeof(hex), buf, (size_t)n);
        sodium_bin2hex(sighex, sizeof(sighex), dsig, CAS_SIGBYTES);
        proto_ctl_put_str(&w, PROTO_CTL_T_NAMEREC, hex);
        proto_ctl_put_str(&w, PROTO_CTL_T_DHT_SIG, sighex);
    }
    int r = cli_daemon_send(d, &w);
    while (r == 0) {
        r = cli_daemon_recv(d, m);
        if (r == -EINTR) {
            r = 0;
            continue;
        }
        if (r < 0 || m->id != req || m->type == PROTO_CTL_PROGRESS)
            continue;
        if (m->type == PROTO_CTL_OK) {
            res = ANN_SENT;
            break;
        }
        proto_str text = { (const uint8_t *)"error", 5 };
        proto_ctl_get_str(m, PROTO_CTL_T_MESSAGE, &text);
        snprintf(why, cap, "%.*s", (int)text.len, (const char *)text.p);
        break;
    }
    if (r < 0 && !why[0])
        snprintf(why, cap, "%s", r == -EAGAIN || r == -EWOULDBLOCK ? "no answer" : strerror(-r));
out:
    if (d && d->fd >= 0)
        cli_daemon_close(d);
    free(d);
    free(m);
    return res;
}

/* ---------------------------------------------------------------------- */
/* nvx publish */

static int
report_publish(cli_ctx *ctx, const cas_namerec *rec, enum announce_result ann, const char *why)
{
    char idhex[CAS_HASH_HEX_LEN + 1], kid[CAS_KEYID_HEX_SIZE];
    cas_hash_to_hex(rec->model_id, idhex);
    cas_keyid_format(rec->keyid, kid);
    if (ann == ANN_NO_DAEMON)
        cli_warn("no nvxd serves %s: the name is stored and nvxd announces it when it starts",
                 ctx->store_dir);
    else if (ann == ANN_FAILED)
        cli_warn("nvxd did not announce the name (%s): it is stored; restart nvxd to announce it",
                 why);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "name", rec->name);
        cli_json_kv_str(&j, "id", idhex);
        cli_json_kv_str(&j, "key_id", kid);
        cli_json_kv_u64(&j, "sequence", rec->sequence);
        cli_json_kv_u64(&j, "time", rec->time);
        cli_json_kv_bool(&j, "announced", ann == ANN_SENT);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (!ctx->quiet)
        printf("published %s/%s -> %s (sequence %llu)%s\n", kid, rec->name, idhex,
               (unsigned long long)rec->sequence, ann == ANN_SENT ? ", announced" : "");
    return CLI_EXIT_OK;
}

/* Signs and stores the record; the sequence moves past the stored one and
 * is at least the current time, so signing from two machines still moves
 * forward (FORMAT.md "Name records"). */
static int
sign_store(cli_ctx *ctx, const cas_seckey *sk, const char *name, const uint8_t id[CAS_HASH_LEN],
           cas_namerec *ret)
{
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    uint64_t now = (uint64_t)time(NULL);
    uint64_t seq = now;
    cas_namerec old;
    int r = cas_namerec_store_get(ctx->store, pk.pk, name, &old);
    if (r == 0 && old.sequence >= seq) {
        if (old.sequence == UINT64_MAX)
            return cli_fail(CLI_EXIT_FAIL,
                            "the name %s has the highest sequence already: publish "
                            "under another name",
                            name);
        seq = old.sequence + 1;
    } else if (r < 0 && r != -ENOENT && r != -EBADMSG) {
        return cli_fail_errno(r, NULL, "cannot read the stored record of %s", name);
    }
    r = cas_namerec_sign(sk, name, seq, now, id, ret);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot sign the name %s", name);
    /* A damaged key must not leave records nobody can verify. */
    if (cas_namerec_verify(ret) < 0)
        return cli_fail(CLI_EXIT_CORRUPT, "the new record does not verify: the key is damaged; "
                                          "make a new one with nvx key new");
    r = cas_namerec_store_put(ctx->store, ret);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot store the name record");
    if (r == 0) /* someone stored a higher one in between */
        return cli_fail(CLI_EXIT_FAIL,
                        "a newer record for %s was stored meanwhile: run nvx "
                        "publish again",
                        name);
    return CLI_GO;
}

int
cli_publish_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *keyfile = NULL;
    const cli_opt opts[] = {
        { .lname = "key",
          .type = CLI_OPT_STR,
          .dest = &keyfile,
          .metavar = "FILE",
          .help = "secret key file (default $NVX_KEY or ~/.config/nvx/nvx.key)" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_publish, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_publish, npos, 2, 2)) != CLI_GO)
        return r;
    const char *name = argv[1];
    if (!cas_namerec_name_valid(name, strlen(name)))
        return cli_fail(CLI_EXIT_USAGE,
                        "bad name %s: use 1 to %d printable ASCII characters without spaces", name,
                        CAS_NAMEREC_NAME_MAX);
    uint8_t id[CAS_HASH_LEN];
    if ((r = cli_resolve(ctx, argv[0], id)) != CLI_GO)
        return r;
    cas_model_info info;
    r = cas_store_model_info(ctx->store, id, &info);
    if (r < 0 || info.state != CAS_MODEL_COMPLETE)
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "%s is not complete in this store: fetch or add it first", argv[0]);

    char *sec = NULL, *pub = NULL;
    cas_seckey *sk = NULL;
    cas_namerec rec;
    uint8_t dsig[CAS_SIGBYTES];
    bool has_dsig = false;
    if ((r = cli_key_paths(keyfile, &sec, &pub)) != CLI_GO)
        return r;
    r = cli_seckey_load(sec, &sk);
    if (r == CLI_GO)
        r = sign_store(ctx, sk, name, id, &rec);
    /* The DHT's copy (BEP 44) is signed here too, where the key is
     * unlocked: nvxd puts it but never holds the key. */
    if (r == CLI_GO)
        has_dsig = cas_namerec_dht_sign(sk, &rec, dsig) == 0;
    cas_seckey_free(sk);
    free(sec);
    free(pub);
    if (r != CLI_GO)
        return r;
    /* Publishing is the user's choice to share the model (daemon/share.h):
     * the pin makes nvxd's default `serve = pinned` serve and announce it,
     * and keeps gc from removing what the name points to. */
    r = cas_store_pin(ctx->store, id);
    if (r < 0)
        return cli_fail_errno(r, NULL, "published, but cannot pin %s: run nvx pin %s", argv[0],
                              argv[0]);
    char why[256] = "";
    enum announce_result ann = announce(ctx, &rec, has_dsig ? dsig : NULL, why, sizeof(why));
    return report_publish(ctx, &rec, ann, why);
}

/* ---------------------------------------------------------------------- */
/* Resolution */

/* Finds the record; prints errors. */
static int
lookup(cli_ctx *ctx, const char *target, cas_name_resolution *res)
{
    cas_store *s;
    int r = cli_store_open(ctx, false, &s);
    if (r != CLI_GO)
        return r;
    r = cas_namerec_resolve(s, target, res);
    switch (r) {
    case 0:
        return CLI_GO;
    case -EINVAL:
        return cli_fail(CLI_EXIT_USAGE,
                        "%s is not PUBLISHER/NAME: give a trusted key's name or "
                        "key id, a slash and the name",
                        target);
    case -ENOTUNIQ:
        return cli_fail(CLI_EXIT_USAGE,
                        "several trusted keys are named like the publisher in %s: "
                        "use the key id (nvx trust ls)",
                        target);
    case -ENOENT:
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "no record of %s: check nvx trust ls, or wait until a "
                        "peer that has it connects",
                        target);
    default:
        return cli_fail_errno(r, NULL, "cannot resolve %s", target);
    }
}

int
cli_name_resolve(cli_ctx *ctx, const char *target, bool allow_untrusted,
                 uint8_t ret_id[static CAS_HASH_LEN])
{
    cas_name_resolution res;
    int r = lookup(ctx, target, &res);
    if (r != CLI_GO)
        return r;
    if (!res.trusted) {
        char kid[CAS_KEYID_HEX_SIZE], idhex[CAS_HASH_HEX_LEN + 1];
        cas_keyid_format(res.rec.keyid, kid);
        cas_hash_to_hex(res.rec.model_id, idhex);
        if (!allow_untrusted)
            return cli_fail(CLI_EXIT_UNTRUSTED,
                            "%s names %s, signed by key %s, which you do not trust: nvx trust add "
                            "the key, or pass --allow-untrusted",
                            target, idhex, kid);
        cli_warn("following %s, signed by untrusted key %s", target, kid);
    }
    memcpy(ret_id, res.rec.model_id, CAS_HASH_LEN);
    return CLI_GO;
}

bool
cli_name_dht_candidate(cli_ctx *ctx, const char *target)
{
    cas_store *s;
    cas_name_resolution res;
    uint8_t keyid[CAS_KEYID_LEN];
    char name[CAS_NAMEREC_NAME_MAX + 1];
    /* A trusted key's name parses; a key id parses too, keyring or not:
     * nvxd asks the DHT only for keys of the keyring. */
    return cli_store_open(ctx, false, &s) == CLI_GO &&
           cas_namerec_resolve(s, target, &res) == -ENOENT &&
           cas_namerec_target_parse(s, target, keyid, name) == 0;
}

int
cli_resolve_main(cli_ctx *ctx, int argc, char **argv)
{
    bool allow = false;
    const cli_opt opts[] = {
        { .lname = "allow-untrusted",
          .type = CLI_OPT_FLAG,
          .dest = &allow,
          .help = "exit 0 for a record signed by a key you do not trust" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_resolve, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_resolve, npos, 1, 1)) != CLI_GO)
        return r;
    cas_name_resolution res;
    if ((r = lookup(ctx, argv[0], &res)) != CLI_GO)
        return r;
    char kid[CAS_KEYID_HEX_SIZE], idhex[CAS_HASH_HEX_LEN + 1];
    cas_keyid_format(res.rec.keyid, kid);
    cas_hash_to_hex(res.rec.model_id, idhex);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "target", argv[0]);
        cli_json_kv_str(&j, "name", res.rec.name);
        cli_json_kv_str(&j, "id", idhex);
        cli_json_kv_str(&j, "key_id", kid);
        cli_json_kv_str(&j, "key_name", res.key_name);
        cli_json_kv_bool(&j, "trusted", res.trusted);
        cli_json_kv_u64(&j, "sequence", res.rec.sequence);
        cli_json_kv_u64(&j, "time", res.rec.time);
        cli_json_obj_end(&j);
        if (cli_json_finish(&j) < 0)
            return CLI_EXIT_FAIL;
    } else if (ctx->quiet) {
        printf("%s\n", idhex);
    } else {
        printf("%s\n  key %s%s%s%s%s\n  sequence %llu, signed at %llu\n", idhex, kid,
               res.trusted ? " (trusted" : " (NOT trusted", res.key_name[0] ? ": " : "",
               res.key_name, ")", (unsigned long long)res.rec.sequence,
               (unsigned long long)res.rec.time);
    }
    if (!res.trusted && !allow)
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "%s is signed by key %s, which you do not trust: nvx trust add the key to "
                        "follow it",
                        argv[0], kid);
    return CLI_EXIT_OK;
}
