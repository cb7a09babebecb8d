/* SPDX-License-Identifier: MIT */
/*
 * bench-quality: what quantization costs, in numbers, on aidreams260K.
 *
 *   bench-quality [MODELS_DIR] [--positions N] [--runs R]
 *
 * 1. Evaluation text: the F32 model samples at temperature 1 (seed 1) from
 *    BOS, sequence after sequence, until N positions (default 2,048).
 * 2. Variants, all made in this run from aidreams260K.bin by rt_quant_model
 *    (and llama.cpp's shared files for comparison): Q8_0, Q4_0 round to
 *    nearest, Q4_0 with error-minimizing scale search, Q4_0 activation-aware
 *    (calibrated on OTHER text the F32 model samples, seed 2), and F32
 *    weights with an int8 KV cache.
 * 3. Each is teacher-forced over the evaluation text next to the F32 model:
 *    mean / p99 KL divergence, top-1 agreement, perplexity (eval.h).
 * 4. The microcontroller run: aidreams260K.bin in arena mode, weights
 *    requantized to Q4_0 at init and copied into the arena, int8 KV cache,
 *    full 128-token context; the exact byte breakdown, greedy output from
 *    BOS against F32, and teacher-forced top-1 agreement.
 * 5. Timing: eval throughput of each variant as medians of R runs (min/max)
 *    with the ratio to F32 measured in the same invocation.
 */
#define _ISOC11_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/eval.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/quantize.h"

typedef struct buf {
    uint8_t *p;
    size_t len;
} buf;

static int
read_all(const char *path, buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    b->p = malloc((size_t)n);
    b->len = (size_t)n;
    size_t got = fread(b->p, 1, b->len, f);
    fclose(f);
    return got == b->len ? 0 : -EIO;
}

static int
sink(void *ud, const void *p, size_t n)
{
    buf *b = ud;
    b->p = realloc(b->p, b->len + n);
    if (!b->p)
        return -ENOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

typedef struct loaded {
    void *arena;
    rt_model *m;
    rt_arena_report rep;
} loaded;

static int
load(const buf *file, const rt_model_opts *o, loaded *l)
{
    int r = rt_model_plan(file->p, file->len, o, &l->rep);
    if (r < 0)
        return r;
    /* Over-allocate by the alignment: see model.h on the arena's start. */
    l->arena = malloc(l->rep.total + RT_ARENA_ALIGN);
    return rt_model_init(file->p, file->len, o, l->arena, l->rep.total + RT_ARENA_ALIGN, &l->m,
                         NULL);
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread: speed figures (pos/s, tok/s) that do not depend
 * on what else the machine runs (it is shared; wall time swings 2x). */
static double
cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sampled token stream: sequences from BOS at temperature 1. */
typedef struct stream {
    int32_t *t;
    size_t n, cap;
} stream;

static int
on_tok(void *ud, int32_t token, const char *piece, size_t len)
{
    (void)piece;
    (void)len;
    stream *s = ud;
    if (s->n == s->cap)
        return 1;
    s->t[s->n++] = token;
    return 0;
}

static void
sample_stream(rt_model *m, const rt_tokenizer *tok, uint64_t seed, size_t n, stream *s)
{
    s->cap = n;
    s->t = malloc(n * sizeof(int32_t));
    s->n = 0;
    rt_sampler smp;
    rt_sampler_init(&smp, rt_model_config(m)->vocab_size, 1.0f, 1.0f, seed, NULL, 0);
    while (s->n + 2 < n) {
        s->t[s->n++] = rt_tokenizer_bos(tok);
        rt_generate(m, tok, &smp, "", 0, NULL, on_tok, s, NULL);
    }
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct variant {
    const char *name;
    buf file;
    rt_model_opts opts;
    loaded l;
    rt_eval_result res;
    double tps[16];
} variant;

static const struct {
    const char *name;
    rt_type type;
    rt_quant_method method;
} qv[] = {
    { "Q8_0 (RTN)", RT_TYPE_Q8_0, RT_QUANT_RTN },
    { "Q4_0 RTN", RT_TYPE_Q4_0, RT_QUANT_RTN },
    { "Q4_0 search", RT_TYPE_Q4_0, RT_QUANT_SEARCH },
    { "Q4_0 AWQ", RT_TYPE_Q4_0, RT_QUANT_AWQ },
};
enum {
    NQ = 4,
    NV = NQ + 4
};

/* Everything main loads once and the parts of the benchmark share. */
typedef struct bench {
    int runs;
    buf f32;
    rt_tokenizer *tok;
    rt_model_opts def;
    loaded ref;  /* the F32 model */
    stream text; /* F32 samples at T=1, teacher-forced through every variant */
    variant v[NV];
    double t_awq; /* seconds the AWQ conversion took */
    stream g0;    /* the F32 greedy text from BOS (arena run, speed) */
} bench;

/* Quantizes the F32 model every way in qv[] (into b->v[0..NQ)) and sets up
 * the other variants. Returns 0 or 1 after printing why. */
static int
make_variants(bench *b, buf q8cpp, buf q4cpp)
{
    buf f32 = b->f32;
    rt_tokenizer *tok = b->tok;
    rt_model_opts def = b->def;
    variant *v = b->v;
    double t_awq = 0.0;
    int r;
    for (int i = 0; i < NQ; i++) {
        rt_quant_opts qo = { .type = qv[i].type, .method = qv[i].method, .tok = tok, .seed = 2 };
        rt_quant_result *res = NULL;
        double t0 = now();
        r = rt_quant_model(f32.p, f32.len, &qo, &res, NULL);
        if (r >= 0)
            r = rt_gguf_writer_write(rt_quant_result_writer(res), sink, &v[i].file);
        if (r < 0) {
            fprintf(stderr, "bench-quality: quantizing %s: %s\n", qv[i].name, strerror(-r));
            return 1;
        }
        if (qv[i].method == RT_QUANT_AWQ)
            t_awq = now() - t0;
        rt_quant_result_free(res);
        v[i].name = qv[i].name;
        v[i].opts = def;
    }
    v[NQ] = (variant){ .name = "F32 + int8 KV", .file = f32, .opts = def };
    v[NQ].opts.kv_type = RT_KV_Q8;
    v[NQ + 1] = (variant){ .name = "Q4_0 AWQ + int8 KV", .file = v[3].file, .opts = def };
    v[NQ + 1].opts.kv_type = RT_KV_Q8;
    v[NQ + 2] = (variant){ .name = "llama.cpp Q8_0", .file = q8cpp, .opts = def };
    v[NQ + 3] = (variant){ .name = "llama.cpp Q4_0", .file = q4cpp, .opts = def };
    b->t_awq = t_awq;
    return 0;
}

/* Teacher-forces the sampled text through F32 and every variant; prints
 * the quality table and the targets. */
static void
quality_table(bench *b)
{
    buf f32 = b->f32;
    loaded ref = b->ref;
    stream text = b->text;
    variant *v = b->v;
    int runs = b->runs;
    rt_tokenizer *tok = b->tok;
    printf("bench-quality: aidreams260K, %zu teacher-forced positions of F32 samples "
           "(T=1, seed 1); AWQ calibrated on %d other sampled positions (seed 2, %.2f s)\n\n",
           text.n, RT_QUANT_CALIB_TOKENS, b->t_awq);
    printf("%-20s %9s %10s %10s %8s %8s %9s\n", "variant", "file B", "KL mean", "KL p99", "top-1 %",
           "ppl", "pos/s");
    double base_tps = 0.0;
    for (int i = -1; i < NV; i++) {
        variant *x = i < 0 ? NULL : &v[i];
        if (x && x->file.len == 0)
            continue;
        loaded l = ref;
        if (x && load(&x->file, &x->opts, &x->l) < 0) {
            printf("%-20s cannot load\n", x->name);
            continue;
        }
        if (x)
            l = x->l;
        double tps[16];
        rt_eval_result res = { 0 };
        for (int k = 0; k < runs; k++) {
            rt_eval *e = NULL;
            rt_eval_new(rt_model_config(l.m)->vocab_size, text.n * 2 + 8, &e);
            /* pos/s: teacher-forced positions per second, each running the
             * variant AND the F32 reference (eval throughput, not speed). */
            double t0 = cpu_now();
            rt_eval_run(l.m, ref.m, text.t, text.n, rt_tokenizer_bos(tok), e);
            tps[k] = (double)text.n / (cpu_now() - t0);
            rt_eval_result_get(e, &res);
            rt_eval_free(e);
        }
        qsort(tps, (size_t)runs, sizeof(double), cmp_d);
        double med = tps[runs / 2];
        if (!x)
            base_tps = med;
        printf("%-20s %9zu %10.5f %10.5f %8.2f %8.3f %9.0f (%.0f..%.0f, x%.2f)\n",
               x ? x->name : "F32 (reference)", x ? x->file.len : f32.len, res.kl_mean, res.kl_p99,
               100.0 * res.top1, res.ppl, med, tps[0], tps[runs - 1], med / base_tps);
        if (x)
            x->res = res;
    }
    double kl_rtn = v[1].res.kl_mean, kl_s = v[2].res.kl_mean, kl_awq = v[3].res.kl_mean;
    printf("\ntargets: Q8_0 top-1 >= 98%% and mean KL <= 0.01: %s (%.2f%%, %.5f)\n",
           v[0].res.top1 >= 0.98 && v[0].res.kl_mean <= 0.01 ? "met" : "MISSED",
           100.0 * v[0].res.top1, v[0].res.kl_mean);
    printf(
        "         activation-aware Q4 mean KL -30%% vs RTN: %s (%+.1f%%; search alone %+.1f%%)\n",
        kl_awq <= 0.7 * kl_rtn ? "met" : "MISSED", 100.0 * (kl_awq / kl_rtn - 1.0),
        100.0 * (kl_s / kl_rtn - 1.0));
    printf("         int8 KV costs <= 1 point of top-1: %s (%.2f points)\n",
           100.0 * (1.0 - v[NQ].res.top1) <= 1.0 ? "met" : "MISSED",
           100.0 * (1.0 - v[NQ].res.top1));
}

/* The microcontroller configuration: the arena byte breakdown and how close
 * its output stays to F32. Returns 0 or 1 after printing why. */
static int
arena_runs(bench *b)
{
    buf f32 = b->f32;
    rt_tokenizer *tok = b->tok;
    loaded ref = b->ref;
    stream text = b->text;
    variant *v = b->v;
    int r;
    rt_model_opts mo = RT_MODEL_OPTS_INIT;
    mo.kv_type = RT_KV_Q8;
    mo.requant = RT_REQUANT_Q4_0;
    mo.copy_weights = true;
    rt_arena_report rep;
    r = rt_model_plan(f32.p, f32.len, &mo, &rep);
    /* Exactly the reported total, aligned as the engine wants it. */
    void *arena = r < 0 ? NULL : aligned_alloc(RT_ARENA_ALIGN, (rep.total + 63) / 64 * 64);
    rt_model *mc = NULL;
    if (r >= 0)
        r = rt_model_init(f32.p, f32.len, &mo, arena, rep.total, &mc, NULL);
    if (r < 0) {
        fprintf(stderr, "bench-quality: arena model: %s\n", strerror(-r));
        return 1;
    }
    /* The file buffer may go away: weights were copied into the arena. */
    printf("\narena run: aidreams260K.bin, weights requantized to Q4_0 into the arena, "
           "int8 KV, %u positions\n",
           rt_model_config(mc)->seq_len);
    printf("  weights      %8zu B\n  activations  %8zu B\n  kv_cache     %8zu B\n"
           "  other        %8zu B\n  total        %8zu B (%.1f KiB; limit 256 KiB: %s)\n",
           rep.weights, rep.activations, rep.kv_cache, rep.other, rep.total,
           (double)rep.total / 1024.0, rep.total <= 256 * 1024 ? "met" : "MISSED");
    stream g0 = { 0 }, g1 = { 0 };
    rt_sampler greedy;
    rt_sampler_init(&greedy, 512, 0.0f, 1.0f, 0, NULL, 0);
    g0.cap = g1.cap = 200;
    g0.t = malloc(200 * sizeof(int32_t));
    g1.t = malloc(200 * sizeof(int32_t));
    g0.t[g0.n++] = g1.t[g1.n++] = rt_tokenizer_bos(tok);
    rt_generate(ref.m, tok, &greedy, "", 0, NULL, on_tok, &g0, NULL);
    rt_generate(mc, tok, &greedy, "", 0, NULL, on_tok, &g1, NULL);
    size_t same = 0;
    while (same < g0.n && same < g1.n && g0.t[same] == g1.t[same])
        same++;
    rt_eval *e = NULL;
    rt_eval_result rg, rs;
    rt_eval_new(512, 4096, &e);
    rt_eval_run(mc, ref.m, g0.t, g0.n, rt_tokenizer_bos(tok), e);
    rt_eval_result_get(e, &rg);
    rt_eval_free(e);
    rt_eval_new(512, text.n * 2 + 8, &e);
    rt_eval_run(mc, ref.m, text.t, text.n, rt_tokenizer_bos(tok), e);
    rt_eval_result_get(e, &rs);
    rt_eval_free(e);
    printf("  greedy from BOS: first %zu of %zu tokens equal to F32; teacher-forced on the F32 "
           "greedy text: top-1 %.2f%%, KL mean %.5f\n",
           same - 1, g0.n - 1, 100.0 * rg.top1, rg.kl_mean);
    printf("  teacher-forced on the %llu sampled positions: top-1 %.2f%%, KL mean %.5f, p99 %.5f\n",
           (unsigned long long)rs.n, 100.0 * rs.top1, rs.kl_mean, rs.kl_p99);
    free(arena);

    /* The same arena budget with the activation-aware Q4 file (its F16
     * ffn_down requantized to Q4_0 at init, classifier kept Q8_0). */
    r = rt_model_plan(v[3].file.p, v[3].file.len, &mo, &rep);
    arena = r < 0 ? NULL : aligned_alloc(RT_ARENA_ALIGN, (rep.total + 63) / 64 * 64);
    if (r >= 0)
        r = rt_model_init(v[3].file.p, v[3].file.len, &mo, arena, rep.total, &mc, NULL);
    if (r >= 0) {
        rt_eval_new(512, text.n * 2 + 8, &e);
        rt_eval_run(mc, ref.m, text.t, text.n, rt_tokenizer_bos(tok), e);
        rt_eval_result_get(e, &rs);
        rt_eval_free(e);
        printf("arena run with the Q4_0 AWQ file instead: total %zu B (%.1f KiB: %s), weights "
               "%zu B; teacher-forced top-1 %.2f%%, KL mean %.5f\n",
               rep.total, (double)rep.total / 1024.0, rep.total <= 256 * 1024 ? "met" : "MISSED",
               rep.weights, 100.0 * rs.top1, rs.kl_mean);
    }
    free(arena);
    b->g0 = g0;
    return 0;
}

/* Speed: greedy generation from BOS over the whole context, F32, Q8_0 and
 * Q4_0, portable and SIMD kernels. */
static void
speed(bench *b)
{
    buf f32 = b->f32;
    rt_tokenizer *tok = b->tok;
    loaded ref = b->ref;
    variant *v = b->v;
    int runs = b->runs;
    stream g0 = b->g0;
    rt_sampler greedy;
    rt_sampler_init(&greedy, 512, 0.0f, 1.0f, 0, NULL, 0);
    printf("\nspeed: greedy, %u positions from BOS, thread CPU time, median of %d runs "
           "(min..max), ratio to F32 portable; the Q8_0/Q4_0 files keep ffn_down in F16 "
           "(bench-runtime.sh times all-quantized weights)\n",
           rt_model_config(ref.m)->seq_len, runs);
    const buf *files[3] = { &f32, &v[0].file, &v[1].file };
    const char *fnames[3] = { "F32", "Q8_0", "Q4_0" };
    double base_speed = 0.0;
    for (int fi = 0; fi < 3; fi++) {
        for (int k = RT_KERNELS_PORTABLE; k <= RT_KERNELS_SIMD; k++) {
            if (k == RT_KERNELS_SIMD && !rt_simd_available())
                continue;
            rt_model_opts so = RT_MODEL_OPTS_INIT;
            so.kernels = (rt_kernels)k;
            loaded sl = { 0 };
            if (load(files[fi], &so, &sl) < 0)
                continue;
            double t[16];
            for (int i = 0; i < runs; i++) {
                stream g = { .cap = 200, .t = g0.t, .n = 0 };
                double t0 = cpu_now();
                rt_generate(sl.m, tok, &greedy, "", 0, NULL, on_tok, &g, NULL);
                t[i] = (double)(g.n + 1) / (cpu_now() - t0);
            }
            qsort(t, (size_t)runs, sizeof(double), cmp_d);
            if (fi == 0 && k == RT_KERNELS_PORTABLE)
                base_speed = t[runs / 2];
            printf("  %-5s %-9s %9.0f tok/s (%.0f..%.0f)  x%.2f\n", fnames[fi],
                   rt_model_kernels(sl.m), t[runs / 2], t[0], t[runs - 1],
                   t[runs / 2] / base_speed);
            free(sl.arena);
        }
    }
}

int
main(int argc, char **argv)
{
    const char *dir = "../shared/models";
    size_t positions = 2048;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--positions") == 0 && i + 1 < argc)
            positions = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else
            dir = argv[i];
    }
    if (runs < 1 || runs > 16)
        runs = 5;
    char path[4096];
    buf f32 = { 0 }, q8cpp = { 0 }, q4cpp = { 0 };
    snprintf(path, sizeof(path), "%s/aidreams260K.bin", dir);
    if (read_all(path, &f32) < 0) {
        fprintf(stderr, "bench-quality: cannot read %s: pass the shared models folder\n", path);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/aidreams260K-Q8_0-ffndownF16.gguf", dir);
    read_all(path, &q8cpp);
    snprintf(path, sizeof(path), "%s/aidreams260K-Q4_0-ffndownF16.gguf", dir);
    read_all(path, &q4cpp);
    snprintf(path, sizeof(path), "%s/tok512.bin", dir);
    rt_tokenizer *tok = NULL;
    if (rt_tokenizer_load_llama2c_file(path, 512, &tok) < 0) {
        fprintf(stderr, "bench-quality: cannot read %s\n", path);
        return 1;
    }

    static bench b; /* large: variants hold their eval results */
    b.runs = runs;
    b.f32 = f32;
    b.tok = tok;
    b.def = (rt_model_opts)RT_MODEL_OPTS_INIT;
    int r = load(&f32, &b.def, &b.ref);
    if (r < 0) {
        fprintf(stderr, "bench-quality: cannot load the F32 model: %s\n", strerror(-r));
        return 1;
    }
    sample_stream(b.ref.m, tok, 1, positions, &b.text);
    if (make_variants(&b, q8cpp, q4cpp) != 0)
        return 1;
    quality_table(&b);
    if (arena_runs(&b) != 0)
        return 1;
    speed(&b);
    return 0;
}
