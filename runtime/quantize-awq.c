/* SPDX-License-Identifier: MIT */
/*
 * Activation-aware Q4 (AWQ-style) for rt_quant_model; see quantize.h.
 *
 * The model's own F32 forward pass (a plain llama2.c-style one, kept here
 * rather than borrowed from the engine because it must expose the input of
 * every matrix) samples calibration text at temperature 1 and records, per
 * layer and matrix group, the mean |x_j| and mean x_j^2 of each input
 * channel plus a subsample of whole input vectors. Each group then gets
 * channel scales s_j = mean|x_j|^alpha with alpha chosen on a grid to
 * minimise || W x - Q(W diag(s)) diag(1/s) x ||^2 over the kept vectors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/quantize.h"
#include "runtime/sampler.h"

enum {
    SITE_ATTN = 0, /* input of wq, wk, wv: rmsnorm(x) * attn_norm */
    SITE_WO = 1,   /* input of wo: attention output */
    SITE_FFN = 2,  /* input of w1, w3: rmsnorm(x) * ffn_norm */
    SITE_DOWN = 3, /* input of w2: silu(w1 x) * (w3 x) */
    N_SITES = 4,
    KEEP = 128,           /* input vectors kept per site for the alpha search */
    N_ALPHA = 21,         /* alpha = 0, 0.05, ..., 1 */
    GPTQ_MAX_COLS = 1024, /* wider inputs skip the error-compensating pass (O(n^3)) */
};

typedef struct site {
    uint32_t n;   /* channels */
    double *sabs; /* [n] sum |x| */
    double *ssq;  /* [n] sum x^2 */
    float *keep;  /* [KEEP][n] */
    uint32_t n_keep;
    double *xx; /* [n][n] sum x x^T, or NULL when n > GPTQ_MAX_COLS */
    float *s;   /* [n] channel scales chosen by AWQ, or NULL (all 1) */
} site;

typedef struct layer_w {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w2, *w3;
    rt__qtensor *tq, *tk, *tv, *to, *t1, *t2, *t3;
} layer_w;

typedef struct calib {
    rt__qmodel *m;
    layer_w *lw;
    float *embd, *out_norm, *out;
    site *sites; /* [n_layers][N_SITES] */
    /* run state */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *logits;
    float *kc, *vc; /* [n_layers][seq_len][kv_dim] */
} calib;

static int
need(rt__qmodel *m, const char *name, int layer, uint64_t d0, uint64_t d1, rt__qtensor **ret)
{
    char full[RT_TENSOR_NAME_MAX + 1];
    if (layer >= 0)
        snprintf(full, sizeof(full), "blk.%d.%s", layer, name);
    else
        snprintf(full, sizeof(full), "%s", name);
    rt__qtensor *t = rt__qmodel_find(m, full);
    if (!t || t->dims[0] != d0 || (d1 && (t->n_dims != 2 || t->dims[1] != d1)) ||
        (!d1 && t->n_dims != 1))
        return -EBADMSG;
    *ret = t;
    return 0;
}

static int
bind(calib *c)
{
    rt__qmodel *m = c->m;
    if (m->dim <= 0 || m->n_heads <= 0 || m->n_kv_heads <= 0 || m->dim % m->n_heads ||
        m->n_heads % m->n_kv_heads || (m->dim / m->n_heads) % 2 || m->seq_len <= 0 ||
        m->hidden <= 0 || m->n_layers <= 0)
        return -EBADMSG;
    uint64_t dim = (uint64_t)m->dim, hid = (uint64_t)m->hidden;
    uint64_t kvd = dim * (uint64_t)m->n_kv_heads / (uint64_t)m->n_heads;
    rt__qtensor *t;
    int r = need(m, "token_embd.weight", -1, dim, (uint64_t)m->vocab, &t);
    if (r < 0)
        return r;
    c->embd = t->w;
    if ((r = need(m, "output_norm.weight", -1, dim, 0, &t)) < 0)
        return r;
    c->out_norm = t->w;
    c->out = need(m, "output.weight", -1, dim, (uint64_t)m->vocab, &t) == 0 ? t->w : c->embd;
    for (int l = 0; l < m->n_layers; l++) {
        layer_w *w = &c->lw[l];
        if ((r = need(m, "attn_norm.weight", l, dim, 0, &t)) < 0)
            return r;
        w->attn_norm = t->w;
        if ((r = need(m, "ffn_norm.weight", l, dim, 0, &t)) < 0)
            return r;
        w->ffn_norm = t->w;
        if ((r = need(m, "attn_q.weight", l, dim, dim, &w->tq)) < 0 ||
            (r = need(m, "attn_k.weight", l, dim, kvd, &w->tk)) < 0 ||
            (r = need(m, "attn_v.weight", l, dim, kvd, &w->tv)) < 0 ||
            (r = need(m, "attn_output.weight", l, dim, dim, &w->to)) < 0 ||
            (r = need(m, "ffn_gate.weight", l, dim, hid, &w->t1)) < 0 ||
            (r = need(m, "ffn_down.weight", l, hid, dim, &w->t2)) < 0 ||
            (r = need(m, "ffn_up.weight", l, dim, hid, &w->t3)) < 0)
            return r;
        w->wq = w->tq->w;
        w->wk = w->tk->w;
        w->wv = w->tv->w;
        w->wo = w->to->w;
        w->w1 = w->t1->w;
        w->w2 = w->t2->w;
        w->w3 = w->t3->w;
    }
    return 0;
}

static void
rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (s * x[i]);
}

/* out[rows] = W[rows][cols] x[cols] */
static void
matvec(float *out, const float *x, const float *w, int cols, int rows)
{
    for (int i = 0; i < rows; i++) {
        float s = 0.0f;
        const float *row = w + (size_t)i * (size_t)cols;
        for (int j = 0; j < cols; j++)
            s += row[j] * x[j];
        out[i] = s;
    }
}

static void
record(site *s, const float *x, bool keep)
{
    for (uint32_t j = 0; j < s->n; j++) {
        s->sabs[j] += fabsf(x[j]);
        s->ssq[j] += (double)x[j] * x[j];
    }
    if (s->xx)
        for (uint32_t i = 0; i < s->n; i++) {
            double xi = x[i];
            double *row = s->xx + (size_t)i * s->n;
            for (uint32_t j = 0; j < s->n; j++)
                row[j] += xi * x[j];
        }
    if (keep && s->n_keep < KEEP)
        memcpy(s->keep + (size_t)s->n_keep++ * s->n, x, s->n * sizeof(float));
}

static void
rope(float *v, int n, int head_size, int pos, float base)
{
    for (int i = 0; i < n; i += 2) {
        int hd = i % head_size;
        float freq = 1.0f / powf(base, (float)hd / (float)head_size);
        float a = (float)pos * freq, cr = cosf(a), ci = sinf(a);
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * cr - v1 * ci;
        v[i + 1] = v0 * ci + v1 * cr;
    }
}

static void
forward(calib *c, int token, int pos, bool keep)
{
    rt__qmodel *m = c->m;
    int dim = m->dim, hid = m->hidden, hs = dim / m->n_heads;
    int kvd = dim * m->n_kv_heads / m->n_heads, kv_mul = m->n_heads / m->n_kv_heads;
    memcpy(c->x, c->embd + (size_t)token * (size_t)dim, (size_t)dim * sizeof(float));
    for (int l = 0; l < m->n_layers; l++) {
        layer_w *w = &c->lw[l];
        site *st = &c->sites[l * N_SITES];
        rmsnorm(c->xb, c->x, w->attn_norm, dim, m->eps);
        record(&st[SITE_ATTN], c->xb, keep);
        size_t lo = (size_t)l * (size_t)m->seq_len * (size_t)kvd;
        float *kp = c->kc + lo + (size_t)pos * (size_t)kvd;
        float *vp = c->vc + lo + (size_t)pos * (size_t)kvd;
        matvec(c->q, c->xb, w->wq, dim, dim);
        matvec(kp, c->xb, w->wk, dim, kvd);
        matvec(vp, c->xb, w->wv, dim, kvd);
        rope(c->q, dim, hs, pos, m->rope_base);
        rope(kp, kvd, hs, pos, m->rope_base);
        for (int h = 0; h < m->n_heads; h++) {
            const float *qh = c->q + h * hs;
            int kh = (h / kv_mul) * hs;
            for (int t = 0; t <= pos; t++) {
                const float *kt = c->kc + lo + (size_t)t * (size_t)kvd + kh;
                float s = 0.0f;
                for (int i = 0; i < hs; i++)
                    s += qh[i] * kt[i];
                c->att[t] = s / sqrtf((float)hs);
            }
            rt_softmax(c->att, (uint32_t)pos + 1);
            float *o = c->xb2 + h * hs;
            memset(o, 0, (size_t)hs * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                const float *vt = c->vc + lo + (size_t)t * (size_t)kvd + kh;
                for (int i = 0; i < hs; i++)
                    o[i] += c->att[t] * vt[i];
            }
        }
        record(&st[SITE_WO], c->xb2, keep);
        matvec(c->xb, c->xb2, w->wo, dim, dim);
        for (int i = 0; i < dim; i++)
            c->x[i] += c->xb[i];
        rmsnorm(c->xb, c->x, w->ffn_norm, dim, m->eps);
        record(&st[SITE_FFN], c->xb, keep);
        matvec(c->hb, c->xb, w->w1, dim, hid);
        matvec(c->hb2, c->xb, w->w3, dim, hid);
        for (int i = 0; i < hid; i++) {
            float g = c->hb[i];
            c->hb[i] = g / (1.0f + expf(-g)) * c->hb2[i];
        }
        record(&st[SITE_DOWN], c->hb, keep);
        matvec(c->xb, c->hb, w->w2, hid, dim);
        for (int i = 0; i < dim; i++)
            c->x[i] += c->xb[i];
    }
    rmsnorm(c->x, c->x, c->out_norm, dim, m->eps);
    matvec(c->logits, c->x, c->out, dim, m->vocab);
}

/* Quantizes W[rows][cols] (scaled columns already applied) with importance
 * imp and returns the error of its outputs on the kept inputs divided by s. */
static double
group_err(const float *w, const float *ws, int rows, int cols, const float *imp, const float *s,
          const site *st, float *deq, uint8_t *qbuf, float *xs)
{
    for (int i = 0; i < rows; i++) {
        rt_quant_row_q4_0_search(ws + (size_t)i * cols, imp, qbuf, (size_t)cols);
        rt_quant_dequant_row(RT_TYPE_Q4_0, qbuf, deq + (size_t)i * cols, (size_t)cols);
    }
    double err = 0.0;
    for (uint32_t k = 0; k < st->n_keep; k++) {
        const float *x = st->keep + (size_t)k * st->n;
        for (int j = 0; j < cols; j++)
            xs[j] = x[j] / s[j];
        for (int i = 0; i < rows; i++) {
            float y = 0.0f, yq = 0.0f;
            const float *a = w + (size_t)i * cols, *b = deq + (size_t)i * cols;
            for (int j = 0; j < cols; j++) {
                y += a[j] * x[j];
                yq += b[j] * xs[j];
            }
            err += (double)(y - yq) * (y - yq);
        }
    }
    return err;
}

/* Chooses and applies the scales of one group of matrices sharing the input
 * of site st; pred_vec (a norm weight, length cols) or pred_rows (a matrix
 * whose row j produces input channel map[j]) absorbs 1/s. */
static int
awq_group(calib *c, const site *st, rt__qtensor **mats, int n_mats, float *pred_vec,
          float *pred_rows, int pred_cols, const int *map, int n_pred_rows)
{
    int cols = (int)st->n;
    if (cols % RT_QK)
        return 0;
    double cnt = 0.0;
    (void)c;
    int maxrows = 0;
    for (int k = 0; k < n_mats; k++)
        if ((int)mats[k]->dims[1] > maxrows)
            maxrows = (int)mats[k]->dims[1];
    size_t mat = (size_t)maxrows * (size_t)cols;
    float *s = malloc((size_t)cols * sizeof(float)), *best_s = malloc((size_t)cols * sizeof(float));
    float *imp = malloc((size_t)cols * sizeof(float)), *xs = malloc((size_t)cols * sizeof(float));
    float *ws = malloc(mat * sizeof(float)), *deq = malloc(mat * sizeof(float));
    uint8_t *qbuf = malloc((size_t)cols / RT_QK * RT_Q4_0_BYTES);
    int r = -ENOMEM;
    if (!s || !best_s || !imp || !xs || !ws || !deq || !qbuf)
        goto out;
    cnt = st->n_keep ? 1.0 : 0.0;
    double best = INFINITY;
    for (int a = 0; a < N_ALPHA; a++) {
        float alpha = (float)a / (float)(N_ALPHA - 1);
        float mx = 0.0f, mn = INFINITY;
        for (int j = 0; j < cols; j++) {
            s[j] = powf(fmaxf((float)st->sabs[j], 1e-12f), alpha);
            mx = fmaxf(mx, s[j]);
            mn = fminf(mn, s[j]);
        }
        float norm = sqrtf(mx * mn);
        for (int j = 0; j < cols; j++) {
            s[j] /= norm;
            imp[j] = (float)st->ssq[j] / (s[j] * s[j]);
        }
        double err = 0.0;
        for (int k = 0; k < n_mats && cnt > 0.0; k++) {
            int rows = (int)mats[k]->dims[1];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    ws[(size_t)i * cols + j] = mats[k]->w[(size_t)i * cols + j] * s[j];
            err += group_err(mats[k]->w, ws, rows, cols, imp, s, st, deq, qbuf, xs);
        }
        if (err < best) {
            best = err;
            memcpy(best_s, s, (size_t)cols * sizeof(float));
        }
    }
    /* Apply: columns * s, predecessor / s, importance in the scaled space. */
    for (int k = 0; k < n_mats; k++) {
        int rows = (int)mats[k]->dims[1];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                mats[k]->w[(size_t)i * cols + j] *= best_s[j];
        free(mats[k]->imp);
        mats[k]->imp = malloc((size_t)cols * sizeof(float));
        if (!mats[k]->imp)
            goto out;
        for (int j = 0; j < cols; j++)
            mats[k]->imp[j] = (float)st->ssq[j] / (best_s[j] * best_s[j]);
    }
    free(((site *)st)->s);
    ((site *)st)->s = malloc((size_t)cols * sizeof(float));
    if (!st->s)
        goto out;
    memcpy(st->s, best_s, (size_t)cols * sizeof(float));
    if (pred_vec)
        for (int j = 0; j < cols; j++)
            pred_vec[j] /= best_s[j];
    if (pred_rows)
        for (int i = 0; i < n_pred_rows; i++)
            for (int j = 0; j < pred_cols; j++)
                pred_rows[(size_t)i * pred_cols + j] /= best_s[map ? map[i] : i];
    r = 0;
out:
    free(s);
    free(best_s);
    free(imp);
    free(xs);
    free(ws);
    free(deq);
    free(qbuf);
    return r;
}

/* Cholesky factor of the n x n SPD matrix a (lower, in place, upper part
 * zeroed). Returns false when a is not positive definite. */
static bool
cholesky(double *a, int n)
{
    for (int j = 0; j < n; j++) {
        double d = a[(size_t)j * n + j];
        for (int k = 0; k < j; k++)
            d -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
        if (!(d > 0.0))
            return false;
        d = sqrt(d);
        a[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = a[(size_t)i * n + j];
            for (int k = 0; k < j; k++)
                v -= a[(size_t)i * n + k] * a[(size_t)j * n + k];
            a[(size_t)i * n + j] = v / d;
        }
        for (int k = j + 1; k < n; k++)
            a[(size_t)j * n + k] = 0.0;
    }
    return true;
}

/* U, upper triangular with inv(H) = U^T U, from the damped Hessian H of the
 * (scaled) inputs; h is overwritten. */
static bool
hinv_factor(double *h, double *u, int n)
{
    if (!cholesky(h, n)) /* h = L L^T */
        return false;
    /* u = L^-1 (lower), by forward substitution column by column. */
    memset(u, 0, (size_t)n * n * sizeof(double));
    for (int j = 0; j < n; j++) {
        u[(size_t)j * n + j] = 1.0 / h[(size_t)j * n + j];
        for (int i = j + 1; i < n; i++) {
            double v = 0.0;
            for (int k = j; k < i; k++)
                v -= h[(size_t)i * n + k] * u[(size_t)k * n + j];
            u[(size_t)i * n + j] = v / h[(size_t)i * n + i];
        }
    }
    /* h = inv(H) = L^-T L^-1 */
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double v = 0.0;
            for (int k = i; k < n; k++)
                v += u[(size_t)k * n + i] * u[(size_t)k * n + j];
            h[(size_t)i * n + j] = h[(size_t)j * n + i] = v;
        }
    if (!cholesky(h, n)) /* inv(H) = C C^T, so U = C^T */
        return false;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            u[(size_t)i * n + j] = h[(size_t)j * n + i];
    return true;
}

/* GPTQ-style Q4_0 of t (its columns already AWQ-scaled by st->s): columns
 * are quantized left to right and each one's rounding error is pushed onto
 * the columns not yet quantized, weighted by the inverse Hessian of the
 * inputs, so the matrix OUTPUT error on the calibration activations is
 * what gets minimised. A block's scale is chosen (importance-weighted
 * search) when its first column is reached. The result is stored in t->q4
 * in the standard block layout. */
static int
gptq(rt__qtensor *t, const site *st)
{
    int n = (int)st->n, rows = (int)t->dims[1];
    if (!st->xx || t->dims[0] != st->n || n % RT_QK)
        return 0;
    size_t nn = (size_t)n * n, row_bytes = (size_t)n / RT_QK * RT_Q4_0_BYTES;
    double *h = malloc(nn * sizeof(double)), *u = malloc(nn * sizeof(double));
    double *w = malloc((size_t)rows * n * sizeof(double));
    float *imp = malloc((size_t)n * sizeof(float)), *d = malloc((size_t)rows * sizeof(float));
    uint8_t *codes = malloc((size_t)rows * n), *out = malloc((size_t)rows * row_bytes);
    int r = -ENOMEM;
    if (!h || !u || !w || !imp || !d || !codes || !out)
        goto out;
    double diag = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double si = st->s ? st->s[i] : 1.0, sj = st->s ? st->s[j] : 1.0;
            h[(size_t)i * n + j] = st->xx[(size_t)i * n + j] / (si * sj);
        }
    for (int i = 0; i < n; i++)
        diag += h[(size_t)i * n + i];
    double damp = diag > 0.0 ? 0.001 * diag / n : 1.0;
    for (int i = 0; i < n; i++) {
        h[(size_t)i * n + i] += damp;
        imp[i] = (float)h[(size_t)i * n + i];
    }
    r = 0;
    if (!hinv_factor(h, u, n))
        goto out; /* numerically hopeless: leave the plain search to it */
    for (size_t i = 0; i < (size_t)rows * n; i++)
        w[i] = t->w[i];
    for (int j = 0; j < n; j++) {
        if (j % RT_QK == 0) {
            for (int i = 0; i < rows; i++) {
                float blk[RT_QK];
                uint8_t q[RT_Q4_0_BYTES];
                for (int k = 0; k < RT_QK; k++)
                    blk[k] = (float)w[(size_t)i * n + j + k];
                rt_quant_row_q4_0_search(blk, imp + j, q, RT_QK);
                d[i] = rt__f16_to_f32(le16_load(q));
                memcpy(out + (size_t)i * row_bytes + (size_t)j / RT_QK * RT_Q4_0_BYTES, q, 2);
            }
        }
        double ujj = u[(size_t)j * n + j];
        for (int i = 0; i < rows; i++) {
            double *wr = w + (size_t)i * n;
            float id = d[i] != 0.0f ? 1.0f / d[i] : 0.0f;
            uint8_t q = rt__quant_code4((float)wr[j] * id + 8.0f);
            codes[(size_t)i * n + j] = q;
            double err = (wr[j] - (double)d[i] * (q - 8)) / ujj;
            for (int k = j + 1; k < n; k++)
                wr[k] -= err * u[(size_t)j * n + k];
        }
    }
    for (int i = 0; i < rows; i++)
        for (int b = 0; b < n / RT_QK; b++)
            rt__quant_pack_q4(out + (size_t)i * row_bytes + (size_t)b * RT_Q4_0_BYTES + 2,
                              codes + (size_t)i * n + (size_t)b * RT_QK);
    free(t->q4);
    t->q4 = out;
    out = NULL;
out:
    free(h);
    free(u);
    free(w);
    free(imp);
    free(d);
    free(codes);
    free(out);
    return r;
}

/* Importance for matrices whose group is not rescaled (kept as is). */
static int
set_imp(rt__qtensor *t, const site *st)
{
    if (t->dims[0] != st->n)
        return 0;
    free(t->imp);
    t->imp = malloc(st->n * sizeof(float));
    if (!t->imp)
        return -ENOMEM;
    for (uint32_t j = 0; j < st->n; j++)
        t->imp[j] = (float)st->ssq[j];
    return 0;
}

/* The wo group with grouped-query attention: wo column j reads v channel
 * (head(j) / kv_mul) * hs + j % hs; channels sharing a v row must share a
 * scale, so the statistics are pooled per v channel first. */
static int
awq_wo(calib *c, int l)
{
    rt__qmodel *m = c->m;
    int dim = m->dim, hs = dim / m->n_heads, kv_mul = m->n_heads / m->n_kv_heads;
    int kvd = dim / kv_mul;
    site *st = &c->sites[l * N_SITES + SITE_WO];
    if (kv_mul > 1) {
        /* Pool sabs per v channel, then spread back so every wo column of
         * one v channel sees the same statistic. */
        double *pool = calloc((size_t)kvd, sizeof(double));
        if (!pool)
            return -ENOMEM;
        for (int j = 0; j < dim; j++)
            pool[(j / hs / kv_mul) * hs + j % hs] += st->sabs[j];
        for (int j = 0; j < dim; j++)
            st->sabs[j] = pool[(j / hs / kv_mul) * hs + j % hs];
        free(pool);
    }
    /* Row i of wv (v channel i) is divided by the scale of any wo column
     * that reads it; with the pooling above they are all equal. */
    int *map = malloc((size_t)kvd * sizeof(int));
    if (!map)
        return -ENOMEM;
    for (int i = 0; i < kvd; i++)
        map[i] = (i / hs) * kv_mul * hs + i % hs;
    rt__qtensor *mats[1] = { c->lw[l].to };
    int r = awq_group(c, st, mats, 1, NULL, c->lw[l].wv, dim, map, kvd);
    free(map);
    return r;
}

static void
calib_free(calib *c)
{
    if (c->sites)
        for (int i = 0; i < c->m->n_layers * N_SITES; i++) {
            free(c->sites[i].sabs);
            free(c->sites[i].ssq);
            free(c->sites[i].keep);
            free(c->sites[i].xx);
            free(c->sites[i].s);
        }
    free(c->sites);
    free(c->lw);
    free(c->x);
    free(c->xb);
    free(c->xb2);
    free(c->q);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->logits);
    free(c->kc);
    free(c->vc);
}

static int
calib_alloc(calib *c)
{
    rt__qmodel *m = c->m;
    size_t dim = (size_t)m->dim, hid = (size_t)m->hidden;
    size_t kvd = dim * (size_t)m->n_kv_heads / (size_t)m->n_heads;
    size_t cache = (size_t)m->n_layers * (size_t)m->seq_len * kvd;
    c->x = malloc(dim * sizeof(float));
    c->xb = malloc(dim * sizeof(float));
    c->xb2 = malloc(dim * sizeof(float));
    c->q = malloc(dim * sizeof(float));
    c->att = malloc((size_t)m->seq_len * sizeof(float));
    c->hb = malloc(hid * sizeof(float));
    c->hb2 = malloc(hid * sizeof(float));
    c->logits = malloc((size_t)m->vocab * sizeof(float));
    c->kc = malloc(cache * sizeof(float));
    c->vc = malloc(cache * sizeof(float));
    if (!c->x || !c->xb || !c->xb2 || !c->q || !c->att || !c->hb || !c->hb2 || !c->logits ||
        !c->kc || !c->vc)
        return -ENOMEM;
    for (int l = 0; l < m->n_layers; l++) {
        for (int s = 0; s < N_SITES; s++) {
            site *st = &c->sites[l * N_SITES + s];
            st->n = (uint32_t)(s == SITE_DOWN ? hid : dim);
            st->sabs = calloc(st->n, sizeof(double));
            st->ssq = calloc(st->n, sizeof(double));
            st->keep = malloc((size_t)KEEP * st->n * sizeof(float));
            if (!st->sabs || !st->ssq || !st->keep)
                return -ENOMEM;
            if (st->n <= GPTQ_MAX_COLS && st->n % RT_QK == 0) {
                st->xx = calloc((size_t)st->n * st->n, sizeof(double));
                if (!st->xx)
                    return -ENOMEM;
            }
        }
    }
    return 0;
}

int
rt__quant_awq(rt__qmodel *m, uint64_t seed, uint32_t n_tokens)
{
    calib c = { .m = m };
    int r = -ENOMEM;
    c.lw = calloc((size_t)(m->n_layers > 0 ? m->n_layers : 1), sizeof(*c.lw));
    c.sites = calloc((size_t)(m->n_layers > 0 ? m->n_layers : 1) * N_SITES, sizeof(*c.sites));
    if (!c.lw || !c.sites)
        goto out;
    r = bind(&c);
    if (r < 0)
        goto out;
    r = calib_alloc(&c);
    if (r < 0)
        goto out;
    rt_sampler smp;
    r = rt_sampler_init(&smp, (uint32_t)m->vocab, 1.0f, 1.0f, seed, NULL, 0);
    if (r < 0)
        goto out;
    /* Sample n_tokens positions, restarting from BOS (id 1) at the end of the
     * context or when the model emits BOS/EOS. */
    uint32_t every = n_tokens / KEEP ? n_tokens / KEEP : 1;
    int token = RT_TOK_BOS_DEFAULT, pos = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        forward(&c, token, pos, i % every == 0);
        token = rt_sampler_sample(&smp, c.logits);
        pos++;
        if (pos == m->seq_len || token == RT_TOK_BOS_DEFAULT || token == RT_TOK_EOS_DEFAULT) {
            token = RT_TOK_BOS_DEFAULT;
            pos = 0;
        }
    }
    for (int l = 0; l < m->n_layers && r >= 0; l++) {
        layer_w *w = &c.lw[l];
        site *st = &c.sites[l * N_SITES];
        /* Groups whose predecessor is another matrix go first, so the
         * matrices of the norm-fed groups are measured as finally scaled. */
        r = awq_wo(&c, l);
        if (r >= 0 && m->hidden % RT_QK == 0) {
            rt__qtensor *mats[1] = { w->t2 };
            r = awq_group(&c, &st[SITE_DOWN], mats, 1, NULL, w->w3, m->dim, NULL, m->hidden);
        } else if (r >= 0) {
            r = set_imp(w->t2, &st[SITE_DOWN]);
        }
        if (r >= 0) {
            rt__qtensor *mats[3] = { w->tq, w->tk, w->tv };
            r = awq_group(&c, &st[SITE_ATTN], mats, 3, w->attn_norm, NULL, 0, NULL, 0);
        }
        if (r >= 0) {
            rt__qtensor *mats[2] = { w->t1, w->t3 };
            r = awq_group(&c, &st[SITE_FFN], mats, 2, w->ffn_norm, NULL, 0, NULL, 0);
        }
        /* Then every matrix is quantized with error compensation. */
        rt__qtensor *all[7] = { w->tq, w->tk, w->tv, w->to, w->t1, w->t3, w->t2 };
        int at[7] = { SITE_ATTN, SITE_ATTN, SITE_ATTN, SITE_WO, SITE_FFN, SITE_FFN, SITE_DOWN };
        for (int k = 0; k < 7 && r >= 0; k++)
            r = gptq(all[k], &st[at[k]]);
    }
out:
    calib_free(&c);
    return r;
}
