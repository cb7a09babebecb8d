/* SPDX-License-Identifier: MIT */
/* The progress bar's drawing, with stderr redirected to a temp file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/progress.h"

/* Runs fn with stderr going to a temp file; returns what was written. */
static char *
capture_stderr(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(tmp);
    if (n > 0)
        assert_int_equal(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
}

static void
draw_known_total(void)
{
    cli_progress p;
    cli_progress_begin(&p, true, "adding", 4u << 20);
    p.t_start -= 2.0; /* as if it had run for 2 s: due for a redraw */
    cli_progress_set(&p, 1u << 20);
    cli_progress_set(&p, 2u << 20); /* within the redraw interval: skipped */
    cli_progress_end(&p);
    cli_progress_end(&p); /* twice is fine */
}

static void
draw_disabled(void)
{
    cli_progress p;
    cli_progress_begin(&p, false, "adding", 100);
    p.t_start -= 2.0;
    cli_progress_set(&p, 50);
    cli_progress_end(&p);
}

static void
draw_short_job(void)
{
    cli_progress p;
    cli_progress_begin(&p, true, "export", 100);
    cli_progress_set(&p, 100); /* finished before the first redraw is due */
    cli_progress_end(&p);
}

static void
test_bar(void **state)
{
    char *s = capture_stderr(draw_known_total);
    assert_non_null(strstr(s, "\radding   [######..................]"));
    assert_non_null(strstr(s, "1.0 MiB / 4.0 MiB"));
    assert_non_null(strstr(s, "ETA "));
    assert_null(strchr(s, '\n')); /* one line, redrawn in place */
    /* Exactly one draw, then one erase. */
    size_t len = strlen(s);
    assert_true(len > 4 && strcmp(s + len - 4, "\r\x1b[K") == 0);
    assert_int_equal(strstr(s + 1, "\radding") == NULL, 1);
    free(s);
    s = capture_stderr(draw_disabled);
    assert_string_equal(s, "");
    free(s);
    s = capture_stderr(draw_short_job);
    assert_string_equal(s, "");
    free(s);
}

static void
test_fmt_bytes(void **state)
{
    char b[16];
    assert_string_equal(cli_fmt_bytes(0, b), "0 B");
    assert_string_equal(cli_fmt_bytes(1023, b), "1023 B");
    assert_string_equal(cli_fmt_bytes(1536, b), "1.5 KiB");
    assert_string_equal(cli_fmt_bytes(UINT64_C(1) << 30, b), "1.0 GiB");
    assert_string_equal(cli_fmt_bytes(UINT64_MAX, b), "16.0 EiB");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_fmt_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
