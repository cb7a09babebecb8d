/* SPDX-License-Identifier: MIT */
/*
 * Record layer: SEALED frames after the handshake (PROTOCOL.md section 4).
 * Per-direction keys and 64-bit counters; the counter is the nonce, frames
 * must arrive in order, keys ratchet every rekey_interval frames.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/internal.h"
#include "proto/session.h"

static const uint8_t LABEL_REKEY[16] = "nvx-rekey-----v1";

static void
nonce_aes(uint8_t n[static crypto_aead_aes256gcm_NPUBBYTES], uint64_t ctr)
{
    memset(n, 0, crypto_aead_aes256gcm_NPUBBYTES);
    be64_store(n + crypto_aead_aes256gcm_NPUBBYTES - 8, ctr);
}

static void
nonce_xchacha(uint8_t n[static crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], uint64_t ctr)
{
    memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    be64_store(n + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES - 8, ctr);
}

static __attribute__((warn_unused_result)) bool
aes_key_init(const proto_session *s, union proto__aes_key *aes,
             const uint8_t key[static PROTO__KEY_LEN], bool seal)
{
    if (s->gcm_sodium)
        return crypto_aead_aes256gcm_beforenm(&aes->sodium, key) == 0;
    return proto__gcm_init(&aes->ossl, key, seal);
}

/* key' = BLAKE2b-256(key = key, LABEL_REKEY); the old key is overwritten, so
 * earlier frames stay safe if a later key leaks. */
static __attribute__((warn_unused_result)) bool
ratchet(proto_session *s, uint8_t key[static PROTO__KEY_LEN], union proto__aes_key *aes)
{
    uint8_t next[PROTO__KEY_LEN];
    if (crypto_generichash(next, PROTO__KEY_LEN, LABEL_REKEY, sizeof(LABEL_REKEY), key,
                           PROTO__KEY_LEN) != 0)
        return false;
    memcpy(key, next, PROTO__KEY_LEN);
    sodium_memzero(next, sizeof(next));
    if (s->cipher == PROTO_CIPHER_AES256GCM)
        return aes_key_init(s, aes, key, aes == &s->sec->aes_tx);
    return true;
}

/* Encrypts in place: c receives mlen + PROTO__TAG_LEN bytes over m == c. */
static __attribute__((warn_unused_result)) bool
record_encrypt(proto_session *s, uint8_t *c, size_t mlen, const uint8_t ad[static PROTO__SEAL_HDR],
               uint64_t ctr)
{
    if (s->cipher == PROTO_CIPHER_AES256GCM) {
        uint8_t n[crypto_aead_aes256gcm_NPUBBYTES];
        nonce_aes(n, ctr);
        if (!s->gcm_sodium)
            return proto__gcm_seal(&s->sec->aes_tx.ossl, c, c, mlen, ad, PROTO__SEAL_HDR, n);
        return crypto_aead_aes256gcm_encrypt_afternm(c, NULL, c, mlen, ad, PROTO__SEAL_HDR, NULL, n,
                                                     &s->sec->aes_tx.sodium) == 0;
    }
    uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    nonce_xchacha(n, ctr);
    return crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, c, mlen, ad, PROTO__SEAL_HDR, NULL,
                                                      n, s->sec->k_tx) == 0;
}

static __attribute__((warn_unused_result)) bool
record_decrypt(proto_session *s, uint8_t *m, const uint8_t *c, size_t clen,
               const uint8_t ad[static PROTO__SEAL_HDR], uint64_t ctr)
{
    if (s->cipher == PROTO_CIPHER_AES256GCM) {
        uint8_t n[crypto_aead_aes256gcm_NPUBBYTES];
        nonce_aes(n, ctr);
        if (!s->gcm_sodium)
            return proto__gcm_open(&s->sec->aes_rx.ossl, m, c, clen, ad, PROTO__SEAL_HDR, n);
        return crypto_aead_aes256gcm_decrypt_afternm(m, NULL, NULL, c, clen, ad, PROTO__SEAL_HDR, n,
                                                     &s->sec->aes_rx.sodium) == 0;
    }
    uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    nonce_xchacha(n, ctr);
    return crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, PROTO__SEAL_HDR,
                                                      n, s->sec->k_rx) == 0;
}

int
proto_session_seal(proto_session *s, uint8_t msg_type, const void *body, size_t len, uint8_t *out,
                   size_t cap, size_t *ret_len)
{
    if (s->state == PROTO__ST_FAILED)
        return s->err;
    if (s->state != PROTO__ST_ESTABLISHED)
        return -ENOTCONN;
    if (len > PROTO_MSG_MAX || cap < PROTO_SEAL_OVERHEAD || cap - PROTO_SEAL_OVERHEAD < len)
        return -EMSGSIZE;
    if (s->tx_ctr >= PROTO_COUNTER_LIMIT)
        return proto__session_fail(s, PROTO_FAIL_EXHAUSTED);
    uint64_t ctr = s->tx_ctr;
    if (ctr > 0 && ctr % s->rekey_interval == 0 && !ratchet(s, s->sec->k_tx, &s->sec->aes_tx))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    size_t blen = 8 + 1 + len + PROTO__TAG_LEN;
    (void)proto_frame_header_write(out, PROTO_FRAME_SEALED, blen);
    be64_store(out + PROTO_FRAME_HEADER_LEN, ctr);
    uint8_t *m = out + PROTO__SEAL_HDR;
    if (len && (const uint8_t *)body != m + 1)
        memmove(m + 1, body, len);
    m[0] = msg_type;
    if (!record_encrypt(s, m, 1 + len, out, ctr))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    s->tx_ctr = ctr + 1;
    *ret_len = PROTO_FRAME_HEADER_LEN + blen;
    return 0;
}

int
proto_session_send(proto_session *s, uint8_t msg_type, const void *body, size_t len)
{
    if (s->state == PROTO__ST_FAILED)
        return s->err;
    if (s->state != PROTO__ST_ESTABLISHED)
        return -ENOTCONN;
    if (len > PROTO_MSG_MAX)
        return -EMSGSIZE;
    size_t cap = len + PROTO_SEAL_OVERHEAD, n;
    uint8_t *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    int r = proto_session_seal(s, msg_type, body, len, b, cap, &n);
    if (r < 0) {
        free(b);
        return r;
    }
    r = proto__session_enqueue(s, b, n);
    return r < 0 ? proto__session_fail(s, PROTO_FAIL_NOMEM) : 0;
}

int
proto_session_send_buf(proto_session *s, uint8_t msg_type, uint8_t *buf, size_t len, size_t cap)
{
    size_t n;
    int r = proto_session_seal(s, msg_type, buf + PROTO_SEAL_BODY_OFFSET, len, buf, cap, &n);
    if (r < 0) {
        free(buf);
        return r;
    }
    r = proto__session_enqueue(s, buf, n);
    return r < 0 ? proto__session_fail(s, PROTO_FAIL_NOMEM) : 0;
}

int
proto_session_send_msg(proto_session *s, const proto_msg *m)
{
    size_t len;
    if (m->type == PROTO_MSG_HELLO)
        return -EINVAL;
    int r = proto_msg_encode(m, NULL, 0, &len);
    if (r < 0)
        return r;
    size_t cap = len + PROTO_SEAL_OVERHEAD;
    uint8_t *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    r = proto_msg_encode(m, b + PROTO_SEAL_BODY_OFFSET, len, &len);
    if (r < 0) {
        free(b);
        return r;
    }
    return proto_session_send_buf(s, m->type, b, len, cap);
}

int
proto__record_open(proto_session *s, const proto_frame *f, proto_event *ev)
{
    if (f->len < 8 + 1 + PROTO__TAG_LEN)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    uint64_t ctr = be64_load(f->body);
    /* The link is an ordered stream: exactly the next counter is valid. */
    if (ctr < s->rx_ctr)
        return proto__session_fail(s, PROTO_FAIL_REPLAY);
    if (ctr > s->rx_ctr)
        return proto__session_fail(s, PROTO_FAIL_REORDER);
    if (ctr > 0 && ctr % s->rekey_interval == 0 && !ratchet(s, s->sec->k_rx, &s->sec->aes_rx))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    size_t clen = f->len - 8, mlen = clen - PROTO__TAG_LEN;
    if (s->pt_cap < mlen) {
        uint8_t *p = malloc(mlen);
        if (!p)
            return proto__session_fail(s, PROTO_FAIL_NOMEM);
        if (s->pt) {
            sodium_memzero(s->pt, s->pt_cap);
            free(s->pt);
        }
        s->pt = p;
        s->pt_cap = mlen;
    }
    uint8_t ad[PROTO__SEAL_HDR];
    (void)proto_frame_header_write(ad, PROTO_FRAME_SEALED, f->len);
    memcpy(ad + PROTO_FRAME_HEADER_LEN, f->body, 8);
    if (!record_decrypt(s, s->pt, f->body + 8, clen, ad, ctr))
        return proto__session_fail(s, PROTO_FAIL_DECRYPT);
    s->rx_ctr = ctr + 1;
    if (!proto_msg_type_known(s->pt[0]))
        return 0; /* a newer peer's message: skip */
    ev->type = PROTO_EVENT_MESSAGE;
    ev->msg_type = s->pt[0];
    ev->body = s->pt + 1;
    ev->len = mlen - 1;
    return 1;
}

bool
proto__record_start(proto_session *s)
{
    if (s->cipher != PROTO_CIPHER_AES256GCM)
        return true;
    s->gcm_sodium = s->gcm_sodium_only && crypto_aead_aes256gcm_is_available();
    /* sodium_malloc fills with garbage: OpenSSL contexts start from NULL. */
    memset(&s->sec->aes_tx, 0, sizeof(s->sec->aes_tx));
    memset(&s->sec->aes_rx, 0, sizeof(s->sec->aes_rx));
    return aes_key_init(s, &s->sec->aes_tx, s->sec->k_tx, true) &&
           aes_key_init(s, &s->sec->aes_rx, s->sec->k_rx, false);
}

void
proto__record_free(proto_session *s)
{
    if (s->sec && s->cipher == PROTO_CIPHER_AES256GCM && !s->gcm_sodium) {
        proto__gcm_free(&s->sec->aes_tx.ossl);
        proto__gcm_free(&s->sec->aes_rx.ossl);
    }
}

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

bool
proto__aes_hw(void)
{
#if defined(__aarch64__) && defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP);
    return (hw & (1UL << 3)) && (hw & (1UL << 4)); /* HWCAP_AES, HWCAP_PMULL */
#else
    return crypto_aead_aes256gcm_is_available() != 0; /* x86: AES-NI and PCLMULQDQ */
#endif
}
