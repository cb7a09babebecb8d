/* SPDX-License-Identifier: MIT */
/*
 * What a node shares (daemon/share.h), against real nvxd processes: a peer
 * speaking the protocol itself (an attacker who knows or guesses a model
 * id) asks for a model with WANT, MANIFEST_REQ, REQUEST and SIGS_REQ and
 * collects the provider records the node announces when a session starts.
 *
 *   serve = pinned (default): an added-but-not-pinned model is neither
 *     announced nor served (NOT_FOUND, as for a model the node lacks); a
 *     pinned one is; a model fetched without --pin is not seeded, and
 *     `nvx pin` makes it so.
 *   serve = all: the added model is announced and served.
 *   serve = none: not even a pinned model is.
 *
 * The end of the announcements is found with a PING: the node sends its
 * records when the session starts, before it reads our PING, so they are
 * in the stream ahead of the PONG. No fixed sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "libcas/hash.h"
#include "proto/message.h"
#include "proto/session.h"
#include "testutil.h"

enum {
    MODEL_BYTES = 1 << 20,
    ANSWER_MS = 20000, /* liveness bound for one answer on a loaded machine */
};

static int
setup(void **state)
{
    du_setup("share");
    return 0;
}

static int
teardown(void **state)
{
    du_teardown();
    return 0;
}

/* ---- a peer speaking the protocol ---------------------------------------- */

typedef struct rpeer {
    int fd;
    proto_identity *id;
    proto_session *s;
    /* What the node said, filled in by rpeer_pump(). */
    uint8_t announced[16][32]; /* models of provider records */
    size_t n_announced;
    bool got;         /* the awaited answer came */
    proto_msg answer; /* its decoded message (pointers into a freed buffer: fields only) */
    bool pong;
} rpeer;

static void
rpeer_flush(rpeer *p)
{
    uint8_t *buf;
    size_t len;
    while (proto_session_output(p->s, &buf, &len) > 0) {
        for (size_t off = 0; off < len;) {
            ssize_t n = send(p->fd, buf + off, len - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            assert_true(n > 0);
            off += (size_t)n;
        }
        free(buf);
    }
}

/* Reads what arrived (waits up to 100 ms), feeds it to the session and
 * records announcements, PONGs and the first message of type want (0: none
 * wanted). Fails the test when the node closes the connection. */
static void
rpeer_pump(rpeer *p, uint8_t want)
{
    struct pollfd pf = { .fd = p->fd, .events = POLLIN };
    if (poll(&pf, 1, 100) <= 0)
        return;
    uint8_t buf[65536];
    ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    for (size_t off = 0; off < (size_t)n;) {
        size_t used = 0;
        proto_event ev;
        int r = proto_session_feed(p->s, buf + off, (size_t)n - off, du_now_ms(), &used, &ev);
        assert_true(r >= 0);
        off += used;
        if (r == 0)
            break;
        proto_msg m;
        if (ev.type != PROTO_EVENT_MESSAGE ||
            proto_msg_decode(ev.msg_type, ev.body, ev.len, &m) < 0)
            continue;
        if (m.type == PROTO_MSG_PONG)
            p->pong = true;
        if (m.type == PROTO_MSG_ANNOUNCE)
            for (size_t i = 0; i < m.u.announce.n; i++)
                if (m.u.announce.records[i].kind == PROTO_RECORD_PROVIDER && p->n_announced < 16)
                    memcpy(p->announced[p->n_announced++],
                           m.u.announce.records[i].u.provider.model_id, 32);
        if (want && m.type == want && !p->got) {
            p->got = true;
            p->answer = m;
        }
        if (want && m.type == PROTO_MSG_NOT_FOUND && !p->got) {
            p->got = true;
            p->answer = m;
        }
    }
    rpeer_flush(p); /* handshake replies */
}

/* Connects to d and completes the handshake as the initiator, then sends a
 * PING and reads until its PONG: every record the node announces to a new
 * session is in p->announced by then. */
static void
rpeer_open(rpeer *p, const du_daemon *d)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(proto_identity_generate(&p->id), 0);
    proto_session_config cfg = { .identity = p->id, .initiator = true, .agent = "test-share" };
    assert_int_equal(proto_session_new(&cfg, du_now_ms(), &p->s), 0);
    const char *colon = strrchr(d->addr, ':');
    assert_non_null(colon);
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    rpeer_flush(p);
    uint64_t end = du_now_ms() + ANSWER_MS;
    while (!proto_session_established(p->s)) {
        assert_true(du_now_ms() < end);
        rpeer_pump(p, 0);
    }
    rpeer_flush(p);
    proto_msg ping = { .type = PROTO_MSG_PING, .u.ping = { .nonce = 7 } };
    assert_int_equal(proto_session_send_msg(p->s, &ping), 0);
    rpeer_flush(p);
    while (!p->pong) {
        assert_true(du_now_ms() < end);
        rpeer_pump(p, 0);
    }
}

static void
rpeer_close(rpeer *p)
{
    close(p->fd);
    proto_session_free(p->s);
    proto_identity_free(p->id);
}

static bool
announced(const rpeer *p, const uint8_t id[32])
{
    for (size_t i = 0; i < p->n_announced; i++)
        if (memcmp(p->announced[i], id, 32) == 0)
            return true;
    return false;
}

/* Sends m and returns the type of the answer: want's type, or NOT_FOUND. */
static uint8_t
ask(rpeer *p, const proto_msg *m, uint8_t want)
{
    p->got = false;
    assert_int_equal(proto_session_send_msg(p->s, m), 0);
    rpeer_flush(p);
    uint64_t end = du_now_ms() + ANSWER_MS;
    while (!p->got) {
        if (du_now_ms() >= end)
            fail_msg("no answer to message type %u", m->type);
        rpeer_pump(p, want);
    }
    return p->answer.type;
}

/* What the node answers for model id, one bit per request kind that it
 * served: WANT -> HAVE, MANIFEST_REQ -> MANIFEST, REQUEST -> DATA, SIGS_REQ
 * -> SIGS with signatures (the model is signed in these tests). */
enum {
    SERVED_HAVE = 1,
    SERVED_MANIFEST = 2,
    SERVED_DATA = 4,
    SERVED_SIGS = 8,
    SERVED_EVERY = 15,
};

static unsigned
probe(rpeer *p, const char *hex)
{
    uint8_t id[32];
    assert_int_equal(cas_hash_from_hex(hex, id), 0);
    unsigned served = 0;
    proto_msg m = { .type = PROTO_MSG_WANT };
    memcpy(m.u.want.model_id, id, 32);
    m.u.want.set.kind = PROTO_CHUNKSET_ALL;
    if (ask(p, &m, PROTO_MSG_HAVE) == PROTO_MSG_HAVE)
        served |= SERVED_HAVE;
    m = (proto_msg){ .type = PROTO_MSG_MANIFEST_REQ };
    m.u.manifest_req = (proto_manifest_req){ .req_id = 1, .offset = 0, .length = 64 };
    memcpy(m.u.manifest_req.model_id, id, 32);
    if (ask(p, &m, PROTO_MSG_MANIFEST) == PROTO_MSG_MANIFEST)
        served |= SERVED_MANIFEST;
    m = (proto_msg){ .type = PROTO_MSG_REQUEST };
    m.u.request = (proto_request){ .req_id = 2, .chunk = 0, .offset = 0, .length = 1024 };
    memcpy(m.u.request.model_id, id, 32);
    if (ask(p, &m, PROTO_MSG_DATA) == PROTO_MSG_DATA)
        served |= SERVED_DATA;
    m = (proto_msg){ .type = PROTO_MSG_SIGS_REQ };
    m.u.sigs_req.req_id = 3;
    memcpy(m.u.sigs_req.model_id, id, 32);
    if (ask(p, &m, PROTO_MSG_SIGS) == PROTO_MSG_SIGS && p->answer.u.sigs.n > 0)
        served |= SERVED_SIGS;
    return served;
}

/* Signs model id on d with a fresh unencrypted key (so SIGS_REQ has
 * something to reveal). */
static void
sign_model(const du_daemon *d, const char *id)
{
    char key[700];
    snprintf(key, sizeof(key), "%s/%s.key", du_root(), strrchr(d->dir, '/') + 1);
    if (access(key, F_OK) != 0)
        du_nvx_ok(d, NULL, "key", "new", "--key", key, "--unencrypted", NULL);
    du_nvx_ok(d, NULL, "sign", id, "--key", key, NULL);
}

/* Starts d with args, adds a pinned and an added-only model, signs both, and
 * restarts d so that its first store scan announces what it shares. */
static void
start_with_models(du_daemon *d, const char *name, const char *const *args, char **ret_pinned,
                  char **ret_added)
{
    du_start_args(d, name, NULL, args);
    char file[64];
    snprintf(file, sizeof(file), "%s-pinned.bin", name);
    *ret_pinned = du_add_model(d, file, MODEL_BYTES, 21);
    snprintf(file, sizeof(file), "%s-added.bin", name);
    *ret_added = du_add_model(d, file, MODEL_BYTES, 22);
    du_nvx_ok(d, NULL, "unpin", *ret_added, NULL);
    sign_model(d, *ret_pinned);
    sign_model(d, *ret_added);
    du_stop(d);
    du_start_args(d, name, NULL, args);
}

static void
expect_log(const du_daemon *d, const char *line)
{
    char *log = du_slurp(d->log);
    bool ok = strstr(log, line) != NULL;
    free(log);
    if (!ok) {
        du_dump_log(d);
        fail_msg("no '%s' in %s", line, d->log);
    }
}

static void
test_default_pinned(void **state)
{
    du_daemon a = { 0 };
    char *pinned, *added;
    start_with_models(&a, "sp", NULL, &pinned, &added);
    rpeer p;
    rpeer_open(&p, &a);
    uint8_t idp[32], ida[32];
    assert_int_equal(cas_hash_from_hex(pinned, idp), 0);
    assert_int_equal(cas_hash_from_hex(added, ida), 0);
    assert_true(announced(&p, idp));
    assert_false(announced(&p, ida));
    assert_int_equal(probe(&p, pinned), SERVED_EVERY);
    assert_int_equal(probe(&p, added), 0);
    rpeer_close(&p);
    expect_log(&a, "serve = pinned ");
    du_stop(&a);
    free(pinned);
    free(added);
}

static void
test_serve_all(void **state)
{
    du_daemon a = { 0 };
    const char *const args[] = { "--serve", "all", NULL };
    char *pinned, *added;
    start_with_models(&a, "sl", args, &pinned, &added);
    rpeer p;
    rpeer_open(&p, &a);
    uint8_t idp[32], ida[32];
    assert_int_equal(cas_hash_from_hex(pinned, idp), 0);
    assert_int_equal(cas_hash_from_hex(added, ida), 0);
    assert_true(announced(&p, idp));
    assert_true(announced(&p, ida));
    assert_int_equal(probe(&p, pinned), SERVED_EVERY);
    assert_int_equal(probe(&p, added), SERVED_EVERY);
    rpeer_close(&p);
    expect_log(&a, "serve = all ");
    du_stop(&a);
    free(pinned);
    free(added);
}

static void
test_serve_none(void **state)
{
    du_daemon a = { 0 };
    const char *const args[] = { "--serve", "none", NULL };
    char *pinned, *added;
    start_with_models(&a, "sn", args, &pinned, &added);
    rpeer p;
    rpeer_open(&p, &a);
    assert_int_equal(p.n_announced, 0);
    assert_int_equal(probe(&p, pinned), 0);
    assert_int_equal(probe(&p, added), 0);
    rpeer_close(&p);
    expect_log(&a, "serve = none ");
    du_stop(&a);
    free(pinned);
    free(added);
}

/* B fetches A's pinned model with --no-pin: B does not seed it once the
 * fetch is done; `nvx pin` on B makes it seed it. */
static void
test_fetched_unpinned_not_seeded(void **state)
{
    du_daemon a = { 0 }, b = { 0 };
    char *pinned, *added;
    start_with_models(&a, "fa", NULL, &pinned, &added);
    du_start(&b, "fb", NULL);
    du_nvx_ok(&b, NULL, "peer", "add", a.addr, NULL);
    du_nvx_ok(&b, NULL, "fetch", pinned, "--no-pin", NULL);
    /* An added-only model on A is not found by B either: a clear failure. */
    char *err = NULL;
    assert_int_not_equal(du_nvx(&b, NULL, &err, "fetch", added, "--timeout", "3", NULL), 0);
    free(err);

    rpeer p;
    rpeer_open(&p, &b);
    unsigned got = probe(&p, pinned);
    assert_int_equal(got & (SERVED_HAVE | SERVED_MANIFEST | SERVED_DATA), 0);
    du_nvx_ok(&b, NULL, "pin", pinned, NULL);
    got = probe(&p, pinned);
    assert_int_equal(got & (SERVED_HAVE | SERVED_MANIFEST | SERVED_DATA),
                     SERVED_HAVE | SERVED_MANIFEST | SERVED_DATA);
    rpeer_close(&p);
    du_stop(&a);
    du_stop(&b);
    free(pinned);
    free(added);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_pinned),
        cmocka_unit_test(test_serve_all),
        cmocka_unit_test(test_serve_none),
        cmocka_unit_test(test_fetched_unpinned_not_seeded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
