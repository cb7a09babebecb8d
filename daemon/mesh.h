/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_MESH_H
#define NVX_DAEMON_MESH_H
/*
 * The node's place in the mesh: wires gossip (daemon/gossip.h) and LAN
 * discovery (daemon/discovery.h) into a running nvx_node through its hooks
 * (nvx_node_hook_add) and the store.
 *
 * - Sessions: every established session joins gossip (ANNOUNCE and PEERS
 *   messages go to it); its listen address (HELLO, with an unspecified host
 *   such as 0.0.0.0 replaced by the address the session comes from) is
 *   offered to peer exchange.
 * - Provider records: every complete model of the store that the node's
 *   serve policy shares (daemon/share.h) is announced as provided by this
 *   node; the store is listed again every NVX_MESH_RESCAN_MS (on the thread
 *   pool), so fetched and pinned models start being announced and removed
 *   or unpinned ones stop.
 * - Name records: the stored ones are handed to gossip at start and again
 *   at every rescan (so every node keeps syncing them to new sessions); new
 *   ones from peers are verified by gossip and stored (highest sequence
 *   wins) on the pool — past NVX_MESH_NAMES_MAX stored records, only those
 *   signed by a trusted key; nvx_mesh_publish() announces the records `nvx
 *   publish` stored, as this node's own.
 * - Dialing: nodes heard by LAN discovery, and by peer exchange while fewer
 *   than NVX_MESH_PEX_TARGET sessions are up, are dialed once when not
 *   connected, pinned to the node id they were heard with
 *   (nvx_node_dial_id); a dial that meets another key forgets the address.
 * - Connection reversal (daemon/reverse.h): REVERSE_REQ from a session is
 *   relayed as REVERSE to the session with the target; a REVERSE makes
 *   this node dial the node that asked; providers of a wanted model that
 *   no session reaches are asked for through up to NVX_REVERSE_RELAYS_MAX
 *   sessions with the REVERSE feature, every NVX_REVERSE_RETRY_MS.
 *   Peer-exchange addresses are numeric only (no name lookups); the
 *   address of a session we dialed is first hand and gossip never
 *   replaces it (daemon/pex.h). The node's slot rules apply
 *   (daemon/admit.h): providers of a wanted model dial as useful.
 *
 * Loop thread only. Call nvx_mesh_close() only after nvx_node_stop()'s done
 * callback: the node calls the hooks until then.
 */
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/dht-uv.h"
#include "daemon/gossip.h"
#include "daemon/node.h"
#include "daemon/reverse.h"
#include "libcas/store.h"

enum {
    NVX_MESH_TICK_MS = 1000,
    NVX_MESH_RESCAN_MS = 60 * 1000,
    NVX_MESH_JOBS_MAX = 64, /* store jobs in flight (name records beyond are dropped) */
    /* Peer exchange dials new nodes only while fewer sessions are up (LAN
     * discovery and providers of a wanted model are dialed regardless,
     * within the node's own max_peers). */
    NVX_MESH_PEX_TARGET = 8,
    /* Name records received are stored while the store holds fewer than
     * this many; past it, only those signed by a trusted key. */
    NVX_MESH_NAMES_MAX = 10000,
    /* Models being fetched whose providers are chased (dialed again,
     * reached by connection reversal), and for how long after
     * nvx_mesh_want(). */
    NVX_MESH_WANTS_MAX = 16,
    NVX_MESH_WANT_MS = 5 * 60 * 1000,
};

typedef struct nvx_mesh nvx_mesh;

typedef struct nvx_mesh_opts {
    uv_loop_t *loop;
    nvx_node *node;                  /* borrowed; hooks registered on it */
    const proto_identity *identity;  /* the node's (signs provider records); borrowed */
    cas_store *store;                /* borrowed */
    bool discovery;                  /* LAN multicast discovery on */
    const char *discovery_group;     /* NULL: NVX_DISC_GROUP */
    uint16_t discovery_port;         /* 0: NVX_DISC_PORT */
    const char *discovery_interface; /* NULL: the kernel's choice */
    uint32_t discovery_interval_ms;  /* 0: NVX_DISC_INTERVAL_MS */
    /* The DHT (may be NULL): the models the scan finds shared are
     * announced there too, and the ones gone stop being announced. */
    nvx_dhtuv *dht;
    /* Gossip learned (or refreshed) that node provides model: e.g. ask
     * that peer again for a model being fetched. May be NULL. Runs on the
     * loop; must not close the mesh. */
    void (*provider)(void *arg, const uint8_t node[static 32], const uint8_t model[static 32]);
    void *arg;
    /* Test-only: never dial addresses from peer exchange
     * (NVX_TEST_NO_PEX_DIAL=1 in nvxd-test), so a test sees connection
     * reversal connect two nodes rather than a dial that PEX suggested. */
    bool no_pex_dial;
    /* Do not relay connection reversal for other nodes: drop REVERSE_REQ
     * and REVERSE_AT (nvxd --no-relay). */
    bool no_relay;
} nvx_mesh_opts;

/*
 * Starts gossip (and discovery when asked; its failure to start — no
 * multicast on this machine — is logged and the mesh runs without it),
 * registers the node hooks and queues the first store scan. Returns 0 and
 * *ret, -EINVAL, -ENOMEM, -ENOSPC (no hook slot left on the node).
 */
int nvx_mesh_new(const nvx_mesh_opts *opts, nvx_mesh **ret);

/* Stops timers and discovery, waits for store jobs, frees m and calls
 * done(arg) (may be NULL). See the header note on the order. */
void nvx_mesh_close(nvx_mesh *m, void (*done)(void *arg), void *arg);

/*
 * Announces the stored name records (written by `nvx publish`) that bind
 * name to model_id, as this node's own: to every session now and to every
 * new one. Looks them up on the thread pool; cb(arg, r) runs on the loop
 * with the number announced (>= 1), -ENOENT (no such stored record) or
 * another negative errno. Returns 0 (cb will run) or -ENOMEM, -EBUSY.
 */
int nvx_mesh_publish(nvx_mesh *m, const uint8_t model_id[static 32], const char *name,
                     void (*cb)(void *arg, int r), void *arg);

/* Announces now that this node provides model_id (e.g. a fetch just
 * completed), instead of at the next store rescan. Returns 0 or -errno. */
int nvx_mesh_provide(nvx_mesh *m, const uint8_t model_id[static 32]);

/* Dials every provider of model_id gossip knows an address for and is not
 * connected to (call before or while fetching it), and keeps chasing the
 * providers it learns of for NVX_MESH_WANT_MS (dials, connection
 * reversal). Returns how many dials started. */
int nvx_mesh_want(nvx_mesh *m, const uint8_t model_id[static 32]);

/* The fetch of model_id ended: stop chasing its providers. */
void nvx_mesh_unwant(nvx_mesh *m, const uint8_t model_id[static 32]);

/* How many models this node shares (announces) now. */
size_t nvx_mesh_shared(const nvx_mesh *m);

/* Sessions we dialed with a peer that relays connection reversal: how many
 * nodes can hand a "connect to me" to this node (nvx status). */
unsigned nvx_mesh_relays(nvx_mesh *m);

/* True when a session reaches the node at addr ("HOST:PORT", as the DHT
 * names providers): we dialed addr, or the session comes from its host
 * and its HELLO lists a listening address with its port. */
bool nvx_mesh_connected_at(nvx_mesh *m, const char *addr);

/* Connection reversal by address (REVERSE_AT, proto/PROTOCOL.md): asks up
 * to NVX_REVERSE_RELAYS_MAX relays, those at prefer[0..n_prefer) first, to
 * have the node at target dial us; at most once per NVX_REVERSE_RETRY_MS
 * per target. Returns how many relays were asked, -EISCONN (a session
 * reaches target already) or -EINVAL (not a numeric HOST:PORT). */
int nvx_mesh_ask_at(nvx_mesh *m, const char *target, const char *const *prefer, size_t n_prefer);

/* Connection reversal's state (tests look at its pending dials); valid
 * until nvx_mesh_close(). */
nvx_reverse *nvx_mesh_reverse(nvx_mesh *m);

/* The gossip state (stats, providers); valid until nvx_mesh_close(). */
nvx_gossip *nvx_mesh_gossip(nvx_mesh *m);

#endif
