/* SPDX-License-Identifier: MIT */
#include "daemon/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api-gen.h"
#include "daemon/api-ollama-gen.h"
#include "daemon/api-ollama.h"
#include "daemon/api-openai.h"
#include "daemon/gen.h"
#include "daemon/http-uv.h"
#include "daemon/log.h"

enum {
    VERSION_MAX = 64,
};

struct nvx_api {
    uv_loop_t *loop;
    cas_store *store;
    nvx_http_server *http;
    nvx_gen *gen;
    char version[VERSION_MAX];
    unsigned jobs; /* pool jobs running */
    bool closing, http_closed;
    void (*done)(void *);
    void *done_arg;
};

enum route {
    R_VERSION,
    R_TAGS,
    R_SHOW,
    R_PS,
    R_DELETE,
    R_GENERATE,
    R_V1_MODELS,
    R_V1_COMPLETIONS,
    R_CHAT,
    R_V1_CHAT,
    _R_MAX,
};

/* Indexed by enum route. */
static const nvx_http_route routes[_R_MAX] = {
    [R_VERSION] = { NVX_HTTP_GET, "/api/version" },
    [R_TAGS] = { NVX_HTTP_GET, "/api/tags" },
    [R_SHOW] = { NVX_HTTP_POST, "/api/show" },
    [R_PS] = { NVX_HTTP_GET, "/api/ps" },
    [R_DELETE] = { NVX_HTTP_DELETE, "/api/delete" },
    [R_GENERATE] = { NVX_HTTP_POST, "/api/generate" },
    [R_V1_MODELS] = { NVX_HTTP_GET, "/v1/models" },
    [R_V1_COMPLETIONS] = { NVX_HTTP_POST, "/v1/completions" },
    [R_CHAT] = { NVX_HTTP_POST, "/api/chat" },
    [R_V1_CHAT] = { NVX_HTTP_POST, "/v1/chat/completions" },
};

/* One store request on the pool: it copies the body, since the answer may
 * outlive nothing but the client, and the client outlives the job (the
 * adapter keeps it until the response ends). */
struct job {
    uv_work_t w;
    nvx_api *api;
    nvx_http_client *cl;
    enum route route;
    char *body;
    size_t len;
    nvx_api_answer ans;
    int r;
};

static void
maybe_done(nvx_api *a)
{
    if (!a->done || !a->http_closed || a->jobs)
        return;
    void (*done)(void *) = a->done;
    void *arg = a->done_arg;
    free(a);
    done(arg);
}

static void
answer(nvx_http_client *cl, int r, nvx_api_answer *ans)
{
    if (r < 0)
        nvx_http_respond_error(cl, 500, nvx_strerror(r));
    else
        nvx_http_respond(cl, ans->status, "application/json", ans->body, ans->len);
    free(ans->body);
    ans->body = NULL;
}

static void
job_work(uv_work_t *w)
{
    struct job *j = (struct job *)w;
    cas_store *s = j->api->store;
    switch (j->route) {
    case R_TAGS:
        j->r = nvx_api_ollama_tags(s, &j->ans);
        break;
    case R_SHOW:
        j->r = nvx_api_ollama_show(s, j->body, j->len, &j->ans);
        break;
    case R_DELETE:
        j->r = nvx_api_ollama_delete(s, j->body, j->len, &j->ans);
        break;
    case R_V1_MODELS:
        j->r = nvx_api_openai_models(s, &j->ans);
        break;
    default:
        j->r = -EINVAL;
    }
}

static void
job_done(uv_work_t *w, int status)
{
    struct job *j = (struct job *)w;
    nvx_api *a = j->api;
    answer(j->cl, status < 0 ? status : j->r, &j->ans);
    free(j->body);
    free(j);
    a->jobs--;
    maybe_done(a);
}

static void
queue_job(nvx_api *a, nvx_http_client *cl, enum route route, const nvx_http_req *req)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j)
        j->body = malloc(req->body_len + 1);
    if (!j || !j->body) {
        free(j);
        nvx_http_respond_error(cl, 503, "out of memory");
        return;
    }
    memcpy(j->body, req->body, req->body_len);
    j->body[req->body_len] = '\0';
    j->len = req->body_len;
    j->api = a;
    j->cl = cl;
    j->route = route;
    if (uv_queue_work(a->loop, &j->w, job_work, job_done) < 0) {
        free(j->body);
        free(j);
        nvx_http_respond_error(cl, 503, "cannot queue the request");
        return;
    }
    a->jobs++;
}

static void
on_request(void *arg, nvx_http_client *cl, const nvx_http_req *req)
{
    nvx_api *a = arg;
    nvx_api_answer ans = { 0 };
    int r = nvx_http_route_find(routes, _R_MAX, req);
    log_debug("http: %s", req->path);
    if (r == -ENOENT) {
        nvx_http_respond_error(cl, 404, "no such endpoint");
        return;
    }
    if (r == -EOPNOTSUPP) {
        nvx_http_respond_error(cl, 405, "method not allowed on this endpoint");
        return;
    }
    switch ((enum route)r) {
    case R_VERSION:
        answer(cl, nvx_api_ollama_version(a->version, &ans), &ans);
        return;
    case R_PS: {
        nvx_gen_loaded l;
        bool on = nvx_gen_loaded_get(a->gen, &l);
        answer(cl, nvx_api_ollama_ps(on ? &l : NULL, &ans), &ans);
        return;
    }
    case R_GENERATE:
        nvx_api_gen_start(a->gen, cl, NVX_API_OLLAMA, req->body, req->body_len);
        return;
    case R_V1_COMPLETIONS:
        nvx_api_gen_start(a->gen, cl, NVX_API_OPENAI, req->body, req->body_len);
        return;
    case R_CHAT:
        nvx_api_gen_start(a->gen, cl, NVX_API_OLLAMA_CHAT, req->body, req->body_len);
        return;
    case R_V1_CHAT:
        nvx_api_gen_start(a->gen, cl, NVX_API_OPENAI_CHAT, req->body, req->body_len);
        return;
    default:
        queue_job(a, cl, (enum route)r, req);
        return;
    }
}

int
nvx_api_new(const nvx_api_opts *opts, nvx_api **ret)
{
    nvx_api *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->loop = opts->loop;
    a->store = opts->store;
    snprintf(a->version, sizeof(a->version), "%s", opts->version ? opts->version : "0");
    nvx_http_server_opts ho = {
        .loop = opts->loop,
        .addr = opts->addr,
        .handler = on_request,
        .arg = a,
        .head_timeout_ms = opts->head_timeout_ms,
        .body_timeout_ms = opts->body_timeout_ms,
        .idle_timeout_ms = opts->idle_timeout_ms,
    };
    nvx_gen_opts go = {
        .loop = opts->loop,
        .store = opts->store,
        .require_trusted = opts->require_trusted,
        .token_delay_ms = opts->gen_token_delay_ms,
    };
    int r = nvx_gen_new(&go, &a->gen);
    if (r < 0) {
        free(a);
        return r;
    }
    r = nvx_http_server_new(&ho, &a->http);
    if (r < 0) {
        nvx_gen_close(a->gen, free, a);
        return r;
    }
    *ret = a;
    return 0;
}

const char *
nvx_api_addr(const nvx_api *a)
{
    return nvx_http_server_addr(a->http);
}

static void
http_closed(void *arg)
{
    nvx_api *a = arg;
    a->http_closed = true;
    a->http = NULL;
    maybe_done(a);
}

static void
gen_closed(void *arg)
{
    nvx_api *a = arg;
    a->gen = NULL;
    nvx_http_server_close(a->http, http_closed, a);
}

void
nvx_api_close(nvx_api *a, void (*done)(void *arg), void *arg)
{
    a->done = done;
    a->done_arg = arg;
    a->closing = true;
    /* Generation first: its requests end their responses before the
     * server closes the clients. */
    nvx_gen_close(a->gen, gen_closed, a);
}
