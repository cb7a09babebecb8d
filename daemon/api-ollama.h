/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_API_OLLAMA_H
#define NVX_DAEMON_API_OLLAMA_H
/*
 * Ollama-compatible read endpoints over the store: request body in,
 * (status, JSON body) out. No loop, no sockets: daemon/api.c runs them on
 * libuv's pool (they read LMDB and may remove files) and writes the answer.
 *
 * Model names: a model is named by one of its local names (`nvx name`),
 * that name with Ollama's ":latest" tag, its full id, or an id prefix of
 * at least CAS_HASH_PREFIX_MIN hex characters. /api/tags lists each
 * complete model once, under its first local name or else the first 16
 * hex characters of its id; "digest" is the full id.
 *
 * Thread safety: any thread (the store is thread-safe per call).
 */
#include <jansson.h>
#include <stddef.h>

#include "daemon/share.h"
#include "libcas/store.h"

enum {
    NVX_API_TAG_HEX = 16, /* hex characters of an id used as a model's name */
};

/* An answer: HTTP status and a malloc'd JSON body (the caller frees). */
typedef struct nvx_api_answer {
    int status;
    char *body;
    size_t len;
} nvx_api_answer;

/* Each returns 0 and fills *ret (a 4xx/5xx status comes with an
 * {"error": ...} body), or -ENOMEM. */
int nvx_api_ollama_version(const char *version, nvx_api_answer *ret);
int nvx_api_ollama_tags(cas_store *s, nvx_api_answer *ret);
int nvx_api_ollama_show(cas_store *s, const char *body, size_t len, nvx_api_answer *ret);
int nvx_api_ollama_delete(cas_store *s, const char *body, size_t len, nvx_api_answer *ret);

/* Every model of the store, complete or not, for the status page: a new
 * JSON array of {id, name (the first local name, or absent), size,
 * complete, pinned, shared (under policy), signatures, chunks,
 * chunks_present}. Returns 0 and *ret, or a negative errno. */
int nvx_api_store_models(cas_store *s, nvx_serve_policy policy, json_t **ret);

/* An error answer {"error": msg}. Returns 0 or -ENOMEM. */
int nvx_api_error(int status, const char *msg, nvx_api_answer *ret);

/* Resolves an API model name (above) to a complete model's id. Returns 0,
 * -ENOENT (no such model, or not complete), -ENOTUNIQ (ambiguous prefix). */
int nvx_api_model_resolve(cas_store *s, const char *name, uint8_t ret_id[static CAS_HASH_LEN]);

#endif
