/* SPDX-License-Identifier: MIT */
/*
 * Gossip of provider records, name records and peer addresses
 * (daemon/gossip.h). Sans-I/O: everything arrives as a call with the current
 * time, everything leaves through the ops callbacks.
 *
 * Records live in one table of slots (daemon/gossip-table.c: an array
 * plus an open-addressing index keyed by a BLAKE2b-256 slot key): a
 * provider slot per (node, model), a name slot per (publisher key id,
 * name). Keying by the *slot* rather than
 * by the record's bytes is what makes both de-duplication rules cheap: a
 * looping copy of a provider record finds its slot with an expiry that is
 * not later, and a stale name record finds a higher sequence.
 */
#include "daemon/gossip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/gossip-internal.h"
#include "daemon/pex.h"
#include "libcas/hash.h"
#include "proto/session.h"

/* ---------------------------------------------------------------------- */
/* Sessions and sending */

static bool
node_connected(const nvx_gossip *g, const uint8_t node[PROTO_ID_LEN])
{
    for (size_t i = 0; i < g->n_s; i++)
        if (memcmp(g->s[i].node, node, PROTO_ID_LEN) == 0)
            return true;
    return false;
}

static void
send_body(nvx_gossip *g, uint64_t peer, const proto_msg *m)
{
    /* Encoding here first is how a bug of ours (a record the decoder would
     * refuse) stays a counted error instead of a session torn down. */
    size_t len;
    int r = proto_msg_encode(m, NULL, 0, &len);
    if (r == 0)
        r = g->cfg.ops->send(g->cfg.userdata, peer, m);
    if (r < 0)
        g->st.send_errors++;
    else
        g->st.messages++;
}

static uint32_t
ttl_left(uint64_t expires_ms, uint64_t now_ms, uint32_t fallback_s)
{
    if (expires_ms == NO_EXPIRY)
        return fallback_s;
    if (expires_ms <= now_ms)
        return 0;
    uint64_t s = (expires_ms - now_ms + 999) / 1000;
    return s > NVX_GOSSIP_TTL_MAX_S ? NVX_GOSSIP_TTL_MAX_S : (uint32_t)s;
}

/* Copies entry e into an out_rec. False when it must not be sent (no hops
 * left or expired). */
static bool
out_from_entry(const nvx_gossip *g, const entry *e, uint64_t now_ms, out_rec *ret)
{
    if (!e->can_send)
        return false;
    uint32_t ttl = ttl_left(e->expires_ms, now_ms, g->cfg.name_ttl_s);
    if (ttl == 0)
        return false;
    ret->kind = e->kind;
    ret->hops = e->send_hops;
    ret->ttl_s = ttl;
    if (e->kind == PROTO_RECORD_NAME)
        ret->name = *e->name;
    else
        ret->prov = e->prov;
    return true;
}

/* Sends the records of b to session s as ANNOUNCE messages, leaving out
 * provider records about the receiving node itself. */
static void
send_batch(nvx_gossip *g, const session *s, const batch *b, bool count_forwarded)
{
    proto_msg *m = &g->msg;
    memset(m, 0, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    proto_announce *a = &m->u.announce;
    for (size_t i = 0; i < b->n; i++) {
        const out_rec *o = &b->r[i];
        if (o->kind == PROTO_RECORD_PROVIDER && memcmp(o->prov.node_id, s->node, PROTO_ID_LEN) == 0)
            continue;
        proto_record *pr = &a->records[a->n];
        pr->kind = o->kind;
        if (o->kind == PROTO_RECORD_PROVIDER) {
            pr->u.provider = o->prov; /* as signed by its node */
            pr->u.provider.hops = o->hops;
        } else {
            proto_name_record *p = &pr->u.name;
            memcpy(p->key_id, o->name.keyid, PROTO_KEYID_LEN);
            p->name.p = (const uint8_t *)o->name.name;
            p->name.len = o->name.name_len;
            p->sequence = o->name.sequence;
            memcpy(p->model_id, o->name.model_id, PROTO_ID_LEN);
            p->time = o->name.time;
            p->ttl_s = o->ttl_s;
            p->hops = o->hops;
            cas_namerec_proof(&o->name, g->proofs[a->n]);
            p->sig.p = g->proofs[a->n];
            p->sig.len = CAS_NAMEREC_PROOF_LEN;
        }
        a->n++;
    }
    if (a->n == 0)
        return;
    if (count_forwarded)
        g->st.forwarded += a->n;
    send_body(g, s->id, m);
}

/* Sends every live record to session s, in batches. */
static void
sync_session(nvx_gossip *g, const session *s, uint64_t now_ms)
{
    batch *b = &g->out;
    b->n = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (!out_from_entry(g, &g->e[i], now_ms, &b->r[b->n]))
            continue;
        if (++b->n == PROTO_ANNOUNCE_MAX) {
            send_batch(g, s, b, false);
            b->n = 0;
        }
    }
    if (b->n)
        send_batch(g, s, b, false);
}

static void
send_peers(nvx_gossip *g, session *s, uint64_t now_ms)
{
    proto_msg *m = &g->msg;
    memset(m, 0, sizeof(*m));
    m->type = PROTO_MSG_PEERS;
    proto_peers *p = &m->u.peers;
    for (size_t i = 0; i < nvx_pex_count(g->pex) && p->n < PROTO_PEERS_MAX; i++) {
        const uint8_t *node;
        const char *addr;
        nvx_pex_at(g->pex, i, &node, &addr);
        if (memcmp(node, s->node, PROTO_ID_LEN) == 0)
            continue;
        memcpy(p->peers[p->n].node_id, node, PROTO_ID_LEN);
        p->peers[p->n].addr.p = (const uint8_t *)addr;
        p->peers[p->n].addr.len = strlen(addr);
        p->n++;
    }
    s->pex_tx_ms = now_ms;
    if (p->n)
        send_body(g, s->id, m);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

int
nvx_gossip_new(const nvx_gossip_cfg *cfg, nvx_gossip **ret)
{
    if (!cfg || !ret || !cfg->ops || !cfg->ops->send)
        return -EINVAL;
    if (cfg->records_max > NVX_GOSSIP_RECORDS_MAX || cfg->hops > NVX_GOSSIP_HOPS_MAX ||
        cfg->ttl_s > NVX_GOSSIP_TTL_MAX_S || cfg->name_ttl_s > NVX_GOSSIP_TTL_MAX_S)
        return -EINVAL;
    nvx_gossip *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->cfg = *cfg;
    if (cfg->identity)
        memcpy(g->cfg.node_id, proto_identity_node_id(cfg->identity), PROTO_ID_LEN);
    if (!g->cfg.ttl_s)
        g->cfg.ttl_s = NVX_GOSSIP_TTL_DEFAULT_S;
    if (!g->cfg.name_ttl_s)
        g->cfg.name_ttl_s = NVX_GOSSIP_NAME_TTL_DEFAULT_S;
    if (!g->cfg.hops)
        g->cfg.hops = NVX_GOSSIP_HOPS_DEFAULT;
    if (!g->cfg.records_max)
        g->cfg.records_max = NVX_GOSSIP_RECORDS_DEFAULT;
    if (!g->cfg.known_max)
        g->cfg.known_max = NVX_GOSSIP_KNOWN_DEFAULT;
    if (!g->cfg.rate_per_s)
        g->cfg.rate_per_s = NVX_GOSSIP_RATE_DEFAULT;
    if (!g->cfg.burst)
        g->cfg.burst = NVX_GOSSIP_BURST_DEFAULT;
    if (!g->cfg.origin_share)
        g->cfg.origin_share = g->cfg.records_max / NVX_GOSSIP_ORIGIN_SHARE_DIV
                                  ? g->cfg.records_max / NVX_GOSSIP_ORIGIN_SHARE_DIV
                                  : 1;
    if (nvx_pex_new(g->cfg.known_max, &g->pex) < 0 || nvx__gossip_index_rebuild(g, 0) < 0) {
        nvx_gossip_free(g);
        return -ENOMEM;
    }
    *ret = g;
    return 0;
}

void
nvx_gossip_free(nvx_gossip *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        nvx__gossip_entry_clear(&g->e[i]);
    free(g->e);
    free(g->index);
    free(g->s);
    nvx_pex_free(g->pex);
    free(g);
}

int
nvx_gossip_peer_up(nvx_gossip *g, uint64_t peer, const uint8_t node_id[static PROTO_ID_LEN],
                   uint64_t now_ms)
{
    if (nvx__gossip_session_find(g, peer))
        return -EEXIST;
    if (g->n_s >= NVX_GOSSIP_SESSIONS_MAX)
        return -EMSGSIZE;
    if (g->n_s == g->cap_s) {
        size_t cap = g->cap_s ? 2 * g->cap_s : 8;
        session *s = realloc(g->s, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        g->s = s;
        g->cap_s = cap;
    }
    session *s = &g->s[g->n_s++];
    memset(s, 0, sizeof(*s));
    s->id = peer;
    memcpy(s->node, node_id, PROTO_ID_LEN);
    s->tokens = (uint64_t)g->cfg.burst * 1000;
    s->refill_ms = now_ms;
    sync_session(g, s, now_ms);
    send_peers(g, s, now_ms);
    return 0;
}

void
nvx_gossip_peer_down(nvx_gossip *g, uint64_t peer)
{
    session *s = nvx__gossip_session_find(g, peer);
    if (!s)
        return;
    /* Its records stay, without an origin: the first to go when the table
     * is full (the daemon's handle may be reused by a new session). */
    for (size_t i = 0; i < g->n; i++)
        if (g->e[i].origin == peer)
            g->e[i].origin = 0;
    *s = g->s[--g->n_s];
}

/* ---------------------------------------------------------------------- */
/* Receiving */

/* Takes one record's worth from the session's bucket. */
static bool
rate_take(const nvx_gossip *g, session *s, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)g->cfg.burst * 1000;
    if (now_ms > s->refill_ms) {
        uint64_t elapsed = now_ms - s->refill_ms;
        if (elapsed > 1000000) /* keeps the product below 2^64 */
            elapsed = 1000000;
        uint64_t add = elapsed * g->cfg.rate_per_s;
        s->tokens = add >= cap - s->tokens ? cap : s->tokens + add;
        s->refill_ms = now_ms;
    }
    if (s->tokens < 1000)
        return false;
    s->tokens -= 1000;
    return true;
}

static bool
is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static uint64_t
expiry_of(uint32_t ttl_s, uint64_t now_ms)
{
    if (ttl_s > NVX_GOSSIP_TTL_MAX_S)
        ttl_s = NVX_GOSSIP_TTL_MAX_S;
    return now_ms + (uint64_t)ttl_s * 1000;
}

static void
set_hops(entry *e, uint8_t hops_in)
{
    if (hops_in > NVX_GOSSIP_HOPS_MAX)
        hops_in = NVX_GOSSIP_HOPS_MAX;
    e->can_send = hops_in > 0;
    e->send_hops = hops_in > 0 ? (uint8_t)(hops_in - 1) : 0;
}

/* Returns 1 when accepted (and queued in g->fwd when it travels on).
 * Provider records are signed by their node over (node, model, time, ttl),
 * so a relay cannot extend one: the newest time per (node, model) wins, and
 * a copy coming back around a loop has the same time, a duplicate. */
static int
accept_provider(nvx_gossip *g, session *from, const proto_provider_record *p, uint64_t now_ms)
{
    uint64_t now_s = now_ms / 1000;
    if (p->ttl_s == 0 || p->ttl_s > NVX_GOSSIP_TTL_MAX_S || is_zero(p->node_id, PROTO_ID_LEN) ||
        is_zero(p->model_id, PROTO_ID_LEN) || p->time > now_s + NVX_GOSSIP_SKEW_S) {
        g->st.invalid++;
        return 0;
    }
    uint64_t expires = (p->time + p->ttl_s + NVX_GOSSIP_SKEW_S) * 1000;
    if (expires <= now_ms) {
        g->st.duplicates++; /* stale: expired on the way */
        return 0;
    }
    if (memcmp(p->node_id, g->cfg.node_id, PROTO_ID_LEN) == 0) {
        g->st.duplicates++; /* our own record, come back */
        return 0;
    }
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_provider_key(p->node_id, p->model_id, key);
    entry *e = nvx__gossip_lookup(g, key);
    if (e && (e->own || p->time <= e->prov.time)) {
        g->st.duplicates++;
        return 0;
    }
    /* Only now the signature: duplicates, the common case, cost no Ed25519. */
    if (!proto_provider_verify(p)) {
        g->st.invalid++;
        return 0;
    }
    if (!e) {
        e = nvx__gossip_slot_new(g, from);
        if (!e)
            return 0;
        memcpy(e->key, key, CAS_HASH_LEN);
        e->kind = PROTO_RECORD_PROVIDER;
        memcpy(e->node, p->node_id, PROTO_ID_LEN);
        memcpy(e->model, p->model_id, PROTO_ID_LEN);
        if (nvx__gossip_slot_insert(g, e) < 0)
            return 0;
        e = nvx__gossip_lookup(g, key);
    }
    nvx__gossip_set_origin(g, e, from);
    e->prov = *p;
    e->expires_ms = expires;
    set_hops(e, p->hops);
    g->st.accepted++;
    if (g->cfg.ops->provider)
        g->cfg.ops->provider(g->cfg.userdata, p->node_id, p->model_id, expires);
    if (e->can_send && g->fwd.n < PROTO_ANNOUNCE_MAX)
        (void)out_from_entry(g, e, now_ms, &g->fwd.r[g->fwd.n++]);
    return 1;
}

/* Puts a verified name record into its slot when it wins. Returns 1 when it
 * did, 0 when gossip knew it or better, -ENOMEM / -ENOSPC. */
static int
name_store(nvx_gossip *g, session *from, const cas_namerec *rec, bool own, bool local,
           uint64_t expires, uint8_t hops_in)
{
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_name_key(rec, key);
    entry *e = nvx__gossip_lookup(g, key);
    if (e && e->name->sequence >= rec->sequence) {
        bool same =
            e->name->sequence == rec->sequence && memcmp(e->name->sig, rec->sig, CAS_SIGBYTES) == 0;
        if (same && local) {
            /* Published by us, or reloaded from the store: keep it alive
             * and synced to new sessions, without flooding it again. */
            e->own = e->own || own;
            if (e->own)
                e->expires_ms = NO_EXPIRY;
            else if (expires > e->expires_ms)
                e->expires_ms = expires;
            e->can_send = true;
            e->send_hops = g->cfg.hops;
        }
        return 0;
    }
    cas_namerec *copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *rec;
    if (!e) {
        e = nvx__gossip_slot_new(g, from);
        if (!e) {
            free(copy);
            return -ENOSPC;
        }
        memcpy(e->key, key, CAS_HASH_LEN);
        e->kind = PROTO_RECORD_NAME;
        e->name = copy;
        if (nvx__gossip_slot_insert(g, e) < 0)
            return -ENOMEM; /* nvx__gossip_slot_commit freed copy with the entry */
        /* nvx__gossip_slot_commit may have moved the entries: find it again. */
        e = nvx__gossip_lookup(g, key);
        if (!e)
            return -EFAULT; /* the index lost a record it just took */
    } else {
        free(e->name);
        e->name = copy;
    }
    nvx__gossip_set_origin(g, e, from);
    memcpy(e->model, rec->model_id, PROTO_ID_LEN);
    e->own = e->own || own;
    e->expires_ms = e->own ? NO_EXPIRY : expires;
    if (own) {
        e->can_send = true;
        e->send_hops = g->cfg.hops;
    } else {
        set_hops(e, hops_in);
    }
    return 1;
}

static int
accept_name(nvx_gossip *g, session *from, const proto_name_record *p, uint64_t now_ms)
{
    if (p->ttl_s == 0) {
        g->st.invalid++;
        return 0;
    }
    cas_namerec rec;
    if (cas_namerec_from_wire(p->key_id, p->name.p, p->name.len, p->sequence, p->time, p->model_id,
                              p->sig.p, p->sig.len, &rec) < 0) {
        g->st.invalid++;
        return 0;
    }
    int r = name_store(g, from, &rec, false, false, expiry_of(p->ttl_s, now_ms), p->hops);
    if (r <= 0) {
        if (r == 0)
            g->st.duplicates++;
        return 0;
    }
    g->st.accepted++;
    if (g->cfg.ops->name)
        g->cfg.ops->name(g->cfg.userdata, &rec);
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_name_key(&rec, key);
    entry *e = nvx__gossip_lookup(g, key);
    if (e && e->can_send && g->fwd.n < PROTO_ANNOUNCE_MAX)
        (void)out_from_entry(g, e, now_ms, &g->fwd.r[g->fwd.n++]);
    return 1;
}

static int
on_announce(nvx_gossip *g, session *from, const proto_announce *a, uint64_t now_ms)
{
    int accepted = 0;
    g->fwd.n = 0;
    for (size_t i = 0; i < a->n && i < PROTO_ANNOUNCE_MAX; i++) {
        const proto_record *pr = &a->records[i];
        if (!rate_take(g, from, now_ms)) {
            g->st.rate_dropped += a->n - i;
            break;
        }
        if (pr->kind == PROTO_RECORD_PROVIDER)
            accepted += accept_provider(g, from, &pr->u.provider, now_ms);
        else if (pr->kind == PROTO_RECORD_NAME)
            accepted += accept_name(g, from, &pr->u.name, now_ms);
    }
    if (g->fwd.n) {
        for (size_t i = 0; i < g->n_s; i++)
            if (g->s[i].id != from->id)
                send_batch(g, &g->s[i], &g->fwd, true);
    }
    return accepted;
}

static void
on_peers(nvx_gossip *g, session *from, const proto_peers *p, uint64_t now_ms)
{
    if (from->pex_rx_seen && now_ms - from->pex_rx_ms < NVX_GOSSIP_PEX_MIN_INTERVAL_MS) {
        g->st.rate_dropped += p->n;
        return;
    }
    from->pex_rx_seen = true;
    from->pex_rx_ms = now_ms;
    unsigned dials = 0;
    for (size_t i = 0; i < p->n && i < PROTO_PEERS_MAX; i++) {
        const proto_peer_entry *pe = &p->peers[i];
        if (is_zero(pe->node_id, PROTO_ID_LEN) ||
            memcmp(pe->node_id, g->cfg.node_id, PROTO_ID_LEN) == 0) {
            g->st.invalid += !is_zero(pe->node_id, PROTO_ID_LEN) ? 0 : 1;
            continue;
        }
        /* A third party's word: numeric addresses only, never over one
         * from a better source (daemon/pex.h), dialed pinned to the id. */
        int r = nvx_pex_put(g->pex, pe->node_id, pe->addr.p, pe->addr.len, NVX_PEX_GOSSIP, now_ms);
        if (r == -EINVAL)
            g->st.invalid++;
        else if (r == -EPERM || r == -EADDRNOTAVAIL)
            g->st.pex_refused++;
        if (r != 1 || node_connected(g, pe->node_id) || dials >= NVX_GOSSIP_DIALS_PER_PEERS)
            continue;
        const char *addr;
        if (nvx_pex_get(g->pex, pe->node_id, &addr) < 0)
            continue;
        dials++;
        g->st.dials++;
        if (g->cfg.ops->dial)
            g->cfg.ops->dial(g->cfg.userdata, pe->node_id, addr);
    }
}

int
nvx_gossip_on_message(nvx_gossip *g, uint64_t peer, const proto_msg *m, uint64_t now_ms)
{
    session *s = nvx__gossip_session_find(g, peer);
    if (!s)
        return -ENOENT;
    if (m->type == PROTO_MSG_ANNOUNCE)
        return on_announce(g, s, &m->u.announce, now_ms);
    if (m->type == PROTO_MSG_PEERS)
        on_peers(g, s, &m->u.peers, now_ms);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Time */

static bool
is_expired(const entry *e, const void *arg)
{
    uint64_t now_ms = *(const uint64_t *)arg;
    return !e->own && e->expires_ms <= now_ms;
}

/* (Re-)signs our own provider record e with the current time. */
static int
own_sign(nvx_gossip *g, entry *e, uint64_t now_ms)
{
    proto_provider_record p;
    memset(&p, 0, sizeof(p));
    memcpy(p.model_id, e->model, PROTO_ID_LEN);
    p.time = now_ms / 1000;
    p.ttl_s = g->cfg.ttl_s;
    p.hops = g->cfg.hops;
    int r = proto_provider_sign(g->cfg.identity, &p);
    if (r < 0)
        return r;
    e->prov = p;
    e->expires_ms = (p.time + p.ttl_s) * 1000;
    e->next_announce_ms = now_ms + (uint64_t)g->cfg.ttl_s * 500;
    return 0;
}

void
nvx_gossip_tick(nvx_gossip *g, uint64_t now_ms)
{
    size_t before = g->n;
    nvx__gossip_sweep(g, is_expired, &now_ms);
    g->st.expired += before - g->n;

    /* Re-announce our own provider records that are due, to every session. */
    batch *b = &g->fwd;
    b->n = 0;
    for (size_t i = 0; i < g->n; i++) {
        entry *e = &g->e[i];
        if (!e->own || e->kind != PROTO_RECORD_PROVIDER || now_ms < e->next_announce_ms)
            continue;
        if (own_sign(g, e, now_ms) < 0)
            continue;
        (void)out_from_entry(g, e, now_ms, &b->r[b->n]);
        if (++b->n == PROTO_ANNOUNCE_MAX) {
            for (size_t j = 0; j < g->n_s; j++)
                send_batch(g, &g->s[j], b, false);
            b->n = 0;
        }
    }
    for (size_t j = 0; b->n && j < g->n_s; j++)
        send_batch(g, &g->s[j], b, false);

    for (size_t j = 0; j < g->n_s; j++)
        if (now_ms - g->s[j].pex_tx_ms >= NVX_GOSSIP_PEX_INTERVAL_MS)
            send_peers(g, &g->s[j], now_ms);
}

/* ---------------------------------------------------------------------- */
/* Our own records */

int
nvx_gossip_provide(nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN], uint64_t now_ms)
{
    if (!g->cfg.identity)
        return -EINVAL;
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_provider_key(g->cfg.node_id, model_id, key);
    entry *e = nvx__gossip_lookup(g, key);
    if (e && e->own)
        return 0;
    if (!e) {
        e = nvx__gossip_slot_new(g, NULL);
        if (!e)
            return -ENOSPC;
        memcpy(e->key, key, CAS_HASH_LEN);
        e->kind = PROTO_RECORD_PROVIDER;
        memcpy(e->node, g->cfg.node_id, PROTO_ID_LEN);
        memcpy(e->model, model_id, PROTO_ID_LEN);
        int r = nvx__gossip_slot_insert(g, e);
        if (r < 0)
            return r;
        e = nvx__gossip_lookup(g, key);
    }
    e->own = true;
    e->can_send = true;
    e->send_hops = g->cfg.hops;
    e->next_announce_ms = now_ms; /* the tick below sends it */
    nvx_gossip_tick(g, now_ms);
    return 0;
}

static bool
is_model(const entry *e, const void *arg)
{
    const uint8_t *key = arg;
    return memcmp(e->key, key, CAS_HASH_LEN) == 0;
}

int
nvx_gossip_unprovide(nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN])
{
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_provider_key(g->cfg.node_id, model_id, key);
    if (!nvx__gossip_lookup(g, key))
        return -ENOENT;
    nvx__gossip_sweep(g, is_model, key);
    return 0;
}

int
nvx_gossip_publish(nvx_gossip *g, const cas_namerec *rec, bool own, uint64_t now_ms)
{
    int r = cas_namerec_verify(rec);
    if (r < 0)
        return r;
    r = name_store(g, NULL, rec, own, true, expiry_of(g->cfg.name_ttl_s, now_ms), 0);
    if (r <= 0)
        return r;
    uint8_t key[CAS_HASH_LEN];
    nvx__gossip_name_key(rec, key);
    entry *e = nvx__gossip_lookup(g, key);
    e->can_send = true;
    e->send_hops = g->cfg.hops;
    batch *b = &g->fwd;
    b->n = 0;
    if (out_from_entry(g, e, now_ms, &b->r[0]))
        b->n = 1;
    for (size_t j = 0; b->n && j < g->n_s; j++)
        send_batch(g, &g->s[j], b, false);
    return 1;
}

int
nvx_gossip_add_addr(nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN], const char *addr,
                    int source, uint64_t now_ms)
{
    if (!addr)
        return -EINVAL;
    int r = nvx_pex_put(g->pex, node_id, (const uint8_t *)addr, strlen(addr), source, now_ms);
    return r < 0 ? r : 0;
}

int
nvx_gossip_forget_addr(nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN], const char *addr)
{
    return nvx_pex_forget(g->pex, node_id, addr);
}

size_t
nvx_gossip_providers(const nvx_gossip *g, const uint8_t model_id[static PROTO_ID_LEN],
                     uint64_t now_ms, uint8_t (*ret)[PROTO_ID_LEN], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        const entry *e = &g->e[i];
        if (e->kind != PROTO_RECORD_PROVIDER || memcmp(e->model, model_id, PROTO_ID_LEN) != 0)
            continue;
        if (!e->own && e->expires_ms <= now_ms)
            continue;
        if (n < cap)
            memcpy(ret[n], e->node, PROTO_ID_LEN);
        n++;
    }
    return n;
}

size_t
nvx_gossip_sessions(const nvx_gossip *g)
{
    return g->n_s;
}

bool
nvx_gossip_connected(const nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN])
{
    return node_connected(g, node_id);
}

int
nvx_gossip_addr(const nvx_gossip *g, const uint8_t node_id[static PROTO_ID_LEN], char *ret,
                size_t cap)
{
    const char *addr;
    int source = nvx_pex_get(g->pex, node_id, &addr);
    if (source < 0)
        return source;
    size_t len = strlen(addr);
    if (len >= cap)
        return -EMSGSIZE;
    memcpy(ret, addr, len + 1);
    return source;
}

void
nvx_gossip_stats_get(const nvx_gossip *g, nvx_gossip_stats *ret)
{
    *ret = g->st;
    ret->records = g->n;
}
