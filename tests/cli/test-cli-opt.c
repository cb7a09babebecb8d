/* SPDX-License-Identifier: MIT */
/* Unit tests of the option parser, number parsers, escaping and JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/escape.h"
#include "cli/json.h"
#include "cli/opt.h"
#include "clitest.h"

typedef struct vals {
    bool flag;
    int count, choice;
    const char *str;
    uint64_t u, sz;
    int64_t i;
    double d;
} vals;

static const char *const choices[] = { "auto", "cdc", "gguf", NULL };

static int
parse(vals *v, int argc, char **argv, int *npos, char *err)
{
    const cli_opt opts[] = {
        { .lname = "flag", .sname = 'f', .type = CLI_OPT_FLAG, .dest = &v->flag },
        { .lname = "verbose", .sname = 'v', .type = CLI_OPT_COUNT, .dest = &v->count },
        { .lname = "str", .sname = 's', .type = CLI_OPT_STR, .dest = &v->str },
        { .lname = "num", .sname = 'n', .type = CLI_OPT_U64, .dest = &v->u, .min = 1, .max = 1000 },
        { .lname = "seed",
          .type = CLI_OPT_I64,
          .dest = &v->i,
          .min = (uint64_t)INT64_C(-10),
          .max = 10 },
        { .lname = "size",
          .type = CLI_OPT_SIZE,
          .dest = &v->sz,
          .min = 64,
          .max = UINT64_C(1) << 40 },
        { .lname = "temp",
          .sname = 't',
          .type = CLI_OPT_DOUBLE,
          .dest = &v->d,
          .dmin = 0,
          .dmax = 2 },
        { .lname = "mode", .type = CLI_OPT_CHOICE, .dest = &v->choice, .choices = choices },
        CLI_OPT_END,
    };
    const cli_opt *const tables[2] = { opts, NULL };
    return cli_opt_parse(tables, argc, argv, npos, err);
}

static void
test_forms(void **state)
{
    char *argv[] = {
        "a",      "--flag", "--str=x y", "-n",     "42",   "b",  "--seed", "-3", "-vv",
        "--size", "16KiB",  "-t0.5",     "--mode", "gguf", "--", "--flag", "-",  NULL
    };
    vals v = { 0 };
    int npos;
    char err[CLI_OPT_ERR_LEN];
    assert_int_equal(parse(&v, 17, argv, &npos, err), CLI_OPT_OK);
    assert_true(v.flag);
    assert_string_equal(v.str, "x y");
    assert_int_equal(v.u, 42);
    assert_int_equal(v.i, -3);
    assert_int_equal(v.count, 2);
    assert_int_equal(v.sz, 16384);
    assert_true(v.d == 0.5);
    assert_int_equal(v.choice, 2);
    assert_int_equal(npos, 4);
    assert_string_equal(argv[0], "a");
    assert_string_equal(argv[1], "b");
    assert_string_equal(argv[2], "--flag");
    assert_string_equal(argv[3], "-");
}

static void
expect_error(const char *w1, const char *w2, const char *needle)
{
    char *argv[] = { (char *)w1, (char *)w2, NULL };
    vals v = { 0 };
    int npos;
    char err[CLI_OPT_ERR_LEN];
    int r = parse(&v, w2 ? 2 : 1, argv, &npos, err);
    if (r != -EINVAL || !strstr(err, needle))
        fail_msg("'%s' '%s': r=%d err='%s' (wanted '%s')", w1, w2 ? w2 : "", r, err, needle);
    assert_null(strchr(err, '\n'));
}

static void
test_errors(void **state)
{
    expect_error("--bogus", NULL, "unknown option '--bogus'");
    expect_error("-x", NULL, "unknown option '-x'");
    expect_error("--flag=1", NULL, "takes no value");
    expect_error("--str", NULL, "needs a value");
    expect_error("-s", NULL, "needs a value");
    expect_error("--num", "0", "out of range: use 1..1000");
    expect_error("--num", "1001", "out of range");
    expect_error("--num", "12a", "invalid number");
    expect_error("--num", "-1", "invalid number");
    expect_error("--num", "99999999999999999999999", "out of range");
    expect_error("--num", "", "invalid number");
    expect_error("--num", " 5", "invalid number");
    expect_error("--seed", "-11", "out of range: use -10..10");
    expect_error("--size", "1Q", "invalid size");
    expect_error("--size", "17179869184G", "out of range");
    expect_error("--size", "63", "out of range");
    expect_error("--temp", "nan", "invalid number");
    expect_error("--temp", "2.5", "out of range");
    expect_error("--temp", "0x1p1", "invalid number");
    expect_error("--mode", "fast", "use one of auto, cdc, gguf");
    /* Control bytes in a bad word are escaped, never echoed raw. */
    expect_error("--mode=\x1b[2J\n", NULL, "\\x1b[2J\\x0a");
}

static void
test_help(void **state)
{
    char *argv[] = { "x", "--help", NULL };
    vals v = { 0 };
    int npos;
    char err[CLI_OPT_ERR_LEN];
    assert_int_equal(parse(&v, 2, argv, &npos, err), CLI_OPT_HELP);
    char *argv2[] = { "-fh", NULL };
    assert_int_equal(parse(&v, 1, argv2, &npos, err), CLI_OPT_HELP);
}

static void
test_sizes(void **state)
{
    uint64_t v;
    assert_int_equal(cli_parse_size("0", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cli_parse_size("1k", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(cli_parse_size("3M", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(cli_parse_size("2GiB", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, UINT64_C(2) << 30);
    assert_int_equal(cli_parse_size("5B", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(cli_parse_size("16777215T", 0, UINT64_MAX, &v), 0);
    assert_int_equal(cli_parse_size("16777216T", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(cli_parse_size("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_int_equal(cli_parse_size("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(cli_parse_size("1KB2", 0, UINT64_MAX, &v), -EINVAL);
    assert_int_equal(cli_parse_size("K", 0, UINT64_MAX, &v), -EINVAL);
    assert_int_equal(cli_parse_size("-1", 0, UINT64_MAX, &v), -EINVAL);
    assert_int_equal(cli_parse_size("1.5M", 0, UINT64_MAX, &v), -EINVAL);
    int64_t i;
    assert_int_equal(cli_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cli_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &i), -ERANGE);
    assert_int_equal(cli_parse_i64("-", INT64_MIN, INT64_MAX, &i), -EINVAL);
    assert_int_equal(cli_parse_i64("--1", INT64_MIN, INT64_MAX, &i), -EINVAL);
}

static void
test_escape(void **state)
{
    char out[64];
    cli_escape("ok \xc3\xa9", 5, out, sizeof(out));
    assert_string_equal(out, "ok \xc3\xa9");
    cli_escape("a\nb\x1b\\\xff\xc2\x85", 8, out, sizeof(out));
    assert_string_equal(out, "a\\x0ab\\x1b\\\\\\xff\\xc2\\x85");
    /* Overlong and surrogate forms are not valid UTF-8. */
    cli_escape("\xc0\xaf\xed\xa0\x80", 5, out, sizeof(out));
    assert_string_equal(out, "\\xc0\\xaf\\xed\\xa0\\x80");
    /* Bidi overrides, zero-width characters and the BOM are shown. */
    cli_escape("a\xe2\x80\xae"
               "b\xe2\x80\x8b"
               "c\xef\xbb\xbf\xe2\x81\xa6",
               15, out, sizeof(out));
    assert_string_equal(out, "a\\u202eb\\u200bc\\ufeff\\u2066");
    cli_escape("\xe2\x80\x94", 3, out, sizeof(out)); /* an em dash is text */
    assert_string_equal(out, "\xe2\x80\x94");
    /* Truncation keeps the output NUL-terminated and marks it. */
    char small[8];
    cli_escape("abcdefghijkl", 12, small, sizeof(small));
    assert_string_equal(small, "abcd...");
}

static void
test_json(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cli_json j;
    cli_json_init(&j, f);
    cli_json_obj_begin(&j);
    cli_json_key(&j, "s");
    cli_json_strn(&j, "q\"b\\\n\x01\xff\xe2\x82\xac", 10);
    cli_json_key(&j, "a");
    cli_json_arr_begin(&j);
    cli_json_u64(&j, 1);
    cli_json_i64(&j, -2);
    cli_json_bool(&j, true);
    cli_json_null(&j);
    cli_json_double(&j, 0.25);
    cli_json_arr_end(&j);
    cli_json_key(&j, "e");
    cli_json_obj_begin(&j);
    cli_json_obj_end(&j);
    cli_json_kv_str(&j, "k", "v");
    cli_json_kv_str(&j, "n", NULL);
    cli_json_kv_u64(&j, "u", UINT64_MAX);
    cli_json_kv_i64(&j, "i", INT64_MIN);
    cli_json_kv_double(&j, "d", -1.5);
    cli_json_kv_bool(&j, "b", false);
    cli_json_obj_end(&j);
    assert_int_equal(cli_json_finish(&j), 0);
    fclose(f);
    assert_true(ct_json_valid(buf));
    assert_string_equal(buf, "{\"s\":\"q\\\"b\\\\\\n\\u0001\xef\xbf\xbd\xe2\x82\xac\","
                             "\"a\":[1,-2,true,null,0.25],\"e\":{},\"k\":\"v\",\"n\":null,"
                             "\"u\":18446744073709551615,\"i\":-9223372036854775808,"
                             "\"d\":-1.5,\"b\":false}\n");
    free(buf);
}

static void
test_json_validator(void **state)
{
    const char *good[] = { "{}\n", "[1,-2.5e3,\"a\\u00e9\",true,false,null]\n",
                           "{\"a\":{\"b\":[]}}\n" };
    const char *bad[] = { "{}",           "{}\n\n",     "[1,]\n",   "{\"a\"}\n",
                          "\"\x01\"\n",   "\"\xff\"\n", "01\n",     "[1 2]\n",
                          "{\"a\":1,}\n", "nul\n",      "\"\\x\"\n" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ct_json_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ct_json_valid(bad[i]))
            fail_msg("accepted bad JSON %zu", i);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),          cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help),           cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_escape),         cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_validator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
