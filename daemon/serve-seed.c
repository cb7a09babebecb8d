/* SPDX-License-Identifier: MIT */
/*
 * Super-seeding wired into serving (daemon/superseed.h has the why). For
 * each complete model that peers are fetching from us, up to
 * NVX_NODE_SSEEDS_MAX at once, a struct sseed holds the reveal state and
 * the fetchers: our HAVE to a fetcher names the chunks revealed to it, and
 * each chunk we send it, or it announces, reveals the next (HAVE with
 * ranges). Past the limit, and once every chunk has gone out, peers get HAVE
 * ALL as from any seeder. Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/node-internal.h"
#include "daemon/superseed.h"

enum {
    /* Chunks one announcement is allowed to make us look at: HAVE is the
     * peer's to send, and its cost must stay proportional and small. */
    SEED_HAVE_SCAN_MAX = 1024,
};

struct sspeer {
    struct sspeer *next;
    nvx_peer *p;
    nvx_ss_peer *pp;
};

struct sseed {
    struct sseed *next;
    uint8_t id[32];
    nvx_ss *ss;
    struct sspeer *peers;
};

static struct sseed *
sseed_find(nvx_node *n, const uint8_t id[32])
{
    for (struct sseed *s = n->sseeds; s; s = s->next)
        if (memcmp(s->id, id, 32) == 0)
            return s;
    return NULL;
}

static struct sspeer *
sspeer_find(struct sseed *s, const nvx_peer *p)
{
    for (struct sspeer *sp = s->peers; sp; sp = sp->next)
        if (sp->p == p)
            return sp;
    return NULL;
}

/* Tells p what was revealed to it now (HAVE with ranges, or HAVE ALL).
 * answer: p asked (WANT): a HAVE goes out even with nothing revealed (an
 * empty bitmap), so that p counts us as a partial holder and tells us what
 * it gets; without that we could not tell a fetcher that starves. */
static void
reveal(struct sseed *s, struct sspeer *sp, bool answer)
{
    uint32_t idx[NVX_SS_AHEAD_TOTAL];
    bool all;
    size_t k = nvx_ss_reveal(s->ss, sp->pp, nvx__now(sp->p->node), idx, NVX_SS_AHEAD_TOTAL, &all);
    if (k == 0 && !all && !answer)
        return;
    proto_msg m = { .type = PROTO_MSG_HAVE };
    memcpy(m.u.want.model_id, s->id, 32);
    m.u.want.set.kind = all ? PROTO_CHUNKSET_ALL : PROTO_CHUNKSET_RANGES;
    if (k == 0 && !all) {
        static const uint8_t none = 0;
        m.u.want.set.kind = PROTO_CHUNKSET_BITMAP;
        m.u.want.set.nbits = 1;
        m.u.want.set.bitmap = &none;
    }
    for (size_t i = 0; i < k; i++) {
        proto_chunkset *set = &m.u.want.set;
        proto_range *last = set->n_ranges ? &set->ranges[set->n_ranges - 1] : NULL;
        if (last && last->start + last->count == idx[i])
            last->count++;
        else
            set->ranges[set->n_ranges++] = (proto_range){ .start = idx[i], .count = 1 };
    }
    proto_session_send_msg(sp->p->sess, &m);
}

static void
sseed_free(nvx_node *n, struct sseed *s)
{
    for (struct sseed **pp = &n->sseeds; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    while (s->peers) {
        struct sspeer *sp = s->peers;
        s->peers = sp->next;
        free(sp);
    }
    nvx_ss_free(s->ss);
    free(s);
    n->n_sseeds--;
}

/* Unlinks and frees sp (its ss peer already removed or never added). */
static void
seed_forget(struct sseed *s, struct sspeer *sp)
{
    for (struct sspeer **pp = &s->peers; *pp; pp = &(*pp)->next)
        if (*pp == sp) {
            *pp = sp->next;
            break;
        }
    free(sp);
}

bool
nvx__seed_want(nvx_peer *p, const uint8_t model[static 32], uint32_t n_chunks)
{
    nvx_node *n = p->node;
    struct sseed *s = sseed_find(n, model);
    if (!s) {
        if (n->n_sseeds >= NVX_NODE_SSEEDS_MAX || !(s = calloc(1, sizeof(*s))))
            return false;
        memcpy(s->id, model, 32);
        uint64_t seed;
        randombytes_buf(&seed, sizeof(seed));
        if (nvx_ss_new(n_chunks, seed, &s->ss) < 0) {
            free(s);
            return false;
        }
        s->next = n->sseeds;
        n->sseeds = s;
        n->n_sseeds++;
    }
    /* A WANT again from the same peer: fetchers ask partial holders again
     * every NVX_XFER_REWANT_MS, and get their untaken reveals re-dealt
     * (nvx_ss_peer_redeal). One that had every chunk starts over (it
     * removed the model): what it got counts no more. (One that removed a
     * partial copy gets HAVE ALL once it starves: daemon/superseed.h.) */
    struct sspeer *sp = sspeer_find(s, p);
    if (sp && !nvx_ss_peer_has_all(s->ss, sp->pp)) {
        nvx_ss_peer_redeal(s->ss, sp->pp);
        reveal(s, sp, true);
        return true;
    }
    if (sp) {
        nvx_ss_peer_remove(s->ss, sp->pp);
        sp->pp = NULL;
    } else if ((sp = calloc(1, sizeof(*sp)))) {
        sp->p = p;
        sp->next = s->peers;
        s->peers = sp;
    }
    if (!sp || nvx_ss_peer_add(s->ss, &sp->pp) < 0) {
        if (sp)
            seed_forget(s, sp);
        if (!s->peers)
            sseed_free(n, s);
        return false;
    }
    reveal(s, sp, true);
    return true;
}

static void
got(nvx_peer *p, const uint8_t model[32], const proto_range *ranges, size_t n_ranges)
{
    struct sseed *s = sseed_find(p->node, model);
    struct sspeer *sp = s ? sspeer_find(s, p) : NULL;
    if (!sp)
        return;
    uint32_t budget = SEED_HAVE_SCAN_MAX;
    for (size_t r = 0; r < n_ranges && budget > 0; r++)
        for (uint32_t i = 0; i < ranges[r].count && budget > 0; i++, budget--)
            nvx_ss_peer_got(s->ss, sp->pp, ranges[r].start + i);
    reveal(s, sp, false);
}

void
nvx__seed_sent(nvx_peer *p, const uint8_t model[static 32], uint32_t chunk)
{
    proto_range r = { .start = chunk, .count = 1 };
    got(p, model, &r, 1);
}

void
nvx__seed_asked(nvx_peer *p, const uint8_t model[static 32], uint32_t chunk)
{
    struct sseed *s = sseed_find(p->node, model);
    struct sspeer *sp = s ? sspeer_find(s, p) : NULL;
    if (sp)
        nvx_ss_peer_asked(s->ss, sp->pp, chunk);
}

void
nvx__seed_have(nvx_peer *p, const proto_want *h)
{
    /* Fetchers announce single chunks as ranges; bitmaps and ALL would
     * cost a scan of the model and tell super-seeding nothing it needs. */
    if (!p->closing && h->set.kind == PROTO_CHUNKSET_RANGES) {
        got(p, h->model_id, h->set.ranges, h->set.n_ranges);
        nvx__peer_flush(p);
    }
}

void
nvx__seed_tick(nvx_node *n)
{
    for (struct sseed *s = n->sseeds; s; s = s->next)
        for (struct sspeer *sp = s->peers; sp; sp = sp->next)
            if (!sp->p->closing) {
                reveal(s, sp, false);
                nvx__peer_flush(sp->p);
            }
}

void
nvx__seed_peer_gone(nvx_peer *p)
{
    for (struct sseed *s = p->node->sseeds, *next; s; s = next) {
        next = s->next;
        struct sspeer *sp = sspeer_find(s, p);
        if (sp) {
            nvx_ss_peer_remove(s->ss, sp->pp);
            seed_forget(s, sp);
        }
        if (!s->peers)
            sseed_free(p->node, s);
    }
}
