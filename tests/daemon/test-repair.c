/* SPDX-License-Identifier: MIT */
/*
 * nvx repair ID through peers (issue 9 item 10), on real nvxd processes
 * (127.0.0.1, temp stores): B fetched a model from A and served it to C;
 * then one chunk of B's data file rots. B must not serve the rotten chunk
 * from its verified cache, `nvx verify` on B names the chunk, and
 * `nvx repair ID` on B (nvxd running, no FILE) fetches that chunk from A
 * again; afterwards B verifies, exports the original bytes and serves the
 * model to C.
 */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "testutil.h"

enum {
    MODEL_SIZE = 6 << 20,
    FLIP_AT = MODEL_SIZE / 2, /* the byte that rots, in some middle chunk */
};

static int
setup(void **state)
{
    du_setup("repair");
    return 0;
}

static int
teardown(void **state)
{
    du_teardown();
    return 0;
}

/* Flips one byte of d's data file of id the way rot or a stray write
 * would: the file is 0444, so chmod, write, chmod back. */
static void
flip_byte(const du_daemon *d, const char *id, uint64_t off)
{
    char path[800];
    snprintf(path, sizeof(path), "%s/data/%s", d->dir, id);
    assert_int_equal(chmod(path, 0644), 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
    assert_int_equal(chmod(path, 0444), 0);
}

static bool
log_has(const du_daemon *d, const char *needle)
{
    char *log = du_slurp(d->log);
    bool has = strstr(log, needle) != NULL;
    free(log);
    return has;
}

/* Starts `nvx fetch ID` on d in the background (output to /dev/null). */
static pid_t
spawn_fetch(const du_daemon *d, const char *id)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(du_nvx_bin(), "nvx", "--store", d->dir, "-q", "fetch", id, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Polls until a's log has needle_a or b's log has needle_b (DU_WAIT_MS). */
static void
wait_either(const du_daemon *a, const char *needle_a, const du_daemon *b, const char *needle_b)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    while (du_now_ms() < end) {
        if (log_has(a, needle_a) || log_has(b, needle_b))
            return;
        du_sleep_ms(DU_POLL_MS);
    }
    du_dump_log(a);
    du_dump_log(b);
    fail_msg("neither '%s' nor '%s' logged after %d ms", needle_a, needle_b, DU_WAIT_MS);
}

static void
test_repair_from_peer(void **state)
{
    du_daemon a = { 0 }, b = { 0 }, c = { 0 };
    du_start(&a, "ra", NULL);
    du_start(&b, "rb", NULL);
    char *id = du_add_model(&a, "model.bin", MODEL_SIZE, 91);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", id, "--pin", NULL);
    du_check_copy(&b, id, "model.bin");

    /* A leaves, so that C can only fetch from B (and never learns of A
     * through B). C's fetch makes B open the model for serving and mark
     * every chunk verified. */
    du_stop(&a);
    du_start(&c, "rc", NULL);
    du_nvx_ok(&c, NULL, "peer", "add", b.addr, NULL);
    du_nvx_ok(&c, NULL, "fetch", id, NULL);
    du_check_copy(&c, id, "model.bin");
    du_nvx_ok(&c, NULL, "rm", "--force", id, NULL);

    flip_byte(&b, id, FLIP_AT);

    /* B must not send the rotten chunk from its verified cache (C would
     * drop it as a peer that sends bad data); it answers NOT_FOUND and
     * says why. The fetch cannot complete: B is C's only source. */
    char *out = NULL, *err = NULL;
    pid_t fetch = spawn_fetch(&c, id);
    wait_either(&b, "is corrupt: peers get NOT_FOUND", &c, "dropping it");
    /* The fetch waits on for the chunk (it is resumable): stop waiting.
     * C's nvxd keeps the partial copy, which the fetch below resumes. */
    kill(fetch, SIGKILL);
    int st;
    assert_int_equal(waitpid(fetch, &st, 0), fetch);
    if (log_has(&c, "dropping it")) {
        du_dump_log(&c);
        fail_msg("B served the corrupt chunk from its cache");
    }
    if (!log_has(&b, "is corrupt: peers get NOT_FOUND")) {
        du_dump_log(&b);
        fail_msg("B did not notice the corrupt chunk");
    }

    /* verify on B names the chunk and the way out. */
    assert_int_equal(du_nvx(&b, &out, &err, "verify", id, NULL), 4);
    assert_non_null(strstr(err, "chunk "));
    assert_non_null(strstr(err, "nvx repair"));
    free(out);
    free(err);

    /* A comes back (a new port); repair on B fetches the chunk from it. */
    du_start(&a, "ra", NULL);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, &out, "repair", id, NULL);
    assert_non_null(strstr(out, id));
    free(out);
    du_check_copy(&b, id, "model.bin");
    du_nvx_ok(&b, &out, "info", id, NULL);
    assert_null(strstr(out, "partial"));
    free(out);

    /* B serves the repaired model again (C resumes its partial copy). */
    du_nvx_ok(&c, NULL, "fetch", id, NULL);
    du_check_copy(&c, id, "model.bin");
    assert_false(log_has(&c, "dropping it"));
    du_stop(&a);
    du_stop(&b);
    du_stop(&c);
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repair_from_peer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
