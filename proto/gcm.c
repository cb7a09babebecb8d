/* SPDX-License-Identifier: MIT */
/*
 * AES-256-GCM (NIST SP 800-38D: 96-bit nonce, 128-bit tag) through
 * OpenSSL's EVP interface. The bytes are exactly those of libsodium's
 * crypto_aead_aes256gcm; the tests and a fuzz target hold the two to each
 * other, and a session on either talks to a session on the other.
 *
 * Why OpenSSL and not our own or libsodium's: the project writes no
 * cryptographic primitive of its own (a bug in GCM is a forgery on an
 * internet-facing daemon; an earlier hand-written VAES version was
 * replaced by this file). libsodium 1.0.18 (Debian 12) does AES-GCM with
 * 128-bit AES-NI only, opens in two passes and has no ARM version; OpenSSL
 * 3 (Debian's libssl-dev) is reviewed, picks the widest AES and carry-less
 * multiply the CPU has (AVX-512 VAES, AES-NI, ARMv8 crypto extensions) and
 * measured about 2.5x libsodium here. libsodium keeps everything else.
 *
 * open() writes plaintext before it knows the tag is right (one pass) and
 * wipes it all on a mismatch: callers must not look at m unless it returns
 * true.
 */
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "proto/internal.h"

bool
proto__gcm_init(struct proto__gcm_key *k, const uint8_t key[static PROTO__KEY_LEN], bool seal)
{
    if (!k->ctx && !(k->ctx = EVP_CIPHER_CTX_new()))
        return false;
    /* The first call picks the cipher; later ones (the ratchet) only
     * replace the key, which OpenSSL expands into the context. */
    const EVP_CIPHER *cipher = k->keyed ? NULL : EVP_aes_256_gcm();
    k->keyed = (seal ? EVP_EncryptInit_ex(k->ctx, cipher, NULL, key, NULL)
                     : EVP_DecryptInit_ex(k->ctx, cipher, NULL, key, NULL)) == 1;
    return k->keyed;
}

void
proto__gcm_free(struct proto__gcm_key *k)
{
    EVP_CIPHER_CTX_free(k->ctx); /* cleanses the key schedule */
    k->ctx = NULL;
    k->keyed = false;
}

/* OpenSSL takes int lengths: the INT_MAX checks below also keep every
 * message under GCM's own limit, on 32-bit size_t too (where comparing a
 * size_t with that 64-bit limit is always false and -Wtype-limits says so). */
_Static_assert(INT_MAX <= PROTO__GCM_MSG_MAX, "INT_MAX bound must imply GCM's limit");

bool
proto__gcm_seal(struct proto__gcm_key *k, uint8_t *c, const uint8_t *m, size_t mlen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    int n, fin;
    if (mlen > INT_MAX || adlen > INT_MAX)
        return false;
    return EVP_EncryptInit_ex(k->ctx, NULL, NULL, NULL, npub) == 1 &&
           (adlen == 0 || EVP_EncryptUpdate(k->ctx, NULL, &n, ad, (int)adlen) == 1) &&
           EVP_EncryptUpdate(k->ctx, c, &n, m, (int)mlen) == 1 && (size_t)n == mlen &&
           EVP_EncryptFinal_ex(k->ctx, c + n, &fin) == 1 && fin == 0 &&
           EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_GCM_GET_TAG, PROTO__GCM_TAG, c + mlen) == 1;
}

bool
proto__gcm_open(struct proto__gcm_key *k, uint8_t *m, const uint8_t *c, size_t clen,
                const uint8_t *ad, size_t adlen, const uint8_t npub[static PROTO__GCM_NPUB])
{
    if (clen < PROTO__GCM_TAG || clen - PROTO__GCM_TAG > INT_MAX || adlen > INT_MAX)
        return false;
    size_t mlen = clen - PROTO__GCM_TAG;
    uint8_t tag[PROTO__GCM_TAG]; /* m may be c: keep the tag before it is overwritten */
    memcpy(tag, c + mlen, PROTO__GCM_TAG);
    int n, fin;
    bool ok = EVP_DecryptInit_ex(k->ctx, NULL, NULL, NULL, npub) == 1 &&
              EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_GCM_SET_TAG, PROTO__GCM_TAG, tag) == 1 &&
              (adlen == 0 || EVP_DecryptUpdate(k->ctx, NULL, &n, ad, (int)adlen) == 1) &&
              EVP_DecryptUpdate(k->ctx, m, &n, c, (int)mlen) == 1 && (size_t)n == mlen &&
              EVP_DecryptFinal_ex(k->ctx, m + n, &fin) == 1 && fin == 0;
    if (!ok)
        sodium_memzero(m, mlen);
    return ok;
}
