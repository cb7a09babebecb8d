/* SPDX-License-Identifier: MIT */
/*
 * Connection reversal's rate limits and pending dials (daemon/reverse.h).
 * Fixed-size tables with least-recently-used replacement: a peer with free
 * keys can churn them but never grow them, and an evicted entry only
 * forgets a rate (a fresh bucket is a burst: still bounded per message).
 */
#include "daemon/reverse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A token bucket with whole tokens: `tokens` at time t_ms. */
struct bucket {
    uint32_t tokens;
    uint64_t t_ms;
};

struct sess_ent { /* relay side, by asking session */
    bool used;
    uint64_t session;
    struct bucket b;
    uint64_t seen_ms;
};

struct relay_ent { /* target side, by relay node id */
    bool used;
    uint8_t relay[32];
    struct bucket b;
    unsigned strikes;
    uint64_t banned_until_ms, seen_ms;
};

struct pend_ent { /* target side: a dial a relay asked for */
    bool used;
    uint8_t node[32], relay[32];
    char addr[100];
    uint64_t until_ms;
};

struct want_ent { /* fetcher side */
    bool used;
    uint8_t target[32];
    uint64_t next_ms, seen_ms;
};

struct nvx_reverse {
    struct sess_ent sess[NVX_REVERSE_TABLE];
    struct relay_ent relays[NVX_REVERSE_TABLE];
    struct pend_ent pend[NVX_REVERSE_PENDING_MAX];
    struct want_ent wants[NVX_REVERSE_TABLE];
};

int
nvx_reverse_new(nvx_reverse **ret)
{
    nvx_reverse *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *ret = r;
    return 0;
}

void
nvx_reverse_free(nvx_reverse *r)
{
    free(r);
}

/* Refills b (burst tokens at most, one per period_ms) and takes one token.
 * True when there was one. */
static bool
bucket_take(struct bucket *b, uint32_t burst, uint64_t period_ms, uint64_t now_ms)
{
    if (now_ms > b->t_ms) {
        uint64_t add = (now_ms - b->t_ms) / period_ms;
        if (add > 0) {
            b->tokens =
                add >= burst || b->tokens + add >= burst ? burst : b->tokens + (uint32_t)add;
            b->t_ms += add * period_ms;
        }
    }
    if (b->tokens == burst)
        b->t_ms = now_ms; /* a full bucket does not bank time */
    if (b->tokens == 0)
        return false;
    b->tokens--;
    return true;
}

bool
nvx_reverse_relay_ok(nvx_reverse *r, uint64_t from, uint64_t now_ms)
{
    size_t i = 0, old = 0;
    for (; i < NVX_REVERSE_TABLE; i++) {
        if (r->sess[i].used && r->sess[i].session == from)
            break;
        if (!r->sess[old].used)
            continue;
        if (!r->sess[i].used || r->sess[i].seen_ms < r->sess[old].seen_ms)
            old = i;
    }
    if (i == NVX_REVERSE_TABLE) {
        i = old;
        r->sess[i] = (struct sess_ent){ .used = true,
                                        .session = from,
                                        .b = { NVX_REVERSE_RELAY_BURST, now_ms } };
    }
    r->sess[i].seen_ms = now_ms;
    return bucket_take(&r->sess[i].b, NVX_REVERSE_RELAY_BURST, NVX_REVERSE_RELAY_MS, now_ms);
}

void
nvx_reverse_session_gone(nvx_reverse *r, uint64_t session)
{
    for (size_t i = 0; i < NVX_REVERSE_TABLE; i++)
        if (r->sess[i].used && r->sess[i].session == session)
            r->sess[i].used = false;
}

static struct relay_ent *
relay_get(nvx_reverse *r, const uint8_t relay[static 32], uint64_t now_ms)
{
    size_t i = 0, old = 0;
    for (; i < NVX_REVERSE_TABLE; i++) {
        if (r->relays[i].used && memcmp(r->relays[i].relay, relay, 32) == 0)
            break;
        if (!r->relays[old].used)
            continue;
        if (!r->relays[i].used || r->relays[i].seen_ms < r->relays[old].seen_ms)
            old = i;
    }
    if (i == NVX_REVERSE_TABLE) {
        i = old;
        r->relays[i] = (struct relay_ent){ .used = true, .b = { NVX_REVERSE_DIAL_BURST, now_ms } };
        memcpy(r->relays[i].relay, relay, 32);
    }
    r->relays[i].seen_ms = now_ms;
    return &r->relays[i];
}

unsigned
nvx_reverse_pending(const nvx_reverse *r, uint64_t now_ms)
{
    unsigned n = 0;
    for (size_t i = 0; i < NVX_REVERSE_PENDING_MAX; i++)
        n += r->pend[i].used && r->pend[i].until_ms > now_ms;
    return n;
}

bool
nvx_reverse_dial_ok(nvx_reverse *r, const uint8_t relay[static 32], const uint8_t node[static 32],
                    const char *addr, uint64_t now_ms)
{
    if (!addr || strlen(addr) >= sizeof(r->pend[0].addr))
        return false;
    struct relay_ent *re = relay_get(r, relay, now_ms);
    if (re->banned_until_ms > now_ms)
        return false;
    /* A free pending slot first: a request we cannot track is not obeyed
     * (and costs the relay no token). */
    size_t slot = NVX_REVERSE_PENDING_MAX;
    for (size_t i = 0; i < NVX_REVERSE_PENDING_MAX; i++) {
        if (r->pend[i].used && r->pend[i].until_ms > now_ms &&
            memcmp(r->pend[i].node, node, 32) == 0)
            return false; /* already dialing that node */
        if (!r->pend[i].used || r->pend[i].until_ms <= now_ms)
            slot = i;
    }
    if (slot == NVX_REVERSE_PENDING_MAX ||
        !bucket_take(&re->b, NVX_REVERSE_DIAL_BURST, NVX_REVERSE_DIAL_MS, now_ms))
        return false;
    struct pend_ent *p = &r->pend[slot];
    *p = (struct pend_ent){ .used = true, .until_ms = now_ms + NVX_REVERSE_PENDING_MS };
    memcpy(p->node, node, 32);
    memcpy(p->relay, relay, 32);
    memcpy(p->addr, addr, strlen(addr) + 1);
    return true;
}

void
nvx_reverse_resolved(nvx_reverse *r, const uint8_t node[static 32])
{
    for (size_t i = 0; i < NVX_REVERSE_PENDING_MAX; i++)
        if (r->pend[i].used && memcmp(r->pend[i].node, node, 32) == 0)
            r->pend[i].used = false;
}

bool
nvx_reverse_mismatch(nvx_reverse *r, const uint8_t node[static 32], const char *addr,
                     uint64_t now_ms)
{
    for (size_t i = 0; i < NVX_REVERSE_PENDING_MAX; i++) {
        struct pend_ent *p = &r->pend[i];
        if (!p->used || memcmp(p->node, node, 32) != 0 || strcmp(p->addr, addr) != 0)
            continue;
        p->used = false;
        struct relay_ent *re = relay_get(r, p->relay, now_ms);
        if (++re->strikes >= NVX_REVERSE_STRIKES) {
            re->banned_until_ms = now_ms + NVX_REVERSE_BAN_MS;
            re->strikes = 0;
        }
        return true;
    }
    return false;
}

bool
nvx_reverse_want(nvx_reverse *r, const uint8_t target[static 32], uint64_t now_ms)
{
    size_t i = 0, old = 0;
    for (; i < NVX_REVERSE_TABLE; i++) {
        if (r->wants[i].used && memcmp(r->wants[i].target, target, 32) == 0)
            break;
        if (!r->wants[old].used)
            continue;
        if (!r->wants[i].used || r->wants[i].seen_ms < r->wants[old].seen_ms)
            old = i;
    }
    if (i == NVX_REVERSE_TABLE) {
        i = old;
        r->wants[i] = (struct want_ent){ .used = true, .next_ms = now_ms };
        memcpy(r->wants[i].target, target, 32);
    }
    r->wants[i].seen_ms = now_ms;
    if (now_ms < r->wants[i].next_ms)
        return false;
    r->wants[i].next_ms = now_ms + NVX_REVERSE_RETRY_MS;
    return true;
}
