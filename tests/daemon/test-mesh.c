/* SPDX-License-Identifier: MIT */
/*
 * daemon/mesh.c with real nodes: three nvx_nodes in one process over the
 * in-memory transport, in a line A - B - C (C is not connected to A). A
 * holds a model and a published name record. Through gossip alone, C learns
 * that A provides the model (a provider record relayed by B) and stores the
 * signed name record (verified, relayed, written to C's store on the pool),
 * and resolves "PUBLISHER/NAME" to the model once it trusts the key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon/mesh.h"
#include "daemon/node.h"
#include "libcas/namerec.h"
#include "libcas/store.h"
#include "testutil.h"
#include "transport/mem.h"

enum {
    N = 3
};

typedef struct world {
    uv_loop_t loop;
    tp_mem_world *mw;
    char *dir[N];
    cas_store *store[N];
    proto_identity *ident[N];
    tp_net *net[N];
    nvx_node *node[N];
    nvx_mesh *mesh[N];
    uint8_t model[32];
    int published;
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
    assert_true(cas_store_add_fd(s, fds[0], NULL, ret_id) >= 0);
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
     * a timing assertion (the mem links have no latency). */
    uint64_t end = uv_now(&w->loop) + limit_ms;
    while (!done(w) && uv_now(&w->loop) < end) {
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
    }
    assert_true(done(w));
}

static bool
c_knows(world *w)
{
    uint8_t ids[4][32];
    if (nvx_gossip_providers(nvx_mesh_gossip(w->mesh[2]), w->model, 0, ids, 4) == 0)
        return false;
    return w->published == 1;
}

static cas_namerec published_rec;

static bool
c_stored_name(world *w)
{
    cas_namerec got;
    return cas_namerec_store_get(w->store[2], published_rec.keyid, "tiny/v1", &got) == 0;
}

static bool
all_stopped(world *w)
{
    return w->stopped == N;
}

static bool
all_closed(world *w)
{
    return w->closed == N;
}

static void
test_three_nodes(void **state)
{
    (void)state;
    world *w = calloc(1, sizeof(*w));
    assert_int_equal(uv_loop_init(&w->loop), 0);
    assert_int_equal(tp_mem_world_new(&w->loop, 7, NULL, &w->mw), 0);
    static const char *names[N] = { "a", "b", "c" };
    for (int i = 0; i < N; i++) {
        w->dir[i] = tu_tmpdir("mesh");
        assert_int_equal(cas_store_open(w->dir[i], CAS_STORE_CREATE, &w->store[i]), 0);
        assert_int_equal(proto_identity_generate(&w->ident[i]), 0);
        assert_int_equal(tp_mem_net_new(w->mw, names[i], &w->net[i]), 0);
    }
    add_model(w->store[0], w->model);

    /* The publisher signs a name record and stores it on A (as `nvx
     * publish` does). */
    cas_seckey *sk = NULL;
    assert_int_equal(cas_seckey_generate(&sk), 0);
    cas_namerec rec;
    assert_int_equal(cas_namerec_sign(sk, "tiny/v1", 1, 1767225600, w->model, &rec), 0);
    assert_int_equal(cas_namerec_store_put(w->store[0], &rec), 1);

    /* A - B - C: B dials A, C dials B. */
    const char *b_peers[] = { "a" };
    const char *c_peers[] = { "b" };
    for (int i = 0; i < N; i++) {
        nvx_node_opts o = {
            .loop = &w->loop,
            .net = w->net[i],
            .store = w->store[i],
            .identity = w->ident[i],
            .listen = names[i],
            .peers = i == 1   ? b_peers
                     : i == 2 ? c_peers
                              : NULL,
            .n_peers = i == 0 ? 0 : 1,
            .agent = "test-mesh",
        };
        assert_int_equal(nvx_node_new(&o, &w->node[i]), 0);
        nvx_mesh_opts mo = {
            .loop = &w->loop,
            .node = w->node[i],
            .identity = w->ident[i],
            .store = w->store[i],
        };
        assert_int_equal(nvx_mesh_new(&mo, &w->mesh[i]), 0);
    }
    /* A bad identity is refused. */
    nvx_mesh *bad = NULL;
    nvx_mesh_opts mo = {
        .loop = &w->loop, .node = w->node[0], .identity = w->ident[1], .store = w->store[0]
    };
    assert_int_equal(nvx_mesh_new(&mo, &bad), -EINVAL);

    assert_int_equal(nvx_mesh_publish(w->mesh[0], w->model, "tiny/v1", on_published, w), 0);
    run_until(w, c_knows, 20000);

    /* C heard that A has the model, though it never talked to A. */
    uint8_t ids[4][32];
    assert_int_equal(nvx_gossip_providers(nvx_mesh_gossip(w->mesh[2]), w->model, 0, ids, 4), 1);
    assert_memory_equal(ids[0], proto_identity_node_id(w->ident[0]), 32);

    /* And got the name record, verified and stored on the pool. */
    published_rec = rec;
    run_until(w, c_stored_name, 20000);
    cas_namerec got;
    assert_int_equal(cas_namerec_store_get(w->store[2], rec.keyid, "tiny/v1", &got), 0);
    assert_memory_equal(&got, &rec, sizeof(got));

    /* C resolves it: untrusted until C trusts the key. */
    char hex[CAS_KEYID_HEX_SIZE], target[64];
    cas_keyid_format(rec.keyid, hex);
    snprintf(target, sizeof(target), "%s/tiny/v1", hex);
    cas_name_resolution res;
    assert_int_equal(cas_namerec_resolve(w->store[2], target, &res), 0);
    assert_false(res.trusted);
    cas_pubkey pk;
    cas_seckey_public(sk, &pk);
    char b64[CAS_PUBKEY_B64_SIZE];
    cas_pubkey_base64(&pk, b64);
    assert_int_equal(cas_store_key_put(w->store[2], pk.keyid, 8, b64, strlen(b64), "pub"), 0);
    assert_int_equal(cas_namerec_resolve(w->store[2], "pub/tiny/v1", &res), 0);
    assert_true(res.trusted);
    assert_memory_equal(res.rec.model_id, w->model, 32);

    /* Publishing a name nobody stored fails cleanly. */
    w->published = 0;
    assert_int_equal(nvx_mesh_publish(w->mesh[0], w->model, "a b", on_published, w), -EINVAL);

    for (int i = 0; i < N; i++)
        nvx_node_stop(w->node[i], on_stopped, w);
    run_until(w, all_stopped, 20000);
    for (int i = 0; i < N; i++)
        nvx_mesh_close(w->mesh[i], on_closed, w);
    run_until(w, all_closed, 20000);
    for (int i = 0; i < N; i++) {
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
    cas_seckey_free(sk);
    free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
