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

#include "daemon/addr-class.h"
#include "daemon/mesh.h"
#include "daemon/node.h"

/* A new JSON object (the caller owns it) with the node's state, or NULL
 * (out of memory). mesh may be NULL. Keys: id, listen, serve, peers[],
 * transfers[], counters{}, gossip{}. */
json_t *nvx_status_json(nvx_node *n, nvx_mesh *mesh);

#endif
