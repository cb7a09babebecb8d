/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_STOREUTIL_H
#define NVX_TESTS_STOREUTIL_H
/*
 * The fixture and small helpers of the store tests (test-store*.c): a store
 * created in a fresh temp directory per test, random inputs, adding and
 * exporting through files. Test-only code: it fails the running cmocka test
 * on errors and may abort on allocation failure.
 */
#include <stddef.h>
#include <stdint.h>

#include "libcas/manifest.h"
#include "libcas/store.h"

typedef struct su_fixture {
    char *dir;  /* temp dir holding files and the store */
    char *sdir; /* the store */
    cas_store *s;
} su_fixture;

/* dir/name, malloc'd. */
char *su_path_in(const char *dir, const char *name);

/* cmocka setup/teardown: *state is a su_fixture with an open store in a new
 * temp dir; teardown closes it and removes the dir. */
int su_setup(void **state);
int su_teardown(void **state);

/* len (may be 0) reproducible random bytes from seed, malloc'd. */
uint8_t *su_random_bytes(size_t len, uint64_t seed);

/* Adds len bytes of buf through a file in dir; returns add's result. */
int su_add_buf(cas_store *s, const char *dir, const void *buf, size_t len,
               const cas_store_add_opts *o, uint8_t id[CAS_HASH_LEN]);

/* Exports model id through a file in dir and checks it equals buf. */
void su_assert_export_equals(cas_store *s, const char *dir, const uint8_t id[CAS_HASH_LEN],
                             const void *buf, size_t len);

/* Number of entries not starting with '.' in sdir/sub. */
size_t su_count_dir(const char *sdir, const char *sub);

/* The decoded manifest of model id; free with cas_manifest_free(). */
cas_manifest *su_manifest_of(cas_store *s, const uint8_t id[CAS_HASH_LEN]);

/* Flips one bit of the byte at off of the file at path, leaving the file
 * mode 0444 as the store's data files are. */
void su_flip_byte(const char *path, uint64_t off);

#endif
