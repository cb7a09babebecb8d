/* SPDX-License-Identifier: MIT */
/*
 * Partial models: a model whose manifest is known and whose chunks arrive
 * one by one (fetch, issue 3). Each chunk is re-hashed before it is written
 * at its final offset in DIR/data/<id>; a bitmap in LMDB records which
 * chunks are durable. Bits are set only after an fdatasync of the data file
 * (cas_partial_commit), so after a crash every set bit names bytes that are
 * on disk; bytes written after the last commit are simply fetched again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bits.h"
#include "libcas/store-internal.h"

struct cas_partial {
    cas_store *s;
    uint8_t id[CAS_HASH_LEN];
    cas_manifest *m;
    int fd;
    pthread_mutex_t mu;        /* present, n_present */
    pthread_mutex_t commit_mu; /* one commit at a time */
    uint8_t *present;          /* committed or put */
    size_t bm_len;
    uint64_t n_chunks, n_present;
};

static size_t
bm_len_for(uint64_t n)
{
    return (size_t)((n + 7) / 8);
}

static int
partial_create(cas_store *s, const uint8_t *manifest, size_t len,
               uint8_t ret_id[static CAS_HASH_LEN])
{
    cas_manifest *m = NULL;
    MDB_txn *txn = NULL;
    int fd = -1;
    bool created = false;
    char hex[CAS_HASH_HEX_LEN + 1];
    uint8_t *zeros = NULL;
    int r = cas_manifest_decode(manifest, len, &m);
    if (r < 0)
        return r;
    const uint8_t *id = cas_manifest_id(m);
    cas__data_name(id, hex);
    r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        goto out;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0) {
        memcpy(ret_id, id, CAS_HASH_LEN);
        goto out; /* exists: returns 0 */
    }
    if (r != -ENOENT)
        goto out;
    uint64_t size = cas_manifest_size(m);
    r = cas__limit_check(s, txn, size);
    if (r < 0)
        goto out;
    /* Created under the write lock, durable (empty, sparse) before the
     * record that names it commits. */
    fd = openat(s->data_fd, hex, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    created = true;
    cas__crash_point_reached(CAS__CP_PARTIAL_FILE);
    if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
        r = -errno;
        goto out;
    }
    r = cas__fsync_dir(s->data_fd);
    if (r < 0)
        goto out;
    size_t mlen;
    const uint8_t *mb = cas_manifest_bytes(m, &mlen);
    rec = (cas__model_rec){ .state = CAS_MODEL_PARTIAL,
                            .added_ns = cas__now_ns(),
                            .size = size,
                            .n_chunks = cas_manifest_chunk_count(m),
                            .manifest = mb,
                            .manifest_len = mlen };
    r = cas__model_put(s, txn, id, &rec);
    if (r < 0)
        goto out;
    size_t bl = bm_len_for(rec.n_chunks);
    zeros = calloc(1, bl ? bl : 1);
    if (!zeros) {
        r = -ENOMEM;
        goto out;
    }
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v = { bl, zeros };
    r = cas__mdb_err(mdb_put(txn, s->db_bitmaps, &k, &v, 0));
    if (r < 0)
        goto out;
    r = cas__txn_commit(txn);
    txn = NULL;
    if (r == 0) {
        created = false;
        memcpy(ret_id, id, CAS_HASH_LEN);
        r = 1;
    }
out:
    if (created)
        unlinkat(s->data_fd, hex, 0);
    if (txn)
        cas__txn_abort(txn);
    if (fd >= 0)
        close(fd);
    free(zeros);
    cas_manifest_free(m);
    return r;
}

int
cas_store_partial_create(cas_store *s, const uint8_t *manifest, size_t len,
                         uint8_t ret_id[static CAS_HASH_LEN])
{
    /* A full map is grown and the creation (which undoes itself on failure)
     * run again. */
    for (;;) {
        int r = partial_create(s, manifest, len, ret_id);
        int g = r == -ENOSPC ? cas__map_grow(s) : 0;
        if (g <= 0)
            return g < 0 ? g : r;
    }
}

int
cas_partial_open(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_partial **ret)
{
    cas_partial *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->s = s;
    p->fd = -1;
    memcpy(p->id, id, CAS_HASH_LEN);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->commit_mu, NULL);
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        goto fail;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0 && rec.state != CAS_MODEL_PARTIAL)
        r = -EINVAL;
    if (r == 0)
        r = cas_manifest_decode(rec.manifest, rec.manifest_len, &p->m);
    if (r == 0) {
        p->n_chunks = cas_manifest_chunk_count(p->m);
        p->bm_len = bm_len_for(p->n_chunks);
        p->present = calloc(1, p->bm_len ? p->bm_len : 1);
        if (!p->present)
            r = -ENOMEM;
    }
    if (r == 0) {
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
        if (mdb_get(txn, s->db_bitmaps, &k, &v) == 0)
            memcpy(p->present, v.mv_data, v.mv_size < p->bm_len ? v.mv_size : p->bm_len);
        for (uint64_t i = 0; i < p->n_chunks; i++)
            p->n_present += bit_get(p->present, i);
    }
    cas__txn_abort(txn);
    if (r < 0)
        goto fail;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    p->fd = openat(s->data_fd, hex, O_RDWR | O_CLOEXEC);
    if (p->fd < 0) {
        r = -errno;
        goto fail;
    }
    *ret = p;
    return 0;
fail:
    cas_partial_free(p);
    return r;
}

void
cas_partial_free(cas_partial *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    cas_manifest_free(p->m);
    free(p->present);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->commit_mu);
    free(p);
}

uint64_t
cas_partial_n_chunks(const cas_partial *p)
{
    return p->n_chunks;
}

uint64_t
cas_partial_n_present(cas_partial *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->n_present;
    pthread_mutex_unlock(&p->mu);
    return n;
}

bool
cas_partial_has(cas_partial *p, uint64_t idx)
{
    if (idx >= p->n_chunks)
        return false;
    pthread_mutex_lock(&p->mu);
    bool b = bit_get(p->present, idx);
    pthread_mutex_unlock(&p->mu);
    return b;
}

int
cas_partial_chunk(const cas_partial *p, uint64_t idx, uint8_t ret_id[static CAS_HASH_LEN],
                  uint64_t *ret_offset, uint32_t *ret_len)
{
    cas_chunk_info ci;
    if (idx >= p->n_chunks || cas_manifest_chunk(p->m, (size_t)idx, &ci) < 0)
        return -EINVAL;
    memcpy(ret_id, ci.id, CAS_HASH_LEN);
    *ret_offset = ci.offset;
    *ret_len = ci.len;
    return 0;
}

/* Checks chunk idx of len bytes before a put: 1 to go on (*ci filled), 0
 * when it is present already, or -EINVAL / -EBADMSG. */
static int
put_check(cas_partial *p, uint64_t idx, size_t len, cas_chunk_info *ci)
{
    if (idx >= p->n_chunks || cas_manifest_chunk(p->m, (size_t)idx, ci) < 0)
        return -EINVAL;
    if (len != ci->len)
        return -EBADMSG;
    return cas_partial_has(p, idx) ? 0 : 1;
}

int
cas_partial_put(cas_partial *p, uint64_t idx, const void *buf, size_t len)
{
    cas_chunk_info ci;
    int r = put_check(p, idx, len, &ci); /* before hashing: no hash for nothing */
    if (r <= 0)
        return r;
    uint8_t h[CAS_HASH_LEN];
    cas_hash(buf, len, h);
    return cas_partial_put_hashed(p, idx, buf, len, h);
}

int
cas_partial_put_hashed(cas_partial *p, uint64_t idx, const void *buf, size_t len,
                       const uint8_t hash[static CAS_HASH_LEN])
{
    cas_chunk_info ci;
    int r = put_check(p, idx, len, &ci);
    if (r <= 0)
        return r;
    if (!cas_hash_equal(hash, ci.id))
        return -EBADMSG;
    r = cas__pwrite_full(p->fd, buf, len, ci.offset);
    if (r < 0)
        return r;
    pthread_mutex_lock(&p->mu);
    uint8_t bit = (uint8_t)(1u << (idx % 8));
    r = (p->present[idx / 8] & bit) ? 0 : 1;
    p->present[idx / 8] |= bit;
    p->n_present += (uint64_t)r;
    pthread_mutex_unlock(&p->mu);
    return r;
}

typedef struct rep {
    uint8_t id[CAS_HASH_LEN];
    uint64_t idx;
} rep;

static int
cmp_rep(const void *a, const void *b)
{
    const rep *x = a, *y = b;
    int c = memcmp(x->id, y->id, CAS_HASH_LEN);
    return c ? c : x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Copies chunks that repeat within the model (same id at several indexes)
 * from a present copy to the missing ones. */
static int
fill_repeats(cas_partial *p, uint8_t *buf, uint64_t *filled)
{
    if (p->n_chunks < 2)
        return 0;
    rep *v = malloc((size_t)p->n_chunks * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (uint64_t i = 0; i < p->n_chunks; i++) {
        cas_chunk_info ci;
        cas_manifest_chunk(p->m, (size_t)i, &ci);
        memcpy(v[i].id, ci.id, CAS_HASH_LEN);
        v[i].idx = i;
    }
    qsort(v, (size_t)p->n_chunks, sizeof(*v), cmp_rep);
    int r = 0;
    for (uint64_t a = 0, b; a < p->n_chunks && r >= 0; a = b) {
        uint64_t src = UINT64_MAX, missing = 0;
        for (b = a; b < p->n_chunks && memcmp(v[b].id, v[a].id, CAS_HASH_LEN) == 0; b++) {
            if (cas_partial_has(p, v[b].idx))
                src = src == UINT64_MAX ? v[b].idx : src;
            else
                missing++;
        }
        if (src == UINT64_MAX || missing == 0)
            continue;
        cas_chunk_info ci;
        cas_manifest_chunk(p->m, (size_t)src, &ci);
        r = cas__pread_full(p->fd, buf, ci.len, ci.offset);
        for (uint64_t k = a; k < b && r >= 0; k++) {
            if (cas_partial_has(p, v[k].idx))
                continue;
            r = cas_partial_put(p, v[k].idx, buf, ci.len); /* re-hashes */
            if (r == -EBADMSG) {
                r = 0; /* the present copy is bad on disk: fetch these */
                break;
            }
            *filled += (uint64_t)(r > 0);
        }
    }
    free(v);
    return r < 0 ? r : 0;
}

int
cas_partial_fill_local(cas_partial *p, uint64_t *ret_n)
{
    cas_chunker_params par;
    cas_manifest_chunker(p->m, &par);
    uint8_t *buf = malloc(par.max);
    if (!buf)
        return -ENOMEM;
    uint64_t filled = 0;
    int r = 0;
    for (uint64_t i = 0; i < p->n_chunks; i++) {
        if (cas_partial_has(p, i))
            continue;
        cas_chunk_info ci;
        cas_manifest_chunk(p->m, (size_t)i, &ci);
        int64_t got = cas_store_chunk_read(p->s, ci.id, buf, par.max);
        if (got == -ENOENT || got == -EBADMSG || got == -EMSGSIZE) {
            r = 0; /* not held, or only corrupt copies: fetch it instead */
            continue;
        }
        r = got < 0 ? (int)got : cas_partial_put(p, i, buf, ci.len);
        if (r < 0)
            break;
        filled += (uint64_t)r;
        r = 0;
    }
    if (r == 0)
        r = fill_repeats(p, buf, &filled);
    free(buf);
    if (r == 0 && ret_n)
        *ret_n = filled;
    return r;
}

/* fdatasync, then OR the snapshot into the stored bitmap. With complete,
 * also turns the model complete in the same transaction. */
static int
commit_locked(cas_partial *p, bool complete)
{
    uint8_t *snap = malloc(p->bm_len ? p->bm_len : 1);
    if (!snap)
        return -ENOMEM;
    pthread_mutex_lock(&p->mu);
    memcpy(snap, p->present, p->bm_len);
    uint64_t n_present = p->n_present;
    pthread_mutex_unlock(&p->mu);
    MDB_txn *txn = NULL;
    int r = 0;
    if (complete && n_present != p->n_chunks) {
        r = -EAGAIN;
        goto out;
    }
    if (fdatasync(p->fd) < 0 || (complete && fchmod(p->fd, 0444) < 0)) {
        r = -errno;
        goto out;
    }
    cas__crash_point_reached(CAS__CP_PARTIAL_SYNCED);
    r = cas__txn_begin(p->s, false, &txn);
    if (r < 0)
        goto out;
    cas__model_rec rec;
    r = cas__model_get(p->s, txn, p->id, &rec);
    if (r == 0 && rec.state != CAS_MODEL_PARTIAL)
        r = complete ? 0 : -EINVAL; /* completed by an add meanwhile */
    if (r < 0 || rec.state != CAS_MODEL_PARTIAL)
        goto out;
    MDB_val k = { CAS_HASH_LEN, p->id }, v;
    if (complete) {
        rec.state = CAS_MODEL_COMPLETE;
        r = cas__model_put(p->s, txn, p->id, &rec);
        if (r == 0)
            r = cas__chunks_index(p->s, txn, p->m);
        if (r == 0)
            mdb_del(txn, p->s->db_bitmaps, &k, NULL);
    } else {
        if (mdb_get(txn, p->s->db_bitmaps, &k, &v) == 0)
            for (size_t i = 0; i < v.mv_size && i < p->bm_len; i++)
                snap[i] |= ((const uint8_t *)v.mv_data)[i];
        v = (MDB_val){ p->bm_len, snap };
        r = cas__mdb_err(mdb_put(txn, p->s->db_bitmaps, &k, &v, 0));
    }
    if (r < 0)
        goto out;
    cas__crash_point_reached(CAS__CP_PARTIAL_PRE_COMMIT);
    r = cas__txn_commit(txn);
    txn = NULL;
out:
    if (txn)
        cas__txn_abort(txn);
    free(snap);
    return r;
}

/* commit_locked(), growing a full map and committing again. */
static int
commit_grow(cas_partial *p, bool complete)
{
    for (;;) {
        int r = commit_locked(p, complete);
        int g = r == -ENOSPC ? cas__map_grow(p->s) : 0;
        if (g <= 0)
            return g < 0 ? g : r;
    }
}

int
cas_partial_commit(cas_partial *p)
{
    pthread_mutex_lock(&p->commit_mu);
    int r = commit_grow(p, false);
    pthread_mutex_unlock(&p->commit_mu);
    return r;
}

int
cas_partial_complete(cas_partial *p)
{
    pthread_mutex_lock(&p->commit_mu);
    int r = commit_grow(p, true);
    pthread_mutex_unlock(&p->commit_mu);
    return r;
}

int
cas_store_bitmap_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint8_t **ret_bits,
                     uint64_t *ret_n_chunks)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r < 0)
        goto out;
    size_t bl = bm_len_for(rec.n_chunks);
    uint8_t *bits = calloc(1, bl ? bl : 1);
    if (!bits) {
        r = -ENOMEM;
        goto out;
    }
    if (rec.state == CAS_MODEL_COMPLETE) {
        for (uint64_t i = 0; i < rec.n_chunks; i++)
            bit_set(bits, i);
    } else {
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
        if (mdb_get(txn, s->db_bitmaps, &k, &v) == 0)
            memcpy(bits, v.mv_data, v.mv_size < bl ? v.mv_size : bl);
    }
    *ret_bits = bits;
    *ret_n_chunks = rec.n_chunks;
out:
    cas__txn_abort(txn);
    return r;
}
