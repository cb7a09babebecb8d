/* SPDX-License-Identifier: MIT */
/*
 * Store tests of partial models (store-partial.c) on real LMDB environments
 * in temp directories: put chunks and resume, threads putting at once, and
 * repeated puts. The fixture is in storeutil.c.
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

static void
test_partial_resume(void **state)
{
    su_fixture *f = *state;
    size_t len = 3 * 1024 * 1024;
    uint8_t *a = su_random_bytes(len, 70);
    uint8_t *b = su_random_bytes(len, 71);
    memcpy(b + len / 3, a + len / 3, len / 3); /* B's middle third is A's */
    uint8_t ida[CAS_HASH_LEN], idb[CAS_HASH_LEN], id[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, a, len, NULL, ida), 1);

    /* Make B's manifest in another store. */
    char *s2dir = su_path_in(f->dir, "store2");
    cas_store *s2;
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(su_add_buf(s2, f->dir, b, len, NULL, idb), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, idb, &mb, &ml), 0);
    cas_store_free(s2);

    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    assert_memory_equal(id, idb, CAS_HASH_LEN);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 0);
    mb[0] ^= 1;
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), -EBADMSG);
    free(mb);
    char *dp;
    assert_int_equal(cas_store_data_path(f->s, idb, &dp), -EAGAIN);
    bool partial = false;
    int dfd = cas_store_data_open(f->s, idb, &partial); /* what a node serves from */
    assert_true(dfd >= 0);
    assert_true(partial);
    close(dfd);
    uint8_t unknown[CAS_HASH_LEN] = { 1 };
    assert_int_equal(cas_store_data_open(f->s, unknown, &partial), -ENOENT);

    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, idb, &p), 0);
    uint64_t n = cas_partial_n_chunks(p);
    assert_true(n > 10);
    /* The first two chunks, one wrong one. */
    uint8_t cid[CAS_HASH_LEN];
    uint64_t off;
    uint32_t clen;
    for (uint64_t i = 0; i < 2; i++) {
        assert_int_equal(cas_partial_chunk(p, i, cid, &off, &clen), 0);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 1);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 0);
    }
    assert_int_equal(cas_partial_chunk(p, 2, cid, &off, &clen), 0);
    assert_int_equal(cas_partial_put(p, 2, a + off, clen), -EBADMSG);
    assert_int_equal(cas_partial_put(p, 2, b + off, clen - 1), -EBADMSG);
    assert_int_equal(cas_partial_put(p, n, b, 1), -EINVAL);
    /* Already hashed by the caller: still compared with the manifest. */
    uint8_t wrong[CAS_HASH_LEN];
    cas_hash(a + off, clen, wrong);
    assert_int_equal(cas_partial_put_hashed(p, 2, a + off, clen, wrong), -EBADMSG);
    assert_int_equal(cas_partial_put_hashed(p, 2, b + off, clen - 1, cid), -EBADMSG);
    assert_false(cas_partial_has(p, 2));
    assert_int_equal(cas_partial_put_hashed(p, 1, b, 1, cid), -EBADMSG);
    assert_int_equal(cas_partial_commit(p), 0);
    /* Put but not committed: lost when the handle goes. */
    assert_int_equal(cas_partial_put(p, 2, b + off, clen), 1);
    assert_int_equal(cas_partial_complete(p), -EAGAIN);
    cas_partial_free(p);

    /* Reopen the store: the committed bits survived. */
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    uint8_t *bits;
    uint64_t nb;
    assert_int_equal(cas_store_bitmap_get(f->s, idb, &bits, &nb), 0);
    assert_int_equal(nb, n);
    assert_int_equal(bits[0] & 7, 3);
    free(bits);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, idb, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_PARTIAL);
    assert_int_equal(info.n_present, 2);
    assert_int_equal(cas_store_verify(f->s, idb, NULL), 0);
    assert_int_equal(cas_store_export_path(f->s, idb, "/nonexistent/x", NULL, NULL, NULL) < 0, 1);

    assert_int_equal(cas_partial_open(f->s, idb, &p), 0);
    assert_true(cas_partial_has(p, 1));
    assert_false(cas_partial_has(p, 2));
    uint64_t filled = 0;
    assert_int_equal(cas_partial_fill_local(p, &filled), 0);
    assert_true(filled > 0); /* from A's middle third */
    for (uint64_t i = 0; i < n; i++) {
        if (cas_partial_has(p, i))
            continue;
        assert_int_equal(cas_partial_chunk(p, i, cid, &off, &clen), 0);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 1);
    }
    assert_int_equal(cas_partial_n_present(p), n);
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    assert_int_equal(cas_partial_open(f->s, idb, &p), -EINVAL);

    assert_int_equal(cas_store_model_info(f->s, idb, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_COMPLETE);
    assert_int_equal(cas_store_data_path(f->s, idb, &dp), 0);
    dfd = cas_store_data_open(f->s, idb, &partial);
    assert_true(dfd >= 0);
    assert_false(partial);
    close(dfd);
    struct stat st;
    assert_int_equal(stat(dp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    free(dp);
    su_assert_export_equals(f->s, f->dir, idb, b, len);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    free(s2dir);
    free(a);
    free(b);
}

typedef struct put_arg {
    cas_partial *p;
    const uint8_t *bytes;
    uint64_t first, step;
    int r;
} put_arg;

static void *
put_thread(void *arg)
{
    put_arg *a = arg;
    uint64_t n = cas_partial_n_chunks(a->p);
    for (uint64_t i = a->first; i < n && a->r >= 0; i += a->step) {
        uint8_t cid[CAS_HASH_LEN];
        uint64_t off;
        uint32_t len;
        a->r = cas_partial_chunk(a->p, i, cid, &off, &len);
        if (a->r == 0)
            a->r = cas_partial_put(a->p, i, a->bytes + off, len);
        if (a->r >= 0 && i % 5 == 0)
            a->r = cas_partial_commit(a->p);
    }
    return NULL;
}

static void
test_partial_threads(void **state)
{
    su_fixture *f = *state;
    size_t len = 4 * 1024 * 1024;
    uint8_t *b = su_random_bytes(len, 600);
    char *s2dir = su_path_in(f->dir, "store2");
    cas_store *s2;
    uint8_t id[CAS_HASH_LEN];
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(su_add_buf(s2, f->dir, b, len, NULL, id), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, id, &mb, &ml), 0);
    cas_store_free(s2);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    free(mb);
    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, id, &p), 0);
    pthread_t th[3];
    put_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (put_arg){ p, b, (uint64_t)i, 3, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, put_thread, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].r >= 0);
    }
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    su_assert_export_equals(f->s, f->dir, id, b, len);
    free(s2dir);
    free(b);
}

/* A chunk that repeats inside a model is fetched once. */
static void
test_partial_repeats(void **state)
{
    su_fixture *f = *state;
    cas_chunker_params par = { 1024, 4096, 16384 };
    size_t len = 20 * 4096;
    uint8_t *b = su_random_bytes(len, 900);
    for (size_t i = 1; i < 20; i += 2)
        memcpy(b + i * 4096, b + 4096, 4096); /* odd pieces are equal */
    char *s2dir = su_path_in(f->dir, "store2");
    cas_store *s2;
    uint8_t id[CAS_HASH_LEN];
    cas_store_add_opts o = { .kind = CAS_CHUNKER_FIXED, .params = &par };
    cas_chunk_region reg = { 0, CAS_CHUNK_MODE_FIXED };
    o.regions = &reg;
    o.n_regions = 1;
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(su_add_buf(s2, f->dir, b, len, &o, id), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, id, &mb, &ml), 0);
    cas_store_free(s2);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    free(mb);
    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, id, &p), 0);
    assert_int_equal(cas_partial_n_chunks(p), 20);
    assert_int_equal(cas_partial_put(p, 1, b + 4096, 4096), 1);
    uint64_t filled = 0;
    assert_int_equal(cas_partial_fill_local(p, &filled), 0);
    assert_int_equal(filled, 9);
    assert_int_equal(cas_partial_n_present(p), 10);
    for (uint64_t i = 0; i < 20; i += 2)
        assert_int_equal(cas_partial_put(p, i, b + i * 4096, 4096), 1);
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    su_assert_export_equals(f->s, f->dir, id, b, len);
    free(s2dir);
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partial_resume, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_partial_threads, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_partial_repeats, su_setup, su_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
