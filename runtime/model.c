/* SPDX-License-Identifier: MIT */
/*
 * The engine: loading (plan + init share one builder) and extra states; the
 * forward pass is in model-forward.c.
 *
 * Arena layout, in allocation order (each block aligned to RT_ARENA_ALIGN):
 *   rt_model handle + layer table               (other)
 *   activations: x, xb, xb2 [dim], q [dim],
 *     hb, hb2 [max(dim, hidden) rounded up to 32], att [seq_len],
 *     logits [vocab], xq [blocks of the widest row]   (activations)
 *   KV cache: k, v [layers, seq_len, kv_dim] as f32 or int8,
 *     plus for int8 ks, vs [layers, seq_len, n_kv_heads] floats (kv_cache)
 *   weights copied or requantized, in tensor order  (weights)
 * For aidreams260K with Q4_0 weights and an int8 KV cache at 128 positions
 * this is 223,360 bytes on x86-64 (see the arena test); the activations are
 * 5,336 bytes.
 */
#include "runtime/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/internal.h"
#include "runtime/llama2c.h"

/* F32 and F16 weights are used in place from the file, which is
 * little-endian; so is every CPU this runtime targets. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nvxrt reads model tensors in place and needs a little-endian CPU"
#endif

/* Bump allocator over the arena; with base == NULL it only counts. */
typedef struct arena {
    uint8_t *base;
    size_t used;
    bool too_big; /* a size overflowed size_t */
    rt_arena_report *rep;
} arena;

static void *
arena_alloc(arena *a, uint64_t n, size_t *counter)
{
    size_t pad = (RT_ARENA_ALIGN - a->used % RT_ARENA_ALIGN) % RT_ARENA_ALIGN;
    /* Sizes are computed in 64 bits; on a 32-bit target a model may not fit
     * the address space at all. Planning fails then, so the placing pass
     * never gets here. */
    if (a->too_big || pad > SIZE_MAX - a->used || n > SIZE_MAX - a->used - pad) {
        a->too_big = true;
        return NULL;
    }
    a->rep->other += pad;
    a->used += pad;
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (size_t)n;
    *counter += (size_t)n;
    return p;
}

/* Where tensors come from. */
typedef struct source {
    char *why; /* reason for -EBADMSG, or NULL */
    size_t why_cap;
    const uint8_t *file;
    size_t len;
    rt_format format;
    rt_gguf g;
    rt_llama2c l2c;
} source;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
/* Writes the one-line reason of a refusal (if asked for) and returns
 * -EBADMSG. */
static int
bad(source *s, const char *fmt, ...)
{
    if (s->why && s->why_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->why, s->why_cap, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

typedef struct builder {
    source src;
    rt_model_opts o;
    arena a;
    rt_model *m; /* NULL while planning */
    rt_config cfg;
    float *scratch; /* a row of floats for requantizing (init only) */
} builder;

static int
tensor_by_name(const source *s, const char *name, rt_l2c_kind kind, int layer, rt_tensor_info *ret)
{
    if (s->format == RT_FORMAT_GGUF)
        return rt_gguf_tensor_find(&s->g, name, ret);
    return rt_llama2c_find(&s->l2c, kind, layer, ret);
}

static bool
type_computable(rt_type t)
{
    return t == RT_TYPE_F32 || t == RT_TYPE_F16 || t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0 ||
           rt__is_kquant(t);
}

/* Loads a matrix [rows, cols] (or a vector when rows == 0: [cols], F32 out). */
static int
load_tensor(builder *b, const char *name, rt_l2c_kind kind, int layer, uint32_t rows, uint32_t cols,
            rt__mat *ret)
{
    rt_tensor_info t;
    int r = tensor_by_name(&b->src, name, kind, layer, &t);
    if (r == -ENOENT)
        return bad(&b->src, "missing tensor %s", name);
    if (r == -EBADMSG && b->src.format == RT_FORMAT_GGUF)
        return bad(&b->src, "tensor %s appears more than once", name);
    if (r < 0)
        return r;
    bool vec = rows == 0;
    if (!type_computable(t.type))
        return bad(&b->src, "tensor %s has type %s, which this runtime does not compute", t.name,
                   rt_type_name(t.type));
    if (t.dims[0] != cols || t.dims[1] != (vec ? 1 : rows) || t.dims[2] != 1 || t.dims[3] != 1)
        return bad(&b->src, "tensor %s has shape %llux%llu, expected %ux%u", t.name,
                   (unsigned long long)t.dims[0], (unsigned long long)t.dims[1], (unsigned)cols,
                   (unsigned)(vec ? 1 : rows));
    if (vec)
        rows = 1;
    const uint8_t *src = b->src.file + t.offset;
    bool is_float = t.type == RT_TYPE_F32 || t.type == RT_TYPE_F16;
    rt__mat m = { .type = t.type, .rows = rows, .cols = cols, .cols_pad = cols };
    size_t elem = t.type == RT_TYPE_F32 ? 4 : 2;
    if (!is_float)
        m.row_bytes = (size_t)t.size / rows;
    else
        m.row_bytes = (size_t)cols * elem;

    rt_type target = t.type;
    if (vec) {
        target = RT_TYPE_F32;
    } else if (is_float && b->o.requant != RT_REQUANT_NONE) {
        target = b->o.requant == RT_REQUANT_Q8_0 ? RT_TYPE_Q8_0 : RT_TYPE_Q4_0;
        if (b->o.embd_q8 && (kind == RT_L2C_TOKEN_EMBD || kind == RT_L2C_OUTPUT))
            target = RT_TYPE_Q8_0;
    }
    bool aligned = ((uintptr_t)src % elem) == 0 || !is_float;
    if (target == t.type && !b->o.copy_weights && aligned) {
        m.data = src; /* in place */
        b->a.rep->file_weights += (size_t)t.size;
        *ret = m;
        return 0;
    }

    rt__mat q = m;
    q.type = target;
    if (target == t.type) {
        /* a copy: the file's row layout (m.row_bytes) */
    } else if (target == RT_TYPE_Q8_0 || target == RT_TYPE_Q4_0) {
        q.cols_pad = (cols + RT_QK - 1) / RT_QK * RT_QK;
        q.row_bytes = q.cols_pad / RT_QK * (target == RT_TYPE_Q8_0 ? RT_Q8_0_BYTES : RT_Q4_0_BYTES);
    } else {
        q.row_bytes = (size_t)cols * (target == RT_TYPE_F32 ? 4 : 2);
    }
    uint8_t *dst = arena_alloc(&b->a, (uint64_t)q.row_bytes * rows, &b->a.rep->weights);
    if (dst) {
        for (uint32_t i = 0; i < rows; i++) {
            const uint8_t *in = src + i * m.row_bytes;
            uint8_t *out = dst + i * q.row_bytes;
            if (target == t.type) {
                memcpy(out, in, m.row_bytes);
                continue;
            }
            rt__dequant_row(t.type, in, b->scratch, cols);
            if (target == RT_TYPE_F32)
                memcpy(out, b->scratch, (size_t)cols * 4);
            else if (target == RT_TYPE_Q8_0)
                rt__quantize_row_q8_0(b->scratch, cols, out);
            else
                rt__quantize_row_q4_0(b->scratch, cols, out);
        }
    }
    q.data = dst;
    *ret = q;
    return 0;
}

static int
read_config_gguf(source *s, rt_config *c)
{
    int r = rt__arch_config(&s->g, c, s->why, s->why_cap);
    if (r < 0)
        return r;
    uint32_t v;
    if (rt_gguf_get_u32(&s->g, "tokenizer.ggml.bos_token_id", &v) == 0)
        c->bos_id = v;
    if (rt_gguf_get_u32(&s->g, "tokenizer.ggml.eos_token_id", &v) == 0)
        c->eos_id = v;
    rt_tensor_info t;
    if (rt_gguf_tensor_find(&s->g, "token_embd.weight", &t) < 0 || t.dims[1] > UINT32_MAX)
        return bad(s, "missing tensor token_embd.weight");
    c->vocab_size = (uint32_t)t.dims[1];
    c->shared_classifier = rt_gguf_tensor_find(&s->g, "output.weight", &t) == -ENOENT;
    return 0;
}

static int
read_config(source *s, const void *file, size_t len, rt_config *c)
{
    memset(c, 0, sizeof(*c));
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->bos_id = 1;
    c->eos_id = 2;
    s->file = file;
    s->len = len;
    if (rt_gguf_is_gguf(file, len)) {
        s->format = RT_FORMAT_GGUF;
        int r = rt_gguf_parse(file, len, len, &s->g, NULL);
        if (r < 0)
            return r == -EAGAIN || r == -EBADMSG
                       ? bad(s, "malformed GGUF file (header, metadata or tensor table)")
                       : r;
        r = read_config_gguf(s, c);
        if (r < 0)
            return r;
    } else {
        s->format = RT_FORMAT_LLAMA2C;
        int r = rt_llama2c_parse(file, len, len, &s->l2c);
        if (r < 0)
            return r == -EAGAIN || r == -EBADMSG
                       ? bad(s, "neither GGUF nor a llama2.c checkpoint (header and size disagree)")
                       : r;
        c->dim = (uint32_t)s->l2c.dim;
        c->hidden_dim = (uint32_t)s->l2c.hidden_dim;
        c->n_layers = (uint32_t)s->l2c.n_layers;
        c->n_heads = (uint32_t)s->l2c.n_heads;
        c->n_kv_heads = (uint32_t)s->l2c.n_kv_heads;
        c->vocab_size = (uint32_t)s->l2c.vocab_size;
        c->model_seq_len = (uint32_t)s->l2c.seq_len;
        c->shared_classifier = s->l2c.shared_classifier;
    }
    c->format = s->format;
    if (c->dim < 1 || c->dim > RT_MAX_DIM || c->hidden_dim < 1 || c->hidden_dim > RT_MAX_DIM ||
        c->n_layers < 1 || c->n_layers > RT_MAX_LAYERS || c->n_heads < 1 ||
        c->dim % c->n_heads != 0 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads != 0 ||
        (c->dim / c->n_heads) % 2 != 0 || c->dim / c->n_heads > RT_MAX_HEAD_DIM ||
        c->vocab_size < 1 || c->vocab_size > RT_MAX_VOCAB || c->model_seq_len < 1 ||
        c->model_seq_len > RT_MAX_SEQ || !(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0f))
        return bad(s,
                   "hyper-parameters out of range (width %u, hidden %u, layers %u, heads %u/%u, "
                   "vocabulary %u, context %u)",
                   (unsigned)c->dim, (unsigned)c->hidden_dim, (unsigned)c->n_layers,
                   (unsigned)c->n_heads, (unsigned)c->n_kv_heads, (unsigned)c->vocab_size,
                   (unsigned)c->model_seq_len);
    c->head_dim = c->dim / c->n_heads;
    return 0;
}

/* Rows [first, first + n) of m: the parts of a fused matrix (phi3's
 * attn_qkv and gate/up) are row ranges, used in place. */
static rt__mat
mat_rows(const rt__mat *m, uint32_t first, uint32_t n)
{
    rt__mat r = *m;
    r.rows = n;
    if (m->data)
        r.data = m->data + (size_t)first * m->row_bytes;
    return r;
}

/* Loads blk.{l}.{suffix} (a matrix [rows, cols], or an F32 vector [cols]
 * when rows == 0). */
static int
load_blk(builder *b, uint32_t l, const char *suffix, rt_l2c_kind kind, uint32_t rows, uint32_t cols,
         rt__mat *ret)
{
    char name[RT_TENSOR_NAME_MAX + 1];
    snprintf(name, sizeof(name), "blk.%u.%s", (unsigned)l, suffix);
    return load_tensor(b, name, kind, (int)l, rows, cols, ret);
}

/* One layer, in the order of the original llama loader (the arena layout
 * of existing models stays byte for byte the same). */
static int
load_layer(builder *b, uint32_t l, rt_layer *L)
{
    const rt_config *c = &b->cfg;
    uint32_t dim = c->dim, kv_dim = dim / c->n_heads * c->n_kv_heads, hid = c->hidden_dim;
    bool phi3 = c->arch == RT_ARCH_PHI3;
    /* Zeroed: at -O3 gcc cannot see that load_blk sets them on success. */
    rt__mat v1 = { 0 }, v2 = { 0 }, f = { 0 };
    int r = load_blk(b, l, "attn_norm.weight", RT_L2C_ATTN_NORM, 0, dim, &v1);
    if (r < 0)
        return r;
    L->attn_norm = (const float *)(const void *)v1.data;
    if (phi3) {
        /* attn_qkv [dim, dim + 2 kv_dim]: q rows, then k, then v */
        r = load_blk(b, l, "attn_qkv.weight", RT_L2C_ATTN_Q, dim + 2 * kv_dim, dim, &f);
        if (r < 0)
            return r;
        L->wq = mat_rows(&f, 0, dim);
        L->wk = mat_rows(&f, dim, kv_dim);
        L->wv = mat_rows(&f, dim + kv_dim, kv_dim);
    } else {
        r = load_blk(b, l, "attn_q.weight", RT_L2C_ATTN_Q, dim, dim, &L->wq);
        if (r >= 0)
            r = load_blk(b, l, "attn_k.weight", RT_L2C_ATTN_K, kv_dim, dim, &L->wk);
        if (r >= 0)
            r = load_blk(b, l, "attn_v.weight", RT_L2C_ATTN_V, kv_dim, dim, &L->wv);
    }
    if (r >= 0)
        r = load_blk(b, l, "attn_output.weight", RT_L2C_ATTN_OUTPUT, dim, dim, &L->wo);
    if (r >= 0)
        r = load_blk(b, l, "ffn_norm.weight", RT_L2C_FFN_NORM, 0, dim, &v2);
    if (r >= 0 && !phi3)
        r = load_blk(b, l, "ffn_gate.weight", RT_L2C_FFN_GATE, hid, dim, &L->w1);
    if (r >= 0)
        r = load_blk(b, l, "ffn_down.weight", RT_L2C_FFN_DOWN, dim, hid, &L->w2);
    if (r >= 0 && !phi3)
        r = load_blk(b, l, "ffn_up.weight", RT_L2C_FFN_UP, hid, dim, &L->w3);
    if (r >= 0 && phi3) {
        /* ffn_up [dim, 2 hid]: gate rows, then up */
        r = load_blk(b, l, "ffn_up.weight", RT_L2C_FFN_UP, 2 * hid, dim, &f);
        if (r >= 0) {
            L->w1 = mat_rows(&f, 0, hid);
            L->w3 = mat_rows(&f, hid, hid);
        }
    }
    if (r < 0)
        return r;
    L->ffn_norm = (const float *)(const void *)v2.data;
    if (c->arch != RT_ARCH_QWEN2)
        return 0;
    rt__mat bq = { 0 }, bk = { 0 }, bv = { 0 };
    r = load_blk(b, l, "attn_q.bias", RT_L2C_ATTN_Q, 0, dim, &bq);
    if (r >= 0)
        r = load_blk(b, l, "attn_k.bias", RT_L2C_ATTN_K, 0, kv_dim, &bk);
    if (r >= 0)
        r = load_blk(b, l, "attn_v.bias", RT_L2C_ATTN_V, 0, kv_dim, &bv);
    if (r < 0)
        return r;
    L->bq = (const float *)(const void *)bq.data;
    L->bk = (const float *)(const void *)bk.data;
    L->bv = (const float *)(const void *)bv.data;
    return 0;
}

static int
build_weights(builder *b, rt_model *m)
{
    const rt_config *c = &b->cfg;
    uint32_t dim = c->dim;
    rt_layer scratch_layer = { 0 }; /* written, never read, while planning */
    rt_layer *layers =
        arena_alloc(&b->a, (uint64_t)sizeof(rt_layer) * c->n_layers, &b->a.rep->other);
    rt__mat tmp;
    int r = load_tensor(b, "token_embd.weight", RT_L2C_TOKEN_EMBD, 0, c->vocab_size, dim,
                        m ? &m->tok_embd : &tmp);
    if (r < 0)
        return r;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        rt_layer *L = layers ? &layers[l] : &scratch_layer;
        if (layers)
            memset(L, 0, sizeof(*L));
        r = load_layer(b, l, L);
        if (r < 0)
            return r;
    }
    rt__mat norm = { 0 };
    r = load_tensor(b, "output_norm.weight", RT_L2C_OUTPUT_NORM, 0, 0, dim, &norm);
    if (r < 0)
        return r;
    if (m) {
        m->layers = layers;
        m->output_norm = (const float *)(const void *)norm.data;
    }
    if (c->shared_classifier) {
        if (m)
            m->output = m->tok_embd;
        return 0;
    }
    return load_tensor(b, "output.weight", RT_L2C_OUTPUT, 0, c->vocab_size, dim,
                       m ? &m->output : &tmp);
}

/* Carves a state's buffers (activations, KV cache) for seq_len positions;
 * s is filled when the arena places (a->base != NULL). */
static void
alloc_state(arena *a, const rt_config *c, rt_kv_type kv, uint32_t seq_len, rt_state *s)
{
    size_t dim = c->dim, hid = c->hidden_dim, kv_dim = dim / c->n_heads * c->n_kv_heads;
    size_t wide = (dim > hid ? dim : hid);
    size_t wide_pad = (wide + RT_QK - 1) / RT_QK * RT_QK;
    size_t *act = &a->rep->activations;
    rt_state t = { .seq_len = seq_len, .kv_type = kv, .kv_dim = kv_dim };
    t.x = arena_alloc(a, dim * 4, act);
    t.xb = arena_alloc(a, dim * 4, act);
    t.xb2 = arena_alloc(a, dim * 4, act);
    t.q = arena_alloc(a, dim * 4, act);
    t.hb = arena_alloc(a, wide_pad * 4, act);
    t.hb2 = arena_alloc(a, wide_pad * 4, act);
    t.att = arena_alloc(a, (uint64_t)seq_len * 4, act);
    t.logits = arena_alloc(a, (uint64_t)c->vocab_size * 4, act);
    t.xq = arena_alloc(a, wide_pad / RT_QK * sizeof(rt__blockq8), act);
    size_t *kvc = &a->rep->kv_cache;
    uint64_t cells = (uint64_t)c->n_layers * seq_len * kv_dim;
    uint64_t heads = (uint64_t)c->n_layers * seq_len * c->n_kv_heads;
    if (kv == RT_KV_F32) {
        t.kc = arena_alloc(a, cells * 4, kvc);
        t.vc = arena_alloc(a, cells * 4, kvc);
    } else if (kv == RT_KV_F16) {
        t.kh = arena_alloc(a, cells * 2, kvc);
        t.vh = arena_alloc(a, cells * 2, kvc);
    } else {
        t.kq = arena_alloc(a, cells, kvc);
        t.vq = arena_alloc(a, cells, kvc);
        t.ks = arena_alloc(a, heads * 4, kvc);
        t.vs = arena_alloc(a, heads * 4, kvc);
    }
    if (s && a->base)
        *s = t;
}

/* Runs the whole layout once: counting only (b->a.base == NULL) or for real. */
static int
build(builder *b, rt_model **ret)
{
    rt_config *c = &b->cfg;
    c->seq_len = b->o.seq_len && b->o.seq_len < c->model_seq_len ? b->o.seq_len : c->model_seq_len;
    rt_model *m = arena_alloc(&b->a, sizeof(rt_model), &b->a.rep->other);
    if (m) {
        memset(m, 0, sizeof(*m));
        m->cfg = *c;
    }
    alloc_state(&b->a, c, b->o.kv_type, c->seq_len, m ? &m->st : NULL);
    /* hb is wide enough for any row; used as scratch during init only. */
    b->scratch = m ? m->st.hb : NULL;
    int r = build_weights(b, m);
    if (r < 0)
        return r;
    if (b->a.too_big)
        return -ENOMEM;
    b->a.rep->total = b->a.used;
    if (m) {
        m->st.m = m;
        m->rep = *b->a.rep;
        *ret = m;
    }
    return 0;
}

static int
pick_kernels(rt_kernels want, const rt__kernels **ret)
{
    const rt__kernels *simd = rt__kernels_simd();
    switch (want) {
    case RT_KERNELS_AUTO:
        *ret = simd ? simd : &rt__kernels_portable;
        return 0;
    case RT_KERNELS_PORTABLE:
        *ret = &rt__kernels_portable;
        return 0;
    case RT_KERNELS_SIMD:
        if (!simd)
            return -ENOTSUP;
        *ret = simd;
        return 0;
    default:
        return -EINVAL;
    }
}

static int
prepare(builder *b, const void *file, size_t len, const rt_model_opts *opts, rt_arena_report *rep)
{
    static const rt_model_opts defaults = RT_MODEL_OPTS_INIT;
    if (!file || !rep)
        return -EINVAL;
    b->o = opts ? *opts : defaults;
    if ((unsigned)b->o.kv_type >= _RT_KV_TYPE_MAX || (unsigned)b->o.requant >= _RT_REQUANT_MAX ||
        (unsigned)b->o.kernels >= _RT_KERNELS_MAX)
        return -EINVAL;
    const rt__kernels *k;
    int r = pick_kernels(b->o.kernels, &k);
    if (r < 0)
        return r;
    memset(rep, 0, sizeof(*rep));
    b->a.rep = rep;
    b->src.why = b->o.why;
    b->src.why_cap = b->o.why_cap;
    return read_config(&b->src, file, len, &b->cfg);
}

/* Checks the file and opts and counts every block into *rep (a dry run of
 * the layout, touching no memory); b is then ready for build(b, &m). */
static int
plan(builder *b, const void *file, size_t len, const rt_model_opts *opts, rt_arena_report *rep)
{
    memset(b, 0, sizeof(*b));
    int r = prepare(b, file, len, opts, rep);
    if (r < 0)
        return r;
    return build(b, NULL);
}

int
rt_model_plan(const void *file, size_t len, const rt_model_opts *opts, rt_arena_report *ret)
{
    if (!ret)
        return -EINVAL;
    builder b;
    rt_arena_report rep;
    int r = plan(&b, file, len, opts, &rep);
    if (r < 0)
        return r;
    *ret = rep;
    return 0;
}

int
rt_model_init(const void *file, size_t len, const rt_model_opts *opts, void *arena_mem,
              size_t arena_size, rt_model **ret, rt_arena_report *ret_report)
{
    if (!arena_mem || !ret)
        return -EINVAL;
    builder b;
    rt_arena_report rep;
    int r = plan(&b, file, len, opts, &rep);
    if (r < 0)
        return r;
    size_t skew = (RT_ARENA_ALIGN - (uintptr_t)arena_mem % RT_ARENA_ALIGN) % RT_ARENA_ALIGN;
    if (arena_size < skew || arena_size - skew < rep.total) {
        if (ret_report)
            *ret_report = rep;
        return -ENOMEM;
    }
    /* Second pass for real: same sequence of allocations, now placed. */
    builder b2;
    memset(&b2, 0, sizeof(b2));
    rt_arena_report rep2;
    r = prepare(&b2, file, len, opts, &rep2);
    if (r < 0)
        return r;
    b2.a.base = (uint8_t *)arena_mem + skew;
    rt_model *m = NULL;
    r = build(&b2, &m);
    if (r < 0)
        return r;
    r = pick_kernels(b2.o.kernels, &m->k);
    if (r < 0)
        return r;
    if (ret_report)
        *ret_report = rep2;
    *ret = m;
    return 0;
}

const rt_config *
rt_model_config(const rt_model *m)
{
    return &m->cfg;
}

const rt_arena_report *
rt_model_report(const rt_model *m)
{
    return &m->rep;
}

const char *
rt_model_kernels(const rt_model *m)
{
    return m->k->name;
}

bool
rt_simd_available(void)
{
    return rt__kernels_simd() != NULL;
}

static int
state_layout(const rt_model *m, rt_kv_type kv_type, uint32_t seq_len, arena *a, rt_state **ret)
{
    if (!m || (unsigned)kv_type >= _RT_KV_TYPE_MAX || seq_len > m->cfg.model_seq_len)
        return -EINVAL;
    if (seq_len == 0)
        seq_len = m->cfg.seq_len;
    rt_state *s = arena_alloc(a, sizeof(rt_state), &a->rep->other);
    alloc_state(a, &m->cfg, kv_type, seq_len, s);
    if (a->too_big)
        return -ENOMEM;
    if (s) {
        s->m = m;
        *ret = s;
    }
    return 0;
}

int
rt_state_plan(const rt_model *m, rt_kv_type kv_type, uint32_t seq_len, size_t *ret)
{
    rt_arena_report rep;
    memset(&rep, 0, sizeof(rep));
    arena a = { .rep = &rep };
    int r = state_layout(m, kv_type, seq_len, &a, NULL);
    if (r < 0)
        return r;
    *ret = a.used;
    return 0;
}

int
rt_state_init(const rt_model *m, rt_kv_type kv_type, uint32_t seq_len, void *mem, size_t size,
              rt_state **ret)
{
    size_t need;
    int r = rt_state_plan(m, kv_type, seq_len, &need);
    if (r < 0)
        return r;
    if (!mem || !ret)
        return -EINVAL;
    size_t skew = (RT_ARENA_ALIGN - (uintptr_t)mem % RT_ARENA_ALIGN) % RT_ARENA_ALIGN;
    if (size < skew || size - skew < need)
        return -ENOMEM;
    rt_arena_report rep;
    memset(&rep, 0, sizeof(rep));
    arena a = { .base = (uint8_t *)mem + skew, .rep = &rep };
    return state_layout(m, kv_type, seq_len, &a, ret);
}
