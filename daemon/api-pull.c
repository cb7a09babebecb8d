/* SPDX-License-Identifier: MIT */
#include "daemon/api-pull.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api-ollama-gen.h"
#include "libcas/hash.h"

/* One /api/pull in flight; freed when the response ends. */
typedef struct pull {
    const nvx_api_node_ops *ops;
    nvx_http_client *cl;
    void *handle; /* the node's pull, NULL once its final callback ran */
    bool stream;
    uint64_t last_done; /* completed bytes last reported */
    bool shown_total;
} pull;

/* Writes one NDJSON object (a reference, taken). */
static void
line(pull *p, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return; /* a progress line lost to memory pressure: the next says more */
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t) {
        t[n] = '\n';
        nvx_http_stream_write(p->cl, t, n + 1);
        s = t;
    }
    free(s);
}

static int
http_status(int error)
{
    switch (error) {
    case -EINVAL:
    case -ENOTUNIQ:
        return 400;
    case -EACCES:
        return 403;
    case -ENOENT:
    case -EHOSTUNREACH:
        return 404;
    default:
        return 502;
    }
}

static void
progress(pull *p, const proto_ctl_progress *pr)
{
    if (!p->stream || pr->state != PROTO_CTL_STATE_FETCHING || !pr->bytes_total)
        return;
    if (p->shown_total && pr->bytes_done == p->last_done)
        return; /* nothing new since the last line */
    p->shown_total = true;
    p->last_done = pr->bytes_done;
    char hex[CAS_HASH_HEX_LEN + 1], status[64];
    cas_hash_to_hex(pr->model_id, hex);
    snprintf(status, sizeof(status), "downloading %.16s", hex);
    line(p, json_pack("{s:s, s:s, s:I, s:I}", "status", status, "digest", hex, "total",
                      (json_int_t)pr->bytes_total, "completed", (json_int_t)pr->bytes_done));
}

static void
on_pull(void *arg, const proto_ctl_progress *pr, int error, const char *msg)
{
    pull *p = arg;
    bool final = pr->state == PROTO_CTL_STATE_DONE || pr->state == PROTO_CTL_STATE_FAILED ||
                 pr->state == PROTO_CTL_STATE_CANCELLED;
    if (!final) {
        progress(p, pr);
        return;
    }
    p->handle = NULL;
    nvx_http_client_on_gone(p->cl, NULL, NULL);
    bool ok = pr->state == PROTO_CTL_STATE_DONE;
    if (!p->stream) {
        static const char success[] = "{\"status\":\"success\"}";
        if (ok)
            nvx_http_respond(p->cl, 200, "application/json", success, strlen(success));
        else
            nvx_http_respond_error(p->cl, http_status(error), msg && msg[0] ? msg : "pull failed");
        free(p);
        return;
    }
    if (ok) {
        /* The sizes once more, whole: clients draw their bar from them. */
        p->shown_total = false;
        proto_ctl_progress whole = *pr;
        whole.state = PROTO_CTL_STATE_FETCHING;
        whole.bytes_done = whole.bytes_total;
        progress(p, &whole);
        line(p, json_pack("{s:s}", "status", "verifying sha256 digest"));
        line(p, json_pack("{s:s}", "status", "writing manifest"));
        line(p, json_pack("{s:s}", "status", "success"));
    } else {
        line(p, json_pack("{s:s}", "error", msg && msg[0] ? msg : "pull failed"));
    }
    nvx_http_stream_end(p->cl);
    free(p);
}

static void
on_gone(void *arg)
{
    pull *p = arg;
    if (p->handle)
        p->ops->pull_cancel(p->ops->arg, p->handle);
    /* The response must still end (http-uv.h); nothing reaches the client. */
    if (p->stream)
        nvx_http_stream_end(p->cl);
    else
        nvx_http_respond_error(p->cl, 503, "client gone");
    free(p);
}

/* The target of the body: "model" (or "name"), without a ":latest" tag. */
static int
target_of(json_t *root, char out[static NVX_API_PULL_TARGET_MAX + 1],
          char err[static NVX_API_ERR_MAX])
{
    json_t *m = json_object_get(root, "model");
    if (!m || json_is_null(m))
        m = json_object_get(root, "name");
    size_t n = json_is_string(m) ? json_string_length(m) : 0;
    if (n == 0 || n > NVX_API_PULL_TARGET_MAX || strlen(json_string_value(m)) != n) {
        snprintf(err, NVX_API_ERR_MAX,
                 "model: required, a model id, PUBLISHER/NAME or a ticket ID@HOST:PORT");
        return -EINVAL;
    }
    memcpy(out, json_string_value(m), n + 1);
    static const char tag[] = ":latest";
    if (n > strlen(tag) && strcmp(out + n - strlen(tag), tag) == 0)
        out[n - strlen(tag)] = '\0';
    return 0;
}

int
nvx_api_pull_parse(const char *body, size_t len, char target[static NVX_API_PULL_TARGET_MAX + 1],
                   bool *ret_stream, char err[static NVX_API_ERR_MAX])
{
    json_t *root = NULL;
    bool stream = true;
    int r = nvx_api_json_object(body, len, &root, err);
    if (r == 0)
        r = target_of(root, target, err);
    if (r == 0)
        r = nvx_api_json_bool(root, "stream", &stream, err);
    json_decref(root);
    if (r == 0)
        *ret_stream = stream;
    return r;
}

void
nvx_api_pull_start(const nvx_api_node_ops *ops, nvx_http_client *cl, const char *body, size_t len)
{
    if (!ops->pull || !ops->pull_cancel) {
        nvx_http_respond_error(cl, 501, "this node does not fetch (no mesh)");
        return;
    }
    char err[NVX_API_ERR_MAX] = "", target[NVX_API_PULL_TARGET_MAX + 1];
    bool stream = true;
    int r = nvx_api_pull_parse(body, len, target, &stream, err);
    if (r < 0) {
        nvx_http_respond_error(cl, 400, err);
        return;
    }
    pull *p = calloc(1, sizeof(*p));
    if (!p) {
        nvx_http_respond_error(cl, 503, "out of memory");
        return;
    }
    p->ops = ops;
    p->cl = cl;
    p->stream = stream;
    r = ops->pull(ops->arg, target, true, on_pull, p, &p->handle);
    if (r < 0) {
        free(p);
        nvx_http_respond_error(cl, r == -EINVAL ? 400 : 503,
                               r == -EINVAL ? "model: not a pull target" : "cannot start the pull");
        return;
    }
    nvx_http_client_on_gone(cl, on_gone, p);
    if (stream) {
        nvx_http_stream_begin(cl, 200, "application/x-ndjson");
        line(p, json_pack("{s:s}", "status", "pulling manifest"));
    }
}
