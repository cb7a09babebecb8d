/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_OPENAI_H
#define NVX_DAEMON_API_OPENAI_H
/*
 * OpenAI-compatible GET /v1/models, POST /v1/completions and POST
 * /v1/chat/completions as bytes:
 * request bodies parsed into worker parameters, answers and server-sent
 * events built. Pure apart from the store read of /v1/models; api.c and
 * api-gen.c drive them.
 *
 * /v1/completions request: model (required), prompt (a string, or an array
 * of one string), max_tokens (default 16, as OpenAI), temperature (0..2,
 * default 1), top_p (default 1), seed, stop (a string or up to 4... here
 * NVX_GEN_STOP_MAX strings), stream (default false). Other fields are
 * ignored.
 *
 * Thread safety: any thread.
 */
#include <stdbool.h>
#include <stddef.h>

#include "daemon/api-ollama-gen.h"

enum {
    NVX_OPENAI_MAX_TOKENS = 16, /* OpenAI's default max_tokens */
};

/* /v1/models: every complete model, named as /api/tags names it. */
int nvx_api_openai_models(cas_store *s, nvx_api_answer *ret);

/* Parses a /v1/completions body (with chat, a /v1/chat/completions body:
 * messages in place of prompt, max_tokens or max_completion_tokens
 * without a default). As nvx_api_ollama_generate_parse(). */
int nvx_api_openai_completions_parse(const char *body, size_t len, bool chat, nvx_api_gen_in *ret,
                                     char err[static NVX_API_ERR_MAX]);

/* One completion object (with chat a chat.completion, or in a stream a
 * chat.completion.chunk whose delta is empty in the last): with sse a
 * "data: {...}\n\n" event of a stream (finish is NULL until the last),
 * else the whole answer with "usage" (res non-NULL). id names the
 * completion ("cmpl-..."). Returns a malloc'd string or NULL. */
char *nvx_api_openai_completion(const char *id, const char *model, bool chat, const char *text,
                                size_t len, const char *finish, const nvx_gen_result *res, bool sse,
                                size_t *ret_len);

/* The stream's last event. */
#define NVX_OPENAI_SSE_DONE "data: [DONE]\n\n"

#endif
