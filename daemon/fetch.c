/* SPDX-License-Identifier: MIT */
/*
 * Transfers: fetching a model from every peer that has it. The flow and the
 * guarantees are described at nvx_node_fetch() in daemon/node.h; the
 * scheduling decisions are daemon/picker.c's. Store work runs on the pool:
 *
 *   open job    model state; verify a downloaded manifest against the id and
 *               create the partial model; open it; copy chunks other models
 *               hold; read the bitmap (resume)
 *   puts job    up to NVX_NODE_PUT_BATCH received chunks: hash them at once
 *               (cas_hash_many, several SIMD lanes; one chunk at a time ran
 *               at a third of the speed and was a quarter of a fetch's CPU),
 *               then cas_partial_put_hashed() each. Received chunks wait in
 *               a ready list until a batch is full or no more are coming.
 *   commit job  cas_partial_commit(): fdatasync + bitmap transaction
 *   finish job  cas_partial_complete() (+ pin), then free the handle
 *   end job     commit what was verified, free the handle (cancel, failure,
 *               shutdown): chunks being written when it runs are either in
 *               the committed bitmap or not; never half-counted
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "daemon/util.h"
#include "libcas/hash.h"

enum {
    OPEN_COMPLETE = 1,
    OPEN_NEED_MANIFEST = 2,
    OPEN_READY = 3
};

struct xjob {
    uv_work_t w;
    struct xfer *x;
    int kind;
    int res;
    /* open */
    uint8_t *mbuf;
    uint32_t mlen;
    uint8_t sender[32];
    char sender_addr[NVX_ADDR_LEN];
    cas_manifest *man;
    cas_partial *part;
    uint32_t *chunk_len;
    uint8_t *have;
    uint64_t n_local;
    /* put (one received chunk, waiting in x->ready or part of a puts job) */
    struct xjob *next;
    uint32_t idx;
    uint8_t *buf, *mem; /* the chunk's bytes, within mem (freed) */
    uint32_t len;
    /* puts */
    struct xjob *subs[NVX_NODE_PUT_BATCH];
    unsigned n_subs;
};

enum {
    XJOB_OPEN,
    XJOB_PUTS,
    XJOB_COMMIT,
    XJOB_FINISH,
    XJOB_END
};

static void xfer_pump(struct xfer *x);
static void xfer_end(struct xfer *x, int state, int error);
static void xfer_try_finalize(struct xfer *x);
static void manifest_next(struct xfer *x);
static void send_want(struct xfer *x, nvx_peer *p);

static struct xfer *
xfer_find(nvx_node *n, const uint8_t id[32])
{
    for (struct xfer *x = n->xfers; x; x = x->next)
        if (memcmp(x->id, id, 32) == 0 && !x->ending)
            return x;
    return NULL;
}

static struct xpeer *
xpeer_find(struct xfer *x, nvx_peer *p)
{
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->p == p)
            return xp;
    return NULL;
}

static void
progress_fill(struct xfer *x, proto_ctl_progress *pr, int state)
{
    memset(pr, 0, sizeof(*pr));
    pr->state = (uint64_t)state;
    pr->transfer_id = x->xid;
    pr->bytes_done = x->bytes_done;
    pr->bytes_total = x->bytes_total;
    pr->chunks_done = x->chunks_done;
    pr->chunks_total = x->chunks_total;
    pr->rate = x->rate;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        pr->peer_count++;
    pr->has_model_id = true;
    memcpy(pr->model_id, x->id, 32);
}

/* ---- jobs -------------------------------------------------------------- */

static void
open_work(struct xjob *j, cas_store *s)
{
    struct xfer *x = j->x;
    int r;
    if (j->mbuf) {
        uint8_t h[CAS_HASH_LEN];
        cas_hash(j->mbuf, j->mlen, h);
        if (!cas_hash_equal(h, x->id)) {
            j->res = -EBADMSG;
            return;
        }
        uint8_t id[CAS_HASH_LEN];
        r = cas_store_partial_create(s, j->mbuf, j->mlen, id);
        if (r < 0) {
            j->res = r == -EBADMSG ? -EPROTO : r; /* hashes right, does not decode */
            return;
        }
    }
    cas_model_info info;
    r = cas_store_model_info(s, x->id, &info);
    if (r == -ENOENT) {
        j->res = OPEN_NEED_MANIFEST;
        return;
    }
    if (r < 0)
        goto fail;
    if (info.state == CAS_MODEL_COMPLETE) {
        if (x->pin && (r = cas_store_pin(s, x->id)) < 0)
            goto fail;
        j->res = OPEN_COMPLETE;
        return;
    }
    uint8_t *mb;
    size_t ml;
    r = cas_store_manifest_get(s, x->id, &mb, &ml);
    if (r < 0)
        goto fail;
    r = cas_manifest_decode(mb, ml, &j->man);
    free(mb);
    if (r < 0)
        goto fail;
    size_t nc = cas_manifest_chunk_count(j->man);
    if (nc == 0 || nc > NVX_PICKER_CHUNKS_MAX) {
        r = -E2BIG;
        goto fail;
    }
    r = cas_partial_open(s, x->id, &j->part);
    if (r < 0)
        goto fail;
    r = cas_partial_fill_local(j->part, &j->n_local);
    if (r < 0)
        goto fail;
    j->chunk_len = malloc(nc * sizeof(uint32_t));
    j->have = calloc((nc + 7) / 8, 1);
    if (!j->chunk_len || !j->have) {
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nc; i++) {
        cas_chunk_info ci;
        cas_manifest_chunk(j->man, i, &ci);
        j->chunk_len[i] = ci.len;
        if (cas_partial_has(j->part, i))
            j->have[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    if (j->n_local > 0)
        cas_partial_commit(j->part);
    j->res = OPEN_READY;
    return;
fail:
    j->res = r;
}

static void
xjob_work(uv_work_t *w)
{
    struct xjob *j = (struct xjob *)w;
    cas_store *s = j->x->node->store;
    switch (j->kind) {
    case XJOB_OPEN:
        open_work(j, s);
        break;
    case XJOB_PUTS: {
        const void *bufs[NVX_NODE_PUT_BATCH];
        size_t lens[NVX_NODE_PUT_BATCH];
        uint8_t got[NVX_NODE_PUT_BATCH][CAS_HASH_LEN];
        for (unsigned k = 0; k < j->n_subs; k++) {
            bufs[k] = j->subs[k]->buf;
            lens[k] = j->subs[k]->len;
        }
        if (j->x->node->put_delay_ms)
            nvx__test_delay(j->x->node->put_delay_ms * j->n_subs);
        cas_hash_many(bufs, lens, j->n_subs, got);
        for (unsigned k = 0; k < j->n_subs; k++)
            j->subs[k]->res = cas_partial_put_hashed(j->part, j->subs[k]->idx, j->subs[k]->buf,
                                                     j->subs[k]->len, got[k]);
        break;
    }
    case XJOB_COMMIT:
        j->res = cas_partial_commit(j->part);
        break;
    case XJOB_FINISH:
        j->res = cas_partial_complete(j->part);
        if (j->res == 0 && j->x->pin)
            j->res = cas_store_pin(s, j->x->id);
        cas_partial_free(j->part);
        break;
    case XJOB_END:
        j->res = cas_partial_commit(j->part);
        cas_partial_free(j->part);
        break;
    }
}

static void xjob_done(uv_work_t *w, int status);

static int
xjob_queue(struct xfer *x, struct xjob *j)
{
    j->x = x;
    int r = uv_queue_work(x->node->loop, &j->w, xjob_work, xjob_done);
    if (r < 0)
        return r;
    x->jobs++;
    x->node->jobs++;
    return 0;
}

static struct xjob *
xjob_new(int kind)
{
    struct xjob *j = calloc(1, sizeof(*j));
    if (j)
        j->kind = kind;
    return j;
}

/* Frees one received chunk (written, failed or dropped). */
static void
chunk_free(struct xfer *x, struct xjob *j)
{
    x->pending -= j->len;
    free(j->mem);
    free(j);
}

/* Frees the received chunks not yet handed to a puts job (the transfer
 * ends: they were never written, so they are simply fetched again later). */
static void
ready_free(struct xfer *x)
{
    while (x->ready) {
        struct xjob *j = x->ready;
        x->ready = j->next;
        chunk_free(x, j);
    }
    x->ready_tail = &x->ready;
    x->n_ready = 0;
}

/* Hands the ready chunks to puts jobs: full batches, and with all also the
 * rest (no more chunks are coming soon). */
static void
ready_dispatch(struct xfer *x, bool all)
{
    while (x->n_ready >= NVX_NODE_PUT_BATCH || (all && x->n_ready > 0)) {
        struct xjob *b = xjob_new(XJOB_PUTS);
        if (!b)
            return; /* the next tick tries again */
        b->part = x->part;
        while (b->n_subs < NVX_NODE_PUT_BATCH && x->ready) {
            b->subs[b->n_subs++] = x->ready;
            x->ready = x->ready->next;
            x->n_ready--;
        }
        if (!x->ready)
            x->ready_tail = &x->ready;
        if (xjob_queue(x, b) < 0) {
            for (unsigned k = 0; k < b->n_subs; k++) {
                nvx_picker_verified(x->pk, b->subs[k]->idx, false);
                chunk_free(x, b->subs[k]);
            }
            free(b);
            return;
        }
    }
}

/* True when some peer still owes this transfer requested bytes. */
static bool
expect_more(const struct xfer *x)
{
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->pp && nvx_picker_peer_inflight(xp->pp) > 0)
            return true;
    return false;
}

static void
maybe_commit(struct xfer *x, bool force)
{
    nvx_node *n = x->node;
    if (!x->part || x->committing || x->finishing || x->ending || x->uncommitted == 0)
        return;
    if (!force && x->uncommitted < NVX_NODE_COMMIT_CHUNKS &&
        nvx__now(n) - x->last_commit_ms < NVX_NODE_COMMIT_MS)
        return;
    struct xjob *j = xjob_new(XJOB_COMMIT);
    if (!j)
        return;
    j->part = x->part;
    if (xjob_queue(x, j) < 0) {
        free(j);
        return;
    }
    x->committing = true;
    x->uncommitted = 0;
    x->last_commit_ms = nvx__now(n);
}

static void
maybe_finish(struct xfer *x)
{
    if (!x->pk || !nvx_picker_done(x->pk) || x->jobs > 0 || x->finishing || x->ending)
        return;
    struct xjob *j = xjob_new(XJOB_FINISH);
    if (!j)
        return;
    j->part = x->part;
    x->state = PROTO_CTL_STATE_VERIFYING;
    if (xjob_queue(x, j) < 0) {
        free(j);
        xfer_end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
        return;
    }
    x->part = NULL; /* the job frees it */
    x->finishing = true;
}

static void
cancel_creq_send(nvx_peer *p, struct creq *c)
{
    if (p->closing || !p->established)
        return;
    for (uint32_t i = 0; i < c->npieces; i++) {
        if ((c->got_bits[i / 64] >> (i % 64)) & 1)
            continue;
        proto_msg m = { .type = PROTO_MSG_CANCEL };
        m.u.request.req_id = c->req_base + i;
        memcpy(m.u.request.model_id, c->x->id, 32);
        m.u.request.chunk = c->idx;
        m.u.request.offset = i * c->piece;
        uint32_t rest = c->len - i * c->piece;
        m.u.request.length = rest < c->piece ? rest : c->piece;
        proto_session_send_msg(p->sess, &m);
    }
}

/* Takes c off its peer's list (O(1)). */
static void
creq_remove(nvx_peer *p, struct creq *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        p->creqs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        p->creqs_tail = c->prev;
}

static void
creq_unlink(nvx_peer *p, struct creq *c)
{
    creq_remove(p, c);
    free(c->buf);
    free(c);
}

/* Drops every request of peer p for transfer x (sending CANCEL when asked). */
static void
drop_creqs(nvx_peer *p, struct xfer *x, bool send_cancel)
{
    for (struct creq *c = p->creqs, *next; c; c = next) {
        next = c->next;
        if (c->x != x)
            continue;
        if (send_cancel)
            cancel_creq_send(p, c);
        creq_unlink(p, c);
    }
}

static void
xpeer_remove(struct xfer *x, struct xpeer *xp, bool send_cancel)
{
    drop_creqs(xp->p, x, send_cancel);
    if (send_cancel)
        nvx__peer_flush(xp->p);
    if (xp->pp)
        nvx_picker_peer_remove(x->pk, xp->pp);
    for (struct xpeer **pp = &x->peers; *pp; pp = &(*pp)->next) {
        if (*pp == xp) {
            *pp = xp->next;
            break;
        }
    }
    free(xp->bits);
    free(xp);
}

static void
bad_peer(nvx_node *n, const uint8_t id[32], const char *addr, const char *what)
{
    char sid[17];
    log_warn("peer %s (%s) sent %s: dropping it for %d s", nvx_short_id(id, sid), addr, what,
             NVX_BADLIST_MS / 1000);
    nvx_badlist_add(&n->bad, id, nvx__now(n));
    nvx_peer *p = nvx__peer_by_id(n, id);
    if (p)
        nvx__peer_close(p, PROTO_BYE_BAD_DATA, what);
}

static void
open_done(struct xfer *x, struct xjob *j)
{
    nvx_node *n = x->node;
    x->opening = false;
    bool had_mbuf = j->mbuf != NULL;
    free(j->mbuf);
    if (x->ending) {
        x->part = j->part; /* the end job commits and frees it */
        cas_manifest_free(j->man);
        goto out;
    }
    if (j->res == -EBADMSG && had_mbuf) {
        bad_peer(n, j->sender, j->sender_addr, "a manifest that does not match the id");
        manifest_next(x);
        goto out;
    }
    if (j->res < 0) {
        log_error_errno(j->res, "fetch: cannot open the model");
        cas_partial_free(j->part);
        cas_manifest_free(j->man);
        xfer_end(x, PROTO_CTL_STATE_FAILED, j->res);
        goto out;
    }
    if (j->res == OPEN_COMPLETE) {
        xfer_end(x, PROTO_CTL_STATE_DONE, 0);
        goto out;
    }
    if (j->res == OPEN_NEED_MANIFEST) {
        x->state = PROTO_CTL_STATE_MANIFEST;
        manifest_next(x);
        goto out;
    }
    /* OPEN_READY */
    uint32_t nc = (uint32_t)cas_manifest_chunk_count(j->man);
    int r = nvx_picker_new(nc, j->chunk_len, &x->pk);
    if (r < 0) {
        cas_partial_free(j->part);
        cas_manifest_free(j->man);
        xfer_end(x, PROTO_CTL_STATE_FAILED, r);
        goto out;
    }
    /* Random ties between equally rare chunks: fetchers that start
     * together must not all ask for the same next chunk (daemon/picker.h). */
    nvx_picker_seed(x->pk, (uint64_t)randombytes_random() << 32 | randombytes_random());
    x->man = j->man;
    x->part = j->part;
    x->state = PROTO_CTL_STATE_FETCHING;
    x->bytes_total = cas_manifest_size(j->man);
    x->chunks_total = nc;
    for (uint32_t i = 0; i < nc; i++) {
        if ((j->have[i / 8] >> (i % 8)) & 1) {
            nvx_picker_set_have(x->pk, i);
            x->bytes_done += j->chunk_len[i];
            x->chunks_done++;
        }
    }
    if (j->n_local)
        log_info("fetch: %llu chunks copied from models already in the store",
                 (unsigned long long)j->n_local);
    x->last_commit_ms = nvx__now(n);
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        uint64_t w = tp_conn_bandwidth(xp->p->conn) / 2;
        nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, w, xp, &xp->pp);
    }
    free(x->mbuf);
    x->mbuf = NULL;
    /* Peers that said NOT_FOUND before may be fetching this model too and
     * have a partial now; ask again (they ask us back: nvx__fetch_peer_wants). */
    for (nvx_peer *p = n->peers; p; p = p->next)
        if (p->established && !p->closing && !xpeer_find(x, p))
            send_want(x, p);
out:
    free(j->chunk_len);
    free(j->have);
}

/* Tells the peers that are fetching this model too (their HAVE was not
 * ALL: fetchers, and a super-seeder) that we hold the n chunks of idx now
 * (one puts job's worth: verified together, announced in one HAVE), so
 * they may ask us for them. Sorts idx. */
static void
announce_chunks(struct xfer *x, uint32_t *idx, size_t n)
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
        if (!xp->bits || xp->p->closing || !xp->p->established)
            continue;
        if (proto_session_send_msg(xp->p->sess, &m) == 0)
            nvx__peer_flush(xp->p);
    }
}

/* Returns true when chunk j->idx is newly verified (to be announced). */
static bool
put_done(struct xfer *x, struct xjob *j)
{
    bool fresh = false;
    nvx_node *n = x->node;
    bool ok = j->res >= 0;
    if (x->pk)
        nvx_picker_verified(x->pk, j->idx, ok);
    if (ok) {
        if (j->res == 1 || j->res == 0) {
            x->bytes_done += j->len;
            x->chunks_done++;
            x->uncommitted++;
            fresh = true;
        }
        /* Cancel the duplicates the endgame sent elsewhere. */
        nvx_picker_peer *holders[NVX_PICKER_ENDGAME_DUP * 2];
        size_t nh = x->pk ? nvx_picker_holders(x->pk, j->idx, holders, 4) : 0;
        for (size_t i = 0; i < nh; i++) {
            struct xpeer *xp = nvx_picker_peer_user(holders[i]);
            for (struct creq *c = xp->p->creqs; c; c = c->next) {
                if (c->x == x && c->idx == j->idx) {
                    cancel_creq_send(xp->p, c);
                    nvx__peer_flush(xp->p);
                    creq_unlink(xp->p, c);
                    break;
                }
            }
            nvx_picker_cancel(x->pk, holders[i], j->idx);
        }
    } else if (j->res == -EBADMSG) {
        char what[64];
        snprintf(what, sizeof(what), "a bad chunk (%u)", j->idx);
        bad_peer(n, j->sender, j->sender_addr, what);
    } else if (!x->ending) {
        log_error_errno(j->res, "fetch: cannot write chunk %u", j->idx);
        xfer_end(x, PROTO_CTL_STATE_FAILED, j->res);
    }
    return fresh;
}

static void
xjob_done(uv_work_t *w, int status)
{
    struct xjob *j = (struct xjob *)w;
    struct xfer *x = j->x;
    nvx_node *n = x->node;
    /* x->jobs still counts this job while it is handled, so nothing below
     * can free x (xfer_try_finalize waits for jobs == 0). */
    n->jobs--;
    if (status < 0 && j->res >= 0)
        j->res = status;
    switch (j->kind) {
    case XJOB_OPEN:
        open_done(x, j);
        break;
    case XJOB_PUTS: {
        uint32_t fresh[NVX_NODE_PUT_BATCH];
        size_t nf = 0;
        for (unsigned k = 0; k < j->n_subs; k++) {
            if (put_done(x, j->subs[k]))
                fresh[nf++] = j->subs[k]->idx;
            chunk_free(x, j->subs[k]);
        }
        if (!x->ending)
            announce_chunks(x, fresh, nf);
        break;
    }
    case XJOB_COMMIT:
        x->committing = false;
        if (j->res < 0 && !x->ending) {
            log_error_errno(j->res, "fetch: cannot commit");
            xfer_end(x, PROTO_CTL_STATE_FAILED, j->res);
        }
        break;
    case XJOB_FINISH:
        if (j->res < 0) {
            log_error_errno(j->res, "fetch: cannot complete the model");
            xfer_end(x, PROTO_CTL_STATE_FAILED, j->res);
        } else {
            char sid[17];
            log_info("fetched model %s (%llu bytes)", nvx_short_id(x->id, sid),
                     (unsigned long long)x->bytes_total);
            if (n->fetched)
                n->fetched(n->fetched_arg, x->id);
            /* The publisher's signatures come from whoever had the model. */
            for (struct xpeer *xp = x->peers; xp; xp = xp->next)
                nvx__sigs_ask(xp->p, x->id);
            xfer_end(x, PROTO_CTL_STATE_DONE, 0);
        }
        break;
    case XJOB_END:
        if (j->res < 0)
            log_error_errno(j->res, "fetch: cannot commit on stop");
        break;
    }
    free(j);
    x->jobs--;
    if (x->ending) {
        xfer_try_finalize(x);
    } else {
        maybe_commit(x, false);
        maybe_finish(x);
        xfer_pump(x);
    }
    nvx__node_maybe_stopped(n);
}

/* ---- requests ---------------------------------------------------------- */

/* Requests chunks from one peer while its window has room and *budget
 * (bytes the transfer may still hold) lasts. */
static void
send_requests(struct xfer *x, struct xpeer *xp, uint64_t now, uint64_t *budget)
{
    nvx_peer *p = xp->p;
    size_t piece = tp_conn_mtu(p->conn);
    if (piece > NVX_NODE_PIECE_MAX)
        piece = NVX_NODE_PIECE_MAX;
    if (piece < 1024)
        piece = 1024;
    bool sent = false;
    int64_t idx;
    while (!p->closing && *budget > 0 && (idx = nvx_picker_next(x->pk, xp->pp, now)) >= 0) {
        cas_chunk_info ci;
        cas_manifest_chunk(x->man, (size_t)idx, &ci);
        *budget = *budget > ci.len ? *budget - ci.len : 0;
        /* A chunk in one piece keeps the session's plaintext buffer of its
         * DATA (no copy, no buffer while it is in flight); pieces are
         * gathered in a buffer of the chunk's size. */
        bool pieces = ci.len > piece;
        struct creq *c = calloc(1, sizeof(*c));
        uint8_t *buf = pieces ? malloc(ci.len) : NULL;
        if (!c || (pieces && !buf)) {
            free(c);
            free(buf);
            nvx_picker_cancel(x->pk, xp->pp, (uint32_t)idx);
            break;
        }
        c->x = x;
        c->idx = (uint32_t)idx;
        c->len = ci.len;
        c->piece = (uint32_t)piece;
        c->npieces = (uint32_t)((ci.len + piece - 1) / piece);
        c->req_base = p->next_req_id;
        p->next_req_id += c->npieces;
        c->buf = buf;
        c->t_sent = now;
        c->prev = p->creqs_tail;
        if (p->creqs_tail)
            p->creqs_tail->next = c;
        else
            p->creqs = c;
        p->creqs_tail = c;
        for (uint32_t i = 0; i < c->npieces; i++) {
            proto_msg m = { .type = PROTO_MSG_REQUEST };
            m.u.request.req_id = c->req_base + i;
            memcpy(m.u.request.model_id, x->id, 32);
            m.u.request.chunk = c->idx;
            m.u.request.offset = i * c->piece;
            uint32_t rest = c->len - i * c->piece;
            m.u.request.length = rest < c->piece ? rest : c->piece;
            proto_session_send_msg(p->sess, &m);
        }
        sent = true;
    }
    if (sent)
        nvx__peer_flush(p);
}

/* Sends requests to every peer with room in its window. Inside a read
 * callback this waits until the whole read was handled, so the requests
 * freed by several DATA frames leave in one write. */
static void
xfer_pump(struct xfer *x)
{
    if (!x->pk || x->ending || x->finishing)
        return;
    if (x->node->in_recv) {
        x->pump_pending = true;
        return;
    }
    x->pump_pending = false;
    uint64_t now = nvx__now(x->node);
    /* Received chunks the pool has not written yet hold memory, and every
     * requested one will: together they stay under NVX_NODE_HELD_MAX, so a
     * disk slower than the link slows the transfer instead of growing the
     * daemon (windows alone would let 64 MiB per peer land). */
    uint64_t held = x->pending;
    size_t eligible = 0;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (!xp->pp)
            continue;
        held += nvx_picker_peer_inflight(xp->pp);
        eligible += xp->retry_ms <= now && !xp->p->closing;
    }
    uint64_t budget = held < NVX_NODE_HELD_MAX ? NVX_NODE_HELD_MAX - held : 0;
    /* First an even share each, so a short budget is not all taken by the
     * first peer listed; then whatever the others' windows left. */
    for (int pass = 0; pass < 2 && eligible > 0 && budget > 0; pass++) {
        uint64_t share = pass == 0 ? budget / eligible + 1 : UINT64_MAX;
        for (struct xpeer *xp = x->peers, *next; xp && budget > 0; xp = next) {
            next = xp->next;
            if (!xp->pp || xp->retry_ms > now || xp->p->closing)
                continue;
            uint64_t left = share < budget ? share : budget, given = left;
            send_requests(x, xp, now, &left);
            budget -= given - left;
        }
    }
    ready_dispatch(x, !expect_more(x));
}

static void
manifest_request(struct xfer *x)
{
    nvx_peer *p = x->mpeer;
    proto_msg m = { .type = PROTO_MSG_MANIFEST_REQ };
    x->mreq = p->next_req_id++;
    m.u.manifest_req.req_id = x->mreq;
    memcpy(m.u.manifest_req.model_id, x->id, 32);
    m.u.manifest_req.offset = x->mhave;
    uint32_t want = PROTO_MANIFEST_PIECE_MAX;
    if (x->mtotal && x->mtotal - x->mhave < want)
        want = x->mtotal - x->mhave;
    m.u.manifest_req.length = want;
    proto_session_send_msg(p->sess, &m);
    nvx__peer_flush(p);
}

/* Starts (or restarts) the manifest download from a peer that has the model. */
static void
manifest_next(struct xfer *x)
{
    free(x->mbuf);
    x->mbuf = NULL;
    x->mhave = x->mtotal = 0;
    x->mpeer = NULL;
    if (x->state != PROTO_CTL_STATE_MANIFEST || x->opening || x->ending)
        return;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if (!xp->p->closing) {
            x->mpeer = xp->p;
            manifest_request(x);
            return;
        }
    }
}

static void
on_manifest(nvx_peer *p, const proto_manifest *m)
{
    struct xfer *x = xfer_find(p->node, m->model_id);
    if (!x || x->mpeer != p || m->req_id != x->mreq || x->opening)
        return;
    if (x->mhave == 0) {
        if (m->total == 0 || m->total > PROTO_MANIFEST_MAX || m->total > CAS_STORE_MANIFEST_MAX) {
            nvx__peer_close(p, PROTO_BYE_PROTOCOL_ERROR, "manifest too large");
            return;
        }
        x->mbuf = malloc(m->total);
        if (!x->mbuf) {
            xfer_end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
            return;
        }
        x->mtotal = m->total;
    }
    if (m->total != x->mtotal || m->offset != x->mhave || m->bytes.len > x->mtotal - x->mhave) {
        nvx__peer_close(p, PROTO_BYE_PROTOCOL_ERROR, "inconsistent manifest pieces");
        return;
    }
    memcpy(x->mbuf + x->mhave, m->bytes.p, m->bytes.len);
    x->mhave += (uint32_t)m->bytes.len;
    if (x->mhave < x->mtotal) {
        manifest_request(x);
        return;
    }
    /* Whole manifest: check it and create the partial model on the pool. */
    struct xjob *j = xjob_new(XJOB_OPEN);
    if (!j) {
        xfer_end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
        return;
    }
    j->mbuf = x->mbuf;
    j->mlen = x->mtotal;
    memcpy(j->sender, p->id, 32);
    snprintf(j->sender_addr, sizeof(j->sender_addr), "%s", p->addr);
    x->mbuf = NULL;
    x->mpeer = NULL;
    if (xjob_queue(x, j) < 0) {
        free(j->mbuf);
        free(j);
        xfer_end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
        return;
    }
    x->opening = true;
}

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
have_one(struct xfer *x, struct xpeer *xp, uint32_t i)
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
 * some, a super-seeder revealing more): add them to its bitmap and to the
 * picker's counts. Ranges cost what they name, not the model's size: a
 * fetcher announces every chunk it verifies, one HAVE each. */
static void
have_merge(struct xfer *x, struct xpeer *xp, const proto_chunkset *set)
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
    xfer_pump(x);
}

static void
on_have(nvx_peer *p, const proto_want *h)
{
    struct xfer *x = xfer_find(p->node, h->model_id);
    if (!x || x->finishing)
        return;
    struct xpeer *old = xpeer_find(x, p);
    if (old) {
        have_merge(x, old, &h->set);
        return;
    }
    struct xpeer *xp = calloc(1, sizeof(*xp));
    if (!xp)
        return;
    if (chunkset_bits(&h->set, &xp->bits, &xp->nbits) < 0) {
        free(xp);
        return;
    }
    xp->p = p;
    xp->next = x->peers;
    x->peers = xp;
    if (x->pk) {
        uint64_t w = tp_conn_bandwidth(p->conn) / 2;
        if (nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, w, xp, &xp->pp) < 0) {
            xpeer_remove(x, xp, false);
            return;
        }
        xfer_pump(x);
    } else if (x->state == PROTO_CTL_STATE_MANIFEST && !x->mpeer && !x->opening) {
        x->mpeer = p;
        manifest_request(x);
    }
}

static struct creq *
creq_find(nvx_peer *p, uint32_t req_id)
{
    for (struct creq *c = p->creqs; c; c = c->next)
        if (req_id - c->req_base < c->npieces)
            return c;
    return NULL;
}

static void
on_data(nvx_peer *p, const proto_data *d)
{
    nvx_node *n = p->node;
    struct creq *c = creq_find(p, d->req_id);
    if (!c)
        return; /* cancelled or duplicate: ignore */
    struct xfer *x = c->x;
    uint32_t i = d->req_id - c->req_base;
    uint32_t off = i * c->piece;
    uint32_t want = c->len - off < c->piece ? c->len - off : c->piece;
    if (d->chunk != c->idx || memcmp(d->model_id, x->id, 32) != 0 || d->offset != off ||
        d->bytes.len != want) {
        nvx__peer_close(p, PROTO_BYE_PROTOCOL_ERROR, "DATA does not match its REQUEST");
        return;
    }
    n->bytes_fetched += want;
    p->rate_bytes += want;
    x->rate_bytes += want;
    if ((c->got_bits[i / 64] >> (i % 64)) & 1)
        return;
    c->got_bits[i / 64] |= UINT64_C(1) << (i % 64);
    uint8_t *mem = NULL, *data = c->buf;
    if (c->buf) {
        memcpy(c->buf + off, d->bytes.p, want);
    } else {
        size_t cap;
        mem = proto_session_take_message(p->sess, &cap);
        if (mem && d->bytes.p >= mem && (size_t)(d->bytes.p - mem) + want <= cap) {
            data = (uint8_t *)d->bytes.p;
        } else { /* not in the message buffer after all: copy it */
            free(mem);
            mem = data = malloc(want ? want : 1);
            if (mem)
                memcpy(data, d->bytes.p, want);
        }
    }
    c->got += want;
    if (c->got < c->len)
        return;
    struct xpeer *xp = xpeer_find(x, p);
    int r = xp && xp->pp ? nvx_picker_received(x->pk, xp->pp, c->idx, nvx__now(n)) : -ENOENT;
    if (r == 1) {
        /* One chunk of a future puts job (none without memory: it is then
         * fetched again). */
        struct xjob *j = data ? xjob_new(XJOB_PUTS) : NULL;
        if (j) {
            j->x = x;
            j->idx = c->idx;
            j->mem = c->buf ? c->buf : mem;
            j->buf = data;
            j->len = c->len;
            memcpy(j->sender, p->id, 32);
            snprintf(j->sender_addr, sizeof(j->sender_addr), "%s", p->addr);
            c->buf = NULL; /* the ready list owns it */
            mem = NULL;
            *x->ready_tail = j;
            x->ready_tail = &j->next;
            x->n_ready++;
            x->pending += j->len;
            ready_dispatch(x, false);
        } else {
            nvx_picker_verified(x->pk, c->idx, false);
        }
    }
    free(mem); /* a duplicate, or no memory for the job */
    creq_unlink(p, c);
    xfer_pump(x);
}

static void
on_not_found(nvx_peer *p, const proto_not_found *nf)
{
    struct xfer *x = xfer_find(p->node, nf->model_id);
    if (!x)
        return;
    struct xpeer *xp = xpeer_find(x, p);
    if (nf->what == PROTO_NOTFOUND_MANIFEST) {
        if (xp)
            xpeer_remove(x, xp, false);
        if (x->mpeer == p)
            manifest_next(x);
        return;
    }
    struct creq *c = creq_find(p, nf->req_id);
    if (!c || c->x != x || !xp)
        return;
    uint32_t idx = c->idx;
    cancel_creq_send(p, c); /* the other pieces of the chunk */
    creq_unlink(p, c);
    if (xp->pp)
        nvx_picker_cancel(x->pk, xp->pp, idx);
    if (nf->what == PROTO_NOTFOUND_BUSY) {
        xp->retry_ms = nvx__now(p->node) + NVX_NODE_BUSY_RETRY_MS;
        if (xp->pp)
            nvx_picker_peer_busy(xp->pp);
    } else {
        /* It said HAVE but cannot serve it: stop asking it for this model. */
        xpeer_remove(x, xp, true);
    }
    xfer_pump(x);
}

void
nvx__fetch_msg(nvx_peer *p, const proto_msg *m)
{
    switch (m->type) {
    case PROTO_MSG_HAVE:
        on_have(p, &m->u.want);
        break;
    case PROTO_MSG_DATA:
        on_data(p, &m->u.data);
        break;
    case PROTO_MSG_NOT_FOUND:
        on_not_found(p, &m->u.not_found);
        break;
    case PROTO_MSG_MANIFEST:
        on_manifest(p, &m->u.manifest);
        break;
    }
}

/* ---- lifecycle --------------------------------------------------------- */

static void
send_want(struct xfer *x, nvx_peer *p)
{
    proto_msg m = { .type = PROTO_MSG_WANT };
    memcpy(m.u.want.model_id, x->id, 32);
    m.u.want.set.kind = PROTO_CHUNKSET_ALL;
    proto_session_send_msg(p->sess, &m);
    nvx__peer_flush(p);
}

void
nvx__fetch_peer_wants(nvx_peer *p, const uint8_t model[static 32])
{
    struct xfer *x = xfer_find(p->node, model);
    /* Only once we hold a partial ourselves (x->pk): two fetchers still
     * waiting for the manifest would otherwise WANT each other forever. */
    if (x && x->pk && !x->finishing && p->established && !p->closing && !xpeer_find(x, p))
        send_want(x, p);
}

void
nvx__fetch_peer_up(nvx_peer *p)
{
    for (struct xfer *x = p->node->xfers; x; x = x->next)
        if (!x->ending && !x->finishing)
            send_want(x, p);
}

void
nvx__fetch_peer_gone(nvx_peer *p)
{
    for (struct xfer *x = p->node->xfers; x; x = x->next) {
        struct xpeer *xp = xpeer_find(x, p);
        if (xp)
            xpeer_remove(x, xp, false);
        if (x->mpeer == p)
            manifest_next(x);
    }
    while (p->creqs)
        creq_unlink(p, p->creqs);
    for (struct xfer *x = p->node->xfers; x; x = x->next)
        xfer_pump(x);
}

static void
notify(struct xfer *x, int state, int error, bool final)
{
    proto_ctl_progress pr;
    progress_fill(x, &pr, state);
    for (nvx_fetch_sub *s = x->subs, *next; s; s = next) {
        next = s->next;
        s->cb(s->arg, &pr, error);
        if (final)
            free(s);
    }
    if (final)
        x->subs = NULL;
}

static void
xfer_try_finalize(struct xfer *x)
{
    nvx_node *n = x->node;
    if (x->jobs > 0 || x->opening)
        return;
    if (x->part) {
        struct xjob *j = xjob_new(XJOB_END);
        if (j) {
            j->part = x->part;
            if (xjob_queue(x, j) == 0) {
                x->part = NULL;
                return;
            }
            free(j);
        }
        /* Out of memory: commit on the loop rather than lose the chunks. */
        cas_partial_commit(x->part);
        cas_partial_free(x->part);
        x->part = NULL;
    }
    notify(x, x->end_state, x->end_error, true);
    for (struct xfer **xp = &n->xfers; *xp; xp = &(*xp)->next) {
        if (*xp == x) {
            *xp = x->next;
            break;
        }
    }
    nvx_picker_free(x->pk);
    cas_manifest_free(x->man);
    free(x->mbuf);
    free(x);
    nvx__node_maybe_stopped(n);
}

static void
xfer_end(struct xfer *x, int state, int error)
{
    if (x->ending)
        return;
    x->ending = true;
    x->end_state = state;
    x->end_error = error;
    x->state = state;
    ready_free(x);
    while (x->peers)
        xpeer_remove(x, x->peers, true);
    xfer_try_finalize(x);
}

void
nvx__fetch_tick(nvx_node *n)
{
    uint64_t now = nvx__now(n);
    for (struct xfer *x = n->xfers, *next; x; x = next) {
        next = x->next;
        if (x->ending)
            continue;
        if (x->state == PROTO_CTL_STATE_MANIFEST && !x->opening && !x->peers) {
            if (!x->lonely_since_ms)
                x->lonely_since_ms = now;
            if (now - x->lonely_since_ms >= NVX_NODE_NO_PROVIDER_MS) {
                xfer_end(x, PROTO_CTL_STATE_FAILED, -EHOSTUNREACH);
                continue;
            }
        } else {
            x->lonely_since_ms = 0;
        }
        /* A peer that had nothing when asked may be fetching the model too
         * (or have finished it) by now: ask the others again now and then. */
        if (!x->finishing && now - x->rewant_ms >= NVX_NODE_REWANT_MS) {
            x->rewant_ms = now;
            for (nvx_peer *p = n->peers; p; p = p->next) {
                struct xpeer *xp = xpeer_find(x, p);
                if (p->established && !p->closing && (!xp || xp->bits))
                    send_want(x, p); /* partial holders answer with their bitmap */
            }
        }
        x->rate = (x->rate * 3 + x->rate_bytes * (1000 / NVX_NODE_TICK_MS)) / 4;
        x->rate_bytes = 0;
        ready_dispatch(x, true); /* bounds how long a received chunk waits */
        maybe_commit(x, false);
        /* Requests that never came back: the peer stalls; drop it. */
again:
        for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
            for (struct creq *c = xp->p->creqs; c; c = c->next) {
                if (c->x == x && now - c->t_sent > NVX_NODE_REQUEST_TIMEOUT_MS) {
                    nvx__peer_close(xp->p, PROTO_BYE_IDLE, "request timed out");
                    goto again;
                }
            }
        }
        if (x->ending)
            continue;
        xfer_pump(x);
        for (struct xpeer *xp = x->peers; xp; xp = xp->next)
            if (xp->pp)
                log_debug("xfer %llu: peer %s window %llu inflight %llu rate %llu, jobs %u, "
                          "pending %llu, done %llu/%llu",
                          (unsigned long long)x->xid, xp->p->addr,
                          (unsigned long long)nvx_picker_peer_window(xp->pp),
                          (unsigned long long)nvx_picker_peer_inflight(xp->pp),
                          (unsigned long long)nvx_picker_peer_rate(xp->pp), x->jobs,
                          (unsigned long long)x->pending, (unsigned long long)x->chunks_done,
                          (unsigned long long)x->chunks_total);
        if (!x->finishing)
            notify(x, x->state, 0, false);
    }
}

void
nvx__fetch_pump_pending(nvx_node *n)
{
    for (struct xfer *x = n->xfers, *next; x; x = next) {
        next = x->next;
        if (x->pump_pending)
            xfer_pump(x);
    }
}

void
nvx__fetch_stop_all(nvx_node *n)
{
    for (struct xfer *x = n->xfers, *next; x; x = next) {
        next = x->next;
        xfer_end(x, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
    }
}

int
nvx_node_fetch(nvx_node *n, const uint8_t id[static 32], bool pin, nvx_fetch_cb cb, void *arg,
               nvx_fetch_sub **ret)
{
    if (n->stopping)
        return -ESHUTDOWN;
    nvx_fetch_sub *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cb = cb;
    s->arg = arg;
    struct xfer *x = xfer_find(n, id);
    if (x) {
        x->pin |= pin;
        s->x = x;
        s->next = x->subs;
        x->subs = s;
        *ret = s;
        return 0;
    }
    size_t nx = 0;
    for (struct xfer *y = n->xfers; y; y = y->next)
        nx++;
    if (nx >= NVX_NODE_XFERS_MAX) {
        free(s);
        return -EBUSY;
    }
    x = calloc(1, sizeof(*x));
    struct xjob *j = xjob_new(XJOB_OPEN);
    if (!x || !j) {
        free(x);
        free(j);
        free(s);
        return -ENOMEM;
    }
    x->ready_tail = &x->ready;
    x->node = n;
    x->xid = n->next_xid++;
    memcpy(x->id, id, 32);
    x->pin = pin;
    x->state = PROTO_CTL_STATE_MANIFEST;
    s->x = x;
    x->subs = s;
    x->next = n->xfers;
    n->xfers = x;
    int r = xjob_queue(x, j);
    if (r < 0) {
        n->xfers = x->next;
        free(j);
        free(x);
        free(s);
        return r;
    }
    x->opening = true;
    for (nvx_peer *p = n->peers; p; p = p->next)
        if (p->established && !p->closing)
            send_want(x, p);
    *ret = s;
    return 0;
}

void
nvx_node_fetch_unsub(nvx_node *n, nvx_fetch_sub *sub)
{
    struct xfer *x = sub->x;
    for (nvx_fetch_sub **sp = &x->subs; *sp; sp = &(*sp)->next) {
        if (*sp == sub) {
            *sp = sub->next;
            break;
        }
    }
    free(sub);
    if (!x->subs && !x->ending) {
        char sid[17];
        log_info("fetch of %s cancelled (resumable)", nvx_short_id(x->id, sid));
        xfer_end(x, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
    }
}

int
nvx_node_fetch_cancel(nvx_node *n, const uint8_t *id, uint64_t xid)
{
    for (struct xfer *x = n->xfers; x; x = x->next) {
        if (x->ending)
            continue;
        if ((id && memcmp(x->id, id, 32) == 0) || (!id && x->xid == xid)) {
            xfer_end(x, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
            return 0;
        }
    }
    return -ENOENT;
}

void
nvx_node_xfers_each(nvx_node *n, void (*cb)(void *arg, const nvx_xfer_info *xi), void *arg)
{
    for (struct xfer *x = n->xfers; x; x = x->next) {
        size_t np = 0;
        for (struct xpeer *xp = x->peers; xp; xp = xp->next)
            np++;
        nvx_xfer_info xi = {
            .id = x->xid,
            .model = x->id,
            .state = x->state,
            .bytes_done = x->bytes_done,
            .bytes_total = x->bytes_total,
            .chunks_done = x->chunks_done,
            .chunks_total = x->chunks_total,
            .rate = x->rate,
            .peer_count = np,
            .endgame = x->pk && nvx_picker_endgame(x->pk),
        };
        cb(arg, &xi);
    }
}
