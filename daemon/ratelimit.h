/* SPDX-License-Identifier: MIT */
/*
 * Bandwidth limits (issue 14 item 3): a token bucket of bytes. nvxd keeps
 * one for its upload (`upload-rate`: the DATA it serves, daemon/serve.c),
 * one for its download (`download-rate`) and one per transfer
 * (`nvx fetch --rate`): the bytes a transfer may REQUEST (daemon/fetch.c
 * hands the transfer engine what both allow). Control messages (HAVE,
 * gossip, handshakes) are never charged: a limited node still answers,
 * announces and keeps its sessions alive.
 *
 * A take may be larger than what the bucket holds (a whole request piece
 * goes out at once): the bucket then goes into debt and allows nothing
 * until the debt is paid, so over time the bytes taken never exceed
 * rate * elapsed + burst + one take. The burst is half a second of the
 * rate (at least NVX_RATE_BURST_MIN), so the node's 250 ms tick that
 * resumes a throttled sender never finds a full bucket wasting tokens.
 *
 * Sans-I/O: the caller passes the clock (ms) in. Loop thread only.
 */
#ifndef NVX_DAEMON_RATELIMIT_H
#define NVX_DAEMON_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum nvx_rate_limits {
    NVX_RATE_BURST_MIN = 64 * 1024, /* bytes */
    NVX_RATE_MIN = 1024,            /* bytes/s: smaller limits are refused */
    NVX_RATE_BURST_MS = 500,        /* the burst is this much of the rate */
};
#define NVX_RATE_MAX ((uint64_t)1 << 40) /* bytes/s: above any link; keeps rate * ms in range */

/* Embedded by its owner; nvx_rate_init() before use. */
typedef struct nvx_rate {
    uint64_t rate;  /* bytes/s; 0 = unlimited */
    uint64_t burst; /* bucket size, bytes */
    int64_t tokens; /* below zero: in debt */
    uint64_t t_ms;  /* last refill */
    uint64_t carry; /* rate * ms remainder of the last refill (no byte lost) */
} nvx_rate;

/* A full bucket of rate bytes/s at now_ms (0: unlimited). */
void nvx_rate_init(nvx_rate *b, uint64_t rate, uint64_t now_ms);

/* Bytes that may go now (UINT64_MAX when unlimited, 0 while empty or in
 * debt), after refilling for the time since the last call. */
uint64_t nvx_rate_avail(nvx_rate *b, uint64_t now_ms);

/* Charges bytes (may exceed what is available: debt). */
void nvx_rate_take(nvx_rate *b, uint64_t bytes);

/* Whether the bucket limits anything. */
bool nvx_rate_limited(const nvx_rate *b);

#endif
