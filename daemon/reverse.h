/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_REVERSE_H
#define NVX_DAEMON_REVERSE_H
/*
 * Connection reversal, the decisions (sans-I/O; daemon/mesh.c sends and
 * dials). A node behind a NAT that could not be mapped (daemon/natmap.h)
 * cannot be dialed, but it dials out, so it keeps sessions with public
 * nodes. A fetcher F that wants such a node T asks the nodes it has
 * sessions with (relays) with REVERSE_REQ(T); a relay R that has a session
 * with T sends it REVERSE(F, address of F); T dials F, pinned to F's id.
 * proto/PROTOCOL.md documents the messages.
 *
 * Every party bounds what the others can make it do:
 * - relay: only an established session may ask; at most
 *   NVX_REVERSE_RELAY_BURST requests at once, one more per
 *   NVX_REVERSE_RELAY_MS, per asking session; it forwards only to a node
 *   it has a session with (one message out per message in: no
 *   amplification), and only an address of F whose host is the host F's
 *   session comes from (so nobody can point T at a third party's host);
 * - target: obeys only a relay it has a session with, at most
 *   NVX_REVERSE_DIAL_BURST dials at once, one more per NVX_REVERSE_DIAL_MS
 *   per relay, NVX_REVERSE_PENDING_MAX dials in flight in all; each dial is
 *   pinned to F's node id, so a host that is not F fails the handshake,
 *   and a relay whose dials met another key NVX_REVERSE_STRIKES times is
 *   ignored for NVX_REVERSE_BAN_MS;
 * - fetcher: asks again for one target at most every NVX_REVERSE_RETRY_MS,
 *   through at most NVX_REVERSE_RELAYS_MAX relays.
 *
 * Peers are named by a 32-byte node id (the relay's and F's) or by the
 * caller's 64-bit session handle. Loop thread only.
 */
#include <stdbool.h>
#include <stdint.h>

enum nvx_reverse_limits {
    NVX_REVERSE_RELAY_BURST = 4,
    NVX_REVERSE_RELAY_MS = 1000,
    NVX_REVERSE_DIAL_BURST = 4,
    NVX_REVERSE_DIAL_MS = 2000,
    NVX_REVERSE_PENDING_MAX = 8,
    NVX_REVERSE_PENDING_MS = 15000, /* a dial not resolved by then is forgotten */
    NVX_REVERSE_STRIKES = 2,
    NVX_REVERSE_BAN_MS = 10 * 60 * 1000,
    NVX_REVERSE_RETRY_MS = 2000,
    NVX_REVERSE_RELAYS_MAX = 4,
    NVX_REVERSE_TABLE = 64, /* entries per table; the least recently used goes */
};

typedef struct nvx_reverse nvx_reverse;

/* Returns 0 and *ret, -ENOMEM. */
int nvx_reverse_new(nvx_reverse **ret);
void nvx_reverse_free(nvx_reverse *r); /* NULL: no-op */

/* Relay: session `from` sent REVERSE_REQ; true when it is within its rate
 * (the caller still checks the target's session and F's address). */
bool nvx_reverse_relay_ok(nvx_reverse *r, uint64_t from, uint64_t now_ms);

/* The session went away: its rate state goes too. */
void nvx_reverse_session_gone(nvx_reverse *r, uint64_t session);

/* Target: relay (node id) asks us to dial node at addr. True when we should
 * (the dial is then pending until nvx_reverse_resolved or a mismatch). */
bool nvx_reverse_dial_ok(nvx_reverse *r, const uint8_t relay[static 32],
                         const uint8_t node[static 32], const char *addr, uint64_t now_ms);

/* A session with node is up: its pending dial (if any) succeeded. */
void nvx_reverse_resolved(nvx_reverse *r, const uint8_t node[static 32]);

/* A dial pinned to node met another key at addr: when a relay asked for
 * it, the relay gets a strike. Returns true when it was a reversal dial. */
bool nvx_reverse_mismatch(nvx_reverse *r, const uint8_t node[static 32], const char *addr,
                          uint64_t now_ms);

/* Fetcher: true when it is time to ask relays for target again. */
bool nvx_reverse_want(nvx_reverse *r, const uint8_t target[static 32], uint64_t now_ms);

/* Reversal dials in flight (tests, status). */
unsigned nvx_reverse_pending(const nvx_reverse *r, uint64_t now_ms);

#endif
