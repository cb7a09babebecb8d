/* SPDX-License-Identifier: MIT */
/*
 * The new user's journey (issue 14) with real nvxd processes on 127.0.0.1:
 * alice publishes a model as "dreams"; bob trusts her key, fetches
 * alice/dreams by name, runs it by that name, runs gc, restarts his node
 * (a reboot), and carol, who knows only bob's node, fetches the model from
 * him after alice's node is gone: bob still seeds it.
 *
 * What it guards: a fetch by PUBLISHER/NAME keeps the name locally (run by
 * name), and a fetched model is kept (pinned: gc leaves it) and seeded
 * (nvxd's default serve policy shares pinned models) across a restart.
 * Also: --listen takes a host name; max-store-bytes keeps fetched models;
 * one string shares a model (nvx ticket on alice's node, nvx fetch TICKET
 * on a node that knows no peer), and a damaged ticket is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "testutil.h"

static int
setup(void **state)
{
    du_setup("journey");
    return 0;
}

static int
teardown(void **state)
{
    du_teardown();
    return 0;
}

/* A small runnable model (synthetic weights, byte vocabulary) at
 * du_root()/name. */
static void
mkmodel(const char *name)
{
    char *bin = tu_build_path("tests/tools/nvx-mkmodel");
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", du_root(), name);
    char *argv[] = { bin,     "-o", path,     "--dim", "64",     "--layers", "2",
                     "--seq", "64", "--type", "q8_0",  "--seed", "3",        NULL };
    char *err = NULL;
    if (tu_run(argv, NULL, &err) != 0)
        fail_msg("nvx-mkmodel failed: %s", err);
    free(err);
    free(bin);
}

/* Polls `nvx resolve alice/dreams` on d until gossip brought the record. */
static void
wait_resolves(const du_daemon *d, const char *target)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    while (du_nvx(d, NULL, NULL, "resolve", target, NULL) != 0) {
        if (du_now_ms() > end) {
            du_dump_log(d);
            fail_msg("%s did not resolve on %s within %d ms", target, d->dir, DU_WAIT_MS);
        }
        du_sleep_ms(DU_POLL_MS);
    }
}

static void
test_journey(void **state)
{
    du_daemon alice = { 0 }, bob = { 0 }, carol = { 0 };
    du_start(&alice, "alice", NULL);
    du_start(&bob, "bob", NULL);
    mkmodel("dreams.gguf");
    char model[700], key[700], pub[700];
    snprintf(model, sizeof(model), "%s/dreams.gguf", du_root());
    snprintf(key, sizeof(key), "%s/alice.key", du_root());
    snprintf(pub, sizeof(pub), "%s/alice.pub", du_root());

    /* alice: add, key, sign, publish. */
    char *id = NULL;
    du_nvx_ok(&alice, &id, "-q", "add", model, NULL);
    id[strcspn(id, "\n")] = '\0';
    assert_int_equal(strlen(id), 64);
    du_nvx_ok(&alice, NULL, "key", "new", "--key", key, "--unencrypted", NULL);
    du_nvx_ok(&alice, NULL, "sign", id, "--key", key, NULL);
    du_nvx_ok(&alice, NULL, "publish", id, "dreams", "--key", key, NULL);

    /* bob: connect, trust alice, fetch by name, run by name. */
    du_nvx_ok(&bob, NULL, "peer", "add", alice.addr, NULL);
    du_nvx_ok(&bob, NULL, "trust", "add", pub, "alice", NULL);
    wait_resolves(&bob, "alice/dreams");
    char *out = NULL;
    du_nvx_ok(&bob, &out, "fetch", "alice/dreams", NULL);
    assert_non_null(strstr(out, id));
    free(out);
    du_nvx_ok(&bob, &out, "run", "alice/dreams", "-p", "hello", "-n", "8", "-t", "0", NULL);
    assert_true(strlen(out) > 0);
    free(out);
    du_nvx_ok(&bob, &out, "ls", NULL);
    assert_non_null(strstr(out, "alice/dreams  "));
    assert_non_null(strstr(out, "  pinned  "));
    free(out);
    /* gc does not take a fetched model. */
    du_nvx_ok(&bob, &out, "--json", "gc", NULL);
    assert_null(strstr(out, id));
    free(out);

    /* A reboot: bob's node restarts; alice's node is gone for good. */
    du_stop(&bob);
    du_stop(&alice);
    du_start(&bob, "bob", NULL);
    du_nvx_ok(&bob, NULL, "-q", "verify", "alice/dreams", NULL);

    /* carol knows only bob: she gets the model from him. */
    du_start(&carol, "carol", NULL);
    du_nvx_ok(&carol, NULL, "peer", "add", bob.addr, NULL);
    du_nvx_ok(&carol, &out, "fetch", id, "--timeout", "30", NULL);
    free(out);
    du_check_copy(&carol, id, "dreams.gguf");
    du_stop(&carol);
    du_stop(&bob);
    free(id);
}

/* --listen takes a host name as --peer does (it failed with EINVAL): the
 * node listens on what localhost resolves to, and a peer fetches from it. */
static void
test_listen_localhost(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    const char *const args[] = { "--listen", "localhost:0", NULL };
    du_start_args(&a, "named", NULL, args);
    if (strncmp(a.addr, "127.0.0.1:", 10) != 0 && strncmp(a.addr, "[::1]:", 6) != 0)
        fail_msg("localhost:0 gave %s", a.addr);
    char *log = du_slurp(a.log);
    assert_non_null(strstr(log, "localhost:0 resolves to "));
    free(log);
    du_start(&b, "dialer", NULL);
    char *id = du_add_model(&a, "l.bin", 300000, 5);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", id, NULL);
    du_check_copy(&b, id, "l.bin");
    du_stop(&a);
    du_stop(&b);
    free(id);
}

/* max-store-bytes in nvxd.conf: at start, unpinned models go oldest first
 * until the store fits; the fetched (pinned) model stays. */
static void
test_quota(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "qa", NULL);
    du_start(&b, "qb", NULL);
    char *id = du_add_model(&a, "q.bin", 200000, 7);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", id, NULL);
    char *old = NULL, *young = NULL;
    char path[700];
    snprintf(path, sizeof(path), "%s/q-old.bin", du_root());
    uint8_t buf[100000];
    tu_fill_random(buf, sizeof(buf), 8);
    assert_int_equal(tu_write_file(path, buf, sizeof(buf)), 0);
    du_nvx_ok(&b, &old, "-q", "add", path, NULL);
    tu_fill_random(buf, sizeof(buf), 9);
    assert_int_equal(tu_write_file(path, buf, sizeof(buf)), 0);
    du_nvx_ok(&b, &young, "-q", "add", path, NULL);
    du_stop(&b);
    char conf[700];
    snprintf(conf, sizeof(conf), "%s/quota.conf", du_root());
    const char text[] = "max-store-bytes = 300000\n";
    assert_int_equal(tu_write_file(conf, text, sizeof(text) - 1), 0);
    const char *const args[] = { "--config", conf, NULL };
    du_start_args(&b, "qb", NULL, args);
    char *out = NULL;
    du_nvx_ok(&b, &out, "-q", "ls", NULL);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, young));
    assert_null(strstr(out, old));
    free(out);
    char *log = du_slurp(b.log);
    assert_non_null(strstr(log, "max-store-bytes: removed 1 unpinned model(s), 100000 bytes"));
    free(log);
    du_stop(&a);
    du_stop(&b);
    free(id);
    free(old);
    free(young);
}

/* nvx ticket: alice signs and trusts her key, so the ticket carries it;
 * dave knows no peer, only the ticket: he fetches the model from alice's
 * address, pinned to her node id, and is told the publisher key. One
 * changed character or a cut-off paste is refused before anything is
 * dialed, in one line. nvx status says the loopback node is not reachable
 * from outside. */
static void
test_ticket(void **state)
{
    du_daemon a = { 0 }, d = { 0 };
    du_start(&a, "ta", NULL);
    du_start(&d, "td", NULL);
    char *id = du_add_model(&a, "t.bin", 300000, 11);
    char key[700], pub[700];
    snprintf(key, sizeof(key), "%s/t.key", du_root());
    snprintf(pub, sizeof(pub), "%s/t.pub", du_root());
    du_nvx_ok(&a, NULL, "key", "new", "--key", key, "--unencrypted", NULL);
    du_nvx_ok(&a, NULL, "trust", "add", pub, "alice", NULL);
    du_nvx_ok(&a, NULL, "sign", id, "--key", key, NULL);
    char *ticket = NULL, *out = NULL, *err = NULL;
    du_nvx_ok(&a, &ticket, "ticket", id, NULL);
    ticket[strcspn(ticket, "\n")] = '\0';
    assert_int_equal(strncmp(ticket, "nvx1", 4), 0);
    du_nvx_ok(&a, &out, "status", NULL);
    assert_non_null(strstr(out, "reachable  not reachable from outside"));
    free(out);

    char bad[700];
    snprintf(bad, sizeof(bad), "%s", ticket);
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    assert_int_equal(du_nvx(&d, NULL, &err, "fetch", bad, NULL), 2);
    assert_non_null(strstr(err, "not a valid ticket"));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
    free(err);
    bad[10] = ticket[10];
    bad[strlen(bad) - 3] = '\0';
    assert_int_equal(du_nvx(&d, NULL, &err, "fetch", bad, NULL), 2);
    free(err);

    assert_int_equal(du_nvx(&d, &out, &err, "fetch", ticket, "--timeout", "30", NULL), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(err, "publisher key"));
    free(out);
    free(err);
    du_check_copy(&d, id, "t.bin");
    du_stop(&a);
    du_stop(&d);
    free(ticket);
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journey),
        cmocka_unit_test(test_listen_localhost),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_ticket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
