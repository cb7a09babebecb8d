/* SPDX-License-Identifier: MIT */
/*
 * Session lifecycle and handshake. The protocol steps are labelled as in
 * session.h and proto/PROTOCOL.md ("step 1", "step 2", ...). The record
 * layer (SEALED frames) is in record.c, identities in identity.c; the
 * shared session struct is in internal.h.
 *
 * All secrets (ephemeral key, DH output, handshake and traffic keys, AES key
 * schedules, the transcript state) live in one sodium_malloc'd block that is
 * wiped on free; the identity's secret key lives in its own.
 */
#include "proto/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/frame.h"
#include "proto/internal.h"
#include "proto/message.h"

/* Domain-separation labels; fixed 16-byte strings, never NUL-terminated on
 * the wire. */
static const uint8_t LABEL_TRANSCRIPT[16] = "nvx-handshake-v1";
static const uint8_t LABEL_HS_KEYS[16] = "nvx-hs-keys---v1";
static const uint8_t LABEL_TRAFFIC[16] = "nvx-traffic---v1";
static const uint8_t LABEL_SIG_RESP[16] = "nvx-sig-resp--v1";
static const uint8_t LABEL_SIG_INIT[16] = "nvx-sig-init--v1";
static const uint8_t HS_MAGIC[4] = { 'n', 'v', 'x', 'h' };

enum {
    HS_INIT_LEN = 4 + 2 + 2 + 32,
    HS_RESP_FIXED = 2 + 32,
    HS_REJECT_LEN = 1 + 2 + 2,
};

/* ---- crypto steps (bool, must be checked) ------------------------------ */

/* Keyed BLAKE2b-512 of label || h, split into two 32-byte keys. */
static __attribute__((warn_unused_result)) bool
kdf2(uint8_t a[static PROTO__KEY_LEN], uint8_t b[static PROTO__KEY_LEN],
     const uint8_t key[static PROTO__KEY_LEN], const uint8_t label[static 16],
     const uint8_t h[static PROTO_TRANSCRIPT_HASH_LEN])
{
    uint8_t in[16 + PROTO_TRANSCRIPT_HASH_LEN], out[2 * PROTO__KEY_LEN];
    memcpy(in, label, 16);
    memcpy(in + 16, h, PROTO_TRANSCRIPT_HASH_LEN);
    bool ok = crypto_generichash(out, sizeof(out), in, sizeof(in), key, PROTO__KEY_LEN) == 0;
    memcpy(a, out, PROTO__KEY_LEN);
    memcpy(b, out + PROTO__KEY_LEN, PROTO__KEY_LEN);
    sodium_memzero(out, sizeof(out));
    return ok;
}

/* X25519; false for a low-order peer key (all-zero shared secret). */
static __attribute__((warn_unused_result)) bool
mix_dh(uint8_t out[static PROTO__KEY_LEN], const uint8_t sk[static PROTO__KEY_LEN],
       const uint8_t pk[static PROTO__KEY_LEN])
{
    return crypto_scalarmult(out, sk, pk) == 0;
}

static __attribute__((warn_unused_result)) bool
sign_transcript(uint8_t sig[static PROTO__SIG_LEN], const proto_identity *id,
                const uint8_t label[static 16], const uint8_t h[static PROTO_TRANSCRIPT_HASH_LEN])
{
    uint8_t m[16 + PROTO_TRANSCRIPT_HASH_LEN];
    memcpy(m, label, 16);
    memcpy(m + 16, h, PROTO_TRANSCRIPT_HASH_LEN);
    return crypto_sign_detached(sig, NULL, m, sizeof(m), id->sec->sk) == 0;
}

static __attribute__((warn_unused_result)) bool
verify_transcript(const uint8_t sig[static PROTO__SIG_LEN],
                  const uint8_t pk[static PROTO_NODE_ID_LEN], const uint8_t label[static 16],
                  const uint8_t h[static PROTO_TRANSCRIPT_HASH_LEN])
{
    uint8_t m[16 + PROTO_TRANSCRIPT_HASH_LEN];
    memcpy(m, label, 16);
    memcpy(m + 16, h, PROTO_TRANSCRIPT_HASH_LEN);
    return crypto_sign_verify_detached(sig, m, sizeof(m), pk) == 0;
}

static void
th_absorb(proto_session *s, const uint8_t *p, size_t n)
{
    crypto_generichash_update(&s->sec->th, p, n);
}

/* Snapshot of the running transcript hash (h1, h2, h3 in PROTOCOL.md). */
static void
th_snapshot(proto_session *s, uint8_t out[static PROTO_TRANSCRIPT_HASH_LEN])
{
    s->sec->tmp = s->sec->th;
    crypto_generichash_final(&s->sec->tmp, out, PROTO_TRANSCRIPT_HASH_LEN);
}

/* The handshake's sealed parts use XChaCha20-Poly1305 with a zero nonce: each
 * handshake key seals exactly one message. */
static __attribute__((warn_unused_result)) bool
hs_seal(uint8_t *c, const uint8_t *m, size_t mlen, const uint8_t ad[static 32],
        const uint8_t key[static PROTO__KEY_LEN])
{
    static const uint8_t zero[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    return crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, mlen, ad, 32, NULL, zero, key) ==
           0;
}

static __attribute__((warn_unused_result)) bool
hs_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t ad[static 32],
        const uint8_t key[static PROTO__KEY_LEN])
{
    static const uint8_t zero[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    return crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, 32, zero, key) ==
           0;
}

/* ---- failure ----------------------------------------------------------- */

static const struct {
    int err;
    const char *text;
} fail_table[_PROTO_FAIL_MAX] = {
    [PROTO_FAIL_NONE] = { 0, "no error" },
    [PROTO_FAIL_MALFORMED] = { -EBADMSG, "malformed frame" },
    [PROTO_FAIL_OVERSIZE] = { -EMSGSIZE, "frame over the size limit" },
    [PROTO_FAIL_FRAME_VERSION] = { -EPROTO, "unknown frame format version" },
    [PROTO_FAIL_STATE] = { -EPROTO, "unexpected frame for the session state" },
    [PROTO_FAIL_VERSION] = { -EPROTONOSUPPORT, "no common protocol version" },
    [PROTO_FAIL_REJECTED] = { -EPROTONOSUPPORT, "peer rejected the handshake (version)" },
    [PROTO_FAIL_BAD_KEY] = { -EBADMSG, "degenerate ephemeral key" },
    [PROTO_FAIL_DECRYPT] = { -EBADMSG, "authentication failed (tampered frame)" },
    [PROTO_FAIL_SIGNATURE] = { -EBADMSG, "bad transcript signature" },
    [PROTO_FAIL_PEER_MISMATCH] = { -EPERM, "peer is not the expected node" },
    [PROTO_FAIL_PEER_DENIED] = { -EACCES, "peer is denied" },
    [PROTO_FAIL_SELF] = { -ELOOP, "connected to ourselves" },
    [PROTO_FAIL_REPLAY] = { -EPROTO, "replayed frame" },
    [PROTO_FAIL_REORDER] = { -EPROTO, "frame out of order" },
    [PROTO_FAIL_TIMEOUT] = { -ETIMEDOUT, "timed out" },
    [PROTO_FAIL_EXHAUSTED] = { -EOVERFLOW, "send counter exhausted" },
    [PROTO_FAIL_NOMEM] = { -ENOMEM, "out of memory" },
};

const char *
proto_fail_str(int fail)
{
    if (fail < 0 || fail >= _PROTO_FAIL_MAX)
        return "?";
    return fail_table[fail].text;
}

/* Moves the session to FAILED and wipes its keys; returns the errno. */
int
proto__session_fail(proto_session *s, int why)
{
    if (s->state == PROTO__ST_FAILED)
        return s->err;
    s->state = PROTO__ST_FAILED;
    s->fail = why;
    s->err = fail_table[why].err;
    proto__record_free(s); /* OpenSSL's key contexts, before their pointers go */
    sodium_memzero(s->sec, sizeof(*s->sec));
    return s->err;
}

/* ---- output queue ------------------------------------------------------ */

int
proto__session_enqueue(proto_session *s, uint8_t *buf, size_t len)
{
    struct proto__outbuf *o = malloc(sizeof(*o));
    if (!o) {
        free(buf);
        return -ENOMEM;
    }
    o->next = NULL;
    o->buf = buf;
    o->len = len;
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    return 0;
}

static int send_init(proto_session *s);

int
proto_session_output(proto_session *s, uint8_t **ret_buf, size_t *ret_len)
{
    if (s->state == PROTO__ST_I_START)
        (void)send_init(s); /* on failure the session is failed; nothing queued */
    struct proto__outbuf *o = s->out_head;
    if (!o)
        return 0;
    s->out_head = o->next;
    if (!s->out_head)
        s->out_tail = NULL;
    *ret_buf = o->buf;
    *ret_len = o->len;
    free(o);
    return 1;
}

/* ---- setup ------------------------------------------------------------- */

static int
hello_build(proto_session *s, const proto_session_config *cfg)
{
    proto_msg m = { .type = PROTO_MSG_HELLO };
    proto_hello *h = &m.u.hello;

    if (cfg->n_addrs > PROTO_HELLO_ADDRS_MAX || (cfg->n_addrs && !cfg->addrs))
        return -EINVAL;
    memcpy(h->node_id, s->id->pk, PROTO_ID_LEN);
    h->version_min = PROTO_VERSION_MIN;
    h->version_max = PROTO_VERSION_MAX;
    h->features = s->features;
    if (cfg->agent) {
        h->agent.p = (const uint8_t *)cfg->agent;
        h->agent.len = strlen(cfg->agent);
    }
    h->n_addrs = cfg->n_addrs;
    for (size_t i = 0; i < cfg->n_addrs; i++) {
        if (!cfg->addrs[i])
            return -EINVAL;
        h->addrs[i].p = (const uint8_t *)cfg->addrs[i];
        h->addrs[i].len = strlen(cfg->addrs[i]);
    }
    return proto_msg_encode(&m, s->hello, sizeof(s->hello), &s->hello_len) < 0 ? -EINVAL : 0;
}

int
proto_session_new(const proto_session_config *cfg, uint64_t now_ms, proto_session **ret)
{
    proto_session *s = NULL;
    int r = proto__sodium_ready();
    if (r < 0)
        return r;
    if (!cfg || !cfg->identity || cfg->cipher_pref > PROTO_CIPHER_PREF_XCHACHA)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->sec = sodium_malloc(sizeof(*s->sec));
    if (!s->sec) {
        free(s);
        return -ENOMEM;
    }
    s->id = cfg->identity;
    s->initiator = cfg->initiator;
    s->state = cfg->initiator ? PROTO__ST_I_START : PROTO__ST_R_WAIT_INIT;
    if (cfg->expected_peer) {
        s->has_pin = true;
        memcpy(s->pin, cfg->expected_peer, PROTO_NODE_ID_LEN);
    }
    s->peer_check = cfg->peer_check;
    s->userdata = cfg->userdata;
    s->features = cfg->features & ~(uint64_t)PROTO_FEAT_HW_AES;
    if (cfg->cipher_pref == PROTO_CIPHER_PREF_AUTO && proto__aes_hw())
        s->features |= PROTO_FEAT_HW_AES;
    s->rekey_interval = PROTO_REKEY_INTERVAL;
    s->hs_deadline = now_ms + (cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                                         : PROTO_HANDSHAKE_TIMEOUT_MS);
    s->stall_ms = cfg->stall_timeout_ms ? cfg->stall_timeout_ms : PROTO_STALL_TIMEOUT_MS;
    r = hello_build(s, cfg);
    if (r < 0) {
        proto_session_free(s);
        return r;
    }
    crypto_box_keypair(s->e_pk, s->sec->e_sk); /* X25519 */
    crypto_generichash_init(&s->sec->th, NULL, 0, PROTO_TRANSCRIPT_HASH_LEN);
    th_absorb(s, LABEL_TRANSCRIPT, sizeof(LABEL_TRANSCRIPT));
    *ret = s;
    return 0;
}

void
proto_session_free(proto_session *s)
{
    if (!s)
        return;
    for (struct proto__outbuf *o = s->out_head, *next; o; o = next) {
        next = o->next;
        free(o->buf);
        free(o);
    }
    proto_frame_decoder_reset(&s->dec);
    if (s->pt) {
        sodium_memzero(s->pt, s->pt_cap);
        free(s->pt);
    }
    free(s->peer_hello_buf);
    proto__record_free(s);
    sodium_free(s->sec);
    free(s);
}

void
proto__session_set_ephemeral(proto_session *s, const uint8_t sk[static 32])
{
    memcpy(s->sec->e_sk, sk, PROTO__KEY_LEN);
    crypto_scalarmult_base(s->e_pk, s->sec->e_sk);
}

void
proto__session_set_rekey_interval(proto_session *s, uint64_t frames)
{
    s->rekey_interval = frames;
}

void
proto__session_set_gcm_sodium_only(proto_session *s)
{
    s->gcm_sodium_only = true;
}

void
proto__session_set_hello_node_id(proto_session *s, const uint8_t id[static 32])
{
    memcpy(s->hello, id, PROTO_ID_LEN); /* the node id opens the HELLO */
}

void
proto__session_set_send_counter(proto_session *s, uint64_t counter)
{
    s->tx_ctr = counter;
}

/* Queues a plaintext handshake frame and absorbs it into the transcript
 * (absorb_len bytes of it: all but the sealed tail). */
static int
queue_hs_frame(proto_session *s, uint8_t type, const uint8_t *body, size_t len, size_t absorb_len)
{
    uint8_t *f = malloc(PROTO_FRAME_HEADER_LEN + len);
    size_t flen;
    if (!f)
        return -ENOMEM;
    int r = proto_frame_encode(type, body, len, f, PROTO_FRAME_HEADER_LEN + len, &flen);
    if (r < 0) {
        free(f);
        return r;
    }
    th_absorb(s, f, PROTO_FRAME_HEADER_LEN + absorb_len);
    return proto__session_enqueue(s, f, flen);
}

/* ---- step 1: HS_INIT (initiator) ---------------------------------------- */

static int
send_init(proto_session *s)
{
    uint8_t b[HS_INIT_LEN];
    memcpy(b, HS_MAGIC, 4);
    be16_store(b + 4, PROTO_VERSION_MIN);
    be16_store(b + 6, PROTO_VERSION_MAX);
    memcpy(b + 8, s->e_pk, PROTO__KEY_LEN);
    int r = queue_hs_frame(s, PROTO_FRAME_HS_INIT, b, sizeof(b), sizeof(b));
    if (r < 0)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    s->state = PROTO__ST_I_SENT_INIT;
    return 0;
}

/* ---- peer identity checks (steps 2 and 3) ------------------------------- */

/* Decrypts and checks a sealed HELLO || signature: decodes the HELLO, absorbs
 * it, verifies the signature over the transcript, absorbs the signature and
 * applies self/pin/deny rules. Keeps a copy of the HELLO for the caller. */
static int
accept_peer_hello(proto_session *s, const uint8_t *c, size_t clen, const uint8_t key[static 32],
                  const uint8_t label[static 16])
{
    uint8_t h[PROTO_TRANSCRIPT_HASH_LEN];
    if (clen < PROTO__SIG_LEN + PROTO__TAG_LEN ||
        clen - PROTO__SIG_LEN - PROTO__TAG_LEN > PROTO__HELLO_MAX)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    size_t plen = clen - PROTO__TAG_LEN, hlen = plen - PROTO__SIG_LEN;
    uint8_t *p = malloc(plen);
    if (!p)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    if (!hs_open(p, c, clen, s->h1, key)) {
        free(p);
        return proto__session_fail(s, PROTO_FAIL_DECRYPT);
    }
    free(s->peer_hello_buf);
    s->peer_hello_buf = p; /* the decoded HELLO points into p */
    proto_msg m;
    if (proto_msg_decode(PROTO_MSG_HELLO, p, hlen, &m) < 0)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    s->peer_hello = m.u.hello;
    th_absorb(s, p, hlen);
    th_snapshot(s, h);
    if (!verify_transcript(p + hlen, s->peer_hello.node_id, label, h))
        return proto__session_fail(s, PROTO_FAIL_SIGNATURE);
    th_absorb(s, p + hlen, PROTO__SIG_LEN);
    memcpy(s->peer_id, s->peer_hello.node_id, PROTO_NODE_ID_LEN);
    if (sodium_memcmp(s->peer_id, s->id->pk, PROTO_NODE_ID_LEN) == 0)
        return proto__session_fail(s, PROTO_FAIL_SELF);
    if (s->has_pin && sodium_memcmp(s->peer_id, s->pin, PROTO_NODE_ID_LEN) != 0)
        return proto__session_fail(s, PROTO_FAIL_PEER_MISMATCH);
    if (s->peer_check && !s->peer_check(s->userdata, s->peer_id))
        return proto__session_fail(s, PROTO_FAIL_PEER_DENIED);
    return 0;
}

/* Appends our HELLO and Sign(transcript) sealed under key to out (which has
 * room for hello_len + PROTO__SIG_LEN + PROTO__TAG_LEN bytes). */
static int
seal_own_hello(proto_session *s, uint8_t *out, const uint8_t key[static 32],
               const uint8_t label[static 16])
{
    uint8_t h[PROTO_TRANSCRIPT_HASH_LEN], p[PROTO__HELLO_MAX + PROTO__SIG_LEN];
    memcpy(p, s->hello, s->hello_len);
    th_absorb(s, s->hello, s->hello_len);
    th_snapshot(s, h);
    if (!sign_transcript(p + s->hello_len, s->id, label, h))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    th_absorb(s, p + s->hello_len, PROTO__SIG_LEN);
    if (!hs_seal(out, p, s->hello_len + PROTO__SIG_LEN, s->h1, key))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    return 0;
}

/* Both HELLOs are known: pick the cipher and derive the traffic keys from the
 * final transcript hash. */
static int
establish(proto_session *s)
{
    struct proto__secrets *k = s->sec;
    crypto_generichash_final(&k->th, s->th_final, PROTO_TRANSCRIPT_HASH_LEN);
    uint8_t i2r[PROTO__KEY_LEN], r2i[PROTO__KEY_LEN];
    if (!kdf2(i2r, r2i, k->dh, LABEL_TRAFFIC, s->th_final))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    memcpy(k->k_tx, s->initiator ? i2r : r2i, PROTO__KEY_LEN);
    memcpy(k->k_rx, s->initiator ? r2i : i2r, PROTO__KEY_LEN);
    sodium_memzero(i2r, sizeof(i2r));
    sodium_memzero(r2i, sizeof(r2i));
    /* The handshake secrets are no longer needed. */
    sodium_memzero(k->e_sk, PROTO__KEY_LEN);
    sodium_memzero(k->dh, PROTO__KEY_LEN);
    sodium_memzero(k->hs_i2r, PROTO__KEY_LEN);
    sodium_memzero(k->hs_r2i, PROTO__KEY_LEN);
    bool aes = (s->features & s->peer_hello.features & PROTO_FEAT_HW_AES) && proto__aes_hw();
    s->cipher = aes ? PROTO_CIPHER_AES256GCM : PROTO_CIPHER_XCHACHA20POLY1305;
    if (!proto__record_start(s))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    s->state = PROTO__ST_ESTABLISHED;
    return 0;
}

/* ---- step 2: responder gets HS_INIT, sends HS_RESP ----------------------- */

static int
reject_version(proto_session *s)
{
    uint8_t b[HS_REJECT_LEN] = { 1 };
    be16_store(b + 1, PROTO_VERSION_MIN);
    be16_store(b + 3, PROTO_VERSION_MAX);
    (void)queue_hs_frame(s, PROTO_FRAME_HS_REJECT, b, sizeof(b), 0);
    return proto__session_fail(s, PROTO_FAIL_VERSION);
}

static int
on_init(proto_session *s, const proto_frame *f)
{
    if (f->len != HS_INIT_LEN || memcmp(f->body, HS_MAGIC, 4) != 0)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    uint16_t vmin = be16_load(f->body + 4), vmax = be16_load(f->body + 6);
    if (vmin == 0 || vmin > vmax)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    uint16_t v = vmax < PROTO_VERSION_MAX ? vmax : PROTO_VERSION_MAX;
    if (v < vmin || v < PROTO_VERSION_MIN)
        return reject_version(s);
    s->peer_vmin = vmin;
    s->peer_vmax = vmax;
    s->version = v;
    memcpy(s->peer_e, f->body + 8, PROTO__KEY_LEN);
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    (void)proto_frame_header_write(hdr, PROTO_FRAME_HS_INIT, f->len);
    th_absorb(s, hdr, sizeof(hdr));
    th_absorb(s, f->body, f->len);

    /* HS_RESP: version, e_r, AEAD_hs_r2i(HELLO_r || sig_r). */
    if (!mix_dh(s->sec->dh, s->sec->e_sk, s->peer_e))
        return proto__session_fail(s, PROTO_FAIL_BAD_KEY);
    size_t blen = HS_RESP_FIXED + s->hello_len + PROTO__SIG_LEN + PROTO__TAG_LEN;
    uint8_t *b = malloc(PROTO_FRAME_HEADER_LEN + blen);
    if (!b)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    (void)proto_frame_header_write(b, PROTO_FRAME_HS_RESP, blen);
    be16_store(b + PROTO_FRAME_HEADER_LEN, v);
    memcpy(b + PROTO_FRAME_HEADER_LEN + 2, s->e_pk, PROTO__KEY_LEN);
    th_absorb(s, b, PROTO_FRAME_HEADER_LEN + HS_RESP_FIXED);
    th_snapshot(s, s->h1);
    int r = 0;
    if (!kdf2(s->sec->hs_i2r, s->sec->hs_r2i, s->sec->dh, LABEL_HS_KEYS, s->h1))
        r = proto__session_fail(s, PROTO_FAIL_NOMEM);
    if (r == 0)
        r = seal_own_hello(s, b + PROTO_FRAME_HEADER_LEN + HS_RESP_FIXED, s->sec->hs_r2i,
                           LABEL_SIG_RESP);
    if (r < 0) {
        free(b);
        return r;
    }
    if (proto__session_enqueue(s, b, PROTO_FRAME_HEADER_LEN + blen) < 0)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    s->state = PROTO__ST_R_SENT_RESP;
    return 0;
}

/* ---- step 2 at the initiator: HS_RESP in, step 3: HS_FINISH out ---------- */

static int
on_resp(proto_session *s, const proto_frame *f, proto_event *ev)
{
    if (f->len < HS_RESP_FIXED)
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    uint16_t v = be16_load(f->body);
    if (v < PROTO_VERSION_MIN || v > PROTO_VERSION_MAX)
        return proto__session_fail(s, PROTO_FAIL_VERSION);
    s->version = v;
    memcpy(s->peer_e, f->body + 2, PROTO__KEY_LEN);
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    (void)proto_frame_header_write(hdr, PROTO_FRAME_HS_RESP, f->len);
    th_absorb(s, hdr, sizeof(hdr));
    th_absorb(s, f->body, HS_RESP_FIXED);
    th_snapshot(s, s->h1);
    if (!mix_dh(s->sec->dh, s->sec->e_sk, s->peer_e))
        return proto__session_fail(s, PROTO_FAIL_BAD_KEY);
    if (!kdf2(s->sec->hs_i2r, s->sec->hs_r2i, s->sec->dh, LABEL_HS_KEYS, s->h1))
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    int r = accept_peer_hello(s, f->body + HS_RESP_FIXED, f->len - HS_RESP_FIXED, s->sec->hs_r2i,
                              LABEL_SIG_RESP);
    if (r < 0)
        return r;
    /* Downgrade check: the signed HELLO_r must lead to the same choice. */
    const proto_hello *h = &s->peer_hello;
    uint16_t expect = h->version_max < PROTO_VERSION_MAX ? h->version_max : PROTO_VERSION_MAX;
    if (v != expect || h->version_min > v)
        return proto__session_fail(s, PROTO_FAIL_VERSION);

    size_t blen = s->hello_len + PROTO__SIG_LEN + PROTO__TAG_LEN;
    uint8_t *b = malloc(PROTO_FRAME_HEADER_LEN + blen);
    if (!b)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    (void)proto_frame_header_write(b, PROTO_FRAME_HS_FINISH, blen);
    th_absorb(s, b, PROTO_FRAME_HEADER_LEN);
    r = seal_own_hello(s, b + PROTO_FRAME_HEADER_LEN, s->sec->hs_i2r, LABEL_SIG_INIT);
    if (r < 0) {
        free(b);
        return r;
    }
    if (proto__session_enqueue(s, b, PROTO_FRAME_HEADER_LEN + blen) < 0)
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    r = establish(s);
    if (r < 0)
        return r;
    ev->type = PROTO_EVENT_HANDSHAKE_DONE;
    return 1;
}

/* ---- step 3 at the responder: HS_FINISH in ------------------------------- */

static int
on_finish(proto_session *s, const proto_frame *f, proto_event *ev)
{
    uint8_t hdr[PROTO_FRAME_HEADER_LEN];
    (void)proto_frame_header_write(hdr, PROTO_FRAME_HS_FINISH, f->len);
    th_absorb(s, hdr, sizeof(hdr));
    int r = accept_peer_hello(s, f->body, f->len, s->sec->hs_i2r, LABEL_SIG_INIT);
    if (r < 0)
        return r;
    /* The signed HELLO_i must repeat the versions HS_INIT offered. */
    if (s->peer_hello.version_min != s->peer_vmin || s->peer_hello.version_max != s->peer_vmax)
        return proto__session_fail(s, PROTO_FAIL_VERSION);
    r = establish(s);
    if (r < 0)
        return r;
    ev->type = PROTO_EVENT_HANDSHAKE_DONE;
    return 1;
}

static int
on_frame(proto_session *s, const proto_frame *f, proto_event *ev)
{
    switch (s->state) {
    case PROTO__ST_R_WAIT_INIT:
        if (f->type != PROTO_FRAME_HS_INIT)
            return proto__session_fail(s, PROTO_FAIL_STATE);
        return on_init(s, f);
    case PROTO__ST_I_SENT_INIT:
        if (f->type == PROTO_FRAME_HS_REJECT)
            return proto__session_fail(s, PROTO_FAIL_REJECTED);
        if (f->type != PROTO_FRAME_HS_RESP)
            return proto__session_fail(s, PROTO_FAIL_STATE);
        return on_resp(s, f, ev);
    case PROTO__ST_R_SENT_RESP:
        if (f->type != PROTO_FRAME_HS_FINISH)
            return proto__session_fail(s, PROTO_FAIL_STATE);
        return on_finish(s, f, ev);
    case PROTO__ST_ESTABLISHED:
        if (f->type != PROTO_FRAME_SEALED)
            return proto__session_fail(s, PROTO_FAIL_STATE);
        return proto__record_open(s, f, ev);
    default:
        return proto__session_fail(s, PROTO_FAIL_STATE);
    }
}

static int
decoder_fail(proto_session *s, int r)
{
    switch (r) {
    case -EMSGSIZE:
        return proto__session_fail(s, PROTO_FAIL_OVERSIZE);
    case -EPROTO:
        return proto__session_fail(s, PROTO_FAIL_FRAME_VERSION);
    case -ENOMEM:
        return proto__session_fail(s, PROTO_FAIL_NOMEM);
    default:
        return proto__session_fail(s, PROTO_FAIL_MALFORMED);
    }
}

int
proto_session_feed(proto_session *s, const uint8_t *buf, size_t len, uint64_t now_ms,
                   size_t *ret_used, proto_event *ret_ev)
{
    size_t off = 0;
    int r = 0;

    *ret_used = 0;
    ret_ev->type = PROTO_EVENT_NONE;
    if (s->state == PROTO__ST_FAILED)
        return s->err;
    if (s->state == PROTO__ST_I_START) {
        r = send_init(s);
        if (r < 0)
            return r;
    }
    bool completed = false;
    while (off < len) {
        proto_frame f;
        size_t used;
        r = proto_frame_decoder_feed(&s->dec, buf + off, len - off, &used, &f);
        off += used;
        if (r < 0) {
            r = decoder_fail(s, r);
            break;
        }
        if (r == 0)
            break;
        completed = true;
        r = on_frame(s, &f, ret_ev);
        if (r != 0)
            break;
    }
    /* Stall clock: a frame must complete within stall_ms of its first byte. */
    if (!proto_frame_decoder_partial(&s->dec))
        s->in_frame = false;
    else if (!s->in_frame || completed) {
        s->in_frame = true;
        s->frame_start = now_ms;
    }
    *ret_used = off;
    return r;
}

int
proto_session_tick(proto_session *s, uint64_t now_ms)
{
    if (s->state == PROTO__ST_FAILED)
        return s->err;
    if (s->state != PROTO__ST_ESTABLISHED && now_ms >= s->hs_deadline)
        return proto__session_fail(s, PROTO_FAIL_TIMEOUT);
    if (s->in_frame && now_ms - s->frame_start >= s->stall_ms)
        return proto__session_fail(s, PROTO_FAIL_TIMEOUT);
    if (s->state == PROTO__ST_I_START)
        return send_init(s);
    return 0;
}

void
proto_session_trim(proto_session *s)
{
    if (proto_frame_decoder_partial(&s->dec))
        return;
    proto_frame_decoder_trim(&s->dec);
    if (s->pt) {
        sodium_memzero(s->pt, s->pt_cap);
        free(s->pt);
        s->pt = NULL;
        s->pt_cap = 0;
    }
}

uint8_t *
proto_session_take_message(proto_session *s, size_t *ret_cap)
{
    uint8_t *b = s->pt;
    *ret_cap = b ? s->pt_cap : 0;
    s->pt = NULL;
    s->pt_cap = 0;
    return b;
}

/* ---- getters ------------------------------------------------------------ */

bool
proto_session_established(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED;
}

int
proto_session_fail(const proto_session *s)
{
    return s->fail;
}

int
proto_session_cipher(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED ? s->cipher : PROTO_CIPHER_NONE;
}

uint16_t
proto_session_version(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED ? s->version : 0;
}

const uint8_t *
proto_session_peer_id(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED ? s->peer_id : NULL;
}

const proto_hello *
proto_session_peer_hello(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED ? &s->peer_hello : NULL;
}

const uint8_t *
proto_session_transcript_hash(const proto_session *s)
{
    return s->state == PROTO__ST_ESTABLISHED ? s->th_final : NULL;
}
