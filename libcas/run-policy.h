/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_RUN_POLICY_H
#define NVX_LIBCAS_RUN_POLICY_H
/*
 * The run policy: what a store model must pass before any program maps it
 * for the runtime ("run only what verifies"). nvx run/eval/quantize
 * (cli/run-check.c) and nvxd's generation worker (daemon/gen.c) ask this
 * one function, so that the CLI and the node can never disagree.
 *
 * - The model is complete.
 * - Every chunk is re-hashed against the manifest (cas_store_verify()) on
 *   every check: the data file can rot or be changed after the chunks
 *   entered the store, and nothing records that it did not.
 * - With CAS_RUN_REQUIRE_TRUSTED, at least one attached signature verifies
 *   with a key of the store's keyring. Blobs kept apart (unknown keys) are
 *   counted but never trusted.
 *
 * Blocking (hashes the whole model): never call it on an event loop.
 * Thread safety: any thread (the store is thread-safe per call).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libcas/hash.h"
#include "libcas/store.h"

enum {
    CAS_RUN_REQUIRE_TRUSTED = 1u << 0,
};

/* The environment setting that turns CAS_RUN_REQUIRE_TRUSTED on for nvx
 * and nvxd alike ("1", "yes" or "true"; anything else, or unset, leaves
 * it off). */
#define CAS_RUN_REQUIRE_TRUSTED_ENV "NVX_REQUIRE_TRUSTED"

/* True when CAS_RUN_REQUIRE_TRUSTED_ENV asks for trusted signatures. */
bool cas_run_policy_env(void);

/* What a refusal was about. */
typedef struct cas_run_verdict {
    cas_model_info info;   /* the model's record (valid unless -ENOENT) */
    cas_store_problem bad; /* -EBADMSG: the first bad chunk (bad.error != 0 when known) */
    size_t n_sigs;         /* -EACCES: signatures seen, none trusted */
} cas_run_verdict;

/* Checks model id against the policy above. Fills *ret (always, zeroed
 * first) and returns 0 (may run), -ENOENT (unknown), -EAGAIN (not
 * complete), -EBADMSG (a chunk or the data file does not match),
 * -EACCES (no trusted signature while one is required), -ENOMEM, or
 * another errno from the store. */
int cas_run_policy_check(cas_store *s, const uint8_t id[static CAS_HASH_LEN], unsigned flags,
                         cas_run_verdict *ret);

#endif
