/* SPDX-License-Identifier: MIT */
/*
 * Connection reversal on the wire (daemon/reverse.h has the decisions,
 * proto/PROTOCOL.md the messages): the relay's forwarding of REVERSE_REQ
 * (target named by node id, from gossip) and REVERSE_AT (target named by
 * address, from the DHT), the target's dial back, and the fetcher's asks.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "daemon/log.h"
#include "daemon/mesh-internal.h"
#include "daemon/pex.h"
#include "transport/tcp.h"

bool
nvx__mesh_hello_addr(nvx_peer *p, size_t i, bool same_host, char *out, size_t cap)
{
    const proto_hello *h = nvx_peer_hello(p);
    if (!h || i >= h->n_addrs || h->addrs[i].len >= TP_TCP_HOST_MAX)
        return false;
    char hello[TP_TCP_HOST_MAX];
    memcpy(hello, h->addrs[i].p, h->addrs[i].len);
    hello[h->addrs[i].len] = '\0';
    struct sockaddr_storage ls, rs;
    const char *remote = nvx_peer_addr(p);
    bool have_remote = remote && tp_tcp_addr_parse(remote, 0, &rs) == 0;
    if (tp_tcp_addr_parse(hello, 0, &ls) < 0)
        return false;
    static const uint8_t zero[16];
    uint16_t port;
    bool unspec, same = false;
    if (ls.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ls;
        unspec = a->sin_addr.s_addr == 0;
        port = a->sin_port;
        same = have_remote && rs.ss_family == AF_INET &&
               ((const struct sockaddr_in *)&rs)->sin_addr.s_addr == a->sin_addr.s_addr;
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ls;
        unspec = memcmp(&a->sin6_addr, zero, 16) == 0;
        port = a->sin6_port;
        same = have_remote && rs.ss_family == AF_INET6 &&
               memcmp(&((const struct sockaddr_in6 *)&rs)->sin6_addr, &a->sin6_addr, 16) == 0;
    }
    if (unspec) {
        if (!have_remote)
            return false;
        if (rs.ss_family == AF_INET)
            ((struct sockaddr_in *)&rs)->sin_port = port;
        else
            ((struct sockaddr_in6 *)&rs)->sin6_port = port;
        ls = rs;
    } else if (same_host && !same) {
        return false;
    }
    char ip[64];
    if (ls.ss_family == AF_INET) {
        if (uv_ip4_name((struct sockaddr_in *)&ls, ip, sizeof(ip)) != 0)
            return false;
        snprintf(out, cap, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ls)->sin_port));
    } else {
        if (uv_ip6_name((struct sockaddr_in6 *)&ls, ip, sizeof(ip)) != 0)
            return false;
        snprintf(out, cap, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ls)->sin6_port));
    }
    return true;
}

/* Same host (IPv4 or IPv6 address, ports ignored). */
static bool
same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static uint16_t
port_of(const struct sockaddr_storage *a)
{
    return ntohs(a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                         : ((const struct sockaddr_in6 *)a)->sin6_port);
}

struct at_find {
    const char *addr;
    struct sockaddr_storage want;
    const nvx_peer * not ;
    nvx_peer *found;
};

/* Is p the node at f->addr? Either we dialed that address, or the session
 * comes from its host and p's HELLO lists a listening address with its
 * port (a node behind a NAT dials out from another port; a DHT announce
 * carries the listening one). */
static void
match_at(void *arg, nvx_peer *p)
{
    struct at_find *f = arg;
    const char *remote = nvx_peer_addr(p);
    struct sockaddr_storage rs, hs;
    if (f->found || p == f->not || !remote)
        return;
    if (strcmp(remote, f->addr) == 0) {
        f->found = p;
        return;
    }
    const proto_hello *h = nvx_peer_hello(p);
    if (!h || tp_tcp_addr_parse(remote, 0, &rs) < 0 || !same_host(&rs, &f->want))
        return;
    for (size_t i = 0; i < h->n_addrs; i++) {
        char a[TP_TCP_HOST_MAX];
        if (h->addrs[i].len >= sizeof(a))
            continue;
        memcpy(a, h->addrs[i].p, h->addrs[i].len);
        a[h->addrs[i].len] = '\0';
        if (tp_tcp_addr_parse(a, 0, &hs) == 0 && port_of(&hs) == port_of(&f->want)) {
            f->found = p;
            return;
        }
    }
}

/* The established session with the node at addr (not `not`), or NULL. */
static nvx_peer *
session_at(nvx_mesh *m, const char *addr, const nvx_peer * not )
{
    struct at_find f = { .addr = addr, .not = not };
    if (tp_tcp_addr_parse(addr, 0, &f.want) < 0)
        return NULL;
    nvx_node_sessions_each(m->o.node, match_at, &f);
    return f.found;
}

bool
nvx_mesh_connected_at(nvx_mesh *m, const char *addr)
{
    return session_at(m, addr, NULL) != NULL;
}

/* Relay: p asks us to have the node of session t connect to it. */
static void
forward(nvx_peer *p, nvx_peer *t)
{
    const uint8_t *from = nvx_peer_id(p);
    char sid[17], addr[PROTO_ADDR_MAX + 1];
    /* F's address as its signed HELLO gives it, on the host its session
     * comes from: nobody can make T dial a third party's host. */
    bool found = false;
    const proto_hello *h = nvx_peer_hello(p);
    for (size_t i = 0; h && i < h->n_addrs && !found; i++)
        found = nvx__mesh_hello_addr(p, i, true, addr, sizeof(addr));
    if (!found) {
        log_peer(NVX_LOG_DEBUG, "reversal: %s has no address on its own host",
                 nvx_short_id(from, sid));
        return;
    }
    proto_msg out = { .type = PROTO_MSG_REVERSE };
    memcpy(out.u.reverse.node_id, from, 32);
    out.u.reverse.addr = (proto_str){ (const uint8_t *)addr, strlen(addr) };
    if (nvx_peer_send(t, &out) == 0)
        log_peer(NVX_LOG_DEBUG, "reversal: asked %s at %s to dial %s at %s",
                 nvx_short_id(nvx_peer_id(t), sid), nvx_peer_addr(t), nvx_peer_addr(p), addr);
}

/* Relay: REVERSE_REQ (target by node id) or REVERSE_AT (by address). */
static void
on_reverse_req(nvx_mesh *m, nvx_peer *p, const proto_msg *msg)
{
    if (m->o.no_relay)
        return; /* our HELLO did not offer it */
    if (!nvx_peer_id(p) || !nvx_reverse_relay_ok(m->rev, (uint64_t)(uintptr_t)p, mono_ms(m))) {
        log_peer(NVX_LOG_DEBUG, "reversal: %s over its rate, dropped",
                 proto_msg_type_name(msg->type));
        return;
    }
    nvx_peer *t;
    if (msg->type == PROTO_MSG_REVERSE_REQ) {
        t = nvx_node_peer_by_id(m->o.node, msg->u.reverse.node_id);
    } else {
        char at[PROTO_ADDR_MAX + 1];
        memcpy(at, msg->u.reverse.addr.p, msg->u.reverse.addr.len);
        at[msg->u.reverse.addr.len] = '\0';
        t = session_at(m, at, p);
    }
    /* Only to a node we have a session with, only one (no amplification),
     * and not back to the asker. */
    if (t && t != p)
        forward(p, t);
}

/* Target: a relay asks us to dial the node that wants us. */
static void
on_reverse(nvx_mesh *m, nvx_peer *p, const proto_reverse *rv)
{
    const uint8_t *relay = nvx_peer_id(p);
    char addr[PROTO_ADDR_MAX + 1], sid[17];
    memcpy(addr, rv->addr.p, rv->addr.len);
    addr[rv->addr.len] = '\0';
    const char *a = strncmp(addr, "tcp://", 6) == 0 ? addr + 6 : addr;
    if (!relay || m->closing || memcmp(rv->node_id, nvx_node_id(m->o.node), 32) == 0 ||
        nvx_gossip_connected(m->g, rv->node_id) ||
        !nvx_pex_addr_numeric((const uint8_t *)a, strlen(a)))
        return;
    if (!nvx_reverse_dial_ok(m->rev, relay, rv->node_id, a, mono_ms(m))) {
        log_peer(NVX_LOG_DEBUG, "reversal: REVERSE over its relay's rate or banned, dropped");
        return;
    }
    log_peer(NVX_LOG_INFO, "reversal: %s asks us to connect to %s", nvx_short_id(rv->node_id, sid),
             a);
    int r = nvx_node_dial_id(m->o.node, a, rv->node_id, false);
    if (r < 0)
        log_debug("reversal: cannot dial %s: %s", a, strerror(-r));
}

void
nvx__mesh_on_reverse(nvx_mesh *m, nvx_peer *p, const proto_msg *msg)
{
    if (msg->type == PROTO_MSG_REVERSE)
        on_reverse(m, p, &msg->u.reverse);
    else
        on_reverse_req(m, p, msg);
}

struct relay_ask {
    const proto_msg *msg;
    const char *const *prefer;
    size_t n_prefer;
    bool preferred; /* this pass: only the preferred relays */
    nvx_peer *asked[NVX_REVERSE_RELAYS_MAX];
    unsigned sent;
};

static void
ask_relay(void *arg, nvx_peer *p)
{
    struct relay_ask *a = arg;
    const proto_hello *h = nvx_peer_hello(p);
    if (a->sent >= NVX_REVERSE_RELAYS_MAX || !h || !(h->features & PROTO_FEAT_REVERSE) ||
        (a->msg->type == PROTO_MSG_REVERSE_REQ &&
         memcmp(nvx_peer_id(p), a->msg->u.reverse.node_id, 32) == 0))
        return;
    for (unsigned i = 0; i < a->sent; i++)
        if (a->asked[i] == p)
            return;
    bool pref = false;
    for (size_t i = 0; i < a->n_prefer && !pref; i++)
        pref = strcmp(nvx_peer_addr(p), a->prefer[i]) == 0;
    if (a->preferred && !pref)
        return;
    if (nvx_peer_send(p, a->msg) == 0)
        a->asked[a->sent++] = p;
}

unsigned
nvx__mesh_ask_relays(nvx_mesh *m, const proto_msg *rq, const char *const *prefer, size_t n_prefer)
{
    struct relay_ask a = { .msg = rq, .prefer = prefer, .n_prefer = n_prefer, .preferred = true };
    if (n_prefer)
        nvx_node_sessions_each(m->o.node, ask_relay, &a);
    a.preferred = false;
    nvx_node_sessions_each(m->o.node, ask_relay, &a);
    return a.sent;
}

int
nvx_mesh_ask_at(nvx_mesh *m, const char *target, const char *const *prefer, size_t n_prefer)
{
    size_t len = strlen(target);
    if (len == 0 || len > PROTO_ADDR_MAX || !nvx_pex_addr_numeric((const uint8_t *)target, len))
        return -EINVAL;
    if (session_at(m, target, NULL))
        return -EISCONN;
    /* The retry limit is kept per target; an address names it here. */
    uint8_t key[32];
    crypto_generichash(key, sizeof(key), (const uint8_t *)target, len, NULL, 0);
    if (!nvx_reverse_want(m->rev, key, mono_ms(m)))
        return 0;
    proto_msg rq = { .type = PROTO_MSG_REVERSE_AT };
    rq.u.reverse.addr = (proto_str){ (const uint8_t *)target, len };
    unsigned sent = nvx__mesh_ask_relays(m, &rq, prefer, n_prefer);
    if (sent)
        log_debug("reversal: asked %u relays for the node at %s", sent, target);
    return (int)sent;
}

static void
count_relay(void *arg, nvx_peer *p)
{
    const proto_hello *h = nvx_peer_hello(p);
    if (nvx_peer_outbound(p) && h && (h->features & PROTO_FEAT_REVERSE))
        (*(unsigned *)arg)++;
}

unsigned
nvx_mesh_relays(nvx_mesh *m)
{
    unsigned n = 0;
    nvx_node_sessions_each(m->o.node, count_relay, &n);
    return n;
}

nvx_reverse *
nvx_mesh_reverse(nvx_mesh *m)
{
    return m->rev;
}
