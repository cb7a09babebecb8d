/* SPDX-License-Identifier: MIT */
/*
 * The transfer engine (daemon/xfer.h): state and decisions of one fetch,
 * no I/O. Every public entry counts itself in x->depth and ends with
 * settle(), the only place that reports the end (ops->ended, after which
 * the adapter may free x): an action that calls back into the engine
 * (drop_peer -> nvx_xfer_peer_down) never frees x under its caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bits.h"
#include "daemon/xfer-internal.h"
#include "proto/control.h"

void
nvx_xfer_manifest(nvx_xfer *x, void *peer, const proto_manifest *m)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    if (!xp || !xp->masked || m->req_id != xp->mreq || x->opening || x->ending)
        return;
    ENTER(x);
    if (x->mhave == 0) {
        if (m->total == 0 || m->total > PROTO_MANIFEST_MAX) {
            nvx__xf_xpeer_drop(x, xp, "manifest too large");
            goto out;
        }
        free(x->mbuf);
        x->mbuf = malloc(m->total);
        if (!x->mbuf) {
            nvx__xf_end(x, PROTO_CTL_STATE_FAILED, -ENOMEM);
            goto out;
        }
        x->mtotal = m->total;
    }
    if (m->total != x->mtotal || m->offset != x->mhave || m->bytes.len > x->mtotal - x->mhave) {
        nvx__xf_xpeer_drop(x, xp, "inconsistent manifest pieces");
        goto out;
    }
    memcpy(x->mbuf + x->mhave, m->bytes.p, m->bytes.len);
    x->mhave += (uint32_t)m->bytes.len;
    nvx__xf_manifest_unask_all(x);
    if (x->mhave < x->mtotal) { /* the next piece from the one that answered */
        x->mpiece_ms = x->now;
        x->mwidth = 1;
        nvx__xf_manifest_ask(x, xp);
        goto out;
    }
    /* Whole: the adapter checks it against the id and opens the model. */
    memcpy(x->msender, xp->id, 32);
    memcpy(x->msender_addr, xp->addr, sizeof(x->msender_addr));
    uint8_t *mbuf = x->mbuf;
    uint32_t mlen = x->mtotal;
    x->mbuf = NULL;
    x->mhave = x->mtotal = 0; /* a manifest that fails its check starts over */
    x->opening = true;
    x->ops->open(x->arg, mbuf, mlen);
out:
    LEAVE(x);
}

void
nvx_xfer_opened(nvx_xfer *x, int res, uint32_t nc, const uint32_t *chunk_len, const uint8_t *have,
                uint64_t now)
{
    ENTER(x);
    x->now = now;
    x->opening = false;
    if (x->ending)
        goto out;
    if (res == -EBADMSG && x->msender_addr[0]) {
        x->ops->bad_peer(x->arg, x->msender, x->msender_addr,
                         "a manifest that does not match the id");
        nvx__xf_manifest_next(x);
        goto out;
    }
    if (res < 0) {
        nvx__xf_end(x, PROTO_CTL_STATE_FAILED, res);
        goto out;
    }
    if (res == NVX_XFER_OPEN_COMPLETE) {
        nvx__xf_end(x, PROTO_CTL_STATE_DONE, 0);
        goto out;
    }
    if (res == NVX_XFER_OPEN_NEED_MANIFEST) {
        x->state = PROTO_CTL_STATE_MANIFEST;
        nvx__xf_manifest_next(x);
        goto out;
    }
    int r = -ENOMEM;
    x->chunk_len = malloc((size_t)nc * sizeof(uint32_t));
    x->fresh = calloc(bits_bytes(nc), 1);
    if (!x->chunk_len || !x->fresh || (r = nvx_picker_new(nc, chunk_len, &x->pk)) < 0) {
        nvx__xf_end(x, PROTO_CTL_STATE_FAILED, r);
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
        if (have && bit_get(have, i)) {
            nvx_picker_set_have(x->pk, i);
            x->bytes_done += chunk_len[i];
            x->chunks_done++;
        }
    }
    x->last_commit_ms = now;
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->has && nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, xp->window, xp, &xp->pp) < 0)
            nvx__xf_xpeer_unhave(x, xp, false);
    /* Peers that had nothing before may be fetching this model too and
     * hold a partial now; ask again. */
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (!xp->has)
            nvx__xf_send_want(x, xp);
    nvx__xf_maybe_finish(x); /* a resume that had every chunk */
    x->pump_due = true;
out:
    LEAVE(x);
}

uint64_t
nvx_xfer_work(const nvx_xfer *x)
{
    return x->work;
}

void
nvx_xfer_have(nvx_xfer *x, void *peer, const proto_chunkset *set)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    if (!xp || x->finishing || x->ending)
        return;
    ENTER(x);
    if (xp->has) {
        nvx__xf_have_merge(x, xp, set);
        goto out;
    }
    if (nvx__xf_chunkset_bits(set, &xp->bits, &xp->nbits) < 0)
        goto out;
    xp->has = true;
    if (x->pk) {
        if (nvx_picker_peer_add(x->pk, xp->bits, xp->nbits, xp->window, xp, &xp->pp) < 0)
            nvx__xf_xpeer_unhave(x, xp, false);
        else
            nvx__xf_refused_apply(x, xp); /* a HAVE again does not undo a refusal */
        x->pump_due = true;
    } else {
        nvx__xf_manifest_next(x); /* when nobody is asked yet */
    }
out:
    LEAVE(x);
}

/* ---- DATA -------------------------------------------------------------- */

uint32_t
nvx_xfer_data(nvx_xfer *x, void *peer, const proto_data *d, uint64_t now)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    struct creq *c = xp ? nvx__xf_creq_find(xp, d->req_id) : NULL;
    if (!c)
        return 0; /* cancelled or duplicate: ignore */
    ENTER(x);
    x->now = now;
    uint32_t i = d->req_id - c->req_base;
    uint32_t off = i * c->piece;
    uint32_t want = c->len - off < c->piece ? c->len - off : c->piece;
    if (d->chunk != c->idx || memcmp(d->model_id, x->id, 32) != 0 || d->offset != off ||
        d->bytes.len != want) {
        nvx__xf_xpeer_drop(x, xp, "DATA does not match its REQUEST");
        want = 0;
        goto out;
    }
    x->rate_bytes += want;
    xp->progress_ms = xp->delivered_ms = now;
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
            nvx__xf_ready_dispatch(x, false);
        } else {
            nvx_picker_verified(x->pk, c->idx, false); /* no memory: fetched again */
        }
    }
    free(mem); /* a duplicate, or no memory for the chunk */
    nvx__xf_creq_unlink(xp, c);
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
    if (ok && x->fresh && c->idx < x->chunks_total)
        bit_set(x->fresh, c->idx);
    if (ok) {
        /* Cancel the duplicates the endgame sent elsewhere. */
        nvx_picker_peer *holders[NVX_PICKER_ENDGAME_DUP * 2];
        size_t nh = x->pk ? nvx_picker_holders(x->pk, c->idx, holders, 4) : 0;
        for (size_t i = 0; i < nh; i++) {
            struct xpeer *xp = nvx_picker_peer_user(holders[i]);
            for (struct creq *q = xp->creqs; q; q = q->next) {
                if (q->idx == c->idx) {
                    nvx__xf_creq_send(x, xp, q, PROTO_MSG_CANCEL);
                    x->ops->flush(x->arg, xp->peer);
                    nvx__xf_creq_unlink(xp, q);
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
        nvx__xf_bad_chunk(x, c);    /* it loses the chunk, or its standing */
    } else if (c->res != -EAGAIN) { /* EAGAIN: not stored, fetched again */
        nvx__xf_end(x, PROTO_CTL_STATE_FAILED, c->res);
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
        nvx__xf_chunk_free(x, chunks[k]);
    }
    if (!x->ending) {
        nvx__xf_announce_chunks(x, fresh, nf);
        nvx__xf_maybe_commit(x, now, false);
        nvx__xf_maybe_finish(x);
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
        nvx__xf_end(x, PROTO_CTL_STATE_FAILED, res);
    nvx__xf_maybe_commit(x, now, false);
    nvx__xf_maybe_finish(x);
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
        nvx__xf_end(x, PROTO_CTL_STATE_FAILED, res);
    else
        nvx__xf_end(x, PROTO_CTL_STATE_DONE, 0);
    LEAVE(x);
}

/* ---- peers ------------------------------------------------------------- */

void
nvx_xfer_peer_up(nvx_xfer *x, void *peer, const nvx_xfer_peer_info *info)
{
    if (x->ending || nvx__xf_xpeer_find(x, peer))
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
        nvx__xf_send_want(x, xp);
    LEAVE(x);
}

void
nvx_xfer_peer_down(nvx_xfer *x, void *peer)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    if (!xp)
        return;
    ENTER(x);
    nvx__xf_xpeer_remove(x, xp, false);
    x->pump_due = true;
    LEAVE(x);
}

void
nvx_xfer_peer_wants(nvx_xfer *x, void *peer)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    /* Only once we hold a partial ourselves (x->pk): two fetchers still
     * waiting for the manifest would otherwise WANT each other forever. */
    if (xp && !xp->has && x->pk && !x->finishing && !x->ending)
        nvx__xf_send_want(x, xp);
}

void
nvx_xfer_not_found(nvx_xfer *x, void *peer, const proto_not_found *nf, uint64_t now)
{
    struct xpeer *xp = nvx__xf_xpeer_find(x, peer);
    if (!xp || x->ending)
        return;
    ENTER(x);
    x->now = now;
    if (nf->what == PROTO_NOTFOUND_MANIFEST) {
        nvx__xf_xpeer_unhave(x, xp, false);
        goto out;
    }
    struct creq *c = nvx__xf_creq_find(xp, nf->req_id);
    if (!c)
        goto out;
    uint32_t idx = c->idx;
    nvx__xf_creq_send(x, xp, c, PROTO_MSG_CANCEL); /* the other pieces of the chunk */
    x->ops->flush(x->arg, xp->peer);
    nvx__xf_creq_unlink(xp, c);
    if (xp->pp)
        nvx_picker_cancel(x->pk, xp->pp, idx);
    if (nf->what == PROTO_NOTFOUND_BUSY) {
        xp->retry_ms = now + NVX_XFER_BUSY_RETRY_MS;
        if (xp->pp)
            nvx_picker_peer_busy(x->pk, xp->pp);
    } else {
        /* It said HAVE but cannot serve this chunk (its copy rotted, or it
         * lost it): it loses its claim on the chunk, and only that one; if
         * nobody else has it, the transfer fails naming it once nothing
         * else is left (nvx__xf_check_stuck). */
        nvx__xf_refuse(x, xp, idx);
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
        eligible += xp->retry_ms <= now && xp->benched_until <= now;
    }
    uint64_t budget = held < NVX_XFER_HELD_MAX ? NVX_XFER_HELD_MAX - held : 0;
    /* A download limit holds requests here, before they leave: a request
     * sent is answered at the link's speed, so the engine never sees a
     * limited transfer's peers as slow. The bytes requested since the
     * last pump (slow chunks asked elsewhere too) are charged after. */
    if (x->ops->rate_avail) {
        uint64_t allowed = x->ops->rate_avail(x->arg, now);
        budget = allowed < budget ? allowed : budget;
    }
    /* First an even share each, so a short budget is not all taken by the
     * first peer listed; then whatever the others' windows left. */
    for (int pass = 0; pass < 2 && eligible > 0 && budget > 0; pass++) {
        uint64_t share = pass == 0 ? budget / eligible + 1 : UINT64_MAX;
        for (struct xpeer *xp = x->peers; xp && budget > 0; xp = xp->next) {
            if (!xp->pp || xp->retry_ms > now || xp->benched_until > now)
                continue;
            uint64_t left = share < budget ? share : budget, given = left;
            nvx__xf_send_requests(x, xp, now, &left);
            budget -= given - left;
        }
    }
    if (x->ops->rate_used && x->req_bytes != x->req_charged)
        x->ops->rate_used(x->arg, x->req_bytes - x->req_charged);
    x->req_charged = x->req_bytes;
    nvx__xf_ready_dispatch(x, !nvx__xf_expect_more(x));
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
    if ((x->state == PROTO_CTL_STATE_MANIFEST || x->state == PROTO_CTL_STATE_FETCHING) &&
        !x->opening && holders == 0) {
        if (!x->lonely_since_ms)
            x->lonely_since_ms = now ? now : 1;
        if (now - x->lonely_since_ms >= x->lonely_max_ms) {
            nvx__xf_end(x, PROTO_CTL_STATE_FAILED, -EHOSTUNREACH);
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
                nvx__xf_send_want(x, xp);
    }
    if (tick_ms)
        x->rate = (x->rate * 3 + x->rate_bytes * (1000 / tick_ms)) / 4;
    x->rate_bytes = 0;
    nvx__xf_ready_dispatch(x, true); /* bounds how long a received chunk waits */
    nvx__xf_maybe_commit(x, now, false);
    if (x->pk && !x->finishing)
        nvx__xf_ask_slow_elsewhere(x, now);
    nvx__xf_manifest_late(x, now);
    if (x->pk && !x->ending) {
        nvx__xf_check_stuck(x, now);
        if (x->ending)
            goto out;
    }
    /* Requests that never came back: the peer claimed what it does not
     * deliver (or stalls); it loses its claims and its standing. */
again:
    for (struct xpeer *xp = x->peers; xp; xp = xp->next) {
        if ((xp->creqs && now - xp->progress_ms > NVX_XFER_REQUEST_TIMEOUT_MS) ||
            (xp->masked && now - xp->mreq_ms > NVX_XFER_REQUEST_TIMEOUT_MS)) {
            nvx__xf_xpeer_punish(x, xp, "requests it never answered");
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
    nvx__xf_end(x, state, error);
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
    x->lonely_max_ms = NVX_XFER_NO_PROVIDER_MS;
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
nvx_xfer_set_timeout(nvx_xfer *x, uint64_t ms)
{
    x->lonely_max_ms = ms;
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
    nvx__xf_ready_free(x);
    while (x->peers) {
        struct xpeer *xp = x->peers;
        x->peers = xp->next;
        while (xp->creqs)
            nvx__xf_creq_unlink(xp, xp->creqs);
        free(xp->bits);
        free(xp->refused);
        free(xp);
    }
    nvx_picker_free(x->pk);
    free(x->chunk_len);
    free(x->fresh);
    free(x->refusals);
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
        .has_fail_chunk = x->has_fail_chunk,
        .fail_chunk = x->fail_chunk,
        .fail_tried = x->fail_tried,
        .fail_chunks = x->fail_chunks,
        .fail_offset = x->fail_offset,
    };
    if (x->has_fail_chunk && x->chunk_len)
        st->fail_chunk_len = x->chunk_len[x->fail_chunk];
    for (const struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (xp->pp)
            st->inflight += nvx_picker_peer_inflight(xp->pp);
}

bool
nvx_xfer_fresh(const nvx_xfer *x, uint32_t idx)
{
    return x->fresh && idx < x->chunks_total && bit_get(x->fresh, idx);
}
