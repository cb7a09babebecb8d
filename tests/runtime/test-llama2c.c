/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/llama2c.h"
#include "testutil.h"

static void
put_i32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

/* Header of a tiny model: dim 8, hidden 12, 2 layers, 2 heads, 1 kv head,
 * vocab 5 (negative: separate classifier), seq 4. */
static uint64_t
tiny_size(int shared)
{
    uint64_t dim = 8, hid = 12, L = 2, kv = 4, V = 5, S = 4, hs = 4;
    uint64_t n = V * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim +
                 3 * L * hid * dim + dim + 2 * S * hs / 2 + (shared ? 0 : V * dim);
    return 28 + 4 * n;
}

static uint8_t *
tiny(int shared, size_t *ret_len)
{
    size_t len = (size_t)tiny_size(shared);
    uint8_t *f = calloc(1, len);
    int32_t h[7] = { 8, 12, 2, 2, 1, shared ? 5 : -5, 4 };
    for (int i = 0; i < 7; i++)
        put_i32(f + 4 * i, h[i]);
    *ret_len = len;
    return f;
}

static void
test_tiny(void **state)
{
    for (int shared = 0; shared < 2; shared++) {
        size_t len;
        uint8_t *f = tiny(shared, &len);
        rt_llama2c m;
        assert_int_equal(rt_llama2c_parse(f, len, len, &m), 0);
        assert_int_equal(m.shared_classifier, shared);
        assert_int_equal(m.vocab_size, 5);
        assert_int_equal(m.n_tensors, 1 + 9 * 2 + 3 + !shared);
        /* The table tiles [28, len) exactly, in order. */
        uint64_t off = 28;
        for (uint64_t i = 0; i < m.n_tensors; i++) {
            rt_tensor_info t;
            assert_int_equal(rt_llama2c_tensor(&m, i, &t), 0);
            assert_int_equal(t.offset, off);
            assert_int_equal(t.size, t.dims[0] * t.dims[1] * 4);
            off += t.size;
        }
        assert_int_equal(off, len);
        rt_tensor_info t;
        assert_int_equal(rt_llama2c_find(&m, RT_L2C_ATTN_K, 1, &t), 0);
        assert_string_equal(t.name, "blk.1.attn_k.weight");
        assert_int_equal(t.dims[0], 8);
        assert_int_equal(t.dims[1], 4);
        assert_int_equal(rt_llama2c_find(&m, RT_L2C_FFN_DOWN, 0, &t), 0);
        assert_int_equal(t.dims[0], 12);
        assert_int_equal(t.dims[1], 8);
        assert_int_equal(rt_llama2c_find(&m, RT_L2C_OUTPUT, 0, &t), shared ? -ENOENT : 0);
        assert_int_equal(rt_llama2c_find(&m, RT_L2C_ATTN_Q, 2, &t), -EINVAL);
        assert_int_equal(rt_llama2c_tensor(&m, m.n_tensors, &t), -EINVAL);

        /* Every truncation and extension is malformed; short prefixes ask
         * for the header. */
        for (size_t n = 0; n < len; n++) {
            assert_int_equal(rt_llama2c_parse(f, n, n, &m), -EBADMSG);
            if (n < 28)
                assert_int_equal(rt_llama2c_parse(f, n, len, &m), -EAGAIN);
        }
        assert_int_equal(rt_llama2c_parse(f, len, len + 1, &m), 0 - EBADMSG);
        free(f);
    }
}

static void
test_bad_header(void **state)
{
    size_t len;
    uint8_t *f = tiny(1, &len);
    rt_llama2c m;
    static const struct {
        int field;
        int32_t v;
    } bad[] = {
        { 0, 0 }, { 0, -8 }, { 0, 1 << 20 },   { 1, 0 }, { 2, 0 }, { 2, 100000 },    { 3, 0 },
        { 3, 3 }, { 3, 8 },  { 4, 0 },         { 4, 3 }, { 5, 0 }, { 5, INT32_MIN }, { 5, 1 << 30 },
        { 6, 0 }, { 6, -1 }, { 6, INT32_MAX },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t save[4];
        memcpy(save, f + 4 * bad[i].field, 4);
        put_i32(f + 4 * bad[i].field, bad[i].v);
        assert_int_equal(rt_llama2c_parse(f, len, len, &m), -EBADMSG);
        memcpy(f + 4 * bad[i].field, save, 4);
    }
    assert_int_equal(rt_llama2c_parse(f, len, len, &m), 0);
    /* A huge claimed model against a small file. */
    put_i32(f, 65536);
    put_i32(f + 4, 65536);
    put_i32(f + 8, 1024);
    assert_int_equal(rt_llama2c_parse(f, len, len, &m), -EBADMSG);
    free(f);
}

static void
test_real(void **state)
{
    const char *names[] = { "aidreams260K.bin", "stories260K.bin" };
    for (int i = 0; i < 2; i++) {
        char *path = tu_model_path(names[i]);
        if (!path)
            skip();
        uint8_t *f;
        size_t len;
        assert_int_equal(tu_read_file(path, &f, &len), 0);
        rt_llama2c m;
        assert_int_equal(rt_llama2c_parse(f, len, len, &m), 0);
        assert_int_equal(m.dim, 64);
        assert_int_equal(m.hidden_dim, 172);
        assert_int_equal(m.vocab_size, 512);
        assert_true(m.shared_classifier);
        assert_int_equal(m.n_layers, i == 0 ? 4 : 5);
        assert_int_equal(m.n_kv_heads, 4);
        free(f);
        free(path);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
