/* SPDX-License-Identifier: MIT */
/*
 * Signatures travel with a fetch. When a fetch completes, nvxd sends
 * SIGS_REQ to every peer that had the model (daemon/fetch.c) and remembers
 * the request; serve.c answers SIGS_REQ from the store. A SIGS that answers
 * no request of ours is ignored. Each blob is checked on the pool before it
 * is filed (cas_store_sig_add, libcas/sig-store.h, which ignores one
 * already there):
 *   - it must parse as a minisign signature naming this model, if any;
 *   - when its key is in the keyring, it must verify over the manifest
 *     (a peer cannot attach a forged signature of a key we trust);
 *   - a blob whose key is not in the keyring cannot be checked: it is kept
 *     apart, at most CAS_STORE_SIG_PENDING_PER_MODEL per model, never
 *     served on, and checked once the user trusts the key (nvx trust add);
 *     a forgery then goes, so it can never make `nvx verify` fail.
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
    unsigned n, added, pending;
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

static void
sigs_work(uv_work_t *w)
{
    struct sigs_job *j = (struct sigs_job *)w;
    for (unsigned i = 0; i < j->n; i++) {
        /* cas_store_sig_add checks: forgeries are dropped, blobs of keys
         * nobody here trusts are kept apart (bounded) until trusted. */
        int r = cas_store_sig_add(j->node->store, j->model, j->blobs[i], j->lens[i]);
        if (r == 1)
            j->added++;
        else if (r == 2)
            j->pending++;
    }
}

static void
sigs_done(uv_work_t *w, int status)
{
    struct sigs_job *j = (struct sigs_job *)w;
    nvx_node *n = j->node;
    n->jobs--;
    if (status == 0 && (j->added || j->pending)) {
        char sid[17];
        log_info("model %s: %u signature%s from %s (%u more of untrusted keys kept apart)",
                 nvx_short_id(j->model, sid), j->added, j->added == 1 ? "" : "s", j->from,
                 j->pending);
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
