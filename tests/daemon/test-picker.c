/* SPDX-License-Identifier: MIT */
/* Unit tests of the sans-I/O chunk picker (daemon/picker.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/picker.h"

#define KiB 1024u

static nvx_picker *
make(uint32_t n, uint32_t len)
{
    uint32_t *lens = malloc(n * sizeof(*lens));
    for (uint32_t i = 0; i < n; i++)
        lens[i] = len;
    nvx_picker *pk;
    assert_int_equal(nvx_picker_new(n, lens, &pk), 0);
    free(lens);
    return pk;
}

static void
test_new_bad(void **state)
{
    uint32_t len = 1;
    nvx_picker *pk;
    assert_int_equal(nvx_picker_new(0, &len, &pk), -EINVAL);
    assert_int_equal(nvx_picker_new(NVX_PICKER_CHUNKS_MAX + 1, &len, &pk), -EINVAL);
    assert_int_equal(nvx_picker_new(1, NULL, &pk), -EINVAL);
}

/* One peer with everything: every chunk requested once, in order, until
 * the window is full; completing them finishes the transfer. */
static void
test_single_peer(void **state)
{
    nvx_picker *pk = make(100, 64 * KiB);
    nvx_picker_peer *pp;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &pp), 0);
    int64_t first = nvx_picker_next(pk, pp, 0);
    assert_int_equal(first, 0);
    uint32_t n = 1;
    while (nvx_picker_next(pk, pp, 0) >= 0)
        n++;
    /* The initial window holds NVX_PICKER_WINDOW_INIT bytes (rounded up). */
    assert_int_equal(n, NVX_PICKER_WINDOW_INIT / (64 * KiB));
    assert_true(nvx_picker_peer_inflight(pp) >= NVX_PICKER_WINDOW_INIT);
    uint64_t now = 0;
    uint32_t done = 0;
    uint8_t seen[100] = { 0 };
    while (!nvx_picker_done(pk)) {
        /* Complete the oldest request: chunks come in index order here. */
        uint32_t idx = done;
        assert_int_equal(nvx_picker_received(pk, pp, idx, now), 1);
        assert_false(seen[idx]);
        seen[idx] = 1;
        nvx_picker_verified(pk, idx, true);
        done++;
        now += 1;
        while (nvx_picker_next(pk, pp, now) >= 0)
            ;
    }
    assert_int_equal(nvx_picker_n_have(pk), 100);
    assert_int_equal(nvx_picker_peer_inflight(pp), 0);
    nvx_picker_free(pk);
}

/* Rarest first: chunks only one peer has go before chunks everyone has. */
static void
test_rarest_first(void **state)
{
    nvx_picker *pk = make(16, 64 * KiB);
    uint8_t bits_b[2] = { 0xff, 0xff }; /* b: all 16 */
    uint8_t bits_c[2] = { 0xff, 0x0f }; /* c: 0..11 */
    nvx_picker_peer *a, *b, *c;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_peer_add(pk, bits_b, 16, 0, NULL, &b), 0);
    assert_int_equal(nvx_picker_peer_add(pk, bits_c, 16, 0, NULL, &c), 0);
    /* Chunks 12..15 are held by a and b only (2 holders), 0..11 by 3. */
    assert_int_equal(nvx_picker_next(pk, a, 0), 12);
    assert_int_equal(nvx_picker_next(pk, a, 0), 13);
    /* c has none of 12..15: it gets the first common one. */
    assert_int_equal(nvx_picker_next(pk, c, 0), 0);
    nvx_picker_free(pk);
}

/* A peer that lacks a chunk is never asked for it. */
static void
test_peer_bitmap(void **state)
{
    nvx_picker *pk = make(8, 1 * KiB);
    uint8_t bits = 0x05; /* chunks 0 and 2 */
    nvx_picker_peer *pp;
    assert_int_equal(nvx_picker_peer_add(pk, &bits, 8, 0, NULL, &pp), 0);
    assert_int_equal(nvx_picker_next(pk, pp, 0), 0);
    assert_int_equal(nvx_picker_next(pk, pp, 0), 2);
    assert_int_equal(nvx_picker_next(pk, pp, 0), -1);
    nvx_picker_peer_have(pk, pp, 5);
    assert_int_equal(nvx_picker_next(pk, pp, 0), 5);
    nvx_picker_free(pk);
}

/* Chunks present before the transfer (resume, local copies) are skipped. */
static void
test_resume(void **state)
{
    nvx_picker *pk = make(4, 1 * KiB);
    nvx_picker_set_have(pk, 0);
    nvx_picker_set_have(pk, 2);
    assert_int_equal(nvx_picker_n_have(pk), 2);
    nvx_picker_peer *pp;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &pp), 0);
    assert_int_equal(nvx_picker_next(pk, pp, 0), 1);
    assert_int_equal(nvx_picker_next(pk, pp, 0), 3);
    assert_false(nvx_picker_done(pk));
    nvx_picker_free(pk);
}

/* Endgame: when every missing chunk is in flight, a second peer duplicates
 * them (at most NVX_PICKER_ENDGAME_DUP requests per chunk); when one copy
 * arrives the other holder is named for CANCEL and the late copy is
 * redundant. */
static void
test_endgame(void **state)
{
    nvx_picker *pk = make(2, 1 * KiB);
    nvx_picker_peer *a, *b, *c;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &b), 0);
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &c), 0);
    assert_int_equal(nvx_picker_next(pk, a, 0), 0);
    assert_int_equal(nvx_picker_next(pk, a, 0), 1);
    assert_false(nvx_picker_endgame(pk));
    int64_t d1 = nvx_picker_next(pk, b, 0);
    assert_true(d1 == 0 || d1 == 1);
    assert_true(nvx_picker_endgame(pk));
    int64_t d2 = nvx_picker_next(pk, b, 0);
    assert_true((d2 == 0 || d2 == 1) && d2 != d1);
    assert_int_equal(nvx_picker_next(pk, b, 0), -1); /* no third chunk to dup */
    assert_int_equal(nvx_picker_next(pk, c, 0), -1); /* each chunk at the dup limit */
    nvx_picker_peer *holders[4];
    assert_int_equal(nvx_picker_holders(pk, 0, holders, 4), 2);
    assert_int_equal(nvx_picker_received(pk, b, 0, 10), 1);
    nvx_picker_verified(pk, 0, true);
    assert_int_equal(nvx_picker_holders(pk, 0, holders, 4), 1);
    assert_ptr_equal(holders[0], a);
    /* a's copy arrives anyway: redundant. */
    assert_int_equal(nvx_picker_received(pk, a, 0, 10), 0);
    /* Unsolicited data is refused. */
    assert_int_equal(nvx_picker_received(pk, c, 1, 10), -ENOENT);
    nvx_picker_free(pk);
}

/* No endgame while many chunks are missing: a peer with a large window
 * would otherwise duplicate most of a small model. */
static void
test_endgame_late(void **state)
{
    uint32_t n = NVX_PICKER_ENDGAME_MISSING + 1;
    nvx_picker *pk = make(n, 1 * KiB);
    nvx_picker_peer *a, *b;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &b), 0);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(nvx_picker_next(pk, a, 0), i);
    assert_int_equal(nvx_picker_next(pk, b, 0), -1);
    assert_false(nvx_picker_endgame(pk));
    assert_int_equal(nvx_picker_received(pk, a, 0, 1), 1);
    nvx_picker_verified(pk, 0, true);
    assert_true(nvx_picker_next(pk, b, 1) >= 1); /* now within the limit */
    assert_true(nvx_picker_endgame(pk));
    nvx_picker_free(pk);
}

/* A chunk that fails verification goes back to the pool and is requested
 * from another peer; the bad peer is removed. */
static void
test_bad_chunk(void **state)
{
    nvx_picker *pk = make(1, 1 * KiB);
    nvx_picker_peer *a, *b;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &b), 0);
    assert_int_equal(nvx_picker_next(pk, a, 0), 0);
    assert_int_equal(nvx_picker_received(pk, a, 0, 1), 1);
    /* While verifying, nobody is asked for it. */
    assert_int_equal(nvx_picker_next(pk, b, 1), -1);
    nvx_picker_verified(pk, 0, false);
    nvx_picker_peer_remove(pk, a);
    assert_int_equal(nvx_picker_next(pk, b, 2), 0);
    assert_int_equal(nvx_picker_received(pk, b, 0, 3), 1);
    nvx_picker_verified(pk, 0, true);
    assert_true(nvx_picker_done(pk));
    nvx_picker_free(pk);
}

/* A peer that disconnects releases its requests to the others. */
static void
test_peer_remove_releases(void **state)
{
    nvx_picker *pk = make(3, 1 * KiB);
    nvx_picker_peer *a, *b;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_next(pk, a, 0), 0);
    assert_int_equal(nvx_picker_next(pk, a, 0), 1);
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &b), 0);
    assert_int_equal(nvx_picker_next(pk, b, 0), 2);
    nvx_picker_peer_remove(pk, a);
    assert_int_equal(nvx_picker_next(pk, b, 0), 0);
    assert_int_equal(nvx_picker_next(pk, b, 0), 1);
    nvx_picker_cancel(pk, b, 1);
    assert_int_equal(nvx_picker_next(pk, b, 0), 1);
    nvx_picker_free(pk);
}

/* The window follows the measured rate: fast deliveries grow it to
 * rate * NVX_PICKER_WINDOW_MS, slow ones shrink it, within the bounds. */
static void
test_window_adapts(void **state)
{
    nvx_picker *pk = make(100000, 64 * KiB);
    nvx_picker_peer *pp;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &pp), 0);
    uint64_t now = 0;
    /* Fast peer: 64 chunks (4 MiB) every 10 ms = 400 MiB/s. */
    for (int round = 0; round < 200; round++) {
        int64_t idx;
        uint32_t got[2048];
        size_t n = 0;
        while (n < 64 && (idx = nvx_picker_next(pk, pp, now)) >= 0)
            got[n++] = (uint32_t)idx;
        now += 10;
        for (size_t i = 0; i < n; i++) {
            nvx_picker_received(pk, pp, got[i], now);
            nvx_picker_verified(pk, got[i], true);
        }
    }
    uint64_t fast = nvx_picker_peer_window(pp);
    assert_true(fast > NVX_PICKER_WINDOW_INIT);
    assert_true(fast <= NVX_PICKER_WINDOW_MAX);
    /* Slow peer: one chunk every 100 ms = 640 KiB/s. */
    for (int round = 0; round < 100; round++) {
        int64_t idx = nvx_picker_next(pk, pp, now);
        now += 100;
        if (idx >= 0) {
            nvx_picker_received(pk, pp, (uint32_t)idx, now);
            nvx_picker_verified(pk, (uint32_t)idx, true);
        }
    }
    uint64_t slow = nvx_picker_peer_window(pp);
    assert_true(slow < fast);
    assert_true(slow >= NVX_PICKER_WINDOW_MIN);
    nvx_picker_peer_busy(pk, pp);
    assert_true(nvx_picker_peer_window(pp) >= NVX_PICKER_WINDOW_MIN);
    nvx_picker_free(pk);
}

/* Property: random deliveries, failures and disconnects over 4 peers with
 * random bitmaps always end with every chunk HAVE (chunks someone has). */
static void
test_random_runs(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int run = 0; run < 50; run++) {
        uint32_t n = 1 + (uint32_t)(seed % 300);
        nvx_picker *pk = make(n, 4 * KiB);
        if (run % 2)
            nvx_picker_seed(pk, seed); /* random ties: the same property */
        nvx_picker_peer *pp[4];
        uint8_t *bits = calloc((n + 7) / 8, 1);
        for (uint32_t i = 0; i < n; i++)
            if ((seed >> (i % 60)) & 1)
                bits[i / 8] |= (uint8_t)(1u << (i % 8));
        assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &pp[0]), 0);
        for (int k = 1; k < 4; k++)
            assert_int_equal(nvx_picker_peer_add(pk, bits, n, 0, NULL, &pp[k]), 0);
        uint64_t now = 0;
        for (int step = 0; step < 100000 && !nvx_picker_done(pk); step++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            nvx_picker_peer *p = pp[seed % 4];
            int64_t idx = nvx_picker_next(pk, p, now);
            now++;
            if (idx < 0)
                continue;
            int r = nvx_picker_received(pk, p, (uint32_t)idx, now);
            assert_true(r == 0 || r == 1);
            if (r == 1)
                nvx_picker_verified(pk, (uint32_t)idx, (seed >> 20) % 10 != 0);
        }
        assert_true(nvx_picker_done(pk));
        free(bits);
        nvx_picker_free(pk);
    }
}

/* Issue 10: fetchers that start together from one seeder each asked for
 * chunk 0, then 1, ...; none ever held a chunk another lacked. Seeded
 * pickers (one per fetcher) spread: 8 fetchers' first 4 requests of a
 * 1,000-chunk model hit (nearly) 32 distinct chunks, where unseeded they
 * hit 4. */
static void
test_seeded_fetchers_spread(void **state)
{
    enum {
        FETCHERS = 8,
        FIRST = 4,
        CHUNKS = 1000
    };
    for (int seeded = 0; seeded < 2; seeded++) {
        uint8_t asked[CHUNKS] = { 0 };
        unsigned distinct = 0;
        for (int f = 0; f < FETCHERS; f++) {
            nvx_picker *pk = make(CHUNKS, 64 * KiB);
            if (seeded)
                nvx_picker_seed(pk, 0x5eed0000u + (uint64_t)f);
            nvx_picker_peer *seeder;
            assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &seeder), 0);
            for (int k = 0; k < FIRST; k++) {
                int64_t idx = nvx_picker_next(pk, seeder, 0);
                assert_true(idx >= 0 && idx < CHUNKS);
                distinct += !asked[idx];
                asked[idx] = 1;
            }
            nvx_picker_free(pk);
        }
        if (seeded)
            assert_true(distinct >= FETCHERS * FIRST - 4);
        else
            assert_int_equal(distinct, FIRST);
    }
}

/* Seeded, rarest first still wins over the random start, and a chunk is
 * never handed out twice before the endgame; every chunk is picked once. */
static void
test_seeded_rarest_and_complete(void **state)
{
    nvx_picker *pk = make(64, 1 * KiB);
    nvx_picker_seed(pk, 42);
    uint8_t bits[8];
    memset(bits, 0xff, sizeof(bits));
    bits[5] = 0; /* b lacks 40..47: those have one holder (a) */
    nvx_picker_peer *a, *b;
    assert_int_equal(nvx_picker_peer_add(pk, NULL, 0, 0, NULL, &a), 0);
    assert_int_equal(nvx_picker_peer_add(pk, bits, 64, 0, NULL, &b), 0);
    for (int k = 0; k < 8; k++) {
        int64_t idx = nvx_picker_next(pk, a, 0);
        assert_true(idx >= 40 && idx < 48);
    }
    uint8_t seen[64] = { 0 };
    for (int k = 40; k < 48; k++)
        seen[k] = 1;
    for (int k = 0; k < 56; k++) {
        int64_t idx = nvx_picker_next(pk, b, 0);
        assert_true(idx >= 0 && idx < 64);
        assert_false(seen[idx]);
        seen[idx] = 1;
    }
    assert_int_equal(nvx_picker_next(pk, b, 0), -1); /* nothing fresh left for b */
    nvx_picker_free(pk);
}

static void
test_badlist(void **state)
{
    nvx_badlist *b = calloc(1, sizeof(*b));
    uint8_t id[32] = { 1 }, other[32] = { 2 };
    assert_false(nvx_badlist_has(b, id, 0));
    nvx_badlist_add(b, id, 1000);
    assert_true(nvx_badlist_has(b, id, 1000));
    assert_false(nvx_badlist_has(b, other, 1000));
    assert_false(nvx_badlist_has(b, id, 1000 + NVX_BADLIST_MS));
    /* Full list: the entry that expires first makes room. */
    for (int i = 0; i < NVX_BADLIST_MAX + 5; i++) {
        uint8_t x[32] = { 0 };
        x[0] = 3;
        x[1] = (uint8_t)i;
        x[2] = (uint8_t)(i >> 8);
        nvx_badlist_add(b, x, 2000 + (uint64_t)i);
    }
    assert_int_equal(b->n, NVX_BADLIST_MAX);
    assert_false(nvx_badlist_has(b, id, 2000));
    free(b);
}

/* Address keys: one per host whatever the port, none for loopback. */
static void
test_badlist_addr(void **state)
{
    (void)state;
    uint8_t a[32], b[32], c[32], d[32], e[32];
    assert_true(nvx_badlist_addr_key("198.51.100.7:4001", a));
    assert_true(nvx_badlist_addr_key("198.51.100.7:5999", b));
    assert_memory_equal(a, b, 32);
    assert_true(nvx_badlist_addr_key("198.51.100.8:4001", c));
    assert_memory_not_equal(a, c, 32);
    assert_true(nvx_badlist_addr_key("[2001:db8::1]:4001", d));
    assert_true(nvx_badlist_addr_key("[2001:db8::1]:80", e));
    assert_memory_equal(d, e, 32);
    assert_memory_not_equal(a, d, 32);
    assert_false(nvx_badlist_addr_key("127.0.0.1:4001", e));
    assert_false(nvx_badlist_addr_key("127.9.9.9:1", e));
    assert_false(nvx_badlist_addr_key("[::1]:4001", e));
    assert_false(nvx_badlist_addr_key("", e));
    nvx_badlist bl = { 0 };
    nvx_badlist_add(&bl, a, 1000);
    assert_true(nvx_badlist_has(&bl, b, 1001)); /* the same host, another port */
    assert_false(nvx_badlist_has(&bl, c, 1001));
    assert_false(nvx_badlist_has(&bl, b, 1000 + NVX_BADLIST_MS));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bad),
        cmocka_unit_test(test_single_peer),
        cmocka_unit_test(test_rarest_first),
        cmocka_unit_test(test_peer_bitmap),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_endgame),
        cmocka_unit_test(test_endgame_late),
        cmocka_unit_test(test_bad_chunk),
        cmocka_unit_test(test_peer_remove_releases),
        cmocka_unit_test(test_window_adapts),
        cmocka_unit_test(test_random_runs),
        cmocka_unit_test(test_seeded_fetchers_spread),
        cmocka_unit_test(test_seeded_rarest_and_complete),
        cmocka_unit_test(test_badlist),
        cmocka_unit_test(test_badlist_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
