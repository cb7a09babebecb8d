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

#include "libcas/store.h"
#include "testutil.h"

#define N_TRIALS 60
#define N_FILES  6

static const size_t file_sizes[N_FILES] = { 300000, 1 << 20, 2 << 20, 3 << 20, 700000, 5 << 20 };

typedef struct fixture {
    char *dir;
    char *sdir;
    char *files[N_FILES];
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
    cas_store *s;
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

/* The child: add, pin, remove and gc forever (until killed). */
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_during_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
