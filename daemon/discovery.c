/* SPDX-License-Identifier: MIT */
/*
 * LAN discovery by UDP multicast (daemon/discovery.h). The wire part is a
 * fixed 40-byte packet; the rest is the libuv plumbing and two filters that
 * keep a chatty or hostile LAN from turning into a dial storm: a packet
 * budget per second and a per-node report interval.
 */
#include "daemon/discovery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

static const uint8_t magic[4] = { 'N', 'V', 'X', 'D' };

typedef struct seen {
    uint8_t node[NVX_DISC_ID_LEN];
    char addr[NVX_DISC_ADDR_MAX];
    uint64_t reported_ms;
} seen;

struct nvx_disc {
    nvx_disc_opts o;
    bool detached;
    uv_udp_t udp;
    uv_timer_t timer;
    int open_handles;
    void (*done)(void *arg);
    void *done_arg;
    struct sockaddr_in group_addr;
    uint8_t rxbuf[512]; /* larger than a packet: longer datagrams are seen whole and refused */
    uint64_t rx_window_ms;
    unsigned rx_in_window;
    seen seen[NVX_DISC_SEEN_MAX];
    size_t n_seen;
    nvx_disc_stats st;
};

void
nvx_disc_encode(const nvx_disc_packet *p, uint8_t out[static NVX_DISC_PACKET_LEN])
{
    memcpy(out, magic, 4);
    out[4] = NVX_DISC_VERSION;
    out[5] = 0;
    out[6] = (uint8_t)(p->port >> 8);
    out[7] = (uint8_t)p->port;
    memcpy(out + 8, p->node_id, NVX_DISC_ID_LEN);
}

int
nvx_disc_decode(const uint8_t *buf, size_t len, nvx_disc_packet *ret)
{
    if (!buf || len != NVX_DISC_PACKET_LEN)
        return -EBADMSG;
    if (memcmp(buf, magic, 4) != 0 || buf[4] != NVX_DISC_VERSION || buf[5] != 0)
        return -EBADMSG;
    uint16_t port = (uint16_t)(buf[6] << 8 | buf[7]);
    if (port == 0)
        return -EBADMSG;
    uint8_t acc = 0;
    for (size_t i = 0; i < NVX_DISC_ID_LEN; i++)
        acc |= buf[8 + i];
    if (acc == 0)
        return -EBADMSG;
    memcpy(ret->node_id, buf + 8, NVX_DISC_ID_LEN);
    ret->port = port;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Receiving */

/* True while this second's packet budget lasts. */
static bool
rx_budget(nvx_disc *d, uint64_t now_ms)
{
    if (now_ms - d->rx_window_ms >= 1000 || now_ms < d->rx_window_ms) {
        d->rx_window_ms = now_ms;
        d->rx_in_window = 0;
    }
    if (d->rx_in_window >= NVX_DISC_RX_PER_S)
        return false;
    d->rx_in_window++;
    return true;
}

/* Whether to report node at addr now; remembers it. */
static bool
should_report(nvx_disc *d, const uint8_t node[NVX_DISC_ID_LEN], const char *addr, uint64_t now_ms)
{
    seen *s = NULL;
    for (size_t i = 0; i < d->n_seen; i++)
        if (memcmp(d->seen[i].node, node, NVX_DISC_ID_LEN) == 0)
            s = &d->seen[i];
    if (s && strcmp(s->addr, addr) == 0 && now_ms - s->reported_ms < NVX_DISC_REPORT_MS)
        return false;
    if (!s) {
        if (d->n_seen < NVX_DISC_SEEN_MAX) {
            s = &d->seen[d->n_seen++];
        } else {
            s = &d->seen[0]; /* the one reported longest ago */
            for (size_t i = 1; i < d->n_seen; i++)
                if (d->seen[i].reported_ms < s->reported_ms)
                    s = &d->seen[i];
        }
        memcpy(s->node, node, NVX_DISC_ID_LEN);
    }
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    s->reported_ms = now_ms;
    return true;
}

int
nvx_disc_feed(nvx_disc *d, const uint8_t *buf, size_t len, const struct sockaddr *from,
              uint64_t now_ms)
{
    d->st.received++;
    if (!rx_budget(d, now_ms)) {
        d->st.rate_dropped++;
        return 0;
    }
    nvx_disc_packet p;
    if (!from || from->sa_family != AF_INET || nvx_disc_decode(buf, len, &p) < 0 ||
        memcmp(p.node_id, d->o.node_id, NVX_DISC_ID_LEN) == 0) {
        d->st.ignored++;
        return 0;
    }
    const struct sockaddr_in *sin = (const struct sockaddr_in *)from;
    char ip[16];
    if (uv_ip4_name(sin, ip, sizeof(ip)) != 0) {
        d->st.ignored++;
        return 0;
    }
    char addr[NVX_DISC_ADDR_MAX];
    snprintf(addr, sizeof(addr), "%s:%u", ip, (unsigned)p.port);
    if (!should_report(d, p.node_id, addr, now_ms))
        return 0;
    d->st.reported++;
    if (d->o.cb)
        d->o.cb(d->o.arg, p.node_id, addr);
    return 1;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    nvx_disc *d = h->data;
    *buf = uv_buf_init((char *)d->rxbuf, sizeof(d->rxbuf));
}

static void
on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
        unsigned flags)
{
    nvx_disc *d = h->data;
    if (nread <= 0 || !from)
        return; /* nothing more to read, or an error: UDP goes on */
    if (flags & UV_UDP_PARTIAL) {
        d->st.received++;
        d->st.ignored++;
        return;
    }
    (void)nvx_disc_feed(d, (const uint8_t *)buf->base, (size_t)nread, from, uv_now(h->loop));
}

/* ---------------------------------------------------------------------- */
/* Sending */

int
nvx_disc_announce(nvx_disc *d)
{
    if (d->detached || d->o.listen_port == 0)
        return 0;
    nvx_disc_packet p;
    memcpy(p.node_id, d->o.node_id, NVX_DISC_ID_LEN);
    p.port = d->o.listen_port;
    uint8_t pkt[NVX_DISC_PACKET_LEN];
    nvx_disc_encode(&p, pkt);
    uv_buf_t b = uv_buf_init((char *)pkt, sizeof(pkt));
    int r = uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)&d->group_addr);
    if (r < 0) {
        d->st.send_errors++;
        return r;
    }
    d->st.sent++;
    return 0;
}

static void
on_timer(uv_timer_t *t)
{
    (void)nvx_disc_announce(t->data);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

static int
opts_init(nvx_disc *d, const nvx_disc_opts *opts)
{
    d->o = *opts;
    if (!d->o.group)
        d->o.group = NVX_DISC_GROUP;
    if (!d->o.port)
        d->o.port = NVX_DISC_PORT;
    if (!d->o.interval_ms)
        d->o.interval_ms = NVX_DISC_INTERVAL_MS;
    if (uv_ip4_addr(d->o.group, d->o.port, &d->group_addr) != 0)
        return -EINVAL;
    /* 224.0.0.0/4 only. */
    uint32_t a = ntohl(d->group_addr.sin_addr.s_addr);
    if ((a >> 28) != 0xe)
        return -EINVAL;
    if (d->o.interface) {
        struct sockaddr_in tmp;
        if (uv_ip4_addr(d->o.interface, 0, &tmp) != 0)
            return -EINVAL;
    }
    return 0;
}

int
nvx_disc_new_detached(const nvx_disc_opts *opts, nvx_disc **ret)
{
    if (!opts || !ret)
        return -EINVAL;
    nvx_disc *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    int r = opts_init(d, opts);
    if (r < 0) {
        free(d);
        return r;
    }
    d->detached = true;
    *ret = d;
    return 0;
}

void
nvx_disc_free_detached(nvx_disc *d)
{
    free(d);
}

static void
on_close(uv_handle_t *h)
{
    nvx_disc *d = h->data;
    if (--d->open_handles > 0)
        return;
    void (*done)(void *) = d->done;
    void *arg = d->done_arg;
    free(d);
    if (done)
        done(arg);
}

static void
close_all(nvx_disc *d)
{
    uv_close((uv_handle_t *)&d->udp, on_close);
    uv_close((uv_handle_t *)&d->timer, on_close);
}

static int
socket_setup(nvx_disc *d)
{
    struct sockaddr_in any;
    int r = uv_ip4_addr("0.0.0.0", d->o.port, &any);
    if (r == 0)
        r = uv_udp_bind(&d->udp, (const struct sockaddr *)&any, UV_UDP_REUSEADDR);
    if (r == 0)
        r = uv_udp_set_membership(&d->udp, d->o.group, d->o.interface, UV_JOIN_GROUP);
    if (r == 0 && d->o.interface)
        r = uv_udp_set_multicast_interface(&d->udp, d->o.interface);
    if (r == 0)
        r = uv_udp_set_multicast_ttl(&d->udp, 1);
    if (r == 0)
        r = uv_udp_set_multicast_loop(&d->udp, d->o.no_loop ? 0 : 1);
    if (r == 0)
        r = uv_udp_recv_start(&d->udp, on_alloc, on_recv);
    if (r == 0)
        r = uv_timer_start(&d->timer, on_timer, 0, d->o.interval_ms);
    return r;
}

int
nvx_disc_start(const nvx_disc_opts *opts, nvx_disc **ret)
{
    if (!opts || !ret || !opts->loop)
        return -EINVAL;
    nvx_disc *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    int r = opts_init(d, opts);
    if (r < 0) {
        free(d);
        return r;
    }
    r = uv_udp_init_ex(opts->loop, &d->udp, AF_INET);
    if (r < 0) {
        free(d);
        return r;
    }
    d->udp.data = d;
    d->open_handles = 1;
    r = uv_timer_init(opts->loop, &d->timer);
    if (r < 0) {
        uv_close((uv_handle_t *)&d->udp, on_close); /* frees d */
        return r;
    }
    d->timer.data = d;
    d->open_handles = 2;
    r = socket_setup(d);
    if (r < 0) {
        close_all(d); /* frees d from the close callbacks, done is NULL */
        return r;
    }
    *ret = d;
    return 0;
}

void
nvx_disc_stop(nvx_disc *d, void (*done)(void *arg), void *arg)
{
    if (!d) {
        if (done)
            done(arg);
        return;
    }
    d->done = done;
    d->done_arg = arg;
    uv_udp_recv_stop(&d->udp);
    uv_timer_stop(&d->timer);
    close_all(d);
}

void
nvx_disc_stats_get(const nvx_disc *d, nvx_disc_stats *ret)
{
    *ret = d->st;
}
