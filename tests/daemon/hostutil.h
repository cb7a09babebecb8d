/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_HOSTUTIL_H
#define NVX_TESTS_HOSTUTIL_H
/*
 * Shared by the hostile-peer tests (test-hostile.c, test-hostile-load.c):
 * real nvxd processes on 127.0.0.1 (ephemeral ports, temporary stores, no
 * LAN discovery), A holding a small model and B configured to dial A (a
 * third, C, joins in test-hostile-load.c), raw TCP connections to A and a
 * peer that speaks the real protocol, and the group fixture that starts them.
 *
 * The bounds are about liveness, not speed; they follow nvxd's timeouts,
 * which are proto's defaults (nvxd sets neither): a protocol error closes at
 * once (the bytes are checked as they arrive); the handshake must finish
 * within PROTO_HANDSHAKE_TIMEOUT_MS (10 s) of the connection; a frame must be
 * complete PROTO_STALL_TIMEOUT_MS (30 s) after its first byte; nvxd checks
 * both every NVX_NODE_TICK_MS (250 ms). Each bound adds a generous margin for
 * a loaded machine and sanitizer builds.
 *
 * Test-only code: it fails the running cmocka test on errors and may abort
 * on allocation failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/config.h" /* NVX_DEFAULT_MAX_PEERS */
#include "proto/session.h"

enum {
    /* A protocol error must close the connection within this many seconds. */
    BOUND_IMMEDIATE_S = 10,
    /* An unfinished handshake: nvxd's handshake timeout plus a margin. */
    BOUND_HANDSHAKE_S = PROTO_HANDSHAKE_TIMEOUT_MS / 1000 + 15,
    /* A frame stalled after the handshake: the stall timeout plus a margin. */
    BOUND_STALL_S = PROTO_STALL_TIMEOUT_MS / 1000 + 15,
    /* A new peer must get through a flood of silent connections. nvxd lets
     * at most NVX_NODE_HANDSHAKING_MAX (16) inbound connections handshake
     * and evicts the oldest for a newcomer, so C gets in at once; without
     * that cap C waits for the flood's handshake timeout plus its dial
     * backoff (>= 15 s), which this bound rejects. */
    BOUND_THROUGH_FLOOD_S = PROTO_HANDSHAKE_TIMEOUT_MS / 1000,
    /* Silent connections opened at once: more than nvxd's max_peers. */
    FLOOD_CONNS = (int)NVX_DEFAULT_MAX_PEERS + 16,
    /* Waiting for a daemon to come up or to exit. */
    DAEMON_START_S = 30,
    DAEMON_STOP_S = 20,
    MODEL_BYTES = 4 << 20,
};

typedef struct hx_daemon {
    pid_t pid;
    char *store;
    char *log;
    char addr[64]; /* "127.0.0.1:PORT" */
    uint16_t port;
    int exit_status; /* after daemon_stop */
} hx_daemon;

typedef struct hx_fixture {
    char *root;
    char *nvx;
    char *nvxd;
    hx_daemon a, b, c;
    char model_id[65];
} hx_fixture;

/* The daemons and paths of the running executable's group fixture. */
extern hx_fixture hx_fx;

typedef struct hx_peer {
    int fd;
    proto_identity *id;
    proto_identity *other; /* the id a lying HELLO claims */
    proto_session *s;
} hx_peer;

/* Monotonic clock in seconds and milliseconds; sleeps ms (EINTR resumed). */
double hx_now_s(void);
uint64_t hx_now_ms(void);
void hx_sleep_ms(long ms);

/* a/b, malloc'd. */
char *hx_path_join(const char *a, const char *b);

/* Runs `nvx --store STORE ARGS...` and returns its exit status; stdout in
 * *ret_out when given (malloc'd). */
int hx_nvx_run(const hx_daemon *d, char **ret_out, const char *a1, const char *a2, const char *a3);

/* Prints the last lines of a daemon's log (when a check fails). */
void hx_dump_log(const hx_daemon *d);

/* Starts nvxd with a store under the fixture root, listening on an
 * ephemeral port of 127.0.0.1, and waits until `nvx status --json` answers
 * with the address. */
void hx_daemon_start(hx_daemon *d, const char *name);

/* SIGTERM, then waits (SIGKILL after DAEMON_STOP_S). Records the status.
 * Does nothing for a daemon that is not running. */
void hx_daemon_stop(hx_daemon *d);

/* True while the daemon process runs. */
bool hx_daemon_alive(const hx_daemon *d);

/* A TCP connection to d's listening address; the fd. */
int hx_raw_connect(const hx_daemon *d);

/* Writes all bytes. A peer that already closed (EPIPE, ECONNRESET) is not an
 * error here: the daemon may hang up before it has read everything. */
void hx_send_all(int fd, const void *buf, size_t len);

/* Sends a bare frame header announcing body_len bytes of the given type. */
void hx_send_frame_header(int fd, uint32_t body_len, uint8_t type);

/* Reads and discards whatever arrives; returns true once the daemon has
 * closed the connection (EOF or reset). Waits at most timeout_ms. */
bool hx_drain_closed(int fd, int timeout_ms);

/* Asserts that fd gets closed within bound_s seconds; closes it. */
void hx_expect_closed(int fd, int bound_s, const char *what);

/* The daemon still answers on its control socket. */
void hx_expect_alive(const hx_daemon *d);

/* Writes out everything p's session has queued. */
void hx_peer_flush(hx_peer *p);

/* Connects to A and runs the initiator's side of the handshake. With
 * lie_about_id the HELLO names another node while the transcript is signed
 * with our key, so the signature A checks is wrong. Returns after our side
 * saw HANDSHAKE_DONE (HS_FINISH sent); A's verdict comes later. */
void hx_peer_handshake(hx_peer *p, bool lie_about_id);

/* Seals a PING into one frame (not queued for sending); malloc'd. */
uint8_t *hx_peer_ping_frame(hx_peer *p, size_t *ret_len);

/* Reads from A until a message of type msg_type arrives (true) or the
 * connection ends or timeout_ms passes (false). */
bool hx_peer_wait_msg(hx_peer *p, uint8_t msg_type, int timeout_ms);

/* Frees p's session and identities; the caller closes p->fd. */
void hx_peer_free(hx_peer *p);

/* cmocka group fixture: adds a random model to A's store, starts A and B
 * and makes B dial A. Teardown stops every daemon and removes the files. */
int hx_group_setup(void **state);
int hx_group_teardown(void **state);

/* The last test of each executable: after all of it every daemon stops
 * cleanly on SIGTERM (exit 0, so also no leak under ASan). */
void test_clean_shutdown(void **state);

#endif
