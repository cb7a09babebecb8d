/* SPDX-License-Identifier: MIT */
/*
 * In-memory links: a discrete-event simulation of a network on one uv_timer_t.
 * The model is described in mem.h; here is how it runs. The tp_ops adapter
 * that callers reach through tp.h is in mem.c.
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
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "transport/mem-internal.h"

enum {
    EVENTS_PER_TICK = 4096, /* then yield to the loop's other handles */
    NS_PER_MS = 1000000,
};

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
uint64_t
tp__mem_now(tp_mem_world *w)
{
    if (!w->dispatching) {
        uint64_t loop_ns = uv_now(w->loop) * NS_PER_MS;
        if (loop_ns > w->now)
            w->now = loop_ns;
    }
    return w->now;
}

static void on_timer(uv_timer_t *t);

void
tp__mem_arm_timer(tp_mem_world *w)
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
void
tp__mem_schedule(tp_mem_world *w, event *e, enum ev_type type, uint64_t t, void *obj)
{
    e->t = t;
    e->seq = w->next_seq++;
    e->type = type;
    e->obj = obj;
    if (heap_push(w, e) < 0)
        abort();
}
/* --- connections: references --- */

void
tp__mem_conn_ref(mem_conn *c)
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

void
tp__mem_finish_req(mem_conn *c, uint64_t t, int status)
{
    mem_req *q = c->txq;
    c->txq = q->next;
    if (!c->txq)
        c->txq_tail = NULL;
    q->done.status = status;
    if (t > c->last_done)
        c->last_done = t;
    tp__mem_conn_ref(c);
    tp__mem_schedule(c->world, &q->done, EV_SEND_DONE, t, q);
}

/* Puts queued bytes on the wire while the wire is free and the window open. */
void
tp__mem_pump(mem_conn *c)
{
    tp_mem_world *w = c->world;
    uint64_t now = tp__mem_now(w);
    if (c->base.closing)
        return;
    while (c->txq && c->wire_free <= now) {
        mem_req *q = c->txq;
        if (q->left == 0) {
            tp__mem_finish_req(c, now, 0);
            continue;
        }
        size_t len = q->left < c->p.mtu ? q->left : c->p.mtu;
        if (c->inflight + len > c->p.window)
            return; /* credit events call tp__mem_pump() again */
        seg *s = malloc(sizeof(*s) + len);
        if (!s)
            abort(); /* see tp__mem_schedule() */
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
        tp__mem_conn_ref(c);
        if (s->dst)
            tp__mem_conn_ref(s->dst);
        tp__mem_schedule(w, &s->ev, EV_SEG, arrive, s);
        if (q->left == 0)
            tp__mem_finish_req(c, depart, 0);
    }
    if (c->txq && !c->pump_scheduled) {
        c->pump_scheduled = 1;
        tp__mem_conn_ref(c);
        tp__mem_schedule(w, &c->pump_ev, EV_PUMP, c->wire_free, c);
    }
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
        abort(); /* see tp__mem_schedule() */
    e->len = len;
    tp__mem_conn_ref(src);
    tp__mem_schedule(src->world, e, EV_CREDIT, tp__mem_now(src->world) + src->p.lat_ns, src);
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

void
tp__mem_drop_rx(mem_conn *c)
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

int
tp__mem_valid_name(const char *s)
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

void
tp__mem_resolve_link(const tp_mem_world *w, const char *a, const char *b, link_params *ret)
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

mem_listener *
tp__mem_find_endpoint(tp_mem_world *w, const char *name)
{
    for (mem_listener *l = w->endpoints; l; l = l->next)
        if (!strcmp(l->name, name))
            return l;
    return NULL;
}

mem_conn *
tp__mem_conn_new(mem_node *node)
{
    mem_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    tp__conn_init(&c->base, &node->base);
    c->world = node->world;
    c->refs = 1;
    return c;
}
static void
syn_arrived(mem_conn *c)
{
    tp_mem_world *w = c->world;
    uint64_t now = w->now;
    if (c->base.closing)
        return;
    mem_listener *l = tp__mem_find_endpoint(w, c->remote);
    mem_conn *s = l && !l->base.closing ? tp__mem_conn_new(l->node) : NULL;
    c->connected_ev.status = s ? 0 : -ECONNREFUSED;
    tp__mem_conn_ref(c);
    tp__mem_schedule(w, &c->connected_ev, EV_CONNECTED, now + c->p.lat_ns, c);
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
        tp__mem_pump(c);
        conn_unref(c);
        break;
    }
    case EV_PUMP: {
        mem_conn *c = e->obj;
        c->pump_scheduled = 0;
        tp__mem_pump(c);
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
    tp__mem_arm_timer(w);
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
    if (!w || !a || !b || !link || !tp__mem_valid_name(a) || !tp__mem_valid_name(b))
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
