/* SPDX-License-Identifier: MIT */
/*
 * The transfer engine (daemon/xfer.h): state and decisions of one fetch,
 * no I/O. Every public entry counts itself in x->depth and ends with
 * settle(), the only place that reports the end (ops->ended, after which
 * the adapter may free x): an action that calls back into the engine
 * (drop_peer -> nvx_xfer_peer_down) never frees x under its caller.
 */
#include "daemon/xfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/picker.h"
#include "daemon/util.h"
#include "proto/control.h"

enum {
    CREQ_PIECES_MAX = 256, /* got_bits */
};

/* One chunk requested from one peer, maybe in several pieces. */
struct creq {
    struct creq *prev, *next; /* the peer's list, oldest first */
    uint32_t idx, len;
    uint32_t req_base, npieces, piece;
    uint32_t got;                                /* bytes received */
    uint64_t got_bits[CREQ_PIECES_MAX / 64];     /* pieces received */
    uint8_t *buf;                                /* pieces gathered here (NULL: one piece) */
    uint64_t t_sent;
    bool dup_asked; /* asked of another peer as well (slow) */
};

struct xpeer {
    struct xpeer *next;
    void *peer;
    uint8_t id[32];
    char addr[NVX_XFER_ADDR_LEN];
    uint32_t piece;
    uint64_t window;
    bool has;            /* answered HAVE: holds some or all of the model */
    uint8_t *bits;       /* with has: NULL is ALL */
    uint32_t nbits;
    nvx_picker_peer *pp; /* with has, once the picker exists */
    uint64_t retry_ms;   /* BUSY: do not ask before this */
    struct creq *creqs, *creqs_tail;
    /* Last DATA, or when requests started waiting: a peer whose queue
     * makes no progress for NVX_XFER_REQUEST_TIMEOUT_MS stalls (a slow
     * honest peer with a deep queue still delivers every few seconds). */
    uint64_t progress_ms;
};

struct nvx_xfer {
    const nvx_xfer_ops *ops;
    void *arg;
    uint8_t id[32];
    uint64_t seed, now;
    uint64_t win[3]; /* picker window limits (0: the picker's) */
    int state, error;
    bool opening, ending, ended, committing, finishing, pump_due;
    unsigned depth; /* public entries on the stack */
    unsigned jobs;  /* store, commit and finish actions not answered */
    struct xpeer *peers;
    /* manifest download */
    struct xpeer *mpeer;
    uint32_t mreq;
    uint64_t mreq_ms;
    uint8_t *mbuf;
    uint32_t mtotal, mhave;
    uint8_t msender[32]; /* who sent the manifest being checked */
    char msender_addr[NVX_XFER_ADDR_LEN];
    /* chunks */
    nvx_picker *pk;
    uint32_t *chunk_len;
    uint64_t bytes_total, bytes_done, chunks_total, chunks_done;
    uint32_t uncommitted;
    uint64_t last_commit_ms, lonely_since_ms, rewant_ms;
    nvx_xfer_chunk *ready, **ready_tail; /* received, waiting for a store action */
    unsigned n_ready;
    uint64_t pending; /* bytes received, not yet stored */
    uint64_t rate, rate_bytes;
};

static void
settle(nvx_xfer *x)
{
    if (x->depth == 0 && x->ending && !x->ended && x->jobs == 0 && !x->opening) {
        x->ended = true;
        x->ops->ended(x->arg); /* may free x */
    }
}

#define ENTER(x) ((x)->depth++)
#define LEAVE(x)                                                                                   \
    do {                                                                                           \
        (x)->depth--;                                                                              \
        settle(x);                                                                                 \
    } while (0)

static struct xpeer *
xpeer_find(const nvx_xfer *x, const void *peer)
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

static void
send_want(nvx_xfer *x, struct xpeer *xp)
{
    proto_msg m = { .type = PROTO_MSG_WANT };
    memcpy(m.u.want.model_id, x->id, 32);
    m.u.want.set.kind = PROTO_CHUNKSET_ALL;
    send_msg(x, xp, &m);
    x->ops->flush(x->arg, xp->peer);
}

/* ---- requests ---------------------------------------------------------- */

static void
creq_send(nvx_xfer *x, struct xpeer *xp, const struct creq *c, uint8_t type)
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
        send_msg(x, xp, &m);
    }
}

static void
creq_unlink(struct xpeer *xp, struct creq *c)
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

static struct creq *
creq_find(const struct xpeer *xp, uint32_t req_id)
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
            creq_send(x, xp, xp->creqs, PROTO_MSG_CANCEL);
        creq_unlink(xp, xp->creqs);
    }
    if (send_cancel)
        x->ops->flush(x->arg, xp->peer);
}

/* The peer no longer counts as having the model (NOT_FOUND, gone). */
static void
xpeer_unhave(nvx_xfer *x, struct xpeer *xp, bool send_cancel)
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
}

static void manifest_next(nvx_xfer *x);

static void
xpeer_remove(nvx_xfer *x, struct xpeer *xp, bool send_cancel)
{
    xpeer_unhave(x, xp, send_cancel);
    for (struct xpeer **pp = &x->peers; *pp; pp = &(*pp)->next) {
        if (*pp == xp) {
            *pp = xp->next;
            break;
        }
    }
    if (x->mpeer == xp) {
        x->mpeer = NULL;
        manifest_next(x);
    }
    free(xp);
}

/* Removes the peer from the transfer, then asks the adapter to close its
 * session (which may call nvx_xfer_peer_down: a no-op by then). */
static void
xpeer_drop(nvx_xfer *x, struct xpeer *xp, const char *why)
{
    void *peer = xp->peer;
    xpeer_remove(x, xp, false);
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
    creq_send(x, xp, c, PROTO_MSG_REQUEST);
    return true;
}

/* Requests chunks from one peer while its window has room and *budget
 * (bytes the transfer may still hold) lasts. */
static void
send_requests(nvx_xfer *x, struct xpeer *xp, uint64_t now, uint64_t *budget)
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

/* A request that has waited NVX_XFER_SLOW_MS at one peer (a seeder shared
 * by many fetchers, a peer on a thin link) is asked of another peer that
 * has the chunk and room as well; the first copy wins and the other is
 * cancelled (stored_one). Without this a chunk queued at a slow peer is
 * not asked anywhere else until the endgame, however fast the others. */
static void
ask_slow_elsewhere(nvx_xfer *x, uint64_t now)
{
    unsigned asked = 0;
    for (struct xpeer *slow = x->peers; slow; slow = slow->next) {
        for (struct creq *c = slow->creqs; c && now - c->t_sent > NVX_XFER_SLOW_MS;
             c = c->next) {
            if (c->dup_asked)
                continue;
            for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
                if (xp == slow || !xp->pp || xp->retry_ms > now ||
                    nvx_picker_dup(x->pk, xp->pp, c->idx, now) < 0)
                    continue;
                if (request_chunk(x, xp, c->idx, now))
                    x->ops->flush(x->arg, xp->peer);
                c->dup_asked = true;
                if (++asked == NVX_XFER_SLOW_ASK_MAX)
                    return;
                break;
            }
        }
    }
}

/* ---- store actions ----------------------------------------------------- */

static void
chunk_free(nvx_xfer *x, nvx_xfer_chunk *c)
{
    x->pending -= c->len;
    free(c->mem);
    free(c);
}

static void
ready_free(nvx_xfer *x)
{
    while (x->ready) {
        nvx_xfer_chunk *c = x->ready;
        x->ready = c->next;
        chunk_free(x, c);
    }
    x->ready_tail = &x->ready;
    x->n_ready = 0;
}

/* Hands the ready chunks to store actions: full batches, and with all also
 * the rest (no more chunks are coming soon). */
static void
ready_dispatch(nvx_xfer *x, bool all)
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
static bool
expect_more(const nvx_xfer *x)
{
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->pp && nvx_picker_peer_inflight(xp->pp) > 0)
            return true;
    return false;
}

static void
maybe_commit(nvx_xfer *x, uint64_t now, bool force)
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

static void
maybe_finish(nvx_xfer *x)
{
    if (!x->pk || !nvx_picker_done(x->pk) || x->jobs > 0 || x->finishing || x->ending)
        return;
    x->state = PROTO_CTL_STATE_VERIFYING;
    x->finishing = true;
    x->jobs++;
    x->ops->finish(x->arg);
}

static void
end(nvx_xfer *x, int state, int error)
{
    if (x->ending)
        return;
    x->ending = true;
    x->state = state;
    x->error = error;
    ready_free(x);
    free(x->mbuf);
    x->mbuf = NULL;
    x->mpeer = NULL;
    while (x->peers)
        xpeer_remove(x, x->peers, true);
}

/* ---- manifest ---------------------------------------------------------- */

static void
manifest_request(nvx_xfer *x)
{
    struct xpeer *xp = x->mpeer;
    proto_msg m = { .type = PROTO_MSG_MANIFEST_REQ };
    x->mreq = x->ops->req_ids(x->arg, xp->peer, 1);
    x->mreq_ms = x->now;
    m.u.manifest_req.req_id = x->mreq;
    memcpy(m.u.manifest_req.model_id, x->id, 32);
    m.u.manifest_req.offset = x->mhave;
    uint32_t want = PROTO_MANIFEST_PIECE_MAX;
    if (x->mtotal && x->mtotal - x->mhave < want)
        want = x->mtotal - x->mhave;
    m.u.manifest_req.length = want;
    send_msg(x, xp, &m);
    x->ops->flush(x->arg, xp->peer);
}

/* Starts (or restarts) the manifest download from a peer that has the model. */
static void
manifest_next(nvx_xfer *x)
{
    free(x->mbuf);
    x->mbuf = NULL;
    x->mhave = x->mtotal = 0;
    x->mpeer = NULL;
    if (x->state != PROTO_CTL_STATE_MANIFEST || x->opening || x->ending)
        return;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (xp->has) {
            x->mpeer = xp;
            manifest_request(x);
            return;
        }
    }
}

void
nvx_xfer_manifest(nvx_xfer *x, void *peer, const proto_manifest *m)
{
    struct xpeer *xp = xpeer_find(x, peer);
    if (!xp || x->mpeer != xp || m->req_id != x->mreq || x->opening || x->ending)
        return;
    ENTER(x);
    if (x->mhave == 0) {
        if (m->total == 0 || m->total > PROTO_MANIFEST_MAX) {
            xpeer_drop(x, xp, "manifest too large");
            goto out;
        }
        x->mbuf = malloc(m->total);
        if (!x->mbuf) {
            end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
            goto out;
        }
        x->mtotal = m->total;
    }
    if (m->total != x->mtotal || m->offset != x->mhave || m->bytes.len > x->mtotal - x->mhave) {
        xpeer_drop(x, xp, "inconsistent manifest pieces");
        goto out;
    }
    memcpy(x->mbuf + x->mhave, m->bytes.p, m->bytes.len);
    x->mhave += (uint32_t)m->bytes.len;
    if (x->mhave < x->mtotal) {
        manifest_request(x);
        goto out;
    }
    /* Whole: the adapter checks it against the id and opens the model. */
    memcpy(x->msender, xp->id, 32);
    memcpy(x->msender_addr, xp->addr, sizeof(x->msender_addr));
    uint8_t *mbuf = x->mbuf;
    x->mbuf = NULL;
    x->mpeer = NULL;
    x->opening = true;
    x->ops->open(x->arg, mbuf, x->mtotal);
out:
    LEAVE(x);
}

void
nvx_xfer_opened(nvx_xfer *x, int res, uint32_t nc, const uint32_t *chunk_len,
                const uint8_t *have, uint64_t now)
{
    ENTER(x);
    x->now = now;
    x->opening = false;
    if (x->ending)
        goto out;
    if (res == -EBADMSG && x->msender_addr[0]) {
        x->ops->bad_peer(x->arg, x->msender, x->msender_addr,
                         "a manifest that does not match the id");
        manifest_next(x);
        goto out;
    }
    if (res < 0) {
        end(x, PROTO_CTL_STATE_FAILED, res);
        goto out;
    }
    if (res == NVX_XFER_OPEN_COMPLETE) {
        end(x, PROTO_CTL_STATE_DONE, 0);
        goto out;
    }
    if (res == NVX_XFER_OPEN_NEED_MANIFEST) {
        x->state = PROTO_CTL_STATE_MANIFEST;
        manifest_next(x);
        goto out;
    }
    int r = -ENOMEM;
    x->chunk_len = malloc((size_t)nc * sizeof(uint32_t));
    if (!x->chunk_len || (r = nvx_picker_new(nc, chunk_len, &x->pk)) < 0) {
        end(x, PROTO_CTL_STATE_FAILED, r);
        goto out;
    }
    memcpy(x->chunk_len, chunk_len, (size_t)nc * sizeof(uint32_t));
    /* Random ties between equally rare chunks: fetchers that start
     * together must not all ask for the same next chunk (daemon/picker.h). */
    nvx_picker_seed(x->pk, x->seed);
    if (x->win[0])
        nvx_picker_windows(x->pk, x->win[0], x->win[1], x->win[2]);
    x->state = PROTO_CTL_STATE_FETCHING;
    x->chunks_total = nc;
    for (uint32_t i = 0; i < nc; i++) {
        x->bytes_total += chunk_len[i];
        if (have && ((have[i / 8] >> (i % 8)) & 1)) {
            nvx_picker_set_have(x->pk, i);
            x->bytes_done += chunk_len[i];
            x->chunks_done++;
        }
    }
    x->last_commit_ms = now;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->has && nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, xp->window, xp, &xp->pp) < 0)
            xpeer_unhave(x, xp, false);
    /* Peers that had nothing before may be fetching this model too and
     * hold a partial now; ask again. */
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (!xp->has)
            send_want(x, xp);
    maybe_finish(x); /* a resume that had every chunk */
    x->pump_due = true;
out:
    LEAVE(x);
}

/* ---- HAVE -------------------------------------------------------------- */

static int
chunkset_bits(const proto_chunkset *set, uint8_t **ret_bits, uint32_t *ret_n)
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
            for (uint32_t i = 0; i < set->ranges[r].count; i++) {
                uint32_t k = set->ranges[r].start + i;
                bits[k / 8] |= (uint8_t)(1u << (k % 8));
            }
    *ret_bits = bits;
    *ret_n = n;
    return 0;
}

static void
have_one(nvx_xfer *x, struct xpeer *xp, uint32_t i)
{
    if (i >= xp->nbits) {
        /* Ranges announced before the manifest came may reach past the
         * first HAVE's last chunk (a super-seeder reveals more). */
        uint32_t nb = i + 1;
        uint8_t *b = realloc(xp->bits, (nb + 7) / 8 + 1);
        if (!b)
            return;
        memset(b + (xp->nbits + 7) / 8 + 1, 0, (nb + 7) / 8 - (xp->nbits + 7) / 8);
        xp->bits = b;
        xp->nbits = nb;
    }
    xp->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    if (xp->pp)
        nvx_picker_peer_have(x->pk, xp->pp, i);
}

/* A peer we already know announced more chunks (a fetcher that verified
 * some, a super-seeder revealing more). Ranges cost what they name, not
 * the model's size. */
static void
have_merge(nvx_xfer *x, struct xpeer *xp, const proto_chunkset *set)
{
    if (!xp->bits)
        return; /* has everything already */
    uint32_t n = x->pk ? nvx_picker_n_chunks(x->pk) : xp->nbits;
    if (set->kind == PROTO_CHUNKSET_RANGES) {
        if (!x->pk)
            n = PROTO_CHUNKS_MAX; /* the manifest will say; bits grow */
        for (size_t r = 0; r < set->n_ranges; r++)
            for (uint64_t i = set->ranges[r].start;
                 i < (uint64_t)set->ranges[r].start + set->ranges[r].count && i < n; i++)
                have_one(x, xp, (uint32_t)i);
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (proto_chunkset_contains(set, i))
                have_one(x, xp, i);
    }
    x->pump_due = true;
}

void
nvx_xfer_have(nvx_xfer *x, void *peer, const proto_chunkset *set)
{
    struct xpeer *xp = xpeer_find(x, peer);
    if (!xp || x->finishing || x->ending)
        return;
    ENTER(x);
    if (xp->has) {
        have_merge(x, xp, set);
        goto out;
    }
    if (chunkset_bits(set, &xp->bits, &xp->nbits) < 0)
        goto out;
    xp->has = true;
    if (x->pk) {
        if (nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, xp->window, xp, &xp->pp) < 0)
            xpeer_unhave(x, xp, false);
        x->pump_due = true;
    } else if (x->state == PROTO_CTL_STATE_MANIFEST && !x->mpeer && !x->opening) {
        x->mpeer = xp;
        manifest_request(x);
    }
out:
    LEAVE(x);
}

/* Tells the peers that fetch this model too (their HAVE was not ALL) that
 * we hold the n chunks of idx now, in one HAVE. Sorts idx. */
static void
announce_chunks(nvx_xfer *x, uint32_t *idx, size_t n)
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

/* ---- DATA -------------------------------------------------------------- */

uint32_t
nvx_xfer_data(nvx_xfer *x, void *peer, const proto_data *d, uint64_t now)
{
    struct xpeer *xp = xpeer_find(x, peer);
    struct creq *c = xp ? creq_find(xp, d->req_id) : NULL;
    if (!c)
        return 0; /* cancelled or duplicate: ignore */
    ENTER(x);
    x->now = now;
    uint32_t i = d->req_id - c->req_base;
    uint32_t off = i * c->piece;
    uint32_t want = c->len - off < c->piece ? c->len - off : c->piece;
    if (d->chunk != c->idx || memcmp(d->model_id, x->id, 32) != 0 || d->offset != off ||
        d->bytes.len != want) {
        xpeer_drop(x, xp, "DATA does not match its REQUEST");
        want = 0;
        goto out;
    }
    x->rate_bytes += want;
    xp->progress_ms = now;
    if ((c->got_bits[i / 64] >> (i % 64)) & 1)
        goto out;
    c->got_bits[i / 64] |= UINT64_C(1) << (i % 64);
    uint8_t *mem = NULL;
    const uint8_t *data = c->buf;
    if (c->buf) {
        memcpy(c->buf + off, d->bytes.p, want);
    } else {
        size_t cap = 0;
        mem = x->ops->take_msg ? x->ops->take_msg(x->arg, peer, &cap) : NULL;
        if (mem && d->bytes.p >= mem && (size_t)(d->bytes.p - mem) + want <= cap) {
            data = d->bytes.p;
        } else { /* not in the message buffer after all: copy it */
            free(mem);
            mem = malloc(want ? want : 1);
            if (mem)
                memcpy(mem, d->bytes.p, want);
            data = mem;
        }
    }
    c->got += want;
    if (c->got < c->len)
        goto out;
    int r = xp->pp ? nvx_picker_received(x->pk, xp->pp, c->idx, now) : -ENOENT;
    if (r == 1) {
        nvx_xfer_chunk *ch = data ? calloc(1, sizeof(*ch)) : NULL;
        if (ch) {
            ch->idx = c->idx;
            ch->len = c->len;
            ch->mem = c->buf ? c->buf : mem;
            ch->data = data;
            memcpy(ch->sender, xp->id, 32);
            memcpy(ch->sender_addr, xp->addr, sizeof(ch->sender_addr));
            c->buf = NULL; /* the chunk owns it */
            mem = NULL;
            *x->ready_tail = ch;
            x->ready_tail = &ch->next;
            x->n_ready++;
            x->pending += ch->len;
            ready_dispatch(x, false);
        } else {
            nvx_picker_verified(x->pk, c->idx, false); /* no memory: fetched again */
        }
    }
    free(mem); /* a duplicate, or no memory for the chunk */
    creq_unlink(xp, c);
    x->pump_due = true;
out:
    LEAVE(x);
    return want;
}

/* Returns true when chunk c is newly verified (to be announced). */
static bool
stored_one(nvx_xfer *x, nvx_xfer_chunk *c)
{
    bool ok = c->res >= 0;
    if (x->pk)
        nvx_picker_verified(x->pk, c->idx, ok);
    if (ok) {
        /* Cancel the duplicates the endgame sent elsewhere. */
        nvx_picker_peer *holders[NVX_PICKER_ENDGAME_DUP * 2];
        size_t nh = x->pk ? nvx_picker_holders(x->pk, c->idx, holders, 4) : 0;
        for (size_t i = 0; i < nh; i++) {
            struct xpeer *xp = nvx_picker_peer_user(holders[i]);
            for (struct creq *q = xp->creqs; q; q = q->next) {
                if (q->idx == c->idx) {
                    creq_send(x, xp, q, PROTO_MSG_CANCEL);
                    x->ops->flush(x->arg, xp->peer);
                    creq_unlink(xp, q);
                    break;
                }
            }
            nvx_picker_cancel(x->pk, holders[i], c->idx);
        }
        x->bytes_done += c->len;
        x->chunks_done++;
        x->uncommitted++;
        return true;
    }
    if (c->res == -EBADMSG) {
        char what[64];
        snprintf(what, sizeof(what), "a bad chunk (%u)", c->idx);
        x->ops->bad_peer(x->arg, c->sender, c->sender_addr, what);
    } else if (c->res != -EAGAIN) { /* EAGAIN: not stored, fetched again */
        end(x, PROTO_CTL_STATE_FAILED, c->res);
    }
    return false;
}

void
nvx_xfer_stored(nvx_xfer *x, nvx_xfer_chunk **chunks, unsigned n, uint64_t now)
{
    ENTER(x);
    x->now = now;
    x->jobs--;
    uint32_t fresh[NVX_XFER_PUT_BATCH];
    size_t nf = 0;
    for (unsigned k = 0; k < n; k++) {
        if (!x->ending && stored_one(x, chunks[k]) && nf < NVX_XFER_PUT_BATCH)
            fresh[nf++] = chunks[k]->idx;
        chunk_free(x, chunks[k]);
    }
    if (!x->ending) {
        announce_chunks(x, fresh, nf);
        maybe_commit(x, now, false);
        maybe_finish(x);
        x->pump_due = true;
    }
    LEAVE(x);
}

void
nvx_xfer_committed(nvx_xfer *x, int res, uint64_t now)
{
    ENTER(x);
    x->now = now;
    x->jobs--;
    x->committing = false;
    if (res < 0)
        end(x, PROTO_CTL_STATE_FAILED, res);
    maybe_commit(x, now, false);
    maybe_finish(x);
    x->pump_due = true;
    LEAVE(x);
}

void
nvx_xfer_finished(nvx_xfer *x, int res)
{
    ENTER(x);
    x->jobs--;
    x->finishing = false;
    if (res < 0)
        end(x, PROTO_CTL_STATE_FAILED, res);
    else
        end(x, PROTO_CTL_STATE_DONE, 0);
    LEAVE(x);
}

/* ---- peers ------------------------------------------------------------- */

void
nvx_xfer_peer_up(nvx_xfer *x, void *peer, const nvx_xfer_peer_info *info)
{
    if (x->ending || xpeer_find(x, peer))
        return;
    struct xpeer *xp = calloc(1, sizeof(*xp));
    if (!xp)
        return; /* it is asked again when it comes back */
    ENTER(x);
    xp->peer = peer;
    memcpy(xp->id, info->id, 32);
    snprintf(xp->addr, sizeof(xp->addr), "%s", info->addr ? info->addr : "");
    xp->piece = info->piece ? info->piece : 1;
    xp->window = info->window;
    xp->next = x->peers;
    x->peers = xp;
    if (!x->finishing)
        send_want(x, xp);
    LEAVE(x);
}

void
nvx_xfer_peer_down(nvx_xfer *x, void *peer)
{
    struct xpeer *xp = xpeer_find(x, peer);
    if (!xp)
        return;
    ENTER(x);
    xpeer_remove(x, xp, false);
    x->pump_due = true;
    LEAVE(x);
}

void
nvx_xfer_peer_wants(nvx_xfer *x, void *peer)
{
    struct xpeer *xp = xpeer_find(x, peer);
    /* Only once we hold a partial ourselves (x->pk): two fetchers still
     * waiting for the manifest would otherwise WANT each other forever. */
    if (xp && !xp->has && x->pk && !x->finishing && !x->ending)
        send_want(x, xp);
}

void
nvx_xfer_not_found(nvx_xfer *x, void *peer, const proto_not_found *nf, uint64_t now)
{
    struct xpeer *xp = xpeer_find(x, peer);
    if (!xp || x->ending)
        return;
    ENTER(x);
    x->now = now;
    if (nf->what == PROTO_NOTFOUND_MANIFEST) {
        xpeer_unhave(x, xp, false);
        if (x->mpeer == xp)
            manifest_next(x);
        goto out;
    }
    struct creq *c = creq_find(xp, nf->req_id);
    if (!c)
        goto out;
    uint32_t idx = c->idx;
    creq_send(x, xp, c, PROTO_MSG_CANCEL); /* the other pieces of the chunk */
    x->ops->flush(x->arg, xp->peer);
    creq_unlink(xp, c);
    if (xp->pp)
        nvx_picker_cancel(x->pk, xp->pp, idx);
    if (nf->what == PROTO_NOTFOUND_BUSY) {
        xp->retry_ms = now + NVX_XFER_BUSY_RETRY_MS;
        if (xp->pp)
            nvx_picker_peer_busy(x->pk, xp->pp);
    } else {
        /* It said HAVE but cannot serve it: stop asking it until it says
         * HAVE again. */
        xpeer_unhave(x, xp, true);
    }
    x->pump_due = true;
out:
    LEAVE(x);
}

/* ---- time -------------------------------------------------------------- */

void
nvx_xfer_pump(nvx_xfer *x, uint64_t now)
{
    ENTER(x);
    x->now = now;
    x->pump_due = false;
    if (!x->pk || x->ending || x->finishing)
        goto out;
    /* Received chunks not yet stored hold memory, and every requested one
     * will: together they stay under NVX_XFER_HELD_MAX, so a disk slower
     * than the link slows the transfer instead of growing the daemon. */
    uint64_t held = x->pending;
    size_t eligible = 0;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (!xp->pp)
            continue;
        held += nvx_picker_peer_inflight(xp->pp);
        eligible += xp->retry_ms <= now;
    }
    uint64_t budget = held < NVX_XFER_HELD_MAX ? NVX_XFER_HELD_MAX - held : 0;
    /* First an even share each, so a short budget is not all taken by the
     * first peer listed; then whatever the others' windows left. */
    for (int pass = 0; pass < 2 && eligible > 0 && budget > 0; pass++) {
        uint64_t share = pass == 0 ? budget / eligible + 1 : UINT64_MAX;
        for (struct xpeer *xp = x->peers; xp && budget > 0; xp = xp->next) {
            if (!xp->pp || xp->retry_ms > now)
                continue;
            uint64_t left = share < budget ? share : budget, given = left;
            send_requests(x, xp, now, &left);
            budget -= given - left;
        }
    }
    ready_dispatch(x, !expect_more(x));
out:
    LEAVE(x);
}

bool
nvx_xfer_pump_due(const nvx_xfer *x)
{
    return x->pump_due;
}

void
nvx_xfer_tick(nvx_xfer *x, uint64_t now, uint64_t tick_ms)
{
    if (x->ending)
        return;
    ENTER(x);
    x->now = now;
    size_t holders = nvx_xfer_holders(x, NULL, 0);
    if (x->state == PROTO_CTL_STATE_MANIFEST && !x->opening && holders == 0) {
        if (!x->lonely_since_ms)
            x->lonely_since_ms = now ? now : 1;
        if (now - x->lonely_since_ms >= NVX_XFER_NO_PROVIDER_MS) {
            end(x, PROTO_CTL_STATE_FAILED, -EHOSTUNREACH);
            goto out;
        }
    } else {
        x->lonely_since_ms = 0;
    }
    /* A peer that had nothing when asked may be fetching the model too
     * (or have finished it) by now: ask the others again now and then.
     * Partial holders too: one that finished before it knew we fetch
     * never announced its last chunks to us, and answers HAVE now. */
    if (!x->finishing && now - x->rewant_ms >= NVX_XFER_REWANT_MS) {
        x->rewant_ms = now;
        for (struct xpeer *xp = x->peers; xp; xp = xp->next)
            if (!xp->has || xp->bits)
                send_want(x, xp);
    }
    if (tick_ms)
        x->rate = (x->rate * 3 + x->rate_bytes * (1000 / tick_ms)) / 4;
    x->rate_bytes = 0;
    ready_dispatch(x, true); /* bounds how long a received chunk waits */
    maybe_commit(x, now, false);
    if (x->pk && !x->finishing)
        ask_slow_elsewhere(x, now);
    /* Requests that never came back: the peer stalls; drop it. */
again:
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if ((xp->creqs && now - xp->progress_ms > NVX_XFER_REQUEST_TIMEOUT_MS) ||
            (x->mpeer == xp && now - x->mreq_ms > NVX_XFER_REQUEST_TIMEOUT_MS)) {
            xpeer_drop(x, xp, "request timed out");
            goto again;
        }
    }
    if (!x->ending)
        nvx_xfer_pump(x, now);
out:
    LEAVE(x);
}

void
nvx_xfer_end(nvx_xfer *x, int state, int error)
{
    ENTER(x);
    end(x, state, error);
    LEAVE(x);
}

/* ---- life -------------------------------------------------------------- */

int
nvx_xfer_new(const nvx_xfer_ops *ops, void *arg, const uint8_t id[static 32], uint64_t seed,
             uint64_t now, nvx_xfer **ret)
{
    nvx_xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->ops = ops;
    x->arg = arg;
    memcpy(x->id, id, 32);
    x->seed = seed;
    x->now = now;
    x->rewant_ms = now;
    x->state = PROTO_CTL_STATE_MANIFEST;
    x->ready_tail = &x->ready;
    *ret = x;
    return 0;
}

void
nvx_xfer_windows(nvx_xfer *x, uint64_t min, uint64_t init, uint64_t max)
{
    x->win[0] = min;
    x->win[1] = init;
    x->win[2] = max;
}

void
nvx_xfer_start(nvx_xfer *x)
{
    ENTER(x);
    x->opening = true;
    x->ops->open(x->arg, NULL, 0);
    LEAVE(x);
}

void
nvx_xfer_free(nvx_xfer *x)
{
    if (!x)
        return;
    ready_free(x);
    while (x->peers) {
        struct xpeer *xp = x->peers;
        x->peers = xp->next;
        while (xp->creqs)
            creq_unlink(xp, xp->creqs);
        free(xp->bits);
        free(xp);
    }
    nvx_picker_free(x->pk);
    free(x->chunk_len);
    free(x->mbuf);
    free(x);
}

const uint8_t *
nvx_xfer_id(const nvx_xfer *x)
{
    return x->id;
}

bool
nvx_xfer_ending(const nvx_xfer *x)
{
    return x->ending;
}

bool
nvx_xfer_finishing(const nvx_xfer *x)
{
    return x->finishing;
}

size_t
nvx_xfer_holders(const nvx_xfer *x, void **peers, size_t cap)
{
    size_t n = 0;
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (!xp->has)
            continue;
        if (n < cap)
            peers[n] = xp->peer;
        n++;
    }
    return n;
}

void
nvx_xfer_stats_get(const nvx_xfer *x, nvx_xfer_stats *st)
{
    *st = (nvx_xfer_stats){
        .state = x->state,
        .error = x->error,
        .bytes_done = x->bytes_done,
        .bytes_total = x->bytes_total,
        .chunks_done = x->chunks_done,
        .chunks_total = x->chunks_total,
        .rate = x->rate,
        .peers = nvx_xfer_holders(x, NULL, 0),
        .endgame = x->pk && nvx_picker_endgame(x->pk),
        .pending = x->pending,
    };
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->pp)
            st->inflight += nvx_picker_peer_inflight(xp->pp);
}
