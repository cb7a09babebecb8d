/* SPDX-License-Identifier: MIT */
/*
 * The byte token bucket of the rate limits (daemon/ratelimit.h) on a fake
 * clock: unlimited passes everything; a limited bucket starts with its
 * burst, refills at the rate without losing fractions, never holds more
 * than its burst, and a take larger than what it holds is paid back
 * before anything else goes. Over any run the bytes taken stay within
 * rate * elapsed + burst + one take (the property the upload limit rests
 * on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/ratelimit.h"

static void
test_unlimited(void **state)
{
    (void)state;
    nvx_rate b;
    nvx_rate_init(&b, 0, 5);
    assert_false(nvx_rate_limited(&b));
    nvx_rate_take(&b, (uint64_t)1 << 40);
    assert_true(nvx_rate_avail(&b, 5) == UINT64_MAX);
}

static void
test_burst_refill_debt(void **state)
{
    (void)state;
    nvx_rate b;
    uint64_t rate = 1 << 20; /* 1 MiB/s: burst half of it */
    nvx_rate_init(&b, rate, 1000);
    assert_true(nvx_rate_limited(&b));
    assert_int_equal(nvx_rate_avail(&b, 1000), rate / 1000 * NVX_RATE_BURST_MS);
    assert_int_equal(nvx_rate_avail(&b, 60000), rate / 1000 * NVX_RATE_BURST_MS); /* capped */
    nvx_rate_take(&b, 2 * rate); /* debt: 1.5 s of the rate */
    assert_int_equal(nvx_rate_avail(&b, 61000), 0);
    assert_int_equal(nvx_rate_avail(&b, 61499), 0);
    /* 1.6 s earned (rounded down) minus the debt. */
    uint64_t burst = rate / 1000 * NVX_RATE_BURST_MS;
    assert_int_equal(nvx_rate_avail(&b, 61600), burst + rate * 1600 / 1000 - 2 * rate);
    /* Fractions carry: 1000 calls a ms apart earn exactly one second. */
    nvx_rate s;
    nvx_rate_init(&s, 1500, 0);
    nvx_rate_take(&s, NVX_RATE_BURST_MIN);
    for (uint64_t t = 1; t <= 1000; t++)
        (void)nvx_rate_avail(&s, t);
    assert_int_equal(nvx_rate_avail(&s, 1000), 1500);
    /* The burst has a floor for small rates. */
    assert_int_equal(nvx_rate_avail(&s, 100000), NVX_RATE_BURST_MIN);
}

/* A sender that takes 64 KiB pieces whenever anything is available, polled
 * every 250 ms (the node's tick): over 20 s it moves no more than the
 * bound, and no less than the rate minus one tick's worth. */
static void
test_rate_bound(void **state)
{
    (void)state;
    const uint64_t rate = 3 << 20, piece = 64 << 10;
    nvx_rate b;
    nvx_rate_init(&b, rate, 0);
    uint64_t sent = 0;
    for (uint64_t t = 0; t <= 20000; t += 250)
        while (nvx_rate_avail(&b, t) > 0) {
            nvx_rate_take(&b, piece);
            sent += piece;
        }
    assert_true(sent <= rate * 20 + b.burst + piece);
    assert_true(sent >= rate * 20 - rate / 4);
    /* A clock that goes back earns nothing. */
    uint64_t before = nvx_rate_avail(&b, 20000);
    assert_int_equal(nvx_rate_avail(&b, 10000), before);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_burst_refill_debt),
        cmocka_unit_test(test_rate_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
