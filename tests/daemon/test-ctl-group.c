/* SPDX-License-Identifier: MIT */
#define _DEFAULT_SOURCE /* setgroups */
/*
 * Who may use a real nvxd's control socket (daemon/ctl.h), as other users:
 * the test runs as root and runs `nvx status` in children that drop to
 * uid/gid 65534 (nobody) with chosen supplementary groups.
 *
 *   control-group = GID: the socket is 0660 owned by GID, the store dir
 *     0710 owned by GID; a member of GID is served; a non-member cannot
 *     connect (file mode), and when the test loosens the socket to 0666
 *     the daemon itself refuses the non-member (SO_PEERCRED/SO_PEERGROUPS).
 *   no control-group: socket 0600, dir 0700; even with both loosened, a
 *     member of any group but not our uid is refused by the daemon.
 *
 * Skips when not run as root (it must switch users). GROUP is a gid no
 * account on a test machine is likely to have; nothing is created.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "testutil.h"

enum {
    NOBODY = 65534,
    GROUP = 47474,
    OTHER_GROUP = 47475,
};

static char nvx_copy[700]; /* nvx where uid 65534 may run it */

static int
setup(void **state)
{
    if (geteuid() != 0)
        return 0;
    du_setup("ctlgroup");
    /* nobody must pass through the temp root to the store and run nvx. */
    assert_int_equal(chmod(du_root(), 0711), 0);
    snprintf(nvx_copy, sizeof(nvx_copy), "%s/nvx", du_root());
    FILE *in = fopen(du_nvx_bin(), "rb");
    assert_non_null(in);
    FILE *out = fopen(nvx_copy, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(chmod(nvx_copy, 0755), 0);
    return 0;
}

static int
teardown(void **state)
{
    if (geteuid() == 0)
        du_teardown();
    return 0;
}

/* Runs `nvx --store d->dir status` as uid/gid NOBODY with the groups given
 * (n of them); returns its exit status, its stderr in *ret_err (malloc'd). */
static int
status_as_nobody(const du_daemon *d, const gid_t *groups, size_t n, char **ret_err)
{
    char errpath[700];
    snprintf(errpath, sizeof(errpath), "%s/status.err", du_root());
    unlink(errpath);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
            _exit(100);
        if (setgroups(n, groups) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
            _exit(101);
        execl(nvx_copy, "nvx", "--store", d->dir, "status", (char *)NULL);
        _exit(102);
    }
    int st = 0;
    uint64_t deadline = du_now_ms() + DU_WAIT_MS;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        assert_true(w >= 0);
        if (w == pid)
            break;
        if (du_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("nvx status as nobody did not finish within %d ms", DU_WAIT_MS);
        }
        du_sleep_ms(DU_POLL_MS);
    }
    *ret_err = du_slurp(errpath);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) < 100); /* the child's own set-up worked */
    return WEXITSTATUS(st);
}

static void
check_mode(const char *path, mode_t mode, gid_t gid)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 07777) != mode || st.st_gid != gid)
        fail_msg("%s: mode %o group %u, want %o group %u", path, (unsigned)(st.st_mode & 07777),
                 (unsigned)st.st_gid, (unsigned)mode, (unsigned)gid);
}

static void
test_group_member_served(void **state)
{
    if (geteuid() != 0)
        skip();
    du_daemon d = { 0 };
    char gid[16], sock[700];
    snprintf(gid, sizeof(gid), "%d", GROUP);
    const char *const args[] = { "--control-group", gid, "--http", "off", NULL };
    du_start_args(&d, "grp", NULL, args);
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", d.dir);
    check_mode(sock, 0660, GROUP);
    check_mode(d.dir, 0710, GROUP);

    char *err = NULL;
    const gid_t member[] = { OTHER_GROUP, GROUP };
    int r = status_as_nobody(&d, member, 2, &err);
    if (r != 0)
        fail_msg("a member of the control group was not served (exit %d): %s", r, err);
    free(err);

    const gid_t other[] = { OTHER_GROUP };
    r = status_as_nobody(&d, other, 1, &err);
    assert_int_not_equal(r, 0);
    assert_non_null(strstr(err, "permission denied"));
    free(err);

    /* The file modes are not the only guard: loosened, the daemon refuses. */
    assert_int_equal(chmod(sock, 0666), 0);
    assert_int_equal(chmod(d.dir, 0711), 0);
    r = status_as_nobody(&d, other, 1, &err);
    assert_int_not_equal(r, 0);
    free(err);
    char *log = du_slurp(d.log);
    assert_non_null(strstr(log, "refusing a control client of another user"));
    free(log);
    du_stop(&d);
}

static void
test_owner_only_without_group(void **state)
{
    if (geteuid() != 0)
        skip();
    du_daemon d = { 0 };
    char sock[700];
    const char *const args[] = { "--http", "off", NULL };
    du_start_args(&d, "owner", NULL, args);
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", d.dir);
    check_mode(sock, 0600, 0);
    check_mode(d.dir, 0700, 0);
    assert_int_equal(chmod(sock, 0666), 0);
    assert_int_equal(chmod(d.dir, 0711), 0);
    char *err = NULL;
    const gid_t groups[] = { 0, GROUP }; /* even root's group: only the uid counts */
    int r = status_as_nobody(&d, groups, 2, &err);
    assert_int_not_equal(r, 0);
    free(err);
    char *log = du_slurp(d.log);
    assert_non_null(strstr(log, "refusing a control client of another user"));
    free(log);
    du_stop(&d);
}

/* A control group that does not exist is one line naming the fix. */
static void
test_unknown_group(void **state)
{
    if (geteuid() != 0)
        skip();
    char cmd[2048], out[700];
    snprintf(out, sizeof(out), "%s/nogroup.err", du_root());
    snprintf(cmd, sizeof(cmd), "%s --store %s/nogroup --control-group no-such-group-nvx 2>%s",
             du_nvxd_bin(), du_root(), out);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *err = du_slurp(out);
    assert_non_null(strstr(err, "no group 'no-such-group-nvx'"));
    free(err);
}

int
main(void)
{
    if (geteuid() != 0)
        printf("skipping: not root, cannot run clients as other users\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_member_served),
        cmocka_unit_test(test_owner_only_without_group),
        cmocka_unit_test(test_unknown_group),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
