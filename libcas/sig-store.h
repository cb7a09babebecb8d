/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_SIG_STORE_H
#define NVX_LIBCAS_SIG_STORE_H
/*
 * Which signatures a store keeps (libcas/sig-store.c): a blob is attached
 * to a model only when it verifies under a key we know (the keyring's, or
 * the signer's own key); one from a key nobody here trusts is kept apart
 * until that key is trusted, then checked; forgeries are never stored.
 * cas_store_sig_add() (libcas/store.h) is the checked entry point for blobs
 * from elsewhere (peers).
 *
 * Thread safety: as libcas/store.h (each call its own transactions).
 */
#include <stdint.h>

#include "libcas/sig.h"
#include "libcas/store.h"

/* Attaches blob to model id after checking it with pk (the signer's own
 * public key, e.g. nvx sign's), whether or not the keyring holds pk.
 * Returns 1 attached, 0 already there, -EBADMSG (does not verify or names
 * another model), -ENOENT, -EMSGSIZE. */
int cas_store_sig_add_key(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const void *blob,
                          size_t len, const cas_pubkey *pk);

typedef struct cas_sig_recheck_result {
    unsigned attached; /* kept-apart blobs that verified and are now attached */
    unsigned dropped;  /* kept-apart blobs that did not verify: removed */
} cas_sig_recheck_result;

/*
 * Checks every kept-apart signature of key id keyid with the key the
 * keyring now holds for it: good ones are attached, ones that do not
 * verify are removed (attached ones are left alone). Call after trusting a key (nvx trust
 * add). Returns 0 and *ret, -ENOENT (keyring lacks keyid), store errors.
 */
int cas_store_sig_recheck(cas_store *s, const uint8_t keyid[static CAS_KEYID_LEN],
                          cas_sig_recheck_result *ret);

#endif
