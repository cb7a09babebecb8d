/* SPDX-License-Identifier: MIT */
/*
 * Link-independent entry points: argument checks and state that every link
 * shares, then a call through the link's tp_ops table.
 */
#include <assert.h>
#include <errno.h>

#include "transport/internal.h"

void
tp__net_init(tp_net *net, const struct tp_ops *ops, uv_loop_t *loop)
{
    net->ops = ops;
    net->loop = loop;
    net->n_objects = 0;
}

void
tp__listener_init(tp_listener *l, tp_net *net, tp_accept_cb cb)
{
    *l = (tp_listener){ .ops = net->ops, .net = net, .accept_cb = cb };
    net->n_objects++;
}

void
tp__conn_init(tp_conn *c, tp_net *net)
{
    *c = (tp_conn){ .ops = net->ops, .net = net };
    net->n_objects++;
}

void
tp__listener_release(tp_listener *l)
{
    assert(l->net->n_objects > 0);
    l->net->n_objects--;
}

void
tp__conn_release(tp_conn *c)
{
    assert(c->net->n_objects > 0);
    c->net->n_objects--;
}

void
tp__conn_end(tp_conn *c, int status)
{
    if (c->ended)
        return;
    c->ended = 1;
    c->end_status = status;
    c->reading = 0;
    if (c->end_cb && !c->closing)
        c->end_cb(c, status);
}

uv_loop_t *
tp_net_loop(const tp_net *net)
{
    return net->loop;
}

const char *
tp_net_kind(const tp_net *net)
{
    return net->ops->name;
}

int
tp_net_free(tp_net *net)
{
    if (!net)
        return 0;
    if (net->n_objects > 0)
        return -EBUSY;
    net->ops->net_free(net);
    return 0;
}

int
tp_listen(tp_net *net, const char *addr, tp_accept_cb cb, void *data, tp_listener **ret)
{
    if (!net || !addr || !cb || !ret)
        return -EINVAL;
    tp_listener *l = NULL;
    int r = net->ops->listen(net, addr, cb, &l);
    if (r < 0)
        return r;
    l->data = data;
    *ret = l;
    return 0;
}

void
tp_listener_close(tp_listener *l, tp_listener_close_cb cb)
{
    assert(!l->closing);
    l->closing = 1;
    l->close_cb = cb;
    l->ops->listener_close(l, cb);
}

const char *
tp_listener_addr(const tp_listener *l)
{
    return l->ops->listener_addr(l);
}

void *
tp_listener_data(const tp_listener *l)
{
    return l->data;
}

int
tp_dial(tp_net *net, const char *addr, tp_connect_cb cb, void *data, tp_conn **ret)
{
    if (!net || !addr || !cb || !ret)
        return -EINVAL;
    tp_conn *c = NULL;
    int r = net->ops->dial(net, addr, cb, &c);
    if (r < 0)
        return r;
    c->data = data;
    c->connect_cb = cb;
    *ret = c;
    return 0;
}

tp_net *
tp_conn_net(const tp_conn *c)
{
    return c->net;
}

void
tp_conn_set_data(tp_conn *c, void *data)
{
    c->data = data;
}

void *
tp_conn_data(const tp_conn *c)
{
    return c->data;
}

int
tp_read_start(tp_conn *c, tp_recv_cb recv_cb, tp_end_cb end_cb)
{
    if (!recv_cb || !end_cb)
        return -EINVAL;
    if (c->closing || c->ended)
        return -EPIPE;
    if (!c->connected)
        return -ENOTCONN;
    c->recv_cb = recv_cb;
    c->end_cb = end_cb;
    if (c->reading)
        return 0;
    int r = c->ops->read_start(c);
    if (r < 0)
        return r;
    c->reading = 1;
    return 0;
}

void
tp_read_stop(tp_conn *c)
{
    if (!c->reading || c->closing)
        return;
    c->reading = 0;
    c->ops->read_stop(c);
}

int
tp_send(tp_conn *c, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg)
{
    if (!bufs || nbufs == 0 || nbufs > TP_SEND_BUFS_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < nbufs; i++)
        if (!bufs[i].base && bufs[i].len > 0)
            return -EINVAL;
    if (c->closing || (c->ended && c->end_status < 0))
        return -EPIPE;
    if (!c->connected)
        return -ENOTCONN;
    return c->ops->send(c, bufs, nbufs, cb, arg);
}

size_t
tp_conn_queued(const tp_conn *c)
{
    return c->ops->queued(c);
}

size_t
tp_conn_mtu(const tp_conn *c)
{
    return c->ops->mtu(c);
}

uint64_t
tp_conn_bandwidth(const tp_conn *c)
{
    return c->ops->bandwidth(c);
}

const char *
tp_conn_local_addr(const tp_conn *c)
{
    return c->ops->local_addr(c);
}

const char *
tp_conn_remote_addr(const tp_conn *c)
{
    return c->ops->remote_addr(c);
}

void
tp_close(tp_conn *c, tp_close_cb cb)
{
    assert(!c->closing);
    c->closing = 1;
    c->close_cb = cb;
    c->reading = 0;
    c->ops->close(c, cb);
}
