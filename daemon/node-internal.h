/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_NODE_INTERNAL_H
#define NVX_DAEMON_NODE_INTERNAL_H
/*
 * Shared state of daemon/node.c (peers, sessions, dialing), serve.c
 * (answering peers) and fetch.c (transfers). Loop thread only, except the
 * fields a pool job documents as its own.
 */
#include <stdatomic.h>

#include "daemon/admit.h"
#include "daemon/budget.h"
#include "daemon/node.h"
#include "daemon/picker.h"
#include "daemon/ratelimit.h"
#include "daemon/xfer.h"
#include "libcas/manifest.h"

enum {
    NVX_NODE_HOOKS_OWN = 4, /* fetch, serve, serve-seed, sigs (daemon/wire.c) */
    NVX_NODE_HOOKS_MAX = NVX_NODE_HOOKS_OWN + 8,
    NVX_NODE_MCACHE = 16,    /* decoded manifests kept for serving */
    NVX_NODE_SSEEDS_MAX = 8, /* models super-seeded at once (daemon/serve-seed.c) */
    /* How long a cached served model is served on the loop after the pool
     * last checked the serve policy (an LMDB read per chunk would cost the
     * loop; 10 s of seeding after an unpin is the price). */
    NVX_NODE_SHARE_RECHECK_MS = 10 * 1000,
    NVX_ADDR_LEN = 128,
    /* A model served within this long counts as in use: the store quota
     * does not evict it (fetch.c), and its last use is written at most
     * once per this long (serve.c, on the pool). */
    NVX_NODE_SERVING_MS = 60 * 1000,
};

struct cfg_peer {
    struct cfg_peer *next;
    char addr[NVX_ADDR_LEN];
    nvx_peer *conn; /* live connection dialed for it, or NULL */
    uint64_t next_dial_ms;
    uint32_t backoff_ms;
};

/* A queued REQUEST this node is serving. */
struct sreq {
    uint32_t req_id;
    uint8_t model[32];
    uint32_t chunk, offset, length;
};

struct nvx_peer {
    nvx_peer *prev, *next;
    nvx_node *node;
    tp_conn *conn;
    proto_session *sess;
    struct cfg_peer *cfg; /* dialed for this configured peer, or NULL */
    bool outbound, established, closing, conn_closed;
    bool doomed; /* a send failed: closed from the loop (reap), output dropped */
    bool useful; /* dialed as useful (a provider we want): never evicted */
    bool pinned; /* dialed for the node id in expect (peer exchange) */
    uint8_t expect[32];
    char addr[NVX_ADDR_LEN];
    char agent[PROTO_AGENT_MAX + 1];
    uint8_t id[32];
    uint64_t t_start_ms;         /* connection accepted or dialed */
    uint64_t t_rx_ms, t_ping_ms; /* last bytes received; last keepalive PING */
    uint64_t t_useful_ms;        /* last DATA either way (daemon/admit.h); 0 never */
    uint64_t bytes_in, bytes_out;
    uint64_t rate_in, rate_bytes; /* DATA payload bytes/s (per tick EWMA) */
    uint64_t rate_last;           /* DATA payload bytes in the last tick (for hooks' ticks) */
    nvx_budget cpu;               /* its share of the loop (budget.h) */
    bool throttled;               /* reading stopped until cpu refills */
    unsigned jobs;                /* pool jobs referring to this peer */
    /* serving (daemon/serve.c): a ring of peer_max_requests, made on the
     * peer's first REQUEST and freed by serve's peer_free hook */
    struct sreq *sq;
    size_t sq_head, sq_len;
    unsigned serve_jobs;
    struct nvx_recip_peer *rp; /* reciprocation (daemon/recip.h), or NULL */
    uint32_t next_req_id;      /* our requests: fetch.c, sigs.c */
    struct sig_ask *sig_asks;  /* SIGS_REQs awaiting an answer (daemon/sigs.c) */
    unsigned n_sig_asks;
};

struct nvx_fetch_sub {
    nvx_fetch_sub *next;
    struct xfer *x;
    nvx_fetch_cb cb;
    void *arg;
};

/* A transfer: the engine (daemon/xfer.h) and what the adapter
 * (daemon/fetch.c) holds for it: the partial model, pool jobs, and the
 * control-socket subscribers. */
struct xfer {
    struct xfer *next;
    nvx_node *node;
    nvx_xfer *e;
    uint64_t xid;
    uint8_t id[32];
    nvx_fetch_keep keep; /* what the model gets once complete (node.h) */
    nvx_rate rate;       /* nvx fetch --rate (daemon/ratelimit.h); unlimited by default */
    bool ended;          /* the engine ended; freed once no job runs */
    nvx_fetch_sub *subs;
    cas_partial *part;
    unsigned jobs; /* pool jobs running */
};

/* A complete model being served: its manifest, its data file kept open, and
 * which chunks were re-hashed since it was opened (served without hashing
 * from then on). Shared read-only with pool jobs through refs; the
 * verified bits and dead are set from pool threads (atomics). */
struct smodel {
    uint8_t id[32];
    cas_manifest *man;
    int fd;
    _Atomic uint8_t *verified;
    _Atomic uint8_t *reported; /* chunks found corrupt and logged (once each) */
    _Atomic bool dead;         /* the data file was removed (rm, gc) or changed */
    bool partial;              /* being fetched: unverified chunks are absent, not corrupt */
    /* The data file's ctime when a complete model was opened. A complete
     * file is 0444 and never written, so a later ctime means someone
     * changed it (nvx repair makes it writable, or the bytes rotted under
     * a chmod): the verified bits no longer hold and the entry is dropped. */
    struct timespec ctime;
    /* Until this CLOCK_MONOTONIC ms the serve policy allowed serving the
     * model (set by the pool's check); chunks are served on the loop only
     * before it, so an unpin stops seeding within NVX_NODE_SHARE_RECHECK_MS. */
    _Atomic uint64_t shared_until_ms;
    unsigned refs; /* loop thread only */
    uint64_t used;
    /* Loop thread only (nvx__now ms): DATA last sent from it; its last use
     * last written to the store (serve.c's tick, NVX_NODE_SERVING_MS). */
    uint64_t served_ms, touched_ms;
};

struct nvx_node {
    uv_loop_t *loop;
    tp_net *net;
    cas_store *store;
    const proto_identity *identity;
    tp_listener *listener;
    char listen_addr[NVX_ADDR_LEN];
    char ext_addr[NVX_ADDR_LEN]; /* router mapping (daemon/natmap.h), "" when none */
    uv_timer_t timer;
    uv_timer_t reap; /* closes doomed peers from the loop */
    nvx_peer *peers;
    size_t n_peers;
    struct cfg_peer *cfg_peers;
    struct xfer *xfers;
    uint64_t next_xid;
    unsigned jobs;
    unsigned max_peers, peer_max_requests;
    nvx_admit_cfg admit; /* session slots (daemon/admit.h) */
    uint64_t peer_max_bytes;
    bool corrupt_serve;
    nvx_serve_policy serve; /* daemon/share.h */
    unsigned serve_delay_ms, put_delay_ms;
    uint32_t peer_timeout_ms;
    void (*fetched)(void *arg, const uint8_t id[32]);
    void *fetched_arg;
    char agent[PROTO_AGENT_MAX + 1];
    bool no_relay; /* HELLO without PROTO_FEAT_REVERSE */
    nvx_badlist bad;
    nvx_node_hook hooks[NVX_NODE_HOOKS_MAX];
    size_t n_hooks;
    struct smodel *mcache[NVX_NODE_MCACHE];
    struct sseed *sseeds; /* daemon/serve-seed.c */
    unsigned n_sseeds;
    uint64_t mcache_clock;
    uint64_t bytes_fetched;
    nvx_node_counters counters; /* fetch.c counts */
    unsigned in_recv;           /* inside a read callback: pumps are deferred */
    bool stopping, timer_closed;
    unsigned handles_closed; /* timer and reap, once stopping */
    uint64_t tx_queued;      /* bytes handed to the links, not yet written */
    /* A hook found the send budget spent (tx_queued at
     * NVX_NODE_SERVE_MAX_BYTES): once it falls, every hook's writable runs
     * for every peer. */
    bool serve_starved;
    /* Bandwidth limits (daemon/ratelimit.h): DATA served (serve.c) and
     * requested by all transfers (fetch.c). up_waiting: a peer's queued
     * REQUESTs wait for the upload bucket; the tick serves them. */
    nvx_rate up, down;
    uint64_t up_reserved; /* bytes chunk reads on the pool may still send (serve.c) */
    bool up_waiting;
    struct nvx_recip *recip;          /* whose requests go first (serve.c), or NULL */
    uint64_t io_bytes, io_bytes_seen; /* bytes sent + received; at the last tick */
    bool trim_due;                    /* traffic since the last malloc_trim */
    void (*stop_done)(void *);
    void *stop_arg;
};

/* node.c: nvx_node_new() in two steps, so that daemon/wire.c registers the
 * node's own hooks between them, before any peer can connect.
 * nvx__node_create allocates and configures (no I/O; free with
 * nvx_node_free). nvx__node_start listens (when opts->listen) and starts
 * the timers; on failure the node is left unstarted (nvx_node_free it).
 * Returns 0, -EINVAL, -ENOMEM, errnos of tp_listen. */
int nvx__node_create(const nvx_node_opts *opts, nvx_node **ret);
int nvx__node_start(nvx_node *n, const char *listen);

uint64_t nvx__now(nvx_node *n);

/* Sleeps ms on a pool thread: the test hooks' slow disk and slow seeder. */
void nvx__test_delay(unsigned ms);
void nvx__peer_flush(nvx_peer *p);
void nvx__peer_close(nvx_peer *p, uint8_t bye_reason, const char *why);
void nvx__peer_put(nvx_peer *p);
nvx_peer *nvx__peer_by_id(nvx_node *n, const uint8_t id[static 32]);
/* Refuses the key, and the address's host unless it is loopback, for
 * NVX_BADLIST_MS (a peer that sent bad bytes or claimed what it never
 * delivered: a new key from the same host buys no second try). */
void nvx__peer_bad(nvx_node *n, const uint8_t id[static 32], const char *addr);
void nvx__node_maybe_stopped(nvx_node *n);

/* cfgpeers.c: adds the peers stored in the store's peers db. */
void nvx__cfg_peers_load(nvx_node *n);

/* serve.c */
void nvx__serve_msg(nvx_peer *p, const proto_msg *m);
void nvx__serve_pump(nvx_peer *p);
void nvx__serve_peer_gone(nvx_peer *p);
/* Frees p's request queue (made on its first REQUEST). */
void nvx__serve_peer_free(nvx_peer *p);
/* Feeds reciprocation the DATA each peer sent since the last tick (call
 * before the tick resets rate_bytes). */
void nvx__serve_tick(nvx_node *n);
/* Frees the serve side's node state: the model cache, reciprocation. */
void nvx__serve_free(nvx_node *n);

/* serve-seed.c: super-seeding (daemon/superseed.h). want: p asked for a
 * complete model of n_chunks chunks; true when a HAVE with the chunks
 * revealed to p was queued (else answer HAVE ALL). sent: we sent p the
 * first bytes of chunk. have: p announced chunks. */
bool nvx__seed_want(nvx_peer *p, const uint8_t model[static 32], uint32_t n_chunks);
void nvx__seed_sent(nvx_peer *p, const uint8_t model[static 32], uint32_t chunk);
void nvx__seed_asked(nvx_peer *p, const uint8_t model[static 32], uint32_t chunk);
void nvx__seed_have(nvx_peer *p, const proto_want *h);
void nvx__seed_peer_gone(nvx_peer *p);
void nvx__seed_tick(nvx_node *n); /* the tail's HAVE ALL comes on time */

/* fetch.c */
void nvx__fetch_msg(nvx_peer *p, const proto_msg *m);
void nvx__fetch_peer_up(nvx_peer *p);
void nvx__fetch_peer_gone(nvx_peer *p);
void nvx__fetch_tick(nvx_node *n);
void nvx__fetch_stop_all(nvx_node *n);
void nvx__fetch_pump_pending(nvx_node *n);
void nvx__fetch_peer_wants(nvx_peer *p, const uint8_t model[static 32]);
/* Whether n runs a transfer of model now (loop thread). */
bool nvx__fetch_active(nvx_node *n, const uint8_t model[static 32]);
/* Whether n's transfer of model received, verified and stored chunk idx
 * (loop thread): serve.c marks it verified instead of hashing it again. */
bool nvx__fetch_fresh(nvx_node *n, const uint8_t model[static 32], uint32_t idx);

/* quota.c: the store quota and kept models (loop thread unless noted).
 * nvx__busy_models: the models the quota must not evict now (being
 * fetched, served within NVX_NODE_SERVING_MS): a malloc'd array the caller
 * frees (NULL when none or out of memory) and its length.
 * Pool thread: nvx__quota_keep marks a complete model as keep says;
 * nvx__quota_room_for makes room under the quota for the model of a
 * manifest about to be created (-EDQUOT: it cannot fit, nothing removed;
 * -EPROTO: the manifest does not decode); nvx__quota_fetched notes the use
 * of a completed fetch and meets the quota. nvx__quota_touch_served queues
 * the last uses of served models (serve.c's tick). */
uint8_t (*nvx__busy_models(nvx_node *n, size_t *ret_n))[32];
int nvx__quota_keep(cas_store *s, const uint8_t id[static 32], nvx_fetch_keep keep);
int nvx__quota_room_for(cas_store *s, const uint8_t *manifest, size_t len, uint8_t (*busy)[32],
                        size_t n_busy);
void nvx__quota_fetched(cas_store *s, const uint8_t id[static 32], uint8_t (*busy)[32],
                        size_t n_busy);
void nvx__quota_touch_served(nvx_node *n);

/* daemon/sigs.c: signatures that travel with a fetch */
void nvx__sigs_ask(nvx_peer *p, const uint8_t model[static 32]);
void nvx__sigs_msg(nvx_peer *p, const proto_msg *m);
void nvx__sigs_peer_gone(nvx_peer *p);

#endif
