/* SPDX-License-Identifier: MIT */
/*
 * Sampling; see sampler.h. The top-p step sorts candidates with a comparator
 * that breaks ties by token id, so qsort's instability cannot make two
 * platforms disagree.
 */
#include "runtime/sampler.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct prob_index {
    float prob;
    int32_t index;
} prob_index;

size_t
rt_sampler_scratch_size(uint32_t n_vocab)
{
    return (size_t)n_vocab * sizeof(prob_index);
}

int
rt_sampler_init(rt_sampler *s, uint32_t n_vocab, float temperature, float top_p, uint64_t seed,
                void *scratch, size_t scratch_len)
{
    if (!s || n_vocab == 0 || n_vocab > RT_SAMPLER_MAX_VOCAB || !isfinite(temperature) ||
        temperature < 0.0f || !(top_p > 0.0f))
        return -EINVAL;
    bool need = temperature > 0.0f && top_p < 1.0f;
    if (need && (!scratch || scratch_len < rt_sampler_scratch_size(n_vocab)))
        return -EINVAL;
    *s = (rt_sampler){ .n_vocab = n_vocab,
                       .temperature = temperature,
                       .top_p = top_p,
                       .scratch = scratch,
                       .scratch_len = scratch_len };
    /* splitmix64 spreads small seeds over the whole state; 0 is not a valid
     * xorshift state. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    s->rng = z ? z : 0x2545F4914F6CDD1Dull;
    return 0;
}

static uint32_t
next_u32(rt_sampler *s)
{
    /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (uint32_t)((s->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

float
rt_sampler_random(rt_sampler *s)
{
    return (float)(next_u32(s) >> 8) / 16777216.0f;
}

int32_t
rt_argmax(const float *x, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = (int32_t)i;
    return best;
}

void
rt_softmax(float *x, uint32_t n)
{
    if (n == 0)
        return;
    float max = x[0];
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (uint32_t i = 0; i < n; i++)
        x[i] *= inv;
}

/* Samples an index from probabilities p[0..n) (summing to about 1) with the
 * uniform coin in [0, 1); falls back to the last index on rounding. */
static int32_t
sample_mult(const float *p, uint32_t n, float coin)
{
    float cdf = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf)
            return (int32_t)i;
    }
    return (int32_t)n - 1;
}

static int
cmp_desc(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Nucleus sampling: the smallest set of most likely tokens whose mass
 * exceeds top_p, renormalised. Candidates below (1 - top_p) / (n - 1) cannot
 * be in that set, so they are dropped before sorting. */
static int32_t
sample_topp(rt_sampler *s, const float *p, float coin)
{
    prob_index *pi = s->scratch;
    uint32_t n = s->n_vocab, m = 0;
    float cutoff = n > 1 ? (1.0f - s->top_p) / (float)(n - 1) : 0.0f;
    for (uint32_t i = 0; i < n; i++)
        if (p[i] >= cutoff)
            pi[m++] = (prob_index){ p[i], (int32_t)i };
    if (m == 0)
        return rt_argmax(p, n);
    qsort(pi, m, sizeof(*pi), cmp_desc);
    float cum = 0.0f;
    uint32_t last = m - 1;
    for (uint32_t i = 0; i < m; i++) {
        cum += pi[i].prob;
        if (cum > s->top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (uint32_t i = 0; i <= last; i++) {
        cdf += pi[i].prob;
        if (r < cdf)
            return pi[i].index;
    }
    return pi[last].index;
}

int32_t
rt_sampler_sample(rt_sampler *s, float *logits)
{
    if (s->temperature == 0.0f)
        return rt_argmax(logits, s->n_vocab);
    for (uint32_t i = 0; i < s->n_vocab; i++)
        logits[i] /= s->temperature;
    rt_softmax(logits, s->n_vocab);
    float coin = rt_sampler_random(s);
    if (s->top_p >= 1.0f)
        return sample_mult(logits, s->n_vocab, coin);
    return sample_topp(s, logits, coin);
}
