/* SPDX-License-Identifier: MIT */
/*
 * SentencePiece-style BPE tokenizer; see tokenizer.h for the formats.
 *
 * The merge is llama2.c's greedy rule (repeatedly merge the adjacent pair
 * whose concatenation has the highest score, leftmost on ties), but run with
 * a binary heap of candidate pairs and a linked list of symbols, so encoding
 * a long text costs O(n log n) instead of O(n^2) lookups. Heap entries are
 * never removed; a stale entry is recognised when popped (see pair_valid).
 */
#include "runtime/tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/tok-bpe.h"
#include "runtime/tok-internal.h"
#include "runtime/unicode.h"

enum {
    /* Texts are indexed with int32 symbol numbers. */
    TOK_TEXT_MAX = (1 << 30),
    /* BPE working memory per text byte: a code point, a word end, and up
     * to 6 bytes of byte-alphabet spelling (see encode_bpe). */
    RT_TOK_WORK_PER_BYTE = 4 + 4 + 6,
};

struct rt_tokenizer {
    uint32_t n_vocab;
    uint32_t *off; /* [n_vocab] piece offset in blob */
    uint16_t *len; /* [n_vocab] piece length */
    float *score;  /* [n_vocab] */
    uint8_t *type; /* [n_vocab] rt_tok_type */
    char *blob;    /* all pieces, back to back */
    size_t blob_len, blob_cap;
    int32_t *sorted; /* ids of mergeable pieces, sorted by (bytes, id) */
    uint32_t n_sorted;
    uint32_t max_len; /* longest mergeable piece */
    int32_t byte_id[256];
    char bytes[256]; /* decode storage of byte tokens */
    int32_t bos, eos, unk;
    bool space_prefix; /* SentencePiece's dummy " " before the text */
    bool add_bos;      /* the vocabulary's wish; callers ask rt_tokenizer_add_bos */
    rt__bpe *bpe;      /* byte-level BPE tables, or NULL for SentencePiece */
    int32_t *special;  /* ids matched as whole strings, longest first */
    uint32_t n_special;
    bool finished;
};

void
rt_tokenizer_free(rt_tokenizer *t)
{
    if (!t)
        return;
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->blob);
    free(t->sorted);
    free(t->special);
    rt__bpe_free(t->bpe);
    free(t);
}

int
rt_tokenizer_new(uint32_t n_vocab, rt_tokenizer **ret)
{
    if (!ret || n_vocab == 0)
        return -EINVAL;
    if (n_vocab > RT_TOK_MAX_VOCAB)
        return -EMSGSIZE;
    rt_tokenizer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->n_vocab = n_vocab;
    t->off = calloc(n_vocab, sizeof(*t->off));
    t->len = calloc(n_vocab, sizeof(*t->len));
    t->score = calloc(n_vocab, sizeof(*t->score));
    t->type = calloc(n_vocab, sizeof(*t->type));
    if (!t->off || !t->len || !t->score || !t->type) {
        rt_tokenizer_free(t);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n_vocab; i++)
        t->type[i] = RT_TOK_TYPE_UNUSED;
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->bytes[b] = (char)b;
    }
    t->bos = RT_TOK_BOS_DEFAULT < n_vocab ? RT_TOK_BOS_DEFAULT : -1;
    t->eos = RT_TOK_EOS_DEFAULT < n_vocab ? RT_TOK_EOS_DEFAULT : -1;
    t->unk = RT_TOK_UNK_DEFAULT;
    t->space_prefix = true;
    t->add_bos = true;
    *ret = t;
    return 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Returns the byte a piece spelled <0xXX> stands for, or -1. */
static int
byte_piece(const char *p, size_t n)
{
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
        return -1;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

static int
blob_reserve(rt_tokenizer *t, size_t n)
{
    if (t->blob_cap - t->blob_len >= n)
        return 0;
    size_t cap = t->blob_cap ? t->blob_cap : 4096;
    while (cap - t->blob_len < n)
        cap *= 2;
    char *b = realloc(t->blob, cap);
    if (!b)
        return -ENOMEM;
    t->blob = b;
    t->blob_cap = cap;
    return 0;
}

int
rt_tokenizer_set(rt_tokenizer *t, uint32_t id, const char *piece, size_t len, float score,
                 rt_tok_type type, bool sp_space)
{
    /* The unsigned compare also catches a negative type, and does not warn
     * where the enum is an unsigned char (-fshort-enums on arm-none-eabi). */
    if (!t || t->finished || id >= t->n_vocab || len > RT_TOK_MAX_PIECE || (len && !piece) ||
        (unsigned)type >= (unsigned)_RT_TOK_TYPE_MAX)
        return -EINVAL;
    if (isnan(score))
        return -EBADMSG;
    int r = blob_reserve(t, len);
    if (r < 0)
        return r;
    size_t start = t->blob_len;
    if (start > UINT32_MAX - len)
        return -EMSGSIZE;
    char *dst = t->blob + start;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        /* U+2581 LOWER ONE EIGHTH BLOCK is SentencePiece's space. */
        if (sp_space && len - i >= 3 && (uint8_t)piece[i] == 0xE2 &&
            (uint8_t)piece[i + 1] == 0x96 && (uint8_t)piece[i + 2] == 0x81) {
            dst[n++] = ' ';
            i += 2;
            continue;
        }
        dst[n++] = piece[i];
    }
    if (type == RT_TOK_TYPE_BYTE && byte_piece(dst, n) < 0)
        return -EBADMSG;
    t->blob_len += n;
    t->off[id] = (uint32_t)start;
    t->len[id] = (uint16_t)n;
    t->score[id] = score;
    t->type[id] = (uint8_t)type;
    return 0;
}

int
rt_tokenizer_set_special(rt_tokenizer *t, int32_t bos, int32_t eos, int32_t unk)
{
    if (!t || t->finished || bos < 0 || (uint32_t)bos >= t->n_vocab || eos < -1 ||
        (eos >= 0 && (uint32_t)eos >= t->n_vocab) || unk < -1 ||
        (unk >= 0 && (uint32_t)unk >= t->n_vocab))
        return -EINVAL;
    t->bos = bos;
    t->eos = eos;
    t->unk = unk;
    return 0;
}

static bool
mergeable(uint8_t type)
{
    return type == RT_TOK_TYPE_NORMAL || type == RT_TOK_TYPE_USER_DEFINED ||
           type == RT_TOK_TYPE_UNDEFINED;
}

/* Orders pieces by bytes, shorter first on a common prefix, then by id. */
static int
piece_cmp(const rt_tokenizer *t, const char *a, size_t an, int32_t aid, int32_t bid)
{
    size_t bn = t->len[bid];
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, t->blob + t->off[bid], n) : 0;
    if (c)
        return c;
    if (an != bn)
        return an < bn ? -1 : 1;
    return aid < bid ? -1 : aid > bid;
}

/* Bottom-up merge sort of ids (qsort has no context argument in C17). */
static int
sort_ids(const rt_tokenizer *t, int32_t *ids, uint32_t n)
{
    int32_t *tmp = malloc((size_t)n * sizeof(*tmp) + 1);
    if (!tmp)
        return -ENOMEM;
    int32_t *src = ids, *dst = tmp;
    for (uint32_t w = 1; w < n; w *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * w) {
            uint32_t mid = lo + w < n ? lo + w : n;
            uint32_t hi = mid + w < n ? mid + w : n;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int32_t a = src[i], b = src[j];
                if (piece_cmp(t, t->blob + t->off[a], t->len[a], a, b) <= 0)
                    dst[k++] = src[i++];
                else
                    dst[k++] = src[j++];
            }
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        int32_t *s = src;
        src = dst;
        dst = s;
    }
    if (src != ids)
        memcpy(ids, src, (size_t)n * sizeof(*ids));
    free(tmp);
    return 0;
}

/* Control, user-defined and unknown tokens are matched in the text as whole
 * strings before any merging (llama.cpp's special-token partition), longest
 * first; a counting sort by length keeps this O(n) for hostile vocabularies. */
static int
collect_special(rt_tokenizer *t)
{
    uint32_t count[RT_TOK_MAX_PIECE + 2] = { 0 };
    uint32_t n = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if (t->len[id] == 0 || (ty != RT_TOK_TYPE_CONTROL && ty != RT_TOK_TYPE_USER_DEFINED &&
                                ty != RT_TOK_TYPE_UNKNOWN))
            continue;
        count[RT_TOK_MAX_PIECE - t->len[id] + 1]++;
        n++;
    }
    free(t->special);
    t->special = malloc((size_t)(n ? n : 1) * sizeof(*t->special));
    if (!t->special)
        return -ENOMEM;
    for (uint32_t i = 1; i < RT_TOK_MAX_PIECE + 2; i++)
        count[i] += count[i - 1];
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if (t->len[id] == 0 || (ty != RT_TOK_TYPE_CONTROL && ty != RT_TOK_TYPE_USER_DEFINED &&
                                ty != RT_TOK_TYPE_UNKNOWN))
            continue;
        t->special[count[RT_TOK_MAX_PIECE - t->len[id]]++] = (int32_t)id;
    }
    t->n_special = n;
    return 0;
}

int
rt_tokenizer_finish(rt_tokenizer *t)
{
    if (!t || t->finished || t->bos < 0)
        return -EINVAL;
    t->sorted = malloc((size_t)t->n_vocab * sizeof(*t->sorted));
    if (!t->sorted)
        return -ENOMEM;
    t->n_sorted = 0;
    t->max_len = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] == RT_TOK_TYPE_BYTE) {
            int b = byte_piece(t->blob + t->off[id], t->len[id]);
            if (b >= 0 && t->byte_id[b] < 0)
                t->byte_id[b] = (int32_t)id;
            continue;
        }
        if (!mergeable(t->type[id]) || t->len[id] == 0)
            continue;
        t->sorted[t->n_sorted++] = (int32_t)id;
        if (t->len[id] > t->max_len)
            t->max_len = t->len[id];
    }
    int r = sort_ids(t, t->sorted, t->n_sorted);
    if (r < 0)
        return r;
    r = collect_special(t);
    if (r < 0)
        return r;
    t->finished = true;
    return 0;
}

/* Lowest id whose piece equals s[0..n), or -1. */
static int32_t
lookup(const rt_tokenizer *t, const char *s, size_t n)
{
    if (n == 0 || n > t->max_len)
        return -1;
    uint32_t lo = 0, hi = t->n_sorted;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        /* id -1 sorts before every real id of an equal piece. */
        if (piece_cmp(t, s, n, -1, t->sorted[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n_sorted) {
        int32_t id = t->sorted[lo];
        if (t->len[id] == n && memcmp(t->blob + t->off[id], s, n) == 0)
            return id;
    }
    return -1;
}

static bool
is_byte_token(const char *p, size_t n, int *ret_b)
{
    int b = byte_piece(p, n);
    if (b < 0)
        return false;
    *ret_b = b;
    return true;
}

int
rt_tokenizer_load_llama2c(const uint8_t *buf, size_t len, uint32_t n_vocab, rt_tokenizer **ret)
{
    if (!ret || (!buf && len))
        return -EINVAL;
    if (n_vocab > RT_TOK_MAX_VOCAB)
        return -EMSGSIZE;
    size_t off = 0;
    if (len < 4 || (int32_t)le32_load(buf) < 0)
        return -EBADMSG;
    off = 4;
    /* Count the records first when the caller does not know n_vocab. */
    uint32_t n = n_vocab;
    if (n == 0) {
        size_t o = off;
        while (o < len) {
            if (len - o < 8 || n == RT_TOK_MAX_VOCAB)
                return len - o < 8 ? -EBADMSG : -EMSGSIZE;
            uint32_t pl = le32_load(buf + o + 4);
            if (pl > RT_TOK_MAX_PIECE || len - o - 8 < pl)
                return -EBADMSG;
            o += 8 + pl;
            n++;
        }
        if (n == 0)
            return -EBADMSG;
    }
    rt_tokenizer *t = NULL;
    int r = rt_tokenizer_new(n, &t);
    if (r < 0)
        return r;
    for (uint32_t id = 0; id < n; id++) {
        r = -EBADMSG;
        if (len - off < 8)
            goto fail;
        uint32_t bits = le32_load(buf + off);
        float score;
        memcpy(&score, &bits, sizeof(score));
        uint32_t pl = le32_load(buf + off + 4);
        off += 8;
        if (pl > RT_TOK_MAX_PIECE || len - off < pl)
            goto fail;
        const char *p = (const char *)buf + off;
        off += pl;
        int b;
        rt_tok_type type = RT_TOK_TYPE_NORMAL;
        if (id == RT_TOK_UNK_DEFAULT)
            type = RT_TOK_TYPE_UNKNOWN;
        else if (id == RT_TOK_BOS_DEFAULT || id == RT_TOK_EOS_DEFAULT)
            type = RT_TOK_TYPE_CONTROL;
        else if (is_byte_token(p, pl, &b))
            type = RT_TOK_TYPE_BYTE;
        r = rt_tokenizer_set(t, id, p, pl, score, type, false);
        if (r < 0)
            goto fail;
    }
    if (n == 1) {
        /* A one-piece vocabulary has no BOS; it is useless and malformed. */
        r = -EBADMSG;
        goto fail;
    }
    r = rt_tokenizer_finish(t);
    if (r < 0)
        goto fail;
    *ret = t;
    return 0;
fail:
    rt_tokenizer_free(t);
    return r;
}

uint32_t
rt_tokenizer_n_vocab(const rt_tokenizer *t)
{
    return t->n_vocab;
}

int32_t
rt_tokenizer_bos(const rt_tokenizer *t)
{
    return t->bos;
}

int32_t
rt_tokenizer_eos(const rt_tokenizer *t)
{
    return t->eos;
}

size_t
rt_tokenizer_encode_bound(size_t len)
{
    return 3 * len + 3;
}

bool
rt_tokenizer_add_bos(const rt_tokenizer *t)
{
    return t->add_bos;
}

int32_t
rt__tokenizer_lookup(const rt_tokenizer *t, const char *s, size_t n)
{
    return lookup(t, s, n);
}

void
rt__tokenizer_set_mode(rt_tokenizer *t, bool space_prefix, bool add_bos)
{
    t->space_prefix = space_prefix;
    t->add_bos = add_bos;
}

void
rt__tokenizer_set_bpe(rt_tokenizer *t, rt__bpe *bpe)
{
    rt__bpe_free(t->bpe);
    t->bpe = bpe;
}

/* ---- encoding ---- */

typedef struct sym {
    uint32_t start, len; /* span of the text being merged */
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    bool merge;         /* false for byte-fallback and dead symbols */
} sym;

typedef struct pair {
    float score; /* SentencePiece: the piece's score; BPE: -rank */
    int32_t left, right, id;
    uint32_t len; /* left.len + right.len when pushed */
} pair;

typedef struct enc {
    const rt_tokenizer *t;
    const char *s; /* text being merged */
    sym *syms;
    pair *heap;
    size_t n_heap;
    int32_t *tok; /* output */
    size_t cap, n;
} enc;

/* True when a outranks b: higher score, then leftmost. */
static bool
pair_before(const pair *a, const pair *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->left < b->left;
}

static void
heap_push(enc *e, pair p)
{
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = p;
}

static pair
heap_pop(enc *e)
{
    pair top = e->heap[0];
    pair last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_before(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!pair_before(&e->heap[c], &last))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

/* Pushes the pair (left, left.next) when it can merge: for SentencePiece
 * when the concatenation is a piece, for BPE when a merge rule names it. */
static void
try_pair(enc *e, int32_t left)
{
    if (left < 0)
        return;
    const sym *a = &e->syms[left];
    if (a->next < 0 || !a->merge || !e->syms[a->next].merge)
        return;
    const sym *b = &e->syms[a->next];
    int32_t id;
    float score;
    if (e->t->bpe) {
        uint32_t rank;
        if (!rt__bpe_merge(e->t->bpe, a->id, b->id, &rank, &id))
            return;
        score = -(float)rank; /* exact: ranks < RT_BPE_MAX_MERGES < 2^24 */
    } else {
        /* b starts where a ends, so the concatenation is a span of the text. */
        id = lookup(e->t, e->s + a->start, (size_t)a->len + b->len);
        if (id < 0)
            return;
        score = e->t->score[id];
    }
    heap_push(
        e,
        (pair){ .score = score, .left = left, .right = a->next, .id = id, .len = a->len + b->len });
}

/* A popped pair is stale if either side was merged away or grew since. */
static bool
pair_valid(const enc *e, const pair *p)
{
    const sym *a = &e->syms[p->left];
    return a->merge && a->next == p->right && a->len + e->syms[p->right].len == p->len;
}

/* Splits s[0..n) into code-point symbols, with byte fallback. */
static size_t
split(enc *e, size_t n)
{
    const rt_tokenizer *t = e->t;
    size_t ns = 0;
    for (size_t i = 0; i < n;) {
        /* A lead byte takes up to three continuation bytes (as llama2.c
         * does); an ASCII or stray continuation byte stands alone, so the
         * dummy-prefix space never fuses with invalid UTF-8 after it. */
        size_t cl = 1;
        while ((uint8_t)e->s[i] >= 0xC0 && cl < 4 && i + cl < n &&
               ((uint8_t)e->s[i + cl] & 0xC0) == 0x80)
            cl++;
        int32_t id = lookup(t, e->s + i, cl);
        if (id >= 0) {
            e->syms[ns++] =
                (sym){ .start = (uint32_t)i, .len = (uint32_t)cl, .id = id, .merge = true };
        } else if (!t->bpe) {
            for (size_t k = 0; k < cl; k++) {
                int32_t bid = t->byte_id[(uint8_t)e->s[i + k]];
                if (bid < 0)
                    bid = t->unk;
                if (bid < 0)
                    continue; /* no byte token and no <unk>: the byte is dropped */
                e->syms[ns++] =
                    (sym){ .start = (uint32_t)(i + k), .len = 1, .id = bid, .merge = false };
            }
        }
        /* A BPE byte symbol missing from the vocabulary is dropped, as
         * llama.cpp does (it finds no piece for it). */
        i += cl;
    }
    for (size_t k = 0; k < ns; k++) {
        e->syms[k].prev = (int32_t)k - 1;
        e->syms[k].next = k + 1 < ns ? (int32_t)k + 1 : -1;
    }
    return ns;
}

static int
emit(enc *e, int32_t id)
{
    if (e->n == e->cap)
        return -EMSGSIZE;
    e->tok[e->n++] = id;
    return 0;
}

/* Merges s[0..n) (n >= 1) and appends its tokens. */
static int
merge_text(enc *e, const char *s, size_t n)
{
    e->s = s;
    e->n_heap = 0;
    size_t ns = split(e, n);
    for (size_t k = 0; k + 1 < ns; k++)
        try_pair(e, (int32_t)k);
    while (e->n_heap > 0) {
        pair p = heap_pop(e);
        if (!pair_valid(e, &p))
            continue;
        sym *a = &e->syms[p.left], *b = &e->syms[p.right];
        a->len += b->len;
        a->id = p.id;
        a->next = b->next;
        if (b->next >= 0)
            e->syms[b->next].prev = p.left;
        b->merge = false;
        b->next = b->prev = -1;
        try_pair(e, a->prev);
        try_pair(e, p.left);
    }
    for (int32_t k = ns ? 0 : -1; k >= 0; k = e->syms[k].next) {
        int r = emit(e, e->syms[k].id);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Byte-level BPE of one raw fragment: pre-tokenize into words, spell each
 * word in the byte alphabet, merge each word on its own. work holds
 * RT_TOK_WORK_PER_BYTE bytes per text byte. */
static int
encode_bpe(enc *e, const char *text, size_t len, char *work)
{
    uint32_t *cps = (uint32_t *)(void *)work;
    uint32_t *ends = cps + len;
    char *mapped = (char *)(ends + len);
    size_t ncp = 0;
    for (size_t i = 0; i < len;) {
        size_t cl;
        cps[ncp++] = rt_utf8_decode(text + i, len - i, &cl);
        i += cl;
    }
    size_t nw = rt_pretok_split(rt__bpe_pretok(e->t->bpe), cps, ncp, ends);
    size_t w0 = 0;
    for (size_t w = 0; w < nw; w++) {
        /* Invalid UTF-8 was read as U+FFFD and is spelled as its 3 bytes,
         * as llama.cpp does; each byte then maps to at most 2 bytes. */
        size_t m = 0;
        for (size_t k = w0; k < ends[w]; k++) {
            char u[RT_UTF8_MAX];
            size_t ul = rt_utf8_encode(cps[k], u);
            for (size_t j = 0; j < ul; j++)
                m += rt_utf8_encode(rt__bpe_byte_cp((uint8_t)u[j]), mapped + m);
        }
        w0 = ends[w];
        int r = merge_text(e, mapped, m);
        if (r < 0)
            return r;
    }
    return 0;
}

/* A fragment of the text: raw bytes (id < 0) or a special token. */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

/* Cuts the special tokens out of text, longest token first, each at every
 * occurrence in the raw fragments left by the longer ones (llama.cpp's
 * order). Control and unknown tokens only with parse_special. frags and
 * tmp hold 2 * len + 1 entries. Returns the fragment count. */
static size_t
partition(const rt_tokenizer *t, const char *text, size_t len, bool parse_special, frag *frags,
          frag *tmp)
{
    size_t nf = 0;
    frags[nf++] = (frag){ .off = 0, .len = len, .id = -1 };
    for (uint32_t s = 0; s < t->n_special; s++) {
        int32_t id = t->special[s];
        if (!parse_special && t->type[id] != RT_TOK_TYPE_USER_DEFINED)
            continue;
        const char *p = t->blob + t->off[id];
        size_t pl = t->len[id], nt = 0;
        for (size_t f = 0; f < nf; f++) {
            frag fr = frags[f];
            if (fr.id >= 0 || fr.len < pl) {
                tmp[nt++] = fr;
                continue;
            }
            size_t start = fr.off, end = fr.off + fr.len;
            for (size_t i = fr.off; end - i >= pl;) {
                if (memcmp(text + i, p, pl) != 0) {
                    i++;
                    continue;
                }
                if (i > start)
                    tmp[nt++] = (frag){ .off = start, .len = i - start, .id = -1 };
                tmp[nt++] = (frag){ .off = i, .len = pl, .id = id };
                i += pl;
                start = i;
            }
            if (start < end)
                tmp[nt++] = (frag){ .off = start, .len = end - start, .id = -1 };
        }
        memcpy(frags, tmp, nt * sizeof(*frags));
        nf = nt;
    }
    return nf;
}

int
rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, unsigned flags,
                    int32_t *tokens, size_t cap, size_t *ret_n)
{
    if (!t || !t->finished || (len && !text) || !tokens || !ret_n)
        return -EINVAL;
    if (len >= TOK_TEXT_MAX)
        return -EMSGSIZE;
    enc e = { .t = t, .tok = tokens, .cap = cap };
    int r = 0;
    frag *frags = NULL, *tmp = NULL;
    char *work = NULL;
    if (flags & RT_TOK_ADD_BOS) {
        r = emit(&e, t->bos);
        if (r < 0)
            return r;
    }
    if (len > 0) {
        /* Sizes: a fragment may gain the dummy prefix; a BPE byte becomes
         * up to 3 code points (U+FFFD) of up to 2 mapped bytes each. */
        size_t nsym = t->bpe ? 6 * len : len + 1;
        frags = malloc((2 * len + 1) * sizeof(*frags));
        tmp = malloc((2 * len + 1) * sizeof(*tmp));
        work = malloc(t->bpe ? RT_TOK_WORK_PER_BYTE * len : len + 1);
        e.syms = malloc(nsym * sizeof(*e.syms));
        e.heap = malloc(3 * nsym * sizeof(*e.heap));
        if (!frags || !tmp || !work || !e.syms || !e.heap) {
            r = -ENOMEM;
            goto out;
        }
        size_t nf = partition(t, text, len, flags & RT_TOK_PARSE_SPECIAL, frags, tmp);
        bool after_special = true;
        for (size_t f = 0; f < nf && r >= 0; f++) {
            const char *s = text + frags[f].off;
            size_t n = frags[f].len;
            if (frags[f].id >= 0) {
                r = emit(&e, frags[f].id);
                after_special = true;
            } else if (t->bpe) {
                r = encode_bpe(&e, s, n, work);
            } else {
                /* The dummy prefix: SentencePiece treats the text (and
                 * text after a special token) as if preceded by a space,
                 * so the first word gets its usual "▁word" piece. */
                size_t pn = 0;
                if (t->space_prefix && after_special)
                    work[pn++] = ' ';
                memcpy(work + pn, s, n);
                r = merge_text(&e, work, pn + n);
                after_special = false;
            }
        }
        if (r < 0)
            goto out;
    }
    if ((flags & RT_TOK_ADD_EOS) && t->eos >= 0) {
        r = emit(&e, t->eos);
        if (r < 0)
            goto out;
    }
    *ret_n = e.n;
out:
    free(frags);
    free(tmp);
    free(work);
    free(e.syms);
    free(e.heap);
    return r;
}

int
rt_tokenizer_decode(const rt_tokenizer *t, int32_t prev, int32_t id, const char **ret_piece,
                    size_t *ret_len)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab || !ret_piece || !ret_len)
        return -EINVAL;
    const char *p = t->blob ? t->blob + t->off[id] : "";
    size_t n = t->len[id];
    int b;
    switch (t->type[id]) {
    case RT_TOK_TYPE_CONTROL:
    case RT_TOK_TYPE_UNUSED:
        n = 0;
        break;
    case RT_TOK_TYPE_BYTE:
        if (is_byte_token(p, n, &b)) {
            p = &t->bytes[b];
            /* A vocabulary without a " " piece spells the dummy prefix
             * <0x20>; it is stripped like a leading space. */
            n = b == ' ' && prev == t->bos && prev >= 0 && t->space_prefix ? 0 : 1;
        }
        break;
    case RT_TOK_TYPE_USER_DEFINED:
        /* Matched as written in the text, so decoded as written. */
        break;
    default:
        if (t->bpe) {
            p = rt__bpe_piece(t->bpe, (uint32_t)id, &n);
        } else if (prev == t->bos && prev >= 0 && n > 0 && p[0] == ' ' && t->space_prefix) {
            p++;
            n--;
        }
        break;
    }
    *ret_piece = p;
    *ret_len = n;
    return 0;
}

int
rt_tokenizer_piece(const rt_tokenizer *t, int32_t id, const char **ret_piece, size_t *ret_len,
                   float *ret_score, rt_tok_type *ret_type)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
        return -EINVAL;
    if (ret_piece)
        *ret_piece = t->blob ? t->blob + t->off[id] : "";
    if (ret_len)
        *ret_len = t->len[id];
    if (ret_score)
        *ret_score = t->score[id];
    if (ret_type)
        *ret_type = (rt_tok_type)t->type[id];
    return 0;
}
