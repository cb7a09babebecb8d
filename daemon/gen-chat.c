/* SPDX-License-Identifier: MIT */
#include "daemon/gen-chat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/chat-session.h"
#include "runtime/gguf.h"

int
nvx_gen_chat_template(const void *map, size_t len, rt_chat_template *ret,
                      char why[static NVX_GEN_CHAT_WHY_MAX])
{
    rt_gguf g;
    const char *s = NULL;
    uint64_t n = 0;
    if (rt_gguf_parse(map, len, len, &g, NULL) < 0 ||
        rt_gguf_get_str(&g, "tokenizer.chat_template", &s, &n) < 0) {
        snprintf(why, NVX_GEN_CHAT_WHY_MAX, "its file has no tokenizer.chat_template");
        return -ENOTSUP;
    }
    if (rt_chat_template_detect(s, n, ret) == 0)
        return 0;
    /* Name it by its start, printable ASCII only (the file is outside
     * bytes, and the message goes into JSON and logs). */
    char head[41];
    size_t k = 0;
    for (uint64_t i = 0; i < n && k < sizeof(head) - 1; i++)
        head[k++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? s[i] : ' ';
    head[k] = '\0';
    snprintf(why, NVX_GEN_CHAT_WHY_MAX,
             "its chat template \"%s%s\" is none of ChatML, Llama 2, Llama 3, Phi-3, Zephyr, "
             "Gemma",
             head, n > k ? "..." : "");
    return -ENOTSUP;
}

int
nvx_gen_chat_encode(const rt_tokenizer *tok, rt_chat_template t, const rt_chat_msg *msgs, size_t n,
                    size_t cap, int32_t **ret_toks, size_t *ret_n)
{
    char bos[RT_TOK_MAX_PIECE + 1], eos[RT_TOK_MAX_PIECE + 1];
    rt_chat_pieces(tok, bos, eos);
    rt_chat_tokens tk = { bos, eos };
    size_t need = 0;
    int r = rt_chat_render(t, &tk, msgs, n, true, NULL, 0, &need);
    if (r != -EMSGSIZE)
        return r < 0 ? r : -EINVAL;
    if (need == SIZE_MAX)
        return -ENOMEM;
    char *text = malloc(need + 1);
    int32_t *ids = NULL;
    if (!text)
        return -ENOMEM;
    r = rt_chat_render(t, &tk, msgs, n, true, text, need + 1, &need);
    if (r < 0)
        goto out;
    size_t bound = rt_tokenizer_encode_bound(need);
    size_t alloc = bound > cap ? bound : cap;
    ids = malloc(alloc * sizeof(*ids));
    if (!ids) {
        r = -ENOMEM;
        goto out;
    }
    /* A BOS only where the vocabulary asks for one and the template does
     * not write it (as rt_chat_session does). */
    unsigned flags = RT_TOK_PARSE_SPECIAL;
    if (!rt_chat_template_writes_bos(t) && rt_tokenizer_add_bos(tok))
        flags |= RT_TOK_ADD_BOS;
    size_t nt = 0;
    r = rt_tokenizer_encode(tok, text, need, flags, ids, alloc, &nt);
    if (r < 0)
        goto out;
    *ret_toks = ids;
    *ret_n = nt;
    ids = NULL;
out:
    free(ids);
    free(text);
    return r;
}

size_t
nvx_gen_chat_common(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}
