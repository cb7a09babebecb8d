/* SPDX-License-Identifier: MIT */
/*
 * K-quant quantizer tests: rows of several shapes quantized to Q4_K, Q5_K
 * and Q6_K and decoded by the engine's decoder stay within error bounds
 * (a packing mistake moves weights by whole steps and fails them), and the
 * whole-model round trip on the shared realarch files: the qwen2 Q8_0 file
 * requantized to Q4_K_M and Q6_K gets llama-quantize's tensor types, and
 * teacher-forced on the reference sequence its top-1 agrees with the
 * source's wherever the source's top-1 margin is clear (defined at
 * check_round_trip), and it loses no more than llama.cpp's own Q4_K_M of
 * the same model does.
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

enum {
    N_ROW = 4 * 256,
    MAX_SEQ = 64,
};

/* xorshift64 uniform in [0, 1). */
static float
uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 24);
}

/* Approximately normal (sum of 4 uniforms), mean 0, std 1. */
static float
normal(uint64_t *s)
{
    float v = 0.0f;
    for (int i = 0; i < 4; i++)
        v += uniform(s);
    return (v - 2.0f) * sqrtf(3.0f);
}

typedef void (*row_fn)(const float *x, uint8_t *out, size_t n);

static const struct {
    rt_type type;
    row_fn quant;
    size_t bytes;
    double max_rel_rmse; /* RMSE / std of the row, normal data */
} ktypes[] = {
    { RT_TYPE_Q4_K, rt_quant_row_q4_k, 144, 0.085 },
    { RT_TYPE_Q5_K, rt_quant_row_q5_k, 176, 0.043 },
    { RT_TYPE_Q6_K, rt_quant_row_q6_k, 210, 0.022 },
};

/* RMSE of row x through type k and back, relative to x's RMS. */
static double
round_trip(size_t k, const float *x)
{
    static uint8_t q[N_ROW / 256 * 210];
    static float y[N_ROW];
    ktypes[k].quant(x, q, N_ROW);
    assert_int_equal(rt_quant_dequant_row(ktypes[k].type, q, y, N_ROW), 0);
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < N_ROW; i++) {
        e += (double)(y[i] - x[i]) * (y[i] - x[i]);
        s += (double)x[i] * x[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e / N_ROW);
}

/* Normal rows at several scales: error bounds, and more bits, less error. */
static void
test_rows_normal(void **state)
{
    (void)state;
    static float x[N_ROW];
    uint64_t s = 0x9E3779B97F4A7C15u;
    const float scales[] = { 0.002f, 0.02f, 1.0f, 300.0f };
    for (size_t sc = 0; sc < 4; sc++) {
        for (size_t i = 0; i < N_ROW; i++)
            x[i] = scales[sc] * normal(&s);
        double prev = INFINITY;
        for (size_t k = 0; k < 3; k++) {
            double e = round_trip(k, x);
            printf("# %s scale %g: relative rmse %.4f\n", rt_type_name(ktypes[k].type),
                   (double)scales[sc], e);
            assert_true(e < ktypes[k].max_rel_rmse);
            assert_true(e < prev);
            prev = e;
        }
    }
}

/* Rows a simple quantizer gets wrong: all positive (the minimum is 0),
 * all negative, one large outlier per sub-block, sparse, constant. */
static void
test_rows_shapes(void **state)
{
    (void)state;
    static float x[N_ROW];
    uint64_t s = 42;
    for (int shape = 0; shape < 5; shape++) {
        for (size_t i = 0; i < N_ROW; i++) {
            float v = normal(&s);
            switch (shape) {
            case 0:
                x[i] = fabsf(v) + 0.5f;
                break;
            case 1:
                x[i] = -fabsf(v) - 0.5f;
                break;
            case 2:
                x[i] = i % 32 == 7 ? 40.0f * v : v;
                break;
            case 3:
                x[i] = i % 13 == 0 ? v : 0.0f;
                break;
            default:
                x[i] = -0.75f;
                break;
            }
        }
        for (size_t k = 0; k < 3; k++) {
            double e = round_trip(k, x);
            printf("# %s shape %d: relative rmse %.4f\n", rt_type_name(ktypes[k].type), shape, e);
            /* Outliers widen each sub-block's grid; the bound is looser
             * there, as it is for every block quantizer. */
            assert_true(e < (shape == 2 ? 0.2 : 0.1));
        }
    }
}

/* All zero rows decode to exact zeros; the byte size is the format's. */
static void
test_rows_zero(void **state)
{
    (void)state;
    static float x[N_ROW], y[N_ROW];
    static uint8_t q[N_ROW / 256 * 210 + 1];
    for (size_t k = 0; k < 3; k++) {
        memset(q, 0xAA, sizeof(q));
        ktypes[k].quant(x, q, N_ROW);
        assert_int_equal(q[N_ROW / 256 * ktypes[k].bytes], 0xAA); /* wrote no further */
        assert_int_equal(rt_quant_dequant_row(ktypes[k].type, q, y, N_ROW), 0);
        for (size_t i = 0; i < N_ROW; i++)
            assert_true(y[i] == 0.0f);
    }
    assert_int_equal(rt_quant_dequant_row(RT_TYPE_Q4_K, q, y, 100), -EINVAL);
}

/* ---- whole models (shared realarch files) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

/* How many whole-model conversions this run affords: quantizing a realarch
 * file takes about a second of CPU at -O2 and ten times that in the
 * sanitizer build (-O0) or under qemu. The plain build runs them all; the
 * sanitizer build the Q4_K_M round trip alone (the code paths are the
 * same); qemu none (the quantizer is portable C, tested natively). */
static int
budget(void)
{
#ifdef SANITIZED
    return 1; /* NVX_TEST_EMULATED in the ASan run trims the model loops only */
#else
    if (tu_emulated())
        return 0;
    return 3;
#endif
}

typedef struct mem {
    uint8_t *p;
    size_t len, cap;
} mem;

static int
mem_sink(void *ud, const void *p, size_t n)
{
    mem *m = ud;
    if (m->cap - m->len < n) {
        m->cap = (m->len + n) * 2;
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
    return 0;
}

static bool
load(const char *rel, uint8_t **buf, size_t *len)
{
    char *p = tu_model_path(rel);
    if (!p)
        return false;
    assert_int_equal(tu_read_file(p, buf, len), 0);
    free(p);
    return true;
}

static mem
quantize(const uint8_t *buf, size_t len, rt_type type, rt_quant_report *rep)
{
    rt_quant_opts o = { .type = type };
    rt_quant_result *res = NULL;
    assert_int_equal(rt_quant_model(buf, len, &o, &res, rep), 0);
    mem m = { 0 };
    assert_int_equal(rt_gguf_writer_write(rt_quant_result_writer(res), mem_sink, &m), 0);
    rt_quant_result_free(res);
    return m;
}

/* got has the tensors of ref (names, order, dims) with ref's types, and
 * general.file_type ft. */
static void
same_types(const uint8_t *got, size_t got_len, const uint8_t *ref, size_t ref_len, uint32_t ft)
{
    rt_gguf a, b;
    assert_int_equal(rt_gguf_parse(got, got_len, got_len, &a, NULL), 0);
    assert_int_equal(rt_gguf_parse(ref, ref_len, ref_len, &b, NULL), 0);
    assert_int_equal(a.n_tensors, b.n_tensors);
    rt_gguf_iter ia = RT_GGUF_ITER_INIT, ib = RT_GGUF_ITER_INIT;
    rt_tensor_info ta, tb;
    while (rt_gguf_tensor_next(&b, &ib, &tb) > 0) {
        assert_int_equal(rt_gguf_tensor_next(&a, &ia, &ta), 1);
        assert_string_equal(ta.name, tb.name);
        if (ta.type != tb.type)
            printf("# %s: %s, llama-quantize %s\n", ta.name, rt_type_name(ta.type),
                   rt_type_name(tb.type));
        assert_int_equal(ta.type, tb.type);
        assert_memory_equal(ta.dims, tb.dims, sizeof(ta.dims));
    }
    uint32_t v;
    assert_int_equal(rt_gguf_get_u32(&a, "general.file_type", &v), 0);
    assert_int_equal(v, ft);
}

/* Requantizing llama-quantize's Q4_K_M files to Q4_K_M gives each tensor
 * the type llama-quantize gave it: the mixture rule on llama (4 layers)
 * and phi3 (fused attn_qkv); qwen2 (2 layers, tied output) is checked by
 * the round trip below. */
static void
test_mixture_like_llama_quantize(void **state)
{
    (void)state;
    if (budget() < 3) {
        printf("# skipping: the plain native build checks the llama and phi3 mixtures\n");
        skip();
    }
    static const char *const files[] = { "realarch/llama-gqa-Q4_K_M.gguf",
                                         "realarch/phi3-Q4_K_M.gguf" };
    for (size_t i = 0; i < 2; i++) {
        uint8_t *buf;
        size_t len;
        if (!load(files[i], &buf, &len))
            skip();
        rt_quant_report rep;
        mem m = quantize(buf, len, RT_TYPE_Q4_K, &rep);
        assert_true(rep.requantized);
        same_types(m.p, m.len, buf, len, 15);
        free(m.p);
        free(buf);
    }
}

/* Teacher-forced logits of the model in buf over seq[0..n): rows of
 * vocab floats into out. */
static void
forced(const uint8_t *buf, size_t len, const int *seq, size_t n, float *out, uint32_t vocab)
{
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kv_type = RT_KV_F16;
    rt_arena_report rep;
    assert_int_equal(rt_model_plan(buf, len, &o, &rep), 0);
    void *arena = malloc(rep.total + RT_ARENA_ALIGN);
    rt_model *m;
    assert_int_equal(rt_model_init(buf, len, &o, arena, rep.total + RT_ARENA_ALIGN, &m, NULL), 0);
    assert_int_equal(rt_model_config(m)->vocab_size, vocab);
    for (size_t pos = 0; pos < n; pos++) {
        const float *lg = rt_forward(m, seq[pos], (int)pos);
        assert_non_null(lg);
        memcpy(out + pos * vocab, lg, vocab * sizeof(float));
    }
    free(arena);
}

static uint32_t
argmax(const float *l, uint32_t n, float *ret_margin)
{
    uint32_t a = 0, b = 1;
    if (l[b] > l[a]) {
        a = 1;
        b = 0;
    }
    for (uint32_t i = 2; i < n; i++) {
        if (l[i] > l[a]) {
            b = a;
            a = i;
        } else if (l[i] > l[b]) {
            b = i;
        }
    }
    *ret_margin = l[a] - l[b];
    return a;
}

/* Mean KL(src || q) over n positions, full vocabulary. */
static double
kl_mean(const float *src, const float *q, size_t n, uint32_t vocab)
{
    double sum = 0.0;
    for (size_t pos = 0; pos < n; pos++) {
        const float *a = src + pos * vocab, *b = q + pos * vocab;
        double ma = a[0], mb = b[0], za = 0.0, zb = 0.0, kl = 0.0;
        /* Compares, not fmax: aarch64 GCC 12 crashes vectorizing an fmax
         * reduction here (internal compiler error in vect_transform_reduction),
         * which broke the arm64 cross build. The logits are finite. */
        for (uint32_t i = 1; i < vocab; i++) {
            ma = a[i] > ma ? a[i] : ma;
            mb = b[i] > mb ? b[i] : mb;
        }
        for (uint32_t i = 0; i < vocab; i++) {
            za += exp(a[i] - ma);
            zb += exp(b[i] - mb);
        }
        for (uint32_t i = 0; i < vocab; i++) {
            double la = a[i] - ma - log(za), lb = b[i] - mb - log(zb);
            kl += exp(la) * (la - lb);
        }
        sum += kl;
    }
    return sum / (double)n;
}

static size_t
read_ids(const char *rel, int *seq, size_t n)
{
    uint8_t *buf;
    size_t len;
    assert_true(load(rel, &buf, &len));
    char *text = calloc(1, len + 1);
    memcpy(text, buf, len);
    for (char *p = text, *end; n < MAX_SEQ; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        seq[n++] = (int)v;
    }
    free(text);
    free(buf);
    return n;
}

/* The round trip of the issue: qwen2-gqa-Q8_0 requantized to type, run by
 * nvx on prompt-ids + greedy, against nvx on the source.
 *
 * A clear margin: the source's top1 - top2 logit gap exceeds clear_tol,
 * three times the RMS change the quantization type makes to a logit on
 * this model (llama.cpp's own Q4_K_M of it moves logits by RMS 0.09-0.13
 * per position, so 0.30; Q6_K about 0.04, so 0.12). Where the margin is
 * smaller a quantized model may legitimately swap the top two, as
 * llama.cpp's files do (README "F16 versus quantized": its Q4_K_M agrees
 * with F16 at 43% of positions). At every clear position the top-1 must
 * agree. The random model's logits are flat (largest margin on this
 * sequence 0.20), so for Q4_K_M no position is clear and the second check
 * decides: the quantized file's mean KL from the source must stay within
 * kl_factor times what llama.cpp's shipped Q4_K_M of the same model loses
 * (measured here, in the same run): 1.25 for Q4_K_M, 0.25 for Q6_K. */
static void
check_round_trip(rt_type type, float clear_tol, double kl_factor)
{
    uint8_t *src = NULL, *llq = NULL;
    size_t src_len = 0, llq_len = 0;
    if (!load("realarch/qwen2-gqa-Q8_0.gguf", &src, &src_len) ||
        !load("realarch/qwen2-gqa-Q4_K_M.gguf", &llq, &llq_len))
        skip();
    int seq[MAX_SEQ];
    size_t n = read_ids("realarch/qwen2-gqa-Q8_0.gguf.prompt-ids", seq, 0);
    n = read_ids("realarch/qwen2-gqa-Q8_0.gguf.greedy", seq, n);
    const uint32_t vocab = 50257;
    float *ls = malloc(n * vocab * sizeof(float)), *lq = malloc(n * vocab * sizeof(float)),
          *ll = malloc(n * vocab * sizeof(float));
    assert_true(ls && lq && ll);
    rt_quant_report rep;
    mem q = quantize(src, src_len, type, &rep);
    /* llama-quantize made qwen2-gqa-Q4_K_M.gguf from the F16 original. */
    if (type == RT_TYPE_Q4_K)
        same_types(q.p, q.len, llq, llq_len, 15);
    else /* every matrix Q6_K; norms and biases F32 */
        assert_true(rep.n_by_type[RT_TYPE_Q6_K] == 15 && rep.n_by_type[RT_TYPE_F32] == 11);
    forced(src, src_len, seq, n, ls, vocab);
    forced(q.p, q.len, seq, n, lq, vocab);
    forced(llq, llq_len, seq, n, ll, vocab);
    size_t agree = 0, agree_ll = 0, clear = 0;
    for (size_t pos = 0; pos < n; pos++) {
        float ms, mq, ml;
        uint32_t a = argmax(ls + pos * vocab, vocab, &ms), b = argmax(lq + pos * vocab, vocab, &mq);
        agree += a == b;
        agree_ll += a == argmax(ll + pos * vocab, vocab, &ml);
        if (ms > clear_tol) {
            clear++;
            assert_int_equal(a, b);
        }
    }
    double kl = kl_mean(ls, lq, n, vocab), kl_ll = kl_mean(ls, ll, n, vocab);
    printf("# %s of qwen2-gqa-Q8_0: %zu positions, top-1 agrees at %zu (llama.cpp's Q4_K_M at "
           "%zu; all %zu with margin > %.2f), mean KL %.5f (llama.cpp's Q4_K_M %.5f, bound "
           "%.5f)\n",
           rt_type_name(type), n, agree, agree_ll, clear, (double)clear_tol, kl, kl_ll,
           kl_factor * kl_ll);
    assert_true(kl <= kl_factor * kl_ll);
    free(q.p);
    free(ls);
    free(lq);
    free(ll);
    free(src);
    free(llq);
}

static void
test_round_trip_q4_k_m(void **state)
{
    (void)state;
    if (budget() < 1) {
        printf("# skipping under emulation: the native builds run the round trip\n");
        skip();
    }
    check_round_trip(RT_TYPE_Q4_K, 0.30f, 1.25);
}

static void
test_round_trip_q6_k(void **state)
{
    (void)state;
    if (budget() < 2) {
        printf("# skipping: the plain native build runs the Q6_K round trip\n");
        skip();
    }
    check_round_trip(RT_TYPE_Q6_K, 0.12f, 0.25);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_normal),
        cmocka_unit_test(test_rows_shapes),
        cmocka_unit_test(test_rows_zero),
        cmocka_unit_test(test_mixture_like_llama_quantize),
        cmocka_unit_test(test_round_trip_q4_k_m),
        cmocka_unit_test(test_round_trip_q6_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
