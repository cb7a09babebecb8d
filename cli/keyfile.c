/* SPDX-License-Identifier: MIT */
/*
 * Key paths, passphrases and loading the secret key (cli/keyfile.h), for
 * nvx key, sign and trust.
 */
#include "cli/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

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
    uint64_t memlimit = 0;
    int r = cas_seckey_probe(buf, (size_t)n, &enc, &memlimit);
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
    else if (r == -ENOMEM && enc) /* scrypt's memory: the one large allocation here */
        ret_code = cli_fail(CLI_EXIT_FAIL,
                            "the passphrase of %s needs %llu MiB of memory for scrypt, more than "
                            "this machine gave: free memory, or make a key here with nvx key new "
                            "(it sizes scrypt to the machine)",
                            path, (unsigned long long)(memlimit >> 20));
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
