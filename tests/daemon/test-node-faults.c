/* SPDX-License-Identifier: MIT */
/*
 * The fault matrix (issue 9, item 1): every link failure the transport can
 * show, at every step of a transfer, on either end of the session, against
 * real nodes (nvx_node + nvx_mesh, real LMDB stores in temp dirs) over the
 * in-memory link wrapped by transport/fault.h.
 *
 * One group is three nodes: A seeds model M1, C seeds model M2, B dials
 * both and fetches M1 and M2 at once. A trigger watches the group (a node
 * hook sees a message arrive, or B's transfer of M1 reaches a state) and,
 * the first time it holds, applies one fault to the A-B session, on A's
 * side or on B's. Every fault kind, on both sides, runs as its own group,
 * all groups of one trigger side by side on one loop; then the next
 * trigger. Each group also refuses B's first redial of A (CONNECT_FAIL), so
 * the dial path fails once too.
 *
 * Triggers (message types and transfer states): WANT, HAVE, MANIFEST_REQ,
 * MANIFEST (the manifest step), REQUEST (requesting), DATA (serving),
 * endgame (every missing chunk of M1 requested), committing (M1 verifying),
 * SIGS_REQ and SIGS (signatures after the fetch), ANNOUNCE (gossip).
 *
 * Checks for every group: nothing crashed (one process: a crash fails the
 * whole test), the fault was applied, both fetches end DONE (M2 untouched by
 * the fault, M1 after the node recovered: reconnect, keepalive timeout for a
 * silent stall), both copies verify in B's store, every node stops, every
 * connection and listener is released (tp_net_free) and, under ASan, no
 * allocation leaks.
 *
 * The node's peer timeout is lowered to TEST_PEER_TIMEOUT_MS so a stalled
 * session is noticed within seconds; the limits below bound a broken build,
 * they are not timing checks.
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
#include "daemon/mesh.h"
#include "daemon/node.h"
#include "libcas/hash.h"
#include "libcas/store.h"
#include "testutil.h"
#include "transport/fault.h"
#include "transport/mem.h"

enum {
    MODEL_BYTES = 1 << 20,
    TEST_PEER_TIMEOUT_MS = 3000,
    FAULT_DELAY_MS = 300,
    LINK_LATENCY_MS = 2,
    LINK_BANDWIDTH = 4 << 20, /* bytes/s per direction: a transfer lasts ~250 ms */
    BATCH_LIMIT_MS = 120000,  /* bounds a hang; not a timing check */
    STOP_LIMIT_MS = 30000,
    N_KINDS = 8,
    N_GROUPS = 2 * N_KINDS, /* every kind on A's side and on B's */
};

static const enum tp_fault_kind kinds[N_KINDS] = {
    TP_FAULT_SEND_FAIL,  TP_FAULT_SEND_ERROR, TP_FAULT_RECV_ERROR, TP_FAULT_RESET,
    TP_FAULT_HALF_CLOSE, TP_FAULT_STALL,      TP_FAULT_DELAY,      TP_FAULT_CLOSE_SLOW,
};
static const char *const kind_names[] = {
    [TP_FAULT_SEND_FAIL] = "send-fail",   [TP_FAULT_SEND_ERROR] = "send-error",
    [TP_FAULT_RECV_ERROR] = "recv-error", [TP_FAULT_RESET] = "reset",
    [TP_FAULT_HALF_CLOSE] = "half-close", [TP_FAULT_STALL] = "stall",
    [TP_FAULT_DELAY] = "delay",           [TP_FAULT_CLOSE_SLOW] = "close-slow",
};

enum {
    NA,
    NB,
    NC,
    N_NODES
};

struct trigger {
    const char *name;
    int observer;    /* NA or NB: whose hook sees msg come from the other */
    uint8_t msg;     /* 0: a state trigger */
    bool endgame;    /* B's M1: every missing chunk requested */
    bool committing; /* B's M1: verifying */
};

static const struct trigger triggers[] = {
    { "want", NA, PROTO_MSG_WANT, false, false },
    { "have", NB, PROTO_MSG_HAVE, false, false },
    { "manifest-req", NA, PROTO_MSG_MANIFEST_REQ, false, false },
    { "manifest", NB, PROTO_MSG_MANIFEST, false, false },
    { "requesting", NA, PROTO_MSG_REQUEST, false, false },
    { "serving", NB, PROTO_MSG_DATA, false, false },
    { "endgame", NB, 0, true, false },
    { "committing", NB, 0, false, true },
    { "sigs-req", NA, PROTO_MSG_SIGS_REQ, false, false },
    { "sigs", NB, PROTO_MSG_SIGS, false, false },
    { "gossip", NB, PROTO_MSG_ANNOUNCE, false, false },
};

struct tnode {
    struct group *g;
    int role;
    char name[16];
    char *dir;
    cas_store *store;
    proto_identity *ident;
    tp_net *net; /* fault net around a mem node */
    nvx_node *node;
    nvx_mesh *mesh;
};

struct fetch {
    nvx_fetch_sub *sub;
    int state, error;
};

struct group {
    struct batch *b;
    int idx;
    enum tp_fault_kind kind;
    int side; /* NA or NB: whose end of the A-B session breaks */
    struct tnode n[N_NODES];
    bool fired;
    struct fetch f1, f2;
};

struct batch {
    uv_loop_t loop;
    tp_mem_world *w;
    uv_check_t check;
    const struct trigger *t;
    struct group g[N_GROUPS];
    int stopped, meshes_closed;
};

struct models {
    uint8_t *bytes1, *bytes2;
    uint8_t m1[CAS_HASH_LEN], m2[CAS_HASH_LEN];
};

static struct models models;

static void
fire(struct group *g)
{
    if (g->fired)
        return;
    g->fired = true;
    struct tnode *victim = &g->n[g->side];
    struct tnode *other = &g->n[g->side == NA ? NB : NA];
    uint32_t delay =
        g->kind == TP_FAULT_DELAY || g->kind == TP_FAULT_CLOSE_SLOW ? FAULT_DELAY_MS : 0;
    /* The other node's name prefixes both the address victim dialled and
     * the addresses of connections the other dialled ("b3/1"). */
    int hit = tp_fault_inject(victim->net, other->name, g->kind, delay);
    if (hit < 1)
        fail_msg("group %d: no session to fault at trigger %s", g->idx, g->b->t->name);
}

static void
on_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    struct tnode *tn = arg;
    struct group *g = tn->g;
    const struct trigger *t = g->b->t;
    if (g->fired || tn->role != t->observer || m->type != t->msg)
        return;
    const struct tnode *from = &g->n[t->observer == NA ? NB : NA];
    const uint8_t *id = nvx_peer_id(p);
    if (id && memcmp(id, nvx_node_id(from->node), 32) == 0)
        fire(g);
}

struct m1_probe {
    bool endgame, committing;
};

static void
probe_m1(void *arg, const nvx_xfer_info *xi)
{
    struct m1_probe *pr = arg;
    if (memcmp(xi->model, models.m1, CAS_HASH_LEN) != 0)
        return;
    if (xi->state == PROTO_CTL_STATE_FETCHING && xi->endgame)
        pr->endgame = true;
    if (xi->state == PROTO_CTL_STATE_VERIFYING)
        pr->committing = true;
}

/* State triggers, checked after every loop iteration. */
static void
on_check(uv_check_t *h)
{
    struct batch *b = h->data;
    if (b->t->msg)
        return;
    for (int i = 0; i < N_GROUPS; i++) {
        struct group *g = &b->g[i];
        if (g->fired || !g->n[NB].node)
            continue;
        struct m1_probe pr = { false, false };
        nvx_node_xfers_each(g->n[NB].node, probe_m1, &pr);
        if ((b->t->endgame && pr.endgame) || (b->t->committing && pr.committing))
            fire(g);
    }
}

static void
on_fetch(void *arg, const proto_ctl_progress *p, int error)
{
    struct fetch *f = arg;
    if (p->state != PROTO_CTL_STATE_DONE && p->state != PROTO_CTL_STATE_FAILED &&
        p->state != PROTO_CTL_STATE_CANCELLED)
        return;
    f->sub = NULL;
    f->state = (int)p->state;
    f->error = error;
}

static void
add_model(struct tnode *tn, const uint8_t *bytes, const uint8_t *want)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/model.bin", tn->dir);
    assert_int_equal(tu_write_file(path, bytes, MODEL_BYTES), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    cas_store_add_opts ao = { .kind = CAS_CHUNKER_CDC, .pin = true };
    uint8_t id[CAS_HASH_LEN];
    assert_int_equal(cas_store_add_fd(tn->store, fileno(f), &ao, id), 1);
    fclose(f);
    unlink(path);
    assert_memory_equal(id, want, CAS_HASH_LEN);
}

static void
node_start(struct batch *b, struct tnode *tn, const char *const *dials, size_t n_dials)
{
    tp_net *mem;
    assert_int_equal(tp_mem_net_new(b->w, tn->name, &mem), 0);
    assert_int_equal(tp_fault_net_new(mem, &tn->net), 0);
    nvx_node_opts o = {
        .loop = &b->loop,
        .net = tn->net,
        .store = tn->store,
        .identity = tn->ident,
        .listen = tn->name,
        .peers = dials,
        .n_peers = n_dials,
        .agent = "test-node-faults",
        .peer_timeout_ms = TEST_PEER_TIMEOUT_MS,
    };
    assert_int_equal(nvx_node_new(&o, &tn->node), 0);
    nvx_node_hook h = { .message = on_message, .all = true, .arg = tn };
    assert_int_equal(nvx_node_hook_add(tn->node, &h), 0);
    nvx_mesh_opts mo = {
        .loop = &b->loop, .node = tn->node, .identity = tn->ident, .store = tn->store
    };
    assert_int_equal(nvx_mesh_new(&mo, &tn->mesh), 0);
}

static void
group_init(struct batch *b, int i)
{
    struct group *g = &b->g[i];
    g->b = b;
    g->idx = i;
    g->kind = kinds[i % N_KINDS];
    g->side = i < N_KINDS ? NB : NA;
    static const char roles[N_NODES] = { 'a', 'b', 'c' };
    for (int r = 0; r < N_NODES; r++) {
        struct tnode *tn = &g->n[r];
        tn->g = g;
        tn->role = r;
        snprintf(tn->name, sizeof(tn->name), "%c%d", roles[r], i);
        tn->dir = tu_tmpdir("nodefault");
        assert_int_equal(cas_store_open(tn->dir, CAS_STORE_CREATE, &tn->store), 0);
        assert_int_equal(proto_identity_generate(&tn->ident), 0);
    }
    add_model(&g->n[NA], models.bytes1, models.m1);
    add_model(&g->n[NC], models.bytes2, models.m2);
}

static void
group_start(struct group *g)
{
    struct batch *b = g->b;
    node_start(b, &g->n[NA], NULL, 0);
    node_start(b, &g->n[NC], NULL, 0);
    const char *dials[2] = { g->n[NA].name, g->n[NC].name };
    node_start(b, &g->n[NB], dials, 2);
    /* B's second dial of A is refused: a reconnect meets a failed connect
     * before it gets through. */
    tp_fault_rule r = { .kind = TP_FAULT_CONNECT_FAIL, .at = TP_FAULT_AT_DIAL, .after = 1 };
    snprintf(r.remote, sizeof(r.remote), "%s", g->n[NA].name);
    assert_int_equal(tp_fault_arm(g->n[NB].net, &r), 0);
    assert_int_equal(nvx_node_fetch(g->n[NB].node, models.m1, true, on_fetch, &g->f1, &g->f1.sub),
                     0);
    assert_int_equal(nvx_node_fetch(g->n[NB].node, models.m2, true, on_fetch, &g->f2, &g->f2.sub),
                     0);
}

static bool
batch_done(struct batch *b)
{
    for (int i = 0; i < N_GROUPS; i++) {
        struct group *g = &b->g[i];
        if (!g->fired || !g->f1.state || !g->f2.state)
            return false;
    }
    return true;
}

static void
batch_dump(struct batch *b)
{
    for (int i = 0; i < N_GROUPS; i++) {
        struct group *g = &b->g[i];
        print_message("faults: %s / %s on %c: fired %d, M1 state %d (%d), M2 state %d (%d)\n",
                      b->t->name, kind_names[g->kind], g->side == NA ? 'A' : 'B', g->fired,
                      g->f1.state, g->f1.error, g->f2.state, g->f2.error);
    }
}

static void
run_until(struct batch *b, bool (*cond)(struct batch *), uint64_t limit_ms, const char *what)
{
    uv_update_time(&b->loop);
    uint64_t end = uv_now(&b->loop) + limit_ms;
    while (!cond(b) && uv_now(&b->loop) < end) {
        uv_run(&b->loop, UV_RUN_ONCE);
        uv_update_time(&b->loop);
    }
    if (!cond(b)) {
        batch_dump(b);
        fail_msg("trigger %s: %s did not happen within %llu ms", b->t->name, what,
                 (unsigned long long)limit_ms);
    }
}

static void
on_stopped(void *arg)
{
    ((struct batch *)arg)->stopped++;
}

static void
on_mesh_closed(void *arg)
{
    ((struct batch *)arg)->meshes_closed++;
}

static bool
all_stopped(struct batch *b)
{
    return b->stopped == N_GROUPS * N_NODES;
}

static bool
all_meshes_closed(struct batch *b)
{
    return b->meshes_closed == N_GROUPS * N_NODES;
}

static void
check_copy(struct tnode *tn, const uint8_t *id)
{
    cas_model_info info;
    assert_int_equal(cas_store_model_info(tn->store, id, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_COMPLETE);
    assert_int_equal(info.size, MODEL_BYTES);
    assert_int_equal(cas_store_verify(tn->store, id, NULL), 0);
}

static struct batch *current;

static void
run_trigger(const struct trigger *t)
{
    struct batch *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    current = b;
    b->t = t;
    assert_int_equal(uv_loop_init(&b->loop), 0);
    struct tp_mem_link link = { .latency_ms = LINK_LATENCY_MS, .bandwidth = LINK_BANDWIDTH };
    assert_int_equal(tp_mem_world_new(&b->loop, 9, &link, &b->w), 0);
    for (int i = 0; i < N_GROUPS; i++)
        group_init(b, i);
    uv_check_init(&b->loop, &b->check);
    b->check.data = b;
    uv_check_start(&b->check, on_check);
    for (int i = 0; i < N_GROUPS; i++)
        group_start(&b->g[i]);

    run_until(b, batch_done, BATCH_LIMIT_MS, "every fault applied and every fetch ending");
    for (int i = 0; i < N_GROUPS; i++) {
        struct group *g = &b->g[i];
        if (g->f1.state != PROTO_CTL_STATE_DONE || g->f2.state != PROTO_CTL_STATE_DONE) {
            batch_dump(b);
            fail_msg("trigger %s, fault %s on %c: a fetch did not complete", t->name,
                     kind_names[g->kind], g->side == NA ? 'A' : 'B');
        }
        assert_true(tp_fault_count(g->n[g->side].net) >= 1);
        check_copy(&g->n[NB], models.m1);
        check_copy(&g->n[NB], models.m2);
    }

    uv_check_stop(&b->check);
    for (int i = 0; i < N_GROUPS; i++)
        for (int r = 0; r < N_NODES; r++)
            nvx_node_stop(b->g[i].n[r].node, on_stopped, b);
    run_until(b, all_stopped, STOP_LIMIT_MS, "every node stopping");
    for (int i = 0; i < N_GROUPS; i++)
        for (int r = 0; r < N_NODES; r++)
            nvx_mesh_close(b->g[i].n[r].mesh, on_mesh_closed, b);
    run_until(b, all_meshes_closed, STOP_LIMIT_MS, "every mesh closing");
    for (int i = 0; i < N_GROUPS; i++) {
        for (int r = 0; r < N_NODES; r++) {
            struct tnode *tn = &b->g[i].n[r];
            nvx_node_free(tn->node);
            assert_int_equal(tp_net_free(tn->net), 0); /* every connection released */
            proto_identity_free(tn->ident);
            cas_store_free(tn->store);
            tu_rm_rf(tn->dir);
            free(tn->dir);
            tn->dir = NULL;
        }
    }
    uv_close((uv_handle_t *)&b->check, NULL);
    assert_int_equal(tp_mem_world_close(b->w), 0);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&b->loop), 0);
    print_message("faults: trigger %-12s: %d faults on A and B, every fetch done\n", t->name,
                  N_GROUPS);
    free(b);
    current = NULL;
}

static void
test_matrix(void **state)
{
    const struct trigger *t = *state;
    run_trigger(t);
}

/* After a failed assertion: remove the stores; the rest dies with the
 * process. */
static int
teardown(void **state)
{
    (void)state;
    if (current)
        for (int i = 0; i < N_GROUPS; i++)
            for (int r = 0; r < N_NODES; r++)
                if (current->g[i].n[r].dir)
                    tu_rm_rf(current->g[i].n[r].dir);
    current = NULL;
    return 0;
}

static int
group_setup(void **state)
{
    (void)state;
    nvx_log_set_level(NVX_LOG_ERROR);
    models.bytes1 = malloc(MODEL_BYTES);
    models.bytes2 = malloc(MODEL_BYTES);
    assert_non_null(models.bytes1);
    assert_non_null(models.bytes2);
    tu_fill_random(models.bytes1, MODEL_BYTES, 0xfa1);
    tu_fill_random(models.bytes2, MODEL_BYTES, 0xfa2);
    /* The ids, from a scratch store. */
    char *dir = tu_tmpdir("nodefault-ids");
    cas_store *s;
    assert_int_equal(cas_store_open(dir, CAS_STORE_CREATE, &s), 0);
    const uint8_t *bytes[2] = { models.bytes1, models.bytes2 };
    uint8_t *ids[2] = { models.m1, models.m2 };
    for (int i = 0; i < 2; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/m.bin", dir);
        assert_int_equal(tu_write_file(path, bytes[i], MODEL_BYTES), 0);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        cas_store_add_opts ao = { .kind = CAS_CHUNKER_CDC };
        assert_int_equal(cas_store_add_fd(s, fileno(f), &ao, ids[i]), 1);
        fclose(f);
    }
    cas_store_free(s);
    tu_rm_rf(dir);
    free(dir);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    free(models.bytes1);
    free(models.bytes2);
    return 0;
}

int
main(void)
{
    struct CMUnitTest tests[sizeof(triggers) / sizeof(triggers[0])];
    for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++)
        tests[i] = (struct CMUnitTest){
            .name = triggers[i].name,
            .test_func = test_matrix,
            .teardown_func = teardown,
            .initial_state = (void *)&triggers[i],
        };
    /* NVX_FAULT_TRIGGER=NAME runs one trigger (to study a failure). */
    const char *only = getenv("NVX_FAULT_TRIGGER");
    if (only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
