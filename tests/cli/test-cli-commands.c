/* SPDX-License-Identifier: MIT */
/* Every command end to end through the real binary, in a temp store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clitest.h"
#include "libcas/hash.h"
#include "testutil.h"

typedef ct_fixture fixture;

/* Adds path and returns its id (static buffer). */
static const char *
add(const char *store, const char *path, const char *extra)
{
    static char id[CAS_HASH_HEX_LEN + 1];
    char *out, *err;
    int r = extra ? ct_run(store, &out, &err, "add", path, extra, NULL)
                  : ct_run(store, &out, &err, "add", path, NULL);
    if (r != 0)
        fail_msg("add %s: exit %d: %s", path, r, err);
    snprintf(id, sizeof(id), "%s", ct_last_word(out));
    assert_int_equal(strlen(id), CAS_HASH_HEX_LEN);
    free(out);
    free(err);
    return id;
}

static void
test_help(void **state)
{
    char *out, *err;
    ct_ok(NULL, &out, &err, "--help", NULL);
    assert_non_null(strstr(out, "exit codes:"));
    const char *cmds[] = { "add",   "ls", "info", "export", "cat",     "pin",
                           "unpin", "rm", "gc",   "verify", "manifest" };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char needle[32];
        snprintf(needle, sizeof(needle), "\n  %s ", cmds[i]);
        assert_non_null(strstr(out, needle));
        char *o2, *e2;
        ct_ok(NULL, &o2, &e2, cmds[i], "--help", NULL);
        snprintf(needle, sizeof(needle), "usage: nvx %s", cmds[i]);
        assert_non_null(strstr(o2, needle));
        assert_string_equal(e2, "");
        free(o2);
        free(e2);
    }
    free(out);
    free(err);
    ct_ok(NULL, &out, &err, "--version", NULL);
    assert_non_null(strstr(out, "nvx "));
    free(out);
    free(err);
}

/* info --json lists every chunk: in order, without gaps, covering the whole
 * file, each id the hash of the file's bytes at its offset, each length in
 * [min, max] but the last (at most max). */
static void
check_chunk_list(const char *json, const char *file, uint64_t min, uint64_t max)
{
    uint8_t *data;
    size_t len;
    assert_int_equal(tu_read_file(file, &data, &len), 0);
    const char *p = strstr(json, "\"chunks\":[");
    assert_non_null(p);
    p += strlen("\"chunks\":[");
    uint64_t next = 0;
    size_t n = 0;
    while (*p == '{') {
        char hex[CAS_HASH_HEX_LEN + 1], want[CAS_HASH_HEX_LEN + 1];
        unsigned long long off, clen;
        int used = 0;
        assert_int_equal(sscanf(p, "{\"id\":\"%64[0-9a-f]\",\"offset\":%llu,\"len\":%llu}%n", hex,
                                &off, &clen, &used),
                         3);
        assert_true(used > 0);
        assert_int_equal(off, next);
        assert_true(clen > 0 && clen <= len - off && clen <= max);
        if (off + clen < len && clen < min)
            fail_msg("chunk %zu: %llu bytes, under the minimum %llu", n, clen,
                     (unsigned long long)min);
        uint8_t h[CAS_HASH_LEN];
        cas_hash(data + off, (size_t)clen, h);
        cas_hash_to_hex(h, want);
        assert_string_equal(hex, want);
        next = off + clen;
        n++;
        p += used;
        if (*p == ',')
            p++;
    }
    assert_int_equal(*p, ']');
    assert_int_equal(next, len);
    assert_true(n > 1);
    char count[64];
    snprintf(count, sizeof(count), "\"present\":%zu", n);
    assert_non_null(strstr(json, count));
    free(data);
}

/* True when the man page has a tagged paragraph (.TP) whose tag line names
 * the word cmd ("pin ID, unpin ID" names both; "--key" does not name key). */
static bool
man_has_entry(const char *text, const char *cmd)
{
    size_t n = strlen(cmd);
    for (const char *p = text; (p = strstr(p, "\n.TP\n.B")) != NULL; p++) {
        const char *tag = p + strlen("\n.TP\n.B"), *end = strchr(tag, '\n');
        if (!end)
            break;
        for (const char *w = tag; (w = strstr(w, cmd)) != NULL && w < end; w++)
            if (strchr(" \"", w[-1]) && strchr(" \"\n", w[n]))
                return true;
    }
    return false;
}

/* The exit codes, environment variables and commands nvx --help names are
 * all in nvx(1). */
static void
test_man_page(void **state)
{
    const char *src = getenv("NVX_SOURCE_ROOT");
    if (!src)
        skip();
    uint8_t *man;
    size_t len;
    assert_int_equal(tu_read_file(ct_path(src, "contrib/nvx.1"), &man, &len), 0);
    char *text = calloc(1, len + 1);
    memcpy(text, man, len);
    char *out, *err;
    ct_ok(NULL, &out, &err, "--help", NULL);
    const char *codes = strstr(out, "exit codes:\n");
    assert_non_null(codes);
    int n = 0;
    for (const char *p = codes; (p = strstr(p, "\n  ")) != NULL && p[3] >= '0' && p[3] <= '9';
         p++) {
        char want[16];
        snprintf(want, sizeof(want), "\n.B %c\n", p[3]);
        if (!strstr(text, want))
            fail_msg("exit code %c is not in nvx(1)", p[3]);
        n++;
    }
    assert_int_equal(n, 7); /* 0..6 */
    const char *env = strstr(out, "environment:\n");
    assert_non_null(env);
    n = 0;
    for (const char *p = strchr(env, '\n'); p && p[1] == ' '; p = strchr(p + 1, '\n')) {
        char var[64], want[80];
        if (sscanf(p + 1, "  %63[A-Z_]", var) != 1)
            continue; /* a continuation line */
        snprintf(want, sizeof(want), "\n.B %s\n", var);
        if (!strstr(text, want))
            fail_msg("%s is not in the ENVIRONMENT of nvx(1)", var);
        n++;
    }
    assert_true(n >= 5);
    const char *list = strstr(out, "commands:\n");
    assert_non_null(list);
    n = 0;
    for (const char *p = strchr(list, '\n'); p && strncmp(p, "\n  ", 3) == 0;
         p = strchr(p + 1, '\n')) {
        char cmd[32];
        assert_int_equal(sscanf(p + 3, "%31s", cmd), 1);
        if (!man_has_entry(text, cmd))
            fail_msg("command '%s' has no entry in nvx(1)", cmd);
        n++;
    }
    assert_true(n >= 13);
    free(out);
    free(err);
    free(text);
    free(man);
}

static void
test_add_ls_info(void **state)
{
    fixture *f = *state;
    const char *file = ct_path(f->dir, "model.bin");
    ct_write_random(file, 1 << 20, 1);
    char id[CAS_HASH_HEX_LEN + 1];
    snprintf(id, sizeof(id), "%s", add(f->store, file, NULL));
    struct stat st;
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* -q prints only the id; adding again is idempotent. */
    char *out, *err;
    ct_ok(f->store, &out, &err, "-q", "add", file, NULL);
    char want[80];
    snprintf(want, sizeof(want), "%s\n", id);
    assert_string_equal(out, want);
    free(out);
    free(err);

    ct_ok(f->store, &out, &err, "ls", NULL);
    char short_id[13];
    snprintf(short_id, sizeof(short_id), "%.12s", id);
    assert_non_null(strstr(out, short_id));
    assert_null(strstr(out, " \n"));       /* no trailing blanks */
    assert_non_null(strstr(out, "\n-  ")); /* the names column says "-" */
    assert_non_null(strstr(out, "unpinned     0\n"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "ls", "--json", NULL);
    ct_assert_json(out);
    snprintf(want, sizeof(want), "\"id\":\"%s\"", id);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"size\":1048576"));
    free(out);
    free(err);

    /* info by full id, by 8-char prefix, --json with the chunk list. */
    char prefix[9];
    memcpy(prefix, id, 8);
    prefix[8] = '\0';
    ct_ok(f->store, &out, &err, "info", prefix, NULL);
    assert_non_null(strstr(out, "size       1048576 bytes"));
    assert_non_null(strstr(out, "pinned     no"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", id, "--json", NULL);
    ct_assert_json(out);
    check_chunk_list(out, file, 16 << 10, 256 << 10);
    assert_non_null(strstr(out, "\"chunker\":{\"kind\":\"cdc\",\"min\":16384,\"avg\":65536,"
                                "\"max\":262144}"));
    assert_non_null(strstr(out, "\"signatures\":[]"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", id, "--chunks", NULL);
    assert_non_null(strstr(out, "chunk 0 "));
    free(out);
    free(err);

    /* Chunk sizes as asked, recorded in the manifest: another id. */
    ct_ok(f->store, &out, &err, "-q", "add", file, "--chunker=cdc", "--min=4K", "--avg=8K",
          "--max=32K", NULL);
    char id2[CAS_HASH_HEX_LEN + 1];
    snprintf(id2, sizeof(id2), "%s", ct_last_word(out));
    assert_string_not_equal(id2, id);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", id2, "--json", NULL);
    check_chunk_list(out, file, 4 << 10, 32 << 10);
    assert_non_null(strstr(out, "\"kind\":\"cdc\",\"min\":4096,\"avg\":8192,\"max\":32768}"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "-q", "add", file, "--chunker=fixed", "--avg=16K", NULL);
    snprintf(id2, sizeof(id2), "%s", ct_last_word(out));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", id2, "--json", NULL);
    check_chunk_list(out, file, 16 << 10, 16 << 10);
    assert_non_null(strstr(out, "\"kind\":\"fixed\""));
    free(out);
    free(err);
}

/* add - reads stdin: from a redirected file or from a pipe, a model gets
 * the id of the same file (a pipe is planned from the bytes read ahead);
 * llama2.c, recognised by its size, cannot come from a long pipe. */
static void
test_add_stdin(void **state)
{
    fixture *f = *state;
    char *l2c = tu_model_path("aidreams260K.bin"), *gguf = tu_model_path("aidreams260K-f32.gguf");
    if (!l2c || !gguf)
        skip();
    char id_l2c[CAS_HASH_HEX_LEN + 1], id_gguf[CAS_HASH_HEX_LEN + 1], id_cdc[CAS_HASH_HEX_LEN + 1];
    snprintf(id_l2c, sizeof(id_l2c), "%s", add(f->store, l2c, NULL));
    snprintf(id_gguf, sizeof(id_gguf), "%s", add(f->store, gguf, NULL));
    snprintf(id_cdc, sizeof(id_cdc), "%s", add(f->store, l2c, "--chunker=cdc"));
    assert_string_not_equal(id_l2c, id_cdc);
    enum {
        REDIRECT,
        PIPE,
        LONG_PIPE
    };
    const struct {
        int how;
        const char *model, *chunker;
        int code;
        const char *want;
    } cases[] = {
        { REDIRECT, l2c, "", 0, id_l2c },
        { PIPE, l2c, "", 0, id_l2c },
        { PIPE, l2c, "--chunker=llama2c", 0, id_l2c },
        { PIPE, l2c, "--chunker=cdc", 0, id_cdc },
        { PIPE, gguf, "", 0, id_gguf },
        { LONG_PIPE, NULL, "--chunker=llama2c", 1, "recognised by its size" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[16384];
        if (cases[i].how == REDIRECT)
            snprintf(cmd, sizeof(cmd), "'%s' --store '%s' -q add - %s < '%s'", ct_nvx(), f->store,
                     cases[i].chunker, cases[i].model);
        else if (cases[i].how == PIPE)
            snprintf(cmd, sizeof(cmd), "cat '%s' | '%s' --store '%s' -q add - %s", cases[i].model,
                     ct_nvx(), f->store, cases[i].chunker);
        else
            snprintf(cmd, sizeof(cmd), "head -c 17000000 /dev/zero | '%s' --store '%s' -q add - %s",
                     ct_nvx(), f->store, cases[i].chunker);
        char *sh[] = { "/bin/sh", "-c", cmd, NULL };
        char *out, *err;
        int r = tu_run(sh, &out, &err);
        if (r != cases[i].code)
            fail_msg("%s: exit %d: %s", cmd, r, err);
        if (cases[i].code == 0) {
            assert_string_equal(err, "");
            assert_string_equal(ct_last_word(out), cases[i].want);
        } else {
            ct_assert_one_error(err, cases[i].want);
        }
        free(out);
        free(err);
    }
    free(l2c);
    free(gguf);
}

/* Adds running at once into one new store: each gets its id, the same file
 * twice gets one model, and the store verifies afterwards. */
static void
test_concurrent_adds(void **state)
{
    fixture *f = *state;
    char x[4096], y[4096];
    snprintf(x, sizeof(x), "%s", ct_path(f->dir, "x.bin"));
    snprintf(y, sizeof(y), "%s", ct_path(f->dir, "y.bin"));
    ct_write_random(x, 4 << 20, 21);
    ct_write_random(y, 4 << 20, 22);
    /* No store yet: the three also race to create it. */
    char *out, *err;
    char cmd[20000];
    snprintf(cmd, sizeof(cmd),
             "n='%s'; s='%s'; \"$n\" --store \"$s\" -q add '%s' > \"$s.1\" & p1=$!; "
             "\"$n\" --store \"$s\" -q add '%s' > \"$s.2\" & p2=$!; "
             "\"$n\" --store \"$s\" -q add '%s' > \"$s.3\" & p3=$!; "
             "wait $p1 && wait $p2 && wait $p3 && cat \"$s.1\" \"$s.2\" \"$s.3\"",
             ct_nvx(), f->store, x, y, x);
    char *sh[] = { "/bin/sh", "-c", cmd, NULL };
    int r = tu_run(sh, &out, &err);
    if (r != 0)
        fail_msg("concurrent adds: exit %d: %s", r, err);
    assert_int_equal(strlen(out), 3 * (CAS_HASH_HEX_LEN + 1));
    assert_memory_equal(out, out + 2 * (CAS_HASH_HEX_LEN + 1), CAS_HASH_HEX_LEN + 1);
    assert_memory_not_equal(out, out + CAS_HASH_HEX_LEN + 1, CAS_HASH_HEX_LEN + 1);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "-q", "ls", NULL);
    assert_int_equal(strlen(out), 2 * (CAS_HASH_HEX_LEN + 1));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "verify", "--all", NULL);
    free(out);
    free(err);
}

static void
test_names_pin_gc_rm(void **state)
{
    fixture *f = *state;
    const char *a = ct_path(f->dir, "a.bin"), *b = ct_path(f->dir, "b.bin");
    ct_write_random(a, 300000, 2);
    ct_write_random(b, 300000, 3);
    char ida[65], idb[65];
    char *out, *err;
    ct_ok(f->store, &out, &err, "add", a, "--name", "alpha", "--pin", NULL);
    snprintf(ida, sizeof(ida), "%s", ct_last_word(out));
    free(out);
    free(err);
    snprintf(idb, sizeof(idb), "%s", add(f->store, b, NULL));
    /* A name in use moves to the new model, with a warning. */
    ct_ok(f->store, &out, &err, "add", b, "--name", "alpha", NULL);
    char want[160];
    snprintf(want, sizeof(want), "nvx: warning: the name 'alpha' moved to this model from %s\n",
             ida);
    assert_string_equal(err, want);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "add", a, "--name", "alpha", NULL); /* and back */
    assert_non_null(strstr(err, idb));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "add", a, "--name", "alpha", NULL);
    assert_string_equal(err, ""); /* same model: nothing moved */
    free(out);
    free(err);

    ct_ok(f->store, &out, &err, "info", "alpha", NULL);
    assert_non_null(strstr(out, ida));
    assert_non_null(strstr(out, "pinned     yes"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", "alpha", "--json", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"names\":[\"alpha\"]"));
    free(out);
    free(err);

    /* gc --dry-run names b only and removes nothing. */
    ct_ok(f->store, &out, &err, "gc", "--dry-run", NULL);
    assert_non_null(strstr(out, idb));
    assert_null(strstr(out, ida));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", idb, NULL);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "gc", "--json", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"removed\":1"));
    free(out);
    free(err);
    assert_int_equal(ct_run(f->store, &out, &err, "info", idb, NULL), 3);
    ct_assert_one_error(err, "no model matches");
    free(out);
    free(err);

    /* rm refuses a pinned model; unpin, rm. */
    assert_int_equal(ct_run(f->store, &out, &err, "rm", "alpha", NULL), 1);
    ct_assert_one_error(err, "pinned");
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "unpin", "alpha", NULL);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "info", ida, NULL);
    assert_non_null(strstr(out, "pinned     no"));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "pin", ida, NULL);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "rm", "--force", ida, NULL);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "ls", "--json", NULL);
    ct_assert_json(out);
    assert_string_equal(out, "[]\n");
    free(out);
    free(err);
}

static void
test_export_cat_verify_manifest(void **state)
{
    fixture *f = *state;
    /* Printable bytes so that cat's output can be compared as a string. */
    size_t n = 500000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + (i * 7 + i / 13) % 26);
    text[n] = '\0';
    const char *file = ct_path(f->dir, "text.bin");
    assert_int_equal(tu_write_file(file, text, n), 0);
    char id[65];
    snprintf(id, sizeof(id), "%s", add(f->store, file, NULL));
    char *out, *err;

    const char *copy = ct_path(f->dir, "copy.bin");
    ct_ok(f->store, &out, &err, "export", id, "-o", copy, NULL);
    assert_true(ct_files_equal(file, copy));
    assert_string_equal(err, ""); /* no progress bar when stderr is not a terminal */
    free(out);
    free(err);

    ct_ok(f->store, &out, &err, "cat", id, NULL);
    assert_true(strcmp(out, text) == 0);
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "export", id, "-o", "-", NULL);
    assert_true(strcmp(out, text) == 0);
    free(out);
    free(err);

    /* cat into a non-empty file would overwrite it from the start: refused. */
    const char *app = ct_path(f->dir, "append.bin");
    assert_int_equal(tu_write_file(app, "keep", 4), 0);
    char cmd[16384];
    snprintf(cmd, sizeof(cmd), "'%s' --store '%s' cat %s >> '%s'", ct_nvx(), f->store, id, app);
    char *sh[] = { "/bin/sh", "-c", cmd, NULL };
    assert_int_equal(tu_run(sh, &out, &err), 2);
    ct_assert_one_error(err, "non-empty file");
    free(out);
    free(err);
    uint8_t *kept;
    size_t kept_len;
    assert_int_equal(tu_read_file(app, &kept, &kept_len), 0);
    assert_int_equal(kept_len, 4);
    free(kept);

    ct_ok(f->store, &out, &err, "verify", id, NULL);
    assert_non_null(strstr(out, "ok "));
    free(out);
    free(err);
    ct_ok(f->store, &out, &err, "verify", "--all", "--json", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"ok\":true"));
    free(out);
    free(err);

    /* The manifest file hashes to the id. */
    const char *mf = ct_path(f->dir, "m.nvxm");
    ct_ok(f->store, &out, &err, "manifest", id, "-o", mf, NULL);
    free(out);
    free(err);
    uint8_t *mb, h[CAS_HASH_LEN];
    size_t ml;
    assert_int_equal(tu_read_file(mf, &mb, &ml), 0);
    cas_hash(mb, ml, h);
    char hex[65];
    cas_hash_to_hex(h, hex);
    assert_string_equal(hex, id);
    free(mb);
    /* No signature yet: --sig says how to make one. */
    assert_int_equal(ct_run(f->store, &out, &err, "manifest", id, "-o", mf, "--sig",
                            ct_path(f->dir, "m.sig"), NULL),
                     3);
    ct_assert_one_error(err, "nvx sign");
    free(out);
    free(err);
    free(text);
}

static void
test_env_store(void **state)
{
    fixture *f = *state;
    const char *file = ct_path(f->dir, "e.bin");
    ct_write_random(file, 1000, 4);
    char env_store[4096], xdg[4096];
    snprintf(env_store, sizeof(env_store), "%s/envstore", f->dir);
    snprintf(xdg, sizeof(xdg), "%s/xdg", f->dir);
    setenv("NVX_STORE", env_store, 1);
    char *out, *err;
    ct_ok(NULL, &out, &err, "add", file, NULL);
    free(out);
    free(err);
    struct stat st;
    assert_int_equal(stat(ct_path(env_store, "nvx-store"), &st), 0);
    /* --store wins over $NVX_STORE. */
    ct_ok(f->store, &out, &err, "add", file, NULL);
    free(out);
    free(err);
    assert_int_equal(stat(ct_path(f->store, "nvx-store"), &st), 0);
    unsetenv("NVX_STORE");
    setenv("XDG_DATA_HOME", xdg, 1);
    ct_ok(NULL, &out, &err, "add", file, NULL);
    free(out);
    free(err);
    assert_int_equal(stat(ct_path(xdg, "nvx/nvx-store"), &st), 0);
    /* Without XDG_DATA_HOME (or with a relative one, which the XDG spec
     * says to ignore): $HOME/.local/share/nvx. Without HOME either: an
     * error that says how to name a store. */
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_DATA_HOME", "relative/dir", 1);
    setenv("HOME", f->dir, 1);
    ct_ok(NULL, &out, &err, "add", file, NULL);
    free(out);
    free(err);
    assert_int_equal(stat(ct_path(f->dir, ".local/share/nvx/nvx-store"), &st), 0);
    unsetenv("XDG_DATA_HOME");
    unsetenv("HOME");
    assert_int_equal(ct_run(NULL, &out, &err, "ls", NULL), 2);
    ct_assert_one_error(err, "no store directory: pass --store DIR or set NVX_STORE");
    free(out);
    free(err);
    if (home)
        setenv("HOME", home, 1);
    free(home);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_man_page),
        cmocka_unit_test_setup_teardown(test_add_ls_info, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_add_stdin, ct_fixture_setup, ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_adds, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_names_pin_gc_rm, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_export_cat_verify_manifest, ct_fixture_setup,
                                        ct_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_store, ct_fixture_setup, ct_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
