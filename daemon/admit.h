/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_ADMIT_H
#define NVX_DAEMON_ADMIT_H
/*
 * Who gets a session slot: the node's admission policy, sans-I/O. The node
 * (daemon/node.c) describes its live sessions as an array of nvx_admit_peer
 * and asks before it accepts a connection or dials; the answer is "yes",
 * "no", or "yes once you close session i" (the caller closes it and asks
 * again with the array rebuilt).
 *
 * Why: keys are free and so are addresses inside one network, so an
 * attacker can open max_peers authenticated, idle sessions and lock the
 * node out of the peers it is configured to use. The rules:
 *
 * - Outbound slots are kept: inbound sessions (handshaking or not) hold at
 *   most max_peers - reserve slots (reserve = max_peers / 4, at least 1 unless
 *   max_peers is 1), so
 *   a configured dial always finds room unless our own dials filled it.
 * - A dial for a configured peer or a useful one (a provider of a model we
 *   fetch) that finds every slot taken evicts an idle session that is
 *   neither: handshaking inbound ones first, then the idlest from the most
 *   crowded network prefix. Idle: no useful traffic (DATA either way) for
 *   NVX_ADMIT_IDLE_MS. Other dials (peer exchange, discovery) only take a
 *   free slot.
 * - Inbound connections per address are capped (per_addr) and per network
 *   prefix (per_prefix: /24 for IPv4, /48 for IPv6). A newcomer over a cap
 *   replaces the oldest connection of that address (prefix) still
 *   handshaking, else it is refused. Past NVX_ADMIT_HANDSHAKING_MAX inbound
 *   handshakes, the oldest makes room (a silent flood never locks anyone
 *   out).
 * - A newcomer that finds the inbound slots full replaces the oldest
 *   inbound handshake, else the idlest inbound session of the most crowded
 *   prefix, else it is refused.
 *
 * Loopback (127.0.0.0/8, ::1) counts by full address for the per-address
 * cap, but has no prefix cap unless prefix_loopback is set (one machine is
 * one party; tests set it to exercise the /24 rule on 127.0.0.x). An
 * address that is not an IP (the in-memory transport's) counts as itself
 * and has no prefix.
 *
 * Pure functions; any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nvx_admit_limits {
    NVX_ADMIT_HANDSHAKING_MAX = 16,    /* inbound connections still handshaking */
    NVX_ADMIT_PER_ADDR_DEFAULT = 8,    /* inbound sessions from one address */
    NVX_ADMIT_PER_PREFIX_DEFAULT = 16, /* inbound sessions from one /24 or /48 */
    NVX_ADMIT_IDLE_MS = 10 * 1000,     /* no DATA for this long: may be evicted */
    NVX_ADMIT_KEY_LEN = 17,            /* family byte + up to 16 address bytes */
};

/* An address reduced to what the caps compare. */
typedef struct nvx_admit_key {
    uint8_t b[NVX_ADMIT_KEY_LEN];
} nvx_admit_key;

/* One live (not closing) session or connection, as the node sees it. */
typedef struct nvx_admit_peer {
    const char *addr; /* "1.2.3.4:5", "[::1]:5", or any transport address */
    bool inbound;
    bool established;
    bool protected_; /* configured, or dialed as useful: never evicted */
    uint64_t t_start_ms;
    uint64_t t_useful_ms; /* last DATA either way; 0: never */
} nvx_admit_peer;

typedef struct nvx_admit_cfg {
    unsigned max_peers;   /* all sessions, >= 1 */
    unsigned per_addr;    /* 0: NVX_ADMIT_PER_ADDR_DEFAULT */
    unsigned per_prefix;  /* 0: NVX_ADMIT_PER_PREFIX_DEFAULT */
    bool prefix_loopback; /* test hook: cap 127.0.0.0/8 by /24 too */
} nvx_admit_cfg;

enum nvx_admit_verdict {
    NVX_ADMIT_YES = 0,
    NVX_ADMIT_NO,
    NVX_ADMIT_EVICT, /* close peers[*ret_victim], then ask again */
    _NVX_ADMIT_VERDICT_MAX,
};

enum nvx_admit_dial {
    NVX_ADMIT_DIAL_PLAIN = 0, /* peer exchange, discovery: free slots only */
    NVX_ADMIT_DIAL_USEFUL,    /* configured, or a provider of a wanted model */
    _NVX_ADMIT_DIAL_MAX,
};

/* The per-address key and the per-prefix key of addr ("host:port"; the
 * port is ignored). ret_has_prefix is false when no prefix cap applies.
 * Never fails: a non-IP address is its own key. */
void nvx_admit_keys(const char *addr, bool prefix_loopback, nvx_admit_key *ret_addr,
                    nvx_admit_key *ret_prefix, bool *ret_has_prefix);

/* May a connection from addr be accepted now, given the n sessions in
 * peers? Returns a verdict; with NVX_ADMIT_EVICT, *ret_victim indexes
 * peers. */
int nvx_admit_inbound(const nvx_admit_cfg *cfg, const nvx_admit_peer *peers, size_t n,
                      const char *addr, uint64_t now_ms, size_t *ret_victim);

/* May the node dial now (kind: enum nvx_admit_dial)? Same answers. */
int nvx_admit_dial(const nvx_admit_cfg *cfg, const nvx_admit_peer *peers, size_t n, int kind,
                   uint64_t now_ms, size_t *ret_victim);

/* The inbound slots: max_peers less the reserve kept for dialing. */
unsigned nvx_admit_inbound_max(unsigned max_peers);

#endif
