/* SPDX-License-Identifier: MIT */
#include "daemon/picker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/bits.h"
#include "daemon/util.h"
#include "libcas/hash.h"

enum chunk_state {
    CH_MISSING = 0,
    CH_VERIFYING = 1,
    CH_HAVE = 2,
};

struct nvx_picker_peer {
    nvx_picker_peer *prev, *next;
    void *user;
    uint8_t *bits;  /* NULL: has every chunk */
    uint32_t *reqs; /* chunk indexes in flight, unordered */
    size_t n_reqs, cap_reqs;
    uint64_t inflight; /* bytes */
    uint64_t window;
    uint64_t rate;      /* bytes/s, EWMA */
    uint64_t sample_t0; /* start of the current sample, ms */
    uint64_t sample_bytes;
    bool sampling;
    /* A scan that found nothing fresh for this peer, and the generations
     * it saw: until a chunk turns fresh again or the peer announces one,
     * the answer stays "nothing" without a scan (a pump asks every peer
     * after every message; scans would cost chunks x peers each time). */
    uint64_t barren_fresh_gen, barren_have_gen;
    uint64_t have_gen;
};

struct nvx_picker {
    uint32_t n;
    uint32_t *len;
    uint8_t *state;
    uint8_t *inflight; /* requests per chunk */
    uint16_t *avail;   /* bitmap peers that have it (ALL peers counted in n_all) */
    /* Bit i % 64 of word i / 64 set: chunk i is fresh (MISSING and not in
     * flight). Scans take 64 chunks at a time: one chunk at a time, they
     * cost a fetcher from a super-seeding seeder 5-10% of its CPU. */
    uint64_t *fresh;
    uint32_t n_have;
    uint32_t n_fresh;     /* bits set in fresh */
    uint32_t hint;        /* no fresh chunk below this */
    uint32_t low_missing; /* no non-HAVE chunk below this */
    uint32_t n_all;       /* peers with every chunk */
    size_t n_peers;
    bool endgame;
    bool seeded;
    uint64_t rng; /* splitmix64 state: where a seeded scan starts */
    uint64_t win_min, win_init, win_max;
    uint64_t fresh_gen; /* bumped whenever a chunk turns fresh again */
    nvx_picker_peer *peers;
};

static uint64_t
clamp_window(const nvx_picker *pk, uint64_t w)
{
    return w < pk->win_min ? pk->win_min : w > pk->win_max ? pk->win_max : w;
}

int
nvx_picker_new(uint32_t n_chunks, const uint32_t *chunk_len, nvx_picker **ret)
{
    if (n_chunks == 0 || n_chunks > NVX_PICKER_CHUNKS_MAX || !chunk_len)
        return -EINVAL;
    nvx_picker *pk = calloc(1, sizeof(*pk));
    if (!pk)
        return -ENOMEM;
    pk->n = n_chunks;
    pk->len = malloc(sizeof(uint32_t) * n_chunks);
    pk->state = calloc(n_chunks, 1);
    pk->inflight = calloc(n_chunks, 1);
    pk->avail = calloc(n_chunks, sizeof(uint16_t));
    pk->fresh = malloc(sizeof(uint64_t) * ((n_chunks + 63) / 64));
    if (!pk->len || !pk->state || !pk->inflight || !pk->avail || !pk->fresh) {
        nvx_picker_free(pk);
        return -ENOMEM;
    }
    memcpy(pk->len, chunk_len, sizeof(uint32_t) * n_chunks);
    memset(pk->fresh, 0xff, sizeof(uint64_t) * ((n_chunks + 63) / 64));
    if (n_chunks % 64)
        pk->fresh[n_chunks / 64] = (UINT64_C(1) << (n_chunks % 64)) - 1;
    pk->n_fresh = n_chunks;
    pk->win_min = NVX_PICKER_WINDOW_MIN;
    pk->win_init = NVX_PICKER_WINDOW_INIT;
    pk->win_max = NVX_PICKER_WINDOW_MAX;
    *ret = pk;
    return 0;
}

void
nvx_picker_windows(nvx_picker *pk, uint64_t min, uint64_t init, uint64_t max)
{
    if (min == 0 || max < min)
        return;
    pk->win_min = min;
    pk->win_max = max;
    pk->win_init = clamp_window(pk, init);
}

void
nvx_picker_free(nvx_picker *pk)
{
    if (!pk)
        return;
    while (pk->peers) {
        nvx_picker_peer *pp = pk->peers;
        pk->peers = pp->next;
        free(pp->bits);
        free(pp->reqs);
        free(pp);
    }
    free(pk->len);
    free(pk->state);
    free(pk->inflight);
    free(pk->avail);
    free(pk->fresh);
    free(pk);
}

/* Chunk idx turns fresh, or stops being fresh. */
static void
fresh_on(nvx_picker *pk, uint32_t idx)
{
    pk->fresh[idx / 64] |= UINT64_C(1) << (idx % 64);
    pk->n_fresh++;
}

static void
fresh_off(nvx_picker *pk, uint32_t idx)
{
    pk->fresh[idx / 64] &= ~(UINT64_C(1) << (idx % 64));
    pk->n_fresh--;
}

static bool
peer_has(const nvx_picker_peer *pp, uint32_t idx)
{
    return !pp->bits || bit_get(pp->bits, idx);
}

static void
advance_low(nvx_picker *pk)
{
    while (pk->low_missing < pk->n && pk->state[pk->low_missing] == CH_HAVE)
        pk->low_missing++;
}

void
nvx_picker_set_have(nvx_picker *pk, uint32_t idx)
{
    if (idx >= pk->n || pk->state[idx] == CH_HAVE)
        return;
    if (pk->state[idx] == CH_MISSING && pk->inflight[idx] == 0)
        fresh_off(pk, idx);
    pk->state[idx] = CH_HAVE;
    pk->n_have++;
    advance_low(pk);
}

bool
nvx_picker_has(const nvx_picker *pk, uint32_t idx)
{
    return idx < pk->n && pk->state[idx] == CH_HAVE;
}

uint32_t
nvx_picker_n_chunks(const nvx_picker *pk)
{
    return pk->n;
}

uint32_t
nvx_picker_n_have(const nvx_picker *pk)
{
    return pk->n_have;
}

bool
nvx_picker_done(const nvx_picker *pk)
{
    return pk->n_have == pk->n;
}

bool
nvx_picker_endgame(const nvx_picker *pk)
{
    return pk->endgame;
}

int
nvx_picker_peer_add(nvx_picker *pk, const uint8_t *bits, uint32_t nbits, uint64_t window_init,
                    void *user, nvx_picker_peer **ret)
{
    if (pk->n_peers >= NVX_PICKER_PEERS_MAX)
        return -ENOSPC;
    nvx_picker_peer *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return -ENOMEM;
    if (bits) {
        pp->bits = calloc((pk->n + 7) / 8, 1);
        if (!pp->bits) {
            free(pp);
            return -ENOMEM;
        }
        uint32_t m = nbits < pk->n ? nbits : pk->n;
        for (uint32_t i = 0; i < m; i++) {
            if (bit_get(bits, i)) {
                bit_set(pp->bits, i);
                if (pk->avail[i] < UINT16_MAX)
                    pk->avail[i]++;
            }
        }
    } else {
        pk->n_all++;
    }
    pp->user = user;
    pp->window = clamp_window(pk, window_init ? window_init : pk->win_init);
    pp->barren_fresh_gen = UINT64_MAX; /* no scan yet */
    pp->next = pk->peers;
    if (pk->peers)
        pk->peers->prev = pp;
    pk->peers = pp;
    pk->n_peers++;
    *ret = pp;
    return 0;
}

void
nvx_picker_peer_have(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx)
{
    if (!pp->bits || idx >= pk->n || peer_has(pp, idx))
        return;
    bit_set(pp->bits, idx);
    pp->have_gen++;
    if (pk->avail[idx] < UINT16_MAX)
        pk->avail[idx]++;
}

/* Defined below: releases request i of pp. */
static void release(nvx_picker *pk, nvx_picker_peer *pp, size_t i);
static ssize_t find_req(const nvx_picker_peer *pp, uint32_t idx);

int
nvx_picker_peer_lose(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx)
{
    if (idx >= pk->n || !peer_has(pp, idx))
        return 0;
    if (!pp->bits) {
        /* It had every chunk: it becomes a peer with a bitmap of all but
         * idx, counted per chunk from now on. */
        uint8_t *bits = malloc((pk->n + 7) / 8);
        if (!bits)
            return -ENOMEM;
        memset(bits, 0xff, (pk->n + 7) / 8);
        pp->bits = bits;
        pk->n_all--;
        for (uint32_t i = 0; i < pk->n; i++)
            if (pk->avail[i] < UINT16_MAX)
                pk->avail[i]++;
    }
    bit_clear(pp->bits, idx);
    if (pk->avail[idx] > 0)
        pk->avail[idx]--;
    ssize_t i = find_req(pp, idx);
    if (i >= 0)
        release(pk, pp, (size_t)i);
    return 0;
}

uint32_t
nvx_picker_avail(const nvx_picker *pk, uint32_t idx)
{
    return idx < pk->n ? pk->n_all + pk->avail[idx] : 0;
}

/* Drops request i of pp's list and returns the chunk to the pool when no
 * other request for it remains. */
static void
release(nvx_picker *pk, nvx_picker_peer *pp, size_t i)
{
    uint32_t idx = pp->reqs[i];
    pp->reqs[i] = pp->reqs[--pp->n_reqs];
    pp->inflight -= pk->len[idx];
    pk->inflight[idx]--;
    if (pk->state[idx] == CH_MISSING && pk->inflight[idx] == 0) {
        fresh_on(pk, idx);
        pk->fresh_gen++;
        if (idx < pk->hint)
            pk->hint = idx;
    }
}

static ssize_t
find_req(const nvx_picker_peer *pp, uint32_t idx)
{
    for (size_t i = 0; i < pp->n_reqs; i++)
        if (pp->reqs[i] == idx)
            return (ssize_t)i;
    return -1;
}

void
nvx_picker_peer_remove(nvx_picker *pk, nvx_picker_peer *pp)
{
    while (pp->n_reqs > 0)
        release(pk, pp, pp->n_reqs - 1);
    if (pp->bits) {
        for (uint32_t i = 0; i < pk->n; i++)
            if (peer_has(pp, i) && pk->avail[i] > 0)
                pk->avail[i]--;
    } else {
        pk->n_all--;
    }
    if (pp->prev)
        pp->prev->next = pp->next;
    else
        pk->peers = pp->next;
    if (pp->next)
        pp->next->prev = pp->prev;
    pk->n_peers--;
    free(pp->bits);
    free(pp->reqs);
    free(pp);
}

void *
nvx_picker_peer_user(const nvx_picker_peer *pp)
{
    return pp->user;
}

uint64_t
nvx_picker_peer_window(const nvx_picker_peer *pp)
{
    return pp->window;
}

uint64_t
nvx_picker_peer_inflight(const nvx_picker_peer *pp)
{
    return pp->inflight;
}

uint64_t
nvx_picker_peer_rate(const nvx_picker_peer *pp)
{
    return pp->rate;
}

static int
push_req(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx)
{
    if (pp->n_reqs == pp->cap_reqs) {
        size_t cap = pp->cap_reqs ? pp->cap_reqs * 2 : 32;
        uint32_t *r = realloc(pp->reqs, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        pp->reqs = r;
        pp->cap_reqs = cap;
    }
    pp->reqs[pp->n_reqs++] = idx;
    pp->inflight += pk->len[idx];
    if (pk->state[idx] == CH_MISSING && pk->inflight[idx] == 0)
        fresh_off(pk, idx);
    pk->inflight[idx]++;
    return 0;
}

void
nvx_picker_seed(nvx_picker *pk, uint64_t seed)
{
    pk->seeded = true;
    pk->rng = seed;
}

struct pick {
    int64_t best, first_fresh;
    uint32_t best_avail;
};

/* pp's bits for chunks 64 w .. 64 w + 63, bit i % 64 for chunk i. */
static uint64_t
peer_word(const nvx_picker *pk, const nvx_picker_peer *pp, uint32_t w)
{
    if (!pp->bits)
        return ~UINT64_C(0);
    size_t nb = bits_bytes(pk->n), at = (size_t)w * 8;
    uint64_t v = 0;
    for (size_t k = 0; k < 8 && at + k < nb; k++)
        v |= (uint64_t)pp->bits[at + k] << (8 * k);
    return v;
}

/* Scans [from, to) for the rarest fresh chunk pp has; true when it found
 * one no other can beat (every chunk has at least n_all holders). Records
 * the first fresh chunk seen, for the hint. Goes 64 chunks at a time
 * through the fresh bits and pp's: a super-seeding seeder reveals few
 * chunks at a time, so most fresh chunks are ones pp does not have. */
static bool
scan_fresh(const nvx_picker *pk, const nvx_picker_peer *pp, uint32_t from, uint32_t to,
           struct pick *pc)
{
    if (from >= to)
        return false;
    for (uint32_t w = from / 64; w <= (to - 1) / 64; w++) {
        uint64_t fresh = pk->fresh[w];
        if (w == from / 64)
            fresh &= ~UINT64_C(0) << (from % 64);
        if (w == (to - 1) / 64 && to % 64)
            fresh &= (UINT64_C(1) << (to % 64)) - 1;
        if (fresh == 0)
            continue;
        if (pc->first_fresh < 0)
            pc->first_fresh = 64 * (int64_t)w + __builtin_ctzll(fresh);
        for (uint64_t c = fresh & peer_word(pk, pp, w); c; c &= c - 1) {
            uint32_t i = 64 * w + (uint32_t)__builtin_ctzll(c);
            uint32_t a = pk->n_all + pk->avail[i];
            if (a < pc->best_avail) {
                pc->best = i;
                pc->best_avail = a;
                if (a <= pk->n_all + (pp->bits ? 1u : 0u))
                    return true;
            }
        }
    }
    return false;
}

/* The rarest fresh chunk pp has, or -1. Ties go to the first one found:
 * unseeded, the scan starts at the lowest fresh chunk (sequential writes);
 * seeded, at a random chunk and wraps around, so fetchers that start
 * together (or a seeder's many downloaders) ask for different chunks and
 * soon hold pieces to trade. */
static int64_t
scan_all_fresh(nvx_picker *pk, const nvx_picker_peer *pp)
{
    uint32_t lo = pk->hint, start = lo;
    if (pk->seeded && lo < pk->n)
        start = lo + (uint32_t)(nvx_splitmix64(&pk->rng) % (pk->n - lo));
    struct pick pc = { -1, -1, UINT32_MAX };
    bool stop = scan_fresh(pk, pp, start, pk->n, &pc);
    int64_t first_high = pc.first_fresh;
    if (start == lo) {
        pk->hint = first_high >= 0 ? (uint32_t)first_high : pk->n;
        return pc.best;
    }
    if (stop)
        return pc.best;
    pc.first_fresh = -1;
    stop = scan_fresh(pk, pp, lo, start, &pc);
    /* The first fresh chunk of [lo, start) is the lowest of all. */
    if (pc.first_fresh >= 0)
        pk->hint = (uint32_t)pc.first_fresh;
    else if (!stop)
        pk->hint = first_high >= 0 ? (uint32_t)first_high : pk->n;
    return pc.best;
}

static int64_t
pick_fresh(nvx_picker *pk, nvx_picker_peer *pp)
{
    if (pp->barren_fresh_gen == pk->fresh_gen && pp->barren_have_gen == pp->have_gen)
        return -1;
    int64_t idx = scan_all_fresh(pk, pp);
    if (idx < 0) {
        pp->barren_fresh_gen = pk->fresh_gen;
        pp->barren_have_gen = pp->have_gen;
    }
    return idx;
}

/* Endgame: a chunk in flight elsewhere (fewest requests first), not yet
 * asked of pp. */
static int64_t
pick_endgame(nvx_picker *pk, const nvx_picker_peer *pp)
{
    int64_t best = -1;
    unsigned best_n = NVX_PICKER_ENDGAME_DUP;
    for (uint32_t i = pk->low_missing; i < pk->n; i++) {
        if (pk->state[i] != CH_MISSING || pk->inflight[i] >= best_n || !peer_has(pp, i))
            continue;
        if (find_req(pp, i) >= 0)
            continue;
        best = i;
        best_n = pk->inflight[i];
        if (best_n <= 1)
            break;
    }
    return best;
}

static void
start_sample(nvx_picker_peer *pp, uint64_t now_ms)
{
    if (!pp->sampling) {
        pp->sampling = true;
        pp->sample_t0 = now_ms;
        pp->sample_bytes = 0;
    }
}

int64_t
nvx_picker_next(nvx_picker *pk, nvx_picker_peer *pp, uint64_t now_ms)
{
    if (pp->inflight >= pp->window || pp->n_reqs >= NVX_PICKER_REQS_MAX)
        return -1;
    int64_t idx = -1;
    if (pk->n_fresh > 0)
        idx = pick_fresh(pk, pp);
    if (idx < 0 && pk->n_fresh == 0 && pk->n_have < pk->n &&
        pk->n - pk->n_have <= NVX_PICKER_ENDGAME_MISSING) {
        pk->endgame = true;
        idx = pick_endgame(pk, pp);
    }
    if (idx < 0)
        return -1;
    if (push_req(pk, pp, (uint32_t)idx) < 0)
        return -1;
    start_sample(pp, now_ms);
    return idx;
}

bool
nvx_picker_peer_can_take(const nvx_picker *pk, const nvx_picker_peer *pp, uint32_t idx)
{
    return idx < pk->n && pk->state[idx] == CH_MISSING && pp->inflight < pp->window &&
           pp->n_reqs < NVX_PICKER_REQS_MAX && peer_has(pp, idx) && find_req(pp, idx) < 0;
}

int
nvx_picker_dup(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx, uint64_t now_ms)
{
    if (!nvx_picker_peer_can_take(pk, pp, idx) || pk->inflight[idx] >= NVX_PICKER_ENDGAME_DUP)
        return -EAGAIN;
    if (push_req(pk, pp, idx) < 0)
        return -ENOMEM;
    start_sample(pp, now_ms);
    return 0;
}

/* Feeds the throughput estimate and resizes the window. */
static void
account(const nvx_picker *pk, nvx_picker_peer *pp, uint64_t bytes, uint64_t now_ms)
{
    pp->sample_bytes += bytes;
    uint64_t dt = now_ms - pp->sample_t0;
    if (!pp->sampling || dt < NVX_PICKER_RATE_SAMPLE_MS)
        return;
    uint64_t sample = pp->sample_bytes * 1000 / dt;
    pp->rate = pp->rate ? (pp->rate * 3 + sample) / 4 : sample;
    pp->window = clamp_window(pk, pp->rate * NVX_PICKER_WINDOW_MS / 1000);
    pp->sample_t0 = now_ms;
    pp->sample_bytes = 0;
    /* An idle peer restarts its sample at its next request. */
    pp->sampling = pp->n_reqs > 0;
}

int
nvx_picker_received(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx, uint64_t now_ms)
{
    if (idx >= pk->n)
        return -ENOENT;
    ssize_t i = find_req(pp, idx);
    if (i < 0)
        return -ENOENT;
    bool wanted = pk->state[idx] == CH_MISSING;
    if (wanted)
        pk->state[idx] = CH_VERIFYING;
    release(pk, pp, (size_t)i);
    account(pk, pp, pk->len[idx], now_ms);
    return wanted ? 1 : 0;
}

void
nvx_picker_verified(nvx_picker *pk, uint32_t idx, bool ok)
{
    if (idx >= pk->n || pk->state[idx] != CH_VERIFYING)
        return;
    if (ok) {
        pk->state[idx] = CH_HAVE;
        pk->n_have++;
        advance_low(pk);
        return;
    }
    pk->state[idx] = CH_MISSING;
    if (pk->inflight[idx] == 0) {
        fresh_on(pk, idx);
        pk->fresh_gen++;
        if (idx < pk->hint)
            pk->hint = idx;
    }
}

void
nvx_picker_cancel(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx)
{
    ssize_t i = find_req(pp, idx);
    if (i >= 0)
        release(pk, pp, (size_t)i);
}

void
nvx_picker_peer_busy(const nvx_picker *pk, nvx_picker_peer *pp)
{
    pp->window = clamp_window(pk, pp->window / 2);
}

size_t
nvx_picker_holders(const nvx_picker *pk, uint32_t idx, nvx_picker_peer **out, size_t cap)
{
    size_t n = 0;
    if (idx >= pk->n || pk->inflight[idx] == 0)
        return 0;
    for (nvx_picker_peer *pp = pk->peers; pp && n < cap; pp = pp->next)
        if (find_req(pp, idx) >= 0)
            out[n++] = pp;
    return n;
}

void
nvx_badlist_add(nvx_badlist *b, const uint8_t id[static 32], uint64_t now_ms)
{
    size_t slot = b->n;
    for (size_t i = 0; i < b->n; i++) {
        if (memcmp(b->e[i].id, id, 32) == 0) {
            slot = i;
            break;
        }
    }
    if (slot == b->n) {
        if (b->n < NVX_BADLIST_MAX) {
            b->n++;
        } else {
            slot = 0; /* replace the entry that expires first */
            for (size_t i = 1; i < b->n; i++)
                if (b->e[i].until_ms < b->e[slot].until_ms)
                    slot = i;
        }
    }
    memcpy(b->e[slot].id, id, 32);
    b->e[slot].until_ms = now_ms + NVX_BADLIST_MS;
}

bool
nvx_badlist_has(const nvx_badlist *b, const uint8_t id[static 32], uint64_t now_ms)
{
    for (size_t i = 0; i < b->n; i++)
        if (memcmp(b->e[i].id, id, 32) == 0)
            return now_ms < b->e[i].until_ms;
    return false;
}

bool
nvx_badlist_addr_key(const char *addr, uint8_t key[static 32])
{
    const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
    size_t off = addr[0] == '[';
    size_t len = end ? (size_t)(end - addr) - off : strlen(addr);
    if ((len >= 4 && memcmp(addr + off, "127.", 4) == 0) ||
        (len == 3 && memcmp(addr + off, "::1", 3) == 0) || len == 0)
        return false;
    cas_hasher h;
    cas_hasher_init(&h);
    cas_hasher_update(&h, "addr:", 5);
    cas_hasher_update(&h, addr + off, len);
    cas_hasher_final(&h, key);
    return true;
}
