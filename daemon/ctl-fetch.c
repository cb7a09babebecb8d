/* SPDX-License-Identifier: MIT */
/*
 * FETCH, PUBLISH and DHT_GET on the control socket (daemon/ctl-internal.h):
 * resolving a target on the pool, the DHT's part (providers, names:
 * daemon/dht-fetch.h), the fetch's progress back to the client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/ctl-internal.h"
#include "daemon/log.h"
#include "daemon/pull.h"
#include "daemon/ratelimit.h"
#include "daemon/xfer.h"
#include "libcas/namerec.h"

/* The ERROR of a fetch that failed because no provider could serve some
 * chunks: the message names the first and what to do; the CHUNK_* fields
 * carry the same for scripts. */
static void
send_chunk_error(struct client *cl, uint32_t id, const proto_ctl_progress *p, int error)
{
    char msg[320], more[64] = "";
    if (p->chunk_count > 1)
        snprintf(more, sizeof(more), " and %llu more", (unsigned long long)p->chunk_count - 1);
    uint64_t others = p->chunks_total - p->chunks_done;
    snprintf(msg, sizeof(msg),
             "chunk %llu (bytes %llu..%llu)%s is corrupt or missing at every provider (%llu "
             "tried); the other %llu chunks are stored%s: run nvx fetch again when another "
             "provider is online",
             (unsigned long long)p->chunk, (unsigned long long)p->chunk_offset,
             (unsigned long long)(p->chunk_offset + p->chunk_len), more,
             (unsigned long long)p->chunk_tried, (unsigned long long)p->chunks_done,
             others > p->chunk_count ? " (some still missing)" : "");
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_ERROR, id);
    proto_ctl_put_u64(&w, PROTO_CTL_T_CODE, (uint64_t)(error ? -error : EIO));
    proto_ctl_put_str(&w, PROTO_CTL_T_MESSAGE, msg);
    proto_ctl_put_chunk(&w, p);
    nvx__ctl_send_writer(cl, &w, id);
}

static void
fetch_cb(void *arg, const proto_ctl_progress *p, int error)
{
    struct csub *cs = arg;
    struct client *cl = cs->cl;
    bool final = p->state == PROTO_CTL_STATE_DONE || p->state == PROTO_CTL_STATE_FAILED ||
                 p->state == PROTO_CTL_STATE_CANCELLED;
    uint8_t *buf;
    size_t len;
    if (proto_ctl_progress_build(cs->req_id, p, &buf, &len) == 0)
        nvx__ctl_client_send(cl, buf, len, false, false);
    if (!final)
        return;
    cs->sub = NULL; /* the node frees it */
    cs->cl = NULL;
    if (cl->ctl->mesh && p->has_model_id)
        nvx_mesh_unwant(cl->ctl->mesh, p->model_id);
    nvx__ctl_sub_unwant(cl->ctl, cs);
    if (p->state == PROTO_CTL_STATE_DONE) {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, cs->req_id);
        proto_ctl_put_id(&w, PROTO_CTL_T_MODEL_ID, p->model_id);
        nvx__ctl_send_writer(cl, &w, cs->req_id);
    } else if (p->state == PROTO_CTL_STATE_CANCELLED) {
        nvx__ctl_send_error(cl, cs->req_id, ECANCELED, "fetch cancelled: run it again to resume",
                            false);
    } else if (p->has_chunk) {
        send_chunk_error(cl, cs->req_id, p, error);
    } else {
        char msg[160];
        if (error == -EHOSTUNREACH)
            snprintf(msg, sizeof(msg),
                     "no connected peer has had this model for %llu s: add one that has it "
                     "(nvx peer add HOST:PORT) and fetch again (what arrived is kept)",
                     (unsigned long long)cs->timeout_s);
        else if (error == -EDQUOT)
            snprintf(msg, sizeof(msg),
                     "the model does not fit under the store quota (max-store-bytes) even after "
                     "removing every unpinned model not in use: raise it or unpin models");
        else
            snprintf(msg, sizeof(msg), "fetch failed: %s", nvx_strerror(error ? error : -EIO));
        nvx__ctl_send_error(cl, cs->req_id, error ? error : -EIO, msg, false);
    }
}

struct resolve_job {
    uv_work_t w;
    struct client *cl;
    uint32_t id;
    bool pin;           /* keep the model (nvx fetch without --no-pin) */
    uint64_t timeout_s; /* 0: the node's default */
    uint64_t rate;      /* bytes/s of this fetch (nvx fetch --rate); 0: unlimited */
    bool dht_asked;     /* the DHT was asked for the name record */
    nvx_pull_target t;
};

static void
resolve_work(uv_work_t *w)
{
    struct resolve_job *j = (struct resolve_job *)w;
    nvx_pull_resolve(j->cl->ctl->store, &j->t);
}

static void resolve_done(uv_work_t *w, int st);

/* The DHT answered for a name with no stored record: store what it gave
 * (on the pool, with the resolution) and resolve again; nothing: the
 * usual "no record" error. */
static void
on_dht_name(void *arg, int r, const cas_namerec *rec)
{
    struct resolve_job *j = arg;
    if (r == 0) {
        j->t.dht_rec = *rec;
        j->t.has_dht_rec = true;
    }
    if (r == 0 && !j->cl->closing &&
        uv_queue_work(j->cl->ctl->loop, &j->w, resolve_work, resolve_done) == 0)
        return;
    resolve_done(&j->w, 0); /* drops the job ask_dht() counted */
}

/* Starts the DHT get for j's name; the job (and cl->jobs) stays alive
 * until on_dht_name. */
static int
ask_dht(struct resolve_job *j)
{
    j->dht_asked = true;
    j->cl->jobs++; /* before: on_dht_name may run inside the call */
    int r = nvx_dhtfetch_name(j->cl->ctl->dhtf, j->t.dht_pk, j->t.dht_name, on_dht_name, j);
    if (r < 0) {
        j->cl->jobs--;
        log_debug("dht: not asking for name %s: %s", j->t.dht_name, strerror(-r));
    }
    return r;
}

static void
resolve_done(uv_work_t *w, int st)
{
    struct resolve_job *j = (struct resolve_job *)w;
    struct client *cl = j->cl;
    cl->jobs--;
    if (cl->closing)
        goto out;
    if (j->t.r == -ENOENT && j->t.dht_ask && !j->dht_asked && cl->ctl->dhtf && ask_dht(j) == 0)
        return; /* on_dht_name goes on */
    if (j->t.r < 0) {
        char msg[NVX_PULL_MSG_MAX];
        int code = nvx_pull_resolve_error(&j->t, msg, sizeof(msg));
        nvx__ctl_send_error(cl, j->id, code, msg, false);
        goto out;
    }
    if (j->t.peer[0]) /* a ticket: its peer has the model */
        (void)nvx_node_dial(cl->ctl->node, j->t.peer);
    struct csub *cs = NULL;
    for (size_t i = 0; i < NVX_CTL_SUBS_MAX; i++)
        if (!cl->subs[i].cl) {
            cs = &cl->subs[i];
            break;
        }
    if (!cs) {
        nvx__ctl_send_error(cl, j->id, -EBUSY, "too many fetches on one connection", false);
        goto out;
    }
    cs->cl = cl;
    cs->req_id = j->id;
    int dials =
        cl->ctl->mesh ? nvx_mesh_want(cl->ctl->mesh, j->t.model) : 0; /* gossip's providers */
    memcpy(cs->model, j->t.model, 32);
    /* Gossip's providers get NVX_DHTFETCH_GOSSIP_FIRST_MS first: they may
     * all be behind NATs that no relay we have a session with reaches. */
    cs->dht_want =
        cl->ctl->dhtf &&
        nvx_dhtfetch_want(cl->ctl->dhtf, j->t.model, dials ? NVX_DHTFETCH_GOSSIP_FIRST_MS : 0) == 0;
    cs->timeout_s = j->timeout_s ? j->timeout_s : NVX_XFER_NO_PROVIDER_MS / 1000;
    /* PIN asks that the model be kept (seeded, left by plain gc, evicted
     * by the quota when it needs the space); nvx fetch --pin pins it
     * itself once it is complete. */
    int r = nvx_node_fetch(cl->ctl->node, j->t.model, j->pin ? NVX_FETCH_KEEP : NVX_FETCH_KEEP_NONE,
                           fetch_cb, cs, &cs->sub);
    if (r < 0) {
        cs->cl = NULL;
        nvx__ctl_sub_unwant(cl->ctl, cs);
        nvx__ctl_send_error(cl, j->id, r, "cannot start the fetch", false);
    } else {
        if (j->timeout_s)
            nvx_node_fetch_timeout(cs->sub, j->timeout_s * 1000);
        if (j->rate)
            nvx_node_fetch_rate(cs->sub, j->rate);
    }
out:
    free(j);
    nvx__ctl_client_put(cl);
}

/* A ticket's addresses (nvx fetch TICKET): dialed at once, pinned to its
 * node id when it carries one, as peers we need (daemon/admit.h). */
static void
dial_ticket(nvx_ctl *c, const proto_ctl_msg *m)
{
    const uint8_t *node = NULL;
    (void)proto_ctl_get_id(m, PROTO_CTL_T_NODE_ID, &node);
    unsigned n = 0;
    for (const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_ADDR);
         f && n < NVX_CTL_TICKET_ADDRS_MAX; f = proto_ctl_next(m, f), n++) {
        char addr[PROTO_ADDR_MAX + 1];
        if (f->len == 0 || f->len > PROTO_ADDR_MAX)
            continue;
        memcpy(addr, f->p, f->len);
        addr[f->len] = '\0';
        int r = nvx_node_dial_id(c->node, addr, node, true);
        if (r < 0)
            log_info("cannot dial %s from the ticket: %s", addr, strerror(-r));
    }
}

void
nvx__ctl_fetch(struct client *cl, const proto_ctl_msg *m)
{
    proto_str t;
    if (!proto_ctl_get_str(m, PROTO_CTL_T_TARGET, &t) || t.len == 0) {
        nvx__ctl_send_error(cl, m->id, -EINVAL, "FETCH needs a TARGET", false);
        return;
    }
    struct resolve_job *j = calloc(1, sizeof(*j));
    if (!j) {
        nvx__ctl_send_error(cl, m->id, -ENOMEM, "out of memory", false);
        return;
    }
    j->cl = cl;
    j->id = m->id;
    memcpy(j->t.target, t.p, t.len);
    uint64_t pin = 0, untrusted = 0;
    proto_ctl_get_u64(m, PROTO_CTL_T_PIN, &pin);
    proto_ctl_get_u64(m, PROTO_CTL_T_UNTRUSTED, &untrusted);
    proto_ctl_get_u64(m, PROTO_CTL_T_TIMEOUT_S, &j->timeout_s);
    proto_ctl_get_u64(m, PROTO_CTL_T_RATE, &j->rate);
    if (j->rate && (j->rate < NVX_RATE_MIN || j->rate > NVX_RATE_MAX)) {
        free(j);
        nvx__ctl_send_error(cl, m->id, -EINVAL, "fetch --rate: give 1K or more bytes per second",
                            false);
        return;
    }
    j->pin = pin != 0;
    j->t.untrusted = untrusted != 0;
    dial_ticket(cl->ctl, m);
    if (uv_queue_work(cl->ctl->loop, &j->w, resolve_work, resolve_done) < 0) {
        free(j);
        nvx__ctl_send_error(cl, m->id, -EIO, "cannot queue the fetch", false);
        return;
    }
    cl->jobs++;
}

struct publish_req {
    struct client *cl;
    uint32_t id;
};

static void
publish_done(void *arg, int r)
{
    struct publish_req *pr = arg;
    struct client *cl = pr->cl;
    cl->jobs--;
    if (!cl->closing) {
        if (r >= 1)
            nvx__ctl_send_ok(cl, pr->id);
        else if (r == -ENOENT)
            nvx__ctl_send_error(cl, pr->id, r,
                                "no signed record of that name for that model in the store: "
                                "run nvx publish",
                                false);
        else
            nvx__ctl_send_error(cl, pr->id, r, nvx_strerror(r), false);
    }
    free(pr);
    nvx__ctl_client_put(cl);
}

/* NAMEREC and DHT_SIG of a PUBLISH: the record `nvx publish` signed and
 * the publisher's BEP 44 signature of it, put on the DHT (the daemon never
 * holds the secret key). Returns 1 put, 0 nothing to put (or the DHT is
 * off), or a negative errno after sending the ERROR. */
static int
publish_dht(struct client *cl, const proto_ctl_msg *m, const uint8_t *id, const char *name)
{
    proto_str rs, ss;
    bool has_rec = proto_ctl_get_str(m, PROTO_CTL_T_NAMEREC, &rs);
    bool has_sig = proto_ctl_get_str(m, PROTO_CTL_T_DHT_SIG, &ss);
    if ((!has_rec && !has_sig) || !cl->ctl->dhtf)
        return 0;
    uint8_t buf[CAS_NAMEREC_MAX], sig[CAS_SIGBYTES];
    size_t len = 0, sig_len = 0;
    cas_namerec rec;
    int r = -EINVAL;
    if (has_rec && has_sig &&
        sodium_hex2bin(buf, sizeof(buf), (const char *)rs.p, rs.len, NULL, &len, NULL) == 0 &&
        sodium_hex2bin(sig, sizeof(sig), (const char *)ss.p, ss.len, NULL, &sig_len, NULL) == 0 &&
        sig_len == sizeof(sig) && cas_namerec_decode(buf, len, &rec) == 0 &&
        memcmp(rec.model_id, id, 32) == 0 && strcmp(rec.name, name) == 0)
        r = nvx_dhtfetch_publish(cl->ctl->dhtf, &rec, sig);
    if (r == 0)
        return 1;
    nvx__ctl_send_error(cl, m->id, r,
                        r == -ENOSPC ? "this nvxd keeps too many names on the DHT already"
                                     : "the name record or its DHT signature does not verify: "
                                       "publish again with the key of the record",
                        false);
    return r;
}

/* PUBLISH MODEL_ID NAME: `nvx publish` stored the signed record; announce
 * it (gossip) and put it (DHT). */
void
nvx__ctl_publish(struct client *cl, const proto_ctl_msg *m)
{
    const uint8_t *id;
    proto_str s;
    char name[CAS_NAMEREC_NAME_MAX + 1];
    if (!proto_ctl_get_id(m, PROTO_CTL_T_MODEL_ID, &id) ||
        !proto_ctl_get_str(m, PROTO_CTL_T_NAME, &s) || s.len == 0 || s.len > CAS_NAMEREC_NAME_MAX) {
        nvx__ctl_send_error(cl, m->id, -EINVAL, "PUBLISH needs MODEL_ID and a NAME", false);
        return;
    }
    memcpy(name, s.p, s.len);
    name[s.len] = '\0';
    int r = publish_dht(cl, m, id, name);
    if (r < 0)
        return;
    if (!cl->ctl->mesh) {
        if (r == 1)
            nvx__ctl_send_ok(cl, m->id);
        else
            nvx__ctl_send_error(cl, m->id, -ENOTSUP, "gossip and the DHT are off in this nvxd",
                                false);
        return;
    }
    struct publish_req *pr = calloc(1, sizeof(*pr));
    if (!pr) {
        nvx__ctl_send_error(cl, m->id, -ENOMEM, "out of memory", false);
        return;
    }
    pr->cl = cl;
    pr->id = m->id;
    r = nvx_mesh_publish(cl->ctl->mesh, id, name, publish_done, pr);
    if (r < 0) {
        free(pr);
        nvx__ctl_send_error(cl, m->id, r, r == -EINVAL ? "bad name" : nvx_strerror(r), false);
        return;
    }
    cl->jobs++;
}
/* DHT_GET: a BEP 44 get for `nvx dht get` (debugging, interop). */
struct dht_get {
    struct client *cl;
    uint32_t id;
};

static void
on_dht_get(void *arg, const nvx_dht_result *res)
{
    struct dht_get *g = arg;
    if (!res->done)
        return;
    struct client *cl = g->cl;
    cl->jobs--;
    const nvx_dht_item *it = res->item;
    if (!cl->closing && !it) {
        nvx__ctl_send_error(cl, g->id, -ENOENT,
                            "no DHT node has a valid item under that key and salt: check "
                            "them, or get again once the put has spread",
                            false);
    } else if (!cl->closing) {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, g->id);
        proto_ctl_put_u64(&w, PROTO_CTL_T_DHT_SEQ, (uint64_t)it->seq);
        for (size_t off = 0; off < it->v_len; off += PROTO_CTL_DHT_VALUE_PIECE) {
            char hex[2 * PROTO_CTL_DHT_VALUE_PIECE + 1];
            size_t n = it->v_len - off;
            n = n > PROTO_CTL_DHT_VALUE_PIECE ? PROTO_CTL_DHT_VALUE_PIECE : n;
            sodium_bin2hex(hex, sizeof(hex), it->v + off, n);
            proto_ctl_put_str(&w, PROTO_CTL_T_DHT_VALUE, hex);
        }
        nvx__ctl_send_writer(cl, &w, g->id);
    }
    free(g);
    nvx__ctl_client_put(cl);
}

void
nvx__ctl_dht_get(struct client *cl, const proto_ctl_msg *m)
{
    proto_str ks, salt = { NULL, 0 };
    nvx_dht_item q = { .salt_len = 0 };
    size_t klen = 0;
    if (!cl->ctl->dht) {
        nvx__ctl_send_error(cl, m->id, -ENOTSUP, "the DHT is off in this nvxd (--dht)", false);
        return;
    }
    (void)proto_ctl_get_str(m, PROTO_CTL_T_NAME, &salt);
    if (!proto_ctl_get_str(m, PROTO_CTL_T_DHT_KEY, &ks) ||
        sodium_hex2bin(q.k, sizeof(q.k), (const char *)ks.p, ks.len, NULL, &klen, NULL) < 0 ||
        klen != sizeof(q.k) || salt.len > NVX_KRPC_SALT_MAX) {
        nvx__ctl_send_error(cl, m->id, -EINVAL,
                            "give the key as 64 hex digits and a salt of at most 64 bytes", false);
        return;
    }
    memcpy(q.salt, salt.p, salt.len);
    q.salt_len = salt.len;
    struct dht_get *g = malloc(sizeof(*g));
    if (!g) {
        nvx__ctl_send_error(cl, m->id, -ENOMEM, "out of memory", false);
        return;
    }
    g->cl = cl;
    g->id = m->id;
    cl->jobs++; /* before: a lookup with no node to ask ends inside the call */
    int h = nvx_dhtuv_lookup(cl->ctl->dht, NVX_DHT_GET, &q, on_dht_get, g);
    if (h < 0) {
        cl->jobs--;
        free(g);
        nvx__ctl_send_error(cl, m->id, h, "cannot start the DHT get: too many lookups", false);
    }
}
