/* SPDX-License-Identifier: MIT */
/*
 * Pins, removal, garbage collection and the size limit. Removal is two
 * transactions: the first deletes every record of the model and commits, the
 * second unlinks the data file unless a record for it came back (FORMAT.md
 * "Store": files are only unlinked under the write lock). gc picks unpinned
 * complete models oldest first from one read transaction, then removes them
 * one by one (a model pinned or removed meanwhile is skipped).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "libcas/store-internal.h"

int
cas_store_pin(cas_store *s, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0 && !cas__is_pinned(s, txn, id)) {
        uint8_t t[8];
        le64_store(t, cas__now_ns());
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v = { sizeof(t), t };
        r = cas__mdb_err(mdb_put(txn, s->db_pins, &k, &v, 0));
    }
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    return cas__txn_commit(txn);
}

int
cas_store_unpin(cas_store *s, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == 0) {
        MDB_val k = { CAS_HASH_LEN, (void *)id };
        r = cas__mdb_err(mdb_del(txn, s->db_pins, &k, NULL));
        if (r == -ENOENT)
            r = 0;
    }
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    return cas__txn_commit(txn);
}

/* Deletes every key of db that starts with the 32-byte id. */
static int
del_prefixed(MDB_txn *txn, MDB_dbi db, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_cursor *c;
    int r = cas__mdb_err(mdb_cursor_open(txn, db, &c));
    if (r < 0)
        return r;
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= CAS_HASH_LEN && memcmp(k.mv_data, id, CAS_HASH_LEN) == 0) {
        rc = mdb_cursor_del(c, 0);
        if (rc == 0)
            rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND || rc == EINVAL ? 0 : cas__mdb_err(rc);
}

/* Deletes every entry of table dbi whose value begins with id (full scan).
 * With exact, only values of exactly CAS_HASH_LEN bytes count: name entries
 * are bare ids, chunk index entries are (model id, offset, len). */
static int
del_values_of(MDB_txn *txn, MDB_dbi dbi, const uint8_t id[static CAS_HASH_LEN], bool exact)
{
    MDB_cursor *c;
    int r = cas__mdb_err(mdb_cursor_open(txn, dbi, &c));
    if (r < 0)
        return r;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        bool len_ok = exact ? v.mv_size == CAS_HASH_LEN : v.mv_size >= CAS_HASH_LEN;
        if (len_ok && memcmp(v.mv_data, id, CAS_HASH_LEN) == 0) {
            rc = mdb_cursor_del(c, 0);
            if (rc == 0)
                rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == EINVAL ? 0 : cas__mdb_err(rc);
}

/* Unlinks data/<id> unless a record for id exists again (a concurrent re-add),
 * holding the write lock so no add can be between its rename and commit. */
static int
unlink_if_orphan(cas_store *s, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    if (mdb_get(txn, s->db_models, &k, &v) == MDB_NOTFOUND) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas__data_name(id, hex);
        if (unlinkat(s->data_fd, hex, 0) < 0 && errno != ENOENT)
            r = -errno;
    }
    cas__txn_abort(txn);
    return r;
}

/* Deletes every record of model id in txn: the model record, its chunk
 * index entries, pin, bitmap, signatures and the names bound to it.
 * Returns 0, -ENOENT, -EBUSY (pinned, no CAS_RM_FORCE), LMDB errors. */
static int
rm_records(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    cas_manifest *m = NULL;
    cas__model_rec rec;
    int r = cas__model_get(s, txn, id, &rec);
    bool damaged = r == -EBADMSG;
    if (r < 0 && !damaged)
        goto out;
    if (cas__is_pinned(s, txn, id) && !(flags & CAS_RM_FORCE)) {
        r = -EBUSY;
        goto out;
    }
    if (!damaged && rec.state == CAS_MODEL_COMPLETE) {
        r = cas_manifest_decode(rec.manifest, rec.manifest_len, &m);
        damaged = r == -EBADMSG;
        if (r == 0)
            r = cas__chunks_unindex(s, txn, m);
        if (r < 0 && !damaged)
            goto out;
    }
    /* Without a sound manifest, find this model's chunk entries the slow
     * way, so that removing a damaged model repairs the index. */
    if (damaged && (r = del_values_of(txn, s->db_chunks, id, false)) < 0)
        goto out;
    MDB_val k = { CAS_HASH_LEN, (void *)id };
    r = cas__mdb_err(mdb_del(txn, s->db_models, &k, NULL));
    if (r < 0)
        goto out;
    mdb_del(txn, s->db_pins, &k, NULL);
    mdb_del(txn, s->db_bitmaps, &k, NULL);
    r = del_prefixed(txn, s->db_sigs, id);
    if (r == 0)
        r = del_prefixed(txn, s->db_sigs_pending, id);
    if (r == 0)
        r = del_values_of(txn, s->db_names, id, true);
out:
    cas_manifest_free(m);
    return r;
}

/* The usual order: delete the records and commit, then unlink the file. */
static int
rm_records_first(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    r = rm_records(s, txn, id, flags);
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    r = cas__txn_commit(txn);
    if (r < 0)
        return r;
    /* A crash here leaves an orphan data file, removed at the next open. */
    cas__crash_point_reached(CAS__CP_RM_COMMITTED);
    return unlink_if_orphan(s, id);
}

static void
removing_key(const uint8_t id[static CAS_HASH_LEN],
             uint8_t ret[static CAS__REMOVING_KEY_LEN + CAS_HASH_LEN])
{
    memcpy(ret, CAS__REMOVING_KEY, CAS__REMOVING_KEY_LEN);
    memcpy(ret + CAS__REMOVING_KEY_LEN, id, CAS_HASH_LEN);
}

/* Step 2 of the disk-full order: under one write transaction, unlink the
 * data file (freeing its space before LMDB needs pages), delete the
 * records and the mark, commit. A crash after the unlink leaves the mark,
 * and the next open runs this again. */
static int
rm_unlink_then_records(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    if (cas__is_pinned(s, txn, id) && !(flags & CAS_RM_FORCE)) {
        r = -EBUSY; /* checked before the unlink, which cannot be undone */
        goto fail;
    }
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    if (unlinkat(s->data_fd, hex, 0) < 0 && errno != ENOENT) {
        r = -errno;
        goto fail;
    }
    cas__crash_point_reached(CAS__CP_RM_UNLINKED);
    r = rm_records(s, txn, id, flags);
    if (r == -ENOENT)
        r = 0; /* the record went before a crash; only the mark is left */
    if (r < 0)
        goto fail;
    uint8_t mk[CAS__REMOVING_KEY_LEN + CAS_HASH_LEN];
    removing_key(id, mk);
    MDB_val k = { sizeof(mk), mk };
    r = cas__mdb_err(mdb_del(txn, s->db_meta, &k, NULL));
    if (r < 0 && r != -ENOENT)
        goto fail;
    return cas__txn_commit(txn);
fail:
    cas__txn_abort(txn);
    return r;
}

int
cas__rm_unlink_first(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    /* Step 1: commit a mark naming the model. It needs a page or two, which
     * the released reserve provides on a full disk. */
    cas__reserve_release(s);
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    if (r == -EBADMSG)
        r = 0; /* a damaged record is removed all the same */
    if (r == 0 && cas__is_pinned(s, txn, id) && !(flags & CAS_RM_FORCE))
        r = -EBUSY;
    uint8_t mk[CAS__REMOVING_KEY_LEN + CAS_HASH_LEN];
    removing_key(id, mk);
    MDB_val k = { sizeof(mk), mk }, v = { 0, NULL };
    if (r == 0)
        r = cas__mdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    r = cas__txn_commit(txn);
    if (r == -ENOSPC) {
        /* Not even the mark fits (the reserve was used up): last resort,
         * unlink and delete in one transaction without it. A crash inside
         * that leaves a record without its file, which verify reports and
         * nvx rm removes. */
        r = rm_unlink_then_records(s, id, flags);
        cas__reserve_make(s);
        return r;
    }
    if (r < 0)
        return r;
    cas__crash_point_reached(CAS__CP_RM_MARKED);
    /* The mark stands for the user's decision: from here on the removal is
     * finished even if pinned meanwhile. */
    r = rm_unlink_then_records(s, id, flags | CAS_RM_FORCE);
    cas__reserve_make(s);
    return r;
}

int
cas__rm_finish_marked(cas_store *s)
{
    /* Collect first: the write transactions below must not run under the
     * read transaction that scans. */
    uint8_t(*ids)[CAS_HASH_LEN] = NULL;
    size_t n = 0, cap = 0;
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_meta, &c));
    MDB_val k = { CAS__REMOVING_KEY_LEN, CAS__REMOVING_KEY }, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < CAS__REMOVING_KEY_LEN ||
            memcmp(k.mv_data, CAS__REMOVING_KEY, CAS__REMOVING_KEY_LEN) != 0)
            break;
        if (k.mv_size != CAS__REMOVING_KEY_LEN + CAS_HASH_LEN)
            continue; /* not ours: leave it */
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            void *ni = realloc(ids, cap * CAS_HASH_LEN);
            if (!ni) {
                r = -ENOMEM;
                break;
            }
            ids = ni;
        }
        memcpy(ids[n++], (const uint8_t *)k.mv_data + CAS__REMOVING_KEY_LEN, CAS_HASH_LEN);
    }
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    for (size_t i = 0; r == 0 && i < n; i++)
        r = rm_unlink_then_records(s, ids[i], CAS_RM_FORCE);
    free(ids);
    return r;
}

static int
rm_model(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    for (;;) {
        int r = rm_records_first(s, id, flags);
        /* A full disk shows as -ENOSPC, or as -EIO when LMDB's page write
         * was cut short: either way, free the file first. */
        if (r == -EIO)
            return cas__rm_unlink_first(s, id, flags);
        if (r != -ENOSPC)
            return r;
        /* A full map: grow it and try again. A full disk: LMDB cannot
         * write the pages of the deletion, so free the file first. */
        r = cas__map_grow(s);
        if (r < 0)
            return r;
        if (r == 0)
            return cas__rm_unlink_first(s, id, flags);
    }
}

int
cas_store_rm(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags)
{
    return rm_model(s, id, flags);
}

typedef struct gc_cand {
    uint8_t id[CAS_HASH_LEN];
    uint64_t added_ns;
    uint64_t size;
} gc_cand;

static int
cmp_cand(const void *a, const void *b)
{
    const gc_cand *x = a, *y = b;
    if (x->added_ns != y->added_ns)
        return x->added_ns < y->added_ns ? -1 : 1;
    return memcmp(x->id, y->id, CAS_HASH_LEN);
}

/* Collects unpinned complete models (candidates) and the store's total size
 * and limit, from one read transaction. */
static int
gc_collect(cas_store *s, gc_cand **ret_c, size_t *ret_n, uint64_t *ret_total, uint64_t *ret_limit)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    gc_cand *cands = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
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
        if (k.mv_size != CAS_HASH_LEN || cas__model_get(s, txn, k.mv_data, &rec) < 0)
            continue;
        total += rec.size;
        if (rec.state != CAS_MODEL_COMPLETE || cas__is_pinned(s, txn, k.mv_data))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            gc_cand *nc = realloc(cands, cap * sizeof(*nc));
            if (!nc) {
                r = -ENOMEM;
                goto out;
            }
            cands = nc;
        }
        memcpy(cands[n].id, k.mv_data, CAS_HASH_LEN);
        cands[n].added_ns = rec.added_ns;
        cands[n].size = rec.size;
        n++;
    }
    uint64_t limit = 0;
    MDB_val lk = { 5, "limit" }, lv;
    if (mdb_get(txn, s->db_meta, &lk, &lv) == 0 && lv.mv_size == 8)
        limit = le64_load(lv.mv_data);
    if (n > 1)
        qsort(cands, n, sizeof(*cands), cmp_cand);
    *ret_c = cands;
    cands = NULL;
    *ret_n = n;
    *ret_total = total;
    *ret_limit = limit;
    r = 0;
out:
    free(cands);
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

/* max_bytes: with CAS_GC_TO_LIMIT, the size to get under instead of the
 * stored limit (0: the stored limit). */
static int
gc_run(cas_store *s, unsigned flags, uint64_t max_bytes, const uint8_t *keep, cas_model_fn cb,
       void *userdata, cas_gc_result *ret)
{
    gc_cand *cands = NULL;
    size_t n = 0;
    uint64_t total = 0, limit = 0;
    cas_gc_result res = { 0, 0 };
    int r = gc_collect(s, &cands, &n, &total, &limit);
    if (r < 0)
        return r;
    if (max_bytes)
        limit = max_bytes;
    for (size_t i = 0; i < n; i++) {
        if (flags & CAS_GC_TO_LIMIT) {
            if (limit == 0 || total <= limit)
                break;
        }
        if (keep && memcmp(keep, cands[i].id, CAS_HASH_LEN) == 0)
            continue;
        cas_model_info info = { 0 };
        memcpy(info.id, cands[i].id, CAS_HASH_LEN);
        info.state = CAS_MODEL_COMPLETE;
        info.size = cands[i].size;
        info.added = cands[i].added_ns / 1000000000u;
        if (!(flags & CAS_GC_DRY_RUN)) {
            r = rm_model(s, cands[i].id, 0);
            if (r == -ENOENT || r == -EBUSY)
                continue; /* removed or pinned meanwhile */
            if (r < 0)
                goto out;
        }
        total -= cands[i].size;
        res.n_models++;
        res.bytes += cands[i].size;
        if (cb) {
            r = cb(userdata, &info);
            if (r < 0)
                goto out;
        }
    }
    r = 0;
out:
    free(cands);
    if (ret)
        *ret = res;
    return r;
}

int
cas_store_gc(cas_store *s, unsigned flags, cas_model_fn cb, void *userdata, cas_gc_result *ret)
{
    return gc_run(s, flags, 0, NULL, cb, userdata, ret);
}

int
cas_store_gc_to(cas_store *s, uint64_t max_bytes, unsigned flags, cas_model_fn cb, void *userdata,
                cas_gc_result *ret)
{
    if (max_bytes == 0)
        return -EINVAL;
    return gc_run(s, flags | CAS_GC_TO_LIMIT, max_bytes, NULL, cb, userdata, ret);
}

int
cas__gc_to_limit(cas_store *s, const uint8_t *keep)
{
    return gc_run(s, CAS_GC_TO_LIMIT, 0, keep, NULL, NULL, NULL);
}

int
cas__limit_check(cas_store *s, MDB_txn *txn, uint64_t size)
{
    MDB_val lk = { 5, "limit" }, lv;
    if (mdb_get(txn, s->db_meta, &lk, &lv) != 0 || lv.mv_size != 8)
        return 0;
    uint64_t limit = le64_load(lv.mv_data);
    if (limit == 0)
        return 0;
    MDB_cursor *c;
    int r = cas__mdb_err(mdb_cursor_open(txn, s->db_pins, &c));
    if (r < 0)
        return r;
    uint64_t pinned = 0;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cas__model_rec rec;
        if (k.mv_size == CAS_HASH_LEN && cas__model_get(s, txn, k.mv_data, &rec) == 0)
            pinned += rec.size;
    }
    mdb_cursor_close(c);
    return pinned + size > limit ? -ENOSPC : 0;
}

int
cas_store_usage_get(cas_store *s, cas_store_usage *ret)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    cas_store_usage u = { 0 };
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
        if (k.mv_size != CAS_HASH_LEN || cas__model_get(s, txn, k.mv_data, &rec) < 0)
            continue;
        u.n_models++;
        u.bytes += rec.size;
        if (rec.state == CAS_MODEL_COMPLETE)
            u.n_complete++;
        else
            u.n_partial++;
        if (cas__is_pinned(s, txn, k.mv_data)) {
            u.n_pinned++;
            u.pinned_bytes += rec.size;
        }
    }
    MDB_val lk = { 5, "limit" }, lv;
    if (mdb_get(txn, s->db_meta, &lk, &lv) == 0 && lv.mv_size == 8)
        u.limit = le64_load(lv.mv_data);
    *ret = u;
out:
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_limit_set(cas_store *s, uint64_t bytes)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    uint8_t b[8];
    le64_store(b, bytes);
    MDB_val k = { 5, "limit" }, v = { sizeof(b), b };
    r = cas__mdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    return cas__txn_commit(txn);
}
