/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_OLLAMA_GEN_H
#define NVX_DAEMON_API_OLLAMA_GEN_H
/*
 * Ollama's POST /api/generate, POST /api/chat and GET /api/ps as bytes: the request body
 * parsed into worker parameters (daemon/gen.h), the answer's JSON lines
 * built from text and results. Pure (no loop, no store); daemon/api-gen.c
 * drives the request. Also the helpers the OpenAI flavour shares
 * (daemon/api-openai.c).
 *
 * Request (https://github.com/ollama/ollama/blob/main/docs/api.md):
 *   model (string, required), prompt (string), stream (bool, default true),
 *   keep_alive (seconds as a number, or "30s"/"5m"/"1h"; negative: forever),
 *   options: temperature (0..100, default 0.8), top_p ((0, 1], default 0.9),
 *   seed (integer), num_predict (integer; < 0: no cap), stop (array of
 *   strings). /api/chat takes messages (role "system", "user" or
 *   "assistant", content) in place of prompt. Other fields (system,
 *   template, raw, format, tools, ...) are ignored. A field of the wrong type or range is an error
 * naming it.
 *
 * Thread safety: any thread.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/api-ollama.h"
#include "daemon/gen.h"

enum {
    NVX_API_ERR_MAX = 256, /* bytes of a request error */
};

/* A parsed generation request; p's strings point into root. */
typedef struct nvx_api_gen_in {
    json_t *root;
    rt_chat_msg *msgs; /* p.msgs of a chat (owned) */
    nvx_gen_params p;
    bool stream;
} nvx_api_gen_in;

/* Frees root (accepts a zeroed one). */
void nvx_api_gen_in_clear(nvx_api_gen_in *in);

/* Parses an /api/generate body (with chat, an /api/chat body: messages
 * in place of prompt). Returns 0 and fills *ret (clear it), or -EINVAL
 * with a message naming the field in err, or -ENOMEM. */
int nvx_api_ollama_generate_parse(const char *body, size_t len, bool chat, nvx_api_gen_in *ret,
                                  char err[static NVX_API_ERR_MAX]);

/* One streamed NDJSON line {"model","created_at","response","done":false}
 * (with chat, /api/chat's "message":{"role":"assistant","content"} in
 * place of "response") with its "\n". Returns a malloc'd string (*ret_len
 * bytes) or NULL. */
char *nvx_api_ollama_generate_chunk(const char *model, bool chat, const char *text, size_t len,
                                    size_t *ret_len);

/* The last object (done:true, done_reason, the counts and durations);
 * text is the whole response when not streaming, else empty. With nl a
 * "\n" ends it. Returns a malloc'd string or NULL. */
char *nvx_api_ollama_generate_final(const char *model, bool chat, const char *text, size_t len,
                                    const nvx_gen_result *res, bool nl, size_t *ret_len);

/* /api/ps: l is the loaded model or NULL. Returns 0 or -ENOMEM. */
int nvx_api_ollama_ps(const nvx_gen_loaded *l, nvx_api_answer *ret);

/* ---- shared with daemon/api-openai.c ---- */

/* A JSON string of model text: bytes that are not valid UTF-8 become '?'
 * (jansson refuses them, and a token may end inside a sequence). */
json_t *nvx_api_json_text(const char *s, size_t len);

/* Loads body as a JSON object. Returns 0, or -EINVAL with err set. */
int nvx_api_json_object(const char *body, size_t len, json_t **ret,
                        char err[static NVX_API_ERR_MAX]);

/* Reads optional field key of o into *ret when present, checking type and
 * [min, max]. Return 0 (absent or read) or -EINVAL with err naming key. */
int nvx_api_json_num(json_t *o, const char *key, double min, double max, double *ret,
                     char err[static NVX_API_ERR_MAX]);
int nvx_api_json_int(json_t *o, const char *key, int64_t *ret, bool *ret_seen,
                     char err[static NVX_API_ERR_MAX]);
int nvx_api_json_bool(json_t *o, const char *key, bool *ret, char err[static NVX_API_ERR_MAX]);
/* messages of in->root (Ollama and OpenAI share the shape: role and
 * content strings; roles system (or developer), user, assistant in the
 * order runtime/chat.h takes) into in->msgs and in->p. Returns 0, -EINVAL
 * with err naming the message, -ENOMEM. */
int nvx_api_json_messages(nvx_api_gen_in *in, char err[static NVX_API_ERR_MAX]);
/* stop: a string or an array of at most NVX_GEN_STOP_MAX strings of
 * 1..NVX_GEN_STOP_LEN_MAX bytes. */
int nvx_api_json_stop(json_t *o, const char *key, nvx_gen_params *p,
                      char err[static NVX_API_ERR_MAX]);

#endif
