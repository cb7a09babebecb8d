/* SPDX-License-Identifier: MIT */
/* Kernels: every SIMD kernel against the portable one on random shapes,
 * including sizes that are not a multiple of the 32-wide block; the
 * half-float conversions; the quantizers' zero padding. */
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

#include "runtime/internal.h"
#include "testutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static float
rndf(void)
{
    return ((float)(rnd() % 20001) - 10000.0f) / 2500.0f; /* [-4, 4] */
}

static void
test_f16(void **state)
{
    /* Every half survives half -> float -> half (NaNs stay NaN). */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rt__f16_to_f32((uint16_t)h);
        uint16_t back = rt__f32_to_f16(f);
        if (isnan(f))
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else
            assert_int_equal(back, h);
    }
    assert_true(rt__f16_to_f32(0x3c00) == 1.0f);
    assert_true(rt__f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    assert_int_equal(rt__f32_to_f16(65520.0f), 0x7c00); /* overflow */
    assert_int_equal(rt__f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(rt__f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    assert_int_equal(rt__f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    assert_int_equal(rt__f32_to_f16(-2.9802322387695312e-8f), 0x8000); /* half of min: even */
}

/* Quantizing a row of width n (not a multiple of 32) pads with exact zeros:
 * dequantizing gives back zeros past n. */
static void
test_padding(void **state)
{
    const size_t n = 172, pad = 192;
    float x[192], y[192];
    for (size_t i = 0; i < n; i++)
        x[i] = rndf();
    uint8_t q8[6 * RT_Q8_0_BYTES], q4[6 * RT_Q4_0_BYTES];
    rt__quantize_row_q8_0(x, n, q8);
    rt__quantize_row_q4_0(x, n, q4);
    rt__dequant_row(RT_TYPE_Q8_0, q8, y, pad);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(y[i] - x[i]) <= 4.0f / 127 * 0.51f + 1e-3f);
    for (size_t i = n; i < pad; i++)
        assert_true(y[i] == 0.0f);
    rt__dequant_row(RT_TYPE_Q4_0, q4, y, pad);
    for (size_t i = n; i < pad; i++)
        assert_true(y[i] == 0.0f);
    rt__blockq8 xb[6];
    rt__quantize_act(x, n, xb);
    for (size_t i = n; i < pad; i++)
        assert_int_equal(xb[i / 32].qs[i % 32], 0);
}

static void check_set(const rt__kernels *s);

/* Every SIMD set this CPU runs (AVX2 and AVX-VNNI here, say) equals the
 * portable kernels. */
static void
test_simd_equal(void **state)
{
    if (!rt__kernels_simd_all(0)) {
        printf("# no SIMD kernels on this CPU\n");
        skip();
    }
    for (size_t i = 0; rt__kernels_simd_all(i); i++)
        check_set(rt__kernels_simd_all(i));
}

static void
check_set(const rt__kernels *s)
{
    const rt__kernels *p = &rt__kernels_portable;
    printf("# comparing %s with portable\n", s->name);
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 1 + rnd() % 700; /* any width */
        if (iter < 40)
            n = (size_t)iter + 1;
        size_t nb = (n + 31) / 32;
        float *x = calloc(nb * 32, 4), *wf = calloc(nb * 32, 4);
        uint8_t *wh = calloc(nb * 32, 2), *w8 = calloc(nb, RT_Q8_0_BYTES),
                *w4 = calloc(nb, RT_Q4_0_BYTES);
        rt__blockq8 *xq = calloc(nb, sizeof(*xq));
        for (size_t i = 0; i < n; i++) {
            x[i] = rndf();
            wf[i] = rndf();
            uint16_t h = rt__f32_to_f16(wf[i]);
            wh[2 * i] = (uint8_t)h;
            wh[2 * i + 1] = (uint8_t)(h >> 8);
        }
        if (iter % 7 == 0) /* extremes: -128 weights, +-127 activations */
            for (size_t i = 0; i < n; i++)
                x[i] = (i & 1) ? 4.0f : -4.0f;
        rt__quantize_act(x, n, xq);
        rt__quantize_row_q8_0(wf, n, w8);
        rt__quantize_row_q4_0(wf, n, w4);
        if (iter % 7 == 0)
            for (size_t b = 0; b < nb; b++)
                memset(w8 + b * RT_Q8_0_BYTES + 2, 0x80, 32);

        int32_t sp[32], ss[32];
        p->sums_q8_0(w8, xq, nb, sp);
        s->sums_q8_0(w8, xq, nb, ss);
        assert_memory_equal(sp, ss, nb * 4);
        p->sums_q4_0(w4, xq, nb, sp);
        s->sums_q4_0(w4, xq, nb, ss);
        assert_memory_equal(sp, ss, nb * 4);
        float a = p->dot_q8_0(w8, xq, nb), b = s->dot_q8_0(w8, xq, nb);
        assert_memory_equal(&a, &b, 4);
        a = p->dot_q4_0(w4, xq, nb);
        b = s->dot_q4_0(w4, xq, nb);
        assert_memory_equal(&a, &b, 4);
        /* The 4-token kernels: token j's result is the one-token one
         * (the activations here are one token's blocks, shifted). */
        if (s->dot4_q8_0 && nb >= 4) {
            size_t nb4 = nb - 3;
            float o8[4], o4[4];
            s->dot4_q8_0(w8, xq, sizeof(*xq), nb4, o8);
            s->dot4_q4_0(w4, xq, sizeof(*xq), nb4, o4);
            for (size_t j = 0; j < 4; j++) {
                a = p->dot_q8_0(w8, xq + j, nb4);
                assert_memory_equal(&a, &o8[j], 4);
                a = p->dot_q4_0(w4, xq + j, nb4);
                assert_memory_equal(&a, &o4[j], 4);
            }
        }

        /* Float kernels: same up to rounding of the summation order. */
        float bound = 0.0f;
        for (size_t i = 0; i < n; i++)
            bound += fabsf(wf[i] * x[i]);
        bound = bound * 1e-5f + 1e-5f;
        a = p->dot_f32(wf, x, n);
        b = s->dot_f32(wf, x, n);
        assert_true(fabsf(a - b) <= bound);
        a = p->dot_f16(wh, x, n);
        b = s->dot_f16(wh, x, n);
        assert_true(fabsf(a - b) <= bound);
        /* 4-token F32: each token as the same set's one-token kernel
         * (x shifted by one float per token). */
        if (s->dot4_f32 && n >= 4) {
            float o[4];
            s->dot4_f32(wf, x, 1, n - 3, o);
            for (size_t j = 0; j < 4; j++) {
                a = s->dot_f32(wf, x + j, n - 3);
                assert_memory_equal(&a, &o[j], 4);
            }
        }
        /* The F16 cache's value product: elementwise, so exact. */
        float *ya = malloc(n * sizeof(float)), *yb = malloc(n * sizeof(float));
        assert_true(ya && yb);
        memcpy(ya, x, n * sizeof(float));
        memcpy(yb, x, n * sizeof(float));
        p->axpy_f16(0.3f, wh, ya, n);
        s->axpy_f16(0.3f, wh, yb, n);
        assert_memory_equal(ya, yb, n * sizeof(float));
        free(ya);
        free(yb);

        free(x);
        free(wf);
        free(wh);
        free(w8);
        free(w4);
        free(xq);
    }
}

/* The integer sums are the exact dot products of the quantized values. */
static void
test_portable_exact(void **state)
{
    for (int iter = 0; iter < 50; iter++) {
        size_t nb = 1 + rnd() % 8;
        uint8_t w8[8 * RT_Q8_0_BYTES], w4[8 * RT_Q4_0_BYTES];
        rt__blockq8 xq[8];
        for (size_t i = 0; i < sizeof(w8); i++)
            w8[i] = (uint8_t)rnd();
        for (size_t i = 0; i < sizeof(w4); i++)
            w4[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb; b++)
            for (int i = 0; i < 32; i++)
                xq[b].qs[i] = (int8_t)((int)(rnd() % 255) - 127);
        int32_t s8[8], s4[8];
        rt__kernels_portable.sums_q8_0(w8, xq, nb, s8);
        rt__kernels_portable.sums_q4_0(w4, xq, nb, s4);
        for (size_t b = 0; b < nb; b++) {
            int32_t e8 = 0, e4 = 0;
            for (int i = 0; i < 32; i++) {
                e8 += (int8_t)w8[b * 34 + 2 + i] * xq[b].qs[i];
                uint8_t byte = w4[b * 18 + 2 + (i % 16)];
                int q = i < 16 ? (byte & 15) : (byte >> 4);
                e4 += (q - 8) * xq[b].qs[i];
            }
            assert_int_equal(s8[b], e8);
            assert_int_equal(s4[b], e4);
        }
    }
}

/* matvec over a padded requantized matrix equals the dot of dequantized
 * rows with the dequantized activation (the padding adds exactly 0). */
static void
test_matvec_padded(void **state)
{
    const uint32_t rows = 5, cols = 172, pad = 192;
    float w[5 * 172], x[192] = { 0 }, out[5];
    for (size_t i = 0; i < rows * cols; i++)
        w[i] = rndf();
    for (size_t i = 0; i < cols; i++)
        x[i] = rndf();
    uint8_t q[5 * 6 * RT_Q8_0_BYTES];
    for (uint32_t r = 0; r < rows; r++)
        rt__quantize_row_q8_0(w + r * cols, cols, q + r * 6 * RT_Q8_0_BYTES);
    rt__mat m = { RT_TYPE_Q8_0, rows, cols, pad, 6 * RT_Q8_0_BYTES, q };
    rt__blockq8 xq[6];
    rt__quantize_act(x, cols, xq);
    rt__matvec(&rt__kernels_portable, &m, x, xq, out);
    for (uint32_t r = 0; r < rows; r++) {
        float wd[192];
        rt__dequant_row(RT_TYPE_Q8_0, q + r * 6 * RT_Q8_0_BYTES, wd, pad);
        double e = 0.0;
        for (size_t i = 0; i < pad; i++)
            e += (double)wd[i] * xq[i / 32].d * xq[i / 32].qs[i % 32];
        assert_true(fabs(e - out[r]) <= 1e-3 * (fabs(e) + 1));
    }
}

/* A random matrix of `rows` rows and nb blocks of type t (Q8_0 and Q4_0
 * from the quantizer, extreme -128 weights when `extreme`; K-quants as
 * random bytes with small scales); returns its bytes, row_bytes set. */
static uint8_t *
tile_matrix(rt_type t, uint32_t rows, size_t nb, bool extreme, size_t *ret_row_bytes)
{
    size_t bb = rt_type_block_bytes(t), row_bytes = nb * bb;
    uint8_t *w = malloc(rows * row_bytes);
    float *wf = malloc(nb * RT_QK * sizeof(float));
    assert_true(w && wf);
    for (uint32_t r = 0; r < rows; r++) {
        uint8_t *row = w + r * row_bytes;
        if (t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0) {
            for (size_t i = 0; i < nb * RT_QK; i++)
                wf[i] = rndf();
            (t == RT_TYPE_Q8_0 ? rt__quantize_row_q8_0 : rt__quantize_row_q4_0)(wf, nb * RT_QK,
                                                                                row);
            for (size_t b = 0; extreme && t == RT_TYPE_Q8_0 && b < nb; b++)
                memset(row + b * bb + 2, 0x80, RT_QK);
            continue;
        }
        for (size_t i = 0; i < row_bytes; i++)
            row[i] = (uint8_t)rnd();
        for (size_t b = 0; b < nb; b++) {
            uint8_t *blk = row + b * bb;
            uint16_t d = rt__f32_to_f16((float)(rnd() % 100) / 1000.0f);
            uint16_t dm = rt__f32_to_f16((float)(rnd() % 100) / 1000.0f);
            size_t at = t == RT_TYPE_Q6_K ? 208 : 0;
            blk[at] = (uint8_t)d;
            blk[at + 1] = (uint8_t)(d >> 8);
            if (t == RT_TYPE_Q4_K) {
                blk[2] = (uint8_t)dm;
                blk[3] = (uint8_t)(dm >> 8);
            }
        }
    }
    free(wf);
    *ret_row_bytes = row_bytes;
    return w;
}

/* The tile kernels (a batch's rows 8 at a time, unsigned activations)
 * give every (row, token) result of the portable one-token kernel, bit
 * for bit: partial tiles of rows, panels of several column chunks, the
 * extreme operands, any batch size they take. */
static void
test_tile(void **state)
{
    const rt__kernels *p = &rt__kernels_portable;
    const rt_type types[] = { RT_TYPE_Q8_0, RT_TYPE_Q4_0, RT_TYPE_Q4_K, RT_TYPE_Q6_K };
    size_t ran = 0;
    for (size_t si = 0; rt__kernels_simd_all(si); si++) {
        const rt__kernels *k = rt__kernels_simd_all(si);
        for (int iter = 0; iter < 96; iter++) {
            rt_type t = types[iter % 4];
            size_t n = RT_TILE_MIN_TOKENS + rnd() % (RT_BATCH_MAX - RT_TILE_MIN_TOKENS + 1);
            if (!rt__mm_tiled(k, t, n))
                continue;
            bool kq = rt__is_kquant(t), extreme = iter % 5 == 0;
            size_t nb = kq ? 1 + rnd() % 9 : 1 + rnd() % 70;
            uint32_t rows = 1 + rnd() % 21;
            size_t row_bytes, cols = nb * (kq ? RT_QK_K : RT_QK);
            uint8_t *w = tile_matrix(t, rows, nb, extreme, &row_bytes);
            size_t bsz = kq ? sizeof(rt__blockq8k) : sizeof(rt__blockq8);
            size_t stride = (nb + 1) * bsz; /* tokens apart, as in a batch */
            uint8_t *xq = calloc(n, stride), *xu = calloc(n, stride);
            float *x = malloc(cols * sizeof(float)), *out = malloc(n * rows * sizeof(float));
            assert_true(xq && xu && x && out);
            for (size_t tk = 0; tk < n; tk++) {
                for (size_t i = 0; i < cols; i++)
                    x[i] = extreme ? ((i & 1) ? 4.0f : -4.0f) : rndf();
                void *xt = xq + tk * stride;
                if (kq)
                    rt__quantize_act_k(x, cols, xt);
                else
                    rt__quantize_act(x, cols, xt);
            }
            memcpy(xu, xq, n * stride);
            for (size_t tk = 0; tk < n; tk++)
                rt__act_unsigned(xu + tk * stride, nb, kq);
            rt__mat m = { t, rows, (uint32_t)cols, (uint32_t)cols, row_bytes, w };
            rt__mm mm = { .k = k,
                          .w = &m,
                          .xq = xu,
                          .xq_stride = stride,
                          .out = out,
                          .out_stride = rows,
                          .n = n };
            rt__matmul_rows(&mm, 0, rows);
            for (size_t tk = 0; tk < n; tk++)
                for (uint32_t r = 0; r < rows; r++) {
                    const uint8_t *row = w + r * row_bytes;
                    const void *xt = xq + tk * stride;
                    float e = t == RT_TYPE_Q8_0   ? p->dot_q8_0(row, xt, nb)
                              : t == RT_TYPE_Q4_0 ? p->dot_q4_0(row, xt, nb)
                              : t == RT_TYPE_Q4_K ? p->dot_q4_k(row, xt, nb)
                                                  : p->dot_q6_k(row, xt, nb);
                    assert_memory_equal(&e, &out[tk * rows + r], sizeof(e));
                }
            ran++;
            free(w);
            free(xq);
            free(xu);
            free(x);
            free(out);
        }
    }
    if (ran == 0) {
        printf("# no tile kernels on this CPU\n");
        skip();
    }
    printf("# %zu tiled products equal the portable kernels\n", ran);
}

/* The F32 tile kernels give every (row, token) result of the same set's
 * one-token dot_f32, bit for bit: row counts that leave a partial tile,
 * row lengths with 16-wide, 8-wide and scalar tails, every tile width of
 * tokens, rows split at any point (as threads split them). */
static void
test_tile_f32(void **state)
{
    size_t ran = 0;
    for (size_t si = 0; rt__kernels_simd_all(si); si++) {
        const rt__kernels *k = rt__kernels_simd_all(si);
        for (int iter = 0; iter < 48; iter++) {
            size_t n = iter < 4 ? 1 : 1 + rnd() % RT_BATCH_MAX;
            if (!rt__mm_tiled(k, RT_TYPE_F32, n))
                continue;
            uint32_t rows = 1 + rnd() % 23, cols = 1 + rnd() % 300;
            size_t xs = cols + rnd() % 5; /* tokens apart, as in a batch */
            float *w = malloc((size_t)rows * cols * sizeof(float));
            float *x = malloc(n * xs * sizeof(float)), *out = malloc(n * rows * sizeof(float));
            assert_true(w && x && out);
            for (size_t i = 0; i < (size_t)rows * cols; i++)
                w[i] = rndf();
            for (size_t i = 0; i < n * xs; i++)
                x[i] = rndf();
            rt__mat m = { RT_TYPE_F32, rows, cols, cols, cols * sizeof(float), (uint8_t *)w };
            rt__mm mm = {
                .k = k, .w = &m, .x = x, .x_stride = xs, .out = out, .out_stride = rows, .n = n
            };
            uint32_t split = rnd() % (rows + 1);
            rt__matmul_rows(&mm, 0, split);
            rt__matmul_rows(&mm, split, rows);
            for (size_t tk = 0; tk < n; tk++)
                for (uint32_t r = 0; r < rows; r++) {
                    float e = k->dot_f32(w + (size_t)r * cols, x + tk * xs, cols);
                    assert_memory_equal(&e, &out[tk * rows + r], sizeof(e));
                }
            ran++;
            free(w);
            free(x);
            free(out);
        }
    }
    if (ran == 0) {
        printf("# no F32 tile kernels on this CPU\n");
        skip();
    }
    printf("# %zu tiled F32 products equal dot_f32\n", ran);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),           cmocka_unit_test(test_padding),
        cmocka_unit_test(test_simd_equal),    cmocka_unit_test(test_portable_exact),
        cmocka_unit_test(test_matvec_padded), cmocka_unit_test(test_tile),
        cmocka_unit_test(test_tile_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
