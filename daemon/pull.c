/* SPDX-License-Identifier: MIT */
#include "daemon/pull.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/xfer.h"
#include "libcas/hash.h"
#include "libcas/sig.h"

/* A ticket: 64 hex digits, '@', HOST:PORT (numeric; the node dials it). */
static bool
split_ticket(nvx_pull_target *t)
{
    char *at = strchr(t->target, '@');
    if (!at || at - t->target != CAS_HASH_HEX_LEN || !at[1] || !strchr(at + 1, ':'))
        return false;
    snprintf(t->peer, sizeof(t->peer), "%s", at + 1);
    *at = '\0';
    return true;
}

/* The keyring's public key for t's publisher (t->r is -ENOENT: no record
 * is stored): set, the DHT may have the record (BEP 44 under that key).
 * Only keys in the keyring: a name resolves only through them anyway. */
static void
dht_key(cas_store *s, nvx_pull_target *t)
{
    uint8_t keyid[CAS_KEYID_LEN];
    uint8_t *blob = NULL;
    size_t len;
    cas_pubkey pk;
    if (cas_namerec_target_parse(s, t->target, keyid, t->dht_name) < 0 ||
        cas_store_key_get(s, keyid, sizeof(keyid), &blob, &len, NULL) < 0)
        return;
    if (cas_pubkey_decode(blob, len, &pk) == 0 && memcmp(pk.keyid, keyid, CAS_KEYID_LEN) == 0) {
        memcpy(t->dht_pk, pk.pk, CAS_PK_LEN);
        t->dht_ask = true;
    }
    free(blob);
}

void
nvx_pull_resolve(cas_store *s, nvx_pull_target *t)
{
    t->peer[0] = '\0';
    t->dht_ask = false;
    if (t->has_dht_rec) {
        int r = cas_namerec_store_put(s, &t->dht_rec);
        if (r < 0)
            log_info("cannot store the name record from the DHT: %s", strerror(-r));
        t->has_dht_rec = false;
    }
    t->is_ticket = proto_ticket_looks_like(t->target);
    if (t->is_ticket) { /* the model need not be in the store: its addresses have it */
        t->r = proto_ticket_decode(t->target, strlen(t->target), &t->ticket);
        if (t->r == 0)
            memcpy(t->model, t->ticket.model_id, 32);
        return;
    }
    if (split_ticket(t)) {
        /* The model need not be in the store: the peer has it. */
        t->r = cas_hash_from_hex(t->target, t->model);
        return;
    }
    t->r = cas_hash_from_hex(t->target, t->model);
    if (t->r < 0) /* a prefix or a local name of a model in the store */
        t->r = cas_store_resolve(s, t->target, t->model);
    if (t->r < 0 && cas_store_name_get(s, t->target, t->model) == 0)
        t->r = 0;
    if (t->r < 0 && cas_namerec_is_target(t->target)) { /* PUBLISHER/NAME */
        t->by_name = true;
        t->r = cas_namerec_resolve(s, t->target, &t->res);
        if (t->r == 0 && !t->res.trusted && !t->untrusted)
            t->r = -EACCES;
        if (t->r == 0)
            memcpy(t->model, t->res.rec.model_id, 32);
        if (t->r == -ENOENT)
            dht_key(s, t);
    }
}

int
nvx_pull_resolve_error(const nvx_pull_target *t, char *msg, size_t cap)
{
    if (t->is_ticket) {
        snprintf(msg, cap,
                 "not a valid ticket (mistyped or cut off): copy the whole nvx1... "
                 "string that nvx ticket printed");
        return -EINVAL;
    }
    if (!t->by_name) {
        snprintf(msg, cap,
                 t->r == -ENOTUNIQ ? "ambiguous id prefix: give more hex digits"
                                   : "not a model id: give the full 64-hex-digit id, a name "
                                     "PUBLISHER/NAME or a ticket ID@HOST:PORT");
        return t->r == -ENOTUNIQ ? t->r : -EINVAL;
    }
    char kid[CAS_KEYID_HEX_SIZE];
    cas_keyid_format(t->res.rec.keyid, kid);
    switch (t->r) {
    case -EACCES:
        snprintf(msg, cap,
                 "%.300s is signed by key %s, which you do not trust: nvx trust add it, or "
                 "pass --allow-untrusted",
                 t->target, kid);
        break;
    case -ENOTUNIQ:
        snprintf(msg, cap,
                 "several trusted keys are called like the publisher of %.300s: use the "
                 "key id",
                 t->target);
        break;
    case -ENOENT:
        snprintf(msg, cap,
                 "no record of %.300s yet: trust the publisher's key (nvx trust add; nvx "
                 "fetch then asks the DHT too), or wait for a peer that has it",
                 t->target);
        break;
    default:
        snprintf(msg, cap, "cannot resolve %.300s: %s", t->target, strerror(-t->r));
        break;
    }
    return t->r;
}

/* ---- pulls ---- */

struct nvx_pull {
    uv_work_t w;
    const nvx_pull_env *env;
    bool pin, resolving, cancelled;
    bool dht_asked;     /* the DHT was asked for the name record */
    bool dht_want;      /* the DHT looks for providers until the fetch ends */
    nvx_fetch_sub *sub; /* once fetching */
    nvx_pull_cb cb;
    void *arg;
    nvx_pull_target t;
};

static void
pull_free(nvx_pull *p)
{
    if (p->dht_want)
        nvx_dhtfetch_unwant(p->env->dhtf, p->t.model);
    free(p);
}

static void
end(nvx_pull *p, int state, int error, const char *msg)
{
    proto_ctl_progress pr = { .state = (uint64_t)state, .has_model_id = p->t.r == 0 };
    memcpy(pr.model_id, p->t.model, 32);
    p->cb(p->arg, &pr, error, msg);
    pull_free(p);
}

static void
on_fetch(void *arg, const proto_ctl_progress *pr, int error)
{
    nvx_pull *p = arg;
    bool final = pr->state == PROTO_CTL_STATE_DONE || pr->state == PROTO_CTL_STATE_FAILED ||
                 pr->state == PROTO_CTL_STATE_CANCELLED;
    if (!final) {
        p->cb(p->arg, pr, 0, NULL);
        return;
    }
    p->sub = NULL; /* the node frees it */
    char msg[NVX_PULL_MSG_MAX] = "";
    if (pr->state == PROTO_CTL_STATE_CANCELLED)
        snprintf(msg, sizeof(msg), "pull cancelled: pull again to resume");
    else if (pr->state == PROTO_CTL_STATE_FAILED && error == -EHOSTUNREACH)
        snprintf(msg, sizeof(msg),
                 "no connected peer has this model: add one that has it (nvx peer add "
                 "HOST:PORT, or pull a ticket ID@HOST:PORT) and pull again (what arrived is "
                 "kept)");
    else if (pr->state == PROTO_CTL_STATE_FAILED)
        snprintf(msg, sizeof(msg), "pull failed: %s: pull again when another provider is online",
                 nvx_strerror(error ? error : -EIO));
    p->cb(p->arg, pr, error, msg);
    pull_free(p);
}

static void
resolve_work(uv_work_t *w)
{
    nvx_pull *p = (nvx_pull *)w;
    nvx_pull_resolve(p->env->store, &p->t);
}

static void resolve_done(uv_work_t *w, int status);

/* The DHT answered for a name with no stored record: store what it gave
 * (on the pool, with the resolution) and resolve again; nothing: the
 * usual "no record" error. */
static void
on_dht_name(void *arg, int r, const cas_namerec *rec)
{
    nvx_pull *p = arg;
    if (r == 0 && !p->cancelled) {
        p->t.dht_rec = *rec;
        p->t.has_dht_rec = true;
        if (uv_queue_work(p->env->loop, &p->w, resolve_work, resolve_done) == 0)
            return;
    }
    resolve_done(&p->w, 0);
}

static void
resolve_done(uv_work_t *w, int status)
{
    nvx_pull *p = (nvx_pull *)w;
    if (p->cancelled) {
        free(p);
        return;
    }
    if (status < 0 && p->t.r == 0)
        p->t.r = status;
    const nvx_pull_env *env = p->env;
    /* A name no stored record has, from a trusted key: ask the DHT
     * (BEP 44) once; the pull stays "resolving" until it answers. */
    if (p->t.r == -ENOENT && p->t.dht_ask && !p->dht_asked && env->dhtf) {
        p->dht_asked = true;
        int r = nvx_dhtfetch_name(env->dhtf, p->t.dht_pk, p->t.dht_name, on_dht_name, p);
        if (r == 0)
            return;
        log_debug("dht: not asking for name %s: %s", p->t.dht_name, strerror(-r));
    }
    p->resolving = false;
    char msg[NVX_PULL_MSG_MAX];
    if (p->t.r < 0) {
        int code = nvx_pull_resolve_error(&p->t, msg, sizeof(msg));
        end(p, PROTO_CTL_STATE_FAILED, code, msg);
        return;
    }
    if (p->t.peer[0]) {
        int r = nvx_node_dial(env->node, p->t.peer);
        if (r < 0 && r != -EAGAIN) {
            snprintf(msg, sizeof(msg), "cannot dial the ticket's peer %.300s: %s", p->t.peer,
                     nvx_strerror(r));
            end(p, PROTO_CTL_STATE_FAILED, r, msg);
            return;
        }
    }
    for (size_t i = 0; p->t.is_ticket && i < p->t.ticket.n_addrs; i++) {
        /* Pinned to the ticket's node id: whoever answers there must hold
         * that key (checked in the handshake). */
        const proto_ticket *tk = &p->t.ticket;
        int r = nvx_node_dial_id(env->node, tk->addrs[i], tk->has_node ? tk->node_id : NULL, true);
        if (r < 0 && r != -EAGAIN)
            log_info("cannot dial %s from the ticket: %s", tk->addrs[i], nvx_strerror(r));
    }
    int dials = env->mesh ? nvx_mesh_want(env->mesh, p->t.model) : 0; /* gossip's providers */
    /* The DHT too, as nvx fetch does (daemon/dht-fetch.h). */
    p->dht_want = env->dhtf && nvx_dhtfetch_want(env->dhtf, p->t.model,
                                                 dials ? NVX_DHTFETCH_GOSSIP_FIRST_MS : 0) == 0;
    int r = nvx_node_fetch(env->node, p->t.model, p->pin ? NVX_FETCH_KEEP : NVX_FETCH_KEEP_NONE,
                           on_fetch, p, &p->sub);
    if (r < 0) {
        snprintf(msg, sizeof(msg), "cannot start the pull: %s", nvx_strerror(r));
        end(p, PROTO_CTL_STATE_FAILED, r, msg);
    }
}

int
nvx_pull_start(const nvx_pull_env *env, const char *target, bool pin, nvx_pull_cb cb, void *arg,
               nvx_pull **ret)
{
    size_t len = strlen(target);
    if (len == 0 || len > NVX_PULL_TARGET_MAX)
        return -EINVAL;
    nvx_pull *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->env = env;
    p->pin = pin;
    p->cb = cb;
    p->arg = arg;
    memcpy(p->t.target, target, len + 1);
    int r = uv_queue_work(env->loop, &p->w, resolve_work, resolve_done);
    if (r < 0) {
        free(p);
        return r;
    }
    p->resolving = true;
    *ret = p;
    return 0;
}

void
nvx_pull_cancel(nvx_pull *p)
{
    if (p->resolving) {
        p->cancelled = true; /* resolve_done frees it */
        return;
    }
    if (p->sub)
        nvx_node_fetch_unsub(p->env->node, p->sub);
    pull_free(p);
}
