/* SPDX-License-Identifier: MIT */
/*
 * A peer's share of the event loop (issue 9, item 6): a token bucket of
 * microseconds. nvxd charges each peer the loop time its messages other than
 * DATA, REQUEST and CANCEL took (those cost in proportion to the bytes they
 * carry or ask for: no amplification there, and a fast honest peer must not
 * be slowed), and stops reading from a peer whose
 * bucket is empty until it refills, so no peer can hold the loop (and with it
 * the control socket and the other peers) for more than its share.
 * Sans-I/O: the caller supplies the clock.
 */
#ifndef NVX_DAEMON_BUDGET_H
#define NVX_DAEMON_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

enum {
    /* Loop time a peer earns per second (10% of the loop) and may bank.
     * Honest control traffic (WANT, HAVE, requests, gossip) costs a few
     * hundred microseconds a second. */
    NVX_BUDGET_RATE_US = 100000,
    NVX_BUDGET_BURST_US = 100000,
};

typedef struct nvx_budget {
    int64_t us;    /* tokens; below zero: in debt */
    uint64_t t_ms; /* last refill */
} nvx_budget;

/* A full bucket at now_ms. */
void nvx_budget_init(nvx_budget *b, uint64_t now_ms);
/* Charges us microseconds of loop time. */
void nvx_budget_spend(nvx_budget *b, uint64_t us);
/* Refills for the time since the last call; true while the bucket is empty
 * (stop reading from the peer). */
bool nvx_budget_empty(nvx_budget *b, uint64_t now_ms);

#endif
