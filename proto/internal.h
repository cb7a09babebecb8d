/* SPDX-License-Identifier: MIT */
#ifndef NVX_PROTO_INTERNAL_H
#define NVX_PROTO_INTERNAL_H
/*
 * Cross-file internals of proto/: bounds-checked cursors over untrusted bytes
 * and big-endian loads/stores. Not part of the public API; the test hooks at
 * the end are exported only for tests/proto.
 *
 * Every reader getter checks `len - off >= n` (subtraction form, so it cannot
 * overflow) before touching a byte and returns -EBADMSG otherwise. Writers
 * are sticky: the first overflow sets err = -EMSGSIZE and later puts do
 * nothing, so an encoder checks once at the end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "common/bytes.h"
#include "proto/frame.h"
#include "proto/message.h"
#include "proto/session.h"

typedef struct proto__rd {
    const uint8_t *p;
    size_t len;
    size_t off;
} proto__rd;

static inline size_t
proto__rd_left(const proto__rd *r)
{
    return r->len - r->off;
}

/* Borrows n bytes at the cursor: *ret points into the reader's buffer. */
static inline int
proto__rd_bytes(proto__rd *r, size_t n, const uint8_t **ret)
{
    if (r->len - r->off < n)
        return -EBADMSG;
    /* No arithmetic on a NULL buffer (empty input): that is UB even for +0. */
    *ret = r->p ? r->p + r->off : r->p;
    r->off += n;
    return 0;
}

static inline int
proto__rd_u8(proto__rd *r, uint8_t *ret)
{
    if (r->len - r->off < 1)
        return -EBADMSG;
    *ret = r->p[r->off++];
    return 0;
}

static inline int
proto__rd_u16(proto__rd *r, uint16_t *ret)
{
    if (r->len - r->off < 2)
        return -EBADMSG;
    *ret = be16_load(r->p + r->off);
    r->off += 2;
    return 0;
}

static inline int
proto__rd_u32(proto__rd *r, uint32_t *ret)
{
    if (r->len - r->off < 4)
        return -EBADMSG;
    *ret = be32_load(r->p + r->off);
    r->off += 4;
    return 0;
}

static inline int
proto__rd_u64(proto__rd *r, uint64_t *ret)
{
    if (r->len - r->off < 8)
        return -EBADMSG;
    *ret = be64_load(r->p + r->off);
    r->off += 8;
    return 0;
}

typedef struct proto__wr {
    uint8_t *p; /* may be NULL with cap 0: then the writer only counts */
    size_t cap;
    size_t off;
    int err;
} proto__wr;

static inline void
proto__wr_bytes(proto__wr *w, const void *src, size_t n)
{
    if (w->err < 0)
        return;
    if (w->p && w->cap - w->off < n) {
        w->err = -EMSGSIZE;
        return;
    }
    if (w->p && n)
        memcpy(w->p + w->off, src, n);
    w->off += n;
}

static inline void
proto__wr_u8(proto__wr *w, uint8_t v)
{
    proto__wr_bytes(w, &v, 1);
}

static inline void
proto__wr_u16(proto__wr *w, uint16_t v)
{
    uint8_t b[2];
    be16_store(b, v);
    proto__wr_bytes(w, b, 2);
}

static inline void
proto__wr_u32(proto__wr *w, uint32_t v)
{
    uint8_t b[4];
    be32_store(b, v);
    proto__wr_bytes(w, b, 4);
}

static inline void
proto__wr_u64(proto__wr *w, uint64_t v)
{
    uint8_t b[8];
    be64_store(b, v);
    proto__wr_bytes(w, b, 8);
}

/* True when every byte is printable ASCII (0x21..0x7e), i.e. safe to log and
 * free of spaces and control characters. */
static inline bool
proto__is_token(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

/* Like proto__is_token but also allows the space (0x20): human text. */
static inline bool
proto__is_text(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

/* ---- Session internals (session.c, record.c, identity.c) ---------------- */

enum proto__session_consts {
    PROTO__KEY_LEN = 32,
    PROTO__SIG_LEN = crypto_sign_BYTES,
    PROTO__TAG_LEN = 16,
    PROTO__HELLO_MAX = PROTO_ID_LEN + 2 + 2 + 8 + 1 + PROTO_AGENT_MAX + 1 +
                       PROTO_HELLO_ADDRS_MAX * (1 + PROTO_ADDR_MAX),
    PROTO__SEAL_HDR = PROTO_FRAME_HEADER_LEN + 8,
};

enum proto__state {
    PROTO__ST_I_START,     /* initiator, HS_INIT not yet produced */
    PROTO__ST_I_SENT_INIT, /* initiator, waiting for HS_RESP */
    PROTO__ST_R_WAIT_INIT, /* responder, waiting for HS_INIT */
    PROTO__ST_R_SENT_RESP, /* responder, waiting for HS_FINISH */
    PROTO__ST_ESTABLISHED,
    PROTO__ST_FAILED,
};

struct proto__identity_secret {
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
};

struct proto_identity {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    struct proto__identity_secret *sec; /* sodium_malloc */
};

enum proto__gcm_consts {
    PROTO__GCM_NPUB = 12,
    PROTO__GCM_TAG = 16,
};
/* SP 800-38D: at most 2^32 - 2 blocks, so the 32-bit counter never wraps. */
#define PROTO__GCM_MSG_MAX ((((uint64_t)1 << 32) - 2) * 16)

/* An AES-256-GCM key for proto__gcm_*: an OpenSSL cipher context (which
 * holds the expanded key) set up to seal or to open. */
struct evp_cipher_ctx_st;
struct proto__gcm_key {
    struct evp_cipher_ctx_st *ctx;
    bool keyed;
};

/* One direction's AES-256-GCM key, in the form of whichever implementation
 * the session uses (s->gcm_sodium: libsodium, a test hook; else OpenSSL). */
union proto__aes_key {
    crypto_aead_aes256gcm_state sodium;
    struct proto__gcm_key ossl;
};

/* sodium_malloc places the block against a guard page, so its address is
 * only as aligned as its size. libsodium declares its state types with
 * CRYPTO_ALIGN (64 for BLAKE2b, 16 for AES), which makes the struct size a
 * multiple of 64, so the block comes back 64-byte aligned (asserted below). */
struct proto__secrets {
    crypto_generichash_state th;  /* running transcript hash */
    crypto_generichash_state tmp; /* snapshot for h1..h3 */
    _Alignas(64) union proto__aes_key aes_tx;
    _Alignas(64) union proto__aes_key aes_rx;
    uint8_t e_sk[PROTO__KEY_LEN];
    uint8_t dh[PROTO__KEY_LEN];
    uint8_t hs_i2r[PROTO__KEY_LEN];
    uint8_t hs_r2i[PROTO__KEY_LEN];
    uint8_t k_tx[PROTO__KEY_LEN];
    uint8_t k_rx[PROTO__KEY_LEN];
};
_Static_assert(sizeof(struct proto__secrets) % 64 == 0, "sodium_malloc alignment");

struct proto__outbuf {
    struct proto__outbuf *next;
    uint8_t *buf;
    size_t len;
};

struct proto_session {
    const proto_identity *id;
    bool initiator;
    enum proto__state state;
    int err;  /* negative errno once failed */
    int fail; /* enum proto_fail */

    bool has_pin;
    uint8_t pin[PROTO_NODE_ID_LEN];
    proto_peer_check_fn peer_check;
    void *userdata;

    uint8_t hello[PROTO__HELLO_MAX]; /* our encoded HELLO */
    size_t hello_len;
    uint64_t features;

    uint8_t e_pk[PROTO__KEY_LEN];
    uint8_t peer_e[PROTO__KEY_LEN];
    uint8_t h1[PROTO_TRANSCRIPT_HASH_LEN]; /* AD of the sealed handshake parts */
    uint8_t th_final[PROTO_TRANSCRIPT_HASH_LEN];
    uint16_t peer_vmin, peer_vmax; /* from HS_INIT (responder) */
    uint16_t version;
    int cipher;
    bool gcm_sodium;      /* AES-256-GCM through libsodium, not OpenSSL (gcm.c) */
    bool gcm_sodium_only; /* test hook: libsodium where the CPU allows */

    uint8_t peer_id[PROTO_NODE_ID_LEN];
    uint8_t *peer_hello_buf; /* copy the decoded peer_hello points into */
    proto_hello peer_hello;

    uint64_t tx_ctr, rx_ctr, rekey_interval;

    proto_frame_decoder dec;
    uint64_t hs_deadline;
    uint32_t stall_ms;
    bool in_frame;
    uint64_t frame_start;

    struct proto__outbuf *out_head, *out_tail;
    uint8_t *pt; /* decrypted message buffer */
    size_t pt_cap;

    struct proto__secrets *sec;
};

/* sodium_init() once; -ENOMEM when libsodium cannot start. */
int proto__sodium_ready(void);

/* Moves the session to FAILED, wipes its keys, returns the errno. */
int proto__session_fail(proto_session *s, int why);

/* Appends a frame (malloc'd, ownership passes) to the output queue. */
int proto__session_enqueue(proto_session *s, uint8_t *buf, size_t len);

/* Prepares the record layer once the handshake has chosen s->cipher and put
 * the traffic keys in place (AES key schedules). */
__attribute__((warn_unused_result)) bool proto__record_start(proto_session *s);
/* Releases the record layer's keys (before the secrets block is freed). */
void proto__record_free(proto_session *s);

/* AES-256-GCM through OpenSSL (gcm.c), the same bytes as libsodium's
 * crypto_aead_aes256gcm_*. init: keys k for sealing or opening (again with
 * a new key after a ratchet); false on allocation failure. free: releases
 * and cleanses it (a zeroed k is fine). seal: c receives mlen bytes and the
 * 16-byte tag, c may equal m; false past PROTO__GCM_MSG_MAX. open: clen
 * includes the tag; m (may equal c) receives clen - 16 bytes; false when
 * the tag is wrong (m is wiped then) or the length is out of range. */
__attribute__((warn_unused_result)) bool
proto__gcm_init(struct proto__gcm_key *k, const uint8_t key[static PROTO__KEY_LEN], bool seal);
void proto__gcm_free(struct proto__gcm_key *k);
__attribute__((warn_unused_result)) bool
proto__gcm_seal(struct proto__gcm_key *k, uint8_t *c, const uint8_t *m, size_t mlen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB]);
__attribute__((warn_unused_result)) bool
proto__gcm_open(struct proto__gcm_key *k, uint8_t *m, const uint8_t *c, size_t clen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB]);

/* True when this CPU runs AES-GCM in hardware (x86 AES-NI + PCLMULQDQ,
 * ARMv8 AES + PMULL): the node then offers PROTO_FEAT_HW_AES. Elsewhere
 * sessions use XChaCha20-Poly1305, which is fast and constant-time in
 * software. */
bool proto__aes_hw(void);

/* Opens one SEALED frame: 1 with a MESSAGE event, 0 when skipped, <0 failed. */
int proto__record_open(proto_session *s, const proto_frame *f, proto_event *ev);

/* Test hooks (tests/proto only). */

/* Replaces the ephemeral X25519 key the session will use (before the first
 * handshake frame is produced), so tests get deterministic transcripts. */
void proto__session_set_ephemeral(proto_session *s, const uint8_t sk[static 32]);

/* Sets how many frames a direction sends before its key ratchets. */
void proto__session_set_rekey_interval(proto_session *s, uint64_t frames);

/* Makes the session claim another node id in its HELLO while still signing
 * with its own key: an impersonation attempt the peer must reject. */
void proto__session_set_hello_node_id(proto_session *s, const uint8_t id[static 32]);

/* Makes the session use libsodium's AES-256-GCM even where gcm.c could run
 * (before the handshake ends), so tests pair the two implementations. */
void proto__session_set_gcm_sodium_only(proto_session *s);

/* Moves the send counter (to test the close-before-wrap limit). */
void proto__session_set_send_counter(proto_session *s, uint64_t counter);

#endif
