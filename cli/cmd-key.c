/* SPDX-License-Identifier: MIT */
/*
 * nvx key new|show: the publisher's signing key, in minisign's formats
 * (libcas/sig.h), so that `minisign -S -s nvx.key` and `minisign -V -p
 * nvx.pub` work on the same files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/fsutil.h"
#include "cli/json.h"
#include "cli/keyfile.h"
#include "libcas/sig.h"

int cli_key_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_key = {
    .name = "key",
    .main = cli_key_main,
    .usage = "key new|show [--key FILE] [--unencrypted] [--fast-kdf] [--force]",
    .summary =
        "Make or show the signing key (minisign format; passphrase: terminal or $NVX_PASSPHRASE)",
};

static int
print_pub(cli_ctx *ctx, const cas_pubkey *pk, const char *sec, const char *pub)
{
    char id[CAS_KEYID_HEX_SIZE], b64[CAS_PUBKEY_B64_SIZE], text[CAS_KEYFILE_TEXT_SIZE];
    cas_keyid_format(pk->keyid, id);
    cas_pubkey_base64(pk, b64);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kv_str(&j, "key_id", id);
        cli_json_kv_str(&j, "public_key", b64);
        if (sec) {
            cli_json_kv_str(&j, "secret_key_file", sec);
        }
        cli_json_kv_str(&j, "public_key_file", pub);
        cli_json_obj_end(&j);
        return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (ctx->quiet) {
        printf("%s\n", b64);
        return CLI_EXIT_OK;
    }
    size_t n;
    if (cas_pubkey_encode(pk, text, sizeof(text), &n) < 0)
        return cli_fail(CLI_EXIT_FAIL, "cannot encode the public key");
    fwrite(text, 1, n, stdout);
    return CLI_EXIT_OK;
}

static int
key_new(cli_ctx *ctx, const char *sec, const char *pub, bool unencrypted, bool fast, bool force)
{
    cas_seckey *sk = NULL;
    char *pass = NULL;
    int ret = CLI_EXIT_FAIL;
    struct stat st;
    if (!force && stat(sec, &st) == 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "a secret key exists at %s: keep it, or pass --force to replace it "
                        "(signatures made with it stay valid only for its public key)",
                        sec);
    int r = cli_mkdir_p(sec, false);
    if (r < 0)
        return cli_fail_errno(r, "pass --key FILE in a writable directory",
                              "cannot create the directory for %s", sec);
    if (!unencrypted) {
        if (cas_sig_init() < 0 || !(pass = sodium_malloc(CAS_PASSPHRASE_MAXBYTES + 1)))
            return cli_fail_errno(-ENOMEM, NULL, "cannot read the passphrase");
        r = cli_passphrase_read("Passphrase for the new key: ", true, pass,
                                CAS_PASSPHRASE_MAXBYTES + 1);
        if (r != CLI_GO) {
            ret = r;
            goto out;
        }
        if (!*pass) {
            ret = cli_fail(CLI_EXIT_USAGE, "empty passphrase: type one, or pass --unencrypted");
            goto out;
        }
    }
    r = cas_seckey_generate(&sk);
    if (r < 0) {
        ret = cli_fail_errno(r, NULL, "cannot generate a key");
        goto out;
    }
    uint64_t ops = fast ? CAS_KDF_OPSLIMIT_FAST : CAS_KDF_OPSLIMIT_DEFAULT;
    uint64_t mem = fast ? CAS_KDF_MEMLIMIT_FAST : CAS_KDF_MEMLIMIT_DEFAULT;
    if (pass && !ctx->quiet && !ctx->json)
        fprintf(stderr, "Deriving a key from the passphrase (scrypt, %llu MiB)...\n",
                (unsigned long long)(mem >> 20));
    r = cas_seckey_write_file(sk, sec, pass, ops, mem, force);
    if (r == -EEXIST) {
        ret =
            cli_fail(CLI_EXIT_USAGE, "a secret key exists at %s: pass --force to replace it", sec);
        goto out;
    }
    if (r < 0) {
        ret = cli_fail_errno(r, NULL, "cannot write the secret key %s", sec);
        goto out;
    }
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    /* The secret key is new, so an old public key beside it is stale. */
    r = cas_pubkey_write_file(&pk, pub, true);
    if (r < 0) {
        ret = cli_fail_errno(r, NULL, "cannot write the public key %s", pub);
        goto out;
    }
    if (!ctx->json && !ctx->quiet)
        fprintf(stderr, "Secret key: %s (keep it secret)\nPublic key: %s\n", sec, pub);
    ret = print_pub(ctx, &pk, sec, pub);
out:
    cas_seckey_free(sk);
    if (pass)
        sodium_free(pass);
    return ret;
}

static int
key_show(cli_ctx *ctx, const char *sec, const char *pub)
{
    cas_pubkey pk;
    int r = cas_pubkey_load_file(pub, &pk);
    if (r == -ENOENT) {
        /* No .pub beside the key: derive it from the secret key. */
        cas_seckey *sk = NULL;
        struct stat st;
        if (stat(sec, &st) < 0)
            return cli_fail(CLI_EXIT_NOTFOUND, "no key at %s: make one with nvx key new", sec);
        int rr = cli_seckey_load(sec, &sk);
        if (rr != CLI_GO)
            return rr;
        cas_seckey_public(sk, &pk);
        cas_seckey_free(sk);
        return print_pub(ctx, &pk, sec, pub);
    }
    if (r < 0)
        return cli_fail(CLI_EXIT_CORRUPT, "cannot read the public key %s: %s", pub, strerror(-r));
    return print_pub(ctx, &pk, NULL, pub);
}

int
cli_key_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *keyfile = NULL;
    bool unencrypted = false, fast = false, force = false;
    const cli_opt opts[] = {
        CLI_KEYFILE_OPT(&keyfile),
        { .lname = "unencrypted",
          .type = CLI_OPT_FLAG,
          .dest = &unencrypted,
          .help = "new: store the secret key without a passphrase" },
        { .lname = "fast-kdf",
          .type = CLI_OPT_FLAG,
          .dest = &fast,
          .help = "new: cheaper passphrase hashing (16 MiB scrypt instead of 1 GiB)" },
        { .lname = "force",
          .type = CLI_OPT_FLAG,
          .dest = &force,
          .help = "new: replace an existing key" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_key, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_key, npos, 1, 1)) != CLI_GO)
        return r;
    bool is_new = strcmp(argv[0], "new") == 0;
    if (!is_new && strcmp(argv[0], "show") != 0)
        return cli_fail(CLI_EXIT_USAGE, "unknown key command '%s': use nvx key new or nvx key show",
                        argv[0]);
    if (!is_new && (unencrypted || fast || force))
        return cli_fail(
            CLI_EXIT_USAGE,
            "--unencrypted, --fast-kdf and --force go with nvx key new only: drop them");
    char *sec = NULL, *pub = NULL;
    r = cli_key_paths(keyfile, &sec, &pub);
    if (r != CLI_GO)
        return r;
    r = is_new ? key_new(ctx, sec, pub, unencrypted, fast, force) : key_show(ctx, sec, pub);
    free(sec);
    free(pub);
    return r;
}
