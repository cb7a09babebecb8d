/* SPDX-License-Identifier: MIT */
/*
 * Tickets (proto/ticket.c): round trips with and without the optional
 * parts, one spelling per ticket, and a table of malformed tickets: each
 * must be refused (-EBADMSG), none may crash.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/ticket.h"

static proto_ticket
full(void)
{
    proto_ticket t;
    memset(&t, 0, sizeof(t));
    memset(t.model_id, 0xab, 32);
    t.has_node = true;
    memset(t.node_id, 0x11, 32);
    t.has_publisher = true;
    memset(t.publisher, 0x22, PROTO_TICKET_PUBKEY_LEN);
    t.n_addrs = PROTO_TICKET_ADDRS_MAX;
    snprintf(t.addrs[0], sizeof(t.addrs[0]), "11.0.1.2:4747");
    snprintf(t.addrs[1], sizeof(t.addrs[1]), "10.0.1.2:4747");
    snprintf(t.addrs[2], sizeof(t.addrs[2]), "[2001:db8::1]:4747");
    memset(t.addrs[3], 'h', PROTO_TICKET_ADDR_MAX - 5);
    memcpy(t.addrs[3] + PROTO_TICKET_ADDR_MAX - 5, ":4747", 6);
    return t;
}

static void
same(const proto_ticket *a, const proto_ticket *b)
{
    assert_memory_equal(a->model_id, b->model_id, 32);
    assert_int_equal(a->has_node, b->has_node);
    if (a->has_node)
        assert_memory_equal(a->node_id, b->node_id, 32);
    assert_int_equal(a->has_publisher, b->has_publisher);
    if (a->has_publisher)
        assert_memory_equal(a->publisher, b->publisher, PROTO_TICKET_PUBKEY_LEN);
    assert_int_equal(a->n_addrs, b->n_addrs);
    for (size_t i = 0; i < a->n_addrs; i++)
        assert_string_equal(a->addrs[i], b->addrs[i]);
}

static void
test_roundtrip(void **state)
{
    (void)state;
    char text[PROTO_TICKET_TEXT_MAX + 1];
    proto_ticket t = full(), d;
    assert_int_equal(proto_ticket_encode(&t, text, sizeof(text)), 0);
    assert_true(strlen(text) <= PROTO_TICKET_TEXT_MAX);
    assert_true(proto_ticket_looks_like(text));
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), 0);
    same(&t, &d);
    /* The largest ticket fits PROTO_TICKET_TEXT_MAX exactly. */
    proto_ticket big = t;
    for (size_t i = 0; i < PROTO_TICKET_ADDRS_MAX; i++)
        memcpy(big.addrs[i], t.addrs[3], PROTO_TICKET_ADDR_MAX + 1);
    char bigtext[PROTO_TICKET_TEXT_MAX + 1];
    assert_int_equal(proto_ticket_encode(&big, bigtext, sizeof(bigtext)), 0);
    assert_int_equal(strlen(bigtext), PROTO_TICKET_TEXT_MAX);
    assert_int_equal(proto_ticket_decode(bigtext, strlen(bigtext), &d), 0);
    same(&big, &d);
    /* Upper case is the same ticket. */
    for (char *c = text; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), 0);
    same(&t, &d);
    /* The smallest: a model id and one address. */
    proto_ticket s;
    memset(&s, 0, sizeof(s));
    memset(s.model_id, 7, 32);
    s.n_addrs = 1;
    snprintf(s.addrs[0], sizeof(s.addrs[0]), "127.0.0.1:1");
    assert_int_equal(proto_ticket_encode(&s, text, sizeof(text)), 0);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), 0);
    same(&s, &d);
    /* Too small a buffer; bad addresses. */
    assert_int_equal(proto_ticket_encode(&s, text, strlen(text)), -EMSGSIZE);
    s.addrs[0][3] = ' ';
    assert_int_equal(proto_ticket_encode(&s, text, sizeof(text)), -EINVAL);
    s.addrs[0][0] = '\0';
    assert_int_equal(proto_ticket_encode(&s, text, sizeof(text)), -EINVAL);
    s.n_addrs = PROTO_TICKET_ADDRS_MAX + 1;
    assert_int_equal(proto_ticket_encode(&s, text, sizeof(text)), -EINVAL);
}

/* Every ticket with one character changed, and every shorter prefix, is
 * refused: the check catches typos and cut-off pastes. */
static void
test_damage(void **state)
{
    (void)state;
    char text[PROTO_TICKET_TEXT_MAX + 2];
    proto_ticket t = full(), d;
    assert_int_equal(proto_ticket_encode(&t, text, sizeof(text)), 0);
    size_t len = strlen(text);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(proto_ticket_decode(text, cut, &d), -EBADMSG);
    for (size_t i = 4; i < len; i++) {
        char old = text[i];
        text[i] = old == 'a' ? 'b' : 'a';
        assert_int_equal(proto_ticket_decode(text, len, &d), -EBADMSG);
        text[i] = old;
    }
    text[len] = 'a'; /* one character more */
    text[len + 1] = '\0';
    assert_int_equal(proto_ticket_decode(text, len + 1, &d), -EBADMSG);
}

/* Encodes raw body bytes (with a correct check) as a ticket, so the body
 * parser meets layouts the encoder never writes. */
static void
raw_ticket(const uint8_t *body, size_t len, char *out)
{
    static const char a[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t buf[600], h[32];
    memcpy(buf, body, len);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"nvx-ticket----v1", 16);
    crypto_generichash_update(&st, body, len);
    crypto_generichash_final(&st, h, 32);
    memcpy(buf + len, h, 4);
    len += 4;
    size_t o = 0;
    memcpy(out, "nvx1", 4);
    o = 4;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = acc << 8 | buf[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = a[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[o++] = a[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

static void
test_malformed(void **state)
{
    (void)state;
    proto_ticket d;
    char text[1200];
    uint8_t b[400];
    memset(b, 0, sizeof(b));
    memset(b + 1, 0xcd, 32);
    /* A valid body: flags 0, model, one address "a:1". */
    b[33] = 1;
    b[34] = 3;
    memcpy(b + 35, "a:1", 3);
    raw_ticket(b, 38, text);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), 0);
    /* Zero addresses are allowed by the format. */
    b[33] = 0;
    raw_ticket(b, 34, text);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), 0);
    static const struct {
        const char *what;
        uint8_t flags, n, l;
        size_t len;
    } bad[] = {
        { "unknown flag", 0x04, 1, 3, 38 },
        { "node flag, no room", 0x01, 1, 3, 38 },
        { "addresses over the limit", 0, PROTO_TICKET_ADDRS_MAX + 1, 3, 38 },
        { "empty address", 0, 1, 0, 35 },
        { "address runs past the end", 0, 1, 9, 38 },
        { "trailing byte", 0, 1, 3, 39 },
        { "no address count", 0, 1, 3, 33 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        b[0] = bad[i].flags;
        b[33] = bad[i].n;
        b[34] = bad[i].l;
        raw_ticket(b, bad[i].len, text);
        if (proto_ticket_decode(text, strlen(text), &d) != -EBADMSG)
            fail_msg("accepted: %s", bad[i].what);
    }
    /* An address over PROTO_TICKET_ADDR_MAX, and one with a control byte. */
    b[0] = 0;
    b[33] = 1;
    b[34] = PROTO_TICKET_ADDR_MAX + 1;
    memset(b + 35, 'x', PROTO_TICKET_ADDR_MAX + 1);
    raw_ticket(b, 35 + PROTO_TICKET_ADDR_MAX + 1, text);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), -EBADMSG);
    b[34] = 3;
    memcpy(b + 35, "a\n1", 3);
    raw_ticket(b, 38, text);
    assert_int_equal(proto_ticket_decode(text, strlen(text), &d), -EBADMSG);
    /* Text: prefix, alphabet, padding bits, length. */
    static const char *const texts[] = {
        "", "nvx", "nvx1", "nvx2aaaa", "xyz1aaaa", "nvx1aaaa0aaa", "nvx1aaaa=", "nvx1 aaaa",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_int_equal(proto_ticket_decode(texts[i], strlen(texts[i]), &d), -EBADMSG);
    memset(text, 'a', sizeof(text));
    memcpy(text, "nvx1", 4);
    assert_int_equal(proto_ticket_decode(text, sizeof(text), &d), -EBADMSG);
    /* Nonzero spare bits in the last character: another spelling. */
    b[33] = 1;
    memcpy(b + 35, "a:1", 3);
    raw_ticket(b, 38, text);
    size_t n = strlen(text);
    assert_int_equal(proto_ticket_decode(text, n, &d), 0);
    char *last = &text[n - 1];
    *last = *last == '7' ? '6' : (char)(*last + 1);
    assert_int_equal(proto_ticket_decode(text, n, &d), -EBADMSG);
    assert_false(proto_ticket_looks_like("abcd"));
    assert_true(proto_ticket_looks_like("NVX1abc"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
