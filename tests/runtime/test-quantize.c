/* SPDX-License-Identifier: MIT */
/*
 * Quantizer tests: half-precision conversion over all 65,536 halves, known
 * Q8_0/Q4_0 blocks, the scale search never worse than round-to-nearest, and
 * whole-model conversion of aidreams260K compared byte for byte with the
 * shared GGUF files made by llama.cpp's converter and quantizer (F32, Q8_0,
 * Q4_0 with ffn_down in F16), plus the activation-aware Q4's folding.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/quantize.h"
#include "testutil.h"

static void
test_f16(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rt_quant_f32((uint16_t)h);
        if (isnan(f))
            assert_true(isnan(rt_quant_f32(rt_quant_f16(f))));
        else
            assert_int_equal(rt_quant_f16(f), h);
    }
    assert_int_equal(rt_quant_f16(1.0f), 0x3C00);
    assert_int_equal(rt_quant_f16(-2.0f), 0xC000);
    assert_int_equal(rt_quant_f16(65504.0f), 0x7BFF);
    assert_int_equal(rt_quant_f16(65520.0f), 0x7C00); /* rounds up to Inf */
    assert_int_equal(rt_quant_f16(ldexpf(1.0f, -24)), 0x0001);
    assert_int_equal(rt_quant_f16(ldexpf(1.0f, -25)), 0x0000); /* tie to even */
    assert_int_equal(rt_quant_f16(ldexpf(3.0f, -25)), 0x0002);
    /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1). */
    assert_int_equal(rt_quant_f16(1.0f + ldexpf(1.0f, -11)), 0x3C00);
    assert_int_equal(rt_quant_f16(1.0f + ldexpf(3.0f, -11)), 0x3C02);
    assert_int_equal(rt_quant_f16(INFINITY), 0x7C00);
    assert_true(isnan(rt_quant_f32(rt_quant_f16(NAN))));
}

static void
test_q8_0_block(void **state)
{
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    uint8_t b[34];
    rt_quant_row_q8_0(x, b, 32);
    /* d = 16/127 in fp16; q = round(x * 127 / 16). */
    assert_int_equal(b[0] | b[1] << 8, rt_quant_f16(16.0f / 127.0f));
    assert_int_equal((int8_t)b[2], -127);
    assert_int_equal((int8_t)b[2 + 16], 0);
    assert_int_equal((int8_t)b[2 + 31], (int8_t)roundf(15.0f * 127.0f / 16.0f));
    float y[32];
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q8_0, b, y, 32), 0);
    for (int j = 0; j < 32; j++)
        assert_true(fabsf(y[j] - x[j]) <= 16.0f / 127.0f / 2.0f * 1.01f);
    /* All zero: d = 0, q = 0. */
    memset(x, 0, sizeof(x));
    rt_quant_row_q8_0(x, b, 32);
    for (int j = 0; j < 34; j++)
        assert_int_equal(b[j], 0);
}

static void
test_q4_0_block(void **state)
{
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    uint8_t b[18];
    rt_quant_row_q4_0(x, b, 32);
    /* The largest magnitude is -16: d = -16 / -8 = 2, q = x / 2 + 8. */
    assert_int_equal(b[0] | b[1] << 8, 0x4000); /* 2.0 */
    for (int j = 0; j < 16; j++) {
        int lo = b[2 + j] & 15, hi = b[2 + j] >> 4;
        int qlo = (int)floorf(x[j] / 2.0f + 8.5f), qhi = (int)floorf(x[j + 16] / 2.0f + 8.5f);
        assert_int_equal(lo, qlo < 15 ? qlo : 15);
        assert_int_equal(hi, qhi < 15 ? qhi : 15);
    }
    float y[32];
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q4_0, b, y, 32), 0);
    assert_true(y[0] == -16.0f); /* the extreme weight is exact */
    for (int j = 0; j < 32; j++)
        assert_true(fabsf(y[j] - x[j]) <= 2.0f);
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q4_0, b, y, 31), -EINVAL);
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q4_1, b, y, 32), -EINVAL);
}

static double
werr(const float *x, const float *imp, const uint8_t *q, size_t n)
{
    float y[256];
    rt_quant_dequant_row(RT_TYPE_Q4_0, q, y, n);
    double e = 0.0;
    for (size_t j = 0; j < n; j++)
        e += (imp ? imp[j] : 1.0) * (double)(x[j] - y[j]) * (x[j] - y[j]);
    return e;
}

static void
test_q4_search(void **state)
{
    (void)state;
    double tot_rtn = 0.0, tot_s = 0.0;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        enum {
            N = 256
        };
        float x[N], imp[N];
        uint32_t r[N];
        tu_fill_random(r, sizeof(r), seed);
        for (int j = 0; j < N; j++) {
            /* Roughly Gaussian weights with an outlier now and then. */
            x[j] = ((float)(r[j] & 0xFFFF) - 32768.0f) / 32768.0f;
            x[j] = x[j] * x[j] * x[j] * ((r[j] >> 16) % 17 == 0 ? 4.0f : 1.0f);
            imp[j] = 0.1f + (float)((r[j] >> 20) & 15);
        }
        uint8_t a[N / 32 * 18], b[N / 32 * 18], c[N / 32 * 18];
        rt_quant_row_q4_0(x, a, N);
        rt_quant_row_q4_0_search(x, NULL, b, N);
        rt_quant_row_q4_0_search(x, imp, c, N);
        /* The search includes the round-to-nearest scale, so it is never worse. */
        assert_true(werr(x, NULL, b, N) <= werr(x, NULL, a, N) * (1 + 1e-6));
        assert_true(werr(x, imp, c, N) <= werr(x, imp, a, N) * (1 + 1e-6));
        tot_rtn += werr(x, NULL, a, N);
        tot_s += werr(x, NULL, b, N);
    }
    printf("q4 search: squared error %.3f of round-to-nearest\n", tot_s / tot_rtn);
    assert_true(tot_s < tot_rtn);
}

typedef struct gg {
    uint8_t *buf;
    size_t len;
    rt_gguf g;
} gg;

static int
sink(void *ud, const void *p, size_t n)
{
    gg *o = ud;
    o->buf = realloc(o->buf, o->len + n);
    assert_non_null(o->buf);
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* Converts file name with opts into memory and parses the result. */
static bool
convert(const char *name, const rt_quant_opts *o, gg *out, rt_quant_report *rep)
{
    char *p = tu_model_path(name);
    if (!p)
        return false;
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    free(p);
    rt_quant_result *res = NULL;
    assert_int_equal(rt_quant_model(buf, len, o, &res, rep), 0);
    memset(out, 0, sizeof(*out));
    assert_int_equal(rt_gguf_writer_write(rt_quant_result_writer(res), sink, out), 0);
    rt_quant_result_free(res);
    free(buf);
    assert_int_equal(rt_gguf_parse(out->buf, out->len, out->len, &out->g, NULL), 0);
    return true;
}

static bool
load(const char *name, gg *out)
{
    char *p = tu_model_path(name);
    if (!p)
        return false;
    assert_int_equal(tu_read_file(p, &out->buf, &out->len), 0);
    free(p);
    assert_int_equal(rt_gguf_parse(out->buf, out->len, out->len, &out->g, NULL), 0);
    return true;
}

/* Every tensor of ref exists in got with the same type, dims and bytes. */
static void
same_tensors(const gg *got, const gg *ref)
{
    rt_gguf_iter it = RT_GGUF_ITER_INIT;
    rt_tensor_info a, b;
    uint64_t n = 0;
    while (rt_gguf_tensor_next(&ref->g, &it, &a) > 0) {
        /* llama.cpp's converter stores a shared classifier as a copy named
         * output.weight; nvx leaves it out (readers then use token_embd),
         * unless the types differ (Q4_0 files keep the classifier Q8_0). */
        if (strcmp(a.name, "output.weight") == 0 &&
            rt_gguf_tensor_find(&got->g, a.name, &b) == -ENOENT) {
            assert_int_equal(rt_gguf_tensor_find(&got->g, "token_embd.weight", &b), 0);
            assert_int_equal(b.type, a.type);
            assert_memory_equal(got->buf + b.offset, ref->buf + a.offset, (size_t)a.size);
            continue;
        }
        assert_int_equal(rt_gguf_tensor_find(&got->g, a.name, &b), 0);
        assert_int_equal(b.type, a.type);
        assert_int_equal(b.n_dims, a.n_dims);
        assert_memory_equal(b.dims, a.dims, sizeof(a.dims));
        assert_int_equal(b.size, a.size);
        assert_memory_equal(got->buf + b.offset, ref->buf + a.offset, (size_t)a.size);
        n++;
    }
    assert_int_equal(n, got->g.n_tensors);
}

static void
check_llama_meta(const gg *got, const gg *ref)
{
    static const char *const keys[] = {
        "llama.context_length",        "llama.embedding_length",
        "llama.feed_forward_length",   "llama.block_count",
        "llama.attention.head_count",  "llama.attention.head_count_kv",
        "llama.rope.dimension_count",  "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        uint32_t a, b;
        assert_int_equal(rt_gguf_get_u32(&ref->g, keys[i], &a), 0);
        assert_int_equal(rt_gguf_get_u32(&got->g, keys[i], &b), 0);
        assert_int_equal(a, b);
    }
    /* The vocabulary matches llama.cpp's conversion of tok512.bin. */
    static const char *const arrs[] = { "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                        "tokenizer.ggml.token_type" };
    for (size_t i = 0; i < 3; i++) {
        rt_gguf_value a, b;
        assert_int_equal(rt_gguf_get(&ref->g, arrs[i], &a), 0);
        assert_int_equal(rt_gguf_get(&got->g, arrs[i], &b), 0);
        assert_int_equal(a.elem_type, b.elem_type);
        assert_int_equal(a.count, b.count);
        assert_memory_equal(a.data, b.data, (size_t)a.data_len);
    }
    uint32_t al;
    assert_int_equal(rt_gguf_get_u32(&got->g, "general.alignment", &al), 0);
    assert_int_equal(al, 32);
}

static rt_tokenizer *
tok512(void)
{
    char *p = tu_model_path("tok512.bin");
    if (!p)
        return NULL;
    rt_tokenizer *t = NULL;
    assert_int_equal(rt_tokenizer_load_llama2c_file(p, 512, &t), 0);
    free(p);
    return t;
}

static void
check_against(const char *refname, rt_type type, const char *input)
{
    rt_tokenizer *t = tok512();
    if (!t)
        skip();
    rt_quant_opts o = { .type = type, .method = RT_QUANT_RTN, .tok = t };
    gg got, ref;
    rt_quant_report rep;
    if (!convert(input, &o, &got, &rep) || !load(refname, &ref))
        skip();
    same_tensors(&got, &ref);
    check_llama_meta(&got, &ref);
    uint32_t ft;
    assert_int_equal(rt_gguf_get_u32(&got.g, "general.file_type", &ft), 0);
    assert_int_equal(ft, type == RT_TYPE_F32 ? 0 : type == RT_TYPE_Q4_0 ? 2 : 7);
    if (type != RT_TYPE_F32)
        assert_int_equal(rep.n_f16, 4); /* the four ffn_down */
    free(got.buf);
    free(ref.buf);
    rt_tokenizer_free(t);
}

static void
test_model_f32_like_llamacpp(void **state)
{
    (void)state;
    check_against("aidreams260K-f32.gguf", RT_TYPE_F32, "aidreams260K.bin");
}

static void
test_model_q8_like_llamacpp(void **state)
{
    (void)state;
    check_against("aidreams260K-Q8_0-ffndownF16.gguf", RT_TYPE_Q8_0, "aidreams260K.bin");
}

static void
test_model_q4_like_llamacpp(void **state)
{
    (void)state;
    check_against("aidreams260K-Q4_0-ffndownF16.gguf", RT_TYPE_Q4_0, "aidreams260K.bin");
}

static void
test_model_from_gguf(void **state)
{
    (void)state;
    /* GGUF F32 in: the same tensors, and the input's vocabulary carried over. */
    check_against("aidreams260K-Q8_0-ffndownF16.gguf", RT_TYPE_Q8_0, "aidreams260K-f32.gguf");
}

static void
test_awq_folds(void **state)
{
    (void)state;
    rt_quant_opts o = {
        .type = RT_TYPE_Q4_0, .method = RT_QUANT_AWQ, .seed = 5, .calib_tokens = 128
    };
    gg got, ref;
    rt_quant_report rep;
    if (!convert("aidreams260K-f32.gguf", &o, &got, &rep) || !load("aidreams260K-f32.gguf", &ref))
        skip();
    /* Standard types only; ffn_down F16. */
    rt_gguf_iter it = RT_GGUF_ITER_INIT;
    rt_tensor_info ti;
    while (rt_gguf_tensor_next(&got.g, &it, &ti) > 0) {
        if (ti.n_dims == 1)
            assert_int_equal(ti.type, RT_TYPE_F32);
        else if (strstr(ti.name, "ffn_down"))
            assert_int_equal(ti.type, RT_TYPE_F16);
        else if (strcmp(ti.name, "output.weight") == 0)
            assert_int_equal(ti.type, RT_TYPE_Q8_0);
        else
            assert_int_equal(ti.type, RT_TYPE_Q4_0);
    }
    /* attn_norm[j] * wq[i][j] is preserved up to quantization error although
     * both factors changed. */
    rt_tensor_info n0, n1, q0, q1;
    assert_int_equal(rt_gguf_tensor_find(&ref.g, "blk.1.attn_norm.weight", &n0), 0);
    assert_int_equal(rt_gguf_tensor_find(&got.g, "blk.1.attn_norm.weight", &n1), 0);
    assert_int_equal(rt_gguf_tensor_find(&ref.g, "blk.1.attn_q.weight", &q0), 0);
    assert_int_equal(rt_gguf_tensor_find(&got.g, "blk.1.attn_q.weight", &q1), 0);
    const float *g0 = (const float *)(ref.buf + n0.offset),
                *g1 = (const float *)(got.buf + n1.offset);
    assert_memory_not_equal(g0, g1, 64 * sizeof(float));
    float w0[64 * 64], w1[64 * 64];
    memcpy(w0, ref.buf + q0.offset, sizeof(w0));
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q4_0, got.buf + q1.offset, w1, 64 * 64), 0);
    double e = 0.0, s = 0.0;
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++) {
            double a = (double)g0[j] * w0[i * 64 + j], b = (double)g1[j] * w1[i * 64 + j];
            e += (a - b) * (a - b);
            s += a * a;
        }
    assert_true(e / s < 0.02); /* Q4 keeps ~99% of the energy */
    free(got.buf);
    free(ref.buf);
}

static void
test_rejects(void **state)
{
    (void)state;
    rt_quant_opts o = { .type = RT_TYPE_Q8_0 };
    rt_quant_result *res = NULL;
    uint8_t junk[64] = { 'G', 'G', 'U', 'F', 9 };
    assert_int_equal(rt_quant_model(junk, sizeof(junk), &o, &res, NULL), -EBADMSG);
    o.type = RT_TYPE_Q4_1;
    assert_int_equal(rt_quant_model(junk, sizeof(junk), &o, &res, NULL), -EINVAL);
    /* Already quantized input is decoded and requantized (and said so);
     * the activation-aware pass calibrates llama models only. */
    char *p = tu_model_path("aidreams260K-Q8_0-ffndownF16.gguf");
    if (!p)
        skip();
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    o.type = RT_TYPE_Q4_0;
    rt_quant_report rep;
    assert_int_equal(rt_quant_model(buf, len, &o, &res, &rep), 0);
    assert_true(rep.requantized);
    rt_quant_result_free(res);
    res = NULL;
    free(buf);
    free(p);
    p = tu_model_path("realarch/qwen2-gqa-Q8_0.gguf");
    if (!p)
        skip();
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    o.method = RT_QUANT_AWQ;
    assert_int_equal(rt_quant_model(buf, len, &o, &res, NULL), -ENOTSUP);
    assert_null(res);
    free(buf);
    free(p);
}

/* The F32 GGUF with blk.0.attn_k.weight renamed blk.0.attn_q.weight in the
 * tensor table: two tensors of one name. Both the converter and the engine
 * refuse it (which one is meant would depend on the reader). */
static void
test_rejects_duplicate_names(void **state)
{
    (void)state;
    char *p = tu_model_path("aidreams260K-f32.gguf");
    if (!p)
        skip();
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    const char *from = "blk.0.attn_k.weight";
    size_t n = strlen(from);
    uint8_t *at = NULL;
    for (size_t i = 0; i + n <= len && !at; i++)
        if (memcmp(buf + i, from, n) == 0)
            at = buf + i;
    assert_non_null(at);
    rt_quant_opts o = { .type = RT_TYPE_Q8_0 };
    rt_quant_result *res = NULL;
    assert_int_equal(rt_quant_model(buf, len, &o, &res, NULL), 0); /* intact: fine */
    rt_quant_result_free(res);
    res = NULL;
    at[11] = 'q'; /* "blk.0.attn_" is 11 bytes */
    assert_int_equal(rt_quant_model(buf, len, &o, &res, NULL), -EBADMSG);
    assert_null(res);
    rt_arena_report rep;
    assert_int_equal(rt_model_plan(buf, len, NULL, &rep), -EBADMSG);
    free(buf);
    free(p);
}

static void
test_non_finite(void **state)
{
    (void)state;
    /* Regression (libFuzzer): NaN/Inf weights reached undefined float-to-int
     * conversions. The row quantizers now clamp, and models holding them are
     * refused. */
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)j;
    x[3] = NAN;
    x[7] = INFINITY;
    x[9] = -INFINITY;
    uint8_t q8[34], q4[18];
    rt_quant_row_q8_0(x, q8, 32);
    rt_quant_row_q4_0(x, q4, 32);
    rt_quant_row_q4_0_search(x, NULL, q4, 32);
    char *p = tu_model_path("aidreams260K-f32.gguf");
    if (!p)
        skip();
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    rt_gguf g;
    rt_tensor_info ti;
    assert_int_equal(rt_gguf_parse(buf, len, len, &g, NULL), 0);
    assert_int_equal(rt_gguf_tensor_find(&g, "blk.2.ffn_up.weight", &ti), 0);
    float nan = NAN;
    memcpy(buf + ti.offset + 4 * 100, &nan, 4);
    rt_quant_opts o = { .type = RT_TYPE_Q4_0 };
    rt_quant_result *res = NULL;
    assert_int_equal(rt_quant_model(buf, len, &o, &res, NULL), -EBADMSG);
    assert_null(res);
    free(buf);
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_q8_0_block),
        cmocka_unit_test(test_q4_0_block),
        cmocka_unit_test(test_q4_search),
        cmocka_unit_test(test_model_f32_like_llamacpp),
        cmocka_unit_test(test_model_q8_like_llamacpp),
        cmocka_unit_test(test_model_q4_like_llamacpp),
        cmocka_unit_test(test_model_from_gguf),
        cmocka_unit_test(test_awq_folds),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_rejects_duplicate_names),
        cmocka_unit_test(test_non_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
