/* SPDX-License-Identifier: MIT */
/*
 * Control protocol codec (nvx <-> nvxd). Layout and the per-command field
 * lists: control.h. The decoder walks fields through a bounds-checked cursor
 * and checks each tag against a table of kinds, repeatability and the tags
 * each message type may carry.
 */
#include "proto/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/internal.h"

#define BIT(t) (UINT64_C(1) << (t))

static const struct {
    uint8_t kind;
    bool repeatable;
} tags[_PROTO_CTL_TAG_MAX] = {
    [PROTO_CTL_T_NODE_ID] = { PROTO_CTL_K_ID, false },
    [PROTO_CTL_T_ADDR] = { PROTO_CTL_K_STR, true },
    [PROTO_CTL_T_TARGET] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_MODEL_ID] = { PROTO_CTL_K_ID, false },
    [PROTO_CTL_T_NAME] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_PIN] = { PROTO_CTL_K_BOOL, false },
    [PROTO_CTL_T_UNTRUSTED] = { PROTO_CTL_K_BOOL, false },
    [PROTO_CTL_T_TIMEOUT_S] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_BYTES_DONE] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_BYTES_TOTAL] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_RATE] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_PEER_COUNT] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_STATE] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CODE] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_MESSAGE] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_PEER] = { PROTO_CTL_K_NEST, true },
    [PROTO_CTL_T_TRANSFER] = { PROTO_CTL_K_NEST, true },
    [PROTO_CTL_T_STORE_USED] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_STORE_LIMIT] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_BYTES_IN] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_BYTES_OUT] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNKS_DONE] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNKS_TOTAL] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_TRANSFER_ID] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_AGENT] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_UPTIME_S] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNK] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNK_OFFSET] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNK_LEN] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_CHUNK_COUNT] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_REACH] = { PROTO_CTL_K_NEST, false },
    [PROTO_CTL_T_DHT] = { PROTO_CTL_K_NEST, false },
    [PROTO_CTL_T_DHT_ID] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_DHT_NODES] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_DHT_ANNOUNCED] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_DHT_PORT] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_DHT_STORED] = { PROTO_CTL_K_U64, false },
    [PROTO_CTL_T_NAMEREC] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_DHT_SIG] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_DHT_KEY] = { PROTO_CTL_K_STR, false },
    [PROTO_CTL_T_DHT_VALUE] = { PROTO_CTL_K_STR, true },
    [PROTO_CTL_T_DHT_SEQ] = { PROTO_CTL_K_U64, false },
};
_Static_assert(_PROTO_CTL_TAG_MAX < 64, "tag sets are 64-bit masks (BIT(_MAX) must be defined)");

#define ALL_TAGS ((UINT64_C(1) << _PROTO_CTL_TAG_MAX) - 2) /* every tag 1.._MAX-1 */
#define CHUNK_TAGS                                                                         \
    (BIT(PROTO_CTL_T_CHUNK) | BIT(PROTO_CTL_T_CHUNK_OFFSET) | BIT(PROTO_CTL_T_CHUNK_LEN) | \
     BIT(PROTO_CTL_T_CHUNK_COUNT))
#define PROGRESS_TAGS                                                                              \
    (BIT(PROTO_CTL_T_STATE) | BIT(PROTO_CTL_T_TRANSFER_ID) | BIT(PROTO_CTL_T_BYTES_DONE) |         \
     BIT(PROTO_CTL_T_BYTES_TOTAL) | BIT(PROTO_CTL_T_CHUNKS_DONE) | BIT(PROTO_CTL_T_CHUNKS_TOTAL) | \
     BIT(PROTO_CTL_T_RATE) | BIT(PROTO_CTL_T_PEER_COUNT) | BIT(PROTO_CTL_T_MODEL_ID) |             \
     BIT(PROTO_CTL_T_TARGET) | BIT(PROTO_CTL_T_MESSAGE) | CHUNK_TAGS)

static const struct {
    const char *name;
    uint64_t allowed;
    uint64_t required;
} types[_PROTO_CTL_TYPE_MAX] = {
    [PROTO_CTL_STATUS] = { "STATUS", 0, 0 },
    [PROTO_CTL_PEERS] = { "PEERS", 0, 0 },
    [PROTO_CTL_PEER_ADD] = { "PEER_ADD", BIT(PROTO_CTL_T_ADDR), BIT(PROTO_CTL_T_ADDR) },
    [PROTO_CTL_PEER_RM] = { "PEER_RM", BIT(PROTO_CTL_T_ADDR), BIT(PROTO_CTL_T_ADDR) },
    [PROTO_CTL_PEER_LS] = { "PEER_LS", 0, 0 },
    [PROTO_CTL_FETCH] = { "FETCH",
                          BIT(PROTO_CTL_T_TARGET) | BIT(PROTO_CTL_T_PIN) |
                              BIT(PROTO_CTL_T_UNTRUSTED) | BIT(PROTO_CTL_T_TIMEOUT_S) |
                              BIT(PROTO_CTL_T_ADDR) | BIT(PROTO_CTL_T_NODE_ID) |
                              BIT(PROTO_CTL_T_RATE),
                          BIT(PROTO_CTL_T_TARGET) },
    [PROTO_CTL_PUBLISH] = { "PUBLISH",
                            BIT(PROTO_CTL_T_MODEL_ID) | BIT(PROTO_CTL_T_NAME) |
                                BIT(PROTO_CTL_T_NAMEREC) | BIT(PROTO_CTL_T_DHT_SIG),
                            BIT(PROTO_CTL_T_MODEL_ID) | BIT(PROTO_CTL_T_NAME) },
    [PROTO_CTL_DHT_GET] = { "DHT_GET", BIT(PROTO_CTL_T_DHT_KEY) | BIT(PROTO_CTL_T_NAME),
                            BIT(PROTO_CTL_T_DHT_KEY) },
    [PROTO_CTL_CANCEL] = { "CANCEL", BIT(PROTO_CTL_T_TARGET) | BIT(PROTO_CTL_T_TRANSFER_ID), 0 },
    [PROTO_CTL_SHUTDOWN] = { "SHUTDOWN", 0, 0 },
    [PROTO_CTL_OK] = { "OK", ALL_TAGS, 0 },
    [PROTO_CTL_ERROR] = { "ERROR", BIT(PROTO_CTL_T_CODE) | BIT(PROTO_CTL_T_MESSAGE) | CHUNK_TAGS,
                          BIT(PROTO_CTL_T_CODE) | BIT(PROTO_CTL_T_MESSAGE) },
    [PROTO_CTL_PROGRESS] = { "PROGRESS", PROGRESS_TAGS, BIT(PROTO_CTL_T_STATE) },
};

int
proto_ctl_tag_kind(uint8_t tag)
{
    return tag < _PROTO_CTL_TAG_MAX ? tags[tag].kind : 0;
}

const char *
proto_ctl_type_name(uint8_t type)
{
    return type < _PROTO_CTL_TYPE_MAX && types[type].name ? types[type].name : "?";
}

/* Checks one field value against its tag's kind; fills f. */
static int field_check(uint8_t tag, const uint8_t *v, size_t len, bool nested, proto_ctl_field *f);

/* Walks a field list. With m != NULL stores the fields; *ret_seen gets the
 * set of tags present. Nests are walked (validated) but not stored. */
static int
fields_walk(const uint8_t *p, size_t len, bool nested, proto_ctl_msg *m, uint64_t *ret_seen)
{
    proto__rd r = { .p = p, .len = len };
    uint64_t seen = 0;
    size_t n = 0;
    while (proto__rd_left(&r) > 0) {
        uint8_t tag;
        uint16_t l;
        const uint8_t *v;
        int k = proto__rd_u8(&r, &tag);
        if (k >= 0)
            k = proto__rd_u16(&r, &l);
        if (k >= 0)
            k = proto__rd_bytes(&r, l, &v);
        if (k < 0)
            return k;
        if (proto_ctl_tag_kind(tag) == 0 || n == PROTO_CTL_FIELDS_MAX)
            return -EBADMSG;
        if ((seen & BIT(tag)) && !tags[tag].repeatable)
            return -EBADMSG;
        proto_ctl_field f;
        k = field_check(tag, v, l, nested, &f);
        if (k < 0)
            return k;
        if (m)
            m->f[n] = f;
        n++;
        seen |= BIT(tag);
    }
    if (m)
        m->n = n;
    *ret_seen = seen;
    return 0;
}

static int
field_check(uint8_t tag, const uint8_t *v, size_t len, bool nested, proto_ctl_field *f)
{
    uint64_t seen;
    f->tag = tag;
    f->u = 0;
    f->p = v;
    f->len = len;
    switch (tags[tag].kind) {
    case PROTO_CTL_K_U64:
        if (len != 8)
            return -EBADMSG;
        f->u = be64_load(v);
        return 0;
    case PROTO_CTL_K_BOOL:
        if (len != 1 || v[0] > 1)
            return -EBADMSG;
        f->u = v[0];
        return 0;
    case PROTO_CTL_K_ID:
        return len == PROTO_ID_LEN ? 0 : -EBADMSG;
    case PROTO_CTL_K_STR:
        return len <= PROTO_CTL_STR_MAX && proto__is_text(v, len) ? 0 : -EBADMSG;
    case PROTO_CTL_K_NEST:
        /* One level only: a nest inside a nest is malformed. */
        if (nested)
            return -EBADMSG;
        return fields_walk(v, len, true, NULL, &seen);
    default:
        return -EBADMSG;
    }
}

int
proto_ctl_decode(const uint8_t *payload, size_t len, proto_ctl_msg *ret)
{
    if (len < PROTO_CTL_MIN || len > PROTO_CTL_MAX)
        return -EBADMSG;
    if (payload[0] != PROTO_CTL_VERSION)
        return -EBADMSG;
    uint8_t type = payload[1];
    if (type >= _PROTO_CTL_TYPE_MAX || !types[type].name)
        return -EBADMSG;
    uint64_t seen;
    int k = fields_walk(payload + PROTO_CTL_MIN, len - PROTO_CTL_MIN, false, ret, &seen);
    if (k < 0)
        return k;
    if ((seen & ~types[type].allowed) || (seen & types[type].required) != types[type].required)
        return -EBADMSG;
    if (type == PROTO_CTL_CANCEL &&
        !(seen & (BIT(PROTO_CTL_T_TARGET) | BIT(PROTO_CTL_T_TRANSFER_ID))))
        return -EBADMSG;
    ret->type = type;
    ret->id = be32_load(payload + 2);
    return 0;
}

int
proto_ctl_nest_decode(const proto_ctl_field *f, proto_ctl_msg *ret)
{
    uint64_t seen;
    if (proto_ctl_tag_kind(f->tag) != PROTO_CTL_K_NEST)
        return -EINVAL;
    int k = fields_walk(f->p, f->len, true, ret, &seen);
    if (k < 0)
        return k;
    ret->type = 0;
    ret->id = 0;
    return 0;
}

const proto_ctl_field *
proto_ctl_next(const proto_ctl_msg *m, const proto_ctl_field *after)
{
    size_t i = after ? (size_t)(after - m->f) + 1 : 0;
    for (; i < m->n; i++)
        if (!after || m->f[i].tag == after->tag)
            return &m->f[i];
    return NULL;
}

const proto_ctl_field *
proto_ctl_find(const proto_ctl_msg *m, uint8_t tag)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->f[i].tag == tag)
            return &m->f[i];
    return NULL;
}

bool
proto_ctl_get_u64(const proto_ctl_msg *m, uint8_t tag, uint64_t *ret)
{
    const proto_ctl_field *f = proto_ctl_find(m, tag);
    int kind = proto_ctl_tag_kind(tag);
    if (!f || (kind != PROTO_CTL_K_U64 && kind != PROTO_CTL_K_BOOL))
        return false;
    *ret = f->u;
    return true;
}

bool
proto_ctl_get_str(const proto_ctl_msg *m, uint8_t tag, proto_str *ret)
{
    const proto_ctl_field *f = proto_ctl_find(m, tag);
    if (!f || proto_ctl_tag_kind(tag) != PROTO_CTL_K_STR)
        return false;
    ret->p = f->p;
    ret->len = f->len;
    return true;
}

bool
proto_ctl_get_id(const proto_ctl_msg *m, uint8_t tag, const uint8_t **ret)
{
    const proto_ctl_field *f = proto_ctl_find(m, tag);
    if (!f || proto_ctl_tag_kind(tag) != PROTO_CTL_K_ID)
        return false;
    *ret = f->p;
    return true;
}

/* ---- writer ---- */

static void
w_reserve(proto_ctl_writer *w, size_t n)
{
    if (w->err < 0)
        return;
    if (n > PROTO_CTL_HEADER_LEN + PROTO_CTL_MAX ||
        w->len > PROTO_CTL_HEADER_LEN + PROTO_CTL_MAX - n) {
        w->err = -EMSGSIZE;
        return;
    }
    if (w->cap - w->len >= n)
        return;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n)
        cap *= 2;
    uint8_t *b = realloc(w->buf, cap);
    if (!b) {
        w->err = -ENOMEM;
        return;
    }
    w->buf = b;
    w->cap = cap;
}

static void
w_put(proto_ctl_writer *w, const void *p, size_t n)
{
    w_reserve(w, n);
    if (w->err < 0)
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void
w_field(proto_ctl_writer *w, uint8_t tag, int kind, const void *v, size_t n)
{
    if (w->err == 0 && (proto_ctl_tag_kind(tag) != kind || n > UINT16_MAX))
        w->err = -EINVAL;
    uint8_t h[3] = { tag, (uint8_t)(n >> 8), (uint8_t)n };
    w_put(w, h, 3);
    w_put(w, v, n);
}

void
proto_ctl_writer_init(proto_ctl_writer *w, uint8_t type, uint32_t id)
{
    memset(w, 0, sizeof(*w));
    uint8_t h[PROTO_CTL_HEADER_LEN + PROTO_CTL_MIN] = { 0, 0, 0, 0, PROTO_CTL_VERSION, type };
    be32_store(h + 6, id);
    w_put(w, h, sizeof(h));
}

void
proto_ctl_put_u64(proto_ctl_writer *w, uint8_t tag, uint64_t v)
{
    uint8_t b[8];
    be64_store(b, v);
    w_field(w, tag, PROTO_CTL_K_U64, b, 8);
}

void
proto_ctl_put_bool(proto_ctl_writer *w, uint8_t tag, bool v)
{
    uint8_t b = v ? 1 : 0;
    w_field(w, tag, PROTO_CTL_K_BOOL, &b, 1);
}

void
proto_ctl_put_id(proto_ctl_writer *w, uint8_t tag, const uint8_t id[static PROTO_ID_LEN])
{
    w_field(w, tag, PROTO_CTL_K_ID, id, PROTO_ID_LEN);
}

void
proto_ctl_put_str(proto_ctl_writer *w, uint8_t tag, const char *s)
{
    size_t n = strlen(s);
    if (w->err == 0 && (n > PROTO_CTL_STR_MAX || !proto__is_text((const uint8_t *)s, n)))
        w->err = -EINVAL;
    w_field(w, tag, PROTO_CTL_K_STR, s, n);
}

void
proto_ctl_nest_begin(proto_ctl_writer *w, uint8_t tag)
{
    if (w->err == 0 && (proto_ctl_tag_kind(tag) != PROTO_CTL_K_NEST || w->nest_at))
        w->err = -EINVAL;
    uint8_t h[3] = { tag, 0, 0 };
    w_put(w, h, 3);
    if (w->err == 0)
        w->nest_at = w->len - 2;
}

void
proto_ctl_nest_end(proto_ctl_writer *w)
{
    if (w->err < 0)
        return;
    if (!w->nest_at) {
        w->err = -EINVAL;
        return;
    }
    size_t n = w->len - w->nest_at - 2;
    if (n > UINT16_MAX) {
        w->err = -EMSGSIZE;
        return;
    }
    be16_store(w->buf + w->nest_at, (uint16_t)n);
    w->nest_at = 0;
}

void
proto_ctl_writer_free(proto_ctl_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

int
proto_ctl_writer_finish(proto_ctl_writer *w, uint8_t **ret_buf, size_t *ret_len)
{
    int r = w->err;
    if (r == 0 && w->nest_at)
        r = -EINVAL;
    if (r == 0 && w->len - PROTO_CTL_HEADER_LEN > PROTO_CTL_MAX)
        r = -EMSGSIZE;
    proto_ctl_msg *m = NULL;
    if (r == 0) {
        be32_store(w->buf, (uint32_t)(w->len - PROTO_CTL_HEADER_LEN));
        m = malloc(sizeof(*m));
        if (!m)
            r = -ENOMEM;
    }
    /* Never emit what the reader would refuse (missing required tags...). */
    if (r == 0 &&
        proto_ctl_decode(w->buf + PROTO_CTL_HEADER_LEN, w->len - PROTO_CTL_HEADER_LEN, m) < 0)
        r = -EINVAL;
    free(m);
    if (r < 0) {
        proto_ctl_writer_free(w);
        return r;
    }
    *ret_buf = w->buf;
    *ret_len = w->len;
    memset(w, 0, sizeof(*w));
    return 0;
}

int
proto_ctl_error_build(uint32_t id, int code, const char *message, uint8_t **ret_buf,
                      size_t *ret_len)
{
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_ERROR, id);
    proto_ctl_put_u64(&w, PROTO_CTL_T_CODE, (uint64_t)(code < 0 ? -(int64_t)code : code));
    proto_ctl_put_str(&w, PROTO_CTL_T_MESSAGE, message);
    return proto_ctl_writer_finish(&w, ret_buf, ret_len);
}

static void
put_nonzero(proto_ctl_writer *w, uint8_t tag, uint64_t v)
{
    if (v)
        proto_ctl_put_u64(w, tag, v);
}

void
proto_ctl_put_chunk(proto_ctl_writer *w, const proto_ctl_progress *p)
{
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNK, p->chunk);
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNK_OFFSET, p->chunk_offset);
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNK_LEN, p->chunk_len);
    proto_ctl_put_u64(w, PROTO_CTL_T_CHUNK_COUNT, p->chunk_count);
}

int
proto_ctl_progress_build(uint32_t id, const proto_ctl_progress *p, uint8_t **ret_buf,
                         size_t *ret_len)
{
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_PROGRESS, id);
    proto_ctl_put_u64(&w, PROTO_CTL_T_STATE, p->state);
    put_nonzero(&w, PROTO_CTL_T_TRANSFER_ID, p->transfer_id);
    put_nonzero(&w, PROTO_CTL_T_BYTES_DONE, p->bytes_done);
    put_nonzero(&w, PROTO_CTL_T_BYTES_TOTAL, p->bytes_total);
    put_nonzero(&w, PROTO_CTL_T_CHUNKS_DONE, p->chunks_done);
    put_nonzero(&w, PROTO_CTL_T_CHUNKS_TOTAL, p->chunks_total);
    put_nonzero(&w, PROTO_CTL_T_RATE, p->rate);
    put_nonzero(&w, PROTO_CTL_T_PEER_COUNT, p->peer_count);
    if (p->has_model_id)
        proto_ctl_put_id(&w, PROTO_CTL_T_MODEL_ID, p->model_id);
    if (p->has_chunk)
        proto_ctl_put_chunk(&w, p);
    return proto_ctl_writer_finish(&w, ret_buf, ret_len);
}

int
proto_ctl_progress_parse(const proto_ctl_msg *m, proto_ctl_progress *ret)
{
    if (m->type != PROTO_CTL_PROGRESS)
        return -EINVAL;
    proto_ctl_progress p = { 0 };
    const uint8_t *idp;
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_STATE, &p.state);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_TRANSFER_ID, &p.transfer_id);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_BYTES_DONE, &p.bytes_done);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_BYTES_TOTAL, &p.bytes_total);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_CHUNKS_DONE, &p.chunks_done);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_CHUNKS_TOTAL, &p.chunks_total);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_RATE, &p.rate);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_PEER_COUNT, &p.peer_count);
    if (proto_ctl_get_id(m, PROTO_CTL_T_MODEL_ID, &idp)) {
        p.has_model_id = true;
        memcpy(p.model_id, idp, PROTO_ID_LEN);
    }
    p.has_chunk = proto_ctl_get_u64(m, PROTO_CTL_T_CHUNK, &p.chunk);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_CHUNK_OFFSET, &p.chunk_offset);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_CHUNK_LEN, &p.chunk_len);
    (void)proto_ctl_get_u64(m, PROTO_CTL_T_CHUNK_COUNT, &p.chunk_count);
    *ret = p;
    return 0;
}

/* ---- stream reader ---- */

int
proto_ctl_reader_feed(proto_ctl_reader *r, const uint8_t *buf, size_t len, size_t *ret_used,
                      const uint8_t **ret_payload, size_t *ret_len)
{
    size_t used = 0;
    *ret_used = 0;
    if (r->err < 0)
        return r->err;
    while (used < len) {
        if (r->hdr_have < PROTO_CTL_HEADER_LEN) {
            size_t n = PROTO_CTL_HEADER_LEN - r->hdr_have;
            if (n > len - used)
                n = len - used;
            memcpy(r->hdr + r->hdr_have, buf + used, n);
            r->hdr_have += n;
            used += n;
            if (r->hdr_have < PROTO_CTL_HEADER_LEN)
                break;
            uint32_t want = be32_load(r->hdr);
            /* Checked before anything is allocated. */
            if (want > PROTO_CTL_MAX) {
                r->err = -EMSGSIZE;
                break;
            }
            if (want < PROTO_CTL_MIN) {
                r->err = -EBADMSG;
                break;
            }
            free(r->buf);
            r->buf = malloc(want);
            if (!r->buf) {
                r->err = -ENOMEM;
                break;
            }
            r->want = want;
            r->have = 0;
        }
        size_t n = r->want - r->have;
        if (n > len - used)
            n = len - used;
        memcpy(r->buf + r->have, buf + used, n);
        r->have += n;
        used += n;
        if (r->have == r->want) {
            r->hdr_have = 0;
            *ret_payload = r->buf;
            *ret_len = r->want;
            *ret_used = used;
            return 1;
        }
    }
    *ret_used = used;
    return r->err < 0 ? r->err : 0;
}

bool
proto_ctl_reader_partial(const proto_ctl_reader *r)
{
    return r->hdr_have > 0;
}

void
proto_ctl_reader_reset(proto_ctl_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}
