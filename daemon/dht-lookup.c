/* SPDX-License-Identifier: MIT */
/*
 * Iterative lookups (daemon/dht.h): the candidates closest to the target
 * are asked NVX_DHT_ALPHA at a time; each answer adds the nodes it names
 * one hop further. The lookup ends when the NVX_DHT_K closest candidates
 * that have not failed have all answered, or nobody is left to ask within
 * NVX_DHT_HOPS_MAX hops. Announce and put lookups then store at those
 * closest nodes with the tokens they gave.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dht-internal.h"

enum {
    CAND_NEW = 0,
    CAND_ASKED,
    CAND_ANSWERED,
    CAND_FAILED,
};

nvx__dht_lookup *
nvx__dht_lookup_find(nvx_dht *d, uint32_t handle)
{
    for (size_t i = 0; handle && i < NVX_DHT_LOOKUPS_MAX; i++)
        if (d->lookups[i].handle == handle)
            return &d->lookups[i];
    return NULL;
}

void
nvx__dht_lookup_add(nvx__dht_lookup *l, const uint8_t id[20], uint32_t ip, uint16_t port,
                    unsigned hop)
{
    if (!ip || !port)
        return;
    for (size_t i = 0; i < l->n; i++)
        if ((id && l->c[i].id_known && memcmp(l->c[i].id, id, 20) == 0) ||
            (l->c[i].ip == ip && l->c[i].port == port))
            return; /* one candidate per id and per address */
    nvx__dht_cand c = { .ip = ip, .port = port, .hop = (uint8_t)(hop > 255 ? 255 : hop) };
    size_t at = l->n;
    if (id) {
        memcpy(c.id, id, 20);
        c.id_known = true;
        /* Bootstrap addresses (no id) sort first: they are asked before
         * anyone is known. */
        while (at > 0 && l->c[at - 1].id_known &&
               nvx__dht_xor_cmp(l->target, id, l->c[at - 1].id) < 0)
            at--;
    } else {
        at = 0;
        while (at < l->n && !l->c[at].id_known)
            at++;
    }
    if (at >= NVX__DHT_CANDS_MAX)
        return;
    size_t last = l->n < NVX__DHT_CANDS_MAX ? l->n : NVX__DHT_CANDS_MAX - 1;
    if (l->n == NVX__DHT_CANDS_MAX && l->c[last].state == CAND_ASKED)
        return; /* never drop one we wait for: its answer could not be matched */
    memmove(&l->c[at + 1], &l->c[at], (last - at) * sizeof(c));
    l->c[at] = c;
    if (l->n < NVX__DHT_CANDS_MAX)
        l->n++;
}

static void
send_query(nvx_dht *d, nvx__dht_lookup *l, nvx__dht_cand *c, uint64_t now_ms)
{
    nvx_krpc_msg q = { .kind = NVX_KRPC_QUERY, .has_target = true };
    switch (l->kind) {
    case NVX_DHT_FIND_NODE:
        q.method = NVX_KRPC_FIND_NODE;
        break;
    case NVX_DHT_GET_PEERS:
    case NVX_DHT_ANNOUNCE:
        q.method = NVX_KRPC_GET_PEERS;
        break;
    default:
        q.method = NVX_KRPC_GET;
        break;
    }
    memcpy(q.target, l->target, 20);
    if (nvx__dht_query(d, &q, c->ip, c->port, l->handle, now_ms) < 0) {
        c->state = CAND_FAILED;
        return;
    }
    c->state = CAND_ASKED;
    l->inflight++;
    l->queries++;
}

/* announce_peer or put to the closest that answered with a token. */
static void
store_at_closest(nvx_dht *d, nvx__dht_lookup *l, uint64_t now_ms)
{
    unsigned sent = 0;
    for (size_t i = 0; i < l->n && sent < NVX_DHT_K; i++) {
        nvx__dht_cand *c = &l->c[i];
        if (c->state != CAND_ANSWERED || !c->token_len)
            continue;
        nvx_krpc_msg q = { .kind = NVX_KRPC_QUERY, .token = c->token, .token_len = c->token_len };
        if (l->kind == NVX_DHT_ANNOUNCE) {
            q.method = NVX_KRPC_ANNOUNCE_PEER;
            q.has_target = true;
            memcpy(q.target, l->target, 20);
            q.has_port = true;
            q.port = l->port;
        } else {
            const nvx_dht_item *it = l->item;
            q.method = NVX_KRPC_PUT;
            q.k = it->k;
            q.sig = it->sig;
            q.salt = it->salt;
            q.salt_len = it->salt_len;
            q.has_seq = true;
            q.seq = it->seq;
            q.v = it->v;
            q.v_len = it->v_len;
        }
        (void)nvx__dht_query(d, &q, c->ip, c->port, 0, now_ms);
        sent++;
    }
}

void
nvx__dht_lookup_end(nvx_dht *d, nvx__dht_lookup *l, bool report)
{
    if (report && l->cb) {
        uint8_t closest[NVX_DHT_K][20];
        nvx_dht_result res = { .handle = l->handle, .done = true, .queries = l->queries };
        for (size_t i = 0; i < l->n && res.responded < NVX_DHT_K; i++) {
            if (l->c[i].state != CAND_ANSWERED || !l->c[i].id_known)
                continue;
            memcpy(closest[res.responded++], l->c[i].id, 20);
            if (l->c[i].hop + 1u > res.rounds)
                res.rounds = l->c[i].hop + 1u;
        }
        res.closest = (const uint8_t(*)[20])closest;
        if (l->kind == NVX_DHT_GET && l->have_item)
            res.item = l->item;
        nvx_dht_cb cb = l->cb;
        void *arg = l->arg;
        l->cb = NULL;
        cb(arg, &res);
    }
    /* Queries still in flight find no lookup and are only timed out. */
    free(l->item);
    memset(l, 0, sizeof(*l));
}

void
nvx__dht_lookup_step(nvx_dht *d, nvx__dht_lookup *l, uint64_t now_ms)
{
    unsigned answered = 0;
    for (size_t i = 0; i < l->n && l->inflight < NVX_DHT_ALPHA && answered < NVX_DHT_K; i++) {
        nvx__dht_cand *c = &l->c[i];
        if (c->state == CAND_ANSWERED && c->id_known)
            answered++;
        else if (c->state == CAND_NEW && c->hop <= NVX_DHT_HOPS_MAX)
            send_query(d, l, c, now_ms);
    }
    if (l->inflight)
        return;
    /* Nothing in flight and nothing left to ask among the closest. */
    if ((l->kind == NVX_DHT_ANNOUNCE || l->kind == NVX_DHT_PUT) && !l->stored) {
        l->stored = true;
        store_at_closest(d, l, now_ms);
    }
    nvx__dht_lookup_end(d, l, true);
}

void
nvx__dht_lookup_peers(nvx__dht_lookup *l, const nvx_krpc_msg *r)
{
    uint32_t ips[NVX_KRPC_VALUES_MAX];
    uint16_t ports[NVX_KRPC_VALUES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < r->n_values && l->n_peers < NVX_DHT_LOOKUP_PEERS_MAX; i++) {
        bool seen = false;
        for (size_t j = 0; j < l->n_peers && !seen; j++)
            seen = memcmp(l->peers[j], r->values[i], NVX_KRPC_PEER_LEN) == 0;
        uint32_t ip;
        uint16_t port;
        nvx_krpc_get_peer(r->values[i], &ip, &port);
        if (seen || !ip || !port)
            continue;
        memcpy(l->peers[l->n_peers++], r->values[i], NVX_KRPC_PEER_LEN);
        ips[n] = ip;
        ports[n++] = port;
    }
    if (n && l->cb) {
        nvx_dht_result res = {
            .handle = l->handle, .peer_ip = ips, .peer_port = ports, .n_peers = n
        };
        l->cb(l->arg, &res);
    }
}

/* A BEP 44 item in a get response: kept when it verifies, belongs to the
 * target and is newer than what we have. */
static void
take_item(nvx__dht_lookup *l, const nvx_krpc_msg *r)
{
    if (!r->k || !r->sig || !r->v || !r->has_seq || !l->item)
        return;
    nvx_dht_item it = { .seq = r->seq, .salt_len = l->item->salt_len, .v_len = r->v_len };
    memcpy(it.k, r->k, 32);
    memcpy(it.sig, r->sig, 64);
    memcpy(it.salt, l->item->salt, it.salt_len);
    memcpy(it.v, r->v, r->v_len);
    uint8_t t[20];
    nvx_dht_item_target(it.k, it.salt, it.salt_len, t);
    if (memcmp(t, l->target, 20) != 0 || (l->have_item && it.seq <= l->item->seq) ||
        !nvx_dht_item_verify(&it))
        return;
    *l->item = it;
    l->have_item = true;
}

/* A bootstrap address answered with its id: it moves to its place by
 * distance, so that it counts among the closest only if it is. */
static nvx__dht_cand *
learn_id(nvx__dht_lookup *l, nvx__dht_cand *c, const uint8_t id[static 20])
{
    nvx__dht_cand tmp = *c;
    memcpy(tmp.id, id, 20);
    tmp.id_known = true;
    size_t idx = (size_t)(c - l->c);
    memmove(&l->c[idx], &l->c[idx + 1], (l->n - idx - 1) * sizeof(tmp));
    l->n--;
    size_t at = l->n;
    while (at > 0 && l->c[at - 1].id_known && nvx__dht_xor_cmp(l->target, id, l->c[at - 1].id) < 0)
        at--;
    memmove(&l->c[at + 1], &l->c[at], (l->n - at) * sizeof(tmp));
    l->c[at] = tmp;
    l->n++;
    return &l->c[at];
}

void
nvx__dht_lookup_reply(nvx_dht *d, nvx__dht_lookup *l, uint32_t ip, uint16_t port,
                      const nvx_krpc_msg *r, uint64_t now_ms)
{
    nvx__dht_cand *c = NULL;
    for (size_t i = 0; i < l->n && !c; i++)
        if (l->c[i].ip == ip && l->c[i].port == port && l->c[i].state == CAND_ASKED)
            c = &l->c[i];
    if (!c)
        return;
    l->inflight--;
    if (!r || r->kind != NVX_KRPC_RESPONSE) {
        c->state = CAND_FAILED;
    } else {
        if (!c->id_known) {
            c = learn_id(l, c, r->id);
            d->booted = true;
        }
        c->state = CAND_ANSWERED;
        if (r->token_len) {
            memcpy(c->token, r->token, r->token_len);
            c->token_len = (uint8_t)r->token_len;
        }
        unsigned hop = c->hop + 1u;
        for (size_t i = 0; i < r->n_nodes; i++) {
            uint8_t id[20];
            uint32_t nip;
            uint16_t nport;
            nvx_krpc_get_node(r->nodes + i * NVX_KRPC_NODE_LEN, id, &nip, &nport);
            if (memcmp(id, d->table.self, 20) == 0)
                continue;
            if (d->o.enforce_node_id && !nvx_dht_id_ok(id, nip))
                continue;
            nvx__dht_lookup_add(l, id, nip, nport, hop);
        }
        if (l->kind == NVX_DHT_GET_PEERS || l->kind == NVX_DHT_ANNOUNCE)
            nvx__dht_lookup_peers(l, r);
        if (l->kind == NVX_DHT_GET)
            take_item(l, r);
    }
    /* The callback above may have cancelled the lookup. */
    if (l->handle)
        nvx__dht_lookup_step(d, l, now_ms);
}
