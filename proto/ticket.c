/* SPDX-License-Identifier: MIT */
/* Ticket text form and body (proto/ticket.h). */
#include "proto/ticket.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "proto/internal.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char check_label[16] = "nvx-ticket----v1";

static void
check_of(const uint8_t *body, size_t len, uint8_t out[static PROTO_TICKET_CHECK_LEN])
{
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)check_label, sizeof(check_label));
    crypto_generichash_update(&st, body, len);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(out, h, PROTO_TICKET_CHECK_LEN);
}

static bool
token_ok(const char *s, size_t len)
{
    if (len < 1 || len > PROTO_TICKET_ADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

bool
proto_ticket_looks_like(const char *text)
{
    return text && strncasecmp(text, PROTO_TICKET_PREFIX, 4) == 0;
}

int
proto_ticket_encode(const proto_ticket *t, char *out, size_t cap)
{
    uint8_t buf[PROTO_TICKET_BODY_MAX + PROTO_TICKET_CHECK_LEN];
    size_t n = 0;
    if (!t || !out || t->n_addrs > PROTO_TICKET_ADDRS_MAX)
        return -EINVAL;
    buf[n++] = (uint8_t)((t->has_node ? PROTO_TICKET_F_NODE : 0) |
                         (t->has_publisher ? PROTO_TICKET_F_PUBLISHER : 0));
    memcpy(buf + n, t->model_id, PROTO_ID_LEN);
    n += PROTO_ID_LEN;
    if (t->has_node) {
        memcpy(buf + n, t->node_id, PROTO_ID_LEN);
        n += PROTO_ID_LEN;
    }
    if (t->has_publisher) {
        memcpy(buf + n, t->publisher, PROTO_TICKET_PUBKEY_LEN);
        n += PROTO_TICKET_PUBKEY_LEN;
    }
    buf[n++] = (uint8_t)t->n_addrs;
    for (size_t i = 0; i < t->n_addrs; i++) {
        size_t l = strnlen(t->addrs[i], PROTO_TICKET_ADDR_MAX + 1);
        if (!token_ok(t->addrs[i], l))
            return -EINVAL;
        buf[n++] = (uint8_t)l;
        memcpy(buf + n, t->addrs[i], l);
        n += l;
    }
    check_of(buf, n, buf + n);
    n += PROTO_TICKET_CHECK_LEN;
    size_t chars = (n * 8 + 4) / 5;
    if (cap < 4 + chars + 1)
        return -EMSGSIZE;
    memcpy(out, PROTO_TICKET_PREFIX, 4);
    size_t o = 4;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | buf[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alphabet[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return 0;
}

static int
b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

int
proto_ticket_decode(const char *text, size_t len, proto_ticket *ret)
{
    uint8_t buf[PROTO_TICKET_BODY_MAX + PROTO_TICKET_CHECK_LEN];
    if (!text || len < 4 || len > PROTO_TICKET_TEXT_MAX || strncasecmp(text, "nvx1", 4) != 0)
        return -EBADMSG;
    /* Base32: every character 5 bits; the bits left over at the end (< 8)
     * must be zero and fewer than 5, or the text has a spare character. */
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 4; i < len; i++) {
        int v = b32_value(text[i]);
        if (v < 0)
            return -EBADMSG;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (n == sizeof(buf))
                return -EBADMSG;
            buf[n++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    if (bits >= 5 || acc != 0 || n < 1 + PROTO_ID_LEN + 1 + PROTO_TICKET_CHECK_LEN)
        return -EBADMSG;
    size_t body = n - PROTO_TICKET_CHECK_LEN;
    uint8_t check[PROTO_TICKET_CHECK_LEN];
    check_of(buf, body, check);
    if (sodium_memcmp(check, buf + body, PROTO_TICKET_CHECK_LEN) != 0)
        return -EBADMSG;

    proto__rd r = { .p = buf, .len = body };
    proto_ticket t;
    memset(&t, 0, sizeof(t));
    uint8_t flags, na;
    const uint8_t *p;
    if (proto__rd_u8(&r, &flags) < 0 ||
        (flags & ~(unsigned)(PROTO_TICKET_F_NODE | PROTO_TICKET_F_PUBLISHER)) != 0 ||
        proto__rd_bytes(&r, PROTO_ID_LEN, &p) < 0)
        return -EBADMSG;
    memcpy(t.model_id, p, PROTO_ID_LEN);
    if (flags & PROTO_TICKET_F_NODE) {
        if (proto__rd_bytes(&r, PROTO_ID_LEN, &p) < 0)
            return -EBADMSG;
        t.has_node = true;
        memcpy(t.node_id, p, PROTO_ID_LEN);
    }
    if (flags & PROTO_TICKET_F_PUBLISHER) {
        if (proto__rd_bytes(&r, PROTO_TICKET_PUBKEY_LEN, &p) < 0)
            return -EBADMSG;
        t.has_publisher = true;
        memcpy(t.publisher, p, PROTO_TICKET_PUBKEY_LEN);
    }
    if (proto__rd_u8(&r, &na) < 0 || na > PROTO_TICKET_ADDRS_MAX)
        return -EBADMSG;
    for (size_t i = 0; i < na; i++) {
        uint8_t l;
        if (proto__rd_u8(&r, &l) < 0 || proto__rd_bytes(&r, l, &p) < 0 ||
            !token_ok((const char *)p, l))
            return -EBADMSG;
        memcpy(t.addrs[i], p, l);
        t.addrs[i][l] = '\0';
    }
    t.n_addrs = na;
    if (proto__rd_left(&r) != 0)
        return -EBADMSG;
    *ret = t;
    return 0;
}
