/* SPDX-License-Identifier: MIT */
/* The simulated nodes: engine actions, serving, faults (swarmsim.h). */
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

/* ---- the engine's actions ---------------------------------------------- */

smsg *
msg_from(const proto_msg *pm)
{
    smsg *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->type = pm->type;
    switch (pm->type) {
    case PROTO_MSG_WANT:
    case PROTO_MSG_HAVE: {
        const proto_chunkset *set = &pm->u.want.set;
        m->kind = set->kind;
        if (set->kind == PROTO_CHUNKSET_RANGES && set->n_ranges) {
            m->ranges = malloc(set->n_ranges * sizeof(proto_range));
            assert_non_null(m->ranges);
            memcpy(m->ranges, set->ranges, set->n_ranges * sizeof(proto_range));
            m->n_ranges = set->n_ranges;
        } else if (set->kind == PROTO_CHUNKSET_BITMAP) {
            memcpy(m->bits, set->bitmap, (set->nbits + 7) / 8);
        }
        break;
    }
    case PROTO_MSG_REQUEST:
    case PROTO_MSG_CANCEL:
        m->req_id = pm->u.request.req_id;
        m->chunk = pm->u.request.chunk;
        m->offset = pm->u.request.offset;
        m->length = pm->u.request.length;
        break;
    case PROTO_MSG_MANIFEST_REQ:
        m->req_id = pm->u.manifest_req.req_id;
        m->offset = pm->u.manifest_req.offset;
        m->length = pm->u.manifest_req.length;
        break;
    default:
        fail_msg("the engine sent message type %u", pm->type);
    }
    return m;
}

void
op_send(void *arg, void *peer, const proto_msg *m)
{
    snode *n = arg;
    if (n->freerider && m->type == PROTO_MSG_HAVE)
        return; /* announces nothing: nobody asks it for anything */
    link_send(n, peer, msg_from(m));
}

void
op_flush(void *arg, void *peer)
{
    (void)arg;
    (void)peer;
}

uint32_t
op_req_ids(void *arg, void *peer, uint32_t n)
{
    (void)arg;
    send_ *e = peer;
    uint32_t b = e->next_req;
    e->next_req += n;
    return b;
}

void
op_open(void *arg, uint8_t *manifest, uint32_t len)
{
    snode *n = arg;
    sev *e = ev_new(n->s, n->s->now_us + US(1), EV_OPEN, n);
    e->mbuf = manifest;
    e->mlen = len;
}

void
op_store(void *arg, nvx_xfer_chunk **c, unsigned nc)
{
    snode *n = arg;
    sim *s = n->s;
    uint64_t t = s->now_us + US(1) + nc * 100u;
    if (t >= n->disk_stall_from_us && t < n->disk_stall_until_us)
        t = n->disk_stall_until_us + US(1);
    sev *e = ev_new(s, t, EV_STORE, n);
    memcpy(e->c, c, nc * sizeof(*c));
    e->nc = nc;
}

void
op_commit(void *arg)
{
    snode *n = arg;
    ev_new(n->s, n->s->now_us + US(2), EV_COMMIT, n);
}

void
op_finish(void *arg)
{
    snode *n = arg;
    ev_new(n->s, n->s->now_us + US(5), EV_FINISH, n);
}

void
op_drop_peer(void *arg, void *peer, const char *why)
{
    snode *n = arg;
    n->s->drops++;
    fail_run(n->s, "node %d dropped node %d: %s", n->idx, peer_of(peer)->idx, why);
    end_close(n->s, peer, true);
}

/* As nvxd: the peer's key and address are refused from now on, its
 * session closed. Only a hostile node may be punished. */
void
op_bad_peer(void *arg, const uint8_t id[32], const char *addr, const char *what)
{
    (void)addr;
    snode *n = arg;
    sim *s = n->s;
    int who = id[0] | id[1] << 8;
    if (who >= s->n_nodes || !s->nodes[who].silent) {
        fail_run(s, "node %d: peer %d sent %s", n->idx, who, what);
        return;
    }
    s->punished++;
    n->banned[who / 8] |= (uint8_t)(1u << (who % 8));
    for (size_t k = 0; k < n->n_ends; k++) {
        if (peer_of(n->ends[k])->idx == who) {
            end_close(s, n->ends[k], true);
            break;
        }
    }
}

void
op_ended(void *arg)
{
    ((snode *)arg)->x_ended = true; /* fetch_settle frees it */
}

static const nvx_xfer_ops sim_ops = {
    .send = op_send,
    .flush = op_flush,
    .req_ids = op_req_ids,
    .open = op_open,
    .store = op_store,
    .commit = op_commit,
    .finish = op_finish,
    .drop_peer = op_drop_peer,
    .bad_peer = op_bad_peer,
    .ended = op_ended,
};

void
fetch_start(sim *s, snode *n)
{
    assert_int_equal(
        nvx_xfer_new(&sim_ops, n, s->id, nvx_splitmix64(&s->rng), s->now_us / 1000, &n->x), 0);
    /* nvxd's windows scaled to this model: 1, 4 and 64 chunks */
    nvx_xfer_windows(n->x, SIM_CHUNK, 4 * SIM_CHUNK, 64 * SIM_CHUNK);
    nvx_xfer_start(n->x);
    for (size_t k = 0; k < n->n_ends; k++)
        peer_up(n, n->ends[k]);
}

/* After every event: an engine that ended is looked at and freed. */
void
fetch_settle(sim *s, snode *n)
{
    if (!n->x || !n->x_ended)
        return;
    nvx_xfer_stats st;
    nvx_xfer_stats_get(n->x, &st);
    nvx_xfer_free(n->x);
    n->x = NULL;
    n->x_ended = false;
    if (st.state == PROTO_CTL_STATE_DONE) {
        n->complete = true;
        n->done_us = s->now_us;
        s->waiting--;
    } else if (st.error == -ENOSPC) {
        n->restarts++; /* the user runs the fetch again once space is freed */
        ev_new(s, n->disk_full_until_us + US(100), EV_RESTART, n);
    } else {
        fail_run(s, "node %d: fetch ended in state %d (%s)", n->idx, st.state, strerror(-st.error));
    }
}

/* ---- serving (serve.c's policy) ---------------------------------------- */

smsg *
msg_new(uint8_t type)
{
    smsg *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->type = type;
    return m;
}

/* As serve-seed.c's reveal(): answer, a HAVE even when nothing is. */
void
ss_reveal(snode *n, send_ *e, bool answer)
{
    uint32_t idx[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t k = nvx_ss_reveal(n->ss, e->ssp, n->s->now_us / 1000, idx, NVX_SS_AHEAD_TOTAL, &all);
    if (k == 0 && !all && !answer)
        return;
    smsg *m = msg_new(PROTO_MSG_HAVE);
    m->kind = all ? PROTO_CHUNKSET_ALL : PROTO_CHUNKSET_BITMAP;
    for (size_t i = 0; i < k; i++)
        m->bits[idx[i] / 8] |= (uint8_t)(1u << (idx[i] % 8));
    link_send(n, e, m);
}

void
serve_want(sim *s, snode *n, send_ *e)
{
    if (n->complete) {
        if (!n->ss)
            assert_int_equal(nvx_ss_new(SIM_CHUNKS, nvx_splitmix64(&s->rng), &n->ss), 0);
        if (e->ssp && nvx_ss_peer_has_all(n->ss, e->ssp)) { /* starts over */
            nvx_ss_peer_remove(n->ss, e->ssp);
            e->ssp = NULL;
        }
        if (e->ssp)
            nvx_ss_peer_redeal(n->ss, e->ssp);
        if (e->ssp || nvx_ss_peer_add(n->ss, &e->ssp) == 0) {
            ss_reveal(n, e, true);
        } else {
            smsg *m = msg_new(PROTO_MSG_HAVE);
            m->kind = PROTO_CHUNKSET_ALL;
            link_send(n, e, m);
        }
    } else if (n->has_manifest) {
        smsg *m = msg_new(PROTO_MSG_HAVE);
        m->kind = PROTO_CHUNKSET_BITMAP;
        memcpy(m->bits, n->stored, sizeof(m->bits));
        link_send(n, e, m);
    } else {
        smsg *m = msg_new(PROTO_MSG_NOT_FOUND);
        m->what = PROTO_NOTFOUND_MANIFEST;
        link_send(n, e, m);
    }
    if (n->x)
        nvx_xfer_peer_wants(n->x, e);
}

/* The reciprocation state of e's peer, made at its first use (NULL when
 * the node has none, or out of memory: then served as before). */
nvx_recip_peer *
end_rp(snode *n, send_ *e)
{
    if (!e->rp && n->rc && nvx_recip_peer_add(n->rc, n->s->now_us / 1000, &e->rp) < 0)
        e->rp = NULL;
    return e->rp;
}

/* e's serve queue grew or shrank by delta: reciprocation hears of it. */
void
rq_count(snode *n, send_ *e, int delta)
{
    e->n_rq = (size_t)((ptrdiff_t)e->n_rq + delta);
    nvx_recip_peer *rp = end_rp(n, e);
    if (rp)
        nvx_recip_queued(n->rc, rp, e->n_rq, n->s->now_us / 1000);
}

/* As serve.c: a fetching node answers BUSY to a peer outside its slots
 * while a peer in one waits (daemon/recip.h); a seeder serves all. */
static bool
choked(snode *n, send_ *e)
{
    return n->x && !n->s->recip_off && e->rp && nvx_recip_choked(n->rc, e->rp);
}

/* The uplink takes the oldest REQUEST of e: its DATA, or NOT_FOUND. */
smsg *
data_for(snode *n, send_ *e)
{
    smsg *r = e->rq;
    e->rq = r->next;
    if (!e->rq)
        e->rq_tail = &e->rq;
    rq_count(n, e, -1);
    if (choked(n, e)) {
        r->type = PROTO_MSG_NOT_FOUND;
        r->what = PROTO_NOTFOUND_BUSY;
    } else if (r->chunk < SIM_CHUNKS && bit(n->stored, r->chunk) &&
               r->offset + (uint64_t)r->length <= SIM_CHUNK) {
        r->type = PROTO_MSG_DATA;
        r->bytes = n->s->content + (size_t)r->chunk * SIM_CHUNK + r->offset;
        r->len = r->length;
        if (e->ssp) {
            nvx_ss_peer_got(n->ss, e->ssp, r->chunk);
            ss_reveal(n, e, false);
        }
    } else {
        r->type = PROTO_MSG_NOT_FOUND;
        r->what = PROTO_NOTFOUND_CHUNK;
    }
    return r;
}

void
serve_request(snode *n, send_ *e, const smsg *r)
{
    if (e->ssp && r->offset == 0)
        nvx_ss_peer_asked(n->ss, e->ssp, r->chunk);
    smsg *m = msg_new(PROTO_MSG_REQUEST);
    m->req_id = r->req_id;
    m->chunk = r->chunk;
    m->offset = r->offset;
    m->length = r->length;
    *e->rq_tail = m;
    e->rq_tail = &m->next;
    rq_count(n, e, 1);
    if (!n->tx_busy)
        tx_next(n);
}

void
serve_cancel(snode *n, send_ *e, const smsg *c)
{
    for (smsg **mp = &e->rq; *mp; mp = &(*mp)->next) {
        if ((*mp)->req_id == c->req_id) {
            smsg *m = *mp;
            *mp = m->next;
            msg_free(m);
            rq_count(n, e, -1);
            break;
        }
    }
    e->rq_tail = &e->rq;
    while (*e->rq_tail)
        e->rq_tail = &(*e->rq_tail)->next;
}

void
serve_manifest(snode *n, send_ *e, const smsg *r)
{
    smsg *m;
    if (n->has_manifest && r->offset < SIM_MANIFEST) {
        m = msg_new(PROTO_MSG_MANIFEST);
        m->bytes = n->s->manifest + r->offset;
        m->len = SIM_MANIFEST - r->offset < r->length ? SIM_MANIFEST - r->offset : r->length;
        m->total = SIM_MANIFEST;
    } else {
        m = msg_new(PROTO_MSG_NOT_FOUND);
        m->what = PROTO_NOTFOUND_MANIFEST;
    }
    m->req_id = r->req_id;
    m->offset = r->offset;
    link_send(n, e, m);
}

/* A message reaches node n at end e: serve it and hand it to the engine. */
void
deliver(sim *s, snode *n, send_ *e, const smsg *m)
{
    if (n->silent) { /* claims everything, answers nothing else */
        if (m->type == PROTO_MSG_WANT) {
            smsg *h = msg_new(PROTO_MSG_HAVE);
            h->kind = PROTO_CHUNKSET_ALL;
            link_send(n, e, h);
        }
        return;
    }
    if (n->freerider && (m->type == PROTO_MSG_WANT || m->type == PROTO_MSG_MANIFEST_REQ)) {
        smsg *h = msg_new(PROTO_MSG_NOT_FOUND); /* "I have nothing" */
        h->what = PROTO_NOTFOUND_MANIFEST;
        h->req_id = m->req_id;
        link_send(n, e, h);
        if (m->type == PROTO_MSG_WANT && n->x)
            nvx_xfer_peer_wants(n->x, e);
        return;
    }
    proto_chunkset set = { .kind = m->kind };
    if (m->kind == PROTO_CHUNKSET_RANGES) {
        set.n_ranges = m->n_ranges;
        memcpy(set.ranges, m->ranges, m->n_ranges * sizeof(proto_range));
    } else if (m->kind == PROTO_CHUNKSET_BITMAP) {
        set.nbits = SIM_CHUNKS;
        set.bitmap = m->bits;
    }
    switch (m->type) {
    case PROTO_MSG_WANT:
        serve_want(s, n, e);
        break;
    case PROTO_MSG_REQUEST:
        serve_request(n, e, m);
        break;
    case PROTO_MSG_MANIFEST_REQ:
        serve_manifest(n, e, m);
        break;
    case PROTO_MSG_CANCEL:
        serve_cancel(n, e, m);
        break;
    case PROTO_MSG_HAVE:
        if (e->ssp) {
            for (uint32_t i = 0; i < SIM_CHUNKS; i++)
                if (proto_chunkset_contains(&set, i))
                    nvx_ss_peer_got(n->ss, e->ssp, i);
            ss_reveal(n, e, false);
        }
        if (n->x)
            nvx_xfer_have(n->x, e, &set);
        break;
    case PROTO_MSG_DATA:
        if (n->x) {
            proto_data d = { .req_id = m->req_id, .chunk = m->chunk, .offset = m->offset };
            memcpy(d.model_id, s->id, 32);
            d.bytes.p = m->bytes;
            d.bytes.len = m->len;
            uint32_t got = nvx_xfer_data(n->x, e, &d, s->now_us / 1000);
            n->data_down += got;
            nvx_recip_peer *rp = got ? end_rp(n, e) : NULL;
            if (rp)
                nvx_recip_received(n->rc, rp, got);
        }
        break;
    case PROTO_MSG_NOT_FOUND:
        if (n->x) {
            proto_not_found nf = { .req_id = m->req_id, .chunk = m->chunk, .what = m->what };
            memcpy(nf.model_id, s->id, 32);
            nvx_xfer_not_found(n->x, e, &nf, s->now_us / 1000);
        }
        break;
    case PROTO_MSG_MANIFEST:
        if (n->x) {
            proto_manifest pm = { .req_id = m->req_id, .total = m->total, .offset = m->offset };
            memcpy(pm.model_id, s->id, 32);
            pm.bytes.p = m->bytes;
            pm.bytes.len = m->len;
            nvx_xfer_manifest(n->x, e, &pm);
        }
        break;
    }
}

/* ---- faults ------------------------------------------------------------ */

void
node_die(sim *s, snode *n)
{
    if (!n->alive)
        return;
    n->alive = false;
    n->gen++;
    if (n->x) {
        nvx_xfer_free(n->x); /* its pending job events are stale now */
        n->x = NULL;
        n->x_ended = false;
    }
    while (n->n_ends > 0)
        end_close(s, n->ends[0], true);
    nvx_ss_free(n->ss);
    n->ss = NULL;
    nvx_recip_free(n->rc); /* end_close removed its peers */
    n->rc = NULL;
    n->tx_busy = false;
}

void
node_start(sim *s, snode *n)
{
    n->alive = true;
    n->tx_busy = false;
    const nvx_recip_cfg rcfg = { .rank_ms = SIM_RECIP_RANK_MS,
                                 .optimistic_ms = SIM_RECIP_OPTIMISTIC_MS,
                                 .new_ms = SIM_RECIP_NEW_MS };
    assert_int_equal(nvx_recip_new(&rcfg, nvx_splitmix64(&s->rng), s->now_us / 1000, &n->rc), 0);
    if (!n->complete)
        fetch_start(s, n);
    connect_all(s, n);
    ev_new(s, s->now_us + rnd(s, US(SIM_TICK_MS)), EV_TICK, n);
}

void
cut(sim *s)
{
    memset(s->cut, 0, sizeof(s->cut));
    for (int i = 0; i < s->n_nodes; i++)
        s->cut[i] = rnd(s, 4) == 0;
    s->partitioned = true;
    for (slink *l = s->links; l; l = l->next)
        if (s->cut[l->n[0]->idx] != s->cut[l->n[1]->idx])
            for (int i = 0; i < 2; i++)
                end_close(s, &l->end[i], false); /* both see the reset */
}

void
heal(sim *s)
{
    s->partitioned = false;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].alive)
            connect_all(s, &s->nodes[i]);
}

/* ---- the loop ---------------------------------------------------------- */

void
on_store(sim *s, snode *n, sev *ev)
{
    bool full = s->now_us >= n->disk_full_from_us && s->now_us < n->disk_full_until_us;
    for (unsigned k = 0; k < ev->nc; k++) {
        nvx_xfer_chunk *c = ev->c[k];
        if (full) {
            c->res = -ENOSPC;
            continue;
        }
        bool ok = c->idx < SIM_CHUNKS && c->len == SIM_CHUNK &&
                  memcmp(c->data, s->content + (size_t)c->idx * SIM_CHUNK, SIM_CHUNK) == 0;
        c->res = ok ? 1 : -EBADMSG;
        if (ok && bit(n->stored, c->idx))
            fail_run(s, "node %d stored chunk %u twice", n->idx, c->idx);
        if (ok)
            n->stored[c->idx / 8] |= (uint8_t)(1u << (c->idx % 8));
    }
    nvx_xfer_stored(n->x, ev->c, ev->nc, s->now_us / 1000);
    ev->nc = 0; /* the engine freed them */
}

void
on_open(sim *s, snode *n, sev *ev)
{
    int res;
    if (ev->mbuf) {
        res = ev->mlen == SIM_MANIFEST && memcmp(ev->mbuf, s->manifest, SIM_MANIFEST) == 0
                  ? NVX_XFER_OPEN_READY
                  : -EBADMSG;
        if (res > 0)
            n->has_manifest = true;
    } else {
        res = n->complete       ? NVX_XFER_OPEN_COMPLETE
              : n->has_manifest ? NVX_XFER_OPEN_READY
                                : NVX_XFER_OPEN_NEED_MANIFEST;
    }
    uint32_t len[SIM_CHUNKS];
    for (int i = 0; i < SIM_CHUNKS; i++)
        len[i] = SIM_CHUNK;
    nvx_xfer_opened(n->x, res, SIM_CHUNKS, len, n->stored, s->now_us / 1000);
}

void
on_tick(sim *s, snode *n)
{
    if (n->x)
        nvx_xfer_tick(n->x, s->now_us / 1000, SIM_TICK_MS);
    nvx_recip_tick(n->rc, s->now_us / 1000);
    for (size_t k = 0; n->ss && k < n->n_ends; k++)
        if (n->ends[k]->ssp)
            ss_reveal(n, n->ends[k], false);
    ev_new(s, s->now_us + US(SIM_TICK_MS), EV_TICK, n);
}

void
handle(sim *s, sev *ev)
{
    snode *n = ev->n;
    switch (ev->kind) {
    case EV_CUT:
        cut(s);
        return;
    case EV_HEAL:
        heal(s);
        return;
    case EV_REVIVE:
        node_start(s, n);
        return;
    default:
        break;
    }
    if (ev->gen != n->gen || !n->alive)
        return;
    switch (ev->kind) {
    case EV_DELIVER:
        if (ev->end->open)
            deliver(s, n, ev->end, ev->m);
        break;
    case EV_CLOSE:
        end_close(s, ev->end, false);
        break;
    case EV_TX_DONE:
        tx_done(s, ev);
        break;
    case EV_TICK:
        on_tick(s, n);
        break;
    case EV_OPEN:
        if (n->x)
            on_open(s, n, ev);
        break;
    case EV_STORE:
        if (n->x)
            on_store(s, n, ev);
        break;
    case EV_COMMIT:
        if (n->x)
            nvx_xfer_committed(n->x, 0, s->now_us / 1000);
        break;
    case EV_FINISH:
        if (n->x) {
            bool all = true;
            for (int i = 0; i < SIM_CHUNKS; i++)
                all &= bit(n->stored, (uint32_t)i);
            nvx_xfer_finished(n->x, all ? 0 : -EIO);
        }
        break;
    case EV_DIE:
        if (!n->complete && n->gone_for_good)
            s->waiting--;
        node_die(s, n);
        break;
    case EV_RECONNECT: /* a hostile node comes back (a new key, free) */
        connect_all(s, n);
        ev_new(s, s->now_us + US(500), EV_RECONNECT, n);
        break;
    case EV_RESTART:
        if (!n->complete && !n->x)
            fetch_start(s, n);
        break;
    }
    if (n->x && nvx_xfer_pump_due(n->x))
        nvx_xfer_pump(n->x, s->now_us / 1000);
    fetch_settle(s, n);
}
