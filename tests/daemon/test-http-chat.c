/* SPDX-License-Identifier: MIT */
/* Chat through a real nvxd (nvxd-test, --http 127.0.0.1:0) over raw
 * sockets, with the realarch phi3 model (random weights, the Phi-3 chat
 * template; skipped when NVX_SHARED_MODELS lacks it): /api/chat and
 * /v1/chat/completions stream and answer whole; a conversation that goes
 * on is fed only its new tokens (the KV cache of the previous chat is
 * reused) and gives the same greedy text as when it is fed whole; a model
 * without a known template, and malformed messages, get 400 naming why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "daemonutil.h"
#include "httputil.h"

static du_daemon d;
static unsigned port;
static char phi3[1024], aid[1024];
static bool have_model;

static int
setup(void **state)
{
    const char *dir = getenv("NVX_SHARED_MODELS");
    snprintf(phi3, sizeof(phi3), "%s/realarch/phi3-Q4_K_M.gguf", dir ? dir : "");
    snprintf(aid, sizeof(aid), "%s/aidreams260K-f32.gguf", dir ? dir : "");
    struct stat st;
    have_model = dir && stat(phi3, &st) == 0 && stat(aid, &st) == 0;
    if (!have_model)
        return 0;
    du_setup("chat");
    static const char *const args[] = { "--http", "127.0.0.1:0", NULL };
    du_start_args(&d, "c", NULL, args);
    port = hu_api_port(&d);
    char *out = NULL;
    du_nvx_ok(&d, &out, "add", phi3, "--name", "phi3", NULL);
    free(out);
    du_nvx_ok(&d, &out, "add", aid, "--name", "aid", NULL);
    free(out);
    return port ? 0 : -1;
}

static int
teardown(void **state)
{
    if (!have_model)
        return 0;
    du_stop(&d);
    du_teardown();
    return 0;
}

#define NEED_MODEL()                                                                         \
    do {                                                                                     \
        if (!have_model) {                                                                   \
            print_message("skipped: %s or %s not found (set -Dshared_models)\n", phi3, aid); \
            skip();                                                                          \
        }                                                                                    \
    } while (0)

/* The greedy reply's text to msgs (a JSON array), and its counts. */
static char *
chat(const char *msgs, int num_predict, long long *ret_evaluated, long long *ret_eval)
{
    char req[4096], *body = NULL;
    snprintf(req, sizeof(req),
             "{\"model\":\"phi3\",\"stream\":false,\"messages\":%s,"
             "\"options\":{\"temperature\":0,\"num_predict\":%d}}",
             msgs, num_predict);
    int st = hu_post(port, "/api/chat", req, &body);
    if (st != 200)
        fail_msg("/api/chat %s: %d %s", req, st, body);
    assert_non_null(strstr(body, "\"message\":{\"role\":\"assistant\",\"content\":"));
    assert_non_null(strstr(body, "\"done\":true"));
    *ret_evaluated = hu_int_field(body, "prompt_eval_count");
    *ret_eval = hu_int_field(body, "eval_count");
    char *text = hu_join_field(body, "content");
    free(body);
    return text;
}

/* A raw /api/generate on phi3: the worker's KV cache then holds no chat. */
static void
forget_chat(void)
{
    char *body = NULL;
    assert_int_equal(hu_post(port, "/api/generate",
                             "{\"model\":\"phi3\",\"prompt\":\"x\",\"stream\":false,"
                             "\"options\":{\"num_predict\":1}}",
                             &body),
                     200);
    free(body);
}

static void
test_kv_cache_reused(void **state)
{
    NEED_MODEL();
    forget_chat();
    long long full1, n1, cached1, ncached;
    char *r1 = chat("[{\"role\":\"user\",\"content\":\"Hello there\"}]", 8, &full1, &n1);
    assert_true(full1 > 3);
    assert_int_equal(n1, 8);
    char msgs[2048];
    snprintf(msgs, sizeof(msgs),
             "[{\"role\":\"user\",\"content\":\"Hello there\"},"
             "{\"role\":\"assistant\",\"content\":\"%s\"},"
             "{\"role\":\"user\",\"content\":\"And then?\"}]",
             r1);
    /* Going on: only the tokens after the cached prefix are evaluated. */
    char *r2 = chat(msgs, 8, &cached1, &ncached);
    forget_chat();
    long long full2, n2;
    char *r2whole = chat(msgs, 8, &full2, &n2);
    print_message("turn 2: %lld tokens evaluated with the cache, %lld without\n", cached1, full2);
    assert_true(cached1 > 0 && cached1 < full2 - full1 + 8);
    /* ...and the reply is the one the whole conversation gives. */
    assert_string_equal(r2, r2whole);
    assert_int_equal(ncached, n2);
    /* The same chat again: everything but the last token is cached. */
    long long again, nagain;
    char *r3 = chat(msgs, 8, &again, &nagain);
    assert_int_equal(again, 1);
    assert_string_equal(r3, r2whole);
    free(r1);
    free(r2);
    free(r2whole);
    free(r3);
}

static void
test_streams(void **state)
{
    NEED_MODEL();
    char *body = NULL;
    /* Ollama: NDJSON lines with message.content, then done:true. */
    assert_int_equal(hu_post(port, "/api/chat",
                             "{\"model\":\"phi3:latest\",\"messages\":[{\"role\":\"system\","
                             "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],"
                             "\"options\":{\"temperature\":0,\"num_predict\":4,\"seed\":3}}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"done\":false}\n"));
    const char *last = strstr(body, "\"done\":true");
    assert_non_null(last);
    assert_non_null(strstr(last, "\"done_reason\":\"length\""));
    assert_int_equal(hu_int_field(last, "eval_count"), 4);
    assert_non_null(strstr(last, "\"eval_duration\":"));
    free(body);
    /* OpenAI: chat.completion.chunk events, an empty delta with the
     * finish reason, then [DONE]. */
    assert_int_equal(hu_post(port, "/v1/chat/completions",
                             "{\"model\":\"phi3\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"Hi\"}],\"temperature\":0,\"max_tokens\":3,\"stream\":true}",
                             &body),
                     200);
    assert_non_null(strstr(body, "data: {\"id\":\"chatcmpl-"));
    assert_non_null(strstr(body, "\"object\":\"chat.completion.chunk\""));
    assert_non_null(strstr(body, "\"delta\":{\"role\":\"assistant\",\"content\":"));
    assert_non_null(strstr(body, "\"delta\":{},\"index\":0,\"logprobs\":null,"
                                 "\"finish_reason\":\"length\"}"));
    assert_non_null(strstr(body, "data: [DONE]\n\n"));
    free(body);
    /* Whole, with usage. */
    assert_int_equal(hu_post(port, "/v1/chat/completions",
                             "{\"model\":\"phi3\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"Hi\"}],\"temperature\":0,\"max_tokens\":3}",
                             &body),
                     200);
    assert_non_null(strstr(body, "\"object\":\"chat.completion\""));
    assert_non_null(strstr(body, "\"message\":{\"role\":\"assistant\",\"content\":"));
    assert_int_equal(hu_int_field(body, "completion_tokens"), 3);
    assert_non_null(strstr(body, "\"finish_reason\":\"length\""));
    free(body);
}

static void
test_refused(void **state)
{
    NEED_MODEL();
    static const struct {
        const char *path, *body, *why;
        int status;
    } cases[] = {
        { "/api/chat", "{\"model\":\"aid\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
          "cannot chat: its file has no tokenizer.chat_template", 400 },
        { "/api/chat", "{\"model\":\"phi3\"}", "messages: required", 400 },
        { "/api/chat", "{\"model\":\"phi3\",\"messages\":[]}", "messages: required", 400 },
        { "/api/chat", "{\"model\":\"phi3\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
          "messages[0].role", 400 },
        { "/api/chat", "{\"model\":\"phi3\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
          "messages[0].content", 400 },
        { "/api/chat",
          "{\"model\":\"phi3\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
          "{\"role\":\"user\",\"content\":\"b\"}]}",
          "messages[1]: expected", 400 },
        { "/api/chat",
          "{\"model\":\"phi3\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
          "{\"role\":\"system\",\"content\":\"b\"}]}",
          "messages[1]: expected", 400 },
        { "/v1/chat/completions",
          "{\"model\":\"phi3\",\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"}]}",
          "messages[0]: expected", 400 },
        { "/v1/chat/completions", "{\"model\":\"phi3\",\"messages\":\"hi\"}", "messages: required",
          400 },
        { "/v1/chat/completions",
          "{\"model\":\"nosuch\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
          "not found", 404 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = NULL;
        int st = hu_post(port, cases[i].path, cases[i].body, &body);
        if (st != cases[i].status || !strstr(body, "\"error\"") || !strstr(body, cases[i].why))
            fail_msg("%s %s: %d %s", cases[i].path, cases[i].body, st, body);
        free(body);
    }
    /* More messages than NVX_GEN_MSGS_MAX (1024). */
    size_t cap = 1100 * 40 + 64;
    char *big = malloc(cap), *body = NULL;
    assert_non_null(big);
    size_t o = (size_t)snprintf(big, cap, "{\"model\":\"phi3\",\"messages\":[");
    for (int i = 0; i < 1025; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{\"role\":\"%s\",\"content\":\"x\"}",
                              i ? "," : "", i % 2 ? "assistant" : "user");
    snprintf(big + o, cap - o, "]}");
    assert_int_equal(hu_post(port, "/api/chat", big, &body), 400);
    assert_non_null(strstr(body, "1 to 1024 messages"));
    free(body);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_cache_reused),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_refused),
    };
    return du_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
