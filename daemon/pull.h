/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_PULL_H
#define NVX_DAEMON_PULL_H
/*
 * A fetch asked for by a target people type: resolving it (a full id, an
 * id prefix or local name of a model in the store, a name record
 * PUBLISHER/NAME, or a ticket: `nvx ticket`'s nvx1... string, or
 * ID@HOST:PORT naming a peer that has the model), then the node's fetch (daemon/node.h) with the
 * mesh asked for providers. The control socket (daemon/ctl.c: `nvx fetch`) uses the resolver; the
 * HTTP API's /api/pull (through main.c's hooks) the whole.
 *
 * nvx_pull_resolve() runs on libuv's pool (store reads); the rest on the
 * loop thread.
 */
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/dht-fetch.h"
#include "daemon/mesh.h"
#include "daemon/node.h"
#include "libcas/namerec.h"
#include "libcas/store.h"
#include "proto/ticket.h"

enum {
    NVX_PULL_TARGET_MAX = 1024, /* bytes of a target (PROTO_CTL_STR_MAX) */
    NVX_PULL_MSG_MAX = 1280,    /* bytes of an error line */
};

/* A target being resolved. Fill target and untrusted; read the rest. */
typedef struct nvx_pull_target {
    char target[NVX_PULL_TARGET_MAX + 1];
    bool untrusted; /* follow names signed by keys not in the keyring */
    /* results */
    int r; /* 0, or why it did not resolve */
    uint8_t model[32];
    bool by_name;
    cas_name_resolution res;
    char peer[NVX_PULL_TARGET_MAX + 1]; /* a ticket's HOST:PORT, else "" */
    bool is_ticket;                     /* an nvx1... ticket (nvx ticket): */
    proto_ticket ticket;                /* its addresses and node id */
    /* PUBLISHER/NAME with no stored record and PUBLISHER's key in the
     * keyring: the DHT item to ask for (daemon/dht-fetch.h). */
    bool dht_ask;
    uint8_t dht_pk[CAS_PK_LEN];
    char dht_name[CAS_NAMEREC_NAME_MAX + 1];
    /* in: a verified record the DHT gave, stored (as gossip would) before
     * resolving again */
    bool has_dht_rec;
    cas_namerec dht_rec;
} nvx_pull_target;

/* Resolves t->target (pool thread: reads the store). Sets t->r and, on
 * success, t->model (and t->peer for a ticket). */
void nvx_pull_resolve(cas_store *s, nvx_pull_target *t);

/* The one-line message for a target that did not resolve (t->r < 0), and
 * the error code to report (-EINVAL for "not an id"). */
int nvx_pull_resolve_error(const nvx_pull_target *t, char *msg, size_t cap);

/* ---- pulls for the HTTP API ---- */

typedef struct nvx_pull nvx_pull;

typedef struct nvx_pull_env {
    uv_loop_t *loop;
    nvx_node *node;
    nvx_mesh *mesh; /* may be NULL */
    cas_store *store;
    nvx_dhtfetch *dhtf; /* providers and names on the DHT; may be NULL */
} nvx_pull_env;

/* Progress: the fetch's (state PROTO_CTL_STATE_*; model set once resolved)
 * and, with a final state (DONE, FAILED, CANCELLED), error and a message
 * for people, after which the pull is freed. */
typedef void (*nvx_pull_cb)(void *arg, const proto_ctl_progress *p, int error, const char *msg);

/* Starts pulling target (resolved on the pool, then fetched; pin: keep it,
 * when complete). env is borrowed and must outlive the pull. Returns 0 and
 * *ret; -ENOMEM, -EINVAL (empty or over NVX_PULL_TARGET_MAX), errnos of
 * uv_queue_work; on error cb never runs. */
int nvx_pull_start(const nvx_pull_env *env, const char *target, bool pin, nvx_pull_cb cb, void *arg,
                   nvx_pull **ret);

/* The client is gone: no callback runs again; the fetch is dropped (a
 * resumable partial stays) unless another client shares it. */
void nvx_pull_cancel(nvx_pull *p);

#endif
