/* SPDX-License-Identifier: MIT */
/*
 * Byte-level BPE pre-tokenizers; see tok-pretok.h. The gpt-2 matcher
 * follows the alternatives of the expression in order, leftmost first, the
 * way a backtracking regex engine (and llama.cpp's hand-written version of
 * the same expression) picks them; its results must equal llama.cpp's on
 * the shared conformance strings.
 */
#include "runtime/tok-pretok.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "runtime/unicode.h"

/* Classes of the code point at i, or none past the fragment's end (the
 * expression runs on each fragment separately). */
enum {
    C_NONE = 0,
    C_LETTER = 1,
    C_NUMBER = 2,
    C_SPACE = 4,
    C_OTHER = 8
};

static unsigned
cls(const uint32_t *cps, size_t i, size_t hi)
{
    if (i >= hi)
        return C_NONE;
    uint32_t c = cps[i];
    if (rt_unicode_is_letter(c))
        return C_LETTER;
    if (rt_unicode_is_number(c))
        return C_NUMBER;
    if (rt_unicode_is_space(c))
        return C_SPACE;
    return C_OTHER;
}

static uint32_t
at(const uint32_t *cps, size_t i, size_t hi)
{
    return i < hi ? cps[i] : UINT32_MAX;
}

/* Length of an English contraction ('s 't 'm 'd 're 've 'll) at i, or 0. */
static size_t
contraction(const uint32_t *cps, size_t i, size_t hi)
{
    if (at(cps, i, hi) != '\'')
        return 0;
    uint32_t a = at(cps, i + 1, hi), b = at(cps, i + 2, hi);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* The gpt-2 expression over cps[lo..hi); appends word ends. */
static size_t
split_gpt2(const uint32_t *cps, size_t lo, size_t hi, uint32_t *ends, size_t nw)
{
    size_t pos = lo;
    while (pos < hi) {
        size_t k = contraction(cps, pos, hi);
        if (k) {
            pos += k;
            ends[nw++] = (uint32_t)pos;
            continue;
        }
        /* " ?X+" for the classes L, N and "neither L, N nor \s". */
        bool sp = cps[pos] == ' ';
        unsigned c = sp ? cls(cps, pos + 1, hi) : cls(cps, pos, hi);
        if (c == C_LETTER || c == C_NUMBER || c == C_OTHER) {
            pos += sp;
            while (cls(cps, pos, hi) == c)
                pos++;
            ends[nw++] = (uint32_t)pos;
            continue;
        }
        size_t nsp = 0;
        while (cls(cps, pos + nsp, hi) == C_SPACE)
            nsp++;
        if (nsp > 1 && pos + nsp < hi) {
            /* \s+(?!\S): leave the last space to prefix the next word. */
            pos += nsp - 1;
        } else if (nsp > 0) {
            pos += nsp; /* \s+ */
        } else {
            pos++; /* unreachable: every code point has a class */
        }
        ends[nw++] = (uint32_t)pos;
    }
    return nw;
}

int
rt_pretok_from_name(const char *name, size_t len, rt_pretok *ret)
{
    static const struct {
        const char *name;
        rt_pretok pre;
    } known[] = {
        { "gpt-2", RT_PRETOK_GPT2 },
        { "phi-2", RT_PRETOK_GPT2 },
        { "starcoder", RT_PRETOK_STARCODER },
        { "refact", RT_PRETOK_STARCODER },
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i].name) == len && memcmp(known[i].name, name, len) == 0) {
            *ret = known[i].pre;
            return 0;
        }
    }
    return -ENOTSUP;
}

size_t
rt_pretok_split(rt_pretok pre, const uint32_t *cps, size_t n, uint32_t *ends)
{
    if (pre != RT_PRETOK_STARCODER)
        return split_gpt2(cps, 0, n, ends, 0);
    /* \p{N} isolated: each number code point is a word of its own, and the
     * runs between them are pre-tokenized separately. */
    size_t nw = 0, lo = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rt_unicode_is_number(cps[i]))
            continue;
        nw = split_gpt2(cps, lo, i, ends, nw);
        ends[nw++] = (uint32_t)(i + 1);
        lo = i + 1;
    }
    return split_gpt2(cps, lo, n, ends, nw);
}
