/* SPDX-License-Identifier: MIT */
/*
 * Gossip and discovery wired into the node (daemon/mesh.h). Everything that
 * touches the store runs on the libuv pool as one small job; the rest runs
 * on the loop. Jobs copy what they need, so the loop side never waits.
 */
#include "daemon/mesh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "daemon/discovery.h"
#include "daemon/log.h"
#include "daemon/mesh-internal.h"
#include "daemon/reverse.h"
#include "libcas/namerec.h"
#include "transport/tcp.h"

enum job_kind {
    JOB_SCAN,
    JOB_STORE_NAME,
    JOB_PUBLISH
};

typedef struct job {
    uv_work_t w; /* first: the work callbacks cast back */
    nvx_mesh *m;
    enum job_kind kind;
    int r;
    /* JOB_SCAN: complete model ids (sorted), and at the first scan the
     * stored name records. */
    uint8_t (*ids)[32];
    size_t n_ids, cap_ids;
    cas_namerec *recs;
    size_t n_recs, cap_recs;
    bool load_names;
    nvx_serve_policy serve; /* the node's: which models to announce */
    /* JOB_STORE_NAME */
    cas_namerec rec;
    bool trusted_only; /* the store holds NVX_MESH_NAMES_MAX records already */
    /* JOB_PUBLISH */
    uint8_t model[32];
    char name[CAS_NAMEREC_NAME_MAX + 1];
    void (*cb)(void *arg, int r);
    void *arg;
} job;

static void maybe_free(nvx_mesh *m);

/* Gossip runs on the wall clock: provider records carry signed Unix times. */
static uint64_t
wall_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void on_timer_closed(uv_handle_t *h);

/* ---------------------------------------------------------------------- */
/* Store jobs (pool side) */

static int
collect_model(void *userdata, const cas_model_info *info)
{
    job *j = userdata;
    if (info->state != CAS_MODEL_COMPLETE || !nvx_share_allowed(j->serve, info, false))
        return 0;
    if (j->n_ids == j->cap_ids) {
        size_t cap = j->cap_ids ? 2 * j->cap_ids : 16;
        void *p = realloc(j->ids, cap * sizeof(*j->ids));
        if (!p)
            return -ENOMEM;
        j->ids = p;
        j->cap_ids = cap;
    }
    memcpy(j->ids[j->n_ids++], info->id, 32);
    return 0;
}

static int
collect_rec(void *userdata, const cas_namerec *rec)
{
    job *j = userdata;
    if (j->kind == JOB_PUBLISH &&
        (strcmp(rec->name, j->name) != 0 || memcmp(rec->model_id, j->model, 32) != 0))
        return 0;
    if (j->n_recs == j->cap_recs) {
        size_t cap = j->cap_recs ? 2 * j->cap_recs : 8;
        void *p = realloc(j->recs, cap * sizeof(*j->recs));
        if (!p)
            return -ENOMEM;
        j->recs = p;
        j->cap_recs = cap;
    }
    j->recs[j->n_recs++] = *rec;
    return 0;
}

static void
work(uv_work_t *w)
{
    job *j = (job *)w;
    cas_store *s = j->m->o.store;
    switch (j->kind) {
    case JOB_SCAN:
        j->r = cas_store_list(s, collect_model, j); /* id order: sorted */
        if (j->r >= 0 && j->load_names)
            j->r = cas_namerec_store_list(s, collect_rec, j);
        break;
    case JOB_STORE_NAME:
        /* Anyone can make keys, so records from keys nobody here trusts
         * are kept only up to a bound; trusted ones always. */
        if (j->trusted_only && !cas_namerec_trusted(s, &j->rec, NULL, 0))
            j->r = 0;
        else
            j->r = cas_namerec_store_put(s, &j->rec);
        break;
    case JOB_PUBLISH:
        j->r = cas_namerec_store_list(s, collect_rec, j);
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* Store jobs (loop side) */

static int
id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Provides what the scan found and stops providing what is gone. */
static void
apply_scan(nvx_mesh *m, job *j)
{
    uint64_t now = wall_ms();
    for (size_t i = 0; i < m->n_provided; i++)
        if (!bsearch(m->provided[i], j->ids, j->n_ids, 32, id_cmp)) {
            (void)nvx_gossip_unprovide(m->g, m->provided[i]);
            if (m->o.dht)
                nvx_dhtuv_unprovide(m->o.dht, m->provided[i]);
        }
    for (size_t i = 0; i < j->n_ids; i++)
        if (!m->provided || !bsearch(j->ids[i], m->provided, m->n_provided, 32, id_cmp)) {
            int r = nvx_gossip_provide(m->g, j->ids[i], now);
            if (r < 0)
                log_warn_errno(r, "cannot announce a model");
            /* Only what the serve policy shares reaches the DHT: an
             * announce there cannot be taken back. */
            if (m->o.dht && (r = nvx_dhtuv_provide(m->o.dht, j->ids[i])) < 0 && r != -EADDRNOTAVAIL)
                log_warn_errno(r, "cannot announce a model on the DHT");
        }
    free(m->provided);
    m->provided = j->ids;
    m->n_provided = j->n_ids;
    j->ids = NULL;
    if (j->load_names) {
        m->n_names = j->n_recs;
        for (size_t i = 0; i < j->n_recs; i++)
            (void)nvx_gossip_publish(m->g, &j->recs[i], false, now);
    }
}

static void
after_work(uv_work_t *w, int status)
{
    job *j = (job *)w;
    nvx_mesh *m = j->m;
    m->jobs--;
    int r = status < 0 ? status : j->r;
    switch (j->kind) {
    case JOB_SCAN:
        m->scanning = false;
        if (r < 0)
            log_warn_errno(r, "cannot list the store for provider records");
        else if (!m->closing)
            apply_scan(m, j);
        break;
    case JOB_STORE_NAME:
        if (r < 0)
            log_debug("cannot store a name record: %s", strerror(-r));
        else if (r == 1)
            m->n_names++;
        break;
    case JOB_PUBLISH: {
        int n = 0;
        if (r >= 0 && !m->closing) {
            for (size_t i = 0; i < j->n_recs; i++)
                if (nvx_gossip_publish(m->g, &j->recs[i], true, wall_ms()) >= 0)
                    n++;
        }
        if (r >= 0)
            r = m->closing ? -ECANCELED : n > 0 ? n : -ENOENT;
        j->cb(j->arg, r);
        break;
    }
    }
    free(j->ids);
    free(j->recs);
    free(j);
    maybe_free(m);
}

static int
queue_job(nvx_mesh *m, job *j)
{
    if (m->closing || m->jobs >= NVX_MESH_JOBS_MAX)
        return -EBUSY;
    j->m = m;
    int r = uv_queue_work(m->o.loop, &j->w, work, after_work);
    if (r < 0)
        return r;
    m->jobs++;
    return 0;
}

static void
scan(nvx_mesh *m)
{
    if (m->scanning)
        return;
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->kind = JOB_SCAN;
    j->load_names = true; /* renews them in gossip (nvx_gossip_publish) */
    j->serve = nvx_node_serve_policy(m->o.node);
    if (queue_job(m, j) < 0) {
        free(j);
        return;
    }
    m->scanning = true;
}

/* ---------------------------------------------------------------------- */
/* Gossip callbacks */

static int
g_send(void *userdata, uint64_t peer, const proto_msg *msg)
{
    (void)userdata;
    return nvx_peer_send((nvx_peer *)(uintptr_t)peer, msg);
}

static void
g_name(void *userdata, const cas_namerec *rec)
{
    nvx_mesh *m = userdata;
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->kind = JOB_STORE_NAME;
    j->rec = *rec;
    j->trusted_only = m->n_names >= NVX_MESH_NAMES_MAX;
    if (queue_job(m, j) < 0)
        free(j); /* it comes round again: gossip re-sends to new sessions */
}

/* Dials "HOST:PORT" (a "tcp://" prefix is accepted) unless connected,
 * pinned to node: a session that turns out to hold another key is dropped
 * in the handshake (and h_mismatch forgets the address). useful: a
 * provider of a model we want (it may take an idle session's slot). */
static void
dial(nvx_mesh *m, const uint8_t node[static 32], const char *addr, bool useful)
{
    if (m->closing || nvx_gossip_connected(m->g, node) ||
        memcmp(node, nvx_node_id(m->o.node), 32) == 0)
        return;
    if (strncmp(addr, "tcp://", 6) == 0)
        addr += 6;
    int r = nvx_node_dial_id(m->o.node, addr, node, useful);
    char sid[17];
    if (r < 0)
        log_debug("cannot dial %s (%s): %s", nvx_short_id(node, sid), addr, strerror(-r));
    else
        log_debug("dialing %s at %s", nvx_short_id(node, sid), addr);
}

static void
g_dial(void *userdata, const uint8_t node[static PROTO_ID_LEN], const char *addr)
{
    nvx_mesh *m = userdata;
    /* Enough neighbours: the address stays known (nvx_mesh_want can still
     * use it) but a large mesh does not turn into a full mesh. */
    if (nvx_gossip_sessions(m->g) >= NVX_MESH_PEX_TARGET || m->o.no_pex_dial)
        return;
    /* gossip keeps only numeric addresses from PEERS: no name lookup. */
    if (!nvx_pex_addr_numeric((const uint8_t *)addr, strlen(addr)))
        return;
    dial(m, node, addr, false);
}

static void
g_provider(void *userdata, const uint8_t node[static PROTO_ID_LEN],
           const uint8_t model[static PROTO_ID_LEN], uint64_t expires_ms)
{
    (void)expires_ms;
    nvx_mesh *m = userdata;
    if (m->o.provider && !m->closing)
        m->o.provider(m->o.arg, node, model);
}

static const nvx_gossip_ops gossip_ops = {
    .send = g_send,
    .provider = g_provider,
    .name = g_name,
    .dial = g_dial,
};

/* ---------------------------------------------------------------------- */
/* Node hooks */

static void
h_peer_up(void *arg, nvx_peer *p)
{
    nvx_mesh *m = arg;
    const uint8_t *id = nvx_peer_id(p);
    if (m->closing || !id)
        return;
    uint64_t now = wall_ms();
    char addr[PROTO_ADDR_MAX + 1];
    /* A session we dialed proved that this key answers at that address:
     * first hand. An inbound peer's HELLO address is its own claim. */
    if (nvx_peer_outbound(p))
        (void)nvx_gossip_add_addr(m->g, id, nvx_peer_addr(p), NVX_PEX_FIRST_HAND, now);
    else if (nvx__mesh_hello_addr(p, 0, false, addr, sizeof(addr)))
        (void)nvx_gossip_add_addr(m->g, id, addr, NVX_PEX_CLAIMED, now);
    nvx_reverse_resolved(m->rev, id);
    int r = nvx_gossip_peer_up(m->g, (uint64_t)(uintptr_t)p, id, now);
    if (r < 0)
        log_warn_errno(r, "gossip cannot take another session");
}

static void
h_peer_down(void *arg, nvx_peer *p)
{
    nvx_mesh *m = arg;
    nvx_gossip_peer_down(m->g, (uint64_t)(uintptr_t)p);
    nvx_reverse_session_gone(m->rev, (uint64_t)(uintptr_t)p);
}

static void
h_mismatch(void *arg, const uint8_t claimed[32], const char *addr)
{
    nvx_mesh *m = arg;
    char sid[17];
    if (nvx_reverse_mismatch(m->rev, claimed, addr, mono_ms(m)))
        log_debug("reversal: %s was not at %s: its relay gets a strike", nvx_short_id(claimed, sid),
                  addr);
    if (nvx_gossip_forget_addr(m->g, claimed, addr) == 0)
        log_debug("forgot %s for %s: another key answered there", addr, nvx_short_id(claimed, sid));
}

static void
h_message(void *arg, nvx_peer *p, const proto_msg *msg)
{
    nvx_mesh *m = arg;
    if (m->closing)
        return;
    switch (msg->type) {
    case PROTO_MSG_ANNOUNCE:
    case PROTO_MSG_PEERS:
        (void)nvx_gossip_on_message(m->g, (uint64_t)(uintptr_t)p, msg, wall_ms());
        break;
    case PROTO_MSG_REVERSE_REQ:
    case PROTO_MSG_REVERSE:
    case PROTO_MSG_REVERSE_AT:
        nvx__mesh_on_reverse(m, p, msg);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* Discovery, timer */

static void
on_discovered(void *arg, const uint8_t node[static NVX_DISC_ID_LEN], const char *addr)
{
    nvx_mesh *m = arg;
    (void)nvx_gossip_add_addr(m->g, node, addr, NVX_PEX_CLAIMED, wall_ms());
    char sid[17];
    log_info("LAN discovery: node %s at %s", nvx_short_id(node, sid), addr);
    dial(m, node, addr, false);
}

/* Providers of the models being fetched that we have no session with:
 * dial their known address again and ask relays to have them dial us. */
static void
chase_providers(nvx_mesh *m, uint64_t now)
{
    for (size_t w = 0; w < NVX_MESH_WANTS_MAX; w++) {
        if (m->wants[w].until_ms <= now)
            continue;
        uint8_t ids[16][PROTO_ID_LEN];
        size_t n = nvx_gossip_providers(m->g, m->wants[w].model, now, ids, 16);
        for (size_t i = 0; i < n && i < 16; i++) {
            if (nvx_gossip_connected(m->g, ids[i]) || !nvx_reverse_want(m->rev, ids[i], mono_ms(m)))
                continue;
            char addr[PROTO_ADDR_MAX + 1], sid[17];
            if (nvx_gossip_addr(m->g, ids[i], addr, sizeof(addr)) == 0)
                dial(m, ids[i], addr, true);
            proto_msg rq = { .type = PROTO_MSG_REVERSE_REQ };
            memcpy(rq.u.reverse.node_id, ids[i], 32);
            unsigned sent = nvx__mesh_ask_relays(m, &rq, NULL, 0);
            if (sent)
                log_debug("reversal: asked %u relays for %s", sent, nvx_short_id(ids[i], sid));
        }
    }
}

static void
on_tick(uv_timer_t *t)
{
    nvx_mesh *m = t->data;
    uint64_t now = wall_ms();
    nvx_gossip_tick(m->g, now);
    chase_providers(m, now);
    if (now >= m->next_scan_ms) {
        m->next_scan_ms = now + NVX_MESH_RESCAN_MS;
        scan(m);
    }
}

/* The port to announce on the LAN, 0 for none: not listening, or
 * listening on loopback only while announcing on another interface (the
 * others would dial our LAN address and find nothing there). */
static uint16_t
listen_port(const nvx_node *n, const char *interface)
{
    struct sockaddr_storage ss;
    const char *a = nvx_node_listen_addr(n);
    if (!a || !a[0] || tp_tcp_addr_parse(a, 0, &ss) < 0)
        return 0;
    bool loopback = false;
    uint16_t port;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
        port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        static const uint8_t one[16] = { [15] = 1 };
        loopback = memcmp(&sin6->sin6_addr, one, 16) == 0;
        port = ntohs(sin6->sin6_port);
    }
    if (loopback && !(interface && strncmp(interface, "127.", 4) == 0)) {
        log_info("LAN discovery: listening on %s only, so not announcing (listen only)", a);
        return 0;
    }
    return port;
}

static void
start_discovery(nvx_mesh *m)
{
    nvx_disc_opts d = {
        .loop = m->o.loop,
        .listen_port = listen_port(m->o.node, m->o.discovery_interface),
        .group = m->o.discovery_group,
        .port = m->o.discovery_port,
        .interface = m->o.discovery_interface,
        .interval_ms = m->o.discovery_interval_ms,
        .cb = on_discovered,
        .arg = m,
    };
    memcpy(d.node_id, nvx_node_id(m->o.node), 32);
    int r = nvx_disc_start(&d, &m->disc);
    if (r < 0) {
        log_warn_errno(r, "LAN discovery is off: cannot use multicast %s:%u",
                       d.group ? d.group : NVX_DISC_GROUP,
                       (unsigned)(d.port ? d.port : NVX_DISC_PORT));
        m->disc = NULL;
        return;
    }
    m->open_handles++;
    log_info("LAN discovery on %s:%u, announcing port %u", d.group ? d.group : NVX_DISC_GROUP,
             (unsigned)(d.port ? d.port : NVX_DISC_PORT), (unsigned)d.listen_port);
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

int
nvx_mesh_new(const nvx_mesh_opts *opts, nvx_mesh **ret)
{
    if (!opts || !ret || !opts->loop || !opts->node || !opts->store || !opts->identity ||
        memcmp(proto_identity_node_id(opts->identity), nvx_node_id(opts->node), 32) != 0)
        return -EINVAL;
    nvx_mesh *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->o = *opts;
    nvx_gossip_cfg gc = { .identity = opts->identity, .ops = &gossip_ops, .userdata = m };
    int r = nvx_gossip_new(&gc, &m->g);
    if (r >= 0)
        r = nvx_reverse_new(&m->rev);
    if (r < 0)
        goto fail;
    r = uv_timer_init(opts->loop, &m->timer);
    if (r < 0)
        goto fail;
    m->timer.data = m;
    m->open_handles = 1;
    nvx_node_hook hook = { .peer_up = h_peer_up,
                           .peer_down = h_peer_down,
                           .message = h_message,
                           .mismatch = h_mismatch,
                           .arg = m };
    r = nvx_node_hook_add(opts->node, &hook);
    if (r < 0) {
        /* Not registered: m goes with the timer's close callback. */
        m->closing = true;
        uv_close((uv_handle_t *)&m->timer, on_timer_closed);
        return r;
    }
    (void)uv_timer_start(&m->timer, on_tick, 0, NVX_MESH_TICK_MS);
    if (opts->discovery)
        start_discovery(m);
    *ret = m;
    return 0;
fail:
    nvx_reverse_free(m->rev);
    nvx_gossip_free(m->g);
    free(m);
    return r;
}

static void
maybe_free(nvx_mesh *m)
{
    if (!m->closing || m->jobs > 0 || m->open_handles > 0)
        return;
    void (*done)(void *) = m->done;
    void *arg = m->done_arg;
    nvx_gossip_free(m->g);
    nvx_reverse_free(m->rev);
    free(m->provided);
    free(m);
    if (done)
        done(arg);
}

static void
on_timer_closed(uv_handle_t *h)
{
    nvx_mesh *m = h->data;
    m->open_handles--;
    maybe_free(m);
}

static void
on_disc_stopped(void *arg)
{
    nvx_mesh *m = arg;
    m->open_handles--;
    maybe_free(m);
}

void
nvx_mesh_close(nvx_mesh *m, void (*done)(void *arg), void *arg)
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
    if (m->disc) {
        nvx_disc_stop(m->disc, on_disc_stopped, m);
        m->disc = NULL;
    }
}

int
nvx_mesh_publish(nvx_mesh *m, const uint8_t model_id[static 32], const char *name,
                 void (*cb)(void *arg, int r), void *arg)
{
    if (!name || !cb || !cas_namerec_name_valid(name, strlen(name)))
        return -EINVAL;
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->kind = JOB_PUBLISH;
    memcpy(j->model, model_id, 32);
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->cb = cb;
    j->arg = arg;
    int r = queue_job(m, j);
    if (r < 0)
        free(j);
    return r;
}

int
nvx_mesh_provide(nvx_mesh *m, const uint8_t model_id[static 32])
{
    if (m->closing)
        return -ECANCELED;
    /* The next rescan finds the model in the store and keeps providing it. */
    return nvx_gossip_provide(m->g, model_id, wall_ms());
}

int
nvx_mesh_want(nvx_mesh *m, const uint8_t model_id[static 32])
{
    /* Remembered for chase_providers (a free slot, the same model, or the
     * one that expires first). */
    uint64_t now_w = wall_ms();
    size_t slot = 0;
    for (size_t i = 0; i < NVX_MESH_WANTS_MAX; i++) {
        if (m->wants[i].until_ms > now_w && memcmp(m->wants[i].model, model_id, 32) == 0) {
            slot = i;
            break;
        }
        if (m->wants[i].until_ms < m->wants[slot].until_ms)
            slot = i;
    }
    memcpy(m->wants[slot].model, model_id, 32);
    m->wants[slot].until_ms = now_w + NVX_MESH_WANT_MS;
    uint8_t ids[16][PROTO_ID_LEN];
    size_t n = nvx_gossip_providers(m->g, model_id, now_w, ids, 16);
    int dials = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        char addr[PROTO_ADDR_MAX + 1];
        if (nvx_gossip_connected(m->g, ids[i]) ||
            nvx_gossip_addr(m->g, ids[i], addr, sizeof(addr)) < 0)
            continue;
        dial(m, ids[i], addr, true);
        dials++;
    }
    return dials;
}

void
nvx_mesh_unwant(nvx_mesh *m, const uint8_t model_id[static 32])
{
    for (size_t i = 0; i < NVX_MESH_WANTS_MAX; i++)
        if (memcmp(m->wants[i].model, model_id, 32) == 0)
            m->wants[i].until_ms = 0;
}

size_t
nvx_mesh_shared(const nvx_mesh *m)
{
    return m->n_provided;
}

nvx_gossip *
nvx_mesh_gossip(nvx_mesh *m)
{
    return m->g;
}
