/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_NAMEREC_H
#define NVX_LIBCAS_NAMEREC_H
/*
 * Signed name records: a publisher's claim "NAME is model M", signed with the
 * publisher's minisign Ed25519 key (libcas/sig.h) so that nobody else can
 * forge it. For one (publisher key id, name) the valid record with the
 * highest sequence number wins. Byte layout: libcas/FORMAT.md, section
 * "Name records"; in short (integers little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *   0       8     magic "nvxname" + version byte 0x01
 *   8       8     publisher key id (minisign)
 *   16      32    publisher Ed25519 public key
 *   48      1     K = name length, 1..CAS_NAMEREC_NAME_MAX
 *   49      K     name: ASCII 0x21..0x7e (a proto "token")
 *   49+K    8     sequence number
 *   57+K    8     time, publisher's Unix seconds
 *   65+K    32    model id
 *   97+K    64    Ed25519 signature over bytes 0 .. 97+K (the signed part)
 *
 * On the wire (proto ANNOUNCE, kind NAME) the fields travel as separate
 * fields and the opaque "sig" blob is the proof: version byte 0x01, public
 * key (32), signature (64) — CAS_NAMEREC_PROOF_LEN bytes;
 * cas_namerec_from_wire() rebuilds and checks the record.
 *
 * Trust: a record is *valid* when its signature verifies with the public key
 * it carries; it is *trusted* when the store's keyring (cas_store_key_*, blob
 * = minisign public key) holds its key id with that same public key. Untrusted
 * records are stored and shown, never followed unless the user asks.
 *
 * Errors (negative errno, nothing here prints): -EBADMSG malformed record or
 * bad signature, -EINVAL caller bug (bad name, NULL), -ENOENT no record,
 * -ENOTUNIQ a publisher name that matches several trusted keys, -ENOMEM,
 * and the store's errors.
 *
 * Thread safety: reentrant; the store functions follow libcas/store.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libcas/sig.h"
#include "libcas/store.h"

enum {
    CAS_NAMEREC_VERSION = 1,
    CAS_NAMEREC_MAGIC_LEN = 8,
    CAS_NAMEREC_NAME_MAX = 128,                          /* = PROTO_NAME_MAX */
    CAS_NAMEREC_FIXED_LEN = 8 + 8 + 32 + 1 + 8 + 8 + 32, /* signed part without the name */
    CAS_NAMEREC_MIN = CAS_NAMEREC_FIXED_LEN + 1 + CAS_SIGBYTES,
    CAS_NAMEREC_MAX = CAS_NAMEREC_FIXED_LEN + CAS_NAMEREC_NAME_MAX + CAS_SIGBYTES,
    CAS_NAMEREC_PROOF_LEN = 1 + CAS_PK_LEN + CAS_SIGBYTES, /* wire "sig" blob */
    /* "PUBLISHER/NAME": publisher (key name or key id), "/", name. */
    CAS_NAMEREC_TARGET_MAX = CAS_STORE_NAME_MAX + 1 + CAS_NAMEREC_NAME_MAX,
};

/* A decoded (or to-be-signed) record. name is NUL-terminated. */
typedef struct cas_namerec {
    uint8_t keyid[CAS_KEYID_LEN];
    uint8_t pk[CAS_PK_LEN];
    char name[CAS_NAMEREC_NAME_MAX + 1];
    size_t name_len;
    uint64_t sequence;
    uint64_t time;
    uint8_t model_id[CAS_MODEL_ID_LEN];
    uint8_t sig[CAS_SIGBYTES];
} cas_namerec;

/* True when name (len bytes) is a valid record name: 1..CAS_NAMEREC_NAME_MAX
 * bytes of ASCII 0x21..0x7e. */
bool cas_namerec_name_valid(const char *name, size_t len);

/*
 * Fills *ret (all fields but sig) and signs it with sk: keyid and pk from sk,
 * name (NUL-terminated, see cas_namerec_name_valid), sequence, time, model.
 * Returns 0 or -EINVAL (bad name).
 */
int cas_namerec_sign(const cas_seckey *sk, const char *name, uint64_t sequence, uint64_t time,
                     const uint8_t model_id[static CAS_MODEL_ID_LEN], cas_namerec *ret);

/* Checks rec's signature with the public key it carries. Returns 0 or
 * -EBADMSG (bad signature or a field out of range). */
int cas_namerec_verify(const cas_namerec *rec);

/* Size of rec's encoding (CAS_NAMEREC_MIN..MAX). */
size_t cas_namerec_encoded_len(const cas_namerec *rec);

/* Encodes rec into out (cap bytes). Returns the length written, -EMSGSIZE
 * when cap is short, -EINVAL when a field is out of range. */
int cas_namerec_encode(const cas_namerec *rec, uint8_t *out, size_t cap);

/*
 * Strictly decodes len bytes (exact length, magic, version, name rules; no
 * trailing bytes) and verifies the signature. Writes *ret only on success.
 * Returns 0 or -EBADMSG.
 */
int cas_namerec_decode(const uint8_t *buf, size_t len, cas_namerec *ret);

/* Identity of a record for de-duplication: BLAKE2b-256 of its encoding. */
void cas_namerec_hash(const cas_namerec *rec, uint8_t ret[static CAS_HASH_LEN]);

/* Writes rec's wire proof (version, public key, signature). */
void cas_namerec_proof(const cas_namerec *rec, uint8_t out[static CAS_NAMEREC_PROOF_LEN]);

/*
 * Rebuilds a record from the fields of a proto name record and its proof
 * blob, strictly (proof of exactly CAS_NAMEREC_PROOF_LEN bytes, version 1,
 * name rules) and verifies the signature. Returns 0 and *ret, or -EBADMSG.
 */
int cas_namerec_from_wire(const uint8_t keyid[static CAS_KEYID_LEN], const uint8_t *name,
                          size_t name_len, uint64_t sequence, uint64_t time,
                          const uint8_t model_id[static CAS_MODEL_ID_LEN], const uint8_t *proof,
                          size_t proof_len, cas_namerec *ret);

/* ---------------------------------------------------------------------- */
/* Storage (one record per (public key, name): the highest sequence wins;
 * the key id is a label inside the record, never a slot) */

/*
 * Verifies rec and stores it unless a record with the same public key and name
 * and a sequence >= rec's is already stored. Returns 1 when stored, 0 when
 * kept the stored one, -EBADMSG (bad signature), store errors.
 */
int cas_namerec_store_put(cas_store *s, const cas_namerec *rec);

/* Loads the stored record for (pk, name). Returns 0 and *ret, -ENOENT,
 * -EBADMSG (a damaged stored record). */
int cas_namerec_store_get(cas_store *s, const uint8_t pk[static CAS_PK_LEN], const char *name,
                          cas_namerec *ret);

/* Calls cb for every stored record (public key, then name order); rec is valid
 * during the call. Damaged stored records are skipped. Returns 0 or the
 * callback's negative value. */
typedef int (*cas_namerec_fn)(void *userdata, const cas_namerec *rec);
int cas_namerec_store_list(cas_store *s, cas_namerec_fn cb, void *userdata);

/* Removes the record for (pk, name). Returns 0 or -ENOENT. */
int cas_namerec_store_del(cas_store *s, const uint8_t pk[static CAS_PK_LEN], const char *name);

/* ---------------------------------------------------------------------- */
/* Trust and resolution */

/*
 * True when the keyring holds rec's key id with rec's public key (a keyring
 * entry with the same key id but another key does not count). When
 * ret_key_name is not NULL and the key is trusted, copies the key's keyring
 * name (maybe "") into it (cap bytes, truncated, NUL-terminated).
 */
bool cas_namerec_trusted(cas_store *s, const cas_namerec *rec, char *ret_key_name, size_t cap);

typedef struct cas_name_resolution {
    cas_namerec rec; /* the winning record (highest sequence) */
    bool trusted;    /* signed by a key of the keyring (cas_namerec_trusted) */
    char key_name[CAS_STORE_NAME_MAX + 1]; /* keyring name of the key, "" if none */
} cas_name_resolution;

/*
 * Splits "PUBLISHER/NAME" at the first '/': PUBLISHER is a keyring key name
 * (tried first) or a key id as minisign prints it, 1 to 16 hex digits
 * (cas_keyid_parse; the key need not be in the keyring), NAME a record name. Writes the key id and
 * the name (NUL-terminated, ret_name of CAS_NAMEREC_NAME_MAX + 1 bytes). Returns 0; -EINVAL (no
 * '/', bad name), -ENOENT (no trusted key of that name, and not a key id), -ENOTUNIQ (several keys
 * carry that name).
 */
int cas_namerec_target_parse(cas_store *s, const char *target,
                             uint8_t ret_keyid[static CAS_KEYID_LEN], char *ret_name);

/*
 * Resolves "PUBLISHER/NAME" through the stored records. When the keyring
 * holds PUBLISHER's key id, only the record of that public key counts
 * (records of other keys that copy the key id are never looked at). When it
 * does not, the record under that key id is returned (untrusted) only if
 * exactly one public key claims it; several give -ENOTUNIQ. Returns 0 and
 * *ret when a record exists, whether trusted or not: the caller follows
 * ret->rec.model_id only when ret->trusted or the user allowed untrusted
 * records, and otherwise shows the record as untrusted (the key id, the
 * model id). Errors as cas_namerec_target_parse(), and -ENOENT when no
 * record is stored for that publisher and name.
 */
int cas_namerec_resolve(cas_store *s, const char *target, cas_name_resolution *ret);

/* True when text looks like "PUBLISHER/NAME" rather than an id (contains a
 * '/'). */
bool cas_namerec_is_target(const char *text);

/* ---------------------------------------------------------------------- */
/* On the BitTorrent DHT (BEP 44; proto/PROTOCOL.md, "Names on the DHT")
 *
 * A record travels as a mutable item under its publisher's raw Ed25519 key
 * (k = rec->pk), salt = the name, seq = the record's sequence (at most
 * INT64_MAX: BEP 44's seq is a signed integer) and v = the encoded record
 * as a bencoded string "<len>:<bytes>". The BEP 44 signature covers
 * "4:salt<len>:<name>3:seqi<seq>e1:v<v>" and is libsodium's
 * crypto_sign_detached with the publisher's key, made where that key is
 * unlocked (the CLI). */

enum {
    CAS_NAMEREC_DHT_V_MAX = 4 + CAS_NAMEREC_MAX, /* "289:" + record */
    /* "4:salt" "128:" name "3:seqi" 19 digits "e1:v" v */
    CAS_NAMEREC_DHT_SIGNED_MAX = 6 + 4 + CAS_NAMEREC_NAME_MAX + 6 + 20 + 4 + CAS_NAMEREC_DHT_V_MAX,
};

/* Writes rec's item value v (a bencoded string holding the encoded record)
 * into out. Returns its length, -EMSGSIZE or -EINVAL (a field out of
 * range, or a sequence over INT64_MAX). */
int cas_namerec_dht_value(const cas_namerec *rec, uint8_t *out, size_t cap);

/* Writes the bytes BEP 44 signs for rec's item into out. Returns the
 * length, -EMSGSIZE or -EINVAL as cas_namerec_dht_value(). */
int cas_namerec_dht_signed(const cas_namerec *rec, uint8_t *out, size_t cap);

/* Signs rec's item with sk (which must be rec's key: else -EINVAL).
 * Returns 0 and the 64-byte signature, or -EINVAL. */
int cas_namerec_dht_sign(const cas_seckey *sk, const cas_namerec *rec,
                         uint8_t ret_sig[static CAS_SIGBYTES]);

/*
 * Strictly decodes an item value from the DHT (outside bytes): a bencoded
 * string "<len>:<bytes>" with no leading zeros or trailing bytes whose
 * bytes are a record (cas_namerec_decode: verified). The caller checks
 * that it is the record it asked for (key, name, sequence = the item's).
 * Returns 0 and *ret, or -EBADMSG.
 */
int cas_namerec_dht_decode(const uint8_t *v, size_t len, cas_namerec *ret);

#endif
