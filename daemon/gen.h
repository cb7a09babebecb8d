/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_GEN_H
#define NVX_DAEMON_GEN_H
/*
 * The generation worker: one thread of its own that loads a store model
 * and runs the bundled runtime (runtime/generate.h) for the HTTP API, so
 * that inference never runs on the loop (nor on libuv's pool, whose four
 * threads serve peers' chunks).
 *
 * - One model is loaded at a time. Before a model is loaded it must pass
 *   the run policy (libcas/run-policy.h: complete, every chunk re-hashed,
 *   a trusted signature when required), the same check nvx run makes; a
 *   refused model is never mapped.
 * - A model stays loaded for the request's keep_alive after its last
 *   request ends (Ollama's semantics: NVX_GEN_KEEP_ALIVE_MS by default, 0
 *   unloads at once, negative keeps it until another model is asked for).
 * - Requests run one at a time in FIFO order; at most NVX_GEN_QUEUE_MAX
 *   wait behind the running one, beyond that nvx_gen_submit() says
 *   -EBUSY.
 * - nvx_gen_cancel() (a client gone) sets an atomic flag the worker checks
 *   before each token; a queued request is skipped.
 * - Results come back to the loop through a uv_async_t: the callbacks run
 *   on the loop, in order, and done runs exactly once per request.
 *
 * Loop thread only (every function; the worker is internal).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "libcas/hash.h"
#include "libcas/store.h"
#include "runtime/chat.h"

enum {
    NVX_GEN_QUEUE_MAX = 8,                 /* requests waiting behind the running one */
    NVX_GEN_KEEP_ALIVE_MS = 5 * 60 * 1000, /* Ollama's default keep_alive */
    NVX_GEN_MODEL_MAX = 256,               /* bytes of a model name */
    NVX_GEN_STOP_MAX = 8,                  /* stop sequences per request */
    NVX_GEN_STOP_LEN_MAX = 128,            /* bytes of one stop sequence */
    NVX_GEN_ERR_MAX = 256,                 /* bytes of an error message */
    NVX_GEN_MSGS_MAX = 1024,               /* messages of one chat request */
};

typedef struct nvx_gen nvx_gen;
typedef struct nvx_gen_req nvx_gen_req;

/* What to generate. Everything is copied by nvx_gen_submit(). */
typedef struct nvx_gen_params {
    const char *model;  /* an API model name (daemon/api-ollama.h) */
    const char *prompt; /* a raw prompt (when msgs is NULL) */
    size_t prompt_len;
    /* A chat (prompt unused): rendered with the model's chat template
     * (runtime/chat.h: optional system, then user and assistant
     * alternating, ending with user); the KV cache of the previous chat on
     * the loaded model is reused for the prefix they share. */
    const rt_chat_msg *msgs;
    size_t n_msgs;      /* 1..NVX_GEN_MSGS_MAX when msgs is set */
    double temperature; /* 0 = greedy */
    double top_p;       /* (0, 1] */
    uint64_t seed;
    bool seed_set;         /* else from the clock */
    int64_t max_new;       /* new tokens at most; < 0: up to the context end */
    int64_t keep_alive_ms; /* see above */
    size_t n_stop;
    const char *stop[NVX_GEN_STOP_MAX]; /* each 1..NVX_GEN_STOP_LEN_MAX bytes */
} nvx_gen_params;

/* The end of a request. */
typedef struct nvx_gen_result {
    int status; /* 0, or the HTTP status of a refusal before any text */
    char error[NVX_GEN_ERR_MAX];
    uint32_t prompt_tokens; /* including BOS */
    uint32_t cached_tokens; /* of them, found in the KV cache (chat only) */
    uint32_t eval_tokens;   /* tokens the sampler chose */
    uint64_t load_ns;       /* policy check and loading (0 when it was loaded) */
    uint64_t prompt_ns;     /* forward passes over the prompt */
    uint64_t eval_ns;       /* forward passes after it */
    uint64_t total_ns;      /* from submit to the end */
    bool length;            /* stopped by max_new or the context, not EOS or a stop string */
} nvx_gen_result;

/* Callbacks, on the loop, for one request. */
typedef struct nvx_gen_cbs {
    /* The model is loaded and generation begins (not called on refusal). */
    void (*started)(void *arg);
    /* Generated text: whole UTF-8 sequences, a stop string never included. */
    void (*text)(void *arg, const char *s, size_t len);
    /* Exactly once: r is 0 (res->status 0), -ECANCELED, or the error that
     * ended it (res->status and res->error say why for the client). After
     * it the request is freed: forget it. */
    void (*done)(void *arg, int r, const nvx_gen_result *res);
} nvx_gen_cbs;

typedef struct nvx_gen_opts {
    uv_loop_t *loop;
    cas_store *store;
    bool require_trusted;    /* CAS_RUN_REQUIRE_TRUSTED for every load */
    unsigned token_delay_ms; /* tests only: a pause before each token */
    unsigned threads;        /* for the matrix products; 0: the online cores (as nvx run) */
} nvx_gen_opts;

/* Starts the worker thread. Returns 0, -ENOMEM, errnos of uv. */
int nvx_gen_new(const nvx_gen_opts *opts, nvx_gen **ret);

/* Queues a request; cbs (borrowed, must outlive the request) are called
 * with arg. Returns 0 and *ret (valid until done runs), -EBUSY (the queue
 * is full), -EINVAL, -ENOMEM; on error no callback runs. */
int nvx_gen_submit(nvx_gen *g, const nvx_gen_params *p, const nvx_gen_cbs *cbs, void *arg,
                   nvx_gen_req **ret);

/* Cancels rq (before its done ran): done follows with -ECANCELED, or
 * with its real end if that raced ahead. */
void nvx_gen_cancel(nvx_gen_req *rq);

/* The loaded model, for /api/ps. */
typedef struct nvx_gen_loaded {
    char name[NVX_GEN_MODEL_MAX]; /* as the request that loaded it named it */
    uint8_t id[CAS_HASH_LEN];
    uint64_t size;      /* model bytes */
    int64_t expires_ms; /* wall clock (ms since the epoch); -1: never; 0: in use */
} nvx_gen_loaded;

/* Returns true and fills *ret when a model is loaded. */
bool nvx_gen_loaded_get(nvx_gen *g, nvx_gen_loaded *ret);

/* Counters since start, for /metrics (requests whose done ran). */
typedef struct nvx_gen_stats {
    uint64_t requests;      /* ended, whatever the end */
    uint64_t failed;        /* refused or failed (not cancelled) */
    uint64_t cancelled;     /* client gone or shutting down */
    uint64_t prompt_tokens; /* fed (cached ones not counted) */
    uint64_t tokens;        /* generated */
    uint64_t eval_ns;       /* time generating them */
    double last_tps;        /* tokens/s of the last request that made two or more */
} nvx_gen_stats;

void nvx_gen_stats_get(const nvx_gen *g, nvx_gen_stats *ret);

/* Cancels everything (each done runs with -ECANCELED), joins the worker,
 * then calls done(arg) from a close callback and frees g. Blocks the loop
 * until the running token ends. */
void nvx_gen_close(nvx_gen *g, void (*done)(void *arg), void *arg);

#endif
