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
#include "daemon/ctl-internal.h"
#include "daemon/log.h"
#include "daemon/pull.h"
#include "daemon/ratelimit.h"
#include "daemon/reach.h"
#include "daemon/xfer.h"
#include "libcas/hash.h"
#include "libcas/namerec.h"
#include "transport/tcp.h"

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

static void
put_dht(proto_ctl_writer *w, const nvx_dhtuv *dht)
{
    nvx_dht_stats st;
    nvx_dht_stats_get(nvx_dhtuv_core(dht), &st);
    char hex[41];
    nvx_dht_id_hex(st.id, hex);
    proto_ctl_nest_begin(w, PROTO_CTL_T_DHT);
    proto_ctl_put_str(w, PROTO_CTL_T_DHT_ID, hex);
    proto_ctl_put_u64(w, PROTO_CTL_T_DHT_NODES, st.nodes);
    proto_ctl_put_u64(w, PROTO_CTL_T_DHT_ANNOUNCED, st.announced);
    proto_ctl_put_u64(w, PROTO_CTL_T_DHT_PORT, nvx_dhtuv_port(dht));
    proto_ctl_put_u64(w, PROTO_CTL_T_DHT_STORED, st.peers + st.items);
    proto_ctl_nest_end(w);
}

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
        if (c->dht)
            put_dht(&wr, c->dht);
        nvx__ctl_send_writer(cl, &wr, j->id);
    }
    free(j);
    nvx__ctl_client_put(cl);
}

static void
handle_status(struct client *cl, uint32_t id)
{
    struct status_job *j = calloc(1, sizeof(*j));
    if (!j) {
        nvx__ctl_send_error(cl, id, -ENOMEM, "out of memory", false);
        return;
    }
    j->cl = cl;
    j->id = id;
    if (uv_queue_work(cl->ctl->loop, &j->w, status_work, status_done) < 0) {
        free(j);
        nvx__ctl_send_error(cl, id, -EIO, "cannot queue the status query", false);
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
        nvx__ctl_send_writer(cl, &w, m->id);
        return;
    }
    case PROTO_CTL_PEER_LS: {
        proto_ctl_writer w;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, m->id);
        nvx_node_peer_list(c->node, put_addr, &w);
        nvx__ctl_send_writer(cl, &w, m->id);
        return;
    }
    case PROTO_CTL_PEER_ADD:
    case PROTO_CTL_PEER_RM:
        if (!proto_ctl_get_str(m, PROTO_CTL_T_ADDR, &s) || s.len == 0) {
            nvx__ctl_send_error(cl, m->id, -EINVAL, "missing ADDR", false);
            return;
        }
        memcpy(addr, s.p, s.len);
        addr[s.len] = '\0';
        if (m->type == PROTO_CTL_PEER_ADD) {
            if (!tcp_addr_ok(addr)) {
                nvx__ctl_send_error(cl, m->id, -EINVAL, "bad address: give HOST:PORT", false);
                return;
            }
            r = nvx_node_peer_add(c->node, addr, true);
            if (r == -EEXIST) {
                nvx__ctl_send_error(cl, m->id, r, "already a configured peer", false);
                return;
            }
        } else {
            r = nvx_node_peer_rm(c->node, addr);
            if (r == -ENOENT) {
                nvx__ctl_send_error(cl, m->id, r, "not a configured peer", false);
                return;
            }
        }
        if (r < 0)
            nvx__ctl_send_error(cl, m->id, r, nvx_strerror(r), false);
        else
            nvx__ctl_send_ok(cl, m->id);
        return;
    case PROTO_CTL_FETCH:
        nvx__ctl_fetch(cl, m);
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
                nvx__ctl_send_error(cl, m->id, -EINVAL, "CANCEL needs a full model id", false);
                return;
            }
        } else if (!proto_ctl_get_u64(m, PROTO_CTL_T_TRANSFER_ID, &xid)) {
            nvx__ctl_send_error(cl, m->id, -EINVAL, "CANCEL needs TARGET or TRANSFER_ID", false);
            return;
        }
        r = nvx_node_fetch_cancel(c->node, have_id ? id : NULL, xid);
        if (r < 0)
            nvx__ctl_send_error(cl, m->id, r, "no such transfer", false);
        else
            nvx__ctl_send_ok(cl, m->id);
        return;
    }
    case PROTO_CTL_SHUTDOWN: {
        proto_ctl_writer w;
        uint8_t *buf;
        size_t len;
        proto_ctl_writer_init(&w, PROTO_CTL_OK, m->id);
        if (proto_ctl_writer_finish(&w, &buf, &len) == 0)
            nvx__ctl_client_send(cl, buf, len, false, true);
        log_info("shutdown requested over the control socket");
        return;
    }
    case PROTO_CTL_PUBLISH:
        nvx__ctl_publish(cl, m);
        return;
    case PROTO_CTL_DHT_GET:
        nvx__ctl_dht_get(cl, m);
        return;
    default:
        nvx__ctl_send_error(cl, m->id, -EBADMSG, "not a request type", false);
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
        nvx__ctl_client_close(cl);
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
            nvx__ctl_send_error(cl, 0, r, "bad control frame", true);
            return;
        }
        if (r == 0)
            break;
        proto_ctl_msg *m = malloc(sizeof(*m));
        if (!m) {
            nvx__ctl_client_close(cl);
            return;
        }
        r = proto_ctl_decode(payload, plen, m);
        if (r < 0) {
            /* Echo the request id when the header is there. */
            uint32_t id = plen >= 6 ? be32_load(payload + 2) : 0;
            log_peer(NVX_LOG_DEBUG, "malformed control request");
            nvx__ctl_send_error(cl, id, -EBADMSG, "malformed control request", false);
        } else {
            handle(cl, m);
        }
        free(m);
    }
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
        nvx__ctl_client_close(cl);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0 || !client_allowed(c, fd)) {
        log_peer(NVX_LOG_WARN, "refusing a control client of another user");
        nvx__ctl_client_close(cl);
        return;
    }
    if (c->n_clients > NVX_CTL_CLIENTS_MAX) {
        nvx__ctl_send_error(cl, 0, -EBUSY, "too many control clients", true);
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
    c->dht = opts->dht;
    if (c->dht) {
        nvx_dhtfetch_opts fo = {
            .loop = c->loop,
            .dht = c->dht,
            .node = c->node,
            .relay = opts->relay,
            .state_dir = opts->state_dir,
        };
        if (nvx_dhtfetch_new(&fo, &c->dhtf) < 0) {
            free(c);
            return -ENOMEM;
        }
    }
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
        nvx_dhtfetch_free(c->dhtf);
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
    nvx__ctl_maybe_done(c);
}

void
nvx_ctl_close(nvx_ctl *c, void (*done)(void *arg), void *arg)
{
    c->done = done;
    c->done_arg = arg;
    unlink(c->path);
    /* Name lookups end now (their clients get ERRORs), not when they time
     * out. */
    nvx_dhtfetch_free(c->dhtf);
    c->dhtf = NULL;
    for (struct client *cl = c->clients, *next; cl; cl = next) {
        next = cl->next;
        nvx__ctl_client_close(cl);
    }
    uv_close((uv_handle_t *)&c->server, on_server_closed);
}

nvx_dhtfetch *
nvx_ctl_dhtfetch(nvx_ctl *c)
{
    return c->dhtf;
}
