/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_HTTP_H
#define NVX_DAEMON_HTTP_H
/*
 * The HTTP API's sans-I/O request core: bytes in, one request at a time
 * out, response bytes built here; no sockets and no clock (daemon/http-uv.c
 * is the libuv adapter, daemon/api-*.c the endpoints).
 *
 * Parsing is Node's http_parser (Debian's libhttp-parser-dev 2.9): a
 * callback parser that allocates nothing and takes input in arbitrary
 * pieces, so it sits directly under a libuv read callback, and it has been
 * fuzzed for a decade in Node. It knows nothing of our limits; this module
 * adds them: the request line and headers together at most
 * NVX_HTTP_HEAD_MAX bytes (431/413 otherwise), a body at most
 * NVX_HTTP_BODY_MAX bytes (413, checked against Content-Length before the
 * body arrives and counted for chunked bodies), a URL at most
 * NVX_HTTP_URL_MAX bytes (414).
 *
 * Pipelined requests: after a complete request the parser pauses, so the
 * bytes behind it stay with the caller, who feeds them again once the
 * response is out (nvx_http_conn_next()).
 *
 * Thread safety: none; one connection per thread at a time (the loop).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nvx_http_limits {
    NVX_HTTP_HEAD_MAX = 16 * 1024,   /* request line + headers */
    NVX_HTTP_BODY_MAX = 1024 * 1024, /* request body */
    NVX_HTTP_URL_MAX = 2048,         /* request target */
    NVX_HTTP_RESP_HEAD_MAX = 512,    /* bytes of a response head we build */
    NVX_HTTP_ERR_MSG_MAX = 200,      /* bytes of an error message in a JSON body */
    NVX_HTTP_HOST_MAX = 255,         /* bytes of the Host header kept */
};

/* Default port of the HTTP API (nvxd's peer port is 4747). */
#define NVX_HTTP_DEFAULT_PORT 4748
#define NVX_HTTP_DEFAULT_ADDR "127.0.0.1:4748"

typedef enum nvx_http_method {
    NVX_HTTP_GET = 0,
    NVX_HTTP_HEAD,
    NVX_HTTP_POST,
    NVX_HTTP_DELETE,
    NVX_HTTP_OPTIONS,
    NVX_HTTP_OTHER, /* any other method http_parser knows */
    _NVX_HTTP_METHOD_MAX,
} nvx_http_method;

/* Where a connection is in its current request (the adapter's timeouts
 * follow it: idle = keep-alive wait, head = header timeout, body = body
 * timeout, done = a request is being answered, no timeout). */
typedef enum nvx_http_phase {
    NVX_HTTP_IDLE = 0,
    NVX_HTTP_IN_HEAD,
    NVX_HTTP_IN_BODY,
    NVX_HTTP_DONE,
    _NVX_HTTP_PHASE_MAX,
} nvx_http_phase;

/* A complete request. Pointers are into the connection and valid until
 * nvx_http_conn_next() or nvx_http_conn_free(). */
typedef struct nvx_http_req {
    nvx_http_method method;
    const char *path;   /* NUL-terminated, without the query string */
    const char *query;  /* after '?', NUL-terminated ("" when none) */
    const char *host;   /* the Host header, NULL when absent */
    const char *origin; /* the Origin header (browsers send it), NULL when absent */
    const char *body;   /* body bytes (NUL-terminated for convenience) */
    size_t body_len;
    bool keep_alive; /* the client wants the connection kept */
    bool head_only;  /* HEAD: answer with the head alone */
} nvx_http_req;

typedef struct nvx_http_conn nvx_http_conn;

/* Results of nvx_http_conn_feed() (>= 0). */
enum {
    NVX_HTTP_MORE = 0,    /* every byte used; feed more */
    NVX_HTTP_REQUEST = 1, /* a request is complete: nvx_http_conn_req() */
};

int nvx_http_conn_new(nvx_http_conn **ret);
void nvx_http_conn_free(nvx_http_conn *c);

/* Feeds len bytes of the client's stream (len 0 = EOF: returns
 * NVX_HTTP_MORE when between requests, else an error). *ret_used is the
 * number of bytes taken; when a request completes, the rest must be fed
 * again after nvx_http_conn_next(). Returns NVX_HTTP_MORE, NVX_HTTP_REQUEST
 * or a negative errno: -EBADMSG (malformed: 400), -EMSGSIZE (a limit:
 * nvx_http_conn_status() says which), -EINVAL (feeding while a request is
 * pending: caller bug). After an error the connection is unusable; send
 * nvx_http_conn_status() and close. */
int nvx_http_conn_feed(nvx_http_conn *c, const char *data, size_t len, size_t *ret_used);

/* The complete request (NULL unless the last feed returned NVX_HTTP_REQUEST). */
const nvx_http_req *nvx_http_conn_req(const nvx_http_conn *c);

/* The HTTP status that describes the last error (400, 413, 414, 431, 501). */
int nvx_http_conn_status(const nvx_http_conn *c);

/* A short reason for the last error (static string). */
const char *nvx_http_conn_error(const nvx_http_conn *c);

nvx_http_phase nvx_http_conn_phase(const nvx_http_conn *c);

/* Forgets the answered request and readies the parser for the next one. */
void nvx_http_conn_next(nvx_http_conn *c);

/* The reason phrase of a status ("Unknown" for others). */
const char *nvx_http_reason(int status);

/* Writes a response head into buf[cap]: status line, Content-Type (ctype
 * may be NULL for none), Content-Length (content_length >= 0) or
 * Transfer-Encoding: chunked (content_length < 0), Connection: keep-alive or
 * close. Returns its length or -EMSGSIZE. */
int nvx_http_head_build(int status, const char *ctype, int64_t content_length, bool keep_alive,
                        char *buf, size_t cap);

/* A JSON error body {"error": msg} (msg escaped by jansson, cut to
 * NVX_HTTP_ERR_MSG_MAX bytes) as a malloc'd string the caller frees.
 * Returns 0 or -ENOMEM. */
int nvx_http_error_json(const char *msg, char **ret, size_t *ret_len);

/* A whole response: head + body (copied) in one malloc'd buffer the caller
 * frees. Returns 0, -ENOMEM or -EMSGSIZE. */
int nvx_http_response_build(int status, const char *ctype, const void *body, size_t body_len,
                            bool keep_alive, bool head_only, char **ret, size_t *ret_len);

/* A route table entry: method and exact path. */
typedef struct nvx_http_route {
    nvx_http_method method;
    const char *path;
} nvx_http_route;

/* Finds path+method in routes[0..n). Returns the index, -ENOENT (no such
 * path: 404) or -EOPNOTSUPP (the path exists with other methods: 405). A
 * HEAD matches a GET route. */
int nvx_http_route_find(const nvx_http_route *routes, size_t n, const nvx_http_req *req);

/* True if host (a Host header: "name", "name:port", "[v6]:port") names
 * the loopback: localhost, 127.x.y.z or [::1]. A server on the loopback
 * answers only such requests, so that a web page cannot reach it through
 * DNS rebinding (a name of the attacker's that resolves to 127.0.0.1). */
bool nvx_http_host_is_loopback(const char *host);

/* True if origin (an Origin header: "http://HOST[:PORT]") is a page served
 * from the loopback. A server on the loopback refuses requests whose
 * Origin is another: a web page on any site can make a browser send a
 * simple POST to 127.0.0.1 (CSRF), which would let it pull models or run
 * generation on this node; the browser always says where the page came
 * from. */
bool nvx_http_origin_is_loopback(const char *origin);

#endif
