/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_MEM_H
#define NVX_TP_MEM_H
/*
 * In-memory links: a simulated network inside one process, driven by one
 * uv_timer_t on the caller's loop. Tests and simulations run many nodes (each
 * its own tp_net) against each other without sockets.
 *
 * World and nodes. A tp_mem_world is the network; tp_mem_net_new() adds a
 * node to it under a name ("node-7"). A node listens on endpoint names
 * (usually its own name; any name not in use in the world) and dials them.
 * The dialler's local address is "NODE/N" (N counts its dials), the accepted
 * side sees that as its remote address.
 *
 * The link model, per direction of each connection (parameters from
 * tp_mem_world_new()'s defaults or tp_mem_world_set_link() for a node pair):
 *
 *   - Serialization: the sender's queued bytes are cut into segments of at
 *     most `mtu` bytes and put on the wire one after another at `bandwidth`
 *     bytes/s (0 = unlimited). A send's callback runs when its last byte is on
 *     the wire; tp_conn_queued() counts what is not yet.
 *   - Latency: a segment arrives `latency_ms` after it left the wire.
 *   - Loss, modelled the way a TCP stream experiences it. The layers above are
 *     reliable encrypted streams, so losing or reordering bytes would only
 *     test a behaviour TCP never shows them. Instead each segment is lost with
 *     probability loss_ppm / 10^6 (independently, and again on each
 *     retransmission); every loss delays that segment by one RTO (`rto_ms`,
 *     default 3 x latency, at least 1 ms), and delivery stays in order, so the
 *     segments behind a lost one wait for it (head-of-line blocking). Loss
 *     costs time, never bytes: the stream is delivered complete and in order.
 *   - Flow control: at most `window` bytes per direction are on the wire or
 *     waiting unread at a receiver that paused reading (tp_read_stop); the
 *     sender's bytes stay queued beyond that, as with TCP's receive window.
 *   - Connection set-up costs one round trip (the listener accepts after one
 *     latency, the dialler learns of it after two); an unknown or closed
 *     endpoint answers -ECONNREFUSED after one round trip. A close travels in
 *     order behind the data that already left, and the peer then sees the end
 *     of stream (status 0). Bytes that reach an endpoint closed meanwhile are
 *     dropped silently.
 *
 * Determinism: all randomness comes from the world's seed; each direction of
 * each connection draws from its own generator seeded from (seed, dialling
 * node, its dial number, direction), so a node's losses do not depend on how
 * other nodes' traffic interleaves. Event times derive from uv_now() of the
 * loop when a call enters the world and are exact after that, so a simulated
 * delay measured with uv_now() is never shorter than modelled.
 *
 * Simulated time runs at wall-clock speed (ms resolution; timers fire late,
 * never early). Bandwidth is tracked in ns, so fast links are modelled
 * exactly even though the timer works in ms.
 *
 * Threading: the loop's thread only, like everything in tp.h.
 */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "transport/tp.h"

typedef struct tp_mem_world tp_mem_world;

enum {
    TP_MEM_NAME_MAX = 64,   /* endpoint / node name, NUL included */
    TP_MEM_MTU = 64 * 1024, /* default segment size */
    TP_MEM_MTU_MIN = 16,
    TP_MEM_MTU_MAX = 1024 * 1024,
    TP_MEM_WINDOW = 4 * 1024 * 1024, /* default per-direction window */
    TP_MEM_LATENCY_MS_MAX = 60000,
    TP_MEM_LOSS_PPM_MAX = 500000, /* at most 50% loss */
    TP_MEM_RETRIES_MAX = 32,      /* losses of one segment before it is delivered anyway */
};

struct tp_mem_link {
    uint32_t latency_ms; /* one way, 0..TP_MEM_LATENCY_MS_MAX */
    uint64_t bandwidth;  /* bytes/s per direction, 0 = unlimited */
    uint32_t loss_ppm;   /* segment loss, parts per million, 0..TP_MEM_LOSS_PPM_MAX */
    uint32_t rto_ms;     /* delay per loss, 0 = 3 x latency_ms (at least 1) */
    size_t mtu;          /* segment size, TP_MEM_MTU_MIN..TP_MEM_MTU_MAX; 0 = TP_MEM_MTU */
    size_t window;       /* bytes in flight per direction, >= mtu; 0 = TP_MEM_WINDOW */
};

/* Totals over the world, for tests and simulation reports. */
struct tp_mem_stats {
    uint64_t segments;    /* segments put on the wire */
    uint64_t losses;      /* losses (each cost one RTO) */
    uint64_t bytes;       /* payload bytes delivered to readers */
    uint64_t connections; /* dials accepted by a listener */
};

/* The in-memory method table (version 1). */
extern const struct tp_ops tp_mem_ops;

/* Creates a world on loop with default link parameters (copied; NULL = all
 * zero: no latency, unlimited bandwidth, no loss) and a seed for the loss
 * generators. Returns 0, -EINVAL (parameter out of range) or -ENOMEM. */
int tp_mem_world_new(uv_loop_t *loop, uint64_t seed, const struct tp_mem_link *defaults,
                     tp_mem_world **ret);

/* Sets the parameters of the links between nodes a and b (both directions;
 * a == b allowed), used by connections dialled afterwards. The nodes need not
 * exist yet. Returns 0, -EINVAL or -ENOMEM. */
int tp_mem_world_set_link(tp_mem_world *w, const char *a, const char *b,
                          const struct tp_mem_link *link);

/* Adds a node named `name` (1..TP_MEM_NAME_MAX-1 bytes of [A-Za-z0-9._-]).
 * Free it with tp_net_free() once its listeners and connections are closed.
 * Returns 0, -EINVAL (bad name), -EEXIST (name taken) or -ENOMEM. */
int tp_mem_net_new(tp_mem_world *w, const char *name, tp_net **ret);

void tp_mem_world_stats(const tp_mem_world *w, struct tp_mem_stats *ret);

/* Destroys the world. Every node must have been freed (else -EBUSY and
 * nothing happens); its timer is closed, so the caller runs the loop once more
 * (uv_run) before uv_loop_close(). NULL is a no-op returning 0. */
int tp_mem_world_close(tp_mem_world *w);

#endif
