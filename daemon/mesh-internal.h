/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_MESH_INTERNAL_H
#define NVX_DAEMON_MESH_INTERNAL_H
/*
 * Shared state of daemon/mesh.c (gossip, discovery, store scans) and
 * daemon/mesh-reverse.c (connection reversal on the wire). Loop thread
 * only. mesh-reverse.c never calls into mesh.c.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "daemon/discovery.h"
#include "daemon/mesh.h"
#include "daemon/reverse.h"

struct nvx_mesh {
    nvx_mesh_opts o;
    nvx_gossip *g;
    nvx_disc *disc;
    uv_timer_t timer;
    int open_handles; /* timer, discovery */
    unsigned jobs;
    bool closing;
    bool scanning;
    uint64_t next_scan_ms;
    uint8_t (*provided)[32]; /* sorted */
    size_t n_provided;
    size_t n_names;   /* name records in the store (last scan, plus stored since) */
    nvx_reverse *rev; /* connection reversal's limits (daemon/reverse.h) */
    struct want {
        uint8_t model[32];
        uint64_t until_ms; /* 0: free */
    } wants[NVX_MESH_WANTS_MAX];
    void (*done)(void *arg);
    void *done_arg;
};

/* Rate limits run on the loop's monotonic clock (a wall clock step must not
 * refill or drain them). */
static inline uint64_t
mono_ms(const nvx_mesh *m)
{
    return uv_now(m->o.loop);
}

/* The address in the peer's HELLO at index i, with an unspecified host
 * (0.0.0.0, [::]) replaced by the host the session comes from. same_host:
 * only an address whose host is that host (what a relay may hand on, so
 * that no peer can point others at a third party). Returns false when
 * there is none. */
bool nvx__mesh_hello_addr(nvx_peer *p, size_t i, bool same_host, char *out, size_t cap);

/* REVERSE_REQ, REVERSE or REVERSE_AT from session p. */
void nvx__mesh_on_reverse(nvx_mesh *m, nvx_peer *p, const proto_msg *msg);

/* Sends rq (REVERSE_REQ or REVERSE_AT) to at most NVX_REVERSE_RELAYS_MAX
 * sessions whose HELLO has the REVERSE feature: first those at one of
 * prefer[0..n_prefer) (the relays the target would choose), then any.
 * Never to the target itself (REVERSE_REQ). Returns how many. */
unsigned nvx__mesh_ask_relays(nvx_mesh *m, const proto_msg *rq, const char *const *prefer,
                              size_t n_prefer);

#endif
