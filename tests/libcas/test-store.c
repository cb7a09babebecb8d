/* SPDX-License-Identifier: MIT */
/*
 * Store tests on real LMDB environments in temp directories: round trips of
 * every size, adding from a pipe, cancel and options, chunk lookup across
 * models, the chunk split, export to a pipe, the many-at-once hash and one
 * handle shared by threads. Partial models are in test-store-partial.c;
 * pins, gc, names, signatures, keys and peers in test-store-meta.c;
 * corruption, non-stores and full disks in test-store-damage.c. The fixture
 * is in storeutil.c.
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
#include "storeutil.h"
#include "testutil.h"

static void
test_roundtrip_sizes(void **state)
{
    su_fixture *f = *state;
    /* 0, 1 byte, a few chunks, and more than two 4 MiB ring slots. */
    static const size_t sizes[] = { 0, 1, 300000, 9 * 1024 * 1024 + 17 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *b = su_random_bytes(sizes[i], 100 + i);
        uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN];
        assert_int_equal(su_add_buf(f->s, f->dir, b, sizes[i], NULL, id), 1);
        su_assert_export_equals(f->s, f->dir, id, b, sizes[i]);
        /* Adding the same bytes again finds the model. */
        assert_int_equal(su_add_buf(f->s, f->dir, b, sizes[i], NULL, id2), 0);
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
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
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
    su_fixture *f = *state;
    size_t len = 5 * 1024 * 1024 + 3;
    uint8_t *b = su_random_bytes(len, 7);
    uint8_t id[CAS_HASH_LEN], id2[CAS_HASH_LEN];
    uint64_t last = 0;
    cas_store_add_opts o = { .progress = count_progress, .userdata = &last, .threads = 3 };
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, &o, id), 1);
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
    su_fixture *f = *state;
    size_t len = 40 * 1024 * 1024;
    uint8_t *b = su_random_bytes(len, 8);
    uint8_t id[CAS_HASH_LEN];
    cas_store_add_opts o = { .progress = cancel_progress };
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, &o, id), -ECANCELED);
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(su_count_dir(f->sdir, "data"), 0);

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
    assert_int_equal(su_add_buf(f->s, f->dir, b, 300000, &o2, id), 1);
    cas_manifest *m = su_manifest_of(f->s, id);
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
    su_assert_export_equals(f->s, f->dir, id, b, 300000);
    free(b);
}

typedef struct tap_state {
    cas_hasher h; /* a digest of every byte the tap saw, in order */
    uint64_t bytes;
    int ends;
    int verdict; /* returned by the end call */
} tap_state;

static int
tap_fn(void *arg, const void *buf, size_t len)
{
    tap_state *t = arg;
    if (!buf) {
        t->ends++;
        return t->verdict;
    }
    cas_hasher_update(&t->h, buf, len);
    t->bytes += len;
    return 0;
}

/* The tap sees the whole stream once in order, the caller's prefix
 * included, and a refusal at its end call keeps the model out of the store,
 * also when the same bytes were stored before (then nothing changes). */
static void
test_add_tap(void **state)
{
    su_fixture *f = *state;
    size_t len = 9 * 1024 * 1024 + 5;
    uint8_t *b = su_random_bytes(len, 11);
    uint8_t want[CAS_HASH_LEN], got[CAS_HASH_LEN], id[CAS_HASH_LEN];
    cas_hash(b, len, want);

    tap_state t = { .verdict = -EBADMSG };
    cas_hasher_init(&t.h);
    cas_store_add_opts o = { .tap = tap_fn, .tap_arg = &t, .name = "tapped" };
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, &o, id), -EBADMSG);
    assert_int_equal(t.ends, 1);
    assert_int_equal(t.bytes, len);
    cas_hasher_final(&t.h, got);
    assert_memory_equal(got, want, CAS_HASH_LEN);
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
    assert_int_equal(su_count_dir(f->sdir, "data"), 0);
    assert_int_equal(cas_store_name_get(f->s, "tapped", id), -ENOENT);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    size_t plen = 1000;
    pipe_arg a = { pfd[1], b + plen, len - plen };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pipe_writer, &a), 0);
    t = (tap_state){ .verdict = 0 };
    cas_hasher_init(&t.h);
    o.prefix = b;
    o.prefix_len = plen;
    assert_int_equal(cas_store_add_fd(f->s, pfd[0], &o, id), 1);
    pthread_join(th, NULL);
    close(pfd[0]);
    assert_int_equal(t.ends, 1);
    assert_int_equal(t.bytes, len);
    cas_hasher_final(&t.h, got);
    assert_memory_equal(got, want, CAS_HASH_LEN);

    t = (tap_state){ .verdict = -EBADMSG };
    cas_hasher_init(&t.h);
    cas_store_add_opts o2 = { .tap = tap_fn, .tap_arg = &t, .pin = true, .name = "other" };
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, &o2, id), -EBADMSG);
    cas_model_info info;
    assert_int_equal(cas_store_model_info(f->s, id, &info), 0);
    assert_false(info.pinned);
    assert_int_equal(cas_store_name_get(f->s, "other", got), -ENOENT);
    assert_int_equal(su_count_dir(f->sdir, "tmp"), 0);
    free(b);
}

static void
test_shared_models(void **state)
{
    su_fixture *f = *state;
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
        su_assert_export_equals(f->s, f->dir, id, b, len);
        free(b);
        free(p);
    }
    if (!found)
        skip();
    assert_int_equal(cas_store_verify(f->s, NULL, NULL), 0);
}

static void
test_chunk_lookup(void **state)
{
    su_fixture *f = *state;
    size_t len = 2 * 1024 * 1024;
    uint8_t *a = su_random_bytes(len, 11);
    uint8_t *b = su_random_bytes(len, 12);
    memcpy(b, a, len / 2); /* B shares its first half with A */
    uint8_t ida[CAS_HASH_LEN], idb[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, a, len, NULL, ida), 1);
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, idb), 1);
    cas_manifest *ma = su_manifest_of(f->s, ida), *mb = su_manifest_of(f->s, idb);
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
    su_flip_byte(dpa, 100);
    cas_chunk_info first;
    assert_int_equal(cas_manifest_chunk(mb, 0, &first), 0);
    assert_int_equal(cas_store_chunk_read(f->s, first.id, buf, CAS_CHUNK_MAX_DEFAULT), first.len);
    assert_memory_equal(buf, b, first.len);
    su_flip_byte(dpa, 100);
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
    assert_int_equal(su_count_dir(f->sdir, "data"), 1);
    cas_manifest_free(ma);
    cas_manifest_free(mb);
    free(buf);
    free(a);
    free(b);
}

typedef struct thread_arg {
    su_fixture *f;
    int k;
    int r;
} thread_arg;

/* One thread: add its own file, verify everything, list, export. */
static void *
store_thread(void *arg)
{
    thread_arg *a = arg;
    size_t len = 3 * 1024 * 1024 + (size_t)a->k * 1000;
    uint8_t *b = su_random_bytes(len, 500 + (uint64_t)a->k);
    char name[32];
    snprintf(name, sizeof(name), "t%d.bin", a->k);
    char *p = su_path_in(a->f->dir, name);
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
    su_fixture *f = *state;
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

/* The pipeline cuts and hashes exactly as the chunker on a whole buffer,
 * across ring-slot boundaries and forced cuts (one right at a slot edge). */
static void
test_chunks_match_split(void **state)
{
    su_fixture *f = *state;
    size_t len = 9 * 1024 * 1024 + 4321;
    uint8_t *b = su_random_bytes(len, 700);
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
        assert_true(su_add_buf(f->s, f->dir, b, len, &o, id) >= 0);
        cas_manifest *m = su_manifest_of(f->s, id);
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
    su_fixture *f = *state;
    size_t len = 10 * 1024 * 1024 + 5;
    uint8_t *b = su_random_bytes(len, 950);
    uint8_t id[CAS_HASH_LEN];
    assert_int_equal(su_add_buf(f->s, f->dir, b, len, NULL, id), 1);
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
    char *p = su_path_in(f->dir, "append.bin");
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
    uint8_t *data = su_random_bytes(200000, 990);
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

/* The same through pread, the path verify and export take where the data
 * file cannot be mapped (store-io.c). */
static void
test_export_pipe_append_pread(void **state)
{
    cas__io_no_map = true;
    test_export_pipe_append(state);
    cas__io_no_map = false;
}

/* The same through pread, the path verify and export take where the data
 * file cannot be mapped (store-io.c). */
static void
test_roundtrip_sizes_pread(void **state)
{
    cas__io_no_map = true;
    test_roundtrip_sizes(state);
    cas__io_no_map = false;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_many),
        cmocka_unit_test_setup_teardown(test_roundtrip_sizes, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_sizes_pread, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_add_pipe_same_id, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_match_split, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_add_cancel_and_options, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_add_tap, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_shared_models, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_chunk_lookup, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_handle, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_export_pipe_append, su_setup, su_teardown),
        cmocka_unit_test_setup_teardown(test_export_pipe_append_pread, su_setup, su_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
