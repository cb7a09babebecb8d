/* SPDX-License-Identifier: MIT */
/*
 * nvxd: the nvx node daemon. See `nvxd --help`, daemon/node.h and
 * contrib/nvxd.service.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <netdb.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/ctl.h"
#include "daemon/dht-relay.h"
#include "daemon/dht-uv.h"
#include "daemon/identity.h"
#include "daemon/log.h"
#include "daemon/mesh.h"
#include "daemon/natmap.h"
#include "daemon/node.h"
#include "daemon/pull.h"
#include "daemon/status.h"
#include "libcas/hash.h"
#include "libcas/run-policy.h"
#include "proto/control.h"
#include "transport/tcp.h"

#define NVX_POOL_THREADS "8"

#ifndef NVX_VERSION
#define NVX_VERSION "0"
#endif

struct daemon {
    uv_loop_t *loop;
    nvx_node *node;
    nvx_ctl *ctl;
    nvx_api *api;
    nvx_mesh *mesh;
    nvx_natmap *natmap;
    nvx_pull_env pull_env; /* the API's pulls */
    nvx_dhtuv *dht;
    nvx_dhtrelay *relay; /* with dht and mesh */
    uv_signal_t sigterm, sigint;
    bool stopping;
};

/* ---- the HTTP API's hooks (daemon/api.h): api.c never calls the node ---- */

static json_t *
api_status(void *arg)
{
    struct daemon *d = arg;
    return nvx_status_json(d->node, d->mesh);
}

static int
api_pull(void *arg, const char *target, bool pin,
         void (*cb)(void *cb_arg, const proto_ctl_progress *p, int error, const char *msg),
         void *cb_arg, void **ret)
{
    struct daemon *d = arg;
    d->pull_env.mesh = d->mesh;
    nvx_pull *p = NULL;
    int r = nvx_pull_start(&d->pull_env, target, pin, cb, cb_arg, &p);
    if (r == 0)
        *ret = p;
    return r;
}

static void
api_pull_cancel(void *arg, void *handle)
{
    (void)arg;
    nvx_pull_cancel(handle);
}

static void
node_stopped(void *arg)
{
    struct daemon *d = arg;
    nvx_dhtrelay_close(d->relay); /* it asks the mesh and the DHT */
    d->relay = NULL;
    /* The node calls the mesh's hooks until it has stopped: close it now. */
    nvx_mesh_close(d->mesh, NULL, NULL);
    d->mesh = NULL;
    nvx_dhtuv_close(d->dht, NULL, NULL); /* after the mesh, which announces through it */
    d->dht = NULL;
    /* The router's mapping goes last: the loop runs until it is deleted. */
    nvx_natmap_close(d->natmap, NULL, NULL);
    d->natmap = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void
ctl_closed(void *arg)
{
    struct daemon *d = arg;
    d->ctl = NULL;
    nvx_node_stop(d->node, node_stopped, d);
}

static void
api_closed(void *arg)
{
    struct daemon *d = arg;
    d->api = NULL;
    if (d->ctl)
        nvx_ctl_close(d->ctl, ctl_closed, d);
    else
        ctl_closed(d);
}

/* Apps first (their requests may use the store), then the control socket,
 * then the node. */
static void
shutdown_daemon(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("stopping");
    if (d->api)
        nvx_api_close(d->api, api_closed, d);
    else
        api_closed(d);
}

/* A fetch completed: announce the model through gossip now rather than at
 * the mesh's next store rescan. */
static void
on_fetched(void *arg, const uint8_t id[32])
{
    struct daemon *d = arg;
    if (d->mesh)
        nvx_mesh_provide(d->mesh, id);
}

/* The router mapped (or lost) our port: advertise it to new sessions. */
static void
on_mapped(void *arg, const char *ext, nvx_natmap_how how)
{
    struct daemon *d = arg;
    (void)how;
    if (d->node)
        nvx_node_set_ext_addr(d->node, ext);
    /* The DHT announce carries the mapped port (its address is the UDP
     * source, which the router rewrites to the external one). */
    const char *colon = ext ? strrchr(ext, ':') : NULL;
    unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
    if (d->dht)
        nvx_dhtuv_set_mapped_port(d->dht, port <= 65535 ? (uint16_t)port : 0);
}

/* Maps the listening port on the router unless upnp is off or the node
 * listens on the loopback only (nothing outside could use the mapping, and
 * no discovery packet needs to leave). */
static void
start_natmap(struct daemon *d, const nvx_config *cfg)
{
    struct sockaddr_storage ss;
    const char *a = nvx_node_listen_addr(d->node);
    if (!cfg->upnp || !a[0] || tp_tcp_addr_parse(a, 0, &ss) < 0)
        return;
    uint16_t port;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
            return;
        port = ntohs(sin->sin_port);
    } else {
        return; /* IPv6 needs no NAT mapping (a firewall pinhole is PCP's job, not done) */
    }
    nvx_natmap_opts o = { .loop = d->loop, .port = port, .changed = on_mapped, .arg = d };
    int r = nvx_natmap_new(&o, &d->natmap);
    if (r < 0)
        log_warn_errno(r, "no port mapping on the router");
}

static void
on_signal(uv_signal_t *s, int signum)
{
    shutdown_daemon(s->data);
}

static void
on_ctl_shutdown(void *arg)
{
    shutdown_daemon(arg);
}

/* The store location: --store, $NVX_STORE, ${XDG_DATA_HOME:-$HOME/.local/share}/nvx. */
static int
store_dir(const nvx_config *cfg, char *buf, size_t cap)
{
    const char *e;
    int n;
    if (cfg->store[0])
        n = snprintf(buf, cap, "%s", cfg->store);
    else if ((e = getenv("NVX_STORE")) && *e)
        n = snprintf(buf, cap, "%s", e);
    else if ((e = getenv("XDG_DATA_HOME")) && *e)
        n = snprintf(buf, cap, "%s/nvx", e);
    else if ((e = getenv("HOME")) && *e)
        n = snprintf(buf, cap, "%s/.local/share/nvx", e);
    else
        return -ENOENT;
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* --listen HOST:PORT with a host name ("localhost:4747", like --peer
 * takes): resolved once here, at start-up before the loop runs, to the
 * first address getaddrinfo gives, since the transport listens on numeric
 * addresses only. A numeric address or "none" is copied as it is. Returns 0
 * or -EINVAL (logged). */
static int
listen_resolve(const char *listen, char out[static NVX_CONFIG_VALUE_MAX])
{
    struct sockaddr_storage ss;
    snprintf(out, NVX_CONFIG_VALUE_MAX, "%s", listen);
    const char *colon = strrchr(listen, ':');
    if (strcmp(listen, "none") == 0 || tp_tcp_addr_parse(listen, 1, &ss) == 0 || !colon ||
        colon == listen || listen[0] == '[')
        return 0; /* tp_listen() reports a bad numeric address */
    char host[NVX_CONFIG_VALUE_MAX];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM },
                    *res = NULL;
    int g = getaddrinfo(host, colon + 1, &hints, &res);
    if (g != 0 || !res) {
        log_error("cannot listen on %s: %s: give a numeric address or a name this host resolves",
                  listen, g ? gai_strerror(g) : "no address");
        return -EINVAL;
    }
    char addr[TP_ADDR_MAX];
    int r = tp_tcp_addr_format(res->ai_addr, addr);
    freeaddrinfo(res);
    if (r < 0) {
        log_error("cannot listen on %s: not an IPv4 or IPv6 address", listen);
        return -EINVAL;
    }
    snprintf(out, NVX_CONFIG_VALUE_MAX, "%s", addr);
    log_info("%s resolves to %s", listen, addr);
    return 0;
}

/* control-group: a decimal gid or a group name. Returns 0 with *ret, or
 * -ENOENT when no such group exists. */
static int
resolve_group(const char *name, gid_t *ret)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(name, &end, 10);
    if (*end == '\0' && errno == 0 && v < (gid_t)-1) {
        *ret = (gid_t)v;
        return 0;
    }
    char buf[4096];
    struct group g, *res = NULL;
    int e = getgrnam_r(name, &g, buf, sizeof(buf), &res);
    if (e != 0 || !res)
        return e > 0 ? -e : -ENOENT;
    *ret = res->gr_gid;
    return 0;
}

/* The store dir is ours alone (0700); with a control group its members may
 * pass through it (0710, group-owned) to reach the socket, but not list it.
 * The files inside keep their own modes. */
static int
store_dir_mode(const char *dir, const nvx_config *cfg, gid_t group)
{
    if (cfg->control_group[0] && chown(dir, (uid_t)-1, group) < 0)
        return -errno;
    if (chmod(dir, cfg->control_group[0] ? 0710 : 0700) < 0)
        return -errno;
    return 0;
}

/* The DHT on the listen host's IPv4 address (0.0.0.0 for any other) and,
 * unless dht-port says otherwise, the listen port's number. Its failure
 * leaves the node without it. */
static nvx_dhtuv *
start_dht(const nvx_config *cfg, uv_loop_t *loop, const char *listen, const char *dir)
{
    char host[64] = "0.0.0.0";
    unsigned long tcp_port = 0;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (colon) {
        tcp_port = strtoul(colon + 1, NULL, 10);
        /* The DHT speaks IPv4: an IPv6 listen host means any IPv4 address. */
        if (listen[0] != '[' && (size_t)(colon - listen) < sizeof(host)) {
            memcpy(host, listen, (size_t)(colon - listen));
            host[colon - listen] = 0;
        }
    }
    nvx_dhtuv_opts o = {
        .loop = loop,
        .bind_host = host,
        .port = (uint16_t)(cfg->dht_port >= 0 ? (unsigned long)cfg->dht_port : tcp_port),
        .bootstrap = cfg->dht_bootstrap,
        .state_dir = dir,
        .announce_port = (uint16_t)tcp_port,
        .enforce_node_id = true,
    };
    nvx_dhtuv *dht = NULL;
    int r = nvx_dhtuv_new(&o, &dht);
    if (r == UV_EADDRINUSE && cfg->dht_port < 0) {
        o.port = 0; /* the TCP port's number is taken for UDP: any port will do */
        r = nvx_dhtuv_new(&o, &dht);
    }
    if (r < 0) {
        log_warn_errno(r, "DHT is off: cannot bind UDP %s:%u", host, o.port);
        return NULL;
    }
    char id[41];
    nvx_dht_id_hex(nvx_dht_id(nvx_dhtuv_core(dht)), id);
    log_info("DHT on udp %s:%u, id %.16s, bootstrap %s", host, nvx_dhtuv_port(dht), id,
             cfg->dht_bootstrap);
    return dht;
}

static int
run(const nvx_config *cfg)
{
    char dir[3072], path[4096];
    cas_store *store = NULL;
    proto_identity *ident = NULL;
    tp_net *net = NULL;
    int lock_fd = -1;
    struct daemon d = { 0 };
    const char **peers = NULL;
    int r = store_dir(cfg, dir, sizeof(dir));
    if (r < 0) {
        log_error("no store: give --store DIR or set NVX_STORE");
        return 1;
    }
    gid_t group = 0;
    if (cfg->control_group[0] && resolve_group(cfg->control_group, &group) < 0) {
        log_error("control-group: no group '%s': create it (groupadd %s) or fix nvxd.conf",
                  cfg->control_group, cfg->control_group);
        return 1;
    }
    if (cas_init() < 0) {
        log_error("cannot initialise libsodium");
        return 1;
    }
    r = cas_store_open(dir, CAS_STORE_CREATE, &store);
    if (r < 0) {
        log_error_errno(r, "cannot open the store %s", dir);
        return 1;
    }
    r = store_dir_mode(dir, cfg, group);
    if (r < 0 && cfg->control_group[0]) {
        log_error_errno(r, "cannot give %s to group %s: run nvxd as a member of it", dir,
                        cfg->control_group);
        goto out;
    }
    if (r < 0)
        log_warn_errno(r, "cannot make %s mode 0700", dir);
    /* The quota lives in the store (libcas enforces it at each add, the
     * node around each fetch); meet it now, before the loop runs, rather
     * than at the next add: unpinned models first, then kept ones, least
     * recently used first. */
    cas_gc_result gr = { 0 };
    r = cfg->max_store_set ? cas_store_limit_set(store, cfg->max_store_bytes) : 0;
    if (r == 0)
        r = cas_store_make_room(store, 0, NULL, 0, NULL, NULL, &gr);
    if (r < 0)
        log_warn_errno(r, "cannot apply max-store-bytes");
    else if (gr.n_models)
        log_info("max-store-bytes: removed %llu model(s), %llu bytes, least recently used first",
                 (unsigned long long)gr.n_models, (unsigned long long)gr.bytes);
    snprintf(path, sizeof(path), "%s/nvxd.lock", dir);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            log_error("another nvxd already serves %s", dir);
        else
            log_error("cannot lock %s: %s", path, strerror(errno));
        r = -EBUSY;
        goto out;
    }
    int created = 0;
    r = nvx_identity_load(dir, &ident, &created);
    if (r < 0) {
        log_error_errno(r, "cannot load the node key %s/%s", dir, NVX_IDENTITY_FILE);
        goto out;
    }
    d.loop = uv_default_loop();
    r = tp_tcp_net_new(d.loop, NULL, &net);
    if (r < 0)
        goto out;
    peers = calloc(cfg->n_peers + 1, sizeof(*peers));
    if (!peers) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_peers; i++)
        peers[i] = cfg->peers[i];
    char listen[NVX_CONFIG_VALUE_MAX];
    r = listen_resolve(cfg->listen, listen);
    if (r < 0)
        goto out;
    nvx_node_opts no = {
        .loop = d.loop,
        .net = net,
        .store = store,
        .identity = ident,
        .listen = strcmp(listen, "none") == 0 ? NULL : listen,
        .peers = peers,
        .n_peers = cfg->n_peers,
        .max_peers = cfg->max_peers,
        .peer_max_requests = cfg->peer_max_requests,
        .peer_max_bytes = cfg->peer_max_bytes,
        .upload_rate = cfg->upload_rate,
        .download_rate = cfg->download_rate,
        .agent = "nvxd/" NVX_VERSION,
        .no_relay = !cfg->relay,
        .serve = cfg->serve,
        .fetched = on_fetched,
        .arg = &d,
    };
#ifdef NVX_TEST_HOOKS
    const char *cs = getenv("NVX_TEST_CORRUPT_SERVE");
    no.corrupt_serve = cs && strcmp(cs, "1") == 0;
    const char *dl = getenv("NVX_TEST_SERVE_DELAY_MS");
    no.serve_delay_ms = dl ? (unsigned)strtoul(dl, NULL, 10) % 10000 : 0;
    const char *pd = getenv("NVX_TEST_PUT_DELAY_MS");
    no.put_delay_ms = pd ? (unsigned)strtoul(pd, NULL, 10) % 10000 : 0;
    if (no.corrupt_serve)
        log_warn("test hook: corrupting every chunk served (NVX_TEST_CORRUPT_SERVE=1)");
#endif
    r = nvx_node_new(&no, &d.node);
    if (r < 0) {
        log_error_errno(r, "cannot listen on %s", cfg->listen);
        goto out;
    }
    if (cfg->dht)
        d.dht =
            start_dht(cfg, d.loop,
                      nvx_node_listen_addr(d.node)[0] ? nvx_node_listen_addr(d.node) : NULL, dir);
    nvx_mesh_opts mo = {
        .loop = d.loop,
        .node = d.node,
        .identity = ident,
        .store = store,
        .discovery = cfg->discovery,
        .dht = d.dht,
        .no_relay = !cfg->relay,
    };
#ifdef NVX_TEST_HOOKS
    const char *np = getenv("NVX_TEST_NO_PEX_DIAL");
    mo.no_pex_dial = np && strcmp(np, "1") == 0;
#endif
    r = nvx_mesh_new(&mo, &d.mesh);
    if (r < 0)
        log_warn_errno(r, "gossip is off");
    start_natmap(&d, cfg);
    if (d.dht && d.mesh) {
        nvx_dhtrelay_opts ro = {
            .loop = d.loop,
            .dht = d.dht,
            .node = d.node,
            .mesh = d.mesh,
            .natmap = d.natmap,
            .relay = cfg->relay,
        };
        r = nvx_dhtrelay_new(&ro, &d.relay);
        if (r < 0)
            log_warn_errno(r, "no relays for connection reversal through the DHT");
    }
    snprintf(path, sizeof(path), "%s/%s", dir, PROTO_CTL_SOCKET_NAME);
    nvx_ctl_opts co = {
        .loop = d.loop,
        .node = d.node,
        .store = store,
        .path = path,
        .agent = "nvxd/" NVX_VERSION,
        .on_shutdown = on_ctl_shutdown,
        .arg = &d,
        .mesh = d.mesh,
        .natmap = d.natmap,
        .group_set = cfg->control_group[0] != '\0',
        .group = group,
        .dht = d.dht,
        .state_dir = dir,
        .relay = d.relay,
    };
    r = nvx_ctl_new(&co, &d.ctl);
    if (r < 0) {
        log_error_errno(r, "cannot open the control socket %s", path);
        nvx_node_stop(d.node, NULL, NULL);
        uv_run(d.loop, UV_RUN_NOWAIT);
        nvx_dhtrelay_close(d.relay);
        d.relay = NULL;
        nvx_mesh_close(d.mesh, NULL, NULL);
        d.mesh = NULL;
        nvx_dhtuv_close(d.dht, NULL, NULL);
        d.dht = NULL;
        nvx_natmap_close(d.natmap, NULL, NULL);
        d.natmap = NULL;
        uv_run(d.loop, UV_RUN_DEFAULT);
        goto out;
    }
    if (strcmp(cfg->http, "off") != 0) {
        nvx_api_opts ao = {
            .loop = d.loop,
            .store = store,
            .addr = cfg->http,
            .version = NVX_VERSION,
            .require_trusted = cfg->require_trusted || cas_run_policy_env(),
            .node = { api_status, api_pull, api_pull_cancel, &d },
        };
        d.pull_env = (nvx_pull_env){
            .loop = d.loop, .node = d.node, .store = store, .dhtf = nvx_ctl_dhtfetch(d.ctl)
        };
#ifdef NVX_TEST_HOOKS
        const char *ht = getenv("NVX_TEST_HTTP_TIMEOUT_MS");
        if (ht)
            ao.head_timeout_ms = ao.body_timeout_ms = ao.idle_timeout_ms =
                (unsigned)strtoul(ht, NULL, 10) % 600000;
        const char *gd = getenv("NVX_TEST_GEN_DELAY_MS");
        if (gd)
            ao.gen_token_delay_ms = (unsigned)strtoul(gd, NULL, 10) % 10000;
#endif
        r = nvx_api_new(&ao, &d.api);
        if (r < 0) /* the node works without it: say so and go on */
            log_warn_errno(r, "no HTTP API: cannot listen on %s", cfg->http);
        r = 0;
    }
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(nvx_node_id(d.node), hex);
    log_info("node %s%s", hex, created ? " (new key)" : "");
    log_info("store %s, control socket %s", dir, path);
    if (cfg->control_group[0])
        log_info("members of group %s may use the control socket (mode 0660)", cfg->control_group);
    log_info("serve = %s (what peers may fetch)", nvx_serve_policy_name(cfg->serve));
    if (nvx_node_listen_addr(d.node)[0])
        log_info("listening on %s", nvx_node_listen_addr(d.node));
    if (d.api)
        log_info("HTTP API on http://%s%s", nvx_api_addr(d.api),
                 strncmp(nvx_api_addr(d.api), "127.", 4) == 0 ||
                         strncmp(nvx_api_addr(d.api), "[::1]", 5) == 0
                     ? ""
                     : " (not the loopback: every host that reaches it may use it)");
    r = uv_run(d.loop, UV_RUN_DEFAULT);
    r = 0;
    log_info("stopped");
out:
    if (d.node) {
        nvx_node_free(d.node);
        d.node = NULL;
    }
    if (net && tp_net_free(net) < 0)
        log_warn("transport still busy at exit");
    if (d.loop)
        uv_loop_close(d.loop);
    free(peers);
    proto_identity_free(ident);
    cas_store_free(store);
    if (lock_fd >= 0)
        close(lock_fd);
    return r < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    nvx_config cfg;
    char err[NVX_CONFIG_ERR_LEN];
    signal(SIGPIPE, SIG_IGN);
    nvx_config_defaults(&cfg);
    int r = nvx_config_args(&cfg, argc, argv, err);
    if (r < 0) {
        fprintf(stderr, "nvxd: %s\n", err);
        return 2;
    }
    if (r == NVX_CONFIG_HELP) {
        fputs(nvx_config_usage, stdout);
        return 0;
    }
    if (r == NVX_CONFIG_VERSION) {
        puts("nvxd " NVX_VERSION);
        return 0;
    }
    nvx_log_set_level(cfg.log_level);
    /* Hashing, reads, writes and fdatasync share libuv's pool: 4 threads
     * (the default) leave too few free while commits wait on the disk. */
    if (!getenv("UV_THREADPOOL_SIZE"))
        setenv("UV_THREADPOOL_SIZE", NVX_POOL_THREADS, 0);
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    /* glibc gives each pool thread an arena that keeps what chunk buffers
     * freed in it; two arenas held a seeder's peak RSS down (serving four
     * peers: see tests/bench/bench-net.sh part e). Frame and chunk buffers
     * (up to 256 KiB) come from the heap and stay there while frames flow:
     * returning them to the kernel after each burst and faulting them in
     * again cost about 5% of a fetch. The node trims when traffic stops. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
    if (!getenv("MALLOC_MMAP_THRESHOLD_"))
        mallopt(M_MMAP_THRESHOLD, 4 << 20);
    if (!getenv("MALLOC_TRIM_THRESHOLD_"))
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
    setvbuf(stderr, NULL, _IOLBF, 0);
    return run(&cfg);
}
