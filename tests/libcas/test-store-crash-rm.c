/* SPDX-License-Identifier: MIT */
/*
 * Crashes inside the write paths of issue 9 item 10 (FORMAT.md "Remove on a
 * full disk" and "Repair"): a child process dies (_exit) at a crash point
 * of the disk-full removal (cas__rm_unlink_first: the mark committed, the
 * file unlinked) or of a repair from a file (the forget before its commit,
 * the partial commit and completion after it). Reopening the store must
 * finish the removal or leave the repair resumable: verify passes (or names
 * only the chunk that was bad before), no data file without a record, no
 * record without its file, no mark left, gc works, and the repair or a
 * re-add then completes. Real LMDB files in a temp dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "libcas/store-internal.h"
#include "libcas/store.h"
#include "testutil.h"

enum {
    MODEL_SIZE = 3 << 20,
    OTHER_SIZE = 1 << 20,
    CRASH_EXIT = 77,
};

typedef struct fixture {
    char *dir;
    char model[4096]; /* the model's bytes */
    char other[4096]; /* a second model, kept through every case */
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_tmpdir("store-crash-rm");
    snprintf(f->model, sizeof(f->model), "%s/model.bin", f->dir);
    snprintf(f->other, sizeof(f->other), "%s/other.bin", f->dir);
    uint8_t *b = malloc(MODEL_SIZE);
    assert_non_null(b);
    tu_fill_random(b, MODEL_SIZE, 501);
    assert_int_equal(tu_write_file(f->model, b, MODEL_SIZE), 0);
    tu_fill_random(b, OTHER_SIZE, 502);
    assert_int_equal(tu_write_file(f->other, b, OTHER_SIZE), 0);
    free(b);
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
    return 0;
}

/* The crash the child dies of: the nth time point cp is reached. Set in the
 * child only, before the hook is installed. */
static cas__crash_point crash_at;
static unsigned crash_nth;

static void
crash_hook(cas__crash_point cp)
{
    if (cp == crash_at && --crash_nth == 0)
        _exit(CRASH_EXIT);
}

static int
add_path(cas_store *s, const char *path, bool pin, uint8_t id[CAS_HASH_LEN])
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    cas_store_add_opts o = { .pin = pin };
    int r = cas_store_add_fd(s, fd, &o, id);
    close(fd);
    return r;
}

static size_t
count_entries(const char *dir, const char *sub)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int
count_model(void *userdata, const cas_model_info *info)
{
    (*(size_t *)userdata)++;
    (void)info;
    return 0;
}

/* A fresh store at f->dir/name holding the model and (pinned) the other
 * one; the model's id in ret_id. */
static char *
new_store(fixture *f, const char *name, uint8_t ret_id[CAS_HASH_LEN])
{
    char *sdir = malloc(4200);
    assert_non_null(sdir);
    snprintf(sdir, 4200, "%s/%s", f->dir, name);
    cas_store *s;
    assert_int_equal(cas_store_open(sdir, CAS_STORE_CREATE, &s), 0);
    uint8_t oid[CAS_HASH_LEN];
    assert_int_equal(add_path(s, f->other, true, oid), 1);
    assert_int_equal(add_path(s, f->model, false, ret_id), 1);
    cas_store_free(s);
    return sdir;
}

/* Whether a "removing" mark is left in meta. */
static bool
has_mark(cas_store *s)
{
    MDB_txn *txn;
    assert_int_equal(cas__txn_begin(s, true, &txn), 0);
    MDB_cursor *c;
    assert_int_equal(mdb_cursor_open(txn, s->db_meta, &c), 0);
    MDB_val k = { CAS__REMOVING_KEY_LEN, CAS__REMOVING_KEY }, v;
    bool found = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 &&
                 k.mv_size >= CAS__REMOVING_KEY_LEN &&
                 memcmp(k.mv_data, CAS__REMOVING_KEY, CAS__REMOVING_KEY_LEN) == 0;
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return found;
}

/* Every model has its data file and every data file its model. */
static void
check_files_match(cas_store *s, const char *sdir)
{
    size_t n = 0;
    assert_int_equal(cas_store_list(s, count_model, &n), 0);
    assert_int_equal(count_entries(sdir, "data"), n);
    assert_int_equal(count_entries(sdir, "tmp"), 0);
}

/* Runs fn(s, arg) on the store in a child that must die at (cp, nth). */
static void
crash_child(const char *sdir, cas__crash_point cp, unsigned nth, int (*fn)(cas_store *s, void *arg),
            void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cas_store *s;
        if (cas_store_open(sdir, 0, &s) < 0)
            _exit(3);
        crash_at = cp;
        crash_nth = nth;
        cas__crash_hook = crash_hook;
        fn(s, arg);
        _exit(1); /* the crash point was not reached */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != CRASH_EXIT)
        fail_msg("crash point %d (#%u): the child did not stop there (status %#x)", (int)cp, nth,
                 st);
}

static int
do_rm_unlink_first(cas_store *s, void *arg)
{
    return cas__rm_unlink_first(s, arg, 0);
}

/* Disk-full removal killed after its mark committed, and after the unlink
 * inside the last transaction: the next open finishes the removal. */
static void
test_rm_unlink_first_crash(void **state)
{
    fixture *f = *state;
    static const cas__crash_point cps[] = { CAS__CP_RM_MARKED, CAS__CP_RM_UNLINKED };
    for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "rm%zu", i);
        uint8_t id[CAS_HASH_LEN];
        char *sdir = new_store(f, name, id);
        char reserve[4300];
        snprintf(reserve, sizeof(reserve), "%s/reserve", sdir);
        crash_child(sdir, cps[i], 1, do_rm_unlink_first, id);

        cas_store *s;
        assert_int_equal(cas_store_open(sdir, 0, &s), 0);
        cas_model_info mi;
        if (cas_store_model_info(s, id, &mi) != -ENOENT)
            fail_msg("case %zu: the removal was not finished at open", i);
        assert_false(has_mark(s));
        check_files_match(s, sdir);
        assert_int_equal(count_entries(sdir, "data"), 1); /* the model's space is free */
        assert_int_equal(access(reserve, F_OK), 0);       /* made again at open */
        assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
        /* The model comes back, and gc removes it again (unpinned). */
        uint8_t again[CAS_HASH_LEN];
        assert_int_equal(add_path(s, f->model, false, again), 1);
        assert_memory_equal(again, id, CAS_HASH_LEN);
        cas_gc_result g;
        assert_int_equal(cas_store_gc(s, 0, NULL, NULL, &g), 0);
        assert_int_equal(g.n_models, 1);
        check_files_match(s, sdir);
        assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
        cas_store_free(s);
        free(sdir);
    }
}

/* ---- repair from a file ------------------------------------------------ */

typedef struct repair_arg {
    const uint8_t *id;
    uint64_t bad;
    const char *file;
} repair_arg;

/* What `nvx repair ID FILE` does to the store (cli/cmd-repair.c). */
static int
do_repair(cas_store *s, void *arg)
{
    repair_arg *a = arg;
    int r = cas_store_chunks_forget(s, a->id, &a->bad, 1);
    if (r < 0)
        return r;
    int fd = open(a->file, O_RDONLY);
    if (fd < 0)
        return -errno;
    cas_partial *p = NULL;
    uint64_t got;
    r = cas_partial_open(s, a->id, &p);
    if (r == 0)
        r = cas_partial_fill_fd(p, fd, &got);
    if (r == 0)
        r = cas_partial_commit(p);
    if (r == 0 && cas_partial_n_present(p) == cas_partial_n_chunks(p))
        r = cas_partial_complete(p);
    cas_partial_free(p);
    close(fd);
    return r;
}

static int
on_problem(void *userdata, const cas_store_problem *p)
{
    uint64_t *bad = userdata;
    *bad = p->chunk_index;
    return 0;
}

/* Corrupts the model's data file in the middle; returns the bad chunk. */
static uint64_t
corrupt(cas_store *s, const char *sdir, const uint8_t id[CAS_HASH_LEN])
{
    char hex[CAS_HASH_HEX_LEN + 1], path[4400];
    cas_hash_to_hex(id, hex);
    snprintf(path, sizeof(path), "%s/data/%s", sdir, hex);
    assert_int_equal(chmod(path, 0644), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, MODEL_SIZE / 2), 1);
    b ^= 0x08;
    assert_int_equal(pwrite(fd, &b, 1, MODEL_SIZE / 2), 1);
    close(fd);
    assert_int_equal(chmod(path, 0444), 0);
    uint64_t bad = UINT64_MAX;
    cas_store_verify_opts o = { .problem = on_problem, .all_chunks = true, .userdata = &bad };
    assert_int_equal(cas_store_verify(s, id, &o), -EBADMSG);
    assert_int_not_equal(bad, UINT64_MAX);
    return bad;
}

/* The model's bytes on disk equal the file's, and the file is 0444. */
static void
check_repaired(const char *sdir, const uint8_t id[CAS_HASH_LEN], const char *file)
{
    char hex[CAS_HASH_HEX_LEN + 1], path[4400];
    cas_hash_to_hex(id, hex);
    snprintf(path, sizeof(path), "%s/data/%s", sdir, hex);
    uint8_t *a, *b;
    size_t la, lb;
    assert_int_equal(tu_read_file(path, &a, &la), 0);
    assert_int_equal(tu_read_file(file, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
}

/* A repair from a file killed before the forget commits (the model stays
 * complete with its bad chunk), in the partial commit and in the
 * completion: after the open the store is consistent, verify reports at
 * most the one bad chunk, and running the repair again completes it. */
static void
test_repair_crash(void **state)
{
    fixture *f = *state;
    static const struct {
        cas__crash_point cp;
        unsigned nth;
        bool partial_after; /* the forget committed before the crash */
    } cases[] = {
        { CAS__CP_FORGET_PRE_COMMIT, 1, false },
        { CAS__CP_PARTIAL_SYNCED, 1, true },     /* cas_partial_commit */
        { CAS__CP_PARTIAL_PRE_COMMIT, 1, true }, /* cas_partial_commit */
        { CAS__CP_PARTIAL_SYNCED, 2, true },     /* cas_partial_complete */
        { CAS__CP_PARTIAL_PRE_COMMIT, 2, true }, /* cas_partial_complete */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "repair%zu", i);
        uint8_t id[CAS_HASH_LEN];
        char *sdir = new_store(f, name, id);
        cas_store *s;
        assert_int_equal(cas_store_open(sdir, 0, &s), 0);
        repair_arg a = { .id = id, .bad = corrupt(s, sdir, id), .file = f->model };
        cas_store_free(s);
        crash_child(sdir, cases[i].cp, cases[i].nth, do_repair, &a);

        assert_int_equal(cas_store_open(sdir, 0, &s), 0);
        check_files_match(s, sdir);
        cas_model_info mi;
        assert_int_equal(cas_store_model_info(s, id, &mi), 0);
        if ((mi.state == CAS_MODEL_PARTIAL) != cases[i].partial_after)
            fail_msg("case %zu: state %d after the crash", i, (int)mi.state);
        uint64_t bad = UINT64_MAX;
        cas_store_verify_opts o = { .problem = on_problem, .all_chunks = true, .userdata = &bad };
        int r = cas_store_verify(s, NULL, &o);
        if (cases[i].partial_after) {
            /* A partial model's verified chunks are sound. */
            if (r != 0)
                fail_msg("case %zu: verify %d (chunk %llu)", i, r, (unsigned long long)bad);
        } else {
            assert_int_equal(r, -EBADMSG);
            assert_int_equal(bad, a.bad); /* the same chunk, nothing else */
        }
        /* gc runs (the other model is pinned; a partial one is kept). */
        cas_gc_result g;
        assert_int_equal(cas_store_gc(s, CAS_GC_DRY_RUN, NULL, NULL, &g), 0);

        /* The repair runs again to the end. */
        if (cases[i].partial_after) {
            int fd = open(f->model, O_RDONLY);
            assert_true(fd >= 0);
            cas_partial *p;
            uint64_t got;
            assert_int_equal(cas_partial_open(s, id, &p), 0);
            assert_int_equal(cas_partial_fill_fd(p, fd, &got), 0);
            assert_int_equal(cas_partial_n_present(p), cas_partial_n_chunks(p));
            assert_int_equal(cas_partial_complete(p), 0);
            cas_partial_free(p);
            close(fd);
        } else {
            assert_int_equal(do_repair(s, &a), 0);
        }
        assert_int_equal(cas_store_model_info(s, id, &mi), 0);
        assert_int_equal(mi.state, CAS_MODEL_COMPLETE);
        assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
        check_files_match(s, sdir);
        check_repaired(sdir, id, f->model);
        assert_int_equal(cas_store_rm(s, id, 0), 0);
        check_files_match(s, sdir);
        cas_store_free(s);
        free(sdir);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rm_unlink_first_crash),
        cmocka_unit_test(test_repair_crash),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
