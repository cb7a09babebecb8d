/* SPDX-License-Identifier: MIT */
/*
 * nvx status: the node at a glance (asks nvxd).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/json.h"
#include "cli/progress.h"

int cli_status_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_status = {
    .name = "status",
    .main = cli_status_main,
    .usage = "status",
    .summary = "Show the node: id, addresses, peers, transfers, store use (needs nvxd)",
};

static uint64_t
u64(const proto_ctl_msg *m, uint8_t tag)
{
    uint64_t v = 0;
    proto_ctl_get_u64(m, tag, &v);
    return v;
}

static void
transfers(const proto_ctl_msg *m, cli_json *j)
{
    proto_ctl_msg *x = malloc(sizeof(*x));
    if (!x)
        return;
    if (j)
        cli_json_arr_begin(j);
    for (const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_TRANSFER); f;
         f = proto_ctl_next(m, f)) {
        if (f->tag != PROTO_CTL_T_TRANSFER || proto_ctl_nest_decode(f, x) < 0)
            continue;
        char id[65], b1[16], b2[16], b3[16];
        cli_daemon_hex(x, PROTO_CTL_T_MODEL_ID, id);
        const char *st = cli_daemon_state_name(u64(x, PROTO_CTL_T_STATE));
        if (j) {
            cli_json_obj_begin(j);
            cli_json_key(j, "transfer_id");
            cli_json_u64(j, u64(x, PROTO_CTL_T_TRANSFER_ID));
            cli_json_key(j, "model_id");
            cli_json_str(j, id);
            cli_json_key(j, "state");
            cli_json_str(j, st);
            cli_json_key(j, "bytes_done");
            cli_json_u64(j, u64(x, PROTO_CTL_T_BYTES_DONE));
            cli_json_key(j, "bytes_total");
            cli_json_u64(j, u64(x, PROTO_CTL_T_BYTES_TOTAL));
            cli_json_key(j, "chunks_done");
            cli_json_u64(j, u64(x, PROTO_CTL_T_CHUNKS_DONE));
            cli_json_key(j, "chunks_total");
            cli_json_u64(j, u64(x, PROTO_CTL_T_CHUNKS_TOTAL));
            cli_json_key(j, "rate");
            cli_json_u64(j, u64(x, PROTO_CTL_T_RATE));
            cli_json_key(j, "peers");
            cli_json_u64(j, u64(x, PROTO_CTL_T_PEER_COUNT));
            cli_json_obj_end(j);
        } else {
            printf("  #%llu %.16s %-9s %s / %s  %s/s  %llu peers\n",
                   (unsigned long long)u64(x, PROTO_CTL_T_TRANSFER_ID), id, st,
                   cli_fmt_bytes(u64(x, PROTO_CTL_T_BYTES_DONE), b1),
                   cli_fmt_bytes(u64(x, PROTO_CTL_T_BYTES_TOTAL), b2),
                   cli_fmt_bytes(u64(x, PROTO_CTL_T_RATE), b3),
                   (unsigned long long)u64(x, PROTO_CTL_T_PEER_COUNT));
        }
    }
    if (j)
        cli_json_arr_end(j);
    free(x);
}

/* How peers outside reach the node (the REACH nest): one line, or an
 * object with the verdict, the mapping and the addresses to give out. */
static void
reach(const proto_ctl_msg *m, cli_json *j)
{
    static const char *const states[_PROTO_CTL_REACH_MAX] = {
        [PROTO_CTL_REACH_MAPPED] = "mapped",
        [PROTO_CTL_REACH_PUBLIC] = "public",
        [PROTO_CTL_REACH_REVERSAL] = "reversal",
        [PROTO_CTL_REACH_NONE] = "none",
    };
    const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_REACH);
    proto_ctl_msg *x = malloc(sizeof(*x));
    if (!x || !f || proto_ctl_nest_decode(f, x) < 0) {
        free(x);
        if (j)
            cli_json_null(j);
        return;
    }
    uint64_t st = u64(x, PROTO_CTL_T_STATE);
    proto_str msg = { (const uint8_t *)"", 0 }, how = msg;
    proto_ctl_get_str(x, PROTO_CTL_T_MESSAGE, &msg);
    proto_ctl_get_str(x, PROTO_CTL_T_NAME, &how);
    if (j) {
        cli_json_obj_begin(j);
        cli_json_key(j, "state");
        cli_json_str(j, st < _PROTO_CTL_REACH_MAX && states[st] ? states[st] : "unknown");
        cli_json_key(j, "message");
        cli_json_strn(j, (const char *)msg.p, msg.len);
        cli_json_key(j, "mapping");
        cli_json_strn(j, (const char *)how.p, how.len);
        cli_json_key(j, "relays");
        cli_json_u64(j, u64(x, PROTO_CTL_T_PEER_COUNT));
        cli_json_key(j, "addresses");
        cli_json_arr_begin(j);
        for (const proto_ctl_field *a = proto_ctl_find(x, PROTO_CTL_T_ADDR); a;
             a = proto_ctl_next(x, a))
            cli_json_strn(j, (const char *)a->p, a->len);
        cli_json_arr_end(j);
        cli_json_obj_end(j);
    } else {
        printf("reachable  %.*s\n", (int)msg.len, (const char *)msg.p);
    }
    free(x);
}

static size_t
count(const proto_ctl_msg *m, uint8_t tag)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->f[i].tag == tag;
    return n;
}

int
cli_status_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_status, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_status, npos, 0, 0)) != CLI_GO)
        return r;
    cli_daemon *d;
    proto_ctl_msg *m;
    if ((r = cli_daemon_request(ctx, PROTO_CTL_STATUS, NULL, NULL, &d, &m)) != CLI_GO)
        goto out;
    char id[65], b1[16], b2[16];
    cli_daemon_hex(m, PROTO_CTL_T_NODE_ID, id);
    proto_str agent = { (const uint8_t *)"", 0 };
    proto_ctl_get_str(m, PROTO_CTL_T_AGENT, &agent);
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_key(&j, "node_id");
        cli_json_str(&j, id);
        cli_json_key(&j, "agent");
        cli_json_strn(&j, (const char *)agent.p, agent.len);
        cli_json_key(&j, "store");
        cli_json_str(&j, ctx->store_dir);
        cli_json_key(&j, "addresses");
        cli_json_arr_begin(&j);
        for (size_t i = 0; i < m->n; i++)
            if (m->f[i].tag == PROTO_CTL_T_ADDR)
                cli_json_strn(&j, (const char *)m->f[i].p, m->f[i].len);
        cli_json_arr_end(&j);
        cli_json_key(&j, "uptime_s");
        cli_json_u64(&j, u64(m, PROTO_CTL_T_UPTIME_S));
        cli_json_key(&j, "store_used");
        cli_json_u64(&j, u64(m, PROTO_CTL_T_STORE_USED));
        cli_json_key(&j, "store_limit");
        cli_json_u64(&j, u64(m, PROTO_CTL_T_STORE_LIMIT));
        cli_json_key(&j, "bytes_fetched");
        cli_json_u64(&j, u64(m, PROTO_CTL_T_BYTES_IN));
        cli_json_key(&j, "peers");
        cli_daemon_print_peers(m, &j);
        cli_json_key(&j, "transfers");
        transfers(m, &j);
        cli_json_key(&j, "reach");
        reach(m, &j);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
    } else {
        printf("node       %s\n", id);
        printf("agent      %.*s\n", (int)agent.len, (const char *)agent.p);
        printf("store      %s\n", ctx->store_dir);
        for (size_t i = 0; i < m->n; i++)
            if (m->f[i].tag == PROTO_CTL_T_ADDR)
                printf("listening  %.*s\n", (int)m->f[i].len, (const char *)m->f[i].p);
        reach(m, NULL);
        printf("uptime     %llu s\n", (unsigned long long)u64(m, PROTO_CTL_T_UPTIME_S));
        uint64_t limit = u64(m, PROTO_CTL_T_STORE_LIMIT);
        printf("store use  %s%s%s\n", cli_fmt_bytes(u64(m, PROTO_CTL_T_STORE_USED), b1),
               limit ? " of " : "", limit ? cli_fmt_bytes(limit, b2) : "");
        printf("fetched    %s since start\n", cli_fmt_bytes(u64(m, PROTO_CTL_T_BYTES_IN), b1));
        printf("peers      %zu\n", count(m, PROTO_CTL_T_PEER));
        cli_daemon_print_peers(m, NULL);
        printf("transfers  %zu\n", count(m, PROTO_CTL_T_TRANSFER));
        transfers(m, NULL);
    }
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}
