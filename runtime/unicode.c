/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 and Unicode classes; see unicode.h. The category tables are
 * generated data (unicode-table.h); lookups are binary searches over
 * sorted ranges, a few hundred entries, so no per-code-point table is
 * needed (it would cost a microcontroller 1 MiB).
 */
#include "runtime/unicode.h"

#include "runtime/unicode-table.h"

uint32_t
rt_utf8_decode(const char *s, size_t n, size_t *ret_len)
{
    const uint8_t *p = (const uint8_t *)s;
    uint32_t c = p[0];
    size_t need;
    if (c < 0x80) {
        *ret_len = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        need = 2;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4;
        c &= 0x07;
    } else {
        *ret_len = 1;
        return RT_UNICODE_REPLACEMENT;
    }
    if (n < need) {
        *ret_len = 1;
        return RT_UNICODE_REPLACEMENT;
    }
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *ret_len = 1;
            return RT_UNICODE_REPLACEMENT;
        }
        c = c << 6 | (p[i] & 0x3F);
    }
    if (c > RT_UNICODE_MAX) {
        *ret_len = 1;
        return RT_UNICODE_REPLACEMENT;
    }
    *ret_len = need;
    return c;
}

size_t
rt_utf8_encode(uint32_t cp, char out[static RT_UTF8_MAX])
{
    if (cp > RT_UNICODE_MAX)
        cp = RT_UNICODE_REPLACEMENT;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool
in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp > r[mid][1])
            lo = mid + 1;
        else if (cp < r[mid][0])
            hi = mid;
        else
            return true;
    }
    return false;
}

bool
rt_unicode_is_letter(uint32_t cp)
{
    /* ASCII first: most text of the test strings and of prompts. */
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(unicode_letter, sizeof(unicode_letter) / sizeof(unicode_letter[0]), cp);
}

bool
rt_unicode_is_number(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(unicode_number, sizeof(unicode_number) / sizeof(unicode_number[0]), cp);
}

bool
rt_unicode_is_space(uint32_t cp)
{
    /* Unicode's White_Space property, the set llama.cpp's \s uses. */
    switch (cp) {
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x2000 && cp <= 0x200A);
    }
}
