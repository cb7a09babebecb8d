/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_STATUS_H
#define NVX_DAEMON_API_STATUS_H
/*
 * The node at a glance, two ways: GET /api/nvx/status (JSON, what the
 * status page at / draws) and GET /metrics (Prometheus text format 0.0.4).
 * Both are built from one snapshot: the node's JSON (daemon/status.h,
 * through the API's hooks), the store's models and totals (read on the
 * pool) and the generation worker's counters. Pure: no loop, no store.
 *
 * /api/nvx/status: {"version", "http", "node": {id, listen, serve,
 * peers[], transfers[], counters{}, gossip{}}, "store": {bytes, limit,
 * models, pinned}, "models": [...] (daemon/api-ollama.h
 * nvx_api_store_models), "loaded": model name or null, "generation":
 * {requests, tokens, tokens_per_second}}.
 *
 * Thread safety: any thread.
 */
#include <jansson.h>
#include <stddef.h>

#include "daemon/gen.h"
#include "libcas/store.h"

/* One snapshot; every pointer borrowed (node and models may be NULL). */
typedef struct nvx_api_snapshot {
    const char *version, *http_addr;
    json_t *node;
    json_t *models;
    const cas_store_usage *usage; /* NULL: the store could not be read */
    const nvx_gen_stats *gen;
    const nvx_gen_loaded *loaded; /* NULL: none */
} nvx_api_snapshot;

/* The status JSON: a malloc'd string (*ret_len bytes) or NULL. */
char *nvx_api_status_json(const nvx_api_snapshot *s, size_t *ret_len);

/* The metrics text: a malloc'd string (*ret_len bytes) or NULL. */
char *nvx_api_metrics_text(const nvx_api_snapshot *s, size_t *ret_len);

/* The Content-Type of the metrics text. */
#define NVX_API_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
