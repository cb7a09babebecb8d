/* SPDX-License-Identifier: MIT */
/*
 * nvx status: the node at a glance (asks nvxd). nvx dht: its DHT part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/json.h"
#include "cli/progress.h"

int cli_status_main(cli_ctx *ctx, int argc, char **argv);
int cli_dht_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_status = {
    .name = "status",
    .main = cli_status_main,
    .usage = "status",
    .summary = "Show the node: id, addresses, peers, transfers, store use (needs nvxd)",
};

const cli_command cli_cmd_dht = {
    .name = "dht",
    .main = cli_dht_main,
    .usage = "dht [get KEY [SALT]]",
    .summary = "Show the node's BitTorrent mainline DHT: id, routing table, announced models",
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

/* The DHT nest of a STATUS answer: one line, or a JSON object (null when
 * the DHT is off). */
static void
dht(const proto_ctl_msg *m, cli_json *j)
{
    const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_DHT);
    proto_ctl_msg *x = f ? malloc(sizeof(*x)) : NULL;
    if (!x || proto_ctl_nest_decode(f, x) < 0) {
        if (j)
            cli_json_null(j);
        else
            printf("dht        off\n");
        free(x);
        return;
    }
    proto_str id = { (const uint8_t *)"", 0 };
    proto_ctl_get_str(x, PROTO_CTL_T_DHT_ID, &id);
    if (j) {
        cli_json_obj_begin(j);
        cli_json_key(j, "id");
        cli_json_strn(j, (const char *)id.p, id.len);
        cli_json_key(j, "nodes");
        cli_json_u64(j, u64(x, PROTO_CTL_T_DHT_NODES));
        cli_json_key(j, "announced");
        cli_json_u64(j, u64(x, PROTO_CTL_T_DHT_ANNOUNCED));
        cli_json_key(j, "port");
        cli_json_u64(j, u64(x, PROTO_CTL_T_DHT_PORT));
        cli_json_key(j, "stored");
        cli_json_u64(j, u64(x, PROTO_CTL_T_DHT_STORED));
        cli_json_obj_end(j);
    } else {
        printf("dht        id %.*s, udp port %llu, %llu nodes, %llu models announced, %llu "
               "records kept for others\n",
               (int)id.len, (const char *)id.p, (unsigned long long)u64(x, PROTO_CTL_T_DHT_PORT),
               (unsigned long long)u64(x, PROTO_CTL_T_DHT_NODES),
               (unsigned long long)u64(x, PROTO_CTL_T_DHT_ANNOUNCED),
               (unsigned long long)u64(x, PROTO_CTL_T_DHT_STORED));
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
        cli_json_key(&j, "dht");
        dht(m, &j);
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
        dht(m, NULL);
    }
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}

/* nvx dht get KEY [SALT]: a BEP 44 mutable item (KEY: the Ed25519 public
 * key, 64 hex digits), its sequence and bencoded value in hex. For
 * debugging and interop tests; names are fetched with nvx fetch. */
static int
dht_get(cli_ctx *ctx, const char *key, const char *salt)
{
    cli_daemon *d = malloc(sizeof(*d));
    proto_ctl_msg *m = malloc(sizeof(*m));
    if (d) {
        memset(d, 0, sizeof(*d));
        d->fd = -1;
    }
    int r = d && m ? cli_daemon_connect(ctx, d) : cli_fail(CLI_EXIT_FAIL, "out of memory");
    if (r != CLI_GO)
        goto out;
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_DHT_GET, cli_daemon_next_id(d));
    proto_ctl_put_str(&w, PROTO_CTL_T_DHT_KEY, key);
    if (salt)
        proto_ctl_put_str(&w, PROTO_CTL_T_NAME, salt);
    r = cli_daemon_call(d, &w, m, "check the key and salt, and that the item was put");
    if (r != CLI_GO)
        goto out;
    uint64_t seq = u64(m, PROTO_CTL_T_DHT_SEQ);
    if (ctx->json) {
        printf("{\"seq\":%lld,\"value\":\"", (long long)seq);
    } else {
        printf("seq   %lld\nvalue ", (long long)seq);
    }
    for (const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_DHT_VALUE); f;
         f = proto_ctl_next(m, f))
        printf("%.*s", (int)f->len, (const char *)f->p);
    printf(ctx->json ? "\"}\n" : "\n");
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}

int
cli_dht_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_dht, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_dht, npos, 0, 3)) != CLI_GO)
        return r;
    if (npos > 0 && (strcmp(argv[0], "get") != 0 || npos < 2))
        return cli_fail(CLI_EXIT_USAGE, "usage: nvx dht [get KEY [SALT]]");
    if (npos > 0)
        return dht_get(ctx, argv[1], npos > 2 ? argv[2] : NULL);
    cli_daemon *d;
    proto_ctl_msg *m;
    if ((r = cli_daemon_request(ctx, PROTO_CTL_STATUS, NULL, NULL, &d, &m)) != CLI_GO)
        goto out;
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        dht(m, &j);
        cli_json_finish(&j);
    } else {
        dht(m, NULL);
    }
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}
