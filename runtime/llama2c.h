/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_LLAMA2C_H
#define NVX_RUNTIME_LLAMA2C_H
/*
 * llama2.c legacy checkpoint ("version 0") reader. The format has no magic,
 * so it is recognised by a plausible header AND a file size equal to the size
 * the header implies; anything else is -EBADMSG. No allocation.
 *
 *   OFFSET SIZE DESCRIPTION (little-endian)
 *   0      4    i32 dim           (1..RT_L2C_MAX_DIM)
 *   4      4    i32 hidden_dim    (1..RT_L2C_MAX_DIM)
 *   8      4    i32 n_layers      (1..RT_L2C_MAX_LAYERS)
 *   12     4    i32 n_heads       (divides dim, head size even)
 *   16     4    i32 n_kv_heads    (divides n_heads)
 *   20     4    i32 vocab_size    (> 0: classifier shared with the embedding;
 *                                  < 0: a separate classifier follows; |v| is
 *                                  the vocabulary size, 1..RT_L2C_MAX_VOCAB)
 *   24     4    i32 seq_len       (1..RT_L2C_MAX_SEQ)
 *   28     ...  f32 tensors, in order (kv_dim = dim * n_kv_heads / n_heads,
 *               hs = dim / n_heads):
 *                 token_embd   [vocab, dim]
 *                 rms_att      [layers, dim]
 *                 wq           [layers, dim, dim]
 *                 wk           [layers, kv_dim, dim]
 *                 wv           [layers, kv_dim, dim]
 *                 wo           [layers, dim, dim]
 *                 rms_ffn      [layers, dim]
 *                 w1           [layers, hidden, dim]
 *                 w2           [layers, dim, hidden]
 *                 w3           [layers, hidden, dim]
 *                 rms_final    [dim]
 *                 freq_cis_real, freq_cis_imag [seq_len, hs / 2] (unused)
 *                 classifier   [vocab, dim]  (only if vocab_size < 0)
 *
 * The tensor table splits the per-layer arrays into one tensor per layer,
 * named as in GGUF (blk.N.attn_q.weight, ...), in file order.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/types.h"

enum {
    RT_L2C_HEADER_SIZE = 28,
    RT_L2C_MAX_DIM = 1 << 16,
    RT_L2C_MAX_LAYERS = 1024,
    RT_L2C_MAX_VOCAB = 1 << 20,
    RT_L2C_MAX_SEQ = 1 << 20,
};

/* Per-layer tensor kinds, in file order. */
typedef enum rt_l2c_kind {
    RT_L2C_TOKEN_EMBD,
    RT_L2C_ATTN_NORM,
    RT_L2C_ATTN_Q,
    RT_L2C_ATTN_K,
    RT_L2C_ATTN_V,
    RT_L2C_ATTN_OUTPUT,
    RT_L2C_FFN_NORM,
    RT_L2C_FFN_GATE, /* w1 */
    RT_L2C_FFN_DOWN, /* w2 */
    RT_L2C_FFN_UP,   /* w3 */
    RT_L2C_OUTPUT_NORM,
    RT_L2C_FREQ_REAL,
    RT_L2C_FREQ_IMAG,
    RT_L2C_OUTPUT,
    _RT_L2C_KIND_MAX,
} rt_l2c_kind;

typedef struct rt_llama2c {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier;
    uint64_t file_size;
    uint64_t n_tensors;                  /* entries of the tensor table */
    uint64_t kind_off[_RT_L2C_KIND_MAX]; /* absolute offset of each array */
} rt_llama2c;

/* Parses the 28-byte header (buf holds at least len bytes of the file whose
 * total size is file_size) and checks every derived size against the
 * maxima and that file_size is exactly the implied size. Returns 0; -EAGAIN
 * if len < 28 <= file_size (need 28 bytes); -EBADMSG if not a valid
 * checkpoint; -EINVAL on caller error. */
int rt_llama2c_parse(const void *buf, size_t len, uint64_t file_size, rt_llama2c *ret);

/* Entry i (< n_tensors) of the tensor table: name, type F32, dims
 * (dims[0] = row length), absolute offset and byte size. Returns 0 or
 * -EINVAL for i out of range. */
int rt_llama2c_tensor(const rt_llama2c *m, uint64_t i, rt_tensor_info *ret);

/* Byte offset and size of one tensor by kind and layer (layer ignored for
 * the non-layer kinds). Returns 0, -ENOENT (no separate classifier), or
 * -EINVAL. */
int rt_llama2c_find(const rt_llama2c *m, rt_l2c_kind kind, int layer, rt_tensor_info *ret);

#endif
