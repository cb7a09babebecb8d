/* SPDX-License-Identifier: MIT */
/*
 * The router port mapping (daemon/natmap.h). The pool side (job_*) owns
 * the discovered router (UPnP URLs, the NAT-PMP gateway); only one job
 * runs at a time, so the loop never touches them while a job does.
 */
#include "daemon/natmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include <sodium.h>
#include <uv.h>

#include "daemon/log.h"

enum job_kind {
    JOB_MAP,   /* discover when needed, add or renew the mapping */
    JOB_UNMAP, /* delete it (close) */
};

struct nvx_natmap {
    nvx_natmap_opts o;
    uv_timer_t timer;
    uv_work_t work;
    bool job_running, closing, timer_closed;
    enum job_kind kind;
    uint32_t retry_s;
    /* Loop side: the mapping as the last job left it. */
    nvx_natmap_how how;
    char ext[NVX_NATMAP_ADDR_MAX];
    /* Pool side (one job at a time). */
    bool have_igd;
    struct UPNPUrls urls;
    struct IGDdatas igd;
    char lan[64];
    uint16_t ext_port; /* mapped external port, 0 when none */
    nvx_natmap_how job_how;
    char job_ext[NVX_NATMAP_ADDR_MAX];
    uint32_t granted_s; /* lease the router granted (0: permanent) */
    int job_r;
    void (*done)(void *arg);
    void *done_arg;
};

const char *
nvx_natmap_how_name(nvx_natmap_how how)
{
    switch (how) {
    case NVX_NATMAP_UPNP:
        return "upnp";
    case NVX_NATMAP_NATPMP:
        return "nat-pmp";
    default:
        return "none";
    }
}

/* ---------------------------------------------------------------------- */
/* Pool side */

static void
forget_igd(nvx_natmap *m)
{
    if (m->have_igd)
        FreeUPNPUrls(&m->urls);
    m->have_igd = false;
}

/* SSDP discovery of an Internet Gateway Device; fills urls, igd, lan. */
static int
upnp_discover(nvx_natmap *m)
{
    if (m->have_igd)
        return 0;
    int err = 0;
    struct UPNPDev *devs =
        upnpDiscover(NVX_NATMAP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
    if (!devs)
        return -EHOSTUNREACH;
    int r = UPNP_GetValidIGD(devs, &m->urls, &m->igd, m->lan, sizeof(m->lan));
    freeUPNPDevlist(devs);
    if (r == 0)
        return -EHOSTUNREACH;
    if (r != 1) { /* a device that is no connected IGD: its URLs were filled */
        FreeUPNPUrls(&m->urls);
        return -EHOSTUNREACH;
    }
    m->have_igd = true;
    return 0;
}

static int
upnp_add(nvx_natmap *m, uint16_t ext_port, uint32_t lease)
{
    char ext[8], in[8], lease_s[16];
    snprintf(ext, sizeof(ext), "%u", (unsigned)ext_port);
    snprintf(in, sizeof(in), "%u", (unsigned)m->o.port);
    snprintf(lease_s, sizeof(lease_s), "%u", (unsigned)lease);
    return UPNP_AddPortMapping(m->urls.controlURL, m->igd.first.servicetype, ext, in, m->lan, "nvx",
                               "TCP", NULL, lease_s);
}

static int
upnp_map(nvx_natmap *m)
{
    int r = upnp_discover(m);
    if (r < 0)
        return r;
    char ip[40] = "";
    if (UPNP_GetExternalIPAddress(m->urls.controlURL, m->igd.first.servicetype, ip) !=
            UPNPCOMMAND_SUCCESS ||
        !ip[0]) {
        forget_igd(m); /* the router may have changed: discover again next time */
        return -EHOSTUNREACH;
    }
    uint32_t lease = m->o.lease_s;
    /* Our own external port first (a renewal keeps what we had); another
     * host's mapping may hold it, then a few random ones. */
    uint16_t port = m->ext_port ? m->ext_port : m->o.port;
    for (int i = 0; i < NVX_NATMAP_PORT_TRIES; i++) {
        int u = upnp_add(m, port, lease);
        if (u == 725) { /* OnlyPermanentLeasesSupported (IGDv1 routers) */
            lease = 0;
            u = upnp_add(m, port, lease);
        }
        if (u == UPNPCOMMAND_SUCCESS) {
            m->ext_port = port;
            m->granted_s = lease;
            m->job_how = NVX_NATMAP_UPNP;
            snprintf(m->job_ext, sizeof(m->job_ext), "%s:%u", ip, (unsigned)port);
            return 0;
        }
        if (u != 718) { /* anything but ConflictInMappingEntry: give up this round */
            log_debug("UPnP: AddPortMapping %u failed: %s", (unsigned)port, strupnperror(u));
            forget_igd(m);
            return -EHOSTUNREACH;
        }
        port = (uint16_t)(1024 + randombytes_uniform(65535 - 1024));
    }
    return -EADDRINUSE;
}

/* Waits for a NAT-PMP answer for at most NVX_NATMAP_NATPMP_MS: libnatpmp's
 * RFC 6886 schedule retries for over a minute, far too long for a router
 * that does not speak it. */
static int
natpmp_wait(natpmp_t *np, natpmpresp_t *resp)
{
    uint64_t deadline = uv_hrtime() / 1000000 + NVX_NATMAP_NATPMP_MS;
    for (;;) {
        uint64_t now = uv_hrtime() / 1000000;
        if (now >= deadline)
            return -ETIMEDOUT;
        struct timeval tv;
        if (getnatpmprequesttimeout(np, &tv) < 0)
            return -EIO;
        uint64_t left = deadline - now;
        if ((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 > left) {
            tv.tv_sec = (time_t)(left / 1000);
            tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
        }
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(np->s, &fds);
        (void)select(np->s + 1, &fds, NULL, NULL, &tv);
        int r = readnatpmpresponseorretry(np, resp);
        if (r == 0)
            return 0;
        if (r != NATPMP_TRYAGAIN)
            return -EHOSTUNREACH;
    }
}

/* One NAT-PMP request: the public address, or a mapping (lease 0 deletes). */
static int
natpmp_call(nvx_natmap *m, bool map, uint16_t ext_port, uint32_t lease, natpmpresp_t *resp)
{
    natpmp_t np;
    if (initnatpmp(&np, 0, 0) < 0)
        return -EHOSTUNREACH;
    int r = map ? sendnewportmappingrequest(&np, NATPMP_PROTOCOL_TCP, m->o.port, ext_port, lease)
                : sendpublicaddressrequest(&np);
    r = r < 0 ? -EHOSTUNREACH : natpmp_wait(&np, resp);
    closenatpmp(&np);
    return r;
}

static int
natpmp_map(nvx_natmap *m)
{
    natpmpresp_t pub, map;
    int r = natpmp_call(m, false, 0, 0, &pub);
    if (r < 0)
        return r;
    uint16_t want = m->ext_port ? m->ext_port : m->o.port;
    r = natpmp_call(m, true, want, m->o.lease_s, &map);
    if (r < 0)
        return r;
    char ip[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, &pub.pnu.publicaddress.addr, ip, sizeof(ip)) ||
        map.pnu.newportmapping.mappedpublicport == 0)
        return -EHOSTUNREACH;
    /* The gateway may grant another port and a shorter lease. */
    m->ext_port = map.pnu.newportmapping.mappedpublicport;
    m->granted_s = map.pnu.newportmapping.lifetime;
    m->job_how = NVX_NATMAP_NATPMP;
    snprintf(m->job_ext, sizeof(m->job_ext), "%s:%u", ip, (unsigned)m->ext_port);
    return 0;
}

static void
job_work(uv_work_t *w)
{
    nvx_natmap *m = w->data;
    if (m->kind == JOB_UNMAP) {
        if (m->job_how == NVX_NATMAP_UPNP && m->have_igd) {
            char ext[8];
            snprintf(ext, sizeof(ext), "%u", (unsigned)m->ext_port);
            (void)UPNP_DeletePortMapping(m->urls.controlURL, m->igd.first.servicetype, ext, "TCP",
                                         NULL);
        } else if (m->job_how == NVX_NATMAP_NATPMP) {
            natpmpresp_t resp;
            (void)natpmp_call(m, true, 0, 0, &resp); /* lifetime 0: delete (RFC 6886 3.4) */
        }
        forget_igd(m);
        m->job_r = 0;
        return;
    }
    /* Renew the way we mapped; when that fails, try everything again. */
    int r = -EHOSTUNREACH;
    if (m->job_how != NVX_NATMAP_NATPMP)
        r = upnp_map(m);
    if (r < 0)
        r = natpmp_map(m);
    if (r < 0 && m->job_how == NVX_NATMAP_NATPMP)
        r = upnp_map(m);
    if (r < 0) {
        m->job_how = NVX_NATMAP_NONE;
        m->job_ext[0] = '\0';
        m->ext_port = 0;
    }
    m->job_r = r;
}

/* ---------------------------------------------------------------------- */
/* Loop side */

static void start_job(nvx_natmap *m, enum job_kind kind);

static void
maybe_done(nvx_natmap *m)
{
    if (!m->closing || m->job_running || !m->timer_closed)
        return;
    void (*done)(void *) = m->done;
    void *arg = m->done_arg;
    forget_igd(m);
    free(m);
    if (done)
        done(arg);
}

static void
on_timer(uv_timer_t *t)
{
    start_job(t->data, JOB_MAP);
}

static void
job_after(uv_work_t *w, int status)
{
    nvx_natmap *m = w->data;
    m->job_running = false;
    if (m->kind == JOB_UNMAP || m->closing) {
        if (m->closing && m->kind == JOB_MAP && m->job_how != NVX_NATMAP_NONE)
            start_job(m, JOB_UNMAP); /* a mapping made while we were closing */
        maybe_done(m);               /* waits for that job, if it was queued */
        return;
    }
    int r = status < 0 ? status : m->job_r;
    bool changed = m->how != m->job_how || strcmp(m->ext, m->job_ext) != 0;
    m->how = m->job_how;
    snprintf(m->ext, sizeof(m->ext), "%s", m->job_ext);
    uint64_t next_s;
    if (r < 0) {
        if (changed || m->retry_s == 0)
            log_info("no port mapping on the router (UPnP-IGD, NAT-PMP): %s; peers outside "
                     "reach this node only by connection reversal",
                     strerror(-r));
        next_s = m->retry_s ? m->retry_s : NVX_NATMAP_RETRY_MIN_S;
        m->retry_s =
            next_s * 2 > NVX_NATMAP_RETRY_MAX_S ? NVX_NATMAP_RETRY_MAX_S : (uint32_t)next_s * 2;
    } else {
        m->retry_s = 0;
        uint32_t g = m->granted_s ? m->granted_s : m->o.lease_s;
        next_s = g / 2 > NVX_NATMAP_RENEW_MIN_S ? g / 2 : NVX_NATMAP_RENEW_MIN_S;
        if (changed)
            log_info("port %u mapped by %s: reachable at %s (lease %u s)", (unsigned)m->o.port,
                     nvx_natmap_how_name(m->how), m->ext, (unsigned)m->granted_s);
    }
    if (changed && m->o.changed)
        m->o.changed(m->o.arg, m->ext, m->how);
    (void)uv_timer_start(&m->timer, on_timer, next_s * 1000, 0);
}

static void
start_job(nvx_natmap *m, enum job_kind kind)
{
    if (m->job_running)
        return;
    m->kind = kind;
    m->work.data = m;
    if (uv_queue_work(m->o.loop, &m->work, job_work, job_after) == 0)
        m->job_running = true;
}

int
nvx_natmap_new(const nvx_natmap_opts *opts, nvx_natmap **ret)
{
    if (!opts || !opts->loop || opts->port == 0 || !ret)
        return -EINVAL;
    nvx_natmap *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->o = *opts;
    if (!m->o.lease_s)
        m->o.lease_s = NVX_NATMAP_LEASE_S;
    int r = uv_timer_init(opts->loop, &m->timer);
    if (r < 0) {
        free(m);
        return r;
    }
    m->timer.data = m;
    start_job(m, JOB_MAP);
    *ret = m;
    return 0;
}

static void
on_timer_closed(uv_handle_t *h)
{
    nvx_natmap *m = h->data;
    m->timer_closed = true;
    maybe_done(m);
}

void
nvx_natmap_close(nvx_natmap *m, void (*done)(void *arg), void *arg)
{
    if (!m) {
        if (done)
            done(arg);
        return;
    }
    m->closing = true;
    m->done = done;
    m->done_arg = arg;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
    /* A running job finishes first (job_after unmaps what it made). */
    if (!m->job_running && m->job_how != NVX_NATMAP_NONE)
        start_job(m, JOB_UNMAP);
}

nvx_natmap_how
nvx_natmap_state(const nvx_natmap *m, char *ext, size_t cap)
{
    if (ext && cap)
        snprintf(ext, cap, "%s", m ? m->ext : "");
    return m ? m->how : NVX_NATMAP_NONE;
}
