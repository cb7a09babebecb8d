/* SPDX-License-Identifier: MIT */
/* Fuzz target: llama2.c checkpoint header and tensor table. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime/layout.h"
#include "runtime/llama2c.h"
#include "runtime/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_llama2c m;
    /* The whole input as a file, then only its header as a prefix of it. */
    for (int pass = 0; pass < 2; pass++) {
        size_t len = pass == 0 || size < RT_L2C_HEADER_SIZE ? size : RT_L2C_HEADER_SIZE;
        if (rt_llama2c_parse(data, len, size, &m) != 0)
            continue;
        uint64_t end = RT_L2C_HEADER_SIZE;
        for (uint64_t i = 0; i < m.n_tensors; i++) {
            rt_tensor_info t;
            if (rt_llama2c_tensor(&m, i, &t) < 0 || t.offset != end)
                __builtin_trap();
            end = t.offset + t.size;
        }
        if (end != size)
            __builtin_trap();
        if (pass == 0)
            run_model(data, size);
    }
    rt_layout l;
    (void)rt_layout_parse(data, size, size, &l, NULL);
    return 0;
}
