/* SPDX-License-Identifier: MIT */
/*
 * The store quota and the kept policy on the node's side (README "Keeping
 * models, quota and bandwidth"; the eviction order is libcas's,
 * FORMAT.md "Eviction"): what a fetched model becomes, room made under
 * max-store-bytes before a fetch creates its model and the quota met
 * after it completes, which models are busy (never evicted: being fetched,
 * or served within NVX_NODE_SERVING_MS), and the last use of served
 * models written on the pool at most once per NVX_NODE_SERVING_MS each.
 * fetch.c and serve.c call it; the store work runs on the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "libcas/store.h"

/* Marks a complete model as the fetch asked (pool thread). */
int
nvx__quota_keep(cas_store *s, const uint8_t id[static 32], nvx_fetch_keep keep)
{
    if (keep == NVX_FETCH_PIN)
        return cas_store_pin(s, id);
    if (keep == NVX_FETCH_KEEP)
        return cas_store_keep(s, id);
    return 0;
}

/* Room under the store quota for a new model of the manifest's size
 * (pool thread): -EDQUOT when it cannot fit, so the fetch fails before it
 * downloads anything; -EPROTO for a manifest that does not decode. */
int
nvx__quota_room_for(cas_store *s, const uint8_t *manifest, size_t len, uint8_t (*busy)[32],
                    size_t n_busy)
{
    cas_manifest *m;
    if (cas_manifest_decode(manifest, len, &m) < 0)
        return -EPROTO; /* hashes right, does not decode */
    uint64_t need = cas_manifest_size(m);
    cas_manifest_free(m);
    cas_gc_result gr = { 0 };
    int r =
        cas_store_make_room(s, need, (const uint8_t(*)[CAS_HASH_LEN])busy, n_busy, NULL, NULL, &gr);
    if (gr.n_models)
        log_info("max-store-bytes: removed %llu model(s), %llu bytes, to make room for a fetch",
                 (unsigned long long)gr.n_models, (unsigned long long)gr.bytes);
    return r;
}

void
nvx__quota_fetched(cas_store *s, const uint8_t id[static 32], uint8_t (*busy)[32], size_t n_busy)
{
    (void)cas_store_touch(s, id, 0); /* a fetch is a use */
    /* The partial model counted in full from its start, so the store is
     * normally under its quota already; a pin or an add meanwhile may have
     * changed that. The model just fetched is busy: never evicted here. */
    cas_gc_result gr = { 0 };
    (void)cas_store_make_room(s, 0, (const uint8_t(*)[CAS_HASH_LEN])busy, n_busy, NULL, NULL, &gr);
    if (gr.n_models)
        log_info("max-store-bytes: removed %llu model(s), %llu bytes, after a fetch",
                 (unsigned long long)gr.n_models, (unsigned long long)gr.bytes);
}

uint8_t (*nvx__busy_models(nvx_node *n, size_t *ret_n))[32]
{
    size_t cap = NVX_NODE_MCACHE;
    for (struct xfer *x = n->xfers; x; x = x->next)
        cap++;
    uint8_t(*ids)[32] = malloc(cap * 32);
    size_t k = 0;
    for (struct xfer *x = n->xfers; ids && x; x = x->next)
        memcpy(ids[k++], x->id, 32);
    uint64_t now = nvx__now(n);
    for (size_t i = 0; ids && i < NVX_NODE_MCACHE; i++) {
        const struct smodel *sm = n->mcache[i];
        if (sm && sm->served_ms && now - sm->served_ms < NVX_NODE_SERVING_MS)
            memcpy(ids[k++], sm->id, 32);
    }
    *ret_n = ids ? k : 0;
    return ids;
}

/* The last uses of served models, written on the pool. */
struct touch_job {
    uv_work_t w;
    nvx_node *n;
    size_t k;
    uint8_t ids[NVX_NODE_MCACHE][32];
};

static void
touch_work(uv_work_t *w)
{
    struct touch_job *j = (struct touch_job *)w;
    for (size_t i = 0; i < j->k; i++)
        (void)cas_store_touch(j->n->store, j->ids[i], NVX_NODE_SERVING_MS / 1000);
}

static void
touch_done(uv_work_t *w, int status)
{
    (void)status;
    struct touch_job *j = (struct touch_job *)w;
    nvx_node *n = j->n;
    n->jobs--;
    free(j);
    nvx__node_maybe_stopped(n);
}

void
nvx__quota_touch_served(nvx_node *n)
{
    uint64_t now = nvx__now(n);
    struct touch_job *j = NULL;
    for (size_t i = 0; i < NVX_NODE_MCACHE && !n->stopping; i++) {
        struct smodel *e = n->mcache[i];
        if (!e || e->served_ms <= e->touched_ms ||
            (e->touched_ms && now - e->touched_ms < NVX_NODE_SERVING_MS))
            continue;
        if (!j && !(j = calloc(1, sizeof(*j))))
            return;
        e->touched_ms = now ? now : 1;
        memcpy(j->ids[j->k++], e->id, 32);
    }
    if (!j)
        return;
    j->n = n;
    if (uv_queue_work(n->loop, &j->w, touch_work, touch_done) < 0) {
        free(j);
        return;
    }
    n->jobs++;
}
