/* SPDX-License-Identifier: MIT */
/*
 * Strict bounded bencode (daemon/bencode.h). The decoder recurses at most
 * NVX_BENC_DEPTH_MAX deep; each getter checks the bytes left before it reads.
 */
#include "daemon/bencode.h"

#include <errno.h>
#include <string.h>

struct cursor {
    nvx_benc *b;
    size_t off;
};

/* Reads a decimal up to the byte stop: no sign, no leading zero (but "0"),
 * at most 18 digits so that it fits int64 without overflow checks. */
static int
read_decimal(struct cursor *c, uint8_t stop, int64_t *ret)
{
    const uint8_t *p = c->b->buf;
    size_t len = c->b->len, start = c->off;
    int64_t v = 0;
    while (c->off < len && p[c->off] != stop) {
        uint8_t ch = p[c->off];
        if (ch < '0' || ch > '9' || c->off - start >= 18)
            return -EBADMSG;
        v = v * 10 + (ch - '0');
        c->off++;
    }
    if (c->off >= len || c->off == start)
        return -EBADMSG;
    if (p[start] == '0' && c->off - start > 1)
        return -EBADMSG;
    c->off++; /* the stop byte */
    *ret = v;
    return 0;
}

static int
decode_value(struct cursor *c, unsigned depth)
{
    nvx_benc *b = c->b;
    if (c->off >= b->len)
        return -EBADMSG;
    if (b->n >= NVX_BENC_TOKENS_MAX)
        return -EMSGSIZE;
    unsigned idx = b->n++;
    nvx_benc_tok *t = &b->t[idx];
    memset(t, 0, sizeof(*t));
    t->start = (uint32_t)c->off;
    uint8_t ch = b->buf[c->off];
    int r;
    if (ch == 'i') {
        c->off++;
        bool neg = c->off < b->len && b->buf[c->off] == '-';
        if (neg)
            c->off++;
        r = read_decimal(c, 'e', &t->i);
        if (r < 0)
            return r;
        if (neg && t->i == 0)
            return -EBADMSG; /* "-0" */
        t->i = neg ? -t->i : t->i;
        t->type = NVX_BENC_INT;
    } else if (ch >= '0' && ch <= '9') {
        int64_t n;
        r = read_decimal(c, ':', &n);
        if (r < 0)
            return r;
        if ((uint64_t)n > b->len - c->off)
            return -EBADMSG;
        t->type = NVX_BENC_STR;
        t->s_off = (uint32_t)c->off;
        t->s_len = (uint32_t)n;
        c->off += (size_t)n;
    } else if (ch == 'l' || ch == 'd') {
        bool dict = ch == 'd';
        if (depth >= NVX_BENC_DEPTH_MAX)
            return -EMSGSIZE;
        c->off++;
        t->type = dict ? NVX_BENC_DICT : NVX_BENC_LIST;
        int prev_key = -1;
        for (;;) {
            if (c->off >= b->len)
                return -EBADMSG;
            if (b->buf[c->off] == 'e') {
                c->off++;
                break;
            }
            if (t->count == UINT16_MAX)
                return -EMSGSIZE;
            if (dict) {
                if (b->buf[c->off] < '0' || b->buf[c->off] > '9')
                    return -EBADMSG; /* keys are strings */
                unsigned k = b->n;
                r = decode_value(c, depth + 1);
                if (r < 0)
                    return r;
                if (prev_key >= 0) {
                    /* Strictly ascending raw bytes: one encoding per dict. */
                    const nvx_benc_tok *a = &b->t[prev_key], *z = &b->t[k];
                    size_t m = a->s_len < z->s_len ? a->s_len : z->s_len;
                    int cmp = memcmp(b->buf + a->s_off, b->buf + z->s_off, m);
                    if (cmp > 0 || (cmp == 0 && a->s_len >= z->s_len))
                        return -EBADMSG;
                }
                prev_key = (int)k;
            }
            r = decode_value(c, depth + 1);
            if (r < 0)
                return r;
            t = &b->t[idx]; /* (the array does not move; kept for clarity) */
            t->count++;
        }
    } else {
        return -EBADMSG;
    }
    t->end = (uint32_t)c->off;
    t->next = (uint16_t)b->n;
    return 0;
}

int
nvx_benc_decode(nvx_benc *b, const uint8_t *buf, size_t len)
{
    if (!b || (!buf && len))
        return -EINVAL;
    if (len > NVX_BENC_INPUT_MAX)
        return -EMSGSIZE;
    b->buf = buf;
    b->len = len;
    b->n = 0;
    struct cursor c = { b, 0 };
    int r = decode_value(&c, 0);
    if (r < 0)
        return r;
    return c.off == len ? 0 : -EBADMSG;
}

int
nvx_benc_dict_get(const nvx_benc *b, unsigned dict, const char *key)
{
    if (dict >= b->n || b->t[dict].type != NVX_BENC_DICT)
        return -EINVAL;
    size_t klen = strlen(key);
    unsigned i = dict + 1;
    for (unsigned k = 0; k < b->t[dict].count; k++) {
        const nvx_benc_tok *kt = &b->t[i];
        unsigned v = kt->next;
        if (kt->s_len == klen && memcmp(b->buf + kt->s_off, key, klen) == 0)
            return (int)v;
        i = b->t[v].next;
    }
    return -ENOENT;
}

int
nvx_benc_dict_get_type(const nvx_benc *b, unsigned dict, const char *key, nvx_benc_type want)
{
    int i = nvx_benc_dict_get(b, dict, key);
    if (i < 0)
        return i;
    return b->t[i].type == want ? i : -EBADMSG;
}

const uint8_t *
nvx_benc_str(const nvx_benc *b, unsigned i, size_t *ret_len)
{
    *ret_len = b->t[i].s_len;
    return b->buf + b->t[i].s_off;
}

/* ---------------------------------------------------------------------- */
/* Encoder */

void
nvx_benc_writer_init(nvx_benc_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = false;
}

void
nvx_benc_put_raw(nvx_benc_writer *w, const void *raw, size_t len)
{
    if (w->overflow || len > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (len)
        memcpy(w->buf + w->len, raw, len);
    w->len += len;
}

static void
put_decimal(nvx_benc_writer *w, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    nvx_benc_put_raw(w, tmp + sizeof(tmp) - n, n);
}

void
nvx_benc_put_int(nvx_benc_writer *w, int64_t v)
{
    nvx_benc_put_raw(w, "i", 1);
    if (v < 0) {
        nvx_benc_put_raw(w, "-", 1);
        put_decimal(w, (uint64_t)0 - (uint64_t)v);
    } else {
        put_decimal(w, (uint64_t)v);
    }
    nvx_benc_put_raw(w, "e", 1);
}

void
nvx_benc_put_str(nvx_benc_writer *w, const void *s, size_t len)
{
    put_decimal(w, len);
    nvx_benc_put_raw(w, ":", 1);
    nvx_benc_put_raw(w, s, len);
}

void
nvx_benc_put_cstr(nvx_benc_writer *w, const char *s)
{
    nvx_benc_put_str(w, s, strlen(s));
}

void
nvx_benc_open_dict(nvx_benc_writer *w)
{
    nvx_benc_put_raw(w, "d", 1);
}

void
nvx_benc_open_list(nvx_benc_writer *w)
{
    nvx_benc_put_raw(w, "l", 1);
}

void
nvx_benc_close(nvx_benc_writer *w)
{
    nvx_benc_put_raw(w, "e", 1);
}

int
nvx_benc_writer_end(const nvx_benc_writer *w)
{
    return w->overflow ? -EMSGSIZE : (int)w->len;
}
