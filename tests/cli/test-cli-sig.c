/* SPDX-License-Identifier: MIT */
/*
 * nvx key, sign, trust and signature reporting end to end through the real
 * binary, in a temp store and a temp config dir, with the `minisign` tool
 * checking what nvx writes (and signing keys nvx then uses).
 */
/* posix_openpt, grantpt, unlockpt, ptsname: the terminal test. */
#define _XOPEN_SOURCE 700

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clitest.h"
#include "libcas/hash.h"
#include "libcas/sig.h"
#include "libcas/store.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;
    char store[4096];
    char key[4096], pub[4096];
    char id[CAS_HASH_HEX_LEN + 1];
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("cli-sig");
    snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/cfg/nvx/nvx.key", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s/cfg/nvx/nvx.pub", f->dir);
    /* The default key location follows XDG_CONFIG_HOME; keep the user's
     * own keys and environment out of the way. */
    char cfg[4096];
    snprintf(cfg, sizeof(cfg), "%s/cfg", f->dir);
    setenv("XDG_CONFIG_HOME", cfg, 1);
    unsetenv("NVX_KEY");
    unsetenv("NVX_PASSPHRASE");
    unsetenv("NVX_STORE");

    char model[4096], *out = NULL, *err = NULL;
    snprintf(model, sizeof(model), "%s/model.bin", f->dir);
    ct_write_random(model, 200000, 7);
    int r = ct_run(f->store, &out, &err, "add", model, "--name", "tiny", NULL);
    if (r != 0)
        fail_msg("add: exit %d: %s", r, err);
    snprintf(f->id, sizeof(f->id), "%s", ct_last_word(out));
    assert_int_equal(strlen(f->id), CAS_HASH_HEX_LEN);
    free(out);
    free(err);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    unsetenv("NVX_PASSPHRASE");
    return 0;
}

/* Reads a whole file as a NUL-terminated string (tu_read_file does not
 * terminate). */
static int
read_text(const char *path, uint8_t **ret, size_t *ret_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = tu_read_file(path, &buf, &len);
    if (r < 0)
        return r;
    uint8_t *t = realloc(buf, len + 1);
    assert_non_null(t);
    t[len] = '\0';
    *ret = t;
    *ret_len = len;
    return 0;
}

/* Runs argv (NULL-terminated) directly; returns the exit status. */
static int
run(char **ret_out, const char *arg0, ...)
{
    char *argv[32];
    int n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char *err = NULL;
    int r = tu_run(argv, ret_out, &err);
    if (r != 0)
        fprintf(stderr, "# %s -> %d: %s\n", arg0, r, err ? err : "");
    free(err);
    return r;
}

/* Exit status of an nvx run that must fail with one error line. */
static int
fails(const fixture *f, const char *needle, ...)
{
    char *args[16];
    int n = 0;
    va_list ap;
    va_start(ap, needle);
    for (const char *a = va_arg(ap, const char *); a && n < 16; a = va_arg(ap, const char *))
        args[n++] = (char *)a;
    va_end(ap);
    char *out = NULL, *err = NULL;
    int r = ct_runv(f->store, n, args, &out, &err);
    assert_int_not_equal(r, 0);
    ct_assert_one_error(err, needle);
    free(out);
    free(err);
    return r;
}

static void
test_key_new_show(void **state)
{
    fixture *f = *state;
    char *out = NULL, *err = NULL;
    struct stat st;
    assert_int_equal(ct_run(NULL, &out, &err, "key", "new", "--unencrypted", NULL), 0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char kdir[4096];
    snprintf(kdir, sizeof(kdir), "%s/cfg/nvx", f->dir); /* made by key new, private */
    assert_int_equal(stat(kdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(f->pub, &st), 0);
    /* stdout is the .pub file, byte for byte, as `minisign` writes it. */
    uint8_t *pubtext = NULL;
    size_t publen;
    assert_int_equal(read_text(f->pub, &pubtext, &publen), 0);
    assert_int_equal(strlen(out), publen);
    assert_memory_equal(out, pubtext, publen);
    assert_non_null(strstr(out, "untrusted comment: minisign public key "));
    free(out);
    free(err);
    char *show = NULL;
    assert_int_equal(ct_run(NULL, &show, NULL, "key", "show", NULL), 0);
    assert_memory_equal(show, pubtext, publen);
    assert_int_equal(strlen(show), publen);
    free(show);
    /* -q prints only the base64 line; --json the fields. */
    assert_int_equal(ct_run(NULL, &show, NULL, "-q", "key", "show", NULL), 0);
    assert_int_equal(strlen(show), CAS_PUBKEY_B64_SIZE); /* 56 chars + "\n" */
    assert_non_null(strstr((char *)pubtext, show));
    free(show);
    assert_int_equal(ct_run(NULL, &show, NULL, "--json", "key", "show", NULL), 0);
    assert_non_null(strstr(show, "\"key_id\""));
    assert_non_null(strstr(show, "\"public_key\""));
    free(show);

    /* Never overwritten without --force; --force makes a different key. */
    fails(f, "--force", "key", "new", "--unencrypted", NULL);
    assert_int_equal(ct_run(NULL, &out, NULL, "key", "new", "--unencrypted", "--force", NULL), 0);
    assert_int_equal(stat(f->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_null(strstr((char *)pubtext, strchr(out, '\n') + 1));
    free(out);
    free(pubtext);

    /* The public key is derived from the secret key when .pub is gone. */
    assert_int_equal(read_text(f->pub, &pubtext, &publen), 0);
    unlink(f->pub);
    assert_int_equal(ct_run(NULL, &show, NULL, "key", "show", NULL), 0);
    assert_memory_equal(show, pubtext, publen);
    free(show);
    free(pubtext);

    /* Usage errors. */
    fails(f, "key new", "key", "frob", NULL);
    fails(f, "--unencrypted", "key", "show", "--unencrypted", NULL);
}

static void
test_key_passphrase(void **state)
{
    fixture *f = *state;
    char kpath[4096], ppath[4096];
    snprintf(kpath, sizeof(kpath), "%s/enc.key", f->dir);
    snprintf(ppath, sizeof(ppath), "%s/enc.pub", f->dir);
    setenv("NVX_PASSPHRASE", "open sesame", 1);
    char *out = NULL, *err = NULL;
    int r = ct_run(NULL, &out, &err, "key", "new", "--key", kpath, "--fast-kdf", NULL);
    if (r != 0)
        fail_msg("key new: %d %s", r, err);
    free(out);
    free(err);
    struct stat st;
    assert_int_equal(stat(ppath, &st), 0); /* .key -> .pub beside it */
    /* The file is a minisign encrypted key: the right passphrase signs. */
    assert_int_equal(ct_run(f->store, &out, &err, "sign", f->id, "--key", kpath, NULL), 0);
    assert_non_null(strstr(out, "signed "));
    free(out);
    free(err);
    setenv("NVX_PASSPHRASE", "open sesamE", 1);
    fails(f, "wrong passphrase", "sign", f->id, "--key", kpath, NULL);
    /* An empty passphrase is refused when making a key. */
    setenv("NVX_PASSPHRASE", "", 1);
    char k2[4096];
    snprintf(k2, sizeof(k2), "%s/empty.key", f->dir);
    fails(f, "--unencrypted", "key", "new", "--key", k2, NULL);
    unsetenv("NVX_PASSPHRASE");
    /* NVX_KEY selects the key too. */
    setenv("NVX_KEY", kpath, 1);
    assert_int_equal(ct_run(NULL, &out, NULL, "key", "show", NULL), 0);
    uint8_t *pubtext = NULL;
    size_t publen;
    assert_int_equal(read_text(ppath, &pubtext, &publen), 0);
    assert_memory_equal(out, pubtext, publen);
    free(pubtext);
    free(out);
    unsetenv("NVX_KEY");
    /* No key at all. */
    snprintf(k2, sizeof(k2), "%s/none.key", f->dir);
    assert_int_equal(fails(f, "nvx key new", "sign", f->id, "--key", k2, NULL), 3);
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The key id of a public key file, as nvx and minisign print it. */
static void
key_id_of(const char *pub, char kid[static CAS_KEYID_HEX_SIZE])
{
    cas_pubkey pk;
    assert_int_equal(cas_pubkey_load_file(pub, &pk), 0);
    cas_keyid_format(pk.keyid, kid);
}

static void
test_sign_trust_verify(void **state)
{
    fixture *f = *state;
    char *out = NULL, *err = NULL;
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--unencrypted", NULL), 0);
    assert_int_equal(ct_run(f->store, &out, &err, "sign", f->id, NULL), 0);
    assert_non_null(strstr(out, f->id));
    free(out);
    free(err);
    /* Signed again: the key's older signature is replaced, not added. */
    assert_int_equal(
        ct_run(f->store, &out, NULL, "--json", "sign", f->id, "--name", "tiny v2", NULL), 0);
    assert_non_null(strstr(out, "\"replaced\":1"));
    free(out);

    /* Not yet trusted: reported as such, and --require-trusted fails. */
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"untrusted\""), 1);
    assert_null(strstr(out, "\"trusted\""));
    free(out);
    assert_int_equal(fails(f, "no signature from a trusted key on 1 of 1 models", "verify", f->id,
                           "--require-trusted", NULL),
                     5);

    /* Trust by .pub file; then the signature is valid and trusted. */
    assert_int_equal(ct_run(f->store, &out, NULL, "trust", "add", f->pub, "me", NULL), 0);
    assert_non_null(strstr(out, "trusted "));
    free(out);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"trusted\""), 1);
    assert_non_null(strstr(out, "name:tiny v2"));
    assert_non_null(strstr(out, "\"me\""));
    free(out);
    assert_int_equal(ct_run(f->store, &out, NULL, "verify", f->id, "--require-trusted", NULL), 0);
    assert_non_null(strstr(out, "1 trusted"));
    free(out);

    /* A second key signs too: two signatures, one trusted. */
    char k2[4096];
    snprintf(k2, sizeof(k2), "%s/second.key", f->dir);
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--unencrypted", "--key", k2, NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "sign", f->id, "--key", k2, NULL), 0);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"untrusted\""), 1);
    assert_int_equal(count(out, "\"trusted\""), 1);
    free(out);
    /* verify names every signer and says whether it is trusted. */
    char kid1[CAS_KEYID_HEX_SIZE], kid2[CAS_KEYID_HEX_SIZE], want[128];
    key_id_of(f->pub, kid1);
    char p2[4096];
    snprintf(p2, sizeof(p2), "%s/second.pub", f->dir);
    key_id_of(p2, kid2);
    assert_int_equal(ct_run(f->store, &out, NULL, "verify", f->id, NULL), 0);
    assert_non_null(strstr(out, "2 signatures, 1 trusted: "));
    snprintf(want, sizeof(want), "%s (me, trusted)", kid1);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "%s (untrusted)", kid2);
    assert_non_null(strstr(out, want));
    free(out);

    /* Keyring: ls, --json, rm by name and by id. */
    uint8_t *p2text = NULL;
    size_t p2len;
    assert_int_equal(read_text(p2, &p2text, &p2len), 0);
    char *line = strchr((char *)p2text, '\n') + 1; /* bare "RW..." line */
    line[CAS_PUBKEY_B64_SIZE - 1] = '\0';
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "add", line, "second one", NULL), 0);
    assert_int_equal(ct_run(f->store, &out, NULL, "trust", "ls", NULL), 0);
    assert_int_equal(count(out, "\n"), 2);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "second one"));
    assert_null(strstr(out, " \n"));
    free(out);
    /* No store yet: no trusted keys, not an error. */
    char nostore[4200];
    snprintf(nostore, sizeof(nostore), "%s/nostore", f->dir);
    assert_int_equal(ct_run(nostore, &out, NULL, "--json", "trust", "ls", NULL), 0);
    assert_string_equal(out, "[]\n");
    free(out);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "trust", "ls", NULL), 0);
    assert_int_equal(count(out, "\"key_id\""), 2);
    free(out);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"trusted\""), 2);
    free(out);
    /* The same key id with another public key replaces it, with a warning. */
    cas_pubkey evil;
    char evil_b64[CAS_PUBKEY_B64_SIZE], *werr = NULL;
    assert_int_equal(cas_pubkey_load_file(f->pub, &evil), 0);
    evil.pk[5] ^= 1;
    cas_pubkey_base64(&evil, evil_b64);
    assert_int_equal(ct_run(f->store, &out, &werr, "trust", "add", evil_b64, "evil", NULL), 0);
    assert_non_null(strstr(werr, "warning"));
    free(out);
    free(werr);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"invalid\""), 1); /* signature no longer verifies */
    free(out);
    assert_int_equal(ct_run(f->store, &out, &err, "verify", f->id, NULL), 4);
    snprintf(want, sizeof(want), "FAILED  %s  signature by %s (evil, invalid)", f->id, kid1);
    assert_non_null(strstr(out, want));
    ct_assert_one_error(err, "invalid signature");
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "add", f->pub, "me", NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "rm", "me", NULL), 0);
    cas_pubkey pk;
    char kid[CAS_KEYID_HEX_SIZE];
    assert_int_equal(cas_pubkey_decode((uint8_t *)line, strlen(line), &pk), 0);
    cas_keyid_format(pk.keyid, kid);
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "rm", kid, NULL), 0);
    assert_int_equal(ct_run(f->store, &out, NULL, "trust", "ls", NULL), 0);
    assert_string_equal(out, "");
    free(out);
    free(p2text);
    assert_int_equal(fails(f, "nvx trust ls", "trust", "rm", "me", NULL), 3);
    fails(f, "public key", "trust", "add", "RWnotakey", NULL);
    fails(f, "add, ls or rm", "trust", "frob", NULL);
    char junk[4096];
    snprintf(junk, sizeof(junk), "%s/junk.pub", f->dir);
    assert_int_equal(tu_write_file(junk, "untrusted comment: x\nnot base64\n", 32), 0);
    fails(f, "not a minisign public key", "trust", "add", junk, NULL);
}

/*
 * Runs nvx args on a new pseudo-terminal (its controlling terminal) and
 * answers prompts: each time the output since the last answer contains
 * prompts[i], replies[i] and a newline are typed. Returns the exit status;
 * *ret_out gets everything the terminal showed.
 */
static int
pty_run(char *const args[], const char *const prompts[], const char *const replies[],
        char **ret_out)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char *sname = strdup(ptsname(m));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        int s = open(sname, O_RDWR); /* becomes the controlling terminal */
        if (s < 0)
            _exit(126);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        execv(ct_nvx(), args);
        _exit(127);
    }
    free(sname);
    size_t cap = 1 << 16, len = 0, mark = 0, next = 0;
    char *buf = calloc(1, cap);
    bool hung = false;
    for (;;) {
        struct pollfd p = { .fd = m, .events = POLLIN };
        int k = poll(&p, 1, 20000);
        if (k <= 0) {
            hung = true; /* the child waits for something: kill it below */
            break;
        }
        ssize_t n = read(m, buf + len, cap - 1 - len);
        if (n <= 0)
            break; /* EIO once the child closed the terminal */
        len += (size_t)n;
        buf[len] = '\0';
        if (prompts[next] && strstr(buf + mark, prompts[next])) {
            char line[256];
            int ln = snprintf(line, sizeof(line), "%s\n", replies[next]);
            assert_int_equal(write(m, line, (size_t)ln), ln);
            mark = len;
            next++;
        }
    }
    int status = 0;
    if (hung)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (hung)
        fail_msg("nvx on a terminal hung; it showed: %s", buf);
    close(m);
    *ret_out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Passphrases typed on the terminal: asked twice, never echoed. */
static void
test_tty_passphrase(void **state)
{
    fixture *f = *state;
    char kpath[4096], store_opt[4200];
    snprintf(kpath, sizeof(kpath), "%s/tty.key", f->dir);
    snprintf(store_opt, sizeof(store_opt), "--store=%s", f->store);
    const char *prompts[] = { "Passphrase", "again", NULL };
    const char *same[] = { "tty s3cret", "tty s3cret" };
    const char *differ[] = { "tty s3cret", "tty s3creT" };
    char *args[] = { "nvx", "key", "new", "--fast-kdf", "--key", kpath, NULL };
    char *out = NULL;
    assert_int_equal(pty_run(args, prompts, differ, &out), 2);
    assert_non_null(strstr(out, "differ"));
    assert_null(strstr(out, "s3cre"));
    free(out);
    struct stat st;
    assert_int_not_equal(stat(kpath, &st), 0);

    assert_int_equal(pty_run(args, prompts, same, &out), 0);
    assert_null(strstr(out, "s3cret")); /* echo was off */
    free(out);
    assert_int_equal(stat(kpath, &st), 0);

    /* Signing asks once, on the terminal too. */
    const char *once[] = { "Passphrase", NULL };
    char *sign[] = { "nvx", store_opt, "sign", f->id, "--key", kpath, NULL };
    assert_int_equal(pty_run(sign, once, same, &out), 0);
    assert_non_null(strstr(out, "signed "));
    assert_null(strstr(out, "s3cret"));
    free(out);
    assert_int_equal(pty_run(sign, once, differ + 1, &out), 1);
    assert_non_null(strstr(out, "wrong passphrase"));
    free(out);
}

/* What nvx writes is checked by minisign; a minisign key signs in nvx. */
static void
test_minisign_checks_nvx(void **state)
{
    fixture *f = *state;
    char *ms = tu_find_program("minisign");
    if (!ms) {
        printf("skipping: minisign not found in PATH (apt-get install minisign)\n");
        skip();
    }
    char *out = NULL, b64[CAS_PUBKEY_B64_SIZE];
    char man[4096], sig[4096];
    snprintf(man, sizeof(man), "%s/manifest.bin", f->dir);
    snprintf(sig, sizeof(sig), "%s/manifest.bin.minisig", f->dir);

    setenv("NVX_PASSPHRASE", "pw", 1);
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--fast-kdf", NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "sign", "tiny", NULL), 0);
    unsetenv("NVX_PASSPHRASE");
    assert_int_equal(ct_run(f->store, &out, NULL, "manifest", f->id, "-o", man, "--sig", sig, NULL),
                     0);
    free(out);
    cas_pubkey pk;
    assert_int_equal(cas_pubkey_load_file(f->pub, &pk), 0);
    cas_pubkey_base64(&pk, b64);
    /* minisign -Vm manifest.bin -x manifest.bin.minisig -P <pk> */
    assert_int_equal(run(&out, ms, "-Vm", man, "-x", sig, "-P", b64, NULL), 0);
    char want[128];
    snprintf(want, sizeof(want), "nvx-model:%s name:tiny", f->id);
    assert_non_null(strstr(out, want));
    free(out);
    /* The manifest file hashes to the id (b2sum -l 256 would say so). */
    uint8_t *mb;
    size_t ml;
    uint8_t h[CAS_HASH_LEN];
    char hex[CAS_HASH_HEX_LEN + 1];
    assert_int_equal(tu_read_file(man, &mb, &ml), 0);
    cas_hash(mb, ml, h);
    cas_hash_to_hex(h, hex);
    assert_string_equal(hex, f->id);
    /* And minisign refuses the signature for other bytes. */
    mb[ml / 2] ^= 1;
    assert_int_equal(tu_write_file(man, mb, ml), 0);
    free(mb);
    char *argv[] = { ms, "-Vm", man, "-x", sig, "-P", b64, NULL };
    assert_int_not_equal(tu_run(argv, NULL, NULL), 0);

    /* A key made by minisign signs in nvx; minisign verifies the result.
     * (Passphrase-protected minisign keys, at minisign's 1 GiB scrypt cost,
     * are covered once, in tests/libcas/test-key.c.) */
    char mk[4096], mp[4096];
    snprintf(mk, sizeof(mk), "%s/ms.key", f->dir);
    snprintf(mp, sizeof(mp), "%s/ms.pub", f->dir);
    assert_int_equal(run(NULL, ms, "-G", "-W", "-s", mk, "-p", mp, NULL), 0);
    /* key show prints minisign's public key file exactly, also when it
     * has to derive it from the secret key (as minisign -R does). */
    uint8_t *mptext = NULL;
    size_t mplen;
    assert_int_equal(read_text(mp, &mptext, &mplen), 0);
    assert_int_equal(ct_run(NULL, &out, NULL, "key", "show", "--key", mk, NULL), 0);
    assert_string_equal(out, (char *)mptext);
    free(out);
    assert_int_equal(rename(mp, man), 0);
    assert_int_equal(ct_run(NULL, &out, NULL, "key", "show", "--key", mk, NULL), 0);
    assert_string_equal(out, (char *)mptext);
    free(out);
    assert_int_equal(rename(man, mp), 0);
    free(mptext);
    assert_int_equal(ct_run(f->store, NULL, NULL, "sign", f->id, "--key", mk, NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "add", mp, "minisign", NULL), 0);
    assert_int_equal(ct_run(f->store, &out, NULL, "--json", "info", f->id, NULL), 0);
    assert_int_equal(count(out, "\"untrusted\""), 1); /* nvx's own key is not trusted */
    assert_int_equal(count(out, "\"trusted\""), 1);
    assert_non_null(strstr(out, "\"minisign\""));
    free(out);
    cas_pubkey mpk;
    char mkid[CAS_KEYID_HEX_SIZE];
    assert_int_equal(cas_pubkey_load_file(mp, &mpk), 0);
    cas_keyid_format(mpk.keyid, mkid);
    assert_int_equal(ct_run(f->store, &out, NULL, "manifest", f->id, "-o", man, "--sig", sig,
                            "--key", mkid, NULL),
                     0);
    free(out);
    assert_int_equal(run(NULL, ms, "-Vm", man, "-x", sig, "-p", mp, NULL), 0);
    /* The key id as typed: either case, leading zeros or not; a bad one is
     * refused before anything is written. */
    char padded[32];
    snprintf(padded, sizeof(padded), "%16s", mkid);
    for (char *c = padded; *c; c++)
        *c = *c == ' ' ? '0' : (char)tolower((unsigned char)*c);
    assert_int_equal(ct_run(f->store, NULL, NULL, "manifest", f->id, "-o", man, "--sig", sig,
                            "--key", padded, NULL),
                     0);
    assert_int_equal(run(NULL, ms, "-Vm", man, "-x", sig, "-p", mp, NULL), 0);
    unlink(man);
    assert_int_equal(fails(f, "invalid key id", "manifest", f->id, "-o", man, "--sig", sig, "--key",
                           "XYZ", NULL),
                     2);
    struct stat st;
    assert_int_not_equal(stat(man, &st), 0);

    free(ms);
}

/* Writes a copy of the model's signature by the default key with one
 * base64 character of the Ed25519 signature changed: a blob that parses,
 * carries the publisher's key id and does not verify. Returns it. */
static uint8_t *
forge(fixture *f, size_t *ret_len)
{
    char sig[4096], mf[4096];
    snprintf(sig, sizeof(sig), "%s/good.minisig", f->dir);
    snprintf(mf, sizeof(mf), "%s/manifest.bin", f->dir);
    assert_int_equal(ct_run(f->store, NULL, NULL, "manifest", f->id, "-o", mf, "--sig", sig, NULL),
                     0);
    uint8_t *b;
    size_t len;
    assert_int_equal(read_text(sig, &b, &len), 0);
    char *line2 = strchr((char *)b, '\n');
    assert_non_null(line2);
    line2 += 1 + 40; /* inside the signature bytes (offset 10..74) */
    *line2 = *line2 == 'A' ? 'B' : 'A';
    *ret_len = len;
    return b;
}

/* Injects blob the way a peer's SIGS answer reaches the store. */
static int
inject(fixture *f, const uint8_t *blob, size_t len)
{
    cas_store *s;
    uint8_t mid[CAS_HASH_LEN];
    assert_int_equal(cas_hash_from_hex(f->id, mid), 0);
    assert_int_equal(cas_store_open(f->store, 0, &s), 0);
    int r = cas_store_sig_add(s, mid, blob, len);
    cas_store_free(s);
    return r;
}

/* Issue 9 item 3: a forged blob under the publisher's key id, received
 * while that key is not trusted, never makes verify fail the intact,
 * correctly signed model once the key is trusted. */
static void
test_sig_poisoning(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--unencrypted", NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "sign", f->id, NULL), 0);
    size_t len;
    uint8_t *bad = forge(f, &len);
    (void)inject(f, bad, len); /* the key is not trusted yet */
    assert_int_equal(ct_run(f->store, NULL, NULL, "trust", "add", f->pub, "pub", NULL), 0);
    assert_int_equal(ct_run(f->store, &out, NULL, "verify", f->id, "--require-trusted", NULL), 0);
    assert_non_null(strstr(out, "ok"));
    free(out);
    /* Once the key is trusted, a forgery is refused outright. */
    assert_true(inject(f, bad, len) < 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "verify", f->id, NULL), 0);
    free(bad);
}

/* nvx sig ls shows attached and kept-apart signatures; sig rm removes
 * those of one key; the kept-apart set is bounded per model. */
static void
test_sig_ls_rm(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--unencrypted", NULL), 0);
    assert_int_equal(ct_run(f->store, NULL, NULL, "sign", f->id, NULL), 0);
    size_t len;
    uint8_t *bad = forge(f, &len);
    assert_int_equal(ct_run(NULL, NULL, NULL, "key", "new", "--unencrypted", "--force", NULL), 0);
    assert_int_equal(inject(f, bad, len), 2); /* key not trusted: kept apart */
    assert_int_equal(ct_run(f->store, &out, NULL, "sig", "ls", f->id, NULL), 0);
    assert_non_null(strstr(out, "attached"));
    assert_non_null(strstr(out, "kept apart"));
    char kid[CAS_KEYID_HEX_SIZE];
    /* The first word: a key id has 16 hex digits or fewer (minisign drops
     * leading zeros, 1 key in 16). */
    assert_int_equal(sscanf(out, "%16s", kid), 1);
    free(out);
    /* Both lines carry the same (first) key id. */
    assert_int_equal(ct_run(f->store, &out, NULL, "sig", "rm", f->id, kid, NULL), 0);
    assert_non_null(strstr(out, "removed 2 signatures"));
    free(out);
    fails(f, "no signature by key", "sig", "rm", f->id, kid, NULL);
    fails(f, "unknown sig command", "sig", "frob", f->id, NULL);
    /* Bounded: at most CAS_STORE_SIG_PENDING_PER_MODEL kept apart. */
    int stored = 0, r = 0;
    for (unsigned i = 0; i < CAS_STORE_SIG_PENDING_PER_MODEL + 2; i++) {
        char *line2 = strchr((char *)bad, '\n') + 1 + 50;
        *line2 = (char)('C' + i);
        r = inject(f, bad, len);
        stored += r == 2;
    }
    assert_int_equal(stored, CAS_STORE_SIG_PENDING_PER_MODEL);
    assert_int_equal(r, -ENOSPC);
    free(bad);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_new_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_trust_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sig_poisoning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sig_ls_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tty_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minisign_checks_nvx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
