/* SPDX-License-Identifier: MIT */
/*
 * AVX2 kernels for x86-64, compiled with target attributes so the rest of
 * the build needs no -mavx2; chosen at run time by __builtin_cpu_supports.
 * Integer block sums equal the portable ones exactly, and the float
 * accumulation over blocks runs in the same order, so quantized results are
 * bit-identical to kernels.c. The F32/F16 dot products sum in 8 lanes and
 * may differ from the sequential portable sum in the last bits.
 */
#include "runtime/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma,f16c")))

TARGET static inline int32_t
hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

TARGET static inline float
hsum_f32(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TARGET static inline float
f16(const uint8_t *p)
{
    return _cvtsh_ss(le16_load(p));
}

/* The four block sums of p0..p3, reduced together (integer addition is
 * associative: the same values as four separate reductions). */
TARGET static inline __m128i
hsum4_i32(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* acc[j] += (float)si[j] * (d_w[j] * d_x[j]) for four blocks: the portable
 * lanes' operations, four at a time. */
TARGET static inline __m128
lanes_add(__m128 acc, __m128i si, const uint8_t *w, size_t stride, const rt__blockq8 *x)
{
    __m128 dw = _mm_set_ps(f16(w + 3 * stride), f16(w + 2 * stride), f16(w + stride), f16(w));
    __m128 dx = _mm_set_ps(x[3].d, x[2].d, x[1].d, x[0].d);
    return _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(si), _mm_mul_ps(dw, dx)));
}

/* The 32 weights of a Q4_0 block as int8 in [-8, 7], in element order. */
TARGET static inline __m256i
load_q4(const uint8_t *qs)
{
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)qs);
    __m128i m = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(b, m);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

TARGET static inline __m256i
load_i8x32(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Software prefetch distance in bytes, for the one-token kernels (the
 * 4-token ones reread a row that is in cache: prefetching there cost 15%
 * on Q4_K_M prompts). The row stream is sequential, but
 * a K-quant super-block costs ~100 instructions (a Q8_0 group of 4 blocks
 * ~50), so out-of-order
 * execution alone looks only a few blocks ahead and the loads wait on
 * memory (perf: most samples on them). Past a row's end it reaches into
 * the next row, which the next call reads. */
enum {
    KQ_PREFETCH = 1024
};

TARGET static inline void
prefetch_block(const uint8_t *w, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)(w + KQ_PREFETCH + o), _MM_HINT_T0);
}

TARGET static float
dot_f32(const float *w, const float *x, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm_prefetch((const char *)(w + i) + KQ_PREFETCH, _MM_HINT_T0);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float s = hsum_f32(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += w[i] * x[i];
    return s;
}

/* GCC 8 and clang 8 know the AVX-512 intrinsics the F32 tile uses. */
#if defined(__clang__) ? __clang_major__ >= 8 : __GNUC__ >= 8
#define HAVE_AVX512 1
#include "runtime/kernels-x86-f32.h"
#endif

/* dot_f32 for 4 tokens (x + t * x_stride): per token the same fused
 * multiply-adds into the same two accumulators, in the same order. */
TARGET static void
dot4_f32(const float *w, const float *x, size_t x_stride, size_t n, float *out)
{
    const float *x0 = x, *x1 = x + x_stride, *x2 = x + 2 * x_stride, *x3 = x + 3 * x_stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_loadu_ps(w + i), w1 = _mm256_loadu_ps(w + i + 8);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x0 + i + 8), a1);
        b0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x1 + i), b0);
        b1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x1 + i + 8), b1);
        c0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x2 + i), c0);
        c1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x2 + i + 8), c1);
        d0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x3 + i), d0);
        d1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x3 + i + 8), d1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 w0 = _mm256_loadu_ps(w + i);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x0 + i), a0);
        b0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x1 + i), b0);
        c0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x2 + i), c0);
        d0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x3 + i), d0);
    }
    out[0] = hsum_f32(_mm256_add_ps(a0, a1));
    out[1] = hsum_f32(_mm256_add_ps(b0, b1));
    out[2] = hsum_f32(_mm256_add_ps(c0, c1));
    out[3] = hsum_f32(_mm256_add_ps(d0, d1));
    for (; i < n; i++) {
        out[0] += w[i] * x0[i];
        out[1] += w[i] * x1[i];
        out[2] += w[i] * x2[i];
        out[3] += w[i] * x3[i];
    }
}

TARGET static float
dot_f16(const uint8_t *w, const float *x, size_t n)
{
    __m256 a0 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        a0 = _mm256_fmadd_ps(wf, _mm256_loadu_ps(x + i), a0);
    }
    float s = hsum_f32(a0);
    for (; i < n; i++)
        s += f16(w + 2 * i) * x[i];
    return s;
}

TARGET static void
axpy_f16(float a, const uint8_t *v, float *y, size_t n)
{
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vf = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(v + 2 * i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, vf)));
    }
    for (; i < n; i++)
        y[i] += a * f16(v + 2 * i);
}

/* Tail blocks (nb % 4) go to lanes 0.., as in the portable kernel. */
TARGET static inline float
lanes_finish(__m128 acc4, const float *tail, size_t n_tail)
{
    float acc[RT_DOT_LANES];
    _mm_storeu_ps(acc, acc4);
    for (size_t j = 0; j < n_tail; j++)
        acc[j] += tail[j];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* ---- Q8_0 / Q4_0 (kernels-x86-q0.h), for plain AVX2 and for AVX-VNNI ---- */

#define Q0(name)     name
#define Q0_TARGET    TARGET
#define Q0_DOT(a, b) _mm256_madd_epi16(_mm256_maddubs_epi16((a), (b)), _mm256_set1_epi16(1))
#include "runtime/kernels-x86-q0.h"

/* Blocks (Q8_0, Q4_0) and super-blocks (K-quants) of a tile's panel:
 * about 10 KiB, in L1 beside the tokens' activations. */
enum {
    TILE_BLOCKS = 32,
    TILE_SUPER = 4
};

#define TILE_DPB(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "runtime/kernels-x86-tile.h"
#undef TILE_DPB
#undef Q0
#undef Q0_TARGET
#undef Q0_DOT

/* GCC 11 and clang 12 know AVX-VNNI's 256-bit (VEX) vpdpbusd. */
#if defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11
#define HAVE_AVXVNNI 1
#define Q0(name)     name##_vnni
#define Q0_TARGET    __attribute__((target("avx2,fma,f16c,avxvnni")))
#define Q0_DOT(a, b) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (a), (b))
#include "runtime/kernels-x86-q0.h"
#define TILE_DPB(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
#define TILE_Q8
#include "runtime/kernels-x86-tile.h"
#undef TILE_Q8
#undef TILE_DPB
#undef Q0
#undef Q0_TARGET
#undef Q0_DOT
#endif

/* ---- K-quants: integer sums per super-block as kquant.c defines them,
 * folded with the shared rt__kq_fold, so results equal the portable ones
 * bit for bit. ---- */

/* sc * (q . x) over 32 weights, in 8 int32 lanes: q unsigned (Q4_K codes
 * 0..15, Q5_K 0..31), so maddubs takes it directly (pairs at most
 * 31 * 127 * 2 < 2^15); the scale multiplies in the madd. */
TARGET static inline __m256i
scaled_u8x32(__m256i q, const int8_t *x, uint8_t sc)
{
    __m256i p16 = _mm256_maddubs_epi16(q, load_i8x32(x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(sc));
}

/* sum_j m[j] * bsums[j] (the minimums' share) in one madd. */
TARGET static inline int32_t
mins_dot(const uint8_t m[8], const int16_t *bsums)
{
    __m128i mv = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)m));
    __m128i p = _mm_madd_epi16(mv, _mm_loadu_si128((const __m128i *)(const void *)bsums));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(1, 0, 3, 2)));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(p);
}

/* One Q4_K (qh == NULL) or Q5_K super-block: sumi and summ. */
TARGET static inline int32_t
sums_q45(const uint8_t *w, const uint8_t *qs, const uint8_t *qh, const rt__blockq8k *x,
         int32_t *ret_summ)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), sixteen = _mm256_set1_epi8(16);
    __m256i hv = qh ? load_i8x32(qh) : _mm256_setzero_si256();
    __m256i sum = _mm256_setzero_si256();
    uint8_t sc[8], m[8];
    rt__kq_scales(w + 4, sc, m);
    int32_t summ = mins_dot(m, x->bsums);
    for (unsigned c = 0; c < 4; c++) {
        __m256i v = load_i8x32(qs + 32 * c);
        __m256i lo = _mm256_and_si256(v, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (qh) {
            __m256i b0 = _mm256_set1_epi8((char)(1u << (2 * c)));
            __m256i b1 = _mm256_set1_epi8((char)(1u << (2 * c + 1)));
            lo = _mm256_or_si256(
                lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b0), b0), sixteen));
            hi = _mm256_or_si256(
                hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b1), b1), sixteen));
        }
        sum = _mm256_add_epi32(sum, scaled_u8x32(lo, x->qs + 64 * c, sc[2 * c]));
        sum = _mm256_add_epi32(sum, scaled_u8x32(hi, x->qs + 64 * c + 32, sc[2 * c + 1]));
    }
    *ret_summ = summ;
    return hsum_i32(sum);
}

TARGET static float
dot_q4_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q4_K_BYTES) {
        prefetch_block(w, RT_Q4_K_BYTES);
        int32_t summ, sumi = sums_q45(w, w + 16, NULL, &x[b], &summ);
        acc = rt__kq_fold(acc, x[b].d, f16(w), f16(w + 2), sumi, summ);
    }
    return acc;
}

TARGET static float
dot_q5_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q5_K_BYTES) {
        prefetch_block(w, RT_Q5_K_BYTES);
        int32_t summ, sumi = sums_q45(w, w + 48, w + 16, &x[b], &summ);
        acc = rt__kq_fold(acc, x[b].d, f16(w), f16(w + 2), sumi, summ);
    }
    return acc;
}

/* Q6_K: codes q - 32 in -32..31 are signed, so the sign trick of
 * prod_i8x32 applies; the two 16-weight groups of a 32-weight run take
 * their own scale (low and high 128-bit halves). */
TARGET static float
dot_q6_k(const uint8_t *w, const rt__blockq8k *x, size_t nb)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    float acc = 0.0f;
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        prefetch_block(w, RT_Q6_K_BYTES);
        const int8_t *sc = (const int8_t *)(w + 192);
        __m256i sum = _mm256_setzero_si256();
        for (unsigned h = 0; h < 2; h++) {
            __m256i ql0 = load_i8x32(w + 64 * h), ql1 = load_i8x32(w + 64 * h + 32);
            __m256i qh = load_i8x32(w + 128 + 32 * h);
            for (unsigned t = 0; t < 4; t++) {
                __m256i l = t & 1 ? ql1 : ql0;
                __m256i lo =
                    t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * t)), m2);
                __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), off);
                __m256i xv = load_i8x32(x[b].qs + 128 * h + 32 * t);
                __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xv, q));
                unsigned g = 8 * h + 2 * t;
                __m256i s16 = _mm256_setr_m128i(_mm_set1_epi16(sc[g]), _mm_set1_epi16(sc[g + 1]));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, s16));
            }
        }
        acc = rt__kq_fold(acc, x[b].d, f16(w + 208), 0.0f, hsum_i32(sum), 0);
    }
    return acc;
}

/* ---- 4 tokens per row (batched prompts): each token's operations are
 * exactly those of the one-token kernels above, in the same order; what
 * the tokens share is the row's loads, unpacking and scales. ---- */

#define XK(t) ((const rt__blockq8k *)(const void *)((const uint8_t *)xq + (t)*xq_stride))

/* sc * (q . x) for a 32-weight run of token x, added to acc. */
TARGET static inline __m256i
run_add(__m256i acc, __m256i q, __m256i sv, const int8_t *x)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, load_i8x32(x)), sv));
}

/* rt__kq_fold for 4 tokens, token t in lane t: the same IEEE operations
 * in the same order per lane (no fused multiply-add), so each lane equals
 * the scalar fold. The integers come in reduced together (hsum4_i32,
 * mins4): the per-token reductions cost as much as a token's products. */
TARGET static inline __m128
fold4(__m128 acc, __m128 dx, float d, float dmin, __m128i sumi, __m128i summ)
{
    acc = _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(d), dx), _mm_cvtepi32_ps(sumi)));
    return _mm_sub_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(dmin), dx), _mm_cvtepi32_ps(summ)));
}

/* mins_dot for 4 tokens' bsums, token t in lane t. */
TARGET static inline __m128i
mins4(const uint8_t m[8], const int16_t *b0, const int16_t *b1, const int16_t *b2,
      const int16_t *b3)
{
    __m128i mv = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)m));
#define MADD(b) _mm_madd_epi16(mv, _mm_loadu_si128((const __m128i *)(const void *)(b)))
    __m128i p01 = _mm_hadd_epi32(MADD(b0), MADD(b1)), p23 = _mm_hadd_epi32(MADD(b2), MADD(b3));
#undef MADD
    return _mm_hadd_epi32(p01, p23);
}

/* Sub-blocks outer, tokens inner: the unpacked codes and scale of one
 * run and the four tokens' sums all stay in registers. */
TARGET static void
dot4_q4_k(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m128 acc = _mm_setzero_ps(); /* token t in lane t */
    for (size_t b = 0; b < nb; b++, w += RT_Q4_K_BYTES) {
        const rt__blockq8k *x0 = XK(0) + b, *x1 = XK(1) + b, *x2 = XK(2) + b, *x3 = XK(3) + b;
        uint8_t sc[8], m[8];
        rt__kq_scales(w + 4, sc, m);
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (unsigned c = 0; c < 4; c++) {
            __m256i v = load_i8x32(w + 16 + 32 * c);
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            __m256i sl = _mm256_set1_epi16(sc[2 * c]), sh = _mm256_set1_epi16(sc[2 * c + 1]);
            s0 = run_add(run_add(s0, lo, sl, x0->qs + 64 * c), hi, sh, x0->qs + 64 * c + 32);
            s1 = run_add(run_add(s1, lo, sl, x1->qs + 64 * c), hi, sh, x1->qs + 64 * c + 32);
            s2 = run_add(run_add(s2, lo, sl, x2->qs + 64 * c), hi, sh, x2->qs + 64 * c + 32);
            s3 = run_add(run_add(s3, lo, sl, x3->qs + 64 * c), hi, sh, x3->qs + 64 * c + 32);
        }
        __m128 dx = _mm_set_ps(x3->d, x2->d, x1->d, x0->d);
        acc = fold4(acc, dx, f16(w), f16(w + 2), hsum4_i32(s0, s1, s2, s3),
                    mins4(m, x0->bsums, x1->bsums, x2->bsums, x3->bsums));
    }
    _mm_storeu_ps(out, acc);
}

/* |q| * (x with q's sign), times the two 16-weight scales s16, added. */
TARGET static inline __m256i
run6_add(__m256i acc, __m256i q, __m256i aq, __m256i s16, const int8_t *x)
{
    __m256i p16 = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(load_i8x32(x), q));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, s16));
}

TARGET static void
dot4_q6_k(const uint8_t *w, const void *xq, size_t xq_stride, size_t nb, float *out)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    __m128 acc = _mm_setzero_ps(); /* token t in lane t */
    for (size_t b = 0; b < nb; b++, w += RT_Q6_K_BYTES) {
        const rt__blockq8k *x0 = XK(0) + b, *x1 = XK(1) + b, *x2 = XK(2) + b, *x3 = XK(3) + b;
        const int8_t *sc = (const int8_t *)(w + 192);
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (unsigned h = 0; h < 2; h++) {
            __m256i ql0 = load_i8x32(w + 64 * h), ql1 = load_i8x32(w + 64 * h + 32);
            __m256i qh = load_i8x32(w + 128 + 32 * h);
            for (unsigned t = 0; t < 4; t++) {
                __m256i l = t & 1 ? ql1 : ql0;
                __m256i lo =
                    t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * t)), m2);
                __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), off);
                __m256i aq = _mm256_sign_epi8(q, q);
                unsigned g = 8 * h + 2 * t, o = 128 * h + 32 * t;
                __m256i s16 = _mm256_setr_m128i(_mm_set1_epi16(sc[g]), _mm_set1_epi16(sc[g + 1]));
                s0 = run6_add(s0, q, aq, s16, x0->qs + o);
                s1 = run6_add(s1, q, aq, s16, x1->qs + o);
                s2 = run6_add(s2, q, aq, s16, x2->qs + o);
                s3 = run6_add(s3, q, aq, s16, x3->qs + o);
            }
        }
        __m128 dx = _mm_set_ps(x3->d, x2->d, x1->d, x0->d);
        acc = fold4(acc, dx, f16(w + 208), 0.0f, hsum4_i32(s0, s1, s2, s3), _mm_setzero_si128());
    }
    _mm_storeu_ps(out, acc);
}

#undef XK

/* The members every x86 set shares, and those of the int8 products on
 * plain AVX2 and on AVX-VNNI. */
#define SET_COMMON                                                                            \
    .dot_f32 = dot_f32, .dot_f16 = dot_f16, .axpy_f16 = axpy_f16, .dot_q4_k = dot_q4_k,       \
    .dot_q5_k = dot_q5_k, .dot_q6_k = dot_q6_k, .dot4_f32 = dot4_f32, .dot4_q4_k = dot4_q4_k, \
    .dot4_q6_k = dot4_q6_k
#define SET_AVX2                                                                        \
    SET_COMMON, .dot_q8_0 = dot_q8_0, .dot_q4_0 = dot_q4_0, .sums_q8_0 = sums_q8_0,     \
                .sums_q4_0 = sums_q4_0, .dot4_q8_0 = dot4_q8_0, .dot4_q4_0 = dot4_q4_0, \
                .mm_q4_0 = mm_q4_0, .mm_q4_k = mm_q4_k, .mm_q6_k = mm_q6_k
#define SET_VNNI                                                                                   \
    SET_COMMON, .dot_q8_0 = dot_q8_0_vnni, .dot_q4_0 = dot_q4_0_vnni, .sums_q8_0 = sums_q8_0_vnni, \
                .sums_q4_0 = sums_q4_0_vnni, .dot4_q8_0 = dot4_q8_0_vnni,                          \
                .dot4_q4_0 = dot4_q4_0_vnni, .mm_q8_0 = mm_q8_0_vnni, .mm_q4_0 = mm_q4_0_vnni,     \
                .mm_q4_k = mm_q4_k_vnni, .mm_q6_k = mm_q6_k_vnni

static const rt__kernels kernels_avx2 = { .name = "avx2", SET_AVX2 };

#ifdef HAVE_AVX512
/* AVX2 with the F32 matrix products on AVX-512 (kernels-x86-f32.h),
 * bit-identical to the AVX2 set's: dot_f32 (attention's short dot
 * products) stays AVX2. */
static const rt__kernels kernels_avx512 = { .name = "avx2+avx512", SET_AVX2, .mm_f32 = mm_f32 };
#endif

/* AVX2, FMA and F16C present, and the OS saves the YMM registers. Read
 * from CPUID directly: not every compiler's __builtin_cpu_supports knows
 * "f16c". */
static bool
has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
         f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c))
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) /* XMM and YMM state enabled */
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 5);
}

#ifdef HAVE_AVX512
/* AVX-512F (CPUID leaf 7, EBX bit 16), and the OS saves the opmask and
 * the upper ZMM registers (XCR0 bits 5-7). Checked after has_avx2. */
static bool
has_avx512f(void)
{
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & (1u << 16)))
        return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;
}
#endif

#ifdef HAVE_AVXVNNI
/* AVX2 with the int8 products of Q8_0/Q4_0 on vpdpbusd (one instruction
 * where AVX2 takes two): same integers, same results. */
static const rt__kernels kernels_avxvnni = { .name = "avx2+vnni", SET_VNNI };
#ifdef HAVE_AVX512
static const rt__kernels kernels_avx512vnni = { .name = "avx2+vnni+avx512",
                                                SET_VNNI,
                                                .mm_f32 = mm_f32 };
#endif

/* AVX-VNNI: CPUID leaf 7, sub-leaf 1, EAX bit 4. */
static bool
has_avxvnni(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 1, a, b, c, d);
    return a & (1u << 4);
}
#endif

const rt__kernels *
rt__kernels_simd_all(size_t i)
{
    /* Asked once per model init: cheap enough not to cache (no shared
     * state). The fastest set first: AVX-512's F32 tiles, then VNNI. */
    if (!has_avx2())
        return NULL;
    const rt__kernels *sets[4];
    size_t n = 0;
    bool vnni = false, avx512 = false;
#ifdef HAVE_AVXVNNI
    vnni = has_avxvnni();
#endif
#ifdef HAVE_AVX512
    avx512 = has_avx512f();
#endif
#if defined(HAVE_AVX512) && defined(HAVE_AVXVNNI)
    if (avx512 && vnni)
        sets[n++] = &kernels_avx512vnni;
#endif
#ifdef HAVE_AVX512
    if (avx512)
        sets[n++] = &kernels_avx512;
#endif
#ifdef HAVE_AVXVNNI
    if (vnni)
        sets[n++] = &kernels_avxvnni;
#endif
    sets[n++] = &kernels_avx2;
    return i < n ? sets[i] : NULL;
}

const rt__kernels *
rt__kernels_simd(void)
{
    return rt__kernels_simd_all(0);
}
#endif
