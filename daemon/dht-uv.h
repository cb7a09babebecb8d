/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DHT_UV_H
#define NVX_DAEMON_DHT_UV_H
/*
 * The DHT node (daemon/dht.h) on the loop: one UDP socket (IPv4) bound to
 * the node's listen host, a 250 ms tick, the bootstrap list resolved
 * (numeric hosts directly; names through getaddrinfo on the pool, only
 * when the list names them), and the routing table saved to STORE/dht.dat
 * every NVX_DHTUV_SAVE_MS and at close, read back at start so that a
 * restart joins through the nodes it knew.
 *
 * Providers (proto/PROTOCOL.md, "Providers on the DHT"): a model is
 * announced under nvx_dht_provider_key(model id) with the node's nvx TCP
 * port (announce_peer, implied_port 0), not the DHT's port; when the router
 * maps the TCP port to another external port (daemon/natmap.h), that one
 * (the address is the announce's UDP source: the router's).
 *
 * Loop thread only. nvx_dhtuv_close() before the loop ends.
 */
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/dht.h"

enum {
    NVX_DHTUV_TICK_MS = 250,
    NVX_DHTUV_SAVE_MS = 10 * 60 * 1000,
    NVX_DHTUV_ADDR_MAX = 64, /* "HOST:PORT" of a provider, NUL included */
};

#define NVX_DHTUV_STATE_FILE "dht.dat"

typedef struct nvx_dhtuv nvx_dhtuv;

typedef struct nvx_dhtuv_opts {
    uv_loop_t *loop;
    const char *bind_host;  /* numeric IPv4 ("0.0.0.0", "127.0.0.1"); NULL: 0.0.0.0 */
    uint16_t port;          /* UDP; 0: ephemeral */
    const char *bootstrap;  /* "HOST:PORT,..."; NULL or "none": none */
    const char *state_dir;  /* where dht.dat lives (the store); NULL: not saved */
    uint16_t announce_port; /* the nvx TCP port announced for providers; 0: none */
    bool enforce_node_id;   /* BEP 42 (off for loopback tests of several nodes) */
} nvx_dhtuv_opts;

/* Binds the socket and starts the node. Returns 0 and *ret, or a negative
 * errno (-EADDRINUSE, -EINVAL for a bad bind_host, -ENOMEM). */
int nvx_dhtuv_new(const nvx_dhtuv_opts *opts, nvx_dhtuv **ret);

/* Saves the table, closes the socket and timer, frees d, then calls
 * done(arg) (may be NULL) from the loop. */
void nvx_dhtuv_close(nvx_dhtuv *d, void (*done)(void *arg), void *arg);

/* Announces (and keeps announcing) that this node provides model_id, or
 * stops. Returns 0 or a negative errno. */
int nvx_dhtuv_provide(nvx_dhtuv *d, const uint8_t model_id[static 32]);
void nvx_dhtuv_unprovide(nvx_dhtuv *d, const uint8_t model_id[static 32]);

/* The same for any 20-byte key (nvx_dht_relay_key()). */
int nvx_dhtuv_announce(nvx_dhtuv *d, const uint8_t key[static 20]);
void nvx_dhtuv_unannounce(nvx_dhtuv *d, const uint8_t key[static 20]);

/* nvx_dht_store_self() for addr ("A.B.C.D:PORT"). Returns 0, -EINVAL,
 * -ENOSPC. */
int nvx_dhtuv_store_self(nvx_dhtuv *d, const uint8_t key[static 20], const char *addr);

/* The router maps the nvx TCP port to external port ext_port (0: no
 * mapping): announces carry it from now on, and go out again at once. */
void nvx_dhtuv_set_mapped_port(nvx_dhtuv *d, uint16_t ext_port);

/* Looks up providers of model_id. cb runs for each new provider address
 * ("a.b.c.d:port", addr non-NULL) and once at the end (addr NULL). Returns
 * a handle (> 0) for nvx_dhtuv_cancel() or a negative errno. */
int nvx_dhtuv_find_providers(nvx_dhtuv *d, const uint8_t model_id[static 32],
                             void (*cb)(void *arg, const char *addr), void *arg);

/* The same for the peers announced under any 20-byte key. */
int nvx_dhtuv_find(nvx_dhtuv *d, const uint8_t key[static 20],
                   void (*cb)(void *arg, const char *addr), void *arg);

/* Starts a BEP 44 get (item: k and salt) or put (item signed). cb as in
 * daemon/dht.h. Returns a handle or a negative errno. */
int nvx_dhtuv_lookup(nvx_dhtuv *d, nvx_dht_lookup_kind kind, const nvx_dht_item *item,
                     nvx_dht_cb cb, void *arg);

/* Keeps item on the DHT (nvx_dht_put()). */
int nvx_dhtuv_put(nvx_dhtuv *d, const nvx_dht_item *item);

void nvx_dhtuv_cancel(nvx_dhtuv *d, int handle);

/* The core (stats, id); valid until close. */
const nvx_dht *nvx_dhtuv_core(const nvx_dhtuv *d);

/* The bound UDP port. */
uint16_t nvx_dhtuv_port(const nvx_dhtuv *d);

#endif
