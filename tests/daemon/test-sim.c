/* SPDX-License-Identifier: MIT */
/*
 * A 20-node mesh in one process (issue 3, "In-process simulation over the
 * in-memory link"): nvx_node over transport/mem.h nets on one loop, each
 * node with its own store in a temp dir. Links have 50 ms latency, 5% segment
 * loss (each loss costs one RTO, see mem.h) and a modest bandwidth. The graph
 * is connected but far from full: a random spanning tree plus one or two
 * extra random links per node (seeded), so each node is configured with 1..3
 * peers to dial and most nodes never talk to the publisher.
 *
 * The least connected node adds a few MiB of random bytes and pins them
 * (publish). Once every session is up, all other nodes start fetching the
 * model with pin at the same moment (a swarm): a node far from the
 * publisher gets it from neighbours that are still fetching (partials are
 * traded) or finished (and seed it). That needs the fetcher to ask its
 * neighbours again (nvxd's periodic WANT); NVX_SIM_WAVES=1 instead starts a
 * node's fetch only when a neighbour holds the complete model.
 *
 * Checks: all 19 fetches end DONE, every store verifies the model, and every
 * export is bit-identical to the published bytes. Prints the simulated
 * duration (loop time from the first fetch to the last DONE), per-node
 * bytes served and each node's distance in hops from the publisher, so a
 * reader sees the load spread over the nodes and not only on the publisher.
 * No timing assertion: the run is bounded only so that a broken build fails
 * instead of hanging.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon/log.h"
#include "daemon/node.h"
#include "libcas/hash.h"
#include "libcas/store.h"
#include "testutil.h"
#include "transport/mem.h"

enum {
    SIM_NODES = 20,
    SIM_MAX_DIALS = 3,                 /* configured peers per node, at most */
    SIM_MODEL_BYTES = 4 * 1024 * 1024, /* 4 MiB: ~64 chunks of the default 64 KiB average */
    SIM_LATENCY_MS = 50,               /* one way */
    SIM_LOSS_PPM = 50000,              /* 5% of segments */
    SIM_BANDWIDTH = 4 * 1024 * 1024,   /* bytes/s per direction of a connection */
    SIM_MTU = 16 * 1024,               /* segment size: more segments, more losses drawn */
    SIM_CONNECT_LIMIT_MS = 30 * 1000,  /* bounds against hangs, not timing checks */
    SIM_FETCH_LIMIT_MS = 120 * 1000,
    SIM_STOP_LIMIT_MS = 30 * 1000,
};

enum sim_state {
    ST_WAITING, /* no neighbour has the model yet */
    ST_FETCHING,
    ST_DONE,
    ST_FAILED,
    ST_CORRUPT, /* holds the model, serves it corrupted, fetches nothing */
};

struct sim_node {
    struct sim *sim;
    int idx;
    char name[16];
    char *dir;
    cas_store *store;
    proto_identity *ident;
    tp_net *net;
    nvx_node *node;
    const char *dials[SIM_MAX_DIALS];
    size_t n_dials;
    enum sim_state state;
    int error;
    int hops;         /* shortest path to the publisher */
    uint64_t t_start; /* loop ms */
    uint64_t t_done;
    nvx_fetch_sub *sub;
};

struct sim {
    uv_loop_t loop;
    tp_mem_world *world;
    struct sim_node nodes[SIM_NODES];
    bool adj[SIM_NODES][SIM_NODES];
    int degree[SIM_NODES];
    uint8_t model[CAS_HASH_LEN];
    uint8_t *bytes; /* the published model */
    int pub;        /* the publisher's index */
    int corrupt;    /* the corrupting node's index, -1: none */
    int fetchers;   /* nodes that fetch */
    bool waves;     /* NVX_SIM_WAVES=1: see start_ready_fetches */
    int done, failed, stopped;
};

static uint64_t
rng_next(uint64_t *x)
{
    /* splitmix64: a fixed, seeded graph on every run. */
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void
link_nodes(struct sim *s, int dialer, int target)
{
    struct sim_node *d = &s->nodes[dialer];
    assert_true(d->n_dials < SIM_MAX_DIALS);
    d->dials[d->n_dials++] = s->nodes[target].name;
    s->adj[dialer][target] = s->adj[target][dialer] = true;
    s->degree[dialer]++;
    s->degree[target]++;
}

/* A random spanning tree (in a shuffled order each node dials one node
 * placed before it), then every node dials one or two more random nodes it
 * is not linked to yet. Connected, 2..3 dials for all but the tree's root. */
static void
make_graph(struct sim *s, uint64_t seed)
{
    int perm[SIM_NODES];
    for (int i = 0; i < SIM_NODES; i++)
        perm[i] = i;
    for (int i = SIM_NODES - 1; i > 0; i--) {
        int j = (int)(rng_next(&seed) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 1; i < SIM_NODES; i++)
        link_nodes(s, perm[i], perm[rng_next(&seed) % (uint64_t)i]);
    for (int i = 0; i < SIM_NODES; i++) {
        int extra = 1 + (int)(rng_next(&seed) % 2);
        for (int k = 0; k < extra && s->nodes[i].n_dials < SIM_MAX_DIALS; k++) {
            for (int tries = 0; tries < 100; tries++) {
                int t = (int)(rng_next(&seed) % SIM_NODES);
                if (t != i && !s->adj[i][t]) {
                    link_nodes(s, i, t);
                    break;
                }
            }
        }
    }
}

static void
count_established(void *arg, const nvx_peer_info *pi)
{
    if (pi->state == 2)
        (*(int *)arg)++;
}

static void
print_xfer(void *arg, const nvx_xfer_info *xi)
{
    print_message("sim:   node %d: transfer state %d, %llu of %llu chunks, %llu peers\n",
                  *(int *)arg, xi->state, (unsigned long long)xi->chunks_done,
                  (unsigned long long)xi->chunks_total, (unsigned long long)xi->peer_count);
}

/* For a failure: where every node stands. */
static void
dump_states(struct sim *s)
{
    static const char *names[] = { "waiting", "fetching", "done", "failed", "corrupting" };
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        int up = 0;
        if (sn->node)
            nvx_node_peers_each(sn->node, count_established, &up);
        print_message("sim: node %d: %s%s, %d of %d sessions up\n", i, names[sn->state],
                      i == s->pub ? " (publisher)" : "", up, s->degree[i]);
        if (sn->node)
            nvx_node_xfers_each(sn->node, print_xfer, &sn->idx);
    }
}

static void
run_until(struct sim *s, bool (*cond)(struct sim *), uint64_t limit_ms, const char *what)
{
    uint64_t end = uv_now(&s->loop) + limit_ms;
    while (!cond(s) && uv_now(&s->loop) < end) {
        uv_run(&s->loop, UV_RUN_ONCE);
        uv_update_time(&s->loop);
    }
    if (!cond(s)) {
        dump_states(s);
        fail_msg("simulation: %s did not happen within %llu ms", what,
                 (unsigned long long)limit_ms);
    }
}

static bool
all_connected(struct sim *s)
{
    for (int i = 0; i < SIM_NODES; i++) {
        int up = 0;
        nvx_node_peers_each(s->nodes[i].node, count_established, &up);
        if (up < s->degree[i])
            return false;
    }
    return true;
}

static void start_ready_fetches(struct sim *s);

static void
on_fetch(void *arg, const proto_ctl_progress *p, int error)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->sim;
    if (p->state != PROTO_CTL_STATE_DONE && p->state != PROTO_CTL_STATE_FAILED &&
        p->state != PROTO_CTL_STATE_CANCELLED)
        return;
    sn->sub = NULL; /* the final callback ends the subscription */
    sn->t_done = uv_now(&s->loop);
    if (p->state == PROTO_CTL_STATE_DONE) {
        sn->state = ST_DONE;
        s->done++;
        /* Its neighbours may start now: it seeds the (pinned) model. */
        start_ready_fetches(s);
    } else {
        sn->state = ST_FAILED;
        sn->error = error;
        s->failed++;
        print_message("sim: node %d fetch ended in state %llu (%s)\n", sn->idx,
                      (unsigned long long)p->state, strerror(error < 0 ? -error : EIO));
    }
}

/* Starts the fetch on every waiting node; in waves mode only on those with
 * a neighbour that holds the complete model (the publisher counts). */
static void
start_ready_fetches(struct sim *s)
{
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->state != ST_WAITING)
            continue;
        bool ready = !s->waves;
        for (int j = 0; j < SIM_NODES && !ready; j++)
            ready = s->adj[i][j] && s->nodes[j].state == ST_DONE;
        if (!ready)
            continue;
        sn->state = ST_FETCHING;
        sn->t_start = uv_now(&s->loop);
        assert_int_equal(nvx_node_fetch(sn->node, s->model, true, on_fetch, sn, &sn->sub), 0);
    }
}

static bool
all_fetched(struct sim *s)
{
    return s->done + s->failed == s->fetchers;
}

static void
on_stopped(void *arg)
{
    ((struct sim *)arg)->stopped++;
}

static bool
all_stopped(struct sim *s)
{
    return s->stopped == SIM_NODES;
}

static void
sum_bytes_out(void *arg, const nvx_peer_info *pi)
{
    *(uint64_t *)arg += pi->bytes_out;
}

/* Publishes SIM_MODEL_BYTES of random bytes on the publisher (added and
 * pinned, as `nvx add --pin` does). */
static void
publish(struct sim *s)
{
    s->bytes = malloc(SIM_MODEL_BYTES);
    assert_non_null(s->bytes);
    tu_fill_random(s->bytes, SIM_MODEL_BYTES, 0x51a7);
    char path[600];
    snprintf(path, sizeof(path), "%s/model.bin", s->nodes[s->pub].dir);
    assert_int_equal(tu_write_file(path, s->bytes, SIM_MODEL_BYTES), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    cas_store_add_opts ao = { .kind = CAS_CHUNKER_CDC, .pin = true };
    assert_int_equal(cas_store_add_fd(s->nodes[s->pub].store, fileno(f), &ao, s->model), 1);
    if (s->corrupt >= 0) {
        uint8_t id[CAS_HASH_LEN];
        assert_int_equal(lseek(fileno(f), 0, SEEK_SET), 0);
        assert_int_equal(cas_store_add_fd(s->nodes[s->corrupt].store, fileno(f), &ao, id), 1);
        assert_memory_equal(id, s->model, CAS_HASH_LEN);
    }
    fclose(f);
    unlink(path);
}

/* The copy on node i verifies and exports to exactly the published bytes;
 * it is complete and kept (so it is seeded). */
static void
check_copy(struct sim *s, int i)
{
    struct sim_node *sn = &s->nodes[i];
    cas_model_info info;
    assert_int_equal(cas_store_model_info(sn->store, s->model, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_COMPLETE);
    assert_true(info.kept);
    assert_int_equal(info.size, SIM_MODEL_BYTES);
    assert_int_equal(cas_store_verify(sn->store, s->model, NULL), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/export.bin", sn->dir);
    assert_int_equal(cas_store_export_path(sn->store, s->model, path, NULL, NULL, NULL), 0);
    uint8_t *got;
    size_t len;
    assert_int_equal(tu_read_file(path, &got, &len), 0);
    assert_int_equal(len, SIM_MODEL_BYTES);
    if (memcmp(got, s->bytes, len) != 0)
        fail_msg("node %d: exported copy differs from the published model", i);
    free(got);
    unlink(path);
}

/* Sessions of node i to the node with id `id`. */
struct find_peer {
    const uint8_t *id;
    int n;
};

static void
find_peer(void *arg, const nvx_peer_info *pi)
{
    struct find_peer *fp = arg;
    if (pi->state == 2 && pi->node_id && memcmp(pi->node_id, fp->id, 32) == 0)
        fp->n++;
}

/* The simulation of the running test, for the teardown after a failure. */
static struct sim *current;

/* Makes the world, the stores and the graph; chooses the publisher and
 * (with_corrupt) the corrupting node; publishes the model. */
static struct sim *
sim_new(bool with_corrupt)
{
    struct sim *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    current = s;
    assert_int_equal(uv_loop_init(&s->loop), 0);
    struct tp_mem_link link = {
        .latency_ms = SIM_LATENCY_MS,
        .loss_ppm = SIM_LOSS_PPM,
        .bandwidth = SIM_BANDWIDTH,
        .mtu = SIM_MTU,
    };
    assert_int_equal(tp_mem_world_new(&s->loop, 20261123, &link, &s->world), 0);
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->sim = s;
        sn->idx = i;
        snprintf(sn->name, sizeof(sn->name), "n%d", i);
        sn->dir = tu_tmpdir("sim");
        assert_int_equal(cas_store_open(sn->dir, CAS_STORE_CREATE, &sn->store), 0);
        assert_int_equal(proto_identity_generate(&sn->ident), 0);
        assert_int_equal(tp_mem_net_new(s->world, sn->name, &sn->net), 0);
    }
    make_graph(s, 0x5eed);
    /* The least connected node publishes: most nodes are hops away from it
     * and the copies must travel through other nodes that fetched first. */
    for (int i = 1; i < SIM_NODES; i++)
        if (s->degree[i] < s->degree[s->pub])
            s->pub = i;
    s->corrupt = -1;
    s->fetchers = SIM_NODES - 1;
    if (with_corrupt) {
        for (int i = 0; i < SIM_NODES; i++)
            if (i != s->pub && (s->corrupt < 0 || s->degree[i] > s->degree[s->corrupt]))
                s->corrupt = i;
        s->nodes[s->corrupt].state = ST_CORRUPT;
        s->fetchers--;
    }
    const char *waves = getenv("NVX_SIM_WAVES");
    s->waves = waves && strcmp(waves, "1") == 0;
    /* Hops from the publisher (breadth first), for the report. */
    int queue[SIM_NODES], head = 0, tail = 0;
    for (int i = 0; i < SIM_NODES; i++)
        s->nodes[i].hops = -1;
    s->nodes[s->pub].hops = 0;
    queue[tail++] = s->pub;
    while (head < tail) {
        int i = queue[head++];
        for (int j = 0; j < SIM_NODES; j++) {
            if (s->adj[i][j] && s->nodes[j].hops < 0) {
                s->nodes[j].hops = s->nodes[i].hops + 1;
                queue[tail++] = j;
            }
        }
    }
    assert_int_equal(tail, SIM_NODES); /* connected */
    publish(s);
    return s;
}

static void
sim_start_nodes(struct sim *s)
{
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        nvx_node_opts o = {
            .loop = &s->loop,
            .net = sn->net,
            .store = sn->store,
            .identity = sn->ident,
            .listen = sn->name,
            .peers = sn->dials,
            .n_peers = sn->n_dials,
            .agent = "test-sim",
            .corrupt_serve = i == s->corrupt,
        };
        assert_int_equal(nvx_node_new(&o, &sn->node), 0);
    }
}

/* Prints one line per node and the totals; returns how many nodes served
 * more than 1/8 of the model. "Served" is what a node sent on the sessions
 * still up at the end (a dropped corrupting node's sessions are gone). */
static int
sim_report(struct sim *s)
{
    uint64_t served_total = 0, fetched_total = 0;
    int serving_nodes = 0;
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        uint64_t out = 0;
        nvx_node_peers_each(sn->node, sum_bytes_out, &out);
        served_total += out;
        fetched_total += nvx_node_bytes_fetched(sn->node);
        if (out > SIM_MODEL_BYTES / 8)
            serving_nodes++;
        char peers[64] = "";
        size_t k = 0;
        for (int j = 0; j < SIM_NODES && k + 4 < sizeof(peers); j++)
            if (s->adj[i][j])
                k += (size_t)snprintf(peers + k, sizeof(peers) - k, "%s%d", k ? "," : "", j);
        if (i == s->corrupt || i == s->pub)
            print_message("sim: node %2d  %-10s                           served %9llu bytes  "
                          "peers %s\n",
                          i, i == s->pub ? "publisher" : "corrupting", (unsigned long long)out,
                          peers);
        else
            print_message("sim: node %2d  hops %d  %6llu ms  fetched %9llu  served %9llu bytes  "
                          "peers %s\n",
                          i, sn->hops, (unsigned long long)(sn->t_done - sn->t_start),
                          (unsigned long long)nvx_node_bytes_fetched(sn->node),
                          (unsigned long long)out, peers);
    }
    /* Sent counts every byte on the sessions (frames, AEAD tags, DATA the
     * receiver had cancelled); fetched only the DATA payload requested. */
    print_message("sim: %llu bytes sent in all (%.2fx the %d copies), %llu fetched (%.2fx); "
                  "%d nodes served > 1/8 of the model\n",
                  (unsigned long long)served_total,
                  (double)served_total / ((double)SIM_MODEL_BYTES * s->fetchers), s->fetchers,
                  (unsigned long long)fetched_total,
                  (double)fetched_total / ((double)SIM_MODEL_BYTES * s->fetchers), serving_nodes);
    return serving_nodes;
}

/* The corrupting node's neighbours that got a chunk from it dropped it (and
 * refuse it for NVX_BADLIST_MS); the others may keep the session. */
static void
check_corrupt_dropped(struct sim *s)
{
    int nb = 0, dropped = 0;
    for (int j = 0; j < SIM_NODES; j++) {
        if (!s->adj[s->corrupt][j])
            continue;
        struct find_peer fp = { nvx_node_id(s->nodes[s->corrupt].node), 0 };
        nvx_node_peers_each(s->nodes[j].node, find_peer, &fp);
        nb++;
        dropped += fp.n == 0;
    }
    print_message("sim: %d of the %d neighbours of corrupting node %d dropped it\n", dropped, nb,
                  s->corrupt);
    assert_true(dropped > 0);
}

static void
sim_free(struct sim *s)
{
    for (int i = 0; i < SIM_NODES; i++)
        nvx_node_stop(s->nodes[i].node, on_stopped, s);
    run_until(s, all_stopped, SIM_STOP_LIMIT_MS, "every node stopping");
    for (int i = 0; i < SIM_NODES; i++) {
        struct sim_node *sn = &s->nodes[i];
        nvx_node_free(sn->node);
        assert_int_equal(tp_net_free(sn->net), 0);
        proto_identity_free(sn->ident);
        cas_store_free(sn->store);
        tu_rm_rf(sn->dir);
        free(sn->dir);
    }
    assert_int_equal(tp_mem_world_close(s->world), 0);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    free(s->bytes);
    free(s);
    current = NULL;
}

/* After a failed assertion (cmocka jumped out of the test): remove the
 * stores; the rest dies with the process. */
static int
sim_teardown(void **state)
{
    (void)state;
    if (current)
        for (int i = 0; i < SIM_NODES; i++)
            if (current->nodes[i].dir)
                tu_rm_rf(current->nodes[i].dir);
    current = NULL;
    return 0;
}

/* Runs the simulation; with_corrupt: the best connected node other than the
 * publisher also holds the model and corrupts every chunk it serves
 * (nvx_node_opts.corrupt_serve); it fetches nothing. */
static void
run_sim(bool with_corrupt)
{
    /* Node logs (bad chunks, timeouts) still show; debug chatter of 20
     * nodes would drown the report. */
    nvx_log_set_level(NVX_LOG_WARN);
    struct sim *s = sim_new(with_corrupt);
    sim_start_nodes(s);
    uv_update_time(&s->loop);
    uint64_t t0 = uv_now(&s->loop);
    run_until(s, all_connected, SIM_CONNECT_LIMIT_MS, "every session up");
    uint64_t t_conn = uv_now(&s->loop);

    s->nodes[s->pub].state = ST_DONE;
    start_ready_fetches(s);
    run_until(s, all_fetched, SIM_FETCH_LIMIT_MS, "every fetch ending");
    uint64_t t_end = uv_now(&s->loop);
    assert_int_equal(s->failed, 0);
    assert_int_equal(s->done, s->fetchers);

    struct tp_mem_stats ms;
    tp_mem_world_stats(s->world, &ms);
    print_message("sim: %d nodes, %u KiB model, links %u ms / %.1f%% loss / %u KiB/s, "
                  "%llu connections\n",
                  SIM_NODES, SIM_MODEL_BYTES / 1024, SIM_LATENCY_MS, SIM_LOSS_PPM / 10000.0,
                  SIM_BANDWIDTH / 1024, (unsigned long long)ms.connections);
    print_message("sim: sessions up after %llu ms; all %d copies after %llu ms (simulated "
                  "time = loop time); %llu segments, %llu losses (%.2f%%)\n",
                  (unsigned long long)(t_conn - t0), s->fetchers,
                  (unsigned long long)(t_end - t_conn), (unsigned long long)ms.segments,
                  (unsigned long long)ms.losses,
                  ms.segments ? 100.0 * (double)ms.losses / (double)ms.segments : 0.0);
    int serving_nodes = sim_report(s);

    for (int i = 0; i < SIM_NODES; i++)
        if (i != s->pub && i != s->corrupt)
            check_copy(s, i);
    if (s->corrupt >= 0)
        check_corrupt_dropped(s);
    /* More than the publisher served: the load spread (the publisher has only
     * a few neighbours, so this holds for any connected graph of this size). */
    assert_true(serving_nodes > 1);
    sim_free(s);
}

static void
test_sim_20_nodes(void **state)
{
    (void)state;
    run_sim(false);
}

/* The same mesh with a node that corrupts what it serves: every other node
 * still gets a bit-identical copy, and the bad node is dropped. */
static void
test_sim_corrupt_node(void **state)
{
    (void)state;
    run_sim(true);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sim_20_nodes, sim_teardown),
        cmocka_unit_test_teardown(test_sim_corrupt_node, sim_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
