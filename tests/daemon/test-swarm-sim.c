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

#include "daemon/superseed.h"
#include "daemon/util.h"
#include "daemon/xfer.h"
#include "proto/control.h"

enum {
    SIM_NODES = 200,
    SIM_DEGREE = 8,                 /* random fetcher neighbours each (both ways) */
    SIM_CHUNKS = 128,
    SIM_CHUNK = 8 * 1024,           /* a 1 MiB model */
    SIM_MANIFEST = 640,             /* bytes: as nvxd's, ~0.06% of the model */
    SIM_PIECE = 16 * 1024,          /* REQUEST length limit of a link */
    SIM_UPLINK = 128 * 1024,        /* bytes/s per node */
    SIM_LATENCY_MS = 10,            /* one way */
    SIM_RTO_MS = 200,               /* a lost segment costs this */
    SIM_LOSS_PPM = 20000,           /* 2% of messages */
    SIM_HEADER = 40,                /* bytes a message costs besides its payload */
    SIM_TICK_MS = 250,
    SIM_LIMIT_MS = 600 * 1000,      /* sim time: a run that has not ended fails */
    SIM_CHURN_PCT = 20,
};

/* Seeds per scenario: three scenarios, ~0.2 s a seed in a plain build;
 * sanitizers run fewer (ten times slower). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SIM_SEEDS 12
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIM_SEEDS 12
#endif
#endif
#ifndef SIM_SEEDS
#define SIM_SEEDS 80
#endif

#define US(ms) ((uint64_t)(ms) * 1000u)

typedef struct sim sim;
typedef struct snode snode;
typedef struct slink slink;

/* A message in flight, compact (a proto_msg is 8 KiB). */
typedef struct smsg {
    struct smsg *next;
    uint8_t type, what, kind;
    uint32_t req_id, chunk, offset, length, total;
    uint8_t bits[SIM_CHUNKS / 8]; /* HAVE/WANT BITMAP */
    proto_range *ranges;          /* HAVE RANGES (owned) */
    size_t n_ranges;
    const uint8_t *bytes; /* DATA, MANIFEST: into the sim's content */
    uint32_t len;
} smsg;

/* One end of a session: the node's handle for the peer at the other end. */
typedef struct send_ {
    slink *l;
    int side; /* this end belongs to l->n[side] */
    bool open;
    uint32_t next_req;
    smsg *q, **q_tail;   /* waiting for the uplink */
    smsg *rq, **rq_tail; /* REQUESTs to serve: DATA is made when the uplink
                          * takes it, as serve.c reads when the links drain,
                          * so a CANCEL still removes what waits */
    nvx_ss_peer *ssp;  /* super-seeding state, when we serve a complete model */
} send_;

struct slink {
    slink *next;
    snode *n[2];
    send_ end[2];
    uint64_t last_arrival_us[2]; /* per direction: to n[i] */
};

struct snode {
    sim *s;
    int idx;
    bool alive, seeder, complete, has_manifest, gone_for_good;
    bool x_ended; /* the engine said ended: fetch_settle frees it */
    unsigned gen; /* bumps at death: stale events are dropped */
    uint8_t stored[SIM_CHUNKS / 8];
    uint8_t store_count[SIM_CHUNKS];
    nvx_xfer *x;
    send_ **ends;
    size_t n_ends, cap_ends, rr;
    bool tx_busy;
    int *nbrs;
    size_t n_nbrs;
    uint64_t disk_stall_from_us, disk_stall_until_us, disk_full_from_us, disk_full_until_us;
    uint64_t data_up, data_down; /* DATA payload bytes */
    uint64_t done_us;
    unsigned restarts;
    nvx_ss *ss; /* super-seeding of the complete model */
};

enum { EV_DELIVER, EV_CLOSE, EV_TX_DONE, EV_TICK, EV_OPEN, EV_STORE, EV_COMMIT, EV_FINISH,
       EV_DIE, EV_REVIVE, EV_CUT, EV_HEAL, EV_RESTART };

typedef struct sev {
    uint64_t t, seq;
    int kind;
    snode *n;
    unsigned gen;
    send_ *end; /* DELIVER/CLOSE: the receiving end; TX_DONE: the sending end */
    smsg *m;
    int res;
    uint8_t *mbuf; /* OPEN */
    uint32_t mlen;
    nvx_xfer_chunk *c[NVX_XFER_PUT_BATCH];
    unsigned nc;
} sev;

struct sim {
    uint64_t seed, rng, now_us, seq;
    sev **heap;
    size_t n_heap, cap_heap;
    snode nodes[SIM_NODES];
    slink *links;
    uint8_t content[SIM_CHUNKS * SIM_CHUNK];
    uint8_t manifest[SIM_MANIFEST];
    uint8_t id[32];
    bool partitioned;
    uint8_t cut[SIM_NODES]; /* in the partitioned group */
    bool seeder_leaves;      /* kill the seeder once each chunk left it */
    uint8_t seeder_sent[SIM_CHUNKS / 8];
    unsigned n_seeder_sent;
    unsigned drops;
    unsigned waiting; /* nodes that must still complete */
    char fail[256];
};

static uint64_t
rnd(sim *s, uint64_t n)
{
    return n ? nvx_splitmix64(&s->rng) % n : 0;
}

static bool
bit(const uint8_t *b, uint32_t i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

static void
fail_run(sim *s, const char *fmt, ...)
{
    if (s->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail, sizeof(s->fail), fmt, ap);
    va_end(ap);
}

/* ---- events ------------------------------------------------------------ */

static bool
ev_less(const sev *a, const sev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static sev *
ev_new(sim *s, uint64_t t, int kind, snode *n)
{
    sev *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->t = t;
    e->seq = s->seq++;
    e->kind = kind;
    e->n = n;
    e->gen = n ? n->gen : 0;
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 4096;
        s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
        assert_non_null(s->heap);
    }
    size_t i = s->n_heap++;
    while (i > 0 && ev_less(e, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
    return e;
}

static sev *
ev_pop(sim *s)
{
    if (s->n_heap == 0)
        return NULL;
    sev *top = s->heap[0], *last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap)
            break;
        if (c + 1 < s->n_heap && ev_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!ev_less(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0)
        s->heap[i] = last;
    return top;
}

static void
msg_free(smsg *m)
{
    if (m) {
        free(m->ranges);
        free(m);
    }
}

static void
ev_free(sev *e)
{
    msg_free(e->m);
    free(e->mbuf);
    for (unsigned k = 0; k < e->nc; k++) {
        free(e->c[k]->mem);
        free(e->c[k]);
    }
    free(e);
}

/* ---- links ------------------------------------------------------------- */

static snode *
peer_of(send_ *e)
{
    return e->l->n[1 - e->side];
}

static void tx_next(snode *n);
static smsg *data_for(snode *n, send_ *e);

/* Queues m on n's uplink towards the other end of e. */
static void
link_send(snode *n, send_ *e, smsg *m)
{
    if (!e->open || !n->alive) {
        msg_free(m);
        return;
    }
    *e->q_tail = m;
    e->q_tail = &m->next;
    if (!n->tx_busy)
        tx_next(n);
}

static uint32_t
msg_size(const smsg *m)
{
    return SIM_HEADER + m->len + (uint32_t)m->n_ranges * 8 + (m->kind == PROTO_CHUNKSET_BITMAP ? SIM_CHUNKS / 8 : 0);
}

/* The uplink is free: send the next message, sessions taking turns. */
static void
tx_next(snode *n)
{
    n->tx_busy = true; /* data_for may queue a HAVE: no second sender */
    for (size_t k = 0; k < n->n_ends; k++) {
        send_ *e = n->ends[(n->rr + k) % n->n_ends];
        if (!e->q && !e->rq)
            continue;
        n->rr = (n->rr + k + 1) % n->n_ends;
        smsg *m;
        if (e->q) {
            m = e->q;
            e->q = m->next;
            if (!e->q)
                e->q_tail = &e->q;
        } else {
            m = data_for(n, e);
        }
        m->next = NULL;
        uint64_t dt = (uint64_t)msg_size(m) * 1000000u / SIM_UPLINK;
        sev *ev = ev_new(n->s, n->s->now_us + dt, EV_TX_DONE, n);
        ev->end = e;
        ev->m = m;
        return;
    }
    n->tx_busy = false;
}

static void
tx_done(sim *s, sev *ev)
{
    snode *n = ev->n;
    send_ *e = ev->end;
    smsg *m = ev->m;
    ev->m = NULL;
    if (m->type == PROTO_MSG_DATA) {
        n->data_up += m->len;
        if (n->seeder && !bit(s->seeder_sent, m->chunk)) {
            s->seeder_sent[m->chunk / 8] |= (uint8_t)(1u << (m->chunk % 8));
            if (++s->n_seeder_sent == SIM_CHUNKS && s->seeder_leaves)
                ev_new(s, s->now_us, EV_DIE, n);
        }
    }
    if (e->open) {
        int to = 1 - e->side;
        uint64_t t = s->now_us + US(SIM_LATENCY_MS);
        if (rnd(s, 1000000) < SIM_LOSS_PPM)
            t += US(SIM_RTO_MS);
        if (t < e->l->last_arrival_us[to])
            t = e->l->last_arrival_us[to];
        e->l->last_arrival_us[to] = t;
        sev *d = ev_new(s, t, EV_DELIVER, e->l->n[to]);
        d->end = &e->l->end[to];
        d->m = m;
    } else {
        msg_free(m);
    }
    tx_next(n);
}

static void
end_remove(snode *n, send_ *e)
{
    for (size_t k = 0; k < n->n_ends; k++) {
        if (n->ends[k] == e) {
            n->ends[k] = n->ends[--n->n_ends];
            break;
        }
    }
    if (n->rr >= n->n_ends)
        n->rr = 0;
}

/* n's side of the session closes (it dropped it, died, or heard the other
 * side close). The other side hears it after the messages already sent. */
static void
end_close(sim *s, send_ *e, bool tell_other)
{
    if (!e->open)
        return;
    snode *n = e->l->n[e->side];
    e->open = false;
    while (e->q) {
        smsg *m = e->q;
        e->q = m->next;
        msg_free(m);
    }
    e->q_tail = &e->q;
    while (e->rq) {
        smsg *m = e->rq;
        e->rq = m->next;
        msg_free(m);
    }
    e->rq_tail = &e->rq;
    end_remove(n, e);
    if (e->ssp) {
        nvx_ss_peer_remove(n->ss, e->ssp);
        e->ssp = NULL;
    }
    if (n->x)
        nvx_xfer_peer_down(n->x, e);
    if (tell_other) {
        int to = 1 - e->side;
        uint64_t t = s->now_us + US(SIM_LATENCY_MS);
        if (t < e->l->last_arrival_us[to])
            t = e->l->last_arrival_us[to];
        sev *c = ev_new(s, t, EV_CLOSE, e->l->n[to]);
        c->end = &e->l->end[to];
    }
}

static void
peer_up(snode *n, send_ *e)
{
    if (!n->x)
        return;
    nvx_xfer_peer_info pi = { .addr = "sim", .piece = SIM_PIECE };
    pi.id[0] = (uint8_t)peer_of(e)->idx;
    pi.id[1] = (uint8_t)(peer_of(e)->idx >> 8);
    nvx_xfer_peer_up(n->x, e, &pi);
}

static bool
linked(snode *a, snode *b)
{
    for (size_t k = 0; k < a->n_ends; k++)
        if (peer_of(a->ends[k]) == b)
            return true;
    return false;
}

static void
ends_add(snode *n, send_ *e)
{
    if (n->n_ends == n->cap_ends) {
        n->cap_ends = n->cap_ends ? n->cap_ends * 2 : 16;
        n->ends = realloc(n->ends, n->cap_ends * sizeof(*n->ends));
        assert_non_null(n->ends);
    }
    n->ends[n->n_ends++] = e;
}

static void
connect_nodes(sim *s, snode *a, snode *b)
{
    if (!a->alive || !b->alive || a == b || linked(a, b) ||
        (s->partitioned && s->cut[a->idx] != s->cut[b->idx]))
        return;
    slink *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    l->next = s->links;
    s->links = l;
    l->n[0] = a;
    l->n[1] = b;
    for (int i = 0; i < 2; i++) {
        l->end[i] = (send_){ .l = l, .side = i, .open = true, .next_req = 1 };
        l->end[i].q_tail = &l->end[i].q;
        l->end[i].rq_tail = &l->end[i].rq;
        ends_add(l->n[i], &l->end[i]);
    }
    peer_up(a, &l->end[0]);
    peer_up(b, &l->end[1]);
}

static void
connect_all(sim *s, snode *n)
{
    for (size_t k = 0; k < n->n_nbrs; k++)
        connect_nodes(s, n, &s->nodes[n->nbrs[k]]);
}

/* ---- the engine's actions ---------------------------------------------- */

static smsg *
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

static void
op_send(void *arg, void *peer, const proto_msg *m)
{
    link_send(arg, peer, msg_from(m));
}

static void
op_flush(void *arg, void *peer)
{
    (void)arg;
    (void)peer;
}

static uint32_t
op_req_ids(void *arg, void *peer, uint32_t n)
{
    (void)arg;
    send_ *e = peer;
    uint32_t b = e->next_req;
    e->next_req += n;
    return b;
}

static void
op_open(void *arg, uint8_t *manifest, uint32_t len)
{
    snode *n = arg;
    sev *e = ev_new(n->s, n->s->now_us + US(1), EV_OPEN, n);
    e->mbuf = manifest;
    e->mlen = len;
}

static void
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

static void
op_commit(void *arg)
{
    snode *n = arg;
    ev_new(n->s, n->s->now_us + US(2), EV_COMMIT, n);
}

static void
op_finish(void *arg)
{
    snode *n = arg;
    ev_new(n->s, n->s->now_us + US(5), EV_FINISH, n);
}

static void
op_drop_peer(void *arg, void *peer, const char *why)
{
    snode *n = arg;
    n->s->drops++;
    fail_run(n->s, "node %d dropped node %d: %s", n->idx, peer_of(peer)->idx, why);
    end_close(n->s, peer, true);
}

static void
op_bad_peer(void *arg, const uint8_t id[32], const char *addr, const char *what)
{
    (void)addr;
    snode *n = arg;
    fail_run(n->s, "node %d: peer %d sent %s", n->idx, id[0] | id[1] << 8, what);
}

static void
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

static void
fetch_start(sim *s, snode *n)
{
    assert_int_equal(nvx_xfer_new(&sim_ops, n, s->id, nvx_splitmix64(&s->rng), s->now_us / 1000, &n->x), 0);
    /* nvxd's windows scaled to this model: 1, 4 and 64 chunks */
    nvx_xfer_windows(n->x, SIM_CHUNK, 4 * SIM_CHUNK, 64 * SIM_CHUNK);
    nvx_xfer_start(n->x);
    for (size_t k = 0; k < n->n_ends; k++)
        peer_up(n, n->ends[k]);
}

/* After every event: an engine that ended is looked at and freed. */
static void
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
        fail_run(s, "node %d: fetch ended in state %d (%s)", n->idx, st.state,
                 strerror(-st.error));
    }
}

/* ---- serving (serve.c's policy) ---------------------------------------- */

static smsg *
msg_new(uint8_t type)
{
    smsg *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->type = type;
    return m;
}

/* As serve-seed.c's reveal(): answer, a HAVE even when nothing is. */
static void
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

static void
serve_want(sim *s, snode *n, send_ *e)
{
    if (n->complete) {
        if (!n->ss)
            assert_int_equal(nvx_ss_new(SIM_CHUNKS, nvx_splitmix64(&s->rng), &n->ss), 0);
        if (e->ssp && nvx_ss_peer_has_all(n->ss, e->ssp)) { /* starts over */
            nvx_ss_peer_remove(n->ss, e->ssp);
            e->ssp = NULL;
        }
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

/* The uplink takes the oldest REQUEST of e: its DATA, or NOT_FOUND. */
static smsg *
data_for(snode *n, send_ *e)
{
    smsg *r = e->rq;
    e->rq = r->next;
    if (!e->rq)
        e->rq_tail = &e->rq;
    if (r->chunk < SIM_CHUNKS && bit(n->stored, r->chunk) &&
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

static void
serve_request(snode *n, send_ *e, const smsg *r)
{
    smsg *m = msg_new(PROTO_MSG_REQUEST);
    m->req_id = r->req_id;
    m->chunk = r->chunk;
    m->offset = r->offset;
    m->length = r->length;
    *e->rq_tail = m;
    e->rq_tail = &m->next;
    if (!n->tx_busy)
        tx_next(n);
}

static void
serve_cancel(send_ *e, const smsg *c)
{
    for (smsg **mp = &e->rq; *mp; mp = &(*mp)->next) {
        if ((*mp)->req_id == c->req_id) {
            smsg *m = *mp;
            *mp = m->next;
            msg_free(m);
            break;
        }
    }
    e->rq_tail = &e->rq;
    while (*e->rq_tail)
        e->rq_tail = &(*e->rq_tail)->next;
}

static void
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
static void
deliver(sim *s, snode *n, send_ *e, const smsg *m)
{
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
        serve_cancel(e, m);
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
            n->data_down += nvx_xfer_data(n->x, e, &d, s->now_us / 1000);
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

static void
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
    n->tx_busy = false;
}

static void
node_start(sim *s, snode *n)
{
    n->alive = true;
    n->tx_busy = false;
    if (!n->complete)
        fetch_start(s, n);
    connect_all(s, n);
    ev_new(s, s->now_us + rnd(s, US(SIM_TICK_MS)), EV_TICK, n);
}

static void
cut(sim *s)
{
    memset(s->cut, 0, sizeof(s->cut));
    for (int i = 0; i < SIM_NODES; i++)
        s->cut[i] = rnd(s, 4) == 0;
    s->partitioned = true;
    for (slink *l = s->links; l; l = l->next)
        if (s->cut[l->n[0]->idx] != s->cut[l->n[1]->idx])
            for (int i = 0; i < 2; i++)
                end_close(s, &l->end[i], false); /* both see the reset */
}

static void
heal(sim *s)
{
    s->partitioned = false;
    for (int i = 0; i < SIM_NODES; i++)
        if (s->nodes[i].alive)
            connect_all(s, &s->nodes[i]);
}

/* ---- the loop ---------------------------------------------------------- */

static void
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

static void
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

static void
on_tick(sim *s, snode *n)
{
    if (n->x)
        nvx_xfer_tick(n->x, s->now_us / 1000, SIM_TICK_MS);
    for (size_t k = 0; n->ss && k < n->n_ends; k++)
        if (n->ends[k]->ssp)
            ss_reveal(n, n->ends[k], false);
    ev_new(s, s->now_us + US(SIM_TICK_MS), EV_TICK, n);
}

static void
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
    case EV_RESTART:
        if (!n->complete && !n->x)
            fetch_start(s, n);
        break;
    }
    if (n->x && nvx_xfer_pump_due(n->x))
        nvx_xfer_pump(n->x, s->now_us / 1000);
    fetch_settle(s, n);
}

typedef struct sim_opts {
    bool faults;        /* churn, partition, disks */
    bool seeder_leaves; /* once each chunk left it */
} sim_opts;

typedef struct sim_result {
    double time_x;        /* last completion / ideal */
    double seeder_copies; /* DATA the seeder uploaded / model */
    double most_down;     /* most DATA one node received / model */
    unsigned died, restarts;
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
    /* neighbours: the seeder and SIM_DEGREE random fetchers, both ways */
    static int adj[SIM_NODES][SIM_NODES];
    memset(adj, 0, sizeof(adj));
    for (int i = 1; i < SIM_NODES; i++) {
        adj[0][i] = adj[i][0] = 1;
        for (int k = 0; k < SIM_DEGREE / 2; k++) {
            int j = 1 + (int)rnd(s, SIM_NODES - 1);
            if (j != i)
                adj[i][j] = adj[j][i] = 1;
        }
    }
    for (int i = 0; i < SIM_NODES; i++) {
        snode *n = &s->nodes[i];
        n->s = s;
        n->idx = i;
        n->nbrs = calloc(SIM_NODES, sizeof(int));
        assert_non_null(n->nbrs);
        for (int j = 0; j < SIM_NODES; j++)
            if (adj[i][j])
                n->nbrs[n->n_nbrs++] = j;
    }
    snode *seeder = &s->nodes[0];
    seeder->seeder = seeder->complete = seeder->has_manifest = true;
    memset(seeder->stored, 0xff, sizeof(seeder->stored));
    s->waiting = SIM_NODES - 1;
    uint64_t ideal = US(1000) * SIM_CHUNKS * SIM_CHUNK / SIM_UPLINK;
    if (o->faults) {
        for (int i = 1; i < SIM_NODES; i++) {
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
    for (int i = 0; i < SIM_NODES; i++)
        node_start(s, &s->nodes[i]);
}

static void
teardown(sim *s)
{
    for (int i = 0; i < SIM_NODES; i++) {
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
    uint64_t last = 0;
    *r = (sim_result){ 0 };
    for (int i = 1; i < SIM_NODES && !s->fail[0]; i++) {
        snode *n = &s->nodes[i];
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
    }
    r->time_x = (double)last / (US(1000) * model / SIM_UPLINK);
    r->seeder_copies = s->nodes[0].data_up / model;
    bool ok = !s->fail[0];
    teardown(s);
    return ok;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    scenario("churn+partition+disks", &o, 2000, 2.5, 4);
}

static void
test_seeder_leaves(void **state)
{
    (void)state;
    sim_opts o = { .seeder_leaves = true };
    scenario("seeder leaves after one copy", &o, 3000, 1.0, 2.2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calm),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_seeder_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
