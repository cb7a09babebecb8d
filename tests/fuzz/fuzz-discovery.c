/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the LAN discovery announcement parser and receive filter
 * (daemon/discovery.c). The input is fed whole as a datagram, then cut into
 * 40-byte datagrams fed one after another (exercising the report table and
 * the packet budget). What decodes must re-encode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "daemon/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
on_heard(void *arg, const uint8_t node[static NVX_DISC_ID_LEN], const char *addr)
{
    (void)node;
    if (strlen(addr) >= NVX_DISC_ADDR_MAX)
        abort();
    (*(unsigned *)arg)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nvx_disc_packet p;
    if (nvx_disc_decode(data, size, &p) == 0) {
        uint8_t out[NVX_DISC_PACKET_LEN];
        nvx_disc_encode(&p, out);
        if (size != NVX_DISC_PACKET_LEN || memcmp(out, data, size) != 0)
            abort();
    }

    unsigned n = 0;
    nvx_disc_opts o = { .cb = on_heard, .arg = &n };
    memset(o.node_id, 0xee, sizeof(o.node_id));
    nvx_disc *d = NULL;
    if (nvx_disc_new_detached(&o, &d) < 0)
        abort();
    struct sockaddr_in from;
    uv_ip4_addr("192.0.2.1", 1, &from);
    (void)nvx_disc_feed(d, data, size, (const struct sockaddr *)&from, 0);
    uint64_t now = 0;
    for (size_t off = 0; size - off >= NVX_DISC_PACKET_LEN; off += NVX_DISC_PACKET_LEN) {
        from.sin_addr.s_addr ^= data[off + 8]; /* vary the source a little */
        now += (uint64_t)data[off + 9] * 1000;
        (void)nvx_disc_feed(d, data + off, NVX_DISC_PACKET_LEN, (const struct sockaddr *)&from,
                            now);
    }
    nvx_disc_stats st;
    nvx_disc_stats_get(d, &st);
    if (st.reported != n)
        abort();
    nvx_disc_free_detached(d);
    return 0;
}
