/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_PEX_H
#define NVX_DAEMON_PEX_H
/*
 * The peer-exchange address book of gossip (daemon/gossip.c): one address
 * per node id, each with where it came from. Sans-I/O, pure.
 *
 * Why the source matters: a PEERS message is a third party's word, and
 * anyone can send one. So an address is replaced only by one from an equal
 * or better source (a gossiped address never overwrites one we dialed
 * ourselves, or one the node announced in its own signed HELLO), and
 * gossiped addresses must be numeric "host:port" (IPv4, or [IPv6]), so
 * that no PEERS message makes the node resolve a name: a lookup leaks that
 * we heard of it and lets the sender steer us to any host.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/message.h"

/* Where an address came from, worst first. */
enum nvx_pex_source {
    NVX_PEX_GOSSIP = 0, /* a PEERS message: dialed only pinned to its node id */
    NVX_PEX_CLAIMED,    /* the node's own HELLO, or LAN discovery */
    NVX_PEX_FIRST_HAND, /* configured, or a session we dialed and that proved the id */
    _NVX_PEX_SOURCE_MAX,
};

typedef struct nvx_pex nvx_pex;

/* An address book of at most max entries (>= 1). Returns 0, -EINVAL,
 * -ENOMEM. */
int nvx_pex_new(size_t max, nvx_pex **ret);
void nvx_pex_free(nvx_pex *x);

/* True when addr (len bytes, not NUL-terminated) is a numeric
 * "A.B.C.D:PORT" or "[IPv6]:PORT", optionally after "tcp://". */
bool nvx_pex_addr_numeric(const uint8_t *addr, size_t len);

/* Remembers addr (1..PROTO_ADDR_MAX printable bytes) for node from
 * source. Keeps the known address when it came from a better source.
 * When full, the least recently seen entry of the worst source makes room.
 * Returns 1 when the address is news (new or changed), 0 when not,
 * -EINVAL (bad address), -EADDRNOTAVAIL (gossiped, not numeric), -EPERM
 * (a better source said otherwise). */
int nvx_pex_put(nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const uint8_t *addr,
                size_t len, int source, uint64_t now_ms);

/* Forgets node's address if it is still addr and was only gossiped (a
 * pinned dial found another key there). Returns 0 or -ENOENT. */
int nvx_pex_forget(nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const char *addr);

/* node's address and its source: returns the source (>= 0) and points
 * *ret_addr at the NUL-terminated address (valid until the next put or
 * forget), or -ENOENT. */
int nvx_pex_get(const nvx_pex *x, const uint8_t node[static PROTO_ID_LEN], const char **ret_addr);

/* The entry at i (0 <= i < nvx_pex_count()): node id and address, valid
 * until the next change. */
size_t nvx_pex_count(const nvx_pex *x);
void nvx_pex_at(const nvx_pex *x, size_t i, const uint8_t **ret_node, const char **ret_addr);

#endif
