/* SPDX-License-Identifier: MIT */
/*
 * The DHT core's parts: bencode (strict, bounded), KRPC messages
 * (malformed packets are dropped, bad queries answered 203), BEP 42 ids
 * (the BEP's vectors), tokens, rate limits, storage bounds, BEP 44 items
 * (signatures checked with libsodium), the save format, and a few nodes
 * talking through an in-memory wire.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "daemon/dht-internal.h"
#include "daemon/dht-relay.h"

static int
decode_str(const char *s)
{
    nvx_benc b;
    return nvx_benc_decode(&b, (const uint8_t *)s, strlen(s));
}

static void
test_bencode(void **state)
{
    (void)state;
    static const char *const good[] = {
        "i0e", "i-5e", "0:", "3:abc", "le", "de", "d1:ai1e1:bli2e3:xyzee", "i999999999999999999e"
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(decode_str(good[i]), 0);
    static const char *const bad[] = {
        "",
        "i-0e",
        "i01e",
        "ie",
        "i1",
        "03:abc",
        "4:abc",
        "l",
        "d1:a",
        "d1:bi1e1:ai2ee" /* unsorted */,
        "d1:ai1e1:ai2ee" /* repeated */,
        "di1ei2ee" /* int key */,
        "i1ei2e" /* trailing */,
        "x",
        "-1:",
        "i1234567890123456789e" /* 19 digits */,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(decode_str(bad[i]), -EBADMSG);
    /* Depth and token limits. */
    char deep[64];
    memset(deep, 'l', NVX_BENC_DEPTH_MAX + 1);
    memset(deep + NVX_BENC_DEPTH_MAX + 1, 'e', NVX_BENC_DEPTH_MAX + 1);
    deep[2 * (NVX_BENC_DEPTH_MAX + 1)] = 0;
    assert_int_equal(decode_str(deep), -EMSGSIZE);
    deep[2 * NVX_BENC_DEPTH_MAX] = 0;
    memset(deep, 'l', NVX_BENC_DEPTH_MAX);
    memset(deep + NVX_BENC_DEPTH_MAX, 'e', NVX_BENC_DEPTH_MAX);
    assert_int_equal(decode_str(deep), 0);
    char many[1 + 2 * NVX_BENC_TOKENS_MAX + 2];
    many[0] = 'l';
    for (int i = 0; i < NVX_BENC_TOKENS_MAX; i++)
        memcpy(many + 1 + 2 * i, "0:", 2);
    strcpy(many + 1 + 2 * NVX_BENC_TOKENS_MAX, "e");
    assert_int_equal(decode_str(many), -EMSGSIZE);
    /* Encoder: round trip and overflow. */
    uint8_t buf[64];
    nvx_benc_writer w;
    nvx_benc_writer_init(&w, buf, sizeof(buf));
    nvx_benc_open_dict(&w);
    nvx_benc_put_cstr(&w, "a");
    nvx_benc_put_int(&w, INT64_MIN + 1);
    nvx_benc_close(&w);
    int n = nvx_benc_writer_end(&w);
    assert_true(n > 0);
    nvx_benc b;
    assert_int_equal(nvx_benc_decode(&b, buf, (size_t)n), -EBADMSG); /* 19 digits */
    nvx_benc_writer_init(&w, buf, 3);
    nvx_benc_put_cstr(&w, "abcd");
    assert_int_equal(nvx_benc_writer_end(&w), -EMSGSIZE);
}

static void
test_krpc_roundtrip(void **state)
{
    (void)state;
    uint8_t node[NVX_KRPC_NODE_LEN], peer[NVX_KRPC_PEER_LEN], buf[NVX_KRPC_PACKET_MAX];
    uint8_t id[20] = { 1, 2, 3 };
    nvx_krpc_put_node(node, id, 0x7f000001, 6881);
    nvx_krpc_put_peer(peer, 0x0a000002, 4747);
    nvx_krpc_msg m = { .kind = NVX_KRPC_RESPONSE,
                       .tid_len = 2,
                       .tid = { 'a', 'b' },
                       .has_id = true,
                       .has_ip = true,
                       .ip = 0x01020304,
                       .ip_port = 99,
                       .token = (const uint8_t *)"tok",
                       .token_len = 3,
                       .nodes = node,
                       .n_nodes = 1,
                       .n_values = 1 };
    m.values[0] = peer;
    memcpy(m.id, id, 20);
    int n = nvx_krpc_encode(&m, buf, sizeof(buf));
    assert_true(n > 0);
    nvx_krpc_msg d;
    assert_int_equal(nvx_krpc_decode(&d, buf, (size_t)n), 0);
    assert_int_equal(d.kind, NVX_KRPC_RESPONSE);
    assert_memory_equal(d.id, id, 20);
    assert_int_equal(d.ip, 0x01020304);
    assert_int_equal(d.n_nodes, 1);
    assert_int_equal(d.n_values, 1);
    assert_int_equal(d.token_len, 3);
    uint32_t ip;
    uint16_t port;
    nvx_krpc_get_peer(d.values[0], &ip, &port);
    assert_int_equal(ip, 0x0a000002);
    assert_int_equal(port, 4747);

    /* A query as libtorrent writes it. */
    static const char q[] = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456"
                            "4:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    assert_int_equal(nvx_krpc_decode(&d, (const uint8_t *)q, sizeof(q) - 1), 0);
    assert_int_equal(d.method, NVX_KRPC_ANNOUNCE_PEER);
    assert_true(d.has_target && d.has_port);
    assert_int_equal(d.port, 6881);
    assert_memory_equal(d.target, "mnopqrstuvwxyz123456", 20);
}

static void
test_krpc_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "le",                                                            /* not a dict */
        "d1:t2:aa1:y1:qe",                                               /* query without q and a */
        "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",                        /* id of 3 bytes */
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe",             /* no t */
        "d1:rd2:id20:abcdefghij01234567895:nodes5:abcdee1:t2:aa1:y1:re", /* nodes % 26 */
        "d1:ad2:id20:abcdefghij01234567894:porti70000ee1:q13:announce_peer1:t2:aa1:y1:qe",
        "d1:eli201ee1:t2:aa1:y1:ee",                       /* error without message */
        "d1:t9:123456789a1:y1:re",                         /* tid too long */
        "d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:xe", /* y unknown */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nvx_krpc_msg m;
        assert_true(nvx_krpc_decode(&m, (const uint8_t *)bad[i], strlen(bad[i])) < 0);
    }
}

/* BEP 42's test vectors: IP, the random byte, the first three id bytes. */
/* Which of 16 relay addresses (198.51.100.R:4747) ranks first for ip. */
static int
best_relay(uint32_t ip)
{
    int best = 0;
    uint64_t low = UINT64_MAX;
    for (int r = 0; r < 16; r++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "198.51.100.%d:4747", r);
        uint64_t s = nvx_dhtrelay_rank(ip, addr);
        if (s < low) {
            low = s;
            best = r;
        }
    }
    return best;
}

/* The relay key is fixed by PROTOCOL.md; the rank is a keyed order that
 * both sides compute alike and that differs between targets. */
static void
test_relay_key_and_rank(void **state)
{
    (void)state;
    uint8_t key[20], h[32];
    nvx_dht_relay_key(key);
    crypto_generichash(h, sizeof(h), (const uint8_t *)"nvx-relay-v1", 12, NULL, 0);
    assert_memory_equal(key, h, 20);
    uint8_t in[4 + 13] = { 11, 0, 2, 2 };
    memcpy(in + 4, "11.0.0.1:4747", 13);
    crypto_generichash(h, sizeof(h), in, sizeof(in), NULL, 0);
    uint64_t want = 0;
    for (int i = 0; i < 8; i++)
        want = want << 8 | h[i];
    assert_true(nvx_dhtrelay_rank(0x0b000202, "11.0.0.1:4747") == want);
    /* Two targets order 16 relays differently (a fixed order would send
     * every NATed node to the same few relays). */
    unsigned firsts_differ = 0;
    for (uint32_t t = 1; t < 8; t++)
        firsts_differ += best_relay(0x0b000000) != best_relay(0x0b000000 + t);
    assert_true(firsts_differ >= 3);
}

static void
test_bep42(void **state)
{
    (void)state;
    static const struct {
        uint32_t ip;
        uint8_t r, prefix[3];
    } v[] = {
        { 0x7c1f4b15, 1, { 0x5f, 0xbf, 0xbf } },  /* 124.31.75.21 */
        { 0x154b1f7c, 86, { 0x5a, 0x3c, 0xe9 } }, /* 21.75.31.124 */
        { 0x411733aa, 22, { 0xa5, 0xd4, 0x32 } }, /* 65.23.51.170 */
        { 0x547c490e, 65, { 0x1b, 0x03, 0x21 } }, /* 84.124.73.14 */
        { 0x2bd53553, 90, { 0xe5, 0x6f, 0x6c } }, /* 43.213.53.83 */
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t rnd[17] = { v[i].r }, id[20];
        nvx_dht_id_for_ip(v[i].ip, rnd, id);
        assert_memory_equal(id, v[i].prefix, 2);
        assert_int_equal(id[2] & 0xf8, v[i].prefix[2] & 0xf8);
        assert_int_equal(id[19], v[i].r);
        assert_true(nvx_dht_id_ok(id, v[i].ip));
        id[0] ^= 1;
        assert_false(nvx_dht_id_ok(id, v[i].ip));
        assert_true(nvx_dht_id_ok(id, 0x0a000001)); /* local: exempt */
    }
}

/* ---------------------------------------------------------------------- */
/* Nodes on an in-memory wire (delivered at once, in order). */

enum {
    WIRE_MAX = 4096
};

typedef struct wire_pkt {
    uint32_t from_ip, to_ip;
    uint16_t from_port, to_port;
    size_t len;
    uint8_t buf[NVX_KRPC_PACKET_MAX];
} wire_pkt;

static wire_pkt *wire;
static size_t n_wire;

typedef struct wnode {
    nvx_dht *d;
    uint32_t ip;
    uint16_t port;
} wnode;

static void
wire_send(void *arg, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len)
{
    wnode *n = arg;
    assert_true(n_wire < WIRE_MAX);
    wire_pkt *p = &wire[n_wire++];
    *p = (wire_pkt){ n->ip, ip, n->port, port, len, { 0 } };
    memcpy(p->buf, buf, len);
}

static void
wire_run(wnode *nodes, size_t n, uint64_t now)
{
    for (size_t i = 0; i < n_wire; i++) {
        wire_pkt *p = &wire[i];
        for (size_t k = 0; k < n; k++)
            if (nodes[k].ip == p->to_ip && nodes[k].port == p->to_port)
                nvx_dht_input(nodes[k].d, p->from_ip, p->from_port, p->buf, p->len, now);
    }
    n_wire = 0;
}

static void
wnode_new(wnode *n, uint32_t ip, uint8_t seed)
{
    nvx_dht_opts o = { .ops = { .send = wire_send } };
    memset(o.secret, seed, sizeof(o.secret));
    n->ip = ip;
    n->port = 6881;
    o.arg = n;
    assert_int_equal(nvx_dht_new(&o, 0, &n->d), 0);
}

static int
setup(void **state)
{
    (void)state;
    wire = calloc(WIRE_MAX, sizeof(*wire));
    n_wire = 0;
    return wire ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    free(wire);
    return 0;
}

typedef struct got {
    bool done;
    size_t peers;
    uint16_t port;
    bool item;
    int64_t seq;
    char v[64];
} got;

static void
on_got(void *arg, const nvx_dht_result *r)
{
    got *g = arg;
    g->peers += r->n_peers;
    if (r->n_peers)
        g->port = r->peer_port[0];
    if (r->done) {
        g->done = true;
        if (r->item) {
            g->item = true;
            g->seq = r->item->seq;
            memcpy(g->v, r->item->v, r->item->v_len < 63 ? r->item->v_len : 63);
        }
    }
}

/* Node `from` of the six looks key up: exactly one peer, at port. */
static void
expect_one_peer(wnode *n, size_t from, const uint8_t key[static 20], uint16_t port, uint64_t now)
{
    got g = { 0 };
    assert_true(nvx_dht_lookup(n[from].d, NVX_DHT_GET_PEERS, key, 0, NULL, on_got, &g, now) > 0);
    for (int k = 0; k < 10 && n_wire; k++)
        wire_run(n, 6, now);
    assert_true(g.done);
    assert_int_equal(g.peers, 1);
    assert_int_equal(g.port, port);
}

/* Node 0 is everyone's bootstrap; 1..5 join; 1 announces, 5 finds it. */
static void
test_nodes_announce(void **state)
{
    (void)state;
    wnode n[6];
    for (size_t i = 0; i < 6; i++)
        wnode_new(&n[i], 0x7f000001, (uint8_t)(i + 1));
    for (size_t i = 0; i < 6; i++)
        n[i].port = (uint16_t)(7000 + i);
    uint64_t now = 1000;
    for (size_t i = 1; i < 6; i++)
        assert_int_equal(nvx_dht_add_bootstrap(n[i].d, 0x7f000001, 7000), 0);
    for (int round = 0; round < 20; round++, now += 500) {
        for (size_t i = 0; i < 6; i++)
            nvx_dht_tick(n[i].d, now);
        for (int k = 0; k < 10 && n_wire; k++)
            wire_run(n, 6, now);
    }
    nvx_dht_stats st;
    nvx_dht_stats_get(n[0].d, &st);
    assert_int_equal(st.nodes, 5);
    uint8_t key[20] = { 0x42 };
    assert_true(nvx_dht_lookup(n[1].d, NVX_DHT_ANNOUNCE, key, 4747, NULL, NULL, NULL, now) > 0);
    for (int k = 0; k < 10 && n_wire; k++)
        wire_run(n, 6, now);
    expect_one_peer(n, 5, key, 4747, now);

    /* A node that stores itself under a key (a relay that is everyone's
     * bootstrap node) is found by a get_peers that reaches it, with no
     * announce anywhere. */
    uint8_t rkey[20];
    nvx_dht_relay_key(rkey);
    assert_int_equal(nvx_dht_store_self(n[0].d, rkey, 0x0b000001, 4747, now), 0);
    expect_one_peer(n, 3, rkey, 4747, now);

    /* The routing table survives a restart through the save format. */
    uint8_t save[NVX_DHT_SAVE_MAX];
    int len = nvx_dht_save(n[5].d, save, sizeof(save));
    assert_true(len > 30);
    nvx_dht *fresh;
    nvx_dht_opts o = { .ops = { .send = wire_send }, .arg = &n[5] };
    assert_int_equal(nvx_dht_new(&o, now, &fresh), 0);
    assert_int_equal(nvx_dht_load(fresh, save, (size_t)len), 5);
    assert_memory_equal(nvx_dht_id(fresh), nvx_dht_id(n[5].d), 20);
    save[29]++;
    assert_int_equal(nvx_dht_load(fresh, save, (size_t)len), -EBADMSG);
    nvx_dht_free(fresh);

    /* BEP 44: a signed item put by 2 is read by 4; a forged one is refused. */
    uint8_t pk[32], sk[64];
    crypto_sign_seed_keypair(pk, sk, (const uint8_t *)"0123456789abcdef0123456789abcdef");
    nvx_dht_item it = { .seq = 7, .salt_len = 4, .v_len = 7 };
    memcpy(it.k, pk, 32);
    memcpy(it.salt, "name", 4);
    memcpy(it.v, "5:hello", 7);
    uint8_t msg[256];
    int ml = nvx_krpc_item_signed(it.salt, it.salt_len, it.seq, it.v, it.v_len, msg, sizeof(msg));
    assert_true(ml > 0);
    crypto_sign_detached(it.sig, NULL, msg, (size_t)ml, sk);
    assert_true(nvx_dht_item_verify(&it));
    nvx_dht_item forged = it;
    forged.v[6] = 'X';
    assert_false(nvx_dht_item_verify(&forged));
    assert_int_equal(nvx_dht_lookup(n[2].d, NVX_DHT_PUT, NULL, 0, &forged, NULL, NULL, now),
                     -EBADMSG);
    assert_true(nvx_dht_lookup(n[2].d, NVX_DHT_PUT, NULL, 0, &it, NULL, NULL, now) > 0);
    for (int k = 0; k < 10 && n_wire; k++)
        wire_run(n, 6, now);
    got gi = { 0 };
    nvx_dht_item want = { .salt_len = 4 };
    memcpy(want.k, pk, 32);
    memcpy(want.salt, "name", 4);
    assert_true(nvx_dht_lookup(n[4].d, NVX_DHT_GET, NULL, 0, &want, on_got, &gi, now) > 0);
    for (int k = 0; k < 10 && n_wire; k++)
        wire_run(n, 6, now);
    assert_true(gi.done && gi.item);
    assert_int_equal(gi.seq, 7);
    assert_string_equal(gi.v, "5:hello");
    nvx_dht_stats_get(n[0].d, &st);
    assert_int_equal(st.items, 1);
    for (size_t i = 0; i < 6; i++)
        nvx_dht_free(n[i].d);
}

/* Queries straight at one node: answers, errors, limits. */
static nvx_krpc_msg last;
static uint8_t last_buf[NVX_KRPC_PACKET_MAX];
static size_t answers;

static void
keep_send(void *arg, uint32_t ip, uint16_t port, const uint8_t *buf, size_t len)
{
    (void)arg;
    (void)ip;
    (void)port;
    nvx_krpc_msg m;
    uint8_t copy[NVX_KRPC_PACKET_MAX];
    memcpy(copy, buf, len);
    assert_int_equal(nvx_krpc_decode(&m, copy, len), 0);
    if (m.kind == NVX_KRPC_QUERY)
        return; /* our ping back to a new querier */
    memcpy(last_buf, buf, len);
    assert_int_equal(nvx_krpc_decode(&last, last_buf, len), 0);
    answers++;
}

static void
query(nvx_dht *d, nvx_krpc_msg *q, uint32_t ip, uint64_t now)
{
    uint8_t buf[NVX_KRPC_PACKET_MAX];
    q->kind = NVX_KRPC_QUERY;
    q->tid_len = 2;
    q->has_id = true;
    memset(q->id, 0x33, 20);
    int n = nvx_krpc_encode(q, buf, sizeof(buf));
    assert_true(n > 0);
    nvx_dht_input(d, ip, 5000, buf, (size_t)n, now);
}

static void
test_node_limits(void **state)
{
    (void)state;
    nvx_dht *d;
    nvx_dht_opts o = { .ops = { .send = keep_send } };
    assert_int_equal(nvx_dht_new(&o, 0, &d), 0);
    uint64_t now = 1000000;
    /* announce_peer without a valid token: 203. */
    nvx_krpc_msg q = { .method = NVX_KRPC_ANNOUNCE_PEER,
                       .has_target = true,
                       .has_port = true,
                       .port = 80,
                       .token = (const uint8_t *)"12345678",
                       .token_len = 8 };
    query(d, &q, 0x0b000001, now);
    assert_int_equal(last.kind, NVX_KRPC_ERROR);
    assert_int_equal(last.err_code, NVX_KRPC_E_PROTOCOL);
    /* get_peers gives a token bound to the address. */
    nvx_krpc_msg g = { .method = NVX_KRPC_GET_PEERS, .has_target = true };
    query(d, &g, 0x0b000001, now);
    assert_int_equal(last.kind, NVX_KRPC_RESPONSE);
    uint8_t tok[NVX__DHT_TOKEN_LEN];
    assert_int_equal(last.token_len, sizeof(tok));
    memcpy(tok, last.token, sizeof(tok));
    q.token = tok;
    query(d, &q, 0x0b000002, now); /* another address: refused */
    assert_int_equal(last.kind, NVX_KRPC_ERROR);
    /* One source stores at most NVX_DHT_PEERS_PER_SOURCE peers. */
    unsigned stored = 0;
    for (int k = 0; k < NVX_DHT_PEERS_PER_SOURCE + 4; k++, now += 1000) {
        q.target[0] = (uint8_t)k;
        query(d, &q, 0x0b000001, now);
        stored += last.kind == NVX_KRPC_RESPONSE;
    }
    assert_int_equal(stored, NVX_DHT_PEERS_PER_SOURCE);
    /* An old token (two epochs) is refused. */
    q.target[0] = 0;
    query(d, &q, 0x0b000001, now + 2 * NVX_DHT_TOKEN_EPOCH_MS);
    assert_int_equal(last.kind, NVX_KRPC_ERROR);
    /* An unknown method: 204. */
    static const char unk[] = "d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:zz1:y1:qe";
    nvx_dht_input(d, 0x0b000009, 1, (const uint8_t *)unk, sizeof(unk) - 1, now);
    assert_int_equal(last.err_code, NVX_KRPC_E_METHOD);
    /* A query with a bad argument: 203, with its tid. */
    static const char badq[] = "d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe";
    nvx_dht_input(d, 0x0b000009, 1, (const uint8_t *)badq, sizeof(badq) - 1, now);
    assert_int_equal(last.err_code, NVX_KRPC_E_PROTOCOL);
    assert_memory_equal(last.tid, "zz", 2);
    /* Garbage and stray responses are counted and not answered. */
    size_t before = answers;
    nvx_dht_input(d, 0x0b000009, 1, (const uint8_t *)"garbage", 7, now);
    static const char stray[] = "d1:rd2:id20:abcdefghij0123456789e1:t4:\0\0\0\0001:y1:re";
    nvx_dht_input(d, 0x0b000009, 1, (const uint8_t *)stray, sizeof(stray) - 1, now);
    assert_int_equal(answers, before);
    /* Rate limit: a burst from one address, then silence. */
    nvx_krpc_msg p = { .method = NVX_KRPC_PING };
    before = answers;
    for (int k = 0; k < 3 * NVX_DHT_RL_BURST; k++)
        query(d, &p, 0x0b0000aa, now);
    assert_int_equal(answers - before, NVX_DHT_RL_BURST);
    nvx_dht_stats st;
    nvx_dht_stats_get(d, &st);
    assert_true(st.dropped >= NVX_DHT_RL_BURST);
    nvx_dht_free(d);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bencode),
        cmocka_unit_test(test_krpc_roundtrip),
        cmocka_unit_test(test_krpc_malformed),
        cmocka_unit_test(test_bep42),
        cmocka_unit_test(test_relay_key_and_rank),
        cmocka_unit_test_setup_teardown(test_nodes_announce, setup, teardown),
        cmocka_unit_test(test_node_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
