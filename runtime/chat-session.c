/* SPDX-License-Identifier: MIT */
/*
 * Chat sessions; see chat-session.h.
 */
#include "runtime/chat-session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rt_chat_session {
    rt_model *m;
    const rt_tokenizer *tok;
    rt_chat_template t;
    char *system; /* NULL: none */
    size_t system_len;
    char bos[RT_TOK_MAX_PIECE + 1], eos[RT_TOK_MAX_PIECE + 1];
    int32_t stop[RT_CHAT_MAX_STOP_IDS];
    size_t n_stop;
    uint32_t turn;
    uint32_t pos; /* next position to feed */
    int32_t last; /* last token fed (for decoding), -1 at the start */
    bool broken;  /* cache no longer matches the conversation */
};

/* The piece of id as NUL-terminated text ("" when absent). */
static void
piece_str(const rt_tokenizer *tok, int32_t id, char out[static RT_TOK_MAX_PIECE + 1])
{
    const char *p;
    size_t n;
    out[0] = '\0';
    if (id >= 0 && rt_tokenizer_piece(tok, id, &p, &n, NULL, NULL) == 0 && n <= RT_TOK_MAX_PIECE) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
}

static void
add_stop(int32_t *stop, size_t *n, int32_t id)
{
    if (id < 0)
        return;
    for (size_t i = 0; i < *n; i++)
        if (stop[i] == id)
            return;
    if (*n < RT_CHAT_MAX_STOP_IDS)
        stop[(*n)++] = id;
}

/* The id of the control or user-defined token spelled s, or -1: the
 * vocabulary has no reverse map, so encode s and see if it is one token. */
static int32_t
find_special(const rt_tokenizer *tok, const char *s)
{
    size_t len = strlen(s), n = 0, cap = rt_tokenizer_encode_bound(len);
    int32_t *ids = malloc(cap * sizeof(*ids));
    if (!ids)
        return -1;
    int r = rt_tokenizer_encode(tok, s, len, RT_TOK_PARSE_SPECIAL, ids, cap, &n);
    int32_t id = r == 0 && n == 1 ? ids[0] : -1;
    free(ids);
    rt_tok_type type;
    if (id < 0 || rt_tokenizer_piece(tok, id, NULL, NULL, NULL, &type) < 0 ||
        (type != RT_TOK_TYPE_CONTROL && type != RT_TOK_TYPE_USER_DEFINED))
        return -1;
    return id;
}

int
rt_chat_session_new(rt_model *m, const rt_tokenizer *tok, rt_chat_template t, const char *system,
                    size_t system_len, rt_chat_session **ret)
{
    if (!m || !tok || !ret || (unsigned)t >= _RT_CHAT_TEMPLATE_MAX || (!system && system_len))
        return -EINVAL;
    rt_chat_session *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return -ENOMEM;
    cs->m = m;
    cs->tok = tok;
    cs->t = t;
    cs->last = -1;
    if (system) {
        cs->system = malloc(system_len + 1);
        if (!cs->system) {
            free(cs);
            return -ENOMEM;
        }
        memcpy(cs->system, system, system_len);
        cs->system[system_len] = '\0';
        cs->system_len = system_len;
    }
    rt_chat_pieces(tok, cs->bos, cs->eos);
    cs->n_stop = rt_chat_stop_ids(m, tok, t, cs->stop);
    *ret = cs;
    return 0;
}

size_t
rt_chat_stop_ids(const rt_model *m, const rt_tokenizer *tok, rt_chat_template t,
                 int32_t ret[static RT_CHAT_MAX_STOP_IDS])
{
    size_t n = 0;
    const rt_config *cfg = rt_model_config(m);
    add_stop(ret, &n, rt_tokenizer_eos(tok));
    add_stop(ret, &n, rt_tokenizer_bos(tok));
    add_stop(ret, &n, (int32_t)cfg->eos_id);
    add_stop(ret, &n, (int32_t)cfg->bos_id);
    const char *const *stops;
    size_t ns = rt_chat_template_stops(t, &stops);
    for (size_t i = 0; i < ns; i++)
        add_stop(ret, &n, find_special(tok, stops[i]));
    return n;
}

void
rt_chat_pieces(const rt_tokenizer *tok, char bos[static RT_TOK_MAX_PIECE + 1],
               char eos[static RT_TOK_MAX_PIECE + 1])
{
    piece_str(tok, rt_tokenizer_bos(tok), bos);
    piece_str(tok, rt_tokenizer_eos(tok), eos);
}

void
rt_chat_session_free(rt_chat_session *cs)
{
    if (!cs)
        return;
    free(cs->system);
    free(cs);
}

size_t
rt_chat_session_stop_ids(const rt_chat_session *cs, const int32_t **ret)
{
    *ret = cs->stop;
    return cs->n_stop;
}

uint32_t
rt_chat_session_pos(const rt_chat_session *cs)
{
    return cs->pos;
}

uint32_t
rt_chat_session_ctx(const rt_chat_session *cs)
{
    return rt_model_config(cs->m)->seq_len;
}

static bool
is_stop(const rt_chat_session *cs, int32_t id)
{
    for (size_t i = 0; i < cs->n_stop; i++)
        if (cs->stop[i] == id)
            return true;
    return false;
}

/* Tokens of this turn's text into *ret_tok (malloc'd) and *ret_n. */
static int
encode_turn(rt_chat_session *cs, const char *user, size_t len, int32_t **ret_tok, size_t *ret_n)
{
    rt_chat_tokens tk = { cs->bos, cs->eos };
    size_t need = 0;
    int r = rt_chat_render_turn(cs->t, &tk, cs->system, cs->system_len, cs->turn, user, len, NULL,
                                0, &need);
    if (r != -EMSGSIZE)
        return r < 0 ? r : -EINVAL;
    if (need == SIZE_MAX)
        return -ENOMEM;
    char *text = malloc(need + 1);
    int32_t *ids = NULL;
    if (!text)
        return -ENOMEM;
    r = rt_chat_render_turn(cs->t, &tk, cs->system, cs->system_len, cs->turn, user, len, text,
                            need + 1, &need);
    if (r < 0)
        goto out;
    size_t cap = rt_tokenizer_encode_bound(need);
    ids = malloc(cap * sizeof(*ids));
    if (!ids) {
        r = -ENOMEM;
        goto out;
    }
    /* BOS only where the vocabulary asks for one and the template does not
     * write it itself (that would be a double BOS). */
    unsigned flags = RT_TOK_PARSE_SPECIAL;
    if (cs->turn == 0 && !rt_chat_template_writes_bos(cs->t) && rt_tokenizer_add_bos(cs->tok))
        flags |= RT_TOK_ADD_BOS;
    size_t n = 0;
    r = rt_tokenizer_encode(cs->tok, text, need, flags, ids, cap, &n);
    if (r < 0)
        goto out;
    *ret_tok = ids;
    *ret_n = n;
    ids = NULL;
out:
    free(ids);
    free(text);
    return r;
}

int
rt_chat_session_turn(rt_chat_session *cs, rt_sampler *s, const char *user, size_t len,
                     int64_t max_new, rt_emit_fn emit, void *userdata,
                     rt_chat_turn_stats *ret_stats)
{
    if (!cs || !s || (!user && len) || !emit)
        return -EINVAL;
    const rt_config *cfg = rt_model_config(cs->m);
    if (s->n_vocab != cfg->vocab_size || rt_tokenizer_n_vocab(cs->tok) > cfg->vocab_size)
        return -EINVAL;
    rt_chat_turn_stats st = { .pos_start = cs->pos, .stop_token = -1 };
    if (cs->broken) {
        if (ret_stats)
            *ret_stats = st;
        return -EMSGSIZE;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int r = encode_turn(cs, user, len, &ids, &n);
    if (r < 0)
        return r;
    st.n_prompt = (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX);
    /* The turn and at least one reply token must fit. */
    if (n == 0 || n >= cfg->seq_len - cs->pos) {
        r = n == 0 ? -EINVAL : -EMSGSIZE;
        goto out;
    }
    float *logits = NULL;
    for (size_t i = 0; i < n; i++) {
        logits = rt_forward(cs->m, ids[i], (int)cs->pos);
        if (!logits) {
            r = -EINVAL;
            cs->broken = true;
            goto out;
        }
        cs->pos++;
        cs->last = ids[i];
    }
    cs->turn++;
    for (;;) {
        if (max_new >= 0 && st.n_generated >= (uint64_t)max_new)
            break; /* cut short: the next turn's close still ends it */
        int32_t next = rt_sampler_sample(s, logits);
        st.n_generated++;
        if (is_stop(cs, next)) {
            st.stop_token = next;
            break;
        }
        const char *piece = "";
        size_t plen = 0;
        if ((uint32_t)next < rt_tokenizer_n_vocab(cs->tok) &&
            (r = rt_tokenizer_decode(cs->tok, cs->last, next, &piece, &plen)) < 0)
            goto fail;
        r = emit(userdata, next, piece, plen);
        if (r < 0)
            goto fail;
        /* Feed the reply token, so that the cache holds the whole reply. */
        if (cs->pos >= cfg->seq_len) {
            st.context_full = true;
            cs->broken = true;
            break;
        }
        logits = rt_forward(cs->m, next, (int)cs->pos);
        if (!logits) {
            r = -EINVAL;
            goto fail;
        }
        cs->pos++;
        cs->last = next;
        if (r > 0)
            break;
    }
    r = 0;
    goto out;
fail:
    cs->broken = true;
out:
    if (ret_stats && (r >= 0 || r == -EMSGSIZE))
        *ret_stats = st;
    free(ids);
    return r;
}
