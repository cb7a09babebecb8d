/* SPDX-License-Identifier: MIT */
/*
 * Store tests of what the store keeps besides data, on real LMDB
 * environments in temp directories: pins, gc and the size limit, names and
 * resolving, signatures, keys and peers, and name records. The fixture is in
 * storeutil.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcas/manifest.h"
#include "libcas/store-internal.h"
#include "libcas/store.h"
#include "storeutil.h"
#include "testutil.h"

static int
collect_gc(void *userdata, const cas_model_info *info)
{
    int *n = userdata;
    (*n)++;
    (void)info;
    return 0;
}

static void
test_pins_gc(void **state)
{
    su_fixture *f = *state;
    uint8_t id[3][CAS_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        uint8_t *b = su_random_bytes(100000, 20 + (uint64_t)i);
        assert_int_equal(su_add_buf(f->s, f->dir, b, 100000, NULL, id[i]), 1);
        free(b);
    }
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_pin(f->s, id[1]), 0); /* idempotent */
    uint8_t unknown[CAS_HASH_LEN] = { 1 };
    assert_int_equal(cas_store_pin(f->s, unknown), -ENOENT);
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.n_models, 3);
    assert_int_equal(u.n_pinned, 1);
    assert_int_equal(u.pinned_bytes, 100000);

    int n = 0;
    cas_gc_result res;
    assert_int_equal(cas_store_gc(f->s, CAS_GC_DRY_RUN, collect_gc, &n, &res), 0);
    assert_int_equal(n, 2);
    assert_int_equal(res.n_models, 2);
    assert_int_equal(res.bytes, 200000);
    assert_int_equal(su_count_dir(f->sdir, "data"), 3); /* dry run removes nothing */

    assert_int_equal(cas_store_rm(f->s, id[1], 0), -EBUSY);
    assert_int_equal(cas_store_gc(f->s, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 2);
    assert_int_equal(su_count_dir(f->sdir, "data"), 1);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), -ENOENT);

    assert_int_equal(cas_store_unpin(f->s, id[1]), 0);
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_false(info.pinned);
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_rm(f->s, id[1], CAS_RM_FORCE), 0);
    assert_int_equal(cas_store_rm(f->s, id[1], CAS_RM_FORCE), -ENOENT);
    assert_int_equal(su_count_dir(f->sdir, "data"), 0);
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.n_models, 0);
}

static void
test_size_limit(void **state)
{
    su_fixture *f = *state;
    size_t len = 100000;
    uint8_t id[4][CAS_HASH_LEN];
    assert_int_equal(cas_store_limit_set(f->s, 2 * len), 0);
    for (int i = 0; i < 3; i++) {
        uint8_t *b = su_random_bytes(len, 30 + (uint64_t)i);
        assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, id[i]), 1);
        free(b);
    }
    /* The oldest unpinned model made room for the third. */
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), -ENOENT);
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_int_equal(cas_store_model_info(f->s, id[2], &info), 0);
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.bytes, 2 * len);
    assert_int_equal(u.limit, 2 * len);

    /* Pinned content fills the limit: a new model cannot fit. */
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_pin(f->s, id[2]), 0);
    uint8_t *b = su_random_bytes(len, 40);
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, id[3]), -ENOSPC);
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(su_count_dir(f->sdir, "data"), 2);
    /* Raising the limit lets it in; gc to the limit then frees nothing pinned. */
    assert_int_equal(cas_store_limit_set(f->s, 3 * len), 0);
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, id[3]), 1);
    assert_int_equal(cas_store_limit_set(f->s, len), 0);
    cas_gc_result res;
    assert_int_equal(cas_store_gc(f->s, CAS_GC_TO_LIMIT, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 1);
    assert_int_equal(cas_store_model_info(f->s, id[3], &info), -ENOENT);
    free(b);
}

static int
name_cb(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    char *out = userdata;
    strcat(out, name);
    strcat(out, ",");
    (void)id;
    return 0;
}

static void
test_names_resolve(void **state)
{
    su_fixture *f = *state;
    uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN], got[CAS_HASH_LEN];
    uint8_t *b = su_random_bytes(5000, 50);
    assert_int_equal(su_add_buf(f->s, f->dir, b, 5000, NULL, id), 1);
    assert_int_equal(su_add_buf(f->s, f->dir, b, 4000, NULL, id2), 1);
    free(b);
    assert_int_equal(cas_store_name_set(f->s, "llama/7b", id), 0);
    assert_int_equal(cas_store_name_set(f->s, "alpha", id2), 0);
    assert_int_equal(cas_store_name_set(f->s, "", id), -EINVAL);
    uint8_t unknown[CAS_HASH_LEN] = { 0 };
    assert_int_equal(cas_store_name_set(f->s, "x", unknown), -ENOENT);
    assert_int_equal(cas_store_name_get(f->s, "llama/7b", got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    assert_int_equal(cas_store_name_get(f->s, "nope", got), -ENOENT);
    char list[256] = "";
    assert_int_equal(cas_store_name_list(f->s, name_cb, list), 0);
    assert_string_equal(list, "alpha,llama/7b,");
    assert_int_equal(cas_store_name_set(f->s, "alpha", id), 0); /* rebinds */
    assert_int_equal(cas_store_name_get(f->s, "alpha", got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    assert_int_equal(cas_store_name_del(f->s, "alpha"), 0);
    assert_int_equal(cas_store_name_del(f->s, "alpha"), -ENOENT);

    /* Prefixes. */
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    assert_int_equal(cas_store_resolve(f->s, hex, got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    hex[8] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    hex[7] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), -EINVAL);
    assert_int_equal(cas_store_resolve(f->s, "zzzzzzzz", got), -EINVAL);
    char other[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, other);
    other[0] = other[0] == '0' ? '1' : '0';
    other[9] = '\0';
    cas_hash_prefix pfx;
    assert_int_equal(cas_hash_prefix_parse(other, &pfx), 0);
    if (!cas_hash_prefix_match(&pfx, id2))
        assert_int_equal(cas_store_resolve(f->s, other, got), -ENOENT);

    /* Ambiguity needs two ids sharing 8 hex digits: plant a record. */
    uint8_t twin[CAS_HASH_LEN];
    memcpy(twin, id, CAS_HASH_LEN);
    twin[31] ^= 1;
    MDB_txn *txn;
    assert_int_equal(cas__txn_begin(f->s, false, &txn), 0);
    cas__model_rec rec = { .state = CAS_MODEL_COMPLETE,
                           .manifest = (const uint8_t *)"x",
                           .manifest_len = 1 };
    assert_int_equal(cas__model_put(f->s, txn, twin, &rec), 0);
    assert_int_equal(cas__txn_commit(txn), 0);
    cas_hash_to_hex(id, hex);
    hex[10] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), -ENOTUNIQ);
    /* rm drops the names bound to a model. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    assert_int_equal(cas_store_name_get(f->s, "llama/7b", got), -ENOENT);
}

static int
sig_cb(void *userdata, const void *blob, size_t len)
{
    int *n = userdata;
    (*n)++;
    (void)blob;
    (void)len;
    return 0;
}

static int
key_cb(void *userdata, const uint8_t *key_id, size_t key_id_len, const uint8_t *blob,
       size_t blob_len, const char *name)
{
    char *out = userdata;
    strcat(out, name);
    strcat(out, ";");
    (void)key_id;
    (void)key_id_len;
    (void)blob;
    (void)blob_len;
    return 0;
}

static int
peer_cb(void *userdata, const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len)
{
    int *n = userdata;
    (*n)++;
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    return 0;
}

static void
test_sigs_keys_peers(void **state)
{
    su_fixture *f = *state;
    uint8_t id[CAS_HASH_LEN];
    uint8_t *b = su_random_bytes(1000, 60);
    assert_int_equal(su_add_buf(f->s, f->dir, b, 1000, NULL, id), 1);
    free(b);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-one", 7), 1);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-one", 7), 0);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-two", 7), 1);
    uint8_t unknown[CAS_HASH_LEN] = { 9 };
    assert_int_equal(cas__sig_put(f->s, false, unknown, "s", 1), -ENOENT);
    int n = 0;
    assert_int_equal(cas_store_sig_list(f->s, id, sig_cb, &n), 0);
    assert_int_equal(n, 2);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id, &info), 0);
    assert_int_equal(info.n_sigs, 2);
    assert_int_equal(cas_store_sig_del(f->s, id, "sig-one", 7), 0);
    assert_int_equal(cas_store_sig_del(f->s, id, "sig-one", 7), -ENOENT);

    uint8_t kid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, kid2[8] = { 9 };
    assert_int_equal(cas_store_key_put(f->s, kid, 8, "PUBKEY", 6, "alice"), 0);
    assert_int_equal(cas_store_key_put(f->s, kid2, 8, "PUBKEY2", 7, NULL), 0);
    uint8_t *blob;
    size_t bl;
    char *name;
    assert_int_equal(cas_store_key_get(f->s, kid, 8, &blob, &bl, &name), 0);
    assert_int_equal(bl, 6);
    assert_memory_equal(blob, "PUBKEY", 6);
    assert_string_equal(name, "alice");
    free(blob);
    free(name);
    char list[64] = "";
    assert_int_equal(cas_store_key_list(f->s, key_cb, list), 0);
    assert_string_equal(list, "alice;;");
    assert_int_equal(cas_store_key_del(f->s, kid, 8), 0);
    assert_int_equal(cas_store_key_get(f->s, kid, 8, &blob, &bl, NULL), -ENOENT);

    assert_int_equal(cas_store_peer_put(f->s, "127.0.0.1:7000", 14, "v1", 2), 0);
    assert_int_equal(cas_store_peer_put(f->s, "127.0.0.1:7001", 14, "", 0), 0);
    n = 0;
    assert_int_equal(cas_store_peer_list(f->s, peer_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cas_store_peer_del(f->s, "127.0.0.1:7000", 14), 0);
    assert_int_equal(cas_store_peer_del(f->s, "127.0.0.1:7000", 14), -ENOENT);

    /* rm drops the signatures. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    n = 0;
    assert_int_equal(cas_store_sig_list(f->s, id, sig_cb, &n), 0);
    assert_int_equal(n, 0);
}

static int
namerec_cb(void *userdata, const uint8_t *key, size_t key_len, uint64_t seq, const uint8_t *blob,
           size_t len)
{
    int *n = userdata;
    (*n)++;
    (void)key;
    (void)key_len;
    (void)seq;
    (void)blob;
    (void)len;
    return 0;
}

static void
test_namerecs(void **state)
{
    su_fixture *f = *state;
    const char key[] = "\x01\x02\x03\x04\x05\x06\x07\x08llama";
    size_t kl = sizeof(key) - 1;
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 5, "rec5", 4), 1);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 5, "rec5b", 5), 0); /* not newer */
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 3, "rec3", 4), 0);
    uint64_t seq;
    uint8_t *blob;
    size_t len;
    assert_int_equal(cas_store_namerec_get(f->s, key, kl, &seq, &blob, &len), 0);
    assert_int_equal(seq, 5);
    assert_int_equal(len, 4);
    assert_memory_equal(blob, "rec5", 4);
    free(blob);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 9, "rec9", 4), 1);
    assert_int_equal(cas_store_namerec_get(f->s, key, kl, &seq, &blob, &len), 0);
    assert_int_equal(seq, 9);
    free(blob);
    assert_int_equal(cas_store_namerec_put(f->s, "k2", 2, 1, "x", 1), 1);
    int n = 0;
    assert_int_equal(cas_store_namerec_list(f->s, namerec_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cas_store_namerec_del(f->s, "k2", 2), 0);
    assert_int_equal(cas_store_namerec_del(f->s, "k2", 2), -ENOENT);
    assert_int_equal(cas_store_namerec_get(f->s, "k2", 2, &seq, &blob, &len), -ENOENT);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 10, "", 0), -EINVAL);
    uint8_t big[CAS_STORE_NAMEREC_MAX + 1] = { 0 };
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 10, big, sizeof(big)), -EMSGSIZE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pins_gc, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_names_resolve, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_sigs_keys_peers, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_namerecs, su_setup, su_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
