/* SPDX-License-Identifier: MIT */
#include "daemon/http-uv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

enum {
    READ_BUF = 16 * 1024,
    /* Bytes read ahead of the request being answered (pipelining, or what a
     * client sends while it waits); reading stops past this. */
    IN_MAX = 64 * 1024,
};

struct nvx_http_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    nvx_http_server *srv;
    nvx_http_client *prev, *next;
    nvx_http_conn *conn;
    char *in; /* read, not yet parsed */
    size_t in_len, in_cap;
    nvx_http_phase timed_phase; /* the phase the timer runs for */
    int handles_open;
    bool busy;       /* the handler holds a request */
    bool streaming;  /* a chunked response is open */
    bool keep_alive; /* of the request being answered */
    bool head_only;
    bool closing, reading, eof;
    bool draining; /* a Connection: close response ended: parse nothing more */
    void (*on_gone)(void *);
    void *gone_arg;
    char rbuf[READ_BUF];
};

struct nvx_http_server {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    nvx_http_handler_fn handler;
    void *arg;
    unsigned timeout_ms[_NVX_HTTP_PHASE_MAX];
    nvx_http_client *clients;
    size_t n_clients;
    char addr[NVX_HTTP_ADDR_MAX];
    bool loopback, closed_listener;
    void (*done)(void *);
    void *done_arg;
};

struct wreq {
    uv_write_t w;
    nvx_http_client *cl;
    bool last; /* ends the response */
    char *buf;
};

static void client_close(nvx_http_client *cl);
static void on_timer(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void pump(nvx_http_client *cl);

static void
maybe_done(nvx_http_server *s)
{
    if (!s->done || !s->closed_listener || s->clients)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s);
    done(arg);
}

/* Frees cl once its handles are closed and no handler holds it. */
static void
maybe_free(nvx_http_client *cl)
{
    if (cl->handles_open > 0 || cl->busy)
        return;
    nvx_http_server *s = cl->srv;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        s->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    s->n_clients--;
    nvx_http_conn_free(cl->conn);
    free(cl->in);
    free(cl);
    maybe_done(s);
}

static void
on_handle_closed(uv_handle_t *h)
{
    nvx_http_client *cl = h->data;
    cl->handles_open--;
    maybe_free(cl);
}

static void
client_close(nvx_http_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    if (cl->busy && cl->on_gone) {
        void (*fn)(void *) = cl->on_gone;
        cl->on_gone = NULL;
        fn(cl->gone_arg);
    }
    uv_close((uv_handle_t *)&cl->timer, on_handle_closed);
    uv_close((uv_handle_t *)&cl->tcp, on_handle_closed);
}

/* Runs the timer for the connection's phase: started when the phase is
 * entered, not on each byte, so trickling bytes does not extend it. */
static void
arm(nvx_http_client *cl)
{
    if (cl->closing)
        return;
    nvx_http_phase ph = cl->busy ? NVX_HTTP_DONE : nvx_http_conn_phase(cl->conn);
    if (ph == cl->timed_phase)
        return;
    cl->timed_phase = ph;
    unsigned ms = cl->srv->timeout_ms[ph];
    if (ms == 0)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, on_timer, ms, 0);
}

static void
on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    nvx_http_client *cl = wr->cl;
    bool last = wr->last;
    free(wr->buf);
    free(wr);
    if (status < 0) {
        client_close(cl);
        return;
    }
    if (!last || cl->closing)
        return;
    /* The response is out: the next request may be parsed. */
    if (!cl->keep_alive) {
        client_close(cl);
        return;
    }
    pump(cl);
}

/* Queues buf (taken). last: it ends the response. */
static void
client_write(nvx_http_client *cl, char *buf, size_t len, bool last)
{
    if (cl->closing) {
        free(buf);
        return;
    }
    struct wreq *wr = malloc(sizeof(*wr));
    if (!wr) {
        free(buf);
        client_close(cl);
        return;
    }
    wr->cl = cl;
    wr->buf = buf;
    wr->last = last;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    if (uv_write(&wr->w, (uv_stream_t *)&cl->tcp, &b, 1, on_write) < 0) {
        free(buf);
        free(wr);
        client_close(cl);
    }
}

/* The handler is done with the request (its last bytes are queued). */
static void
request_end(nvx_http_client *cl)
{
    cl->busy = false;
    cl->streaming = false;
    cl->on_gone = NULL;
    cl->draining = !cl->keep_alive;
    nvx_http_conn_next(cl->conn);
    if (cl->closing) {
        maybe_free(cl);
        return;
    }
    arm(cl);
}

/* An error the adapter answers itself, then closes. */
static void
reply_and_close(nvx_http_client *cl, int status, const char *msg)
{
    char *body = NULL, *buf = NULL;
    size_t blen = 0, len = 0;
    cl->keep_alive = false;
    cl->draining = true; /* bytes that still come are not parsed */
    if (nvx_http_error_json(msg, &body, &blen) == 0 &&
        nvx_http_response_build(status, "application/json", body, blen, false, false, &buf, &len) ==
            0) {
        /* last=true: on_write closes it once the bytes are out. */
        cl->busy = false;
        client_write(cl, buf, len, true);
    } else {
        client_close(cl);
    }
    free(body);
}

static void
dispatch(nvx_http_client *cl, const nvx_http_req *req)
{
    cl->busy = true;
    cl->keep_alive = req->keep_alive;
    cl->head_only = req->head_only;
    arm(cl);
    if (cl->srv->loopback && !nvx_http_host_is_loopback(req->host)) {
        nvx_http_respond_error(cl, 403, "Host must name the loopback (localhost, 127.0.0.1)");
        return;
    }
    if (cl->srv->loopback && req->origin && !nvx_http_origin_is_loopback(req->origin)) {
        nvx_http_respond_error(cl, 403,
                               "requests from web pages of other sites are refused (Origin is not "
                               "the loopback)");
        return;
    }
    cl->srv->handler(cl->srv->arg, cl, req);
}

static void
update_reading(nvx_http_client *cl)
{
    if (cl->closing || cl->eof)
        return;
    bool want = cl->in_len < IN_MAX;
    if (want && !cl->reading)
        cl->reading = uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) == 0;
    else if (!want && cl->reading) {
        uv_read_stop((uv_stream_t *)&cl->tcp);
        cl->reading = false;
    }
}

/* Parses what has been read while no request is being answered. */
static void
pump(nvx_http_client *cl)
{
    if (cl->draining)
        return;
    while (!cl->busy && !cl->closing && cl->in_len > 0) {
        size_t used = 0;
        int r = nvx_http_conn_feed(cl->conn, cl->in, cl->in_len, &used);
        memmove(cl->in, cl->in + used, cl->in_len - used);
        cl->in_len -= used;
        if (r < 0) {
            log_debug("http: %s (%d)", nvx_http_conn_error(cl->conn),
                      nvx_http_conn_status(cl->conn));
            reply_and_close(cl, nvx_http_conn_status(cl->conn), nvx_http_conn_error(cl->conn));
            return;
        }
        if (r == NVX_HTTP_REQUEST)
            dispatch(cl, nvx_http_conn_req(cl->conn));
        else
            break;
    }
    if (!cl->busy && !cl->closing && cl->eof) {
        size_t used;
        /* EOF between requests is a normal close; inside one it is too
         * (the client can no longer wait for an answer it cannot see end). */
        (void)nvx_http_conn_feed(cl->conn, NULL, 0, &used);
        client_close(cl);
        return;
    }
    arm(cl);
    update_reading(cl);
}

static void
on_timer(uv_timer_t *t)
{
    nvx_http_client *cl = t->data;
    if (cl->timed_phase == NVX_HTTP_IDLE) {
        client_close(cl);
        return;
    }
    log_debug("http: request timed out");
    reply_and_close(cl, 408, "request not received in time");
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    nvx_http_client *cl = h->data;
    *buf = uv_buf_init(cl->rbuf, sizeof(cl->rbuf));
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    nvx_http_client *cl = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* A client that goes while its request is answered cancels it. */
        cl->eof = true;
        cl->reading = false;
        uv_read_stop(st);
        if (cl->busy || nread != UV_EOF)
            client_close(cl);
        else
            pump(cl);
        return;
    }
    size_t n = (size_t)nread;
    if (cl->in_len + n > cl->in_cap) {
        size_t cap = cl->in_cap ? cl->in_cap : READ_BUF;
        while (cap < cl->in_len + n)
            cap *= 2;
        char *ni = realloc(cl->in, cap);
        if (!ni) {
            client_close(cl);
            return;
        }
        cl->in = ni;
        cl->in_cap = cap;
    }
    memcpy(cl->in + cl->in_len, buf->base, n);
    cl->in_len += n;
    pump(cl);
}

static void
on_connection(uv_stream_t *server, int status)
{
    nvx_http_server *s = server->data;
    if (status < 0)
        return;
    nvx_http_client *cl = calloc(1, sizeof(*cl));
    if (!cl || nvx_http_conn_new(&cl->conn) < 0) {
        free(cl);
        /* Accept and drop it, or the listener would report it forever. */
        uv_tcp_t *tmp = malloc(sizeof(*tmp));
        if (tmp && uv_tcp_init(s->loop, tmp) == 0) {
            (void)uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        } else {
            free(tmp);
        }
        return;
    }
    cl->srv = s;
    cl->timed_phase = _NVX_HTTP_PHASE_MAX;
    uv_tcp_init(s->loop, &cl->tcp);
    uv_timer_init(s->loop, &cl->timer);
    cl->tcp.data = cl->timer.data = cl;
    cl->handles_open = 2;
    cl->next = s->clients;
    if (s->clients)
        s->clients->prev = cl;
    s->clients = cl;
    s->n_clients++;
    if (uv_accept(server, (uv_stream_t *)&cl->tcp) < 0 || s->n_clients > NVX_HTTP_CLIENTS_MAX) {
        client_close(cl);
        return;
    }
    uv_tcp_nodelay(&cl->tcp, 1);
    cl->reading = uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_read) == 0;
    if (!cl->reading) {
        client_close(cl);
        return;
    }
    arm(cl);
}

static int
parse_addr(const char *text, struct sockaddr_storage *ss)
{
    char host[NVX_HTTP_ADDR_MAX];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
        return -EINVAL;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || port > 65535)
        return -EINVAL;
    size_t hl = (size_t)(colon - text);
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            return -EINVAL;
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

static bool
is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        return a[0] == 127;
    }
    static const uint8_t v6lo[16] = { [15] = 1 };
    return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, v6lo, 16) == 0;
}

int
nvx_http_server_new(const nvx_http_server_opts *opts, nvx_http_server **ret)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!opts->addr || !opts->handler || parse_addr(opts->addr, &ss) < 0)
        return -EINVAL;
    nvx_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = opts->loop;
    s->handler = opts->handler;
    s->arg = opts->arg;
    s->timeout_ms[NVX_HTTP_IDLE] =
        opts->idle_timeout_ms ? opts->idle_timeout_ms : NVX_HTTP_IDLE_TIMEOUT_MS;
    s->timeout_ms[NVX_HTTP_IN_HEAD] =
        opts->head_timeout_ms ? opts->head_timeout_ms : NVX_HTTP_HEAD_TIMEOUT_MS;
    s->timeout_ms[NVX_HTTP_IN_BODY] =
        opts->body_timeout_ms ? opts->body_timeout_ms : NVX_HTTP_BODY_TIMEOUT_MS;
    s->timeout_ms[NVX_HTTP_DONE] = 0;
    s->loopback = is_loopback(&ss);
    uv_tcp_init(s->loop, &s->tcp);
    s->tcp.data = s;
    int r = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection);
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (r == 0)
        r = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &blen);
    if (r < 0) {
        /* The handle must close before s goes: free it from the loop. */
        s->tcp.data = s;
        uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
        return r;
    }
    char ip[48] = "";
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof(ip));
        snprintf(s->addr, sizeof(s->addr), "[%s]:%u", ip,
                 ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof(ip));
        snprintf(s->addr, sizeof(s->addr), "%s:%u", ip,
                 ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }
    *ret = s;
    return 0;
}

const char *
nvx_http_server_addr(const nvx_http_server *s)
{
    return s->addr;
}

bool
nvx_http_server_loopback(const nvx_http_server *s)
{
    return s->loopback;
}

static void
on_listener_closed(uv_handle_t *h)
{
    nvx_http_server *s = h->data;
    s->closed_listener = true;
    maybe_done(s);
}

void
nvx_http_server_close(nvx_http_server *s, void (*done)(void *arg), void *arg)
{
    s->done = done;
    s->done_arg = arg;
    for (nvx_http_client *cl = s->clients; cl; cl = cl->next)
        client_close(cl);
    uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
}

void
nvx_http_respond(nvx_http_client *cl, int status, const char *ctype, const void *body, size_t len)
{
    char *buf;
    size_t blen;
    if (!cl->closing && nvx_http_response_build(status, ctype, body, len, cl->keep_alive,
                                                cl->head_only, &buf, &blen) == 0)
        client_write(cl, buf, blen, true);
    else
        client_close(cl);
    request_end(cl);
}

void
nvx_http_respond_error(nvx_http_client *cl, int status, const char *msg)
{
    char *body = NULL;
    size_t len = 0;
    if (nvx_http_error_json(msg, &body, &len) < 0) {
        client_close(cl);
        request_end(cl);
        return;
    }
    nvx_http_respond(cl, status, "application/json", body, len);
    free(body);
}

void
nvx_http_stream_begin(nvx_http_client *cl, int status, const char *ctype)
{
    char head[NVX_HTTP_RESP_HEAD_MAX];
    cl->streaming = true;
    int n = nvx_http_head_build(status, ctype, -1, cl->keep_alive, head, sizeof(head));
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf) {
        client_close(cl);
        return;
    }
    memcpy(buf, head, (size_t)n);
    client_write(cl, buf, (size_t)n, false);
}

void
nvx_http_stream_write(nvx_http_client *cl, const void *data, size_t len)
{
    if (cl->closing || len == 0)
        return;
    char pre[24];
    int n = snprintf(pre, sizeof(pre), "%zx\r\n", len);
    char *buf = malloc((size_t)n + len + 2);
    if (!buf) {
        client_close(cl);
        return;
    }
    memcpy(buf, pre, (size_t)n);
    memcpy(buf + n, data, len);
    memcpy(buf + (size_t)n + len, "\r\n", 2);
    client_write(cl, buf, (size_t)n + len + 2, false);
}

void
nvx_http_stream_end(nvx_http_client *cl)
{
    char *buf = strdup("0\r\n\r\n");
    if (buf)
        client_write(cl, buf, 5, true);
    else
        client_close(cl);
    request_end(cl);
}

bool
nvx_http_client_gone(const nvx_http_client *cl)
{
    return cl->closing;
}

void
nvx_http_client_on_gone(nvx_http_client *cl, void (*fn)(void *arg), void *arg)
{
    cl->on_gone = fn;
    cl->gone_arg = arg;
}
