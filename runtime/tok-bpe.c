/* SPDX-License-Identifier: MIT */
/*
 * Byte-level BPE tables; see tok-bpe.h. Merges live in an open-addressing
 * hash keyed by the pair of token ids: the merge loop asks about every
 * adjacent pair, so the lookup must be O(1), and ids (not strings) are
 * what the loop holds.
 */
#include "runtime/tok-bpe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/unicode.h"

typedef struct merge {
    int32_t left, right; /* left < 0: empty slot */
    int32_t result;
    uint32_t rank;
} merge;

struct rt__bpe {
    rt_pretok pre;
    merge *slots;
    uint32_t mask; /* slots - 1, a power of two minus one */
    uint32_t n_merges, cap_merges;
    uint32_t n_vocab;
    uint32_t *off; /* [n_vocab] decoded piece offset in blob */
    uint32_t *len; /* [n_vocab] decoded piece length */
    char *blob;
    size_t blob_len, blob_cap;
};

/* Whether byte b is printable and so spelled by itself. */
static bool
self_spelled(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t
rt__bpe_byte_cp(uint8_t b)
{
    if (self_spelled(b))
        return b;
    /* The n-th byte that is not self-spelled maps to U+0100 + n. */
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        n += !self_spelled(i);
    return 0x100 + n;
}

int
rt__bpe_cp_byte(uint32_t cp)
{
    if (cp < 0x100)
        return self_spelled(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68)
        return -1;
    uint32_t n = cp - 0x100;
    for (unsigned i = 0; i < 256; i++) {
        if (self_spelled(i))
            continue;
        if (n-- == 0)
            return (int)i;
    }
    return -1;
}

void
rt__bpe_free(rt__bpe *b)
{
    if (!b)
        return;
    free(b->slots);
    free(b->off);
    free(b->len);
    free(b->blob);
    free(b);
}

int
rt__bpe_new(rt_pretok pre, uint32_t n_merges, uint32_t n_vocab, rt__bpe **ret)
{
    if (n_merges > RT_BPE_MAX_MERGES)
        return -EMSGSIZE;
    rt__bpe *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->pre = pre;
    /* Load factor at most 1/2 keeps probe chains short. */
    uint32_t n_slots = 16;
    while (n_slots < 2 * n_merges)
        n_slots *= 2;
    b->slots = malloc((size_t)n_slots * sizeof(*b->slots));
    b->off = calloc(n_vocab ? n_vocab : 1, sizeof(*b->off));
    b->len = calloc(n_vocab ? n_vocab : 1, sizeof(*b->len));
    if (!b->slots || !b->off || !b->len) {
        rt__bpe_free(b);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n_slots; i++)
        b->slots[i].left = -1;
    b->mask = n_slots - 1;
    b->cap_merges = n_merges;
    b->n_vocab = n_vocab;
    *ret = b;
    return 0;
}

rt_pretok
rt__bpe_pretok(const rt__bpe *b)
{
    return b->pre;
}

static uint32_t
pair_hash(int32_t left, int32_t right)
{
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

int
rt__bpe_add_merge(rt__bpe *b, int32_t left, int32_t right, int32_t result, uint32_t rank)
{
    if (left < 0 || right < 0 || result < 0)
        return -EINVAL;
    if (b->n_merges == b->cap_merges)
        return -EMSGSIZE;
    for (uint32_t i = pair_hash(left, right) & b->mask;; i = (i + 1) & b->mask) {
        merge *m = &b->slots[i];
        if (m->left < 0) {
            *m = (merge){ .left = left, .right = right, .result = result, .rank = rank };
            b->n_merges++;
            return 0;
        }
        if (m->left == left && m->right == right)
            return 0; /* a duplicate keeps its first, lower rank */
    }
}

bool
rt__bpe_merge(const rt__bpe *b, int32_t left, int32_t right, uint32_t *ret_rank, int32_t *ret_id)
{
    for (uint32_t i = pair_hash(left, right) & b->mask;; i = (i + 1) & b->mask) {
        const merge *m = &b->slots[i];
        if (m->left < 0)
            return false;
        if (m->left == left && m->right == right) {
            *ret_rank = m->rank;
            *ret_id = m->result;
            return true;
        }
    }
}

int
rt__bpe_set_piece(rt__bpe *b, uint32_t id, const char *piece, size_t len)
{
    if (id >= b->n_vocab || (len && !piece) || len > UINT32_MAX)
        return -EINVAL;
    /* Decoding never grows a piece: a mapped byte takes 1-2 bytes and an
     * unmapped code point is copied as it was read. */
    if (b->blob_cap - b->blob_len < len) {
        size_t cap = b->blob_cap ? b->blob_cap : 4096;
        while (cap - b->blob_len < len)
            cap *= 2;
        char *nb = realloc(b->blob, cap);
        if (!nb)
            return -ENOMEM;
        b->blob = nb;
        b->blob_cap = cap;
    }
    if (b->blob_len > UINT32_MAX - len)
        return -EMSGSIZE;
    char *dst = b->blob + b->blob_len;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t cl;
        uint32_t cp = rt_utf8_decode(piece + i, len - i, &cl);
        int byte = rt__bpe_cp_byte(cp);
        if (byte >= 0 && cp != RT_UNICODE_REPLACEMENT) {
            dst[n++] = (char)byte;
        } else {
            memcpy(dst + n, piece + i, cl);
            n += cl;
        }
        i += cl;
    }
    b->off[id] = (uint32_t)b->blob_len;
    b->len[id] = (uint32_t)n;
    b->blob_len += n;
    return 0;
}

const char *
rt__bpe_piece(const rt__bpe *b, uint32_t id, size_t *ret_len)
{
    *ret_len = b->len[id];
    return b->blob ? b->blob + b->off[id] : "";
}
