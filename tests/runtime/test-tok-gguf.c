/* SPDX-License-Identifier: MIT */
/*
 * GGUF vocabularies (tok-gguf.c and the merge loop behind it): conformance
 * with llama.cpp on the shared realarch vocab files (every .inp string
 * encodes to the .out ids, every .out line decodes to the .detok string),
 * and malformed tokenizer metadata.
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm),
        cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_starcoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
