/* SPDX-License-Identifier: MIT */
#ifndef NVX_LIBCAS_INTERNAL_H
#define NVX_LIBCAS_INTERNAL_H
/*
 * Cross-file internals of libcas (cas__ prefix). Not installed; exported from
 * the static library only for libcas's own files and its tests.
 */
#include <stddef.h>
#include <stdint.h>

#include "libcas/hash.h"

/* BLAKE2b-256 through libb2 (reference for the libsodium hot path). */
void cas__hash_b2(const void *buf, size_t len, uint8_t ret[static CAS_HASH_LEN]);

/* The value of one hex digit (either case), or -1. */
int cas__hex_value(char c);

/* The chunker's 256-entry gear table. */
extern const uint64_t *const cas__gear;

#endif
