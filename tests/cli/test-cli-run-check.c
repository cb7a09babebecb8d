/* SPDX-License-Identifier: MIT */
/*
 * nvx run runs only what verifies (cli/run-check.h): a store model with one
 * flipped byte is refused naming the bad chunk, whatever its size (models
 * over 64 MiB used to run unchecked); --require-trusted and
 * NVX_REQUIRE_TRUSTED=1 refuse unsigned models and models signed by keys
 * outside the keyring, and run a model signed by a trusted key.
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
#include "libcas/manifest.h"
#include "testutil.h"

enum {
    LARGE_BYTES = (64 << 20) + 4096, /* over the old re-hash limit */
    EXIT_CORRUPT = 4,
    EXIT_UNTRUSTED = 5,
};

static const char *gguf = "aidreams260K-f32.gguf";

/* Adds path to the store, returns the id (static buffer). */
static const char *
add(const char *store, const char *path)
{
    static char id[65];
    char *out, *err;
    ct_ok(store, &out, &err, "-q", "add", path, NULL);
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    free(out);
    free(err);
    assert_int_equal(strlen(id), 64);
    return id;
}

/* The index of the chunk of model id holding byte offset. */
static size_t
chunk_at(const char *store, const char *dir, const char *id, uint64_t offset)
{
    const char *mpath = ct_path(dir, "manifest.bin");
    ct_ok(store, NULL, NULL, "manifest", id, "-o", mpath, NULL);
    uint8_t *buf;
    size_t len, ci;
    assert_int_equal(tu_read_file(mpath, &buf, &len), 0);
    cas_manifest *m;
    assert_int_equal(cas_manifest_decode(buf, len, &m), 0);
    assert_int_equal(cas_manifest_chunk_at(m, offset, &ci), 0);
    cas_manifest_free(m);
    free(buf);
    return ci;
}

/* Flips a byte of id's data file at offset; nvx run must refuse the model
 * with exit 4 and one line naming the chunk. */
static void
expect_refused(const char *store, const char *dir, const char *id, uint64_t offset)
{
    char data[4096], want[64];
    snprintf(data, sizeof(data), "%s/data/%s", store, id);
    ct_flip_byte(data, offset);
    snprintf(want, sizeof(want), "chunk %zu (bytes ", chunk_at(store, dir, id, offset));
    char *out = NULL, *err = NULL;
    int rc = ct_run(store, &out, &err, "run", id, "-p", "Once", "-n", "4", NULL);
    if (rc != EXIT_CORRUPT)
        fail_msg("nvx run of a corrupt model exited %d: %s", rc, err ? err : "");
    ct_assert_one_error(err, want);
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void
test_large_corrupt_refused(void **state)
{
    ct_fixture *f = *state;
    const char *file = ct_path(f->dir, "large.bin");
    ct_write_random(file, LARGE_BYTES, 9);
    const char *id = add(f->store, file);
    char idc[65];
    snprintf(idc, sizeof(idc), "%s", id);
    expect_refused(f->store, f->dir, idc, 40 << 20);
}

static void
test_model_corrupt_refused(void **state)
{
    ct_fixture *f = *state;
    char *path = tu_model_path(gguf);
    if (!path)
        skip();
    char id[65];
    snprintf(id, sizeof(id), "%s", add(f->store, path));
    free(path);
    char *out = NULL, *err = NULL;
    ct_ok(f->store, &out, &err, "run", id, "-p", "Once", "-n", "4", NULL);
    free(out);
    free(err);
    expect_refused(f->store, f->dir, id, 600000);
}

static void
test_require_trusted(void **state)
{
    ct_fixture *f = *state;
    char *path = tu_model_path(gguf);
    if (!path)
        skip();
    char id[65];
    snprintf(id, sizeof(id), "%s", add(f->store, path));
    free(path);
    char *out = NULL, *err = NULL;

    /* Unsigned: refused with the flag and with the setting. */
    assert_int_equal(ct_run(f->store, &out, &err, "run", id, "-n", "2", "--require-trusted", NULL),
                     EXIT_UNTRUSTED);
    ct_assert_one_error(err, "is not signed");
    free(out);
    free(err);
    setenv("NVX_REQUIRE_TRUSTED", "1", 1);
    int rc = ct_run(f->store, &out, &err, "run", id, "-n", "2", NULL);
    unsetenv("NVX_REQUIRE_TRUSTED");
    assert_int_equal(rc, EXIT_UNTRUSTED);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "run", id, "-n", "2", NULL); /* no setting: runs */
    free(out);
    free(err);

    /* Signed by a key outside the keyring: refused. */
    const char *key = ct_path(f->dir, "nvx.key");
    char pub[4096];
    snprintf(pub, sizeof(pub), "%s", ct_path(f->dir, "nvx.pub"));
    ct_ok(f->store, NULL, NULL, "key", "new", "--key", key, "--unencrypted", NULL);
    ct_ok(f->store, NULL, NULL, "sign", id, "--key", key, NULL);
    assert_int_equal(ct_run(f->store, &out, &err, "run", id, "-n", "2", "--require-trusted", NULL),
                     EXIT_UNTRUSTED);
    ct_assert_one_error(err, "none from a trusted key");
    free(out);
    free(err);

    /* A plain file has no signature at all. */
    char *file = tu_model_path(gguf);
    assert_int_equal(
        ct_run(f->store, &out, &err, "run", file, "-n", "2", "--require-trusted", NULL),
        EXIT_UNTRUSTED);
    free(file);
    free(out);
    free(err);

    /* Trusted: runs. */
    ct_ok(f->store, &out, &err, "key", "show", "--key", key, NULL);
    FILE *pf = fopen(pub, "w");
    assert_non_null(pf);
    fputs(out, pf);
    fclose(pf);
    free(out);
    free(err);
    ct_ok(f->store, NULL, NULL, "trust", "add", pub, "me", NULL);
    ct_ok(f->store, &out, &err, "run", id, "-p", "Once", "-n", "2", "--require-trusted", NULL);
    assert_true(strlen(out) > 0);
    free(out);
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_large_corrupt_refused, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_model_corrupt_refused, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_require_trusted, ct_fixture_setup,
                                        ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
