/* SPDX-License-Identifier: MIT */
#include "cli/chunkplan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/layout.h"

const char *const cli_chunker_mode_names[] = { "auto", "cdc", "gguf", "llama2c", "fixed", NULL };

/* One fixed-size region from offset 0 makes the whole file fixed-split. */
static cas_chunk_region fixed_region = { 0, CAS_CHUNK_MODE_FIXED };

void
cli_chunk_plan_plain(cli_chunker_mode mode, cli_chunk_plan *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->format = "raw";
    ret->kind = CAS_CHUNKER_CDC;
    if (mode == CLI_CHUNKER_FIXED) {
        ret->kind = CAS_CHUNKER_FIXED;
        ret->regions = &fixed_region;
        ret->n_regions = 1;
    }
}

void
cli_chunk_plan_free(cli_chunk_plan *p)
{
    if (!p)
        return;
    if (p->regions != &fixed_region)
        free(p->regions);
    free(p->tensors);
    free(p->names);
    memset(p, 0, sizeof(*p));
}

static int
cmp_tensor(const void *a, const void *b)
{
    const cas_tensor_info *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Copies the layout's tensor table into p->tensors (sorted by offset) and
 * checks that tensors do not overlap: the manifest would refuse it later
 * with a less helpful error. */
static int
copy_tensors(const rt_layout *l, cli_chunk_plan *p, char *why, size_t why_cap)
{
    if (l->n_tensors > CAS_MANIFEST_TENSORS_MAX) {
        snprintf(why, why_cap, "%llu tensors, more than the %d a manifest holds",
                 (unsigned long long)l->n_tensors, CAS_MANIFEST_TENSORS_MAX);
        return -EMSGSIZE;
    }
    size_t n = (size_t)l->n_tensors;
    p->tensors = calloc(n ? n : 1, sizeof(*p->tensors));
    p->names = calloc(n ? n : 1, RT_TENSOR_NAME_MAX + 1);
    if (!p->tensors || !p->names)
        return -ENOMEM;
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info t;
    size_t i = 0;
    int r;
    while (i < n && (r = rt_layout_next(l, &it, &t)) > 0) {
        cas_tensor_info *c = &p->tensors[i];
        char *name = p->names + i * (RT_TENSOR_NAME_MAX + 1);
        memcpy(name, t.name, RT_TENSOR_NAME_MAX + 1);
        name[RT_TENSOR_NAME_MAX] = '\0';
        c->name = name;
        c->type = (uint32_t)t.type;
        c->n_dims = t.n_dims;
        for (uint32_t d = 0; d < t.n_dims && d < CAS_TENSOR_DIMS_MAX; d++)
            c->dims[d] = t.dims[d];
        c->offset = t.offset;
        c->size = t.size;
        i++;
    }
    if (i != n) {
        snprintf(why, why_cap, "the tensor table ended early");
        return -EBADMSG;
    }
    qsort(p->tensors, n, sizeof(*p->tensors), cmp_tensor);
    for (size_t k = 1; k < n; k++) {
        const cas_tensor_info *a = &p->tensors[k - 1], *b = &p->tensors[k];
        if (b->offset < a->offset + a->size) {
            snprintf(why, why_cap, "tensors %.64s and %.64s overlap", a->name, b->name);
            return -EBADMSG;
        }
    }
    p->n_tensors = n;
    return 0;
}

/* Regions: CDC from 0 (header), then one CDC region per tensor start. */
static int
make_regions(cli_chunk_plan *p)
{
    p->regions = calloc(p->n_tensors + 1, sizeof(*p->regions));
    if (!p->regions)
        return -ENOMEM;
    size_t n = 0;
    p->regions[n++] = (cas_chunk_region){ 0, CAS_CHUNK_MODE_CDC };
    for (size_t i = 0; i < p->n_tensors; i++) {
        uint64_t off = p->tensors[i].offset;
        if (off > p->regions[n - 1].offset)
            p->regions[n++] = (cas_chunk_region){ off, CAS_CHUNK_MODE_CDC };
    }
    p->n_regions = n;
    return 0;
}

int
cli_chunk_plan_from_buf(const void *buf, size_t len, uint64_t file_size, cli_chunker_mode mode,
                        cli_chunk_plan *ret, uint64_t *ret_need, char *why, size_t why_cap)
{
    if (why_cap)
        why[0] = '\0';
    if (mode == CLI_CHUNKER_CDC || mode == CLI_CHUNKER_FIXED) {
        cli_chunk_plan_plain(mode, ret);
        return 0;
    }
    rt_format f = rt_layout_detect(buf, len, file_size);
    if (mode == CLI_CHUNKER_AUTO && f == RT_FORMAT_UNKNOWN) {
        cli_chunk_plan_plain(CLI_CHUNKER_CDC, ret);
        return 0;
    }
    rt_format want = mode == CLI_CHUNKER_GGUF      ? RT_FORMAT_GGUF
                     : mode == CLI_CHUNKER_LLAMA2C ? RT_FORMAT_LLAMA2C
                                                   : f;
    if (f != want) {
        /* llama2.c checkpoints have no magic: they are recognised by a
         * header whose implied size is the file size, so a truncated one
         * looks like any other file. Say so. */
        snprintf(why, why_cap, "%s",
                 want == RT_FORMAT_GGUF ? "not a GGUF file"
                                        : "not a llama2.c checkpoint (its header must describe "
                                          "exactly the file's size; truncated?)");
        return -EBADMSG;
    }
    rt_layout l;
    uint64_t need = 0;
    int r = rt_layout_parse(buf, len, file_size, &l, &need);
    if (r == -EAGAIN) {
        *ret_need = need;
        return r;
    }
    if (r < 0 || l.format != want) {
        snprintf(why, why_cap, "malformed %s file",
                 want == RT_FORMAT_GGUF ? "GGUF" : "llama2.c checkpoint");
        return r < 0 && r != -EINVAL ? r : -EBADMSG;
    }
    cli_chunk_plan p = { 0 };
    p.kind = want == RT_FORMAT_GGUF ? CAS_CHUNKER_GGUF : CAS_CHUNKER_LLAMA2C;
    p.format = want == RT_FORMAT_GGUF ? "gguf" : "llama2c";
    r = copy_tensors(&l, &p, why, why_cap);
    if (r >= 0)
        r = make_regions(&p);
    if (r < 0) {
        cli_chunk_plan_free(&p);
        return r;
    }
    *ret = p;
    return 0;
}

/* Reads up to want bytes of the file's prefix into *buf (grown). */
static int
read_prefix(int fd, uint8_t **buf, size_t *have, size_t want)
{
    uint8_t *nb = realloc(*buf, want ? want : 1);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    while (*have < want) {
        ssize_t n = pread(fd, nb + *have, want - *have, (off_t)*have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the file shrank while we read it */
        *have += (size_t)n;
    }
    return 0;
}

int
cli_chunk_plan_make(int fd, uint64_t size, cli_chunker_mode mode, cli_chunk_plan *ret, char *why,
                    size_t why_cap)
{
    uint8_t *buf = NULL;
    size_t have = 0;
    size_t want = size < CLI_PLAN_PREFIX_FIRST ? (size_t)size : CLI_PLAN_PREFIX_FIRST;
    int r;
    for (;;) {
        r = read_prefix(fd, &buf, &have, want);
        if (r < 0)
            break;
        uint64_t need = 0;
        r = cli_chunk_plan_from_buf(buf, have, size, mode, ret, &need, why, why_cap);
        if (r != -EAGAIN)
            break;
        if (need <= have || need > size) {
            snprintf(why, why_cap, "inconsistent header sizes");
            r = -EBADMSG;
            break;
        }
        if (need > CLI_PLAN_PREFIX_MAX) {
            snprintf(why, why_cap, "header and metadata over %d MiB", CLI_PLAN_PREFIX_MAX >> 20);
            r = -EMSGSIZE;
            break;
        }
        /* Grow geometrically so a parser that asks for a little more each
         * time still reads the prefix in few steps. */
        uint64_t next = need > 2 * (uint64_t)have ? need : 2 * (uint64_t)have;
        if (next > CLI_PLAN_PREFIX_MAX)
            next = CLI_PLAN_PREFIX_MAX;
        want = (size_t)(next < size ? next : size);
    }
    free(buf);
    return r;
}

/* Reads up to cap bytes of fd into buf; *ret_eof tells whether it ended. */
static int
read_stream(int fd, uint8_t *buf, size_t cap, size_t *ret_len, bool *ret_eof)
{
    size_t have = 0;
    *ret_eof = false;
    while (have < cap) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            *ret_eof = true;
            break;
        }
        have += (size_t)n;
    }
    *ret_len = have;
    return 0;
}

int
cli_chunk_plan_stream(int fd, cli_chunker_mode mode, cli_chunk_plan *ret, uint8_t **ret_prefix,
                      size_t *ret_prefix_len, char *why, size_t why_cap)
{
    static const uint8_t gguf_magic[4] = { 'G', 'G', 'U', 'F' };
    if (why_cap)
        why[0] = '\0';
    *ret_prefix = NULL;
    *ret_prefix_len = 0;
    if (mode == CLI_CHUNKER_CDC || mode == CLI_CHUNKER_FIXED) {
        cli_chunk_plan_plain(mode, ret);
        return 0;
    }
    uint8_t *buf = malloc(CLI_PLAN_STREAM_MAX); /* pages are touched only as filled */
    if (!buf)
        return -ENOMEM;
    size_t have = 0;
    bool eof = false;
    int r = read_stream(fd, buf, CLI_PLAN_STREAM_MAX, &have, &eof);
    if (r < 0)
        goto fail;
    bool gguf = have >= sizeof(gguf_magic) && memcmp(buf, gguf_magic, sizeof(gguf_magic)) == 0;
    uint64_t need = 0;
    if (!eof && mode == CLI_CHUNKER_AUTO && !gguf) {
        cli_chunk_plan_plain(CLI_CHUNKER_CDC, ret);
    } else if (!eof && mode == CLI_CHUNKER_LLAMA2C) {
        snprintf(why, why_cap,
                 "a llama2.c checkpoint is recognised by its size, and a pipe "
                 "over %d MiB has none yet",
                 CLI_PLAN_STREAM_MAX >> 20);
        r = -EMSGSIZE;
        goto fail;
    } else {
        /* The size of a stream that goes on is not known: the largest
         * possible, so that only the header is checked now (libcas checks
         * the tensor map against the real size when the add ends). */
        r = cli_chunk_plan_from_buf(buf, have, eof ? have : UINT64_MAX, mode, ret, &need, why,
                                    why_cap);
        if (r == -EAGAIN) {
            snprintf(why, why_cap, "header and metadata over %d MiB in a pipe",
                     CLI_PLAN_STREAM_MAX >> 20);
            r = -EMSGSIZE;
        }
        if (r < 0)
            goto fail;
    }
    *ret_prefix = buf;
    *ret_prefix_len = have;
    return 0;
fail:
    free(buf);
    return r;
}
