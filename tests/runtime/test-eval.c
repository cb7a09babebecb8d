/* SPDX-License-Identifier: MIT */
/*
 * Eval tests: KL, top-1 and perplexity on hand-made logits with known
 * answers; a model against itself; the shared quantized GGUF files against
 * the F32 one (they run and stay close; their KL is printed).
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

#include "runtime/eval.h"
#include "runtime/generate.h"
#include "runtime/model-file.h"
#include "testutil.h"

static void
test_known_values(void **state)
{
    (void)state;
    rt_eval *e = NULL;
    assert_int_equal(rt_eval_new(2, 4, &e), 0);
    /* P = (0.5, 0.5), Q = (0.8, 0.2): KL = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2). */
    float p[2] = { 0.0f, 0.0f }, q[2] = { logf(0.8f), logf(0.2f) };
    assert_int_equal(rt_eval_add(e, p, q, 1), 0);
    assert_int_equal(rt_eval_add(e, q, q, 0), 0);
    rt_eval_result r;
    rt_eval_result_get(e, &r);
    double kl = 0.5 * log(0.5 / 0.8) + 0.5 * log(0.5 / 0.2);
    assert_int_equal(r.n, 2);
    assert_true(fabs(r.kl_mean - kl / 2) < 1e-6);
    assert_true(fabs(r.kl_max - kl) < 1e-6);
    assert_true(fabs(r.kl_p99 - kl) < 1e-6);
    /* argmax of P is 0 (first maximum) and of Q is 0: both agree. */
    assert_true(r.top1 == 1.0);
    /* ppl = exp(mean(-ln 0.2, -ln 0.8)). */
    assert_true(fabs(r.ppl - exp((-log(0.2) - log(0.8)) / 2)) < 1e-5);
    assert_int_equal(rt_eval_add(e, p, q, 2), -EINVAL);
    assert_int_equal(rt_eval_add(e, p, q, -1), 0);
    assert_int_equal(rt_eval_add(e, p, q, -1), 0);
    assert_int_equal(rt_eval_add(e, p, q, -1), -EMSGSIZE);
    rt_eval_free(e);
    /* p99 by nearest rank over 1..100: the 99th value. */
    assert_int_equal(rt_eval_new(2, 100, &e), 0);
    for (int i = 100; i >= 1; i--) {
        float a[2] = { 0, 0 }, b[2] = { 0, -0.01f * (float)i };
        rt_eval_add(e, a, b, -1);
    }
    rt_eval_result_get(e, &r);
    float a[2] = { 0, 0 }, b99[2] = { 0, -0.01f * 99.0f };
    rt_eval *one = NULL;
    assert_int_equal(rt_eval_new(2, 1, &one), 0);
    rt_eval_add(one, a, b99, -1);
    rt_eval_result r99;
    rt_eval_result_get(one, &r99);
    assert_true(fabs(r.kl_p99 - r99.kl_mean) < 1e-9);
    rt_eval_free(one);
    rt_eval_free(e);
}

typedef struct stream {
    int32_t t[600];
    size_t n;
} stream;

static int
on_tok(void *ud, int32_t token, const char *piece, size_t len)
{
    (void)piece;
    (void)len;
    stream *s = ud;
    if (s->n == 600)
        return 1;
    s->t[s->n++] = token;
    return 0;
}

static rt_model_file *
open_file(const char *name)
{
    char *p = tu_model_path(name);
    if (!p)
        return NULL;
    rt_model_file *f = NULL;
    assert_int_equal(rt_model_file_open(p, NULL, &f), 0);
    free(p);
    return f;
}

static void
test_models(void **state)
{
    (void)state;
    rt_model_file *ref = open_file("aidreams260K-f32.gguf");
    rt_model_file *self = open_file("aidreams260K.bin");
    rt_model_file *q8 = open_file("aidreams260K-Q8_0-ffndownF16.gguf");
    rt_model_file *q4 = open_file("aidreams260K-Q4_0-ffndownF16.gguf");
    if (!ref || !self || !q8 || !q4)
        skip();
    /* 300+ positions the F32 model samples at temperature 1. */
    size_t len;
    const void *data = rt_model_file_data(ref, &len);
    rt_tokenizer *tok = NULL;
    assert_int_equal(rt_tokenizer_load_gguf(data, len, &tok), 0);
    stream *s = calloc(1, sizeof(*s));
    rt_sampler smp;
    assert_int_equal(rt_sampler_init(&smp, 512, 1.0f, 1.0f, 9, NULL, 0), 0);
    while (s->n < 300) {
        s->t[s->n++] = 1;
        assert_int_equal(
            rt_generate(rt_model_file_model(ref), tok, &smp, "", 0, NULL, on_tok, s, NULL), 0);
    }
    rt_model_file *m[3] = { self, q8, q4 };
    const char *names[3] = { "llama2.c F32", "Q8_0", "Q4_0" };
    rt_eval_result r[3];
    for (int i = 0; i < 3; i++) {
        rt_eval *e = NULL;
        assert_int_equal(rt_eval_new(512, 2 * s->n, &e), 0);
        assert_int_equal(
            rt_eval_run(rt_model_file_model(m[i]), rt_model_file_model(ref), s->t, s->n, 1, e), 0);
        rt_eval_result_get(e, &r[i]);
        rt_eval_free(e);
        printf("%-13s vs F32 GGUF over %llu positions: KL mean %.5f p99 %.5f, top-1 %.2f%%, "
               "ppl %.3f (F32 %.3f)\n",
               names[i], (unsigned long long)r[i].n, r[i].kl_mean, r[i].kl_p99, 100 * r[i].top1,
               r[i].ppl, r[i].ppl_ref);
        assert_true(r[i].n >= s->n);
    }
    /* The same weights in another file format: identical distributions. */
    assert_true(r[0].kl_max < 1e-6 && r[0].top1 == 1.0);
    assert_true(r[1].kl_mean < 0.01 && r[1].top1 > 0.95);
    assert_true(r[2].kl_mean < 0.1 && r[2].top1 > 0.8);
    assert_true(r[2].kl_mean > r[1].kl_mean);
    /* Vocabulary sizes must agree; the stream must start with BOS. */
    rt_eval *e = NULL;
    assert_int_equal(rt_eval_new(512, 10, &e), 0);
    int32_t bad[2] = { 5, 1 };
    assert_int_equal(rt_eval_run(rt_model_file_model(q8), rt_model_file_model(ref), bad, 2, 1, e),
                     -EINVAL);
    rt_eval_free(e);
    free(s);
    rt_tokenizer_free(tok);
    for (int i = 0; i < 3; i++)
        rt_model_file_close(m[i]);
    rt_model_file_close(ref);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
