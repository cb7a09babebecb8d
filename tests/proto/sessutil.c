/* SPDX-License-Identifier: MIT */
/* Two proto sessions back to back in memory: see sessutil.h. */
#include "sessutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/frame.h"
#include "proto/internal.h"
#include "proto/session.h"
#include "testutil.h"

void
st_evlog_clear(st_evlog *l)
{
    free(l->last_body);
    memset(l, 0, sizeof(*l));
}

/* Feeds len bytes to s in pieces of step (0 = at once); records events.
 * Returns the first error or 0. */
int
st_deliver(proto_session *s, const uint8_t *buf, size_t len, size_t step, uint64_t now,
           st_evlog *log)
{
    size_t off = 0;
    while (off < len) {
        size_t n = step && len - off > step ? step : len - off;
        size_t used;
        proto_event ev;
        int r = proto_session_feed(s, buf + off, n, now, &used, &ev);
        assert_true(used <= n);
        off += used;
        if (r < 0)
            return r;
        if (r == 0) {
            assert_int_equal(used, n);
            continue;
        }
        if (ev.type == PROTO_EVENT_HANDSHAKE_DONE) {
            log->handshakes++;
        } else {
            assert_int_equal(ev.type, PROTO_EVENT_MESSAGE);
            log->messages++;
            log->last_type = ev.msg_type;
            free(log->last_body);
            log->last_body = malloc(ev.len + 1);
            assert_non_null(log->last_body);
            memcpy(log->last_body, ev.body, ev.len);
            log->last_len = ev.len;
        }
    }
    return 0;
}

/* Moves all queued output of `from` into `to`. Returns the receiver's first
 * error, else the number of frames moved. */
int
st_pump(st_node *from, st_node *to, size_t step)
{
    uint8_t *b;
    size_t n;
    int moved = 0, err = 0;
    while (proto_session_output(from->s, &b, &n) > 0) {
        if (err == 0)
            err = st_deliver(to->s, b, n, step, 0, &to->log);
        free(b);
        moved++;
    }
    return err < 0 ? err : moved;
}

/* Runs the handshake to quiescence; returns the first error or 0. */
int
st_run(st_node *a, st_node *b, size_t step)
{
    for (int round = 0; round < 8; round++) {
        int r1 = st_pump(a, b, step);
        if (r1 < 0)
            return r1;
        int r2 = st_pump(b, a, step);
        if (r2 < 0)
            return r2;
        if (r1 == 0 && r2 == 0)
            return 0;
    }
    fail_msg("handshake did not settle");
    return -1;
}

const char *const st_addrs_a[2] = { "tcp://127.0.0.1:7001", "tcp://[::1]:7001" };

void
st_node_init(st_node *n, uint8_t seed_byte, bool initiator, uint8_t pref, const uint8_t *pin)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof(seed));
    memset(n, 0, sizeof(*n));
    assert_int_equal(proto_identity_from_seed(seed, &n->id), 0);
    proto_session_config cfg = {
        .identity = n->id,
        .initiator = initiator,
        .expected_peer = pin,
        .cipher_pref = pref,
        .features = PROTO_FEAT_SEED,
        .agent = initiator ? "nvx-test/initiator" : "nvx-test/responder",
        .n_addrs = initiator ? 2 : 0,
        .addrs = initiator ? st_addrs_a : NULL,
    };
    assert_int_equal(proto_session_new(&cfg, 0, &n->s), 0);
}

void
st_node_free(st_node *n)
{
    proto_session_free(n->s);
    proto_identity_free(n->id);
    st_evlog_clear(&n->log);
}

void
st_pair(st_node *i, st_node *r, uint8_t pref_i, uint8_t pref_r)
{
    st_node_init(i, 1, true, pref_i, NULL);
    st_node_init(r, 2, false, pref_r, NULL);
}

/* Sends a message from a to b and checks it arrives intact. */
void
st_exchange(st_node *a, st_node *b, uint8_t type, size_t len, uint64_t seed)
{
    uint8_t *body = malloc(len + 1);
    assert_non_null(body);
    tu_fill_random(body, len, seed);
    int before = b->log.messages;
    assert_int_equal(proto_session_send(a->s, type, body, len), 0);
    assert_int_equal(st_pump(a, b, 0), 1);
    assert_int_equal(b->log.messages, before + 1);
    assert_int_equal(b->log.last_type, type);
    assert_int_equal(b->log.last_len, len);
    if (len)
        assert_memory_equal(b->log.last_body, body, len);
    free(body);
}

void
st_check_established(st_node *i, st_node *r, int cipher)
{
    assert_int_equal(i->log.handshakes, 1);
    assert_int_equal(r->log.handshakes, 1);
    assert_true(proto_session_established(i->s));
    assert_true(proto_session_established(r->s));
    assert_int_equal(proto_session_cipher(i->s), cipher);
    assert_int_equal(proto_session_cipher(r->s), cipher);
    assert_int_equal(proto_session_version(i->s), PROTO_VERSION_MAX);
    assert_memory_equal(proto_session_peer_id(i->s), proto_identity_node_id(r->id), 32);
    assert_memory_equal(proto_session_peer_id(r->s), proto_identity_node_id(i->id), 32);
    assert_memory_equal(proto_session_transcript_hash(i->s), proto_session_transcript_hash(r->s),
                        32);
    const proto_hello *h = proto_session_peer_hello(r->s);
    assert_non_null(h);
    assert_int_equal(h->n_addrs, 2);
    assert_int_equal(h->addrs[1].len, strlen(st_addrs_a[1]));
    assert_memory_equal(h->addrs[1].p, st_addrs_a[1], h->addrs[1].len);
    assert_true(h->features & PROTO_FEAT_SEED);
}

void
st_traffic(st_node *i, st_node *r)
{
    st_exchange(i, r, PROTO_MSG_PING, 8, 1);
    st_exchange(r, i, PROTO_MSG_PONG, 8, 2);
    st_exchange(r, i, PROTO_MSG_DATA, PROTO_CHUNK_MAX + 48, 3);
    st_exchange(i, r, PROTO_MSG_BYE, 0, 4);
    st_exchange(i, r, PROTO_MSG_MANIFEST, PROTO_MSG_MAX, 5);
}

/* An established pair plus one captured (undelivered) frame from i. */
void
st_established(st_node *i, st_node *r, uint8_t pref)
{
    st_pair(i, r, pref, pref);
    assert_int_equal(st_run(i, r, 0), 0);
}

void
st_capture(st_node *from, uint8_t type, const void *body, size_t len, uint8_t **ret,
           size_t *ret_len)
{
    assert_int_equal(proto_session_send(from->s, type, body, len), 0);
    assert_int_equal(proto_session_output(from->s, ret, ret_len), 1);
}
