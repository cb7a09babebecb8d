/* SPDX-License-Identifier: MIT */
/*
 * Runtime speed benchmark: tokens/s of greedy generation (positions
 * 0..seq_len-1 from BOS) for F32, Q8_0 and Q4_0 weights with the portable
 * and the SIMD kernels, as medians of RUNS runs with min/max, and the ratio
 * to F32 portable measured in the same invocation. Q8_0/Q4_0 come from
 * requantizing the F32 model in the arena (or from the GGUF files given).
 * Also prints the arena report of the microcontroller configuration.
 *
 * usage: bench-runtime MODEL|synthetic [RUNS] [REPEATS]
 *        bench-runtime write-110m OUT.bin
 * "synthetic" builds, in memory, a llama2.c checkpoint of the stories15M
 * shape (dim 288, hidden 768, 6 layers, 6 heads, vocab 32000) with
 * deterministic random weights and times 64 positions, to show the kernels
 * on matrices larger than aidreams260K's 64-wide ones.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/model-file.h"
#include "runtime/model.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* tokens/s are timed in this thread's CPU time: the machines these run on
 * are often shared, and wall time then measures the neighbours. */
static double
cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void
put_i32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

/* Shape of a synthetic model: stories15M's, and stories110M's for the
 * side-by-side run against llama.cpp (bench-runtime.sh vs-llama.cpp). */
typedef struct shape {
    int32_t dim, hid, L, H, V, S;
} shape;

static const shape shape15m = { 288, 768, 6, 6, 32000, 256 };
static const shape shape110m = { 768, 2048, 12, 12, 32000, 512 };

/* A llama2.c checkpoint with weights uniform in [-0.06, 0.06] (norm
 * weights 1), its classifier shared with the embeddings. */
static uint8_t *
synthetic(const shape *sh, size_t *len)
{
    const int32_t dim = sh->dim, hid = sh->hid, L = sh->L, H = sh->H, V = sh->V, S = sh->S;
    size_t hs = (size_t)dim / H;
    size_t n = (size_t)V * dim + (size_t)L * dim + 4 * (size_t)L * dim * dim + (size_t)L * dim +
               3 * (size_t)L * hid * dim + dim + 2 * (size_t)S * hs / 2;
    *len = 28 + 4 * n;
    uint8_t *buf = malloc(*len);
    if (!buf)
        return NULL;
    int32_t h[7] = { dim, hid, L, H, H, V, S };
    for (int i = 0; i < 7; i++)
        put_i32(buf + 4 * i, h[i]);
    float *w = (float *)(void *)(buf + 28);
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = ((float)(x >> 40) / (float)(1 << 24) - 0.5f) * 0.12f;
    }
    /* Norm weights to 1 so activations keep their scale. */
    size_t off = (size_t)V * dim;
    for (size_t i = 0; i < (size_t)L * dim; i++)
        w[off + i] = 1.0f;
    off += (size_t)L * dim + 4 * (size_t)L * dim * dim;
    for (size_t i = 0; i < (size_t)L * dim; i++)
        w[off + i] = 1.0f;
    off += (size_t)L * dim + 3 * (size_t)L * hid * dim;
    for (size_t i = 0; i < (size_t)dim; i++)
        w[off + i] = 1.0f;
    return buf;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Tokens per second of one run (repeats passes over the whole context). */
static double
run_once(rt_model *m, int repeats)
{
    const rt_config *c = rt_model_config(m);
    double t0 = cpu_now();
    long n = 0;
    for (int r = 0; r < repeats; r++) {
        int tok = (int)c->bos_id;
        for (uint32_t pos = 0; pos < c->seq_len; pos++, n++) {
            float *l = rt_forward(m, tok, (int)pos);
            int best = 0;
            for (uint32_t i = 1; i < c->vocab_size; i++)
                if (l[i] > l[best])
                    best = (int)i;
            tok = best;
        }
    }
    return (double)n / (cpu_now() - t0);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-runtime MODEL [RUNS] [REPEATS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 7, repeats = argc > 3 ? atoi(argv[3]) : 20;
    if (runs < 5)
        runs = 5;
    size_t len;
    if (strcmp(argv[1], "write-110m") == 0) {
        /* Writes the stories110M-shape checkpoint to argv[2]. */
        uint8_t *buf = argc > 2 ? synthetic(&shape110m, &len) : NULL;
        FILE *f = buf ? fopen(argv[2], "wb") : NULL;
        bool ok = f && fwrite(buf, 1, len, f) == len;
        ok = f && fclose(f) == 0 && ok;
        free(buf);
        if (!ok)
            fprintf(stderr, "bench-runtime: cannot write the synthetic model\n");
        return ok ? 0 : 1;
    }
    bool synth = strcmp(argv[1], "synthetic") == 0;
    uint8_t *file = synth ? synthetic(&shape15m, &len) : read_all(argv[1], &len);
    if (!file) {
        fprintf(stderr, "bench-runtime: cannot read %s\n", argv[1]);
        return 1;
    }
    static const struct {
        const char *name;
        rt_requant rq;
    } types[] = { { "f32", RT_REQUANT_NONE },
                  { "q8_0", RT_REQUANT_Q8_0 },
                  { "q4_0", RT_REQUANT_Q4_0 } };
    static const struct {
        const char *name;
        rt_kernels k;
    } kernels[] = { { "portable", RT_KERNELS_PORTABLE }, { "simd", RT_KERNELS_SIMD } };

    double base = 0.0;
    printf("model %s, %d runs x %d passes over the context; tokens/s (thread CPU time)\n", argv[1],
           runs, repeats);
    printf("%-6s %-9s %-8s %10s %10s %10s %8s\n", "type", "kernels", "impl", "median", "min", "max",
           "ratio");
    for (size_t t = 0; t < 3; t++) {
        for (size_t k = 0; k < 2; k++) {
            rt_model_opts o = RT_MODEL_OPTS_INIT;
            o.requant = types[t].rq;
            o.kernels = kernels[k].k;
            o.seq_len = synth ? 64 : 0;
            rt_arena_report rep;
            int r = rt_model_plan(file, len, &o, &rep);
            if (r == -ENOTSUP) {
                printf("%-6s %-9s (no SIMD kernels on this CPU)\n", types[t].name, kernels[k].name);
                continue;
            }
            if (r < 0) {
                fprintf(stderr, "bench-runtime: plan: %s\n", strerror(-r));
                return 1;
            }
            void *arena = malloc(rep.total + RT_ARENA_ALIGN);
            rt_model *m;
            r = rt_model_init(file, len, &o, arena, rep.total + RT_ARENA_ALIGN, &m, NULL);
            if (r < 0) {
                fprintf(stderr, "bench-runtime: init: %s\n", strerror(-r));
                return 1;
            }
            run_once(m, 1); /* warm up */
            double v[64];
            int nr = runs > 64 ? 64 : runs;
            for (int i = 0; i < nr; i++)
                v[i] = run_once(m, repeats);
            qsort(v, (size_t)nr, sizeof(double), cmp);
            double med = v[nr / 2];
            if (t == 0 && k == 0)
                base = med;
            printf("%-6s %-9s %-8s %10.0f %10.0f %10.0f %7.2fx\n", types[t].name, kernels[k].name,
                   rt_model_kernels(m), med, v[0], v[nr - 1], base > 0 ? med / base : 0.0);
            free(arena);
        }
    }

    if (synth) {
        free(file);
        return 0;
    }
    /* mmap mode: open (map, plan, allocate, init) to the first token. */
    double ttft[64];
    int nt = runs > 64 ? 64 : runs;
    for (int i = 0; i < nt; i++) {
        double t0 = now();
        rt_model_file *mf;
        if (rt_model_file_open(argv[1], NULL, &mf) < 0)
            return 1;
        rt_model *m = rt_model_file_model(mf);
        float *l = rt_forward(m, (int)rt_model_config(m)->bos_id, 0);
        ttft[i] = (now() - t0) * 1e3;
        (void)l;
        rt_model_file_close(mf);
    }
    qsort(ttft, (size_t)nt, sizeof(double), cmp);
    printf("\nmmap open to first logits: median %.3f ms (min %.3f, max %.3f)\n", ttft[nt / 2],
           ttft[0], ttft[nt - 1]);

    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.requant = RT_REQUANT_Q4_0;
    o.kv_type = RT_KV_Q8;
    o.copy_weights = true;
    rt_arena_report rep;
    if (rt_model_plan(file, len, &o, &rep) == 0)
        printf("\narena, q4_0 weights + int8 KV, full context (bytes):\n"
               "weights %zu\nactivations %zu\nkv_cache %zu\nother %zu\ntotal %zu\n",
               rep.weights, rep.activations, rep.kv_cache, rep.other, rep.total);
    free(file);
    return 0;
}
