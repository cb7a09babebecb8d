/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_CONTROL_H
#define NVX_PROTO_CONTROL_H
/*
 * The control protocol between `nvx` and nvxd over nvxd's Unix socket.
 * Local, unencrypted (the socket is mode 0600), but still decoded strictly:
 * a malformed request gets an ERROR response, never a crash.
 *
 * Frame (integers big-endian):
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      4    payload length N, 6 <= N <= PROTO_CTL_MAX
 *   4      1    control version, PROTO_CTL_VERSION (1)
 *   5      1    message type (enum proto_ctl_type)
 *   6      4    request id: chosen by the client, echoed by every response
 *   10     ...  fields until the end of the payload
 *
 * Field:
 *
 *   OFFSET SIZE DESCRIPTION
 *   0      1    tag (enum proto_ctl_tag); its kind is fixed by the tag
 *   1      2    value length L
 *   3      L    value: U64 = 8 bytes, BOOL = 1 byte (0 or 1), ID = 32 bytes,
 *                 STR = 0..PROTO_CTL_STR_MAX printable bytes (0x20..0x7e),
 *                 NEST = fields (one level deep)
 *
 * Tags marked "repeatable" may occur more than once; any other tag at most
 * once. Unknown tags and types, wrong lengths, kinds, nesting or missing
 * required tags are -EBADMSG. cli and nvxd are built together, so strict is
 * right here.
 *
 * A conversation: the client sends one request; the daemon answers with zero
 * or more PROGRESS events (FETCH only) and then exactly one OK or ERROR with
 * the same request id. Requests, their fields (R = required) and the answer:
 *
 *   STATUS      -                       OK: NODE_ID, ADDR*, AGENT, UPTIME_S,
 *                                           STORE_USED, STORE_LIMIT, PEER*,
 *                                           TRANSFER*, REACH
 *   PEERS       -                       OK: PEER* (connected peers)
 *   PEER_ADD    ADDR(R)                 OK
 *   PEER_RM     ADDR(R)                 OK
 *   PEER_LS     -                       OK: ADDR* (configured peers)
 *   FETCH       TARGET(R) PIN UNTRUSTED PROGRESS*, then OK: MODEL_ID
 *               TIMEOUT_S RATE ADDR* NODE_ID (PIN: keep the model; RATE:
 *               this fetch's download limit, bytes/s; a ticket: dial
 *               ADDRs first, pinned to NODE_ID when given)
 *   PUBLISH     MODEL_ID(R) NAME(R)     OK
 *               NAMEREC DHT_SIG         (both or neither: also put on the DHT)
 *   DHT_GET     DHT_KEY(R) NAME         OK: DHT_SEQ DHT_VALUE* (a BEP 44 get;
 *                                       ERROR ENOENT when no node has it)
 *   CANCEL      TARGET or TRANSFER_ID   OK
 *   SHUTDOWN    -                       OK, then the daemon exits
 *   ERROR       CODE(R) MESSAGE(R)
 *   PROGRESS    STATE(R) TRANSFER_ID BYTES_DONE BYTES_TOTAL CHUNKS_DONE
 *               CHUNKS_TOTAL RATE PEER_COUNT MODEL_ID
 *
 *   PEER (nest)     NODE_ID ADDR STATE BYTES_IN BYTES_OUT RATE AGENT
 *   TRANSFER (nest) TRANSFER_ID MODEL_ID TARGET STATE BYTES_DONE
 *                   BYTES_TOTAL CHUNKS_DONE CHUNKS_TOTAL RATE PEER_COUNT
 *   (a nest may carry any non-NEST tag; these are the ones nvx shows)
 *
 * Thread safety: decoding keeps no state; a writer or reader belongs to one
 * thread at a time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

/* The control socket's name in the store directory (nvxd listens, nvx
 * connects). */
#define PROTO_CTL_SOCKET_NAME "nvxd.sock"

enum proto_ctl_limits {
    PROTO_CTL_HEADER_LEN = 4,
    PROTO_CTL_VERSION = 1,
    PROTO_CTL_MIN = 6,          /* version, type, request id */
    PROTO_CTL_MAX = 256 * 1024, /* a STATUS with many peers fits */
    PROTO_CTL_STR_MAX = 1024,
    PROTO_CTL_DHT_VALUE_PIECE = 500, /* bytes of a DHT_VALUE field (1000 hex digits) */
    PROTO_CTL_FIELDS_MAX = 512,      /* per message (or per nest) */
};

enum proto_ctl_type {
    PROTO_CTL_STATUS = 1,
    PROTO_CTL_PEERS = 2,
    PROTO_CTL_PEER_ADD = 3,
    PROTO_CTL_PEER_RM = 4,
    PROTO_CTL_PEER_LS = 5,
    PROTO_CTL_FETCH = 6,
    PROTO_CTL_PUBLISH = 7,
    PROTO_CTL_CANCEL = 8,
    PROTO_CTL_SHUTDOWN = 9,
    PROTO_CTL_DHT_GET = 10,
    PROTO_CTL_OK = 64,
    PROTO_CTL_ERROR = 65,
    PROTO_CTL_PROGRESS = 66,
    _PROTO_CTL_TYPE_MAX,
};

enum proto_ctl_tag {
    PROTO_CTL_T_NODE_ID = 1,       /* ID */
    PROTO_CTL_T_ADDR = 2,          /* STR, repeatable */
    PROTO_CTL_T_TARGET = 3,        /* STR: hex id (prefix) or PUBLISHER/NAME */
    PROTO_CTL_T_MODEL_ID = 4,      /* ID */
    PROTO_CTL_T_NAME = 5,          /* STR */
    PROTO_CTL_T_PIN = 6,           /* BOOL */
    PROTO_CTL_T_UNTRUSTED = 7,     /* BOOL: follow names signed by untrusted keys */
    PROTO_CTL_T_BYTES_DONE = 8,    /* U64 */
    PROTO_CTL_T_BYTES_TOTAL = 9,   /* U64 */
    PROTO_CTL_T_RATE = 10,         /* U64 bytes per second */
    PROTO_CTL_T_PEER_COUNT = 11,   /* U64 */
    PROTO_CTL_T_STATE = 12,        /* U64, enum proto_ctl_state / peer state */
    PROTO_CTL_T_CODE = 13,         /* U64: positive errno value */
    PROTO_CTL_T_MESSAGE = 14,      /* STR */
    PROTO_CTL_T_PEER = 15,         /* NEST, repeatable */
    PROTO_CTL_T_TRANSFER = 16,     /* NEST, repeatable */
    PROTO_CTL_T_STORE_USED = 17,   /* U64 bytes */
    PROTO_CTL_T_STORE_LIMIT = 18,  /* U64 bytes, 0 = none */
    PROTO_CTL_T_BYTES_IN = 19,     /* U64 */
    PROTO_CTL_T_BYTES_OUT = 20,    /* U64 */
    PROTO_CTL_T_CHUNKS_DONE = 21,  /* U64 */
    PROTO_CTL_T_CHUNKS_TOTAL = 22, /* U64 */
    PROTO_CTL_T_TRANSFER_ID = 23,  /* U64 */
    PROTO_CTL_T_AGENT = 24,        /* STR */
    PROTO_CTL_T_UPTIME_S = 25,     /* U64 */
    PROTO_CTL_T_TIMEOUT_S = 26,    /* U64: FETCH gives up after this long with no provider */
    /* A FETCH that failed because no provider could serve some chunks
     * (each refused it or sent bytes that fail its hash): the first such
     * chunk's index, byte offset and length in the model, and how many
     * such chunks there were. PROGRESS (FAILED) and ERROR. */
    PROTO_CTL_T_CHUNK = 27,        /* U64 */
    PROTO_CTL_T_CHUNK_OFFSET = 28, /* U64 */
    PROTO_CTL_T_CHUNK_LEN = 29,    /* U64 */
    PROTO_CTL_T_CHUNK_COUNT = 30,  /* U64 */
    /* STATUS: how peers outside reach the node (a nest: STATE = enum
     * proto_ctl_reach, MESSAGE = one line, ADDR* = addresses to give out,
     * mapped external first, NAME = "upnp"/"nat-pmp"/"none", PEER_COUNT =
     * relays for connection reversal). */
    PROTO_CTL_T_REACH = 31, /* NEST */
    /* STATUS: the DHT (absent when it is off): its node id (40 hex
     * digits), nodes in its routing table, models announced, its UDP
     * port, peers and items stored for others. */
    PROTO_CTL_T_DHT = 32,           /* NEST */
    PROTO_CTL_T_DHT_ID = 33,        /* STR */
    PROTO_CTL_T_DHT_NODES = 34,     /* U64 */
    PROTO_CTL_T_DHT_ANNOUNCED = 35, /* U64 */
    PROTO_CTL_T_DHT_PORT = 36,      /* U64 */
    PROTO_CTL_T_DHT_STORED = 37,    /* U64 */
    /* PUBLISH: the encoded name record (hex) and the publisher's BEP 44
     * signature of it as a DHT item (hex, 128 digits; libcas/namerec.h),
     * for the daemon to put (and keep) on the DHT. DHT_GET: the item's key
     * (64 hex digits: a raw Ed25519 public key) and salt (NAME); its answer
     * the item's sequence and value (hex, in pieces of up to
     * PROTO_CTL_DHT_VALUE_PIECE bytes). */
    PROTO_CTL_T_NAMEREC = 38,   /* STR */
    PROTO_CTL_T_DHT_SIG = 39,   /* STR */
    PROTO_CTL_T_DHT_KEY = 40,   /* STR */
    PROTO_CTL_T_DHT_VALUE = 41, /* STR, repeatable */
    PROTO_CTL_T_DHT_SEQ = 42,   /* U64 (two's complement of BEP 44's signed seq) */
    /* The field sets are 64-bit masks: 63 is the last tag they can hold. */
    _PROTO_CTL_TAG_MAX,
};

enum proto_ctl_kind {
    PROTO_CTL_K_U64 = 1,
    PROTO_CTL_K_BOOL = 2,
    PROTO_CTL_K_ID = 3,
    PROTO_CTL_K_STR = 4,
    PROTO_CTL_K_NEST = 5,
};

/* REACH's STATE. */
enum proto_ctl_reach {
    PROTO_CTL_REACH_MAPPED = 1,   /* the router maps a port to us (UPnP, NAT-PMP) */
    PROTO_CTL_REACH_PUBLIC = 2,   /* we listen on a public address */
    PROTO_CTL_REACH_REVERSAL = 3, /* behind NAT: peers reach us through relays */
    PROTO_CTL_REACH_NONE = 4,
    _PROTO_CTL_REACH_MAX,
};

/* Transfer states in PROGRESS / TRANSFER. */
enum proto_ctl_state {
    PROTO_CTL_STATE_RESOLVING = 1, /* name -> id */
    PROTO_CTL_STATE_MANIFEST = 2,  /* fetching and checking the manifest */
    PROTO_CTL_STATE_FETCHING = 3,
    PROTO_CTL_STATE_VERIFYING = 4,
    PROTO_CTL_STATE_DONE = 5,
    PROTO_CTL_STATE_FAILED = 6,
    PROTO_CTL_STATE_CANCELLED = 7,
    _PROTO_CTL_STATE_MAX,
};

typedef struct proto_ctl_field {
    uint8_t tag;
    uint64_t u;       /* U64, BOOL */
    const uint8_t *p; /* ID, STR, NEST: borrowed from the decoded payload */
    size_t len;
} proto_ctl_field;

typedef struct proto_ctl_msg {
    uint8_t type; /* 0 for a decoded NEST */
    uint32_t id;
    size_t n;
    proto_ctl_field f[PROTO_CTL_FIELDS_MAX];
} proto_ctl_msg;

/* The kind of a tag, 0 for unknown tags. */
int proto_ctl_tag_kind(uint8_t tag);

/* Name of a control message type for logs, "?" when unknown. */
const char *proto_ctl_type_name(uint8_t type);

/*
 * Decodes one payload (the bytes after the 4-byte length) into *ret, which
 * borrows payload. Returns 0 or -EBADMSG (see the header comment).
 */
int proto_ctl_decode(const uint8_t *payload, size_t len, proto_ctl_msg *ret);

/* Decodes the fields of a NEST field into *ret (type 0). 0 or -EBADMSG. */
int proto_ctl_nest_decode(const proto_ctl_field *f, proto_ctl_msg *ret);

/* First field with this tag, or NULL. The next one: proto_ctl_next(). */
const proto_ctl_field *proto_ctl_find(const proto_ctl_msg *m, uint8_t tag);
const proto_ctl_field *proto_ctl_next(const proto_ctl_msg *m, const proto_ctl_field *after);

/* Typed getters: true and *ret when the tag is present. */
bool proto_ctl_get_u64(const proto_ctl_msg *m, uint8_t tag, uint64_t *ret);
bool proto_ctl_get_str(const proto_ctl_msg *m, uint8_t tag, proto_str *ret);
bool proto_ctl_get_id(const proto_ctl_msg *m, uint8_t tag, const uint8_t **ret);

/* ---- Building messages ------------------------------------------------- */

/* A growable message under construction. Errors are sticky: after the first
 * failure every put is a no-op and proto_ctl_writer_finish() returns it. */
typedef struct proto_ctl_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t nest_at; /* offset of the open NEST's length field, 0 = none */
    int err;
} proto_ctl_writer;

/* Starts a message. The writer owns its buffer until finish or free. */
void proto_ctl_writer_init(proto_ctl_writer *w, uint8_t type, uint32_t id);
void proto_ctl_put_u64(proto_ctl_writer *w, uint8_t tag, uint64_t v);
void proto_ctl_put_bool(proto_ctl_writer *w, uint8_t tag, bool v);
void proto_ctl_put_id(proto_ctl_writer *w, uint8_t tag, const uint8_t id[static PROTO_ID_LEN]);
/* s: printable text, NUL-terminated; longer than PROTO_CTL_STR_MAX -> -EINVAL. */
void proto_ctl_put_str(proto_ctl_writer *w, uint8_t tag, const char *s);
void proto_ctl_nest_begin(proto_ctl_writer *w, uint8_t tag);
void proto_ctl_nest_end(proto_ctl_writer *w);

/*
 * Finishes the message and hands the whole frame (4-byte length included) to
 * the caller (*ret_buf malloc'd, caller frees). The frame is checked with
 * proto_ctl_decode() first, so a writer never emits what a reader rejects.
 * Returns 0; -EINVAL (bad tag/kind/string, unbalanced nest, missing required
 * field), -EMSGSIZE (over PROTO_CTL_MAX), -ENOMEM. The writer is released
 * either way.
 */
int proto_ctl_writer_finish(proto_ctl_writer *w, uint8_t **ret_buf, size_t *ret_len);

/* Releases an unfinished writer. */
void proto_ctl_writer_free(proto_ctl_writer *w);

/* Builds a complete ERROR frame: code is a positive or negative errno. */
int proto_ctl_error_build(uint32_t id, int code, const char *message, uint8_t **ret_buf,
                          size_t *ret_len);

/* A FETCH progress event (PROGRESS) in typed form. Zero fields are omitted
 * on the wire except state. */
typedef struct proto_ctl_progress {
    uint64_t state; /* enum proto_ctl_state */
    uint64_t transfer_id;
    uint64_t bytes_done;
    uint64_t bytes_total;
    uint64_t chunks_done;
    uint64_t chunks_total;
    uint64_t rate; /* bytes per second */
    uint64_t peer_count;
    bool has_model_id;
    uint8_t model_id[PROTO_ID_LEN];
    bool has_chunk; /* the CHUNK_* fields (a fetch that failed for a chunk) */
    uint64_t chunk, chunk_offset, chunk_len, chunk_count;
    uint64_t chunk_tried; /* sessions that refused it; for the daemon's message, not encoded */
} proto_ctl_progress;

/* Puts p's CHUNK, CHUNK_OFFSET, CHUNK_LEN and CHUNK_COUNT fields (PROGRESS
 * and ERROR of a fetch that failed for a chunk). */
void proto_ctl_put_chunk(proto_ctl_writer *w, const proto_ctl_progress *p);

/* Builds a PROGRESS frame for request id. Returns as proto_ctl_writer_finish(). */
int proto_ctl_progress_build(uint32_t id, const proto_ctl_progress *p, uint8_t **ret_buf,
                             size_t *ret_len);

/* Reads a decoded PROGRESS message into *ret (absent fields are 0).
 * Returns 0, -EINVAL when m is not a PROGRESS. */
int proto_ctl_progress_parse(const proto_ctl_msg *m, proto_ctl_progress *ret);

/* ---- Reading a stream -------------------------------------------------- */

/* Splits a byte stream into control payloads. Embed, zero-initialise, release
 * with proto_ctl_reader_reset(). */
typedef struct proto_ctl_reader {
    uint8_t hdr[PROTO_CTL_HEADER_LEN];
    size_t hdr_have;
    size_t want;
    size_t have;
    uint8_t *buf;
    int err;
} proto_ctl_reader;

/*
 * Like proto_frame_decoder_feed(): consumes bytes up to the end of the first
 * complete payload (*ret_used always written). Returns 1 with *ret_payload /
 * *ret_len (valid until the next call), 0 when more bytes are needed,
 * -EMSGSIZE (length over PROTO_CTL_MAX, checked before allocating), -EBADMSG
 * (length under PROTO_CTL_MIN), -ENOMEM. Errors are sticky.
 */
int proto_ctl_reader_feed(proto_ctl_reader *r, const uint8_t *buf, size_t len, size_t *ret_used,
                          const uint8_t **ret_payload, size_t *ret_len);

/* True when a payload has been started but not completed. */
bool proto_ctl_reader_partial(const proto_ctl_reader *r);

void proto_ctl_reader_reset(proto_ctl_reader *r);

#endif
