/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_SUPERSEED_H
#define NVX_DAEMON_SUPERSEED_H
/*
 * Super-seeding of one complete model (after BitTorrent's super-seeding,
 * BEP 16): which chunks a seeder tells each fetcher it has. Sans-I/O: no
 * sockets, no store, no clock; serve.c drives it.
 *
 * Why: a lone seeder that answers HAVE ALL lets every fetcher ask it for any
 * chunk. Fetchers pick at random among equally rare chunks, but a chunk the
 * seeder sent to one fetcher looks rare to the others until its HAVE
 * arrives, so the seeder sends some chunks several times (1.25 copies for
 * 8 fetchers), and its uplink, the swarm's bottleneck, carries them.
 *
 * How: the seeder's HAVE to a fetcher names only the chunks it reveals to
 * that fetcher, and each chunk is revealed to one fetcher only, drawn at
 * random from the chunks never revealed. A fetcher is kept a few chunks
 * ahead (NVX_SS_AHEAD_TOTAL shared by the fetchers, at least
 * NVX_SS_AHEAD_MIN each; a lone fetcher gets the whole depth, so that its
 * link and not the reveals bounds it, but at most an eighth of the model,
 * so that the first of many fetchers cannot take a small model's whole
 * pool): when one of its revealed chunks reaches it (the seeder sent it, or
 * the fetcher announced it got it elsewhere), the seeder reveals another.
 * Other fetchers get that chunk from the fetcher that holds it (fetchers
 * announce each verified chunk to peers whose HAVE was partial, which the
 * seeder's is), and tell the seeder so: it knows who holds what. Chunks
 * revealed to a fetcher that left, and chunks that only a fetcher that
 * left held, go back into the pool and are revealed again. Once the pool
 * is empty and nothing new happened (no reveal, no chunk reaching the
 * swarm for the first time) for NVX_SS_TAIL_MS, each fetcher is told HAVE
 * ALL and the seeder serves as usual: while the swarm still trades, the
 * seeder stays out of its way (every chunk left it once, and what it would
 * send twice the fetchers have for each other); a fetcher that sits on its
 * reveals cannot hold the others back for longer than that. Once every
 * chunk is out, a fetcher that got none for NVX_SS_STARVE_MS while it
 * lacks some (its peers left, or never held them) is told HAVE ALL alone,
 * at once. A reveal the
 * fetcher has not taken after NVX_SS_STALE_MS stops counting against its
 * depth: a resumed fetcher may hold it already and says nothing.
 *
 * Memory: 6 bytes and 2 bits per chunk, plus 5 bits per chunk and fetcher.
 * Thread safety: none (the loop).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NVX_SS_AHEAD_TOTAL = 512, /* revealed chunks not yet held, all fetchers */
    NVX_SS_AHEAD_MIN = 16,    /* ... and for each */
    NVX_SS_SHARE_DIV = 8,     /* one fetcher: at most n_chunks / 8 of them (>= MIN) */
    NVX_SS_PEERS_MAX = 256,
    NVX_SS_TAIL_MS = 10000,  /* after the last reveal: HAVE ALL regardless */
    NVX_SS_STALE_MS = 3000,  /* a reveal not taken this long stops counting */
    NVX_SS_STARVE_MS = 3000, /* a fetcher that got nothing this long: HAVE ALL */
};

typedef struct nvx_ss nvx_ss;
typedef struct nvx_ss_peer nvx_ss_peer;

/* A model of n_chunks chunks (1..PROTO_CHUNKS_MAX); seed orders the
 * reveals (the caller's randomness). Returns 0, -EINVAL, -ENOMEM. */
int nvx_ss_new(uint32_t n_chunks, uint64_t seed, nvx_ss **ret);

/* Frees it and its peers (NULL is a no-op). */
void nvx_ss_free(nvx_ss *ss);

/* A fetcher asked for the model. Returns 0, -ENOMEM, -ENOSPC. */
int nvx_ss_peer_add(nvx_ss *ss, nvx_ss_peer **ret);

/* The fetcher left: the chunks revealed to it that it did not get go back
 * into the pool. pp is freed. */
void nvx_ss_peer_remove(nvx_ss *ss, nvx_ss_peer *pp);

/* The fetcher holds chunk idx now (we sent it, or it announced it). Out of
 * range: ignored. */
void nvx_ss_peer_got(nvx_ss *ss, nvx_ss_peer *pp, uint32_t idx);

/* The fetcher asked again (fetchers repeat WANT to partial holders every
 * few seconds): the reveals it has not taken go back into the pool, to be
 * dealt to whoever asks next (each at most once per fetcher), and it is
 * dealt a fresh set. What it got, or asked us for, stays its own. Re-dealing keeps the seeder's
 * reveals with the fetchers that take them: measured on bench-swarm.sh, 16 fetchers finished in 53
 * s with it and 70 to 84 s without. */
void nvx_ss_peer_redeal(nvx_ss *ss, nvx_ss_peer *pp);

/* The fetcher requested chunk idx from us: the reveal is taken (not
 * re-dealt), though its bytes have not left yet. */
void nvx_ss_peer_asked(nvx_ss *ss, nvx_ss_peer *pp, uint32_t idx);

/* True when the fetcher holds every chunk (as far as we know). */
bool nvx_ss_peer_has_all(const nvx_ss *ss, const nvx_ss_peer *pp);

/* What to tell the fetcher now (now_ms: the caller's monotonic clock):
 * writes up to cap newly revealed chunk indices (ascending) to out and
 * returns how many; *ret_all becomes true, once, when the fetcher is to be
 * told HAVE ALL instead (see above). Call it after every got and now and
 * then (a timer), so the tail's HAVE ALL is not missed. */
size_t nvx_ss_reveal(nvx_ss *ss, nvx_ss_peer *pp, uint64_t now_ms, uint32_t *out, size_t cap,
                     bool *ret_all);

/* Chunks never revealed yet (0: the seeder serves as usual). */
uint32_t nvx_ss_pool(const nvx_ss *ss);

#endif
