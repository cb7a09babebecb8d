/* SPDX-License-Identifier: MIT */
/*
 * Per-chunk refusals of the transfer engine (daemon/xfer-internal.h): a
 * peer that cannot serve one chunk (NOT_FOUND CHUNK: its copy rotted and
 * its re-hash caught it, or it lost the chunk; or bytes that fail the
 * chunk's hash) loses its claim on that chunk only and keeps serving the
 * rest. A chunk that every live holder refused cannot be fetched: once
 * nothing else is left to do, the transfer waits lonely_max_ms for a new
 * provider and then fails naming the chunk (issue 9, item 5), instead of
 * sitting at 0 B/s.
 *
 * Bounds on a hostile peer: a refusal costs one REQUEST and one answer per
 * chunk and session (the peer is not asked for the chunk again); bad bytes
 * cost a hash each, and the NVX_XFER_BAD_CHUNKS_MAX-th bad chunk of a
 * session is punished as any bad data (ops->bad_peer). Memory: one bit per
 * chunk per refusing peer and one byte per chunk per transfer, allocated at
 * the first refusal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bits.h"
#include "daemon/xfer-internal.h"
#include "proto/control.h"

static uint32_t
n_chunks(const nvx_xfer *x)
{
    return x->pk ? nvx_picker_n_chunks(x->pk) : 0;
}

/* Marks idx refused by xp (its bit and the chunk's count). Returns 1 when
 * newly refused, 0 when it was already, -ENOMEM. */
static int
mark(nvx_xfer *x, struct xpeer *xp, uint32_t idx)
{
    uint32_t n = n_chunks(x);
    if (idx >= n)
        return -EINVAL;
    if (!xp->refused) {
        xp->refused = calloc((n + 7) / 8, 1);
        if (!xp->refused)
            return -ENOMEM;
        xp->n_refused_bits = n;
    }
    if (!x->refusals) {
        x->refusals = calloc(n, 1);
        if (!x->refusals)
            return -ENOMEM;
    }
    if (nvx__xf_refused(xp, idx))
        return 0;
    bit_set(xp->refused, idx);
    if (x->refusals[idx] == 0)
        x->n_refused++;
    if (x->refusals[idx] < UINT8_MAX)
        x->refusals[idx]++; /* distinct sessions that refused it */
    return 1;
}

void
nvx__xf_refuse(nvx_xfer *x, struct xpeer *xp, uint32_t idx)
{
    int r = mark(x, xp, idx);
    if (r == -EINVAL)
        return;
    if (r >= 0 && (!xp->pp || nvx_picker_peer_lose(x->pk, xp->pp, idx) == 0))
        return;
    /* No memory to remember one chunk: stop asking the peer anything until
     * it says HAVE again (what a refusal did before). */
    nvx__xf_xpeer_unhave(x, xp, true);
}

void
nvx__xf_refused_apply(nvx_xfer *x, struct xpeer *xp)
{
    if (!xp->refused || !xp->pp)
        return;
    for (uint32_t i = 0; i < xp->n_refused_bits; i++)
        if (nvx__xf_refused(xp, i) && nvx_picker_peer_lose(x->pk, xp->pp, i) < 0) {
            nvx__xf_xpeer_unhave(x, xp, true);
            return;
        }
}

/* The live session of the peer with this id, if any. */
static struct xpeer *
xpeer_by_id(nvx_xfer *x, const uint8_t id[32])
{
    for (struct xpeer *xp = x->peers; xp; xp = xp->next)
        if (memcmp(xp->id, id, 32) == 0)
            return xp;
    return NULL;
}

void
nvx__xf_bad_chunk(nvx_xfer *x, const nvx_xfer_chunk *c)
{
    char what[64];
    snprintf(what, sizeof(what), "a bad chunk (%u)", c->idx);
    struct xpeer *xp = xpeer_by_id(x, c->sender);
    /* Its first bad chunk may be rot it did not catch (an older node that
     * does not re-hash what it serves): it loses that chunk. Another one
     * is a lie repeated: punished as bad data always was. */
    if (xp && ++xp->bad_chunks < NVX_XFER_BAD_CHUNKS_MAX) {
        nvx__xf_refuse(x, xp, c->idx);
        return;
    }
    if (xp)
        nvx__xf_refuse(x, xp, c->idx); /* counted for the failure's message */
    x->ops->bad_peer(x->arg, c->sender, c->sender_addr, what);
}

/* Whether chunk i is missing and no live peer still claims it, though one
 * did and refused it. */
static bool
orphan(const nvx_xfer *x, uint32_t i)
{
    return x->refusals[i] > 0 && !nvx_picker_has(x->pk, i) && nvx_picker_avail(x->pk, i) == 0;
}

/* Fills the failure's details (x->fail_*) from the orphans. */
static void
fail_orphans(nvx_xfer *x)
{
    uint32_t n = n_chunks(x);
    uint64_t off = 0;
    bool first = true;
    for (uint32_t i = 0; i < n; i++) {
        if (orphan(x, i)) {
            if (first) {
                x->fail_chunk = i;
                x->fail_offset = off;
                x->fail_tried = x->refusals[i];
                first = false;
            }
            x->fail_chunks++;
        }
        off += x->chunk_len[i];
    }
    x->has_fail_chunk = !first;
    nvx__xf_end(x, PROTO_CTL_STATE_FAILED, -ENODATA);
}

void
nvx__xf_check_stuck(nvx_xfer *x, uint64_t now)
{
    /* Only a transfer with nothing left to do is stuck: chunks in flight,
     * received or being stored may still complete it, and the rest of the
     * model is fetched before it fails for the chunks nobody can serve. */
    bool idle = x->pk && x->n_refused > 0 && !x->finishing &&
                x->state == PROTO_CTL_STATE_FETCHING && !nvx__xf_expect_more(x) &&
                x->n_ready == 0 && x->pending == 0;
    bool stuck = false;
    for (uint32_t i = 0, n = idle ? n_chunks(x) : 0; i < n && !stuck; i++)
        stuck = orphan(x, i);
    if (!stuck) {
        x->stuck_since_ms = 0;
        return;
    }
    if (!x->stuck_since_ms)
        x->stuck_since_ms = now ? now : 1;
    if (now - x->stuck_since_ms >= x->lonely_max_ms)
        fail_orphans(x);
}
