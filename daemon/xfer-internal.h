/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_XFER_INTERNAL_H
#define NVX_DAEMON_XFER_INTERNAL_H
/*
 * The transfer engine's state, shared by daemon/xfer.c (the events) and
 * daemon/xfer-state.c (the moves several events make). Calls go one way:
 * xfer.c -> xfer-state.c -> picker, ops.
 */
#include <stdbool.h>
#include <stdint.h>

#include "daemon/picker.h"
#include "daemon/xfer.h"

enum {
    CREQ_PIECES_MAX = 256, /* got_bits */
};

/* One chunk requested from one peer, maybe in several pieces. */
struct creq {
    struct creq *prev, *next; /* the peer's list, oldest first */
    uint32_t idx, len;
    uint32_t req_base, npieces, piece;
    uint32_t got;                            /* bytes received */
    uint64_t got_bits[CREQ_PIECES_MAX / 64]; /* pieces received */
    uint8_t *buf;                            /* pieces gathered here (NULL: one piece) */
    uint64_t t_sent;
    bool dup_asked; /* asked of another peer as well (slow) */
};

struct xpeer {
    struct xpeer *next;
    void *peer;
    uint8_t id[32];
    char addr[NVX_XFER_ADDR_LEN];
    uint32_t piece;
    uint64_t window;
    bool has;      /* answered HAVE: holds some or all of the model */
    uint8_t *bits; /* with has: NULL is ALL */
    uint32_t nbits;
    nvx_picker_peer *pp; /* with has, once the picker exists */
    uint64_t retry_ms;   /* BUSY: do not ask before this */
    struct creq *creqs, *creqs_tail;
    uint64_t delivered_ms;  /* last DATA (0: never) */
    unsigned moved_away;    /* requests moved to faster peers */
    uint64_t benched_until; /* asked nothing new before (never delivered) */
    bool masked;            /* asked for the current manifest piece, as mreq at mreq_ms */
    uint32_t mreq;
    uint64_t mreq_ms;
    /* Last DATA, or when requests started waiting: a peer whose queue
     * makes no progress for NVX_XFER_REQUEST_TIMEOUT_MS stalls (a slow
     * honest peer with a deep queue still delivers every few seconds). */
    uint64_t progress_ms;
    /* Chunks it could not serve (NOT_FOUND CHUNK, bad bytes): not asked of
     * it again this session, whatever its HAVEs say (daemon/xfer-refuse.c). */
    uint8_t *refused; /* NULL: none; else n_refused_bits bits */
    uint32_t n_refused_bits;
    unsigned bad_chunks; /* chunks from it that failed their hash */
};

struct nvx_xfer {
    const nvx_xfer_ops *ops;
    void *arg;
    uint8_t id[32];
    uint64_t seed, now;
    uint64_t win[3]; /* picker window limits (0: the picker's) */
    int state, error;
    bool opening, ending, ended, committing, finishing, pump_due;
    unsigned depth; /* public entries on the stack */
    unsigned jobs;  /* store, commit and finish actions not answered */
    struct xpeer *peers;
    /* manifest download */
    unsigned n_masked;  /* peers asked for the current manifest piece */
    unsigned mwidth;    /* how many more to ask when it is late */
    uint64_t mpiece_ms; /* the last time more were asked */
    uint8_t *mbuf;
    uint32_t mtotal, mhave;
    uint8_t msender[32]; /* who sent the manifest being checked */
    char msender_addr[NVX_XFER_ADDR_LEN];
    /* chunks */
    nvx_picker *pk;
    uint32_t *chunk_len;
    uint8_t *fresh; /* a bit per chunk: verified and stored by this transfer */
    uint64_t bytes_total, bytes_done, chunks_total, chunks_done;
    uint32_t uncommitted;
    uint64_t last_commit_ms, lonely_since_ms, rewant_ms;
    uint64_t lonely_max_ms;              /* fail after this long with no holder */
    nvx_xfer_chunk *ready, **ready_tail; /* received, waiting for a store action */
    unsigned n_ready;
    uint64_t pending; /* bytes received, not yet stored */
    uint64_t rate, rate_bytes;
    /* Bytes REQUESTed so far, and of those, reported to ops->rate_used
     * (the download limits, daemon/ratelimit.h). */
    uint64_t req_bytes, req_charged;
    uint64_t work; /* HAVE merging: bytes of bitmap touched + new chunks */
    /* Refusals (daemon/xfer-refuse.c): per chunk, how many sessions
     * refused it (saturating; NULL until the first); chunks with one. */
    uint8_t *refusals;
    uint32_t n_refused;
    uint64_t stuck_since_ms; /* idle with a chunk nobody can serve, since */
    /* Why the transfer failed with -ENODATA: the first chunk nobody could
     * serve, its byte offset, how many sessions refused it, how many such
     * chunks there were. */
    bool has_fail_chunk;
    uint32_t fail_chunk, fail_tried, fail_chunks;
    uint64_t fail_offset;
};

#define ENTER(x) ((x)->depth++)
#define LEAVE(x)           \
    do {                   \
        (x)->depth--;      \
        nvx__xf_settle(x); \
    } while (0)

void nvx__xf_settle(nvx_xfer *x);
struct xpeer *nvx__xf_xpeer_find(const nvx_xfer *x, const void *peer);
void nvx__xf_send_want(nvx_xfer *x, struct xpeer *xp);
void nvx__xf_creq_send(nvx_xfer *x, struct xpeer *xp, const struct creq *c, uint8_t type);
void nvx__xf_creq_unlink(struct xpeer *xp, struct creq *c);
struct creq *nvx__xf_creq_find(const struct xpeer *xp, uint32_t req_id);
void nvx__xf_xpeer_unhave(nvx_xfer *x, struct xpeer *xp, bool send_cancel);
void nvx__xf_xpeer_remove(nvx_xfer *x, struct xpeer *xp, bool send_cancel);
void nvx__xf_xpeer_drop(nvx_xfer *x, struct xpeer *xp, const char *why);
void nvx__xf_send_requests(nvx_xfer *x, struct xpeer *xp, uint64_t now, uint64_t *budget);
void nvx__xf_ask_slow_elsewhere(nvx_xfer *x, uint64_t now);
void nvx__xf_chunk_free(nvx_xfer *x, nvx_xfer_chunk *c);
void nvx__xf_ready_free(nvx_xfer *x);
void nvx__xf_ready_dispatch(nvx_xfer *x, bool all);
bool nvx__xf_expect_more(const nvx_xfer *x);
void nvx__xf_maybe_commit(nvx_xfer *x, uint64_t now, bool force);
void nvx__xf_maybe_finish(nvx_xfer *x);
void nvx__xf_end(nvx_xfer *x, int state, int error);
void nvx__xf_manifest_ask(nvx_xfer *x, struct xpeer *xp);
void nvx__xf_manifest_unask(nvx_xfer *x, struct xpeer *xp);
void nvx__xf_manifest_unask_all(nvx_xfer *x);
void nvx__xf_manifest_next(nvx_xfer *x);
void nvx__xf_manifest_late(nvx_xfer *x, uint64_t now);
void nvx__xf_xpeer_punish(nvx_xfer *x, struct xpeer *xp, const char *what);
int nvx__xf_chunkset_bits(const proto_chunkset *set, uint8_t **ret_bits, uint32_t *ret_n);
void nvx__xf_have_merge(nvx_xfer *x, struct xpeer *xp, const proto_chunkset *set);
void nvx__xf_announce_chunks(nvx_xfer *x, uint32_t *idx, size_t n);
/* Whether xp refused chunk idx (daemon/xfer-refuse.c keeps the bits). A
 * plain read, inline so that xfer-state.c need not call into
 * xfer-refuse.c, which calls it. */
static inline bool
nvx__xf_refused(const struct xpeer *xp, uint32_t idx)
{
    return xp->refused && idx < xp->n_refused_bits && ((xp->refused[idx / 8] >> (idx % 8)) & 1);
}

/* daemon/xfer-refuse.c */
void nvx__xf_refuse(nvx_xfer *x, struct xpeer *xp, uint32_t idx);
void nvx__xf_refused_apply(nvx_xfer *x, struct xpeer *xp);
void nvx__xf_bad_chunk(nvx_xfer *x, const nvx_xfer_chunk *c);
void nvx__xf_check_stuck(nvx_xfer *x, uint64_t now);

#endif
