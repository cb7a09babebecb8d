/* SPDX-License-Identifier: MIT */
#include "daemon/ratelimit.h"

void
nvx_rate_init(nvx_rate *b, uint64_t rate, uint64_t now_ms)
{
    b->rate = rate;
    uint64_t burst = rate / 1000 * NVX_RATE_BURST_MS;
    b->burst = burst > NVX_RATE_BURST_MIN ? burst : NVX_RATE_BURST_MIN;
    b->tokens = (int64_t)b->burst;
    b->t_ms = now_ms;
    b->carry = 0;
}

static void
refill(nvx_rate *b, uint64_t now_ms)
{
    if (now_ms <= b->t_ms)
        return; /* same ms, or a clock that went back: nothing earned */
    uint64_t dt = now_ms - b->t_ms;
    b->t_ms = now_ms;
    if (dt > 60 * 1000)
        dt = 60 * 1000; /* a minute fills any bucket; keeps rate * dt small */
    uint64_t milli = b->rate * dt + b->carry;
    b->carry = milli % 1000;
    int64_t t = b->tokens + (int64_t)(milli / 1000);
    b->tokens = t > (int64_t)b->burst ? (int64_t)b->burst : t;
}

uint64_t
nvx_rate_avail(nvx_rate *b, uint64_t now_ms)
{
    if (b->rate == 0)
        return UINT64_MAX;
    refill(b, now_ms);
    return b->tokens > 0 ? (uint64_t)b->tokens : 0;
}

void
nvx_rate_take(nvx_rate *b, uint64_t bytes)
{
    if (b->rate == 0)
        return;
    /* Debt is bounded by one take; takes are pieces (at most a chunk). */
    if (bytes > (uint64_t)INT64_MAX / 2)
        bytes = (uint64_t)INT64_MAX / 2;
    b->tokens -= (int64_t)bytes;
}

bool
nvx_rate_limited(const nvx_rate *b)
{
    return b->rate != 0;
}
