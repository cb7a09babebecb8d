/* SPDX-License-Identifier: MIT */
/*
 * Cost of the simulated link (transport/mem.c, mem-sim.c): how fast one connection
 * moves bytes when the model adds no delay (latency 0, unlimited bandwidth),
 * at a 64 KiB and at a 1400-byte segment size, against memcpy of the same
 * bytes (the link copies each byte once) measured in the same invocation.
 *
 *   bench-tp-mem [MIB_PER_RUN [RUNS]]   (defaults 512 5)
 *
 * Not part of `meson test`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "transport/mem.h"

enum {
    PIECE = 1 << 20,
    INFLIGHT = 8 << 20,
    RUNS_MAX = 100,
};

static uint8_t *piece;
static uint64_t total;

struct state {
    uint64_t got, queued_total;
    uint64_t segs;
};

static void
die(const char *what, int r)
{
    fprintf(stderr, "bench-tp-mem: %s: %d\n", what, r);
    exit(1);
}

static void
rx_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct state *s = tp_conn_data(c);
    s->got += len;
}

static void
rx_end(tp_conn *c, int status)
{
    tp_close(c, NULL);
}

static void
rx_accept(tp_listener *l, tp_conn *c, int status)
{
    tp_conn_set_data(c, tp_listener_data(l));
    tp_read_start(c, rx_recv, rx_end);
    tp_listener_close(l, NULL);
}

static void pump(tp_conn *c);

static void
sent(tp_conn *c, void *arg, int status)
{
    struct state *s = tp_conn_data(c);
    if (status < 0)
        die("send", status);
    if (s->queued_total == total && tp_conn_queued(c) == 0)
        tp_close(c, NULL);
    else
        pump(c);
}

static void
pump(tp_conn *c)
{
    struct state *s = tp_conn_data(c);
    while (s->queued_total < total && tp_conn_queued(c) < INFLIGHT) {
        tp_buf b = { piece, PIECE };
        int r = tp_send(c, &b, 1, sent, NULL);
        if (r < 0)
            die("send", r);
        s->queued_total += PIECE;
    }
}

static void
connected(tp_conn *c, int status)
{
    if (status < 0)
        die("connect", status);
    pump(c);
}

static double
run_mem(size_t mtu, uint64_t *ret_segs)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_mem_world *w;
    struct tp_mem_link link = { .mtu = mtu };
    tp_net *a = NULL, *b = NULL;
    tp_listener *l;
    tp_conn *c;
    struct state rx = { 0 }, tx = { 0 };
    int r = tp_mem_world_new(&loop, 1, &link, &w);
    if (r == 0)
        r = tp_mem_net_new(w, "a", &a);
    if (r == 0)
        r = tp_mem_net_new(w, "b", &b);
    if (r == 0)
        r = tp_listen(b, "b", rx_accept, &rx, &l);
    uint64_t t0 = uv_hrtime();
    if (r == 0)
        r = tp_dial(a, "b", connected, &tx, &c);
    if (r < 0)
        die("setup", r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t t1 = uv_hrtime();
    if (rx.got != total)
        die("short transfer", (int)(rx.got >> 20));
    struct tp_mem_stats st;
    tp_mem_world_stats(w, &st);
    *ret_segs = st.segments;
    tp_net_free(a);
    tp_net_free(b);
    tp_mem_world_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return (double)total / ((double)(t1 - t0) / 1e9) / 1e6;
}

static double
run_memcpy(void)
{
    uint8_t *dst = malloc(PIECE);
    uint64_t t0 = uv_hrtime();
    for (uint64_t off = 0; off < total; off += PIECE) {
        memcpy(dst, piece, PIECE);
        __asm__ volatile("" : : "r"(dst) : "memory");
    }
    uint64_t t1 = uv_hrtime();
    free(dst);
    return (double)total / ((double)(t1 - t0) / 1e9) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
report(const char *name, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("%-26s median %8.0f MB/s  min %8.0f  max %8.0f  (n=%d)\n", name, med, v[0], v[n - 1], n);
    return med;
}

int
main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (mib == 0 || runs < 1 || runs > RUNS_MAX) {
        fprintf(stderr, "usage: bench-tp-mem [MIB_PER_RUN [RUNS]]\n");
        return 2;
    }
    total = mib << 20;
    piece = malloc(PIECE);
    memset(piece, 0x5a, PIECE);
    double cp[RUNS_MAX], big[RUNS_MAX], small[RUNS_MAX];
    uint64_t segs_big = 0, segs_small = 0;
    for (int i = 0; i < runs; i++) {
        cp[i] = run_memcpy();
        big[i] = run_mem(TP_MEM_MTU, &segs_big);
        small[i] = run_mem(1400, &segs_small);
    }
    printf("simulated link, %llu MiB per run, no latency, unlimited bandwidth\n",
           (unsigned long long)mib);
    double m_cp = report("memcpy (baseline)", cp, runs);
    double m_big = report("mem link, 64 KiB segments", big, runs);
    double m_small = report("mem link, 1400 B segments", small, runs);
    printf("ratio to memcpy: %.3f (64 KiB), %.3f (1400 B)\n", m_big / m_cp, m_small / m_cp);
    printf("segments per second at median: %.0f (64 KiB), %.0f (1400 B)\n",
           m_big * 1e6 / ((double)total / (double)segs_big),
           m_small * 1e6 / ((double)total / (double)segs_small));
    free(piece);
    return 0;
}
