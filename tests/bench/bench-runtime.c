/* SPDX-License-Identifier: MIT */
/*
 * Runtime speed benchmark: tokens/s of greedy generation (positions
 * 0..seq_len-1 from BOS) for F32, Q8_0 and Q4_0 weights with the portable
 * and the SIMD kernels, as medians of RUNS runs with min/max, and the ratio
 * to F32 portable measured in the same invocation. Q8_0/Q4_0 come from
 * requantizing the F32 model in the arena (or from the GGUF files given).
 * Also prints the arena report of the microcontroller configuration.
 *
 * usage: bench-runtime MODEL [RUNS] [REPEATS]
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/model.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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
    double t0 = now();
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
    return (double)n / (now() - t0);
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
    uint8_t *file = read_all(argv[1], &len);
    if (!file) {
        fprintf(stderr, "bench-runtime: cannot read %s\n", argv[1]);
        return 1;
    }
    static const struct {
        const char *name;
        rt_requant rq;
    } types[] = { { "f32", RT_REQUANT_NONE }, { "q8_0", RT_REQUANT_Q8_0 }, { "q4_0", RT_REQUANT_Q4_0 } };
    static const struct {
        const char *name;
        rt_kernels k;
    } kernels[] = { { "portable", RT_KERNELS_PORTABLE }, { "simd", RT_KERNELS_SIMD } };

    double base = 0.0;
    printf("model %s, %d runs x %d passes over the context; tokens/s\n", argv[1], runs, repeats);
    printf("%-6s %-9s %-8s %10s %10s %10s %8s\n", "type", "kernels", "impl", "median", "min", "max",
           "ratio");
    for (size_t t = 0; t < 3; t++) {
        for (size_t k = 0; k < 2; k++) {
            rt_model_opts o = RT_MODEL_OPTS_INIT;
            o.requant = types[t].rq;
            o.kernels = kernels[k].k;
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
