/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_SESSION_H
#define NVX_PROTO_SESSION_H
/*
 * An authenticated, encrypted peer session as a sans-I/O state machine.
 *
 * Driving it from a byte stream (TCP, in-memory link, serial line):
 *
 *   proto_session_new(&cfg, now_ms, &s);  // then drain output: an initiator
 *                                         // sends HS_INIT first
 *   loop:
 *     on bytes (p, n) received:
 *       while (n > 0) {
 *           r = proto_session_feed(s, p, n, now_ms, &used, &ev);
 *           p += used; n -= used;
 *           if (r < 0) { flush output; close; }     // see proto_session_fail()
 *           if (r > 0) handle ev (HANDSHAKE_DONE or MESSAGE);
 *       }
 *     to send a message (after HANDSHAKE_DONE):
 *       proto_session_send(s, PROTO_MSG_..., body, len);
 *     after any call: while (proto_session_output(s, &buf, &len) > 0)
 *                         write buf to the link, free(buf) when written;
 *     on a timer: if (proto_session_tick(s, now_ms) < 0) close;
 *
 * Time is only ever what the caller passes (milliseconds, any monotonic
 * origin). Nothing here blocks, touches a socket or reads a clock.
 *
 * Handshake (three frames; details and byte tables in proto/PROTOCOL.md):
 *   1. HS_INIT    I -> R: versions, ephemeral e_i
 *   2. HS_RESP    R -> I: chosen version, ephemeral e_r,
 *                         AEAD_hs_r(HELLO_r, Sign(sk_r, transcript))
 *   3. HS_FINISH  I -> R: AEAD_hs_i(HELLO_i, Sign(sk_i, transcript))
 * Keys come from X25519(e_i, e_r) through keyed BLAKE2b over the transcript
 * hash, one key per direction. After step 3 every frame is SEALED:
 * AES-256-GCM when both HELLOs advertise PROTO_FEAT_HW_AES, else
 * XChaCha20-Poly1305, with a per-direction 64-bit counter as nonce that must
 * arrive strictly in order. There is no plaintext mode.
 *
 * A node id is the node's 32-byte Ed25519 public key.
 *
 * Thread safety: none; one session is used from one thread.
 *
 * Implemented by session.c (lifecycle, handshake), record.c (SEALED frames)
 * and identity.c (identities, provider-record signatures).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

enum proto_session_limits {
    PROTO_VERSION_MIN = 1,
    PROTO_VERSION_MAX = 1,
    PROTO_NODE_ID_LEN = 32,
    PROTO_SEED_LEN = 32,
    PROTO_SECRET_KEY_LEN = 64,
    PROTO_TRANSCRIPT_HASH_LEN = 32,
    /* Bytes a SEALED frame adds to a message body: frame header, counter,
     * type byte, AEAD tag. */
    PROTO_SEAL_OVERHEAD = PROTO_FRAME_HEADER_LEN + 8 + 1 + 16,
    /* Where proto_session_seal() expects an in-place body in its out buffer. */
    PROTO_SEAL_BODY_OFFSET = PROTO_FRAME_HEADER_LEN + 8 + 1,
    PROTO_HANDSHAKE_TIMEOUT_MS = 10000,
    /* A frame started but not finished for this long: the peer is stalling. */
    PROTO_STALL_TIMEOUT_MS = 30000,
};

/* Frames per direction between key ratchets (key' = BLAKE2b(key, label)). */
#define PROTO_REKEY_INTERVAL (UINT64_C(1) << 24)
/* The send counter never reaches this; the session fails with -EOVERFLOW
 * first and must be replaced by a new handshake. */
#define PROTO_COUNTER_LIMIT (UINT64_MAX - 1)

/* ---- Identity ---------------------------------------------------------- */

/* A node's Ed25519 identity; the secret half lives in sodium_malloc memory. */
typedef struct proto_identity proto_identity;

/* Generates a fresh identity. Returns 0, -ENOMEM. */
int proto_identity_generate(proto_identity **ret);

/* Derives the identity from a 32-byte seed (deterministic). Returns 0, -ENOMEM. */
int proto_identity_from_seed(const uint8_t seed[static PROTO_SEED_LEN], proto_identity **ret);

/* Copies the 32-byte seed out, e.g. to save it (caller wipes its copy). */
void proto_identity_seed(const proto_identity *id, uint8_t ret_seed[static PROTO_SEED_LEN]);

/* The node id (Ed25519 public key); valid for the identity's lifetime. */
const uint8_t *proto_identity_node_id(const proto_identity *id);

/* Wipes and frees; accepts NULL. */
void proto_identity_free(proto_identity *id);

/* Makes rec a provider record of this node: sets rec->node_id and signs
 * label || node_id || model_id || time || ttl_s (PROTOCOL.md, ANNOUNCE);
 * hops stays unsigned so relays can decrement it. The caller fills model_id,
 * time, ttl_s and hops first. Returns 0, -ENOMEM. */
int proto_provider_sign(const proto_identity *id, proto_provider_record *rec);

/* True when rec->sig is rec->node_id's signature over the record. Expiry
 * (time + ttl_s against the caller's clock) is the caller's check. */
bool proto_provider_verify(const proto_provider_record *rec);

/* ---- Session ----------------------------------------------------------- */

typedef struct proto_session proto_session;

enum proto_cipher {
    PROTO_CIPHER_NONE = 0, /* handshake not finished */
    PROTO_CIPHER_AES256GCM = 1,
    PROTO_CIPHER_XCHACHA20POLY1305 = 2,
    _PROTO_CIPHER_MAX,
};

enum proto_cipher_pref {
    PROTO_CIPHER_PREF_AUTO = 0,    /* advertise HW AES when this CPU has it */
    PROTO_CIPHER_PREF_XCHACHA = 1, /* never advertise HW AES (forces XChaCha) */
};

/* Called once the peer's signed HELLO verified; return false to refuse the
 * peer (bad-peer list). Must not call back into the session. */
typedef bool (*proto_peer_check_fn)(void *userdata, const uint8_t peer_id[PROTO_NODE_ID_LEN]);

typedef struct proto_session_config {
    const proto_identity *identity; /* required, borrowed: outlives the session */
    bool initiator;
    const uint8_t *expected_peer;   /* optional 32-byte pin (dialing a known peer) */
    proto_peer_check_fn peer_check; /* optional deny hook */
    void *userdata;                 /* for peer_check */
    uint8_t cipher_pref;            /* enum proto_cipher_pref */
    uint64_t features;              /* PROTO_FEAT_* to advertise; HW_AES is
                                     * set or cleared by the session itself */
    const char *agent;              /* optional printable text, <= PROTO_AGENT_MAX */
    size_t n_addrs;                 /* listen addresses to advertise */
    const char *const *addrs;       /* printable tokens, <= PROTO_ADDR_MAX each */
    uint32_t handshake_timeout_ms;  /* 0: PROTO_HANDSHAKE_TIMEOUT_MS */
    uint32_t stall_timeout_ms;      /* 0: PROTO_STALL_TIMEOUT_MS (raise it for
                                     * slow links: a full frame must arrive
                                     * within this time of its first byte) */
} proto_session_config;

enum proto_event_type {
    PROTO_EVENT_NONE = 0,
    PROTO_EVENT_HANDSHAKE_DONE = 1, /* peer authenticated; sending allowed */
    PROTO_EVENT_MESSAGE = 2,        /* a message of a known type arrived */
    _PROTO_EVENT_TYPE_MAX,
};

typedef struct proto_event {
    uint8_t type;        /* enum proto_event_type */
    uint8_t msg_type;    /* MESSAGE: enum proto_msg_type */
    const uint8_t *body; /* MESSAGE: plaintext body, valid until the next */
    size_t len;          /*   call into the session (decode it before)     */
} proto_event;

/* Why a session failed (for logs and tests); the errno says what class. */
enum proto_fail {
    PROTO_FAIL_NONE = 0,
    PROTO_FAIL_MALFORMED,     /* -EBADMSG  bad frame or handshake body */
    PROTO_FAIL_OVERSIZE,      /* -EMSGSIZE frame length over the limit */
    PROTO_FAIL_FRAME_VERSION, /* -EPROTO   unknown frame format version */
    PROTO_FAIL_STATE,         /* -EPROTO   frame not valid in this state */
    PROTO_FAIL_VERSION,       /* -EPROTONOSUPPORT no common protocol version */
    PROTO_FAIL_REJECTED,      /* -EPROTONOSUPPORT the peer sent HS_REJECT */
    PROTO_FAIL_BAD_KEY,       /* -EBADMSG  degenerate ephemeral key */
    PROTO_FAIL_DECRYPT,       /* -EBADMSG  AEAD tag mismatch (tampered) */
    PROTO_FAIL_SIGNATURE,     /* -EBADMSG  transcript signature invalid */
    PROTO_FAIL_PEER_MISMATCH, /* -EPERM    peer id is not the pinned one */
    PROTO_FAIL_PEER_DENIED,   /* -EACCES   peer_check refused the id */
    PROTO_FAIL_SELF,          /* -ELOOP    connected to ourselves */
    PROTO_FAIL_REPLAY,        /* -EPROTO   counter below the expected one */
    PROTO_FAIL_REORDER,       /* -EPROTO   counter above the expected one */
    PROTO_FAIL_TIMEOUT,       /* -ETIMEDOUT handshake or mid-frame stall */
    PROTO_FAIL_EXHAUSTED,     /* -EOVERFLOW send counter at its limit */
    PROTO_FAIL_NOMEM,         /* -ENOMEM */
    _PROTO_FAIL_MAX,
};

/*
 * Creates a session. now_ms starts the handshake deadline. An initiator
 * produces HS_INIT on the first proto_session_output(), _feed() or _tick().
 * Returns 0; -EINVAL for a bad config (no identity, over-long agent or
 * address, too many addresses); -ENOMEM.
 */
int proto_session_new(const proto_session_config *cfg, uint64_t now_ms, proto_session **ret);

/* Wipes all keys and frees the session and its queued output; accepts NULL. */
void proto_session_free(proto_session *s);

/*
 * Feeds received bytes (any split). Consumes up to and including the first
 * frame that yields an event; *ret_used (always written) says how many bytes.
 * Returns 1 with *ret_ev filled, 0 when all bytes were consumed without an
 * event, or a negative errno (see enum proto_fail). Frames of unknown type
 * and SEALED messages of unknown type are skipped silently.
 *
 * Errors are final: the session stays failed and every call returns the same
 * error. Output may still be queued (an HS_REJECT): flush it, then close.
 */
int proto_session_feed(proto_session *s, const uint8_t *buf, size_t len, uint64_t now_ms,
                       size_t *ret_used, proto_event *ret_ev);

/*
 * Checks deadlines: the handshake must finish within the handshake timeout of
 * proto_session_new(), and a started frame must complete within the stall
 * timeout of its first byte (so a peer trickling bytes cannot hold it open). Returns 0 or
 * -ETIMEDOUT (final, like feed errors).
 */
int proto_session_tick(proto_session *s, uint64_t now_ms);

/*
 * Seals one message and queues the frame for output. Only after
 * HANDSHAKE_DONE. Returns 0; -ENOTCONN before the handshake completes;
 * -EMSGSIZE when len > PROTO_MSG_MAX; -EOVERFLOW when the send counter is
 * exhausted (final); the session's error when it has failed; -ENOMEM.
 */
int proto_session_send(proto_session *s, uint8_t msg_type, const void *body, size_t len);

/*
 * Encodes m with proto_msg_encode() straight into a sealed frame and queues
 * it (one allocation, no extra copy). Returns as proto_session_send(), plus
 * -EINVAL for a message the encoder refuses (HELLO is never sent this way).
 */
int proto_session_send_msg(proto_session *s, const proto_msg *m);

/*
 * Seals one message into a caller buffer instead of the queue (no
 * allocation; proto_session_send_buf() queues such a buffer). out needs len + PROTO_SEAL_OVERHEAD
 * bytes. When body == out + PROTO_SEAL_BODY_OFFSET the body is sealed in place without a copy.
 * Frames leave in counter order: write everything proto_session_output() holds first, and this
 * frame before any frame sealed or queued later. Returns as proto_session_send(), plus -EMSGSIZE
 * when cap is too small.
 */
int proto_session_seal(proto_session *s, uint8_t msg_type, const void *body, size_t len,
                       uint8_t *out, size_t cap, size_t *ret_len);

/*
 * proto_session_send() for a body already in place at PROTO_SEAL_BODY_OFFSET
 * of buf, a malloc'd buffer of cap bytes: sealed there and queued without a
 * copy (the daemon's DATA path). The session owns buf from the call on, on
 * failure too. Returns as proto_session_seal().
 */
int proto_session_send_buf(proto_session *s, uint8_t msg_type, uint8_t *buf, size_t len,
                           size_t cap);

/*
 * Pops the oldest queued output. Returns 1 with *ret_buf (malloc'd, the
 * caller now owns it and free()s it once written) and *ret_len, or 0 when
 * nothing is queued.
 */
int proto_session_output(proto_session *s, uint8_t **ret_buf, size_t *ret_len);

/*
 * Memory: a session holds about 4 KiB plus one locked page-guarded block of
 * secrets, and while frames flow a receive buffer and a plaintext buffer of
 * up to PROTO_FRAME_MAX_BODY each. proto_session_trim() returns those two
 * buffers when no frame is in progress (call it when a peer goes idle).
 * Invalidates the body of the last MESSAGE event.
 */
void proto_session_trim(proto_session *s);

/*
 * Hands the caller the buffer that holds the last MESSAGE event's body, so
 * that a large message (DATA) is kept without a copy; the session allocates
 * another for the next frame. Call it before feeding more input. Writes the
 * buffer's size to *ret_cap; the caller free()s it. NULL when there is none
 * (the body of an event lies within [buffer, buffer + *ret_cap) otherwise).
 */
uint8_t *proto_session_take_message(proto_session *s, size_t *ret_cap);

/* True once the handshake has completed (and the session has not failed). */
bool proto_session_established(const proto_session *s);

/* The failure reason, PROTO_FAIL_NONE while healthy. */
int proto_session_fail(const proto_session *s);

/* Static English text for a proto_fail value ("replayed frame"). */
const char *proto_fail_str(int fail);

/* After HANDSHAKE_DONE: the negotiated cipher, else PROTO_CIPHER_NONE. */
int proto_session_cipher(const proto_session *s);

/* After HANDSHAKE_DONE: the negotiated protocol version, else 0. */
uint16_t proto_session_version(const proto_session *s);

/* After HANDSHAKE_DONE: the peer's node id (32 bytes), else NULL. Valid for
 * the session's lifetime. */
const uint8_t *proto_session_peer_id(const proto_session *s);

/* After HANDSHAKE_DONE: the peer's HELLO (addresses, features, agent), else
 * NULL. Its strings point into the session; valid for its lifetime. */
const proto_hello *proto_session_peer_hello(const proto_session *s);

/* After HANDSHAKE_DONE: the final transcript hash (32 bytes), identical on
 * both ends; usable as a channel binding. Else NULL. */
const uint8_t *proto_session_transcript_hash(const proto_session *s);

/* True when this CPU runs AES-256-GCM in hardware, so that a session with
 * PROTO_CIPHER_PREF_AUTO offers it (x86: AES-NI and PCLMULQDQ; arm64: AES
 * and PMULL). */
bool proto_hw_aes_available(void);

#endif
