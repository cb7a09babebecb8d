/* SPDX-License-Identifier: MIT */
/*
 * The DHT node's sending side (daemon/dht-internal.h): its random stream
 * and its transactions. Below both dht.c (answers, timeouts) and
 * dht-lookup.c (queries of a lookup).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/dht-internal.h"

/* Every random choice: BLAKE2b keyed with the node's secret over a
 * counter, so a seeded simulation replays and others cannot predict it. */
void
nvx__dht_random(nvx_dht *d, void *out, size_t n)
{
    uint8_t ctr[9] = { 'r' };
    for (int i = 0; i < 8; i++)
        ctr[1 + i] = (uint8_t)(d->rand_ctr >> (8 * i));
    d->rand_ctr++;
    uint8_t buf[64];
    crypto_generichash(buf, sizeof(buf), ctr, sizeof(ctr), d->o.secret, sizeof(d->o.secret));
    memcpy(out, buf, n < sizeof(buf) ? n : sizeof(buf));
    sodium_memzero(buf, sizeof(buf));
}

void
nvx__dht_send(nvx_dht *d, const nvx_krpc_msg *m, uint32_t ip, uint16_t port)
{
    uint8_t buf[NVX_KRPC_PACKET_MAX];
    int n = nvx_krpc_encode(m, buf, sizeof(buf));
    if (n < 0)
        return;
    d->tx_count++;
    d->o.ops.send(d->o.arg, ip, port, buf, (size_t)n);
}

int
nvx__dht_query(nvx_dht *d, nvx_krpc_msg *q, uint32_t ip, uint16_t port, uint32_t lookup,
               uint64_t now_ms)
{
    size_t slot = NVX_DHT_TX_MAX;
    for (size_t i = 0; i < NVX_DHT_TX_MAX && slot == NVX_DHT_TX_MAX; i++)
        if (!d->tx[i].used)
            slot = i;
    if (slot == NVX_DHT_TX_MAX)
        return -ENOBUFS;
    nvx__dht_tx *t = &d->tx[slot];
    /* tid: the slot, then two random bytes so that an off-path sender
     * cannot guess a live transaction. */
    t->tid[0] = (uint8_t)(slot >> 8);
    t->tid[1] = (uint8_t)slot;
    nvx__dht_random(d, t->tid + 2, 2);
    t->used = true;
    t->method = q->method;
    t->ip = ip;
    t->port = port;
    t->lookup = lookup;
    t->sent_ms = now_ms;
    q->kind = NVX_KRPC_QUERY;
    q->tid_len = 4;
    memcpy(q->tid, t->tid, 4);
    q->has_id = true;
    memcpy(q->id, d->table.self, 20);
    uint8_t buf[NVX_KRPC_PACKET_MAX];
    int n = nvx_krpc_encode(q, buf, sizeof(buf));
    if (n < 0) {
        t->used = false;
        return n;
    }
    t->pkt = malloc((size_t)n);
    if (t->pkt)
        memcpy(t->pkt, buf, (size_t)n);
    t->pkt_len = (uint16_t)n;
    t->resent = false;
    d->tx_count++;
    d->o.ops.send(d->o.arg, ip, port, buf, (size_t)n);
    return 0;
}

void
nvx__dht_tx_done(nvx__dht_tx *t)
{
    free(t->pkt);
    t->pkt = NULL;
    t->used = false;
}
