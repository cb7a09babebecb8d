/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_REACH_H
#define NVX_DAEMON_REACH_H
/*
 * How peers outside can reach this node, for `nvx status` (the control
 * STATUS answer's REACH nest, proto/control.h): through a port the router
 * maps (daemon/natmap.h), at a public address the node listens on, by
 * connection reversal through the relays it keeps sessions with
 * (daemon/reverse.h), or not at all.
 *
 * Loop thread (nvx_reach_public_addr reads the interface list).
 */
#include <stdbool.h>
#include <stddef.h>

#include "proto/control.h"

/* True for an IPv4 address no one outside its network can dial: RFC 1918,
 * loopback, link-local, shared address space (RFC 6598), unspecified. */
bool nvx_reach_ipv4_private(const char *host);

/* A public address the listener at listen ("HOST:PORT") answers on, as
 * "HOST:PORT" in out[cap]: its host when public, else for an unspecified
 * host the first public IPv4 address of an interface. False when none. */
bool nvx_reach_public_addr(const char *listen, char *out, size_t cap);

enum {
    NVX_REACH_ADDR_LEN = 64,
    NVX_REACH_LOCAL_MAX = 3, /* interface addresses listed for 0.0.0.0 */
};

/* The addresses a listener at listen answers on: listen itself, or for an
 * unspecified IPv4 host (0.0.0.0) up to max of the interfaces' non-loopback
 * IPv4 addresses with its port. Returns how many were written to out. */
size_t nvx_reach_local_addrs(const char *listen, char (*out)[NVX_REACH_ADDR_LEN], size_t max);

/*
 * The verdict and its one-line description in msg[cap]. listen: the
 * listening address ("" when not listening); ext and how: the router's
 * mapping ("" and "none" when there is none); public: from
 * nvx_reach_public_addr ("" when none); relays: sessions that relay
 * connection reversal to us. Returns enum proto_ctl_reach.
 */
int nvx_reach_describe(const char *listen, const char *ext, const char *how, const char *public,
                       unsigned relays, char *msg, size_t cap);

#endif
