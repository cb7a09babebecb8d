/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the frame decoder and, through it, the peer message decoder.
 * Input: byte 0 picks the feed split size; the rest is the stream. Each
 * frame's body is decoded as a message whose type is the body's first byte;
 * whatever decodes must re-encode to the same bytes (the codec is canonical),
 * except ANNOUNCE, whose unknown record kinds are dropped on decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_message(const uint8_t *body, size_t len)
{
    static proto_msg m;
    if (len < 1)
        return;
    if (proto_msg_decode(body[0], body + 1, len - 1, &m) < 0)
        return;
    size_t n;
    uint8_t *again = malloc(len);
    if (!again)
        return;
    if (proto_msg_encode(&m, again, len, &n) < 0)
        abort(); /* decoded but does not encode: decoder laxer than encoder */
    if (body[0] != PROTO_MSG_ANNOUNCE && (n != len - 1 || memcmp(again, body + 1, n) != 0))
        abort();
    free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] ? data[0] : size;
    data++, size--;
    proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used;
        proto_frame f;
        int r = proto_frame_decoder_feed(&d, data + off, n, &used, &f);
        if (used > n)
            abort();
        off += used;
        if (r < 0)
            break;
        if (r == 1)
            check_message(f.body, f.len);
    }
    proto_frame_decoder_reset(&d);
    return 0;
}
