/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_SESSUTIL_H
#define NVX_TESTS_SESSUTIL_H
/*
 * Two proto sessions wired back to back in memory, for the session tests
 * (test-session-handshake.c, test-session-record.c): each side's output is
 * fed to the other and its events are logged. Test-only code: it fails the
 * running cmocka test on errors and may abort on allocation failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/session.h"

typedef struct st_evlog {
    int handshakes;
    int messages;
    uint8_t last_type;
    uint8_t *last_body; /* malloc'd copy */
    size_t last_len;
} st_evlog;

typedef struct st_node {
    proto_identity *id;
    proto_session *s;
    st_evlog log;
} st_node;

/* The two addresses the initiator advertises in its hello. */
extern const char *const st_addrs_a[2];

/* Frees the logged body and zeroes l. */
void st_evlog_clear(st_evlog *l);

/* Feeds len bytes to s in pieces of step (0 = at once); records events.
 * Returns the first error or 0. */
int st_deliver(proto_session *s, const uint8_t *buf, size_t len, size_t step, uint64_t now,
               st_evlog *log);

/* Moves all queued output of `from` into `to`. Returns the receiver's first
 * error, else the number of frames moved. */
int st_pump(st_node *from, st_node *to, size_t step);

/* Runs the handshake to quiescence; returns the first error or 0. */
int st_run(st_node *a, st_node *b, size_t step);

/* A node with the identity from seed_byte; the initiator advertises
 * st_addrs_a. pin, if not NULL, is the expected peer id. */
void st_node_init(st_node *n, uint8_t seed_byte, bool initiator, uint8_t pref, const uint8_t *pin);
void st_node_free(st_node *n);

/* Initiator i (seed 1) and responder r (seed 2), not yet run. */
void st_pair(st_node *i, st_node *r, uint8_t pref_i, uint8_t pref_r);

/* Sends a message from a to b and checks it arrives intact. */
void st_exchange(st_node *a, st_node *b, uint8_t type, size_t len, uint64_t seed);

/* Checks both sides finished one handshake with cipher and agree on it. */
void st_check_established(st_node *i, st_node *r, int cipher);

/* A few messages of each kind both ways, up to PROTO_MSG_MAX. */
void st_traffic(st_node *i, st_node *r);

/* An established pair (st_pair + st_run) with cipher preference pref. */
void st_established(st_node *i, st_node *r, uint8_t pref);

/* Queues one message from `from` and takes its frame without delivering it. */
void st_capture(st_node *from, uint8_t type, const void *body, size_t len, uint8_t **ret,
                size_t *ret_len);

#endif
