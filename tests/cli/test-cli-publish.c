/* SPDX-License-Identifier: MIT */
/*
 * nvx publish and nvx resolve with the real binary: signing and storing a
 * name record without a daemon, the sequence moving forward, trust (a
 * record from a key not in `nvx trust` is shown, not followed, exit 5),
 * --allow-untrusted, publisher by key name or key id, ambiguous key names,
 * the one-line errors for bad input, and (when nvxd is built) the daemon
 * taking the PUBLISH.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clitest.h"
#include "libcas/hash.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;
    char store[4096];
    char id[CAS_HASH_HEX_LEN + 1];
    char key2[4096];
} fixture;

/* The "key_id" value of a one-line JSON object (static buffer). */
static const char *
json_field(const char *json, const char *key)
{
    static char buf[256];
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    p += strlen(pat);
    if (*p == '"')
        p++;
    size_t n = strcspn(p, "\",}");
    assert_true(n < sizeof(buf));
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("cli-publish");
    snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
    char cfg[4096];
    snprintf(cfg, sizeof(cfg), "%s/cfg", f->dir);
    setenv("XDG_CONFIG_HOME", cfg, 1);
    unsetenv("NVX_KEY");
    unsetenv("NVX_PASSPHRASE");
    unsetenv("NVX_STORE");

    char model[4096], *out = NULL, *err = NULL;
    snprintf(model, sizeof(model), "%s/model.bin", f->dir);
    ct_write_random(model, 100000, 11);
    ct_ok(f->store, &out, &err, "add", model, "--name", "tiny", NULL);
    snprintf(f->id, sizeof(f->id), "%s", ct_last_word(out));
    assert_int_equal(strlen(f->id), CAS_HASH_HEX_LEN);
    free(out);
    free(err);
    ct_ok(NULL, NULL, NULL, "key", "new", "--unencrypted", NULL);
    snprintf(f->key2, sizeof(f->key2), "%s/other.key", f->dir);
    ct_ok(NULL, NULL, NULL, "key", "new", "--unencrypted", "--key", f->key2, NULL);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Publishes with the default key (or --key key) and returns the key id. */
static const char *
publish(fixture *f, const char *name, const char *key, uint64_t *ret_seq)
{
    static char kid[32];
    char *out = NULL, *err = NULL;
    int r =
        key ? ct_run(f->store, &out, &err, "--json", "publish", "tiny", name, "--key", key, NULL)
            : ct_run(f->store, &out, &err, "--json", "publish", "tiny", name, NULL);
    if (r != 0)
        fail_msg("publish: exit %d: %s", r, err);
    ct_assert_json(out);
    /* No nvxd runs here: stored, with a warning saying so. */
    ct_assert_one_error(err, "no nvxd serves");
    assert_string_equal(json_field(out, "id"), f->id);
    assert_string_equal(json_field(out, "announced"), "false");
    if (ret_seq)
        *ret_seq = strtoull(json_field(out, "sequence"), NULL, 10);
    snprintf(kid, sizeof(kid), "%s", json_field(out, "key_id"));
    assert_true(strlen(kid) >= 1 && strlen(kid) <= 16); /* minisign drops leading zeros */
    free(out);
    free(err);
    return kid;
}

static void
test_publish_resolve_trust(void **state)
{
    fixture *f = *state;
    uint64_t s1, s2;
    char kid[32];
    snprintf(kid, sizeof(kid), "%s", publish(f, "org/tiny:v1", NULL, &s1));
    (void)publish(f, "org/tiny:v1", NULL, &s2);
    assert_true(s2 > s1); /* republishing moves the sequence forward */

    /* By key id, untrusted: the record is shown, exit 5. */
    char target[128], *out = NULL, *err = NULL;
    snprintf(target, sizeof(target), "%s/org/tiny:v1", kid);
    assert_int_equal(ct_run(f->store, &out, &err, "resolve", target, NULL), 5);
    assert_non_null(strstr(out, f->id));
    assert_non_null(strstr(out, "NOT trusted"));
    ct_assert_one_error(err, "do not trust");
    free(out);
    free(err);
    assert_int_equal(
        ct_run(f->store, &out, &err, "-q", "resolve", target, "--allow-untrusted", NULL), 0);
    assert_int_equal(strlen(out), CAS_HASH_HEX_LEN + 1);
    assert_memory_equal(out, f->id, CAS_HASH_HEX_LEN);
    free(out);
    free(err);

    /* Trusted under a name: followed. */
    char pub[4096];
    snprintf(pub, sizeof(pub), "%s/cfg/nvx/nvx.pub", f->dir);
    ct_ok(f->store, NULL, NULL, "trust", "add", pub, "alice", NULL);
    ct_ok(f->store, &out, &err, "--json", "resolve", "alice/org/tiny:v1", NULL);
    ct_assert_json(out);
    assert_string_equal(json_field(out, "id"), f->id);
    assert_string_equal(json_field(out, "trusted"), "true");
    assert_string_equal(json_field(out, "key_name"), "alice");
    assert_int_equal(strtoull(json_field(out, "sequence"), NULL, 10), s2);
    free(out);
    free(err);

    /* Another key publishing the same name is another record; untrusted. */
    char kid2[32];
    snprintf(kid2, sizeof(kid2), "%s", publish(f, "org/tiny:v1", f->key2, NULL));
    assert_string_not_equal(kid, kid2);
    snprintf(target, sizeof(target), "%s/org/tiny:v1", kid2);
    assert_int_equal(ct_run(f->store, NULL, &err, "resolve", target, NULL), 5);
    free(err);
    ct_ok(f->store, NULL, NULL, "resolve", "alice/org/tiny:v1", NULL);

    /* Two trusted keys called alice: ambiguous, use the key id. */
    char pub2[4096];
    snprintf(pub2, sizeof(pub2), "%s/other.pub", f->dir);
    ct_ok(f->store, NULL, NULL, "trust", "add", pub2, "alice", NULL);
    assert_int_equal(ct_run(f->store, NULL, &err, "resolve", "alice/org/tiny:v1", NULL), 2);
    ct_assert_one_error(err, "key id");
    free(err);
    ct_ok(f->store, NULL, NULL, "resolve", target, NULL); /* now trusted, by id */
}

static void
test_bad_input(void **state)
{
    fixture *f = *state;
    char *err = NULL;
    assert_int_equal(ct_run(f->store, NULL, &err, "publish", "tiny", "has space", NULL), 2);
    ct_assert_one_error(err, "bad name");
    free(err);
    char longname[200];
    memset(longname, 'x', 129);
    longname[129] = '\0';
    assert_int_equal(ct_run(f->store, NULL, &err, "publish", "tiny", longname, NULL), 2);
    free(err);
    assert_int_equal(ct_run(f->store, NULL, &err, "publish", "0123456789abcdef0123", "n", NULL), 3);
    free(err);
    assert_int_equal(ct_run(f->store, NULL, &err, "publish", "tiny", NULL), 2);
    free(err);
    assert_int_equal(ct_run(f->store, NULL, &err, "resolve", "nopublisher", NULL), 2);
    ct_assert_one_error(err, "PUBLISHER/NAME");
    free(err);
    assert_int_equal(ct_run(f->store, NULL, &err, "resolve", "carol/x", NULL), 3);
    ct_assert_one_error(err, "no record");
    free(err);
    assert_int_equal(ct_run(f->store, NULL, &err, "resolve", "0123456789ABCDEF/x", NULL), 3);
    free(err);
    /* A key file that does not exist. */
    char missing[4096];
    snprintf(missing, sizeof(missing), "%s/none.key", f->dir);
    assert_true(ct_run(f->store, NULL, &err, "publish", "tiny", "n", "--key", missing, NULL) != 0);
    free(err);
}

/* With an nvxd serving the store, publish is announced (control PUBLISH:
 * the daemon finds the stored record and hands it to gossip). */
static void
test_publish_with_daemon(void **state)
{
    fixture *f = *state;
    char *nvxd = tu_build_path("daemon/nvxd");
    if (!nvxd || access(nvxd, X_OK) != 0) {
        free(nvxd);
        fprintf(stderr, "[  SKIP    ] nvxd is not built here\n");
        skip();
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(nvxd, nvxd, "--store", f->store, "--listen", "127.0.0.1:0", "--no-discovery",
              "--no-upnp", "--http", "off", (char *)NULL);
        _exit(127);
    }
    char sock[4200];
    snprintf(sock, sizeof(sock), "%s/nvxd.sock", f->store);
    struct stat st;
    for (int i = 0; i < 1000 && stat(sock, &st) != 0; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    char *out = NULL, *err = NULL;
    int r = ct_run(f->store, &out, &err, "--json", "publish", "tiny", "org/live", NULL);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    free(nvxd);
    if (r != 0)
        fail_msg("publish: exit %d: %s", r, err);
    ct_assert_json(out);
    assert_string_equal(json_field(out, "announced"), "true");
    assert_string_equal(err, "");
    free(out);
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_resolve_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_with_daemon, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
