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
#include "daemon/api-pull.h"
#include "daemon/api-status.h"
#include "daemon/gen.h"
#include "daemon/http-uv.h"
#include "daemon/log.h"
#include "daemon/status-page.h"

enum {
    VERSION_MAX = 64,
};

struct nvx_api {
    uv_loop_t *loop;
    cas_store *store;
    nvx_http_server *http;
    nvx_gen *gen;
    nvx_api_node_ops node;
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
    R_PULL,
    R_METRICS,
    R_STATUS,
    R_PAGE,
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
    [R_PULL] = { NVX_HTTP_POST, "/api/pull" },
    [R_METRICS] = { NVX_HTTP_GET, "/metrics" },
    [R_STATUS] = { NVX_HTTP_GET, "/api/nvx/status" },
    [R_PAGE] = { NVX_HTTP_GET, "/" },
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
    /* R_STATUS, R_METRICS: the node's part (taken on the loop), the
     * store's (read on the pool) */
    json_t *node, *models;
    cas_store_usage usage;
    int usage_r;
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
    case R_STATUS:
    case R_METRICS: {
        const char *serve = json_string_value(json_object_get(j->node, "serve"));
        int pol = serve ? nvx_serve_policy_parse(serve) : NVX_SERVE_PINNED;
        j->usage_r = cas_store_usage_get(s, &j->usage);
        if (j->route == R_STATUS)
            j->r = nvx_api_store_models(s, pol < 0 ? NVX_SERVE_PINNED : (nvx_serve_policy)pol,
                                        &j->models);
        break;
    }
    default:
        j->r = -EINVAL;
    }
}

/* Status and metrics, once the store's part is read: the worker's
 * counters and loaded model are the loop's to read. */
static void
snapshot_answer(nvx_api *a, struct job *j)
{
    nvx_gen_stats gs;
    nvx_gen_loaded l;
    nvx_gen_stats_get(a->gen, &gs);
    bool on = nvx_gen_loaded_get(a->gen, &l);
    nvx_api_snapshot snap = {
        .version = a->version,
        .http_addr = nvx_http_server_addr(a->http),
        .node = j->node,
        .models = j->models,
        .usage = j->usage_r == 0 ? &j->usage : NULL,
        .gen = &gs,
        .loaded = on ? &l : NULL,
    };
    size_t n = 0;
    char *s =
        j->route == R_STATUS ? nvx_api_status_json(&snap, &n) : nvx_api_metrics_text(&snap, &n);
    if (!s)
        nvx_http_respond_error(j->cl, 500, "out of memory");
    else
        nvx_http_respond(j->cl, 200,
                         j->route == R_STATUS ? "application/json" : NVX_API_METRICS_CTYPE, s, n);
    free(s);
}

static void
job_done(uv_work_t *w, int status)
{
    struct job *j = (struct job *)w;
    nvx_api *a = j->api;
    if ((j->route == R_STATUS || j->route == R_METRICS) && status == 0 && j->r == 0)
        snapshot_answer(a, j);
    else
        answer(j->cl, status < 0 ? status : j->r, &j->ans);
    json_decref(j->node);
    json_decref(j->models);
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
    if ((route == R_STATUS || route == R_METRICS) && a->node.status)
        j->node = a->node.status(a->node.arg);
    if (uv_queue_work(a->loop, &j->w, job_work, job_done) < 0) {
        json_decref(j->node);
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
    case R_PULL:
        nvx_api_pull_start(&a->node, cl, req->body, req->body_len);
        return;
    case R_PAGE:
        nvx_http_respond(cl, 200, "text/html; charset=utf-8", nvx_status_page,
                         sizeof(nvx_status_page) - 1);
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
    a->node = opts->node;
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
