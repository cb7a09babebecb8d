/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the control stream reader and decoder (what nvxd reads from its
 * socket). Byte 0 picks the split size; every payload is decoded, nests too,
 * and every typed getter is exercised.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proto/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static proto_ctl_msg msg, nest;

static void
walk(const uint8_t *p, size_t len)
{
    if (proto_ctl_decode(p, len, &msg) < 0)
        return;
    for (size_t i = 0; i < msg.n; i++) {
        if (proto_ctl_tag_kind(msg.f[i].tag) == PROTO_CTL_K_NEST &&
            proto_ctl_nest_decode(&msg.f[i], &nest) < 0)
            abort(); /* decode validated the nest already */
    }
    for (uint8_t t = 0; t < _PROTO_CTL_TAG_MAX; t++) {
        uint64_t v;
        proto_str s;
        const uint8_t *id;
        (void)proto_ctl_get_u64(&msg, t, &v);
        (void)proto_ctl_get_str(&msg, t, &s);
        (void)proto_ctl_get_id(&msg, t, &id);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] ? data[0] : size;
    data++, size--;
    /* The raw input as one payload, then as a stream. */
    walk(data, size);
    proto_ctl_reader r = { 0 };
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used, plen;
        const uint8_t *p;
        int k = proto_ctl_reader_feed(&r, data + off, n, &used, &p, &plen);
        off += used;
        if (k < 0)
            break;
        if (k == 1)
            walk(p, plen);
    }
    proto_ctl_reader_reset(&r);
    return 0;
}
