/* SPDX-License-Identifier: MIT */
/*
 * Signed name records (libcas/namerec.h, layout in libcas/FORMAT.md "Name
 * records"): encoding, strict decoding, signing, storage with "highest
 * sequence wins", trust against the keyring, and PUBLISHER/NAME resolution.
 */
#include "libcas/namerec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "libcas/hash.h"
#include "libcas/internal.h"
#include "libcas/sig-internal.h"

static const uint8_t magic[CAS_NAMEREC_MAGIC_LEN] = { 'n', 'v', 'x', 'n',
                                                      'a', 'm', 'e', CAS_NAMEREC_VERSION };

enum {
    /* Store key: publisher public key || name (libcas/store.h namerec db).
     * The public key, not the key id: anyone may write any key id into a
     * record, so a slot keyed by it could be taken by any key. */
    STORE_KEY_MAX = CAS_PK_LEN + CAS_NAMEREC_NAME_MAX,
};

bool
cas_namerec_name_valid(const char *name, size_t len)
{
    if (!name || len < 1 || len > CAS_NAMEREC_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

size_t
cas_namerec_encoded_len(const cas_namerec *rec)
{
    return CAS_NAMEREC_FIXED_LEN + rec->name_len + CAS_SIGBYTES;
}

/* Writes the signed part (everything but the signature) into out, which
 * holds at least CAS_NAMEREC_MAX bytes. Returns its length. */
static size_t
signed_part(const cas_namerec *rec, uint8_t *out)
{
    size_t off = 0;
    memcpy(out + off, magic, sizeof(magic));
    off += sizeof(magic);
    memcpy(out + off, rec->keyid, CAS_KEYID_LEN);
    off += CAS_KEYID_LEN;
    memcpy(out + off, rec->pk, CAS_PK_LEN);
    off += CAS_PK_LEN;
    out[off++] = (uint8_t)rec->name_len;
    memcpy(out + off, rec->name, rec->name_len);
    off += rec->name_len;
    le64_store(out + off, rec->sequence);
    off += 8;
    le64_store(out + off, rec->time);
    off += 8;
    memcpy(out + off, rec->model_id, CAS_MODEL_ID_LEN);
    off += CAS_MODEL_ID_LEN;
    return off;
}

static bool
rec_fields_valid(const cas_namerec *rec)
{
    return rec && cas_namerec_name_valid(rec->name, rec->name_len) &&
           rec->name[rec->name_len] == '\0';
}

int
cas_namerec_sign(const cas_seckey *sk, const char *name, uint64_t sequence, uint64_t time,
                 const uint8_t model_id[static CAS_MODEL_ID_LEN], cas_namerec *ret)
{
    if (!sk || !name || !ret)
        return -EINVAL;
    size_t len = strlen(name);
    if (!cas_namerec_name_valid(name, len))
        return -EINVAL;

    cas_namerec rec;
    memset(&rec, 0, sizeof(rec));
    cas_pubkey pub;
    cas_seckey_public(sk, &pub);
    memcpy(rec.keyid, pub.keyid, CAS_KEYID_LEN);
    memcpy(rec.pk, pub.pk, CAS_PK_LEN);
    memcpy(rec.name, name, len);
    rec.name_len = len;
    rec.sequence = sequence;
    rec.time = time;
    memcpy(rec.model_id, model_id, CAS_MODEL_ID_LEN);

    uint8_t buf[CAS_NAMEREC_MAX];
    size_t n = signed_part(&rec, buf);
    int r = cas__seckey_sign(sk, rec.sig, buf, n);
    if (r < 0)
        return r;
    *ret = rec;
    return 0;
}

int
cas_namerec_verify(const cas_namerec *rec)
{
    if (!rec_fields_valid(rec))
        return -EBADMSG;
    if (cas_sig_init() < 0)
        return -ENOMEM;
    uint8_t buf[CAS_NAMEREC_MAX];
    size_t n = signed_part(rec, buf);
    if (crypto_sign_verify_detached(rec->sig, buf, n, rec->pk) != 0)
        return -EBADMSG;
    return 0;
}

int
cas_namerec_encode(const cas_namerec *rec, uint8_t *out, size_t cap)
{
    if (!rec_fields_valid(rec) || !out)
        return -EINVAL;
    size_t len = cas_namerec_encoded_len(rec);
    if (cap < len)
        return -EMSGSIZE;
    uint8_t buf[CAS_NAMEREC_MAX];
    size_t n = signed_part(rec, buf);
    memcpy(out, buf, n);
    memcpy(out + n, rec->sig, CAS_SIGBYTES);
    return (int)len;
}

int
cas_namerec_decode(const uint8_t *buf, size_t len, cas_namerec *ret)
{
    if (!buf || len < CAS_NAMEREC_MIN || len > CAS_NAMEREC_MAX)
        return -EBADMSG;
    cas__cursor c = { buf, len, 0 }; /* libcas/internal.h: bounds-checked, STYLE.md 6 */
    const uint8_t *p;
    uint8_t k;
    cas_namerec rec;
    memset(&rec, 0, sizeof(rec));

    if (cas__cursor_bytes(&c, CAS_NAMEREC_MAGIC_LEN, &p) < 0 ||
        memcmp(p, magic, sizeof(magic)) != 0)
        return -EBADMSG;
    if (cas__cursor_bytes(&c, CAS_KEYID_LEN, &p) < 0)
        return -EBADMSG;
    memcpy(rec.keyid, p, CAS_KEYID_LEN);
    if (cas__cursor_bytes(&c, CAS_PK_LEN, &p) < 0)
        return -EBADMSG;
    memcpy(rec.pk, p, CAS_PK_LEN);
    if (cas__cursor_u8(&c, &k) < 0)
        return -EBADMSG;
    if (cas__cursor_bytes(&c, k, &p) < 0 || !cas_namerec_name_valid((const char *)p, k))
        return -EBADMSG;
    memcpy(rec.name, p, k);
    rec.name_len = k;
    if (cas__cursor_u64(&c, &rec.sequence) < 0 || cas__cursor_u64(&c, &rec.time) < 0)
        return -EBADMSG;
    if (cas__cursor_bytes(&c, CAS_MODEL_ID_LEN, &p) < 0)
        return -EBADMSG;
    memcpy(rec.model_id, p, CAS_MODEL_ID_LEN);
    if (cas__cursor_bytes(&c, CAS_SIGBYTES, &p) < 0)
        return -EBADMSG;
    memcpy(rec.sig, p, CAS_SIGBYTES);
    if (c.off != c.len)
        return -EBADMSG; /* trailing bytes */

    int r = cas_namerec_verify(&rec);
    if (r < 0)
        return r;
    *ret = rec;
    return 0;
}

void
cas_namerec_hash(const cas_namerec *rec, uint8_t ret[static CAS_HASH_LEN])
{
    uint8_t buf[CAS_NAMEREC_MAX];
    size_t n = signed_part(rec, buf);
    memcpy(buf + n, rec->sig, CAS_SIGBYTES);
    cas_hash(buf, n + CAS_SIGBYTES, ret);
}

void
cas_namerec_proof(const cas_namerec *rec, uint8_t out[static CAS_NAMEREC_PROOF_LEN])
{
    out[0] = CAS_NAMEREC_VERSION;
    memcpy(out + 1, rec->pk, CAS_PK_LEN);
    memcpy(out + 1 + CAS_PK_LEN, rec->sig, CAS_SIGBYTES);
}

int
cas_namerec_from_wire(const uint8_t keyid[static CAS_KEYID_LEN], const uint8_t *name,
                      size_t name_len, uint64_t sequence, uint64_t time,
                      const uint8_t model_id[static CAS_MODEL_ID_LEN], const uint8_t *proof,
                      size_t proof_len, cas_namerec *ret)
{
    if (!name || !proof || proof_len != CAS_NAMEREC_PROOF_LEN || proof[0] != CAS_NAMEREC_VERSION ||
        !cas_namerec_name_valid((const char *)name, name_len))
        return -EBADMSG;
    cas_namerec rec;
    memset(&rec, 0, sizeof(rec));
    memcpy(rec.keyid, keyid, CAS_KEYID_LEN);
    memcpy(rec.pk, proof + 1, CAS_PK_LEN);
    memcpy(rec.name, name, name_len);
    rec.name_len = name_len;
    rec.sequence = sequence;
    rec.time = time;
    memcpy(rec.model_id, model_id, CAS_MODEL_ID_LEN);
    memcpy(rec.sig, proof + 1 + CAS_PK_LEN, CAS_SIGBYTES);
    int r = cas_namerec_verify(&rec);
    if (r < 0)
        return r;
    *ret = rec;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Storage */

static size_t
store_key(const uint8_t pk[static CAS_PK_LEN], const char *name, size_t name_len,
          uint8_t out[static STORE_KEY_MAX])
{
    memcpy(out, pk, CAS_PK_LEN);
    memcpy(out + CAS_PK_LEN, name, name_len);
    return CAS_PK_LEN + name_len;
}

/* Decodes a stored record and checks that it belongs under key with seq. */
static int
stored_decode(const uint8_t *key, size_t key_len, uint64_t seq, const uint8_t *blob, size_t len,
              cas_namerec *ret)
{
    cas_namerec rec;
    int r = cas_namerec_decode(blob, len, &rec);
    if (r < 0)
        return r;
    uint8_t k[STORE_KEY_MAX];
    size_t kl = store_key(rec.pk, rec.name, rec.name_len, k);
    if (kl != key_len || memcmp(k, key, kl) != 0 || seq != rec.sequence)
        return -EBADMSG;
    *ret = rec;
    return 0;
}

int
cas_namerec_store_put(cas_store *s, const cas_namerec *rec)
{
    if (!s || !rec)
        return -EINVAL;
    int r = cas_namerec_verify(rec);
    if (r < 0)
        return r;
    uint8_t key[STORE_KEY_MAX], buf[CAS_NAMEREC_MAX];
    size_t key_len = store_key(rec->pk, rec->name, rec->name_len, key);
    r = cas_namerec_encode(rec, buf, sizeof(buf));
    if (r < 0)
        return r;
    /* The store compares sequences and writes in one transaction. */
    return cas_store_namerec_put(s, key, key_len, rec->sequence, buf, (size_t)r);
}

int
cas_namerec_store_get(cas_store *s, const uint8_t pk[static CAS_PK_LEN], const char *name,
                      cas_namerec *ret)
{
    if (!s || !name || !ret)
        return -EINVAL;
    size_t n = strlen(name);
    if (!cas_namerec_name_valid(name, n))
        return -EINVAL;
    uint8_t key[STORE_KEY_MAX];
    size_t key_len = store_key(pk, name, n, key);
    uint64_t seq;
    uint8_t *blob = NULL;
    size_t len;
    int r = cas_store_namerec_get(s, key, key_len, &seq, &blob, &len);
    if (r < 0)
        return r;
    r = stored_decode(key, key_len, seq, blob, len, ret);
    free(blob);
    return r;
}

typedef struct list_ctx {
    cas_namerec_fn cb;
    void *userdata;
} list_ctx;

static int
list_cb(void *userdata, const uint8_t *key, size_t key_len, uint64_t seq, const uint8_t *blob,
        size_t len)
{
    list_ctx *l = userdata;
    cas_namerec rec;
    if (stored_decode(key, key_len, seq, blob, len, &rec) < 0)
        return 0; /* damaged: skipped */
    return l->cb(l->userdata, &rec);
}

int
cas_namerec_store_list(cas_store *s, cas_namerec_fn cb, void *userdata)
{
    if (!s || !cb)
        return -EINVAL;
    list_ctx l = { .cb = cb, .userdata = userdata };
    return cas_store_namerec_list(s, list_cb, &l);
}

int
cas_namerec_store_del(cas_store *s, const uint8_t pk[static CAS_PK_LEN], const char *name)
{
    if (!s || !name)
        return -EINVAL;
    size_t n = strlen(name);
    if (!cas_namerec_name_valid(name, n))
        return -EINVAL;
    uint8_t key[STORE_KEY_MAX];
    size_t key_len = store_key(pk, name, n, key);
    return cas_store_namerec_del(s, key, key_len);
}

/* ---------------------------------------------------------------------- */
/* Trust and resolution */

bool
cas_namerec_trusted(cas_store *s, const cas_namerec *rec, char *ret_key_name, size_t cap)
{
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    char *key_name = NULL;
    bool ok = false;
    if (!s || !rec)
        return false;
    if (cas_store_key_get(s, rec->keyid, CAS_KEYID_LEN, &blob, &blob_len, &key_name) < 0)
        goto out;
    cas_pubkey pk;
    if (cas_pubkey_decode(blob, blob_len, &pk) < 0)
        goto out;
    ok = sodium_memcmp(pk.keyid, rec->keyid, CAS_KEYID_LEN) == 0 &&
         sodium_memcmp(pk.pk, rec->pk, CAS_PK_LEN) == 0;
    if (ok && ret_key_name && cap > 0) {
        const char *src = key_name ? key_name : "";
        size_t n = strlen(src);
        if (n >= cap)
            n = cap - 1;
        memcpy(ret_key_name, src, n);
        ret_key_name[n] = '\0';
    }
out:
    free(blob);
    free(key_name);
    return ok;
}

bool
cas_namerec_is_target(const char *text)
{
    return text && strchr(text, '/') != NULL;
}

typedef struct byname_ctx {
    const char *name;
    size_t name_len;
    unsigned n_match;
    uint8_t keyid[CAS_KEYID_LEN];
} byname_ctx;

static int
byname_cb(void *userdata, const uint8_t *key_id, size_t key_id_len, const uint8_t *blob,
          size_t blob_len, const char *name)
{
    (void)blob;
    (void)blob_len;
    byname_ctx *b = userdata;
    if (key_id_len != CAS_KEYID_LEN || strlen(name) != b->name_len ||
        memcmp(name, b->name, b->name_len) != 0)
        return 0;
    if (b->n_match == 0 || memcmp(b->keyid, key_id, CAS_KEYID_LEN) != 0)
        b->n_match++;
    memcpy(b->keyid, key_id, CAS_KEYID_LEN);
    return 0;
}

int
cas_namerec_target_parse(cas_store *s, const char *target, uint8_t ret_keyid[static CAS_KEYID_LEN],
                         char *ret_name)
{
    if (!s || !target || !ret_name)
        return -EINVAL;
    const char *slash = strchr(target, '/');
    if (!slash || slash == target)
        return -EINVAL;
    size_t pub_len = (size_t)(slash - target);
    const char *name = slash + 1;
    size_t name_len = strlen(name);
    if (pub_len > CAS_STORE_NAME_MAX || !cas_namerec_name_valid(name, name_len))
        return -EINVAL;

    byname_ctx b = { .name = target, .name_len = pub_len };
    int r = cas_store_key_list(s, byname_cb, &b);
    if (r < 0)
        return r;
    if (b.n_match > 1)
        return -ENOTUNIQ;
    uint8_t keyid[CAS_KEYID_LEN];
    if (b.n_match == 1) {
        memcpy(keyid, b.keyid, CAS_KEYID_LEN);
    } else {
        /* A key id as minisign prints it: 1 to 16 hex digits. */
        char hex[CAS_KEYID_HEX_SIZE];
        if (pub_len > CAS_KEYID_HEX_SIZE - 1)
            return -ENOENT;
        memcpy(hex, target, pub_len);
        hex[pub_len] = '\0';
        if (cas_keyid_parse(hex, keyid) < 0)
            return -ENOENT;
    }
    memcpy(ret_keyid, keyid, CAS_KEYID_LEN);
    memcpy(ret_name, name, name_len + 1);
    return 0;
}

/* The keyring's public key for keyid. Returns 0, -ENOENT, -EBADMSG. */
static int
keyring_pk(cas_store *s, const uint8_t keyid[static CAS_KEYID_LEN], cas_pubkey *ret)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int r = cas_store_key_get(s, keyid, CAS_KEYID_LEN, &blob, &len, NULL);
    if (r < 0)
        return r;
    r = cas_pubkey_decode(blob, len, ret);
    free(blob);
    if (r == 0 && memcmp(ret->keyid, keyid, CAS_KEYID_LEN) != 0)
        r = -EBADMSG;
    return r < 0 ? -EBADMSG : 0;
}

typedef struct byid_ctx {
    const uint8_t *keyid;
    const char *name;
    unsigned n_keys;
    cas_namerec rec;
} byid_ctx;

static int
byid_cb(void *userdata, const cas_namerec *rec)
{
    byid_ctx *b = userdata;
    if (memcmp(rec->keyid, b->keyid, CAS_KEYID_LEN) != 0 || strcmp(rec->name, b->name) != 0)
        return 0;
    /* One slot per public key, so each match is another key. */
    b->n_keys++;
    b->rec = *rec;
    return 0;
}

int
cas_namerec_resolve(cas_store *s, const char *target, cas_name_resolution *ret)
{
    if (!ret)
        return -EINVAL;
    uint8_t keyid[CAS_KEYID_LEN];
    char name[CAS_NAMEREC_NAME_MAX + 1];
    int r = cas_namerec_target_parse(s, target, keyid, name);
    if (r < 0)
        return r;
    cas_name_resolution res;
    memset(&res, 0, sizeof(res));
    cas_pubkey pk;
    r = keyring_pk(s, keyid, &pk);
    if (r == 0) {
        /* The keyring names the key: only its slot counts, whatever
         * other keys claim under the same key id. */
        r = cas_namerec_store_get(s, pk.pk, name, &res.rec);
    } else if (r == -ENOENT) {
        /* No key to go by: the key id is only a label anyone can copy,
         * so follow it only when exactly one key claims it. */
        byid_ctx b = { .keyid = keyid, .name = name };
        r = cas_namerec_store_list(s, byid_cb, &b);
        if (r == 0 && b.n_keys == 0)
            r = -ENOENT;
        else if (r == 0 && b.n_keys > 1)
            r = -ENOTUNIQ;
        res.rec = b.rec;
    }
    if (r < 0)
        return r;
    res.trusted = cas_namerec_trusted(s, &res.rec, res.key_name, sizeof(res.key_name));
    *ret = res;
    return 0;
}
