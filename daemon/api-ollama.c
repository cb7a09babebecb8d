/* SPDX-License-Identifier: MIT */
#include "daemon/api-ollama.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcas/hash.h"

enum {
    NAMES_MAX = 4096, /* local names looked at for /api/tags */
};

int
nvx_api_error(int status, const char *msg, nvx_api_answer *ret)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return -ENOMEM;
    *ret = (nvx_api_answer){ .status = status, .body = s, .len = strlen(s) };
    return 0;
}

/* Takes o (a reference). */
static int
answer_json(int status, json_t *o, nvx_api_answer *ret)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return -ENOMEM;
    *ret = (nvx_api_answer){ .status = status, .body = s, .len = strlen(s) };
    return 0;
}

int
nvx_api_ollama_version(const char *version, nvx_api_answer *ret)
{
    return answer_json(200, json_pack("{s:s}", "version", version), ret);
}

static void
rfc3339(uint64_t t, char buf[static 32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

struct name_ent {
    uint8_t id[CAS_HASH_LEN];
    char *name;
};

struct names {
    struct name_ent *e;
    size_t n;
};

static int
collect_name(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    struct names *ns = userdata;
    if (ns->n >= NAMES_MAX)
        return 0;
    struct name_ent *ne = realloc(ns->e, (ns->n + 1) * sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    ns->e = ne;
    ne[ns->n].name = strdup(name);
    if (!ne[ns->n].name)
        return -ENOMEM;
    memcpy(ne[ns->n].id, id, CAS_HASH_LEN);
    ns->n++;
    return 0;
}

static void
names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->e[i].name);
    free(ns->e);
}

/* The first local name of id (byte order), or NULL. */
static const char *
name_of(const struct names *ns, const uint8_t id[static CAS_HASH_LEN])
{
    for (size_t i = 0; i < ns->n; i++)
        if (memcmp(ns->e[i].id, id, CAS_HASH_LEN) == 0)
            return ns->e[i].name;
    return NULL;
}

/* The details object Ollama clients expect; we know the format only from
 * the file's magic, which the pool job does not read: "gguf" is what every
 * shared model is, and clients only display it. */
static json_t *
details(void)
{
    return json_pack("{s:s,s:s,s:s,s:[],s:s,s:s}", "parent_model", "", "format", "gguf", "family",
                     "", "families", "parameter_size", "", "quantization_level", "");
}

static json_t *
model_json(const cas_model_info *mi, const char *name)
{
    char hex[CAS_HASH_HEX_LEN + 1], when[32], tag[NVX_API_TAG_HEX + 1];
    cas_hash_to_hex(mi->id, hex);
    rfc3339(mi->added, when);
    if (!name) {
        memcpy(tag, hex, NVX_API_TAG_HEX);
        tag[NVX_API_TAG_HEX] = '\0';
        name = tag;
    }
    return json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", name, "model", name, "modified_at", when,
                     "size", (json_int_t)mi->size, "digest", hex, "details", details());
}

struct tags_ctx {
    const struct names *ns;
    json_t *arr;
};

static int
add_tag(void *userdata, const cas_model_info *mi)
{
    struct tags_ctx *t = userdata;
    if (mi->state != CAS_MODEL_COMPLETE)
        return 0; /* a model being fetched cannot run yet */
    json_t *m = model_json(mi, name_of(t->ns, mi->id));
    if (!m || json_array_append_new(t->arr, m) < 0)
        return -ENOMEM;
    return 0;
}

int
nvx_api_ollama_tags(cas_store *s, nvx_api_answer *ret)
{
    struct names ns = { 0 };
    struct tags_ctx t = { .ns = &ns, .arr = json_array() };
    int r = t.arr ? cas_store_name_list(s, collect_name, &ns) : -ENOMEM;
    if (r == 0)
        r = cas_store_list(s, add_tag, &t);
    names_free(&ns);
    if (r == -ENOMEM) {
        json_decref(t.arr);
        return r;
    }
    if (r < 0) {
        json_decref(t.arr);
        return nvx_api_error(500, "cannot list the store", ret);
    }
    return answer_json(200, json_pack("{s:o}", "models", t.arr), ret);
}

int
nvx_api_model_resolve(cas_store *s, const char *name, uint8_t ret_id[static CAS_HASH_LEN])
{
    uint8_t id[CAS_HASH_LEN];
    int r = cas_store_name_get(s, name, id);
    if (r < 0) {
        /* Ollama clients add ":latest" to a bare name. */
        size_t n = strlen(name);
        if (n > 7 && n - 7 <= CAS_STORE_NAME_MAX && strcmp(name + n - 7, ":latest") == 0) {
            char base[CAS_STORE_NAME_MAX + 1];
            memcpy(base, name, n - 7);
            base[n - 7] = '\0';
            r = cas_store_name_get(s, base, id);
            if (r < 0)
                r = cas_store_resolve(s, base, id);
        }
    }
    if (r < 0)
        r = cas_store_resolve(s, name, id);
    if (r == -EINVAL)
        r = -ENOENT;
    if (r < 0)
        return r;
    cas_model_info mi;
    r = cas_store_model_info(s, id, &mi);
    if (r < 0 || mi.state != CAS_MODEL_COMPLETE)
        return -ENOENT;
    memcpy(ret_id, id, CAS_HASH_LEN);
    return 0;
}

/* The "model" (or older "name") member of a JSON request body. On failure
 * *ret holds the error answer and -EINVAL is returned. */
static int
request_model(const char *body, size_t len, json_t **ret_root, const char **ret_name,
              nvx_api_answer *ret)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return nvx_api_error(400, "the body must be a JSON object", ret) < 0 ? -ENOMEM : -EINVAL;
    }
    json_t *v = json_object_get(root, "model");
    if (!v)
        v = json_object_get(root, "name");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        json_decref(root);
        return nvx_api_error(400, "missing \"model\"", ret) < 0 ? -ENOMEM : -EINVAL;
    }
    *ret_root = root;
    *ret_name = json_string_value(v);
    return 0;
}

static int
not_found(int r, nvx_api_answer *ret)
{
    return nvx_api_error(
        404, r == -ENOTUNIQ ? "model prefix is ambiguous: give more of its id" : "model not found",
        ret);
}

struct models_ctx {
    const struct names *ns;
    nvx_serve_policy policy;
    json_t *arr;
};

static int
add_model(void *userdata, const cas_model_info *mi)
{
    struct models_ctx *t = userdata;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(mi->id, hex);
    const char *name = name_of(t->ns, mi->id);
    json_t *m = json_pack("{s:s, s:s?, s:I, s:b, s:b, s:b, s:I, s:I, s:I}", "id", hex, "name", name,
                          "size", (json_int_t)mi->size, "complete", mi->state == CAS_MODEL_COMPLETE,
                          "pinned", mi->pinned, "shared", nvx_share_allowed(t->policy, mi, false),
                          "signatures", (json_int_t)mi->n_sigs, "chunks", (json_int_t)mi->n_chunks,
                          "chunks_present", (json_int_t)mi->n_present);
    if (!m || json_array_append_new(t->arr, m) < 0)
        return -ENOMEM;
    return 0;
}

int
nvx_api_store_models(cas_store *s, nvx_serve_policy policy, json_t **ret)
{
    struct names ns = { 0 };
    struct models_ctx t = { .ns = &ns, .policy = policy, .arr = json_array() };
    int r = t.arr ? cas_store_name_list(s, collect_name, &ns) : -ENOMEM;
    if (r == 0)
        r = cas_store_list(s, add_model, &t);
    names_free(&ns);
    if (r < 0) {
        json_decref(t.arr);
        return r;
    }
    *ret = t.arr;
    return 0;
}

int
nvx_api_ollama_show(cas_store *s, const char *body, size_t len, nvx_api_answer *ret)
{
    json_t *root = NULL;
    const char *name;
    int r = request_model(body, len, &root, &name, ret);
    if (r < 0)
        return r == -EINVAL ? 0 : r;
    uint8_t id[CAS_HASH_LEN];
    cas_model_info mi;
    r = nvx_api_model_resolve(s, name, id);
    if (r == 0)
        r = cas_store_model_info(s, id, &mi);
    if (r < 0) {
        r = not_found(r, ret);
        json_decref(root);
        return r;
    }
    char hex[CAS_HASH_HEX_LEN + 1], when[32];
    cas_hash_to_hex(id, hex);
    rfc3339(mi.added, when);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:I,s:I,s:b,s:I},s:s}", "modelfile", "", "parameters",
                  "", "template", "", "details", details(), "model_info", "nvx.id", hex, "nvx.size",
                  (json_int_t)mi.size, "nvx.chunks", (json_int_t)mi.n_chunks, "nvx.pinned",
                  (int)mi.pinned, "nvx.signatures", (json_int_t)mi.n_sigs, "modified_at", when);
    json_decref(root);
    return answer_json(200, o, ret);
}

int
nvx_api_ollama_delete(cas_store *s, const char *body, size_t len, nvx_api_answer *ret)
{
    json_t *root = NULL;
    const char *name;
    int r = request_model(body, len, &root, &name, ret);
    if (r < 0)
        return r == -EINVAL ? 0 : r;
    uint8_t id[CAS_HASH_LEN];
    r = nvx_api_model_resolve(s, name, id);
    json_decref(root);
    if (r < 0)
        return not_found(r, ret);
    /* A pinned model is one the user asked to keep and share: HTTP clients
     * (anything on this machine) may not drop it; `nvx unpin` first. */
    r = cas_store_rm(s, id, 0);
    if (r == -EBUSY)
        return nvx_api_error(409, "model is pinned: run nvx unpin first", ret);
    if (r == -ENOENT)
        return not_found(r, ret);
    if (r < 0)
        return nvx_api_error(500, "cannot remove the model", ret);
    *ret = (nvx_api_answer){ .status = 200, .body = strdup(""), .len = 0 };
    return ret->body ? 0 : -ENOMEM;
}
