/* SPDX-License-Identifier: MIT */
#include "httputil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"

int
hu_dial(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

void
hu_send(int fd, const char *method, const char *path, const char *body)
{
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, blen);
    assert_true(n > 0 && (size_t)n < sizeof(head));
    assert_int_equal(send(fd, head, (size_t)n, MSG_NOSIGNAL), n);
    if (blen)
        assert_int_equal(send(fd, body, blen, MSG_NOSIGNAL), (ssize_t)blen);
}

size_t
hu_read_until(int fd, char *buf, size_t len, const char *want)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    for (;;) {
        buf[len] = '\0';
        if (want && strstr(buf, want))
            return len;
        uint64_t now = du_now_ms();
        if (now >= end)
            fail_msg("no %s in %d ms: %s", want ? want : "EOF", DU_WAIT_MS, buf);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, HU_RESP_MAX - 1 - len, 0);
        if (n <= 0) {
            if (want)
                fail_msg("EOF before %s: %s", want, buf);
            return len;
        }
        len += (size_t)n;
    }
}

int
hu_request(unsigned port, const char *method, const char *path, const char *body, char **ret_body)
{
    char *buf = malloc(HU_RESP_MAX);
    assert_non_null(buf);
    int fd = hu_dial(port);
    hu_send(fd, method, path, body);
    size_t len = hu_read_until(fd, buf, 0, NULL);
    close(fd);
    char *hend = strstr(buf, "\r\n\r\n");
    assert_non_null(hend);
    int status = atoi(buf + 9);
    const char *b = hend + 4;
    char *out = calloc(1, len + 1);
    assert_non_null(out);
    const char *te = strstr(buf, "Transfer-Encoding: chunked");
    if (te && te < hend) {
        size_t o = 0;
        for (;;) {
            char *e = NULL;
            size_t n = strtoul(b, &e, 16);
            assert_true(e && e[0] == '\r' && e[1] == '\n');
            if (n == 0)
                break;
            memcpy(out + o, e + 2, n);
            o += n;
            b = e + 2 + n + 2;
        }
    } else {
        memcpy(out, b, len - (size_t)(b - buf));
    }
    free(buf);
    *ret_body = out;
    return status;
}

int
hu_post(unsigned port, const char *path, const char *body, char **ret_body)
{
    return hu_request(port, "POST", path, body, ret_body);
}

char *
hu_join_field(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    char *out = calloc(1, strlen(s) + 1);
    assert_non_null(out);
    for (const char *p = s; (p = strstr(p, pat));) {
        p += strlen(pat);
        const char *q = strchr(p, '"');
        assert_non_null(q);
        assert_null(memchr(p, '\\', (size_t)(q - p)));
        strncat(out, p, (size_t)(q - p));
        p = q;
    }
    return out;
}

long long
hu_int_field(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

unsigned
hu_api_port(const du_daemon *d)
{
    static const char line[] = "HTTP API on http://127.0.0.1:";
    char *log = du_slurp(d->log);
    const char *p = log ? strstr(log, line) : NULL;
    unsigned port = p ? (unsigned)strtoul(p + strlen(line), NULL, 10) : 0;
    free(log);
    return port;
}
