/* SPDX-License-Identifier: MIT */
/*
 * The generation worker (gen.h). The worker thread owns the loaded model;
 * the loop owns requests until they are queued and again once their done
 * event is delivered. Between the two: the queue and the loaded model's
 * description under mu (the worker waits on cond), and an event list under
 * mu handed to the loop by uv_async_send().
 */
#define _DEFAULT_SOURCE /* MAP_* on some libcs */
#include "daemon/gen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/api-ollama.h"
#include "daemon/gen-chat.h"
#include "daemon/log.h"
#include "libcas/run-policy.h"
#include "runtime/chat-session.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/pool.h"

enum ev_kind {
    EV_STARTED,
    EV_TEXT,
    EV_DONE
};

typedef struct ev {
    struct ev *next;
    nvx_gen_req *rq;
    enum ev_kind kind;
    int r;
    size_t len;
    char data[]; /* EV_TEXT bytes */
} ev;

struct nvx_gen_req {
    nvx_gen_req *next; /* the queue */
    nvx_gen *g;
    const nvx_gen_cbs *cbs;
    void *arg;
    atomic_bool cancel;
    char model[NVX_GEN_MODEL_MAX];
    char *prompt; /* a raw prompt, or the chat's texts one after another */
    size_t prompt_len;
    rt_chat_msg *msgs; /* a chat: texts point into prompt */
    size_t n_msgs;
    double temperature, top_p;
    uint64_t seed;
    int64_t max_new, keep_alive_ms;
    size_t n_stop, stop_max;
    char stop[NVX_GEN_STOP_MAX][NVX_GEN_STOP_LEN_MAX + 1];
    uint64_t t_submit;
    nvx_gen_result res; /* written by the worker, read by the loop after EV_DONE */
};

/* The loaded model: worker thread only, except `desc` (under mu). */
typedef struct loaded {
    bool on;
    uint8_t id[CAS_HASH_LEN];
    void *map;
    size_t map_len;
    void *arena;
    rt_pool *pool; /* the matrix products' threads, as nvx run has them */
    rt_model *m;
    rt_tokenizer *tok;
    bool has_tmpl; /* else tmpl_why says why chat is refused */
    rt_chat_template tmpl;
    char tmpl_why[NVX_GEN_CHAT_WHY_MAX];
    int32_t stop_ids[RT_CHAT_MAX_STOP_IDS];
    size_t n_stop_ids;
    int32_t *hist; /* the tokens the KV cache holds, positions 0..n_hist */
    size_t n_hist;
} loaded;

struct nvx_gen {
    uv_loop_t *loop;
    cas_store *store;
    unsigned policy, delay_ms, threads;
    uv_thread_t thread;
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cond;
    /* under mu */
    nvx_gen_req *head, *tail;
    ev *ev_head, *ev_tail;
    bool stopping;
    atomic_bool stop_flag; /* stopping, read per token without mu */
    bool has_desc;
    nvx_gen_loaded desc;
    uint64_t expire_at; /* uv_hrtime() ns when the idle model goes; 0: never */
    /* loop only */
    unsigned n_pending; /* submitted, done not yet delivered */
    nvx_gen_stats stats;
    bool closing;
    void (*done)(void *);
    void *done_arg;
    /* worker only */
    loaded cur;
};

static void
post(nvx_gen *g, nvx_gen_req *rq, enum ev_kind kind, int r, const char *data, size_t len)
{
    ev *e = malloc(sizeof(*e) + len);
    if (!e) {
        /* Text is lost, but DONE must arrive: spin until memory comes
         * back rather than leave a response open forever. */
        if (kind != EV_DONE)
            return;
        while (!(e = malloc(sizeof(*e))))
            uv_sleep(10);
        len = 0;
    }
    e->next = NULL;
    e->rq = rq;
    e->kind = kind;
    e->r = r;
    e->len = len;
    if (len)
        memcpy(e->data, data, len);
    uv_mutex_lock(&g->mu);
    if (g->ev_tail)
        g->ev_tail->next = e;
    else
        g->ev_head = e;
    g->ev_tail = e;
    uv_mutex_unlock(&g->mu);
    uv_async_send(&g->async);
}

static void refuse(nvx_gen_req *rq, int r, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends rq before any text with an HTTP status and a message. */
static void
refuse(nvx_gen_req *rq, int r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->res.error, sizeof(rq->res.error), fmt, ap);
    va_end(ap);
    rq->res.status = status;
    rq->res.total_ns = uv_hrtime() - rq->t_submit;
    post(rq->g, rq, EV_DONE, r, NULL, 0);
}

/* ---- the loaded model (worker thread) ---- */

static void
unload(nvx_gen *g)
{
    loaded *c = &g->cur;
    if (!c->on)
        return;
    rt_tokenizer_free(c->tok);
    rt_pool_free(c->pool);
    free(c->arena);
    free(c->hist);
    munmap(c->map, c->map_len);
    memset(c, 0, sizeof(*c));
    uv_mutex_lock(&g->mu);
    g->has_desc = false;
    uv_mutex_unlock(&g->mu);
    log_info("gen: model unloaded");
}

static int
map_model(nvx_gen *g, const uint8_t id[static CAS_HASH_LEN], uint64_t size, loaded *c)
{
    char *path = NULL;
    int r = cas_store_data_path(g->store, id, &path);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (st.st_size == 0 || (uint64_t)st.st_size != size || size > SIZE_MAX)
        r = -EBADMSG; /* the manifest says otherwise: rot or tampering */
    if (r == 0) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            r = -errno;
        } else {
            c->map = p;
            c->map_len = (size_t)size;
        }
    }
    close(fd);
    return r;
}

/* Says why the policy refused id, for the client. */
static void
refuse_policy(nvx_gen_req *rq, int r, const cas_run_verdict *v)
{
    if (r == -ENOENT)
        refuse(rq, r, 404, "model \"%s\" not found", rq->model);
    else if (r == -EAGAIN)
        refuse(rq, r, 409,
               "model \"%s\" is not complete (%" PRIu64 " of %" PRIu64 " chunks): fetch it first",
               rq->model, v->info.n_present, v->info.n_chunks);
    else if (r == -EBADMSG && v->bad.error)
        refuse(rq, r, 422,
               "model \"%s\": chunk %" PRIu64 " does not match its id, not loading it: run "
               "nvx verify, then fetch or add the model again",
               rq->model, v->bad.chunk_index);
    else if (r == -EBADMSG)
        refuse(rq, r, 422, "model \"%s\" failed verification, not loading it: run nvx verify",
               rq->model);
    else if (r == -EACCES)
        refuse(rq, r, 403,
               "model \"%s\" has no signature from a trusted key, and this node requires one",
               rq->model);
    else
        refuse(rq, r, 500, "cannot check model \"%s\": %s", rq->model, strerror(-r));
}

/* Checks, maps and builds the model rq names, replacing the loaded one.
 * Returns 0, or < 0 with rq refused. */
static int
load(nvx_gen *g, nvx_gen_req *rq, const uint8_t id[static CAS_HASH_LEN])
{
    unload(g);
    cas_run_verdict v;
    int r = cas_run_policy_check(g->store, id, g->policy, &v);
    if (r < 0) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(id, hex);
        log_warn_errno(r, "gen: model %.16s refused by the run policy", hex);
        refuse_policy(rq, r, &v);
        return r;
    }
    loaded c = { 0 };
    r = map_model(g, id, v.info.size, &c);
    if (r < 0) {
        refuse(rq, r, 422, "cannot map model \"%s\": %s", rq->model, strerror(-r));
        return r;
    }
    rt_model_opts mo = RT_MODEL_OPTS_INIT;
    rt_arena_report rep;
    r = rt_model_plan(c.map, c.map_len, &mo, &rep);
    size_t size = rep.total + RT_ARENA_ALIGN;
    if (r == 0) {
        c.arena = aligned_alloc(RT_ARENA_ALIGN,
                                (size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
        r = c.arena ? rt_model_init(c.map, c.map_len, &mo, c.arena, size, &c.m, NULL) : -ENOMEM;
    }
    /* Threads once per load, not per request; none when one would do. */
    if (r == 0 && g->threads != 1 && rt_pool_new(g->threads, &c.pool) == 0)
        rt_model_set_parallel(c.m, rt_pool_parallel(c.pool));
    if (r == 0)
        r = rt_tokenizer_load_gguf(c.map, c.map_len, &c.tok);
    if (r == 0 && rt_tokenizer_n_vocab(c.tok) > rt_model_config(c.m)->vocab_size)
        r = -EBADMSG;
    if (r < 0) {
        rt_tokenizer_free(c.tok);
        rt_pool_free(c.pool);
        free(c.arena);
        munmap(c.map, c.map_len);
        if (r == -ENOMEM)
            refuse(rq, r, 507, "not enough memory to load model \"%s\"", rq->model);
        else
            refuse(rq, r, 422,
                   "model \"%s\" is not a model this runtime can serve (a llama GGUF with its "
                   "vocabulary)",
                   rq->model);
        return r;
    }
    c.has_tmpl = nvx_gen_chat_template(c.map, c.map_len, &c.tmpl, c.tmpl_why) == 0;
    if (c.has_tmpl)
        c.n_stop_ids = rt_chat_stop_ids(c.m, c.tok, c.tmpl, c.stop_ids);
    c.on = true;
    memcpy(c.id, id, CAS_HASH_LEN);
    g->cur = c;
    uv_mutex_lock(&g->mu);
    g->has_desc = true;
    memset(&g->desc, 0, sizeof(g->desc));
    snprintf(g->desc.name, sizeof(g->desc.name), "%s", rq->model);
    memcpy(g->desc.id, id, CAS_HASH_LEN);
    g->desc.size = v.info.size;
    uv_mutex_unlock(&g->mu);
    log_info("gen: model %s loaded (%" PRIu64 " bytes, verified)", rq->model, v.info.size);
    return 0;
}

/* ---- one request (worker thread) ---- */

/* Text on its way out: held back while it could still become a stop
 * string or ends inside a UTF-8 sequence. */
typedef struct run {
    nvx_gen *g;
    nvx_gen_req *rq;
    uint32_t skip; /* prompt tokens still to come (rt_generate emits them too) */
    char *buf;
    size_t len, cap, sent;
    uint64_t t_first; /* first generated token */
    bool stopped;
} run;

/* Position of the first stop string in buf[from..len), or len. */
static size_t
find_stop(const run *u, size_t from)
{
    size_t best = u->len;
    for (size_t i = 0; i < u->rq->n_stop; i++) {
        const char *s = u->rq->stop[i];
        size_t sl = strlen(s);
        for (size_t p = from; p + sl <= u->len && p < best; p++)
            if (memcmp(u->buf + p, s, sl) == 0) {
                best = p;
                break;
            }
    }
    return best;
}

/* The end of whole UTF-8 sequences in buf[0..end). */
static size_t
utf8_cut(const char *buf, size_t end, size_t floor)
{
    for (size_t back = 1; back <= 4 && end >= floor + back; back++) {
        uint8_t b = (uint8_t)buf[end - back];
        if ((b & 0xC0) == 0x80)
            continue;
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need > back ? end - back : end;
    }
    return end;
}

static void
flush(run *u, size_t upto)
{
    if (upto > u->sent) {
        post(u->g, u->rq, EV_TEXT, 0, u->buf + u->sent, upto - u->sent);
        u->sent = upto;
    }
}

static int
on_token(void *userdata, int32_t token, const char *piece, size_t len)
{
    run *u = userdata;
    (void)token;
    if (atomic_load(&u->rq->cancel) || atomic_load(&u->g->stop_flag))
        return -ECANCELED;
    if (u->skip) {
        u->skip--;
        return 0;
    }
    if (!u->t_first)
        u->t_first = uv_hrtime();
    if (u->g->delay_ms)
        uv_sleep(u->g->delay_ms);
    if (u->cap - u->len < len) {
        size_t cap = (u->cap + len) * 2;
        char *nb = realloc(u->buf, cap);
        if (!nb)
            return -ENOMEM;
        u->buf = nb;
        u->cap = cap;
    }
    memcpy(u->buf + u->len, piece, len);
    size_t from = u->sent, old = u->len;
    u->len += len;
    if (u->rq->n_stop) {
        from = old >= u->rq->stop_max ? old - u->rq->stop_max + 1 : 0;
        if (from < u->sent)
            from = u->sent;
        size_t at = find_stop(u, from);
        if (at < u->len) {
            u->len = at;
            flush(u, at);
            u->stopped = true;
            return 1;
        }
    }
    size_t hold = u->rq->stop_max ? u->rq->stop_max - 1 : 0;
    size_t safe = u->len > u->sent + hold ? u->len - hold : u->sent;
    flush(u, utf8_cut(u->buf, safe, u->sent));
    return 0;
}

/* The raw prompt's token count: rt_generate hands the prompt's tokens to
 * the callback as well, and the API answers only what follows. */
static int
prompt_tokens(const nvx_gen *g, const nvx_gen_req *rq, size_t *ret)
{
    size_t cap = rt_tokenizer_encode_bound(rq->prompt_len);
    int32_t *ptok = malloc(cap * sizeof(*ptok));
    unsigned tf = rt_tokenizer_add_bos(g->cur.tok) ? RT_TOK_ADD_BOS : 0;
    int r = ptok ? rt_tokenizer_encode(g->cur.tok, rq->prompt, rq->prompt_len, tf, ptok, cap, ret)
                 : -ENOMEM;
    free(ptok);
    return r;
}

/* Runs a chat's tokens toks[0..n) (taken: they become the cache's record)
 * after the prefix the KV cache shares with the previous chat. */
static int
run_chat(nvx_gen *g, nvx_gen_req *rq, rt_sampler *smp, run *u, int32_t *toks, size_t n,
         rt_generate_stats *gs)
{
    loaded *c = &g->cur;
    uint32_t ctx = rt_model_config(c->m)->seq_len;
    size_t cached = nvx_gen_chat_common(toks, n, c->hist, c->n_hist);
    rt_generate_tokens_opts o = {
        .max_new = rq->max_new,
        .n_cached = cached,
        .stop_ids = c->stop_ids,
        .n_stop_ids = c->n_stop_ids,
    };
    size_t valid = 0;
    int r = rt_generate_tokens(c->m, c->tok, smp, toks, n, n > ctx ? n : ctx, &o, on_token, u, gs,
                               &valid);
    free(c->hist);
    c->hist = toks;
    c->n_hist = valid;
    rq->res.cached_tokens = gs->n_cached;
    return r;
}

/* Runs rq on the loaded model. */
static void
generate(nvx_gen *g, nvx_gen_req *rq, uint64_t t_loaded)
{
    loaded *c = &g->cur;
    const rt_config *cfg = rt_model_config(c->m);
    run u = { .g = g, .rq = rq };
    int32_t *toks = NULL; /* a chat's tokens */
    size_t n = 0;
    int r;
    if (rq->msgs && !c->has_tmpl) {
        refuse(rq, -ENOTSUP, 400,
               "model \"%s\" cannot chat: %s; use /api/generate with a prompt written for it",
               rq->model, c->tmpl_why);
        return;
    }
    if (rq->msgs)
        r = nvx_gen_chat_encode(c->tok, c->tmpl, rq->msgs, rq->n_msgs, cfg->seq_len, &toks, &n);
    else
        r = prompt_tokens(g, rq, &n);
    u.skip = !rq->msgs && n > 1 ? (uint32_t)(n - 1) : 0;
    size_t scratch_len = rt_sampler_scratch_size(cfg->vocab_size);
    void *scratch = r == 0 ? malloc(scratch_len) : NULL;
    rt_sampler smp;
    if (r == 0 && !scratch)
        r = -ENOMEM;
    if (r == 0 && rt_sampler_init(&smp, cfg->vocab_size, (float)rq->temperature, (float)rq->top_p,
                                  rq->seed, scratch, scratch_len) < 0)
        r = -EINVAL;
    if (r < 0) {
        free(scratch);
        free(toks);
        refuse(rq, r, r == -EINVAL ? 400 : 500, "cannot start generation: %s",
               r == -EINVAL ? "bad sampling options or message order" : strerror(-r));
        return;
    }
    post(g, rq, EV_STARTED, 0, NULL, 0);
    rt_generate_stats gs = { 0 };
    uint64_t t0 = uv_hrtime();
    if (rq->msgs) {
        r = run_chat(g, rq, &smp, &u, toks, n, &gs);
    } else {
        rt_generate_opts go = RT_GENERATE_OPTS_INIT;
        go.max_new = rq->max_new;
        r = rt_generate(c->m, c->tok, &smp, rq->prompt, rq->prompt_len, &go, on_token, &u, &gs);
        c->n_hist = 0; /* the cache holds this prompt now, not a chat */
    }
    uint64_t t1 = uv_hrtime();
    free(scratch);
    if (r == 0)
        flush(&u, u.len); /* the held-back tail: no stop string came */
    free(u.buf);
    nvx_gen_result *res = &rq->res;
    res->prompt_tokens = gs.n_prompt;
    res->eval_tokens = gs.n_generated;
    res->load_ns = t_loaded;
    res->prompt_ns = (u.t_first ? u.t_first : t1) - t0;
    res->eval_ns = u.t_first ? t1 - u.t_first : 0;
    res->total_ns = t1 - rq->t_submit;
    res->length = !u.stopped && gs.stop_token < 0;
    if (r == -EMSGSIZE) {
        refuse(rq, r, 400, "the prompt is %" PRIu32 " tokens, the model's context is %" PRIu32,
               gs.n_prompt, cfg->seq_len);
        return;
    }
    if (r < 0 && r != -ECANCELED)
        snprintf(res->error, sizeof(res->error), "generation failed: %s", strerror(-r));
    post(g, rq, EV_DONE, r, NULL, 0);
}

static void
serve_one(nvx_gen *g, nvx_gen_req *rq)
{
    if (atomic_load(&rq->cancel)) {
        post(g, rq, EV_DONE, -ECANCELED, NULL, 0);
        return;
    }
    uint8_t id[CAS_HASH_LEN];
    int r = nvx_api_model_resolve(g->store, rq->model, id);
    if (r < 0) {
        refuse(rq, r, 404, "model \"%s\" not found", rq->model);
        return;
    }
    uint64_t t0 = uv_hrtime();
    if (!g->cur.on || memcmp(g->cur.id, id, CAS_HASH_LEN) != 0) {
        if (load(g, rq, id) < 0)
            return;
    }
    uint64_t t_load = g->cur.on ? uv_hrtime() - t0 : 0;
    uv_mutex_lock(&g->mu);
    g->desc.expires_ms = 0; /* in use */
    g->expire_at = 0;
    uv_mutex_unlock(&g->mu);
    /* generate() ends by posting DONE, after which the loop frees rq:
     * nothing of rq may be read once it returns. */
    int64_t ka = rq->keep_alive_ms;
    generate(g, rq, t_load);
    if (ka == 0) {
        unload(g);
        return;
    }
    uv_mutex_lock(&g->mu);
    if (ka > 0) {
        g->expire_at = uv_hrtime() + (uint64_t)ka * 1000000u;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g->desc.expires_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ka;
    } else {
        g->desc.expires_ms = -1;
    }
    uv_mutex_unlock(&g->mu);
}

static void
worker(void *arg)
{
    nvx_gen *g = arg;
    uv_mutex_lock(&g->mu);
    for (;;) {
        while (!g->stopping && !g->head) {
            if (!g->has_desc || !g->expire_at) {
                uv_cond_wait(&g->cond, &g->mu);
                continue;
            }
            uint64_t now = uv_hrtime();
            if (now >= g->expire_at) {
                /* keep_alive ran out: free the model's memory. */
                g->expire_at = 0;
                uv_mutex_unlock(&g->mu);
                unload(g);
                uv_mutex_lock(&g->mu);
                continue;
            }
            (void)uv_cond_timedwait(&g->cond, &g->mu, g->expire_at - now);
        }
        nvx_gen_req *rq = g->head;
        if (!rq)
            break; /* stopping, nothing queued */
        g->head = rq->next;
        if (!g->head)
            g->tail = NULL;
        /* stopping is the loop's, under mu: read it before letting go. */
        if (g->stopping)
            atomic_store(&rq->cancel, true);
        uv_mutex_unlock(&g->mu);
        serve_one(g, rq);
        uv_mutex_lock(&g->mu);
    }
    uv_mutex_unlock(&g->mu);
    unload(g);
}

/* ---- the loop side ---- */

static void
req_free(nvx_gen_req *rq)
{
    free(rq->msgs);
    free(rq->prompt);
    free(rq);
}

static void
count(nvx_gen_stats *st, int r, const nvx_gen_result *res)
{
    st->requests++;
    if (r == -ECANCELED)
        st->cancelled++;
    else if (r < 0)
        st->failed++;
    st->prompt_tokens += res->prompt_tokens - res->cached_tokens;
    st->tokens += res->eval_tokens;
    st->eval_ns += res->eval_ns;
    /* The first token's time is the prompt's: eval_ns covers the rest. */
    if (res->eval_tokens > 1 && res->eval_ns)
        st->last_tps = (double)(res->eval_tokens - 1) * 1e9 / (double)res->eval_ns;
}

static void
deliver(nvx_gen *g)
{
    uv_mutex_lock(&g->mu);
    ev *e = g->ev_head;
    g->ev_head = g->ev_tail = NULL;
    uv_mutex_unlock(&g->mu);
    while (e) {
        ev *next = e->next;
        nvx_gen_req *rq = e->rq;
        if (e->kind == EV_STARTED && rq->cbs->started)
            rq->cbs->started(rq->arg);
        else if (e->kind == EV_TEXT && rq->cbs->text)
            rq->cbs->text(rq->arg, e->data, e->len);
        else if (e->kind == EV_DONE) {
            g->n_pending--;
            count(&g->stats, e->r, &rq->res);
            rq->cbs->done(rq->arg, e->r, &rq->res);
            req_free(rq);
        }
        free(e);
        e = next;
    }
}

static void
on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void
async_closed(uv_handle_t *h)
{
    nvx_gen *g = h->data;
    void (*done)(void *) = g->done;
    void *arg = g->done_arg;
    uv_cond_destroy(&g->cond);
    uv_mutex_destroy(&g->mu);
    free(g);
    if (done)
        done(arg);
}

int
nvx_gen_new(const nvx_gen_opts *opts, nvx_gen **ret)
{
    nvx_gen *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->loop = opts->loop;
    g->store = opts->store;
    g->policy = opts->require_trusted ? CAS_RUN_REQUIRE_TRUSTED : 0;
    g->delay_ms = opts->token_delay_ms;
    g->threads = opts->threads;
    atomic_init(&g->stop_flag, false);
    int r = uv_mutex_init(&g->mu);
    if (r < 0)
        goto fail_mu;
    if ((r = uv_cond_init(&g->cond)) < 0)
        goto fail_cond;
    if ((r = uv_async_init(g->loop, &g->async, on_async)) < 0)
        goto fail_async;
    g->async.data = g;
    if ((r = uv_thread_create(&g->thread, worker, g)) < 0) {
        g->closing = true;
        uv_close((uv_handle_t *)&g->async, async_closed); /* frees g */
        return r;
    }
    *ret = g;
    return 0;
fail_async:
    uv_cond_destroy(&g->cond);
fail_cond:
    uv_mutex_destroy(&g->mu);
fail_mu:
    free(g);
    return r;
}

/* Copies the prompt, or a chat's messages with their texts in one block. */
static int
copy_input(nvx_gen_req *rq, const nvx_gen_params *p)
{
    size_t total = p->msgs ? 0 : p->prompt_len;
    for (size_t i = 0; p->msgs && i < p->n_msgs; i++) {
        if (p->msgs[i].len > SIZE_MAX - 1 - total)
            return -EINVAL;
        total += p->msgs[i].len;
    }
    rq->prompt = malloc(total + 1);
    if (!rq->prompt)
        return -ENOMEM;
    if (!p->msgs) {
        memcpy(rq->prompt, p->prompt, p->prompt_len);
        rq->prompt[p->prompt_len] = '\0';
        rq->prompt_len = p->prompt_len;
        return 0;
    }
    rq->msgs = malloc(p->n_msgs * sizeof(*rq->msgs));
    if (!rq->msgs)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < p->n_msgs; i++) {
        memcpy(rq->prompt + off, p->msgs[i].text, p->msgs[i].len);
        rq->msgs[i] = (rt_chat_msg){ p->msgs[i].role, rq->prompt + off, p->msgs[i].len };
        off += p->msgs[i].len;
    }
    rq->prompt[off] = '\0';
    rq->n_msgs = p->n_msgs;
    return 0;
}

int
nvx_gen_submit(nvx_gen *g, const nvx_gen_params *p, const nvx_gen_cbs *cbs, void *arg,
               nvx_gen_req **ret)
{
    if (!p->model || strlen(p->model) >= NVX_GEN_MODEL_MAX || p->n_stop > NVX_GEN_STOP_MAX ||
        !cbs || !cbs->done || (p->msgs && (p->n_msgs == 0 || p->n_msgs > NVX_GEN_MSGS_MAX)))
        return -EINVAL;
    /* One running, NVX_GEN_QUEUE_MAX waiting: counted on the loop from
     * submit to done, so the bound does not depend on the worker's pace. */
    if (g->n_pending > NVX_GEN_QUEUE_MAX || g->closing)
        return -EBUSY;
    nvx_gen_req *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return -ENOMEM;
    int r = copy_input(rq, p);
    if (r < 0) {
        req_free(rq);
        return r;
    }
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        if (sl == 0 || sl > NVX_GEN_STOP_LEN_MAX) {
            req_free(rq);
            return -EINVAL;
        }
        memcpy(rq->stop[i], p->stop[i], sl + 1);
        if (sl > rq->stop_max)
            rq->stop_max = sl;
    }
    rq->n_stop = p->n_stop;
    snprintf(rq->model, sizeof(rq->model), "%s", p->model);
    rq->g = g;
    rq->cbs = cbs;
    rq->arg = arg;
    atomic_init(&rq->cancel, false);
    rq->temperature = p->temperature;
    rq->top_p = p->top_p;
    rq->seed = p->seed_set ? p->seed : uv_hrtime() ^ ((uint64_t)getpid() << 32);
    rq->max_new = p->max_new;
    rq->keep_alive_ms = p->keep_alive_ms;
    rq->t_submit = uv_hrtime();
    uv_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = rq;
    else
        g->head = rq;
    g->tail = rq;
    uv_cond_signal(&g->cond);
    uv_mutex_unlock(&g->mu);
    g->n_pending++;
    *ret = rq;
    return 0;
}

void
nvx_gen_cancel(nvx_gen_req *rq)
{
    atomic_store(&rq->cancel, true);
}

bool
nvx_gen_loaded_get(nvx_gen *g, nvx_gen_loaded *ret)
{
    uv_mutex_lock(&g->mu);
    bool on = g->has_desc;
    if (on)
        *ret = g->desc;
    uv_mutex_unlock(&g->mu);
    return on;
}

void
nvx_gen_stats_get(const nvx_gen *g, nvx_gen_stats *ret)
{
    *ret = g->stats;
}

void
nvx_gen_close(nvx_gen *g, void (*done)(void *arg), void *arg)
{
    g->closing = true;
    g->done = done;
    g->done_arg = arg;
    uv_mutex_lock(&g->mu);
    g->stopping = true;
    atomic_store(&g->stop_flag, true);
    for (nvx_gen_req *rq = g->head; rq; rq = rq->next)
        atomic_store(&rq->cancel, true);
    uv_cond_signal(&g->cond);
    uv_mutex_unlock(&g->mu);
    /* The worker ends within one token (or one policy check: hashing a
     * model cannot be interrupted); every request it held has posted its
     * DONE by then, and deliver() ends their responses. */
    uv_thread_join(&g->thread);
    deliver(g);
    uv_close((uv_handle_t *)&g->async, async_closed);
}
