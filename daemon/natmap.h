/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_NATMAP_H
#define NVX_DAEMON_NATMAP_H
/*
 * Maps the node's listening TCP port on the home router, so peers on the
 * internet can dial it: UPnP-IGD first (Debian's libminiupnpc), NAT-PMP
 * (libnatpmp) when no IGD answers. Both libraries block (SSDP discovery,
 * SOAP over HTTP, UDP retries), so every step runs on the libuv thread
 * pool, one job at a time; results come back on the loop.
 *
 * Life of a mapping:
 * - start: discover the router, learn its external address, add a mapping
 *   external port -> our LAN address and port for NVX_NATMAP_LEASE_S (same
 *   external port first, a few random ones when that one is taken);
 * - renew: the same request again at half the granted lease (routers that
 *   grant only permanent mappings are renewed all the same, so a router
 *   that rebooted gets the mapping back);
 * - failure: retried after NVX_NATMAP_RETRY_MIN_S, doubling to
 *   NVX_NATMAP_RETRY_MAX_S (the router may come up later);
 * - nvx_natmap_close(): the mapping is deleted before done runs.
 *
 * Every change of the external address calls opts.changed on the loop
 * (the node then advertises it: nvx_node_set_ext_addr()).
 *
 * Discovery sends SSDP multicast out of every interface and NAT-PMP to the
 * default gateway: tests and benchmarks run nvxd with --no-upnp unless the
 * test built its own routers in network namespaces
 * (tests/daemon/netns-world.sh).
 *
 * Loop thread only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

enum nvx_natmap_limits {
    NVX_NATMAP_LEASE_S = 3600,   /* asked for; renewed at half what is granted */
    NVX_NATMAP_RENEW_MIN_S = 30, /* never renew more often */
    NVX_NATMAP_RETRY_MIN_S = 60,
    NVX_NATMAP_RETRY_MAX_S = 1800,
    NVX_NATMAP_DISCOVER_MS = 2000, /* SSDP answers waited for */
    NVX_NATMAP_NATPMP_MS = 2000,   /* NAT-PMP answer waited for (RFC 6886 retries cut short) */
    NVX_NATMAP_PORT_TRIES = 4,     /* external ports tried when ours is taken */
    NVX_NATMAP_ADDR_MAX = 64,      /* "255.255.255.255:65535" and room */
};

typedef enum nvx_natmap_how {
    NVX_NATMAP_NONE = 0,
    NVX_NATMAP_UPNP = 1,
    NVX_NATMAP_NATPMP = 2,
    _NVX_NATMAP_HOW_MAX,
} nvx_natmap_how;

typedef struct nvx_natmap nvx_natmap;

typedef struct nvx_natmap_opts {
    uv_loop_t *loop;
    uint16_t port;    /* the listening TCP port to map */
    uint32_t lease_s; /* 0: NVX_NATMAP_LEASE_S */
    /* The external address changed: "A.B.C.D:PORT", or "" when the mapping
     * was lost. Runs on the loop; may be NULL. */
    void (*changed)(void *arg, const char *ext_addr, nvx_natmap_how how);
    void *arg;
} nvx_natmap_opts;

/* Starts mapping (the first attempt is queued at once). Returns 0 and
 * *ret, -EINVAL (port 0), -ENOMEM. */
int nvx_natmap_new(const nvx_natmap_opts *opts, nvx_natmap **ret);

/* Waits for the running job, deletes the mapping (a bounded blocking call
 * on the pool), frees m, then calls done(arg) (may be NULL). NULL m: done
 * runs at once. */
void nvx_natmap_close(nvx_natmap *m, void (*done)(void *arg), void *arg);

/* How the port is mapped now and, when it is, the external address in
 * ext[cap] ("" otherwise). */
nvx_natmap_how nvx_natmap_state(const nvx_natmap *m, char *ext, size_t cap);

/* "upnp", "nat-pmp", "none". */
const char *nvx_natmap_how_name(nvx_natmap_how how);

#endif
