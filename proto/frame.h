/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_FRAME_H
#define NVX_PROTO_FRAME_H
/*
 * Frames: the unit of the nvx peer wire protocol on any byte stream.
 *
 * Frame (integers big-endian):
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    body length N (bytes after this header); N <= PROTO_FRAME_MAX_BODY
 *   4      1    frame format version, PROTO_FRAME_VERSION (1)
 *   5      1    frame type (enum proto_frame_type)
 *   6      2    reserved, must be zero
 *   8      N    body
 *
 * The length is checked against PROTO_FRAME_MAX_BODY as soon as the 8 header
 * bytes are in, before any allocation. Frames of a type this code does not
 * know are skipped (their body is discarded without being buffered), so
 * later versions can add frame types that older nodes ignore.
 *
 * The decoder is sans-I/O: the caller feeds whatever bytes arrived, in any
 * split, and gets frames back one at a time. It is not thread-safe; one
 * decoder per connection, used from one thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_frame_limits {
    PROTO_FRAME_HEADER_LEN = 8,
    PROTO_FRAME_VERSION = 1,
    /* Largest chunk libcas cuts (256 KiB); DATA carries at most this many bytes. */
    PROTO_CHUNK_MAX = 256 * 1024,
    /* A whole 256 KiB chunk piece plus message header, AEAD counter and tag. */
    PROTO_FRAME_MAX_BODY = PROTO_CHUNK_MAX + 1024,
};

enum proto_frame_type {
    PROTO_FRAME_HS_INIT = 1,   /* handshake step 1, initiator -> responder */
    PROTO_FRAME_HS_RESP = 2,   /* handshake step 2, responder -> initiator */
    PROTO_FRAME_HS_FINISH = 3, /* handshake step 3, initiator -> responder */
    PROTO_FRAME_HS_REJECT = 4, /* responder refuses (no common version) */
    PROTO_FRAME_SEALED = 5,    /* AEAD-sealed message, after the handshake */
    _PROTO_FRAME_TYPE_MAX,
};

/* True for the frame types this version understands. */
bool proto_frame_type_known(uint8_t type);

/* A decoded frame. body borrows either the decoder's buffer or the caller's
 * input; it stays valid until the next call on the decoder and only while the
 * caller's input buffer given to that feed is unchanged. */
typedef struct proto_frame {
    uint8_t type;
    const uint8_t *body;
    size_t len;
} proto_frame;

/* Streaming decoder. Embed it and initialise with PROTO_FRAME_DECODER_INIT;
 * release with proto_frame_decoder_reset(). Fields are private. */
typedef struct proto_frame_decoder {
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    size_t hdr_have;  /* header bytes buffered */
    size_t body_len;  /* N of the current frame (valid when hdr_have == 8) */
    size_t body_have; /* body bytes buffered or skipped */
    bool skipping;    /* current frame has an unknown type: discard body */
    uint8_t *buf;     /* body buffer (malloc) */
    size_t buf_cap;
    int err;          /* sticky error, 0 when healthy */
    uint64_t skipped; /* count of unknown-type frames skipped */
} proto_frame_decoder;

#define PROTO_FRAME_DECODER_INIT \
    {                            \
        .hdr_have = 0            \
    }

/*
 * Feeds received bytes. Consumes bytes up to and including the first complete
 * frame of a known type and stores how many in *ret_used (always written).
 *
 * Returns 1 with *ret_frame filled when a frame completed, 0 when all len
 * bytes were consumed without completing one, or a negative errno:
 *   -EMSGSIZE  the length field exceeds PROTO_FRAME_MAX_BODY (nothing allocated)
 *   -EPROTO    the frame format version is not PROTO_FRAME_VERSION
 *   -EBADMSG   reserved header bits are set
 *   -ENOMEM
 * Errors are sticky: the stream cannot be resynchronised, so every later call
 * returns the same error. The caller should close the connection.
 */
int proto_frame_decoder_feed(proto_frame_decoder *d, const uint8_t *buf, size_t len,
                             size_t *ret_used, proto_frame *ret_frame);

/* True when a frame has been started but not completed (a peer that stops
 * here is stalling mid-frame). */
bool proto_frame_decoder_partial(const proto_frame_decoder *d);

/* Frees the body buffer when no frame is in progress (an idle connection
 * need not keep up to PROTO_FRAME_MAX_BODY bytes). Invalidates the last
 * returned frame. */
void proto_frame_decoder_trim(proto_frame_decoder *d);

/* Frees the buffer and returns the decoder to its initial state. */
void proto_frame_decoder_reset(proto_frame_decoder *d);

/* Writes the 8-byte header for a frame of the given type and body length.
 * Returns 0, -EMSGSIZE when body_len > PROTO_FRAME_MAX_BODY. */
int proto_frame_header_write(uint8_t out[static PROTO_FRAME_HEADER_LEN], uint8_t type,
                             size_t body_len);

/* Writes header + body into out (cap bytes). Returns 0 and *ret_len, or
 * -EMSGSIZE when the body is too long or out too small. */
int proto_frame_encode(uint8_t type, const uint8_t *body, size_t body_len, uint8_t *out, size_t cap,
                       size_t *ret_len);

#endif
