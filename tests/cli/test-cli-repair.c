/* SPDX-License-Identifier: MIT */
/*
 * nvx repair and nvx verify of a partial model (issue 9 item 10), on the
 * real binary: a corrupted chunk is named with advice that works, a file
 * without the bytes leaves the model partial (verify exits 6 saying so,
 * also with --json), and repair from the original file restores it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libcas/hash.h"
#include "tests/cli/clitest.h"
#include "testutil.h"

enum {
    MODEL_SIZE = 3 << 20,
};

static void
test_repair_from_file(void **state)
{
    ct_fixture *f = *state;
    const char *model = ct_path(f->dir, "model.bin");
    ct_write_random(model, MODEL_SIZE, 77);
    char *out, *err;
    ct_ok(f->store, &out, &err, "add", model, NULL);
    char id[CAS_HASH_HEX_LEN + 1];
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    free(out);
    free(err);
    char data[4200];
    snprintf(data, sizeof(data), "%s/data/%s", f->store, id);
    ct_flip_byte(data, MODEL_SIZE / 2);

    assert_int_equal(ct_run(f->store, &out, &err, "verify", id, NULL), 4);
    ct_assert_one_error(err, "nvx repair");
    free(out);
    free(err);

    /* A file without those bytes: the bad chunk stays missing. */
    const char *other = ct_path(f->dir, "other.bin");
    ct_write_random(other, MODEL_SIZE, 78);
    assert_int_equal(ct_run(f->store, &out, &err, "repair", id, other, NULL), 6);
    ct_assert_one_error(err, "still missing");
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, &out, &err, "verify", id, NULL), 6);
    ct_assert_one_error(err, "is partial");
    assert_non_null(strstr(out, "partial "));
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, &out, &err, "--json", "verify", id, NULL), 6);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"partial\":true"));
    free(out);
    free(err);

    ct_ok(f->store, &out, &err, "repair", id, model, NULL);
    assert_non_null(strstr(out, "repaired"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "verify", id, NULL);
    assert_non_null(strstr(out, "ok "));
    free(out);
    free(err);
    const char *copy = ct_path(f->dir, "copy.bin");
    ct_ok(f->store, &out, &err, "export", id, "-o", copy, NULL);
    assert_true(ct_files_equal(model, copy));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "repair", id, NULL);
    assert_non_null(strstr(out, "nothing to repair"));
    free(out);
    free(err);
}

/* Without FILE and without nvxd: one line that names both ways out, and
 * the store is left as it was (the chunk is still reported corrupt, not
 * turned into a partial model the user did not ask for). */
static void
test_repair_without_nvxd(void **state)
{
    ct_fixture *f = *state;
    const char *model = ct_path(f->dir, "model.bin");
    ct_write_random(model, MODEL_SIZE, 79);
    char *out, *err;
    ct_ok(f->store, &out, &err, "add", model, NULL);
    char id[CAS_HASH_HEX_LEN + 1];
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    free(out);
    free(err);
    char data[4200];
    snprintf(data, sizeof(data), "%s/data/%s", f->store, id);
    ct_flip_byte(data, MODEL_SIZE / 3);

    assert_int_equal(ct_run(f->store, &out, &err, "repair", id, NULL), 1);
    ct_assert_one_error(err, "start `nvxd --store");
    assert_non_null(strstr(err, "FILE"));
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, &out, &err, "verify", id, NULL), 4);
    ct_assert_one_error(err, "nvx repair");
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "repair", id, model, NULL);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "verify", id, NULL);
    free(out);
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repair_from_file, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_repair_without_nvxd, ct_fixture_setup,
                                        ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
