/* SPDX-License-Identifier: MIT */
/*
 * Which signatures a store keeps (libcas/sig-store.h). The rule: a blob is
 * attached only after it verified under a known key. Minisign blobs carry
 * only a key id, which anyone can copy, so a blob from a key the keyring
 * lacks is kept apart (bounded) rather than trusted or thrown away: the
 * user may trust that key later, and then it is checked here.
 */
#include "libcas/sig-store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/store-internal.h"

/* The keyring's key for keyid: 0, -ENOENT, -EBADMSG (damaged entry). */
static int
keyring_get(cas_store *s, const uint8_t keyid[static CAS_KEYID_LEN], cas_pubkey *ret)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int r = cas_store_key_get(s, keyid, CAS_KEYID_LEN, &blob, &len, NULL);
    if (r < 0)
        return r;
    r = cas_pubkey_decode(blob, len, ret);
    free(blob);
    if (r < 0 || memcmp(ret->keyid, keyid, CAS_KEYID_LEN) != 0)
        return -EBADMSG;
    return 0;
}

/* Verifies blob over model id's manifest with pk. 0, -EBADMSG, -ENOENT. */
static int
check(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob, size_t len,
      const cas_pubkey *pk)
{
    uint8_t *manifest = NULL;
    size_t mlen = 0;
    int r = cas_store_manifest_get(s, id, &manifest, &mlen);
    if (r < 0)
        return r;
    /* cas_sig_verify also refuses an nvx-model: naming another model. */
    r = cas_sig_verify(pk, blob, len, manifest, mlen, NULL) < 0 ? -EBADMSG : 0;
    free(manifest);
    return r;
}

int
cas_store_sig_add_key(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob,
                      size_t len, const cas_pubkey *pk)
{
    if (!s || !blob || !pk)
        return -EINVAL;
    if (len > CAS_STORE_SIG_MAX)
        return -EMSGSIZE;
    int r = check(s, id, blob, len, pk);
    if (r < 0)
        return r;
    return cas__sig_put(s, false, id, blob, len);
}

int
cas_store_sig_add(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob, size_t len)
{
    if (!s || !blob || len == 0)
        return -EINVAL;
    if (len > CAS_STORE_SIG_MAX)
        return -EMSGSIZE;
    cas_sig_info info;
    if (cas_sig_parse(blob, len, &info) < 0)
        return -EBADMSG;
    if (info.has_model_id && memcmp(info.model_id, id, CAS_HASH_LEN) != 0)
        return -EBADMSG;
    cas_pubkey pk;
    int r = keyring_get(s, info.keyid, &pk);
    if (r == -ENOENT) {
        r = cas__sig_put(s, true, id, blob, len);
        return r == 1 ? 2 : r;
    }
    if (r < 0)
        return r;
    return cas_store_sig_add_key(s, id, blob, len, &pk);
}

/* A blob of the rechecked key, copied out of the listing transaction. */
typedef struct found {
    uint8_t id[CAS_HASH_LEN];
    bool pending;
    size_t len;
    uint8_t *blob;
} found;

typedef struct recheck_ctx {
    const uint8_t *keyid;
    bool pending;
    found *v;
    size_t n, cap;
} recheck_ctx;

static int
collect(void *userdata, const uint8_t *key, const void *blob, size_t len)
{
    recheck_ctx *c = userdata;
    cas_sig_info info;
    if (cas_sig_parse(blob, len, &info) < 0 || memcmp(info.keyid, c->keyid, CAS_KEYID_LEN) != 0)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        found *nv = realloc(c->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        c->v = nv;
        c->cap = cap;
    }
    found *f = &c->v[c->n];
    f->blob = malloc(len);
    if (!f->blob)
        return -ENOMEM;
    memcpy(f->blob, blob, len);
    memcpy(f->id, key, CAS_HASH_LEN);
    f->len = len;
    f->pending = c->pending;
    c->n++;
    return 0;
}

int
cas_store_sig_recheck(cas_store *s, const uint8_t keyid[static CAS_KEYID_LEN],
                      cas_sig_recheck_result *ret)
{
    if (!s || !ret)
        return -EINVAL;
    cas_pubkey pk;
    int r = keyring_get(s, keyid, &pk);
    if (r < 0)
        return r;
    /* Only kept-apart blobs: attached ones verified under a known key
     * when attached, and one that fails now means the keyring changed
     * (nvx verify reports it) rather than a forgery to throw away. */
    recheck_ctx c = { .keyid = keyid, .pending = true };
    r = cas__sig_list_all(s, true, collect, &c);
    cas_sig_recheck_result res = { 0 };
    for (size_t i = 0; r == 0 && i < c.n; i++) {
        found *f = &c.v[i];
        int v = check(s, f->id, f->blob, f->len, &pk);
        if (v == -EBADMSG) {
            /* A forgery under a key we now trust: it must not make the
             * model look tampered with, and it is worth nothing. */
            if (cas_store_sig_del(s, f->id, f->blob, f->len) == 0)
                res.dropped++;
        } else if (v == 0 && f->pending) {
            r = cas__sig_unpend(s, f->id, f->blob, f->len);
            if (r == 0)
                res.attached++;
            else if (r == -ENOENT)
                r = 0; /* removed meanwhile */
        } else if (v < 0 && v != -ENOENT) {
            r = v;
        }
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.v[i].blob);
    free(c.v);
    if (r < 0)
        return r;
    *ret = res;
    return 0;
}
