/* SPDX-License-Identifier: MIT */
/*
 * Whole-model conversion to GGUF (rt_quant_model; see quantize.h): reads a
 * llama2.c or GGUF model into F32 arrays (rt__qmodel), optionally runs the
 * activation-aware pass (quantize-awq.c), picks each tensor's type (the
 * K-quant mixtures follow llama.cpp's llama-quantize, see pick_type) and
 * hands every tensor, quantized, to a GGUF writer with the metadata and
 * vocabulary.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/layout.h"
#include "runtime/quantize.h"

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

rt__qtensor *
rt__qmodel_find(rt__qmodel *m, const char *name)
{
    for (size_t i = 0; i < m->n_t; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return &m->t[i];
    return NULL;
}

static void
qmodel_free(rt__qmodel *m)
{
    for (size_t i = 0; i < m->n_t; i++) {
        free(m->t[i].w);
        free(m->t[i].imp);
        free(m->t[i].q4);
    }
    free(m->t);
}

/* Elements of a tensor (the layout checked that the product fits). */
static uint64_t
prod_dims(uint32_t n_dims, const uint64_t *dims)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++)
        n *= dims[i];
    return n;
}

static uint64_t
n_elems(const rt__qtensor *t)
{
    return prod_dims(t->n_dims, t->dims);
}

/* Types an input tensor may have: those rt_quant_dequant_row decodes. */
static bool
readable_type(rt_type t)
{
    return t == RT_TYPE_F32 || t == RT_TYPE_F16 || t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0 ||
           rt__is_kquant(t);
}

/* Appends a tensor read from the input file as floats (a quantized one is
 * decoded; ret_requant is then set). */
static int
qmodel_add(rt__qmodel *m, const rt_tensor_info *ti, const uint8_t *file, size_t len,
           bool *ret_requant)
{
    if (!readable_type(ti->type))
        return -EBADMSG;
    if (ti->offset > len || ti->size > len - ti->offset)
        return -EBADMSG;
    uint64_t size;
    /* The layout checked this already; the decoder relies on it. */
    if (rt_type_size(ti->type, prod_dims(ti->n_dims, ti->dims), ti->dims[0], &size) < 0 ||
        size != ti->size)
        return -EBADMSG;
    if (ti->type != RT_TYPE_F32 && ti->type != RT_TYPE_F16)
        *ret_requant = true;
    /* A name given twice: refused, as the engine does (rt_gguf_tensor_find). */
    if (rt__qmodel_find(m, ti->name))
        return -EBADMSG;
    rt__qtensor *t = realloc(m->t, (m->n_t + 1) * sizeof(*t));
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

/* "{arch}.{suffix}" into k (keys are short: a fixed buffer). */
static const char *
arch_key(char k[static 96], const char *arch, const char *suffix)
{
    snprintf(k, 96, "%s.%s", arch, suffix);
    return k;
}

/* Hyper-parameters of a GGUF input of any architecture the engine runs
 * (they size the activation-aware pass and the K-quant mixtures). */
static int
load_gguf_params(rt__qmodel *m, const rt_gguf *g)
{
    const char *an;
    uint64_t anl;
    if (rt_gguf_get_str(g, "general.architecture", &an, &anl) < 0)
        return -EBADMSG;
    const char *arch = NULL;
    for (int a = 0; a < _RT_ARCH_MAX && !arch; a++)
        if (strlen(rt_arch_name((rt_arch)a)) == anl &&
            memcmp(rt_arch_name((rt_arch)a), an, anl) == 0) {
            arch = rt_arch_name((rt_arch)a);
            m->llama = a == RT_ARCH_LLAMA;
        }
    if (!arch)
        return -EBADMSG;
    char k[96];
    int r = gguf_i32(g, arch_key(k, arch, "embedding_length"), -1, &m->dim);
    if (r >= 0)
        r = gguf_i32(g, arch_key(k, arch, "feed_forward_length"), -1, &m->hidden);
    if (r >= 0)
        r = gguf_i32(g, arch_key(k, arch, "block_count"), -1, &m->n_layers);
    if (r >= 0)
        r = gguf_i32(g, arch_key(k, arch, "attention.head_count"), -1, &m->n_heads);
    if (r >= 0)
        r = gguf_i32(g, arch_key(k, arch, "attention.head_count_kv"), m->n_heads, &m->n_kv_heads);
    if (r >= 0)
        r = gguf_i32(g, arch_key(k, arch, "context_length"), -1, &m->seq_len);
    if (r < 0)
        return r;
    m->eps = 1e-5f;
    m->rope_base = 10000.0f;
    float f;
    if (rt_gguf_get_f32(g, arch_key(k, arch, "attention.layer_norm_rms_epsilon"), &f) == 0)
        m->eps = f;
    if (rt_gguf_get_f32(g, arch_key(k, arch, "rope.freq_base"), &f) == 0)
        m->rope_base = f;
    return 0;
}

/* Sort key of a tensor: llama.cpp's order (token_embd, output_norm,
 * output, then block by block), unknown names last in input order. */
static long
order_key(const rt__qtensor *t, size_t input_index)
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
sort_tensors(rt__qmodel *m)
{
    long *key = malloc(m->n_t * sizeof(long) + 1);
    if (!key)
        return; /* keep the input order; still a valid file */
    for (size_t i = 0; i < m->n_t; i++)
        key[i] = order_key(&m->t[i], i);
    for (size_t i = 1; i < m->n_t; i++) {
        rt__qtensor t = m->t[i];
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

/* need_llama: refuse other architectures (-ENOTSUP) before reading any
 * tensor. */
static int
load_model(rt__qmodel *m, const rt_layout *l, const uint8_t *buf, size_t len, bool need_llama,
           bool *ret_requant)
{
    if (l->format == RT_FORMAT_LLAMA2C) {
        m->llama = true;
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
        if (need_llama && !m->llama)
            return -ENOTSUP;
    }
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info ti;
    int r;
    while ((r = rt_layout_next(l, &it, &ti)) > 0) {
        if (strncmp(ti.name, "freq_cis", 8) == 0)
            continue; /* llama2.c's precomputed RoPE tables: not model weights */
        r = qmodel_add(m, &ti, buf, len, ret_requant);
        if (r < 0)
            return r;
    }
    if (r < 0)
        return r;
    /* llama2.c's order is not llama.cpp's; a GGUF keeps its own order, as
     * llama-quantize keeps it. */
    if (l->format == RT_FORMAT_LLAMA2C)
        sort_tensors(m);
    rt__qtensor *e = rt__qmodel_find(m, "token_embd.weight");
    if (!e || e->n_dims != 2 || e->dims[0] != (uint64_t)m->dim || e->dims[1] > INT32_MAX)
        return -EBADMSG;
    m->vocab = (int32_t)e->dims[1];
    return 0;
}

static bool
is_quant(rt_type t)
{
    return t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0 || rt__is_kquant(t);
}

/* llama.cpp's layers that get more bits in a _M mixture: the first and
 * last eighth of the layers and every third one between. */
static bool
more_bits(int layer, int n_layers)
{
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

static bool
has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Output type of tensor t when the target is `target`. Vectors (norms,
 * biases) stay F32. The K-quant targets are llama-quantize's Q4_K_M, Q5_K_M
 * and Q6_K mixtures without an importance matrix, so files made here and
 * there look alike to readers:
 *   the output matrix (token_embd when it doubles as the output): Q6_K;
 *   attn_v and ffn_down in the layers more_bits() picks: Q6_K (Q4_K_M,
 *   Q5_K_M);
 *   fused attn_qkv (phi3): Q5_K for Q4_K_M, Q6_K for Q5_K_M;
 *   every other matrix: the target.
 * A row length that is not a multiple of 256 cannot hold a K-quant: such a
 * matrix becomes Q8_0 (llama.cpp picks Q5_0/Q5_1/Q8_0; nvx computes on
 * Q8_0, and it loses less), or F16 when not a multiple of 32 either. */
static rt_type
pick_type(const rt__qmodel *m, const rt__qtensor *t, rt_type target, bool has_output)
{
    if (t->n_dims < 2 || target == RT_TYPE_F32)
        return RT_TYPE_F32;
    if (target == RT_TYPE_F16)
        return RT_TYPE_F16;
    if (t->dims[0] % RT_QK)
        return RT_TYPE_F16;
    bool output = strcmp(t->name, "output.weight") == 0 ||
                  (!has_output && strcmp(t->name, "token_embd.weight") == 0);
    if (target == RT_TYPE_Q4_0 && strcmp(t->name, "output.weight") == 0)
        return RT_TYPE_Q8_0;
    if (!rt__is_kquant(target))
        return target;
    rt_type k = target;
    int layer = -1, n = 0;
    if (sscanf(t->name, "blk.%d.%n", &layer, &n) != 1 || n == 0)
        layer = -1;
    if (output)
        k = RT_TYPE_Q6_K;
    else if (target != RT_TYPE_Q6_K && layer >= 0 &&
             (has_suffix(t->name, ".attn_v.weight") || has_suffix(t->name, ".ffn_down.weight")) &&
             more_bits(layer, m->n_layers))
        k = RT_TYPE_Q6_K;
    else if (has_suffix(t->name, ".attn_qkv.weight") && target != RT_TYPE_Q6_K)
        k = target == RT_TYPE_Q4_K ? RT_TYPE_Q5_K : RT_TYPE_Q6_K;
    return t->dims[0] % RT_QK_K ? RT_TYPE_Q8_0 : k;
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

/* Quantizes one row of n floats as type (a quantized type). */
static void
quant_row(rt_type type, const rt__qtensor *t, rt_quant_method method, size_t i, size_t row_bytes,
          const float *x, uint8_t *o, size_t n)
{
    switch (type) {
    case RT_TYPE_Q8_0:
        rt_quant_row_q8_0(x, o, n);
        break;
    case RT_TYPE_Q4_K:
        rt_quant_row_q4_k(x, o, n);
        break;
    case RT_TYPE_Q5_K:
        rt_quant_row_q5_k(x, o, n);
        break;
    case RT_TYPE_Q6_K:
        rt_quant_row_q6_k(x, o, n);
        break;
    default: /* Q4_0 */
        if (method == RT_QUANT_RTN)
            rt_quant_row_q4_0(x, o, n);
        else if (t->q4)
            memcpy(o, t->q4 + i * row_bytes, row_bytes);
        else
            rt_quant_row_q4_0_search(x, t->imp, o, n);
        break;
    }
}

static int
write_tensor(rt_quant_result *res, const rt__qtensor *t, rt_type type, rt_quant_method method,
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
        if (type == RT_TYPE_F32) {
            memcpy(o, x, row * sizeof(float));
        } else if (type == RT_TYPE_F16) {
            for (size_t j = 0; j < row; j++) {
                uint16_t h = rt_quant_f16(x[j]);
                o[2 * j] = (uint8_t)h;
                o[2 * j + 1] = (uint8_t)(h >> 8);
            }
        } else {
            quant_row(type, t, method, i, row_bytes, x, o, row);
            rt_quant_dequant_row(type, o, deq, row);
            for (size_t j = 0; j < row; j++)
                *err2 += (double)(deq[j] - x[j]) * (deq[j] - x[j]);
            *cnt += (double)row;
        }
    }
    free(deq);
    rep->n_tensors++;
    rep->bytes_out += size;
    rep->n_by_type[type]++;
    if (is_quant(type))
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

/* general.file_type (llama.cpp's llama_ftype) of a target: 0 all F32,
 * 1 mostly F16, 2 mostly Q4_0, 7 mostly Q8_0, 15 Q4_K_M, 17 Q5_K_M, 18 Q6_K. */
static uint32_t
file_type(rt_type target)
{
    switch (target) {
    case RT_TYPE_F32:
        return 0;
    case RT_TYPE_F16:
        return 1;
    case RT_TYPE_Q4_0:
        return 2;
    case RT_TYPE_Q4_K:
        return 15;
    case RT_TYPE_Q5_K:
        return 17;
    case RT_TYPE_Q6_K:
        return 18;
    default:
        return 7;
    }
}

static int
write_meta(rt_gguf_writer *w, const rt__qmodel *m, const rt_layout *l, const rt_quant_opts *o)
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
    if (r >= 0)
        r = rt_gguf_writer_add_u32(w, "general.file_type", file_type(o->type));
    if (r >= 0 && is_quant(o->type))
        r = rt_gguf_writer_add_u32(w, "general.quantization_version", 2);
    return r;
}

/* For Q4_0 the classifier is written as Q8_0; a shared one needs its own
 * output.weight, placed right after the embeddings' neighbours as
 * llama.cpp orders them (token_embd, output_norm, output). */
static int
add_output_copy(rt__qmodel *m)
{
    if (rt__qmodel_find(m, "output.weight"))
        return 0;
    rt__qtensor *e = rt__qmodel_find(m, "token_embd.weight");
    size_t n = (size_t)n_elems(e);
    float *w = malloc(n * sizeof(float));
    if (!w)
        return -ENOMEM;
    memcpy(w, e->w, n * sizeof(float));
    rt__qtensor *t = realloc(m->t, (m->n_t + 1) * sizeof(*t));
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
         opts->type != RT_TYPE_F32 && !rt__is_kquant(opts->type)))
        return -EINVAL;
    rt_layout l;
    int r = rt_layout_parse(buf, len, len, &l, NULL);
    if (r < 0)
        return r == -EAGAIN ? -EBADMSG : r;
    rt__qmodel m = { 0 };
    rt_quant_result *res = calloc(1, sizeof(*res));
    rt_quant_report rep = { .bytes_in = len };
    if (!res) {
        r = -ENOMEM;
        goto out;
    }
    r = load_model(&m, &l, buf, len, opts->method == RT_QUANT_AWQ, &rep.requantized);
    if (r < 0)
        goto out;
    if (opts->type == RT_TYPE_Q4_0) {
        r = add_output_copy(&m);
        if (r < 0)
            goto out;
    }
    if (opts->type == RT_TYPE_Q4_0 && opts->method == RT_QUANT_AWQ) {
        r = rt__quant_awq(&m, opts->seed,
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
    bool has_output = rt__qmodel_find(&m, "output.weight") != NULL;
    for (size_t i = 0; i < m.n_t && r >= 0; i++)
        r = write_tensor(res, &m.t[i], pick_type(&m, &m.t[i], opts->type, has_output), opts->method,
                         &rep, &err2, &cnt);
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
