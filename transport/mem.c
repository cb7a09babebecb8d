/* SPDX-License-Identifier: MIT */
/*
 * In-memory links: the tp_ops adapter (listen, dial, send, read, close and
 * the accessors) over the simulated network of mem-sim.c, which also
 * describes how the simulation runs and how connections are reference
 * counted. Node creation (tp_mem_net_new) lives here because a node is the
 * tp_net the ops table is bound to.
 */
#include "transport/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mem-internal.h"

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
    tp__mem_pump(c);
    tp__mem_arm_timer(c->world);
    return 0;
}

static int
mem_read_start(tp_conn *base)
{
    mem_conn *c = to_conn(base);
    if (c->rxq && !c->drain_scheduled) {
        /* Deliver from the loop, never from inside tp_read_start(). */
        c->drain_scheduled = 1;
        tp__mem_conn_ref(c);
        tp__mem_schedule(c->world, &c->drain_ev, EV_DRAIN, tp__mem_now(c->world), c);
        tp__mem_arm_timer(c->world);
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
    uint64_t now = tp__mem_now(w);
    /* Cancelled sends complete after the ones already on the wire, in order. */
    uint64_t cancel_t = c->last_done > now ? c->last_done : now;
    while (c->txq)
        tp__mem_finish_req(c, cancel_t, -ECANCELED);
    tp__mem_drop_rx(c);
    if (c->peer) {
        /* FIN: in order behind what already left. */
        seg *s = calloc(1, sizeof(*s));
        if (!s)
            abort(); /* see tp__mem_schedule() */
        s->fin = 1;
        s->dst = c->peer;
        tp__mem_conn_ref(s->dst);
        uint64_t depart = c->wire_free > now ? c->wire_free : now;
        uint64_t arrive = depart + c->p.lat_ns;
        if (arrive < c->last_arrival)
            arrive = c->last_arrival;
        c->last_arrival = arrive;
        tp__mem_schedule(w, &s->ev, EV_SEG, arrive, s);
    }
    /* After every send completion (same time: scheduled later, runs later). */
    uint64_t t = c->last_done > now ? c->last_done : now;
    tp__mem_conn_ref(c);
    tp__mem_schedule(w, &c->close_ev, EV_CLOSE_DONE, t, c);
    tp__mem_arm_timer(w);
}

static int
mem_dial(tp_net *nbase, const char *addr, tp_connect_cb cb, tp_conn **ret)
{
    mem_node *node = container_of(nbase, mem_node, base);
    tp_mem_world *w = node->world;
    if (!tp__mem_valid_name(addr))
        return -EINVAL;
    mem_conn *c = tp__mem_conn_new(node);
    if (!c)
        return -ENOMEM;
    c->base.connect_cb = cb;
    uint32_t n = node->dials++;
    snprintf(c->local, sizeof(c->local), "%s/%u", node->name, (unsigned)n);
    snprintf(c->remote, sizeof(c->remote), "%s", addr);
    mem_listener *l = tp__mem_find_endpoint(w, addr);
    tp__mem_resolve_link(w, node->name, l ? l->node->name : addr, &c->p);
    uint64_t h = hash_str(w->seed, node->name) ^ ((uint64_t)n << 1);
    c->rng = splitmix64(&h);
    tp__mem_conn_ref(c);
    tp__mem_schedule(w, &c->syn_ev, EV_SYN, tp__mem_now(w) + c->p.lat_ns, c);
    tp__mem_arm_timer(w);
    *ret = &c->base;
    return 0;
}

/* The dial reached its endpoint: accept it there, answer after one latency. */
/* --- listeners --- */

static int
mem_listen(tp_net *nbase, const char *addr, tp_accept_cb cb, tp_listener **ret)
{
    mem_node *node = container_of(nbase, mem_node, base);
    if (!tp__mem_valid_name(addr))
        return -EINVAL;
    if (tp__mem_find_endpoint(node->world, addr))
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
    tp__mem_schedule(w, &l->close_ev, EV_LCLOSE, tp__mem_now(w), l);
    tp__mem_arm_timer(w);
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
    if (!w || !name || !ret || !tp__mem_valid_name(name))
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
