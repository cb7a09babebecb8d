/* SPDX-License-Identifier: MIT */
/*
 * nvx chat end to end: two turns through a pipe on the realarch phi3 model
 * (its GGUF carries a Phi-3 chat template) and on qwen2 with --template
 * chatml: exit 0, two replies, and --stats shows turn 2 fed only its own
 * tokens, starting where turn 1 ended (the KV cache was kept). Also the
 * refusals: no template, a plain file with --require-trusted.
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

/* Runs `nvx chat ARGS... < input` through sh, so stdin is a pipe-like
 * file. Returns the exit status. */
static int
chat(const char *dir, const char *input, const char *args, char **ret_out, char **ret_err)
{
    const char *in = ct_path(dir, "input.txt");
    assert_int_equal(tu_write_file(in, input, strlen(input)), 0);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "exec \"$0\" chat %s < '%s'", args, in);
    char *argv[] = { "/bin/sh", "-c", cmd, (char *)ct_nvx(), NULL };
    return tu_run(argv, ret_out, ret_err);
}

static unsigned
count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void
two_turns(void **state, const char *model, const char *extra)
{
    ct_fixture *fx = *state;
    char *path = tu_model_path(model);
    if (!path)
        skip();
    char args[2048];
    snprintf(args, sizeof(args), "'%s' %s -n 8 -t 0 --system 'Be brief.' --stats", path, extra);
    char *out = NULL, *err = NULL;
    int rc = chat(fx->dir, "Hi there\n\nBye\n", args, &out, &err);
    if (rc != 0)
        fprintf(stderr, "%s", err);
    assert_int_equal(rc, 0);
    /* Two replies, one line each (8 tokens of a synthetic model may hold
     * newlines, so count the stats lines instead of trusting stdout's). */
    unsigned t1_n = 0, t1_pos = 1, t1_gen = 0, t2_n = 0, t2_pos = 0, t2_gen = 0;
    const char *p1 = strstr(err, "turn 1: "), *p2 = strstr(err, "turn 2: ");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_null(strstr(err, "turn 3: "));
    assert_int_equal(sscanf(p1, "turn 1: %u prompt tokens at position %u, %u generated", &t1_n,
                            &t1_pos, &t1_gen),
                     3);
    assert_int_equal(sscanf(p2, "turn 2: %u prompt tokens at position %u, %u generated", &t2_n,
                            &t2_pos, &t2_gen),
                     3);
    assert_int_equal(t1_pos, 0);
    /* Turn 2 starts after turn 1's prompt and reply (the stop token, if
     * one ended it, is not fed) and feeds fewer tokens than the whole
     * conversation so far. */
    assert_true(t2_pos == t1_n + t1_gen || t2_pos == t1_n + t1_gen - 1);
    assert_true(t2_n > 0 && t2_n < t2_pos + t2_n);
    assert_true(t2_n < t1_n + t1_gen);
    assert_true(count_lines(out) >= 2);
    free(out);
    free(err);
    free(path);
}

static void
test_phi3_detected(void **state)
{
    two_turns(state, "realarch/phi3-Q4_K_M.gguf", "");
}

static void
test_qwen2_chatml(void **state)
{
    two_turns(state, "realarch/qwen2-gqa-Q8_0.gguf", "--template chatml");
}

static void
test_refusals(void **state)
{
    ct_fixture *fx = *state;
    char *path = tu_model_path("realarch/qwen2-gqa-Q8_0.gguf");
    if (!path)
        skip();
    char args[2048];
    char *out = NULL, *err = NULL;
    snprintf(args, sizeof(args), "'%s'", path);
    assert_int_equal(chat(fx->dir, "Hi\n", args, &out, &err), 2);
    ct_assert_one_error(err, "has no tokenizer.chat_template: pass --template");
    free(out);
    free(err);
    snprintf(args, sizeof(args), "'%s' --template chatml --require-trusted", path);
    assert_int_equal(chat(fx->dir, "Hi\n", args, &out, &err), 5);
    ct_assert_one_error(err, "trusted signature is required");
    free(out);
    free(err);
    /* /bye ends before any turn: nothing generated. */
    snprintf(args, sizeof(args), "'%s' --template chatml -n 4 --stats", path);
    assert_int_equal(chat(fx->dir, "/bye\nHi\n", args, &out, &err), 0);
    assert_string_equal(out, "");
    assert_null(strstr(err, "turn 1"));
    free(out);
    free(err);
    free(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_phi3_detected, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_qwen2_chatml, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, ct_fixture_setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
