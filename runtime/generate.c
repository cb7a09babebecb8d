/* SPDX-License-Identifier: MIT */
/*
 * Generation loop; see generate.h.
 */
#include "runtime/generate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

int
rt_generate(rt_model *m, const rt_tokenizer *tok, rt_sampler *s, const char *prompt,
            size_t prompt_len, const rt_generate_opts *opts, rt_emit_fn emit, void *userdata,
            rt_generate_stats *ret_stats)
{
    if (!m || !tok || !s || (!prompt && prompt_len) || !emit)
        return -EINVAL;
    const rt_config *cfg = rt_model_config(m);
    if (rt_tokenizer_n_vocab(tok) > cfg->vocab_size || s->n_vocab != cfg->vocab_size)
        return -EINVAL;
    int64_t max_new = opts ? opts->max_new : -1;
    rt_generate_stats st = { .stop_token = -1 };
    size_t cap = rt_tokenizer_encode_bound(prompt_len), n = 0;
    int32_t *ptok = malloc(cap * sizeof(*ptok));
    void *scratch = NULL;
    if (!ptok)
        return -ENOMEM;
    /* BOS as the vocabulary asks (Qwen2-style BPE files add none). */
    unsigned flags = rt_tokenizer_add_bos(tok) ? RT_TOK_ADD_BOS : 0;
    int r = rt_tokenizer_encode(tok, prompt, prompt_len, flags, ptok, cap, &n);
    if (r < 0)
        goto out;
    if (n == 0) {
        /* An empty prompt without BOS: the model needs one token to
         * condition on, and BOS is the neutral one (cap >= 3). */
        ptok[0] = rt_tokenizer_bos(tok);
        n = 1;
    }
    st.n_prompt = (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX);
    if (n > cfg->seq_len) {
        r = -EMSGSIZE;
        goto out;
    }
    /* Positions 0 .. steps-1: the prompt's n-1 forced steps, then max_new. */
    uint64_t steps = cfg->seq_len;
    if (max_new >= 0 && (uint64_t)max_new + (n - 1) < steps)
        steps = (uint64_t)max_new + (n - 1);
    int32_t bos = rt_tokenizer_bos(tok), eos = rt_tokenizer_eos(tok);
    /* The prompt goes through in batches (each weight matrix read once per
     * batch); the logits are bit-identical to one token at a time. */
    size_t nbatch = n < RT_BATCH_MAX ? n : RT_BATCH_MAX;
    size_t scratch_size = n > 1 ? rt_batch_scratch_size(m, nbatch) : 0;
    if (scratch_size) {
        scratch = aligned_alloc(RT_ARENA_ALIGN, (scratch_size + RT_ARENA_ALIGN - 1) /
                                                    RT_ARENA_ALIGN * RT_ARENA_ALIGN);
        if (!scratch) {
            r = -ENOMEM;
            goto out;
        }
    }
    int32_t token = ptok[0];
    for (uint64_t pos = 0; pos < steps;) {
        /* Positions pos .. pos + k - 1 in one pass: the prompt's tokens
         * (their successors are known), or one sampled token. */
        uint64_t k = 1;
        float *logits = NULL;
        if (pos + 1 < n && scratch) {
            k = n - pos < steps - pos ? n - pos : steps - pos;
            k = k < nbatch ? k : nbatch;
            r = rt_forward_batch(m, ptok + pos, (size_t)k, (int)pos, scratch, scratch_size,
                                 &logits);
            if (r < 0)
                goto out;
        } else if (!(logits = rt_forward(m, token, (int)pos))) {
            r = -EINVAL;
            goto out;
        }
        for (uint64_t end = pos + k; pos < end; pos++) {
            st.n_forward++;
            int32_t next;
            if (pos + 1 < n) {
                next = ptok[pos + 1];
            } else {
                next = rt_sampler_sample(s, logits); /* pos is the pass's last */
                st.n_generated++;
            }
            if (next == bos || next == eos || (uint32_t)next == cfg->bos_id ||
                (uint32_t)next == cfg->eos_id) {
                st.stop_token = next;
                r = 0;
                goto out;
            }
            const char *piece = "";
            size_t len = 0;
            if ((uint32_t)next < rt_tokenizer_n_vocab(tok)) {
                r = rt_tokenizer_decode(tok, token, next, &piece, &len);
                if (r < 0)
                    goto out;
            }
            r = emit(userdata, next, piece, len);
            if (r != 0) {
                r = r > 0 ? 0 : r;
                goto out;
            }
            token = next;
        }
    }
    r = 0;
out:
    if (ret_stats && (r >= 0 || r == -EMSGSIZE))
        *ret_stats = st;
    free(scratch);
    free(ptok);
    return r;
}

static bool
is_end(const rt_tokenizer *tok, const rt_config *cfg, const rt_generate_tokens_opts *o, int32_t id)
{
    if (id == rt_tokenizer_bos(tok) || id == rt_tokenizer_eos(tok) || (uint32_t)id == cfg->bos_id ||
        (uint32_t)id == cfg->eos_id)
        return true;
    for (size_t i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids[i] == id)
            return true;
    return false;
}

int
rt_generate_tokens(rt_model *m, const rt_tokenizer *tok, rt_sampler *s, int32_t *toks, size_t n,
                   size_t cap, const rt_generate_tokens_opts *opts, rt_emit_fn emit, void *userdata,
                   rt_generate_stats *ret_stats, size_t *ret_valid)
{
    size_t pos = 0; /* positions the cache holds for toks[0..pos) */
    int r = -EINVAL;
    void *scratch = NULL;
    rt_generate_stats st = { .stop_token = -1 };
    if (!m || !tok || !s || !toks || !opts || !emit || n == 0 || cap < n ||
        (!opts->stop_ids && opts->n_stop_ids))
        goto out;
    const rt_config *cfg = rt_model_config(m);
    if (rt_tokenizer_n_vocab(tok) > cfg->vocab_size || s->n_vocab != cfg->vocab_size)
        goto out;
    st.n_prompt = (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX);
    if (n > cfg->seq_len) {
        r = -EMSGSIZE;
        goto out;
    }
    /* The cached prefix is trusted as the caller's record of what it fed;
     * at least the last prompt token is fed again for its logits. */
    pos = opts->n_cached < n ? opts->n_cached : n - 1;
    st.n_cached = (uint32_t)pos;
    size_t nbatch = n - pos < RT_BATCH_MAX ? n - pos : RT_BATCH_MAX;
    size_t scratch_size = rt_batch_scratch_size(m, nbatch);
    scratch = aligned_alloc(RT_ARENA_ALIGN,
                            (scratch_size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    if (!scratch) {
        r = -ENOMEM;
        goto out;
    }
    float *logits = NULL;
    while (pos < n) {
        size_t k = n - pos < nbatch ? n - pos : nbatch;
        r = rt_forward_batch(m, toks + pos, k, (int)pos, scratch, scratch_size, &logits);
        if (r < 0)
            goto out;
        pos += k;
        st.n_forward += (uint32_t)k;
    }
    int32_t prev = toks[n - 1];
    int64_t max_new = opts->max_new;
    for (;;) {
        if (max_new >= 0 && st.n_generated >= (uint64_t)max_new)
            break;
        int32_t next = rt_sampler_sample(s, logits);
        st.n_generated++;
        if (is_end(tok, cfg, opts, next)) {
            st.stop_token = next;
            break;
        }
        const char *piece = "";
        size_t len = 0;
        if ((uint32_t)next < rt_tokenizer_n_vocab(tok) &&
            (r = rt_tokenizer_decode(tok, prev, next, &piece, &len)) < 0)
            goto out;
        r = emit(userdata, next, piece, len);
        if (r != 0)
            break;
        /* Feed it (so the cache holds the reply for the next call) unless
         * nothing more will be sampled. */
        if ((max_new >= 0 && st.n_generated >= (uint64_t)max_new) || pos >= cfg->seq_len ||
            pos >= cap)
            break;
        toks[pos] = next;
        if (!(logits = rt_forward(m, next, (int)pos))) {
            r = -EINVAL;
            goto out;
        }
        pos++;
        st.n_forward++;
        prev = next;
    }
    r = r > 0 ? 0 : r;
out:
    if (ret_stats && (r >= 0 || r == -EMSGSIZE))
        *ret_stats = st;
    if (ret_valid)
        *ret_valid = pos;
    free(scratch);
    return r;
}
