/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the session state machine with arbitrary peer bytes. Byte 0: bit 0
 * picks the role (responder / initiator that has sent HS_INIT), the other
 * bits the feed split size. Fixed identities and ephemerals keep runs
 * reproducible.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/internal.h"
#include "proto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static proto_identity *ident;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ident) {
        uint8_t seed[32] = { 1 };
        if (proto_identity_from_seed(seed, &ident) < 0)
            abort();
    }
    if (size < 1)
        return 0;
    bool initiator = data[0] & 1;
    size_t step = data[0] >> 1 ? (size_t)(data[0] >> 1) : size;
    data++, size--;

    proto_session_config cfg = { .identity = ident, .initiator = initiator };
    proto_session *s;
    if (proto_session_new(&cfg, 0, &s) < 0)
        abort();
    uint8_t e[32] = { 2 };
    proto__session_set_ephemeral(s, e);
    uint8_t *out;
    size_t outlen;
    while (proto_session_output(s, &out, &outlen) > 0)
        free(out);
    size_t off = 0;
    uint64_t now = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used;
        proto_event ev;
        int r = proto_session_feed(s, data + off, n, now++, &used, &ev);
        if (used > n)
            abort();
        off += used;
        while (proto_session_output(s, &out, &outlen) > 0)
            free(out);
        if (r < 0) {
            if (proto_session_established(s) || proto_session_fail(s) == PROTO_FAIL_NONE)
                abort();
            break;
        }
        /* Nobody can complete a handshake without our peer's keys. */
        if (r == 1 && ev.type == PROTO_EVENT_HANDSHAKE_DONE && !initiator)
            abort();
    }
    (void)proto_session_tick(s, now + PROTO_STALL_TIMEOUT_MS);
    proto_session_free(s);
    return 0;
}
