/* SPDX-License-Identifier: MIT */
#ifndef NVX_TP_FAULT_H
#define NVX_TP_FAULT_H
/*
 * Fault-injecting links: a tp_net that wraps another one (TCP or mem) and
 * passes every call through, until a test tells it to break a connection
 * the way real networks break: a send that fails, a reset, a half-closed
 * stream, a link that stalls without a word, late bytes, a refused dial, a
 * close that takes long. The code above sees only transport/tp.h, so the
 * same node code that runs on TCP meets every fault (issue 9, item 1).
 *
 * A fault is applied to a connection either now (tp_fault_inject: every
 * open connection whose remote address starts with a prefix) or at a chosen
 * operation (tp_fault_arm: the after+1-th send, delivery, dial or close of a
 * matching connection, counted from arming; each armed rule fires once).
 * What each kind does to the connection it hits:
 *
 *   SEND_FAIL     the next tp_send() fails at once with -EPIPE; the stream
 *                 then ends with -EPIPE (from the loop).
 *   SEND_ERROR    the next tp_send() is taken, its callback gets
 *                 -ECONNRESET, and the stream ends with -ECONNRESET: a
 *                 write error the kernel reports late.
 *   RECV_ERROR    the next bytes that arrive are dropped and the stream
 *                 ends with -EIO: a read error.
 *   RESET         at once: unread bytes are dropped, the stream ends with
 *                 -ECONNRESET, sends fail with -EPIPE; the far side sees
 *                 its stream end (the wrapped link is closed).
 *   HALF_CLOSE    the far side's direction ends in order (status 0); this
 *                 side may still send.
 *   STALL         nothing moves any more and nobody says so: arriving bytes
 *                 are not delivered (reading stops, so the far side's sends
 *                 back up), sends are taken but never finish until
 *                 tp_close() cancels them.
 *   DELAY         every later delivery (bytes and the end) comes delay_ms
 *                 late, in order.
 *   CONNECT_FAIL  a dial (only with TP_FAULT_AT_DIAL) finishes with
 *                 -ECONNREFUSED.
 *   CLOSE_SLOW    tp_close()'s callback comes delay_ms late.
 *
 * Callbacks always run from the loop, never from inside the call that
 * registered them (tp.h's rule), also when a fault decides the outcome.
 * Threading: the loop's thread only. Test infrastructure, but built with
 * the transport so that any program can use it.
 */
#include <stdint.h>

#include "transport/tp.h"

enum tp_fault_kind {
    TP_FAULT_SEND_FAIL = 1,
    TP_FAULT_SEND_ERROR,
    TP_FAULT_RECV_ERROR,
    TP_FAULT_RESET,
    TP_FAULT_HALF_CLOSE,
    TP_FAULT_STALL,
    TP_FAULT_DELAY,
    TP_FAULT_CONNECT_FAIL,
    TP_FAULT_CLOSE_SLOW,
    _TP_FAULT_KIND_MAX,
};

/* When an armed rule fires. */
enum tp_fault_at {
    TP_FAULT_AT_SEND = 1, /* at a tp_send() */
    TP_FAULT_AT_RECV,     /* at a delivery of received bytes */
    TP_FAULT_AT_DIAL,     /* at a tp_dial() (its remote is the dialled address) */
    TP_FAULT_AT_CLOSE,    /* at a tp_close() (CLOSE_SLOW) */
    _TP_FAULT_AT_MAX,
};

enum {
    TP_FAULT_RULES_MAX = 32, /* armed rules per net */
    TP_FAULT_DELAY_MAX_MS = 600000,
};

typedef struct tp_fault_rule {
    enum tp_fault_kind kind;
    enum tp_fault_at at;
    uint64_t after;           /* matching operations to let through first */
    uint32_t delay_ms;        /* DELAY, CLOSE_SLOW */
    char remote[TP_ADDR_MAX]; /* remote address prefix; "" matches every connection */
} tp_fault_rule;

/* Wraps inner (which the new net then owns: tp_net_free() of the wrapper
 * frees it too). Listeners and connections of the wrapper use inner's
 * addresses. Returns 0, -EINVAL or -ENOMEM. */
int tp_fault_net_new(tp_net *inner, tp_net **ret);

/* Arms a rule on a net made by tp_fault_net_new(). Returns 0, -EINVAL (not a
 * fault net, kind or at out of range, CONNECT_FAIL not at a dial, delay over
 * TP_FAULT_DELAY_MAX_MS) or -ENOSPC (TP_FAULT_RULES_MAX armed). */
int tp_fault_arm(tp_net *net, const tp_fault_rule *rule);

/* Drops every armed rule that has not fired. */
void tp_fault_disarm(tp_net *net);

/* Applies kind now to every open, connected connection of net whose remote
 * address starts with remote ("" or NULL: all). Returns how many it hit, or
 * -EINVAL (not a fault net, CONNECT_FAIL, bad delay). */
int tp_fault_inject(tp_net *net, const char *remote, enum tp_fault_kind kind, uint32_t delay_ms);

/* Faults applied so far (injected or fired), for a test to check that its
 * fault really happened. */
uint64_t tp_fault_count(const tp_net *net);

#endif
