/* SPDX-License-Identifier: MIT */
/* daemon/budget.c: a peer's share of the loop refills at its rate, banks at
 * most its burst, and a debt is paid off before reading resumes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/budget.h"

static void
test_share(void **state)
{
    (void)state;
    nvx_budget b;
    nvx_budget_init(&b, 1000);
    assert_false(nvx_budget_empty(&b, 1000));
    nvx_budget_spend(&b, NVX_BUDGET_BURST_US - 1);
    assert_false(nvx_budget_empty(&b, 1000));
    nvx_budget_spend(&b, 1);
    assert_true(nvx_budget_empty(&b, 1000));
    /* A millisecond later it has earned RATE / 1000 us. */
    assert_false(nvx_budget_empty(&b, 1001));
    /* Idle for an hour banks no more than the burst. */
    assert_false(nvx_budget_empty(&b, 1000 + 3600 * 1000));
    nvx_budget_spend(&b, NVX_BUDGET_BURST_US);
    assert_true(nvx_budget_empty(&b, 1000 + 3600 * 1000));
}

static void
test_debt(void **state)
{
    (void)state;
    nvx_budget b;
    nvx_budget_init(&b, 0);
    /* A message that took 0.5 s of loop: the peer waits until it is repaid,
     * (0.5 s - burst) / rate seconds. */
    nvx_budget_spend(&b, 500000);
    uint64_t wait_ms = (uint64_t)(500000 - NVX_BUDGET_BURST_US) * 1000 / NVX_BUDGET_RATE_US;
    assert_true(nvx_budget_empty(&b, wait_ms - 10));
    assert_false(nvx_budget_empty(&b, wait_ms + 10));
    /* Debt is capped: even a huge charge is repaid within 11 bursts. */
    nvx_budget_init(&b, 0);
    nvx_budget_spend(&b, UINT64_MAX);
    uint64_t cap_ms = (uint64_t)11 * NVX_BUDGET_BURST_US * 1000 / NVX_BUDGET_RATE_US;
    assert_true(nvx_budget_empty(&b, 1000));
    assert_false(nvx_budget_empty(&b, cap_ms + 10));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_debt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
