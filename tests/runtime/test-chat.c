/* SPDX-License-Identifier: MIT */
/*
 * Chat template tests: for each template, the exact string its Jinja
 * definition produces for [system, user, assistant, user] with the
 * generation prompt (written by hand from the template's source); the
 * incremental turns add up to the same string; detection from real
 * template texts; refusals; buffer sizing; role order.
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

#include "runtime/chat.h"

static const rt_chat_tokens spm = { "<s>", "</s>" };

typedef struct golden {
    rt_chat_template t;
    rt_chat_tokens tk;
    const char *want;
} golden;

static const golden goldens[] = {
    { RT_CHAT_CHATML,
      { "", "<|endoftext|>" },
      "<|im_start|>system\nBe brief.<|im_end|>\n"
      "<|im_start|>user\nHi there<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n"
      "<|im_start|>user\nBye<|im_end|>\n"
      "<|im_start|>assistant\n" },
    { RT_CHAT_LLAMA2,
      { "<s>", "</s>" },
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
      "<s>[INST] Bye [/INST]" },
    { RT_CHAT_LLAMA3,
      { "<|begin_of_text|>", "<|end_of_text|>" },
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n" },
    { RT_CHAT_PHI3,
      { "<s>", "<|endoftext|>" },
      "<|system|>\nBe brief.<|end|>\n"
      "<|user|>\nHi there<|end|>\n"
      "<|assistant|>\nHello!<|end|>\n"
      "<|user|>\nBye<|end|>\n"
      "<|assistant|>\n" },
    { RT_CHAT_ZEPHYR,
      { "<s>", "</s>" },
      "<|system|>\nBe brief.</s>\n"
      "<|user|>\nHi there</s>\n"
      "<|assistant|>\nHello!</s>\n"
      "<|user|>\nBye</s>\n"
      "<|assistant|>\n" },
    { RT_CHAT_GEMMA,
      { "<bos>", "<eos>" },
      "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n"
      "<start_of_turn>model\nHello!<end_of_turn>\n"
      "<start_of_turn>user\nBye<end_of_turn>\n"
      "<start_of_turn>model\n" },
};

static const rt_chat_msg conv[] = {
    { RT_CHAT_SYSTEM, "Be brief.", 9 },
    { RT_CHAT_USER, "Hi there", 8 },
    { RT_CHAT_ASSISTANT, "Hello!", 6 },
    { RT_CHAT_USER, "Bye", 3 },
};

static void
test_exact_render(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const golden *g = &goldens[i];
        char buf[1024];
        size_t len = 0;
        assert_int_equal(rt_chat_render(g->t, &g->tk, conv, 4, true, buf, sizeof(buf), &len), 0);
        assert_string_equal(buf, g->want);
        assert_int_equal(len, strlen(g->want));
    }
}

/* turn 0 + reply + turn 1 is the whole rendering: what the session feeds
 * equals what a fresh prompt would be. */
static void
test_turns_add_up(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
        const golden *g = &goldens[i];
        char t0[512], t1[512], all[1200];
        size_t n0, n1;
        assert_int_equal(rt_chat_render_turn(g->t, &g->tk, "Be brief.", 9, 0, "Hi there", 8, t0,
                                             sizeof(t0), &n0),
                         0);
        assert_int_equal(
            rt_chat_render_turn(g->t, &g->tk, "Be brief.", 9, 1, "Bye", 3, t1, sizeof(t1), &n1), 0);
        /* The reply as the model would generate it (llama2: with its
         * leading space). */
        const char *reply = g->t == RT_CHAT_LLAMA2 ? " Hello!" : "Hello!";
        snprintf(all, sizeof(all), "%s%s%s", t0, reply, t1);
        assert_string_equal(all, g->want);
    }
}

static void
test_no_system(void **state)
{
    (void)state;
    char buf[512];
    size_t len;
    assert_int_equal(
        rt_chat_render(RT_CHAT_LLAMA2, &spm, conv + 1, 1, true, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<s>[INST] Hi there [/INST]");
    assert_int_equal(rt_chat_render_turn(RT_CHAT_GEMMA, &(rt_chat_tokens){ "<bos>", "<eos>" }, NULL,
                                         0, 0, " Hi ", 4, buf, sizeof(buf), &len),
                     0);
    assert_string_equal(buf, "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    /* Phi-3.5: an empty system message is skipped; without the generation
     * prompt the template ends with eos_token. */
    rt_chat_msg m[2] = { { RT_CHAT_SYSTEM, "", 0 }, { RT_CHAT_USER, "x", 1 } };
    assert_int_equal(rt_chat_render(RT_CHAT_PHI3, &spm, m, 2, false, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<|user|>\nx<|end|>\n</s>");
}

static void
test_trim(void **state)
{
    (void)state;
    rt_chat_msg m[2] = { { RT_CHAT_SYSTEM, " S ", 3 }, { RT_CHAT_USER, "\n u \n", 5 } };
    char buf[512];
    size_t len;
    rt_chat_tokens l3 = { "<|begin_of_text|>", "<|end_of_text|>" };
    assert_int_equal(rt_chat_render(RT_CHAT_LLAMA3, &l3, m, 2, false, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS"
                             "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nu<|eot_id|>");
    /* Llama 2 strips the whole first content: the system text keeps its
     * spaces inside <<SYS>>, the user text loses its trailing ones. */
    assert_int_equal(rt_chat_render(RT_CHAT_LLAMA2, &spm, m, 2, true, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<s>[INST] <<SYS>>\n S \n<</SYS>>\n\n\n u [/INST]");
    /* ChatML keeps the text as it is. */
    assert_int_equal(rt_chat_render(RT_CHAT_CHATML, &spm, m, 2, false, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<|im_start|>system\n S <|im_end|>\n<|im_start|>user\n\n u \n"
                             "<|im_end|>\n");
}

static void
test_sizing_and_errors(void **state)
{
    (void)state;
    const golden *g = &goldens[0];
    size_t need = 0;
    assert_int_equal(rt_chat_render(g->t, &g->tk, conv, 4, true, NULL, 0, &need), -EMSGSIZE);
    assert_int_equal(need, strlen(g->want));
    char buf[1024];
    size_t len;
    /* Exactly the text, no room for the NUL: too small. */
    assert_int_equal(rt_chat_render(g->t, &g->tk, conv, 4, true, buf, need, &len), -EMSGSIZE);
    assert_int_equal(len, need);
    assert_int_equal(rt_chat_render(g->t, &g->tk, conv, 4, true, buf, need + 1, &len), 0);
    assert_string_equal(buf, g->want);
    /* Roles must alternate user/assistant after the optional system. */
    rt_chat_msg bad[2] = { { RT_CHAT_USER, "a", 1 }, { RT_CHAT_USER, "b", 1 } };
    assert_int_equal(rt_chat_render(g->t, &g->tk, bad, 2, true, buf, sizeof(buf), &len), -EINVAL);
    assert_int_equal(rt_chat_render(g->t, &g->tk, conv + 2, 1, true, buf, sizeof(buf), &len),
                     -EINVAL);
    assert_int_equal(
        rt_chat_render(_RT_CHAT_TEMPLATE_MAX, &g->tk, conv, 1, true, buf, sizeof(buf), &len),
        -EINVAL);
    /* Zero messages: only what the template starts with. */
    assert_int_equal(
        rt_chat_render(RT_CHAT_LLAMA3, &goldens[2].tk, NULL, 0, false, buf, sizeof(buf), &len), 0);
    assert_string_equal(buf, "<|begin_of_text|>");
}

static void
test_detect(void **state)
{
    (void)state;
    static const struct {
        const char *jinja;
        int want;
    } cases[] = {
        { "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
          RT_CHAT_CHATML },
        { "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}", RT_CHAT_LLAMA2 },
        { "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
          "+ message['content'] | trim + '<|eot_id|>' %}",
          RT_CHAT_LLAMA3 },
        /* The phi3 realarch file's template. */
        { "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"
          "{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + "
          "'\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + "
          "'\n'}}{% endif %}{% endfor %}",
          RT_CHAT_PHI3 },
        { "{{ '<|user|>\\n' + message['content'] + eos_token }}", RT_CHAT_ZEPHYR },
        { "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim }}", RT_CHAT_GEMMA },
        { "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", -ENOTSUP },
        { "", -ENOTSUP },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rt_chat_template t = _RT_CHAT_TEMPLATE_MAX;
        int r = rt_chat_template_detect(cases[i].jinja, strlen(cases[i].jinja), &t);
        if (cases[i].want < 0) {
            assert_int_equal(r, cases[i].want);
        } else {
            assert_int_equal(r, 0);
            assert_int_equal(t, cases[i].want);
        }
    }
}

static void
test_names_and_stops(void **state)
{
    (void)state;
    for (int i = 0; i < _RT_CHAT_TEMPLATE_MAX; i++) {
        rt_chat_template t;
        assert_int_equal(rt_chat_template_from_name(rt_chat_template_name(i), &t), 0);
        assert_int_equal(t, i);
        const char *const *stops;
        size_t n = rt_chat_template_stops(i, &stops);
        assert_true(n >= 1 && n <= RT_CHAT_MAX_STOP);
    }
    rt_chat_template t;
    assert_int_equal(rt_chat_template_from_name("mistral", &t), -ENOENT);
    assert_string_equal(rt_chat_template_name(_RT_CHAT_TEMPLATE_MAX), "?");
    const char *const *stops;
    assert_int_equal(rt_chat_template_stops(RT_CHAT_LLAMA3, &stops), 2);
    assert_string_equal(stops[0], "<|eot_id|>");
    assert_true(rt_chat_template_writes_bos(RT_CHAT_GEMMA));
    assert_false(rt_chat_template_writes_bos(RT_CHAT_CHATML));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_render),      cmocka_unit_test(test_turns_add_up),
        cmocka_unit_test(test_no_system),         cmocka_unit_test(test_trim),
        cmocka_unit_test(test_sizing_and_errors), cmocka_unit_test(test_detect),
        cmocka_unit_test(test_names_and_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
