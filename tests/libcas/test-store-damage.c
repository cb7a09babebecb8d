/* SPDX-License-Identifier: MIT */
/*
 * Store tests of damage and hostile conditions on real LMDB environments in
 * temp directories: corrupt data files, damaged records, refusal of
 * non-stores, disk full mid-add, stale temp files and a full map. The
 * fixture is in storeutil.c.
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

typedef struct problems {
    int n;
    cas_store_problem first;
} problems;

static int
problem_cb(void *userdata, const cas_store_problem *p)
{
    problems *ps = userdata;
    if (ps->n++ == 0)
        ps->first = *p;
    return 0;
}

static void
test_corrupt(void **state)
{
    su_fixture *f = *state;
    size_t len = 6 * 1024 * 1024;
    uint8_t *b = su_random_bytes(len, 80);
    uint8_t id[CAS_HASH_LEN], good[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, id), 1);
    assert_int_equal(su_add_buf(f->s, f->dir, b, 1000, NULL, good), 1);
    char *dp;
    assert_int_equal(cas_store_data_path(f->s, id, &dp), 0);
    uint64_t off = 4 * 1024 * 1024 + 12345;
    su_flip_byte(dp, off);
    cas_manifest *m = su_manifest_of(f->s, id);
    size_t want;
    assert_int_equal(cas_manifest_chunk_at(m, off, &want), 0);

    problems ps = { 0 };
    cas_store_verify_opts vo = { .problem = problem_cb, .userdata = &ps };
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1);
    assert_memory_equal(ps.first.model, id, CAS_HASH_LEN);
    assert_int_equal(ps.first.chunk_index, want);
    assert_int_equal(ps.first.error, -EBADMSG);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, NULL, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1);
    assert_int_equal(cas_store_verify(f->s, good, NULL), 0);
    /* Five workers over the model's 8 batches, every chunk: the same one. */
    ps.n = 0;
    cas_store_verify_opts vo5 = {
        .problem = problem_cb, .userdata = &ps, .threads = 5, .all_chunks = true
    };
    assert_int_equal(cas_store_verify(f->s, id, &vo5), -EBADMSG);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.first.chunk_index, want);

    char *out = su_path_in(f->dir, "out.bin");
    cas_store_problem prob;
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, want);
    assert_int_equal(access(out, F_OK), -1); /* nothing left behind */
    cas_chunk_info ci;
    cas_manifest_chunk(m, want, &ci);
    uint8_t *buf = malloc(CAS_CHUNK_MAX_DEFAULT);
    assert_int_equal(cas_store_chunk_read(f->s, ci.id, buf, CAS_CHUNK_MAX_DEFAULT), -EBADMSG);

    /* Bytes appended to a data file: a problem of no chunk. */
    chmod(dp, 0644);
    assert_int_equal(truncate(dp, (off_t)len + 10), 0);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.chunk_index, CAS_STORE_NO_CHUNK);
    assert_int_equal(ps.first.error, -EBADMSG);
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, CAS_STORE_NO_CHUNK);
    /* A truncated one: the first chunk past the end is missing, and the
     * bad chunk before it is still found. */
    assert_int_equal(truncate(dp, 5000000), 0);
    size_t cut;
    assert_int_equal(cas_manifest_chunk_at(m, 5000000, &cut), 0);
    ps.n = 0;
    vo.all_chunks = true;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1 + (int)(cas_manifest_chunk_count(m) - cut));
    assert_int_equal(ps.first.chunk_index, cut);
    assert_int_equal(ps.first.error, -ENOENT);
    vo.all_chunks = false;
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, cut);
    assert_int_equal(prob.error, -ENOENT);
    assert_int_equal(truncate(dp, 100), 0);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.chunk_index, 0);
    /* A missing one: a problem of no chunk. */
    unlink(dp);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.error, -ENOENT);
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    /* rm repairs the store. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    cas_manifest_free(m);
    free(buf);
    free(out);
    free(dp);
    free(b);
}

static void
test_not_a_store(void **state)
{
    su_fixture *f = *state;
    cas_store *s = NULL;
    char *d = su_path_in(f->dir, "other");
    assert_int_equal(mkdir(d, 0755), 0);
    char *junk = su_path_in(d, "file.txt");
    assert_int_equal(tu_write_file(junk, "hello", 5), 0);
    assert_int_equal(cas_store_open(d, 0, &s), -ENOTDIR);
    assert_int_equal(cas_store_open(d, CAS_STORE_CREATE, &s), -ENOTDIR);
    assert_int_equal(cas_store_open(junk, CAS_STORE_CREATE, &s), -ENOTDIR);
    unlink(junk);
    /* Empty: only with CREATE. */
    assert_int_equal(cas_store_open(d, 0, &s), -ENOENT);
    char *missing = su_path_in(f->dir, "missing/deeper");
    assert_int_equal(cas_store_open(missing, 0, &s), -ENOENT);
    assert_int_equal(cas_store_open(missing, CAS_STORE_CREATE, &s), 0);
    cas_store_free(s);
    assert_int_equal(cas_store_open(missing, 0, &s), 0);
    cas_store_free(s);
    /* A marker of another version. */
    char *marker = su_path_in(missing, "nvx-store");
    assert_int_equal(tu_write_file(marker, "nvx-store 99\n", 13), 0);
    assert_int_equal(cas_store_open(missing, 0, &s), -EBADMSG);
    assert_int_equal(tu_write_file(marker, "nvx-store 1\n", 12), 0);
    assert_int_equal(cas_store_open(missing, 0, &s), 0);
    cas_store_free(s);
    free(marker);
    free(missing);
    free(junk);
    free(d);
}

static void
test_disk_full(void **state)
{
    su_fixture *f = *state;
    size_t len = 8 * 1024 * 1024;
    uint8_t *b = su_random_bytes(len, 90);
    char *in = su_path_in(f->dir, "big.bin");
    assert_int_equal(tu_write_file(in, b, len), 0);
    uint8_t small_id[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, b, 1000, NULL, small_id), 1);
    cas_store_free(f->s);
    f->s = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A file size limit makes write() fail with EFBIG, like a full disk. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { 3 * 1024 * 1024, 3 * 1024 * 1024 };
        setrlimit(RLIMIT_FSIZE, &rl);
        cas_store *s;
        if (cas_store_open(f->sdir, 0, &s) < 0)
            _exit(100);
        int fd = open(in, O_RDONLY);
        uint8_t id[CAS_HASH_LEN];
        int r = cas_store_add_fd(s, fd, NULL, id);
        cas_store_free(s);
        _exit(r == -EFBIG ? 0 : r == -ENOSPC ? 1 : 2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) <= 1);
    /* Cleaned up by the add itself, and the store is consistent. */
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(su_count_dir(f->sdir, "data"), 1);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    uint8_t id[CAS_HASH_LEN];
    int fd = open(in, O_RDONLY);
    assert_int_equal(cas_store_add_fd(f->s, fd, NULL, id), 1);
    close(fd);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    free(in);
    free(b);
}

static void
test_stale_tmp_cleanup(void **state)
{
    su_fixture *f = *state;
    char *t = su_path_in(f->sdir, "tmp/add-1-2-3");
    assert_int_equal(tu_write_file(t, "junk", 4), 0);
    char hex[CAS_HASH_HEX_LEN + 1];
    uint8_t fake[CAS_HASH_LEN] = { 0xab };
    cas_hash_to_hex(fake, hex);
    char name[128];
    snprintf(name, sizeof(name), "data/%s", hex);
    char *orphan = su_path_in(f->sdir, name);
    assert_int_equal(tu_write_file(orphan, "orphan", 6), 0);
    /* A temp file whose writer is alive (it holds the flock) stays. */
    char *live = su_path_in(f->sdir, "tmp/add-4-5-6");
    assert_int_equal(tu_write_file(live, "live", 4), 0);
    int lfd = open(live, O_RDONLY);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(access(t, F_OK), -1);
    assert_int_equal(access(orphan, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    close(lfd);
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(access(live, F_OK), -1);
    free(live);
    free(t);
    free(orphan);
}

static int
count_listed(void *userdata, const cas_model_info *info)
{
    (*(size_t *)userdata)++;
    (void)info;
    return 0;
}

/* Damaged index records are reported as corrupt, never trusted. */
static void
test_damaged_records(void **state)
{
    su_fixture *f = *state;
    uint8_t id[CAS_HASH_LEN];
    uint8_t *b = su_random_bytes(70000, 800);
    assert_int_equal(su_add_buf(f->s, f->dir, b, 70000, NULL, id), 1);
    free(b);
    /* A complete record whose manifest does not decode, with an index entry. */
    uint8_t bad_manifest[40] = { 1, 2 };
    bad_manifest[32] = 'X';
    static const uint8_t bad_state[40] = { 1, 9 };
    static const uint8_t bad_version[40] = { 7, 2 };
    static const uint8_t short_rec[5] = { 1, 2 };
    const struct {
        const void *p;
        size_t n;
    } recs[] = { { bad_state, sizeof(bad_state) },
                 { bad_version, sizeof(bad_version) },
                 { short_rec, sizeof(short_rec) },
                 { bad_manifest, sizeof(bad_manifest) } };
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        uint8_t twin[CAS_HASH_LEN];
        memcpy(twin, id, CAS_HASH_LEN);
        twin[0] ^= (uint8_t)(0x80 | i);
        MDB_txn *txn;
        assert_int_equal(cas__txn_begin(f->s, false, &txn), 0);
        MDB_val k = { CAS_HASH_LEN, twin }, v = { recs[i].n, (void *)recs[i].p };
        assert_int_equal(mdb_put(txn, f->s->db_models, &k, &v, 0), 0);
        uint8_t loc[44] = { 0 }, chunk[CAS_HASH_LEN] = { 0x42 };
        memcpy(loc, twin, CAS_HASH_LEN);
        loc[40] = 1;
        MDB_val ck = { CAS_HASH_LEN, chunk }, cv = { sizeof(loc), loc };
        assert_int_equal(mdb_put(txn, f->s->db_chunks, &ck, &cv, 0), 0);
        assert_int_equal(cas__txn_commit(txn), 0);
        cas_model_info info;
        /* (The record of the last one is sound; only its manifest is not.) */
        assert_int_equal(cas_store_model_info(f->s, twin, &info), i < 3 ? -EBADMSG : 0);
        problems ps = { 0 };
        cas_store_verify_opts vo = { .problem = problem_cb, .userdata = &ps };
        assert_int_equal(cas_store_verify(f->s, twin, &vo), -EBADMSG);
        assert_int_equal(ps.n, 1);
        assert_int_equal(ps.first.chunk_index, CAS_STORE_NO_CHUNK);
        ps.n = 0;
        assert_int_equal(cas_store_verify(f->s, NULL, &vo), -EBADMSG);
        assert_int_equal(ps.n, 1);
        int nfd = open("/dev/null", O_WRONLY);
        assert_int_equal(cas_store_export_fd(f->s, twin, nfd, NULL, NULL, NULL), -EBADMSG);
        close(nfd);
        size_t n_listed = 0;
        assert_int_equal(cas_store_list(f->s, count_listed, &n_listed), 0);
        assert_int_equal(n_listed, i < 3 ? 1 : 2);
        /* rm repairs the index. */
        assert_int_equal(cas_store_rm(f->s, twin, 0), 0);
        assert_int_equal(cas_store_model_info(f->s, twin, &info), -ENOENT);
        assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
        cas_chunk_loc cl;
        assert_int_equal(cas_store_chunk_find(f->s, chunk, &cl), -ENOENT);
    }
}

/* A full LMDB map grows (issue 9 item 10): an add whose index entries do
 * not fit the map it started with commits, and the store stays sound and
 * reopens with the same models. */
static void
test_map_full(void **state)
{
    su_fixture *f = *state;
    char *d = su_path_in(f->dir, "small");
    cas_store *s;
    cas__map_size = 512 * 1024;
    assert_int_equal(cas_store_open(d, CAS_STORE_CREATE, &s), 0);
    size_t len = 8 * 1024 * 1024;
    uint8_t *b = su_random_bytes(len, 1234);
    cas_chunker_params p = { 64, 256, 1024 }; /* ~32k chunks: a 1 MiB manifest */
    cas_store_add_opts o = { .params = &p };
    uint8_t id[CAS_HASH_LEN], small_id[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(s, f->dir, b, 1000, NULL, small_id), 1);
    assert_int_equal(su_add_buf(s, f->dir, b, len, &o, id), 1);
    assert_int_equal(su_count_dir(d, "tmp"), 0);
    assert_int_equal(su_count_dir(d, "data"), 2);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    /* Removing it needs pages too; then a second big add fits again. */
    assert_int_equal(cas_store_rm(s, id, 0), 0);
    assert_int_equal(su_add_buf(s, f->dir, b, len, &o, id), 1);
    cas_store_free(s);
    /* Another process opening with the small size adopts the grown map. */
    assert_int_equal(cas_store_open(d, 0, &s), 0);
    cas__map_size = 0;
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(s, &u), 0);
    assert_int_equal(u.n_models, 2);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    cas_store_free(s);
    tu_rm_rf(d);
    free(d);
    free(b);
}

/* The same through pread, the path verify and export take where the data
 * file cannot be mapped (store-io.c). */
static void
test_corrupt_pread(void **state)
{
    cas__io_no_map = true;
    test_corrupt(state);
    cas__io_no_map = false;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_corrupt, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pread, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_cleanup, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_map_full, su_setup, su_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
