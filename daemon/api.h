/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_H
#define NVX_DAEMON_API_H
/*
 * nvxd's HTTP API: the route table and the dispatch of each endpoint to
 * its module (daemon/api-ollama.c), store work on libuv's pool, answers
 * through the HTTP adapter (daemon/http-uv.h).
 *
 * Endpoints (Ollama-compatible): GET /api/version, GET /api/tags,
 * POST /api/show, GET /api/ps, DELETE /api/delete, POST /api/generate;
 * (OpenAI-compatible) GET /v1/models, POST /v1/completions. Generation
 * runs on its own worker (daemon/gen.h, daemon/api-gen.h). An unknown path is 404,
 * a known path with another method 405, all with {"error": ...} bodies.
 *
 * Loop thread only.
 */
#include <stdbool.h>

#include <uv.h>

#include "libcas/store.h"

typedef struct nvx_api nvx_api;

typedef struct nvx_api_opts {
    uv_loop_t *loop;
    cas_store *store;
    const char *addr;    /* "HOST:PORT" to listen on */
    const char *version; /* reported by /api/version */
    /* Timeouts (0 = daemon/http-uv.h's defaults); tests shorten them. */
    unsigned head_timeout_ms, body_timeout_ms, idle_timeout_ms;
    bool require_trusted;        /* the run policy of generation (daemon/gen.h) */
    unsigned gen_token_delay_ms; /* tests only: slows generation down */
} nvx_api_opts;

/* Listens. Returns 0, -EINVAL (bad address), errnos of bind/listen. */
int nvx_api_new(const nvx_api_opts *opts, nvx_api **ret);

/* The bound "HOST:PORT". */
const char *nvx_api_addr(const nvx_api *a);

/* Closes the server; done runs once every client and pool job has ended,
 * then a is freed. */
void nvx_api_close(nvx_api *a, void (*done)(void *arg), void *arg);

#endif
