/* SPDX-License-Identifier: MIT */
/*
 * Hostile peers against a real nvxd (issue 3, "Bad input, faults and hostile
 * peers"). The test starts nvxd processes on 127.0.0.1 (ephemeral ports,
 * temporary stores, no LAN discovery), A holding a small model and B
 * configured to dial A (a third, C, joins during the flood case), and then
 * opens raw TCP connections to A that
 *
 *   - send garbage, or an HTTP request, instead of a frame;
 *   - announce an oversized frame (before and after the handshake);
 *   - finish a handshake whose transcript signature is wrong (proto's test
 *     hook makes the HELLO claim another node id while signing with ours);
 *   - send a SEALED frame whose AEAD tag is corrupted, a message whose body
 *     does not decode, or a second HS_INIT after the handshake;
 *   - connect and say nothing, stop half way through HS_INIT, stop half way
 *     through a SEALED frame, or trickle a frame one byte a second;
 *   - open more silent connections at once than nvxd's max_peers;
 *   - flood 400 MANIFEST_REQs and an unsolicited SIGS (every request is
 *     answered, past NVX_NODE_PEER_META_JOBS with BUSY; the SIGS is ignored);
 *   - and, with A dialing us (`nvx peer add`), answer its HS_INIT with a
 *     wrong transcript signature or with garbage.
 *
 * In every case A must close the connection (read returns 0 or ECONNRESET)
 * within a bounded time, while a normal fetch from A to B, a fetch by a new
 * node C and `nvx status` on A keep working, and all three must still stop
 * cleanly (exit 0, so also no leak under ASan) on SIGTERM.
 *
 * The bounds are about liveness, not speed; they follow nvxd's timeouts,
 * which are proto's defaults (nvxd sets neither): a protocol error closes at
 * once (the bytes are checked as they arrive); the handshake must finish
 * within PROTO_HANDSHAKE_TIMEOUT_MS (10 s) of the connection; a frame must be
 * complete PROTO_STALL_TIMEOUT_MS (30 s) after its first byte; nvxd checks
 * both every NVX_NODE_TICK_MS (250 ms). Each bound adds a generous margin for
 * a loaded machine and sanitizer builds. The slow cases run side by side, so
 * the whole file takes about 35 s.
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
#include "libcas/hash.h"
#include "proto/frame.h"
#include "proto/internal.h" /* proto__session_set_hello_node_id (test hook) */
#include "proto/message.h"
#include "proto/session.h"
#include "testutil.h"

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

typedef struct daemon_proc {
    pid_t pid;
    char *store;
    char *log;
    char addr[64]; /* "127.0.0.1:PORT" */
    uint16_t port;
    int exit_status; /* after daemon_stop */
} daemon_proc;

typedef struct fixture {
    char *root;
    char *nvx;
    char *nvxd;
    daemon_proc a, b, c;
    char model_id[65];
} fixture;

static fixture fx;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static char *
path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Runs `nvx --store STORE ARGS...` and returns its exit status; stdout in
 * *ret_out when given (malloc'd). */
static int
nvx_run(const daemon_proc *d, char **ret_out, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = { fx.nvx, "--store", d->store, (char *)a1, (char *)a2, (char *)a3, NULL };
    char *out = NULL, *err = NULL;
    int r = tu_run(argv, &out, &err);
    if (r != 0)
        print_message("nvx %s %s: exit %d: %s", a1, a2 ? a2 : "", r, err ? err : "");
    free(err);
    if (ret_out)
        *ret_out = out;
    else
        free(out);
    return r;
}

/* Prints the last lines of a daemon's log (when a check fails). */
static void
dump_log(const daemon_proc *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!d->log || tu_read_file(d->log, &buf, &len) < 0)
        return;
    size_t from = len > 4000 ? len - 4000 : 0;
    print_message("---- %s (tail) ----\n%.*s\n----\n", d->log, (int)(len - from),
                  (const char *)buf + from);
    free(buf);
}

/* Starts nvxd with a store under the fixture root, listening on an
 * ephemeral port of 127.0.0.1, and waits until `nvx status --json` answers
 * with the address. */
static void
daemon_start(daemon_proc *d, const char *name)
{
    d->store = path_join(fx.root, name);
    char logname[64];
    snprintf(logname, sizeof(logname), "%s.log", name);
    d->log = path_join(fx.root, logname);
    d->exit_status = -1;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0)
            _exit(127);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[] = { fx.nvxd,       "--store",     d->store,
                         "--listen",    "127.0.0.1:0", "--no-discovery",
                         "--log-level", "debug",       "--http",
                         "off",         NULL };
        execv(fx.nvxd, argv);
        _exit(127);
    }
    d->pid = pid;

    double end = now_s() + DAEMON_START_S;
    while (now_s() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            dump_log(d);
            fail_msg("nvxd for %s exited during start-up (status 0x%x)", name, st);
        }
        char *argv[] = { fx.nvx, "--store", d->store, "--json", "status", NULL };
        char *out = NULL;
        if (tu_run(argv, &out, NULL) == 0 && out) {
            const char *p = strstr(out, "\"addresses\":[\"127.0.0.1:");
            if (p) {
                p += strlen("\"addresses\":[\"127.0.0.1:");
                d->port = (uint16_t)strtoul(p, NULL, 10);
                snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%u", (unsigned)d->port);
                free(out);
                return;
            }
        }
        free(out);
        sleep_ms(100);
    }
    dump_log(d);
    fail_msg("nvxd for %s did not answer `nvx status` within %d s", name, DAEMON_START_S);
}

/* SIGTERM, then waits (SIGKILL after DAEMON_STOP_S). Records the status. */
static void
daemon_stop(daemon_proc *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    double end = now_s() + DAEMON_STOP_S;
    int st = 0;
    pid_t r;
    while ((r = waitpid(d->pid, &st, WNOHANG)) == 0 && now_s() < end)
        sleep_ms(50);
    if (r == 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &st, 0);
        d->exit_status = 0x1000; /* did not stop in time */
    } else {
        d->exit_status = st;
    }
    d->pid = 0;
}

/* True while the daemon process runs. */
static bool
daemon_alive(const daemon_proc *d)
{
    return d->pid > 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* ---- raw connections ---------------------------------------------------- */

static int
raw_connect(const daemon_proc *d)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(d->port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Writes all bytes. A peer that already closed (EPIPE, ECONNRESET) is not an
 * error here: the daemon may hang up before it has read everything. */
static void
send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Sends a bare frame header announcing body_len bytes of the given type. */
static void
send_frame_header(int fd, uint32_t body_len, uint8_t type)
{
    uint8_t hdr[PROTO_FRAME_HEADER_LEN] = { 0 };
    proto__put_be32(hdr, body_len);
    hdr[4] = PROTO_FRAME_VERSION;
    hdr[5] = type;
    send_all(fd, hdr, sizeof(hdr));
}

/* Reads and discards whatever arrives; returns true once the daemon has
 * closed the connection (EOF or reset). Waits at most timeout_ms. */
static bool
drain_closed(int fd, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        double left = end - now_s();
        if (left < 0)
            left = 0;
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        int r = poll(&pf, 1, (int)(left * 1000));
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r >= 0);
        if (r == 0)
            return false;
        uint8_t buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return true;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return true;
        if (left <= 0)
            return false;
    }
}

/* Asserts that fd gets closed within bound_s seconds; closes it. */
static void
expect_closed(int fd, int bound_s, const char *what)
{
    double t0 = now_s();
    bool closed = drain_closed(fd, bound_s * 1000);
    double dt = now_s() - t0;
    close(fd);
    if (!closed) {
        dump_log(&fx.a);
        fail_msg("%s: nvxd kept the connection open for more than %d s", what, bound_s);
    }
    print_message("%s: closed after %.2f s (bound %d s)\n", what, dt, bound_s);
}

/* The daemon still answers on its control socket. */
static void
expect_alive(const daemon_proc *d)
{
    assert_true(daemon_alive(d));
    assert_int_equal(nvx_run(d, NULL, "status", NULL, NULL), 0);
}

/* ---- a peer speaking the real protocol ---------------------------------- */

typedef struct raw_peer {
    int fd;
    proto_identity *id;
    proto_identity *other; /* the id a lying HELLO claims */
    proto_session *s;
} raw_peer;

static void
peer_flush(raw_peer *p)
{
    uint8_t *buf;
    size_t len;
    while (proto_session_output(p->s, &buf, &len) > 0) {
        send_all(p->fd, buf, len);
        free(buf);
    }
}

static uint64_t
now_ms(void)
{
    return (uint64_t)(now_s() * 1000);
}

/* Connects to A and runs the initiator's side of the handshake. With
 * lie_about_id the HELLO names another node while the transcript is signed
 * with our key, so the signature A checks is wrong. Returns after our side
 * saw HANDSHAKE_DONE (HS_FINISH sent); A's verdict comes later. */
static void
peer_handshake(raw_peer *p, bool lie_about_id)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(proto_identity_generate(&p->id), 0);
    proto_session_config cfg = {
        .identity = p->id,
        .initiator = true,
        .agent = "test-hostile",
    };
    assert_int_equal(proto_session_new(&cfg, now_ms(), &p->s), 0);
    if (lie_about_id) {
        assert_int_equal(proto_identity_generate(&p->other), 0);
        proto__session_set_hello_node_id(p->s, proto_identity_node_id(p->other));
    }
    p->fd = raw_connect(&fx.a);
    peer_flush(p); /* HS_INIT */

    double end = now_s() + BOUND_IMMEDIATE_S;
    while (!proto_session_established(p->s)) {
        assert_true(now_s() < end);
        struct pollfd pf = { .fd = p->fd, .events = POLLIN };
        int r = poll(&pf, 1, 200);
        if (r <= 0)
            continue;
        uint8_t buf[4096];
        ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
        assert_true(n > 0);
        size_t off = 0;
        while (off < (size_t)n) {
            size_t used = 0;
            proto_event ev;
            r = proto_session_feed(p->s, buf + off, (size_t)n - off, now_ms(), &used, &ev);
            if (r < 0)
                fail_msg("handshake with nvxd failed on our side: %s",
                         proto_fail_str(proto_session_fail(p->s)));
            off += used;
            if (r == 0)
                break;
        }
    }
    peer_flush(p); /* HS_FINISH */
}

/* Seals a PING into one frame (not queued for sending); malloc'd. */
static uint8_t *
peer_ping_frame(raw_peer *p, size_t *ret_len)
{
    proto_msg m = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 42 } };
    assert_int_equal(proto_session_send_msg(p->s, &m), 0);
    uint8_t *buf;
    assert_int_equal(proto_session_output(p->s, &buf, ret_len), 1);
    return buf;
}

/* Reads from A until a message of type msg_type arrives (true) or the
 * connection ends or timeout_ms passes (false). */
static bool
peer_wait_msg(raw_peer *p, uint8_t msg_type, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    while (now_s() < end) {
        struct pollfd pf = { .fd = p->fd, .events = POLLIN };
        int r = poll(&pf, 1, 100);
        if (r <= 0)
            continue;
        uint8_t buf[65536];
        ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return false;
        size_t off = 0;
        while (off < (size_t)n) {
            size_t used = 0;
            proto_event ev;
            r = proto_session_feed(p->s, buf + off, (size_t)n - off, now_ms(), &used, &ev);
            if (r < 0)
                return false;
            off += used;
            if (r == 0)
                break;
            if (ev.type == PROTO_EVENT_MESSAGE && ev.msg_type == msg_type)
                return true;
        }
    }
    return false;
}

static void
peer_free(raw_peer *p)
{
    proto_session_free(p->s);
    proto_identity_free(p->id);
    proto_identity_free(p->other);
    p->s = NULL;
    p->id = p->other = NULL;
}

/* ---- setup --------------------------------------------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    fx.root = tu_tmpdir("hostile");
    fx.nvx = tu_build_path("cli/nvx");
    fx.nvxd = tu_build_path("daemon/nvxd");
    if (access(fx.nvxd, X_OK) < 0 || access(fx.nvx, X_OK) < 0) {
        print_message("test-hostile: %s or %s not built\n", fx.nvxd, fx.nvx);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);

    /* A random model, added to A's store before A starts. */
    uint8_t *model = malloc(MODEL_BYTES);
    assert_non_null(model);
    tu_fill_random(model, MODEL_BYTES, 0x4e5658);
    char *mpath = path_join(fx.root, "model.bin");
    assert_int_equal(tu_write_file(mpath, model, MODEL_BYTES), 0);
    free(model);
    fx.a.store = path_join(fx.root, "A");
    char *out = NULL;
    char *argv[] = { fx.nvx, "--store", fx.a.store, "-q", "add", "--pin", mpath, NULL };
    assert_int_equal(tu_run(argv, &out, NULL), 0);
    assert_non_null(out);
    assert_true(strlen(out) >= 64);
    memcpy(fx.model_id, out, 64);
    fx.model_id[64] = '\0';
    free(out);
    free(mpath);
    free(fx.a.store);

    daemon_start(&fx.a, "A");
    daemon_start(&fx.b, "B");
    assert_int_equal(nvx_run(&fx.b, NULL, "peer", "add", fx.a.addr), 0);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    daemon_stop(&fx.c);
    daemon_stop(&fx.b);
    daemon_stop(&fx.a);
    if (fx.root)
        tu_rm_rf(fx.root);
    free(fx.root);
    free(fx.nvx);
    free(fx.nvxd);
    free(fx.a.store);
    free(fx.a.log);
    free(fx.b.store);
    free(fx.b.log);
    free(fx.c.store);
    free(fx.c.log);
    return 0;
}

/* ---- immediate errors ------------------------------------------------------ */

static void
test_garbage(void **state)
{
    (void)state;
    uint8_t junk[4096];
    tu_fill_random(junk, sizeof(junk), 7);
    int fd = raw_connect(&fx.a);
    send_all(fd, junk, sizeof(junk));
    expect_closed(fd, BOUND_IMMEDIATE_S, "random bytes");
    expect_alive(&fx.a);
}

static void
test_http_request(void **state)
{
    (void)state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int fd = raw_connect(&fx.a);
    send_all(fd, req, sizeof(req) - 1);
    expect_closed(fd, BOUND_IMMEDIATE_S, "HTTP request");
    expect_alive(&fx.a);
}

/* Only a header announcing more than PROTO_FRAME_MAX_BODY: nvxd must refuse
 * it from the header alone, without waiting for (or allocating) the body. */
static void
test_oversized_frame(void **state)
{
    (void)state;
    static const uint32_t lens[] = { PROTO_FRAME_MAX_BODY + 1, 0x7fffffffu, 0xffffffffu };
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        int fd = raw_connect(&fx.a);
        send_frame_header(fd, lens[i], PROTO_FRAME_HS_INIT);
        char what[64];
        snprintf(what, sizeof(what), "frame header announcing %u bytes", (unsigned)lens[i]);
        expect_closed(fd, BOUND_IMMEDIATE_S, what);
    }
    expect_alive(&fx.a);
}

/* A frame of an unknown type is skipped (forward compatibility), but only up
 * to the size limit: an unknown type with an oversized length is refused. */
static void
test_oversized_unknown_type(void **state)
{
    (void)state;
    int fd = raw_connect(&fx.a);
    send_frame_header(fd, PROTO_FRAME_MAX_BODY + 1, 200);
    expect_closed(fd, BOUND_IMMEDIATE_S, "unknown frame type, oversized");
    expect_alive(&fx.a);
}

static void
test_bad_handshake_signature(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, true);
    expect_closed(p.fd, BOUND_IMMEDIATE_S, "handshake with a wrong transcript signature");
    peer_free(&p);
    expect_alive(&fx.a);
}

/* The control: the same handshake without the lie is accepted and the
 * session stays up (so the test above fails for the signature, not for
 * something else in our handshake). */
static void
test_good_handshake_stays_open(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    size_t len;
    uint8_t *ping = peer_ping_frame(&p, &len);
    send_all(p.fd, ping, len);
    free(ping);
    assert_false(drain_closed(p.fd, 1500));
    close(p.fd);
    peer_free(&p);
    expect_alive(&fx.a);
}

/* Resets the connection (SO_LINGER 0: close sends RST, not FIN). */
static void
close_with_reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

/* Issue 9 item 1: a TCP reset right after the handshake from a throw-away
 * key. nvxd's close path sent BYE on the dead link, the failed send closed
 * the peer again before it was marked closing, and the recursion overflowed
 * the stack. Several in a row, on an idle session and on one that has just
 * sent a request, and the node must still answer. */
static void
test_reset_after_handshake(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        raw_peer p;
        peer_handshake(&p, false);
        if (i & 1) {
            size_t len;
            uint8_t *ping = peer_ping_frame(&p, &len);
            send_all(p.fd, ping, len);
            free(ping);
        }
        close_with_reset(p.fd);
        peer_free(&p);
    }
    sleep_ms(300); /* let nvxd read the resets (a crash shows below) */
    expect_alive(&fx.a);
}

static void
test_bad_tag_after_handshake(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    size_t len;
    uint8_t *ping = peer_ping_frame(&p, &len);
    ping[len - 1] ^= 0x01; /* last byte of the AEAD tag */
    send_all(p.fd, ping, len);
    free(ping);
    expect_closed(p.fd, BOUND_IMMEDIATE_S, "SEALED frame with a corrupted tag");
    peer_free(&p);
    expect_alive(&fx.a);
}

static void
test_oversized_after_handshake(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    send_frame_header(p.fd, PROTO_FRAME_MAX_BODY + 1, PROTO_FRAME_SEALED);
    expect_closed(p.fd, BOUND_IMMEDIATE_S, "oversized SEALED frame after the handshake");
    peer_free(&p);
    expect_alive(&fx.a);
}

/* A message of a known type whose body does not decode. */
static void
test_malformed_message(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    static const uint8_t body[1] = { 0xff }; /* a REQUEST is far longer */
    assert_int_equal(proto_session_send(p.s, PROTO_MSG_REQUEST, body, sizeof(body)), 0);
    peer_flush(&p);
    expect_closed(p.fd, BOUND_IMMEDIATE_S, "malformed REQUEST body");
    peer_free(&p);
    expect_alive(&fx.a);
}

/* The control for the above: a message of an unknown type is skipped (later
 * versions may add types) and the session goes on: A answers a PING after
 * it. */
static void
test_unknown_message_skipped(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    static const uint8_t body[16] = { 1, 2, 3 };
    assert_int_equal(proto_session_send(p.s, 0x7e, body, sizeof(body)), 0);
    proto_msg m = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 7 } };
    assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    peer_flush(&p);
    assert_true(peer_wait_msg(&p, PROTO_MSG_PONG, BOUND_IMMEDIATE_S * 1000));
    close(p.fd);
    peer_free(&p);
    expect_alive(&fx.a);
}

/* A second HS_INIT on an established session is a state error. */
static void
test_handshake_frame_after_handshake(void **state)
{
    (void)state;
    raw_peer p;
    peer_handshake(&p, false);
    uint8_t frame[PROTO_FRAME_HEADER_LEN + 40] = { 0 };
    size_t len;
    uint8_t body[40] = { 'n', 'v', 'x', 'h', 0, 1, 0, 1 };
    tu_fill_random(body + 8, 32, 3);
    assert_int_equal(
        proto_frame_encode(PROTO_FRAME_HS_INIT, body, sizeof(body), frame, sizeof(frame), &len), 0);
    send_all(p.fd, frame, len);
    expect_closed(p.fd, BOUND_IMMEDIATE_S, "HS_INIT after the handshake");
    peer_free(&p);
    expect_alive(&fx.a);
}

/* A flood of small requests, each of which takes a pool job on A: A answers
 * every one, either with the data or BUSY (at most NVX_NODE_PEER_META_JOBS
 * jobs per peer at once, so the flood cannot queue unbounded work), and the
 * session goes on. A SIGS nobody asked for is ignored. */
static void
test_request_flood(void **state)
{
    (void)state;
    enum {
        FLOOD = 400
    };
    raw_peer p;
    peer_handshake(&p, false);
    uint8_t model[32];
    assert_int_equal(cas_hash_from_hex(fx.model_id, model), 0);
    proto_msg m = { .type = PROTO_MSG_SIGS };
    m.u.sigs.req_id = 1;
    memcpy(m.u.sigs.model_id, model, 32);
    m.u.sigs.n = 1;
    m.u.sigs.sigs[0] = (proto_str){ (const uint8_t *)"junk", 4 };
    assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    for (uint32_t i = 0; i < FLOOD; i++) {
        m = (proto_msg){ .type = PROTO_MSG_MANIFEST_REQ };
        m.u.manifest_req = (proto_manifest_req){ .req_id = 100 + i, .offset = 0, .length = 64 };
        memcpy(m.u.manifest_req.model_id, model, 32);
        assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    }
    m = (proto_msg){ .type = PROTO_MSG_SIGS_REQ };
    m.u.sigs_req.req_id = 99;
    memcpy(m.u.sigs_req.model_id, model, 32);
    assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    peer_flush(&p);

    unsigned manifests = 0, busy = 0, sigs = 0;
    double end = now_s() + 10 * BOUND_IMMEDIATE_S;
    while ((manifests + busy < FLOOD || sigs < 1) && now_s() < end) {
        struct pollfd pf = { .fd = p.fd, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        uint8_t buf[65536];
        ssize_t n = recv(p.fd, buf, sizeof(buf), 0);
        assert_true(n > 0);
        for (size_t off = 0; off < (size_t)n;) {
            size_t used = 0;
            proto_event ev;
            int r = proto_session_feed(p.s, buf + off, (size_t)n - off, now_ms(), &used, &ev);
            assert_true(r >= 0);
            off += used;
            if (r == 0)
                break;
            proto_msg a;
            if (ev.type != PROTO_EVENT_MESSAGE ||
                proto_msg_decode(ev.msg_type, ev.body, ev.len, &a) < 0)
                continue;
            manifests += a.type == PROTO_MSG_MANIFEST;
            busy += a.type == PROTO_MSG_NOT_FOUND && a.u.not_found.what == PROTO_NOTFOUND_BUSY;
            if (a.type == PROTO_MSG_SIGS) {
                assert_int_equal(a.u.sigs.req_id, 99);
                assert_int_equal(a.u.sigs.n, 0); /* the junk was not attached */
                sigs++;
            }
        }
    }
    if (manifests + busy != FLOOD || sigs != 1)
        fail_msg("%u MANIFEST + %u BUSY answers to %d MANIFEST_REQs, %u SIGS", manifests, busy,
                 FLOOD, sigs);
    assert_true(manifests > 0);
    assert_true(busy > 0);
    proto_msg ping = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 9 } };
    assert_int_equal(proto_session_send_msg(p.s, &ping), 0);
    peer_flush(&p);
    assert_true(peer_wait_msg(&p, PROTO_MSG_PONG, BOUND_IMMEDIATE_S * 1000));
    close(p.fd);
    peer_free(&p);
    expect_alive(&fx.a);
}

/* ---- hostile responders: A dials us ------------------------------------------ */

/* A listening socket on an ephemeral port of 127.0.0.1; its "IP:PORT". */
static int
listen_ephemeral(char addr[static 64])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, 64, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

/* Waits for A to dial the listener (it dials configured peers on its
 * 250 ms tick). */
static int
accept_dial(int lfd)
{
    struct pollfd pf = { .fd = lfd, .events = POLLIN };
    assert_int_equal(poll(&pf, 1, BOUND_IMMEDIATE_S * 1000), 1);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    return fd;
}

enum dialed_mode {
    DIALED_HONEST,  /* the control: a correct responder */
    DIALED_BAD_SIG, /* HELLO claims another node id, so sig_r is wrong */
    DIALED_GARBAGE,
};

/* A is told to dial us; we answer its HS_INIT as a responder (see enum
 * dialed_mode). A must hang up at once on a liar and complete the handshake
 * with an honest responder. */
static void
dialed_by_a(int mode)
{
    bool garbage = mode == DIALED_GARBAGE;
    char addr[64];
    int lfd = listen_ephemeral(addr);
    assert_int_equal(nvx_run(&fx.a, NULL, "peer", "add", addr), 0);
    int fd = accept_dial(lfd);
    if (garbage) {
        uint8_t junk[512];
        tu_fill_random(junk, sizeof(junk), 11);
        send_all(fd, junk, sizeof(junk));
        expect_closed(fd, BOUND_IMMEDIATE_S, "dialed peer answering with garbage");
    } else {
        raw_peer p;
        memset(&p, 0, sizeof(p));
        p.fd = fd;
        assert_int_equal(proto_identity_generate(&p.id), 0);
        assert_int_equal(proto_identity_generate(&p.other), 0);
        proto_session_config cfg = { .identity = p.id, .initiator = false };
        assert_int_equal(proto_session_new(&cfg, now_ms(), &p.s), 0);
        if (mode == DIALED_BAD_SIG)
            proto__session_set_hello_node_id(p.s, proto_identity_node_id(p.other));
        /* Read HS_INIT; the session answers with HS_RESP. */
        double end = now_s() + BOUND_IMMEDIATE_S;
        size_t got = 0;
        while (got < PROTO_FRAME_HEADER_LEN + 40) {
            assert_true(now_s() < end);
            struct pollfd pf = { .fd = fd, .events = POLLIN };
            if (poll(&pf, 1, 200) <= 0)
                continue;
            uint8_t buf[256];
            ssize_t n = recv(fd, buf, PROTO_FRAME_HEADER_LEN + 40 - got, 0);
            assert_true(n > 0);
            size_t used = 0;
            proto_event ev;
            assert_true(proto_session_feed(p.s, buf, (size_t)n, now_ms(), &used, &ev) >= 0);
            got += (size_t)n;
        }
        peer_flush(&p); /* HS_RESP */
        if (mode == DIALED_BAD_SIG) {
            expect_closed(fd, BOUND_IMMEDIATE_S, "dialed peer signing the wrong transcript");
        } else {
            /* A answers with HS_FINISH and the session comes up; A then
             * asks us something (a PING is enough to check). */
            proto_msg m = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 9 } };
            end = now_s() + BOUND_IMMEDIATE_S;
            while (!proto_session_established(p.s)) {
                assert_true(now_s() < end);
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                if (poll(&pf, 1, 200) <= 0)
                    continue;
                uint8_t buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                assert_true(n > 0);
                /* Feed every byte: A may send messages right behind HS_FINISH. */
                for (size_t off = 0; off < (size_t)n;) {
                    size_t used = 0;
                    proto_event ev;
                    assert_true(proto_session_feed(p.s, buf + off, (size_t)n - off, now_ms(), &used,
                                                   &ev) >= 0);
                    off += used;
                }
            }
            assert_int_equal(proto_session_send_msg(p.s, &m), 0);
            peer_flush(&p);
            assert_true(peer_wait_msg(&p, PROTO_MSG_PONG, BOUND_IMMEDIATE_S * 1000));
            close(fd);
        }
        p.fd = -1;
        peer_free(&p);
    }
    close(lfd);
    assert_int_equal(nvx_run(&fx.a, NULL, "peer", "rm", addr), 0);
    expect_alive(&fx.a);
}

static void
test_dialed_peer_bad_signature(void **state)
{
    (void)state;
    dialed_by_a(DIALED_BAD_SIG);
}

static void
test_dialed_peer_honest(void **state)
{
    (void)state;
    dialed_by_a(DIALED_HONEST);
}

static void
test_dialed_peer_garbage(void **state)
{
    (void)state;
    dialed_by_a(DIALED_GARBAGE);
}

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
    raw_peer peer;
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
        pr->fd = raw_connect(&fx.a);
        break;
    case PROBE_HALF_INIT: {
        pr->what = "stalled half way through HS_INIT";
        pr->bound_s = BOUND_HANDSHAKE_S;
        pr->fd = raw_connect(&fx.a);
        uint8_t frame[PROTO_FRAME_HEADER_LEN + 40];
        uint8_t body[40] = { 'n', 'v', 'x', 'h', 0, 1, 0, 1 };
        tu_fill_random(body + 8, 32, 5);
        size_t len;
        assert_int_equal(
            proto_frame_encode(PROTO_FRAME_HS_INIT, body, sizeof(body), frame, sizeof(frame), &len),
            0);
        send_all(pr->fd, frame, len / 2);
        break;
    }
    case PROBE_HALF_SEALED:
    case PROBE_TRICKLE: {
        bool trickle = kind == PROBE_TRICKLE;
        pr->what = trickle ? "SEALED frame trickled one byte a second"
                           : "stalled half way through a SEALED frame";
        pr->bound_s = BOUND_STALL_S;
        peer_handshake(&pr->peer, false);
        pr->has_peer = true;
        pr->fd = pr->peer.fd;
        pr->frame = peer_ping_frame(&pr->peer, &pr->frame_len);
        /* A PING frame is about 40 bytes: at one a second it would take
         * longer than the stall timeout to complete. */
        assert_true(!trickle || pr->frame_len > PROTO_STALL_TIMEOUT_MS / 1000 + 5);
        pr->sent = trickle ? 1 : pr->frame_len / 2;
        send_all(pr->fd, pr->frame, pr->sent);
        break;
    }
    default:
        fail();
    }
    pr->start = now_s();
    pr->next_byte = pr->start + 1;
}

static void
probe_free(probe *pr)
{
    if (pr->fd >= 0)
        close(pr->fd);
    if (pr->has_peer)
        peer_free(&pr->peer);
    free(pr->frame);
}

/* Starts `timeout LIMIT nvx --store STORE -q fetch ID` without waiting;
 * its output goes to STORE.fetch.log. Returns the pid. */
static pid_t
fetch_spawn(const daemon_proc *d, int limit_s)
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
        char *argv[] = { "timeout", lim,     fx.nvx,      "--store", d->store,
                         "-q",      "fetch", fx.model_id, NULL };
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
    double flood_t0 = now_s();
    for (int i = 0; i < FLOOD_CONNS; i++) {
        flood[i] = raw_connect(&fx.a);
        flood_closed_at[i] = -1;
    }

    /* B fetches the model from A meanwhile. */
    double t0 = now_s();
    char *argv[] = { fx.nvx, "--store", fx.b.store, "-q", "fetch", fx.model_id, NULL };
    char *err = NULL;
    int r = tu_run(argv, NULL, &err);
    if (r != 0) {
        dump_log(&fx.a);
        dump_log(&fx.b);
        fail_msg("nvx fetch with hostile connections open: exit %d: %s", r, err ? err : "");
    }
    free(err);
    print_message("fetch of %d MiB from A to B: %.2f s\n", MODEL_BYTES >> 20, now_s() - t0);
    assert_int_equal(nvx_run(&fx.b, NULL, "verify", fx.model_id, NULL), 0);
    expect_alive(&fx.a);

    /* C, a new node, dials A through the flood. */
    daemon_start(&fx.c, "C");
    assert_int_equal(nvx_run(&fx.c, NULL, "peer", "add", fx.a.addr), 0);
    double c_t0 = now_s();
    pid_t c_fetch = fetch_spawn(&fx.c, BOUND_THROUGH_FLOOD_S);
    double c_done = -1;
    int c_status = 0;

    int open_n = _PROBE_KIND_MAX, flood_open = FLOOD_CONNS;
    bool refused_ok = false;
    while (open_n > 0 || flood_open > 0 || c_done < 0) {
        double t = now_s();
        for (int k = 0; k < _PROBE_KIND_MAX; k++) {
            probe *p = &pr[k];
            if (p->closed_at >= 0)
                continue;
            /* One more byte a second (no catching up after a pause). */
            if (k == PROBE_TRICKLE && p->sent < p->frame_len && t >= p->next_byte) {
                send_all(p->fd, p->frame + p->sent, 1);
                p->sent++;
                p->next_byte = t + 1;
            }
            if (drain_closed(p->fd, 0)) {
                p->closed_at = t - p->start;
                open_n--;
                print_message("%s: closed after %.2f s (bound %d s)\n", p->what, p->closed_at,
                              p->bound_s);
                continue;
            }
            if (t - p->start > p->bound_s) {
                dump_log(&fx.a);
                fail_msg("%s: nvxd kept the connection open for more than %d s", p->what,
                         p->bound_s);
            }
        }
        for (int i = 0; i < FLOOD_CONNS; i++) {
            if (flood_closed_at[i] >= 0)
                continue;
            if (drain_closed(flood[i], 0)) {
                flood_closed_at[i] = t - flood_t0;
                flood_open--;
            } else if (t - flood_t0 > BOUND_HANDSHAKE_S) {
                dump_log(&fx.a);
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
        sleep_ms(50);
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
        dump_log(&fx.a);
        dump_log(&fx.c);
        fail_msg("new node C could not fetch from A through the flood (status 0x%x, bound %d s)",
                 c_status, BOUND_THROUGH_FLOOD_S);
    }
    print_message("new node C fetched through the flood in %.2f s (bound %d s)\n", c_done,
                  BOUND_THROUGH_FLOOD_S);
    assert_int_equal(nvx_run(&fx.c, NULL, "verify", fx.model_id, NULL), 0);
    for (int k = 0; k < _PROBE_KIND_MAX; k++)
        probe_free(&pr[k]);
    expect_alive(&fx.a);
    expect_alive(&fx.b);
}

/* ---- a HAVE flood while A fetches (issue 9, item 6) ------------------------- */

/* Wall time of one `nvx status` on A, in ms. */
static double
status_ms(void)
{
    double t0 = now_s();
    assert_int_equal(nvx_run(&fx.a, NULL, "status", NULL, NULL), 0);
    return (now_s() - t0) * 1000;
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
        sleep_ms(20);
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

    raw_peer p;
    peer_handshake(&p, false);
    uint8_t model[32];
    char hex[65];
    tu_fill_random(model, sizeof(model), (uint64_t)now_ms());
    cas_hash_to_hex(model, hex);
    pid_t fetch = fork();
    assert_true(fetch >= 0);
    if (fetch == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(fx.nvx, fx.nvx, "--store", fx.a.store, "-q", "fetch", hex, "--timeout", "120",
              (char *)NULL);
        _exit(127);
    }
    /* A asks every peer, us too: we claim chunk 0 so that A keeps us. */
    assert_true(peer_wait_msg(&p, PROTO_MSG_WANT, BOUND_IMMEDIATE_S * 1000));
    proto_msg m = { .type = PROTO_MSG_HAVE };
    memcpy(m.u.want.model_id, model, 32);
    m.u.want.set = (proto_chunkset){ .kind = PROTO_CHUNKSET_RANGES, .n_ranges = 1 };
    m.u.want.set.ranges[0] = (proto_range){ .start = 0, .count = 1 };
    assert_int_equal(proto_session_send_msg(p.s, &m), 0);
    peer_flush(&p);

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
    sleep_ms(500); /* let the flood get going */
    double during_ms = status_median(PROBES, during);
    kill(flood, SIGKILL);
    waitpid(flood, NULL, 0);
    kill(fetch, SIGTERM);
    waitpid(fetch, NULL, 0);
    close(p.fd);
    peer_free(&p);

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
        dump_log(&fx.a);
        fail_msg("A's control socket answered in %.1f ms (2nd worst) and %.1f ms (worst) during "
                 "a HAVE flood",
                 during[PROBES - 2], during[PROBES - 1]);
    }
    expect_alive(&fx.a);
}

/* Last: after all of it both daemons stop cleanly on SIGTERM. */
static void
test_clean_shutdown(void **state)
{
    (void)state;
    daemon_stop(&fx.c);
    daemon_stop(&fx.b);
    daemon_stop(&fx.a);
    if (!WIFEXITED(fx.a.exit_status) || WEXITSTATUS(fx.a.exit_status) != 0) {
        dump_log(&fx.a);
        fail_msg("nvxd A did not exit cleanly after the hostile peers (status 0x%x)",
                 fx.a.exit_status);
    }
    assert_true(WIFEXITED(fx.b.exit_status));
    assert_int_equal(WEXITSTATUS(fx.b.exit_status), 0);
    assert_true(WIFEXITED(fx.c.exit_status));
    assert_int_equal(WEXITSTATUS(fx.c.exit_status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_oversized_unknown_type),
        cmocka_unit_test(test_bad_handshake_signature),
        cmocka_unit_test(test_good_handshake_stays_open),
        cmocka_unit_test(test_reset_after_handshake),
        cmocka_unit_test(test_bad_tag_after_handshake),
        cmocka_unit_test(test_oversized_after_handshake),
        cmocka_unit_test(test_handshake_frame_after_handshake),
        cmocka_unit_test(test_malformed_message),
        cmocka_unit_test(test_unknown_message_skipped),
        cmocka_unit_test(test_request_flood),
        cmocka_unit_test(test_dialed_peer_bad_signature),
        cmocka_unit_test(test_dialed_peer_honest),
        cmocka_unit_test(test_dialed_peer_garbage),
        cmocka_unit_test(test_stalls_and_flood_while_fetching),
        cmocka_unit_test(test_have_flood),
        cmocka_unit_test(test_clean_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
