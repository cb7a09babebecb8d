/* SPDX-License-Identifier: MIT */
/* The HTTP API of a real nvxd (nvxd-test, --http 127.0.0.1:0, timeouts
 * shortened by NVX_TEST_HTTP_TIMEOUT_MS) driven over raw sockets: the
 * Ollama read endpoints on one keep-alive connection, clear errors, a
 * slow client (one byte per tick) cut off with 408 while another client is
 * answered, an idle keep-alive connection closed. 127.0.0.1 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"

enum {
    TIMEOUT_MS = 1000, /* the daemon's head/body/idle timeouts in this test */
    TICK_MS = 100,     /* the slow client's pace */
    RESP_MAX = 256 * 1024,
};

static du_daemon d;
static unsigned port;

static int
setup(void **state)
{
    du_setup("http");
    static const char *const env[] = { "NVX_TEST_HTTP_TIMEOUT_MS=1000", NULL };
    static const char *const args[] = { "--http", "127.0.0.1:0", NULL };
    du_start_args(&d, "h", env, args);
    char *log = du_slurp(d.log);
    const char *p = strstr(log, "HTTP API on http://127.0.0.1:");
    if (!p) {
        du_dump_log(&d);
        free(log);
        return -1;
    }
    port = (unsigned)strtoul(p + strlen("HTTP API on http://127.0.0.1:"), NULL, 10);
    free(log);
    return 0;
}

static int
teardown(void **state)
{
    du_stop(&d);
    du_teardown();
    return 0;
}

static int
dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void
send_str(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        assert_true(n > 0);
        off += (size_t)n;
    }
}

/* Reads until EOF or until buf holds one whole Content-Length response
 * after *off; waits at most DU_WAIT_MS. Returns the status (0 on EOF
 * before a response); *body points at its body. */
static int
read_resp(int fd, char *buf, size_t *len, size_t *off, const char **body, size_t *blen)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    for (;;) {
        char *start = buf + *off;
        buf[*len] = '\0';
        char *hend = strstr(start, "\r\n\r\n");
        if (hend) {
            const char *cl = strstr(start, "Content-Length: ");
            assert_non_null(cl);
            size_t want = strtoul(cl + 16, NULL, 10);
            size_t have = *len - (size_t)(hend + 4 - buf);
            if (have >= want) {
                int status = atoi(start + 9);
                *body = hend + 4;
                *blen = want;
                *off = (size_t)(hend + 4 - buf) + want;
                return status;
            }
        }
        uint64_t now = du_now_ms();
        if (now >= end)
            fail_msg("no response in %d ms", DU_WAIT_MS);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t n = recv(fd, buf + *len, RESP_MAX - 1 - *len, 0);
        if (n <= 0)
            return 0;
        *len += (size_t)n;
    }
}

/* One request on fd; the response's status, its body copied to a
 * malloc'd string in *ret_body (may be NULL). */
static int
req(int fd, const char *text, char **ret_body)
{
    static char buf[RESP_MAX];
    size_t len = 0, off = 0, blen;
    const char *body;
    send_str(fd, text);
    int st = read_resp(fd, buf, &len, &off, &body, &blen);
    if (ret_body)
        *ret_body = strndup(st ? body : "", st ? blen : 0);
    return st;
}

/* True once the server closes fd (bounded wait). */
static bool
closed_within(int fd, unsigned ms)
{
    uint64_t end = du_now_ms() + ms;
    char b[4096];
    while (du_now_ms() < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, DU_POLL_MS) > 0) {
            ssize_t n = recv(fd, b, sizeof(b), 0);
            if (n <= 0)
                return true;
        }
    }
    return false;
}

static void
test_read_endpoints(void **state)
{
    char *id = du_add_model(&d, "m1", 300000, 1);
    char *body = NULL;
    int fd = dial();
    assert_int_equal(req(fd, "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n", &body), 200);
    assert_non_null(strstr(body, "\"version\""));
    free(body);
    /* Same connection (keep-alive): the model is listed by id prefix. */
    assert_int_equal(req(fd, "GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", &body), 200);
    char want[128];
    snprintf(want, sizeof(want), "\"digest\":\"%s\"", id);
    assert_non_null(strstr(body, want));
    snprintf(want, sizeof(want), "\"name\":\"%.16s\"", id);
    assert_non_null(strstr(body, want));
    assert_non_null(strstr(body, "\"size\":300000"));
    free(body);
    char r[512];
    snprintf(r, sizeof(r),
             "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 22\r\n\r\n"
             "{\"model\":\"%.10s\"}",
             id);
    assert_int_equal(req(fd, r, &body), 200);
    assert_non_null(strstr(body, "\"nvx.pinned\":true"));
    free(body);
    assert_int_equal(req(fd,
                         "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
                         "18\r\n\r\n{\"model\":\"nosuch\"}",
                         &body),
                     404);
    assert_non_null(strstr(body, "\"error\""));
    free(body);
    assert_int_equal(req(fd, "GET /api/ps HTTP/1.1\r\nHost: localhost\r\n\r\n", &body), 200);
    assert_string_equal(body, "{\"models\":[]}");
    free(body);
    /* A pinned model is not deleted; unpinned, it is. */
    snprintf(r, sizeof(r),
             "DELETE /api/delete HTTP/1.1\r\nHost: localhost\r\nContent-Length: 22\r\n\r\n"
             "{\"model\":\"%.10s\"}",
             id);
    assert_int_equal(req(fd, r, &body), 409);
    free(body);
    du_nvx_ok(&d, NULL, "unpin", id, NULL);
    assert_int_equal(req(fd, r, NULL), 200);
    assert_int_equal(req(fd, "GET /api/tags HTTP/1.1\r\nHost: localhost\r\n\r\n", &body), 200);
    assert_null(strstr(body, id));
    free(body);
    assert_int_equal(req(fd, r, NULL), 404);
    close(fd);
    free(id);
}

static void
test_errors(void **state)
{
    static const struct {
        const char *req;
        int status;
    } t[] = {
        { "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n", 404 },
        { "POST /api/tags HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", 405 },
        { "GET /api/tags HTTP/1.1\r\nHost: rebind.example:4748\r\n\r\n", 403 },
        /* CSRF: a page of another site posting to the loopback. */
        { "POST /api/pull HTTP/1.1\r\nHost: 127.0.0.1:4748\r\nOrigin: https://evil.example\r\n"
          "Content-Length: 2\r\n\r\n{}",
          403 },
        { "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9\r\n\r\n[not json", 400 },
        { "POST /api/show HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n", 413 },
        { "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nBroken\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int fd = dial();
        char *body = NULL;
        int st = req(fd, t[i].req, &body);
        if (st != t[i].status)
            fail_msg("case %zu: status %d", i, st);
        assert_non_null(strstr(body, "{\"error\":\""));
        free(body);
        close(fd);
    }
    /* Pipelined: two requests in one write, two answers in order. */
    int fd = dial();
    static char buf[RESP_MAX];
    size_t len = 0, off = 0, blen;
    const char *body;
    send_str(fd, "GET /api/ps HTTP/1.1\r\nHost: localhost\r\n\r\n"
                 "GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_resp(fd, buf, &len, &off, &body, &blen), 200);
    assert_int_equal(read_resp(fd, buf, &len, &off, &body, &blen), 404);
    assert_true(closed_within(fd, DU_WAIT_MS));
    close(fd);
}

static void
test_slow_and_idle(void **state)
{
    /* A slow client: one byte per tick never finishes its head in time. */
    int slow = dial();
    int idle = dial();
    const char *line = "GET /api/version HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    uint64_t start = du_now_ms();
    static char buf[RESP_MAX];
    size_t len = 0;
    bool got_408 = false, answered_other = false;
    for (size_t i = 0; i < strlen(line) && !got_408; i++) {
        if (send(slow, line + i, 1, MSG_NOSIGNAL) != 1)
            break;
        /* Meanwhile another client is answered at once. */
        if (!answered_other) {
            int fd = dial();
            assert_int_equal(req(fd, "GET /api/ps HTTP/1.1\r\nHost: localhost\r\n\r\n", NULL), 200);
            close(fd);
            answered_other = true;
        }
        struct pollfd pfd = { .fd = slow, .events = POLLIN };
        if (poll(&pfd, 1, TICK_MS) > 0) {
            ssize_t n = recv(slow, buf + len, RESP_MAX - 1 - len, 0);
            if (n > 0) {
                len += (size_t)n;
                buf[len] = '\0';
                got_408 = strstr(buf, "HTTP/1.1 408 ") != NULL;
            }
        }
    }
    assert_true(answered_other);
    assert_true(got_408);
    assert_non_null(strstr(buf, "{\"error\":"));
    /* Cut off after the head timeout, not at the end of the bytes. */
    assert_true(du_now_ms() - start >= TIMEOUT_MS - TICK_MS);
    assert_true(closed_within(slow, DU_WAIT_MS));
    close(slow);
    /* The idle connection (no byte sent) is closed silently. */
    assert_true(closed_within(idle, DU_WAIT_MS));
    close(idle);
    /* The daemon still answers. */
    int fd = dial();
    assert_int_equal(req(fd, "GET /api/version HTTP/1.1\r\nHost: localhost\r\n\r\n", NULL), 200);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_endpoints),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_slow_and_idle),
    };
    return du_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
