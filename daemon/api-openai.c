/* SPDX-License-Identifier: MIT */
#include "daemon/api-openai.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rewrites /api/tags' answer: one listing of the store, two shapes. */
int
nvx_api_openai_models(cas_store *s, nvx_api_answer *ret)
{
    nvx_api_answer tags = { 0 };
    int r = nvx_api_ollama_tags(s, &tags);
    if (r < 0 || tags.status != 200) {
        *ret = tags;
        return r;
    }
    json_t *in = json_loadb(tags.body, tags.len, 0, NULL);
    free(tags.body);
    json_t *data = json_array();
    json_t *models = json_object_get(in, "models");
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m)
    {
        json_t *e = json_pack("{s:O, s:s, s:I, s:s}", "id", json_object_get(m, "name"), "object",
                              "model", "created", (json_int_t)time(NULL), "owned_by", "nvx");
        if (!e || json_array_append_new(data, e) < 0)
            r = -ENOMEM;
    }
    json_decref(in);
    json_t *o = r == 0 && data ? json_pack("{s:s, s:o}", "object", "list", "data", data) : NULL;
    if (!o && r == 0)
        json_decref(data);
    char *str = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!str)
        return -ENOMEM;
    *ret = (nvx_api_answer){ .status = 200, .body = str, .len = strlen(str) };
    return 0;
}

static int
prompt(json_t *root, nvx_gen_params *p, char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(root, "prompt");
    if (json_is_array(v) && json_array_size(v) == 1)
        v = json_array_get(v, 0);
    if (!v || json_is_null(v)) {
        p->prompt = "";
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, NVX_API_ERR_MAX, "prompt: expected a string (or an array of one string)");
        return -EINVAL;
    }
    p->prompt = json_string_value(v);
    p->prompt_len = json_string_length(v);
    return 0;
}

int
nvx_api_openai_completions_parse(const char *body, size_t len, bool chat, nvx_api_gen_in *ret,
                                 char err[static NVX_API_ERR_MAX])
{
    nvx_api_gen_in in = { .stream = false };
    in.p.temperature = 1.0;
    in.p.top_p = 1.0;
    in.p.max_new = chat ? -1 : NVX_OPENAI_MAX_TOKENS; /* chat: no cap but the context */
    in.p.keep_alive_ms = NVX_GEN_KEEP_ALIVE_MS;
    int r = nvx_api_json_object(body, len, &in.root, err);
    if (r < 0)
        return r;
    json_t *m = json_object_get(in.root, "model");
    if (!json_is_string(m) || json_string_length(m) == 0 ||
        json_string_length(m) >= NVX_GEN_MODEL_MAX) {
        snprintf(err, NVX_API_ERR_MAX, "model: required, a model name (see /v1/models)");
        r = -EINVAL;
    }
    int64_t seed = 0;
    if (r == 0) {
        in.p.model = json_string_value(m);
        r = chat ? nvx_api_json_messages(&in, err) : prompt(in.root, &in.p, err);
    }
    bool capped = false;
    if (r == 0 && chat) /* the newer name of max_tokens */
        r = nvx_api_json_int(in.root, "max_completion_tokens", &in.p.max_new, &capped, err);
    if (r == 0)
        r = nvx_api_json_int(in.root, "max_tokens", &in.p.max_new, &capped, err);
    if (r == 0 && capped && in.p.max_new < 0) {
        snprintf(err, NVX_API_ERR_MAX, "max_tokens: expected an integer >= 0");
        r = -EINVAL;
    }
    if (r == 0)
        r = nvx_api_json_num(in.root, "temperature", 0, 2, &in.p.temperature, err);
    if (r == 0)
        r = nvx_api_json_num(in.root, "top_p", 1e-6, 1, &in.p.top_p, err);
    if (r == 0)
        r = nvx_api_json_int(in.root, "seed", &seed, &in.p.seed_set, err);
    if (r == 0)
        r = nvx_api_json_stop(in.root, "stop", &in.p, err);
    if (r == 0)
        r = nvx_api_json_bool(in.root, "stream", &in.stream, err);
    in.p.seed = (uint64_t)seed;
    if (r < 0) {
        nvx_api_gen_in_clear(&in);
        return r;
    }
    *ret = in;
    return 0;
}

/* The choice of a completion: text (with a "text" field) or chat (a
 * "message", or in a stream a "delta" that is empty in the last event). */
static json_t *
choice(bool chat, const char *text, size_t len, const char *finish, bool sse)
{
    json_t *t = nvx_api_json_text(text, len), *c = NULL;
    if (!chat)
        c = t ? json_pack("{s:o, s:i, s:n}", "text", t, "index", 0, "logprobs") : NULL;
    else if (sse && finish)
        c = json_pack("{s:{}, s:i, s:n}", "delta", "index", 0, "logprobs");
    else
        c = t ? json_pack("{s:{s:s, s:O}, s:i, s:n}", sse ? "delta" : "message", "role",
                          "assistant", "content", t, "index", 0, "logprobs")
              : NULL;
    if (chat)
        json_decref(t);
    if (c &&
        json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null()) < 0) {
        json_decref(c);
        c = NULL;
    }
    return c;
}

char *
nvx_api_openai_completion(const char *id, const char *model, bool chat, const char *text,
                          size_t len, const char *finish, const nvx_gen_result *res, bool sse,
                          size_t *ret_len)
{
    const char *object = !chat ? "text_completion"
                         : sse ? "chat.completion.chunk"
                               : "chat.completion";
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", id, "object", object, "created",
                          (json_int_t)time(NULL), "model", model, "choices",
                          choice(chat, text, len, finish, sse));
    if (o && res && !sse) {
        json_t *u =
            json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", (json_int_t)res->prompt_tokens,
                      "completion_tokens", (json_int_t)res->eval_tokens, "total_tokens",
                      (json_int_t)(res->prompt_tokens + res->eval_tokens), "prompt_tokens_details",
                      "cached_tokens", (json_int_t)res->cached_tokens);
        if (!u || json_object_set_new(o, "usage", u) < 0) {
            json_decref(o);
            o = NULL;
        }
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (!sse) {
        *ret_len = n;
        return s;
    }
    char *ev = malloc(n + 9);
    if (ev)
        *ret_len = (size_t)snprintf(ev, n + 9, "data: %s\n\n", s);
    free(s);
    return ev;
}
