/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_SIGS_H
#define NVX_CLI_SIGS_H
/*
 * Checking a model's attached signatures against the store's keyring, for
 * nvx info and nvx verify. A signature counts as trusted only when it
 * verifies with a key from the keyring; a signature from an unknown key
 * cannot be checked (no public key) and is reported as untrusted.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/json.h"
#include "libcas/hash.h"
#include "libcas/sig.h"

typedef struct cas_store cas_store;

typedef enum cli_sig_status {
    CLI_SIG_TRUSTED = 0, /* verified with a keyring key */
    CLI_SIG_UNTRUSTED,   /* signed by a key not in the keyring (not checkable) */
    CLI_SIG_INVALID,     /* keyring key, but the signature does not verify */
    CLI_SIG_MALFORMED,   /* the blob does not parse */
    _CLI_SIG_STATUS_MAX
} cli_sig_status;

typedef struct cli_sig_result {
    cli_sig_status status;
    char keyid[CAS_KEYID_HEX_SIZE]; /* "" when malformed */
    char key_name[256];             /* keyring name ("" when none) */
    cas_sig_info info;              /* parsed fields (trust them only when TRUSTED) */
    bool kept_apart;                /* held apart: its key was unknown when it came */
} cli_sig_result;

/* "trusted", "untrusted", "invalid", "malformed". */
const char *cli_sig_status_name(cli_sig_status s);

/*
 * Checks every signature of model id, attached or kept apart, (whose canonical manifest bytes are
 * manifest[0..len)). Writes a malloc'd array (caller frees; NULL when none)
 * and its length. Returns 0 or a negative errno from the store.
 */
int cli_sigs_check(cas_store *s, const uint8_t id[static CAS_HASH_LEN], const uint8_t *manifest,
                   size_t len, cli_sig_result **ret, size_t *ret_n);

/* Prints "KEYID (key name, status)" for one result (the key name escaped,
 * left out when the keyring has none). */
void cli_sig_print(FILE *f, const cli_sig_result *r);

/* Emits the results as a JSON array. */
void cli_sigs_json(cli_json *j, const cli_sig_result *r, size_t n);

#endif
