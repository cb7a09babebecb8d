/* SPDX-License-Identifier: MIT */
/*
 * Store tests on real LMDB environments in temp directories: round trips,
 * chunk lookup across models, pins/gc/size limit, names, signatures, keys,
 * peers, partial models with resume, corruption, refusal of non-stores and
 * disk full mid-add.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcas/manifest.h"
#include "libcas/store-internal.h"
#include "libcas/store.h"
#include "testutil.h"

typedef struct fixture {
    char *dir;  /* temp dir holding files and the store */
    char *sdir; /* the store */
    cas_store *s;
} fixture;

static char *
path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("store");
    f->sdir = path_in(f->dir, "store");
    assert_int_equal(cas_store_open(f->sdir, CAS_STORE_CREATE, &f->s), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    cas_store_free(f->s);
    tu_rm_rf(f->dir);
    free(f->sdir);
    free(f->dir);
    free(f);
    return 0;
}

static uint8_t *
random_bytes(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    tu_fill_random(b, len, seed);
    return b;
}

/* Adds len bytes of buf through a file; returns add's result. */
static int
add_buf(cas_store *s, const char *dir, const void *buf, size_t len, const cas_store_add_opts *o,
        uint8_t id[CAS_HASH_LEN])
{
    char *p = path_in(dir, "input.bin");
    assert_int_equal(tu_write_file(p, buf, len), 0);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    int r = cas_store_add_fd(s, fd, o, id);
    close(fd);
    unlink(p);
    free(p);
    return r;
}

static void
assert_export_equals(cas_store *s, const char *dir, const uint8_t id[CAS_HASH_LEN], const void *buf,
                     size_t len)
{
    char *p = path_in(dir, "export.bin");
    cas_store_problem prob;
    assert_int_equal(cas_store_export_path(s, id, p, NULL, NULL, &prob), 0);
    uint8_t *got;
    size_t got_len;
    assert_int_equal(tu_read_file(p, &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, buf, len);
    free(got);
    unlink(p);
    free(p);
}

static size_t
count_dir(const char *sdir, const char *sub)
{
    char *p = path_in(sdir, sub);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    free(p);
    return n;
}

static cas_manifest *
manifest_of(cas_store *s, const uint8_t id[CAS_HASH_LEN])
{
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s, id, &mb, &ml), 0);
    cas_manifest *m;
    assert_int_equal(cas_manifest_decode(mb, ml, &m), 0);
    free(mb);
    return m;
}

/* ---------------------------------------------------------------------- */

static void
test_roundtrip_sizes(void **state)
{
    fixture *f = *state;
    /* 0, 1 byte, a few chunks, and more than two 4 MiB ring slots. */
    static const size_t sizes[] = { 0, 1, 300000, 9 * 1024 * 1024 + 17 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *b = random_bytes(sizes[i], 100 + i);
        uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN];
        assert_int_equal(add_buf(f->s, f->dir, b, sizes[i], NULL, id), 1);
        assert_export_equals(f->s, f->dir, id, b, sizes[i]);
        /* Adding the same bytes again finds the model. */
        assert_int_equal(add_buf(f->s, f->dir, b, sizes[i], NULL, id2), 0);
        assert_memory_equal(id, id2, CAS_HASH_LEN);
        cas_model_info info;
        assert_int_equal(cas_store_model_info(f->s, id, &info), 0);
        assert_int_equal(info.state, CAS_MODEL_COMPLETE);
        assert_int_equal(info.size, sizes[i]);
        assert_int_equal(info.n_present, info.n_chunks);
        /* The data file is read-only and holds the model bytes. */
        char *dp;
        assert_int_equal(cas_store_data_path(f->s, id, &dp), 0);
        struct stat st;
        assert_int_equal(stat(dp, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0444);
        assert_int_equal((size_t)st.st_size, sizes[i]);
        free(dp);
        free(b);
    }
    assert_int_equal(count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
}

typedef struct pipe_arg {
    int fd;
    const uint8_t *buf;
    size_t len;
} pipe_arg;

static void *
pipe_writer(void *arg)
{
    pipe_arg *a = arg;
    for (size_t off = 0; off < a->len;) {
        size_t n = a->len - off < 100000 ? a->len - off : 100000;
        ssize_t w = write(a->fd, a->buf + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(a->fd);
    return NULL;
}

static int
count_progress(void *userdata, uint64_t done, uint64_t total)
{
    uint64_t *last = userdata;
    if (done < *last)
        return -EINVAL;
    *last = done;
    (void)total;
    return 0;
}

static void
test_add_pipe_same_id(void **state)
{
    fixture *f = *state;
    size_t len = 5 * 1024 * 1024 + 3;
    uint8_t *b = random_bytes(len, 7);
    uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN];
    uint64_t last = 0;
    cas_store_add_opts o = { .progress = count_progress, .userdata = &last, .threads = 3 };
    assert_int_equal(add_buf(f->s, f->dir, b, len, &o, id), 1);
    assert_int_equal(last, len);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pipe_arg a = { pfd[1], b, len };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pipe_writer, &a), 0);
    assert_int_equal(cas_store_add_fd(f->s, pfd[0], NULL, id2), 0);
    pthread_join(th, NULL);
    close(pfd[0]);
    assert_memory_equal(id, id2, CAS_HASH_LEN);

    /* A prefix the caller read already, then the rest of the pipe: same id. */
    const size_t plens[] = { 0, 1000, 4 * 1024 * 1024 + 7, len };
    for (size_t pi = 0; pi < sizeof(plens) / sizeof(plens[0]); pi++) {
        size_t plen = plens[pi];
        assert_int_equal(pipe(pfd), 0);
        a = (pipe_arg){ pfd[1], b + plen, len - plen };
        assert_int_equal(pthread_create(&th, NULL, pipe_writer, &a), 0);
        cas_store_add_opts po = { .prefix = b, .prefix_len = plen };
        assert_int_equal(cas_store_add_fd(f->s, pfd[0], &po, id2), 0);
        pthread_join(th, NULL);
        close(pfd[0]);
        assert_memory_equal(id, id2, CAS_HASH_LEN);
    }
    free(b);
}

static int
cancel_progress(void *userdata, uint64_t done, uint64_t total)
{
    (void)userdata;
    (void)total;
    return done > 0 ? -ECANCELED : 0;
}

static void
test_add_cancel_and_options(void **state)
{
    fixture *f = *state;
    size_t len = 40 * 1024 * 1024;
    uint8_t *b = random_bytes(len, 8);
    uint8_t id[CAS_HASH_LEN];
    cas_store_add_opts o = { .progress = cancel_progress };
    assert_int_equal(add_buf(f->s, f->dir, b, len, &o, id), -ECANCELED);
    assert_int_equal(count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(count_dir(f->sdir, "data"), 0);

    /* Forced cuts, metadata and tensors reach the manifest. */
    cas_chunk_region reg[] = { { 1000, CAS_CHUNK_MODE_CDC }, { 200000, CAS_CHUNK_MODE_FIXED } };
    cas_store_meta meta[] = { { "filename", "x.bin" }, { "format", "raw" } };
    cas_tensor_info t = {
        .name = "w", .type = 0, .n_dims = 1, .dims = { 1000 }, .offset = 200000, .size = 4000
    };
    cas_chunker_params p = { 1024, 4096, 16384 };
    cas_store_add_opts o2 = { .kind = CAS_CHUNKER_LLAMA2C,
                              .params = &p,
                              .regions = reg,
                              .n_regions = 2,
                              .tensors = &t,
                              .n_tensors = 1,
                              .meta = meta,
                              .n_meta = 2,
                              .pin = true,
                              .name = "mine" };
    assert_int_equal(add_buf(f->s, f->dir, b, 300000, &o2, id), 1);
    cas_manifest *m = manifest_of(f->s, id);
    cas_chunker_params got;
    assert_int_equal(cas_manifest_chunker(m, &got), CAS_CHUNKER_LLAMA2C);
    assert_int_equal(got.avg, 4096);
    assert_string_equal(cas_manifest_meta_get(m, "filename"), "x.bin");
    assert_int_equal(cas_manifest_tensor_count(m), 1);
    size_t ci;
    assert_int_equal(cas_manifest_chunk_at(m, 1000, &ci), 0);
    cas_chunk_info c;
    assert_int_equal(cas_manifest_chunk(m, ci, &c), 0);
    assert_int_equal(c.offset, 1000);
    assert_int_equal(cas_manifest_chunk_at(m, 200000, &ci), 0);
    assert_int_equal(cas_manifest_chunk(m, ci, &c), 0);
    assert_int_equal(c.offset, 200000);
    assert_int_equal(c.len, 4096);
    cas_manifest_free(m);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id, &info), 0);
    assert_true(info.pinned);
    uint8_t nid[CAS_HASH_LEN];
    assert_int_equal(cas_store_name_get(f->s, "mine", nid), 0);
    assert_memory_equal(nid, id, CAS_HASH_LEN);
    assert_export_equals(f->s, f->dir, id, b, 300000);
    free(b);
}

static void
test_shared_models(void **state)
{
    fixture *f = *state;
    static const char *names[] = { "aidreams260K.bin",
                                   "stories260K.bin",
                                   "aidreams260K-f32.gguf",
                                   "aidreams260K-Q8_0-ffndownF16.gguf",
                                   "aidreams260K-Q4_0-ffndownF16.gguf",
                                   "tok512.bin" };
    int found = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *p = tu_model_path(names[i]);
        if (!p)
            continue;
        found++;
        uint8_t *b;
        size_t len;
        assert_int_equal(tu_read_file(p, &b, &len), 0);
        int fd = open(p, O_RDONLY);
        assert_true(fd >= 0);
        uint8_t id[CAS_HASH_LEN];
        assert_true(cas_store_add_fd(f->s, fd, NULL, id) >= 0);
        close(fd);
        assert_export_equals(f->s, f->dir, id, b, len);
        free(b);
        free(p);
    }
    if (!found)
        skip();
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
}

static void flip_byte(const char *path, uint64_t off);

static void
test_chunk_lookup(void **state)
{
    fixture *f = *state;
    size_t len = 2 * 1024 * 1024;
    uint8_t *a = random_bytes(len, 11);
    uint8_t *b = random_bytes(len, 12);
    memcpy(b, a, len / 2); /* B shares its first half with A */
    uint8_t ida[CAS_HASH_LEN], idb[CAS_HASH_LEN];
    assert_int_equal(add_buf(f->s, f->dir, a, len, NULL, ida), 1);
    assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, idb), 1);
    cas_manifest *ma = manifest_of(f->s, ida), *mb = manifest_of(f->s, idb);
    size_t shared = 0;
    uint8_t *buf = malloc(CAS_CHUNK_MAX_DEFAULT);
    for (size_t i = 0; i < cas_manifest_chunk_count(mb); i++) {
        cas_chunk_info ci;
        assert_int_equal(cas_manifest_chunk(mb, i, &ci), 0);
        cas_chunk_loc loc;
        assert_int_equal(cas_store_chunk_find(f->s, ci.id, &loc), 0);
        assert_int_equal(loc.len, ci.len);
        for (size_t j = 0; j < cas_manifest_chunk_count(ma); j++) {
            cas_chunk_info cj;
            cas_manifest_chunk(ma, j, &cj);
            if (memcmp(cj.id, ci.id, CAS_HASH_LEN) == 0) {
                shared++; /* found in either model, both hold it */
                break;
            }
        }
        assert_true(memcmp(loc.model, ida, CAS_HASH_LEN) == 0 ||
                    memcmp(loc.model, idb, CAS_HASH_LEN) == 0);
        assert_int_equal(cas_store_chunk_read(f->s, ci.id, buf, CAS_CHUNK_MAX_DEFAULT), ci.len);
        assert_memory_equal(buf, b + ci.offset, ci.len);
        assert_int_equal(cas_store_chunk_read(f->s, ci.id, buf, ci.len - 1), -EMSGSIZE);
    }
    assert_true(shared > 0); /* chunks of B's first half are found in A */
    /* A corrupt copy in A does not hide the sound one in B. */
    char *dpa;
    assert_int_equal(cas_store_data_path(f->s, ida, &dpa), 0);
    flip_byte(dpa, 100);
    cas_chunk_info first;
    assert_int_equal(cas_manifest_chunk(mb, 0, &first), 0);
    assert_int_equal(cas_store_chunk_read(f->s, first.id, buf, CAS_CHUNK_MAX_DEFAULT), first.len);
    assert_memory_equal(buf, b, first.len);
    flip_byte(dpa, 100);
    free(dpa);
    /* After A goes, B's chunks are found in B, and A's own ones nowhere. */
    assert_int_equal(cas_store_rm(f->s, ida, 0), 0);
    for (size_t i = 0; i < cas_manifest_chunk_count(mb); i++) {
        cas_chunk_info ci;
        cas_manifest_chunk(mb, i, &ci);
        cas_chunk_loc loc;
        assert_int_equal(cas_store_chunk_find(f->s, ci.id, &loc), 0);
        assert_memory_equal(loc.model, idb, CAS_HASH_LEN);
    }
    cas_chunk_info last;
    cas_manifest_chunk(ma, cas_manifest_chunk_count(ma) - 1, &last);
    cas_chunk_loc loc;
    assert_int_equal(cas_store_chunk_find(f->s, last.id, &loc), -ENOENT);
    assert_int_equal(cas_store_chunk_read(f->s, last.id, buf, CAS_CHUNK_MAX_DEFAULT), -ENOENT);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, ida, &info), -ENOENT);
    assert_int_equal(count_dir(f->sdir, "data"), 1);
    cas_manifest_free(ma);
    cas_manifest_free(mb);
    free(buf);
    free(a);
    free(b);
}

static int
collect_gc(void *userdata, const cas_model_info *info)
{
    int *n = userdata;
    (*n)++;
    (void)info;
    return 0;
}

static void
test_pins_gc(void **state)
{
    fixture *f = *state;
    uint8_t id[3][CAS_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        uint8_t *b = random_bytes(100000, 20 + (uint64_t)i);
        assert_int_equal(add_buf(f->s, f->dir, b, 100000, NULL, id[i]), 1);
        free(b);
    }
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_pin(f->s, id[1]), 0); /* idempotent */
    uint8_t unknown[CAS_HASH_LEN] = { 1 };
    assert_int_equal(cas_store_pin(f->s, unknown), -ENOENT);
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.n_models, 3);
    assert_int_equal(u.n_pinned, 1);
    assert_int_equal(u.pinned_bytes, 100000);

    int n = 0;
    cas_gc_result res;
    assert_int_equal(cas_store_gc(f->s, CAS_GC_DRY_RUN, collect_gc, &n, &res), 0);
    assert_int_equal(n, 2);
    assert_int_equal(res.n_models, 2);
    assert_int_equal(res.bytes, 200000);
    assert_int_equal(count_dir(f->sdir, "data"), 3); /* dry run removes nothing */

    assert_int_equal(cas_store_rm(f->s, id[1], 0), -EBUSY);
    assert_int_equal(cas_store_gc(f->s, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 2);
    assert_int_equal(count_dir(f->sdir, "data"), 1);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), -ENOENT);

    assert_int_equal(cas_store_unpin(f->s, id[1]), 0);
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_false(info.pinned);
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_rm(f->s, id[1], CAS_RM_FORCE), 0);
    assert_int_equal(cas_store_rm(f->s, id[1], CAS_RM_FORCE), -ENOENT);
    assert_int_equal(count_dir(f->sdir, "data"), 0);
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.n_models, 0);
}

static void
test_size_limit(void **state)
{
    fixture *f = *state;
    size_t len = 100000;
    uint8_t id[4][CAS_HASH_LEN];
    assert_int_equal(cas_store_limit_set(f->s, 2 * len), 0);
    for (int i = 0; i < 3; i++) {
        uint8_t *b = random_bytes(len, 30 + (uint64_t)i);
        assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, id[i]), 1);
        free(b);
    }
    /* The oldest unpinned model made room for the third. */
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id[0], &info), -ENOENT);
    assert_int_equal(cas_store_model_info(f->s, id[1], &info), 0);
    assert_int_equal(cas_store_model_info(f->s, id[2], &info), 0);
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.bytes, 2 * len);
    assert_int_equal(u.limit, 2 * len);

    /* Pinned content fills the limit: a new model cannot fit. */
    assert_int_equal(cas_store_pin(f->s, id[1]), 0);
    assert_int_equal(cas_store_pin(f->s, id[2]), 0);
    uint8_t *b = random_bytes(len, 40);
    assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, id[3]), -ENOSPC);
    assert_int_equal(count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(count_dir(f->sdir, "data"), 2);
    /* Raising the limit lets it in; gc to the limit then frees nothing pinned. */
    assert_int_equal(cas_store_limit_set(f->s, 3 * len), 0);
    assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, id[3]), 1);
    assert_int_equal(cas_store_limit_set(f->s, len), 0);
    cas_gc_result res;
    assert_int_equal(cas_store_gc(f->s, CAS_GC_TO_LIMIT, NULL, NULL, &res), 0);
    assert_int_equal(res.n_models, 1);
    assert_int_equal(cas_store_model_info(f->s, id[3], &info), -ENOENT);
    free(b);
}

static int
name_cb(void *userdata, const char *name, const uint8_t id[CAS_HASH_LEN])
{
    char *out = userdata;
    strcat(out, name);
    strcat(out, ",");
    (void)id;
    return 0;
}

static void
test_names_resolve(void **state)
{
    fixture *f = *state;
    uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN], got[CAS_HASH_LEN];
    uint8_t *b = random_bytes(5000, 50);
    assert_int_equal(add_buf(f->s, f->dir, b, 5000, NULL, id), 1);
    assert_int_equal(add_buf(f->s, f->dir, b, 4000, NULL, id2), 1);
    free(b);
    assert_int_equal(cas_store_name_set(f->s, "llama/7b", id), 0);
    assert_int_equal(cas_store_name_set(f->s, "alpha", id2), 0);
    assert_int_equal(cas_store_name_set(f->s, "", id), -EINVAL);
    uint8_t unknown[CAS_HASH_LEN] = { 0 };
    assert_int_equal(cas_store_name_set(f->s, "x", unknown), -ENOENT);
    assert_int_equal(cas_store_name_get(f->s, "llama/7b", got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    assert_int_equal(cas_store_name_get(f->s, "nope", got), -ENOENT);
    char list[256] = "";
    assert_int_equal(cas_store_name_list(f->s, name_cb, list), 0);
    assert_string_equal(list, "alpha,llama/7b,");
    assert_int_equal(cas_store_name_set(f->s, "alpha", id), 0); /* rebinds */
    assert_int_equal(cas_store_name_get(f->s, "alpha", got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    assert_int_equal(cas_store_name_del(f->s, "alpha"), 0);
    assert_int_equal(cas_store_name_del(f->s, "alpha"), -ENOENT);

    /* Prefixes. */
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    assert_int_equal(cas_store_resolve(f->s, hex, got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    hex[8] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), 0);
    assert_memory_equal(got, id, CAS_HASH_LEN);
    hex[7] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), -EINVAL);
    assert_int_equal(cas_store_resolve(f->s, "zzzzzzzz", got), -EINVAL);
    char other[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, other);
    other[0] = other[0] == '0' ? '1' : '0';
    other[9] = '\0';
    cas_hash_prefix pfx;
    assert_int_equal(cas_hash_prefix_parse(other, &pfx), 0);
    if (!cas_hash_prefix_match(&pfx, id2))
        assert_int_equal(cas_store_resolve(f->s, other, got), -ENOENT);

    /* Ambiguity needs two ids sharing 8 hex digits: plant a record. */
    uint8_t twin[CAS_HASH_LEN];
    memcpy(twin, id, CAS_HASH_LEN);
    twin[31] ^= 1;
    MDB_txn *txn;
    assert_int_equal(cas__txn_begin(f->s, false, &txn), 0);
    cas__model_rec rec = { .state = CAS_MODEL_COMPLETE,
                           .manifest = (const uint8_t *)"x",
                           .manifest_len = 1 };
    assert_int_equal(cas__model_put(f->s, txn, twin, &rec), 0);
    assert_int_equal(cas__txn_commit(txn), 0);
    cas_hash_to_hex(id, hex);
    hex[10] = '\0';
    assert_int_equal(cas_store_resolve(f->s, hex, got), -ENOTUNIQ);
    /* rm drops the names bound to a model. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    assert_int_equal(cas_store_name_get(f->s, "llama/7b", got), -ENOENT);
}

static int
sig_cb(void *userdata, const void *blob, size_t len)
{
    int *n = userdata;
    (*n)++;
    (void)blob;
    (void)len;
    return 0;
}

static int
key_cb(void *userdata, const uint8_t *key_id, size_t key_id_len, const uint8_t *blob,
       size_t blob_len, const char *name)
{
    char *out = userdata;
    strcat(out, name);
    strcat(out, ";");
    (void)key_id;
    (void)key_id_len;
    (void)blob;
    (void)blob_len;
    return 0;
}

static int
peer_cb(void *userdata, const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len)
{
    int *n = userdata;
    (*n)++;
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    return 0;
}

static void
test_sigs_keys_peers(void **state)
{
    fixture *f = *state;
    uint8_t id[CAS_HASH_LEN];
    uint8_t *b = random_bytes(1000, 60);
    assert_int_equal(add_buf(f->s, f->dir, b, 1000, NULL, id), 1);
    free(b);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-one", 7), 1);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-one", 7), 0);
    assert_int_equal(cas__sig_put(f->s, false, id, "sig-two", 7), 1);
    uint8_t unknown[CAS_HASH_LEN] = { 9 };
    assert_int_equal(cas__sig_put(f->s, false, unknown, "s", 1), -ENOENT);
    int n = 0;
    assert_int_equal(cas_store_sig_list(f->s, id, sig_cb, &n), 0);
    assert_int_equal(n, 2);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id, &info), 0);
    assert_int_equal(info.n_sigs, 2);
    assert_int_equal(cas_store_sig_del(f->s, id, "sig-one", 7), 0);
    assert_int_equal(cas_store_sig_del(f->s, id, "sig-one", 7), -ENOENT);

    uint8_t kid[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, kid2[8] = { 9 };
    assert_int_equal(cas_store_key_put(f->s, kid, 8, "PUBKEY", 6, "alice"), 0);
    assert_int_equal(cas_store_key_put(f->s, kid2, 8, "PUBKEY2", 7, NULL), 0);
    uint8_t *blob;
    size_t bl;
    char *name;
    assert_int_equal(cas_store_key_get(f->s, kid, 8, &blob, &bl, &name), 0);
    assert_int_equal(bl, 6);
    assert_memory_equal(blob, "PUBKEY", 6);
    assert_string_equal(name, "alice");
    free(blob);
    free(name);
    char list[64] = "";
    assert_int_equal(cas_store_key_list(f->s, key_cb, list), 0);
    assert_string_equal(list, "alice;;");
    assert_int_equal(cas_store_key_del(f->s, kid, 8), 0);
    assert_int_equal(cas_store_key_get(f->s, kid, 8, &blob, &bl, NULL), -ENOENT);

    assert_int_equal(cas_store_peer_put(f->s, "127.0.0.1:7000", 14, "v1", 2), 0);
    assert_int_equal(cas_store_peer_put(f->s, "127.0.0.1:7001", 14, "", 0), 0);
    n = 0;
    assert_int_equal(cas_store_peer_list(f->s, peer_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cas_store_peer_del(f->s, "127.0.0.1:7000", 14), 0);
    assert_int_equal(cas_store_peer_del(f->s, "127.0.0.1:7000", 14), -ENOENT);

    /* rm drops the signatures. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    n = 0;
    assert_int_equal(cas_store_sig_list(f->s, id, sig_cb, &n), 0);
    assert_int_equal(n, 0);
}

static void
test_partial_resume(void **state)
{
    fixture *f = *state;
    size_t len = 3 * 1024 * 1024;
    uint8_t *a = random_bytes(len, 70);
    uint8_t *b = random_bytes(len, 71);
    memcpy(b + len / 3, a + len / 3, len / 3); /* B's middle third is A's */
    uint8_t ida[CAS_HASH_LEN], idb[CAS_HASH_LEN], id[CAS_HASH_LEN];
    assert_int_equal(add_buf(f->s, f->dir, a, len, NULL, ida), 1);

    /* Make B's manifest in another store. */
    char *s2dir = path_in(f->dir, "store2");
    cas_store *s2;
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(add_buf(s2, f->dir, b, len, NULL, idb), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, idb, &mb, &ml), 0);
    cas_store_free(s2);

    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    assert_memory_equal(id, idb, CAS_HASH_LEN);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 0);
    mb[0] ^= 1;
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), -EBADMSG);
    free(mb);
    char *dp;
    assert_int_equal(cas_store_data_path(f->s, idb, &dp), -EAGAIN);

    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, idb, &p), 0);
    uint64_t n = cas_partial_n_chunks(p);
    assert_true(n > 10);
    /* The first two chunks, one wrong one. */
    uint8_t cid[CAS_HASH_LEN];
    uint64_t off;
    uint32_t clen;
    for (uint64_t i = 0; i < 2; i++) {
        assert_int_equal(cas_partial_chunk(p, i, cid, &off, &clen), 0);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 1);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 0);
    }
    assert_int_equal(cas_partial_chunk(p, 2, cid, &off, &clen), 0);
    assert_int_equal(cas_partial_put(p, 2, a + off, clen), -EBADMSG);
    assert_int_equal(cas_partial_put(p, 2, b + off, clen - 1), -EBADMSG);
    assert_int_equal(cas_partial_put(p, n, b, 1), -EINVAL);
    /* Already hashed by the caller: still compared with the manifest. */
    uint8_t wrong[CAS_HASH_LEN];
    cas_hash(a + off, clen, wrong);
    assert_int_equal(cas_partial_put_hashed(p, 2, a + off, clen, wrong), -EBADMSG);
    assert_int_equal(cas_partial_put_hashed(p, 2, b + off, clen - 1, cid), -EBADMSG);
    assert_false(cas_partial_has(p, 2));
    assert_int_equal(cas_partial_put_hashed(p, 1, b, 1, cid), -EBADMSG);
    assert_int_equal(cas_partial_commit(p), 0);
    /* Put but not committed: lost when the handle goes. */
    assert_int_equal(cas_partial_put(p, 2, b + off, clen), 1);
    assert_int_equal(cas_partial_complete(p), -EAGAIN);
    cas_partial_free(p);

    /* Reopen the store: the committed bits survived. */
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    uint8_t *bits;
    uint64_t nb;
    assert_int_equal(cas_store_bitmap_get(f->s, idb, &bits, &nb), 0);
    assert_int_equal(nb, n);
    assert_int_equal(bits[0] & 7, 3);
    free(bits);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, idb, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_PARTIAL);
    assert_int_equal(info.n_present, 2);
    assert_int_equal(cas_store_verify(f->s, idb, NULL), 0);
    assert_int_equal(cas_store_export_path(f->s, idb, "/nonexistent/x", NULL, NULL, NULL) < 0, 1);

    assert_int_equal(cas_partial_open(f->s, idb, &p), 0);
    assert_true(cas_partial_has(p, 1));
    assert_false(cas_partial_has(p, 2));
    uint64_t filled = 0;
    assert_int_equal(cas_partial_fill_local(p, &filled), 0);
    assert_true(filled > 0); /* from A's middle third */
    for (uint64_t i = 0; i < n; i++) {
        if (cas_partial_has(p, i))
            continue;
        assert_int_equal(cas_partial_chunk(p, i, cid, &off, &clen), 0);
        assert_int_equal(cas_partial_put(p, i, b + off, clen), 1);
    }
    assert_int_equal(cas_partial_n_present(p), n);
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    assert_int_equal(cas_partial_open(f->s, idb, &p), -EINVAL);

    assert_int_equal(cas_store_model_info(f->s, idb, &info), 0);
    assert_int_equal(info.state, CAS_MODEL_COMPLETE);
    assert_int_equal(cas_store_data_path(f->s, idb, &dp), 0);
    struct stat st;
    assert_int_equal(stat(dp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    free(dp);
    assert_export_equals(f->s, f->dir, idb, b, len);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    free(s2dir);
    free(a);
    free(b);
}

typedef struct problems {
    int n;
    cas_store_problem first;
} problems;

static int
problem_cb(void *userdata, const cas_store_problem *p)
{
    problems *ps = userdata;
    if (ps->n++ == 0)
        ps->first = *p;
    return 0;
}

static void
flip_byte(const char *path, uint64_t off)
{
    chmod(path, 0644);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
    chmod(path, 0444);
}

static void
test_corrupt(void **state)
{
    fixture *f = *state;
    size_t len = 6 * 1024 * 1024;
    uint8_t *b = random_bytes(len, 80);
    uint8_t id[CAS_HASH_LEN], good[CAS_HASH_LEN];
    assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, id), 1);
    assert_int_equal(add_buf(f->s, f->dir, b, 1000, NULL, good), 1);
    char *dp;
    assert_int_equal(cas_store_data_path(f->s, id, &dp), 0);
    uint64_t off = 4 * 1024 * 1024 + 12345;
    flip_byte(dp, off);
    cas_manifest *m = manifest_of(f->s, id);
    size_t want;
    assert_int_equal(cas_manifest_chunk_at(m, off, &want), 0);

    problems ps = { 0 };
    cas_store_verify_opts vo = { .problem = problem_cb, .userdata = &ps };
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1);
    assert_memory_equal(ps.first.model, id, CAS_HASH_LEN);
    assert_int_equal(ps.first.chunk_index, want);
    assert_int_equal(ps.first.error, -EBADMSG);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, NULL, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1);
    assert_int_equal(cas_store_verify(f->s, good, NULL), 0);

    char *out = path_in(f->dir, "out.bin");
    cas_store_problem prob;
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, want);
    assert_int_equal(access(out, F_OK), -1); /* nothing left behind */
    cas_chunk_info ci;
    cas_manifest_chunk(m, want, &ci);
    uint8_t *buf = malloc(CAS_CHUNK_MAX_DEFAULT);
    assert_int_equal(cas_store_chunk_read(f->s, ci.id, buf, CAS_CHUNK_MAX_DEFAULT), -EBADMSG);

    /* Bytes appended to a data file: a problem of no chunk. */
    chmod(dp, 0644);
    assert_int_equal(truncate(dp, (off_t)len + 10), 0);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.chunk_index, CAS_STORE_NO_CHUNK);
    assert_int_equal(ps.first.error, -EBADMSG);
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, CAS_STORE_NO_CHUNK);
    /* A truncated one: the first chunk past the end is missing, and the
     * bad chunk before it is still found. */
    assert_int_equal(truncate(dp, 5000000), 0);
    size_t cut;
    assert_int_equal(cas_manifest_chunk_at(m, 5000000, &cut), 0);
    ps.n = 0;
    vo.all_chunks = true;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.n, 1 + (int)(cas_manifest_chunk_count(m) - cut));
    assert_int_equal(ps.first.chunk_index, cut);
    assert_int_equal(ps.first.error, -ENOENT);
    vo.all_chunks = false;
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    assert_int_equal(prob.chunk_index, cut);
    assert_int_equal(prob.error, -ENOENT);
    assert_int_equal(truncate(dp, 100), 0);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.chunk_index, 0);
    /* A missing one: a problem of no chunk. */
    unlink(dp);
    ps.n = 0;
    assert_int_equal(cas_store_verify(f->s, id, &vo), -EBADMSG);
    assert_int_equal(ps.first.error, -ENOENT);
    assert_int_equal(cas_store_export_path(f->s, id, out, NULL, NULL, &prob), -EBADMSG);
    /* rm repairs the store. */
    assert_int_equal(cas_store_rm(f->s, id, 0), 0);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    cas_manifest_free(m);
    free(buf);
    free(out);
    free(dp);
    free(b);
}

static void
test_not_a_store(void **state)
{
    fixture *f = *state;
    cas_store *s = NULL;
    char *d = path_in(f->dir, "other");
    assert_int_equal(mkdir(d, 0755), 0);
    char *junk = path_in(d, "file.txt");
    assert_int_equal(tu_write_file(junk, "hello", 5), 0);
    assert_int_equal(cas_store_open(d, 0, &s), -ENOTDIR);
    assert_int_equal(cas_store_open(d, CAS_STORE_CREATE, &s), -ENOTDIR);
    assert_int_equal(cas_store_open(junk, CAS_STORE_CREATE, &s), -ENOTDIR);
    unlink(junk);
    /* Empty: only with CREATE. */
    assert_int_equal(cas_store_open(d, 0, &s), -ENOENT);
    char *missing = path_in(f->dir, "missing/deeper");
    assert_int_equal(cas_store_open(missing, 0, &s), -ENOENT);
    assert_int_equal(cas_store_open(missing, CAS_STORE_CREATE, &s), 0);
    cas_store_free(s);
    assert_int_equal(cas_store_open(missing, 0, &s), 0);
    cas_store_free(s);
    /* A marker of another version. */
    char *marker = path_in(missing, "nvx-store");
    assert_int_equal(tu_write_file(marker, "nvx-store 99\n", 13), 0);
    assert_int_equal(cas_store_open(missing, 0, &s), -EBADMSG);
    assert_int_equal(tu_write_file(marker, "nvx-store 1\n", 12), 0);
    assert_int_equal(cas_store_open(missing, 0, &s), 0);
    cas_store_free(s);
    free(marker);
    free(missing);
    free(junk);
    free(d);
}

static void
test_disk_full(void **state)
{
    fixture *f = *state;
    size_t len = 8 * 1024 * 1024;
    uint8_t *b = random_bytes(len, 90);
    char *in = path_in(f->dir, "big.bin");
    assert_int_equal(tu_write_file(in, b, len), 0);
    uint8_t small_id[CAS_HASH_LEN];
    assert_int_equal(add_buf(f->s, f->dir, b, 1000, NULL, small_id), 1);
    cas_store_free(f->s);
    f->s = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A file size limit makes write() fail with EFBIG, like a full disk. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { 3 * 1024 * 1024, 3 * 1024 * 1024 };
        setrlimit(RLIMIT_FSIZE, &rl);
        cas_store *s;
        if (cas_store_open(f->sdir, 0, &s) < 0)
            _exit(100);
        int fd = open(in, O_RDONLY);
        uint8_t id[CAS_HASH_LEN];
        int r = cas_store_add_fd(s, fd, NULL, id);
        cas_store_free(s);
        _exit(r == -EFBIG ? 0 : r == -ENOSPC ? 1 : 2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) <= 1);
    /* Cleaned up by the add itself, and the store is consistent. */
    assert_int_equal(count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(count_dir(f->sdir, "data"), 1);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    uint8_t id[CAS_HASH_LEN];
    int fd = open(in, O_RDONLY);
    assert_int_equal(cas_store_add_fd(f->s, fd, NULL, id), 1);
    close(fd);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
    free(in);
    free(b);
}

static void
test_stale_tmp_cleanup(void **state)
{
    fixture *f = *state;
    char *t = path_in(f->sdir, "tmp/add-1-2-3");
    assert_int_equal(tu_write_file(t, "junk", 4), 0);
    char hex[CAS_HASH_HEX_LEN + 1];
    uint8_t fake[CAS_HASH_LEN] = { 0xab };
    cas_hash_to_hex(fake, hex);
    char name[128];
    snprintf(name, sizeof(name), "data/%s", hex);
    char *orphan = path_in(f->sdir, name);
    assert_int_equal(tu_write_file(orphan, "orphan", 6), 0);
    /* A temp file whose writer is alive (it holds the flock) stays. */
    char *live = path_in(f->sdir, "tmp/add-4-5-6");
    assert_int_equal(tu_write_file(live, "live", 4), 0);
    int lfd = open(live, O_RDONLY);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(access(t, F_OK), -1);
    assert_int_equal(access(orphan, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    close(lfd);
    cas_store_free(f->s);
    assert_int_equal(cas_store_open(f->sdir, 0, &f->s), 0);
    assert_int_equal(access(live, F_OK), -1);
    free(live);
    free(t);
    free(orphan);
}

typedef struct thread_arg {
    fixture *f;
    int k;
    int r;
} thread_arg;

/* One thread: add its own file, verify everything, list, export. */
static void *
store_thread(void *arg)
{
    thread_arg *a = arg;
    size_t len = 3 * 1024 * 1024 + (size_t)a->k * 1000;
    uint8_t *b = random_bytes(len, 500 + (uint64_t)a->k);
    char name[32];
    snprintf(name, sizeof(name), "t%d.bin", a->k);
    char *p = path_in(a->f->dir, name);
    a->r = tu_write_file(p, b, len);
    for (int round = 0; round < 3 && a->r >= 0; round++) {
        int fd = open(p, O_RDONLY);
        uint8_t id[CAS_HASH_LEN];
        a->r = cas_store_add_fd(a->f->s, fd, NULL, id);
        close(fd);
        if (a->r >= 0)
            a->r = cas_store_verify(a->f->s, NULL, NULL);
        if (a->r >= 0)
            a->r = cas_store_pin(a->f->s, id);
        if (a->r >= 0 && round < 2)
            a->r = cas_store_rm(a->f->s, id, CAS_RM_FORCE);
    }
    unlink(p);
    free(p);
    free(b);
    return NULL;
}

static void
test_threads_share_handle(void **state)
{
    fixture *f = *state;
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ f, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, store_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].r >= 0);
    }
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(f->s, &u), 0);
    assert_int_equal(u.n_models, 4);
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
}

typedef struct put_arg {
    cas_partial *p;
    const uint8_t *bytes;
    uint64_t first, step;
    int r;
} put_arg;

static void *
put_thread(void *arg)
{
    put_arg *a = arg;
    uint64_t n = cas_partial_n_chunks(a->p);
    for (uint64_t i = a->first; i < n && a->r >= 0; i += a->step) {
        uint8_t cid[CAS_HASH_LEN];
        uint64_t off;
        uint32_t len;
        a->r = cas_partial_chunk(a->p, i, cid, &off, &len);
        if (a->r == 0)
            a->r = cas_partial_put(a->p, i, a->bytes + off, len);
        if (a->r >= 0 && i % 5 == 0)
            a->r = cas_partial_commit(a->p);
    }
    return NULL;
}

static void
test_partial_threads(void **state)
{
    fixture *f = *state;
    size_t len = 4 * 1024 * 1024;
    uint8_t *b = random_bytes(len, 600);
    char *s2dir = path_in(f->dir, "store2");
    cas_store *s2;
    uint8_t id[CAS_HASH_LEN];
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(add_buf(s2, f->dir, b, len, NULL, id), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, id, &mb, &ml), 0);
    cas_store_free(s2);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    free(mb);
    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, id, &p), 0);
    pthread_t th[3];
    put_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (put_arg){ p, b, (uint64_t)i, 3, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, put_thread, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_true(args[i].r >= 0);
    }
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    assert_export_equals(f->s, f->dir, id, b, len);
    free(s2dir);
    free(b);
}

/* The pipeline cuts and hashes exactly as the chunker on a whole buffer,
 * across ring-slot boundaries and forced cuts (one right at a slot edge). */
static void
test_chunks_match_split(void **state)
{
    fixture *f = *state;
    size_t len = 9 * 1024 * 1024 + 4321;
    uint8_t *b = random_bytes(len, 700);
    cas_chunk_region reg[] = { { 4 * 1024 * 1024, CAS_CHUNK_MODE_CDC },
                               { 4 * 1024 * 1024 + 100000, CAS_CHUNK_MODE_FIXED },
                               { 8 * 1024 * 1024 - 5, CAS_CHUNK_MODE_CDC } };
    for (int variant = 0; variant < 2; variant++) {
        const cas_chunk_region *r = variant ? reg : NULL;
        size_t nr = variant ? 3 : 0;
        cas_chunker_params p = CAS_CHUNKER_PARAMS_DEFAULT;
        uint32_t *lens;
        size_t n;
        assert_int_equal(cas_chunker_split(&p, r, nr, b, len, &lens, &n), 0);
        cas_store_add_opts o = { .regions = r, .n_regions = nr, .kind = CAS_CHUNKER_CDC };
        uint8_t id[CAS_HASH_LEN];
        assert_true(add_buf(f->s, f->dir, b, len, &o, id) >= 0);
        cas_manifest *m = manifest_of(f->s, id);
        assert_int_equal(cas_manifest_chunk_count(m), n);
        for (size_t i = 0; i < n; i++) {
            cas_chunk_info ci;
            assert_int_equal(cas_manifest_chunk(m, i, &ci), 0);
            assert_int_equal(ci.len, lens[i]);
            uint8_t h[CAS_HASH_LEN];
            cas_hash(b + ci.offset, ci.len, h);
            assert_memory_equal(h, ci.id, CAS_HASH_LEN);
        }
        cas_manifest_free(m);
        free(lens);
    }
    free(b);
}

static int
count_listed(void *userdata, const cas_model_info *info)
{
    (*(size_t *)userdata)++;
    (void)info;
    return 0;
}

/* Damaged index records are reported as corrupt, never trusted. */
static void
test_damaged_records(void **state)
{
    fixture *f = *state;
    uint8_t id[CAS_HASH_LEN];
    uint8_t *b = random_bytes(70000, 800);
    assert_int_equal(add_buf(f->s, f->dir, b, 70000, NULL, id), 1);
    free(b);
    /* A complete record whose manifest does not decode, with an index entry. */
    uint8_t bad_manifest[40] = { 1, 2 };
    bad_manifest[32] = 'X';
    static const uint8_t bad_state[40] = { 1, 9 };
    static const uint8_t bad_version[40] = { 7, 2 };
    static const uint8_t short_rec[5] = { 1, 2 };
    const struct {
        const void *p;
        size_t n;
    } recs[] = { { bad_state, sizeof(bad_state) },
                 { bad_version, sizeof(bad_version) },
                 { short_rec, sizeof(short_rec) },
                 { bad_manifest, sizeof(bad_manifest) } };
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        uint8_t twin[CAS_HASH_LEN];
        memcpy(twin, id, CAS_HASH_LEN);
        twin[0] ^= (uint8_t)(0x80 | i);
        MDB_txn *txn;
        assert_int_equal(cas__txn_begin(f->s, false, &txn), 0);
        MDB_val k = { CAS_HASH_LEN, twin }, v = { recs[i].n, (void *)recs[i].p };
        assert_int_equal(mdb_put(txn, f->s->db_models, &k, &v, 0), 0);
        uint8_t loc[44] = { 0 }, chunk[CAS_HASH_LEN] = { 0x42 };
        memcpy(loc, twin, CAS_HASH_LEN);
        loc[40] = 1;
        MDB_val ck = { CAS_HASH_LEN, chunk }, cv = { sizeof(loc), loc };
        assert_int_equal(mdb_put(txn, f->s->db_chunks, &ck, &cv, 0), 0);
        assert_int_equal(cas__txn_commit(txn), 0);
        cas_model_info info;
        /* (The record of the last one is sound; only its manifest is not.) */
        assert_int_equal(cas_store_model_info(f->s, twin, &info), i < 3 ? -EBADMSG : 0);
        problems ps = { 0 };
        cas_store_verify_opts vo = { .problem = problem_cb, .userdata = &ps };
        assert_int_equal(cas_store_verify(f->s, twin, &vo), -EBADMSG);
        assert_int_equal(ps.n, 1);
        assert_int_equal(ps.first.chunk_index, CAS_STORE_NO_CHUNK);
        ps.n = 0;
        assert_int_equal(cas_store_verify(f->s, NULL, &vo), -EBADMSG);
        assert_int_equal(ps.n, 1);
        int nfd = open("/dev/null", O_WRONLY);
        assert_int_equal(cas_store_export_fd(f->s, twin, nfd, NULL, NULL, NULL), -EBADMSG);
        close(nfd);
        size_t n_listed = 0;
        assert_int_equal(cas_store_list(f->s, count_listed, &n_listed), 0);
        assert_int_equal(n_listed, i < 3 ? 1 : 2);
        /* rm repairs the index. */
        assert_int_equal(cas_store_rm(f->s, twin, 0), 0);
        assert_int_equal(cas_store_model_info(f->s, twin, &info), -ENOENT);
        assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
        cas_chunk_loc cl;
        assert_int_equal(cas_store_chunk_find(f->s, chunk, &cl), -ENOENT);
    }
}

/* A chunk that repeats inside a model is fetched once. */
static void
test_partial_repeats(void **state)
{
    fixture *f = *state;
    cas_chunker_params par = { 1024, 4096, 16384 };
    size_t len = 20 * 4096;
    uint8_t *b = random_bytes(len, 900);
    for (size_t i = 1; i < 20; i += 2)
        memcpy(b + i * 4096, b + 4096, 4096); /* odd pieces are equal */
    char *s2dir = path_in(f->dir, "store2");
    cas_store *s2;
    uint8_t id[CAS_HASH_LEN];
    cas_store_add_opts o = { .kind = CAS_CHUNKER_FIXED, .params = &par };
    cas_chunk_region reg = { 0, CAS_CHUNK_MODE_FIXED };
    o.regions = &reg;
    o.n_regions = 1;
    assert_int_equal(cas_store_open(s2dir, CAS_STORE_CREATE, &s2), 0);
    assert_int_equal(add_buf(s2, f->dir, b, len, &o, id), 1);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(cas_store_manifest_get(s2, id, &mb, &ml), 0);
    cas_store_free(s2);
    assert_int_equal(cas_store_partial_create(f->s, mb, ml, id), 1);
    free(mb);
    cas_partial *p;
    assert_int_equal(cas_partial_open(f->s, id, &p), 0);
    assert_int_equal(cas_partial_n_chunks(p), 20);
    assert_int_equal(cas_partial_put(p, 1, b + 4096, 4096), 1);
    uint64_t filled = 0;
    assert_int_equal(cas_partial_fill_local(p, &filled), 0);
    assert_int_equal(filled, 9);
    assert_int_equal(cas_partial_n_present(p), 10);
    for (uint64_t i = 0; i < 20; i += 2)
        assert_int_equal(cas_partial_put(p, i, b + i * 4096, 4096), 1);
    assert_int_equal(cas_partial_complete(p), 0);
    cas_partial_free(p);
    assert_export_equals(f->s, f->dir, id, b, len);
    free(s2dir);
    free(b);
}

typedef struct drain_arg {
    int fd;
    uint8_t *buf;
    size_t len;
} drain_arg;

static void *
pipe_reader(void *arg)
{
    drain_arg *a = arg;
    for (;;) {
        uint8_t tmp[65536];
        ssize_t n = read(a->fd, tmp, sizeof(tmp));
        if (n <= 0)
            break;
        a->buf = realloc(a->buf, a->len + (size_t)n);
        memcpy(a->buf + a->len, tmp, (size_t)n);
        a->len += (size_t)n;
    }
    return NULL;
}

/* Export to a pipe (in order) and to an O_APPEND file (no pwrite). */
static void
test_export_pipe_append(void **state)
{
    fixture *f = *state;
    size_t len = 10 * 1024 * 1024 + 5;
    uint8_t *b = random_bytes(len, 950);
    uint8_t id[CAS_HASH_LEN];
    assert_int_equal(add_buf(f->s, f->dir, b, len, NULL, id), 1);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    drain_arg a = { pfd[0], NULL, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pipe_reader, &a), 0);
    assert_int_equal(cas_store_export_fd(f->s, id, pfd[1], NULL, NULL, NULL), 0);
    close(pfd[1]);
    pthread_join(th, NULL);
    close(pfd[0]);
    assert_int_equal(a.len, len);
    assert_memory_equal(a.buf, b, len);
    free(a.buf);
    char *p = path_in(f->dir, "append.bin");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    assert_true(fd >= 0);
    assert_int_equal(cas_store_export_fd(f->s, id, fd, NULL, NULL, NULL), 0);
    close(fd);
    uint8_t *got;
    size_t got_len;
    assert_int_equal(tu_read_file(p, &got, &got_len), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, b, len);
    free(got);
    free(p);
    free(b);
}

/* The many-at-once hash agrees with cas_hash() around every block edge,
 * for any number of messages (lanes refilled as messages end). */
static void
test_hash_many(void **state)
{
    (void)state;
    static const size_t lens_tab[] = { 0,   1,   63,  64,  127,  128,  129,   255,   256,
                                       257, 383, 384, 385, 1000, 4096, 65536, 100003 };
    size_t nt = sizeof(lens_tab) / sizeof(lens_tab[0]);
    uint8_t *data = random_bytes(200000, 990);
    for (size_t n = 1; n <= 3 * nt; n++) {
        const uint8_t *bufs[3 * sizeof(lens_tab) / sizeof(lens_tab[0])];
        size_t lens[3 * sizeof(lens_tab) / sizeof(lens_tab[0])];
        uint8_t(*got)[CAS_HASH_LEN] = malloc(n * CAS_HASH_LEN);
        for (size_t i = 0; i < n; i++) {
            lens[i] = lens_tab[(i * 7 + n) % nt];
            bufs[i] = data + (i * 977) % 50000; /* unaligned starts */
        }
        cas__hash_many(bufs, lens, n, got);
        for (size_t i = 0; i < n; i++) {
            uint8_t want[CAS_HASH_LEN];
            cas_hash(bufs[i], lens[i], want);
            assert_memory_equal(got[i], want, CAS_HASH_LEN);
        }
        free(got);
    }
    free(data);
}

/* A full LMDB map grows (issue 9 item 10): an add whose index entries do
 * not fit the map it started with commits, and the store stays sound and
 * reopens with the same models. */
static void
test_map_full(void **state)
{
    fixture *f = *state;
    char *d = path_in(f->dir, "small");
    cas_store *s;
    cas__map_size = 512 * 1024;
    assert_int_equal(cas_store_open(d, CAS_STORE_CREATE, &s), 0);
    size_t len = 8 * 1024 * 1024;
    uint8_t *b = random_bytes(len, 1234);
    cas_chunker_params p = { 64, 256, 1024 }; /* ~32k chunks: a 1 MiB manifest */
    cas_store_add_opts o = { .params = &p };
    uint8_t id[CAS_HASH_LEN], small_id[CAS_HASH_LEN];
    assert_int_equal(add_buf(s, f->dir, b, 1000, NULL, small_id), 1);
    assert_int_equal(add_buf(s, f->dir, b, len, &o, id), 1);
    assert_int_equal(count_dir(d, "tmp"), 0);
    assert_int_equal(count_dir(d, "data"), 2);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    /* Removing it needs pages too; then a second big add fits again. */
    assert_int_equal(cas_store_rm(s, id, 0), 0);
    assert_int_equal(add_buf(s, f->dir, b, len, &o, id), 1);
    cas_store_free(s);
    /* Another process opening with the small size adopts the grown map. */
    assert_int_equal(cas_store_open(d, 0, &s), 0);
    cas__map_size = 0;
    cas_store_usage u;
    assert_int_equal(cas_store_usage_get(s, &u), 0);
    assert_int_equal(u.n_models, 2);
    assert_int_equal(cas_store_verify(s, NULL, NULL), 0);
    cas_store_free(s);
    tu_rm_rf(d);
    free(d);
    free(b);
}

static int
namerec_cb(void *userdata, const uint8_t *key, size_t key_len, uint64_t seq, const uint8_t *blob,
           size_t len)
{
    int *n = userdata;
    (*n)++;
    (void)key;
    (void)key_len;
    (void)seq;
    (void)blob;
    (void)len;
    return 0;
}

static void
test_namerecs(void **state)
{
    fixture *f = *state;
    const char key[] = "\x01\x02\x03\x04\x05\x06\x07\x08llama";
    size_t kl = sizeof(key) - 1;
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 5, "rec5", 4), 1);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 5, "rec5b", 5), 0); /* not newer */
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 3, "rec3", 4), 0);
    uint64_t seq;
    uint8_t *blob;
    size_t len;
    assert_int_equal(cas_store_namerec_get(f->s, key, kl, &seq, &blob, &len), 0);
    assert_int_equal(seq, 5);
    assert_int_equal(len, 4);
    assert_memory_equal(blob, "rec5", 4);
    free(blob);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 9, "rec9", 4), 1);
    assert_int_equal(cas_store_namerec_get(f->s, key, kl, &seq, &blob, &len), 0);
    assert_int_equal(seq, 9);
    free(blob);
    assert_int_equal(cas_store_namerec_put(f->s, "k2", 2, 1, "x", 1), 1);
    int n = 0;
    assert_int_equal(cas_store_namerec_list(f->s, namerec_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cas_store_namerec_del(f->s, "k2", 2), 0);
    assert_int_equal(cas_store_namerec_del(f->s, "k2", 2), -ENOENT);
    assert_int_equal(cas_store_namerec_get(f->s, "k2", 2, &seq, &blob, &len), -ENOENT);
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 10, "", 0), -EINVAL);
    uint8_t big[CAS_STORE_NAMEREC_MAX + 1] = { 0 };
    assert_int_equal(cas_store_namerec_put(f->s, key, kl, 10, big, sizeof(big)), -EMSGSIZE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_many),
        cmocka_unit_test_setup_teardown(test_roundtrip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_pipe_same_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_match_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_cancel_and_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigs_keys_peers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_cleanup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_pipe_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namerecs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
