/* SPDX-License-Identifier: MIT */
/*
 * Frame codec and streaming decoder: round trips, every split of the input,
 * truncation at every length, size and version checks before allocation,
 * unknown types skipped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/frame.h"
#include "testutil.h"

/* A stream of frames of types 1..5 with bodies of several sizes, plus one of
 * unknown type (0x7f) in the middle. */
static size_t
make_stream(uint8_t *out, size_t cap, size_t *ret_nframes)
{
    static const size_t sizes[] = { 0, 1, 7, 8, 300, 70000, PROTO_FRAME_MAX_BODY };
    size_t off = 0, nf = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *body = malloc(sizes[i] + 1);
        assert_non_null(body);
        tu_fill_random(body, sizes[i], i + 1);
        size_t n;
        uint8_t type = (uint8_t)(1 + i % 5);
        assert_int_equal(proto_frame_encode(type, body, sizes[i], out + off, cap - off, &n), 0);
        off += n;
        nf++;
        if (i == 2) {
            assert_int_equal(proto_frame_encode(0x7f, body, sizes[i], out + off, cap - off, &n), 0);
            off += n;
        }
        free(body);
    }
    *ret_nframes = nf;
    return off;
}

/* Feeds the stream in pieces of `step` bytes (0 = all at once) and checks
 * every frame against a reference decode. */
static void
feed_in_steps(const uint8_t *s, size_t len, size_t step, size_t nframes)
{
    proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
    size_t off = 0, seen = 0;
    /* Reference: re-walk the stream header by header. */
    size_t ref = 0;
    while (off < len) {
        size_t n = step ? (len - off < step ? len - off : step) : len - off;
        size_t used;
        proto_frame f;
        int r = proto_frame_decoder_feed(&d, s + off, n, &used, &f);
        assert_true(r >= 0);
        assert_true(used <= n);
        off += used;
        if (r == 1) {
            /* Skip the unknown frame in the reference walk. */
            while (s[ref + 5] == 0x7f)
                ref += 8 + ((size_t)s[ref] << 24 | (size_t)s[ref + 1] << 16 |
                            (size_t)s[ref + 2] << 8 | s[ref + 3]);
            size_t blen = (size_t)s[ref] << 24 | (size_t)s[ref + 1] << 16 |
                          (size_t)s[ref + 2] << 8 | s[ref + 3];
            assert_int_equal(f.type, s[ref + 5]);
            assert_int_equal(f.len, blen);
            if (blen)
                assert_memory_equal(f.body, s + ref + 8, blen);
            ref += 8 + blen;
            seen++;
        } else {
            assert_int_equal(used, n);
        }
    }
    assert_int_equal(seen, nframes);
    assert_int_equal(d.skipped, 1);
    assert_false(proto_frame_decoder_partial(&d));
    proto_frame_decoder_reset(&d);
}

static void
test_roundtrip_splits(void **state)
{
    size_t cap = 8 * (PROTO_FRAME_MAX_BODY + 64), nf;
    uint8_t *s = malloc(cap);
    assert_non_null(s);
    size_t len = make_stream(s, cap, &nf);
    feed_in_steps(s, len, 0, nf);
    feed_in_steps(s, len, 1, nf); /* byte by byte */
    feed_in_steps(s, len, 3, nf);
    feed_in_steps(s, len, 8, nf);
    feed_in_steps(s, len, 4093, nf);
    free(s);
}

static void
test_truncation_every_length(void **state)
{
    uint8_t body[300], f[400];
    size_t n;
    tu_fill_random(body, sizeof(body), 9);
    assert_int_equal(proto_frame_encode(PROTO_FRAME_SEALED, body, sizeof(body), f, sizeof(f), &n),
                     0);
    for (size_t cut = 0; cut < n; cut++) {
        proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
        proto_frame fr;
        size_t used;
        assert_int_equal(proto_frame_decoder_feed(&d, f, cut, &used, &fr), 0);
        assert_int_equal(used, cut);
        assert_int_equal(proto_frame_decoder_partial(&d), cut > 0);
        /* The rest completes it. */
        assert_int_equal(proto_frame_decoder_feed(&d, f + cut, n - cut, &used, &fr), 1);
        assert_int_equal(used, n - cut);
        assert_int_equal(fr.len, sizeof(body));
        assert_memory_equal(fr.body, body, sizeof(body));
        proto_frame_decoder_reset(&d);
    }
}

static void
test_oversize_before_alloc(void **state)
{
    /* Boundary: max is accepted (header only fed), max+1 rejected at once. */
    uint8_t h[8];
    proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
    proto_frame fr;
    size_t used;
    assert_int_equal(proto_frame_header_write(h, PROTO_FRAME_SEALED, PROTO_FRAME_MAX_BODY), 0);
    assert_int_equal(proto_frame_decoder_feed(&d, h, 8, &used, &fr), 0);
    proto_frame_decoder_reset(&d);

    assert_int_equal(proto_frame_header_write(h, PROTO_FRAME_SEALED, PROTO_FRAME_MAX_BODY + 1),
                     -EMSGSIZE);
    static const uint8_t huge[][8] = {
        { 0x00, 0x04, 0x04, 0x01, 1, 5, 0, 0 }, /* MAX_BODY + 1 */
        { 0xff, 0xff, 0xff, 0xff, 1, 5, 0, 0 },
        { 0xff, 0xff, 0xff, 0xff, 1, 0x7f, 0, 0 }, /* unknown types are bounded too */
    };
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        assert_int_equal(proto_frame_decoder_feed(&d, huge[i], 8, &used, &fr), -EMSGSIZE);
        assert_null(d.buf); /* nothing allocated */
        /* Sticky. */
        assert_int_equal(proto_frame_decoder_feed(&d, huge[i], 8, &used, &fr), -EMSGSIZE);
        assert_int_equal(used, 0);
        proto_frame_decoder_reset(&d);
        /* Byte by byte too. */
        int r = 0;
        for (size_t k = 0; k < 8 && r == 0; k++)
            r = proto_frame_decoder_feed(&d, huge[i] + k, 1, &used, &fr);
        assert_int_equal(r, -EMSGSIZE);
        assert_null(d.buf);
        proto_frame_decoder_reset(&d);
    }
}

static void
test_bad_headers(void **state)
{
    static const struct {
        uint8_t h[8];
        int err;
    } cases[] = {
        { { 0, 0, 0, 1, 2, 5, 0, 0 }, -EPROTO },  /* frame version 2 */
        { { 0, 0, 0, 1, 0, 5, 0, 0 }, -EPROTO },  /* frame version 0 */
        { { 0, 0, 0, 1, 1, 5, 1, 0 }, -EBADMSG }, /* reserved set */
        { { 0, 0, 0, 1, 1, 5, 0, 0x80 }, -EBADMSG },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
        proto_frame fr;
        size_t used;
        assert_int_equal(proto_frame_decoder_feed(&d, cases[i].h, 8, &used, &fr), cases[i].err);
        proto_frame_decoder_reset(&d);
    }
}

static void
test_unknown_skipped(void **state)
{
    uint8_t s[64];
    size_t a, b, c;
    const uint8_t x[3] = { 1, 2, 3 };
    assert_int_equal(proto_frame_encode(0, x, 3, s, sizeof(s), &a), 0);
    assert_int_equal(proto_frame_encode(200, x, 3, s + a, sizeof(s) - a, &b), 0);
    assert_int_equal(
        proto_frame_encode(PROTO_FRAME_HS_INIT, x, 2, s + a + b, sizeof(s) - a - b, &c), 0);
    proto_frame_decoder d = PROTO_FRAME_DECODER_INIT;
    proto_frame fr;
    size_t used;
    assert_int_equal(proto_frame_decoder_feed(&d, s, a + b + c, &used, &fr), 1);
    assert_int_equal(used, a + b + c);
    assert_int_equal(fr.type, PROTO_FRAME_HS_INIT);
    assert_int_equal(fr.len, 2);
    assert_int_equal(d.skipped, 2);
    assert_null(d.buf); /* skipped bodies are never buffered */
    proto_frame_decoder_reset(&d);
    assert_true(proto_frame_type_known(PROTO_FRAME_SEALED));
    assert_false(proto_frame_type_known(0));
    assert_false(proto_frame_type_known(_PROTO_FRAME_TYPE_MAX));
}

static void
test_encode_limits(void **state)
{
    uint8_t out[16];
    size_t n;
    assert_int_equal(proto_frame_encode(1, (const uint8_t *)"12345678", 8, out, 15, &n), -EMSGSIZE);
    assert_int_equal(proto_frame_encode(1, (const uint8_t *)"12345678", 8, out, 16, &n), 0);
    assert_int_equal(n, 16);
    static const uint8_t expect[8] = { 0, 0, 0, 8, 1, 1, 0, 0 };
    assert_memory_equal(out, expect, 8);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_splits),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_oversize_before_alloc),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_unknown_skipped),
        cmocka_unit_test(test_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
