/* SPDX-License-Identifier: MIT */
#include "daemon/http.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    FIELD_MAX = 32, /* bytes of a header name we look at (longer ones are ignored) */
};

struct nvx_http_conn {
    http_parser p;
    http_parser_settings cb;
    nvx_http_phase phase;
    size_t head_seen; /* bytes fed while in the head of this request */
    char url[NVX_HTTP_URL_MAX + 1];
    size_t url_len;
    char field[FIELD_MAX + 1];
    size_t field_len;
    bool field_overlong, in_value, value_is_host, value_is_origin;
    char host[NVX_HTTP_HOST_MAX + 1];
    size_t host_len;
    char origin[NVX_HTTP_HOST_MAX + 1];
    size_t origin_len;
    char *body;
    size_t body_len, body_cap;
    nvx_http_req req;
    bool ready, failed;
    int status;
    const char *error;
};

static int
fail(nvx_http_conn *c, int status, const char *why)
{
    if (!c->failed) {
        c->failed = true;
        c->status = status;
        c->error = why;
    }
    return -1; /* http_parser: a non-zero callback result stops it */
}

static int
on_begin(http_parser *p)
{
    nvx_http_conn *c = p->data;
    c->phase = NVX_HTTP_IN_HEAD;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    nvx_http_conn *c = p->data;
    if (len > NVX_HTTP_URL_MAX - c->url_len)
        return fail(c, 414, "request target too long");
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
    nvx_http_conn *c = p->data;
    if (c->in_value) { /* a new header begins */
        c->in_value = false;
        c->field_len = 0;
        c->field_overlong = false;
    }
    if (len > FIELD_MAX - c->field_len) {
        c->field_overlong = true;
        return 0;
    }
    memcpy(c->field + c->field_len, at, len);
    c->field_len += len;
    c->field[c->field_len] = '\0';
    return 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
    nvx_http_conn *c = p->data;
    if (!c->in_value) {
        c->in_value = true;
        c->value_is_host = !c->field_overlong && strcasecmp(c->field, "host") == 0;
        c->value_is_origin = !c->field_overlong && strcasecmp(c->field, "origin") == 0;
        if ((c->value_is_host && c->host_len) || (c->value_is_origin && c->origin_len))
            return fail(c, 400, "more than one Host or Origin header");
    }
    char *v = c->value_is_host ? c->host : c->value_is_origin ? c->origin : NULL;
    size_t *vlen = c->value_is_host ? &c->host_len : &c->origin_len;
    if (!v)
        return 0;
    if (len > NVX_HTTP_HOST_MAX - *vlen)
        return fail(c, 400, "Host or Origin header too long");
    memcpy(v + *vlen, at, len);
    *vlen += len;
    v[*vlen] = '\0';
    return 0;
}

static int
on_headers(http_parser *p)
{
    nvx_http_conn *c = p->data;
    c->phase = NVX_HTTP_IN_BODY;
    /* http_parser sets content_length to ULLONG_MAX when there is none. */
    if (p->content_length != ULLONG_MAX && p->content_length > NVX_HTTP_BODY_MAX)
        return fail(c, 413, "request body too large");
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    nvx_http_conn *c = p->data;
    if (len > NVX_HTTP_BODY_MAX - c->body_len)
        return fail(c, 413, "request body too large");
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + len + 1)
            cap *= 2;
        char *nb = realloc(c->body, cap);
        if (!nb)
            return fail(c, 503, "out of memory");
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static nvx_http_method
map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return NVX_HTTP_GET;
    case HTTP_HEAD:
        return NVX_HTTP_HEAD;
    case HTTP_POST:
        return NVX_HTTP_POST;
    case HTTP_DELETE:
        return NVX_HTTP_DELETE;
    case HTTP_OPTIONS:
        return NVX_HTTP_OPTIONS;
    default:
        return NVX_HTTP_OTHER;
    }
}

static int
on_complete(http_parser *p)
{
    nvx_http_conn *c = p->data;
    /* Origin-form only ("/path?query"): we are no proxy. */
    if (c->url_len == 0 || c->url[0] != '/')
        return fail(c, 400, "request target must be a path");
    char *hash = strchr(c->url, '#');
    if (hash)
        *hash = '\0';
    char *q = strchr(c->url, '?');
    if (q)
        *q++ = '\0';
    if (!c->body) {
        /* req.body always points at a terminated string. */
        c->body = malloc(1);
        if (!c->body)
            return fail(c, 503, "out of memory");
        c->body_cap = 1;
        c->body[0] = '\0';
    }
    c->req = (nvx_http_req){
        .method = map_method(p->method),
        .path = c->url,
        .query = q ? q : "",
        .host = c->host_len ? c->host : NULL,
        .origin = c->origin_len ? c->origin : NULL,
        .body = c->body,
        .body_len = c->body_len,
        /* An upgrade (or CONNECT) hands the rest of the stream to another
         * protocol: we answer and close instead. */
        .keep_alive = http_should_keep_alive(p) && !p->upgrade,
        .head_only = p->method == HTTP_HEAD,
    };
    c->phase = NVX_HTTP_DONE;
    c->ready = true;
    http_parser_pause(p, 1); /* pipelined bytes wait for nvx_http_conn_next() */
    return 0;
}

int
nvx_http_conn_new(nvx_http_conn **ret)
{
    nvx_http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    http_parser_settings_init(&c->cb);
    c->cb.on_message_begin = on_begin;
    c->cb.on_url = on_url;
    c->cb.on_header_field = on_field;
    c->cb.on_header_value = on_value;
    c->cb.on_headers_complete = on_headers;
    c->cb.on_body = on_body;
    c->cb.on_message_complete = on_complete;
    *ret = c;
    return 0;
}

void
nvx_http_conn_free(nvx_http_conn *c)
{
    if (!c)
        return;
    free(c->body);
    free(c);
}

static int
parser_error(nvx_http_conn *c)
{
    if (!c->failed) {
        enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
        fail(c, e == HPE_INVALID_METHOD ? 501 : 400, http_errno_description(e));
    }
    return c->status == 413 || c->status == 414 || c->status == 431 ? -EMSGSIZE : -EBADMSG;
}

int
nvx_http_conn_feed(nvx_http_conn *c, const char *data, size_t len, size_t *ret_used)
{
    *ret_used = 0;
    if (c->ready)
        return -EINVAL;
    if (c->failed)
        return parser_error(c);
    if (len == 0) {
        if (c->phase == NVX_HTTP_IDLE)
            return NVX_HTTP_MORE;
        fail(c, 400, "connection closed inside a request");
        return -EBADMSG;
    }
    size_t used = 0;
    while (used < len) {
        size_t piece = len - used;
        bool in_head = c->phase == NVX_HTTP_IDLE || c->phase == NVX_HTTP_IN_HEAD;
        /* Give the parser no more head bytes than the limit allows, so that
         * an endless header line stops at NVX_HTTP_HEAD_MAX. */
        if (in_head) {
            if (c->head_seen >= NVX_HTTP_HEAD_MAX) {
                fail(c, 431, "request head too large");
                return -EMSGSIZE;
            }
            if (piece > NVX_HTTP_HEAD_MAX - c->head_seen)
                piece = NVX_HTTP_HEAD_MAX - c->head_seen;
        }
        size_t n = http_parser_execute(&c->p, &c->cb, data + used, piece);
        if (in_head)
            c->head_seen += n;
        used += n;
        if (c->ready) {
            *ret_used = used;
            return NVX_HTTP_REQUEST;
        }
        if (c->failed || HTTP_PARSER_ERRNO(&c->p) != HPE_OK)
            return parser_error(c);
        if (n < piece) /* cannot happen without an error or a pause */
            return parser_error(c);
    }
    *ret_used = used;
    return NVX_HTTP_MORE;
}

const nvx_http_req *
nvx_http_conn_req(const nvx_http_conn *c)
{
    return c->ready ? &c->req : NULL;
}

int
nvx_http_conn_status(const nvx_http_conn *c)
{
    return c->failed ? c->status : 0;
}

const char *
nvx_http_conn_error(const nvx_http_conn *c)
{
    return c->failed ? c->error : "";
}

nvx_http_phase
nvx_http_conn_phase(const nvx_http_conn *c)
{
    return c->phase;
}

void
nvx_http_conn_next(nvx_http_conn *c)
{
    c->ready = false;
    c->phase = NVX_HTTP_IDLE;
    c->head_seen = 0;
    c->url_len = 0;
    c->url[0] = '\0';
    c->field_len = 0;
    c->field_overlong = false;
    c->in_value = false;
    c->value_is_host = c->value_is_origin = false;
    c->host_len = c->origin_len = 0;
    c->host[0] = c->origin[0] = '\0';
    c->body_len = 0;
    if (c->body)
        c->body[0] = '\0';
    /* A large body's buffer is not kept for the whole keep-alive life. */
    if (c->body_cap > 64 * 1024) {
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    memset(&c->req, 0, sizeof(c->req));
    http_parser_pause(&c->p, 0);
}

const char *
nvx_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

int
nvx_http_head_build(int status, const char *ctype, int64_t content_length, bool keep_alive,
                    char *buf, size_t cap)
{
    char len_line[64];
    if (content_length >= 0)
        snprintf(len_line, sizeof(len_line), "Content-Length: %lld\r\n", (long long)content_length);
    else
        snprintf(len_line, sizeof(len_line), "Transfer-Encoding: chunked\r\n");
    int n =
        snprintf(buf, cap,
                 "HTTP/1.1 %d %s\r\n"
                 "%s%s%s"
                 "%s"
                 "Cache-Control: no-store\r\n"
                 "Connection: %s\r\n"
                 "\r\n",
                 status, nvx_http_reason(status), ctype ? "Content-Type: " : "", ctype ? ctype : "",
                 ctype ? "\r\n" : "", len_line, keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= cap)
        return -EMSGSIZE;
    return n;
}

int
nvx_http_error_json(const char *msg, char **ret, size_t *ret_len)
{
    char cut[NVX_HTTP_ERR_MSG_MAX + 1];
    snprintf(cut, sizeof(cut), "%s", msg);
    /* jansson refuses invalid UTF-8: the message may quote client bytes. */
    json_t *o = json_pack("{s:s%}", "error", cut, strlen(cut));
    if (!o)
        o = json_pack("{s:s}", "error", "invalid request");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return -ENOMEM;
    *ret = s;
    *ret_len = strlen(s);
    return 0;
}

int
nvx_http_response_build(int status, const char *ctype, const void *body, size_t body_len,
                        bool keep_alive, bool head_only, char **ret, size_t *ret_len)
{
    char head[NVX_HTTP_RESP_HEAD_MAX];
    int n = nvx_http_head_build(status, ctype, (int64_t)body_len, keep_alive, head, sizeof(head));
    if (n < 0)
        return n;
    size_t blen = head_only ? 0 : body_len;
    char *buf = malloc((size_t)n + blen + 1);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, head, (size_t)n);
    if (blen)
        memcpy(buf + n, body, blen);
    buf[(size_t)n + blen] = '\0';
    *ret = buf;
    *ret_len = (size_t)n + blen;
    return 0;
}

int
nvx_http_route_find(const nvx_http_route *routes, size_t n, const nvx_http_req *req)
{
    bool path_found = false;
    nvx_http_method m = req->method == NVX_HTTP_HEAD ? NVX_HTTP_GET : req->method;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        path_found = true;
        if (routes[i].method == m)
            return (int)i;
    }
    return path_found ? -EOPNOTSUPP : -ENOENT;
}

bool
nvx_http_host_is_loopback(const char *host)
{
    if (!host)
        return false; /* HTTP/1.1 requires Host; a browser always sends it */
    size_t n = strlen(host);
    /* Strip the port: "name:port", "[v6]:port". */
    const char *end = host + n;
    if (host[0] == '[') {
        const char *rb = strchr(host, ']');
        if (!rb)
            return false;
        return (size_t)(rb - host) == 4 && strncmp(host, "[::1]", 5) == 0;
    }
    const char *colon = strchr(host, ':');
    if (colon)
        end = colon;
    size_t hl = (size_t)(end - host);
    if (hl == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    /* 127.0.0.0/8 in dotted form. */
    if (hl < 7 || hl > 15 || strncmp(host, "127.", 4) != 0)
        return false;
    int dots = 0;
    for (size_t i = 0; i < hl; i++) {
        if (host[i] == '.')
            dots++;
        else if (host[i] < '0' || host[i] > '9')
            return false;
    }
    return dots == 3;
}

bool
nvx_http_origin_is_loopback(const char *origin)
{
    static const char *const schemes[] = { "http://", "https://" };
    for (size_t i = 0; origin && i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(origin, schemes[i], n) == 0)
            return nvx_http_host_is_loopback(origin + n);
    }
    return false; /* "null" (a file or sandboxed page), or garbage */
}
