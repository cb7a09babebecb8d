/* SPDX-License-Identifier: MIT */
#include "cli/escape.h"

#include <stdbool.h>
#include <string.h>

size_t
cli_utf8_next(const unsigned char *s, size_t len, uint32_t *ret_cp)
{
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *ret_cp = c;
        return 1;
    }
    size_t n;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret_cp = cp;
    return n;
}

/* Invisible code points that reorder or hide the text around them: bidi
 * embeddings, overrides and isolates ("Trojan Source"), zero-width
 * characters, line/paragraph separators and the BOM. A tensor name or a
 * trusted comment must not make the rest of a line read differently. */
static bool
is_format_char(uint32_t cp)
{
    return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

/* Returns how many bytes of s[0..len) form the next unit and writes its
 * printable form into buf (at most 16 bytes incl. NUL). */
static size_t
next_unit(const unsigned char *s, size_t len, char buf[16])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t cp;
    size_t n = cli_utf8_next(s, len, &cp);
    if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
        buf[0] = '\\', buf[1] = 'x', buf[2] = hex[s[0] >> 4], buf[3] = hex[s[0] & 15];
        buf[4] = '\0';
        return 1;
    }
    if (is_format_char(cp)) {
        buf[0] = '\\', buf[1] = 'u';
        for (int i = 0; i < 4; i++)
            buf[2 + i] = hex[(cp >> (12 - 4 * i)) & 15];
        buf[6] = '\0';
        return n;
    }
    if (cp == '\\') {
        memcpy(buf, "\\\\", 3);
        return 1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return n;
}

size_t
cli_escape(const char *s, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        char unit[16];
        size_t n = next_unit(u + i, len - i, unit);
        size_t ul = strlen(unit);
        /* Keep room for "..." and the NUL if more input follows. */
        size_t need = ul + (i + n < len ? 4 : 1);
        if (cap - o < need) {
            if (cap - o >= 4) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, unit, ul);
        o += ul;
        i += n;
    }
    out[o] = '\0';
    return o;
}

void
cli_print_escaped(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        char unit[16];
        i += next_unit(u + i, len - i, unit);
        fputs(unit, f);
    }
}

void
cli_print_escaped_str(FILE *f, const char *s)
{
    cli_print_escaped(f, s, strlen(s));
}
