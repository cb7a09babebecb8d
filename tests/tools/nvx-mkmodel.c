/* SPDX-License-Identifier: MIT */
/*
 * nvx-mkmodel: writes a synthetic llama GGUF model with deterministic
 * pseudo-random weights and a byte-level SentencePiece vocabulary, so that
 * `nvx run` runs it (the text is noise, the mechanics are real). Used by the
 * README demo, the benchmarks and the dedup bench: the same options and seed
 * always give the same bytes, and --name changes only the metadata.
 *
 *   nvx-mkmodel -o OUT.gguf [--dim 64] [--hidden 172] [--layers 4]
 *               [--heads 4] [--kv-heads 4] [--vocab 512] [--seq 128]
 *               [--type f32|f16|q8_0|q4_0] [--seed 1] [--name STR]
 *               [--separate-output]
 *
 * Vocabulary: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, then
 * (vocab - 259) two-letter pieces "▁a", "ab", ... with falling scores.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf-write.h"
#include "runtime/quantize.h"
#include "runtime/tokenizer.h"

typedef struct cfg {
    long dim, hidden, layers, heads, kv_heads, vocab, seq, seed;
    const char *type, *name, *out;
    int separate_output;
} cfg;

static uint64_t rng_state;

static float
rnd(void)
{
    /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t x = rng_state * 0x2545F4914F6CDD1Dull;
    return (float)(x >> 40) / 8388608.0f - 1.0f;
}

static int
usage(void)
{
    fprintf(stderr, "usage: nvx-mkmodel -o OUT.gguf [--dim N] [--hidden N] [--layers N] "
                    "[--heads N] [--kv-heads N] [--vocab N] [--seq N] "
                    "[--type f32|f16|q8_0|q4_0] [--seed N] [--name STR] [--separate-output]\n");
    return 2;
}

static int
parse(int argc, char **argv, cfg *c)
{
    *c = (cfg){ 64, 172, 4, 4, 4, 512, 128, 1, "f32", "nvx-synthetic", NULL, 0 };
    struct {
        const char *name;
        long *dest;
    } nums[] = { { "--dim", &c->dim },           { "--hidden", &c->hidden },
                 { "--layers", &c->layers },     { "--heads", &c->heads },
                 { "--kv-heads", &c->kv_heads }, { "--vocab", &c->vocab },
                 { "--seq", &c->seq },           { "--seed", &c->seed } };
    for (int i = 1; i < argc; i++) {
        int done = 0;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(argv[i], nums[k].name) == 0 && i + 1 < argc) {
                char *end;
                *nums[k].dest = strtol(argv[++i], &end, 10);
                if (*end || *nums[k].dest < 0)
                    return -EINVAL;
                done = 1;
            }
        }
        if (done)
            continue;
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            c->out = argv[++i];
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            c->type = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            c->name = argv[++i];
        else if (strcmp(argv[i], "--separate-output") == 0)
            c->separate_output = 1;
        else
            return -EINVAL;
    }
    if (!c->out || c->dim < 2 || c->heads < 1 || c->kv_heads < 1 || c->dim % c->heads ||
        c->heads % c->kv_heads || (c->dim / c->heads) % 2 || c->hidden < 1 || c->layers < 1 ||
        c->vocab < 259 || c->vocab > RT_TOK_MAX_VOCAB || c->seq < 1 || c->dim > 65536 ||
        c->hidden > 262144 || c->layers > 1024)
        return -EINVAL;
    return 0;
}

static rt_type
type_of(const char *s)
{
    if (strcmp(s, "f16") == 0)
        return RT_TYPE_F16;
    if (strcmp(s, "q8_0") == 0)
        return RT_TYPE_Q8_0;
    if (strcmp(s, "q4_0") == 0)
        return RT_TYPE_Q4_0;
    if (strcmp(s, "f32") == 0)
        return RT_TYPE_F32;
    return _RT_TYPE_MAX;
}

static void **bufs;
static size_t n_bufs;

/* Adds a tensor of rows x cols random weights (scale) or ones (norm). */
static int
add(rt_gguf_writer *w, const char *name, long cols, long rows, rt_type want, float scale)
{
    size_t n = (size_t)cols * (size_t)rows;
    float *x = malloc(n * sizeof(float));
    if (!x)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        x[i] = scale > 0.0f ? scale * rnd() : 1.0f;
    rt_type t = rows == 1 ? RT_TYPE_F32 : want;
    if ((t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0) && cols % 32)
        t = RT_TYPE_F16; /* GGUF blocks cannot hold such rows */
    uint64_t size;
    int r = rt_type_size(t, n, (uint64_t)cols, &size);
    if (r < 0) {
        free(x);
        return r;
    }
    uint8_t *out = malloc((size_t)size);
    if (!out) {
        free(x);
        return -ENOMEM;
    }
    for (long i = 0; i < rows; i++) {
        const float *row = x + (size_t)i * (size_t)cols;
        uint8_t *o = out + (size_t)i * (size_t)(size / (uint64_t)rows);
        if (t == RT_TYPE_F32)
            memcpy(o, row, (size_t)cols * sizeof(float));
        else if (t == RT_TYPE_F16)
            for (long j = 0; j < cols; j++) {
                uint16_t h = rt_quant_f16(row[j]);
                o[2 * j] = (uint8_t)h;
                o[2 * j + 1] = (uint8_t)(h >> 8);
            }
        else if (t == RT_TYPE_Q8_0)
            rt_quant_row_q8_0(row, o, (size_t)cols);
        else
            rt_quant_row_q4_0(row, o, (size_t)cols);
    }
    free(x);
    void **nb = realloc(bufs, (n_bufs + 1) * sizeof(*nb));
    if (!nb) {
        free(out);
        return -ENOMEM;
    }
    bufs = nb;
    bufs[n_bufs++] = out;
    uint64_t dims[2] = { (uint64_t)cols, (uint64_t)rows };
    return rt_gguf_writer_add_tensor(w, name, t, rows == 1 ? 1 : 2, dims, out, size);
}

static int
add_vocab(rt_gguf_writer *w, long vocab)
{
    rt_tokenizer *t = NULL;
    int r = rt_tokenizer_new((uint32_t)vocab, &t);
    if (r < 0)
        return r;
    rt_tokenizer_set(t, 0, "<unk>", 5, 0.0f, RT_TOK_TYPE_UNKNOWN, false);
    rt_tokenizer_set(t, 1, "<s>", 3, 0.0f, RT_TOK_TYPE_CONTROL, false);
    rt_tokenizer_set(t, 2, "</s>", 4, 0.0f, RT_TOK_TYPE_CONTROL, false);
    for (int b = 0; b < 256; b++) {
        char p[7];
        snprintf(p, sizeof(p), "<0x%02X>", b);
        rt_tokenizer_set(t, (uint32_t)(3 + b), p, 6, 0.0f, RT_TOK_TYPE_BYTE, false);
    }
    /* Single letters first (so pairs can merge), then " x" and "xy" pairs. */
    static const char letters[] = " etaoinshrdlucmfwypvbgkqjxz";
    long id = 259;
    for (size_t i = 0; letters[i] && id < vocab; i++, id++)
        rt_tokenizer_set(t, (uint32_t)id, &letters[i], 1, -(float)(id - 259), RT_TOK_TYPE_NORMAL,
                         false);
    for (size_t i = 0; letters[i] && id < vocab; i++)
        for (size_t j = 1; letters[j] && id < vocab; j++, id++) {
            char p[2] = { letters[i], letters[j] };
            rt_tokenizer_set(t, (uint32_t)id, p, 2, -(float)(id - 259), RT_TOK_TYPE_NORMAL, false);
        }
    for (; id < vocab; id++) {
        char p[16];
        int n = snprintf(p, sizeof(p), "<extra_%ld>", id);
        rt_tokenizer_set(t, (uint32_t)id, p, (size_t)n, -1e9f, RT_TOK_TYPE_USER_DEFINED, false);
    }
    r = rt_tokenizer_finish(t);
    if (r >= 0)
        r = rt_quant_add_vocab(w, t);
    rt_tokenizer_free(t);
    return r;
}

int
main(int argc, char **argv)
{
    cfg c;
    if (parse(argc, argv, &c) < 0)
        return usage();
    rt_type t = type_of(c.type);
    if (t == _RT_TYPE_MAX)
        return usage();
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)c.seed * 0xBF58476D1CE4E5B9ull;
    if (!rng_state)
        rng_state = 1;
    rt_gguf_writer *w = NULL;
    int r = rt_gguf_writer_new(0, &w);
    long hs = c.dim / c.heads, kvd = hs * c.kv_heads;
    if (r >= 0)
        r = rt_gguf_writer_add_str(w, "general.architecture", "llama", 5);
    if (r >= 0)
        r = rt_gguf_writer_add_str(w, "general.name", c.name, strlen(c.name));
    struct {
        const char *k;
        long v;
    } kv[] = {
        { "llama.context_length", c.seq },         { "llama.embedding_length", c.dim },
        { "llama.feed_forward_length", c.hidden }, { "llama.block_count", c.layers },
        { "llama.attention.head_count", c.heads }, { "llama.attention.head_count_kv", c.kv_heads },
        { "llama.rope.dimension_count", hs }
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]) && r >= 0; i++)
        r = rt_gguf_writer_add_u32(w, kv[i].k, (uint32_t)kv[i].v);
    if (r >= 0)
        r = rt_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (r >= 0)
        r = rt_gguf_writer_add_u32(w, "general.file_type",
                                   t == RT_TYPE_F32    ? 0
                                   : t == RT_TYPE_F16  ? 1
                                   : t == RT_TYPE_Q4_0 ? 2
                                                       : 7);
    if (r >= 0 && (t == RT_TYPE_Q8_0 || t == RT_TYPE_Q4_0))
        r = rt_gguf_writer_add_u32(w, "general.quantization_version", 2);
    if (r >= 0)
        r = add_vocab(w, c.vocab);
    /* Weights ~ U(-1,1) / sqrt(fan_in): activations stay O(1) through the layers. */
    float s_dim = 1.0f / sqrtf((float)c.dim), s_hid = 1.0f / sqrtf((float)c.hidden);
    if (r >= 0)
        r = add(w, "token_embd.weight", c.dim, c.vocab, t, 1.0f);
    if (r >= 0)
        r = add(w, "output_norm.weight", c.dim, 1, t, 0.0f);
    if (r >= 0 && c.separate_output)
        r = add(w, "output.weight", c.dim, c.vocab, t, s_dim);
    for (long l = 0; l < c.layers && r >= 0; l++) {
        char n[64];
#define LAYER(suffix, cols, rows, scale)                 \
    do {                                                 \
        snprintf(n, sizeof(n), "blk.%ld.%s", l, suffix); \
        if (r >= 0)                                      \
            r = add(w, n, cols, rows, t, scale);         \
    } while (0)
        LAYER("attn_norm.weight", c.dim, 1, 0.0f);
        LAYER("attn_q.weight", c.dim, c.dim, s_dim);
        LAYER("attn_k.weight", c.dim, kvd, s_dim);
        LAYER("attn_v.weight", c.dim, kvd, s_dim);
        LAYER("attn_output.weight", c.dim, c.dim, s_dim);
        LAYER("ffn_norm.weight", c.dim, 1, 0.0f);
        LAYER("ffn_gate.weight", c.dim, c.hidden, s_dim);
        LAYER("ffn_down.weight", c.hidden, c.dim, s_hid);
        LAYER("ffn_up.weight", c.dim, c.hidden, s_dim);
#undef LAYER
    }
    if (r >= 0)
        r = rt_gguf_writer_write_file(w, c.out);
    if (r < 0)
        fprintf(stderr, "nvx-mkmodel: cannot write %s: %s\n", c.out, strerror(-r));
    else
        printf("%s: %llu bytes\n", c.out, (unsigned long long)rt_gguf_writer_size(w));
    rt_gguf_writer_free(w);
    for (size_t i = 0; i < n_bufs; i++)
        free(bufs[i]);
    free(bufs);
    return r < 0 ? 1 : 0;
}
