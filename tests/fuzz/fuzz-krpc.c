/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the DHT's packet decoder (daemon/bencode.c,
 * daemon/krpc.c) and the node that answers it (daemon/dht.c). The input
 * is decoded as bencode and as KRPC (what decodes must re-encode and
 * decode again), then fed as a datagram to a node that first sent a
 * find_node, so that responses reach the lookup code too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dht.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
drop(void *arg, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len)
{
    (void)ip;
    (void)port;
    nvx_krpc_msg m;
    if (len > NVX_KRPC_PACKET_MAX || nvx_krpc_decode(&m, buf, len) < 0)
        abort(); /* everything we send decodes */
    if (m.kind == NVX_KRPC_QUERY)
        memcpy(arg, m.tid, 4); /* our latest transaction id */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nvx_benc b;
    (void)nvx_benc_decode(&b, data, size);
    nvx_krpc_msg m;
    if (nvx_krpc_decode(&m, data, size) == 0 && m.kind != NVX_KRPC_QUERY) {
        uint8_t out[4096];
        int n = nvx_krpc_encode(&m, out, sizeof(out));
        nvx_krpc_msg again;
        if (n > 0 && nvx_krpc_decode(&again, out, (size_t)n) != 0)
            abort();
    }
    uint8_t tid[4] = { 0 };
    nvx_dht *d;
    nvx_dht_opts o = { .ops = { .send = drop }, .arg = tid };
    if (nvx_dht_new(&o, 1000, &d) < 0)
        return 0;
    (void)nvx_dht_add_bootstrap(d, 0x7f000001, 6881);
    nvx_dht_tick(d, 1000); /* a find_node to 127.0.0.1:6881 */
    /* The input as it is, from that address; then, if it is a response,
     * re-encoded with our tid (which the input cannot know), so that it
     * reaches the table and the lookup. */
    nvx_dht_input(d, 0x7f000001, 6881, data, size, 1001);
    if (nvx_krpc_decode(&m, data, size) == 0 && m.kind != NVX_KRPC_QUERY) {
        uint8_t out[NVX_KRPC_PACKET_MAX];
        m.tid_len = 4;
        memcpy(m.tid, tid, 4);
        int n = nvx_krpc_encode(&m, out, sizeof(out));
        if (n > 0)
            nvx_dht_input(d, 0x7f000001, 6881, out, (size_t)n, 1002);
    }
    (void)nvx_dht_load(d, data, size);
    nvx_dht_tick(d, 5000);
    nvx_dht_free(d);
    return 0;
}
