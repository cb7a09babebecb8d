/* SPDX-License-Identifier: MIT */
/*
 * Repair of a model with bad chunks (FORMAT.md "Repair"): the bad chunks
 * are forgotten (the model turns partial, so a fetch resumes it), then
 * filled from a local file with the same bytes or fetched from peers.
 * Every write after the forget goes through the partial-model protocol
 * (store-partial.c), so a crash at any instant leaves a store that opens.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "common/bits.h"
#include "libcas/store-internal.h"

/* Makes the data file of id exist, writable and model-sized, inside the
 * write transaction (so no rm can unlink it meanwhile). */
static int
data_file_ready(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint64_t size)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    if (fchmodat(s->data_fd, hex, 0644, 0) < 0 && errno != ENOENT)
        return -errno;
    int fd = openat(s->data_fd, hex, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) ||
        fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r < 0 ? r : cas__fsync_dir(s->data_fd);
}

static int
forget_txn(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN], const uint64_t *idx,
           size_t n)
{
    cas__model_rec rec;
    cas_manifest *m = NULL;
    uint8_t *bm = NULL;
    int r = cas__model_get(s, txn, id, &rec);
    if (r < 0)
        return r;
    r = cas_manifest_decode(rec.manifest, rec.manifest_len, &m);
    if (r < 0)
        return r;
    size_t bl = (size_t)((rec.n_chunks + 7) / 8);
    bm = malloc(bl ? bl : 1);
    if (!bm) {
        r = -ENOMEM;
        goto out;
    }
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
    if (rec.state == CAS_MODEL_COMPLETE) {
        memset(bm, 0, bl);
        for (uint64_t i = 0; i < rec.n_chunks; i++)
            bit_set(bm, i);
    } else if (mdb_get(txn, s->db_bitmaps, &k, &v) == 0 && v.mv_size == bl) {
        memcpy(bm, v.mv_data, bl);
    } else {
        memset(bm, 0, bl);
    }
    for (size_t i = 0; i < n; i++) {
        if (idx[i] >= rec.n_chunks) {
            r = -EINVAL;
            goto out;
        }
        bit_clear(bm, idx[i]);
    }
    r = data_file_ready(s, id, rec.size);
    if (r < 0)
        goto out;
    if (rec.state == CAS_MODEL_COMPLETE) {
        /* Only complete models are in the chunk index (FORMAT.md). */
        r = cas__chunks_unindex(s, txn, m);
        rec.state = CAS_MODEL_PARTIAL;
        if (r == 0)
            r = cas__model_put(s, txn, id, &rec);
        if (r < 0)
            goto out;
    }
    v = (MDB_val){ bl, bm };
    r = cas__mdb_err(mdb_put(txn, s->db_bitmaps, &k, &v, 0));
out:
    free(bm);
    cas_manifest_free(m);
    return r;
}

int
cas_store_chunks_forget(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const uint64_t *idx,
                        size_t n)
{
    if (n > 0 && !idx)
        return -EINVAL;
    for (;;) {
        MDB_txn *txn;
        int r = cas__txn_begin(s, false, &txn);
        if (r < 0)
            return r;
        r = forget_txn(s, txn, id, idx, n);
        if (r < 0) {
            cas__txn_abort(txn);
        } else {
            cas__crash_point_reached(CAS__CP_FORGET_PRE_COMMIT);
            r = cas__txn_commit(txn);
        }
        int g = r == -ENOSPC ? cas__map_grow(s) : 0;
        if (g <= 0)
            return g < 0 ? g : r;
    }
}

int
cas_partial_fill_fd(cas_partial *p, int fd, uint64_t *ret_n)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t got = 0;
    int r = 0;
    for (uint64_t i = 0; i < cas_partial_n_chunks(p); i++) {
        if (cas_partial_has(p, i))
            continue;
        uint8_t cid[CAS_HASH_LEN];
        uint64_t off;
        uint32_t len;
        r = cas_partial_chunk(p, i, cid, &off, &len);
        if (r < 0)
            break;
        if (len > cap) {
            uint8_t *nb = realloc(buf, len);
            if (!nb) {
                r = -ENOMEM;
                break;
            }
            buf = nb;
            cap = len;
        }
        r = cas__pread_full(fd, buf, len, off);
        if (r == -EBADMSG) {
            r = 0; /* the file is shorter: this chunk is not in it */
            continue;
        }
        if (r < 0)
            break;
        r = cas_partial_put(p, i, buf, len); /* re-hashes: a different byte is refused */
        if (r == -EBADMSG) {
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        got += (uint64_t)r;
        r = 0;
    }
    free(buf);
    if (r == 0)
        *ret_n = got;
    return r;
}
