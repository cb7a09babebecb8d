/* SPDX-License-Identifier: MIT */
#include "daemon/api-gen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api-ollama-gen.h"
#include "daemon/api-openai.h"
#include "daemon/log.h"

enum {
    ID_MAX = 32, /* "chatcmpl-" and 16 hex digits */
};

/* One request in flight; freed in on_done, after the response ended. */
typedef struct job {
    nvx_http_client *cl;
    nvx_gen_req *rq; /* NULL once done ran */
    bool openai, chat;
    bool stream, begun;
    char model[NVX_GEN_MODEL_MAX];
    char id[ID_MAX];
    char *text; /* the whole text, when not streaming */
    size_t len, cap;
} job;

static void
on_gone(void *arg)
{
    job *j = arg;
    if (j->rq)
        nvx_gen_cancel(j->rq);
}

static void
write_owned(job *j, char *s, size_t len)
{
    if (s)
        nvx_http_stream_write(j->cl, s, len);
    free(s);
}

static void
on_started(void *arg)
{
    job *j = arg;
    if (!j->stream)
        return;
    j->begun = true;
    nvx_http_stream_begin(j->cl, 200, j->openai ? "text/event-stream" : "application/x-ndjson");
}

static void
on_text(void *arg, const char *s, size_t len)
{
    job *j = arg;
    size_t n = 0;
    if (j->stream) {
        /* Two statements: n is set by the call, not before it. */
        char *out = !j->openai ? nvx_api_ollama_generate_chunk(j->model, j->chat, s, len, &n)
                               : nvx_api_openai_completion(j->id, j->model, j->chat, s, len, NULL,
                                                           NULL, true, &n);
        write_owned(j, out, n);
        return;
    }
    if (j->cap - j->len < len) {
        size_t cap = (j->cap + len) * 2;
        char *t = realloc(j->text, cap);
        if (!t)
            return; /* the text is cut; the counts still say how much was made */
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, s, len);
    j->len += len;
}

/* The last bytes of a successful request. */
static void
finish(job *j, const nvx_gen_result *res)
{
    size_t n = 0;
    char *s;
    const char *why = res->length ? "length" : "stop";
    const char *text = j->text ? j->text : "";
    if (!j->openai)
        s = nvx_api_ollama_generate_final(j->model, j->chat, text, j->len, res, j->stream, &n);
    else
        s = nvx_api_openai_completion(j->id, j->model, j->chat, j->stream ? "" : text,
                                      j->stream ? 0 : j->len, why, res, j->stream, &n);
    if (j->stream) {
        write_owned(j, s, n);
        if (j->openai)
            nvx_http_stream_write(j->cl, NVX_OPENAI_SSE_DONE, strlen(NVX_OPENAI_SSE_DONE));
        nvx_http_stream_end(j->cl);
    } else if (s) {
        nvx_http_respond(j->cl, 200, "application/json", s, n);
        free(s);
    } else {
        nvx_http_respond_error(j->cl, 500, "out of memory");
    }
}

static void
on_done(void *arg, int r, const nvx_gen_result *res)
{
    job *j = arg;
    j->rq = NULL;
    nvx_http_client_on_gone(j->cl, NULL, NULL);
    if (r == -ECANCELED)
        log_debug("gen: request cancelled (client gone or shutting down)");
    if (r == 0) {
        finish(j, res);
    } else if (!j->begun) {
        nvx_http_respond_error(j->cl, res->status ? res->status : 503,
                               res->error[0] ? res->error : "generation cancelled");
    } else {
        /* Headers are out: say it in the stream, as Ollama does. */
        json_t *e = json_pack("{s:s}", "error", res->error[0] ? res->error : "cancelled");
        char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        if (s) {
            char line[NVX_GEN_ERR_MAX + 64];
            int n = snprintf(line, sizeof(line), j->openai ? "data: %s\n\n" : "%s\n", s);
            if (n > 0 && (size_t)n < sizeof(line))
                nvx_http_stream_write(j->cl, line, (size_t)n);
            free(s);
        }
        nvx_http_stream_end(j->cl);
    }
    free(j->text);
    free(j);
}

static const nvx_gen_cbs cbs = {
    .started = on_started,
    .text = on_text,
    .done = on_done,
};

void
nvx_api_gen_start(nvx_gen *g, nvx_http_client *cl, nvx_api_flavour fl, const char *body, size_t len)
{
    char err[NVX_API_ERR_MAX] = "";
    nvx_api_gen_in in = { 0 };
    bool openai = fl == NVX_API_OPENAI || fl == NVX_API_OPENAI_CHAT;
    bool chat = fl == NVX_API_OLLAMA_CHAT || fl == NVX_API_OPENAI_CHAT;
    int r = openai ? nvx_api_openai_completions_parse(body, len, chat, &in, err)
                   : nvx_api_ollama_generate_parse(body, len, chat, &in, err);
    if (r < 0) {
        nvx_http_respond_error(cl, r == -ENOMEM ? 503 : 400, r == -ENOMEM ? "out of memory" : err);
        return;
    }
    job *j = calloc(1, sizeof(*j));
    if (!j) {
        nvx_api_gen_in_clear(&in);
        nvx_http_respond_error(cl, 503, "out of memory");
        return;
    }
    j->cl = cl;
    j->openai = openai;
    j->chat = chat;
    j->stream = in.stream;
    snprintf(j->model, sizeof(j->model), "%s", in.p.model);
    snprintf(j->id, sizeof(j->id), "%s-%016" PRIx64, chat ? "chatcmpl" : "cmpl", uv_hrtime());
    r = nvx_gen_submit(g, &in.p, &cbs, j, &j->rq);
    nvx_api_gen_in_clear(&in);
    if (r < 0) {
        free(j);
        if (r == -EBUSY) {
            snprintf(err, sizeof(err),
                     "too many generation requests: one runs and %d wait; try again later",
                     NVX_GEN_QUEUE_MAX);
            nvx_http_respond_error(cl, 503, err);
        } else
            nvx_http_respond_error(cl, r == -EINVAL ? 400 : 503, nvx_strerror(r));
        return;
    }
    nvx_http_client_on_gone(cl, on_gone, j);
}
