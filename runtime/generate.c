/* SPDX-License-Identifier: MIT */
/*
 * Generation loop; see generate.h.
 */
#include "runtime/generate.h"

#include <errno.h>
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
