/* SPDX-License-Identifier: MIT */
/*
 * The transfer engine's shared moves (daemon/xfer-internal.h): peers and
 * their requests, the ready list and store actions, commit and finish, the
 * end, the manifest download, HAVE bookkeeping. No event enters here; the
 * events are daemon/xfer.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/util.h"
#include "daemon/xfer-internal.h"
#include "proto/control.h"

void
nvx__xf_settle(nvx_xfer *x)
{
    if (x->depth == 0 && x->ending && !x->ended && x->jobs == 0 && !x->opening) {
        x->ended = true;
        x->ops->ended(x->arg); /* may free x */
    }
}

struct xpeer *
nvx__xf_xpeer_find(const nvx_xfer *x, const void *peer)
{
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->peer == peer)
            return xp;
    return NULL;
}

static void
send_msg(nvx_xfer *x, struct xpeer *xp, const proto_msg *m)
{
    x->ops->send(x->arg, xp->peer, m);
}

void
nvx__xf_send_want(nvx_xfer *x, struct xpeer *xp)
{
    proto_msg m = { .type = PROTO_MSG_WANT };
    memcpy(m.u.want.model_id, x->id, 32);
    m.u.want.set.kind = PROTO_CHUNKSET_ALL;
    send_msg(x, xp, &m);
    x->ops->flush(x->arg, xp->peer);
}

/* ---- requests ---------------------------------------------------------- */

void
nvx__xf_creq_send(nvx_xfer *x, struct xpeer *xp, const struct creq *c, uint8_t type)
{
    for (uint32_t i = 0; i < c->npieces; i++) {
        if (type == PROTO_MSG_CANCEL && ((c->got_bits[i / 64] >> (i % 64)) & 1))
            continue;
        proto_msg m = { .type = type };
        m.u.request.req_id = c->req_base + i;
        memcpy(m.u.request.model_id, x->id, 32);
        m.u.request.chunk = c->idx;
        m.u.request.offset = i * c->piece;
        uint32_t rest = c->len - i * c->piece;
        m.u.request.length = rest < c->piece ? rest : c->piece;
        if (type == PROTO_MSG_REQUEST)
            x->req_bytes += m.u.request.length;
        send_msg(x, xp, &m);
    }
}

void
nvx__xf_creq_unlink(struct xpeer *xp, struct creq *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        xp->creqs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        xp->creqs_tail = c->prev;
    free(c->buf);
    free(c);
}

struct creq *
nvx__xf_creq_find(const struct xpeer *xp, uint32_t req_id)
{
    for (struct creq *c = xp->creqs; c; c = c->next)
        if (req_id - c->req_base < c->npieces)
            return c;
    return NULL;
}

static void
creqs_drop(nvx_xfer *x, struct xpeer *xp, bool send_cancel)
{
    while (xp->creqs) {
        if (send_cancel)
            nvx__xf_creq_send(x, xp, xp->creqs, PROTO_MSG_CANCEL);
        nvx__xf_creq_unlink(xp, xp->creqs);
    }
    if (send_cancel)
        x->ops->flush(x->arg, xp->peer);
}

/* The peer no longer counts as having the model (NOT_FOUND, gone). */
void
nvx__xf_xpeer_unhave(nvx_xfer *x, struct xpeer *xp, bool send_cancel)
{
    creqs_drop(x, xp, send_cancel);
    if (xp->pp)
        nvx_picker_peer_remove(x->pk, xp->pp);
    xp->pp = NULL;
    free(xp->bits);
    xp->bits = NULL;
    xp->nbits = 0;
    xp->has = false;
    xp->retry_ms = 0;
    if (xp->masked) {
        nvx__xf_manifest_unask(x, xp);
        if (x->n_masked == 0)
            nvx__xf_manifest_next(x); /* from where the download is */
    }
}

void
nvx__xf_xpeer_remove(nvx_xfer *x, struct xpeer *xp, bool send_cancel)
{
    nvx__xf_xpeer_unhave(x, xp, send_cancel);
    for (struct xpeer **pp = &x->peers; *pp; pp = &(*pp)->next) {
        if (*pp == xp) {
            *pp = xp->next;
            break;
        }
    }
    free(xp->refused);
    free(xp);
}

/* The peer claimed what it did not deliver: it leaves the transfer (its
 * requests are cancelled and go to others) and the adapter refuses its key
 * and its address (ops->bad_peer), so a new key buys no second try. */
void
nvx__xf_xpeer_punish(nvx_xfer *x, struct xpeer *xp, const char *what)
{
    uint8_t id[32];
    char addr[NVX_XFER_ADDR_LEN];
    memcpy(id, xp->id, 32);
    memcpy(addr, xp->addr, sizeof(addr));
    nvx__xf_xpeer_remove(x, xp, true);
    x->ops->bad_peer(x->arg, id, addr, what);
}

/* Removes the peer from the transfer, then asks the adapter to close its
 * session (which may call nvx_xfer_peer_down: a no-op by then). */
void
nvx__xf_xpeer_drop(nvx_xfer *x, struct xpeer *xp, const char *why)
{
    void *peer = xp->peer;
    nvx__xf_xpeer_remove(x, xp, false);
    x->ops->drop_peer(x->arg, peer, why);
}

/* Sends the REQUESTs for chunk idx to xp (the picker counts it in flight
 * there already). Returns false without memory (the request is released). */
static bool
request_chunk(nvx_xfer *x, struct xpeer *xp, uint32_t idx, uint64_t now)
{
    uint32_t len = x->chunk_len[idx];
    uint32_t piece = xp->piece;
    if (piece < (len + CREQ_PIECES_MAX - 1) / CREQ_PIECES_MAX)
        piece = (len + CREQ_PIECES_MAX - 1) / CREQ_PIECES_MAX;
    /* A chunk in one piece keeps the session's plaintext buffer of its
     * DATA (no copy, no buffer while it is in flight); pieces are gathered
     * in a buffer of the chunk's size. */
    bool pieces = len > piece;
    struct creq *c = calloc(1, sizeof(*c));
    uint8_t *buf = pieces ? malloc(len) : NULL;
    if (!c || (pieces && !buf)) {
        free(c);
        free(buf);
        nvx_picker_cancel(x->pk, xp->pp, idx);
        return false;
    }
    c->idx = idx;
    c->len = len;
    c->piece = piece;
    c->npieces = (len + piece - 1) / piece;
    c->req_base = x->ops->req_ids(x->arg, xp->peer, c->npieces);
    c->buf = buf;
    c->t_sent = now;
    if (!xp->creqs)
        xp->progress_ms = now;
    c->prev = xp->creqs_tail;
    if (xp->creqs_tail)
        xp->creqs_tail->next = c;
    else
        xp->creqs = c;
    xp->creqs_tail = c;
    nvx__xf_creq_send(x, xp, c, PROTO_MSG_REQUEST);
    return true;
}

/* Requests chunks from one peer while its window has room and *budget
 * (bytes the transfer may still hold) lasts. */
void
nvx__xf_send_requests(nvx_xfer *x, struct xpeer *xp, uint64_t now, uint64_t *budget)
{
    bool sent = false;
    int64_t idx;
    while (*budget > 0 && (idx = nvx_picker_next(x->pk, xp->pp, now)) >= 0) {
        uint32_t len = x->chunk_len[idx];
        *budget = *budget > len ? *budget - len : 0;
        if (!request_chunk(x, xp, (uint32_t)idx, now))
            break;
        sent = true;
    }
    if (sent)
        x->ops->flush(x->arg, xp->peer);
}

/* The peer to ask for chunk idx instead of (or besides) slow: one with
 * room that has it, preferring one that has delivered. */
static struct xpeer *
faster_peer(nvx_xfer *x, const struct xpeer *slow, uint32_t idx, uint64_t now)
{
    struct xpeer *best = NULL;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (xp == slow || !xp->pp || xp->retry_ms > now || xp->benched_until > now ||
            !nvx_picker_peer_can_take(x->pk, xp->pp, idx))
            continue;
        if (xp->delivered_ms)
            return xp; /* one that delivers (not the fastest: that would be
                        * the seeder, whose upload is the swarm's scarcest) */
        if (!best)
            best = xp;
    }
    return best;
}

/* A request that has waited NVX_XFER_SLOW_MS at one peer (a seeder shared
 * by many fetchers, a peer on a thin link, a peer that claims chunks and
 * sends nothing) is asked of a faster peer as well; the first copy wins
 * and the other is cancelled (stored_one). When the chunk has as many
 * requests as it may, the slow one is moved instead (CANCEL there). A peer
 * that never delivered and had NVX_XFER_BENCH_AFTER requests moved away is
 * asked nothing new for NVX_XFER_BENCH_MS. Without this a chunk queued at a
 * slow peer is not asked anywhere else until the endgame, however fast the
 * others. */
/* Whether request c has waited at xp longer than it should: past
 * NVX_XFER_SLOW_MS at a peer that never delivered, else past that plus
 * twice the time the peer's measured rate needs for what it was asked. A
 * busy but steady peer (a seeder shared by many) keeps its queue. */
static bool
creq_slow(const struct xpeer *xp, const struct creq *c, uint64_t now)
{
    uint64_t age = now - c->t_sent;
    if (age <= NVX_XFER_SLOW_MS)
        return false;
    uint64_t rate = xp->pp ? nvx_picker_peer_rate(xp->pp) : 0;
    if (!xp->delivered_ms || rate == 0)
        return true;
    uint64_t expect_ms = nvx_picker_peer_inflight(xp->pp) * 1000 / rate;
    return age > NVX_XFER_SLOW_MS + 2 * expect_ms;
}

void
nvx__xf_ask_slow_elsewhere(nvx_xfer *x, uint64_t now)
{
    unsigned asked = 0;
    for (struct xpeer *slow = x->peers; slow; slow = slow->next) {
        struct creq *next;
        for (struct creq *c = slow->creqs; c && creq_slow(slow, c, now); c = next) {
            next = c->next;
            if (c->dup_asked)
                continue;
            struct xpeer *xp = faster_peer(x, slow, c->idx, now);
            if (!xp)
                continue;
            uint32_t idx = c->idx;
            c->dup_asked = true;
            if (nvx_picker_dup(x->pk, xp->pp, idx, now) < 0) {
                /* As many requests as the chunk may have: move this one. */
                nvx__xf_creq_send(x, slow, c, PROTO_MSG_CANCEL);
                x->ops->flush(x->arg, slow->peer);
                nvx__xf_creq_unlink(slow, c);
                nvx_picker_cancel(x->pk, slow->pp, idx);
                if (++slow->moved_away >= NVX_XFER_BENCH_AFTER && !slow->delivered_ms)
                    slow->benched_until = now + NVX_XFER_BENCH_MS;
                if (nvx_picker_dup(x->pk, xp->pp, idx, now) < 0)
                    continue;
            }
            if (request_chunk(x, xp, idx, now))
                x->ops->flush(x->arg, xp->peer);
            if (++asked == NVX_XFER_SLOW_ASK_MAX)
                return;
        }
    }
}

/* ---- store actions ----------------------------------------------------- */

void
nvx__xf_chunk_free(nvx_xfer *x, nvx_xfer_chunk *c)
{
    x->pending -= c->len;
    free(c->mem);
    free(c);
}

void
nvx__xf_ready_free(nvx_xfer *x)
{
    while (x->ready) {
        nvx_xfer_chunk *c = x->ready;
        x->ready = c->next;
        nvx__xf_chunk_free(x, c);
    }
    x->ready_tail = &x->ready;
    x->n_ready = 0;
}

/* Hands the ready chunks to store actions: full batches, and with all also
 * the rest (no more chunks are coming soon). */
void
nvx__xf_ready_dispatch(nvx_xfer *x, bool all)
{
    while (!x->ending && (x->n_ready >= NVX_XFER_PUT_BATCH || (all && x->n_ready > 0))) {
        nvx_xfer_chunk *batch[NVX_XFER_PUT_BATCH];
        unsigned n = 0;
        while (n < NVX_XFER_PUT_BATCH && x->ready) {
            batch[n++] = x->ready;
            x->ready = x->ready->next;
            x->n_ready--;
        }
        if (!x->ready)
            x->ready_tail = &x->ready;
        x->jobs++;
        x->ops->store(x->arg, batch, n);
    }
}

/* True when some peer still owes this transfer requested bytes. */
bool
nvx__xf_expect_more(const nvx_xfer *x)
{
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->pp && nvx_picker_peer_inflight(xp->pp) > 0)
            return true;
    return false;
}

void
nvx__xf_maybe_commit(nvx_xfer *x, uint64_t now, bool force)
{
    if (!x->pk || x->committing || x->finishing || x->ending || x->uncommitted == 0)
        return;
    if (!force && x->uncommitted < NVX_XFER_COMMIT_CHUNKS &&
        now - x->last_commit_ms < NVX_XFER_COMMIT_MS)
        return;
    x->committing = true;
    x->uncommitted = 0;
    x->last_commit_ms = now;
    x->jobs++;
    x->ops->commit(x->arg);
}

void
nvx__xf_maybe_finish(nvx_xfer *x)
{
    if (!x->pk || !nvx_picker_done(x->pk) || x->jobs > 0 || x->finishing || x->ending)
        return;
    x->state = PROTO_CTL_STATE_VERIFYING;
    x->finishing = true;
    x->jobs++;
    x->ops->finish(x->arg);
}

void
nvx__xf_end(nvx_xfer *x, int state, int error)
{
    if (x->ending)
        return;
    x->ending = true;
    x->state = state;
    x->error = error;
    nvx__xf_ready_free(x);
    free(x->mbuf);
    x->mbuf = NULL;
    nvx__xf_manifest_unask_all(x);
    while (x->peers)
        nvx__xf_xpeer_remove(x, x->peers, true);
}

/* ---- manifest ---------------------------------------------------------- */

/* Asks xp for the manifest's next piece (every peer asked for the same
 * piece; the first answer wins, later ones are ignored). */
void
nvx__xf_manifest_ask(nvx_xfer *x, struct xpeer *xp)
{
    proto_msg m = { .type = PROTO_MSG_MANIFEST_REQ };
    if (!xp->masked)
        x->n_masked++;
    xp->masked = true;
    xp->mreq = x->ops->req_ids(x->arg, xp->peer, 1);
    xp->mreq_ms = x->now;
    m.u.manifest_req.req_id = xp->mreq;
    memcpy(m.u.manifest_req.model_id, x->id, 32);
    m.u.manifest_req.offset = x->mhave;
    uint32_t want = PROTO_MANIFEST_PIECE_MAX;
    if (x->mtotal && x->mtotal - x->mhave < want)
        want = x->mtotal - x->mhave;
    m.u.manifest_req.length = want;
    send_msg(x, xp, &m);
    x->ops->flush(x->arg, xp->peer);
}

void
nvx__xf_manifest_unask(nvx_xfer *x, struct xpeer *xp)
{
    if (xp->masked)
        x->n_masked--;
    xp->masked = false;
}

void
nvx__xf_manifest_unask_all(nvx_xfer *x)
{
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        nvx__xf_manifest_unask(x, xp);
}

/* Asks one peer that has the model for the manifest's next piece (the
 * download goes on where it is: the whole is checked against the id). */
void
nvx__xf_manifest_next(nvx_xfer *x)
{
    if (x->state != PROTO_CTL_STATE_MANIFEST || x->opening || x->ending || x->n_masked > 0)
        return;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (xp->has) {
            x->mpiece_ms = x->now;
            x->mwidth = 1;
            nvx__xf_manifest_ask(x, xp);
            return;
        }
    }
}

/* The piece is late (NVX_XFER_MANIFEST_SLOW_MS): ask more holders, twice
 * as many each time, so that peers that claim the model and never answer
 * cost a few seconds, not a timeout each. */
void
nvx__xf_manifest_late(nvx_xfer *x, uint64_t now)
{
    if (x->n_masked == 0 || now - x->mpiece_ms < NVX_XFER_MANIFEST_SLOW_MS)
        return;
    x->mpiece_ms = now;
    unsigned more = x->mwidth;
    for (struct xpeer *xp = x->peers; xp && more > 0; xp = xp->next) {
        if (xp->has && !xp->masked) {
            nvx__xf_manifest_ask(x, xp);
            more--;
        }
    }
    x->mwidth *= 2;
}

/* ---- HAVE -------------------------------------------------------------- */

/* Sets bits [a, b) of bits, a byte at a time; with on_new, calls it for
 * every bit that was clear. Returns the bytes touched plus the new bits:
 * the work a HAVE costs, whatever it claims (a range of a million chunks
 * that are all set already costs 128 Ki byte tests, never a million
 * calls). */
static uint64_t
bits_set_range(uint8_t *bits, uint32_t a, uint32_t b, void (*on_new)(void *, uint32_t), void *arg)
{
    uint64_t work = 0;
    while (a < b) {
        uint32_t k = a / 8, lo = a % 8, hi = b - 8 * k < 8 ? b - 8 * k : 8;
        uint8_t mask = (uint8_t)(((1u << hi) - 1) & ~((1u << lo) - 1));
        uint8_t fresh = (uint8_t)(mask & ~bits[k]);
        bits[k] |= mask;
        work++;
        for (; fresh && on_new; fresh &= (uint8_t)(fresh - 1), work++)
            on_new(arg, 8 * k + (uint32_t)__builtin_ctz(fresh));
        a = 8 * k + hi;
    }
    return work;
}

int
nvx__xf_chunkset_bits(const proto_chunkset *set, uint8_t **ret_bits, uint32_t *ret_n)
{
    if (set->kind == PROTO_CHUNKSET_ALL) {
        *ret_bits = NULL;
        *ret_n = 0;
        return 0;
    }
    uint32_t n = set->kind == PROTO_CHUNKSET_BITMAP ? set->nbits : 0;
    if (set->kind == PROTO_CHUNKSET_RANGES && set->n_ranges > 0) {
        const proto_range *last = &set->ranges[set->n_ranges - 1];
        n = last->start + last->count;
    }
    uint8_t *bits = calloc((n + 7) / 8 + 1, 1);
    if (!bits)
        return -ENOMEM;
    if (set->kind == PROTO_CHUNKSET_BITMAP)
        memcpy(bits, set->bitmap, (n + 7) / 8);
    else
        for (size_t r = 0; r < set->n_ranges; r++)
            bits_set_range(bits, set->ranges[r].start, set->ranges[r].start + set->ranges[r].count,
                           NULL, NULL);
    *ret_bits = bits;
    *ret_n = n;
    return 0;
}

/* Grows a peer's bits to nb (ranges announced before the manifest came may
 * reach past its first HAVE's last chunk: a super-seeder reveals more). */
static int
bits_grow(struct xpeer *xp, uint32_t nb)
{
    if (nb <= xp->nbits)
        return 0;
    uint8_t *b = realloc(xp->bits, (nb + 7) / 8 + 1);
    if (!b)
        return -ENOMEM;
    memset(b + (xp->nbits + 7) / 8 + 1, 0, (nb + 7) / 8 - (xp->nbits + 7) / 8);
    xp->bits = b;
    xp->nbits = nb;
    return 0;
}

struct have_arg {
    nvx_xfer *x;
    struct xpeer *xp;
};

static void
have_new(void *arg, uint32_t i)
{
    struct have_arg *h = arg;
    if (h->xp->pp && !nvx__xf_refused(h->xp, i))
        nvx_picker_peer_have(h->x->pk, h->xp->pp, i);
}

/* A peer we already know announced more chunks (a fetcher that verified
 * some, a super-seeder revealing more). The cost is the bytes of bitmap the
 * message names plus the chunks new to us (bits_set_range), never a scan
 * per claimed chunk: a peer that repeats a HAVE naming every chunk gets
 * little work out of it (issue 9, item 6). */
void
nvx__xf_have_merge(nvx_xfer *x, struct xpeer *xp, const proto_chunkset *set)
{
    if (!xp->bits)
        return; /* has everything already */
    uint32_t n = x->pk ? nvx_picker_n_chunks(x->pk) : PROTO_CHUNKS_MAX;
    struct have_arg h = { x, xp };
    if (set->kind == PROTO_CHUNKSET_RANGES) {
        if (set->n_ranges == 0)
            return;
        const proto_range *last = &set->ranges[set->n_ranges - 1];
        uint64_t end = (uint64_t)last->start + last->count;
        if (bits_grow(xp, end < n ? (uint32_t)end : n) < 0)
            return;
        n = n < xp->nbits ? n : xp->nbits;
        for (size_t r = 0; r < set->n_ranges && set->ranges[r].start < n; r++) {
            uint64_t e = (uint64_t)set->ranges[r].start + set->ranges[r].count;
            x->work += bits_set_range(xp->bits, set->ranges[r].start, e < n ? (uint32_t)e : n,
                                      have_new, &h);
        }
    } else if (set->kind == PROTO_CHUNKSET_BITMAP) {
        if (bits_grow(xp, set->nbits < n ? set->nbits : n) < 0)
            return;
        uint32_t m = set->nbits < xp->nbits ? set->nbits : xp->nbits;
        for (uint32_t k = 0; k < (m + 7) / 8; k++) {
            uint8_t want = set->bitmap[k];
            if (8 * k + 8 > m)
                want &= (uint8_t)((1u << (m - 8 * k)) - 1);
            uint8_t fresh = (uint8_t)(want & ~xp->bits[k]);
            xp->bits[k] |= want;
            x->work++;
            for (; fresh; fresh &= (uint8_t)(fresh - 1), x->work++)
                have_new(&h, 8 * k + (uint32_t)__builtin_ctz(fresh));
        }
    } else if (x->pk) {
        /* ALL after a partial HAVE: its bits may end before the model. */
        if (bits_grow(xp, n) < 0)
            return;
        x->work += bits_set_range(xp->bits, 0, n, have_new, &h);
    } else { /* ALL before the manifest: it has everything, whatever the size */
        free(xp->bits);
        xp->bits = NULL;
        xp->nbits = 0;
    }
    x->pump_due = true;
}

/* Tells the peers that fetch this model too (their HAVE was not ALL) that
 * we hold the n chunks of idx now, in one HAVE. Sorts idx. */
void
nvx__xf_announce_chunks(nvx_xfer *x, uint32_t *idx, size_t n)
{
    if (n == 0)
        return;
    qsort(idx, n, sizeof(*idx), nvx_cmp_u32);
    proto_msg m = { .type = PROTO_MSG_HAVE };
    memcpy(m.u.want.model_id, x->id, 32);
    proto_chunkset *set = &m.u.want.set;
    set->kind = PROTO_CHUNKSET_RANGES;
    for (size_t i = 0; i < n; i++) {
        proto_range *last = set->n_ranges ? &set->ranges[set->n_ranges - 1] : NULL;
        if (last && idx[i] < last->start + last->count)
            continue; /* a duplicate */
        if (last && last->start + last->count == idx[i])
            last->count++;
        else
            set->ranges[set->n_ranges++] = (proto_range){ .start = idx[i], .count = 1 };
    }
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (!xp->has || !xp->bits)
            continue;
        send_msg(x, xp, &m);
        x->ops->flush(x->arg, xp->peer);
    }
}
