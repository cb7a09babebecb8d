/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the minisign file parsers in libcas/key.c and sig.c: every
 * input is tried as a public key, a secret key (never decrypted: no
 * passphrase is given, so scrypt never runs) and a signature file. What
 * parses must round-trip: a decoded public key re-encodes and decodes to the
 * same key, a decoded secret key signs a manifest that its public key then
 * verifies, and a parsed signature's fields are NUL-terminated and in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t MANIFEST[] = "fuzz manifest";

static void
try_pubkey(const uint8_t *data, size_t size)
{
    cas_pubkey k, back;
    char text[CAS_KEYFILE_TEXT_SIZE];
    size_t n;
    if (cas_pubkey_decode(data, size, &k) < 0)
        return;
    if (cas_pubkey_encode(&k, text, sizeof(text), &n) < 0 ||
        cas_pubkey_decode((const uint8_t *)text, n, &back) < 0 || memcmp(&k, &back, sizeof(k)) != 0)
        abort();
}

static void
try_seckey(const uint8_t *data, size_t size)
{
    bool enc;
    uint64_t mem;
    cas_seckey *sk = NULL;
    cas_pubkey pk;
    char *sig = NULL;
    size_t n;
    cas_sig_info info;
    if (cas_seckey_probe(data, size, &enc, &mem) < 0)
        return;
    if (cas_seckey_decode(data, size, NULL, &sk) < 0)
        return;
    if (enc)
        abort(); /* an encrypted key cannot open without a passphrase */
    cas_seckey_public(sk, &pk);
    if (cas_sig_sign(sk, MANIFEST, sizeof(MANIFEST), "fuzz", 1, &sig, &n) < 0 ||
        cas_sig_verify(&pk, (const uint8_t *)sig, n, MANIFEST, sizeof(MANIFEST), &info) < 0)
        abort();
    free(sig);
    cas_seckey_free(sk);
}

static void
try_sig(const uint8_t *data, size_t size)
{
    cas_sig_info *info = malloc(sizeof(*info));
    if (!info)
        return;
    if (cas_sig_parse(data, size, info) == 0) {
        if (memchr(info->trusted_comment, '\0', sizeof(info->trusted_comment)) == NULL ||
            memchr(info->name, '\0', sizeof(info->name)) == NULL)
            abort();
        /* Verification with a key of the same id reaches the crypto checks. */
        cas_pubkey pk;
        memcpy(pk.keyid, info->keyid, CAS_KEYID_LEN);
        memset(pk.pk, 0x42, sizeof(pk.pk));
        (void)cas_sig_verify(&pk, data, size, MANIFEST, sizeof(MANIFEST), info);
    }
    free(info);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cas_sig_init() < 0)
        abort();
    try_pubkey(data, size);
    try_seckey(data, size);
    try_sig(data, size);
    return 0;
}
