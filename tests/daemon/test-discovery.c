/* SPDX-License-Identifier: MIT */
/*
 * LAN discovery (daemon/discovery.c): the 40-byte announcement (round trip,
 * strict decoder), the receive filters (own id, report interval, address
 * change, packet budget, bounded memory), and two real nodes on 127.0.0.1
 * over multicast with IP_MULTICAST_LOOP — skipped with a message when this
 * machine cannot deliver multicast on the loopback interface.
 */
#define _DEFAULT_SOURCE /* struct ip_mreq */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "daemon/discovery.h"
#include "testutil.h"

typedef struct heard {
    int n;
    uint8_t node[NVX_DISC_ID_LEN];
    char addr[NVX_DISC_ADDR_MAX];
} heard;

static void
on_heard(void *arg, const uint8_t node[static NVX_DISC_ID_LEN], const char *addr)
{
    heard *h = arg;
    h->n++;
    memcpy(h->node, node, NVX_DISC_ID_LEN);
    snprintf(h->addr, sizeof(h->addr), "%s", addr);
}

static void
packet(uint8_t out[NVX_DISC_PACKET_LEN], uint8_t node, uint16_t port)
{
    nvx_disc_packet p;
    memset(p.node_id, node, sizeof(p.node_id));
    p.port = port;
    nvx_disc_encode(&p, out);
}

static struct sockaddr_in
from4(const char *ip)
{
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr(ip, 5555, &a), 0);
    return a;
}

static void
test_codec(void **state)
{
    (void)state;
    uint8_t b[NVX_DISC_PACKET_LEN + 1];
    packet(b, 0x42, 7000);
    assert_memory_equal(b, "NVXD\x01\x00\x1b\x58", 8);
    nvx_disc_packet p;
    assert_int_equal(nvx_disc_decode(b, NVX_DISC_PACKET_LEN, &p), 0);
    assert_int_equal(p.port, 7000);
    for (int i = 0; i < NVX_DISC_ID_LEN; i++)
        assert_int_equal(p.node_id[i], 0x42);

    for (size_t len = 0; len <= NVX_DISC_PACKET_LEN + 1; len++)
        if (len != NVX_DISC_PACKET_LEN)
            assert_int_equal(nvx_disc_decode(b, len, &p), -EBADMSG);
    /* Each header byte matters. */
    for (int i = 0; i < 6; i++) {
        b[i] ^= 0x01;
        assert_int_equal(nvx_disc_decode(b, NVX_DISC_PACKET_LEN, &p), -EBADMSG);
        b[i] ^= 0x01;
    }
    packet(b, 0x42, 0);
    assert_int_equal(nvx_disc_decode(b, NVX_DISC_PACKET_LEN, &p), -EBADMSG);
    packet(b, 0x00, 7000);
    assert_int_equal(nvx_disc_decode(b, NVX_DISC_PACKET_LEN, &p), -EBADMSG);
    packet(b, 0x01, 65535);
    assert_int_equal(nvx_disc_decode(b, NVX_DISC_PACKET_LEN, &p), 0);
    assert_int_equal(p.port, 65535);
    assert_int_equal(nvx_disc_decode(NULL, 40, &p), -EBADMSG);
}

static void
test_filters(void **state)
{
    (void)state;
    heard h = { 0 };
    nvx_disc_opts o = { .cb = on_heard, .arg = &h };
    memset(o.node_id, 0xee, sizeof(o.node_id));
    nvx_disc *d = NULL;
    assert_int_equal(nvx_disc_new_detached(&o, &d), 0);
    uint8_t b[NVX_DISC_PACKET_LEN];
    struct sockaddr_in a = from4("192.0.2.5");

    packet(b, 0xee, 7000); /* ourselves */
    assert_int_equal(nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 0), 0);
    assert_int_equal(h.n, 0);

    packet(b, 0x42, 7000);
    assert_int_equal(nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 1000), 1);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.addr, "192.0.2.5:7000");
    assert_int_equal(h.node[0], 0x42);
    /* Again soon: not reported; after the interval: again. */
    assert_int_equal(nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 2000), 0);
    assert_int_equal(
        nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 1000 + NVX_DISC_REPORT_MS), 1);
    /* A new address (or port) is reported at once. */
    packet(b, 0x42, 7001);
    assert_int_equal(
        nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 2000 + NVX_DISC_REPORT_MS), 1);
    assert_string_equal(h.addr, "192.0.2.5:7001");
    assert_int_equal(h.n, 3);

    /* IPv6 sources and garbage are ignored. */
    struct sockaddr_in6 a6;
    assert_int_equal(uv_ip6_addr("2001:db8::1", 1, &a6), 0);
    assert_int_equal(nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a6, 10000000), 0);
    assert_int_equal(nvx_disc_feed(d, (const uint8_t *)"hello", 5, (struct sockaddr *)&a, 10000000),
                     0);
    assert_int_equal(nvx_disc_feed(d, b, sizeof(b), NULL, 10000000), 0);

    /* Packet budget: a flood within one second is cut at NVX_DISC_RX_PER_S. */
    int reported = 0;
    for (int i = 0; i < 200; i++) {
        packet(b, (uint8_t)(i + 1), 7000);
        reported += nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 20000000);
    }
    assert_true(reported <= NVX_DISC_RX_PER_S);
    nvx_disc_stats st;
    nvx_disc_stats_get(d, &st);
    assert_int_equal(st.rate_dropped, 200 - NVX_DISC_RX_PER_S + 0u);

    /* Many nodes over time: memory stays bounded, every new node reported
     * (but 0xee, which is us). */
    reported = 0;
    for (int i = 0; i < 250; i++) {
        uint8_t node = (uint8_t)(i + 1);
        packet(b, node, 7100);
        reported +=
            nvx_disc_feed(d, b, sizeof(b), (struct sockaddr *)&a, 30000000 + (uint64_t)i * 1000);
    }
    assert_int_equal(reported, 249);
    nvx_disc_free_detached(d);

    /* Options. */
    o.group = "192.0.2.1"; /* not multicast */
    assert_int_equal(nvx_disc_new_detached(&o, &d), -EINVAL);
    o.group = "nonsense";
    assert_int_equal(nvx_disc_new_detached(&o, &d), -EINVAL);
    o.group = NULL;
    o.interface = "lo";
    assert_int_equal(nvx_disc_new_detached(&o, &d), -EINVAL);
    assert_int_equal(nvx_disc_start(&o, &d), -EINVAL); /* no loop */
}

/* A free UDP port on 127.0.0.1 (racy, good enough for a test). */
static uint16_t
free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = from4("127.0.0.1");
    a.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Whether a multicast datagram sent on 127.0.0.1 comes back to a member
 * socket on this machine. Plain sockets, so a skip here says "the sandbox",
 * not "our code". */
static bool
multicast_loopback_works(uint16_t port, const char **why)
{
    bool ok = false;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        *why = "socket";
        return false;
    }
    int one = 1;
    struct sockaddr_in any = from4("0.0.0.0");
    any.sin_port = htons(port);
    struct ip_mreq mr;
    memset(&mr, 0, sizeof(mr));
    inet_pton(AF_INET, NVX_DISC_GROUP, &mr.imr_multiaddr);
    inet_pton(AF_INET, "127.0.0.1", &mr.imr_interface);
    struct in_addr ifa = mr.imr_interface;
    struct sockaddr_in grp = from4(NVX_DISC_GROUP);
    grp.sin_port = htons(port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0) {
        *why = "bind";
        goto out;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        *why = "IP_ADD_MEMBERSHIP on 127.0.0.1";
        goto out;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof(ifa)) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) < 0) {
        *why = "IP_MULTICAST_IF/LOOP";
        goto out;
    }
    if (sendto(fd, "probe", 5, 0, (struct sockaddr *)&grp, sizeof(grp)) != 5) {
        *why = "sendto the group";
        goto out;
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char buf[16];
    if (poll(&pfd, 1, 1000) == 1 && recv(fd, buf, sizeof(buf), 0) == 5)
        ok = true;
    else
        *why = "no multicast loopback delivery";
out:
    close(fd);
    return ok;
}

typedef struct live {
    heard ha, hb;
    uv_timer_t deadline;
    bool timed_out;
    int stopped;
} live;

static void
on_deadline(uv_timer_t *t)
{
    live *l = t->data;
    l->timed_out = true;
    uv_stop(t->loop);
}

static void
on_stopped(void *arg)
{
    ((live *)arg)->stopped++;
}

static void
test_multicast_loopback(void **state)
{
    (void)state;
    uint16_t port = free_udp_port();
    const char *why = "";
    if (!multicast_loopback_works(port, &why)) {
        fprintf(stderr, "[  SKIP    ] multicast on 127.0.0.1 unavailable here (%s)\n", why);
        skip();
    }
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    live l = { 0 };
    nvx_disc_opts oa = { .loop = &loop,
                         .listen_port = 7001,
                         .port = port,
                         .interface = "127.0.0.1",
                         .interval_ms = 50,
                         .cb = on_heard,
                         .arg = &l.ha };
    memset(oa.node_id, 0xa1, NVX_DISC_ID_LEN);
    nvx_disc_opts ob = oa;
    ob.listen_port = 7002;
    ob.arg = &l.hb;
    memset(ob.node_id, 0xb2, NVX_DISC_ID_LEN);
    /* A third node that only listens (announcing off). */
    heard hc = { 0 };
    nvx_disc_opts oc = oa;
    oc.listen_port = 0;
    oc.arg = &hc;
    memset(oc.node_id, 0xc3, NVX_DISC_ID_LEN);

    nvx_disc *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(nvx_disc_start(&oa, &a), 0);
    assert_int_equal(nvx_disc_start(&ob, &b), 0);
    assert_int_equal(nvx_disc_start(&oc, &c), 0);
    assert_int_equal(uv_timer_init(&loop, &l.deadline), 0);
    l.deadline.data = &l;
    /* Not a timing assertion: a generous bound so a broken build fails
     * instead of hanging. Announcements go out every 50 ms. */
    assert_int_equal(uv_timer_start(&l.deadline, on_deadline, 5000, 0), 0);
    while (!l.timed_out && (l.ha.n == 0 || l.hb.n == 0 || hc.n < 2))
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(l.timed_out);

    /* Each heard the other, never itself; the quiet one heard both and
     * nobody heard it. */
    assert_int_equal(l.ha.node[0], 0xb2);
    assert_string_equal(l.ha.addr, "127.0.0.1:7002");
    assert_int_equal(l.hb.node[0], 0xa1);
    assert_string_equal(l.hb.addr, "127.0.0.1:7001");
    nvx_disc_stats sa, sc;
    nvx_disc_stats_get(a, &sa);
    nvx_disc_stats_get(c, &sc);
    assert_true(sa.sent >= 1);
    assert_true(sa.ignored >= 1); /* its own announcement came back */
    assert_int_equal(sc.sent, 0);
    assert_int_equal(hc.n, 2);
    assert_int_equal(l.ha.n, 1); /* reported once per NVX_DISC_REPORT_MS */

    uv_close((uv_handle_t *)&l.deadline, NULL);
    nvx_disc_stop(a, on_stopped, &l);
    nvx_disc_stop(b, on_stopped, &l);
    nvx_disc_stop(c, on_stopped, &l);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(l.stopped, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_multicast_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
