/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers against a real nvxd (issue 3, "Bad input, faults and hostile
 * peers"), part 2: stalls and floods while real work goes on. With A and B
 * started by the group fixture (hostutil.c), raw TCP connections to A
 *
 *   - connect and say nothing, stop half way through HS_INIT, stop half way
 *     through a SEALED frame, or trickle a frame one byte a second;
 *   - open more silent connections at once than nvxd's max_peers;
 *   - flood HAVEs while A fetches.
 *
 * A must close each stalled connection within its bound (hostutil.h), while
 * a normal fetch from A to B, a fetch by a new node C and `nvx status` on A
 * keep working, and all three must still stop cleanly (exit 0, so also no
 * leak under ASan) on SIGTERM. The slow cases run side by side, so this
 * file takes about 35 s. Protocol errors are in test-hostile.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h" /* NVX_DEFAULT_MAX_PEERS */
#include "hostutil.h"
#include "libcas/hash.h"
#include "proto/frame.h"
#include "proto/internal.h" /* proto__session_set_hello_node_id (test hook) */
#include "proto/message.h"
#include "proto/session.h"
#include "testutil.h"

/* ---- stalls, side by side with a real fetch --------------------------------- */

enum probe_kind {
    PROBE_SILENT,      /* connects, sends nothing */
    PROBE_HALF_INIT,   /* half of HS_INIT */
    PROBE_HALF_SEALED, /* handshake, then half of a SEALED frame */
    PROBE_TRICKLE,     /* handshake, then a SEALED frame one byte a second */
    _PROBE_KIND_MAX,
};

typedef struct probe {
    const char *what;
    int bound_s;
    int fd;
    hx_peer peer;
    bool has_peer;
    uint8_t *frame; /* PROBE_TRICKLE: the frame and how much of it went */
    size_t frame_len, sent;
    double start, next_byte, closed_at;
} probe;

static void
probe_open(probe *pr, int kind)
{
    memset(pr, 0, sizeof(*pr));
    pr->closed_at = -1;
    switch (kind) {
    case PROBE_SILENT:
        pr->what = "silent connection";
        pr->bound_s = BOUND_HANDSHAKE_S;
        pr->fd = hx_raw_connect(&hx_fx.a);
        break;
    case PROBE_HALF_INIT: {
        pr->what = "stalled half way through HS_INIT";
        pr->bound_s = BOUND_HANDSHAKE_S;
        pr->fd = hx_raw_connect(&hx_fx.a);
        uint8_t frame[PROTO_FRAME_HEADER_LEN + 40];
        uint8_t body[40] = { 'n', 'v', 'x', 'h', 0, 1, 0, 1 };
        tu_fill_random(body + 8, 32, 5);
        size_t len;
        assert_int_equal(
            proto_frame_encode(PROTO_FRAME_HS_INIT, body, sizeof(body), frame, sizeof(frame), &len),
            0);
        hx_send_all(pr->fd, frame, len / 2);
        break;
    }
    case PROBE_HALF_SEALED:
    case PROBE_TRICKLE: {
        bool trickle = kind == PROBE_TRICKLE;
        pr->what = trickle ? "SEALED frame trickled one byte a second"
                           : "stalled half way through a SEALED frame";
        pr->bound_s = BOUND_STALL_S;
        hx_peer_handshake(&pr->peer, false);
        pr->has_peer = true;
        pr->fd = pr->peer.fd;
        pr->frame = hx_peer_ping_frame(&pr->peer, &pr->frame_len);
        /* A PING frame is about 40 bytes: at one a second it would take
         * longer than the stall timeout to complete. */
        assert_true(!trickle || pr->frame_len > PROTO_STALL_TIMEOUT_MS / 1000 + 5);
        pr->sent = trickle ? 1 : pr->frame_len / 2;
        hx_send_all(pr->fd, pr->frame, pr->sent);
        break;
    }
    default:
        fail();
    }
    pr->start = hx_now_s();
    pr->next_byte = pr->start + 1;
}

static void
probe_free(probe *pr)
{
    if (pr->fd >= 0)
        close(pr->fd);
    if (pr->has_peer)
        hx_peer_free(&pr->peer);
    free(pr->frame);
}

/* Starts `timeout LIMIT nvx --store STORE -q fetch ID` without waiting;
 * its output goes to STORE.fetch.log. Returns the pid. */
static pid_t
fetch_spawn(const hx_daemon *d, int limit_s)
{
    char lim[16], logname[600];
    snprintf(lim, sizeof(lim), "%d", limit_s);
    snprintf(logname, sizeof(logname), "%s.fetch.log", d->store);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logname, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[] = { "timeout", lim,     hx_fx.nvx,      "--store", d->store,
                         "-q",      "fetch", hx_fx.model_id, NULL };
        execvp("timeout", argv);
        _exit(127);
    }
    return pid;
}

/*
 * The slow cases side by side, with normal work around them:
 *   - the four stall probes (silent, half HS_INIT, half SEALED, trickle);
 *   - FLOOD_CONNS silent connections, more than nvxd's max_peers (64): the
 *     ones over the limit must be refused at once, the rest must go at the
 *     handshake timeout;
 *   - B, already connected, fetches the model from A;
 *   - C, a new node, dials A during the flood and fetches the model too,
 *     well before the flood's connections would time out.
 */
static void
test_stalls_and_flood_while_fetching(void **state)
{
    (void)state;
    probe pr[_PROBE_KIND_MAX];
    for (int k = 0; k < _PROBE_KIND_MAX; k++)
        probe_open(&pr[k], k);
    int flood[FLOOD_CONNS];
    double flood_closed_at[FLOOD_CONNS];
    double flood_t0 = hx_now_s();
    for (int i = 0; i < FLOOD_CONNS; i++) {
        flood[i] = hx_raw_connect(&hx_fx.a);
        flood_closed_at[i] = -1;
    }

    /* B fetches the model from A meanwhile. */
    double t0 = hx_now_s();
    char *argv[] = { hx_fx.nvx, "--store", hx_fx.b.store, "-q", "fetch", hx_fx.model_id, NULL };
    char *err = NULL;
    int r = tu_run(argv, NULL, &err);
    if (r != 0) {
        hx_dump_log(&hx_fx.a);
        hx_dump_log(&hx_fx.b);
        fail_msg("nvx fetch with hostile connections open: exit %d: %s", r, err ? err : "");
    }
    free(err);
    print_message("fetch of %d MiB from A to B: %.2f s\n", MODEL_BYTES >> 20, hx_now_s() - t0);
    assert_int_equal(hx_nvx_run(&hx_fx.b, NULL, "verify", hx_fx.model_id, NULL), 0);
    hx_expect_alive(&hx_fx.a);

    /* C, a new node, dials A through the flood. */
    hx_daemon_start(&hx_fx.c, "C");
    assert_int_equal(hx_nvx_run(&hx_fx.c, NULL, "peer", "add", hx_fx.a.addr), 0);
    double c_t0 = hx_now_s();
    pid_t c_fetch = fetch_spawn(&hx_fx.c, BOUND_THROUGH_FLOOD_S);
    double c_done = -1;
    int c_status = 0;

    int open_n = _PROBE_KIND_MAX, flood_open = FLOOD_CONNS;
    bool refused_ok = false;
    while (open_n > 0 || flood_open > 0 || c_done < 0) {
        double t = hx_now_s();
        for (int k = 0; k < _PROBE_KIND_MAX; k++) {
            probe *p = &pr[k];
            if (p->closed_at >= 0)
                continue;
            /* One more byte a second (no catching up after a pause). */
            if (k == PROBE_TRICKLE && p->sent < p->frame_len && t >= p->next_byte) {
                hx_send_all(p->fd, p->frame + p->sent, 1);
                p->sent++;
                p->next_byte = t + 1;
            }
            if (hx_drain_closed(p->fd, 0)) {
                p->closed_at = t - p->start;
                open_n--;
                print_message("%s: closed after %.2f s (bound %d s)\n", p->what, p->closed_at,
                              p->bound_s);
                continue;
            }
            if (t - p->start > p->bound_s) {
                hx_dump_log(&hx_fx.a);
                fail_msg("%s: nvxd kept the connection open for more than %d s", p->what,
                         p->bound_s);
            }
        }
        for (int i = 0; i < FLOOD_CONNS; i++) {
            if (flood_closed_at[i] >= 0)
                continue;
            if (hx_drain_closed(flood[i], 0)) {
                flood_closed_at[i] = t - flood_t0;
                flood_open--;
            } else if (t - flood_t0 > BOUND_HANDSHAKE_S) {
                hx_dump_log(&hx_fx.a);
                fail_msg("flood connection %d: open for more than %d s", i, BOUND_HANDSHAKE_S);
            }
        }
        /* Connections over max_peers are refused as they are accepted. */
        if (!refused_ok) {
            refused_ok = flood_open <= (int)NVX_DEFAULT_MAX_PEERS;
            if (!refused_ok && t - flood_t0 > BOUND_IMMEDIATE_S)
                fail_msg("nvxd holds more than %u connections: %d of %d flood connections open",
                         NVX_DEFAULT_MAX_PEERS, flood_open, FLOOD_CONNS);
        }
        if (c_done < 0 && waitpid(c_fetch, &c_status, WNOHANG) == c_fetch)
            c_done = t - c_t0;
        hx_sleep_ms(50);
    }
    /* The trickle never completed its frame: it was cut off, not served. */
    assert_true(pr[PROBE_TRICKLE].sent < pr[PROBE_TRICKLE].frame_len);
    double last = 0;
    int early = 0;
    for (int i = 0; i < FLOOD_CONNS; i++) {
        close(flood[i]);
        if (flood_closed_at[i] > last)
            last = flood_closed_at[i];
        if (flood_closed_at[i] < 1)
            early++;
    }
    print_message("flood of %d silent connections: %d closed within 1 s, the last after %.2f s "
                  "(bound %d s)\n",
                  FLOOD_CONNS, early, last, BOUND_HANDSHAKE_S);
    if (!WIFEXITED(c_status) || WEXITSTATUS(c_status) != 0) {
        hx_dump_log(&hx_fx.a);
        hx_dump_log(&hx_fx.c);
        fail_msg("new node C could not fetch from A through the flood (status 0x%x, bound %d s)",
                 c_status, BOUND_THROUGH_FLOOD_S);
    }
    print_message("new node C fetched through the flood in %.2f s (bound %d s)\n", c_done,
                  BOUND_THROUGH_FLOOD_S);
    assert_int_equal(hx_nvx_run(&hx_fx.c, NULL, "verify", hx_fx.model_id, NULL), 0);
    for (int k = 0; k < _PROBE_KIND_MAX; k++)
        probe_free(&pr[k]);
    hx_expect_alive(&hx_fx.a);
    hx_expect_alive(&hx_fx.b);
}

/* ---- a HAVE flood while A fetches (issue 9, item 6) ------------------------- */

/* Wall time of one `nvx status` on A, in ms. */
static double
status_ms(void)
{
    double t0 = hx_now_s();
    assert_int_equal(hx_nvx_run(&hx_fx.a, NULL, "status", NULL, NULL), 0);
    return (hx_now_s() - t0) * 1000;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n latencies of `nvx status`, spaced by 20 ms. */
static double
status_median(int n, double *all)
{
    for (int i = 0; i < n; i++) {
        all[i] = status_ms();
        hx_sleep_ms(20);
    }
    qsort(all, (size_t)n, sizeof(*all), cmp_double);
    return all[n / 2];
}

/* A fetches a model that only we claim to have; we never send its manifest
 * and instead send HAVE after HAVE, each naming a million chunks in 1024
 * ranges (the most a HAVE may name). Before the fix each cost A a scan per
 * claimed chunk, with a realloc each (tens of ms), and one `nvx status` waited
 * 21 s behind them. Now a HAVE costs what it names in bytes of bitmap, and a
 * peer that still spends more than its share of A's loop is not read until
 * its share refills. The control socket must answer within 50 ms (or 3x
 * the same machine's latency without the flood, when a loaded or
 * sanitizer build is slower than that already): every probe but one, and
 * the worst within 4x that. */
static void
test_have_flood(void **state)
{
    (void)state;
    enum {
        PROBES = 9
    };
    double base[PROBES], during[PROBES];
    double base_ms = status_median(PROBES, base);

    hx_peer p;
    hx_peer_handshake(&p, false);
    uint8_t model[32];
    char hex[65];
    tu_fill_random(model, sizeof(model), (uint64_t)hx_now_ms());
    cas_hash_to_hex(model, hex);
    pid_t fetch = fork();
    assert_true(fetch >= 0);
    if (fetch == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(hx_fx.nvx, hx_fx.nvx, "--store", hx_fx.a.store, "-q", "fetch", hex, "--timeout",
              "120", (char *)NULL);
        _exit(127);
    }
    /* A asks every peer, us too: we claim chunk 0 so that A keeps us. */
    assert_true(hx_peer_wait_msg(&p, PROTO_MSG_WANT, BOUND_IMMEDIATE_S * 1000));
    proto_msg m = { .type = PROTO_MSG_HAVE };
    memcpy(m.u.want.model_id, model, 32);
    m.u.want.set = (proto_chunkset){ .kind = PROTO_CHUNKSET_RANGES, .n_ranges = 1 };
    m.u.want.set.ranges[0] = (proto_range){ .start = 0, .count = 1 };
    assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    hx_peer_flush(&p);

    /* The flood, from a child (A may stop reading: then it blocks). */
    pid_t flood = fork();
    assert_true(flood >= 0);
    if (flood == 0) {
        proto_chunkset *set = &m.u.want.set;
        set->n_ranges = PROTO_RANGES_MAX;
        for (uint32_t i = 0; i + 1 < PROTO_RANGES_MAX; i++)
            set->ranges[i] = (proto_range){ .start = 2 * i, .count = 1 };
        uint32_t tail = 2 * (PROTO_RANGES_MAX - 1);
        set->ranges[PROTO_RANGES_MAX - 1] =
            (proto_range){ .start = tail, .count = PROTO_CHUNKS_MAX - tail };
        for (;;) {
            for (int k = 0; k < 16; k++)
                if (proto_session_send_msg(p.s, &m) < 0)
                    _exit(1);
            uint8_t *buf;
            size_t len;
            while (proto_session_output(p.s, &buf, &len) > 0) {
                for (size_t off = 0; off < len;) {
                    ssize_t n = send(p.fd, buf + off, len - off, MSG_NOSIGNAL);
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0)
                        _exit(0); /* A hung up */
                    off += (size_t)n;
                }
                free(buf);
            }
        }
    }
    hx_sleep_ms(500); /* let the flood get going */
    double during_ms = status_median(PROBES, during);
    kill(flood, SIGKILL);
    waitpid(flood, NULL, 0);
    kill(fetch, SIGTERM);
    waitpid(fetch, NULL, 0);
    close(p.fd);
    hx_peer_free(&p);

    /* Every probe but one within the bound (a loaded machine may stall
     * one), and none more than 4x it (the old code stalled one for 21 s). */
    /* The bound grows with the machine's own noise, measured unflooded
     * just before: a loaded machine (a build beside the test) stalls a
     * probe now and then whatever nvxd does. */
    double bound = 3 * base_ms > 50 ? 3 * base_ms : 50;
    if (2 * base[PROBES - 1] > bound)
        bound = 2 * base[PROBES - 1];
    print_message("nvx status during a HAVE flood: median %.1f ms, 2nd worst %.1f, worst %.1f; "
                  "without: median %.1f ms; bound %.0f ms\n",
                  during_ms, during[PROBES - 2], during[PROBES - 1], base_ms, bound);
    if (during[PROBES - 2] > bound || during[PROBES - 1] > 4 * bound) {
        hx_dump_log(&hx_fx.a);
        fail_msg("A's control socket answered in %.1f ms (2nd worst) and %.1f ms (worst) during "
                 "a HAVE flood",
                 during[PROBES - 2], during[PROBES - 1]);
    }
    hx_expect_alive(&hx_fx.a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalls_and_flood_while_fetching),
        cmocka_unit_test(test_have_flood),
        cmocka_unit_test(test_clean_shutdown),
    };
    return cmocka_run_group_tests(tests, hx_group_setup, hx_group_teardown);
}
