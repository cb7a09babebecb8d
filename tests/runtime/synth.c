/* SPDX-License-Identifier: MIT */
#include "synth.h"

#include <stdlib.h>
#include <string.h>

static void
put(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2 + 64;
        *p = realloc(*p, *cap);
        if (!*p)
            abort();
    }
    memcpy(*p + *len, src, n);
    *len += n;
}

static void
put_le(uint8_t **p, size_t *len, size_t *cap, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(p, len, cap, b, n);
}

static void
kv_put_le(synth *s, uint64_t v, unsigned n)
{
    put_le(&s->kv, &s->kv_len, &s->kv_cap, v, n);
}

static void
kv_put_str(synth *s, const char *str)
{
    kv_put_le(s, strlen(str), 8);
    put(&s->kv, &s->kv_len, &s->kv_cap, str, strlen(str));
}

static void
kv_key(synth *s, const char *key, uint32_t type)
{
    kv_put_str(s, key);
    kv_put_le(s, type, 4);
    s->n_kv++;
}

static uint32_t
f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

void
synth_init(synth *s, uint32_t version)
{
    memset(s, 0, sizeof(*s));
    s->version = version;
    s->alignment = 32;
}

void
synth_kv_u32(synth *s, const char *key, uint32_t v)
{
    kv_key(s, key, 4);
    kv_put_le(s, v, 4);
}

void
synth_kv_i32(synth *s, const char *key, int32_t v)
{
    kv_key(s, key, 5);
    kv_put_le(s, (uint32_t)v, 4);
}

void
synth_kv_f32(synth *s, const char *key, float v)
{
    kv_key(s, key, 6);
    kv_put_le(s, f32_bits(v), 4);
}

void
synth_kv_bool(synth *s, const char *key, int v)
{
    kv_key(s, key, 7);
    kv_put_le(s, (uint64_t)v, 1);
}

void
synth_kv_str(synth *s, const char *key, const char *v)
{
    kv_key(s, key, 8);
    kv_put_str(s, v);
}

void
synth_kv_arr_str(synth *s, const char *key, const char *const *v, size_t n)
{
    kv_key(s, key, 9);
    kv_put_le(s, 8, 4);
    kv_put_le(s, n, 8);
    for (size_t i = 0; i < n; i++)
        kv_put_str(s, v[i]);
}

void
synth_kv_arr_f32(synth *s, const char *key, const float *v, size_t n)
{
    kv_key(s, key, 9);
    kv_put_le(s, 6, 4);
    kv_put_le(s, n, 8);
    for (size_t i = 0; i < n; i++)
        kv_put_le(s, f32_bits(v[i]), 4);
}

void
synth_kv_arr_i32(synth *s, const char *key, const int32_t *v, size_t n)
{
    kv_key(s, key, 9);
    kv_put_le(s, 5, 4);
    kv_put_le(s, n, 8);
    for (size_t i = 0; i < n; i++)
        kv_put_le(s, (uint32_t)v[i], 4);
}

void
synth_alignment(synth *s, uint32_t a)
{
    if (a && (a & (a - 1)) == 0)
        s->alignment = a; /* else keep laying out at 32: the file is meant to be bad */
    synth_kv_u32(s, "general.alignment", a);
}

void
synth_tensor(synth *s, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *dims,
             const void *data, size_t size)
{
    if (s->n_tensors == SYNTH_MAX_TENSORS)
        abort();
    size_t i = s->n_tensors++;
    strncpy(s->t[i].name, name, sizeof(s->t[i].name) - 1);
    s->t[i].type = type;
    s->t[i].n_dims = n_dims;
    for (uint32_t d = 0; d < n_dims && d < 4; d++)
        s->t[i].dims[d] = dims[d];
    s->t[i].data = data;
    s->t[i].size = size;
}

uint8_t *
synth_finish(synth *s, size_t *ret_len)
{
    uint8_t *p = NULL;
    size_t len = 0, cap = 0;
    put(&p, &len, &cap, "GGUF", 4);
    put_le(&p, &len, &cap, s->version, 4);
    put_le(&p, &len, &cap, s->n_tensors, 8);
    put_le(&p, &len, &cap, s->n_kv, 8);
    put(&p, &len, &cap, s->kv, s->kv_len);
    /* Relative data offsets, each aligned. */
    uint64_t rel[SYNTH_MAX_TENSORS], off = 0;
    for (size_t i = 0; i < s->n_tensors; i++) {
        rel[i] = off;
        off += s->t[i].size;
        off = (off + s->alignment - 1) / s->alignment * s->alignment;
    }
    for (size_t i = 0; i < s->n_tensors; i++) {
        s->ti_off[i] = len;
        put_le(&p, &len, &cap, strlen(s->t[i].name), 8);
        put(&p, &len, &cap, s->t[i].name, strlen(s->t[i].name));
        put_le(&p, &len, &cap, s->t[i].n_dims, 4);
        for (uint32_t d = 0; d < s->t[i].n_dims; d++)
            put_le(&p, &len, &cap, s->t[i].dims[d], 8);
        put_le(&p, &len, &cap, s->t[i].type, 4);
        put_le(&p, &len, &cap, rel[i], 8);
    }
    while (len % s->alignment)
        put_le(&p, &len, &cap, 0, 1);
    s->data_off = len;
    for (size_t i = 0; i < s->n_tensors; i++) {
        while (len < s->data_off + rel[i])
            put_le(&p, &len, &cap, 0, 1);
        s->data_abs[i] = len;
        put(&p, &len, &cap, s->t[i].data, s->t[i].size);
    }
    free(s->kv);
    s->kv = NULL;
    *ret_len = len;
    return p;
}

uint8_t *
synth_small(synth *s, size_t *ret_len)
{
    static const float a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    static uint8_t b[34];
    static const char *const toks[] = { "<unk>", "a", "bc" };
    static const float scores[] = { 0.0f, -1.5f, 2.25f };
    static const int32_t types[] = { 2, 1, 1 };
    for (int i = 0; i < 34; i++)
        b[i] = (uint8_t)i;
    synth_init(s, 3);
    synth_kv_str(s, "general.architecture", "llama");
    synth_alignment(s, 32);
    synth_kv_u32(s, "llama.block_count", 1);
    synth_kv_bool(s, "general.flag", 1);
    synth_kv_arr_str(s, "tokenizer.ggml.tokens", toks, 3);
    synth_kv_arr_f32(s, "tokenizer.ggml.scores", scores, 3);
    synth_kv_arr_i32(s, "tokenizer.ggml.token_type", types, 3);
    synth_kv_u32(s, "tokenizer.ggml.bos_token_id", 1);
    const uint64_t da[2] = { 4, 2 }, db[2] = { 32, 1 };
    synth_tensor(s, "a", 0, 2, da, a, sizeof(a));
    synth_tensor(s, "b", 8, 2, db, b, sizeof(b));
    return synth_finish(s, ret_len);
}
