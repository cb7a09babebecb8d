/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_TOK_PRETOK_H
#define NVX_RUNTIME_TOK_PRETOK_H
/*
 * Pre-tokenizers of byte-level BPE vocabularies: they cut text into words
 * before the merges run, as the regular expressions named by GGUF's
 * tokenizer.ggml.pre do. Hand-written matchers, no regex engine:
 *
 *   gpt-2 (also phi-2):
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   starcoder (also refact): first \p{N} (every digit its own word), then
 *     the gpt-2 expression on the text between digits.
 *
 * Pure functions over code points; no allocation.
 */
#include <stddef.h>
#include <stdint.h>

typedef enum rt_pretok {
    RT_PRETOK_GPT2 = 0,
    RT_PRETOK_STARCODER = 1,
    _RT_PRETOK_MAX,
} rt_pretok;

/* Maps a tokenizer.ggml.pre value (name[0..len), not NUL-terminated) to
 * its pre-tokenizer. Returns 0 and *ret, or -ENOTSUP for a name this
 * runtime does not implement. */
int rt_pretok_from_name(const char *name, size_t len, rt_pretok *ret);

/* Splits cps[0..n) into words and writes the end index (exclusive) of each
 * word, in order, to ends[]; ends must hold n entries (a word is never
 * empty). Returns the number of words. */
size_t rt_pretok_split(rt_pretok pre, const uint32_t *cps, size_t n, uint32_t *ends);

#endif
