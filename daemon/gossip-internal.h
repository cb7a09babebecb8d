/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_GOSSIP_INTERNAL_H
#define NVX_DAEMON_GOSSIP_INTERNAL_H
/*
 * Shared state of daemon/gossip.c (sessions, messages, sync) and
 * gossip-table.c (the record table). Sans-I/O like the rest of gossip: no
 * clock, no sockets; the caller's thread owns a nvx_gossip.
 *
 * Calls go one way: gossip.c uses the table; the table reads the session
 * array (nvx__gossip_session_find, inline here) but calls nothing in
 * gossip.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/gossip.h"
#include "daemon/pex.h"
#include "libcas/hash.h"
#include "libcas/namerec.h"
#include "proto/message.h"

#define NO_EXPIRY UINT64_MAX

typedef struct entry {
    uint8_t key[CAS_HASH_LEN]; /* slot key */
    uint8_t kind;              /* PROTO_RECORD_PROVIDER / PROTO_RECORD_NAME */
    bool own;
    bool can_send;     /* hops left for the next receiver (send_hops) */
    uint8_t send_hops; /* hops value we put on the wire */
    uint64_t expires_ms;
    uint64_t next_announce_ms; /* own provider records */
    uint64_t origin;           /* the live session it came from; 0: none (gone, local) */
    uint8_t node[PROTO_ID_LEN];
    uint8_t model[PROTO_ID_LEN];
    proto_provider_record prov; /* provider records: as signed (hops unused) */
    cas_namerec *name;          /* name records: malloc'd */
} entry;

typedef struct session {
    uint64_t id;
    uint8_t node[PROTO_ID_LEN];
    uint64_t tokens; /* thousandths of a record */
    uint64_t refill_ms;
    bool pex_rx_seen;
    uint64_t pex_rx_ms;
    uint64_t pex_tx_ms;
    size_t held; /* table entries whose origin this session is */
} session;

/* A record on its way out: a copy, so that table changes while a batch is
 * being collected cannot change it. */
typedef struct out_rec {
    uint8_t kind;
    uint8_t hops;
    uint32_t ttl_s;             /* name records */
    proto_provider_record prov; /* provider records (hops set on sending) */
    cas_namerec name;
} out_rec;

typedef struct batch {
    size_t n;
    out_rec r[PROTO_ANNOUNCE_MAX];
} batch;

struct nvx_gossip {
    nvx_gossip_cfg cfg;
    entry *e;
    size_t n, cap;
    uint32_t *index; /* entry index + 1, 0 = empty */
    size_t index_cap;
    bool dirty; /* an entry was reused in place: the index needs a rebuild */
    session *s;
    size_t n_s, cap_s;
    nvx_pex *pex; /* peer-exchange addresses (daemon/pex.h) */
    nvx_gossip_stats st;
    proto_msg msg;              /* encode scratch (large) */
    uint8_t buf[PROTO_MSG_MAX]; /* encoded body */
    batch fwd;                  /* records accepted from one ANNOUNCE */
    batch out;                  /* batch being sent */
    uint8_t proofs[PROTO_ANNOUNCE_MAX][CAS_NAMEREC_PROOF_LEN];
};

static inline session *
nvx__gossip_session_find(nvx_gossip *g, uint64_t id)
{
    for (size_t i = 0; i < g->n_s; i++)
        if (g->s[i].id == id)
            return &g->s[i];
    return NULL;
}

/* ---- gossip-table.c: one slot per (node, model) provider record and per
 * (publisher key, name) name record; an array plus an open-addressing
 * index by slot key. Entry pointers stay valid until the next slot_new,
 * slot_commit or sweep. */

/* Slot keys: 'P' || node || model, and 'N' || public key || name. */
void nvx__gossip_provider_key(const uint8_t node[PROTO_ID_LEN], const uint8_t model[PROTO_ID_LEN],
                              uint8_t ret[CAS_HASH_LEN]);
void nvx__gossip_name_key(const cas_namerec *rec, uint8_t ret[CAS_HASH_LEN]);
/* Rebuilds the index for want entries (0, -ENOMEM). */
int nvx__gossip_index_rebuild(nvx_gossip *g, size_t want);
/* The entry with slot key key, or NULL. */
entry *nvx__gossip_lookup(const nvx_gossip *g, const uint8_t key[CAS_HASH_LEN]);
void nvx__gossip_entry_clear(entry *e);
void nvx__gossip_set_origin(nvx_gossip *g, entry *e, session *from);
void nvx__gossip_entry_drop(nvx_gossip *g, entry *e);
void nvx__gossip_sweep(nvx_gossip *g, bool (*drop)(const entry *, const void *), const void *arg);
entry *nvx__gossip_slot_new(nvx_gossip *g, session *from);
int nvx__gossip_slot_commit(nvx_gossip *g);
int nvx__gossip_slot_insert(nvx_gossip *g, entry *e);

#endif
