/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_STATUS_H
#define NVX_DAEMON_STATUS_H
/*
 * The node's state as JSON, for the HTTP API's status page
 * (/api/nvx/status) and /metrics: identity and listen address, peers
 * (address class, bytes, rates), transfers with their progress, the
 * node's counters and gossip's. The API gets it through main.c's hooks
 * (daemon/api.h), so that api.c never calls into the node.
 *
 * Loop thread only.
 */
#include <jansson.h>

#include "daemon/mesh.h"
#include "daemon/node.h"

/* Address classes of peers, the label of /metrics' per-class bytes. */
typedef enum nvx_addr_class {
    NVX_ADDR_LOOPBACK,
    NVX_ADDR_LAN, /* private, link-local and unique-local ranges */
    NVX_ADDR_INTERNET,
    _NVX_ADDR_CLASS_MAX
} nvx_addr_class;

/* The class of "HOST:PORT" or "[V6]:PORT" (numeric); unknown text is
 * NVX_ADDR_INTERNET. */
nvx_addr_class nvx_addr_class_of(const char *addr);

/* "loopback", "lan", "internet". */
const char *nvx_addr_class_name(nvx_addr_class c);

/* A new JSON object (the caller owns it) with the node's state, or NULL
 * (out of memory). mesh may be NULL. Keys: id, listen, serve, peers[],
 * transfers[], counters{}, gossip{}. */
json_t *nvx_status_json(nvx_node *n, nvx_mesh *mesh);

#endif
