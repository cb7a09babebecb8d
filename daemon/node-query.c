/* SPDX-License-Identifier: MIT */
/*
 * What the node tells its hooks and main.c about itself and its sessions:
 * addresses, identity, counters, peer lists. Read-only views of the node
 * (loop thread), split from node.c, which keeps the sessions' life cycle.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/node-internal.h"

const char *
nvx_node_listen_addr(const nvx_node *n)
{
    return n->listen_addr;
}

void
nvx_node_set_ext_addr(nvx_node *n, const char *addr)
{
    snprintf(n->ext_addr, sizeof(n->ext_addr), "%s", addr ? addr : "");
}

const char *
nvx_node_ext_addr(const nvx_node *n)
{
    return n->ext_addr;
}

const uint8_t *
nvx_node_id(const nvx_node *n)
{
    return proto_identity_node_id(n->identity);
}

uint64_t
nvx_node_bytes_fetched(const nvx_node *n)
{
    return n->bytes_fetched;
}

void
nvx_node_counters_get(const nvx_node *n, nvx_node_counters *ret)
{
    *ret = n->counters;
}

nvx_serve_policy
nvx_node_serve_policy(const nvx_node *n)
{
    return n->serve;
}

const uint8_t *
nvx_peer_id(const nvx_peer *p)
{
    return p->established ? p->id : NULL;
}

const proto_hello *
nvx_peer_hello(const nvx_peer *p)
{
    return p->established && p->sess ? proto_session_peer_hello(p->sess) : NULL;
}

const char *
nvx_peer_addr(const nvx_peer *p)
{
    return p->addr;
}

void
nvx_node_peers_each(nvx_node *n, void (*cb)(void *arg, const nvx_peer_info *pi), void *arg)
{
    for (nvx_peer *p = n->peers; p; p = p->next) {
        if (p->closing || !p->sess)
            continue;
        nvx_peer_info pi = {
            .node_id = p->established ? p->id : NULL,
            .addr = p->addr,
            .agent = p->agent,
            .state = p->established ? 2 : 1,
            .bytes_in = p->bytes_in,
            .bytes_out = p->bytes_out,
            .rate_in = p->rate_in,
            .outbound = p->outbound,
        };
        cb(arg, &pi);
    }
}

void
nvx_node_sessions_each(nvx_node *n, void (*cb)(void *arg, nvx_peer *p), void *arg)
{
    for (nvx_peer *p = n->peers, *next; p; p = next) {
        next = p->next;
        if (p->established && !p->closing)
            cb(arg, p);
    }
}

nvx_peer *
nvx_node_peer_by_id(nvx_node *n, const uint8_t id[static 32])
{
    return nvx__peer_by_id(n, id);
}
