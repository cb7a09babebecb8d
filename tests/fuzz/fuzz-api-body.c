/* SPDX-License-Identifier: MIT */
/* Fuzz target: the HTTP API's request bodies (outside bytes, through
 * jansson) as the generation and pull endpoints parse them: the first byte
 * picks /api/generate, /api/chat, /v1/completions, /v1/chat/completions or
 * /api/pull; the rest is the body. A body that parses must give what the
 * worker accepts (daemon/gen.h's bounds; messages in the order the chat
 * templates take), and its texts go through the answer builders, which
 * must give JSON for any bytes. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api-ollama-gen.h"
#include "daemon/api-openai.h"
#include "daemon/api-pull.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_params(const nvx_gen_params *p, bool chat)
{
    if (!p->model || strlen(p->model) == 0 || strlen(p->model) >= NVX_GEN_MODEL_MAX ||
        p->n_stop > NVX_GEN_STOP_MAX || !(p->temperature >= 0) || !(p->top_p > 0) ||
        !(p->top_p <= 1))
        __builtin_trap();
    for (size_t i = 0; i < p->n_stop; i++)
        if (strlen(p->stop[i]) == 0 || strlen(p->stop[i]) > NVX_GEN_STOP_LEN_MAX)
            __builtin_trap();
    if (!chat)
        return;
    if (!p->msgs || p->n_msgs == 0 || p->n_msgs > NVX_GEN_MSGS_MAX ||
        p->msgs[p->n_msgs - 1].role != RT_CHAT_USER)
        __builtin_trap();
    for (size_t i = 0; i < p->n_msgs; i++)
        if ((i > 0 && p->msgs[i].role == RT_CHAT_SYSTEM) || (unsigned)p->msgs[i].role >= 3)
            __builtin_trap();
}

/* Every builder on text that came from the body. */
static void
build(const char *model, const char *text, size_t len)
{
    nvx_gen_result res = { .prompt_tokens = 3, .cached_tokens = 1, .eval_tokens = 2 };
    size_t n = 0;
    for (int chat = 0; chat < 2; chat++) {
        free(nvx_api_ollama_generate_chunk(model, chat, text, len, &n));
        free(nvx_api_ollama_generate_final(model, chat, text, len, &res, true, &n));
        free(nvx_api_openai_completion("id", model, chat, text, len, NULL, NULL, true, &n));
        free(nvx_api_openai_completion("id", model, chat, text, len, "stop", &res, false, &n));
        free(nvx_api_openai_completion("id", model, chat, "", 0, "length", &res, true, &n));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[NVX_API_ERR_MAX] = "";
    unsigned which = data[0] % 5;
    if (which == 4) {
        char target[NVX_API_PULL_TARGET_MAX + 1];
        bool stream;
        if (nvx_api_pull_parse(body, len, target, &stream, err) == 0 &&
            (strlen(target) == 0 || strlen(target) > NVX_API_PULL_TARGET_MAX))
            __builtin_trap();
        return 0;
    }
    bool chat = which & 1, openai = which & 2;
    nvx_api_gen_in in = { 0 };
    int r = openai ? nvx_api_openai_completions_parse(body, len, chat, &in, err)
                   : nvx_api_ollama_generate_parse(body, len, chat, &in, err);
    if (r == 0) {
        check_params(&in.p, chat);
        if (chat)
            build(in.p.model, in.p.msgs[in.p.n_msgs - 1].text, in.p.msgs[in.p.n_msgs - 1].len);
        else
            build(in.p.model, in.p.prompt, in.p.prompt_len);
    } else if (r == -EINVAL && err[0] == '\0') {
        __builtin_trap(); /* an error must name what is wrong */
    }
    nvx_api_gen_in_clear(&in);
    return 0;
}
