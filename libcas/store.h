/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_STORE_H
#define NVX_LIBCAS_STORE_H
/*
 * The content-addressed model store: an LMDB index plus one data file per
 * model. The on-disk layout and the crash-safety order are in
 * libcas/FORMAT.md, section "Store".
 *
 *     DIR/nvx-store        marker: "nvx-store 1\n" (format version)
 *     DIR/index/           LMDB environment (data.mdb, lock.mdb)
 *     DIR/data/<id-hex>    model bytes at their final offsets; 0444 when complete
 *     DIR/tmp/             temp files of adds in progress (stale ones removed on open)
 *
 * Ids are BLAKE2b-256 digests (libcas/hash.h): a chunk id hashes the chunk's
 * bytes, a model id the canonical manifest bytes (libcas/manifest.h).
 *
 * Errors: every fallible function returns >= 0 on success or a negative errno:
 *   -EINVAL     caller bug (bad argument)
 *   -ENOENT     unknown model / chunk / name / key / peer
 *   -ENOTUNIQ   an id prefix matches more than one model
 *   -ENOTDIR    cas_store_open(): DIR is not a directory, or a non-empty one
 *               without the store marker (not a store)
 *   -EBADMSG    corrupt data: a chunk whose bytes do not hash to its id, a
 *               manifest that does not decode or hash to its id, a damaged
 *               index record or store marker of an unknown version
 *   -ENOSPC     disk full, LMDB map full at CAS_STORE_MAP_MAX (a full map
 *               is grown and the write retried below that), or the store
 *               size limit cannot be met because pinned content exceeds it
 *   -EFBIG      a data file hit the file size limit (RLIMIT_FSIZE)
 *   -EBUSY      cas_store_rm() of a pinned model without CAS_RM_FORCE
 *   -EDQUOT     cas_store_make_room(): the size limit cannot hold the bytes
 *   -EAGAIN     the model exists but is partial (not yet complete)
 *   -ECANCELED  (or any negative value a callback returned) a callback
 *               stopped the operation
 *   -EIO and other errnos from the system calls.
 * Libraries never print; problems are reported through return values and the
 * callbacks below.
 *
 * Threads and processes: a cas_store handle may be used from several threads
 * at once (the daemon calls it from libuv worker threads); every function
 * runs its own LMDB transaction (the environment is opened with MDB_NOTLS),
 * LMDB serialises writers across threads and processes, and data files are
 * written only under the crash-safety protocol of FORMAT.md. Several
 * processes (nvxd and the nvx CLI) may open the same store at once. Do not
 * carry a cas_store across fork(): open the store again in the child.
 * Callbacks are called on the calling thread, or, where a function says so,
 * on one of its worker threads but never two at once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libcas/chunker.h"
#include "libcas/hash.h"
#include "libcas/manifest.h"

/* Named limits. */
#define CAS_STORE_VERSION  1u /* marker + index format version */
#define CAS_STORE_MAP_SIZE ((size_t)1 << (sizeof(size_t) > 4 ? 32 : 30)) /* LMDB map (sparse) */
/* The map doubles when it fills, up to this (address space, not disk). */
#define CAS_STORE_MAP_MAX (sizeof(size_t) > 4 ? (size_t)1 << 40 : (size_t)3 << 29)
/* DIR/reserve: preallocated, released so that rm and gc commit on a full disk. */
#define CAS_STORE_RESERVE_SIZE ((uint64_t)1 << 20)
#define CAS_STORE_NAME_MAX     255u         /* bytes of a local model name */
#define CAS_STORE_KEY_ID_MAX   64u          /* bytes of a trusted key id */
#define CAS_STORE_KEY_BLOB_MAX 4096u        /* bytes of a trusted key blob */
#define CAS_STORE_SIG_MAX      (64u * 1024) /* bytes of one signature blob */
/* Signatures whose key the keyring does not hold are kept apart, bounded
 * (anyone can make keys): blobs in all, per model, bytes per blob. */
#define CAS_STORE_SIG_PENDING_MAX       1024u
#define CAS_STORE_SIG_PENDING_PER_MODEL 8u
#define CAS_STORE_SIG_PENDING_BLOB_MAX  (10u * 1024)
#define CAS_STORE_PEER_KEY_MAX          256u /* bytes of a peer record key */
#define CAS_STORE_PEER_MAX              (64u * 1024)
#define CAS_STORE_NAMEREC_KEY_MAX       256u /* bytes of a name record key */
#define CAS_STORE_NAMEREC_MAX \
    4096u /* bytes of a name record blob */        /* bytes of a peer record value */
#define CAS_STORE_MANIFEST_MAX ((size_t)256 << 20) /* bytes of a stored manifest */
#define CAS_STORE_ADD_THREADS  2u                  /* default hash threads of add/verify */
#define CAS_STORE_BUF_SIZE \
    ((size_t)4 << 20) /* one I/O buffer of add (verify and export: store-io.c) */

typedef struct cas_store cas_store;

/* ---------------------------------------------------------------------- */
/* Opening */

enum {
    CAS_STORE_CREATE = 1u << 0,     /* create DIR (mkdir -p) or an empty DIR as a store */
    CAS_STORE_NO_CLEANUP = 1u << 1, /* skip removing stale temp and orphan data files */
};

/* Opens the store at dir. With CAS_STORE_CREATE, a missing or empty dir is
 * made a store (marker written atomically first, then the subdirectories and
 * the index, so a crash during creation leaves a store that opens). Unless
 * CAS_STORE_NO_CLEANUP, stale files left by crashed adds (in DIR/tmp) and data
 * files with no index record (a crash between rename and commit, or after an
 * rm committed) are removed; files another process is still writing are left
 * alone (they are flock()ed by their writer).
 * Returns 0 and writes *ret; -ENOENT (dir missing or empty, no CREATE),
 * -ENOTDIR (dir is not a directory, or is a non-empty directory with no
 * store marker), -EBADMSG (marker damaged or of an unknown version), errnos
 * from the system and LMDB. */
int cas_store_open(const char *dir, unsigned flags, cas_store **ret);

/* Closes the store (NULL is a no-op). No call may be in flight. */
void cas_store_free(cas_store *s);

/* The directory the store was opened with; valid until cas_store_free(). */
const char *cas_store_dir(const cas_store *s);

/* ---------------------------------------------------------------------- */
/* Progress, problems */

/* Progress of add/verify/export: done of total bytes (total is 0 when unknown,
 * e.g. add from a pipe). Return 0 to go on, a negative errno to stop: the
 * operation then cleans up and returns that value. May be called from a
 * worker thread of the operation (never two calls at once). */
typedef int (*cas_progress_fn)(void *userdata, uint64_t done, uint64_t total);

/* A problem found by verify or export. error is -EBADMSG for a chunk whose
 * bytes do not hash to its id, -ENOENT for a chunk the data file is too
 * short to hold (each one past the end with all_chunks, else the first).
 * chunk_index is CAS_STORE_NO_CHUNK when the problem is not one chunk's:
 * data file missing (-ENOENT) or longer than the model, manifest or record
 * damaged (-EBADMSG). */
#define CAS_STORE_NO_CHUNK UINT64_MAX
typedef struct cas_store_problem {
    uint8_t model[CAS_HASH_LEN];
    uint64_t chunk_index; /* index in the manifest's chunk list */
    uint64_t offset;      /* byte offset of that chunk in the model */
    uint32_t len;         /* chunk length */
    int error;            /* -EBADMSG (hash mismatch), -ENOENT, -EIO, ... */
} cas_store_problem;

/* ---------------------------------------------------------------------- */
/* Adding */

/* One manifest metadata entry (key rules: libcas/manifest.h). */
typedef struct cas_store_meta {
    const char *key;
    const char *value;
} cas_store_meta;

typedef struct cas_store_add_opts {
    cas_chunker_kind kind;            /* recorded in the manifest (CAS_CHUNKER_CDC) */
    const cas_chunker_params *params; /* NULL: CAS_CHUNKER_PARAMS_DEFAULT */
    const cas_chunk_region *regions;  /* forced cuts (chunker.h), sorted; may be NULL */
    size_t n_regions;
    const cas_tensor_info *tensors; /* tensor map for the manifest (copied); may be NULL */
    size_t n_tensors;
    const cas_store_meta *meta; /* metadata keys for the manifest (copied); may be NULL */
    size_t n_meta;
    bool pin;                 /* pin the model in the same transaction */
    const char *name;         /* also set this local name (NULL: none) */
    unsigned threads;         /* hash threads; 0: CAS_STORE_ADD_THREADS */
    cas_progress_fn progress; /* may be NULL */
    void *userdata;
    /* Bytes the caller already read from fd (e.g. a file header it needed
     * to plan the chunking of a pipe): they come first, then the rest of
     * fd. Borrowed for the call; may be NULL. */
    const void *prefix;
    size_t prefix_len;
    /* When not NULL, filled in with how the data file was written. */
    struct cas_store_add_stats *stats;
    /* When not NULL, sees every byte of the stream once, in order, on the
     * reader thread: called with each piece as it is read (prefix bytes
     * included), then once with (NULL, 0) at the end of the stream, before
     * anything is committed. So a caller checks another digest of the
     * bytes (an importer's sha256) in the same read as the add; a negative
     * errno returned stops the add, which leaves the store unchanged and
     * returns that value. tap_arg is its first argument. */
    int (*tap)(void *tap_arg, const void *buf, size_t len);
    void *tap_arg;
} cas_store_add_opts;

/* How cas_store_add_fd() wrote the data file: bytes written with O_DIRECT
 * (DMA from the buffers, no page-cache copy) and through the page cache (the
 * unaligned tail, or all of it where the file system refuses O_DIRECT). */
typedef struct cas_store_add_stats {
    uint64_t direct_bytes;
    uint64_t buffered_bytes;
} cas_store_add_stats;

/* Reads fd to EOF (a file or a pipe; never the whole stream in memory: about
 * 8 * CAS_STORE_BUF_SIZE at most), cuts it into chunks, hashes them on worker
 * threads while it writes the bytes to a temp file, builds the manifest and
 * commits the model (state complete, chunk index entries, pin/name if asked).
 * Durable when it returns: data fdatasync'd, renamed, directory fsync'd, then
 * the LMDB transaction committed (FORMAT.md). opts may be NULL (defaults).
 * Writes the model id to ret_id. Returns 1 when the model was new, 0 when it
 * was already complete in the store (pin/name still applied); -ENOSPC/-EFBIG
 * when the disk or file size limit is hit (the temp file is removed, the
 * store is unchanged), -ENOSPC also when the store's size limit cannot hold
 * the model next to the pinned content, -EINVAL for bad options, errnos from
 * read(), the callback's value. The library never changes signal handling: a
 * process that sets RLIMIT_FSIZE must ignore SIGXFSZ to get -EFBIG. The data
 * file is written with O_DIRECT where the file system allows it, so its
 * bytes are not left in the page cache, and synced a step at a time while
 * the add runs. Runs CAS_STORE_ADD_THREADS hash threads plus a reader, two
 * writers and a syncer thread; progress is called on the calling thread. */
int cas_store_add_fd(cas_store *s, int fd, const cas_store_add_opts *opts,
                     uint8_t ret_id[static CAS_HASH_LEN]);

/* ---------------------------------------------------------------------- */
/* Models */

typedef enum cas_model_state {
    CAS_MODEL_PARTIAL = 1,  /* being fetched: bitmap of verified chunks */
    CAS_MODEL_COMPLETE = 2, /* every chunk present; data file 0444 */
    _CAS_MODEL_STATE_MAX,
} cas_model_state;

typedef struct cas_model_info {
    uint8_t id[CAS_HASH_LEN];
    cas_model_state state;
    uint64_t size;      /* model bytes */
    uint64_t n_chunks;  /* chunks in the manifest */
    uint64_t n_present; /* verified chunks (n_chunks when complete) */
    uint64_t added;     /* unix time (seconds) the model entered the store */
    uint64_t n_sigs;    /* signature blobs attached */
    uint64_t used;      /* unix time (seconds) of the last use; added when none recorded */
    bool pinned;        /* the user's pin: never removed by gc nor the size limit */
    bool kept;          /* fetched and kept: plain gc leaves it, the size limit may evict it */
} cas_model_info;

/* Information on one model. Returns 0, -ENOENT, -EBADMSG (damaged record). */
int cas_store_model_info(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_model_info *ret);

/* Calls cb for every model (partial and complete), in id order, from one read
 * transaction; a damaged record is skipped (cas_store_verify reports it). cb returns 0 to go on or
 * a negative value to stop (returned). Returns 0 or a negative errno. */
typedef int (*cas_model_fn)(void *userdata, const cas_model_info *info);
int cas_store_list(cas_store *s, cas_model_fn cb, void *userdata);

/* Resolves text to a model id: 64 hex characters (the model must exist) or a
 * unique prefix of CAS_HASH_PREFIX_MIN..63 hex characters. Returns 0 and
 * writes ret_id; -EINVAL (not hex, too short), -ENOENT (no model matches),
 * -ENOTUNIQ (the prefix matches several models). Names: cas_store_name_get(). */
int cas_store_resolve(cas_store *s, const char *text, uint8_t ret_id[static CAS_HASH_LEN]);

/* Copies the canonical manifest bytes of a model (complete or partial) into
 * a malloc'd buffer the caller frees. Returns 0, -ENOENT, -ENOMEM. */
int cas_store_manifest_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint8_t **ret_buf,
                           size_t *ret_len);

/* Path of the data file of a complete model, for mmap by the runtime
 * (read-only, mode 0444; it stays valid while the model is not removed; an
 * open mapping survives rm and gc). Writes a malloc'd string the caller frees.
 * Returns 0, -ENOENT (unknown), -EAGAIN (partial), -ENOMEM. It does not verify
 * the bytes: run cas_store_verify() for that. */
int cas_store_data_path(cas_store *s, const uint8_t id[static CAS_HASH_LEN], char **ret_path);

/* Opens the data file of a model, complete or partial, read-only
 * (O_CLOEXEC), for serving: a partial model's file holds its stored chunks
 * at their final offsets. Returns the fd (the caller closes it) and writes
 * *ret_partial; or -ENOENT (unknown, or its file is gone), -ENOMEM, or
 * open's -errno. Like cas_store_data_path() it does not verify the bytes. */
int cas_store_data_open(cas_store *s, const uint8_t id[static CAS_HASH_LEN], bool *ret_partial);

/* ---------------------------------------------------------------------- */
/* Chunk lookup (dedup and serving) */

typedef struct cas_chunk_loc {
    uint8_t model[CAS_HASH_LEN]; /* a complete model holding the chunk */
    uint64_t offset;             /* where in its data file */
    uint32_t len;
} cas_chunk_loc;

/* Finds a complete model holding chunk id. Returns 0 and writes *ret,
 * -ENOENT when no complete model holds it. */
int cas_store_chunk_find(cas_store *s, const uint8_t chunk[static CAS_HASH_LEN],
                         cas_chunk_loc *ret);

/* Reads chunk id from the data file of a complete model holding it into buf
 * (cap bytes) and re-hashes it; when that copy is corrupt, tries the other
 * models holding the chunk. Returns the chunk length (>= 0); -ENOENT,
 * -EMSGSIZE (cap too small), -EBADMSG (every stored copy is corrupt: serving
 * must refuse it; run verify). */
int64_t cas_store_chunk_read(cas_store *s, const uint8_t chunk[static CAS_HASH_LEN], void *buf,
                             size_t cap);

/* ---------------------------------------------------------------------- */
/* Verify and export */

typedef struct cas_store_verify_opts {
    unsigned threads;         /* hash threads; 0: CAS_STORE_ADD_THREADS */
    cas_progress_fn progress; /* bytes over all models checked; may be NULL */
    /* Called once per problem found (verify goes on with the next model after
     * a model's first bad chunk unless all_chunks), possibly on a worker
     * thread, never two calls at once. Return 0 to go on. */
    int (*problem)(void *userdata, const cas_store_problem *p);
    /* Called after each model is checked (ok: no problem). May be NULL. */
    int (*model_done)(void *userdata, const uint8_t id[static CAS_HASH_LEN], bool ok);
    bool all_chunks; /* report every bad chunk, not only the first */
    void *userdata;
} cas_store_verify_opts;

/* Re-hashes every chunk of model id (or of every model when id is NULL;
 * partial models: their verified chunks), checks the manifest hashes to its
 * id and decodes, and the data file size. Returns 0 when everything is
 * sound, -EBADMSG when at least one problem was reported, -ENOENT (unknown
 * id), other negative errnos for failures that stopped it. opts may be NULL. */
int cas_store_verify(cas_store *s, const uint8_t *id, const cas_store_verify_opts *opts);

/* Writes the bytes of complete model id to fd (a regular file is written
 * with pwrite from its current size 0 — the caller passes an empty file —
 * and may be written out of order by the worker threads; a pipe or socket is
 * written in order), re-hashing every chunk before it is written. On a bad
 * chunk it stops and returns -EBADMSG, writing *ret_problem when non-NULL
 * (the fd then holds a partial copy: use cas_store_export_path()). Returns 0,
 * -ENOENT, -EAGAIN (partial model), errnos from write(). */
int cas_store_export_fd(cas_store *s, const uint8_t id[static CAS_HASH_LEN], int fd,
                        cas_progress_fn progress, void *userdata, cas_store_problem *ret_problem);

/* Like cas_store_export_fd() into a new file at path (mode 0644, replaced
 * atomically when it exists): written to "path.nvx-XXXXXX" (copied by one
 * thread while the others re-hash every chunk), then renamed only when every
 * chunk hashed right.
 * Not fsync'd (like cp): call fsync on path for durability. On any failure
 * nothing is left at path (and an old file is kept). */
int cas_store_export_path(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const char *path,
                          cas_progress_fn progress, void *userdata, cas_store_problem *ret_problem);

/* ---------------------------------------------------------------------- */
/* Pins, removal, garbage collection, size limit */

/* Pins / unpins a model (complete or partial). Idempotent. Either clears
 * the kept mark (a pin supersedes it). Returns 0 or -ENOENT. */
int cas_store_pin(cas_store *s, const uint8_t id[static CAS_HASH_LEN]);
int cas_store_unpin(cas_store *s, const uint8_t id[static CAS_HASH_LEN]);

/* Marks a model kept (nvxd marks the models it fetches): plain gc leaves
 * it, but a gc to a size limit may remove it, after the unpinned models
 * that are not kept, least recently used first. A pin (the user's) is
 * never removed by either; a pinned model is left as it is. Idempotent;
 * cas_store_unpin() clears the mark.
 * Returns 0 or -ENOENT. */
int cas_store_keep(cas_store *s, const uint8_t id[static CAS_HASH_LEN]);

/* Records now as the last use of model id (a run, a completed fetch,
 * serving), which orders gc to a size limit: least recently used first.
 * When the recorded use is younger than min_age_s seconds nothing is
 * written (a read transaction only), so frequent callers cost little.
 * Returns 1 written, 0 skipped, -ENOENT, or a negative errno. */
int cas_store_touch(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint64_t min_age_s);

enum {
    CAS_RM_FORCE = 1u << 0, /* remove even when pinned (the pin goes too) */
};

/* Removes a model: index records (model, chunk index entries, bitmap,
 * signatures, names that point to it) in one transaction, then its data
 * file. Also removes a model whose record or manifest is damaged (verify
 * reports those), which repairs the index. Returns 0, -ENOENT, -EBUSY
 * (pinned, no CAS_RM_FORCE). */
int cas_store_rm(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags);

enum {
    CAS_GC_DRY_RUN = 1u << 0,  /* report, remove nothing */
    CAS_GC_TO_LIMIT = 1u << 1, /* only until the store is under its size limit */
};

typedef struct cas_gc_result {
    uint64_t n_models; /* models removed (or that would be) */
    uint64_t bytes;    /* their data bytes */
} cas_gc_result;

/* Removes unpinned complete models, least recently used first. Without
 * CAS_GC_TO_LIMIT: every one that is not kept (cas_store_keep()). With
 * CAS_GC_TO_LIMIT: kept ones too, after the others, and only until the
 * total size of all models is at most the limit. Partial models are left
 * alone (cas_store_rm() removes them).
 * cb (may be NULL) is called for each model removed or, with CAS_GC_DRY_RUN,
 * that would be. Writes *ret when non-NULL. Returns 0 or a negative errno. */
int cas_store_gc(cas_store *s, unsigned flags, cas_model_fn cb, void *userdata, cas_gc_result *ret);

/* cas_store_gc() with CAS_GC_TO_LIMIT against max_bytes (> 0) instead of the
 * stored limit, which is left as it is (nvx gc --max-bytes). Returns as
 * cas_store_gc(), or -EINVAL for max_bytes 0. */
int cas_store_gc_to(cas_store *s, uint64_t max_bytes, unsigned flags, cas_model_fn cb,
                    void *userdata, cas_gc_result *ret);

/* Makes room under the stored size limit for need more bytes (a model
 * about to be fetched; 0: only get under the limit), as a CAS_GC_TO_LIMIT
 * gc that never removes the n_busy models in busy (being served or
 * fetched). Removes nothing and returns -EDQUOT when even removing every
 * model it may would not make the room (need > 0); with need 0 it removes
 * what it may. No limit: nothing to do. cb and ret as cas_store_gc().
 * Returns 0, -EDQUOT or a negative errno. */
int cas_store_make_room(cas_store *s, uint64_t need, const uint8_t (*busy)[CAS_HASH_LEN],
                        size_t n_busy, cas_model_fn cb, void *userdata, cas_gc_result *ret);

typedef struct cas_store_usage {
    uint64_t n_models, n_complete, n_partial, n_pinned;
    uint64_t bytes;        /* sum of model sizes (complete + partial) */
    uint64_t pinned_bytes; /* of those, pinned */
    uint64_t limit;        /* size limit, 0: none */
} cas_store_usage;

/* Store totals. Returns 0 or a negative errno. */
int cas_store_usage_get(cas_store *s, cas_store_usage *ret);

/* Sets the store size limit in bytes (0: none). Takes effect at the next add
 * (which runs a CAS_GC_TO_LIMIT gc after it commits) or gc. Returns 0. */
int cas_store_limit_set(cas_store *s, uint64_t bytes);

/* ---------------------------------------------------------------------- */
/* Partial models (fetch and resume, issue 3) */

typedef struct cas_partial cas_partial;

/* Creates a partial model from canonical manifest bytes (decoded strictly;
 * the model id is their hash, so a fetcher compares ret_id with the id it
 * asked for before trusting a peer's manifest): an index record in state
 * partial, an empty bitmap and a sparse data file of the model's size. Writes the id to
 * ret_id. Returns 1 when created, 0 when the model already exists (partial:
 * resume with cas_partial_open(); complete: nothing to do, check with
 * cas_store_model_info()), -EBADMSG (manifest does not decode), -ENOSPC. */
int cas_store_partial_create(cas_store *s, const uint8_t *manifest, size_t len,
                             uint8_t ret_id[static CAS_HASH_LEN]);

/* Opens a handle to write chunks of partial model id. Returns 0, -ENOENT,
 * -EINVAL (the model is complete). The handle's functions are thread-safe
 * (an internal mutex). */
int cas_partial_open(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_partial **ret);

/* Frees the handle (NULL is a no-op); chunks put since the last commit are
 * dropped from the bitmap (their bytes may be on disk, they will be fetched
 * again). */
void cas_partial_free(cas_partial *p);

/* Number of chunks of the model and how many are verified (committed or
 * put since). */
uint64_t cas_partial_n_chunks(const cas_partial *p);
uint64_t cas_partial_n_present(cas_partial *p);

/* True when chunk index idx is verified (committed or put). */
bool cas_partial_has(cas_partial *p, uint64_t idx);

/* Describes chunk idx of the manifest: id, offset, length. -EINVAL for idx
 * out of range. */
int cas_partial_chunk(const cas_partial *p, uint64_t idx, uint8_t ret_id[static CAS_HASH_LEN],
                      uint64_t *ret_offset, uint32_t *ret_len);

/* Re-hashes buf against chunk idx of the manifest, then writes it at its
 * offset and marks it present (durable only after cas_partial_commit()).
 * Returns 1 when written, 0 when it was already present, -EBADMSG (wrong
 * length or hash: nothing written), -EINVAL, write errnos. */
int cas_partial_put(cas_partial *p, uint64_t idx, const void *buf, size_t len);

/* cas_partial_put() for a caller that already hashed buf (e.g. several chunks
 * at once with cas_hash_many()): hash must be cas_hash(buf, len). It is
 * compared with chunk idx's id in the manifest here, so a chunk whose hash
 * does not match is never written. Same returns as cas_partial_put(). */
int cas_partial_put_hashed(cas_partial *p, uint64_t idx, const void *buf, size_t len,
                           const uint8_t hash[static CAS_HASH_LEN]);

/* Copies every missing chunk that a complete model of the store holds
 * (cas_store_chunk_read(), re-hashed) into the partial model, and chunks
 * repeated within the model from a present copy to their other indexes
 * (call it again after putting chunks to fill their repeats). Writes to
 * *ret_n (may be NULL) how many chunks were filled. Returns 0 or errno. */
int cas_partial_fill_local(cas_partial *p, uint64_t *ret_n);

/* Makes the chunks put so far durable: fdatasync of the data file, then one
 * LMDB transaction setting their bits. Returns 0 or a negative errno. */
int cas_partial_commit(cas_partial *p);

/* When every chunk is present: commits, makes the data file 0444, and turns
 * the model complete (chunk index entries, bitmap dropped) in one
 * transaction. Returns 0, -EAGAIN (chunks missing), errnos. */
int cas_partial_complete(cas_partial *p);

/* Copies the committed bitmap of model id (bit i of byte i/8, LSB first, set
 * when chunk i is verified; complete models: all ones) into a malloc'd
 * buffer of (n_chunks + 7) / 8 bytes. Returns 0, -ENOENT, -ENOMEM. */
int cas_store_bitmap_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], uint8_t **ret_bits,
                         uint64_t *ret_n_chunks);

/* ---------------------------------------------------------------------- */
/* Names (local name -> model id) */

/* Sets name (1..CAS_STORE_NAME_MAX bytes, no NUL) to point to existing model
 * id, replacing an older binding. Returns 0, -ENOENT (no such model),
 * -EINVAL (bad name). */
int cas_store_name_set(cas_store *s, const char *name, const uint8_t id[static CAS_HASH_LEN]);

/* Looks a name up. Returns 0 and writes ret_id, or -ENOENT. */
int cas_store_name_get(cas_store *s, const char *name, uint8_t ret_id[static CAS_HASH_LEN]);

/* Removes a name. Returns 0 or -ENOENT. */
int cas_store_name_del(cas_store *s, const char *name);

/* Calls cb for every name in byte order; name is NUL-terminated and valid
 * only during the call. Returns 0 or the callback's negative value. */
typedef int (*cas_name_fn)(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN]);
int cas_store_name_list(cas_store *s, cas_name_fn cb, void *userdata);

/* ---------------------------------------------------------------------- */
/* Signatures (opaque blobs attached to a model; libcas/sig.h parses them) */

/*
 * Checks a minisign signature blob (1..CAS_STORE_SIG_MAX bytes) and files it
 * with existing model id (defined in libcas/sig-store.c). A blob that does
 * not parse, names another model, or does not verify under the key the
 * keyring holds for its key id is never stored (-EBADMSG). One whose key
 * the keyring does not hold cannot be checked: it is kept apart (bounded,
 * CAS_STORE_SIG_PENDING_*), never listed by cas_store_sig_list(), and
 * checked by cas_store_sig_recheck() when its key becomes trusted.
 * Identical blobs are stored once. Returns 1 attached, 2 kept apart, 0
 * already present, -EBADMSG, -ENOENT, -EMSGSIZE, -ENOSPC (the kept-apart
 * set is full).
 */
int cas_store_sig_add(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob,
                      size_t len);

/* Calls cb for every attached signature blob of model id (blob valid only
 * during the call). Returns 0 (also when there are none) or the callback's
 * value. */
typedef int (*cas_blob_fn)(void *userdata, const void *blob, size_t len);
int cas_store_sig_list(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_blob_fn cb,
                       void *userdata);

/* As cas_store_sig_list(), for the blobs kept apart (unchecked keys). */
int cas_store_sig_list_pending(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cas_blob_fn cb,
                               void *userdata);

/* Removes one signature blob (matched by its bytes), attached or kept
 * apart. Returns 0 or -ENOENT. */
int cas_store_sig_del(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob,
                      size_t len);

/* ---------------------------------------------------------------------- */
/* Trusted keys (key id -> public key blob + name) */

/* Adds or replaces trusted key key_id (1..CAS_STORE_KEY_ID_MAX bytes; for
 * minisign, the 8-byte key id) with its public key blob and a name (may be
 * NULL or empty; at most CAS_STORE_NAME_MAX bytes). Returns 0, -EINVAL,
 * -EMSGSIZE. */
int cas_store_key_put(cas_store *s, const void *key_id, size_t key_id_len, const void *blob,
                      size_t blob_len, const char *name);

/* Looks up a trusted key: copies the blob into a malloc'd buffer, and the name
 * into a malloc'd string (ret_name may be NULL). Returns 0, -ENOENT. */
int cas_store_key_get(cas_store *s, const void *key_id, size_t key_id_len, uint8_t **ret_blob,
                      size_t *ret_blob_len, char **ret_name);

/* Removes a trusted key. Returns 0, -ENOENT. */
int cas_store_key_del(cas_store *s, const void *key_id, size_t key_id_len);

/* Calls cb for every trusted key in key id order (pointers valid during the
 * call only; name NUL-terminated, maybe ""). */
typedef int (*cas_key_fn)(void *userdata, const uint8_t *key_id, size_t key_id_len,
                          const uint8_t *blob, size_t blob_len, const char *name);
int cas_store_key_list(cas_store *s, cas_key_fn cb, void *userdata);

/* ---------------------------------------------------------------------- */
/* Peers (opaque records for the daemon, issue 3; the daemon may keep other
 * small records here too, e.g. signed name records, under key prefixes of
 * its own) */

/* Stores value under key (1..CAS_STORE_PEER_KEY_MAX bytes; value up to
 * CAS_STORE_PEER_MAX bytes), replacing an older value. Returns 0, -EMSGSIZE,
 * -EINVAL. */
int cas_store_peer_put(cas_store *s, const void *key, size_t key_len, const void *val,
                       size_t val_len);

/* Removes a peer record. Returns 0, -ENOENT. */
int cas_store_peer_del(cas_store *s, const void *key, size_t key_len);

/* Calls cb for every peer record in key order (valid during the call). */
typedef int (*cas_peer_fn)(void *userdata, const uint8_t *key, size_t key_len, const uint8_t *val,
                           size_t val_len);
int cas_store_peer_list(cas_store *s, cas_peer_fn cb, void *userdata);

/* ---------------------------------------------------------------------- */
/* Signed name records (opaque blobs with a sequence number; libcas/namerec.h
 * defines them: key = publisher public key || name) */

/* Stores blob (1..CAS_STORE_NAMEREC_MAX bytes) under key (1..
 * CAS_STORE_NAMEREC_KEY_MAX bytes) with sequence number seq, unless the
 * stored record's sequence is >= seq: the compare and the write are one
 * transaction, so concurrent writers (nvxd, nvx) never lose the higher
 * record. Returns 1 when stored, 0 when the stored one was kept, -EINVAL,
 * -EMSGSIZE. */
int cas_store_namerec_put(cas_store *s, const void *key, size_t key_len, uint64_t seq,
                          const void *blob, size_t len);

/* Copies the record under key: its sequence, and its blob into a malloc'd
 * buffer the caller frees. Returns 0, -ENOENT, -ENOMEM, -EBADMSG (damaged). */
int cas_store_namerec_get(cas_store *s, const void *key, size_t key_len, uint64_t *ret_seq,
                          uint8_t **ret_blob, size_t *ret_len);

/* Removes the record under key. Returns 0 or -ENOENT. */
int cas_store_namerec_del(cas_store *s, const void *key, size_t key_len);

/* Calls cb for every record in key order (pointers valid during the call;
 * damaged values are skipped). Returns 0 or the callback's negative value. */
typedef int (*cas_store_namerec_fn)(void *userdata, const uint8_t *key, size_t key_len,
                                    uint64_t seq, const uint8_t *blob, size_t len);
int cas_store_namerec_list(cas_store *s, cas_store_namerec_fn cb, void *userdata);

/* ---------------------------------------------------------------------- */
/* Repair (FORMAT.md "Repair") */

/* Marks chunks idx[0..n) of model id as missing, in one write transaction,
 * so that they are fetched again or filled from a file: a complete model
 * turns partial (its chunk index entries go, its data file becomes writable,
 * every other chunk stays present); a partial model loses those bits. A
 * missing data file is created (sparse, model-sized). n may be 0 (a complete
 * model then turns partial with every chunk present). Returns 0, -ENOENT,
 * -EINVAL (an index out of range), -EBADMSG (damaged record: nvx rm it). */
int cas_store_chunks_forget(cas_store *s, const uint8_t id[static CAS_HASH_LEN],
                            const uint64_t *idx, size_t n);

/* Fills the missing chunks of p from fd, a file with the model's bytes: for
 * each missing chunk, the bytes at its manifest offset are read, re-hashed
 * and put when they match (durable after cas_partial_commit()). Chunks the
 * file does not hold (shorter, other bytes) stay missing. Writes the number
 * put to ret_n. Returns 0 or a negative errno (read errors, -ENOMEM). */
int cas_partial_fill_fd(cas_partial *p, int fd, uint64_t *ret_n);

#endif
