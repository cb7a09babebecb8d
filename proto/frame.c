/* SPDX-License-Identifier: MIT */
/*
 * Frame codec and streaming decoder. See frame.h for the layout.
 */
#include "proto/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/internal.h"

bool
proto_frame_type_known(uint8_t type)
{
    return type >= PROTO_FRAME_HS_INIT && type < _PROTO_FRAME_TYPE_MAX;
}

int
proto_frame_header_write(uint8_t out[static PROTO_FRAME_HEADER_LEN], uint8_t type, size_t body_len)
{
    if (body_len > PROTO_FRAME_MAX_BODY)
        return -EMSGSIZE;
    be32_store(out, (uint32_t)body_len);
    out[4] = PROTO_FRAME_VERSION;
    out[5] = type;
    out[6] = 0;
    out[7] = 0;
    return 0;
}

int
proto_frame_encode(uint8_t type, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap,
                   size_t *ret_len)
{
    if (body_len > PROTO_FRAME_MAX_BODY || cap < PROTO_FRAME_HEADER_LEN ||
        cap - PROTO_FRAME_HEADER_LEN < body_len)
        return -EMSGSIZE;
    int r = proto_frame_header_write(out, type, body_len);
    if (r < 0)
        return r;
    if (body_len)
        memmove(out + PROTO_FRAME_HEADER_LEN, body, body_len);
    *ret_len = PROTO_FRAME_HEADER_LEN + body_len;
    return 0;
}

/* Validates a complete header; on success sets up body reception. */
static int
header_accept(proto_frame_decoder *d)
{
    uint32_t n = be32_load(d->hdr);
    /* The length is checked before anything is allocated for the body. */
    if (n > PROTO_FRAME_MAX_BODY)
        return -EMSGSIZE;
    if (d->hdr[4] != PROTO_FRAME_VERSION)
        return -EPROTO;
    if (d->hdr[6] != 0 || d->hdr[7] != 0)
        return -EBADMSG;
    d->body_len = n;
    d->body_have = 0;
    d->skipping = !proto_frame_type_known(d->hdr[5]);
    return 0;
}

static int
buf_reserve(proto_frame_decoder *d, size_t n)
{
    if (d->buf_cap >= n)
        return 0;
    /* Free first: the old contents are not needed, so no realloc copy. */
    free(d->buf);
    d->buf_cap = 0;
    d->buf = malloc(n ? n : 1);
    if (!d->buf)
        return -ENOMEM;
    d->buf_cap = n;
    return 0;
}

int
proto_frame_decoder_feed(proto_frame_decoder *d, const uint8_t *buf, size_t len, size_t *ret_used,
                         proto_frame *ret_frame)
{
    size_t used = 0;
    int r = 0;

    *ret_used = 0;
    if (d->err < 0)
        return d->err;
    while (used < len) {
        if (d->hdr_have < PROTO_FRAME_HEADER_LEN) {
            /* Fast path: a whole frame of a known type sits in the input, so
             * return it in place without copying. */
            if (d->hdr_have == 0 && len - used >= PROTO_FRAME_HEADER_LEN) {
                memcpy(d->hdr, buf + used, PROTO_FRAME_HEADER_LEN);
                r = header_accept(d);
                if (r < 0)
                    goto fail;
                size_t rest = len - used - PROTO_FRAME_HEADER_LEN;
                if (!d->skipping && rest >= d->body_len) {
                    ret_frame->type = d->hdr[5];
                    ret_frame->body = buf + used + PROTO_FRAME_HEADER_LEN;
                    ret_frame->len = d->body_len;
                    used += PROTO_FRAME_HEADER_LEN + d->body_len;
                    *ret_used = used;
                    return 1;
                }
                d->hdr_have = PROTO_FRAME_HEADER_LEN;
                used += PROTO_FRAME_HEADER_LEN;
            } else {
                size_t n = PROTO_FRAME_HEADER_LEN - d->hdr_have;
                if (n > len - used)
                    n = len - used;
                memcpy(d->hdr + d->hdr_have, buf + used, n);
                d->hdr_have += n;
                used += n;
                if (d->hdr_have < PROTO_FRAME_HEADER_LEN)
                    break;
                r = header_accept(d);
                if (r < 0)
                    goto fail;
            }
            if (!d->skipping) {
                r = buf_reserve(d, d->body_len);
                if (r < 0)
                    goto fail;
            }
        }
        size_t n = d->body_len - d->body_have;
        if (n > len - used)
            n = len - used;
        if (!d->skipping && n)
            memcpy(d->buf + d->body_have, buf + used, n);
        d->body_have += n;
        used += n;
        if (d->body_have < d->body_len)
            break;
        /* Frame complete: the header slot is free for the next one. */
        d->hdr_have = 0;
        if (d->skipping) {
            d->skipped++;
            continue;
        }
        ret_frame->type = d->hdr[5];
        ret_frame->body = d->buf;
        ret_frame->len = d->body_len;
        *ret_used = used;
        return 1;
    }
    *ret_used = used;
    return 0;
fail:
    d->err = r;
    *ret_used = used;
    return r;
}

bool
proto_frame_decoder_partial(const proto_frame_decoder *d)
{
    return d->hdr_have > 0;
}

void
proto_frame_decoder_trim(proto_frame_decoder *d)
{
    if (d->hdr_have > 0)
        return;
    free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
}

void
proto_frame_decoder_reset(proto_frame_decoder *d)
{
    free(d->buf);
    memset(d, 0, sizeof(*d));
}
