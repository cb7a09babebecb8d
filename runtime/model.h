/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_MODEL_H
#define NVX_RUNTIME_MODEL_H
/*
 * The inference engine: a Llama-architecture transformer (RMSNorm, RoPE on
 * adjacent pairs as in llama2.c / ggml's "normal" mode or on halves (NEOX),
 * grouped-query attention, SwiGLU feed-forward, shared or separate
 * classifier) read from a llama2.c checkpoint or a GGUF file of
 * architecture llama, qwen2 (q/k/v biases) or phi3 (fused qkv and gate/up)
 * with F32, F16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K tensors.
 *
 * Memory. Everything the engine needs after init lives in ONE block, the
 * arena: the rt_model handle, its state (activations, KV cache), and the
 * weights that are copied or requantized. Nothing is allocated after init,
 * and rt_forward never allocates. Two modes:
 *   - arena mode: the caller gives the block (rt_model_init); weights are
 *     either read in place from the file buffer (zero-copy) or copied into
 *     the arena (opts.copy_weights), so the file may go away after init.
 *   - mmap mode: rt_model_file_open (runtime/model-file.h) maps a file and
 *     allocates an arena of exactly the planned size once.
 * More sequences can share one model's weights through rt_state (below).
 *
 * Microcontroller sizing (aidreams260K: dim 64, 4 layers, vocab 512, 128
 * positions; opts requant Q4_0, kv_type RT_KV_Q8, copy_weights): 223,360
 * bytes in all on x86-64 -- weights 134,784, activations 5,336, KV cache
 * 81,920, handle and tables 1,320 -- so it runs in a 256 KiB block with the
 * F32 checkpoint left in flash.
 * rt_model_plan gives the exact byte counts before any memory is handed
 * over (the arena report).
 *
 * Quantized compute. Q8_0 and Q4_0 matrices are multiplied with the
 * activation vector quantized to int8 blocks of 32 (one float scale per
 * block) with integer dot products per block; F32 and F16 matrices use
 * float dot products. Requantization (opts.requant) turns F32/F16 matrices
 * into Q8_0/Q4_0 in the arena at init, including matrices whose rows are not
 * a multiple of 32 (ffn_down of aidreams260K, 172 wide): such a row is
 * stored zero-padded to the next multiple of 32, and the activation is
 * zero-padded the same way, so the padding adds exactly 0 to every dot
 * product. 1-D tensors (norms) stay F32.
 *
 * KV cache. F32, F16 (halves it, and rounds as llama.cpp does), or int8
 * with one float scale per (position, layer, kv head) vector (symmetric,
 * round to nearest), which quarters its size.
 *
 * Kernels. A portable C path always exists; on x86-64 an AVX2 path (built
 * with target attributes, so the file needs no -mavx2) and on AArch64 a
 * NEON path are chosen at run time when the CPU has them. All paths give
 * the same integer block sums; quantized matrix results are bit-identical
 * across paths (the float accumulation over blocks uses the same four lanes
 * and operations), F32/F16 dot products may differ in the last bits.
 *
 * Threads: one rt_model (or rt_state) is used by one thread at a time; its
 * matrix products may fan out to a caller's thread pool (rt_parallel).
 * Tensors are read in place in file byte order: little-endian CPUs only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/layout.h"
#include "runtime/types.h"

enum {
    RT_MAX_LAYERS = 1024,
    RT_MAX_DIM = 1 << 16,
    RT_MAX_HEAD_DIM = 1024,
    RT_MAX_VOCAB = 1 << 20,
    RT_MAX_SEQ = 1 << 20,
};

/* Alignment of every block carved from the arena, and of the arena start
 * that rt_model_plan's total assumes: that of max_align_t, so memory from
 * malloc needs exactly total bytes. */
#define RT_ARENA_ALIGN ((size_t) _Alignof(max_align_t))

typedef enum rt_kv_type {
    RT_KV_F32 = 0,
    RT_KV_Q8 = 1,  /* int8 + one float scale per head vector */
    RT_KV_F16 = 2, /* IEEE half, as llama.cpp's default cache: q and the
                      attention weights are rounded to half too, as its
                      F16 products do, which keeps nvx within llama.cpp's
                      own noise */
    _RT_KV_TYPE_MAX,
} rt_kv_type;

typedef enum rt_requant {
    RT_REQUANT_NONE = 0,
    RT_REQUANT_Q8_0 = 1,
    RT_REQUANT_Q4_0 = 2,
    _RT_REQUANT_MAX,
} rt_requant;

typedef enum rt_kernels {
    RT_KERNELS_AUTO = 0,     /* best the CPU supports */
    RT_KERNELS_PORTABLE = 1, /* plain C */
    RT_KERNELS_SIMD = 2,     /* AVX2 or NEON; init fails with -ENOTSUP if absent */
    _RT_KERNELS_MAX,
} rt_kernels;

typedef struct rt_model_opts {
    rt_kv_type kv_type;
    rt_requant requant; /* quantize F32/F16 matrices into the arena at init */
    bool copy_weights;  /* copy every tensor into the arena (file may go away) */
    uint32_t seq_len;   /* context positions to allocate; 0 = the model's */
    rt_kernels kernels;
    bool embd_q8; /* with requant Q4_0: the token embedding and the classifier
                     become Q8_0 instead (llama.cpp does so for the
                     classifier); they weigh most on quality */
    char *why;    /* if not NULL: on -EBADMSG from plan or init, a one-line
                     reason (e.g. "tensor blk.0.attn_q.weight has shape
                     32x33, expected 32x32"), NUL-terminated, at most
                     why_cap bytes; untouched otherwise */
    size_t why_cap;
} rt_model_opts;
#define RT_MODEL_OPTS_INIT                                                    \
    {                                                                         \
        RT_KV_F32, RT_REQUANT_NONE, false, 0, RT_KERNELS_AUTO, false, NULL, 0 \
    }

/* Transformer variants (GGUF general.architecture). llama: the base;
 * qwen2: q/k/v biases, NEOX RoPE, usually tied embeddings; phi3: fused
 * attn_qkv and gate/up matrices, NEOX RoPE. llama2.c files are llama. */
typedef enum rt_arch {
    RT_ARCH_LLAMA = 0,
    RT_ARCH_QWEN2 = 1,
    RT_ARCH_PHI3 = 2,
    _RT_ARCH_MAX,
} rt_arch;

/* "llama", "qwen2", "phi3", or "?". */
const char *rt_arch_name(rt_arch a);

typedef struct rt_config {
    rt_format format;
    rt_arch arch;
    bool rope_neox;      /* RoPE rotates (i, i + head_dim/2), not (2i, 2i+1) */
    uint32_t dim;        /* embedding width */
    uint32_t hidden_dim; /* feed-forward width */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t head_dim; /* dim / n_heads */
    uint32_t vocab_size;
    uint32_t seq_len;       /* positions allocated (<= the model's context) */
    uint32_t model_seq_len; /* the model's context length */
    float norm_eps;         /* RMSNorm epsilon (1e-5 for llama2.c) */
    float rope_theta;       /* RoPE base (10000) */
    bool shared_classifier;
    uint32_t bos_id, eos_id; /* 1, 2 unless GGUF metadata says otherwise */
} rt_config;

/* Exact bytes of the arena, by use. total = weights + activations +
 * kv_cache + other, and is what rt_model_init needs. weights counts only
 * weights held in the arena (copied or requantized), not ones read in place
 * from the file. */
typedef struct rt_arena_report {
    size_t weights;
    size_t activations; /* residual, scratch, attention scores, logits, quantized activations */
    size_t kv_cache;
    size_t other; /* the model handle and tables, alignment padding */
    size_t total;
    size_t file_weights; /* weights read in place from the file buffer */
} rt_arena_report;

typedef struct rt_model rt_model;

/* Computes the arena report for the model file held in file[0..len) with
 * opts (NULL = defaults) without touching any arena. Returns 0; -EBADMSG
 * (malformed file, or a model this engine cannot run: wrong architecture,
 * shapes, tensor types), -EINVAL (bad opts), -ENOTSUP (SIMD kernels asked
 * for and absent), -ENOMEM (the arena would not fit in size_t). */
int rt_model_plan(const void *file, size_t len, const rt_model_opts *opts, rt_arena_report *ret);

/* Builds a model in arena[0..arena_size). arena_size must be at least
 * rt_model_plan's total when arena is aligned to RT_ARENA_ALIGN (any
 * malloc'd block is), else total plus the bytes up to the next aligned
 * address (at most RT_ARENA_ALIGN - 1). The file buffer is borrowed: unless opts->copy_weights, it
 * must stay valid and unchanged until the model is no longer used. The arena is owned by the
 * caller; the model needs no destructor in this mode (stop using it and reuse the memory). Returns
 * 0 and *ret; -ENOMEM if arena_size is too small (then, as an exception to the out-parameter rule,
 * *ret_report is written so the caller can say how much is needed); other errors as rt_model_plan.
 * ret_report may be NULL. */
int rt_model_init(const void *file, size_t len, const rt_model_opts *opts, void *arena,
                  size_t arena_size, rt_model **ret, rt_arena_report *ret_report);

/* The model's hyper-parameters; valid while m is. */
const rt_config *rt_model_config(const rt_model *m);

/* The arena report of m. */
const rt_arena_report *rt_model_report(const rt_model *m);

/* Name of the kernel set m uses: "portable", "neon", or on x86 "avx2"
 * with "+vnni" (int8 products on AVX-VNNI) and "+avx512" (F32 products on
 * AVX-512F) where the CPU has them. */
const char *rt_model_kernels(const rt_model *m);

/* True if this CPU has the SIMD kernel set ("avx2" or "neon"). */
bool rt_simd_available(void);

/* One forward pass: feeds token at position pos (0 <= pos < seq_len; the
 * KV cache for positions < pos must hold this sequence's earlier tokens,
 * i.e. call with pos = 0, 1, 2, ...) and returns the vocab_size logits for
 * the next token. The pointer is into the arena, valid until the next call.
 * Returns NULL if token or pos is out of range. Never allocates. */
float *rt_forward(rt_model *m, int token, int pos);

/* Extra states: a model's weights are read-only after init, so several
 * sequences can run on one model, each with its own state (activations and
 * KV cache) in memory the caller gives. rt_forward uses the model's own
 * state; these run others. One state is used by one thread at a time;
 * different states of one model may run in different threads. */
typedef struct rt_state rt_state;

/* Exact bytes rt_state_init needs (for memory aligned to RT_ARENA_ALIGN)
 * for kv_type and seq_len positions (0 = the model's seq_len; at most
 * the model's context). Returns 0, -EINVAL, -ENOMEM (would not fit in
 * size_t). */
int rt_state_plan(const rt_model *m, rt_kv_type kv_type, uint32_t seq_len, size_t *ret);

/* Builds a state in mem[0..size); m must outlive it. Returns 0 and *ret,
 * -ENOMEM if size is too small, -EINVAL. */
int rt_state_init(const rt_model *m, rt_kv_type kv_type, uint32_t seq_len, void *mem, size_t size,
                  rt_state **ret);

/* rt_forward on a state: the same contract (0 <= pos < the state's
 * seq_len), logits valid until the next call on this state. */
float *rt_state_forward(rt_state *s, int token, int pos);

/* ---- threads and batches ----
 *
 * The engine never creates threads (a microcontroller build has none). A
 * caller that has them hands it an rt_parallel (runtime/pool.h makes one
 * from a pthread pool); each matrix product then splits its rows into
 * n_parts contiguous ranges, one per part, and a batch's per-token steps
 * split by token (attention by head). Every output row is still one
 * kernel call, so the logits are bit-identical for any number of parts. */

/* A task part: fn(arg, part, n_parts) does the part-th of n_parts shares. */
typedef void (*rt_task_fn)(void *arg, unsigned part, unsigned n_parts);

typedef struct rt_parallel {
    unsigned n_parts; /* >= 1; 1 runs everything in the caller */
    /* Calls fn(arg, i, n_parts) once for each i in 0..n_parts-1, from any
     * threads, and returns after every call has returned. */
    void (*run)(void *ctx, rt_task_fn fn, void *arg);
    void *ctx;
} rt_parallel;

/* Makes rt_forward / rt_state_forward split matrix products as p says
 * (borrowed: p must stay valid until it is replaced or the state is no
 * longer used; NULL = the calling thread alone, the default). The states
 * sharing a pool must not run at the same time (the pool is one task at a
 * time). Never allocates. */
void rt_model_set_parallel(rt_model *m, const rt_parallel *p);
void rt_state_set_parallel(rt_state *s, const rt_parallel *p);

/* Batched prompt processing: n tokens at positions pos..pos+n-1 go through
 * each layer together, so each weight matrix is read once per batch (a
 * matrix times n vectors) instead of once per token, which is what bounds
 * the speed of a big model. The result (the KV cache, and the logits after
 * the last token) is bit-identical to n calls of rt_state_forward: every
 * (row, token) dot product is the same kernel call. */
enum {
    /* Tokens per batch: 64 reads the weights once for a typical prompt;
     * 32 streamed them twice, 8-16% slower on the 110M model's prompt. */
    RT_BATCH_MAX = 64
};

/* Bytes of scratch a batch of up to n tokens (1..RT_BATCH_MAX) needs, or 0
 * if n is out of range or m is NULL (the activations of n tokens, and a
 * row of attention scores per head as long as the model's context). */
size_t rt_batch_scratch_size(const rt_model *m, size_t n);

/* Feeds tokens[0..n) at positions pos.. (1 <= n <= RT_BATCH_MAX, pos + n
 * <= the state's seq_len; the KV cache below pos must hold this sequence)
 * using scratch[0..size) (aligned to RT_ARENA_ALIGN, size at least
 * rt_batch_scratch_size(n); borrowed for the call only). Writes to
 * *ret_logits the logits for the token after the last one (into the
 * state, valid until the next call on it); ret_logits may be NULL.
 * Returns 0, -EINVAL (a token, position, size or pointer out of range).
 * Never allocates. */
int rt_state_forward_batch(rt_state *s, const int32_t *tokens, size_t n, int pos, void *scratch,
                           size_t size, float **ret_logits);

/* rt_state_forward_batch on the model's own state (that of rt_forward). */
int rt_forward_batch(rt_model *m, const int32_t *tokens, size_t n, int pos, void *scratch,
                     size_t size, float **ret_logits);

#endif
