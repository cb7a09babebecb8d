/* SPDX-License-Identifier: MIT */
/* Tests for transport/mem.c and mem-sim.c: the simulated network. Delays
 * are checked in loop time (uv_now), as lower bounds that the model
 * guarantees (timers fire late, never early); upper bounds are only loose
 * sanity limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "tpt.h"
#include "transport/mem.h"

enum {
    SANITY_MS = 20000, /* "did not hang" bound, not a performance claim */
};

struct sim {
    uv_loop_t loop;
    tp_mem_world *w;
    tp_net *a, *b;
};

static void
sim_init(struct sim *s, uint64_t seed, const struct tp_mem_link *link)
{
    assert_int_equal(uv_loop_init(&s->loop), 0);
    assert_int_equal(tp_mem_world_new(&s->loop, seed, link, &s->w), 0);
    assert_int_equal(tp_mem_net_new(s->w, "alpha", &s->a), 0);
    assert_int_equal(tp_mem_net_new(s->w, "beta", &s->b), 0);
}

static void
sim_done(struct sim *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(tp_net_free(s->a), 0);
    assert_int_equal(tp_net_free(s->b), 0);
    assert_int_equal(tp_mem_world_close(s->w), 0);
    tpt_loop_finish(&s->loop);
}

static void
on_flag_timer(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void
on_timer_closed(uv_handle_t *h)
{
}

/* Runs the loop for about ms of loop time. */
static void
run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_flag_timer, ms, 0);
    TPT_RUN_UNTIL(loop, fired);
    uv_close((uv_handle_t *)&t, on_timer_closed);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* --- a one-way sink that checks order and content --- */

struct sink {
    const uint8_t *want;
    size_t want_len, got;
    int mismatch, ended, end_status, closed, listener_closed, read;
    tp_conn *c;
    uint64_t done_ms;
};

static void
sink_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct sink *s = tp_conn_data(c);
    if (len > s->want_len - s->got || memcmp(buf, s->want + s->got, len) != 0)
        s->mismatch = 1;
    s->got += len;
    if (s->got == s->want_len)
        s->done_ms = uv_now(tp_net_loop(tp_conn_net(c)));
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
    if (s->read)
        assert_int_equal(tp_read_start(c, sink_recv, sink_end), 0);
}

static void
sink_listener_closed(tp_listener *l)
{
    struct sink *s = tp_listener_data(l);
    s->listener_closed = 1;
}

/* Dials beta from alpha and waits for both ends. */
static void
connect_pair(struct sim *s, struct sink *k, tp_listener **l, struct tpt_client *cl)
{
    assert_int_equal(tp_listen(s->b, "beta", sink_accept, k, l), 0);
    assert_int_equal(tpt_client_dial(s->a, "beta", cl), 0);
    TPT_RUN_UNTIL(&s->loop, cl->connect_status != 1 && k->c);
    assert_int_equal(cl->connect_status, 0);
}

static void
close_pair(struct sim *s, struct sink *k, tp_listener *l, struct tpt_client *cl)
{
    tpt_client_close(cl);
    if (k->c)
        tp_close(k->c, sink_closed);
    tp_listener_close(l, sink_listener_closed);
    TPT_RUN_UNTIL(&s->loop, cl->closed && (!k->c || k->closed) && k->listener_closed);
    tpt_client_free(cl);
}

/* --- tests --- */

static void
test_names_and_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_mem_world *w;
    struct tp_mem_link bad = { .loss_ppm = TP_MEM_LOSS_PPM_MAX + 1 };
    assert_int_equal(tp_mem_world_new(&loop, 1, &bad, &w), -EINVAL);
    bad = (struct tp_mem_link){ .mtu = TP_MEM_MTU_MIN - 1 };
    assert_int_equal(tp_mem_world_new(&loop, 1, &bad, &w), -EINVAL);
    bad = (struct tp_mem_link){ .mtu = 4096, .window = 100 };
    assert_int_equal(tp_mem_world_new(&loop, 1, &bad, &w), -EINVAL);
    bad = (struct tp_mem_link){ .latency_ms = TP_MEM_LATENCY_MS_MAX + 1 };
    assert_int_equal(tp_mem_world_new(&loop, 1, &bad, &w), -EINVAL);
    assert_int_equal(tp_mem_world_new(&loop, 1, NULL, &w), 0);

    static const char *bad_names[] = { "", "a b", "a/b", "a:1", "ü", "x\n" };
    tp_net *n;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_int_equal(tp_mem_net_new(w, bad_names[i], &n), -EINVAL);
    char lng[TP_MEM_NAME_MAX + 1];
    memset(lng, 'a', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    assert_int_equal(tp_mem_net_new(w, lng, &n), -EINVAL);
    lng[TP_MEM_NAME_MAX - 1] = '\0'; /* longest allowed */
    assert_int_equal(tp_mem_net_new(w, lng, &n), 0);
    assert_int_equal(tp_net_free(n), 0);

    assert_int_equal(tp_mem_net_new(w, "node-1", &n), 0);
    tp_net *dup;
    assert_int_equal(tp_mem_net_new(w, "node-1", &dup), -EEXIST);
    assert_string_equal(tp_net_kind(n), "mem");
    assert_int_equal(tp_mem_world_close(w), -EBUSY);

    struct sink k = { 0 };
    tp_listener *l, *l2;
    assert_int_equal(tp_listen(n, "node-1", sink_accept, &k, &l), 0);
    assert_string_equal(tp_listener_addr(l), "node-1");
    assert_int_equal(tp_listen(n, "node-1", sink_accept, &k, &l2), -EADDRINUSE);
    assert_int_equal(tp_listen(n, "bad name", sink_accept, &k, &l2), -EINVAL);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(n, "no/such", &cl), -EINVAL);
    assert_int_equal(tp_net_free(n), -EBUSY);
    tp_listener_close(l, sink_listener_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(k.listener_closed);

    struct tp_mem_link ok = { .latency_ms = 5 };
    assert_int_equal(tp_mem_world_set_link(w, "x", "y", &ok), 0);
    assert_int_equal(tp_mem_world_set_link(w, "x", "y", &ok), 0); /* replaces */
    assert_int_equal(tp_mem_world_set_link(w, "x", "", &ok), -EINVAL);
    assert_int_equal(tp_net_free(n), 0);
    assert_int_equal(tp_mem_world_close(w), 0);
    tpt_loop_finish(&loop);
}

/* Connection set-up costs one round trip, an echo another: both measured in
 * loop time are at least what the model says. */
static void
test_latency(void **state)
{
    struct sim s;
    struct tp_mem_link link = { .latency_ms = 50 };
    sim_init(&s, 7, &link);
    struct tpt_echo e;
    assert_int_equal(tpt_echo_listen(s.b, "beta", &e), 0);
    uv_update_time(&s.loop);
    uint64_t t0 = uv_now(&s.loop);
    struct tpt_client cl;
    assert_int_equal(tpt_client_dial(s.a, "beta", &cl), 0);
    TPT_RUN_UNTIL(&s.loop, cl.connect_status != 1);
    assert_int_equal(cl.connect_status, 0);
    assert_true(cl.connect_ms - t0 >= 100);
    assert_true(cl.connect_ms - t0 < SANITY_MS);
    assert_string_equal(tp_conn_remote_addr(cl.c), "beta");
    assert_string_equal(tp_conn_local_addr(cl.c), "alpha/0");
    assert_non_null(e.conns[0]);
    assert_string_equal(tp_conn_remote_addr(e.conns[0]), "alpha/0");
    assert_string_equal(tp_conn_local_addr(e.conns[0]), "beta");
    assert_int_equal(tp_conn_mtu(cl.c), TP_MEM_MTU);
    assert_int_equal(tp_conn_bandwidth(cl.c), 0);

    uv_update_time(&s.loop);
    uint64_t t1 = uv_now(&s.loop);
    static const uint8_t msg[] = "ping";
    assert_int_equal(tpt_client_send(&cl, msg, sizeof(msg), 2), 0);
    TPT_RUN_UNTIL(&s.loop, cl.rx_len == sizeof(msg));
    assert_memory_equal(cl.rx, msg, sizeof(msg));
    assert_true(cl.first_rx_ms - t1 >= 100);
    assert_true(cl.first_rx_ms - t1 < SANITY_MS);

    tpt_client_close(&cl);
    TPT_RUN_UNTIL(&s.loop, cl.closed && e.closed == 1);
    assert_int_equal(e.last_end, 0);
    tpt_echo_shutdown(&e);
    TPT_RUN_UNTIL(&s.loop, e.listener_closed);
    tpt_client_free(&cl);
    sim_done(&s);
}

/* At 1 MB/s, 300 kB take at least 300 ms to leave; the send callback runs
 * only then, and tp_conn_queued() shows the backlog meanwhile. */
static void
test_bandwidth(void **state)
{
    enum {
        LEN = 300000
    };
    static uint8_t data[LEN];
    tu_fill_random(data, LEN, 3);
    struct sim s;
    struct tp_mem_link link = { .bandwidth = 1000000, .mtu = 1500 };
    sim_init(&s, 7, &link);
    struct sink k = { .want = data, .want_len = LEN, .read = 1 };
    tp_listener *l;
    struct tpt_client cl;
    connect_pair(&s, &k, &l, &cl);
    assert_int_equal(tp_conn_bandwidth(cl.c), 1000000);
    assert_int_equal(tp_conn_mtu(cl.c), 1500);

    uv_update_time(&s.loop);
    uint64_t t0 = uv_now(&s.loop);
    assert_int_equal(tpt_client_send(&cl, data, LEN / 2, 1), 0);
    assert_int_equal(tpt_client_send(&cl, data + LEN / 2, LEN - LEN / 2, 3), 0);
    assert_int_equal(tp_conn_queued(cl.c), LEN);
    run_for(&s.loop, 50);
    size_t q = tp_conn_queued(cl.c);
    assert_true(q > 0 && q <= LEN); /* the first send cannot have finished */
    TPT_RUN_UNTIL(&s.loop, cl.sends_ok == 2 && k.got == LEN);
    uv_update_time(&s.loop);
    assert_true(uv_now(&s.loop) - t0 >= 300);
    assert_true(k.done_ms - t0 >= 300);
    assert_false(k.mismatch);
    assert_int_equal(tp_conn_queued(cl.c), 0);
    close_pair(&s, &k, l, &cl);
    sim_done(&s);
}

/* 20% segment loss: every byte still arrives, in order, just later. */
static uint64_t
lossy_transfer(uint64_t seed, uint32_t loss_ppm, uint64_t *ret_ms)
{
    enum {
        LEN = 256 * 1024
    };
    static uint8_t data[LEN];
    tu_fill_random(data, LEN, seed);
    struct sim s;
    struct tp_mem_link link = { .latency_ms = 10, .loss_ppm = loss_ppm, .mtu = 1024 };
    sim_init(&s, seed, &link);
    struct sink k = { .want = data, .want_len = LEN, .read = 1 };
    tp_listener *l;
    struct tpt_client cl;
    connect_pair(&s, &k, &l, &cl);
    uv_update_time(&s.loop);
    uint64_t t0 = uv_now(&s.loop);
    for (size_t off = 0; off < LEN; off += LEN / 8)
        assert_int_equal(tpt_client_send(&cl, data + off, LEN / 8, 1), 0);
    TPT_RUN_UNTIL(&s.loop, k.got == LEN);
    assert_int_equal(k.got, LEN);
    assert_false(k.mismatch);
    *ret_ms = k.done_ms - t0;
    struct tp_mem_stats st;
    tp_mem_world_stats(s.w, &st);
    assert_int_equal(st.segments, LEN / 1024);
    assert_int_equal(st.bytes, LEN);
    assert_int_equal(st.connections, 1);
    close_pair(&s, &k, l, &cl);
    sim_done(&s);
    return st.losses;
}

static void
test_loss_in_order(void **state)
{
    uint64_t ms_clean, ms_lossy, ms_again;
    assert_int_equal(lossy_transfer(11, 0, &ms_clean), 0);
    uint64_t losses = lossy_transfer(11, 200000, &ms_lossy);
    /* About 20% of 256 segments (and some retransmissions) were lost. */
    assert_true(losses > 20 && losses < 120);
    /* Each loss holds the stream for an RTO (30 ms), the clean run does not. */
    assert_true(ms_lossy >= 10 + 30);
    /* Deterministic: the same seed loses the same segments. */
    assert_int_equal(lossy_transfer(11, 200000, &ms_again), losses);
    assert_int_not_equal(lossy_transfer(12, 200000, &ms_again), 0);
    (void)ms_clean;
}

/* A receiver that does not read holds the sender to one window; reading
 * again releases the rest. Pausing mid-stream keeps bytes, order, end. */
static void
test_window_backpressure(void **state)
{
    enum {
        LEN = 8 << 20,
        WINDOW = 1 << 20
    };
    uint8_t *data = malloc(LEN);
    assert_non_null(data);
    tu_fill_random(data, LEN, 5);
    struct sim s;
    struct tp_mem_link link = { .latency_ms = 1, .window = WINDOW };
    sim_init(&s, 7, &link);
    struct sink k = { .want = data, .want_len = LEN, .read = 0 };
    tp_listener *l;
    struct tpt_client cl;
    connect_pair(&s, &k, &l, &cl);
    for (size_t off = 0; off < LEN; off += 1 << 20)
        assert_int_equal(tpt_client_send(&cl, data + off, 1 << 20, 1), 0);
    run_for(&s.loop, 30);
    assert_int_equal(k.got, 0);
    assert_true(tp_conn_queued(cl.c) >= LEN - WINDOW);
    assert_true(cl.sends_ok <= 1);

    assert_int_equal(tp_read_start(k.c, sink_recv, sink_end), 0);
    TPT_RUN_UNTIL(&s.loop, k.got >= LEN / 2);
    tp_read_stop(k.c);
    size_t at = k.got;
    run_for(&s.loop, 20);
    assert_int_equal(k.got, at); /* paused: nothing delivered */
    assert_int_equal(tp_read_start(k.c, sink_recv, sink_end), 0);
    TPT_RUN_UNTIL(&s.loop, k.got == LEN && cl.sends_ok == LEN >> 20);
    assert_false(k.mismatch);
    /* The end of stream waits behind the data of a paused reader too. */
    tp_read_stop(k.c);
    tpt_client_close(&cl);
    run_for(&s.loop, 20);
    assert_false(k.ended);
    assert_int_equal(tp_read_start(k.c, sink_recv, sink_end), 0);
    TPT_RUN_UNTIL(&s.loop, k.ended);
    assert_int_equal(k.end_status, 0);
    tp_close(k.c, sink_closed);
    tp_listener_close(l, sink_listener_closed);
    TPT_RUN_UNTIL(&s.loop, cl.closed && k.closed && k.listener_closed);
    tpt_client_free(&cl);
    sim_done(&s);
    free(data);
}

/* Close semantics: sends that already left are delivered before the end of
 * stream; sends still queued are cancelled; the close callback runs after
 * every send callback; unknown endpoints refuse; closing while dialling
 * cancels the dial. */
struct order {
    int events[8];
    int n;
};

static void
order_sent(tp_conn *c, void *arg, int status)
{
    struct order *o = arg;
    o->events[o->n++] = status == 0 ? 1 : status == -ECANCELED ? 2 : 99;
}

static void
order_closed(tp_conn *c)
{
    struct tpt_client *cl = tp_conn_data(c);
    struct order *o = (struct order *)cl->rx; /* borrowed slot, see below */
    o->events[o->n++] = 3;
    cl->closed = 1;
}

static void
test_close_semantics(void **state)
{
    enum {
        LEN = 20000
    };
    static uint8_t data[LEN];
    tu_fill_random(data, LEN, 9);
    struct sim s;
    struct tp_mem_link link = { .latency_ms = 20, .bandwidth = 100000, .mtu = 1000 };
    sim_init(&s, 7, &link);
    struct sink k = { .want = data, .want_len = LEN, .read = 1 };
    tp_listener *l;
    struct tpt_client cl;
    connect_pair(&s, &k, &l, &cl);

    /* First send leaves (100 ms at 100 kB/s), the second is still queued
     * when the connection closes. */
    struct order o = { 0 };
    tp_buf b1 = { data, LEN / 2 }, b2 = { data + LEN / 2, LEN / 2 };
    assert_int_equal(tp_send(cl.c, &b1, 1, order_sent, &o), 0);
    assert_int_equal(tp_send(cl.c, &b2, 1, order_sent, &o), 0);
    TPT_RUN_UNTIL(&s.loop, o.n == 1);
    assert_int_equal(o.events[0], 1);
    cl.rx = (uint8_t *)&o;
    tp_conn *c = cl.c;
    tp_close(c, order_closed);
    cl.c = NULL;
    assert_int_equal(tp_send(c, &b1, 1, order_sent, &o), -EPIPE);
    TPT_RUN_UNTIL(&s.loop, cl.closed && k.ended);
    assert_int_equal(o.n, 3);
    assert_int_equal(o.events[1], 2); /* cancelled */
    assert_int_equal(o.events[2], 3); /* close callback last */
    /* What left arrived, then the end: the cancelled send may have had its
     * first segment on the wire already (as a TCP write can be cut short). */
    assert_true(k.got >= LEN / 2 && k.got < LEN);
    assert_false(k.mismatch);
    assert_int_equal(k.end_status, 0);
    cl.rx = NULL;
    tp_close(k.c, sink_closed);
    TPT_RUN_UNTIL(&s.loop, k.closed);
    k.c = NULL;

    /* Unknown endpoint: refused after one round trip. */
    uv_update_time(&s.loop);
    uint64_t t0 = uv_now(&s.loop);
    struct tpt_client c2;
    assert_int_equal(tpt_client_dial(s.a, "gamma", &c2), 0);
    TPT_RUN_UNTIL(&s.loop, c2.connect_status != 1);
    assert_int_equal(c2.connect_status, -ECONNREFUSED);
    assert_true(c2.connect_ms - t0 >= 40);
    tpt_client_close(&c2);

    /* Closed before the dial completed: the dial reports -ECANCELED. */
    struct tpt_client c3;
    assert_int_equal(tpt_client_dial(s.a, "beta", &c3), 0);
    tpt_client_close(&c3);
    TPT_RUN_UNTIL(&s.loop, c2.closed && c3.closed);
    assert_int_equal(c3.connect_status, -ECANCELED);
    /* The server may have accepted it meanwhile; it then sees the end. */
    if (k.c) {
        TPT_RUN_UNTIL(&s.loop, k.ended);
        tp_close(k.c, sink_closed);
    }
    tp_listener_close(l, sink_listener_closed);
    TPT_RUN_UNTIL(&s.loop, k.listener_closed);
    sim_done(&s);
}

/* Per-pair parameters override the world's defaults. */
static void
test_link_override(void **state)
{
    struct sim s;
    struct tp_mem_link fast = { .latency_ms = 1 }, slow = { .latency_ms = 80, .mtu = 200 };
    sim_init(&s, 7, &fast);
    assert_int_equal(tp_mem_world_set_link(s.w, "beta", "alpha", &slow), 0);
    struct sink k = { .read = 1 };
    tp_listener *l;
    struct tpt_client cl;
    uv_update_time(&s.loop);
    uint64_t t0 = uv_now(&s.loop);
    connect_pair(&s, &k, &l, &cl);
    assert_true(cl.connect_ms - t0 >= 160);
    assert_int_equal(tp_conn_mtu(cl.c), 200);
    assert_int_equal(tp_conn_mtu(k.c), 200);
    close_pair(&s, &k, l, &cl);
    sim_done(&s);
}

/* Twenty nodes in a full mesh at 50 ms and 5% loss: every node echoes
 * through every other one and gets its bytes back intact. */
static void
test_mesh(void **state)
{
    enum {
        N = 20,
        LEN = 16 * 1024
    };
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_mem_world *w;
    struct tp_mem_link link = {
        .latency_ms = 50, .loss_ppm = 50000, .mtu = 1400, .bandwidth = 10 * 1000 * 1000
    };
    assert_int_equal(tp_mem_world_new(&loop, 2024, &link, &w), 0);
    tp_net *nets[N];
    struct tpt_echo *echo = calloc(N, sizeof(*echo));
    struct tpt_client *cl = calloc(N * N, sizeof(*cl));
    uint8_t *data = malloc(LEN);
    assert_true(echo && cl && data);
    tu_fill_random(data, LEN, 77);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "node-%d", i);
        assert_int_equal(tp_mem_net_new(w, name, &nets[i]), 0);
        assert_int_equal(tpt_echo_listen(nets[i], name, &echo[i]), 0);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            if (i == j)
                continue;
            snprintf(name, sizeof(name), "node-%d", j);
            assert_int_equal(tpt_client_dial(nets[i], name, &cl[i * N + j]), 0);
            cl[i * N + j].close_at = LEN;
        }
    int connected = 0;
    while (!connected && uv_run(&loop, UV_RUN_ONCE)) {
        connected = 1;
        for (int x = 0; x < N * N; x++)
            if (x / N != x % N && cl[x].connect_status == 1)
                connected = 0;
    }
    for (int x = 0; x < N * N; x++)
        if (x / N != x % N) {
            assert_int_equal(cl[x].connect_status, 0);
            assert_int_equal(tpt_client_send(&cl[x], data, LEN, 2), 0);
        }
    int done = 0;
    while (!done && uv_run(&loop, UV_RUN_ONCE)) {
        done = 1;
        for (int x = 0; x < N * N; x++)
            if (x / N != x % N && !cl[x].closed)
                done = 0;
    }
    for (int x = 0; x < N * N; x++) {
        if (x / N == x % N)
            continue;
        assert_int_equal(cl[x].rx_len, LEN);
        assert_memory_equal(cl[x].rx, data, LEN);
        tpt_client_free(&cl[x]);
    }
    unsigned closed = 0;
    while (uv_run(&loop, UV_RUN_ONCE)) {
        closed = 0;
        for (int i = 0; i < N; i++)
            closed += echo[i].closed;
        if (closed == N * (N - 1))
            break;
    }
    struct tp_mem_stats st;
    tp_mem_world_stats(w, &st);
    assert_int_equal(st.connections, N * (N - 1));
    assert_true(st.losses > 0);
    assert_int_equal(st.bytes, 2ULL * N * (N - 1) * LEN);
    for (int i = 0; i < N; i++) {
        assert_int_equal(echo[i].accepted, N - 1);
        assert_int_equal(echo[i].ended, N - 1);
        tpt_echo_shutdown(&echo[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++)
        assert_int_equal(tp_net_free(nets[i]), 0);
    assert_int_equal(tp_mem_world_close(w), 0);
    tpt_loop_finish(&loop);
    free(echo);
    free(cl);
    free(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_errors),    cmocka_unit_test(test_latency),
        cmocka_unit_test(test_bandwidth),           cmocka_unit_test(test_loss_in_order),
        cmocka_unit_test(test_window_backpressure), cmocka_unit_test(test_close_semantics),
        cmocka_unit_test(test_link_override),       cmocka_unit_test(test_mesh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
