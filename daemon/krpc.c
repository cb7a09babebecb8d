/* SPDX-License-Identifier: MIT */
/*
 * KRPC messages over bencode (daemon/krpc.h).
 */
#include "daemon/krpc.h"

#include <errno.h>
#include <string.h>

static const char *const method_names[_NVX_KRPC_METHOD_MAX] = {
    [NVX_KRPC_PING] = "ping",
    [NVX_KRPC_FIND_NODE] = "find_node",
    [NVX_KRPC_GET_PEERS] = "get_peers",
    [NVX_KRPC_ANNOUNCE_PEER] = "announce_peer",
    [NVX_KRPC_GET] = "get",
    [NVX_KRPC_PUT] = "put",
};

const char *
nvx_krpc_method_name(nvx_krpc_method q)
{
    return (unsigned)q < _NVX_KRPC_METHOD_MAX ? method_names[q] : NULL;
}

static uint32_t
load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void
nvx_krpc_put_peer(uint8_t out[static NVX_KRPC_PEER_LEN], uint32_t ip, uint16_t port)
{
    store_be32(out, ip);
    out[4] = (uint8_t)(port >> 8);
    out[5] = (uint8_t)port;
}

void
nvx_krpc_get_peer(const uint8_t in[static NVX_KRPC_PEER_LEN], uint32_t *ip, uint16_t *port)
{
    *ip = load_be32(in);
    *port = (uint16_t)(in[4] << 8 | in[5]);
}

void
nvx_krpc_put_node(uint8_t out[static NVX_KRPC_NODE_LEN], const uint8_t id[static 20], uint32_t ip,
                  uint16_t port)
{
    memcpy(out, id, 20);
    nvx_krpc_put_peer(out + 20, ip, port);
}

void
nvx_krpc_get_node(const uint8_t in[static NVX_KRPC_NODE_LEN], uint8_t id[static 20], uint32_t *ip,
                  uint16_t *port)
{
    memcpy(id, in, 20);
    nvx_krpc_get_peer(in + 20, ip, port);
}

/* ---------------------------------------------------------------------- */
/* Decoding */

/* A string field of exactly n bytes (n == 0: any length up to max). */
static int
get_bytes(const nvx_benc *b, unsigned dict, const char *key, size_t n, size_t max,
          const uint8_t **ret, size_t *ret_len)
{
    int i = nvx_benc_dict_get_type(b, dict, key, NVX_BENC_STR);
    if (i < 0)
        return i;
    size_t len;
    const uint8_t *p = nvx_benc_str(b, (unsigned)i, &len);
    if ((n && len != n) || len > max)
        return -EBADMSG;
    *ret = p;
    if (ret_len)
        *ret_len = len;
    return 0;
}

/* Optional field: -ENOENT becomes "absent" (returns 0, *present false). */
static int
opt(int r, bool *present)
{
    *present = r == 0;
    return r == -ENOENT ? 0 : r;
}

static int
get_int(const nvx_benc *b, unsigned dict, const char *key, int64_t *ret, bool *present)
{
    int i = nvx_benc_dict_get_type(b, dict, key, NVX_BENC_INT);
    if (i >= 0)
        *ret = b->t[i].i;
    return opt(i < 0 ? i : 0, present);
}

static int
get_id(const nvx_benc *b, unsigned dict, const char *key, uint8_t out[static 20], bool *present)
{
    const uint8_t *p;
    int r = opt(get_bytes(b, dict, key, 20, 20, &p, NULL), present);
    if (r == 0 && *present)
        memcpy(out, p, 20);
    return r;
}

static int
decode_values(nvx_krpc_msg *m, const nvx_benc *b, unsigned dict)
{
    int li = nvx_benc_dict_get(b, dict, "values");
    if (li == -ENOENT)
        return 0;
    if (li < 0 || b->t[li].type != NVX_BENC_LIST)
        return -EBADMSG;
    unsigned i = (unsigned)li + 1;
    for (unsigned k = 0; k < b->t[li].count; k++, i = b->t[i].next) {
        if (b->t[i].type != NVX_BENC_STR)
            return -EBADMSG;
        size_t len;
        const uint8_t *p = nvx_benc_str(b, i, &len);
        /* IPv6 peers (18 bytes) are skipped: this node speaks IPv4. */
        if (len != NVX_KRPC_PEER_LEN)
            continue;
        if (m->n_values == NVX_KRPC_VALUES_MAX)
            break; /* more than we keep: the rest are ignored, not an error */
        m->values[m->n_values++] = p;
    }
    return 0;
}

/* The fields of an "a" or "r" dict. */
static int
decode_body(nvx_krpc_msg *m, const nvx_benc *b, unsigned d)
{
    int r = get_id(b, d, "id", m->id, &m->has_id);
    if (r < 0 || !m->has_id)
        return -EBADMSG; /* every query and response names its sender */
    const char *tkey = m->method == NVX_KRPC_GET_PEERS || m->method == NVX_KRPC_ANNOUNCE_PEER
                           ? "info_hash"
                           : "target";
    if ((r = get_id(b, d, tkey, m->target, &m->has_target)) < 0)
        return r;
    bool present;
    int64_t v;
    if ((r = get_int(b, d, "port", &v, &m->has_port)) < 0)
        return r;
    if (m->has_port && (v < 1 || v > 65535))
        return -EBADMSG;
    m->port = m->has_port ? (uint16_t)v : 0;
    if ((r = get_int(b, d, "implied_port", &v, &present)) < 0)
        return r;
    m->implied_port = present && v != 0;
    if ((r = opt(get_bytes(b, d, "token", 0, NVX_KRPC_TOKEN_MAX, &m->token, &m->token_len),
                 &present)) < 0)
        return r;
    size_t len = 0;
    if ((r = opt(
             get_bytes(b, d, "nodes", 0, NVX_KRPC_NODES_MAX * NVX_KRPC_NODE_LEN, &m->nodes, &len),
             &present)) < 0)
        return r;
    if (len % NVX_KRPC_NODE_LEN)
        return -EBADMSG;
    m->n_nodes = len / NVX_KRPC_NODE_LEN;
    if ((r = decode_values(m, b, d)) < 0)
        return r;
    /* BEP 44 */
    if ((r = opt(get_bytes(b, d, "k", NVX_KRPC_KEY_LEN, NVX_KRPC_KEY_LEN, &m->k, NULL), &present)) <
        0)
        return r;
    if ((r = opt(get_bytes(b, d, "sig", NVX_KRPC_SIG_LEN, NVX_KRPC_SIG_LEN, &m->sig, NULL),
                 &present)) < 0)
        return r;
    if ((r = opt(get_bytes(b, d, "salt", 0, NVX_KRPC_SALT_MAX, &m->salt, &m->salt_len), &present)) <
        0)
        return r;
    if ((r = get_int(b, d, "seq", &m->seq, &m->has_seq)) < 0)
        return r;
    if ((r = get_int(b, d, "cas", &m->cas, &m->has_cas)) < 0)
        return r;
    int vi = nvx_benc_dict_get(b, d, "v");
    if (vi >= 0) {
        m->v = b->buf + b->t[vi].start;
        m->v_len = b->t[vi].end - b->t[vi].start;
        if (m->v_len > NVX_KRPC_V_MAX)
            return -EMSGSIZE;
    }
    return 0;
}

static nvx_krpc_method
method_of(const uint8_t *q, size_t len)
{
    for (unsigned i = 1; i < NVX_KRPC_UNKNOWN; i++)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], q, len) == 0)
            return (nvx_krpc_method)i;
    return NVX_KRPC_UNKNOWN;
}

int
nvx_krpc_decode(nvx_krpc_msg *m, const uint8_t *buf, size_t len)
{
    nvx_benc b;
    memset(m, 0, sizeof(*m));
    int r = nvx_benc_decode(&b, buf, len);
    if (r < 0)
        return r;
    if (b.t[0].type != NVX_BENC_DICT)
        return -EBADMSG;
    const uint8_t *p;
    size_t n;
    if ((r = get_bytes(&b, 0, "t", 0, NVX_KRPC_TID_MAX, &p, &n)) < 0 || n == 0)
        return -EBADMSG;
    memcpy(m->tid, p, n);
    m->tid_len = (uint8_t)n;
    if ((r = get_bytes(&b, 0, "y", 1, 1, &p, NULL)) < 0)
        return -EBADMSG;
    bool present;
    if (*p == 'q') {
        m->kind = NVX_KRPC_QUERY;
        if ((r = get_bytes(&b, 0, "q", 0, 16, &p, &n)) < 0)
            return -EBADMSG;
        m->method = (uint8_t)method_of(p, n);
        int64_t ro = 0;
        if ((r = get_int(&b, 0, "ro", &ro, &present)) < 0)
            return r;
        m->read_only = ro == 1;
        int a = nvx_benc_dict_get_type(&b, 0, "a", NVX_BENC_DICT);
        if (a < 0)
            return -EBADMSG;
        return decode_body(m, &b, (unsigned)a);
    }
    if (*p == 'r') {
        m->kind = NVX_KRPC_RESPONSE;
        const uint8_t *ip;
        if ((r = opt(get_bytes(&b, 0, "ip", NVX_KRPC_PEER_LEN, NVX_KRPC_PEER_LEN, &ip, NULL),
                     &m->has_ip)) < 0)
            return r;
        if (m->has_ip)
            nvx_krpc_get_peer(ip, &m->ip, &m->ip_port);
        int rd = nvx_benc_dict_get_type(&b, 0, "r", NVX_BENC_DICT);
        if (rd < 0)
            return -EBADMSG;
        return decode_body(m, &b, (unsigned)rd);
    }
    if (*p == 'e') {
        m->kind = NVX_KRPC_ERROR;
        int e = nvx_benc_dict_get_type(&b, 0, "e", NVX_BENC_LIST);
        if (e < 0 || b.t[e].count < 2)
            return -EBADMSG;
        unsigned c = (unsigned)e + 1, s = b.t[c].next;
        if (b.t[c].type != NVX_BENC_INT || b.t[s].type != NVX_BENC_STR)
            return -EBADMSG;
        m->err_code = b.t[c].i;
        m->err_msg = nvx_benc_str(&b, s, &m->err_len);
        if (m->err_len > NVX_KRPC_ERRMSG_MAX)
            m->err_len = NVX_KRPC_ERRMSG_MAX;
        return 0;
    }
    return -EBADMSG;
}

/* ---------------------------------------------------------------------- */
/* Encoding (keys in ascending byte order, as bencode requires) */

static void
put_body(nvx_benc_writer *w, const nvx_krpc_msg *m)
{
    nvx_benc_open_dict(w);
    if (m->has_cas) {
        nvx_benc_put_cstr(w, "cas");
        nvx_benc_put_int(w, m->cas);
    }
    nvx_benc_put_cstr(w, "id");
    nvx_benc_put_str(w, m->id, 20);
    bool ih = m->method == NVX_KRPC_GET_PEERS || m->method == NVX_KRPC_ANNOUNCE_PEER;
    if (m->implied_port) {
        nvx_benc_put_cstr(w, "implied_port");
        nvx_benc_put_int(w, 1);
    }
    if (m->has_target && ih) {
        nvx_benc_put_cstr(w, "info_hash");
        nvx_benc_put_str(w, m->target, 20);
    }
    if (m->k) {
        nvx_benc_put_cstr(w, "k");
        nvx_benc_put_str(w, m->k, NVX_KRPC_KEY_LEN);
    }
    if (m->n_nodes) {
        nvx_benc_put_cstr(w, "nodes");
        nvx_benc_put_str(w, m->nodes, m->n_nodes * NVX_KRPC_NODE_LEN);
    }
    if (m->has_port) {
        nvx_benc_put_cstr(w, "port");
        nvx_benc_put_int(w, m->port);
    }
    if (m->salt_len) {
        nvx_benc_put_cstr(w, "salt");
        nvx_benc_put_str(w, m->salt, m->salt_len);
    }
    if (m->has_seq) {
        nvx_benc_put_cstr(w, "seq");
        nvx_benc_put_int(w, m->seq);
    }
    if (m->sig) {
        nvx_benc_put_cstr(w, "sig");
        nvx_benc_put_str(w, m->sig, NVX_KRPC_SIG_LEN);
    }
    if (m->has_target && !ih) {
        nvx_benc_put_cstr(w, "target");
        nvx_benc_put_str(w, m->target, 20);
    }
    if (m->token) {
        nvx_benc_put_cstr(w, "token");
        nvx_benc_put_str(w, m->token, m->token_len);
    }
    if (m->v) {
        nvx_benc_put_cstr(w, "v");
        nvx_benc_put_raw(w, m->v, m->v_len);
    }
    if (m->n_values) {
        nvx_benc_put_cstr(w, "values");
        nvx_benc_open_list(w);
        for (size_t i = 0; i < m->n_values; i++)
            nvx_benc_put_str(w, m->values[i], NVX_KRPC_PEER_LEN);
        nvx_benc_close(w);
    }
    nvx_benc_close(w);
}

int
nvx_krpc_encode(const nvx_krpc_msg *m, uint8_t *buf, size_t cap)
{
    if (!m->tid_len || m->tid_len > NVX_KRPC_TID_MAX)
        return -EINVAL;
    nvx_benc_writer w;
    nvx_benc_writer_init(&w, buf, cap);
    nvx_benc_open_dict(&w);
    switch (m->kind) {
    case NVX_KRPC_QUERY: {
        const char *q = nvx_krpc_method_name((nvx_krpc_method)m->method);
        if (!q)
            return -EINVAL;
        nvx_benc_put_cstr(&w, "a");
        put_body(&w, m);
        nvx_benc_put_cstr(&w, "q");
        nvx_benc_put_cstr(&w, q);
        if (m->read_only) {
            nvx_benc_put_cstr(&w, "ro");
            nvx_benc_put_int(&w, 1);
        }
        break;
    }
    case NVX_KRPC_RESPONSE:
        if (m->has_ip) {
            uint8_t ip[NVX_KRPC_PEER_LEN];
            nvx_krpc_put_peer(ip, m->ip, m->ip_port);
            nvx_benc_put_cstr(&w, "ip");
            nvx_benc_put_str(&w, ip, sizeof(ip));
        }
        nvx_benc_put_cstr(&w, "r");
        put_body(&w, m);
        break;
    case NVX_KRPC_ERROR:
        nvx_benc_put_cstr(&w, "e");
        nvx_benc_open_list(&w);
        nvx_benc_put_int(&w, m->err_code);
        nvx_benc_put_str(&w, m->err_msg, m->err_msg ? m->err_len : 0);
        nvx_benc_close(&w);
        break;
    default:
        return -EINVAL;
    }
    nvx_benc_put_cstr(&w, "t");
    nvx_benc_put_str(&w, m->tid, m->tid_len);
    nvx_benc_put_cstr(&w, "y");
    nvx_benc_put_str(&w,
                     m->kind == NVX_KRPC_QUERY      ? "q"
                     : m->kind == NVX_KRPC_RESPONSE ? "r"
                                                    : "e",
                     1);
    nvx_benc_close(&w);
    return nvx_benc_writer_end(&w);
}

int
nvx_krpc_item_signed(const uint8_t *salt, size_t salt_len, int64_t seq, const uint8_t *v,
                     size_t v_len, uint8_t *out, size_t cap)
{
    nvx_benc_writer w;
    nvx_benc_writer_init(&w, out, cap);
    if (salt_len) {
        nvx_benc_put_cstr(&w, "salt");
        nvx_benc_put_str(&w, salt, salt_len);
    }
    nvx_benc_put_cstr(&w, "seq");
    nvx_benc_put_int(&w, seq);
    nvx_benc_put_cstr(&w, "v");
    nvx_benc_put_raw(&w, v, v_len);
    return nvx_benc_writer_end(&w);
}
