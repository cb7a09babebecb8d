/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/model-file.h"
#include "runtime/model.h"
#include "synth.h"
#include "testutil.h"

/* reference.md, section 1: greedy ids after BOS for aidreams260K. */
static const int ref_ids[128] = {
    319, 459, 355, 260, 275, 429, 339, 315, 374, 327, 446, 262, 421, 392, 275, 280, 269, 440, 270,
    283, 446, 299, 303, 266, 358, 430, 312, 379, 441, 260, 446, 262, 421, 392, 275, 280, 269, 440,
    270, 283, 446, 299, 303, 384, 467, 407, 360, 266, 291, 443, 435, 295, 448, 429, 465, 265, 434,
    317, 431, 434, 289, 408, 326, 446, 262, 266, 437, 443, 434, 438, 451, 306, 295, 445, 434, 432,
    339, 279, 432, 375, 410, 275, 280, 269, 440, 270, 283, 448, 429, 465, 265, 434, 317, 431, 434,
    389, 437, 393, 446, 299, 303, 266, 432, 445, 439, 265, 325, 275, 429, 339, 315, 374, 448, 429,
    465, 265, 434, 317, 431, 434, 289, 418, 321, 278, 416, 446, 262, 421,
};

/* reference.md, section 2: prompt "I dreamed" (ids given there) and the
 * greedy continuation, 128 ids after BOS in all. */
static const int ref_prompt_ids[128] = {
    303, 281, 269, 435, 447, 328, 446, 299, 303, 266, 358, 430, 312, 379, 441, 260, 446, 262, 421,
    392, 275, 280, 302, 450, 405, 403, 399, 448, 429, 465, 265, 434, 317, 431, 434, 289, 408, 326,
    446, 262, 279, 438, 349, 261, 446, 299, 303, 384, 467, 407, 446, 299, 303, 266, 323, 434, 285,
    362, 262, 263, 428, 434, 436, 451, 275, 429, 339, 315, 374, 448, 429, 465, 265, 434, 317, 431,
    434, 289, 418, 321, 278, 416, 446, 262, 429, 453, 435, 285, 361, 437, 431, 440, 437, 445, 430,
    275, 280, 302, 450, 405, 403, 399, 448, 429, 465, 265, 434, 317, 431, 434, 289, 408, 326, 446,
    262, 263, 428, 434, 436, 451, 275, 280, 302, 450, 405, 403, 434, 346,
};

static int
argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (int)best;
}

/* Greedy decoding from BOS over positions 0..steps-1; writes ids. */
static void
greedy(rt_model *m, int steps, int *ids)
{
    int tok = 1;
    for (int pos = 0; pos < steps; pos++) {
        float *logits = rt_forward(m, tok, pos);
        assert_non_null(logits);
        tok = argmax(logits, rt_model_config(m)->vocab_size);
        ids[pos] = tok;
    }
}

static int
count_equal(const int *a, const int *b, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += a[i] == b[i];
    return k;
}

static uint8_t *
load(const char *name, size_t *len)
{
    char *path = tu_model_path(name);
    if (!path)
        return NULL;
    uint8_t *f;
    assert_int_equal(tu_read_file(path, &f, len), 0);
    free(path);
    return f;
}

/* Builds a model in a malloc'd arena of exactly the planned size. */
static rt_model *
make(const uint8_t *f, size_t len, const rt_model_opts *o, void **ret_arena)
{
    rt_arena_report rep;
    assert_int_equal(rt_model_plan(f, len, o, &rep), 0);
    assert_int_equal(rep.total, rep.weights + rep.activations + rep.kv_cache + rep.other);
    void *arena = aligned_alloc(RT_ARENA_ALIGN, (rep.total + 63) / 64 * 64);
    rt_model *m;
    rt_arena_report rep2;
    assert_int_equal(rt_model_init(f, len, o, arena, rep.total, &m, &rep2), 0);
    assert_memory_equal(&rep, &rep2, sizeof(rep));
    *ret_arena = arena;
    return m;
}

static void
run_reference(const char *name, rt_kernels k)
{
    size_t len;
    uint8_t *f = load(name, &len);
    if (!f)
        skip();
    if (k == RT_KERNELS_SIMD && !rt_simd_available()) {
        free(f);
        skip();
    }
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kernels = k;
    void *arena;
    rt_model *m = make(f, len, &o, &arena);
    const rt_config *c = rt_model_config(m);
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->seq_len, 128);
    int ids[128];
    greedy(m, 128, ids);
    assert_memory_equal(ids, ref_ids, sizeof(ids));
    /* With the prompt: its 6 tokens are forced, then greedy. */
    int tok = 1;
    for (int pos = 0; pos < 128; pos++) {
        float *logits = rt_forward(m, tok, pos);
        assert_non_null(logits);
        tok = pos < 6 ? ref_prompt_ids[pos] : argmax(logits, 512);
        ids[pos] = tok;
    }
    assert_memory_equal(ids, ref_prompt_ids, sizeof(ids));
    free(arena);
    free(f);
}

/* stories260K: 5 layers, 8 heads on 4 kv heads, 512 positions. No reference
 * text exists for it; portable and SIMD must agree closely over the whole
 * context. */
static void
test_stories_gqa(void **state)
{
    size_t len;
    uint8_t *f = load("stories260K.bin", &len);
    if (!f)
        skip();
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kernels = RT_KERNELS_PORTABLE;
    void *a1, *a2;
    rt_model *m1 = make(f, len, &o, &a1);
    o.kernels = RT_KERNELS_AUTO;
    rt_model *m2 = make(f, len, &o, &a2);
    assert_int_equal(rt_model_config(m1)->n_kv_heads, 4);
    assert_int_equal(rt_model_config(m1)->seq_len, 512);
    int tok = 1, same = 0;
    for (int pos = 0; pos < 512; pos++) {
        float *l1 = rt_forward(m1, tok, pos), *l2 = rt_forward(m2, tok, pos);
        int t1 = argmax(l1, 512), t2 = argmax(l2, 512);
        same += t1 == t2;
        tok = t1;
    }
    assert_true(same >= 500);
    free(a1);
    free(a2);
    free(f);
}

static void
test_bin_portable(void **state)
{
    run_reference("aidreams260K.bin", RT_KERNELS_PORTABLE);
}

static void
test_bin_simd(void **state)
{
    run_reference("aidreams260K.bin", RT_KERNELS_SIMD);
}

static void
test_gguf_f32(void **state)
{
    run_reference("aidreams260K-f32.gguf", RT_KERNELS_PORTABLE);
    run_reference("aidreams260K-f32.gguf", RT_KERNELS_AUTO);
}

/* The quantized GGUFs run, and agree with F32 greedy on most tokens; and
 * their portable and SIMD logits are bit-identical where all matrices are
 * block types ... F16 ffn_down may differ in the last bits, so compare ids. */
static void
test_gguf_quant(void **state)
{
    const char *names[] = { "aidreams260K-Q8_0-ffndownF16.gguf",
                            "aidreams260K-Q4_0-ffndownF16.gguf" };
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *f = load(names[i], &len);
        if (!f)
            skip();
        rt_model_opts o = RT_MODEL_OPTS_INIT;
        o.kernels = RT_KERNELS_PORTABLE;
        void *arena;
        rt_model *m = make(f, len, &o, &arena);
        int ids[128];
        greedy(m, 128, ids);
        int same = count_equal(ids, ref_ids, 128);
        printf("# %s: %d/128 greedy ids equal to F32 (prefix until first diff: ", names[i], same);
        int p = 0;
        while (p < 128 && ids[p] == ref_ids[p])
            p++;
        printf("%d)\n", p);
        assert_true(p >= (i == 0 ? 16 : 4));
        if (rt_simd_available()) {
            o.kernels = RT_KERNELS_SIMD;
            void *arena2;
            rt_model *m2 = make(f, len, &o, &arena2);
            int ids2[128];
            greedy(m2, 128, ids2);
            assert_true(count_equal(ids, ids2, 128) >= 120);
            free(arena2);
        }
        free(arena);
        free(f);
    }
}

/* Requantizing the F32 checkpoint in the arena; int8 KV cache. */
static void
test_requant_and_kv(void **state)
{
    size_t len;
    uint8_t *f = load("aidreams260K.bin", &len);
    if (!f)
        skip();
    struct {
        rt_requant rq;
        rt_kv_type kv;
        int min_prefix;
    } cases[] = {
        { RT_REQUANT_NONE, RT_KV_Q8, 16 },
        { RT_REQUANT_Q8_0, RT_KV_F32, 16 },
        { RT_REQUANT_Q4_0, RT_KV_F32, 2 },
        { RT_REQUANT_Q4_0, RT_KV_Q8, 2 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rt_model_opts o = RT_MODEL_OPTS_INIT;
        o.requant = cases[i].rq;
        o.kv_type = cases[i].kv;
        o.kernels = RT_KERNELS_PORTABLE;
        void *arena;
        rt_model *m = make(f, len, &o, &arena);
        int ids[128];
        greedy(m, 128, ids);
        int p = 0;
        while (p < 128 && ids[p] == ref_ids[p])
            p++;
        printf("# requant %d kv %d: %d/128 equal, prefix %d\n", cases[i].rq, cases[i].kv,
               count_equal(ids, ref_ids, 128), p);
        assert_true(p >= cases[i].min_prefix);
        if (rt_simd_available() && cases[i].rq != RT_REQUANT_NONE) {
            /* Every matrix is a block type, so the matrix products are
             * bit-identical (test-kernels); attention scores use the float
             * dot product, whose summation order differs: logits agree to
             * float rounding. */
            o.kernels = RT_KERNELS_SIMD;
            void *arena2;
            rt_model *m2 = make(f, len, &o, &arena2);
            for (int pos = 0; pos < 8; pos++) {
                float *a = rt_forward(m, 5 + pos, pos), *b = rt_forward(m2, 5 + pos, pos);
                for (int j = 0; j < 512; j++)
                    assert_true(fabsf(a[j] - b[j]) <= 1e-4f * (fabsf(a[j]) + 1.0f));
            }
            free(arena2);
        }
        free(arena);
    }
    free(f);
}

/* The microcontroller configuration: everything in one arena <= 256 KiB,
 * weights copied (file not needed after init), Q4_0, int8 KV, 128 positions. */
static void
test_arena_mcu(void **state)
{
    size_t len;
    uint8_t *f = load("aidreams260K.bin", &len);
    if (!f)
        skip();
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.requant = RT_REQUANT_Q4_0;
    o.kv_type = RT_KV_Q8;
    o.copy_weights = true;
    rt_arena_report rep;
    assert_int_equal(rt_model_plan(f, len, &o, &rep), 0);
    printf("# mcu arena: weights %zu activations %zu kv %zu other %zu total %zu\n", rep.weights,
           rep.activations, rep.kv_cache, rep.other, rep.total);
    assert_true(rep.total <= 256 * 1024);
    assert_int_equal(rep.file_weights, 0);
    assert_int_equal(rep.kv_cache, 4 * 128 * 64 * 2 + 4 * 128 * 4 * 2 * 4);
    /* Q4_0 blocks of 18 bytes: embedding 512x2, per layer q/k/v/o 64x2,
     * gate/up 172x2, down 64x6 (172 padded to 192), plus F32 norms. */
    assert_int_equal(rep.weights, 512 * 2 * 18 +
                                      4 * (4 * 64 * 2 * 18 + 2 * 172 * 2 * 18 + 64 * 6 * 18) +
                                      9 * 64 * 4);
    /* x, xb, xb2, q [64]; hb, hb2 [192]; att [128]; logits [512]; xq 6 blocks. */
    assert_int_equal(rep.activations, 4 * 64 * 4 + 2 * 192 * 4 + 128 * 4 + 512 * 4 + 6 * 36);

    /* With the embedding/classifier in Q8_0 (better quality) it still fits. */
    rt_model_opts o8 = o;
    o8.embd_q8 = true;
    rt_arena_report rep8;
    assert_int_equal(rt_model_plan(f, len, &o8, &rep8), 0);
    printf("# mcu arena with q8_0 embedding: total %zu\n", rep8.total);
    assert_true(rep8.total <= 256 * 1024 && rep8.weights == rep.weights + 512 * 2 * (34 - 18));

    /* Too small by one byte: -ENOMEM with the report. */
    uint8_t *arena = malloc(rep.total + 2 * RT_ARENA_ALIGN);
    uint8_t *base = arena + (RT_ARENA_ALIGN - (uintptr_t)arena % RT_ARENA_ALIGN) % RT_ARENA_ALIGN;
    rt_model *m;
    rt_arena_report got;
    assert_int_equal(rt_model_init(f, len, &o, base, rep.total - 1, &m, &got), -ENOMEM);
    assert_int_equal(got.total, rep.total);
    /* A misaligned start needs the alignment slack on top. */
    assert_int_equal(rt_model_init(f, len, &o, base + 1, rep.total, &m, NULL), -ENOMEM);
    assert_int_equal(rt_model_init(f, len, &o, base + 1, rep.total + RT_ARENA_ALIGN - 1, &m, NULL),
                     0);
    /* A malloc'd block of exactly total bytes works. */
    void *exact = malloc(rep.total);
    assert_int_equal(rt_model_init(f, len, &o, exact, rep.total, &m, NULL), 0);
    assert_non_null(rt_forward(m, 1, 0));
    free(exact);
    /* Exact size works, and the file may go away. */
    assert_int_equal(rt_model_init(f, len, &o, base, rep.total, &m, NULL), 0);
    memset(f, 0xff, len);
    free(f);
    int ids[128];
    greedy(m, 128, ids);
    printf("# mcu greedy: %d/128 ids equal to F32\n", count_equal(ids, ref_ids, 128));
    assert_true(ids[0] == ref_ids[0]);
    free(arena);
}

static void
test_bad_args(void **state)
{
    size_t len;
    uint8_t *f = load("aidreams260K.bin", &len);
    if (!f)
        skip();
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    void *arena;
    rt_model *m = make(f, len, &o, &arena);
    assert_null(rt_forward(m, -1, 0));
    assert_null(rt_forward(m, 512, 0));
    assert_null(rt_forward(m, 1, 128));
    assert_null(rt_forward(m, 1, -1));
    assert_non_null(rt_forward(m, 511, 127));
    o.kv_type = (rt_kv_type)7;
    rt_arena_report rep;
    assert_int_equal(rt_model_plan(f, len, &o, &rep), -EINVAL);
    o = (rt_model_opts)RT_MODEL_OPTS_INIT;
    o.seq_len = 16;
    assert_int_equal(rt_model_plan(f, len, &o, &rep), 0);
    /* Truncated model: malformed. */
    assert_int_equal(rt_model_plan(f, len - 4, NULL, &rep), -EBADMSG);
    free(arena);
    free(f);
}

static void
test_mmap(void **state)
{
    char *path = tu_model_path("aidreams260K-f32.gguf");
    if (!path)
        skip();
    rt_model_file *mf;
    assert_int_equal(rt_model_file_open(path, NULL, &mf), 0);
    rt_model *m = rt_model_file_model(mf);
    assert_int_equal(rt_model_report(m)->weights, 0); /* zero-copy */
    int ids[16];
    greedy(m, 16, ids);
    assert_memory_equal(ids, ref_ids, sizeof(ids));
    rt_model_file_close(mf);
    assert_int_equal(rt_model_file_open("/nonexistent/x", NULL, &mf), -ENOENT);
    free(path);
}

/* Every model type of the shared files: F32, Q8_0, Q4_0 (with F16
 * ffn_down), llama2.c, and the K-quant and Q8_0 real architectures. */
static const char *const batch_models[] = {
    "aidreams260K-f32.gguf",
    "aidreams260K-Q8_0-ffndownF16.gguf",
    "aidreams260K-Q4_0-ffndownF16.gguf",
    "stories260K.bin",
    "realarch/llama-gqa-Q4_K_M.gguf",
    "realarch/llama-gqa-Q6_K.gguf",
    "realarch/qwen2-gqa-Q8_0.gguf",
    "realarch/qwen2-gqa-Q4_K_M.gguf",
    "realarch/phi3-Q4_K_M.gguf",
};

enum {
    BATCH_SEQ = 70 /* a full batch and a part */
};

/* Feeds n tokens in batches of `batch` (0: one rt_forward per token), then
 * one more token; copies the logits after the prompt and after the extra
 * token into ret_prompt and ret_next [vocab]. */
static void
feed(rt_model *m, const int32_t *toks, size_t n, size_t batch, float *ret_prompt, float *ret_next)
{
    size_t vocab = rt_model_config(m)->vocab_size;
    float *logits = NULL;
    void *scratch = NULL;
    if (batch) {
        size_t size = rt_batch_scratch_size(m, batch);
        assert_true(size > 0);
        scratch = aligned_alloc(RT_ARENA_ALIGN,
                                (size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
        for (size_t pos = 0; pos < n; pos += batch) {
            size_t k = n - pos < batch ? n - pos : batch;
            assert_int_equal(rt_forward_batch(m, toks + pos, k, (int)pos, scratch, size, &logits),
                             0);
        }
    } else {
        for (size_t pos = 0; pos < n; pos++)
            assert_non_null(logits = rt_forward(m, toks[pos], (int)pos));
    }
    memcpy(ret_prompt, logits, vocab * 4);
    assert_non_null(logits = rt_forward(m, toks[n], (int)n));
    memcpy(ret_next, logits, vocab * 4);
    free(scratch);
}

/* Batched prompt processing is bit-identical to one token at a time, for
 * every tensor type and KV cache type: the logits after the prompt and
 * after one more token (which reads the batch's KV cache). */
static void
test_batch_exact(void **state)
{
    int ran = 0;
    for (size_t i = 0; i < sizeof(batch_models) / sizeof(batch_models[0]); i++) {
        /* Under qemu, one model per kernel family (Q8_0 + F16, Q4_0,
         * Q4_K + Q6_K, Q5_K): all nine take minutes there. */
        if (tu_emulated() && i != 1 && i != 2 && i != 4 && i != 8)
            continue;
        char *path = tu_model_path(batch_models[i]);
        if (!path)
            continue;
        for (int kv = 0; kv < _RT_KV_TYPE_MAX; kv++) {
            rt_model_opts o = RT_MODEL_OPTS_INIT;
            o.kv_type = (rt_kv_type)kv;
            o.seq_len = BATCH_SEQ + 2;
            rt_model_file *mf;
            assert_int_equal(rt_model_file_open(path, &o, &mf), 0);
            rt_model *m = rt_model_file_model(mf);
            size_t vocab = rt_model_config(m)->vocab_size;
            int32_t toks[BATCH_SEQ + 1];
            for (size_t t = 0; t <= BATCH_SEQ; t++)
                toks[t] = (int32_t)((t * 37 + 5) % vocab);
            float *a = malloc(vocab * 4), *a2 = malloc(vocab * 4);
            float *b = malloc(vocab * 4), *b2 = malloc(vocab * 4);
            feed(m, toks, BATCH_SEQ, 0, a, a2);
            size_t sizes[] = { RT_BATCH_MAX, 5, 1 };
            for (size_t j = 0; j < 3; j++) {
                feed(m, toks, BATCH_SEQ, sizes[j], b, b2);
                if (memcmp(a, b, vocab * 4) != 0 || memcmp(a2, b2, vocab * 4) != 0)
                    fail_msg("%s kv %d batch %zu: logits differ", batch_models[i], kv, sizes[j]);
            }
            free(a);
            free(a2);
            free(b);
            free(b2);
            rt_model_file_close(mf);
            ran++;
        }
        free(path);
    }
    printf("# batched = token by token on %d model/cache pairs\n", ran);
    if (!ran)
        skip();
}

/* Out-of-range batches are refused without touching the state. */
static void
test_batch_args(void **state)
{
    char *path = tu_model_path("aidreams260K-f32.gguf");
    if (!path)
        skip();
    rt_model_file *mf;
    assert_int_equal(rt_model_file_open(path, NULL, &mf), 0);
    rt_model *m = rt_model_file_model(mf);
    uint32_t seq = rt_model_config(m)->seq_len;
    assert_int_equal(rt_batch_scratch_size(m, 0), 0);
    assert_int_equal(rt_batch_scratch_size(m, RT_BATCH_MAX + 1), 0);
    assert_int_equal(rt_batch_scratch_size(NULL, 1), 0);
    size_t size = rt_batch_scratch_size(m, 2);
    void *scratch =
        aligned_alloc(RT_ARENA_ALIGN, (size + RT_ARENA_ALIGN) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    int32_t toks[2] = { 1, 2 }, bad[2] = { 1, 512 };
    float *logits = NULL;
    assert_int_equal(rt_forward_batch(m, toks, 2, 0, scratch, size - 1, &logits), -EINVAL);
    assert_int_equal(rt_forward_batch(m, bad, 2, 0, scratch, size, &logits), -EINVAL);
    assert_int_equal(rt_forward_batch(m, toks, 2, (int)seq - 1, scratch, size, &logits), -EINVAL);
    assert_int_equal(rt_forward_batch(m, toks, 0, 0, scratch, size, &logits), -EINVAL);
    assert_int_equal(rt_forward_batch(m, toks, 2, -1, scratch, size, &logits), -EINVAL);
    assert_int_equal(rt_forward_batch(m, toks, 2, 0, (uint8_t *)scratch + 1, size, &logits),
                     -EINVAL);
    assert_null(logits);
    assert_int_equal(rt_forward_batch(m, toks, 2, (int)seq - 2, scratch, size, &logits), 0);
    assert_non_null(logits);
    free(scratch);
    rt_model_file_close(mf);
    free(path);
}

/* A tiny synthetic llama GGUF with every computable type mixed (Q8_0
 * embedding, Q4_0 classifier, F32/F16 matrices, F16 40-wide ffn_down, GQA
 * 2 heads on 1 kv head); runs without the shared models. */
static void
test_mixed_types(void **state)
{
    const char *root = getenv("NVX_SOURCE_ROOT");
    if (!root)
        skip();
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/gguf/tiny-llama.gguf", root);
    uint8_t *f;
    size_t len;
    assert_int_equal(tu_read_file(path, &f, &len), 0);
    float ref[8];
    for (int v = 0; v < 4; v++) {
        rt_model_opts o = RT_MODEL_OPTS_INIT;
        o.kernels = v == 3 ? RT_KERNELS_AUTO : RT_KERNELS_PORTABLE;
        o.requant = v == 1 ? RT_REQUANT_Q8_0 : v == 2 ? RT_REQUANT_Q4_0 : RT_REQUANT_NONE;
        o.kv_type = v == 2 ? RT_KV_Q8 : RT_KV_F32;
        void *arena;
        rt_model *m = make(f, len, &o, &arena);
        const rt_config *c = rt_model_config(m);
        assert_int_equal(c->n_heads, 2);
        assert_int_equal(c->n_kv_heads, 1);
        assert_int_equal(c->vocab_size, 8);
        assert_false(c->shared_classifier);
        float *l = NULL;
        for (int pos = 0; pos < 4; pos++)
            l = rt_forward(m, pos * 2 + 1, pos);
        printf("# mixed v%d:", v);
        for (int i = 0; i < 8; i++)
            printf(" %.4f", l[i]);
        printf("\n");
        for (int i = 0; i < 8; i++) {
            assert_true(isfinite(l[i]));
            if (v == 0)
                ref[i] = l[i];
            else if (v == 3)
                assert_true(fabsf(l[i] - ref[i]) <= 1e-4f * (fabsf(ref[i]) + 1.0f));
            else /* Q8_0: within 10%; Q4_0 of uniform noise: 25% */
                assert_true(fabsf(l[i] - ref[i]) <=
                            (v == 1 ? 0.1f : 0.25f) * (fabsf(ref[i]) + 1.0f));
        }
        free(arena);
    }
    free(f);
}

/* Two extra states on one model, stepped alternately: each sequence gives
 * its reference ids as if it ran alone. */
static void
test_states(void **state)
{
    size_t len;
    uint8_t *f = load("aidreams260K.bin", &len);
    if (!f)
        skip();
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    void *arena;
    rt_model *m = make(f, len, &o, &arena);
    size_t need;
    assert_int_equal(rt_state_plan(m, RT_KV_F32, 0, &need), 0);
    assert_int_equal(rt_state_plan(m, RT_KV_F32, 129, &need), -EINVAL);
    assert_int_equal(rt_state_plan(m, RT_KV_F32, 0, &need), 0);
    void *ma = malloc(need), *mb = malloc(need);
    rt_state *a, *b;
    assert_int_equal(rt_state_init(m, RT_KV_F32, 0, ma, need - 1, &a), -ENOMEM);
    assert_int_equal(rt_state_init(m, RT_KV_F32, 0, ma, need, &a), 0);
    assert_int_equal(rt_state_init(m, RT_KV_F32, 0, mb, need, &b), 0);
    int ta = 1, tb = 1;
    for (int pos = 0; pos < 128; pos++) {
        float *la = rt_state_forward(a, ta, pos);
        ta = argmax(la, 512);
        assert_int_equal(ta, ref_ids[pos]);
        float *lb = rt_state_forward(b, tb, pos);
        tb = pos < 6 ? ref_prompt_ids[pos] : argmax(lb, 512);
        assert_int_equal(tb, ref_prompt_ids[pos]);
        /* The model's own state is untouched by the others. */
        if (pos == 0)
            assert_non_null(rt_forward(m, 1, 0));
    }
    assert_null(rt_state_forward(a, 1, 128));
    /* A short int8-KV state. */
    assert_int_equal(rt_state_plan(m, RT_KV_Q8, 16, &need), 0);
    void *mc = malloc(need);
    rt_state *c;
    assert_int_equal(rt_state_init(m, RT_KV_Q8, 16, mc, need, &c), 0);
    assert_non_null(rt_state_forward(c, 1, 15));
    assert_null(rt_state_forward(c, 1, 16));
    free(mc);
    free(ma);
    free(mb);
    free(arena);
    free(f);
}

/* A tiny llama GGUF built from the specification (synth.c), with one thing
 * broken per variant; the loader must refuse each with -EBADMSG. */
enum {
    BAD_NONE,
    BAD_ARCH,
    BAD_MISSING,
    BAD_SHAPE,
    BAD_TYPE,
    BAD_ROPE,
    BAD_HEADS,
    BAD_DUP,      /* two tensors with one name: which one counts would depend on the reader */
    BAD_KV_HEADS, /* head_count_kv does not divide head_count */
    BAD_KV_SHAPE, /* head_count_kv says 2, attn_k has rows for 1 */
    BAD_SCALING,  /* a RoPE scaling this runtime does not implement */
    BAD_KSIZE,    /* a Q4_K tensor whose row is not a multiple of 256 */
    BAD_VOCAB1
};

static uint8_t *
tiny_llama(int bad, size_t *len)
{
    enum {
        D = 32,
        H = 64,
        V = 16,
        KV = 16
    };
    static float w[H * (D + 1)]; /* the largest tensor: the bad ffn_down */
    for (size_t i = 0; i < H * (D + 1); i++)
        w[i] = (float)((i * 7919) % 101) / 101.0f - 0.5f;
    synth s;
    synth_init(&s, 3);
    synth_kv_str(&s, "general.architecture", bad == BAD_ARCH ? "gpt2" : "llama");
    synth_kv_u32(&s, "llama.embedding_length", D);
    synth_kv_u32(&s, "llama.feed_forward_length", H);
    synth_kv_u32(&s, "llama.block_count", 1);
    synth_kv_u32(&s, "llama.attention.head_count", bad == BAD_HEADS ? 3 : 2);
    synth_kv_u32(&s, "llama.attention.head_count_kv",
                 bad == BAD_KV_HEADS   ? 3
                 : bad == BAD_KV_SHAPE ? 2
                                       : 1);
    if (bad == BAD_SCALING)
        synth_kv_str(&s, "llama.rope.scaling.type", "yarn");
    synth_kv_u32(&s, "llama.context_length", 8);
    synth_kv_u32(&s, "llama.rope.dimension_count", bad == BAD_ROPE ? 8 : 16);
    const uint64_t emb[2] = { D, V }, vec[1] = { D }, sq[2] = { D, D }, kv[2] = { D, KV },
                   up[2] = { D, H }, down[2] = { H, bad == BAD_SHAPE ? D + 1 : D };
    synth_tensor(&s, "token_embd.weight", 0, 2, emb, w, sizeof(float) * D * V);
    synth_tensor(&s, "output_norm.weight", 0, 1, vec, w, sizeof(float) * D);
    synth_tensor(&s, "blk.0.attn_norm.weight", 0, 1, vec, w, sizeof(float) * D);
    if (bad != BAD_MISSING)
        synth_tensor(&s, "blk.0.attn_q.weight", 0, 2, sq, w, sizeof(float) * D * D);
    synth_tensor(&s, "blk.0.attn_k.weight", 0, 2, kv, w, sizeof(float) * D * KV);
    synth_tensor(&s, bad == BAD_DUP ? "blk.0.attn_k.weight" : "blk.0.attn_v.weight", 0, 2, kv, w,
                 sizeof(float) * D * KV);
    if (bad == BAD_TYPE) /* q4_1: parsed, not computed */
        synth_tensor(&s, "blk.0.attn_output.weight", 3, 2, sq, w, 20 * D);
    else if (bad == BAD_KSIZE) /* q4_k rows of 32: not a whole super-block */
        synth_tensor(&s, "blk.0.attn_output.weight", 12, 2, sq, w, 144 * D);
    else
        synth_tensor(&s, "blk.0.attn_output.weight", 0, 2, sq, w, sizeof(float) * D * D);
    synth_tensor(&s, "blk.0.ffn_norm.weight", 0, 1, vec, w, sizeof(float) * D);
    synth_tensor(&s, "blk.0.ffn_gate.weight", 0, 2, up, w, sizeof(float) * D * H);
    synth_tensor(&s, "blk.0.ffn_down.weight", 0, 2, down, w, sizeof(float) * H * down[1]);
    synth_tensor(&s, "blk.0.ffn_up.weight", 0, 2, up, w, sizeof(float) * D * H);
    return synth_finish(&s, len);
}

static void
test_model_malformed(void **state)
{
    for (int bad = BAD_NONE; bad <= BAD_KSIZE; bad++) {
        size_t len;
        uint8_t *f = tiny_llama(bad, &len);
        rt_arena_report rep;
        char why[160] = "";
        rt_model_opts o = RT_MODEL_OPTS_INIT;
        o.why = why;
        o.why_cap = sizeof(why);
        int r = rt_model_plan(f, len, &o, &rep);
        assert_int_equal(r, bad == BAD_NONE ? 0 : -EBADMSG);
        static const char *const expect[] = {
            "",
            "general.architecture = gpt2 is not supported (llama, qwen2, phi3)",
            "missing tensor blk.0.attn_q.weight",
            "tensor blk.0.ffn_down.weight has shape 64x33, expected 64x32",
            "tensor blk.0.attn_output.weight has type q4_1, which this runtime does not compute",
            "metadata llama.rope.dimension_count = 8 differs from the head size 16 (not supported)",
            "3 heads do not divide the width 32",
            "tensor blk.0.attn_k.weight appears more than once",
            "metadata llama.attention.head_count_kv = 3 does not divide the 2 query heads",
            "tensor blk.0.attn_k.weight has shape 32x16, expected 32x32",
            "metadata llama.rope.scaling.type = yarn: RoPE scaling is not supported",
            "malformed GGUF file (header, metadata or tensor table)",
        };
        assert_string_equal(why, expect[bad]);
        if (bad == BAD_NONE) {
            void *arena;
            rt_model *m = make(f, len, NULL, &arena);
            assert_true(rt_model_config(m)->shared_classifier);
            assert_non_null(rt_forward(m, 3, 0));
            free(arena);
            /* Truncated anywhere: refused. */
            for (size_t n = 0; n < len; n += 97)
                assert_int_equal(rt_model_plan(f, n, NULL, &rep), -EBADMSG);
        }
        free(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin_portable),   cmocka_unit_test(test_bin_simd),
        cmocka_unit_test(test_gguf_f32),       cmocka_unit_test(test_gguf_quant),
        cmocka_unit_test(test_requant_and_kv), cmocka_unit_test(test_arena_mcu),
        cmocka_unit_test(test_bad_args),       cmocka_unit_test(test_mmap),
        cmocka_unit_test(test_mixed_types),    cmocka_unit_test(test_stories_gqa),
        cmocka_unit_test(test_states),         cmocka_unit_test(test_model_malformed),
        cmocka_unit_test(test_batch_exact),    cmocka_unit_test(test_batch_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
