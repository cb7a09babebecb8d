/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_XFERFAKE_H
#define NVX_TESTS_XFERFAKE_H
/*
 * A recording adapter for the transfer engine (daemon/xfer.h), shared by
 * test-xfer.c (event sequences, one engine) and nothing else: every action
 * is written down for the test to inspect and answer. Messages are kept
 * encoded (proto_msg_encode), so what the engine sends is checked by the
 * real codec, and decoded again on the test's demand.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/xfer.h"

enum {
    XF_BATCHES_MAX = 256
};

typedef struct xf_sent {
    void *peer;
    uint8_t type;
    uint8_t *body;
    size_t len;
    bool taken;
} xf_sent;

typedef struct xf_batch {
    nvx_xfer_chunk *c[NVX_XFER_PUT_BATCH];
    unsigned n;
} xf_batch;

typedef struct xf {
    nvx_xfer *x;
    uint64_t now;
    /* the model: chunk i has chunk_len[i] bytes, byte k = xf_byte(i, k) */
    uint32_t n_chunks;
    uint32_t *chunk_len;
    /* actions */
    xf_sent *sent;
    size_t n_sent, cap_sent;
    uint32_t next_req;
    unsigned opens, commits, finishes;
    uint8_t *manifest; /* the last open's manifest */
    uint32_t mlen;
    xf_batch batches[XF_BATCHES_MAX]; /* store actions not answered yet */
    unsigned n_batches;
    unsigned drops, bads;
    void *dropped; /* the last drop_peer */
    char drop_why[64];
    uint8_t bad_id[32]; /* the last bad_peer */
    bool ended;
} xf;

uint8_t xf_byte(uint32_t chunk, uint32_t off);
/* A fake with a model of n chunks of len bytes (the last one shorter by
 * short_by) and a started engine. */
void xf_init(xf *f, uint32_t n, uint32_t len, uint32_t short_by);
void xf_free(xf *f);
/* Decodes the oldest message of type sent to peer that was not taken yet;
 * false when none. */
bool xf_take(xf *f, void *peer, uint8_t type, proto_msg *m);
/* How many untaken messages of type went to peer. */
size_t xf_count(xf *f, void *peer, uint8_t type);
void xf_peer_up(xf *f, void *peer, uint8_t id_byte);
void xf_have_all(xf *f, void *peer);
/* Answers every REQUEST sent to peer with its right bytes (corrupt: the
 * first byte of each flipped); returns how many. */
size_t xf_serve(xf *f, void *peer, bool corrupt);
/* The same for the oldest max REQUESTs only. */
size_t xf_serve_n(xf *f, void *peer, bool corrupt, size_t max);
/* How a peer fails the one chunk it cannot serve (xf_serve_but). */
enum xf_fault {
    XF_NOT_FOUND, /* NOT_FOUND CHUNK */
    XF_CORRUPT,   /* DATA with a byte flipped */
};
/* As xf_serve, but every REQUEST for chunk bad is answered with fault;
 * returns how many REQUESTs for bad there were. */
size_t xf_serve_but(xf *f, void *peer, uint32_t bad, enum xf_fault fault);
/* Answers the oldest store action: hash check against the model. */
bool xf_store_one(xf *f);
/* Answers the open action as a store that has n_have chunks (READY). */
void xf_opened_ready(xf *f, uint32_t n_have);
/* Runs store/commit/finish answers until nothing is pending. */
void xf_settle(xf *f);

#endif
