/* SPDX-License-Identifier: MIT */
/*
 * The DHT routing table and BEP 42 node ids (daemon/dht.h,
 * daemon/dht-internal.h).
 *
 * Buckets are fixed by the length of the prefix an id shares with ours
 * (0..159), each holding NVX_DHT_K nodes: the same nodes a splitting
 * table keeps, without the splitting. Only the buckets that fill are
 * allocated (about log2 of the network's size).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dht-internal.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), as BEP 42 asks:
 * a checksum, not a cryptographic primitive; bitwise, as it hashes 4
 * bytes per node. */
static uint32_t
crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

bool
nvx_dht_ip_local(uint32_t ip)
{
    return (ip >> 24) == 10 || (ip >> 20) == (172u << 4 | 1) || (ip >> 16) == (192u << 8 | 168) ||
           (ip >> 16) == (169u << 8 | 254) || (ip >> 24) == 127;
}

/* BEP 42: crc32c((ip & 0x030f3fff) | (r << 29)) gives the id's first 21 bits. */
static uint32_t
id_crc(uint32_t ip, uint8_t r)
{
    uint32_t x = (ip & 0x030f3fffu) | ((uint32_t)(r & 7) << 29);
    uint8_t b[4] = { (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x };
    return crc32c(b, 4);
}

void
nvx_dht_id_for_ip(uint32_t ip, const uint8_t rnd[static 17], uint8_t out[static 20])
{
    uint8_t r = rnd[0]; /* the last byte; its low 3 bits enter the crc */
    uint32_t crc = id_crc(ip, r);
    out[0] = (uint8_t)(crc >> 24);
    out[1] = (uint8_t)(crc >> 16);
    out[2] = (uint8_t)(((crc >> 8) & 0xf8) | (rnd[1] & 7));
    memcpy(out + 3, rnd + 1, 16);
    out[19] = r;
}

bool
nvx_dht_id_ok(const uint8_t id[static 20], uint32_t ip)
{
    if (nvx_dht_ip_local(ip))
        return true;
    uint32_t crc = id_crc(ip, id[19]);
    return id[0] == (uint8_t)(crc >> 24) && id[1] == (uint8_t)(crc >> 16) &&
           (id[2] & 0xf8) == ((crc >> 8) & 0xf8);
}

int
nvx__dht_xor_cmp(const uint8_t target[static 20], const uint8_t a[static 20],
                 const uint8_t b[static 20])
{
    for (int i = 0; i < 20; i++) {
        uint8_t x = a[i] ^ target[i], y = b[i] ^ target[i];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

unsigned
nvx__dht_bucket_of(const uint8_t self[static 20], const uint8_t id[static 20])
{
    for (unsigned i = 0; i < 20; i++) {
        uint8_t x = self[i] ^ id[i];
        if (x) {
            unsigned n = 0;
            while (!(x & 0x80)) {
                x <<= 1;
                n++;
            }
            return i * 8 + n;
        }
    }
    return NVX__DHT_BUCKETS; /* our own id */
}

static unsigned
count_ip(const nvx__dht_table *t, uint32_t ip)
{
    unsigned n = 0;
    for (unsigned b = 0; b < NVX__DHT_BUCKETS; b++)
        for (unsigned i = 0; t->b[b] && i < t->b[b]->count; i++)
            n += t->b[b]->n[i].ip == ip;
    return n;
}

int
nvx__dht_table_heard(nvx__dht_table *t, const uint8_t id[static 20], uint32_t ip, uint16_t port,
                     bool enforce, uint64_t now_ms)
{
    unsigned bi = nvx__dht_bucket_of(t->self, id);
    if (bi >= NVX__DHT_BUCKETS || port == 0 || ip == 0)
        return 0;
    if (enforce && !nvx_dht_id_ok(id, ip))
        return 0; /* BEP 42: an id its address cannot have stays out */
    nvx__dht_bucket *b = t->b[bi];
    if (b) {
        for (unsigned i = 0; i < b->count; i++) {
            nvx__dht_node *n = &b->n[i];
            if (memcmp(n->id, id, 20) != 0)
                continue;
            /* The same id from another address is not taken: it would let
             * anyone move a node we trust. */
            if (n->ip == ip && n->port == port) {
                n->seen_ms = now_ms;
                n->fails = 0;
                b->touched_ms = now_ms;
            }
            return 0;
        }
    }
    if ((ip >> 24) != 127 && count_ip(t, ip) >= NVX_DHT_PER_IP_MAX)
        return 0;
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b)
            return -ENOMEM;
        t->b[bi] = b;
    }
    nvx__dht_node nn = { .ip = ip, .port = port, .seen_ms = now_ms };
    memcpy(nn.id, id, 20);
    b->touched_ms = now_ms;
    if (b->count < NVX_DHT_K) {
        b->n[b->count++] = nn;
        t->count++;
        return 1;
    }
    for (unsigned i = 0; i < b->count; i++)
        if (b->n[i].fails >= NVX__DHT_FAILS_BAD) {
            b->n[i] = nn;
            return 1;
        }
    b->repl = nn; /* the freshest waits for a place */
    return 0;
}

void
nvx__dht_table_failed(nvx__dht_table *t, uint32_t ip, uint16_t port)
{
    for (unsigned bi = 0; bi < NVX__DHT_BUCKETS; bi++) {
        nvx__dht_bucket *b = t->b[bi];
        for (unsigned i = 0; b && i < b->count; i++) {
            nvx__dht_node *n = &b->n[i];
            if (n->ip != ip || n->port != port)
                continue;
            if (n->fails < UINT8_MAX)
                n->fails++;
            if (n->fails >= NVX__DHT_FAILS_BAD && b->repl.port) {
                *n = b->repl;
                b->repl.port = 0;
            }
        }
    }
}

bool
nvx__dht_table_has(const nvx__dht_table *t, const uint8_t id[static 20])
{
    unsigned bi = nvx__dht_bucket_of(t->self, id);
    const nvx__dht_bucket *b = bi < NVX__DHT_BUCKETS ? t->b[bi] : NULL;
    for (unsigned i = 0; b && i < b->count; i++)
        if (memcmp(b->n[i].id, id, 20) == 0)
            return true;
    return false;
}

bool
nvx__dht_table_room(const nvx__dht_table *t, const uint8_t id[static 20])
{
    unsigned bi = nvx__dht_bucket_of(t->self, id);
    if (bi >= NVX__DHT_BUCKETS)
        return false;
    return !t->b[bi] || t->b[bi]->count < NVX_DHT_K;
}

/* Insertion into out (sorted by distance to target, at most max). */
static void
insert_sorted(const uint8_t target[static 20], nvx__dht_node *out, size_t *n, size_t max,
              const nvx__dht_node *x)
{
    size_t i = *n;
    while (i > 0 && nvx__dht_xor_cmp(target, x->id, out[i - 1].id) < 0)
        i--;
    if (i >= max)
        return;
    size_t last = *n < max ? *n : max - 1;
    memmove(&out[i + 1], &out[i], (last - i) * sizeof(*out));
    out[i] = *x;
    if (*n < max)
        (*n)++;
}

size_t
nvx__dht_table_closest(const nvx__dht_table *t, const uint8_t target[static 20], nvx__dht_node *out,
                       size_t max)
{
    size_t n = 0;
    if (!max)
        return 0;
    for (unsigned bi = 0; bi < NVX__DHT_BUCKETS; bi++) {
        const nvx__dht_bucket *b = t->b[bi];
        for (unsigned i = 0; b && i < b->count; i++)
            if (b->n[i].fails < NVX__DHT_FAILS_BAD)
                insert_sorted(target, out, &n, max, &b->n[i]);
    }
    return n;
}

nvx__dht_node *
nvx__dht_table_stale(nvx__dht_table *t, uint64_t stale_before)
{
    nvx__dht_node *oldest = NULL;
    for (unsigned bi = 0; bi < NVX__DHT_BUCKETS; bi++) {
        nvx__dht_bucket *b = t->b[bi];
        for (unsigned i = 0; b && i < b->count; i++)
            if (b->n[i].seen_ms < stale_before && (!oldest || b->n[i].seen_ms < oldest->seen_ms))
                oldest = &b->n[i];
    }
    return oldest;
}

int
nvx__dht_table_rekey(nvx__dht_table *t, const uint8_t self[static 20], bool enforce,
                     uint64_t now_ms)
{
    nvx__dht_table old = *t;
    memset(t, 0, sizeof(*t));
    memcpy(t->self, self, 20);
    int r = 0;
    for (unsigned bi = 0; bi < NVX__DHT_BUCKETS; bi++) {
        nvx__dht_bucket *b = old.b[bi];
        for (unsigned i = 0; b && i < b->count && r >= 0; i++)
            r = nvx__dht_table_heard(t, b->n[i].id, b->n[i].ip, b->n[i].port, enforce,
                                     b->n[i].seen_ms ? b->n[i].seen_ms : now_ms);
    }
    nvx__dht_table_free(&old);
    return r < 0 ? r : 0;
}

void
nvx__dht_table_free(nvx__dht_table *t)
{
    for (unsigned bi = 0; bi < NVX__DHT_BUCKETS; bi++) {
        free(t->b[bi]);
        t->b[bi] = NULL;
    }
    t->count = 0;
}
