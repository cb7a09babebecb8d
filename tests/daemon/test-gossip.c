/* SPDX-License-Identifier: MIT */
/*
 * Gossip (daemon/gossip.c), sans-I/O: feed it session events, ANNOUNCE and
 * PEERS messages and time, and check what it asks to send, store and dial:
 * sync on connect, forwarding with hop counts, no echo to the sender,
 * de-duplication (loops, refreshes, stale and forged name records), expiry,
 * rate limits, peer exchange, and the table bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/gossip.h"
#include "libcas/namerec.h"
#include "proto/message.h"
#include "testutil.h"

enum {
    MAX_SENT = 4096
};

typedef struct sent {
    uint64_t peer;
    uint8_t type;
    uint8_t *body;
    size_t len;
} sent;

typedef struct harness {
    sent v[MAX_SENT];
    size_t n;
    int n_provider;
    int n_name;
    cas_namerec last_name;
    int n_dial;
    char last_dial[PROTO_ADDR_MAX + 1];
    nvx_gossip *g;
    proto_msg *msg; /* decode scratch */
} harness;

static int
h_send(void *ud, uint64_t peer, const proto_msg *m)
{
    harness *h = ud;
    assert_true(h->n < MAX_SENT);
    sent *s = &h->v[h->n++];
    s->peer = peer;
    s->type = m->type;
    s->body = malloc(PROTO_MSG_MAX);
    assert_int_equal(proto_msg_encode(m, s->body, PROTO_MSG_MAX, &s->len), 0);
    return 0;
}

static void
h_provider(void *ud, const uint8_t node[static PROTO_ID_LEN],
           const uint8_t model[static PROTO_ID_LEN], uint64_t expires_ms)
{
    (void)node;
    (void)model;
    (void)expires_ms;
    ((harness *)ud)->n_provider++;
}

static void
h_name(void *ud, const cas_namerec *rec)
{
    harness *h = ud;
    h->n_name++;
    h->last_name = *rec;
}

static void
h_dial(void *ud, const uint8_t node[static PROTO_ID_LEN], const char *addr)
{
    (void)node;
    harness *h = ud;
    h->n_dial++;
    snprintf(h->last_dial, sizeof(h->last_dial), "%s", addr);
}

static const nvx_gossip_ops ops = {
    .send = h_send, .provider = h_provider, .name = h_name, .dial = h_dial
};

/* Wall clock of the tests (gossip takes Unix milliseconds): 2026-01-01. */
#define T0    UINT64_C(1767225600000)
#define T(ms) (T0 + (uint64_t)(ms))
#define T0_S  (T0 / 1000)

static void
id_of(uint8_t id[PROTO_ID_LEN], uint8_t v)
{
    memset(id, v, PROTO_ID_LEN);
}

/* Node v's identity (seed v...v), made once. */
static proto_identity *idents[256];

static proto_identity *
ident(uint8_t v)
{
    if (!idents[v]) {
        uint8_t seed[PROTO_SEED_LEN];
        memset(seed, v, sizeof(seed));
        assert_int_equal(proto_identity_from_seed(seed, &idents[v]), 0);
    }
    return idents[v];
}

/* Node id of node v (0: all zero, an invalid id). */
static void
node_of(uint8_t id[PROTO_ID_LEN], uint8_t v)
{
    if (v == 0)
        memset(id, 0, PROTO_ID_LEN);
    else
        memcpy(id, proto_identity_node_id(ident(v)), PROTO_ID_LEN);
}

static void
clear_sent(harness *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->v[i].body);
    h->n = 0;
}

static harness *
setup_cfg(nvx_gossip_cfg *cfg)
{
    harness *h = calloc(1, sizeof(*h));
    h->msg = malloc(sizeof(*h->msg));
    cfg->identity = ident(0xee);
    cfg->ops = &ops;
    cfg->userdata = h;
    assert_int_equal(nvx_gossip_new(cfg, &h->g), 0);
    return h;
}

static int
setup(void **state)
{
    nvx_gossip_cfg cfg = { 0 };
    *state = setup_cfg(&cfg);
    return 0;
}

static int
teardown(void **state)
{
    harness *h = *state;
    clear_sent(h);
    nvx_gossip_free(h->g);
    free(h->msg);
    free(h);
    return 0;
}

/* Decodes sent message i into h->msg. */
static proto_msg *
decoded(harness *h, size_t i)
{
    assert_true(i < h->n);
    assert_int_equal(proto_msg_decode(h->v[i].type, h->v[i].body, h->v[i].len, h->msg), 0);
    return h->msg;
}

/* Number of records announced to peer in everything sent so far. */
static size_t
records_to(harness *h, uint64_t peer)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].peer == peer && h->v[i].type == PROTO_MSG_ANNOUNCE)
            n += decoded(h, i)->u.announce.n;
    return n;
}

static void
peer_up(harness *h, uint64_t peer, uint8_t node, uint64_t now)
{
    uint8_t id[PROTO_ID_LEN];
    node_of(id, node);
    assert_int_equal(nvx_gossip_peer_up(h->g, peer, id, T(now)), 0);
}

/* Feeds an ANNOUNCE of one provider record from peer: node's record for
 * model, signed at T0_S + time_s. */
static int
feed_provider_at(harness *h, uint64_t peer, uint8_t node, uint8_t model, int64_t time_s,
                 uint32_t ttl, uint8_t hops, uint64_t now)
{
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    m->u.announce.n = 1;
    proto_provider_record *p = &m->u.announce.records[0].u.provider;
    m->u.announce.records[0].kind = PROTO_RECORD_PROVIDER;
    id_of(p->model_id, model);
    p->time = (uint64_t)((int64_t)T0_S + time_s);
    p->ttl_s = ttl;
    p->hops = hops;
    if (node)
        assert_int_equal(proto_provider_sign(ident(node), p), 0);
    int r = nvx_gossip_on_message(h->g, peer, m, T(now));
    free(m);
    return r;
}

/* The same, signed "now". */
static int
feed_provider(harness *h, uint64_t peer, uint8_t node, uint8_t model, uint32_t ttl, uint8_t hops,
              uint64_t now)
{
    return feed_provider_at(h, peer, node, model, (int64_t)(now / 1000), ttl, hops, now);
}

static int
feed_name(harness *h, uint64_t peer, const cas_namerec *rec, uint8_t hops, uint64_t now)
{
    uint8_t proof[CAS_NAMEREC_PROOF_LEN];
    cas_namerec_proof(rec, proof);
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    m->u.announce.n = 1;
    m->u.announce.records[0].kind = PROTO_RECORD_NAME;
    proto_name_record *p = &m->u.announce.records[0].u.name;
    memcpy(p->key_id, rec->keyid, 8);
    p->name.p = (const uint8_t *)rec->name;
    p->name.len = rec->name_len;
    p->sequence = rec->sequence;
    p->time = rec->time;
    memcpy(p->model_id, rec->model_id, 32);
    p->ttl_s = 600;
    p->hops = hops;
    p->sig.p = proof;
    p->sig.len = sizeof(proof);
    /* Through the real codec, as it would arrive. */
    uint8_t *buf = malloc(PROTO_MSG_MAX);
    size_t len;
    assert_int_equal(proto_msg_encode(m, buf, PROTO_MSG_MAX, &len), 0);
    assert_int_equal(proto_msg_decode(PROTO_MSG_ANNOUNCE, buf, len, m), 0);
    int r = nvx_gossip_on_message(h->g, peer, m, T(now));
    free(buf);
    free(m);
    return r;
}

static void
test_sync_on_connect(void **state)
{
    harness *h = *state;
    uint8_t model[PROTO_ID_LEN];
    id_of(model, 0x11);
    assert_int_equal(nvx_gossip_provide(h->g, model, T(1000)), 0);
    assert_int_equal(h->n, 0); /* nobody to tell yet */
    peer_up(h, 1, 0xa1, 2000);
    assert_int_equal(h->n, 1);
    proto_msg *m = decoded(h, 0);
    assert_int_equal(m->type, PROTO_MSG_ANNOUNCE);
    assert_int_equal(m->u.announce.n, 1);
    proto_provider_record *p = &m->u.announce.records[0].u.provider;
    uint8_t self[PROTO_ID_LEN];
    node_of(self, 0xee);
    assert_memory_equal(p->node_id, self, 32);
    assert_memory_equal(p->model_id, model, 32);
    assert_int_equal(p->hops, NVX_GOSSIP_HOPS_DEFAULT);
    assert_int_equal(p->ttl_s, NVX_GOSSIP_TTL_DEFAULT_S);
    assert_int_equal(p->time, T0_S + 1);
    assert_true(proto_provider_verify(p)); /* signed by our identity */
    assert_int_equal(nvx_gossip_peer_up(h->g, 1, self, T(2000)), -EEXIST);

    uint8_t got[4][PROTO_ID_LEN];
    assert_int_equal(nvx_gossip_providers(h->g, model, T(3000), got, 4), 1);
    assert_memory_equal(got[0], self, 32);
    /* Provide again: idempotent, nothing new sent. */
    assert_int_equal(nvx_gossip_provide(h->g, model, T(3000)), 0);
    assert_int_equal(h->n, 1);
}

static void
test_forward_hops_dedup(void **state)
{
    harness *h = *state;
    peer_up(h, 1, 0xa1, 0);
    peer_up(h, 2, 0xa2, 0);
    peer_up(h, 3, 0xa3, 0);
    clear_sent(h);

    assert_int_equal(feed_provider(h, 1, 0x55, 0x66, 600, 3, 1000), 1);
    assert_int_equal(h->n_provider, 1);
    assert_int_equal(records_to(h, 1), 0); /* never back to the sender */
    assert_int_equal(records_to(h, 2), 1);
    assert_int_equal(records_to(h, 3), 1);
    for (size_t i = 0; i < h->n; i++) {
        proto_provider_record *p = &decoded(h, i)->u.announce.records[0].u.provider;
        assert_int_equal(p->hops, 2);
        assert_int_equal(p->ttl_s, 600); /* as signed: relays change only hops */
        assert_true(proto_provider_verify(p));
    }

    /* The copy coming back around a loop (same signed time) is a duplicate. */
    clear_sent(h);
    assert_int_equal(feed_provider_at(h, 2, 0x55, 0x66, 1, 600, 2, 3000), 0);
    assert_int_equal(h->n, 0);
    assert_int_equal(h->n_provider, 1);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.forwarded, 2);

    /* An older one too; a refresh (signed later) travels again. */
    assert_int_equal(feed_provider_at(h, 2, 0x55, 0x66, 0, 600, 2, 3000), 0);
    assert_int_equal(h->n, 0);
    assert_int_equal(feed_provider(h, 3, 0x55, 0x66, 600, 3, 300000), 1);
    assert_int_equal(records_to(h, 1), 1);
    assert_int_equal(records_to(h, 2), 1);
    assert_int_equal(records_to(h, 3), 0);

    /* hops 0: kept, not forwarded; hops 1: forwarded with 0. */
    clear_sent(h);
    assert_int_equal(feed_provider(h, 1, 0x56, 0x66, 600, 0, 300000), 1);
    assert_int_equal(h->n, 0);
    assert_int_equal(feed_provider(h, 1, 0x57, 0x66, 600, 1, 300000), 1);
    assert_int_equal(records_to(h, 2), 1);
    assert_int_equal(decoded(h, 0)->u.announce.records[0].u.provider.hops, 0);

    uint8_t model[PROTO_ID_LEN], got[8][PROTO_ID_LEN];
    id_of(model, 0x66);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(300000), got, 8), 3);

    /* A new session gets what may travel: 0x55 (2 hops left) and 0x57 (0
     * left: it keeps it, relays no further); 0x56 came with 0 hops: not. */
    clear_sent(h);
    peer_up(h, 4, 0xa4, 300000);
    assert_int_equal(records_to(h, 4), 2);
    proto_announce *a = &decoded(h, 0)->u.announce;
    assert_int_equal(a->records[0].u.provider.hops + a->records[1].u.provider.hops, 2);
}

static void
test_invalid_and_own(void **state)
{
    harness *h = *state;
    peer_up(h, 1, 0xa1, 0);
    peer_up(h, 2, 0xa2, 0);
    clear_sent(h);
    assert_int_equal(feed_provider(h, 1, 0x00, 0x66, 600, 3, 0), 0); /* zero node */
    assert_int_equal(feed_provider(h, 1, 0x55, 0x00, 600, 3, 0), 0); /* zero model */
    assert_int_equal(feed_provider(h, 1, 0x55, 0x66, 0, 3, 0), 0);   /* no TTL */
    assert_int_equal(feed_provider(h, 1, 0x55, 0x66, NVX_GOSSIP_TTL_MAX_S + 1, 3, 0), 0);
    /* From the future beyond the allowed skew. */
    assert_int_equal(feed_provider_at(h, 1, 0x55, 0x66, NVX_GOSSIP_SKEW_S + 1, 600, 3, 0), 0);
    assert_int_equal(feed_provider(h, 1, 0xee, 0x66, 600, 3, 0), 0); /* about us */
    /* Expired on the way (signed long ago): dropped, counted as stale. */
    assert_int_equal(feed_provider_at(h, 1, 0x55, 0x66, -4000, 600, 3, 0), 0);
    assert_int_equal(h->n, 0);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.invalid, 5);
    assert_int_equal(st.records, 0);

    /* Forged: node 0x55's record signed by someone else, or a field changed
     * after signing. */
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    m->u.announce.n = 1;
    m->u.announce.records[0].kind = PROTO_RECORD_PROVIDER;
    proto_provider_record *fp = &m->u.announce.records[0].u.provider;
    id_of(fp->model_id, 0x66);
    fp->time = T0_S;
    fp->ttl_s = 600;
    fp->hops = 3;
    assert_int_equal(proto_provider_sign(ident(0x56), fp), 0);
    fp->ttl_s = 601;
    assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(0)), 0);
    fp->ttl_s = 600;
    node_of(fp->node_id, 0x55);
    assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(0)), 0);
    free(m);
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.invalid, 7);
    assert_int_equal(st.records, 0);
    assert_int_equal(h->n, 0);

    /* A record about peer 2's node is not sent to peer 2 itself. */
    assert_int_equal(feed_provider(h, 1, 0xa2, 0x66, 600, 3, 0), 1);
    assert_int_equal(h->n, 0);

    /* Unknown session; other message types are ignored. */
    assert_int_equal(feed_provider(h, 9, 0x55, 0x66, 600, 3, 0), -ENOENT);
    proto_msg ping = { .type = PROTO_MSG_PING };
    assert_int_equal(nvx_gossip_on_message(h->g, 1, &ping, T(0)), 0);

    /* Huge hop counts are clamped. */
    assert_int_equal(feed_provider(h, 2, 0x58, 0x66, NVX_GOSSIP_TTL_MAX_S, 255, 0), 1);
    assert_int_equal(records_to(h, 1), 1);
    proto_provider_record *p = &decoded(h, 0)->u.announce.records[0].u.provider;
    assert_int_equal(p->ttl_s, NVX_GOSSIP_TTL_MAX_S);
    assert_int_equal(p->hops, NVX_GOSSIP_HOPS_MAX - 1);
}

static void
test_expiry_and_reannounce(void **state)
{
    harness *h = *state;
    peer_up(h, 1, 0xa1, 0);
    peer_up(h, 2, 0xa2, 0);
    assert_int_equal(feed_provider(h, 1, 0x55, 0x66, 10, 3, 0), 1);
    uint8_t model[PROTO_ID_LEN], got[2][PROTO_ID_LEN];
    id_of(model, 0x66);
    /* Live until signed time + TTL + the allowed clock skew. */
    uint64_t end = 10000 + NVX_GOSSIP_SKEW_S * 1000;
    assert_int_equal(nvx_gossip_providers(h->g, model, T(end - 1), got, 2), 1);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(end), got, 2), 0);
    nvx_gossip_tick(h->g, T(end + 1000));
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.records, 0);

    /* Our own record: re-sent to everyone every ttl/2, never expires here. */
    uint8_t own[PROTO_ID_LEN];
    id_of(own, 0x77);
    assert_int_equal(nvx_gossip_provide(h->g, own, T(20000)), 0);
    clear_sent(h);
    nvx_gossip_tick(h->g, T(20000 + NVX_GOSSIP_TTL_DEFAULT_S * 500 - 1));
    assert_int_equal(records_to(h, 1), 0);
    nvx_gossip_tick(h->g, T(20000 + NVX_GOSSIP_TTL_DEFAULT_S * 500));
    assert_int_equal(records_to(h, 1), 1);
    assert_int_equal(records_to(h, 2), 1);
    proto_provider_record *p = &decoded(h, 0)->u.announce.records[0].u.provider;
    assert_int_equal(p->time, T0_S + 20 + NVX_GOSSIP_TTL_DEFAULT_S / 2); /* signed anew */
    assert_true(proto_provider_verify(p));
    nvx_gossip_tick(h->g, T(20000 + NVX_GOSSIP_TTL_DEFAULT_S * 5000));
    assert_int_equal(
        nvx_gossip_providers(h->g, own, T(20000 + NVX_GOSSIP_TTL_DEFAULT_S * 5000), got, 2), 1);
    assert_int_equal(nvx_gossip_unprovide(h->g, own), 0);
    assert_int_equal(nvx_gossip_unprovide(h->g, own), -ENOENT);
    assert_int_equal(nvx_gossip_providers(h->g, own, T(0), got, 2), 0);
}

static void
test_name_records(void **state)
{
    harness *h = *state;
    cas_seckey *sk = NULL;
    assert_int_equal(cas_seckey_generate(&sk), 0);
    uint8_t m1[32], m2[32];
    id_of(m1, 1);
    id_of(m2, 2);
    cas_namerec r1, r2, r2b;
    assert_int_equal(cas_namerec_sign(sk, "llama/q4", 1, 100, m1, &r1), 0);
    assert_int_equal(cas_namerec_sign(sk, "llama/q4", 2, 200, m2, &r2), 0);
    assert_int_equal(cas_namerec_sign(sk, "llama/q4", 2, 201, m1, &r2b), 0);
    peer_up(h, 1, 0xa1, 0);
    peer_up(h, 2, 0xa2, 0);
    clear_sent(h);

    assert_int_equal(feed_name(h, 1, &r1, 4, 0), 1);
    assert_int_equal(h->n_name, 1);
    assert_int_equal(h->last_name.sequence, 1);
    assert_int_equal(records_to(h, 1), 0);
    assert_int_equal(records_to(h, 2), 1);
    proto_name_record *p = &decoded(h, 0)->u.announce.records[0].u.name;
    assert_int_equal(p->hops, 3);
    assert_int_equal(p->sequence, 1);
    cas_namerec back;
    assert_int_equal(cas_namerec_from_wire(p->key_id, p->name.p, p->name.len, p->sequence, p->time,
                                           p->model_id, p->sig.p, p->sig.len, &back),
                     0);
    assert_memory_equal(&back, &r1, sizeof(back));

    /* Same again: duplicate. Higher sequence: wins and travels. */
    clear_sent(h);
    assert_int_equal(feed_name(h, 2, &r1, 4, 10), 0);
    assert_int_equal(h->n, 0);
    assert_int_equal(feed_name(h, 2, &r2, 4, 20), 1);
    assert_int_equal(h->n_name, 2);
    assert_memory_equal(h->last_name.model_id, m2, 32);
    assert_int_equal(records_to(h, 1), 1);
    /* Stale (lower) and equivocating (same sequence, other model): dropped. */
    clear_sent(h);
    assert_int_equal(feed_name(h, 1, &r1, 4, 30), 0);
    assert_int_equal(feed_name(h, 1, &r2b, 4, 30), 0);
    assert_int_equal(h->n, 0);
    assert_int_equal(h->n_name, 2);

    /* Forged: a changed sequence breaks the signature. */
    cas_namerec forged = r2;
    forged.sequence = 3;
    assert_int_equal(feed_name(h, 1, &forged, 4, 40), 0);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(h->n_name, 2);
    assert_int_equal(nvx_gossip_publish(h->g, &forged, true, T(40)), -EBADMSG);

    /* Publishing our own record goes to everyone and to every new session. */
    cas_namerec r3;
    assert_int_equal(cas_namerec_sign(sk, "llama/q4", 3, 300, m1, &r3), 0);
    assert_int_equal(nvx_gossip_publish(h->g, &r3, true, T(50)), 1);
    assert_int_equal(records_to(h, 1), 1);
    assert_int_equal(records_to(h, 2), 1);
    assert_int_equal(nvx_gossip_publish(h->g, &r3, true, T(50)), 0);
    clear_sent(h);
    nvx_gossip_tick(h->g, T(1000ull * NVX_GOSSIP_TTL_MAX_S * 2)); /* own: never expires */
    peer_up(h, 3, 0xa3, 1000ull * NVX_GOSSIP_TTL_MAX_S * 2);
    assert_int_equal(records_to(h, 3), 1);
    p = &decoded(h, 0)->u.announce.records[0].u.name;
    assert_int_equal(p->sequence, 3);
    assert_int_equal(p->hops, NVX_GOSSIP_HOPS_DEFAULT);

    /* A record reloaded from the store (not own) is renewed by publishing
     * it again, without being sent again. */
    cas_namerec r9;
    assert_int_equal(cas_namerec_sign(sk, "other", 9, 900, m2, &r9), 0);
    uint64_t t1 = 1000ull * NVX_GOSSIP_TTL_MAX_S * 3;
    assert_int_equal(nvx_gossip_publish(h->g, &r9, false, T(t1)), 1);
    clear_sent(h);
    uint64_t t2 = t1 + 1000ull * NVX_GOSSIP_NAME_TTL_DEFAULT_S - 1000;
    assert_int_equal(nvx_gossip_publish(h->g, &r9, false, T(t2)), 0);
    assert_int_equal(h->n, 0);
    nvx_gossip_tick(h->g, T(t1 + 1000ull * NVX_GOSSIP_NAME_TTL_DEFAULT_S + 1000));
    peer_up(h, 4, 0xa4, t1 + 1000ull * NVX_GOSSIP_NAME_TTL_DEFAULT_S + 1000);
    assert_int_equal(records_to(h, 4), 2); /* r3 (own) and r9 (renewed) */
    nvx_gossip_tick(h->g, T(t2 + 1000ull * NVX_GOSSIP_NAME_TTL_DEFAULT_S + 1000));
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.records, 1); /* r9 expired at last, r3 stays */
    cas_seckey_free(sk);
}

static void
test_rate_limit(void **state)
{
    (void)state;
    nvx_gossip_cfg cfg = { .rate_per_s = 2, .burst = 5 };
    harness *h = setup_cfg(&cfg);
    peer_up(h, 1, 0xa1, 0);
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    m->u.announce.n = PROTO_ANNOUNCE_MAX;
    for (int i = 0; i < PROTO_ANNOUNCE_MAX; i++) {
        m->u.announce.records[i].kind = PROTO_RECORD_PROVIDER;
        proto_provider_record *p = &m->u.announce.records[i].u.provider;
        id_of(p->model_id, 0x66);
        p->time = T0_S;
        p->ttl_s = 600;
        p->hops = 1;
        assert_int_equal(proto_provider_sign(ident((uint8_t)(i + 1)), p), 0);
    }
    assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(0)), 5);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.rate_dropped, PROTO_ANNOUNCE_MAX - 5);
    /* One second later: two more tokens (the first five are duplicates). */
    assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(1000)), 0);
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.duplicates, 2);
    /* Much later: a full bucket, no more. */
    for (int i = 0; i < PROTO_ANNOUNCE_MAX; i++) {
        proto_provider_record *p = &m->u.announce.records[i].u.provider;
        id_of(p->model_id, 0x67);
        p->time = T0_S + 900;
        assert_int_equal(proto_provider_sign(ident((uint8_t)(i + 1)), p), 0);
    }
    assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(1000000)), 5);
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.invalid, 0);
    free(m);
    void *st_h = h;
    teardown(&st_h);
}

static void
test_peer_exchange(void **state)
{
    harness *h = *state;
    uint8_t x[PROTO_ID_LEN], y[PROTO_ID_LEN], p2[PROTO_ID_LEN];
    node_of(x, 0x10);
    node_of(y, 0x20);
    node_of(p2, 0xa2);
    assert_int_equal(nvx_gossip_add_addr(h->g, x, "tcp://192.0.2.10:7000", NVX_PEX_CLAIMED, T(0)),
                     0);
    assert_int_equal(nvx_gossip_add_addr(h->g, y, "tcp://192.0.2.20:7000", NVX_PEX_CLAIMED, T(0)),
                     0);
    assert_int_equal(nvx_gossip_add_addr(h->g, p2, "tcp://192.0.2.2:7000", NVX_PEX_CLAIMED, T(0)),
                     0);
    assert_int_equal(nvx_gossip_add_addr(h->g, y, "has space", NVX_PEX_CLAIMED, T(0)), -EINVAL);
    assert_int_equal(nvx_gossip_add_addr(h->g, y, "", NVX_PEX_CLAIMED, T(0)), -EINVAL);

    peer_up(h, 2, 0xa2, 0);
    assert_int_equal(h->n, 1);
    proto_msg *m = decoded(h, 0);
    assert_int_equal(m->type, PROTO_MSG_PEERS);
    assert_int_equal(m->u.peers.n, 2); /* x and y, not the receiver itself */

    /* Incoming PEERS: ourselves, a connected node and a known address give
     * no dial; a new node does. */
    peer_up(h, 3, 0xa3, 0);
    proto_msg *in = calloc(1, sizeof(*in));
    in->type = PROTO_MSG_PEERS;
    in->u.peers.n = 4;
    const char *addrs[] = { "tcp://192.0.2.99:1", "tcp://192.0.2.3:7000", "tcp://192.0.2.10:7000",
                            "tcp://198.51.100.7:7000" };
    uint8_t nodes[] = { 0xee, 0xa3, 0x10, 0x30 };
    for (int i = 0; i < 4; i++) {
        node_of(in->u.peers.peers[i].node_id, nodes[i]);
        in->u.peers.peers[i].addr.p = (const uint8_t *)addrs[i];
        in->u.peers.peers[i].addr.len = strlen(addrs[i]);
    }
    assert_int_equal(nvx_gossip_on_message(h->g, 2, in, T(1000)), 0);
    assert_int_equal(h->n_dial, 1);
    assert_string_equal(h->last_dial, "tcp://198.51.100.7:7000");
    /* A second PEERS within the minimum interval is ignored. */
    node_of(in->u.peers.peers[3].node_id, 0x31);
    assert_int_equal(nvx_gossip_on_message(h->g, 2, in, T(2000)), 0);
    assert_int_equal(h->n_dial, 1);
    assert_int_equal(nvx_gossip_on_message(h->g, 2, in, T(1000 + NVX_GOSSIP_PEX_MIN_INTERVAL_MS)),
                     0);
    assert_int_equal(h->n_dial, 2);

    /* PEERS are re-sent to every session after the interval. */
    clear_sent(h);
    nvx_gossip_tick(h->g, T(NVX_GOSSIP_PEX_INTERVAL_MS));
    size_t peers_msgs = 0;
    for (size_t i = 0; i < h->n; i++)
        peers_msgs += h->v[i].type == PROTO_MSG_PEERS;
    assert_int_equal(peers_msgs, 2);
    free(in);

    char buf[PROTO_ADDR_MAX + 1];
    uint8_t n30[PROTO_ID_LEN], n99[PROTO_ID_LEN];
    node_of(n30, 0x30);
    node_of(n99, 0x99);
    assert_int_equal(nvx_gossip_addr(h->g, n30, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "tcp://198.51.100.7:7000");
    assert_int_equal(nvx_gossip_addr(h->g, n30, buf, 5), -EMSGSIZE);
    assert_int_equal(nvx_gossip_addr(h->g, n99, buf, sizeof(buf)), -ENOENT);
    assert_true(nvx_gossip_connected(h->g, p2));
    assert_int_equal(nvx_gossip_sessions(h->g), 2);
    nvx_gossip_peer_down(h->g, 2);
    nvx_gossip_peer_down(h->g, 2); /* unknown: ignored */
    assert_false(nvx_gossip_connected(h->g, p2));
    assert_int_equal(feed_provider(h, 2, 0x55, 0x66, 600, 3, 0), -ENOENT);
}

static void
test_table_bound(void **state)
{
    (void)state;
    nvx_gossip_cfg cfg = { .records_max = 8, .origin_share = 8, .burst = 1000, .rate_per_s = 1000 };
    harness *h = setup_cfg(&cfg);
    peer_up(h, 1, 0xa1, 0);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(feed_provider(h, 1, (uint8_t)i, 0x66, (uint32_t)(100 + i), 1, 0), 1);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.records, 8);
    assert_int_equal(st.evicted, 12);
    /* The ones closest to expiry went; the newest are all findable. */
    uint8_t model[PROTO_ID_LEN], got[8][PROTO_ID_LEN];
    id_of(model, 0x66);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(0), got, 8), 8);
    for (int i = 13; i <= 20; i++)
        assert_int_equal(feed_provider(h, 1, (uint8_t)i, 0x66, (uint32_t)(100 + i), 1, 0), 0);
    void *st_h = h;
    teardown(&st_h);

    nvx_gossip *g = NULL;
    assert_int_equal(nvx_gossip_new(&(nvx_gossip_cfg){ .ops = NULL }, &g), -EINVAL);
    assert_null(g);
}

/* Issue 9: records from fresh keys with 24 h TTLs, all from one session,
 * cannot push out what other sessions gave: each session holds at most
 * origin_share records and past it churns only its own. (Before, the
 * record closest to expiry went: every honest 30-minute record.) */
static void
test_origin_share(void **state)
{
    (void)state;
    nvx_gossip_cfg cfg = {
        .records_max = 32, .origin_share = 16, .burst = 1000, .rate_per_s = 1000
    };
    harness *h = setup_cfg(&cfg);
    peer_up(h, 1, 0xa1, 0); /* honest */
    peer_up(h, 2, 0xa2, 0); /* attacker */
    for (int i = 1; i <= 16; i++)
        assert_int_equal(feed_provider(h, 1, (uint8_t)i, 0x66, 1800, 1, 0), 1);
    for (int i = 100; i < 200; i++)
        assert_int_equal(feed_provider(h, 2, (uint8_t)i, 0x77, NVX_GOSSIP_TTL_MAX_S, 1, 0), 1);
    uint8_t model[PROTO_ID_LEN], got[32][PROTO_ID_LEN];
    id_of(model, 0x66);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(0), got, 32), 16);
    id_of(model, 0x77);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(0), got, 32), 16);
    void *st_h = h;
    teardown(&st_h);
}

/* A full table makes room with records whose session is gone before those
 * of live sessions, even when the live ones expire sooner. */
static void
test_prefer_live(void **state)
{
    (void)state;
    nvx_gossip_cfg cfg = {
        .records_max = 16, .origin_share = 16, .burst = 1000, .rate_per_s = 1000
    };
    harness *h = setup_cfg(&cfg);
    peer_up(h, 1, 0xa1, 0);
    peer_up(h, 2, 0xa2, 0);
    peer_up(h, 3, 0xa3, 0);
    for (int i = 1; i <= 8; i++)
        assert_int_equal(feed_provider(h, 1, (uint8_t)i, 0x66, 600, 1, 0), 1);
    for (int i = 20; i < 28; i++)
        assert_int_equal(feed_provider(h, 2, (uint8_t)i, 0x77, 7200, 1, 0), 1);
    nvx_gossip_peer_down(h->g, 2);
    for (int i = 40; i < 48; i++)
        assert_int_equal(feed_provider(h, 3, (uint8_t)i, 0x88, 7200, 1, 0), 1);
    uint8_t model[PROTO_ID_LEN], got[16][PROTO_ID_LEN];
    id_of(model, 0x66);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(0), got, 16), 8);
    id_of(model, 0x77);
    assert_int_equal(nvx_gossip_providers(h->g, model, T(0), got, 16), 0);
    void *st_h = h;
    teardown(&st_h);
}

static proto_msg *
peers_msg(const uint8_t *nodes, const char *const *addrs, size_t n)
{
    proto_msg *in = calloc(1, sizeof(*in));
    in->type = PROTO_MSG_PEERS;
    in->u.peers.n = n;
    for (size_t i = 0; i < n; i++) {
        node_of(in->u.peers.peers[i].node_id, nodes[i]);
        in->u.peers.peers[i].addr.p = (const uint8_t *)addrs[i];
        in->u.peers.peers[i].addr.len = strlen(addrs[i]);
    }
    return in;
}

/* Issue 9: PEERS never overwrites an address learned first hand or from
 * the node itself, never brings a name to resolve, and a gossiped address
 * a pinned dial found wrong is forgotten. */
static void
test_pex_sources(void **state)
{
    harness *h = *state;
    uint8_t x[PROTO_ID_LEN], y[PROTO_ID_LEN], z[PROTO_ID_LEN], w[PROTO_ID_LEN];
    node_of(x, 0x10);
    node_of(y, 0x20);
    node_of(z, 0x30);
    node_of(w, 0x40);
    assert_int_equal(nvx_gossip_add_addr(h->g, x, "192.0.2.10:7000", NVX_PEX_FIRST_HAND, T(0)), 0);
    assert_int_equal(nvx_gossip_add_addr(h->g, y, "192.0.2.20:7000", NVX_PEX_CLAIMED, T(0)), 0);
    peer_up(h, 2, 0xa2, 0);
    const uint8_t nodes[] = { 0x10, 0x20, 0x30, 0x40 };
    const char *addrs[] = { "203.0.113.66:7000", "203.0.113.66:7001", "evil.example:7000",
                            "tcp://[2001:db8::7]:7000" };
    proto_msg *in = peers_msg(nodes, addrs, 4);
    assert_int_equal(nvx_gossip_on_message(h->g, 2, in, T(1000)), 0);
    free(in);
    /* Only w was dialed; x and y kept their addresses; z (a name) is unknown. */
    assert_int_equal(h->n_dial, 1);
    assert_string_equal(h->last_dial, "tcp://[2001:db8::7]:7000");
    char buf[PROTO_ADDR_MAX + 1];
    assert_int_equal(nvx_gossip_addr(h->g, x, buf, sizeof(buf)), NVX_PEX_FIRST_HAND);
    assert_string_equal(buf, "192.0.2.10:7000");
    assert_int_equal(nvx_gossip_addr(h->g, y, buf, sizeof(buf)), NVX_PEX_CLAIMED);
    assert_string_equal(buf, "192.0.2.20:7000");
    assert_int_equal(nvx_gossip_addr(h->g, z, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nvx_gossip_addr(h->g, w, buf, sizeof(buf)), NVX_PEX_GOSSIP);
    nvx_gossip_stats st;
    nvx_gossip_stats_get(h->g, &st);
    assert_int_equal(st.pex_refused, 3);
    assert_int_equal(st.invalid, 0);
    /* The pinned dial met another key: forgotten (not so a first-hand one). */
    assert_int_equal(nvx_gossip_forget_addr(h->g, w, "[2001:db8::7]:7000"), 0);
    assert_int_equal(nvx_gossip_addr(h->g, w, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(nvx_gossip_forget_addr(h->g, x, "192.0.2.10:7000"), -ENOENT);
    assert_int_equal(nvx_gossip_addr(h->g, x, buf, sizeof(buf)), NVX_PEX_FIRST_HAND);
    /* Numeric means numeric. */
    const char *bad[] = { "1.2.3:7",       "0x7f.0.0.1:7",     "1.2.3.4",    "1.2.3.4:0",
                          "1.2.3.4:65536", "[fe80::1%eth0]:7", "localhost:7" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(nvx_pex_addr_numeric((const uint8_t *)bad[i], strlen(bad[i])));
    assert_true(nvx_pex_addr_numeric((const uint8_t *)"tcp://10.0.0.1:1", 16));
}

/* Many sessions and records: a full sync is split into ANNOUNCE batches
 * that all decode. */
static void
test_sync_batches(void **state)
{
    harness *h = *state;
    peer_up(h, 1, 0xa1, 0);
    proto_msg *m = calloc(1, sizeof(*m));
    m->type = PROTO_MSG_ANNOUNCE;
    for (int b = 0; b < 3; b++) {
        m->u.announce.n = PROTO_ANNOUNCE_MAX;
        for (int i = 0; i < PROTO_ANNOUNCE_MAX; i++) {
            m->u.announce.records[i].kind = PROTO_RECORD_PROVIDER;
            proto_provider_record *p = &m->u.announce.records[i].u.provider;
            id_of(p->model_id, 0x66);
            p->time = T0_S;
            p->ttl_s = 600;
            p->hops = 2;
            assert_int_equal(proto_provider_sign(ident((uint8_t)(b * 40 + i + 1)), p), 0);
        }
        assert_int_equal(nvx_gossip_on_message(h->g, 1, m, T(0)), PROTO_ANNOUNCE_MAX);
    }
    free(m);
    clear_sent(h);
    peer_up(h, 2, 0xa2, 0);
    assert_int_equal(records_to(h, 2), 3 * PROTO_ANNOUNCE_MAX);
    assert_int_equal(h->n, 3); /* no PEERS: no addresses known */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_on_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_hops_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_reannounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_records, setup, teardown),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test_setup_teardown(test_peer_exchange, setup, teardown),
        cmocka_unit_test(test_table_bound),
        cmocka_unit_test(test_origin_share),
        cmocka_unit_test(test_prefer_live),
        cmocka_unit_test_setup_teardown(test_pex_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_batches, setup, teardown),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t i = 0; i < 256; i++)
        proto_identity_free(idents[i]);
    return r;
}
