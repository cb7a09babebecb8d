/* SPDX-License-Identifier: MIT */
/*
 * The progress bar: its drawing (stderr redirected to a temp file), and the
 * real binary with stderr on a pseudo-terminal (bar drawn, then erased, stdout
 * untouched) or not (no bar).
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/progress.h"
#include "clitest.h"
#include "libcas/hash.h"
#include "testutil.h"

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

/* A bad $NVX_PROGRESS_DELAY means the default, not "draw at once". */
static void
test_delay_env(void **state)
{
    const char *bad[] = { "x", "-1", "1e9", "nan", "0.1s" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("NVX_PROGRESS_DELAY", bad[i], 1);
        char *s = capture_stderr(draw_short_job);
        assert_string_equal(s, "");
        free(s);
    }
    setenv("NVX_PROGRESS_DELAY", "0", 1);
    char *s = capture_stderr(draw_short_job);
    assert_non_null(strstr(s, "\rexport   [########################]"));
    free(s);
    unsetenv("NVX_PROGRESS_DELAY");
}

/* Appends what is readable on fd to *buf; returns false at EOF or EIO (a
 * pty master reads EIO once the child closed its side). */
static bool
drain_fd(int fd, char **buf, size_t *len)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    assert_non_null(nb);
    memcpy(nb + *len, tmp, (size_t)n);
    *len += (size_t)n;
    nb[*len] = '\0';
    *buf = nb;
    return true;
}

/*
 * Runs nvx args (NULL-terminated, args[0] = "nvx") with file descriptor
 * tty_fd (2: stderr, 1: stdout) on a new pseudo-terminal and the other of
 * the two on a pipe; *ret_tty and *ret_out get what each received. Returns
 * the exit status.
 */
static int
tty_run_fd(int tty_fd, char *const args[], char **ret_out, char **ret_tty)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    assert_true(s >= 0);
    int po[2];
    assert_int_equal(pipe(po), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(po[1], 3 - tty_fd);
        dup2(s, tty_fd);
        close(m);
        close(po[0]);
        execv(ct_nvx(), args);
        _exit(127);
    }
    close(s);
    close(po[1]);
    char *out = calloc(1, 1), *tty = calloc(1, 1);
    size_t olen = 0, tlen = 0;
    bool open_o = true, open_t = true;
    while (open_o || open_t) {
        struct pollfd p[2] = { { open_o ? po[0] : -1, POLLIN, 0 }, { open_t ? m : -1, POLLIN, 0 } };
        int k = poll(p, 2, 60000);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            kill(pid, SIGKILL);
            fail_msg("nvx with stderr on a terminal hung");
        }
        if (p[0].revents)
            open_o = drain_fd(po[0], &out, &olen);
        if (p[1].revents)
            open_t = drain_fd(m, &tty, &tlen);
    }
    close(po[0]);
    close(m);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *ret_out = out;
    *ret_tty = tty;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Stderr on the terminal: where progress bars go. */
static int
tty_run(char *const args[], char **ret_out, char **ret_tty)
{
    return tty_run_fd(2, args, ret_out, ret_tty);
}

/* Asserts the terminal showed a bar for label and ended on an erased line,
 * and that stdout got no terminal control bytes. */
static void
assert_bar(const char *tty, const char *out, const char *label)
{
    char want[32];
    snprintf(want, sizeof(want), "\r%-8s [", label);
    if (!strstr(tty, want))
        fail_msg("no '%s' bar on the terminal: '%s'", label, tty);
    size_t n = strlen(tty);
    assert_true(n >= 4 && strcmp(tty + n - 4, "\r\x1b[K") == 0);
    assert_null(strchr(out, '\r'));
    assert_null(strchr(out, '\x1b'));
}

static void
test_tty(void **state)
{
    const ct_fixture *f = *state;
    const char *dir = f->dir, *store = f->store;
    char file[4096], copy[4096], sopt[4200], id[CAS_HASH_HEX_LEN + 1];
    snprintf(file, sizeof(file), "%s/m.bin", dir);
    snprintf(copy, sizeof(copy), "%s/copy.bin", dir);
    snprintf(sopt, sizeof(sopt), "--store=%s", store);
    ct_write_random(file, 3 << 20, 11);
    setenv("NVX_PROGRESS_DELAY", "0", 1);
    char *out, *tty;

    /* add: the bar on the terminal, the result on stdout as without one. */
    char *add[] = { "nvx", sopt, "add", file, NULL };
    assert_int_equal(tty_run(add, &out, &tty), 0);
    assert_bar(tty, out, "adding");
    assert_non_null(strstr(tty, "/ 3.0 MiB"));
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    assert_int_equal(strlen(id), CAS_HASH_HEX_LEN);
    free(out);
    free(tty);

    char *verify[] = { "nvx", sopt, "verify", id, NULL };
    assert_int_equal(tty_run(verify, &out, &tty), 0);
    assert_bar(tty, out, "verify");
    assert_non_null(strstr(out, "ok "));
    free(out);
    free(tty);

    char *export[] = { "nvx", sopt, "export", id, "-o", copy, NULL };
    assert_int_equal(tty_run(export, &out, &tty), 0);
    assert_bar(tty, out, "export");
    assert_true(ct_files_equal(file, copy));
    free(out);
    free(tty);

    /* -q: no bar even on a terminal, and add prints the id alone. */
    char *quiet[] = { "nvx", sopt, "-q", "add", file, NULL };
    assert_int_equal(tty_run(quiet, &out, &tty), 0);
    assert_string_equal(tty, "");
    char want[CAS_HASH_HEX_LEN + 2];
    snprintf(want, sizeof(want), "%s\n", id);
    assert_string_equal(out, want);
    free(out);
    free(tty);

    /* Not a terminal: no bar. */
    char *err;
    ct_ok(store, &out, &err, "verify", id, NULL);
    assert_string_equal(err, "");
    free(out);
    free(err);

    /* The error line starts on a clean line: a bar drawn before it (the bad
     * byte is in the last chunk, so one usually is) was erased first. */
    char data[8192];
    snprintf(data, sizeof(data), "%s/data/%s", store, id);
    ct_flip_byte(data, (3u << 20) - 100);
    assert_int_equal(tty_run(export, &out, &tty), 4);
    const char *e = strstr(tty, "nvx: model ");
    assert_non_null(e);
    if (e != tty)
        assert_true(e - tty >= 4 && memcmp(e - 4, "\r\x1b[K", 4) == 0);
    assert_non_null(strstr(e, "is corrupt: chunk"));
    free(out);
    free(tty);

    unsetenv("NVX_PROGRESS_DELAY");

    /* Model and manifest bytes (tensor names from the file included) are
     * never written raw to a terminal. */
    char *cat[] = { "nvx", sopt, "cat", id, NULL };
    char *man[] = { "nvx", sopt, "manifest", id, "-o", "-", NULL };
    char *const *binary[] = { cat, man };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tty_run_fd(1, binary[i], &err, &tty), 2);
        assert_string_equal(tty, "");
        ct_assert_one_error(err, "stdout is a terminal");
        free(err);
        free(tty);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bar),
        cmocka_unit_test(test_fmt_bytes),
        cmocka_unit_test(test_delay_env),
        cmocka_unit_test_setup_teardown(test_tty, ct_fixture_setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
