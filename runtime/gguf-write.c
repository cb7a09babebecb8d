/* SPDX-License-Identifier: MIT */
/*
 * GGUF v3 writer; see gguf-write.h for the layout. Metadata is encoded into
 * one growing byte buffer as it is added, so writing is a straight copy;
 * tensor offsets are assigned at write time in the order tensors were added.
 */
#include "runtime/gguf-write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

enum {
    W_MAX_TENSORS = 1 << 20,
    W_BUF = 64 * 1024,
};

typedef struct wtensor {
    char name[RT_TENSOR_NAME_MAX + 1];
    rt_type type;
    uint32_t n_dims;
    uint64_t dims[RT_TENSOR_DIMS_MAX];
    const void *data;
    uint64_t size;
} wtensor;

struct rt_gguf_writer {
    uint32_t alignment;
    bool has_alignment_kv;
    uint8_t *meta; /* encoded KVs */
    size_t meta_len, meta_cap;
    uint64_t n_kv;
    size_t *key_off; /* offset of each key's u64 length in meta */
    size_t key_cap;
    wtensor *tensors;
    size_t n_tensors, tensors_cap;
};

int
rt_gguf_writer_new(uint32_t alignment, rt_gguf_writer **ret)
{
    if (!ret)
        return -EINVAL;
    if (alignment == 0)
        alignment = RT_GGUF_DEFAULT_ALIGNMENT;
    if (alignment < 8 || alignment > RT_GGUF_MAX_ALIGNMENT || (alignment & (alignment - 1)))
        return -EINVAL;
    rt_gguf_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->alignment = alignment;
    *ret = w;
    return 0;
}

void
rt_gguf_writer_free(rt_gguf_writer *w)
{
    if (!w)
        return;
    free(w->meta);
    free(w->key_off);
    free(w->tensors);
    free(w);
}

static int
meta_reserve(rt_gguf_writer *w, size_t n)
{
    if (w->meta_cap - w->meta_len >= n)
        return 0;
    size_t cap = w->meta_cap ? w->meta_cap : 4096;
    while (cap - w->meta_len < n) {
        if (cap > SIZE_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    uint8_t *m = realloc(w->meta, cap);
    if (!m)
        return -ENOMEM;
    w->meta = m;
    w->meta_cap = cap;
    return 0;
}

/* The put_* helpers write into reserved space. */
static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int
meta_append(rt_gguf_writer *w, const void *p, size_t n)
{
    int r = meta_reserve(w, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(w->meta + w->meta_len, p, n);
    w->meta_len += n;
    return 0;
}

static int
meta_u32(rt_gguf_writer *w, uint32_t v)
{
    uint8_t b[4];
    put_u32(b, v);
    return meta_append(w, b, 4);
}

static int
meta_u64(rt_gguf_writer *w, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    return meta_append(w, b, 8);
}

static int
meta_str(rt_gguf_writer *w, const char *s, size_t n)
{
    int r = meta_u64(w, n);
    return r < 0 ? r : meta_append(w, s, n);
}

/* Checks the key and starts a KV: key string and value type. On failure
 * the metadata buffer is left as it was (callers roll back on later
 * failures with kv_abort). */
static int
kv_begin(rt_gguf_writer *w, const char *key, rt_gguf_vtype type, size_t *ret_mark)
{
    if (!w || !key)
        return -EINVAL;
    size_t kn = strlen(key);
    if (kn == 0 || kn > RT_GGUF_MAX_KEY)
        return -EINVAL;
    for (size_t i = 0; i < kn; i++)
        if ((uint8_t)key[i] < 0x21 || (uint8_t)key[i] > 0x7E)
            return -EINVAL;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        const uint8_t *k = w->meta + w->key_off[i];
        if (get_u64(k) == kn && memcmp(k + 8, key, kn) == 0)
            return -EINVAL;
    }
    if (w->n_kv == w->key_cap) {
        size_t cap = w->key_cap ? 2 * w->key_cap : 32;
        size_t *ko = realloc(w->key_off, cap * sizeof(*ko));
        if (!ko)
            return -ENOMEM;
        w->key_off = ko;
        w->key_cap = cap;
    }
    size_t mark = w->meta_len;
    int r = meta_str(w, key, kn);
    if (r >= 0)
        r = meta_u32(w, (uint32_t)type);
    if (r < 0) {
        w->meta_len = mark;
        return r;
    }
    *ret_mark = mark;
    return 0;
}

static int
kv_end(rt_gguf_writer *w, size_t mark, int r)
{
    if (r < 0) {
        w->meta_len = mark;
        return r;
    }
    w->key_off[w->n_kv++] = mark;
    return 0;
}

static int
add_scalar(rt_gguf_writer *w, const char *key, rt_gguf_vtype type, uint64_t bits, size_t n)
{
    size_t mark;
    int r = kv_begin(w, key, type, &mark);
    if (r < 0)
        return r;
    uint8_t b[8];
    put_u64(b, bits);
    return kv_end(w, mark, meta_append(w, b, n));
}

int
rt_gguf_writer_add_u32(rt_gguf_writer *w, const char *key, uint32_t v)
{
    bool is_align = key && strcmp(key, "general.alignment") == 0;
    if (is_align && (!w || v != w->alignment))
        return -EINVAL;
    int r = add_scalar(w, key, RT_GGUF_U32, v, 4);
    if (r >= 0 && is_align)
        w->has_alignment_kv = true;
    return r;
}

int
rt_gguf_writer_add_i32(rt_gguf_writer *w, const char *key, int32_t v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return -EINVAL;
    return add_scalar(w, key, RT_GGUF_I32, (uint32_t)v, 4);
}

int
rt_gguf_writer_add_u64(rt_gguf_writer *w, const char *key, uint64_t v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return -EINVAL;
    return add_scalar(w, key, RT_GGUF_U64, v, 8);
}

int
rt_gguf_writer_add_f32(rt_gguf_writer *w, const char *key, float v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return -EINVAL;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return add_scalar(w, key, RT_GGUF_F32, bits, 4);
}

int
rt_gguf_writer_add_bool(rt_gguf_writer *w, const char *key, bool v)
{
    if (key && strcmp(key, "general.alignment") == 0)
        return -EINVAL;
    return add_scalar(w, key, RT_GGUF_BOOL, v ? 1 : 0, 1);
}

int
rt_gguf_writer_add_str(rt_gguf_writer *w, const char *key, const char *s, size_t len)
{
    if ((!s && len) || len > RT_GGUF_MAX_STRING || (key && strcmp(key, "general.alignment") == 0))
        return -EINVAL;
    size_t mark;
    int r = kv_begin(w, key, RT_GGUF_STRING, &mark);
    if (r < 0)
        return r;
    return kv_end(w, mark, meta_str(w, s, len));
}

/* Appends count elements of es bytes each, converting host order to
 * little-endian element by element. */
static int
meta_elems(rt_gguf_writer *w, const void *elems, uint64_t count, size_t es, bool is_bool)
{
    if (count > SIZE_MAX / es)
        return -ENOMEM;
    int r = meta_reserve(w, (size_t)count * es);
    if (r < 0)
        return r;
    const uint8_t *src = elems;
    for (uint64_t i = 0; i < count; i++, src += es) {
        uint64_t v = 0;
        switch (es) {
        case 1:
            v = *src;
            if (is_bool && v > 1)
                return -EINVAL;
            break;
        case 2: {
            uint16_t x;
            memcpy(&x, src, 2);
            v = x;
            break;
        }
        case 4: {
            uint32_t x;
            memcpy(&x, src, 4);
            v = x;
            break;
        }
        default:
            memcpy(&v, src, 8);
            break;
        }
        uint8_t *d = w->meta + w->meta_len;
        for (size_t k = 0; k < es; k++)
            d[k] = (uint8_t)(v >> (8 * k));
        w->meta_len += es;
    }
    return 0;
}

int
rt_gguf_writer_add_arr(rt_gguf_writer *w, const char *key, rt_gguf_vtype elem_type,
                       const void *elems, uint64_t count)
{
    size_t es = rt__gguf_scalar_size(elem_type);
    if (es == 0 || (!elems && count) || count > RT_GGUF_MAX_ARRAY ||
        (key && strcmp(key, "general.alignment") == 0))
        return -EINVAL;
    size_t mark;
    int r = kv_begin(w, key, RT_GGUF_ARRAY, &mark);
    if (r < 0)
        return r;
    r = meta_u32(w, (uint32_t)elem_type);
    if (r >= 0)
        r = meta_u64(w, count);
    if (r >= 0)
        r = meta_elems(w, elems, count, es, elem_type == RT_GGUF_BOOL);
    return kv_end(w, mark, r);
}

int
rt_gguf_writer_add_arr_str(rt_gguf_writer *w, const char *key, const char *const *strs,
                           const size_t *lens, uint64_t count)
{
    if ((count && (!strs || !lens)) || count > RT_GGUF_MAX_ARRAY ||
        (key && strcmp(key, "general.alignment") == 0))
        return -EINVAL;
    for (uint64_t i = 0; i < count; i++)
        if ((!strs[i] && lens[i]) || lens[i] > RT_GGUF_MAX_STRING)
            return -EINVAL;
    size_t mark;
    int r = kv_begin(w, key, RT_GGUF_ARRAY, &mark);
    if (r < 0)
        return r;
    r = meta_u32(w, RT_GGUF_STRING);
    if (r >= 0)
        r = meta_u64(w, count);
    for (uint64_t i = 0; i < count && r >= 0; i++)
        r = meta_str(w, strs[i], lens[i]);
    return kv_end(w, mark, r);
}

int
rt_gguf_writer_add_value(rt_gguf_writer *w, const char *key, const rt_gguf_value *v)
{
    if (!v)
        return -EINVAL;
    if (key && strcmp(key, "general.alignment") == 0)
        return v->type == RT_GGUF_U32 ? rt_gguf_writer_add_u32(w, key, (uint32_t)v->u) : -EINVAL;
    size_t es = rt__gguf_scalar_size(v->type);
    if (v->type == RT_GGUF_STRING)
        return rt_gguf_writer_add_str(w, key, v->str, (size_t)v->str_len);
    size_t mark;
    int r;
    if (es) {
        /* Scalars: re-encode from the decoded value. */
        uint64_t bits = v->u;
        if (v->type == RT_GGUF_I8 || v->type == RT_GGUF_I16 || v->type == RT_GGUF_I32 ||
            v->type == RT_GGUF_I64)
            bits = (uint64_t)v->i;
        else if (v->type == RT_GGUF_F32) {
            float f = (float)v->f;
            uint32_t b32;
            memcpy(&b32, &f, 4);
            bits = b32;
        } else if (v->type == RT_GGUF_F64)
            memcpy(&bits, &v->f, 8);
        return add_scalar(w, key, v->type, bits, es);
    }
    if (v->type != RT_GGUF_ARRAY || (v->data_len && !v->data))
        return -EINVAL;
    /* Arrays: the raw element bytes are already in file encoding. */
    r = kv_begin(w, key, RT_GGUF_ARRAY, &mark);
    if (r < 0)
        return r;
    r = meta_u32(w, (uint32_t)v->elem_type);
    if (r >= 0)
        r = meta_u64(w, v->count);
    if (r >= 0)
        r = meta_append(w, v->data, (size_t)v->data_len);
    return kv_end(w, mark, r);
}

int
rt_gguf_writer_add_tensor(rt_gguf_writer *w, const char *name, rt_type type, uint32_t n_dims,
                          const uint64_t *dims, const void *data, uint64_t size)
{
    if (!w || !name || !dims || (!data && size) || n_dims < 1 || n_dims > RT_TENSOR_DIMS_MAX)
        return -EINVAL;
    size_t nn = strlen(name);
    if (nn == 0 || nn > RT_TENSOR_NAME_MAX || w->n_tensors >= W_MAX_TENSORS)
        return -EINVAL;
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        if (dims[i] == 0 || n > UINT64_MAX / dims[i])
            return -EINVAL;
        n *= dims[i];
    }
    uint64_t want;
    if (rt_type_size(type, n, dims[0], &want) < 0 || want != size)
        return -EINVAL;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return -EINVAL;
    if (w->n_tensors == w->tensors_cap) {
        size_t cap = w->tensors_cap ? 2 * w->tensors_cap : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        w->tensors = t;
        w->tensors_cap = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, nn);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < RT_TENSOR_DIMS_MAX; i++)
        t->dims[i] = i < n_dims ? dims[i] : 1;
    t->data = data;
    t->size = size;
    return 0;
}

static uint64_t
align_up(uint64_t v, uint32_t a)
{
    return (v + a - 1) & ~(uint64_t)(a - 1);
}

/* Bytes of the automatic general.alignment KV (key, type, u32). */
static uint64_t
alignment_kv_size(const rt_gguf_writer *w)
{
    return w->has_alignment_kv ? 0 : 8 + strlen("general.alignment") + 4 + 4;
}

static uint64_t
infos_size(const rt_gguf_writer *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->n_tensors; i++)
        n += 8 + strlen(w->tensors[i].name) + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    return n;
}

static uint64_t
data_start(const rt_gguf_writer *w)
{
    return align_up(RT_GGUF_HEADER_SIZE + w->meta_len + alignment_kv_size(w) + infos_size(w),
                    w->alignment);
}

uint64_t
rt_gguf_writer_size(const rt_gguf_writer *w)
{
    uint64_t n = data_start(w);
    for (size_t i = 0; i < w->n_tensors; i++)
        n += align_up(w->tensors[i].size, w->alignment);
    return n;
}

/* Buffered output over the caller's sink. */
typedef struct out {
    rt_gguf_sink sink;
    void *ud;
    uint8_t buf[W_BUF];
    size_t n;
    uint64_t total;
} out;

static int
out_flush(out *o)
{
    if (o->n == 0)
        return 0;
    int r = o->sink(o->ud, o->buf, o->n);
    o->n = 0;
    return r < 0 ? r : 0;
}

static int
out_put(out *o, const void *p, uint64_t n)
{
    const uint8_t *s = p;
    while (n > 0) {
        if (o->n == W_BUF) {
            int r = out_flush(o);
            if (r < 0)
                return r;
        }
        size_t k = W_BUF - o->n;
        if (k > n)
            k = (size_t)n;
        if (s)
            memcpy(o->buf + o->n, s, k);
        else
            memset(o->buf + o->n, 0, k);
        o->n += k;
        o->total += k;
        n -= k;
        if (s)
            s += k;
    }
    return 0;
}

static int
out_u32(out *o, uint32_t v)
{
    uint8_t b[4];
    put_u32(b, v);
    return out_put(o, b, 4);
}

static int
out_u64(out *o, uint64_t v)
{
    uint8_t b[8];
    put_u64(b, v);
    return out_put(o, b, 8);
}

/* Zero bytes up to the next multiple of the alignment. */
static int
out_pad(out *o, uint32_t alignment)
{
    return out_put(o, NULL, align_up(o->total, alignment) - o->total);
}

int
rt_gguf_writer_write(const rt_gguf_writer *w, rt_gguf_sink sink, void *userdata)
{
    if (!w || !sink)
        return -EINVAL;
    out *o = malloc(sizeof(*o));
    if (!o)
        return -ENOMEM;
    o->sink = sink;
    o->ud = userdata;
    o->n = 0;
    o->total = 0;
    int r = out_put(o, "GGUF", 4);
    if (r >= 0)
        r = out_u32(o, RT_GGUFW_VERSION);
    if (r >= 0)
        r = out_u64(o, w->n_tensors);
    if (r >= 0)
        r = out_u64(o, w->n_kv + (w->has_alignment_kv ? 0 : 1));
    if (r >= 0)
        r = out_put(o, w->meta, w->meta_len);
    if (r >= 0 && !w->has_alignment_kv) {
        static const char k[] = "general.alignment";
        r = out_u64(o, sizeof(k) - 1);
        if (r >= 0)
            r = out_put(o, k, sizeof(k) - 1);
        if (r >= 0)
            r = out_u32(o, RT_GGUF_U32);
        if (r >= 0)
            r = out_u32(o, w->alignment);
    }
    /* Tensor infos; offsets are relative to the data section. */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors && r >= 0; i++) {
        const wtensor *t = &w->tensors[i];
        size_t nn = strlen(t->name);
        r = out_u64(o, nn);
        if (r >= 0)
            r = out_put(o, t->name, nn);
        if (r >= 0)
            r = out_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && r >= 0; d++)
            r = out_u64(o, t->dims[d]);
        if (r >= 0)
            r = out_u32(o, (uint32_t)t->type);
        if (r >= 0)
            r = out_u64(o, off);
        off += align_up(t->size, w->alignment);
    }
    if (r >= 0)
        r = out_pad(o, w->alignment);
    for (size_t i = 0; i < w->n_tensors && r >= 0; i++) {
        r = out_put(o, w->tensors[i].data, w->tensors[i].size);
        if (r >= 0)
            r = out_pad(o, w->alignment);
    }
    if (r >= 0)
        r = out_flush(o);
    free(o);
    return r;
}
