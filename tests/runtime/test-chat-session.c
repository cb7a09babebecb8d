/* SPDX-License-Identifier: MIT */
/*
 * Chat session tests on the realarch models (shared/models/realarch):
 * the second turn feeds only its own tokens at the positions after the
 * first, and its reply is exactly what a from-scratch run over the whole
 * token stream gives (greedy): the KV cache was reused, not recomputed.
 * Also end-of-turn tokens found in the vocabulary, and context overflow.
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

#include "runtime/chat-session.h"
#include "runtime/gguf.h"
#include "runtime/model-file.h"
#include "testutil.h"

enum {
    MAX_IDS = 4096,
};

typedef struct collect {
    int32_t ids[MAX_IDS];
    size_t n;
} collect;

static int
on_token(void *userdata, int32_t token, const char *piece, size_t len)
{
    collect *c = userdata;
    (void)piece;
    (void)len;
    if (c->n < MAX_IDS)
        c->ids[c->n++] = token;
    return 0;
}

typedef struct loaded {
    rt_model_file *f;
    rt_model *m;
    rt_tokenizer *tok;
    const void *data;
    size_t len;
} loaded;

static bool
load(const char *name, uint32_t seq_len, loaded *ret)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "realarch/%s", name);
    char *path = tu_model_path(rel);
    if (!path)
        return false;
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.seq_len = seq_len;
    assert_int_equal(rt_model_file_open(path, &o, &ret->f), 0);
    free(path);
    ret->m = rt_model_file_model(ret->f);
    ret->data = rt_model_file_data(ret->f, &ret->len);
    assert_int_equal(rt_tokenizer_load_gguf(ret->data, ret->len, &ret->tok), 0);
    return true;
}

static void
unload(loaded *l)
{
    rt_tokenizer_free(l->tok);
    rt_model_file_close(l->f);
}

static void
greedy(const loaded *l, rt_sampler *s)
{
    assert_int_equal(rt_sampler_init(s, rt_model_config(l->m)->vocab_size, 0.0f, 1.0f, 1, NULL, 0),
                     0);
}

/* Appends the tokens of one turn's text, as the session encodes it. */
static void
append_turn(const loaded *l, rt_chat_template t, size_t turn, const char *user, collect *c)
{
    char bos[64] = "", eos[64] = "";
    const char *p;
    size_t n;
    assert_int_equal(rt_tokenizer_piece(l->tok, rt_tokenizer_bos(l->tok), &p, &n, NULL, NULL), 0);
    memcpy(bos, p, n < 63 ? n : 63);
    assert_int_equal(rt_tokenizer_piece(l->tok, rt_tokenizer_eos(l->tok), &p, &n, NULL, NULL), 0);
    memcpy(eos, p, n < 63 ? n : 63);
    rt_chat_tokens tk = { bos, eos };
    char text[1024];
    size_t len;
    assert_int_equal(
        rt_chat_render_turn(t, &tk, "Be brief.", 9, turn, user, strlen(user), text, 1024, &len), 0);
    unsigned flags = RT_TOK_PARSE_SPECIAL;
    if (turn == 0 && !rt_chat_template_writes_bos(t) && rt_tokenizer_add_bos(l->tok))
        flags |= RT_TOK_ADD_BOS;
    size_t got;
    assert_int_equal(
        rt_tokenizer_encode(l->tok, text, len, flags, c->ids + c->n, MAX_IDS - c->n, &got), 0);
    c->n += got;
}

static void
two_turns(const char *name, rt_chat_template t, int want_stops)
{
    loaded l;
    if (!load(name, 0, &l))
        skip();
    const int32_t *stops;
    rt_chat_session *cs;
    assert_int_equal(rt_chat_session_new(l.m, l.tok, t, "Be brief.", 9, &cs), 0);
    assert_int_equal(rt_chat_session_stop_ids(cs, &stops), (size_t)want_stops);
    rt_sampler s;
    greedy(&l, &s);
    collect r0 = { .n = 0 }, r1 = { .n = 0 };
    rt_chat_turn_stats st0, st1;
    assert_int_equal(rt_chat_session_turn(cs, &s, "Hi there", 8, 12, on_token, &r0, &st0), 0);
    assert_int_equal(st0.pos_start, 0);
    assert_int_equal(rt_chat_session_pos(cs), st0.n_prompt + r0.n);
    assert_int_equal(rt_chat_session_turn(cs, &s, "Bye", 3, 12, on_token, &r1, &st1), 0);
    /* Turn 2 starts where turn 1 ended and feeds only its own text. */
    assert_int_equal(st1.pos_start, st0.n_prompt + r0.n);
    static collect whole;
    whole.n = 0;
    append_turn(&l, t, 0, "Hi there", &whole);
    assert_int_equal(whole.n, st0.n_prompt);
    memcpy(whole.ids + whole.n, r0.ids, r0.n * sizeof(int32_t));
    whole.n += r0.n;
    size_t before = whole.n;
    append_turn(&l, t, 1, "Bye", &whole);
    assert_int_equal(whole.n - before, st1.n_prompt);
    assert_true(st1.n_prompt < whole.n);

    /* From scratch over the whole stream: the same reply, token for token. */
    float *logits = NULL;
    for (size_t i = 0; i < whole.n; i++)
        assert_non_null(logits = rt_forward(l.m, whole.ids[i], (int)i));
    greedy(&l, &s);
    for (size_t i = 0; i < r1.n; i++) {
        int32_t next = rt_sampler_sample(&s, logits);
        assert_int_equal(next, r1.ids[i]);
        assert_non_null(logits = rt_forward(l.m, next, (int)(whole.n + i)));
    }
    rt_chat_session_free(cs);
    unload(&l);
}

static void
test_qwen2_chatml(void **state)
{
    (void)state;
    /* The gpt-2 vocabulary has no <|im_end|>: only <|endoftext|>, which is
     * EOS and BOS at once. */
    two_turns("qwen2-gqa-Q8_0.gguf", RT_CHAT_CHATML, 1);
}

static void
test_phi3_own_template(void **state)
{
    (void)state;
    char *path = tu_model_path("realarch/phi3-Q4_K_M.gguf");
    if (!path)
        skip();
    free(path);
    loaded l;
    assert_true(load("phi3-Q4_K_M.gguf", 0, &l));
    rt_gguf g;
    assert_int_equal(rt_gguf_parse(l.data, l.len, l.len, &g, NULL), 0);
    const char *s;
    uint64_t n;
    assert_int_equal(rt_gguf_get_str(&g, "tokenizer.chat_template", &s, &n), 0);
    rt_chat_template t;
    assert_int_equal(rt_chat_template_detect(s, n, &t), 0);
    assert_int_equal(t, RT_CHAT_PHI3);
    unload(&l);
    /* BOS <s>, EOS <|endoftext|>, <|end|> (BOS and EOS of the model are
     * the vocabulary's). */
    two_turns("phi3-Q4_K_M.gguf", RT_CHAT_PHI3, 3);
}

static void
test_context_overflow(void **state)
{
    (void)state;
    loaded l;
    if (!load("qwen2-gqa-Q8_0.gguf", 40, &l))
        skip();
    rt_chat_session *cs;
    assert_int_equal(rt_chat_session_new(l.m, l.tok, RT_CHAT_CHATML, NULL, 0, &cs), 0);
    assert_int_equal(rt_chat_session_ctx(cs), 40);
    rt_sampler s;
    greedy(&l, &s);
    collect r = { .n = 0 };
    rt_chat_turn_stats st;
    /* A turn longer than the whole context: refused, nothing fed. */
    char big[200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = ' ';
    for (size_t i = 0; i < sizeof(big); i += 4)
        big[i] = ' ';
    assert_int_equal(rt_chat_session_turn(cs, &s, big, sizeof(big), -1, on_token, &r, &st),
                     -EMSGSIZE);
    assert_true(st.n_prompt >= 40);
    assert_int_equal(rt_chat_session_pos(cs), 0);
    /* A short turn whose reply runs to the context end: then the session
     * refuses more. */
    assert_int_equal(rt_chat_session_turn(cs, &s, "Hi", 2, -1, on_token, &r, &st), 0);
    if (st.context_full) {
        assert_int_equal(rt_chat_session_pos(cs), 40);
        assert_int_equal(rt_chat_session_turn(cs, &s, "Hi", 2, -1, on_token, &r, &st), -EMSGSIZE);
    }
    rt_chat_session_free(cs);
    unload(&l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2_chatml),
        cmocka_unit_test(test_phi3_own_template),
        cmocka_unit_test(test_context_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
