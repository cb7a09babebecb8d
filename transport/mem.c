/* SPDX-License-Identifier: MIT */
/*
 * In-memory links: a discrete-event simulation of a network on one uv_timer_t.
 * The model is described in mem.h; here is how it runs.
 *
 * Every future happening (a segment reaching its receiver, window credit
 * reaching its sender, a sender's wire becoming free, a send finishing, a
 * dial arriving, ...) is an event in one binary min-heap ordered by (time in
 * ns, sequence number). The sequence number makes ties resolve in the order
 * events were scheduled, which keeps the whole run deterministic for a given
 * order of calls. The timer is armed for the earliest event; its callback
 * runs every event that is due. While an event runs, the world's clock is the
 * event's time, so reactions (an echo sent from a receive callback) are timed
 * exactly; calls from outside start at uv_now() of the loop.
 *
 * In-order delivery with loss is cheap: each direction remembers when its
 * last segment arrives, and a segment never arrives before that. A lost
 * segment thus delays every later one — the head-of-line blocking a TCP
 * stream shows — without any reordering buffer.
 *
 * Lifetimes: connections are reference counted internally. The user holds
 * one reference until the close callback; each event that points at a
 * connection holds another, so an event never finds freed memory even after
 * its connection (and node) went away; such events only drop references.
 */
#include "transport/mem.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "transport/internal.h"

enum {
    EVENTS_PER_TICK = 4096, /* then yield to the loop's other handles */
    NS_PER_MS = 1000000,
};

enum ev_type {
    EV_SEG,        /* segment (or FIN) arrives at seg->dst */
    EV_CREDIT,     /* receiver consumed len bytes: window credit reaches conn */
    EV_PUMP,       /* conn's wire is free again */
    EV_DRAIN,      /* conn resumed reading: deliver what waited */
    EV_SEND_DONE,  /* a send request finished */
    EV_SYN,        /* a dial reaches the listening endpoint */
    EV_CONNECTED,  /* the dialler learns the outcome */
    EV_CLOSE_DONE, /* conn's close callback is due */
    EV_LCLOSE,     /* listener's close callback is due */
    _EV_TYPE_MAX,
};

typedef struct mem_conn mem_conn;

typedef struct event {
    uint64_t t;   /* simulated ns */
    uint64_t seq; /* tie-break: scheduling order */
    enum ev_type type;
    int status;
    size_t len;
    void *obj; /* mem_conn, mem_req, seg or mem_listener */
} event;

typedef struct seg {
    event ev;
    struct seg *next; /* receiver's queue */
    mem_conn *src;    /* referenced: gets the window credit */
    mem_conn *dst;    /* referenced */
    int fin;
    size_t len;
    uint8_t data[];
} seg;

typedef struct mem_req {
    event done;
    struct mem_req *next;
    mem_conn *conn;
    tp_send_cb cb;
    void *arg;
    size_t total;
    size_t left; /* bytes not yet on the wire */
    unsigned nbufs, bi;
    size_t boff;
    tp_buf bufs[];
} mem_req;

/* Link parameters in the units the simulation uses. */
typedef struct link_params {
    uint64_t lat_ns;
    uint64_t rto_ns;
    uint64_t bandwidth;
    uint32_t loss_ppm;
    size_t mtu;
    size_t window;
} link_params;

typedef struct link_override {
    struct link_override *next;
    char a[TP_MEM_NAME_MAX], b[TP_MEM_NAME_MAX];
    struct tp_mem_link link;
} link_override;

typedef struct mem_node {
    tp_net base;
    tp_mem_world *world;
    struct mem_node *next;
    uint32_t dials;
    char name[TP_MEM_NAME_MAX];
} mem_node;

typedef struct mem_listener {
    tp_listener base;
    tp_mem_world *world;
    mem_node *node;
    struct mem_listener *next; /* world's endpoint list */
    event close_ev;
    char name[TP_MEM_NAME_MAX];
} mem_listener;

struct mem_conn {
    tp_conn base;
    tp_mem_world *world;
    unsigned refs;
    mem_conn *peer; /* not a reference; cleared when either side is freed */
    link_params p;
    uint64_t rng;

    /* Dialling. */
    int connect_reported;
    event syn_ev;
    event connected_ev;

    /* Sending direction (this side → peer). */
    mem_req *txq, *txq_tail;
    size_t queued;         /* bytes of requests whose callback has not run */
    size_t inflight;       /* on the wire or unread at the peer */
    uint64_t wire_free;    /* when the wire can take the next segment */
    uint64_t last_arrival; /* in-order delivery floor */
    event pump_ev;
    int pump_scheduled;
    uint64_t last_done; /* latest send completion time scheduled */

    /* Receiving direction. */
    seg *rxq, *rxq_tail;
    event drain_ev;
    int drain_scheduled;

    event close_ev;
    char local[TP_ADDR_MAX];
    char remote[TP_ADDR_MAX];
};

struct tp_mem_world {
    uv_loop_t *loop;
    uv_timer_t timer;
    uint64_t armed_ms; /* absolute uv_now() the timer is due at; 0 = unarmed */
    uint64_t now;      /* simulated ns */
    int dispatching;
    uint64_t seed;
    struct tp_mem_link defaults;
    link_override *overrides;
    mem_node *nodes;
    mem_listener *endpoints;
    event **heap;
    size_t n_heap, cap_heap;
    uint64_t next_seq;
    struct tp_mem_stats stats;
};

/* --- random numbers (splitmix64: tiny, seedable, good enough for loss) --- */

static uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
hash_str(uint64_t h, const char *s)
{
    /* FNV-1a, then mixed by the caller's splitmix64. */
    h ^= 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* --- the event heap --- */

static int
ev_before(const event *a, const event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
heap_swap(tp_mem_world *w, size_t i, size_t j)
{
    event *e = w->heap[i];
    w->heap[i] = w->heap[j];
    w->heap[j] = e;
}

static int
heap_push(tp_mem_world *w, event *e)
{
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? w->cap_heap * 2 : 256;
        event **h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    w->heap[i] = e;
    while (i > 0 && ev_before(w->heap[i], w->heap[(i - 1) / 2])) {
        heap_swap(w, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static event *
heap_pop(tp_mem_world *w)
{
    if (w->n_heap == 0)
        return NULL;
    event *top = w->heap[0];
    w->heap[0] = w->heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->n_heap && ev_before(w->heap[l], w->heap[m]))
            m = l;
        if (r < w->n_heap && ev_before(w->heap[r], w->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(w, i, m);
        i = m;
    }
    return top;
}

/* The world's clock: exact inside event dispatch, else the loop's time. */
static uint64_t
world_now(tp_mem_world *w)
{
    if (!w->dispatching) {
        uint64_t loop_ns = uv_now(w->loop) * NS_PER_MS;
        if (loop_ns > w->now)
            w->now = loop_ns;
    }
    return w->now;
}

static void on_timer(uv_timer_t *t);

static void
arm_timer(tp_mem_world *w)
{
    if (w->n_heap == 0) {
        if (w->armed_ms) {
            uv_timer_stop(&w->timer);
            w->armed_ms = 0;
        }
        return;
    }
    uint64_t due = (w->heap[0]->t + NS_PER_MS - 1) / NS_PER_MS; /* never early */
    uint64_t now = uv_now(w->loop);
    if (due < now)
        due = now;
    if (due == 0)
        due = 1; /* 0 means unarmed */
    if (w->armed_ms == due)
        return;
    w->armed_ms = due;
    (void)uv_timer_start(&w->timer, on_timer, due - now, 0);
}

/* Schedules e at time t. Allocation failure of the heap is the only error;
 * the simulation cannot continue consistently then, so it aborts (test code
 * only; a real network never runs on this link). */
static void
schedule(tp_mem_world *w, event *e, enum ev_type type, uint64_t t, void *obj)
{
    e->t = t;
    e->seq = w->next_seq++;
    e->type = type;
    e->obj = obj;
    if (heap_push(w, e) < 0)
        abort();
}

/* --- connections: references --- */

static void
conn_ref(mem_conn *c)
{
    c->refs++;
}

static void seg_free(seg *s);

static void
conn_unref(mem_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    if (c->peer && c->peer->peer == c)
        c->peer->peer = NULL;
    assert(!c->txq);
    while (c->rxq) {
        seg *s = c->rxq;
        c->rxq = s->next;
        seg_free(s);
    }
    free(c);
}

static void
seg_free(seg *s)
{
    mem_conn *src = s->src, *dst = s->dst;
    free(s);
    if (src)
        conn_unref(src);
    if (dst)
        conn_unref(dst);
}

static mem_conn *
to_conn(tp_conn *c)
{
    return container_of(c, mem_conn, base);
}

static const mem_conn *
to_cconn(const tp_conn *c)
{
    return container_of(c, const mem_conn, base);
}

/* --- sending --- */

static int
lost(mem_conn *c)
{
    if (c->p.loss_ppm == 0)
        return 0;
    return (splitmix64(&c->rng) >> 32) * 1000000ULL < (uint64_t)c->p.loss_ppm << 32;
}

/* Cuts the next segment (at most mtu bytes of the head request) into s. */
static size_t
cut(mem_req *q, uint8_t *out, size_t max)
{
    size_t n = 0;
    while (n < max && q->bi < q->nbufs) {
        const tp_buf *b = &q->bufs[q->bi];
        size_t take = b->len - q->boff;
        if (take > max - n)
            take = max - n;
        memcpy(out + n, (const uint8_t *)b->base + q->boff, take);
        n += take;
        q->boff += take;
        if (q->boff == b->len) {
            q->bi++;
            q->boff = 0;
        }
    }
    q->left -= n;
    return n;
}

static void
finish_req(mem_conn *c, uint64_t t, int status)
{
    mem_req *q = c->txq;
    c->txq = q->next;
    if (!c->txq)
        c->txq_tail = NULL;
    q->done.status = status;
    if (t > c->last_done)
        c->last_done = t;
    conn_ref(c);
    schedule(c->world, &q->done, EV_SEND_DONE, t, q);
}

/* Puts queued bytes on the wire while the wire is free and the window open. */
static void
pump(mem_conn *c)
{
    tp_mem_world *w = c->world;
    uint64_t now = world_now(w);
    if (c->base.closing)
        return;
    while (c->txq && c->wire_free <= now) {
        mem_req *q = c->txq;
        if (q->left == 0) {
            finish_req(c, now, 0);
            continue;
        }
        size_t len = q->left < c->p.mtu ? q->left : c->p.mtu;
        if (c->inflight + len > c->p.window)
            return; /* credit events call pump() again */
        seg *s = malloc(sizeof(*s) + len);
        if (!s)
            abort(); /* see schedule() */
        memset(s, 0, sizeof(*s));
        s->len = cut(q, s->data, len);
        uint64_t ser = c->p.bandwidth ? (uint64_t)len * 1000000000ULL / c->p.bandwidth : 0;
        uint64_t depart = (c->wire_free > now ? c->wire_free : now) + ser;
        c->wire_free = depart;
        uint64_t arrive = depart + c->p.lat_ns;
        for (int i = 0; i < TP_MEM_RETRIES_MAX && lost(c); i++) {
            arrive += c->p.rto_ns;
            w->stats.losses++;
        }
        if (arrive < c->last_arrival)
            arrive = c->last_arrival; /* in order: wait behind earlier segments */
        c->last_arrival = arrive;
        c->inflight += s->len;
        w->stats.segments++;
        s->src = c;
        s->dst = c->peer;
        conn_ref(c);
        if (s->dst)
            conn_ref(s->dst);
        schedule(w, &s->ev, EV_SEG, arrive, s);
        if (q->left == 0)
            finish_req(c, depart, 0);
    }
    if (c->txq && !c->pump_scheduled) {
        c->pump_scheduled = 1;
        conn_ref(c);
        schedule(w, &c->pump_ev, EV_PUMP, c->wire_free, c);
    }
}

static int
mem_send(tp_conn *base, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg)
{
    mem_conn *c = to_conn(base);
    mem_req *q = calloc(1, sizeof(*q) + nbufs * sizeof(tp_buf));
    if (!q)
        return -ENOMEM;
    q->conn = c;
    q->cb = cb;
    q->arg = arg;
    q->nbufs = nbufs;
    for (unsigned i = 0; i < nbufs; i++) {
        q->bufs[i] = bufs[i];
        q->total += bufs[i].len;
    }
    q->left = q->total;
    if (c->txq_tail)
        c->txq_tail->next = q;
    else
        c->txq = q;
    c->txq_tail = q;
    c->queued += q->total;
    pump(c);
    arm_timer(c->world);
    return 0;
}

/* --- receiving --- */

/* Window credit travels back to the sender like an ACK: one latency. */
static void
credit(mem_conn *src, size_t len)
{
    if (!src)
        return;
    event *e = malloc(sizeof(*e));
    if (!e)
        abort(); /* see schedule() */
    e->len = len;
    conn_ref(src);
    schedule(src->world, e, EV_CREDIT, world_now(src->world) + src->p.lat_ns, src);
}

/* Hands waiting segments to the reader while it reads. */
static void
drain(mem_conn *c)
{
    while (c->rxq && c->base.reading && !c->base.closing) {
        seg *s = c->rxq;
        c->rxq = s->next;
        if (!c->rxq)
            c->rxq_tail = NULL;
        if (s->fin) {
            seg_free(s);
            tp__conn_end(&c->base, 0);
            continue;
        }
        c->world->stats.bytes += s->len;
        credit(s->src, s->len);
        c->base.recv_cb(&c->base, s->data, s->len);
        seg_free(s);
    }
}

static void
drop_rx(mem_conn *c)
{
    while (c->rxq) {
        seg *s = c->rxq;
        c->rxq = s->next;
        if (!s->fin)
            credit(s->src, s->len);
        seg_free(s);
    }
    c->rxq_tail = NULL;
}

static int
mem_read_start(tp_conn *base)
{
    mem_conn *c = to_conn(base);
    if (c->rxq && !c->drain_scheduled) {
        /* Deliver from the loop, never from inside tp_read_start(). */
        c->drain_scheduled = 1;
        conn_ref(c);
        schedule(c->world, &c->drain_ev, EV_DRAIN, world_now(c->world), c);
        arm_timer(c->world);
    }
    return 0;
}

static void
mem_read_stop(tp_conn *base)
{
}

/* --- closing --- */

static void
mem_close(tp_conn *base, tp_close_cb cb)
{
    mem_conn *c = to_conn(base);
    tp_mem_world *w = c->world;
    uint64_t now = world_now(w);
    /* Cancelled sends complete after the ones already on the wire, in order. */
    uint64_t cancel_t = c->last_done > now ? c->last_done : now;
    while (c->txq)
        finish_req(c, cancel_t, -ECANCELED);
    drop_rx(c);
    if (c->peer) {
        /* FIN: in order behind what already left. */
        seg *s = calloc(1, sizeof(*s));
        if (!s)
            abort(); /* see schedule() */
        s->fin = 1;
        s->dst = c->peer;
        conn_ref(s->dst);
        uint64_t depart = c->wire_free > now ? c->wire_free : now;
        uint64_t arrive = depart + c->p.lat_ns;
        if (arrive < c->last_arrival)
            arrive = c->last_arrival;
        c->last_arrival = arrive;
        schedule(w, &s->ev, EV_SEG, arrive, s);
    }
    /* After every send completion (same time: scheduled later, runs later). */
    uint64_t t = c->last_done > now ? c->last_done : now;
    conn_ref(c);
    schedule(w, &c->close_ev, EV_CLOSE_DONE, t, c);
    arm_timer(w);
}

static void
close_done(mem_conn *c)
{
    if (!c->connect_reported) {
        c->connect_reported = 1;
        c->base.connect_cb(&c->base, -ECANCELED);
    }
    if (c->base.close_cb)
        c->base.close_cb(&c->base);
    tp__conn_release(&c->base);
    conn_unref(c); /* the user's reference */
}

/* --- dialling --- */

static int
valid_name(const char *s)
{
    size_t n = strnlen(s, TP_MEM_NAME_MAX);
    if (n == 0 || n >= TP_MEM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

static int
check_link(const struct tp_mem_link *l)
{
    if (l->latency_ms > TP_MEM_LATENCY_MS_MAX || l->loss_ppm > TP_MEM_LOSS_PPM_MAX)
        return -EINVAL;
    if (l->mtu && (l->mtu < TP_MEM_MTU_MIN || l->mtu > TP_MEM_MTU_MAX))
        return -EINVAL;
    size_t mtu = l->mtu ? l->mtu : TP_MEM_MTU;
    if (l->window && l->window < mtu)
        return -EINVAL;
    if (l->rto_ms > TP_MEM_LATENCY_MS_MAX)
        return -EINVAL;
    return 0;
}

static void
resolve_link(const tp_mem_world *w, const char *a, const char *b, link_params *ret)
{
    struct tp_mem_link l = w->defaults;
    for (const link_override *o = w->overrides; o; o = o->next)
        if ((!strcmp(o->a, a) && !strcmp(o->b, b)) || (!strcmp(o->a, b) && !strcmp(o->b, a))) {
            l = o->link;
            break;
        }
    ret->lat_ns = (uint64_t)l.latency_ms * NS_PER_MS;
    uint64_t rto_ms = l.rto_ms ? l.rto_ms : 3ULL * l.latency_ms;
    ret->rto_ns = (rto_ms ? rto_ms : 1) * NS_PER_MS;
    ret->bandwidth = l.bandwidth;
    ret->loss_ppm = l.loss_ppm;
    ret->mtu = l.mtu ? l.mtu : TP_MEM_MTU;
    ret->window = l.window ? l.window : TP_MEM_WINDOW;
}

static mem_listener *
find_endpoint(tp_mem_world *w, const char *name)
{
    for (mem_listener *l = w->endpoints; l; l = l->next)
        if (!strcmp(l->name, name))
            return l;
    return NULL;
}

static mem_conn *
conn_new(mem_node *node)
{
    mem_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    tp__conn_init(&c->base, &node->base);
    c->world = node->world;
    c->refs = 1;
    return c;
}

static int
mem_dial(tp_net *nbase, const char *addr, tp_connect_cb cb, tp_conn **ret)
{
    mem_node *node = container_of(nbase, mem_node, base);
    tp_mem_world *w = node->world;
    if (!valid_name(addr))
        return -EINVAL;
    mem_conn *c = conn_new(node);
    if (!c)
        return -ENOMEM;
    c->base.connect_cb = cb;
    uint32_t n = node->dials++;
    snprintf(c->local, sizeof(c->local), "%s/%u", node->name, (unsigned)n);
    snprintf(c->remote, sizeof(c->remote), "%s", addr);
    mem_listener *l = find_endpoint(w, addr);
    resolve_link(w, node->name, l ? l->node->name : addr, &c->p);
    uint64_t h = hash_str(w->seed, node->name) ^ ((uint64_t)n << 1);
    c->rng = splitmix64(&h);
    conn_ref(c);
    schedule(w, &c->syn_ev, EV_SYN, world_now(w) + c->p.lat_ns, c);
    arm_timer(w);
    *ret = &c->base;
    return 0;
}

/* The dial reached its endpoint: accept it there, answer after one latency. */
static void
syn_arrived(mem_conn *c)
{
    tp_mem_world *w = c->world;
    uint64_t now = w->now;
    if (c->base.closing)
        return;
    mem_listener *l = find_endpoint(w, c->remote);
    mem_conn *s = l && !l->base.closing ? conn_new(l->node) : NULL;
    c->connected_ev.status = s ? 0 : -ECONNREFUSED;
    conn_ref(c);
    schedule(w, &c->connected_ev, EV_CONNECTED, now + c->p.lat_ns, c);
    if (!s)
        return;
    s->p = c->p;
    uint64_t h = c->rng ^ 0x5bd1e995ULL;
    s->rng = splitmix64(&h);
    s->peer = c;
    c->peer = s;
    s->connect_reported = 1;
    s->base.connected = 1;
    snprintf(s->local, sizeof(s->local), "%s", l->name);
    snprintf(s->remote, sizeof(s->remote), "%s", c->local);
    w->stats.connections++;
    l->base.accept_cb(&l->base, &s->base, 0);
}

static void
connected(mem_conn *c, int status)
{
    if (c->base.closing || c->connect_reported)
        return;
    c->connect_reported = 1;
    if (status == 0)
        c->base.connected = 1;
    c->base.connect_cb(&c->base, status);
}

/* --- dispatch --- */

static void
dispatch(tp_mem_world *w, event *e)
{
    switch (e->type) {
    case EV_SEG: {
        seg *s = e->obj;
        mem_conn *dst = s->dst;
        if (!dst || dst->base.closing) {
            if (!s->fin)
                credit(s->src, s->len);
            seg_free(s);
            break;
        }
        if (dst->rxq_tail)
            dst->rxq_tail->next = s;
        else
            dst->rxq = s;
        dst->rxq_tail = s;
        drain(dst);
        break;
    }
    case EV_CREDIT: {
        mem_conn *c = e->obj;
        c->inflight -= e->len;
        free(e);
        pump(c);
        conn_unref(c);
        break;
    }
    case EV_PUMP: {
        mem_conn *c = e->obj;
        c->pump_scheduled = 0;
        pump(c);
        conn_unref(c);
        break;
    }
    case EV_DRAIN: {
        mem_conn *c = e->obj;
        c->drain_scheduled = 0;
        drain(c);
        conn_unref(c);
        break;
    }
    case EV_SEND_DONE: {
        mem_req *q = e->obj;
        mem_conn *c = q->conn;
        c->queued -= q->total;
        if (q->cb)
            q->cb(&c->base, q->arg, q->done.status);
        free(q);
        conn_unref(c);
        break;
    }
    case EV_SYN:
        syn_arrived(e->obj);
        conn_unref(e->obj);
        break;
    case EV_CONNECTED:
        connected(e->obj, e->status);
        conn_unref(e->obj);
        break;
    case EV_CLOSE_DONE: {
        mem_conn *c = e->obj;
        close_done(c);
        conn_unref(c);
        break;
    }
    case EV_LCLOSE: {
        mem_listener *l = e->obj;
        if (l->base.close_cb)
            l->base.close_cb(&l->base);
        tp__listener_release(&l->base);
        free(l);
        break;
    }
    case _EV_TYPE_MAX:
        abort();
    }
}

static void
on_timer(uv_timer_t *t)
{
    tp_mem_world *w = t->data;
    w->armed_ms = 0;
    uint64_t limit = uv_now(w->loop) * NS_PER_MS;
    w->dispatching = 1;
    for (int n = 0; n < EVENTS_PER_TICK && w->n_heap > 0 && w->heap[0]->t <= limit; n++) {
        event *e = heap_pop(w);
        if (e->t > w->now)
            w->now = e->t;
        dispatch(w, e);
    }
    w->dispatching = 0;
    arm_timer(w);
}

/* --- listeners --- */

static int
mem_listen(tp_net *nbase, const char *addr, tp_accept_cb cb, tp_listener **ret)
{
    mem_node *node = container_of(nbase, mem_node, base);
    if (!valid_name(addr))
        return -EINVAL;
    if (find_endpoint(node->world, addr))
        return -EADDRINUSE;
    mem_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    tp__listener_init(&l->base, nbase, cb);
    l->world = node->world;
    l->node = node;
    snprintf(l->name, sizeof(l->name), "%s", addr);
    l->next = node->world->endpoints;
    node->world->endpoints = l;
    *ret = &l->base;
    return 0;
}

static void
mem_listener_close(tp_listener *base, tp_listener_close_cb cb)
{
    mem_listener *l = container_of(base, mem_listener, base);
    tp_mem_world *w = l->world;
    for (mem_listener **p = &w->endpoints; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    schedule(w, &l->close_ev, EV_LCLOSE, world_now(w), l);
    arm_timer(w);
}

static const char *
mem_listener_addr(const tp_listener *base)
{
    return container_of(base, const mem_listener, base)->name;
}

/* --- small accessors --- */

static size_t
mem_queued(const tp_conn *base)
{
    return to_cconn(base)->queued;
}

static size_t
mem_mtu(const tp_conn *base)
{
    return to_cconn(base)->p.mtu;
}

static uint64_t
mem_bandwidth(const tp_conn *base)
{
    return to_cconn(base)->p.bandwidth;
}

static const char *
mem_local_addr(const tp_conn *base)
{
    const mem_conn *c = to_cconn(base);
    return c->base.connected ? c->local : "";
}

static const char *
mem_remote_addr(const tp_conn *base)
{
    const mem_conn *c = to_cconn(base);
    return c->base.connected ? c->remote : "";
}

/* --- nodes and the world --- */

static void
mem_net_free(tp_net *nbase)
{
    mem_node *node = container_of(nbase, mem_node, base);
    tp_mem_world *w = node->world;
    for (mem_node **p = &w->nodes; *p; p = &(*p)->next)
        if (*p == node) {
            *p = node->next;
            break;
        }
    free(node);
}

const struct tp_ops tp_mem_ops = {
    .version = TP_OPS_VERSION_1,
    .name = "mem",
    .listen = mem_listen,
    .listener_close = mem_listener_close,
    .listener_addr = mem_listener_addr,
    .dial = mem_dial,
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .send = mem_send,
    .close = mem_close,
    .queued = mem_queued,
    .mtu = mem_mtu,
    .bandwidth = mem_bandwidth,
    .local_addr = mem_local_addr,
    .remote_addr = mem_remote_addr,
    .net_free = mem_net_free,
};

int
tp_mem_net_new(tp_mem_world *w, const char *name, tp_net **ret)
{
    if (!w || !name || !ret || !valid_name(name))
        return -EINVAL;
    for (mem_node *n = w->nodes; n; n = n->next)
        if (!strcmp(n->name, name))
            return -EEXIST;
    mem_node *node = calloc(1, sizeof(*node));
    if (!node)
        return -ENOMEM;
    tp__net_init(&node->base, &tp_mem_ops, w->loop);
    node->world = w;
    snprintf(node->name, sizeof(node->name), "%s", name);
    node->next = w->nodes;
    w->nodes = node;
    *ret = &node->base;
    return 0;
}

int
tp_mem_world_new(uv_loop_t *loop, uint64_t seed, const struct tp_mem_link *defaults,
                 tp_mem_world **ret)
{
    struct tp_mem_link d = { 0 };
    if (!loop || !ret)
        return -EINVAL;
    if (defaults)
        d = *defaults;
    int r = check_link(&d);
    if (r < 0)
        return r;
    tp_mem_world *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->seed = seed;
    w->defaults = d;
    (void)uv_timer_init(loop, &w->timer); /* cannot fail on Unix */
    w->timer.data = w;
    *ret = w;
    return 0;
}

int
tp_mem_world_set_link(tp_mem_world *w, const char *a, const char *b, const struct tp_mem_link *link)
{
    if (!w || !a || !b || !link || !valid_name(a) || !valid_name(b))
        return -EINVAL;
    int r = check_link(link);
    if (r < 0)
        return r;
    for (link_override *o = w->overrides; o; o = o->next)
        if ((!strcmp(o->a, a) && !strcmp(o->b, b)) || (!strcmp(o->a, b) && !strcmp(o->b, a))) {
            o->link = *link;
            return 0;
        }
    link_override *o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    snprintf(o->a, sizeof(o->a), "%s", a);
    snprintf(o->b, sizeof(o->b), "%s", b);
    o->link = *link;
    o->next = w->overrides;
    w->overrides = o;
    return 0;
}

void
tp_mem_world_stats(const tp_mem_world *w, struct tp_mem_stats *ret)
{
    *ret = w->stats;
}

static void
on_world_closed(uv_handle_t *h)
{
    tp_mem_world *w = h->data;
    free(w);
}

/* Drops an event left over at world close: only references to release. */
static void
discard(event *e)
{
    switch (e->type) {
    case EV_SEG:
        seg_free(e->obj);
        break;
    case EV_CREDIT:
        conn_unref(e->obj);
        free(e);
        break;
    case EV_SEND_DONE: {
        mem_req *q = e->obj;
        mem_conn *c = q->conn;
        free(q);
        conn_unref(c);
        break;
    }
    case EV_LCLOSE:
        abort(); /* its node would still be open */
    default:
        conn_unref(e->obj);
        break;
    }
}

int
tp_mem_world_close(tp_mem_world *w)
{
    if (!w)
        return 0;
    if (w->nodes)
        return -EBUSY;
    event *e;
    while ((e = heap_pop(w)))
        discard(e);
    free(w->heap);
    while (w->overrides) {
        link_override *o = w->overrides;
        w->overrides = o->next;
        free(o);
    }
    uv_close((uv_handle_t *)&w->timer, on_world_closed);
    return 0;
}
