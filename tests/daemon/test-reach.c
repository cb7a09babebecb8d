/* SPDX-License-Identifier: MIT */
/* How the node says it is reachable (daemon/reach.c), as a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/reach.h"

static void
test_private(void **state)
{
    (void)state;
    static const struct {
        const char *host;
        bool private;
    } t[] = {
        { "10.1.2.3", true },    { "172.16.0.1", true },   { "172.31.255.255", true },
        { "172.32.0.1", false }, { "192.168.1.1", true },  { "192.169.1.1", false },
        { "127.0.0.1", true },   { "169.254.1.1", true },  { "100.64.0.1", true },
        { "100.127.0.1", true }, { "100.128.0.1", false }, { "0.0.0.0", true },
        { "11.0.1.2", false },   { "8.8.8.8", false },     { "not-an-ip", true },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_int_equal(nvx_reach_ipv4_private(t[i].host), t[i].private);
}

static void
test_describe(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(
        nvx_reach_describe("0.0.0.0:4747", "11.0.1.2:4747", "upnp", "", 0, msg, sizeof(msg)),
        PROTO_CTL_REACH_MAPPED);
    assert_string_equal(msg, "reachable at 11.0.1.2:4747 (UPnP maps it to 0.0.0.0:4747)");
    assert_int_equal(
        nvx_reach_describe("0.0.0.0:1", "1.2.3.4:1", "nat-pmp", "", 0, msg, sizeof(msg)),
        PROTO_CTL_REACH_MAPPED);
    assert_non_null(strstr(msg, "NAT-PMP"));
    assert_int_equal(nvx_reach_describe("0.0.0.0:1", "", "none", "8.8.8.8:1", 3, msg, sizeof(msg)),
                     PROTO_CTL_REACH_PUBLIC);
    assert_int_equal(nvx_reach_describe("0.0.0.0:1", "", "none", "", 2, msg, sizeof(msg)),
                     PROTO_CTL_REACH_REVERSAL);
    assert_string_equal(msg, "behind NAT, reachable by reversal through 2 relays");
    assert_int_equal(nvx_reach_describe("0.0.0.0:1", "", "none", "", 1, msg, sizeof(msg)),
                     PROTO_CTL_REACH_REVERSAL);
    assert_string_equal(msg, "behind NAT, reachable by reversal through 1 relay");
    assert_int_equal(nvx_reach_describe("0.0.0.0:1", "", "none", "", 0, msg, sizeof(msg)),
                     PROTO_CTL_REACH_NONE);
    assert_int_equal(nvx_reach_describe("", "", "none", "", 5, msg, sizeof(msg)),
                     PROTO_CTL_REACH_NONE);
    assert_non_null(strstr(msg, "not listening"));
}

static void
test_addrs(void **state)
{
    (void)state;
    char out[NVX_REACH_LOCAL_MAX][NVX_REACH_ADDR_LEN], pub[64];
    assert_int_equal(nvx_reach_local_addrs("127.0.0.1:5", out, NVX_REACH_LOCAL_MAX), 1);
    assert_string_equal(out[0], "127.0.0.1:5");
    assert_int_equal(nvx_reach_local_addrs("", out, NVX_REACH_LOCAL_MAX), 0);
    /* 0.0.0.0 lists interface addresses (none on a bare machine is fine). */
    size_t n = nvx_reach_local_addrs("0.0.0.0:7", out, NVX_REACH_LOCAL_MAX);
    for (size_t i = 0; i < n; i++)
        assert_non_null(strstr(out[i], ":7"));
    assert_false(nvx_reach_public_addr("127.0.0.1:5", pub, sizeof(pub)));
    assert_false(nvx_reach_public_addr("10.0.0.1:5", pub, sizeof(pub)));
    assert_true(nvx_reach_public_addr("11.0.0.1:5", pub, sizeof(pub)));
    assert_string_equal(pub, "11.0.0.1:5");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_addrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
