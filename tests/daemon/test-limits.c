/* SPDX-License-Identifier: MIT */
/*
 * Limits (issue 14 item 3) with real nvxd processes on 127.0.0.1:
 *
 * - upload-rate: a seeder limited to RATE serves a model of a few MiB no
 *   faster than RATE * elapsed + its burst (the bound that matters, and it
 *   does not depend on load) and not absurdly slower (a loose lower bound
 *   that holds beside a CPU-heavy job);
 * - nvx fetch --rate and nvxd's download-rate: the same bounds for the
 *   download;
 * - the store quota and kept models: a fetched model is kept (ls says so),
 *   the quota evicts it to make room for the next fetch while a pinned
 *   model stays, and a fetch that cannot fit even then fails at once with
 *   a line naming max-store-bytes and removes nothing;
 * - last use: serving a model and running it are uses, so eviction takes
 *   the model nobody used, not the oldest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "testutil.h"

enum {
    RATE = 2 << 20,       /* bytes/s */
    MODEL = 6 << 20,      /* bytes fetched under the limit: about 2.5 s */
    BURST = RATE / 2,     /* daemon/ratelimit.h: half a second of the rate */
    SLACK = 256 << 10,    /* one request past the bucket (its debt) */
    QUOTA_PIECE = 300000, /* the quota test's model size */
    QUOTA = 700000,       /* fits two of them */
};

static int
setup(void **state)
{
    du_setup("limits");
    return 0;
}

static int
teardown(void **state)
{
    du_teardown();
    return 0;
}

/* Fetches id on b (extra: one more argument or NULL) and checks the
 * achieved rate against the limit; returns the elapsed ms. */
static uint64_t
fetch_limited(du_daemon *b, const char *id, const char *extra)
{
    uint64_t t0 = du_now_ms();
    du_nvx_ok(b, NULL, "fetch", id, extra, NULL);
    uint64_t ms = du_now_ms() - t0;
    double achieved = (double)MODEL * 1000 / (double)(ms ? ms : 1);
    print_message("fetched %d bytes in %llu ms: %.2f MiB/s under a %.2f MiB/s limit\n", MODEL,
                  (unsigned long long)ms, achieved / (1 << 20), (double)RATE / (1 << 20));
    /* Upper bound: what the bucket can release in ms, with 10% for clock
     * granularity. Lower bound: a quarter of the limit. */
    uint64_t most = (uint64_t)((double)RATE * 1.1 * (double)ms / 1000) + BURST + SLACK;
    if ((uint64_t)MODEL > most)
        fail_msg("%d bytes in %llu ms: faster than the limit allows (%llu)", MODEL,
                 (unsigned long long)ms, (unsigned long long)most);
    if (achieved < RATE / 4.0)
        fail_msg("%.0f bytes/s: far under the limit", achieved);
    return ms;
}

static void
test_upload_rate(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    const char *const args[] = { "--upload-rate", "2M", NULL };
    du_start_args(&a, "up-seed", NULL, args);
    du_start(&b, "up-fetch", NULL);
    char *id = du_add_model(&a, "up.bin", MODEL, 31);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_wait_peers(&b, 1);
    fetch_limited(&b, id, NULL);
    du_check_copy(&b, id, "up.bin");
    du_stop(&a);
    du_stop(&b);
    free(id);
}

/* The fetching side: nvx fetch --rate, or nvxd's download-rate (args). */
static void
download_limited(const char *const *args, const char *extra, uint64_t seed)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "rate-seed", NULL);
    du_start_args(&b, "rate-fetch", NULL, args);
    char *id = du_add_model(&a, "rate.bin", MODEL, seed);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_wait_peers(&b, 1);
    fetch_limited(&b, id, extra);
    du_check_copy(&b, id, "rate.bin");
    du_stop(&a);
    du_stop(&b);
    free(id);
}

static void
test_fetch_rate(void **state)
{
    const char *const none[] = { NULL };
    download_limited(none, "--rate=2M", 32);
}

static void
test_download_rate(void **state)
{
    const char *const args[] = { "--download-rate", "2M", NULL };
    download_limited(args, NULL, 33);
}

static bool
listed(const du_daemon *d, const char *id)
{
    char *out = NULL;
    du_nvx_ok(d, &out, "-q", "ls", NULL);
    bool r = strstr(out, id) != NULL;
    free(out);
    return r;
}

static void
test_quota_kept(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    char conf[700];
    snprintf(conf, sizeof(conf), "%s/quota.conf", du_root());
    char text[64];
    int tl = snprintf(text, sizeof(text), "max-store-bytes = %d\n", QUOTA);
    assert_int_equal(tu_write_file(conf, text, (size_t)tl), 0);
    const char *const args[] = { "--config", conf, NULL };
    du_start(&a, "q-seed", NULL);
    du_start_args(&b, "q-fetch", NULL, args);
    char *m1 = du_add_model(&a, "m1.bin", QUOTA_PIECE, 41);
    char *m2 = du_add_model(&a, "m2.bin", QUOTA_PIECE, 42);
    char *big = du_add_model(&a, "big.bin", QUOTA - QUOTA_PIECE + 1, 43);
    char *mine = du_add_model(&b, "mine.bin", QUOTA_PIECE, 44); /* pinned */
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_wait_peers(&b, 1);

    /* A fetched model is kept: ls says so, info has its last use. */
    du_nvx_ok(&b, NULL, "fetch", m1, NULL);
    char *out = NULL;
    du_nvx_ok(&b, &out, "ls", NULL);
    assert_non_null(strstr(out, "  kept  "));
    assert_non_null(strstr(out, "  pinned  "));
    free(out);
    du_nvx_ok(&b, &out, "--json", "info", m1, NULL);
    assert_non_null(strstr(out, "\"kept\":true"));
    assert_true(du_json_u64(out, "last_used") >= du_json_u64(out, "added"));
    assert_true(du_json_u64(out, "last_used") != UINT64_MAX);
    free(out);

    /* The next fetch needs m1's room: the quota evicts the kept model, the
     * pinned one stays. */
    du_nvx_ok(&b, NULL, "fetch", m2, NULL);
    assert_false(listed(&b, m1));
    assert_true(listed(&b, m2) && listed(&b, mine));
    char *log = du_slurp(b.log);
    assert_non_null(strstr(log, "max-store-bytes: removed 1 model(s), 300000 bytes"));
    free(log);

    /* big fits only if the pinned model went: the fetch fails at once,
     * naming the quota, and m2 is still there. */
    char *err = NULL;
    int rc = du_nvx(&b, NULL, &err, "fetch", big, NULL);
    assert_int_not_equal(rc, 0);
    assert_non_null(err);
    assert_non_null(strstr(err, "max-store-bytes"));
    assert_true(strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    free(err);
    assert_true(listed(&b, m2) && listed(&b, mine));
    assert_false(listed(&b, big));

    /* Without a quota nothing is evicted and plain gc leaves kept m2. */
    du_nvx_ok(&b, &out, "--json", "gc", NULL);
    assert_null(strstr(out, m2));
    free(out);
    du_stop(&a);
    du_stop(&b);
    free(m1);
    free(m2);
    free(big);
    free(mine);
}

/* The first model `gc --max-bytes` would remove from d to free one byte. */
static bool
evicts_first(const du_daemon *d, const char *id)
{
    char *out = NULL, max[32];
    du_nvx_ok(d, &out, "--json", "gc", "--max-bytes", "1", "--dry-run", NULL);
    uint64_t total = du_json_u64(out, "bytes");
    free(out);
    snprintf(max, sizeof(max), "%llu", (unsigned long long)(total - 1));
    du_nvx_ok(d, &out, "gc", "--max-bytes", max, "--dry-run", NULL);
    bool r = strstr(out, id) != NULL && strstr(out, "would free 1 model") != NULL;
    free(out);
    return r;
}

static void
test_last_use(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    du_start(&a, "use-seed", NULL);
    du_start(&b, "use-fetch", NULL);
    /* a serves the older model: it becomes the more recently used. */
    char *older = du_add_model(&a, "older.bin", QUOTA_PIECE, 61);
    char *newer = du_add_model(&a, "newer.bin", QUOTA_PIECE, 62);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_wait_peers(&b, 1);
    du_nvx_ok(&b, NULL, "fetch", older, NULL);
    du_nvx_ok(&a, NULL, "unpin", older, NULL);
    du_nvx_ok(&a, NULL, "unpin", newer, NULL);
    uint64_t end = du_now_ms() + DU_WAIT_MS; /* the tick writes the use on the pool */
    while (!evicts_first(&a, newer)) {
        if (du_now_ms() > end)
            fail_msg("serving %s did not count as a use", older);
        du_sleep_ms(DU_POLL_MS);
    }

    /* b runs its oldest unpinned model: the other goes first. */
    du_mkmodel("run.gguf");
    char path[700], *ran = NULL, *idle = NULL;
    snprintf(path, sizeof(path), "%s/run.gguf", du_root());
    du_nvx_ok(&b, &ran, "-q", "add", path, NULL);
    ran[strcspn(ran, "\n")] = '\0';
    snprintf(path, sizeof(path), "%s/newer.bin", du_root());
    du_nvx_ok(&b, &idle, "-q", "add", path, NULL);
    idle[strcspn(idle, "\n")] = '\0';
    assert_true(evicts_first(&b, ran));
    du_nvx_ok(&b, NULL, "run", ran, "-p", "hi", "-n", "2", "-t", "0", NULL);
    assert_true(evicts_first(&b, idle));
    du_stop(&a);
    du_stop(&b);
    free(older);
    free(newer);
    free(ran);
    free(idle);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_rate),   cmocka_unit_test(test_fetch_rate),
        cmocka_unit_test(test_download_rate), cmocka_unit_test(test_quota_kept),
        cmocka_unit_test(test_last_use),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
