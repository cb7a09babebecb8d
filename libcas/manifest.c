/* SPDX-License-Identifier: MIT */
/*
 * Manifest encoder (builder) and strict decoder. The layout and the
 * canonical-form rules are in FORMAT.md; the decoder is the one place that
 * enforces them, and the builder runs its output through the decoder, so
 * nothing non-canonical ever gets an id.
 */
#include "libcas/manifest.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libcas/internal.h"

static const uint8_t magic[4] = { 'N', 'V', 'X', 'M' };

/* Smallest encodings, used to bound counts by the bytes that remain before
 * anything is allocated. */
enum {
    META_REC_MIN = 1 + 1 + 2,
    TENSOR_REC_MIN = 2 + 1 + 4 + 1 + 8 + 8,
};

typedef struct meta_entry {
    const char *key;
    const char *value;
} meta_entry;

struct cas_manifest {
    uint8_t *bytes; /* canonical encoding (owned) */
    size_t len;
    uint8_t id[CAS_HASH_LEN];
    cas_chunker_kind kind;
    cas_chunker_params params;
    uint64_t total;
    size_t n_chunks;
    const uint8_t *chunk_recs; /* inside bytes */
    uint64_t *offsets;         /* n_chunks + 1 prefix sums */
    size_t n_meta;
    meta_entry *meta;
    size_t n_tensors;
    cas_tensor_info *tensors;
    char *strings; /* NUL-terminated copies of keys, values and names */
};

/* Strict UTF-8: shortest form, no surrogates, at most U+10FFFF, and no NUL
 * (names and values become C strings). */
static bool
utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, lo;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, lo = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f, lo = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, lo = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < lo || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static bool
key_valid(const uint8_t *k, size_t n)
{
    if (n < 1 || n > CAS_MANIFEST_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Byte-order comparison of two keys of different lengths (a shorter key that
 * is a prefix of a longer one sorts first). */
static int
key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static char *
arena_put(char **arena, const uint8_t *s, size_t n)
{
    char *dst = *arena;
    memcpy(dst, s, n);
    dst[n] = '\0';
    *arena += n + 1;
    return dst;
}

void
cas_manifest_free(cas_manifest *m)
{
    if (!m)
        return;
    free(m->bytes);
    free(m->offsets);
    free(m->meta);
    free(m->tensors);
    free(m->strings);
    free(m);
}

/* Header: everything up to the metadata entries. */
static int
decode_header(cas__cursor *c, cas_manifest *m, uint16_t *ret_n_meta)
{
    const uint8_t *mg;
    uint16_t version, n_meta, reserved;
    uint8_t kind, flags;
    uint32_t n_chunks, n_tensors;

    int r = cas__cursor_bytes(c, sizeof(magic), &mg);
    if (r < 0 || memcmp(mg, magic, sizeof(magic)) != 0)
        return -EBADMSG;
    if ((r = cas__cursor_u16(c, &version)) < 0 || (r = cas__cursor_u8(c, &kind)) < 0 ||
        (r = cas__cursor_u8(c, &flags)) < 0 || (r = cas__cursor_u32(c, &m->params.min)) < 0 ||
        (r = cas__cursor_u32(c, &m->params.avg)) < 0 ||
        (r = cas__cursor_u32(c, &m->params.max)) < 0 || (r = cas__cursor_u32(c, &n_chunks)) < 0 ||
        (r = cas__cursor_u64(c, &m->total)) < 0 || (r = cas__cursor_u32(c, &n_tensors)) < 0 ||
        (r = cas__cursor_u16(c, &n_meta)) < 0 || (r = cas__cursor_u16(c, &reserved)) < 0)
        return -EBADMSG;
    if (version != CAS_MANIFEST_VERSION || kind >= _CAS_CHUNKER_KIND_MAX || flags != 0 ||
        reserved != 0)
        return -EBADMSG;
    if (cas_chunker_params_validate(&m->params) < 0)
        return -EBADMSG;
    if (m->total > CAS_MANIFEST_SIZE_MAX || n_chunks > CAS_MANIFEST_CHUNKS_MAX ||
        n_tensors > CAS_MANIFEST_TENSORS_MAX || n_meta > CAS_MANIFEST_META_MAX)
        return -EBADMSG;
    if ((n_chunks == 0) != (m->total == 0))
        return -EBADMSG;
    /* The counts must fit in what remains (64-bit sums cannot overflow with
     * the maxima above). */
    uint64_t need = (uint64_t)n_meta * META_REC_MIN +
                    (uint64_t)n_chunks * CAS_MANIFEST_CHUNK_REC_LEN +
                    (uint64_t)n_tensors * TENSOR_REC_MIN;
    if (need > c->len - c->off)
        return -EBADMSG;
    m->kind = (cas_chunker_kind)kind;
    m->n_chunks = n_chunks;
    m->n_tensors = n_tensors;
    *ret_n_meta = n_meta;
    return 0;
}

static int
decode_meta(cas__cursor *c, cas_manifest *m, size_t n_meta, char **arena)
{
    const uint8_t *prev = NULL;
    size_t prev_len = 0;

    for (size_t i = 0; i < n_meta; i++) {
        uint8_t klen;
        uint16_t vlen;
        const uint8_t *k, *v;
        if (cas__cursor_u8(c, &klen) < 0 || cas__cursor_bytes(c, klen, &k) < 0 ||
            !key_valid(k, klen))
            return -EBADMSG;
        if (prev && key_cmp(prev, prev_len, k, klen) >= 0)
            return -EBADMSG; /* unsorted or duplicate */
        if (cas__cursor_u16(c, &vlen) < 0 || vlen > CAS_MANIFEST_VALUE_MAX ||
            cas__cursor_bytes(c, vlen, &v) < 0 || !utf8_valid(v, vlen))
            return -EBADMSG;
        m->meta[i].key = arena_put(arena, k, klen);
        m->meta[i].value = arena_put(arena, v, vlen);
        prev = k;
        prev_len = klen;
    }
    m->n_meta = n_meta;
    return 0;
}

static int
decode_chunks(cas__cursor *c, cas_manifest *m)
{
    const uint8_t *recs;

    if (cas__cursor_bytes(c, m->n_chunks * (size_t)CAS_MANIFEST_CHUNK_REC_LEN, &recs) < 0)
        return -EBADMSG;
    m->chunk_recs = recs;
    m->offsets[0] = 0;
    for (size_t i = 0; i < m->n_chunks; i++) {
        uint32_t len = le32_load(recs + i * CAS_MANIFEST_CHUNK_REC_LEN + CAS_HASH_LEN);
        if (len == 0 || len > m->params.max)
            return -EBADMSG;
        m->offsets[i + 1] = m->offsets[i] + len; /* <= 2^22 * 2^24: no overflow */
    }
    if (m->offsets[m->n_chunks] != m->total)
        return -EBADMSG;
    return 0;
}

static int
decode_tensors(cas__cursor *c, cas_manifest *m, char **arena)
{
    uint64_t prev_end = 0;

    for (size_t i = 0; i < m->n_tensors; i++) {
        cas_tensor_info *t = &m->tensors[i];
        uint16_t nlen;
        uint8_t n_dims;
        const uint8_t *name;
        if (cas__cursor_u16(c, &nlen) < 0 || nlen < 1 || nlen > CAS_TENSOR_NAME_MAX ||
            cas__cursor_bytes(c, nlen, &name) < 0 || !utf8_valid(name, nlen))
            return -EBADMSG;
        if (cas__cursor_u32(c, &t->type) < 0 || cas__cursor_u8(c, &n_dims) < 0 ||
            n_dims > CAS_TENSOR_DIMS_MAX)
            return -EBADMSG;
        t->n_dims = n_dims;
        for (size_t d = 0; d < n_dims; d++)
            if (cas__cursor_u64(c, &t->dims[d]) < 0)
                return -EBADMSG;
        if (cas__cursor_u64(c, &t->offset) < 0 || cas__cursor_u64(c, &t->size) < 0)
            return -EBADMSG;
        /* Inside the file, in strictly increasing offset order, no overlap. */
        if (t->offset > m->total || t->size > m->total - t->offset)
            return -EBADMSG;
        if (i > 0 && (t->offset <= m->tensors[i - 1].offset || t->offset < prev_end))
            return -EBADMSG;
        prev_end = t->offset + t->size;
        t->name = arena_put(arena, name, nlen);
    }
    return 0;
}

int
cas_manifest_decode(const void *buf, size_t len, cas_manifest **ret)
{
    cas_manifest *m = NULL;
    uint16_t n_meta = 0;
    int r;

    if (!buf && len > 0)
        return -EINVAL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    cas__cursor c = { .p = buf, .len = len, .off = 0 };
    r = decode_header(&c, m, &n_meta);
    if (r < 0)
        goto out;
    /* Counts are now bounded by the maxima and by len: allocate. The string
     * arena holds every string plus its NUL, all of which come from buf. */
    m->bytes = malloc(len);
    m->offsets = malloc((m->n_chunks + 1) * sizeof(*m->offsets));
    m->meta = calloc(n_meta ? n_meta : 1, sizeof(*m->meta));
    m->tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof(*m->tensors));
    m->strings = malloc(len + 2 * (size_t)n_meta + m->n_tensors + 1);
    if (!m->bytes || !m->offsets || !m->meta || !m->tensors || !m->strings) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(m->bytes, buf, len);
    m->len = len;
    c.p = m->bytes; /* later pointers refer to the owned copy */
    char *arena = m->strings;
    if ((r = decode_meta(&c, m, n_meta, &arena)) < 0 || (r = decode_chunks(&c, m)) < 0 ||
        (r = decode_tensors(&c, m, &arena)) < 0)
        goto out;
    if (c.off != c.len) {
        r = -EBADMSG; /* trailing bytes */
        goto out;
    }
    cas_hash(m->bytes, m->len, m->id);
    *ret = m;
    m = NULL;
    r = 0;
out:
    cas_manifest_free(m);
    return r;
}

const uint8_t *
cas_manifest_bytes(const cas_manifest *m, size_t *ret_len)
{
    *ret_len = m->len;
    return m->bytes;
}

const uint8_t *
cas_manifest_id(const cas_manifest *m)
{
    return m->id;
}

uint64_t
cas_manifest_size(const cas_manifest *m)
{
    return m->total;
}

cas_chunker_kind
cas_manifest_chunker(const cas_manifest *m, cas_chunker_params *ret_params)
{
    if (ret_params)
        *ret_params = m->params;
    return m->kind;
}

size_t
cas_manifest_chunk_count(const cas_manifest *m)
{
    return m->n_chunks;
}

int
cas_manifest_chunk(const cas_manifest *m, size_t i, cas_chunk_info *ret)
{
    if (i >= m->n_chunks)
        return -ERANGE;
    ret->id = m->chunk_recs + i * CAS_MANIFEST_CHUNK_REC_LEN;
    ret->offset = m->offsets[i];
    ret->len = (uint32_t)(m->offsets[i + 1] - m->offsets[i]);
    return 0;
}

int
cas_manifest_chunk_at(const cas_manifest *m, uint64_t offset, size_t *ret_index)
{
    if (offset >= m->total)
        return -ERANGE;
    /* Largest i with offsets[i] <= offset. */
    size_t lo = 0, hi = m->n_chunks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->offsets[mid] <= offset)
            lo = mid;
        else
            hi = mid;
    }
    *ret_index = lo;
    return 0;
}

size_t
cas_manifest_tensor_count(const cas_manifest *m)
{
    return m->n_tensors;
}

int
cas_manifest_tensor(const cas_manifest *m, size_t i, cas_tensor_info *ret)
{
    if (i >= m->n_tensors)
        return -ERANGE;
    *ret = m->tensors[i];
    return 0;
}

size_t
cas_manifest_meta_count(const cas_manifest *m)
{
    return m->n_meta;
}

int
cas_manifest_meta(const cas_manifest *m, size_t i, const char **ret_key, const char **ret_value)
{
    if (i >= m->n_meta)
        return -ERANGE;
    *ret_key = m->meta[i].key;
    *ret_value = m->meta[i].value;
    return 0;
}

const char *
cas_manifest_meta_get(const cas_manifest *m, const char *key)
{
    for (size_t i = 0; key && i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return m->meta[i].value;
    return NULL;
}

/* ---- builder ---------------------------------------------------------- */

typedef struct owned_meta {
    char *key;
    char *value;
} owned_meta;

struct cas_manifest_builder {
    cas_chunker_kind kind;
    cas_chunker_params params;
    uint64_t total;
    uint8_t *chunk_recs; /* encoded chunk records */
    size_t n_chunks, cap_chunks;
    owned_meta meta[CAS_MANIFEST_META_MAX];
    size_t n_meta;
    cas_tensor_info *tensors; /* names owned */
    size_t n_tensors, cap_tensors;
};

int
cas_manifest_builder_new(cas_chunker_kind kind, const cas_chunker_params *params,
                         cas_manifest_builder **ret)
{
    if ((unsigned)kind >= _CAS_CHUNKER_KIND_MAX || cas_chunker_params_validate(params) < 0)
        return -EINVAL;
    cas_manifest_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->kind = kind;
    b->params = *params;
    *ret = b;
    return 0;
}

void
cas_manifest_builder_free(cas_manifest_builder *b)
{
    if (!b)
        return;
    free(b->chunk_recs);
    for (size_t i = 0; i < b->n_meta; i++) {
        free(b->meta[i].key);
        free(b->meta[i].value);
    }
    for (size_t i = 0; i < b->n_tensors; i++)
        free((char *)b->tensors[i].name);
    free(b->tensors);
    free(b);
}

int
cas_manifest_builder_add_chunk(cas_manifest_builder *b, const uint8_t id[static CAS_HASH_LEN],
                               uint32_t len)
{
    if (len == 0 || len > b->params.max)
        return -EINVAL;
    if (b->n_chunks >= CAS_MANIFEST_CHUNKS_MAX || len > CAS_MANIFEST_SIZE_MAX - b->total)
        return -EMSGSIZE;
    if (b->n_chunks == b->cap_chunks) {
        size_t cap = b->cap_chunks ? b->cap_chunks * 2 : 1024;
        uint8_t *recs = realloc(b->chunk_recs, cap * CAS_MANIFEST_CHUNK_REC_LEN);
        if (!recs)
            return -ENOMEM;
        b->chunk_recs = recs;
        b->cap_chunks = cap;
    }
    uint8_t *rec = b->chunk_recs + b->n_chunks * CAS_MANIFEST_CHUNK_REC_LEN;
    memcpy(rec, id, CAS_HASH_LEN);
    le32_store(rec + CAS_HASH_LEN, len);
    b->n_chunks++;
    b->total += len;
    return 0;
}

int
cas_manifest_builder_add_tensor(cas_manifest_builder *b, const cas_tensor_info *t)
{
    if (!t || !t->name || t->n_dims > CAS_TENSOR_DIMS_MAX)
        return -EINVAL;
    size_t nlen = strnlen(t->name, CAS_TENSOR_NAME_MAX + 1);
    if (nlen > CAS_TENSOR_NAME_MAX)
        return -EMSGSIZE;
    if (nlen == 0 || !utf8_valid((const uint8_t *)t->name, nlen))
        return -EINVAL;
    if (b->n_tensors >= CAS_MANIFEST_TENSORS_MAX)
        return -EMSGSIZE;
    if (b->n_tensors == b->cap_tensors) {
        size_t cap = b->cap_tensors ? b->cap_tensors * 2 : 64;
        cas_tensor_info *nt = realloc(b->tensors, cap * sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        b->tensors = nt;
        b->cap_tensors = cap;
    }
    char *name = malloc(nlen + 1);
    if (!name)
        return -ENOMEM;
    memcpy(name, t->name, nlen + 1);
    cas_tensor_info *dst = &b->tensors[b->n_tensors++];
    *dst = *t;
    dst->name = name;
    for (size_t d = t->n_dims; d < CAS_TENSOR_DIMS_MAX; d++)
        dst->dims[d] = 0;
    return 0;
}

int
cas_manifest_builder_set_meta(cas_manifest_builder *b, const char *key, const char *value)
{
    if (!key || !value)
        return -EINVAL;
    size_t klen = strnlen(key, CAS_MANIFEST_KEY_MAX + 1);
    size_t vlen = strnlen(value, CAS_MANIFEST_VALUE_MAX + 1);
    if (!key_valid((const uint8_t *)key, klen) || vlen > CAS_MANIFEST_VALUE_MAX ||
        !utf8_valid((const uint8_t *)value, vlen))
        return -EINVAL;
    size_t i = 0;
    while (i < b->n_meta && strcmp(b->meta[i].key, key) != 0)
        i++;
    if (i == b->n_meta && b->n_meta >= CAS_MANIFEST_META_MAX)
        return -EMSGSIZE;
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    if (i < b->n_meta) {
        free(b->meta[i].value);
        b->meta[i].value = v;
        return 0;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    b->meta[i] = (owned_meta){ k, v };
    b->n_meta++;
    return 0;
}

static int
meta_order(const void *a, const void *b)
{
    /* Keys are ASCII, so strcmp is byte order. */
    return strcmp(((const owned_meta *)a)->key, ((const owned_meta *)b)->key);
}

static int
tensor_order(const void *a, const void *b)
{
    uint64_t x = ((const cas_tensor_info *)a)->offset, y = ((const cas_tensor_info *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Bytes of the canonical encoding (each part bounded by the limits checked
 * on the way in, so no overflow). */
static size_t
encoded_len(const cas_manifest_builder *b)
{
    size_t len = CAS_MANIFEST_HEADER_LEN + b->n_chunks * (size_t)CAS_MANIFEST_CHUNK_REC_LEN;
    for (size_t i = 0; i < b->n_meta; i++)
        len += 3 + strlen(b->meta[i].key) + strlen(b->meta[i].value);
    for (size_t i = 0; i < b->n_tensors; i++)
        len += TENSOR_REC_MIN - 1 + strlen(b->tensors[i].name) + 8 * (size_t)b->tensors[i].n_dims;
    return len;
}

static uint8_t *
encode_header(const cas_manifest_builder *b, uint8_t *p)
{
    memcpy(p, magic, sizeof(magic));
    le16_store(p + 4, CAS_MANIFEST_VERSION);
    p[6] = (uint8_t)b->kind;
    p[7] = 0; /* flags */
    le32_store(p + 8, b->params.min);
    le32_store(p + 12, b->params.avg);
    le32_store(p + 16, b->params.max);
    le32_store(p + 20, (uint32_t)b->n_chunks);
    le64_store(p + 24, b->total);
    le32_store(p + 32, (uint32_t)b->n_tensors);
    le16_store(p + 36, (uint16_t)b->n_meta);
    le16_store(p + 38, 0); /* reserved */
    return p + CAS_MANIFEST_HEADER_LEN;
}

static uint8_t *
encode_meta(const cas_manifest_builder *b, uint8_t *p)
{
    for (size_t i = 0; i < b->n_meta; i++) {
        size_t kl = strlen(b->meta[i].key), vl = strlen(b->meta[i].value);
        *p++ = (uint8_t)kl;
        memcpy(p, b->meta[i].key, kl);
        p += kl;
        le16_store(p, (uint16_t)vl);
        memcpy(p + 2, b->meta[i].value, vl);
        p += 2 + vl;
    }
    return p;
}

static uint8_t *
encode_tensors(const cas_manifest_builder *b, uint8_t *p)
{
    for (size_t i = 0; i < b->n_tensors; i++) {
        const cas_tensor_info *t = &b->tensors[i];
        size_t nl = strlen(t->name);
        le16_store(p, (uint16_t)nl);
        memcpy(p + 2, t->name, nl);
        p += 2 + nl;
        le32_store(p, t->type);
        p[4] = (uint8_t)t->n_dims;
        p += 5;
        for (size_t d = 0; d < t->n_dims; d++, p += 8)
            le64_store(p, t->dims[d]);
        le64_store(p, t->offset);
        le64_store(p + 8, t->size);
        p += 16;
    }
    return p;
}

int
cas_manifest_builder_finish(cas_manifest_builder *b, cas_manifest **ret)
{
    qsort(b->meta, b->n_meta, sizeof(b->meta[0]), meta_order);
    if (b->n_tensors > 1)
        qsort(b->tensors, b->n_tensors, sizeof(b->tensors[0]), tensor_order);

    size_t len = encoded_len(b);
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    uint8_t *p = encode_header(b, buf);
    p = encode_meta(b, p);
    if (b->n_chunks > 0) {
        memcpy(p, b->chunk_recs, b->n_chunks * (size_t)CAS_MANIFEST_CHUNK_REC_LEN);
        p += b->n_chunks * (size_t)CAS_MANIFEST_CHUNK_REC_LEN;
    }
    p = encode_tensors(b, p);
    assert((size_t)(p - buf) == len);
    /* The decoder is the judge of canonical form (tensor ranges, empty model
     * consistency): what it refuses gets no id. */
    int r = cas_manifest_decode(buf, len, ret);
    free(buf);
    return r;
}
