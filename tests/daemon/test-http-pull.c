/* SPDX-License-Identifier: MIT */
/* /api/pull, /metrics and /api/nvx/status of real nvxd processes
 * (nvxd-test) on 127.0.0.1: a fetcher pulls a model from a seeder that
 * serves slowly (NVX_TEST_SERVE_DELAY_MS), so that the transfer runs while
 * the test looks: Ollama's progress objects, the transfer in the status
 * JSON, metrics that promtool accepts (Debian's prometheus package;
 * skipped when promtool is absent), a ticket ID@HOST:PORT that reaches a
 * peer the node was never told of, clear errors for bad targets and
 * bodies, a client gone mid-pull (the fetch is dropped, resumable), and a
 * client sending its body one byte a second (408) while a pull and other
 * requests go on. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "httputil.h"

enum {
    MODEL_BYTES = 4 << 20,
    TIMEOUT_MS = 1500, /* the fetcher's HTTP timeouts */
    SLOW_BYTE_MS = 1000,
};

static du_daemon s, f, t; /* seeder (slow), fetcher, a node without peers */
static unsigned fport, tport;

static int
setup(void **state)
{
    du_setup("pull");
    static const char *const senv[] = { "NVX_TEST_SERVE_DELAY_MS=150", NULL };
    static const char *const fenv[] = { "NVX_TEST_HTTP_TIMEOUT_MS=1500", NULL };
    static const char *const off[] = { "--http", "off", NULL };
    static const char *const on[] = { "--http", "127.0.0.1:0", NULL };
    du_start_args(&s, "s", senv, off);
    const char *fargs[] = { "--http", "127.0.0.1:0", "--peer", s.addr, NULL };
    du_start_args(&f, "f", fenv, fargs);
    du_start_args(&t, "t", NULL, on);
    fport = hu_api_port(&f);
    tport = hu_api_port(&t);
    du_wait_peers(&f, 1);
    return fport && tport ? 0 : -1;
}

static int
teardown(void **state)
{
    du_stop(&s);
    du_stop(&f);
    du_stop(&t);
    du_teardown();
    return 0;
}

static char *
get(unsigned port, const char *path)
{
    char *body = NULL;
    assert_int_equal(hu_request(port, "GET", path, NULL, &body), 200);
    return body;
}

/* promtool's verdict on text, or -1 when promtool is absent. */
static int
promtool(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return -1;
    FILE *p = popen("promtool check metrics >&2", "w");
    assert_non_null(p);
    fputs(text, p);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static void
test_pull_streams_progress(void **state)
{
    char *id = du_add_model(&s, "m1", MODEL_BYTES, 1);
    int fd = hu_dial(fport);
    char req[256];
    snprintf(req, sizeof(req), "{\"model\":\"%s:latest\"}", id);
    hu_send(fd, "POST", "/api/pull", req);
    static char buf[HU_RESP_MAX];
    size_t len = hu_read_until(fd, buf, 0, "\"completed\":");
    /* While it runs: the status JSON shows the transfer, other requests
     * are answered. */
    char *st = get(fport, "/api/nvx/status");
    char want[128];
    snprintf(want, sizeof(want), "\"model\":\"%s\",\"state\":", id);
    if (!strstr(st, want))
        fail_msg("no transfer of %s in %s", id, st);
    free(st);
    free(get(fport, "/api/tags"));
    len = hu_read_until(fd, buf, len, "{\"status\":\"success\"}\n");
    close(fd);
    assert_non_null(strstr(buf, "{\"status\":\"pulling manifest\"}\n"));
    snprintf(want, sizeof(want),
             "{\"status\":\"downloading %.16s\",\"digest\":\"%s\",\"total\":%d,", id, id,
             MODEL_BYTES);
    assert_non_null(strstr(buf, want));
    snprintf(want, sizeof(want), "\"total\":%d,\"completed\":%d}", MODEL_BYTES, MODEL_BYTES);
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "{\"status\":\"verifying sha256 digest\"}\n"));
    du_check_copy(&f, id, "m1");
    /* Kept (seeded, left by plain gc), as Ollama keeps what it pulls;
     * listed by /api/tags. */
    char *tags = get(fport, "/api/tags");
    assert_non_null(strstr(tags, id));
    free(tags);
    st = get(fport, "/api/nvx/status");
    assert_non_null(strstr(st, "\"kept\":true"));
    free(st);
    /* The metrics count it, and promtool accepts them. */
    char *m = get(fport, "/metrics");
    assert_non_null(strstr(m, "nvx_transfers_ended_total{result=\"done\"} 1\n"));
    assert_null(strstr(m, "nvx_chunks_verified_total 0\n"));
    assert_non_null(strstr(m, "nvx_peers{class=\"loopback\"} 1\n"));
    assert_non_null(strstr(m, "# TYPE nvx_generation_tokens_total counter\n"));
    int pr = promtool(m);
    if (pr < 0)
        print_message("promtool not found (Debian package prometheus): metrics not linted\n");
    else
        assert_int_equal(pr, 0);
    free(m);
    free(id);
}

static void
test_pull_errors(void **state)
{
    char *id = du_add_model(&s, "m0", 64 << 10, 7);
    char ok[256];
    snprintf(ok, sizeof(ok), "{\"model\":\"%s\",\"stream\":false}", id);
    static const struct {
        const char *body, *why;
        int status;
    } cases[] = {
        { "{\"model\":\"zz\",\"stream\":false}", "not a model id", 400 },
        { "{\"model\":\"bob/thing\",\"stream\":false}", "no record of bob/thing", 404 },
        { "{\"stream\":false}", "model: required", 400 },
        { "{\"model\":7}", "model: required", 400 },
        { "{\"model\":\"x\",\"stream\":1}", "stream:", 400 },
        { "{\"model\":", "body:", 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = NULL;
        int st = hu_post(fport, "/api/pull", cases[i].body, &body);
        if (st != cases[i].status || !strstr(body, "\"error\"") || !strstr(body, cases[i].why))
            fail_msg("%s: %d %s", cases[i].body, st, body);
        free(body);
    }
    /* Streamed, a bad target ends the stream with an error line. */
    char *body = NULL;
    assert_int_equal(hu_post(fport, "/api/pull", "{\"model\":\"zz\"}", &body), 200);
    assert_non_null(strstr(body, "{\"status\":\"pulling manifest\"}\n{\"error\":\"not a model id"));
    free(body);
    /* Not streamed: one object. */
    assert_int_equal(hu_post(fport, "/api/pull", ok, &body), 200);
    assert_string_equal(body, "{\"status\":\"success\"}");
    free(body);
    /* A body over 1 MiB is refused before it is read. */
    int fd = hu_dial(fport);
    const char *big =
        "POST /api/pull HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000000\r\n\r\n";
    assert_int_equal(send(fd, big, strlen(big), MSG_NOSIGNAL), (ssize_t)strlen(big));
    static char buf[HU_RESP_MAX];
    hu_read_until(fd, buf, 0, "HTTP/1.1 413 ");
    close(fd);
    free(id);
}

static void
test_ticket(void **state)
{
    char *id = du_add_model(&s, "m2", 256 << 10, 2);
    char req[512], *body = NULL;
    snprintf(req, sizeof(req), "{\"model\":\"%s@%s\",\"stream\":false}", id, s.addr);
    int st = hu_post(tport, "/api/pull", req, &body);
    if (st != 200)
        fail_msg("ticket pull: %d %s", st, body);
    free(body);
    du_check_copy(&t, id, "m2");
    free(id);

    /* nvx ticket's nvx1... string: its address is dialled, pinned to its
     * node id; a damaged one is refused in one line. */
    id = du_add_model(&s, "m3", 256 << 10, 3);
    char *ticket = NULL;
    du_nvx_ok(&s, &ticket, "ticket", id, NULL);
    ticket[strcspn(ticket, "\n")] = '\0';
    snprintf(req, sizeof(req), "{\"model\":\"%s\",\"stream\":false}", ticket);
    st = hu_post(tport, "/api/pull", req, &body);
    if (st != 200)
        fail_msg("nvx1 ticket pull: %d %s", st, body);
    free(body);
    du_check_copy(&t, id, "m3");
    ticket[strlen(ticket) / 2] ^= 1; /* one character changed */
    snprintf(req, sizeof(req), "{\"model\":\"%s\",\"stream\":false}", ticket);
    st = hu_post(tport, "/api/pull", req, &body);
    assert_true(st >= 400);
    assert_non_null(strstr(body, "not a valid ticket"));
    free(body);
    free(ticket);
    free(id);
}

/* Polls f's status until it shows no transfer; returns the status. */
static char *
wait_no_transfer(void)
{
    uint64_t end = du_now_ms() + DU_WAIT_MS;
    for (;;) {
        char *st = get(fport, "/api/nvx/status");
        if (strstr(st, "\"transfers\":[]"))
            return st;
        if (du_now_ms() >= end)
            fail_msg("transfer still running: %s", st);
        free(st);
        du_sleep_ms(DU_POLL_MS);
    }
}

static void
test_gone_and_slow(void **state)
{
    char *id = du_add_model(&s, "m3", MODEL_BYTES, 3);
    char req[256];
    snprintf(req, sizeof(req), "{\"model\":\"%s\"}", id);
    /* A client that goes mid-pull: the fetch is dropped. */
    int fd = hu_dial(fport);
    hu_send(fd, "POST", "/api/pull", req);
    static char buf[HU_RESP_MAX];
    hu_read_until(fd, buf, 0, "\"completed\":");
    close(fd);
    char *st = wait_no_transfer();
    assert_null(strstr(st, "\"transfers_cancelled\":0"));
    free(st);
    /* A slow client (a byte a second of its body) is cut off with 408
     * while the pull, resumed, goes on and other requests are answered. */
    int pull = hu_dial(fport);
    hu_send(pull, "POST", "/api/pull", req);
    int slow = hu_dial(fport);
    const char *head = "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 64\r\n\r\n";
    assert_int_equal(send(slow, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    uint64_t start = du_now_ms();
    size_t len = 0;
    bool cut = false;
    while (!cut && du_now_ms() - start < DU_WAIT_MS) {
        (void)send(slow, "{", 1, MSG_NOSIGNAL);
        free(get(fport, "/api/version"));
        struct pollfd pfd = { .fd = slow, .events = POLLIN };
        if (poll(&pfd, 1, SLOW_BYTE_MS) > 0) {
            ssize_t n = recv(slow, buf + len, HU_RESP_MAX - 1 - len, 0);
            if (n > 0) {
                len += (size_t)n;
                buf[len] = '\0';
            }
            cut = n <= 0 || strstr(buf, "HTTP/1.1 408 ");
        }
    }
    close(slow);
    assert_non_null(strstr(buf, "HTTP/1.1 408 "));
    assert_true(du_now_ms() - start >= TIMEOUT_MS - 100);
    static char pbuf[HU_RESP_MAX];
    hu_read_until(pull, pbuf, 0, "{\"status\":\"success\"}\n");
    close(pull);
    du_check_copy(&f, id, "m3");
    free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_streams_progress),
        cmocka_unit_test(test_pull_errors),
        cmocka_unit_test(test_ticket),
        cmocka_unit_test(test_gone_and_slow),
    };
    return du_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
