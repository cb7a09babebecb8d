/* SPDX-License-Identifier: MIT */
/*
 * Removal and gc under pressure (issue 9 item 10): on a file system with no
 * free byte left, rm and gc still commit and free space. Needs a small
 * tmpfs, so it runs only where mount(2) is permitted (root); elsewhere it
 * skips saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcas/store.h"
#include "testutil.h"

enum {
    FS_SIZE = 8 << 20,    /* the tmpfs */
    MODEL_SIZE = 1 << 20, /* each model added */
    FILL_STEP = 64 << 10, /* filler writes */
    MODELS_MAX = 16,
};

static uint64_t
free_bytes(const char *dir)
{
    struct statvfs v;
    assert_int_equal(statvfs(dir, &v), 0);
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Writes dir/name until the file system refuses another byte. */
static void
fill_disk(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    static uint8_t buf[FILL_STEP];
    for (size_t step = sizeof(buf); step > 0; step /= 2) {
        while (write(fd, buf, step) == (ssize_t)step)
            ;
    }
    close(fd);
}

static int
add_random(cas_store *s, const char *tmp, uint64_t seed, uint8_t id[CAS_HASH_LEN])
{
    uint8_t *b = malloc(MODEL_SIZE);
    assert_non_null(b);
    tu_fill_random(b, MODEL_SIZE, seed);
    char p[4096];
    snprintf(p, sizeof(p), "%s/input.bin", tmp);
    assert_int_equal(tu_write_file(p, b, MODEL_SIZE), 0);
    free(b);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    int r = cas_store_add_fd(s, fd, NULL, id);
    close(fd);
    unlink(p);
    return r;
}

/* Fills a store on an 8 MiB tmpfs to the last byte; rm, then gc, must
 * commit and give the space back; the store verifies and reopens. */
typedef struct fixture {
    char *tmp;
    char mnt[4096];
    bool mounted;
} fixture;

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->tmp = tu_tmpdir("gc-full");
    snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->tmp);
    assert_int_equal(mkdir(f->mnt, 0755), 0);
    char opt[64];
    snprintf(opt, sizeof(opt), "size=%d", FS_SIZE);
    f->mounted = mount("tmpfs", f->mnt, "tmpfs", 0, opt) == 0;
    if (!f->mounted)
        fprintf(stderr, "skipping: mount -t tmpfs not permitted here (%s); run as root\n",
                strerror(errno));
    *state = f;
    return 0;
}

/* Unmounts even after a failed assertion (cmocka jumps past the test). */
static int
teardown(void **state)
{
    fixture *f = *state;
    if (f->mounted)
        umount(f->mnt);
    tu_rm_rf(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* Fills a store on an 8 MiB tmpfs to the last byte; rm, then gc, must
 * commit and give the space back; the store verifies and reopens. */
static void
test_rm_gc_disk_full(void **state)
{
    fixture *f = *state;
    if (!f->mounted)
        skip();
    const char *mnt = f->mnt, *tmp = f->tmp;
    char sdir[4200];
    snprintf(sdir, sizeof(sdir), "%s/store", mnt);
    cas_store *s;
    assert_int_equal(cas_store_open(sdir, CAS_STORE_CREATE, &s), 0);
    uint8_t ids[MODELS_MAX][CAS_HASH_LEN];
    size_t n = 0;
    int r = 0;
    while (n < MODELS_MAX && (r = add_random(s, tmp, 100 + n, ids[n])) == 1)
        n++;
    assert_int_equal(r, -ENOSPC);
    assert_true(n >= 4);
    assert_int_equal(cas_store_pin(s, ids[n - 1]), 0); /* gc keeps it */
    fill_disk(mnt, "filler");
    assert_true(free_bytes(mnt) < FILL_STEP);

    /* The first removal may fit in pages LMDB freed before; each next one
     * meets a disk with neither free pages nor free bytes. */
    for (size_t i = 0; i < 2; i++) {
        if (i > 0)
            fill_disk(mnt, "filler");
        assert_int_equal(cas_store_rm(s, ids[i], 0), 0);
        assert_true(free_bytes(mnt) >= MODEL_SIZE / 2);
        cas_model_info mi;
        assert_int_equal(cas_store_model_info(s, ids[i], &mi), -ENOENT);
    }

    fill_disk(mnt, "filler");
    assert_true(free_bytes(mnt) < FILL_STEP);
    cas_gc_result g;
    assert_int_equal(cas_store_gc(s, 0, NULL, NULL, &g), 0);
    assert_int_equal(g.n_models, n - 3);
    assert_true(free_bytes(mnt) >= (n - 3) * (uint64_t)MODEL_SIZE / 2);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    cas_store_free(s);

    assert_int_equal(cas_store_open(sdir, 0, &s), 0);
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(s, &u), 0);
    assert_int_equal(u.n_models, 1);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    cas_store_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rm_gc_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
