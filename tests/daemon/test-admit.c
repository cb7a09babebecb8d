/* SPDX-License-Identifier: MIT */
/*
 * daemon/admit.c: session slots (issue 9 item 4).
 *
 * Table tests of the pure policy: the per-address cap (loopback by full
 * address), the /24 and /48 caps (loopback only with the test hook), the
 * reserve of outbound slots, eviction of silent handshakes and of idle
 * sessions (most crowded prefix first, never a protected one).
 *
 * test_flood_tcp: real nodes on 127.0.0.1 over TCP. An attacker speaking
 * the real protocol opens max_peers authenticated sessions, each with a
 * fresh key from its own 127.0.0.x source address, and keeps them idle.
 * The victim is then told to dial its configured seeder: it must connect
 * and fetch a model from it. Then 9 sessions from one address and, on a
 * node with the /24 hook, 5 sessions from one /24 (cap 4) must leave
 * exactly the cap open. On the code before the fix the attacker took every
 * slot, the configured dial got -EAGAIN and the fetch never started.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon/admit.h"
#include "daemon/node.h"
#include "libcas/store.h"
#include "proto/session.h"
#include "testutil.h"
#include "transport/tcp.h"

/* ---- the pure policy ---------------------------------------------------- */

enum {
    T0 = 1000000,
    MANY = 128
};

static nvx_admit_peer tab[MANY];
static char tab_addr[MANY][64];

static nvx_admit_peer *
add(size_t *n, const char *addr, bool inbound, bool established, uint64_t t_start)
{
    snprintf(tab_addr[*n], sizeof(tab_addr[*n]), "%s", addr);
    tab[*n] = (nvx_admit_peer){
        .addr = tab_addr[*n], .inbound = inbound, .established = established, .t_start_ms = t_start
    };
    return &tab[(*n)++];
}

static void
test_keys(void **state)
{
    (void)state;
    nvx_admit_key a1, p1, a2, p2;
    bool h1, h2;
    nvx_admit_keys("127.0.0.2:1", false, &a1, &p1, &h1);
    nvx_admit_keys("127.0.0.3:1", false, &a2, &p2, &h2);
    assert_false(h1); /* loopback: no prefix cap without the hook */
    assert_memory_not_equal(&a1, &a2, sizeof(a1));
    nvx_admit_keys("127.0.0.2:9", true, &a2, &p2, &h2);
    assert_true(h2);
    assert_memory_equal(&a1, &a2, sizeof(a1)); /* the port does not count */
    nvx_admit_keys("10.1.2.3:1", false, &a1, &p1, &h1);
    nvx_admit_keys("10.1.2.200:1", false, &a2, &p2, &h2);
    assert_true(h1 && h2);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    nvx_admit_keys("10.1.3.3:1", false, &a2, &p2, &h2);
    assert_memory_not_equal(&p1, &p2, sizeof(p1));
    nvx_admit_keys("[::ffff:10.1.2.9]:1", false, &a2, &p2, &h2); /* mapped: IPv4 */
    assert_memory_equal(&p1, &p2, sizeof(p1));
    nvx_admit_keys("[2001:db8:1::1]:1", false, &a1, &p1, &h1);
    nvx_admit_keys("[2001:db8:1:ffff::2]:1", false, &a2, &p2, &h2);
    assert_memory_equal(&p1, &p2, sizeof(p1)); /* one /48 */
    nvx_admit_keys("[2001:db8:2::1]:1", false, &a2, &p2, &h2);
    assert_memory_not_equal(&p1, &p2, sizeof(p1));
    nvx_admit_keys("n1/3", false, &a1, &p1, &h1); /* not an IP: its own key */
    assert_false(h1);
    assert_int_equal(nvx_admit_inbound_max(64), 48);
    assert_int_equal(nvx_admit_inbound_max(2), 1);
    assert_int_equal(nvx_admit_inbound_max(1), 1);
}

static void
test_per_addr(void **state)
{
    (void)state;
    nvx_admit_cfg cfg = { .max_peers = 64 };
    size_t n = 0, v = 99;
    for (int i = 0; i < NVX_ADMIT_PER_ADDR_DEFAULT; i++)
        add(&n, "127.0.0.2:1000", true, true, T0);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.2:2", T0, &v), NVX_ADMIT_NO);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.3:2", T0, &v), NVX_ADMIT_YES);
    /* One of them still handshaking: the newcomer replaces it. */
    tab[3].established = false;
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.2:2", T0, &v), NVX_ADMIT_EVICT);
    assert_int_equal(v, 3);
    /* Our own dials from that address do not count against it. */
    tab[3].established = true;
    tab[3].inbound = false;
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.2:2", T0, &v), NVX_ADMIT_YES);
}

static void
test_per_prefix(void **state)
{
    (void)state;
    nvx_admit_cfg cfg = { .max_peers = 64 };
    size_t n = 0, v = 99;
    char a[64];
    for (int i = 0; i < NVX_ADMIT_PER_PREFIX_DEFAULT; i++) {
        snprintf(a, sizeof(a), "198.51.100.%d:1", i + 1);
        add(&n, a, true, true, T0);
    }
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "198.51.100.200:1", T0, &v), NVX_ADMIT_NO);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "198.51.101.1:1", T0, &v), NVX_ADMIT_YES);
    /* Loopback: no /24 cap, except with the test hook. */
    n = 0;
    for (int i = 0; i < NVX_ADMIT_PER_PREFIX_DEFAULT; i++) {
        snprintf(a, sizeof(a), "127.0.0.%d:1", i + 1);
        add(&n, a, true, true, T0);
    }
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.200:1", T0, &v), NVX_ADMIT_YES);
    cfg.prefix_loopback = true;
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.0.200:1", T0, &v), NVX_ADMIT_NO);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "127.0.1.200:1", T0, &v), NVX_ADMIT_YES);
    /* IPv6: one /48. */
    n = 0;
    cfg.per_prefix = 2;
    add(&n, "[2001:db8:1::1]:1", true, true, T0);
    add(&n, "[2001:db8:1:2::1]:1", true, true, T0);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "[2001:db8:1:3::1]:1", T0, &v), NVX_ADMIT_NO);
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "[2001:db8:2::1]:1", T0, &v), NVX_ADMIT_YES);
}

/* Inbound sessions stop at max_peers - reserve; a full node refuses fresh
 * sessions and evicts the idlest of the most crowded network. */
static void
test_inbound_full(void **state)
{
    (void)state;
    nvx_admit_cfg cfg = { .max_peers = 16 };
    size_t n = 0, v = 99;
    char a[64];
    for (int i = 0; i < 12; i++) { /* 16 - 16/4 */
        snprintf(a, sizeof(a), "%s.%d:1", i < 2 ? "192.0.2" : "203.0.113", i + 1);
        add(&n, a, true, true, T0 + (uint64_t)i);
    }
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "198.51.100.1:1", T0, &v), NVX_ADMIT_NO);
    uint64_t later = T0 + NVX_ADMIT_IDLE_MS + 100;
    tab[2].t_useful_ms = later - 1; /* busy: not idle */
    assert_int_equal(nvx_admit_inbound(&cfg, tab, n, "198.51.100.1:1", later, &v), NVX_ADMIT_EVICT);
    assert_int_equal(v, 3); /* 203.0.113/24 is the crowd; 3 is its longest quiet */
    /* But our own dials still have room: 12 < 16. */
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_PLAIN, T0, &v), NVX_ADMIT_YES);
}

static void
test_dial_full(void **state)
{
    (void)state;
    nvx_admit_cfg cfg = { .max_peers = 4 };
    size_t n = 0, v = 99;
    add(&n, "192.0.2.1:1", false, true, T0)->protected_ = true;
    add(&n, "192.0.2.2:1", true, true, T0);
    add(&n, "192.0.2.3:1", true, true, T0 + 5);
    add(&n, "192.0.2.4:1", false, true, T0);
    tab[3].protected_ = true;
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_PLAIN, T0, &v), NVX_ADMIT_NO);
    /* Not idle yet: even a configured dial waits. */
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_USEFUL, T0, &v), NVX_ADMIT_NO);
    uint64_t later = T0 + NVX_ADMIT_IDLE_MS + 10;
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_USEFUL, later, &v),
                     NVX_ADMIT_EVICT);
    assert_int_equal(v, 1);
    /* A silent handshake goes first, idle or not. */
    tab[2].established = false;
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_USEFUL, T0, &v), NVX_ADMIT_EVICT);
    assert_int_equal(v, 2);
    /* Protected sessions are never evicted. */
    tab[1].protected_ = tab[2].protected_ = true;
    assert_int_equal(nvx_admit_dial(&cfg, tab, n, NVX_ADMIT_DIAL_USEFUL, later, &v), NVX_ADMIT_NO);
}

/* ---- real nodes over TCP ------------------------------------------------ */

enum {
    VICTIM_MAX_PEERS = 16,
    LIMIT_MS = 60000, /* a bound against hangs, not a timing assertion */
    ATK_MAX = 32,
};

typedef struct atk {
    int fd;
    proto_identity *id;
    proto_session *s;
    bool closed;
} atk;

typedef struct tworld {
    uv_loop_t loop;
    char *dir[3];
    cas_store *store[3];
    proto_identity *ident[3];
    tp_net *net[3];
    nvx_node *node[3];
    uint8_t model[32];
    atk a[ATK_MAX];
    size_t n_atk;
    int fetch_state; /* 0 running, 1 done, -1 failed */
    int stopped;
} tworld;

static tworld *tw;

static void
nap(void)
{
    struct timespec ts = { 0, 1000000 };
    nanosleep(&ts, NULL);
}

static uint64_t
mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void
atk_flush(atk *k)
{
    uint8_t *buf;
    size_t len;
    while (proto_session_output(k->s, &buf, &len) > 0) {
        const uint8_t *p = buf;
        while (len > 0) {
            ssize_t w = send(k->fd, p, len, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) { /* refused or reset: the node hung up */
                k->closed = true;
                break;
            }
            p += w;
            len -= (size_t)w;
        }
        free(buf);
    }
}

/* Reads what arrived on every attacker socket; notices hang-ups. */
static void
atk_pump(tworld *w)
{
    for (size_t i = 0; i < w->n_atk; i++) {
        atk *k = &w->a[i];
        if (k->closed)
            continue;
        uint8_t buf[4096];
        ssize_t r = recv(k->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            k->closed = true;
            continue;
        }
        size_t off = 0;
        while (r > 0 && off < (size_t)r) {
            size_t used = 0;
            proto_event ev;
            int f = proto_session_feed(k->s, buf + off, (size_t)r - off, mono_ms(), &used, &ev);
            off += used;
            if (f < 0) {
                k->closed = true;
                break;
            }
            if (f == 0)
                break;
        }
        atk_flush(k); /* HS_FINISH after HS_RESP */
    }
}

/* Opens an attacker session with a fresh key from source address src to
 * the victim's listen address. */
static void
atk_open(tworld *w, const char *src, const char *dst)
{
    assert_true(w->n_atk < ATK_MAX);
    atk *k = &w->a[w->n_atk++];
    memset(k, 0, sizeof(*k));
    struct sockaddr_storage ss, ds;
    char s[64];
    snprintf(s, sizeof(s), "%s:0", src);
    assert_int_equal(tp_tcp_addr_parse(s, 1, &ss), 0);
    assert_int_equal(tp_tcp_addr_parse(dst, 0, &ds), 0);
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(k->fd >= 0);
    assert_int_equal(bind(k->fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
    /* Blocking connect: the kernel completes it from the listen backlog. */
    assert_int_equal(connect(k->fd, (struct sockaddr *)&ds, sizeof(struct sockaddr_in)), 0);
    assert_int_equal(proto_identity_generate(&k->id), 0);
    proto_session_config cfg = { .identity = k->id, .initiator = true, .agent = "attacker" };
    assert_int_equal(proto_session_new(&cfg, mono_ms(), &k->s), 0);
    atk_flush(k);
}

static void
atk_close_all(tworld *w)
{
    for (size_t i = 0; i < w->n_atk; i++) {
        close(w->a[i].fd);
        proto_session_free(w->a[i].s);
        proto_identity_free(w->a[i].id);
    }
    w->n_atk = 0;
}

typedef struct count {
    size_t established, inbound, handshaking;
    const uint8_t *want; /* count sessions with this node id */
    bool found;
} count;

static void
count_cb(void *arg, const nvx_peer_info *pi)
{
    count *c = arg;
    if (pi->state == 2)
        c->established++;
    if (!pi->outbound)
        c->inbound++;
    if (pi->state != 2)
        c->handshaking++;
    if (c->want && pi->node_id && pi->state == 2 && memcmp(pi->node_id, c->want, 32) == 0)
        c->found = true;
}

static count
node_count(nvx_node *n, const uint8_t *want)
{
    count c = { .want = want };
    nvx_node_peers_each(n, count_cb, &c);
    return c;
}

/* Pumps the loop and the attacker until done(w) (bounded). */
static void
run_until(tworld *w, bool (*done)(tworld *))
{
    uint64_t end = mono_ms() + LIMIT_MS;
    while (!done(w) && mono_ms() < end) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        atk_pump(w);
        nap();
    }
    assert_true(done(w));
}

static size_t
atk_open_count(tworld *w)
{
    size_t o = 0;
    for (size_t i = 0; i < w->n_atk; i++)
        o += !w->a[i].closed;
    return o;
}

/* Every attacker session finished its handshake or was turned away, and
 * the node has no handshake left pending. */
static bool
atk_settled(tworld *w)
{
    for (size_t i = 0; i < w->n_atk; i++)
        if (!w->a[i].closed && !proto_session_established(w->a[i].s))
            return false;
    return node_count(w->node[0], NULL).handshaking == 0;
}

static bool
victim_has_seeder(tworld *w)
{
    return node_count(w->node[0], nvx_node_id(w->node[1])).found;
}

static bool
fetch_ended(tworld *w)
{
    return w->fetch_state != 0;
}

static bool
all_stopped(tworld *w)
{
    return w->stopped == 3;
}

static void
on_fetch(void *arg, const proto_ctl_progress *p, int error)
{
    tworld *w = arg;
    if (error < 0)
        w->fetch_state = -1;
    else if (p && p->state == PROTO_CTL_STATE_DONE)
        w->fetch_state = 1;
    else if (p && (p->state == PROTO_CTL_STATE_FAILED || p->state == PROTO_CTL_STATE_CANCELLED))
        w->fetch_state = -1;
}

static void
on_stopped(void *arg)
{
    ((tworld *)arg)->stopped++;
}

static void
node_start(tworld *w, int i, unsigned max_peers, unsigned per_prefix, bool prefix_loopback)
{
    w->dir[i] = tu_tmpdir("admit");
    assert_int_equal(cas_store_open(w->dir[i], CAS_STORE_CREATE, &w->store[i]), 0);
    assert_int_equal(proto_identity_generate(&w->ident[i]), 0);
    assert_int_equal(tp_tcp_net_new(&w->loop, NULL, &w->net[i]), 0);
    nvx_node_opts o = {
        .loop = &w->loop,
        .net = w->net[i],
        .store = w->store[i],
        .identity = w->ident[i],
        .listen = "127.0.0.1:0",
        .max_peers = max_peers,
        .inbound_per_prefix = per_prefix,
        .prefix_loopback = prefix_loopback,
        .agent = "test-admit",
    };
    assert_int_equal(nvx_node_new(&o, &w->node[i]), 0);
}

static void
add_model(cas_store *s, uint8_t ret_id[32])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    static uint8_t buf[60000];
    tu_fill_random(buf, sizeof(buf), 7);
    assert_int_equal(write(fds[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fds[1]);
    /* Pinned: nvxd serves pinned models only (serve = pinned). */
    cas_store_add_opts o = { .kind = CAS_CHUNKER_CDC, .pin = true };
    assert_true(cas_store_add_fd(s, fds[0], &o, ret_id) >= 0);
    close(fds[0]);
}

static void
test_flood_tcp(void **state)
{
    (void)state;
    tw = calloc(1, sizeof(*tw));
    tworld *w = tw;
    assert_int_equal(uv_loop_init(&w->loop), 0);
    node_start(w, 0, VICTIM_MAX_PEERS, 0, false); /* the victim */
    node_start(w, 1, 0, 0, false);                /* its configured seeder */
    node_start(w, 2, 0, 4, true);                 /* /24 cap 4 on loopback */
    add_model(w->store[1], w->model);
    const char *victim = nvx_node_listen_addr(w->node[0]);

    /* max_peers idle sessions, each a fresh key from its own address. */
    char src[32];
    for (int i = 0; i < VICTIM_MAX_PEERS; i++) {
        snprintf(src, sizeof(src), "127.0.0.%d", 10 + i);
        atk_open(w, src, victim);
    }
    run_until(w, atk_settled);
    size_t held = atk_open_count(w);
    print_message("attacker holds %zu of %u slots\n", held, VICTIM_MAX_PEERS);
    assert_true(held <= nvx_admit_inbound_max(VICTIM_MAX_PEERS));

    /* The configured peer still gets a slot and the fetch works. */
    assert_int_equal(nvx_node_peer_add(w->node[0], nvx_node_listen_addr(w->node[1]), false), 0);
    run_until(w, victim_has_seeder);
    nvx_fetch_sub *sub;
    assert_int_equal(nvx_node_fetch(w->node[0], w->model, false, on_fetch, w, &sub), 0);
    run_until(w, fetch_ended);
    assert_int_equal(w->fetch_state, 1);
    atk_close_all(w);

    /* Per address: 9 sessions from one address leave the cap open. */
    for (int i = 0; i < NVX_ADMIT_PER_ADDR_DEFAULT + 1; i++)
        atk_open(w, "127.0.0.77", victim);
    run_until(w, atk_settled);
    assert_int_equal(atk_open_count(w), NVX_ADMIT_PER_ADDR_DEFAULT);
    atk_close_all(w);

    /* Per /24 (the test hook makes loopback count by /24): cap 4. */
    for (int i = 0; i < 5; i++) {
        snprintf(src, sizeof(src), "127.0.5.%d", 1 + i);
        atk_open(w, src, nvx_node_listen_addr(w->node[2]));
    }
    uint64_t end = mono_ms() + LIMIT_MS;
    while (atk_open_count(w) > 4 && mono_ms() < end) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        atk_pump(w);
        nap();
    }
    assert_int_equal(atk_open_count(w), 4);
    atk_close_all(w);

    for (int i = 0; i < 3; i++)
        nvx_node_stop(w->node[i], on_stopped, w);
    run_until(w, all_stopped);
    for (int i = 0; i < 3; i++) {
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
    tw = NULL;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),       cmocka_unit_test(test_per_addr),
        cmocka_unit_test(test_per_prefix), cmocka_unit_test(test_inbound_full),
        cmocka_unit_test(test_dial_full),  cmocka_unit_test(test_flood_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
