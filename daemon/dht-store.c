/* SPDX-License-Identifier: MIT */
/*
 * What the DHT node stores for others: announced peers and BEP 44 mutable
 * items (daemon/dht-internal.h). Flat arrays scanned linearly: they are
 * bounded (NVX_DHT_PEERS_MAX, NVX_DHT_ITEMS_MAX), so every operation is
 * bounded too, and a source address can hold only its share of either.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/dht-internal.h"

void
nvx_dht_item_target(const uint8_t k[static 32], const uint8_t *salt, size_t salt_len,
                    uint8_t out[static 20])
{
    /* BEP 44 names SHA-1; OpenSSL provides it. */
    uint8_t in[32 + NVX_KRPC_SALT_MAX];
    size_t n = salt_len > NVX_KRPC_SALT_MAX ? NVX_KRPC_SALT_MAX : salt_len;
    memcpy(in, k, 32);
    if (n)
        memcpy(in + 32, salt, n);
    unsigned olen = 0;
    uint8_t md[EVP_MAX_MD_SIZE];
    if (EVP_Digest(in, 32 + n, md, &olen, EVP_sha1(), NULL) != 1 || olen != 20)
        memset(md, 0, 20);
    memcpy(out, md, 20);
}

bool
nvx_dht_item_verify(const nvx_dht_item *it)
{
    uint8_t msg[16 + NVX_KRPC_SALT_MAX + 32 + NVX_KRPC_V_MAX];
    if (it->v_len > NVX_KRPC_V_MAX || it->salt_len > NVX_KRPC_SALT_MAX)
        return false;
    int n =
        nvx_krpc_item_signed(it->salt, it->salt_len, it->seq, it->v, it->v_len, msg, sizeof(msg));
    return n > 0 && crypto_sign_verify_detached(it->sig, msg, (size_t)n, it->k) == 0;
}

static int
grow(void **p, size_t *cap, size_t need, size_t max, size_t size)
{
    if (need <= *cap)
        return 0;
    if (need > max)
        return -ENOSPC;
    size_t c = *cap ? *cap * 2 : 16;
    c = c > max ? max : c;
    void *q = realloc(*p, c * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int
nvx__dht_store_peer(nvx__dht_store *s, const uint8_t key[static 20], uint32_t ip, uint16_t port,
                    uint64_t now_ms)
{
    size_t per_key = 0, per_source = 0, oldest = SIZE_MAX;
    for (size_t i = 0; i < s->n_peers; i++) {
        nvx__dht_peer *p = &s->peers[i];
        bool same_key = memcmp(p->key, key, 20) == 0;
        if (same_key && p->ip == ip && p->port == port) {
            p->expires_ms = now_ms + NVX_DHT_PEER_TTL_MS;
            return 0;
        }
        per_source += p->ip == ip;
        if (same_key) {
            per_key++;
            if (oldest == SIZE_MAX || p->expires_ms < s->peers[oldest].expires_ms)
                oldest = i;
        }
    }
    if (per_source >= NVX_DHT_PEERS_PER_SOURCE)
        return -ENOSPC;
    nvx__dht_peer np = { .ip = ip, .port = port, .expires_ms = now_ms + NVX_DHT_PEER_TTL_MS };
    memcpy(np.key, key, 20);
    if (per_key >= NVX_DHT_PEERS_PER_KEY) {
        s->peers[oldest] = np; /* the key's oldest announce makes room */
        return 0;
    }
    int r = grow((void **)&s->peers, &s->cap_peers, s->n_peers + 1, NVX_DHT_PEERS_MAX,
                 sizeof(*s->peers));
    if (r < 0)
        return r;
    s->peers[s->n_peers++] = np;
    return 0;
}

size_t
nvx__dht_store_peers(const nvx__dht_store *s, const uint8_t key[static 20],
                     uint8_t (*out)[NVX_KRPC_PEER_LEN], size_t max, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_peers && n < max; i++) {
        const nvx__dht_peer *p = &s->peers[i];
        if (p->expires_ms > now_ms && memcmp(p->key, key, 20) == 0)
            nvx_krpc_put_peer(out[n++], p->ip, p->port);
    }
    return n;
}

int
nvx__dht_store_item(nvx__dht_store *s, const nvx_dht_item *item, const int64_t *cas,
                    uint32_t source, uint64_t now_ms)
{
    uint8_t target[20];
    nvx_dht_item_target(item->k, item->salt, item->salt_len, target);
    size_t per_source = 0;
    nvx__dht_stored_item *found = NULL;
    for (size_t i = 0; i < s->n_items; i++) {
        nvx__dht_stored_item *it = &s->items[i];
        if (memcmp(it->target, target, 20) == 0)
            found = it;
        else
            per_source += it->source == source;
    }
    if (found) {
        if (cas && *cas != found->item.seq)
            return -ESTALE;
        if (item->seq < found->item.seq)
            return -ERANGE;
        found->item = *item;
        found->source = source;
        found->expires_ms = now_ms + NVX_DHT_ITEM_TTL_MS;
        return 0;
    }
    if (per_source >= NVX_DHT_ITEMS_PER_SOURCE)
        return -ENOSPC;
    int r = grow((void **)&s->items, &s->cap_items, s->n_items + 1, NVX_DHT_ITEMS_MAX,
                 sizeof(*s->items));
    if (r < 0)
        return r;
    nvx__dht_stored_item *it = &s->items[s->n_items++];
    memcpy(it->target, target, 20);
    it->source = source;
    it->expires_ms = now_ms + NVX_DHT_ITEM_TTL_MS;
    it->item = *item;
    return 0;
}

const nvx_dht_item *
nvx__dht_store_get_item(const nvx__dht_store *s, const uint8_t target[static 20], uint64_t now_ms)
{
    for (size_t i = 0; i < s->n_items; i++)
        if (s->items[i].expires_ms > now_ms && memcmp(s->items[i].target, target, 20) == 0)
            return &s->items[i].item;
    return NULL;
}

void
nvx__dht_store_expire(nvx__dht_store *s, uint64_t now_ms)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        if (s->peers[i].expires_ms > now_ms)
            s->peers[j++] = s->peers[i];
    s->n_peers = j;
    j = 0;
    for (size_t i = 0; i < s->n_items; i++)
        if (s->items[i].expires_ms > now_ms)
            s->items[j++] = s->items[i];
    s->n_items = j;
}

void
nvx__dht_store_free(nvx__dht_store *s)
{
    free(s->peers);
    free(s->items);
    memset(s, 0, sizeof(*s));
}
