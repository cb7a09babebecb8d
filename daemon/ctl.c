/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "daemon/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/bytes.h"
#include "daemon/log.h"
#include "daemon/reach.h"
#include "daemon/pull.h"
#include "daemon/xfer.h"
#include "libcas/hash.h"
#include "libcas/namerec.h"
#include "transport/tcp.h"

struct client;

struct csub {
    struct client *cl;
    nvx_fetch_sub *sub;
    uint32_t req_id;
    uint64_t timeout_s; /* for the message when no peer has the model */
};

struct client {
    uv_pipe_t pipe;
    nvx_ctl *ctl;
    struct client *prev, *next;
    proto_ctl_reader rd;
    struct csub subs[NVX_CTL_SUBS_MAX];
    unsigned jobs; /* status queries on the pool */
    bool closing, handle_closed;
};

struct nvx_ctl {
    uv_pipe_t server;
    uv_loop_t *loop;
    nvx_node *node;
    cas_store *store;
    nvx_mesh *mesh;
    nvx_natmap *natmap;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char agent[PROTO_AGENT_MAX + 1];
    struct client *clients;
    size_t n_clients;
    uint64_t started_ms;
    bool server_closed;
    bool group_set;
    gid_t group;
    void (*on_shutdown)(void *);
    void *arg;
    void (*done)(void *);
    void *done_arg;
};

struct wreq {
    uv_write_t w;
    uint8_t *buf;
    bool close_after;
    bool shutdown_after;
};

static void client_close(struct client *cl);

static void
maybe_done(nvx_ctl *c)
{
    if (!c->done || !c->server_closed || c->clients)
        return;
    void (*done)(void *) = c->done;
    void *arg = c->done_arg;
    free(c);
    done(arg);
}

static void
on_write(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct client *cl = w->handle->data;
    free(wr->buf);
    if (wr->close_after)
        client_close(cl);
    if (wr->shutdown_after && cl->ctl->on_shutdown)
        cl->ctl->on_shutdown(cl->ctl->arg);
    free(wr);
}

/* Sends a finished frame (takes buf). */
static void
client_send(struct client *cl, uint8_t *buf, size_t len, bool close_after, bool shutdown_after)
{
    if (cl->closing) {
        free(buf);
        return;
    }
    struct wreq *wr = calloc(1, sizeof(*wr));
    if (!wr) {
        free(buf);
        client_close(cl);
        return;
    }
    wr->buf = buf;
    wr->close_after = close_after;
    wr->shutdown_after = shutdown_after;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    if (uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, on_write) < 0) {
        free(buf);
        free(wr);
        client_close(cl);
    }
}

static void
send_error(struct client *cl, uint32_t id, int code, const char *msg, bool close_after)
{
    uint8_t *buf;
    size_t len;
    if (proto_ctl_error_build(id, code, msg, &buf, &len) == 0)
        client_send(cl, buf, len, close_after, false);
    else
        client_close(cl);
}

static void
send_writer(struct client *cl, proto_ctl_writer *w, uint32_t id)
{
    uint8_t *buf;
    size_t len;
    int r = proto_ctl_writer_finish(w, &buf, &len);
    if (r < 0) {
        send_error(cl, id, r, "cannot encode the response", false);
        return;
    }
    client_send(cl, buf, len, false, false);
}

/* ---- requests ---------------------------------------------------------- */

static void
put_peer(void *arg, const nvx_peer_info *pi)
{
    proto_ctl_writer *w = arg;
    proto_ctl_nest_begin(w, PROTO_CTL_T_PEER);
    if (pi->node_id)
        proto_ctl_put_id(w, PROTO_CTL_T_NODE_ID, pi->node_id);
    proto_ctl_put_str(w, PROTO_CTL_T_ADDR, pi->addr);
    proto_ctl_put_u64(w, PROTO_CTL_T_STATE, (uint64_t)pi->state);
    proto_ctl_put_u64(w, PROTO_CTL_T_BYTES_IN, pi->bytes_in);
    proto_ctl_put_u64(w, PROTO_CTL_T_BYTES_OUT, pi->bytes_out);
    proto_ctl_put_u64(w, PROTO_CTL_T_RATE, pi->rate_in);
    if (pi->agent[0])
        proto_ctl_put_str(w, PROTO_CTL_T_AGENT, pi->agent);
    proto_ctl_nest_end(w);
}

static void
put_xfer(void *arg, const nvx_xfer_info *xi)
{
    proto_ctl_writer *w = arg;
    proto_ctl_nest_begin(w, PROTO_CTL_T_TRANSFER);
    proto_ctl_put_u64(w, PROTO_CTL_T_TRANSFER_ID, xi->id);
    proto_ctl_put_id(w, PROTO_CTL_T_MODEL_ID, xi->model);
    proto_ctl_put_u64(w, PROTO_CTL_T_STATE, (uint64_t)xi->state);
    proto_ctl_put_u64(w, PROTO_CTL_T_BYTES_DONE, xi->bytes_done);
    proto_ctl_put_u64(w, PROTO_CTL_T_BYTES_TOTAL, xi->bytes_total);
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNKS_DONE, xi->chunks_done);
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNKS_TOTAL, xi->chunks_total);
    proto_ctl_put_u64(w, PROTO_CTL_T_RATE, xi->rate);
    proto_ctl_put_u64(w, PROTO_CTL_T_PEER_COUNT, xi->peer_count);
    proto_ctl_nest_end(w);
}

static void
put_addr(void *arg, const char *addr)
{
    proto_ctl_put_str(arg, PROTO_CTL_T_ADDR, addr);
}

/* The REACH nest: how peers outside reach us (daemon/reach.h), and the
 * addresses a ticket gives out, mapped or public first. */
static void
put_reach(nvx_ctl *c, proto_ctl_writer *w)
{
    char ext[NVX_NATMAP_ADDR_MAX], pub[NVX_NATMAP_ADDR_MAX] = "", msg[200];
    nvx_natmap_how how = nvx_natmap_state(c->natmap, ext, sizeof(ext));
    const char *listen = nvx_node_listen_addr(c->node);
    unsigned relays = c->mesh ? nvx_mesh_relays(c->mesh) : 0;
    if (!ext[0])
        (void)nvx_reach_public_addr(listen, pub, sizeof(pub));
    int st =
        nvx_reach_describe(listen, ext, nvx_natmap_how_name(how), pub, relays, msg, sizeof(msg));
    proto_ctl_nest_begin(w, PROTO_CTL_T_REACH);
    proto_ctl_put_u64(w, PROTO_CTL_T_STATE, (uint64_t)st);
    proto_ctl_put_str(w, PROTO_CTL_T_MESSAGE, msg);
    if (ext[0])
        proto_ctl_put_str(w, PROTO_CTL_T_ADDR, ext);
    if (pub[0])
        proto_ctl_put_str(w, PROTO_CTL_T_ADDR, pub);
    char local[NVX_REACH_LOCAL_MAX][NVX_REACH_ADDR_LEN];
    size_t n = nvx_reach_local_addrs(listen, local, NVX_REACH_LOCAL_MAX);
    for (size_t i = 0; i < n; i++)
        if (strcmp(local[i], pub) != 0)
            proto_ctl_put_str(w, PROTO_CTL_T_ADDR, local[i]);
    proto_ctl_put_str(w, PROTO_CTL_T_NAME, nvx_natmap_how_name(how));
    proto_ctl_put_u64(w, PROTO_CTL_T_PEER_COUNT, relays);
    proto_ctl_nest_end(w);
}

struct status_job {
    uv_work_t w;
    struct client *cl;
    uint32_t id;
    cas_store_usage u;
    int r;
};

static void client_put(struct client *cl);

static void
status_work(uv_work_t *w)
{
    struct status_job *j = (struct status_job *)w;
    j->r = cas_store_usage_get(j->cl->ctl->store, &j->u);
}

static void
status_done(uv_work_t *w, int st)
{
    struct status_job *j = (struct status_job *)w;
    struct client *cl = j->cl;
    nvx_ctl *c = cl->ctl;
    cl->jobs--;
    if (!cl->closing) {
        proto_ctl_writer wr;
        proto_ctl_writer_init(&wr, PROTO_CTL_OK, j->id);
        proto_ctl_put_id(&wr, PROTO_CTL_T_NODE_ID, nvx_node_id(c->node));
        if (nvx_node_listen_addr(c->node)[0])
            proto_ctl_put_str(&wr, PROTO_CTL_T_ADDR, nvx_node_listen_addr(c->node));
        proto_ctl_put_str(&wr, PROTO_CTL_T_AGENT, c->agent);
        proto_ctl_put_u64(&wr, PROTO_CTL_T_UPTIME_S, (uv_now(c->loop) - c->started_ms) / 1000);
        proto_ctl_put_u64(&wr, PROTO_CTL_T_STORE_USED, j->r == 0 ? j->u.bytes : 0);
        proto_ctl_put_u64(&wr, PROTO_CTL_T_STORE_LIMIT, j->r == 0 ? j->u.limit : 0);
        proto_ctl_put_u64(&wr, PROTO_CTL_T_BYTES_IN, nvx_node_bytes_fetched(c->node));
        nvx_node_peers_each(c->node, put_peer, &wr);
        nvx_node_xfers_each(c->node, put_xfer, &wr);
        put_reach(c, &wr);
        send_writer(cl, &wr, j->id);
    }
    free(j);
    client_put(cl);
}

static void
handle_status(struct client *cl, uint32_t id)
{
    struct status_job *j = calloc(1, sizeof(*j));
    if (!j) {
        send_error(cl, id, -ENOMEM, "out of memory", false);
        return;
    }
    j->cl = cl;
    j->id = id;
    if (uv_queue_work(cl->ctl->loop, &j->w, status_work, status_done) < 0) {
        free(j);
        send_error(cl, id, -EIO, "cannot queue the status query", false);
        return;
    }
    cl->jobs++;
}

static void
send_ok(struct client *cl, uint32_t id)
{
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_OK, id);
    send_writer(cl, &w, id);
}

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
    send_writer(cl, &w, id);
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
        client_send(cl, buf, len, false, false);
    if (!final)
        return;
    cs->sub = NULL; /* the node frees it */
    cs->cl = NULL;
    if (cl->ctl->mesh && p->has_model_id)
        nvx_mesh_unwant(cl->ctl->mesh, p->model_id);
    if (p->state == PROTO_CTL_STATE_DONE) {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, cs->req_id);
        proto_ctl_put_id(&w, PROTO_CTL_T_MODEL_ID, p->model_id);
        send_writer(cl, &w, cs->req_id);
    } else if (p->state == PROTO_CTL_STATE_CANCELLED) {
        send_error(cl, cs->req_id, ECANCELED, "fetch cancelled: run it again to resume", false);
    } else if (p->has_chunk) {
        send_chunk_error(cl, cs->req_id, p, error);
    } else {
        char msg[160];
        if (error == -EHOSTUNREACH)
            snprintf(msg, sizeof(msg),
                     "no connected peer has had this model for %llu s: add one that has it "
                     "(nvx peer add HOST:PORT) and fetch again (what arrived is kept)",
                     (unsigned long long)cs->timeout_s);
        else
            snprintf(msg, sizeof(msg), "fetch failed: %s", nvx_strerror(error ? error : -EIO));
        send_error(cl, cs->req_id, error ? error : -EIO, msg, false);
    }
}

struct resolve_job {
    uv_work_t w;
    struct client *cl;
    uint32_t id;
    bool pin;
    uint64_t timeout_s; /* 0: the node's default */
    nvx_pull_target t;
};

static void
resolve_work(uv_work_t *w)
{
    struct resolve_job *j = (struct resolve_job *)w;
    nvx_pull_resolve(j->cl->ctl->store, &j->t);
}

static void
resolve_done(uv_work_t *w, int st)
{
    struct resolve_job *j = (struct resolve_job *)w;
    struct client *cl = j->cl;
    cl->jobs--;
    if (cl->closing)
        goto out;
    if (j->t.r < 0) {
        char msg[NVX_PULL_MSG_MAX];
        int code = nvx_pull_resolve_error(&j->t, msg, sizeof(msg));
        send_error(cl, j->id, code, msg, false);
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
        send_error(cl, j->id, -EBUSY, "too many fetches on one connection", false);
        goto out;
    }
    cs->cl = cl;
    cs->req_id = j->id;
    if (cl->ctl->mesh)
        (void)nvx_mesh_want(cl->ctl->mesh, j->t.model); /* dial providers gossip knows of */
    cs->timeout_s = j->timeout_s ? j->timeout_s : NVX_XFER_NO_PROVIDER_MS / 1000;
    int r = nvx_node_fetch(cl->ctl->node, j->t.model, j->pin, fetch_cb, cs, &cs->sub);
    if (r < 0) {
        cs->cl = NULL;
        send_error(cl, j->id, r, "cannot start the fetch", false);
    } else if (j->timeout_s) {
        nvx_node_fetch_timeout(cs->sub, j->timeout_s * 1000);
    }
out:
    free(j);
    client_put(cl);
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

static void
handle_fetch(struct client *cl, const proto_ctl_msg *m)
{
    proto_str t;
    if (!proto_ctl_get_str(m, PROTO_CTL_T_TARGET, &t) || t.len == 0) {
        send_error(cl, m->id, -EINVAL, "FETCH needs a TARGET", false);
        return;
    }
    struct resolve_job *j = calloc(1, sizeof(*j));
    if (!j) {
        send_error(cl, m->id, -ENOMEM, "out of memory", false);
        return;
    }
    j->cl = cl;
    j->id = m->id;
    memcpy(j->t.target, t.p, t.len);
    uint64_t pin = 0, untrusted = 0;
    proto_ctl_get_u64(m, PROTO_CTL_T_PIN, &pin);
    proto_ctl_get_u64(m, PROTO_CTL_T_UNTRUSTED, &untrusted);
    proto_ctl_get_u64(m, PROTO_CTL_T_TIMEOUT_S, &j->timeout_s);
    j->pin = pin != 0;
    j->t.untrusted = untrusted != 0;
    dial_ticket(cl->ctl, m);
    if (uv_queue_work(cl->ctl->loop, &j->w, resolve_work, resolve_done) < 0) {
        free(j);
        send_error(cl, m->id, -EIO, "cannot queue the fetch", false);
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
            send_ok(cl, pr->id);
        else if (r == -ENOENT)
            send_error(cl, pr->id, r,
                       "no signed record of that name for that model in the store: "
                       "run nvx publish",
                       false);
        else
            send_error(cl, pr->id, r, nvx_strerror(r), false);
    }
    free(pr);
    client_put(cl);
}

/* PUBLISH MODEL_ID NAME: `nvx publish` stored the signed record; announce it. */
static void
handle_publish(struct client *cl, const proto_ctl_msg *m)
{
    const uint8_t *id;
    proto_str s;
    char name[CAS_NAMEREC_NAME_MAX + 1];
    if (!proto_ctl_get_id(m, PROTO_CTL_T_MODEL_ID, &id) ||
        !proto_ctl_get_str(m, PROTO_CTL_T_NAME, &s) || s.len == 0 || s.len > CAS_NAMEREC_NAME_MAX) {
        send_error(cl, m->id, -EINVAL, "PUBLISH needs MODEL_ID and a NAME", false);
        return;
    }
    if (!cl->ctl->mesh) {
        send_error(cl, m->id, -ENOTSUP, "gossip is off in this nvxd", false);
        return;
    }
    memcpy(name, s.p, s.len);
    name[s.len] = '\0';
    struct publish_req *pr = calloc(1, sizeof(*pr));
    if (!pr) {
        send_error(cl, m->id, -ENOMEM, "out of memory", false);
        return;
    }
    pr->cl = cl;
    pr->id = m->id;
    int r = nvx_mesh_publish(cl->ctl->mesh, id, name, publish_done, pr);
    if (r < 0) {
        free(pr);
        send_error(cl, m->id, r, r == -EINVAL ? "bad name" : nvx_strerror(r), false);
        return;
    }
    cl->jobs++;
}

static bool
tcp_addr_ok(const char *s)
{
    struct sockaddr_storage ss;
    char host[TP_TCP_HOST_MAX];
    unsigned port;
    return tp_tcp_addr_parse(s, 0, &ss) == 0 || tp_tcp_hostport_parse(s, host, &port) == 0;
}

static void
handle(struct client *cl, const proto_ctl_msg *m)
{
    nvx_ctl *c = cl->ctl;
    char addr[PROTO_CTL_STR_MAX + 1];
    proto_str s;
    int r;
    switch (m->type) {
    case PROTO_CTL_STATUS:
        handle_status(cl, m->id);
        return;
    case PROTO_CTL_PEERS: {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, m->id);
        nvx_node_peers_each(c->node, put_peer, &w);
        send_writer(cl, &w, m->id);
        return;
    }
    case PROTO_CTL_PEER_LS: {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, m->id);
        nvx_node_peer_list(c->node, put_addr, &w);
        send_writer(cl, &w, m->id);
        return;
    }
    case PROTO_CTL_PEER_ADD:
    case PROTO_CTL_PEER_RM:
        if (!proto_ctl_get_str(m, PROTO_CTL_T_ADDR, &s) || s.len == 0) {
            send_error(cl, m->id, -EINVAL, "missing ADDR", false);
            return;
        }
        memcpy(addr, s.p, s.len);
        addr[s.len] = '\0';
        if (m->type == PROTO_CTL_PEER_ADD) {
            if (!tcp_addr_ok(addr)) {
                send_error(cl, m->id, -EINVAL, "bad address: give HOST:PORT", false);
                return;
            }
            r = nvx_node_peer_add(c->node, addr, true);
            if (r == -EEXIST) {
                send_error(cl, m->id, r, "already a configured peer", false);
                return;
            }
        } else {
            r = nvx_node_peer_rm(c->node, addr);
            if (r == -ENOENT) {
                send_error(cl, m->id, r, "not a configured peer", false);
                return;
            }
        }
        if (r < 0)
            send_error(cl, m->id, r, nvx_strerror(r), false);
        else
            send_ok(cl, m->id);
        return;
    case PROTO_CTL_FETCH:
        handle_fetch(cl, m);
        return;
    case PROTO_CTL_CANCEL: {
        uint64_t xid = 0;
        uint8_t id[32];
        bool have_id = false;
        if (proto_ctl_get_str(m, PROTO_CTL_T_TARGET, &s) && s.len < sizeof(addr)) {
            memcpy(addr, s.p, s.len);
            addr[s.len] = '\0';
            have_id = cas_hash_from_hex(addr, id) == 0;
            if (!have_id) {
                send_error(cl, m->id, -EINVAL, "CANCEL needs a full model id", false);
                return;
            }
        } else if (!proto_ctl_get_u64(m, PROTO_CTL_T_TRANSFER_ID, &xid)) {
            send_error(cl, m->id, -EINVAL, "CANCEL needs TARGET or TRANSFER_ID", false);
            return;
        }
        r = nvx_node_fetch_cancel(c->node, have_id ? id : NULL, xid);
        if (r < 0)
            send_error(cl, m->id, r, "no such transfer", false);
        else
            send_ok(cl, m->id);
        return;
    }
    case PROTO_CTL_SHUTDOWN: {
        proto_ctl_writer w;
        uint8_t *buf;
        size_t len;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, m->id);
        if (proto_ctl_writer_finish(&w, &buf, &len) == 0)
            client_send(cl, buf, len, false, true);
        log_info("shutdown requested over the control socket");
        return;
    }
    case PROTO_CTL_PUBLISH:
        handle_publish(cl, m);
        return;
    default:
        send_error(cl, m->id, -EBADMSG, "not a request type", false);
        return;
    }
}

/* ---- connections ------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[64 * 1024]; /* loop thread only; consumed before the next read */
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = st->data;
    if (nread < 0) {
        client_close(cl);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    while (len > 0 && !cl->closing) {
        size_t used;
        const uint8_t *payload;
        size_t plen;
        int r = proto_ctl_reader_feed(&cl->rd, p, len, &used, &payload, &plen);
        p += used;
        len -= used;
        if (r < 0) {
            log_peer(NVX_LOG_DEBUG, "control client sent a bad frame");
            send_error(cl, 0, r, "bad control frame", true);
            return;
        }
        if (r == 0)
            break;
        proto_ctl_msg *m = malloc(sizeof(*m));
        if (!m) {
            client_close(cl);
            return;
        }
        r = proto_ctl_decode(payload, plen, m);
        if (r < 0) {
            /* Echo the request id when the header is there. */
            uint32_t id = plen >= 6 ? be32_load(payload + 2) : 0;
            log_peer(NVX_LOG_DEBUG, "malformed control request");
            send_error(cl, id, -EBADMSG, "malformed control request", false);
        } else {
            handle(cl, m);
        }
        free(m);
    }
}

static void
client_free(struct client *cl)
{
    nvx_ctl *c = cl->ctl;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        c->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    c->n_clients--;
    proto_ctl_reader_reset(&cl->rd);
    free(cl);
    maybe_done(c);
}

static void
client_put(struct client *cl)
{
    if (cl->closing && cl->handle_closed && cl->jobs == 0)
        client_free(cl);
}

static void
on_client_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->handle_closed = true;
    client_put(cl);
}

static void
client_close(struct client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    for (size_t i = 0; i < NVX_CTL_SUBS_MAX; i++) {
        struct csub *cs = &cl->subs[i];
        if (cs->cl && cs->sub) {
            nvx_fetch_sub *sub = cs->sub;
            cs->sub = NULL;
            nvx_node_fetch_unsub(cl->ctl->node, sub);
        }
        cs->cl = NULL;
    }
    uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

/* Whether the client on fd runs as our uid or, with a control group, is a
 * member of it. The credentials are those the kernel took at connect(). */
static bool
client_allowed(const nvx_ctl *c, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    if (cred.uid == geteuid())
        return true;
    if (!c->group_set)
        return false;
    if (cred.gid == c->group)
        return true;
    gid_t groups[NVX_CTL_PEER_GROUPS_MAX];
    len = sizeof(groups);
    /* A member of more groups than we ask for gets ERANGE: refused. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
        return false;
    for (size_t i = 0; i < len / sizeof(groups[0]); i++)
        if (groups[i] == c->group)
            return true;
    return false;
}

static void
on_connection(uv_stream_t *server, int status)
{
    nvx_ctl *c = server->data;
    if (status < 0 || c->done)
        return;
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return;
    cl->ctl = c;
    uv_pipe_init(c->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    cl->next = c->clients;
    if (c->clients)
        c->clients->prev = cl;
    c->clients = cl;
    c->n_clients++;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
        client_close(cl);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0 || !client_allowed(c, fd)) {
        log_peer(NVX_LOG_WARN, "refusing a control client of another user");
        client_close(cl);
        return;
    }
    if (c->n_clients > NVX_CTL_CLIENTS_MAX) {
        send_error(cl, 0, -EBUSY, "too many control clients", true);
        return;
    }
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

/* Gives the socket to the control group (0660) or keeps it ours (0600). */
static int
socket_mode(const nvx_ctl *c)
{
    if (c->group_set && chown(c->path, (uid_t)-1, c->group) < 0)
        return -errno;
    if (chmod(c->path, c->group_set ? 0660 : 0600) < 0)
        return -errno;
    return 0;
}

int
nvx_ctl_new(const nvx_ctl_opts *opts, nvx_ctl **ret)
{
    nvx_ctl *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (strlen(opts->path) >= sizeof(c->path)) {
        free(c);
        return -ENAMETOOLONG;
    }
    snprintf(c->path, sizeof(c->path), "%s", opts->path);
    snprintf(c->agent, sizeof(c->agent), "%s", opts->agent ? opts->agent : "nvxd");
    c->loop = opts->loop;
    c->node = opts->node;
    c->store = opts->store;
    c->mesh = opts->mesh;
    c->natmap = opts->natmap;
    c->on_shutdown = opts->on_shutdown;
    c->arg = opts->arg;
    c->group_set = opts->group_set;
    c->group = opts->group;
    c->started_ms = uv_now(c->loop);
    uv_pipe_init(c->loop, &c->server, 0);
    c->server.data = c;
    unlink(c->path); /* main() holds the store's daemon lock: a file here is stale */
    mode_t old = umask(0177);
    int r = uv_pipe_bind(&c->server, c->path);
    umask(old);
    if (r == 0)
        r = socket_mode(c);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
    if (r < 0) {
        c->server_closed = false;
        uv_close((uv_handle_t *)&c->server, NULL);
        /* The handle memory must outlive the close: run the loop once. */
        uv_run(c->loop, UV_RUN_NOWAIT);
        free(c);
        return r;
    }
    *ret = c;
    return 0;
}

static void
on_server_closed(uv_handle_t *h)
{
    nvx_ctl *c = h->data;
    c->server_closed = true;
    maybe_done(c);
}

void
nvx_ctl_close(nvx_ctl *c, void (*done)(void *arg), void *arg)
{
    c->done = done;
    c->done_arg = arg;
    unlink(c->path);
    for (struct client *cl = c->clients, *next; cl; cl = next) {
        next = cl->next;
        client_close(cl);
    }
    uv_close((uv_handle_t *)&c->server, on_server_closed);
}
