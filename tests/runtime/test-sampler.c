/* SPDX-License-Identifier: MIT */
/*
 * Sampler tests: greedy picks the first maximum, seeded sampling is
 * deterministic, temperature sampling follows the softmax distribution,
 * top-p never leaves the nucleus, bad parameters are refused.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/sampler.h"

static void
test_greedy(void **state)
{
    (void)state;
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, 5, 0.0f, 1.0f, 1, NULL, 0), 0);
    float l[5] = { 0.5f, 3.0f, -1.0f, 3.0f, 2.0f };
    assert_int_equal(rt_sampler_sample(&s, l), 1);
    /* Greedy leaves the logits alone. */
    assert_true(l[1] == 3.0f && l[2] == -1.0f);
    float neg[3] = { -5.0f, -4.0f, -4.5f };
    assert_int_equal(rt_argmax(neg, 3), 1);
}

static void
test_seed_deterministic(void **state)
{
    (void)state;
    rt_sampler a, b, c;
    assert_int_equal(rt_sampler_init(&a, 4, 1.0f, 1.0f, 42, NULL, 0), 0);
    assert_int_equal(rt_sampler_init(&b, 4, 1.0f, 1.0f, 42, NULL, 0), 0);
    assert_int_equal(rt_sampler_init(&c, 4, 1.0f, 1.0f, 43, NULL, 0), 0);
    int same = 0;
    for (int i = 0; i < 200; i++) {
        float x = rt_sampler_random(&a), y = rt_sampler_random(&b), z = rt_sampler_random(&c);
        assert_true(x >= 0.0f && x < 1.0f);
        assert_true(x == y);
        same += x == z;
    }
    assert_true(same < 5);
    /* Seed 0 is valid and not stuck. */
    assert_int_equal(rt_sampler_init(&a, 4, 1.0f, 1.0f, 0, NULL, 0), 0);
    float f0 = rt_sampler_random(&a), f1 = rt_sampler_random(&a);
    assert_true(f0 != f1);
}

static void
test_distribution(void **state)
{
    (void)state;
    /* logits log(0.1), log(0.2), log(0.3), log(0.4): counts follow them. */
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, 4, 1.0f, 1.0f, 7, NULL, 0), 0);
    int count[4] = { 0 };
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        float l[4] = { logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f) };
        int32_t t = rt_sampler_sample(&s, l);
        assert_true(t >= 0 && t < 4);
        count[t]++;
    }
    for (int k = 0; k < 4; k++)
        assert_true(fabs((double)count[k] / n - 0.1 * (k + 1)) < 0.015);
    /* A low temperature sharpens towards the maximum. */
    assert_int_equal(rt_sampler_init(&s, 4, 0.05f, 1.0f, 7, NULL, 0), 0);
    int top = 0;
    for (int i = 0; i < 1000; i++) {
        float l[4] = { logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f) };
        top += rt_sampler_sample(&s, l) == 3;
    }
    assert_true(top > 950);
}

static void
test_top_p(void **state)
{
    (void)state;
    enum {
        N = 6
    };
    void *scratch = malloc(rt_sampler_scratch_size(N));
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, N, 1.0f, 0.5f, 3, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, N, 1.0f, 0.5f, 3, scratch, rt_sampler_scratch_size(N)), 0);
    /* probs 0.4, 0.3, 0.1, 0.1, 0.05, 0.05: the 0.5 nucleus is {0, 1}. */
    static const float p[N] = { 0.4f, 0.3f, 0.1f, 0.1f, 0.05f, 0.05f };
    int count[N] = { 0 };
    for (int i = 0; i < 5000; i++) {
        float l[N];
        for (int k = 0; k < N; k++)
            l[k] = logf(p[k]);
        count[rt_sampler_sample(&s, l)]++;
    }
    for (int k = 2; k < N; k++)
        assert_int_equal(count[k], 0);
    /* Renormalised inside the nucleus: 4/7 and 3/7. */
    assert_true(fabs(count[0] / 5000.0 - 4.0 / 7.0) < 0.03);
    /* Ties are broken by id, so equal probabilities sort the same everywhere. */
    float eq[N] = { 0, 0, 0, 0, 0, 0 };
    assert_int_equal(rt_sampler_init(&s, N, 1.0f, 0.01f, 3, scratch, rt_sampler_scratch_size(N)),
                     0);
    assert_int_equal(rt_sampler_sample(&s, eq), 0);
    free(scratch);
}

static void
test_invalid(void **state)
{
    (void)state;
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, 0, 1.0f, 1.0f, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, 4, -1.0f, 1.0f, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, 4, NAN, 1.0f, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, 4, INFINITY, 1.0f, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, 4, 1.0f, 0.0f, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(&s, 4, 1.0f, NAN, 1, NULL, 0), -EINVAL);
    assert_int_equal(rt_sampler_init(NULL, 4, 1.0f, 1.0f, 1, NULL, 0), -EINVAL);
    /* Greedy needs no scratch even with top-p set. */
    assert_int_equal(rt_sampler_init(&s, 4, 0.0f, 0.9f, 1, NULL, 0), 0);
}

static void
test_softmax(void **state)
{
    (void)state;
    float x[3] = { 1000.0f, 1000.0f, -1000.0f };
    rt_softmax(x, 3);
    assert_true(fabsf(x[0] - 0.5f) < 1e-6f && fabsf(x[1] - 0.5f) < 1e-6f && x[2] == 0.0f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),       cmocka_unit_test(test_seed_deterministic),
        cmocka_unit_test(test_distribution), cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_invalid),      cmocka_unit_test(test_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
