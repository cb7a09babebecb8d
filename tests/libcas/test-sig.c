/* SPDX-License-Identifier: MIT */
/*
 * Model signatures (libcas/sig.c): an independent construction of the
 * expected file, trusted comment fields, every kind of tampering, and
 * interop with the real `minisign` in both directions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "libcas/sig.h"
#include "testutil.h"

static const uint8_t MANIFEST[] = "nvx manifest bytes for the tests\x01\x02\x03";
static const uint8_t OTHER[] = "another manifest";
#define TS UINT64_C(1700000000)

typedef struct fixture {
    uint8_t seed[32];
    uint8_t keyid[8];
    uint8_t pk[32], sk[64];
    cas_seckey *key;
    cas_pubkey pub;
} fixture;

static const uint8_t *
u8(const char *s)
{
    return (const uint8_t *)s;
}

/* Builds an unencrypted minisign key box by hand from a fixed seed and key
 * id and loads it, so that the expected signatures can be computed with
 * libsodium directly. */
static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    for (int i = 0; i < 32; i++)
        f->seed[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 8; i++)
        f->keyid[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(sodium_init() < 0, 0);
    crypto_sign_seed_keypair(f->pk, f->sk, f->seed);
    uint8_t box[158] = { 'E', 'd', 0, 0, 'B', '2' };
    memcpy(box + 54, f->keyid, 8);
    memcpy(box + 62, f->sk, 64);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, box, 2);
    crypto_generichash_update(&st, box + 54, 8 + 64);
    crypto_generichash_final(&st, box + 126, 32);
    char text[512] = "untrusted comment: test key\n";
    sodium_bin2base64(text + strlen(text), 300, box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(cas_seckey_decode(u8(text), strlen(text), NULL, &f->key), 0);
    cas_seckey_public(f->key, &f->pub);
    assert_memory_equal(f->pub.pk, f->pk, 32);
    assert_memory_equal(f->pub.keyid, f->keyid, 8);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    cas_seckey_free(f->key);
    free(f);
    return 0;
}

/* The signature file for (manifest, trusted comment) computed here with
 * libsodium alone; malloc'd. */
static char *
expected_sig(const fixture *f, const uint8_t *m, size_t mlen, const char *tc)
{
    uint8_t h[64], box[74], gsig[64];
    uint8_t *g = malloc(64 + strlen(tc)); /* tc may exceed the limit on purpose */
    crypto_generichash(h, 64, m, mlen, NULL, 0);
    box[0] = 'E';
    box[1] = 'D';
    memcpy(box + 2, f->keyid, 8);
    crypto_sign_detached(box + 10, NULL, h, 64, f->sk);
    memcpy(g, box + 10, 64);
    memcpy(g + 64, tc, strlen(tc));
    crypto_sign_detached(gsig, NULL, g, 64 + strlen(tc), f->sk);
    free(g);
    char b1[128], b2[128], kid[CAS_KEYID_HEX_SIZE];
    sodium_bin2base64(b1, sizeof(b1), box, sizeof(box), sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b2, sizeof(b2), gsig, sizeof(gsig), sodium_base64_VARIANT_ORIGINAL);
    cas_keyid_format(f->keyid, kid);
    size_t n = strlen(tc) + 512;
    char *out = malloc(n);
    snprintf(out, n,
             "untrusted comment: signature from nvx secret key %s\n%s\ntrusted comment: %s\n%s\n",
             kid, b1, tc, b2);
    return out;
}

static void
model_hex(const uint8_t *m, size_t mlen, char out[65])
{
    uint8_t id[32];
    crypto_generichash(id, 32, m, mlen, NULL, 0);
    sodium_bin2hex(out, 65, id, 32);
}

static void
test_sign_known_answer(void **state)
{
    fixture *f = *state;
    char hex[65], tc[256];
    model_hex(MANIFEST, sizeof(MANIFEST), hex);
    snprintf(tc, sizeof(tc), "timestamp:1700000000 nvx-model:%s name:tiny llama v2", hex);
    char *want = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    char *got = NULL;
    size_t n = 0;
    assert_int_equal(
        cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), "tiny llama v2", TS, &got, &n), 0);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
    free(got);
    free(want);

    /* Without a name. */
    snprintf(tc, sizeof(tc), "timestamp:1700000000 nvx-model:%s", hex);
    want = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), NULL, TS, &got, &n), 0);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void
test_verify_roundtrip(void **state)
{
    fixture *f = *state;
    char *sig = NULL, hex[65], shown[65];
    size_t n;
    cas_sig_info info, parsed;
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), "m", TS, &sig, &n), 0);
    assert_int_equal(cas_sig_parse(u8(sig), n, &parsed), 0);
    assert_int_equal(cas_sig_verify(&f->pub, u8(sig), n, MANIFEST, sizeof(MANIFEST), &info), 0);
    assert_memory_equal(&info, &parsed, sizeof(info));
    assert_memory_equal(info.keyid, f->keyid, 8);
    assert_true(info.has_timestamp);
    assert_int_equal(info.timestamp, TS);
    assert_true(info.has_model_id);
    model_hex(MANIFEST, sizeof(MANIFEST), hex);
    sodium_bin2hex(shown, sizeof(shown), info.model_id, 32);
    assert_string_equal(shown, hex);
    assert_true(info.has_name);
    assert_string_equal(info.name, "m");
    assert_non_null(strstr(info.trusted_comment, "nvx-model:"));
    /* NULL info is fine; an empty manifest is signable. */
    assert_int_equal(cas_sig_verify(&f->pub, u8(sig), n, MANIFEST, sizeof(MANIFEST), NULL), 0);
    free(sig);
    assert_int_equal(cas_sig_sign(f->key, NULL, 0, NULL, 0, &sig, &n), 0);
    assert_int_equal(cas_sig_verify(&f->pub, u8(sig), n, NULL, 0, &info), 0);
    assert_false(info.has_name);
    assert_int_equal(info.timestamp, 0);
    free(sig);

    /* Names: at most CAS_SIG_NAME_MAXBYTES, no control characters. */
    char name[CAS_SIG_NAME_MAXBYTES + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, 4, name, TS, &sig, &n), -EINVAL);
    name[CAS_SIG_NAME_MAXBYTES] = '\0';
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, 4, name, TS, &sig, &n), 0);
    assert_int_equal(cas_sig_verify(&f->pub, u8(sig), n, MANIFEST, 4, &info), 0);
    assert_string_equal(info.name, name);
    free(sig);
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, 4, "a\nb", TS, &sig, &n), -EINVAL);
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, 4, "a\tb", TS, &sig, &n), -EINVAL);
}

/* Decodes line `line` (0-based) of sig as base64, xors byte `at` with 1 and
 * re-encodes, so that only the signed content changes. */
static char *
flip_b64(const char *sig, int line, size_t at)
{
    const char *s = sig;
    for (int i = 0; i < line; i++)
        s = strchr(s, '\n') + 1;
    const char *e = strchr(s, '\n');
    uint8_t bin[128];
    size_t bl;
    assert_int_equal(sodium_base642bin(bin, sizeof(bin), s, (size_t)(e - s), NULL, &bl, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_true(at < bl);
    bin[at] ^= 1;
    char b64[256];
    sodium_bin2base64(b64, sizeof(b64), bin, bl, sodium_base64_VARIANT_ORIGINAL);
    size_t head = (size_t)(s - sig);
    char *out = malloc(strlen(sig) + 1);
    memcpy(out, sig, head);
    strcpy(out + head, b64);
    strcat(out, e);
    return out;
}

static char *
replace(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    char *out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
    memcpy(out, s, (size_t)(p - s));
    strcpy(out + (p - s), to);
    strcat(out, p + strlen(from));
    return out;
}

static void
expect(const fixture *f, const char *sig, int err, const char *what)
{
    cas_sig_info info;
    memset(&info, 0x5a, sizeof(info));
    int r = cas_sig_verify(&f->pub, u8(sig), strlen(sig), MANIFEST, sizeof(MANIFEST), &info);
    if (r != err)
        fail_msg("%s: got %d, want %d", what, r, err);
    uint8_t *untouched = malloc(sizeof(info));
    memset(untouched, 0x5a, sizeof(info));
    if (r < 0)
        assert_memory_equal(&info, untouched, sizeof(info)); /* written only on success */
    free(untouched);
}

static void
test_tampering(void **state)
{
    fixture *f = *state;
    char *sig = NULL, *t;
    size_t n;
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), "x", TS, &sig, &n), 0);
    expect(f, sig, 0, "intact");

    t = flip_b64(sig, 1, 20); /* signature */
    expect(f, t, -EBADMSG, "flipped signature byte");
    free(t);
    t = flip_b64(sig, 1, 73);
    expect(f, t, -EBADMSG, "flipped last signature byte");
    free(t);
    t = flip_b64(sig, 3, 0); /* global signature */
    expect(f, t, -EBADMSG, "flipped global signature byte");
    free(t);
    t = flip_b64(sig, 1, 3); /* key id */
    expect(f, t, -ENOKEY, "other key id");
    free(t);
    t = flip_b64(sig, 1, 1); /* "ED" -> "EE" */
    expect(f, t, -ENOTSUP, "unknown algorithm");
    free(t);
    t = replace(sig, "\nRUS", "\nRWS"); /* "ED" -> "Ed": legacy, refused */
    expect(f, t, -ENOTSUP, "legacy algorithm");
    free(t);
    t = replace(sig, "name:x", "name:y");
    expect(f, t, -EBADMSG, "edited trusted comment");
    free(t);
    t = replace(sig, "timestamp:17", "timestamp:18");
    expect(f, t, -EBADMSG, "edited timestamp");
    free(t);
    t = replace(sig, "trusted comment: ", "trusted comment:");
    expect(f, t, -EBADMSG, "trusted comment prefix");
    free(t);
    t = replace(sig, "untrusted comment: ", "untrusted: ");
    expect(f, t, -EBADMSG, "untrusted comment prefix");
    free(t);
    t = replace(sig, "untrusted comment: signature", "untrusted comment: anything else");
    expect(f, t, 0, "edited untrusted comment (not signed)");
    free(t);

    /* Truncations at every length, and trailing garbage. */
    for (size_t k = 0; k + 1 < n; k++) {
        char *cut = strndup(sig, k);
        cas_sig_info info;
        int r = cas_sig_verify(&f->pub, u8(cut), k, MANIFEST, sizeof(MANIFEST), &info);
        if (r != -EBADMSG)
            fail_msg("truncated to %zu: got %d", k, r);
        free(cut);
    }
    t = malloc(n + 8);
    snprintf(t, n + 8, "%sx\n", sig);
    expect(f, t, -EBADMSG, "trailing line");
    free(t);
    /* Without the final newline and with CRLF it is still fine. */
    t = strndup(sig, n - 1);
    expect(f, t, 0, "no final newline");
    free(t);
    t = replace(sig, "\ntrusted", "\r\ntrusted");
    expect(f, t, 0, "CRLF");
    free(t);

    /* Another manifest: the signature itself fails. */
    cas_sig_info info;
    assert_int_equal(cas_sig_verify(&f->pub, u8(sig), n, OTHER, sizeof(OTHER), &info), -EBADMSG);
    /* Another public key with the same key id. */
    cas_pubkey other = f->pub;
    other.pk[0] ^= 1;
    assert_int_equal(cas_sig_verify(&other, u8(sig), n, MANIFEST, sizeof(MANIFEST), &info),
                     -EBADMSG);
    free(sig);
}

/* A correctly signed file whose trusted comment names another model. */
static void
test_other_model_in_comment(void **state)
{
    fixture *f = *state;
    char hex[65], tc[256];
    model_hex(OTHER, sizeof(OTHER), hex);
    snprintf(tc, sizeof(tc), "timestamp:1 nvx-model:%s", hex);
    char *sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    cas_sig_info info;
    assert_int_equal(cas_sig_parse(u8(sig), strlen(sig), &info), 0);
    expect(f, sig, -EBADMSG, "other model id in trusted comment");
    free(sig);

    /* Malformed or repeated fields are rejected, not skipped. */
    model_hex(MANIFEST, sizeof(MANIFEST), hex);
    char bad[7][200];
    snprintf(bad[0], 200, "timestamp:1 nvx-model:%.63s", hex);
    snprintf(bad[1], 200, "timestamp:1 nvx-model:%sX", hex);
    snprintf(bad[2], 200, "timestamp:1 nvx-model:%s nvx-model:%s", hex, hex);
    snprintf(bad[3], 200, "timestamp:x nvx-model:%s", hex);
    snprintf(bad[4], 200, "timestamp:1 timestamp:2 nvx-model:%s", hex);
    snprintf(bad[5], 200, "timestamp:18446744073709551616 nvx-model:%s", hex);
    snprintf(bad[6], 200, "timestamp: nvx-model:%s", hex);
    for (size_t i = 0; i < 7; i++) {
        sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), bad[i]);
        expect(f, sig, -EBADMSG, bad[i]);
        assert_int_equal(cas_sig_parse(u8(sig), strlen(sig), &info), -EBADMSG);
        free(sig);
    }
    /* The largest timestamp is fine. */
    snprintf(tc, sizeof(tc), "timestamp:18446744073709551615 nvx-model:%s", hex);
    sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    expect(f, sig, 0, "largest timestamp");
    free(sig);
    /* Upper-case hex is not the id encoding. */
    char up[65];
    for (int i = 0; i < 65; i++)
        up[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
    snprintf(tc, sizeof(tc), "nvx-model:%s", up);
    sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    if (strcmp(up, hex) != 0)
        expect(f, sig, -EBADMSG, "upper-case model id");
    free(sig);

    /* minisign's own comment: fields it does not know are ignored. */
    sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), "timestamp:1555779966\tfile:m.bin\thashed");
    expect(f, sig, 0, "minisign default comment");
    assert_int_equal(cas_sig_parse(u8(sig), strlen(sig), &info), 0);
    assert_true(info.has_timestamp);
    assert_int_equal(info.timestamp, 1555779966);
    assert_false(info.has_model_id);
    assert_false(info.has_name);
    assert_string_equal(info.trusted_comment, "timestamp:1555779966\tfile:m.bin\thashed");
    free(sig);
    /* A name with spaces runs to the end. */
    snprintf(tc, sizeof(tc), "nvx-model:%s name:a b  c", hex);
    sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    assert_int_equal(cas_sig_parse(u8(sig), strlen(sig), &info), 0);
    assert_string_equal(info.name, "a b  c");
    free(sig);
}

static void
test_oversized(void **state)
{
    fixture *f = *state;
    char hex[65];
    model_hex(MANIFEST, sizeof(MANIFEST), hex);
    /* Trusted comment of exactly the maximum, then one more byte. */
    char *tc = malloc(CAS_TRUSTED_COMMENT_MAXBYTES + 2);
    int n = snprintf(tc, CAS_TRUSTED_COMMENT_MAXBYTES + 2, "nvx-model:%s ", hex);
    memset(tc + n, 'w', (size_t)(CAS_TRUSTED_COMMENT_MAXBYTES - n));
    tc[CAS_TRUSTED_COMMENT_MAXBYTES] = '\0';
    char *sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    expect(f, sig, 0, "maximal trusted comment");
    free(sig);
    tc[CAS_TRUSTED_COMMENT_MAXBYTES] = 'w';
    tc[CAS_TRUSTED_COMMENT_MAXBYTES + 1] = '\0';
    sig = expected_sig(f, MANIFEST, sizeof(MANIFEST), tc);
    expect(f, sig, -EMSGSIZE, "trusted comment over the maximum");
    free(sig);
    free(tc);
    /* Untrusted comment over the maximum. */
    char *s1 = NULL;
    size_t len;
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), NULL, TS, &s1, &len), 0);
    char *big = malloc(CAS_COMMENT_MAXBYTES + 2);
    memset(big, 'u', CAS_COMMENT_MAXBYTES + 1);
    big[CAS_COMMENT_MAXBYTES + 1] = '\0';
    char *t = replace(s1, "signature from nvx secret key", big);
    expect(f, t, -EMSGSIZE, "untrusted comment over the maximum");
    free(t);
    free(big);
    free(s1);
    uint8_t *huge = calloc(1, CAS_KEYFILE_MAXBYTES + 1);
    cas_sig_info info;
    assert_int_equal(cas_sig_parse(huge, CAS_KEYFILE_MAXBYTES + 1, &info), -EMSGSIZE);
    free(huge);
}

/* --- interop with the minisign binary ------------------------------------ */

static int
sh(const char *cmd, char **ret_out)
{
    char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
    char *err = NULL;
    int rc = tu_run(argv, ret_out, &err);
    if (rc != 0 && ret_out)
        fprintf(stderr, "# %s -> %d: %s\n", cmd, rc, err ? err : "");
    free(err);
    return rc;
}

static void
test_interop_minisign(void **state)
{
    fixture *f = *state;
    char *ms = tu_find_program("minisign");
    if (!ms) {
        printf("skipping: minisign not found in PATH (apt-get install minisign)\n");
        skip();
    }
    char *dir = tu_tmpdir("cas-sig-ms");
    char path[4096], cmd[8192], b64[CAS_PUBKEY_B64_SIZE];
    char *sig = NULL, *out = NULL;
    size_t n;
    uint8_t *buf = NULL;
    size_t blen;
    cas_sig_info info;

    snprintf(path, sizeof(path), "%s/manifest.bin", dir);
    assert_int_equal(tu_write_file(path, MANIFEST, sizeof(MANIFEST)), 0);
    snprintf(path, sizeof(path), "%s/other.bin", dir);
    assert_int_equal(tu_write_file(path, OTHER, sizeof(OTHER)), 0);

    /* 1. nvx signs; minisign verifies with -P and with -p, and shows the
     * trusted comment. The same signature on other bytes fails there too. */
    assert_int_equal(cas_sig_sign(f->key, MANIFEST, sizeof(MANIFEST), "tiny", TS, &sig, &n), 0);
    snprintf(path, sizeof(path), "%s/manifest.bin.minisig", dir);
    assert_int_equal(tu_write_file(path, sig, n), 0);
    snprintf(path, sizeof(path), "%s/nvx.pub", dir);
    assert_int_equal(cas_pubkey_write_file(&f->pub, path, false), 0);
    cas_pubkey_base64(&f->pub, b64);
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -V -P %s -m manifest.bin", dir, ms, b64);
    assert_int_equal(sh(cmd, &out), 0);
    assert_non_null(strstr(out, "Trusted comment: timestamp:1700000000 nvx-model:"));
    assert_non_null(strstr(out, " name:tiny"));
    free(out);
    out = NULL;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' -Vm manifest.bin -x manifest.bin.minisig -p nvx.pub", dir, ms);
    assert_int_equal(sh(cmd, &out), 0);
    free(out);
    out = NULL;
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' -Vm other.bin -x manifest.bin.minisig -p nvx.pub >/dev/null 2>&1",
             dir, ms);
    assert_int_not_equal(sh(cmd, NULL), 0);
    free(sig);

    /* 2. minisign signs the manifest (prehashed by default) with a key it
     * made; nvx verifies, and refuses it for other bytes. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' -G -W -p ms.pub -s ms.key >/dev/null && "
             "'%s' -S -s ms.key -m manifest.bin -x ms.minisig -t 'release 1 name:from minisign' "
             ">/dev/null",
             dir, ms, ms);
    assert_int_equal(sh(cmd, &out), 0);
    free(out);
    out = NULL;
    cas_pubkey mpk;
    snprintf(path, sizeof(path), "%s/ms.pub", dir);
    assert_int_equal(cas_pubkey_load_file(path, &mpk), 0);
    snprintf(path, sizeof(path), "%s/ms.minisig", dir);
    assert_int_equal(tu_read_file(path, &buf, &blen), 0);
    assert_int_equal(cas_sig_verify(&mpk, buf, blen, MANIFEST, sizeof(MANIFEST), &info), 0);
    assert_memory_equal(info.keyid, mpk.keyid, CAS_KEYID_LEN);
    assert_string_equal(info.trusted_comment, "release 1 name:from minisign");
    assert_true(info.has_name);
    assert_string_equal(info.name, "from minisign");
    assert_int_equal(cas_sig_verify(&mpk, buf, blen, OTHER, sizeof(OTHER), &info), -EBADMSG);
    assert_int_equal(cas_sig_verify(&f->pub, buf, blen, MANIFEST, sizeof(MANIFEST), &info),
                     -ENOKEY);
    free(buf);
    buf = NULL;

    /* 3. minisign's key loaded into nvx signs; minisign verifies. */
    cas_seckey *msk = NULL;
    snprintf(path, sizeof(path), "%s/ms.key", dir);
    assert_int_equal(cas_seckey_load_file(path, NULL, &msk), 0);
    assert_int_equal(cas_sig_sign(msk, OTHER, sizeof(OTHER), NULL, TS, &sig, &n), 0);
    snprintf(path, sizeof(path), "%s/other.bin.minisig", dir);
    assert_int_equal(tu_write_file(path, sig, n), 0);
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' -Vm other.bin -p ms.pub", dir, ms);
    assert_int_equal(sh(cmd, &out), 0);
    free(out);
    free(sig);
    cas_seckey_free(msk);

    tu_rm_rf(dir);
    free(dir);
    free(ms);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sign_known_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_model_in_comment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interop_minisign, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
