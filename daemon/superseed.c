/* SPDX-License-Identifier: MIT */
/* Super-seeding of one model; see superseed.h. */
#include "daemon/superseed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bits.h"
#include "daemon/util.h"
#include "proto/message.h"

struct reveal {
    uint32_t idx;
    uint64_t t_ms;
};

struct nvx_ss_peer {
    nvx_ss_peer *prev, *next;
    uint8_t *shown;      /* bitmap: revealed to this peer */
    uint8_t *got;        /* bitmap: this peer holds it */
    uint8_t *stale;      /* bitmap: revealed long ago, no longer counted ahead */
    uint8_t *asked;      /* bitmap: it requested it from us (queued here) */
    uint8_t *redealt;    /* bitmap: taken back from it once (never twice) */
    uint32_t ahead;      /* shown, not got, not stale */
    struct reveal *fifo; /* the ahead reveals, oldest first (a ring) */
    uint32_t fifo_head, fifo_len, fifo_cap;
    uint32_t n_got;
    uint64_t progress, progress_seen, progress_ms; /* as nvx_ss's, for this peer */
    bool all_told;
};

struct nvx_ss {
    uint32_t n;
    uint32_t *pool; /* never revealed, in random order: the tail is drawn */
    uint32_t n_pool;
    uint8_t *in_pool; /* bitmap */
    uint8_t *got_any; /* bitmap: some fetcher got it (from us or a peer) */
    uint32_t n_got_any;
    uint16_t *holders; /* connected fetchers that hold it */
    /* Progress (a reveal, a chunk out in the swarm for the first time),
     * counted where no clock is passed and timed at the next reveal. */
    uint64_t progress, progress_seen, progress_ms;
    nvx_ss_peer *peers;
    size_t n_peers;
};

int
nvx_ss_new(uint32_t n_chunks, uint64_t seed, nvx_ss **ret)
{
    if (n_chunks == 0 || n_chunks > PROTO_CHUNKS_MAX)
        return -EINVAL;
    nvx_ss *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return -ENOMEM;
    ss->n = n_chunks;
    ss->pool = malloc(sizeof(uint32_t) * n_chunks);
    ss->in_pool = malloc((n_chunks + 7) / 8);
    ss->got_any = calloc((n_chunks + 7) / 8, 1);
    ss->holders = calloc(n_chunks, sizeof(uint16_t));
    if (!ss->pool || !ss->in_pool || !ss->got_any || !ss->holders) {
        nvx_ss_free(ss);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n_chunks; i++)
        ss->pool[i] = i;
    for (uint32_t i = n_chunks - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)(nvx_splitmix64(&seed) % ((uint64_t)i + 1));
        uint32_t t = ss->pool[i];
        ss->pool[i] = ss->pool[j];
        ss->pool[j] = t;
    }
    ss->n_pool = n_chunks;
    memset(ss->in_pool, 0xff, (n_chunks + 7) / 8);
    ss->progress = 1; /* timed at the first reveal */
    *ret = ss;
    return 0;
}

static void
peer_free(nvx_ss_peer *pp)
{
    free(pp->shown);
    free(pp->got);
    free(pp->stale);
    free(pp->asked);
    free(pp->redealt);
    free(pp->fifo);
    free(pp);
}

void
nvx_ss_free(nvx_ss *ss)
{
    if (!ss)
        return;
    while (ss->peers) {
        nvx_ss_peer *pp = ss->peers;
        ss->peers = pp->next;
        peer_free(pp);
    }
    free(ss->pool);
    free(ss->in_pool);
    free(ss->got_any);
    free(ss->holders);
    free(ss);
}

int
nvx_ss_peer_add(nvx_ss *ss, nvx_ss_peer **ret)
{
    if (ss->n_peers >= NVX_SS_PEERS_MAX)
        return -ENOSPC;
    nvx_ss_peer *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return -ENOMEM;
    pp->shown = calloc((ss->n + 7) / 8, 1);
    pp->got = calloc((ss->n + 7) / 8, 1);
    pp->stale = calloc((ss->n + 7) / 8, 1);
    pp->asked = calloc((ss->n + 7) / 8, 1);
    pp->redealt = calloc((ss->n + 7) / 8, 1);
    pp->fifo_cap = NVX_SS_AHEAD_TOTAL;
    pp->fifo = calloc(pp->fifo_cap, sizeof(*pp->fifo));
    if (!pp->shown || !pp->got || !pp->stale || !pp->asked || !pp->redealt || !pp->fifo) {
        peer_free(pp);
        return -ENOMEM;
    }
    pp->progress = 1; /* timed at its first reveal */
    pp->next = ss->peers;
    if (ss->peers)
        ss->peers->prev = pp;
    ss->peers = pp;
    ss->n_peers++;
    *ret = pp;
    return 0;
}

void
nvx_ss_peer_remove(nvx_ss *ss, nvx_ss_peer *pp)
{
    /* Revealed to it, not yet at it: someone else must get them from us;
     * and so must the chunks only it held (they left the swarm with it). */
    for (uint32_t i = 0; i < ss->n; i++) {
        bool back = bit_get(pp->shown, i) && !bit_get(pp->got, i);
        if (bit_get(pp->got, i) && --ss->holders[i] == 0 && bit_get(ss->got_any, i)) {
            bit_clear(ss->got_any, i);
            ss->n_got_any--;
            back = true;
        }
        if (back && !bit_get(ss->in_pool, i)) {
            bit_set(ss->in_pool, i);
            ss->pool[ss->n_pool++] = i;
        }
    }
    if (pp->prev)
        pp->prev->next = pp->next;
    else
        ss->peers = pp->next;
    if (pp->next)
        pp->next->prev = pp->prev;
    ss->n_peers--;
    peer_free(pp);
}

void
nvx_ss_peer_redeal(nvx_ss *ss, nvx_ss_peer *pp)
{
    /* What it neither got nor asked for goes to whoever asks next, once:
     * a resumed fetcher holds chunks it never announces, and those must
     * not cycle between it and the pool for ever. A byte at a time: a peer
     * that repeats WANT gets n / 8 byte tests out of each (issue 9, item 6). */
    for (uint32_t k = 0; k < (ss->n + 7) / 8; k++) {
        uint8_t cand = (uint8_t)(pp->shown[k] & ~pp->got[k] & ~pp->asked[k] & ~pp->redealt[k] &
                                 ~ss->in_pool[k]);
        for (; cand; cand &= (uint8_t)(cand - 1)) {
            uint32_t i = 8 * k + (uint32_t)__builtin_ctz(cand);
            bit_set(pp->redealt, i);
            if (!bit_get(pp->stale, i))
                pp->ahead--;
            bit_clear(pp->shown, i);
            bit_clear(pp->stale, i);
            bit_set(ss->in_pool, i);
            ss->pool[ss->n_pool++] = i;
        }
    }
}

void
nvx_ss_peer_asked(nvx_ss *ss, nvx_ss_peer *pp, uint32_t idx)
{
    if (idx < ss->n)
        bit_set(pp->asked, idx);
}

bool
nvx_ss_peer_has_all(const nvx_ss *ss, const nvx_ss_peer *pp)
{
    return pp->n_got == ss->n;
}

void
nvx_ss_peer_got(nvx_ss *ss, nvx_ss_peer *pp, uint32_t idx)
{
    if (idx >= ss->n || bit_get(pp->got, idx))
        return;
    bit_set(pp->got, idx);
    pp->n_got++;
    pp->progress++;
    ss->holders[idx]++;
    if (bit_get(pp->shown, idx) && !bit_get(pp->stale, idx))
        pp->ahead--;
    if (!bit_get(ss->got_any, idx)) {
        bit_set(ss->got_any, idx);
        ss->n_got_any++;
        ss->progress++;
    }
}

/* Drops the reveals the fetcher took from the ring (they wait for their
 * turn at the head otherwise); what stays is at most `ahead` entries, fewer
 * than the ring holds whenever a reveal is due. */
static void
fifo_compact(nvx_ss_peer *pp)
{
    struct reveal keep[NVX_SS_AHEAD_TOTAL];
    uint32_t k = 0;
    for (uint32_t i = 0; i < pp->fifo_len; i++) {
        struct reveal r = pp->fifo[(pp->fifo_head + i) % pp->fifo_cap];
        if (!bit_get(pp->got, r.idx))
            keep[k++] = r;
    }
    memcpy(pp->fifo, keep, k * sizeof(*keep));
    pp->fifo_head = 0;
    pp->fifo_len = k;
}

size_t
nvx_ss_reveal(nvx_ss *ss, nvx_ss_peer *pp, uint64_t now_ms, uint32_t *out, size_t cap,
              bool *ret_all)
{
    *ret_all = false;
    if (pp->all_told)
        return 0;
    /* Reveals the fetcher sat on for NVX_SS_STALE_MS stop holding its
     * window: it may have had those chunks before (a resumed fetch) or got
     * them from a peer without saying so. */
    while (pp->fifo_len > 0) {
        struct reveal *r = &pp->fifo[pp->fifo_head];
        /* (a reveal re-dealt since is not its own any more) */
        if (!bit_get(pp->got, r->idx) && bit_get(pp->shown, r->idx) &&
            !bit_get(pp->stale, r->idx)) {
            if (now_ms - r->t_ms < NVX_SS_STALE_MS)
                break;
            bit_set(pp->stale, r->idx);
            pp->ahead--;
        }
        pp->fifo_head = (pp->fifo_head + 1) % pp->fifo_cap;
        pp->fifo_len--;
    }
    /* A lone fetcher gets a deep window (the link, not the reveals, must
     * bound it); many share NVX_SS_AHEAD_TOTAL. */
    uint32_t ahead = NVX_SS_AHEAD_TOTAL / (uint32_t)ss->n_peers;
    if (ahead < NVX_SS_AHEAD_MIN)
        ahead = NVX_SS_AHEAD_MIN;
    /* ... but never more than a share of the model: the first of many
     * fetchers asks alone for a moment, and must not take a small model's
     * whole pool (the others would then wait for the tail). */
    uint32_t share = ss->n / NVX_SS_SHARE_DIV;
    if (share < NVX_SS_AHEAD_MIN)
        share = NVX_SS_AHEAD_MIN;
    if (ahead > share)
        ahead = share;
    size_t k = 0;
    while (pp->ahead < ahead && k < cap && ss->n_pool > 0) {
        uint32_t idx = ss->pool[--ss->n_pool];
        bit_clear(ss->in_pool, idx);
        if (bit_get(pp->got, idx))
            continue; /* it has it already: no use revealing it */
        bit_set(pp->shown, idx);
        pp->ahead++;
        out[k++] = idx;
        if (pp->fifo_len == pp->fifo_cap)
            fifo_compact(pp);
        pp->fifo[(pp->fifo_head + pp->fifo_len++) % pp->fifo_cap] =
            (struct reveal){ .idx = idx, .t_ms = now_ms };
    }
    if (k > 0)
        ss->progress++;
    if (ss->progress != ss->progress_seen) {
        ss->progress_seen = ss->progress;
        ss->progress_ms = now_ms;
    }
    if (k > 0 || pp->progress != pp->progress_seen) {
        pp->progress_seen = pp->progress;
        pp->progress_ms = now_ms;
    }
    /* A fetcher that gets nothing new while it lacks chunks has no peer
     * that holds them (its peers left, or never had them): it is told
     * HAVE ALL alone, before the swarm's tail. */
    bool starving =
        ss->n_got_any == ss->n && pp->n_got < ss->n && now_ms - pp->progress_ms >= NVX_SS_STARVE_MS;
    if (ss->n_pool == 0 && k == 0 && (starving || now_ms - ss->progress_ms >= NVX_SS_TAIL_MS)) {
        /* Nothing new for a while: the swarm has every chunk and trades
         * them, or a fetcher sits on what was revealed to it. From now on
         * the seeder is a seeder (while the swarm trades, it stays out of
         * the way: what it would send, fetchers have for each other). */
        pp->all_told = true;
        *ret_all = true;
    }
    /* Ascending, as a chunk set's ranges must be. */
    qsort(out, k, sizeof(*out), nvx_cmp_u32);
    return k;
}

uint32_t
nvx_ss_pool(const nvx_ss *ss)
{
    return ss->n_pool;
}
