/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_DHT_FETCH_H
#define NVX_DAEMON_DHT_FETCH_H
/*
 * What fetches and publishes ask of the DHT (daemon/dht-uv.h), bounded
 * because every answer comes from strangers:
 *
 * - Providers: a fetch that gossip finds no provider for looks the model
 *   up on the DHT at once, one that gossip names providers for a few
 *   seconds later (they may be unreachable), and again with backoff (NVX_DHTFETCH_RETRY_MS
 * doubling, NVX_DHTFETCH_TRIES lookups at most) until the fetch ends. Each address found is dialed
 * once (NVX_DHTFETCH_DIALS_MAX per model); the session's handshake says who answered, nothing from
 * the DHT is trusted.
 * - Names (BEP 44; proto/PROTOCOL.md, "Names on the DHT"): `nvx publish`
 *   hands over a record and the publisher's BEP 44 signature; it is put,
 *   re-put by the DHT node while nvxd runs, and kept in
 *   STORE/NVX_DHTFETCH_NAMES_FILE to be put again after a restart. A
 *   fetch of PUBLISHER/NAME with no stored record gets the item (publisher
 *   key, salt = name): the DHT core verified its BEP 44 signature; here
 *   the value must decode to a valid record of that key, name and
 *   sequence. At most NVX_DHTFETCH_GETS_MAX gets at once, and one per
 *   (key, name) every NVX_DHTFETCH_NAME_EVERY_MS.
 *
 * Loop thread only.
 */
#include <stdint.h>

#include <uv.h>

#include "daemon/dht-relay.h"
#include "daemon/dht-uv.h"
#include "daemon/node.h"
#include "libcas/namerec.h"

enum {
    NVX_DHTFETCH_WANTS_MAX = 32,      /* models looked up for at once */
    NVX_DHTFETCH_DIALS_MAX = 16,      /* provider addresses dialed per model */
    NVX_DHTFETCH_TRIES = 6,           /* lookups per fetch */
    NVX_DHTFETCH_RETRY_MS = 2 * 1000, /* then 4, 8, 16, 32 s */
    NVX_DHTFETCH_GOSSIP_FIRST_MS = 5 * 1000,
    NVX_DHTFETCH_GETS_MAX = 8, /* BEP 44 gets in flight */
    NVX_DHTFETCH_NAME_EVERY_MS = 10 * 1000,
    NVX_DHTFETCH_RECENT = 64, /* (key, name) gets remembered for that rate */
    NVX_DHTFETCH_NAMES_MAX = NVX_DHT_OWN_ITEMS_MAX,
};

#define NVX_DHTFETCH_NAMES_FILE "dht-names.dat"

typedef struct nvx_dhtfetch nvx_dhtfetch;

typedef struct nvx_dhtfetch_opts {
    uv_loop_t *loop;
    nvx_dhtuv *dht;
    nvx_node *node;        /* dials providers */
    nvx_dhtrelay *relay;   /* chases the ones we cannot dial (may be NULL) */
    const char *state_dir; /* the store: NVX_DHTFETCH_NAMES_FILE; NULL: not kept */
} nvx_dhtfetch_opts;

/* Starts; names kept from the last run are put again. Returns 0 and *ret
 * or -ENOMEM. */
int nvx_dhtfetch_new(const nvx_dhtfetch_opts *o, nvx_dhtfetch **ret);

/* Stops every lookup (name callbacks run with -ECANCELED) and frees f
 * (NULL is fine). Before the DHT closes. */
void nvx_dhtfetch_free(nvx_dhtfetch *f);

/* A fetch of model_id wants providers: look it up after delay_ms (0 when
 * gossip knows none, NVX_DHTFETCH_GOSSIP_FIRST_MS when it does) and again
 * with backoff until nvx_dhtfetch_unwant(). Returns 0, -ENOSPC. */
int nvx_dhtfetch_want(nvx_dhtfetch *f, const uint8_t model_id[static 32], uint32_t delay_ms);
void nvx_dhtfetch_unwant(nvx_dhtfetch *f, const uint8_t model_id[static 32]);

/* Puts rec (verified here) with the publisher's BEP 44 signature sig and
 * keeps it. Returns 0, -EBADMSG (the record or signature does not
 * verify), -EINVAL (sequence over INT64_MAX), -ENOSPC. */
int nvx_dhtfetch_publish(nvx_dhtfetch *f, const cas_namerec *rec,
                         const uint8_t sig[static CAS_SIGBYTES]);

/* Gets the record of (pk, name) from the DHT. cb runs once, later, with
 * 0 and the verified record (valid during the call), or -ENOENT (no
 * valid item), -ECANCELED. Returns 0, or -EBUSY (too many gets, or this
 * name was asked for less than NVX_DHTFETCH_NAME_EVERY_MS ago), -EINVAL,
 * -ENOMEM: then cb never runs. */
int nvx_dhtfetch_name(nvx_dhtfetch *f, const uint8_t pk[static CAS_PK_LEN], const char *name,
                      void (*cb)(void *arg, int r, const cas_namerec *rec), void *arg);

#endif
