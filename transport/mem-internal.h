/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_MEM_INTERNAL_H
#define NVX_TP_MEM_INTERNAL_H
/*
 * Internals of the in-memory link, shared by mem-sim.c (the simulated
 * network: event heap, clock, links with delay/loss, per-direction queues,
 * the world) and mem.c (the tp_ops adapter on top of it). Not installed;
 * callers use transport/mem.h. Everything here runs on the world's loop
 * thread.
 */
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "transport/internal.h"
#include "transport/mem.h"

enum ev_type {
    EV_SEG,        /* segment (or FIN) arrives at seg->dst */
    EV_CREDIT,     /* receiver consumed len bytes: window credit reaches conn */
    EV_PUMP,       /* conn's wire is free again */
    EV_DRAIN,      /* conn resumed reading: deliver what waited */
    EV_SEND_DONE,  /* a send request finished */
    EV_SYN,        /* a dial reaches the listening endpoint */
    EV_CONNECTED,  /* the dialler learns the outcome */
    EV_CLOSE_DONE, /* conn's close callback is due */
    EV_LCLOSE,     /* listener's close callback is due */
    _EV_TYPE_MAX,
};

typedef struct mem_conn mem_conn;

typedef struct event {
    uint64_t t;   /* simulated ns */
    uint64_t seq; /* tie-break: scheduling order */
    enum ev_type type;
    int status;
    size_t len;
    void *obj; /* mem_conn, mem_req, seg or mem_listener */
} event;

typedef struct seg {
    event ev;
    struct seg *next; /* receiver's queue */
    mem_conn *src;    /* referenced: gets the window credit */
    mem_conn *dst;    /* referenced */
    int fin;
    size_t len;
    uint8_t data[];
} seg;

typedef struct mem_req {
    event done;
    struct mem_req *next;
    mem_conn *conn;
    tp_send_cb cb;
    void *arg;
    size_t total;
    size_t left; /* bytes not yet on the wire */
    unsigned nbufs, bi;
    size_t boff;
    tp_buf bufs[];
} mem_req;

/* Link parameters in the units the simulation uses. */
typedef struct link_params {
    uint64_t lat_ns;
    uint64_t rto_ns;
    uint64_t bandwidth;
    uint32_t loss_ppm;
    size_t mtu;
    size_t window;
} link_params;

typedef struct link_override {
    struct link_override *next;
    char a[TP_MEM_NAME_MAX], b[TP_MEM_NAME_MAX];
    struct tp_mem_link link;
} link_override;

typedef struct mem_node {
    tp_net base;
    tp_mem_world *world;
    struct mem_node *next;
    uint32_t dials;
    char name[TP_MEM_NAME_MAX];
} mem_node;

typedef struct mem_listener {
    tp_listener base;
    tp_mem_world *world;
    mem_node *node;
    struct mem_listener *next; /* world's endpoint list */
    event close_ev;
    char name[TP_MEM_NAME_MAX];
} mem_listener;

struct mem_conn {
    tp_conn base;
    tp_mem_world *world;
    unsigned refs;
    mem_conn *peer; /* not a reference; cleared when either side is freed */
    link_params p;
    uint64_t rng;

    /* Dialling. */
    int connect_reported;
    event syn_ev;
    event connected_ev;

    /* Sending direction (this side → peer). */
    mem_req *txq, *txq_tail;
    size_t queued;         /* bytes of requests whose callback has not run */
    size_t inflight;       /* on the wire or unread at the peer */
    uint64_t wire_free;    /* when the wire can take the next segment */
    uint64_t last_arrival; /* in-order delivery floor */
    event pump_ev;
    int pump_scheduled;
    uint64_t last_done; /* latest send completion time scheduled */

    /* Receiving direction. */
    seg *rxq, *rxq_tail;
    event drain_ev;
    int drain_scheduled;

    event close_ev;
    char local[TP_ADDR_MAX];
    char remote[TP_ADDR_MAX];
};

struct tp_mem_world {
    uv_loop_t *loop;
    uv_timer_t timer;
    uint64_t armed_ms; /* absolute uv_now() the timer is due at; 0 = unarmed */
    uint64_t now;      /* simulated ns */
    int dispatching;
    uint64_t seed;
    struct tp_mem_link defaults;
    link_override *overrides;
    mem_node *nodes;
    mem_listener *endpoints;
    event **heap;
    size_t n_heap, cap_heap;
    uint64_t next_seq;
    struct tp_mem_stats stats;
};

/* --- random numbers (splitmix64: tiny, seedable, good enough for loss) --- */

static inline uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t
hash_str(uint64_t h, const char *s)
{
    /* FNV-1a, then mixed by the caller's splitmix64. */
    h ^= 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* --- the simulation, for the adapter (defined in mem-sim.c) --- */

/* The world's clock in simulated ns: exact inside event dispatch, else the
 * loop's time. */
uint64_t tp__mem_now(tp_mem_world *w);

/* Arms the world's timer for the earliest event (stops it when none). Call
 * after scheduling from outside event dispatch. */
void tp__mem_arm_timer(tp_mem_world *w);

/* Schedules e (type, obj) at simulated time t. Aborts when the heap cannot
 * grow (test code only). The event must live until it is dispatched. */
void tp__mem_schedule(tp_mem_world *w, event *e, enum ev_type type, uint64_t t, void *obj);

/* Takes one reference on c; each event that points at c holds one. */
void tp__mem_conn_ref(mem_conn *c);

/* Puts c's queued bytes on the wire while the wire is free and the window
 * open; schedules itself again when the wire frees up. */
void tp__mem_pump(mem_conn *c);

/* Pops c's head send request and schedules its callback at t with status. */
void tp__mem_finish_req(mem_conn *c, uint64_t t, int status);

/* Drops every segment waiting at c, returning window credit to senders. */
void tp__mem_drop_rx(mem_conn *c);

/* 1 if s is a valid node or endpoint name (1..TP_MEM_NAME_MAX-1 bytes of
 * [A-Za-z0-9._-]), else 0. */
int tp__mem_valid_name(const char *s);

/* The parameters of the link between nodes a and b: their override, else
 * the world's defaults, in the simulation's units. */
void tp__mem_resolve_link(const tp_mem_world *w, const char *a, const char *b, link_params *ret);

/* The open listener named name, or NULL. */
mem_listener *tp__mem_find_endpoint(tp_mem_world *w, const char *name);

/* A new connection on node holding the user's reference, or NULL. */
mem_conn *tp__mem_conn_new(mem_node *node);

#endif
