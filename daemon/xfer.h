/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_XFER_H
#define NVX_DAEMON_XFER_H
/*
 * The transfer engine: one model being fetched from every peer that has
 * it. Sans-I/O, like daemon/picker.c under it and daemon/gossip.c beside
 * it: no libuv, no store, no clock. Events come in as calls (a peer came or
 * went, HAVE, NOT_FOUND, MANIFEST, DATA, a store job finished, a tick with
 * the time); actions go out through nvx_xfer_ops (send a message, hash and
 * store received chunks, commit, finish, drop a peer). daemon/fetch.c is
 * the adapter that runs the actions on the pool and the sessions;
 * tests/daemon/test-xfer.c feeds the engine event sequences directly and
 * tests/daemon/test-swarm-sim.c runs hundreds of engines on a simulated
 * clock.
 *
 * Life of a transfer:
 *   1. nvx_xfer_start(): ops->open(NULL): the adapter reads the store and
 *      answers nvx_xfer_opened(): COMPLETE (done), NEED_MANIFEST, READY
 *      (chunk lengths and the chunks held: a resume).
 *   2. MANIFEST: WANT to every peer; the first that answers HAVE is asked
 *      for the manifest, piece by piece; a whole manifest goes to
 *      ops->open(bytes), which checks it against the id (-EBADMSG: the
 *      sender is punished and the next provider asked).
 *   3. FETCHING: the picker (daemon/picker.h) chooses chunks per peer;
 *      REQUESTs within each peer's window and a memory budget; whole
 *      chunks wait in a ready list and go to ops->store in batches
 *      (several SIMD lanes hash them at once); each stored batch is
 *      announced to the peers that fetch the model too (one HAVE);
 *      ops->commit every NVX_XFER_COMMIT_CHUNKS chunks or
 *      NVX_XFER_COMMIT_MS.
 *   4. VERIFYING: every chunk held and no job running: ops->finish.
 *   5. DONE / FAILED / CANCELLED: CANCEL for what is in flight; once no
 *      job runs, ops->ended(): the adapter releases the store and frees.
 *
 * Re-entrancy: ops->drop_peer and ops->bad_peer may call
 * nvx_xfer_peer_down() before they return (the adapter closes the
 * session); the engine holds no peer across them. ops->send never does.
 * Events other than ticks do not send REQUESTs: they mark the transfer
 * due and the adapter calls nvx_xfer_pump() once per batch of events (one
 * socket read), so the requests freed by several DATA leave in one write.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

enum nvx_xfer_limits {
    NVX_XFER_REQUEST_TIMEOUT_MS = 30000,
    NVX_XFER_COMMIT_CHUNKS = 64,      /* commit a partial after this many chunks */
    NVX_XFER_COMMIT_MS = 2000,        /* ... or this long */
    NVX_XFER_PUT_BATCH = 32,          /* received chunks hashed at once */
    NVX_XFER_HELD_MAX = 16 << 20,     /* requested + received, unwritten bytes */
    NVX_XFER_BUSY_RETRY_MS = 100,     /* after NOT_FOUND BUSY */
    NVX_XFER_NO_PROVIDER_MS = 60000,  /* a fetch nobody answers HAVE fails */
    NVX_XFER_REWANT_MS = 2000,        /* WANT again to peers that had not all */
    NVX_XFER_SLOW_MS = 2000,          /* a request waiting this long is asked elsewhere too */
    NVX_XFER_SLOW_ASK_MAX = 64,       /* ... at most this many per tick */
    NVX_XFER_BENCH_AFTER = 16,        /* a peer that never delivered, after this many
                                       * requests moved away from it ... */
    NVX_XFER_BENCH_MS = 30000,        /* ... is asked nothing new this long */
    NVX_XFER_MANIFEST_SLOW_MS = 1000, /* a late manifest piece: ask more holders */
    NVX_XFER_ADDR_LEN = 128,
    NVX_XFER_BAD_CHUNKS_MAX = 2, /* bad chunks from a session before it is punished */
};

/* Results of the open action (nvx_xfer_opened), besides negative errnos. */
enum nvx_xfer_open_result {
    NVX_XFER_OPEN_COMPLETE = 1,
    NVX_XFER_OPEN_NEED_MANIFEST = 2,
    NVX_XFER_OPEN_READY = 3,
};

typedef struct nvx_xfer nvx_xfer;

/* What the engine knows of a session when it comes up. */
typedef struct nvx_xfer_peer_info {
    uint8_t id[32];
    const char *addr; /* copied */
    uint32_t piece;   /* largest REQUEST length on this link */
    uint64_t window;  /* initial request window, bytes (0: the picker's) */
} nvx_xfer_peer_info;

/* A whole received chunk on its way to the store. The engine owns it; the
 * store action sets res (0 or 1 stored, -EBADMSG the hash is wrong, other
 * negative errno the store failed) and hands it back in nvx_xfer_stored. */
typedef struct nvx_xfer_chunk {
    struct nvx_xfer_chunk *next;
    uint32_t idx, len;
    const uint8_t *data; /* len bytes, within mem */
    uint8_t *mem;        /* freed with the chunk */
    uint8_t sender[32];
    char sender_addr[NVX_XFER_ADDR_LEN];
    int res;
} nvx_xfer_chunk;

typedef struct nvx_xfer_ops {
    /* Queue m for peer. Never calls back into the engine. */
    void (*send)(void *arg, void *peer, const proto_msg *m);
    /* Messages queued for peer may leave now. */
    void (*flush)(void *arg, void *peer);
    /* n consecutive request ids unused on peer's session; returns the first. */
    uint32_t (*req_ids)(void *arg, void *peer, uint32_t n);
    /* The buffer holding the DATA being handled (malloc'd, *cap bytes),
     * now the engine's; NULL when it cannot be taken (then copied). */
    uint8_t *(*take_msg)(void *arg, void *peer, size_t *cap);
    /* Read the model's state; with manifest (len bytes, now the adapter's),
     * first check it against the id and create the partial model. Answer:
     * nvx_xfer_opened(). */
    void (*open)(void *arg, uint8_t *manifest, uint32_t len);
    /* Hash and store n chunks; answer nvx_xfer_stored() with the same. */
    void (*store)(void *arg, nvx_xfer_chunk **chunks, unsigned n);
    void (*commit)(void *arg); /* answer: nvx_xfer_committed() */
    void (*finish)(void *arg); /* complete the model; answer: nvx_xfer_finished() */
    /* The session broke the protocol or stalled: close it. */
    void (*drop_peer)(void *arg, void *peer, const char *why);
    /* The peer with this id sent bad bytes: close it and keep it away. */
    void (*bad_peer)(void *arg, const uint8_t id[32], const char *addr, const char *what);
    /* The transfer ended and no action is outstanding: free it. */
    void (*ended)(void *arg);
    /* Download limits (may be NULL: unlimited). rate_avail: bytes the
     * transfer may REQUEST now (0: none until a later pump; ticks pump);
     * rate_used: bytes it requested since the last call (may exceed what
     * was available by one chunk: the limit's debt). */
    uint64_t (*rate_avail)(void *arg, uint64_t now_ms);
    void (*rate_used)(void *arg, uint64_t bytes);
} nvx_xfer_ops;

/* Counters for progress reports. */
typedef struct nvx_xfer_stats {
    int state; /* enum proto_ctl_state */
    int error; /* once ended: 0 or a negative errno */
    uint64_t bytes_done, bytes_total, chunks_done, chunks_total;
    uint64_t rate; /* bytes/s, updated by ticks */
    size_t peers;  /* peers that have some of the model */
    bool endgame;
    uint64_t pending;  /* bytes received, not yet stored */
    uint64_t inflight; /* bytes requested, not yet received */
    /* Ended with -ENODATA: chunks that every provider refused (NOT_FOUND
     * CHUNK or bytes that fail its hash) and no other could serve for the
     * no-provider timeout. The first of them, where it lies in the model,
     * how many sessions refused it; how many such chunks. */
    bool has_fail_chunk;
    uint32_t fail_chunk, fail_chunk_len, fail_tried, fail_chunks;
    uint64_t fail_offset;
} nvx_xfer_stats;

/* Creates a transfer of model id. seed makes the picker's random choices
 * (nvxd: from libsodium; a simulation: from its seed). */
int nvx_xfer_new(const nvx_xfer_ops *ops, void *arg, const uint8_t id[static 32], uint64_t seed,
                 uint64_t now_ms, nvx_xfer **ret);
void nvx_xfer_free(nvx_xfer *x);
/* Request window limits per peer, bytes (see nvx_picker_windows); before
 * nvx_xfer_start. nvxd keeps the picker's; a simulation of a small model
 * scales them down with it. */
void nvx_xfer_windows(nvx_xfer *x, uint64_t min, uint64_t init, uint64_t max);
void nvx_xfer_start(nvx_xfer *x);
/* The transfer fails (-EHOSTUNREACH) once no peer has had the model for
 * ms (default NVX_XFER_NO_PROVIDER_MS), before or after the manifest; and
 * (-ENODATA, nvx_xfer_stats names the chunk) once nothing is left to fetch
 * but chunks that every holder refused, for as long. */
void nvx_xfer_set_timeout(nvx_xfer *x, uint64_t ms);
/* Work done merging HAVEs so far (bytes of bitmap touched plus chunks new
 * to a peer): what a flood of HAVEs could make the engine do, for tests. */
uint64_t nvx_xfer_work(const nvx_xfer *x);

/* Events. */
void nvx_xfer_opened(nvx_xfer *x, int res, uint32_t n_chunks, const uint32_t *chunk_len,
                     const uint8_t *have_bits, uint64_t now_ms);
void nvx_xfer_peer_up(nvx_xfer *x, void *peer, const nvx_xfer_peer_info *info);
void nvx_xfer_peer_down(nvx_xfer *x, void *peer);
void nvx_xfer_peer_wants(nvx_xfer *x, void *peer); /* peer asked us for this model */
void nvx_xfer_have(nvx_xfer *x, void *peer, const proto_chunkset *set);
void nvx_xfer_not_found(nvx_xfer *x, void *peer, const proto_not_found *nf, uint64_t now_ms);
void nvx_xfer_manifest(nvx_xfer *x, void *peer, const proto_manifest *m);
/* Returns the payload bytes accepted (0: not asked for, ignored). */
uint32_t nvx_xfer_data(nvx_xfer *x, void *peer, const proto_data *d, uint64_t now_ms);
void nvx_xfer_stored(nvx_xfer *x, nvx_xfer_chunk **chunks, unsigned n, uint64_t now_ms);
void nvx_xfer_committed(nvx_xfer *x, int res, uint64_t now_ms);
void nvx_xfer_finished(nvx_xfer *x, int res);
void nvx_xfer_tick(nvx_xfer *x, uint64_t now_ms, uint64_t tick_ms);
void nvx_xfer_pump(nvx_xfer *x, uint64_t now_ms);
bool nvx_xfer_pump_due(const nvx_xfer *x);
/* Ends the transfer (state FAILED or CANCELLED, error a negative errno). */
void nvx_xfer_end(nvx_xfer *x, int state, int error);

/* Queries. */
const uint8_t *nvx_xfer_id(const nvx_xfer *x);
bool nvx_xfer_ending(const nvx_xfer *x);
bool nvx_xfer_finishing(const nvx_xfer *x);
void nvx_xfer_stats_get(const nvx_xfer *x, nvx_xfer_stats *st);
/* True when this transfer received chunk idx, verified it against its id
 * and stored it (chunks found on disk at the start are not counted): the
 * serve path need not hash those bytes again (daemon/serve.c). */
bool nvx_xfer_fresh(const nvx_xfer *x, uint32_t idx);
/* The peers that have some or all of the model, up to cap; returns how many. */
size_t nvx_xfer_holders(const nvx_xfer *x, void **peers, size_t cap);

#endif
