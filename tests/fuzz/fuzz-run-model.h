/* SPDX-License-Identifier: MIT */
#ifndef NVX_FUZZ_RUN_MODEL_H
#define NVX_FUZZ_RUN_MODEL_H
/*
 * Shared by the model-file fuzz targets (fuzz-gguf.c, fuzz-llama2c.c), each
 * built as its own program: included, so the fuzz build needs no extra
 * source per target.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime/model.h"

/* Runs the engine over models that parsed: plan, and for small ones init
 * and two forward passes (checks the loader's shape and type checks). */
static void
run_model(const uint8_t *data, size_t size)
{
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    char why[96];
    o.seq_len = 4;
    o.why = why;
    o.why_cap = sizeof(why);
    rt_arena_report rep;
    for (int v = 0; v < 3; v++) {
        o.requant = (rt_requant)v;
        o.kv_type = v == 2 ? RT_KV_Q8 : RT_KV_F32;
        if (rt_model_plan(data, size, &o, &rep) < 0 || rep.total > (1u << 20))
            return;
        void *arena = malloc(rep.total);
        rt_model *m;
        if (arena && rt_model_init(data, size, &o, arena, rep.total, &m, NULL) == 0) {
            const rt_config *c = rt_model_config(m);
            if (!rt_forward(m, 0, 0) ||
                (c->seq_len > 1 && !rt_forward(m, (int)c->vocab_size - 1, 1)))
                __builtin_trap();
            if (rt_forward(m, (int)c->vocab_size, 0) || rt_forward(m, 0, (int)c->seq_len))
                __builtin_trap();
        }
        free(arena);
    }
}

#endif
