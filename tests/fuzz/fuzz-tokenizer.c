/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the tokenizer. An input starting with "GGUF" is a GGUF
 * file whose vocabulary (SentencePiece or byte-level BPE, with merges and
 * special tokens) is loaded and used; otherwise input = u16 LE split,
 * then a llama2.c tokenizer.bin (split bytes) followed by a text. A loaded
 * vocabulary encodes the text (with BOS and EOS) and every token decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A GGUF input: its vocabulary (tokenizer.ggml.*, SentencePiece or
 * byte-level BPE) encodes a fixed text with special tokens parsed and
 * not, and every token decodes to a bounded piece. */
static void
gguf_vocab(const uint8_t *data, size_t size)
{
    rt_tokenizer *t = NULL;
    if (rt_tokenizer_load_gguf(data, size, &t) < 0) {
        const char *key, *val;
        size_t vl;
        /* The error report must stay inside the buffer too: copying the
         * value makes ASan check its bytes. */
        char v[64];
        if (rt_tokenizer_gguf_unsupported(data, size, &key, &val, &vl) == 0)
            memcpy(v, val, vl < sizeof(v) ? vl : sizeof(v));
        return;
    }
    static const char text[] = "hello w\xc3\xb6rld \xf0\x9f\xa4\x96 \xff ab<|end|>a<u>"
                               "  12 345's\t\n\xe2\x80 \xc0";
    int32_t tok[3 * sizeof(text) + 3];
    char piece[RT_TOK_MAX_PIECE];
    for (unsigned flags = 0; flags < 8; flags += 4) {
        size_t n;
        if (rt_tokenizer_encode(t, text, sizeof(text) - 1, RT_TOK_ADD_BOS | flags, tok,
                                sizeof(tok) / sizeof(tok[0]), &n) != 0)
            abort(); /* the bound is a promise */
        for (size_t i = 1; i < n; i++) {
            const char *p;
            size_t pl;
            if (rt_tokenizer_decode(t, tok[i - 1], tok[i], &p, &pl) < 0 || pl > RT_TOK_MAX_PIECE)
                abort();
            memcpy(piece, p, pl);
        }
    }
    rt_tokenizer_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        gguf_vocab(data, size);
        return 0;
    }
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
    char piece[RT_TOK_MAX_PIECE];
    if (tok &&
        rt_tokenizer_encode(t, text, len, RT_TOK_ADD_BOS | RT_TOK_ADD_EOS, tok, cap, &n) == 0) {
        for (size_t i = 1; i < n; i++) {
            const char *p;
            size_t pl;
            if (rt_tokenizer_decode(t, tok[i - 1], tok[i], &p, &pl) < 0)
                abort();
            /* Every piece is bounded; copying it makes ASan check the bytes. */
            if (pl > RT_TOK_MAX_PIECE)
                abort();
            memcpy(piece, p, pl);
        }
    }
    free(tok);
    rt_tokenizer_free(t);
    return 0;
}
