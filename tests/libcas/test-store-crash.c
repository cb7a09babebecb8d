/* SPDX-License-Identifier: MIT */
/*
 * Crash safety of the store: a child process adds, pins and removes models in
 * a loop and is killed with SIGKILL at a random moment; after each kill the
 * store must open, `verify` must pass, no temp or orphan data file may be
 * left, and a re-add must complete. Also two processes adding at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcas/store-internal.h"
#include "libcas/store.h"
#include "testutil.h"

#define N_TRIALS 60
#define N_FILES  6
#define N_FETCH  2 /* models fetched as partial models */

static const size_t file_sizes[N_FILES] = { 300000, 1 << 20, 2 << 20, 3 << 20, 700000, 5 << 20 };

typedef struct fixture {
    char *dir;
    char *sdir;
    char *files[N_FILES];
    uint8_t *fetch[N_FETCH]; /* bytes of the fetched models */
    size_t fetch_len[N_FETCH];
    uint8_t *fetch_manifest[N_FETCH];
    size_t fetch_manifest_len[N_FETCH];
    uint8_t fetch_id[N_FETCH][CAS_HASH_LEN];
} fixture;

static char *
path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("store-crash");
    f->sdir = path_in(f->dir, "store");
    for (int i = 0; i < N_FILES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "in%d.bin", i);
        f->files[i] = path_in(f->dir, name);
        uint8_t *b = malloc(file_sizes[i]);
        tu_fill_random(b, file_sizes[i], 1000 + (uint64_t)i);
        /* Files share some content so the chunk index holds shared chunks. */
        if (i > 0)
            tu_fill_random(b, file_sizes[i] / 4, 1000);
        assert_int_equal(tu_write_file(f->files[i], b, file_sizes[i]), 0);
        free(b);
    }
    /* Manifests of the models to fetch, made in a scratch store. */
    char *src = path_in(f->dir, "src");
    cas_store *s;
    assert_int_equal(cas_store_open(src, CAS_STORE_CREATE, &s), 0);
    for (int i = 0; i < N_FETCH; i++) {
        f->fetch_len[i] = (size_t)(2 + i) << 20;
        f->fetch[i] = malloc(f->fetch_len[i]);
        tu_fill_random(f->fetch[i], f->fetch_len[i], 2000 + (uint64_t)i);
        tu_fill_random(f->fetch[i], f->fetch_len[i] / 4, 1000); /* shared with the files */
        char *p = path_in(f->dir, "fetch.bin");
        assert_int_equal(tu_write_file(p, f->fetch[i], f->fetch_len[i]), 0);
        int fd = open(p, O_RDONLY);
        assert_int_equal(cas_store_add_fd(s, fd, NULL, f->fetch_id[i]), 1);
        close(fd);
        unlink(p);
        free(p);
        assert_int_equal(cas_store_manifest_get(s, f->fetch_id[i], &f->fetch_manifest[i],
                                                &f->fetch_manifest_len[i]),
                         0);
    }
    cas_store_free(s);
    tu_rm_rf(src);
    free(src);
    assert_int_equal(cas_store_open(f->sdir, CAS_STORE_CREATE, &s), 0);
    cas_store_free(s);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    tu_rm_rf(f->dir);
    for (int i = 0; i < N_FILES; i++)
        free(f->files[i]);
    for (int i = 0; i < N_FETCH; i++) {
        free(f->fetch[i]);
        free(f->fetch_manifest[i]);
    }
    free(f->sdir);
    free(f->dir);
    free(f);
    return 0;
}

static int
add_file(cas_store *s, const char *path, bool pin, uint8_t id[CAS_HASH_LEN])
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    cas_store_add_opts o = { .pin = pin };
    int r = cas_store_add_fd(s, fd, &o, id);
    close(fd);
    return r;
}

/* Writes up to max missing chunks of fetch model j from chunk start on;
 * completes the model when all are there. Returns 0 or a negative errno. */
static int
fetch_some(cas_store *s, fixture *f, int j, uint64_t start, uint64_t max, bool commit)
{
    cas_partial *p;
    int r = cas_partial_open(s, f->fetch_id[j], &p);
    if (r == -EINVAL)
        return 0; /* complete already */
    if (r < 0)
        return r;
    uint64_t n = cas_partial_n_chunks(p), done = 0;
    if (start % 3 == 0)
        r = cas_partial_fill_local(p, NULL); /* chunks shared with added files */
    for (uint64_t k = 0; k < n && done < max && r >= 0; k++) {
        uint64_t i = (start + k) % n;
        uint8_t cid[CAS_HASH_LEN];
        uint64_t off;
        uint32_t len;
        r = cas_partial_chunk(p, i, cid, &off, &len);
        if (r == 0)
            r = cas_partial_put(p, i, f->fetch[j] + off, len);
        done += r > 0;
    }
    if (r >= 0 && commit)
        r = cas_partial_n_present(p) == n ? cas_partial_complete(p) : cas_partial_commit(p);
    cas_partial_free(p);
    return r < 0 ? r : 0;
}

/* The child: add, pin, remove and gc forever (until killed), and fetch
 * partial models chunk by chunk. */
static void
child_loop(fixture *f, unsigned seed)
{
    cas_store *s;
    if (cas_store_open(f->sdir, 0, &s) < 0)
        _exit(3);
    for (unsigned i = 0;; i++) {
        unsigned k = (seed + i * 7) % N_FILES;
        uint8_t id[CAS_HASH_LEN];
        int r = add_file(s, f->files[k], (i % 3) == 0, id);
        if (r < 0)
            _exit(4);
        if (i % 4 == 3)
            cas_store_rm(s, id, CAS_RM_FORCE);
        if (i % 5 == 4)
            cas_store_gc(s, 0, NULL, NULL, NULL);
        if (i % 2 == 1)
            cas_store_unpin(s, id);
        int j = (int)(i % N_FETCH);
        uint8_t pid[CAS_HASH_LEN];
        r = cas_store_partial_create(s, f->fetch_manifest[j], f->fetch_manifest_len[j], pid);
        if (r < 0)
            _exit(5);
        if (fetch_some(s, f, j, (uint64_t)i * 5, 9, true) < 0)
            _exit(6);
        if (i % 7 == 6)
            cas_store_rm(s, f->fetch_id[j], CAS_RM_FORCE);
    }
}

static size_t
count_entries(const char *sdir, const char *sub)
{
    char *p = path_in(sdir, sub);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    free(p);
    return n;
}

static int
count_model(void *userdata, const cas_model_info *info)
{
    size_t *n = userdata;
    (*n)++;
    (void)info;
    return 0;
}

static void
check_store(fixture *f, unsigned trial)
{
    cas_store *s;
    assert_int_equal(cas_store_open(f->sdir, 0, &s), 0);
    int r = cas_store_verify(s, NULL, NULL);
    if (r != 0)
        fail_msg("trial %u: verify returned %d", trial, r);
    /* No temp file survives the open, and every data file has a record. */
    assert_int_equal(count_entries(f->sdir, "tmp"), 0);
    size_t n_models = 0;
    assert_int_equal(cas_store_list(s, count_model, &n_models), 0);
    assert_int_equal(count_entries(f->sdir, "data"), n_models);
    /* A re-add completes. */
    uint8_t id[CAS_HASH_LEN];
    r = add_file(s, f->files[trial % N_FILES], false, id);
    if (r < 0)
        fail_msg("trial %u: re-add returned %d", trial, r);
    assert_int_equal(cas_store_verify(s, id, NULL), 0);
    /* A fetch resumes from the bitmap and completes. */
    for (int j = 0; j < N_FETCH; j++) {
        uint8_t pid[CAS_HASH_LEN];
        assert_true(
            cas_store_partial_create(s, f->fetch_manifest[j], f->fetch_manifest_len[j], pid) >= 0);
        assert_int_equal(fetch_some(s, f, j, 0, UINT64_MAX, true), 0);
        cas_model_info info;
        assert_int_equal(cas_store_model_info(s, f->fetch_id[j], &info), 0);
        assert_int_equal(info.state, CAS_MODEL_COMPLETE);
        assert_int_equal(cas_store_verify(s, f->fetch_id[j], NULL), 0);
        /* Back to partial for the next trial's child. */
        assert_int_equal(cas_store_rm(s, f->fetch_id[j], CAS_RM_FORCE), 0);
    }
    cas_store_free(s);
}

static void
test_sigkill_during_adds(void **state)
{
    fixture *f = *state;
    srand(4242);
    for (unsigned trial = 0; trial < N_TRIALS; trial++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_loop(f, trial);
        /* 0..120 ms: lands in open, chunking, fsync, rename, commit, rm... */
        struct timespec ts = { 0, (long)(rand() % 120000) * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st))
            fail_msg("trial %u: child exited with %d", trial, WEXITSTATUS(st));
        check_store(f, trial);
    }
}

static void
test_two_processes(void **state)
{
    fixture *f = *state;
    fflush(NULL);
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            cas_store *s;
            if (cas_store_open(f->sdir, 0, &s) < 0)
                _exit(3);
            for (int i = 0; i < 12; i++) {
                uint8_t id[CAS_HASH_LEN];
                if (add_file(s, f->files[(i + c) % N_FILES], false, id) < 0)
                    _exit(4);
                if ((i + c) % 3 == 0)
                    cas_store_rm(s, id, CAS_RM_FORCE);
            }
            cas_store_free(s);
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int st;
        assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    check_store(f, 0);
}

/* ---------------------------------------------------------------------- */
/* Deterministic crashes at every point of the write protocol. */

static cas__crash_point crash_at;
static bool crash_armed; /* set in the child only */

static void
crash_hook(cas__crash_point cp)
{
    if (cp == crash_at)
        _exit(77);
}

enum {
    OP_ADD,
    OP_RM,
    OP_PARTIAL_CREATE,
    OP_PARTIAL_COMMIT,
    OP_PARTIAL_COMPLETE
};

/* Runs op on the store at dir (in a child when crashing). 0 or errno. */
static int
run_op(fixture *f, const char *dir, int op)
{
    cas_store *s;
    int r = cas_store_open(dir, 0, &s);
    if (r < 0)
        return r;
    uint8_t id[CAS_HASH_LEN];
    switch (op) {
    case OP_ADD:
        r = add_file(s, f->files[1], false, id);
        break;
    case OP_RM:
        r = add_file(s, f->files[1], false, id);
        if (r >= 0) {
            if (crash_armed)
                cas__crash_hook = crash_hook; /* only the rm may crash */
            r = cas_store_rm(s, id, 0);
        }
        break;
    case OP_PARTIAL_CREATE:
        r = cas_store_partial_create(s, f->fetch_manifest[0], f->fetch_manifest_len[0], id);
        break;
    case OP_PARTIAL_COMMIT:
        r = fetch_some(s, f, 0, 0, 5, true);
        break;
    case OP_PARTIAL_COMPLETE:
        r = fetch_some(s, f, 0, 0, UINT64_MAX, true);
        break;
    }
    cas_store_free(s);
    return r < 0 ? r : 0;
}

static void
test_crash_points(void **state)
{
    fixture *f = *state;
    static const struct {
        cas__crash_point cp;
        int op;
    } cases[] = {
        { CAS__CP_ADD_WRITTEN, OP_ADD },
        { CAS__CP_ADD_SYNCED, OP_ADD },
        { CAS__CP_ADD_RENAMED, OP_ADD },
        { CAS__CP_ADD_PRE_COMMIT, OP_ADD },
        { CAS__CP_ADD_COMMITTED, OP_ADD },
        { CAS__CP_RM_COMMITTED, OP_RM },
        { CAS__CP_PARTIAL_FILE, OP_PARTIAL_CREATE },
        { CAS__CP_PARTIAL_SYNCED, OP_PARTIAL_COMMIT },
        { CAS__CP_PARTIAL_PRE_COMMIT, OP_PARTIAL_COMMIT },
        { CAS__CP_PARTIAL_SYNCED, OP_PARTIAL_COMPLETE },
        { CAS__CP_PARTIAL_PRE_COMMIT, OP_PARTIAL_COMPLETE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "cp%zu", i);
        char *dir = path_in(f->dir, name);
        cas_store *s;
        assert_int_equal(cas_store_open(dir, CAS_STORE_CREATE, &s), 0);
        cas_store_free(s);
        if (cases[i].op == OP_PARTIAL_COMMIT || cases[i].op == OP_PARTIAL_COMPLETE)
            assert_int_equal(run_op(f, dir, OP_PARTIAL_CREATE), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            crash_at = cases[i].cp;
            crash_armed = true;
            if (cases[i].op != OP_RM)
                cas__crash_hook = crash_hook;
            run_op(f, dir, cases[i].op);
            _exit(1); /* the crash point was not reached */
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 77)
            fail_msg("case %zu: the child did not stop at its crash point", i);

        /* After the "crash": the store opens, verifies, has no leftovers. */
        assert_int_equal(cas_store_open(dir, 0, &s), 0);
        if (cas_store_verify(s, NULL, NULL) != 0)
            fail_msg("case %zu: verify failed after the crash", i);
        assert_int_equal(count_entries(dir, "tmp"), 0);
        size_t n_models = 0;
        assert_int_equal(cas_store_list(s, count_model, &n_models), 0);
        assert_int_equal(count_entries(dir, "data"), n_models);
        size_t want =
            cases[i].cp == CAS__CP_ADD_COMMITTED                                                ? 1
            : cases[i].op == OP_ADD || cases[i].op == OP_RM || cases[i].op == OP_PARTIAL_CREATE ? 0
                                                                                                : 1;
        if (n_models != want)
            fail_msg("case %zu: %zu models after the crash, want %zu", i, n_models, want);
        cas_store_free(s);
        /* The operation then completes. */
        if (cases[i].op == OP_PARTIAL_COMMIT)
            assert_int_equal(run_op(f, dir, OP_PARTIAL_COMPLETE), 0);
        else
            assert_int_equal(run_op(f, dir, cases[i].op), 0);
        assert_int_equal(cas_store_open(dir, 0, &s), 0);
        assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
        assert_int_equal(count_entries(dir, "tmp"), 0);
        cas_store_free(s);
        free(dir);
    }
}

/* Several processes creating one store at once all succeed. */
static void
test_concurrent_create(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 20; round++) {
        char name[32];
        snprintf(name, sizeof(name), "new%d", round);
        char *dir = path_in(f->dir, name);
        fflush(NULL);
        int gate[2]; /* children start together when the parent closes it */
        assert_int_equal(pipe(gate), 0);
        pid_t pids[6];
        for (int c = 0; c < 6; c++) {
            pids[c] = fork();
            assert_true(pids[c] >= 0);
            if (pids[c] == 0) {
                char x;
                close(gate[1]);
                if (read(gate[0], &x, 1) < 0)
                    _exit(2);
                cas_store *s = NULL;
                int r = cas_store_open(dir, CAS_STORE_CREATE, &s);
                if (r == 0)
                    cas_store_free(s);
                _exit(r == 0 ? 0 : 1);
            }
        }
        close(gate[0]);
        close(gate[1]);
        for (int c = 0; c < 6; c++) {
            int st;
            assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fail_msg("round %d: a concurrent creator failed", round);
        }
        free(dir);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_during_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
