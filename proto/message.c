/* SPDX-License-Identifier: MIT */
/*
 * Peer message codec. Layouts: proto/PROTOCOL.md and message.h. Every
 * decoder reads through a bounds-checked cursor, checks each count against a
 * named limit before using it, and requires the body to end exactly where
 * the message does. Every encoder applies the same range checks, so a body
 * this code writes is one this code reads.
 */
#include "proto/message.h"

#include <errno.h>
#include <string.h>

#include "common/bits.h"
#include "proto/internal.h"

static const char *const type_names[_PROTO_MSG_TYPE_MAX] = {
    [PROTO_MSG_PING] = "PING",
    [PROTO_MSG_PONG] = "PONG",
    [PROTO_MSG_WANT] = "WANT",
    [PROTO_MSG_HAVE] = "HAVE",
    [PROTO_MSG_REQUEST] = "REQUEST",
    [PROTO_MSG_DATA] = "DATA",
    [PROTO_MSG_CANCEL] = "CANCEL",
    [PROTO_MSG_NOT_FOUND] = "NOT_FOUND",
    [PROTO_MSG_MANIFEST_REQ] = "MANIFEST_REQ",
    [PROTO_MSG_MANIFEST] = "MANIFEST",
    [PROTO_MSG_ANNOUNCE] = "ANNOUNCE",
    [PROTO_MSG_PEERS] = "PEERS",
    [PROTO_MSG_BYE] = "BYE",
    [PROTO_MSG_SIGS_REQ] = "SIGS_REQ",
    [PROTO_MSG_REVERSE_REQ] = "REVERSE_REQ",
    [PROTO_MSG_REVERSE] = "REVERSE",
    [PROTO_MSG_REVERSE_AT] = "REVERSE_AT",
    [PROTO_MSG_SIGS] = "SIGS",
};

bool
proto_msg_type_known(uint8_t type)
{
    return type >= PROTO_MSG_PING && type < _PROTO_MSG_TYPE_MAX;
}

const char *
proto_msg_type_name(uint8_t type)
{
    if (type == PROTO_MSG_HELLO)
        return "HELLO";
    if (!proto_msg_type_known(type))
        return "?";
    return type_names[type];
}

bool
proto_chunkset_contains(const proto_chunkset *set, uint32_t idx)
{
    switch (set->kind) {
    case PROTO_CHUNKSET_ALL:
        return true;
    case PROTO_CHUNKSET_RANGES:
        for (size_t i = 0; i < set->n_ranges; i++)
            if (idx >= set->ranges[i].start && idx - set->ranges[i].start < set->ranges[i].count)
                return true;
        return false;
    case PROTO_CHUNKSET_BITMAP:
        return idx < set->nbits && bit_get(set->bitmap, idx);
    default:
        return false;
    }
}

/* ---- shared field rules ---- */

/* A u8-length-prefixed string of lo..hi bytes, tokens or text. */
static int
rd_str8(proto__rd *r, size_t lo, size_t hi, bool text, proto_str *ret)
{
    uint8_t n;
    const uint8_t *p;
    int k = proto__rd_u8(r, &n);
    if (k < 0)
        return k;
    if (n < lo || n > hi)
        return -EBADMSG;
    k = proto__rd_bytes(r, n, &p);
    if (k < 0)
        return k;
    if (!(text ? proto__is_text(p, n) : proto__is_token(p, n)))
        return -EBADMSG;
    ret->p = p;
    ret->len = n;
    return 0;
}

static bool
str_ok(const proto_str *s, size_t lo, size_t hi, bool text)
{
    if (s->len < lo || s->len > hi || (s->len && !s->p))
        return false;
    return text ? proto__is_text(s->p, s->len) : proto__is_token(s->p, s->len);
}

static void
wr_str8(proto__wr *w, const proto_str *s)
{
    proto__wr_u8(w, (uint8_t)s->len);
    proto__wr_bytes(w, s->p, s->len);
}

static int
rd_id(proto__rd *r, uint8_t out[static PROTO_ID_LEN])
{
    const uint8_t *p;
    int k = proto__rd_bytes(r, PROTO_ID_LEN, &p);
    if (k < 0)
        return k;
    memcpy(out, p, PROTO_ID_LEN);
    return 0;
}

/* ---- HELLO ---- */

static int
hello_check(const proto_hello *h)
{
    if (h->version_min > h->version_max || h->version_min == 0)
        return -EINVAL;
    if (!str_ok(&h->agent, 0, PROTO_AGENT_MAX, true) || h->n_addrs > PROTO_HELLO_ADDRS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < h->n_addrs; i++)
        if (!str_ok(&h->addrs[i], 1, PROTO_ADDR_MAX, false))
            return -EINVAL;
    return 0;
}

static void
hello_write(proto__wr *w, const proto_hello *h)
{
    proto__wr_bytes(w, h->node_id, PROTO_ID_LEN);
    proto__wr_u16(w, h->version_min);
    proto__wr_u16(w, h->version_max);
    proto__wr_u64(w, h->features);
    wr_str8(w, &h->agent);
    proto__wr_u8(w, (uint8_t)h->n_addrs);
    for (size_t i = 0; i < h->n_addrs; i++)
        wr_str8(w, &h->addrs[i]);
}

static int
hello_read(proto__rd *r, proto_hello *h)
{
    uint8_t n = 0;
    int k = rd_id(r, h->node_id);
    if (k >= 0)
        k = proto__rd_u16(r, &h->version_min);
    if (k >= 0)
        k = proto__rd_u16(r, &h->version_max);
    if (k >= 0)
        k = proto__rd_u64(r, &h->features);
    if (k >= 0)
        k = rd_str8(r, 0, PROTO_AGENT_MAX, true, &h->agent);
    if (k >= 0)
        k = proto__rd_u8(r, &n);
    if (k < 0)
        return k;
    if (n > PROTO_HELLO_ADDRS_MAX || h->version_min == 0 || h->version_min > h->version_max)
        return -EBADMSG;
    h->n_addrs = n;
    for (size_t i = 0; i < n; i++) {
        k = rd_str8(r, 1, PROTO_ADDR_MAX, false, &h->addrs[i]);
        if (k < 0)
            return k;
    }
    return 0;
}

/* ---- chunk sets (WANT, HAVE) ---- */

static size_t
bitmap_bytes(uint32_t nbits)
{
    return ((size_t)nbits + 7) / 8;
}

/* Ranges must be sorted, non-empty, disjoint and not touching (a canonical
 * form: one set, one encoding), and stay below PROTO_CHUNKS_MAX. */
static bool
ranges_ok(const proto_range *rg, size_t n)
{
    uint64_t next = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t end = (uint64_t)rg[i].start + rg[i].count;
        if (rg[i].count == 0 || end > PROTO_CHUNKS_MAX)
            return false;
        if (i > 0 && rg[i].start <= next)
            return false;
        next = end;
    }
    return true;
}

static bool
bitmap_ok(const uint8_t *bm, uint32_t nbits)
{
    if (nbits == 0 || nbits > PROTO_CHUNKS_MAX || !bm)
        return false;
    if (nbits % 8 && (bm[nbits / 8] >> (nbits % 8)) != 0)
        return false;
    return true;
}

static int
chunkset_check(const proto_chunkset *s)
{
    switch (s->kind) {
    case PROTO_CHUNKSET_ALL:
        return 0;
    case PROTO_CHUNKSET_RANGES:
        return s->n_ranges >= 1 && s->n_ranges <= PROTO_RANGES_MAX &&
                       ranges_ok(s->ranges, s->n_ranges)
                   ? 0
                   : -EINVAL;
    case PROTO_CHUNKSET_BITMAP:
        return bitmap_ok(s->bitmap, s->nbits) ? 0 : -EINVAL;
    default:
        return -EINVAL;
    }
}

static void
chunkset_write(proto__wr *w, const proto_chunkset *s)
{
    proto__wr_u8(w, s->kind);
    if (s->kind == PROTO_CHUNKSET_RANGES) {
        proto__wr_u16(w, (uint16_t)s->n_ranges);
        for (size_t i = 0; i < s->n_ranges; i++) {
            proto__wr_u32(w, s->ranges[i].start);
            proto__wr_u32(w, s->ranges[i].count);
        }
    } else if (s->kind == PROTO_CHUNKSET_BITMAP) {
        proto__wr_u32(w, s->nbits);
        proto__wr_bytes(w, s->bitmap, bitmap_bytes(s->nbits));
    }
}

static int
chunkset_read(proto__rd *r, proto_chunkset *s)
{
    int k = proto__rd_u8(r, &s->kind);
    if (k < 0)
        return k;
    s->n_ranges = 0;
    s->nbits = 0;
    s->bitmap = NULL;
    if (s->kind == PROTO_CHUNKSET_ALL)
        return 0;
    if (s->kind == PROTO_CHUNKSET_RANGES) {
        uint16_t n;
        k = proto__rd_u16(r, &n);
        if (k < 0)
            return k;
        if (n == 0 || n > PROTO_RANGES_MAX || proto__rd_left(r) / 8 < n)
            return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
            (void)proto__rd_u32(r, &s->ranges[i].start);
            (void)proto__rd_u32(r, &s->ranges[i].count);
        }
        s->n_ranges = n;
        return ranges_ok(s->ranges, n) ? 0 : -EBADMSG;
    }
    if (s->kind == PROTO_CHUNKSET_BITMAP) {
        k = proto__rd_u32(r, &s->nbits);
        if (k < 0)
            return k;
        if (s->nbits == 0 || s->nbits > PROTO_CHUNKS_MAX)
            return -EBADMSG;
        k = proto__rd_bytes(r, bitmap_bytes(s->nbits), &s->bitmap);
        if (k < 0)
            return k;
        return bitmap_ok(s->bitmap, s->nbits) ? 0 : -EBADMSG;
    }
    return -EBADMSG;
}

/* ---- REQUEST / CANCEL / DATA range rule ---- */

static bool
piece_ok(uint32_t offset, uint64_t length)
{
    return length >= 1 && length <= PROTO_CHUNK_MAX && offset < PROTO_CHUNK_MAX &&
           (uint64_t)offset + length <= PROTO_CHUNK_MAX;
}

/* ---- ANNOUNCE records ---- */

static int
record_check(const proto_record *rec)
{
    if (rec->kind == PROTO_RECORD_PROVIDER)
        return 0;
    if (rec->kind != PROTO_RECORD_NAME)
        return -EINVAL;
    const proto_name_record *n = &rec->u.name;
    if (!str_ok(&n->name, 1, PROTO_NAME_MAX, false) || n->sig.len < 1 ||
        n->sig.len > PROTO_SIG_MAX || !n->sig.p)
        return -EINVAL;
    return 0;
}

static void
record_write(proto__wr *w, const proto_record *rec)
{
    /* kind, u16 body length, body: lets older nodes skip unknown kinds. */
    proto__wr_u8(w, rec->kind);
    size_t len_at = w->off;
    proto__wr_u16(w, 0);
    size_t start = w->off;
    if (rec->kind == PROTO_RECORD_PROVIDER) {
        const proto_provider_record *p = &rec->u.provider;
        proto__wr_bytes(w, p->node_id, PROTO_ID_LEN);
        proto__wr_bytes(w, p->model_id, PROTO_ID_LEN);
        proto__wr_u64(w, p->time);
        proto__wr_u32(w, p->ttl_s);
        proto__wr_u8(w, p->hops);
        proto__wr_bytes(w, p->sig, PROTO_NODE_SIG_LEN);
    } else {
        const proto_name_record *n = &rec->u.name;
        proto__wr_bytes(w, n->key_id, PROTO_KEYID_LEN);
        wr_str8(w, &n->name);
        proto__wr_u64(w, n->sequence);
        proto__wr_bytes(w, n->model_id, PROTO_ID_LEN);
        proto__wr_u64(w, n->time);
        proto__wr_u32(w, n->ttl_s);
        proto__wr_u8(w, n->hops);
        proto__wr_u16(w, (uint16_t)n->sig.len);
        proto__wr_bytes(w, n->sig.p, n->sig.len);
    }
    if (w->err == 0 && w->p)
        be16_store(w->p + len_at, (uint16_t)(w->off - start));
}

/* Reads one record; *ret_known is false for a skipped unknown kind. */
static int
record_read(proto__rd *r, proto_record *rec, bool *ret_known)
{
    uint8_t kind;
    uint16_t blen;
    const uint8_t *body;
    int k = proto__rd_u8(r, &kind);
    if (k >= 0)
        k = proto__rd_u16(r, &blen);
    if (k >= 0)
        k = proto__rd_bytes(r, blen, &body);
    if (k < 0)
        return k;
    *ret_known = kind == PROTO_RECORD_PROVIDER || kind == PROTO_RECORD_NAME;
    if (!*ret_known)
        return 0;
    proto__rd b = { .p = body, .len = blen };
    rec->kind = kind;
    if (kind == PROTO_RECORD_PROVIDER) {
        proto_provider_record *p = &rec->u.provider;
        k = rd_id(&b, p->node_id);
        const uint8_t *sig;
        if (k >= 0)
            k = rd_id(&b, p->model_id);
        if (k >= 0)
            k = proto__rd_u64(&b, &p->time);
        if (k >= 0)
            k = proto__rd_u32(&b, &p->ttl_s);
        if (k >= 0)
            k = proto__rd_u8(&b, &p->hops);
        if (k >= 0)
            k = proto__rd_bytes(&b, PROTO_NODE_SIG_LEN, &sig);
        if (k >= 0)
            memcpy(p->sig, sig, PROTO_NODE_SIG_LEN);
    } else {
        proto_name_record *n = &rec->u.name;
        const uint8_t *kid;
        uint16_t slen = 0;
        k = proto__rd_bytes(&b, PROTO_KEYID_LEN, &kid);
        if (k >= 0) {
            memcpy(n->key_id, kid, PROTO_KEYID_LEN);
            k = rd_str8(&b, 1, PROTO_NAME_MAX, false, &n->name);
        }
        if (k >= 0)
            k = proto__rd_u64(&b, &n->sequence);
        if (k >= 0)
            k = rd_id(&b, n->model_id);
        if (k >= 0)
            k = proto__rd_u64(&b, &n->time);
        if (k >= 0)
            k = proto__rd_u32(&b, &n->ttl_s);
        if (k >= 0)
            k = proto__rd_u8(&b, &n->hops);
        if (k >= 0)
            k = proto__rd_u16(&b, &slen);
        if (k >= 0 && (slen < 1 || slen > PROTO_SIG_MAX))
            k = -EBADMSG;
        if (k >= 0)
            k = proto__rd_bytes(&b, slen, &n->sig.p);
        n->sig.len = slen;
    }
    if (k >= 0 && proto__rd_left(&b) != 0)
        k = -EBADMSG;
    return k;
}

static int
sigs_read(proto__rd *r, proto_sigs *s)
{
    uint8_t n;
    int k = proto__rd_u32(r, &s->req_id);
    if (k >= 0)
        k = rd_id(r, s->model_id);
    if (k >= 0)
        k = proto__rd_u8(r, &n);
    if (k < 0)
        return k;
    if (n > PROTO_SIGS_MAX)
        return -EBADMSG;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        uint16_t len;
        k = proto__rd_u16(r, &len);
        if (k < 0)
            return k;
        if (len < 1 || len > PROTO_SIG_MAX)
            return -EBADMSG;
        k = proto__rd_bytes(r, len, &s->sigs[i].p);
        if (k < 0)
            return k;
        s->sigs[i].len = len;
    }
    return 0;
}

/* ---- dispatch ---- */

static int
msg_check(const proto_msg *m)
{
    switch (m->type) {
    case PROTO_MSG_HELLO:
        return hello_check(&m->u.hello);
    case PROTO_MSG_PING:
    case PROTO_MSG_PONG:
        return 0;
    case PROTO_MSG_WANT:
    case PROTO_MSG_HAVE:
        return chunkset_check(&m->u.want.set);
    case PROTO_MSG_REQUEST:
    case PROTO_MSG_CANCEL:
        return piece_ok(m->u.request.offset, m->u.request.length) ? 0 : -EINVAL;
    case PROTO_MSG_DATA:
        return piece_ok(m->u.data.offset, m->u.data.bytes.len) && m->u.data.bytes.p ? 0 : -EINVAL;
    case PROTO_MSG_NOT_FOUND:
        return m->u.not_found.what < _PROTO_NOTFOUND_MAX ? 0 : -EINVAL;
    case PROTO_MSG_MANIFEST_REQ: {
        const proto_manifest_req *q = &m->u.manifest_req;
        return q->length >= 1 && q->length <= PROTO_MANIFEST_PIECE_MAX &&
                       q->offset < PROTO_MANIFEST_MAX
                   ? 0
                   : -EINVAL;
    }
    case PROTO_MSG_MANIFEST: {
        const proto_manifest *f = &m->u.manifest;
        if (f->total < 1 || f->total > PROTO_MANIFEST_MAX || f->bytes.len < 1 ||
            f->bytes.len > PROTO_MANIFEST_PIECE_MAX || !f->bytes.p)
            return -EINVAL;
        return (uint64_t)f->offset + f->bytes.len <= f->total ? 0 : -EINVAL;
    }
    case PROTO_MSG_ANNOUNCE:
        if (m->u.announce.n > PROTO_ANNOUNCE_MAX)
            return -EINVAL;
        for (size_t i = 0; i < m->u.announce.n; i++)
            if (record_check(&m->u.announce.records[i]) < 0)
                return -EINVAL;
        return 0;
    case PROTO_MSG_PEERS:
        if (m->u.peers.n > PROTO_PEERS_MAX)
            return -EINVAL;
        for (size_t i = 0; i < m->u.peers.n; i++)
            if (!str_ok(&m->u.peers.peers[i].addr, 1, PROTO_ADDR_MAX, false))
                return -EINVAL;
        return 0;
    case PROTO_MSG_BYE:
        return str_ok(&m->u.bye.text, 0, PROTO_BYE_TEXT_MAX, true) ? 0 : -EINVAL;
    case PROTO_MSG_SIGS_REQ:
    case PROTO_MSG_REVERSE_REQ:
        return 0;
    case PROTO_MSG_REVERSE:
    case PROTO_MSG_REVERSE_AT:
        return str_ok(&m->u.reverse.addr, 1, PROTO_ADDR_MAX, false) ? 0 : -EINVAL;
    case PROTO_MSG_SIGS:
        if (m->u.sigs.n > PROTO_SIGS_MAX)
            return -EINVAL;
        for (size_t i = 0; i < m->u.sigs.n; i++)
            if (m->u.sigs.sigs[i].len < 1 || m->u.sigs.sigs[i].len > PROTO_SIG_MAX ||
                !m->u.sigs.sigs[i].p)
                return -EINVAL;
        return 0;
    default:
        return -EINVAL;
    }
}

/* DATA's fields in front of its bytes (the length is bytes.len). */
static void
data_head_write(proto__wr *w, const proto_data *d)
{
    proto__wr_u32(w, d->req_id);
    proto__wr_bytes(w, d->model_id, PROTO_ID_LEN);
    proto__wr_u32(w, d->chunk);
    proto__wr_u32(w, d->offset);
    proto__wr_u32(w, (uint32_t)d->bytes.len);
}

static void
msg_write(proto__wr *w, const proto_msg *m)
{
    switch (m->type) {
    case PROTO_MSG_HELLO:
        hello_write(w, &m->u.hello);
        break;
    case PROTO_MSG_PING:
    case PROTO_MSG_PONG:
        proto__wr_u64(w, m->u.ping.nonce);
        break;
    case PROTO_MSG_WANT:
    case PROTO_MSG_HAVE:
        proto__wr_bytes(w, m->u.want.model_id, PROTO_ID_LEN);
        chunkset_write(w, &m->u.want.set);
        break;
    case PROTO_MSG_REQUEST:
    case PROTO_MSG_CANCEL:
        proto__wr_u32(w, m->u.request.req_id);
        proto__wr_bytes(w, m->u.request.model_id, PROTO_ID_LEN);
        proto__wr_u32(w, m->u.request.chunk);
        proto__wr_u32(w, m->u.request.offset);
        proto__wr_u32(w, m->u.request.length);
        break;
    case PROTO_MSG_DATA:
        data_head_write(w, &m->u.data);
        proto__wr_bytes(w, m->u.data.bytes.p, m->u.data.bytes.len);
        break;
    case PROTO_MSG_NOT_FOUND:
        proto__wr_u32(w, m->u.not_found.req_id);
        proto__wr_bytes(w, m->u.not_found.model_id, PROTO_ID_LEN);
        proto__wr_u32(w, m->u.not_found.chunk);
        proto__wr_u8(w, m->u.not_found.what);
        break;
    case PROTO_MSG_MANIFEST_REQ:
        proto__wr_u32(w, m->u.manifest_req.req_id);
        proto__wr_bytes(w, m->u.manifest_req.model_id, PROTO_ID_LEN);
        proto__wr_u32(w, m->u.manifest_req.offset);
        proto__wr_u32(w, m->u.manifest_req.length);
        break;
    case PROTO_MSG_MANIFEST:
        proto__wr_u32(w, m->u.manifest.req_id);
        proto__wr_bytes(w, m->u.manifest.model_id, PROTO_ID_LEN);
        proto__wr_u32(w, m->u.manifest.total);
        proto__wr_u32(w, m->u.manifest.offset);
        proto__wr_u32(w, (uint32_t)m->u.manifest.bytes.len);
        proto__wr_bytes(w, m->u.manifest.bytes.p, m->u.manifest.bytes.len);
        break;
    case PROTO_MSG_ANNOUNCE:
        proto__wr_u8(w, (uint8_t)m->u.announce.n);
        for (size_t i = 0; i < m->u.announce.n; i++)
            record_write(w, &m->u.announce.records[i]);
        break;
    case PROTO_MSG_PEERS:
        proto__wr_u8(w, (uint8_t)m->u.peers.n);
        for (size_t i = 0; i < m->u.peers.n; i++) {
            proto__wr_bytes(w, m->u.peers.peers[i].node_id, PROTO_ID_LEN);
            wr_str8(w, &m->u.peers.peers[i].addr);
        }
        break;
    case PROTO_MSG_BYE:
        proto__wr_u8(w, m->u.bye.reason);
        wr_str8(w, &m->u.bye.text);
        break;
    case PROTO_MSG_REVERSE_REQ:
        proto__wr_bytes(w, m->u.reverse.node_id, PROTO_ID_LEN);
        break;
    case PROTO_MSG_REVERSE:
        proto__wr_bytes(w, m->u.reverse.node_id, PROTO_ID_LEN);
        wr_str8(w, &m->u.reverse.addr);
        break;
    case PROTO_MSG_REVERSE_AT:
        wr_str8(w, &m->u.reverse.addr);
        break;
    case PROTO_MSG_SIGS_REQ:
        proto__wr_u32(w, m->u.sigs_req.req_id);
        proto__wr_bytes(w, m->u.sigs_req.model_id, PROTO_ID_LEN);
        break;
    case PROTO_MSG_SIGS:
        proto__wr_u32(w, m->u.sigs.req_id);
        proto__wr_bytes(w, m->u.sigs.model_id, PROTO_ID_LEN);
        proto__wr_u8(w, (uint8_t)m->u.sigs.n);
        for (size_t i = 0; i < m->u.sigs.n; i++) {
            proto__wr_u16(w, (uint16_t)m->u.sigs.sigs[i].len);
            proto__wr_bytes(w, m->u.sigs.sigs[i].p, m->u.sigs.sigs[i].len);
        }
        break;
    }
}

void
proto_data_head_put(const proto_data *d, uint8_t out[static PROTO_DATA_HEAD_LEN])
{
    proto__wr w = { .p = out, .cap = PROTO_DATA_HEAD_LEN };
    data_head_write(&w, d);
}

int
proto_msg_encode(const proto_msg *m, uint8_t *buf, size_t cap, size_t *ret_len)
{
    int r = msg_check(m);
    if (r < 0)
        return r;
    proto__wr w = { .p = buf, .cap = buf ? cap : 0 };
    msg_write(&w, m);
    if (w.err < 0)
        return w.err;
    if (w.off > PROTO_MSG_MAX)
        return -EMSGSIZE;
    *ret_len = w.off;
    return 0;
}

static int
read_bytes32(proto__rd *r, size_t lo, size_t hi, proto_str *ret)
{
    uint32_t n;
    int k = proto__rd_u32(r, &n);
    if (k < 0)
        return k;
    if (n < lo || n > hi)
        return -EBADMSG;
    ret->len = n;
    return proto__rd_bytes(r, n, &ret->p);
}

static int
request_read(proto__rd *r, proto_request *q)
{
    int k;
    k = proto__rd_u32(r, &q->req_id);
    if (k >= 0)
        k = rd_id(r, q->model_id);
    if (k >= 0)
        k = proto__rd_u32(r, &q->chunk);
    if (k >= 0)
        k = proto__rd_u32(r, &q->offset);
    if (k >= 0)
        k = proto__rd_u32(r, &q->length);
    if (k >= 0 && !piece_ok(q->offset, q->length))
        k = -EBADMSG;
    return k;
}

static int
data_read(proto__rd *r, proto_data *d)
{
    int k;
    k = proto__rd_u32(r, &d->req_id);
    if (k >= 0)
        k = rd_id(r, d->model_id);
    if (k >= 0)
        k = proto__rd_u32(r, &d->chunk);
    if (k >= 0)
        k = proto__rd_u32(r, &d->offset);
    if (k >= 0)
        k = read_bytes32(r, 1, PROTO_CHUNK_MAX, &d->bytes);
    if (k >= 0 && !piece_ok(d->offset, d->bytes.len))
        k = -EBADMSG;
    return k;
}

static int
not_found_read(proto__rd *r, proto_not_found *f)
{
    int k;
    k = proto__rd_u32(r, &f->req_id);
    if (k >= 0)
        k = rd_id(r, f->model_id);
    if (k >= 0)
        k = proto__rd_u32(r, &f->chunk);
    if (k >= 0)
        k = proto__rd_u8(r, &f->what);
    if (k >= 0 && f->what >= _PROTO_NOTFOUND_MAX)
        k = -EBADMSG;
    return k;
}

static int
manifest_req_read(proto__rd *r, proto_manifest_req *q)
{
    int k;
    k = proto__rd_u32(r, &q->req_id);
    if (k >= 0)
        k = rd_id(r, q->model_id);
    if (k >= 0)
        k = proto__rd_u32(r, &q->offset);
    if (k >= 0)
        k = proto__rd_u32(r, &q->length);
    if (k >= 0 &&
        (q->length < 1 || q->length > PROTO_MANIFEST_PIECE_MAX || q->offset >= PROTO_MANIFEST_MAX))
        k = -EBADMSG;
    return k;
}

static int
manifest_read(proto__rd *r, proto_manifest *f)
{
    int k;
    k = proto__rd_u32(r, &f->req_id);
    if (k >= 0)
        k = rd_id(r, f->model_id);
    if (k >= 0)
        k = proto__rd_u32(r, &f->total);
    if (k >= 0)
        k = proto__rd_u32(r, &f->offset);
    if (k >= 0)
        k = read_bytes32(r, 1, PROTO_MANIFEST_PIECE_MAX, &f->bytes);
    if (k >= 0 && (f->total < 1 || f->total > PROTO_MANIFEST_MAX ||
                   (uint64_t)f->offset + f->bytes.len > f->total))
        k = -EBADMSG;
    return k;
}

static int
announce_read(proto__rd *r, proto_announce *a)
{
    int k;
    uint8_t n;
    k = proto__rd_u8(r, &n);
    if (k < 0)
        return k;
    if (n > PROTO_ANNOUNCE_MAX)
        return -EBADMSG;
    a->n = 0;
    for (size_t i = 0; i < n; i++) {
        bool known;
        k = record_read(r, &a->records[a->n], &known);
        if (k < 0)
            return k;
        if (known)
            a->n++;
    }
    return 0;
}

static int
peers_read(proto__rd *r, proto_peers *ps)
{
    int k;
    uint8_t n;
    k = proto__rd_u8(r, &n);
    if (k < 0)
        return k;
    if (n > PROTO_PEERS_MAX)
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        k = rd_id(r, ps->peers[i].node_id);
        if (k >= 0)
            k = rd_str8(r, 1, PROTO_ADDR_MAX, false, &ps->peers[i].addr);
        if (k < 0)
            return k;
    }
    ps->n = n;
    return 0;
}

static int
msg_read(proto__rd *r, proto_msg *m)
{
    int k;
    switch (m->type) {
    case PROTO_MSG_HELLO:
        return hello_read(r, &m->u.hello);
    case PROTO_MSG_PING:
    case PROTO_MSG_PONG:
        return proto__rd_u64(r, &m->u.ping.nonce);
    case PROTO_MSG_WANT:
    case PROTO_MSG_HAVE:
        k = rd_id(r, m->u.want.model_id);
        return k < 0 ? k : chunkset_read(r, &m->u.want.set);
    case PROTO_MSG_REQUEST:
    case PROTO_MSG_CANCEL:
        return request_read(r, &m->u.request);
    case PROTO_MSG_DATA:
        return data_read(r, &m->u.data);
    case PROTO_MSG_NOT_FOUND:
        return not_found_read(r, &m->u.not_found);
    case PROTO_MSG_MANIFEST_REQ:
        return manifest_req_read(r, &m->u.manifest_req);
    case PROTO_MSG_MANIFEST:
        return manifest_read(r, &m->u.manifest);
    case PROTO_MSG_ANNOUNCE:
        return announce_read(r, &m->u.announce);
    case PROTO_MSG_PEERS:
        return peers_read(r, &m->u.peers);
    case PROTO_MSG_BYE:
        k = proto__rd_u8(r, &m->u.bye.reason);
        return k < 0 ? k : rd_str8(r, 0, PROTO_BYE_TEXT_MAX, true, &m->u.bye.text);
    case PROTO_MSG_SIGS_REQ:
        k = proto__rd_u32(r, &m->u.sigs_req.req_id);
        return k < 0 ? k : rd_id(r, m->u.sigs_req.model_id);
    case PROTO_MSG_SIGS:
        return sigs_read(r, &m->u.sigs);
    case PROTO_MSG_REVERSE_REQ:
        return rd_id(r, m->u.reverse.node_id);
    case PROTO_MSG_REVERSE:
        k = rd_id(r, m->u.reverse.node_id);
        return k < 0 ? k : rd_str8(r, 1, PROTO_ADDR_MAX, false, &m->u.reverse.addr);
    case PROTO_MSG_REVERSE_AT:
        return rd_str8(r, 1, PROTO_ADDR_MAX, false, &m->u.reverse.addr);
    default:
        return -EOPNOTSUPP;
    }
}

int
proto_msg_decode(uint8_t type, const uint8_t *body, size_t len, proto_msg *ret)
{
    if (type != PROTO_MSG_HELLO && !proto_msg_type_known(type))
        return -EOPNOTSUPP;
    proto__rd r = { .p = body, .len = len };
    memset(ret, 0, offsetof(proto_msg, u));
    ret->type = type;
    int k = msg_read(&r, ret);
    if (k < 0)
        return k;
    /* Strict: nothing may follow the message. */
    if (proto__rd_left(&r) != 0)
        return -EBADMSG;
    return 0;
}
