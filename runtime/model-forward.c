/* SPDX-License-Identifier: MIT */
/*
 * The forward pass of the engine (model.h: rt_forward, rt_state_forward)
 * over a model and state that model.c laid out in the arena. Never
 * allocates.
 */
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
act_kind(const rt__mat *w)
{
    if (w->type == RT_TYPE_Q8_0 || w->type == RT_TYPE_Q4_0)
        return 1;
    return rt__is_kquant(w->type) ? 2 : 0;
}

static bool
is_block(const rt__mat *w)
{
    return act_kind(w) != 0;
}

/* True when the activation xq made for `prev` does not fit w. */
static bool
act_differs(const rt__mat *w, const rt__mat *prev)
{
    return act_kind(w) != act_kind(prev);
}

/* The K-quant activation blocks live in the same buffer as the int8 ones:
 * 256 values take fewer bytes as one rt__blockq8k than as 8 rt__blockq8. */
_Static_assert(sizeof(rt__blockq8k) <= 8 * sizeof(rt__blockq8), "xq holds either kind");

/* out = W x, quantizing x first when W is a block type (xq is then valid
 * for the next matvec with the same x and kind: pass requant = false). */
static void
matvec(rt_state *s, const rt__mat *w, const float *x, float *out, bool requant)
{
    int kind = act_kind(w);
    if (requant && kind == 1)
        rt__quantize_act(x, w->cols, s->xq);
    else if (requant && kind == 2)
        rt__quantize_act_k(x, w->cols, (rt__blockq8k *)(void *)s->xq);
    rt__matvec(s->m->k, w, x, s->xq, out);
}

static void
add_bias(float *v, const float *bias, size_t n)
{
    if (bias)
        for (size_t i = 0; i < n; i++)
            v[i] += bias[i];
}

/* Rotates pairs (v[i], v[i+1]) of each head by pos * theta^(-i/head_dim). */
static void
rope(float *v, size_t n, size_t head_dim, int pos, float theta)
{
    for (size_t i = 0; i < n; i += 2) {
        size_t hd = i % head_dim;
        float freq = 1.0f / powf(theta, (float)hd / (float)head_dim);
        float val = (float)pos * freq;
        float fcr = cosf(val), fci = sinf(val);
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

/* NEOX RoPE (qwen2, phi3): rotates (v[i], v[i + head_dim/2]) of each head
 * by pos * theta^(-2i/head_dim). */
static void
rope_neox(float *v, size_t n, size_t head_dim, int pos, float theta)
{
    size_t half = head_dim / 2;
    for (size_t h = 0; h < n; h += head_dim)
        for (size_t i = 0; i < half; i++) {
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float val = (float)pos * freq;
            float fcr = cosf(val), fci = sinf(val);
            float v0 = v[h + i], v1 = v[h + i + half];
            v[h + i] = v0 * fcr - v1 * fci;
            v[h + i + half] = v0 * fci + v1 * fcr;
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
        float v = x[i] * id; /* NaN (from a bad model) becomes 0 */
        q[i] = (int8_t)(v >= -127.0f && v <= 127.0f ? lrintf(v)
                        : v > 127.0f                ? 127
                        : v < -127.0f               ? -127
                                                    : 0);
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

static void
attention(rt_state *s, uint32_t l, int pos)
{
    const rt_model *m = s->m;
    const rt_config *c = &m->cfg;
    size_t hs = c->head_dim, kv_dim = s->kv_dim, kvmul = c->n_heads / c->n_kv_heads;
    size_t loff = (size_t)l * s->seq_len; /* first position of layer l */
    for (size_t h = 0; h < c->n_heads; h++) {
        const float *qh = s->q + h * hs;
        float *att = s->att; /* heads run one after another: one row suffices */
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
        float *xb = s->xb + h * hs;
        memset(xb, 0, hs * sizeof(float));
        for (int t = 0; t <= pos; t++) {
            size_t cell = (loff + (size_t)t) * kv_dim + kvh * hs;
            float a = att[t];
            if (s->kv_type == RT_KV_F32) {
                const float *v = s->vc + cell;
                for (size_t i = 0; i < hs; i++)
                    xb[i] += a * v[i];
            } else if (s->kv_type == RT_KV_F16) {
                const uint8_t *v = s->vh + 2 * cell;
                for (size_t i = 0; i < hs; i++)
                    xb[i] += a * rt__f16_to_f32(rt__le16(v + 2 * i));
            } else {
                const int8_t *v = s->vq + cell;
                float av = a * s->vs[(loff + (size_t)t) * c->n_kv_heads + kvh];
                for (size_t i = 0; i < hs; i++)
                    xb[i] += av * (float)v[i];
            }
        }
    }
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
    const rt_model *m = s->m;
    const rt_config *c = &m->cfg;
    if (token < 0 || (uint32_t)token >= c->vocab_size || pos < 0 || (uint32_t)pos >= s->seq_len)
        return NULL;
    size_t dim = c->dim, hid = c->hidden_dim, kv_dim = s->kv_dim, hs = c->head_dim;
    float *x = s->x;

    /* x [dim] = embedding row of token */
    const rt__mat *e = &m->tok_embd;
    const uint8_t *row = e->data + (size_t)token * e->row_bytes;
    if (is_block(e)) {
        rt__dequant_row(e->type, row, s->hb, e->cols_pad);
        memcpy(x, s->hb, dim * 4);
    } else {
        rt__dequant_row(e->type, row, x, dim);
    }

    for (uint32_t l = 0; l < c->n_layers; l++) {
        const rt_layer *L = &m->layers[l];
        size_t cell = ((size_t)l * s->seq_len + (size_t)pos) * kv_dim;
        /* attention: xb [dim] = rmsnorm(x); q [dim], k, v [kv_dim] */
        rmsnorm(s->xb, x, L->attn_norm, dim, c->norm_eps);
        float *k = s->kv_type == RT_KV_F32 ? s->kc + cell : s->hb;
        float *v = s->kv_type == RT_KV_F32 ? s->vc + cell : s->hb2;
        matvec(s, &L->wq, s->xb, s->q, true);
        matvec(s, &L->wk, s->xb, k, act_differs(&L->wk, &L->wq));
        matvec(s, &L->wv, s->xb, v, act_differs(&L->wv, &L->wk));
        add_bias(s->q, L->bq, dim);
        add_bias(k, L->bk, kv_dim);
        add_bias(v, L->bv, kv_dim);
        if (c->rope_neox) {
            rope_neox(s->q, dim, hs, pos, c->rope_theta);
            rope_neox(k, kv_dim, hs, pos, c->rope_theta);
        } else {
            rope(s->q, dim, hs, pos, c->rope_theta);
            rope(k, kv_dim, hs, pos, c->rope_theta);
        }
        if (s->kv_type == RT_KV_F16) {
            /* q meets the half-precision keys as a half, as in llama.cpp */
            store_f16(s->kh + 2 * cell, k, kv_dim);
            store_f16(s->vh + 2 * cell, v, kv_dim);
            for (size_t i = 0; i < dim; i++)
                s->q[i] = half_round(s->q[i]);
        }
        if (s->kv_type == RT_KV_Q8) {
            size_t hcell = ((size_t)l * s->seq_len + (size_t)pos) * c->n_kv_heads;
            for (size_t h = 0; h < c->n_kv_heads; h++) {
                kv_quant(k + h * hs, hs, s->kq + cell + h * hs, &s->ks[hcell + h]);
                kv_quant(v + h * hs, hs, s->vq + cell + h * hs, &s->vs[hcell + h]);
            }
        }
        attention(s, l, pos);
        /* xb2 [dim] = wo xb; residual */
        matvec(s, &L->wo, s->xb, s->xb2, true);
        for (size_t i = 0; i < dim; i++)
            x[i] += s->xb2[i];
        /* feed-forward: hb = silu(w1 xb) * (w3 xb) [hidden]; xb = w2 hb */
        rmsnorm(s->xb, x, L->ffn_norm, dim, c->norm_eps);
        matvec(s, &L->w1, s->xb, s->hb, true);
        matvec(s, &L->w3, s->xb, s->hb2, act_differs(&L->w3, &L->w1));
        for (size_t i = 0; i < hid; i++) {
            float val = s->hb[i];
            val *= 1.0f / (1.0f + expf(-val));
            s->hb[i] = val * s->hb2[i];
        }
        matvec(s, &L->w2, s->hb, s->xb, true);
        for (size_t i = 0; i < dim; i++)
            x[i] += s->xb[i];
    }
    rmsnorm(x, x, m->output_norm, dim, c->norm_eps);
    /* logits [vocab] = classifier x */
    matvec(s, &m->output, x, s->logits, true);
    return s->logits;
}
