/* SPDX-License-Identifier: MIT */
/*
 * Model-vs-reference quality; see eval.h. Log-probabilities are computed
 * with a max-shifted log-sum-exp in double, so tiny probabilities do not
 * underflow into infinite KL.
 */
#include "runtime/eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sampler.h"

struct rt_eval {
    uint32_t n_vocab;
    uint64_t cap, n;
    double *kl;      /* [cap] */
    double *lp, *lq; /* [n_vocab] log-probabilities scratch */
    double kl_sum, nll, nll_ref;
    uint64_t top1, n_target;
};

int
rt_eval_new(uint32_t n_vocab, uint64_t max_positions, rt_eval **ret)
{
    if (!ret || n_vocab == 0 || max_positions == 0 || max_positions > SIZE_MAX / sizeof(double))
        return -EINVAL;
    rt_eval *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->n_vocab = n_vocab;
    e->cap = max_positions;
    e->kl = malloc((size_t)max_positions * sizeof(double));
    e->lp = malloc((size_t)n_vocab * sizeof(double));
    e->lq = malloc((size_t)n_vocab * sizeof(double));
    if (!e->kl || !e->lp || !e->lq) {
        rt_eval_free(e);
        return -ENOMEM;
    }
    *ret = e;
    return 0;
}

void
rt_eval_free(rt_eval *e)
{
    if (!e)
        return;
    free(e->kl);
    free(e->lp);
    free(e->lq);
    free(e);
}

/* out = log softmax(x); returns the index of the first maximum. */
static uint32_t
log_softmax(const float *x, uint32_t n, double *out)
{
    uint32_t best = (uint32_t)rt_argmax(x, n);
    double mx = x[best], sum = 0.0;
    for (uint32_t i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    double lse = mx + log(sum);
    for (uint32_t i = 0; i < n; i++)
        out[i] = (double)x[i] - lse;
    return best;
}

int
rt_eval_add(rt_eval *e, const float *ref_logits, const float *logits, int32_t target)
{
    if (!e || !ref_logits || !logits || (target >= 0 && (uint32_t)target >= e->n_vocab))
        return -EINVAL;
    if (e->n == e->cap)
        return -EMSGSIZE;
    uint32_t ap = log_softmax(ref_logits, e->n_vocab, e->lp);
    uint32_t aq = log_softmax(logits, e->n_vocab, e->lq);
    double kl = 0.0;
    for (uint32_t i = 0; i < e->n_vocab; i++)
        kl += exp(e->lp[i]) * (e->lp[i] - e->lq[i]);
    if (kl < 0.0)
        kl = 0.0; /* rounding */
    e->kl[e->n++] = kl;
    e->kl_sum += kl;
    e->top1 += ap == aq;
    if (target >= 0) {
        e->nll -= e->lq[target];
        e->nll_ref -= e->lp[target];
        e->n_target++;
    }
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void
rt_eval_result_get(rt_eval *e, rt_eval_result *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->n = e->n;
    ret->n_target = e->n_target;
    if (e->n == 0)
        return;
    qsort(e->kl, (size_t)e->n, sizeof(double), cmp_double);
    ret->kl_mean = e->kl_sum / (double)e->n;
    /* Nearest rank: the smallest value with at least 99% at or below it. */
    uint64_t rank = (uint64_t)ceil(0.99 * (double)e->n);
    ret->kl_p99 = e->kl[rank ? rank - 1 : 0];
    ret->kl_max = e->kl[e->n - 1];
    ret->top1 = (double)e->top1 / (double)e->n;
    if (e->n_target) {
        ret->ppl = exp(e->nll / (double)e->n_target);
        ret->ppl_ref = exp(e->nll_ref / (double)e->n_target);
    }
}

int
rt_eval_run(rt_model *model, rt_model *ref, const int32_t *tokens, size_t n, int32_t bos,
            rt_eval *e)
{
    if (!model || !ref || !e || (!tokens && n))
        return -EINVAL;
    const rt_config *cm = rt_model_config(model), *cr = rt_model_config(ref);
    if (cm->vocab_size != cr->vocab_size || cm->vocab_size != e->n_vocab)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (tokens[0] != bos)
        return -EINVAL;
    uint32_t seq = cm->seq_len < cr->seq_len ? cm->seq_len : cr->seq_len;
    uint32_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (tokens[i] == bos || pos == seq)) {
            /* A new sequence: starts with the BOS in the stream, or with an
             * inserted one when the context is full. */
            pos = 0;
            if (tokens[i] != bos) {
                float *lr = rt_forward(ref, bos, 0);
                float *lm = rt_forward(model, bos, 0);
                if (!lr || !lm)
                    return -EINVAL;
                int r = rt_eval_add(e, lr, lm, tokens[i]);
                if (r < 0)
                    return r;
                pos = 1;
            }
        }
        float *lr = rt_forward(ref, tokens[i], (int)pos);
        float *lm = rt_forward(model, tokens[i], (int)pos);
        if (!lr || !lm)
            return -EINVAL;
        int32_t target = -1;
        if (i + 1 < n && tokens[i + 1] != bos && pos + 1 < seq)
            target = tokens[i + 1];
        int r = rt_eval_add(e, lr, lm, target);
        if (r < 0)
            return r;
        pos++;
    }
    return 0;
}
