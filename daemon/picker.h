/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_PICKER_H
#define NVX_DAEMON_PICKER_H
/*
 * The chunk picker of one transfer: which chunk to ask which peer for next.
 * Sans-I/O: no sockets, no clocks (time is passed in), no store; the node
 * (daemon/node.c) or a simulation drives it.
 *
 * Policy (after BitTorrent's piece picker and libtorrent's request queue):
 *   - Rarest first: of the missing chunks nobody is fetching, the peer gets
 *     the one the fewest connected peers have. Ties: a seeded picker
 *     (nvx_picker_seed, as nvxd does) takes the first one after a random
 *     chunk, so fetchers that start together spread over the model and
 *     trade; unseeded, the lowest index (sequential writes, for tests).
 *   - A per-peer window of bytes outstanding. It follows the peer's measured
 *     throughput: window = rate * NVX_PICKER_WINDOW_MS, between
 *     NVX_PICKER_WINDOW_MIN and NVX_PICKER_WINDOW_MAX. A window that is
 *     always full measures a rate of window / RTT, so it grows until the
 *     link (not the window) is the bottleneck and half a second of data is
 *     queued — enough to ride out jitter, small enough to cancel.
 *   - Endgame: once every missing chunk is requested from someone and at
 *     most NVX_PICKER_ENDGAME_MISSING chunks are missing, a peer with room
 *     in its window duplicates chunks in flight elsewhere (at most
 *     NVX_PICKER_ENDGAME_DUP requests per chunk); when one copy verifies,
 *     nvx_picker_holders() names the peers whose duplicates to CANCEL. (The
 *     limit keeps a large window from turning a whole small model into
 *     duplicates.)
 *   - A chunk whose bytes arrived is VERIFYING: not requested again unless
 *     verification fails (nvx_picker_verified(ok = false)), which puts it
 *     back into the pool. The node drops the peer that sent it.
 *
 * Chunk states: MISSING (maybe in flight at up to NVX_PICKER_ENDGAME_DUP
 * peers), VERIFYING, HAVE.
 *
 * Memory: 4 bytes per chunk plus each peer's in-flight list.
 * Thread safety: none; one transfer belongs to one thread (the loop).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nvx_picker_limits {
    NVX_PICKER_CHUNKS_MAX = 1 << 20,    /* as PROTO_CHUNKS_MAX */
    NVX_PICKER_WINDOW_MIN = 512 * 1024, /* bytes outstanding per peer, floor */
    NVX_PICKER_WINDOW_INIT = 2 * 1024 * 1024,
    NVX_PICKER_WINDOW_MAX = 64 * 1024 * 1024,
    NVX_PICKER_WINDOW_MS = 500,      /* target: this much data queued */
    NVX_PICKER_RATE_SAMPLE_MS = 200, /* throughput sample interval */
    NVX_PICKER_ENDGAME_DUP = 2,      /* most requests for one chunk */
    NVX_PICKER_ENDGAME_MISSING = 32, /* endgame only with this few chunks left */
    NVX_PICKER_REQS_MAX = 512,       /* chunks in flight per peer */
    NVX_PICKER_PEERS_MAX = 4096,
};

typedef struct nvx_picker nvx_picker;
typedef struct nvx_picker_peer nvx_picker_peer;

/* Creates a picker for n_chunks chunks (1..NVX_PICKER_CHUNKS_MAX) whose
 * lengths chunk_len[] are copied. Every chunk starts MISSING. Returns 0,
 * -EINVAL, -ENOMEM. */
int nvx_picker_new(uint32_t n_chunks, const uint32_t *chunk_len, nvx_picker **ret);

/* Breaks ties between equally rare chunks at random from now on, drawing
 * from seed (the caller's randomness: the picker has no source of its
 * own, so a simulation can replay a run). */
void nvx_picker_seed(nvx_picker *pk, uint64_t seed);

/* Window limits in bytes instead of NVX_PICKER_WINDOW_MIN/_INIT/_MAX (a
 * simulation scales them with its model; max >= min > 0, else ignored).
 * Applies to peers added afterwards. */
void nvx_picker_windows(nvx_picker *pk, uint64_t min, uint64_t init, uint64_t max);

/* Frees the picker and its peers (NULL is a no-op). */
void nvx_picker_free(nvx_picker *pk);

/* Marks chunk idx present before any peer is added (resume from the
 * store's bitmap, chunks copied locally). */
void nvx_picker_set_have(nvx_picker *pk, uint32_t idx);

bool nvx_picker_has(const nvx_picker *pk, uint32_t idx);
uint32_t nvx_picker_n_chunks(const nvx_picker *pk);
uint32_t nvx_picker_n_have(const nvx_picker *pk);
/* True when every chunk is HAVE. */
bool nvx_picker_done(const nvx_picker *pk);
/* True once the endgame has started (every missing chunk requested). */
bool nvx_picker_endgame(const nvx_picker *pk);

/* Adds a peer that has the chunks of bits (nbits bits, LSB-first as in a
 * proto BITMAP; bits beyond nbits count as absent) or every chunk when bits
 * is NULL. user is returned by nvx_picker_peer_user(). window_init: first
 * window in bytes (0: NVX_PICKER_WINDOW_INIT; e.g. from the link's bandwidth
 * hint). Returns 0, -ENOMEM, -ENOSPC (too many peers). */
int nvx_picker_peer_add(nvx_picker *pk, const uint8_t *bits, uint32_t nbits, uint64_t window_init,
                        void *user, nvx_picker_peer **ret);

/* The peer announced one more chunk (HAVE after it fetched it). */
void nvx_picker_peer_have(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx);

/* The peer cannot serve chunk idx after all (it answered NOT_FOUND for it,
 * or its copy failed verification): it stops counting as a holder of idx
 * and is not asked for it again; its other chunks stay. A peer that had
 * every chunk gets a bitmap of its own here (n_chunks / 8 bytes, once).
 * Its request for idx, if any, is released. Returns 0, -ENOMEM (nothing
 * changed: the caller stops asking the peer anything instead). */
int nvx_picker_peer_lose(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx);

/* How many peers hold chunk idx (those with every chunk included). */
uint32_t nvx_picker_avail(const nvx_picker *pk, uint32_t idx);

/* Removes a peer (disconnected, bad, left the transfer): its requests are
 * released and their chunks go back to the pool. pp is freed. */
void nvx_picker_peer_remove(nvx_picker *pk, nvx_picker_peer *pp);

void *nvx_picker_peer_user(const nvx_picker_peer *pp);
uint64_t nvx_picker_peer_window(const nvx_picker_peer *pp);
uint64_t nvx_picker_peer_inflight(const nvx_picker_peer *pp); /* bytes */
uint64_t nvx_picker_peer_rate(const nvx_picker_peer *pp);     /* bytes/s, EWMA */

/* The next chunk to request from pp, marked in flight at pp; -1 when its
 * window is full or it has nothing useful. now_ms: caller's monotonic
 * clock. */
int64_t nvx_picker_next(nvx_picker *pk, nvx_picker_peer *pp, uint64_t now_ms);

/* True when pp could be asked for idx now: idx is MISSING, pp has it and
 * is not asked for it yet, and pp's window has room. */
bool nvx_picker_peer_can_take(const nvx_picker *pk, const nvx_picker_peer *pp, uint32_t idx);

/* Asks pp for idx, though another peer may have it in flight: the caller
 * saw that request wait too long (a slow peer; daemon/xfer.c). As endgame
 * duplicates: at most NVX_PICKER_ENDGAME_DUP requests per chunk, the first
 * copy wins and nvx_picker_holders() names the others to cancel. Returns
 * 0; -EAGAIN when nvx_picker_peer_can_take() is false or idx has enough
 * copies in flight; -ENOMEM. */
int nvx_picker_dup(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx, uint64_t now_ms);

/* All bytes of chunk idx arrived from pp. Releases pp's request and feeds
 * its throughput estimate. Returns 1 when the node should verify and store
 * the bytes (the chunk is now VERIFYING), 0 when they are redundant (another
 * copy is verifying or stored: drop them), -ENOENT when pp had not been
 * asked for idx (unsolicited: drop them). */
int nvx_picker_received(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx, uint64_t now_ms);

/* Verification of a VERIFYING chunk finished: ok -> HAVE; else MISSING
 * again (requested anew; drop the peer that sent it). */
void nvx_picker_verified(nvx_picker *pk, uint32_t idx, bool ok);

/* Releases pp's request for idx without data (NOT_FOUND, timeout, CANCEL
 * sent). No-op when pp has no such request. */
void nvx_picker_cancel(nvx_picker *pk, nvx_picker_peer *pp, uint32_t idx);

/* The peer answered BUSY (its request queue is full): halves its window
 * (not below NVX_PICKER_WINDOW_MIN) so fewer requests queue there. */
void nvx_picker_peer_busy(const nvx_picker *pk, nvx_picker_peer *pp);

/* Writes up to cap peers that have idx in flight; returns how many. */
size_t nvx_picker_holders(const nvx_picker *pk, uint32_t idx, nvx_picker_peer **out, size_t cap);

/* ---- Bad peers --------------------------------------------------------- */

enum {
    NVX_BADLIST_MAX = 256,
    NVX_BADLIST_MS = 10 * 60 * 1000, /* how long a peer that sent bad data is refused */
};

/* Node ids (32 bytes) refused until a time. Embed, zero-initialise. */
typedef struct nvx_badlist {
    size_t n;
    struct {
        uint8_t id[32];
        uint64_t until_ms;
    } e[NVX_BADLIST_MAX];
} nvx_badlist;

/* Remembers id as bad until now_ms + NVX_BADLIST_MS (the oldest entry makes
 * room when full). */
void nvx_badlist_add(nvx_badlist *b, const uint8_t id[static 32], uint64_t now_ms);

/* True when id is bad at now_ms. */
bool nvx_badlist_has(const nvx_badlist *b, const uint8_t id[static 32], uint64_t now_ms);

/* The badlist key of a transport address's host ("HOST:PORT", "[V6]:PORT";
 * the port is dropped): BLAKE2b of "addr:" + host, so a host is refused
 * whatever key or port it comes back with. False, and no key, for a
 * loopback host: every local process shares it, and their node keys are
 * what tells them apart. */
bool nvx_badlist_addr_key(const char *addr, uint8_t key[static 32]);

#endif
