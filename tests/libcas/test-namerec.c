/* SPDX-License-Identifier: MIT */
/*
 * Signed name records (libcas/namerec.c): signing, the byte layout, strict
 * decoding (every single-byte change is refused), the wire form, storage
 * with "highest sequence wins", trust against the keyring and
 * PUBLISHER/NAME resolution, and records as BEP 44 items (value, signed
 * bytes checked by libsodium's verify, strict value decoding).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "libcas/hash.h"
#include "libcas/namerec.h"
#include "libcas/sig-internal.h"
#include "libcas/store.h"
#include "testutil.h"

/* An unencrypted minisign key (made by `minisign -G -W`, also used by
 * test-key.c): deterministic signatures for the known-answer test. */
static const char MS_SEC[] =
    "untrusted comment: minisign encrypted secret key\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAes7UkVtLbzSh1NDoCIChS"
    "HTEqT8lwSPUJz0ULY6AIoQea6gVvUQRRrpLPn+ja00n90zJZC87jFRQKMFiWXXPP/G6/"
    "+AD82m0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

static cas_seckey *
fixture_key(void)
{
    cas_seckey *sk = NULL;
    assert_int_equal(cas_seckey_decode((const uint8_t *)MS_SEC, strlen(MS_SEC), NULL, &sk), 0);
    return sk;
}

static void
model_of(uint8_t id[CAS_MODEL_ID_LEN], uint8_t v)
{
    memset(id, v, CAS_MODEL_ID_LEN);
}

static void
test_sign_encode_decode(void **state)
{
    (void)state;
    cas_seckey *sk = fixture_key();
    uint8_t model[32];
    model_of(model, 0xab);
    cas_namerec rec;
    assert_int_equal(cas_namerec_sign(sk, "llama-7b/q4", 5, 1700000000, model, &rec), 0);
    assert_int_equal(cas_namerec_verify(&rec), 0);

    uint8_t buf[CAS_NAMEREC_MAX];
    int n = cas_namerec_encode(&rec, buf, sizeof(buf));
    assert_int_equal(n, (int)cas_namerec_encoded_len(&rec));
    assert_int_equal(n, CAS_NAMEREC_FIXED_LEN + 11 + 64);

    /* Layout of FORMAT.md "Name records". */
    assert_memory_equal(buf, "nvxname\x01", 8);
    assert_memory_equal(buf + 8, rec.keyid, 8);
    assert_memory_equal(buf + 16, rec.pk, 32);
    assert_int_equal(buf[48], 11);
    assert_memory_equal(buf + 49, "llama-7b/q4", 11);
    assert_int_equal(buf[60], 5); /* sequence, little-endian */
    for (int i = 1; i < 8; i++)
        assert_int_equal(buf[60 + i], 0);
    assert_int_equal(buf[68] | buf[69] << 8 | buf[70] << 16 | (uint32_t)buf[71] << 24, 1700000000u);
    assert_memory_equal(buf + 76, model, 32);
    assert_memory_equal(buf + 108, rec.sig, 64);
    assert_true(crypto_sign_verify_detached(rec.sig, buf, 108, rec.pk) == 0);

    cas_namerec back;
    assert_int_equal(cas_namerec_decode(buf, (size_t)n, &back), 0);
    assert_memory_equal(&back, &rec, sizeof(rec));
    assert_string_equal(back.name, "llama-7b/q4");

    /* Short buffer. */
    assert_int_equal(cas_namerec_encode(&rec, buf, (size_t)n - 1), -EMSGSIZE);
    cas_seckey_free(sk);
}

/* Known answer: the same key and fields always give the same bytes (Ed25519
 * is deterministic); a change of the layout shows up here. */
static void
test_known_answer(void **state)
{
    (void)state;
    cas_seckey *sk = fixture_key();
    uint8_t model[32];
    for (int i = 0; i < 32; i++)
        model[i] = (uint8_t)i;
    cas_namerec rec;
    assert_int_equal(cas_namerec_sign(sk, "tiny", 1, 1767225600, model, &rec), 0);
    uint8_t h[CAS_HASH_LEN];
    cas_namerec_hash(&rec, h);
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(h, hex);
    assert_string_equal(hex, "0d325d8440e0d6c77f32df02e1245a3f4894eab92037bc6c60173bd2161b02d8");
    cas_seckey_free(sk);
}

static void
test_decode_strict(void **state)
{
    (void)state;
    cas_seckey *sk = fixture_key();
    uint8_t model[32];
    model_of(model, 1);
    cas_namerec rec, out;
    assert_int_equal(cas_namerec_sign(sk, "m", 1, 2, model, &rec), 0);
    uint8_t buf[CAS_NAMEREC_MAX + 1];
    int n = cas_namerec_encode(&rec, buf, sizeof(buf));
    assert_int_equal(n, CAS_NAMEREC_MIN);

    /* Every single-bit change of every byte is refused. */
    for (int i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (uint8_t)(1u << b);
            assert_int_equal(cas_namerec_decode(buf, (size_t)n, &out), -EBADMSG);
            buf[i] ^= (uint8_t)(1u << b);
        }
    }
    /* Every truncation, and one trailing byte. */
    for (int len = 0; len < n; len++)
        assert_int_equal(cas_namerec_decode(buf, (size_t)len, &out), -EBADMSG);
    buf[n] = 0;
    assert_int_equal(cas_namerec_decode(buf, (size_t)n + 1, &out), -EBADMSG);
    assert_int_equal(cas_namerec_decode(buf, (size_t)n, &out), 0);
    assert_int_equal(cas_namerec_decode(NULL, 0, &out), -EBADMSG);
    cas_seckey_free(sk);
}

static void
test_names(void **state)
{
    (void)state;
    cas_seckey *sk = fixture_key();
    uint8_t model[32];
    model_of(model, 2);
    cas_namerec rec;
    char name[CAS_NAMEREC_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[CAS_NAMEREC_NAME_MAX] = '\0';
    assert_int_equal(cas_namerec_sign(sk, name, 1, 1, model, &rec), 0);
    assert_int_equal(rec.name_len, CAS_NAMEREC_NAME_MAX);
    uint8_t buf[CAS_NAMEREC_MAX];
    assert_int_equal(cas_namerec_encode(&rec, buf, sizeof(buf)), CAS_NAMEREC_MAX);
    name[CAS_NAMEREC_NAME_MAX] = 'a';
    name[CAS_NAMEREC_NAME_MAX + 1] = '\0';
    assert_int_equal(cas_namerec_sign(sk, name, 1, 1, model, &rec), -EINVAL);

    const char *bad[] = { "", "a b", "tab\there", "nl\n", "del\x7f", "\xc3\xa9t\xc3\xa9" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cas_namerec_sign(sk, bad[i], 1, 1, model, &rec), -EINVAL);
    assert_true(cas_namerec_name_valid("org/model:v1.2", 14));
    assert_false(cas_namerec_name_valid("x", 0));
    cas_seckey_free(sk);
}

static void
test_wire(void **state)
{
    (void)state;
    cas_seckey *sk = NULL;
    assert_int_equal(cas_seckey_generate(&sk), 0);
    uint8_t model[32];
    model_of(model, 3);
    cas_namerec rec, back;
    assert_int_equal(cas_namerec_sign(sk, "wire", 9, 77, model, &rec), 0);
    uint8_t proof[CAS_NAMEREC_PROOF_LEN + 1];
    cas_namerec_proof(&rec, proof);
    assert_int_equal(proof[0], 1);
    const uint8_t *nm = (const uint8_t *)"wire";
    assert_int_equal(
        cas_namerec_from_wire(rec.keyid, nm, 4, 9, 77, model, proof, CAS_NAMEREC_PROOF_LEN, &back),
        0);
    assert_memory_equal(&back, &rec, sizeof(rec));

    /* Any field changed in transit breaks the signature. */
    uint8_t kid[8];
    memcpy(kid, rec.keyid, 8);
    kid[0] ^= 1;
    assert_int_equal(
        cas_namerec_from_wire(kid, nm, 4, 9, 77, model, proof, CAS_NAMEREC_PROOF_LEN, &back),
        -EBADMSG);
    assert_int_equal(cas_namerec_from_wire(rec.keyid, (const uint8_t *)"wirf", 4, 9, 77, model,
                                           proof, CAS_NAMEREC_PROOF_LEN, &back),
                     -EBADMSG);
    assert_int_equal(
        cas_namerec_from_wire(rec.keyid, nm, 4, 10, 77, model, proof, CAS_NAMEREC_PROOF_LEN, &back),
        -EBADMSG);
    assert_int_equal(
        cas_namerec_from_wire(rec.keyid, nm, 4, 9, 78, model, proof, CAS_NAMEREC_PROOF_LEN, &back),
        -EBADMSG);
    uint8_t other[32];
    model_of(other, 4);
    assert_int_equal(
        cas_namerec_from_wire(rec.keyid, nm, 4, 9, 77, other, proof, CAS_NAMEREC_PROOF_LEN, &back),
        -EBADMSG);
    /* Proof: exact length, version 1. */
    assert_int_equal(cas_namerec_from_wire(rec.keyid, nm, 4, 9, 77, model, proof,
                                           CAS_NAMEREC_PROOF_LEN - 1, &back),
                     -EBADMSG);
    assert_int_equal(cas_namerec_from_wire(rec.keyid, nm, 4, 9, 77, model, proof,
                                           CAS_NAMEREC_PROOF_LEN + 1, &back),
                     -EBADMSG);
    proof[0] = 2;
    assert_int_equal(
        cas_namerec_from_wire(rec.keyid, nm, 4, 9, 77, model, proof, CAS_NAMEREC_PROOF_LEN, &back),
        -EBADMSG);
    cas_seckey_free(sk);
}

typedef struct fixture {
    char *dir;
    cas_store *s;
    cas_seckey *alice, *bob;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("namerec");
    assert_int_equal(cas_store_open(f->dir, CAS_STORE_CREATE, &f->s), 0);
    assert_int_equal(cas_seckey_generate(&f->alice), 0);
    assert_int_equal(cas_seckey_generate(&f->bob), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    cas_store_free(f->s);
    tu_rm_rf(f->dir);
    free(f->dir);
    cas_seckey_free(f->alice);
    cas_seckey_free(f->bob);
    free(f);
    return 0;
}

static void
trust(fixture *f, const cas_seckey *sk, const char *name)
{
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    char b64[CAS_PUBKEY_B64_SIZE];
    cas_pubkey_base64(&pk, b64);
    assert_int_equal(cas_store_key_put(f->s, pk.keyid, CAS_KEYID_LEN, b64, strlen(b64), name), 0);
}

static int
count_cb(void *userdata, const cas_namerec *rec)
{
    (void)rec;
    (*(int *)userdata)++;
    return 0;
}

static void
test_store_highest_wins(void **state)
{
    fixture *f = *state;
    uint8_t m1[32], m2[32], m3[32];
    model_of(m1, 1);
    model_of(m2, 2);
    model_of(m3, 3);
    cas_namerec r1, r2, r1b, got;
    assert_int_equal(cas_namerec_sign(f->alice, "llama", 1, 100, m1, &r1), 0);
    assert_int_equal(cas_namerec_sign(f->alice, "llama", 2, 200, m2, &r2), 0);
    assert_int_equal(cas_namerec_sign(f->alice, "llama", 1, 300, m3, &r1b), 0);

    assert_int_equal(cas_namerec_store_get(f->s, r1.pk, "llama", &got), -ENOENT);
    assert_int_equal(cas_namerec_store_put(f->s, &r1), 1);
    assert_int_equal(cas_namerec_store_put(f->s, &r1), 0); /* same again: kept */
    assert_int_equal(cas_namerec_store_put(f->s, &r2), 1);
    assert_int_equal(cas_namerec_store_put(f->s, &r1b), 0); /* older sequence: kept r2 */
    assert_int_equal(cas_namerec_store_get(f->s, r1.pk, "llama", &got), 0);
    assert_int_equal(got.sequence, 2);
    assert_memory_equal(got.model_id, m2, 32);

    /* Another name and another publisher are separate. */
    cas_namerec o1, b1;
    assert_int_equal(cas_namerec_sign(f->alice, "other", 1, 1, m3, &o1), 0);
    assert_int_equal(cas_namerec_sign(f->bob, "llama", 1, 1, m3, &b1), 0);
    assert_int_equal(cas_namerec_store_put(f->s, &o1), 1);
    assert_int_equal(cas_namerec_store_put(f->s, &b1), 1);
    int n = 0;
    assert_int_equal(cas_namerec_store_list(f->s, count_cb, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(cas_namerec_store_get(f->s, r1.pk, "llama", &got), 0);
    assert_int_equal(got.sequence, 2);

    /* Peer records (another database) are not name records. */
    assert_int_equal(cas_store_peer_put(f->s, "peer-x", 6, "v", 1), 0);
    n = 0;
    assert_int_equal(cas_namerec_store_list(f->s, count_cb, &n), 0);
    assert_int_equal(n, 3);

    /* A forged record is refused. */
    cas_namerec bad = r2;
    bad.sequence = 99;
    assert_int_equal(cas_namerec_store_put(f->s, &bad), -EBADMSG);

    assert_int_equal(cas_namerec_store_del(f->s, r1.pk, "llama"), 0);
    assert_int_equal(cas_namerec_store_del(f->s, r1.pk, "llama"), -ENOENT);
    assert_int_equal(cas_namerec_store_get(f->s, r1.pk, "llama", &got), -ENOENT);
}

static void
test_trust(void **state)
{
    fixture *f = *state;
    uint8_t m[32];
    model_of(m, 7);
    cas_namerec ra;
    assert_int_equal(cas_namerec_sign(f->alice, "n", 1, 1, m, &ra), 0);
    char kn[64];
    assert_false(cas_namerec_trusted(f->s, &ra, kn, sizeof(kn)));
    trust(f, f->alice, "alice");
    assert_true(cas_namerec_trusted(f->s, &ra, kn, sizeof(kn)));
    assert_string_equal(kn, "alice");

    /* A keyring entry with alice's key id but bob's public key does not make
     * alice's records (or anyone's claiming that key id) trusted. */
    cas_pubkey pa, pb;
    cas_seckey_public(f->alice, &pa);
    cas_seckey_public(f->bob, &pb);
    memcpy(pb.keyid, pa.keyid, CAS_KEYID_LEN);
    char b64[CAS_PUBKEY_B64_SIZE];
    cas_pubkey_base64(&pb, b64);
    assert_int_equal(cas_store_key_put(f->s, pa.keyid, CAS_KEYID_LEN, b64, strlen(b64), "alice"),
                     0);
    assert_false(cas_namerec_trusted(f->s, &ra, NULL, 0));
}

static void
test_resolve(void **state)
{
    fixture *f = *state;
    uint8_t m1[32], m2[32];
    model_of(m1, 1);
    model_of(m2, 2);
    cas_namerec ra1, ra2, rb;
    assert_int_equal(cas_namerec_sign(f->alice, "llama/q4", 1, 1, m1, &ra1), 0);
    assert_int_equal(cas_namerec_sign(f->alice, "llama/q4", 2, 2, m2, &ra2), 0);
    assert_int_equal(cas_namerec_sign(f->bob, "llama/q4", 5, 5, m1, &rb), 0);
    assert_int_equal(cas_namerec_store_put(f->s, &ra2), 1);
    assert_int_equal(cas_namerec_store_put(f->s, &ra1), 0);
    assert_int_equal(cas_namerec_store_put(f->s, &rb), 1);
    trust(f, f->alice, "alice");

    cas_name_resolution res;
    assert_int_equal(cas_namerec_resolve(f->s, "alice/llama/q4", &res), 0);
    assert_true(res.trusted);
    assert_string_equal(res.key_name, "alice");
    assert_int_equal(res.rec.sequence, 2);
    assert_memory_equal(res.rec.model_id, m2, 32);

    /* By key id, in minisign's hex. */
    char hex[CAS_KEYID_HEX_SIZE];
    cas_keyid_format(ra1.keyid, hex);
    char target[128];
    snprintf(target, sizeof(target), "%s/llama/q4", hex);
    assert_int_equal(cas_namerec_resolve(f->s, target, &res), 0);
    assert_true(res.trusted);

    /* Bob is not trusted: found, shown, flagged. */
    cas_keyid_format(rb.keyid, hex);
    snprintf(target, sizeof(target), "%s/llama/q4", hex);
    assert_int_equal(cas_namerec_resolve(f->s, target, &res), 0);
    assert_false(res.trusted);
    assert_string_equal(res.key_name, "");
    assert_int_equal(res.rec.sequence, 5);

    /* Key ids as minisign prints them: leading zeros dropped or not. */
    uint8_t kid[CAS_KEYID_LEN], want[CAS_KEYID_LEN] = { 0x7a, 0x01 };
    char nm[CAS_NAMEREC_NAME_MAX + 1];
    assert_int_equal(cas_namerec_target_parse(f->s, "17A/m", kid, nm), 0);
    assert_memory_equal(kid, want, CAS_KEYID_LEN);
    assert_string_equal(nm, "m");
    assert_int_equal(cas_namerec_target_parse(f->s, "000000000000017a/m", kid, nm), 0);
    assert_memory_equal(kid, want, CAS_KEYID_LEN);
    assert_int_equal(cas_namerec_target_parse(f->s, "10000000000000000/m", kid, nm), -ENOENT);
    assert_int_equal(cas_namerec_target_parse(f->s, "xyz/m", kid, nm), -ENOENT);

    assert_int_equal(cas_namerec_resolve(f->s, "alice/none", &res), -ENOENT);
    assert_int_equal(cas_namerec_resolve(f->s, "carol/llama/q4", &res), -ENOENT);
    assert_int_equal(cas_namerec_resolve(f->s, "alice", &res), -EINVAL);
    assert_int_equal(cas_namerec_resolve(f->s, "/x", &res), -EINVAL);
    assert_int_equal(cas_namerec_resolve(f->s, "alice/", &res), -EINVAL);
    assert_int_equal(cas_namerec_resolve(f->s, "alice/a b", &res), -EINVAL);

    /* Two keyring keys with one name: ambiguous. */
    trust(f, f->bob, "alice");
    assert_int_equal(cas_namerec_resolve(f->s, "alice/llama/q4", &res), -ENOTUNIQ);
    assert_true(cas_namerec_is_target("a/b"));
    assert_false(cas_namerec_is_target("abcdef01"));
}

/* A record signed by mallory's key but carrying alice's key id (anyone can
 * write any 8 bytes there) with the highest possible sequence. */
static void
hijack(fixture *f, const cas_seckey *mallory, const cas_namerec *victim, const uint8_t model[32],
       cas_namerec *ret)
{
    assert_int_equal(cas_namerec_sign(mallory, victim->name, UINT64_MAX, 1, model, ret), 0);
    memcpy(ret->keyid, victim->keyid, CAS_KEYID_LEN);
    uint8_t buf[CAS_NAMEREC_MAX];
    int n = cas_namerec_encode(ret, buf, sizeof(buf));
    assert_true(n > CAS_SIGBYTES);
    assert_int_equal(cas__seckey_sign(mallory, ret->sig, buf, (size_t)n - CAS_SIGBYTES), 0);
    assert_int_equal(cas_namerec_verify(ret), 0); /* valid, just not alice's */
    (void)f;
}

/* Issue 9 item 2: a record under alice's key id signed with another key
 * never shadows alice's, trusted or not, and alice's next publish wins. */
static void
test_hijack(void **state)
{
    fixture *f = *state;
    uint8_t m_alice[32], m_evil[32], m_next[32];
    model_of(m_alice, 1);
    model_of(m_evil, 66);
    model_of(m_next, 2);
    cas_namerec ra, evil, ra2;
    assert_int_equal(cas_namerec_sign(f->alice, "demo", 5, 5, m_alice, &ra), 0);
    assert_int_equal(cas_namerec_store_put(f->s, &ra), 1);
    hijack(f, f->bob, &ra, m_evil, &evil);
    (void)cas_namerec_store_put(f->s, &evil); /* stored apart, or refused */

    char hex[CAS_KEYID_HEX_SIZE], target[128];
    cas_keyid_format(ra.keyid, hex);
    snprintf(target, sizeof(target), "%s/demo", hex);
    cas_name_resolution res;
    /* Before alice is trusted, the key id alone names two keys: neither
     * is followed silently (an attacker could pick any key id). */
    int r = cas_namerec_resolve(f->s, target, &res);
    assert_true(r == -ENOTUNIQ || (r == 0 && memcmp(res.rec.model_id, m_evil, 32) != 0));

    trust(f, f->alice, "alice");
    const char *targets[] = { "alice/demo", target };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cas_namerec_resolve(f->s, targets[i], &res), 0);
        assert_true(res.trusted);
        assert_int_equal(res.rec.sequence, 5);
        assert_memory_equal(res.rec.model_id, m_alice, 32);
    }
    /* The forged record arriving after trust changes nothing either. */
    (void)cas_namerec_store_put(f->s, &evil);
    assert_int_equal(cas_namerec_resolve(f->s, "alice/demo", &res), 0);
    assert_memory_equal(res.rec.model_id, m_alice, 32);

    /* Alice's next publish still wins her slot. */
    assert_int_equal(cas_namerec_sign(f->alice, "demo", 6, 6, m_next, &ra2), 0);
    assert_int_equal(cas_namerec_store_put(f->s, &ra2), 1);
    assert_int_equal(cas_namerec_resolve(f->s, "alice/demo", &res), 0);
    assert_true(res.trusted);
    assert_int_equal(res.rec.sequence, 6);
    assert_memory_equal(res.rec.model_id, m_next, 32);
}

/* Writes rec the way stores before public-key slots did: into the
 * "namerecs" database under key id || name (a real LMDB file). */
static void
put_v1(const char *dir, const cas_namerec *rec)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/index", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "namerecs", MDB_CREATE, &dbi), 0);
    uint8_t key[8 + CAS_NAMEREC_NAME_MAX], val[8 + CAS_NAMEREC_MAX];
    memcpy(key, rec->keyid, 8);
    memcpy(key + 8, rec->name, rec->name_len);
    for (int i = 0; i < 8; i++)
        val[i] = (uint8_t)(rec->sequence >> (8 * i));
    int n = cas_namerec_encode(rec, val + 8, sizeof(val) - 8);
    assert_true(n > 0);
    MDB_val k = { 8 + rec->name_len, key }, v = { 8 + (size_t)n, val };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    uint8_t junk[20] = { 0 }; /* too short to be a record: dropped */
    k = (MDB_val){ 9, "junkjunkj" };
    v = (MDB_val){ sizeof(junk), junk };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A store written before public-key slots opens, and its records resolve
 * from their new slot. */
static void
test_migrate_v1(void **state)
{
    fixture *f = *state;
    uint8_t m[32];
    model_of(m, 7);
    cas_namerec ra, got;
    assert_int_equal(cas_namerec_sign(f->alice, "old/name", 3, 3, m, &ra), 0);
    cas_store_free(f->s);
    put_v1(f->dir, &ra);
    assert_int_equal(cas_store_open(f->dir, 0, &f->s), 0);
    assert_int_equal(cas_namerec_store_get(f->s, ra.pk, "old/name", &got), 0);
    assert_int_equal(got.sequence, 3);
    int n = 0;
    assert_int_equal(cas_namerec_store_list(f->s, count_cb, &n), 0);
    assert_int_equal(n, 1);
    trust(f, f->alice, "alice");
    cas_name_resolution res;
    assert_int_equal(cas_namerec_resolve(f->s, "alice/old/name", &res), 0);
    assert_true(res.trusted);
    assert_memory_equal(res.rec.model_id, m, 32);
    /* Opening again finds nothing left to move. */
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->dir, 0, &f->s), 0);
    n = 0;
    assert_int_equal(cas_namerec_store_list(f->s, count_cb, &n), 0);
    assert_int_equal(n, 1);
}

static void
test_dht_item(void **state)
{
    (void)state;
    cas_seckey *sk = fixture_key(), *other = NULL;
    uint8_t model[32], sig[CAS_SIGBYTES];
    model_of(model, 0x5a);
    cas_namerec rec, back;
    assert_int_equal(cas_namerec_sign(sk, "tiny", 42, 1700000000, model, &rec), 0);

    /* v: "<len>:" and the record. */
    uint8_t v[CAS_NAMEREC_DHT_V_MAX];
    int vn = cas_namerec_dht_value(&rec, v, sizeof(v));
    size_t rl = cas_namerec_encoded_len(&rec);
    char head[8];
    snprintf(head, sizeof(head), "%zu:", rl);
    assert_int_equal((size_t)vn, strlen(head) + rl);
    assert_memory_equal(v, head, strlen(head));
    assert_int_equal(cas_namerec_dht_decode(v, (size_t)vn, &back), 0);
    assert_memory_equal(&back, &rec, sizeof(rec));

    /* The signature is BEP 44's: Ed25519 over salt, seq and v, as the spec
     * spells them; libsodium checks it (never this code). */
    assert_int_equal(cas_namerec_dht_sign(sk, &rec, sig), 0);
    char msg[CAS_NAMEREC_DHT_SIGNED_MAX];
    int mh = snprintf(msg, sizeof(msg), "4:salt4:tiny3:seqi42e1:v");
    memcpy(msg + mh, v, (size_t)vn);
    uint8_t got[CAS_NAMEREC_DHT_SIGNED_MAX];
    assert_int_equal(cas_namerec_dht_signed(&rec, got, sizeof(got)), mh + vn);
    assert_memory_equal(got, msg, (size_t)(mh + vn));
    assert_int_equal(
        crypto_sign_verify_detached(sig, (const uint8_t *)msg, (size_t)(mh + vn), rec.pk), 0);
    assert_int_equal(cas_namerec_dht_signed(&rec, got, (size_t)(mh + vn) - 1), -EMSGSIZE);

    /* Another key cannot sign it; a sequence over INT64_MAX has no item. */
    assert_int_equal(cas_seckey_generate(&other), 0);
    assert_int_equal(cas_namerec_dht_sign(other, &rec, sig), -EINVAL);
    cas_namerec big = rec;
    big.sequence = (uint64_t)INT64_MAX + 1;
    assert_int_equal(cas_namerec_dht_value(&big, v, sizeof(v)), -EINVAL);

    /* Malformed values: bad length prefixes, trailing or missing bytes, a
     * record whose bytes changed. */
    vn = cas_namerec_dht_value(&rec, v, sizeof(v));
    uint8_t bad[CAS_NAMEREC_DHT_V_MAX + 2];
    assert_int_equal(cas_namerec_dht_decode(v, 0, &back), -EBADMSG);
    assert_int_equal(cas_namerec_dht_decode(v, (size_t)vn - 1, &back), -EBADMSG);
    memcpy(bad, v, (size_t)vn);
    bad[vn] = 'x';
    assert_int_equal(cas_namerec_dht_decode(bad, (size_t)vn + 1, &back), -EBADMSG);
    bad[0] = '0'; /* leading zero */
    memmove(bad + 1, v, (size_t)vn);
    assert_int_equal(cas_namerec_dht_decode(bad, (size_t)vn + 1, &back), -EBADMSG);
    assert_int_equal(cas_namerec_dht_decode((const uint8_t *)"1000:", 5, &back), -EBADMSG);
    assert_int_equal(cas_namerec_dht_decode((const uint8_t *)":", 1, &back), -EBADMSG);
    assert_int_equal(cas_namerec_dht_decode((const uint8_t *)"12", 2, &back), -EBADMSG);
    for (int i = 0; i < vn; i++) {
        memcpy(bad, v, (size_t)vn);
        bad[i] ^= 0x01;
        assert_int_not_equal(cas_namerec_dht_decode(bad, (size_t)vn, &back), 0);
    }
    cas_seckey_free(other);
    cas_seckey_free(sk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_encode_decode),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_decode_strict),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_wire),
        cmocka_unit_test(test_dht_item),
        cmocka_unit_test_setup_teardown(test_store_highest_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hijack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
