/* SPDX-License-Identifier: MIT */
/*
 * Relays for connection reversal, found and announced on the DHT
 * (daemon/dht-relay.h).
 */
#include "daemon/dht-relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/log.h"
#include "daemon/reach.h"
#include "daemon/reverse.h"

struct found {
    char addr[NVX_DHTUV_ADDR_MAX];
    uint64_t next_dial_ms;
};

struct target {
    char addr[NVX_DHTUV_ADDR_MAX]; /* "": slot free */
    uint32_t ip;
    uint64_t since_ms, until_ms;
};

struct nvx_dhtrelay {
    nvx_dhtrelay_opts o;
    uv_timer_t timer;
    uint8_t key[20]; /* nvx_dht_relay_key() */
    bool announced, reachable;
    uint64_t reach_next_ms;
    int lookup; /* running lookup's handle, 0: none */
    uint64_t lookup_next_ms, found_ms;
    uint32_t lookup_gap_ms; /* after an empty answer: doubles up to NVX_DHTRELAY_FRESH_MS */
    struct found found[NVX_DHTRELAY_FOUND_MAX];
    size_t n_found;
    struct target targets[NVX_DHTRELAY_TARGETS];
};

uint64_t
nvx_dhtrelay_rank(uint32_t ip, const char *relay_addr)
{
    crypto_generichash_state st;
    uint8_t be[4] = { (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip };
    uint8_t h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, be, sizeof(be));
    crypto_generichash_update(&st, (const uint8_t *)relay_addr, strlen(relay_addr));
    crypto_generichash_final(&st, h, sizeof(h));
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return v;
}

/* The IPv4 address of "A.B.C.D:PORT" in host order, 0 when it is not one. */
static uint32_t
ip_of(const char *addr)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strchr(addr, ':');
    struct in_addr in;
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    return inet_pton(AF_INET, host, &in) == 1 ? ntohl(in.s_addr) : 0;
}

/* Our external address: the router's mapping, else what the DHT's answers
 * agree on (BEP 42), else 0 (then our ranking may differ from a
 * fetcher's, which the fetcher's asking of every relay it has covers). */
static uint32_t
own_ip(const nvx_dhtrelay *r)
{
    char ext[NVX_NATMAP_ADDR_MAX];
    (void)nvx_natmap_state(r->o.natmap, ext, sizeof(ext));
    if (ext[0] && ip_of(ext))
        return ip_of(ext);
    nvx_dht_stats st;
    nvx_dht_stats_get(nvx_dhtuv_core(r->o.dht), &st);
    return st.external_ip;
}

static void
on_found(void *arg, const char *addr)
{
    nvx_dhtrelay *r = arg;
    if (!addr) {
        uint64_t now = uv_now(r->o.loop);
        r->lookup = 0;
        r->found_ms = now;
        /* Nobody yet (the DHT is still joining, or no relay announced):
         * ask again soon, then less often. */
        if (r->n_found)
            r->lookup_gap_ms = NVX_DHTRELAY_LOOKUP_MS;
        else if (r->lookup_gap_ms < NVX_DHTRELAY_FRESH_MS / 2)
            r->lookup_gap_ms *= 2;
        r->lookup_next_ms = now + r->lookup_gap_ms;
        log_debug("dht: %zu relays known", r->n_found);
        return;
    }
    for (size_t i = 0; i < r->n_found; i++)
        if (strcmp(r->found[i].addr, addr) == 0)
            return;
    if (r->n_found < NVX_DHTRELAY_FOUND_MAX && strlen(addr) < NVX_DHTUV_ADDR_MAX) {
        snprintf(r->found[r->n_found].addr, NVX_DHTUV_ADDR_MAX, "%s", addr);
        r->found[r->n_found++].next_dial_ms = 0;
    }
}

static void
start_lookup(nvx_dhtrelay *r, uint64_t now)
{
    if (r->lookup || now < r->lookup_next_ms)
        return;
    r->n_found = 0;
    r->lookup = -1; /* a lookup that ends inside the call sets 0 */
    int h = nvx_dhtuv_find(r->o.dht, r->key, on_found, r);
    if (h < 0)
        log_debug("dht: cannot look up relays: %s", strerror(-h));
    if (r->lookup == -1)
        r->lookup = h > 0 ? h : 0;
}

/* Up to max of the relays found, the first for ip, into best[] (indexes
 * into r->found). Returns how many. */
static size_t
ranked(const nvx_dhtrelay *r, uint32_t ip, size_t *best, size_t max)
{
    uint64_t score[NVX_DHTRELAY_FOUND_MAX];
    size_t n = 0;
    for (size_t i = 0; i < r->n_found; i++) {
        uint64_t s = nvx_dhtrelay_rank(ip, r->found[i].addr);
        size_t j = n < max ? n++ : max;
        if (j == max && s >= score[max - 1])
            continue;
        if (j == max)
            j--;
        while (j > 0 && score[j - 1] > s) { /* insertion: keep best[] sorted */
            score[j] = score[j - 1];
            best[j] = best[j - 1];
            j--;
        }
        score[j] = s;
        best[j] = i;
    }
    return n;
}

/* Dials the relays at best[0..n) that no session reaches, each at most
 * once per NVX_DHTRELAY_REDIAL_MS; at most want dials. */
static void
dial_relays(nvx_dhtrelay *r, const size_t *best, size_t n, unsigned want, uint64_t now)
{
    for (size_t i = 0; i < n && want; i++) {
        struct found *f = &r->found[best[i]];
        if (nvx_mesh_connected_at(r->o.mesh, f->addr) || now < f->next_dial_ms)
            continue;
        f->next_dial_ms = now + NVX_DHTRELAY_REDIAL_MS;
        int e = nvx_node_dial(r->o.node, f->addr);
        log_debug("dht: dialing relay %s%s", f->addr, e < 0 ? " failed" : "");
        want--;
    }
}

/* The address others dial us at (the router's mapping, else a public
 * address we listen on) in out[NVX_NATMAP_ADDR_MAX]; false when none. */
static bool
reachable(const nvx_dhtrelay *r, char *out)
{
    (void)nvx_natmap_state(r->o.natmap, out, NVX_NATMAP_ADDR_MAX);
    return out[0] ||
           nvx_reach_public_addr(nvx_node_listen_addr(r->o.node), out, NVX_NATMAP_ADDR_MAX);
}

static void
on_tick(uv_timer_t *t)
{
    nvx_dhtrelay *r = t->data;
    uint64_t now = uv_now(r->o.loop);
    if (now >= r->reach_next_ms) {
        r->reach_next_ms = now + NVX_DHTRELAY_REACH_MS;
        char at[NVX_NATMAP_ADDR_MAX];
        r->reachable = reachable(r, at);
        bool offer = r->reachable && r->o.relay;
        /* Those who ask us (we may be their bootstrap node) learn of us
         * too; kept fresh at every look. */
        if (offer)
            (void)nvx_dhtuv_store_self(r->o.dht, r->key, at);
        if (offer && !r->announced) {
            r->announced = nvx_dhtuv_announce(r->o.dht, r->key) == 0;
            if (r->announced)
                log_info("dht: announced as a relay for connection reversal");
        } else if (!offer && r->announced) {
            nvx_dhtuv_unannounce(r->o.dht, r->key);
            r->announced = false;
        }
    }
    bool fresh = r->n_found && now < r->found_ms + NVX_DHTRELAY_FRESH_MS;
    size_t best[NVX_REVERSE_RELAYS_MAX];
    unsigned have = nvx_mesh_relays(r->o.mesh);
    /* Only a node with something to serve needs to be reachable. */
    if (!r->reachable && have < NVX_DHTRELAY_KEEP && nvx_mesh_shared(r->o.mesh)) {
        /* From the first few: a relay that does not answer is passed
         * over for NVX_DHTRELAY_REDIAL_MS, and the next one is tried. */
        if (fresh)
            dial_relays(r, best, ranked(r, own_ip(r), best, NVX_REVERSE_RELAYS_MAX),
                        NVX_DHTRELAY_KEEP - have, now);
        else
            start_lookup(r, now);
    }
    for (size_t i = 0; i < NVX_DHTRELAY_TARGETS; i++) {
        struct target *tg = &r->targets[i];
        if (!tg->addr[0])
            continue;
        if (now >= tg->until_ms) {
            tg->addr[0] = '\0';
            continue;
        }
        if (nvx_mesh_connected_at(r->o.mesh, tg->addr))
            continue;
        /* The relays are looked up at once, but dialed and asked only when
         * the direct dial has not connected within the grace: a provider
         * that can be dialed costs no relay session. */
        if (!fresh)
            start_lookup(r, now);
        if (now < tg->since_ms + NVX_DHTRELAY_GRACE_MS)
            continue;
        size_t n = ranked(r, tg->ip, best, NVX_REVERSE_RELAYS_MAX);
        dial_relays(r, best, n, NVX_REVERSE_RELAYS_MAX, now);
        if (!nvx_mesh_relays(r->o.mesh))
            continue; /* asking nobody would only spend the retry spacing */
        const char *prefer[NVX_REVERSE_RELAYS_MAX];
        for (size_t j = 0; j < n; j++)
            prefer[j] = r->found[best[j]].addr;
        (void)nvx_mesh_ask_at(r->o.mesh, tg->addr, prefer, n);
    }
}

int
nvx_dhtrelay_want(nvx_dhtrelay *r, const char *addr)
{
    uint32_t ip = ip_of(addr);
    if (!ip || strlen(addr) >= NVX_DHTUV_ADDR_MAX)
        return -EINVAL;
    uint64_t now = uv_now(r->o.loop);
    struct target *slot = NULL;
    for (size_t i = 0; i < NVX_DHTRELAY_TARGETS; i++) {
        struct target *tg = &r->targets[i];
        if (tg->addr[0] && strcmp(tg->addr, addr) == 0) {
            tg->until_ms = now + NVX_DHTRELAY_TARGET_MS; /* named again: chase on */
            return 0;
        }
        if (!slot && (!tg->addr[0] || now >= tg->until_ms))
            slot = tg;
    }
    if (!slot)
        return -ENOSPC;
    snprintf(slot->addr, sizeof(slot->addr), "%s", addr);
    slot->ip = ip;
    slot->since_ms = now;
    slot->until_ms = now + NVX_DHTRELAY_TARGET_MS;
    return 0;
}

int
nvx_dhtrelay_new(const nvx_dhtrelay_opts *o, nvx_dhtrelay **ret)
{
    if (!o->loop || !o->dht || !o->node || !o->mesh)
        return -EINVAL;
    nvx_dhtrelay *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->o = *o;
    nvx_dht_relay_key(r->key);
    r->lookup_gap_ms = 1000;
    uv_timer_init(o->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_tick, NVX_DHTRELAY_TICK_MS, NVX_DHTRELAY_TICK_MS);
    *ret = r;
    return 0;
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

void
nvx_dhtrelay_close(nvx_dhtrelay *r)
{
    if (!r)
        return;
    if (r->lookup > 0)
        nvx_dhtuv_cancel(r->o.dht, r->lookup);
    if (r->announced)
        nvx_dhtuv_unannounce(r->o.dht, r->key);
    uv_close((uv_handle_t *)&r->timer, on_closed);
}
