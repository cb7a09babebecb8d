/* SPDX-License-Identifier: MIT */
/*
 * GGUF reader. Every read goes through a cursor whose getter first checks that
 * the bytes exist in the prefix (else -EAGAIN, remembering how much prefix is
 * needed) and in the file at all (else -EBADMSG). rt_gguf_parse walks the whole
 * header, metadata and tensor-info section once; the accessors walk it again
 * and may then trust its structure, though they still never read past len.
 */
#include "runtime/gguf.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "runtime/internal.h"

typedef struct cursor {
    const uint8_t *p;
    size_t len;         /* bytes available */
    uint64_t file_size; /* bytes in the file (>= len) */
    size_t off;
    uint64_t need; /* on -EAGAIN: prefix needed */
} cursor;

static uint64_t
le_load(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Checks that n more bytes exist at the cursor. */
static int
cur_want(cursor *c, uint64_t n)
{
    if (c->len - c->off >= n)
        return 0;
    if (c->file_size - c->off >= n) {
        c->need = c->off + n;
        return -EAGAIN;
    }
    return -EBADMSG;
}

static int
cur_u(cursor *c, unsigned n, uint64_t *ret)
{
    int r = cur_want(c, n);
    if (r < 0)
        return r;
    *ret = le_load(c->p + c->off, n);
    c->off += n;
    return 0;
}

static int
cur_u32(cursor *c, uint32_t *ret)
{
    uint64_t v;
    int r = cur_u(c, 4, &v);
    if (r < 0)
        return r;
    *ret = (uint32_t)v;
    return 0;
}

static int
cur_str(cursor *c, uint64_t max, const char **ret, uint64_t *ret_len)
{
    uint64_t n;
    int r = cur_u(c, 8, &n);
    if (r < 0)
        return r;
    if (n > max)
        return -EBADMSG;
    r = cur_want(c, n);
    if (r < 0)
        return r;
    *ret = (const char *)(c->p + c->off);
    *ret_len = n;
    c->off += (size_t)n;
    return 0;
}

unsigned
rt__gguf_scalar_size(uint32_t t)
{
    switch (t) {
    case RT_GGUF_U8:
    case RT_GGUF_I8:
    case RT_GGUF_BOOL:
        return 1;
    case RT_GGUF_U16:
    case RT_GGUF_I16:
        return 2;
    case RT_GGUF_U32:
    case RT_GGUF_I32:
    case RT_GGUF_F32:
        return 4;
    case RT_GGUF_U64:
    case RT_GGUF_I64:
    case RT_GGUF_F64:
        return 8;
    default:
        return 0;
    }
}

static void
decode_scalar(uint32_t t, uint64_t raw, rt_gguf_value *v)
{
    switch (t) {
    case RT_GGUF_U8:
    case RT_GGUF_U16:
    case RT_GGUF_U32:
    case RT_GGUF_U64:
    case RT_GGUF_BOOL:
        v->u = raw;
        v->i = raw <= INT64_MAX ? (int64_t)raw : 0;
        break;
    case RT_GGUF_I8:
        v->i = (int8_t)raw;
        break;
    case RT_GGUF_I16:
        v->i = (int16_t)raw;
        break;
    case RT_GGUF_I32:
        v->i = (int32_t)raw;
        break;
    case RT_GGUF_I64:
        v->i = (int64_t)raw;
        break;
    case RT_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        v->f = f;
        break;
    }
    case RT_GGUF_F64:
        memcpy(&v->f, &raw, 8);
        break;
    default:
        break;
    }
    if (t == RT_GGUF_I8 || t == RT_GGUF_I16 || t == RT_GGUF_I32 || t == RT_GGUF_I64)
        v->u = v->i >= 0 ? (uint64_t)v->i : 0;
}

/* Reads (and validates) one value of type t at the cursor into *v. */
static int
cur_value(cursor *c, uint32_t t, rt_gguf_value *v)
{
    memset(v, 0, sizeof(*v));
    v->type = (rt_gguf_vtype)t;
    unsigned sz = rt__gguf_scalar_size(t);
    if (sz) {
        uint64_t raw;
        int r = cur_u(c, sz, &raw);
        if (r < 0)
            return r;
        if (t == RT_GGUF_BOOL && raw > 1)
            return -EBADMSG;
        decode_scalar(t, raw, v);
        return 0;
    }
    if (t == RT_GGUF_STRING)
        return cur_str(c, RT_GGUF_MAX_STRING, &v->str, &v->str_len);
    if (t != RT_GGUF_ARRAY)
        return -EBADMSG;

    uint32_t et;
    uint64_t count;
    int r = cur_u32(c, &et);
    if (r < 0)
        return r;
    r = cur_u(c, 8, &count);
    if (r < 0)
        return r;
    if (count > RT_GGUF_MAX_ARRAY)
        return -EBADMSG;
    v->elem_type = (rt_gguf_vtype)et;
    v->count = count;
    v->data = c->p + c->off;
    size_t start = c->off;
    unsigned esz = rt__gguf_scalar_size(et);
    if (esz) {
        /* count <= 2^26 and esz <= 8: no overflow. */
        r = cur_want(c, count * esz);
        if (r < 0)
            return r;
        if (et == RT_GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (c->p[c->off + i] > 1)
                    return -EBADMSG;
        c->off += (size_t)(count * esz);
    } else if (et == RT_GGUF_STRING) {
        /* Each string needs at least its 8-byte length. */
        if (count > (c->file_size - c->off) / 8)
            return -EBADMSG;
        for (uint64_t i = 0; i < count; i++) {
            const char *s;
            uint64_t n;
            r = cur_str(c, RT_GGUF_MAX_STRING, &s, &n);
            if (r < 0)
                return r;
        }
    } else {
        return -EBADMSG; /* arrays of arrays, unknown types */
    }
    v->data_len = c->off - start;
    return 0;
}

/* Reads one tensor info at the cursor (absolute offset not yet known: it is
 * relative in ret->offset). */
static int
cur_tensor_info(cursor *c, rt_tensor_info *ret)
{
    const char *name;
    uint64_t name_len;
    uint32_t n_dims, type;
    int r = cur_str(c, RT_TENSOR_NAME_MAX, &name, &name_len);
    if (r < 0)
        return r;
    if (memchr(name, 0, (size_t)name_len))
        return -EBADMSG;
    r = cur_u32(c, &n_dims);
    if (r < 0)
        return r;
    if (n_dims < 1 || n_dims > RT_TENSOR_DIMS_MAX)
        return -EBADMSG;
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->name, name, (size_t)name_len);
    ret->n_dims = n_dims;
    uint64_t n_elems = 1;
    for (uint32_t i = 0; i < RT_TENSOR_DIMS_MAX; i++) {
        uint64_t d = 1;
        if (i < n_dims) {
            r = cur_u(c, 8, &d);
            if (r < 0)
                return r;
            /* Each dim and the product stay below 2^62 so sizes never overflow. */
            if (d == 0 || d > ((uint64_t)1 << 62) / n_elems)
                return -EBADMSG;
        }
        ret->dims[i] = d;
        n_elems *= d;
    }
    r = cur_u32(c, &type);
    if (r < 0)
        return r;
    ret->type = (rt_type)type;
    r = cur_u(c, 8, &ret->offset);
    if (r < 0)
        return r;
    return rt_type_size(type, n_elems, ret->dims[0], &ret->size);
}

/* Checks a tensor's placement in the file and makes its offset absolute. */
static int
place_tensor(const rt_gguf *g, rt_tensor_info *t)
{
    if (t->offset % g->alignment != 0)
        return -EBADMSG;
    if (t->offset > g->file_size - g->data_off)
        return -EBADMSG;
    t->offset += g->data_off;
    if (t->size > g->file_size - t->offset)
        return -EBADMSG;
    return 0;
}

bool
rt_gguf_is_gguf(const void *buf, size_t len)
{
    return buf && len >= 4 && le_load(buf, 4) == RT_GGUF_MAGIC;
}

static int
parse(cursor *c, rt_gguf *g)
{
    uint64_t magic;
    int r = cur_u(c, 4, &magic);
    if (r < 0)
        return r;
    if (magic != RT_GGUF_MAGIC)
        return -EBADMSG;
    r = cur_u32(c, &g->version);
    if (r < 0)
        return r;
    if (g->version != 2 && g->version != 3)
        return -EBADMSG;
    r = cur_u(c, 8, &g->n_tensors);
    if (r < 0)
        return r;
    r = cur_u(c, 8, &g->n_kv);
    if (r < 0)
        return r;
    /* A KV takes at least 8+4+1 bytes, a tensor info at least 8+4+8+4+8. */
    uint64_t room = c->file_size - c->off;
    if (g->n_kv > RT_GGUF_MAX_KV || g->n_tensors > RT_GGUF_MAX_TENSORS || g->n_kv > room / 13 ||
        g->n_tensors > (room - g->n_kv * 13) / 32)
        return -EBADMSG;

    g->kv_off = c->off;
    g->alignment = RT_GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const char *key;
        uint64_t key_len;
        uint32_t t;
        rt_gguf_value v;
        r = cur_str(c, RT_GGUF_MAX_KEY, &key, &key_len);
        if (r < 0)
            return r;
        r = cur_u32(c, &t);
        if (r < 0)
            return r;
        r = cur_value(c, t, &v);
        if (r < 0)
            return r;
        if (key_len == 17 && memcmp(key, "general.alignment", 17) == 0) {
            if (t != RT_GGUF_U32 || v.u == 0 || v.u > RT_GGUF_MAX_ALIGNMENT ||
                (v.u & (v.u - 1)) != 0)
                return -EBADMSG;
            g->alignment = (uint32_t)v.u;
        }
    }

    g->ti_off = c->off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        rt_tensor_info ti;
        r = cur_tensor_info(c, &ti);
        if (r < 0)
            return r;
    }
    uint64_t end = c->off;
    uint64_t pad = (g->alignment - end % g->alignment) % g->alignment;
    /* A file without tensors may end right after the infos. */
    if (g->n_tensors == 0 && end == c->file_size)
        pad = 0;
    if (pad > c->file_size - end)
        return -EBADMSG;
    g->data_off = end + pad;

    /* Second walk over the (now complete) infos to check placement. */
    cursor c2 = *c;
    c2.off = g->ti_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        rt_tensor_info ti;
        r = cur_tensor_info(&c2, &ti);
        if (r < 0)
            return r;
        r = place_tensor(g, &ti);
        if (r < 0)
            return r;
    }
    return 0;
}

int
rt_gguf_parse(const void *buf, size_t len, uint64_t file_size, rt_gguf *ret, uint64_t *ret_need)
{
    if ((!buf && len) || !ret || len > file_size)
        return -EINVAL;
    cursor c = { .p = buf, .len = len, .file_size = file_size };
    rt_gguf g = { .buf = buf, .len = len, .file_size = file_size };
    int r = parse(&c, &g);
    if (r == -EAGAIN) {
        if (ret_need)
            *ret_need = c.need;
        return r;
    }
    if (r < 0)
        return r;
    *ret = g;
    return 0;
}

/* A cursor over a parsed file; reads cannot fail except by a caller bug. */
static cursor
parsed_cursor(const rt_gguf *g, size_t off)
{
    cursor c = { .p = g->buf, .len = g->len, .file_size = g->file_size, .off = off };
    return c;
}

int
rt_gguf_kv_next(const rt_gguf *g, uint64_t *cursor_, const char **ret_key, uint64_t *ret_key_len,
                rt_gguf_value *ret)
{
    /* *cursor_ encodes the byte offset of the next KV (0 = the first). */
    size_t off = *cursor_ ? (size_t)*cursor_ : g->kv_off;
    if (off >= g->ti_off)
        return 0;
    cursor c = parsed_cursor(g, off);
    const char *key;
    uint64_t key_len;
    uint32_t t;
    rt_gguf_value v;
    if (cur_str(&c, RT_GGUF_MAX_KEY, &key, &key_len) < 0 || cur_u32(&c, &t) < 0 ||
        cur_value(&c, t, &v) < 0)
        return -EBADMSG; /* unreachable for a parsed file */
    *cursor_ = c.off;
    *ret_key = key;
    *ret_key_len = key_len;
    *ret = v;
    return 1;
}

int
rt_gguf_get(const rt_gguf *g, const char *key, rt_gguf_value *ret)
{
    size_t n = strlen(key);
    uint64_t cur = 0;
    const char *k;
    uint64_t kl;
    rt_gguf_value v;
    int r;
    while ((r = rt_gguf_kv_next(g, &cur, &k, &kl, &v)) > 0) {
        if (kl == n && memcmp(k, key, n) == 0) {
            *ret = v;
            return 0;
        }
    }
    return r < 0 ? r : -ENOENT;
}

static bool
is_int_type(uint32_t t)
{
    return t <= RT_GGUF_I32 || t == RT_GGUF_U64 || t == RT_GGUF_I64;
}

static bool
is_signed_type(uint32_t t)
{
    return t == RT_GGUF_I8 || t == RT_GGUF_I16 || t == RT_GGUF_I32 || t == RT_GGUF_I64;
}

int
rt_gguf_get_u32(const rt_gguf *g, const char *key, uint32_t *ret)
{
    rt_gguf_value v;
    int r = rt_gguf_get(g, key, &v);
    if (r < 0)
        return r;
    if (!is_int_type(v.type))
        return -EBADMSG;
    if ((is_signed_type(v.type) && v.i < 0) || v.u > UINT32_MAX)
        return -ERANGE;
    *ret = (uint32_t)v.u;
    return 0;
}

int
rt_gguf_get_i32(const rt_gguf *g, const char *key, int32_t *ret)
{
    rt_gguf_value v;
    int r = rt_gguf_get(g, key, &v);
    if (r < 0)
        return r;
    if (!is_int_type(v.type))
        return -EBADMSG;
    if (is_signed_type(v.type) ? (v.i < INT32_MIN || v.i > INT32_MAX) : v.u > INT32_MAX)
        return -ERANGE;
    *ret = is_signed_type(v.type) ? (int32_t)v.i : (int32_t)v.u;
    return 0;
}

int
rt_gguf_get_f32(const rt_gguf *g, const char *key, float *ret)
{
    rt_gguf_value v;
    int r = rt_gguf_get(g, key, &v);
    if (r < 0)
        return r;
    if (v.type != RT_GGUF_F32 && v.type != RT_GGUF_F64)
        return -EBADMSG;
    *ret = (float)v.f;
    return 0;
}

int
rt_gguf_get_str(const rt_gguf *g, const char *key, const char **ret_str, uint64_t *ret_len)
{
    rt_gguf_value v;
    int r = rt_gguf_get(g, key, &v);
    if (r < 0)
        return r;
    if (v.type != RT_GGUF_STRING)
        return -EBADMSG;
    *ret_str = v.str;
    *ret_len = v.str_len;
    return 0;
}

int
rt_gguf_get_arr(const rt_gguf *g, const char *key, rt_gguf_vtype elem_type, rt_gguf_value *ret)
{
    rt_gguf_value v;
    int r = rt_gguf_get(g, key, &v);
    if (r < 0)
        return r;
    if (v.type != RT_GGUF_ARRAY || v.elem_type != elem_type)
        return -EBADMSG;
    *ret = v;
    return 0;
}

float
rt_gguf_arr_f32(const rt_gguf_value *arr, uint64_t i)
{
    assert(arr->type == RT_GGUF_ARRAY && arr->elem_type == RT_GGUF_F32 && i < arr->count);
    uint32_t b = (uint32_t)le_load(arr->data + i * 4, 4);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

int64_t
rt_gguf_arr_i64(const rt_gguf_value *arr, uint64_t i)
{
    assert(arr->type == RT_GGUF_ARRAY &&
           (is_int_type(arr->elem_type) || arr->elem_type == RT_GGUF_BOOL));
    assert(i < arr->count);
    unsigned sz = rt__gguf_scalar_size(arr->elem_type);
    rt_gguf_value v = { 0 };
    decode_scalar(arr->elem_type, le_load(arr->data + i * sz, sz), &v);
    return is_signed_type(arr->elem_type) ? v.i : (int64_t)v.u;
}

int
rt_gguf_arr_str_next(const rt_gguf_value *arr, uint64_t *cursor_, const char **ret_str,
                     uint64_t *ret_len)
{
    assert(arr->type == RT_GGUF_ARRAY && arr->elem_type == RT_GGUF_STRING);
    if (*cursor_ >= arr->data_len)
        return 0;
    const uint8_t *p = arr->data + *cursor_;
    uint64_t n = le_load(p, 8);
    *ret_str = (const char *)p + 8;
    *ret_len = n;
    *cursor_ += 8 + n;
    return 1;
}

int
rt_gguf_tensor_next(const rt_gguf *g, rt_gguf_iter *it, rt_tensor_info *ret)
{
    if (it->index >= g->n_tensors)
        return 0;
    cursor c = parsed_cursor(g, it->off ? it->off : g->ti_off);
    rt_tensor_info ti;
    int r = cur_tensor_info(&c, &ti);
    if (r < 0)
        return -EBADMSG;
    r = place_tensor(g, &ti);
    if (r < 0)
        return r;
    it->off = c.off;
    it->index++;
    *ret = ti;
    return 1;
}

int
rt_gguf_tensor_find(const rt_gguf *g, const char *name, rt_tensor_info *ret)
{
    rt_gguf_iter it = RT_GGUF_ITER_INIT;
    rt_tensor_info ti, found;
    bool seen = false;
    int r;
    /* The whole table is scanned: a name given twice is refused rather than
     * resolved to the first, which another reader might not pick. */
    while ((r = rt_gguf_tensor_next(g, &it, &ti)) > 0) {
        if (strcmp(ti.name, name) == 0) {
            if (seen)
                return -EBADMSG;
            found = ti;
            seen = true;
        }
    }
    if (r < 0)
        return r;
    if (!seen)
        return -ENOENT;
    *ret = found;
    return 0;
}
