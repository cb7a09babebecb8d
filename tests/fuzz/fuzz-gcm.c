/* SPDX-License-Identifier: MIT */
/*
 * Differential fuzzing of proto/gcm.c, AES-256-GCM through OpenSSL, against
 * libsodium's crypto_aead_aes256gcm. Input: byte 0 is the associated-data
 * length (mod 65), then a 32-byte key, a 12-byte nonce, the associated data
 * and the message. Both must seal to the same bytes; each must open the
 * other's output; with one bit flipped (chosen by the input) both must
 * refuse, ours leaving zeros; the message read as a sealed frame must get the
 * same verdict from both. Does nothing on a CPU without AES-NI (libsodium's
 * side needs it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "proto/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
    if (!ok)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0 || !crypto_aead_aes256gcm_is_available())
        return 0;
    if (size < 1 + 32 + 12)
        return 0;
    size_t adlen = data[0] % 65;
    const uint8_t *key = data + 1, *npub = data + 33;
    size_t off = 1 + 32 + 12;
    if (size - off < adlen)
        return 0;
    const uint8_t *ad = data + off, *m = ad + adlen;
    size_t mlen = size - off - adlen;

    struct proto__gcm_key ks = { 0 }, ko = { 0 };
    crypto_aead_aes256gcm_state ref;
    check(proto__gcm_init(&ks, key, true) && proto__gcm_init(&ko, key, false));
    crypto_aead_aes256gcm_beforenm(&ref, key);
    uint8_t *c1 = malloc(mlen + 16), *c2 = malloc(mlen + 16), *p = malloc(mlen + 1);
    if (!c1 || !c2 || !p)
        abort();
    unsigned long long n;
    check(crypto_aead_aes256gcm_encrypt_afternm(c1, &n, m, mlen, ad, adlen, NULL, npub, &ref) == 0);
    check(proto__gcm_seal(&ks, c2, m, mlen, ad, adlen, npub));
    check(memcmp(c1, c2, mlen + 16) == 0);
    check(proto__gcm_open(&ko, p, c1, mlen + 16, ad, adlen, npub) && memcmp(p, m, mlen) == 0);

    /* One flipped bit, its place taken from the input. */
    size_t bit = (size_t)(data[size - 1] | data[size / 2] << 8) % (8 * (mlen + 16));
    c2[bit / 8] ^= (uint8_t)(1u << bit % 8);
    check(!proto__gcm_open(&ko, p, c2, mlen + 16, ad, adlen, npub));
    for (size_t i = 0; i < mlen; i++)
        check(p[i] == 0);
    check(crypto_aead_aes256gcm_decrypt_afternm(p, &n, NULL, c2, mlen + 16, ad, adlen, npub,
                                                &ref) != 0);

    /* The message as if it were a sealed frame off the wire. */
    if (mlen >= 16) {
        bool ours = proto__gcm_open(&ko, p, m, mlen, ad, adlen, npub);
        bool theirs = crypto_aead_aes256gcm_decrypt_afternm(c1, &n, NULL, m, mlen, ad, adlen, npub,
                                                            &ref) == 0;
        check(ours == theirs);
    }
    proto__gcm_free(&ks);
    proto__gcm_free(&ko);
    free(c1), free(c2), free(p);
    return 0;
}
