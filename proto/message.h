/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_MESSAGE_H
#define NVX_PROTO_MESSAGE_H
/*
 * Peer messages: the plaintext inside SEALED frames (and HELLO inside the
 * handshake). Byte-exact layouts are in proto/PROTOCOL.md; every integer is
 * big-endian, every variable part is length-prefixed and bounded by a named
 * limit below. Decoders are strict: trailing bytes, out-of-range values,
 * unsorted ranges or non-printable strings are -EBADMSG.
 *
 * Decoded messages borrow the body they were decoded from: every pointer in
 * a proto_msg points into that body and is valid as long as the body is.
 *
 * Model ids and node ids are 32 bytes (BLAKE2b-256 of the manifest; the
 * node's Ed25519 public key).
 *
 * Thread safety: the functions keep no state; any thread may call them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

enum proto_msg_limits {
    PROTO_ID_LEN = 32,
    PROTO_ADDR_MAX = 96, /* "tcp://[v6]:port", "serial:/dev/..." */
    PROTO_HELLO_ADDRS_MAX = 8,
    PROTO_AGENT_MAX = 64,
    PROTO_RANGES_MAX = 1024,       /* ranges in one WANT/HAVE */
    PROTO_CHUNKS_MAX = 1 << 20,    /* chunks per model (bitmap: 128 KiB) */
    PROTO_MANIFEST_MAX = 16 << 20, /* total manifest bytes, sent in pieces */
    PROTO_MANIFEST_PIECE_MAX = PROTO_CHUNK_MAX,
    PROTO_NAME_MAX = 128,    /* published name */
    PROTO_SIG_MAX = 1024,    /* opaque signature blob in a name record */
    PROTO_KEYID_LEN = 8,     /* minisign key id */
    PROTO_NODE_SIG_LEN = 64, /* Ed25519 signature by a node's identity */
    PROTO_ANNOUNCE_MAX = 32, /* records per ANNOUNCE */
    PROTO_PEERS_MAX = 32,    /* entries per PEERS */
    PROTO_SIGS_MAX = 8,      /* signature blobs per SIGS */
    PROTO_BYE_TEXT_MAX = 128,
    /* Largest message body that fits one SEALED frame. */
    PROTO_MSG_MAX = PROTO_FRAME_MAX_BODY - 8 - 16 - 1,
};

enum proto_msg_type {
    PROTO_MSG_PING = 1,
    PROTO_MSG_PONG = 2,
    PROTO_MSG_WANT = 3,
    PROTO_MSG_HAVE = 4,
    PROTO_MSG_REQUEST = 5,
    PROTO_MSG_DATA = 6,
    PROTO_MSG_CANCEL = 7,
    PROTO_MSG_NOT_FOUND = 8,
    PROTO_MSG_MANIFEST_REQ = 9,
    PROTO_MSG_MANIFEST = 10,
    PROTO_MSG_ANNOUNCE = 11,
    PROTO_MSG_PEERS = 12,
    PROTO_MSG_BYE = 13,
    PROTO_MSG_SIGS_REQ = 14,
    PROTO_MSG_SIGS = 15,
    PROTO_MSG_REVERSE_REQ = 16, /* to a relay: ask node T to connect to me */
    PROTO_MSG_REVERSE = 17,     /* from a relay: connect to node F at ADDR */
    PROTO_MSG_REVERSE_AT = 18,  /* to a relay: ask the node at ADDR to connect to me */
    _PROTO_MSG_TYPE_MAX,
    /* HELLO travels only inside the handshake, never in a SEALED frame. */
    PROTO_MSG_HELLO = 0x80,
};

/* HELLO feature bits. Unknown bits are ignored. */
enum proto_feature {
    PROTO_FEAT_HW_AES = 1u << 0,  /* AES-256-GCM is fast here (AES-NI/ARMv8 CE) */
    PROTO_FEAT_SEED = 1u << 1,    /* serves chunks */
    PROTO_FEAT_RELAY = 1u << 2,   /* relays gossip (ANNOUNCE, PEERS) */
    PROTO_FEAT_REVERSE = 1u << 3, /* forwards REVERSE_REQ to its sessions (connection reversal) */
};

/* A borrowed byte string (not NUL-terminated). */
typedef struct proto_str {
    const uint8_t *p;
    size_t len;
} proto_str;

typedef struct proto_hello {
    uint8_t node_id[PROTO_ID_LEN];
    uint16_t version_min;
    uint16_t version_max;
    uint64_t features;
    proto_str agent; /* printable text, may be empty */
    size_t n_addrs;
    proto_str addrs[PROTO_HELLO_ADDRS_MAX]; /* printable tokens, no spaces */
} proto_hello;

typedef struct proto_range {
    uint32_t start;
    uint32_t count; /* >= 1 */
} proto_range;

enum proto_chunkset_kind {
    PROTO_CHUNKSET_ALL = 0,    /* every chunk of the model */
    PROTO_CHUNKSET_RANGES = 1, /* sorted, disjoint, non-adjacent ranges */
    PROTO_CHUNKSET_BITMAP = 2, /* bit i (LSB-first in byte i/8) = chunk i */
    _PROTO_CHUNKSET_KIND_MAX,
};

typedef struct proto_chunkset {
    uint8_t kind;
    size_t n_ranges;
    proto_range ranges[PROTO_RANGES_MAX];
    uint32_t nbits;        /* BITMAP: number of chunks */
    const uint8_t *bitmap; /* BITMAP: (nbits + 7) / 8 bytes, spare bits zero */
} proto_chunkset;

/* True when chunk idx is in the set (ALL: always true). */
bool proto_chunkset_contains(const proto_chunkset *set, uint32_t idx);

typedef struct proto_ping {
    uint64_t nonce; /* PONG echoes the PING's nonce */
} proto_ping;

typedef struct proto_want { /* WANT and HAVE */
    uint8_t model_id[PROTO_ID_LEN];
    proto_chunkset set;
} proto_want;

typedef struct proto_request { /* REQUEST and CANCEL */
    uint32_t req_id;           /* chosen by the requester, echoed */
    uint8_t model_id[PROTO_ID_LEN];
    uint32_t chunk;  /* index in the manifest */
    uint32_t offset; /* byte offset in the chunk */
    uint32_t length; /* 1..PROTO_CHUNK_MAX, offset+length <= CHUNK_MAX */
} proto_request;

typedef struct proto_data {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
    uint32_t chunk;
    uint32_t offset;
    proto_str bytes; /* 1..PROTO_CHUNK_MAX bytes */
} proto_data;

/* DATA's fields in front of its bytes: req_id, model id, chunk, offset,
 * length (see PROTOCOL.md). */
#define PROTO_DATA_HEAD_LEN (4 + PROTO_ID_LEN + 4 + 4 + 4)

/* Writes the fields of d, with bytes.len as the length but not the bytes,
 * at out: a sender that reads a chunk straight into a frame buffer puts
 * this in front of it and seals the frame in place (no copy of the chunk).
 * d->bytes.p is not read. */
void proto_data_head_put(const proto_data *d, uint8_t out[static PROTO_DATA_HEAD_LEN]);

enum proto_notfound_what {
    PROTO_NOTFOUND_CHUNK = 0,
    PROTO_NOTFOUND_MANIFEST = 1,
    PROTO_NOTFOUND_BUSY = 2, /* have it, over a limit: retry later */
    _PROTO_NOTFOUND_MAX,
};

typedef struct proto_not_found {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
    uint32_t chunk;
    uint8_t what;
} proto_not_found;

typedef struct proto_manifest_req {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
    uint32_t offset; /* byte offset in the manifest */
    uint32_t length; /* 1..PROTO_MANIFEST_PIECE_MAX */
} proto_manifest_req;

typedef struct proto_manifest {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
    uint32_t total;  /* whole manifest, 1..PROTO_MANIFEST_MAX */
    uint32_t offset; /* offset + bytes.len <= total */
    proto_str bytes; /* 1..PROTO_MANIFEST_PIECE_MAX */
} proto_manifest;

/* SIGS_REQ: "send me the signatures you hold for model M". */
typedef struct proto_sigs_req {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
} proto_sigs_req;

/* SIGS: the answer, 0..PROTO_SIGS_MAX opaque signature blobs (libcas
 * checks them) of 1..PROTO_SIG_MAX bytes each. */
typedef struct proto_sigs {
    uint32_t req_id;
    uint8_t model_id[PROTO_ID_LEN];
    size_t n;
    proto_str sigs[PROTO_SIGS_MAX];
} proto_sigs;

/* Connection reversal (PROTOCOL.md, "REVERSE_REQ, REVERSE"). REVERSE_REQ
 * carries the target's node id only (addr is empty); REVERSE the node id
 * of the node that asked and the address to dial it at; REVERSE_AT the
 * target's address only (node_id unused: the DHT names providers by
 * address). */
typedef struct proto_reverse {
    uint8_t node_id[PROTO_ID_LEN];
    proto_str addr; /* REVERSE, REVERSE_AT: 1..PROTO_ADDR_MAX token */
} proto_reverse;

enum proto_record_kind {
    PROTO_RECORD_PROVIDER = 1,
    PROTO_RECORD_NAME = 2,
    _PROTO_RECORD_KIND_MAX,
};

/* "Node N has model M", signed by N (proto_provider_sign()/_verify()), so
 * nobody can announce a victim as the provider of popular models. */
typedef struct proto_provider_record {
    uint8_t node_id[PROTO_ID_LEN];
    uint8_t model_id[PROTO_ID_LEN];
    uint64_t time;                   /* N's Unix time when it signed, seconds */
    uint32_t ttl_s;                  /* valid until time + ttl_s */
    uint8_t hops;                    /* gossip hops left; relays decrement (unsigned) */
    uint8_t sig[PROTO_NODE_SIG_LEN]; /* Ed25519 by node_id, see PROTOCOL.md */
} proto_provider_record;

typedef struct proto_name_record {
    uint8_t key_id[PROTO_KEYID_LEN]; /* minisign key id of the publisher */
    proto_str name;                  /* 1..PROTO_NAME_MAX printable, no spaces */
    uint64_t sequence;               /* highest valid wins */
    uint8_t model_id[PROTO_ID_LEN];
    uint64_t time; /* publisher's Unix time, seconds */
    uint32_t ttl_s;
    uint8_t hops;
    proto_str sig; /* opaque (libcas), 1..PROTO_SIG_MAX */
} proto_name_record;

typedef struct proto_record {
    uint8_t kind;
    union {
        proto_provider_record provider;
        proto_name_record name;
    } u;
} proto_record;

typedef struct proto_announce {
    size_t n; /* records of known kinds (unknown kinds are skipped) */
    proto_record records[PROTO_ANNOUNCE_MAX];
} proto_announce;

typedef struct proto_peer_entry {
    uint8_t node_id[PROTO_ID_LEN];
    proto_str addr;
} proto_peer_entry;

typedef struct proto_peers {
    size_t n;
    proto_peer_entry peers[PROTO_PEERS_MAX];
} proto_peers;

enum proto_bye_reason {
    PROTO_BYE_NORMAL = 0,
    PROTO_BYE_SHUTDOWN = 1,
    PROTO_BYE_PROTOCOL_ERROR = 2,
    PROTO_BYE_BAD_DATA = 3, /* sent a chunk that failed verification */
    PROTO_BYE_TOO_MANY_PEERS = 4,
    PROTO_BYE_IDLE = 5,
    PROTO_BYE_DUPLICATE = 6, /* already connected to this node */
    _PROTO_BYE_REASON_MAX,
};

typedef struct proto_bye {
    uint8_t reason; /* unknown reasons decode as-is */
    proto_str text; /* printable, 0..PROTO_BYE_TEXT_MAX */
} proto_bye;

typedef struct proto_msg {
    uint8_t type; /* enum proto_msg_type */
    union {
        proto_hello hello;
        proto_ping ping;       /* PING, PONG */
        proto_want want;       /* WANT, HAVE */
        proto_request request; /* REQUEST, CANCEL */
        proto_data data;
        proto_not_found not_found;
        proto_manifest_req manifest_req;
        proto_manifest manifest;
        proto_announce announce;
        proto_peers peers;
        proto_bye bye;
        proto_sigs_req sigs_req;
        proto_sigs sigs;
        proto_reverse reverse; /* REVERSE_REQ, REVERSE, REVERSE_AT */
    } u;
} proto_msg;

/* True for the types of enum proto_msg_type that travel in SEALED frames. */
bool proto_msg_type_known(uint8_t type);

/* Name of a message type for logs ("REQUEST"), "?" when unknown. */
const char *proto_msg_type_name(uint8_t type);

/*
 * Encodes m's body (without the type byte) into buf (cap bytes). With
 * buf == NULL only computes the size. Returns 0 and *ret_len; -EINVAL when a
 * field is out of its documented range (the same checks the decoder makes,
 * so whatever encodes also decodes); -EMSGSIZE when cap is too small.
 */
int proto_msg_encode(const proto_msg *m, uint8_t *buf, size_t cap, size_t *ret_len);

/*
 * Decodes a body of the given type into *ret (which borrows body).
 * Returns 0; -EBADMSG for malformed bodies; -EOPNOTSUPP for an unknown type
 * (callers skip those: newer peers may send them).
 */
int proto_msg_decode(uint8_t type, const uint8_t *body, size_t len, proto_msg *ret);

#endif
