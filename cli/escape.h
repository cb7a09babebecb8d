/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_ESCAPE_H
#define NVX_CLI_ESCAPE_H
/*
 * Printing untrusted strings (file names, tensor names, metadata, trusted
 * comments): bytes that could move the cursor, end a line or start a terminal
 * escape sequence are shown as \xNN, characters that reorder or hide text
 * as \uNNNN. Other valid UTF-8 text is kept as it is.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Decodes one UTF-8 sequence at s[0..len). Returns its length (1..4) and
 * writes the code point, or 0 when the bytes are not valid, shortest-form
 * UTF-8 (overlong forms, surrogates and code points above U+10FFFF fail).
 */
size_t cli_utf8_next(const unsigned char *s, size_t len, uint32_t *ret_cp);

/*
 * Escapes s[0..len) into out[0..cap) (always NUL-terminated when cap > 0;
 * truncated on a character boundary with "..." when it does not fit). Escaped:
 * C0 controls, DEL, C1 controls (U+0080..U+009F), invalid UTF-8 and
 * backslash itself as \xNN; invisible formatting characters (bidi controls,
 * zero-width characters, U+2028/2029, BOM) as \uNNNN. Returns the length
 * written (without the NUL).
 */
size_t cli_escape(const char *s, size_t len, char *out, size_t cap);

/* Writes s[0..len) escaped as by cli_escape() to f. */
void cli_print_escaped(FILE *f, const char *s, size_t len);

/* Same for a NUL-terminated string. */
void cli_print_escaped_str(FILE *f, const char *s);

#endif
