/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_GENERATE_H
#define NVX_RUNTIME_GENERATE_H
/*
 * Text generation: prompt -> streamed tokens, as llama2.c's generate() and
 * ../shared/models/reference.md define it. The prompt is encoded with BOS;
 * forward passes run at positions 0, 1, 2, ...; while the position is inside
 * the prompt the next token is the prompt's (teacher forcing), after it the
 * sampler picks it. Every next token (prompt tokens included) is handed to
 * the callback with its decoded bytes. Generation stops when the next token
 * is BOS or EOS (not emitted), after the last position of the context, or
 * after max_new sampled tokens.
 *
 * Allocates only the prompt's token array and the scratch of its batches
 * (the prompt runs RT_BATCH_MAX tokens per pass); rt_forward never
 * allocates.
 * No clocks: callers time the callbacks themselves.
 */
#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"

/* Called for each token; piece[0..len) are its bytes (pointer into the
 * tokenizer). Return 0 to go on, > 0 to stop cleanly, < 0 to abort with
 * that error. */
typedef int (*rt_emit_fn)(void *userdata, int32_t token, const char *piece, size_t len);

typedef struct rt_generate_opts {
    int64_t max_new; /* cap on sampled tokens; < 0: none (run to the context end) */
} rt_generate_opts;
#define RT_GENERATE_OPTS_INIT \
    {                         \
        -1                    \
    }

typedef struct rt_generate_stats {
    uint32_t n_prompt;    /* prompt tokens including BOS */
    uint32_t n_forward;   /* forward passes run */
    uint32_t n_generated; /* tokens chosen by the sampler (emitted or stopping) */
    int32_t stop_token;   /* BOS/EOS that stopped it, or -1 */
    uint32_t n_cached;    /* prompt tokens not fed: the cache held them (rt_generate_tokens) */
} rt_generate_stats;

/* Runs generation on m (whose KV cache is overwritten from position 0).
 * prompt[0..prompt_len) is any bytes (may be empty). The tokenizer's
 * vocabulary must match the model's (n_vocab <= vocab_size).
 * Returns 0 and fills *ret_stats (may be NULL); -EMSGSIZE if the prompt
 * is longer than the context (stats still give n_prompt); -EINVAL (bad
 * arguments, vocabulary larger than the model's); the callback's negative
 * value; -ENOMEM. */
int rt_generate(rt_model *m, const rt_tokenizer *tok, rt_sampler *s, const char *prompt,
                size_t prompt_len, const rt_generate_opts *opts, rt_emit_fn emit, void *userdata,
                rt_generate_stats *ret_stats);

/* Generation over tokens the caller encoded, reusing the KV cache: the
 * model's cache already holds toks[0..n_cached) at positions 0.. (from an
 * earlier call on the same model and state), so only toks[n_cached..n) are
 * fed (in batches) before sampling starts. This is how a server continues
 * a conversation without processing it again. */
typedef struct rt_generate_tokens_opts {
    int64_t max_new;         /* cap on sampled tokens; < 0: up to the context end */
    size_t n_cached;         /* leading tokens already in the cache (clamped to n - 1) */
    const int32_t *stop_ids; /* extra end tokens besides BOS and EOS (not emitted) */
    size_t n_stop_ids;
} rt_generate_tokens_opts;

/* Feeds toks[n_cached..n) (1 <= n <= the context) and samples as
 * rt_generate does, calling emit for each sampled token only (the prompt
 * is not echoed). Each sampled token that is fed back to the model is
 * appended to toks (capacity cap >= the model's seq_len). *ret_valid (may be
 * NULL) receives, on every return, how many leading tokens of toks the
 * cache now holds: the next call may pass them as n_cached.
 * Returns 0 and *ret_stats (n_prompt = n); -EMSGSIZE if n is over the
 * context; -EINVAL; emit's negative value; -ENOMEM. */
int rt_generate_tokens(rt_model *m, const rt_tokenizer *tok, rt_sampler *s, int32_t *toks, size_t n,
                       size_t cap, const rt_generate_tokens_opts *opts, rt_emit_fn emit,
                       void *userdata, rt_generate_stats *ret_stats, size_t *ret_valid);

#endif
