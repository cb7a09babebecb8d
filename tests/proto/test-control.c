/* SPDX-License-Identifier: MIT */
/*
 * Control protocol: round trips of every command shape, the stream reader in
 * every split, and a table of malformed payloads.
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

#include "proto/control.h"
#include "testutil.h"

static proto_ctl_msg msg, nest;

/* Decodes a whole frame (length prefix included) into msg. */
static int
decode_frame(const uint8_t *f, size_t n)
{
    assert_true(n >= 4);
    size_t len = (size_t)f[0] << 24 | (size_t)f[1] << 16 | (size_t)f[2] << 8 | f[3];
    assert_int_equal(len, n - 4);
    return proto_ctl_decode(f + 4, len, &msg);
}

static void
test_fetch_roundtrip(void **state)
{
    proto_ctl_writer w;
    uint8_t *f;
    size_t n;
    proto_ctl_writer_init(&w, PROTO_CTL_FETCH, 77);
    proto_ctl_put_str(&w, PROTO_CTL_T_TARGET, "alice/tinyllama");
    proto_ctl_put_bool(&w, PROTO_CTL_T_PIN, true);
    proto_ctl_put_u64(&w, PROTO_CTL_T_RATE, 2 << 20); /* nvx fetch --rate */
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), 0);
    assert_int_equal(decode_frame(f, n), 0);
    assert_int_equal(msg.type, PROTO_CTL_FETCH);
    assert_int_equal(msg.id, 77);
    proto_str s;
    uint64_t v;
    assert_true(proto_ctl_get_str(&msg, PROTO_CTL_T_TARGET, &s));
    assert_int_equal(s.len, 15);
    assert_memory_equal(s.p, "alice/tinyllama", 15);
    assert_true(proto_ctl_get_u64(&msg, PROTO_CTL_T_PIN, &v));
    assert_int_equal(v, 1);
    assert_false(proto_ctl_get_u64(&msg, PROTO_CTL_T_UNTRUSTED, &v));
    assert_true(proto_ctl_get_u64(&msg, PROTO_CTL_T_RATE, &v));
    assert_int_equal(v, 2 << 20);
    assert_string_equal(proto_ctl_type_name(msg.type), "FETCH");
    free(f);

    /* A progress event and the final OK. */
    uint8_t id[32];
    memset(id, 0xab, sizeof(id));
    proto_ctl_writer_init(&w, PROTO_CTL_PROGRESS, 77);
    proto_ctl_put_u64(&w, PROTO_CTL_T_STATE, PROTO_CTL_STATE_FETCHING);
    proto_ctl_put_u64(&w, PROTO_CTL_T_BYTES_DONE, 123456789);
    proto_ctl_put_u64(&w, PROTO_CTL_T_BYTES_TOTAL, UINT64_MAX);
    proto_ctl_put_u64(&w, PROTO_CTL_T_RATE, 50 << 20);
    proto_ctl_put_u64(&w, PROTO_CTL_T_PEER_COUNT, 3);
    proto_ctl_put_id(&w, PROTO_CTL_T_MODEL_ID, id);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), 0);
    assert_int_equal(decode_frame(f, n), 0);
    assert_true(proto_ctl_get_u64(&msg, PROTO_CTL_T_BYTES_TOTAL, &v));
    assert_true(v == UINT64_MAX);
    const uint8_t *idp;
    assert_true(proto_ctl_get_id(&msg, PROTO_CTL_T_MODEL_ID, &idp));
    assert_memory_equal(idp, id, 32);
    free(f);
}

static void
test_progress_helpers(void **state)
{
    proto_ctl_progress p = { .state = PROTO_CTL_STATE_FETCHING,
                             .bytes_done = 1 << 20,
                             .bytes_total = 1ull << 30,
                             .rate = 123456,
                             .peer_count = 3,
                             .has_model_id = true },
                       q;
    memset(p.model_id, 0x42, sizeof(p.model_id));
    uint8_t *f;
    size_t n;
    assert_int_equal(proto_ctl_progress_build(12, &p, &f, &n), 0);
    assert_int_equal(decode_frame(f, n), 0);
    assert_int_equal(msg.id, 12);
    assert_int_equal(proto_ctl_progress_parse(&msg, &q), 0);
    /* Field by field: the struct has padding. */
    assert_true(q.state == p.state && q.transfer_id == 0 && q.bytes_done == p.bytes_done);
    assert_true(q.bytes_total == p.bytes_total && q.chunks_done == 0 && q.chunks_total == 0);
    assert_true(q.rate == p.rate && q.peer_count == p.peer_count && q.has_model_id);
    assert_memory_equal(q.model_id, p.model_id, sizeof(p.model_id));
    free(f);
    assert_int_equal(proto_ctl_error_build(1, EIO, "x", &f, &n), 0);
    assert_int_equal(decode_frame(f, n), 0);
    assert_int_equal(proto_ctl_progress_parse(&msg, &q), -EINVAL);
    free(f);
}

static void
test_status_nested(void **state)
{
    proto_ctl_writer w;
    uint8_t *f, id[32];
    size_t n;
    memset(id, 1, sizeof(id));
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 5);
    proto_ctl_put_id(&w, PROTO_CTL_T_NODE_ID, id);
    proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, "tcp://127.0.0.1:7000");
    proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, "tcp://[::1]:7000");
    for (int i = 0; i < 100; i++) {
        proto_ctl_nest_begin(&w, PROTO_CTL_T_PEER);
        proto_ctl_put_id(&w, PROTO_CTL_T_NODE_ID, id);
        proto_ctl_put_u64(&w, PROTO_CTL_T_BYTES_IN, (uint64_t)i);
        proto_ctl_nest_end(&w);
    }
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), 0);
    assert_int_equal(decode_frame(f, n), 0);
    int peers = 0, addrs = 0;
    for (const proto_ctl_field *p = proto_ctl_find(&msg, PROTO_CTL_T_PEER); p;
         p = proto_ctl_next(&msg, p)) {
        assert_int_equal(proto_ctl_nest_decode(p, &nest), 0);
        uint64_t v;
        assert_true(proto_ctl_get_u64(&nest, PROTO_CTL_T_BYTES_IN, &v));
        assert_int_equal(v, (uint64_t)peers);
        peers++;
    }
    for (const proto_ctl_field *p = proto_ctl_find(&msg, PROTO_CTL_T_ADDR); p;
         p = proto_ctl_next(&msg, p))
        addrs++;
    assert_int_equal(peers, 100);
    assert_int_equal(addrs, 2);
    free(f);
}

static void
test_writer_rejects(void **state)
{
    proto_ctl_writer w;
    uint8_t *f;
    size_t n;
    /* Missing required field. */
    proto_ctl_writer_init(&w, PROTO_CTL_PUBLISH, 1);
    proto_ctl_put_str(&w, PROTO_CTL_T_NAME, "x");
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    /* Wrong kind for the tag. */
    proto_ctl_writer_init(&w, PROTO_CTL_FETCH, 1);
    proto_ctl_put_u64(&w, PROTO_CTL_T_TARGET, 3);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    /* Non-printable string. */
    proto_ctl_writer_init(&w, PROTO_CTL_FETCH, 1);
    proto_ctl_put_str(&w, PROTO_CTL_T_TARGET, "a\nb");
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    /* Unbalanced nest; nest in nest. */
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 1);
    proto_ctl_nest_begin(&w, PROTO_CTL_T_PEER);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 1);
    proto_ctl_nest_begin(&w, PROTO_CTL_T_PEER);
    proto_ctl_nest_begin(&w, PROTO_CTL_T_PEER);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    /* Tag not allowed for the type. */
    proto_ctl_writer_init(&w, PROTO_CTL_SHUTDOWN, 1);
    proto_ctl_put_bool(&w, PROTO_CTL_T_PIN, false);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    /* Over the size limit. */
    char big[PROTO_CTL_STR_MAX + 1];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 1);
    for (int i = 0; i < 400; i++)
        proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, big);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EMSGSIZE);
    /* One byte over the string limit. */
    big[sizeof(big) - 1] = 'a';
    char *over = malloc(PROTO_CTL_STR_MAX + 2);
    memcpy(over, big, PROTO_CTL_STR_MAX + 1);
    over[PROTO_CTL_STR_MAX + 1] = 0;
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 1);
    proto_ctl_put_str(&w, PROTO_CTL_T_MESSAGE, over);
    assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), -EINVAL);
    free(over);
    proto_ctl_writer_init(&w, PROTO_CTL_OK, 1);
    proto_ctl_writer_free(&w);

    /* ERROR helper. */
    assert_int_equal(proto_ctl_error_build(9, -ENOENT, "model not found: run nvx fetch", &f, &n),
                     0);
    assert_int_equal(decode_frame(f, n), 0);
    uint64_t code;
    assert_true(proto_ctl_get_u64(&msg, PROTO_CTL_T_CODE, &code));
    assert_int_equal(code, ENOENT);
    assert_int_equal(msg.type, PROTO_CTL_ERROR);
    free(f);
}

static size_t
unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        if (h[0] == ' ') {
            h--;
            continue;
        }
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void
test_malformed_table(void **state)
{
    static const struct {
        const char *hex; /* payload, without the length prefix */
        int err;
    } cases[] = {
        { "0101 00000001", 0 },                                     /* STATUS */
        { "0101 000000", -EBADMSG },                                /* short header */
        { "0201 00000001", -EBADMSG },                              /* version 2 */
        { "0100 00000001", -EBADMSG },                              /* type 0 */
        { "0130 00000001", -EBADMSG },                              /* unknown type */
        { "0106 00000001", -EBADMSG },                              /* FETCH without TARGET */
        { "0106 00000001 030001 61", 0 },                           /* FETCH "a" */
        { "0106 00000001 030001 61 030001 62", -EBADMSG },          /* TARGET twice */
        { "0106 00000001 030002 61", -EBADMSG },                    /* value runs past the end */
        { "0106 00000001 0300", -EBADMSG },                         /* truncated field header */
        { "0106 00000001 030001 61 060001 02", -EBADMSG },          /* BOOL 2 */
        { "0106 00000001 030001 61 060002 0001", -EBADMSG },        /* BOOL length 2 */
        { "0106 00000001 030001 07", -EBADMSG },                    /* control char */
        { "0106 00000001 030001 61 630000", -EBADMSG },             /* unknown tag */
        { "0106 00000001 030001 61 040000", -EBADMSG },             /* tag not allowed */
        { "0107 00000001 040001 00 050001 61", -EBADMSG },          /* short ID */
        { "0141 00000001 0d0008 0000000000000002 0e0000", 0 },      /* ERROR */
        { "0141 00000001 0d0007 00000000000002 0e0000", -EBADMSG }, /* U64 length 7 */
        { "0108 00000001", -EBADMSG },                              /* CANCEL without target */
        { "0108 00000001 170008 0000000000000001", 0 },
        { "0140 00000001 0f0000", 0 },                      /* empty PEER nest */
        { "0140 00000001 0f0006 0f0003 0b0000", -EBADMSG }, /* nest in nest */
        { "0140 00000001 0f0004 0b0001 00", -EBADMSG },     /* bad field in nest */
        { "0140 00000001 0f0003 630000", -EBADMSG },        /* unknown tag in nest */
    };
    uint8_t b[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = unhex(cases[i].hex, b);
        int r = proto_ctl_decode(b, n, &msg);
        if (r != cases[i].err)
            fail_msg("case %zu (%s): got %d want %d", i, cases[i].hex, r, cases[i].err);
        /* Cutting the last byte off a valid payload with fields breaks
         * its last field. */
        if (cases[i].err == 0 && n > PROTO_CTL_MIN)
            assert_int_equal(proto_ctl_decode(b, n - 1, &msg), -EBADMSG);
    }
}

static void
test_reader(void **state)
{
    uint8_t *f1, *f2, stream[4096];
    size_t n1, n2;
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_PEER_ADD, 1);
    proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, "tcp://h:1");
    assert_int_equal(proto_ctl_writer_finish(&w, &f1, &n1), 0);
    assert_int_equal(proto_ctl_error_build(1, EINVAL, "bad address", &f2, &n2), 0);
    memcpy(stream, f1, n1);
    memcpy(stream + n1, f2, n2);
    size_t total = n1 + n2;
    for (size_t step = 1; step <= total; step++) {
        proto_ctl_reader r = { 0 };
        size_t off = 0;
        int got = 0;
        while (off < total) {
            size_t n = total - off < step ? total - off : step, used, plen;
            const uint8_t *p;
            int k = proto_ctl_reader_feed(&r, stream + off, n, &used, &p, &plen);
            assert_true(k >= 0);
            off += used;
            if (k == 1) {
                assert_int_equal(proto_ctl_decode(p, plen, &msg), 0);
                assert_int_equal(msg.type, got == 0 ? PROTO_CTL_PEER_ADD : PROTO_CTL_ERROR);
                got++;
            }
        }
        assert_int_equal(got, 2);
        assert_false(proto_ctl_reader_partial(&r));
        proto_ctl_reader_reset(&r);
    }
    free(f1);
    free(f2);

    /* Oversize and undersize lengths, before any allocation. */
    static const uint8_t huge[4] = { 0x00, 0x04, 0x00, 0x01 }, tiny[4] = { 0, 0, 0, 5 };
    proto_ctl_reader r = { 0 };
    size_t used, plen;
    const uint8_t *p;
    assert_int_equal(proto_ctl_reader_feed(&r, huge, 4, &used, &p, &plen), -EMSGSIZE);
    assert_null(r.buf);
    assert_int_equal(proto_ctl_reader_feed(&r, huge, 4, &used, &p, &plen), -EMSGSIZE);
    proto_ctl_reader_reset(&r);
    assert_int_equal(proto_ctl_reader_feed(&r, tiny, 4, &used, &p, &plen), -EBADMSG);
    proto_ctl_reader_reset(&r);
}

/* An OK answer may carry every tag, the last one included (the tag sets
 * are 64-bit masks: a 32-bit one refused every tag past 31). */
static void
test_every_tag_in_ok(void **state)
{
    (void)state;
    for (int tag = 1; tag < _PROTO_CTL_TAG_MAX; tag++) {
        if (proto_ctl_tag_kind((uint8_t)tag) != PROTO_CTL_K_U64)
            continue;
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, 5);
        proto_ctl_put_u64(&w, (uint8_t)tag, 42);
        uint8_t *f;
        size_t n;
        assert_int_equal(proto_ctl_writer_finish(&w, &f, &n), 0);
        assert_int_equal(decode_frame(f, n), 0);
        uint64_t v = 0;
        assert_true(proto_ctl_get_u64(&msg, (uint8_t)tag, &v));
        assert_int_equal(v, 42);
        free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_roundtrip),  cmocka_unit_test(test_status_nested),
        cmocka_unit_test(test_writer_rejects),   cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_reader),           cmocka_unit_test(test_every_tag_in_ok),
        cmocka_unit_test(test_progress_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
