/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_UNICODE_H
#define NVX_RUNTIME_UNICODE_H
/*
 * The little Unicode the tokenizers need: a UTF-8 decoder that never fails
 * (it reads outside text), an encoder, and the classes the byte-level BPE
 * pre-tokenizers test (\p{L}, \p{N}, \s). Pure functions, no state.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    RT_UNICODE_REPLACEMENT = 0xFFFD,
    RT_UNICODE_MAX = 0x10FFFF,
    RT_UTF8_MAX = 4, /* bytes of one encoded code point */
};

/* Decodes the code point at s[0..n) (n >= 1) and writes the bytes it took
 * to *ret_len (1..4, never past n). Follows llama.cpp's reader, so that
 * tokenization matches it: a lead byte and the right number of continuation
 * bytes form a code point (overlong forms are not rejected); anything else
 * (stray continuation byte, truncated sequence, 0xF8..0xFF, a value past
 * U+10FFFF) is one byte read as U+FFFD. */
uint32_t rt_utf8_decode(const char *s, size_t n, size_t *ret_len);

/* Writes cp (<= RT_UNICODE_MAX, else U+FFFD is written) as UTF-8 to
 * out[0..RT_UTF8_MAX) and returns the byte count. */
size_t rt_utf8_encode(uint32_t cp, char out[static RT_UTF8_MAX]);

/* General category L* (regex \p{L}). */
bool rt_unicode_is_letter(uint32_t cp);
/* General category N* (regex \p{N}). */
bool rt_unicode_is_number(uint32_t cp);
/* The White_Space property (regex \s in the pre-tokenizers). */
bool rt_unicode_is_space(uint32_t cp);

#endif
