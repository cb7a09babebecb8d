/* SPDX-License-Identifier: MIT */
/*
 * Real nvxd processes for the daemon tests (see daemonutil.h). Start-up:
 * fork, stderr appended to a log file, exec nvxd-test,
 * then poll for the control socket and this run's "listening on" line.
 */
#include "daemonutil.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static char *nvx_bin, *nvxd_bin, *root;
static pid_t running[DU_DAEMONS_MAX];
static bool atexit_done;

void
du_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

uint64_t
du_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *
du_slurp(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (tu_read_file(path, &buf, &len) < 0)
        return strdup("");
    char *s = realloc(buf, len + 1);
    assert_non_null(s);
    s[len] = '\0';
    return s;
}

void
du_dump_log(const du_daemon *d)
{
    char *log = du_slurp(d->log);
    size_t len = strlen(log);
    size_t from = len > 6000 ? len - 6000 : 0;
    print_message("---- %s (tail) ----\n%s\n----\n", d->log, log + from);
    free(log);
}

static void
track(pid_t pid, pid_t replace)
{
    for (int i = 0; i < DU_DAEMONS_MAX; i++) {
        if (running[i] == replace) {
            running[i] = pid;
            return;
        }
    }
    if (pid) {
        kill(pid, SIGKILL);
        fail_msg("more than %d nvxd at once", DU_DAEMONS_MAX);
    }
}

void
du_kill_all(void)
{
    for (int i = 0; i < DU_DAEMONS_MAX; i++) {
        if (running[i] > 0) {
            kill(running[i], SIGCONT);
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
    }
}

void
du_setup(const char *tag)
{
    nvx_bin = tu_build_path("cli/nvx");
    nvxd_bin = tu_build_path("daemon/nvxd-test");
    root = tu_tmpdir(tag);
    if (!atexit_done) {
        atexit(du_kill_all);
        atexit_done = true;
    }
}

void
du_teardown(void)
{
    du_kill_all();
    if (root)
        tu_rm_rf(root);
    free(root);
    free(nvx_bin);
    free(nvxd_bin);
    root = nvx_bin = nvxd_bin = NULL;
}

const char *
du_root(void)
{
    return root;
}

const char *
du_nvx_bin(void)
{
    return nvx_bin;
}

const char *
du_nvxd_bin(void)
{
    return nvxd_bin;
}

/* The last occurrence of what in s, NULL when none. */
static const char *
last_of(const char *s, const char *what)
{
    const char *p = NULL;
    for (const char *q = s; (q = strstr(q, what)); q++)
        p = q;
    return p;
}

void
du_start(du_daemon *d, const char *name, const char *const *env)
{
    du_start_args(d, name, env, NULL);
}

void
du_start_args(du_daemon *d, const char *name, const char *const *env, const char *const *args)
{
    if (!d->dir[0]) {
        snprintf(d->dir, sizeof(d->dir), "%s/%s", root, name);
        snprintf(d->log, sizeof(d->log), "%s/%s.log", root, name);
    }
    /* This run's lines start after what the log holds now. */
    char *old = du_slurp(d->log);
    size_t skip = strlen(old);
    free(old);
    char sock[600];
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", d->dir);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDWR);
        if (fd < 0 || nul < 0)
            _exit(127);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        for (size_t i = 0; env && env[i]; i++) {
            char var[128];
            size_t k = strcspn(env[i], "=");
            snprintf(var, sizeof(var), "%.*s", (int)k, env[i]);
            if (env[i][k] != '=' || setenv(var, env[i] + k + 1, 1) < 0)
                _exit(127);
        }
        /* --http off: parallel tests must not race for the API's fixed
         * port; a test that wants it passes --http 127.0.0.1:0 after.
         * --no-upnp, --no-dht: no packet leaves the machine (no SSDP or
         * NAT-PMP; a DHT test passes --dht and a local --dht-bootstrap
         * after). */
        const char *argv[14 + DU_ARGS_MAX] = { nvxd_bin,    "--store",     d->dir,
                                               "--listen",  "127.0.0.1:0", "--no-discovery",
                                               "--no-upnp", "--log-level", "debug",
                                               "--http",    "off",         "--no-dht" };
        for (size_t i = 0; args && args[i] && i < DU_ARGS_MAX; i++)
            argv[12 + i] = args[i];
        execv(nvxd_bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    track(pid, 0);

    uint64_t end = du_now_ms() + DU_START_MS;
    while (du_now_ms() < end) {
        char *log = du_slurp(d->log);
        const char *run = strlen(log) >= skip ? log + skip : log;
        const char *l = last_of(run, "listening on ");
        const char *n = last_of(run, ": node ");
        /* "listening on" is logged after the control socket is up. */
        if (l && n && access(sock, F_OK) == 0) {
            l += strlen("listening on ");
            snprintf(d->addr, sizeof(d->addr), "%.*s", (int)strcspn(l, "\n"), l);
            n += strlen(": node ");
            snprintf(d->id, sizeof(d->id), "%.*s", (int)strspn(n, "0123456789abcdef"), n);
            free(log);
            assert_int_equal(strlen(d->id), 64);
            return;
        }
        free(log);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            track(0, pid);
            d->pid = 0;
            du_dump_log(d);
            fail_msg("nvxd %s exited during start-up (status 0x%x)", name, st);
        }
        du_sleep_ms(DU_POLL_MS);
    }
    du_dump_log(d);
    fail_msg("nvxd %s was not up within %d ms", name, DU_START_MS);
}

/* Waits for pid with a bound; returns its status or -1 on timeout. */
static int
wait_bounded(pid_t pid, unsigned ms)
{
    uint64_t end = du_now_ms() + ms;
    do {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        du_sleep_ms(DU_POLL_MS);
    } while (du_now_ms() < end);
    return -1;
}

/* A teardown's failure: cmocka reports it but still exits 0. */
static bool stop_failed;

int
du_exit_status(int r)
{
    return r ? r : stop_failed;
}

void
du_stop(du_daemon *d)
{
    assert_true(d->pid > 0);
    pid_t pid = d->pid;
    assert_int_equal(kill(pid, SIGTERM), 0);
    int st = wait_bounded(pid, DU_STOP_MS);
    if (st == -1) {
        stop_failed = true;
        du_dump_log(d);
        fail_msg("nvxd %s did not exit within %d ms of SIGTERM", d->dir, DU_STOP_MS);
    }
    track(0, pid);
    d->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        stop_failed = true; /* e.g. a sanitizer's exit code */
        du_dump_log(d);
        fail_msg("nvxd %s did not stop cleanly (status 0x%x)", d->dir, st);
    }
    char *log = du_slurp(d->log);
    const char *last = last_of(log, "stopped");
    free(log);
    assert_non_null(last);
}

void
du_kill(du_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    track(0, d->pid);
    d->pid = 0;
}

void
du_freeze(du_daemon *d, bool frozen)
{
    assert_true(d->pid > 0);
    assert_int_equal(kill(d->pid, frozen ? SIGSTOP : SIGCONT), 0);
}

static int
nvx_va(const du_daemon *d, char **ret_out, char **ret_err, va_list ap)
{
    char *argv[24];
    int k = 0;
    argv[k++] = nvx_bin;
    argv[k++] = "--store";
    argv[k++] = (char *)d->dir;
    char *a;
    while ((a = va_arg(ap, char *))) {
        assert_true(k < 23);
        argv[k++] = a;
    }
    argv[k] = NULL;
    return tu_run(argv, ret_out, ret_err);
}

int
du_nvx(const du_daemon *d, char **ret_out, char **ret_err, ...)
{
    va_list ap;
    va_start(ap, ret_err);
    int r = nvx_va(d, ret_out, ret_err, ap);
    va_end(ap);
    return r;
}

void
du_nvx_ok(const du_daemon *d, char **ret_out, ...)
{
    va_list ap;
    va_start(ap, ret_out);
    char *err = NULL;
    int r = nvx_va(d, ret_out, &err, ap);
    va_end(ap);
    if (r != 0) {
        du_dump_log(d);
        fail_msg("nvx --store %s ... exited %d: %s", d->dir, r, err ? err : "");
    }
    free(err);
}

uint64_t
du_json_u64(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

void
du_wait_peers(const du_daemon *d, int want)
{
    int c = 0;
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    while (du_now_ms() < end) {
        char *out = NULL;
        c = 0;
        if (du_nvx(d, &out, NULL, "--json", "peers", NULL) == 0 && out)
            for (const char *p = out; (p = strstr(p, "\"connected\"")); p++)
                c++;
        free(out);
        if (c >= want)
            return;
        du_sleep_ms(DU_POLL_MS);
    }
    du_dump_log(d);
    fail_msg("%s: %d of %d peers connected after %d ms", d->dir, c, want, DU_WAIT_MS);
}

char *
du_add_model(const du_daemon *d, const char *name, size_t size, uint64_t seed)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    tu_fill_random(buf, size, seed);
    assert_int_equal(tu_write_file(path, buf, size), 0);
    free(buf);
    char *out = NULL;
    du_nvx_ok(d, &out, "add", "-q", "--pin", path, NULL);
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(strlen(out), 64);
    return out;
}

void
du_check_copy(const du_daemon *d, const char *id, const char *name)
{
    char src[700], dst[700];
    snprintf(src, sizeof(src), "%s/%s", root, name);
    snprintf(dst, sizeof(dst), "%s/%s.out", d->dir, name);
    du_nvx_ok(d, NULL, "verify", id, NULL);
    du_nvx_ok(d, NULL, "export", id, "-o", dst, NULL);
    uint8_t *a, *b;
    size_t la, lb;
    assert_int_equal(tu_read_file(src, &a, &la), 0);
    assert_int_equal(tu_read_file(dst, &b, &lb), 0);
    assert_int_equal(la, lb);
    if (memcmp(a, b, la) != 0)
        fail_msg("%s: export of %s differs from %s", d->dir, id, src);
    free(a);
    free(b);
    unlink(dst);
}

void
du_mkmodel(const char *name)
{
    char *bin = tu_build_path("tests/tools/nvx-mkmodel");
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    char *argv[] = { bin,     "-o", path,     "--dim", "64",     "--layers", "2",
                     "--seq", "64", "--type", "q8_0",  "--seed", "3",        NULL };
    char *err = NULL;
    if (tu_run(argv, NULL, &err) != 0)
        fail_msg("nvx-mkmodel failed: %s", err);
    free(err);
    free(bin);
}
