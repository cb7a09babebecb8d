/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DISCOVERY_H
#define NVX_DAEMON_DISCOVERY_H
/*
 * LAN discovery by UDP multicast (IPv4). Every node sends a small
 * announcement to a multicast group every interval; a node that hears
 * another's announcement reports "dial this peer" through a callback (the
 * daemon decides whether to dial: sessions are authenticated by the
 * handshake, so a forged announcement costs a failed dial, nothing more).
 *
 * Defaults: group 239.255.77.88 (IPv4 organisation-local scope), UDP port
 * 7788, multicast TTL 1 (never leaves the link), one announcement at start
 * and then every NVX_DISC_INTERVAL_MS. Off with nvxd's config (the daemon
 * simply does not call nvx_disc_start()).
 *
 * Announcement (40 bytes; integers big-endian like the peer protocol):
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    magic "NVXD"
 *   4      1    version, 1
 *   5      1    flags, 0 (others are refused: a newer format gets a new
 *               version)
 *   6      2    TCP port the node listens on, 1..65535
 *   8      32   node id (Ed25519 public key of the node identity)
 *
 * The address to dial is the packet's source IPv4 address with that port
 * ("A.B.C.D:P", as transport/tcp.h takes it). Packets of another length,
 * magic or version, port 0, an all-zero node id and our own node id are
 * ignored. At most NVX_DISC_RX_PER_S packets a second are looked at, and
 * one node is reported at most once per NVX_DISC_REPORT_MS unless its
 * address changes (NVX_DISC_SEEN_MAX nodes remembered).
 *
 * Threads: the loop thread of opts.loop only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

enum nvx_disc_limits {
    NVX_DISC_PACKET_LEN = 40,
    NVX_DISC_VERSION = 1,
    NVX_DISC_PORT = 7788,
    NVX_DISC_INTERVAL_MS = 15 * 1000,
    NVX_DISC_REPORT_MS = 60 * 1000,
    NVX_DISC_SEEN_MAX = 64,
    NVX_DISC_RX_PER_S = 50,
    NVX_DISC_ADDR_MAX = 22, /* "255.255.255.255:65535" + NUL */
    NVX_DISC_ID_LEN = 32,
};

#define NVX_DISC_GROUP "239.255.77.88"

typedef struct nvx_disc_packet {
    uint8_t node_id[NVX_DISC_ID_LEN];
    uint16_t port;
} nvx_disc_packet;

/* Writes the 40-byte announcement. */
void nvx_disc_encode(const nvx_disc_packet *p, uint8_t out[static NVX_DISC_PACKET_LEN]);

/* Strictly decodes an announcement (see the table above). Returns 0 and
 * *ret, or -EBADMSG. */
int nvx_disc_decode(const uint8_t *buf, size_t len, nvx_disc_packet *ret);

/* A peer was heard: node_id, and addr "A.B.C.D:P" (valid during the call). */
typedef void (*nvx_disc_fn)(void *arg, const uint8_t node_id[static NVX_DISC_ID_LEN],
                            const char *addr);

typedef struct nvx_disc_opts {
    uv_loop_t *loop;
    uint8_t node_id[NVX_DISC_ID_LEN]; /* ours: our own announcements are ignored */
    uint16_t listen_port;             /* announced port; 0: listen only, never announce */
    const char *group;                /* NULL: NVX_DISC_GROUP */
    uint16_t port;                    /* 0: NVX_DISC_PORT */
    const char *interface;            /* IPv4 address of the interface; NULL: the kernel's */
    uint32_t interval_ms;             /* 0: NVX_DISC_INTERVAL_MS */
    bool no_loop;                     /* do not hear other nodes on this host */
    nvx_disc_fn cb;
    void *arg;
} nvx_disc_opts;

typedef struct nvx_disc nvx_disc;

typedef struct nvx_disc_stats {
    uint64_t sent, send_errors;
    uint64_t received, ignored, rate_dropped, reported;
} nvx_disc_stats;

/*
 * Binds the UDP port (SO_REUSEADDR, so several nodes on one host share it),
 * joins the group and starts announcing. Returns 0 and *ret, -EINVAL (bad
 * group/interface/options), errnos of libuv (-EADDRINUSE, -ENODEV when the
 * interface cannot do multicast, ...); on failure nothing is left open.
 */
int nvx_disc_start(const nvx_disc_opts *opts, nvx_disc **ret);

/* Stops: closes the handles and frees d from their close callbacks, then
 * calls done(arg) (may be NULL). NULL d calls done at once. */
void nvx_disc_stop(nvx_disc *d, void (*done)(void *arg), void *arg);

/* Sends an announcement now (besides the timer). Returns 0 or an errno of
 * uv_udp_try_send. */
int nvx_disc_announce(nvx_disc *d);

/*
 * Handles one received datagram from an IPv4 source (the receive callback
 * calls it; tests and the fuzz target call it directly). d may have been
 * made by nvx_disc_new_detached() (no sockets). Returns 1 when cb was
 * called, 0 when the packet was ignored.
 */
int nvx_disc_feed(nvx_disc *d, const uint8_t *buf, size_t len, const struct sockaddr *from,
                  uint64_t now_ms);

/* A discovery state without sockets, for tests and fuzzing: only
 * nvx_disc_feed() and nvx_disc_stats_get() may be used on it; free it with
 * nvx_disc_free_detached(). Returns 0, -EINVAL, -ENOMEM. */
int nvx_disc_new_detached(const nvx_disc_opts *opts, nvx_disc **ret);
void nvx_disc_free_detached(nvx_disc *d);

void nvx_disc_stats_get(const nvx_disc *d, nvx_disc_stats *ret);

#endif
