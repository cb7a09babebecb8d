/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_DAEMON_CLIENT_H
#define NVX_CLI_DAEMON_CLIENT_H
/*
 * Talking to the nvxd that serves ctx->store_dir over its control socket
 * STORE/nvxd.sock (proto/control.h). Blocking I/O; one request at a time.
 *
 * Functions returning int follow cli_parse(): CLI_GO on success, else an
 * error line was printed and the value is the exit code.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"
#include "proto/control.h"

typedef struct cli_daemon {
    int fd;
    uint32_t next_id;
    proto_ctl_reader rd;
    uint8_t buf[64 * 1024];
    size_t len, off; /* unread bytes in buf */
    char path[4096];
} cli_daemon;

/* Connects. With no daemon listening prints
 * "nvx: no nvxd serves STORE: start it with `nvxd --store STORE`". */
int cli_daemon_connect(cli_ctx *ctx, cli_daemon *d);

void cli_daemon_close(cli_daemon *d);

/* Whether an nvxd accepts connections on ctx's control socket now; prints
 * nothing (for commands that choose what to say without one). */
bool cli_daemon_running(cli_ctx *ctx);

/* Finishes w (a request started with proto_ctl_writer_init(w, type,
 * cli_daemon_next_id(d))) and sends it. Returns 0 or a negative errno. */
int cli_daemon_send(cli_daemon *d, proto_ctl_writer *w);

uint32_t cli_daemon_next_id(cli_daemon *d);

/* Reads the next message into *m (borrowing d's buffers: valid until the
 * next call). Returns 0, -EINTR (a signal arrived; call again or give up),
 * -ECONNRESET (the daemon went away), -EBADMSG. */
int cli_daemon_recv(cli_daemon *d, proto_ctl_msg *m);

/* Sends w and waits for its OK (PROGRESS events are skipped). On ERROR
 * prints "nvx: <daemon's message>: <hint>" and returns the exit code. */
int cli_daemon_call(cli_daemon *d, proto_ctl_writer *w, proto_ctl_msg *resp, const char *hint);

/* The common shape of a one-shot request: allocates a connection and a
 * message, connects, sends `type` (with an ADDR field when addr is not
 * NULL) and waits for the OK into *ret_m. Returns CLI_GO, or the exit code
 * after printing the error line. Release both with cli_daemon_done(), also
 * after a failure. */
int cli_daemon_request(cli_ctx *ctx, uint8_t type, const char *addr, const char *hint,
                       cli_daemon **ret_d, proto_ctl_msg **ret_m);
void cli_daemon_done(cli_daemon *d, proto_ctl_msg *m);

/* Prints an ERROR response as a failure line; returns the exit code. */
int cli_daemon_fail(const proto_ctl_msg *m, const char *hint);

/* Prints the PEER nests of m: one line each on stdout, or a JSON array
 * value on j when j is non-NULL. Returns how many. */
#include "cli/json.h"
size_t cli_daemon_print_peers(const proto_ctl_msg *m, cli_json *j);

/* Formats an ID field as 64 hex characters into buf ("" when absent). */
void cli_daemon_hex(const proto_ctl_msg *m, uint8_t tag, char buf[static 65]);

/* Name of a transfer state ("fetching"). */
const char *cli_daemon_state_name(uint64_t state);

#endif
