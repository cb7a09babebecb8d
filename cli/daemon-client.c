/* SPDX-License-Identifier: MIT */
#include "cli/daemon-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/progress.h"

int
cli_daemon_connect(cli_ctx *ctx, cli_daemon *d)
{
    memset(d, 0, sizeof(*d));
    d->fd = -1;
    d->next_id = 1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(d->path, sizeof(d->path), "%s/%s", ctx->store_dir, PROTO_CTL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        return cli_fail(CLI_EXIT_FAIL,
                        "store path too long for a Unix socket: %s: use a shorter --store",
                        ctx->store_dir);
    memcpy(sa.sun_path, d->path, (size_t)n + 1);
    d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0)
        return cli_fail_errno(-errno, NULL, "cannot create a socket");
    if (connect(d->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(d->fd);
        d->fd = -1;
        if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
            return cli_fail(CLI_EXIT_FAIL, "no nvxd serves %s: start it with `nvxd --store %s`",
                            ctx->store_dir, ctx->store_dir);
        if (e == EACCES || e == EPERM)
            return cli_fail(CLI_EXIT_FAIL,
                            "cannot use %s: permission denied: run nvx as nvxd's user or join "
                            "its control group (the system service's is nvx: sudo usermod -aG "
                            "nvx $USER, then log in again)",
                            d->path);
        return cli_fail_errno(-e, NULL, "cannot connect to %s", d->path);
    }
    return CLI_GO;
}

bool
cli_daemon_running(cli_ctx *ctx)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n =
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", ctx->store_dir, PROTO_CTL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return up;
}

void
cli_daemon_close(cli_daemon *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    proto_ctl_reader_reset(&d->rd);
}

uint32_t
cli_daemon_next_id(cli_daemon *d)
{
    return d->next_id++;
}

int
cli_daemon_send(cli_daemon *d, proto_ctl_writer *w)
{
    uint8_t *buf;
    size_t len;
    int r = proto_ctl_writer_finish(w, &buf, &len);
    if (r < 0)
        return r;
    size_t off = 0;
    while (off < len) {
        ssize_t k = send(d->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        off += (size_t)k;
    }
    free(buf);
    return r;
}

int
cli_daemon_recv(cli_daemon *d, proto_ctl_msg *m)
{
    for (;;) {
        while (d->off < d->len) {
            size_t used;
            const uint8_t *payload;
            size_t plen;
            int r = proto_ctl_reader_feed(&d->rd, d->buf + d->off, d->len - d->off, &used, &payload,
                                          &plen);
            d->off += used;
            if (r < 0)
                return -EBADMSG;
            if (r == 1)
                return proto_ctl_decode(payload, plen, m) < 0 ? -EBADMSG : 0;
        }
        ssize_t k = read(d->fd, d->buf, sizeof(d->buf));
        if (k < 0)
            return errno == EINTR ? -EINTR : -errno;
        if (k == 0)
            return -ECONNRESET;
        d->len = (size_t)k;
        d->off = 0;
    }
}

int
cli_daemon_fail(const proto_ctl_msg *m, const char *hint)
{
    uint64_t code = 0;
    proto_str msg = { (const uint8_t *)"error", 5 };
    proto_ctl_get_u64(m, PROTO_CTL_T_CODE, &code);
    proto_ctl_get_str(m, PROTO_CTL_T_MESSAGE, &msg);
    int r = code > 0 && code < 4096 ? -(int)code : -EIO;
    if (hint)
        return cli_fail(cli_exit_code(r), "%.*s: %s", (int)msg.len, (const char *)msg.p, hint);
    return cli_fail(cli_exit_code(r), "%.*s", (int)msg.len, (const char *)msg.p);
}

int
cli_daemon_call(cli_daemon *d, proto_ctl_writer *w, proto_ctl_msg *resp, const char *hint)
{
    uint32_t id = d->next_id - 1;
    int r = cli_daemon_send(d, w);
    if (r < 0)
        return cli_fail_errno(r, "check that nvxd is running", "cannot send to nvxd");
    for (;;) {
        r = cli_daemon_recv(d, resp);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return cli_fail_errno(r, "check nvxd's log", "lost the connection to nvxd");
        if (resp->id != id || resp->type == PROTO_CTL_PROGRESS)
            continue;
        if (resp->type == PROTO_CTL_ERROR)
            return cli_daemon_fail(resp, hint);
        if (resp->type == PROTO_CTL_OK)
            return CLI_GO;
    }
}

int
cli_daemon_request(cli_ctx *ctx, uint8_t type, const char *addr, const char *hint,
                   cli_daemon **ret_d, proto_ctl_msg **ret_m)
{
    cli_daemon *d = malloc(sizeof(*d));
    proto_ctl_msg *m = malloc(sizeof(*m));
    *ret_d = d;
    *ret_m = m;
    if (!d || !m)
        return cli_fail(CLI_EXIT_FAIL, "out of memory: close other programs");
    int r = cli_daemon_connect(ctx, d);
    if (r != CLI_GO)
        return r;
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, type, cli_daemon_next_id(d));
    if (addr)
        proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, addr);
    return cli_daemon_call(d, &w, m, hint);
}

void
cli_daemon_done(cli_daemon *d, proto_ctl_msg *m)
{
    if (d)
        cli_daemon_close(d);
    free(d);
    free(m);
}

void
cli_daemon_hex(const proto_ctl_msg *m, uint8_t tag, char buf[static 65])
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *id;
    buf[0] = '\0';
    if (!proto_ctl_get_id(m, tag, &id))
        return;
    for (int i = 0; i < 32; i++) {
        buf[2 * i] = hex[id[i] >> 4];
        buf[2 * i + 1] = hex[id[i] & 15];
    }
    buf[64] = '\0';
}

const char *
cli_daemon_state_name(uint64_t state)
{
    static const char *const names[] = { "?",         "resolving", "manifest", "fetching",
                                         "verifying", "done",      "failed",   "cancelled" };
    return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

static void
str_field(const proto_ctl_msg *m, uint8_t tag, char *buf, size_t cap)
{
    proto_str s;
    buf[0] = '\0';
    if (proto_ctl_get_str(m, tag, &s)) {
        size_t n = s.len < cap - 1 ? s.len : cap - 1;
        memcpy(buf, s.p, n); /* printable: the decoder checked it */
        buf[n] = '\0';
    }
}

static uint64_t
u64_field(const proto_ctl_msg *m, uint8_t tag)
{
    uint64_t v = 0;
    proto_ctl_get_u64(m, tag, &v);
    return v;
}

size_t
cli_daemon_print_peers(const proto_ctl_msg *m, cli_json *j)
{
    size_t n = 0;
    proto_ctl_msg *nest = malloc(sizeof(*nest));
    if (!nest)
        return 0;
    if (j)
        cli_json_arr_begin(j);
    for (const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_PEER); f;
         f = proto_ctl_next(m, f)) {
        if (f->tag != PROTO_CTL_T_PEER || proto_ctl_nest_decode(f, nest) < 0)
            continue;
        char id[65], addr[PROTO_CTL_STR_MAX + 1], agent[PROTO_CTL_STR_MAX + 1];
        cli_daemon_hex(nest, PROTO_CTL_T_NODE_ID, id);
        str_field(nest, PROTO_CTL_T_ADDR, addr, sizeof(addr));
        str_field(nest, PROTO_CTL_T_AGENT, agent, sizeof(agent));
        uint64_t state = u64_field(nest, PROTO_CTL_T_STATE);
        uint64_t in = u64_field(nest, PROTO_CTL_T_BYTES_IN);
        uint64_t out = u64_field(nest, PROTO_CTL_T_BYTES_OUT);
        uint64_t rate = u64_field(nest, PROTO_CTL_T_RATE);
        const char *st = state == 2 ? "connected" : "handshaking";
        if (j) {
            cli_json_obj_begin(j);
            cli_json_key(j, "node_id");
            if (id[0])
                cli_json_str(j, id);
            else
                cli_json_null(j);
            cli_json_key(j, "address");
            cli_json_str(j, addr);
            cli_json_key(j, "state");
            cli_json_str(j, st);
            cli_json_key(j, "agent");
            cli_json_str(j, agent);
            cli_json_key(j, "bytes_in");
            cli_json_u64(j, in);
            cli_json_key(j, "bytes_out");
            cli_json_u64(j, out);
            cli_json_key(j, "rate");
            cli_json_u64(j, rate);
            cli_json_obj_end(j);
        } else {
            char b1[16], b2[16];
            printf("%.16s  %-22s %-11s in %-10s out %-10s %s\n", id[0] ? id : "-", addr, st,
                   cli_fmt_bytes(in, b1), cli_fmt_bytes(out, b2), agent);
        }
        n++;
    }
    if (j)
        cli_json_arr_end(j);
    free(nest);
    return n;
}
