/* SPDX-License-Identifier: MIT */
/*
 * Tickets come from other people (pasted into `nvx fetch`): the decoder
 * (proto/ticket.c) must refuse anything malformed without reading out of
 * bounds. Property: a ticket that decodes encodes back to a ticket that
 * decodes to the same fields, and to the canonical (lower-case) spelling
 * of the input.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_ticket t, u;
    if (proto_ticket_decode((const char *)data, size, &t) < 0)
        return 0;
    char text[PROTO_TICKET_TEXT_MAX + 1];
    if (proto_ticket_encode(&t, text, sizeof(text)) < 0 || strlen(text) != size)
        abort();
    for (size_t i = 0; i < size; i++)
        if (text[i] != (i < 4 ? "nvx1"[i] : tolower(data[i])))
            abort();
    if (proto_ticket_decode(text, strlen(text), &u) < 0 || memcmp(t.model_id, u.model_id, 32) ||
        t.n_addrs != u.n_addrs || t.has_node != u.has_node || t.has_publisher != u.has_publisher)
        abort();
    for (size_t i = 0; i < t.n_addrs; i++)
        if (strcmp(t.addrs[i], u.addrs[i]) != 0)
            abort();
    return 0;
}
