/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_CLITEST_H
#define NVX_TESTS_CLITEST_H
/* Helpers for the cli tests that run the real nvx binary. */
#include <stddef.h>
#include <stdint.h>

/* Path of the built nvx (malloc'd once, never freed). */
const char *ct_nvx(void);

/*
 * Runs `nvx --store STORE ARGS...` (NULL-terminated; store NULL: no --store)
 * with stdout/stderr captured into malloc'd strings (out-pointers may be
 * NULL). Returns the exit status as tu_run does.
 */
int ct_run(const char *store, char **ret_out, char **ret_err, ...);

/* Like ct_run, but fails the test (printing stderr) unless the exit code
 * is 0. */
void ct_ok(const char *store, char **ret_out, char **ret_err, ...);

/* Same with an argv array of n words. */
int ct_runv(const char *store, int n, char *const *args, char **ret_out, char **ret_err);

/* A temp directory and a store path inside it (not created). */
typedef struct ct_fixture {
    char *dir;
    char store[4096];
} ct_fixture;

/* cmocka setup/teardown: *state becomes a ct_fixture; teardown removes the
 * directory with everything in it. */
int ct_fixture_setup(void **state);
int ct_fixture_teardown(void **state);

/* Asserts err is exactly one line "nvx: ...\n" that contains needle (if not
 * NULL), and prints it on failure. */
void ct_assert_one_error(const char *err, const char *needle);

/* The last whitespace-separated word of the last line of out (static). */
const char *ct_last_word(const char *out);

/* Writes a file of n deterministic pseudo-random bytes. */
void ct_write_random(const char *path, size_t n, uint64_t seed);

/* True when two files have identical bytes. */
int ct_files_equal(const char *a, const char *b);

/* Flips one bit of the byte at offset in path (chmod u+w first). */
void ct_flip_byte(const char *path, uint64_t offset);

/* Asserts s is exactly one valid JSON document (RFC 8259, UTF-8) followed
 * by a newline. */
void ct_assert_json(const char *s);

/* Returns 1 when s is one valid JSON document followed by a newline. */
int ct_json_valid(const char *s);

/* "<dir>/<name>" in a static rotating buffer (8 slots). */
const char *ct_path(const char *dir, const char *name);

#endif
