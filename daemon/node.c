/* SPDX-License-Identifier: MIT */
/*
 * The node core: listener, dialing configured peers with backoff, one proto
 * session per connection, message dispatch to hooks, the send budget,
 * status. Fetching, serving and signatures are hooks like any other
 * (daemon/wire.c wires them); nothing here calls them by name. Everything
 * here runs on the loop thread.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"
#include "libcas/hash.h"

static void on_recv(tp_conn *c, const uint8_t *buf, size_t len);
static void on_end(tp_conn *c, int status);

uint64_t
nvx__now(nvx_node *n)
{
    return uv_now(n->loop);
}

void
nvx__test_delay(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

nvx_peer *
nvx__peer_by_id(nvx_node *n, const uint8_t id[static 32])
{
    for (nvx_peer *p = n->peers; p; p = p->next)
        if (p->established && !p->closing && memcmp(p->id, id, 32) == 0)
            return p;
    return NULL;
}

static void
peer_free(nvx_peer *p)
{
    nvx_node *n = p->node;
    if (p->prev)
        p->prev->next = p->next;
    else
        n->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    n->n_peers--;
    proto_session_free(p->sess);
    for (size_t i = 0; i < n->n_hooks; i++)
        if (n->hooks[i].peer_free)
            n->hooks[i].peer_free(n->hooks[i].arg, p);
    free(p);
    nvx__node_maybe_stopped(n);
}

/* Frees the peer once its connection is closed and no pool job refers to
 * it any more. */
void
nvx__peer_put(nvx_peer *p)
{
    if (p->conn_closed && p->jobs == 0)
        peer_free(p);
}

static void
on_close(tp_conn *c)
{
    nvx_peer *p = tp_conn_data(c);
    p->conn = NULL;
    p->conn_closed = true;
    nvx__peer_put(p);
}

/* Session output handed to the link in one tp_send (one writev). */
struct send_batch {
    nvx_node *node;
    unsigned n;
    size_t bytes;
    uint8_t *bufs[TP_SEND_BUFS_MAX];
};

/* Tells the hooks that p may send more (nvx_node_hook.writable). */
static void
writable(nvx_node *n, nvx_peer *p)
{
    for (size_t i = 0; i < n->n_hooks && !p->closing; i++)
        if (n->hooks[i].writable)
            n->hooks[i].writable(n->hooks[i].arg, p);
}

/* True while a hook holds work (nvx_node_hook.busy). */
static bool
hooks_busy(nvx_node *n)
{
    for (size_t i = 0; i < n->n_hooks; i++)
        if (n->hooks[i].busy && n->hooks[i].busy(n->hooks[i].arg))
            return true;
    return false;
}

enum hook_event {
    HOOK_TICK,
    HOOK_RECV_DONE,
    HOOK_STOP,
    HOOK_FREE
};

/* Runs the hooks' member for ev (those that take only their arg), in the
 * order the hooks were added. */
static void
hooks_run(nvx_node *n, enum hook_event ev)
{
    for (size_t i = 0; i < n->n_hooks; i++) {
        const nvx_node_hook *h = &n->hooks[i];
        void (*f)(void *) = ev == HOOK_TICK        ? h->tick
                            : ev == HOOK_RECV_DONE ? h->recv_done
                            : ev == HOOK_STOP      ? h->stop
                                                   : h->free;
        if (f)
            f(h->arg);
    }
}

static void
on_send(tp_conn *c, void *arg, int status)
{
    struct send_batch *b = arg;
    nvx_node *n = b->node;
    for (unsigned i = 0; i < b->n; i++)
        free(b->bufs[i]);
    n->tx_queued -= b->bytes;
    free(b);
    nvx_peer *p = tp_conn_data(c);
    if (p)
        writable(n, p);
    /* Peers held back by the node's send budget get their turn too. */
    if (n->serve_starved && n->tx_queued < NVX_NODE_SERVE_MAX_BYTES) {
        n->serve_starved = false;
        for (nvx_peer *q = n->peers; q; q = q->next)
            if (q != p)
                writable(n, q);
    }
}

static void
reap(uv_timer_t *t)
{
    nvx_node *n = (nvx_node *)((char *)t - offsetof(nvx_node, reap));
    for (nvx_peer *p = n->peers; p; p = p->next)
        if (p->doomed && !p->closing)
            nvx__peer_close(p, PROTO_BYE_NORMAL, "send failed");
}

/* A send failed: the peer is closed from the loop, never from inside the
 * send. Callers send while they walk their own lists (transfers, peers,
 * requests); a close from inside the send freed entries under them. */
static void
doom(nvx_peer *p)
{
    if (p->doomed || p->closing)
        return;
    p->doomed = true;
    if (!uv_is_closing((uv_handle_t *)&p->node->reap))
        uv_timer_start(&p->node->reap, reap, 0, 0);
}

/* Hands the session's queued output to the link in as few tp_sends as
 * TP_SEND_BUFS_MAX allows. `last` is the BYE of a peer being closed: its
 * output still goes out. A failure never closes the peer here (see doom). */
static void
flush(nvx_peer *p, bool last)
{
    uint8_t *buf;
    size_t len;
    struct send_batch *b = NULL;
    tp_buf tb[TP_SEND_BUFS_MAX];
    for (;;) {
        int more = proto_session_output(p->sess, &buf, &len);
        if (more > 0 && (((p->closing || p->doomed) && !last) || !p->conn)) {
            free(buf);
            continue;
        }
        if (more > 0 && !b && !(b = calloc(1, sizeof(*b)))) {
            free(buf);
            doom(p);
            continue; /* drain (and free) what is left */
        }
        if (more > 0) {
            b->node = p->node;
            tb[b->n].base = buf;
            tb[b->n].len = len;
            b->bufs[b->n++] = buf;
            b->bytes += len;
            p->bytes_out += len;
            p->node->io_bytes += len;
        }
        if (b && (more <= 0 || b->n == TP_SEND_BUFS_MAX)) {
            int r = tp_send(p->conn, tb, b->n, on_send, b);
            if (r < 0) {
                for (unsigned i = 0; i < b->n; i++)
                    free(b->bufs[i]);
                free(b);
                b = NULL;
                doom(p);
                continue; /* drain (and free) what is left */
            }
            p->node->tx_queued += b->bytes;
            b = NULL;
        }
        if (more <= 0)
            return;
    }
}

void
nvx__peer_flush(nvx_peer *p)
{
    flush(p, false);
}

/* Closes a peer exactly once. `closing` is set before anything else: the
 * BYE below, the hooks and the transfer clean-up may each fail a send or
 * call back here, and a peer whose link failed must not be closed again
 * (that recursion overflowed the stack on every TCP reset). */
void
nvx__peer_close(nvx_peer *p, uint8_t bye_reason, const char *why)
{
    if (p->closing)
        return;
    p->closing = true;
    nvx_node *n = p->node;
    char sid[17];
    if (p->established) {
        proto_msg m = { .type = PROTO_MSG_BYE };
        m.u.bye.reason = bye_reason;
        m.u.bye.text.p = (const uint8_t *)why;
        m.u.bye.text.len = strlen(why) < PROTO_BYE_TEXT_MAX ? strlen(why) : 0;
        if (p->conn && proto_session_send_msg(p->sess, &m) == 0)
            flush(p, true);
        log_peer(NVX_LOG_INFO, "peer %s (%s) disconnected: %s", nvx_short_id(p->id, sid), p->addr,
                 why);
    } else {
        log_peer(NVX_LOG_DEBUG, "connection %s closed: %s", p->addr, why);
    }
    if (p->cfg) {
        p->cfg->conn = NULL;
        p->cfg->next_dial_ms = nvx__now(n) + p->cfg->backoff_ms;
        p->cfg->backoff_ms *= 2;
        if (p->cfg->backoff_ms > NVX_NODE_DIAL_BACKOFF_MAX_MS)
            p->cfg->backoff_ms = NVX_NODE_DIAL_BACKOFF_MAX_MS;
        p->cfg = NULL;
    }
    bool was_up = p->established;
    /* Every hook's own clean-up first (transfers, queued requests,
     * super-seeding, signature asks), then the peer_down listeners: a
     * hook's clean-up may send to other peers or close this one again
     * (which `closing` turns into a no-op). */
    for (size_t i = 0; i < n->n_hooks; i++)
        if (n->hooks[i].peer_gone)
            n->hooks[i].peer_gone(n->hooks[i].arg, p);
    if (was_up)
        for (size_t i = 0; i < n->n_hooks; i++)
            if (n->hooks[i].peer_down)
                n->hooks[i].peer_down(n->hooks[i].arg, p);
    tp_close(p->conn, on_close);
}

void
nvx__peer_bad(nvx_node *n, const uint8_t id[static 32], const char *addr)
{
    uint8_t key[32];
    nvx_badlist_add(&n->bad, id, nvx__now(n));
    if (addr && nvx_badlist_addr_key(addr, key))
        nvx_badlist_add(&n->bad, key, nvx__now(n));
}

static bool
peer_check(void *userdata, const uint8_t peer_id[PROTO_NODE_ID_LEN])
{
    nvx_peer *p = userdata;
    uint8_t key[32];
    uint64_t now = nvx__now(p->node);
    return !nvx_badlist_has(&p->node->bad, peer_id, now) &&
           !(nvx_badlist_addr_key(p->addr, key) && nvx_badlist_has(&p->node->bad, key, now));
}

static nvx_peer *
peer_new(nvx_node *n, tp_conn *c, bool outbound, const char *addr)
{
    nvx_peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->node = n;
    p->conn = c;
    p->outbound = outbound;
    p->t_start_ms = nvx__now(n);
    nvx_budget_init(&p->cpu, p->t_start_ms);
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->next = n->peers;
    if (n->peers)
        n->peers->prev = p;
    n->peers = p;
    n->n_peers++;
    tp_conn_set_data(c, p);
    return p;
}

/* Creates the session and starts reading (connection is up). */
static int
peer_start(nvx_peer *p)
{
    nvx_node *n = p->node;
    /* The mapped external address first: peers pass addrs[0] on (peer
     * exchange), and the listening one is only reachable on our LAN. */
    const char *addrs[2];
    size_t n_addrs = 0;
    if (n->ext_addr[0])
        addrs[n_addrs++] = n->ext_addr;
    if (n->listen_addr[0])
        addrs[n_addrs++] = n->listen_addr;
    proto_session_config cfg = {
        .identity = n->identity,
        .initiator = p->outbound,
        .peer_check = peer_check,
        .userdata = p,
        /* REVERSE: daemon/mesh-reverse.c forwards REVERSE_REQ and
         * REVERSE_AT (daemon/reverse.h) unless the owner said no. */
        .features = PROTO_FEAT_SEED | (n->no_relay ? 0 : PROTO_FEAT_REVERSE),
        .agent = n->agent,
        .n_addrs = n_addrs,
        .addrs = addrs,
        .expected_peer = p->pinned ? p->expect : NULL,
    };
    int r = proto_session_new(&cfg, nvx__now(n), &p->sess);
    if (r < 0)
        return r;
    r = tp_read_start(p->conn, on_recv, on_end);
    if (r < 0)
        return r;
    nvx__peer_flush(p);
    return 0;
}

/* Asks daemon/admit.c whether a connection from in_addr (NULL: a dial of
 * kind dial_kind) may have a slot; closes the sessions it names to make
 * room. Returns true when the slot is there. */
static bool
admit(nvx_node *n, const char *in_addr, int dial_kind)
{
    /* Each round closes one session; the policy never needs more than a
     * handshake and an idle session, so a few rounds are plenty. */
    for (int round = 0; round < 4; round++) {
        size_t cap = n->n_peers ? n->n_peers : 1, k = 0;
        nvx_admit_peer *v = calloc(cap, sizeof(*v));
        nvx_peer **map = calloc(cap, sizeof(*map));
        if (!v || !map) {
            free(v);
            free(map);
            return false;
        }
        for (nvx_peer *q = n->peers; q && k < cap; q = q->next) {
            if (q->closing)
                continue;
            v[k] = (nvx_admit_peer){
                .addr = q->addr,
                .inbound = !q->outbound,
                .established = q->established,
                .protected_ = q->cfg || q->useful,
                .t_start_ms = q->t_start_ms,
                .t_useful_ms = q->t_useful_ms,
            };
            map[k++] = q;
        }
        size_t victim = 0;
        uint64_t now = nvx__now(n);
        int r = in_addr ? nvx_admit_inbound(&n->admit, v, k, in_addr, now, &victim)
                        : nvx_admit_dial(&n->admit, v, k, dial_kind, now, &victim);
        nvx_peer *vp = r == NVX_ADMIT_EVICT ? map[victim] : NULL;
        free(v);
        free(map);
        if (r != NVX_ADMIT_EVICT)
            return r == NVX_ADMIT_YES;
        log_peer(NVX_LOG_DEBUG, "evicting %s %s for %s",
                 vp->established ? "idle session" : "handshake", vp->addr,
                 in_addr ? in_addr : "a dial");
        nvx__peer_close(vp, PROTO_BYE_TOO_MANY_PEERS,
                        vp->established ? "evicted: idle, slot needed"
                                        : "evicted: too many handshakes");
    }
    return false;
}

static void
on_accept(tp_listener *l, tp_conn *c, int status)
{
    nvx_node *n = tp_listener_data(l);
    if (status < 0) {
        log_error_errno(status, "listener failed");
        return;
    }
    /* Slots (daemon/admit.h): a quarter kept for our dials, caps per
     * address and per network, silent handshakes and idle sessions make
     * room for newcomers. */
    const char *from = tp_conn_remote_addr(c);
    if (n->stopping || !admit(n, from, 0)) {
        log_peer(NVX_LOG_DEBUG, "refusing connection from %s: %s", from,
                 n->stopping ? "stopping" : "no slot (too many peers)");
        tp_close(c, NULL);
        return;
    }
    nvx_peer *p = peer_new(n, c, false, from);
    if (!p) {
        tp_close(c, NULL);
        return;
    }
    int r = peer_start(p);
    if (r < 0)
        nvx__peer_close(p, PROTO_BYE_NORMAL, "cannot start session");
}

static void
on_connect(tp_conn *c, int status)
{
    nvx_peer *p = tp_conn_data(c);
    if (p->closing)
        return;
    if (status < 0) {
        log_peer(NVX_LOG_DEBUG, "dial %s: %s", p->addr, nvx_strerror(status));
        nvx__peer_close(p, PROTO_BYE_NORMAL, "dial failed");
        return;
    }
    int r = peer_start(p);
    if (r < 0)
        nvx__peer_close(p, PROTO_BYE_NORMAL, "cannot start session");
}

static int
dial(nvx_node *n, const char *addr, struct cfg_peer *cfg, const uint8_t *id, bool useful)
{
    if (!admit(n, NULL, cfg || useful ? NVX_ADMIT_DIAL_USEFUL : NVX_ADMIT_DIAL_PLAIN))
        return -EAGAIN;
    tp_conn *c;
    int r = tp_dial(n->net, addr, on_connect, NULL, &c);
    if (r < 0)
        return r;
    nvx_peer *p = peer_new(n, c, true, addr);
    if (!p) {
        tp_close(c, NULL);
        return -ENOMEM;
    }
    p->cfg = cfg;
    if (cfg)
        cfg->conn = p;
    p->useful = useful;
    if (id) {
        p->pinned = true;
        memcpy(p->expect, id, 32);
    }
    return 0;
}

int
nvx_node_dial(nvx_node *n, const char *addr)
{
    return dial(n, addr, NULL, NULL, false);
}

int
nvx_node_dial_id(nvx_node *n, const char *addr, const uint8_t *id, bool useful)
{
    return dial(n, addr, NULL, id, useful);
}

bool
nvx_peer_outbound(const nvx_peer *p)
{
    return p->outbound;
}

static void
handshake_done(nvx_peer *p)
{
    nvx_node *n = p->node;
    const uint8_t *id = proto_session_peer_id(p->sess);
    const proto_hello *h = proto_session_peer_hello(p->sess);
    char sid[17];
    memcpy(p->id, id, 32);
    size_t al = h && h->agent.len <= PROTO_AGENT_MAX ? h->agent.len : 0;
    if (al)
        memcpy(p->agent, h->agent.p, al); /* printable: proto checked it */
    p->agent[al] = '\0';
    p->established = true;
    if (p->cfg)
        p->cfg->backoff_ms = NVX_NODE_DIAL_BACKOFF_MIN_MS;
    log_info("peer %s (%s) connected%s%s", nvx_short_id(id, sid), p->addr, al ? ", " : "",
             p->agent);
    for (size_t i = 0; i < n->n_hooks && !p->closing; i++)
        if (n->hooks[i].peer_up)
            n->hooks[i].peer_up(n->hooks[i].arg, p);
}

static void
dispatch(nvx_peer *p, const proto_event *ev)
{
    nvx_node *n = p->node;
    proto_msg m;
    int r = proto_msg_decode(ev->msg_type, ev->body, ev->len, &m);
    if (r == -EOPNOTSUPP)
        return;
    if (r < 0) {
        nvx__peer_close(p, PROTO_BYE_PROTOCOL_ERROR, "malformed message");
        return;
    }
    /* PING, PONG and BYE are the node's own; hooks claim the rest
     * (nvx_node_hook.claims). */
    uint64_t bit = m.type < 64 ? (uint64_t)1 << m.type : 0;
    bool handled = true;
    switch (m.type) {
    case PROTO_MSG_PING: {
        proto_msg pong = { .type = PROTO_MSG_PONG, .u.ping = m.u.ping };
        proto_session_send_msg(p->sess, &pong);
        break;
    }
    case PROTO_MSG_PONG:
        break;
    case PROTO_MSG_BYE:
        nvx__peer_close(p, PROTO_BYE_NORMAL, "peer said bye");
        return;
    default:
        handled = false;
        for (size_t i = 0; i < n->n_hooks; i++)
            handled |= (n->hooks[i].claims & bit) != 0;
        break;
    }
    for (size_t i = 0; i < n->n_hooks && !p->closing; i++) {
        const nvx_node_hook *h = &n->hooks[i];
        bool mine = h->claims ? (h->claims & bit) != 0 : !handled;
        if (h->message && (mine || h->all))
            h->message(h->arg, p, &m);
    }
}

/* DATA, REQUEST and CANCEL cost in proportion to the bytes they carry or
 * ask for (a REQUEST's answer is read and sealed here), which the peer pays
 * for in bandwidth and the per-peer request queue bounds: they are not
 * charged to its share of the loop, or a fast honest fetcher would be
 * throttled (bench-net fell to 0.30x curl when REQUESTs were charged). */
static bool
data_plane(uint8_t type)
{
    return type == PROTO_MSG_DATA || type == PROTO_MSG_REQUEST || type == PROTO_MSG_CANCEL;
}

static void
on_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    nvx_peer *p = tp_conn_data(c);
    if (p->closing)
        return;
    p->bytes_in += len;
    p->t_rx_ms = nvx__now(p->node);
    p->node->io_bytes += len;
    p->node->in_recv++;
    while (len > 0 && !p->closing) {
        size_t used = 0;
        proto_event ev;
        int r = proto_session_feed(p->sess, buf, len, nvx__now(p->node), &used, &ev);
        buf += used;
        len -= used;
        if (r < 0) {
            nvx__peer_flush(p);
            if (p->pinned && proto_session_fail(p->sess) == PROTO_FAIL_PEER_MISMATCH)
                for (size_t i = 0; i < p->node->n_hooks; i++)
                    if (p->node->hooks[i].mismatch)
                        p->node->hooks[i].mismatch(p->node->hooks[i].arg, p->expect, p->addr);
            char why[96];
            snprintf(why, sizeof(why), "session failed: %s",
                     proto_fail_str(proto_session_fail(p->sess)));
            nvx__peer_close(p, PROTO_BYE_PROTOCOL_ERROR, why);
            break;
        }
        if (r == 0)
            break;
        if (ev.type == PROTO_EVENT_HANDSHAKE_DONE) {
            handshake_done(p);
        } else if (ev.type == PROTO_EVENT_MESSAGE && data_plane(ev.msg_type)) {
            dispatch(p, &ev);
        } else if (ev.type == PROTO_EVENT_MESSAGE) {
            uint64_t t0 = uv_hrtime();
            dispatch(p, &ev);
            nvx_budget_spend(&p->cpu, (uv_hrtime() - t0) / 1000);
        }
    }
    if (!p->closing && nvx_budget_empty(&p->cpu, nvx__now(p->node))) {
        /* Over its share of the loop: read nothing more from it until the
         * tick finds the bucket refilled. */
        tp_read_stop(c);
        if (!p->throttled)
            log_peer(NVX_LOG_INFO, "peer %s: over its share of the loop, reading paused", p->addr);
        p->throttled = true;
    }
    if (!p->closing)
        nvx__peer_flush(p);
    if (--p->node->in_recv == 0)
        hooks_run(p->node, HOOK_RECV_DONE);
}

static void
on_end(tp_conn *c, int status)
{
    nvx_peer *p = tp_conn_data(c);
    nvx__peer_close(p, PROTO_BYE_NORMAL, status < 0 ? nvx_strerror(status) : "connection closed");
}

/* A link can die without a word (a NAT entry dropped, a peer frozen, a
 * stalled route): nothing ends the stream and nothing arrives. Every
 * established session hears from its peer at least every
 * peer_timeout_ms / 3 (our PING gets a PONG), or it is closed and its work
 * moves elsewhere. */
static void
keepalive(nvx_peer *p, uint64_t now)
{
    uint32_t limit = p->node->peer_timeout_ms;
    uint64_t quiet = now - (p->t_rx_ms > p->t_start_ms ? p->t_rx_ms : p->t_start_ms);
    if (quiet >= limit) {
        nvx__peer_close(p, PROTO_BYE_IDLE, "peer silent too long");
        return;
    }
    if (quiet >= limit / 3 && now - p->t_ping_ms >= limit / 3) {
        p->t_ping_ms = now;
        proto_msg m = { .type = PROTO_MSG_PING, .u.ping = { .nonce = now } };
        if (proto_session_send_msg(p->sess, &m) == 0)
            nvx__peer_flush(p);
    }
}

static void
tick(uv_timer_t *t)
{
    nvx_node *n = (nvx_node *)((char *)t - offsetof(nvx_node, timer));
    uint64_t now = nvx__now(n);
    for (nvx_peer *p = n->peers, *next; p; p = next) {
        next = p->next;
        if (p->closing || !p->sess)
            continue;
        if (p->throttled && !nvx_budget_empty(&p->cpu, now) &&
            tp_read_start(p->conn, on_recv, on_end) == 0)
            p->throttled = false;
        p->rate_in = (p->rate_in * 3 + p->rate_bytes * (1000 / NVX_NODE_TICK_MS)) / 4;
        p->rate_last = p->rate_bytes;
        p->rate_bytes = 0;
        if (proto_session_tick(p->sess, now) < 0) {
            nvx__peer_flush(p);
            nvx__peer_close(p, PROTO_BYE_IDLE, "handshake timed out or peer stalled");
        } else if (p->established) {
            keepalive(p, now);
        }
    }
    if (!n->stopping)
        for (struct cfg_peer *cp = n->cfg_peers; cp; cp = cp->next)
            if (!cp->conn && now >= cp->next_dial_ms) {
                int r = dial(n, cp->addr, cp, NULL, false);
                if (r < 0) {
                    log_peer(NVX_LOG_WARN, "cannot dial %s: %s", cp->addr, nvx_strerror(r));
                    cp->next_dial_ms = now + cp->backoff_ms;
                    if (cp->backoff_ms < NVX_NODE_DIAL_BACKOFF_MAX_MS)
                        cp->backoff_ms *= 2;
                }
            }
    hooks_run(n, HOOK_TICK);
    /* A tick without traffic after a burst: give the allocator's free
     * memory back (main.c keeps it while frames flow). */
    if (n->io_bytes != n->io_bytes_seen) {
        n->io_bytes_seen = n->io_bytes;
        n->trim_due = true;
    } else if (n->trim_due && n->tx_queued == 0 && !hooks_busy(n)) {
        n->trim_due = false;
#ifdef __GLIBC__
        malloc_trim(0);
#endif
    }
}

/* ---- lifecycle --------------------------------------------------------- */

int
nvx__node_create(const nvx_node_opts *opts, nvx_node **ret)
{
    if (!opts || !opts->loop || !opts->net || !opts->store || !opts->identity)
        return -EINVAL;
    nvx_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->loop = opts->loop;
    n->net = opts->net;
    n->store = opts->store;
    n->identity = opts->identity;
    n->max_peers = opts->max_peers ? opts->max_peers : 64;
    n->admit = (nvx_admit_cfg){
        .max_peers = n->max_peers,
        .per_addr = opts->inbound_per_addr,
        .per_prefix = opts->inbound_per_prefix,
        .prefix_loopback = opts->prefix_loopback,
    };
    n->peer_max_requests = opts->peer_max_requests ? opts->peer_max_requests : 1024;
    n->peer_max_bytes = opts->peer_max_bytes ? opts->peer_max_bytes : (uint64_t)8 << 20;
    n->corrupt_serve = opts->corrupt_serve;
    n->serve = (unsigned)opts->serve < _NVX_SERVE_POLICY_MAX ? opts->serve : NVX_SERVE_NONE;
    n->serve_delay_ms = opts->serve_delay_ms;
    n->put_delay_ms = opts->put_delay_ms;
    n->peer_timeout_ms = opts->peer_timeout_ms ? opts->peer_timeout_ms : NVX_NODE_PEER_TIMEOUT_MS;
    n->fetched = opts->fetched;
    n->fetched_arg = opts->arg;
    nvx_rate_init(&n->up, opts->upload_rate, uv_now(n->loop));
    nvx_rate_init(&n->down, opts->download_rate, uv_now(n->loop));
    n->next_xid = 1;
    snprintf(n->agent, sizeof(n->agent), "%s", opts->agent ? opts->agent : "nvxd");
    n->no_relay = opts->no_relay;
    *ret = n;
    return 0;
}

int
nvx__node_start(nvx_node *n, const char *listen)
{
    if (listen) {
        int r = tp_listen(n->net, listen, on_accept, n, &n->listener);
        if (r < 0)
            return r;
        snprintf(n->listen_addr, sizeof(n->listen_addr), "%s", tp_listener_addr(n->listener));
    }
    uv_timer_init(n->loop, &n->timer);
    uv_timer_init(n->loop, &n->reap);
    uv_timer_start(&n->timer, tick, NVX_NODE_TICK_MS, NVX_NODE_TICK_MS);
    return 0;
}

int
nvx_node_hook_add(nvx_node *n, const nvx_node_hook *h)
{
    if (n->n_hooks >= NVX_NODE_HOOKS_MAX)
        return -ENOSPC;
    n->hooks[n->n_hooks++] = *h;
    return 0;
}

int
nvx_peer_send(nvx_peer *p, const proto_msg *m)
{
    if (!p->established || p->closing)
        return -ENOTCONN;
    int r = proto_session_send_msg(p->sess, m);
    if (r == 0)
        nvx__peer_flush(p);
    return r;
}

static void
handle_closed(uv_handle_t *h)
{
    nvx_node *n = h->data;
    if (++n->handles_closed == 2) {
        n->timer_closed = true;
        nvx__node_maybe_stopped(n);
    }
}

static void
listener_closed(tp_listener *l)
{
    nvx_node *n = tp_listener_data(l);
    n->listener = NULL;
    nvx__node_maybe_stopped(n);
}

void
nvx__node_maybe_stopped(nvx_node *n)
{
    if (!n->stopping || !n->stop_done)
        return;
    if (n->peers || n->jobs || n->listener || hooks_busy(n))
        return;
    if (!n->timer_closed) {
        if (!uv_is_closing((uv_handle_t *)&n->timer)) {
            n->timer.data = n->reap.data = n;
            uv_close((uv_handle_t *)&n->timer, handle_closed);
            uv_close((uv_handle_t *)&n->reap, handle_closed);
        }
        return;
    }
    void (*done)(void *) = n->stop_done;
    n->stop_done = NULL;
    done(n->stop_arg);
}

void
nvx_node_stop(nvx_node *n, void (*done)(void *arg), void *arg)
{
    if (n->stopping)
        return;
    n->stopping = true;
    n->stop_done = done;
    n->stop_arg = arg;
    if (n->listener)
        tp_listener_close(n->listener, listener_closed);
    hooks_run(n, HOOK_STOP);
    for (nvx_peer *p = n->peers, *next; p; p = next) {
        next = p->next;
        nvx__peer_close(p, PROTO_BYE_SHUTDOWN, "shutting down");
    }
    nvx__node_maybe_stopped(n);
}

void
nvx_node_free(nvx_node *n)
{
    if (!n)
        return;
    while (n->cfg_peers) {
        struct cfg_peer *cp = n->cfg_peers;
        n->cfg_peers = cp->next;
        free(cp);
    }
    hooks_run(n, HOOK_FREE);
    free(n);
}
