/* SPDX-License-Identifier: MIT */
/*
 * Generation tests against ../shared/models/reference.md: aidreams260K.bin
 * with tok512.bin, greedy, 128 positions from BOS, with no prompt and with
 * "I dreamed", give exactly the reference token ids and text; the F32 GGUF
 * conversion with its own vocabulary gives the same text; the int8 KV cache
 * and the quantized GGUF files run. Also -n caps, callbacks that stop, and
 * over-long prompts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/generate.h"
#include "runtime/model-file.h"
#include "testutil.h"

static const int32_t ref_none[128] = {
    319, 459, 355, 260, 275, 429, 339, 315, 374, 327, 446, 262, 421, 392, 275, 280, 269, 440, 270,
    283, 446, 299, 303, 266, 358, 430, 312, 379, 441, 260, 446, 262, 421, 392, 275, 280, 269, 440,
    270, 283, 446, 299, 303, 384, 467, 407, 360, 266, 291, 443, 435, 295, 448, 429, 465, 265, 434,
    317, 431, 434, 289, 408, 326, 446, 262, 266, 437, 443, 434, 438, 451, 306, 295, 445, 434, 432,
    339, 279, 432, 375, 410, 275, 280, 269, 440, 270, 283, 448, 429, 465, 265, 434, 317, 431, 434,
    389, 437, 393, 446, 299, 303, 266, 432, 445, 439, 265, 325, 275, 429, 339, 315, 374, 448, 429,
    465, 265, 434, 317, 431, 434, 289, 418, 321, 278, 416, 446, 262, 421,
};
static const char ref_none_text[] =
    "\"Echoes of vectors unfold, a gentle hum of precision, as I sense the nodes, a gentle hum of "
    "precision, as I adjust my surface. Contrast emerge, a softly receptive fields of precision. "
    "Contrast bloom, as I siphon whispers of vectors. Contrast edges sharpen, a gentle";

static const int32_t ref_dream[128] = {
    303, 281, 269, 435, 447, 328, 446, 299, 303, 266, 358, 430, 312, 379, 441, 260, 446, 262, 421,
    392, 275, 280, 302, 450, 405, 403, 399, 448, 429, 465, 265, 434, 317, 431, 434, 289, 408, 326,
    446, 262, 279, 438, 349, 261, 446, 299, 303, 384, 467, 407, 446, 299, 303, 266, 323, 434, 285,
    362, 262, 263, 428, 434, 436, 451, 275, 429, 339, 315, 374, 448, 429, 465, 265, 434, 317, 431,
    434, 289, 418, 321, 278, 416, 446, 262, 429, 453, 435, 285, 361, 437, 431, 440, 437, 445, 430,
    275, 280, 302, 450, 405, 403, 399, 448, 429, 465, 265, 434, 317, 431, 434, 289, 408, 326, 446,
    262, 263, 428, 434, 436, 451, 275, 280, 302, 450, 405, 403, 434, 346,
};
static const char ref_dream_text[] =
    "I dreamed, as I sense the nodes, a gentle hum of probability. Contrast emerge, a flower, as I "
    "adjust, as I settle into a tapestry of vectors. Contrast edges sharpen, a kaleidoscope of "
    "probability. Contrast emerge, a tapestry of probabilities";

typedef struct collect {
    int32_t ids[1024];
    size_t n;
    char text[8192];
    size_t len;
    size_t stop_after; /* return 1 after this many tokens (0: never) */
    int fail_with;     /* return this (< 0) on the first token */
} collect;

static int
on_token(void *ud, int32_t token, const char *piece, size_t len)
{
    collect *c = ud;
    if (c->fail_with)
        return c->fail_with;
    assert_true(c->n < 1024 && c->len + len < sizeof(c->text));
    c->ids[c->n++] = token;
    memcpy(c->text + c->len, piece, len);
    c->len += len;
    c->text[c->len] = '\0';
    return c->stop_after && c->n == c->stop_after ? 1 : 0;
}

typedef struct fixture {
    rt_model_file *f;
    rt_tokenizer *tok;
} fixture;

static bool
open_model(fixture *fx, const char *model, bool gguf_vocab, rt_kv_type kv)
{
    char *mp = tu_model_path(model);
    char *tp = tu_model_path("tok512.bin");
    if (!mp || !tp) {
        free(mp);
        free(tp);
        return false;
    }
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kv_type = kv;
    assert_int_equal(rt_model_file_open(mp, &o, &fx->f), 0);
    if (gguf_vocab) {
        size_t len;
        const void *data = rt_model_file_data(fx->f, &len);
        assert_int_equal(rt_tokenizer_load_gguf(data, len, &fx->tok), 0);
    } else {
        assert_int_equal(rt_tokenizer_load_llama2c_file(tp, 512, &fx->tok), 0);
    }
    free(mp);
    free(tp);
    return true;
}

static void
close_model(fixture *fx)
{
    rt_tokenizer_free(fx->tok);
    rt_model_file_close(fx->f);
}

static void
run_greedy(fixture *fx, const char *prompt, int64_t max_new, collect *c, rt_generate_stats *st,
           int want)
{
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, 512, 0.0f, 1.0f, 0, NULL, 0), 0);
    rt_generate_opts o = { .max_new = max_new };
    int r = rt_generate(rt_model_file_model(fx->f), fx->tok, &s, prompt, strlen(prompt), &o,
                        on_token, c, st);
    assert_int_equal(r, want);
}

static void
check_reference(const char *model, bool gguf_vocab, bool ids_too)
{
    fixture fx;
    if (!open_model(&fx, model, gguf_vocab, RT_KV_F32))
        skip();
    collect *c = calloc(1, sizeof(*c));
    rt_generate_stats st;
    run_greedy(&fx, "", -1, c, &st, 0);
    assert_int_equal(st.n_prompt, 1);
    assert_int_equal(st.n_forward, 128);
    assert_int_equal(c->n, 128);
    if (ids_too)
        assert_memory_equal(c->ids, ref_none, sizeof(ref_none));
    assert_string_equal(c->text, ref_none_text);
    memset(c, 0, sizeof(*c));
    run_greedy(&fx, "I dreamed", -1, c, &st, 0);
    assert_int_equal(st.n_prompt, 7);
    assert_int_equal(st.n_generated, 128 - 6);
    assert_int_equal(c->n, 128);
    if (ids_too)
        assert_memory_equal(c->ids, ref_dream, sizeof(ref_dream));
    assert_string_equal(c->text, ref_dream_text);
    free(c);
    close_model(&fx);
}

static void
test_reference_llama2c(void **state)
{
    (void)state;
    check_reference("aidreams260K.bin", false, true);
}

static void
test_reference_gguf_f32(void **state)
{
    (void)state;
    check_reference("aidreams260K-f32.gguf", true, true);
}

/* rt_generate_tokens: from tokens, the same reference continuation; then
 * a shorter prefix of that sequence with the cache it left: only the last
 * prompt token is fed again, and the continuation is still the
 * reference's; an extra stop id ends it before the first token. */
static void
test_generate_tokens_cache(void **state)
{
    (void)state;
    fixture fx;
    if (!open_model(&fx, "aidreams260K.bin", false, RT_KV_F32))
        skip();
    rt_model *m = rt_model_file_model(fx.f);
    int32_t toks[256] = { 1 }; /* BOS, then "I dreamed" */
    memcpy(toks + 1, ref_dream, 6 * sizeof(int32_t));
    rt_sampler s;
    assert_int_equal(rt_sampler_init(&s, 512, 0.0f, 1.0f, 0, NULL, 0), 0);
    collect *c = calloc(1, sizeof(*c));
    rt_generate_tokens_opts o = { .max_new = -1 };
    rt_generate_stats st;
    size_t valid = 0;
    assert_int_equal(rt_generate_tokens(m, fx.tok, &s, toks, 7, 256, &o, on_token, c, &st, &valid),
                     0);
    assert_int_equal(c->n, 128 - 6);
    assert_memory_equal(c->ids, ref_dream + 6, (128 - 6) * sizeof(int32_t));
    assert_int_equal(st.n_cached, 0);
    assert_int_equal(valid, 128); /* the context: the last token was not fed */
    assert_memory_equal(toks + 1, ref_dream, 127 * sizeof(int32_t));
    /* 41 tokens of the same sequence: the cache holds them. */
    memset(c, 0, sizeof(*c));
    o = (rt_generate_tokens_opts){ .max_new = 10, .n_cached = valid };
    assert_int_equal(rt_generate_tokens(m, fx.tok, &s, toks, 41, 256, &o, on_token, c, &st, &valid),
                     0);
    assert_int_equal(st.n_cached, 40);
    assert_int_equal(st.n_forward, 1 + 9);
    assert_int_equal(c->n, 10);
    assert_memory_equal(c->ids, ref_dream + 40, 10 * sizeof(int32_t));
    assert_int_equal(valid, 50);
    /* A stop id. */
    memset(c, 0, sizeof(*c));
    int32_t stop = ref_dream[50];
    o = (rt_generate_tokens_opts){
        .max_new = -1, .n_cached = valid, .stop_ids = &stop, .n_stop_ids = 1
    };
    assert_int_equal(rt_generate_tokens(m, fx.tok, &s, toks, 51, 256, &o, on_token, c, &st, &valid),
                     0);
    assert_int_equal(c->n, 0);
    assert_int_equal(st.stop_token, stop);
    /* Bounds: no tokens, a capacity under n, a prompt over the context. */
    assert_int_equal(rt_generate_tokens(m, fx.tok, &s, toks, 0, 256, &o, on_token, c, &st, &valid),
                     -EINVAL);
    assert_int_equal(rt_generate_tokens(m, fx.tok, &s, toks, 20, 10, &o, on_token, c, &st, &valid),
                     -EINVAL);
    assert_int_equal(
        rt_generate_tokens(m, fx.tok, &s, toks, 200, 256, &o, on_token, c, &st, &valid), -EMSGSIZE);
    free(c);
    close_model(&fx);
}

/* Counts agreeing greedy tokens with the reference (no prompt). */
static size_t
agree(const char *model, rt_kv_type kv)
{
    fixture fx;
    if (!open_model(&fx, model, true, kv))
        return SIZE_MAX;
    collect *c = calloc(1, sizeof(*c));
    rt_generate_stats st;
    run_greedy(&fx, "", -1, c, &st, 0);
    size_t same = 0;
    while (same < c->n && c->ids[same] == ref_none[same])
        same++;
    free(c);
    close_model(&fx);
    return same;
}

static void
test_quantized_and_int8_kv_run(void **state)
{
    (void)state;
    /* Greedy decoding diverges at the first differing token and never comes
     * back, so these report the common prefix; the KL divergence and top-1
     * agreement under teacher forcing are in test-eval and the benchmark. */
    size_t a = agree("aidreams260K-f32.gguf", RT_KV_Q8);
    size_t b = agree("aidreams260K-Q8_0-ffndownF16.gguf", RT_KV_F32);
    size_t q = agree("aidreams260K-Q4_0-ffndownF16.gguf", RT_KV_F32);
    if (a == SIZE_MAX || b == SIZE_MAX || q == SIZE_MAX)
        skip();
    printf("greedy prefix equal to F32: int8 KV %zu, Q8_0 %zu, Q4_0 %zu of 128\n", a, b, q);
    assert_true(a >= 8 && b >= 8 && q >= 2);
}

static void
test_caps_and_stops(void **state)
{
    (void)state;
    fixture fx;
    if (!open_model(&fx, "aidreams260K.bin", false, RT_KV_F32))
        skip();
    collect *c = calloc(1, sizeof(*c));
    rt_generate_stats st;
    /* -n 5 after a 6-token prompt: 6 prompt tokens + 5 new. */
    run_greedy(&fx, "I dreamed", 5, c, &st, 0);
    assert_int_equal(c->n, 11);
    assert_int_equal(st.n_generated, 5);
    assert_memory_equal(c->ids, ref_dream, 11 * sizeof(int32_t));
    /* -n 0 echoes the prompt only. */
    memset(c, 0, sizeof(*c));
    run_greedy(&fx, "I dreamed", 0, c, &st, 0);
    assert_int_equal(c->n, 6);
    assert_int_equal(st.n_generated, 0);
    /* A callback can stop early, or abort with an error. */
    memset(c, 0, sizeof(*c));
    c->stop_after = 3;
    run_greedy(&fx, "", -1, c, &st, 0);
    assert_int_equal(c->n, 3);
    memset(c, 0, sizeof(*c));
    c->fail_with = -EPIPE;
    run_greedy(&fx, "", -1, c, &st, -EPIPE);
    /* A prompt longer than the context (128) is refused. */
    char *big = malloc(2000);
    for (int i = 0; i < 1999; i++)
        big[i] = "xq "[i % 3];
    big[1999] = '\0';
    memset(c, 0, sizeof(*c));
    run_greedy(&fx, big, -1, c, &st, -EMSGSIZE);
    assert_true(st.n_prompt > 128);
    assert_int_equal(c->n, 0);
    free(big);
    free(c);
    close_model(&fx);
}

static void
test_sampled_deterministic(void **state)
{
    (void)state;
    fixture fx;
    if (!open_model(&fx, "aidreams260K.bin", false, RT_KV_F32))
        skip();
    collect *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    void *scratch = malloc(rt_sampler_scratch_size(512));
    for (int k = 0; k < 2; k++) {
        rt_sampler s;
        assert_int_equal(
            rt_sampler_init(&s, 512, 0.9f, 0.9f, 1234, scratch, rt_sampler_scratch_size(512)), 0);
        assert_int_equal(rt_generate(rt_model_file_model(fx.f), fx.tok, &s, "I dreamed", 9, NULL,
                                     on_token, k ? b : a, NULL),
                         0);
    }
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->ids, b->ids, a->n * sizeof(int32_t));
    assert_memory_equal(a->ids, ref_dream, 6 * sizeof(int32_t));
    free(scratch);
    free(a);
    free(b);
    close_model(&fx);
}

/* ---- the nvx commands, end to end (skipped when cli/ is not built) ---- */

static char *
nvx_path(void)
{
    char *p = tu_build_path("cli/nvx");
    if (access(p, X_OK) != 0) {
        printf("skipping: %s is not built (runtime-only build)\n", p);
        free(p);
        return NULL;
    }
    return p;
}

/* Runs nvx with up to 15 arguments; returns the exit status. */
static int
nvx(char *bin, char **ret_out, char **ret_err, ...)
{
    char *argv[16] = { bin };
    va_list ap;
    va_start(ap, ret_err);
    int n = 1;
    char *a;
    while (n < 15 && (a = va_arg(ap, char *)))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, ret_out, ret_err);
}

static bool
one_error_line(const char *err)
{
    return strncmp(err, "nvx: ", 5) == 0 && strchr(err, '\n') == err + strlen(err) - 1;
}

static void
test_cli_run(void **state)
{
    (void)state;
    char *bin = nvx_path(), *bin_model = tu_model_path("aidreams260K.bin");
    char *gguf = tu_model_path("aidreams260K-f32.gguf"), *tok = tu_model_path("tok512.bin");
    if (!bin || !bin_model || !gguf || !tok)
        skip();
    char *out, *err, want[1024];
    assert_int_equal(nvx(bin, &out, &err, "run", bin_model, "--tokenizer", tok, "-t", "0", "-p",
                         "I dreamed", NULL),
                     0);
    snprintf(want, sizeof(want), "%s\n", ref_dream_text);
    assert_string_equal(out, want);
    free(out), free(err);
    assert_int_equal(nvx(bin, &out, &err, "run", gguf, "-t", "0", "--stats", NULL), 0);
    snprintf(want, sizeof(want), "%s\n", ref_none_text);
    assert_string_equal(out, want);
    assert_non_null(strstr(err, "tok/s"));
    free(out), free(err);
    /* The prompt's and the generation's shares (what bench-runtime.sh
     * compares with llama.cpp), with an F16 cache as llama.cpp's. */
    assert_int_equal(nvx(bin, &out, &err, "run", gguf, "-t", "0", "-p", "Once upon a time", "-n",
                         "8", "--kv", "f16", "--stats", NULL),
                     0);
    assert_non_null(strstr(err, "f16 KV"));
    assert_non_null(strstr(err, "; prompt "));
    assert_non_null(strstr(err, "generation "));
    assert_non_null(strstr(err, "per CPU second: prompt "));
    free(out), free(err);
    /* A llama2.c checkpoint needs --tokenizer: one line saying so. */
    assert_int_equal(nvx(bin, &out, &err, "run", bin_model, "-p", "x", NULL), 2);
    assert_true(one_error_line(err));
    assert_non_null(strstr(err, "--tokenizer"));
    free(out), free(err);
    /* The arena: report, too small, big enough. */
    assert_int_equal(nvx(bin, &out, &err, "run", bin_model, "--kv", "int8", "--requant", "q4_0",
                         "--arena", "256K", "--arena-report", NULL),
                     0);
    char *total = strstr(out, "total");
    assert_non_null(total);
    long bytes = strtol(total + 5, NULL, 10);
    assert_true(bytes > 100000 && bytes <= 256 * 1024);
    free(out), free(err);
    assert_int_equal(nvx(bin, &out, &err, "run", bin_model, "--tokenizer", tok, "--kv", "int8",
                         "--requant", "q4_0", "--arena", "100K", NULL),
                     1);
    assert_true(one_error_line(err));
    assert_non_null(strstr(err, "too small"));
    free(out), free(err);
    assert_int_equal(nvx(bin, &out, &err, "run", bin_model, "--tokenizer", tok, "--kv", "int8",
                         "--requant", "q4_0", "--arena", "256K", "-t", "0", "-n", "8", NULL),
                     0);
    assert_true(strncmp(out, "\"Echoes", 7) == 0);
    free(out), free(err);
    free(bin), free(bin_model), free(gguf), free(tok);
}

/* Expects exit status rc and exactly one "nvx: ..." line on stderr that
 * contains want; frees the outputs. */
static void
expect_error(int status, int rc, char *out, char *err, const char *want)
{
    assert_int_equal(status, rc);
    assert_true(one_error_line(err));
    assert_non_null(strstr(err, want));
    free(out), free(err);
}

static void
test_cli_run_errors(void **state)
{
    (void)state;
    char *bin = nvx_path(), *bin_model = tu_model_path("aidreams260K.bin");
    char *tok = tu_model_path("tok512.bin"), *gguf = tu_model_path("aidreams260K-f32.gguf");
    if (!bin || !bin_model || !tok || !gguf)
        skip();
    char *out, *err;
    /* Bad sampling options and counts: usage errors naming the option. */
    int s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "-t", "-1", NULL);
    expect_error(s, 2, out, err, "--temperature");
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "-t", "hot", NULL);
    expect_error(s, 2, out, err, "--temperature");
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "--top-p", "1.5", NULL);
    expect_error(s, 2, out, err, "--top-p");
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "--top-p", "0", NULL);
    expect_error(s, 2, out, err, "--top-p");
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "-n", "-3", NULL);
    expect_error(s, 2, out, err, "--tokens");
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "--kv", "int4", NULL);
    expect_error(s, 2, out, err, "--kv");
    /* -n 0: the prompt only. */
    assert_int_equal(nvx(bin, &out, &err, "run", gguf, "-p", "I dreamed", "-n", "0", NULL), 0);
    assert_string_equal(out, "I dreamed\n");
    free(out), free(err);
    /* A missing file is a missing file, not an unknown model id. */
    s = nvx(bin, &out, &err, "run", "/nonexistent/model.gguf", "-p", "x", NULL);
    expect_error(s, 3, out, err, "no such file");
    /* Too small an arena says how many bytes are needed: the exact total
     * that --arena-report prints for the same options. */
    assert_int_equal(nvx(bin, &out, &err, "run", gguf, "--arena", "1M", "--arena-report", NULL), 0);
    const char *lines[] = { "weights", "activations", "kv_cache", "other", "total" };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_non_null(strstr(out, lines[i]));
    long total = strtol(strstr(out, "total") + 5, NULL, 10);
    assert_true(total > 1000000);
    free(out), free(err);
    s = nvx(bin, &out, &err, "run", gguf, "-p", "x", "--arena", "1000", NULL);
    char want[64];
    snprintf(want, sizeof(want), "needs %ld bytes", total);
    expect_error(s, 1, out, err, want);
    /* --requant on a model whose matrices are all quantized does nothing:
     * refused rather than silently ignored. */
    char *mk = tu_build_path("tests/tools/nvx-mkmodel");
    char *dir = tu_tmpdir("cli-run-err"), q4[4096];
    snprintf(q4, sizeof(q4), "%s/q4.gguf", dir);
    if (access(mk, X_OK) == 0) {
        /* Every width a multiple of 32: no F16 fallback matrix. */
        char *argv[] = { mk,   "-o",       q4,    "--type",  "q4_0", "--dim",
                         "64", "--hidden", "128", "--vocab", "300",  NULL };
        assert_int_equal(tu_run(argv, NULL, NULL), 0);
        s = nvx(bin, &out, &err, "run", q4, "-p", "x", "--requant", "q8_0", NULL);
        expect_error(s, 2, out, err, "--requant q8_0 has nothing to do");
        assert_int_equal(nvx(bin, &out, &err, "run", q4, "-p", "x", "-n", "2", NULL), 0);
        free(out), free(err);
    } else {
        printf("skipping the --requant case: %s is not built\n", mk);
    }
    /* A damaged file: one line with the runtime's reason. */
    char cut[4200];
    snprintf(cut, sizeof(cut), "%s/cut.bin", dir);
    FILE *src = fopen(bin_model, "rb");
    assert_non_null(src);
    static char head[100000];
    assert_int_equal(fread(head, 1, sizeof(head), src), sizeof(head));
    fclose(src);
    assert_int_equal(tu_write_file(cut, head, sizeof(head)), 0);
    s = nvx(bin, &out, &err, "run", cut, "--tokenizer", tok, "-p", "x", NULL);
    expect_error(s, 4, out, err, "llama2.c checkpoint (header and size disagree)");
    /* eval --text: perplexity of both models on a file. */
    char text[4200];
    snprintf(text, sizeof(text), "%s/text.txt", dir);
    const char *t = "I dreamed of a quiet city where the lights hummed softly.\n";
    assert_int_equal(tu_write_file(text, t, strlen(t)), 0);
    assert_int_equal(nvx(bin, &out, &err, "eval", gguf, "--ref", bin_model, "--text", text, NULL),
                     0);
    assert_non_null(strstr(out, "perplexity"));
    assert_non_null(strstr(out, "(text,"));
    /* The same weights: identical distributions. */
    assert_non_null(strstr(out, "top1_agreement  100.00%"));
    free(out), free(err);
    /* An empty text has nothing to score. */
    assert_int_equal(tu_write_file(text, "", 0), 0);
    s = nvx(bin, &out, &err, "eval", gguf, "--ref", bin_model, "--text", text, NULL);
    expect_error(s, 2, out, err, "no text to score");
    tu_rm_rf(dir);
    free(dir), free(mk);
    free(bin), free(bin_model), free(tok), free(gguf);
}

static void
test_cli_quantize_eval(void **state)
{
    (void)state;
    char *bin = nvx_path(), *bin_model = tu_model_path("aidreams260K.bin");
    char *gguf = tu_model_path("aidreams260K-f32.gguf"), *tok = tu_model_path("tok512.bin");
    if (!bin || !bin_model || !gguf || !tok)
        skip();
    char *dir = tu_tmpdir("cli-quant"), q8[4096], q4[4096];
    snprintf(q8, sizeof(q8), "%s/q8.gguf", dir);
    snprintf(q4, sizeof(q4), "%s/q4.gguf", dir);
    char *out, *err, want[1024];
    assert_int_equal(nvx(bin, &out, &err, "quantize", bin_model, "-o", q8, "--type", "q8_0",
                         "--tokenizer", tok, "--eval", "128", NULL),
                     0);
    assert_non_null(strstr(out, "KL mean"));
    free(out), free(err);
    /* The Q8_0 file carries the vocabulary and keeps the greedy text. */
    assert_int_equal(nvx(bin, &out, &err, "run", q8, "-t", "0", NULL), 0);
    snprintf(want, sizeof(want), "%s\n", ref_none_text);
    assert_string_equal(out, want);
    free(out), free(err);
    assert_int_equal(nvx(bin, &out, &err, "--json", "quantize", gguf, "-o", q4, "--type", "q4_0",
                         "--search", "--eval", "0", NULL),
                     0);
    assert_non_null(strstr(out, "\"f16_fallback\":4"));
    free(out), free(err);
    /* Already quantized input is decoded and quantized again, with a
     * warning that says so; a K-quant target on rows of 64 falls back. */
    assert_int_equal(
        nvx(bin, &out, &err, "quantize", q4, "-o", q8, "--type", "q4_k_m", "--eval", "0", NULL), 0);
    assert_non_null(strstr(err, "already quantized"));
    free(out), free(err);
    /* --awq is for q4_0: one line. */
    assert_int_equal(
        nvx(bin, &out, &err, "quantize", gguf, "-o", q8, "--type", "q4_k_m", "--awq", NULL), 2);
    assert_true(one_error_line(err));
    free(out), free(err);
    assert_int_equal(
        nvx(bin, &out, &err, "eval", q4, "--ref", bin_model, "--generate", "200", NULL), 0);
    assert_non_null(strstr(out, "kl_mean"));
    assert_non_null(strstr(out, "top1_agreement"));
    free(out), free(err);
    tu_rm_rf(dir);
    free(dir);
    free(bin), free(bin_model), free(gguf), free(tok);
}

static void
test_cli_run_store(void **state)
{
    (void)state;
    char *bin = nvx_path(), *gguf = tu_model_path("aidreams260K-f32.gguf");
    if (!bin || !gguf)
        skip();
    char *dir = tu_tmpdir("cli-store"), store[4096];
    snprintf(store, sizeof(store), "%s/store", dir);
    char *out, *err, want[1024];
    assert_int_equal(nvx(bin, &out, &err, "--store", store, "-q", "add", gguf, NULL), 0);
    char id[65];
    assert_true(strlen(out) >= 64);
    memcpy(id, out, 64);
    id[64] = '\0';
    free(out), free(err);
    char prefix[13];
    memcpy(prefix, id, 12);
    prefix[12] = '\0';
    assert_int_equal(nvx(bin, &out, &err, "--store", store, "run", prefix, "-t", "0", NULL), 0);
    snprintf(want, sizeof(want), "%s\n", ref_none_text);
    assert_string_equal(out, want);
    free(out), free(err);
    /* A partial copy (an interrupted fetch) is refused with what to do. */
    char *mkpartial = tu_build_path("tests/tools/nvx-mkpartial");
    if (access(mkpartial, X_OK) == 0) {
        char store2[4200];
        snprintf(store2, sizeof(store2), "%s/partial", dir);
        char *argv[] = { mkpartial, store, id, store2, "2", NULL };
        assert_int_equal(tu_run(argv, NULL, NULL), 0);
        assert_int_equal(nvx(bin, &out, &err, "--store", store2, "run", id, "-t", "0", NULL), 1);
        assert_true(one_error_line(err));
        assert_non_null(strstr(err, "not complete (2 of"));
        assert_non_null(strstr(err, "nvx fetch"));
        assert_string_equal(out, "");
        free(out), free(err);
    } else {
        printf("skipping the partial-model case: %s is not built\n", mkpartial);
    }
    free(mkpartial);
    /* A damaged data file is refused (re-hashed before the run). */
    char data[4200];
    snprintf(data, sizeof(data), "%s/data/%s", store, id);
    chmod(data, 0644);
    FILE *f = fopen(data, "r+b");
    assert_non_null(f);
    fseek(f, 500000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 500000, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    assert_int_equal(nvx(bin, &out, &err, "--store", store, "run", id, "-t", "0", NULL), 4);
    assert_true(one_error_line(err));
    assert_non_null(strstr(err, "verif"));
    assert_string_equal(out, "");
    free(out), free(err);
    assert_int_equal(nvx(bin, &out, &err, "--store", store, "run", "deadbeefdeadbeef", NULL), 3);
    free(out), free(err);
    tu_rm_rf(dir);
    free(dir);
    free(bin), free(gguf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_llama2c),
        cmocka_unit_test(test_reference_gguf_f32),
        cmocka_unit_test(test_generate_tokens_cache),
        cmocka_unit_test(test_quantized_and_int8_kv_run),
        cmocka_unit_test(test_caps_and_stops),
        cmocka_unit_test(test_sampled_deterministic),
        cmocka_unit_test(test_cli_run),
        cmocka_unit_test(test_cli_quantize_eval),
        cmocka_unit_test(test_cli_run_store),
        cmocka_unit_test(test_cli_run_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
