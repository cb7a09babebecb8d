/* SPDX-License-Identifier: MIT */
/*
 * Verify and export: worker threads take batches of consecutive chunks (up to
 * CAS__IO_BATCH bytes) and re-hash every chunk against the manifest (several
 * at once: store-hash.c). For export, one worker at a time writes the hashed
 * batches in order (at their offsets, or in sequence to a pipe) while the
 * others hash. The bytes written are the bytes just hashed, read once.
 *
 * The bytes come from a read-only mapping of the data file whose page tables
 * each batch fills in one call (MADV_POPULATE_READ) and empties after use
 * (MADV_DONTNEED, CAS__IO_ZAP bytes at a time: with CAS__IO_QUEUE batches
 * ahead, the mapping holds about 16 MiB of RSS). Against pread into
 * a buffer this saves the copy out of the page cache: on a 2-core Xeon VM,
 * export's system time fell from 0.38-0.57 to 0.31-0.44 s/GiB and a warm
 * verify's from 0.16-0.25 to 0.08-0.12, hashing time unchanged. (An earlier
 * version hashed a mapping that faults filled, on an AMD EPYC VM: 0.75-0.84
 * CPU s/GiB against 0.40-0.45 for pread.)
 * A batch that cannot be mapped (a 32-bit address space too small for the
 * file, a kernel before 5.14, a disk error: madvise fails where a fault would
 * raise SIGBUS) is read with pread instead, and a read error is -EIO.
 */
#define _DEFAULT_SOURCE /* madvise(), MADV_POPULATE_READ */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bits.h"
#include "libcas/store-internal.h"

#define CAS__IO_AHEAD 4u                  /* batches read ahead of the workers */
#define CAS__IO_QUEUE 8u                  /* batches hashed ahead of the writer, at most */
#define CAS__IO_ZAP   ((uint64_t)8 << 20) /* bytes per page-table emptying */
/* Bytes per batch. Small enough that a batch stays in the core's cache from
 * its read through the hash to its write: on these VMs, copying through a
 * user buffer of 2 MiB or more into page-cache pages the host had taken
 * back cost about 2 CPU s/GiB more (export 0.25-0.38x cp), with 1 MiB
 * batches 0.85 (0.73-0.76x cp), and 512 KiB batches fill the hash lanes
 * less well (0.95-0.99 CPU s/GiB). */
#define CAS__IO_BATCH ((size_t)1 << 20)

typedef struct io_batch {
    uint64_t first, n; /* chunk indexes [first, first + n) */
    uint64_t off;
    size_t bytes;
    /* Set under mu by the worker that hashed it: */
    const uint8_t *src; /* its bytes (the mapping or that worker's buffer) */
    bool ready, ok;     /* hashed; every chunk matched */
} io_batch;

typedef struct io_ctx {
    const cas_manifest *m;
    const uint8_t *model;
    int data_fd;        /* the data file, read-only */
    const uint8_t *map; /* the data file mapped (read-only), or NULL */
    size_t map_len;
    uint64_t page;         /* the page size */
    int out_fd;            /* export: output; verify: -1 */
    bool out_seekable;     /* regular output: written at batch offsets */
    const uint8_t *bitmap; /* partial model: verified chunks, else NULL */
    io_batch *batches;
    size_t n_batches, next, write_turn; /* next to hash, next to write */
    bool writing;                       /* a worker is in write_ready_locked */
    uint64_t zapped;                    /* mapping's page tables emptied below */
    size_t buf_size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int err; /* first fatal error */
    bool stop;
    bool bad; /* a problem was reported */
    bool all_chunks;
    cas_store_problem first_problem;
    const cas_store_verify_opts *vo;
    cas_progress_fn progress;
    void *userdata;
    uint64_t *done, total, *reported;
} io_ctx;

static int
make_batches(io_ctx *c, size_t max_bytes, size_t n)
{
    c->batches = malloc((n ? n : 1) * sizeof(*c->batches));
    if (!c->batches)
        return -ENOMEM;
    c->n_batches = 0;
    for (size_t i = 0; i < n;) {
        cas_chunk_info ci;
        int r = cas_manifest_chunk(c->m, i, &ci);
        if (r < 0)
            return r;
        io_batch b = { .first = i, .off = ci.offset };
        while (i < n) {
            r = cas_manifest_chunk(c->m, i, &ci);
            if (r < 0)
                return r;
            if (b.n > 0 && b.bytes + ci.len > max_bytes)
                break;
            b.bytes += ci.len;
            b.n++;
            i++;
        }
        c->batches[c->n_batches++] = b;
    }
    return 0;
}

/* Reports a problem (under the mutex). Returns the callback's value. */
static int
report_locked(io_ctx *c, uint64_t idx, uint64_t off, uint32_t len, int error)
{
    cas_store_problem p = { .chunk_index = idx, .offset = off, .len = len, .error = error };
    memcpy(p.model, c->model, CAS_HASH_LEN);
    if (!c->bad)
        c->first_problem = p;
    c->bad = true;
    if (c->vo && c->vo->problem)
        return c->vo->problem(c->vo->userdata, &p);
    return 0;
}

static void
stop_locked(io_ctx *c, int r)
{
    if (r < 0 && !c->err)
        c->err = r;
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
}

/* Reports bad chunk i (under the mutex). Returns true when to stop. */
static bool
bad_chunk(io_ctx *c, uint64_t i, const cas_chunk_info *ci)
{
    pthread_mutex_lock(&c->mu);
    int r = report_locked(c, i, ci->offset, ci->len, -EBADMSG);
    if (r < 0 || !c->all_chunks)
        stop_locked(c, r);
    bool stop = c->stop;
    pthread_mutex_unlock(&c->mu);
    return stop;
}

#define CAS__HASH_GROUP 64u /* chunks handed to cas__hash_many at once */

/* Hashes every chunk of batch b in buf (several at once); reports bad ones.
 * Returns true when all were good. */
static bool
check_batch(io_ctx *c, const io_batch *b, const uint8_t *buf)
{
    const uint8_t *bufs[CAS__HASH_GROUP];
    size_t lens[CAS__HASH_GROUP];
    uint64_t idx[CAS__HASH_GROUP];
    uint8_t got[CAS__HASH_GROUP][CAS_HASH_LEN];
    bool ok = true;
    uint64_t i = b->first, end = b->first + b->n;
    while (i < end) {
        size_t n = 0;
        for (; i < end && n < CAS__HASH_GROUP; i++) {
            if (c->bitmap && !bit_get(c->bitmap, i))
                continue;
            cas_chunk_info ci;
            cas_manifest_chunk(c->m, i, &ci);
            bufs[n] = buf + (ci.offset - b->off);
            lens[n] = ci.len;
            idx[n++] = i;
        }
        cas__hash_many(bufs, lens, n, got);
        for (size_t k = 0; k < n; k++) {
            cas_chunk_info ci;
            cas_manifest_chunk(c->m, idx[k], &ci);
            if (cas_hash_equal(got[k], ci.id))
                continue;
            ok = false;
            if (bad_chunk(c, idx[k], &ci))
                return false;
        }
    }
    return ok;
}

static int
progress_locked(io_ctx *c, size_t bytes)
{
    if (!c->progress)
        return 0;
    *c->done += bytes;
    if (*c->done - *c->reported < CAS__PROGRESS_STEP && *c->done != c->total)
        return 0;
    *c->reported = *c->done;
    return c->progress(c->userdata, *c->done, c->total);
}

/* Asks the kernel to read batch bi into the page cache in the background, so
 * that the workers' preads hit the cache when the data file is cold (an
 * add writes with O_DIRECT). Cheap when the pages are cached already. */
static void
prefetch(io_ctx *c, size_t bi)
{
    if (bi < c->n_batches)
        posix_fadvise(c->data_fd, (off_t)c->batches[bi].off, (off_t)c->batches[bi].bytes,
                      POSIX_FADV_WILLNEED);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels say EINVAL */
#endif

/* Points *src at the bytes of batch b: in the mapping, with its page tables
 * filled, or else read into buf. Returns 0 or a negative errno. */
static int
batch_bytes(io_ctx *c, const io_batch *b, uint8_t *buf, const uint8_t **src)
{
    if (c->map) {
        uint64_t a = b->off & ~(c->page - 1);
        if (madvise((void *)(c->map + a), (size_t)(b->off + b->bytes - a), MADV_POPULATE_READ) ==
            0) {
            *src = c->map + b->off;
            return 0;
        }
    }
    *src = buf;
    return cas__pread_full(c->data_fd, buf, b->bytes, b->off);
}

/* Empties the mapping's page tables below the end of batch b (written) once
 * CAS__IO_ZAP bytes or the end are reached: one call per range, as each is a
 * TLB flush on every core the process ran on. A page b shares with the next
 * batch stays, as that batch may be hashing it. The page cache keeps the
 * pages. Only the writer calls this. */
static void
zap_behind(io_ctx *c, const io_batch *b, bool last)
{
    uint64_t end = (b->off + b->bytes) & ~(c->page - 1);
    if (c->map && end > c->zapped && (last || end - c->zapped >= CAS__IO_ZAP)) {
        madvise((void *)(c->map + c->zapped), (size_t)(end - c->zapped), MADV_DONTNEED);
        c->zapped = end;
    }
}

/* Writes (export) the hashed batches in order from the write turn on, one
 * worker at a time: ext4 serialises buffered writes to a file on its inode
 * lock, and a second writer spun there (4% of export's CPU) where it can
 * hash the next batch instead. Called and returns under mu. */
static void
write_ready_locked(io_ctx *c)
{
    c->writing = true;
    while (!c->stop && c->write_turn < c->n_batches && c->batches[c->write_turn].ready) {
        const io_batch *b = &c->batches[c->write_turn];
        pthread_mutex_unlock(&c->mu);
        int r = 0;
        if (c->out_fd >= 0 && b->ok)
            r = c->out_seekable ? cas__pwrite_full(c->out_fd, b->src, b->bytes, b->off)
                                : cas__write_full(c->out_fd, b->src, b->bytes);
        zap_behind(c, b, c->write_turn + 1 == c->n_batches);
        pthread_mutex_lock(&c->mu);
        c->write_turn++;
        if (r == 0)
            r = progress_locked(c, b->bytes);
        if (r < 0)
            stop_locked(c, r);
        pthread_cond_broadcast(&c->cv);
    }
    c->writing = false;
}

static void *
io_worker(void *arg)
{
    io_ctx *c = arg;
    uint8_t *buf = malloc(c->buf_size);
    pthread_mutex_lock(&c->mu);
    if (!buf)
        stop_locked(c, -ENOMEM);
    for (;;) {
        /* At most CAS__IO_QUEUE batches hashed ahead of the writer. */
        while (!c->stop && c->next < c->n_batches && c->next - c->write_turn >= CAS__IO_QUEUE)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop || c->next == c->n_batches)
            break;
        size_t bi = c->next++;
        io_batch *b = &c->batches[bi];
        pthread_mutex_unlock(&c->mu);
        prefetch(c, bi + CAS__IO_AHEAD);
        const uint8_t *src;
        int r = batch_bytes(c, b, buf, &src);
        bool ok = r == 0 && check_batch(c, b, src);
        pthread_mutex_lock(&c->mu);
        if (r < 0)
            stop_locked(c, r);
        b->src = src;
        b->ok = ok;
        b->ready = true;
        if (!c->writing)
            write_ready_locked(c);
        /* Bytes in buf are written before buf takes the next batch, or is
         * freed on a stop (the writer may be writing them right then). */
        while (src == buf && c->write_turn <= bi &&
               (!c->stop || (c->writing && c->write_turn == bi)))
            pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    free(buf);
    return NULL;
}

/* Runs the workers (the caller's thread is one of them). */
static int
io_run(io_ctx *c, unsigned threads)
{
    if (threads == 0)
        threads = CAS_STORE_ADD_THREADS;
    if (threads > 16)
        threads = 16;
    pthread_t th[16];
    unsigned started = 0;
    for (size_t i = 0; i < CAS__IO_AHEAD; i++)
        prefetch(c, i);
    /* Not more than an eighth of the address space (a 32-bit process keeps
     * room for its stacks and buffers: larger files take pread). */
    if (c->n_batches > 0 && !cas__io_no_map) {
        const io_batch *last = &c->batches[c->n_batches - 1];
        long page = sysconf(_SC_PAGESIZE);
        void *m = last->off + last->bytes <= SIZE_MAX / 8 && page > 0
                      ? mmap(NULL, (size_t)(last->off + last->bytes), PROT_READ, MAP_SHARED,
                             c->data_fd, 0)
                      : MAP_FAILED;
        if (m != MAP_FAILED) {
            c->map = m;
            c->map_len = (size_t)(last->off + last->bytes);
            c->page = (uint64_t)page;
        }
    }
    for (unsigned i = 1; i < threads && c->n_batches > 1; i++) {
        if (pthread_create(&th[started], NULL, io_worker, c) != 0)
            break;
        started++;
    }
    io_worker(c);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (c->map)
        munmap((void *)c->map, c->map_len);
    return c->err;
}

/* Loaded model: record fields, decoded manifest, bitmap copy (partial). */
typedef struct loaded {
    cas__model_rec rec;
    cas_manifest *m;
    uint8_t *bitmap;
} loaded;

static void
loaded_free(loaded *l)
{
    cas_manifest_free(l->m);
    free(l->bitmap);
}

/* Reads the record of id and decodes its manifest. Returns 0, -ENOENT, or
 * -EBADMSG (damaged record or manifest; *ret is then partly filled). */
static int
load_model(cas_store *s, const uint8_t id[static CAS_HASH_LEN], loaded *ret)
{
    MDB_txn *txn;
    memset(ret, 0, sizeof(*ret));
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__model_get(s, txn, id, &ret->rec);
    if (r < 0)
        goto out;
    r = cas_manifest_decode(ret->rec.manifest, ret->rec.manifest_len, &ret->m);
    if (r < 0)
        goto out;
    if (!cas_hash_equal(cas_manifest_id(ret->m), id) ||
        cas_manifest_size(ret->m) != ret->rec.size ||
        cas_manifest_chunk_count(ret->m) != ret->rec.n_chunks) {
        r = -EBADMSG;
        goto out;
    }
    if (ret->rec.state == CAS_MODEL_PARTIAL) {
        size_t want = (size_t)((ret->rec.n_chunks + 7) / 8);
        ret->bitmap = calloc(1, want ? want : 1);
        if (!ret->bitmap) {
            r = -ENOMEM;
            goto out;
        }
        MDB_val k = { CAS_HASH_LEN, (void *)id }, v;
        if (mdb_get(txn, s->db_bitmaps, &k, &v) == 0)
            memcpy(ret->bitmap, v.mv_data, v.mv_size < want ? v.mv_size : want);
    }
out:
    ret->rec.manifest = NULL; /* points into the ended transaction */
    cas__txn_abort(txn);
    return r;
}

/* Opens the data file of id and writes its size to *ret_fsize. */
static int
open_data(cas_store *s, const uint8_t id[static CAS_HASH_LEN], int *ret_fd, uint64_t *ret_fsize)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas__data_name(id, hex);
    int fd = openat(s->data_fd, hex, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -EBADMSG;
    }
    *ret_fd = fd;
    *ret_fsize = (uint64_t)st.st_size;
    return 0;
}

/* Index of the first chunk of m that is not wholly within fsize bytes. */
static size_t
first_missing(const cas_manifest *m, uint64_t fsize)
{
    size_t idx;
    return cas_manifest_chunk_at(m, fsize, &idx) == 0 ? idx : cas_manifest_chunk_count(m);
}

/* Reports chunk idx as missing (the data file ends before it ends). */
static int
report_missing(io_ctx *c, size_t idx)
{
    cas_chunk_info ci;
    cas_manifest_chunk(c->m, idx, &ci);
    pthread_mutex_lock(&c->mu);
    int r = report_locked(c, idx, ci.offset, ci.len, -ENOENT);
    pthread_mutex_unlock(&c->mu);
    return r;
}

static void
close_data(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Bytes per batch: CAS__IO_BATCH, less for small models so that they
 * still split into several batches for the workers (never below one max
 * chunk, so a batch always holds a whole chunk). */
static size_t
buf_size_for(const cas_manifest *m)
{
    cas_chunker_params p;
    cas_manifest_chunker(m, &p);
    uint64_t want = cas_manifest_size(m) / 8;
    if (want > CAS__IO_BATCH)
        want = CAS__IO_BATCH;
    return want > p.max ? (size_t)want : p.max;
}

/* True when id has no record (any more). */
static bool
model_gone(cas_store *s, const uint8_t id[static CAS_HASH_LEN])
{
    cas_model_info info;
    return cas_store_model_info(s, id, &info) == -ENOENT;
}

static int
call_problem(const cas_store_verify_opts *o, const uint8_t id[static CAS_HASH_LEN], int error)
{
    cas_store_problem p = { .chunk_index = CAS_STORE_NO_CHUNK, .error = error };
    memcpy(p.model, id, CAS_HASH_LEN);
    return o && o->problem ? o->problem(o->userdata, &p) : 0;
}

/* Verifies one model. Returns 0 (sound), 1 (problems reported), < 0 fatal. */
static int
verify_one(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const cas_store_verify_opts *o,
           uint64_t *done, uint64_t total, uint64_t *reported)
{
    loaded l;
    int data_fd = -1;
    uint64_t fsize = 0;
    int r = load_model(s, id, &l);
    if (r == -ENOENT && !l.m && l.rec.manifest_len == 0)
        goto out;
    if (r == 0)
        r = open_data(s, id, &data_fd, &fsize);
    if (r == -ENOENT && model_gone(s, id))
        goto out; /* removed since it was loaded: not a problem */
    if (r == -ENOENT || r == -EBADMSG) {
        int cr = call_problem(o, id, r);
        r = cr < 0 ? cr : 1;
        goto out;
    }
    if (r < 0)
        goto out;
    io_ctx c = { .m = l.m,
                 .model = id,
                 .data_fd = data_fd,
                 .out_fd = -1,
                 .bitmap = l.bitmap,
                 .buf_size = buf_size_for(l.m),
                 .vo = o,
                 .all_chunks = o && o->all_chunks,
                 .progress = o ? o->progress : NULL,
                 .userdata = o ? o->userdata : NULL,
                 .done = done,
                 .total = total,
                 .reported = reported };
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    /* A short data file: the chunks it does not hold are missing; those
     * before are checked as usual. A long one is a problem of no chunk. */
    size_t limit = fsize < l.rec.size ? first_missing(l.m, fsize) : cas_manifest_chunk_count(l.m);
    r = fsize > l.rec.size ? call_problem(o, id, -EBADMSG) : 0;
    c.bad = fsize > l.rec.size;
    for (size_t i = limit; r >= 0 && i < cas_manifest_chunk_count(l.m); i++) {
        if (l.bitmap && !bit_get(l.bitmap, i))
            continue;
        r = report_missing(&c, i);
        if (!c.all_chunks)
            break;
    }
    if (r >= 0)
        r = make_batches(&c, c.buf_size, limit);
    if (r == 0)
        r = io_run(&c, o ? o->threads : 0);
    if (r == 0 && c.bad)
        r = 1;
    free(c.batches);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
out:
    close_data(data_fd);
    loaded_free(&l);
    if (r >= 0 && o && o->model_done) {
        int mr = o->model_done(o->userdata, id, r == 0);
        if (mr < 0)
            return mr;
    }
    return r;
}

/* Collects every model id and the total bytes to check. */
static int
all_ids(cas_store *s, uint8_t (**ret_ids)[CAS_HASH_LEN], size_t *ret_n, uint64_t *ret_total)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    uint8_t(*ids)[CAS_HASH_LEN] = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    int r = cas__txn_begin(s, true, &txn);
    if (r < 0)
        return r;
    r = cas__mdb_err(mdb_cursor_open(txn, s->db_models, &cur));
    MDB_val k, v;
    int rc = r < 0 ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != CAS_HASH_LEN)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            void *ni = realloc(ids, cap * CAS_HASH_LEN);
            if (!ni) {
                r = -ENOMEM;
                break;
            }
            ids = ni;
        }
        memcpy(ids[n++], k.mv_data, CAS_HASH_LEN);
        cas__model_rec rec;
        if (cas__model_get(s, txn, k.mv_data, &rec) == 0)
            total += rec.size;
    }
    mdb_cursor_close(cur);
    cas__txn_abort(txn);
    if (r < 0) {
        free(ids);
        return r;
    }
    *ret_ids = ids;
    *ret_n = n;
    *ret_total = total;
    return 0;
}

int
cas_store_verify(cas_store *s, const uint8_t *id, const cas_store_verify_opts *opts)
{
    uint64_t done = 0, reported = 0;
    if (id) {
        cas_model_info info;
        int r = cas_store_model_info(s, id, &info);
        if (r == -EBADMSG)
            return call_problem(opts, id, r) < 0 ? r : -EBADMSG;
        if (r < 0)
            return r;
        r = verify_one(s, id, opts, &done, info.size, &reported);
        return r == 1 ? -EBADMSG : r;
    }
    uint8_t(*ids)[CAS_HASH_LEN] = NULL;
    size_t n = 0;
    uint64_t total = 0;
    int r = all_ids(s, &ids, &n, &total);
    if (r < 0)
        return r;
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        r = verify_one(s, ids[i], opts, &done, total, &reported);
        if (r == -ENOENT)
            r = 0; /* removed meanwhile */
        if (r < 0)
            break;
        bad = bad || r == 1;
        r = 0;
    }
    free(ids);
    return r < 0 ? r : bad ? -EBADMSG : 0;
}

static int
export_impl(cas_store *s, const uint8_t id[static CAS_HASH_LEN], int out_fd,
            cas_progress_fn progress, void *userdata, cas_store_problem *ret_problem)
{
    loaded l;
    int data_fd = -1;
    uint64_t fsize = 0;
    int r = load_model(s, id, &l);
    if (r < 0)
        goto out;
    if (l.rec.state != CAS_MODEL_COMPLETE) {
        r = -EAGAIN;
        goto out;
    }
    r = open_data(s, id, &data_fd, &fsize);
    if (r == 0 && fsize != l.rec.size) {
        r = -EBADMSG; /* refused before a byte is written */
        if (ret_problem) {
            /* uint64_t: CAS_STORE_NO_CHUNK does not fit a 32-bit size_t. */
            uint64_t i = fsize < l.rec.size ? first_missing(l.m, fsize) : CAS_STORE_NO_CHUNK;
            cas_chunk_info ci = { .offset = 0, .len = 0 };
            if (i != CAS_STORE_NO_CHUNK)
                cas_manifest_chunk(l.m, (size_t)i, &ci);
            *ret_problem =
                (cas_store_problem){ .chunk_index = i,
                                     .offset = ci.offset,
                                     .len = ci.len,
                                     .error = i == CAS_STORE_NO_CHUNK ? -EBADMSG : -ENOENT };
            memcpy(ret_problem->model, id, CAS_HASH_LEN);
        }
        goto out;
    }
    if (r == -ENOENT && !model_gone(s, id))
        r = -EBADMSG; /* the index names a file that is gone */
    if (r < 0) {
        if (r == -EBADMSG && ret_problem) {
            *ret_problem = (cas_store_problem){ .chunk_index = CAS_STORE_NO_CHUNK, .error = r };
            memcpy(ret_problem->model, id, CAS_HASH_LEN);
        }
        goto out;
    }
    uint64_t done = 0, reported = 0;
    struct stat st;
    io_ctx c = { .m = l.m,
                 .model = id,
                 .data_fd = data_fd,
                 .out_fd = out_fd,
                 .out_seekable = fstat(out_fd, &st) == 0 && S_ISREG(st.st_mode) &&
                                 !(fcntl(out_fd, F_GETFL) & O_APPEND), /* pwrite appends there */
                 .buf_size = buf_size_for(l.m),
                 .progress = progress,
                 .userdata = userdata,
                 .done = &done,
                 .total = l.rec.size,
                 .reported = &reported };
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    r = make_batches(&c, c.buf_size, cas_manifest_chunk_count(l.m));
    if (r == 0)
        r = io_run(&c, 0);
    if (r == 0 && c.bad)
        r = -EBADMSG;
    if (c.bad && ret_problem)
        *ret_problem = c.first_problem;
    free(c.batches);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
out:
    close_data(data_fd);
    loaded_free(&l);
    return r;
}

int
cas_store_export_fd(cas_store *s, const uint8_t id[static CAS_HASH_LEN], int out_fd,
                    cas_progress_fn progress, void *userdata, cas_store_problem *ret_problem)
{
    return export_impl(s, id, out_fd, progress, userdata, ret_problem);
}

int
cas_store_export_path(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const char *path,
                      cas_progress_fn progress, void *userdata, cas_store_problem *ret_problem)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n, "%s.nvx-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = -errno;
        free(tmp);
        return e;
    }
    int r = fchmod(fd, 0644) < 0 ? -errno : 0;
    if (r == 0)
        r = export_impl(s, id, fd, progress, userdata, ret_problem);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    free(tmp);
    return r;
}
