/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_NODE_H
#define NVX_DAEMON_NODE_H
/*
 * The node: peer sessions over any transport (transport/tp.h), serving
 * chunks from the store and fetching models into it. It owns no sockets of
 * its own beyond the tp_net it is given, so the same code runs over TCP in
 * nvxd and over transport/mem.h in a simulation. The control socket
 * (daemon/ctl.h) and main() sit on top of it.
 *
 * Threads: every function runs on the loop thread of opts.loop. Store work
 * (LMDB, reads, hashing, writes) goes to the libuv thread pool through
 * uv_queue_work; callbacks come back on the loop.
 *
 * Serving (daemon/serve.c): a chunk is read and re-hashed on the pool the
 * first time it is served, so one that rotted on disk is never sent
 * (NOT_FOUND instead); later requests for it are read on the loop when its
 * bytes are in the page cache. Requests a peer queues are bounded
 * (opts.peer_max_requests; more get NOT_FOUND BUSY), and so are the bytes
 * in flight towards one peer (opts.peer_max_bytes) and towards all peers
 * together (NVX_NODE_SERVE_MAX_BYTES).
 *
 * Fetching: see nvx_node_fetch().
 *
 * Hooks for other modules (fetch, serve, discovery, gossip):
 * nvx_node_hook_add().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/share.h"
#include "libcas/store.h"
#include "proto/control.h"
#include "proto/message.h"
#include "proto/session.h"
#include "transport/tp.h"

enum nvx_node_limits {
    NVX_NODE_TICK_MS = 250,
    NVX_NODE_DIAL_BACKOFF_MIN_MS = 1000,
    NVX_NODE_DIAL_BACKOFF_MAX_MS = 60000,
    NVX_NODE_SERVE_JOBS = 8,             /* reads on the pool per peer at once */
    NVX_NODE_PEER_META_JOBS = 64,        /* WANT/MANIFEST_REQ/SIGS_REQ jobs per peer */
    NVX_NODE_SERVE_MAX_BYTES = 16 << 20, /* sent bytes in flight, all peers */
    NVX_NODE_PIECE_MAX = 256 * 1024,     /* largest REQUEST length */
    NVX_NODE_XFERS_MAX = 64,
    NVX_NODE_HANDSHAKING_MAX = 16, /* inbound connections still handshaking (admit.h) */
    /* A session that received nothing for this long is dead (a silent
     * stall: no reset, no end); a third of it without traffic sends PING. */
    NVX_NODE_PEER_TIMEOUT_MS = 60000,
};

typedef struct nvx_node nvx_node;
typedef struct nvx_peer nvx_peer;

typedef struct nvx_node_opts {
    uv_loop_t *loop;
    tp_net *net;                    /* borrowed; outlives the node */
    cas_store *store;               /* borrowed; outlives the node */
    const proto_identity *identity; /* borrowed */
    const char *listen;             /* NULL: do not listen */
    const char *const *peers;       /* addresses to dial (besides the store's peers db) */
    size_t n_peers;
    unsigned max_peers;          /* 0: 64 (a quarter is kept for dialing: daemon/admit.h) */
    unsigned inbound_per_addr;   /* inbound sessions per address; 0: NVX_ADMIT_PER_ADDR_DEFAULT */
    unsigned inbound_per_prefix; /* ... per /24 or /48; 0: NVX_ADMIT_PER_PREFIX_DEFAULT */
    /* Test-only: apply the per-prefix cap to 127.0.0.0/8 too, so tests on
     * loopback exercise it (real addresses are always capped). */
    bool prefix_loopback;
    unsigned peer_max_requests; /* 0: 1024 */
    uint64_t peer_max_bytes;    /* 0: 8 MiB */
    const char *agent;          /* HELLO agent, e.g. "nvxd/0.1.0" */
    bool no_relay;              /* HELLO without PROTO_FEAT_REVERSE (nvxd --no-relay) */
    /* What peers may see and fetch (daemon/share.h); 0 = pinned. */
    nvx_serve_policy serve;
    /* Test-only fault injection: flip a byte of every DATA this node sends
     * (nvxd sets it from NVX_TEST_CORRUPT_SERVE=1 in builds with
     * -Dnvx_test_hooks, see daemon/meson.build). */
    bool corrupt_serve;
    /* Test-only: sleep this long before serving each chunk
     * (NVX_TEST_SERVE_DELAY_MS), so tests can interrupt a transfer. */
    unsigned serve_delay_ms;
    /* Test-only: sleep this long per received chunk before writing it
     * (NVX_TEST_PUT_DELAY_MS), a disk slower than the link. */
    unsigned put_delay_ms;
    /* A session silent this long is closed (PING after a third of it);
     * 0: NVX_NODE_PEER_TIMEOUT_MS. Tests lower it. */
    uint32_t peer_timeout_ms;
    /* Bandwidth limits, bytes/s (0: unlimited; daemon/ratelimit.h): model
     * data served to peers, and requested by all fetches together. */
    uint64_t upload_rate, download_rate;
    /* Called on the loop when a fetch completed model id and it is shared
     * under the serve policy (e.g. to announce it through gossip at once).
     * May be NULL. */
    void (*fetched)(void *arg, const uint8_t id[32]);
    void *arg;
} nvx_node_opts;

/* Creates the node and starts listening and dialing. Returns 0, errnos of
 * tp_listen (-EADDRINUSE, -EINVAL), -ENOMEM. */
int nvx_node_new(const nvx_node_opts *opts, nvx_node **ret);

/* Stops the node: no new work; transfers are cancelled (their verified
 * chunks committed, in-flight ones discarded), sessions get BYE, listener
 * and connections close, pool jobs drain. done runs once everything is
 * closed; then nvx_node_free(). */
void nvx_node_stop(nvx_node *n, void (*done)(void *arg), void *arg);

/* Frees a stopped node (NULL is a no-op). */
void nvx_node_free(nvx_node *n);

/* The address the listener bound ("127.0.0.1:40123"), "" when none. */
const char *nvx_node_listen_addr(const nvx_node *n);

/* The address the router maps to our listener (daemon/natmap.h), "" when
 * none. Sessions that start after the call advertise it first in HELLO
 * (so peer exchange passes it on), then the listening address; the DHT
 * announce uses it too. NULL or "" clears it. */
void nvx_node_set_ext_addr(nvx_node *n, const char *addr);
const char *nvx_node_ext_addr(const nvx_node *n);
const uint8_t *nvx_node_id(const nvx_node *n);

/* ---- Configured peers ------------------------------------------------- */

/* Adds a peer to dial (and keep dialing with backoff); persist: also store
 * it in the store's peers db (on the pool). Returns 0, -EEXIST, -EINVAL,
 * -ENOMEM. */
int nvx_node_peer_add(nvx_node *n, const char *addr, bool persist);

/* Removes a configured peer (closes its connection, drops it from the peers
 * db). Returns 0 or -ENOENT. */
int nvx_node_peer_rm(nvx_node *n, const char *addr);

/* Calls cb for every configured peer address. */
void nvx_node_peer_list(nvx_node *n, void (*cb)(void *arg, const char *addr), void *arg);

/* ---- Status ----------------------------------------------------------- */

typedef struct nvx_peer_info {
    const uint8_t *node_id; /* NULL before the handshake */
    const char *addr;
    const char *agent; /* "" when unknown; printable */
    int state;         /* 1 handshaking, 2 established */
    uint64_t bytes_in, bytes_out, rate_in;
    bool outbound;
} nvx_peer_info;

void nvx_node_peers_each(nvx_node *n, void (*cb)(void *arg, const nvx_peer_info *pi), void *arg);

typedef struct nvx_xfer_info {
    uint64_t id;
    const uint8_t *model;
    int state; /* enum proto_ctl_state */
    uint64_t bytes_done, bytes_total, chunks_done, chunks_total, rate, peer_count;
    bool endgame; /* every missing chunk is requested (daemon/picker.h) */
} nvx_xfer_info;

void nvx_node_xfers_each(nvx_node *n, void (*cb)(void *arg, const nvx_xfer_info *xi), void *arg);

/* Payload bytes received in DATA since start (the resume test counts them). */
uint64_t nvx_node_bytes_fetched(const nvx_node *n);

/* Counters since start, for /metrics. */
typedef struct nvx_node_counters {
    uint64_t chunks_verified; /* fetched chunks that matched their hash and were stored */
    uint64_t chunks_rejected; /* fetched chunks whose bytes failed their hash */
    uint64_t xfers_done, xfers_failed, xfers_cancelled;
} nvx_node_counters;

void nvx_node_counters_get(const nvx_node *n, nvx_node_counters *ret);

/* The node's serve policy (nvx_node_opts.serve; fixed for its life). */
nvx_serve_policy nvx_node_serve_policy(const nvx_node *n);

/* ---- Fetching --------------------------------------------------------- */

/* Progress and the end of a fetch. Called on the loop: with state FETCHING
 * (and MANIFEST) about every NVX_NODE_TICK_MS, then exactly once with DONE,
 * FAILED (error < 0) or CANCELLED, after which the subscription is gone. */
typedef void (*nvx_fetch_cb)(void *arg, const proto_ctl_progress *p, int error);

typedef struct nvx_fetch_sub nvx_fetch_sub;

/* What a fetched model gets once complete (the control socket's PIN value;
 * README "Keeping models"). */
typedef enum nvx_fetch_keep {
    NVX_FETCH_KEEP_NONE = 0, /* nothing: nvx gc may remove it; not seeded under serve = pinned */
    NVX_FETCH_KEEP = 1,      /* kept: seeded, plain gc leaves it, the store quota may evict it */
    NVX_FETCH_PIN = 2,       /* pinned, as nvx pin: never evicted */
    _NVX_FETCH_KEEP_MAX,
} nvx_fetch_keep;

/*
 * Fetches model id into the store, or joins a fetch of it already running.
 * Steps: a complete model ends at once (DONE). Otherwise WANT goes to every
 * connected peer (and to peers that connect later); from a peer that answers
 * HAVE the manifest is fetched with MANIFEST_REQ and checked against the id;
 * a partial model is created (or the one left by an earlier run reopened:
 * resume from its bitmap); chunks any complete model in the store holds are
 * copied locally; the rest is requested from every peer that has the model
 * (daemon/picker.h), each chunk verified by cas_partial_put() before it
 * counts. Verified chunks are committed every NVX_NODE_COMMIT_CHUNKS chunks
 * or NVX_NODE_COMMIT_MS. Once complete the model is kept or pinned as keep
 * says (a fetch joined with more keeps the most), its last use recorded,
 * and the store brought under its size limit. Before the partial model is
 * created, room is made for it under the limit (evicting unpinned, then
 * kept models, least recently used first, never one being fetched or
 * served); a model that cannot fit fails the fetch with -EDQUOT and
 * removes nothing. A fetch that found no peer with the model (no HAVE)
 * within NVX_NODE_NO_PROVIDER_MS fails with -EHOSTUNREACH.
 * Returns 0 and the subscription in *ret (for nvx_node_fetch_unsub), or
 * -ENOMEM, -EBUSY (too many transfers).
 */
int nvx_node_fetch(nvx_node *n, const uint8_t id[static 32], nvx_fetch_keep keep, nvx_fetch_cb cb,
                   void *arg, nvx_fetch_sub **ret);

/* Limits the transfer to rate bytes/s of requested model data (0:
 * unlimited; nvxd's download-rate applies as well); the last subscriber
 * to ask sets it. */
void nvx_node_fetch_rate(nvx_fetch_sub *sub, uint64_t rate);

/* Drops a subscription without a final callback. When it was the last one,
 * the transfer is cancelled (a resumable partial stays in the store). */
void nvx_node_fetch_unsub(nvx_node *n, nvx_fetch_sub *sub);

/* The transfer fails (-EHOSTUNREACH) once no connected peer has had the
 * model for ms (default NVX_XFER_NO_PROVIDER_MS); the last subscriber to
 * ask sets it. */
void nvx_node_fetch_timeout(nvx_fetch_sub *sub, uint64_t ms);

/* Cancels the transfer of model id (or with transfer id xid when id is
 * NULL): subscribers get CANCELLED. Returns 0 or -ENOENT. */
int nvx_node_fetch_cancel(nvx_node *n, const uint8_t *id, uint64_t xid);

/* ---- Hooks ------------------------------------------------------------ */

/*
 * The node knows peers, sessions, dialing, dispatch and the send budget;
 * everything else attaches through hooks: fetching (daemon/fetch.c),
 * serving (daemon/serve.c, serve-seed.c) and signatures (daemon/sigs.c),
 * wired by nvx_node_new() (daemon/wire.c) before any peer can connect, and
 * discovery and gossip (daemon/mesh.c) after it. Hooks run in the order
 * they were added, on the loop thread; every field may be NULL.
 *
 * Re-entrancy: a hook may send (a failed send only dooms the peer: it is
 * closed later from the loop) and may close peers with nvx__peer_close()
 * (daemon/node-internal.h). Once a peer is closing, no hook hears of it
 * again except through peer_gone, peer_down and peer_free.
 */
typedef struct nvx_node_hook {
    /* A session finished its handshake / went away. */
    void (*peer_up)(void *arg, nvx_peer *p);
    void (*peer_down)(void *arg, nvx_peer *p);
    /* Any peer is being closed, established or not: runs once, first thing
     * after `closing` is set (every hook's peer_gone, then every hook's
     * peer_down). The work of the peer must end here. */
    void (*peer_gone)(void *arg, nvx_peer *p);
    /* The peer's memory is about to be freed (its link closed and no pool
     * job refers to it any more). */
    void (*peer_free)(void *arg, nvx_peer *p);
    /* Messages. A hook whose claims has bit (1 << type) set handles that
     * type (the node's own: PING, PONG, BYE); one with claims 0 sees the
     * types nobody claims (ANNOUNCE, PEERS, ...), or every message when all
     * is true. m borrows the frame: valid during the call. */
    void (*message)(void *arg, nvx_peer *p, const proto_msg *m);
    uint64_t claims;
    /* A dial pinned to node id claimed (nvx_node_dial_id) reached a node
     * with another key at addr: the session was dropped. */
    void (*mismatch)(void *arg, const uint8_t claimed[32], const char *addr);
    /* The send budget: p's link wrote a batch, or the node's bytes in
     * flight fell under NVX_NODE_SERVE_MAX_BYTES after a hook found the
     * budget spent (serve_starved, daemon/node-internal.h); p may send more. */
    void (*writable)(void *arg, nvx_peer *p);
    /* Every NVX_NODE_TICK_MS, after the node's own timers. */
    void (*tick)(void *arg);
    /* A read callback ended and no other is running: work deferred while
     * messages arrived may go out now, in one batch. */
    void (*recv_done)(void *arg);
    /* True while the hook holds work that keeps a stopping node alive (and
     * the allocator's memory in use). */
    bool (*busy)(void *arg);
    /* nvx_node_stop(): before the sessions get BYE. */
    void (*stop)(void *arg);
    /* nvx_node_free(): the node is stopped; release what the hook holds. */
    void (*free)(void *arg);
    bool all;
    void *arg;
} nvx_node_hook;

/* Registers a hook (copied; at most 8 besides the node's own). Returns 0
 * or -ENOSPC. */
int nvx_node_hook_add(nvx_node *n, const nvx_node_hook *h);

/* Sends a message to an established peer. Returns 0, -ENOTCONN, errnos of
 * proto_session_send_msg. */
int nvx_peer_send(nvx_peer *p, const proto_msg *m);
const uint8_t *nvx_peer_id(const nvx_peer *p); /* NULL before the handshake */
const char *nvx_peer_addr(const nvx_peer *p);
/* The peer's HELLO (addresses, features, agent) after the handshake, else
 * NULL. Valid while the peer is (until peer_down returns). */
const proto_hello *nvx_peer_hello(const nvx_peer *p);

/* Dials addr once (not configured; e.g. a discovered peer). It takes a
 * free session slot only (daemon/admit.h). Returns 0, -EAGAIN (no slot) or
 * errnos of tp_dial. */
int nvx_node_dial(nvx_node *n, const char *addr);

/* Dials addr once, expecting node id (when not NULL): the handshake fails
 * unless the peer holds that key (PROTO_FAIL_PEER_MISMATCH; the hooks'
 * mismatch runs). useful: a peer we need (a provider of a model being
 * fetched): it may evict an idle session for a slot and is never evicted
 * itself. Returns 0, -EAGAIN, or errnos of tp_dial. */
int nvx_node_dial_id(nvx_node *n, const char *addr, const uint8_t *id, bool useful);

/* Calls cb for every established session (cb may send; it must not
 * close other peers). */
void nvx_node_sessions_each(nvx_node *n, void (*cb)(void *arg, nvx_peer *p), void *arg);

/* The established session with node id, or NULL. */
nvx_peer *nvx_node_peer_by_id(nvx_node *n, const uint8_t id[static 32]);

/* True for a session this node dialed. */
bool nvx_peer_outbound(const nvx_peer *p);

#endif
