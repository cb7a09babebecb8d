/* SPDX-License-Identifier: MIT */
/*
 * Loading a tokenizer from GGUF metadata (tokenizer.ggml.*); see
 * tokenizer.h. Two models:
 *
 *   "llama": SentencePiece. tokens ("▁" for spaces), scores, token_type;
 *            add_space_prefix (default true), add_bos_token (default true).
 *   "gpt2":  byte-level BPE. tokens in the GPT-2 byte alphabet,
 *            token_type, merges ("A B", rank = index), pre (the
 *            pre-tokenizer); add_bos_token (default false).
 *
 * Every array and id is checked against the token count before use; the
 * GGUF parser has already bounded every string and array by the buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/tok-bpe.h"
#include "runtime/tok-internal.h"
#include "runtime/tok-pretok.h"
#include "runtime/tokenizer.h"

typedef enum kind {
    KIND_SPM,
    KIND_BPE
} kind;

static bool
str_is(const char *s, uint64_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Reads tokenizer.ggml.model (and .pre for BPE). On -ENOTSUP names the
 * key and its value (pointers into the buffer). */
static int
model_of(const rt_gguf *g, kind *ret_kind, rt_pretok *ret_pre, const char **ret_key,
         const char **ret_val, uint64_t *ret_vlen)
{
    const char *v;
    uint64_t vl;
    int r = rt_gguf_get_str(g, "tokenizer.ggml.model", &v, &vl);
    if (r == -ENOENT)
        return -ENOENT;
    if (r < 0)
        return -EBADMSG;
    *ret_key = "tokenizer.ggml.model";
    *ret_val = v;
    *ret_vlen = vl;
    if (str_is(v, vl, "llama")) {
        *ret_kind = KIND_SPM;
        return 0;
    }
    if (!str_is(v, vl, "gpt2"))
        return -ENOTSUP;
    *ret_kind = KIND_BPE;
    *ret_key = "tokenizer.ggml.pre";
    r = rt_gguf_get_str(g, "tokenizer.ggml.pre", &v, &vl);
    if (r == -ENOENT) {
        /* llama.cpp guesses a default expression; we refuse to guess. */
        *ret_val = "(absent)";
        *ret_vlen = 8;
        return -ENOTSUP;
    }
    if (r < 0)
        return -EBADMSG;
    *ret_val = v;
    *ret_vlen = vl;
    return rt_pretok_from_name(v, (size_t)vl, ret_pre);
}

int
rt_tokenizer_gguf_unsupported(const void *buf, size_t len, const char **ret_key,
                              const char **ret_val, size_t *ret_val_len)
{
    if (!buf || !ret_key || !ret_val || !ret_val_len)
        return -EINVAL;
    rt_gguf g;
    int r = rt_gguf_parse(buf, len, len, &g, NULL);
    if (r < 0)
        return -ENOENT;
    kind k;
    rt_pretok pre;
    const char *key, *val;
    uint64_t vl;
    if (model_of(&g, &k, &pre, &key, &val, &vl) != -ENOTSUP)
        return -ENOENT;
    *ret_key = key;
    *ret_val = val;
    *ret_val_len = (size_t)vl;
    return 0;
}

static int
gguf_id(const rt_gguf *g, const char *key, int32_t def, uint32_t n, int32_t *ret)
{
    uint32_t v;
    int r = rt_gguf_get_u32(g, key, &v);
    if (r == -ENOENT) {
        *ret = def < (int32_t)n ? def : -1;
        return 0;
    }
    if (r < 0)
        return -EBADMSG;
    /* UINT32_MAX is how converters spell "none". */
    *ret = v < n ? (int32_t)v : -1;
    return 0;
}

/* A boolean key, def when absent. */
static int
gguf_bool(const rt_gguf *g, const char *key, bool def, bool *ret)
{
    rt_gguf_value v;
    if (rt_gguf_get(g, key, &v) < 0) {
        *ret = def;
        return 0;
    }
    if (v.type != RT_GGUF_BOOL)
        return -EBADMSG;
    *ret = v.u != 0;
    return 0;
}

/* Resolves tokenizer.ggml.merges to token ids. A merge naming a string
 * that is no token can never apply to the token symbols the merge loop
 * holds; it is skipped, so a sloppy converter's file still loads. */
static int
load_merges(const rt_gguf *g, rt_tokenizer *t, rt_pretok pre, rt__bpe **ret)
{
    rt_gguf_value arr;
    if (rt_gguf_get_arr(g, "tokenizer.ggml.merges", RT_GGUF_STRING, &arr) < 0)
        return -EBADMSG;
    if (arr.count > RT_BPE_MAX_MERGES)
        return -EMSGSIZE;
    uint32_t n_vocab = rt_tokenizer_n_vocab(t);
    rt__bpe *b = NULL;
    int r = rt__bpe_new(pre, (uint32_t)arr.count, n_vocab, &b);
    if (r < 0)
        return r;
    uint64_t cur = 0;
    for (uint32_t rank = 0; rank < arr.count; rank++) {
        const char *m;
        uint64_t ml;
        r = -EBADMSG;
        if (rt_gguf_arr_str_next(&arr, &cur, &m, &ml) != 1)
            goto fail;
        /* "A B": the first space after the first byte separates the two
         * sides (a side never holds a space: it is spelled "Ġ"). */
        const char *sp = ml > 1 ? memchr(m + 1, ' ', (size_t)ml - 1) : NULL;
        if (!sp || ml - 1 > 2 * (uint64_t)RT_TOK_MAX_PIECE)
            continue;
        size_t al = (size_t)(sp - m), bl = (size_t)ml - al - 1;
        char cat[2 * RT_TOK_MAX_PIECE];
        memcpy(cat, m, al);
        memcpy(cat + al, sp + 1, bl);
        int32_t left = rt__tokenizer_lookup(t, m, al);
        int32_t right = rt__tokenizer_lookup(t, sp + 1, bl);
        int32_t res = rt__tokenizer_lookup(t, cat, al + bl);
        if (left < 0 || right < 0 || res < 0)
            continue;
        r = rt__bpe_add_merge(b, left, right, res, rank);
        if (r < 0)
            goto fail;
    }
    for (uint32_t id = 0; id < n_vocab; id++) {
        const char *p;
        size_t pl;
        r = rt_tokenizer_piece(t, (int32_t)id, &p, &pl, NULL, NULL);
        if (r >= 0)
            r = rt__bpe_set_piece(b, id, p, pl);
        if (r < 0)
            goto fail;
    }
    *ret = b;
    return 0;
fail:
    rt__bpe_free(b);
    return r;
}

/* Whether p[0..n) is spelled <0xXX>, a SentencePiece byte token. */
static bool
is_byte_piece(const char *p, uint64_t n)
{
    static const char hex[] = "0123456789ABCDEFabcdef";
    return n == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>' && p[3] && p[4] && strchr(hex, p[3]) &&
           strchr(hex, p[4]);
}

/* Fills the pieces of a new tokenizer from the token arrays. */
static int
load_pieces(const rt_gguf *g, rt_tokenizer *t, kind k, int32_t bos, int32_t eos)
{
    rt_gguf_value toks, scores, types;
    if (rt_gguf_get_arr(g, "tokenizer.ggml.tokens", RT_GGUF_STRING, &toks) < 0)
        return -EBADMSG;
    bool has_scores = rt_gguf_get_arr(g, "tokenizer.ggml.scores", RT_GGUF_F32, &scores) == 0;
    bool has_types = rt_gguf_get_arr(g, "tokenizer.ggml.token_type", RT_GGUF_I32, &types) == 0;
    uint32_t n = rt_tokenizer_n_vocab(t);
    uint64_t cur = 0;
    for (uint32_t id = 0; id < n; id++) {
        const char *p;
        uint64_t pl;
        if (rt_gguf_arr_str_next(&toks, &cur, &p, &pl) != 1 || pl > RT_TOK_MAX_PIECE)
            return -EBADMSG;
        float score = has_scores ? rt_gguf_arr_f32(&scores, id) : 0.0f;
        int64_t ty = has_types ? rt_gguf_arr_i64(&types, id) : RT_TOK_TYPE_NORMAL;
        if (ty < 0 || ty >= _RT_TOK_TYPE_MAX)
            return -EBADMSG;
        if (!has_types && k == KIND_SPM && is_byte_piece(p, pl))
            ty = RT_TOK_TYPE_BYTE;
        if (!has_types && (id == (uint32_t)bos || id == (uint32_t)eos))
            ty = RT_TOK_TYPE_CONTROL;
        int r = rt_tokenizer_set(t, id, p, (size_t)pl, score, (rt_tok_type)ty, k == KIND_SPM);
        if (r < 0)
            return r == -EINVAL ? -EBADMSG : r;
    }
    return 0;
}

int
rt_tokenizer_load_gguf(const void *buf, size_t len, rt_tokenizer **ret)
{
    if (!buf || !ret)
        return -EINVAL;
    rt_gguf g;
    int r = rt_gguf_parse(buf, len, len, &g, NULL);
    if (r < 0)
        return r == -EAGAIN ? -EBADMSG : r;
    kind k;
    rt_pretok pre = RT_PRETOK_GPT2;
    const char *key, *val;
    uint64_t vl;
    r = model_of(&g, &k, &pre, &key, &val, &vl);
    if (r < 0)
        return r;
    rt_gguf_value toks, scores, types;
    if (rt_gguf_get_arr(&g, "tokenizer.ggml.tokens", RT_GGUF_STRING, &toks) < 0)
        return -EBADMSG;
    bool has_scores = rt_gguf_get_arr(&g, "tokenizer.ggml.scores", RT_GGUF_F32, &scores) == 0;
    bool has_types = rt_gguf_get_arr(&g, "tokenizer.ggml.token_type", RT_GGUF_I32, &types) == 0;
    if (toks.count == 0 || (has_scores && scores.count != toks.count) ||
        (has_types && types.count != toks.count))
        return -EBADMSG;
    if (toks.count > RT_TOK_MAX_VOCAB)
        return -EMSGSIZE;
    uint32_t n = (uint32_t)toks.count;
    /* SentencePiece ids default to Llama's; BPE vocabularies name theirs. */
    bool spm = k == KIND_SPM;
    int32_t bos, eos, unk;
    bool space_prefix, add_bos;
    if (gguf_id(&g, "tokenizer.ggml.bos_token_id", spm ? RT_TOK_BOS_DEFAULT : -1, n, &bos) < 0 ||
        gguf_id(&g, "tokenizer.ggml.eos_token_id", spm ? RT_TOK_EOS_DEFAULT : -1, n, &eos) < 0 ||
        gguf_id(&g, "tokenizer.ggml.unknown_token_id", spm ? RT_TOK_UNK_DEFAULT : -1, n, &unk) <
            0 ||
        bos < 0 || gguf_bool(&g, "tokenizer.ggml.add_space_prefix", spm, &space_prefix) < 0 ||
        gguf_bool(&g, "tokenizer.ggml.add_bos_token", spm, &add_bos) < 0)
        return -EBADMSG;
    rt_tokenizer *t = NULL;
    rt__bpe *b = NULL;
    r = rt_tokenizer_new(n, &t);
    if (r < 0)
        return r;
    r = load_pieces(&g, t, k, bos, eos);
    if (r < 0)
        goto fail;
    r = rt_tokenizer_set_special(t, bos, eos, unk);
    if (r >= 0)
        r = rt_tokenizer_finish(t);
    if (r < 0) {
        r = r == -EINVAL ? -EBADMSG : r;
        goto fail;
    }
    rt__tokenizer_set_mode(t, space_prefix, add_bos);
    if (k == KIND_BPE) {
        r = load_merges(&g, t, pre, &b);
        if (r < 0)
            goto fail;
        rt__tokenizer_set_bpe(t, b);
    }
    *ret = t;
    return 0;
fail:
    rt_tokenizer_free(t);
    return r;
}
