/* SPDX-License-Identifier: MIT */
/* daemon/http.c: the request core under well-formed, pipelined, split,
 * oversized and malformed input; limits at 0/max/max+1; routing; the
 * response and error builders; the loopback Host check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/http.h"

/* Feeds all of s in one piece; returns the result and *used. */
static int
feed(nvx_http_conn *c, const char *s, size_t len, size_t *used)
{
    return nvx_http_conn_feed(c, s, len, used);
}

static nvx_http_conn *
conn(void)
{
    nvx_http_conn *c = NULL;
    assert_int_equal(nvx_http_conn_new(&c), 0);
    return c;
}

static void
test_simple_get(void **state)
{
    (void)state;
    nvx_http_conn *c = conn();
    const char *r = "GET /api/tags?x=1 HTTP/1.1\r\nHost: localhost:4748\r\n\r\n";
    size_t used;
    assert_int_equal(feed(c, r, strlen(r), &used), NVX_HTTP_REQUEST);
    assert_int_equal(used, strlen(r));
    const nvx_http_req *q = nvx_http_conn_req(c);
    assert_non_null(q);
    assert_int_equal(q->method, NVX_HTTP_GET);
    assert_string_equal(q->path, "/api/tags");
    assert_string_equal(q->query, "x=1");
    assert_string_equal(q->host, "localhost:4748");
    assert_int_equal(q->body_len, 0);
    assert_string_equal(q->body, "");
    assert_true(q->keep_alive);
    /* Feeding before the request is answered is a caller bug. */
    assert_int_equal(feed(c, r, strlen(r), &used), -EINVAL);
    nvx_http_conn_next(c);
    assert_null(nvx_http_conn_req(c));
    assert_int_equal(nvx_http_conn_phase(c), NVX_HTTP_IDLE);
    /* EOF between requests is a clean close. */
    assert_int_equal(feed(c, NULL, 0, &used), NVX_HTTP_MORE);
    nvx_http_conn_free(c);
}

static void
test_pipelined_and_split(void **state)
{
    (void)state;
    const char *two = "POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n"
                      "hello"
                      "DELETE /api/delete HTTP/1.1\r\nHost: [::1]:1\r\nTransfer-Encoding: "
                      "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    size_t len = strlen(two);
    /* One piece: two requests, the second fed after the first is answered. */
    nvx_http_conn *c = conn();
    size_t used;
    assert_int_equal(feed(c, two, len, &used), NVX_HTTP_REQUEST);
    assert_true(used < len);
    assert_int_equal(nvx_http_conn_req(c)->method, NVX_HTTP_POST);
    assert_string_equal(nvx_http_conn_req(c)->body, "hello");
    nvx_http_conn_next(c);
    size_t used2;
    assert_int_equal(feed(c, two + used, len - used, &used2), NVX_HTTP_REQUEST);
    assert_int_equal(used + used2, len);
    assert_int_equal(nvx_http_conn_req(c)->method, NVX_HTTP_DELETE);
    assert_string_equal(nvx_http_conn_req(c)->body, "abc");
    nvx_http_conn_free(c);

    /* Byte by byte: the same two requests, the phases in order. */
    c = conn();
    int got = 0;
    for (size_t i = 0; i < len; i++) {
        int r = feed(c, two + i, 1, &used);
        assert_true(r >= 0);
        assert_int_equal(used, 1);
        if (r == NVX_HTTP_REQUEST) {
            got++;
            nvx_http_conn_next(c);
        } else if (i == 0) {
            assert_int_equal(nvx_http_conn_phase(c), NVX_HTTP_IN_HEAD);
        }
    }
    assert_int_equal(got, 2);
    nvx_http_conn_free(c);
}

/* A request with a head of exactly total bytes (padded with a header). */
static char *
head_of(size_t total)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: ";
    const char *post = "\r\n\r\n";
    size_t fixed = strlen(pre) + strlen(post);
    assert_true(total > fixed);
    char *s = malloc(total + 1);
    assert_non_null(s);
    memcpy(s, pre, strlen(pre));
    memset(s + strlen(pre), 'a', total - fixed);
    memcpy(s + total - strlen(post), post, strlen(post) + 1);
    return s;
}

static void
test_head_limit(void **state)
{
    (void)state;
    size_t used;
    /* max: accepted; max + 1: 431. */
    char *s = head_of(NVX_HTTP_HEAD_MAX);
    nvx_http_conn *c = conn();
    assert_int_equal(feed(c, s, strlen(s), &used), NVX_HTTP_REQUEST);
    nvx_http_conn_free(c);
    free(s);
    s = head_of(NVX_HTTP_HEAD_MAX + 1);
    c = conn();
    assert_int_equal(feed(c, s, strlen(s), &used), -EMSGSIZE);
    assert_int_equal(nvx_http_conn_status(c), 431);
    /* Broken for good. */
    assert_int_equal(feed(c, "x", 1, &used), -EMSGSIZE);
    nvx_http_conn_free(c);
    free(s);
    /* An endless header line never ending: stopped at the limit. */
    c = conn();
    char junk[4096];
    memset(junk, 'b', sizeof(junk));
    assert_int_equal(feed(c, "GET / HTTP/1.1\r\nX: ", 19, &used), NVX_HTTP_MORE);
    int r = 0;
    for (int i = 0; i < 8 && r >= 0; i++)
        r = feed(c, junk, sizeof(junk), &used);
    assert_int_equal(r, -EMSGSIZE);
    assert_int_equal(nvx_http_conn_status(c), 431);
    nvx_http_conn_free(c);
}

static void
test_body_limit(void **state)
{
    (void)state;
    char req[256];
    size_t used;
    /* Announced over the limit: refused before any body byte. */
    snprintf(req, sizeof(req), "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n",
             NVX_HTTP_BODY_MAX + 1);
    nvx_http_conn *c = conn();
    assert_int_equal(feed(c, req, strlen(req), &used), -EMSGSIZE);
    assert_int_equal(nvx_http_conn_status(c), 413);
    nvx_http_conn_free(c);
    /* Exactly the limit: accepted. */
    snprintf(req, sizeof(req), "POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n",
             NVX_HTTP_BODY_MAX);
    size_t hl = strlen(req);
    char *big = malloc(hl + NVX_HTTP_BODY_MAX);
    assert_non_null(big);
    memcpy(big, req, hl);
    memset(big + hl, '{', NVX_HTTP_BODY_MAX);
    c = conn();
    assert_int_equal(feed(c, big, hl + NVX_HTTP_BODY_MAX, &used), NVX_HTTP_REQUEST);
    assert_int_equal(nvx_http_conn_req(c)->body_len, NVX_HTTP_BODY_MAX);
    nvx_http_conn_free(c);
    free(big);
    /* Chunked: counted as it comes. */
    c = conn();
    const char *ch = "POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(feed(c, ch, strlen(ch), &used), NVX_HTTP_MORE);
    char chunk[70000];
    int n = snprintf(chunk, sizeof(chunk), "%x\r\n", 65536);
    memset(chunk + n, 'z', 65536);
    memcpy(chunk + n + 65536, "\r\n", 2);
    int r = 0;
    for (int i = 0; i < 20 && r >= 0; i++)
        r = feed(c, chunk, (size_t)n + 65536 + 2, &used);
    assert_int_equal(r, -EMSGSIZE);
    assert_int_equal(nvx_http_conn_status(c), 413);
    nvx_http_conn_free(c);
}

struct bad {
    const char *in;
    int status;
};

static void
test_malformed(void **state)
{
    (void)state;
    static const struct bad bad[] = {
        { "garbage\r\n\r\n", 501 },
        { "GET\r\n\r\n", 501 }, /* "GET\r" is no method */
        { "GET http://evil/ HTTP/1.1\r\nHost: localhost\r\n\r\n", 400 },
        { "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
        { "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400 },
        { "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400 },
        { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
        { "GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nvx_http_conn *c = conn();
        size_t used;
        int r = feed(c, bad[i].in, strlen(bad[i].in), &used);
        if (r == NVX_HTTP_MORE) /* some errors only show at EOF */
            r = feed(c, NULL, 0, &used);
        if (r >= 0 || nvx_http_conn_status(c) != bad[i].status)
            fail_msg("case %zu: r %d status %d", i, r, nvx_http_conn_status(c));
        assert_true(strlen(nvx_http_conn_error(c)) > 0);
        nvx_http_conn_free(c);
    }
    /* EOF inside a request. */
    nvx_http_conn *c = conn();
    size_t used;
    assert_int_equal(feed(c, "GET / HT", 8, &used), NVX_HTTP_MORE);
    assert_int_equal(feed(c, NULL, 0, &used), -EBADMSG);
    assert_int_equal(nvx_http_conn_status(c), 400);
    nvx_http_conn_free(c);
    /* Target too long. */
    c = conn();
    char *u = malloc(NVX_HTTP_URL_MAX + 64);
    assert_non_null(u);
    memcpy(u, "GET /", 5);
    memset(u + 5, 'u', NVX_HTTP_URL_MAX);
    memcpy(u + 5 + NVX_HTTP_URL_MAX, " HTTP/1.1\r\n\r\n", 14);
    assert_int_equal(feed(c, u, strlen(u), &used), -EMSGSIZE);
    assert_int_equal(nvx_http_conn_status(c), 414);
    nvx_http_conn_free(c);
    free(u);
}

static void
test_keep_alive(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool keep;
    } t[] = {
        { "GET / HTTP/1.0\r\n\r\n", false },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false },
        { "GET / HTTP/1.1\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        nvx_http_conn *c = conn();
        size_t used;
        assert_int_equal(feed(c, t[i].in, strlen(t[i].in), &used), NVX_HTTP_REQUEST);
        assert_int_equal(nvx_http_conn_req(c)->keep_alive, t[i].keep);
        assert_null(nvx_http_conn_req(c)->host);
        nvx_http_conn_free(c);
    }
}

static void
test_route(void **state)
{
    (void)state;
    static const nvx_http_route rt[] = {
        { NVX_HTTP_GET, "/api/tags" },
        { NVX_HTTP_POST, "/api/show" },
        { NVX_HTTP_DELETE, "/api/show" },
    };
    nvx_http_req q = { .method = NVX_HTTP_GET, .path = "/api/tags" };
    assert_int_equal(nvx_http_route_find(rt, 3, &q), 0);
    q.method = NVX_HTTP_HEAD;
    assert_int_equal(nvx_http_route_find(rt, 3, &q), 0);
    q.method = NVX_HTTP_POST;
    assert_int_equal(nvx_http_route_find(rt, 3, &q), -EOPNOTSUPP);
    q.path = "/api/show";
    assert_int_equal(nvx_http_route_find(rt, 3, &q), 1);
    q.method = NVX_HTTP_DELETE;
    assert_int_equal(nvx_http_route_find(rt, 3, &q), 2);
    q.path = "/api/show/";
    assert_int_equal(nvx_http_route_find(rt, 3, &q), -ENOENT);
    q.path = "/";
    assert_int_equal(nvx_http_route_find(rt, 3, &q), -ENOENT);
}

static void
test_build(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    assert_int_equal(
        nvx_http_response_build(404, "application/json", "{}", 2, true, false, &buf, &len), 0);
    assert_int_equal(len, strlen(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(buf, "Content-Length: 2\r\n"));
    assert_non_null(strstr(buf, "Connection: keep-alive\r\n\r\n{}"));
    free(buf);
    /* HEAD: the length of the body, no body. */
    assert_int_equal(nvx_http_response_build(200, NULL, "abc", 3, false, true, &buf, &len), 0);
    assert_non_null(strstr(buf, "Content-Length: 3\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n\r\n"));
    assert_int_equal(buf[len - 1], '\n');
    free(buf);
    char head[NVX_HTTP_RESP_HEAD_MAX];
    int n = nvx_http_head_build(200, "application/x-ndjson", -1, true, head, sizeof(head));
    assert_true(n > 0);
    assert_non_null(strstr(head, "Transfer-Encoding: chunked\r\n"));
    assert_int_equal(nvx_http_head_build(200, NULL, 0, true, head, 10), -EMSGSIZE);
    /* Error bodies: escaped, cut, invalid UTF-8 replaced. */
    assert_int_equal(nvx_http_error_json("a \"quote\"\n", &buf, &len), 0);
    assert_string_equal(buf, "{\"error\":\"a \\\"quote\\\"\\n\"}");
    free(buf);
    assert_int_equal(nvx_http_error_json("bad \xff byte", &buf, &len), 0);
    assert_string_equal(buf, "{\"error\":\"invalid request\"}");
    free(buf);
    char lng[1000];
    memset(lng, 'x', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    assert_int_equal(nvx_http_error_json(lng, &buf, &len), 0);
    assert_int_equal(len, strlen("{\"error\":\"\"}") + NVX_HTTP_ERR_MSG_MAX);
    free(buf);
}

static void
test_host_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        bool ok;
    } t[] = {
        { "localhost", true },
        { "LOCALHOST:4748", true },
        { "127.0.0.1", true },
        { "127.1.2.3:80", true },
        { "[::1]:4748", true },
        { "[::1]", true },
        { NULL, false },
        { "", false },
        { "evil.com", false },
        { "localhost.evil", false },
        { "127.0.0.1.evil.com", false },
        { "128.0.0.1", false },
        { "[::2]:1", false },
        { "[::1", false },
        { "127.0.0", false },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (nvx_http_host_is_loopback(t[i].host) != t[i].ok)
            fail_msg("host %s", t[i].host ? t[i].host : "(null)");
}

/* A web page elsewhere must not reach a loopback server through the
 * browser (CSRF): its Origin is refused, the loopback's pages are not. */
static void
test_origin_loopback(void **state)
{
    static const struct {
        const char *origin;
        bool ok;
    } t[] = {
        { "http://localhost:4748", true },
        { "http://127.0.0.1:4748", true },
        { "https://127.3.2.1", true },
        { "http://[::1]:80", true },
        { "HTTP://LOCALHOST", true },
        { "http://evil.example", false },
        { "http://127.0.0.1.evil.example", false },
        { "http://localhost.evil.example:4748", false },
        { "null", false },
        { "file://", false },
        { "localhost", false },
        { "", false },
        { NULL, false },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (nvx_http_origin_is_loopback(t[i].origin) != t[i].ok)
            fail_msg("origin %s", t[i].origin ? t[i].origin : "(null)");
    /* The parser hands it over; a second one is malformed. */
    nvx_http_conn *c;
    assert_int_equal(nvx_http_conn_new(&c), 0);
    const char *req =
        "POST /api/pull HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
        "Content-Length: 0\r\n\r\n";
    size_t used = 0;
    assert_int_equal(nvx_http_conn_feed(c, req, strlen(req), &used), NVX_HTTP_REQUEST);
    assert_string_equal(nvx_http_conn_req(c)->origin, "http://evil.example");
    nvx_http_conn_next(c);
    req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://a\r\nOrigin: http://b\r\n\r\n";
    assert_true(nvx_http_conn_feed(c, req, strlen(req), &used) < 0);
    assert_int_equal(nvx_http_conn_status(c), 400);
    nvx_http_conn_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),    cmocka_unit_test(test_pipelined_and_split),
        cmocka_unit_test(test_head_limit),    cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_route),         cmocka_unit_test(test_build),
        cmocka_unit_test(test_host_loopback), cmocka_unit_test(test_origin_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
