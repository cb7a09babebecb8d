/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_SIG_H
#define NVX_LIBCAS_SIG_H
/*
 * Ed25519 keys and model signatures in minisign's file formats, so that a
 * publisher can sign with the minisign key they already have and anyone can
 * check an nvx signature with `minisign -V`. The byte layouts are in
 * libcas/FORMAT.md, section "Signatures"; in short (all base64 lines are
 * standard base64 with padding, every line ends in "\n", "\r\n" is accepted):
 *
 *   public key file                  secret key file (158 bytes decoded)
 *   untrusted comment: <text>        untrusted comment: <text>
 *   base64("Ed" keyid[8] pk[32])     base64("Ed" kdf[2] "B2" salt[32]
 *                                           opslimit[8 LE] memlimit[8 LE]
 *                                           (keyid[8] sk[64] chk[32]) ^ scrypt)
 *
 *   signature file
 *   untrusted comment: <text>
 *   base64("ED" keyid[8] sig[64])        sig = Ed25519(BLAKE2b-512(manifest))
 *   trusted comment: <trusted comment>
 *   base64(global_sig[64])               global_sig = Ed25519(sig || trusted comment)
 *
 * nvx's trusted comment is "timestamp:<decimal> nvx-model:<64 hex> name:<name>"
 * (name: optional and last, it runs to the end of the line). Signatures
 * made by plain minisign over the manifest bytes carry other trusted comments
 * ("timestamp:...\tfile:...\thashed"); they are valid too, since the
 * signature covers the manifest bytes whose hash is the model id.
 *
 * Errors (negative errno, nothing here prints):
 *   -EBADMSG   malformed file (base64, lengths, lines, checksum of an
 *              unencrypted key), a signature or global signature that does
 *              not verify, or a trusted comment naming another model
 *   -EMSGSIZE  a line or a whole file over the limits below
 *   -ENOTSUP   an algorithm other than Ed/ED, Sc or none, B2 (including
 *              legacy non-prehashed "Ed" signatures)
 *   -ENOKEY    the signature's key id is not the public key's
 *   -EACCES    an encrypted secret key and no or the wrong passphrase
 *   -EEXIST    a key file already exists and overwrite was not asked for
 *   -EINVAL    caller bug (bad argument, name with control characters, ...)
 *   -ENOMEM, or -errno from the file system
 *
 * Thread safety: functions are reentrant; a cas_seckey may be used by one
 * thread at a time. cas_sig_init() (sodium_init) is called by every entry
 * point that needs randomness or sodium_malloc, and is cheap to repeat.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CAS_KEYID_LEN = 8,       /* minisign key id (random, shown as <= 16 hex) */
    CAS_PK_LEN = 32,         /* Ed25519 public key */
    CAS_SK_LEN = 64,         /* Ed25519 secret key (seed || pk, libsodium) */
    CAS_SIGBYTES = 64,       /* Ed25519 signature */
    CAS_MODEL_ID_LEN = 32,   /* BLAKE2b-256 of the canonical manifest */
    CAS_KEYID_HEX_SIZE = 17, /* <= 16 upper-case hex + NUL, as minisign prints */
    /* Base64 line of a public key ("RW..." 56 chars) + NUL. */
    CAS_PUBKEY_B64_SIZE = 57,
    /* Longest untrusted comment text accepted (minisign COMMENTMAXBYTES). */
    CAS_COMMENT_MAXBYTES = 1024,
    /* Longest trusted comment text accepted (minisign TRUSTEDCOMMENTMAXBYTES). */
    CAS_TRUSTED_COMMENT_MAXBYTES = 8192,
    /* Longest model name in a trusted comment (bytes, no control chars). */
    CAS_SIG_NAME_MAXBYTES = 255,
    /* Longest passphrase (minisign PASSWORDMAXBYTES). */
    CAS_PASSPHRASE_MAXBYTES = 1024,
    /* Largest key or signature file accepted by the parsers. */
    CAS_KEYFILE_MAXBYTES = 2 * 1024 + CAS_TRUSTED_COMMENT_MAXBYTES,
    /* Buffer size that always holds an encoded public or secret key file. */
    CAS_KEYFILE_TEXT_SIZE = 1536,
};

/* scrypt cost written into new encrypted secret keys. DEFAULT is minisign's
 * (libsodium's "sensitive": 1 GiB, seconds); FAST is libsodium's
 * "interactive" (16 MiB) for tests and small devices. Keys loaded from a
 * file use the limits stored in it, up to the MAX values. */
#define CAS_KDF_OPSLIMIT_DEFAULT UINT64_C(33554432)
#define CAS_KDF_MEMLIMIT_DEFAULT UINT64_C(1073741824)
#define CAS_KDF_OPSLIMIT_FAST    UINT64_C(524288)
#define CAS_KDF_MEMLIMIT_FAST    UINT64_C(16777216)
#define CAS_KDF_OPSLIMIT_MAX     UINT64_C(4294967296)
#define CAS_KDF_MEMLIMIT_MAX     UINT64_C(2147483648)

/* A public key: plain data, embeddable, no secret. */
typedef struct cas_pubkey {
    uint8_t keyid[CAS_KEYID_LEN];
    uint8_t pk[CAS_PK_LEN];
} cas_pubkey;

/* A decrypted secret key; opaque, lives in sodium_malloc'd guarded memory. */
typedef struct cas_seckey cas_seckey;

/* What a signature file says, after parsing (and, from cas_sig_verify, after
 * checking). Strings are NUL-terminated copies. */
typedef struct cas_sig_info {
    uint8_t keyid[CAS_KEYID_LEN];
    bool has_timestamp;
    uint64_t timestamp; /* "timestamp:" field, seconds since the epoch */
    bool has_model_id;
    uint8_t model_id[CAS_MODEL_ID_LEN]; /* "nvx-model:" field */
    bool has_name;
    char name[CAS_SIG_NAME_MAXBYTES + 1]; /* "name:" field */
    char trusted_comment[CAS_TRUSTED_COMMENT_MAXBYTES + 1];
} cas_sig_info;

/* Initialises libsodium. Returns 0 or -ENOMEM. */
int cas_sig_init(void);

/* --- key ids ----------------------------------------------------------- */

/* Writes the key id as minisign prints it: the 8 bytes read as a
 * little-endian integer, in upper-case hex without leading zeros (so 1 to
 * 16 digits), NUL-terminated. */
void cas_keyid_format(const uint8_t keyid[static CAS_KEYID_LEN],
                      char out[static CAS_KEYID_HEX_SIZE]);

/* Parses 1 to 16 hex digits (either case, leading zeros optional) as
 * printed by cas_keyid_format or minisign. Returns 0 and writes ret_keyid,
 * or -EINVAL. */
int cas_keyid_parse(const char *hex, uint8_t ret_keyid[static CAS_KEYID_LEN]);

/* --- public keys ------------------------------------------------------- */

/*
 * Parses a public key from buf: either a whole .pub file (untrusted comment
 * line, base64 line) or the bare base64 line ("RW..."), optionally ending in
 * a newline; surrounding blanks of a bare line are ignored. Writes *ret only
 * on success. Returns 0, -EBADMSG, -ENOTSUP or -EMSGSIZE.
 */
int cas_pubkey_decode(const uint8_t *buf, size_t len, cas_pubkey *ret);

/* Writes the bare base64 line of pk (no newline) into out. */
void cas_pubkey_base64(const cas_pubkey *pk, char out[static CAS_PUBKEY_B64_SIZE]);

/*
 * Writes the two-line .pub text ("untrusted comment: minisign public key
 * <KEYID>\n<base64>\n") into out (size bytes, NUL-terminated) and its length
 * (without the NUL) into *ret_len. Returns 0 or -EMSGSIZE if out is short
 * (CAS_KEYFILE_TEXT_SIZE always suffices).
 */
int cas_pubkey_encode(const cas_pubkey *pk, char *out, size_t size, size_t *ret_len);

/* Reads and decodes a public key file (or a file holding the bare line). */
int cas_pubkey_load_file(const char *path, cas_pubkey *ret);

/*
 * Writes pk's .pub text to path, mode 0644. With overwrite false the file is
 * created exclusively (-EEXIST if it exists); with overwrite true it is
 * written beside and renamed over path. The data is fsync'd.
 */
int cas_pubkey_write_file(const cas_pubkey *pk, const char *path, bool overwrite);

/* --- secret keys ------------------------------------------------------- */

/* Makes a new key pair with a random key id. The caller frees *ret with
 * cas_seckey_free. Returns 0 or -ENOMEM. */
int cas_seckey_generate(cas_seckey **ret);

/* Wipes and frees a secret key; NULL is fine. */
void cas_seckey_free(cas_seckey *sk);

/* Writes the public half (key id and Ed25519 public key) into *ret. */
void cas_seckey_public(const cas_seckey *sk, cas_pubkey *ret);

/*
 * Encodes sk as a minisign secret key file into out (size bytes,
 * NUL-terminated; CAS_KEYFILE_TEXT_SIZE suffices), length in *ret_len.
 * passphrase NULL writes an unencrypted key (kdf "\0\0", as `minisign -W`);
 * otherwise the key is encrypted with scrypt(passphrase, random salt,
 * opslimit, memlimit) (0, 0 mean the DEFAULT limits). The caller must wipe
 * out (sodium_memzero) when done: an unencrypted key is the secret itself.
 * Returns 0, -EINVAL (passphrase too long, limits out of range), -EMSGSIZE,
 * -ENOMEM.
 */
int cas_seckey_encode(const cas_seckey *sk, const char *passphrase, uint64_t opslimit,
                      uint64_t memlimit, char *out, size_t size, size_t *ret_len);

/*
 * Encodes sk as with cas_seckey_encode and writes it to path with mode 0600,
 * created exclusively (-EEXIST) unless overwrite, in which case it is written
 * to a new file beside path and renamed over it. The data is fsync'd.
 */
int cas_seckey_write_file(const cas_seckey *sk, const char *path, const char *passphrase,
                          uint64_t opslimit, uint64_t memlimit, bool overwrite);

/*
 * Parses a secret key file without decrypting it: whether it is encrypted
 * and the scrypt memory limit it asks for (0 when unencrypted). (The key id
 * is inside the encrypted part.) Either out-pointer may be NULL.
 * Returns 0, -EBADMSG, -ENOTSUP or -EMSGSIZE.
 */
int cas_seckey_probe(const uint8_t *buf, size_t len, bool *ret_encrypted, uint64_t *ret_memlimit);

/*
 * Decodes (and for an encrypted key decrypts with passphrase) a secret key
 * file. The passphrase is ignored for an unencrypted key. Returns 0 and a
 * key the caller frees with cas_seckey_free, or -EACCES (encrypted and
 * passphrase NULL, or wrong passphrase: the checksum does not match),
 * -EBADMSG (malformed, or the checksum of an unencrypted key is wrong, or the
 * public half does not match the secret), -ENOTSUP, -EMSGSIZE, -ENOMEM.
 */
int cas_seckey_decode(const uint8_t *buf, size_t len, const char *passphrase, cas_seckey **ret);

/* Reads path (at most CAS_KEYFILE_MAXBYTES, into guarded memory) and calls
 * cas_seckey_decode. Also -errno from open/read. */
int cas_seckey_load_file(const char *path, const char *passphrase, cas_seckey **ret);

/* --- signatures -------------------------------------------------------- */

/*
 * Signs manifest bytes: prehashed "ED" signature over BLAKE2b-512(manifest),
 * trusted comment "timestamp:<timestamp> nvx-model:<hex of BLAKE2b-256
 * (manifest)>[ name:<name>]". name may be NULL; it must be at most
 * CAS_SIG_NAME_MAXBYTES bytes without control characters (-EINVAL).
 * Returns 0 and a malloc'd NUL-terminated signature file in *ret_sig (length
 * in *ret_len, without the NUL), or -EINVAL / -ENOMEM.
 */
int cas_sig_sign(const cas_seckey *sk, const uint8_t *manifest, size_t manifest_len,
                 const char *name, uint64_t timestamp, char **ret_sig, size_t *ret_len);

/*
 * Parses a signature file without checking it: key id and trusted comment
 * fields go into *ret (written only on success). Use it to find the key to
 * verify with; trust nothing in it before cas_sig_verify succeeds.
 * Returns 0, -EBADMSG, -ENOTSUP or -EMSGSIZE.
 */
int cas_sig_parse(const uint8_t *sig, size_t sig_len, cas_sig_info *ret);

/*
 * Verifies a signature file against pk and the manifest bytes: the key ids
 * must match (-ENOKEY), the signature must verify over BLAKE2b-512(manifest)
 * and the global signature over sig || trusted comment (-EBADMSG), and a
 * "nvx-model:" field, if present, must name BLAKE2b-256(manifest) (-EBADMSG).
 * On success returns 0 and, if ret_info is not NULL, the parsed fields.
 */
int cas_sig_verify(const cas_pubkey *pk, const uint8_t *sig, size_t sig_len,
                   const uint8_t *manifest, size_t manifest_len, cas_sig_info *ret_info);

#endif
