/* SPDX-License-Identifier: MIT */
/*
 * Serving peers: WANT -> HAVE (complete models), MANIFEST_REQ -> MANIFEST,
 * REQUEST -> DATA read and re-hashed on the thread pool, CANCEL, SIGS_REQ ->
 * SIGS (the signatures attached to a complete model; daemon/sigs.c).
 *
 * Re-hash policy (a verified cache): a served model is opened once (its
 * manifest decoded, its data file kept open, struct smodel, up to
 * NVX_NODE_MCACHE models). The first time a chunk is served it is read and
 * re-hashed against its id; a chunk that rotted on disk is never sent (the
 * peer gets NOT_FOUND and fetches it elsewhere; the log says to run nvx
 * verify). Its bit in the model's verified bitmap is then set, and later
 * requests for it (other peers, other pieces) are served with one pread and
 * no hash. The bitmap lives as long as the cache entry, so a model evicted
 * and reopened is re-hashed again. A data file whose link count dropped to 0
 * (nvx rm, nvx gc) is no longer served: unpin + gc stop seeding. Nor is the
 * cache entry of a complete model whose data file changed (its ctime moved:
 * `nvx repair` made it writable to mark bad chunks missing, or someone wrote
 * to it): the entry is dropped and the model reopened from the store, so a
 * chunk repair found bad is never served from a stale verified bit, and a
 * model repair turned partial is served as partial.
 *
 * What is served at all is the serve policy's (daemon/share.h): every job
 * asks it first, on the pool (a model the policy does not share gets the
 * same NOT_FOUND as a model we lack, so a peer cannot tell them apart), and
 * the loop serves a cached model's chunks only within
 * NVX_NODE_SHARE_RECHECK_MS of the pool's last yes.
 *
 * The upload limit (upload-rate, daemon/ratelimit.h) is charged with the
 * bytes of each DATA sent (not the length asked for: a peer asking past a
 * chunk's end must not spend everyone's upload). Reads on the pool
 * reserve up to a piece each until they send. While the bucket holds no
 * more than the reservations, no request leaves any peer's queue (they
 * wait there, bounded as below) and the node's tick resumes them once it
 * refilled: no timer spins, and WANT, MANIFEST_REQ and SIGS_REQ are
 * answered as usual.
 *
 * Serving is a use of the model (the store quota evicts least recently
 * used first): the tick has quota.c write it on the pool, at most once per
 * model per NVX_NODE_SERVING_MS, for the models of the cache that sent DATA.
 *
 * A chunk of a partial model that this node's own running fetch received,
 * hashed against its id and stored is marked verified without a second
 * hash (the bytes were checked moments before, in this process; chunks the
 * fetch found on disk at its start are hashed as above).
 *
 * A request for a verified chunk whose bytes are in the page cache is served
 * on the loop: preadv2(RWF_NOWAIT) reads them or fails at once, never
 * waiting for the disk. A pool job per chunk cost a thread wake-up and a
 * hand-off back to the loop each, about a tenth of a seeder's CPU.
 *
 * Limits per peer: at most peer_max_requests REQUESTs queued (more get
 * NOT_FOUND BUSY), NVX_NODE_PEER_META_JOBS WANT, MANIFEST_REQ and SIGS_REQ
 * jobs at once (BUSY too), NVX_NODE_SERVE_JOBS reads on the pool at once, and no new
 * read starts while peer_max_bytes of sent data wait in the transport. For
 * the node: no new read while NVX_NODE_SERVE_MAX_BYTES wait to be written to
 * all peers together, so memory does not grow with the number of peers.
 */
#define _GNU_SOURCE /* preadv2(), RWF_NOWAIT */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "daemon/recip.h"
#include "libcas/hash.h"
#include "libcas/store.h"

enum job_kind {
    JOB_WANT,
    JOB_MANIFEST,
    JOB_CHUNK,
    JOB_SIGS,
};

struct serve_job {
    uv_work_t w;
    nvx_peer *p;
    int kind;
    struct sreq r;
    struct smodel *sm;     /* cached model used (ref held), or NULL */
    struct smodel *sm_new; /* opened by the job (JOB_CHUNK without a cache hit) */
    uint8_t *buf;
    int64_t res;
    bool fetching;  /* this node fetches r.model now (the serve policy asks) */
    bool report;    /* JOB_CHUNK: the chunk is corrupt, first time seen: log it */
    uint32_t total; /* JOB_MANIFEST: manifest size; JOB_WANT: chunks */
    /* JOB_SIGS: blob i at buf + i * PROTO_SIG_MAX */
    unsigned n_sigs;
    uint16_t sig_len[PROTO_SIGS_MAX];
};

static void
send_not_found(nvx_peer *p, uint32_t req_id, const uint8_t model[32], uint32_t chunk, uint8_t what)
{
    proto_msg m = { .type = PROTO_MSG_NOT_FOUND };
    m.u.not_found.req_id = req_id;
    memcpy(m.u.not_found.model_id, model, 32);
    m.u.not_found.chunk = chunk;
    m.u.not_found.what = what;
    proto_session_send_msg(p->sess, &m);
}

/* CLOCK_MONOTONIC in ms: the pool and the loop both read it (uv_now() is
 * the loop's alone). */
static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- served models ---------------------------------------------------- */

static void
smodel_free(struct smodel *sm)
{
    if (!sm)
        return;
    if (sm->fd >= 0)
        close(sm->fd);
    cas_manifest_free(sm->man);
    free((void *)sm->verified);
    free((void *)sm->reported);
    free(sm);
}

static struct smodel *
mcache_get(nvx_node *n, const uint8_t id[32])
{
    for (size_t i = 0; i < NVX_NODE_MCACHE; i++) {
        struct smodel *e = n->mcache[i];
        if (e && !atomic_load(&e->dead) && memcmp(e->id, id, 32) == 0) {
            e->used = ++n->mcache_clock;
            e->refs++;
            return e;
        }
    }
    return NULL;
}

/* Drops a reference; a dead entry nobody uses leaves the cache. */
static void
mcache_unref(nvx_node *n, struct smodel *sm)
{
    sm->refs--;
    if (sm->refs > 0 || !atomic_load(&sm->dead))
        return;
    for (size_t i = 0; i < NVX_NODE_MCACHE; i++)
        if (n->mcache[i] == sm)
            n->mcache[i] = NULL;
    smodel_free(sm);
}

/* Takes ownership of sm: caches it or frees it. */
static void
mcache_put(nvx_node *n, struct smodel *sm)
{
    size_t victim = NVX_NODE_MCACHE;
    for (size_t i = 0; i < NVX_NODE_MCACHE; i++) {
        struct smodel *e = n->mcache[i];
        if (e && !atomic_load(&e->dead) && memcmp(e->id, sm->id, 32) == 0) {
            smodel_free(sm);
            return;
        }
        if (!e) {
            victim = i;
            break;
        }
        if (e->refs == 0 && (victim == NVX_NODE_MCACHE || e->used < n->mcache[victim]->used))
            victim = i;
    }
    if (victim == NVX_NODE_MCACHE || atomic_load(&sm->dead)) {
        smodel_free(sm);
        return;
    }
    smodel_free(n->mcache[victim]);
    sm->used = ++n->mcache_clock;
    n->mcache[victim] = sm;
}

static void
mcache_clear(nvx_node *n)
{
    for (size_t i = 0; i < NVX_NODE_MCACHE; i++) {
        smodel_free(n->mcache[i]);
        n->mcache[i] = NULL;
    }
}

/* ---- pool side --------------------------------------------------------- */

/* Opens model id (complete or partial) for serving (pool thread). */
static int
smodel_open(cas_store *s, const uint8_t id[32], struct smodel **ret)
{
    uint8_t *buf = NULL;
    size_t len;
    struct smodel *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return -ENOMEM;
    sm->fd = -1;
    memcpy(sm->id, id, 32);
    int r = cas_store_manifest_get(s, id, &buf, &len);
    if (r < 0)
        goto out;
    r = cas_manifest_decode(buf, len, &sm->man);
    if (r < 0)
        goto out;
    size_t nc = cas_manifest_chunk_count(sm->man);
    sm->verified = calloc(nc / 8 + 1, 1);
    sm->reported = calloc(nc / 8 + 1, 1);
    if (!sm->verified || !sm->reported) {
        r = -ENOMEM;
        goto out;
    }
    r = cas_store_data_open(s, id, &sm->partial); /* a partial's verified chunks are served */
    if (r < 0)
        goto out;
    sm->fd = r;
    r = 0;
    struct stat st;
    if (fstat(sm->fd, &st) < 0)
        r = -errno;
    else
        sm->ctime = st.st_ctim;
out:
    free(buf);
    if (r < 0) {
        smodel_free(sm);
        return r;
    }
    *ret = sm;
    return 0;
}

/* DATA frames are built in place: the chunk is read at DATA_PAYLOAD of its
 * buffer, behind room for the frame and seal header and the DATA fields,
 * with room for the tag after it, and sealed there (no copy). */
enum {
    DATA_PAYLOAD = PROTO_SEAL_BODY_OFFSET + PROTO_DATA_HEAD_LEN,
    DATA_TAIL = PROTO_SEAL_OVERHEAD - PROTO_SEAL_BODY_OFFSET,
};

static bool
is_verified(struct smodel *sm, size_t i)
{
    return atomic_load(&sm->verified[i / 8]) & (1u << (i % 8));
}

static void
set_verified(struct smodel *sm, size_t i)
{
    atomic_fetch_or(&sm->verified[i / 8], (uint8_t)(1u << (i % 8)));
}

/* Whether sm can no longer be served from: its data file was removed, or
 * (complete models) changed since it was opened. Marks it dead then, so
 * mcache_get() stops returning it and the next job reopens the model. */
static bool
smodel_stale(struct smodel *sm)
{
    struct stat st;
    if (fstat(sm->fd, &st) < 0)
        return false; /* the read that follows reports it */
    bool stale = st.st_nlink == 0 || (!sm->partial && (st.st_ctim.tv_sec != sm->ctime.tv_sec ||
                                                       st.st_ctim.tv_nsec != sm->ctime.tv_nsec));
    if (stale)
        atomic_store(&sm->dead, true);
    return stale;
}

/* Hashes chunk idx (its bytes in buf; the hash goes to h) together with up
 * to SERVE_AHEAD_CHUNKS unverified chunks after it, read here (at most
 * SERVE_AHEAD_BYTES), and marks those that match verified: several SIMD
 * lanes hash them for about the cost of one chunk alone, and peers ask for
 * chunks mostly in order. Anything that fails here is read and checked
 * again when it is asked for. */
enum {
    SERVE_AHEAD_CHUNKS = 7,
    SERVE_AHEAD_BYTES = 1 << 20,
};

static void
verify_ahead(struct smodel *sm, uint32_t idx, const uint8_t *buf, uint8_t h[static CAS_HASH_LEN])
{
    const void *bufs[1 + SERVE_AHEAD_CHUNKS] = { buf };
    size_t lens[1 + SERVE_AHEAD_CHUNKS];
    cas_chunk_info ci[1 + SERVE_AHEAD_CHUNKS];
    uint8_t got[1 + SERVE_AHEAD_CHUNKS][CAS_HASH_LEN];
    size_t n = 1, bytes = 0, total = cas_manifest_chunk_count(sm->man);
    cas_manifest_chunk(sm->man, idx, &ci[0]);
    lens[0] = ci[0].len;
    while (n <= SERVE_AHEAD_CHUNKS && idx + n < total && !is_verified(sm, idx + n) &&
           cas_manifest_chunk(sm->man, idx + n, &ci[n]) == 0 &&
           bytes + ci[n].len <= SERVE_AHEAD_BYTES) {
        lens[n] = ci[n].len;
        bytes += ci[n].len;
        n++;
    }
    /* The chunks after idx lie back to back in the data file. */
    uint8_t *ahead = n > 1 ? malloc(bytes) : NULL;
    if (!ahead || pread(sm->fd, ahead, bytes, (off_t)ci[1].offset) != (ssize_t)bytes)
        n = 1;
    for (size_t k = 1, off = 0; k < n; off += lens[k], k++)
        bufs[k] = ahead + off;
    cas_hash_many(bufs, lens, n, got);
    memcpy(h, got[0], CAS_HASH_LEN);
    for (size_t k = 1; k < n; k++)
        if (cas_hash_equal(got[k], ci[k].id))
            set_verified(sm, idx + k);
    free(ahead);
}

/* Reads chunk idx of a served model into a new buffer at DATA_PAYLOAD,
 * re-hashing it the first time (pool thread). Returns its length or a
 * negative errno. */
static int64_t
smodel_read(struct smodel *sm, uint32_t idx, uint8_t **ret_buf)
{
    cas_chunk_info ci;
    if (cas_manifest_chunk(sm->man, idx, &ci) < 0)
        return -ERANGE;
    if (smodel_stale(sm))
        return -ESTALE; /* removed: stop seeding it; changed: reopen it */
    uint8_t *base = malloc(DATA_PAYLOAD + (size_t)ci.len + DATA_TAIL);
    if (!base)
        return -ENOMEM;
    uint8_t *buf = base + DATA_PAYLOAD;
    for (size_t off = 0; off < ci.len;) {
        ssize_t k = pread(sm->fd, buf + off, ci.len - off, (off_t)(ci.offset + off));
        if (k <= 0) {
            int r = k < 0 ? -errno : -EIO;
            if (r == -EINTR)
                continue;
            free(base);
            return r;
        }
        off += (size_t)k;
    }
    if (!is_verified(sm, idx)) {
        uint8_t h[CAS_HASH_LEN];
        verify_ahead(sm, idx, buf, h);
        if (!cas_hash_equal(h, ci.id)) {
            free(base);
            return sm->partial ? -ENOENT : -EBADMSG; /* partial: not fetched yet */
        }
        set_verified(sm, idx);
    }
    *ret_buf = base;
    return ci.len;
}

/* cas_store_sig_list callback: keeps up to PROTO_SIGS_MAX blobs that fit a
 * SIGS (longer ones are left out). */
static int
sig_collect(void *userdata, const void *blob, size_t len)
{
    struct serve_job *j = userdata;
    if (j->n_sigs < PROTO_SIGS_MAX && len >= 1 && len <= PROTO_SIG_MAX) {
        memcpy(j->buf + (size_t)j->n_sigs * PROTO_SIG_MAX, blob, len);
        j->sig_len[j->n_sigs++] = (uint16_t)len;
    }
    return 0;
}

/* Whether the serve policy shares j's model (pool thread). A model we do
 * not have is not shared either. */
static bool
job_shared(const struct serve_job *j, cas_store *s)
{
    nvx_serve_policy pol = j->p->node->serve;
    if (pol == NVX_SERVE_NONE)
        return false;
    cas_model_info info;
    if (cas_store_model_info(s, j->r.model, &info) < 0)
        return pol == NVX_SERVE_ALL; /* the job itself reports what is missing */
    return nvx_share_allowed(pol, &info, j->fetching);
}

static void
serve_work(uv_work_t *w)
{
    struct serve_job *j = (struct serve_job *)w;
    cas_store *s = j->p->node->store;
    if (!job_shared(j, s)) {
        j->res = -ENOENT; /* JOB_SIGS: an empty SIGS */
        return;
    }
    switch (j->kind) {
    case JOB_WANT: {
        /* Complete: HAVE ALL. Partial: HAVE with the committed bitmap, so
         * fetchers of the same model trade chunks among themselves. */
        cas_model_info info;
        int r = cas_store_model_info(s, j->r.model, &info);
        j->res = r < 0 ? r : info.state == CAS_MODEL_COMPLETE ? 1 : 0;
        if (j->res == 1 && info.n_chunks <= PROTO_CHUNKS_MAX)
            j->total = (uint32_t)info.n_chunks;
        uint64_t nbits;
        if (j->res == 0 && cas_store_bitmap_get(s, j->r.model, &j->buf, &nbits) == 0 && nbits > 0 &&
            nbits <= PROTO_CHUNKS_MAX) {
            j->total = (uint32_t)nbits;
            j->res = 2;
        }
        break;
    }
    case JOB_MANIFEST: {
        uint8_t *buf;
        size_t len;
        int r = cas_store_manifest_get(s, j->r.model, &buf, &len);
        if (r < 0) {
            j->res = r;
            break;
        }
        if (len > PROTO_MANIFEST_MAX || j->r.offset >= len) {
            free(buf);
            j->res = -ERANGE;
            break;
        }
        size_t n = len - j->r.offset < j->r.length ? len - j->r.offset : j->r.length;
        memmove(buf, buf + j->r.offset, n);
        j->buf = buf;
        j->total = (uint32_t)len;
        j->res = (int64_t)n;
        break;
    }
    case JOB_SIGS: {
        cas_model_info info;
        j->buf = malloc(PROTO_SIGS_MAX * PROTO_SIG_MAX);
        if (!j->buf)
            j->res = -ENOMEM;
        else if (cas_store_model_info(s, j->r.model, &info) == 0 &&
                 info.state == CAS_MODEL_COMPLETE)
            j->res = cas_store_sig_list(s, j->r.model, sig_collect, j);
        /* Then those of keys we do not hold (kept apart, never trusted
         * here): the asker checks each against its own keyring, so a
         * signature travels through nodes that do not trust its key. */
        if (j->res == 0)
            j->res = cas_store_sig_list_pending(s, j->r.model, sig_collect, j);
        break;
    }
    case JOB_CHUNK: {
        if (j->p->node->serve_delay_ms)
            nvx__test_delay(j->p->node->serve_delay_ms);
        struct smodel *sm = j->sm;
        if (sm && smodel_stale(sm))
            sm = NULL; /* changed since cached: reopen from the store */
        if (!sm) {
            int r = smodel_open(s, j->r.model, &j->sm_new);
            if (r < 0) {
                j->res = r;
                break;
            }
            sm = j->sm_new;
        }
        atomic_store(&sm->shared_until_ms, mono_ms() + NVX_NODE_SHARE_RECHECK_MS);
        int64_t n = smodel_read(sm, j->r.chunk, &j->buf);
        if (n == -EBADMSG) {
            /* Logged once per chunk (while the model stays cached), not
             * once per request: any peer can ask for it again and again. */
            uint8_t bit = (uint8_t)(1u << (j->r.chunk % 8));
            j->report = !(atomic_fetch_or(&sm->reported[j->r.chunk / 8], bit) & bit);
        }
        if (n < 0) {
            j->res = n;
            break;
        }
        if (j->r.offset >= n) {
            j->res = -ERANGE;
            break;
        }
        uint32_t len =
            (uint32_t)n - j->r.offset < j->r.length ? (uint32_t)n - j->r.offset : j->r.length;
        if (j->r.offset > 0)
            memmove(j->buf + DATA_PAYLOAD, j->buf + DATA_PAYLOAD + j->r.offset, len);
        j->res = len;
        break;
    }
    }
}

/* What a chunk read on the pool may send, reserved from the upload limit
 * until it does: at most a piece. */
static uint64_t
up_reserve(const struct sreq *r)
{
    return r->length < NVX_NODE_PIECE_MAX ? r->length : NVX_NODE_PIECE_MAX;
}

/* Queues a DATA frame built in f (len bytes of the chunk at DATA_PAYLOAD,
 * from smodel_read or serve_inline) on the session; takes f. */
static void
send_data(nvx_peer *p, const struct sreq *r, uint8_t *f, uint32_t len)
{
    if (p->node->corrupt_serve)
        f[DATA_PAYLOAD] ^= 0x5a; /* test-only fault injection */
    proto_data d = { .req_id = r->req_id, .chunk = r->chunk, .offset = r->offset };
    memcpy(d.model_id, r->model, PROTO_ID_LEN);
    d.bytes.len = len;
    proto_data_head_put(&d, f + PROTO_SEAL_BODY_OFFSET);
    if (r->offset == 0)
        nvx__seed_sent(p, r->model, r->chunk);
    p->t_useful_ms = nvx__now(p->node); /* a peer we serve is not idle (admit.h) */
    nvx_rate_take(&p->node->up, len);
    for (size_t i = 0; i < NVX_NODE_MCACHE; i++) {
        struct smodel *e = p->node->mcache[i];
        if (e && memcmp(e->id, r->model, 32) == 0)
            e->served_ms = p->t_useful_ms ? p->t_useful_ms : 1;
    }
    (void)proto_session_send_buf(p->sess, PROTO_MSG_DATA, f, PROTO_DATA_HEAD_LEN + (size_t)len,
                                 DATA_PAYLOAD + (size_t)len + DATA_TAIL);
}

/* Serves r on the loop when its chunk was verified and its bytes are in the
 * page cache. Returns true when sent; false: queue a pool job. */
static bool
serve_inline(nvx_peer *p, const struct sreq *r)
{
    nvx_node *n = p->node;
    if (n->serve_delay_ms)
        return false;
    struct smodel *sm = mcache_get(n, r->model);
    if (!sm)
        return false;
    bool sent = false;
    cas_chunk_info ci;
    /* A chunk our own fetch just received, hashed against its id and wrote
     * to this data file is not hashed again before it is served (a
     * fetcher in a swarm serves most of what it fetches). */
    if (sm->partial && r->chunk < cas_manifest_chunk_count(sm->man) && !is_verified(sm, r->chunk) &&
        nvx__fetch_fresh(n, r->model, r->chunk))
        set_verified(sm, r->chunk);
    if (atomic_load(&sm->shared_until_ms) <= mono_ms() ||
        cas_manifest_chunk(sm->man, r->chunk, &ci) < 0 || r->offset >= ci.len ||
        !is_verified(sm, r->chunk) || smodel_stale(sm))
        goto out; /* the job reports each of these */
    uint32_t len = ci.len - r->offset < r->length ? ci.len - r->offset : r->length;
    uint8_t *f = malloc(DATA_PAYLOAD + (size_t)len + DATA_TAIL);
    if (!f)
        goto out;
    struct iovec iov = { f + DATA_PAYLOAD, len };
    ssize_t k = preadv2(sm->fd, &iov, 1, (off_t)(ci.offset + r->offset), RWF_NOWAIT);
    if (k != (ssize_t)len) {
        free(f); /* not all cached (EAGAIN), or short: the pool job reads it */
        goto out;
    }
    send_data(p, r, f, len);
    sent = true;
out:
    mcache_unref(n, sm);
    return sent;
}

static void
serve_done(uv_work_t *w, int status)
{
    struct serve_job *j = (struct serve_job *)w;
    nvx_peer *p = j->p;
    nvx_node *n = p->node;
    n->jobs--;
    p->jobs--;
    if (j->sm)
        mcache_unref(n, j->sm);
    if (j->sm_new)
        mcache_put(n, j->sm_new);
    if (j->kind == JOB_CHUNK) {
        p->serve_jobs--;
        n->up_reserved -= up_reserve(&j->r);
    }
    if (status < 0 && j->res >= 0)
        j->res = status;
    if (!p->closing) {
        proto_msg m;
        switch (j->kind) {
        case JOB_WANT:
            if (j->res == 1 && j->total > 0 && nvx__seed_want(p, j->r.model, j->total)) {
                /* super-seeding: HAVE with the chunks revealed to p */
            } else if (j->res == 1 || j->res == 2) {
                m.type = PROTO_MSG_HAVE;
                memcpy(m.u.want.model_id, j->r.model, 32);
                m.u.want.set.kind = j->res == 1 ? PROTO_CHUNKSET_ALL : PROTO_CHUNKSET_BITMAP;
                m.u.want.set.nbits = j->total;
                m.u.want.set.bitmap = j->buf;
                proto_session_send_msg(p->sess, &m);
            } else {
                send_not_found(p, 0, j->r.model, 0, PROTO_NOTFOUND_MANIFEST);
            }
            nvx__fetch_peer_wants(p, j->r.model);
            break;
        case JOB_MANIFEST:
            if (j->res > 0) {
                m.type = PROTO_MSG_MANIFEST;
                m.u.manifest.req_id = j->r.req_id;
                memcpy(m.u.manifest.model_id, j->r.model, 32);
                m.u.manifest.total = j->total;
                m.u.manifest.offset = j->r.offset;
                m.u.manifest.bytes.p = j->buf;
                m.u.manifest.bytes.len = (size_t)j->res;
                proto_session_send_msg(p->sess, &m);
            } else {
                send_not_found(p, j->r.req_id, j->r.model, 0, PROTO_NOTFOUND_MANIFEST);
            }
            break;
        case JOB_SIGS:
            m.type = PROTO_MSG_SIGS;
            m.u.sigs.req_id = j->r.req_id;
            memcpy(m.u.sigs.model_id, j->r.model, 32);
            m.u.sigs.n = j->res < 0 ? 0 : j->n_sigs;
            for (size_t i = 0; i < m.u.sigs.n; i++)
                m.u.sigs.sigs[i] = (proto_str){ j->buf + i * PROTO_SIG_MAX, j->sig_len[i] };
            proto_session_send_msg(p->sess, &m);
            break;
        case JOB_CHUNK:
            if (j->res > 0) {
                send_data(p, &j->r, j->buf, (uint32_t)j->res);
                j->buf = NULL;
            } else {
                if (j->res == -EBADMSG && j->report) {
                    char sid[17];
                    log_error("model %s: stored chunk %u is corrupt: peers get NOT_FOUND for it "
                              "and the rest as usual: run nvx verify, then nvx repair",
                              nvx_short_id(j->r.model, sid), j->r.chunk);
                }
                /* Only this chunk is refused: the asker keeps fetching the
                 * others from us (daemon/xfer-refuse.c). */
                send_not_found(p, j->r.req_id, j->r.model, j->r.chunk, PROTO_NOTFOUND_CHUNK);
            }
            break;
        }
        nvx__peer_flush(p);
    }
    free(j->buf);
    free(j);
    if (!p->closing)
        nvx__serve_pump(p);
    nvx__peer_put(p);
    nvx__node_maybe_stopped(n);
}

static int
queue_job(nvx_peer *p, int kind, const struct sreq *r)
{
    nvx_node *n = p->node;
    struct serve_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->p = p;
    j->kind = kind;
    j->r = *r;
    j->fetching = nvx__fetch_active(n, r->model);
    if (kind == JOB_CHUNK)
        j->sm = mcache_get(n, r->model);
    int rc = uv_queue_work(n->loop, &j->w, serve_work, serve_done);
    if (rc < 0) {
        if (j->sm)
            mcache_unref(n, j->sm);
        free(j);
        return rc;
    }
    n->jobs++;
    p->jobs++;
    if (kind == JOB_CHUNK) {
        p->serve_jobs++;
        n->up_reserved += up_reserve(r);
    }
    return 0;
}

/* ---- reciprocation (daemon/recip.h) ----------------------------------- */

/* p's reciprocation state, made at first use with the node's. NULL when
 * out of memory: p is then served as before reciprocation existed. */
static nvx_recip_peer *
peer_rp(nvx_peer *p)
{
    nvx_node *n = p->node;
    if (p->rp)
        return p->rp;
    if (!n->recip &&
        nvx_recip_new(NULL, randombytes_random() | (uint64_t)randombytes_random() << 32,
                      nvx__now(n), &n->recip) < 0)
        return NULL;
    if (nvx_recip_peer_add(n->recip, nvx__now(n), &p->rp) < 0)
        p->rp = NULL;
    return p->rp;
}

static void
sq_changed(nvx_peer *p)
{
    nvx_recip_peer *rp = peer_rp(p);
    if (rp)
        nvx_recip_queued(p->node->recip, rp, p->sq_len, nvx__now(p->node));
}

/* Whether r must wait: only a model this node fetches itself is traded
 * tit-for-tat; what it holds complete it serves to all alike. */
static bool
choked(nvx_peer *p, const struct sreq *r)
{
    return p->rp && nvx_recip_choked(p->node->recip, p->rp) && nvx__fetch_active(p->node, r->model);
}

void
nvx__serve_tick(nvx_node *n)
{
    nvx__quota_touch_served(n);
    if (n->up_waiting && nvx_rate_avail(&n->up, nvx__now(n)) > n->up_reserved) {
        n->up_waiting = false;
        for (nvx_peer *p = n->peers; p; p = p->next)
            if (!p->closing && p->sq_len > 0)
                nvx__serve_pump(p);
    }
    for (nvx_peer *p = n->peers; p; p = p->next) {
        if (p->closing || (!p->rp && p->rate_last == 0))
            continue; /* a peer that never sent us DATA nor asked: nothing to rank */
        nvx_recip_peer *rp = peer_rp(p);
        if (rp)
            nvx_recip_received(n->recip, rp, p->rate_last);
    }
    if (n->recip)
        nvx_recip_tick(n->recip, nvx__now(n));
}

void
nvx__serve_free(nvx_node *n)
{
    mcache_clear(n);
    nvx_recip_free(n->recip); /* its peers are gone (nvx__serve_peer_gone) */
    n->recip = NULL;
}

/* WANT, MANIFEST_REQ and SIGS_REQ each take a pool job (and a manifest
 * copy, or a few KiB): a peer gets NVX_NODE_PEER_META_JOBS of them at once
 * and a BUSY answer past that, so a flood of small requests cannot queue
 * unbounded work and memory. An honest peer has at most one WANT per
 * transfer (NVX_NODE_XFERS_MAX) outstanding, and a few manifest pieces. */
static int
queue_meta_job(nvx_peer *p, int kind, const struct sreq *r)
{
    if (p->jobs - p->serve_jobs >= NVX_NODE_PEER_META_JOBS)
        return -EBUSY;
    return queue_job(p, kind, r);
}

void
nvx__serve_pump(nvx_peer *p)
{
    nvx_node *n = p->node;
    while (!p->closing && p->sq_len > 0 && p->serve_jobs < NVX_NODE_SERVE_JOBS &&
           tp_conn_queued(p->conn) < n->peer_max_bytes) {
        if (n->tx_queued >= NVX_NODE_SERVE_MAX_BYTES) {
            n->serve_starved = true; /* on_send pumps this peer again */
            break;
        }
        if (nvx_rate_avail(&n->up, nvx__now(n)) <= n->up_reserved) {
            n->up_waiting = true; /* the tick pumps every peer again */
            break;
        }
        struct sreq r = p->sq[p->sq_head];
        p->sq_head = (p->sq_head + 1) % n->peer_max_requests;
        p->sq_len--;
        sq_changed(p);
        if (choked(p, &r)) {
            /* Said at once, not left in the queue: the asker retries
             * later and meanwhile asks peers that serve it. */
            send_not_found(p, r.req_id, r.model, r.chunk, PROTO_NOTFOUND_BUSY);
            nvx__peer_flush(p);
            continue;
        }
        if (serve_inline(p, &r)) {
            nvx__peer_flush(p);
            continue;
        }
        if (queue_job(p, JOB_CHUNK, &r) < 0) {
            send_not_found(p, r.req_id, r.model, r.chunk, PROTO_NOTFOUND_BUSY);
            nvx__peer_flush(p);
        }
    }
}

void
nvx__serve_peer_gone(nvx_peer *p)
{
    p->sq_len = 0;
    nvx_recip_peer_remove(p->node->recip, p->rp);
    p->rp = NULL;
}

void
nvx__serve_peer_free(nvx_peer *p)
{
    free(p->sq);
    p->sq = NULL;
}

void
nvx__serve_msg(nvx_peer *p, const proto_msg *m)
{
    nvx_node *n = p->node;
    struct sreq r = { 0 };
    switch (m->type) {
    case PROTO_MSG_WANT:
        memcpy(r.model, m->u.want.model_id, 32);
        if (queue_meta_job(p, JOB_WANT, &r) < 0)
            send_not_found(p, 0, r.model, 0, PROTO_NOTFOUND_BUSY);
        break;
    case PROTO_MSG_MANIFEST_REQ:
        r.req_id = m->u.manifest_req.req_id;
        memcpy(r.model, m->u.manifest_req.model_id, 32);
        r.offset = m->u.manifest_req.offset;
        r.length = m->u.manifest_req.length;
        if (queue_meta_job(p, JOB_MANIFEST, &r) < 0)
            send_not_found(p, r.req_id, r.model, 0, PROTO_NOTFOUND_BUSY);
        break;
    case PROTO_MSG_SIGS_REQ:
        r.req_id = m->u.sigs_req.req_id;
        memcpy(r.model, m->u.sigs_req.model_id, 32);
        if (queue_meta_job(p, JOB_SIGS, &r) < 0) { /* busy: none this time */
            proto_msg none = { .type = PROTO_MSG_SIGS };
            none.u.sigs.req_id = r.req_id;
            memcpy(none.u.sigs.model_id, r.model, 32);
            proto_session_send_msg(p->sess, &none);
        }
        break;
    case PROTO_MSG_REQUEST:
        r.req_id = m->u.request.req_id;
        memcpy(r.model, m->u.request.model_id, 32);
        r.chunk = m->u.request.chunk;
        r.offset = m->u.request.offset;
        r.length = m->u.request.length;
        /* The queue is made on a peer's first REQUEST: a session that
         * never asks for chunks holds none. */
        if (!p->sq && !n->stopping)
            p->sq = calloc(n->peer_max_requests, sizeof(struct sreq));
        if (n->stopping || !p->sq || p->sq_len >= n->peer_max_requests) {
            log_peer(NVX_LOG_DEBUG, "peer %s: request queue full", p->addr);
            send_not_found(p, r.req_id, r.model, r.chunk, PROTO_NOTFOUND_BUSY);
            break;
        }
        p->sq[(p->sq_head + p->sq_len) % n->peer_max_requests] = r;
        p->sq_len++;
        sq_changed(p);
        if (r.offset == 0)
            nvx__seed_asked(p, r.model, r.chunk);
        nvx__serve_pump(p);
        break;
    case PROTO_MSG_CANCEL:
        /* Drop a queued request; one already on the pool is sent anyway
         * (the requester ignores DATA it no longer wants). */
        for (size_t i = 0; i < p->sq_len; i++) {
            struct sreq *q = &p->sq[(p->sq_head + i) % n->peer_max_requests];
            if (q->req_id == m->u.request.req_id && q->chunk == m->u.request.chunk &&
                memcmp(q->model, m->u.request.model_id, 32) == 0) {
                for (size_t k = i; k + 1 < p->sq_len; k++)
                    p->sq[(p->sq_head + k) % n->peer_max_requests] =
                        p->sq[(p->sq_head + k + 1) % n->peer_max_requests];
                p->sq_len--;
                sq_changed(p);
                break;
            }
        }
        break;
    }
}
