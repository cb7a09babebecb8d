/* SPDX-License-Identifier: MIT */
/* Tests for libcas/manifest.c: known-answer encoding, round trips, the
 * builder's checks and a table of malformed inputs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "libcas/manifest.h"
#include "testutil.h"

#define KA_ID       "5caa8810620d304889f15974734fb73b580ab5522b2bd6bac175587fa2758347"
#define KA_ID_BYTES "\x5c\xaa\x88\x10"

/*
 * The known-answer manifest: kind gguf, default parameters, chunks of 100 and
 * 50 bytes with ids 11..11 and 22..22, metadata format=gguf and name=tiny,
 * tensors "a" (type 0, no dims, [10, 30)) and "b.w" (type 8, dims 2 x 3,
 * [30, 150)). Layout (offsets used by the malformed-input table):
 *
 *   0 header | 40 "format" entry (13) | 53 "name" entry (11) |
 *   64 chunk 0 (len at 96) | 100 chunk 1 (len at 132) |
 *   136 tensor "a" (24: offset at 144, size at 152) |
 *   160 tensor "b.w" (42: n_dims at 169, offset at 186, size at 194) | 202
 */
static const char ka_hex[] =
    "4e56584d01000100"                                                 /* magic v1 gguf */
    "00400000000001000000040002000000"                                 /* min avg max n */
    "9600000000000000020000000200"                                     /* total nt nm */
    "0000"                                                             /* reserved */
    "06666f726d6174040067677566"                                       /* format=gguf */
    "046e616d65040074696e79"                                           /* name=tiny */
    "1111111111111111111111111111111111111111111111111111111111111111" /* chunk 0 */
    "64000000"
    "2222222222222222222222222222222222222222222222222222222222222222" /* chunk 1 */
    "32000000"
    "0100610000000000"                 /* "a" type 0 */
    "0a000000000000001400000000000000" /* [10, 30) */
    "0300622e7708000000"               /* "b.w" type 8 */
    "02"
    "02000000000000000300000000000000"  /* dims 2 3 */
    "1e000000000000007800000000000000"; /* [30, 150) */
static const char ka_id[] = KA_ID;

static size_t
unhex(const char *s, uint8_t *out)
{
    size_t n = strlen(s) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static cas_manifest_builder *
ka_builder(void)
{
    cas_manifest_builder *b = NULL;
    cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT;
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_GGUF, &p, &b), 0);
    uint8_t id[CAS_HASH_LEN];
    memset(id, 0x11, sizeof(id));
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, 100), 0);
    memset(id, 0x22, sizeof(id));
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, 50), 0);
    /* Out of order on purpose: the builder sorts. */
    assert_int_equal(cas_manifest_builder_set_meta(b, "name", "draft"), 0);
    assert_int_equal(cas_manifest_builder_set_meta(b, "format", "gguf"), 0);
    assert_int_equal(cas_manifest_builder_set_meta(b, "name", "tiny"), 0); /* replaces */
    cas_tensor_info tb = {
        .name = "b.w", .type = 8, .n_dims = 2, .dims = { 2, 3, 99 }, .offset = 30, .size = 120
    };
    cas_tensor_info ta = { .name = "a", .type = 0, .n_dims = 0, .offset = 10, .size = 20 };
    assert_int_equal(cas_manifest_builder_add_tensor(b, &tb), 0);
    assert_int_equal(cas_manifest_builder_add_tensor(b, &ta), 0);
    return b;
}

static cas_manifest *
ka_manifest(void)
{
    cas_manifest_builder *b = ka_builder();
    cas_manifest *m = NULL;
    assert_int_equal(cas_manifest_builder_finish(b, &m), 0);
    cas_manifest_builder_free(b);
    return m;
}

static void
test_known_answer(void **state)
{
    cas_manifest *m = ka_manifest();
    size_t len = 0;
    const uint8_t *bytes = cas_manifest_bytes(m, &len);
    uint8_t want[512];
    size_t wlen = unhex(ka_hex, want);
    char got_hex[1024] = "";
    for (size_t i = 0; i < len && i < 500; i++)
        sprintf(got_hex + 2 * i, "%02x", bytes[i]);
    print_message("encoded %zu bytes: %s\n", len, got_hex);
    assert_int_equal(len, 202);
    assert_int_equal(len, wlen);
    assert_memory_equal(bytes, want, wlen);
    char id[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(cas_manifest_id(m), id);
    print_message("model id %s\n", id);
    assert_string_equal(id, ka_id);

    /* Accessors. */
    assert_int_equal(cas_manifest_size(m), 150);
    cas_chunker_params p;
    assert_int_equal(cas_manifest_chunker(m, &p), CAS_CHUNKER_GGUF);
    assert_int_equal(p.min, 16384);
    assert_int_equal(p.avg, 65536);
    assert_int_equal(p.max, 262144);
    assert_int_equal(cas_manifest_chunk_count(m), 2);
    cas_chunk_info c;
    assert_int_equal(cas_manifest_chunk(m, 1, &c), 0);
    assert_int_equal(c.offset, 100);
    assert_int_equal(c.len, 50);
    assert_int_equal(c.id[0], 0x22);
    assert_int_equal(cas_manifest_chunk(m, 2, &c), -ERANGE);
    size_t idx = 9;
    assert_int_equal(cas_manifest_chunk_at(m, 0, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(cas_manifest_chunk_at(m, 99, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(cas_manifest_chunk_at(m, 100, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(cas_manifest_chunk_at(m, 149, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(cas_manifest_chunk_at(m, 150, &idx), -ERANGE);
    assert_int_equal(cas_manifest_tensor_count(m), 2);
    cas_tensor_info t;
    assert_int_equal(cas_manifest_tensor(m, 1, &t), 0);
    assert_string_equal(t.name, "b.w");
    assert_int_equal(t.type, 8);
    assert_int_equal(t.n_dims, 2);
    assert_int_equal(t.dims[1], 3);
    assert_int_equal(t.dims[2], 0);
    assert_int_equal(t.offset, 30);
    assert_int_equal(t.size, 120);
    assert_int_equal(cas_manifest_tensor(m, 2, &t), -ERANGE);
    assert_int_equal(cas_manifest_meta_count(m), 2);
    const char *k, *v;
    assert_int_equal(cas_manifest_meta(m, 0, &k, &v), 0);
    assert_string_equal(k, "format");
    assert_string_equal(v, "gguf");
    assert_string_equal(cas_manifest_meta_get(m, CAS_META_NAME), "tiny");
    assert_null(cas_manifest_meta_get(m, "filename"));
    assert_int_equal(cas_manifest_meta(m, 2, &k, &v), -ERANGE);

    /* Decoding the bytes gives the same id. */
    cas_manifest *d = NULL;
    assert_int_equal(cas_manifest_decode(want, wlen, &d), 0);
    assert_memory_equal(cas_manifest_id(d), cas_manifest_id(m), CAS_HASH_LEN);
    cas_manifest_free(d);
    cas_manifest_free(m);
}

/* Rebuilds a manifest from its accessors and checks the bytes come back. */
static void
check_reencode(const cas_manifest *m)
{
    cas_chunker_params p;
    cas_chunker_kind kind = cas_manifest_chunker(m, &p);
    cas_manifest_builder *b = NULL;
    assert_int_equal(cas_manifest_builder_new(kind, &p, &b), 0);
    for (size_t i = 0; i < cas_manifest_chunk_count(m); i++) {
        cas_chunk_info c;
        assert_int_equal(cas_manifest_chunk(m, i, &c), 0);
        assert_int_equal(cas_manifest_builder_add_chunk(b, c.id, c.len), 0);
    }
    for (size_t i = 0; i < cas_manifest_tensor_count(m); i++) {
        cas_tensor_info t;
        assert_int_equal(cas_manifest_tensor(m, i, &t), 0);
        assert_int_equal(cas_manifest_builder_add_tensor(b, &t), 0);
    }
    for (size_t i = 0; i < cas_manifest_meta_count(m); i++) {
        const char *k, *v;
        assert_int_equal(cas_manifest_meta(m, i, &k, &v), 0);
        assert_int_equal(cas_manifest_builder_set_meta(b, k, v), 0);
    }
    cas_manifest *m2 = NULL;
    assert_int_equal(cas_manifest_builder_finish(b, &m2), 0);
    size_t l1, l2;
    const uint8_t *b1 = cas_manifest_bytes(m, &l1), *b2 = cas_manifest_bytes(m2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_memory_equal(cas_manifest_id(m), cas_manifest_id(m2), CAS_HASH_LEN);
    cas_manifest_free(m2);
    cas_manifest_builder_free(b);
}

static void
test_round_trip(void **state)
{
    /* Empty model: no chunks, size 0. */
    cas_chunker_params p = { 64, 256, 1024 };
    cas_manifest_builder *b = NULL;
    cas_manifest *m = NULL;
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_FIXED, &p, &b), 0);
    assert_int_equal(cas_manifest_builder_finish(b, &m), 0);
    cas_manifest_builder_free(b);
    size_t len;
    cas_manifest_bytes(m, &len);
    assert_int_equal(len, CAS_MANIFEST_HEADER_LEN);
    assert_int_equal(cas_manifest_size(m), 0);
    size_t idx;
    assert_int_equal(cas_manifest_chunk_at(m, 0, &idx), -ERANGE);
    check_reencode(m);
    cas_manifest_free(m);

    /* A 1 GiB-like list: 16K chunks of varying length, many tensors, full
     * metadata with multi-byte UTF-8. */
    p = CAS_CHUNKER_PARAMS_DEFAULT;
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, &p, &b), 0);
    uint64_t total = 0;
    for (uint32_t i = 0; i < 16384; i++) {
        uint8_t id[CAS_HASH_LEN];
        cas_hash(&i, sizeof(i), id);
        uint32_t l = 16384 + (i * 7919u) % (p.max - 16384 + 1);
        assert_int_equal(cas_manifest_builder_add_chunk(b, id, l), 0);
        total += l;
    }
    for (uint32_t i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof(name), "blk.%u.ffn_down.weight\xc3\xa9", 299 - i);
        cas_tensor_info t = { .name = name,
                              .type = i % 20,
                              .n_dims = i % 9,
                              .dims = { 1, 2, 3, 4, 5, 6, 7, 8 },
                              .offset = (299 - i) * 1000000ull,
                              .size = 999999 };
        assert_int_equal(cas_manifest_builder_add_tensor(b, &t), 0);
    }
    for (int i = 0; i < CAS_MANIFEST_META_MAX; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", 31 - i);
        assert_int_equal(cas_manifest_builder_set_meta(b, key, "\xe6\x97\xa5\xf0\x9f\x98\x80 ok"),
                         0);
    }
    assert_int_equal(cas_manifest_builder_set_meta(b, "one-more", "x"), -EMSGSIZE);
    assert_int_equal(cas_manifest_builder_set_meta(b, "k05", ""), 0); /* replace still fine */
    assert_int_equal(cas_manifest_builder_finish(b, &m), 0);
    cas_manifest_builder_free(b);
    assert_int_equal(cas_manifest_size(m), total);
    assert_int_equal(cas_manifest_chunk_count(m), 16384);
    cas_tensor_info t;
    assert_int_equal(cas_manifest_tensor(m, 0, &t), 0);
    assert_int_equal(t.offset, 0);
    assert_string_equal(t.name, "blk.0.ffn_down.weight\xc3\xa9");
    assert_string_equal(cas_manifest_meta_get(m, "k05"), "");
    /* chunk_at agrees with a linear walk at chunk edges. */
    for (size_t i = 0; i < 16384; i += 97) {
        cas_chunk_info c;
        assert_int_equal(cas_manifest_chunk(m, i, &c), 0);
        assert_int_equal(cas_manifest_chunk_at(m, c.offset, &idx), 0);
        assert_int_equal(idx, i);
        assert_int_equal(cas_manifest_chunk_at(m, c.offset + c.len - 1, &idx), 0);
        assert_int_equal(idx, i);
    }
    check_reencode(m);
    const uint8_t *bytes = cas_manifest_bytes(m, &len);
    cas_manifest *d = NULL;
    assert_int_equal(cas_manifest_decode(bytes, len, &d), 0);
    assert_memory_equal(cas_manifest_id(d), cas_manifest_id(m), CAS_HASH_LEN);
    cas_manifest_free(d);
    cas_manifest_free(m);
}

static void
test_builder_errors(void **state)
{
    cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT, bad = { 10, 20, 30 };
    cas_manifest_builder *b = NULL;
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, &bad, &b), -EINVAL);
    assert_int_equal(cas_manifest_builder_new(_CAS_CHUNKER_KIND_MAX, &p, &b), -EINVAL);
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, NULL, &b), -EINVAL);
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, &p, &b), 0);
    uint8_t id[CAS_HASH_LEN] = { 0 };
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, 0), -EINVAL);
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, p.max + 1), -EINVAL);
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, p.max), 0);
    static const char *bad_keys[] = { "",      "Name",     "a b",
                                      "key/x", "\xc3\xa9", "123456789012345678901234567890123" };
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
        assert_int_equal(cas_manifest_builder_set_meta(b, bad_keys[i], "v"), -EINVAL);
    static const char *bad_values[] = { "\xc0\x80", "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xe6\x97",
                                        "\x80" };
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
        assert_int_equal(cas_manifest_builder_set_meta(b, "k", bad_values[i]), -EINVAL);
    char big[CAS_MANIFEST_VALUE_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(cas_manifest_builder_set_meta(b, "k", big), -EINVAL);
    big[CAS_MANIFEST_VALUE_MAX] = '\0';
    assert_int_equal(cas_manifest_builder_set_meta(b, "k", big), 0);
    assert_int_equal(cas_manifest_builder_set_meta(b, NULL, "v"), -EINVAL);
    char longname[CAS_TENSOR_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cas_tensor_info t = { .name = longname, .offset = 0, .size = 1 };
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), -EMSGSIZE);
    t.name = "";
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), -EINVAL);
    t.name = "x";
    t.n_dims = CAS_TENSOR_DIMS_MAX + 1;
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), -EINVAL);
    /* Overlapping tensors are refused at finish. */
    t.n_dims = 1;
    t.dims[0] = 10;
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), 0);
    t.offset = 0; /* same offset */
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), 0);
    cas_manifest *m = NULL;
    assert_int_equal(cas_manifest_builder_finish(b, &m), -EBADMSG);
    assert_null(m);
    cas_manifest_builder_free(b);

    /* A tensor past EOF. */
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, &p, &b), 0);
    assert_int_equal(cas_manifest_builder_add_chunk(b, id, 100), 0);
    t = (cas_tensor_info){ .name = "x", .offset = 90, .size = 11 };
    assert_int_equal(cas_manifest_builder_add_tensor(b, &t), 0);
    assert_int_equal(cas_manifest_builder_finish(b, &m), -EBADMSG);
    cas_manifest_builder_free(b);
    cas_manifest_builder_free(NULL);
    cas_manifest_free(NULL);
}

static void
put_le(uint8_t *b, size_t off, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[off + i] = (uint8_t)(v >> (8 * i));
}

typedef struct patch {
    size_t off;
    uint64_t val;
    size_t n; /* bytes written little-endian at off */
} patch;

static void
test_malformed_table(void **state)
{
    uint8_t base[512];
    size_t blen = unhex(ka_hex, base);
    static const struct {
        const char *what;
        patch p[3];
    } cases[] = {
        { "magic", { { 0, 'n', 1 } } },
        { "version 0", { { 4, 0, 2 } } },
        { "version 2", { { 4, 2, 2 } } },
        { "kind 4", { { 6, 4, 1 } } },
        { "flags", { { 7, 1, 1 } } },
        { "reserved", { { 38, 1, 2 } } },
        { "min below floor", { { 8, 63, 4 } } },
        { "avg not power of two", { { 12, 65537, 4 } } },
        { "max over ceiling", { { 16, (16u << 20) + 1, 4 } } },
        { "min == avg", { { 8, 65536, 4 } } },
        { "chunk count + 1", { { 20, 3, 4 } } },
        { "chunk count - 1", { { 20, 1, 4 } } },
        { "chunk count over max", { { 20, CAS_MANIFEST_CHUNKS_MAX + 1, 4 } } },
        { "chunk count 2^32-1", { { 20, 0xffffffff, 4 } } },
        { "total + 1", { { 24, 151, 8 } } },
        { "total - 1", { { 24, 149, 8 } } },
        { "total over max", { { 24, (UINT64_C(1) << 48) + 150, 8 } } },
        { "total 2^64-1", { { 24, UINT64_MAX, 8 } } },
        { "total 0 with chunks", { { 24, 0, 8 } } },
        { "tensor count + 1", { { 32, 3, 4 } } },
        { "tensor count over max", { { 32, CAS_MANIFEST_TENSORS_MAX + 1, 4 } } },
        { "tensor count 2^32-1", { { 32, 0xffffffff, 4 } } },
        { "meta count + 1", { { 36, 3, 2 } } },
        { "meta count over max", { { 36, 33, 2 } } },
        { "meta count 65535", { { 36, 0xffff, 2 } } },
        { "key length 0", { { 40, 0, 1 } } },
        { "key length long", { { 40, 200, 1 } } },
        { "key upper case", { { 41, 'F', 1 } } },
        { "key NUL", { { 42, 0, 1 } } },
        { "keys unsorted", { { 54, 'a', 1 } } }, /* "name" -> "aame" < "format" */
        { "value length over", { { 47, 2000, 2 } } },
        { "value NUL", { { 49, 0, 1 } } },
        { "value overlong UTF-8", { { 49, 0x80c0, 2 } } },
        { "value lone continuation", { { 50, 0x80, 1 } } },
        { "value surrogate", { { 49, 0xeb, 1 }, { 49, 0xa0ed, 2 }, { 51, 0x80, 1 } } },
        { "value truncated UTF-8", { { 52, 0xe6, 1 } } },
        { "chunk length 0", { { 96, 0, 4 }, { 132, 150, 4 } } },
        { "chunk length over max", { { 96, 262145, 4 }, { 24, 262195, 8 } } },
        { "chunk lengths wrap", { { 96, 0xffffffff, 4 } } },
        { "tensor name length 0", { { 136, 0, 2 } } },
        { "tensor name length over", { { 136, 257, 2 } } },
        { "tensor name NUL", { { 138, 0, 1 } } },
        { "tensor name bad UTF-8", { { 138, 0xff, 1 } } },
        { "tensor dims over max", { { 169, 9, 1 } } },
        { "tensor dims 255", { { 169, 255, 1 } } },
        { "tensor past EOF", { { 194, 121, 8 } } },
        { "tensor offset past EOF", { { 186, 151, 8 } } },
        { "tensor size wraps", { { 194, UINT64_MAX - 20, 8 } } },
        { "tensors overlap", { { 152, 21, 8 } } },
        { "tensors same offset", { { 186, 10, 8 } } },
        { "tensors unsorted", { { 186, 5, 8 } } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[512];
        memcpy(buf, base, blen);
        for (size_t j = 0; j < 3 && cases[i].p[j].n; j++)
            put_le(buf, cases[i].p[j].off, cases[i].p[j].val, cases[i].p[j].n);
        cas_manifest *m = NULL;
        int r = cas_manifest_decode(buf, blen, &m);
        if (r != -EBADMSG)
            print_message("case \"%s\": %d\n", cases[i].what, r);
        assert_int_equal(r, -EBADMSG);
        assert_null(m);
    }
    /* The base itself decodes (so every rejection above is the patch's). */
    cas_manifest *m = NULL;
    assert_int_equal(cas_manifest_decode(base, blen, &m), 0);
    cas_manifest_free(m);
}

static void
test_truncated_and_trailing(void **state)
{
    uint8_t buf[520];
    size_t blen = unhex(ka_hex, buf);
    cas_manifest *m = NULL;
    for (size_t l = 0; l < blen; l++) {
        assert_int_equal(cas_manifest_decode(buf, l, &m), -EBADMSG);
        assert_null(m);
    }
    for (size_t extra = 1; extra <= 8; extra++) {
        memset(buf + blen, 0, extra);
        assert_int_equal(cas_manifest_decode(buf, blen + extra, &m), -EBADMSG);
    }
    assert_int_equal(cas_manifest_decode(NULL, 0, &m), -EBADMSG);
    assert_int_equal(cas_manifest_decode(NULL, 5, &m), -EINVAL);
}

/* Every single-bit flip is either rejected or yields another canonical
 * manifest (ids, types, dims can take any value): never anything else. */
static void
test_bit_flips(void **state)
{
    uint8_t base[512];
    size_t blen = unhex(ka_hex, base);
    size_t rejected = 0, accepted = 0;
    for (size_t i = 0; i < blen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t buf[512];
            memcpy(buf, base, blen);
            buf[i] ^= (uint8_t)(1u << bit);
            cas_manifest *m = NULL;
            int r = cas_manifest_decode(buf, blen, &m);
            if (r < 0) {
                assert_int_equal(r, -EBADMSG);
                rejected++;
                continue;
            }
            accepted++;
            check_reencode(m);
            assert_memory_not_equal(cas_manifest_id(m), KA_ID_BYTES, 4);
            cas_manifest_free(m);
        }
    }
    print_message("bit flips: %zu rejected, %zu accepted as other manifests\n", rejected, accepted);
    assert_true(rejected > 0 && accepted > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),           cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_builder_errors),         cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_truncated_and_trailing), cmocka_unit_test(test_bit_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
