/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DHT_H
#define NVX_DAEMON_DHT_H
/*
 * A BitTorrent mainline DHT node (BEP 5, BEP 42 node ids, BEP 44 mutable
 * items), sans-I/O: datagrams and time in, datagrams out through
 * nvx_dht_ops.send. No sockets, no clock, no randomness of its own: every
 * random choice (node ids, transaction ids, token secrets) comes from a
 * keyed BLAKE2b stream over opts.secret, so a simulation replays from its
 * seed and a real node is unpredictable to others. daemon/dht-uv.c runs it
 * on the loop over UDP.
 *
 * - Routing table (dht-table.c): 160 buckets of NVX_DHT_K nodes by shared
 *   prefix with our id, one replacement each; a node enters only after it
 *   answered one of our queries, at most NVX_DHT_PER_IP_MAX entries per
 *   IPv4 address (loopback exempt), and with enforce_node_id its id must
 *   follow BEP 42 for its address (local addresses exempt, as BEP 42 says).
 * - Queries we answer: ping, find_node, get_peers, announce_peer, get, put.
 *   Each source address may send NVX_DHT_RL_RATE queries a second (burst
 *   NVX_DHT_RL_BURST); the rest are dropped unanswered.
 * - Storage (dht-store.c): peers per info-hash and mutable items, bounded
 *   in total, per key and per source address, expiring after
 *   NVX_DHT_PEER_TTL_MS / NVX_DHT_ITEM_TTL_MS. Tokens are BLAKE2b keyed
 *   with a secret that changes every NVX_DHT_TOKEN_EPOCH_MS (the last two
 *   are accepted).
 * - Lookups (dht-lookup.c): iterative, NVX_DHT_ALPHA queries in flight,
 *   until the NVX_DHT_K closest nodes seen have answered or failed; no node
 *   further than NVX_DHT_HOPS_MAX hops from the start is asked.
 * - Announces and items we own are repeated before they expire, spread in
 *   time (a new announce also 20 s and 5 min after the first); buckets
 *   nobody touched for NVX_DHT_REFRESH_MS are refreshed.
 * - A query unanswered after half of NVX_DHT_QUERY_TIMEOUT_MS is sent once
 *   more (same bytes, same tid), so one lost datagram fails no node.
 *
 * Loop thread only (one thread at a time); callbacks run inside
 * nvx_dht_input() or nvx_dht_tick() and must not free the node.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/krpc.h"

enum nvx_dht_limits {
    NVX_DHT_K = 8,
    NVX_DHT_ALPHA = 3,
    NVX_DHT_HOPS_MAX = 12,
    NVX_DHT_PER_IP_MAX = 2,
    NVX_DHT_RL_RATE = 20, /* queries per second per source address */
    NVX_DHT_RL_BURST = 40,
    NVX_DHT_RL_SLOTS = 512,
    NVX_DHT_TX_MAX = 256,     /* queries of ours in flight */
    NVX_DHT_LOOKUPS_MAX = 32, /* lookups at once */
    NVX_DHT_QUERY_TIMEOUT_MS = 2000,
    NVX_DHT_BOOT_MAX = 64, /* addresses kept to bootstrap from */
    NVX_DHT_BOOT_RETRY_MS = 30 * 1000,
    NVX_DHT_REFRESH_MS = 15 * 60 * 1000,
    NVX_DHT_TOKEN_EPOCH_MS = 5 * 60 * 1000,
    /* Storage */
    NVX_DHT_PEERS_MAX = 4096, /* stored peers, all keys */
    NVX_DHT_PEERS_PER_KEY = 64,
    NVX_DHT_PEERS_PER_SOURCE = 16,
    NVX_DHT_PEER_TTL_MS = 30 * 60 * 1000,
    NVX_DHT_ITEMS_MAX = 512,
    NVX_DHT_ITEMS_PER_SOURCE = 8,
    NVX_DHT_ITEM_TTL_MS = 2 * 60 * 60 * 1000,
    /* What this node announces and puts, and when again */
    NVX_DHT_ANNOUNCE_MAX = 1024,
    NVX_DHT_REANNOUNCE_MS =
        15 * 60 * 1000, /* plus up to NVX_DHT_SPREAD_MS: before the 30-min expiry */
    NVX_DHT_SPREAD_MS = 10 * 60 * 1000,
    /* A new key is announced again after 20 s and 5 min before the
     * regular rhythm: a first announce lost on a lossy link, or made while
     * the table was still small, is not left for 15 minutes. */
    NVX_DHT_EARLY_ANNOUNCES = 2,
    NVX_DHT_OWN_ITEMS_MAX = 64,
    NVX_DHT_REPUT_MS = 60 * 60 * 1000,
    NVX_DHT_LOOKUP_PEERS_MAX = 64, /* peers one lookup collects */
    NVX_DHT_SAVE_MAX = 8 + 20 + 2 + 256 * NVX_KRPC_NODE_LEN,
};

typedef struct nvx_dht nvx_dht;

typedef struct nvx_dht_ops {
    /* Sends one datagram to ip:port (host order). Must not call back into
     * the node. */
    void (*send)(void *arg, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len);
} nvx_dht_ops;

typedef struct nvx_dht_opts {
    uint8_t secret[32]; /* seeds every random choice; keep it secret */
    const uint8_t *id;  /* 20 bytes; NULL: made from the secret (BEP 42 when external_ip is set) */
    uint32_t external_ip;
    bool enforce_node_id; /* BEP 42 for table entries and for our own id (real networks) */
    nvx_dht_ops ops;
    void *arg;
} nvx_dht_opts;

/* A BEP 44 mutable item (pointers borrowed for the call). */
typedef struct nvx_dht_item {
    uint8_t k[32];
    uint8_t sig[64];
    int64_t seq;
    uint8_t salt[NVX_KRPC_SALT_MAX];
    size_t salt_len;
    uint8_t v[NVX_KRPC_V_MAX];
    size_t v_len;
} nvx_dht_item;

typedef enum nvx_dht_lookup_kind {
    NVX_DHT_FIND_NODE = 1,
    NVX_DHT_GET_PEERS,
    NVX_DHT_ANNOUNCE, /* get_peers, then announce_peer to the closest */
    NVX_DHT_GET,      /* BEP 44 get */
    NVX_DHT_PUT,      /* get, then put to the closest */
    _NVX_DHT_LOOKUP_KIND_MAX,
} nvx_dht_lookup_kind;

/* What a lookup reports: new peers as they arrive (done false), then once
 * done. Pointers valid during the callback only. */
typedef struct nvx_dht_result {
    uint32_t handle;
    bool done;
    const uint32_t *peer_ip; /* new peers (get_peers), n_peers of them */
    const uint16_t *peer_port;
    size_t n_peers;
    const nvx_dht_item *item;     /* done, GET: the verified item with the highest seq, or NULL */
    unsigned rounds;              /* done: hops from us to the furthest of the closest nodes */
    unsigned queries;             /* done: queries sent */
    unsigned responded;           /* done: how many of the closest NVX_DHT_K answered */
    const uint8_t (*closest)[20]; /* done: their ids, closest first */
} nvx_dht_result;

typedef void (*nvx_dht_cb)(void *arg, const nvx_dht_result *r);

typedef struct nvx_dht_stats {
    uint8_t id[20];
    uint32_t external_ip;
    size_t nodes;        /* in the routing table */
    size_t announced;    /* keys this node announces */
    size_t own_items;    /* items this node puts */
    size_t peers, items; /* stored for others */
    size_t lookups;
    uint64_t rx, tx, dropped; /* datagrams; dropped: malformed or over a rate limit */
} nvx_dht_stats;

/* Makes a node. Returns 0 and *ret, -EINVAL or -ENOMEM. */
int nvx_dht_new(const nvx_dht_opts *opts, uint64_t now_ms, nvx_dht **ret);

/* Frees d (NULL is fine). Running lookups end: their callbacks run once
 * with done set, inside this call. */
void nvx_dht_free(nvx_dht *d);

/* One datagram from ip:port. Anything malformed is counted and dropped. */
void nvx_dht_input(nvx_dht *d, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len,
                   uint64_t now_ms);

/* Timeouts, bootstrap, refresh, re-announces: call every few hundred ms. */
void nvx_dht_tick(nvx_dht *d, uint64_t now_ms);

/* Adds an address to bootstrap from (a known host, or a saved node); the
 * next tick asks it while the table is small. Returns 0 or -ENOSPC. */
int nvx_dht_add_bootstrap(nvx_dht *d, uint32_t ip, uint16_t port);

/* Announces key (20 bytes) with port now and every NVX_DHT_REANNOUNCE_MS
 * (+ spread) until nvx_dht_unannounce(). Returns 0, -EEXIST (already:
 * the port is updated) or -ENOSPC. */
int nvx_dht_announce(nvx_dht *d, const uint8_t key[static 20], uint16_t port, uint64_t now_ms);
void nvx_dht_unannounce(nvx_dht *d, const uint8_t key[static 20]);

/* Stores ip:port (host order), our own address as others dial it, as a
 * peer of key in our own storage, as if it had been announced to us: a
 * node that others ask (a bootstrap node, often the only one they can
 * reach through their NATs) answers get_peers with itself. It expires
 * like any stored peer: call again to keep it. Returns 0 or -ENOSPC. */
int nvx_dht_store_self(nvx_dht *d, const uint8_t key[static 20], uint32_t ip, uint16_t port,
                       uint64_t now_ms);

/* Every key announced now carries port (the router mapped another one, or
 * lost the mapping) and is announced again at the next tick. */
void nvx_dht_announce_port(nvx_dht *d, uint16_t port, uint64_t now_ms);

/* Starts a lookup. item: for NVX_DHT_PUT the item to store (its signature
 * must verify: else -EBADMSG);
 * for NVX_DHT_GET only k and salt are read. key: the target (ignored for
 * GET/PUT: SHA-1(k || salt)). port: for NVX_DHT_ANNOUNCE. cb may be NULL.
 * Returns a handle (> 0) or -ENOSPC (too many lookups), -EINVAL. */
int nvx_dht_lookup(nvx_dht *d, nvx_dht_lookup_kind kind, const uint8_t key[20], uint16_t port,
                   const nvx_dht_item *item, nvx_dht_cb cb, void *arg, uint64_t now_ms);

/* Keeps item (verified: else -EBADMSG) on the DHT: put at the next tick
 * and every NVX_DHT_REPUT_MS (+ spread) after; a later item with the same
 * key and salt replaces it. Returns 0, -EBADMSG or -ENOSPC. */
int nvx_dht_put(nvx_dht *d, const nvx_dht_item *item, uint64_t now_ms);

/* Ends a running lookup now (e.g. its client went away): its callback
 * runs once, inside this call, with done set (so that the caller frees
 * what it gave as arg). */
void nvx_dht_cancel(nvx_dht *d, uint32_t handle);

void nvx_dht_stats_get(const nvx_dht *d, nvx_dht_stats *ret);

/* The node's id (20 bytes; changes when BEP 42 asks for a new one). */
const uint8_t *nvx_dht_id(const nvx_dht *d);

/* A node id as 40 lowercase hex digits and a NUL. */
void nvx_dht_id_hex(const uint8_t id[static 20], char out[static 41]);

/* The routing table in the save format: "NVXDHT1\n", id (20), count (2,
 * big endian), count compact nodes. Returns the length or -EMSGSIZE. */
int nvx_dht_save(const nvx_dht *d, uint8_t *buf, size_t cap);

/* Reads a saved table before the first tick: the saved id is ours again
 * (unless BEP 42 rules it out), its nodes become bootstrap addresses
 * (asked, not trusted). Returns how many, or -EBADMSG. */
int nvx_dht_load(nvx_dht *d, const uint8_t *buf, size_t len);

/* The DHT key under which providers of a model announce themselves: the
 * first 20 bytes of BLAKE2b-256("nvx-provider-v1" || model id) (libsodium's
 * crypto_generichash with a 32-byte output, no key). proto/PROTOCOL.md. */
void nvx_dht_provider_key(const uint8_t model_id[static 32], uint8_t out[static 20]);

/* The DHT key under which nodes that can relay connection reversal (they
 * can be dialed from outside) announce themselves: the first 20 bytes of
 * BLAKE2b-256("nvx-relay-v1"). proto/PROTOCOL.md, section 9. */
void nvx_dht_relay_key(uint8_t out[static 20]);

/* BEP 44 helpers. The target of a mutable item: SHA-1(k || salt). */
void nvx_dht_item_target(const uint8_t k[static 32], const uint8_t *salt, size_t salt_len,
                         uint8_t out[static 20]);
/* Whether item's signature verifies (libsodium's Ed25519). */
bool nvx_dht_item_verify(const nvx_dht_item *item);

/* BEP 42: the node id for ip with random bits from rnd (17 bytes used),
 * and whether id follows BEP 42 for ip (always true for local addresses). */
void nvx_dht_id_for_ip(uint32_t ip, const uint8_t rnd[static 17], uint8_t out[static 20]);
bool nvx_dht_id_ok(const uint8_t id[static 20], uint32_t ip);
/* 10/8, 172.16/12, 192.168/16, 169.254/16, 127/8 (BEP 42's exemptions). */
bool nvx_dht_ip_local(uint32_t ip);

#endif
