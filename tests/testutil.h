/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTUTIL_H
#define NVX_TESTUTIL_H
/*
 * Helpers shared by the cmocka suites: temporary directories, the real model
 * files in ../shared/models, whole-file reads and running the built binaries.
 * Test-only code; it may abort on allocation failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its malloc'd
 * path. Aborts on failure. */
char *tu_tmpdir(const char *tag);

/* Removes a directory tree (best effort). */
void tu_rm_rf(const char *path);

/* Returns the malloc'd path of a file in the shared models folder
 * ($NVX_SHARED_MODELS), or NULL after printing a "skipping: ..." line when the
 * folder or the file is absent. Callers then call cmocka's skip(). */
char *tu_model_path(const char *name);
/* True when the tests run under an emulator (qemu-user: the cross builds of
 * contrib/nvx-dev set NVX_TEST_EMULATED): slow exhaustive loops then take
 * one case of each kind instead of all. */
bool tu_emulated(void);

/* Reads a whole file into malloc'd memory. Returns 0 or negative errno. */
int tu_read_file(const char *path, uint8_t **ret_buf, size_t *ret_len);

/* Writes len bytes to path (created 0644, truncated). Returns 0 or -errno. */
int tu_write_file(const char *path, const void *buf, size_t len);

/* Path of a built binary relative to the build root, e.g. "cli/nvx";
 * malloc'd. Uses $NVX_BUILD_ROOT set by tests/meson.build. */
char *tu_build_path(const char *rel);

/* Runs argv (argv[0] is a path) with stdout and stderr captured into
 * malloc'd NUL-terminated strings (either out-pointer may be NULL). Returns
 * the exit status (0..255), 128+signal if it died from a signal, or -errno.
 * A program of this build ($NVX_BUILD_ROOT/...) runs through
 * $NVX_TEST_WRAPPER when set: a cross build's tests run under qemu-user,
 * and so must the nvx they start (tests/meson.build sets it from the cross
 * file's nvx_test_wrapper property). */
int tu_run(char *const argv[], char **ret_out, char **ret_err);

/* Returns the malloc'd path of the executable name found in $PATH (or
 * /usr/bin:/bin when PATH is unset), or NULL when there is none. */
char *tu_find_program(const char *name);

/* Fills buf with deterministic pseudo-random bytes from seed (xorshift). */
void tu_fill_random(void *buf, size_t len, uint64_t seed);

#endif
