/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_GOSSIP_H
#define NVX_DAEMON_GOSSIP_H
/*
 * Gossip: provider records ("node N has model M"), signed name records
 * (libcas/namerec.h) and peer exchange, spread through the mesh in ANNOUNCE
 * and PEERS messages (proto/message.h). Sans-I/O: no sockets, no clocks, no
 * store. The daemon feeds it events (a session came up or went down, an
 * ANNOUNCE or PEERS message arrived, time passed) and it asks, through
 * callbacks, to send message bodies, to store a name record, or to dial a
 * peer it heard of.
 *
 * Time: every now_ms is the wall clock (Unix time in milliseconds), because
 * provider records carry their node's signed Unix time.
 *
 * Rules (the "why" is in gossip.c):
 * - Provider records are signed by their node over (node, model, time, TTL)
 *   (proto_provider_sign) and live until time + TTL (+ NVX_GOSSIP_SKEW_S for
 *   clock differences). Name records carry a TTL from receipt. Every record
 *   has a hop count: it is forwarded to every other session with hops - 1
 *   while hops > 0, never back to the session it came from, and forgotten
 *   when it expires.
 * - De-duplication: one slot per provider (node, model) and per name
 *   (publisher key id, name). A provider record is new when its signed time
 *   is later than the known one (a copy coming back around a loop is not;
 *   a node's refresh is). A name record is new when its sequence is higher
 *   than the known one (highest valid sequence wins; an equal sequence
 *   naming something else is dropped: first seen wins).
 * - Signatures (Ed25519) are checked for every record that would be new,
 *   before it is kept, forwarded or reported; a bad one is dropped and
 *   counted. Records from the future (beyond the skew), with a TTL over
 *   NVX_GOSSIP_TTL_MAX_S or all-zero ids are dropped as invalid.
 * - Shares: each session (the origin of what it sent) holds at most
 *   origin_share records; a full table evicts records whose session is
 *   gone first, then those of the session holding the most (never our own).
 * - Peer exchange: addresses carry their source (daemon/pex.h); a PEERS
 *   message never replaces a first-hand or self-announced address, and
 *   only numeric ones are kept. The daemon dials them pinned to the id.
 * - Rate limits per session: a token bucket of records (rate_per_s, burst);
 *   records over it are dropped. One PEERS message per
 *   NVX_GOSSIP_PEX_MIN_INTERVAL_MS is looked at; others are ignored.
 * - A new session gets every live record (in ANNOUNCE batches of up to
 *   PROTO_ANNOUNCE_MAX) and a PEERS list of known addresses; the node's own
 *   provider records are re-announced every ttl/2, its own name records
 *   whenever a session comes up.
 *
 * Threads: not thread-safe; call everything from the daemon's loop thread.
 * Callbacks run inside the call that caused them; they must not call back
 * into the same nvx_gossip.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/pex.h"
#include "libcas/namerec.h"
#include "proto/message.h"
#include "proto/session.h"

enum nvx_gossip_limits {
    NVX_GOSSIP_TTL_DEFAULT_S = 30 * 60,       /* own provider records */
    NVX_GOSSIP_NAME_TTL_DEFAULT_S = 6 * 3600, /* name records held in memory */
    NVX_GOSSIP_TTL_MAX_S = 24 * 3600,         /* longest TTL accepted (names: clamped) */
    NVX_GOSSIP_HOPS_DEFAULT = 6,
    NVX_GOSSIP_HOPS_MAX = 16, /* incoming hop counts are clamped to this */
    NVX_GOSSIP_RECORDS_DEFAULT = 4096,
    NVX_GOSSIP_RECORDS_MAX = 1 << 20,
    NVX_GOSSIP_SESSIONS_MAX = 1024,
    NVX_GOSSIP_KNOWN_DEFAULT = 256, /* addresses kept for peer exchange */
    NVX_GOSSIP_RATE_DEFAULT = 50,   /* records per second per session */
    NVX_GOSSIP_BURST_DEFAULT = 256, /* a full sync of a small mesh */
    NVX_GOSSIP_SKEW_S = 5 * 60,     /* clock difference allowed to a provider's signed time */
    NVX_GOSSIP_PEX_MIN_INTERVAL_MS = 10 * 1000,
    NVX_GOSSIP_PEX_INTERVAL_MS = 5 * 60 * 1000, /* PEERS re-sent to every session */
    NVX_GOSSIP_DIALS_PER_PEERS = 8,             /* dial callbacks per PEERS message */
    /* Records one session may hold: records_max / this, by default. */
    NVX_GOSSIP_ORIGIN_SHARE_DIV = 8,
};

typedef struct nvx_gossip nvx_gossip;

typedef struct nvx_gossip_ops {
    /* Sends message m (PROTO_MSG_ANNOUNCE or PROTO_MSG_PEERS) to session
     * peer (nvx_peer_send()). m and everything it points to are borrowed for
     * the call. A negative return is counted (stats.send_errors), nothing
     * else. */
    int (*send)(void *userdata, uint64_t peer, const proto_msg *m);
    /* A provider record was learned or refreshed (may be NULL). */
    void (*provider)(void *userdata, const uint8_t node_id[static PROTO_ID_LEN],
                     const uint8_t model_id[static PROTO_ID_LEN], uint64_t expires_ms);
    /* A verified name record that wins over what gossip knew (may be NULL):
     * store it (cas_namerec_store_put() keeps the highest sequence). */
    void (*name)(void *userdata, const cas_namerec *rec);
    /* Peer exchange heard of a node we are not connected to (may be NULL).
     * addr is a token as in HELLO ("tcp://192.0.2.1:7000"); the daemon
     * decides whether to dial. */
    void (*dial)(void *userdata, const uint8_t node_id[static PROTO_ID_LEN], const char *addr);
} nvx_gossip_ops;

/* Zero fields take the defaults above. */
typedef struct nvx_gossip_cfg {
    /* Our identity: signs our provider records (proto_provider_sign). NULL:
     * a relay only (nvx_gossip_provide() is -EINVAL); then node_id is ours. */
    const proto_identity *identity;
    uint8_t node_id[PROTO_ID_LEN]; /* ours (from identity when given) */
    const nvx_gossip_ops *ops;     /* required, with ops->send */
    void *userdata;
    uint32_t ttl_s;       /* TTL of our provider records */
    uint32_t name_ttl_s;  /* how long learned name records are held and synced */
    uint8_t hops;         /* hop count of our records */
    uint32_t records_max; /* records held (own ones included) */
    uint32_t known_max;   /* peer-exchange addresses held */
    /* Records held from any one session (their origin): past it, that
     * session's own records make room for its new ones. 0:
     * records_max / NVX_GOSSIP_ORIGIN_SHARE_DIV. */
    uint32_t origin_share;
    uint32_t rate_per_s; /* per-session record rate ... */
    uint32_t burst;      /* ... and burst */
} nvx_gossip_cfg;

typedef struct nvx_gossip_stats {
    uint64_t records;      /* held now */
    uint64_t accepted;     /* new or refreshed records from peers */
    uint64_t duplicates;   /* known already (or stale) */
    uint64_t invalid;      /* bad signature, zero id, our own id */
    uint64_t rate_dropped; /* over a session's rate */
    uint64_t evicted;      /* dropped because the table was full */
    uint64_t expired;
    uint64_t forwarded;   /* records sent on to other sessions */
    uint64_t messages;    /* messages handed to ops->send */
    uint64_t send_errors; /* ops->send returned < 0 */
    uint64_t dials;       /* ops->dial calls */
    uint64_t pex_refused; /* gossiped addresses refused: a name, or over a better source's */
} nvx_gossip_stats;

/* Creates a gossip state. Returns 0 and *ret, -EINVAL (no ops/send, limits
 * out of range), -ENOMEM. */
int nvx_gossip_new(const nvx_gossip_cfg *cfg, nvx_gossip **ret);

/* Frees g (NULL is a no-op). */
void nvx_gossip_free(nvx_gossip *g);

/*
 * A session to node_id came up (after the handshake); peer is the daemon's
 * handle for it, unique among live sessions. Sends it every live record and
 * a PEERS list. Returns 0, -EEXIST (peer already up), -EMSGSIZE (more than
 * NVX_GOSSIP_SESSIONS_MAX sessions), -ENOMEM.
 */
int nvx_gossip_peer_up(nvx_gossip *g, uint64_t peer, const uint8_t node_id[static PROTO_ID_LEN],
                       uint64_t now_ms);

/* The session went away. Unknown handles are ignored. */
void nvx_gossip_peer_down(nvx_gossip *g, uint64_t peer);

/*
 * A decoded message from session peer. ANNOUNCE and PEERS are handled; other
 * types are ignored (returns 0). Returns the number of records accepted
 * (>= 0), -ENOENT when peer is not up. Bad or excess records are dropped and
 * counted, never an error: one bad record should not cost a session.
 */
int nvx_gossip_on_message(nvx_gossip *g, uint64_t peer, const proto_msg *m, uint64_t now_ms);

/* Expires records, re-announces our own provider records every ttl/2 and
 * re-sends PEERS every NVX_GOSSIP_PEX_INTERVAL_MS. Call about once a second. */
void nvx_gossip_tick(nvx_gossip *g, uint64_t now_ms);

/* Announces that this node has model_id (now and every ttl/2 until
 * nvx_gossip_unprovide()). Idempotent. Returns 0, -ENOMEM, -ENOSPC (table
 * full of own records). */
int nvx_gossip_provide(nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN], uint64_t now_ms);

/* Stops announcing model_id (peers forget it when its TTL runs out).
 * Returns 0 or -ENOENT. */
int nvx_gossip_unprovide(nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN]);

/*
 * Announces a name record (verified here) to every session. With own, it is
 * held until the daemon stops and sent to every new session; otherwise (a
 * record loaded from the store) it is held for name_ttl_s. Publishing a
 * record gossip holds already sends nothing but renews it (own: for good),
 * so the daemon can reload its stored records now and then to keep them
 * synced to new sessions. Returns 1 when announced, 0 when gossip already
 * knew it or a higher sequence, -EBADMSG (bad signature), -ENOMEM, -ENOSPC.
 */
int nvx_gossip_publish(nvx_gossip *g, const cas_namerec *rec, bool own, uint64_t now_ms);

/* Remembers an address of a node for peer exchange; source: enum
 * nvx_pex_source (daemon/pex.h): NVX_PEX_FIRST_HAND for the address of a
 * session we dialed, NVX_PEX_CLAIMED for a peer's HELLO address or LAN
 * discovery. addr: a token of 1..PROTO_ADDR_MAX bytes (NUL-terminated).
 * Returns 0, -EINVAL, -EPERM (a better source gave another address). */
int nvx_gossip_add_addr(nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN], const char *addr,
                        int source, uint64_t now_ms);

/* A dial of addr pinned to node_id met another key: forgets the address
 * when it is still the one known and came from gossip. Returns 0 or
 * -ENOENT. */
int nvx_gossip_forget_addr(nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN],
                           const char *addr);

/* Copies up to cap node ids that provide model_id (live records, ours
 * included) into ret; returns how many there are in all. */
size_t nvx_gossip_providers(const nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN],
                            uint64_t now_ms, uint8_t (*ret)[PROTO_ID_LEN], size_t cap);

/* Number of sessions up. */
size_t nvx_gossip_sessions(const nvx_gossip *g);

/* True when a session to node_id is up. */
bool nvx_gossip_connected(const nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN]);

/* Copies the address known for node_id (nvx_gossip_add_addr(), peer
 * exchange) into ret (cap bytes, NUL-terminated). Returns its source
 * (enum nvx_pex_source, >= 0), -ENOENT, -EMSGSIZE (cap short). */
int nvx_gossip_addr(const nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN], char *ret,
                    size_t cap);

/* Copies the counters. */
void nvx_gossip_stats_get(const nvx_gossip *g, nvx_gossip_stats *ret);

#endif
