/* SPDX-License-Identifier: MIT */
/*
 * The gossip record table (daemon/gossip-internal.h): slots in an array
 * plus an open-addressing index keyed by a BLAKE2b-256 slot key, each
 * session's share of the slots, and eviction when the table is full.
 * Sans-I/O: no clock (expiry times come in the entries), no sockets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/gossip-internal.h"

static uint64_t
key_hash(const uint8_t key[CAS_HASH_LEN])
{
    uint64_t h = 0;
    memcpy(&h, key, sizeof(h));
    return h;
}

void
nvx__gossip_provider_key(const uint8_t node[PROTO_ID_LEN], const uint8_t model[PROTO_ID_LEN],
                         uint8_t ret[CAS_HASH_LEN])
{
    uint8_t b[1 + 2 * PROTO_ID_LEN];
    b[0] = 'P';
    memcpy(b + 1, node, PROTO_ID_LEN);
    memcpy(b + 1 + PROTO_ID_LEN, model, PROTO_ID_LEN);
    cas_hash(b, sizeof(b), ret);
}

/* A name record's slot: its public key and name. Never the key id, which
 * any key may carry, so that nobody can take another publisher's slot. */
void
nvx__gossip_name_key(const cas_namerec *rec, uint8_t ret[CAS_HASH_LEN])
{
    uint8_t b[1 + CAS_PK_LEN + CAS_NAMEREC_NAME_MAX];
    b[0] = 'N';
    memcpy(b + 1, rec->pk, CAS_PK_LEN);
    memcpy(b + 1 + CAS_PK_LEN, rec->name, rec->name_len);
    cas_hash(b, 1 + CAS_PK_LEN + rec->name_len, ret);
}

int
nvx__gossip_index_rebuild(nvx_gossip *g, size_t want)
{
    size_t cap = 64;
    while (cap < 2 * want)
        cap *= 2;
    if (cap != g->index_cap) {
        uint32_t *ix = calloc(cap, sizeof(*ix));
        if (!ix)
            return -ENOMEM;
        free(g->index);
        g->index = ix;
        g->index_cap = cap;
    } else {
        memset(g->index, 0, cap * sizeof(*g->index));
    }
    g->dirty = false;
    for (size_t i = 0; i < g->n; i++) {
        size_t j = key_hash(g->e[i].key) & (g->index_cap - 1);
        while (g->index[j])
            j = (j + 1) & (g->index_cap - 1);
        g->index[j] = (uint32_t)(i + 1);
    }
    return 0;
}

entry *
nvx__gossip_lookup(const nvx_gossip *g, const uint8_t key[CAS_HASH_LEN])
{
    if (!g->index_cap)
        return NULL;
    for (size_t j = key_hash(key) & (g->index_cap - 1); g->index[j];
         j = (j + 1) & (g->index_cap - 1)) {
        entry *e = &g->e[g->index[j] - 1];
        if (memcmp(e->key, key, CAS_HASH_LEN) == 0)
            return e;
    }
    return NULL;
}

void
nvx__gossip_entry_clear(entry *e)
{
    free(e->name);
    memset(e, 0, sizeof(*e));
}

/* Makes session `from` (NULL: none) the origin of e, keeping the
 * sessions' counts of held records right. */
void
nvx__gossip_set_origin(nvx_gossip *g, entry *e, session *from)
{
    session *old = e->origin ? nvx__gossip_session_find(g, e->origin) : NULL;
    if (old && old->held > 0)
        old->held--;
    e->origin = from ? from->id : 0;
    if (from)
        from->held++;
}

/* Removes e's record, its origin's count with it. */
void
nvx__gossip_entry_drop(nvx_gossip *g, entry *e)
{
    nvx__gossip_set_origin(g, e, NULL);
    nvx__gossip_entry_clear(e);
}

/* Removes entries for which drop() is true; one index rebuild. */
void
nvx__gossip_sweep(nvx_gossip *g, bool (*drop)(const entry *, const void *), const void *arg)
{
    size_t w = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (drop(&g->e[i], arg)) {
            nvx__gossip_entry_drop(g, &g->e[i]);
            continue;
        }
        if (w != i)
            g->e[w] = g->e[i];
        w++;
    }
    if (w == g->n)
        return;
    g->n = w;
    (void)nvx__gossip_index_rebuild(g, g->n); /* same or smaller size: no allocation */
}

/* The learned record to evict: of session `from` when from is not NULL;
 * else a record whose session is gone (records from live sessions are
 * preferred), else one of the session holding the most. Closest to expiry
 * first. NULL when there is none. */
static entry *
victim_of(nvx_gossip *g, const session *from)
{
    uint64_t origin = from ? from->id : 0;
    if (!from) {
        const session *big = NULL;
        for (size_t i = 0; i < g->n_s; i++)
            if (!big || g->s[i].held > big->held)
                big = &g->s[i];
        bool orphans = false;
        for (size_t i = 0; i < g->n && !orphans; i++)
            orphans = !g->e[i].own && g->e[i].origin == 0;
        if (!orphans && big)
            origin = big->id;
    }
    entry *victim = NULL;
    for (size_t i = 0; i < g->n; i++)
        if (!g->e[i].own && g->e[i].origin == origin &&
            (!victim || g->e[i].expires_ms < victim->expires_ms))
            victim = &g->e[i];
    return victim;
}

/* A free entry for a new record from session from (NULL: local). Each
 * session holds at most origin_share records: past it, its own record
 * closest to expiry makes room, so that one peer with free keys and long
 * TTLs only churns its own share. When the table is full, a record is
 * evicted (victim_of). Returns NULL when the table is full of our own
 * records or memory ran out. The caller fills the entry (key first), calls
 * nvx__gossip_slot_insert() and then nvx__gossip_set_origin(). */
entry *
nvx__gossip_slot_new(nvx_gossip *g, session *from)
{
    entry *victim = NULL;
    if (from && from->held >= g->cfg.origin_share)
        victim = victim_of(g, from);
    else if (g->n >= g->cfg.records_max)
        victim = victim_of(g, NULL);
    if (victim || g->n >= g->cfg.records_max) {
        if (!victim)
            return NULL;
        g->st.evicted++;
        nvx__gossip_entry_drop(g, victim);
        g->dirty = true;
        return victim;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 64;
        if (cap > g->cfg.records_max)
            cap = g->cfg.records_max;
        entry *e = realloc(g->e, cap * sizeof(*e));
        if (!e)
            return NULL;
        g->e = e;
        g->cap = cap;
    }
    entry *e = &g->e[g->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

int
nvx__gossip_slot_commit(nvx_gossip *g)
{
    int r = nvx__gossip_index_rebuild(g, g->n);
    if (r < 0) {
        nvx__gossip_entry_clear(&g->e[--g->n]);
        return r;
    }
    return 0;
}

/* Adds the entry just filled in to the index: one probe when it was
 * appended and the index has room, a rebuild after growth or eviction. */
int
nvx__gossip_slot_insert(nvx_gossip *g, entry *e)
{
    size_t i = (size_t)(e - g->e);
    if (!g->dirty && i + 1 == g->n && 2 * g->n <= g->index_cap) {
        size_t j = key_hash(e->key) & (g->index_cap - 1);
        while (g->index[j])
            j = (j + 1) & (g->index_cap - 1);
        g->index[j] = (uint32_t)(i + 1);
        return 0;
    }
    return nvx__gossip_slot_commit(g);
}
