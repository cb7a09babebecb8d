/* SPDX-License-Identifier: MIT */
/*
 * nvx ticket ID|NAME: one string that lets someone else fetch the model
 * from this node (proto/ticket.h): the model id, this node's id, the
 * publisher's key when a trusted signature is attached, and up to four
 * addresses, the router's mapped one first (nvxd's STATUS, REACH nest).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon-client.h"
#include "cli/store.h"
#include "libcas/sig.h"
#include "libcas/store.h"
#include "proto/ticket.h"

int cli_ticket_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_ticket = {
    .name = "ticket",
    .main = cli_ticket_main,
    .usage = "ticket ID|NAME",
    .summary = "Print a ticket (nvx1...) that `nvx fetch TICKET` on another node takes (needs "
               "nvxd)",
};

/* The first attached signature whose key the keyring holds: attached ones
 * were verified under that key when they were attached. */
static int
pick_publisher(void *userdata, const void *blob, size_t len)
{
    void **a = userdata;
    proto_ticket *t = a[0];
    cas_store *s = a[1];
    cas_sig_info info;
    if (t->has_publisher || cas_sig_parse(blob, len, &info) < 0)
        return 0;
    uint8_t *kblob = NULL;
    size_t klen = 0;
    cas_pubkey pk;
    if (cas_store_key_get(s, info.keyid, CAS_KEYID_LEN, &kblob, &klen, NULL) == 0 &&
        cas_pubkey_decode(kblob, klen, &pk) == 0) {
        memcpy(t->publisher, pk.keyid, CAS_KEYID_LEN);
        memcpy(t->publisher + CAS_KEYID_LEN, pk.pk, 32);
        t->has_publisher = true;
    }
    free(kblob);
    return 0;
}

/* An address worth giving out: a host others can dial (not 0.0.0.0, [::]
 * or the loopback, unless this node listens on the loopback only: then a
 * ticket for another node on this machine still works). */
static bool
dialable(const char *a, bool loopback_ok)
{
    char host[PROTO_TICKET_ADDR_MAX + 1];
    const char *colon = strrchr(a, ':');
    size_t len = colon ? (size_t)(colon - a) : 0;
    if (!colon || len == 0 || len >= sizeof(host) || !colon[1])
        return false;
    if (a[0] == '[' && a[len - 1] == ']') { /* [v6]:port */
        memcpy(host, a + 1, len - 2);
        host[len - 2] = '\0';
        struct in6_addr v6;
        if (inet_pton(AF_INET6, host, &v6) != 1)
            return false;
        return !IN6_IS_ADDR_UNSPECIFIED(&v6) && (loopback_ok || !IN6_IS_ADDR_LOOPBACK(&v6));
    }
    memcpy(host, a, len);
    host[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) != 1)
        return true; /* a host name: the receiver resolves it */
    uint32_t ip = ntohl(v4.s_addr);
    return ip != 0 && (loopback_ok || ip >> 24 != 127);
}

static void
add_addr(proto_ticket *t, const uint8_t *p, size_t len, bool loopback_ok)
{
    char a[PROTO_TICKET_ADDR_MAX + 1];
    if (t->n_addrs == PROTO_TICKET_ADDRS_MAX || len > PROTO_TICKET_ADDR_MAX)
        return;
    memcpy(a, p, len);
    a[len] = '\0';
    for (size_t i = 0; i < t->n_addrs; i++)
        if (strcmp(t->addrs[i], a) == 0)
            return;
    if (dialable(a, loopback_ok))
        memcpy(t->addrs[t->n_addrs++], a, len + 1);
}

int
cli_ticket_main(cli_ctx *ctx, int argc, char **argv)
{
    int npos, r = cli_parse(ctx, &cli_cmd_ticket, NULL, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_ticket, npos, 1, 1)) != CLI_GO)
        return r;
    proto_ticket t;
    memset(&t, 0, sizeof(t));
    if ((r = cli_resolve(ctx, argv[0], t.model_id)) != CLI_GO)
        return r;
    cas_store *s;
    if ((r = cli_store_open(ctx, CLI_STORE_EXISTING, &s)) != CLI_GO)
        return r;
    void *arg[2] = { &t, s };
    (void)cas_store_sig_list(s, t.model_id, pick_publisher, arg);

    cli_daemon *d = NULL;
    proto_ctl_msg *m = NULL, *x = malloc(sizeof(*x));
    if (!x)
        return cli_fail(CLI_EXIT_FAIL, "out of memory: close other programs");
    if ((r = cli_daemon_request(ctx, PROTO_CTL_STATUS, NULL, NULL, &d, &m)) != CLI_GO)
        goto out;
    const uint8_t *node;
    if (proto_ctl_get_id(m, PROTO_CTL_T_NODE_ID, &node)) {
        memcpy(t.node_id, node, 32);
        t.has_node = true;
    }
    /* REACH lists the mapped or public address first, then the listening
     * ones; the top-level ADDR is the listener. */
    const proto_ctl_field *f = proto_ctl_find(m, PROTO_CTL_T_REACH);
    if (f && proto_ctl_nest_decode(f, x) == 0)
        for (const proto_ctl_field *a = proto_ctl_find(x, PROTO_CTL_T_ADDR); a;
             a = proto_ctl_next(x, a))
            add_addr(&t, a->p, a->len, false);
    for (const proto_ctl_field *a = proto_ctl_find(m, PROTO_CTL_T_ADDR); a && t.n_addrs == 0;
         a = proto_ctl_next(m, a))
        add_addr(&t, a->p, a->len, true);
    if (t.n_addrs == 0) {
        r = cli_fail(CLI_EXIT_FAIL,
                     "nvxd has no address to give out: start it with --listen HOST:PORT");
        goto out;
    }
    char text[PROTO_TICKET_TEXT_MAX + 1];
    r = proto_ticket_encode(&t, text, sizeof(text));
    if (r < 0) {
        r = cli_fail_errno(r, "check nvxd's listen address", "cannot make the ticket");
        goto out;
    }
    printf("%s\n", text);
    r = CLI_EXIT_OK;
out:
    cli_daemon_done(d, m);
    free(x);
    return r;
}
