/* SPDX-License-Identifier: MIT */
/*
 * Architecture hyper-parameters from GGUF metadata: which of the supported
 * transformer variants a file is (general.architecture) and the
 * "{arch}.*" keys that size it. Everything the forward pass needs to know
 * about an architecture that is not a tensor is decided here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/internal.h"

static const struct {
    const char *name;
    bool rope_neox; /* llama.cpp's rope type by architecture */
} arch_table[_RT_ARCH_MAX] = {
    [RT_ARCH_LLAMA] = { "llama", false },
    [RT_ARCH_QWEN2] = { "qwen2", true },
    [RT_ARCH_PHI3] = { "phi3", true },
};

const char *
rt_arch_name(rt_arch a)
{
    return (unsigned)a < _RT_ARCH_MAX ? arch_table[a].name : "?";
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static int
refuse(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* key = "{arch}.{suffix}" in buf (keys are short: a fixed buffer). */
static const char *
key(char buf[static 96], rt_arch a, const char *suffix)
{
    snprintf(buf, 96, "%s.%s", arch_table[a].name, suffix);
    return buf;
}

/* RoPE scaling changes the rotation angles; this runtime implements none,
 * so any scaling other than "none" or a factor of 1 is refused by name
 * rather than run with the wrong positions. */
static int
check_rope_scaling(const rt_gguf *g, rt_arch a, char *why, size_t cap)
{
    char k[96];
    const char *s;
    uint64_t n;
    int r = rt_gguf_get_str(g, key(k, a, "rope.scaling.type"), &s, &n);
    if (r == 0 && !(n == 4 && memcmp(s, "none", 4) == 0))
        return refuse(why, cap, "metadata %s = %.*s: RoPE scaling is not supported", k,
                      (int)(n > 32 ? 32 : n), s);
    if (r < 0 && r != -ENOENT)
        return refuse(why, cap, "metadata %s is not a string", k);
    static const char *const factors[] = { "rope.scaling.factor", "rope.scale_linear" };
    for (unsigned i = 0; i < 2; i++) {
        float f;
        r = rt_gguf_get_f32(g, key(k, a, factors[i]), &f);
        if (r == 0 && f != 0.0f && f != 1.0f)
            return refuse(why, cap, "metadata %s = %g: RoPE scaling is not supported", k,
                          (double)f);
        if (r < 0 && r != -ENOENT)
            return refuse(why, cap, "metadata %s is not a float", k);
    }
    static const char *const factor_tensors[] = { "rope_factors_long.weight",
                                                  "rope_factors_short.weight",
                                                  "rope_freqs.weight" };
    rt_tensor_info t;
    for (unsigned i = 0; i < 3; i++)
        if (rt_gguf_tensor_find(g, factor_tensors[i], &t) != -ENOENT)
            return refuse(why, cap, "tensor %s (RoPE frequency factors) is not supported",
                          factor_tensors[i]);
    return 0;
}

int
rt__arch_config(const rt_gguf *g, rt_config *c, char *why, size_t cap)
{
    const char *name;
    uint64_t n;
    int r = rt_gguf_get_str(g, "general.architecture", &name, &n);
    if (r < 0)
        return refuse(why, cap, "metadata general.architecture is missing or not a string");
    rt_arch a = _RT_ARCH_MAX;
    for (unsigned i = 0; i < _RT_ARCH_MAX; i++)
        if (strlen(arch_table[i].name) == n && memcmp(arch_table[i].name, name, n) == 0)
            a = (rt_arch)i;
    if (a == _RT_ARCH_MAX) {
        /* The name comes from the file: print only printable ASCII. */
        char safe[33];
        size_t m = n < 32 ? (size_t)n : 32;
        for (size_t i = 0; i < m; i++)
            safe[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
        safe[m] = 0;
        return refuse(why, cap, "general.architecture = %s%s is not supported (llama, qwen2, phi3)",
                      safe, n > 32 ? "..." : "");
    }
    c->arch = a;
    c->rope_neox = arch_table[a].rope_neox;

    char k[96];
    static const char *const required[] = { "embedding_length", "feed_forward_length",
                                            "block_count", "attention.head_count",
                                            "context_length" };
    uint32_t *dst[] = { &c->dim, &c->hidden_dim, &c->n_layers, &c->n_heads, &c->model_seq_len };
    for (unsigned i = 0; i < 5; i++)
        if (rt_gguf_get_u32(g, key(k, a, required[i]), dst[i]) < 0)
            return refuse(why, cap, "metadata %s is missing or not an integer", k);
    c->n_kv_heads = c->n_heads;
    r = rt_gguf_get_u32(g, key(k, a, "attention.head_count_kv"), &c->n_kv_heads);
    if (r < 0 && r != -ENOENT)
        return refuse(why, cap, "metadata %s is not an integer", k);
    if (c->n_heads == 0 || c->dim % c->n_heads != 0)
        return refuse(why, cap, "%u heads do not divide the width %u", (unsigned)c->n_heads,
                      (unsigned)c->dim);
    if (c->n_kv_heads == 0 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return refuse(why, cap, "metadata %s = %u does not divide the %u query heads", k,
                      (unsigned)c->n_kv_heads, (unsigned)c->n_heads);
    r = rt_gguf_get_f32(g, key(k, a, "attention.layer_norm_rms_epsilon"), &c->norm_eps);
    if (r < 0 && r != -ENOENT)
        return refuse(why, cap, "metadata %s is not a float", k);
    r = rt_gguf_get_f32(g, key(k, a, "rope.freq_base"), &c->rope_theta);
    if (r < 0 && r != -ENOENT)
        return refuse(why, cap, "metadata %s is not a float", k);
    uint32_t v;
    r = rt_gguf_get_u32(g, key(k, a, "rope.dimension_count"), &v);
    if ((r < 0 && r != -ENOENT) || (r == 0 && v != c->dim / c->n_heads))
        return refuse(why, cap, "metadata %s = %u differs from the head size %u (not supported)", k,
                      (unsigned)v, (unsigned)(c->dim / c->n_heads));
    return check_rope_scaling(g, a, why, cap);
}
