/* SPDX-License-Identifier: MIT */
/*
 * Kept marks and last use (FORMAT.md "Store": databases `kept` and
 * `used`). A kept model is one the node fetched: plain gc leaves it and
 * the node seeds it, but the size limit may evict it, least recently used
 * first; only a user's pin protects a model from the limit. The last use
 * orders that eviction: add, a completed fetch, a run through the CLI and
 * serving (throttled by the caller) record it. Both live in databases of
 * their own, not in the model record, so that noting a use rewrites 8
 * bytes instead of a record that carries the whole manifest.
 */
#include <errno.h>
#include <string.h>

#include <lmdb.h>

#include "libcas/store-internal.h"

bool
cas__is_kept(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    return mdb_get(txn, s->db_kept, &k, &v) == 0;
}

uint64_t
cas__used_ns(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN], uint64_t added_ns)
{
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    /* A damaged value (wrong length) counts as never used: the worst it
     * does is move the model up the eviction order. */
    if (mdb_get(txn, s->db_used, &k, &v) == 0 && v.mv_size == 8) {
        uint64_t t = le64_load(v.mv_data);
        return t > added_ns ? t : added_ns;
    }
    return added_ns;
}

int
cas_store_keep(cas_store *s, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    /* A pin says more: fetching a pinned model again leaves it pinned
     * only, so that unpinning it later lets it go. */
    if (r == 0 && !cas__is_kept(s, txn, id) && !cas__is_pinned(s, txn, id)) {
        uint8_t t[8];
        le64_store(t, cas__now_ns());
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v = { sizeof(t), t };
        r = cas__mdb_err(mdb_put(txn, s->db_kept, &k, &v, 0));
    }
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    return cas__txn_commit(txn);
}

int
cas_store_touch(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint64_t min_age_s)
{
    uint64_t now = cas__now_ns(), min_age = min_age_s * 1000000000u;
    /* A read transaction first: a use noted less than min_age ago costs no
     * write lock (serving notes uses while fetches commit). */
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    bool fresh = r == 0 && min_age && cas__used_ns(s, txn, id, 0) + min_age > now;
    cas__txn_abort(txn);
    if (r < 0 || fresh)
        return r;
    r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    r = cas__model_get(s, txn, id, &rec); /* removed meanwhile? */
    if (r == 0) {
        uint8_t t[8];
        le64_store(t, now);
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v = { sizeof(t), t };
        r = cas__mdb_err(mdb_put(txn, s->db_used, &k, &v, 0));
    }
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    r = cas__txn_commit(txn);
    return r < 0 ? r : 1;
}
