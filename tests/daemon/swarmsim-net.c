/* SPDX-License-Identifier: MIT */
/* The simulated network: events, sessions, capped uplinks (swarmsim.h). */
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

uint64_t
rnd(sim *s, uint64_t n)
{
    return n ? nvx_splitmix64(&s->rng) % n : 0;
}

bool
bit(const uint8_t *b, uint32_t i)
{
    return (b[i / 8] >> (i % 8)) & 1;
}

void
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

bool
ev_less(const sev *a, const sev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

sev *
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

sev *
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

void
msg_free(smsg *m)
{
    if (m) {
        free(m->ranges);
        free(m);
    }
}

void
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

snode *
peer_of(send_ *e)
{
    return e->l->n[1 - e->side];
}

/* Queues m on n's uplink towards the other end of e. */
void
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

uint32_t
msg_size(const smsg *m)
{
    return SIM_HEADER + m->len + (uint32_t)m->n_ranges * 8 +
           (m->kind == PROTO_CHUNKSET_BITMAP ? SIM_CHUNKS / 8 : 0);
}

/* The uplink is free: send the next message, sessions taking turns. */
void
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

void
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

void
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
void
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
    e->n_rq = 0;
    nvx_recip_peer_remove(n->rc, e->rp);
    e->rp = NULL;
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

void
peer_up(snode *n, send_ *e)
{
    if (!n->x)
        return;
    nvx_xfer_peer_info pi = { .addr = "sim", .piece = SIM_PIECE };
    pi.id[0] = (uint8_t)peer_of(e)->idx;
    pi.id[1] = (uint8_t)(peer_of(e)->idx >> 8);
    nvx_xfer_peer_up(n->x, e, &pi);
}

bool
linked(snode *a, snode *b)
{
    for (size_t k = 0; k < a->n_ends; k++)
        if (peer_of(a->ends[k]) == b)
            return true;
    return false;
}

void
ends_add(snode *n, send_ *e)
{
    if (n->n_ends == n->cap_ends) {
        n->cap_ends = n->cap_ends ? n->cap_ends * 2 : 16;
        n->ends = realloc(n->ends, n->cap_ends * sizeof(*n->ends));
        assert_non_null(n->ends);
    }
    n->ends[n->n_ends++] = e;
}

void
connect_nodes(sim *s, snode *a, snode *b)
{
    if (!a->alive || !b->alive || a == b || linked(a, b) ||
        (s->partitioned && s->cut[a->idx] != s->cut[b->idx]) || bit(a->banned, (uint32_t)b->idx) ||
        bit(b->banned, (uint32_t)a->idx))
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

void
connect_all(sim *s, snode *n)
{
    for (size_t k = 0; k < n->n_nbrs; k++)
        connect_nodes(s, n, &s->nodes[n->nbrs[k]]);
}
