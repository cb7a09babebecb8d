/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_SAMPLER_H
#define NVX_RUNTIME_SAMPLER_H
/*
 * Next-token sampling from logits: greedy (temperature 0), temperature, and
 * top-p (nucleus) sampling, driven by the sampler's own 64-bit PRNG
 * (xorshift64*), so a seed gives the same tokens on every platform and libc.
 *
 * No allocation: the caller embeds an rt_sampler and, for top-p, hands it a
 * scratch block of rt_sampler_scratch_size(n_vocab) bytes that it keeps alive
 * as long as the sampler. One sampler is used by one thread at a time.
 */
#include <stddef.h>
#include <stdint.h>

enum {
    RT_SAMPLER_MAX_VOCAB = 1 << 20,
};

typedef struct rt_sampler {
    uint32_t n_vocab;
    float temperature; /* 0: greedy */
    float top_p;       /* in (0, 1]; 1 or more: plain temperature sampling */
    uint64_t rng;      /* never 0 */
    void *scratch;     /* borrowed; n_vocab (prob, index) pairs for top-p */
    size_t scratch_len;
} rt_sampler;

/* Bytes of scratch that top-p sampling over n_vocab tokens needs. */
size_t rt_sampler_scratch_size(uint32_t n_vocab);

/* Sets up s. temperature >= 0 and finite; top_p in (0, 1] (values > 1 act as
 * 1); scratch may be NULL unless 0 < top_p < 1 and temperature > 0, then it
 * must be at least rt_sampler_scratch_size(n_vocab) bytes and suitably aligned
 * for float (malloc'd memory is). The same seed gives the same sequence.
 * Returns 0 or -EINVAL. */
int rt_sampler_init(rt_sampler *s, uint32_t n_vocab, float temperature, float top_p, uint64_t seed,
                    void *scratch, size_t scratch_len);

/* Picks the next token from logits[0..n_vocab). Greedy returns the first
 * index of the maximum. Otherwise logits are divided by the temperature and
 * turned into probabilities IN PLACE (logits is clobbered). Returns the token
 * id (>= 0). */
int32_t rt_sampler_sample(rt_sampler *s, float *logits);

/* Uniform float in [0, 1) from the sampler's PRNG (advances it). */
float rt_sampler_random(rt_sampler *s);

/* Index of the first maximum of x[0..n); 0 when n is 0. */
int32_t rt_argmax(const float *x, uint32_t n);

/* In-place numerically stable softmax of x[0..n). */
void rt_softmax(float *x, uint32_t n);

#endif
