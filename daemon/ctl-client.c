/* SPDX-License-Identifier: MIT */
/*
 * Control clients (daemon/ctl-internal.h): responses out, and the end of a
 * client once its handle closed and its jobs finished.
 */
#include <stdlib.h>

#include "daemon/ctl-internal.h"
#include "daemon/node.h"

struct wreq {
    uv_write_t w;
    uint8_t *buf;
    bool close_after;
    bool shutdown_after;
};

static void client_free(struct client *cl);

void
nvx__ctl_maybe_done(nvx_ctl *c)
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
        nvx__ctl_client_close(cl);
    if (wr->shutdown_after && cl->ctl->on_shutdown)
        cl->ctl->on_shutdown(cl->ctl->arg);
    free(wr);
}

/* Sends a finished frame (takes buf). */
void
nvx__ctl_client_send(struct client *cl, uint8_t *buf, size_t len, bool close_after,
                     bool shutdown_after)
{
    if (cl->closing) {
        free(buf);
        return;
    }
    struct wreq *wr = calloc(1, sizeof(*wr));
    if (!wr) {
        free(buf);
        nvx__ctl_client_close(cl);
        return;
    }
    wr->buf = buf;
    wr->close_after = close_after;
    wr->shutdown_after = shutdown_after;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    if (uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, on_write) < 0) {
        free(buf);
        free(wr);
        nvx__ctl_client_close(cl);
    }
}

void
nvx__ctl_send_error(struct client *cl, uint32_t id, int code, const char *msg, bool close_after)
{
    uint8_t *buf;
    size_t len;
    if (proto_ctl_error_build(id, code, msg, &buf, &len) == 0)
        nvx__ctl_client_send(cl, buf, len, close_after, false);
    else
        nvx__ctl_client_close(cl);
}

void
nvx__ctl_send_writer(struct client *cl, proto_ctl_writer *w, uint32_t id)
{
    uint8_t *buf;
    size_t len;
    int r = proto_ctl_writer_finish(w, &buf, &len);
    if (r < 0) {
        nvx__ctl_send_error(cl, id, r, "cannot encode the response", false);
        return;
    }
    nvx__ctl_client_send(cl, buf, len, false, false);
}

void
nvx__ctl_send_ok(struct client *cl, uint32_t id)
{
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_OK, id);
    nvx__ctl_send_writer(cl, &w, id);
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
    nvx__ctl_maybe_done(c);
}

void
nvx__ctl_client_put(struct client *cl)
{
    if (cl->closing && cl->handle_closed && cl->jobs == 0)
        client_free(cl);
}

static void
on_client_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->handle_closed = true;
    nvx__ctl_client_put(cl);
}

void
nvx__ctl_sub_unwant(nvx_ctl *c, struct csub *cs)
{
    if (cs->dht_want && c->dhtf)
        nvx_dhtfetch_unwant(c->dhtf, cs->model);
    cs->dht_want = false;
}

void
nvx__ctl_client_close(struct client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    for (size_t i = 0; i < NVX_CTL_SUBS_MAX; i++) {
        struct csub *cs = &cl->subs[i];
        if (cs->cl && cs->sub) {
            nvx_fetch_sub *sub = cs->sub;
            cs->sub = NULL;
            nvx_node_fetch_unsub(cl->ctl->node, sub); /* no callback follows */
            nvx__ctl_sub_unwant(cl->ctl, cs);
        }
        cs->cl = NULL;
    }
    uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}
