/* SPDX-License-Identifier: MIT */
/*
 * transport/fault.c: each fault kind does to a connection what fault.h
 * says, over the in-memory link (an echo server on one node, a client on
 * another, both nets wrapped), and every connection still closes with its
 * callbacks in tp.h's order and nothing left on the loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "tpt.h"
#include "transport/fault.h"
#include "transport/mem.h"

enum {
    LATENCY_MS = 2,
    DELAY_MS = 60,
    PAYLOAD = 3000,
};

struct fx {
    uv_loop_t loop;
    tp_mem_world *w;
    tp_net *srv, *cli; /* fault nets around mem nodes "server" and "client" */
    struct tpt_echo e;
    struct tpt_client cl;
    uint8_t data[PAYLOAD];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    uv_loop_init(&f->loop);
    struct tp_mem_link link = { .latency_ms = LATENCY_MS };
    assert_int_equal(tp_mem_world_new(&f->loop, 1, &link, &f->w), 0);
    tp_net *a, *b;
    assert_int_equal(tp_mem_net_new(f->w, "server", &a), 0);
    assert_int_equal(tp_mem_net_new(f->w, "client", &b), 0);
    assert_int_equal(tp_fault_net_new(a, &f->srv), 0);
    assert_int_equal(tp_fault_net_new(b, &f->cli), 0);
    assert_int_equal(tpt_echo_listen(f->srv, "server", &f->e), 0);
    tu_fill_random(f->data, sizeof(f->data), 7);
    *state = f;
    return 0;
}

/* Closes what is open and checks that everything was released. */
static int
teardown(void **state)
{
    struct fx *f = *state;
    tpt_client_close(&f->cl);
    tpt_echo_shutdown(&f->e);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(tp_net_free(f->srv), 0);
    assert_int_equal(tp_net_free(f->cli), 0);
    assert_int_equal(tp_mem_world_close(f->w), 0);
    tpt_client_free(&f->cl);
    tpt_loop_finish(&f->loop);
    free(f);
    return 0;
}

static void
connect_client(struct fx *f)
{
    assert_int_equal(tpt_client_dial(f->cli, "server", &f->cl), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.connect_status != 1 && f->e.accepted == 1);
    assert_int_equal(f->cl.connect_status, 0);
}

static void
timer_noop(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop for ms of loop time. */
static void
run_for(struct fx *f, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, timer_noop, ms, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
test_send_fail(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    assert_int_equal(tp_fault_inject(f->cli, "server", TP_FAULT_SEND_FAIL, 0), 1);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 2), -EPIPE);
    assert_false(f->cl.ended); /* the end comes from the loop, not from inside tp_send */
    TPT_RUN_UNTIL(&f->loop, f->cl.ended);
    assert_int_equal(f->cl.end_status, -EPIPE);
    assert_int_equal(tpt_client_send(&f->cl, f->data, 1, 1), -EPIPE);
    assert_int_equal(tp_fault_count(f->cli), 1);
}

static void
test_send_error(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    tp_fault_inject(f->cli, NULL, TP_FAULT_SEND_ERROR, 0);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended && f->cl.sends_failed == 1);
    assert_int_equal(f->cl.last_send_status, -ECONNRESET);
    assert_int_equal(f->cl.end_status, -ECONNRESET);
    assert_int_equal(f->e.echoed, 0);
}

static void
test_recv_error_at_first_delivery(void **state)
{
    struct fx *f = *state;
    tp_fault_rule r = { .kind = TP_FAULT_RECV_ERROR, .at = TP_FAULT_AT_RECV };
    assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    connect_client(f);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended);
    assert_int_equal(f->cl.end_status, -EIO);
    assert_int_equal(f->cl.rx_len, 0);
    assert_int_equal(f->e.echoed, PAYLOAD); /* the server did its part */
}

static void
test_reset(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    assert_int_equal(tp_fault_inject(f->cli, "", TP_FAULT_RESET, 0), 1);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended && f->e.ended == 1);
    assert_int_equal(f->cl.end_status, -ECONNRESET);
    assert_int_equal(f->cl.rx_len, 0); /* unread bytes are gone with the reset */
    assert_int_equal(tpt_client_send(&f->cl, f->data, 1, 1), -EPIPE);
}

static void
test_half_close(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    tp_fault_inject(f->cli, NULL, TP_FAULT_HALF_CLOSE, 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended);
    assert_int_equal(f->cl.end_status, 0);
    /* This side still sends; the server gets it (and its echo is lost). */
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 3), 0);
    TPT_RUN_UNTIL(&f->loop, f->e.echoed == PAYLOAD);
    run_for(f, 10 * LATENCY_MS);
    assert_int_equal(f->cl.rx_len, 0);
}

static void
test_stall(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    assert_int_equal(tpt_client_send(&f->cl, f->data, 100, 1), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.rx_len == 100);
    tp_fault_inject(f->cli, NULL, TP_FAULT_STALL, 0);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    run_for(f, 20 * LATENCY_MS);
    assert_int_equal(f->cl.sends_ok, 1); /* the stalled send never finished */
    assert_int_equal(f->cl.rx_len, 100);
    assert_false(f->cl.ended);
    assert_true(tp_conn_queued(f->cl.c) >= PAYLOAD);
    assert_int_equal(f->e.echoed, 100);
    tpt_client_close(&f->cl);
    TPT_RUN_UNTIL(&f->loop, f->cl.closed);
    assert_int_equal(f->cl.sends_failed, 1);
    assert_int_equal(f->cl.last_send_status, -ECANCELED);
}

static void
test_delay(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    tp_fault_inject(f->cli, "server", TP_FAULT_DELAY, DELAY_MS);
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.rx_len == PAYLOAD);
    assert_true(f->cl.first_rx_ms - t0 >= DELAY_MS);
    assert_memory_equal(f->cl.rx, f->data, PAYLOAD);
    /* The end is delayed behind the bytes, in order. */
    tpt_echo_shutdown(&f->e);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended);
    assert_int_equal(f->cl.end_status, 0);
}

static void
test_connect_fail(void **state)
{
    struct fx *f = *state;
    tp_fault_rule r = { .kind = TP_FAULT_CONNECT_FAIL, .at = TP_FAULT_AT_DIAL, .after = 1 };
    snprintf(r.remote, sizeof(r.remote), "serv");
    assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    connect_client(f); /* the first dial is let through */
    tpt_client_close(&f->cl);
    TPT_RUN_UNTIL(&f->loop, f->cl.closed);
    tpt_client_free(&f->cl);
    assert_int_equal(tpt_client_dial(f->cli, "server", &f->cl), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.connect_status != 1);
    assert_int_equal(f->cl.connect_status, -ECONNREFUSED);
    assert_int_equal(f->e.accepted, 1);
    assert_int_equal(tp_fault_count(f->cli), 1);
}

static void
test_close_slow(void **state)
{
    struct fx *f = *state;
    tp_fault_rule r = { .kind = TP_FAULT_CLOSE_SLOW,
                        .at = TP_FAULT_AT_CLOSE,
                        .delay_ms = DELAY_MS };
    assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    connect_client(f);
    uint64_t t0 = uv_now(&f->loop);
    tpt_client_close(&f->cl);
    TPT_RUN_UNTIL(&f->loop, f->cl.closed);
    assert_true(uv_now(&f->loop) - t0 >= DELAY_MS);
}

/* A rule at the third send: two pass, the third fails. */
static void
test_rule_counts_operations(void **state)
{
    struct fx *f = *state;
    tp_fault_rule r = { .kind = TP_FAULT_SEND_FAIL, .at = TP_FAULT_AT_SEND, .after = 2 };
    assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    connect_client(f);
    assert_int_equal(tpt_client_send(&f->cl, f->data, 10, 1), 0);
    assert_int_equal(tpt_client_send(&f->cl, f->data + 10, 10, 1), 0);
    assert_int_equal(tpt_client_send(&f->cl, f->data + 20, 10, 1), -EPIPE);
    TPT_RUN_UNTIL(&f->loop, f->cl.ended);
    assert_int_equal(f->cl.end_status, -EPIPE);
    assert_int_equal(f->cl.sends_ok, 2);
}

static void
test_filters_and_limits(void **state)
{
    struct fx *f = *state;
    connect_client(f);
    assert_int_equal(tp_fault_inject(f->cli, "elsewhere", TP_FAULT_RESET, 0), 0);
    assert_int_equal(tp_fault_inject(f->cli, NULL, TP_FAULT_CONNECT_FAIL, 0), -EINVAL);
    assert_int_equal(tp_fault_inject(f->cli, NULL, 0, 0), -EINVAL);
    assert_int_equal(tp_fault_inject(f->cli, NULL, TP_FAULT_DELAY, TP_FAULT_DELAY_MAX_MS + 1),
                     -EINVAL);
    tp_net *other;
    assert_int_equal(tp_mem_net_new(f->w, "plain", &other), 0);
    assert_int_equal(tp_fault_inject(other, NULL, TP_FAULT_RESET, 0), -EINVAL);
    assert_int_equal(tp_net_free(other), 0);
    tp_fault_rule bad = { .kind = TP_FAULT_RESET, .at = TP_FAULT_AT_DIAL };
    assert_int_equal(tp_fault_arm(f->cli, &bad), -EINVAL);
    bad = (tp_fault_rule){ .kind = TP_FAULT_CONNECT_FAIL, .at = TP_FAULT_AT_SEND };
    assert_int_equal(tp_fault_arm(f->cli, &bad), -EINVAL);
    tp_fault_rule r = { .kind = TP_FAULT_RESET, .at = TP_FAULT_AT_SEND, .after = 1000 };
    for (int i = 0; i < TP_FAULT_RULES_MAX; i++)
        assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    assert_int_equal(tp_fault_arm(f->cli, &r), -ENOSPC);
    tp_fault_disarm(f->cli);
    assert_int_equal(tp_fault_arm(f->cli, &r), 0);
    tp_fault_disarm(f->cli);
    assert_int_equal(tpt_client_send(&f->cl, f->data, PAYLOAD, 1), 0);
    TPT_RUN_UNTIL(&f->loop, f->cl.rx_len == PAYLOAD);
    assert_int_equal(tp_fault_count(f->cli), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_send_fail),
        T(test_send_error),
        T(test_recv_error_at_first_delivery),
        T(test_reset),
        T(test_half_close),
        T(test_stall),
        T(test_delay),
        T(test_connect_fail),
        T(test_close_slow),
        T(test_rule_counts_operations),
        T(test_filters_and_limits),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
