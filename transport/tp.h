/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_H
#define NVX_TP_H
/*
 * transport — pluggable reliable byte-stream links.
 *
 * Code above this header (proto sessions, the exchange, nvxd) talks to a link
 * only through the functions below; it never learns whether bytes travel over
 * TCP (transport/tcp.h) or through the in-memory simulated network
 * (transport/mem.h). Every implementation is a `const struct tp_ops` table plus
 * opaque state (transport/internal.h), in the manner of SQLite's versioned sqlite3_io_methods.
 *
 * Objects (libuv's handle/request model):
 *
 *   tp_net       one link implementation instance bound to one uv_loop_t
 *                (a TCP stack, or one node of a simulated network).
 *   tp_listener  accepts incoming connections on an address.
 *   tp_conn      one reliable, ordered, bidirectional byte stream.
 *
 * Threading: everything runs on the loop thread of the net's uv_loop_t. No
 * function may be called from another thread; callbacks run on the loop thread.
 *
 * Errors: every fallible function returns >= 0 on success or a negative errno
 * (libuv's codes are already -errno). A function that fails synchronously
 * never calls the callback it was given. Callbacks are never called from
 * inside the function that registered them; they run from the loop.
 *
 * Lifetimes: the transport allocates listeners and connections. They stay
 * valid until their close callback returns; owners that hang their own state on
 * them (tp_conn_set_data) free that state from the close callback, not before.
 * tp_close() must be called exactly once on every connection handed out —
 * including one whose dial failed — and tp_listener_close() on every listener.
 */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct tp_net tp_net;
typedef struct tp_listener tp_listener;
typedef struct tp_conn tp_conn;

enum {
    /* Longest address string, NUL included: "[v6%zone]:65535" fits. */
    TP_ADDR_MAX = 80,
    /* Most buffers one tp_send() takes (header + payload + tag is 3). */
    TP_SEND_BUFS_MAX = 16,
};

/* One piece of a send: borrowed bytes. */
typedef struct tp_buf {
    const void *base;
    size_t len;
} tp_buf;

/* A listener accepted `conn` (status 0); the callee now owns it: it sets its
 * data and starts reading, or closes it. status < 0: the listener failed and
 * conn is NULL; the listener still has to be closed. */
typedef void (*tp_accept_cb)(tp_listener *l, tp_conn *conn, int status);

/* A dial finished. status 0: connected, sends and reads may start. status < 0
 * (-ECONNREFUSED, also for an unknown simulated endpoint; -ETIMEDOUT,
 * -EHOSTUNREACH, ...; -ECANCELED when tp_close() came first): the connection
 * is dead; the caller still calls tp_close() (or already did). */
typedef void (*tp_connect_cb)(tp_conn *conn, int status);

/* Bytes arrived. buf is borrowed: valid only during the call. len > 0.
 * Calling tp_read_stop() or tp_close() from here is allowed. */
typedef void (*tp_recv_cb)(tp_conn *conn, const uint8_t *buf, size_t len);

/* The stream ended: status 0 when the peer closed it in order (every byte it
 * sent was delivered first), negative errno on a failure (-ECONNRESET,
 * -ETIMEDOUT, ...). No recv callback follows. Pending sends fail or finish on
 * their own; the connection is still to be closed with tp_close(). */
typedef void (*tp_end_cb)(tp_conn *conn, int status);

/* A send finished. status 0: every byte left this side (handed to the
 * kernel, or serialized onto the simulated wire) — delivery is then up to the
 * stream, as with TCP. status < 0: -ECANCELED when the connection was closed
 * first, or the link's error. From this call on the caller may reuse the
 * send's buffers. */
typedef void (*tp_send_cb)(tp_conn *conn, void *arg, int status);

/* The connection is closed; after this returns its memory is released. */
typedef void (*tp_close_cb)(tp_conn *conn);

/* The listener is closed; after this returns its memory is released. */
typedef void (*tp_listener_close_cb)(tp_listener *l);

/*
 * The method table every link implements.
 *
 * Version 1 holds every method below. A later version only appends members;
 * tp.c checks `version` before calling any member added after version 1, so a
 * version-1 table keeps working unchanged. All members are required.
 * Implementations may assume the generic checks in tp.c were done (non-NULL
 * arguments, nbufs in range, connection not closing).
 */
struct tp_ops {
    int version;      /* TP_OPS_VERSION_1 */
    const char *name; /* "tcp", "mem" */

    /* --- Methods above are valid for version 1. --- */
    int (*listen)(tp_net *net, const char *addr, tp_accept_cb cb, tp_listener **ret);
    void (*listener_close)(tp_listener *l, tp_listener_close_cb cb);
    const char *(*listener_addr)(const tp_listener *l);
    int (*dial)(tp_net *net, const char *addr, tp_connect_cb cb, tp_conn **ret);
    int (*read_start)(tp_conn *c);
    void (*read_stop)(tp_conn *c);
    int (*send)(tp_conn *c, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg);
    void (*close)(tp_conn *c, tp_close_cb cb);
    size_t (*queued)(const tp_conn *c);
    size_t (*mtu)(const tp_conn *c);
    uint64_t (*bandwidth)(const tp_conn *c);
    const char *(*local_addr)(const tp_conn *c);
    const char *(*remote_addr)(const tp_conn *c);
    void (*net_free)(tp_net *net);
};

#define TP_OPS_VERSION_1 1

/* --- nets --- */

/* The loop every object of this net runs on. */
uv_loop_t *tp_net_loop(const tp_net *net);

/* Name of the link implementation ("tcp", "mem"). */
const char *tp_net_kind(const tp_net *net);

/* Frees a net whose listeners and connections have all finished closing.
 * Returns -EBUSY (and frees nothing) while any is still open. NULL is a no-op.
 * A simulated node (tp_mem_net_new) is freed the same way. */
int tp_net_free(tp_net *net);

/* --- listeners --- */

/* Starts accepting on addr (format depends on the link: "HOST:PORT" for TCP,
 * port 0 = ephemeral; an endpoint name for mem). cb runs once per accepted
 * connection. data is stored for tp_listener_data(). On success writes the
 * listener to *ret. Errors: -EINVAL bad address, -EADDRINUSE, ... */
int tp_listen(tp_net *net, const char *addr, tp_accept_cb cb, void *data, tp_listener **ret);

/* Stops accepting and closes the listener; cb (may be NULL) runs from the
 * loop, then the listener is freed. Connections already accepted live on. */
void tp_listener_close(tp_listener *l, tp_listener_close_cb cb);

/* Address actually bound ("127.0.0.1:40123" after asking for port 0). The
 * string lives as long as the listener. */
const char *tp_listener_addr(const tp_listener *l);

void *tp_listener_data(const tp_listener *l);

/* --- connections --- */

/* Starts connecting to addr. cb runs once with the outcome. On success writes
 * the connection to *ret (it must be closed with tp_close() in any case).
 * Synchronous errors: -EINVAL bad address, -ENOMEM; the callback is then not
 * called and nothing needs closing. */
int tp_dial(tp_net *net, const char *addr, tp_connect_cb cb, void *data, tp_conn **ret);

/* The net a connection belongs to (the listener's net for accepted ones). */
tp_net *tp_conn_net(const tp_conn *c);

void tp_conn_set_data(tp_conn *c, void *data);
void *tp_conn_data(const tp_conn *c);

/* Starts (or, after tp_read_stop(), resumes) delivering bytes to recv_cb and
 * the end of the stream to end_cb (both required). Calling it again while
 * reading just replaces the callbacks. Returns -ENOTCONN before the dial
 * finished, -EPIPE after the end callback or tp_close(). */
int tp_read_start(tp_conn *c, tp_recv_cb recv_cb, tp_end_cb end_cb);

/* Pauses delivery (backpressure towards the peer: the peer's sends queue up
 * once the link's windows fill). Bytes arriving meanwhile are kept, bounded by
 * the link's receive window. No-op when not reading. */
void tp_read_stop(tp_conn *c);

/* Queues nbufs buffers (1..TP_SEND_BUFS_MAX) to be sent in order after every
 * earlier send. The bufs array itself is copied; the bytes it points to are
 * borrowed and must stay valid and unchanged until cb runs (cb may be NULL
 * when the caller guarantees that otherwise, e.g. static bytes). Returns 0 and
 * later calls cb exactly once, or fails synchronously with: -EINVAL (nbufs out
 * of range), -ENOTCONN (dial not finished), -EPIPE (closing, ended with an
 * error, or the peer reset), -ENOMEM. */
int tp_send(tp_conn *c, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg);

/* Bytes accepted by tp_send() that have not yet left this side (their send
 * callback has not run). The exchange keeps this below its in-flight budget
 * instead of queueing without bound. */
size_t tp_conn_queued(const tp_conn *c);

/* Preferred largest payload of one send: the exchange sizes REQUEST byte
 * ranges at or below it (a small-MTU link gets chunks in pieces). Always > 0. */
size_t tp_conn_mtu(const tp_conn *c);

/* Rough link bandwidth in bytes per second, 0 when unknown (TCP). A hint for
 * the initial request window, not a promise. */
uint64_t tp_conn_bandwidth(const tp_conn *c);

/* Local and remote address strings; "" until the dial finished. The strings
 * live as long as the connection. For an accepted TCP connection the remote
 * port is the peer's ephemeral port, not its listening port. */
const char *tp_conn_local_addr(const tp_conn *c);
const char *tp_conn_remote_addr(const tp_conn *c);

/* Closes the connection: reading stops, unsent queued sends complete with
 * -ECANCELED (a cancelled send may have had a prefix on the way already, as
 * with TCP), the peer sees the end of the stream after the bytes that had
 * already left. cb (may be NULL) runs
 * from the loop after every send callback; then the connection is freed.
 * Must be called exactly once per connection. */
void tp_close(tp_conn *c, tp_close_cb cb);

#endif
