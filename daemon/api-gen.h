/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_GEN_H
#define NVX_DAEMON_API_GEN_H
/*
 * A generation request between an HTTP client and the worker: parses the
 * body (400 naming the field), queues it (503 when the queue is full),
 * streams the worker's text as NDJSON (Ollama) or server-sent events
 * (OpenAI), or collects it for one object, and cancels the generation when
 * the client goes. A model the worker refuses gets the worker's status
 * (404, 409, 422, 403) with a JSON error, before any byte of a stream.
 *
 * Loop thread only.
 */
#include <stddef.h>

#include "daemon/gen.h"
#include "daemon/http-uv.h"

typedef enum nvx_api_flavour {
    NVX_API_OLLAMA,      /* POST /api/generate */
    NVX_API_OPENAI,      /* POST /v1/completions */
    NVX_API_OLLAMA_CHAT, /* POST /api/chat */
    NVX_API_OPENAI_CHAT, /* POST /v1/chat/completions */
    _NVX_API_FLAVOUR_MAX
} nvx_api_flavour;

/* Answers the request on cl (body[0..len)) through worker g; it always
 * ends the response, now or when the worker is done. */
void nvx_api_gen_start(nvx_gen *g, nvx_http_client *cl, nvx_api_flavour fl, const char *body,
                       size_t len);

#endif
