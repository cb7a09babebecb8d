/* SPDX-License-Identifier: MIT */
/*
 * The Q8_0 and Q4_0 kernels of kernels-x86.c, written once and included
 * there once per instruction set (so no include guard): plain AVX2 and
 * AVX-VNNI. The includer defines
 *   Q0(name)   the function's name in this set (a suffix per set),
 *   Q0_TARGET  its target attribute,
 *   Q0_DOT(a, b) the 8 int32 lane sums of a[i] * b[i] (a unsigned, b
 *              signed bytes, 4 products per lane): maddubs + madd for
 *              AVX2 (pairs stay below 2^15 since |w| <= 128 and |x| <=
 *              127: no saturation), one vpdpbusd for VNNI. Both give the
 *              same integers, so every set's results are bit-identical.
 * and the helpers it uses (hsum_i32, hsum4_i32, lanes_add, lanes_finish,
 * load_q4, load_i8x32, f16, prefetch_block).
 */

/* Products w[i] * x[i] of 32 int8 pairs, summed into 8 int32 lanes.
 * The unsigned-by-signed products need an unsigned operand: |w| times x
 * with w's sign moved onto x. */
Q0_TARGET static inline __m256i
Q0(prod_i8x32)(__m256i w, __m256i x)
{
    return Q0_DOT(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

Q0_TARGET static inline int32_t
Q0(dot_i8x32)(__m256i w, __m256i x)
{
    return hsum_i32(Q0(prod_i8x32)(w, x));
}

Q0_TARGET static void
Q0(sums_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q8_0_BYTES)
        ret[b] = Q0(dot_i8x32)(load_i8x32(w + 2), load_i8x32(x[b].qs));
}

Q0_TARGET static void
Q0(sums_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb, int32_t *ret)
{
    for (size_t b = 0; b < nb; b++, w += RT_Q4_0_BYTES)
        ret[b] = Q0(dot_i8x32)(load_q4(w + 2), load_i8x32(x[b].qs));
}

Q0_TARGET static float
Q0(dot_q8_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    __m128 acc = _mm_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *wb = w + b * RT_Q8_0_BYTES;
        prefetch_block(wb, 4 * RT_Q8_0_BYTES);
        __m128i si = hsum4_i32(Q0(prod_i8x32)(load_i8x32(wb + 2), load_i8x32(x[b].qs)),
                               Q0(prod_i8x32)(load_i8x32(wb + 36), load_i8x32(x[b + 1].qs)),
                               Q0(prod_i8x32)(load_i8x32(wb + 70), load_i8x32(x[b + 2].qs)),
                               Q0(prod_i8x32)(load_i8x32(wb + 104), load_i8x32(x[b + 3].qs)));
        acc = lanes_add(acc, si, wb, RT_Q8_0_BYTES, x + b);
    }
    float tail[RT_DOT_LANES];
    size_t n_tail = 0;
    for (; b < nb; b++) {
        const uint8_t *wb = w + b * RT_Q8_0_BYTES;
        int32_t si = Q0(dot_i8x32)(load_i8x32(wb + 2), load_i8x32(x[b].qs));
        tail[n_tail++] = (float)si * (f16(wb) * x[b].d);
    }
    return lanes_finish(acc, tail, n_tail);
}

Q0_TARGET static float
Q0(dot_q4_0)(const uint8_t *w, const rt__blockq8 *x, size_t nb)
{
    __m128 acc = _mm_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *wb = w + b * RT_Q4_0_BYTES;
        prefetch_block(wb, 4 * RT_Q4_0_BYTES);
        __m128i si = hsum4_i32(Q0(prod_i8x32)(load_q4(wb + 2), load_i8x32(x[b].qs)),
                               Q0(prod_i8x32)(load_q4(wb + 20), load_i8x32(x[b + 1].qs)),
                               Q0(prod_i8x32)(load_q4(wb + 38), load_i8x32(x[b + 2].qs)),
                               Q0(prod_i8x32)(load_q4(wb + 56), load_i8x32(x[b + 3].qs)));
        acc = lanes_add(acc, si, wb, RT_Q4_0_BYTES, x + b);
    }
    float tail[RT_DOT_LANES];
    size_t n_tail = 0;
    for (; b < nb; b++) {
        const uint8_t *wb = w + b * RT_Q4_0_BYTES;
        int32_t si = Q0(dot_i8x32)(load_q4(wb + 2), load_i8x32(x[b].qs));
        tail[n_tail++] = (float)si * (f16(wb) * x[b].d);
    }
    return lanes_finish(acc, tail, n_tail);
}

#define XQ(t) ((const rt__blockq8 *)(const void *)((const uint8_t *)xq + (t)*xq_stride))

/* Q0(prod_i8x32)(w, x) with |w| (aw) already taken. */
Q0_TARGET static inline __m256i
Q0(prod_abs)(__m256i aw, __m256i w, const int8_t *x)
{
    return Q0_DOT(aw, _mm256_sign_epi8(load_i8x32(x), w));
}

/* Block sums of 4 blocks (weights w0..w3, |w| a0..a3) with token x's
 * blocks x[0..3], folded into acc as lanes_add does. */
Q0_TARGET static inline __m128
Q0(acc4_tok)(__m128 acc, __m128 dw, const rt__blockq8 *x, __m256i w0, __m256i w1, __m256i w2,
             __m256i w3, __m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    __m128i si = hsum4_i32(Q0(prod_abs)(a0, w0, x[0].qs), Q0(prod_abs)(a1, w1, x[1].qs),
                           Q0(prod_abs)(a2, w2, x[2].qs), Q0(prod_abs)(a3, w3, x[3].qs));
    __m128 dx = _mm_set_ps(x[3].d, x[2].d, x[1].d, x[0].d);
    return _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(si), _mm_mul_ps(dw, dx)));
}

/* Q8_0 (q4 false) or Q4_0 (q4 true) for 4 tokens. The four accumulators
 * are named, not an array: indexed they would live in memory and every
 * block group would wait on a store and a reload. */
Q0_TARGET static inline void
Q0(dot4_q80_q40)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out, bool q4)
{
    const size_t bs = q4 ? RT_Q4_0_BYTES : RT_Q8_0_BYTES;
    const rt__blockq8 *x0 = XQ(0), *x1 = XQ(1), *x2 = XQ(2), *x3 = XQ(3);
    __m128 c0 = _mm_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *wb = w + b * bs;
        __m256i w0 = q4 ? load_q4(wb + 2) : load_i8x32(wb + 2);
        __m256i w1 = q4 ? load_q4(wb + bs + 2) : load_i8x32(wb + bs + 2);
        __m256i w2 = q4 ? load_q4(wb + 2 * bs + 2) : load_i8x32(wb + 2 * bs + 2);
        __m256i w3 = q4 ? load_q4(wb + 3 * bs + 2) : load_i8x32(wb + 3 * bs + 2);
        __m256i a0 = _mm256_sign_epi8(w0, w0), a1 = _mm256_sign_epi8(w1, w1);
        __m256i a2 = _mm256_sign_epi8(w2, w2), a3 = _mm256_sign_epi8(w3, w3);
        __m128 dw = _mm_set_ps(f16(wb + 3 * bs), f16(wb + 2 * bs), f16(wb + bs), f16(wb));
        c0 = Q0(acc4_tok)(c0, dw, x0 + b, w0, w1, w2, w3, a0, a1, a2, a3);
        c1 = Q0(acc4_tok)(c1, dw, x1 + b, w0, w1, w2, w3, a0, a1, a2, a3);
        c2 = Q0(acc4_tok)(c2, dw, x2 + b, w0, w1, w2, w3, a0, a1, a2, a3);
        c3 = Q0(acc4_tok)(c3, dw, x3 + b, w0, w1, w2, w3, a0, a1, a2, a3);
    }
    const __m128 acc[4] = { c0, c1, c2, c3 };
    for (size_t t = 0; t < 4; t++) {
        float tail[RT_DOT_LANES];
        size_t n_tail = 0;
        for (size_t bt = b; bt < nb; bt++) {
            const uint8_t *wb = w + bt * bs;
            __m256i wq = q4 ? load_q4(wb + 2) : load_i8x32(wb + 2);
            int32_t si = Q0(dot_i8x32)(wq, load_i8x32(XQ(t)[bt].qs));
            tail[n_tail++] = (float)si * (f16(wb) * XQ(t)[bt].d);
        }
        out[t] = lanes_finish(acc[t], tail, n_tail);
    }
}

Q0_TARGET static void
Q0(dot4_q8_0)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    Q0(dot4_q80_q40)(w, xq, xq_stride, nb, out, false);
}

Q0_TARGET static void
Q0(dot4_q4_0)(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    Q0(dot4_q80_q40)(w, xq, xq_stride, nb, out, true);
}

#undef XQ
