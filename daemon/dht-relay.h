/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DHT_RELAY_H
#define NVX_DAEMON_DHT_RELAY_H
/*
 * Connection reversal for providers the DHT found (proto/PROTOCOL.md,
 * section 9, "Relays"). The DHT names a provider by its address only, and
 * a provider behind a NAT that maps nothing cannot be dialed there. So:
 *
 * - a node that can be dialed from outside (its port is mapped, or it
 *   listens on a public address) announces itself under
 *   nvx_dht_relay_key() with its nvx port, and stops when that changes;
 * - a node that cannot, and shares models, keeps sessions with
 *   NVX_DHTRELAY_KEEP of the nodes announced there, the ones ranked first for its external address
 *   (nvx_dhtrelay_rank());
 * - a fetcher that has no session with a provider the DHT named
 *   NVX_DHTRELAY_GRACE_MS after it dialed it connects to the
 *   NVX_REVERSE_RELAYS_MAX relays ranked first for the provider's address
 *   (most likely the ones it keeps; looked up at once) and asks them with
 *   REVERSE_AT to have the provider dial back (daemon/mesh.h,
 *   nvx_mesh_ask_at()), for NVX_DHTRELAY_TARGET_MS.
 *
 * What strangers can make it do is bounded: one relay lookup at a time,
 * the next NVX_DHTRELAY_LOOKUP_MS after one that found relays (2 s after
 * one that found none, doubling up to NVX_DHTRELAY_FRESH_MS), NVX_DHTRELAY_FOUND_MAX
 * addresses kept from it, each dialed at most once per
 * NVX_DHTRELAY_REDIAL_MS, NVX_DHTRELAY_TARGETS providers chased at once.
 * Every dial is a normal authenticated session: nothing from the DHT is
 * trusted.
 *
 * Loop thread only.
 */
#include <stdint.h>

#include <uv.h>

#include "daemon/dht-uv.h"
#include "daemon/mesh.h"
#include "daemon/natmap.h"
#include "daemon/node.h"

enum {
    NVX_DHTRELAY_KEEP = 2,
    NVX_DHTRELAY_FOUND_MAX = 32,
    NVX_DHTRELAY_FRESH_MS = 60 * 1000, /* a lookup's answer is used this long */
    NVX_DHTRELAY_LOOKUP_MS = 10 * 1000,
    NVX_DHTRELAY_REDIAL_MS = 15 * 1000,
    NVX_DHTRELAY_TARGETS = 16,
    NVX_DHTRELAY_GRACE_MS = 2000,
    NVX_DHTRELAY_TARGET_MS = 60 * 1000,
    NVX_DHTRELAY_REACH_MS = 5000, /* how often reachability is looked at again */
    NVX_DHTRELAY_TICK_MS = 500,
};

typedef struct nvx_dhtrelay nvx_dhtrelay;

typedef struct nvx_dhtrelay_opts {
    uv_loop_t *loop;
    nvx_dhtuv *dht;
    nvx_node *node;
    nvx_mesh *mesh;
    nvx_natmap *natmap; /* may be NULL: no mapping */
    bool relay;         /* announce ourselves as a relay when reachable */
} nvx_dhtrelay_opts;

/* Starts the timer. Returns 0 and *ret, -EINVAL, -ENOMEM. */
int nvx_dhtrelay_new(const nvx_dhtrelay_opts *o, nvx_dhtrelay **ret);

/* Stops the relay announce and the lookup, frees r once its timer closed
 * (NULL is fine). Before the mesh and the DHT close. */
void nvx_dhtrelay_close(nvx_dhtrelay *r);

/* The DHT named addr ("A.B.C.D:PORT") as a provider of a model being
 * fetched, and it was dialed: chase it through relays when no session
 * reaches it soon (above). Returns 0, -EINVAL, -ENOSPC. */
int nvx_dhtrelay_want(nvx_dhtrelay *r, const char *addr);

/* The rank of a relay at relay_addr for a node whose external IPv4
 * address is ip (host order): the first 8 bytes of BLAKE2b-256(ip, 4 bytes
 * big-endian || relay_addr) as a big-endian number; lowest first. */
uint64_t nvx_dhtrelay_rank(uint32_t ip, const char *relay_addr);

#endif
