/* SPDX-License-Identifier: MIT */
/*
 * minisign key files (libcas/key.c): key ids, public and secret key files,
 * passphrases, malformed inputs, and interop with the real `minisign`.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "libcas/sig.h"
#include "testutil.h"

/* Made by `minisign -G -W` (0.11): unencrypted, all-zero checksum. */
static const char MS_PUB[] = "untrusted comment: minisign public key 346F4B5B91D4CE7A\n"
                             "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0\n";
static const char MS_PUB_B64[] = "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0";
static const char MS_SEC[] =
    "untrusted comment: minisign encrypted secret key\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAes7UkVtLbzSh1NDoCIChS"
    "HTEqT8lwSPUJz0ULY6AIoQea6gVvUQRRrpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/"
    "+AD82m0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

/* Made by `printf 'pw\npw\n' | minisign -G` (0.11): encrypted with
 * minisign's default scrypt cost (opslimit 2^25, memlimit 1 GiB). Kept as a
 * fixture so that the test derives the 1 GiB key once, not three times. */
static const char MS_ENC_PUB[] = "untrusted comment: minisign public key 922736D33BDD56C4\n"
                                 "RWTEVt070zYnkhy2MvBoIK346mOeR9xdN6NGGAC5dFhtaxxbTLjJ/CMt\n";
static const char MS_ENC_SEC[] =
    "untrusted comment: minisign encrypted secret key\n"
    "RWRTY0Iy69i8tb0sEgH/"
    "UU8QLKzVL9NUhqGNXISIpl5fK7AdGOoAAAACAAAAAAAAAEAAAAAAxOsBppxaG5IlbsGYW75nKsc"
    "zm7lc3En11t7ba1+h4doAn+P8m63AjhrAlAu66EZUXwwULdL0WqC3eAZnno4nswYmUCDf0xLPe2iZ1m1Z8WPAp4qHo9m1/"
    "yPgjVaZ5tnDR4/xKdapuN4=\n";

static const uint8_t *
u8(const char *s)
{
    return (const uint8_t *)s;
}

/* Runs a shell command line; returns its exit status. */
static int
sh(const char *cmd, char **ret_out)
{
    char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
    char *err = NULL;
    int rc = tu_run(argv, ret_out, &err);
    if (rc != 0)
        fprintf(stderr, "# %s -> %d: %s\n", cmd, rc, err ? err : "");
    free(err);
    return rc;
}

static void
test_keyid(void **state)
{
    (void)state;
    const uint8_t id[CAS_KEYID_LEN] = { 0x7a, 0xce, 0xd4, 0x91, 0x5b, 0x4b, 0x6f, 0x34 };
    char hex[CAS_KEYID_HEX_SIZE];
    uint8_t back[CAS_KEYID_LEN];
    cas_keyid_format(id, hex);
    assert_string_equal(hex, "346F4B5B91D4CE7A");
    assert_int_equal(cas_keyid_parse("346f4b5b91d4ce7a", back), 0);
    assert_memory_equal(back, id, CAS_KEYID_LEN);
    assert_int_equal(cas_keyid_parse("346F4B5B91D4CE7AA", back), -EINVAL);
    assert_int_equal(cas_keyid_parse("346F4B5B91D4CE7G", back), -EINVAL);
    assert_int_equal(cas_keyid_parse("", back), -EINVAL);
    assert_int_equal(cas_keyid_parse(NULL, back), -EINVAL);
    /* minisign prints "%" PRIX64: no leading zeros (1 key in 16). */
    const uint8_t z[CAS_KEYID_LEN] = { 0x0b, 0x62, 0x63, 0x29, 0x35, 0x70, 0x51, 0x04 };
    cas_keyid_format(z, hex);
    assert_string_equal(hex, "45170352963620B");
    assert_int_equal(cas_keyid_parse("45170352963620B", back), 0);
    assert_memory_equal(back, z, CAS_KEYID_LEN);
    assert_int_equal(cas_keyid_parse("045170352963620b", back), 0);
    assert_memory_equal(back, z, CAS_KEYID_LEN);
    const uint8_t zero[CAS_KEYID_LEN] = { 0 };
    cas_keyid_format(zero, hex);
    assert_string_equal(hex, "0");
    const uint8_t max[CAS_KEYID_LEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    cas_keyid_format(max, hex);
    assert_string_equal(hex, "FFFFFFFFFFFFFFFF");
}

static void
test_pubkey_decode(void **state)
{
    (void)state;
    cas_pubkey a, b;
    char text[CAS_KEYFILE_TEXT_SIZE], b64[CAS_PUBKEY_B64_SIZE];
    size_t n;
    assert_int_equal(cas_pubkey_decode(u8(MS_PUB), strlen(MS_PUB), &a), 0);
    assert_int_equal(cas_pubkey_decode(u8(MS_PUB_B64), strlen(MS_PUB_B64), &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    /* Encoding gives back minisign's file byte for byte. */
    assert_int_equal(cas_pubkey_encode(&a, text, sizeof(text), &n), 0);
    assert_int_equal(n, strlen(MS_PUB));
    assert_string_equal(text, MS_PUB);
    cas_pubkey_base64(&a, b64);
    assert_string_equal(b64, MS_PUB_B64);
    assert_int_equal(cas_pubkey_encode(&a, text, 20, &n), -EMSGSIZE);

    /* Accepted variations: blanks around a bare line, CRLF, no final newline. */
    const char *ok[] = {
        "  RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0\n\n",
        "untrusted comment: x\r\nRWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0\r\n",
        "untrusted comment: \nRWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cas_pubkey_decode(u8(ok[i]), strlen(ok[i]), &b), 0);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

static void
test_pubkey_malformed(void **state)
{
    (void)state;
    cas_pubkey k;
    memset(&k, 0xaa, sizeof(k));
    cas_pubkey before = k;
    static const struct {
        const char *text;
        int err;
    } bad[] = {
        { "", -EBADMSG },
        { "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m", -EBADMSG }, /* truncated */
        { "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82", -EBADMSG },
        { "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0AAAA", -EBADMSG }, /* long */
        { "RWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m!", -EBADMSG },
        { "RWR6ztSRW0tv NLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0", -EBADMSG },
        /* "Ex" instead of "Ed" */
        { "RXh6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0", -ENOTSUP },
        { "untrusted comment: x\n", -EBADMSG },
        { "untrusted comment: x\nRWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0\nx",
          -EBADMSG },
        { "untrusted comment x\nRWR6ztSRW0tvNLpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/+AD82m0\n",
          -EBADMSG },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = cas_pubkey_decode(u8(bad[i].text), strlen(bad[i].text), &k);
        if (r != bad[i].err)
            fail_msg("case %zu: got %d, want %d", i, r, bad[i].err);
        assert_memory_equal(&k, &before, sizeof(k)); /* written only on success */
    }
    /* Oversized comment line and oversized file. */
    size_t big = CAS_COMMENT_MAXBYTES + 100;
    char *t = malloc(big + 200);
    int n = snprintf(t, big + 200, "untrusted comment: ");
    memset(t + n, 'a', CAS_COMMENT_MAXBYTES + 1);
    n += CAS_COMMENT_MAXBYTES + 1;
    n += snprintf(t + n, 200, "\n%s\n", MS_PUB_B64);
    assert_int_equal(cas_pubkey_decode(u8(t), (size_t)n, &k), -EMSGSIZE);
    /* Exactly the maximum is fine. */
    n = snprintf(t, big + 200, "untrusted comment: ");
    memset(t + n, 'a', CAS_COMMENT_MAXBYTES);
    n += CAS_COMMENT_MAXBYTES;
    n += snprintf(t + n, 200, "\n%s\n", MS_PUB_B64);
    assert_int_equal(cas_pubkey_decode(u8(t), (size_t)n, &k), 0);
    free(t);
    uint8_t *huge = calloc(1, CAS_KEYFILE_MAXBYTES + 1);
    assert_int_equal(cas_pubkey_decode(huge, CAS_KEYFILE_MAXBYTES + 1, &k), -EMSGSIZE);
    free(huge);
}

static void
test_seckey_minisign_unencrypted(void **state)
{
    (void)state;
    cas_seckey *sk = NULL;
    cas_pubkey want, got;
    bool enc = true;
    uint64_t mem = 1;
    assert_int_equal(cas_pubkey_decode(u8(MS_PUB), strlen(MS_PUB), &want), 0);
    assert_int_equal(cas_seckey_probe(u8(MS_SEC), strlen(MS_SEC), &enc, &mem), 0);
    assert_false(enc);
    assert_int_equal(mem, 0);
    assert_int_equal(cas_seckey_decode(u8(MS_SEC), strlen(MS_SEC), NULL, &sk), 0);
    cas_seckey_public(sk, &got);
    assert_memory_equal(&got, &want, sizeof(got));
    cas_seckey_free(sk);

    /* Any flipped bit in the key box is caught (checksum or seed/public
     * mismatch, or base64), never accepted silently. */
    char *t = strdup(MS_SEC);
    size_t line = strlen("untrusted comment: minisign encrypted secret key\n");
    size_t b64len = strlen(t) - line - 1;
    for (size_t i = 0; i < b64len; i += 3) {
        char c = t[line + i];
        t[line + i] = c == 'A' ? 'B' : 'A';
        sk = NULL;
        int r = cas_seckey_decode(u8(t), strlen(t), NULL, &sk);
        /* The salt and limits of an unencrypted key are ignored, and with
         * minisign's zero checksum nothing covers the key id (a changed id
         * then fails at verification, -ENOKEY); every other byte counts. */
        size_t first = i / 4 * 3 + (i % 4) * 6 / 8, last = i / 4 * 3 + ((i % 4) * 6 + 5) / 8;
        if (first >= 6 && last < 62) {
            assert_true(r == 0 || r == -EBADMSG);
        } else if (r == 0) {
            fail_msg("flip at base64 char %zu accepted", i);
        }
        cas_seckey_free(sk);
        t[line + i] = c;
    }
    free(t);
}

/* A passphrase-protected key made by minisign opens with the passphrase. */
static void
test_seckey_minisign_encrypted(void **state)
{
    (void)state;
    cas_seckey *sk = NULL;
    cas_pubkey want, got;
    bool enc = false;
    uint64_t mem = 0;
    assert_int_equal(cas_pubkey_decode(u8(MS_ENC_PUB), strlen(MS_ENC_PUB), &want), 0);
    assert_int_equal(cas_seckey_probe(u8(MS_ENC_SEC), strlen(MS_ENC_SEC), &enc, &mem), 0);
    assert_true(enc);
    assert_int_equal(mem, CAS_KDF_MEMLIMIT_DEFAULT);
    assert_int_equal(cas_seckey_decode(u8(MS_ENC_SEC), strlen(MS_ENC_SEC), NULL, &sk), -EACCES);
    assert_null(sk);
    assert_int_equal(cas_seckey_decode(u8(MS_ENC_SEC), strlen(MS_ENC_SEC), "pw", &sk), 0);
    cas_seckey_public(sk, &got);
    assert_memory_equal(&got, &want, sizeof(got));
    cas_seckey_free(sk);
}

static void
test_seckey_roundtrip(void **state)
{
    (void)state;
    cas_seckey *sk = NULL, *back = NULL;
    cas_pubkey p1, p2;
    char *text = malloc(CAS_KEYFILE_TEXT_SIZE);
    size_t n;
    bool enc;
    assert_int_equal(cas_seckey_generate(&sk), 0);
    cas_seckey_public(sk, &p1);

    /* Unencrypted. */
    assert_int_equal(cas_seckey_encode(sk, NULL, 0, 0, text, CAS_KEYFILE_TEXT_SIZE, &n), 0);
    assert_int_equal(strlen(text), n);
    assert_int_equal(cas_seckey_probe(u8(text), n, &enc, NULL), 0);
    assert_false(enc);
    assert_int_equal(cas_seckey_decode(u8(text), n, "ignored", &back), 0);
    cas_seckey_public(back, &p2);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    cas_seckey_free(back);
    back = NULL;

    /* Encrypted with the fast limits. */
    assert_int_equal(cas_seckey_encode(sk, "correct horse", CAS_KDF_OPSLIMIT_FAST,
                                       CAS_KDF_MEMLIMIT_FAST, text, CAS_KEYFILE_TEXT_SIZE, &n),
                     0);
    uint64_t mem = 0;
    assert_int_equal(cas_seckey_probe(u8(text), n, &enc, &mem), 0);
    assert_true(enc);
    assert_int_equal(mem, CAS_KDF_MEMLIMIT_FAST);
    assert_int_equal(cas_seckey_decode(u8(text), n, NULL, &back), -EACCES);
    assert_int_equal(cas_seckey_decode(u8(text), n, "correct horsE", &back), -EACCES);
    assert_int_equal(cas_seckey_decode(u8(text), n, "", &back), -EACCES);
    assert_null(back);
    assert_int_equal(cas_seckey_decode(u8(text), n, "correct horse", &back), 0);
    cas_seckey_public(back, &p2);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    cas_seckey_free(back);

    /* Bad arguments. */
    assert_int_equal(cas_seckey_encode(sk, "x", 1, 1, text, CAS_KEYFILE_TEXT_SIZE, &n), -EINVAL);
    assert_int_equal(cas_seckey_encode(sk, NULL, 0, 0, text, 100, &n), -EMSGSIZE);
    char *longpw = malloc(CAS_PASSPHRASE_MAXBYTES + 2);
    memset(longpw, 'p', CAS_PASSPHRASE_MAXBYTES + 1);
    longpw[CAS_PASSPHRASE_MAXBYTES + 1] = '\0';
    assert_int_equal(cas_seckey_encode(sk, longpw, CAS_KDF_OPSLIMIT_FAST, CAS_KDF_MEMLIMIT_FAST,
                                       text, CAS_KEYFILE_TEXT_SIZE, &n),
                     -EINVAL);
    free(longpw);
    sodium_memzero(text, CAS_KEYFILE_TEXT_SIZE);
    free(text);
    cas_seckey_free(sk);
}

/* Re-encodes MS_SEC's box after patching bytes [off, off+len) with v. */
static char *
patched_seckey(size_t off, const void *v, size_t len)
{
    uint8_t box[158];
    size_t line = strlen("untrusted comment: minisign encrypted secret key\n");
    size_t bl = 0;
    assert_int_equal(sodium_base642bin(box, sizeof(box), MS_SEC + line, strlen(MS_SEC) - line - 1,
                                       NULL, &bl, NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(bl, sizeof(box));
    memcpy(box + off, v, len);
    char *out = malloc(line + 256);
    memcpy(out, MS_SEC, line);
    sodium_bin2base64(out + line, 256, box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    strcat(out, "\n");
    return out;
}

static void
test_seckey_malformed(void **state)
{
    (void)state;
    cas_seckey *sk = NULL;
    char *t;
    t = patched_seckey(0, "EE", 2); /* sig alg */
    assert_int_equal(cas_seckey_decode(u8(t), strlen(t), NULL, &sk), -ENOTSUP);
    free(t);
    t = patched_seckey(2, "Ar", 2); /* kdf alg */
    assert_int_equal(cas_seckey_decode(u8(t), strlen(t), NULL, &sk), -ENOTSUP);
    free(t);
    t = patched_seckey(4, "B3", 2); /* checksum alg */
    assert_int_equal(cas_seckey_decode(u8(t), strlen(t), NULL, &sk), -ENOTSUP);
    free(t);
    /* Encrypted, with a memory limit over the maximum: refused before scrypt. */
    uint8_t hdr[4 + 32 + 16] = { 'S', 'c', 'B', '2' };
    hdr[4 + 32 + 8 + 7] = 0x40; /* memlimit 2^62 */
    t = patched_seckey(2, hdr, sizeof(hdr));
    assert_int_equal(cas_seckey_decode(u8(t), strlen(t), "pw", &sk), -EMSGSIZE);
    free(t);
    assert_null(sk);
    const char *bad[] = {
        "",
        "untrusted comment: x\n",
        "untrusted comment: x\nRWQAAEIy\n",
        "untrusted comment: x\nRWQAAEIyAAAA====\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cas_seckey_decode(u8(bad[i]), strlen(bad[i]), NULL, &sk), -EBADMSG);
    /* Truncated minisign key. */
    assert_int_equal(cas_seckey_decode(u8(MS_SEC), strlen(MS_SEC) - 6, NULL, &sk), -EBADMSG);
    assert_null(sk);
}

static void
test_key_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cas-key");
    char path[4096], pubpath[4096];
    snprintf(path, sizeof(path), "%s/nvx.key", dir);
    snprintf(pubpath, sizeof(pubpath), "%s/nvx.pub", dir);
    cas_seckey *sk = NULL, *back = NULL;
    cas_pubkey p1, p2;
    struct stat st;
    assert_int_equal(cas_seckey_generate(&sk), 0);
    cas_seckey_public(sk, &p1);
    assert_int_equal(cas_seckey_write_file(sk, path, NULL, 0, 0, false), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cas_seckey_write_file(sk, path, NULL, 0, 0, false), -EEXIST);
    assert_int_equal(cas_seckey_load_file(path, NULL, &back), 0);
    cas_seckey_public(back, &p2);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    cas_seckey_free(back);
    back = NULL;
    /* Overwrite replaces it, still 0600, no temporary left behind. */
    assert_int_equal(
        cas_seckey_write_file(sk, path, "pw", CAS_KDF_OPSLIMIT_FAST, CAS_KDF_MEMLIMIT_FAST, true),
        0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cas_seckey_load_file(path, NULL, &back), -EACCES);
    assert_int_equal(cas_seckey_load_file(path, "pw", &back), 0);
    cas_seckey_free(back);

    assert_int_equal(cas_pubkey_write_file(&p1, pubpath, false), 0);
    assert_int_equal(stat(pubpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(cas_pubkey_write_file(&p1, pubpath, false), -EEXIST);
    assert_int_equal(cas_pubkey_write_file(&p1, pubpath, true), 0);
    assert_int_equal(cas_pubkey_load_file(pubpath, &p2), 0);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    assert_int_equal(cas_pubkey_load_file("/nonexistent/nvx.pub", &p2), -ENOENT);
    assert_int_equal(cas_seckey_load_file("/nonexistent/nvx.key", NULL, &back), -ENOENT);
    cas_seckey_free(sk);
    tu_rm_rf(dir);
    free(dir);
}

/* Keys made by minisign load in nvx; keys written by nvx sign in minisign. */
static void
test_interop_keys(void **state)
{
    (void)state;
    char *ms = tu_find_program("minisign");
    if (!ms) {
        printf("skipping: minisign not found in PATH (apt-get install minisign)\n");
        skip();
    }
    char *dir = tu_tmpdir("cas-key-ms");
    char cmd[8192], path[4096];
    cas_seckey *sk = NULL;
    cas_pubkey want, got;

    /* 1. minisign -G -W (unencrypted). */
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -G -W -p u.pub -s u.key >/dev/null", dir, ms);
    assert_int_equal(sh(cmd, NULL), 0);
    snprintf(path, sizeof(path), "%s/u.pub", dir);
    assert_int_equal(cas_pubkey_load_file(path, &want), 0);
    snprintf(path, sizeof(path), "%s/u.key", dir);
    assert_int_equal(cas_seckey_load_file(path, NULL, &sk), 0);
    cas_seckey_public(sk, &got);
    assert_memory_equal(&got, &want, sizeof(got));
    cas_seckey_free(sk);
    sk = NULL;

    /* 2. nvx keys (unencrypted, and encrypted with the fast limits) sign a
     * file in minisign, which then verifies it with nvx's .pub. */
    assert_int_equal(cas_seckey_generate(&sk), 0);
    cas_seckey_public(sk, &got);
    snprintf(path, sizeof(path), "%s/n.pub", dir);
    assert_int_equal(cas_pubkey_write_file(&got, path, false), 0);
    snprintf(path, sizeof(path), "%s/nu.key", dir);
    assert_int_equal(cas_seckey_write_file(sk, path, NULL, 0, 0, false), 0);
    snprintf(path, sizeof(path), "%s/ne.key", dir);
    assert_int_equal(
        cas_seckey_write_file(sk, path, "pw2", CAS_KDF_OPSLIMIT_FAST, CAS_KDF_MEMLIMIT_FAST, false),
        0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && echo data > f && '%s' -S -s nu.key -m f -x f.u.minisig >/dev/null && "
             "'%s' -Vm f -x f.u.minisig -p n.pub >/dev/null && "
             "printf 'pw2\\n' | '%s' -S -s ne.key -m f -x f.e.minisig >/dev/null && "
             "'%s' -Vm f -x f.e.minisig -p n.pub >/dev/null",
             dir, ms, ms, ms, ms);
    assert_int_equal(sh(cmd, NULL), 0);
    /* A wrong passphrase is refused by minisign too. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && printf 'wrong\\n' | '%s' -S -s ne.key -m f -x f.x.minisig "
             ">/dev/null 2>&1",
             dir, ms);
    char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    assert_int_not_equal(tu_run(argv, NULL, NULL), 0);
    cas_seckey_free(sk);
    tu_rm_rf(dir);
    free(dir);
    free(ms);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyid),
        cmocka_unit_test(test_pubkey_decode),
        cmocka_unit_test(test_pubkey_malformed),
        cmocka_unit_test(test_seckey_minisign_unencrypted),
        cmocka_unit_test(test_seckey_minisign_encrypted),
        cmocka_unit_test(test_seckey_roundtrip),
        cmocka_unit_test(test_seckey_malformed),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_interop_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
