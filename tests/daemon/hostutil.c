/* SPDX-License-Identifier: MIT */
/* Daemons, raw connections and a protocol peer for the hostile-peer tests:
 * see hostutil.h. */
#include "hostutil.h"

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

hx_fixture hx_fx;

double
hx_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
hx_sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

char *
hx_path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Runs `nvx --store STORE ARGS...` and returns its exit status; stdout in
 * *ret_out when given (malloc'd). */
int
hx_nvx_run(const hx_daemon *d, char **ret_out, const char *a1, const char *a2, const char *a3)
{
    char *argv[] = { hx_fx.nvx, "--store", d->store, (char *)a1, (char *)a2, (char *)a3, NULL };
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
void
hx_dump_log(const hx_daemon *d)
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
void
hx_daemon_start(hx_daemon *d, const char *name)
{
    d->store = hx_path_join(hx_fx.root, name);
    char logname[64];
    snprintf(logname, sizeof(logname), "%s.log", name);
    d->log = hx_path_join(hx_fx.root, logname);
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
        char *argv[] = { hx_fx.nvxd,    "--store",        d->store,    "--listen",
                         "127.0.0.1:0", "--no-discovery", "--no-upnp", "--log-level",
                         "debug",       "--http",         "off",       NULL };
        execv(hx_fx.nvxd, argv);
        _exit(127);
    }
    d->pid = pid;

    double end = hx_now_s() + DAEMON_START_S;
    while (hx_now_s() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            hx_dump_log(d);
            fail_msg("nvxd for %s exited during start-up (status 0x%x)", name, st);
        }
        char *argv[] = { hx_fx.nvx, "--store", d->store, "--json", "status", NULL };
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
        hx_sleep_ms(100);
    }
    hx_dump_log(d);
    fail_msg("nvxd for %s did not answer `nvx status` within %d s", name, DAEMON_START_S);
}

/* SIGTERM, then waits (SIGKILL after DAEMON_STOP_S). Records the status. */
void
hx_daemon_stop(hx_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    double end = hx_now_s() + DAEMON_STOP_S;
    int st = 0;
    pid_t r;
    while ((r = waitpid(d->pid, &st, WNOHANG)) == 0 && hx_now_s() < end)
        hx_sleep_ms(50);
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
bool
hx_daemon_alive(const hx_daemon *d)
{
    return d->pid > 0 && waitpid(d->pid, NULL, WNOHANG) == 0;
}

/* ---- raw connections ---------------------------------------------------- */

int
hx_raw_connect(const hx_daemon *d)
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
void
hx_send_all(int fd, const void *buf, size_t len)
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
void
hx_send_frame_header(int fd, uint32_t body_len, uint8_t type)
{
    uint8_t hdr[PROTO_FRAME_HEADER_LEN] = { 0 };
    be32_store(hdr, body_len);
    hdr[4] = PROTO_FRAME_VERSION;
    hdr[5] = type;
    hx_send_all(fd, hdr, sizeof(hdr));
}

/* Reads and discards whatever arrives; returns true once the daemon has
 * closed the connection (EOF or reset). Waits at most timeout_ms. */
bool
hx_drain_closed(int fd, int timeout_ms)
{
    double end = hx_now_s() + timeout_ms / 1000.0;
    for (;;) {
        double left = end - hx_now_s();
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
void
hx_expect_closed(int fd, int bound_s, const char *what)
{
    double t0 = hx_now_s();
    bool closed = hx_drain_closed(fd, bound_s * 1000);
    double dt = hx_now_s() - t0;
    close(fd);
    if (!closed) {
        hx_dump_log(&hx_fx.a);
        fail_msg("%s: nvxd kept the connection open for more than %d s", what, bound_s);
    }
    print_message("%s: closed after %.2f s (bound %d s)\n", what, dt, bound_s);
}

/* The daemon still answers on its control socket. */
void
hx_expect_alive(const hx_daemon *d)
{
    assert_true(hx_daemon_alive(d));
    assert_int_equal(hx_nvx_run(d, NULL, "status", NULL, NULL), 0);
}

/* ---- a peer speaking the real protocol ---------------------------------- */

void
hx_peer_flush(hx_peer *p)
{
    uint8_t *buf;
    size_t len;
    while (proto_session_output(p->s, &buf, &len) > 0) {
        hx_send_all(p->fd, buf, len);
        free(buf);
    }
}

uint64_t
hx_now_ms(void)
{
    return (uint64_t)(hx_now_s() * 1000);
}

/* Connects to A and runs the initiator's side of the handshake. With
 * lie_about_id the HELLO names another node while the transcript is signed
 * with our key, so the signature A checks is wrong. Returns after our side
 * saw HANDSHAKE_DONE (HS_FINISH sent); A's verdict comes later. */
void
hx_peer_handshake(hx_peer *p, bool lie_about_id)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(proto_identity_generate(&p->id), 0);
    proto_session_config cfg = {
        .identity = p->id,
        .initiator = true,
        .agent = "test-hostile",
    };
    assert_int_equal(proto_session_new(&cfg, hx_now_ms(), &p->s), 0);
    if (lie_about_id) {
        assert_int_equal(proto_identity_generate(&p->other), 0);
        proto__session_set_hello_node_id(p->s, proto_identity_node_id(p->other));
    }
    p->fd = hx_raw_connect(&hx_fx.a);
    hx_peer_flush(p); /* HS_INIT */

    double end = hx_now_s() + BOUND_IMMEDIATE_S;
    while (!proto_session_established(p->s)) {
        assert_true(hx_now_s() < end);
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
            r = proto_session_feed(p->s, buf + off, (size_t)n - off, hx_now_ms(), &used, &ev);
            if (r < 0)
                fail_msg("handshake with nvxd failed on our side: %s",
                         proto_fail_str(proto_session_fail(p->s)));
            off += used;
            if (r == 0)
                break;
        }
    }
    hx_peer_flush(p); /* HS_FINISH */
}

/* Seals a PING into one frame (not queued for sending); malloc'd. */
uint8_t *
hx_peer_ping_frame(hx_peer *p, size_t *ret_len)
{
    proto_msg m = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 42 } };
    assert_int_equal(proto_session_send_msg(p->s, &m), 0);
    uint8_t *buf;
    assert_int_equal(proto_session_output(p->s, &buf, ret_len), 1);
    return buf;
}

/* Reads from A until a message of type msg_type arrives (true) or the
 * connection ends or timeout_ms passes (false). */
bool
hx_peer_wait_msg(hx_peer *p, uint8_t msg_type, int timeout_ms)
{
    double end = hx_now_s() + timeout_ms / 1000.0;
    while (hx_now_s() < end) {
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
            r = proto_session_feed(p->s, buf + off, (size_t)n - off, hx_now_ms(), &used, &ev);
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

void
hx_peer_free(hx_peer *p)
{
    proto_session_free(p->s);
    proto_identity_free(p->id);
    proto_identity_free(p->other);
    p->s = NULL;
    p->id = p->other = NULL;
}

/* ---- setup --------------------------------------------------------------- */

int
hx_group_setup(void **state)
{
    (void)state;
    hx_fx.root = tu_tmpdir("hostile");
    hx_fx.nvx = tu_build_path("cli/nvx");
    hx_fx.nvxd = tu_build_path("daemon/nvxd");
    if (access(hx_fx.nvxd, X_OK) < 0 || access(hx_fx.nvx, X_OK) < 0) {
        print_message("test-hostile: %s or %s not built\n", hx_fx.nvxd, hx_fx.nvx);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);

    /* A random model, added to A's store before A starts. */
    uint8_t *model = malloc(MODEL_BYTES);
    assert_non_null(model);
    tu_fill_random(model, MODEL_BYTES, 0x4e5658);
    char *mpath = hx_path_join(hx_fx.root, "model.bin");
    assert_int_equal(tu_write_file(mpath, model, MODEL_BYTES), 0);
    free(model);
    hx_fx.a.store = hx_path_join(hx_fx.root, "A");
    char *out = NULL;
    char *argv[] = { hx_fx.nvx, "--store", hx_fx.a.store, "-q", "add", "--pin", mpath, NULL };
    assert_int_equal(tu_run(argv, &out, NULL), 0);
    assert_non_null(out);
    assert_true(strlen(out) >= 64);
    memcpy(hx_fx.model_id, out, 64);
    hx_fx.model_id[64] = '\0';
    free(out);
    free(mpath);
    free(hx_fx.a.store);

    hx_daemon_start(&hx_fx.a, "A");
    hx_daemon_start(&hx_fx.b, "B");
    assert_int_equal(hx_nvx_run(&hx_fx.b, NULL, "peer", "add", hx_fx.a.addr), 0);
    return 0;
}

int
hx_group_teardown(void **state)
{
    (void)state;
    hx_daemon_stop(&hx_fx.c);
    hx_daemon_stop(&hx_fx.b);
    hx_daemon_stop(&hx_fx.a);
    if (hx_fx.root)
        tu_rm_rf(hx_fx.root);
    free(hx_fx.root);
    free(hx_fx.nvx);
    free(hx_fx.nvxd);
    free(hx_fx.a.store);
    free(hx_fx.a.log);
    free(hx_fx.b.store);
    free(hx_fx.b.log);
    free(hx_fx.c.store);
    free(hx_fx.c.log);
    return 0;
}

/* Last: after all of it both daemons stop cleanly on SIGTERM. */
void
test_clean_shutdown(void **state)
{
    (void)state;
    hx_daemon_stop(&hx_fx.c);
    hx_daemon_stop(&hx_fx.b);
    hx_daemon_stop(&hx_fx.a);
    if (!WIFEXITED(hx_fx.a.exit_status) || WEXITSTATUS(hx_fx.a.exit_status) != 0) {
        hx_dump_log(&hx_fx.a);
        fail_msg("nvxd A did not exit cleanly after the hostile peers (status 0x%x)",
                 hx_fx.a.exit_status);
    }
    assert_true(WIFEXITED(hx_fx.b.exit_status));
    assert_int_equal(WEXITSTATUS(hx_fx.b.exit_status), 0);
    assert_true(WIFEXITED(hx_fx.c.exit_status));
    assert_int_equal(WEXITSTATUS(hx_fx.c.exit_status), 0);
}
