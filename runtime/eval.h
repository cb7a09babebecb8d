/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_EVAL_H
#define NVX_RUNTIME_EVAL_H
/*
 * Quality of a model against a reference model on the same tokens
 * (teacher forcing): per position the next-token distributions P (reference)
 * and Q (model) are compared.
 *
 *   KL(P || Q) = sum_i P_i (log P_i - log Q_i)   (nats), mean and 99th
 *                percentile (nearest rank) over positions
 *   top-1 agreement = fraction of positions where argmax P == argmax Q
 *   perplexity = exp(mean -log Q(next token)) over positions whose next
 *                token is known (and the same for P)
 *
 * rt_eval_run feeds a token stream through both models: the stream is cut
 * into sequences, each starting at position 0 with BOS; a sequence ends at
 * the model's context length or at the next BOS in the stream.
 */
#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"

typedef struct rt_eval rt_eval;

typedef struct rt_eval_result {
    uint64_t n;     /* positions compared */
    double kl_mean; /* nats */
    double kl_p99;
    double kl_max;
    double top1;       /* in [0, 1] */
    uint64_t n_target; /* positions with a known next token */
    double ppl;        /* model */
    double ppl_ref;    /* reference */
} rt_eval_result;

/* An accumulator for up to max_positions positions over n_vocab tokens
 * (the p99 needs every KL value kept). Returns 0, -EINVAL, -ENOMEM. */
int rt_eval_new(uint32_t n_vocab, uint64_t max_positions, rt_eval **ret);
void rt_eval_free(rt_eval *e);

/* Adds one position: logits of the reference and of the model (not
 * modified), target = the known next token or -1. Returns 0, -EMSGSIZE
 * when max_positions are already in. */
int rt_eval_add(rt_eval *e, const float *ref_logits, const float *logits, int32_t target);

/* The summary so far (sorts the KL values kept; e stays usable). */
void rt_eval_result_get(rt_eval *e, rt_eval_result *ret);

/* Teacher-forces tokens[0..n) through model and ref (same vocabulary size)
 * and adds every position to e. tokens[0] must be bos. A position's
 * target is the next token of its sequence (-1 at a sequence's end).
 * Returns 0, -EINVAL (vocabulary sizes differ, bad token), -EMSGSIZE. */
int rt_eval_run(rt_model *model, rt_model *ref, const int32_t *tokens, size_t n, int32_t bos,
                rt_eval *e);

#endif
