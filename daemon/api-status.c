/* SPDX-License-Identifier: MIT */
#include "daemon/api-status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/addr-class.h"

char *
nvx_api_status_json(const nvx_api_snapshot *s, size_t *ret_len)
{
    const cas_store_usage *u = s->usage;
    const nvx_gen_stats *g = s->gen;
    json_t *o = json_pack("{s:s, s:s, s:O?, s:O?, s:s?, s:{s:I, s:I, s:I}}", "version", s->version,
                          "http", s->http_addr, "node", s->node, "models", s->models, "loaded",
                          s->loaded ? s->loaded->name : NULL, "generation", "requests",
                          (json_int_t)g->requests, "tokens", (json_int_t)g->tokens,
                          "tokens_per_second", (json_int_t)(g->last_tps + 0.5));
    if (o && u) {
        json_t *st = json_pack("{s:I, s:I, s:I, s:I}", "bytes", (json_int_t)u->bytes, "limit",
                               (json_int_t)u->limit, "models", (json_int_t)u->n_models, "pinned",
                               (json_int_t)u->n_pinned);
        if (!st || json_object_set_new(o, "store", st) < 0) {
            json_decref(o);
            o = NULL;
        }
    }
    char *str = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (str)
        *ret_len = strlen(str);
    return str;
}

/* ---- metrics ---- */

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    head(f, name, type, help);
    fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static uint64_t
num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* Peers, and bytes with the peers connected now, by address class. */
static void
peer_metrics(FILE *f, json_t *node)
{
    uint64_t n[_NVX_ADDR_CLASS_MAX] = { 0 }, in[_NVX_ADDR_CLASS_MAX] = { 0 },
             out[_NVX_ADDR_CLASS_MAX] = { 0 };
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(node, "peers"), i, p)
    {
        const char *cls = json_string_value(json_object_get(p, "class"));
        for (unsigned c = 0; cls && c < _NVX_ADDR_CLASS_MAX; c++)
            if (strcmp(cls, nvx_addr_class_name(c)) == 0) {
                n[c]++;
                in[c] += num(p, "bytes_in");
                out[c] += num(p, "bytes_out");
            }
    }
    static const struct {
        const char *name, *help;
    } m[3] = {
        { "nvx_peers", "Peer sessions now, by address class." },
        { "nvx_peer_received_bytes", "Bytes received from the peers connected now." },
        { "nvx_peer_sent_bytes", "Bytes sent to the peers connected now." },
    };
    const uint64_t *v[3] = { n, in, out };
    for (unsigned k = 0; k < 3; k++) {
        head(f, m[k].name, "gauge", m[k].help);
        for (unsigned c = 0; c < _NVX_ADDR_CLASS_MAX; c++)
            fprintf(f, "%s{class=\"%s\"} %" PRIu64 "\n", m[k].name, nvx_addr_class_name(c),
                    v[k][c]);
    }
}

static void
node_metrics(FILE *f, json_t *node)
{
    json_t *c = json_object_get(node, "counters"), *g = json_object_get(node, "gossip");
    peer_metrics(f, node);
    one(f, "nvx_fetched_bytes_total", "counter", "Chunk payload bytes received since start.",
        num(c, "bytes_fetched"));
    one(f, "nvx_chunks_verified_total", "counter",
        "Fetched chunks that matched their hash and were stored.", num(c, "chunks_verified"));
    one(f, "nvx_chunks_rejected_total", "counter", "Fetched chunks whose bytes failed their hash.",
        num(c, "chunks_rejected"));
    one(f, "nvx_transfers", "gauge", "Transfers running now.",
        json_array_size(json_object_get(node, "transfers")));
    head(f, "nvx_transfers_ended_total", "counter", "Transfers ended since start, by result.");
    fprintf(f,
            "nvx_transfers_ended_total{result=\"done\"} %" PRIu64 "\n"
            "nvx_transfers_ended_total{result=\"failed\"} %" PRIu64 "\n"
            "nvx_transfers_ended_total{result=\"cancelled\"} %" PRIu64 "\n",
            num(c, "transfers_done"), num(c, "transfers_failed"), num(c, "transfers_cancelled"));
    one(f, "nvx_gossip_records", "gauge", "Provider and name records gossip holds.",
        num(g, "records"));
}

char *
nvx_api_metrics_text(const nvx_api_snapshot *s, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (s->node)
        node_metrics(f, s->node);
    if (s->usage) {
        one(f, "nvx_store_bytes", "gauge", "Model bytes in the store (complete and partial).",
            s->usage->bytes);
        one(f, "nvx_store_limit_bytes", "gauge", "The store's size limit (0: none).",
            s->usage->limit);
        head(f, "nvx_store_models", "gauge", "Models in the store, by state.");
        fprintf(f,
                "nvx_store_models{state=\"complete\"} %" PRIu64 "\n"
                "nvx_store_models{state=\"partial\"} %" PRIu64 "\n",
                s->usage->n_complete, s->usage->n_partial);
        one(f, "nvx_store_pinned_models", "gauge", "Pinned models.", s->usage->n_pinned);
    }
    const nvx_gen_stats *g = s->gen;
    head(f, "nvx_generation_requests_total", "counter", "Generation requests ended, by result.");
    fprintf(f,
            "nvx_generation_requests_total{result=\"ok\"} %" PRIu64 "\n"
            "nvx_generation_requests_total{result=\"failed\"} %" PRIu64 "\n"
            "nvx_generation_requests_total{result=\"cancelled\"} %" PRIu64 "\n",
            g->requests - g->failed - g->cancelled, g->failed, g->cancelled);
    one(f, "nvx_generation_prompt_tokens_total", "counter",
        "Prompt tokens evaluated (not those the KV cache held).", g->prompt_tokens);
    one(f, "nvx_generation_tokens_total", "counter", "Tokens generated.", g->tokens);
    head(f, "nvx_generation_seconds_total", "counter", "Time spent generating those tokens.");
    fprintf(f, "nvx_generation_seconds_total %.6f\n", (double)g->eval_ns / 1e9);
    head(f, "nvx_generation_tokens_per_second", "gauge",
         "Tokens per second of the last generation of two tokens or more.");
    fprintf(f, "nvx_generation_tokens_per_second %.3f\n", g->last_tps);
    one(f, "nvx_model_loaded", "gauge", "1 while the generation worker holds a model.",
        s->loaded ? 1 : 0);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *ret_len = len;
    return buf;
}
