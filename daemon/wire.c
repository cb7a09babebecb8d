/* SPDX-License-Identifier: MIT */
/*
 * nvx_node_new(): the node core (daemon/node.c) with its own hooks wired
 * in: fetching (fetch.c), serving (serve.c), super-seeding (serve-seed.c)
 * and signatures (sigs.c). This file is the only one that knows both
 * sides: node.c calls none of them by name, and they call node.c (to send,
 * to close peers), never the reverse. Configured peers (cfgpeers.c) are
 * added last, once the hooks are in place.
 *
 * The order of the hooks is the order of every clean-up and every tick:
 * a closing peer's transfers first (they may ask other peers for its
 * work), then its queued requests, its super-seeding state, its signature
 * asks; a HAVE goes to the transfer before super-seeding hears of it.
 */
#include <errno.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"

#define MSG_BIT(t) ((uint64_t)1 << (t))

/* ---- fetch.c ------------------------------------------------------------ */

static void
fetch_peer_up(void *arg, nvx_peer *p)
{
    nvx__fetch_peer_up(p);
}

static void
fetch_peer_gone(void *arg, nvx_peer *p)
{
    nvx__fetch_peer_gone(p);
}

static void
fetch_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    nvx__fetch_msg(p, m);
}

static void
fetch_tick(void *arg)
{
    nvx__fetch_tick(arg);
}

static void
fetch_recv_done(void *arg)
{
    nvx__fetch_pump_pending(arg);
}

/* A transfer (even an ended one waiting for its pool jobs) keeps a
 * stopping node alive. */
static bool
fetch_busy(void *arg)
{
    nvx_node *n = arg;
    return n->xfers != NULL;
}

static void
fetch_stop(void *arg)
{
    nvx__fetch_stop_all(arg);
}

/* ---- serve.c, serve-seed.c ---------------------------------------------- */

static void
serve_peer_gone(void *arg, nvx_peer *p)
{
    nvx__serve_peer_gone(p);
}

static void
serve_peer_free(void *arg, nvx_peer *p)
{
    nvx__serve_peer_free(p);
}

static void
serve_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    nvx__serve_msg(p, m);
}

static void
serve_writable(void *arg, nvx_peer *p)
{
    nvx__serve_pump(p);
}

static void
serve_tick(void *arg)
{
    nvx__serve_tick(arg); /* after node.c's per-peer tick: reads rate_last */
}

static void
serve_free(void *arg)
{
    nvx__serve_free(arg);
}

static void
seed_peer_gone(void *arg, nvx_peer *p)
{
    nvx__seed_peer_gone(p);
}

/* Fetchers' announcements (HAVE) tell super-seeding what they hold. */
static void
seed_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    nvx__seed_have(p, &m->u.want);
}

static void
seed_tick(void *arg)
{
    nvx__seed_tick(arg);
}

/* ---- sigs.c ------------------------------------------------------------- */

/* When the peer closes, and again when it is freed (a backstop kept from
 * before the hooks: nvx__sigs_ask refuses a closing peer, so the second
 * call finds nothing). */
static void
sigs_peer_gone(void *arg, nvx_peer *p)
{
    nvx__sigs_peer_gone(p);
}

static void
sigs_message(void *arg, nvx_peer *p, const proto_msg *m)
{
    nvx__sigs_msg(p, m);
}

int
nvx_node_new(const nvx_node_opts *opts, nvx_node **ret)
{
    nvx_node *n = NULL;
    int r = nvx__node_create(opts, &n);
    if (r < 0)
        return r;
    const nvx_node_hook own[NVX_NODE_HOOKS_OWN] = {
        {
            .peer_up = fetch_peer_up,
            .peer_gone = fetch_peer_gone,
            .message = fetch_message,
            .claims = MSG_BIT(PROTO_MSG_HAVE) | MSG_BIT(PROTO_MSG_DATA) |
                      MSG_BIT(PROTO_MSG_NOT_FOUND) | MSG_BIT(PROTO_MSG_MANIFEST),
            .tick = fetch_tick,
            .recv_done = fetch_recv_done,
            .busy = fetch_busy,
            .stop = fetch_stop,
            .arg = n,
        },
        {
            .peer_gone = serve_peer_gone,
            .peer_free = serve_peer_free,
            .message = serve_message,
            .claims = MSG_BIT(PROTO_MSG_WANT) | MSG_BIT(PROTO_MSG_REQUEST) |
                      MSG_BIT(PROTO_MSG_CANCEL) | MSG_BIT(PROTO_MSG_MANIFEST_REQ) |
                      MSG_BIT(PROTO_MSG_SIGS_REQ),
            .writable = serve_writable,
            .tick = serve_tick,
            .free = serve_free,
            .arg = n,
        },
        {
            .peer_gone = seed_peer_gone,
            .message = seed_message,
            .claims = MSG_BIT(PROTO_MSG_HAVE),
            .tick = seed_tick,
            .arg = n,
        },
        {
            .peer_gone = sigs_peer_gone,
            .peer_free = sigs_peer_gone,
            .message = sigs_message,
            .claims = MSG_BIT(PROTO_MSG_SIGS),
            .arg = n,
        },
    };
    for (size_t i = 0; i < NVX_NODE_HOOKS_OWN; i++) {
        r = nvx_node_hook_add(n, &own[i]);
        if (r < 0)
            goto fail;
    }
    r = nvx__node_start(n, opts->listen);
    if (r < 0)
        goto fail;
    for (size_t i = 0; i < opts->n_peers; i++) {
        r = nvx_node_peer_add(n, opts->peers[i], false);
        if (r < 0 && r != -EEXIST)
            log_warn("ignoring peer %s: %s", opts->peers[i], nvx_strerror(r));
    }
    nvx__cfg_peers_load(n);
    *ret = n;
    return 0;
fail:
    nvx_node_free(n);
    return r;
}
