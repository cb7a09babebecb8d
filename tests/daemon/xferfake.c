/* SPDX-License-Identifier: MIT */
#include "xferfake.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/control.h"

uint8_t
xf_byte(uint32_t chunk, uint32_t off)
{
    return (uint8_t)(chunk * 31u + off * 7u + 1u);
}

static void
op_send(void *arg, void *peer, const proto_msg *m)
{
    xf *f = arg;
    size_t len;
    assert_int_equal(proto_msg_encode(m, NULL, 0, &len), 0);
    if (f->n_sent == f->cap_sent) {
        f->cap_sent = f->cap_sent ? f->cap_sent * 2 : 256;
        f->sent = realloc(f->sent, f->cap_sent * sizeof(*f->sent));
        assert_non_null(f->sent);
    }
    xf_sent *s = &f->sent[f->n_sent++];
    *s = (xf_sent){ .peer = peer, .type = m->type, .len = len, .body = malloc(len ? len : 1) };
    assert_non_null(s->body);
    assert_int_equal(proto_msg_encode(m, s->body, len, &len), 0);
}

static void
op_flush(void *arg, void *peer)
{
    (void)arg;
    (void)peer;
}

static uint32_t
op_req_ids(void *arg, void *peer, uint32_t n)
{
    (void)peer;
    xf *f = arg;
    uint32_t b = f->next_req;
    f->next_req += n;
    return b;
}

static void
op_open(void *arg, uint8_t *manifest, uint32_t len)
{
    xf *f = arg;
    f->opens++;
    free(f->manifest);
    f->manifest = manifest;
    f->mlen = len;
}

static void
op_store(void *arg, nvx_xfer_chunk **c, unsigned n)
{
    xf *f = arg;
    assert_true(f->n_batches < XF_BATCHES_MAX);
    xf_batch *b = &f->batches[f->n_batches++];
    memcpy(b->c, c, n * sizeof(*c));
    b->n = n;
}

static void
op_commit(void *arg)
{
    xf *f = arg;
    f->commits++;
    nvx_xfer_committed(f->x, 0, f->now);
}

static void
op_finish(void *arg)
{
    ((xf *)arg)->finishes++;
}

static void
op_drop_peer(void *arg, void *peer, const char *why)
{
    xf *f = arg;
    f->drops++;
    f->dropped = peer;
    snprintf(f->drop_why, sizeof(f->drop_why), "%s", why);
    nvx_xfer_peer_down(f->x, peer); /* as nvxd does: re-entrant */
}

static void
op_bad_peer(void *arg, const uint8_t id[32], const char *addr, const char *what)
{
    (void)addr;
    (void)what;
    xf *f = arg;
    f->bads++;
    memcpy(f->bad_id, id, 32);
}

static void
op_ended(void *arg)
{
    ((xf *)arg)->ended = true;
}

static const nvx_xfer_ops ops = {
    .send = op_send,
    .flush = op_flush,
    .req_ids = op_req_ids,
    .open = op_open,
    .store = op_store,
    .commit = op_commit,
    .finish = op_finish,
    .drop_peer = op_drop_peer,
    .bad_peer = op_bad_peer,
    .ended = op_ended,
};

static const uint8_t model_id[32] = { 0x4d, 0x6f, 0x64 };

void
xf_init(xf *f, uint32_t n, uint32_t len, uint32_t short_by)
{
    memset(f, 0, sizeof(*f));
    f->now = 1000;
    f->n_chunks = n;
    f->chunk_len = malloc(n * sizeof(uint32_t));
    assert_non_null(f->chunk_len);
    for (uint32_t i = 0; i < n; i++)
        f->chunk_len[i] = len;
    f->chunk_len[n - 1] -= short_by;
    f->next_req = 1;
    assert_int_equal(nvx_xfer_new(&ops, f, model_id, 42, f->now, &f->x), 0);
    nvx_xfer_start(f->x);
    assert_int_equal(f->opens, 1);
    assert_null(f->manifest);
}

void
xf_free(xf *f)
{
    for (unsigned b = 0; b < f->n_batches; b++)
        for (unsigned k = 0; k < f->batches[b].n; k++) {
            free(f->batches[b].c[k]->mem);
            free(f->batches[b].c[k]);
        }
    nvx_xfer_free(f->x);
    for (size_t i = 0; i < f->n_sent; i++)
        free(f->sent[i].body);
    free(f->sent);
    free(f->manifest);
    free(f->chunk_len);
}

bool
xf_take(xf *f, void *peer, uint8_t type, proto_msg *m)
{
    for (size_t i = 0; i < f->n_sent; i++) {
        xf_sent *s = &f->sent[i];
        if (s->taken || s->peer != peer || s->type != type)
            continue;
        s->taken = true;
        assert_int_equal(proto_msg_decode(type, s->body, s->len, m), 0);
        m->type = type;
        return true;
    }
    return false;
}

size_t
xf_count(xf *f, void *peer, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_sent; i++)
        n += !f->sent[i].taken && f->sent[i].peer == peer && f->sent[i].type == type;
    return n;
}

void
xf_peer_up(xf *f, void *peer, uint8_t id_byte)
{
    nvx_xfer_peer_info pi = { .addr = "fake:1", .piece = 1 << 20 };
    memset(pi.id, id_byte, 32);
    nvx_xfer_peer_up(f->x, peer, &pi);
}

void
xf_have_all(xf *f, void *peer)
{
    proto_chunkset all = { .kind = PROTO_CHUNKSET_ALL };
    nvx_xfer_have(f->x, peer, &all);
}

size_t
xf_serve(xf *f, void *peer, bool corrupt)
{
    return xf_serve_n(f, peer, corrupt, SIZE_MAX);
}

/* Answers REQUEST r from peer with its bytes (corrupt: one flipped). */
static void
answer(xf *f, void *peer, const proto_request *r, bool corrupt)
{
    uint8_t *b = malloc(r->length);
    assert_non_null(b);
    for (uint32_t k = 0; k < r->length; k++)
        b[k] = xf_byte(r->chunk, r->offset + k);
    if (corrupt)
        b[0] ^= 0xff;
    proto_data d = { .req_id = r->req_id, .chunk = r->chunk, .offset = r->offset };
    memcpy(d.model_id, r->model_id, 32);
    d.bytes.p = b;
    d.bytes.len = r->length;
    nvx_xfer_data(f->x, peer, &d, f->now);
    free(b);
}

size_t
xf_serve_n(xf *f, void *peer, bool corrupt, size_t max)
{
    size_t n = 0;
    proto_msg m;
    while (n < max && xf_take(f, peer, PROTO_MSG_REQUEST, &m)) {
        answer(f, peer, &m.u.request, corrupt);
        n++;
    }
    nvx_xfer_pump(f->x, f->now);
    return n;
}

size_t
xf_serve_but(xf *f, void *peer, uint32_t bad, enum xf_fault fault)
{
    size_t n = 0;
    proto_msg m;
    while (xf_take(f, peer, PROTO_MSG_REQUEST, &m)) {
        proto_request *r = &m.u.request;
        if (r->chunk != bad) {
            answer(f, peer, r, false);
            continue;
        }
        n++;
        if (fault == XF_CORRUPT) {
            answer(f, peer, r, true);
            continue;
        }
        proto_not_found nf = { .req_id = r->req_id,
                               .chunk = r->chunk,
                               .what = PROTO_NOTFOUND_CHUNK };
        memcpy(nf.model_id, r->model_id, 32);
        nvx_xfer_not_found(f->x, peer, &nf, f->now);
    }
    nvx_xfer_pump(f->x, f->now);
    return n;
}

bool
xf_store_one(xf *f)
{
    if (f->n_batches == 0)
        return false;
    xf_batch b = f->batches[0];
    memmove(&f->batches[0], &f->batches[1], --f->n_batches * sizeof(xf_batch));
    for (unsigned k = 0; k < b.n; k++) {
        nvx_xfer_chunk *c = b.c[k];
        bool ok = c->len == f->chunk_len[c->idx];
        for (uint32_t i = 0; ok && i < c->len; i++)
            ok = c->data[i] == xf_byte(c->idx, i);
        c->res = ok ? 1 : -EBADMSG;
    }
    nvx_xfer_stored(f->x, b.c, b.n, f->now);
    nvx_xfer_pump(f->x, f->now);
    return true;
}

void
xf_opened_ready(xf *f, uint32_t n_have)
{
    uint8_t *have = calloc((f->n_chunks + 7) / 8, 1);
    assert_non_null(have);
    for (uint32_t i = 0; i < n_have; i++)
        have[i / 8] |= (uint8_t)(1u << (i % 8));
    nvx_xfer_opened(f->x, NVX_XFER_OPEN_READY, f->n_chunks, f->chunk_len, have, f->now);
    free(have);
    nvx_xfer_pump(f->x, f->now);
}

void
xf_settle(xf *f)
{
    while (xf_store_one(f))
        ;
}
