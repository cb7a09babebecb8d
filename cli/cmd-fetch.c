/* SPDX-License-Identifier: MIT */
/*
 * nvx fetch ID|PUBLISHER/NAME [--pin|--no-pin] [--rate RATE]: asks nvxd to
 * fetch a model from its
 * peers and shows the progress as a live line on a terminal. With --json it
 * prints one JSON document when the fetch ends, like every other command (a
 * script that wants progress polls `nvx status --json`). Ctrl-C stops
 * waiting; closing the control connection makes nvxd cancel the transfer
 * and keep a resumable partial.
 *
 * Policy (README "Keeping models"): a fetched model is kept unless
 * --no-pin: plain gc leaves it and nvxd seeds it (its default serve policy
 * shares pinned and kept models) until the user unpins or removes it, or
 * the store quota (max-store-bytes) needs the space; someone who fetched
 * a model expects to still have it, and a swarm needs the nodes that
 * fetched to seed, but a quota the user set must still hold. --pin pins it
 * (never evicted), done here through the store once nvxd reports it
 * complete. --rate limits this fetch's download (nvxd's download-rate
 * applies too). A
 * fetch by PUBLISHER/NAME also keeps that name as a local name, so every
 * local command (run, info, export) takes it.
 *
 * nvx fetch TICKET (proto/ticket.h, from `nvx ticket` on another node):
 * nvxd dials the ticket's addresses, pinned to its node id, then fetches
 * its model id.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd-publish.h"
#include "cli/daemon-client.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/store.h"
#include "libcas/hash.h"
#include "libcas/namerec.h"
#include "libcas/sig.h"
#include "libcas/store.h"
#include "proto/ticket.h"

int cli_fetch_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_fetch = {
    .name = "fetch",
    .main = cli_fetch_main,
    .usage = "fetch ID|PUBLISHER/NAME|TICKET [--pin|--no-pin] [--rate RATE] [--allow-untrusted] "
             "[--timeout SECONDS]",
    .summary = "Fetch a model by id, signed name or ticket from the node's peers (needs nvxd)",
};

static volatile sig_atomic_t interrupted;

/* The ticket names the publisher's key: say how to check the signature
 * that came with the model (the key is only a name until it is trusted). */
static void
publisher_note(const proto_ticket *t)
{
    cas_pubkey pk;
    char kid[CAS_KEYID_HEX_SIZE], b64[CAS_PUBKEY_B64_SIZE];
    memcpy(pk.keyid, t->publisher, CAS_KEYID_LEN);
    memcpy(pk.pk, t->publisher + CAS_KEYID_LEN, CAS_PK_LEN);
    cas_keyid_format(pk.keyid, kid);
    cas_pubkey_base64(&pk, b64);
    fprintf(stderr,
            "nvx: the ticket names publisher key %s (%s): trust it (nvx trust add) and "
            "run nvx verify --require-trusted to check its signature\n",
            kid, b64);
}

static void
on_sigint(int sig)
{
    interrupted = 1;
}

static void
draw(const proto_ctl_progress *p, bool *drawn)
{
    char b1[16], b2[16], b3[16];
    fprintf(stderr, "\r\033[K%-9s %s / %s  %s/s  %llu peer%s", cli_daemon_state_name(p->state),
            cli_fmt_bytes(p->bytes_done, b1), cli_fmt_bytes(p->bytes_total, b2),
            cli_fmt_bytes(p->rate, b3), (unsigned long long)p->peer_count,
            p->peer_count == 1 ? "" : "s");
    if (p->rate > 0 && p->bytes_total > p->bytes_done) {
        uint64_t eta = (p->bytes_total - p->bytes_done) / p->rate;
        fprintf(stderr, "  ETA %llu:%02llu", (unsigned long long)(eta / 60),
                (unsigned long long)(eta % 60));
    }
    fflush(stderr);
    *drawn = true;
}

/* After a fetch by PUBLISHER/NAME: the name becomes a local name of the
 * model. It follows the publisher: when it named an older model (the
 * publisher moved it), it moves, and the user is told. */
static int
keep_name(cli_ctx *ctx, const char *name, const char *hex)
{
    uint8_t id[CAS_HASH_LEN], had[CAS_HASH_LEN];
    cas_store *s;
    int r = cli_store_open(ctx, CLI_STORE_EXISTING, &s);
    if (r != CLI_GO)
        return r;
    if (cas_hash_from_hex(hex, id) < 0)
        return cli_fail(CLI_EXIT_FAIL, "nvxd answered a bad model id: check nvxd's version");
    bool moved = cas_store_name_get(s, name, had) == 0 && memcmp(had, id, CAS_HASH_LEN) != 0;
    r = cas_store_name_set(s, name, id);
    if (r < 0)
        return cli_fail_errno(r, "nvx tag the model by hand", "fetched %s but cannot name it %s",
                              hex, name);
    if (moved) {
        char old[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(had, old);
        cli_warn("the name %s moved from %.16s to %.16s", name, old, hex);
    }
    return CLI_GO;
}

/* Once nvxd says the model is complete: nvx fetch --pin pins it (the
 * control socket asks nvxd only to keep it), and *ret says what the store
 * holds (a model pinned before stays pinned, not kept); left as the
 * request said when the store cannot be read. */
static int
pin_model(cli_ctx *ctx, const char *hex, bool pin, cas_model_info *ret)
{
    uint8_t id[CAS_HASH_LEN];
    cas_store *s;
    int r = cli_store_open(ctx, CLI_STORE_EXISTING, &s);
    if (r != CLI_GO)
        return r;
    if (cas_hash_from_hex(hex, id) < 0)
        return cli_fail(CLI_EXIT_FAIL, "nvxd answered a bad model id: check nvxd's version");
    r = pin ? cas_store_pin(s, id) : 0;
    if (r < 0)
        return cli_fail_errno(r, "run nvx pin by hand", "fetched %s but cannot pin it", hex);
    (void)cas_store_model_info(s, id, ret);
    return CLI_GO;
}

int
cli_fetch_main(cli_ctx *ctx, int argc, char **argv)
{
    bool pin = false, no_pin = false, allow_untrusted = false, timeout_seen = false;
    uint64_t timeout_s = 0, rate = 0;
    const cli_opt opts[] = {
        { .lname = "allow-untrusted",
          .type = CLI_OPT_FLAG,
          .dest = &allow_untrusted,
          .help = "follow a name record signed by a key not in `nvx trust` (warns)" },
        { .lname = "pin",
          .type = CLI_OPT_FLAG,
          .dest = &pin,
          .help = "pin the model once fetched: the store quota never evicts it (by default "
                  "it is kept: seeded and left by gc until the quota needs the space)" },
        { .lname = "no-pin",
          .type = CLI_OPT_FLAG,
          .dest = &no_pin,
          .help = "neither pin nor keep the model: not seeded, and nvx gc may remove it" },
        { .lname = "rate",
          .type = CLI_OPT_SIZE,
          .dest = &rate,
          .metavar = "RATE",
          .min = 1024,
          .max = (uint64_t)1 << 40,
          .help = "download at most RATE bytes/s (K, M, G suffixes) for this fetch" },
        { .lname = "timeout",
          .type = CLI_OPT_U64,
          .dest = &timeout_s,
          .metavar = "SECONDS",
          .min = 1,
          .max = 7 * 24 * 3600,
          .seen = &timeout_seen,
          .help = "give up when no connected peer has had the model for this long "
                  "(default 60; a partial copy is kept)" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_fetch, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_fetch, npos, 1, 1)) != CLI_GO)
        return r;
    if (pin && no_pin)
        return cli_fail(CLI_EXIT_USAGE, "--pin and --no-pin contradict: give one of them");
    const char *target = argv[0], *local_name = NULL;
    char resolved[CAS_HASH_HEX_LEN + 1];
    proto_ticket *ticket = NULL;
    if (proto_ticket_looks_like(target)) {
        ticket = malloc(sizeof(*ticket));
        if (!ticket)
            return cli_fail(CLI_EXIT_FAIL, "out of memory: close other programs");
        if (proto_ticket_decode(target, strlen(target), ticket) < 0) {
            free(ticket);
            return cli_fail(CLI_EXIT_USAGE, "not a valid ticket (its checksum or layout is "
                                            "wrong): copy the whole nvx1... string again");
        }
        cas_hash_to_hex(ticket->model_id, resolved);
        target = resolved;
    } else if (cas_namerec_is_target(target) && cli_name_dht_candidate(ctx, target)) {
        /* PUBLISHER/NAME with no record here: nvxd resolves it, asking the
         * DHT (BEP 44) when the publisher's key is in the keyring. */
        local_name = target;
    } else if (cas_namerec_is_target(target)) {
        /* PUBLISHER/NAME: resolved here from the records gossip stored, so
         * an untrusted publisher is refused with its own exit code. */
        uint8_t mid[CAS_HASH_LEN];
        if ((r = cli_name_resolve(ctx, target, allow_untrusted, mid)) != CLI_GO)
            return r;
        cas_hash_to_hex(mid, resolved);
        local_name = target;
        target = resolved;
    }
    if (strlen(target) > PROTO_CTL_STR_MAX)
        return cli_fail(CLI_EXIT_USAGE, "model id too long: give the 64-hex-digit id");
    for (const char *p = target; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return cli_fail(CLI_EXIT_USAGE, "bad model id: give the 64-hex-digit id");
    cli_daemon *d = malloc(sizeof(*d));
    proto_ctl_msg *m = malloc(sizeof(*m));
    bool drawn = false;
    if (!d || !m) {
        free(d);
        free(m);
        free(ticket);
        return cli_fail(CLI_EXIT_FAIL, "out of memory: close other programs");
    }
    if ((r = cli_daemon_connect(ctx, d)) != CLI_GO)
        goto out;
    struct sigaction sa = { .sa_handler = on_sigint }; /* no SA_RESTART: read() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint32_t id = cli_daemon_next_id(d);
    proto_ctl_writer w;
    proto_ctl_writer_init(&w, PROTO_CTL_FETCH, id);
    proto_ctl_put_str(&w, PROTO_CTL_T_TARGET, target);
    if (!no_pin)
        proto_ctl_put_bool(&w, PROTO_CTL_T_PIN, true); /* keep it */
    if (rate)
        proto_ctl_put_u64(&w, PROTO_CTL_T_RATE, rate);
    if (allow_untrusted)
        proto_ctl_put_bool(&w, PROTO_CTL_T_UNTRUSTED, true);
    if (timeout_seen)
        proto_ctl_put_u64(&w, PROTO_CTL_T_TIMEOUT_S, timeout_s);
    if (ticket) {
        if (ticket->has_node)
            proto_ctl_put_id(&w, PROTO_CTL_T_NODE_ID, ticket->node_id);
        for (size_t i = 0; i < ticket->n_addrs; i++)
            proto_ctl_put_str(&w, PROTO_CTL_T_ADDR, ticket->addrs[i]);
    }
    r = cli_daemon_send(d, &w);
    if (r < 0) {
        r = cli_fail_errno(r, "check that nvxd is running", "cannot send to nvxd");
        goto out;
    }
    for (;;) {
        if (interrupted) {
            if (drawn)
                fputs("\r\033[K", stderr);
            r = cli_fail(130, "fetch interrupted: run `nvx fetch %s` again to resume", target);
            goto out;
        }
        r = cli_daemon_recv(d, m);
        if (r == -EINTR)
            continue;
        if (r < 0) {
            if (drawn)
                fputs("\r\033[K", stderr);
            r = cli_fail_errno(r, "check nvxd's log", "lost the connection to nvxd");
            goto out;
        }
        if (m->id != id)
            continue;
        if (m->type == PROTO_CTL_PROGRESS) {
            proto_ctl_progress p;
            if (proto_ctl_progress_parse(m, &p) < 0)
                continue;
            if (ctx->progress && !ctx->json)
                draw(&p, &drawn);
            continue;
        }
        if (drawn)
            fputs("\r\033[K", stderr);
        uint64_t chunk;
        if (m->type == PROTO_CTL_ERROR && proto_ctl_get_u64(m, PROTO_CTL_T_CHUNK, &chunk)) {
            /* No provider could serve a chunk: the daemon's message names it
             * and says what to do; peers and the log would not help. */
            uint64_t code = 0;
            proto_str msg = { (const uint8_t *)"error", 5 };
            proto_ctl_get_u64(m, PROTO_CTL_T_CODE, &code);
            proto_ctl_get_str(m, PROTO_CTL_T_MESSAGE, &msg);
            r = cli_fail(cli_exit_code(code > 0 && code < 4096 ? -(int)code : -EIO),
                         "fetch %s: %.*s", target, (int)msg.len, (const char *)msg.p);
            goto out;
        }
        if (m->type == PROTO_CTL_ERROR) {
            r = cli_daemon_fail(m, "check `nvx peers` and nvxd's log");
            goto out;
        }
        if (m->type == PROTO_CTL_OK) {
            char hex[65];
            cli_daemon_hex(m, PROTO_CTL_T_MODEL_ID, hex);
            if (local_name && (r = keep_name(ctx, local_name, hex)) != CLI_GO)
                goto out;
            cas_model_info mi = { .pinned = pin, .kept = !pin && !no_pin };
            if ((r = pin_model(ctx, hex, pin, &mi)) != CLI_GO)
                goto out;
            if (ctx->json) {
                cli_json j;
                cli_json_init(&j, stdout);
                cli_json_obj_begin(&j);
                cli_json_key(&j, "id");
                cli_json_str(&j, hex);
                cli_json_key(&j, "pinned");
                cli_json_bool(&j, mi.pinned);
                cli_json_key(&j, "kept");
                cli_json_bool(&j, mi.kept);
                cli_json_key(&j, "name");
                if (local_name)
                    cli_json_str(&j, local_name);
                else
                    cli_json_null(&j);
                cli_json_obj_end(&j);
                cli_json_finish(&j);
            } else {
                printf("%s\n", hex);
            }
            if (ticket && ticket->has_publisher && !ctx->json)
                publisher_note(ticket);
            r = CLI_EXIT_OK;
            goto out;
        }
    }
out:
    cli_daemon_close(d);
    free(d);
    free(m);
    free(ticket);
    return r;
}
