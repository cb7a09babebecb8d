/* SPDX-License-Identifier: MIT */
/*
 * Bad input through the real binary: each case gets one error line on
 * stderr and a non-zero exit code, and loses nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/chunkplan.h"
#include "clitest.h"
#include "libcas/manifest.h"
#include "testutil.h"

typedef ct_fixture fixture;

/* Runs nvx with args, expects exit code `code` and one error line with needle. */
static void
expect_fail(const char *store, int code, const char *needle, int n, char **args)
{
    char *out, *err;
    int r = ct_runv(store, n, args, &out, &err);
    if (r != code)
        fail_msg("%s: exit %d, wanted %d; stderr: %s", args[0], r, code, err);
    ct_assert_one_error(err, needle);
    free(out);
    free(err);
}

#define EXPECT_FAIL(store, code, needle, ...)                                    \
    do {                                                                         \
        char *a_[] = { __VA_ARGS__ };                                            \
        expect_fail(store, code, needle, (int)(sizeof(a_) / sizeof(a_[0])), a_); \
    } while (0)

extern char **environ;

/* Runs `nvx --store store add file` in a child that first calls
 * prep(arg) (resource limits, dropping privileges); returns the exit
 * status, with stderr captured into err[0..cap). */
static int
add_in_child(const char *store, const char *file, void (*prep)(const void *), const void *arg,
             char *err, size_t cap)
{
    int pe[2];
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Opened before prep drops privileges: the build directory may be
         * one that nobody cannot enter (a clone in a mode-0700 directory). */
        int exe = open(ct_nvx(), O_RDONLY | O_CLOEXEC);
        prep(arg);
        dup2(pe[1], 2);
        close(pe[0]);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        char *argv[] = { "nvx", "--store", (char *)store, "add", (char *)file, NULL };
        fexecve(exe, argv, environ);
        _exit(127);
    }
    close(pe[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(pe[0], err + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    err[n] = '\0';
    close(pe[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* RLIMIT_FSIZE at *(rlim_t *)arg bytes, SIGXFSZ ignored: writes past it
 * fail with EFBIG as on a full disk. */
static void
limit_fsize(const void *arg)
{
    rlim_t limit = *(const rlim_t *)arg;
    struct rlimit rl = { limit, limit };
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
}

/* Becomes nobody, for whom a mode-000 file is unreadable (root reads it). */
static void
become_nobody(const void *arg)
{
    (void)arg;
    if (setgid(65534) < 0 || setuid(65534) < 0)
        _exit(126);
}

static void
test_usage(void **state)
{
    fixture *f = *state;
    const char *file = ct_path(f->dir, "x.bin");
    ct_write_random(file, 5000, 1);
    char *fl = (char *)file;
    EXPECT_FAIL(f->store, 2, "no command given", "--json");
    EXPECT_FAIL(f->store, 2, "unknown command 'frob'", "frob");
    EXPECT_FAIL(f->store, 2, "unknown option '--bogus'", "add", fl, "--bogus");
    EXPECT_FAIL(f->store, 2, "use one of auto, cdc, gguf, llama2c, fixed", "add", fl, "--chunker",
                "zip");
    EXPECT_FAIL(f->store, 2, "out of range", "add", fl, "--min", "1");
    EXPECT_FAIL(f->store, 2, "invalid size", "add", fl, "--avg", "64X");
    EXPECT_FAIL(f->store, 2, "power of two", "add", fl, "--avg", "65000");
    EXPECT_FAIL(f->store, 2, "needs a value", "add", fl, "--name");
    EXPECT_FAIL(f->store, 2, "not look like an id", "add", fl, "--name", "deadbeef00");
    EXPECT_FAIL(f->store, 2, "missing argument", "add");
    EXPECT_FAIL(f->store, 2, "too many arguments", "add", fl, fl);
    EXPECT_FAIL(f->store, 2, "is a directory", "add", f->dir);
    EXPECT_FAIL(f->store, 2, "needs an output file", "export", "abcdefgh");
    EXPECT_FAIL(f->store, 2, "missing argument", "verify");
    /* A hostile file name cannot break the one-line rule. */
    EXPECT_FAIL(f->store, 3, "\\x0a", "add", "/nonexistent/a\nb\x1b[2J");
}

static void
test_paths_and_ids(void **state)
{
    fixture *f = *state;
    EXPECT_FAIL(f->store, 3, "No such file or directory: check the path", "add",
                "/nonexistent/file.gguf");
    /* Commands that read need an existing store. */
    EXPECT_FAIL(f->store, 3, "no store at", "info", "abcdefgh");
    const char *file = ct_path(f->dir, "x.bin");
    ct_write_random(file, 5000, 2);
    char *out, *err;
    assert_int_equal(ct_run(f->store, &out, &err, "add", (char *)file, NULL), 0);
    char *id = strdup(ct_last_word(out));
    free(out);
    free(err);
    EXPECT_FAIL(f->store, 3, "no model matches 'abcdef0123'", "info", "abcdef0123");
    EXPECT_FAIL(f->store, 3, "needs 8 or more hex", "info", "abc");
    EXPECT_FAIL(f->store, 3, "no model named 'nosuchname'", "export", "nosuchname", "-o",
                (char *)ct_path(f->dir, "o"));
    EXPECT_FAIL(f->store, 3, "no model matches", "verify", "0123456789abcdef");
    EXPECT_FAIL(f->store, 3, "no model matches", "rm", "0123456789abcdef");
    /* Errors from the system say what to do too. */
    EXPECT_FAIL(f->store, 1, "Is a directory: give a file name", "export", id, "-o", f->dir);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' --store '%s' cat %s > /dev/full", ct_nvx(), f->store, id);
    char *sh[] = { "/bin/sh", "-c", cmd, NULL };
    assert_int_equal(tu_run(sh, &out, &err), 1);
    ct_assert_one_error(err, "No space left on device: free space and try again");
    free(out);
    free(err);
    EXPECT_FAIL(f->store, 3, "No such file or directory: check the path", "manifest", id, "-o",
                "/nonexistent/dir/m.nvxm");
    free(id);
    const char *locked = ct_path(f->dir, "locked.bin");
    ct_write_random(locked, 100, 3);
    assert_int_equal(chmod(locked, 0), 0);
    if (geteuid() != 0) {
        EXPECT_FAIL(f->store, 1, "Permission denied", "add", (char *)locked);
    } else {
        /* Root reads mode-000 files anyway: run the add as nobody (who may
         * pass through the test directory but not read the file). */
        assert_int_equal(chmod(f->dir, 0711), 0);
        char msg[4096];
        int r = add_in_child(f->store, locked, become_nobody, NULL, msg, sizeof(msg));
        assert_int_equal(r, 1);
        char want[4200];
        snprintf(want, sizeof(want), "cannot open %s: Permission denied: check the file's", locked);
        ct_assert_one_error(msg, want);
        assert_int_equal(chmod(f->dir, 0700), 0);
    }
}

static void
test_not_a_store(void **state)
{
    fixture *f = *state;
    const char *notstore = ct_path(f->dir, "notstore");
    mkdir(notstore, 0700);
    ct_write_random(ct_path(notstore, "precious.txt"), 100, 4);
    const char *file = ct_path(f->dir, "x.bin");
    ct_write_random(file, 5000, 5);
    /* An empty directory is a store not made yet: nothing to list, and
     * the commands that need a store say how to make one. */
    const char *empty = ct_path(f->dir, "empty");
    mkdir(empty, 0700);
    char *out, *err;
    ct_ok(empty, &out, &err, "--json", "ls", NULL);
    assert_string_equal(out, "[]\n");
    free(out);
    free(err);
    EXPECT_FAIL(empty, 3, "no store at", "verify", "--all");
    EXPECT_FAIL(notstore, 3, "is not an nvx store", "ls");
    EXPECT_FAIL(notstore, 3, "is not an nvx store", "add", (char *)file);
    struct stat st;
    assert_int_equal(stat(ct_path(notstore, "precious.txt"), &st), 0);
    assert_int_equal(stat(ct_path(notstore, "nvx-store"), &st), -1);
    /* A regular file as the store. */
    EXPECT_FAIL(file, 3, "store", "ls");
}

/* What `nvx add FILE --chunker MODE` must do with a damaged or foreign file:
 * exit code per mode (auto, cdc, gguf, llama2c, fixed) and the error. */
typedef struct bad_case {
    const char *file;
    int code[5];
    const char *why; /* in the error line of the failing modes */
} bad_case;

static void
test_bad_models(void **state)
{
    fixture *f = *state;
    char *gguf = tu_model_path("aidreams260K-f32.gguf");
    char *l2c = tu_model_path("aidreams260K.bin");
    if (!gguf || !l2c)
        skip();
    uint8_t *g, *l;
    size_t glen, llen;
    assert_int_equal(tu_read_file(gguf, &g, &glen), 0);
    assert_int_equal(tu_read_file(l2c, &l, &llen), 0);
    char *paths[6];
    const char *names[6] = {
        "empty", "garbage", "head.gguf", "tail.gguf", "short.bin", "long.bin"
    };
    for (int i = 0; i < 6; i++)
        paths[i] = strdup(ct_path(f->dir, names[i]));
    assert_int_equal(tu_write_file(paths[0], g, 0), 0);
    ct_write_random(paths[1], 70000, 6);
    assert_int_equal(tu_write_file(paths[2], g, 3000), 0);      /* in the metadata */
    assert_int_equal(tu_write_file(paths[3], g, glen - 10), 0); /* in the last tensor */
    assert_int_equal(tu_write_file(paths[4], l, llen / 2), 0);  /* llama2.c: size off */
    uint8_t *l2 = malloc(llen + 1);
    memcpy(l2, l, llen);
    l2[llen] = 0;
    assert_int_equal(tu_write_file(paths[5], l2, llen + 1), 0);
    /* A file that is not of the asked format is refused (exit 4); auto only
     * refuses a file that starts with the GGUF magic and does not parse,
     * and adds anything else as raw bytes, like cdc and fixed. */
    const bad_case cases[] = {
        { paths[0], { 0, 0, 4, 4, 0 }, NULL },
        { paths[1], { 0, 0, 4, 4, 0 }, NULL },
        { paths[2], { 4, 0, 4, 4, 0 }, "malformed GGUF" },
        { paths[3], { 4, 0, 4, 4, 0 }, "malformed GGUF" },
        { paths[4], { 0, 0, 4, 4, 0 }, NULL },
        { paths[5], { 0, 0, 4, 4, 0 }, NULL },
    };
    size_t added = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (int m = 0; m < 5; m++) {
            char *out, *err;
            char *args[] = { "add", (char *)cases[c].file, "--chunker",
                             (char *)cli_chunker_mode_names[m] };
            int r = ct_runv(f->store, 4, args, &out, &err);
            if (r != cases[c].code[m])
                fail_msg("add %s --chunker %s: exit %d, wanted %d: %s", cases[c].file,
                         cli_chunker_mode_names[m], r, cases[c].code[m], err);
            if (r == 0) {
                assert_string_equal(err, "");
                added += strstr(out, "already stored") == NULL;
            } else if (m == CLI_CHUNKER_GGUF && !cases[c].why) {
                ct_assert_one_error(err, "not a GGUF file: check the file or use --chunker cdc");
            } else if (m == CLI_CHUNKER_LLAMA2C) {
                ct_assert_one_error(err, "not a llama2.c checkpoint");
            } else {
                ct_assert_one_error(err, cases[c].why);
            }
            free(out);
            free(err);
        }
    }
    /* What was added is whole; what failed left nothing behind. */
    char *out, *err;
    ct_ok(f->store, &out, &err, "-q", "ls", NULL);
    assert_int_equal(strlen(out), added * (CAS_HASH_HEX_LEN + 1));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "verify", "--all", NULL);
    free(out);
    free(err);
    for (int i = 0; i < 6; i++)
        free(paths[i]);
    free(l2);
    free(g);
    free(l);
    free(gguf);
    free(l2c);
}

static void
test_corrupt_data(void **state)
{
    fixture *f = *state;
    const char *file = ct_path(f->dir, "m.bin");
    ct_write_random(file, 1 << 20, 7);
    char *out, *err, id[65];
    assert_int_equal(ct_run(f->store, &out, &err, "-q", "add", (char *)file, NULL), 0);
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    free(out);
    free(err);
    char data[8192];
    snprintf(data, sizeof(data), "%s/data/%s", f->store, id);
    ct_flip_byte(data, 600000);

    char *args[] = { "verify", id };
    int r = ct_runv(f->store, 2, args, &out, &err);
    assert_int_equal(r, 4);
    ct_assert_one_error(err, id);
    ct_assert_one_error(err, "chunk");
    assert_non_null(strstr(out, "FAILED"));
    free(out);
    free(err);
    EXPECT_FAIL(f->store, 4, "chunk", "verify", "--all");

    const char *copy = ct_path(f->dir, "copy.bin");
    EXPECT_FAIL(f->store, 4, "is corrupt: chunk", "export", id, "-o", (char *)copy);
    struct stat st;
    assert_int_equal(stat(copy, &st), -1); /* no half-written file */
    EXPECT_FAIL(f->store, 4, "is corrupt", "cat", id);
    assert_int_equal(ct_run(f->store, &out, &err, "verify", id, "--json", NULL), 4);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"ok\":false"));
    assert_non_null(strstr(out, "\"chunk\":"));
    free(out);
    free(err);
    /* A truncated data file: verify names the first chunk past the end. */
    assert_int_equal(truncate(data, 300000), 0);
    assert_int_equal(ct_run(f->store, &out, &err, "verify", id, NULL), 4);
    ct_assert_one_error(err, "is missing");
    ct_assert_one_error(err, "chunk ");
    assert_non_null(strstr(out, "is missing"));
    free(out);
    free(err);
    EXPECT_FAIL(f->store, 4, "chunk", "export", id, "-o", (char *)copy);
    assert_int_equal(stat(copy, &st), -1);
}

/* Two models whose ids share their first 8 hex digits: found by a birthday
 * search over tiny files, whose manifests the test builds exactly as
 * `nvx add --chunker cdc` does (one chunk, default parameters, format raw). */
static void
manifest_id(uint64_t counter, uint8_t id[CAS_HASH_LEN])
{
    uint8_t content[8], cid[CAS_HASH_LEN];
    for (int i = 0; i < 8; i++)
        content[i] = (uint8_t)(counter >> (8 * i));
    cas_hash(content, sizeof(content), cid);
    cas_manifest_builder *b;
    cas_manifest *m;
    cas_chunker_params params = CAS_CHUNKER_PARAMS_DEFAULT;
    assert_int_equal(cas_manifest_builder_new(CAS_CHUNKER_CDC, &params, &b), 0);
    assert_int_equal(cas_manifest_builder_add_chunk(b, cid, sizeof(content)), 0);
    assert_int_equal(cas_manifest_builder_set_meta(b, CAS_META_FORMAT, "raw"), 0);
    assert_int_equal(cas_manifest_builder_finish(b, &m), 0);
    memcpy(id, cas_manifest_id(m), CAS_HASH_LEN);
    cas_manifest_free(m);
    cas_manifest_builder_free(b);
}

static void
find_collision(uint64_t *ret_a, uint64_t *ret_b)
{
    enum {
        BITS = 21,
        SLOTS = 1 << BITS
    };
    uint64_t *tab = calloc(SLOTS, sizeof(*tab)); /* counter + 1, 0 = empty */
    uint32_t *keys = calloc(SLOTS, sizeof(*keys));
    assert_non_null(tab);
    for (uint64_t c = 0; c < SLOTS / 2; c++) {
        uint8_t id[CAS_HASH_LEN];
        manifest_id(c, id);
        uint32_t key = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
        for (uint32_t s = key & (SLOTS - 1);; s = (s + 1) & (SLOTS - 1)) {
            if (!tab[s]) {
                tab[s] = c + 1;
                keys[s] = key;
                break;
            }
            if (keys[s] == key) {
                *ret_a = tab[s] - 1;
                *ret_b = c;
                free(tab);
                free(keys);
                return;
            }
        }
    }
    fail_msg("no 32-bit id prefix collision found");
}

static void
test_ambiguous_prefix(void **state)
{
    fixture *f = *state;
    uint64_t ca = 0, cb = 0;
    find_collision(&ca, &cb);
    char ids[2][65];
    uint64_t cs[2] = { ca, cb };
    for (int k = 0; k < 2; k++) {
        uint8_t content[8], id[CAS_HASH_LEN];
        for (int i = 0; i < 8; i++)
            content[i] = (uint8_t)(cs[k] >> (8 * i));
        const char *p = ct_path(f->dir, k ? "b.bin" : "a.bin");
        assert_int_equal(tu_write_file(p, content, 8), 0);
        char *out, *err;
        assert_int_equal(
            ct_run(f->store, &out, &err, "-q", "add", (char *)p, "--chunker", "cdc", NULL), 0);
        manifest_id(cs[k], id);
        cas_hash_to_hex(id, ids[k]);
        assert_string_equal(ct_last_word(out), ids[k]);
        free(out);
        free(err);
    }
    assert_memory_equal(ids[0], ids[1], 8);
    char prefix[9];
    memcpy(prefix, ids[0], 8);
    prefix[8] = '\0';
    EXPECT_FAIL(f->store, 2, "matches several models: give more characters", "info", prefix);
    /* A longer prefix that tells them apart works. */
    size_t n = 8;
    while (ids[0][n] == ids[1][n])
        n++;
    char longer[65];
    memcpy(longer, ids[0], n + 1);
    longer[n + 1] = '\0';
    char *out, *err;
    assert_int_equal(ct_run(f->store, &out, &err, "info", longer, NULL), 0);
    free(out);
    free(err);
}

static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void
test_disk_full(void **state)
{
    fixture *f = *state;
    const char *small = ct_path(f->dir, "small.bin");
    ct_write_random(small, 10000, 8);
    char *out, *err;
    assert_int_equal(ct_run(f->store, &out, &err, "add", (char *)small, NULL), 0);
    free(out);
    free(err);
    const char *big = ct_path(f->dir, "big.bin");
    ct_write_random(big, 8 << 20, 9);
    char msg[4096];
    rlim_t limit = 2 << 20;
    int r = add_in_child(f->store, big, limit_fsize, &limit, msg, sizeof(msg));
    assert_int_equal(r, 1);
    ct_assert_one_error(msg, "the store is unchanged");
    assert_int_equal(count_entries(ct_path(f->store, "tmp")), 0);
    assert_int_equal(count_entries(ct_path(f->store, "data")), 1);
    /* The store is consistent, holds only the first model, and nothing of
     * the failed add is left behind. */
    assert_int_equal(ct_run(f->store, &out, &err, "verify", "--all", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, &out, &err, "-q", "ls", NULL), 0);
    assert_int_equal(strlen(out), 65);
    free(out);
    free(err);
    char *tmp_args[] = { "add", (char *)big };
    r = ct_runv(f->store, 2, tmp_args, &out, &err);
    assert_int_equal(r, 0); /* and the add works once there is room */
    free(out);
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_paths_and_ids, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_models, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_data, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_prefix, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, ct_fixture_setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
