/* SPDX-License-Identifier: MIT */
/*
 * Fault-injecting wrapper around another link (transport/fault.h).
 *
 * Each wrapped connection keeps one FIFO of events that must reach its
 * owner from the loop (delayed bytes, the end of the stream, send outcomes
 * decided by a fault, the dial outcome) and one timer that drains it. With
 * no fault active nothing is queued and bytes pass straight through.
 */
#include "transport/fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"

struct fnet {
    tp_net base;
    tp_net *inner;
    tp_fault_rule rules[TP_FAULT_RULES_MAX];
    uint64_t seen[TP_FAULT_RULES_MAX]; /* matching operations so far */
    bool armed[TP_FAULT_RULES_MAX];
    struct fconn *conns; /* open ones, for tp_fault_inject */
    uint64_t count;
};

struct flistener {
    tp_listener base;
    tp_listener *inner;
};

/* A send the owner made: passed to the inner link, or held by a fault. */
struct fsend {
    struct fconn *fc;
    tp_send_cb cb;
    void *arg;
    size_t len;
    struct fsend *next; /* held (stalled) sends */
};

enum ev_type {
    EV_DATA,
    EV_END,
    EV_SEND_DONE,
    EV_CONNECT
};

struct fev {
    struct fev *next;
    uint64_t due;
    enum ev_type type;
    int status;
    struct fsend *send;
    size_t len;
    uint8_t data[];
};

struct fconn {
    tp_conn base;
    struct fconn *prev, *next; /* the net's open connections */
    tp_conn *inner;            /* NULL once the inner close finished (or never dialled) */
    bool inner_closing;
    char dial_addr[TP_ADDR_MAX];
    uv_timer_t timer;
    struct fev *head, *tail;
    struct fsend *held; /* stalled sends */
    size_t held_bytes;
    bool fail_send, err_send, err_recv, stalled, broken;
    bool eof; /* half-closed: the far side's bytes no longer count */
    uint32_t delay_ms, close_delay_ms;
    bool close_waited;
    bool finishing; /* timer closing: the owner's close callback comes next */
};

static const struct tp_ops fault_ops;

static struct fnet *
as_fnet(tp_net *net)
{
    return net && net->ops == &fault_ops ? (struct fnet *)net : NULL;
}

static uint64_t
now_ms(struct fconn *fc)
{
    return uv_now(fc->base.net->loop);
}

static void arm_timer(struct fconn *fc);

static struct fev *
ev_push(struct fconn *fc, enum ev_type type, int status, uint32_t delay, const uint8_t *data,
        size_t len)
{
    struct fev *e = calloc(1, sizeof(*e) + len);
    if (!e)
        abort(); /* test infrastructure: a lost event would be a silent wrong result */
    e->type = type;
    e->status = status;
    e->due = now_ms(fc) + delay;
    e->len = len;
    if (len)
        memcpy(e->data, data, len);
    if (fc->tail)
        fc->tail->next = e;
    else
        fc->head = e;
    fc->tail = e;
    arm_timer(fc);
    return e;
}

/* Drops queued bytes and ends (a reset, a stall, the owner's close); send
 * outcomes stay queued, they are owed to the owner. */
static void
drop_deliveries(struct fconn *fc)
{
    struct fev **pp = &fc->head;
    fc->tail = NULL;
    while (*pp) {
        struct fev *e = *pp;
        if (e->type == EV_DATA || e->type == EV_END) {
            *pp = e->next;
            free(e);
        } else {
            fc->tail = e;
            pp = &e->next;
        }
    }
}

static void
send_done(tp_conn *inner, void *arg, int status)
{
    (void)inner;
    struct fsend *s = arg;
    if (s->cb)
        s->cb(&s->fc->base, s->arg, status);
    free(s);
}

/* Queues the end of the stream and makes sends fail from now on. */
static void
break_stream(struct fconn *fc, int status)
{
    if (fc->broken)
        return;
    fc->broken = true;
    if (fc->inner && !fc->inner_closing)
        tp_read_stop(fc->inner);
    ev_push(fc, EV_END, status, 0, NULL, 0);
}

static void inner_closed(tp_conn *inner);

static void
close_inner(struct fconn *fc)
{
    if (fc->inner && !fc->inner_closing) {
        fc->inner_closing = true;
        tp_close(fc->inner, inner_closed);
    }
}

static void
apply(struct fconn *fc, enum tp_fault_kind kind, uint32_t delay_ms)
{
    struct fnet *fn = (struct fnet *)fc->base.net;
    fn->count++;
    switch (kind) {
    case TP_FAULT_SEND_FAIL:
        fc->fail_send = true;
        break;
    case TP_FAULT_SEND_ERROR:
        fc->err_send = true;
        break;
    case TP_FAULT_RECV_ERROR:
        fc->err_recv = true;
        break;
    case TP_FAULT_RESET:
        drop_deliveries(fc);
        fc->broken = false; /* a reset overrides an orderly end still queued */
        break_stream(fc, -ECONNRESET);
        close_inner(fc); /* the far side sees the link go */
        break;
    case TP_FAULT_HALF_CLOSE:
        if (fc->eof || fc->broken)
            break;
        fc->eof = true;
        if (fc->inner && !fc->inner_closing)
            tp_read_stop(fc->inner);
        ev_push(fc, EV_END, 0, fc->delay_ms, NULL, 0);
        break;
    case TP_FAULT_STALL:
        fc->stalled = true;
        drop_deliveries(fc);
        if (fc->inner && !fc->inner_closing)
            tp_read_stop(fc->inner);
        break;
    case TP_FAULT_DELAY:
        if (delay_ms > fc->delay_ms)
            fc->delay_ms = delay_ms; /* only grows: the FIFO stays in time order */
        break;
    case TP_FAULT_CLOSE_SLOW:
        fc->close_delay_ms = delay_ms;
        break;
    default:
        break;
    }
}

static bool
matches(const tp_fault_rule *r, const char *remote)
{
    return strncmp(remote, r->remote, strlen(r->remote)) == 0;
}

static const char *
conn_remote(const struct fconn *fc)
{
    const char *a = fc->inner ? tp_conn_remote_addr(fc->inner) : "";
    return a[0] ? a : fc->dial_addr;
}

/* Counts one operation of fc against the armed rules and applies those
 * that fire. CONNECT_FAIL is returned to the dial instead of applied. */
static bool
rules_at(struct fconn *fc, enum tp_fault_at at)
{
    struct fnet *fn = (struct fnet *)fc->base.net;
    bool refuse = false;
    for (unsigned i = 0; i < TP_FAULT_RULES_MAX; i++) {
        tp_fault_rule *r = &fn->rules[i];
        if (!fn->armed[i] || r->at != at || !matches(r, conn_remote(fc)))
            continue;
        if (fn->seen[i]++ < r->after)
            continue;
        fn->armed[i] = false;
        if (r->kind == TP_FAULT_CONNECT_FAIL) {
            fn->count++;
            refuse = true;
        } else {
            apply(fc, r->kind, r->delay_ms);
        }
    }
    return refuse;
}

/* ---- the event queue ------------------------------------------------------ */

static void finish_close(struct fconn *fc);

static void
on_timer(uv_timer_t *t)
{
    struct fconn *fc = container_of(t, struct fconn, timer);
    while (fc->head && fc->head->due <= now_ms(fc)) {
        struct fev *e = fc->head;
        if (e->type == EV_DATA && !fc->base.reading && !fc->base.closing)
            return; /* paused: read_start re-arms */
        fc->head = e->next;
        if (!fc->head)
            fc->tail = NULL;
        switch (e->type) {
        case EV_DATA:
            if (!fc->base.closing && !fc->base.ended)
                fc->base.recv_cb(&fc->base, e->data, e->len);
            break;
        case EV_END:
            tp__conn_end(&fc->base, e->status);
            break;
        case EV_SEND_DONE:
            send_done(NULL, e->send, e->status);
            break;
        case EV_CONNECT:
            if (e->status == 0 && !fc->base.closing)
                fc->base.connected = 1;
            fc->base.connect_cb(&fc->base, fc->base.closing ? -ECANCELED : e->status);
            break;
        }
        free(e);
    }
    arm_timer(fc);
    if (fc->base.closing)
        finish_close(fc);
}

static void
arm_timer(struct fconn *fc)
{
    if (fc->finishing || !fc->head)
        return;
    uint64_t now = now_ms(fc);
    uv_timer_start(&fc->timer, on_timer, fc->head->due > now ? fc->head->due - now : 0, 0);
}

/* ---- inner link callbacks ------------------------------------------------- */

static void
inner_recv(tp_conn *inner, const uint8_t *buf, size_t len)
{
    struct fconn *fc = tp_conn_data(inner);
    if (fc->base.closing || fc->broken || fc->eof)
        return;
    rules_at(fc, TP_FAULT_AT_RECV);
    if (fc->err_recv) {
        fc->err_recv = false;
        break_stream(fc, -EIO);
        return;
    }
    if (fc->stalled || fc->broken || fc->eof)
        return;
    if (fc->delay_ms || fc->head)
        ev_push(fc, EV_DATA, 0, fc->delay_ms, buf, len);
    else
        fc->base.recv_cb(&fc->base, buf, len);
}

static void
inner_end(tp_conn *inner, int status)
{
    struct fconn *fc = tp_conn_data(inner);
    if (fc->base.closing || fc->broken || fc->stalled || fc->eof)
        return;
    if (fc->delay_ms || fc->head)
        ev_push(fc, EV_END, status, fc->delay_ms, NULL, 0);
    else
        tp__conn_end(&fc->base, status);
}

static void
inner_connect(tp_conn *inner, int status)
{
    struct fconn *fc = tp_conn_data(inner);
    if (status == 0 && !fc->base.closing)
        fc->base.connected = 1;
    fc->base.connect_cb(&fc->base, fc->base.closing ? -ECANCELED : status);
}

static void
inner_closed(tp_conn *inner)
{
    struct fconn *fc = tp_conn_data(inner);
    fc->inner = NULL;
    if (fc->base.closing)
        finish_close(fc);
}

/* ---- connections ---------------------------------------------------------- */

static struct fconn *
fconn_new(struct fnet *fn)
{
    struct fconn *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return NULL;
    tp__conn_init(&fc->base, &fn->base);
    uv_timer_init(fn->base.loop, &fc->timer);
    fc->next = fn->conns;
    if (fn->conns)
        fn->conns->prev = fc;
    fn->conns = fc;
    return fc;
}

static void
fconn_unlink(struct fconn *fc)
{
    struct fnet *fn = (struct fnet *)fc->base.net;
    if (fc->prev)
        fc->prev->next = fc->next;
    else
        fn->conns = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    fc->prev = fc->next = NULL;
}

static void
timer_closed(uv_handle_t *h)
{
    struct fconn *fc = container_of((uv_timer_t *)h, struct fconn, timer);
    while (fc->head) {
        struct fev *e = fc->head;
        fc->head = e->next;
        free(e);
    }
    tp_close_cb cb = fc->base.close_cb;
    if (cb)
        cb(&fc->base);
    tp__conn_release(&fc->base);
    free(fc);
}

static void
slow_close_due(uv_timer_t *t)
{
    struct fconn *fc = container_of(t, struct fconn, timer);
    fc->close_waited = true;
    finish_close(fc);
}

/* Called whenever a closing connection may be done: every owed send
 * outcome delivered, the inner link closed, the slow-close wait over. */
static void
finish_close(struct fconn *fc)
{
    if (fc->finishing || fc->head || fc->inner)
        return;
    if (fc->close_delay_ms && !fc->close_waited) {
        uv_timer_start(&fc->timer, slow_close_due, fc->close_delay_ms, 0);
        return;
    }
    fc->finishing = true;
    uv_close((uv_handle_t *)&fc->timer, timer_closed);
}

static int
fault_read_start(tp_conn *c)
{
    struct fconn *fc = (struct fconn *)c;
    arm_timer(fc); /* bytes queued while paused */
    if (fc->stalled || fc->broken || fc->eof || !fc->inner || fc->inner_closing)
        return 0;
    return tp_read_start(fc->inner, inner_recv, inner_end);
}

static void
fault_read_stop(tp_conn *c)
{
    struct fconn *fc = (struct fconn *)c;
    if (fc->inner && !fc->inner_closing)
        tp_read_stop(fc->inner);
}

static int
fault_send(tp_conn *c, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg)
{
    struct fconn *fc = (struct fconn *)c;
    rules_at(fc, TP_FAULT_AT_SEND);
    if (fc->fail_send) {
        fc->fail_send = false;
        break_stream(fc, -EPIPE);
        return -EPIPE;
    }
    if (fc->broken || !fc->inner || fc->inner_closing)
        return -EPIPE;
    struct fsend *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    *s = (struct fsend){ .fc = fc, .cb = cb, .arg = arg };
    for (unsigned i = 0; i < nbufs; i++)
        s->len += bufs[i].len;
    if (fc->err_send) {
        fc->err_send = false;
        ev_push(fc, EV_SEND_DONE, -ECONNRESET, 0, NULL, 0)->send = s;
        break_stream(fc, -ECONNRESET);
        return 0;
    }
    if (fc->stalled) {
        s->next = fc->held;
        fc->held = s;
        fc->held_bytes += s->len;
        return 0;
    }
    int r = tp_send(fc->inner, bufs, nbufs, send_done, s);
    if (r < 0)
        free(s);
    return r;
}

static void
fault_close(tp_conn *c, tp_close_cb cb)
{
    (void)cb; /* tp.c keeps it in c->close_cb */
    struct fconn *fc = (struct fconn *)c;
    fconn_unlink(fc);
    rules_at(fc, TP_FAULT_AT_CLOSE);
    drop_deliveries(fc);
    /* Held sends are cancelled, newest last (their order does not matter to
     * the owner: each has its own callback). */
    while (fc->held) {
        struct fsend *s = fc->held;
        fc->held = s->next;
        ev_push(fc, EV_SEND_DONE, -ECANCELED, 0, NULL, 0)->send = s;
    }
    fc->held_bytes = 0;
    close_inner(fc);
    if (!fc->head)
        uv_timer_start(&fc->timer, on_timer, 0, 0); /* finish from the loop */
}

static size_t
fault_queued(const tp_conn *c)
{
    const struct fconn *fc = (const struct fconn *)c;
    return fc->held_bytes + (fc->inner && !fc->inner_closing ? tp_conn_queued(fc->inner) : 0);
}

static size_t
fault_mtu(const tp_conn *c)
{
    const struct fconn *fc = (const struct fconn *)c;
    return fc->inner ? tp_conn_mtu(fc->inner) : 65536;
}

static uint64_t
fault_bandwidth(const tp_conn *c)
{
    const struct fconn *fc = (const struct fconn *)c;
    return fc->inner ? tp_conn_bandwidth(fc->inner) : 0;
}

static const char *
fault_local_addr(const tp_conn *c)
{
    const struct fconn *fc = (const struct fconn *)c;
    return fc->inner ? tp_conn_local_addr(fc->inner) : "";
}

static const char *
fault_remote_addr(const tp_conn *c)
{
    const struct fconn *fc = (const struct fconn *)c;
    return fc->inner ? tp_conn_remote_addr(fc->inner) : "";
}

static int
fault_dial(tp_net *net, const char *addr, tp_connect_cb cb, tp_conn **ret)
{
    (void)cb; /* tp.c stores it once we return */
    struct fnet *fn = (struct fnet *)net;
    struct fconn *fc = fconn_new(fn);
    if (!fc)
        return -ENOMEM;
    size_t al = strlen(addr);
    memcpy(fc->dial_addr, addr, al < TP_ADDR_MAX ? al : TP_ADDR_MAX - 1);
    if (rules_at(fc, TP_FAULT_AT_DIAL)) {
        ev_push(fc, EV_CONNECT, -ECONNREFUSED, 0, NULL, 0);
        *ret = &fc->base;
        return 0;
    }
    int r = tp_dial(fn->inner, addr, inner_connect, fc, &fc->inner);
    if (r < 0) {
        /* Nothing was handed out: free it from the loop, no callback. */
        fc->inner = NULL;
        fconn_unlink(fc);
        fc->finishing = true;
        uv_close((uv_handle_t *)&fc->timer, timer_closed);
        return r;
    }
    *ret = &fc->base;
    return 0;
}

/* ---- listeners ------------------------------------------------------------ */

static void
inner_accept(tp_listener *il, tp_conn *inner, int status)
{
    struct flistener *fl = tp_listener_data(il);
    if (status < 0) {
        fl->base.accept_cb(&fl->base, NULL, status);
        return;
    }
    struct fconn *fc = fconn_new((struct fnet *)fl->base.net);
    if (!fc) {
        tp_close(inner, NULL);
        return;
    }
    fc->inner = inner;
    tp_conn_set_data(inner, fc);
    fc->base.connected = 1;
    fl->base.accept_cb(&fl->base, &fc->base, 0);
}

static int
fault_listen(tp_net *net, const char *addr, tp_accept_cb cb, tp_listener **ret)
{
    struct fnet *fn = (struct fnet *)net;
    struct flistener *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return -ENOMEM;
    int r = tp_listen(fn->inner, addr, inner_accept, fl, &fl->inner);
    if (r < 0) {
        free(fl);
        return r;
    }
    tp__listener_init(&fl->base, net, cb);
    *ret = &fl->base;
    return 0;
}

static void
inner_listener_closed(tp_listener *il)
{
    struct flistener *fl = tp_listener_data(il);
    if (fl->base.close_cb)
        fl->base.close_cb(&fl->base);
    tp__listener_release(&fl->base);
    free(fl);
}

static void
fault_listener_close(tp_listener *l, tp_listener_close_cb cb)
{
    (void)cb; /* kept in l->close_cb by tp.c */
    tp_listener_close(((struct flistener *)l)->inner, inner_listener_closed);
}

static const char *
fault_listener_addr(const tp_listener *l)
{
    return tp_listener_addr(((const struct flistener *)l)->inner);
}

static void
fault_net_free(tp_net *net)
{
    struct fnet *fn = (struct fnet *)net;
    tp_net_free(fn->inner);
    free(fn);
}

static const struct tp_ops fault_ops = {
    .version = TP_OPS_VERSION_1,
    .name = "fault",
    .listen = fault_listen,
    .listener_close = fault_listener_close,
    .listener_addr = fault_listener_addr,
    .dial = fault_dial,
    .read_start = fault_read_start,
    .read_stop = fault_read_stop,
    .send = fault_send,
    .close = fault_close,
    .queued = fault_queued,
    .mtu = fault_mtu,
    .bandwidth = fault_bandwidth,
    .local_addr = fault_local_addr,
    .remote_addr = fault_remote_addr,
    .net_free = fault_net_free,
};

/* ---- public --------------------------------------------------------------- */

int
tp_fault_net_new(tp_net *inner, tp_net **ret)
{
    if (!inner || !ret)
        return -EINVAL;
    struct fnet *fn = calloc(1, sizeof(*fn));
    if (!fn)
        return -ENOMEM;
    tp__net_init(&fn->base, &fault_ops, tp_net_loop(inner));
    fn->inner = inner;
    *ret = &fn->base;
    return 0;
}

static bool
kind_ok(enum tp_fault_kind kind, uint32_t delay_ms)
{
    return kind >= TP_FAULT_SEND_FAIL && kind < _TP_FAULT_KIND_MAX &&
           delay_ms <= TP_FAULT_DELAY_MAX_MS;
}

int
tp_fault_arm(tp_net *net, const tp_fault_rule *rule)
{
    struct fnet *fn = as_fnet(net);
    if (!fn || !rule || !kind_ok(rule->kind, rule->delay_ms) || rule->at < TP_FAULT_AT_SEND ||
        rule->at >= _TP_FAULT_AT_MAX || memchr(rule->remote, 0, TP_ADDR_MAX) == NULL ||
        (rule->kind == TP_FAULT_CONNECT_FAIL) != (rule->at == TP_FAULT_AT_DIAL))
        return -EINVAL;
    for (unsigned i = 0; i < TP_FAULT_RULES_MAX; i++) {
        if (fn->armed[i])
            continue;
        fn->rules[i] = *rule;
        fn->seen[i] = 0;
        fn->armed[i] = true;
        return 0;
    }
    return -ENOSPC;
}

void
tp_fault_disarm(tp_net *net)
{
    struct fnet *fn = as_fnet(net);
    if (fn)
        memset(fn->armed, 0, sizeof(fn->armed));
}

int
tp_fault_inject(tp_net *net, const char *remote, enum tp_fault_kind kind, uint32_t delay_ms)
{
    struct fnet *fn = as_fnet(net);
    if (!fn || !kind_ok(kind, delay_ms) || kind == TP_FAULT_CONNECT_FAIL)
        return -EINVAL;
    tp_fault_rule r = { .kind = kind };
    if (remote && strlen(remote) < TP_ADDR_MAX)
        memcpy(r.remote, remote, strlen(remote));
    int hit = 0;
    for (struct fconn *fc = fn->conns; fc; fc = fc->next) {
        if (!fc->base.connected || !matches(&r, conn_remote(fc)))
            continue;
        apply(fc, kind, delay_ms);
        hit++;
    }
    return hit;
}

uint64_t
tp_fault_count(const tp_net *net)
{
    const struct fnet *fn = net && net->ops == &fault_ops ? (const struct fnet *)net : NULL;
    return fn ? fn->count : 0;
}
