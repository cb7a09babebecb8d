/* SPDX-License-Identifier: MIT */
/*
 * Dedup between two model files at the library level: cuts both files the
 * way `nvx add` does (auto: runtime's layout gives the tensor table, a CDC
 * region starts at 0 and at every tensor's first byte), and with plain CDC
 * and fixed 64 KiB pieces, then prints for each mode the fraction of the
 * second file's bytes that lie in chunks whose id also is a chunk id of the
 * first file. Built and run by bench-dedup.sh; not part of `meson test`.
 *
 * usage: bench-dedup A B   (prints "mode fraction chunksA chunksB" lines)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/chunker.h"
#include "libcas/hash.h"
#include "runtime/layout.h"

typedef struct file {
    uint8_t *buf;
    size_t len;
} file;

static int
read_all(const char *path, file *ret)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return -ENOMEM;
    *ret = (file){ buf, len };
    return 0;
}

/* Regions for `mode`: "auto" (tensor-aware when the layout parses), "cdc",
 * "fixed". Returns the count; *ret is malloc'd (or NULL). */
static size_t
make_regions(const char *mode, const file *f, cas_chunk_region **ret)
{
    *ret = NULL;
    if (strcmp(mode, "fixed") == 0) {
        *ret = malloc(sizeof(**ret));
        (*ret)[0] = (cas_chunk_region){ 0, CAS_CHUNK_MODE_FIXED };
        return 1;
    }
    if (strcmp(mode, "cdc") == 0)
        return 0;
    rt_layout l;
    uint64_t need = 0;
    if (rt_layout_parse(f->buf, f->len, f->len, &l, &need) < 0) {
        fprintf(stderr, "bench-dedup: no layout, auto = cdc\n");
        return 0;
    }
    cas_chunk_region *r = calloc(l.n_tensors + 1, sizeof(*r));
    uint64_t *offs = calloc(l.n_tensors + 1, sizeof(*offs));
    size_t n = 0;
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info t;
    while (rt_layout_next(&l, &it, &t) > 0)
        offs[n++] = t.offset;
    /* Tensor order in the table need not be offset order. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && offs[j - 1] > offs[j]; j--) {
            uint64_t x = offs[j];
            offs[j] = offs[j - 1];
            offs[j - 1] = x;
        }
    size_t k = 0;
    r[k++] = (cas_chunk_region){ 0, CAS_CHUNK_MODE_CDC };
    for (size_t i = 0; i < n; i++)
        if (offs[i] > r[k - 1].offset)
            r[k++] = (cas_chunk_region){ offs[i], CAS_CHUNK_MODE_CDC };
    free(offs);
    *ret = r;
    return k;
}

typedef struct chunks {
    uint8_t (*ids)[CAS_HASH_LEN];
    uint32_t *lens;
    size_t n;
} chunks;

static int
cut(const char *mode, const file *f, chunks *ret)
{
    cas_chunk_region *regions;
    size_t nr = make_regions(mode, f, &regions);
    int r = cas_chunker_split(NULL, regions, nr, f->buf, f->len, &ret->lens, &ret->n);
    free(regions);
    if (r < 0)
        return r;
    ret->ids = malloc((ret->n ? ret->n : 1) * CAS_HASH_LEN);
    if (!ret->ids)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < ret->n; i++) {
        cas_hash(f->buf + off, ret->lens[i], ret->ids[i]);
        off += ret->lens[i];
    }
    return 0;
}

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, CAS_HASH_LEN);
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench-dedup A B\n");
        return 2;
    }
    file a, b;
    if (read_all(argv[1], &a) < 0 || read_all(argv[2], &b) < 0) {
        fprintf(stderr, "bench-dedup: cannot read input files\n");
        return 1;
    }
    static const char *modes[] = { "auto", "cdc", "fixed" };
    for (size_t m = 0; m < 3; m++) {
        chunks ca = { 0 }, cb = { 0 };
        if (cut(modes[m], &a, &ca) < 0 || cut(modes[m], &b, &cb) < 0) {
            fprintf(stderr, "bench-dedup: chunking failed\n");
            return 1;
        }
        qsort(ca.ids, ca.n, CAS_HASH_LEN, cmp_id);
        uint64_t found = 0;
        for (size_t i = 0; i < cb.n; i++)
            if (bsearch(cb.ids[i], ca.ids, ca.n, CAS_HASH_LEN, cmp_id))
                found += cb.lens[i];
        printf("%s %.6f %zu %zu\n", modes[m], b.len ? (double)found / (double)b.len : 1.0, ca.n,
               cb.n);
        free(ca.ids);
        free(ca.lens);
        free(cb.ids);
        free(cb.lens);
    }
    free(a.buf);
    free(b.buf);
    return 0;
}
