/* SPDX-License-Identifier: MIT */
/*
 * Small records of the store: local names, signature blobs, trusted keys,
 * peer records and signed name records. Each call is one LMDB transaction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/store-internal.h"

/* Runs a write transaction body; commits on success, aborts otherwise. */
static int
finish(MDB_txn *txn, int r)
{
    if (r < 0) {
        cas__txn_abort(txn);
        return r;
    }
    int c = cas__txn_commit(txn);
    return c < 0 ? c : r;
}

/* Deletes one key of one table in its own write transaction; -ENOENT when absent. */
static int
del_key(cas_store *s, MDB_dbi dbi, const void *key, size_t len)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { len, (void *)key };
    return finish(txn, cas__mdb_err(mdb_del(txn, dbi, &k, NULL)));
}

static bool
model_exists(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN])
{
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    return mdb_get(txn, s->db_models, &k, &v) == 0;
}

static int
check_name(const char *name)
{
    if (!name)
        return -EINVAL;
    size_t n = strlen(name);
    return n == 0 || n > CAS_STORE_NAME_MAX ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------- */
/* Names */

int
cas_store_name_set(cas_store *s, const char *name, const uint8_t id[static CAS_HASH_LEN])
{
    int r = check_name(name);
    if (r < 0)
        return r;
    MDB_txn *txn;
    r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    if (!model_exists(s, txn, id))
        return finish(txn, -ENOENT);
    MDB_val k = { strlen(name), (void *)name }, v = { CAS_HASH_LEN, (void *)id };
    return finish(txn, cas__mdb_err(mdb_put(txn, s->db_names, &k, &v, 0)));
}

int
cas_store_name_get(cas_store *s, const char *name, uint8_t ret_id[static CAS_HASH_LEN])
{
    int r = check_name(name);
    if (r < 0)
        return r == -EINVAL ? -ENOENT : r;
    MDB_txn *txn;
    r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    MDB_val k = { strlen(name), (void *)name }, v;
    r = cas__mdb_err(mdb_get(txn, s->db_names, &k, &v));
    if (r == 0 && v.mv_size != CAS_HASH_LEN)
        r = -EBADMSG;
    if (r == 0)
        memcpy(ret_id, v.mv_data, CAS_HASH_LEN);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_name_del(cas_store *s, const char *name)
{
    int r = check_name(name);
    if (r < 0)
        return r == -EINVAL ? -ENOENT : r;
    return del_key(s, s->db_names, name, strlen(name));
}

int
cas_store_name_list(cas_store *s, cas_name_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_names, &c));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size != CAS_HASH_LEN || k.mv_size > CAS_STORE_NAME_MAX)
            continue;
        char name[CAS_STORE_NAME_MAX + 1];
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        r = cb(userdata, name, v.mv_data);
    }
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

/* ---------------------------------------------------------------------- */
/* Signatures: key = model id | BLAKE2b-256(blob) */

static void
sig_key(const uint8_t id[static CAS_HASH_LEN], const void *blob, size_t len,
        uint8_t ret[static 2 * CAS_HASH_LEN])
{
    memcpy(ret, id, CAS_HASH_LEN);
    cas_hash(blob, len, ret + CAS_HASH_LEN);
}

/* Entries of db whose key starts with id (at most limit are counted). */
static size_t
count_prefixed(MDB_txn *txn, MDB_dbi db, const uint8_t id[static CAS_HASH_LEN], size_t limit)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, db, &c) != 0)
        return limit;
    uint8_t lo[2 * CAS_HASH_LEN] = { 0 };
    memcpy(lo, id, CAS_HASH_LEN);
    MDB_val k = { sizeof(lo), lo }, v;
    size_t n = 0;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < limit && k.mv_size == sizeof(lo) &&
           memcmp(k.mv_data, id, CAS_HASH_LEN) == 0) {
        n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n;
}

int
cas__sig_put(cas_store *s, bool pending, const uint8_t id[static CAS_HASH_LEN], const void *blob,
             size_t len)
{
    if (!blob || len == 0)
        return -EINVAL;
    if (len > (pending ? CAS_STORE_SIG_PENDING_BLOB_MAX : CAS_STORE_SIG_MAX))
        return -EMSGSIZE;
    uint8_t key[2 * CAS_HASH_LEN];
    sig_key(id, blob, len, key);
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    if (!model_exists(s, txn, id))
        return finish(txn, -ENOENT);
    MDB_dbi db = pending ? s->db_sigs_pending : s->db_sigs;
    MDB_val k = { sizeof(key), key }, v;
    if (mdb_get(txn, db, &k, &v) == 0)
        return finish(txn, 0);
    if (pending) {
        /* Keys are free: whoever makes them must not fill the disk. */
        MDB_stat st;
        r = cas__mdb_err(mdb_stat(txn, db, &st));
        if (r < 0)
            return finish(txn, r);
        if (st.ms_entries >= CAS_STORE_SIG_PENDING_MAX ||
            count_prefixed(txn, db, id, CAS_STORE_SIG_PENDING_PER_MODEL) >=
                CAS_STORE_SIG_PENDING_PER_MODEL)
            return finish(txn, -ENOSPC);
    }
    v = (MDB_val){ len, (void *)blob };
    r = cas__mdb_err(mdb_put(txn, db, &k, &v, MDB_NOOVERWRITE));
    return finish(txn, r < 0 ? r : 1);
}

static int
sig_list(cas_store *s, MDB_dbi db, const uint8_t id[static CAS_HASH_LEN], cas_blob_fn cb,
         void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, db, &c));
    uint8_t lo[2 * CAS_HASH_LEN] = { 0 };
    memcpy(lo, id, CAS_HASH_LEN);
    MDB_val k = { sizeof(lo), lo }, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0 && r == 0 && k.mv_size == sizeof(lo) && memcmp(k.mv_data, id, CAS_HASH_LEN) == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        r = cb(userdata, v.mv_data, v.mv_size);
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_sig_list(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_blob_fn cb,
                   void *userdata)
{
    return sig_list(s, s->db_sigs, id, cb, userdata);
}

int
cas_store_sig_list_pending(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_blob_fn cb,
                           void *userdata)
{
    return sig_list(s, s->db_sigs_pending, id, cb, userdata);
}

int
cas__sig_list_all(cas_store *s, bool pending, cas__sig_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, pending ? s->db_sigs_pending : s->db_sigs, &c));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == 2 * CAS_HASH_LEN)
            r = cb(userdata, k.mv_data, v.mv_data, v.mv_size);
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

int
cas__sig_unpend(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob, size_t len)
{
    uint8_t key[2 * CAS_HASH_LEN];
    sig_key(id, blob, len, key);
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { sizeof(key), key }, v = { len, (void *)blob };
    r = cas__mdb_err(mdb_del(txn, s->db_sigs_pending, &k, NULL));
    if (r == 0) {
        int rc = mdb_put(txn, s->db_sigs, &k, &v, MDB_NOOVERWRITE);
        r = rc == MDB_KEYEXIST ? 0 : cas__mdb_err(rc);
    }
    return finish(txn, r);
}

int
cas_store_sig_del(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob, size_t len)
{
    if (!blob || len == 0)
        return -ENOENT;
    uint8_t key[2 * CAS_HASH_LEN];
    sig_key(id, blob, len, key);
    int r = del_key(s, s->db_sigs, key, sizeof(key));
    int rp = del_key(s, s->db_sigs_pending, key, sizeof(key));
    if (r == 0 || rp == 0)
        return 0;
    return r != -ENOENT ? r : rp;
}

/* ---------------------------------------------------------------------- */
/* Trusted keys: key id -> u16 name length | name | blob */

static int
check_key_id(const void *key_id, size_t len)
{
    if (!key_id || len == 0)
        return -EINVAL;
    return len > CAS_STORE_KEY_ID_MAX ? -EMSGSIZE : 0;
}

int
cas_store_key_put(cas_store *s, const void *key_id, size_t key_id_len, const void *blob,
                  size_t blob_len, const char *name)
{
    int r = check_key_id(key_id, key_id_len);
    if (r < 0)
        return r;
    size_t nl = name ? strlen(name) : 0;
    if (!blob || blob_len == 0)
        return -EINVAL;
    if (blob_len > CAS_STORE_KEY_BLOB_MAX || nl > CAS_STORE_NAME_MAX)
        return -EMSGSIZE;
    MDB_txn *txn;
    r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { key_id_len, (void *)key_id }, v = { 2 + nl + blob_len, NULL };
    r = cas__mdb_err(mdb_put(txn, s->db_keys, &k, &v, MDB_RESERVE));
    if (r == 0) {
        uint8_t *p = v.mv_data;
        le16_store(p, (uint16_t)nl);
        if (nl)
            memcpy(p + 2, name, nl);
        memcpy(p + 2 + nl, blob, blob_len);
    }
    return finish(txn, r);
}

/* Splits a key value; -EBADMSG when damaged. */
static int
split_key(const MDB_val *v, const uint8_t **ret_blob, size_t *ret_blob_len, char *ret_name)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < 2)
        return -EBADMSG;
    size_t nl = le16_load(p);
    if (nl > CAS_STORE_NAME_MAX || v->mv_size - 2 < nl)
        return -EBADMSG;
    memcpy(ret_name, p + 2, nl);
    ret_name[nl] = '\0';
    *ret_blob = p + 2 + nl;
    *ret_blob_len = v->mv_size - 2 - nl;
    return 0;
}

int
cas_store_key_get(cas_store *s, const void *key_id, size_t key_id_len, uint8_t **ret_blob,
                  size_t *ret_blob_len, char **ret_name)
{
    int r = check_key_id(key_id, key_id_len);
    if (r < 0)
        return r;
    MDB_txn *txn;
    r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    MDB_val k = { key_id_len, (void *)key_id }, v;
    char name[CAS_STORE_NAME_MAX + 1];
    const uint8_t *blob;
    size_t bl;
    r = cas__mdb_err(mdb_get(txn, s->db_keys, &k, &v));
    if (r == 0)
        r = split_key(&v, &blob, &bl, name);
    uint8_t *b = NULL;
    char *n = NULL;
    if (r == 0) {
        b = malloc(bl ? bl : 1);
        n = ret_name ? strdup(name) : NULL;
        if (!b || (ret_name && !n)) {
            free(b);
            free(n);
            r = -ENOMEM;
        } else {
            memcpy(b, blob, bl);
            *ret_blob = b;
            *ret_blob_len = bl;
            if (ret_name)
                *ret_name = n;
        }
    }
    cas__txn_abort(txn);
    return r;
}

int
cas_store_key_del(cas_store *s, const void *key_id, size_t key_id_len)
{
    int r = check_key_id(key_id, key_id_len);
    if (r < 0)
        return r;
    return del_key(s, s->db_keys, key_id, key_id_len);
}

int
cas_store_key_list(cas_store *s, cas_key_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_keys, &c));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char name[CAS_STORE_NAME_MAX + 1];
        const uint8_t *blob;
        size_t bl;
        if (split_key(&v, &blob, &bl, name) < 0)
            continue;
        r = cb(userdata, k.mv_data, k.mv_size, blob, bl, name);
    }
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

/* ---------------------------------------------------------------------- */
/* Peers */

int
cas_store_peer_put(cas_store *s, const void *key, size_t key_len, const void *val, size_t val_len)
{
    if (!key || key_len == 0 || (!val && val_len))
        return -EINVAL;
    if (key_len > CAS_STORE_PEER_KEY_MAX || val_len > CAS_STORE_PEER_MAX)
        return -EMSGSIZE;
    MDB_txn *txn;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { key_len, (void *)key }, v = { val_len, (void *)val };
    return finish(txn, cas__mdb_err(mdb_put(txn, s->db_peers, &k, &v, 0)));
}

int
cas_store_peer_del(cas_store *s, const void *key, size_t key_len)
{
    if (!key || key_len == 0 || key_len > CAS_STORE_PEER_KEY_MAX)
        return -ENOENT;
    return del_key(s, s->db_peers, key, key_len);
}

int
cas_store_peer_list(cas_store *s, cas_peer_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_peers, &c));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        r = cb(userdata, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}

/* ---------------------------------------------------------------------- */
/* Signed name records: key -> u64 seq | blob */

enum {
    /* Record layout (FORMAT.md "Name records"): what migration reads. */
    V1_PK_OFF = 16,
    V1_K_OFF = 48,
    V1_NAME_OFF = 49,
};

int
cas__namerec_migrate(cas_store *s, MDB_txn *txn)
{
    MDB_stat st;
    int r = cas__mdb_err(mdb_stat(txn, s->db_namerecs_v1, &st));
    if (r < 0 || st.ms_entries == 0)
        return r;
    MDB_cursor *c = NULL;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_namerecs_v1, &c));
    if (r < 0)
        return r;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        /* The old key (key id | name) was never tied to the key inside
         * the record; the new one is the record's own public key and
         * name, so a hijacked slot moves to the hijacker's key. Values
         * too short to hold those fields are dropped; the rest are still
         * checked (signature, key) whenever they are read. */
        const uint8_t *b = (const uint8_t *)v.mv_data + 8;
        if (v.mv_size < 8 + V1_NAME_OFF || v.mv_size - 8 > CAS_STORE_NAMEREC_MAX)
            continue;
        size_t blen = v.mv_size - 8, nlen = b[V1_K_OFF];
        if (nlen == 0 || blen - V1_NAME_OFF < nlen)
            continue;
        uint8_t key[32 + 255];
        memcpy(key, b + V1_PK_OFF, 32);
        memcpy(key + 32, b + V1_NAME_OFF, nlen);
        MDB_val nk = { 32 + nlen, key }, old;
        uint64_t seq = le64_load(v.mv_data);
        if (mdb_get(txn, s->db_namerecs, &nk, &old) == 0 && old.mv_size >= 8 &&
            le64_load(old.mv_data) >= seq)
            continue;
        /* Copied: v points into pages this transaction may move. */
        uint8_t val[8 + CAS_STORE_NAMEREC_MAX];
        memcpy(val, v.mv_data, v.mv_size);
        MDB_val nv = { v.mv_size, val };
        r = cas__mdb_err(mdb_put(txn, s->db_namerecs, &nk, &nv, 0));
    }
    mdb_cursor_close(c);
    if (r < 0)
        return r;
    return cas__mdb_err(mdb_drop(txn, s->db_namerecs_v1, 0));
}

static int
check_namerec_key(const void *key, size_t len)
{
    if (!key || len == 0)
        return -EINVAL;
    return len > CAS_STORE_NAMEREC_KEY_MAX ? -EMSGSIZE : 0;
}

int
cas_store_namerec_put(cas_store *s, const void *key, size_t key_len, uint64_t seq, const void *blob,
                      size_t len)
{
    int r = check_namerec_key(key, key_len);
    if (r < 0)
        return r;
    if (!blob || len == 0)
        return -EINVAL;
    if (len > CAS_STORE_NAMEREC_MAX)
        return -EMSGSIZE;
    MDB_txn *txn;
    r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    MDB_val k = { key_len, (void *)key }, v;
    if (mdb_get(txn, s->db_namerecs, &k, &v) == 0 && v.mv_size >= 8 && le64_load(v.mv_data) >= seq)
        return finish(txn, 0); /* the stored record is as new or newer */
    v = (MDB_val){ 8 + len, NULL };
    r = cas__mdb_err(mdb_put(txn, s->db_namerecs, &k, &v, MDB_RESERVE));
    if (r == 0) {
        le64_store(v.mv_data, seq);
        memcpy((uint8_t *)v.mv_data + 8, blob, len);
    }
    return finish(txn, r < 0 ? r : 1);
}

int
cas_store_namerec_get(cas_store *s, const void *key, size_t key_len, uint64_t *ret_seq,
                      uint8_t **ret_blob, size_t *ret_len)
{
    int r = check_namerec_key(key, key_len);
    if (r < 0)
        return r == -EINVAL ? r : -ENOENT;
    MDB_txn *txn;
    r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    MDB_val k = { key_len, (void *)key }, v;
    r = cas__mdb_err(mdb_get(txn, s->db_namerecs, &k, &v));
    if (r == 0 && v.mv_size <= 8)
        r = -EBADMSG;
    if (r == 0) {
        uint8_t *b = malloc(v.mv_size - 8);
        if (!b) {
            r = -ENOMEM;
        } else {
            memcpy(b, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
            *ret_seq = le64_load(v.mv_data);
            *ret_blob = b;
            *ret_len = v.mv_size - 8;
        }
    }
    cas__txn_abort(txn);
    return r;
}

int
cas_store_namerec_del(cas_store *s, const void *key, size_t key_len)
{
    if (check_namerec_key(key, key_len) < 0)
        return -ENOENT;
    return del_key(s, s->db_namerecs, key, key_len);
}

int
cas_store_namerec_list(cas_store *s, cas_store_namerec_fn cb, void *userdata)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_namerecs, &c));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && r == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size <= 8)
            continue;
        r = cb(userdata, k.mv_data, k.mv_size, le64_load(v.mv_data), (const uint8_t *)v.mv_data + 8,
               v.mv_size - 8);
    }
    mdb_cursor_close(c);
    cas__txn_abort(txn);
    return r;
}
