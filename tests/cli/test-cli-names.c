/* SPDX-License-Identifier: MIT */
/*
 * Local names and what ls and info say about a model (issue 14, item 1):
 * nvx tag / untag with their clash and bad-name errors, the ls table (header
 * row; name, short id, size, architecture, quantization, state, signatures)
 * and info's architecture, parameter count, tensor types and context length,
 * read from the GGUF metadata of a synthetic model (nvx-mkmodel, always
 * built) and from a llama2.c checkpoint's header (shared models; skipped
 * when absent).
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
#include "testutil.h"

/* A small synthetic GGUF: dim 64, 2 layers, vocab 300, context 96, Q8_0
 * weights (nvx-mkmodel keeps the norms and embeddings F32). */
static char *
mkmodel(const char *dir)
{
    char *bin = tu_build_path("tests/tools/nvx-mkmodel");
    char *path = strdup(ct_path(dir, "m.gguf"));
    char *argv[] = { bin,   "-o",    path, "--dim",  "64",   "--layers", "2",          "--vocab",
                     "300", "--seq", "96", "--type", "q8_0", "--name",   "names-test", NULL };
    char *err = NULL;
    if (tu_run(argv, NULL, &err) != 0)
        fail_msg("nvx-mkmodel failed: %s", err);
    free(err);
    free(bin);
    return path;
}

static char *
add(const char *store, const char *file, const char *name)
{
    char *out;
    if (name)
        ct_ok(store, &out, NULL, "-q", "add", file, "--name", name, NULL);
    else
        ct_ok(store, &out, NULL, "-q", "add", file, NULL);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static void
expect_fail(const char *store, int code, const char *needle, ...)
{
    char *args[16];
    int n = 0;
    va_list ap;
    va_start(ap, needle);
    for (const char *a; n < 15 && (a = va_arg(ap, const char *));)
        args[n++] = (char *)a;
    va_end(ap);
    char *out, *err;
    int r = ct_runv(store, n, args, &out, &err);
    if (r != code)
        fail_msg("nvx %s: exit %d, want %d; stderr: %s", args[0], r, code, err);
    ct_assert_one_error(err, needle);
    free(out);
    free(err);
}

static void
test_tag_untag(void **state)
{
    ct_fixture *f = *state;
    char *model = mkmodel(f->dir);
    const char *raw = ct_path(f->dir, "raw");
    ct_write_random(raw, 50000, 3);
    char *id = add(f->store, model, NULL), *id2 = add(f->store, raw, NULL);
    char *out, *err;

    ct_ok(f->store, &out, &err, "tag", id, "alice/dreams", NULL);
    char want[128];
    snprintf(want, sizeof(want), "tagged alice/dreams %s\n", id);
    assert_string_equal(out, want);
    free(out);
    free(err);
    /* The name now works wherever an id does; tagging again is fine. */
    ct_ok(f->store, &out, NULL, "-q", "verify", "alice/dreams", NULL);
    free(out);
    ct_ok(f->store, &out, NULL, "tag", "alice/dreams", "second", NULL);
    free(out);
    ct_ok(f->store, &out, NULL, "tag", id, "second", NULL);
    free(out);

    /* A clash names the model that has the name; --force moves it. */
    expect_fail(f->store, 1, "already names", "tag", id2, "second", NULL);
    ct_ok(f->store, &out, NULL, "--json", "tag", id2, "second", "--force", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"action\":\"tagged\""));
    free(out);

    /* Bad names: blank, control byte, leading dash, all hex (would hide id
     * prefixes), too long; and an unknown model. */
    expect_fail(f->store, 2, "printable", "tag", id, "two words", NULL);
    expect_fail(f->store, 2, "printable", "tag", id, "bell\a", NULL);
    expect_fail(f->store, 2, "cannot start with '-'", "tag", id, "--", "-x", NULL);
    expect_fail(f->store, 2, "model id prefix", "tag", id, "deadbeef", NULL);
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    expect_fail(f->store, 2, "1 to 255", "tag", id, longname, NULL);
    expect_fail(f->store, 3, "no model", "tag", "nosuchmodel", "x", NULL);
    /* Seven hex digits are a name (prefixes need eight). */
    ct_ok(f->store, &out, NULL, "tag", id, "cafe123", NULL);
    free(out);

    /* untag: the name goes, the model stays; an unknown name is an error. */
    ct_ok(f->store, &out, NULL, "untag", "alice/dreams", NULL);
    snprintf(want, sizeof(want), "untagged alice/dreams %s\n", id);
    assert_string_equal(out, want);
    free(out);
    expect_fail(f->store, 3, "no local name 'alice/dreams'", "untag", "alice/dreams", NULL);
    expect_fail(f->store, 3, "no model", "info", "alice/dreams", NULL);
    ct_ok(f->store, &out, NULL, "-q", "verify", id, NULL);
    free(out);
    free(id);
    free(id2);
    free(model);
}

/* The row of ls whose line contains needle (static copy). */
static const char *
ls_row(const char *out, const char *needle)
{
    static char line[1024];
    const char *p = strstr(out, needle);
    if (!p)
        fail_msg("no row with %s in:\n%s", needle, out);
    while (p > out && p[-1] != '\n')
        p--;
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof(line), "%.*s", (int)n, p);
    return line;
}

static void
test_ls_table(void **state)
{
    ct_fixture *f = *state;
    char *model = mkmodel(f->dir);
    const char *raw = ct_path(f->dir, "raw");
    ct_write_random(raw, 50000, 4);
    char *id = add(f->store, model, "tiny"), *id2 = add(f->store, raw, NULL);
    char *out;
    ct_ok(f->store, &out, NULL, "pin", "tiny", NULL);
    free(out);
    ct_ok(f->store, &out, NULL, "ls", NULL);
    /* A header row, then one row per model; columns split on blanks. */
    if (strncmp(out, "NAME ", 5) != 0)
        fail_msg("no header row:\n%s", out);
    char head[7][16], cells[7][64];
    assert_int_equal(sscanf(out, "%15s %15s %15s %15s %15s %15s %15s", head[0], head[1], head[2],
                            head[3], head[4], head[5], head[6]),
                     7);
    const char *want_head[] = { "NAME", "ID", "SIZE", "ARCH", "QUANT", "STATE", "SIGS" };
    for (int i = 0; i < 7; i++)
        assert_string_equal(head[i], want_head[i]);
    char short_id[13];
    snprintf(short_id, sizeof(short_id), "%.12s", id);
    const char *row = ls_row(out, short_id);
    /* SIZE is "N.N KiB": two words. */
    char unit[8];
    assert_int_equal(sscanf(row, "%63s %63s %63s %7s %63s %63s %63s %63s", cells[0], cells[1],
                            cells[2], unit, cells[3], cells[4], cells[5], cells[6]),
                     8);
    assert_string_equal(cells[0], "tiny");
    assert_string_equal(cells[1], short_id);
    assert_string_equal(cells[3], "llama");
    assert_string_equal(cells[4], "q8_0");
    assert_string_equal(cells[5], "pinned");
    assert_string_equal(cells[6], "0");
    /* A raw file has no architecture: "-", unpinned, no name. */
    snprintf(short_id, sizeof(short_id), "%.12s", id2);
    row = ls_row(out, short_id);
    assert_non_null(strstr(row, "-  "));
    assert_non_null(strstr(row, "unpinned"));
    assert_int_equal(row[0], '-');
    assert_null(strstr(out, " \n")); /* no trailing blanks */
    free(out);

    ct_ok(f->store, &out, NULL, "ls", "--json", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"names\":[\"tiny\"]"));
    assert_non_null(strstr(out, "\"context_length\":96,\"quantization\":\"q8_0\""));
    assert_non_null(strstr(out, "\"architecture\":null"));
    free(out);
    free(id);
    free(id2);
    free(model);
}

static void
test_info_gguf(void **state)
{
    ct_fixture *f = *state;
    char *model = mkmodel(f->dir);
    char *id = add(f->store, model, "tiny");
    char *out;
    ct_ok(f->store, &out, NULL, "info", "tiny", NULL);
    assert_non_null(strstr(out, "\narch       llama (gguf)\n"));
    assert_non_null(strstr(out, "\ncontext    96 tokens\n"));
    assert_non_null(strstr(out, "\ntypes      q8_0: "));
    assert_non_null(strstr(out, ", f32: "));
    assert_non_null(strstr(out, "\nparams     "));
    free(out);
    ct_ok(f->store, &out, NULL, "--json", "info", "tiny", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"format\":\"gguf\",\"architecture\":\"llama\""));
    assert_non_null(strstr(out, "\"context_length\":96,\"quantization\":\"q8_0\""));
    assert_non_null(strstr(out, "\"tensor_types\":{\"q8_0\":"));
    /* The parameter count is the tensors' elements: the JSON count matches
     * the sum of dims products of info --json's tensor list. */
    uint64_t params = strtoull(strstr(out, "\"parameters\":") + 13, NULL, 10);
    uint64_t sum = 0;
    for (const char *p = strstr(out, "\"tensors\":"); (p = strstr(p, "\"dims\":[")) != NULL;) {
        p += 8;
        uint64_t prod = 1;
        for (char *end;; p = end + 1) {
            prod *= strtoull(p, &end, 10);
            if (*end != ',')
                break;
        }
        sum += prod;
    }
    assert_true(sum > 0);
    assert_int_equal(params, sum);
    free(out);
    free(id);
    free(model);
}

/* A llama2.c checkpoint has no metadata: the header gives the shape, and
 * info says so (format llama2c, context = seq_len). */
static void
test_info_llama2c(void **state)
{
    ct_fixture *f = *state;
    char *path = tu_model_path("stories260K.bin");
    if (!path)
        skip();
    char *id = add(f->store, path, "stories");
    char *out;
    ct_ok(f->store, &out, NULL, "info", "stories", NULL);
    assert_non_null(strstr(out, "\narch       llama (llama2c)\n"));
    assert_non_null(strstr(out, "\ncontext    512 tokens\n"));
    assert_non_null(strstr(out, "\ntypes      f32: "));
    free(out);
    free(id);
    free(path);
}

/* nvx gc --max-bytes: unpinned models go oldest first only until the store
 * fits; pinned ones stay whatever the size. */
static void
test_gc_max_bytes(void **state)
{
    ct_fixture *f = *state;
    char *ids[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", i);
        ct_write_random(ct_path(f->dir, name), 100000, 10 + (uint64_t)i);
        ids[i] = add(f->store, ct_path(f->dir, name), NULL);
    }
    char *out;
    ct_ok(f->store, &out, NULL, "pin", ids[0], NULL); /* the oldest, but pinned */
    free(out);
    ct_ok(f->store, &out, NULL, "--json", "gc", "--max-bytes", "250000", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"removed\":2,\"bytes\":200000"));
    assert_non_null(strstr(out, ids[1]));
    assert_non_null(strstr(out, ids[2]));
    free(out);
    ct_ok(f->store, &out, NULL, "-q", "ls", NULL);
    assert_non_null(strstr(out, ids[0]));
    assert_non_null(strstr(out, ids[3]));
    assert_null(strstr(out, ids[1]));
    free(out);
    /* Below the pinned size: every unpinned model goes, the pinned stays. */
    ct_ok(f->store, &out, NULL, "gc", "--max-bytes", "1K", NULL);
    free(out);
    ct_ok(f->store, &out, NULL, "-q", "ls", NULL);
    char want[80];
    snprintf(want, sizeof(want), "%s\n", ids[0]);
    assert_string_equal(out, want);
    free(out);
    expect_fail(f->store, 2, "max-bytes", "gc", "--max-bytes", "0", NULL);
    for (int i = 0; i < 4; i++)
        free(ids[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tag_untag, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ls_table, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_info_gguf, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_info_llama2c, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_gc_max_bytes, ct_fixture_setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
