/* SPDX-License-Identifier: MIT */
#include "runtime/llama2c.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/internal.h"

static const char *const kind_names[_RT_L2C_KIND_MAX] = {
    [RT_L2C_TOKEN_EMBD] = "token_embd.weight",   [RT_L2C_ATTN_NORM] = "attn_norm.weight",
    [RT_L2C_ATTN_Q] = "attn_q.weight",           [RT_L2C_ATTN_K] = "attn_k.weight",
    [RT_L2C_ATTN_V] = "attn_v.weight",           [RT_L2C_ATTN_OUTPUT] = "attn_output.weight",
    [RT_L2C_FFN_NORM] = "ffn_norm.weight",       [RT_L2C_FFN_GATE] = "ffn_gate.weight",
    [RT_L2C_FFN_DOWN] = "ffn_down.weight",       [RT_L2C_FFN_UP] = "ffn_up.weight",
    [RT_L2C_OUTPUT_NORM] = "output_norm.weight", [RT_L2C_FREQ_REAL] = "freq_cis_real",
    [RT_L2C_FREQ_IMAG] = "freq_cis_imag",        [RT_L2C_OUTPUT] = "output.weight",
};

static bool
is_layer_kind(rt_l2c_kind k)
{
    return k >= RT_L2C_ATTN_NORM && k <= RT_L2C_FFN_UP;
}

/* Row length (cols) and row count of one tensor (one layer) of kind k. */
static void
kind_shape(const rt_llama2c *m, rt_l2c_kind k, uint64_t *ret_cols, uint64_t *ret_rows)
{
    uint64_t dim = (uint64_t)m->dim, hidden = (uint64_t)m->hidden_dim;
    uint64_t kv_dim = dim * (uint64_t)m->n_kv_heads / (uint64_t)m->n_heads;
    uint64_t cols = dim, rows = 1;
    switch (k) {
    case RT_L2C_TOKEN_EMBD:
    case RT_L2C_OUTPUT:
        rows = (uint64_t)m->vocab_size;
        break;
    case RT_L2C_ATTN_Q:
    case RT_L2C_ATTN_OUTPUT:
        rows = dim;
        break;
    case RT_L2C_ATTN_K:
    case RT_L2C_ATTN_V:
        rows = kv_dim;
        break;
    case RT_L2C_FFN_GATE:
    case RT_L2C_FFN_UP:
        rows = hidden;
        break;
    case RT_L2C_FFN_DOWN:
        cols = hidden;
        rows = dim;
        break;
    case RT_L2C_FREQ_REAL:
    case RT_L2C_FREQ_IMAG:
        cols = dim / (uint64_t)m->n_heads / 2;
        rows = (uint64_t)m->seq_len;
        break;
    default: /* norms */
        break;
    }
    *ret_cols = cols;
    *ret_rows = rows;
}

static int32_t
le_i32(const uint8_t *p)
{
    uint32_t v = le32_load(p);
    int32_t r;
    memcpy(&r, &v, 4);
    return r;
}

int
rt_llama2c_parse(const void *buf, size_t len, uint64_t file_size, rt_llama2c *ret)
{
    if ((!buf && len) || !ret || len > file_size)
        return -EINVAL;
    if (file_size < RT_L2C_HEADER_SIZE)
        return -EBADMSG;
    if (len < RT_L2C_HEADER_SIZE)
        return -EAGAIN;
    const uint8_t *p = buf;
    rt_llama2c m = { 0 };
    m.dim = le_i32(p);
    m.hidden_dim = le_i32(p + 4);
    m.n_layers = le_i32(p + 8);
    m.n_heads = le_i32(p + 12);
    m.n_kv_heads = le_i32(p + 16);
    m.vocab_size = le_i32(p + 20);
    m.seq_len = le_i32(p + 24);
    m.shared_classifier = m.vocab_size > 0;
    if (m.vocab_size < 0 && m.vocab_size != INT32_MIN)
        m.vocab_size = -m.vocab_size;
    if (m.dim < 1 || m.dim > RT_L2C_MAX_DIM || m.hidden_dim < 1 || m.hidden_dim > RT_L2C_MAX_DIM ||
        m.n_layers < 1 || m.n_layers > RT_L2C_MAX_LAYERS || m.n_heads < 1 || m.n_heads > m.dim ||
        m.dim % m.n_heads != 0 || (m.dim / m.n_heads) % 2 != 0 || m.n_kv_heads < 1 ||
        m.n_kv_heads > m.n_heads || m.n_heads % m.n_kv_heads != 0 || m.vocab_size < 1 ||
        m.vocab_size > RT_L2C_MAX_VOCAB || m.seq_len < 1 || m.seq_len > RT_L2C_MAX_SEQ)
        return -EBADMSG;

    /* With the maxima above every product fits easily in 64 bits. */
    uint64_t off = RT_L2C_HEADER_SIZE;
    for (int k = 0; k < _RT_L2C_KIND_MAX; k++) {
        if (k == RT_L2C_OUTPUT && m.shared_classifier) {
            m.kind_off[k] = off;
            continue;
        }
        uint64_t cols, rows;
        kind_shape(&m, (rt_l2c_kind)k, &cols, &rows);
        m.kind_off[k] = off;
        off += cols * rows * 4 * (is_layer_kind((rt_l2c_kind)k) ? (uint64_t)m.n_layers : 1);
    }
    if (off != file_size)
        return -EBADMSG;
    m.file_size = file_size;
    m.n_tensors = 1 + 9 * (uint64_t)m.n_layers + 3 + (m.shared_classifier ? 0 : 1);
    *ret = m;
    return 0;
}

int
rt_llama2c_find(const rt_llama2c *m, rt_l2c_kind kind, int layer, rt_tensor_info *ret)
{
    if ((unsigned)kind >= _RT_L2C_KIND_MAX)
        return -EINVAL;
    if (kind == RT_L2C_OUTPUT && m->shared_classifier)
        return -ENOENT;
    bool per_layer = is_layer_kind(kind);
    if (per_layer && (layer < 0 || layer >= m->n_layers))
        return -EINVAL;
    uint64_t cols, rows;
    kind_shape(m, kind, &cols, &rows);
    rt_tensor_info t;
    memset(&t, 0, sizeof(t));
    if (per_layer)
        snprintf(t.name, sizeof(t.name), "blk.%d.%s", layer, kind_names[kind]);
    else
        snprintf(t.name, sizeof(t.name), "%s", kind_names[kind]);
    t.type = RT_TYPE_F32;
    bool is_vec = kind == RT_L2C_ATTN_NORM || kind == RT_L2C_FFN_NORM || kind == RT_L2C_OUTPUT_NORM;
    t.n_dims = is_vec ? 1 : 2;
    t.dims[0] = cols;
    t.dims[1] = rows;
    t.dims[2] = t.dims[3] = 1;
    t.size = cols * rows * 4;
    t.offset = m->kind_off[kind] + (per_layer ? (uint64_t)layer * t.size : 0);
    *ret = t;
    return 0;
}

int
rt_llama2c_tensor(const rt_llama2c *m, uint64_t i, rt_tensor_info *ret)
{
    if (i >= m->n_tensors)
        return -EINVAL;
    uint64_t L = (uint64_t)m->n_layers;
    if (i == 0)
        return rt_llama2c_find(m, RT_L2C_TOKEN_EMBD, 0, ret);
    if (i <= 9 * L) {
        uint64_t j = i - 1;
        return rt_llama2c_find(m, (rt_l2c_kind)(RT_L2C_ATTN_NORM + j / L), (int)(j % L), ret);
    }
    return rt_llama2c_find(m, (rt_l2c_kind)(RT_L2C_OUTPUT_NORM + (i - 1 - 9 * L)), 0, ret);
}
