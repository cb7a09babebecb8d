/* SPDX-License-Identifier: MIT */
/*
 * Connection reversal (daemon/reverse.h, its wiring in daemon/mesh.c).
 *
 * The core's bounds, table by table: a relay's rate per asking session, a
 * target's rate per relay and its pending dials, strikes and the ban, the
 * fetcher's retry spacing, fixed-size tables under a churn of keys.
 *
 * test_hostile_tcp: real nodes and mesh over TCP on 127.0.0.1: a relay R,
 * a target T, an honest fetcher F, hostile peers H and G, and a plain TCP
 * listener standing for a third party.
 * - F floods R with REVERSE_REQ for T: T hears at most the relay's burst.
 * - A REVERSE_REQ for a node R has no session with goes nowhere.
 * - H's HELLO claims an address on another host (127.0.0.2) than its
 *   session comes from: R forwards none of its requests.
 * - H, a session of T, floods T with REVERSE pointing at the third party
 *   under made-up node ids: the third party sees at most the per-relay
 *   burst of connections.
 * - G points T twice at R under made-up ids: T's dials meet R's key, G is
 *   struck twice and banned: its next REVERSE makes no connection.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <uv.h>

#include "daemon/mesh.h"
#include "daemon/node.h"
#include "daemon/reverse.h"
#include "libcas/store.h"
#include "testutil.h"
#include "transport/tcp.h"

/* ---- the core ------------------------------------------------------------ */

static void
test_relay_rate(void **state)
{
    (void)state;
    nvx_reverse *r;
    assert_int_equal(nvx_reverse_new(&r), 0);
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += nvx_reverse_relay_ok(r, 7, 1000);
    assert_int_equal(ok, NVX_REVERSE_RELAY_BURST);
    /* Another session has its own bucket. */
    assert_true(nvx_reverse_relay_ok(r, 8, 1000));
    /* One more per period, not more. */
    assert_false(nvx_reverse_relay_ok(r, 7, 1000 + NVX_REVERSE_RELAY_MS - 1));
    assert_true(nvx_reverse_relay_ok(r, 7, 1000 + NVX_REVERSE_RELAY_MS));
    assert_false(nvx_reverse_relay_ok(r, 7, 1000 + NVX_REVERSE_RELAY_MS));
    /* A long silence refills to the burst, never beyond. */
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += nvx_reverse_relay_ok(r, 7, 10000000);
    assert_int_equal(ok, NVX_REVERSE_RELAY_BURST);
    /* Churn: thousands of sessions keep the table at its size; each new
     * one starts with a burst (bounded per message anyway). */
    for (uint64_t s = 100; s < 5000; s++)
        assert_true(nvx_reverse_relay_ok(r, s, 10000000));
    nvx_reverse_session_gone(r, 7);
    nvx_reverse_free(r);
}

static void
id_of(uint8_t id[32], unsigned n)
{
    memset(id, 0, 32);
    id[0] = (uint8_t)n;
    id[1] = (uint8_t)(n >> 8);
}

static void
test_target_rate_and_pending(void **state)
{
    (void)state;
    nvx_reverse *r;
    assert_int_equal(nvx_reverse_new(&r), 0);
    uint8_t relay[32], other[32], node[32];
    id_of(relay, 1000);
    id_of(other, 1001);
    int ok = 0;
    for (unsigned i = 0; i < 50; i++) {
        id_of(node, i);
        ok += nvx_reverse_dial_ok(r, relay, node, "127.0.0.1:9", 0);
    }
    assert_int_equal(ok, NVX_REVERSE_DIAL_BURST);
    /* The same node twice is one dial. */
    id_of(node, 500);
    assert_true(nvx_reverse_dial_ok(r, other, node, "127.0.0.1:9", 0));
    assert_false(nvx_reverse_dial_ok(r, other, node, "127.0.0.1:9", 0));
    /* Pending dials in all are bounded, whatever the relays. */
    ok = 0;
    for (unsigned k = 0; k < 40; k++) {
        uint8_t rl[32];
        id_of(rl, 2000 + k);
        id_of(node, 600 + k);
        ok += nvx_reverse_dial_ok(r, rl, node, "127.0.0.1:9", 0);
    }
    assert_int_equal(ok, NVX_REVERSE_PENDING_MAX - NVX_REVERSE_DIAL_BURST - 1);
    assert_int_equal(nvx_reverse_pending(r, 0), NVX_REVERSE_PENDING_MAX);
    /* A resolved dial frees its slot; expired ones go too. */
    id_of(node, 500);
    nvx_reverse_resolved(r, node);
    assert_int_equal(nvx_reverse_pending(r, 0), NVX_REVERSE_PENDING_MAX - 1);
    assert_int_equal(nvx_reverse_pending(r, NVX_REVERSE_PENDING_MS), 0);
    /* Over-long addresses are refused. */
    char longaddr[200];
    memset(longaddr, 'a', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    id_of(node, 900);
    assert_false(nvx_reverse_dial_ok(r, other, node, longaddr, NVX_REVERSE_PENDING_MS));
    nvx_reverse_free(r);
}

static void
test_strikes(void **state)
{
    (void)state;
    nvx_reverse *r;
    assert_int_equal(nvx_reverse_new(&r), 0);
    uint8_t relay[32], node[32];
    id_of(relay, 77);
    uint64_t t = 5000, banned_at = 0;
    for (unsigned i = 0; i < NVX_REVERSE_STRIKES; i++) {
        id_of(node, i);
        assert_true(nvx_reverse_dial_ok(r, relay, node, "127.0.0.1:1", t));
        /* Another address than the one asked for is not this dial. */
        assert_false(nvx_reverse_mismatch(r, node, "127.0.0.1:2", t));
        assert_true(nvx_reverse_mismatch(r, node, "127.0.0.1:1", t));
        banned_at = t;
        t += NVX_REVERSE_DIAL_MS;
    }
    id_of(node, 99);
    assert_false(nvx_reverse_dial_ok(r, relay, node, "127.0.0.1:1", t));
    assert_false(
        nvx_reverse_dial_ok(r, relay, node, "127.0.0.1:1", banned_at + NVX_REVERSE_BAN_MS - 1));
    assert_true(nvx_reverse_dial_ok(r, relay, node, "127.0.0.1:1", banned_at + NVX_REVERSE_BAN_MS));
    /* A dial nobody asked for is no reversal. */
    id_of(node, 123);
    assert_false(nvx_reverse_mismatch(r, node, "127.0.0.1:1", t));
    nvx_reverse_free(r);
}

static void
test_want_spacing(void **state)
{
    (void)state;
    nvx_reverse *r;
    assert_int_equal(nvx_reverse_new(&r), 0);
    uint8_t target[32];
    id_of(target, 5);
    assert_true(nvx_reverse_want(r, target, 100));
    assert_false(nvx_reverse_want(r, target, 100 + NVX_REVERSE_RETRY_MS - 1));
    assert_true(nvx_reverse_want(r, target, 100 + NVX_REVERSE_RETRY_MS));
    nvx_reverse_free(r);
}

/* ---- real nodes over TCP ------------------------------------------------- */

enum {
    R_,
    T_,
    F_,
    H_,
    G_,
    NODES
};

typedef struct world {
    uv_loop_t loop;
    char *dir[NODES];
    cas_store *store[NODES];
    proto_identity *ident[NODES];
    tp_net *net[NODES];
    nvx_node *node[NODES];
    nvx_mesh *mesh[NODES];
    char addr[NODES][64]; /* where to dial each */
    const char *peers[NODES][2];
    size_t n_peers[NODES];
    unsigned reverses_at_t; /* REVERSE messages T received */
    uv_tcp_t third;         /* a third party: counts connections */
    char third_addr[64];
    unsigned third_conns;
    unsigned pending; /* T's pending reversal dials before G's REVERSE */
    bool was_pending;
    int stopped, closed;
} world;

static void
t_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    (void)p;
    if (m->type == PROTO_MSG_REVERSE)
        ((world *)arg)->reverses_at_t++;
}

static void
on_third(uv_stream_t *s, int status)
{
    world *w = s->data;
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    uv_tcp_init(&w->loop, c);
    if (uv_accept(s, (uv_stream_t *)c) == 0)
        w->third_conns++;
    uv_close((uv_handle_t *)c, (uv_close_cb)free);
}

static void
run_ms(world *w, uint64_t ms)
{
    uint64_t end = uv_now(&w->loop) + ms;
    while (uv_now(&w->loop) < end) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(&w->loop);
    }
}

/* Runs until done(w) or limit_ms: a bound against hangs, not a timing
 * assertion. */
static void
run_until(world *w, bool (*done)(world *), uint64_t limit_ms)
{
    uint64_t end = uv_now(&w->loop) + limit_ms;
    while (!done(w) && uv_now(&w->loop) < end) {
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
    }
    assert_true(done(w));
}

static void
node_start(world *w, int i, const char *listen)
{
    w->dir[i] = tu_tmpdir("reverse");
    assert_int_equal(cas_store_open(w->dir[i], CAS_STORE_CREATE, &w->store[i]), 0);
    assert_int_equal(proto_identity_generate(&w->ident[i]), 0);
    assert_int_equal(tp_tcp_net_new(&w->loop, NULL, &w->net[i]), 0);
    nvx_node_opts o = {
        .loop = &w->loop,
        .net = w->net[i],
        .store = w->store[i],
        .identity = w->ident[i],
        .listen = listen,
        .peers = w->peers[i],
        .n_peers = w->n_peers[i],
        .agent = "test-reverse",
    };
    assert_int_equal(nvx_node_new(&o, &w->node[i]), 0);
    nvx_mesh_opts mo = {
        .loop = &w->loop,
        .node = w->node[i],
        .identity = w->ident[i],
        .store = w->store[i],
        .no_pex_dial = true, /* only what the test sends connects nodes */
    };
    assert_int_equal(nvx_mesh_new(&mo, &w->mesh[i]), 0);
    snprintf(w->addr[i], sizeof(w->addr[i]), "%s", nvx_node_listen_addr(w->node[i]));
}

static const uint8_t *
id(world *w, int i)
{
    return proto_identity_node_id(w->ident[i]);
}

static bool
connected(world *w, int a, int b)
{
    return nvx_node_peer_by_id(w->node[a], id(w, b)) != NULL;
}

static bool
sessions_up(world *w)
{
    return connected(w, T_, R_) && connected(w, F_, R_) && connected(w, H_, R_) &&
           connected(w, H_, T_) && connected(w, G_, T_);
}

static bool
f_t_connected(world *w)
{
    return connected(w, F_, T_);
}

static bool
t_heard_more(world *w)
{
    return w->reverses_at_t >= 2; /* one more than F's REVERSE_AT */
}

static bool
third_called(world *w)
{
    return w->third_conns >= 1;
}

/* G's REVERSE made T dial (pending), then the dial met R's key (struck,
 * no longer pending). */
static bool
dial_pending(world *w)
{
    w->was_pending =
        nvx_reverse_pending(nvx_mesh_reverse(w->mesh[T_]), uv_now(&w->loop)) > w->pending;
    return w->was_pending;
}

static bool
dial_struck(world *w)
{
    return nvx_reverse_pending(nvx_mesh_reverse(w->mesh[T_]), uv_now(&w->loop)) <= w->pending;
}

static void
send_to(world *w, int from, int to, uint8_t type, const uint8_t node[32], const char *addr)
{
    proto_msg m = { .type = type };
    memcpy(m.u.reverse.node_id, node, 32);
    if (addr)
        m.u.reverse.addr = (proto_str){ (const uint8_t *)addr, strlen(addr) };
    nvx_peer *p = nvx_node_peer_by_id(w->node[from], id(w, to));
    assert_non_null(p);
    assert_int_equal(nvx_peer_send(p, &m), 0);
}

static void
on_stopped(void *arg)
{
    ((world *)arg)->stopped++;
}

static void
on_closed(void *arg)
{
    ((world *)arg)->closed++;
}

static bool
all_stopped(world *w)
{
    return w->stopped == NODES;
}

static bool
all_closed(world *w)
{
    return w->closed == NODES;
}

static void
test_hostile_tcp(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&w->loop, &w->third);
    w->third.data = w;
    assert_int_equal(uv_tcp_bind(&w->third, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&w->third, 64, on_third), 0);
    int len = sizeof(sin);
    uv_tcp_getsockname(&w->third, (struct sockaddr *)&sin, &len);
    snprintf(w->third_addr, sizeof(w->third_addr), "127.0.0.1:%u", ntohs(sin.sin_port));

    node_start(w, R_, "127.0.0.1:0");
    w->peers[T_][0] = w->addr[R_];
    w->n_peers[T_] = 1;
    node_start(w, T_, "127.0.0.1:0");
    w->peers[F_][0] = w->addr[R_];
    w->n_peers[F_] = 1;
    node_start(w, F_, "127.0.0.1:0");
    /* H listens on another loopback host than its sessions come from. */
    w->peers[H_][0] = w->addr[R_];
    w->peers[H_][1] = w->addr[T_];
    w->n_peers[H_] = 2;
    node_start(w, H_, "127.0.0.2:0");
    w->peers[G_][0] = w->addr[T_];
    w->n_peers[G_] = 1;
    node_start(w, G_, "127.0.0.1:0");
    nvx_node_hook hook = { .message = t_message, .arg = w };
    assert_int_equal(nvx_node_hook_add(w->node[T_], &hook), 0);
    run_until(w, sessions_up, 20000);

    /* F asks by T's listening address: R finds T's session (it comes
     * from T's host and T's HELLO lists that port) and T dials F. */
    assert_false(nvx_mesh_connected_at(w->mesh[F_], w->addr[T_]));
    assert_int_equal(nvx_mesh_ask_at(w->mesh[F_], w->addr[T_], NULL, 0), 1);
    assert_int_equal(nvx_mesh_ask_at(w->mesh[F_], w->addr[T_], NULL, 0), 0); /* retry spacing */
    assert_int_equal(nvx_mesh_ask_at(w->mesh[F_], "t.example:1", NULL, 0), -EINVAL);
    run_until(w, f_t_connected, 10000);
    assert_int_equal(w->reverses_at_t, 1);
    assert_true(nvx_mesh_connected_at(w->mesh[F_], w->addr[T_]));
    assert_int_equal(nvx_mesh_ask_at(w->mesh[F_], w->addr[T_], NULL, 0), -EISCONN);

    /* F floods R: T hears at most the relay's burst, plus what the bucket
     * earned while a loaded machine ran the loop. */
    run_ms(w, NVX_REVERSE_RELAY_MS * 2);
    unsigned before = w->reverses_at_t;
    uint64_t t0 = uv_now(&w->loop);
    for (int i = 0; i < 50; i++)
        send_to(w, F_, R_, PROTO_MSG_REVERSE_REQ, id(w, T_), NULL);
    run_until(w, t_heard_more, 10000);
    run_ms(w, 300);
    uint64_t earned = (uv_now(&w->loop) - t0) / NVX_REVERSE_RELAY_MS;
    assert_true(w->reverses_at_t - before <= NVX_REVERSE_RELAY_BURST + earned);
    unsigned seen = w->reverses_at_t;

    /* A target R has no session with: nothing goes anywhere. */
    uint8_t nobody[32];
    randombytes_buf(nobody, 32);
    run_ms(w, NVX_REVERSE_RELAY_MS * 2);
    send_to(w, F_, R_, PROTO_MSG_REVERSE_REQ, nobody, NULL);
    /* H's address is on 127.0.0.2, its session comes from 127.0.0.1. */
    for (int i = 0; i < 3; i++)
        send_to(w, H_, R_, PROTO_MSG_REVERSE_REQ, id(w, T_), NULL);
    run_ms(w, 500);
    assert_int_equal(w->reverses_at_t, seen);

    /* By address (REVERSE_AT, as the DHT names providers): nothing for an
     * address no session of R's is at, nor for H (its HELLO address is
     * not on the host its session comes from). */
    run_ms(w, NVX_REVERSE_RELAY_MS * 2);
    send_to(w, F_, R_, PROTO_MSG_REVERSE_AT, nobody, w->third_addr);
    send_to(w, H_, R_, PROTO_MSG_REVERSE_AT, nobody, w->addr[T_]);
    run_ms(w, 500);
    assert_int_equal(w->reverses_at_t, seen);
    assert_int_equal(w->third_conns, 0);

    /* H floods T with REVERSE at a third party under made-up ids. */
    t0 = uv_now(&w->loop);
    for (int i = 0; i < 50; i++) {
        uint8_t x[32];
        randombytes_buf(x, 32);
        send_to(w, H_, T_, PROTO_MSG_REVERSE, x, w->third_addr);
    }
    run_until(w, third_called, 10000);
    run_ms(w, 300);
    earned = (uv_now(&w->loop) - t0) / NVX_REVERSE_DIAL_MS;
    assert_true(w->third_conns <= NVX_REVERSE_DIAL_BURST + earned);
    unsigned conns = w->third_conns;

    /* G points T at R (another key) twice: two strikes, banned. Each dial
     * is pending until the handshake meets R's key. */
    nvx_reverse *rev = nvx_mesh_reverse(w->mesh[T_]);
    for (int k = 0; k < NVX_REVERSE_STRIKES; k++) {
        uint8_t x[32];
        randombytes_buf(x, 32);
        w->pending = nvx_reverse_pending(rev, uv_now(&w->loop));
        send_to(w, G_, T_, PROTO_MSG_REVERSE, x, w->addr[R_]);
        run_until(w, dial_pending, 10000);
        run_until(w, dial_struck, 10000);
    }
    uint8_t x[32];
    randombytes_buf(x, 32);
    send_to(w, G_, T_, PROTO_MSG_REVERSE, x, w->third_addr);
    run_ms(w, 500);
    assert_int_equal(w->third_conns, conns);

    for (int i = 0; i < NODES; i++)
        nvx_node_stop(w->node[i], on_stopped, w);
    run_until(w, all_stopped, 30000);
    for (int i = 0; i < NODES; i++)
        nvx_mesh_close(w->mesh[i], on_closed, w);
    run_until(w, all_closed, 30000);
    uv_close((uv_handle_t *)&w->third, NULL);
    for (int i = 0; i < NODES; i++) {
        nvx_node_free(w->node[i]);
        assert_int_equal(tp_net_free(w->net[i]), 0);
        proto_identity_free(w->ident[i]);
        cas_store_free(w->store[i]);
        tu_rm_rf(w->dir[i]);
        free(w->dir[i]);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_rate),  cmocka_unit_test(test_target_rate_and_pending),
        cmocka_unit_test(test_strikes),     cmocka_unit_test(test_want_spacing),
        cmocka_unit_test(test_hostile_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
