/* SPDX-License-Identifier: MIT */
/*
 * Real nvxd processes (build/daemon/nvxd-test: nvxd with the test hooks)
 * on 127.0.0.1 with stores in temp dirs and ephemeral ports, driven by the
 * real nvx binary: fetch between two nodes, the control socket's mode and
 * error handling, clean SIGTERM. (A corrupting seeder and SIGKILL + resume
 * are in test-faults.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

typedef struct node {
    char dir[512];
    char log[600];
    char addr[128];
    pid_t pid;
} node;

static char *nvx_bin, *nvxd_bin, *tmp;

/* Every daemon started, so a failed test does not leave any running. */
static pid_t started[16];
static size_t n_started;

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static char *
slurp(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (tu_read_file(path, &buf, &len) < 0)
        return strdup("");
    char *s = realloc(buf, len + 1);
    s[len] = '\0';
    return s;
}

/* Starts nvxd on dir with an ephemeral port; env is "NAME=VALUE" or NULL.
 * Waits for its "listening on" line. */
static void
node_start(node *n, const char *name, const char *env)
{
    if (!n->dir[0]) {
        snprintf(n->dir, sizeof(n->dir), "%s/%s", tmp, name);
        snprintf(n->log, sizeof(n->log), "%s/%s.log", tmp, name);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        if (env) {
            char var[64];
            size_t k = strcspn(env, "=");
            snprintf(var, sizeof(var), "%.*s", (int)k, env);
            setenv(var, env + k + 1, 1);
        }
        execl(nvxd_bin, nvxd_bin, "--store", n->dir, "--listen", "127.0.0.1:0", "--log-level",
              "debug", "--no-discovery", (char *)NULL);
        _exit(127);
    }
    n->pid = pid;
    if (n_started < 16)
        started[n_started++] = pid;
    for (int i = 0; i < 500; i++) {
        char *log = slurp(n->log);
        /* The last "listening on" line belongs to this run. */
        char *p = NULL, *q = log;
        while ((q = strstr(q, "listening on ")))
            p = q++;
        char sock[600];
        snprintf(sock, sizeof(sock), "%s/nvxd.sock", n->dir);
        int socket_up = access(sock, F_OK) == 0;
        if (p && socket_up) {
            p += strlen("listening on ");
            size_t k = strcspn(p, "\n");
            snprintf(n->addr, sizeof(n->addr), "%.*s", (int)k, p);
            free(log);
            /* The line comes after the socket: both ready. */
            return;
        }
        free(log);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            fail_msg("nvxd exited at start: %s", slurp(n->log));
        sleep_ms(20);
    }
    fail_msg("nvxd did not start");
}

/* SIGTERM and wait: must exit 0 and log "stopped". */
static void
node_stop(node *n)
{
    assert_int_equal(kill(n->pid, SIGTERM), 0);
    int st;
    assert_int_equal(waitpid(n->pid, &st, 0), n->pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("nvxd did not stop cleanly (status %d): %s", st, slurp(n->log));
    char *log = slurp(n->log);
    assert_non_null(strstr(log, "stopped"));
    free(log);
    for (size_t i = 0; i < n_started; i++)
        if (started[i] == n->pid)
            started[i] = 0;
    n->pid = 0;
}

/* Runs nvx --store dir ARGS...; returns the exit status. */
static int
nvx(const node *n, char **out, char **err, ...)
{
    char *argv[16];
    int k = 0;
    argv[k++] = nvx_bin;
    argv[k++] = "--store";
    argv[k++] = (char *)n->dir;
    va_list ap;
    va_start(ap, err);
    char *a;
    while ((a = va_arg(ap, char *)) && k < 15)
        argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    return tu_run(argv, out, err);
}

static void
nvx_ok(const node *n, char **out, ...)
{
    char *argv[16];
    int k = 0;
    argv[k++] = nvx_bin;
    argv[k++] = "--store";
    argv[k++] = (char *)n->dir;
    va_list ap;
    va_start(ap, out);
    char *a;
    while ((a = va_arg(ap, char *)) && k < 15)
        argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    char *err = NULL;
    int r = tu_run(argv, out, &err);
    if (r != 0)
        fail_msg("nvx %s %s failed (%d): %s", argv[3], argv[4] ? argv[4] : "", r, err);
    free(err);
}

static uint64_t
json_u64(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

/* Writes a random model file of size bytes and adds it to n; returns its id. */
static char *
add_model(const node *n, const char *name, size_t size, uint64_t seed)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, seed);
    assert_int_equal(tu_write_file(path, buf, size), 0);
    free(buf);
    char *out = NULL;
    nvx_ok(n, &out, "add", "-q", path, NULL);
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(strlen(out), 64);
    return out;
}

static void
export_compare(const node *n, const char *id, const char *model_name)
{
    char src[700], dst[700];
    snprintf(src, sizeof(src), "%s/%s", tmp, model_name);
    snprintf(dst, sizeof(dst), "%s/%s.out", n->dir, model_name);
    nvx_ok(n, NULL, "verify", id, NULL);
    nvx_ok(n, NULL, "export", id, "-o", dst, NULL);
    uint8_t *a, *b;
    size_t la, lb;
    assert_int_equal(tu_read_file(src, &a, &la), 0);
    assert_int_equal(tu_read_file(dst, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
}

static int
setup(void **state)
{
    nvx_bin = tu_build_path("cli/nvx");
    nvxd_bin = tu_build_path("daemon/nvxd-test");
    tmp = tu_tmpdir("nvxd");
    return 0;
}

static int
teardown(void **state)
{
    for (size_t i = 0; i < n_started; i++) {
        if (started[i] > 0 && kill(started[i], SIGKILL) == 0)
            waitpid(started[i], NULL, 0);
    }
    tu_rm_rf(tmp);
    free(tmp);
    free(nvx_bin);
    free(nvxd_bin);
    return 0;
}

/* Add on A, `nvx peer add` on B, fetch on B by id, verify, export,
 * compare; the control socket is 0600; status and peers report; SIGTERM
 * stops both cleanly. */
static void
test_fetch(void **state)
{
    node a = { 0 }, b = { 0 };
    node_start(&a, "fa", NULL);
    node_start(&b, "fb", NULL);
    char *id = add_model(&a, "m1.bin", 5 << 20, 1);

    struct stat st;
    char sock[700];
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", a.dir);
    assert_int_equal(stat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(a.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    char *out = NULL, *err = NULL;
    assert_int_not_equal(nvx(&b, NULL, &err, "peer", "add", a.addr, NULL), 0);
    assert_non_null(strstr(err, "already"));
    free(err);
    nvx_ok(&b, &out, "peer", "ls", NULL);
    assert_non_null(strstr(out, a.addr));
    free(out);

    nvx_ok(&b, &out, "fetch", id, "--pin", NULL);
    assert_non_null(strstr(out, id));
    free(out);
    export_compare(&b, id, "m1.bin");

    /* A second fetch of a complete model ends at once. */
    nvx_ok(&b, &out, "--json", "fetch", id, NULL);
    assert_non_null(strstr(out, "\"event\":\"done\""));
    free(out);

    nvx_ok(&b, &out, "--json", "status", NULL);
    assert_int_equal(json_u64(out, "bytes_fetched"), 5 << 20);
    assert_non_null(strstr(out, "\"peers\":[{"));
    free(out);
    nvx_ok(&b, &out, "status", NULL);
    assert_non_null(strstr(out, "node "));
    free(out);
    nvx_ok(&a, &out, "peers", NULL);
    assert_non_null(strstr(out, "connected"));
    free(out);

    nvx_ok(&b, NULL, "peer", "rm", a.addr, NULL);
    assert_int_not_equal(nvx(&b, NULL, NULL, "peer", "rm", a.addr, NULL), 0);
    node_stop(&a);
    node_stop(&b);
    assert_int_not_equal(access(sock, F_OK), 0); /* socket removed on exit */
    free(id);
}

/* A fetch running in the background: pid of `nvx fetch`, output in a file. */
static pid_t
fetch_bg(const node *n, const char *id, const char *out_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(nvx_bin, nvx_bin, "--store", n->dir, "--json", "fetch", id, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Unpin + gc on the seeder stop seeding: a new fetch finds nobody and
 * waits (its progress says so); Ctrl-C on nvx cancels it cleanly. */
static void
test_gc_stops_seeding(void **state)
{
    node a = { 0 }, b = { 0 };
    node_start(&a, "ga", NULL);
    node_start(&b, "gb", NULL);
    char *id = add_model(&a, "m4.bin", 1 << 20, 4);
    nvx_ok(&a, NULL, "pin", id, NULL);
    nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    nvx_ok(&b, NULL, "fetch", id, NULL);
    nvx_ok(&b, NULL, "rm", "--force", id, NULL);
    nvx_ok(&a, NULL, "unpin", id, NULL);
    nvx_ok(&a, NULL, "gc", NULL);

    char out_path[700];
    snprintf(out_path, sizeof(out_path), "%s/fetch-bg.out", tmp);
    pid_t fp = fetch_bg(&b, id, out_path);
    sleep_ms(1500);
    char *out = NULL;
    nvx_ok(&b, &out, "--json", "status", NULL);
    assert_non_null(strstr(out, "\"state\":\"manifest\""));
    assert_int_equal(json_u64(out, "bytes_fetched"), 1 << 20); /* the first fetch only */
    free(out);
    assert_int_equal(kill(fp, SIGINT), 0);
    int st;
    assert_int_equal(waitpid(fp, &st, 0), fp);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    out = slurp(out_path);
    assert_non_null(strstr(out, "run `nvx fetch"));
    free(out);
    for (int i = 0; i < 100; i++) { /* the daemon notices the hang-up */
        nvx_ok(&b, &out, "--json", "status", NULL);
        bool idle = strstr(out, "\"transfers\":[]") != NULL;
        free(out);
        if (idle)
            break;
        sleep_ms(20);
    }
    char *log = slurp(b.log);
    assert_non_null(strstr(log, "cancelled (resumable)"));
    free(log);
    node_stop(&a);
    node_stop(&b);
    free(id);
}

/* One seeder, three fetchers that know only the seeder (peer exchange
 * connects them): all complete at once, verify, and no fetcher ever gets a
 * bad chunk from another's partial model. */
static void
test_swarm(void **state)
{
    node a = { 0 }, f[3] = { 0 };
    node_start(&a, "wa", NULL);
    char *id = add_model(&a, "m5.bin", 8 << 20, 5);
    char name[8];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "wf%d", i);
        node_start(&f[i], name, NULL);
        nvx_ok(&f[i], NULL, "peer", "add", a.addr, NULL);
    }
    pid_t fp[3];
    char out_path[3][700];
    for (int i = 0; i < 3; i++) {
        snprintf(out_path[i], sizeof(out_path[i]), "%s/swarm-%d.out", tmp, i);
        fp[i] = fetch_bg(&f[i], id, out_path[i]);
    }
    for (int i = 0; i < 3; i++) {
        int st;
        assert_int_equal(waitpid(fp[i], &st, 0), fp[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("fetch %d failed: %s", i, slurp(out_path[i]));
    }
    for (int i = 0; i < 3; i++) {
        export_compare(&f[i], id, "m5.bin");
        char *log = slurp(f[i].log);
        assert_null(strstr(log, "sent a bad chunk"));
        free(log);
        node_stop(&f[i]);
    }
    node_stop(&a);
    free(id);
}

static int
ctl_connect(const node *n)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    assert_true(strlen(n->dir) + 10 < sizeof(sa.sun_path));
    memcpy(sa.sun_path, n->dir, strlen(n->dir));
    memcpy(sa.sun_path + strlen(n->dir), "/nvxd.sock", 11);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads one control frame; returns its type byte, -1 on EOF. */
static int
ctl_read(int fd, uint8_t *buf, size_t cap)
{
    size_t have = 0;
    while (have < 4) {
        ssize_t k = read(fd, buf + have, 4 - have);
        if (k <= 0)
            return -1;
        have += (size_t)k;
    }
    size_t len = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3];
    assert_true(len + 4 <= cap);
    while (have < len + 4) {
        ssize_t k = read(fd, buf + have, len + 4 - have);
        if (k <= 0)
            return -1;
        have += (size_t)k;
    }
    return buf[5];
}

/* Malformed control requests get ERROR responses; the daemon lives on. */
static void
test_control_malformed(void **state)
{
    node a = { 0 };
    node_start(&a, "ca", NULL);
    uint8_t buf[4096];
    int fd = ctl_connect(&a);
    /* Well-framed, unknown field tag 200. */
    const uint8_t bad_field[] = { 0, 0, 0, 10, 1, 1, 0, 0, 0, 7, 200, 0, 0, 0 };
    assert_int_equal(write(fd, bad_field, 14), 14);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), 65); /* ERROR */
    assert_int_equal(buf[9], 7);                          /* echoes the request id */
    /* Unknown request type, wrong version. */
    const uint8_t bad_type[] = { 0, 0, 0, 6, 1, 99, 0, 0, 0, 8 };
    assert_int_equal(write(fd, bad_type, 10), 10);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), 65);
    const uint8_t bad_ver[] = { 0, 0, 0, 6, 9, 1, 0, 0, 0, 9 };
    assert_int_equal(write(fd, bad_ver, 10), 10);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), 65);
    /* FETCH without a target, PEER_ADD with a bad address. */
    const uint8_t no_target[] = { 0, 0, 0, 6, 1, 6, 0, 0, 0, 10 };
    assert_int_equal(write(fd, no_target, 10), 10);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), 65);
    /* Oversized length: ERROR, then the daemon closes the connection. */
    const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 1, 1 };
    assert_int_equal(write(fd, huge, 6), 6);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), 65);
    assert_int_equal(ctl_read(fd, buf, sizeof(buf)), -1);
    close(fd);
    /* Garbage then hang up mid-frame. */
    fd = ctl_connect(&a);
    assert_int_equal(write(fd, "\0\0\0\x20garbage", 11), 11);
    close(fd);
    char *out = NULL, *err = NULL;
    nvx_ok(&a, &out, "status", NULL);
    free(out);
    assert_int_not_equal(nvx(&a, NULL, &err, "peer", "add", "not an address", NULL), 0);
    free(err);
    assert_int_not_equal(nvx(&a, NULL, &err, "fetch", "zz", NULL), 0);
    assert_non_null(strstr(err, "nvx: "));
    free(err);
    node_stop(&a);
}

/* Without a daemon: one clear line. A second nvxd on the same store is
 * refused. */
static void
test_no_daemon(void **state)
{
    node a = { 0 };
    snprintf(a.dir, sizeof(a.dir), "%s/none", tmp);
    char *err = NULL;
    assert_int_equal(nvx(&a, NULL, &err, "status", NULL), 1);
    assert_non_null(strstr(err, "no nvxd serves"));
    assert_non_null(strstr(err, "start it with `nvxd --store"));
    free(err);

    node b = { 0 };
    node_start(&b, "dup", NULL);
    char *argv[] = {
        nvxd_bin, "--store", b.dir, "--listen", "127.0.0.1:0", "--no-discovery", NULL
    };
    assert_int_equal(tu_run(argv, NULL, &err), 1);
    assert_non_null(strstr(err, "another nvxd"));
    free(err);
    char *bad[] = { nvxd_bin, "--bogus", NULL };
    assert_int_equal(tu_run(bad, NULL, &err), 2);
    free(err);
    node_stop(&b);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch),     cmocka_unit_test(test_control_malformed),
        cmocka_unit_test(test_no_daemon), cmocka_unit_test(test_gc_stops_seeding),
        cmocka_unit_test(test_swarm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
