/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_TOK_BPE_H
#define NVX_RUNTIME_TOK_BPE_H
/*
 * Byte-level BPE tables (GGUF tokenizer.ggml.model = "gpt2"), internal to
 * the tokenizer: the GPT-2 byte-to-unicode mapping, the merge ranks and the
 * decoded bytes of every token. rt_tokenizer owns one of these for a BPE
 * vocabulary; the merge loop itself is shared with SentencePiece in
 * tokenizer.c (both merge the best-ranked adjacent pair, leftmost on ties).
 *
 * Byte-level BPE spells every byte of the text as one printable code
 * point (GPT-2's bytes_to_unicode: bytes 0x21-0x7E, 0xA1-0xAC and
 * 0xAE-0xFF stand for themselves, the other 68 bytes for U+0100 onwards in
 * byte order, so a space is "Ġ" U+0120); pieces and merges are written in
 * that alphabet.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/tok-pretok.h"

enum {
    RT_BPE_MAX_MERGES = 1 << 20,
};

typedef struct rt__bpe rt__bpe;

/* The code point that spells byte b. */
uint32_t rt__bpe_byte_cp(uint8_t b);
/* The byte that code point cp spells, or -1 if cp is none of the 256. */
int rt__bpe_cp_byte(uint32_t cp);

/* Allocates empty tables for n_merges merges (<= RT_BPE_MAX_MERGES) and a
 * vocabulary of n_vocab tokens. Returns 0, -EMSGSIZE, -ENOMEM. */
int rt__bpe_new(rt_pretok pre, uint32_t n_merges, uint32_t n_vocab, rt__bpe **ret);
void rt__bpe_free(rt__bpe *b);
rt_pretok rt__bpe_pretok(const rt__bpe *b);

/* Records that the pair of tokens (left, right) merges into token result
 * with this rank (lower merges first). A pair seen before keeps its first
 * (lower) rank. At most n_merges calls. Returns 0 or -EMSGSIZE. */
int rt__bpe_add_merge(rt__bpe *b, int32_t left, int32_t right, int32_t result, uint32_t rank);

/* Looks up the merge of (left, right): true and its rank and result. */
bool rt__bpe_merge(const rt__bpe *b, int32_t left, int32_t right, uint32_t *ret_rank,
                   int32_t *ret_id);

/* Stores the decoded bytes of token id: piece[0..len) in the byte
 * alphabet mapped back to bytes; code points outside the alphabet are kept
 * as their UTF-8. Returns 0, -EINVAL, -ENOMEM. */
int rt__bpe_set_piece(rt__bpe *b, uint32_t id, const char *piece, size_t len);

/* The decoded bytes of id (valid id; empty when never set). The pointer
 * lives as long as b. */
const char *rt__bpe_piece(const rt__bpe *b, uint32_t id, size_t *ret_len);

#endif
