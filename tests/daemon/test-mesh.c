/* SPDX-License-Identifier: MIT */
/*
 * daemon/mesh.c with real nodes over the in-memory transport.
 *
 * test_line: three nodes in a line A - B - C (C never talks to A). A holds
 * a model and a published name record. Through gossip alone, C learns that
 * A provides the model (a provider record relayed by B), stores the signed
 * name record (verified, relayed, written on the pool), and resolves
 * PUBLISHER/NAME to the model once it trusts the key.
 *
 * test_pex_tcp: the same line over TCP on 127.0.0.1, where node 0 listens
 * on 0.0.0.0: node 2 learns node 0's address by peer exchange from node 1
 * (its HELLO address, with the unspecified host replaced by the address the
 * session came from) and dials it.
 *
 * test_discovery_tcp: two TCP nodes on 127.0.0.1 with no peers configured
 * find each other by LAN multicast (on the loopback interface, a random
 * port) and connect; skipped when this machine has no loopback multicast.
 *
 * test_lossy: ten nodes, each dialing two earlier ones, over links with
 * 50 ms latency and 5% loss; a record published on node 0 reaches every
 * node's store, and every node learns node 0 provides the model.
 */
#define _DEFAULT_SOURCE /* struct ip_mreq */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon/mesh.h"
#include "daemon/node.h"
#include "libcas/namerec.h"
#include "libcas/store.h"
#include "testutil.h"
#include "transport/mem.h"
#include "transport/tcp.h"

enum {
    MAXN = 10,
    MAXP = 2
};

typedef struct world {
    int n;
    uv_loop_t loop;
    tp_mem_world *mw;
    char name[MAXN][16];
    char listen[MAXN][64];
    char dial_addr[MAXN][64];
    bool discovery;
    uint16_t disc_port;
    char *dir[MAXN];
    cas_store *store[MAXN];
    proto_identity *ident[MAXN];
    tp_net *net[MAXN];
    nvx_node *node[MAXN];
    nvx_mesh *mesh[MAXN];
    const char *peers[MAXN][MAXP];
    size_t n_peers[MAXN];
    uint8_t model[32];
    cas_seckey *sk;
    cas_namerec rec;
    int published;
    int provider_cb[MAXN]; /* nvx_mesh_opts.provider calls per node */
    uint8_t other[32];     /* a model announced with nvx_mesh_provide */
    int stopped;
    int closed;
} world;

/* Adds a few KiB of random bytes as a model to s. */
static void
add_model(cas_store *s, uint8_t ret_id[32])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    uint8_t buf[8192];
    tu_fill_random(buf, sizeof(buf), 42);
    assert_int_equal(write(fds[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fds[1]);
    cas_store_add_opts ao = { .pin = true }; /* nodes announce pinned models only */
    assert_true(cas_store_add_fd(s, fds[0], &ao, ret_id) >= 0);
    close(fds[0]);
}

static void
on_published(void *arg, int r)
{
    world *w = arg;
    assert_int_equal(r, 1);
    w->published++;
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

static void
run_until(world *w, bool (*done)(world *), uint64_t limit_ms)
{
    /* A generous bound so that a broken build fails instead of hanging; not
     * a timing assertion. */
    uint64_t end = uv_now(&w->loop) + limit_ms;
    while (!done(w) && uv_now(&w->loop) < end) {
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
    }
    assert_true(done(w));
}

/* Node i knows node 0 provides the model and has the name record stored. */
static bool
node_knows(world *w, int i)
{
    uint8_t ids[4][32];
    if (nvx_gossip_providers(nvx_mesh_gossip(w->mesh[i]), w->model, 0, ids, 4) == 0)
        return false;
    cas_namerec got;
    return cas_namerec_store_get(w->store[i], w->rec.pk, w->rec.name, &got) == 0;
}

static bool
all_know(world *w)
{
    if (w->published != 1)
        return false;
    for (int i = 1; i < w->n; i++)
        if (!node_knows(w, i))
            return false;
    return true;
}

static bool
all_stopped(world *w)
{
    return w->stopped == w->n;
}

static bool
all_closed(world *w)
{
    return w->closed == w->n;
}

/* Makes n nodes; node 0 holds the model and the stored name record. Node i
 * dials the nodes listed in peers[i] (filled by the caller after this). */
static world *
world_new(int n, const struct tp_mem_link *link, bool tcp)
{
    world *w = calloc(1, sizeof(*w));
    w->n = n;
    assert_int_equal(uv_loop_init(&w->loop), 0);
    if (!tcp)
        assert_int_equal(tp_mem_world_new(&w->loop, 7, link, &w->mw), 0);
    for (int i = 0; i < n; i++) {
        snprintf(w->name[i], sizeof(w->name[i]), "n%d", i);
        snprintf(w->listen[i], sizeof(w->listen[i]), "%s", tcp ? "127.0.0.1:0" : w->name[i]);
        w->dir[i] = tu_tmpdir("mesh");
        assert_int_equal(cas_store_open(w->dir[i], CAS_STORE_CREATE, &w->store[i]), 0);
        assert_int_equal(proto_identity_generate(&w->ident[i]), 0);
        if (tcp)
            assert_int_equal(tp_tcp_net_new(&w->loop, NULL, &w->net[i]), 0);
        else
            assert_int_equal(tp_mem_net_new(w->mw, w->name[i], &w->net[i]), 0);
    }
    add_model(w->store[0], w->model);
    /* The publisher signs a name record and stores it on node 0, as `nvx
     * publish` does. */
    assert_int_equal(cas_seckey_generate(&w->sk), 0);
    assert_int_equal(cas_namerec_sign(w->sk, "tiny/v1", 1, 1767225600, w->model, &w->rec), 0);
    assert_int_equal(cas_namerec_store_put(w->store[0], &w->rec), 1);
    return w;
}

typedef struct cb_arg {
    world *w;
    int i;
} cb_arg;

static cb_arg cb_args[MAXN];

static void
on_provider(void *arg, const uint8_t node[static 32], const uint8_t model[static 32])
{
    (void)node;
    (void)model;
    cb_arg *a = arg;
    a->w->provider_cb[a->i]++;
}

static void
node_start(world *w, int i)
{
    nvx_node_opts o = {
        .loop = &w->loop,
        .net = w->net[i],
        .store = w->store[i],
        .identity = w->ident[i],
        .listen = w->listen[i],
        .peers = w->peers[i],
        .n_peers = w->n_peers[i],
        .agent = "test-mesh",
    };
    assert_int_equal(nvx_node_new(&o, &w->node[i]), 0);
    cb_args[i] = (cb_arg){ .w = w, .i = i };
    nvx_mesh_opts mo = {
        .loop = &w->loop,
        .node = w->node[i],
        .identity = w->ident[i],
        .store = w->store[i],
        .provider = on_provider,
        .arg = &cb_args[i],
        .discovery = w->discovery,
        .discovery_port = w->disc_port,
        .discovery_interface = "127.0.0.1",
        .discovery_interval_ms = 100,
    };
    assert_int_equal(nvx_mesh_new(&mo, &w->mesh[i]), 0);
}

static bool
c_knows_other(world *w)
{
    uint8_t ids[4][32];
    return nvx_gossip_providers(nvx_mesh_gossip(w->mesh[2]), w->other, 0, ids, 4) == 1;
}

static void
world_start(world *w)
{
    for (int i = 0; i < w->n; i++)
        node_start(w, i);
    assert_int_equal(nvx_mesh_publish(w->mesh[0], w->model, "tiny/v1", on_published, w), 0);
}

static void
world_free(world *w)
{
    for (int i = 0; i < w->n; i++)
        nvx_node_stop(w->node[i], on_stopped, w);
    run_until(w, all_stopped, 30000);
    for (int i = 0; i < w->n; i++)
        nvx_mesh_close(w->mesh[i], on_closed, w);
    run_until(w, all_closed, 30000);
    for (int i = 0; i < w->n; i++) {
        nvx_node_free(w->node[i]);
        assert_int_equal(tp_net_free(w->net[i]), 0);
        proto_identity_free(w->ident[i]);
        cas_store_free(w->store[i]);
        tu_rm_rf(w->dir[i]);
        free(w->dir[i]);
    }
    assert_int_equal(tp_mem_world_close(w->mw), 0);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    cas_seckey_free(w->sk);
    free(w);
}

static void
test_line(void **state)
{
    (void)state;
    world *w = world_new(3, NULL, false);
    w->peers[1][0] = w->name[0]; /* n1 dials n0, n2 dials n1 */
    w->n_peers[1] = 1;
    w->peers[2][0] = w->name[1];
    w->n_peers[2] = 1;
    world_start(w);

    /* A bad identity is refused. */
    nvx_mesh *bad = NULL;
    nvx_mesh_opts mo = {
        .loop = &w->loop, .node = w->node[0], .identity = w->ident[1], .store = w->store[0]
    };
    assert_int_equal(nvx_mesh_new(&mo, &bad), -EINVAL);

    run_until(w, all_know, 20000);

    /* n2 heard that n0 has the model, though it never talked to n0. */
    uint8_t ids[4][32];
    assert_int_equal(nvx_gossip_providers(nvx_mesh_gossip(w->mesh[2]), w->model, 0, ids, 4), 1);
    assert_memory_equal(ids[0], proto_identity_node_id(w->ident[0]), 32);
    cas_namerec got;
    assert_int_equal(cas_namerec_store_get(w->store[2], w->rec.pk, "tiny/v1", &got), 0);
    assert_memory_equal(&got, &w->rec, sizeof(got));

    /* n2 resolves it: untrusted until it trusts the key. */
    char hex[CAS_KEYID_HEX_SIZE], target[64];
    cas_keyid_format(w->rec.keyid, hex);
    snprintf(target, sizeof(target), "%s/tiny/v1", hex);
    cas_name_resolution res;
    assert_int_equal(cas_namerec_resolve(w->store[2], target, &res), 0);
    assert_false(res.trusted);
    cas_pubkey pk;
    cas_seckey_public(w->sk, &pk);
    char b64[CAS_PUBKEY_B64_SIZE];
    cas_pubkey_base64(&pk, b64);
    assert_int_equal(cas_store_key_put(w->store[2], pk.keyid, 8, b64, strlen(b64), "pub"), 0);
    assert_int_equal(cas_namerec_resolve(w->store[2], "pub/tiny/v1", &res), 0);
    assert_true(res.trusted);
    assert_memory_equal(res.rec.model_id, w->model, 32);

    /* Gossip told nvxd's provider callback on n2 (n0's record came via n1). */
    assert_true(w->provider_cb[2] >= 1);
    /* nvx_mesh_provide announces at once (a fetch just completed on n1). */
    memset(w->other, 0x42, 32);
    assert_int_equal(nvx_mesh_provide(w->mesh[1], w->other), 0);
    run_until(w, c_knows_other, 20000);

    /* Publishing a bad name fails at once; one nobody stored, in the cb. */
    assert_int_equal(nvx_mesh_publish(w->mesh[0], w->model, "a b", on_published, w), -EINVAL);
    world_free(w);
}

static bool
c_dialed_a(world *w)
{
    return nvx_gossip_connected(nvx_mesh_gossip(w->mesh[2]), proto_identity_node_id(w->ident[0]));
}

/* "0.0.0.0:PORT" or "127.0.0.1:PORT" -> "127.0.0.1:PORT" into w->dial_addr[i]. */
static void
loopback_addr(world *w, int i)
{
    const char *a = nvx_node_listen_addr(w->node[i]);
    const char *colon = strrchr(a, ':');
    assert_non_null(colon);
    snprintf(w->dial_addr[i], sizeof(w->dial_addr[i]), "127.0.0.1%s", colon);
}

static void
test_pex_tcp(void **state)
{
    (void)state;
    world *w = world_new(3, NULL, true);
    snprintf(w->listen[0], sizeof(w->listen[0]), "0.0.0.0:0");
    node_start(w, 0);
    loopback_addr(w, 0);
    w->peers[1][0] = w->dial_addr[0];
    w->n_peers[1] = 1;
    node_start(w, 1);
    loopback_addr(w, 1);
    w->peers[2][0] = w->dial_addr[1];
    w->n_peers[2] = 1;
    node_start(w, 2);
    assert_int_equal(nvx_mesh_publish(w->mesh[0], w->model, "tiny/v1", on_published, w), 0);
    run_until(w, c_dialed_a, 20000);
    run_until(w, all_know, 20000);
    /* n2 knows n0 at the loopback address, not at 0.0.0.0, and first
     * hand now: it dialed n0 there and the handshake proved the id. */
    char addr[PROTO_ADDR_MAX + 1];
    assert_int_equal(nvx_gossip_addr(nvx_mesh_gossip(w->mesh[2]),
                                     proto_identity_node_id(w->ident[0]), addr, sizeof(addr)),
                     NVX_PEX_FIRST_HAND);
    assert_string_equal(addr, w->dial_addr[0]);
    assert_int_equal(nvx_mesh_want(w->mesh[2], w->model), 0); /* connected already */
    world_free(w);
}

static bool
forgotten(world *w)
{
    char addr[PROTO_ADDR_MAX + 1];
    return nvx_gossip_addr(nvx_mesh_gossip(w->mesh[1]), w->other, addr, sizeof(addr)) == -ENOENT;
}

/*
 * Issue 9: a PEERS message claims that node X (a made-up id) is at n0's
 * address. n1 dials it pinned to X: n0 answers with its own key, so the
 * handshake fails, no session comes up, and n1 forgets the address. (Before,
 * n1 dialed unpinned, connected to n0 and kept X's address.) The PEERS
 * comes from a session injected into n1's gossip: n1's store is empty, so
 * gossip has nothing to send to it.
 */
static void
test_pex_pinned_tcp(void **state)
{
    (void)state;
    world *w = world_new(2, NULL, true);
    node_start(w, 0);
    node_start(w, 1);
    loopback_addr(w, 0);
    nvx_gossip *g = nvx_mesh_gossip(w->mesh[1]);
    uint8_t fake[PROTO_ID_LEN];
    memset(fake, 0x5a, sizeof(fake));
    memset(w->other, 0x3c, sizeof(w->other));
    const uint64_t handle = 0xfeed;
    uv_timeval64_t tv;
    assert_int_equal(uv_gettimeofday(&tv), 0);
    uint64_t now = (uint64_t)tv.tv_sec * 1000;
    assert_int_equal(nvx_gossip_peer_up(g, handle, fake, now), 0);
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_PEERS;
    m->u.peers.n = 1;
    memcpy(m->u.peers.peers[0].node_id, w->other, 32);
    m->u.peers.peers[0].addr.p = (const uint8_t *)w->dial_addr[0];
    m->u.peers.peers[0].addr.len = strlen(w->dial_addr[0]);
    assert_int_equal(nvx_gossip_on_message(g, handle, m, now), 0);
    nvx_gossip_peer_down(g, handle);
    free(m);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(g, &st);
    assert_int_equal(st.dials, 1);
    run_until(w, forgotten, 20000);
    assert_int_equal(nvx_gossip_sessions(g), 0);
    assert_false(nvx_gossip_connected(g, proto_identity_node_id(w->ident[0])));
    world_free(w);
}

/* A free UDP port, and whether multicast sent on 127.0.0.1 comes back to a
 * member socket here (plain sockets: a skip says "this machine"). */
static bool
loopback_multicast(uint16_t *ret_port)
{
    bool ok = false;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET };
    struct ip_mreq mr;
    memset(&mr, 0, sizeof(mr));
    inet_pton(AF_INET, "239.255.77.88", &mr.imr_multiaddr);
    inet_pton(AF_INET, "127.0.0.1", &mr.imr_interface);
    socklen_t len = sizeof(a);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr.imr_interface, sizeof(mr.imr_interface)) <
            0)
        goto out;
    struct sockaddr_in g = { .sin_family = AF_INET,
                             .sin_port = a.sin_port,
                             .sin_addr = mr.imr_multiaddr };
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char buf[8];
    ok = sendto(fd, "x", 1, 0, (struct sockaddr *)&g, sizeof(g)) == 1 && poll(&pfd, 1, 1000) == 1 &&
         recv(fd, buf, sizeof(buf), 0) == 1;
    *ret_port = ntohs(a.sin_port);
out:
    close(fd);
    return ok;
}

static bool
discovered(world *w)
{
    return nvx_gossip_connected(nvx_mesh_gossip(w->mesh[1]), proto_identity_node_id(w->ident[0]));
}

static void
test_discovery_tcp(void **state)
{
    (void)state;
    uint16_t port = 0;
    if (!loopback_multicast(&port)) {
        fprintf(stderr, "[  SKIP    ] no multicast on 127.0.0.1 here\n");
        skip();
    }
    world *w = world_new(2, NULL, true);
    w->discovery = true;
    w->disc_port = port;
    world_start(w);
    run_until(w, discovered, 20000);
    run_until(w, all_know, 20000);
    world_free(w);
}

static void
test_lossy(void **state)
{
    (void)state;
    struct tp_mem_link link = { .latency_ms = 50, .loss_ppm = 50000 };
    world *w = world_new(MAXN, &link, false);
    uint64_t x = 0x9e3779b97f4a7c15u; /* a fixed graph: each node dials two earlier ones */
    for (int i = 1; i < w->n; i++) {
        int a = (int)((x >> 7) % (uint64_t)i);
        x = x * 6364136223846793005u + 1442695040888963407u;
        int b = (int)((x >> 7) % (uint64_t)i);
        x = x * 6364136223846793005u + 1442695040888963407u;
        w->peers[i][w->n_peers[i]++] = w->name[a];
        if (b != a)
            w->peers[i][w->n_peers[i]++] = w->name[b];
    }
    world_start(w);
    run_until(w, all_know, 60000);
    for (int i = 1; i < w->n; i++) {
        nvx_gossip_stats st;
        nvx_gossip_stats_get(nvx_mesh_gossip(w->mesh[i]), &st);
        assert_int_equal(st.invalid, 0);
    }
    world_free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),           cmocka_unit_test(test_pex_tcp),
        cmocka_unit_test(test_pex_pinned_tcp), cmocka_unit_test(test_discovery_tcp),
        cmocka_unit_test(test_lossy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
