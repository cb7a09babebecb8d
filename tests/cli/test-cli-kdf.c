/* SPDX-License-Identifier: MIT */
/*
 * nvx key new on a small machine (issue 14): the default scrypt cost is
 * sized from the available memory (never above half of it, never under
 * --fast-kdf's 16 MiB), so that a 1 GB board can make, and open, a key; and
 * when scrypt still cannot get its memory, the error points at --fast-kdf.
 * The memory figure comes from $NVX_KDF_MEM_AVAILABLE or from a real
 * `ulimit -v` (the latter skipped under AddressSanitizer, which reserves
 * terabytes of address space).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clitest.h"
#include "libcas/sig.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

enum {
    MIB = 1 << 20,
    ULIMIT_KIB = 400 * 1024, /* ulimit -v: room for nvx, not for a 1 GiB scrypt */
};

/* The scrypt memory limit written in the secret key file at path. */
static uint64_t
key_memlimit(const char *path)
{
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(path, &buf, &len), 0);
    bool enc = false;
    uint64_t mem = 0;
    assert_int_equal(cas_seckey_probe(buf, len, &enc, &mem), 0);
    assert_true(enc);
    free(buf);
    return mem;
}

/* `nvx --store STORE key new --key KEY` under `ulimit -v ULIMIT_KIB`. */
static int
key_new_ulimit(const char *store, const char *key, char **ret_err)
{
    char *argv[] = { "/bin/sh",
                     "-c",
                     "ulimit -v 409600 && exec \"$0\" --store \"$1\" key new --key \"$2\"",
                     (char *)ct_nvx(),
                     (char *)store,
                     (char *)key,
                     NULL };
    return tu_run(argv, NULL, ret_err);
}

static int
setup(void **state)
{
    setenv("NVX_PASSPHRASE", "correct horse", 1);
    return ct_fixture_setup(state);
}

/* 64 MiB available: a 32 MiB scrypt, and the key opens again (sign). */
static void
test_sized_from_memory(void **state)
{
    ct_fixture *f = *state;
    const char *key = ct_path(f->dir, "k.key"), *file = ct_path(f->dir, "m.bin");
    setenv("NVX_KDF_MEM_AVAILABLE", "67108864", 1);
    char *out, *err;
    ct_ok(f->store, &out, &err, "key", "new", "--key", key, NULL);
    assert_non_null(strstr(err, "scrypt, 32 MiB"));
    free(out);
    free(err);
    assert_int_equal(key_memlimit(key), 32 * MIB);
    /* Less than twice the floor: the floor (--fast-kdf's 16 MiB). */
    const char *key2 = ct_path(f->dir, "k2.key");
    setenv("NVX_KDF_MEM_AVAILABLE", "1000000", 1);
    ct_ok(f->store, &out, &err, "key", "new", "--key", key2, NULL);
    free(out);
    free(err);
    assert_int_equal(key_memlimit(key2), CAS_KDF_MEMLIMIT_FAST);
    unsetenv("NVX_KDF_MEM_AVAILABLE");

    ct_write_random(file, 10000, 1);
    ct_ok(f->store, &out, NULL, "-q", "add", file, NULL);
    out[strcspn(out, "\n")] = '\0';
    char *err2;
    ct_ok(f->store, NULL, &err2, "sign", out, "--key", key, NULL);
    free(err2);
    free(out);
}

/* A real address-space limit, as on a 1 GB board: the default fits it. */
static void
test_ulimit_fits(void **state)
{
    if (UNDER_ASAN)
        skip();
    ct_fixture *f = *state;
    const char *key = ct_path(f->dir, "u.key");
    char *err = NULL;
    int r = key_new_ulimit(f->store, key, &err);
    if (r != 0)
        fail_msg("key new under ulimit -v %d failed (%d): %s", ULIMIT_KIB, r, err);
    free(err);
    uint64_t mem = key_memlimit(key);
    assert_true(mem >= CAS_KDF_MEMLIMIT_FAST && mem <= (uint64_t)ULIMIT_KIB * 1024 / 2);
}

/* When the figure is wrong (more claimed than the limit gives), scrypt fails
 * and the one-line error names --fast-kdf; no key file is left. */
static void
test_alloc_fails_hint(void **state)
{
    if (UNDER_ASAN)
        skip();
    ct_fixture *f = *state;
    const char *key = ct_path(f->dir, "h.key");
    setenv("NVX_KDF_MEM_AVAILABLE", "8589934592", 1);
    char *err = NULL;
    int r = key_new_ulimit(f->store, key, &err);
    unsetenv("NVX_KDF_MEM_AVAILABLE");
    assert_int_equal(r, 1);
    ct_assert_one_error(err + strcspn(err, "\n") + 1, "--fast-kdf");
    free(err);
    FILE *fp = fopen(key, "r");
    assert_null(fp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sized_from_memory, setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ulimit_fits, setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_alloc_fails_hint, setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
