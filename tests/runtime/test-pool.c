/* SPDX-License-Identifier: MIT */
/* The thread pool: every part runs once per run, and a model's logits are
 * bit-identical with 1, 2 and 3 threads (one token at a time and batched). */
#include <errno.h>
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
#include "runtime/pool.h"
#include "testutil.h"

enum {
    MAX_PARTS = 4 * RT_POOL_PARTS,
    RUNS = 2000,
    SEQ = 40
};

typedef struct counts {
    unsigned hits[MAX_PARTS];
    unsigned n_parts_seen;
} counts;

/* Each part writes only its own slot: no two parts touch the same word. */
static void
count_part(void *arg, unsigned part, unsigned n_parts)
{
    counts *c = arg;
    c->hits[part]++;
    if (part == 0)
        c->n_parts_seen = n_parts;
}

static void
test_pool_runs(void **state)
{
    for (unsigned n = 1; n <= 4; n++) {
        rt_pool *p;
        assert_int_equal(rt_pool_new(n, &p), 0);
        assert_int_equal(rt_pool_threads(p), n);
        const rt_parallel *par = rt_pool_parallel(p);
        unsigned parts = n > 1 ? n * RT_POOL_PARTS : 1;
        assert_int_equal(par->n_parts, parts);
        counts c = { 0 };
        for (unsigned r = 0; r < RUNS; r++)
            par->run(par->ctx, count_part, &c);
        for (unsigned i = 0; i < parts; i++)
            assert_int_equal(c.hits[i], RUNS);
        assert_int_equal(c.n_parts_seen, parts);
        rt_pool_free(p);
    }
    rt_pool *p;
    assert_int_equal(rt_pool_new(RT_THREADS_AUTO, &p), 0);
    assert_int_equal(rt_pool_threads(p), rt_threads_online());
    rt_pool_free(p);
    assert_int_equal(rt_pool_new(RT_THREADS_MAX + 1, &p), -EINVAL);
    rt_pool_free(NULL);
}

static const char *const models[] = {
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

/* Logits at every position [SEQ][vocab]: one token at a time, or (batch)
 * the first SEQ - 1 tokens in batches of RT_BATCH_MAX and the last alone. */
static float *
run_seq(rt_model *m, const int32_t *toks, bool batch)
{
    size_t vocab = rt_model_config(m)->vocab_size;
    float *all = malloc(SEQ * vocab * 4), *logits;
    if (!batch) {
        for (int pos = 0; pos < SEQ; pos++) {
            assert_non_null(logits = rt_forward(m, toks[pos], pos));
            memcpy(all + (size_t)pos * vocab, logits, vocab * 4);
        }
        return all;
    }
    size_t size = rt_batch_scratch_size(m, RT_BATCH_MAX);
    void *scratch = aligned_alloc(RT_ARENA_ALIGN,
                                  (size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    memset(all, 0, SEQ * vocab * 4);
    for (size_t pos = 0; pos < SEQ - 1; pos += RT_BATCH_MAX) {
        size_t k = SEQ - 1 - pos < RT_BATCH_MAX ? SEQ - 1 - pos : RT_BATCH_MAX;
        assert_int_equal(rt_forward_batch(m, toks + pos, k, (int)pos, scratch, size, &logits), 0);
        memcpy(all + (pos + k - 1) * vocab, logits, vocab * 4);
    }
    assert_non_null(logits = rt_forward(m, toks[SEQ - 1], SEQ - 1));
    memcpy(all + (size_t)(SEQ - 1) * vocab, logits, vocab * 4);
    free(scratch);
    return all;
}

static void
test_threads_exact(void **state)
{
    int ran = 0;
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        /* Under qemu, one model per kernel family (Q8_0 + F16, Q4_0,
         * Q4_K + Q6_K, Q5_K): all nine take minutes there. */
        if (tu_emulated() && i != 1 && i != 2 && i != 4 && i != 8)
            continue;
        char *path = tu_model_path(models[i]);
        if (!path)
            continue;
        rt_model_opts o = RT_MODEL_OPTS_INIT;
        o.seq_len = SEQ;
        rt_model_file *mf;
        assert_int_equal(rt_model_file_open(path, &o, &mf), 0);
        rt_model *m = rt_model_file_model(mf);
        size_t vocab = rt_model_config(m)->vocab_size;
        int32_t toks[SEQ];
        for (size_t t = 0; t < SEQ; t++)
            toks[t] = (int32_t)((t * 53 + 3) % vocab);
        for (int batch = 0; batch < 2; batch++) {
            rt_model_set_parallel(m, NULL);
            float *one = run_seq(m, toks, batch);
            for (unsigned n = 1; n <= 3; n++) {
                rt_pool *p;
                assert_int_equal(rt_pool_new(n, &p), 0);
                rt_model_set_parallel(m, rt_pool_parallel(p));
                float *got = run_seq(m, toks, batch);
                if (memcmp(one, got, SEQ * vocab * 4) != 0)
                    fail_msg("%s: %u threads%s: logits differ", models[i], n,
                             batch ? " (batched)" : "");
                free(got);
                rt_model_set_parallel(m, NULL);
                rt_pool_free(p);
            }
            free(one);
        }
        rt_model_file_close(mf);
        free(path);
        ran++;
    }
    printf("# 1, 2, 3 threads give the same logits on %d models\n", ran);
    if (!ran)
        skip();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs),
        cmocka_unit_test(test_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
