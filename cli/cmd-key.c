/* SPDX-License-Identifier: MIT */
/*
 * nvx key new|show: the publisher's signing key, in minisign's formats
 * (libcas/sig.h), so that `minisign -S -s nvx.key` and `minisign -V -p
 * nvx.pub` work on the same files. Also the key path and passphrase helpers
 * of cli/keyfile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

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

/* --- paths ---------------------------------------------------------------- */

static char *
join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

int
cli_key_paths(const char *opt_key, char **ret_sec, char **ret_pub)
{
    char *sec = NULL;
    const char *env = getenv("NVX_KEY");
    if (opt_key && *opt_key) {
        sec = strdup(opt_key);
    } else if (env && *env) {
        sec = strdup(env);
    } else {
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/') /* the XDG spec: relative paths are ignored */
            sec = join(xdg, "/nvx/nvx.key");
        else if (home && *home)
            sec = join(home, "/.config/nvx/nvx.key");
        else
            return cli_fail(CLI_EXIT_USAGE, "no key location: pass --key FILE or set NVX_KEY");
    }
    if (!sec)
        return cli_fail_errno(-ENOMEM, NULL, "cannot build the key path");
    size_t n = strlen(sec);
    char *pub;
    if (n > 4 && strcmp(sec + n - 4, ".key") == 0) {
        pub = strdup(sec);
        if (pub)
            memcpy(pub + n - 4, ".pub", 4);
    } else {
        pub = join(sec, ".pub");
    }
    if (!pub) {
        free(sec);
        return cli_fail_errno(-ENOMEM, NULL, "cannot build the key path");
    }
    *ret_sec = sec;
    *ret_pub = pub;
    return CLI_GO;
}

/* --- passphrases ---------------------------------------------------------- */

/* Reads one line from the terminal with echo off. */
static int
tty_read(int fd, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    bool restore = false;
    int r = 0;
    /* Echo goes off (and type-ahead is dropped) before the prompt shows, so
     * nothing typed after the prompt can be echoed or lost. */
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        r = -errno;
        goto out;
    }
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -errno;
            break;
        }
        if (k == 0 || c == '\n')
            break;
        if (n + 1 >= cap) {
            r = -EMSGSIZE;
            continue; /* swallow the rest of the line */
        }
        buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
out:
    if (restore)
        tcsetattr(fd, TCSANOW, &old);
    return r;
}

int
cli_passphrase_read(const char *prompt, bool confirm, char *buf, size_t cap)
{
    const char *env = getenv("NVX_PASSPHRASE");
    if (env) {
        if (strlen(env) >= cap || strlen(env) > CAS_PASSPHRASE_MAXBYTES)
            return cli_fail(CLI_EXIT_USAGE, "NVX_PASSPHRASE is too long: use at most %d bytes",
                            CAS_PASSPHRASE_MAXBYTES);
        memcpy(buf, env, strlen(env) + 1);
        return CLI_GO;
    }
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cli_fail(CLI_EXIT_USAGE, "no terminal to read the passphrase from: set "
                                        "NVX_PASSPHRASE, or use an unencrypted key");
    int ret = CLI_GO;
    char *again = sodium_malloc(cap);
    if (!again) {
        close(fd);
        return cli_fail_errno(-ENOMEM, NULL, "cannot read the passphrase");
    }
    int r = tty_read(fd, prompt, buf, cap);
    if (r == 0 && confirm)
        r = tty_read(fd, "Passphrase (again): ", again, cap);
    if (r == -EMSGSIZE)
        ret = cli_fail(CLI_EXIT_USAGE, "passphrase too long: use at most %zu bytes", cap - 1);
    else if (r < 0)
        ret = cli_fail_errno(r, NULL, "cannot read the passphrase");
    else if (confirm && strcmp(buf, again) != 0)
        ret = cli_fail(CLI_EXIT_USAGE, "the passphrases differ: try again");
    sodium_free(again);
    close(fd);
    if (ret != CLI_GO)
        sodium_memzero(buf, cap);
    return ret;
}

int
cli_seckey_load(const char *path, cas_seckey **ret)
{
    uint8_t buf[CAS_KEYFILE_MAXBYTES];
    char *pass = NULL;
    int ret_code = CLI_GO;
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return cli_fail(CLI_EXIT_NOTFOUND, "no secret key at %s: make one with nvx key new", path);
    if (fd < 0)
        return cli_fail_errno(-errno, NULL, "cannot open the secret key %s", path);
    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
        ret_code = cli_fail_errno(-errno, NULL, "cannot read the secret key %s", path);
        goto out;
    }
    bool enc = false;
    int r = cas_seckey_probe(buf, (size_t)n, &enc, NULL);
    if (r < 0) {
        ret_code =
            cli_fail(CLI_EXIT_CORRUPT, "%s is not a minisign secret key (%s): pass --key FILE",
                     path, strerror(-r));
        goto out;
    }
    if (enc) {
        if (cas_sig_init() < 0 || !(pass = sodium_malloc(CAS_PASSPHRASE_MAXBYTES + 1))) {
            ret_code = cli_fail_errno(-ENOMEM, NULL, "cannot read the passphrase");
            goto out;
        }
        ret_code = cli_passphrase_read("Passphrase: ", false, pass, CAS_PASSPHRASE_MAXBYTES + 1);
        if (ret_code != CLI_GO)
            goto out;
    }
    r = cas_seckey_decode(buf, (size_t)n, pass, ret);
    if (r == -EACCES)
        ret_code = cli_fail(CLI_EXIT_FAIL, "wrong passphrase for %s: try again", path);
    else if (r < 0)
        ret_code =
            cli_fail(CLI_EXIT_CORRUPT, "cannot load the secret key %s: %s", path, strerror(-r));
out:
    sodium_memzero(buf, sizeof(buf));
    if (pass)
        sodium_free(pass);
    close(fd);
    return ret_code;
}

/* --- commands ------------------------------------------------------------- */

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
        { .lname = "key",
          .type = CLI_OPT_STR,
          .dest = &keyfile,
          .metavar = "FILE",
          .help = "secret key file (default $NVX_KEY or ~/.config/nvx/nvx.key)" },
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
