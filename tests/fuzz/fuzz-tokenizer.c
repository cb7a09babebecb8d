/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the tokenizer: input = u16 LE split, then a llama2.c
 * tokenizer.bin (split bytes) followed by a text. A loaded vocabulary
 * encodes the text (with BOS and EOS) and every token decodes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = (size_t)(data[0] | data[1] << 8);
    data += 2;
    size -= 2;
    if (split > size)
        split = size;
    rt_tokenizer *t = NULL;
    if (rt_tokenizer_load_llama2c(data, split, 0, &t) < 0)
        return 0;
    const char *text = (const char *)data + split;
    size_t len = size - split, cap = rt_tokenizer_encode_bound(len), n = 0;
    int32_t *tok = malloc(cap * sizeof(*tok));
    char *out = malloc(len * 8 + 1);
    if (tok && out &&
        rt_tokenizer_encode(t, text, len, RT_TOK_ADD_BOS | RT_TOK_ADD_EOS, tok, cap, &n) == 0) {
        size_t ol = 0;
        for (size_t i = 1; i < n; i++) {
            const char *p;
            size_t pl;
            if (rt_tokenizer_decode(t, tok[i - 1], tok[i], &p, &pl) < 0)
                abort();
            /* Each token covers at least one input byte, or is BOS/EOS. */
            if (pl > RT_TOK_MAX_PIECE || ol + pl > len * 8)
                abort();
            memcpy(out + ol, p, pl);
            ol += pl;
        }
    }
    free(out);
    free(tok);
    rt_tokenizer_free(t);
    return 0;
}
