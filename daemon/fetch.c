/* SPDX-License-Identifier: MIT */
/*
 * Transfers, the adapter: runs the transfer engine's actions
 * (daemon/xfer.h) on the node's sessions and the store, and routes the
 * sessions' messages and the pool's answers back to it. The flow and the
 * guarantees are described at nvx_node_fetch() in daemon/node.h. Store
 * work runs on the pool, one job struct per kind:
 *
 *   open job    model state; verify a downloaded manifest against the id,
 *               make room for it under the store quota and create the
 *               partial model; open it; copy chunks other models
 *               hold; read the bitmap (resume)
 *   puts job    up to NVX_XFER_PUT_BATCH received chunks: hash them at once
 *               (cas_hash_many, several SIMD lanes; one chunk at a time ran
 *               at a third of the speed and was a quarter of a fetch's CPU),
 *               then cas_partial_put_hashed() each
 *   commit job  cas_partial_commit(): fdatasync + bitmap transaction
 *   finish job  cas_partial_complete(), keep or pin, note the use, bring
 *               the store under its quota; then free the handle
 *   end job     commit what was verified, free the handle (cancel, failure,
 *               shutdown): chunks being written when it runs are either in
 *               the committed bitmap or not; never half-counted
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bits.h"
#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "libcas/hash.h"

/* Every pool job starts with this: what to run, and what to do after. */
struct xjob {
    uv_work_t w;
    struct xfer *x;
    cas_store *store;
    void (*work)(struct xjob *j);
    void (*done)(struct xjob *j);
    int res;
};

struct open_job {
    struct xjob j;
    uint8_t id[32];
    nvx_fetch_keep keep;
    uint8_t (*busy)[32]; /* models the quota must not evict (nvx__busy_models) */
    size_t n_busy;
    uint8_t *mbuf; /* a downloaded manifest to check, or NULL */
    uint32_t mlen;
    cas_partial *part;
    uint32_t n_chunks;
    uint32_t *chunk_len;
    uint8_t *have;
    uint64_t n_local;
};

struct puts_job {
    struct xjob j;
    cas_partial *part;
    unsigned delay_ms; /* test hook: a slow disk */
    nvx_xfer_chunk *c[NVX_XFER_PUT_BATCH];
    unsigned n;
};

/* commit, finish and end */
struct part_job {
    struct xjob j;
    cas_partial *part;
    uint8_t id[32];
    nvx_fetch_keep keep;
    uint8_t (*busy)[32]; /* finish: models the quota must not evict */
    size_t n_busy;
};

static void xfer_settle(struct xfer *x);

static struct xfer *
xfer_find(nvx_node *n, const uint8_t id[32])
{
    for (struct xfer *x = n->xfers; x; x = x->next)
        if (memcmp(x->id, id, 32) == 0 && !x->ended && !nvx_xfer_ending(x->e))
            return x;
    return NULL;
}

/* ---- jobs -------------------------------------------------------------- */

static void
xjob_work(uv_work_t *w)
{
    struct xjob *j = (struct xjob *)w;
    j->work(j);
}

static void
xjob_done(uv_work_t *w, int status)
{
    struct xjob *j = (struct xjob *)w;
    struct xfer *x = j->x;
    nvx_node *n = x->node;
    n->jobs--;
    if (status < 0 && j->res >= 0)
        j->res = status;
    j->done(j);
    free(j);
    x->jobs--;
    if (!x->ended)
        nvx_xfer_pump(x->e, nvx__now(n));
    xfer_settle(x);
    nvx__node_maybe_stopped(n);
}

static int
xjob_queue(struct xfer *x, struct xjob *j, void (*work)(struct xjob *), void (*done)(struct xjob *))
{
    j->x = x;
    j->store = x->node->store;
    j->work = work;
    j->done = done;
    int r = uv_queue_work(x->node->loop, &j->w, xjob_work, xjob_done);
    if (r < 0)
        return r;
    x->jobs++;
    x->node->jobs++;
    return 0;
}

static void
open_work(struct xjob *jb)
{
    struct open_job *j = (struct open_job *)jb;
    cas_store *s = jb->store;
    int r;
    if (j->mbuf) {
        uint8_t h[CAS_HASH_LEN];
        cas_hash(j->mbuf, j->mlen, h);
        if (!cas_hash_equal(h, j->id)) {
            jb->res = -EBADMSG;
            return;
        }
        cas_model_info known;
        if (cas_store_model_info(s, j->id, &known) == -ENOENT &&
            (r = nvx__quota_room_for(s, j->mbuf, j->mlen, j->busy, j->n_busy)) < 0) {
            jb->res = r;
            return;
        }
        uint8_t id[CAS_HASH_LEN];
        r = cas_store_partial_create(s, j->mbuf, j->mlen, id);
        if (r < 0) {
            jb->res = r == -EBADMSG ? -EPROTO : r; /* hashes right, does not decode */
            return;
        }
    }
    cas_model_info info;
    r = cas_store_model_info(s, j->id, &info);
    if (r == -ENOENT) {
        jb->res = NVX_XFER_OPEN_NEED_MANIFEST;
        return;
    }
    if (r < 0)
        goto fail;
    if (info.state == CAS_MODEL_COMPLETE) {
        if ((r = nvx__quota_keep(s, j->id, j->keep)) < 0)
            goto fail;
        jb->res = NVX_XFER_OPEN_COMPLETE;
        return;
    }
    uint8_t *mb;
    size_t ml;
    cas_manifest *man;
    r = cas_store_manifest_get(s, j->id, &mb, &ml);
    if (r < 0)
        goto fail;
    r = cas_manifest_decode(mb, ml, &man);
    free(mb);
    if (r < 0)
        goto fail;
    size_t nc = cas_manifest_chunk_count(man);
    if (nc == 0 || nc > NVX_PICKER_CHUNKS_MAX) {
        cas_manifest_free(man);
        r = -E2BIG;
        goto fail;
    }
    j->n_chunks = (uint32_t)nc;
    j->chunk_len = malloc(nc * sizeof(uint32_t));
    j->have = calloc((nc + 7) / 8, 1);
    if (!j->chunk_len || !j->have) {
        cas_manifest_free(man);
        r = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < nc; i++) {
        cas_chunk_info ci;
        cas_manifest_chunk(man, i, &ci);
        j->chunk_len[i] = ci.len;
    }
    cas_manifest_free(man);
    r = cas_partial_open(s, j->id, &j->part);
    if (r < 0)
        goto fail;
    r = cas_partial_fill_local(j->part, &j->n_local);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < nc; i++)
        if (cas_partial_has(j->part, i))
            bit_set(j->have, i);
    if (j->n_local > 0)
        cas_partial_commit(j->part);
    jb->res = NVX_XFER_OPEN_READY;
    return;
fail:
    cas_partial_free(j->part);
    j->part = NULL;
    jb->res = r;
}

static void
open_done(struct xjob *jb)
{
    struct open_job *j = (struct open_job *)jb;
    struct xfer *x = jb->x;
    free(j->mbuf);
    free(j->busy);
    if (jb->res == -EDQUOT)
        log_error("fetch: the model does not fit under max-store-bytes, even after removing "
                  "every unpinned model not in use: raise max-store-bytes or unpin models");
    else if (jb->res < 0 && jb->res != -EBADMSG)
        log_error_errno(jb->res, "fetch: cannot open the model");
    if (j->n_local)
        log_info("fetch: %llu chunks copied from models already in the store",
                 (unsigned long long)j->n_local);
    x->part = j->part; /* NULL unless READY; the end job frees it if need be */
    nvx_xfer_opened(x->e, jb->res, j->n_chunks, j->chunk_len, j->have, nvx__now(x->node));
    free(j->chunk_len);
    free(j->have);
}

static void
puts_work(struct xjob *jb)
{
    struct puts_job *j = (struct puts_job *)jb;
    const void *bufs[NVX_XFER_PUT_BATCH];
    size_t lens[NVX_XFER_PUT_BATCH];
    uint8_t got[NVX_XFER_PUT_BATCH][CAS_HASH_LEN];
    for (unsigned k = 0; k < j->n; k++) {
        bufs[k] = j->c[k]->data;
        lens[k] = j->c[k]->len;
    }
    if (j->delay_ms)
        nvx__test_delay(j->delay_ms * j->n);
    cas_hash_many(bufs, lens, j->n, got);
    for (unsigned k = 0; k < j->n; k++)
        j->c[k]->res =
            cas_partial_put_hashed(j->part, j->c[k]->idx, j->c[k]->data, j->c[k]->len, got[k]);
}

static void
puts_done(struct xjob *jb)
{
    struct puts_job *j = (struct puts_job *)jb;
    for (unsigned k = 0; k < j->n; k++) {
        if (jb->res < 0 && j->c[k]->res >= 0)
            j->c[k]->res = jb->res;
        if (j->c[k]->res < 0 && j->c[k]->res != -EBADMSG)
            log_error_errno(j->c[k]->res, "fetch: cannot write chunk %u", j->c[k]->idx);
        if (j->c[k]->res >= 0) /* 1 written, 0 already there: verified either way */
            jb->x->node->counters.chunks_verified++;
        else if (j->c[k]->res == -EBADMSG)
            jb->x->node->counters.chunks_rejected++;
    }
    nvx_xfer_stored(jb->x->e, j->c, j->n, nvx__now(jb->x->node));
}

static void
commit_work(struct xjob *jb)
{
    jb->res = cas_partial_commit(((struct part_job *)jb)->part);
}

static void
commit_done(struct xjob *jb)
{
    if (jb->res < 0)
        log_error_errno(jb->res, "fetch: cannot commit");
    nvx_xfer_committed(jb->x->e, jb->res, nvx__now(jb->x->node));
}

static void
finish_work(struct xjob *jb)
{
    struct part_job *j = (struct part_job *)jb;
    jb->res = cas_partial_complete(j->part);
    if (jb->res == 0)
        jb->res = nvx__quota_keep(jb->store, j->id, j->keep);
    cas_partial_free(j->part);
    if (jb->res == 0)
        nvx__quota_fetched(jb->store, j->id, j->busy, j->n_busy);
}

static void
finish_done(struct xjob *jb)
{
    struct xfer *x = jb->x;
    nvx_node *n = x->node;
    free(((struct part_job *)jb)->busy);
    if (jb->res < 0) {
        log_error_errno(jb->res, "fetch: cannot complete the model");
    } else {
        char sid[17];
        nvx_xfer_stats st;
        nvx_xfer_stats_get(x->e, &st);
        log_info("fetched model %s (%llu bytes)", nvx_short_id(x->id, sid),
                 (unsigned long long)st.bytes_total);
        if (n->fetched && (n->serve == NVX_SERVE_ALL ||
                           (n->serve == NVX_SERVE_PINNED && x->keep != NVX_FETCH_KEEP_NONE)))
            n->fetched(n->fetched_arg, x->id); /* else the mesh's rescan decides */
        /* The publisher's signatures come from whoever had the model. */
        void *holders[64];
        size_t nh = nvx_xfer_holders(x->e, holders, 64);
        for (size_t i = 0; i < nh && i < 64; i++)
            nvx__sigs_ask(holders[i], x->id);
    }
    nvx_xfer_finished(x->e, jb->res);
}

static void
end_work(struct xjob *jb)
{
    struct part_job *j = (struct part_job *)jb;
    jb->res = cas_partial_commit(j->part);
    cas_partial_free(j->part);
}

static void
end_done(struct xjob *jb)
{
    if (jb->res < 0)
        log_error_errno(jb->res, "fetch: cannot commit on stop");
}

/* Queues a commit, finish or end job on the transfer's partial model. */
static int
part_job_queue(struct xfer *x, void (*work)(struct xjob *), void (*done)(struct xjob *))
{
    struct part_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->part = x->part;
    memcpy(j->id, x->id, 32);
    j->keep = x->keep;
    if (work == finish_work)
        j->busy = nvx__busy_models(x->node, &j->n_busy);
    int r = xjob_queue(x, &j->j, work, done);
    if (r < 0) {
        free(j->busy);
        free(j);
    }
    return r;
}

/* ---- the engine's actions ---------------------------------------------- */

static void
op_send(void *arg, void *peer, const proto_msg *m)
{
    (void)arg;
    nvx_peer *p = peer;
    /* HAVE tells peers which chunks we hold: under serve = none we hold
     * nothing for them. */
    if (m->type == PROTO_MSG_HAVE && p->node->serve == NVX_SERVE_NONE)
        return;
    if (p->established && !p->closing)
        proto_session_send_msg(p->sess, m);
}

static void
op_flush(void *arg, void *peer)
{
    (void)arg;
    nvx__peer_flush(peer);
}

static uint32_t
op_req_ids(void *arg, void *peer, uint32_t n)
{
    (void)arg;
    nvx_peer *p = peer;
    uint32_t base = p->next_req_id;
    p->next_req_id += n;
    return base;
}

static uint8_t *
op_take_msg(void *arg, void *peer, size_t *cap)
{
    (void)arg;
    return proto_session_take_message(((nvx_peer *)peer)->sess, cap);
}

static void
op_open(void *arg, uint8_t *manifest, uint32_t len)
{
    struct xfer *x = arg;
    struct open_job *j = calloc(1, sizeof(*j));
    if (j) {
        memcpy(j->id, x->id, 32);
        j->keep = x->keep;
        j->mbuf = manifest;
        j->mlen = len;
        if (manifest)
            j->busy = nvx__busy_models(x->node, &j->n_busy);
        if (xjob_queue(x, &j->j, open_work, open_done) == 0)
            return;
        free(j->busy);
    }
    free(j);
    free(manifest);
    nvx_xfer_opened(x->e, -ENOMEM, 0, NULL, NULL, nvx__now(x->node));
}

static void
op_store(void *arg, nvx_xfer_chunk **chunks, unsigned n)
{
    struct xfer *x = arg;
    struct puts_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->part = x->part;
        j->delay_ms = x->node->put_delay_ms;
        memcpy(j->c, chunks, n * sizeof(*chunks));
        j->n = n;
        if (xjob_queue(x, &j->j, puts_work, puts_done) == 0)
            return;
    }
    free(j);
    for (unsigned k = 0; k < n; k++)
        chunks[k]->res = -EAGAIN; /* fetched again */
    nvx_xfer_stored(x->e, chunks, n, nvx__now(x->node));
}

static void
op_commit(void *arg)
{
    struct xfer *x = arg;
    int r = part_job_queue(x, commit_work, commit_done);
    if (r < 0)
        nvx_xfer_committed(x->e, r, nvx__now(x->node));
}

static void
op_finish(void *arg)
{
    struct xfer *x = arg;
    int r = part_job_queue(x, finish_work, finish_done);
    if (r < 0) {
        nvx_xfer_finished(x->e, r);
        return;
    }
    x->part = NULL; /* the job frees it */
}

static void
op_drop_peer(void *arg, void *peer, const char *why)
{
    (void)arg;
    bool stalled = strstr(why, "timed out") != NULL;
    nvx__peer_close(peer, stalled ? PROTO_BYE_IDLE : PROTO_BYE_PROTOCOL_ERROR, why);
}

static void
op_bad_peer(void *arg, const uint8_t id[32], const char *addr, const char *what)
{
    nvx_node *n = ((struct xfer *)arg)->node;
    char sid[17];
    log_warn("peer %s (%s) sent %s: dropping it for %d s", nvx_short_id(id, sid), addr, what,
             NVX_BADLIST_MS / 1000);
    nvx__peer_bad(n, id, addr);
    nvx_peer *p = nvx__peer_by_id(n, id);
    if (p)
        nvx__peer_close(p, PROTO_BYE_BAD_DATA, what);
}

static void
op_ended(void *arg)
{
    ((struct xfer *)arg)->ended = true; /* xfer_settle frees it */
}

/* Download limits: the node's download-rate and this fetch's --rate. */
static uint64_t
op_rate_avail(void *arg, uint64_t now_ms)
{
    struct xfer *x = arg;
    uint64_t a = nvx_rate_avail(&x->node->down, now_ms), b = nvx_rate_avail(&x->rate, now_ms);
    return a < b ? a : b;
}

static void
op_rate_used(void *arg, uint64_t bytes)
{
    struct xfer *x = arg;
    nvx_rate_take(&x->node->down, bytes);
    nvx_rate_take(&x->rate, bytes);
}

static const nvx_xfer_ops xfer_ops = {
    .send = op_send,
    .flush = op_flush,
    .req_ids = op_req_ids,
    .take_msg = op_take_msg,
    .open = op_open,
    .store = op_store,
    .commit = op_commit,
    .finish = op_finish,
    .drop_peer = op_drop_peer,
    .bad_peer = op_bad_peer,
    .ended = op_ended,
    .rate_avail = op_rate_avail,
    .rate_used = op_rate_used,
};

/* ---- messages and peers ------------------------------------------------ */

static void
peer_info(nvx_peer *p, nvx_xfer_peer_info *pi)
{
    size_t piece = tp_conn_mtu(p->conn);
    if (piece > NVX_NODE_PIECE_MAX)
        piece = NVX_NODE_PIECE_MAX;
    if (piece < 1024)
        piece = 1024;
    memcpy(pi->id, p->id, 32);
    pi->addr = p->addr;
    pi->piece = (uint32_t)piece;
    pi->window = tp_conn_bandwidth(p->conn) / 2;
}

void
nvx__fetch_msg(nvx_peer *p, const proto_msg *m)
{
    const uint8_t *model;
    switch (m->type) {
    case PROTO_MSG_HAVE:
        model = m->u.want.model_id;
        break;
    case PROTO_MSG_DATA:
        model = m->u.data.model_id;
        break;
    case PROTO_MSG_NOT_FOUND:
        model = m->u.not_found.model_id;
        break;
    case PROTO_MSG_MANIFEST:
        model = m->u.manifest.model_id;
        break;
    default:
        return;
    }
    struct xfer *x = xfer_find(p->node, model);
    if (!x)
        return;
    nvx_node *n = p->node;
    switch (m->type) {
    case PROTO_MSG_HAVE:
        nvx_xfer_have(x->e, p, &m->u.want.set);
        break;
    case PROTO_MSG_DATA: {
        uint32_t got = nvx_xfer_data(x->e, p, &m->u.data, nvx__now(n));
        n->bytes_fetched += got;
        p->rate_bytes += got;
        if (got > 0) /* bytes we wanted: the peer is useful (daemon/admit.h) */
            p->t_useful_ms = nvx__now(n);
        break;
    }
    case PROTO_MSG_NOT_FOUND:
        nvx_xfer_not_found(x->e, p, &m->u.not_found, nvx__now(n));
        break;
    case PROTO_MSG_MANIFEST:
        nvx_xfer_manifest(x->e, p, &m->u.manifest);
        break;
    }
    xfer_settle(x);
}

bool
nvx__fetch_active(nvx_node *n, const uint8_t model[static 32])
{
    return xfer_find(n, model) != NULL;
}

bool
nvx__fetch_fresh(nvx_node *n, const uint8_t model[static 32], uint32_t idx)
{
    struct xfer *x = xfer_find(n, model);
    return x && x->e && nvx_xfer_fresh(x->e, idx);
}

void
nvx__fetch_peer_wants(nvx_peer *p, const uint8_t model[static 32])
{
    struct xfer *x = xfer_find(p->node, model);
    if (x && p->established && !p->closing)
        nvx_xfer_peer_wants(x->e, p);
}

void
nvx__fetch_peer_up(nvx_peer *p)
{
    nvx_xfer_peer_info pi;
    peer_info(p, &pi);
    for (struct xfer *x = p->node->xfers, *next; x; x = next) {
        next = x->next;
        if (!x->ended)
            nvx_xfer_peer_up(x->e, p, &pi);
    }
}

void
nvx__fetch_peer_gone(nvx_peer *p)
{
    for (struct xfer *x = p->node->xfers; x; x = x->next)
        if (!x->ended)
            nvx_xfer_peer_down(x->e, p);
    /* Freeing waits for the next settle: the caller walks the list. */
}

/* ---- lifecycle --------------------------------------------------------- */

static void
notify(struct xfer *x, bool final)
{
    nvx_xfer_stats st;
    nvx_xfer_stats_get(x->e, &st);
    proto_ctl_progress pr = {
        .state = (uint64_t)st.state,
        .transfer_id = x->xid,
        .bytes_done = st.bytes_done,
        .bytes_total = st.bytes_total,
        .chunks_done = st.chunks_done,
        .chunks_total = st.chunks_total,
        .rate = st.rate,
        .peer_count = st.peers,
        .has_model_id = true,
        .has_chunk = st.has_fail_chunk,
        .chunk = st.fail_chunk,
        .chunk_offset = st.fail_offset,
        .chunk_len = st.fail_chunk_len,
        .chunk_count = st.fail_chunks,
        .chunk_tried = st.fail_tried,
    };
    memcpy(pr.model_id, x->id, 32);
    for (nvx_fetch_sub *s = x->subs, *next; s; s = next) {
        next = s->next;
        s->cb(s->arg, &pr, final ? st.error : 0);
        if (final)
            free(s);
    }
    if (final)
        x->subs = NULL;
}

/* Once the engine ended: commit and release the partial model, then tell
 * the subscribers and free the transfer when no job runs any more. */
static void
xfer_settle(struct xfer *x)
{
    if (!x->ended)
        return;
    nvx_node *n = x->node;
    if (x->part) {
        if (part_job_queue(x, end_work, end_done) == 0) {
            x->part = NULL;
            return;
        }
        /* Out of memory: commit on the loop rather than lose the chunks. */
        cas_partial_commit(x->part);
        cas_partial_free(x->part);
        x->part = NULL;
    }
    if (x->jobs > 0)
        return;
    nvx_xfer_stats st;
    nvx_xfer_stats_get(x->e, &st);
    if (st.state == PROTO_CTL_STATE_DONE)
        n->counters.xfers_done++;
    else if (st.state == PROTO_CTL_STATE_CANCELLED)
        n->counters.xfers_cancelled++;
    else
        n->counters.xfers_failed++;
    notify(x, true);
    for (struct xfer **xp = &n->xfers; *xp; xp = &(*xp)->next) {
        if (*xp == x) {
            *xp = x->next;
            break;
        }
    }
    nvx_xfer_free(x->e);
    free(x);
    nvx__node_maybe_stopped(n);
}

/* Settles every transfer (after events that may have ended several). */
static void
settle_all(nvx_node *n)
{
    for (struct xfer *x = n->xfers, *next; x; x = next) {
        next = x->next;
        xfer_settle(x);
    }
}

void
nvx__fetch_tick(nvx_node *n)
{
    uint64_t now = nvx__now(n);
    for (struct xfer *x = n->xfers; x; x = x->next) {
        if (x->ended)
            continue;
        nvx_xfer_tick(x->e, now, NVX_NODE_TICK_MS);
        if (x->ended || nvx_xfer_finishing(x->e))
            continue;
        nvx_xfer_stats st;
        nvx_xfer_stats_get(x->e, &st);
        log_debug("xfer %llu: peers %zu inflight %llu pending %llu rate %llu, jobs %u, "
                  "done %llu/%llu",
                  (unsigned long long)x->xid, st.peers, (unsigned long long)st.inflight,
                  (unsigned long long)st.pending, (unsigned long long)st.rate, x->jobs,
                  (unsigned long long)st.chunks_done, (unsigned long long)st.chunks_total);
        notify(x, false);
    }
    settle_all(n);
}

void
nvx__fetch_pump_pending(nvx_node *n)
{
    uint64_t now = nvx__now(n);
    for (struct xfer *x = n->xfers; x; x = x->next)
        if (!x->ended && nvx_xfer_pump_due(x->e))
            nvx_xfer_pump(x->e, now);
    settle_all(n);
}

void
nvx__fetch_stop_all(nvx_node *n)
{
    for (struct xfer *x = n->xfers; x; x = x->next)
        if (!x->ended)
            nvx_xfer_end(x->e, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
    settle_all(n);
}

int
nvx_node_fetch(nvx_node *n, const uint8_t id[static 32], nvx_fetch_keep keep, nvx_fetch_cb cb,
               void *arg, nvx_fetch_sub **ret)
{
    if (n->stopping)
        return -ESHUTDOWN;
    nvx_fetch_sub *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cb = cb;
    s->arg = arg;
    struct xfer *x = xfer_find(n, id);
    if (x) {
        if (keep > x->keep)
            x->keep = keep; /* one asker wants it kept or pinned: so be it */
        s->x = x;
        s->next = x->subs;
        x->subs = s;
        *ret = s;
        return 0;
    }
    size_t nx = 0;
    for (struct xfer *y = n->xfers; y; y = y->next)
        nx++;
    if (nx >= NVX_NODE_XFERS_MAX) {
        free(s);
        return -EBUSY;
    }
    x = calloc(1, sizeof(*x));
    uint64_t seed = (uint64_t)randombytes_random() << 32 | randombytes_random();
    int r = x ? nvx_xfer_new(&xfer_ops, x, id, seed, nvx__now(n), &x->e) : -ENOMEM;
    if (r < 0) {
        free(x);
        free(s);
        return r;
    }
    x->node = n;
    x->xid = n->next_xid++;
    memcpy(x->id, id, 32);
    x->keep = keep;
    nvx_rate_init(&x->rate, 0, nvx__now(n));
    s->x = x;
    x->subs = s;
    x->next = n->xfers;
    n->xfers = x;
    *ret = s;
    nvx_xfer_start(x->e);
    if (x->ended) { /* the open job could not start */
        n->xfers = x->next;
        nvx_xfer_stats st;
        nvx_xfer_stats_get(x->e, &st);
        nvx_xfer_free(x->e);
        free(x);
        free(s);
        return st.error;
    }
    for (nvx_peer *p = n->peers; p; p = p->next) {
        if (p->established && !p->closing) {
            nvx_xfer_peer_info pi;
            peer_info(p, &pi);
            nvx_xfer_peer_up(x->e, p, &pi);
        }
    }
    return 0;
}

void
nvx_node_fetch_unsub(nvx_node *n, nvx_fetch_sub *sub)
{
    (void)n;
    struct xfer *x = sub->x;
    for (nvx_fetch_sub **sp = &x->subs; *sp; sp = &(*sp)->next) {
        if (*sp == sub) {
            *sp = sub->next;
            break;
        }
    }
    free(sub);
    if (!x->subs && !x->ended && !nvx_xfer_ending(x->e)) {
        char sid[17];
        log_info("fetch of %s cancelled (resumable)", nvx_short_id(x->id, sid));
        nvx_xfer_end(x->e, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
        xfer_settle(x);
    }
}

void
nvx_node_fetch_rate(nvx_fetch_sub *sub, uint64_t rate)
{
    nvx_rate_init(&sub->x->rate, rate, nvx__now(sub->x->node));
}

void
nvx_node_fetch_timeout(nvx_fetch_sub *sub, uint64_t ms)
{
    if (!sub->x->ended)
        nvx_xfer_set_timeout(sub->x->e, ms);
}

int
nvx_node_fetch_cancel(nvx_node *n, const uint8_t *id, uint64_t xid)
{
    for (struct xfer *x = n->xfers; x; x = x->next) {
        if (x->ended || nvx_xfer_ending(x->e))
            continue;
        if ((id && memcmp(x->id, id, 32) == 0) || (!id && x->xid == xid)) {
            nvx_xfer_end(x->e, PROTO_CTL_STATE_CANCELLED, -ECANCELED);
            xfer_settle(x);
            return 0;
        }
    }
    return -ENOENT;
}

void
nvx_node_xfers_each(nvx_node *n, void (*cb)(void *arg, const nvx_xfer_info *xi), void *arg)
{
    for (struct xfer *x = n->xfers; x; x = x->next) {
        nvx_xfer_stats st;
        nvx_xfer_stats_get(x->e, &st);
        nvx_xfer_info xi = {
            .id = x->xid,
            .model = x->id,
            .state = st.state,
            .bytes_done = st.bytes_done,
            .bytes_total = st.bytes_total,
            .chunks_done = st.chunks_done,
            .chunks_total = st.chunks_total,
            .rate = st.rate,
            .peer_count = st.peers,
            .endgame = st.endgame,
        };
        cb(arg, &xi);
    }
}
