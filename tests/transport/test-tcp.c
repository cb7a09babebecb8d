/* SPDX-License-Identifier: MIT */
/* Tests for transport/tcp.c over real sockets on 127.0.0.1 (and ::1 where
 * the machine has it), each on its own uv loop. */
#include <errno.h>
#include <netinet/in.h>
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

#include "testutil.h"
#include "tpt.h"
#include "transport/internal.h"
#include "transport/tcp.h"

static void
test_addr_table(void **state)
{
    static const struct {
        const char *s;
        int port0_ok;
        int want; /* 0 or -EINVAL */
        int family;
        unsigned port;
    } cases[] = {
        { "127.0.0.1:7070", 0, 0, AF_INET, 7070 },
        { "0.0.0.0:0", 1, 0, AF_INET, 0 },
        { "255.255.255.255:65535", 0, 0, AF_INET, 65535 },
        { "[::1]:80", 0, 0, AF_INET6, 80 },
        { "[::]:0", 1, 0, AF_INET6, 0 },
        { "[2001:db8::17]:1", 0, 0, AF_INET6, 1 },
        { "[fe80::1%1]:80", 0, 0, AF_INET6, 80 },
        { "[::ffff:1.2.3.4]:9", 0, 0, AF_INET6, 9 },
        { "", 1, -EINVAL, 0, 0 },
        { "127.0.0.1", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:", 1, -EINVAL, 0, 0 },
        { ":80", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:0", 0, -EINVAL, 0, 0 }, /* port 0 only where allowed */
        { "127.0.0.1:65536", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:99999", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:123456", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:-1", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:+80", 1, -EINVAL, 0, 0 },
        { "127.0.0.1: 80", 1, -EINVAL, 0, 0 },
        { " 127.0.0.1:80", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:80 ", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:80\n", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:080", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:00", 1, -EINVAL, 0, 0 },
        { "127.0.0.1:8x", 1, -EINVAL, 0, 0 },
        { "256.0.0.1:80", 1, -EINVAL, 0, 0 },
        { "1.2.3:80", 1, -EINVAL, 0, 0 },
        { "1.2.3.4.5:80", 1, -EINVAL, 0, 0 },
        { "01.2.3.4:80", 1, -EINVAL, 0, 0 },
        { "0x7f.0.0.1:80", 1, -EINVAL, 0, 0 },
        { "localhost:80", 1, -EINVAL, 0, 0 },
        { "::1:80", 1, -EINVAL, 0, 0 },
        { "::1", 1, -EINVAL, 0, 0 },
        { "[::1]80", 1, -EINVAL, 0, 0 },
        { "[::1]:", 1, -EINVAL, 0, 0 },
        { "[::1", 1, -EINVAL, 0, 0 },
        { "[]:80", 1, -EINVAL, 0, 0 },
        { "[1.2.3.4]:80", 1, -EINVAL, 0, 0 },
        { "[::1]:80:80", 1, -EINVAL, 0, 0 },
        { "[fe80::1%]:80", 1, -EINVAL, 0, 0 },
        { "[fe80::1%eth0/x]:80", 1, -EINVAL, 0, 0 },
        { "[fe80::1%no-such-if0]:80", 1, -EINVAL, 0, 0 },
        { "[%1]:80", 1, -EINVAL, 0, 0 },
        { "[::1]]:80", 1, -EINVAL, 0, 0 },
        { "1.2.3.4:80:80", 1, -EINVAL, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        int r = tp_tcp_addr_parse(cases[i].s, cases[i].port0_ok, &ss);
        if (r != cases[i].want)
            fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].s, r, cases[i].want);
        if (r < 0)
            continue;
        assert_int_equal(ss.ss_family, cases[i].family);
        unsigned port = cases[i].family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        assert_int_equal(port, cases[i].port);
        /* Canonical spellings come back unchanged. */
        char back[TP_ADDR_MAX];
        assert_int_equal(tp_tcp_addr_format((struct sockaddr *)&ss, back), 0);
        if (strcmp(cases[i].s, "[::ffff:1.2.3.4]:9") != 0)
            assert_string_equal(back, cases[i].s);
    }

    /* Over-long input, with and without a terminating NUL in range. */
    char lng[300];
    memset(lng, '1', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    struct sockaddr_storage ss;
    assert_int_equal(tp_tcp_addr_parse(lng, 1, &ss), -EINVAL);
    assert_int_equal(tp_tcp_addr_parse(NULL, 1, &ss), -EINVAL);

    /* The same strings are refused by listen and dial, synchronously. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    assert_int_equal(tp_tcp_net_new(&loop, NULL, &net), 0);
    struct tpt_echo e;
    struct tpt_client cl;
    assert_int_equal(tpt_echo_listen(net, "127.0.0.1", &e), -EINVAL);
    assert_int_equal(tpt_echo_listen(net, "localhost:0", &e), -EINVAL);
    assert_int_equal(tpt_client_dial(net, "127.0.0.1:0", &cl), -EINVAL);
    assert_int_equal(tpt_client_dial(net, "[::1]", &cl), -EINVAL);
    assert_int_equal(tp_net_free(net), 0);
    tpt_loop_finish(&loop);
}

static void
test_hostport_table(void **state)
{
    static const struct {
        const char *s;
        const char *host; /* NULL: refused */
        unsigned port;
    } cases[] = {
        { "localhost:7070", "localhost", 7070 },
        { "seed-1.example.org:1", "seed-1.example.org", 1 },
        { "a:65535", "a", 65535 },
        { "x1.y2:80", "x1.y2", 80 },
        { "localhost:0", NULL, 0 },
        { "localhost", NULL, 0 },
        { "localhost:", NULL, 0 },
        { ":80", NULL, 0 },
        { "-a.org:80", NULL, 0 },
        { "a-.org:80", NULL, 0 },
        { "a..org:80", NULL, 0 },
        { ".a.org:80", NULL, 0 },
        { "a.org.:80", NULL, 0 },
        { "a_b.org:80", NULL, 0 },
        { "a b:80", NULL, 0 },
        { "1.2.3:80", NULL, 0 },
        { "127.0.0.1:80", NULL, 0 },
        { "0x7f.1:80", NULL, 0 },
        { "host.9net:80", NULL, 0 },
        { "host:080", NULL, 0 },
        { "host:80:1", NULL, 0 },
        { "[host]:80", NULL, 0 },
        { "h\xc3\xa9:80", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[TP_TCP_HOST_MAX];
        unsigned port = 0;
        int r = tp_tcp_hostport_parse(cases[i].s, host, &port);
        if (!cases[i].host) {
            if (r != -EINVAL)
                fail_msg("case %zu \"%s\": accepted", i, cases[i].s);
            continue;
        }
        if (r != 0)
            fail_msg("case %zu \"%s\": refused (%d)", i, cases[i].s, r);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
    /* Length limits: a 63-character label passes, 64 does not; 253 in all. */
    char name[300];
    memset(name, 'a', 63);
    strcpy(name + 63, ":1");
    char host[TP_TCP_HOST_MAX];
    unsigned port;
    assert_int_equal(tp_tcp_hostport_parse(name, host, &port), 0);
    memset(name, 'a', 64);
    strcpy(name + 64, ":1");
    assert_int_equal(tp_tcp_hostport_parse(name, host, &port), -EINVAL);
    size_t n = 0;
    while (n + 50 <= 253) {
        memset(name + n, 'b', 49);
        name[n + 49] = '.';
        n += 50;
    }
    memset(name + n, 'c', 253 - n);
    strcpy(name + 253, ":1");
    assert_int_equal(tp_tcp_hostport_parse(name, host, &port), 0);
    assert_int_equal(strlen(host), 253);
    memmove(name + 1, name, strlen(name) + 1);
    assert_int_equal(tp_tcp_hostport_parse(name, host, &port), -EINVAL);
}

/* "localhost:PORT" resolves and connects, whichever of ::1 and 127.0.0.1 the
 * resolver lists first (a refused address moves on to the next). */
static void
test_dial_name(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    assert_int_equal(tp_tcp_net_new(&loop, NULL, &net), 0);
    struct tpt_echo e;
    assert_int_equal(tpt_echo_listen(net, "127.0.0.1:0", &e), 0);
    const char *la = tp_listener_addr(e.l);
    char addr[TP_ADDR_MAX];
    snprintf(addr, sizeof(addr), "localhost:%s", strchr(la, ':') + 1);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, addr, &cl), 0);
    while (cl.connect_status == 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    if (cl.connect_status == -EHOSTUNREACH) {
        /* No resolver entry for localhost on this machine. */
        tpt_client_close(&cl);
        tpt_echo_shutdown(&e);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(tp_net_free(net), 0);
        tpt_loop_finish(&loop);
        skip();
    }
    assert_int_equal(cl.connect_status, 0);
    assert_string_equal(tp_conn_remote_addr(cl.c), la);
    static const uint8_t msg[] = "by name";
    assert_int_equal(tpt_client_send(&cl, msg, sizeof(msg), 1), 0);
    while (cl.rx_len < sizeof(msg) && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_memory_equal(cl.rx, msg, sizeof(msg));

    /* Closing right after a name dial started (resolution pending). */
    struct tpt_client c2;
    assert_int_equal(tpt_client_dial(net, addr, &c2), 0);
    tpt_client_close(&c2);
    tpt_client_close(&cl);
    while (!(c2.closed && cl.closed) && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_true(c2.connect_status == -ECANCELED || c2.connect_status == 1);
    tpt_echo_shutdown(&e);
    uv_run(&loop, UV_RUN_DEFAULT);
    tpt_client_free(&cl);
    assert_int_equal(tp_net_free(net), 0);
    tpt_loop_finish(&loop);
}

/* Several addresses for one peer (as a host name resolves to): a refused
 * one moves on to the next on a fresh socket; all refused reports that. */
static void
list_connected(tp_conn *c, int status)
{
    int *st = tp_conn_data(c);
    *st = status;
}

static void
list_closed(tp_conn *c)
{
    int *st = tp_conn_data(c);
    *st = 2;
}

static void
test_dial_list(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    assert_int_equal(tp_tcp_net_new(&loop, NULL, &net), 0);
    struct tpt_echo dead_e, e;
    assert_int_equal(tpt_echo_listen(net, "127.0.0.1:0", &dead_e), 0);
    struct sockaddr_storage addrs[3];
    assert_int_equal(tp_tcp_addr_parse(tp_listener_addr(dead_e.l), 0, &addrs[0]), 0);
    tpt_echo_shutdown(&dead_e);
    while (!dead_e.listener_closed && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(tpt_echo_listen(net, "127.0.0.1:0", &e), 0);
    assert_int_equal(tp_tcp_addr_parse(tp_listener_addr(e.l), 0, &addrs[1]), 0);
    addrs[2] = addrs[0];

    int st = 1;
    tp_conn *c;
    assert_int_equal(tp__tcp_dial_list(net, addrs, 2, list_connected, &st, &c), 0);
    assert_int_equal(st, 1); /* never from inside the call */
    while (st == 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(st, 0);
    assert_string_equal(tp_conn_remote_addr(c), tp_listener_addr(e.l));
    tp_close(c, list_closed);
    while (st != 2 && uv_run(&loop, UV_RUN_ONCE))
        ;

    /* Every address refused: the last error is reported. */
    st = 1;
    struct sockaddr_storage both_dead[2] = { addrs[0], addrs[2] };
    assert_int_equal(tp__tcp_dial_list(net, both_dead, 2, list_connected, &st, &c), 0);
    while (st == 1 && uv_run(&loop, UV_RUN_ONCE))
        ;
    assert_int_equal(st, -ECONNREFUSED);
    tp_close(c, list_closed);
    while (st != 2 && uv_run(&loop, UV_RUN_ONCE))
        ;

    /* Closed at every stage of the attempts: nothing leaks or crashes. */
    for (int spins = 0; spins < 6; spins++) {
        st = 1;
        assert_int_equal(tp__tcp_dial_list(net, both_dead, 2, list_connected, &st, &c), 0);
        for (int i = 0; i < spins; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        if (st != 2)
            tp_close(c, list_closed);
        while (st != 2 && uv_run(&loop, UV_RUN_ONCE))
            ;
    }
    assert_int_equal(tp__tcp_dial_list(net, addrs, 0, list_connected, &st, &c), -EINVAL);
    tpt_echo_shutdown(&e);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(tp_net_free(net), 0);
    tpt_loop_finish(&loop);
}

static void
test_opts(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    struct tp_tcp_opts o = TP_TCP_OPTS_INIT;
    o.read_buf = TP_TCP_READ_BUF_MIN - 1;
    assert_int_equal(tp_tcp_net_new(&loop, &o, &net), -EINVAL);
    o.read_buf = TP_TCP_READ_BUF_MAX + 1;
    assert_int_equal(tp_tcp_net_new(&loop, &o, &net), -EINVAL);
    assert_int_equal(tp_tcp_net_new(NULL, NULL, &net), -EINVAL);
    o.read_buf = TP_TCP_READ_BUF_MIN;
    assert_int_equal(tp_tcp_net_new(&loop, &o, &net), 0);
    assert_string_equal(tp_net_kind(net), "tcp");
    assert_ptr_equal(tp_net_loop(net), &loop);
    assert_int_equal(tp_net_free(net), 0);
    assert_int_equal(tp_net_free(NULL), 0);
    tpt_loop_finish(&loop);
}

static tp_net *
net_new(uv_loop_t *loop)
{
    uv_loop_init(loop);
    tp_net *net;
    assert_int_equal(tp_tcp_net_new(loop, NULL, &net), 0);
    return net;
}

static void
net_done(uv_loop_t *loop, tp_net *net)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(tp_net_free(net), 0);
    tpt_loop_finish(loop);
}

/* Echo a message and check the addresses both sides report. */
static void
echo_on(const char *listen_addr, const char *prefix)
{
    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct tpt_echo e;
    int r = tpt_echo_listen(net, listen_addr, &e);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        net_done(&loop, net);
        skip();
    }
    assert_int_equal(r, 0);
    const char *la = tp_listener_addr(e.l);
    assert_true(strncmp(la, prefix, strlen(prefix)) == 0);
    assert_string_not_equal(la + strlen(prefix), "0"); /* ephemeral port reported */

    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, la, &cl), 0);
    assert_string_equal(tp_conn_local_addr(cl.c), ""); /* not connected yet */
    static const uint8_t msg[] = "hello, mesh";
    assert_int_equal(tpt_client_send(&cl, msg, sizeof(msg), 1), -ENOTCONN);
    assert_int_equal(tp_read_start(cl.c, NULL, NULL), -EINVAL);
    TPT_RUN_UNTIL(&loop, cl.connect_status != 1 && e.accepted == 1);
    assert_int_equal(cl.connect_status, 0);
    assert_string_equal(tp_conn_remote_addr(cl.c), la);
    assert_true(strncmp(tp_conn_local_addr(cl.c), prefix, strlen(prefix)) == 0);
    assert_non_null(e.conns[0]);
    assert_string_equal(tp_conn_remote_addr(e.conns[0]), tp_conn_local_addr(cl.c));
    assert_string_equal(tp_conn_local_addr(e.conns[0]), la);
    assert_int_equal(tp_conn_mtu(cl.c), TP_TCP_MTU);
    assert_int_equal(tp_conn_bandwidth(cl.c), 0);
    assert_ptr_equal(tp_conn_net(cl.c), net);

    assert_int_equal(tpt_client_send(&cl, msg, sizeof(msg), 3), 0);
    TPT_RUN_UNTIL(&loop, cl.rx_len >= sizeof(msg) && cl.sends_ok == 1);
    assert_int_equal(cl.rx_len, sizeof(msg));
    assert_memory_equal(cl.rx, msg, sizeof(msg));
    assert_int_equal(tp_conn_queued(cl.c), 0);

    /* The net cannot go while anything on it is open. */
    assert_int_equal(tp_net_free(net), -EBUSY);
    tpt_client_close(&cl);
    TPT_RUN_UNTIL(&loop, cl.closed && e.closed == 1);
    assert_int_equal(e.ended, 1);
    assert_int_equal(e.last_end, 0); /* orderly end seen by the server */
    tpt_echo_shutdown(&e);
    TPT_RUN_UNTIL(&loop, e.listener_closed);
    tpt_client_free(&cl);
    net_done(&loop, net);
}

static void
test_echo_v4(void **state)
{
    echo_on("127.0.0.1:0", "127.0.0.1:");
}

static void
test_echo_v6(void **state)
{
    echo_on("[::1]:0", "[::1]:");
}

/* --- a sink that checks every byte against the expected stream --- */

struct sink {
    const uint8_t *want;
    size_t want_len;
    size_t got;
    int mismatch;
    int ended;
    int end_status;
    int closed;
    tp_conn *c;
    int start_reading; /* 0: accept but do not read until told */
    int listener_closed;
};

static void
sink_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct sink *s = tp_conn_data(c);
    if (len > s->want_len - s->got || memcmp(buf, s->want + s->got, len) != 0)
        s->mismatch = 1;
    s->got += len;
}

static void
sink_end(tp_conn *c, int status)
{
    struct sink *s = tp_conn_data(c);
    s->ended = 1;
    s->end_status = status;
}

static void
sink_closed(tp_conn *c)
{
    struct sink *s = tp_conn_data(c);
    s->closed = 1;
}

static void
sink_accept(tp_listener *l, tp_conn *c, int status)
{
    struct sink *s = tp_listener_data(l);
    assert_int_equal(status, 0);
    s->c = c;
    tp_conn_set_data(c, s);
    if (s->start_reading)
        assert_int_equal(tp_read_start(c, sink_recv, sink_end), 0);
}

static void
listener_closed(tp_listener *l)
{
    struct sink *s = tp_listener_data(l);
    s->listener_closed = 1;
}

/* 64 MiB in 1 MiB sends arrives complete and unchanged; and while the
 * receiver does not read, the sender's queue grows (backpressure visible
 * through tp_conn_queued) until it resumes. */
static void
test_large_transfer(void **state)
{
    enum {
        TOTAL = 64 << 20,
        PIECE = 1 << 20
    };
    uint8_t *data = malloc(TOTAL);
    assert_non_null(data);
    tu_fill_random(data, TOTAL, 42);

    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct sink s = { .want = data, .want_len = TOTAL };
    tp_listener *l;
    assert_int_equal(tp_listen(net, "127.0.0.1:0", sink_accept, &s, &l), 0);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, tp_listener_addr(l), &cl), 0);
    TPT_RUN_UNTIL(&loop, cl.connect_status != 1 && s.c);
    assert_int_equal(cl.connect_status, 0);

    for (size_t off = 0; off < TOTAL; off += PIECE)
        assert_int_equal(tpt_client_send(&cl, data + off, PIECE, 1 + (off / PIECE) % 3), 0);
    /* Nobody reads yet: the kernel buffers fill and the rest stays queued. */
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(tp_conn_queued(cl.c) > 0);
    assert_true(cl.sends_ok < TOTAL / PIECE);

    assert_int_equal(tp_read_start(s.c, sink_recv, sink_end), 0);
    TPT_RUN_UNTIL(&loop, s.got >= TOTAL && cl.sends_ok == TOTAL / PIECE);
    assert_int_equal(s.got, TOTAL);
    assert_false(s.mismatch);
    assert_int_equal(tp_conn_queued(cl.c), 0);

    /* Pause and resume on the receiving side. */
    tp_read_stop(s.c);
    tp_read_stop(s.c); /* twice is harmless */
    assert_int_equal(tp_read_start(s.c, sink_recv, sink_end), 0);

    tpt_client_close(&cl);
    TPT_RUN_UNTIL(&loop, s.ended);
    assert_int_equal(s.end_status, 0);
    tp_close(s.c, sink_closed);
    tp_listener_close(l, listener_closed);
    TPT_RUN_UNTIL(&loop, s.closed && cl.closed && s.listener_closed);
    tpt_client_free(&cl);
    net_done(&loop, net);
    free(data);
}

/* The server says goodbye and closes: the client reads it all, then sees an
 * orderly end; its sends then still work or fail cleanly, never crash. */
static void
bye_sent(tp_conn *c, void *arg, int status)
{
    assert_int_equal(status, 0);
    tp_close(c, sink_closed);
}

static void
bye_accept(tp_listener *l, tp_conn *c, int status)
{
    struct sink *s = tp_listener_data(l);
    assert_int_equal(status, 0);
    s->c = c;
    tp_conn_set_data(c, s);
    static const tp_buf b = { "bye", 3 };
    assert_int_equal(tp_send(c, &b, 1, bye_sent, NULL), 0);
}

static void
test_close_from_server(void **state)
{
    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct sink s = { 0 };
    tp_listener *l;
    assert_int_equal(tp_listen(net, "127.0.0.1:0", bye_accept, &s, &l), 0);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, tp_listener_addr(l), &cl), 0);
    TPT_RUN_UNTIL(&loop, cl.ended);
    assert_int_equal(cl.connect_status, 0);
    assert_int_equal(cl.end_status, 0);
    assert_int_equal(cl.rx_len, 3);
    assert_memory_equal(cl.rx, "bye", 3);
    assert_true(s.closed);
    /* Reading again after the end is refused. */
    assert_int_equal(tp_read_start(cl.c, sink_recv, sink_end), -EPIPE);
    tpt_client_close(&cl);
    tp_listener_close(l, listener_closed);
    TPT_RUN_UNTIL(&loop, cl.closed && s.listener_closed);
    tpt_client_free(&cl);
    net_done(&loop, net);
}

/* A port nobody listens on refuses, asynchronously. */
static void
test_refused(void **state)
{
    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct sink s = { 0 };
    tp_listener *l;
    assert_int_equal(tp_listen(net, "127.0.0.1:0", sink_accept, &s, &l), 0);
    char addr[TP_ADDR_MAX];
    snprintf(addr, sizeof(addr), "%s", tp_listener_addr(l));
    tp_listener_close(l, listener_closed);
    TPT_RUN_UNTIL(&loop, s.listener_closed);

    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, addr, &cl), 0);
    TPT_RUN_UNTIL(&loop, cl.connect_status != 1);
    assert_int_equal(cl.connect_status, -ECONNREFUSED);
    /* A dead connection refuses sends and reads; it is closed all the same. */
    static const uint8_t x = 1;
    assert_int_equal(tpt_client_send(&cl, &x, 1, 1), -ENOTCONN);
    tpt_client_close(&cl);
    TPT_RUN_UNTIL(&loop, cl.closed);
    net_done(&loop, net);
}

static void
test_addr_in_use(void **state)
{
    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct sink s = { 0 };
    tp_listener *l, *l2;
    assert_int_equal(tp_listen(net, "127.0.0.1:0", sink_accept, &s, &l), 0);
    assert_int_equal(tp_listen(net, tp_listener_addr(l), sink_accept, &s, &l2), -EADDRINUSE);
    tp_listener_close(l, listener_closed);
    TPT_RUN_UNTIL(&loop, s.listener_closed);
    net_done(&loop, net);
}

/* After tp_close() a send fails with -EPIPE (the connection stays valid
 * until its close callback). */
static void
test_send_after_close(void **state)
{
    uv_loop_t loop;
    tp_net *net = net_new(&loop);
    struct tpt_echo e;
    assert_int_equal(tpt_echo_listen(net, "127.0.0.1:0", &e), 0);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(net, tp_listener_addr(e.l), &cl), 0);
    TPT_RUN_UNTIL(&loop, cl.connect_status != 1);
    assert_int_equal(cl.connect_status, 0);
    tp_conn *c = cl.c;
    tpt_client_close(&cl);
    static const tp_buf b = { "x", 1 };
    assert_int_equal(tp_send(c, &b, 1, NULL, NULL), -EPIPE);
    assert_int_equal(tp_send(c, &b, 0, NULL, NULL), -EINVAL);
    tp_buf many[TP_SEND_BUFS_MAX + 1] = { 0 };
    assert_int_equal(tp_send(c, many, TP_SEND_BUFS_MAX + 1, NULL, NULL), -EINVAL);
    TPT_RUN_UNTIL(&loop, cl.closed && e.closed == 1);
    tpt_echo_shutdown(&e);
    TPT_RUN_UNTIL(&loop, e.listener_closed);
    net_done(&loop, net);
}

/* A dial nobody answers times out. A listening socket whose accept queue is
 * full (backlog 0, never accepted) drops further SYNs on Linux, so later dials
 * hang until the dial timeout fires. */
static void
test_dial_timeout(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 0), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char addr[TP_ADDR_MAX];
    assert_int_equal(tp_tcp_addr_format((struct sockaddr *)&sa, addr), 0);

    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    struct tp_tcp_opts o = TP_TCP_OPTS_INIT;
    o.dial_timeout_ms = 300;
    assert_int_equal(tp_tcp_net_new(&loop, &o, &net), 0);
    enum {
        N = 6
    };
    struct tpt_client cl[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(tpt_client_dial(net, addr, &cl[i]), 0);
    int done = 0;
    while (!done && uv_run(&loop, UV_RUN_ONCE)) {
        done = 1;
        for (int i = 0; i < N; i++)
            done &= cl[i].connect_status != 1;
    }
    int timeouts = 0;
    for (int i = 0; i < N; i++) {
        assert_true(cl[i].connect_status == 0 || cl[i].connect_status == -ETIMEDOUT);
        timeouts += cl[i].connect_status == -ETIMEDOUT;
        tpt_client_close(&cl[i]);
    }
    assert_true(timeouts > 0);
    close(fd);
    net_done(&loop, net);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_hostport_table),
        cmocka_unit_test(test_dial_name),
        cmocka_unit_test(test_dial_list),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_echo_v4),
        cmocka_unit_test(test_echo_v6),
        cmocka_unit_test(test_large_transfer),
        cmocka_unit_test(test_close_from_server),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_addr_in_use),
        cmocka_unit_test(test_send_after_close),
        cmocka_unit_test(test_dial_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
