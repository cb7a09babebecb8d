/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_HTTP_UV_H
#define NVX_DAEMON_HTTP_UV_H
/*
 * The HTTP API's libuv adapter: a TCP listener on the daemon's loop, one
 * nvx_http_conn (daemon/http.h) per client, timeouts, writes. It answers
 * malformed, oversized and slow requests itself (400, 413, 414, 431, 408
 * with a JSON {"error": ...} body, then closes) and hands every complete
 * request to the handler, one request per client at a time: reading stops
 * until the handler's response is written, so pipelined requests wait.
 *
 * Timeouts (slowloris): the head of a request must arrive within
 * head_timeout_ms of its first byte, and its body within body_timeout_ms
 * of the end of the head, however slowly the bytes trickle in; a
 * keep-alive connection idle for idle_timeout_ms is closed. No timeout runs
 * while the handler answers (generation can take minutes).
 *
 * A server bound to a loopback address answers only requests whose Host
 * header names the loopback (403 otherwise): see nvx_http_host_is_loopback().
 *
 * Loop thread only.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "daemon/http.h"

enum {
    NVX_HTTP_CLIENTS_MAX = 64,
    NVX_HTTP_HEAD_TIMEOUT_MS = 10 * 1000,
    NVX_HTTP_BODY_TIMEOUT_MS = 30 * 1000,
    NVX_HTTP_IDLE_TIMEOUT_MS = 60 * 1000,
    NVX_HTTP_ADDR_MAX = 64, /* "[v6]:port" text */
};

typedef struct nvx_http_server nvx_http_server;
typedef struct nvx_http_client nvx_http_client;

/* A complete request. req is valid until the response ends. The handler
 * must end the response exactly once, now or later (nvx_http_respond*()
 * or nvx_http_stream_end()), even when the client has gone meanwhile. */
typedef void (*nvx_http_handler_fn)(void *arg, nvx_http_client *cl, const nvx_http_req *req);

typedef struct nvx_http_server_opts {
    uv_loop_t *loop;
    const char *addr; /* "HOST:PORT", numeric host ("[::1]:PORT" for IPv6); port 0 = ephemeral */
    nvx_http_handler_fn handler;
    void *arg;
    unsigned head_timeout_ms, body_timeout_ms, idle_timeout_ms; /* 0 = the defaults above */
} nvx_http_server_opts;

/* Binds and listens. Returns 0, -EINVAL (bad address), errnos of
 * bind/listen. */
int nvx_http_server_new(const nvx_http_server_opts *opts, nvx_http_server **ret);

/* The bound address as "HOST:PORT" (the real port when 0 was asked).
 * Valid until the server is freed. */
const char *nvx_http_server_addr(const nvx_http_server *s);

/* True if bound to a loopback address. */
bool nvx_http_server_loopback(const nvx_http_server *s);

/* Closes the listener and every client; done runs once all handles are
 * closed and every pending response has ended, then s is freed. */
void nvx_http_server_close(nvx_http_server *s, void (*done)(void *arg), void *arg);

/* A whole response; body (len bytes) is copied. Ends the request. */
void nvx_http_respond(nvx_http_client *cl, int status, const char *ctype, const void *body,
                      size_t len);

/* A JSON error response {"error": msg}. Ends the request. */
void nvx_http_respond_error(nvx_http_client *cl, int status, const char *msg);

/* A streamed response (chunked transfer encoding): the head now, then any
 * number of chunks (copied; empty ones are skipped), then the end. */
void nvx_http_stream_begin(nvx_http_client *cl, int status, const char *ctype);
void nvx_http_stream_write(nvx_http_client *cl, const void *data, size_t len);
void nvx_http_stream_end(nvx_http_client *cl);

/* True once the client has gone (closed, timed out, server closing): what
 * is still written is dropped. A handler polls it or registers on_gone. */
bool nvx_http_client_gone(const nvx_http_client *cl);

/* Calls fn(arg) once if the client goes before its response ends (a
 * disconnect cancels work done for it). NULL fn clears it. */
void nvx_http_client_on_gone(nvx_http_client *cl, void (*fn)(void *arg), void *arg);

#endif
