/* SPDX-License-Identifier: MIT */
/*
 * Quantizers and model conversion; see quantize.h. The block layouts are
 * GGUF's (runtime/types.h).
 */
#include "runtime/quantize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/layout.h"
#include "runtime/sampler.h"

/* A llama model held as F32 arrays while it is converted. */
typedef struct qtensor {
    char name[RT_TENSOR_NAME_MAX + 1];
    uint32_t n_dims;
    uint64_t dims[RT_TENSOR_DIMS_MAX]; /* dims[0] = row length */
    float *w;                          /* owned, prod(dims) floats */
    float *imp;                        /* owned or NULL: per-column importance [dims[0]] */
    uint8_t *q4;                       /* owned or NULL: Q4_0 blocks made by GPTQ */
} qtensor;

typedef struct qmodel {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
    float eps, rope_base;
    qtensor *t; /* in output order */
    size_t n_t;
} qmodel;

static qtensor *qmodel_find(qmodel *m, const char *name);
static int quant_awq(qmodel *m, uint64_t seed, uint32_t n_tokens);

/* ---- half precision ---- */

uint16_t
rt_quant_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t e = (x >> 23) & 0xFFu, m = x & 0x7FFFFFu;
    if (e == 0xFF) /* Inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7C00u | (m ? 0x200u | (m >> 13) : 0));
    int32_t he = (int32_t)e - 127 + 15;
    if (he >= 0x1F)
        return (uint16_t)(sign | 0x7C00u);
    if (he <= 0) {
        /* Subnormal half (or zero): shift the full mantissa, round to even. */
        if (he < -10)
            return (uint16_t)sign;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - he);
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1)))
            hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t h = sign | ((uint32_t)he << 10) | (m >> 13);
    uint32_t rem = m & 0x1FFFu;
    /* A carry out of the mantissa correctly bumps the exponent (to Inf at the top). */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)h;
}

float
rt_quant_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    uint32_t x;
    if (e == 0x1F) {
        x = sign | 0x7F800000u | (m << 13);
    } else if (e == 0) {
        if (m == 0) {
            x = sign;
        } else {
            /* Subnormal: value m * 2^-24. */
            float f = ldexpf((float)m, -24);
            return sign ? -f : f;
        }
    } else {
        x = sign | ((e + 127 - 15) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- row quantizers ---- */

static void
put_d(uint8_t *p, float d)
{
    uint16_t h = rt_quant_f16(d);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static float
get_d(const uint8_t *p)
{
    return rt_quant_f32((uint16_t)(p[0] | p[1] << 8));
}

void
rt_quant_row_q8_0(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q8_0_BYTES) {
        float amax = 0.0f;
        for (int j = 0; j < RT_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_d(out, d);
        for (int j = 0; j < RT_QK; j++) {
            /* |x * id| <= 127 for finite x; the clamp keeps a NaN or Inf
             * (never in a loaded model: rt_quant_model refuses them) from
             * reaching an undefined conversion. */
            float v = roundf(x[j] * id);
            int q = v >= -127.0f && v <= 127.0f ? (int)v : v > 0.0f ? 127 : v < 0.0f ? -127 : 0;
            out[2 + j] = (uint8_t)(int8_t)q;
        }
    }
}

/* Packs 32 codes 0..15: byte j holds q[j] (low nibble) and q[j+16] (high). */
static void
pack_q4(uint8_t *qs, const uint8_t *q)
{
    for (int j = 0; j < RT_QK / 2; j++)
        qs[j] = (uint8_t)(q[j] | q[j + RT_QK / 2] << 4);
}

static uint8_t
code4(float v)
{
    /* v = x / d + 8, rounded half up as the reference quantizer does. */
    float c = floorf(v + 0.5f);
    if (!(c >= 0.0f)) /* also NaN */
        return 0;
    return (uint8_t)(c > 15.0f ? 15 : c);
}

void
rt_quant_row_q4_0(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q4_0_BYTES) {
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < RT_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_d(out, d);
        uint8_t q[RT_QK];
        for (int j = 0; j < RT_QK; j++)
            q[j] = code4(x[j] * id + 8.0f);
        pack_q4(out + 2, q);
    }
}

/* Weighted error of block x quantized with scale d (as stored in fp16);
 * writes the codes to q. */
static double
q4_try(const float *x, const float *w, float d, uint8_t *q)
{
    d = rt_quant_f32(rt_quant_f16(d));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    double err = 0.0;
    for (int j = 0; j < RT_QK; j++) {
        q[j] = code4(x[j] * id + 8.0f);
        double e = x[j] - d * (float)(q[j] - 8);
        err += (w ? w[j] : 1.0) * e * e;
    }
    return err;
}

void
rt_quant_row_q4_0_search(const float *x, const float *imp, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / RT_QK; b++, x += RT_QK, out += RT_Q4_0_BYTES) {
        const float *w = imp ? imp + b * RT_QK : NULL;
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < RT_QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        uint8_t q[RT_QK], best_q[RT_QK];
        float best_d = m / -8.0f;
        double best = q4_try(x, w, best_d, best_q);
        if (amax > 0.0f) {
            /* Candidate grids: the extreme weight at -8 +- t/4 (or at +7
             * side), then a weighted least-squares refit of d for the codes
             * each produced. */
            for (int t = -8; t <= 16; t++) {
                for (int side = 0; side < 2; side++) {
                    float k = side ? 7.0f + 0.125f * (float)t : -8.0f - 0.125f * (float)t;
                    if (fabsf(k) < 2.0f)
                        continue;
                    float d = m / k;
                    double e = q4_try(x, w, d, q);
                    double sxq = 0.0, sqq = 0.0;
                    for (int j = 0; j < RT_QK; j++) {
                        double wj = w ? w[j] : 1.0, c = (double)q[j] - 8.0;
                        sxq += wj * x[j] * c;
                        sqq += wj * c * c;
                    }
                    if (e < best) {
                        best = e;
                        best_d = d;
                        memcpy(best_q, q, sizeof(q));
                    }
                    if (sqq > 0.0) {
                        float d2 = (float)(sxq / sqq);
                        double e2 = q4_try(x, w, d2, q);
                        if (e2 < best) {
                            best = e2;
                            best_d = d2;
                            memcpy(best_q, q, sizeof(q));
                        }
                    }
                }
            }
        }
        put_d(out, best_d);
        pack_q4(out + 2, best_q);
    }
}

int
rt_quant_dequant_row(rt_type t, const void *in, float *out, size_t n)
{
    const uint8_t *p = in;
    switch (t) {
    case RT_TYPE_F32:
        memcpy(out, in, n * sizeof(float));
        return 0;
    case RT_TYPE_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = rt_quant_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case RT_TYPE_Q8_0:
        if (n % RT_QK)
            return -EINVAL;
        for (size_t b = 0; b < n / RT_QK; b++, p += RT_Q8_0_BYTES) {
            float d = get_d(p);
            for (int j = 0; j < RT_QK; j++)
                out[b * RT_QK + j] = d * (float)(int8_t)p[2 + j];
        }
        return 0;
    case RT_TYPE_Q4_0:
        if (n % RT_QK)
            return -EINVAL;
        for (size_t b = 0; b < n / RT_QK; b++, p += RT_Q4_0_BYTES) {
            float d = get_d(p);
            for (int j = 0; j < RT_QK / 2; j++) {
                out[b * RT_QK + j] = d * (float)((p[2 + j] & 0x0F) - 8);
                out[b * RT_QK + j + RT_QK / 2] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        return 0;
    default:
        return -EINVAL;
    }
}

/* ---- model conversion ---- */

struct rt_quant_result {
    rt_gguf_writer *w;
    void **bufs; /* tensor data the writer borrows */
    size_t n_bufs;
};

rt_gguf_writer *
rt_quant_result_writer(rt_quant_result *r)
{
    return r->w;
}

void
rt_quant_result_free(rt_quant_result *r)
{
    if (!r)
        return;
    rt_gguf_writer_free(r->w);
    for (size_t i = 0; i < r->n_bufs; i++)
        free(r->bufs[i]);
    free(r->bufs);
    free(r);
}

static qtensor *
qmodel_find(qmodel *m, const char *name)
{
    for (size_t i = 0; i < m->n_t; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return &m->t[i];
    return NULL;
}

static void
qmodel_free(qmodel *m)
{
    for (size_t i = 0; i < m->n_t; i++) {
        free(m->t[i].w);
        free(m->t[i].imp);
        free(m->t[i].q4);
    }
    free(m->t);
}

static uint64_t
n_elems(const qtensor *t)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < t->n_dims; i++)
        n *= t->dims[i];
    return n;
}

/* Appends a tensor read from the input file (F32 or F16) as floats. */
static int
qmodel_add(qmodel *m, const rt_tensor_info *ti, const uint8_t *file, size_t len)
{
    if (ti->type != RT_TYPE_F32 && ti->type != RT_TYPE_F16)
        return -EBADMSG;
    if (ti->offset > len || ti->size > len - ti->offset)
        return -EBADMSG;
    qtensor *t = realloc(m->t, (m->n_t + 1) * sizeof(*t));
    if (!t)
        return -ENOMEM;
    m->t = t;
    t = &m->t[m->n_t];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, ti->name, sizeof(t->name));
    t->n_dims = ti->n_dims;
    memcpy(t->dims, ti->dims, sizeof(t->dims));
    uint64_t n = n_elems(t);
    if (n > SIZE_MAX / sizeof(float))
        return -ENOMEM;
    t->w = malloc((size_t)n * sizeof(float) + 1);
    if (!t->w)
        return -ENOMEM;
    m->n_t++;
    rt_quant_dequant_row(ti->type, file + ti->offset, t->w, (size_t)n);
    /* NaN or Inf weights make every scale meaningless: the file is broken. */
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(t->w[i]))
            return -EBADMSG;
    return 0;
}

static int
gguf_i32(const rt_gguf *g, const char *key, int32_t def, int32_t *ret)
{
    int r = rt_gguf_get_i32(g, key, ret);
    if (r == -ENOENT && def >= 0) {
        *ret = def;
        return 0;
    }
    return r < 0 ? -EBADMSG : 0;
}

static int
load_gguf_params(qmodel *m, const rt_gguf *g)
{
    const char *arch;
    uint64_t an;
    if (rt_gguf_get_str(g, "general.architecture", &arch, &an) < 0 || an != 5 ||
        memcmp(arch, "llama", 5) != 0)
        return -EBADMSG;
    int r = gguf_i32(g, "llama.embedding_length", -1, &m->dim);
    if (r >= 0)
        r = gguf_i32(g, "llama.feed_forward_length", -1, &m->hidden);
    if (r >= 0)
        r = gguf_i32(g, "llama.block_count", -1, &m->n_layers);
    if (r >= 0)
        r = gguf_i32(g, "llama.attention.head_count", -1, &m->n_heads);
    if (r >= 0)
        r = gguf_i32(g, "llama.attention.head_count_kv", m->n_heads, &m->n_kv_heads);
    if (r >= 0)
        r = gguf_i32(g, "llama.context_length", -1, &m->seq_len);
    if (r < 0)
        return r;
    m->eps = 1e-5f;
    m->rope_base = 10000.0f;
    float f;
    if (rt_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) == 0)
        m->eps = f;
    if (rt_gguf_get_f32(g, "llama.rope.freq_base", &f) == 0)
        m->rope_base = f;
    return 0;
}

/* Sort key of a tensor: llama.cpp's order (token_embd, output_norm,
 * output, then block by block), unknown names last in input order. */
static long
order_key(const qtensor *t, size_t input_index)
{
    static const char *const top[] = { "token_embd.weight", "output_norm.weight", "output.weight",
                                       NULL };
    static const char *const blk[] = { "attn_norm.weight",   "attn_q.weight",
                                       "attn_k.weight",      "attn_v.weight",
                                       "attn_output.weight", "ffn_norm.weight",
                                       "ffn_gate.weight",    "ffn_down.weight",
                                       "ffn_up.weight",      NULL };
    for (long i = 0; top[i]; i++)
        if (strcmp(t->name, top[i]) == 0)
            return i;
    int layer, n = 0;
    if (sscanf(t->name, "blk.%d.%n", &layer, &n) == 1 && n > 0 && layer >= 0 && layer < (1 << 16))
        for (long i = 0; blk[i]; i++)
            if (strcmp(t->name + n, blk[i]) == 0)
                return 16 + (long)layer * 16 + i;
    return (1L << 24) + (long)input_index;
}

/* Insertion sort by order_key (tensor counts are small). */
static void
sort_tensors(qmodel *m)
{
    long *key = malloc(m->n_t * sizeof(long) + 1);
    if (!key)
        return; /* keep the input order; still a valid file */
    for (size_t i = 0; i < m->n_t; i++)
        key[i] = order_key(&m->t[i], i);
    for (size_t i = 1; i < m->n_t; i++) {
        qtensor t = m->t[i];
        long k = key[i];
        size_t j = i;
        for (; j > 0 && key[j - 1] > k; j--) {
            m->t[j] = m->t[j - 1];
            key[j] = key[j - 1];
        }
        m->t[j] = t;
        key[j] = k;
    }
    free(key);
}

static int
load_model(qmodel *m, const rt_layout *l, const uint8_t *buf, size_t len)
{
    if (l->format == RT_FORMAT_LLAMA2C) {
        const rt_llama2c *c = &l->u.l2c;
        m->dim = c->dim;
        m->hidden = c->hidden_dim;
        m->n_layers = c->n_layers;
        m->n_heads = c->n_heads;
        m->n_kv_heads = c->n_kv_heads;
        m->seq_len = c->seq_len;
        m->eps = 1e-5f;
        m->rope_base = 10000.0f;
    } else {
        int r = load_gguf_params(m, &l->u.gguf);
        if (r < 0)
            return r;
    }
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info ti;
    int r;
    while ((r = rt_layout_next(l, &it, &ti)) > 0) {
        if (strncmp(ti.name, "freq_cis", 8) == 0)
            continue; /* llama2.c's precomputed RoPE tables: not model weights */
        r = qmodel_add(m, &ti, buf, len);
        if (r < 0)
            return r;
    }
    if (r < 0)
        return r;
    sort_tensors(m);
    qtensor *e = qmodel_find(m, "token_embd.weight");
    if (!e || e->n_dims != 2 || e->dims[0] != (uint64_t)m->dim || e->dims[1] > INT32_MAX)
        return -EBADMSG;
    m->vocab = (int32_t)e->dims[1];
    return 0;
}

/* Output type of tensor t for target type. */
static rt_type
pick_type(const qtensor *t, rt_type target)
{
    if (t->n_dims < 2 || target == RT_TYPE_F32)
        return RT_TYPE_F32;
    if (target == RT_TYPE_F16)
        return RT_TYPE_F16;
    if (t->dims[0] % RT_QK)
        return RT_TYPE_F16;
    if (target == RT_TYPE_Q4_0 && strcmp(t->name, "output.weight") == 0)
        return RT_TYPE_Q8_0;
    return target;
}

static int
keep_buf(rt_quant_result *res, void *p)
{
    void **b = realloc(res->bufs, (res->n_bufs + 1) * sizeof(*b));
    if (!b) {
        free(p);
        return -ENOMEM;
    }
    res->bufs = b;
    res->bufs[res->n_bufs++] = p;
    return 0;
}

static int
write_tensor(rt_quant_result *res, const qtensor *t, rt_type type, rt_quant_method method,
             rt_quant_report *rep, double *err2, double *cnt)
{
    uint64_t n = n_elems(t), size;
    int r = rt_type_size(type, n, t->dims[0], &size);
    if (r < 0)
        return -EBADMSG;
    uint8_t *out = malloc(size ? (size_t)size : 1);
    if (!out)
        return -ENOMEM;
    r = keep_buf(res, out);
    if (r < 0)
        return r;
    size_t row = (size_t)t->dims[0], rows = (size_t)(n / row);
    size_t row_bytes = (size_t)(size / rows);
    float *deq = malloc(row * sizeof(float));
    if (!deq)
        return -ENOMEM;
    for (size_t i = 0; i < rows; i++) {
        const float *x = t->w + i * row;
        uint8_t *o = out + i * row_bytes;
        switch (type) {
        case RT_TYPE_F32:
            memcpy(o, x, row * sizeof(float));
            break;
        case RT_TYPE_F16:
            for (size_t j = 0; j < row; j++) {
                uint16_t h = rt_quant_f16(x[j]);
                o[2 * j] = (uint8_t)h;
                o[2 * j + 1] = (uint8_t)(h >> 8);
            }
            break;
        case RT_TYPE_Q8_0:
            rt_quant_row_q8_0(x, o, row);
            break;
        default:
            if (method == RT_QUANT_RTN)
                rt_quant_row_q4_0(x, o, row);
            else if (t->q4)
                memcpy(o, t->q4 + i * row_bytes, row_bytes);
            else
                rt_quant_row_q4_0_search(x, t->imp, o, row);
            break;
        }
        if (type == RT_TYPE_Q8_0 || type == RT_TYPE_Q4_0) {
            rt_quant_dequant_row(type, o, deq, row);
            for (size_t j = 0; j < row; j++)
                *err2 += (double)(deq[j] - x[j]) * (deq[j] - x[j]);
            *cnt += (double)row;
        }
    }
    free(deq);
    rep->n_tensors++;
    rep->bytes_out += size;
    if (type == RT_TYPE_Q8_0 || type == RT_TYPE_Q4_0)
        rep->n_quantized++;
    else if (type == RT_TYPE_F16 && t->n_dims >= 2)
        rep->n_f16++;
    return rt_gguf_writer_add_tensor(res->w, t->name, type, t->n_dims, t->dims, out, size);
}

static const char *const skip_keys[] = {
    "general.alignment", "general.file_type", "general.quantization_version", "general.name", NULL,
};

static int
copy_gguf_meta(rt_gguf_writer *w, const rt_gguf *g)
{
    uint64_t cur = 0, kl;
    const char *key;
    rt_gguf_value v;
    int r;
    char name[256];
    while ((r = rt_gguf_kv_next(g, &cur, &key, &kl, &v)) > 0) {
        if (kl >= sizeof(name))
            continue; /* no llama key is that long; drop it rather than fail */
        memcpy(name, key, (size_t)kl);
        name[kl] = '\0';
        bool skip = false;
        for (int i = 0; skip_keys[i]; i++)
            skip = skip || strcmp(name, skip_keys[i]) == 0;
        if (skip)
            continue;
        r = rt_gguf_writer_add_value(w, name, &v);
        if (r < 0)
            return r;
    }
    return r;
}

int
rt_quant_add_vocab(rt_gguf_writer *w, const rt_tokenizer *tok)
{
    uint32_t n = rt_tokenizer_n_vocab(tok);
    char **strs = calloc(n, sizeof(*strs));
    size_t *lens = calloc(n, sizeof(*lens));
    float *scores = calloc(n, sizeof(*scores));
    int32_t *types = calloc(n, sizeof(*types));
    int r = -ENOMEM;
    if (!strs || !lens || !scores || !types)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        const char *p;
        size_t pl;
        rt_tok_type ty;
        rt_tokenizer_piece(tok, (int32_t)i, &p, &pl, &scores[i], &ty);
        types[i] = ty == RT_TOK_TYPE_UNDEFINED ? RT_TOK_TYPE_NORMAL : (int32_t)ty;
        if ((int32_t)i == rt_tokenizer_bos(tok)) {
            p = "<s>";
            pl = 3;
        } else if ((int32_t)i == rt_tokenizer_eos(tok)) {
            p = "</s>";
            pl = 4;
        }
        /* " " becomes SentencePiece's "▁" (3 bytes). */
        strs[i] = malloc(3 * pl + 1);
        if (!strs[i])
            goto out;
        size_t k = 0;
        for (size_t j = 0; j < pl; j++) {
            if (p[j] == ' ' && ty != RT_TOK_TYPE_BYTE) {
                memcpy(strs[i] + k, "\xE2\x96\x81", 3);
                k += 3;
            } else {
                strs[i][k++] = p[j];
            }
        }
        lens[i] = k;
    }
    r = rt_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5);
    if (r >= 0)
        r = rt_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, lens,
                                       n);
    if (r >= 0)
        r = rt_gguf_writer_add_arr(w, "tokenizer.ggml.scores", RT_GGUF_F32, scores, n);
    if (r >= 0)
        r = rt_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", RT_GGUF_I32, types, n);
    if (r >= 0)
        r = rt_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id",
                                   (uint32_t)rt_tokenizer_bos(tok));
    if (r >= 0 && rt_tokenizer_eos(tok) >= 0)
        r = rt_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id",
                                   (uint32_t)rt_tokenizer_eos(tok));
    if (r >= 0)
        r = rt_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", RT_TOK_UNK_DEFAULT);
out:
    if (strs)
        for (uint32_t i = 0; i < n; i++)
            free(strs[i]);
    free(strs);
    free(lens);
    free(scores);
    free(types);
    return r;
}

static int
write_meta(rt_gguf_writer *w, const qmodel *m, const rt_layout *l, const rt_quant_opts *o)
{
    const char *name = o->name;
    uint64_t nl = name ? strlen(name) : 0;
    if (!name && l->format == RT_FORMAT_GGUF &&
        rt_gguf_get_str(&l->u.gguf, "general.name", &name, &nl) < 0)
        name = NULL;
    if (!name) {
        name = "llama";
        nl = 5;
    }
    int r;
    if (l->format == RT_FORMAT_GGUF) {
        r = rt_gguf_writer_add_str(w, "general.name", name, (size_t)nl);
        if (r >= 0)
            r = copy_gguf_meta(w, &l->u.gguf);
    } else {
        r = rt_gguf_writer_add_str(w, "general.architecture", "llama", 5);
        if (r >= 0)
            r = rt_gguf_writer_add_str(w, "general.name", name, (size_t)nl);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)m->seq_len);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)m->dim);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)m->hidden);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)m->n_layers);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)m->n_heads);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)m->n_kv_heads);
        if (r >= 0)
            r = rt_gguf_writer_add_u32(w, "llama.rope.dimension_count",
                                       (uint32_t)(m->dim / m->n_heads));
        if (r >= 0)
            r = rt_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", m->eps);
        if (r >= 0 && o->tok)
            r = rt_quant_add_vocab(w, o->tok);
    }
    /* general.file_type: 0 all F32, 1 mostly F16, 2 mostly Q4_0, 7 mostly Q8_0. */
    uint32_t ft = o->type == RT_TYPE_F32    ? 0
                  : o->type == RT_TYPE_F16  ? 1
                  : o->type == RT_TYPE_Q4_0 ? 2
                                            : 7;
    if (r >= 0)
        r = rt_gguf_writer_add_u32(w, "general.file_type", ft);
    if (r >= 0 && (o->type == RT_TYPE_Q4_0 || o->type == RT_TYPE_Q8_0))
        r = rt_gguf_writer_add_u32(w, "general.quantization_version", 2);
    return r;
}

/* For Q4_0 the classifier is written as Q8_0; a shared one needs its own
 * output.weight, placed right after the embeddings' neighbours as
 * llama.cpp orders them (token_embd, output_norm, output). */
static int
add_output_copy(qmodel *m)
{
    if (qmodel_find(m, "output.weight"))
        return 0;
    qtensor *e = qmodel_find(m, "token_embd.weight");
    size_t n = (size_t)n_elems(e);
    float *w = malloc(n * sizeof(float));
    if (!w)
        return -ENOMEM;
    memcpy(w, e->w, n * sizeof(float));
    qtensor *t = realloc(m->t, (m->n_t + 1) * sizeof(*t));
    if (!t) {
        free(w);
        return -ENOMEM;
    }
    m->t = t;
    size_t pos = 0;
    while (pos < m->n_t && (strcmp(m->t[pos].name, "token_embd.weight") == 0 ||
                            strcmp(m->t[pos].name, "output_norm.weight") == 0))
        pos++;
    memmove(&m->t[pos + 1], &m->t[pos], (m->n_t - pos) * sizeof(*t));
    t = &m->t[pos];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, "output.weight", sizeof("output.weight"));
    t->n_dims = 2;
    t->dims[0] = (uint64_t)m->dim;
    t->dims[1] = (uint64_t)m->vocab;
    t->dims[2] = t->dims[3] = 1;
    t->w = w;
    m->n_t++;
    return 0;
}

int
rt_quant_model(const void *buf, size_t len, const rt_quant_opts *opts, rt_quant_result **ret,
               rt_quant_report *ret_report)
{
    if (!buf || !opts || !ret || opts->method >= _RT_QUANT_METHOD_MAX ||
        (opts->type != RT_TYPE_Q8_0 && opts->type != RT_TYPE_Q4_0 && opts->type != RT_TYPE_F16 &&
         opts->type != RT_TYPE_F32))
        return -EINVAL;
    rt_layout l;
    int r = rt_layout_parse(buf, len, len, &l, NULL);
    if (r < 0)
        return r == -EAGAIN ? -EBADMSG : r;
    qmodel m = { 0 };
    rt_quant_result *res = calloc(1, sizeof(*res));
    rt_quant_report rep = { .bytes_in = len };
    if (!res) {
        r = -ENOMEM;
        goto out;
    }
    r = load_model(&m, &l, buf, len);
    if (r < 0)
        goto out;
    if (opts->type == RT_TYPE_Q4_0) {
        r = add_output_copy(&m);
        if (r < 0)
            goto out;
    }
    if (opts->type == RT_TYPE_Q4_0 && opts->method == RT_QUANT_AWQ) {
        r = quant_awq(&m, opts->seed,
                      opts->calib_tokens ? opts->calib_tokens : RT_QUANT_CALIB_TOKENS);
        if (r < 0)
            goto out;
    }
    r = rt_gguf_writer_new(0, &res->w);
    if (r < 0)
        goto out;
    r = write_meta(res->w, &m, &l, opts);
    if (r < 0)
        goto out;
    double err2 = 0.0, cnt = 0.0;
    for (size_t i = 0; i < m.n_t && r >= 0; i++)
        r = write_tensor(res, &m.t[i], pick_type(&m.t[i], opts->type), opts->method, &rep, &err2,
                         &cnt);
    if (r < 0)
        goto out;
    rep.weight_rmse = cnt > 0 ? sqrt(err2 / cnt) : 0.0;
    if (ret_report)
        *ret_report = rep;
    *ret = res;
    res = NULL;
out:
    qmodel_free(&m);
    rt_quant_result_free(res);
    return r;
}

/* ---- activation-aware Q4 ---- */

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
    qtensor *tq, *tk, *tv, *to, *t1, *t2, *t3;
} layer_w;

typedef struct calib {
    qmodel *m;
    layer_w *lw;
    float *embd, *out_norm, *out;
    site *sites; /* [n_layers][N_SITES] */
    /* run state */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *logits;
    float *kc, *vc; /* [n_layers][seq_len][kv_dim] */
} calib;

static int
need(qmodel *m, const char *name, int layer, uint64_t d0, uint64_t d1, qtensor **ret)
{
    char full[RT_TENSOR_NAME_MAX + 1];
    if (layer >= 0)
        snprintf(full, sizeof(full), "blk.%d.%s", layer, name);
    else
        snprintf(full, sizeof(full), "%s", name);
    qtensor *t = qmodel_find(m, full);
    if (!t || t->dims[0] != d0 || (d1 && (t->n_dims != 2 || t->dims[1] != d1)) ||
        (!d1 && t->n_dims != 1))
        return -EBADMSG;
    *ret = t;
    return 0;
}

static int
bind(calib *c)
{
    qmodel *m = c->m;
    if (m->dim <= 0 || m->n_heads <= 0 || m->n_kv_heads <= 0 || m->dim % m->n_heads ||
        m->n_heads % m->n_kv_heads || (m->dim / m->n_heads) % 2 || m->seq_len <= 0 ||
        m->hidden <= 0 || m->n_layers <= 0)
        return -EBADMSG;
    uint64_t dim = (uint64_t)m->dim, hid = (uint64_t)m->hidden;
    uint64_t kvd = dim * (uint64_t)m->n_kv_heads / (uint64_t)m->n_heads;
    qtensor *t;
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
    qmodel *m = c->m;
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
awq_group(calib *c, const site *st, qtensor **mats, int n_mats, float *pred_vec, float *pred_rows,
          int pred_cols, const int *map, int n_pred_rows)
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
gptq(qtensor *t, const site *st)
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
                d[i] = get_d(q);
                memcpy(out + (size_t)i * row_bytes + (size_t)j / RT_QK * RT_Q4_0_BYTES, q, 2);
            }
        }
        double ujj = u[(size_t)j * n + j];
        for (int i = 0; i < rows; i++) {
            double *wr = w + (size_t)i * n;
            float id = d[i] != 0.0f ? 1.0f / d[i] : 0.0f;
            uint8_t q = code4((float)wr[j] * id + 8.0f);
            codes[(size_t)i * n + j] = q;
            double err = (wr[j] - (double)d[i] * (q - 8)) / ujj;
            for (int k = j + 1; k < n; k++)
                wr[k] -= err * u[(size_t)j * n + k];
        }
    }
    for (int i = 0; i < rows; i++)
        for (int b = 0; b < n / RT_QK; b++)
            pack_q4(out + (size_t)i * row_bytes + (size_t)b * RT_Q4_0_BYTES + 2,
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
set_imp(qtensor *t, const site *st)
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
    qmodel *m = c->m;
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
    qtensor *mats[1] = { c->lw[l].to };
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
    qmodel *m = c->m;
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

static int
quant_awq(qmodel *m, uint64_t seed, uint32_t n_tokens)
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
            qtensor *mats[1] = { w->t2 };
            r = awq_group(&c, &st[SITE_DOWN], mats, 1, NULL, w->w3, m->dim, NULL, m->hidden);
        } else if (r >= 0) {
            r = set_imp(w->t2, &st[SITE_DOWN]);
        }
        if (r >= 0) {
            qtensor *mats[3] = { w->tq, w->tk, w->tv };
            r = awq_group(&c, &st[SITE_ATTN], mats, 3, w->attn_norm, NULL, 0, NULL, 0);
        }
        if (r >= 0) {
            qtensor *mats[2] = { w->t1, w->t3 };
            r = awq_group(&c, &st[SITE_FFN], mats, 2, w->ffn_norm, NULL, 0, NULL, 0);
        }
        /* Then every matrix is quantized with error compensation. */
        qtensor *all[7] = { w->tq, w->tk, w->tv, w->to, w->t1, w->t3, w->t2 };
        int at[7] = { SITE_ATTN, SITE_ATTN, SITE_ATTN, SITE_WO, SITE_FFN, SITE_FFN, SITE_DOWN };
        for (int k = 0; k < 7 && r >= 0; k++)
            r = gptq(all[k], &st[at[k]]);
    }
out:
    calib_free(&c);
    return r;
}
