/* SPDX-License-Identifier: MIT */
/*
 * Tile kernels of kernels-x86.c for batched products (rt__kernels.mm_*):
 * 8 weight rows in the 8 int32 lanes of a register, every token of the
 * batch. Included once per instruction set, like kernels-x86-q0.h; the
 * includer defines Q0(name), Q0_TARGET and
 *   TILE_DPB(acc, u, s)  acc + the 8 lane sums of u[i] * s[i] (u unsigned,
 *                        s signed bytes, 4 products per lane): vpdpbusd, or
 *                        maddubs + madd for plain AVX2, which is exact
 *                        only while a pair stays below 2^15 (so that set
 *                        takes no Q8_0 tile: 255 * 128 * 2 does not).
 *
 * Why: the one-row kernels reduce each block's 8 lanes to one sum per
 * (row, token, block), and those shuffles, not the products, bound them.
 * Here each 32-byte load holds 4 columns of 8 rows (a panel, repacked
 * once per tile from the rows), each token's 4 activation bytes are
 * broadcast, and the 8 lanes end up as 8 rows' block sums: no reduction.
 * The activations come unsigned (qs ^ 0x80, i.e. x + 128: vpdpbusd wants
 * its first operand unsigned) and the panel weights signed, so
 * sum (x + 128) w - 128 sum w, the 128 sum w per row made with the panel,
 * is the signed sum exactly. The float steps are the one-row kernels' own
 * (kernels.c, kquant.c), lane by lane: every result is bit-identical.
 *
 * Rows are taken 8 at a time (a partial last tile repeats its first row
 * and drops the extra lanes) and columns TILE_BLOCKS blocks at a time, so
 * a panel stays in L1 while every token passes; the float accumulators
 * wait in acc between column chunks.
 */

/* Transposes 8 rows' 32 bytes (r[i]: 4-byte group g of row i in dword g)
 * into 8 groups (p[g]: group g of row i in dword i). */
Q0_TARGET static inline void
Q0(tile_transpose)(const __m256i r[8], __m256i *p)
{
    __m256i t[8], u[8];
    for (unsigned i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (unsigned i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (unsigned g = 0; g < 4; g++) {
        p[g] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
        p[g + 4] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
    }
}

/* sum over groups g0..g1 of the broadcast token bytes x[4g..4g+3] times
 * panel group p[g], in two chains (vpdpbusd's latency). */
Q0_TARGET static inline __m256i
Q0(tile_dot)(const __m256i *p, const uint8_t *x, unsigned g0, unsigned g1)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    unsigned g = g0;
    for (; g + 2 <= g1; g += 2) {
        int32_t a, b;
        memcpy(&a, x + 4 * g, 4);
        memcpy(&b, x + 4 * g + 4, 4);
        s0 = TILE_DPB(s0, _mm256_set1_epi32(a), p[g]);
        s1 = TILE_DPB(s1, _mm256_set1_epi32(b), p[g + 1]);
    }
    return _mm256_add_epi32(s0, s1);
}

/* 8 lanes of the row sums of panel groups g0..g1 (ones times weights). */
Q0_TARGET static inline __m256i
Q0(tile_wsum)(const __m256i *p, unsigned g0, unsigned g1)
{
    __m256i s = _mm256_setzero_si256();
    for (unsigned g = g0; g < g1; g++)
        s = TILE_DPB(s, _mm256_set1_epi8(1), p[g]);
    return s;
}

/* Token x's 4 bytes of group g, broadcast to the 8 lanes. */
Q0_TARGET static inline __m256i
Q0(tile_bcast)(const uint8_t *x, unsigned g)
{
    int32_t v;
    memcpy(&v, x + 4 * g, 4);
    return _mm256_set1_epi32(v);
}

/* The dot of panel groups p[0..4) with tokens x0 and x1 (groups g..g+3
 * of each), into ret0 and ret1: four chains, each panel load used twice. */
Q0_TARGET static inline void
Q0(tile_dot4x2)(const __m256i *p, const uint8_t *x0, const uint8_t *x1, unsigned g, __m256i *ret0,
                __m256i *ret1)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i a0 = TILE_DPB(z, Q0(tile_bcast)(x0, g), p[0]);
    __m256i b0 = TILE_DPB(z, Q0(tile_bcast)(x1, g), p[0]);
    __m256i a1 = TILE_DPB(z, Q0(tile_bcast)(x0, g + 1), p[1]);
    __m256i b1 = TILE_DPB(z, Q0(tile_bcast)(x1, g + 1), p[1]);
    a0 = TILE_DPB(a0, Q0(tile_bcast)(x0, g + 2), p[2]);
    b0 = TILE_DPB(b0, Q0(tile_bcast)(x1, g + 2), p[2]);
    a1 = TILE_DPB(a1, Q0(tile_bcast)(x0, g + 3), p[3]);
    b1 = TILE_DPB(b1, Q0(tile_bcast)(x1, g + 3), p[3]);
    *ret0 = _mm256_add_epi32(a0, a1);
    *ret1 = _mm256_add_epi32(b0, b1);
}

/* Row pointers of the tile at row r of w (rows past r1 repeat row r). */
static inline void
Q0(tile_rows)(const rt__mat *w, uint32_t r, uint32_t r1, const uint8_t *rows[8])
{
    for (uint32_t i = 0; i < 8; i++)
        rows[i] = w->data + (size_t)(r + i < r1 ? r + i : r) * w->row_bytes;
}

/* Stores lanes 0..nr-1 of v at out. */
Q0_TARGET static inline void
Q0(tile_store)(float *out, __m256 v, uint32_t nr)
{
    if (nr == 8) {
        _mm256_storeu_ps(out, v);
        return;
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(out, tmp, nr * sizeof(float));
}

/* One Q8_0 / Q4_0 block of a panel: 8 groups of 8 rows, the rows' scales
 * and their 128 sum w. */
typedef struct Q0(tile_q0) {
    __m256i p[8];
    __m256 dw;
    __m256i corr;
} Q0(tile_q0);

Q0_TARGET static inline void
Q0(tile_pack_q0)(const uint8_t *rows[8], size_t b, bool q4, Q0(tile_q0) * ret)
{
    size_t bs = q4 ? RT_Q4_0_BYTES : RT_Q8_0_BYTES;
    __m256i r[8];
    float d[8];
    for (unsigned i = 0; i < 8; i++) {
        const uint8_t *wb = rows[i] + b * bs;
        r[i] = q4 ? load_q4(wb + 2) : load_i8x32(wb + 2);
        d[i] = f16(wb);
    }
    Q0(tile_transpose)(r, ret->p);
    ret->dw = _mm256_loadu_ps(d);
    ret->corr = _mm256_slli_epi32(Q0(tile_wsum)(ret->p, 0, 8), 7);
}

/* Block c of the panel for two tokens' blocks x0, x1: (float)sum *
 * (d_w * d_x) added to *l0, *l1. */
Q0_TARGET static inline void
Q0(tile_block2)(const Q0(tile_q0) * pc, const rt__blockq8 *x0, const rt__blockq8 *x1, __m256 *l0,
                __m256 *l1)
{
    const uint8_t *q0 = (const uint8_t *)x0->qs, *q1 = (const uint8_t *)x1->qs;
    __m256i s0, s1, u0, u1;
    Q0(tile_dot4x2)(pc->p, q0, q1, 0, &s0, &s1);
    Q0(tile_dot4x2)(pc->p + 4, q0, q1, 4, &u0, &u1);
    s0 = _mm256_sub_epi32(_mm256_add_epi32(s0, u0), pc->corr);
    s1 = _mm256_sub_epi32(_mm256_add_epi32(s1, u1), pc->corr);
    __m256 d0 = _mm256_mul_ps(pc->dw, _mm256_set1_ps(x0->d));
    __m256 d1 = _mm256_mul_ps(pc->dw, _mm256_set1_ps(x1->d));
    *l0 = _mm256_add_ps(*l0, _mm256_mul_ps(_mm256_cvtepi32_ps(s0), d0));
    *l1 = _mm256_add_ps(*l1, _mm256_mul_ps(_mm256_cvtepi32_ps(s1), d1));
}

/* Q8_0 (q4 false) or Q4_0 rows r0..r1 for every token: as dot_q8_0 /
 * dot_q4_0, block b adding (float)sum * (d_w * d_x) to lane b % 4.
 * Tokens go two at a time (an odd last one twice). */
Q0_TARGET static inline void
Q0(mm_q0)(const rt__mm *a, uint32_t r0, uint32_t r1, bool q4)
{
    const rt__mat *w = a->w;
    size_t nb = w->cols_pad / RT_QK, n = a->n;
    Q0(tile_q0) pan[TILE_BLOCKS];
    __m256 acc[RT_BATCH_MAX][RT_DOT_LANES];
#define XT(t) ((const rt__blockq8 *)(const void *)((const uint8_t *)a->xq + (t)*a->xq_stride) + b0)
    for (uint32_t r = r0; r < r1; r += 8) {
        const uint8_t *rows[8];
        Q0(tile_rows)(w, r, r1, rows);
        for (size_t b0 = 0; b0 < nb; b0 += TILE_BLOCKS) {
            size_t nc = nb - b0 < TILE_BLOCKS ? nb - b0 : TILE_BLOCKS;
            for (size_t c = 0; c < nc; c++)
                Q0(tile_pack_q0)(rows, b0 + c, q4, &pan[c]);
            for (size_t t = 0; t < n; t += 2) {
                size_t t1 = t + 1 < n ? t + 1 : t;
                const rt__blockq8 *x0 = XT(t), *x1 = XT(t1);
                __m256 c0[RT_DOT_LANES], c1[RT_DOT_LANES];
                for (unsigned j = 0; j < RT_DOT_LANES; j++) {
                    c0[j] = b0 ? acc[t][j] : _mm256_setzero_ps();
                    c1[j] = b0 ? acc[t1][j] : _mm256_setzero_ps();
                }
                /* TILE_BLOCKS is a multiple of 4: block c goes to lane c % 4. */
                size_t c = 0;
                for (; c + 4 <= nc; c += 4)
                    for (unsigned j = 0; j < 4; j++)
                        Q0(tile_block2)(&pan[c + j], x0 + c + j, x1 + c + j, &c0[j], &c1[j]);
                for (; c < nc; c++)
                    Q0(tile_block2)(&pan[c], x0 + c, x1 + c, &c0[c % 4], &c1[c % 4]);
                for (unsigned j = 0; j < RT_DOT_LANES; j++) {
                    acc[t][j] = c0[j];
                    acc[t1][j] = c1[j];
                }
            }
        }
        uint32_t nr = r1 - r < 8 ? r1 - r : 8;
        for (size_t t = 0; t < n; t++) {
            __m256 v = _mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]),
                                     _mm256_add_ps(acc[t][2], acc[t][3]));
            Q0(tile_store)(a->out + t * a->out_stride + r, v, nr);
        }
    }
#undef XT
}

#ifdef TILE_Q8
Q0_TARGET static void
Q0(mm_q8_0)(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    Q0(mm_q0)(a, r0, r1, false);
}
#endif

Q0_TARGET static void
Q0(mm_q4_0)(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    Q0(mm_q0)(a, r0, r1, true);
}

/* One K-quant super-block of a panel: 64 groups of 8 rows; per row the
 * scales of its 8 (Q4_K) or 16 (Q6_K) sub-blocks, Q4_K's mins as int16
 * pairs (m[2i], m[2i + 1]) for a madd with the token's bsums, d, dmin,
 * and the correction 128 * sum over sub-blocks of scale * sum w. */
typedef struct Q0(tile_k) {
    __m256i p[64];
    __m256i sc[16];
    __m256i mins[4];
    __m256 d, dmin;
    __m256i corr;
} Q0(tile_k);

/* 4 * 32 int32 scales (row i's scale j at [j][i]) from bytes. */
Q0_TARGET static inline void
Q0(tile_pack_q4_k)(const uint8_t *rows[8], size_t b, Q0(tile_k) * ret)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    int32_t sc[8][8], mn[4][8];
    float d[8], dmin[8];
    for (unsigned i = 0; i < 8; i++) {
        const uint8_t *wb = rows[i] + b * RT_Q4_K_BYTES;
        uint8_t s[8], m[8];
        rt__kq_scales(wb + 4, s, m);
        for (unsigned j = 0; j < 8; j++)
            sc[j][i] = s[j];
        for (unsigned j = 0; j < 4; j++)
            mn[j][i] = (int32_t)((uint32_t)m[2 * j] | (uint32_t)m[2 * j + 1] << 16);
        d[i] = f16(wb);
        dmin[i] = f16(wb + 2);
    }
    __m256i corr = _mm256_setzero_si256();
    for (unsigned c = 0; c < 4; c++) {
        __m256i lo[8], hi[8];
        for (unsigned i = 0; i < 8; i++) {
            __m256i v = load_i8x32(rows[i] + b * RT_Q4_K_BYTES + 16 + 32 * c);
            lo[i] = _mm256_and_si256(v, m4);
            hi[i] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        Q0(tile_transpose)(lo, ret->p + 16 * c);
        Q0(tile_transpose)(hi, ret->p + 16 * c + 8);
    }
    for (unsigned j = 0; j < 8; j++) {
        ret->sc[j] = _mm256_loadu_si256((const __m256i *)(const void *)sc[j]);
        __m256i ws = Q0(tile_wsum)(ret->p, 8 * j, 8 * j + 8);
        corr = _mm256_add_epi32(corr, _mm256_mullo_epi32(ws, ret->sc[j]));
    }
    for (unsigned j = 0; j < 4; j++)
        ret->mins[j] = _mm256_loadu_si256((const __m256i *)(const void *)mn[j]);
    ret->d = _mm256_loadu_ps(d);
    ret->dmin = _mm256_loadu_ps(dmin);
    ret->corr = _mm256_slli_epi32(corr, 7);
}

/* Q6_K: the 32-weight run (h, t) as the one-row kernel builds it, 16
 * weights of scale g = 8h + 2t in its low half and 16 of g + 1 in the
 * high one: after the transpose, groups 0-3 and 4-7. */
Q0_TARGET static inline void
Q0(tile_pack_q6_k)(const uint8_t *rows[8], size_t b, Q0(tile_k) * ret)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
    int32_t sc[16][8];
    float d[8];
    for (unsigned i = 0; i < 8; i++) {
        const uint8_t *wb = rows[i] + b * RT_Q6_K_BYTES;
        for (unsigned g = 0; g < 16; g++)
            sc[g][i] = (int8_t)wb[192 + g];
        d[i] = f16(wb + 208);
    }
    for (unsigned h = 0; h < 2; h++)
        for (unsigned t = 0; t < 4; t++) {
            __m256i q[8];
            for (unsigned i = 0; i < 8; i++) {
                const uint8_t *wb = rows[i] + b * RT_Q6_K_BYTES;
                __m256i l = load_i8x32(wb + 64 * h + 32 * (t & 1));
                __m256i lo =
                    t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                __m256i qh = load_i8x32(wb + 128 + 32 * h);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * t)), m2);
                q[i] = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), off);
            }
            Q0(tile_transpose)(q, ret->p + 32 * h + 8 * t);
        }
    __m256i corr = _mm256_setzero_si256();
    for (unsigned g = 0; g < 16; g++) {
        ret->sc[g] = _mm256_loadu_si256((const __m256i *)(const void *)sc[g]);
        __m256i ws = Q0(tile_wsum)(ret->p, 4 * g, 4 * g + 4);
        corr = _mm256_add_epi32(corr, _mm256_mullo_epi32(ws, ret->sc[g]));
    }
    ret->d = _mm256_loadu_ps(d);
    ret->dmin = _mm256_setzero_ps();
    ret->corr = _mm256_slli_epi32(corr, 7);
}

/* rt__kq_fold of one super-block's sumi, summ for the 8 rows. */
Q0_TARGET static inline __m256
Q0(tile_fold)(__m256 v, const Q0(tile_k) * pc, float dx, __m256i sumi, __m256i summ)
{
    __m256 d = _mm256_set1_ps(dx);
    sumi = _mm256_sub_epi32(sumi, pc->corr);
    v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_mul_ps(pc->d, d), _mm256_cvtepi32_ps(sumi)));
    return _mm256_sub_ps(v, _mm256_mul_ps(_mm256_mul_ps(pc->dmin, d), _mm256_cvtepi32_ps(summ)));
}

/* One super-block for two tokens (x0, x1), folded into *v0, *v1. */
Q0_TARGET static inline void
Q0(tile_super2)(const Q0(tile_k) * pc, const rt__blockq8k *x0, const rt__blockq8k *x1, bool q6,
                __m256 *v0, __m256 *v1)
{
    const uint8_t *q0 = (const uint8_t *)x0->qs, *q1 = (const uint8_t *)x1->qs;
    __m256i i0 = _mm256_setzero_si256(), i1 = i0, m0 = i0, m1 = i0;
    /* Q6_K: 16 scales of 4 groups; Q4_K: 8 of 8. */
    unsigned per = q6 ? 4 : 8;
    for (unsigned j = 0; j < 64 / per; j++) {
        __m256i s0, s1, u0, u1;
        Q0(tile_dot4x2)(pc->p + per * j, q0, q1, per * j, &s0, &s1);
        if (!q6) {
            Q0(tile_dot4x2)(pc->p + per * j + 4, q0, q1, per * j + 4, &u0, &u1);
            s0 = _mm256_add_epi32(s0, u0);
            s1 = _mm256_add_epi32(s1, u1);
        }
        i0 = _mm256_add_epi32(i0, _mm256_mullo_epi32(s0, pc->sc[j]));
        i1 = _mm256_add_epi32(i1, _mm256_mullo_epi32(s1, pc->sc[j]));
    }
    for (unsigned j = 0; !q6 && j < 4; j++) {
        int32_t b0, b1;
        memcpy(&b0, &x0->bsums[2 * j], 4);
        memcpy(&b1, &x1->bsums[2 * j], 4);
        m0 = _mm256_add_epi32(m0, _mm256_madd_epi16(pc->mins[j], _mm256_set1_epi32(b0)));
        m1 = _mm256_add_epi32(m1, _mm256_madd_epi16(pc->mins[j], _mm256_set1_epi32(b1)));
    }
    *v0 = Q0(tile_fold)(*v0, pc, x0->d, i0, m0);
    *v1 = Q0(tile_fold)(*v1, pc, x1->d, i1, m1);
}

/* Q4_K (q6 false) or Q6_K rows r0..r1 for every token: per super-block
 * the integers sumi and summ of kquant.c, folded as rt__kq_fold does.
 * Tokens go two at a time (an odd last one twice). */
Q0_TARGET static inline void
Q0(mm_k)(const rt__mm *a, uint32_t r0, uint32_t r1, bool q6)
{
    const rt__mat *w = a->w;
    size_t nb = w->cols_pad / RT_QK_K, n = a->n;
    Q0(tile_k) pan[TILE_SUPER];
    __m256 acc[RT_BATCH_MAX];
#define XT(t) ((const rt__blockq8k *)(const void *)((const uint8_t *)a->xq + (t)*a->xq_stride) + b0)
    for (uint32_t r = r0; r < r1; r += 8) {
        const uint8_t *rows[8];
        Q0(tile_rows)(w, r, r1, rows);
        for (size_t b0 = 0; b0 < nb; b0 += TILE_SUPER) {
            size_t nc = nb - b0 < TILE_SUPER ? nb - b0 : TILE_SUPER;
            for (size_t c = 0; c < nc; c++) {
                if (q6)
                    Q0(tile_pack_q6_k)(rows, b0 + c, &pan[c]);
                else
                    Q0(tile_pack_q4_k)(rows, b0 + c, &pan[c]);
            }
            for (size_t t = 0; t < n; t += 2) {
                size_t t1 = t + 1 < n ? t + 1 : t;
                const rt__blockq8k *x0 = XT(t), *x1 = XT(t1);
                __m256 v0 = b0 ? acc[t] : _mm256_setzero_ps(), v1 = b0 ? acc[t1] : v0;
                for (size_t c = 0; c < nc; c++)
                    Q0(tile_super2)(&pan[c], x0 + c, x1 + c, q6, &v0, &v1);
                acc[t] = v0;
                acc[t1] = v1;
            }
        }
        uint32_t nr = r1 - r < 8 ? r1 - r : 8;
        for (size_t t = 0; t < n; t++)
            Q0(tile_store)(a->out + t * a->out_stride + r, acc[t], nr);
    }
#undef XT
}

Q0_TARGET static void
Q0(mm_q4_k)(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    Q0(mm_k)(a, r0, r1, false);
}

Q0_TARGET static void
Q0(mm_q6_k)(const rt__mm *a, uint32_t r0, uint32_t r1)
{
    Q0(mm_k)(a, r0, r1, true);
}
