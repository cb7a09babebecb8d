/* SPDX-License-Identifier: MIT */
/*
 * The store's model records and lookups: the MODELS record codec, the CHUNKS
 * index that maps a chunk to every (model, offset, len) holding it, and the
 * read-only queries (model info, list, resolve, manifest, data path, chunk
 * find/read). Opening and the LMDB environment are in store.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "libcas/store-internal.h"

/* ---------------------------------------------------------------------- */
/* Model records */

int
cas__model_get(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
               cas__model_rec *ret)
{
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    int r = cas__mdb_err(mdb_get(txn, s->db_models, &k, &v));
    if (r < 0)
        return r;
    const uint8_t *p = v.mv_data;
    if (v.mv_size < CAS__MODEL_REC_LEN || p[0] != CAS__MODEL_REC_VER ||
        (p[1] != CAS_MODEL_PARTIAL && p[1] != CAS_MODEL_COMPLETE))
        return -EBADMSG;
    ret->state = (cas_model_state)p[1];
    ret->added_ns = le64_load(p + 8);
    ret->size = le64_load(p + 16);
    ret->n_chunks = le64_load(p + 24);
    ret->manifest = p + CAS__MODEL_REC_LEN;
    ret->manifest_len = v.mv_size - CAS__MODEL_REC_LEN;
    return 0;
}

int
cas__model_put(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
               const cas__model_rec *rec)
{
    MDB_val k = { CAS_HASH_LEN, (void *)id };
    MDB_val v = { CAS__MODEL_REC_LEN + rec->manifest_len, NULL };
    int r = cas__mdb_err(mdb_put(txn, s->db_models, &k, &v, MDB_RESERVE));
    if (r < 0)
        return r;
    uint8_t *p = v.mv_data;
    memset(p, 0, CAS__MODEL_REC_LEN);
    p[0] = CAS__MODEL_REC_VER;
    p[1] = (uint8_t)rec->state;
    le64_store(p + 8, rec->added_ns);
    le64_store(p + 16, rec->size);
    le64_store(p + 24, rec->n_chunks);
    memcpy(p + CAS__MODEL_REC_LEN, rec->manifest, rec->manifest_len);
    return 0;
}

int
cas__chunks_index(cas_store *s, MDB_txn *txn, const cas_manifest *m)
{
    const uint8_t *id = cas_manifest_id(m);
    size_t n = cas_manifest_chunk_count(m);
    for (size_t i = 0; i < n; i++) {
        cas_chunk_info ci;
        int r = cas_manifest_chunk(m, i, &ci);
        if (r < 0)
            return r;
        uint8_t loc[CAS__CHUNK_LOC_LEN];
        memcpy(loc, id, CAS_HASH_LEN);
        le64_store(loc + CAS_HASH_LEN, ci.offset);
        le32_store(loc + CAS_HASH_LEN + 8, ci.len);
        MDB_val k = { CAS_HASH_LEN, (void *)ci.id }, v = { sizeof(loc), loc };
        int rc = mdb_put(txn, s->db_chunks, &k, &v, MDB_NODUPDATA);
        if (rc != 0 && rc != MDB_KEYEXIST)
            return cas__mdb_err(rc);
    }
    return 0;
}

int
cas__chunks_unindex(cas_store *s, MDB_txn *txn, const cas_manifest *m)
{
    const uint8_t *id = cas_manifest_id(m);
    size_t n = cas_manifest_chunk_count(m);
    MDB_cursor *c = NULL;
    int r = cas__mdb_err(mdb_cursor_open(txn, s->db_chunks, &c));
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        cas_chunk_info ci;
        r = cas_manifest_chunk(m, i, &ci);
        if (r < 0)
            goto out;
        uint8_t lo[CAS__CHUNK_LOC_LEN] = { 0 };
        memcpy(lo, id, CAS_HASH_LEN);
        MDB_val k = { CAS_HASH_LEN, (void *)ci.id }, v = { sizeof(lo), lo };
        /* Every entry of this model for this chunk sorts right after lo. */
        int rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE);
        while (rc == 0 && v.mv_size == CAS__CHUNK_LOC_LEN &&
               memcmp(v.mv_data, id, CAS_HASH_LEN) == 0) {
            rc = mdb_cursor_del(c, 0);
            if (rc != 0)
                break;
            rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
            if (rc == 0 && memcmp(k.mv_data, ci.id, CAS_HASH_LEN) != 0)
                break;
        }
        if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) {
            r = cas__mdb_err(rc);
            goto out;
        }
    }
    r = 0;
out:
    mdb_cursor_close(c);
    return r;
}

bool
cas__is_pinned(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    return mdb_get(txn, s->db_pins, &k, &v) == 0;
}

/* ---------------------------------------------------------------------- */
/* Queries */

static uint64_t
count_sigs(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db_sigs, &c) != 0)
        return 0;
    uint8_t lo[2 * CAS_HASH_LEN] = { 0 };
    memcpy(lo, id, CAS_HASH_LEN);
    MDB_val k = { sizeof(lo), lo }, v;
    uint64_t n = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == sizeof(lo) && memcmp(k.mv_data, id, CAS_HASH_LEN) == 0) {
        n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n;
}

static uint64_t
popcount_bits(const uint8_t *p, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (uint64_t)__builtin_popcount(p[i]);
    return n;
}

static int
fill_info(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
          const cas__model_rec *rec, cas_model_info *ret)
{
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->id, id, CAS_HASH_LEN);
    ret->state = rec->state;
    ret->size = rec->size;
    ret->n_chunks = rec->n_chunks;
    ret->added = rec->added_ns / 1000000000u;
    ret->pinned = cas__is_pinned(s, txn, id);
    ret->n_sigs = count_sigs(s, txn, id);
    if (rec->state == CAS_MODEL_COMPLETE) {
        ret->n_present = rec->n_chunks;
    } else {
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
        if (mdb_get(txn, s->db_bitmaps, &k, &v) == 0)
            ret->n_present = popcount_bits(v.mv_data, v.mv_size);
    }
    return 0;
}

int
cas_store_model_info(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_model_info *ret)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0)
        r = fill_info(s, txn, id, &rec, ret);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_list(cas_store *s, cas_model_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_models, &c));
    if (r < 0)
        goto out;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cas__model_rec rec;
        cas_model_info info;
        /* Damaged records are skipped here; verify reports them. */
        if (k.mv_size != CAS_HASH_LEN || cas__model_get(s, txn, k.mv_data, &rec) < 0)
            continue;
        r = fill_info(s, txn, k.mv_data, &rec, &info);
        if (r == 0)
            r = cb(userdata, &info);
        if (r < 0)
            goto out;
    }
    r = rc == MDB_NOTFOUND ? 0 : cas__mdb_err(rc);
out:
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_resolve(cas_store *s, const char *text, uint8_t ret_id[static CAS_HASH_LEN])
{
    cas_hash_prefix pfx;
    int r = cas_hash_prefix_parse(text, &pfx);
    if (r < 0)
        return r;
    uint8_t lo[CAS_HASH_LEN], hi[CAS_HASH_LEN];
    cas_hash_prefix_range(&pfx, lo, hi);
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_models, &c));
    if (r < 0)
        goto out;
    MDB_val k = { CAS_HASH_LEN, lo }, v;
    int n = 0;
    uint8_t found[CAS_HASH_LEN];
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < 2 && k.mv_size == CAS_HASH_LEN &&
           cas_hash_prefix_match(&pfx, k.mv_data)) {
        memcpy(found, k.mv_data, CAS_HASH_LEN);
        n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        r = cas__mdb_err(rc);
    else if (n == 0)
        r = -ENOENT;
    else if (n > 1)
        r = -ENOTUNIQ;
    else
        memcpy(ret_id, found, CAS_HASH_LEN);
out:
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_manifest_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint8_t **ret_buf,
                       size_t *ret_len)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0) {
        uint8_t *b = malloc(rec.manifest_len ? rec.manifest_len : 1);
        if (!b) {
            r = -ENOMEM;
        } else {
            memcpy(b, rec.manifest, rec.manifest_len);
            *ret_buf = b;
            *ret_len = rec.manifest_len;
        }
    }
    cas__txn_abort(txn);
    return r;
}

/* DIR/data/<id-hex>: the one name of a model's data file, complete or
 * partial (FORMAT.md). */
static int
data_path(cas_store *s, const uint8_t id[static CAS_HASH_LEN], char **ret_path)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    size_t n = strlen(s->dir) + sizeof(CAS__STORE_DATA_DIR) + CAS_HASH_HEX_LEN + 3;
    char *p = malloc(n);
    if (!p)
        return -ENOMEM;
    snprintf(p, n, "%s/%s/%s", s->dir, CAS__STORE_DATA_DIR, hex);
    *ret_path = p;
    return 0;
}

int
cas_store_data_path(cas_store *s, const uint8_t id[static CAS_HASH_LEN], char **ret_path)
{
    cas_model_info info;
    int r = cas_store_model_info(s, id, &info);
    if (r < 0)
        return r;
    if (info.state != CAS_MODEL_COMPLETE)
        return -EAGAIN;
    return data_path(s, id, ret_path);
}

int
cas_store_data_open(cas_store *s, const uint8_t id[static CAS_HASH_LEN], bool *ret_partial)
{
    cas_model_info info;
    int r = cas_store_model_info(s, id, &info);
    if (r < 0)
        return r;
    char *path = NULL;
    r = data_path(s, id, &path); /* a partial model's file has its final name already */
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -errno;
    *ret_partial = info.state != CAS_MODEL_COMPLETE;
    return fd;
}

/* ---------------------------------------------------------------------- */
/* Chunks */

static int
chunk_find_txn(cas_store *s, MDB_txn *txn, const uint8_t chunk[static CAS_HASH_LEN],
               cas_chunk_loc *ret)
{
    MDB_val k = { CAS_HASH_LEN, (void *)chunk }, v;
    int r = cas__mdb_err(mdb_get(txn, s->db_chunks, &k, &v));
    if (r < 0)
        return r;
    if (v.mv_size != CAS__CHUNK_LOC_LEN)
        return -EBADMSG;
    const uint8_t *p = v.mv_data;
    memcpy(ret->model, p, CAS_HASH_LEN);
    ret->offset = le64_load(p + CAS_HASH_LEN);
    ret->len = le32_load(p + CAS_HASH_LEN + 8);
    return 0;
}

int
cas_store_chunk_find(cas_store *s, const uint8_t chunk[static CAS_HASH_LEN], cas_chunk_loc *ret)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = chunk_find_txn(s, txn, chunk, ret);
    cas__txn_abort(txn);
    return r;
}

int
cas__chunk_read_at(cas_store *s, const cas_chunk_loc *loc, const uint8_t chunk[static CAS_HASH_LEN],
                   void *buf)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(loc->model, hex);
    int fd = openat(s->data_fd, hex, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -EBADMSG : -errno;
    int r = cas__pread_full(fd, buf, loc->len, loc->offset);
    close(fd);
    if (r < 0)
        return r;
    uint8_t h[CAS_HASH_LEN];
    cas_hash(buf, loc->len, h);
    return cas_hash_equal(h, chunk) ? 0 : -EBADMSG;
}

/* Collects up to max locations of chunk (one per model, from its dups). */
static int
chunk_locs(cas_store *s, const uint8_t chunk[static CAS_HASH_LEN], cas_chunk_loc *locs, size_t max,
           size_t *ret_n)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    size_t n = 0;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_chunks, &c));
    MDB_val k = { CAS_HASH_LEN, (void *)chunk }, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    for (; rc == 0 && n < max; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != CAS__CHUNK_LOC_LEN)
            continue;
        const uint8_t *p = v.mv_data;
        if (n > 0 && memcmp(locs[n - 1].model, p, CAS_HASH_LEN) == 0)
            continue; /* another occurrence in the same model */
        memcpy(locs[n].model, p, CAS_HASH_LEN);
        locs[n].offset = le64_load(p + CAS_HASH_LEN);
        locs[n].len = le32_load(p + CAS_HASH_LEN + 8);
        n++;
    }
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    if (r < 0)
        return r;
    *ret_n = n;
    return n > 0 ? 0 : -ENOENT;
}

int64_t
cas_store_chunk_read(cas_store *s, const uint8_t chunk[static CAS_HASH_LEN], void *buf, size_t cap)
{
    /* A corrupt copy in one model must not hide a sound one in another. */
    cas_chunk_loc locs[CAS__CHUNK_READ_TRIES];
    size_t n = 0;
    int r = chunk_locs(s, chunk, locs, CAS__CHUNK_READ_TRIES, &n);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (locs[i].len > cap) {
            r = -EMSGSIZE;
            continue;
        }
        r = cas__chunk_read_at(s, &locs[i], chunk, buf);
        if (r == 0)
            return (int64_t)locs[i].len;
    }
    return r;
}
