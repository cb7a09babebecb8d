/* SPDX-License-Identifier: MIT */
/*
 * nvx peers: the peers nvxd is connected to.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/json.h"

int cli_peers_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_peers = {
    .name = "peers",
    .main = cli_peers_main,
    .usage = "peers",
    .summary = "List the peers the node is connected to (needs nvxd)",
};

int
cli_peers_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_peers, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_peers, npos, 0, 0)) != CLI_GO)
        return r;
    cli_daemon *d;
    proto_ctl_msg *m;
    if ((r = cli_daemon_request(ctx, PROTO_CTL_PEERS, NULL, NULL, &d, &m)) != CLI_GO)
        goto out;
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_key(&j, "peers");
        cli_daemon_print_peers(m, &j);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
    } else if (cli_daemon_print_peers(m, NULL) == 0 && !ctx->quiet) {
        printf("no peers connected\n");
    }
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    return r;
}
