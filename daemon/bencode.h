/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_BENCODE_H
#define NVX_DAEMON_BENCODE_H
/*
 * Bencode (BEP 3), strict and bounded: the encoding of every mainline DHT
 * packet (daemon/krpc.h).
 *
 *   integer  i<decimal>e        no leading zero, no "-0", fits int64
 *   string   <len>:<bytes>      len decimal, no leading zero
 *   list     l<value>...e
 *   dict     d<string><value>...e   keys strictly ascending (raw bytes)
 *
 * The decoder turns one whole buffer into a flat array of tokens (preorder,
 * like jsmn) and refuses anything else: trailing bytes, unsorted or repeated
 * keys, nesting deeper than NVX_BENC_DEPTH_MAX, more than
 * NVX_BENC_TOKENS_MAX values, input longer than NVX_BENC_INPUT_MAX. Every
 * read is checked against the end of the buffer first. Nothing is copied:
 * tokens point into the caller's buffer, which must outlive them.
 *
 * The encoder writes into a caller's buffer and remembers an overflow
 * instead of writing past it; callers write dict keys in ascending order.
 *
 * Pure; any thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum nvx_benc_limits {
    NVX_BENC_INPUT_MAX = 2048, /* a KRPC packet is one UDP datagram */
    NVX_BENC_TOKENS_MAX = 256,
    NVX_BENC_DEPTH_MAX = 8,
};

typedef enum nvx_benc_type {
    NVX_BENC_INT = 1,
    NVX_BENC_STR,
    NVX_BENC_LIST,
    NVX_BENC_DICT,
    _NVX_BENC_TYPE_MAX,
} nvx_benc_type;

typedef struct nvx_benc_tok {
    uint8_t type;   /* nvx_benc_type */
    uint16_t next;  /* index of the token after this value and its children */
    uint16_t count; /* LIST: items; DICT: keys (each key token is followed by its value) */
    uint32_t start; /* offset of the value's first byte in the buffer */
    uint32_t end;   /* offset one past its last byte (raw span: start..end) */
    uint32_t s_off; /* STR: offset of the bytes */
    uint32_t s_len; /* STR: their length */
    int64_t i;      /* INT */
} nvx_benc_tok;

typedef struct nvx_benc {
    const uint8_t *buf; /* borrowed */
    size_t len;
    unsigned n;
    nvx_benc_tok t[NVX_BENC_TOKENS_MAX];
} nvx_benc;

/* Decodes buf[0..len) into b (tokens 0..n; token 0 is the top value).
 * Returns 0, -EBADMSG (malformed, trailing bytes, unsorted keys) or
 * -EMSGSIZE (a limit above). */
int nvx_benc_decode(nvx_benc *b, const uint8_t *buf, size_t len);

/* The value under key (NUL-terminated) in the dict token dict: its token
 * index, or -ENOENT (absent) / -EINVAL (dict is not a dict). */
int nvx_benc_dict_get(const nvx_benc *b, unsigned dict, const char *key);

/* As nvx_benc_dict_get() but the value must have type want: else -EBADMSG. */
int nvx_benc_dict_get_type(const nvx_benc *b, unsigned dict, const char *key, nvx_benc_type want);

/* The bytes of string token i (pointer into b->buf), length in *ret_len. */
const uint8_t *nvx_benc_str(const nvx_benc *b, unsigned i, size_t *ret_len);

/* An encoder over buf[0..cap). */
typedef struct nvx_benc_writer {
    uint8_t *buf;
    size_t cap, len;
    bool overflow; /* something did not fit: the output is unusable */
} nvx_benc_writer;

void nvx_benc_writer_init(nvx_benc_writer *w, uint8_t *buf, size_t cap);
void nvx_benc_put_int(nvx_benc_writer *w, int64_t v);
void nvx_benc_put_str(nvx_benc_writer *w, const void *s, size_t len);
/* A NUL-terminated string (dict keys). */
void nvx_benc_put_cstr(nvx_benc_writer *w, const char *s);
/* Already-encoded bencode, copied as is. */
void nvx_benc_put_raw(nvx_benc_writer *w, const void *raw, size_t len);
void nvx_benc_open_dict(nvx_benc_writer *w);
void nvx_benc_open_list(nvx_benc_writer *w);
void nvx_benc_close(nvx_benc_writer *w);
/* The encoded length, or -EMSGSIZE when something did not fit. */
int nvx_benc_writer_end(const nvx_benc_writer *w);

#endif
