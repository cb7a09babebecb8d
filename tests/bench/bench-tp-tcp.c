/* SPDX-License-Identifier: MIT */
/*
 * Loopback throughput of the TCP link (transport/tcp.c) against plain
 * blocking sockets, both with 1 MiB writes, sender and receiver on two
 * threads (two loops for the link), as a seeder and a fetcher would be.
 *
 *   bench-tp-tcp [MIB_PER_RUN [RUNS [READ_BUF_KIB]]]   (defaults 1024 5 256)
 *
 * Prints median, min and max MB/s of each and the ratio of the medians.
 * Not part of `meson test`.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "transport/tcp.h"

enum {
    PIECE = 1 << 20,
    INFLIGHT = 8 << 20, /* sender keeps at most this much queued */
    RUNS_MAX = 100,
};

static uint8_t *piece;
static uint64_t total;
static size_t read_buf;

static void
die(const char *what, int r)
{
    fprintf(stderr, "bench-tp-tcp: %s: %s\n", what, strerror(r < 0 ? -r : r));
    exit(1);
}

/* --- baseline: blocking sockets --- */

static void *
raw_writer(void *arg)
{
    int fd = *(int *)arg;
    for (uint64_t sent = 0; sent < total;) {
        ssize_t n = write(fd, piece, PIECE);
        if (n < 0)
            die("write", errno);
        sent += (uint64_t)n;
    }
    close(fd);
    return NULL;
}

static double
run_raw(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
        die("listen", errno);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect", errno);
    int sfd = accept(ls, NULL, NULL);
    if (sfd < 0)
        die("accept", errno);
    close(ls);
    uint8_t *buf = malloc(read_buf);
    uint64_t t0 = uv_hrtime();
    pthread_t th;
    pthread_create(&th, NULL, raw_writer, &cfd);
    uint64_t got = 0;
    for (;;) {
        ssize_t n = read(sfd, buf, read_buf);
        if (n < 0)
            die("read", errno);
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    pthread_join(th, NULL);
    uint64_t t1 = uv_hrtime();
    close(sfd);
    free(buf);
    if (got != total)
        die("short read", EIO);
    return (double)total / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* --- the link: receiver thread --- */

struct rx {
    uv_loop_t loop;
    tp_net *net;
    tp_listener *l;
    uint64_t got;
    char addr[TP_ADDR_MAX];
    uv_sem_t ready;
};

static void
rx_recv(tp_conn *c, const uint8_t *buf, size_t len)
{
    struct rx *rx = tp_conn_data(c);
    rx->got += len;
}

static void
rx_end(tp_conn *c, int status)
{
    tp_close(c, NULL);
}

static void
rx_accept(tp_listener *l, tp_conn *c, int status)
{
    struct rx *rx = tp_listener_data(l);
    if (status < 0)
        die("accept", status);
    tp_conn_set_data(c, rx);
    tp_read_start(c, rx_recv, rx_end);
    tp_listener_close(l, NULL);
}

static void
rx_main(void *arg)
{
    struct rx *rx = arg;
    uv_loop_init(&rx->loop);
    struct tp_tcp_opts o = TP_TCP_OPTS_INIT;
    o.read_buf = read_buf;
    int r = tp_tcp_net_new(&rx->loop, &o, &rx->net);
    if (r == 0)
        r = tp_listen(rx->net, "127.0.0.1:0", rx_accept, rx, &rx->l);
    if (r < 0)
        die("listen", r);
    snprintf(rx->addr, sizeof(rx->addr), "%s", tp_listener_addr(rx->l));
    uv_sem_post(&rx->ready);
    uv_run(&rx->loop, UV_RUN_DEFAULT);
    tp_net_free(rx->net);
    uv_loop_close(&rx->loop);
}

/* --- the link: sender --- */

struct tx {
    uint64_t queued_total; /* bytes handed to tp_send */
    uint64_t done;
};

static void tx_pump(tp_conn *c);

static void
tx_sent(tp_conn *c, void *arg, int status)
{
    struct tx *tx = tp_conn_data(c);
    if (status < 0)
        die("send", status);
    tx->done += PIECE;
    if (tx->done == total)
        tp_close(c, NULL);
    else
        tx_pump(c);
}

static void
tx_pump(tp_conn *c)
{
    struct tx *tx = tp_conn_data(c);
    while (tx->queued_total < total && tp_conn_queued(c) < INFLIGHT) {
        tp_buf b = { piece, PIECE };
        int r = tp_send(c, &b, 1, tx_sent, NULL);
        if (r < 0)
            die("send", r);
        tx->queued_total += PIECE;
    }
}

static void
tx_connected(tp_conn *c, int status)
{
    if (status < 0)
        die("connect", status);
    tx_pump(c);
}

static double
run_link(void)
{
    struct rx rx = { 0 };
    uv_sem_init(&rx.ready, 0);
    uv_thread_t th;
    uv_thread_create(&th, rx_main, &rx);
    uv_sem_wait(&rx.ready);

    uv_loop_t loop;
    uv_loop_init(&loop);
    tp_net *net;
    struct tx tx = { 0 };
    tp_conn *c;
    int r = tp_tcp_net_new(&loop, NULL, &net);
    uint64_t t0 = uv_hrtime();
    if (r == 0)
        r = tp_dial(net, rx.addr, tx_connected, &tx, &c);
    if (r < 0)
        die("dial", r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_thread_join(&th);
    uint64_t t1 = uv_hrtime();
    tp_net_free(net);
    uv_loop_close(&loop);
    uv_sem_destroy(&rx.ready);
    if (rx.got != total)
        die("short transfer", EIO);
    return (double)total / ((double)(t1 - t0) / 1e9) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void
report(const char *name, double *v, int n, double *ret_median)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("%-28s median %8.0f MB/s  min %8.0f  max %8.0f  (n=%d)\n", name, med, v[0], v[n - 1], n);
    *ret_median = med;
}

int
main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    read_buf = (argc > 3 ? strtoull(argv[3], NULL, 10) : 256) * 1024;
    if (mib == 0 || runs < 1 || runs > RUNS_MAX || read_buf < TP_TCP_READ_BUF_MIN ||
        read_buf > TP_TCP_READ_BUF_MAX) {
        fprintf(stderr, "usage: bench-tp-tcp [MIB_PER_RUN [RUNS [READ_BUF_KIB]]]\n");
        return 2;
    }
    total = mib << 20;
    piece = malloc(PIECE);
    memset(piece, 0x5a, PIECE);
    double raw[RUNS_MAX], link[RUNS_MAX];
    for (int i = 0; i < runs; i++) {
        raw[i] = run_raw();
        link[i] = run_link();
    }
    printf("loopback, %llu MiB per run, 1 MiB writes, %zu KiB reads\n", (unsigned long long)mib,
           read_buf / 1024);
    double m_raw, m_link;
    report("blocking sockets (baseline)", raw, runs, &m_raw);
    report("tp TCP link", link, runs, &m_link);
    printf("ratio link/baseline: %.2f\n", m_link / m_raw);
    free(piece);
    return 0;
}
