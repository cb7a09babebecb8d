/* SPDX-License-Identifier: MIT */
/*
 * The DHT in real nvxd processes on 127.0.0.1 (nvxd-test, --dht with a
 * local bootstrap list: nothing leaves the machine):
 *   - seeder A (bootstrap none) shares a pinned model; fetcher B joins the
 *     DHT through A. `nvx fetch ID` on B, with no peer address given and
 *     no gossip between them, finds A on the DHT and fetches the model
 *     over the normal authenticated session. The time from the fetch to
 *     its first byte is printed.
 *   - B restarted with no bootstrap list joins through the nodes it saved
 *     (STORE/dht.dat).
 *   - `nvx status` and `nvx dht` show the DHT; --no-dht shows it off.
 *   - a lookup while the fetch waits: B starts `nvx fetch ID` while no
 *     node provides ID; A starts later, joins through B and announces
 *     there; B's repeated lookup (with backoff) finds A and the fetch
 *     completes (a single lookup at the start would have found nothing).
 *   - names (BEP 44): A publishes NAME (the record goes on the DHT as a
 *     mutable item); B, with no session to A and A's key trusted under the
 *     name "pub", fetches pub/NAME: the record comes from the DHT (gossip
 *     cannot have brought it), then the model through DHT providers. With
 *     the key not trusted, B does not ask the DHT and says so.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "httputil.h"
#include "testutil.h"

static int
setup(void **state)
{
    (void)state;
    du_setup("dht");
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    du_teardown();
    return 0;
}

/* A number from `nvx --json dht` of d (UINT64_MAX: off or absent). */
static uint64_t
dht_u64(const du_daemon *d, const char *key)
{
    char *out = NULL;
    uint64_t v = UINT64_MAX;
    if (du_nvx(d, &out, NULL, "--json", "dht", NULL) == 0)
        v = du_json_u64(out, key);
    free(out);
    return v;
}

static void
wait_dht(const du_daemon *d, const char *key, uint64_t want)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    while (du_now_ms() < end) {
        uint64_t v = dht_u64(d, key);
        if (v != UINT64_MAX && v >= want)
            return;
        du_sleep_ms(DU_POLL_MS);
    }
    du_dump_log(d);
    fail_msg("%s: DHT %s stayed below %llu", d->dir, key, (unsigned long long)want);
}

/* Runs `nvx fetch target` on d; returns the time to the first byte (ms)
 * and fails the test unless it exits 0. */
static uint64_t
fetch_timed(const du_daemon *d, const char *target)
{
    uint64_t t0 = du_now_ms(), first = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = { (char *)du_nvx_bin(), "--store",   (char *)d->dir, "-q", "fetch",
                         (char *)target,       "--timeout", "60",           NULL };
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    for (;;) {
        char *out = NULL;
        if (!first && du_nvx(d, &out, NULL, "--json", "status", NULL) == 0) {
            uint64_t in = du_json_u64(out, "bytes_fetched");
            if (in != UINT64_MAX && in > 0)
                first = du_now_ms();
        }
        free(out);
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        du_sleep_ms(5);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        du_dump_log(d);
        fail_msg("nvx fetch %s failed (status 0x%x)", target, st);
    }
    return (first ? first : du_now_ms()) - t0;
}

static void
test_fetch_through_dht(void **state)
{
    (void)state;
    du_daemon a = { 0 }, b = { 0 }, store_a = { 0 };
    /* The model is in A's store before A starts: its first scan announces it. */
    snprintf(store_a.dir, sizeof(store_a.dir), "%s/a", du_root());
    char *id = du_add_model(&store_a, "model.bin", 3 << 20, 11);
    const char *const a_args[] = { "--dht", "--dht-bootstrap", "none", NULL };
    du_start_args(&a, "a", NULL, a_args);
    char boot[64];
    snprintf(boot, sizeof(boot), "127.0.0.1:%llu", (unsigned long long)dht_u64(&a, "port"));
    const char *const b_args[] = { "--dht", "--dht-bootstrap", boot, NULL };
    du_start_args(&b, "b", NULL, b_args);
    wait_dht(&b, "nodes", 1);
    wait_dht(&a, "announced", 1);
    /* A announces to the only other node: B keeps the record. */
    wait_dht(&b, "stored", 1);

    uint64_t t0 = du_now_ms();
    uint64_t first = fetch_timed(&b, id);
    uint64_t t1 = du_now_ms();
    du_check_copy(&b, id, "model.bin");
    printf("fetch through the DHT: first byte after %llu ms, 3 MiB done after %llu ms\n",
           (unsigned long long)first, (unsigned long long)(t1 - t0));

    /* B restarts with no bootstrap list: the saved table brings A back. */
    du_stop(&b);
    const char *const b_again[] = { "--dht", "--dht-bootstrap", "none", NULL };
    du_start_args(&b, "b", NULL, b_again);
    wait_dht(&b, "nodes", 1);

    char *out = NULL;
    du_nvx_ok(&b, &out, "status", NULL);
    assert_non_null(strstr(out, "dht        id "));
    free(out);
    du_stop(&b);
    du_stop(&a);
    free(id);
}

static void
test_provider_retry(void **state)
{
    (void)state;
    du_daemon a = { 0 }, b = { 0 }, store_a = { 0 };
    snprintf(store_a.dir, sizeof(store_a.dir), "%s/ra", du_root());
    char *id = du_add_model(&store_a, "model.bin", 1 << 20, 13);
    const char *const b_args[] = { "--dht", "--dht-bootstrap", "none", NULL };
    du_start_args(&b, "rb", NULL, b_args);
    char boot[64];
    snprintf(boot, sizeof(boot), "127.0.0.1:%llu", (unsigned long long)dht_u64(&b, "port"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = { (char *)du_nvx_bin(), "--store", b.dir, "-q", "fetch", id,
                         "--timeout",          "60",      NULL };
        execv(argv[0], argv);
        _exit(127);
    }
    /* B's first lookup ran on an empty DHT; A comes after it. */
    char *out = NULL;
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    while (du_now_ms() < end &&
           (du_nvx(&b, &out, NULL, "--json", "status", NULL) != 0 || !strstr(out, id))) {
        free(out);
        out = NULL;
        du_sleep_ms(DU_POLL_MS);
    }
    free(out);
    const char *const a_args[] = { "--dht", "--dht-bootstrap", boot, NULL };
    du_start_args(&a, "ra", NULL, a_args);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        du_dump_log(&b);
        fail_msg("nvx fetch did not find the provider that announced after it began");
    }
    du_check_copy(&b, id, "model.bin");
    du_stop(&a);
    du_stop(&b);
    free(id);
}

static void
test_name_through_dht(void **state)
{
    (void)state;
    du_daemon a = { 0 }, b = { 0 }, store_a = { 0 };
    snprintf(store_a.dir, sizeof(store_a.dir), "%s/na", du_root());
    char *id = du_add_model(&store_a, "model.bin", 1 << 20, 12);
    const char *const a_args[] = { "--dht", "--dht-bootstrap", "none", NULL };
    du_start_args(&a, "na", NULL, a_args);
    char boot[64], key[600], pub[600];
    snprintf(boot, sizeof(boot), "127.0.0.1:%llu", (unsigned long long)dht_u64(&a, "port"));
    const char *const b_args[] = { "--dht", "--dht-bootstrap", boot, NULL };
    du_start_args(&b, "nb", NULL, b_args);
    wait_dht(&b, "nodes", 1);

    snprintf(key, sizeof(key), "%s/pub.key", du_root());
    snprintf(pub, sizeof(pub), "%s/pub.pub", du_root());
    du_nvx_ok(&a, NULL, "key", "new", "--unencrypted", "--key", key, NULL);
    /* Untrusted: B does not ask the DHT (a name resolves only through the
     * keyring) and says there is no record. */
    char *out = NULL, *err = NULL;
    char kid[17] = "";
    du_nvx_ok(&a, &out, "--json", "publish", id, "tiny", "--key", key, NULL);
    const char *k = strstr(out, "\"key_id\":\"");
    assert_non_null(k);
    memcpy(kid, k + 10, 16);
    free(out);
    wait_dht(&b, "stored", 1); /* the put reached B's node: B's get finds it */
    char target[64];
    snprintf(target, sizeof(target), "%s/tiny", kid);
    assert_int_not_equal(du_nvx(&b, NULL, &err, "fetch", target, "--timeout", "5", NULL), 0);
    assert_non_null(strstr(err, "no record"));
    free(err);

    du_nvx_ok(&b, NULL, "trust", "add", pub, "pub", NULL);
    uint64_t ms = fetch_timed(&b, "pub/tiny");
    du_check_copy(&b, id, "model.bin");
    printf("fetch of pub/tiny through BEP 44 and DHT providers: first byte after %llu ms\n",
           (unsigned long long)ms);

    /* An app's /api/pull resolves the name and finds providers on the DHT
     * as nvx fetch does (C knows no peer; the item is on B's node). */
    du_daemon c = { 0 };
    const char *const c_args[] = {
        "--dht", "--dht-bootstrap", boot, "--http", "127.0.0.1:0", NULL
    };
    du_start_args(&c, "nc", NULL, c_args);
    wait_dht(&c, "nodes", 1);
    du_nvx_ok(&c, NULL, "trust", "add", pub, "pub", NULL);
    char *body = NULL;
    int st =
        hu_post(hu_api_port(&c), "/api/pull", "{\"model\":\"pub/tiny\",\"stream\":false}", &body);
    if (st != 200) {
        du_dump_log(&c);
        fail_msg("/api/pull pub/tiny: %d %s", st, body);
    }
    free(body);
    du_check_copy(&c, id, "model.bin");
    du_stop(&c);
    du_stop(&b);
    /* A restarted puts the name again (STORE/dht-names.dat). */
    du_stop(&a);
    du_start_args(&a, "na", NULL, a_args);
    char *log = du_slurp(a.log);
    assert_non_null(log);
    assert_non_null(strstr(log, "putting 1 published names again"));
    free(log);
    du_stop(&a);
    free(id);
}

static void
test_dht_off(void **state)
{
    (void)state;
    du_daemon c = { 0 };
    du_start(&c, "c", NULL); /* daemonutil passes --no-dht */
    char *out = NULL;
    du_nvx_ok(&c, &out, "dht", NULL);
    assert_string_equal(out, "dht        off\n");
    free(out);
    du_stop(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_through_dht),
        cmocka_unit_test(test_provider_retry),
        cmocka_unit_test(test_name_through_dht),
        cmocka_unit_test(test_dht_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
