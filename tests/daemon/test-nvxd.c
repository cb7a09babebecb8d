/* SPDX-License-Identifier: MIT */
/*
 * Real nvxd processes (build/daemon/nvxd-test: nvxd with the test hooks)
 * on 127.0.0.1 with stores in temp dirs and ephemeral ports, driven by the
 * real nvx binary: fetch between two nodes, the control socket's mode and
 * error handling, clean SIGTERM, signatures that travel with a fetch. (A
 * corrupting seeder and SIGKILL + resume are in test-faults.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "libcas/hash.h"
#include "libcas/store-internal.h"
#include "libcas/store.h"
#include "testutil.h"

static int
setup(void **state)
{
    du_setup("nvxd");
    return 0;
}

static int
teardown(void **state)
{
    du_teardown();
    return 0;
}

/* Add on A, `nvx peer add` on B, fetch on B by id, verify, export,
 * compare; the control socket is 0600; status and peers report; SIGTERM
 * stops both cleanly. */
static void
test_fetch(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "fa", NULL);
    du_start(&b, "fb", NULL);
    char *id = du_add_model(&a, "m1.bin", 5 << 20, 1);

    struct stat st;
    char sock[700];
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", a.dir);
    assert_int_equal(stat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(a.dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    char *out = NULL, *err = NULL;
    assert_int_not_equal(du_nvx(&b, NULL, &err, "peer", "add", a.addr, NULL), 0);
    assert_non_null(strstr(err, "already"));
    free(err);
    du_nvx_ok(&b, &out, "peer", "ls", NULL);
    assert_non_null(strstr(out, a.addr));
    free(out);

    du_nvx_ok(&b, &out, "fetch", id, "--pin", NULL);
    assert_non_null(strstr(out, id));
    free(out);
    du_check_copy(&b, id, "m1.bin");

    /* A second fetch of a complete model ends at once. */
    du_nvx_ok(&b, &out, "--json", "fetch", id, NULL);
    /* --json: one document, as every command prints (issue 14). */
    char want[128];
    snprintf(want, sizeof(want), "{\"id\":\"%s\",\"pinned\":true,\"name\":null}\n", id);
    assert_string_equal(out, want);
    free(out);

    du_nvx_ok(&b, &out, "--json", "status", NULL);
    assert_int_equal(du_json_u64(out, "bytes_fetched"), 5 << 20);
    assert_non_null(strstr(out, "\"peers\":[{"));
    free(out);
    du_nvx_ok(&b, &out, "status", NULL);
    assert_non_null(strstr(out, "node "));
    free(out);
    du_nvx_ok(&a, &out, "peers", NULL);
    assert_non_null(strstr(out, "connected"));
    free(out);

    du_nvx_ok(&b, NULL, "peer", "rm", a.addr, NULL);
    assert_int_not_equal(du_nvx(&b, NULL, NULL, "peer", "rm", a.addr, NULL), 0);
    du_stop(&a);
    du_stop(&b);
    assert_int_not_equal(access(sock, F_OK), 0); /* socket removed on exit */
    free(id);
}

/* Polls `nvx info ID` on n until it lists want signatures (they arrive
 * after the fetch completes); fails after 10 s. */
static void
wait_sigs(const du_daemon *n, const char *id, unsigned want)
{
    char line[64];
    snprintf(line, sizeof(line), "signatures %u\n", want);
    for (int i = 0; i < 200; i++) {
        char *out = NULL;
        du_nvx_ok(n, &out, "info", id, NULL);
        bool ok = strstr(out, line) != NULL;
        free(out);
        if (ok)
            return;
        du_sleep_ms(50);
    }
    fail_msg("%s: no '%s' after 10 s", n->dir, line);
}

/* The publisher signs on A; B fetches by id and gets the signature with the
 * model: untrusted until B trusts A's key, then `verify --require-trusted`
 * passes. A signature of another model that A attached to this one (its
 * trusted comment names the other model) is not taken. */
static void
test_signatures_travel(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "sa", NULL);
    du_start(&b, "sb", NULL);
    char key[600], pub[600], other_sig[600], mf[600];
    snprintf(key, sizeof(key), "%s/pub.key", du_root());
    snprintf(pub, sizeof(pub), "%s/pub.pub", du_root());
    snprintf(other_sig, sizeof(other_sig), "%s/other.minisig", du_root());
    snprintf(mf, sizeof(mf), "%s/other.manifest", du_root());
    du_nvx_ok(&a, NULL, "key", "new", "--key", key, "--unencrypted", NULL);
    char *out = NULL;
    du_nvx_ok(&a, &out, "key", "show", "--key", key, NULL);
    FILE *f = fopen(pub, "w");
    assert_non_null(f);
    fputs(out, f);
    fclose(f);
    free(out);

    char *id = du_add_model(&a, "signed.bin", 1 << 20, 7);
    char *other = du_add_model(&a, "other.bin", 1 << 20, 8);
    du_nvx_ok(&a, NULL, "sign", id, "--key", key, NULL);
    du_nvx_ok(&a, NULL, "sign", other, "--key", key, NULL);
    du_nvx_ok(&a, NULL, "manifest", other, "-o", mf, "--sig", other_sig, NULL);
    size_t blen;
    uint8_t *blob;
    assert_int_equal(tu_read_file(other_sig, &blob, &blen), 0);
    cas_store *s;
    uint8_t mid[CAS_HASH_LEN];
    assert_int_equal(cas_hash_from_hex(id, mid), 0);
    assert_int_equal(cas_store_open(a.dir, 0, &s), 0);
    /* Unchecked: a store that serves a signature of another model. */
    assert_int_equal(cas__sig_put(s, false, mid, blob, blen), 1);
    cas_store_free(s);
    free(blob);

    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", id, NULL);
    wait_sigs(&b, id, 1);
    du_sleep_ms(300); /* the other blob had its chance */
    du_nvx_ok(&b, &out, "info", id, NULL);
    assert_non_null(strstr(out, "signatures 1\n"));
    assert_non_null(strstr(out, "untrusted"));
    free(out);
    assert_int_equal(du_nvx(&b, NULL, NULL, "verify", id, "--require-trusted", NULL), 5);
    du_nvx_ok(&b, NULL, "trust", "add", pub, "publisher", NULL);
    du_nvx_ok(&b, &out, "verify", id, "--require-trusted", NULL);
    assert_non_null(strstr(out, "1 trusted"));
    free(out);
    du_stop(&a);
    du_stop(&b);
    free(id);
    free(other);
}

/* A fetch running in the background: pid of `nvx fetch`, output in a file. */
static pid_t
fetch_bg(const du_daemon *n, const char *id, const char *out_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(du_nvx_bin(), du_nvx_bin(), "--store", n->dir, "--json", "fetch", id, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Unpin + gc on the seeder stop seeding: a new fetch finds nobody and
 * waits (its progress says so); Ctrl-C on nvx cancels it cleanly. */
static void
test_gc_stops_seeding(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "ga", NULL);
    du_start(&b, "gb", NULL);
    char *id = du_add_model(&a, "m4.bin", 1 << 20, 4);
    du_nvx_ok(&a, NULL, "pin", id, NULL);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", id, NULL);
    du_nvx_ok(&b, NULL, "rm", "--force", id, NULL);
    du_nvx_ok(&a, NULL, "unpin", id, NULL);
    du_nvx_ok(&a, NULL, "gc", NULL);

    char out_path[700];
    snprintf(out_path, sizeof(out_path), "%s/fetch-bg.out", du_root());
    pid_t fp = fetch_bg(&b, id, out_path);
    du_sleep_ms(1500);
    char *out = NULL;
    du_nvx_ok(&b, &out, "--json", "status", NULL);
    assert_non_null(strstr(out, "\"state\":\"manifest\""));
    assert_int_equal(du_json_u64(out, "bytes_fetched"), 1 << 20); /* the first fetch only */
    free(out);
    assert_int_equal(kill(fp, SIGINT), 0);
    int st;
    assert_int_equal(waitpid(fp, &st, 0), fp);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 130);
    out = du_slurp(out_path);
    assert_non_null(strstr(out, "run `nvx fetch"));
    free(out);
    for (int i = 0; i < 100; i++) { /* the daemon notices the hang-up */
        du_nvx_ok(&b, &out, "--json", "status", NULL);
        bool idle = strstr(out, "\"transfers\":[]") != NULL;
        free(out);
        if (idle)
            break;
        du_sleep_ms(20);
    }
    char *log = du_slurp(b.log);
    assert_non_null(strstr(log, "cancelled (resumable)"));
    free(log);
    du_stop(&a);
    du_stop(&b);
    free(id);
}

/* Fetch, remove, fetch again over the same session: the seeder
 * super-seeds (daemon/superseed.h) and must answer the second WANT as a new
 * start, not as the fetcher that already got every chunk (it sent no HAVE
 * at all, and the second fetch found no provider). */
static void
test_refetch_same_session(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "ra", NULL);
    du_start(&b, "rb", NULL);
    char *id = du_add_model(&a, "m-re.bin", 2 << 20, 14);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    for (int i = 0; i < 3; i++) {
        du_nvx_ok(&b, NULL, "fetch", id, NULL);
        du_check_copy(&b, id, "m-re.bin");
        du_nvx_ok(&b, NULL, "rm", "--force", id, NULL);
        du_nvx_ok(&b, NULL, "gc", NULL);
    }
    du_stop(&a);
    du_stop(&b);
    free(id);
}

/* One seeder, three fetchers that know only the seeder (peer exchange
 * connects them): all complete at once, verify, and no fetcher ever gets a
 * bad chunk from another's partial model. */
static void
test_swarm(void **state)
{
    du_daemon a = { 0 }, f[3] = { 0 };
    du_start(&a, "wa", NULL);
    char *id = du_add_model(&a, "m5.bin", 8 << 20, 5);
    char name[8];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "wf%d", i);
        du_start(&f[i], name, NULL);
        du_nvx_ok(&f[i], NULL, "peer", "add", a.addr, NULL);
    }
    pid_t fp[3];
    char out_path[3][700];
    for (int i = 0; i < 3; i++) {
        snprintf(out_path[i], sizeof(out_path[i]), "%s/swarm-%d.out", du_root(), i);
        fp[i] = fetch_bg(&f[i], id, out_path[i]);
    }
    for (int i = 0; i < 3; i++) {
        int st;
        assert_int_equal(waitpid(fp[i], &st, 0), fp[i]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("fetch %d failed: %s", i, du_slurp(out_path[i]));
    }
    for (int i = 0; i < 3; i++) {
        du_check_copy(&f[i], id, "m5.bin");
        char *log = du_slurp(f[i].log);
        assert_null(strstr(log, "sent a bad chunk"));
        free(log);
        du_stop(&f[i]);
    }
    du_stop(&a);
    free(id);
}

static int
ctl_connect(const du_daemon *n)
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
    du_daemon a = { 0 };
    du_start(&a, "ca", NULL);
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
    du_nvx_ok(&a, &out, "status", NULL);
    free(out);
    assert_int_not_equal(du_nvx(&a, NULL, &err, "peer", "add", "not an address", NULL), 0);
    free(err);
    assert_int_not_equal(du_nvx(&a, NULL, &err, "fetch", "zz", NULL), 0);
    assert_non_null(strstr(err, "nvx: "));
    free(err);
    /* An id nobody has: a clear line once --timeout passes, not a hang. */
    const char *nobody = "5bd6b0a8e36ac2ab0f1b15e5cd9b0ad2e2e3e5f1e8df5dd4a1c6b6f5fd8b1f3a";
    assert_int_not_equal(du_nvx(&a, NULL, &err, "fetch", nobody, "--timeout", "1", NULL), 0);
    assert_non_null(strstr(err, "no connected peer has had this model for 1 s"));
    free(err);
    assert_int_not_equal(du_nvx(&a, NULL, &err, "fetch", nobody, "--timeout", "0", NULL), 0);
    free(err);
    du_stop(&a);
}

/* Without a daemon: one clear line. A second nvxd on the same store is
 * refused. */
static void
test_no_daemon(void **state)
{
    du_daemon a = { 0 };
    snprintf(a.dir, sizeof(a.dir), "%s/none", du_root());
    char *err = NULL;
    assert_int_equal(du_nvx(&a, NULL, &err, "status", NULL), 1);
    assert_non_null(strstr(err, "no nvxd serves"));
    assert_non_null(strstr(err, "start it with `nvxd --store"));
    free(err);

    du_daemon b = { 0 };
    du_start(&b, "dup", NULL);
    char *argv[] = { (char *)du_nvxd_bin(), "--store",        b.dir,       "--listen",
                     "127.0.0.1:0",         "--no-discovery", "--no-upnp", NULL };
    assert_int_equal(tu_run(argv, NULL, &err), 1);
    assert_non_null(strstr(err, "another nvxd"));
    free(err);
    char *bad[] = { (char *)du_nvxd_bin(), "--bogus", NULL };
    assert_int_equal(tu_run(bad, NULL, &err), 2);
    free(err);
    du_stop(&b);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_control_malformed),
        cmocka_unit_test(test_no_daemon),
        cmocka_unit_test(test_gc_stops_seeding),
        cmocka_unit_test(test_swarm),
        cmocka_unit_test(test_refetch_same_session),
        cmocka_unit_test(test_signatures_travel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
