/* SPDX-License-Identifier: MIT */
/*
 * Streaming add: a pipeline over a ring of CAS__ADD_SLOTS buffers.
 *
 *   reader thread   read(fd) into the next free slot; shows each read to
 *                   the caller's tap, if any (a second digest, same pass)
 *   writer threads  (two, alternate slots) write each filled slot at its
 *                   offset in a temp file in
 *                   DIR/tmp: with O_DIRECT where the file system takes it
 *                   (DMA from the slot: no page-cache copy and no write-back
 *                   work on our two cores), else buffered writes whose
 *                   write-back starts at once (sync_file_range)
 *   calling thread  runs the chunker over each slot, queues one hash job per
 *                   chunk (a chunk may span two slots)
 *   hash threads    hash queued chunks, store ids by chunk index
 *   syncer thread   fdatasync()s the temp file after every CAS__SYNC_STEP
 *                   bytes written, so the device flushes while the rest
 *                   is read, hashed and written: measured here, one
 *                   flush of a whole GiB at the end cost 0.6-0.7 s that
 *                   the pipeline could not hide
 *
 * A slot is reused when its writer, the chunker and every job touching it
 * have released it (a reference count under the one mutex). So memory stays
 * at CAS__ADD_SLOTS slots whatever the stream length, and reading, hashing
 * and writing overlap. At the end the manifest is built, the temp file is
 * fdatasync'd, made 0444, renamed to DIR/data/<id> and the directory
 * fsync'd inside the LMDB write transaction that then commits the record:
 * see FORMAT.md "Store" for why this order is crash safe.
 */
#define _GNU_SOURCE /* sync_file_range(), O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libcas/store-internal.h"

#define CAS__ADD_SLOTS 8u
#define CAS__WRITERS   2u                   /* writer threads: two O_DIRECT writes in flight */
#define CAS__DIO_ALIGN 4096u                /* O_DIRECT buffer, offset and length alignment */
#define CAS__SYNC_STEP ((uint64_t)64 << 20) /* bytes written between background syncs */

enum {
    SLOT_FREE = 0,
    SLOT_FILLED = 1
};

typedef struct slot {
    uint8_t *buf;
    size_t len;
    uint64_t seq;
    int state;
    int refs;
    bool eof;
} slot;

typedef struct job {
    uint64_t idx;
    uint64_t seq;     /* slot sequence number of the chunk's first byte */
    uint64_t end_seq; /* of its last byte (slots referenced: seq..end_seq) */
    size_t off;       /* offset in that slot */
    size_t len;
} job;

typedef struct add_ctx {
    int in_fd, out_fd;
    int (*tap)(void *tap_arg, const void *buf, size_t len); /* reader thread */
    void *tap_arg;
    const uint8_t *prefix; /* caller's bytes before in_fd's (reader thread) */
    size_t prefix_left;
    int dio_fd;                            /* the temp file opened O_DIRECT, or -1 */
    bool no_dio;                           /* atomic: O_DIRECT writes refused, write buffered */
    uint64_t direct_bytes, buffered_bytes; /* atomic: written each way */
    uint64_t written;                      /* bytes written (under mu), for the syncer */
    bool sync_done;                        /* no more writes: the syncer ends */
    pthread_cond_t sync_cv;                /* written grew a step, or sync_done */
    size_t slot_size;
    slot slots[CAS__ADD_SLOTS];
    pthread_mutex_t mu;
    pthread_cond_t slot_cv; /* slot filled/freed/written, job finished */
    pthread_cond_t job_cv;  /* job queued or no more jobs */
    int err;
    bool stop;
    unsigned writers_done;
    uint64_t eof_seq; /* the slot that holds the end of the stream, once read */
    bool jobs_done;
    job *q;
    size_t q_head, q_len, q_cap;
    uint64_t pending; /* jobs queued or running */
    uint8_t (*ids)[CAS_HASH_LEN];
    uint32_t *lens;
    size_t n_chunks, cap;
} add_ctx;

static void
fail_locked(add_ctx *c, int r)
{
    if (!c->err)
        c->err = r;
    c->stop = true;
    pthread_cond_broadcast(&c->slot_cv);
    pthread_cond_broadcast(&c->job_cv);
    pthread_cond_broadcast(&c->sync_cv);
}

static void
fail(add_ctx *c, int r)
{
    pthread_mutex_lock(&c->mu);
    fail_locked(c, r);
    pthread_mutex_unlock(&c->mu);
}

static slot *
slot_of(add_ctx *c, uint64_t seq)
{
    return &c->slots[seq % CAS__ADD_SLOTS];
}

static void
unref_locked(add_ctx *c, uint64_t seq)
{
    slot *sl = slot_of(c, seq);
    if (--sl->refs == 0) {
        sl->state = SLOT_FREE;
        pthread_cond_broadcast(&c->slot_cv);
    }
}

/* Waits until slot seq is filled; returns it, or NULL when stopping. */
static slot *
wait_filled_locked(add_ctx *c, uint64_t seq)
{
    slot *sl = slot_of(c, seq);
    while (!c->stop && !(sl->state == SLOT_FILLED && sl->seq == seq))
        pthread_cond_wait(&c->slot_cv, &c->mu);
    return c->stop ? NULL : sl;
}

static int
read_fill(add_ctx *c, uint8_t *buf, size_t cap, size_t *ret_len, bool *ret_eof)
{
    size_t n = c->prefix_left < cap ? c->prefix_left : cap;
    if (n > 0) {
        memcpy(buf, c->prefix, n);
        c->prefix += n;
        c->prefix_left -= n;
    }
    while (n < cap) {
        ssize_t k = read(c->in_fd, buf + n, cap - n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0) {
            *ret_eof = true;
            break;
        }
        n += (size_t)k;
    }
    *ret_len = n;
    return 0;
}

static void *
reader_main(void *arg)
{
    add_ctx *c = arg;
    for (uint64_t seq = 0;; seq++) {
        slot *sl = slot_of(c, seq);
        pthread_mutex_lock(&c->mu);
        while (!c->stop && sl->state != SLOT_FREE)
            pthread_cond_wait(&c->slot_cv, &c->mu);
        bool stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        size_t len = 0;
        bool eof = false;
        int r = read_fill(c, sl->buf, c->slot_size, &len, &eof);
        /* The tap runs here, off the chunker's thread, so a second digest
         * overlaps chunking and hashing; its end call comes before the slot
         * that ends the stream is published, hence before any commit. */
        if (r == 0 && c->tap && len > 0)
            r = c->tap(c->tap_arg, sl->buf, len);
        if (r == 0 && c->tap && eof)
            r = c->tap(c->tap_arg, NULL, 0);
        pthread_mutex_lock(&c->mu);
        if (r < 0) {
            fail_locked(c, r);
            pthread_mutex_unlock(&c->mu);
            break;
        }
        sl->seq = seq;
        sl->len = len;
        sl->eof = eof;
        sl->refs = 2; /* writer + chunker */
        sl->state = SLOT_FILLED;
        if (eof)
            c->eof_seq = seq;
        pthread_cond_broadcast(&c->slot_cv);
        pthread_mutex_unlock(&c->mu);
        if (eof)
            break;
    }
    return NULL;
}

/* Writes len bytes at off (a multiple of the slot size): the aligned part
 * with O_DIRECT when possible, the rest buffered with its write-back
 * started. EINVAL from O_DIRECT (a file system that takes the open but not
 * the write) switches to buffered writes for good. */
static int
write_slot(add_ctx *c, const uint8_t *buf, size_t len, uint64_t off)
{
    bool dio = c->dio_fd >= 0 && !__atomic_load_n(&c->no_dio, __ATOMIC_RELAXED);
    size_t direct = dio ? len - len % CAS__DIO_ALIGN : 0;
    if (direct > 0) {
        int r = cas__pwrite_full(c->dio_fd, buf, direct, off);
        if (r == -EINVAL) {
            __atomic_store_n(&c->no_dio, true, __ATOMIC_RELAXED);
            direct = 0;
        } else if (r < 0) {
            return r;
        } else {
            __atomic_add_fetch(&c->direct_bytes, direct, __ATOMIC_RELAXED);
        }
    }
    if (direct == len)
        return 0;
    int r = cas__pwrite_full(c->out_fd, buf + direct, len - direct, off + direct);
    if (r < 0)
        return r;
    __atomic_add_fetch(&c->buffered_bytes, len - direct, __ATOMIC_RELAXED);
    /* Start write-back now so the final fdatasync has little left to do;
     * errors show up again at fdatasync. */
    sync_file_range(c->out_fd, (off64_t)(off + direct), (off64_t)(len - direct),
                    SYNC_FILE_RANGE_WRITE);
    return 0;
}

typedef struct writer_arg {
    add_ctx *c;
    unsigned k; /* writes slots k, k + CAS__WRITERS, ... */
} writer_arg;

static void *
writer_main(void *arg)
{
    add_ctx *c = ((writer_arg *)arg)->c;
    for (uint64_t seq = ((writer_arg *)arg)->k;; seq += CAS__WRITERS) {
        slot *sl = slot_of(c, seq);
        pthread_mutex_lock(&c->mu);
        while (!c->stop && !(sl->state == SLOT_FILLED && sl->seq == seq) && seq <= c->eof_seq)
            pthread_cond_wait(&c->slot_cv, &c->mu);
        bool go = !c->stop && seq <= c->eof_seq;
        pthread_mutex_unlock(&c->mu);
        if (!go)
            break; /* stopping, or the stream ended in an earlier slot */
        /* Every slot but the last is full, so slot seq starts here. */
        int r = write_slot(c, sl->buf, sl->len, seq * c->slot_size);
        if (r < 0) {
            fail(c, r);
            break;
        }
        bool eof = sl->eof;
        pthread_mutex_lock(&c->mu);
        c->written += sl->len;
        if (c->written % CAS__SYNC_STEP < sl->len || eof)
            pthread_cond_signal(&c->sync_cv);
        unref_locked(c, seq);
        pthread_mutex_unlock(&c->mu);
        if (eof)
            break;
    }
    pthread_mutex_lock(&c->mu);
    c->writers_done++;
    pthread_cond_broadcast(&c->slot_cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

#define CAS__HASH_TAKE 16u /* jobs a hasher takes at once (hashed together) */

/* Hashes job j whose bytes span two slots (incremental, over both). */
static void
hash_spanning(add_ctx *c, const job *j, uint8_t ret[static CAS_HASH_LEN])
{
    cas_hasher h;
    cas_hasher_init(&h);
    uint64_t seq = j->seq;
    size_t off = j->off, left = j->len;
    while (left > 0) {
        slot *sl = slot_of(c, seq);
        size_t n = sl->len - off < left ? sl->len - off : left;
        cas_hasher_update(&h, sl->buf + off, n);
        left -= n;
        off = 0;
        seq++;
    }
    cas_hasher_final(&h, ret);
}

static void *
hasher_main(void *arg)
{
    add_ctx *c = arg;
    job js[CAS__HASH_TAKE];
    const uint8_t *bufs[CAS__HASH_TAKE];
    size_t lens[CAS__HASH_TAKE];
    uint8_t ids[CAS__HASH_TAKE][CAS_HASH_LEN];
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->stop && c->q_len == 0 && !c->jobs_done)
            pthread_cond_wait(&c->job_cv, &c->mu);
        if (c->stop || c->q_len == 0) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        /* Half the queue (so the other hashers get work too), at most
         * CAS__HASH_TAKE: several chunks hash together (store-hash.c). */
        size_t n = (c->q_len + 1) / 2;
        if (n > CAS__HASH_TAKE)
            n = CAS__HASH_TAKE;
        for (size_t k = 0; k < n; k++) {
            js[k] = c->q[c->q_head];
            c->q_head = (c->q_head + 1) % c->q_cap;
        }
        c->q_len -= n;
        pthread_mutex_unlock(&c->mu);

        size_t m = 0; /* chunks within one slot, hashed together */
        for (size_t k = 0; k < n; k++) {
            if (js[k].seq != js[k].end_seq)
                continue;
            bufs[m] = slot_of(c, js[k].seq)->buf + js[k].off;
            lens[m++] = js[k].len;
        }
        uint8_t(*many)[CAS_HASH_LEN] = ids;
        cas__hash_many(bufs, lens, m, many);

        pthread_mutex_lock(&c->mu);
        for (size_t k = 0, i = 0; k < n; k++) {
            if (js[k].seq == js[k].end_seq) {
                memcpy(c->ids[js[k].idx], many[i++], CAS_HASH_LEN);
            } else {
                uint8_t id[CAS_HASH_LEN];
                pthread_mutex_unlock(&c->mu);
                hash_spanning(c, &js[k], id);
                pthread_mutex_lock(&c->mu);
                memcpy(c->ids[js[k].idx], id, CAS_HASH_LEN);
            }
            for (uint64_t sq = js[k].seq; sq <= js[k].end_seq; sq++)
                unref_locked(c, sq);
            c->pending--;
        }
        pthread_cond_broadcast(&c->slot_cv);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* Queues the chunk [start_seq:start_off, +len) ending in slot end_seq. */
static int
emit(add_ctx *c, uint64_t start_seq, size_t start_off, uint64_t end_seq, uint64_t len)
{
    pthread_mutex_lock(&c->mu);
    int r = 0;
    if (c->n_chunks == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        void *ni = realloc(c->ids, ncap * CAS_HASH_LEN);
        if (ni)
            c->ids = ni;
        uint32_t *nl = ni ? realloc(c->lens, ncap * sizeof(*nl)) : NULL;
        if (nl)
            c->lens = nl;
        if (!ni || !nl) {
            r = -ENOMEM;
            goto out;
        }
        c->cap = ncap;
    }
    if (c->q_len == c->q_cap) {
        size_t ncap = c->q_cap ? c->q_cap * 2 : 256;
        job *nq = malloc(ncap * sizeof(*nq));
        if (!nq) {
            r = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < c->q_len; i++)
            nq[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = nq;
        c->q_head = 0;
        c->q_cap = ncap;
    }
    uint64_t idx = c->n_chunks++;
    c->lens[idx] = (uint32_t)len;
    c->q[(c->q_head + c->q_len) % c->q_cap] = (job){
        .idx = idx, .seq = start_seq, .end_seq = end_seq, .off = start_off, .len = (size_t)len
    };
    c->q_len++;
    c->pending++;
    for (uint64_t s = start_seq; s <= end_seq; s++)
        slot_of(c, s)->refs++;
out:
    if (r < 0)
        fail_locked(c, r);
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* The chunker loop on the calling thread. */
static int
chunk_loop(add_ctx *c, cas_chunker *ch, const cas_store_add_opts *o, uint64_t total)
{
    uint64_t start_seq = 0, held = 0; /* chunker holds slots held..seq */
    size_t start_off = 0;
    uint64_t clen = 0, done = 0, reported = 0;
    for (uint64_t seq = 0;; seq++) {
        pthread_mutex_lock(&c->mu);
        slot *sl = wait_filled_locked(c, seq);
        pthread_mutex_unlock(&c->mu);
        if (!sl)
            return 0;
        size_t pos = 0;
        while (pos < sl->len) {
            size_t used;
            int cut = cas_chunker_next(ch, sl->buf + pos, sl->len - pos, &used);
            pos += used;
            clen += used;
            if (cut == 1) {
                int r = emit(c, start_seq, start_off, seq, clen);
                if (r < 0)
                    return r;
                start_seq = pos == sl->len ? seq + 1 : seq;
                start_off = pos == sl->len ? 0 : pos;
                clen = 0;
            }
        }
        if (sl->eof) {
            uint64_t last;
            if (cas_chunker_finish(ch, &last)) {
                int r = emit(c, start_seq, start_off, seq, last);
                if (r < 0)
                    return r;
            }
            start_seq = seq + 1;
        }
        pthread_mutex_lock(&c->mu);
        for (; held < start_seq && held <= seq; held++)
            unref_locked(c, held);
        /* The slot's jobs go out together, so hashers take them in groups. */
        pthread_cond_broadcast(&c->job_cv);
        pthread_mutex_unlock(&c->mu);
        done += sl->len;
        if (o->progress && (done - reported >= CAS__PROGRESS_STEP || sl->eof)) {
            reported = done;
            int r = o->progress(o->userdata, done, total);
            if (r < 0) {
                fail(c, r);
                return r;
            }
        }
        if (sl->eof)
            return 0;
    }
}

/* Creates and locks a temp file in DIR/tmp; writes its name to ret_name. */
static int
tmp_create(cas_store *s, char ret_name[static 64], int *ret_fd)
{
    static unsigned counter;
    for (int tries = 0; tries < 100; tries++) {
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        snprintf(ret_name, 64, "add-%ld-%u-%u", (long)getpid(), n,
                 (unsigned)(cas__now_ns() & 0xffffff));
        int fd = openat(s->tmp_fd, ret_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            return -errno;
        }
        struct stat a, b;
        /* Another process's cleanup may have unlinked the name between our
         * open and our lock: then try another name. */
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &a) == 0 &&
            fstatat(s->tmp_fd, ret_name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            *ret_fd = fd;
            return 0;
        }
        close(fd);
    }
    return -EEXIST;
}

static int
build_manifest(add_ctx *c, const cas_store_add_opts *o, const cas_chunker_params *p,
               cas_manifest **ret)
{
    cas_manifest_builder *b = NULL;
    int r = cas_manifest_builder_new(o->kind, p, &b);
    for (size_t i = 0; r == 0 && i < c->n_chunks; i++)
        r = cas_manifest_builder_add_chunk(b, c->ids[i], c->lens[i]);
    for (size_t i = 0; r == 0 && i < o->n_tensors; i++)
        r = cas_manifest_builder_add_tensor(b, &o->tensors[i]);
    for (size_t i = 0; r == 0 && i < o->n_meta; i++)
        r = cas_manifest_builder_set_meta(b, o->meta[i].key, o->meta[i].value);
    if (r == 0)
        r = cas_manifest_builder_finish(b, ret);
    cas_manifest_builder_free(b);
    return r;
}

static int
put_name(cas_store *s, MDB_txn *txn, const char *name, const uint8_t id[static CAS_HASH_LEN])
{
    size_t n = strlen(name);
    if (n == 0 || n > CAS_STORE_NAME_MAX)
        return -EINVAL;
    MDB_val k = { n, (void *)name }, v = { CAS_HASH_LEN, (void *)id };
    return cas__mdb_err(mdb_put(txn, s->db_names, &k, &v, 0));
}

static int
put_pin(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN])
{
    if (cas__is_pinned(s, txn, id))
        return 0;
    uint8_t t[8];
    le64_store(t, cas__now_ns());
    MDB_val k = { CAS_HASH_LEN, (void *)id }, v = { sizeof(t), t };
    return cas__mdb_err(mdb_put(txn, s->db_pins, &k, &v, 0));
}

/* Publishes the synced temp file as model m in one write transaction.
 * Returns 1 (new) or 0 (already complete). */
static int
commit_model(cas_store *s, const cas_store_add_opts *o, const cas_manifest *m, const char *tmp_name)
{
    const uint8_t *id = cas_manifest_id(m);
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    MDB_txn *txn;
    bool renamed = false;
    int r = cas__txn_begin(s, false, &txn);
    if (r < 0)
        return r;
    cas__model_rec rec;
    r = cas__model_get(s, txn, id, &rec);
    int ret = 1;
    if (r == 0 && rec.state == CAS_MODEL_COMPLETE) {
        ret = 0; /* already there: keep the existing file */
    } else if (r == 0 || r == -ENOENT) {
        r = cas__limit_check(s, txn, cas_manifest_size(m));
        if (r < 0)
            goto fail;
        /* Step 3 and 4 of FORMAT.md: rename, then make the rename durable. */
        if (renameat(s->tmp_fd, tmp_name, s->data_fd, hex) < 0) {
            r = -errno;
            goto fail;
        }
        renamed = true;
        cas__crash_point_reached(CAS__CP_ADD_RENAMED);
        r = cas__fsync_dir(s->data_fd);
        if (r < 0)
            goto fail;
        size_t mlen;
        const uint8_t *mb = cas_manifest_bytes(m, &mlen);
        rec = (cas__model_rec){ .state = CAS_MODEL_COMPLETE,
                                .added_ns = cas__now_ns(),
                                .size = cas_manifest_size(m),
                                .n_chunks = cas_manifest_chunk_count(m),
                                .manifest = mb,
                                .manifest_len = mlen };
        r = cas__model_put(s, txn, id, &rec);
        if (r == 0)
            r = cas__chunks_index(s, txn, m);
        if (r < 0)
            goto fail;
        MDB_val k = { CAS_HASH_LEN, (void *)id };
        mdb_del(txn, s->db_bitmaps, &k, NULL);
    } else {
        goto fail;
    }
    if (o->pin)
        r = put_pin(s, txn, id);
    if (r == 0 && o->name)
        r = put_name(s, txn, o->name, id);
    if (r < 0)
        goto fail;
    cas__crash_point_reached(CAS__CP_ADD_PRE_COMMIT);
    r = cas__txn_commit(txn);
    if (r < 0) {
        /* Moved back so that a retry after the map grew finds it; may race a
         * concurrent re-add: rare, harmless. */
        if (renamed && renameat(s->data_fd, hex, s->tmp_fd, tmp_name) < 0)
            unlinkat(s->data_fd, hex, 0);
        return r;
    }
    return ret;
fail:
    if (renamed && renameat(s->data_fd, hex, s->tmp_fd, tmp_name) < 0)
        unlinkat(s->data_fd, hex, 0); /* still under the write lock */
    cas__txn_abort(txn);
    return r;
}

/* Syncs what the writers wrote, a step at a time, until sync_done. An
 * error here fails the add: Linux reports a write-back error to one
 * fdatasync only, so the final one could not be trusted to see it. */
static void *
syncer_main(void *arg)
{
    add_ctx *c = arg;
    uint64_t synced = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && !c->sync_done && c->written - synced < CAS__SYNC_STEP)
            pthread_cond_wait(&c->sync_cv, &c->mu);
        if (c->stop || c->sync_done)
            break;
        uint64_t upto = c->written;
        pthread_mutex_unlock(&c->mu);
        int r = fdatasync(c->out_fd) < 0 ? -errno : 0;
        pthread_mutex_lock(&c->mu);
        if (r < 0) {
            fail_locked(c, r);
            break;
        }
        synced = upto;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int
start_threads(add_ctx *c, pthread_t *th, writer_arg *wa, unsigned n_hash, unsigned *ret_started)
{
    unsigned n = 0;
    int e = pthread_create(&th[n], NULL, reader_main, c);
    if (e == 0) {
        n++;
        e = pthread_create(&th[n], NULL, syncer_main, c);
    }
    for (unsigned k = 0; e == 0 && k < CAS__WRITERS; k++) {
        n++;
        wa[k] = (writer_arg){ c, k };
        e = pthread_create(&th[n], NULL, writer_main, &wa[k]);
    }
    for (unsigned i = 0; e == 0 && i < n_hash; i++) {
        n++;
        e = pthread_create(&th[n], NULL, hasher_main, c);
    }
    *ret_started = e == 0 ? n + 1 : n;
    return -e;
}

static int
run_pipeline(add_ctx *c, cas_chunker *ch, const cas_store_add_opts *o, uint64_t total)
{
    unsigned n_hash = o->threads ? o->threads : CAS_STORE_ADD_THREADS;
    if (n_hash > 16)
        n_hash = 16;
    pthread_t th[2 + CAS__WRITERS + 16];
    writer_arg wa[CAS__WRITERS];
    unsigned started = 0;
    int r = start_threads(c, th, wa, n_hash, &started);
    if (r < 0)
        fail(c, r);
    else
        r = chunk_loop(c, ch, o, total);
    pthread_mutex_lock(&c->mu);
    if (r < 0)
        fail_locked(c, r);
    while (!c->stop && (c->pending > 0 || c->writers_done < CAS__WRITERS))
        pthread_cond_wait(&c->slot_cv, &c->mu);
    c->jobs_done = true;
    c->sync_done = true;
    pthread_cond_broadcast(&c->job_cv);
    pthread_cond_broadcast(&c->sync_cv);
    r = c->err;
    pthread_mutex_unlock(&c->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    return r;
}

static void
ctx_free(add_ctx *c)
{
    for (unsigned i = 0; i < CAS__ADD_SLOTS; i++)
        free(c->slots[i].buf);
    free(c->q);
    free(c->ids);
    free(c->lens);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->slot_cv);
    pthread_cond_destroy(&c->job_cv);
    pthread_cond_destroy(&c->sync_cv);
}

static int
precheck_limit(cas_store *s, uint64_t size)
{
    MDB_txn *txn;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__limit_check(s, txn, size);
    cas__txn_abort(txn);
    return r;
}

int
cas_store_add_fd(cas_store *s, int fd, const cas_store_add_opts *opts,
                 uint8_t ret_id[static CAS_HASH_LEN])
{
    static const cas_store_add_opts defaults = { .kind = CAS_CHUNKER_CDC };
    const cas_store_add_opts *o = opts ? opts : &defaults;
    cas_chunker_params p = o->params ? *o->params : CAS_CHUNKER_PARAMS_DEFAULT;
    if (fd < 0 || (o->name && (!*o->name || strlen(o->name) > CAS_STORE_NAME_MAX)))
        return -EINVAL;
    int r = cas_chunker_params_validate(&p);
    if (r < 0)
        return r;
    struct stat st;
    if (o->prefix_len > 0 && !o->prefix)
        return -EINVAL;
    uint64_t total = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        if (pos >= 0 && (uint64_t)pos <= (uint64_t)st.st_size)
            total = (uint64_t)st.st_size - (uint64_t)pos + o->prefix_len;
    }
    if (total > 0 && (r = precheck_limit(s, total)) < 0)
        return r;

    add_ctx c = {
        .in_fd = fd,
        .out_fd = -1,
        .dio_fd = -1,
        .eof_seq = UINT64_MAX,
        .prefix = o->prefix,
        .prefix_left = o->prefix_len,
        .tap = o->tap,
        .tap_arg = o->tap_arg,
    };
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.slot_cv, NULL);
    pthread_cond_init(&c.job_cv, NULL);
    pthread_cond_init(&c.sync_cv, NULL);
    cas_chunker *ch = NULL;
    cas_manifest *m = NULL;
    char tmp_name[64] = "";
    c.slot_size = CAS_STORE_BUF_SIZE > p.max ? CAS_STORE_BUF_SIZE : p.max;
    c.slot_size = (c.slot_size + CAS__DIO_ALIGN - 1) / CAS__DIO_ALIGN * CAS__DIO_ALIGN;
    for (unsigned i = 0; i < CAS__ADD_SLOTS; i++) {
        void *b = NULL;
        c.slots[i].buf = posix_memalign(&b, CAS__DIO_ALIGN, c.slot_size) == 0 ? b : NULL;
        if (!c.slots[i].buf) {
            r = -ENOMEM;
            goto out;
        }
    }
    r = cas_chunker_new(&p, &ch);
    if (r == 0 && o->n_regions > 0)
        r = cas_chunker_set_regions(ch, o->regions, o->n_regions);
    if (r < 0)
        goto out;
    r = tmp_create(s, tmp_name, &c.out_fd);
    if (r < 0) {
        tmp_name[0] = '\0';
        goto out;
    }
    c.dio_fd = openat(s->tmp_fd, tmp_name, O_WRONLY | O_DIRECT | O_CLOEXEC);
    r = run_pipeline(&c, ch, o, total);
    if (r < 0)
        goto out;
    if (o->stats)
        *o->stats = (cas_store_add_stats){ .direct_bytes = c.direct_bytes,
                                           .buffered_bytes = c.buffered_bytes };
    r = build_manifest(&c, o, &p, &m);
    if (r < 0)
        goto out;
    /* Steps 1 and 2 of FORMAT.md: the bytes are durable before anything
     * refers to them. */
    cas__crash_point_reached(CAS__CP_ADD_WRITTEN);
    if (fdatasync(c.out_fd) < 0 || fchmod(c.out_fd, 0444) < 0) {
        r = -errno;
        goto out;
    }
    cas__crash_point_reached(CAS__CP_ADD_SYNCED);
    /* A full LMDB map is grown and the commit run again (bounded by
     * CAS_STORE_MAP_MAX); a full disk is not (cas__map_grow() says 0). */
    for (;;) {
        r = commit_model(s, o, m, tmp_name);
        int g = r == -ENOSPC ? cas__map_grow(s) : 0;
        if (g <= 0) {
            r = g < 0 ? g : r;
            break;
        }
    }
    if (r < 0)
        goto out;
    cas__crash_point_reached(CAS__CP_ADD_COMMITTED);
    memcpy(ret_id, cas_manifest_id(m), CAS_HASH_LEN);
    if (r == 1) {
        tmp_name[0] = '\0'; /* renamed away */
        int g = cas__gc_to_limit(s, ret_id);
        (void)g; /* the model is committed; a failed gc only leaves the store over its limit */
    }
out:
    if (tmp_name[0])
        unlinkat(s->tmp_fd, tmp_name, 0);
    if (c.dio_fd >= 0)
        close(c.dio_fd);
    if (c.out_fd >= 0)
        close(c.out_fd); /* releases the flock after the commit */
    cas_manifest_free(m);
    cas_chunker_free(ch);
    ctx_free(&c);
    return r;
}
