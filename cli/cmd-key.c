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
#include <sys/resource.h>
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

/* The memory figure the default KDF is sized from: $NVX_KDF_MEM_AVAILABLE
 * (bytes; tests and people who know better), else MemAvailable from
 * /proc/meminfo capped by the address-space and data limits (ulimit -v, -d);
 * 0 when none of these says anything. */
static uint64_t
mem_available(void)
{
    const char *env = getenv("NVX_KDF_MEM_AVAILABLE");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v > 0)
            return v;
    }
    uint64_t avail = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[128];
        unsigned long long kib;
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
                avail = (uint64_t)kib * 1024;
        fclose(f);
    }
    const int res[] = { RLIMIT_AS, RLIMIT_DATA };
    for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
        struct rlimit rl;
        if (getrlimit(res[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (avail == 0 || (uint64_t)rl.rlim_cur < avail))
            avail = (uint64_t)rl.rlim_cur;
    }
    return avail;
}

/* The default scrypt cost: minisign's 1 GiB where the machine has it,
 * else the largest power of two at most half the available memory (a
 * 1 GB board gets 256 MiB: the key must be made, and opened again, while
 * the rest of the system runs), never under --fast-kdf's 16 MiB. opslimit
 * keeps minisign's ratio (memlimit / 32), which lets libsodium use all of
 * memlimit. */
static void
kdf_default(uint64_t *ret_ops, uint64_t *ret_mem)
{
    uint64_t avail = mem_available(), mem = CAS_KDF_MEMLIMIT_DEFAULT;
    while (avail && mem > CAS_KDF_MEMLIMIT_FAST && mem > avail / 2)
        mem /= 2;
    *ret_mem = mem;
    *ret_ops = mem / (CAS_KDF_MEMLIMIT_DEFAULT / CAS_KDF_OPSLIMIT_DEFAULT);
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
    uint64_t ops = CAS_KDF_OPSLIMIT_FAST, mem = CAS_KDF_MEMLIMIT_FAST;
    if (!fast)
        kdf_default(&ops, &mem);
    if (pass && !ctx->quiet && !ctx->json)
        fprintf(stderr, "Deriving a key from the passphrase (scrypt, %llu MiB)...\n",
                (unsigned long long)(mem >> 20));
    r = cas_seckey_write_file(sk, sec, pass, ops, mem, force);
    if (r == -EEXIST) {
        ret =
            cli_fail(CLI_EXIT_USAGE, "a secret key exists at %s: pass --force to replace it", sec);
        goto out;
    }
    if (r == -ENOMEM && pass && !fast) {
        ret = cli_fail(CLI_EXIT_FAIL,
                       "scrypt could not get %llu MiB of memory for the passphrase: pass "
                       "--fast-kdf (16 MiB), or free memory and retry",
                       (unsigned long long)(mem >> 20));
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
          .help = "new: cheaper passphrase hashing (16 MiB scrypt instead of up to 1 GiB, half "
                  "the available memory at most)" },
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
