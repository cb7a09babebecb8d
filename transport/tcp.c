/* SPDX-License-Identifier: MIT */
/*
 * TCP links on libuv. Each listener and connection embeds its uv_tcp_t and is
 * recovered with container_of; memory is released only from libuv's close
 * callbacks, after every write callback has run (libuv cancels queued writes
 * with UV_ECANCELED before it reports a handle closed).
 */
#include "transport/tcp.h"

#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "transport/internal.h"

enum {
    LISTEN_BACKLOG = 128,
    PORT_DIGITS_MAX = 5,
    HOST_NAME_MAX_LEN = 253, /* DNS name, dots included */
    HOST_LABEL_MAX = 63,
};

typedef struct tcp_net {
    tp_net base;
    struct tp_tcp_opts opts;
    uint8_t *rbuf; /* shared read buffer, opts.read_buf bytes */
    int rbuf_busy; /* handed to libuv, read callback not yet returned */
} tcp_net;

typedef struct tcp_listener {
    tp_listener base;
    uv_tcp_t tcp;
    char addr[TP_ADDR_MAX];
} tcp_listener;

typedef struct tcp_conn {
    tp_conn base;
    uv_tcp_t tcp;
    uv_timer_t timer; /* dial timeout */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;   /* host-name dials: resolution */
    struct addrinfo *ai;    /* resolved addresses (freed with the conn) */
    int ai_own;             /* ai is one malloc block (tp__tcp_dial_list) */
    struct addrinfo *ai_at; /* next address to try */
    int resolving;          /* gai outstanding */
    int recycling;          /* tcp handle closing between two attempts */
    int last_err;           /* error of the latest failed attempt */
    int has_timer;
    int connect_reported; /* the connect callback ran (or must not run) */
    int handles_open;     /* handles and requests libuv still holds */
    size_t queued;        /* bytes of sends whose callback has not run */
    char local[TP_ADDR_MAX];
    char remote[TP_ADDR_MAX];
} tcp_conn;

typedef struct send_req {
    uv_write_t req;
    tcp_conn *conn;
    tp_send_cb cb;
    void *arg;
    size_t len;
    uv_buf_t bufs[TP_SEND_BUFS_MAX];
} send_req;

static tcp_net *
to_net(tp_net *n)
{
    return container_of(n, tcp_net, base);
}

static tcp_conn *
to_conn(tp_conn *c)
{
    return container_of(c, tcp_conn, base);
}

static const tcp_conn *
to_cconn(const tp_conn *c)
{
    return container_of(c, const tcp_conn, base);
}

/* libuv reports errno values negated on Unix; only its own codes (getaddrinfo
 * failures, UV_EOF handled by the caller) need translating. */
static int
map_err(int r)
{
    if (r >= 0)
        return r;
    if (r == UV_EOF)
        return -ECONNRESET;
    if (r == UV_EAI_CANCELED)
        return -ECANCELED;
    if (r == UV_EAI_MEMORY)
        return -ENOMEM;
    if (r <= UV_EAI_ADDRFAMILY && r >= UV_EAI_PROTOCOL)
        return -EHOSTUNREACH; /* name did not resolve */
    return r;
}

/* --- addresses --- */

static int
parse_port(const char *s, int allow_port0, unsigned *ret)
{
    size_t n = strlen(s);
    if (n == 0 || n > PORT_DIGITS_MAX)
        return -EINVAL;
    if (n > 1 && s[0] == '0')
        return -EINVAL; /* no leading zeros: one spelling per port */
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (v == 0 && !allow_port0))
        return -EINVAL;
    *ret = v;
    return 0;
}

static int
parse_zone(const char *z, uint32_t *ret)
{
    size_t n = strlen(z);
    if (n == 0 || n >= IF_NAMESIZE)
        return -EINVAL;
    int digits = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = z[i];
        if (ch >= '0' && ch <= '9')
            continue;
        digits = 0;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' ||
              ch == '_'))
            return -EINVAL;
    }
    unsigned long v = digits ? strtoul(z, NULL, 10) : if_nametoindex(z);
    if (v == 0 || v > UINT32_MAX)
        return -EINVAL;
    *ret = (uint32_t)v;
    return 0;
}

int
tp_tcp_addr_parse(const char *s, int allow_port0, struct sockaddr_storage *ret)
{
    if (!s || !ret)
        return -EINVAL;
    size_t n = strnlen(s, TP_ADDR_MAX);
    if (n == 0 || n >= TP_ADDR_MAX)
        return -EINVAL;

    char host[TP_ADDR_MAX];
    const char *port_str;
    int v6 = s[0] == '[';
    if (v6) {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        size_t hl = (size_t)(rb - s - 1);
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_str = rb + 2;
    } else {
        const char *colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -EINVAL; /* bare IPv6 needs brackets */
        size_t hl = (size_t)(colon - s);
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_str = colon + 1;
    }
    unsigned port;
    int r = parse_port(port_str, allow_port0, &port);
    if (r < 0)
        return r;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        char *pct = strchr(host, '%');
        if (pct) {
            *pct = '\0';
            r = parse_zone(pct + 1, &a6->sin6_scope_id);
            if (r < 0)
                return r;
        }
        if (host[0] == '\0' || uv_inet_pton(AF_INET6, host, &a6->sin6_addr) != 0)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        if (host[0] == '\0' || uv_inet_pton(AF_INET, host, &a4->sin_addr) != 0)
            return -EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    }
    *ret = ss;
    return 0;
}

int
tp_tcp_addr_format(const struct sockaddr *sa, char buf[static TP_ADDR_MAX])
{
    char host[64];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        if (uv_ip4_name(a4, host, sizeof(host)) != 0)
            return -EINVAL;
        n = snprintf(buf, TP_ADDR_MAX, "%s:%u", host, (unsigned)ntohs(a4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        if (uv_inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host)) != 0)
            return -EINVAL;
        if (a6->sin6_scope_id)
            n = snprintf(buf, TP_ADDR_MAX, "[%s%%%u]:%u", host, (unsigned)a6->sin6_scope_id,
                         (unsigned)ntohs(a6->sin6_port));
        else
            n = snprintf(buf, TP_ADDR_MAX, "[%s]:%u", host, (unsigned)ntohs(a6->sin6_port));
    } else {
        return -EAFNOSUPPORT;
    }
    if (n < 0 || n >= TP_ADDR_MAX)
        return -ENOSPC;
    return 0;
}

/* Socket options and address strings of a connection that just opened.
 * Done here, not at uv_tcp_init, because libuv 1.44 does not remember the
 * keepalive delay of a handle whose socket does not exist yet. */
static void
conn_opened(tcp_conn *c)
{
    tcp_net *net = to_net(c->base.net);
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (net->opts.keepalive_s)
        (void)uv_tcp_keepalive(&c->tcp, 1, net->opts.keepalive_s);

    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        (void)tp_tcp_addr_format((struct sockaddr *)&ss, c->local);
    len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        (void)tp_tcp_addr_format((struct sockaddr *)&ss, c->remote);
}

/* --- connections --- */

/* Drops one of the counts libuv holds on c; the last one frees it. */
static void
conn_put(tcp_conn *c)
{
    if (--c->handles_open > 0)
        return;
    if (c->base.close_cb)
        c->base.close_cb(&c->base);
    tp__conn_release(&c->base);
    if (c->ai_own)
        free(c->ai);
    else if (c->ai)
        uv_freeaddrinfo(c->ai);
    free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
    conn_put(h->data);
}

/* Creates a connection with its uv_tcp_t initialised and options set. */
static int
conn_new(tcp_net *net, tcp_conn **ret)
{
    tcp_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int r = uv_tcp_init(net->base.loop, &c->tcp);
    if (r < 0) {
        free(c);
        return map_err(r);
    }
    tp__conn_init(&c->base, &net->base);
    c->tcp.data = c;
    c->handles_open = 1;
    *ret = c;
    return 0;
}

/* Closes a connection the caller never saw (synchronous failure paths). */
static void
conn_discard(tcp_conn *c)
{
    c->base.close_cb = NULL;
    c->base.closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tcp_conn *c = h->data;
    tcp_net *net = to_net(c->base.net);
    if (net->rbuf_busy) {
        *buf = uv_buf_init(NULL, 0); /* libuv then reports UV_ENOBUFS */
        return;
    }
    net->rbuf_busy = 1;
    *buf = uv_buf_init((char *)net->rbuf, (unsigned)net->opts.read_buf);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tcp_conn *c = s->data;
    tcp_net *net = to_net(c->base.net);
    if (buf->base == (char *)net->rbuf)
        net->rbuf_busy = 0; /* nothing reads into it again before we return */
    if (nread == 0 || c->base.closing)
        return;
    if (nread > 0) {
        c->base.recv_cb(&c->base, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    uv_read_stop(s);
    tp__conn_end(&c->base, nread == UV_EOF ? 0 : map_err((int)nread));
}

static int
tcp_read_start(tp_conn *base)
{
    tcp_conn *c = to_conn(base);
    return map_err(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read));
}

static void
tcp_read_stop(tp_conn *base)
{
    tcp_conn *c = to_conn(base);
    (void)uv_read_stop((uv_stream_t *)&c->tcp);
}

static void
on_write(uv_write_t *req, int status)
{
    send_req *sr = container_of(req, send_req, req);
    tcp_conn *c = sr->conn;
    c->queued -= sr->len;
    if (sr->cb)
        sr->cb(&c->base, sr->arg, map_err(status));
    free(sr);
}

static int
tcp_send(tp_conn *base, const tp_buf *bufs, unsigned nbufs, tp_send_cb cb, void *arg)
{
    tcp_conn *c = to_conn(base);
    send_req *sr = malloc(sizeof(*sr));
    if (!sr)
        return -ENOMEM;
    sr->conn = c;
    sr->cb = cb;
    sr->arg = arg;
    sr->len = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        if (bufs[i].len > UINT32_MAX) {
            free(sr);
            return -EMSGSIZE; /* uv_buf_t lengths are unsigned int */
        }
        sr->bufs[i] = uv_buf_init((char *)bufs[i].base, (unsigned)bufs[i].len);
        sr->len += bufs[i].len;
    }
    int r = uv_write(&sr->req, (uv_stream_t *)&c->tcp, sr->bufs, nbufs, on_write);
    if (r < 0) {
        free(sr);
        return map_err(r) == -EBADF ? -EPIPE : map_err(r);
    }
    c->queued += sr->len;
    return 0;
}

static void
tcp_close(tp_conn *base, tp_close_cb cb)
{
    tcp_conn *c = to_conn(base);
    if (c->has_timer) {
        c->handles_open++;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
    /* A pending resolution finishes (or is cancelled) on its own and drops
     * its count in on_resolved(); a handle being recycled between two
     * attempts is already closing and ends in on_recycled(). */
    if (c->resolving)
        (void)uv_cancel((uv_req_t *)&c->gai);
    if (!c->recycling)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static size_t
tcp_queued(const tp_conn *base)
{
    return to_cconn(base)->queued;
}

static size_t
tcp_mtu(const tp_conn *base)
{
    return TP_TCP_MTU;
}

static uint64_t
tcp_bandwidth(const tp_conn *base)
{
    return 0;
}

static const char *
tcp_local_addr(const tp_conn *base)
{
    return to_cconn(base)->local;
}

static const char *
tcp_remote_addr(const tp_conn *base)
{
    return to_cconn(base)->remote;
}

/* --- dialling --- */

static void
report_connect(tcp_conn *c, int status)
{
    if (c->connect_reported)
        return;
    c->connect_reported = 1;
    if (c->has_timer)
        uv_timer_stop(&c->timer);
    if (status == 0) {
        c->base.connected = 1;
        conn_opened(c);
    }
    c->base.connect_cb(&c->base, status);
}

static void on_connect(uv_connect_t *req, int status);

static void on_recycled(uv_handle_t *h);

/* Closes the handle of a failed attempt; on_recycled() goes on. */
static void
recycle(tcp_conn *c)
{
    c->recycling = 1;
    uv_close((uv_handle_t *)&c->tcp, on_recycled);
}

/* Connects to the next resolved address; reports the last error when none
 * is left. */
static void
try_next(tcp_conn *c)
{
    while (c->ai_at) {
        const struct addrinfo *a = c->ai_at;
        c->ai_at = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        int r = uv_tcp_connect(&c->connect_req, &c->tcp, a->ai_addr, on_connect);
        if (r == 0)
            return;
        c->last_err = map_err(r);
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            /* The failed attempt left a socket: next try on a fresh handle. */
            if (c->ai_at) {
                recycle(c);
                return;
            }
            break;
        }
    }
    report_connect(c, c->last_err ? c->last_err : -EHOSTUNREACH);
}

/* The handle of a failed attempt is closed; start over with a fresh one. */
static void
on_recycled(uv_handle_t *h)
{
    tcp_conn *c = h->data;
    c->recycling = 0;
    if (c->base.closing) {
        conn_put(c); /* tp_close() came meanwhile: this was the handle's close */
        return;
    }
    /* uv_tcp_init cannot fail with AF_UNSPEC on Unix (no socket yet). */
    (void)uv_tcp_init(c->base.net->loop, &c->tcp);
    c->tcp.data = c;
    if (!c->connect_reported)
        try_next(c);
}

static void
on_connect(uv_connect_t *req, int status)
{
    tcp_conn *c = container_of(req, tcp_conn, connect_req);
    if (status < 0 && status != UV_ECANCELED && c->ai_at && !c->connect_reported &&
        !c->base.closing) {
        /* A host name with more addresses: try the next one, in the order
         * getaddrinfo gave them (RFC 6724), on a fresh socket. */
        c->last_err = map_err(status);
        recycle(c);
        return;
    }
    report_connect(c, map_err(status));
}

static void
on_dial_timeout(uv_timer_t *t)
{
    tcp_conn *c = t->data;
    /* The connect request (or resolution) stays pending until tp_close()
     * cancels it; its callback then finds connect_reported set. */
    report_connect(c, -ETIMEDOUT);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tcp_conn *c = container_of(req, tcp_conn, gai);
    c->resolving = 0;
    c->ai = res; /* freed with the connection, even if unused */
    c->ai_at = res;
    if (c->base.closing) {
        conn_put(c); /* the request's count */
        return;
    }
    c->handles_open--; /* the tcp handle still holds one */
    if (c->connect_reported)
        return; /* timed out while resolving */
    if (status < 0) {
        report_connect(c, map_err(status));
        return;
    }
    try_next(c);
}

/* tp__tcp_dial_list(): first attempt, then the dial timeout. */
static void
on_list_start(uv_timer_t *t)
{
    tcp_conn *c = t->data;
    tcp_net *net = to_net(c->base.net);
    if (net->opts.dial_timeout_ms)
        (void)uv_timer_start(&c->timer, on_dial_timeout, net->opts.dial_timeout_ms, 0);
    try_next(c);
}

static int
is_label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

int
tp_tcp_hostport_parse(const char *s, char host[static TP_TCP_HOST_MAX], unsigned *ret_port)
{
    if (!s || !ret_port)
        return -EINVAL;
    const char *colon = strchr(s, ':');
    if (!colon || strchr(colon + 1, ':'))
        return -EINVAL;
    size_t hl = (size_t)(colon - s);
    if (hl == 0 || hl > HOST_NAME_MAX_LEN)
        return -EINVAL;
    /* LDH labels of 1..63 characters, no hyphen at either end. */
    size_t label = 0, last_start = 0;
    for (size_t i = 0; i <= hl; i++) {
        if (i == hl || s[i] == '.') {
            if (label == 0 || label > HOST_LABEL_MAX || s[i - 1] == '-')
                return -EINVAL;
            label = 0;
            continue;
        }
        if (!is_label_char(s[i]) || (label == 0 && s[i] == '-'))
            return -EINVAL;
        if (label == 0)
            last_start = i;
        label++;
    }
    /* A name whose last label starts with a digit would be read as a
     * numeric address by getaddrinfo ("1.2.3", "0x7f.1"): not a name. */
    if (s[last_start] >= '0' && s[last_start] <= '9')
        return -EINVAL;
    unsigned port;
    int r = parse_port(colon + 1, 0, &port);
    if (r < 0)
        return r;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *ret_port = port;
    return 0;
}

/* Starts resolving a "NAME:PORT" dial; the connect follows in on_resolved(). */
static int
dial_name(tcp_net *net, tcp_conn *c, const char *addr)
{
    char host[TP_TCP_HOST_MAX], port[PORT_DIGITS_MAX + 1];
    unsigned p;
    int r = tp_tcp_hostport_parse(addr, host, &p);
    if (r < 0)
        return r;
    snprintf(port, sizeof(port), "%u", p);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    r = uv_getaddrinfo(net->base.loop, &c->gai, on_resolved, host, port, &hints);
    if (r < 0)
        return map_err(r);
    c->handles_open++;
    c->resolving = 1;
    return 0;
}

static int
tcp_dial(tp_net *nbase, const char *addr, tp_connect_cb cb, tp_conn **ret)
{
    tcp_net *net = to_net(nbase);
    struct sockaddr_storage ss;
    int numeric = tp_tcp_addr_parse(addr, 0, &ss) == 0;
    char host[TP_TCP_HOST_MAX];
    unsigned port;
    if (!numeric && tp_tcp_hostport_parse(addr, host, &port) < 0)
        return -EINVAL;
    tcp_conn *c;
    int r = conn_new(net, &c);
    if (r < 0)
        return r;
    c->base.connect_cb = cb;
    if (numeric)
        r = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&ss, on_connect);
    else
        r = dial_name(net, c, addr);
    if (r < 0) {
        conn_discard(c);
        return map_err(r);
    }
    if (net->opts.dial_timeout_ms) {
        /* uv_timer_init cannot fail on Unix. */
        (void)uv_timer_init(net->base.loop, &c->timer);
        c->timer.data = c;
        c->has_timer = 1;
        (void)uv_timer_start(&c->timer, on_dial_timeout, net->opts.dial_timeout_ms, 0);
    }
    *ret = &c->base;
    return 0;
}

int
tp__tcp_dial_list(tp_net *nbase, const struct sockaddr_storage *addrs, size_t n, tp_connect_cb cb,
                  void *data, tp_conn **ret)
{
    if (!nbase || nbase->ops != &tp_tcp_ops || !addrs || n == 0 || n > 64 || !cb || !ret)
        return -EINVAL;
    tcp_net *net = to_net(nbase);
    /* One block: n addrinfo nodes, then n addresses. */
    struct addrinfo *ai = calloc(n, sizeof(*ai) + sizeof(struct sockaddr_storage));
    if (!ai)
        return -ENOMEM;
    struct sockaddr_storage *ss = (struct sockaddr_storage *)(ai + n);
    for (size_t i = 0; i < n; i++) {
        ss[i] = addrs[i];
        ai[i].ai_family = ss[i].ss_family;
        ai[i].ai_socktype = SOCK_STREAM;
        ai[i].ai_addr = (struct sockaddr *)&ss[i];
        ai[i].ai_addrlen = sizeof(ss[i]);
        ai[i].ai_next = i + 1 < n ? &ai[i + 1] : NULL;
    }
    tcp_conn *c;
    int r = conn_new(net, &c);
    if (r < 0) {
        free(ai);
        return r;
    }
    c->base.connect_cb = cb;
    c->base.data = data;
    c->ai = ai;
    c->ai_own = 1;
    c->ai_at = ai;
    /* Connect from the loop, like a resolved name, so the callback is
     * never called from in here: the resolution step is a zero timer. */
    (void)uv_timer_init(net->base.loop, &c->timer);
    c->timer.data = c;
    c->has_timer = 1;
    (void)uv_timer_start(&c->timer, on_list_start, 0, 0);
    *ret = &c->base;
    return 0;
}

/* --- listeners --- */

static tcp_listener *
to_listener(tp_listener *l)
{
    return container_of(l, tcp_listener, base);
}

static void
on_listener_closed(uv_handle_t *h)
{
    tcp_listener *l = h->data;
    if (l->base.close_cb)
        l->base.close_cb(&l->base);
    tp__listener_release(&l->base);
    free(l);
}

static void
on_connection(uv_stream_t *server, int status)
{
    tcp_listener *l = server->data;
    if (l->base.closing)
        return;
    if (status < 0) {
        l->base.accept_cb(&l->base, NULL, map_err(status));
        return;
    }
    tcp_conn *c;
    int r = conn_new(to_net(l->base.net), &c);
    if (r < 0) {
        l->base.accept_cb(&l->base, NULL, r);
        return;
    }
    r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r < 0) {
        conn_discard(c);
        l->base.accept_cb(&l->base, NULL, map_err(r));
        return;
    }
    c->connect_reported = 1;
    c->base.connected = 1;
    conn_opened(c);
    l->base.accept_cb(&l->base, &c->base, 0);
}

static int
tcp_listen(tp_net *nbase, const char *addr, tp_accept_cb cb, tp_listener **ret)
{
    tcp_net *net = to_net(nbase);
    struct sockaddr_storage ss;
    int r = tp_tcp_addr_parse(addr, 1, &ss);
    if (r < 0)
        return r;
    tcp_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    r = uv_tcp_init(net->base.loop, &l->tcp);
    if (r < 0) {
        free(l);
        return map_err(r);
    }
    tp__listener_init(&l->base, nbase, cb);
    l->tcp.data = l;
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    int len = sizeof(ss);
    if (r == 0)
        r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    if (r == 0)
        r = tp_tcp_addr_format((struct sockaddr *)&ss, l->addr);
    if (r < 0) {
        l->base.closing = 1;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        return map_err(r);
    }
    *ret = &l->base;
    return 0;
}

static void
tcp_listener_close(tp_listener *base, tp_listener_close_cb cb)
{
    uv_close((uv_handle_t *)&to_listener(base)->tcp, on_listener_closed);
}

static const char *
tcp_listener_addr(const tp_listener *base)
{
    return container_of(base, const tcp_listener, base)->addr;
}

/* --- the net --- */

static void
tcp_net_free(tp_net *nbase)
{
    tcp_net *net = to_net(nbase);
    free(net->rbuf);
    free(net);
}

const struct tp_ops tp_tcp_ops = {
    .version = TP_OPS_VERSION_1,
    .name = "tcp",
    .listen = tcp_listen,
    .listener_close = tcp_listener_close,
    .listener_addr = tcp_listener_addr,
    .dial = tcp_dial,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .send = tcp_send,
    .close = tcp_close,
    .queued = tcp_queued,
    .mtu = tcp_mtu,
    .bandwidth = tcp_bandwidth,
    .local_addr = tcp_local_addr,
    .remote_addr = tcp_remote_addr,
    .net_free = tcp_net_free,
};

int
tp_tcp_net_new(uv_loop_t *loop, const struct tp_tcp_opts *opts, tp_net **ret)
{
    struct tp_tcp_opts o = TP_TCP_OPTS_INIT;
    if (!loop || !ret)
        return -EINVAL;
    if (opts)
        o = *opts;
    if (o.read_buf < TP_TCP_READ_BUF_MIN || o.read_buf > TP_TCP_READ_BUF_MAX)
        return -EINVAL;
    tcp_net *net = calloc(1, sizeof(*net));
    if (!net)
        return -ENOMEM;
    net->rbuf = malloc(o.read_buf);
    if (!net->rbuf) {
        free(net);
        return -ENOMEM;
    }
    tp__net_init(&net->base, &tp_tcp_ops, loop);
    net->opts = o;
    *ret = &net->base;
    return 0;
}
