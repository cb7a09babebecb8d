/* SPDX-License-Identifier: MIT */
/*
 * Model contents for ls and info (cli/modeldesc.h): the data file's header
 * read through runtime/layout.h, summed up.
 */
#include "cli/modeldesc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libcas/store.h"
#include "runtime/layout.h"

enum {
    FIRST_READ = 64 * 1024, /* most headers but big vocabularies fit */
};

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Reads [have, want) of fd into *buf (grown to want). */
static int
read_more(int fd, uint8_t **buf, size_t have, size_t want)
{
    uint8_t *nb = realloc(*buf, want);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    while (have < want) {
        ssize_t n = pread(fd, nb + have, want - have, (off_t)have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EBADMSG; /* the file shrank under us: not a complete model */
        have += (size_t)n;
    }
    return 0;
}

/* Architecture names come from the file: keep printable ASCII only, so that
 * a hostile string cannot move the terminal's cursor. */
static void
copy_arch(char dst[static CLI_MODELDESC_ARCH_MAX + 1], const char *s, uint64_t len)
{
    size_t n = len > CLI_MODELDESC_ARCH_MAX ? CLI_MODELDESC_ARCH_MAX : (size_t)len;
    for (size_t i = 0; i < n; i++)
        dst[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
    dst[n] = '\0';
}

static void
gguf_meta(const rt_gguf *g, cli_modeldesc *d)
{
    const char *arch;
    uint64_t len;
    if (rt_gguf_get_str(g, "general.architecture", &arch, &len) == 0) {
        copy_arch(d->arch, arch, len);
        /* "<arch>.context_length" with the name as the file spells it. */
        char key[CLI_MODELDESC_ARCH_MAX + 32];
        if (len <= CLI_MODELDESC_ARCH_MAX) {
            snprintf(key, sizeof(key), "%.*s.context_length", (int)len, arch);
            rt_gguf_value v;
            /* Integer types only: v.i is defined for them (and holds an
             * unsigned value when it fits). */
            bool integer = false;
            if (memchr(arch, '\0', (size_t)len) == NULL && rt_gguf_get(g, key, &v) == 0)
                integer = v.type <= RT_GGUF_I32 || v.type == RT_GGUF_U64 || v.type == RT_GGUF_I64;
            if (integer && v.i > 0)
                d->ctx_len = (uint64_t)v.i;
        }
    }
}

static void
count_type(cli_modeldesc *d, uint32_t type, uint64_t elems)
{
    for (size_t i = 0; i < d->n_types; i++) {
        if (d->types[i].type == type) {
            d->types[i].count++;
            d->types[i].params = sat_add(d->types[i].params, elems);
            return;
        }
    }
    if (d->n_types == CLI_MODELDESC_TYPES_MAX) {
        d->other_count++;
        return;
    }
    d->types[d->n_types++] = (cli_modeldesc_type){ type, 1, elems };
}

static int
cmp_type(const void *a, const void *b)
{
    const cli_modeldesc_type *x = a, *y = b;
    if (x->params != y->params)
        return x->params > y->params ? -1 : 1;
    return x->type < y->type ? -1 : x->type > y->type;
}

static void
summarise(const rt_layout *l, cli_modeldesc *d)
{
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info t;
    while (rt_layout_next(l, &it, &t) > 0) {
        uint64_t elems = 1;
        for (uint32_t k = 0; k < t.n_dims; k++)
            elems = sat_mul(elems, t.dims[k]);
        d->n_params = sat_add(d->n_params, elems);
        d->n_tensors++;
        count_type(d, t.type, elems);
    }
    qsort(d->types, d->n_types, sizeof(d->types[0]), cmp_type);
    if (l->format == RT_FORMAT_GGUF) {
        d->format = "gguf";
        gguf_meta(&l->u.gguf, d);
    } else {
        /* A llama2.c checkpoint has no metadata: its header is the llama
         * shape, and seq_len is the context it was trained for. */
        d->format = "llama2c";
        snprintf(d->arch, sizeof(d->arch), "llama");
        d->ctx_len = l->u.l2c.seq_len > 0 ? (uint64_t)l->u.l2c.seq_len : 0;
    }
    d->known = true;
}

static int
describe_fd(int fd, cli_modeldesc *d)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size;
    size_t have = size < FIRST_READ ? (size_t)size : FIRST_READ;
    uint8_t *buf = NULL;
    int r = read_more(fd, &buf, 0, have ? have : 1);
    for (; r == 0;) {
        rt_layout l;
        uint64_t need = 0;
        r = rt_layout_parse(buf, have, size, &l, &need);
        if (r == 0) {
            summarise(&l, d);
            break;
        }
        if (r != -EAGAIN)
            break;
        if (need <= have || need > CLI_MODELDESC_HEADER_MAX || need > size) {
            r = -EBADMSG;
            break;
        }
        /* Grow geometrically: need is a lower bound, and every round re-parses. */
        uint64_t want = need < (uint64_t)have * 2 ? (uint64_t)have * 2 : need;
        if (want > size)
            want = size;
        if (want > CLI_MODELDESC_HEADER_MAX)
            want = CLI_MODELDESC_HEADER_MAX;
        r = read_more(fd, &buf, have, (size_t)want);
        have = (size_t)want;
    }
    free(buf);
    return r;
}

int
cli_modeldesc_get(cas_store *s, const uint8_t id[static CAS_HASH_LEN], cli_modeldesc *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->format = "";
    char *path = NULL;
    int r = cas_store_data_path(s, id, &path);
    if (r < 0)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -errno;
    cli_modeldesc d = { .format = "" };
    r = describe_fd(fd, &d);
    close(fd);
    if (r == 0)
        *ret = d;
    return r;
}

const char *
cli_modeldesc_quant(const cli_modeldesc *d)
{
    return d->known && d->n_types > 0 ? rt_type_name(d->types[0].type) : "-";
}

static void
kv_str_or_null(cli_json *j, const char *key, const char *v)
{
    cli_json_key(j, key);
    if (v)
        cli_json_str(j, v);
    else
        cli_json_null(j);
}

static void
kv_u64_or_null(cli_json *j, const char *key, bool known, uint64_t v)
{
    cli_json_key(j, key);
    if (known)
        cli_json_u64(j, v);
    else
        cli_json_null(j);
}

void
cli_modeldesc_json(cli_json *j, const cli_modeldesc *d)
{
    kv_str_or_null(j, "format", d->known ? d->format : NULL);
    kv_str_or_null(j, "architecture", d->known && d->arch[0] ? d->arch : NULL);
    kv_u64_or_null(j, "parameters", d->known, d->n_params);
    kv_u64_or_null(j, "context_length", d->ctx_len > 0, d->ctx_len);
    kv_str_or_null(j, "quantization", d->known && d->n_types ? cli_modeldesc_quant(d) : NULL);
    cli_json_key(j, "tensor_types");
    cli_json_obj_begin(j);
    for (size_t i = 0; i < d->n_types; i++)
        cli_json_kv_u64(j, rt_type_name(d->types[i].type), d->types[i].count);
    if (d->other_count)
        cli_json_kv_u64(j, "other", d->other_count);
    cli_json_obj_end(j);
}

const char *
cli_modeldesc_fmt_count(uint64_t n, char buf[static 16])
{
    static const char unit[] = { 'K', 'M', 'B', 'T' };
    if (n < 1000) {
        snprintf(buf, 16, "%llu", (unsigned long long)n);
        return buf;
    }
    double v = (double)n;
    size_t u = 0;
    for (v /= 1000; v >= 999.95 && u + 1 < sizeof(unit); u++)
        v /= 1000;
    snprintf(buf, 16, v < 10 ? "%.1f%c" : "%.0f%c", v, unit[u]);
    return buf;
}
