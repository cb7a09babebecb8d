/* SPDX-License-Identifier: MIT */
#include "tpt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* --- echo server --- */

static void
echo_forget(struct tpt_echo *e, tp_conn *c)
{
    for (size_t i = 0; i < TPT_CONNS_MAX; i++)
        if (e->conns[i] == c)
            e->conns[i] = NULL;
}

static void
on_echo_closed(tp_conn *c)
{
    struct tpt_echo *e = tp_conn_data(c);
    e->closed++;
}

static void echo_recv(tp_conn *c, const uint8_t *buf, size_t len);
static void echo_end(tp_conn *c, int status);

static void
on_echo_sent(tp_conn *c, void *arg, int status)
{
    struct tpt_echo *e = tp_conn_data(c);
    free(arg);
    /* Resume once the queue drained to half: classic high/low watermarks. */
    if (status == 0 && tp_conn_queued(c) <= TPT_ECHO_HIGH / 2)
        (void)tp_read_start(c, echo_recv, echo_end);
    (void)e;
}

static void
echo_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct tpt_echo *e = tp_conn_data(c);
    uint8_t *copy = xmalloc(len);
    memcpy(copy, buf, len);
    tp_buf b = { copy, len };
    int r = tp_send(c, &b, 1, on_echo_sent, copy);
    assert_int_equal(r, 0);
    e->echoed += len;
    if (tp_conn_queued(c) > TPT_ECHO_HIGH) {
        e->pauses++;
        tp_read_stop(c);
    }
}

static void
echo_end(tp_conn *c, int status)
{
    struct tpt_echo *e = tp_conn_data(c);
    e->ended++;
    e->last_end = status;
    echo_forget(e, c);
    tp_close(c, on_echo_closed);
}

static void
on_echo_accept(tp_listener *l, tp_conn *c, int status)
{
    struct tpt_echo *e = tp_listener_data(l);
    assert_int_equal(status, 0);
    assert_non_null(c);
    e->accepted++;
    tp_conn_set_data(c, e);
    for (size_t i = 0; i < TPT_CONNS_MAX; i++)
        if (!e->conns[i]) {
            e->conns[i] = c;
            break;
        }
    assert_int_equal(tp_read_start(c, echo_recv, echo_end), 0);
}

int
tpt_echo_listen(tp_net *net, const char *addr, struct tpt_echo *e)
{
    memset(e, 0, sizeof(*e));
    return tp_listen(net, addr, on_echo_accept, e, &e->l);
}

static void
on_echo_listener_closed(tp_listener *l)
{
    struct tpt_echo *e = tp_listener_data(l);
    e->listener_closed = 1;
}

void
tpt_echo_shutdown(struct tpt_echo *e)
{
    if (e->l) {
        tp_listener_close(e->l, on_echo_listener_closed);
        e->l = NULL;
    }
    for (size_t i = 0; i < TPT_CONNS_MAX; i++)
        if (e->conns[i]) {
            tp_close(e->conns[i], on_echo_closed);
            e->conns[i] = NULL;
        }
}

/* --- client --- */

static void
client_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct tpt_client *cl = tp_conn_data(c);
    if (cl->rx_len == 0)
        cl->first_rx_ms = uv_now(tp_net_loop(tp_conn_net(c)));
    if (cl->rx_cap - cl->rx_len < len) {
        size_t cap = cl->rx_cap ? cl->rx_cap : 4096;
        while (cap - cl->rx_len < len)
            cap *= 2;
        cl->rx = realloc(cl->rx, cap);
        if (!cl->rx)
            abort();
        cl->rx_cap = cap;
    }
    memcpy(cl->rx + cl->rx_len, buf, len);
    cl->rx_len += len;
    if (cl->close_at && cl->rx_len >= cl->close_at)
        tpt_client_close(cl);
}

static void
client_end(tp_conn *c, int status)
{
    struct tpt_client *cl = tp_conn_data(c);
    cl->ended = 1;
    cl->end_status = status;
}

static void
client_connected(tp_conn *c, int status)
{
    struct tpt_client *cl = tp_conn_data(c);
    cl->connect_status = status;
    cl->connect_ms = uv_now(tp_net_loop(tp_conn_net(c)));
    if (status == 0)
        assert_int_equal(tp_read_start(c, client_recv, client_end), 0);
}

int
tpt_client_dial(tp_net *net, const char *addr, struct tpt_client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->connect_status = 1;
    return tp_dial(net, addr, client_connected, cl, &cl->c);
}

static void
client_sent(tp_conn *c, void *arg, int status)
{
    struct tpt_client *cl = tp_conn_data(c);
    cl->last_send_status = status;
    if (status == 0)
        cl->sends_ok++;
    else
        cl->sends_failed++;
}

int
tpt_client_send(struct tpt_client *cl, const uint8_t *buf, size_t len, unsigned nbufs)
{
    tp_buf b[3];
    if (nbufs < 1 || nbufs > 3 || len < nbufs)
        nbufs = 1;
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t n = i + 1 == nbufs ? len - off : len / nbufs;
        b[i] = (tp_buf){ buf + off, n };
        off += n;
    }
    return tp_send(cl->c, b, nbufs, client_sent, NULL);
}

static void
client_closed(tp_conn *c)
{
    struct tpt_client *cl = tp_conn_data(c);
    cl->closed = 1;
}

void
tpt_client_close(struct tpt_client *cl)
{
    if (cl->c) {
        tp_close(cl->c, client_closed);
        cl->c = NULL;
    }
}

void
tpt_client_free(struct tpt_client *cl)
{
    free(cl->rx);
    cl->rx = NULL;
}

/* --- loops --- */

void
tpt_loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}
