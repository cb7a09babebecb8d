/* SPDX-License-Identifier: MIT */
/*
 * The DHT on the loop (daemon/dht-uv.h): UDP in and out, the tick, the
 * bootstrap names, the saved table.
 */
#include "daemon/dht-uv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "daemon/log.h"

enum {
    RESOLVE_MAX = 8, /* bootstrap names resolved at once */
};

struct resolve {
    uv_getaddrinfo_t req; /* first: the callback casts back */
    nvx_dhtuv *d;
    uint16_t port;
};

struct nvx_dhtuv {
    uv_udp_t udp;
    uv_timer_t timer;
    nvx_dht *core;
    uv_loop_t *loop;
    uint16_t port, announce_port, listen_port; /* listen_port: announced when not mapped */
    char *state_path;
    uint64_t next_save_ms;
    unsigned open_handles, resolving;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
    uint8_t rbuf[NVX_BENC_INPUT_MAX];
    bool rbuf_busy;
};

static void
send_cb(void *arg, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len)
{
    nvx_dhtuv *d = arg;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(ip) };
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    /* UDP is lossy anyway: a datagram the kernel cannot take now is dropped
     * rather than queued (the core retries through its timeouts). */
    int r = uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)&sa);
    if (r < 0 && r != UV_EAGAIN)
        log_debug("dht: cannot send to port %u: %s", port, uv_strerror(r));
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    nvx_dhtuv *d = h->data;
    (void)suggested;
    *buf = d->rbuf_busy ? uv_buf_init(NULL, 0) : uv_buf_init((char *)d->rbuf, sizeof(d->rbuf));
    d->rbuf_busy = buf->base != NULL;
}

static void
on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
        unsigned flags)
{
    nvx_dhtuv *d = h->data;
    if (buf->base == (char *)d->rbuf)
        d->rbuf_busy = false;
    if (nread <= 0 || !from || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
        return;
    const struct sockaddr_in *sa = (const struct sockaddr_in *)from;
    nvx_dht_input(d->core, ntohl(sa->sin_addr.s_addr), ntohs(sa->sin_port), d->rbuf, (size_t)nread,
                  uv_now(d->loop));
}

/* ---------------------------------------------------------------------- */
/* The saved table */

static void
save(nvx_dhtuv *d)
{
    if (!d->state_path)
        return;
    uint8_t *buf = malloc(NVX_DHT_SAVE_MAX);
    char tmp[4200];
    int n = buf ? nvx_dht_save(d->core, buf, NVX_DHT_SAVE_MAX) : -ENOMEM;
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->state_path);
    /* A few KiB, every ten minutes and at exit: written on the loop. */
    int fd = n > 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    bool ok = fd >= 0 && write(fd, buf, (size_t)n) == n;
    if (fd >= 0 && close(fd) < 0)
        ok = false;
    if (ok && rename(tmp, d->state_path) < 0)
        ok = false;
    if (!ok && n > 0)
        log_debug("dht: cannot save %s: %s", d->state_path, strerror(errno));
    free(buf);
}

static void
load(nvx_dhtuv *d)
{
    uint8_t *buf = malloc(NVX_DHT_SAVE_MAX + 1);
    int fd = buf ? open(d->state_path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, NVX_DHT_SAVE_MAX + 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        int r = nvx_dht_load(d->core, buf, (size_t)n);
        if (r < 0)
            log_warn("dht: %s is damaged: starting from the bootstrap hosts", d->state_path);
        else
            log_info("dht: %d nodes saved from the last run", r);
    }
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* Bootstrap names */

static void
maybe_free(nvx_dhtuv *d)
{
    if (!d->closing || d->open_handles || d->resolving)
        return;
    nvx_dht_free(d->core);
    free(d->state_path);
    void (*done)(void *) = d->done;
    void *arg = d->done_arg;
    free(d);
    if (done)
        done(arg);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve *rs = (struct resolve *)req;
    nvx_dhtuv *d = rs->d;
    d->resolving--;
    for (struct addrinfo *a = status == 0 ? res : NULL; a && !d->closing; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *sa = (const struct sockaddr_in *)a->ai_addr;
            (void)nvx_dht_add_bootstrap(d->core, ntohl(sa->sin_addr.s_addr), rs->port);
        }
    if (status < 0)
        log_info("dht: cannot resolve a bootstrap host: %s", uv_strerror(status));
    uv_freeaddrinfo(res);
    free(rs);
    maybe_free(d);
}

/* One "HOST:PORT" of the list (len bytes at s). */
static void
add_bootstrap(nvx_dhtuv *d, const char *s, size_t len)
{
    char host[256];
    const char *colon = memchr(s, ':', len);
    while (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)))
        colon = memchr(colon + 1, ':', len - (size_t)(colon + 1 - s));
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    unsigned long port = strtoul(colon + 1, NULL, 10);
    if (port == 0 || port > 65535)
        return;
    struct in_addr in;
    if (uv_inet_pton(AF_INET, host, &in) == 0) {
        (void)nvx_dht_add_bootstrap(d->core, ntohl(in.s_addr), (uint16_t)port);
        return;
    }
    if (d->resolving >= RESOLVE_MAX)
        return;
    struct resolve *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return;
    rs->d = d;
    rs->port = (uint16_t)port;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM };
    if (uv_getaddrinfo(d->loop, &rs->req, on_resolved, host, NULL, &hints) < 0) {
        free(rs);
        return;
    }
    d->resolving++;
}

/* ---------------------------------------------------------------------- */
/* Life cycle */

static void
on_bind_failed(uv_handle_t *h)
{
    free(h->data);
}

static void
on_tick(uv_timer_t *t)
{
    nvx_dhtuv *d = t->data;
    uint64_t now = uv_now(d->loop);
    nvx_dht_tick(d->core, now);
    if (now >= d->next_save_ms) {
        d->next_save_ms = now + NVX_DHTUV_SAVE_MS;
        save(d);
    }
}

int
nvx_dhtuv_new(const nvx_dhtuv_opts *o, nvx_dhtuv **ret)
{
    if (!o || !o->loop || !ret)
        return -EINVAL;
    struct sockaddr_in sa;
    int r = uv_ip4_addr(o->bind_host ? o->bind_host : "0.0.0.0", o->port, &sa);
    if (r < 0)
        return -EINVAL;
    nvx_dhtuv *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->loop = o->loop;
    d->announce_port = d->listen_port = o->announce_port;
    nvx_dht_opts co = { .enforce_node_id = o->enforce_node_id,
                        .ops = { .send = send_cb },
                        .arg = d };
    /* Bound to one address (not 0.0.0.0): that is our address, and with
     * BEP 42 our id follows it from the start. A public node (a bootstrap
     * node in a test's "internet") otherwise never learns it: it asks no
     * one, so no answer tells it, and nodes enforcing BEP 42 would keep it
     * out of their tables. */
    co.external_ip = ntohl(sa.sin_addr.s_addr);
    randombytes_buf(co.secret, sizeof(co.secret));
    r = nvx_dht_new(&co, uv_now(o->loop), &d->core);
    sodium_memzero(co.secret, sizeof(co.secret));
    if (r < 0) {
        free(d);
        return r;
    }
    if (o->state_dir) {
        size_t n = strlen(o->state_dir) + sizeof("/" NVX_DHTUV_STATE_FILE);
        d->state_path = malloc(n);
        if (d->state_path) {
            snprintf(d->state_path, n, "%s/%s", o->state_dir, NVX_DHTUV_STATE_FILE);
            load(d);
        }
    }
    uv_udp_init_ex(o->loop, &d->udp, AF_INET);
    d->udp.data = d;
    d->open_handles++;
    r = uv_udp_bind(&d->udp, (const struct sockaddr *)&sa, 0);
    if (r == 0)
        r = uv_udp_recv_start(&d->udp, on_alloc, on_recv);
    if (r < 0) {
        /* The handle is freed with d from its close callback, on the
         * caller's next loop turn. */
        nvx_dht_free(d->core);
        d->core = NULL;
        free(d->state_path);
        d->state_path = NULL;
        uv_close((uv_handle_t *)&d->udp, on_bind_failed);
        return r;
    }
    struct sockaddr_in bound;
    int blen = sizeof(bound);
    if (uv_udp_getsockname(&d->udp, (struct sockaddr *)&bound, &blen) == 0)
        d->port = ntohs(bound.sin_port);
    uv_timer_init(o->loop, &d->timer);
    d->timer.data = d;
    d->open_handles++;
    uv_timer_start(&d->timer, on_tick, NVX_DHTUV_TICK_MS, NVX_DHTUV_TICK_MS);
    d->next_save_ms = uv_now(o->loop) + NVX_DHTUV_SAVE_MS;
    const char *b = o->bootstrap;
    if (b && strcmp(b, "none") != 0)
        for (const char *p = b; *p;) {
            size_t len = strcspn(p, ",");
            add_bootstrap(d, p, len);
            p += len + (p[len] == ',');
        }
    *ret = d;
    return 0;
}

static void
on_closed(uv_handle_t *h)
{
    nvx_dhtuv *d = h->data;
    d->open_handles--;
    maybe_free(d);
}

void
nvx_dhtuv_close(nvx_dhtuv *d, void (*done)(void *arg), void *arg)
{
    if (!d) {
        if (done)
            done(arg);
        return;
    }
    save(d);
    d->closing = true;
    d->done = done;
    d->done_arg = arg;
    uv_udp_recv_stop(&d->udp);
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->udp, on_closed);
    uv_close((uv_handle_t *)&d->timer, on_closed);
    /* Names still resolving are cancelled; their callbacks still run. */
}

/* ---------------------------------------------------------------------- */
/* Providers and items */

int
nvx_dhtuv_announce(nvx_dhtuv *d, const uint8_t key[static 20])
{
    if (!d->announce_port)
        return -EADDRNOTAVAIL;
    int r = nvx_dht_announce(d->core, key, d->announce_port, uv_now(d->loop));
    return r == -EEXIST ? 0 : r;
}

int
nvx_dhtuv_store_self(nvx_dhtuv *d, const uint8_t key[static 20], const char *addr)
{
    struct sockaddr_in sa;
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(addr, ':');
    char *end;
    if (!colon || (size_t)(colon - addr) >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535 || uv_ip4_addr(host, (int)port, &sa) != 0)
        return -EINVAL;
    return nvx_dht_store_self(d->core, key, ntohl(sa.sin_addr.s_addr), (uint16_t)port,
                              uv_now(d->loop));
}

void
nvx_dhtuv_unannounce(nvx_dhtuv *d, const uint8_t key[static 20])
{
    nvx_dht_unannounce(d->core, key);
}

int
nvx_dhtuv_provide(nvx_dhtuv *d, const uint8_t model_id[static 32])
{
    uint8_t key[20];
    nvx_dht_provider_key(model_id, key);
    return nvx_dhtuv_announce(d, key);
}

void
nvx_dhtuv_set_mapped_port(nvx_dhtuv *d, uint16_t ext_port)
{
    if (!d->listen_port)
        return; /* nothing to announce */
    d->announce_port = ext_port ? ext_port : d->listen_port;
    nvx_dht_announce_port(d->core, d->announce_port, uv_now(d->loop));
}

void
nvx_dhtuv_unprovide(nvx_dhtuv *d, const uint8_t model_id[static 32])
{
    uint8_t key[20];
    nvx_dht_provider_key(model_id, key);
    nvx_dht_unannounce(d->core, key);
}

struct find {
    void (*cb)(void *arg, const char *addr);
    void *arg;
};

static void
on_found(void *arg, const nvx_dht_result *res)
{
    struct find *f = arg;
    for (size_t i = 0; i < res->n_peers; i++) {
        char addr[NVX_DHTUV_ADDR_MAX];
        uint32_t ip = res->peer_ip[i];
        snprintf(addr, sizeof(addr), "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                 ip & 255, res->peer_port[i]);
        f->cb(f->arg, addr);
    }
    if (res->done) {
        void (*cb)(void *, const char *) = f->cb;
        void *cb_arg = f->arg;
        free(f);
        cb(cb_arg, NULL);
    }
}

int
nvx_dhtuv_find_providers(nvx_dhtuv *d, const uint8_t model_id[static 32],
                         void (*cb)(void *arg, const char *addr), void *arg)
{
    uint8_t key[20];
    nvx_dht_provider_key(model_id, key);
    return nvx_dhtuv_find(d, key, cb, arg);
}

int
nvx_dhtuv_find(nvx_dhtuv *d, const uint8_t key[static 20], void (*cb)(void *arg, const char *addr),
               void *arg)
{
    struct find *f = malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->cb = cb;
    f->arg = arg;
    int h = nvx_dht_lookup(d->core, NVX_DHT_GET_PEERS, key, 0, NULL, on_found, f, uv_now(d->loop));
    if (h < 0)
        free(f);
    return h;
}

int
nvx_dhtuv_lookup(nvx_dhtuv *d, nvx_dht_lookup_kind kind, const nvx_dht_item *item, nvx_dht_cb cb,
                 void *arg)
{
    return nvx_dht_lookup(d->core, kind, NULL, 0, item, cb, arg, uv_now(d->loop));
}

int
nvx_dhtuv_put(nvx_dhtuv *d, const nvx_dht_item *item)
{
    return nvx_dht_put(d->core, item, uv_now(d->loop));
}

void
nvx_dhtuv_cancel(nvx_dhtuv *d, int handle)
{
    if (handle > 0)
        nvx_dht_cancel(d->core, (uint32_t)handle);
}

const nvx_dht *
nvx_dhtuv_core(const nvx_dhtuv *d)
{
    return d->core;
}

uint16_t
nvx_dhtuv_port(const nvx_dhtuv *d)
{
    return d->port;
}
