/* SPDX-License-Identifier: MIT */
/*
 * Configured peers (daemon/node.h): the list the node keeps dialing with
 * backoff (node.c's tick dials them), and its copy in the store's peers
 * db, written on the pool. Loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/node-internal.h"

static const char peer_key_prefix[] = "addr/";

struct peer_job {
    uv_work_t w;
    nvx_node *n;
    char addr[NVX_ADDR_LEN];
    bool add;
};

static void
peer_job_work(uv_work_t *w)
{
    struct peer_job *j = (struct peer_job *)w;
    char key[NVX_ADDR_LEN + 8];
    int kl = snprintf(key, sizeof(key), "%s%s", peer_key_prefix, j->addr);
    int r = j->add ? cas_store_peer_put(j->n->store, key, (size_t)kl, "tcp", 3)
                   : cas_store_peer_del(j->n->store, key, (size_t)kl);
    if (r < 0 && r != -ENOENT)
        log_error_errno(r, "cannot %s peer %s in the store", j->add ? "save" : "remove", j->addr);
}

static void
peer_job_done(uv_work_t *w, int status)
{
    struct peer_job *j = (struct peer_job *)w;
    nvx_node *n = j->n;
    free(j);
    n->jobs--;
    nvx__node_maybe_stopped(n);
}

static void
persist_peer(nvx_node *n, const char *addr, bool add)
{
    struct peer_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->n = n;
    snprintf(j->addr, sizeof(j->addr), "%s", addr);
    j->add = add;
    if (uv_queue_work(n->loop, &j->w, peer_job_work, peer_job_done) == 0)
        n->jobs++;
    else
        free(j);
}

static bool
addr_valid(const char *addr)
{
    size_t l = strlen(addr);
    if (l == 0 || l >= PROTO_ADDR_MAX)
        return false;
    for (size_t i = 0; i < l; i++)
        if (addr[i] <= 0x20 || addr[i] >= 0x7f)
            return false;
    return true;
}

int
nvx_node_peer_add(nvx_node *n, const char *addr, bool persist)
{
    if (!addr_valid(addr))
        return -EINVAL;
    for (struct cfg_peer *cp = n->cfg_peers; cp; cp = cp->next)
        if (strcmp(cp->addr, addr) == 0)
            return -EEXIST;
    struct cfg_peer *cp = calloc(1, sizeof(*cp));
    if (!cp)
        return -ENOMEM;
    snprintf(cp->addr, sizeof(cp->addr), "%s", addr);
    cp->backoff_ms = NVX_NODE_DIAL_BACKOFF_MIN_MS;
    cp->next_dial_ms = 0; /* next tick */
    cp->next = n->cfg_peers;
    n->cfg_peers = cp;
    if (persist)
        persist_peer(n, addr, true);
    return 0;
}

int
nvx_node_peer_rm(nvx_node *n, const char *addr)
{
    for (struct cfg_peer **pp = &n->cfg_peers; *pp; pp = &(*pp)->next) {
        struct cfg_peer *cp = *pp;
        if (strcmp(cp->addr, addr) != 0)
            continue;
        *pp = cp->next;
        if (cp->conn) {
            nvx_peer *p = cp->conn;
            p->cfg = NULL;
            nvx__peer_close(p, PROTO_BYE_NORMAL, "peer removed");
        }
        free(cp);
        persist_peer(n, addr, false);
        return 0;
    }
    /* Not dialing it now, but it may still sit in the db. */
    persist_peer(n, addr, false);
    return -ENOENT;
}

void
nvx_node_peer_list(nvx_node *n, void (*cb)(void *arg, const char *addr), void *arg)
{
    for (struct cfg_peer *cp = n->cfg_peers; cp; cp = cp->next)
        cb(arg, cp->addr);
}

static int
load_peer(void *userdata, const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len)
{
    nvx_node *n = userdata;
    size_t pl = sizeof(peer_key_prefix) - 1;
    if (key_len <= pl || key_len - pl >= NVX_ADDR_LEN || memcmp(key, peer_key_prefix, pl) != 0)
        return 0;
    char addr[NVX_ADDR_LEN];
    memcpy(addr, key + pl, key_len - pl);
    addr[key_len - pl] = '\0';
    int r = nvx_node_peer_add(n, addr, false);
    if (r < 0 && r != -EEXIST)
        log_warn("ignoring stored peer: %s", nvx_strerror(r));
    return 0;
}

void
nvx__cfg_peers_load(nvx_node *n)
{
    /* The peers db is small; reading it once at start-up on the loop is fine. */
    int r = cas_store_peer_list(n->store, load_peer, n);
    if (r < 0)
        log_warn_errno(r, "cannot read the stored peers");
}
