/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_CTL_H
#define NVX_DAEMON_CTL_H
/*
 * The control socket: a Unix stream socket (mode 0600, normally
 * STORE/nvxd.sock) speaking proto/control.h. Only clients running as the
 * daemon's own uid are served (SO_PEERCRED); others are closed at once.
 * With a control group (nvxd.conf control-group) the socket is mode 0660
 * owned by that group, and a client whose primary or supplementary groups
 * (SO_PEERGROUPS, as the kernel recorded them at connect) include it is
 * served too: the file mode keeps others from connecting, the credential
 * check refuses them should the mode be loosened. A
 * malformed request gets an ERROR response: a bad payload keeps the
 * connection open, a broken frame (bad length) closes it after the ERROR.
 *
 * Loop thread only.
 */
#include <sys/types.h>

#include <uv.h>

#include "daemon/dht-fetch.h"
#include "daemon/dht-relay.h"
#include "daemon/mesh.h"
#include "daemon/natmap.h"
#include "daemon/node.h"

enum {
    NVX_CTL_CLIENTS_MAX = 64,
    NVX_CTL_SUBS_MAX = 8,          /* concurrent FETCHes per client */
    NVX_CTL_TICKET_ADDRS_MAX = 8,  /* addresses of a FETCH dialed (a ticket holds 4) */
    NVX_CTL_PEER_GROUPS_MAX = 256, /* groups of a client we look through (SO_PEERGROUPS) */
};

typedef struct nvx_ctl nvx_ctl;

typedef struct nvx_ctl_opts {
    uv_loop_t *loop;
    nvx_node *node;
    cas_store *store;
    const char *path; /* socket path; an old file there is replaced */
    const char *agent;
    nvx_mesh *mesh;        /* gossip (PUBLISH, providers for FETCH); may be NULL */
    nvx_natmap *natmap;    /* the router's port mapping (STATUS); may be NULL */
    nvx_dhtuv *dht;        /* the DHT (STATUS; providers for FETCH when gossip knows none; names
                            * for PUBLISH and FETCH: daemon/dht-fetch.h); may be NULL */
    const char *state_dir; /* the store directory (what the DHT keeps); may be NULL */
    nvx_dhtrelay *relay;   /* chases providers the DHT found through relays; may be NULL */
    void (*on_shutdown)(void *arg); /* SHUTDOWN request (after the OK is written) */
    void *arg;
    bool group_set; /* members of group may use the socket too */
    gid_t group;
} nvx_ctl_opts;

/* Binds and listens. Returns 0, -ENAMETOOLONG (path over sun_path), errnos
 * of bind/listen, and of chown when the daemon may not give the socket to
 * opts->group (-EPERM: it is not a member). */
int nvx_ctl_new(const nvx_ctl_opts *opts, nvx_ctl **ret);

/* Closes the listener and every client (their fetches are unsubscribed,
 * which cancels them), removes the socket file; done runs when all handles
 * are closed, then the nvx_ctl is freed. */
void nvx_ctl_close(nvx_ctl *c, void (*done)(void *arg), void *arg);

/* The DHT's fetch side (providers, names) that FETCH uses, for the HTTP
 * API's pulls; NULL without a DHT. Valid until nvx_ctl_close() runs its
 * done callback. */
nvx_dhtfetch *nvx_ctl_dhtfetch(nvx_ctl *c);

#endif
