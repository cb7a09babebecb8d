/* SPDX-License-Identifier: MIT */
/*
 * Signatures travel with a fetch. When a fetch completes, nvxd sends
 * SIGS_REQ to every peer that had the model (daemon/fetch.c) and remembers
 * the request; serve.c answers SIGS_REQ from the store. A SIGS that answers
 * no request of ours is ignored. Each blob is checked on the pool before it
 * is attached (cas_store_sig_add, which ignores one already there):
 *   - it must parse as a minisign signature (cas_sig_parse);
 *   - a "nvx-model:" field in its trusted comment must name this model;
 *   - when its key is in the keyring, it must verify over the manifest
 *     (a peer cannot attach a forged signature of a key we trust).
 * A blob whose key is not in the keyring cannot be checked and is kept:
 * `nvx verify` shows it as untrusted, and checks it once the user trusts
 * the key (nvx trust add).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "libcas/sig.h"
#include "libcas/store.h"

enum {
    SIG_ASKS_MAX = 16, /* SIGS_REQs awaiting an answer, per peer */
};

struct sig_ask {
    struct sig_ask *next;
    uint32_t req_id;
    uint8_t model[32];
};

struct sigs_job {
    uv_work_t w;
    nvx_node *node;
    uint8_t model[32];
    char from[NVX_ADDR_LEN];
    unsigned n, added;
    size_t lens[PROTO_SIGS_MAX];
    uint8_t *blobs[PROTO_SIGS_MAX];
};

void
nvx__sigs_ask(nvx_peer *p, const uint8_t model[static 32])
{
    if (p->closing || !p->established || p->n_sig_asks >= SIG_ASKS_MAX)
        return;
    struct sig_ask *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->req_id = p->next_req_id++;
    memcpy(a->model, model, 32);
    proto_msg m = { .type = PROTO_MSG_SIGS_REQ };
    m.u.sigs_req.req_id = a->req_id;
    memcpy(m.u.sigs_req.model_id, model, 32);
    if (proto_session_send_msg(p->sess, &m) < 0) {
        free(a);
        return;
    }
    nvx__peer_flush(p);
    a->next = p->sig_asks;
    p->sig_asks = a;
    p->n_sig_asks++;
}

void
nvx__sigs_peer_gone(nvx_peer *p)
{
    while (p->sig_asks) {
        struct sig_ask *a = p->sig_asks;
        p->sig_asks = a->next;
        free(a);
    }
    p->n_sig_asks = 0;
}

/* True when blob may be attached to model (manifest[0..len)). */
static bool
sig_acceptable(cas_store *s, const uint8_t model[static 32], const uint8_t *manifest, size_t len,
               const uint8_t *blob, size_t blob_len)
{
    cas_sig_info info;
    if (cas_sig_parse(blob, blob_len, &info) < 0)
        return false;
    if (info.has_model_id && memcmp(info.model_id, model, 32) != 0)
        return false;
    uint8_t *kblob = NULL;
    size_t klen = 0;
    if (cas_store_key_get(s, info.keyid, CAS_KEYID_LEN, &kblob, &klen, NULL) < 0)
        return true; /* unknown key: kept, shown as untrusted */
    cas_pubkey pk;
    bool ok = cas_pubkey_decode(kblob, klen, &pk) == 0 &&
              cas_sig_verify(&pk, blob, blob_len, manifest, len, NULL) == 0;
    free(kblob);
    return ok;
}

static void
sigs_work(uv_work_t *w)
{
    struct sigs_job *j = (struct sigs_job *)w;
    cas_store *s = j->node->store;
    uint8_t *manifest = NULL;
    size_t len = 0;
    if (cas_store_manifest_get(s, j->model, &manifest, &len) < 0)
        return;
    for (unsigned i = 0; i < j->n; i++)
        if (sig_acceptable(s, j->model, manifest, len, j->blobs[i], j->lens[i]) &&
            cas_store_sig_add(s, j->model, j->blobs[i], j->lens[i]) == 1)
            j->added++;
    free(manifest);
}

static void
sigs_done(uv_work_t *w, int status)
{
    struct sigs_job *j = (struct sigs_job *)w;
    nvx_node *n = j->node;
    n->jobs--;
    if (status == 0 && j->added) {
        char sid[17];
        log_info("model %s: %u signature%s from %s", nvx_short_id(j->model, sid), j->added,
                 j->added == 1 ? "" : "s", j->from);
    }
    for (unsigned i = 0; i < j->n; i++)
        free(j->blobs[i]);
    free(j);
    nvx__node_maybe_stopped(n);
}

void
nvx__sigs_msg(nvx_peer *p, const proto_msg *m)
{
    const proto_sigs *sg = &m->u.sigs;
    struct sig_ask **ap = &p->sig_asks;
    while (*ap && !((*ap)->req_id == sg->req_id && memcmp((*ap)->model, sg->model_id, 32) == 0))
        ap = &(*ap)->next;
    if (!*ap)
        return; /* not asked for: ignored */
    struct sig_ask *a = *ap;
    *ap = a->next;
    p->n_sig_asks--;
    free(a);
    if (sg->n == 0)
        return;
    struct sigs_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->node = p->node;
    memcpy(j->model, sg->model_id, 32);
    snprintf(j->from, sizeof(j->from), "%s", p->addr);
    for (size_t i = 0; i < sg->n; i++) {
        j->blobs[j->n] = malloc(sg->sigs[i].len);
        if (!j->blobs[j->n])
            break;
        memcpy(j->blobs[j->n], sg->sigs[i].p, sg->sigs[i].len);
        j->lens[j->n++] = sg->sigs[i].len;
    }
    if (uv_queue_work(p->node->loop, &j->w, sigs_work, sigs_done) < 0) {
        for (unsigned i = 0; i < j->n; i++)
            free(j->blobs[i]);
        free(j);
        return;
    }
    p->node->jobs++;
}
