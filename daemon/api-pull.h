/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_PULL_H
#define NVX_DAEMON_API_PULL_H
/*
 * Ollama's POST /api/pull on the mesh: the body names a target ("model",
 * or the older "name": a model id, id prefix or local name, PUBLISHER/NAME,
 * or a ticket ID@HOST:PORT; Ollama's ":latest" tag is dropped), fetched
 * through the node's hooks (daemon/api.h) and pinned when complete, as
 * Ollama keeps what it pulls. Streamed (the default) as Ollama's NDJSON
 * progress objects:
 *
 *   {"status":"pulling manifest"}
 *   {"status":"downloading ID16","digest":ID,"total":N,"completed":M}  (repeated)
 *   {"status":"verifying sha256 digest"}   (every chunk was verified on arrival)
 *   {"status":"writing manifest"}
 *   {"status":"success"}
 *
 * or, on failure after the head, {"error":"..."} as the last line; with
 * "stream": false one {"status":"success"} or an HTTP error (400 bad
 * target, 403 untrusted name, 404 no such name or no peer has the model,
 * 502 the fetch failed). A client that goes drops its interest in the
 * fetch (resumable).
 *
 * Loop thread only.
 */
#include <stdbool.h>
#include <stddef.h>

#include "daemon/api-ollama-gen.h"
#include "daemon/api.h"
#include "daemon/http-uv.h"

enum {
    NVX_API_PULL_TARGET_MAX = 1024, /* bytes of a pull target */
};

/* Parses a body (outside bytes): the target (":latest" dropped) into
 * target, "stream" (default true). Returns 0, or -EINVAL with err naming
 * the field. Pure. */
int nvx_api_pull_parse(const char *body, size_t len,
                       char target[static NVX_API_PULL_TARGET_MAX + 1], bool *ret_stream,
                       char err[static NVX_API_ERR_MAX]);

/* Answers the request on cl (body[0..len)); it always ends the response,
 * now or when the pull ends. ops is borrowed (it outlives the server). */
void nvx_api_pull_start(const nvx_api_node_ops *ops, nvx_http_client *cl, const char *body,
                        size_t len);

#endif
