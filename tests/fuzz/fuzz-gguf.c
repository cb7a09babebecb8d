/* SPDX-License-Identifier: MIT */
/* Fuzz target: the GGUF reader on whole files and on prefixes, then every
 * accessor over what it accepted, the engine and the converter. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz-run-model.h"
#include "runtime/gguf.h"
#include "runtime/layout.h"
#include "runtime/model.h"
#include "runtime/quantize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const rt_gguf *g)
{
    uint64_t cur = 0;
    const char *k;
    uint64_t kl;
    rt_gguf_value v;
    while (rt_gguf_kv_next(g, &cur, &k, &kl, &v) > 0) {
        if (v.type != RT_GGUF_ARRAY)
            continue;
        if (v.elem_type == RT_GGUF_STRING) {
            uint64_t c = 0, n;
            const char *s;
            while (rt_gguf_arr_str_next(&v, &c, &s, &n) > 0)
                ;
        } else if (v.elem_type == RT_GGUF_F32) {
            for (uint64_t i = 0; i < v.count; i++)
                (void)rt_gguf_arr_f32(&v, i);
        } else if (v.elem_type != RT_GGUF_F64) {
            for (uint64_t i = 0; i < v.count; i++)
                (void)rt_gguf_arr_i64(&v, i);
        }
    }
    uint32_t u;
    float f;
    (void)rt_gguf_get_u32(g, "llama.block_count", &u);
    (void)rt_gguf_get_f32(g, "llama.rope.freq_base", &f);
    rt_gguf_iter it = RT_GGUF_ITER_INIT;
    rt_tensor_info t;
    while (rt_gguf_tensor_next(g, &it, &t) > 0)
        if (t.offset + t.size > g->file_size)
            __builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rt_gguf g;
    uint64_t need = 0;
    if (rt_gguf_parse(data, size, size, &g, NULL) == 0) {
        walk(&g);
        run_model(data, size);
    }
    /* As a prefix of a longer file. */
    int r = rt_gguf_parse(data, size, (uint64_t)size * 2 + 64, &g, &need);
    if (r == 0)
        walk(&g);
    else if (r == -11 && need <= size)
        __builtin_trap(); /* -EAGAIN must ask for more than it has */
    /* nvx quantize reads the same bytes: every tensor type it decodes
     * (requantizing Q8_0/Q4_0/K-quant inputs), every architecture. Small
     * inputs only: the K-quant search is slow on large ones. */
    if (size <= (1u << 16)) {
        rt_quant_opts o = { .type = RT_TYPE_Q4_K };
        rt_quant_result *res = NULL;
        if (rt_quant_model(data, size, &o, &res, NULL) == 0)
            rt_quant_result_free(res);
    }
    rt_layout l;
    if (rt_layout_parse(data, size, size, &l, NULL) == 0) {
        rt_layout_iter it = RT_LAYOUT_ITER_INIT;
        rt_tensor_info t;
        while (rt_layout_next(&l, &it, &t) > 0)
            ;
    }
    return 0;
}
