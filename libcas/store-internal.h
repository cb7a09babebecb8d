/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_STORE_INTERNAL_H
#define NVX_LIBCAS_STORE_INTERNAL_H
/*
 * Internals shared by the store's source files (store.c, store-model.c,
 * store-add.c, store-io.c, store-partial.c, store-meta.c). Not installed. Record layouts
 * are documented in libcas/FORMAT.md, section "Store".
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "common/bytes.h"
#include "libcas/manifest.h"
#include "libcas/store.h"

#define CAS__STORE_MARKER     "nvx-store"
#define CAS__STORE_INDEX_DIR  "index"
#define CAS__STORE_DATA_DIR   "data"
#define CAS__STORE_TMP_DIR    "tmp"
#define CAS__STORE_MAX_DBS    16u
#define CAS__MODEL_REC_LEN    32u /* model record header before the manifest bytes */
#define CAS__MODEL_REC_VER    1u
#define CAS__CHUNK_LOC_LEN    (CAS_HASH_LEN + 8u + 4u)
#define CAS__CHUNK_READ_TRIES 8u                   /* models tried by cas_store_chunk_read */
#define CAS__PROGRESS_STEP    ((uint64_t)16 << 20) /* bytes between progress calls */
#define CAS__RESERVE_NAME     "reserve"            /* DIR/reserve: space kept for removals */
/* meta key prefix of a removal that unlinks the data file first (disk full):
 * "removing" || model id. FORMAT.md "Remove on a full disk". */
#define CAS__REMOVING_KEY     "removing"
#define CAS__REMOVING_KEY_LEN 8u
/* Below this much free space on the index's file system an -ENOSPC is the
 * disk's, not the map's, so the map is not grown for it. */
#define CAS__MAP_GROW_DISK_MIN ((uint64_t)4 << 20)

struct cas_store {
    char *dir;
    int dir_fd;  /* DIR */
    int data_fd; /* DIR/data, for fsync and openat */
    int tmp_fd;  /* DIR/tmp */
    MDB_env *env;
    MDB_dbi db_meta;         /* "meta": config and version */
    MDB_dbi db_models;       /* model id -> model record (header + manifest) */
    MDB_dbi db_chunks;       /* chunk id -> dup sorted (model id, offset, len) */
    MDB_dbi db_pins;         /* model id -> u64 pin time (ns) */
    MDB_dbi db_names;        /* name -> model id */
    MDB_dbi db_bitmaps;      /* model id -> bitmap of verified chunks (partial) */
    MDB_dbi db_sigs;         /* model id | hash(blob) -> blob */
    MDB_dbi db_keys;         /* key id -> u16 name len | name | blob */
    MDB_dbi db_peers;        /* key -> value */
    MDB_dbi db_namerecs;     /* publisher public key | name -> u64 seq | record blob */
    MDB_dbi db_namerecs_v1;  /* legacy (key id | name), emptied at open: FORMAT.md */
    MDB_dbi db_sigs_pending; /* model id | hash(blob) -> blob, key not trusted */
    MDB_dbi db_kept;         /* model id -> u64 time kept (ns): fetched, quota may evict */
    MDB_dbi db_used;         /* model id -> u64 last use (ns) */
    /* Held shared by every transaction from begin to end, exclusively while
     * the map is resized: mdb_env_set_mapsize() remaps the file, which must
     * not happen under another thread's open transaction (lmdb.h). */
    pthread_rwlock_t map_lock;
    size_t map_max; /* the map never grows past this */
};

/* A decoded model record header; manifest points into the LMDB value (valid
 * until the transaction ends). */
typedef struct cas__model_rec {
    cas_model_state state;
    uint64_t added_ns;
    uint64_t size;
    uint64_t n_chunks;
    const uint8_t *manifest;
    size_t manifest_len;
} cas__model_rec;

/* Crash points of the write protocol (FORMAT.md "Store"), for tests: when
 * cas__crash_hook is set, it is called at each point (a test child _exit()s
 * there to simulate a crash at that instant). NULL in normal use. */
typedef enum cas__crash_point {
    CAS__CP_ADD_WRITTEN,        /* temp file written, not synced */
    CAS__CP_ADD_SYNCED,         /* temp file fdatasync'd */
    CAS__CP_ADD_RENAMED,        /* in the write txn: renamed, dir not synced */
    CAS__CP_ADD_PRE_COMMIT,     /* in the write txn: dir synced, records put */
    CAS__CP_ADD_COMMITTED,      /* committed, temp fd still open */
    CAS__CP_RM_COMMITTED,       /* records deleted, file not unlinked */
    CAS__CP_PARTIAL_FILE,       /* in the write txn: data file created */
    CAS__CP_PARTIAL_SYNCED,     /* commit: data synced, bitmap not written */
    CAS__CP_PARTIAL_PRE_COMMIT, /* commit/complete: records put, not committed */
    CAS__CP_RM_MARKED,          /* disk-full rm: removal mark committed, file kept */
    CAS__CP_RM_UNLINKED,        /* disk-full rm: data file unlinked, records kept */
    CAS__CP_FORGET_PRE_COMMIT,  /* chunks_forget: file writable, records put */
    _CAS__CP_MAX,
} cas__crash_point;

extern void (*cas__crash_hook)(cas__crash_point cp);

/* For tests: LMDB map size of stores opened from now on (0: the default,
 * CAS_STORE_MAP_SIZE), to reach MDB_MAP_FULL quickly. */
extern size_t cas__map_size;

/* For tests: verify and export read with pread, never through a mapping
 * (the path taken where mapping fails: store-io.c). */
extern bool cas__io_no_map;

static inline void
cas__crash_point_reached(cas__crash_point cp)
{
    if (cas__crash_hook)
        cas__crash_hook(cp);
}

/* Converts an LMDB return code (0, positive errno, negative MDB_*) into 0 or a
 * negative errno: MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL/MDB_TXN_FULL ->
 * -ENOSPC, MDB_KEYEXIST -> -EEXIST, MDB_CORRUPTED/MDB_PAGE_NOTFOUND/
 * MDB_INVALID/MDB_VERSION_MISMATCH -> -EBADMSG, other MDB_* -> -EIO. */
int cas__mdb_err(int rc);

/* BLAKE2b-256 of n messages (bufs[i], lens[i]) into ret[i]: several at once
 * with AVX-512 where the CPU has it (store-hash.c), else cas_hash(). */
void cas__hash_many(const uint8_t *const *bufs, const size_t *lens, size_t n,
                    uint8_t (*ret)[CAS_HASH_LEN]);

/* Current wall-clock time in nanoseconds since the epoch. */
uint64_t cas__now_ns(void);

/* Begins a transaction (read-only when rdonly); it holds s->map_lock shared
 * until cas__txn_commit() or cas__txn_abort() ends it, so every transaction
 * must end through those two. A write transaction first grows the map when
 * more than half of it is used and no other transaction of this process is
 * open; a map grown by another process (MDB_MAP_RESIZED) is adopted. A
 * thread never begins a transaction while it holds one. Returns 0 or a
 * negative errno. */
int cas__txn_begin(cas_store *s, bool rdonly, MDB_txn **ret);

/* Aborts txn (NULL is a no-op) and releases its hold on the map lock. */
void cas__txn_abort(MDB_txn *txn);

/* Called after a write transaction failed with -ENOSPC, holding no
 * transaction: doubles the LMDB map (at most s->map_max) unless the index's
 * file system is itself full. Returns 1 when the map grew (run the
 * transaction again), 0 when it cannot help, or a negative errno. */
int cas__map_grow(cas_store *s);

/* Space reserve (FORMAT.md "Remove on a full disk"): cas__reserve_make()
 * preallocates DIR/reserve (best effort, no error when the disk is full);
 * cas__reserve_release() unlinks it so that a removal can commit. */
void cas__reserve_make(cas_store *s);
void cas__reserve_release(cas_store *s);

/* Removes model id in the disk-full order: release the reserve, commit a
 * removal mark, then under one write transaction unlink the data file and
 * delete the records and the mark. Same returns as cas_store_rm(). Exposed
 * for the crash tests, which cannot fill a disk. */
int cas__rm_unlink_first(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags);

/* At open: finishes removals whose mark survived a crash. */
int cas__rm_finish_marked(cas_store *s);

/* Moves the name records of a store written before records were keyed by
 * public key (db_namerecs_v1) into db_namerecs, inside txn (store open).
 * Returns 0 or an LMDB error as negative errno. */
int cas__namerec_migrate(cas_store *s, MDB_txn *txn);

/* Puts a signature blob into the attached (db_sigs) or the kept-apart
 * (db_sigs_pending, bounded by CAS_STORE_SIG_PENDING_*) set of model id,
 * unchecked: callers are libcas/sig-store.c, which checks first. Returns 1
 * stored, 0 already there, -ENOENT no such model, -ENOSPC kept-apart set
 * full, -EMSGSIZE, -EINVAL. */
int cas__sig_put(cas_store *s, bool pending, const uint8_t id[static CAS_HASH_LEN],
                 const void *blob, size_t len);

/* Calls cb for every kept-apart (pending) or attached blob of every model
 * (key = model id || hash, 64 bytes; pointers valid during the call). */
typedef int (*cas__sig_fn)(void *userdata, const uint8_t *key, const void *blob, size_t len);
int cas__sig_list_all(cas_store *s, bool pending, cas__sig_fn cb, void *userdata);

/* Moves a kept-apart blob of model id to the attached set, in one
 * transaction (its key became trusted and it verified). 0 or -ENOENT. */
int cas__sig_unpend(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob,
                    size_t len);

/* Commits txn (always consumed). Returns 0 or errno. */
int cas__txn_commit(MDB_txn *txn);

/* Reads and decodes the model record of id in txn. -ENOENT, -EBADMSG. */
int cas__model_get(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
                   cas__model_rec *ret);

/* Writes a model record (header + manifest bytes) for id in txn. */
int cas__model_put(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
                   const cas__model_rec *rec);

/* Adds chunk index entries (one per chunk of m, located in model id). */
int cas__chunks_index(cas_store *s, MDB_txn *txn, const cas_manifest *m);

/* Removes every chunk index entry of model m. */
int cas__chunks_unindex(cas_store *s, MDB_txn *txn, const cas_manifest *m);

/* True when id is pinned in txn. */
bool cas__is_pinned(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN]);

/* True when id carries the kept mark in txn (store-use.c). */
bool cas__is_kept(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN]);

/* The last use of id in ns (db_used), or added_ns when none was recorded. */
uint64_t cas__used_ns(cas_store *s, MDB_txn *txn, const uint8_t id[static CAS_HASH_LEN],
                      uint64_t added_ns);

/* Name of a model's data file relative to DIR/data: 64 hex characters. */
void cas__data_name(const uint8_t id[static CAS_HASH_LEN], char ret[static CAS_HASH_HEX_LEN + 1]);

/* fsync() of a directory fd; returns 0 or -errno. */
int cas__fsync_dir(int fd);

/* Checks the size limit inside a write txn before a model of `size` bytes
 * (not yet in the store) is added: -ENOSPC when the pinned content plus size
 * is over the limit (plus_pinned: size counts as pinned anyway). */
int cas__limit_check(cas_store *s, MDB_txn *txn, uint64_t size);

/* Runs a CAS_GC_TO_LIMIT gc that never removes `keep` (may be NULL). */
int cas__gc_to_limit(cas_store *s, const uint8_t *keep);

/* pread/pwrite/write loops over short transfers and EINTR; 0 or -errno
 * (a pread past EOF returns -EBADMSG: a data file shorter than its model). */
int cas__pread_full(int fd, void *buf, size_t len, uint64_t off);
int cas__pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int cas__write_full(int fd, const void *buf, size_t len);

/* Reads the chunk at loc from its data file into buf and re-hashes it
 * against chunk. Returns 0, -EBADMSG, -errno. */
int cas__chunk_read_at(cas_store *s, const cas_chunk_loc *loc,
                       const uint8_t chunk[static CAS_HASH_LEN], void *buf);

#endif
