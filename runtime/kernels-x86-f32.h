/* SPDX-License-Identifier: MIT */
/*
 * The AVX-512 F32 tile kernel of kernels-x86.c for matrix products
 * (rt__kernels.mm_f32), included once by it after dot_f32 and hsum_f32.
 *
 * Why: dot4_f32 (one row, 4 tokens, two ymm accumulators each) makes 10
 * loads for 8 fused multiply-adds and so waits on loads, not on the
 * multipliers; llama.cpp's F32 prompts run a register tile here. With 32
 * zmm registers, 4 rows x 6 tokens of accumulators (24) plus the 4 rows'
 * vectors fit: 10 loads per 24 multiply-adds. For one token (generation,
 * bound by memory) the 4 rows are 4 streams read at once, which kept
 * memory busier than dot_f32's one: 20% more tokens/s.
 *
 * Bit-identical to dot_f32 per (row, token): a zmm accumulator holds
 * dot_f32's a0 in lanes 0-7 and a1 in lanes 8-15 (element i of a 16-wide
 * step goes to lane i % 16 in both), a last 8-wide step updates lanes 0-7
 * only (a0), and the reduction is hsum_f32(a0 + a1) lane for lane, then
 * the scalar tail in the same order.
 */

#define F32_TARGET __attribute__((target("avx512f,avx2,fma,f16c")))

enum {
    F32_ROWS = 4, /* rows of a tile */
    F32_TOKS = 6  /* tokens of a tile */
};

/* hsum_f32(lo256(a[r]) + hi256(a[r])) for r = 0..3, into out[0..3]: the
 * same IEEE additions as four hsum_f32 calls, done four rows at once. */
F32_TARGET static inline void
f32_hsum4(const __m512 a[F32_ROWS], float *out)
{
    /* v01 = [a0.lo + a0.hi, a1.lo + a1.hi] (8 lanes each), v23 likewise */
    __m512 v01 = _mm512_add_ps(_mm512_shuffle_f32x4(a[0], a[1], 0x44),
                               _mm512_shuffle_f32x4(a[0], a[1], 0xee));
    __m512 v23 = _mm512_add_ps(_mm512_shuffle_f32x4(a[2], a[3], 0x44),
                               _mm512_shuffle_f32x4(a[2], a[3], 0xee));
    /* s: 128-bit lane r holds v_r.lo128 + v_r.hi128 = (s0, s1, s2, s3) */
    __m512 s =
        _mm512_add_ps(_mm512_shuffle_f32x4(v01, v23, 0x88), _mm512_shuffle_f32x4(v01, v23, 0xdd));
    /* (s0 + s2, s1 + s3), then their sum in element 0 of each lane */
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4e));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xb1));
    __m512 r = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s);
    _mm_storeu_ps(out, _mm512_castps512_ps128(r));
}

/* Rows w[0..3] (n floats each) times tokens x + t * xs for t < nt
 * (nt <= F32_TOKS, a constant once inlined), into o[t][0..3]. */
F32_TARGET static inline __attribute__((always_inline)) void
f32_tile(const float *const w[F32_ROWS], const float *x, size_t xs, size_t n, unsigned nt,
         float o[F32_TOKS][F32_ROWS])
{
    __m512 acc[F32_TOKS][F32_ROWS];
#pragma GCC unroll 8
    for (unsigned t = 0; t < nt; t++)
#pragma GCC unroll 4
        for (unsigned r = 0; r < F32_ROWS; r++)
            acc[t][r] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[F32_ROWS];
#pragma GCC unroll 4
        for (unsigned r = 0; r < F32_ROWS; r++)
            wv[r] = _mm512_loadu_ps(w[r] + i);
#pragma GCC unroll 8
        for (unsigned t = 0; t < nt; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * xs + i);
#pragma GCC unroll 4
            for (unsigned r = 0; r < F32_ROWS; r++)
                acc[t][r] = _mm512_fmadd_ps(wv[r], xv, acc[t][r]);
        }
    }
    if (i + 8 <= n) { /* dot_f32's 8-wide step: a0 only */
        const __mmask16 lo = 0x00ff;
#pragma GCC unroll 8
        for (unsigned t = 0; t < nt; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(lo, x + t * xs + i);
#pragma GCC unroll 4
            for (unsigned r = 0; r < F32_ROWS; r++)
                acc[t][r] =
                    _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(lo, w[r] + i), xv, acc[t][r], lo);
        }
        i += 8;
    }
#pragma GCC unroll 8
    for (unsigned t = 0; t < nt; t++) {
        f32_hsum4(acc[t], o[t]);
        for (size_t j = i; j < n; j++)
#pragma GCC unroll 4
            for (unsigned r = 0; r < F32_ROWS; r++)
                o[t][r] += w[r][j] * x[t * xs + j];
    }
}

/* Tokens t0..t0+nt of rows r..r+3 into the outputs. */
F32_TARGET static inline __attribute__((always_inline)) void
f32_tile_store(const rt__mm *a, const float *const w[F32_ROWS], uint32_t r, size_t t0, unsigned nt)
{
    float o[F32_TOKS][F32_ROWS];
    f32_tile(w, a->x + t0 * a->x_stride, a->x_stride, a->w->cols, nt, o);
    for (unsigned t = 0; t < nt; t++)
        memcpy(a->out + (t0 + t) * a->out_stride + r, o[t], sizeof(o[t]));
}

/* F32 rows r0..r1 for every token: rows in blocks of about half
 * RT_ROW_BLOCK_BYTES, which stay in L1 beside a tile's 6 tokens while
 * the tile passes their rows 4 at a time; rows past the last multiple of
 * 4 take dot_f32. */
F32_TARGET static void
mm_f32(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    const rt__mat *m = a->w;
    size_t n = a->n, cols = m->cols;
    size_t blk = m->row_bytes ? RT_ROW_BLOCK_BYTES / 2 / m->row_bytes : 0;
    blk = blk < F32_ROWS ? F32_ROWS : blk / F32_ROWS * F32_ROWS;
    uint32_t r4 = r0 + (r1 - r0) / F32_ROWS * F32_ROWS;
#define ROW(r) ((const float *)(const void *)(m->data + (size_t)(r)*m->row_bytes))
    for (uint32_t rb = r0; rb < r4; rb += (uint32_t)blk) {
        uint32_t re = r4 - rb < blk ? r4 : rb + (uint32_t)blk;
        size_t t = 0;
        for (; t + F32_TOKS <= n; t += F32_TOKS)
            for (uint32_t r = rb; r < re; r += F32_ROWS) {
                const float *w[F32_ROWS] = { ROW(r), ROW(r + 1), ROW(r + 2), ROW(r + 3) };
                f32_tile_store(a, w, r, t, F32_TOKS);
            }
        if (t < n)
            for (uint32_t r = rb; r < re; r += F32_ROWS) {
                const float *w[F32_ROWS] = { ROW(r), ROW(r + 1), ROW(r + 2), ROW(r + 3) };
                switch (n - t) { /* constant tile widths: accumulators in registers */
                case 1:
                    f32_tile_store(a, w, r, t, 1);
                    break;
                case 2:
                    f32_tile_store(a, w, r, t, 2);
                    break;
                case 3:
                    f32_tile_store(a, w, r, t, 3);
                    break;
                case 4:
                    f32_tile_store(a, w, r, t, 4);
                    break;
                default:
                    f32_tile_store(a, w, r, t, 5);
                    break;
                }
            }
    }
    for (uint32_t r = r4; r < r1; r++)
        for (size_t t = 0; t < n; t++)
            a->out[t * a->out_stride + r] = dot_f32(ROW(r), a->x + t * a->x_stride, cols);
#undef ROW
}

#undef F32_TARGET
