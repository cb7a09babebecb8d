/* SPDX-License-Identifier: MIT */
/* Fuzz target: the HTTP API's request path (daemon/http.c): bytes fed in
 * pieces whose sizes come from the input, every complete request routed
 * and answered, every error turned into its response, until the input is
 * used up or the connection fails. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const nvx_http_route routes[] = {
    { NVX_HTTP_GET, "/api/tags" },
    { NVX_HTTP_POST, "/api/show" },
    { NVX_HTTP_DELETE, "/api/delete" },
};

static void
answer(int status, const char *msg, bool keep)
{
    char *body, *resp;
    size_t blen, rlen;
    if (nvx_http_error_json(msg, &body, &blen) < 0)
        return;
    if (nvx_http_response_build(status, "application/json", body, blen, keep, false, &resp,
                                &rlen) == 0) {
        if (rlen < blen)
            __builtin_trap();
        free(resp);
    }
    free(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nvx_http_conn *c;
    if (size < 1 || nvx_http_conn_new(&c) < 0)
        return 0;
    /* The first byte picks the piece size (1..256): splits matter. */
    size_t piece = (size_t)data[0] + 1, off = 1;
    int requests = 0;
    while (off <= size) {
        size_t n = size - off < piece ? size - off : piece;
        size_t used = 0;
        int r = nvx_http_conn_feed(c, (const char *)data + off, n, &used);
        if (used > n)
            __builtin_trap();
        if (r < 0) {
            int st = nvx_http_conn_status(c);
            if (st < 400 || st > 599)
                __builtin_trap();
            answer(st, nvx_http_conn_error(c), false);
            break;
        }
        off += used;
        if (r == NVX_HTTP_REQUEST) {
            const nvx_http_req *q = nvx_http_conn_req(c);
            if (!q || q->path[0] != '/' || strlen(q->body) > q->body_len ||
                q->body_len > NVX_HTTP_BODY_MAX)
                __builtin_trap();
            int rt = nvx_http_route_find(routes, 3, q);
            answer(rt >= 0 ? 200 : 404, q->path, q->keep_alive);
            (void)nvx_http_host_is_loopback(q->host);
            (void)nvx_http_origin_is_loopback(q->origin);
            nvx_http_conn_next(c);
            requests++;
            continue;
        }
        if (n == 0) /* EOF fed */
            break;
    }
    nvx_http_conn_free(c);
    return requests >= 0 ? 0 : 1;
}
