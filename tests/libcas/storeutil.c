/* SPDX-License-Identifier: MIT */
/* The store tests' fixture and helpers: see storeutil.h. */
#include "storeutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcas/manifest.h"
#include "libcas/store.h"
#include "testutil.h"

char *
su_path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int
su_setup(void **state)
{
    su_fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("store");
    f->sdir = su_path_in(f->dir, "store");
    assert_int_equal(cas_store_open(f->sdir, CAS_STORE_CREATE, &f->s), 0);
    *state = f;
    return 0;
}

int
su_teardown(void **state)
{
    su_fixture *f = *state;
    cas_store_free(f->s);
    tu_rm_rf(f->dir);
    free(f->sdir);
    free(f->dir);
    free(f);
    return 0;
}

uint8_t *
su_random_bytes(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    tu_fill_random(b, len, seed);
    return b;
}

/* Adds len bytes of buf through a file; returns add's result. */
int
su_add_buf(cas_store *s, const char *dir, const void *buf, size_t len, const cas_store_add_opts *o,
           uint8_t id[CAS_HASH_LEN])
{
    char *p = su_path_in(dir, "input.bin");
    assert_int_equal(tu_write_file(p, buf, len), 0);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    int r = cas_store_add_fd(s, fd, o, id);
    close(fd);
    unlink(p);
    free(p);
    return r;
}

void
su_assert_export_equals(cas_store *s, const char *dir, const uint8_t id[CAS_HASH_LEN],
                        const void *buf, size_t len)
{
    char *p = su_path_in(dir, "export.bin");
    cas_store_problem prob;
    assert_int_equal(cas_store_export_path(s, id, p, NULL, NULL, &prob), 0);
    uint8_t *got;
    size_t got_len;
    assert_int_equal(tu_read_file(p, &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, buf, len);
    free(got);
    unlink(p);
    free(p);
}

size_t
su_count_dir(const char *sdir, const char *sub)
{
    char *p = su_path_in(sdir, sub);
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

cas_manifest *
su_manifest_of(cas_store *s, const uint8_t id[CAS_HASH_LEN])
{
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s, id, &mb, &ml), 0);
    cas_manifest *m;
    assert_int_equal(cas_manifest_decode(mb, ml, &m), 0);
    free(mb);
    return m;
}

void
su_flip_byte(const char *path, uint64_t off)
{
    chmod(path, 0644);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
    chmod(path, 0444);
}
