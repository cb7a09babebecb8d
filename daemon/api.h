/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_H
#define NVX_DAEMON_API_H
/*
 * nvxd's HTTP API: the route table and the dispatch of each endpoint to
 * its module (daemon/api-ollama.c), store work on libuv's pool, answers
 * through the HTTP adapter (daemon/http-uv.h).
 *
 * Endpoints (Ollama-compatible): GET /api/version, GET /api/tags,
 * POST /api/show, GET /api/ps, DELETE /api/delete, POST /api/generate,
 * POST /api/chat, POST /api/pull; (OpenAI-compatible) GET /v1/models,
 * POST /v1/completions, POST /v1/chat/completions; GET /metrics
 * (Prometheus), GET / (the status page) and GET /api/nvx/status (its
 * JSON). Generation
 * runs on its own worker (daemon/gen.h, daemon/api-gen.h). An unknown path is 404,
 * a known path with another method 405, all with {"error": ...} bodies.
 *
 * Loop thread only.
 */
#include <jansson.h>
#include <stdbool.h>

#include <uv.h>

#include "libcas/store.h"
#include "proto/control.h"

typedef struct nvx_api nvx_api;

/* What the API asks of the rest of the node. api.c sits below the node's
 * fetching in daemon/'s call graph, so main.c hands these in (it wires
 * them to daemon/status.h and daemon/pull.h); any may be NULL (unit
 * tests): /api/pull then answers 501 and the status has no node part. */
typedef struct nvx_api_node_ops {
    /* The node's state: a new JSON object (daemon/status.h), or NULL. */
    json_t *(*status)(void *arg);
    /* Starts fetching target (pin it when complete). cb runs on the loop
     * with progress and once with a final state (DONE, FAILED, CANCELLED:
     * error and msg say why), after which the handle is gone. Returns 0
     * and *ret, or < 0 (cb never runs). */
    int (*pull)(void *arg, const char *target, bool pin,
                void (*cb)(void *cb_arg, const proto_ctl_progress *p, int error, const char *msg),
                void *cb_arg, void **ret);
    /* The client went before the final callback: none runs again. */
    void (*pull_cancel)(void *arg, void *handle);
    void *arg;
} nvx_api_node_ops;

typedef struct nvx_api_opts {
    uv_loop_t *loop;
    cas_store *store;
    const char *addr;    /* "HOST:PORT" to listen on */
    const char *version; /* reported by /api/version */
    /* Timeouts (0 = daemon/http-uv.h's defaults); tests shorten them. */
    unsigned head_timeout_ms, body_timeout_ms, idle_timeout_ms;
    bool require_trusted;        /* the run policy of generation (daemon/gen.h) */
    unsigned gen_token_delay_ms; /* tests only: slows generation down */
    nvx_api_node_ops node;       /* copied */
} nvx_api_opts;

/* Listens. Returns 0, -EINVAL (bad address), errnos of bind/listen. */
int nvx_api_new(const nvx_api_opts *opts, nvx_api **ret);

/* The bound "HOST:PORT". */
const char *nvx_api_addr(const nvx_api *a);

/* Closes the server; done runs once every client and pool job has ended,
 * then a is freed. */
void nvx_api_close(nvx_api *a, void (*done)(void *arg), void *arg);

#endif
