/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_CHAT_SESSION_H
#define NVX_RUNTIME_CHAT_SESSION_H
/*
 * A chat over one model that keeps the KV cache across turns: each turn
 * feeds only its own text (rt_chat_render_turn: the close of the previous
 * reply, the user message, the assistant header) at the positions after
 * everything fed before, then samples the reply until an end-of-turn
 * token, the per-turn cap or the end of the context. The earlier turns are
 * never processed again.
 *
 * End-of-turn tokens: the vocabulary's BOS and EOS (and the model's), and
 * each of the template's stop strings (chat.h) that the vocabulary holds
 * as one token. The token that ends a reply is not fed: the next turn's
 * text starts with the template's close, which spells it.
 *
 * A session uses the model's own state (rt_forward): one session per model
 * at a time, one thread at a time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/chat.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"

enum {
    RT_CHAT_MAX_STOP_IDS = RT_CHAT_MAX_STOP + 4,
};

typedef struct rt_chat_session rt_chat_session;

/* What one turn did. */
typedef struct rt_chat_turn_stats {
    uint32_t pos_start;   /* position of the turn's first fed token */
    uint32_t n_prompt;    /* tokens of the turn's text fed (only the new turn) */
    uint32_t n_generated; /* tokens sampled (emitted, or the stop token) */
    int32_t stop_token;   /* end-of-turn token that ended the reply, or -1 */
    bool context_full;    /* the reply ran to the end of the context */
} rt_chat_turn_stats;

/* The end-of-turn token ids of template t on m and tok, as a session
 * uses them (see above): written to ret, their count returned. For
 * callers that run a conversation without a session (nvxd renders each
 * request whole). */
size_t rt_chat_stop_ids(const rt_model *m, const rt_tokenizer *tok, rt_chat_template t,
                        int32_t ret[static RT_CHAT_MAX_STOP_IDS]);

/* The vocabulary's BOS and EOS pieces as NUL-terminated text ("" when
 * absent), the bos_token and eos_token of rt_chat_tokens. */
void rt_chat_pieces(const rt_tokenizer *tok, char bos[static RT_TOK_MAX_PIECE + 1],
                    char eos[static RT_TOK_MAX_PIECE + 1]);

/* Starts a session on m and tok (borrowed; they outlive it) with template
 * t and an optional system text (copied; NULL for none). The model's KV
 * cache is overwritten from position 0 by the first turn.
 * Returns 0 and *ret; -EINVAL; -ENOMEM. */
int rt_chat_session_new(rt_model *m, const rt_tokenizer *tok, rt_chat_template t,
                        const char *system, size_t system_len, rt_chat_session **ret);

void rt_chat_session_free(rt_chat_session *cs);

/* The end-of-turn token ids found (for callers that report them): *ret
 * points into cs; returns their count. */
size_t rt_chat_session_stop_ids(const rt_chat_session *cs, const int32_t **ret);

/* Positions used so far, and the context's size. */
uint32_t rt_chat_session_pos(const rt_chat_session *cs);
uint32_t rt_chat_session_ctx(const rt_chat_session *cs);

/* One turn: feeds the user's text user[0..len) (any bytes; as in llama.cpp's
 * chat, control-token spellings in it are read as control tokens: the
 * user is the one talking to the model) with the template around
 * it, then samples at most max_new tokens (< 0: no cap) with s, handing
 * each reply token to emit (the stop token is not emitted).
 * Returns 0 and *ret_stats (may be NULL); -EMSGSIZE when the turn's text
 * does not fit in the context left (nothing is fed; stats give n_prompt
 * and pos_start) or an earlier reply filled the context; emit's negative
 * value (the session is then unusable: its cache is partial); -EINVAL;
 * -ENOMEM. */
int rt_chat_session_turn(rt_chat_session *cs, rt_sampler *s, const char *user, size_t len,
                         int64_t max_new, rt_emit_fn emit, void *userdata,
                         rt_chat_turn_stats *ret_stats);

#endif
