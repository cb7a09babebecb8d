/* SPDX-License-Identifier: MIT */
/*
 * Session record layer on an established pair: tampering, replay,
 * reordering, the key ratchet, GCM implementations, the counter limit,
 * state errors, unknown messages, in-place sealing, trimming, timeouts,
 * provider signatures and identities. The handshake is in
 * test-session-handshake.c; shared helpers in sessutil.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/frame.h"
#include "proto/internal.h"
#include "proto/session.h"
#include "sessutil.h"
#include "testutil.h"

static void
tamper_each(uint8_t pref)
{
    st_node i, r;
    uint8_t *f;
    size_t n;
    st_established(&i, &r, pref);
    st_capture(&i, PROTO_MSG_PING, "12345678", 8, &f, &n);
    st_node_free(&i);
    st_node_free(&r);
    /* Flip one bit at every position after the frame header and counter:
     * type byte, body and tag must all be authenticated. */
    for (size_t pos = PROTO_FRAME_HEADER_LEN + 8; pos < n; pos++) {
        st_established(&i, &r, pref);
        uint8_t *g;
        size_t gn;
        st_capture(&i, PROTO_MSG_PING, "12345678", 8, &g, &gn);
        assert_int_equal(gn, n);
        g[pos] ^= 0x04;
        assert_int_equal(st_deliver(r.s, g, gn, 0, 0, &r.log), -EBADMSG);
        assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_DECRYPT);
        assert_int_equal(r.log.messages, 0);
        /* Failed sessions stay failed. */
        assert_int_equal(proto_session_send(r.s, PROTO_MSG_PING, "x", 1), -EBADMSG);
        free(g);
        st_node_free(&i);
        st_node_free(&r);
    }
    free(f);
}

static void
test_tampered(void **state)
{
    tamper_each(PROTO_CIPHER_PREF_XCHACHA);
    if (proto_hw_aes_available())
        tamper_each(PROTO_CIPHER_PREF_AUTO);
}

static void
test_replay_reorder(void **state)
{
    st_node i, r;
    uint8_t *f0, *f1;
    size_t n0, n1;
    st_established(&i, &r, 0);
    st_capture(&i, PROTO_MSG_PING, "00000000", 8, &f0, &n0);
    st_capture(&i, PROTO_MSG_PING, "11111111", 8, &f1, &n1);
    assert_int_equal(st_deliver(r.s, f0, n0, 0, 0, &r.log), 0);
    assert_int_equal(st_deliver(r.s, f0, n0, 0, 0, &r.log), -EPROTO);
    assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_REPLAY);
    assert_int_equal(r.log.messages, 1);
    st_node_free(&i);
    st_node_free(&r);
    free(f0);
    free(f1);

    st_established(&i, &r, 0);
    st_capture(&i, PROTO_MSG_PING, "00000000", 8, &f0, &n0);
    st_capture(&i, PROTO_MSG_PING, "11111111", 8, &f1, &n1);
    assert_int_equal(st_deliver(r.s, f1, n1, 0, 0, &r.log), -EPROTO);
    assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_REORDER);
    assert_int_equal(r.log.messages, 0);
    st_node_free(&i);
    st_node_free(&r);
    free(f0);
    free(f1);

    /* A frame from another session with the same counter does not open. */
    st_node i2, r2;
    st_established(&i, &r, 0);
    st_established(&i2, &r2, 0);
    st_capture(&i2, PROTO_MSG_PING, "00000000", 8, &f0, &n0);
    assert_int_equal(st_deliver(r.s, f0, n0, 0, 0, &r.log), -EBADMSG);
    free(f0);
    st_node_free(&i);
    st_node_free(&r);
    st_node_free(&i2);
    st_node_free(&r2);
}

static void
test_rekey(void **state)
{
    for (int pref = 0; pref <= 1; pref++) {
        st_node i, r;
        st_established(&i, &r, (uint8_t)pref);
        proto__session_set_rekey_interval(i.s, 3);
        proto__session_set_rekey_interval(r.s, 3);
        for (int k = 0; k < 20; k++) {
            st_exchange(&i, &r, PROTO_MSG_PING, 8, (uint64_t)k);
            st_exchange(&r, &i, PROTO_MSG_PONG, 8, (uint64_t)k);
        }
        st_node_free(&i);
        st_node_free(&r);

        /* Only the sender ratchets: the receiver cannot open frame 3. */
        st_established(&i, &r, (uint8_t)pref);
        proto__session_set_rekey_interval(i.s, 3);
        for (int k = 0; k < 3; k++)
            st_exchange(&i, &r, PROTO_MSG_PING, 8, (uint64_t)k);
        assert_int_equal(proto_session_send(i.s, PROTO_MSG_PING, "abcdefgh", 8), 0);
        assert_int_equal(st_pump(&i, &r, 0), -EBADMSG);
        st_node_free(&i);
        st_node_free(&r);
    }
}

/* One end on libsodium's AES-256-GCM, the other on OpenSSL's (gcm.c), as
 * between two implementations on the wire: frames of every size class cross both
 * ways, through key ratchets. */
static void
test_gcm_implementations_mix(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0,   1,   15,  16,   63,    64,
                                    255, 256, 257, 1000, 70000, PROTO_CHUNK_MAX + 48 };
    for (int sodium_end = 0; sodium_end <= 1; sodium_end++) {
        st_node i, r;
        st_pair(&i, &r, PROTO_CIPHER_PREF_AUTO, PROTO_CIPHER_PREF_AUTO);
        proto__session_set_gcm_sodium_only(sodium_end ? r.s : i.s);
        assert_int_equal(st_run(&i, &r, 0), 0);
        if (proto_session_cipher(i.s) != PROTO_CIPHER_AES256GCM) {
            st_node_free(&i);
            st_node_free(&r);
            skip(); /* no hardware AES: both ends use XChaCha20-Poly1305 */
        }
        proto__session_set_rekey_interval(i.s, 5);
        proto__session_set_rekey_interval(r.s, 5);
        for (size_t k = 0; k < 2 * sizeof(sizes) / sizeof(sizes[0]); k++) {
            size_t len = sizes[k % (sizeof(sizes) / sizeof(sizes[0]))];
            st_exchange(&i, &r, PROTO_MSG_DATA, len, 10 * k + 1);
            st_exchange(&r, &i, PROTO_MSG_DATA, len, 10 * k + 2);
        }
        st_node_free(&i);
        st_node_free(&r);
    }
}

static void
test_counter_limit(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    proto__session_set_send_counter(i.s, PROTO_COUNTER_LIMIT - 1);
    assert_int_equal(proto_session_send(i.s, PROTO_MSG_PING, "abcdefgh", 8), 0);
    assert_int_equal(proto_session_send(i.s, PROTO_MSG_PING, "abcdefgh", 8), -EOVERFLOW);
    assert_int_equal(proto_session_fail(i.s), PROTO_FAIL_EXHAUSTED);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_state_errors(void **state)
{
    st_node i, r;
    st_pair(&i, &r, 0, 0);
    /* Nothing may be sent before the handshake. */
    assert_int_equal(proto_session_send(i.s, PROTO_MSG_PING, "abcdefgh", 8), -ENOTCONN);
    assert_null(proto_session_peer_id(i.s));
    assert_int_equal(proto_session_cipher(i.s), PROTO_CIPHER_NONE);
    /* A SEALED frame to a fresh responder is a protocol violation. */
    uint8_t f[64];
    size_t n;
    memset(f + 8, 0, 40);
    assert_int_equal(proto_frame_encode(PROTO_FRAME_SEALED, f + 8, 40, f, sizeof(f), &n), 0);
    assert_int_equal(st_deliver(r.s, f, n, 0, 0, &r.log), -EPROTO);
    assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_STATE);
    /* HS_INIT to an initiator. */
    uint8_t *b;
    size_t bl;
    assert_int_equal(proto_session_output(i.s, &b, &bl), 1);
    assert_int_equal(st_deliver(i.s, b, bl, 0, 0, &i.log), -EPROTO);
    free(b);
    st_node_free(&i);
    st_node_free(&r);

    /* After the handshake, a handshake frame is a violation too. */
    st_established(&i, &r, 0);
    uint8_t junk[40] = { 'n', 'v', 'x', 'h', 0, 1, 0, 1 };
    assert_int_equal(proto_frame_encode(PROTO_FRAME_HS_INIT, junk, 40, f, sizeof(f), &n), 0);
    assert_int_equal(st_deliver(r.s, f, n, 0, 0, &r.log), -EPROTO);
    st_node_free(&i);
    st_node_free(&r);

    /* Oversized frame from a peer. */
    st_pair(&i, &r, 0, 0);
    static const uint8_t huge[8] = { 0x7f, 0xff, 0xff, 0xff, 1, 1, 0, 0 };
    assert_int_equal(st_deliver(r.s, huge, 8, 0, 0, &r.log), -EMSGSIZE);
    assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_OVERSIZE);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_unknown_skipped(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    /* An unknown message type inside a SEALED frame, then an unknown frame
     * type on the wire: both skipped, the PING after them arrives. */
    assert_int_equal(proto_session_send(i.s, 0x70, "zz", 2), 0);
    assert_int_equal(st_pump(&i, &r, 0), 1);
    assert_int_equal(r.log.messages, 0);
    uint8_t f[16];
    size_t n;
    assert_int_equal(proto_frame_encode(0x7e, (const uint8_t *)"abc", 3, f, sizeof(f), &n), 0);
    assert_int_equal(st_deliver(r.s, f, n, 0, 0, &r.log), 0);
    st_exchange(&i, &r, PROTO_MSG_PING, 8, 1);
    assert_int_equal(r.log.messages, 1);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_seal_in_place(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    size_t len = 4096, n;
    uint8_t *out = malloc(len + PROTO_SEAL_OVERHEAD), *ref = malloc(len);
    assert_non_null(out);
    assert_non_null(ref);
    tu_fill_random(ref, len, 77);
    memcpy(out + PROTO_SEAL_BODY_OFFSET, ref, len);
    assert_int_equal(proto_session_seal(i.s, PROTO_MSG_DATA, out + PROTO_SEAL_BODY_OFFSET, len, out,
                                        len + PROTO_SEAL_OVERHEAD - 1, &n),
                     -EMSGSIZE);
    assert_int_equal(proto_session_seal(i.s, PROTO_MSG_DATA, out + PROTO_SEAL_BODY_OFFSET, len, out,
                                        len + PROTO_SEAL_OVERHEAD, &n),
                     0);
    assert_int_equal(n, len + PROTO_SEAL_OVERHEAD);
    assert_int_equal(st_deliver(r.s, out, n, 0, 0, &r.log), 0);
    assert_int_equal(r.log.messages, 1);
    assert_memory_equal(r.log.last_body, ref, len);
    assert_int_equal(proto_session_send(i.s, PROTO_MSG_DATA, ref, PROTO_MSG_MAX + 1), -EMSGSIZE);
    free(out);
    free(ref);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_trim(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    st_exchange(&i, &r, PROTO_MSG_DATA, PROTO_CHUNK_MAX, 1);
    proto_session_trim(r.s);
    st_exchange(&i, &r, PROTO_MSG_DATA, PROTO_CHUNK_MAX, 2);
    /* Mid-frame, trim keeps the partial frame. */
    uint8_t *f;
    size_t n;
    st_capture(&i, PROTO_MSG_DATA, r.log.last_body, 1000, &f, &n);
    assert_int_equal(st_deliver(r.s, f, 500, 0, 0, &r.log), 0);
    proto_session_trim(r.s);
    int before = r.log.messages;
    assert_int_equal(st_deliver(r.s, f + 500, n - 500, 0, 0, &r.log), 0);
    assert_int_equal(r.log.messages, before + 1);
    free(f);
    st_node_free(&i);
    st_node_free(&r);
}

/* The buffer of a message taken by the caller keeps its body after the
 * session has received more; the next message gets a fresh buffer. */
static void
test_take_message(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    size_t cap;
    assert_null(proto_session_take_message(r.s, &cap)); /* no message yet */
    assert_int_equal(cap, 0);
    uint8_t *ref = malloc(PROTO_CHUNK_MAX);
    assert_non_null(ref);
    tu_fill_random(ref, PROTO_CHUNK_MAX, 9);
    uint8_t *f;
    size_t n;
    st_capture(&i, PROTO_MSG_DATA, ref, PROTO_CHUNK_MAX, &f, &n);
    size_t used;
    proto_event ev;
    assert_int_equal(proto_session_feed(r.s, f, n, 0, &used, &ev), 1);
    assert_int_equal(ev.type, PROTO_EVENT_MESSAGE);
    uint8_t *taken = proto_session_take_message(r.s, &cap);
    assert_non_null(taken);
    assert_true(ev.body >= taken && ev.body + ev.len <= taken + cap);
    const uint8_t *body = ev.body;
    st_exchange(&i, &r, PROTO_MSG_DATA, PROTO_CHUNK_MAX, 10); /* reuses nothing taken */
    assert_memory_equal(body, ref, PROTO_CHUNK_MAX);
    free(taken);
    free(f);
    free(ref);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_send_msg(void **state)
{
    st_node i, r;
    st_established(&i, &r, 0);
    proto_msg m = { .type = PROTO_MSG_REQUEST };
    m.u.request = (proto_request){ .req_id = 5, .chunk = 9, .offset = 100, .length = 1000 };
    memset(m.u.request.model_id, 0x3c, 32);
    assert_int_equal(proto_session_send_msg(i.s, &m), 0);
    assert_int_equal(st_pump(&i, &r, 0), 1);
    assert_int_equal(r.log.last_type, PROTO_MSG_REQUEST);
    proto_msg d;
    assert_int_equal(proto_msg_decode(r.log.last_type, r.log.last_body, r.log.last_len, &d), 0);
    assert_int_equal(d.u.request.req_id, 5);
    assert_int_equal(d.u.request.length, 1000);
    assert_memory_equal(d.u.request.model_id, m.u.request.model_id, 32);
    m.u.request.length = 0; /* refused by the encoder */
    assert_int_equal(proto_session_send_msg(i.s, &m), -EINVAL);
    m.type = PROTO_MSG_HELLO;
    assert_int_equal(proto_session_send_msg(i.s, &m), -EINVAL);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_timeouts(void **state)
{
    st_node i, r;
    st_pair(&i, &r, 0, 0);
    assert_int_equal(proto_session_tick(r.s, PROTO_HANDSHAKE_TIMEOUT_MS - 1), 0);
    assert_int_equal(proto_session_tick(r.s, PROTO_HANDSHAKE_TIMEOUT_MS), -ETIMEDOUT);
    assert_int_equal(proto_session_fail(r.s), PROTO_FAIL_TIMEOUT);
    st_node_free(&i);
    st_node_free(&r);

    /* Mid-frame stall: trickling bytes does not reset the clock. */
    st_established(&i, &r, 0);
    uint8_t *f;
    size_t n, used;
    proto_event ev;
    st_capture(&i, PROTO_MSG_PING, "abcdefgh", 8, &f, &n);
    uint64_t t0 = 100000;
    assert_int_equal(proto_session_feed(r.s, f, 1, t0, &used, &ev), 0);
    assert_int_equal(proto_session_tick(r.s, t0 + PROTO_STALL_TIMEOUT_MS - 1), 0);
    assert_int_equal(proto_session_feed(r.s, f + 1, 1, t0 + 20000, &used, &ev), 0);
    assert_int_equal(proto_session_tick(r.s, t0 + PROTO_STALL_TIMEOUT_MS), -ETIMEDOUT);
    free(f);
    st_node_free(&i);
    st_node_free(&r);

    /* A completed frame stops the clock; an idle established session is fine. */
    st_established(&i, &r, 0);
    st_capture(&i, PROTO_MSG_PING, "abcdefgh", 8, &f, &n);
    assert_int_equal(proto_session_feed(r.s, f, 3, t0, &used, &ev), 0);
    assert_int_equal(proto_session_feed(r.s, f + 3, n - 3, t0 + 1, &used, &ev), 1);
    assert_int_equal(proto_session_tick(r.s, t0 + 10 * PROTO_STALL_TIMEOUT_MS), 0);
    free(f);
    st_node_free(&i);
    st_node_free(&r);
}

static void
test_provider_signature(void **state)
{
    proto_identity *a, *b;
    assert_int_equal(proto_identity_generate(&a), 0);
    assert_int_equal(proto_identity_generate(&b), 0);
    proto_provider_record rec = { .time = 1800000000, .ttl_s = 600, .hops = 5 };
    memset(rec.model_id, 0x61, sizeof(rec.model_id));
    assert_int_equal(proto_provider_sign(a, &rec), 0);
    assert_memory_equal(rec.node_id, proto_identity_node_id(a), 32);
    assert_true(proto_provider_verify(&rec));
    rec.hops = 4; /* relays may decrement hops */
    assert_true(proto_provider_verify(&rec));
    proto_provider_record bad = rec;
    bad.ttl_s++;
    assert_false(proto_provider_verify(&bad));
    bad = rec;
    bad.model_id[31] ^= 1;
    assert_false(proto_provider_verify(&bad));
    bad = rec;
    bad.time--;
    assert_false(proto_provider_verify(&bad));
    /* Claiming another node's id with our own signature fails. */
    bad = rec;
    memcpy(bad.node_id, proto_identity_node_id(b), 32);
    assert_false(proto_provider_verify(&bad));
    proto_identity_free(a);
    proto_identity_free(b);
}

static void
test_identity(void **state)
{
    proto_identity *a, *b;
    uint8_t seed[32], back[32];
    tu_fill_random(seed, sizeof(seed), 5);
    assert_int_equal(proto_identity_from_seed(seed, &a), 0);
    proto_identity_seed(a, back);
    assert_memory_equal(seed, back, 32);
    assert_int_equal(proto_identity_from_seed(back, &b), 0);
    assert_memory_equal(proto_identity_node_id(a), proto_identity_node_id(b), 32);
    proto_identity_free(b);
    assert_int_equal(proto_identity_generate(&b), 0);
    assert_memory_not_equal(proto_identity_node_id(a), proto_identity_node_id(b), 32);
    proto_identity_free(a);
    proto_identity_free(b);
    proto_identity_free(NULL);
    proto_session_free(NULL);

    /* Bad configs. */
    proto_session *s;
    proto_session_config cfg = { 0 };
    assert_int_equal(proto_session_new(&cfg, 0, &s), -EINVAL);
    assert_int_equal(proto_identity_generate(&a), 0);
    cfg.identity = a;
    const char *bad[] = { "has space" };
    cfg.n_addrs = 1;
    cfg.addrs = bad;
    assert_int_equal(proto_session_new(&cfg, 0, &s), -EINVAL);
    cfg.n_addrs = PROTO_HELLO_ADDRS_MAX + 1;
    assert_int_equal(proto_session_new(&cfg, 0, &s), -EINVAL);
    proto_identity_free(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tampered),        cmocka_unit_test(test_replay_reorder),
        cmocka_unit_test(test_rekey),           cmocka_unit_test(test_gcm_implementations_mix),
        cmocka_unit_test(test_counter_limit),   cmocka_unit_test(test_state_errors),
        cmocka_unit_test(test_unknown_skipped), cmocka_unit_test(test_seal_in_place),
        cmocka_unit_test(test_send_msg),        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_take_message),    cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_identity),        cmocka_unit_test(test_provider_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
