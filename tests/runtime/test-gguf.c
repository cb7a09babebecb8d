/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/gguf.h"
#include "synth.h"
#include "testutil.h"

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
test_small_ok(void **state)
{
    synth s;
    size_t len;
    uint8_t *f = synth_small(&s, &len);
    rt_gguf g;
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), 0);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.n_tensors, 2);
    assert_int_equal(g.alignment, 32);
    assert_int_equal(g.data_off, s.data_off);

    const char *str;
    uint64_t n;
    assert_int_equal(rt_gguf_get_str(&g, "general.architecture", &str, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(str, "llama", 5);
    uint32_t u;
    assert_int_equal(rt_gguf_get_u32(&g, "llama.block_count", &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(rt_gguf_get_u32(&g, "nope", &u), -ENOENT);
    assert_int_equal(rt_gguf_get_u32(&g, "general.architecture", &u), -EBADMSG);
    float fl;
    assert_int_equal(rt_gguf_get_f32(&g, "llama.block_count", &fl), -EBADMSG);

    rt_gguf_value arr;
    assert_int_equal(rt_gguf_get_arr(&g, "tokenizer.ggml.tokens", RT_GGUF_STRING, &arr), 0);
    assert_int_equal(arr.count, 3);
    uint64_t cur = 0;
    const char *expect[] = { "<unk>", "a", "bc" };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rt_gguf_arr_str_next(&arr, &cur, &str, &n), 1);
        assert_int_equal(n, strlen(expect[i]));
        assert_memory_equal(str, expect[i], n);
    }
    assert_int_equal(rt_gguf_arr_str_next(&arr, &cur, &str, &n), 0);
    assert_int_equal(rt_gguf_get_arr(&g, "tokenizer.ggml.scores", RT_GGUF_STRING, &arr), -EBADMSG);
    assert_int_equal(rt_gguf_get_arr(&g, "tokenizer.ggml.scores", RT_GGUF_F32, &arr), 0);
    assert_true(rt_gguf_arr_f32(&arr, 1) == -1.5f);
    assert_true(rt_gguf_arr_f32(&arr, 2) == 2.25f);
    assert_int_equal(rt_gguf_get_arr(&g, "tokenizer.ggml.token_type", RT_GGUF_I32, &arr), 0);
    assert_int_equal(rt_gguf_arr_i64(&arr, 0), 2);

    rt_tensor_info t;
    rt_gguf_iter it = RT_GGUF_ITER_INIT;
    assert_int_equal(rt_gguf_tensor_next(&g, &it, &t), 1);
    assert_string_equal(t.name, "a");
    assert_int_equal(t.type, RT_TYPE_F32);
    assert_int_equal(t.dims[0], 4);
    assert_int_equal(t.dims[1], 2);
    assert_int_equal(t.offset, s.data_abs[0]);
    assert_int_equal(t.size, 32);
    assert_int_equal(rt_gguf_tensor_next(&g, &it, &t), 1);
    assert_string_equal(t.name, "b");
    assert_int_equal(t.type, RT_TYPE_Q8_0);
    assert_int_equal(t.offset, s.data_abs[1]);
    assert_int_equal(t.size, 34);
    assert_int_equal(rt_gguf_tensor_next(&g, &it, &t), 0);
    assert_int_equal(rt_gguf_tensor_find(&g, "b", &t), 0);
    assert_int_equal(t.offset, s.data_abs[1]);
    assert_int_equal(rt_gguf_tensor_find(&g, "c", &t), -ENOENT);
    free(f);
}

/* Every truncation of the file is malformed; every prefix of the full file
 * either parses or asks for more, and the "need" loop converges. */
static void
test_truncation(void **state)
{
    synth s;
    size_t len;
    uint8_t *f = synth_small(&s, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *cp = malloc(n ? n : 1);
        memcpy(cp, f, n);
        rt_gguf g;
        assert_int_equal(rt_gguf_parse(cp, n, n, &g, NULL), -EBADMSG);
        uint64_t need = 0;
        int r = rt_gguf_parse(cp, n, len, &g, &need);
        if (n >= s.data_off - 1 && r == 0) {
            assert_int_equal(g.data_off, s.data_off);
        } else {
            assert_int_equal(r, -EAGAIN);
            assert_true(need > n && need <= len);
        }
        free(cp);
    }
    /* Loop on need from an empty prefix. */
    size_t have = 0;
    rt_gguf g;
    uint64_t need;
    int steps = 0;
    while (rt_gguf_parse(f, have, len, &g, &need) == -EAGAIN) {
        assert_true(need > have);
        have = (size_t)need;
        steps++;
    }
    assert_true(steps > 0);
    assert_int_equal(g.n_tensors, 2);
    free(f);
}

static int
parse_mutated(const uint8_t *f, size_t len, size_t off, const void *bytes, size_t n)
{
    uint8_t *cp = malloc(len);
    memcpy(cp, f, len);
    memcpy(cp + off, bytes, n);
    rt_gguf g;
    int r = rt_gguf_parse(cp, len, len, &g, NULL);
    free(cp);
    return r;
}

static void
test_malformed(void **state)
{
    synth s;
    size_t len;
    uint8_t *f = synth_small(&s, &len);
    uint8_t b[8];

    /* Magic, versions 1, 4 and big-endian 3. */
    assert_int_equal(parse_mutated(f, len, 0, "GGUG", 4), -EBADMSG);
    put_u32(b, 1);
    assert_int_equal(parse_mutated(f, len, 4, b, 4), -EBADMSG);
    put_u32(b, 4);
    assert_int_equal(parse_mutated(f, len, 4, b, 4), -EBADMSG);
    put_u32(b, 0x03000000);
    assert_int_equal(parse_mutated(f, len, 4, b, 4), -EBADMSG);
    put_u32(b, 2);
    assert_int_equal(parse_mutated(f, len, 4, b, 4), 0);

    /* Huge and off-by-one counts. */
    put_u64(b, UINT64_MAX);
    assert_int_equal(parse_mutated(f, len, 8, b, 8), -EBADMSG);
    assert_int_equal(parse_mutated(f, len, 16, b, 8), -EBADMSG);
    put_u64(b, 3);
    assert_int_equal(parse_mutated(f, len, 8, b, 8), -EBADMSG);
    put_u64(b, 1); /* still valid: the second info is then read as data */
    assert_int_equal(parse_mutated(f, len, 8, b, 8), 0);

    /* Tensor info fields of tensor 1 ("b": name len 1). */
    size_t ti = s.ti_off[1];
    size_t ndims = ti + 8 + 1, dim0 = ndims + 4, type = dim0 + 16, toff = type + 4;
    put_u64(b, 65);
    assert_int_equal(parse_mutated(f, len, ti, b, 8), -EBADMSG);
    put_u32(b, 0);
    assert_int_equal(parse_mutated(f, len, ndims, b, 4), -EBADMSG);
    put_u32(b, 5);
    assert_int_equal(parse_mutated(f, len, ndims, b, 4), -EBADMSG);
    put_u64(b, 0);
    assert_int_equal(parse_mutated(f, len, dim0, b, 8), -EBADMSG);
    put_u64(b, 33); /* not a multiple of the Q8_0 block */
    assert_int_equal(parse_mutated(f, len, dim0, b, 8), -EBADMSG);
    put_u64(b, 64); /* data would run past the end */
    assert_int_equal(parse_mutated(f, len, dim0, b, 8), -EBADMSG);
    put_u64(b, (uint64_t)1 << 63);
    assert_int_equal(parse_mutated(f, len, dim0, b, 8), -EBADMSG);
    put_u32(b, 4); /* removed ggml type */
    assert_int_equal(parse_mutated(f, len, type, b, 4), -EBADMSG);
    put_u32(b, 1000);
    assert_int_equal(parse_mutated(f, len, type, b, 4), -EBADMSG);
    put_u64(b, 33); /* misaligned */
    assert_int_equal(parse_mutated(f, len, toff, b, 8), -EBADMSG);
    put_u64(b, 64); /* out of range */
    assert_int_equal(parse_mutated(f, len, toff, b, 8), -EBADMSG);
    put_u64(b, UINT64_MAX - 31);
    assert_int_equal(parse_mutated(f, len, toff, b, 8), -EBADMSG);
    put_u64(b, 0); /* overlapping is allowed by the format */
    assert_int_equal(parse_mutated(f, len, toff, b, 8), 0);
    assert_int_equal(parse_mutated(f, len, ti + 8, "\0", 1), -EBADMSG); /* NUL in name */
    free(f);
}

static void
test_bad_metadata(void **state)
{
    synth s;
    size_t len;
    uint8_t *f;
    rt_gguf g;

    synth_init(&s, 3);
    synth_alignment(&s, 24); /* not a power of two */
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);

    synth_init(&s, 3);
    synth_alignment(&s, 0);
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);

    synth_init(&s, 3);
    synth_kv_i32(&s, "general.alignment", 32); /* wrong type */
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);

    synth_init(&s, 3);
    synth_kv_bool(&s, "b", 2);
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);

    /* Alignment 64 with a tensor: data offsets follow it. */
    static const float z[16];
    const uint64_t d[1] = { 16 };
    synth_init(&s, 3);
    synth_alignment(&s, 64);
    synth_tensor(&s, "x", 0, 1, d, z, sizeof(z));
    synth_tensor(&s, "y", 1, 1, d, z, 32);
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), 0);
    assert_int_equal(g.alignment, 64);
    assert_int_equal(g.data_off % 64, 0);
    rt_tensor_info t;
    assert_int_equal(rt_gguf_tensor_find(&g, "y", &t), 0);
    assert_int_equal(t.offset, g.data_off + 64);
    assert_int_equal(t.size, 32);
    free(f);

    /* Unknown value type, arrays of arrays. */
    synth_init(&s, 3);
    synth_kv_u32(&s, "k", 0);
    f = synth_finish(&s, &len);
    size_t tpos = 24 + 8 + 1;
    f[tpos] = 13;
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);
    synth_init(&s, 3);
    const int32_t one[1] = { 7 };
    synth_kv_arr_i32(&s, "k", one, 1);
    f = synth_finish(&s, &len);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), 0);
    f[tpos + 4] = 9; /* element type: array */
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    f[tpos + 4] = 13;
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);

    /* Huge string/array lengths. */
    synth_init(&s, 3);
    const char *toks[] = { "x" };
    synth_kv_arr_str(&s, "t", toks, 1);
    f = synth_finish(&s, &len);
    uint8_t *cnt = f + 24 + 8 + 1 + 4 + 4;
    put_u64(cnt, UINT64_MAX);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    put_u64(cnt, 2);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    put_u64(cnt, 1);
    put_u64(cnt + 8, UINT64_MAX);
    assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), -EBADMSG);
    free(f);
}

static void
test_real_files(void **state)
{
    const char *names[] = { "aidreams260K-f32.gguf", "aidreams260K-Q8_0-ffndownF16.gguf",
                            "aidreams260K-Q4_0-ffndownF16.gguf" };
    for (int i = 0; i < 3; i++) {
        char *path = tu_model_path(names[i]);
        if (!path)
            skip();
        uint8_t *f;
        size_t len;
        assert_int_equal(tu_read_file(path, &f, &len), 0);
        rt_gguf g;
        assert_int_equal(rt_gguf_parse(f, len, len, &g, NULL), 0);
        uint32_t u;
        assert_int_equal(rt_gguf_get_u32(&g, "llama.embedding_length", &u), 0);
        assert_int_equal(u, 64);
        rt_gguf_value arr;
        assert_int_equal(rt_gguf_get_arr(&g, "tokenizer.ggml.tokens", RT_GGUF_STRING, &arr), 0);
        assert_int_equal(arr.count, 512);
        rt_tensor_info t;
        assert_int_equal(rt_gguf_tensor_find(&g, "blk.0.ffn_down.weight", &t), 0);
        assert_int_equal(t.type, i == 0 ? RT_TYPE_F32 : RT_TYPE_F16);
        assert_int_equal(t.dims[0], 172);
        assert_int_equal(t.dims[1], 64);
        assert_int_equal(rt_gguf_tensor_find(&g, "blk.3.attn_q.weight", &t), 0);
        assert_int_equal(t.type, i == 0 ? RT_TYPE_F32 : i == 1 ? RT_TYPE_Q8_0 : RT_TYPE_Q4_0);
        /* A prefix up to the data section is enough. */
        rt_gguf g2;
        assert_int_equal(rt_gguf_parse(f, (size_t)g.data_off, len, &g2, NULL), 0);
        uint64_t need;
        assert_int_equal(rt_gguf_parse(f, 100, len, &g2, &need), -EAGAIN);
        free(f);
        free(path);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_ok),   cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
