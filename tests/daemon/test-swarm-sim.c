/* SPDX-License-Identifier: MIT */
/*
 * A deterministic swarm: hundreds of transfer engines (daemon/xfer.h) and
 * the super-seeding core (daemon/superseed.h) in one process, on a clock
 * that only this file advances, each run drawn from one 64-bit seed.
 *
 * The world: one seeder and SIM_NODES - 1 fetchers that start together.
 * Every fetcher is connected to the seeder (as bench-swarm.sh's fetchers,
 * told only the seeder's address) and to SIM_DEGREE random others (peer
 * exchange). Each node's uplink is capped (SIM_UPLINK bytes/s) and shared
 * round-robin by its sessions, as TCP flows share a tbf-capped link; each
 * message costs its size on the sender's uplink, then SIM_LATENCY_MS, and
 * with probability SIM_LOSS_PPM one retransmission timeout more, in order
 * per session. Serving is the node's (serve.c's policy, reduced): WANT is
 * answered HAVE ALL (complete; super-seeding reveals first), HAVE with the
 * stored chunks (partial) or NOT_FOUND; REQUEST with DATA or NOT_FOUND.
 *
 * Faults, per seed: churn (a fifth of the fetchers die at random moments
 * of the transfer; half of them come back after a while and resume from
 * what they stored), a partition that cuts a quarter of the nodes off and
 * heals, disks that stall (store answers late) and disks that fill (store
 * fails with ENOSPC: the fetch fails and the node's user runs it again).
 *
 * Asserted for every seed: every node that is up at the end holds a
 * verified copy; no node stores a chunk twice; no session is dropped as
 * stalled or broken (everyone here is honest); the seeder uploads at most
 * SIM_SEEDER_COPIES_MAX copies. In the "seeder leaves" runs the seeder
 * dies as soon as each chunk has left it once, and the swarm must still
 * complete. A failing seed is printed with the line that replays it:
 * NVX_SIM_SEED=<seed> (one seed), NVX_SIM_SEEDS=<n> (how many per test).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/util.h"
#include "proto/control.h"
#include "swarmsim.h"

typedef struct sim_opts {
    bool faults;        /* churn, partition, disks */
    bool seeder_leaves; /* once each chunk left it */
    int nodes;          /* 0: SIM_NODES */
    int silent;         /* nodes 1..silent claim every chunk and send nothing */
    int freeriders;     /* the last this many nodes fetch but never serve */
    bool recip_off;     /* no reciprocation: serve all round-robin (control) */
} sim_opts;

typedef struct sim_result {
    double time_x;        /* last completion / ideal */
    double seeder_copies; /* DATA the seeder uploaded / model */
    double most_down;     /* most DATA one node received / model */
    unsigned died, restarts;
    double honest_x, free_x; /* median completion of honest fetchers, free-riders / ideal */
} sim_result;

static void
setup(sim *s, uint64_t seed, const sim_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->seed = s->rng = seed;
    for (size_t i = 0; i < sizeof(s->content); i++)
        s->content[i] = (uint8_t)nvx_splitmix64(&s->rng);
    for (size_t i = 0; i < sizeof(s->manifest); i++)
        s->manifest[i] = (uint8_t)nvx_splitmix64(&s->rng);
    s->id[0] = (uint8_t)seed;
    s->seeder_leaves = o->seeder_leaves;
    s->recip_off = o->recip_off;
    s->n_nodes = o->nodes ? o->nodes : SIM_NODES;
    int nn = s->n_nodes;
    /* neighbours: the seeder and SIM_DEGREE random fetchers, both ways */
    static int adj[SIM_NODES][SIM_NODES];
    memset(adj, 0, sizeof(adj));
    for (int i = 1; i < nn; i++) {
        adj[0][i] = adj[i][0] = 1;
        for (int k = 0; k < SIM_DEGREE / 2; k++) {
            int j = 1 + (int)rnd(s, (uint64_t)nn - 1);
            if (j != i)
                adj[i][j] = adj[j][i] = 1;
        }
        for (int j = 1; j <= o->silent; j++) /* the hostile reach everyone */
            adj[i][j] = adj[j][i] = i != j;
    }
    for (int i = 0; i < nn; i++) {
        snode *n = &s->nodes[i];
        n->s = s;
        n->idx = i;
        n->nbrs = calloc(SIM_NODES, sizeof(int));
        assert_non_null(n->nbrs);
        for (int j = 0; j < nn; j++)
            if (adj[i][j])
                n->nbrs[n->n_nbrs++] = j;
    }
    snode *seeder = &s->nodes[0];
    seeder->seeder = seeder->complete = seeder->has_manifest = true;
    memset(seeder->stored, 0xff, sizeof(seeder->stored));
    s->waiting = (unsigned)(nn - 1 - o->silent);
    for (int i = 1; i <= o->silent; i++) {
        snode *n = &s->nodes[i];
        n->silent = n->complete = true; /* never fetches, never counted */
        ev_new(s, US(100), EV_RECONNECT, n);
    }
    for (int i = nn - o->freeriders; i < nn; i++)
        s->nodes[i].freerider = true;
    uint64_t ideal = US(1000) * SIM_CHUNKS * SIM_CHUNK / SIM_UPLINK;
    if (o->faults) {
        for (int i = 1; i < nn; i++) {
            snode *n = &s->nodes[i];
            if (rnd(s, 100) < SIM_CHURN_PCT) {
                ev_new(s, US(500) + rnd(s, ideal * 8 / 10), EV_DIE, n);
                if (rnd(s, 2))
                    n->gone_for_good = true;
                else
                    ev_new(s, ideal + US(1000) + rnd(s, US(4000)), EV_REVIVE, n);
            }
            if (rnd(s, 100) < 5) {
                n->disk_stall_from_us = rnd(s, ideal);
                n->disk_stall_until_us = n->disk_stall_from_us + US(500) + rnd(s, US(2500));
            }
            if (rnd(s, 100) < 2) {
                n->disk_full_from_us = US(500) + rnd(s, ideal);
                n->disk_full_until_us = n->disk_full_from_us + US(1000) + rnd(s, US(2000));
            }
        }
        if (rnd(s, 2)) {
            uint64_t at = US(1000) + rnd(s, US(5000));
            ev_new(s, at, EV_CUT, NULL);
            ev_new(s, at + US(2000) + rnd(s, US(4000)), EV_HEAL, NULL);
        }
    }
    for (int i = 0; i < nn; i++)
        node_start(s, &s->nodes[i]);
}

static void
teardown(sim *s)
{
    for (int i = 0; i < s->n_nodes; i++) {
        snode *n = &s->nodes[i];
        node_die(s, n);
        free(n->ends);
        free(n->nbrs);
    }
    sev *e;
    while ((e = ev_pop(s)))
        ev_free(e);
    free(s->heap);
    while (s->links) {
        slink *l = s->links;
        s->links = l->next;
        free(l);
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v; returns its median (the upper one of an even count). */
static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

/* Runs one seed; returns false (and s->fail says why) when it failed. */
static bool
run(sim *s, uint64_t seed, const sim_opts *o, sim_result *r)
{
    setup(s, seed, o);
    sev *ev;
    while (s->waiting > 0 && !s->fail[0] && (ev = ev_pop(s))) {
        if (ev->t > US(SIM_LIMIT_MS)) {
            fail_run(s, "%u nodes still fetching after %d s", s->waiting, SIM_LIMIT_MS / 1000);
            ev_free(ev);
            break;
        }
        s->now_us = ev->t;
        handle(s, ev);
        ev_free(ev);
    }
    double model = (double)SIM_CHUNKS * SIM_CHUNK;
    double ideal_us = US(1000) * model / SIM_UPLINK;
    double honest[SIM_NODES], freer[SIM_NODES];
    size_t n_honest = 0, n_free = 0;
    uint64_t last = 0;
    *r = (sim_result){ 0 };
    for (int i = 1; i < s->n_nodes && !s->fail[0]; i++) {
        snode *n = &s->nodes[i];
        if (n->silent)
            continue;
        r->died += n->gen > 0;
        r->restarts += n->restarts;
        if (n->data_down / model > r->most_down)
            r->most_down = n->data_down / model;
        if (n->gone_for_good)
            continue;
        if (!n->complete)
            fail_run(s, "node %d is up and has %s", i, n->x ? "not finished" : "no copy");
        for (int c = 0; c < SIM_CHUNKS; c++)
            if (!bit(n->stored, (uint32_t)c))
                fail_run(s, "node %d ended without chunk %d", i, c);
        if (n->done_us > last)
            last = n->done_us;
        if (n->freerider)
            freer[n_free++] = n->done_us / ideal_us;
        else
            honest[n_honest++] = n->done_us / ideal_us;
    }
    r->time_x = (double)last / ideal_us;
    if (n_honest && n_free && !s->fail[0]) {
        r->honest_x = median(honest, n_honest);
        r->free_x = median(freer, n_free);
    }
    r->seeder_copies = s->nodes[0].data_up / model;
    bool ok = !s->fail[0];
    teardown(s);
    return ok;
}

/* Runs the seeds of one scenario; fails with the first failing seed. */
static void
scenario(const char *name, const sim_opts *o, uint64_t base, double copies_max, double time_max)
{
    const char *one = getenv("NVX_SIM_SEED");
    const char *ns = getenv("NVX_SIM_SEEDS");
    unsigned n = ns ? (unsigned)strtoul(ns, NULL, 10) : SIM_SEEDS;
    if (one)
        n = 1;
    sim *s = calloc(1, sizeof(*s));
    double *tx = calloc(n, sizeof(double)), *cp = calloc(n, sizeof(double));
    assert_true(s && tx && cp);
    double most_down = 0;
    unsigned died = 0, restarts = 0;
    for (unsigned k = 0; k < n; k++) {
        uint64_t seed = one ? strtoull(one, NULL, 0) : base + k;
        sim_result r;
        if (!run(s, seed, o, &r))
            fail_msg("%s: seed %llu failed: %s (replay: NVX_SIM_SEED=%llu)", name,
                     (unsigned long long)seed, s->fail, (unsigned long long)seed);
        if (r.seeder_copies > copies_max || r.time_x > time_max)
            fail_msg("%s: seed %llu: the seeder uploaded %.2f copies (at most %.2f), the last "
                     "fetcher took %.2f x ideal (at most %.2f) (replay: NVX_SIM_SEED=%llu)",
                     name, (unsigned long long)seed, r.seeder_copies, copies_max, r.time_x,
                     time_max, (unsigned long long)seed);
        tx[k] = r.time_x;
        cp[k] = r.seeder_copies;
        if (r.most_down > most_down)
            most_down = r.most_down;
        died += r.died;
        restarts += r.restarts;
    }
    qsort(tx, n, sizeof(double), cmp_double);
    qsort(cp, n, sizeof(double), cmp_double);
    print_message("%s: %u seeds x %d nodes: last fetcher done at %.2f x ideal (median; %.2f-%.2f), "
                  "seeder uploaded %.2f copies (median; %.2f-%.2f), most one node received "
                  "%.2f copies; %u deaths, %u fetches rerun after a full disk\n",
                  name, n, SIM_NODES, tx[n / 2], tx[0], tx[n - 1], cp[n / 2], cp[0], cp[n - 1],
                  most_down, died, restarts);
    free(tx);
    free(cp);
    free(s);
}

static void
test_calm(void **state)
{
    (void)state;
    sim_opts o = { 0 };
    scenario("calm", &o, 1000, 1.05, 2.2);
}

static void
test_faults(void **state)
{
    (void)state;
    sim_opts o = { .faults = true };
    scenario("churn+partition+disks", &o, 2000, 2.0, 4);
}

static void
test_seeder_leaves(void **state)
{
    (void)state;
    sim_opts o = { .seeder_leaves = true };
    scenario("seeder leaves after one copy", &o, 3000, 1.0, 2.2);
}

/* Issue 9's stall: 8 peers that claim every chunk and send nothing (and
 * come back at once, as new keys are free) beside one honest seeder: the
 * fetch takes at most twice as long as from the honest seeder alone. */
static void
test_silent_peers(void **state)
{
    (void)state;
    const char *ns = getenv("NVX_SIM_SEEDS");
    unsigned n = ns ? (unsigned)strtoul(ns, NULL, 10) : SIM_SEEDS;
    sim *s = calloc(1, sizeof(*s));
    double *ratio = calloc(n, sizeof(double));
    assert_true(s && ratio);
    unsigned punished = 0;
    for (unsigned k = 0; k < n; k++) {
        uint64_t seed = 4000 + k;
        sim_opts alone = { .nodes = 2 }, hostile = { .nodes = 10, .silent = 8 };
        sim_result a, h;
        if (!run(s, seed, &alone, &a))
            fail_msg("honest alone: seed %llu failed: %s", (unsigned long long)seed, s->fail);
        if (!run(s, seed, &hostile, &h))
            fail_msg("8 silent peers: seed %llu failed: %s (replay: NVX_SIM_SEED=%llu)",
                     (unsigned long long)seed, s->fail, (unsigned long long)seed);
        punished += s->punished;
        ratio[k] = h.time_x / a.time_x;
        if (ratio[k] > 2.0)
            fail_msg("8 silent peers: seed %llu: %.2f x the time from the honest seeder alone "
                     "(%.1f s against %.1f s)",
                     (unsigned long long)seed, ratio[k], h.time_x * 8, a.time_x * 8);
    }
    qsort(ratio, n, sizeof(double), cmp_double);
    print_message("8 silent peers + 1 honest seeder: %u seeds: %.2f x the time from the honest "
                  "seeder alone (median; %.2f-%.2f); %u silent sessions punished\n",
                  n, ratio[n / 2], ratio[0], ratio[n - 1], punished);
    free(ratio);
    free(s);
}

/* Free-riders: 1 seeder, 12 honest fetchers and 6 that fetch but never
 * serve (they announce nothing and answer WANT with NOT_FOUND). With
 * reciprocation (daemon/recip.h) the honest fetchers, who upload to each
 * other, hold each other's slots while the uplinks are contended: their
 * median completion comes before the free-riders' median, and everyone
 * completes (a free-rider gets the optimistic slot, idle capacity and the
 * seeder's fair share). Asserted across seeds: the median ratio of the
 * two medians is at most 0.9, and at most a tenth of the seeds have the
 * honest not faster. Each seed also runs without reciprocation (the
 * control, printed beside it): there the free-riders are served as well as
 * anyone. */
static void
test_freeriders(void **state)
{
    (void)state;
    const char *ns = getenv("NVX_SIM_SEEDS");
    unsigned n = ns ? (unsigned)strtoul(ns, NULL, 10) : SIM_SEEDS;
    sim *s = calloc(1, sizeof(*s));
    double *on = calloc(n, sizeof(double)), *off = calloc(n, sizeof(double));
    double *hx = calloc(n, sizeof(double)), *fx = calloc(n, sizeof(double));
    assert_true(s && on && off && hx && fx);
    unsigned slower = 0; /* seeds where the honest were not faster */
    for (unsigned k = 0; k < n; k++) {
        uint64_t seed = 5000 + k;
        sim_opts with = { .nodes = 19, .freeriders = 6 };
        sim_opts without = { .nodes = 19, .freeriders = 6, .recip_off = true };
        sim_result a, b;
        if (!run(s, seed, &with, &a))
            fail_msg("free-riders: seed %llu failed: %s (replay: NVX_SIM_SEED=%llu)",
                     (unsigned long long)seed, s->fail, (unsigned long long)seed);
        if (!run(s, seed, &without, &b))
            fail_msg("free-riders, no reciprocation: seed %llu failed: %s",
                     (unsigned long long)seed, s->fail);
        on[k] = a.honest_x / a.free_x;
        off[k] = b.honest_x / b.free_x;
        hx[k] = a.honest_x;
        fx[k] = a.free_x;
        slower += a.honest_x >= a.free_x;
    }
    double mh = median(hx, n), mf = median(fx, n), mon = median(on, n), moff = median(off, n);
    print_message("6 free-riders + 12 honest + 1 seeder: %u seeds: honest done at %.2f x ideal, "
                  "free-riders at %.2f (medians); honest/free-rider time %.2f (median; "
                  "%.2f-%.2f), without reciprocation %.2f (median; %.2f-%.2f)\n",
                  n, mh, mf, mon, on[0], on[n - 1], moff, off[0], off[n - 1]);
    /* One seed's medians (12 and 6 nodes) vary; across seeds the honest
     * are clearly faster (without reciprocation: about 1.15). */
    if (mon > 0.9 || slower * 10 > n)
        fail_msg("free-riders: honest/free-rider time %.2f (median, at most 0.90); honest not "
                 "faster in %u of %u seeds (at most a tenth)",
                 mon, slower, n);
    free(on);
    free(off);
    free(hx);
    free(fx);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calm),          cmocka_unit_test(test_faults),
        cmocka_unit_test(test_seeder_leaves), cmocka_unit_test(test_silent_peers),
        cmocka_unit_test(test_freeriders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
