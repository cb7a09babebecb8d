/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_TPT_H
#define NVX_TESTS_TPT_H
/*
 * Helpers shared by the transport tests. They use only transport/tp.h, so
 * every scenario built from them runs unchanged on any link. Test-only code:
 * aborts on allocation failure.
 */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "transport/tp.h"

enum {
    TPT_CONNS_MAX = 64,
    TPT_ECHO_HIGH = 1024 * 1024, /* echo pauses reading above this many queued bytes */
};

/* An echo server: sends back every byte it receives, pausing its reads while
 * more than TPT_ECHO_HIGH bytes wait to be sent (backpressure through the
 * link). When a peer ends the stream, closes that connection. */
struct tpt_echo {
    tp_listener *l;
    tp_conn *conns[TPT_CONNS_MAX];
    unsigned accepted;
    unsigned ended;
    int last_end;
    unsigned closed;
    unsigned pauses;
    size_t echoed;
    int listener_closed;
};

int tpt_echo_listen(tp_net *net, const char *addr, struct tpt_echo *e);

/* Closes the listener and every connection still open. */
void tpt_echo_shutdown(struct tpt_echo *e);

/* A client that collects what it receives. */
struct tpt_client {
    tp_conn *c;
    int connect_status; /* 1 until the connect callback ran */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    size_t close_at; /* close once this many bytes arrived (0 = never) */
    int ended;
    int end_status;
    int closed;
    unsigned sends_ok;
    unsigned sends_failed;
    int last_send_status;
    uint64_t connect_ms;  /* uv_now() at the connect callback */
    uint64_t first_rx_ms; /* uv_now() at the first byte */
};

/* Dials addr; the client starts reading as soon as it is connected. */
int tpt_client_dial(tp_net *net, const char *addr, struct tpt_client *cl);

/* Sends len borrowed bytes (they must outlive the send) in one tp_send of
 * up to three buffers; counts the outcome in cl. Returns tp_send's result. */
int tpt_client_send(struct tpt_client *cl, const uint8_t *buf, size_t len, unsigned nbufs);

/* Closes the client connection (once). */
void tpt_client_close(struct tpt_client *cl);

void tpt_client_free(struct tpt_client *cl);

/* Runs the loop until cond holds or nothing is left to run on it. */
#define TPT_RUN_UNTIL(loop, cond)                      \
    do {                                               \
        while (!(cond) && uv_run((loop), UV_RUN_ONCE)) \
            ;                                          \
    } while (0)

/* Runs a loop dry and checks that nothing leaked on it. */
void tpt_loop_finish(uv_loop_t *loop);

#endif
