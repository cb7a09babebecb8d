/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_RECIP_H
#define NVX_DAEMON_RECIP_H
/*
 * Reciprocation: whose REQUESTs a fetching node's uplink serves first when
 * more peers ask than it can serve (BitTorrent's tit-for-tat with an
 * optimistic unchoke, adapted to requests and answers). Sans-I/O: the
 * adapter reports bytes received from each peer, how many of its requests
 * wait, and the time; it asks whether a peer's request may be served now.
 *
 * - Every rank_ms the peers that sent us the most useful bytes (DATA that
 *   answered our requests) lately get the regular slots, up to
 *   NVX_RECIP_SLOTS, among peers that asked us for something lately.
 *   A peer that never sent us anything never holds a regular slot.
 * - One more, optimistic slot rotates every optimistic_ms among the other
 *   interested peers, chosen at random; peers that arrived within
 *   new_ms are NVX_RECIP_NEW_WEIGHT times as likely to get it, so a
 *   newcomer gets the first chunks it can then trade.
 * - Who waits: while a regular holder has requests waiting, everyone
 *   else (the optimistic holder included) is choked; while only the
 *   optimistic holder waits, peers outside the slots are choked. So the
 *   optimistic holder gets what the regular holders leave, before anyone
 *   else: a chance to show it reciprocates, without taking a fifth of the
 *   uplink from peers that do (a free-rider asks everyone all the time,
 *   and would win every optimistic slot's share). Capacity the slots
 *   leave idle goes to anyone (work-conserving), so a free-rider gets
 *   less when the uplink is short, never nothing, and a node whose peers
 *   have not uploaded yet serves as before.
 *
 * The adapter answers a choked request NOT_FOUND BUSY at once (never
 * queues it silently): the asker retries after NVX_XFER_BUSY_RETRY_MS and
 * meanwhile asks peers that do serve it. It asks only for requests of a
 * model this node is fetching: a seeder, or a node whose fetch finished,
 * has no one to reciprocate with and serves everyone as before
 * (super-seeding, round-robin).
 *
 * Loop thread only. Time is passed in (ms, monotonic).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NVX_RECIP_SLOTS = 4,                 /* regular slots: the best uploaders to us */
    NVX_RECIP_RANK_MS = 10 * 1000,       /* ranking recomputed (BitTorrent: 10 s) */
    NVX_RECIP_OPTIMISTIC_MS = 30 * 1000, /* optimistic slot rotated (BitTorrent: 30 s) */
    NVX_RECIP_NEW_MS = 60 * 1000,        /* a peer this new is favoured for it */
    NVX_RECIP_NEW_WEIGHT = 3,            /* ... this many times as likely */
    NVX_RECIP_PEERS_MAX = 4096,          /* peers tracked at once (-EMSGSIZE past it) */
};

typedef struct nvx_recip nvx_recip;
typedef struct nvx_recip_peer nvx_recip_peer;

/* Intervals; zero fields take the NVX_RECIP_* defaults. Tests and the
 * simulation scale them to their shorter transfers. */
typedef struct nvx_recip_cfg {
    uint64_t rank_ms, optimistic_ms, new_ms;
} nvx_recip_cfg;

/* Creates the state (cfg NULL: defaults; seed drives the optimistic
 * draw). Returns 0 or -ENOMEM; *ret on success only. */
int nvx_recip_new(const nvx_recip_cfg *cfg, uint64_t seed, uint64_t now_ms, nvx_recip **ret);
/* Frees r and every peer still in it; accepts NULL. */
void nvx_recip_free(nvx_recip *r);

/* A peer to track (arrived now). Returns 0, -ENOMEM or -EMSGSIZE; the
 * handle lives until nvx_recip_peer_remove() or nvx_recip_free(). */
int nvx_recip_peer_add(nvx_recip *r, uint64_t now_ms, nvx_recip_peer **ret);
/* Forgets p (its session closed); accepts NULL. */
void nvx_recip_peer_remove(nvx_recip *r, nvx_recip_peer *p);

/* p sent us bytes of useful DATA (payload that answered our requests). */
void nvx_recip_received(nvx_recip *r, nvx_recip_peer *p, uint64_t bytes);
/* p has n requests waiting in our serve queue now (call on each change). */
void nvx_recip_queued(nvx_recip *r, nvx_recip_peer *p, size_t n, uint64_t now_ms);
/* Time passes: re-ranks every rank_ms, rotates the optimistic slot every
 * optimistic_ms (or at once when its holder left or lost interest). Call
 * it often (nvxd: every node tick); cheap between rankings. */
void nvx_recip_tick(nvx_recip *r, uint64_t now_ms);

/* Whether p holds a slot (regular or optimistic). */
bool nvx_recip_unchoked(const nvx_recip *r, const nvx_recip_peer *p);
/* Whether p's request must wait now (answer it BUSY): a regular holder
 * has requests waiting and p is not one, or p holds no slot and the
 * optimistic holder has requests waiting. */
bool nvx_recip_choked(const nvx_recip *r, const nvx_recip_peer *p);
/* p's received rate in bytes/s as last ranked (tests, status). */
uint64_t nvx_recip_rate(const nvx_recip_peer *p);

#endif
