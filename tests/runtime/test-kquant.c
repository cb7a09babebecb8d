/* SPDX-License-Identifier: MIT */
/* K-quants (kquant.c): dequantization of hand-made Q4_K, Q5_K and Q6_K
 * blocks with known weights; the Q8_K activation quantizer; the SIMD dot
 * kernels bit-identical to the portable ones, and both equal to the dot
 * product of the dequantized weights with the dequantized activations. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/internal.h"
#include "testutil.h"

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint32_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void
put16(uint8_t *p, float f)
{
    uint16_t h = rt__f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Packs 8 six-bit scales and mins the way rt__kq_scale_min reads them
 * (written from the layout table in types.h). */
static void
pack_scales(uint8_t s[12], const uint8_t sc[8], const uint8_t m[8])
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static void
test_scale_min(void **state)
{
    uint8_t sc[8], m[8], s[12];
    for (int iter = 0; iter < 200; iter++) {
        for (int j = 0; j < 8; j++) {
            sc[j] = (uint8_t)(rnd() % 64);
            m[j] = (uint8_t)(rnd() % 64);
        }
        pack_scales(s, sc, m);
        uint8_t all_sc[8], all_m[8];
        rt__kq_scales(s, all_sc, all_m);
        for (unsigned j = 0; j < 8; j++) {
            uint8_t a, b;
            rt__kq_scale_min(s, j, &a, &b);
            assert_int_equal(a, sc[j]);
            assert_int_equal(b, m[j]);
            assert_int_equal(all_sc[j], sc[j]);
            assert_int_equal(all_m[j], m[j]);
        }
    }
}

/* Q4_K / Q5_K: weight e = d * sc[e/32] * q(e) - dmin * m[e/32], with the
 * codes placed by hand at their documented positions. */
static void
test_dequant_q45(void **state)
{
    for (int five = 0; five < 2; five++) {
        uint8_t blk[RT_Q5_K_BYTES] = { 0 };
        uint8_t sc[8], m[8], q[256];
        for (int j = 0; j < 8; j++) {
            sc[j] = (uint8_t)(j * 8 + 5); /* 5..61: six bits */
            m[j] = (uint8_t)(63 - j * 7);
        }
        put16(blk, 0.25f);
        put16(blk + 2, 0.125f);
        pack_scales(blk + 4, sc, m);
        uint8_t *qs = blk + (five ? 48 : 16), *qh = blk + 16;
        for (unsigned e = 0; e < 256; e++) {
            q[e] = (uint8_t)((e * 7 + 3) % (five ? 32 : 16));
            unsigned c = e / 64, r = e % 64;
            qs[32 * c + r % 32] |= (uint8_t)((q[e] & 15) << (r < 32 ? 0 : 4));
            if (five && (q[e] & 16))
                qh[e % 32] |= (uint8_t)(1u << (e / 32));
        }
        float out[256];
        rt__dequant_kquant(five ? RT_TYPE_Q5_K : RT_TYPE_Q4_K, blk, out, 256);
        for (unsigned e = 0; e < 256; e++) {
            float want = 0.25f * (float)sc[e / 32] * (float)q[e] - 0.125f * (float)m[e / 32];
            if (out[e] != want)
                printf("# five %d e %u: %g != %g\n", five, e, (double)out[e], (double)want);
            assert_true(out[e] == want);
        }
    }
}

/* Q6_K: weight e = d * scale[e/16] * (q(e) - 32). */
static void
test_dequant_q6(void **state)
{
    uint8_t blk[RT_Q6_K_BYTES] = { 0 };
    int q[256];
    for (int g = 0; g < 16; g++)
        blk[192 + g] = (uint8_t)(int8_t)(g * 17 - 128);
    put16(blk + 208, 0.5f);
    for (unsigned e = 0; e < 256; e++) {
        q[e] = (int)((e * 13 + 5) % 64);
        unsigned h = e / 128, t = (e % 128) / 32, l = e % 32;
        blk[64 * h + 32 * (t & 1) + l] |= (uint8_t)((q[e] & 15) << (t < 2 ? 0 : 4));
        blk[128 + 32 * h + l] |= (uint8_t)((q[e] >> 4) << (2 * t));
    }
    float out[256];
    rt__dequant_kquant(RT_TYPE_Q6_K, blk, out, 256);
    for (unsigned e = 0; e < 256; e++) {
        float want = 0.5f * (float)(int8_t)blk[192 + e / 16] * (float)(q[e] - 32);
        assert_true(out[e] == want);
    }
}

static void
test_quantize_act_k(void **state)
{
    float x[512];
    for (int i = 0; i < 512; i++)
        x[i] = ((float)(rnd() % 20001) - 10000.0f) / 1000.0f;
    x[77] = 12.0f; /* the largest magnitude: as ggml, it maps to -127 with d < 0 */
    memset(x + 256, 0, 256 * sizeof(float));
    rt__blockq8k b[2];
    rt__quantize_act_k(x, 512, b);
    assert_int_equal(b[0].qs[77], -127);
    assert_true(b[0].d < 0.0f);
    for (int i = 0; i < 256; i++)
        assert_true(fabsf(b[0].d * (float)b[0].qs[i] - x[i]) <= fabsf(b[0].d) * 0.5001f);
    for (int j = 0; j < 8; j++) {
        int s = 0;
        for (int i = 0; i < 32; i++)
            s += b[0].qs[32 * j + i];
        assert_int_equal(b[0].bsums[j], s);
    }
    assert_true(b[1].d == 0.0f);
    for (int i = 0; i < 256; i++)
        assert_int_equal(b[1].qs[i], 0);
}

/* The lrintf form rt__round_i8 replaces (libm's rounding, clamped). */
static int
round_ref(float v)
{
    return v == v ? (int)lrintf(fminf(fmaxf(v, -127.0f), 127.0f)) : 0;
}

static void
check_round(float v)
{
    if (rt__round_i8(v) != round_ref(v))
        fail_msg("rt__round_i8(%a) = %d, lrintf form %d", (double)v, rt__round_i8(v), round_ref(v));
}

/* Equal on the floats where rounding can go wrong (a few ulps around
 * every half-integer and integer up to the clamp, the clamp's edges,
 * signed zeros, NaN, infinities, the extremes) and on random bit patterns. */
static void
test_round_i8(void **state)
{
    static const float special[] = { 0.0f,    -0.0f,    NAN,    -NAN,    INFINITY,   -INFINITY,
                                     3.4e38f, -3.4e38f, 1e-45f, -1e-45f, 4194304.5f, 8388609.0f };
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        check_round(special[i]);
    for (int k = -260; k <= 260; k++) {
        float v = (float)k / 2.0f;
        for (int u = 0; u < 4; u++) {
            check_round(v);
            check_round(-v);
            v = nextafterf(v, INFINITY);
        }
        v = (float)k / 2.0f;
        for (int u = 0; u < 4; u++) {
            v = nextafterf(v, -INFINITY);
            check_round(v);
        }
    }
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)rnd() << 16 ^ (uint32_t)rnd();
        float v;
        memcpy(&v, &bits, sizeof(v));
        check_round(v);
        check_round(((float)(rnd() % 65536) - 32768.0f) / 256.0f);
    }
}

typedef float (*dot_fn)(const uint8_t *, const rt__blockq8k *, size_t);

static void
test_dot(void **state)
{
    const rt__kernels *p = &rt__kernels_portable, *s = rt__kernels_simd();
    if (s)
        printf("# comparing %s with portable\n", s->name);
    static const rt_type types[3] = { RT_TYPE_Q4_K, RT_TYPE_Q5_K, RT_TYPE_Q6_K };
    for (int iter = 0; iter < 300; iter++) {
        size_t nb = 1 + rnd() % 4;
        rt_type t = types[iter % 3];
        size_t bytes = rt_type_block_bytes(t);
        uint8_t *w = malloc(nb * bytes);
        for (size_t i = 0; i < nb * bytes; i++)
            w[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb; b++) /* finite scales */
            if (t == RT_TYPE_Q6_K) {
                put16(w + b * bytes + 208, (float)(rnd() % 100) / 1000.0f);
            } else {
                put16(w + b * bytes, (float)(rnd() % 100) / 1000.0f);
                put16(w + b * bytes + 2, (float)(rnd() % 100) / 1000.0f);
            }
        float *x = malloc(nb * 256 * sizeof(float)), *wf = malloc(nb * 256 * sizeof(float));
        for (size_t i = 0; i < nb * 256; i++)
            x[i] = iter % 5 == 0 ? ((i & 1) ? 3.0f : -3.0f) /* extremes: +-127 */
                                 : ((float)(rnd() % 20001) - 10000.0f) / 2500.0f;
        rt__blockq8k *xq = malloc(nb * sizeof(*xq));
        rt__quantize_act_k(x, nb * 256, xq);
        dot_fn fp = t == RT_TYPE_Q4_K ? p->dot_q4_k : t == RT_TYPE_Q5_K ? p->dot_q5_k : p->dot_q6_k;
        float a = fp(w, xq, nb);
        if (s) {
            dot_fn fs = t == RT_TYPE_Q4_K   ? s->dot_q4_k
                        : t == RT_TYPE_Q5_K ? s->dot_q5_k
                                            : s->dot_q6_k;
            float b = fs(w, xq, nb);
            assert_memory_equal(&a, &b, sizeof(a));
        }
        /* Against the float dot of the dequantized operands. */
        rt__dequant_kquant(t, w, wf, nb * 256);
        double ref = 0.0, mag = 0.0;
        for (size_t i = 0; i < nb * 256; i++) {
            double xv = (double)xq[i / 256].d * xq[i / 256].qs[i % 256];
            ref += (double)wf[i] * xv;
            mag += fabs((double)wf[i] * xv);
        }
        assert_true(fabs((double)a - ref) <= mag * 1e-5 + 1e-6);
        free(w);
        free(x);
        free(wf);
        free(xq);
    }
}

/* The 4-token kernels equal the portable one-token kernel per token. */
static void
test_dot4(void **state)
{
    const rt__kernels *p = &rt__kernels_portable, *s = rt__kernels_simd();
    if (!s || !s->dot4_q4_k) {
        printf("# no 4-token K-quant kernels here\n");
        skip();
    }
    for (int iter = 0; iter < 100; iter++) {
        size_t nb = 1 + rnd() % 4;
        rt_type t = iter % 2 ? RT_TYPE_Q6_K : RT_TYPE_Q4_K;
        size_t bytes = rt_type_block_bytes(t);
        uint8_t *w = malloc(nb * bytes);
        for (size_t i = 0; i < nb * bytes; i++)
            w[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb; b++)
            if (t == RT_TYPE_Q6_K) {
                put16(w + b * bytes + 208, (float)(rnd() % 100) / 1000.0f);
            } else {
                put16(w + b * bytes, (float)(rnd() % 100) / 1000.0f);
                put16(w + b * bytes + 2, (float)(rnd() % 100) / 1000.0f);
            }
        /* 4 tokens at a stride larger than their blocks, as in a batch. */
        size_t stride = (nb + 1) * sizeof(rt__blockq8k);
        uint8_t *xq = calloc(4, stride);
        float *x = malloc(nb * 256 * sizeof(float));
        for (size_t tk = 0; tk < 4; tk++) {
            for (size_t i = 0; i < nb * 256; i++)
                x[i] = ((float)(rnd() % 20001) - 10000.0f) / 2500.0f;
            rt__quantize_act_k(x, nb * 256, (rt__blockq8k *)(void *)(xq + tk * stride));
        }
        float out[4];
        (t == RT_TYPE_Q6_K ? s->dot4_q6_k : s->dot4_q4_k)(w, xq, stride, nb, out);
        for (size_t tk = 0; tk < 4; tk++) {
            const rt__blockq8k *xt = (const rt__blockq8k *)(const void *)(xq + tk * stride);
            float one = t == RT_TYPE_Q6_K ? p->dot_q6_k(w, xt, nb) : p->dot_q4_k(w, xt, nb);
            assert_memory_equal(&out[tk], &one, sizeof(one));
        }
        free(w);
        free(x);
        free(xq);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_min),  cmocka_unit_test(test_dequant_q45),
        cmocka_unit_test(test_dequant_q6), cmocka_unit_test(test_quantize_act_k),
        cmocka_unit_test(test_dot),        cmocka_unit_test(test_dot4),
        cmocka_unit_test(test_round_i8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
