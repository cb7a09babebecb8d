/* SPDX-License-Identifier: MIT */
/*
 * The DHT node (daemon/dht.h): transactions, the queries we answer, rate
 * limits, tokens, the periodic work, the save format. The routing table,
 * storage and lookups live in dht-table.c, dht-store.c, dht-lookup.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/dht-internal.h"

static const uint8_t save_magic[8] = "NVXDHT1\n";

enum {
    IP_VOTES_NEEDED = 5, /* answers naming one external address before our id follows it */
    TICK_PINGS_MAX = 2,  /* stale nodes pinged per tick */
    ANNOUNCE_LOOKUPS_MAX = 2,
    BOOT_TABLE_MIN = NVX_DHT_K, /* below this many nodes, bootstrap again */
    BOOT_FIRST_RETRY_MS = 5000, /* no bootstrap address answered yet */
};

/* ---------------------------------------------------------------------- */
/* Randomness and tokens: BLAKE2b keyed with the secret */

static void
token_for_epoch(const nvx_dht *d, uint32_t ip, uint64_t epoch,
                uint8_t out[static NVX__DHT_TOKEN_LEN])
{
    uint8_t in[13] = { 't' };
    for (int i = 0; i < 8; i++)
        in[1 + i] = (uint8_t)(epoch >> (8 * i));
    for (int i = 0; i < 4; i++)
        in[9 + i] = (uint8_t)(ip >> (8 * i));
    crypto_generichash(out, NVX__DHT_TOKEN_LEN, in, sizeof(in), d->o.secret, sizeof(d->o.secret));
}

void
nvx__dht_token(const nvx_dht *d, uint32_t ip, uint64_t now_ms,
               uint8_t out[static NVX__DHT_TOKEN_LEN])
{
    token_for_epoch(d, ip, now_ms / NVX_DHT_TOKEN_EPOCH_MS, out);
}

static bool
token_ok(const nvx_dht *d, uint32_t ip, const uint8_t *tok, size_t len, uint64_t now_ms)
{
    if (len != NVX__DHT_TOKEN_LEN)
        return false;
    uint64_t e = now_ms / NVX_DHT_TOKEN_EPOCH_MS;
    uint8_t t[NVX__DHT_TOKEN_LEN];
    for (uint64_t k = 0; k < 2 && k <= e; k++) {
        token_for_epoch(d, ip, e - k, t);
        if (sodium_memcmp(t, tok, sizeof(t)) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* Sending */

static void
send_error(nvx_dht *d, const nvx_krpc_msg *q, uint32_t ip, uint16_t port, int code, const char *msg)
{
    nvx_krpc_msg e = { .kind = NVX_KRPC_ERROR, .tid_len = q->tid_len, .err_code = code };
    memcpy(e.tid, q->tid, q->tid_len);
    e.err_msg = (const uint8_t *)msg;
    e.err_len = strlen(msg);
    nvx__dht_send(d, &e, ip, port);
}

static void
ping(nvx_dht *d, uint32_t ip, uint16_t port, uint64_t now_ms)
{
    nvx_krpc_msg q = { .method = NVX_KRPC_PING };
    (void)nvx__dht_query(d, &q, ip, port, 0, now_ms);
}

/* ---------------------------------------------------------------------- */
/* Queries we answer */

static bool
rate_ok(nvx_dht *d, uint32_t ip, uint64_t now_ms)
{
    uint32_t h = (ip * 2654435761u) >> 7;
    nvx__dht_rl *s = &d->rl[h % NVX_DHT_RL_SLOTS];
    if (s->ip != ip || s->at_ms == 0) {
        s->ip = ip;
        s->tokens_milli = NVX_DHT_RL_BURST * 1000u;
        s->at_ms = now_ms ? now_ms : 1;
    }
    uint64_t add = (now_ms - s->at_ms) * NVX_DHT_RL_RATE;
    s->at_ms = now_ms ? now_ms : 1;
    uint64_t tok = s->tokens_milli + add;
    s->tokens_milli = (uint32_t)(tok > NVX_DHT_RL_BURST * 1000u ? NVX_DHT_RL_BURST * 1000u : tok);
    if (s->tokens_milli < 1000)
        return false;
    s->tokens_milli -= 1000;
    return true;
}

static void
put_nodes(nvx_dht *d, nvx_krpc_msg *r, const uint8_t target[static 20],
          uint8_t buf[static NVX_DHT_K * NVX_KRPC_NODE_LEN])
{
    nvx__dht_node n[NVX_DHT_K];
    size_t k = nvx__dht_table_closest(&d->table, target, n, NVX_DHT_K);
    for (size_t i = 0; i < k; i++)
        nvx_krpc_put_node(buf + i * NVX_KRPC_NODE_LEN, n[i].id, n[i].ip, n[i].port);
    r->nodes = buf;
    r->n_nodes = k;
}

/* put: a verified, bounded mutable item. Returns 0 or a KRPC error code. */
static int
answer_put(nvx_dht *d, const nvx_krpc_msg *q, uint32_t ip, uint64_t now_ms, const char **why)
{
    if (!q->v || !q->k || !q->sig || !q->has_seq) {
        *why = "only mutable items are stored";
        return NVX_KRPC_E_PROTOCOL;
    }
    if (!q->token || !token_ok(d, ip, q->token, q->token_len, now_ms)) {
        *why = "bad token";
        return NVX_KRPC_E_PROTOCOL;
    }
    nvx_dht_item it = { .seq = q->seq, .salt_len = q->salt_len, .v_len = q->v_len };
    memcpy(it.k, q->k, 32);
    memcpy(it.sig, q->sig, 64);
    memcpy(it.salt, q->salt, q->salt_len);
    memcpy(it.v, q->v, q->v_len);
    if (!nvx_dht_item_verify(&it)) {
        *why = "invalid signature";
        return NVX_KRPC_E_BAD_SIG;
    }
    int r = nvx__dht_store_item(&d->store, &it, q->has_cas ? &q->cas : NULL, ip, now_ms);
    *why = r == -ESTALE   ? "cas mismatch"
           : r == -ERANGE ? "sequence number less than current"
                          : "storage full";
    return r == 0         ? 0
           : r == -ESTALE ? NVX_KRPC_E_CAS
           : r == -ERANGE ? NVX_KRPC_E_SEQ
                          : NVX_KRPC_E_SERVER;
}

static void
answer(nvx_dht *d, const nvx_krpc_msg *q, uint32_t ip, uint16_t port, uint64_t now_ms)
{
    nvx_krpc_msg r = { .kind = NVX_KRPC_RESPONSE,
                       .tid_len = q->tid_len,
                       .has_id = true,
                       .has_ip = true,
                       .ip = ip,
                       .ip_port = port };
    memcpy(r.tid, q->tid, q->tid_len);
    memcpy(r.id, d->table.self, 20);
    uint8_t nodes[NVX_DHT_K * NVX_KRPC_NODE_LEN];
    uint8_t peers[50][NVX_KRPC_PEER_LEN];
    uint8_t tok[NVX__DHT_TOKEN_LEN];
    const char *why = "";
    bool needs_target = q->method == NVX_KRPC_FIND_NODE || q->method == NVX_KRPC_GET_PEERS ||
                        q->method == NVX_KRPC_ANNOUNCE_PEER || q->method == NVX_KRPC_GET;
    if (needs_target && !q->has_target) {
        send_error(d, q, ip, port, NVX_KRPC_E_PROTOCOL, "missing target");
        return;
    }
    switch (q->method) {
    case NVX_KRPC_PING:
        break;
    case NVX_KRPC_FIND_NODE:
        put_nodes(d, &r, q->target, nodes);
        break;
    case NVX_KRPC_GET_PEERS: {
        nvx__dht_token(d, ip, now_ms, tok);
        r.token = tok;
        r.token_len = sizeof(tok);
        put_nodes(d, &r, q->target, nodes);
        size_t n = nvx__dht_store_peers(&d->store, q->target, peers, 50, now_ms);
        for (size_t i = 0; i < n; i++)
            r.values[i] = peers[i];
        r.n_values = n;
        break;
    }
    case NVX_KRPC_ANNOUNCE_PEER: {
        uint16_t p = q->implied_port ? port : q->port;
        if (!q->token || !token_ok(d, ip, q->token, q->token_len, now_ms) || !p) {
            send_error(d, q, ip, port, NVX_KRPC_E_PROTOCOL, "bad token");
            return;
        }
        /* The peer is the sender's address: nobody announces another host. */
        if (nvx__dht_store_peer(&d->store, q->target, ip, p, now_ms) < 0) {
            send_error(d, q, ip, port, NVX_KRPC_E_SERVER, "storage full");
            return;
        }
        break;
    }
    case NVX_KRPC_GET: {
        nvx__dht_token(d, ip, now_ms, tok);
        r.token = tok;
        r.token_len = sizeof(tok);
        put_nodes(d, &r, q->target, nodes);
        const nvx_dht_item *it = nvx__dht_store_get_item(&d->store, q->target, now_ms);
        if (it && !(q->has_seq && q->seq >= it->seq)) {
            r.k = it->k;
            r.sig = it->sig;
            r.has_seq = true;
            r.seq = it->seq;
            r.v = it->v;
            r.v_len = it->v_len;
        }
        break;
    }
    case NVX_KRPC_PUT: {
        int code = answer_put(d, q, ip, now_ms, &why);
        if (code) {
            send_error(d, q, ip, port, code, why);
            return;
        }
        break;
    }
    default:
        send_error(d, q, ip, port, NVX_KRPC_E_METHOD, "method unknown");
        return;
    }
    nvx__dht_send(d, &r, ip, port);
}

/* ---------------------------------------------------------------------- */
/* Responses */

/* BEP 42: once enough answers agree on our external address, our id
 * follows it (a public one; a local address keeps the id we have). */
static void
vote_ip(nvx_dht *d, uint32_t ip, uint64_t now_ms)
{
    if (!d->o.enforce_node_id || !ip || nvx_dht_ip_local(ip))
        return;
    if (ip != d->ip_vote) {
        d->ip_vote = ip;
        d->ip_votes = 0;
    }
    if (++d->ip_votes < IP_VOTES_NEEDED || d->o.external_ip == ip)
        return;
    d->o.external_ip = ip;
    if (nvx_dht_id_ok(d->table.self, ip))
        return;
    uint8_t rnd[17], id[20];
    nvx__dht_random(d, rnd, sizeof(rnd));
    nvx_dht_id_for_ip(ip, rnd, id);
    (void)nvx__dht_table_rekey(&d->table, id, true, now_ms);
}

static void
on_response(nvx_dht *d, const nvx_krpc_msg *m, uint32_t ip, uint16_t port, uint64_t now_ms)
{
    if (m->tid_len != 4)
        return;
    size_t slot = (size_t)m->tid[0] << 8 | m->tid[1];
    if (slot >= NVX_DHT_TX_MAX)
        return;
    nvx__dht_tx *t = &d->tx[slot];
    /* Only the address we asked may answer, with the tid we chose. */
    if (!t->used || t->ip != ip || t->port != port || memcmp(t->tid, m->tid, 4) != 0)
        return;
    nvx__dht_tx_done(t);
    if (m->kind == NVX_KRPC_RESPONSE) {
        if (memcmp(m->id, d->table.self, 20) != 0)
            (void)nvx__dht_table_heard(&d->table, m->id, ip, port, d->o.enforce_node_id, now_ms);
        if (m->has_ip)
            vote_ip(d, m->ip, now_ms);
    }
    nvx__dht_lookup *l = nvx__dht_lookup_find(d, t->lookup);
    if (l)
        nvx__dht_lookup_reply(d, l, ip, port, m, now_ms);
}

void
nvx_dht_input(nvx_dht *d, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len,
              uint64_t now_ms)
{
    d->rx++;
    if (!ip || !port) {
        d->dropped++;
        return;
    }
    nvx_krpc_msg m;
    int r = nvx_krpc_decode(&m, buf, len);
    if (m.kind == NVX_KRPC_QUERY && !rate_ok(d, ip, now_ms)) {
        d->dropped++;
        return;
    }
    if (r < 0) {
        d->dropped++;
        if (m.kind == NVX_KRPC_QUERY && m.tid_len)
            send_error(d, &m, ip, port, NVX_KRPC_E_PROTOCOL, "malformed query");
        return;
    }
    if (m.kind != NVX_KRPC_QUERY) {
        on_response(d, &m, ip, port, now_ms);
        return;
    }
    answer(d, &m, ip, port, now_ms);
    /* A node that asks us may join the table: if its bucket has room we
     * ping it, and it enters when it answers (so a forged source address
     * never does). */
    if (!m.read_only && memcmp(m.id, d->table.self, 20) != 0 &&
        !nvx__dht_table_has(&d->table, m.id) && nvx__dht_table_room(&d->table, m.id) &&
        (!d->o.enforce_node_id || nvx_dht_id_ok(m.id, ip)))
        ping(d, ip, port, now_ms);
}

/* ---------------------------------------------------------------------- */
/* Lookups */

static nvx__dht_lookup *
lookup_start(nvx_dht *d, nvx_dht_lookup_kind kind, const uint8_t target[static 20])
{
    nvx__dht_lookup *l = NULL;
    for (size_t i = 0; i < NVX_DHT_LOOKUPS_MAX && !l; i++)
        if (!d->lookups[i].handle)
            l = &d->lookups[i];
    if (!l)
        return NULL;
    memset(l, 0, sizeof(*l));
    if (++d->next_handle > 0x7fffffff)
        d->next_handle = 1;
    l->handle = d->next_handle;
    l->kind = (uint8_t)kind;
    memcpy(l->target, target, 20);
    nvx__dht_node n[2 * NVX_DHT_K];
    size_t k = nvx__dht_table_closest(&d->table, target, n, 2 * NVX_DHT_K);
    for (size_t i = 0; i < k; i++)
        nvx__dht_lookup_add(l, n[i].id, n[i].ip, n[i].port, 0);
    /* With few nodes known, or none of the bootstrap addresses heard yet,
     * those are asked too. */
    if (k < NVX_DHT_K || !d->booted)
        for (size_t i = 0; i < d->n_boot; i++)
            nvx__dht_lookup_add(l, NULL, d->boot_ip[i], d->boot_port[i], 0);
    return l;
}

int
nvx_dht_lookup(nvx_dht *d, nvx_dht_lookup_kind kind, const uint8_t key[20], uint16_t port,
               const nvx_dht_item *item, nvx_dht_cb cb, void *arg, uint64_t now_ms)
{
    uint8_t target[20];
    if ((unsigned)kind - 1 >= _NVX_DHT_LOOKUP_KIND_MAX - 1)
        return -EINVAL;
    if (kind == NVX_DHT_GET || kind == NVX_DHT_PUT) {
        if (!item || item->salt_len > NVX_KRPC_SALT_MAX || item->v_len > NVX_KRPC_V_MAX)
            return -EINVAL;
        if (kind == NVX_DHT_PUT && !nvx_dht_item_verify(item))
            return -EBADMSG;
        nvx_dht_item_target(item->k, item->salt, item->salt_len, target);
    } else {
        if (!key)
            return -EINVAL;
        memcpy(target, key, 20);
    }
    nvx_dht_item *copy = NULL;
    if (item) {
        copy = malloc(sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        *copy = *item;
    }
    nvx__dht_lookup *l = lookup_start(d, kind, target);
    if (!l) {
        free(copy);
        return -ENOSPC;
    }
    l->port = port;
    l->cb = cb;
    l->arg = arg;
    l->item = copy;
    uint32_t h = l->handle;
    /* What this node stores itself counts: in a small network the nodes
     * closest to the key may include us. */
    if (kind == NVX_DHT_GET_PEERS) {
        nvx_krpc_msg local = { .kind = NVX_KRPC_RESPONSE };
        uint8_t peers[NVX_KRPC_VALUES_MAX][NVX_KRPC_PEER_LEN];
        local.n_values =
            nvx__dht_store_peers(&d->store, target, peers, NVX_KRPC_VALUES_MAX, now_ms);
        for (size_t i = 0; i < local.n_values; i++)
            local.values[i] = peers[i];
        nvx__dht_lookup_peers(l, &local);
        if (!l->handle)
            return (int)h; /* the callback cancelled it */
    }
    if (kind == NVX_DHT_GET) { /* an item stored here counts too (verified when stored) */
        const nvx_dht_item *mine = nvx__dht_store_get_item(&d->store, target, now_ms);
        if (mine) {
            *l->item = *mine;
            l->have_item = true;
        }
    }
    nvx__dht_lookup_step(d, l, now_ms);
    return (int)h;
}

void
nvx_dht_cancel(nvx_dht *d, uint32_t handle)
{
    nvx__dht_lookup *l = nvx__dht_lookup_find(d, handle);
    if (l) {
        l->kind = NVX_DHT_FIND_NODE; /* nothing to store, no item to report */
        nvx__dht_lookup_end(d, l, true);
    }
}

void
nvx_dht_provider_key(const uint8_t model_id[static 32], uint8_t out[static 20])
{
    static const char prefix[] = "nvx-provider-v1";
    uint8_t in[sizeof(prefix) - 1 + 32], h[32];
    memcpy(in, prefix, sizeof(prefix) - 1);
    memcpy(in + sizeof(prefix) - 1, model_id, 32);
    crypto_generichash(h, sizeof(h), in, sizeof(in), NULL, 0);
    memcpy(out, h, 20);
}

void
nvx_dht_relay_key(uint8_t out[static 20])
{
    static const char name[] = "nvx-relay-v1";
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const uint8_t *)name, sizeof(name) - 1, NULL, 0);
    memcpy(out, h, 20);
}

/* ---------------------------------------------------------------------- */
/* What we announce and put */

int
nvx_dht_announce(nvx_dht *d, const uint8_t key[static 20], uint16_t port, uint64_t now_ms)
{
    for (size_t i = 0; i < d->n_ann; i++)
        if (memcmp(d->ann[i].key, key, 20) == 0) {
            d->ann[i].port = port;
            return -EEXIST;
        }
    if (d->n_ann == NVX_DHT_ANNOUNCE_MAX)
        return -ENOSPC;
    nvx__dht_announce *a = &d->ann[d->n_ann++];
    memset(a, 0, sizeof(*a));
    memcpy(a->key, key, 20);
    a->port = port;
    /* Spread the first announces, a second per key up to a minute: a node
     * that starts with many models does not send them all at once, and
     * one with a single model announces it soon. */
    uint32_t r, window = (uint32_t)(d->n_ann * 1000u < 60000u ? d->n_ann * 1000u : 60000u);
    nvx__dht_random(d, &r, sizeof(r));
    a->next_ms = now_ms + r % window;
    return 0;
}

void
nvx_dht_announce_port(nvx_dht *d, uint16_t port, uint64_t now_ms)
{
    for (size_t i = 0; i < d->n_ann; i++)
        if (d->ann[i].port != port) {
            d->ann[i].port = port;
            d->ann[i].next_ms = now_ms; /* the old port is stale where it was stored */
            d->ann[i].sent = 0;
        }
}

int
nvx_dht_store_self(nvx_dht *d, const uint8_t key[static 20], uint32_t ip, uint16_t port,
                   uint64_t now_ms)
{
    return nvx__dht_store_peer(&d->store, key, ip, port, now_ms);
}

void
nvx_dht_unannounce(nvx_dht *d, const uint8_t key[static 20])
{
    for (size_t i = 0; i < d->n_ann; i++)
        if (memcmp(d->ann[i].key, key, 20) == 0) {
            d->ann[i] = d->ann[--d->n_ann];
            return;
        }
}

static uint64_t
spread(nvx_dht *d, uint64_t base_ms)
{
    uint32_t r;
    nvx__dht_random(d, &r, sizeof(r));
    return base_ms + r % NVX_DHT_SPREAD_MS;
}

static void
own_put_done(void *arg, const nvx_dht_result *res)
{
    (void)arg;
    (void)res;
}

static void
run_announces(nvx_dht *d, uint64_t now_ms)
{
    unsigned running = 0;
    for (size_t i = 0; i < d->n_ann; i++)
        if (d->ann[i].lookup && nvx__dht_lookup_find(d, d->ann[i].lookup))
            running++;
        else
            d->ann[i].lookup = 0;
    for (size_t i = 0; i < d->n_ann && running < ANNOUNCE_LOOKUPS_MAX; i++) {
        nvx__dht_announce *a = &d->ann[i];
        if (a->lookup || a->next_ms > now_ms)
            continue;
        if (d->table.count == 0)
            continue; /* nobody to tell yet: asked again at the next tick */
        int h = nvx_dht_lookup(d, NVX_DHT_ANNOUNCE, a->key, a->port, NULL, NULL, NULL, now_ms);
        if (h < 0)
            break;
        a->lookup = nvx__dht_lookup_find(d, (uint32_t)h) ? (uint32_t)h : 0;
        static const uint32_t early_ms[NVX_DHT_EARLY_ANNOUNCES] = { 20 * 1000, 5 * 60 * 1000 };
        a->next_ms = a->sent < NVX_DHT_EARLY_ANNOUNCES ? now_ms + early_ms[a->sent]
                                                       : spread(d, now_ms + NVX_DHT_REANNOUNCE_MS);
        a->sent += a->sent < NVX_DHT_EARLY_ANNOUNCES;
        running++;
    }
    for (size_t i = 0; i < d->n_own; i++) {
        if (d->own_next_ms[i] > now_ms || d->table.count == 0)
            continue;
        int h = nvx_dht_lookup(d, NVX_DHT_PUT, NULL, 0, &d->own[i], own_put_done, NULL, now_ms);
        if (h < 0)
            break;
        d->own_next_ms[i] = spread(d, now_ms + NVX_DHT_REPUT_MS);
    }
}

int
nvx_dht_put(nvx_dht *d, const nvx_dht_item *item, uint64_t now_ms)
{
    if (!nvx_dht_item_verify(item))
        return -EBADMSG;
    uint8_t t[20], u[20];
    nvx_dht_item_target(item->k, item->salt, item->salt_len, t);
    size_t i = 0;
    for (; i < d->n_own; i++) {
        nvx_dht_item_target(d->own[i].k, d->own[i].salt, d->own[i].salt_len, u);
        if (memcmp(t, u, 20) == 0)
            break;
    }
    if (i == d->n_own) {
        if (d->n_own == NVX_DHT_OWN_ITEMS_MAX)
            return -ENOSPC;
        d->n_own++;
    }
    d->own[i] = *item;
    d->own_next_ms[i] = now_ms; /* the next tick puts it */
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Periodic work */

/* Until a bootstrap address has answered, and while the table is small,
 * a lookup of our own id through them. A node that only ever heard nodes
 * who joined through it would otherwise stay an island (its table fills
 * with them, but it is not part of the network the bootstrap hosts are). */
static void
bootstrap(nvx_dht *d, uint64_t now_ms)
{
    if (now_ms < d->next_boot_ms || (d->booted && d->table.count >= BOOT_TABLE_MIN))
        return;
    if (d->n_boot == 0 && d->table.count == 0)
        return;
    d->next_boot_ms = now_ms + (d->booted ? NVX_DHT_BOOT_RETRY_MS : BOOT_FIRST_RETRY_MS);
    (void)nvx_dht_lookup(d, NVX_DHT_FIND_NODE, d->table.self, 0, NULL, NULL, NULL, now_ms);
}

/* Refreshes a bucket nobody touched for NVX_DHT_REFRESH_MS (up to the
 * deepest one in use): a find_node for a random id inside it. One per
 * tick at most, each bucket at most once per interval. */
static void
refresh(nvx_dht *d, uint64_t now_ms)
{
    if (d->table.count == 0)
        return;
    unsigned deepest = 0;
    for (unsigned b = 0; b < NVX__DHT_BUCKETS; b++)
        if (d->table.b[b] && d->table.b[b]->count)
            deepest = b;
    for (unsigned b = 0; b <= deepest; b++) {
        nvx__dht_bucket *bk = d->table.b[b];
        uint64_t last =
            bk && bk->touched_ms > d->refreshed_ms[b] ? bk->touched_ms : d->refreshed_ms[b];
        if (last + NVX_DHT_REFRESH_MS > now_ms)
            continue;
        uint8_t target[20];
        nvx__dht_random(d, target, 20);
        /* Our first b bits, then bit b flipped: an id inside bucket b. */
        memcpy(target, d->table.self, b / 8);
        uint8_t keep = (uint8_t)(0xff00u >> (b % 8)), bit = (uint8_t)(0x80u >> (b % 8));
        target[b / 8] = (uint8_t)((d->table.self[b / 8] & keep) | (~d->table.self[b / 8] & bit) |
                                  (target[b / 8] & (uint8_t) ~(keep | bit)));
        d->refreshed_ms[b] = now_ms;
        (void)nvx_dht_lookup(d, NVX_DHT_FIND_NODE, target, 0, NULL, NULL, NULL, now_ms);
        return;
    }
}

void
nvx_dht_tick(nvx_dht *d, uint64_t now_ms)
{
    /* Queries unanswered for half the timeout go once more (same bytes,
     * same tid: either answer counts); those that timed out: the table
     * learns, the lookup moves on. */
    for (size_t i = 0; i < NVX_DHT_TX_MAX; i++) {
        nvx__dht_tx *t = &d->tx[i];
        if (t->used && !t->resent && t->pkt &&
            t->sent_ms + NVX_DHT_QUERY_TIMEOUT_MS / 2 <= now_ms) {
            t->resent = true;
            d->tx_count++;
            d->o.ops.send(d->o.arg, t->ip, t->port, t->pkt, t->pkt_len);
        }
        if (!t->used || t->sent_ms + NVX_DHT_QUERY_TIMEOUT_MS > now_ms)
            continue;
        nvx__dht_tx_done(t);
        nvx__dht_table_failed(&d->table, t->ip, t->port);
        nvx__dht_lookup *l = nvx__dht_lookup_find(d, t->lookup);
        if (l)
            nvx__dht_lookup_reply(d, l, t->ip, t->port, NULL, now_ms);
    }
    bootstrap(d, now_ms);
    refresh(d, now_ms);
    for (int i = 0; i < TICK_PINGS_MAX && now_ms >= NVX__DHT_STALE_MS; i++) {
        nvx__dht_node *n = nvx__dht_table_stale(&d->table, now_ms - NVX__DHT_STALE_MS);
        if (!n)
            break;
        n->seen_ms = now_ms - NVX__DHT_STALE_MS / 2; /* asked: not again before its answer */
        ping(d, n->ip, n->port, now_ms);
    }
    run_announces(d, now_ms);
    if (now_ms / 60000 != d->last_tick_ms / 60000)
        nvx__dht_store_expire(&d->store, now_ms);
    d->last_tick_ms = now_ms;
}

int
nvx_dht_add_bootstrap(nvx_dht *d, uint32_t ip, uint16_t port)
{
    if (!ip || !port)
        return -EINVAL;
    for (size_t i = 0; i < d->n_boot; i++)
        if (d->boot_ip[i] == ip && d->boot_port[i] == port)
            return 0;
    if (d->n_boot == NVX_DHT_BOOT_MAX)
        return -ENOSPC;
    d->boot_ip[d->n_boot] = ip;
    d->boot_port[d->n_boot++] = port;
    d->next_boot_ms = 0;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Life cycle, state */

int
nvx_dht_new(const nvx_dht_opts *opts, uint64_t now_ms, nvx_dht **ret)
{
    if (!opts || !opts->ops.send || !ret)
        return -EINVAL;
    nvx_dht *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->o = *opts;
    d->lookups = calloc(NVX_DHT_LOOKUPS_MAX, sizeof(*d->lookups));
    d->ann = calloc(NVX_DHT_ANNOUNCE_MAX, sizeof(*d->ann));
    d->own = calloc(NVX_DHT_OWN_ITEMS_MAX, sizeof(*d->own));
    if (!d->lookups || !d->ann || !d->own) {
        nvx_dht_free(d);
        return -ENOMEM;
    }
    if (opts->id) {
        memcpy(d->table.self, opts->id, 20);
    } else if (opts->external_ip && opts->enforce_node_id) {
        uint8_t rnd[17];
        nvx__dht_random(d, rnd, sizeof(rnd));
        nvx_dht_id_for_ip(opts->external_ip, rnd, d->table.self);
    } else {
        nvx__dht_random(d, d->table.self, 20);
    }
    d->o.id = NULL;
    d->last_tick_ms = now_ms;
    *ret = d;
    return 0;
}

void
nvx_dht_free(nvx_dht *d)
{
    if (!d)
        return;
    /* Running lookups report done (with what they have) so that their
     * callers free what they gave as arg. */
    for (size_t i = 0; d->lookups && i < NVX_DHT_LOOKUPS_MAX; i++)
        if (d->lookups[i].handle)
            nvx_dht_cancel(d, d->lookups[i].handle);
    for (size_t i = 0; i < NVX_DHT_TX_MAX; i++)
        nvx__dht_tx_done(&d->tx[i]);
    free(d->lookups);
    free(d->ann);
    free(d->own);
    nvx__dht_table_free(&d->table);
    nvx__dht_store_free(&d->store);
    sodium_memzero(d->o.secret, sizeof(d->o.secret));
    free(d);
}

const uint8_t *
nvx_dht_id(const nvx_dht *d)
{
    return d->table.self;
}

void
nvx_dht_id_hex(const uint8_t id[static 20], char out[static 41])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[40] = 0;
}

void
nvx_dht_stats_get(const nvx_dht *d, nvx_dht_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->id, d->table.self, 20);
    ret->external_ip = d->o.external_ip;
    ret->nodes = d->table.count;
    ret->announced = d->n_ann;
    ret->own_items = d->n_own;
    ret->peers = d->store.n_peers;
    ret->items = d->store.n_items;
    for (size_t i = 0; i < NVX_DHT_LOOKUPS_MAX; i++)
        ret->lookups += d->lookups[i].handle != 0;
    ret->rx = d->rx;
    ret->tx = d->tx_count;
    ret->dropped = d->dropped;
}

int
nvx_dht_save(const nvx_dht *d, uint8_t *buf, size_t cap)
{
    nvx__dht_node n[256];
    size_t k = nvx__dht_table_closest(&d->table, d->table.self, n, 256);
    size_t need = 8 + 20 + 2 + k * NVX_KRPC_NODE_LEN;
    if (cap < need)
        return -EMSGSIZE;
    memcpy(buf, save_magic, 8);
    memcpy(buf + 8, d->table.self, 20);
    buf[28] = (uint8_t)(k >> 8);
    buf[29] = (uint8_t)k;
    for (size_t i = 0; i < k; i++)
        nvx_krpc_put_node(buf + 30 + i * NVX_KRPC_NODE_LEN, n[i].id, n[i].ip, n[i].port);
    return (int)need;
}

int
nvx_dht_load(nvx_dht *d, const uint8_t *buf, size_t len)
{
    if (len < 30 || memcmp(buf, save_magic, 8) != 0)
        return -EBADMSG;
    size_t k = (size_t)buf[28] << 8 | buf[29];
    if (k > 256 || len - 30 != k * NVX_KRPC_NODE_LEN)
        return -EBADMSG;
    /* The saved id comes back (others' tables know it) unless BEP 42
     * rules it out for our address. */
    if (!d->o.enforce_node_id || !d->o.external_ip || nvx_dht_id_ok(buf + 8, d->o.external_ip))
        memcpy(d->table.self, buf + 8, 20);
    int added = 0;
    for (size_t i = 0; i < k; i++) {
        uint8_t id[20];
        uint32_t ip;
        uint16_t port;
        nvx_krpc_get_node(buf + 30 + i * NVX_KRPC_NODE_LEN, id, &ip, &port);
        if (nvx_dht_add_bootstrap(d, ip, port) == 0)
            added++;
    }
    return added;
}
