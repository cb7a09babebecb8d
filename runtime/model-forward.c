/* SPDX-License-Identifier: MIT */
/*
 * The forward pass of the engine (model.h: rt_forward, rt_state_forward)
 * over a model and state that model.c laid out in the arena. Never
 * allocates.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/model.h"

/* Shapes in comments; compare llama2.c run.c. */

static void
rmsnorm(float *o, const float *x, const float *w, size_t n, float eps)
{
    double sum = 0.0;
    for (size_t j = 0; j < n; j++)
        sum += (double)(x[j] * x[j]);
    float ss = (float)(sum / (double)n);
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (size_t j = 0; j < n; j++)
        o[j] = w[j] * (ss * x[j]);
}

static void
softmax(float *x, size_t n)
{
    float max = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= sum;
}

/* How a matrix wants its activation: 0 float, 1 int8 blocks of 32
 * (Q8_0, Q4_0), 2 Q8_K super-blocks of 256 (K-quants). */
static int
block_kind(const rt__mat *w)
{
    if (w->type == RT_TYPE_Q8_0 || w->type == RT_TYPE_Q4_0)
        return 1;
    return rt__is_kquant(w->type) ? 2 : 0;
}

/* block_kind, plus 2 when a product of n tokens runs a tile kernel,
 * which takes the blocks unsigned. */
static int
act_kind(const rt_state *s, const rt__mat *w, size_t n)
{
    int kind = block_kind(w);
    return kind != 0 && rt__mm_tiled(s->m->k, w->type, n) ? kind + 2 : kind;
}

/* True when the activation xq made for `prev` does not fit w. */
static bool
act_differs(const rt_state *s, size_t n, const rt__mat *w, const rt__mat *prev)
{
    return act_kind(s, w, n) != act_kind(s, prev, n);
}

/* The K-quant activation blocks live in the same buffer as the int8 ones:
 * 256 values take fewer bytes as one rt__blockq8k than as 8 rt__blockq8. */
_Static_assert(sizeof(rt__blockq8k) <= 8 * sizeof(rt__blockq8), "xq holds either kind");

/* Where the activations of a batch of n tokens live: token t's vector of
 * each buffer starts t strides in. The state's own buffers are the n = 1
 * case (rt_state_forward); a batch uses the caller's scratch. */
typedef struct acts {
    float *x, *xb, *xb2, *q; /* [n][dim] */
    float *hb, *hb2;         /* [n][wide]: max(dim, hidden) rounded up to 32 */
    rt__blockq8 *xq;         /* [n][xq_bytes]: quantized activations */
    float *att;              /* [n_heads][att_len] scores, or NULL (one token) */
    size_t wide, xq_bytes, att_len;
} acts;

/* Below this many multiply-adds a product runs in the caller: waking the
 * pool would cost more than it saves (the tiny models). */
enum {
    PAR_MIN_MACS = 1 << 15,
    PAR_ROW_ALIGN = 16 /* rows per share boundary: outputs on separate cache lines */
};

static void
mm_part(void *arg, unsigned part, unsigned n_parts)
{
    const rt__mm *mm = arg;
    uint32_t rows = mm->w->rows;
    uint32_t units = (rows + PAR_ROW_ALIGN - 1) / PAR_ROW_ALIGN;
    uint32_t r0 = (uint32_t)((uint64_t)units * part / n_parts) * PAR_ROW_ALIGN;
    uint32_t r1 = (uint32_t)((uint64_t)units * (part + 1) / n_parts) * PAR_ROW_ALIGN;
    rt__matmul_rows(mm, r0 < rows ? r0 : rows, r1 < rows ? r1 : rows);
}

/* Per-token work of a batch (norms, activation quantization, RoPE and
 * the cache, attention by head) split through the pool like the
 * products: units [u0, u1) of a job go to one part. Each unit is the
 * very code one token at a time runs, so results stay bit-identical;
 * units write disjoint rows. */
typedef struct job job;
struct job {
    rt_state *s;
    const acts *a;
    const rt_layer *L;
    uint32_t l;
    int pos;
    size_t n;         /* tokens */
    size_t units;     /* what par_run splits: tokens or heads */
    const rt__mat *w; /* quantize_units: the product to quantize for */
    const float *x;   /* quantize_units: its input [n][x_stride] */
    size_t x_stride;
    const float *res;  /* resid_norm_units: x += res (NULL: not) */
    const float *norm; /* resid_norm_units: xb = rmsnorm(x) (NULL: not) */
    float *k, *v;      /* qkv_units: the batch's k and v, kvs apart */
    size_t kvs;
    void (*fn)(const job *j, size_t u0, size_t u1);
};

enum {
    PAR_MIN_VALUES = 1 << 13 /* tokens x dim below which a job runs in the caller */
};

static void
job_part(void *arg, unsigned part, unsigned n_parts)
{
    const job *j = arg;
    j->fn(j, j->units * part / n_parts, j->units * (part + 1) / n_parts);
}

/* Runs fn over units [0, units) of j: through the pool for a batch big
 * enough, else in the caller. */
static void
par_run(job *j, void (*fn)(const job *j, size_t u0, size_t u1), size_t units)
{
    const rt_parallel *p = j->s->par;
    j->fn = fn;
    j->units = units;
    if (p && p->n_parts > 1 && j->n > 1 && (uint64_t)j->n * j->s->m->cfg.dim >= PAR_MIN_VALUES)
        p->run(p->ctx, job_part, j);
    else
        fn(j, 0, units);
}

static rt__blockq8 *
xq_of(const acts *a, size_t t)
{
    return (rt__blockq8 *)(void *)((uint8_t *)a->xq + t * a->xq_bytes);
}

/* xq_t = x_t quantized as w's kernels take it, for tokens t0..t1. */
static void
quantize_units(const job *j, size_t t0, size_t t1)
{
    const rt__mat *w = j->w;
    const acts *a = j->a;
    int kind = act_kind(j->s, w, j->n);
    for (size_t t = t0; t < t1; t++) {
        const float *x = j->x + t * j->x_stride;
        if (kind % 2 == 1)
            rt__quantize_act(x, w->cols, xq_of(a, t));
        else
            rt__quantize_act_k(x, w->cols, (rt__blockq8k *)(void *)xq_of(a, t));
        if (kind > 2)
            rt__act_unsigned(xq_of(a, t), kind == 3 ? w->cols_pad / RT_QK : w->cols_pad / RT_QK_K,
                             kind == 4);
    }
}

/* out_t = W x_t for the n tokens (strides in floats), quantizing each x_t
 * first when W is a block type (xq is then valid for the next product with
 * the same x and kind: pass requant = false). */
static void
matmul(rt_state *s, const acts *a, size_t n, const rt__mat *w, const float *x, size_t x_stride,
       float *out, size_t out_stride, bool requant)
{
    if (requant && block_kind(w) != 0) {
        job j = { .s = s, .a = a, .n = n, .w = w, .x = x, .x_stride = x_stride };
        par_run(&j, quantize_units, n);
    }
    rt__mm mm = { .k = s->m->k,
                  .w = w,
                  .x = x,
                  .x_stride = x_stride,
                  .xq = a->xq,
                  .xq_stride = a->xq_bytes,
                  .out = out,
                  .out_stride = out_stride,
                  .n = n };
    const rt_parallel *p = s->par;
    if (p && p->n_parts > 1 && (uint64_t)w->rows * w->cols * n >= PAR_MIN_MACS)
        p->run(p->ctx, mm_part, &mm);
    else
        rt__matmul_rows(&mm, 0, w->rows);
}

static void
add_bias(float *v, const float *bias, size_t n)
{
    if (bias)
        for (size_t i = 0; i < n; i++)
            v[i] += bias[i];
}

/* Rotates pairs (v[i], v[i + off]) of each head of q [nq] and k [nk]
 * by the angle of pair index i: in llama's RoPE (off 1) the pairs are
 * adjacent, i even, angle pos * theta^(-i/head_dim); in NEOX's (qwen2,
 * phi3) they are half a head apart, i < head_dim/2, angle
 * pos * theta^(-2i/head_dim). One angle serves every head of q and k:
 * its powf, cosf and sinf once per pair index, not per element (they
 * were a tenth of a prompt's time). */
static void
rope(float *q, size_t nq, float *k, size_t nk, size_t head_dim, int pos, float theta, bool neox)
{
    size_t off = neox ? head_dim / 2 : 1, step = neox ? 1 : 2, end = neox ? head_dim / 2 : head_dim;
    for (size_t i = 0; i < end; i += step) {
        float e = neox ? (float)(2 * i) : (float)i;
        float freq = 1.0f / powf(theta, e / (float)head_dim);
        float val = (float)pos * freq;
        float fcr = cosf(val), fci = sinf(val);
        for (size_t j = i; j < nq + nk; j += head_dim) {
            float *v = j < nq ? q + j : k + (j - nq);
            float v0 = v[0], v1 = v[off];
            v[0] = v0 * fcr - v1 * fci;
            v[off] = v0 * fci + v1 * fcr;
        }
    }
}

/* Quantizes one head vector to int8 with one scale. */
static void
kv_quant(const float *x, size_t n, int8_t *q, float *scale)
{
    float amax = 0.0f;
    for (size_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (size_t i = 0; i < n; i++) {
        q[i] = (int8_t)rt__round_i8(x[i] * id); /* NaN (from a bad model) becomes 0 */
    }
    *scale = d;
}

/* x rounded to the nearest half, as a float. */
static float
half_round(float x)
{
    return rt__f16_to_f32(rt__f32_to_f16(x));
}

static void
store_f16(uint8_t *dst, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h = rt__f32_to_f16(x[i]);
        dst[2 * i] = (uint8_t)h;
        dst[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

/* xb [head h] = attention of head h of q [dim] (the token at pos) over
 * positions 0..pos of layer l's cache, with att [pos + 1] as scratch. */
static void
attend_head(const rt_state *s, uint32_t l, int pos, const float *q, float *xb_all, size_t h,
            float *att)
{
    const rt_model *m = s->m;
    const rt_config *c = &m->cfg;
    size_t hs = c->head_dim, kv_dim = s->kv_dim, kvmul = c->n_heads / c->n_kv_heads;
    size_t loff = (size_t)l * s->seq_len; /* first position of layer l */
    const float *qh = q + h * hs;
    size_t kvh = h / kvmul;
    for (int t = 0; t <= pos; t++) {
        size_t cell = (loff + (size_t)t) * kv_dim + kvh * hs;
        float score = 0.0f;
        if (s->kv_type == RT_KV_F32) {
            score = m->k->dot_f32(qh, s->kc + cell, hs);
        } else if (s->kv_type == RT_KV_F16) {
            score = m->k->dot_f16(s->kh + 2 * cell, qh, hs);
        } else {
            const int8_t *k = s->kq + cell;
            for (size_t i = 0; i < hs; i++)
                score += qh[i] * (float)k[i];
            score *= s->ks[(loff + (size_t)t) * c->n_kv_heads + kvh];
        }
        att[t] = score * (1.0f / sqrtf((float)hs));
    }
    softmax(att, (size_t)pos + 1);
    if (s->kv_type == RT_KV_F16) /* llama.cpp's V product takes them as halves */
        for (int t = 0; t <= pos; t++)
            att[t] = half_round(att[t]);
    float *xb = xb_all + h * hs;
    memset(xb, 0, hs * sizeof(float));
    for (int t = 0; t <= pos; t++) {
        size_t cell = (loff + (size_t)t) * kv_dim + kvh * hs;
        float a = att[t];
        if (s->kv_type == RT_KV_F32) {
            const float *v = s->vc + cell;
            for (size_t i = 0; i < hs; i++)
                xb[i] += a * v[i];
        } else if (s->kv_type == RT_KV_F16) {
            m->k->axpy_f16(a, s->vh + 2 * cell, xb, hs);
        } else {
            const int8_t *v = s->vq + cell;
            float av = a * s->vs[(loff + (size_t)t) * c->n_kv_heads + kvh];
            for (size_t i = 0; i < hs; i++)
                xb[i] += av * (float)v[i];
        }
    }
}

/* xb [dim] = attention of q [dim] (the token at pos), head by head. */
static void
attention(rt_state *s, uint32_t l, int pos, const float *q, float *xb)
{
    for (size_t h = 0; h < s->m->cfg.n_heads; h++)
        attend_head(s, l, pos, q, xb, h, s->att); /* one after another: one row */
}

/* x_t [dim] = embedding row of tokens[t] */
static void
embed(const rt_state *s, const acts *a, const int32_t *tokens, size_t n)
{
    const rt__mat *e = &s->m->tok_embd;
    size_t dim = s->m->cfg.dim;
    for (size_t t = 0; t < n; t++) {
        const uint8_t *row = e->data + (size_t)tokens[t] * e->row_bytes;
        float *x = a->x + t * dim;
        if (block_kind(e) != 0) {
            float *tmp = a->hb + t * a->wide; /* cols_pad <= wide */
            rt__dequant_row(e->type, row, tmp, e->cols_pad);
            memcpy(x, tmp, dim * 4);
        } else {
            rt__dequant_row(e->type, row, x, dim);
        }
    }
}

/* Biases, RoPE and the cache of the token at pos, whose q, k, v [dim,
 * kv_dim] the layer's products just wrote. */
static void
qkv_finish(rt_state *s, const rt_layer *L, uint32_t l, int pos, float *q, float *k, float *v)
{
    const rt_config *c = &s->m->cfg;
    size_t dim = c->dim, kv_dim = s->kv_dim, hs = c->head_dim;
    size_t cell = ((size_t)l * s->seq_len + (size_t)pos) * kv_dim;
    add_bias(q, L->bq, dim);
    add_bias(k, L->bk, kv_dim);
    add_bias(v, L->bv, kv_dim);
    rope(q, dim, k, kv_dim, hs, pos, c->rope_theta, c->rope_neox);
    if (s->kv_type == RT_KV_F16) {
        /* q meets the half-precision keys as a half, as in llama.cpp */
        store_f16(s->kh + 2 * cell, k, kv_dim);
        store_f16(s->vh + 2 * cell, v, kv_dim);
        for (size_t i = 0; i < dim; i++)
            q[i] = half_round(q[i]);
    }
    if (s->kv_type == RT_KV_Q8) {
        size_t hcell = ((size_t)l * s->seq_len + (size_t)pos) * c->n_kv_heads;
        for (size_t h = 0; h < c->n_kv_heads; h++) {
            kv_quant(k + h * hs, hs, s->kq + cell + h * hs, &s->ks[hcell + h]);
            kv_quant(v + h * hs, hs, s->vq + cell + h * hs, &s->vs[hcell + h]);
        }
    }
}

static void
add_to(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* x_t += res_t, then xb_t = rmsnorm(x_t), for tokens t0..t1 (either
 * step left out when its pointer is NULL). */
static void
resid_norm_units(const job *j, size_t t0, size_t t1)
{
    const rt_config *c = &j->s->m->cfg;
    size_t dim = c->dim;
    for (size_t t = t0; t < t1; t++) {
        if (j->res)
            add_to(j->a->x + t * dim, j->res + t * dim, dim);
        if (j->norm)
            rmsnorm(j->a->xb + t * dim, j->a->x + t * dim, j->norm, dim, c->norm_eps);
    }
}

static void
qkv_units(const job *j, size_t t0, size_t t1)
{
    size_t dim = j->s->m->cfg.dim;
    for (size_t t = t0; t < t1; t++)
        qkv_finish(j->s, j->L, j->l, j->pos + (int)t, j->a->q + t * dim, j->k + t * j->kvs,
                   j->v + t * j->kvs);
}

/* Heads h0..h1 of every token, each head with its own row of scores. */
static void
attn_units(const job *j, size_t h0, size_t h1)
{
    const acts *a = j->a;
    size_t dim = j->s->m->cfg.dim;
    for (size_t h = h0; h < h1; h++)
        for (size_t t = 0; t < j->n; t++)
            attend_head(j->s, j->l, j->pos + (int)t, a->q + t * dim, a->xb + t * dim, h,
                        a->att + h * a->att_len);
}

static void
attn_tokens(const job *j, size_t t0, size_t t1)
{
    size_t dim = j->s->m->cfg.dim;
    for (size_t t = t0; t < t1; t++)
        attention(j->s, j->l, j->pos + (int)t, j->a->q + t * dim, j->a->xb + t * dim);
}

/* hb = silu(hb) * hb2 for tokens t0..t1. */
static void
swiglu_units(const job *j, size_t t0, size_t t1)
{
    const acts *a = j->a;
    size_t hid = j->s->m->cfg.hidden_dim;
    for (size_t t = t0; t < t1; t++) {
        float *hb = a->hb + t * a->wide, *hb2 = a->hb2 + t * a->wide;
        for (size_t i = 0; i < hid; i++) {
            float val = hb[i];
            val *= 1.0f / (1.0f + expf(-val));
            hb[i] = val * hb2[i];
        }
    }
}

/* One layer for n tokens at positions pos.. . Every step is per token in
 * the same operations as for one token; only the products see the batch,
 * and a batch's per-token steps (attention: per head) split across the
 * pool. All the batch's keys and values are cached before any attention,
 * which reads only positions up to its own token's. */
static void
layer(rt_state *s, const acts *a, uint32_t l, int pos, size_t n)
{
    const rt_config *c = &s->m->cfg;
    const rt_layer *L = &s->m->layers[l];
    size_t dim = c->dim, kv_dim = s->kv_dim, w = a->wide;
    job j = { .s = s, .a = a, .L = L, .l = l, .pos = pos, .n = n };
    /* attention: xb [dim] = rmsnorm(x); q [dim], k, v [kv_dim] */
    j.norm = L->attn_norm;
    par_run(&j, resid_norm_units, n);
    /* An f32 cache takes k, v in place: the batch's positions are adjacent. */
    size_t cell = ((size_t)l * s->seq_len + (size_t)pos) * kv_dim;
    bool f32 = s->kv_type == RT_KV_F32;
    j.k = f32 ? s->kc + cell : a->hb;
    j.v = f32 ? s->vc + cell : a->hb2;
    j.kvs = f32 ? kv_dim : w;
    matmul(s, a, n, &L->wq, a->xb, dim, a->q, dim, true);
    matmul(s, a, n, &L->wk, a->xb, dim, j.k, j.kvs, act_differs(s, n, &L->wk, &L->wq));
    matmul(s, a, n, &L->wv, a->xb, dim, j.v, j.kvs, act_differs(s, n, &L->wv, &L->wk));
    par_run(&j, qkv_units, n);
    /* Heads split only where each has a row of scores (see batch_layout). */
    if (a->att && (size_t)pos + n <= a->att_len)
        par_run(&j, attn_units, c->n_heads);
    else
        attn_tokens(&j, 0, n);
    /* xb2 [dim] = wo xb; residual; xb = rmsnorm(x) */
    matmul(s, a, n, &L->wo, a->xb, dim, a->xb2, dim, true);
    j.res = a->xb2;
    j.norm = L->ffn_norm;
    par_run(&j, resid_norm_units, n);
    /* feed-forward: hb = silu(w1 xb) * (w3 xb) [hidden]; xb = w2 hb */
    matmul(s, a, n, &L->w1, a->xb, dim, a->hb, w, true);
    matmul(s, a, n, &L->w3, a->xb, dim, a->hb2, w, act_differs(s, n, &L->w3, &L->w1));
    par_run(&j, swiglu_units, n);
    matmul(s, a, n, &L->w2, a->hb, w, a->xb, dim, true);
    j.res = a->xb;
    j.norm = NULL;
    par_run(&j, resid_norm_units, n);
}

/* The whole pass for n valid tokens at valid positions; the logits are
 * those after the last token. */
static float *
forward(rt_state *s, const acts *a, const int32_t *tokens, size_t n, int pos)
{
    const rt_config *c = &s->m->cfg;
    embed(s, a, tokens, n);
    for (uint32_t l = 0; l < c->n_layers; l++)
        layer(s, a, l, pos, n);
    float *x = a->x + (n - 1) * c->dim;
    rmsnorm(x, x, s->m->output_norm, c->dim, c->norm_eps);
    /* logits [vocab] = classifier x */
    matmul(s, a, 1, &s->m->output, x, c->dim, s->logits, c->vocab_size, true);
    return s->logits;
}

static size_t
wide_of(const rt_config *c)
{
    size_t wide = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    return (wide + RT_QK - 1) / RT_QK * RT_QK;
}

float *
rt_forward(rt_model *m, int token, int pos)
{
    return m ? rt_state_forward(&m->st, token, pos) : NULL;
}

float *
rt_state_forward(rt_state *s, int token, int pos)
{
    if (!s)
        return NULL;
    const rt_config *c = &s->m->cfg;
    if (token < 0 || (uint32_t)token >= c->vocab_size || pos < 0 || (uint32_t)pos >= s->seq_len)
        return NULL;
    size_t wide = wide_of(c);
    acts a = { .x = s->x,
               .xb = s->xb,
               .xb2 = s->xb2,
               .q = s->q,
               .hb = s->hb,
               .hb2 = s->hb2,
               .xq = s->xq,
               .wide = wide,
               .xq_bytes = wide / RT_QK * sizeof(rt__blockq8) };
    int32_t tok = token;
    return forward(s, &a, &tok, 1, pos);
}

/* Lays out a batch's buffers from base (or only counts when base is NULL);
 * returns the bytes. Every piece is a multiple of 4 bytes after an aligned
 * start, enough for floats and the int8 blocks (whose scale is a float).
 * The rows of attention scores, one per head so that heads can run on
 * several threads, span the model's context (cfg seq_len): a state made
 * longer attends past it one head at a time in its own row. */
static size_t
batch_layout(const rt_config *c, size_t n, uint8_t *base, acts *a)
{
    size_t wide = wide_of(c), dimb = n * c->dim * 4, wideb = n * wide * 4;
    size_t xq_bytes = wide / RT_QK * sizeof(rt__blockq8);
    size_t att_at = 4 * dimb + 2 * wideb + n * xq_bytes;
    if (base) {
        a->att = (float *)(void *)(base + att_at);
        a->att_len = c->seq_len;
        a->x = (float *)(void *)base;
        a->xb = (float *)(void *)(base + dimb);
        a->xb2 = (float *)(void *)(base + 2 * dimb);
        a->q = (float *)(void *)(base + 3 * dimb);
        a->hb = (float *)(void *)(base + 4 * dimb);
        a->hb2 = (float *)(void *)(base + 4 * dimb + wideb);
        a->xq = (rt__blockq8 *)(void *)(base + 4 * dimb + 2 * wideb);
        a->wide = wide;
        a->xq_bytes = xq_bytes;
    }
    return att_at + (size_t)c->n_heads * c->seq_len * 4;
}

size_t
rt_batch_scratch_size(const rt_model *m, size_t n)
{
    if (!m || n == 0 || n > RT_BATCH_MAX)
        return 0;
    return batch_layout(&m->cfg, n, NULL, NULL);
}

int
rt_state_forward_batch(rt_state *s, const int32_t *tokens, size_t n, int pos, void *scratch,
                       size_t size, float **ret_logits)
{
    if (!s || !tokens || !scratch || n == 0 || n > RT_BATCH_MAX || pos < 0 ||
        (uint32_t)pos >= s->seq_len || n > s->seq_len - (uint32_t)pos ||
        (uintptr_t)scratch % RT_ARENA_ALIGN != 0)
        return -EINVAL;
    const rt_config *c = &s->m->cfg;
    for (size_t t = 0; t < n; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= c->vocab_size)
            return -EINVAL;
    acts a;
    if (size < batch_layout(c, n, scratch, &a))
        return -EINVAL;
    float *logits = forward(s, &a, tokens, n, pos);
    if (ret_logits)
        *ret_logits = logits;
    return 0;
}

int
rt_forward_batch(rt_model *m, const int32_t *tokens, size_t n, int pos, void *scratch, size_t size,
                 float **ret_logits)
{
    if (!m)
        return -EINVAL;
    return rt_state_forward_batch(&m->st, tokens, n, pos, scratch, size, ret_logits);
}

void
rt_state_set_parallel(rt_state *s, const rt_parallel *p)
{
    if (s)
        s->par = p;
}

void
rt_model_set_parallel(rt_model *m, const rt_parallel *p)
{
    if (m)
        rt_state_set_parallel(&m->st, p);
}
