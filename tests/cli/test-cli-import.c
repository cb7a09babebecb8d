/* SPDX-License-Identifier: MIT */
/*
 * nvx import on the real binary, from an Ollama store and a Hugging Face
 * hub cache fabricated in a temp dir after their documented layouts
 * (cli/import-parse.h), with copies of the real GGUF files of
 * ../shared/models made at test time: names kept, ids equal to nvx add's,
 * a second import changes nothing, and every malformed piece (manifests,
 * digests, names, missing and damaged blobs, links out of the cache) is
 * named on one line while the other models go on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "libcas/hash.h"
#include "libcas/store.h"
#include "tests/cli/clitest.h"
#include "testutil.h"

#define ZERO_DIGEST "0000000000000000000000000000000000000000000000000000000000000001"
#define COMMIT_MAIN "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_OLD  "89abcdef0123456789abcdef0123456789abcdef"

/* The real files used (small: the whole suite reads a few MiB). */
static const char *const models[] = { "aidreams260K-f32.gguf", "aidreams260K-Q8_0-ffndownF16.gguf",
                                      "aidreams260K-Q4_0-ffndownF16.gguf" };
enum {
    F32 = 0,
    Q8 = 1,
    Q4 = 2,
    N_MODELS = 3,
};

typedef struct fix {
    ct_fixture ct;
    char *src[N_MODELS]; /* copies in the temp dir */
    char hex[N_MODELS][65];
    size_t size[N_MODELS];
} fix;

/* A path formatted into a rotating static buffer (16 slots): copy what
 * must outlive the next 16 calls. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static char *
pathf(const char *fmt, ...)
{
    static char bufs[16][4096];
    static unsigned next;
    char *b = bufs[next++ % 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof(bufs[0]), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(bufs[0]));
    return b;
}

static void
mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    mkdir(buf, 0755);
}

static void
put_file(const char *path, const void *buf, size_t len)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    assert_int_equal(tu_write_file(path, buf, len), 0);
}

static void
copy_file(const char *from, const char *to)
{
    uint8_t *b;
    size_t n;
    assert_int_equal(tu_read_file(from, &b, &n), 0);
    put_file(to, b, n);
    free(b);
}

/* Data files in the store: one per distinct model. */
static int
count_data(const char *store)
{
    const char *path = pathf("%s/data", store);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int
setup(void **state)
{
    assert_true(sodium_init() >= 0);
    fix *f = calloc(1, sizeof(*f));
    f->ct.dir = tu_tmpdir("import");
    snprintf(f->ct.store, sizeof(f->ct.store), "%s/store", f->ct.dir);
    *state = f;
    for (int i = 0; i < N_MODELS; i++) {
        char *p = tu_model_path(models[i]);
        if (!p)
            return 0;
        uint8_t *b, sha[crypto_hash_sha256_BYTES];
        assert_int_equal(tu_read_file(p, &b, &f->size[i]), 0);
        crypto_hash_sha256(sha, b, f->size[i]);
        sodium_bin2hex(f->hex[i], sizeof(f->hex[i]), sha, sizeof(sha));
        f->src[i] = strdup(ct_path(f->ct.dir, models[i]));
        put_file(f->src[i], b, f->size[i]);
        free(b);
        free(p);
    }
    return 0;
}

static int
teardown(void **state)
{
    fix *f = *state;
    for (int i = 0; i < N_MODELS; i++)
        free(f->src[i]);
    tu_rm_rf(f->ct.dir);
    free(f->ct.dir);
    free(f);
    return 0;
}

#define NEED_MODELS(f)     \
    do {                   \
        if (!(f)->src[Q4]) \
            skip();        \
    } while (0)

/* An Ollama manifest for a model layer (digest hex, size), with template
 * and license layers as `ollama pull` writes them. */
static void
ollama_manifest(const char *root, const char *rel, const char *hex, size_t size)
{
    char body[2048];
    const char *path = pathf("%s/manifests/%s", root, rel);
    int n = snprintf(
        body, sizeof(body),
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"digest\":\"sha256:" ZERO_DIGEST "\",\"size\":2},\"layers\":["
        "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\","
        "\"size\":%zu},"
        "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:" ZERO_DIGEST
        "\",\"size\":2},"
        "{\"mediaType\":\"application/vnd.ollama.image.license\",\"digest\":\"sha256:" ZERO_DIGEST
        "\",\"size\":2}]}",
        hex, size);
    put_file(path, body, (size_t)n);
}

/* Model i as Ollama stores it: its blob and a manifest at rel. */
static void
ollama_model(const fix *f, const char *root, const char *rel, int i)
{
    const char *blob = pathf("%s/blobs/sha256-%s", root, f->hex[i]);
    copy_file(f->src[i], blob);
    ollama_manifest(root, rel, f->hex[i], f->size[i]);
}

/* The id nvx add gives a file, from a store of its own. */
static void
add_id(const fix *f, const char *file, char ret[static CAS_HASH_HEX_LEN + 1])
{
    char *out;
    ct_ok(ct_path(f->ct.dir, "addstore"), &out, NULL, "-q", "add", file, NULL);
    snprintf(ret, CAS_HASH_HEX_LEN + 1, "%s", ct_last_word(out));
    free(out);
}

/* The model a local name points to in the store (hex), "" when none;
 * pinned written when not NULL. */
static void
name_id(const char *store, const char *name, char ret[static CAS_HASH_HEX_LEN + 1], bool *pinned)
{
    cas_store *s;
    ret[0] = '\0';
    assert_int_equal(cas_store_open(store, 0, &s), 0);
    uint8_t id[CAS_HASH_LEN];
    if (cas_store_name_get(s, name, id) == 0) {
        cas_hash_to_hex(id, ret);
        cas_model_info mi;
        assert_int_equal(cas_store_model_info(s, id, &mi), 0);
        if (pinned)
            *pinned = mi.pinned;
    }
    cas_store_free(s);
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void
test_ollama(void **state)
{
    fix *f = *state;
    NEED_MODELS(f);
    char *root = strdup(ct_path(f->ct.dir, "ollama"));
    ollama_model(f, root, "registry.ollama.ai/library/aidreams/latest", F32);
    ollama_model(f, root, "registry.ollama.ai/library/aidreams/q8", Q8);
    ollama_model(f, root, "registry.ollama.ai/jmorgan/tiny/latest", Q4);
    ollama_model(f, root, "hf.co/someone/Tiny-GGUF/Q4_0", Q4);
    setenv("OLLAMA_MODELS", root, 1);

    char *out, *err;
    ct_ok(f->ct.store, &out, &err, "import", "ollama", "--dry-run", NULL);
    assert_non_null(strstr(out, "would import aidreams:latest: 1.0 MiB"));
    assert_non_null(strstr(out, "not imported: template, license"));
    assert_non_null(strstr(out, "4 models would be imported, 0 failed"));
    assert_int_equal(access(f->ct.store, F_OK), -1); /* nothing made */
    free(out);
    free(err);

    ct_ok(f->ct.store, &out, &err, "import", "ollama", "--pin", NULL);
    assert_non_null(strstr(out, "imported aidreams:q8: "));
    assert_non_null(strstr(out, "4 models imported (3 new), 0 failed"));
    free(out);
    free(err);
    static const struct {
        const char *name;
        int model;
    } want[] = { { "aidreams:latest", F32 },
                 { "aidreams:q8", Q8 },
                 { "jmorgan/tiny:latest", Q4 },
                 { "hf.co/someone/Tiny-GGUF:Q4_0", Q4 } };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char got[CAS_HASH_HEX_LEN + 1], added[CAS_HASH_HEX_LEN + 1];
        bool pinned = false;
        name_id(f->ct.store, want[i].name, got, &pinned);
        add_id(f, f->src[want[i].model], added);
        assert_string_equal(got, added);
        assert_true(pinned);
    }
    assert_int_equal(count_data(f->ct.store), 3);

    /* Again, by name and with the default tag: nothing new. */
    unsetenv("OLLAMA_MODELS");
    ct_ok(f->ct.store, &out, &err, "--json", "import", "ollama", "--from", root, "aidreams", NULL);
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"name\":\"aidreams:latest\""));
    assert_non_null(strstr(out, "\"status\":\"already stored\""));
    assert_non_null(strstr(out, "\"sha256_checked\":true"));
    assert_non_null(strstr(out, "\"left_out\":[\"template\",\"license\"]"));
    assert_non_null(strstr(out, "\"failed\":0"));
    free(out);
    free(err);
    assert_int_equal(count_data(f->ct.store), 3);

    /* The name of the right model runs. */
    ct_ok(f->ct.store, &out, &err, "run", "aidreams:q8", "--tokens", "4", "--temperature", "0",
          NULL);
    free(out);
    free(err);
    free(root);
}

/* One of each malformed piece beside a sound model: each is named on its
 * own line, the sound one is imported, the exit code is the first
 * failure's. */
static void
test_ollama_bad(void **state)
{
    fix *f = *state;
    NEED_MODELS(f);
    char *root = strdup(ct_path(f->ct.dir, "ollama"));
    const char *path;
    char *lib = strdup(pathf("%s/manifests/registry.ollama.ai/library", root));
    ollama_model(f, root, "registry.ollama.ai/library/good/latest", Q4);

    path = pathf("%s/badjson/latest", lib);
    put_file(path, "{\"schemaVersion\":2,", 19);
    /* Over 64 KiB (white space, then a valid manifest): refused unread. */
    size_t big = 70 * 1024;
    char *b = malloc(big);
    memset(b, ' ', big);
    path = pathf("%s/big/latest", lib);
    put_file(path, b, big);
    free(b);
    ollama_manifest(root, "registry.ollama.ai/library/trav/latest", "../../../../../etc/passwd",
                    10);
    ollama_manifest(root, "registry.ollama.ai/library/missing/latest", ZERO_DIGEST, 10);
    /* A blob whose bytes changed since its digest was taken. */
    ollama_manifest(root, "registry.ollama.ai/library/flipped/latest", f->hex[F32], f->size[F32]);
    path = pathf("%s/blobs/sha256-%s", root, f->hex[F32]);
    copy_file(f->src[F32], path);
    ct_flip_byte(path, f->size[F32] - 100);
    ollama_manifest(root, "registry.ollama.ai/library/short/latest", f->hex[Q4], f->size[Q4] + 1);
    path = pathf("%s/bad\033[2Jname", lib);
    mkdirs(path);
    ollama_manifest(root, "registry.ollama.ai/library/bad\033[2Jname/latest", f->hex[Q4],
                    f->size[Q4]);
    /* A FIFO must not hang the import. */
    path = pathf("%s/fifo", lib);
    mkdirs(path);
    path = pathf("%s/fifo/latest", lib);
    assert_int_equal(mkfifo(path, 0644), 0);

    char *out, *err;
    int rc = ct_run(f->ct.store, &out, &err, "import", "ollama", "--from", root, NULL);
    assert_int_equal(rc, 4); /* the first in name order: "bad\033[2Jname" */
    assert_non_null(strstr(out, "1 model imported (1 new), 8 failed"));
    assert_int_equal(count_lines(err), 8);
    static const char *const needles[] = {
        "bad\\x1b[2Jname: not a name Ollama writes",
        "badjson:latest: manifest",
        "big:latest: manifest",
        "over 64 KiB",
        "fifo:latest: manifest",
        "not a regular file",
        "flipped:latest",
        "its sha256 is",
        "missing:latest",
        "No such file or directory: run ollama pull missing:latest",
        "short:latest",
        "its manifest says",
        "trav:latest",
        "not sha256: and 64 lowercase hex",
    };
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (!strstr(err, needles[i]))
            fail_msg("no '%s' in:\n%s", needles[i], err);
    assert_null(strchr(err, '\033'));
    free(out);
    free(err);
    char id[CAS_HASH_HEX_LEN + 1];
    name_id(f->ct.store, "good:latest", id, NULL);
    assert_string_not_equal(id, "");
    name_id(f->ct.store, "flipped:latest", id, NULL);
    assert_string_equal(id, "");
    assert_int_equal(count_data(f->ct.store), 1);

    /* Named: refused names, absent models, a missing blob. */
    static const struct {
        const char *arg;
        int rc;
        const char *needle;
    } named[] = { { "../../etc", 2, "invalid Ollama model name" },
                  { "nothere", 3, "no Ollama model 'nothere'" },
                  { "missing", 3, "missing:latest" },
                  { "flipped:latest", 4, "sha256" } };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        rc =
            ct_run(f->ct.store, &out, &err, "import", "ollama", "--from", root, named[i].arg, NULL);
        assert_int_equal(rc, named[i].rc);
        ct_assert_one_error(err, named[i].needle);
        free(out);
        free(err);
    }
    rc = ct_run(f->ct.store, &out, &err, "import", "ollama", "--from", ct_path(f->ct.dir, "none"),
                NULL);
    assert_int_equal(rc, 3);
    ct_assert_one_error(err, "no Ollama store");
    free(out);
    free(err);
    free(lib);
    free(root);
}

/* models--ORG--NAME with snapshot files linking into blobs/ (as the hub
 * library writes them: ../../blobs/ETAG, one more ../ per subdirectory). */
static void
hf_link(const char *repo, const char *commit, const char *rel, const char *blob)
{
    char target[4096] = "";
    const char *path = pathf("%s/snapshots/%s/%s", repo, commit, rel);
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    free(dir);
    size_t depth = 2;
    for (const char *p = rel; *p; p++)
        depth += *p == '/';
    for (size_t i = 0; i < depth; i++)
        strcat(target, "../");
    strcat(target, "blobs/");
    strcat(target, blob);
    assert_int_equal(symlink(target, path), 0);
}

static void
hf_blob(const char *repo, const char *name, const char *from)
{
    const char *path = pathf("%s/blobs/%s", repo, name);
    copy_file(from, path);
}

static void
hf_ref(const char *repo, const char *ref, const char *commit)
{
    const char *path = pathf("%s/refs/%s", repo, ref);
    put_file(path, commit, strlen(commit));
}

static void
test_hf(void **state)
{
    fix *f = *state;
    NEED_MODELS(f);
    char *hub = strdup(ct_path(f->ct.dir, "hf/hub"));
    char *repo = strdup(pathf("%s/models--someone--Tiny-GGUF", hub));
    hf_ref(repo, "main", COMMIT_MAIN);
    hf_blob(repo, f->hex[Q8], f->src[Q8]);
    hf_blob(repo, f->hex[Q4], f->src[Q4]);
    hf_blob(repo, f->hex[F32], f->src[F32]);
    hf_blob(repo, "abcdef0123456789abcdef0123456789abcdef01", f->src[Q4]); /* a git blob id */
    hf_link(repo, COMMIT_MAIN, "tiny.Q8_0.gguf", f->hex[Q8]);
    hf_link(repo, COMMIT_MAIN, "tiny-q4_0.gguf", f->hex[Q4]);
    hf_link(repo, COMMIT_MAIN, "config.json", "abcdef0123456789abcdef0123456789abcdef01");
    hf_link(repo, COMMIT_MAIN, "F32/tiny-F32.gguf", f->hex[F32]);
    hf_link(repo, COMMIT_OLD, "old.gguf", "abcdef0123456789abcdef0123456789abcdef01");
    const char *other = pathf("%s/datasets--someone--data/refs", hub);
    mkdirs(other);
    setenv("HF_HUB_CACHE", hub, 1);

    char *out, *err;
    ct_ok(f->ct.store, &out, &err, "import", "hf", NULL);
    assert_non_null(strstr(out, "3 models imported (3 new), 0 failed"));
    assert_non_null(strstr(out, "imported hf.co/someone/Tiny-GGUF/tiny.Q8_0.gguf (also "
                                "hf.co/someone/Tiny-GGUF:Q8_0)"));
    free(out);
    free(err);
    static const struct {
        const char *name;
        int model;
    } want[] = {
        { "hf.co/someone/Tiny-GGUF/tiny.Q8_0.gguf", Q8 },
        { "hf.co/someone/Tiny-GGUF:Q8_0", Q8 },
        { "hf.co/someone/Tiny-GGUF:Q4_0", Q4 },
        { "hf.co/someone/Tiny-GGUF:F32", F32 },
        { "hf.co/someone/Tiny-GGUF/F32/tiny-F32.gguf", F32 },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char got[CAS_HASH_HEX_LEN + 1], added[CAS_HASH_HEX_LEN + 1];
        name_id(f->ct.store, want[i].name, got, NULL);
        add_id(f, f->src[want[i].model], added);
        if (strcmp(got, added) != 0)
            fail_msg("%s: %s, want %s", want[i].name, got, added);
    }

    /* Another revision by commit; from $HF_HOME/hub; a blob without an LFS
     * etag is imported unchecked and says so. */
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", ct_path(f->ct.dir, "hf"), 1);
    ct_ok(f->ct.store, &out, &err, "--json", "import", "hf", "someone/Tiny-GGUF", "--revision",
          COMMIT_OLD, NULL);
    unsetenv("HF_HOME");
    ct_assert_json(out);
    assert_non_null(strstr(out, "\"name\":\"hf.co/someone/Tiny-GGUF/old.gguf\""));
    assert_non_null(strstr(out, "\"sha256_checked\":false"));
    assert_non_null(strstr(out, "\"status\":\"already stored\""));
    free(out);
    free(err);
    assert_int_equal(count_data(f->ct.store), 3);
    free(repo);
    free(hub);
}

static void
test_hf_bad(void **state)
{
    fix *f = *state;
    NEED_MODELS(f);
    char *hub = strdup(ct_path(f->ct.dir, "hub"));
    const char *path;
    char *repo = strdup(pathf("%s/models--someone--Bad", hub));
    hf_ref(repo, "main", COMMIT_MAIN);
    hf_blob(repo, f->hex[Q4], f->src[Q4]);
    hf_link(repo, COMMIT_MAIN, "good.gguf", f->hex[Q4]);
    hf_blob(repo, f->hex[Q8], f->src[F32]); /* etag of other bytes */
    hf_link(repo, COMMIT_MAIN, "wrong.gguf", f->hex[Q8]);
    hf_link(repo, COMMIT_MAIN, "missing.gguf", ZERO_DIGEST);
    path = pathf("%s/snapshots/%s/evil.gguf", repo, COMMIT_MAIN);
    assert_int_equal(symlink(f->src[F32], path), 0);
    path = pathf("%s/snapshots/%s/evil2.gguf", repo, COMMIT_MAIN);
    assert_int_equal(symlink("../../blobs/../../models--x--y/blobs/f", path), 0);
    path = pathf("%s/models--x--y/blobs/f", hub);
    copy_file(f->src[Q8], path);
    hf_ref(pathf("%s/models--someone--Garbled", hub), "main", "../../../../etc/passwd");
    free(repo);
    path = pathf("%s/models--a--b--c", hub);
    mkdirs(path);

    char *out, *err;
    int rc = ct_run(f->ct.store, &out, &err, "import", "hf", "--from", hub, NULL);
    assert_int_equal(rc, 4);
    assert_non_null(strstr(out, "1 model imported (1 new), 6 failed"));
    assert_int_equal(count_lines(err), 7); /* and a warning: x/y has no refs/main */
    static const char *const needles[] = {
        "skipping x/y: it has no revision main",
        "evil.gguf points outside",
        "evil2.gguf points outside",
        "missing.gguf points to a missing blob",
        "wrong.gguf",
        "its sha256 is",
        "someone/Garbled: revision main",
        "models--a--b--c: not a repo name",
    };
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (!strstr(err, needles[i]))
            fail_msg("no '%s' in:\n%s", needles[i], err);
    free(out);
    free(err);
    char id[CAS_HASH_HEX_LEN + 1];
    name_id(f->ct.store, "hf.co/someone/Bad/good.gguf", id, NULL);
    assert_string_not_equal(id, "");
    name_id(f->ct.store, "hf.co/someone/Bad/wrong.gguf", id, NULL);
    assert_string_equal(id, "");

    static const struct {
        const char *arg;
        int rc;
        const char *needle;
    } named[] = { { "../x", 2, "invalid repo" },
                  { "someone/None", 3, "no repo someone/None" },
                  { "someone/Garbled", 4, "revision main" } };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        rc = ct_run(f->ct.store, &out, &err, "import", "hf", "--from", hub, named[i].arg, NULL);
        assert_int_equal(rc, named[i].rc);
        ct_assert_one_error(err, named[i].needle);
        free(out);
        free(err);
    }
    rc = ct_run(f->ct.store, &out, &err, "import", "hf", "--from", hub, "someone/Bad", "--revision",
                "../main", NULL);
    assert_int_equal(rc, 2);
    ct_assert_one_error(err, "invalid revision");
    free(out);
    free(err);
    rc = ct_run(f->ct.store, &out, &err, "import", "pip", NULL);
    assert_int_equal(rc, 2);
    ct_assert_one_error(err, "unknown source 'pip'");
    free(out);
    free(err);
    free(hub);
}

/* nvx add --sha256, the check imports use: a match adds, a mismatch adds
 * nothing (exit 4), anything but 64 hex characters is a usage error. */
static void
test_add_sha256(void **state)
{
    fix *f = *state;
    NEED_MODELS(f);
    char *out, *err, upper[65], wrong[65];
    for (size_t i = 0; i < 65; i++)
        upper[i] = (char)(f->hex[Q4][i] >= 'a' ? f->hex[Q4][i] - 32 : f->hex[Q4][i]);
    snprintf(wrong, sizeof(wrong), "%s", f->hex[Q8]);
    assert_int_equal(ct_run(f->ct.store, &out, &err, "add", f->src[Q4], "--sha256", wrong, NULL),
                     4);
    ct_assert_one_error(err, "its sha256 is");
    free(out);
    free(err);
    assert_int_equal(access(ct_path(f->ct.store, "data"), F_OK), 0);
    assert_int_equal(count_data(f->ct.store), 0);
    wrong[63] = '\0';
    assert_int_equal(ct_run(f->ct.store, &out, &err, "add", f->src[Q4], "--sha256", wrong, NULL),
                     2);
    ct_assert_one_error(err, "invalid --sha256");
    free(out);
    free(err);
    ct_ok(f->ct.store, &out, &err, "add", f->src[Q4], "--sha256", upper, NULL);
    free(out);
    free(err);
    assert_int_equal(count_data(f->ct.store), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ollama, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hf_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_sha256, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
