/* SPDX-License-Identifier: MIT */
/*
 * nvx peer add|rm|ls [HOST:PORT]: the peers nvxd dials and keeps dialing
 * (kept in the store's peers db, so they survive restarts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/json.h"

int cli_peer_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_peer = {
    .name = "peer",
    .main = cli_peer_main,
    .usage = "peer add|rm HOST:PORT | peer ls",
    .summary = "Add, remove or list the peers nvxd dials (needs nvxd)",
};

int
cli_peer_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_peer, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_peer, npos, 1, 2)) != CLI_GO)
        return r;
    const char *verb = argv[0];
    uint8_t type;
    if (strcmp(verb, "add") == 0)
        type = PROTO_CTL_PEER_ADD;
    else if (strcmp(verb, "rm") == 0)
        type = PROTO_CTL_PEER_RM;
    else if (strcmp(verb, "ls") == 0)
        type = PROTO_CTL_PEER_LS;
    else
        return cli_fail(CLI_EXIT_USAGE, "unknown peer command '%s': use add, rm or ls", verb);
    if ((type == PROTO_CTL_PEER_LS) != (npos == 1))
        return cli_fail(CLI_EXIT_USAGE, "usage: nvx %s", cli_cmd_peer.usage);
    if (npos == 2 && strlen(argv[1]) > PROTO_CTL_STR_MAX)
        return cli_fail(CLI_EXIT_USAGE, "address too long: give HOST:PORT");
    for (const char *p = npos == 2 ? argv[1] : ""; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return cli_fail(CLI_EXIT_USAGE, "bad address: give HOST:PORT");
    cli_daemon *d;
    proto_ctl_msg *m;
    r = cli_daemon_request(ctx, type, npos == 2 ? argv[1] : NULL,
                           type == PROTO_CTL_PEER_ADD  ? "check the address (HOST:PORT)"
                           : type == PROTO_CTL_PEER_RM ? "see `nvx peer ls`"
                                                       : NULL,
                           &d, &m);
    if (r != CLI_GO)
        goto out;
    cli_json j;
    cli_json_init(&j, stdout);
    if (type == PROTO_CTL_PEER_LS) {
        if (ctx->json) {
            cli_json_obj_begin(&j);
            cli_json_key(&j, "peers");
            cli_json_arr_begin(&j);
        }
        for (const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_ADDR); f;
             f = proto_ctl_next(m, f)) {
            if (f->tag != PROTO_CTL_T_ADDR)
                continue;
            if (ctx->json)
                cli_json_strn(&j, (const char *)f->p, f->len);
            else
                printf("%.*s\n", (int)f->len, (const char *)f->p);
        }
        if (ctx->json) {
            cli_json_arr_end(&j);
            cli_json_obj_end(&j);
            cli_json_finish(&j);
        }
    } else if (ctx->json) {
        cli_json_obj_begin(&j);
        cli_json_key(&j, type == PROTO_CTL_PEER_ADD ? "added" : "removed");
        cli_json_str(&j, argv[1]);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
    } else if (!ctx->quiet) {
        printf("%s %s\n", type == PROTO_CTL_PEER_ADD ? "added" : "removed", argv[1]);
    }
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}
