/* SPDX-License-Identifier: MIT */
/* Fuzz target: llama2.c checkpoint header and tensor table. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz-run-model.h"
#include "runtime/layout.h"
#include "runtime/llama2c.h"
#include "runtime/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
