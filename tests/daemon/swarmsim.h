/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_SWARMSIM_H
#define NVX_TESTS_SWARMSIM_H
/*
 * The simulated swarm of tests/daemon/test-swarm-sim.c (see there for the
 * world it models): types, the network (swarmsim-net.c: events, sessions,
 * capped uplinks) and the nodes (swarmsim-node.c: the transfer engine's
 * actions, serving, faults, the event handler).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/recip.h"
#include "daemon/superseed.h"
#include "daemon/xfer.h"

enum {
    SIM_NODES = 200,
    SIM_DEGREE = 8, /* random fetcher neighbours each (both ways) */
    SIM_CHUNKS = 128,
    SIM_CHUNK = 8 * 1024,    /* a 1 MiB model */
    SIM_MANIFEST = 640,      /* bytes: as nvxd's, ~0.06% of the model */
    SIM_PIECE = 16 * 1024,   /* REQUEST length limit of a link */
    SIM_UPLINK = 128 * 1024, /* bytes/s per node */
    SIM_LATENCY_MS = 10,     /* one way */
    SIM_RTO_MS = 200,        /* a lost segment costs this */
    SIM_LOSS_PPM = 20000,    /* 2% of messages */
    SIM_HEADER = 40,         /* bytes a message costs besides its payload */
    SIM_TICK_MS = 250,
    SIM_LIMIT_MS = 600 * 1000, /* sim time: a run that has not ended fails */
    SIM_CHURN_PCT = 20,
    /* Reciprocation's intervals scaled to this transfer (BitTorrent's 10 s
     * and 30 s against a swarm that lasts minutes; this one lasts ~14 s). */
    SIM_RECIP_RANK_MS = 1000,
    SIM_RECIP_OPTIMISTIC_MS = 3000,
    SIM_RECIP_NEW_MS = 6000,
};

/* Seeds per scenario: three scenarios, ~0.2 s a seed in a plain build;
 * sanitizers run fewer (ten times slower). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SIM_SEEDS 12
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIM_SEEDS 12
#endif
#endif
#ifndef SIM_SEEDS
#define SIM_SEEDS 80
#endif

#define US(ms) ((uint64_t)(ms)*1000u)

typedef struct sim sim;
typedef struct snode snode;
typedef struct slink slink;

/* A message in flight, compact (a proto_msg is 8 KiB). */
typedef struct smsg {
    struct smsg *next;
    uint8_t type, what, kind;
    uint32_t req_id, chunk, offset, length, total;
    uint8_t bits[SIM_CHUNKS / 8]; /* HAVE/WANT BITMAP */
    proto_range *ranges;          /* HAVE RANGES (owned) */
    size_t n_ranges;
    const uint8_t *bytes; /* DATA, MANIFEST: into the sim's content */
    uint32_t len;
} smsg;

/* One end of a session: the node's handle for the peer at the other end. */
typedef struct send_ {
    slink *l;
    int side; /* this end belongs to l->n[side] */
    bool open;
    uint32_t next_req;
    smsg *q, **q_tail;   /* waiting for the uplink */
    smsg *rq, **rq_tail; /* REQUESTs to serve: DATA is made when the uplink
                          * takes it, as serve.c reads when the links drain,
                          * so a CANCEL still removes what waits */
    nvx_ss_peer *ssp;    /* super-seeding state, when we serve a complete model */
    size_t n_rq;         /* REQUESTs in rq */
    nvx_recip_peer *rp;  /* reciprocation state of the peer (daemon/recip.h) */
} send_;

struct slink {
    slink *next;
    snode *n[2];
    send_ end[2];
    uint64_t last_arrival_us[2]; /* per direction: to n[i] */
};

struct snode {
    sim *s;
    int idx;
    bool alive, seeder, complete, has_manifest, gone_for_good;
    bool x_ended; /* the engine said ended: fetch_settle frees it */
    unsigned gen; /* bumps at death: stale events are dropped */
    uint8_t stored[SIM_CHUNKS / 8];
    uint8_t store_count[SIM_CHUNKS];
    nvx_xfer *x;
    send_ **ends;
    size_t n_ends, cap_ends, rr;
    bool tx_busy;
    int *nbrs;
    size_t n_nbrs;
    uint64_t disk_stall_from_us, disk_stall_until_us, disk_full_from_us, disk_full_until_us;
    uint64_t data_up, data_down; /* DATA payload bytes */
    uint64_t done_us;
    unsigned restarts;
    nvx_ss *ss;                    /* super-seeding of the complete model */
    bool silent;                   /* hostile: claims every chunk (HAVE ALL), sends nothing */
    uint8_t banned[SIM_NODES / 8]; /* addresses this node refuses */
    bool freerider;                /* fetches, announces nothing, serves nothing */
    nvx_recip *rc;                 /* reciprocation, while alive */
};

enum {
    EV_DELIVER,
    EV_CLOSE,
    EV_TX_DONE,
    EV_TICK,
    EV_OPEN,
    EV_STORE,
    EV_COMMIT,
    EV_FINISH,
    EV_DIE,
    EV_REVIVE,
    EV_CUT,
    EV_HEAL,
    EV_RESTART,
    EV_RECONNECT
};

typedef struct sev {
    uint64_t t, seq;
    int kind;
    snode *n;
    unsigned gen;
    send_ *end; /* DELIVER/CLOSE: the receiving end; TX_DONE: the sending end */
    smsg *m;
    int res;
    uint8_t *mbuf; /* OPEN */
    uint32_t mlen;
    nvx_xfer_chunk *c[NVX_XFER_PUT_BATCH];
    unsigned nc;
} sev;

struct sim {
    uint64_t seed, rng, now_us, seq;
    sev **heap;
    size_t n_heap, cap_heap;
    int n_nodes;
    snode nodes[SIM_NODES];
    slink *links;
    uint8_t content[SIM_CHUNKS * SIM_CHUNK];
    uint8_t manifest[SIM_MANIFEST];
    uint8_t id[32];
    bool partitioned;
    uint8_t cut[SIM_NODES]; /* in the partitioned group */
    bool seeder_leaves;     /* kill the seeder once each chunk left it */
    uint8_t seeder_sent[SIM_CHUNKS / 8];
    unsigned n_seeder_sent;
    unsigned drops, punished;
    unsigned waiting; /* nodes that must still complete */
    bool recip_off;   /* serve everyone round-robin (the control run) */
    char fail[256];
};

uint64_t rnd(sim *s, uint64_t n);
bool bit(const uint8_t *b, uint32_t i);
void fail_run(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool ev_less(const sev *a, const sev *b);
sev *ev_new(sim *s, uint64_t t, int kind, snode *n);
sev *ev_pop(sim *s);
void msg_free(smsg *m);
void ev_free(sev *e);
snode *peer_of(send_ *e);
void link_send(snode *n, send_ *e, smsg *m);
uint32_t msg_size(const smsg *m);
void tx_next(snode *n);
void tx_done(sim *s, sev *ev);
void end_remove(snode *n, send_ *e);
void end_close(sim *s, send_ *e, bool tell_other);
void peer_up(snode *n, send_ *e);
bool linked(snode *a, snode *b);
void ends_add(snode *n, send_ *e);
void connect_nodes(sim *s, snode *a, snode *b);
void connect_all(sim *s, snode *n);
smsg *msg_from(const proto_msg *pm);
void op_send(void *arg, void *peer, const proto_msg *m);
void op_flush(void *arg, void *peer);
uint32_t op_req_ids(void *arg, void *peer, uint32_t n);
void op_open(void *arg, uint8_t *manifest, uint32_t len);
void op_store(void *arg, nvx_xfer_chunk **c, unsigned nc);
void op_commit(void *arg);
void op_finish(void *arg);
void op_drop_peer(void *arg, void *peer, const char *why);
void op_bad_peer(void *arg, const uint8_t id[32], const char *addr, const char *what);
void op_ended(void *arg);
void fetch_start(sim *s, snode *n);
void fetch_settle(sim *s, snode *n);
smsg *msg_new(uint8_t type);
void ss_reveal(snode *n, send_ *e, bool answer);
void serve_want(sim *s, snode *n, send_ *e);
smsg *data_for(snode *n, send_ *e);
void serve_request(snode *n, send_ *e, const smsg *r);
void serve_cancel(snode *n, send_ *e, const smsg *c);
nvx_recip_peer *end_rp(snode *n, send_ *e);
void rq_count(snode *n, send_ *e, int delta);
void serve_manifest(snode *n, send_ *e, const smsg *r);
void deliver(sim *s, snode *n, send_ *e, const smsg *m);
void node_die(sim *s, snode *n);
void node_start(sim *s, snode *n);
void cut(sim *s);
void heal(sim *s);
void on_store(sim *s, snode *n, sev *ev);
void on_open(sim *s, snode *n, sev *ev);
void on_tick(sim *s, snode *n);
void handle(sim *s, sev *ev);

#endif
