/* SPDX-License-Identifier: MIT */
/*
 * Reciprocation (daemon/recip.h has the why): regular slots ranked by the
 * bytes each peer sent us, one optimistic slot drawn at random, choking
 * only while a slot holder waits.
 *
 * Cost: O(1) per event; O(peers) per ranking (every rank_ms, a selection
 * of NVX_RECIP_SLOTS) and per optimistic draw.
 */
#include "daemon/recip.h"

#include <errno.h>
#include <stdlib.h>

#include "daemon/util.h"

struct nvx_recip_peer {
    nvx_recip_peer *prev, *next;
    uint64_t joined_ms;
    uint64_t asked_ms; /* last time it had requests waiting */
    bool asked;        /* ... ever */
    uint64_t bytes;    /* received since the last ranking */
    uint64_t rate;     /* bytes/s, averaged over the last rankings */
    size_t queued;     /* its requests waiting in our serve queue */
    bool regular;      /* holds a regular slot */
};

struct nvx_recip {
    nvx_recip_cfg cfg;
    uint64_t rng;
    nvx_recip_peer *peers;
    size_t n_peers;
    nvx_recip_peer *opt; /* the optimistic slot's holder, or NULL */
    uint64_t last_rank_ms, next_rank_ms, next_opt_ms;
    size_t waiting; /* regular slot holders with requests waiting */
};

static bool
holds_slot(const nvx_recip *r, const nvx_recip_peer *p)
{
    return p->regular || r->opt == p;
}

/* Whether the optimistic holder has requests waiting. */
static bool
opt_waits(const nvx_recip *r)
{
    return r->opt && r->opt->queued > 0;
}

/* A peer that asked us for something lately: only those compete for a
 * slot (a slot given to a peer that asks nothing is a slot wasted). */
static bool
interested(const nvx_recip *r, const nvx_recip_peer *p, uint64_t now)
{
    return p->queued > 0 || (p->asked && now - p->asked_ms < r->cfg.rank_ms);
}

/* Holders change: count again those that wait. */
static void
recount(nvx_recip *r)
{
    r->waiting = 0;
    for (nvx_recip_peer *p = r->peers; p; p = p->next)
        r->waiting += p->regular && p->queued > 0;
}

int
nvx_recip_new(const nvx_recip_cfg *cfg, uint64_t seed, uint64_t now_ms, nvx_recip **ret)
{
    nvx_recip *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.rank_ms)
        r->cfg.rank_ms = NVX_RECIP_RANK_MS;
    if (!r->cfg.optimistic_ms)
        r->cfg.optimistic_ms = NVX_RECIP_OPTIMISTIC_MS;
    if (!r->cfg.new_ms)
        r->cfg.new_ms = NVX_RECIP_NEW_MS;
    r->rng = seed;
    r->last_rank_ms = now_ms;
    r->next_rank_ms = now_ms + r->cfg.rank_ms;
    r->next_opt_ms = now_ms; /* drawn at the first tick with an interested peer */
    *ret = r;
    return 0;
}

void
nvx_recip_free(nvx_recip *r)
{
    if (!r)
        return;
    while (r->peers) {
        nvx_recip_peer *p = r->peers;
        r->peers = p->next;
        free(p);
    }
    free(r);
}

int
nvx_recip_peer_add(nvx_recip *r, uint64_t now_ms, nvx_recip_peer **ret)
{
    if (r->n_peers >= NVX_RECIP_PEERS_MAX)
        return -EMSGSIZE;
    nvx_recip_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->joined_ms = now_ms;
    p->next = r->peers;
    if (r->peers)
        r->peers->prev = p;
    r->peers = p;
    r->n_peers++;
    *ret = p;
    return 0;
}

void
nvx_recip_peer_remove(nvx_recip *r, nvx_recip_peer *p)
{
    if (!p)
        return;
    if (p->regular && p->queued > 0)
        r->waiting--;
    if (r->opt == p) {
        r->opt = NULL;
        r->next_opt_ms = 0; /* the slot is drawn again at the next tick */
    }
    if (p->prev)
        p->prev->next = p->next;
    else
        r->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    r->n_peers--;
    free(p);
}

void
nvx_recip_received(nvx_recip *r, nvx_recip_peer *p, uint64_t bytes)
{
    (void)r;
    p->bytes += bytes;
}

void
nvx_recip_queued(nvx_recip *r, nvx_recip_peer *p, size_t n, uint64_t now_ms)
{
    if (p->regular)
        r->waiting = r->waiting + (n > 0) - (p->queued > 0);
    p->queued = n;
    if (n > 0) {
        p->asked = true;
        p->asked_ms = now_ms;
    }
}

/* Regular slots: the NVX_RECIP_SLOTS interested peers that sent us the
 * most, each at least a byte. Rates average this window with the last
 * ones (BitTorrent ranks by a rolling 20 s), so one quiet window does
 * not cost a good partner its slot. */
static void
rank(nvx_recip *r, uint64_t now)
{
    uint64_t win = now - r->last_rank_ms ? now - r->last_rank_ms : 1;
    for (nvx_recip_peer *p = r->peers; p; p = p->next) {
        p->rate = (p->rate + p->bytes * 1000 / win) / 2;
        p->bytes = 0;
        p->regular = false;
    }
    for (int k = 0; k < NVX_RECIP_SLOTS; k++) {
        nvx_recip_peer *best = NULL;
        for (nvx_recip_peer *p = r->peers; p; p = p->next)
            if (!p->regular && p->rate > 0 && interested(r, p, now) &&
                (!best || p->rate > best->rate))
                best = p;
        if (!best)
            break;
        best->regular = true;
    }
    r->last_rank_ms = now;
    r->next_rank_ms = now + r->cfg.rank_ms;
    if (r->opt && r->opt->regular)
        r->next_opt_ms = 0; /* it earned a regular slot: draw another */
}

/* The optimistic slot: a random interested peer without a regular slot,
 * newcomers weighted NVX_RECIP_NEW_WEIGHT, the last holder only when no
 * one else asks. */
static void
draw_optimistic(nvx_recip *r, uint64_t now)
{
    nvx_recip_peer *last = r->opt;
    uint64_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t pick = pass ? nvx_splitmix64(&r->rng) % total : 0;
        for (nvx_recip_peer *p = r->peers; p; p = p->next) {
            if (p->regular || p == last || !interested(r, p, now))
                continue;
            uint64_t w = now - p->joined_ms < r->cfg.new_ms ? NVX_RECIP_NEW_WEIGHT : 1;
            if (pass == 0) {
                total += w;
            } else if (pick < w) {
                r->opt = p;
                goto out;
            } else {
                pick -= w;
            }
        }
        if (total == 0)
            break;
    }
    if (!last || last->regular || !interested(r, last, now))
        r->opt = NULL;
out:
    r->next_opt_ms = now + r->cfg.optimistic_ms;
}

void
nvx_recip_tick(nvx_recip *r, uint64_t now_ms)
{
    bool changed = false;
    if (now_ms >= r->next_rank_ms) {
        rank(r, now_ms);
        changed = true;
    }
    /* Due, or its holder left or lost interest, or the slot is empty (a
     * peer that starts asking gets it at once). */
    if (now_ms >= r->next_opt_ms || !r->opt || !interested(r, r->opt, now_ms)) {
        nvx_recip_peer *was = r->opt;
        draw_optimistic(r, now_ms);
        changed |= r->opt != was;
    }
    if (changed)
        recount(r);
}

bool
nvx_recip_unchoked(const nvx_recip *r, const nvx_recip_peer *p)
{
    return holds_slot(r, p);
}

bool
nvx_recip_choked(const nvx_recip *r, const nvx_recip_peer *p)
{
    if (p->regular)
        return false;
    if (p == r->opt)
        return r->waiting > 0;
    return r->waiting > 0 || opt_waits(r);
}

uint64_t
nvx_recip_rate(const nvx_recip_peer *p)
{
    return p->rate;
}
