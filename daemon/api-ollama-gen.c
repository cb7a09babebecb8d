/* SPDX-License-Identifier: MIT */
#include "daemon/api-ollama-gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcas/hash.h"

/* Ollama's sampling defaults (its Modelfile docs). */
#define OLLAMA_TEMPERATURE 0.8
#define OLLAMA_TOP_P       0.9

void
nvx_api_gen_in_clear(nvx_api_gen_in *in)
{
    json_decref(in->root);
    free(in->msgs);
    memset(in, 0, sizeof(*in));
}

json_t *
nvx_api_json_text(const char *s, size_t len)
{
    json_t *j = json_stringn(len ? s : "", len);
    if (j || len == 0)
        return j;
    char *c = malloc(len);
    if (!c)
        return NULL;
    /* Keep ASCII, replace the rest: rare (a byte-fallback token cut at the
     * end, or a model emitting garbage), and never worth a failed reply. */
    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(c, len);
    free(c);
    return j;
}

int
nvx_api_json_object(const char *body, size_t len, json_t **ret, char err[static NVX_API_ERR_MAX])
{
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, NVX_API_ERR_MAX, "body: not valid JSON (line %d: %s)", je.line, je.text);
        return -EINVAL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(err, NVX_API_ERR_MAX, "body: expected a JSON object");
        return -EINVAL;
    }
    *ret = o;
    return 0;
}

int
nvx_api_json_num(json_t *o, const char *key, double min, double max, double *ret,
                 char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(d >= min && d <= max)) { /* NaN fails too */
        snprintf(err, NVX_API_ERR_MAX, "%s: expected a number from %g to %g", key, min, max);
        return -EINVAL;
    }
    *ret = d;
    return 0;
}

int
nvx_api_json_int(json_t *o, const char *key, int64_t *ret, bool *ret_seen,
                 char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        snprintf(err, NVX_API_ERR_MAX, "%s: expected an integer", key);
        return -EINVAL;
    }
    *ret = (int64_t)json_integer_value(v);
    if (ret_seen)
        *ret_seen = true;
    return 0;
}

int
nvx_api_json_bool(json_t *o, const char *key, bool *ret, char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, NVX_API_ERR_MAX, "%s: expected true or false", key);
        return -EINVAL;
    }
    *ret = json_is_true(v);
    return 0;
}

static int
stop_one(json_t *v, const char *key, nvx_gen_params *p, char err[static NVX_API_ERR_MAX])
{
    size_t sl = json_is_string(v) ? json_string_length(v) : 0;
    if (sl == 0 || sl > NVX_GEN_STOP_LEN_MAX || strlen(json_string_value(v)) != sl) {
        snprintf(err, NVX_API_ERR_MAX, "%s: expected strings of 1 to %d bytes", key,
                 NVX_GEN_STOP_LEN_MAX);
        return -EINVAL;
    }
    if (p->n_stop == NVX_GEN_STOP_MAX) {
        snprintf(err, NVX_API_ERR_MAX, "%s: at most %d strings", key, NVX_GEN_STOP_MAX);
        return -EINVAL;
    }
    p->stop[p->n_stop++] = json_string_value(v);
    return 0;
}

int
nvx_api_json_stop(json_t *o, const char *key, nvx_gen_params *p, char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return stop_one(v, key, p, err);
    if (!json_is_array(v)) {
        snprintf(err, NVX_API_ERR_MAX, "%s: expected a string or an array of strings", key);
        return -EINVAL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        int r = stop_one(e, key, p, err);
        if (r < 0)
            return r;
    }
    return 0;
}

/* keep_alive: seconds as a number, or a duration "90s", "5m", "1h" (a bare
 * number in a string means seconds, as in Ollama). */
static int
keep_alive(json_t *o, int64_t *ret, char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(o, "keep_alive");
    if (!v || json_is_null(v))
        return 0;
    double secs = NAN;
    if (json_is_number(v)) {
        secs = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        double d = strtod(s, &end);
        if (end != s) {
            double unit = !strcmp(end, "") || !strcmp(end, "s") ? 1
                          : !strcmp(end, "ms")                  ? 1e-3
                          : !strcmp(end, "m")                   ? 60
                          : !strcmp(end, "h")                   ? 3600
                                                                : NAN;
            secs = d * unit;
        }
    }
    if (!(secs >= -1e9 && secs <= 1e9)) {
        snprintf(err, NVX_API_ERR_MAX,
                 "keep_alive: expected seconds, or a duration such as \"5m\", \"30s\", \"1h\"");
        return -EINVAL;
    }
    *ret = secs < 0 ? -1 : (int64_t)(secs * 1000.0);
    return 0;
}

static int
options(json_t *o, nvx_gen_params *p, char err[static NVX_API_ERR_MAX])
{
    json_t *opt = json_object_get(o, "options");
    if (!opt || json_is_null(opt))
        return 0;
    if (!json_is_object(opt)) {
        snprintf(err, NVX_API_ERR_MAX, "options: expected an object");
        return -EINVAL;
    }
    int64_t seed = 0;
    int r = nvx_api_json_num(opt, "temperature", 0, 100, &p->temperature, err);
    if (r == 0)
        r = nvx_api_json_num(opt, "top_p", 1e-6, 1, &p->top_p, err);
    if (r == 0)
        r = nvx_api_json_int(opt, "seed", &seed, &p->seed_set, err);
    if (r == 0)
        r = nvx_api_json_int(opt, "num_predict", &p->max_new, NULL, err);
    if (r == 0)
        r = nvx_api_json_stop(opt, "stop", p, err);
    p->seed = (uint64_t)seed;
    if (p->max_new < 0)
        p->max_new = -1; /* -1 and -2 (fill the context) both mean no cap here */
    return r;
}

/* The role of messages[i]: OpenAI's "developer" is its new name for
 * "system". */
static int
role_of(const char *s, rt_chat_role *ret)
{
    if (!strcmp(s, "system") || !strcmp(s, "developer"))
        *ret = RT_CHAT_SYSTEM;
    else if (!strcmp(s, "user"))
        *ret = RT_CHAT_USER;
    else if (!strcmp(s, "assistant"))
        *ret = RT_CHAT_ASSISTANT;
    else
        return -EINVAL;
    return 0;
}

/* What the templates take (runtime/chat.h): optional system first, then
 * user and assistant alternating from user; a reply is asked after a user
 * message. */
static bool
role_fits(rt_chat_role r, size_t i, bool sys, size_t n)
{
    size_t k = i - (sys ? 1 : 0); /* index among the turns */
    if (r == RT_CHAT_SYSTEM)
        return i == 0 && n > 1;
    if (i + 1 == n && r != RT_CHAT_USER)
        return false;
    return r == (k % 2 == 0 ? RT_CHAT_USER : RT_CHAT_ASSISTANT);
}

int
nvx_api_json_messages(nvx_api_gen_in *in, char err[static NVX_API_ERR_MAX])
{
    json_t *v = json_object_get(in->root, "messages");
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n == 0 || n > NVX_GEN_MSGS_MAX) {
        snprintf(err, NVX_API_ERR_MAX, "messages: required, an array of 1 to %d messages",
                 NVX_GEN_MSGS_MAX);
        return -EINVAL;
    }
    in->msgs = calloc(n, sizeof(*in->msgs));
    if (!in->msgs)
        return -ENOMEM;
    bool sys = false;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        json_t *role = json_object_get(m, "role"), *c = json_object_get(m, "content");
        rt_chat_role r;
        if (!json_is_string(role) || role_of(json_string_value(role), &r) < 0) {
            snprintf(err, NVX_API_ERR_MAX,
                     "messages[%zu].role: expected \"system\", \"user\" or \"assistant\"", i);
            return -EINVAL;
        }
        if (i == 0)
            sys = r == RT_CHAT_SYSTEM;
        if (!role_fits(r, i, sys, n)) {
            snprintf(err, NVX_API_ERR_MAX,
                     "messages[%zu]: expected an optional system message, then user and "
                     "assistant messages alternating, the last from the user",
                     i);
            return -EINVAL;
        }
        if (c && !json_is_null(c) && !json_is_string(c)) {
            snprintf(err, NVX_API_ERR_MAX, "messages[%zu].content: expected a string", i);
            return -EINVAL;
        }
        in->msgs[i].role = r;
        in->msgs[i].text = json_is_string(c) ? json_string_value(c) : "";
        in->msgs[i].len = json_is_string(c) ? json_string_length(c) : 0;
    }
    in->p.msgs = in->msgs;
    in->p.n_msgs = n;
    return 0;
}

int
nvx_api_ollama_generate_parse(const char *body, size_t len, bool chat, nvx_api_gen_in *ret,
                              char err[static NVX_API_ERR_MAX])
{
    nvx_api_gen_in in = { .stream = true };
    in.p.temperature = OLLAMA_TEMPERATURE;
    in.p.top_p = OLLAMA_TOP_P;
    in.p.max_new = -1;
    in.p.keep_alive_ms = NVX_GEN_KEEP_ALIVE_MS;
    int r = nvx_api_json_object(body, len, &in.root, err);
    if (r < 0)
        return r;
    json_t *m = json_object_get(in.root, "model");
    json_t *pr = json_object_get(in.root, "prompt");
    if (!json_is_string(m) || json_string_length(m) == 0 ||
        json_string_length(m) >= NVX_GEN_MODEL_MAX) {
        snprintf(err, NVX_API_ERR_MAX, "model: required, a model name (see /api/tags)");
        r = -EINVAL;
    } else if (!chat && pr && !json_is_null(pr) && !json_is_string(pr)) {
        snprintf(err, NVX_API_ERR_MAX, "prompt: expected a string");
        r = -EINVAL;
    }
    if (r == 0) {
        in.p.model = json_string_value(m);
        in.p.prompt = json_is_string(pr) ? json_string_value(pr) : "";
        in.p.prompt_len = json_is_string(pr) ? json_string_length(pr) : 0;
        r = chat ? nvx_api_json_messages(&in, err) : 0;
    }
    if (r == 0)
        r = nvx_api_json_bool(in.root, "stream", &in.stream, err);
    if (r == 0)
        r = keep_alive(in.root, &in.p.keep_alive_ms, err);
    if (r == 0)
        r = options(in.root, &in.p, err);
    if (r < 0) {
        nvx_api_gen_in_clear(&in);
        return r;
    }
    *ret = in;
    return 0;
}

/* Ollama's created_at: RFC 3339 UTC with nanoseconds. */
static void
now_rfc3339(char buf[static 40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    char base[24];
    if (!gmtime_r(&ts.tv_sec, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(base, sizeof(base), "1970-01-01T00:00:00");
    snprintf(buf, 40, "%s.%09ldZ", base, (long)ts.tv_nsec);
}

/* Dumps o (a reference, taken) with an optional "\n". */
static char *
dump(json_t *o, bool nl, size_t *ret_len)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (nl) {
        char *t = realloc(s, n + 2);
        if (!t) {
            free(s);
            return NULL;
        }
        s = t;
        s[n++] = '\n';
        s[n] = '\0';
    }
    *ret_len = n;
    return s;
}

/* /api/generate's "response": text, or /api/chat's "message". */
static int
set_text(json_t *o, bool chat, const char *text, size_t len)
{
    json_t *t = nvx_api_json_text(text, len);
    if (!chat)
        return json_object_set_new(o, "response", t);
    json_t *m = t ? json_pack("{s:s, s:o}", "role", "assistant", "content", t) : NULL;
    return json_object_set_new(o, "message", m);
}

char *
nvx_api_ollama_generate_chunk(const char *model, bool chat, const char *text, size_t len,
                              size_t *ret_len)
{
    char ts[40];
    now_rfc3339(ts);
    json_t *o = json_pack("{s:s, s:s}", "model", model, "created_at", ts);
    if (o &&
        (set_text(o, chat, text, len) < 0 || json_object_set_new(o, "done", json_false()) < 0)) {
        json_decref(o);
        o = NULL;
    }
    return dump(o, true, ret_len);
}

char *
nvx_api_ollama_generate_final(const char *model, bool chat, const char *text, size_t len,
                              const nvx_gen_result *res, bool nl, size_t *ret_len)
{
    char ts[40];
    now_rfc3339(ts);
    /* As Ollama: prompt_eval_count counts the tokens evaluated, not those
     * the KV cache already held. */
    json_t *o = json_pack("{s:s, s:s}", "model", model, "created_at", ts);
    json_t *rest =
        json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "done", 1, "done_reason",
                  res->length ? "length" : "stop", "total_duration", (json_int_t)res->total_ns,
                  "load_duration", (json_int_t)res->load_ns, "prompt_eval_count",
                  (json_int_t)(res->prompt_tokens - res->cached_tokens), "prompt_eval_duration",
                  (json_int_t)res->prompt_ns, "eval_count", (json_int_t)res->eval_tokens,
                  "eval_duration", (json_int_t)res->eval_ns);
    if (!o || !rest || set_text(o, chat, text, len) < 0 || json_object_update(o, rest) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(rest);
    return dump(o, nl, ret_len);
}

int
nvx_api_ollama_ps(const nvx_gen_loaded *l, nvx_api_answer *ret)
{
    json_t *arr = json_array();
    if (arr && l) {
        char hex[CAS_HASH_HEX_LEN + 1], exp[40] = "";
        cas_hash_to_hex(l->id, hex);
        if (l->expires_ms > 0) {
            time_t t = (time_t)(l->expires_ms / 1000);
            struct tm tm;
            if (!gmtime_r(&t, &tm) || !strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm))
                exp[0] = '\0';
        }
        /* expires_at: "" while in use; far future when kept forever. */
        json_t *m =
            json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "name", l->name, "model", l->name, "size",
                      (json_int_t)l->size, "digest", hex, "expires_at",
                      l->expires_ms < 0 ? "9999-12-31T23:59:59Z" : exp, "size_vram", (json_int_t)0);
        if (!m || json_array_append_new(arr, m) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *o = arr ? json_pack("{s:o}", "models", arr) : NULL;
    size_t n = 0;
    char *s = dump(o, false, &n);
    if (!s)
        return -ENOMEM;
    *ret = (nvx_api_answer){ .status = 200, .body = s, .len = n };
    return 0;
}
