/* SPDX-License-Identifier: MIT */
/*
 * GGUF vocabularies (tok-gguf.c and the merge loop behind it): conformance
 * with llama.cpp on the shared realarch vocab files (every .inp string
 * encodes to the .out ids, every .out line decodes to the .detok string),
 * a small synthetic BPE vocabulary (merges, special tokens) and malformed
 * tokenizer metadata.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/tokenizer.h"
#include "synth.h"
#include "testutil.h"

static const char SEP[] = "\n__ggml_vocab_test__\n";

/* Reads a shared realarch file; NULL (after a "skipping" line) if absent. */
static uint8_t *
read_shared(const char *name, size_t *ret_len)
{
    char path[256];
    snprintf(path, sizeof(path), "realarch/%s", name);
    char *p = tu_model_path(path);
    if (!p)
        return NULL;
    uint8_t *buf = NULL;
    assert_int_equal(tu_read_file(p, &buf, ret_len), 0);
    free(p);
    return buf;
}

/* Next string of an .inp/.detok file: s[*off..) up to SEP. */
static bool
next_str(const uint8_t *s, size_t len, size_t *off, const char **ret, size_t *ret_len)
{
    size_t sl = sizeof(SEP) - 1;
    for (size_t i = *off; len - i >= sl; i++) {
        if (memcmp(s + i, SEP, sl) == 0) {
            *ret = (const char *)s + *off;
            *ret_len = i - *off;
            *off = i + sl;
            return true;
        }
    }
    return false;
}

/* llama.cpp's clean_up_tokenization_spaces for BPE vocabularies. */
static size_t
clean_spaces(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char x = s[i];
        if (o > 0 && s[o - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) {
            s[o - 1] = x;
            continue;
        }
        s[o++] = x;
    }
    n = o;
    o = 0;
    for (size_t i = 0; i < n; i++) {
        /* " 's", " 'm", " 're", " 've": the space goes. */
        if (s[i] == ' ' && i + 2 < n + 0 && s[i + 1] == '\'' &&
            (s[i + 2] == 's' || s[i + 2] == 'm' ||
             (i + 3 < n &&
              ((s[i + 2] == 'r' && s[i + 3] == 'e') || (s[i + 2] == 'v' && s[i + 3] == 'e')))))
            continue;
        s[o++] = s[i];
    }
    return o;
}

static void
check_vocab(const char *name, bool bpe)
{
    char fn[128];
    size_t glen, ilen, olen, dlen;
    uint8_t *gguf = read_shared(name, &glen);
    if (!gguf) {
        skip();
        return;
    }
    snprintf(fn, sizeof(fn), "%s.inp", name);
    uint8_t *inp = read_shared(fn, &ilen);
    snprintf(fn, sizeof(fn), "%s.out", name);
    uint8_t *out = read_shared(fn, &olen);
    snprintf(fn, sizeof(fn), "%s.detok", name);
    uint8_t *detok = read_shared(fn, &dlen);
    assert_non_null(inp);
    assert_non_null(out);
    assert_non_null(detok);
    rt_tokenizer *t = NULL;
    assert_int_equal(rt_tokenizer_load_gguf(gguf, glen, &t), 0);
    size_t ioff = 0, ooff = 0, doff = 0, total = 0, enc_ok = 0, dec_ok = 0;
    const char *s = NULL, *d = NULL;
    size_t sl = 0, dl = 0;
    while (next_str(inp, ilen, &ioff, &s, &sl)) {
        assert_true(next_str(detok, dlen, &doff, &d, &dl));
        /* The expected ids: one .out line. */
        int32_t want[512];
        size_t nw = 0;
        const char *line = (const char *)out + ooff;
        const char *eol = memchr(line, '\n', olen - ooff);
        assert_non_null(eol);
        for (const char *q = line; q < eol;) {
            char *end;
            long v = strtol(q, &end, 10);
            assert_true(end > q && nw < 512);
            want[nw++] = (int32_t)v;
            q = end;
        }
        ooff = (size_t)(eol - (const char *)out) + 1;
        size_t cap = rt_tokenizer_encode_bound(sl), n = 0;
        int32_t *got = malloc(cap * sizeof(*got));
        assert_non_null(got);
        assert_int_equal(rt_tokenizer_encode(t, s, sl, 0, got, cap, &n), 0);
        bool ok = n == nw && (n == 0 || memcmp(got, want, n * sizeof(*got)) == 0);
        if (!ok) {
            printf("%s: string %zu: got", name, total);
            for (size_t i = 0; i < n; i++)
                printf(" %d", got[i]);
            printf("\n%s: string %zu: want", name, total);
            for (size_t i = 0; i < nw; i++)
                printf(" %d", want[i]);
            printf("\n");
        }
        enc_ok += ok;
        /* Decode the expected ids as llama.cpp's detokenizer does: the
         * first piece loses the dummy-prefix space (SentencePiece). */
        char *text = malloc(nw * 512 + 1);
        assert_non_null(text);
        size_t tl = 0;
        for (size_t i = 0; i < nw; i++) {
            const char *p;
            size_t pl;
            int32_t prev = i ? want[i - 1] : (bpe ? -1 : rt_tokenizer_bos(t));
            assert_int_equal(rt_tokenizer_decode(t, prev, want[i], &p, &pl), 0);
            memcpy(text + tl, p, pl);
            tl += pl;
        }
        if (bpe)
            tl = clean_spaces(text, tl);
        bool dok = tl == dl && memcmp(text, d, dl) == 0;
        if (!dok)
            printf("%s: string %zu: decoding differs: %.*s\n", name, total, (int)tl, text);
        dec_ok += dok;
        free(text);
        free(got);
        total++;
    }
    printf("%s: encode %zu/%zu, decode %zu/%zu\n", name, enc_ok, total, dec_ok, total);
    assert_int_equal(total, 46);
    assert_int_equal(enc_ok, total);
    assert_int_equal(dec_ok, total);
    rt_tokenizer_free(t);
    free(gguf);
    free(inp);
    free(out);
    free(detok);
}

static void
test_llama_spm(void **state)
{
    (void)state;
    check_vocab("ggml-vocab-llama-spm.gguf", false);
}

static void
test_phi3(void **state)
{
    (void)state;
    check_vocab("ggml-vocab-phi-3.gguf", false);
}

static void
test_gpt2(void **state)
{
    (void)state;
    check_vocab("ggml-vocab-gpt-2.gguf", true);
}

static void
test_starcoder(void **state)
{
    (void)state;
    check_vocab("ggml-vocab-starcoder.gguf", true);
}

/* What a synthetic gpt2 vocabulary leaves out or gets wrong. */
enum {
    BAD_NONE = 0,
    BAD_SHORT_TYPES = 1 << 0, /* token_type shorter than tokens */
    BAD_NO_MERGES = 1 << 1,
    BAD_NO_BOS = 1 << 2,
    BAD_NO_PRE = 1 << 3,
};

/* "Ġ" is U+0120, the byte alphabet's space. */
#define SP "\xc4\xa0"

static uint8_t *
bpe_vocab(const char *model, const char *pre, unsigned bad, size_t *ret_len)
{
    static const char *const tokens[] = {
        "a", "b", "ab", SP, SP "a", "<|end|>", "<u>", "\xc3\xa9"
    };
    static const int32_t types[] = { 1, 1, 1, 1, 1, 3, 4, 1 };
    /* Unknown sides, no separator, a duplicate and an unknown result are
     * all tolerated (skipped); only the known merges apply. */
    static const char *const merges[] = { SP " a", "a b", "x y", "ab", "a b", "b b" };
    synth s;
    synth_init(&s, 3);
    synth_kv_str(&s, "tokenizer.ggml.model", model);
    if (!(bad & BAD_NO_PRE))
        synth_kv_str(&s, "tokenizer.ggml.pre", pre);
    synth_kv_arr_str(&s, "tokenizer.ggml.tokens", tokens, 8);
    synth_kv_arr_i32(&s, "tokenizer.ggml.token_type", types, bad & BAD_SHORT_TYPES ? 7 : 8);
    if (!(bad & BAD_NO_MERGES))
        synth_kv_arr_str(&s, "tokenizer.ggml.merges", merges, 6);
    if (!(bad & BAD_NO_BOS))
        synth_kv_u32(&s, "tokenizer.ggml.bos_token_id", 5);
    return synth_finish(&s, ret_len);
}

static size_t
encode(const rt_tokenizer *t, const char *s, unsigned flags, int32_t *tok)
{
    size_t n = 0;
    assert_int_equal(rt_tokenizer_encode(t, s, strlen(s), flags, tok, 64, &n), 0);
    return n;
}

static void
test_bpe_synthetic(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = bpe_vocab("gpt2", "gpt-2", BAD_NONE, &len);
    rt_tokenizer *t = NULL;
    assert_int_equal(rt_tokenizer_load_gguf(buf, len, &t), 0);
    assert_false(rt_tokenizer_add_bos(t));
    int32_t tok[64];
    /* "ab a" -> words "ab", " a" -> merges give ab, Ġa. */
    assert_int_equal(encode(t, "ab a", 0, tok), 2);
    assert_int_equal(tok[0], 2);
    assert_int_equal(tok[1], 4);
    const char *p;
    size_t pl;
    assert_int_equal(rt_tokenizer_decode(t, 2, 4, &p, &pl), 0);
    assert_int_equal(pl, 2);
    assert_memory_equal(p, " a", 2);
    /* A piece "é" (U+00E9) is the byte alphabet's spelling of byte 0xE9. */
    assert_int_equal(rt_tokenizer_decode(t, -1, 7, &p, &pl), 0);
    assert_int_equal(pl, 1);
    assert_int_equal((uint8_t)p[0], 0xE9);
    /* Control tokens only with RT_TOK_PARSE_SPECIAL; user-defined always. */
    assert_int_equal(encode(t, "a<|end|>b", RT_TOK_PARSE_SPECIAL, tok), 3);
    assert_int_equal(tok[1], 5);
    size_t n = encode(t, "a<|end|>b", 0, tok);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(tok[i], 5);
    assert_int_equal(encode(t, "a<u>b", 0, tok), 3);
    assert_int_equal(tok[1], 6);
    assert_int_equal(rt_tokenizer_decode(t, 0, 6, &p, &pl), 0);
    assert_int_equal(pl, 3);
    /* Invalid UTF-8 encodes (as U+FFFD, with no token here) without harm. */
    encode(t, "\xff\xfe a", RT_TOK_ADD_BOS | RT_TOK_ADD_EOS, tok);
    rt_tokenizer_free(t);
    free(buf);
}

static void
test_bpe_malformed(void **state)
{
    (void)state;
    static const unsigned bad[] = { BAD_SHORT_TYPES, BAD_NO_MERGES, BAD_NO_BOS };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len;
        uint8_t *buf = bpe_vocab("gpt2", "gpt-2", bad[i], &len);
        rt_tokenizer *t = NULL;
        assert_int_equal(rt_tokenizer_load_gguf(buf, len, &t), -EBADMSG);
        assert_null(t);
        /* Every prefix is malformed, never read past. */
        for (size_t cut = 0; cut < len; cut += 7)
            assert_int_not_equal(rt_tokenizer_load_gguf(buf, cut, &t), 0);
        free(buf);
    }
}

static void
test_unsupported(void **state)
{
    (void)state;
    static const struct {
        const char *model, *pre;
        unsigned bad;
        const char *key, *val;
    } cases[] = {
        { "bert", "gpt-2", 0, "tokenizer.ggml.model", "bert" },
        { "gpt2", "llama-bpe", 0, "tokenizer.ggml.pre", "llama-bpe" },
        { "gpt2", "", BAD_NO_PRE, "tokenizer.ggml.pre", "(absent)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        uint8_t *buf = bpe_vocab(cases[i].model, cases[i].pre, cases[i].bad, &len);
        rt_tokenizer *t = NULL;
        assert_int_equal(rt_tokenizer_load_gguf(buf, len, &t), -ENOTSUP);
        const char *key, *val;
        size_t vl;
        assert_int_equal(rt_tokenizer_gguf_unsupported(buf, len, &key, &val, &vl), 0);
        assert_string_equal(key, cases[i].key);
        assert_int_equal(vl, strlen(cases[i].val));
        assert_memory_equal(val, cases[i].val, vl);
        free(buf);
    }
    size_t len;
    uint8_t *buf = bpe_vocab("gpt2", "starcoder", 0, &len);
    const char *key, *val;
    size_t vl;
    assert_int_equal(rt_tokenizer_gguf_unsupported(buf, len, &key, &val, &vl), -ENOENT);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm),     cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_gpt2),          cmocka_unit_test(test_starcoder),
        cmocka_unit_test(test_bpe_synthetic), cmocka_unit_test(test_bpe_malformed),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
