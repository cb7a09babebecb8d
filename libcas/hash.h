/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_HASH_H
#define NVX_LIBCAS_HASH_H
/*
 * BLAKE2b-256 ids for chunks and models, and their human encoding.
 *
 * Every id in nvx is an unkeyed BLAKE2b digest of 32 bytes: a chunk id is the
 * hash of the chunk's bytes, a model id the hash of the canonical manifest
 * bytes. The hot path uses libsodium's crypto_generichash (faster than libb2's
 * blake2b() on the reference CPU, see BASELINES.md); test-hash checks that both
 * compute the same digest.
 *
 * Initialisation: cas_init() calls sodium_init() exactly once per process
 * (pthread_once), which also selects libsodium's fastest BLAKE2b code. Every
 * hashing entry point below calls it implicitly, so callers need not; a
 * program may call it early to learn about a failure up front. All functions
 * are thread-safe; a cas_hasher must not be shared between threads.
 *
 * Human encoding: 64 lowercase hex characters. Input is accepted in either
 * case, in full or as a prefix of CAS_HASH_PREFIX_MIN..CAS_HASH_HEX_LEN
 * characters (the store resolves a prefix to the unique id it matches).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

enum {
    CAS_HASH_LEN = 32,       /* bytes of a BLAKE2b-256 digest */
    CAS_HASH_HEX_LEN = 64,   /* hex characters of a full id */
    CAS_HASH_PREFIX_MIN = 8, /* fewest hex characters accepted as a prefix */
    CAS_HASH_SHORT_HEX = 12, /* characters shown in logs and short listings */
};

/* Initialises libsodium once (idempotent, thread-safe). Returns 0, or -EIO if
 * sodium_init() failed (then every later call returns -EIO too). */
int cas_init(void);

/* Incremental hasher. Embeddable; initialise with cas_hasher_init(). */
typedef struct cas_hasher {
    crypto_generichash_state st;
} cas_hasher;

/* Starts a BLAKE2b-256 computation. */
void cas_hasher_init(cas_hasher *h);

/* Feeds len bytes (len may be 0; buf may then be NULL). */
void cas_hasher_update(cas_hasher *h, const void *buf, size_t len);

/* Writes the digest to ret. The hasher must be re-initialised before reuse. */
void cas_hasher_final(cas_hasher *h, uint8_t ret[static CAS_HASH_LEN]);

/* One-shot BLAKE2b-256 of len bytes at buf (buf may be NULL when len is 0). */
void cas_hash(const void *buf, size_t len, uint8_t ret[static CAS_HASH_LEN]);

/* BLAKE2b-256 of n messages at once: ret[i] = cas_hash(bufs[i], lens[i]).
 * On x86-64 CPUs with AVX-512F, eight messages are hashed side by side in
 * the lanes of the vector registers (about 3.7x cas_hash() for 256 KiB
 * chunks); elsewhere, and for n < 2, it is cas_hash() in a loop. n may be 0;
 * bufs[i] may be NULL when lens[i] is 0. ret must not overlap the inputs. */
void cas_hash_many(const void *const bufs[], const size_t lens[], size_t n,
                   uint8_t ret[][CAS_HASH_LEN]);

/* The path cas_hash_many() takes on this CPU, for reports and benchmarks:
 * "avx512 x8" (eight lanes) or "libsodium x1" (one message at a time). */
const char *cas_hash_many_path(void);

/* Constant-time comparison of two ids; true when equal. */
bool cas_hash_equal(const uint8_t a[static CAS_HASH_LEN], const uint8_t b[static CAS_HASH_LEN]);

/* Writes the 64 lowercase hex characters of id plus a NUL to ret. */
void cas_hash_to_hex(const uint8_t id[static CAS_HASH_LEN], char ret[static CAS_HASH_HEX_LEN + 1]);

/* Parses exactly CAS_HASH_HEX_LEN hex characters (either case) followed by
 * NUL. Returns 0 and writes ret, or -EINVAL for anything else. */
int cas_hash_from_hex(const char *s, uint8_t ret[static CAS_HASH_LEN]);

/* A parsed id prefix: the first `nibbles` hex digits of an id. bytes holds
 * them left-aligned (an odd last digit fills the high nibble), rest zero. */
typedef struct cas_hash_prefix {
    uint8_t bytes[CAS_HASH_LEN];
    unsigned nibbles; /* CAS_HASH_PREFIX_MIN..CAS_HASH_HEX_LEN */
} cas_hash_prefix;

/* Parses a prefix of CAS_HASH_PREFIX_MIN..CAS_HASH_HEX_LEN hex characters
 * (either case) ended by NUL. Returns 0 and writes ret; -EINVAL when s holds a
 * non-hex character or has the wrong length. */
int cas_hash_prefix_parse(const char *s, cas_hash_prefix *ret);

/* True when id starts with prefix p. */
bool cas_hash_prefix_match(const cas_hash_prefix *p, const uint8_t id[static CAS_HASH_LEN]);

/* Fills ret_lo and ret_hi with the smallest and largest ids starting with p,
 * for range scans over a sorted key space (LMDB MDB_SET_RANGE). */
void cas_hash_prefix_range(const cas_hash_prefix *p, uint8_t ret_lo[static CAS_HASH_LEN],
                           uint8_t ret_hi[static CAS_HASH_LEN]);

#endif
