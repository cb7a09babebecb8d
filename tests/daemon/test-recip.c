/* SPDX-License-Identifier: MIT */
/* Reciprocation (daemon/recip.h) fed events on a fake clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/recip.h"

enum {
    RANK = 1000,
    OPT = 3000,
    NEW = 6000,
    NPEERS = 8,
};

typedef struct fixture {
    nvx_recip *r;
    nvx_recip_peer *p[NPEERS];
    uint64_t now;
} fixture;

static void
setup(fixture *f, uint64_t seed)
{
    const nvx_recip_cfg cfg = { .rank_ms = RANK, .optimistic_ms = OPT, .new_ms = NEW };
    f->now = 1000;
    assert_int_equal(nvx_recip_new(&cfg, seed, f->now, &f->r), 0);
    for (int i = 0; i < NPEERS; i++)
        assert_int_equal(nvx_recip_peer_add(f->r, f->now, &f->p[i]), 0);
}

/* Advances the clock by ms in 250 ms ticks. */
static void
advance(fixture *f, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 250) {
        f->now += 250;
        nvx_recip_tick(f->r, f->now);
    }
}

static int
n_unchoked(const fixture *f)
{
    int k = 0;
    for (int i = 0; i < NPEERS; i++)
        k += nvx_recip_unchoked(f->r, f->p[i]);
    return k;
}

/* Nobody uploaded to us yet (or we are a seeder): nobody holds a regular
 * slot, and with no slot holder waiting nobody is choked. */
static void
test_nobody_uploads(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 1);
    for (int i = 0; i < NPEERS; i++)
        nvx_recip_queued(f.r, f.p[i], 3, f.now);
    advance(&f, 5 * RANK);
    assert_int_equal(n_unchoked(&f), 1); /* the optimistic slot alone */
    int choked = 0;
    for (int i = 0; i < NPEERS; i++)
        choked += nvx_recip_choked(f.r, f.p[i]);
    assert_int_equal(choked, NPEERS - 1); /* its holder waits: the others wait */
    nvx_recip_free(f.r);
}

/* The four that sent the most get the regular slots; one that sent
 * nothing never does; the regular holders are never choked. */
static void
test_rank_by_received(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 2);
    for (int i = 0; i < NPEERS; i++) {
        nvx_recip_queued(f.r, f.p[i], 1, f.now);
        nvx_recip_received(f.r, f.p[i], (uint64_t)i * 10000); /* p[0] sent nothing */
    }
    advance(&f, RANK);
    for (int i = NPEERS - 4; i < NPEERS; i++) {
        assert_true(nvx_recip_unchoked(f.r, f.p[i]));
        assert_false(nvx_recip_choked(f.r, f.p[i]));
    }
    assert_true(nvx_recip_rate(f.p[NPEERS - 1]) > nvx_recip_rate(f.p[1]));
    assert_int_equal(n_unchoked(&f), 5); /* and the optimistic one */
    /* p[1..3] and p[0]: choked while a regular holder waits */
    for (int i = 0; i < NPEERS - 4; i++)
        if (!nvx_recip_unchoked(f.r, f.p[i]))
            assert_true(nvx_recip_choked(f.r, f.p[i]));
    /* The ranking follows who sends: p[1] sends the most now. */
    for (int k = 0; k < 4; k++) {
        nvx_recip_received(f.r, f.p[1], 1000000);
        advance(&f, RANK);
    }
    assert_true(nvx_recip_unchoked(f.r, f.p[1]));
    assert_false(nvx_recip_choked(f.r, f.p[1]));
    nvx_recip_free(f.r);
}

/* Work-conserving: while no slot holder has requests waiting, anyone is
 * served; the optimistic holder is served before those outside the slots
 * and after the regular holders. */
static void
test_idle_slots_serve_anyone(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 3);
    for (int i = 0; i < NPEERS; i++) {
        nvx_recip_queued(f.r, f.p[i], 1, f.now);
        nvx_recip_received(f.r, f.p[i], i < 4 ? 50000 : 0);
    }
    advance(&f, RANK);
    nvx_recip_peer *opt = NULL, *out = NULL;
    for (int i = 4; i < NPEERS; i++) {
        if (nvx_recip_unchoked(f.r, f.p[i]))
            opt = f.p[i];
        else
            out = f.p[i];
    }
    assert_non_null(opt);
    assert_non_null(out);
    assert_true(nvx_recip_choked(f.r, opt)); /* regular holders wait */
    for (int i = 0; i < 4; i++)
        nvx_recip_queued(f.r, f.p[i], 0, f.now);
    assert_false(nvx_recip_choked(f.r, opt)); /* they are served: its turn */
    assert_true(nvx_recip_choked(f.r, out));
    nvx_recip_queued(f.r, opt, 0, f.now);
    assert_false(nvx_recip_choked(f.r, out)); /* idle uplink: anyone */
    /* A regular holder leaves while waiting: the count follows. */
    nvx_recip_queued(f.r, f.p[0], 2, f.now);
    assert_true(nvx_recip_choked(f.r, out));
    nvx_recip_peer_remove(f.r, f.p[0]);
    f.p[0] = NULL;
    assert_false(nvx_recip_choked(f.r, out));
    nvx_recip_peer_remove(f.r, NULL);
    nvx_recip_free(f.r);
}

/* Never starve: the optimistic slot rotates every OPT ms among the
 * interested peers outside the regular slots; each gets it in time. */
static void
test_optimistic_rotates(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 4);
    int held[NPEERS] = { 0 };
    nvx_recip_peer *last = NULL;
    int changes = 0;
    for (int k = 0; k < 60; k++) {
        for (int i = 0; i < NPEERS; i++)
            nvx_recip_queued(f.r, f.p[i], 1, f.now);
        advance(&f, OPT);
        for (int i = 0; i < NPEERS; i++)
            if (nvx_recip_unchoked(f.r, f.p[i])) {
                held[i]++;
                changes += f.p[i] != last;
                last = f.p[i];
            }
    }
    for (int i = 0; i < NPEERS; i++)
        assert_true(held[i] > 0);
    assert_true(changes >= 55); /* the last holder is drawn only when alone */
    /* A peer that stops asking loses the slot at the next tick. */
    for (int i = 0; i < NPEERS; i++)
        nvx_recip_queued(f.r, f.p[i], 0, f.now);
    advance(&f, RANK + 250);
    assert_int_equal(n_unchoked(&f), 0);
    nvx_recip_free(f.r);
}

/* Newcomers are favoured for the optimistic slot (NVX_RECIP_NEW_WEIGHT):
 * 200 newcomers in turn, each new for two draws beside 8 old peers. */
static void
test_newcomers_favoured(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 5);
    advance(&f, NEW); /* the first eight are old now */
    int fresh_held = 0;
    for (int k = 0; k < 200; k++) {
        nvx_recip_peer *fresh;
        assert_int_equal(nvx_recip_peer_add(f.r, f.now, &fresh), 0);
        for (int d = 0; d < NEW / OPT; d++) {
            for (int i = 0; i < NPEERS; i++)
                nvx_recip_queued(f.r, f.p[i], 1, f.now);
            nvx_recip_queued(f.r, fresh, 1, f.now);
            advance(&f, OPT);
            fresh_held += nvx_recip_unchoked(f.r, fresh);
        }
        nvx_recip_peer_remove(f.r, fresh);
    }
    /* weight 3 against 8 at 1 (the last holder left out of each draw):
     * about 3/10 of 400 draws; unweighted it would be about 1/8.5 */
    assert_true(fresh_held > 80);
    nvx_recip_free(f.r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nobody_uploads),          cmocka_unit_test(test_rank_by_received),
        cmocka_unit_test(test_idle_slots_serve_anyone), cmocka_unit_test(test_optimistic_rotates),
        cmocka_unit_test(test_newcomers_favoured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
