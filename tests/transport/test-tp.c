/* SPDX-License-Identifier: MIT */
/* One scenario, every link: the code below uses transport/tp.h only (through
 * tpt.c), which is the proof that the layers above need not know whether they
 * run over TCP or the simulated network. Only the setup functions at the end
 * name a link. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "tpt.h"
#include "transport/tp.h"

enum {
    STREAM_LEN = 4 << 20,
    SEND_MAX = 256 * 1024,
};

/* Echo STREAM_LEN bytes in sends of random sizes and buffer counts, check
 * them, then close from the client and see the server get an orderly end. */
static void
scenario_echo(uv_loop_t *loop, tp_net *srv, tp_net *cli, const char *listen_addr)
{
    uint8_t *data = malloc(STREAM_LEN);
    assert_non_null(data);
    tu_fill_random(data, STREAM_LEN, 1234);

    struct tpt_echo e;
    assert_int_equal(tpt_echo_listen(srv, listen_addr, &e), 0);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(cli, tp_listener_addr(e.l), &cl), 0);
    TPT_RUN_UNTIL(loop, cl.connect_status != 1 && e.accepted == 1);
    assert_int_equal(cl.connect_status, 0);
    assert_string_not_equal(tp_conn_local_addr(cl.c), "");
    assert_string_equal(tp_conn_remote_addr(cl.c), tp_listener_addr(e.l));
    assert_string_equal(tp_conn_remote_addr(e.conns[0]), tp_conn_local_addr(cl.c));
    assert_true(tp_conn_mtu(cl.c) > 0);

    uint64_t rng = 99;
    size_t off = 0;
    unsigned sends = 0;
    while (off < STREAM_LEN) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)(rng >> 33) % SEND_MAX;
        if (n > STREAM_LEN - off)
            n = STREAM_LEN - off;
        assert_int_equal(tpt_client_send(&cl, data + off, n, 1 + (unsigned)(rng >> 20) % 3), 0);
        off += n;
        sends++;
    }
    assert_true(tp_conn_queued(cl.c) > 0);
    TPT_RUN_UNTIL(loop, cl.rx_len >= STREAM_LEN && cl.sends_ok == sends);
    assert_int_equal(cl.rx_len, STREAM_LEN);
    assert_memory_equal(cl.rx, data, STREAM_LEN);
    assert_int_equal(cl.sends_failed, 0);
    assert_int_equal(tp_conn_queued(cl.c), 0);
    assert_int_equal(e.echoed, STREAM_LEN);

    tpt_client_close(&cl);
    TPT_RUN_UNTIL(loop, cl.closed && e.closed == 1);
    assert_int_equal(e.ended, 1);
    assert_int_equal(e.last_end, 0);
    tpt_echo_shutdown(&e);
    TPT_RUN_UNTIL(loop, e.listener_closed);
    tpt_client_free(&cl);
    free(data);
}

/* The server closes right after accepting: the client sees the end, its
 * sends fail cleanly or finish, and it closes. */
static void
close_on_accept(tp_listener *l, tp_conn *c, int status)
{
    unsigned *closed = tp_listener_data(l);
    assert_int_equal(status, 0);
    (*closed)++;
    tp_close(c, NULL);
}

static void
scenario_server_closes(uv_loop_t *loop, tp_net *srv, tp_net *cli, const char *listen_addr)
{
    unsigned accepted = 0;
    tp_listener *l;
    assert_int_equal(tp_listen(srv, listen_addr, close_on_accept, &accepted, &l), 0);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(cli, tp_listener_addr(l), &cl), 0);
    TPT_RUN_UNTIL(loop, cl.ended);
    assert_int_equal(cl.connect_status, 0);
    assert_int_equal(accepted, 1);
    assert_true(cl.end_status == 0 || cl.end_status == -ECONNRESET);
    assert_int_equal(cl.rx_len, 0);
    tpt_client_close(&cl);
    tp_listener_close(l, NULL);
    TPT_RUN_UNTIL(loop, cl.closed);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void
scenario_refused(uv_loop_t *loop, tp_net *cli, const char *dead_addr)
{
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(cli, dead_addr, &cl), 0);
    TPT_RUN_UNTIL(loop, cl.connect_status != 1);
    assert_int_equal(cl.connect_status, -ECONNREFUSED);
    tpt_client_close(&cl);
    TPT_RUN_UNTIL(loop, cl.closed);
}

static void
run_all(uv_loop_t *loop, tp_net *srv, tp_net *cli, const char *listen_addr, const char *dead_addr)
{
    scenario_echo(loop, srv, cli, listen_addr);
    scenario_server_closes(loop, srv, cli, listen_addr);
    scenario_refused(loop, cli, dead_addr);
    assert_int_equal(tp_net_free(srv), 0);
    if (cli != srv)
        assert_int_equal(tp_net_free(cli), 0);
}

/* --- the links --- */

#include "transport/fault.h"
#include "transport/mem.h"
#include "transport/tcp.h"

static void
never_accept(tp_listener *l, tp_conn *c, int status)
{
    fail_msg("unexpected connection");
}

/* wrap: through the fault wrapper with no fault armed, which must be
 * invisible (the same scenarios pass through it). */
static tp_net *
maybe_wrap(tp_net *net, bool wrap)
{
    tp_net *f = net;
    if (wrap)
        assert_int_equal(tp_fault_net_new(net, &f), 0);
    return f;
}

static void
over_tcp(bool wrap)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    assert_int_equal(tp_tcp_net_new(&loop, NULL, &net), 0);
    net = maybe_wrap(net, wrap);
    /* A port that was just free: listen on an ephemeral one and close it. */
    tp_listener *l;
    assert_int_equal(tp_listen(net, "127.0.0.1:0", never_accept, NULL, &l), 0);
    char dead[TP_ADDR_MAX];
    snprintf(dead, sizeof(dead), "%s", tp_listener_addr(l));
    tp_listener_close(l, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    run_all(&loop, net, net, "127.0.0.1:0", dead);
    tpt_loop_finish(&loop);
}

static void
over_mem(bool wrap)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_mem_world *w;
    struct tp_mem_link link = {
        .latency_ms = 5, .bandwidth = 200 * 1000 * 1000, .loss_ppm = 10000, .mtu = 16 * 1024
    };
    assert_int_equal(tp_mem_world_new(&loop, 5, &link, &w), 0);
    tp_net *srv, *cli;
    assert_int_equal(tp_mem_net_new(w, "server", &srv), 0);
    assert_int_equal(tp_mem_net_new(w, "client", &cli), 0);
    run_all(&loop, maybe_wrap(srv, wrap), maybe_wrap(cli, wrap), "server", "nobody");
    assert_int_equal(tp_mem_world_close(w), 0);
    tpt_loop_finish(&loop);
}

static void
test_over_tcp(void **state)
{
    over_tcp(false);
}

static void
test_over_mem(void **state)
{
    over_mem(false);
}

static void
test_over_fault_tcp(void **state)
{
    over_tcp(true);
}

static void
test_over_fault_mem(void **state)
{
    over_mem(true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_over_tcp),
        cmocka_unit_test(test_over_mem),
        cmocka_unit_test(test_over_fault_tcp),
        cmocka_unit_test(test_over_fault_mem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
