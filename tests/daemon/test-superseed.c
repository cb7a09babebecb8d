/* SPDX-License-Identifier: MIT */
/* Unit tests of super-seeding (daemon/superseed.c), fed event sequences. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/superseed.h"

enum {
    N = 1000,
    PEERS = 8
};

static void
test_bad_input(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(0, 1, &ss), -EINVAL);
    assert_int_equal(nvx_ss_new(10, 1, &ss), 0);
    nvx_ss_peer *pp[NVX_SS_PEERS_MAX];
    for (int i = 0; i < NVX_SS_PEERS_MAX; i++)
        assert_int_equal(nvx_ss_peer_add(ss, &pp[i]), 0);
    nvx_ss_peer *extra;
    assert_int_equal(nvx_ss_peer_add(ss, &extra), -ENOSPC);
    nvx_ss_peer_got(ss, pp[0], 10); /* out of range: ignored */
    nvx_ss_peer_got(ss, pp[0], UINT32_MAX);
    nvx_ss_free(ss);
}

/* Each chunk is revealed to one fetcher only, each fetcher is kept a few
 * chunks ahead, and what a fetcher gets reveals more. */
static void
test_reveals_are_distinct(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(N, 7, &ss), 0);
    nvx_ss_peer *pp[PEERS];
    for (int i = 0; i < PEERS; i++)
        assert_int_equal(nvx_ss_peer_add(ss, &pp[i]), 0);
    static int owner[N];
    for (int i = 0; i < N; i++)
        owner[i] = -1;
    uint32_t out[NVX_SS_AHEAD_TOTAL];
    bool all;
    uint32_t want = NVX_SS_AHEAD_TOTAL / PEERS;
    for (int i = 0; i < PEERS; i++) {
        size_t k = nvx_ss_reveal(ss, pp[i], 0, out, NVX_SS_AHEAD_TOTAL, &all);
        assert_int_equal(k, want);
        assert_false(all);
        for (size_t j = 0; j < k; j++) {
            assert_true(j == 0 || out[j - 1] < out[j]); /* ascending */
            assert_int_equal(owner[out[j]], -1);
            owner[out[j]] = i;
        }
        /* Nothing more until it gets some. */
        assert_int_equal(nvx_ss_reveal(ss, pp[i], 0, out, NVX_SS_AHEAD_TOTAL, &all), 0);
    }
    /* Peer 0 gets 3 of its chunks: 3 more are revealed to it. */
    int got = 0;
    for (int c = 0; c < N && got < 3; c++)
        if (owner[c] == 0) {
            nvx_ss_peer_got(ss, pp[0], (uint32_t)c);
            got++;
        }
    size_t k = nvx_ss_reveal(ss, pp[0], 0, out, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(k, 3);
    for (size_t j = 0; j < k; j++)
        assert_int_equal(owner[out[j]], -1);
    assert_int_equal(nvx_ss_pool(ss), N - PEERS * want - 3);
    nvx_ss_free(ss);
}

/* A fetcher that leaves hands its unreceived reveals back; they go to
 * others. */
static void
test_leaver_returns_chunks(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(40, 3, &ss), 0);
    nvx_ss_peer *a, *b;
    assert_int_equal(nvx_ss_peer_add(ss, &a), 0);
    assert_int_equal(nvx_ss_peer_add(ss, &b), 0);
    uint32_t out[NVX_SS_AHEAD_TOTAL], ra[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t ka = nvx_ss_reveal(ss, a, 0, ra, NVX_SS_AHEAD_TOTAL, &all);
    size_t kb = nvx_ss_reveal(ss, b, 0, out, NVX_SS_AHEAD_TOTAL, &all);
    /* 2 fetchers: 256 ahead each, but a small model: 16 each */
    assert_int_equal(ka, NVX_SS_AHEAD_MIN);
    assert_int_equal(kb, NVX_SS_AHEAD_MIN);
    assert_int_equal(nvx_ss_pool(ss), 40 - 2 * NVX_SS_AHEAD_MIN);
    nvx_ss_peer_got(ss, a, ra[0]);
    nvx_ss_peer_got(ss, b, ra[0]); /* b got it from a */
    nvx_ss_peer_remove(ss, a);
    assert_int_equal(nvx_ss_pool(ss), 40 - 2 * NVX_SS_AHEAD_MIN + ka - 1);
    for (size_t j = 0; j < kb; j++)
        nvx_ss_peer_got(ss, b, out[j]);
    size_t k = nvx_ss_reveal(ss, b, 0, out, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(k, NVX_SS_AHEAD_MIN);
    for (size_t j = 0; j < k; j++)
        assert_int_not_equal(out[j], ra[0]); /* a had that one */
    nvx_ss_free(ss);
}

/* HAVE ALL only once nothing new happened for NVX_SS_TAIL_MS: while the
 * swarm trades (every chunk out, b still sitting on one), the seeder stays
 * out of the way; a chunk reaching the swarm restarts the wait. */
static void
test_all_after_quiet(void **state)
{
    (void)state;
    for (int sit = 0; sit < 2; sit++) {
        /* 32 fetchers share the depth: 16 ahead each; a and b split the
         * 32 chunks, the others stay quiet. */
        nvx_ss *ss;
        assert_int_equal(nvx_ss_new(32, 11, &ss), 0);
        nvx_ss_peer *a, *b, *quiet;
        assert_int_equal(nvx_ss_peer_add(ss, &a), 0);
        assert_int_equal(nvx_ss_peer_add(ss, &b), 0);
        for (int i = 2; i < NVX_SS_AHEAD_TOTAL / NVX_SS_AHEAD_MIN; i++)
            assert_int_equal(nvx_ss_peer_add(ss, &quiet), 0);
        uint32_t ra[NVX_SS_AHEAD_TOTAL], rb[NVX_SS_AHEAD_TOTAL];
        bool all;
        size_t ka = nvx_ss_reveal(ss, a, 100, ra, NVX_SS_AHEAD_TOTAL, &all);
        size_t kb = nvx_ss_reveal(ss, b, 100, rb, NVX_SS_AHEAD_TOTAL, &all);
        assert_int_equal(ka, NVX_SS_AHEAD_MIN);
        assert_int_equal(ka + kb, 32);
        for (size_t j = 0; j < ka; j++) { /* a and b trade */
            nvx_ss_peer_got(ss, a, ra[j]);
            nvx_ss_peer_got(ss, b, ra[j]);
        }
        for (size_t j = 0; j + (size_t)sit < kb; j++) { /* sit: b sits on one */
            nvx_ss_peer_got(ss, b, rb[j]);
            nvx_ss_peer_got(ss, a, rb[j]);
        }
        uint32_t out[NVX_SS_AHEAD_TOTAL];
        assert_int_equal(nvx_ss_reveal(ss, a, 200, out, NVX_SS_AHEAD_TOTAL, &all), 0);
        assert_false(all); /* progress at 200: the wait starts */
        assert_int_equal(nvx_ss_reveal(ss, a, 200 + NVX_SS_TAIL_MS - 1, out, 8, &all), 0);
        assert_false(all);
        if (sit) { /* the last chunk reaches the swarm: wait again */
            nvx_ss_peer_got(ss, a, rb[kb - 1]);
            assert_int_equal(nvx_ss_reveal(ss, a, 200 + NVX_SS_TAIL_MS, out, 8, &all), 0);
            assert_false(all);
            assert_int_equal(nvx_ss_reveal(ss, a, 200 + 2 * NVX_SS_TAIL_MS, out, 8, &all), 0);
        } else {
            assert_int_equal(nvx_ss_reveal(ss, a, 200 + NVX_SS_TAIL_MS, out, 8, &all), 0);
        }
        assert_true(all);
        /* Told once. */
        assert_int_equal(nvx_ss_reveal(ss, a, UINT32_MAX, out, 8, &all), 0);
        assert_false(all);
        nvx_ss_free(ss);
    }
}

/* Once every chunk is out, a fetcher that gets none for NVX_SS_STARVE_MS
 * while it lacks some (no peer of its holds them) is told HAVE ALL alone;
 * one that progresses is not. */
static void
test_starving_fetcher(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(32, 9, &ss), 0);
    nvx_ss_peer *a, *b, *c;
    assert_int_equal(nvx_ss_peer_add(ss, &a), 0);
    assert_int_equal(nvx_ss_peer_add(ss, &b), 0);
    assert_int_equal(nvx_ss_peer_add(ss, &c), 0);
    uint32_t ra[NVX_SS_AHEAD_TOTAL], rb[NVX_SS_AHEAD_TOTAL], out[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t ka = nvx_ss_reveal(ss, a, 0, ra, NVX_SS_AHEAD_TOTAL, &all);
    size_t kb = nvx_ss_reveal(ss, b, 0, rb, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(ka + kb, 32);
    assert_int_equal(nvx_ss_reveal(ss, c, 0, out, NVX_SS_AHEAD_TOTAL, &all), 0);
    for (size_t j = 0; j < ka; j++)
        nvx_ss_peer_got(ss, a, ra[j]);
    for (size_t j = 0; j < kb; j++)
        nvx_ss_peer_got(ss, b, rb[j]);
    nvx_ss_peer_got(ss, c, ra[0]); /* c got one, then nothing more */
    assert_int_equal(nvx_ss_reveal(ss, c, 1000, out, 8, &all), 0);
    assert_false(all);
    for (uint64_t t = 1000; t < 1000 + NVX_SS_STARVE_MS; t += 500) {
        nvx_ss_peer_got(ss, a, rb[t / 500 % kb]); /* a keeps getting chunks */
        assert_int_equal(nvx_ss_reveal(ss, a, t, out, 8, &all), 0);
        assert_false(all);
        assert_int_equal(nvx_ss_reveal(ss, c, t, out, 8, &all), 0);
        assert_false(all);
    }
    assert_int_equal(nvx_ss_reveal(ss, c, 1000 + NVX_SS_STARVE_MS, out, 8, &all), 0);
    assert_true(all);
    nvx_ss_free(ss);
}

/* A fetcher asks again (every few seconds): the reveals it neither got
 * nor requested go to whoever asks next; the ones it requested stay its
 * own (no second copy leaves the seeder for them). */
static void
test_redeal(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(64, 7, &ss), 0);
    nvx_ss_peer *a, *b;
    assert_int_equal(nvx_ss_peer_add(ss, &a), 0);
    uint32_t ra[NVX_SS_AHEAD_TOTAL], rb[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t ka = nvx_ss_reveal(ss, a, 0, ra, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(ka, NVX_SS_AHEAD_MIN); /* an eighth of 64, at least 16 */
    nvx_ss_peer_asked(ss, a, ra[0]);
    nvx_ss_peer_asked(ss, a, ra[1]);
    nvx_ss_peer_got(ss, a, ra[2]);
    uint32_t pool = nvx_ss_pool(ss);
    nvx_ss_peer_redeal(ss, a);
    assert_int_equal(nvx_ss_pool(ss), pool + ka - 3);
    assert_int_equal(nvx_ss_peer_add(ss, &b), 0);
    size_t kb = nvx_ss_reveal(ss, b, 1, rb, NVX_SS_AHEAD_TOTAL, &all);
    assert_true(kb > 0);
    for (size_t j = 0; j < kb; j++)
        for (size_t i = 0; i < 3; i++)
            assert_int_not_equal(rb[j], ra[i]);
    /* a is dealt afresh, its requested ones still count ahead */
    size_t k2 = nvx_ss_reveal(ss, a, 2, rb, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(k2, NVX_SS_AHEAD_MIN - 2);
    nvx_ss_free(ss);
}

/* A fetcher that leaves takes the chunks only it held out of the swarm:
 * they are revealed again (to the next fetcher that asks), the chunks
 * another fetcher holds too are not. */
static void
test_lost_chunks_return(void **state)
{
    (void)state;
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(16, 5, &ss), 0);
    nvx_ss_peer *a, *b;
    assert_int_equal(nvx_ss_peer_add(ss, &a), 0);
    uint32_t ra[NVX_SS_AHEAD_TOTAL], out[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t ka = nvx_ss_reveal(ss, a, 0, ra, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(ka, 16); /* a lone fetcher: all of a small model */
    for (size_t j = 0; j < ka; j++)
        nvx_ss_peer_got(ss, a, ra[j]);
    assert_int_equal(nvx_ss_pool(ss), 0);
    assert_int_equal(nvx_ss_peer_add(ss, &b), 0);
    for (size_t j = 0; j < 6; j++) /* b got 6 of them from a */
        nvx_ss_peer_got(ss, b, ra[j]);
    nvx_ss_peer_remove(ss, a);
    assert_int_equal(nvx_ss_pool(ss), 10);
    size_t kb = nvx_ss_reveal(ss, b, 1, out, NVX_SS_AHEAD_TOTAL, &all);
    assert_int_equal(kb, 10);
    for (size_t j = 0; j < kb; j++)
        for (size_t i = 0; i < 6; i++)
            assert_int_not_equal(out[j], ra[i]);
    nvx_ss_free(ss);
}

/* A resumed fetcher holds half the model and says nothing about it: the
 * reveals it sits on stop counting after NVX_SS_STALE_MS, so it gets the
 * chunks it lacks instead of stalling with a window full of chunks it has. */
static void
test_stale_reveals(void **state)
{
    (void)state;
    enum {
        M = 4096
    };
    nvx_ss *ss;
    assert_int_equal(nvx_ss_new(M, 5, &ss), 0);
    nvx_ss_peer *pp;
    assert_int_equal(nvx_ss_peer_add(ss, &pp), 0);
    static uint8_t has[M], sent[M];
    memset(sent, 0, sizeof(sent));
    for (int i = 0; i < M; i++)
        has[i] = i % 2; /* the odd chunks it had before */
    uint64_t now = 0;
    uint32_t out[NVX_SS_AHEAD_TOTAL];
    bool all = false;
    int missing = M / 2;
    for (int round = 0; round < 10000 && !all; round++) {
        size_t k = nvx_ss_reveal(ss, pp, now, out, NVX_SS_AHEAD_TOTAL, &all);
        for (size_t j = 0; j < k; j++) {
            if (has[out[j]])
                continue; /* it asks only for what it lacks */
            assert_false(sent[out[j]]);
            sent[out[j]] = 1;
            nvx_ss_peer_got(ss, pp, out[j]);
            missing--;
        }
        now += 100;
    }
    assert_int_equal(missing, 0);
    assert_true(all);
    /* Well before the tail timeout: the stale reveals freed the window. */
    assert_true(now < 200000);
    nvx_ss_free(ss);
}

/* Property: fetchers that request only what the seeder revealed to them
 * and trade the rest make the seeder send every chunk exactly once before
 * HAVE ALL, over random orders of events and a fetcher leaving. */
static void
test_each_chunk_once(void **state)
{
    (void)state;
    uint64_t rng = 0x1234567;
    for (int run = 0; run < 20; run++) {
        uint32_t n = 1 + (uint32_t)(rng % 2000);
        nvx_ss *ss;
        assert_int_equal(nvx_ss_new(n, rng, &ss), 0);
        nvx_ss_peer *pp[PEERS];
        bool gone[PEERS] = { false };
        uint32_t *pend[PEERS]; /* revealed, not yet sent */
        size_t npend[PEERS] = { 0 };
        uint32_t *sent = calloc(n, sizeof(*sent));
        for (int i = 0; i < PEERS; i++) {
            assert_int_equal(nvx_ss_peer_add(ss, &pp[i]), 0);
            pend[i] = malloc(sizeof(uint32_t) * (n + NVX_SS_AHEAD_TOTAL));
        }
        bool any_all = false;
        for (int step = 0; step < 200000 && !any_all; step++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            int i = (int)(rng % PEERS);
            if (gone[i])
                continue;
            if (run % 2 && step == 50 && i == 0) { /* a fetcher leaves */
                nvx_ss_peer_remove(ss, pp[i]);
                gone[i] = true;
                continue;
            }
            uint32_t out[NVX_SS_AHEAD_TOTAL];
            bool all;
            size_t k = nvx_ss_reveal(ss, pp[i], (uint64_t)step, out, NVX_SS_AHEAD_TOTAL, &all);
            if (all) {
                any_all = true;
                break;
            }
            for (size_t j = 0; j < k; j++)
                pend[i][npend[i]++] = out[j];
            if (npend[i] > 0) { /* the seeder sends one revealed chunk */
                uint32_t c = pend[i][--npend[i]];
                sent[c]++;
                nvx_ss_peer_got(ss, pp[i], c);
            }
        }
        assert_true(any_all);
        for (uint32_t c = 0; c < n; c++)
            assert_true(sent[c] >= 1 && sent[c] <= (run % 2 ? 2u : 1u));
        for (int i = 0; i < PEERS; i++)
            free(pend[i]);
        free(sent);
        nvx_ss_free(ss);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_reveals_are_distinct),
        cmocka_unit_test(test_leaver_returns_chunks),
        cmocka_unit_test(test_all_after_quiet),
        cmocka_unit_test(test_lost_chunks_return),
        cmocka_unit_test(test_starving_fetcher),
        cmocka_unit_test(test_redeal),
        cmocka_unit_test(test_stale_reveals),
        cmocka_unit_test(test_each_chunk_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
