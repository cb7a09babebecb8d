/* SPDX-License-Identifier: MIT */
#include "daemon/status.h"

#include <stdio.h>
#include <string.h>

#include "daemon/gossip.h"
#include "daemon/share.h"
#include "libcas/hash.h"

/* Appends v to arr; a failure marks *ok false (the object is then dropped). */
static void
append(json_t *arr, json_t *v, bool *ok)
{
    if (!v || json_array_append_new(arr, v) < 0)
        *ok = false;
}

struct walk {
    json_t *arr;
    bool ok;
};

static void
put_peer(void *arg, const nvx_peer_info *pi)
{
    struct walk *w = arg;
    char hex[CAS_HASH_HEX_LEN + 1] = "";
    if (pi->node_id)
        cas_hash_to_hex(pi->node_id, hex);
    append(w->arr,
           json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I}", "id", hex, "addr", pi->addr,
                     "class", nvx_addr_class_name(nvx_addr_class_of(pi->addr)), "agent", pi->agent,
                     "established", pi->state == 2, "outbound", pi->outbound, "bytes_in",
                     (json_int_t)pi->bytes_in, "bytes_out", (json_int_t)pi->bytes_out, "rate_in",
                     (json_int_t)pi->rate_in),
           &w->ok);
}

static const char *
xfer_state(int s)
{
    switch (s) {
    case PROTO_CTL_STATE_MANIFEST:
        return "manifest";
    case PROTO_CTL_STATE_FETCHING:
        return "fetching";
    case PROTO_CTL_STATE_DONE:
        return "done";
    case PROTO_CTL_STATE_FAILED:
        return "failed";
    case PROTO_CTL_STATE_CANCELLED:
        return "cancelled";
    default:
        return "queued";
    }
}

static void
put_xfer(void *arg, const nvx_xfer_info *xi)
{
    struct walk *w = arg;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(xi->model, hex);
    append(w->arr,
           json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "id", (json_int_t)xi->id,
                     "model", hex, "state", xfer_state(xi->state), "bytes_done",
                     (json_int_t)xi->bytes_done, "bytes_total", (json_int_t)xi->bytes_total,
                     "chunks_done", (json_int_t)xi->chunks_done, "chunks_total",
                     (json_int_t)xi->chunks_total, "rate", (json_int_t)xi->rate, "peers",
                     (json_int_t)xi->peer_count, "endgame", xi->endgame),
           &w->ok);
}

json_t *
nvx_status_json(nvx_node *n, nvx_mesh *mesh)
{
    char id[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(nvx_node_id(n), id);
    nvx_node_counters c;
    nvx_node_counters_get(n, &c);
    struct walk peers = { json_array(), true }, xfers = { json_array(), true };
    if (peers.arr)
        nvx_node_peers_each(n, put_peer, &peers);
    if (xfers.arr)
        nvx_node_xfers_each(n, put_xfer, &xfers);
    nvx_gossip_stats gs = { 0 };
    if (mesh)
        nvx_gossip_stats_get(nvx_mesh_gossip(mesh), &gs);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "id",
        id, "listen", nvx_node_listen_addr(n), "serve",
        nvx_serve_policy_name(nvx_node_serve_policy(n)), "peers", peers.arr, "transfers", xfers.arr,
        "counters", "bytes_fetched", (json_int_t)nvx_node_bytes_fetched(n), "chunks_verified",
        (json_int_t)c.chunks_verified, "chunks_rejected", (json_int_t)c.chunks_rejected,
        "transfers_done", (json_int_t)c.xfers_done, "transfers_failed", (json_int_t)c.xfers_failed,
        "transfers_cancelled", (json_int_t)c.xfers_cancelled, "gossip", "records",
        (json_int_t)gs.records, "accepted", (json_int_t)gs.accepted, "invalid",
        (json_int_t)gs.invalid, "evicted", (json_int_t)gs.evicted);
    if (o && (!peers.ok || !xfers.ok)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}
