/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_GEN_CHAT_H
#define NVX_DAEMON_GEN_CHAT_H
/*
 * Chat on the generation worker (daemon/gen.c): which template a model
 * file asks for, and a conversation turned into the tokens to feed. Each
 * request is rendered whole (rt_chat_render) and the worker compares its
 * tokens with those its KV cache holds, so a conversation that goes on is
 * fed only its new part, whatever client sends it (Ollama does the same).
 *
 * Worker thread (no shared state).
 */
#include <stddef.h>
#include <stdint.h>

#include "runtime/chat.h"
#include "runtime/tokenizer.h"

enum {
    NVX_GEN_CHAT_WHY_MAX = 160, /* bytes of the reason a model has no template */
};

/* The template model file map[0..len) names in tokenizer.chat_template.
 * Returns 0 and *ret, or -ENOTSUP with why[] saying what was found (no
 * template, or one nvxd does not know and its first bytes). */
int nvx_gen_chat_template(const void *map, size_t len, rt_chat_template *ret,
                          char why[static NVX_GEN_CHAT_WHY_MAX]);

/* Renders msgs[0..n) with t and the assistant header, and encodes it
 * (control-token spellings read as control tokens, BOS as the vocabulary
 * and template want) into a malloc'd array of capacity max(tokens, cap)
 * (the caller appends the reply). Returns 0 and *ret_toks, *ret_n;
 * -EINVAL (bad role order), -ENOMEM. */
int nvx_gen_chat_encode(const rt_tokenizer *tok, rt_chat_template t, const rt_chat_msg *msgs,
                        size_t n, size_t cap, int32_t **ret_toks, size_t *ret_n);

/* How many leading tokens a[0..na) and b[0..nb) share. */
size_t nvx_gen_chat_common(const int32_t *a, size_t na, const int32_t *b, size_t nb);

#endif
