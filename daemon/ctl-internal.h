/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_CTL_INTERNAL_H
#define NVX_DAEMON_CTL_INTERNAL_H
/*
 * The control socket's parts (daemon/ctl.h): clients and their responses
 * (ctl-client.c), FETCH, PUBLISH and DHT_GET (ctl-fetch.c), the socket,
 * STATUS and the small requests (ctl.c). Calls go ctl.c -> ctl-fetch.c ->
 * ctl-client.c, never back (tests/daemon/check-calls.py). Loop thread.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon/ctl.h"
#include "daemon/dht-fetch.h"
#include "proto/control.h"

struct client;

struct csub {
    struct client *cl;
    nvx_fetch_sub *sub;
    uint32_t req_id;
    uint64_t timeout_s; /* for the message when no peer has the model */
    bool dht_want;      /* the DHT looks for providers of model until the fetch ends */
    uint8_t model[32];
};

struct client {
    uv_pipe_t pipe;
    nvx_ctl *ctl;
    struct client *prev, *next;
    proto_ctl_reader rd;
    struct csub subs[NVX_CTL_SUBS_MAX];
    unsigned jobs; /* status queries on the pool */
    bool closing, handle_closed;
};

struct nvx_ctl {
    uv_pipe_t server;
    uv_loop_t *loop;
    nvx_node *node;
    cas_store *store;
    nvx_mesh *mesh;
    nvx_natmap *natmap;
    nvx_dhtuv *dht;
    nvx_dhtfetch *dhtf; /* with dht */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char agent[PROTO_AGENT_MAX + 1];
    struct client *clients;
    size_t n_clients;
    uint64_t started_ms;
    bool server_closed;
    bool group_set;
    gid_t group;
    void (*on_shutdown)(void *);
    void *arg;
    void (*done)(void *);
    void *done_arg;
};

/* ctl-client.c */
/* Sends a finished frame (takes buf); close_after closes the client once
 * written, shutdown_after then calls on_shutdown. */
void nvx__ctl_client_send(struct client *cl, uint8_t *buf, size_t len, bool close_after,
                          bool shutdown_after);
void nvx__ctl_send_error(struct client *cl, uint32_t id, int code, const char *msg,
                         bool close_after);
/* Finishes w and sends it (an ERROR when it does not encode). */
void nvx__ctl_send_writer(struct client *cl, proto_ctl_writer *w, uint32_t id);
void nvx__ctl_send_ok(struct client *cl, uint32_t id);
/* Closes cl: its fetches are unsubscribed; it is freed once its handle is
 * closed and its jobs (cl->jobs) are done. */
void nvx__ctl_client_close(struct client *cl);
/* The fetch of cs ended or its client went: the DHT stops looking for
 * its providers. */
void nvx__ctl_sub_unwant(nvx_ctl *c, struct csub *cs);
/* A job of cl ended (after cl->jobs--): frees a closed client. */
void nvx__ctl_client_put(struct client *cl);
/* Frees c and calls its done callback once the server and clients closed. */
void nvx__ctl_maybe_done(nvx_ctl *c);

/* ctl-fetch.c */
void nvx__ctl_fetch(struct client *cl, const proto_ctl_msg *m);
void nvx__ctl_publish(struct client *cl, const proto_ctl_msg *m);
void nvx__ctl_dht_get(struct client *cl, const proto_ctl_msg *m);

#endif
