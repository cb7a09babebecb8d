/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_TCP_H
#define NVX_TP_TCP_H
/*
 * TCP links on libuv (IPv4 and IPv6).
 *
 * Address strings are strictly "A.B.C.D:PORT" or "[IPV6]:PORT" (an IPv6 zone
 * "%name" is accepted inside the brackets); PORT is decimal 0..65535 without
 * sign, spaces or leading zeros. Port 0 asks for an ephemeral port when
 * listening (tp_listener_addr() reports the bound one) and is rejected when
 * dialling.
 *
 * Dialling also takes "NAME:PORT" with a DNS host name (LDH labels, at most
 * 253 characters, last label not starting with a digit so that no numeric
 * spelling slips through getaddrinfo). The name is resolved on libuv's thread
 * pool and its addresses are tried in the order getaddrinfo returns them; the
 * dial timeout covers resolution and every attempt. Listening takes numeric
 * addresses only.
 *
 * Every connection gets TCP_NODELAY (frames are already batched above) and
 * keepalive. Reads go through one buffer per net of read_buf bytes, so memory
 * does not grow with the number of connections.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "transport/tp.h"

enum {
    TP_TCP_DIAL_TIMEOUT_MS = 10000, /* default dial timeout */
    TP_TCP_KEEPALIVE_S = 60,        /* default keepalive idle time */
    TP_TCP_READ_BUF = 256 * 1024,   /* default shared read buffer */
    TP_TCP_READ_BUF_MIN = 4096,
    TP_TCP_READ_BUF_MAX = 16 * 1024 * 1024,
    TP_TCP_MTU = 1024 * 1024, /* tp_conn_mtu() hint: a stream has no real MTU */
    TP_TCP_HOST_MAX = 254,    /* host name buffer, NUL included */
};

struct tp_tcp_opts {
    unsigned dial_timeout_ms; /* 0 = no timeout */
    unsigned keepalive_s;     /* 0 = keepalive off */
    size_t read_buf;          /* TP_TCP_READ_BUF_MIN..TP_TCP_READ_BUF_MAX */
};

#define TP_TCP_OPTS_INIT                                                              \
    {                                                                                 \
        .dial_timeout_ms = TP_TCP_DIAL_TIMEOUT_MS, .keepalive_s = TP_TCP_KEEPALIVE_S, \
        .read_buf = TP_TCP_READ_BUF                                                   \
    }

/* The TCP method table (version 1). */
extern const struct tp_ops tp_tcp_ops;

/* Creates a TCP net on loop. opts NULL = TP_TCP_OPTS_INIT; it is copied.
 * Free with tp_net_free() once its listeners and connections are closed.
 * Returns 0, -EINVAL (bad opts) or -ENOMEM. */
int tp_tcp_net_new(uv_loop_t *loop, const struct tp_tcp_opts *opts, tp_net **ret);

/* Parses an address string (format above) into *ret. allow_port0: whether
 * port 0 is acceptable (listening). Returns 0 or -EINVAL. */
int tp_tcp_addr_parse(const char *s, int allow_port0, struct sockaddr_storage *ret);

/* Splits "NAME:PORT" with a DNS host name (rules above; port 1..65535) into
 * host (NUL-terminated) and *ret_port. Numeric addresses are refused here
 * (tp_tcp_addr_parse takes them). Returns 0 or -EINVAL. */
int tp_tcp_hostport_parse(const char *s, char host[static TP_TCP_HOST_MAX], unsigned *ret_port);

/* Formats an AF_INET/AF_INET6 address as "A.B.C.D:P" / "[V6]:P" into buf
 * (TP_ADDR_MAX bytes). Returns 0, -EAFNOSUPPORT or -ENOSPC. */
int tp_tcp_addr_format(const struct sockaddr *sa, char buf[static TP_ADDR_MAX]);

#endif
