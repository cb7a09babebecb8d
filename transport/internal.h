/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_INTERNAL_H
#define NVX_TP_INTERNAL_H
/*
 * For link implementations only (tcp.c, mem.c, a later serial.c): the base
 * objects they embed as their first member, and the bookkeeping helpers of
 * tp.c. Callers of the transport use transport/tp.h.
 */
#include <stddef.h>

#include "transport/tp.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
/* TCP only: dials each of n numeric addresses in turn (the next after a
 * failure) until one connects, as a resolved host name is dialled. For tests
 * of that path and for callers that know several addresses of one peer.
 * Same contract as tp_dial(). */
struct sockaddr_storage;
int tp__tcp_dial_list(tp_net *net, const struct sockaddr_storage *addrs, size_t n, tp_connect_cb cb,
                      void *data, tp_conn **ret);

#endif

/*
 * Base objects. They are public only so that implementations can embed them
 * as their first member (like sqlite3_file); callers treat them as opaque and
 * use the functions below.
 */
struct tp_net {
    const struct tp_ops *ops;
    uv_loop_t *loop;
    unsigned n_objects; /* open listeners + connections, for tp_net_free() */
};

struct tp_listener {
    const struct tp_ops *ops;
    tp_net *net;
    void *data;
    tp_accept_cb accept_cb;
    tp_listener_close_cb close_cb;
    int closing;
};

struct tp_conn {
    const struct tp_ops *ops;
    tp_net *net;
    void *data;
    tp_connect_cb connect_cb;
    tp_recv_cb recv_cb;
    tp_end_cb end_cb;
    tp_close_cb close_cb;
    int connected; /* dial succeeded, or accepted */
    int closing;   /* tp_close() was called */
    int ended;     /* end of stream delivered (end_status holds why) */
    int end_status;
    int reading; /* between tp_read_start() and tp_read_stop() */
};

/* --- for implementations (not callers) --- */

/* Initialisers for the embedded base objects. */
void tp__net_init(tp_net *net, const struct tp_ops *ops, uv_loop_t *loop);
void tp__listener_init(tp_listener *l, tp_net *net, tp_accept_cb cb);
void tp__conn_init(tp_conn *c, tp_net *net);

/* Bookkeeping called by implementations just before freeing an object. */
void tp__listener_release(tp_listener *l);
void tp__conn_release(tp_conn *c);

/* Marks the stream ended and calls the end callback, once (later calls are
 * ignored). Reading stops; the implementation stops its own reads first. */
void tp__conn_end(tp_conn *c, int status);

/* TCP only: dials each of n numeric addresses in turn (the next after a
 * failure) until one connects, as a resolved host name is dialled. For tests
 * of that path and for callers that know several addresses of one peer.
 * Same contract as tp_dial(). */
struct sockaddr_storage;
int tp__tcp_dial_list(tp_net *net, const struct sockaddr_storage *addrs, size_t n, tp_connect_cb cb,
                      void *data, tp_conn **ret);

#endif
