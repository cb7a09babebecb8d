/* SPDX-License-Identifier: MIT */
#include "daemon/budget.h"

void
nvx_budget_init(nvx_budget *b, uint64_t now_ms)
{
    b->us = NVX_BUDGET_BURST_US;
    b->t_ms = now_ms;
}

void
nvx_budget_spend(nvx_budget *b, uint64_t us)
{
    /* Debt is bounded so that one slow message is paid off in seconds. */
    int64_t floor = -10 * (int64_t)NVX_BUDGET_BURST_US;
    b->us = us > (uint64_t)(b->us - floor) ? floor : b->us - (int64_t)us;
}

bool
nvx_budget_empty(nvx_budget *b, uint64_t now_ms)
{
    if (now_ms > b->t_ms) {
        uint64_t gain = (now_ms - b->t_ms) * (NVX_BUDGET_RATE_US / 1000);
        int64_t room = NVX_BUDGET_BURST_US - b->us;
        b->us = gain >= (uint64_t)room ? NVX_BUDGET_BURST_US : b->us + (int64_t)gain;
        b->t_ms = now_ms;
    }
    return b->us <= 0;
}
