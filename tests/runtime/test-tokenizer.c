/* SPDX-License-Identifier: MIT */
/*
 * Tokenizer tests: the reference prompt encoding of reference.md, round
 * trips with both shared tokenizers (UTF-8 of many scripts, emoji, random
 * bytes that need byte fallback), the heap-based merge against a naive
 * llama2.c-style O(n^2) merge, and the strict loader on malformed files.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/tokenizer.h"
#include "testutil.h"

static rt_tokenizer *
load(const char *name)
{
    char *p = tu_model_path(name);
    if (!p)
        return NULL;
    rt_tokenizer *t = NULL;
    int r = rt_tokenizer_load_llama2c_file(p, 0, &t);
    free(p);
    assert_int_equal(r, 0);
    return t;
}

/* Encodes with BOS and returns a malloc'd token array. */
static int32_t *
enc(const rt_tokenizer *t, const char *s, size_t len, size_t *ret_n)
{
    size_t cap = rt_tokenizer_encode_bound(len);
    int32_t *tok = malloc(cap * sizeof(*tok));
    assert_non_null(tok);
    assert_int_equal(rt_tokenizer_encode(t, s, len, RT_TOK_ADD_BOS, tok, cap, ret_n), 0);
    return tok;
}

/* Decodes tokens[1..n) (after BOS) into a malloc'd buffer. */
static char *
dec(const rt_tokenizer *t, const int32_t *tok, size_t n, size_t *ret_len)
{
    size_t cap = 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (size_t i = 1; i < n; i++) {
        const char *p;
        size_t pl;
        assert_int_equal(rt_tokenizer_decode(t, tok[i - 1], tok[i], &p, &pl), 0);
        while (cap - len < pl + 1) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        memcpy(out + len, p, pl);
        len += pl;
    }
    out[len] = '\0';
    *ret_len = len;
    return out;
}

static void
roundtrip(const rt_tokenizer *t, const char *s, size_t len)
{
    size_t n, dl;
    int32_t *tok = enc(t, s, len, &n);
    assert_true(n >= 1);
    assert_int_equal(tok[0], rt_tokenizer_bos(t));
    char *d = dec(t, tok, n, &dl);
    assert_int_equal(dl, len);
    assert_memory_equal(d, s, len);
    free(d);
    free(tok);
}

static void
test_reference_prompt(void **state)
{
    (void)state;
    rt_tokenizer *t = load("tok512.bin");
    if (!t)
        skip();
    /* reference.md: "I dreamed" encodes as BOS + [303 281 269 435 447 328]. */
    static const int32_t want[] = { 1, 303, 281, 269, 435, 447, 328 };
    size_t n;
    int32_t *tok = enc(t, "I dreamed", 9, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(tok, want, sizeof(want));
    free(tok);
    /* An empty prompt is BOS alone (no dummy prefix). */
    tok = enc(t, "", 0, &n);
    assert_int_equal(n, 1);
    free(tok);
    rt_tokenizer_free(t);
}

static const char *const texts[] = {
    "I dreamed",
    "Hello world",
    " leading space and  double  spaces ",
    "Echoes of vectors unfold, a gentle hum of precision.",
    "line one\nline two\ttab\r\n",
    "caf\xc3\xa9 na\xc3\xafve \xc3\xbc\xc3\x9f",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87",      /* Japanese */
    "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xce\xb1\xce\xb2", /* Cyrillic, Greek */
    "\xf0\x9f\xa4\x96\xf0\x9f\x8c\x8d emoji",                            /* 4-byte code points */
    "\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9",          /* Arabic */
    "<0x41> <s> </s> <unk> look like special pieces",
    "\x01\x02\x7f control bytes",
};

static void
roundtrip_all(const char *name)
{
    rt_tokenizer *t = load(name);
    if (!t)
        skip();
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        roundtrip(t, texts[i], strlen(texts[i]));
    /* Random bytes: invalid UTF-8, NULs, lone continuation bytes; every byte
     * comes back through the <0xXX> fallback. */
    uint8_t buf[300];
    for (uint64_t seed = 1; seed <= 40; seed++) {
        size_t len = (size_t)(seed * 7 % sizeof(buf));
        tu_fill_random(buf, len, seed);
        roundtrip(t, (const char *)buf, len);
    }
    rt_tokenizer_free(t);
}

static void
test_roundtrip_tok512(void **state)
{
    (void)state;
    roundtrip_all("tok512.bin");
}

static void
test_roundtrip_llama2(void **state)
{
    (void)state;
    roundtrip_all("llama2-tokenizer.bin");
}

static void
test_byte_fallback(void **state)
{
    (void)state;
    rt_tokenizer *t = load("tok512.bin");
    if (!t)
        skip();
    /* U+1F916 (robot) is not in the 512-piece vocabulary: four byte tokens,
     * ids 3 + byte. */
    size_t n;
    int32_t *tok = enc(t, "\xf0\x9f\xa4\x96", 4, &n);
    assert_true(n >= 5);
    assert_int_equal(tok[n - 4], 3 + 0xf0);
    assert_int_equal(tok[n - 3], 3 + 0x9f);
    assert_int_equal(tok[n - 2], 3 + 0xa4);
    assert_int_equal(tok[n - 1], 3 + 0x96);
    const char *p;
    size_t pl;
    assert_int_equal(rt_tokenizer_decode(t, 5, 3 + 0xf0, &p, &pl), 0);
    assert_int_equal(pl, 1);
    assert_int_equal((uint8_t)p[0], 0xf0);
    free(tok);
    rt_tokenizer_free(t);
}

static void
test_llama2_known(void **state)
{
    (void)state;
    rt_tokenizer *t = load("llama2-tokenizer.bin");
    if (!t)
        skip();
    /* Llama 2: "Hello world" is [1, 15043 ("▁Hello"), 3186 ("▁world")]. */
    size_t n;
    int32_t *tok = enc(t, "Hello world", 11, &n);
    assert_int_equal(n, 3);
    assert_int_equal(tok[1], 15043);
    assert_int_equal(tok[2], 3186);
    free(tok);
    assert_int_equal(rt_tokenizer_n_vocab(t), 32000);
    rt_tokenizer_free(t);
}

/* The llama2.c merge, O(n^2): the oracle for the heap-based one. */
static size_t
naive_encode(const rt_tokenizer *t, const char *s, size_t len, int32_t *tok)
{
    size_t n = 0;
    if (len == 0)
        return 0;
    char *prep = malloc(len + 1);
    size_t *start = malloc((len + 1) * sizeof(size_t)), *slen = malloc((len + 1) * sizeof(size_t));
    bool *merge = malloc(len + 1);
    prep[0] = ' ';
    memcpy(prep + 1, s, len);
    /* Pieces of the vocabulary by brute force. */
    uint32_t nv = rt_tokenizer_n_vocab(t);
    for (size_t i = 0; i < len + 1;) {
        size_t cl = 1;
        while ((uint8_t)prep[i] >= 0xC0 && cl < 4 && i + cl < len + 1 &&
               ((uint8_t)prep[i + cl] & 0xC0) == 0x80)
            cl++;
        int32_t id = -1;
        for (uint32_t v = 0; v < nv && id < 0; v++) {
            const char *p;
            size_t pl;
            rt_tok_type ty;
            rt_tokenizer_piece(t, (int32_t)v, &p, &pl, NULL, &ty);
            if (ty == RT_TOK_TYPE_NORMAL && pl == cl && memcmp(p, prep + i, cl) == 0)
                id = (int32_t)v;
        }
        if (id >= 0) {
            start[n] = i, slen[n] = cl, merge[n] = true, tok[n++] = id;
        } else {
            for (size_t k = 0; k < cl; k++)
                start[n] = i + k, slen[n] = 1, merge[n] = false,
                tok[n++] = 3 + (uint8_t)prep[i + k];
        }
        i += cl;
    }
    for (;;) {
        float best = -INFINITY;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (!merge[i] || !merge[i + 1])
                continue;
            size_t cl = slen[i] + slen[i + 1];
            for (uint32_t v = 0; v < nv; v++) {
                const char *p;
                size_t pl;
                float sc;
                rt_tok_type ty;
                rt_tokenizer_piece(t, (int32_t)v, &p, &pl, &sc, &ty);
                if (ty == RT_TOK_TYPE_NORMAL && pl == cl && memcmp(p, prep + start[i], cl) == 0) {
                    if (sc > best) {
                        best = sc, best_id = (int32_t)v, best_i = i;
                    }
                    break;
                }
            }
        }
        if (best_id < 0)
            break;
        tok[best_i] = best_id;
        slen[best_i] += slen[best_i + 1];
        for (size_t i = best_i + 1; i + 1 < n; i++)
            tok[i] = tok[i + 1], start[i] = start[i + 1], slen[i] = slen[i + 1],
            merge[i] = merge[i + 1];
        n--;
    }
    free(prep);
    free(start);
    free(slen);
    free(merge);
    return n;
}

static void
test_merge_matches_naive(void **state)
{
    (void)state;
    rt_tokenizer *t = load("tok512.bin");
    if (!t)
        skip();
    static const char alphabet[] = "aeinorst dhlmu,.I\xc3\xa9";
    char text[80];
    int32_t want[100];
    for (uint64_t seed = 1; seed <= 60; seed++) {
        uint8_t rnd[80];
        tu_fill_random(rnd, sizeof(rnd), seed);
        size_t len = 20 + rnd[0] % 50;
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
        size_t n, nn = naive_encode(t, text, len, want);
        int32_t *got = enc(t, text, len, &n);
        assert_int_equal(n, nn + 1);
        assert_memory_equal(got + 1, want, nn * sizeof(int32_t));
        free(got);
    }
    rt_tokenizer_free(t);
}

static void
test_long_text(void **state)
{
    (void)state;
    rt_tokenizer *t = load("tok512.bin");
    if (!t)
        skip();
    /* 200 KB must encode in well under a second (O(n log n) merge); no
     * timing assertion, but a quadratic merge would time the test out. */
    size_t len = 200000;
    char *s = malloc(len);
    for (size_t i = 0; i < len; i++)
        s[i] = "a gentle hum of precision, "[i % 27];
    roundtrip(t, s, len);
    free(s);
    rt_tokenizer_free(t);
}

static void
test_encode_flags_and_cap(void **state)
{
    (void)state;
    rt_tokenizer *t = load("tok512.bin");
    if (!t)
        skip();
    int32_t tok[16];
    size_t n;
    assert_int_equal(
        rt_tokenizer_encode(t, "I dreamed", 9, RT_TOK_ADD_BOS | RT_TOK_ADD_EOS, tok, 16, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(tok[7], 2);
    assert_int_equal(rt_tokenizer_encode(t, "I dreamed", 9, 0, tok, 16, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(tok[0], 303);
    assert_int_equal(rt_tokenizer_encode(t, "I dreamed", 9, RT_TOK_ADD_BOS, tok, 3, &n), -EMSGSIZE);
    /* Control tokens decode to nothing; the leading space is stripped only
     * right after BOS. */
    const char *p;
    size_t pl;
    assert_int_equal(rt_tokenizer_decode(t, 5, 1, &p, &pl), 0);
    assert_int_equal(pl, 0);
    assert_int_equal(rt_tokenizer_decode(t, 1, 262, &p, &pl), 0); /* " a" */
    assert_int_equal(pl, 1);
    assert_int_equal(rt_tokenizer_decode(t, 5, 262, &p, &pl), 0);
    assert_int_equal(pl, 2);
    assert_int_equal(rt_tokenizer_decode(t, 5, 512, &p, &pl), -EINVAL);
    assert_int_equal(rt_tokenizer_decode(t, 5, -1, &p, &pl), -EINVAL);
    rt_tokenizer_free(t);
}

/* Appends one llama2.c record. */
static size_t
rec(uint8_t *b, size_t off, float score, int32_t len, const char *s)
{
    memcpy(b + off, &score, 4);
    memcpy(b + off + 4, &len, 4);
    if (len > 0)
        memcpy(b + off + 8, s, (size_t)len);
    return off + 8 + (size_t)(len > 0 ? len : 0);
}

static void
test_loader_strict(void **state)
{
    (void)state;
    uint8_t b[256];
    int32_t mx = 8;
    memcpy(b, &mx, 4);
    size_t off = 4;
    off = rec(b, off, 0.0f, 5, "<unk>");
    off = rec(b, off, 0.0f, 3, "<s>");
    off = rec(b, off, 0.0f, 4, "</s>");
    off = rec(b, off, -1.0f, 1, "a");
    off = rec(b, off, -2.0f, 2, "ab");
    rt_tokenizer *t = NULL;
    assert_int_equal(rt_tokenizer_load_llama2c(b, off, 0, &t), 0);
    assert_int_equal(rt_tokenizer_n_vocab(t), 5);
    rt_tokenizer_free(t);
    /* Fewer requested than present is fine (llama2.c reads vocab_size). */
    assert_int_equal(rt_tokenizer_load_llama2c(b, off, 4, &t), 0);
    rt_tokenizer_free(t);
    /* More requested than present, and every truncation, are malformed. */
    t = NULL;
    assert_int_equal(rt_tokenizer_load_llama2c(b, off, 6, &t), -EBADMSG);
    for (size_t cut = 0; cut < off; cut++) {
        int r = rt_tokenizer_load_llama2c(b, cut, 0, &t);
        assert_true(r == -EBADMSG || (r == 0 && cut >= 4 && (rt_tokenizer_free(t), 1)));
        t = NULL;
    }
    assert_null(t);
    /* Negative and oversized lengths, NaN scores. */
    uint8_t c[64];
    memcpy(c, b, 4);
    size_t o = rec(c, 4, 0.0f, -1, "");
    assert_int_equal(rt_tokenizer_load_llama2c(c, o, 0, &t), -EBADMSG);
    int32_t big = RT_TOK_MAX_PIECE + 1;
    memcpy(c + 8, &big, 4); /* record header only: the length alone is wrong */
    assert_int_equal(rt_tokenizer_load_llama2c(c, o, 0, &t), -EBADMSG);
    o = rec(c, 4, NAN, 1, "x");
    o = rec(c, o, 0.0f, 1, "y");
    assert_int_equal(rt_tokenizer_load_llama2c(c, o, 0, &t), -EBADMSG);
    int32_t neg = -1;
    memcpy(c, &neg, 4);
    assert_int_equal(rt_tokenizer_load_llama2c(c, o, 0, &t), -EBADMSG);
    assert_int_equal(rt_tokenizer_load_llama2c(NULL, 0, 0, &t), -EBADMSG);
}

static void
test_builder_sp_space(void **state)
{
    (void)state;
    rt_tokenizer *t = NULL;
    assert_int_equal(rt_tokenizer_new(6, &t), 0);
    assert_int_equal(rt_tokenizer_set(t, 0, "<unk>", 5, 0, RT_TOK_TYPE_UNKNOWN, true), 0);
    assert_int_equal(rt_tokenizer_set(t, 1, "<s>", 3, 0, RT_TOK_TYPE_CONTROL, true), 0);
    assert_int_equal(rt_tokenizer_set(t, 2, "</s>", 4, 0, RT_TOK_TYPE_CONTROL, true), 0);
    assert_int_equal(rt_tokenizer_set(t, 3, "\xe2\x96\x81", 3, -1, RT_TOK_TYPE_NORMAL, true), 0);
    assert_int_equal(rt_tokenizer_set(t, 4, "h", 1, -2, RT_TOK_TYPE_NORMAL, true), 0);
    assert_int_equal(rt_tokenizer_set(t, 5, "\xe2\x96\x81h", 4, -0.5f, RT_TOK_TYPE_NORMAL, true),
                     0);
    assert_int_equal(rt_tokenizer_set(t, 5, "x", 1, NAN, RT_TOK_TYPE_NORMAL, true), -EBADMSG);
    assert_int_equal(rt_tokenizer_set(t, 6, "x", 1, 0, RT_TOK_TYPE_NORMAL, true), -EINVAL);
    /* Token types outside the enum, on either side. */
    assert_int_equal(rt_tokenizer_set(t, 4, "x", 1, 0, (rt_tok_type)-1, true), -EINVAL);
    assert_int_equal(rt_tokenizer_set(t, 4, "x", 1, 0, _RT_TOK_TYPE_MAX, true), -EINVAL);
    assert_int_equal(rt_tokenizer_set(t, 4, "<0xZZ>", 6, 0, RT_TOK_TYPE_BYTE, true), -EBADMSG);
    assert_int_equal(rt_tokenizer_set_special(t, 1, 2, 0), 0);
    int32_t tok[8];
    size_t n;
    assert_int_equal(rt_tokenizer_encode(t, "h", 1, 0, tok, 8, &n), -EINVAL); /* unfinished */
    assert_int_equal(rt_tokenizer_finish(t), 0);
    assert_int_equal(rt_tokenizer_encode(t, "hh h", 4, 0, tok, 8, &n), 0);
    /* " hh h" -> "▁h" "h" "▁h"; no byte tokens, so nothing is lost. */
    assert_int_equal(n, 3);
    assert_int_equal(tok[0], 5);
    assert_int_equal(tok[1], 4);
    assert_int_equal(tok[2], 5);
    /* A byte without a byte token becomes <unk>. */
    assert_int_equal(rt_tokenizer_encode(t, "z", 1, 0, tok, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(tok[1], 0);
    rt_tokenizer_free(t);
}

static void
test_gguf_vocab(void **state)
{
    (void)state;
    /* The F32 GGUF's vocabulary (tok512.bin converted by llama.cpp, "▁" for
     * spaces, <s>/</s> controls) encodes and decodes like tok512.bin. */
    rt_tokenizer *a = load("tok512.bin");
    char *p = tu_model_path("aidreams260K-f32.gguf");
    if (!a || !p)
        skip();
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(p, &buf, &len), 0);
    rt_tokenizer *b = NULL;
    assert_int_equal(rt_tokenizer_load_gguf(buf, len, &b), 0);
    assert_int_equal(rt_tokenizer_n_vocab(b), 512);
    assert_int_equal(rt_tokenizer_bos(b), 1);
    assert_int_equal(rt_tokenizer_eos(b), 2);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t na, nb;
        int32_t *ta = enc(a, texts[i], strlen(texts[i]), &na);
        int32_t *tb = enc(b, texts[i], strlen(texts[i]), &nb);
        assert_int_equal(na, nb);
        assert_memory_equal(ta, tb, na * sizeof(int32_t));
        free(ta);
        free(tb);
        roundtrip(b, texts[i], strlen(texts[i]));
    }
    /* Truncated metadata and a file without a vocabulary are refused. */
    rt_tokenizer *c = NULL;
    assert_int_equal(rt_tokenizer_load_gguf(buf, 5000, &c), -EBADMSG);
    assert_int_equal(rt_tokenizer_load_gguf(buf, 3, &c), -EBADMSG);
    assert_null(c);
    free(buf);
    free(p);
    rt_tokenizer_free(a);
    rt_tokenizer_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_prompt), cmocka_unit_test(test_roundtrip_tok512),
        cmocka_unit_test(test_roundtrip_llama2), cmocka_unit_test(test_byte_fallback),
        cmocka_unit_test(test_llama2_known),     cmocka_unit_test(test_merge_matches_naive),
        cmocka_unit_test(test_long_text),        cmocka_unit_test(test_encode_flags_and_cap),
        cmocka_unit_test(test_loader_strict),    cmocka_unit_test(test_builder_sp_space),
        cmocka_unit_test(test_gguf_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
