/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DHT_INTERNAL_H
#define NVX_DAEMON_DHT_INTERNAL_H
/*
 * The DHT node's parts (daemon/dht.h): routing table (dht-table.c),
 * storage (dht-store.c), lookups (dht-lookup.c), the node (dht.c).
 * Exported for those files and tests only.
 */
#include "daemon/dht.h"

enum {
    NVX__DHT_BUCKETS = 160,
    NVX__DHT_FAILS_BAD = 2,             /* timeouts in a row that make a node replaceable */
    NVX__DHT_STALE_MS = 15 * 60 * 1000, /* unheard this long: pinged */
    NVX__DHT_CANDS_MAX = 64,            /* candidates one lookup keeps (the closest) */
    NVX__DHT_TOKEN_LEN = 8,
};

typedef struct nvx__dht_node {
    uint8_t id[20];
    uint32_t ip;
    uint16_t port;
    uint8_t fails;
    uint64_t seen_ms;
} nvx__dht_node;

typedef struct nvx__dht_bucket {
    nvx__dht_node n[NVX_DHT_K];
    unsigned count;
    nvx__dht_node repl; /* replacement; repl.port == 0: none */
    uint64_t touched_ms;
} nvx__dht_bucket;

typedef struct nvx__dht_table {
    uint8_t self[20];
    nvx__dht_bucket *b[NVX__DHT_BUCKETS]; /* allocated on first use */
    size_t count;
} nvx__dht_table;

/* Stored peers and items (for others). */
typedef struct nvx__dht_peer {
    uint8_t key[20];
    uint32_t ip;
    uint16_t port;
    uint64_t expires_ms;
} nvx__dht_peer;

typedef struct nvx__dht_stored_item {
    uint8_t target[20];
    uint32_t source;
    uint64_t expires_ms;
    nvx_dht_item item;
} nvx__dht_stored_item;

typedef struct nvx__dht_store {
    nvx__dht_peer *peers;
    size_t n_peers, cap_peers;
    nvx__dht_stored_item *items;
    size_t n_items, cap_items;
} nvx__dht_store;

/* A lookup in progress (dht-lookup.c). */
typedef struct nvx__dht_cand {
    uint8_t id[20];
    uint32_t ip;
    uint16_t port;
    uint8_t state; /* CAND_* in dht-lookup.c */
    uint8_t hop;
    bool id_known; /* false: a bootstrap address */
    uint8_t token_len;
    uint8_t token[NVX_KRPC_TOKEN_MAX];
} nvx__dht_cand;

typedef struct nvx__dht_lookup {
    uint32_t handle; /* 0: slot free */
    uint8_t kind;    /* nvx_dht_lookup_kind */
    uint8_t target[20];
    uint16_t port;
    bool stored; /* the announce/put step was sent */
    nvx__dht_cand c[NVX__DHT_CANDS_MAX];
    size_t n;
    unsigned inflight, queries;
    nvx_dht_cb cb;
    void *arg;
    uint8_t peers[NVX_DHT_LOOKUP_PEERS_MAX][NVX_KRPC_PEER_LEN];
    size_t n_peers;
    nvx_dht_item *item; /* PUT: what to store; GET: best so far (heap) */
    bool have_item;
} nvx__dht_lookup;

typedef struct nvx__dht_tx {
    uint8_t tid[4];
    bool used;
    uint8_t method;
    uint32_t ip;
    uint16_t port;
    uint32_t lookup; /* handle, 0: none */
    uint64_t sent_ms;
    /* The datagram, sent once more when no answer came within half the
     * timeout (one lost packet on a lossy link should not fail a node);
     * NULL when it could not be kept. */
    uint8_t *pkt;
    uint16_t pkt_len;
    bool resent;
} nvx__dht_tx;

/* Frees t's kept datagram and frees the slot. */
void nvx__dht_tx_done(nvx__dht_tx *t);

typedef struct nvx__dht_rl {
    uint32_t ip;
    uint32_t tokens_milli;
    uint64_t at_ms;
} nvx__dht_rl;

typedef struct nvx__dht_announce {
    uint8_t key[20];
    uint16_t port;
    uint64_t next_ms;
    uint32_t lookup; /* running, 0: none */
    uint8_t sent;    /* announces so far, up to NVX_DHT_EARLY_ANNOUNCES */
} nvx__dht_announce;

struct nvx_dht {
    nvx_dht_opts o;
    nvx__dht_table table;
    nvx__dht_store store;
    nvx__dht_lookup *lookups; /* NVX_DHT_LOOKUPS_MAX */
    uint32_t next_handle;
    nvx__dht_tx tx[NVX_DHT_TX_MAX];
    nvx__dht_rl rl[NVX_DHT_RL_SLOTS];
    uint64_t rand_ctr;
    uint32_t boot_ip[NVX_DHT_BOOT_MAX];
    uint16_t boot_port[NVX_DHT_BOOT_MAX];
    size_t n_boot;
    bool booted; /* a bootstrap address answered: we are part of its network */
    uint64_t next_boot_ms, last_tick_ms;
    uint64_t refreshed_ms[NVX__DHT_BUCKETS];
    nvx__dht_announce *ann; /* NVX_DHT_ANNOUNCE_MAX */
    size_t n_ann;
    nvx_dht_item *own; /* NVX_DHT_OWN_ITEMS_MAX */
    uint64_t own_next_ms[NVX_DHT_OWN_ITEMS_MAX];
    uint32_t own_lookup[NVX_DHT_OWN_ITEMS_MAX];
    size_t n_own;
    uint32_t ip_vote;
    unsigned ip_votes;
    uint64_t rx, tx_count, dropped;
};

/* dht-rpc.c */
void nvx__dht_random(nvx_dht *d, void *out, size_t n);
/* Encodes and sends m to ip:port (dropped if it does not encode). */
void nvx__dht_send(nvx_dht *d, const nvx_krpc_msg *m, uint32_t ip, uint16_t port);
/* Sends a query to ip:port for lookup (0: none); q holds the arguments. */
int nvx__dht_query(nvx_dht *d, nvx_krpc_msg *q, uint32_t ip, uint16_t port, uint32_t lookup,
                   uint64_t now_ms);

/* dht.c */
/* Our token for ip at now (the current epoch). */
void nvx__dht_token(const nvx_dht *d, uint32_t ip, uint64_t now_ms,
                    uint8_t out[static NVX__DHT_TOKEN_LEN]);

/* dht-table.c */
int nvx__dht_xor_cmp(const uint8_t target[static 20], const uint8_t a[static 20],
                     const uint8_t b[static 20]);
unsigned nvx__dht_bucket_of(const uint8_t self[static 20], const uint8_t id[static 20]);
/* A node answered us: add or refresh it. Returns 1 added, 0 refreshed or
 * not taken, -ENOMEM. */
int nvx__dht_table_heard(nvx__dht_table *t, const uint8_t id[static 20], uint32_t ip, uint16_t port,
                         bool enforce, uint64_t now_ms);
/* A query to ip:port timed out. */
void nvx__dht_table_failed(nvx__dht_table *t, uint32_t ip, uint16_t port);
bool nvx__dht_table_has(const nvx__dht_table *t, const uint8_t id[static 20]);
/* Whether a node with id would be taken now (its bucket has room). */
bool nvx__dht_table_room(const nvx__dht_table *t, const uint8_t id[static 20]);
/* Up to max nodes closest to target, closest first (fails below BAD). */
size_t nvx__dht_table_closest(const nvx__dht_table *t, const uint8_t target[static 20],
                              nvx__dht_node *out, size_t max);
/* A node not heard from since stale_before (NULL: none); round-robin. */
nvx__dht_node *nvx__dht_table_stale(nvx__dht_table *t, uint64_t stale_before);
/* Sets a new own id, re-sorting every entry. */
int nvx__dht_table_rekey(nvx__dht_table *t, const uint8_t self[static 20], bool enforce,
                         uint64_t now_ms);
void nvx__dht_table_free(nvx__dht_table *t);

/* dht-store.c */
int nvx__dht_store_peer(nvx__dht_store *s, const uint8_t key[static 20], uint32_t ip, uint16_t port,
                        uint64_t now_ms);
/* Up to max peers of key, as compact peers. */
size_t nvx__dht_store_peers(const nvx__dht_store *s, const uint8_t key[static 20],
                            uint8_t (*out)[NVX_KRPC_PEER_LEN], size_t max, uint64_t now_ms);
/* Stores a verified item from source (cas: the sequence the putter
 * expects, or NULL). Returns 0, -ERANGE (older seq: error 302), -ESTALE
 * (cas mismatch: 301), -ENOSPC (source or table full). */
int nvx__dht_store_item(nvx__dht_store *s, const nvx_dht_item *item, const int64_t *cas,
                        uint32_t source, uint64_t now_ms);
const nvx_dht_item *nvx__dht_store_get_item(const nvx__dht_store *s,
                                            const uint8_t target[static 20], uint64_t now_ms);
void nvx__dht_store_expire(nvx__dht_store *s, uint64_t now_ms);
void nvx__dht_store_free(nvx__dht_store *s);

/* dht-lookup.c */
nvx__dht_lookup *nvx__dht_lookup_find(nvx_dht *d, uint32_t handle);
/* Adds a candidate (sorted by distance, the furthest dropped when full). */
void nvx__dht_lookup_add(nvx__dht_lookup *l, const uint8_t id[20], uint32_t ip, uint16_t port,
                         unsigned hop);
/* Sends what the lookup may send now; finishes it when nothing is left. */
void nvx__dht_lookup_step(nvx_dht *d, nvx__dht_lookup *l, uint64_t now_ms);
/* A response (r) or timeout (r == NULL) from ip:port for lookup l. */
void nvx__dht_lookup_reply(nvx_dht *d, nvx__dht_lookup *l, uint32_t ip, uint16_t port,
                           const nvx_krpc_msg *r, uint64_t now_ms);
void nvx__dht_lookup_end(nvx_dht *d, nvx__dht_lookup *l, bool report);
/* The peers (values) of r that the lookup has not reported yet: kept and
 * reported (the callback may cancel the lookup). */
void nvx__dht_lookup_peers(nvx__dht_lookup *l, const nvx_krpc_msg *r);

#endif
