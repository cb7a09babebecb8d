/* SPDX-License-Identifier: MIT */
/*
 * Chat templates; see chat.h. Each template is rendered as segments:
 * system, user (the first may carry the system text), the assistant's
 * header (the generation prompt), the assistant's content as the template
 * transforms it, and the assistant's close. rt_chat_render and
 * rt_chat_render_turn share them, so an incremental conversation is by
 * construction the same text as the whole one.
 */
#include "runtime/chat.h"

#include <errno.h>
#include <string.h>

static const char *const names[_RT_CHAT_TEMPLATE_MAX] = {
    [RT_CHAT_CHATML] = "chatml", [RT_CHAT_LLAMA2] = "llama2", [RT_CHAT_LLAMA3] = "llama3",
    [RT_CHAT_PHI3] = "phi3",     [RT_CHAT_ZEPHYR] = "zephyr", [RT_CHAT_GEMMA] = "gemma",
};

const char *
rt_chat_template_name(rt_chat_template t)
{
    return (unsigned)t < _RT_CHAT_TEMPLATE_MAX ? names[t] : "?";
}

int
rt_chat_template_from_name(const char *name, rt_chat_template *ret)
{
    if (!name || !ret)
        return -EINVAL;
    for (int i = 0; i < _RT_CHAT_TEMPLATE_MAX; i++)
        if (strcmp(name, names[i]) == 0) {
            *ret = (rt_chat_template)i;
            return 0;
        }
    return -ENOENT;
}

/* memmem without _GNU_SOURCE. */
static bool
contains(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (memcmp(s + i, needle, n) == 0)
            return true;
    return false;
}

int
rt_chat_template_detect(const char *jinja, size_t len, rt_chat_template *ret)
{
    if ((!jinja && len) || !ret)
        return -EINVAL;
    rt_chat_template t;
    /* Most specific markers first: Phi-3 and Zephyr share <|user|>, and a
     * ChatML or Llama 3 template may mention [INST] in a comment less often
     * than the reverse. */
    if (contains(jinja, len, "<|im_start|>"))
        t = RT_CHAT_CHATML;
    else if (contains(jinja, len, "<|start_header_id|>"))
        t = RT_CHAT_LLAMA3;
    else if (contains(jinja, len, "<start_of_turn>"))
        t = RT_CHAT_GEMMA;
    else if (contains(jinja, len, "<|user|>") && contains(jinja, len, "<|end|>"))
        t = RT_CHAT_PHI3;
    else if (contains(jinja, len, "<|user|>"))
        t = RT_CHAT_ZEPHYR;
    else if (contains(jinja, len, "[INST]"))
        t = RT_CHAT_LLAMA2;
    else
        return -ENOTSUP;
    *ret = t;
    return 0;
}

bool
rt_chat_template_writes_bos(rt_chat_template t)
{
    return t == RT_CHAT_LLAMA2 || t == RT_CHAT_LLAMA3 || t == RT_CHAT_GEMMA;
}

size_t
rt_chat_template_stops(rt_chat_template t, const char *const **ret)
{
    static const char *const chatml[] = { "<|im_end|>", "<|endoftext|>" };
    static const char *const llama3[] = { "<|eot_id|>", "<|end_of_text|>" };
    static const char *const phi3[] = { "<|end|>", "<|endoftext|>" };
    static const char *const eos_only[] = { "</s>" };
    static const char *const gemma[] = { "<end_of_turn>", "<eos>" };
    switch (t) {
    case RT_CHAT_CHATML:
        *ret = chatml;
        return 2;
    case RT_CHAT_LLAMA3:
        *ret = llama3;
        return 2;
    case RT_CHAT_PHI3:
        *ret = phi3;
        return 2;
    case RT_CHAT_GEMMA:
        *ret = gemma;
        return 2;
    case RT_CHAT_LLAMA2:
    case RT_CHAT_ZEPHYR:
    default:
        *ret = eos_only;
        return 1;
    }
}

/* ---- output ---- */

/* Appends to buf[0..cap) while it fits and counts every byte, so one pass
 * both sizes and writes. */
typedef struct out {
    char *buf;
    size_t cap, len;
} out;

static void
put(out *o, const char *s, size_t n)
{
    if (o->len < o->cap && o->cap - o->len > n)
        memcpy(o->buf + o->len, s, n);
    else
        o->cap = 0; /* did not fit: write nothing more */
    o->len += n;
}

static void
puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Python's str.strip() (Jinja's trim) on ASCII whitespace; lead/trail pick
 * the ends. */
static void
put_stripped(out *o, const char *s, size_t n, bool lead, bool trail)
{
    while (lead && n && is_space(s[0])) {
        s++;
        n--;
    }
    while (trail && n && is_space(s[n - 1]))
        n--;
    put(o, s, n);
}

static void
put_trim(out *o, const char *s, size_t n)
{
    put_stripped(o, s, n, true, true);
}

static int
finish(out *o, size_t *ret_len)
{
    *ret_len = o->len;
    if (o->cap == 0 || o->len >= o->cap)
        return -EMSGSIZE;
    o->buf[o->len] = '\0';
    return 0;
}

/* ---- segments ---- */

/* What the whole rendering starts with. */
static void
seg_start(out *o, rt_chat_template t, const rt_chat_tokens *tk)
{
    if (t == RT_CHAT_LLAMA3 || t == RT_CHAT_GEMMA)
        puts_(o, tk->bos);
}

/* The system message on its own (templates that fold it into the first
 * user turn write nothing here). */
static void
seg_system(out *o, rt_chat_template t, const rt_chat_tokens *tk, const char *s, size_t n)
{
    switch (t) {
    case RT_CHAT_CHATML:
        puts_(o, "<|im_start|>system\n");
        put(o, s, n);
        puts_(o, "<|im_end|>\n");
        break;
    case RT_CHAT_LLAMA3:
        puts_(o, "<|start_header_id|>system<|end_header_id|>\n\n");
        put_trim(o, s, n);
        puts_(o, "<|eot_id|>");
        break;
    case RT_CHAT_PHI3:
        /* {% if message['role'] == 'system' and message['content'] %} */
        if (n) {
            puts_(o, "<|system|>\n");
            put(o, s, n);
            puts_(o, "<|end|>\n");
        }
        break;
    case RT_CHAT_ZEPHYR:
        puts_(o, "<|system|>\n");
        put(o, s, n);
        puts_(o, tk->eos);
        puts_(o, "\n");
        break;
    default:
        break;
    }
}

/* A user message; sys (may be NULL) is the system text for templates that
 * fold it into the first user turn. */
static void
seg_user(out *o, rt_chat_template t, const rt_chat_tokens *tk, const char *sys, size_t sys_len,
         const char *u, size_t n)
{
    switch (t) {
    case RT_CHAT_CHATML:
        puts_(o, "<|im_start|>user\n");
        put(o, u, n);
        puts_(o, "<|im_end|>\n");
        break;
    case RT_CHAT_LLAMA2:
        /* bos_token + '[INST] ' + content.strip() + ' [/INST]', where the
         * first content is '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + user:
         * the strip then only touches the user text's end. */
        puts_(o, tk->bos);
        puts_(o, "[INST] ");
        if (sys) {
            puts_(o, "<<SYS>>\n");
            put(o, sys, sys_len);
            puts_(o, "\n<</SYS>>\n\n");
            put_stripped(o, u, n, false, true);
        } else {
            put_trim(o, u, n);
        }
        puts_(o, " [/INST]");
        break;
    case RT_CHAT_LLAMA3:
        puts_(o, "<|start_header_id|>user<|end_header_id|>\n\n");
        put_trim(o, u, n);
        puts_(o, "<|eot_id|>");
        break;
    case RT_CHAT_PHI3:
        puts_(o, "<|user|>\n");
        put(o, u, n);
        puts_(o, "<|end|>\n");
        break;
    case RT_CHAT_ZEPHYR:
        puts_(o, "<|user|>\n");
        put(o, u, n);
        puts_(o, tk->eos);
        puts_(o, "\n");
        break;
    case RT_CHAT_GEMMA:
        /* first_user_prefix = system + '\n\n', not trimmed. */
        puts_(o, "<start_of_turn>user\n");
        if (sys) {
            put(o, sys, sys_len);
            puts_(o, "\n\n");
        }
        put_trim(o, u, n);
        puts_(o, "<end_of_turn>\n");
        break;
    default:
        break;
    }
}

/* The generation prompt: what precedes the assistant's content. */
static void
seg_assistant_open(out *o, rt_chat_template t)
{
    static const char *const open[_RT_CHAT_TEMPLATE_MAX] = {
        [RT_CHAT_CHATML] = "<|im_start|>assistant\n",
        [RT_CHAT_LLAMA2] = "",
        [RT_CHAT_LLAMA3] = "<|start_header_id|>assistant<|end_header_id|>\n\n",
        [RT_CHAT_PHI3] = "<|assistant|>\n",
        [RT_CHAT_ZEPHYR] = "<|assistant|>\n",
        [RT_CHAT_GEMMA] = "<start_of_turn>model\n",
    };
    puts_(o, open[t]);
}

/* The assistant's content as the template writes it. */
static void
seg_assistant_content(out *o, rt_chat_template t, const char *a, size_t n)
{
    switch (t) {
    case RT_CHAT_LLAMA2:
        puts_(o, " "); /* ' ' + content.strip() */
        put_trim(o, a, n);
        break;
    case RT_CHAT_LLAMA3:
    case RT_CHAT_GEMMA:
        put_trim(o, a, n);
        break;
    default:
        put(o, a, n);
        break;
    }
}

/* What follows the assistant's content: the end of its turn. */
static void
seg_assistant_close(out *o, rt_chat_template t, const rt_chat_tokens *tk)
{
    switch (t) {
    case RT_CHAT_CHATML:
        puts_(o, "<|im_end|>\n");
        break;
    case RT_CHAT_LLAMA2:
        puts_(o, " ");
        puts_(o, tk->eos);
        break;
    case RT_CHAT_LLAMA3:
        puts_(o, "<|eot_id|>");
        break;
    case RT_CHAT_PHI3:
        puts_(o, "<|end|>\n");
        break;
    case RT_CHAT_ZEPHYR:
        puts_(o, tk->eos);
        puts_(o, "\n");
        break;
    case RT_CHAT_GEMMA:
        puts_(o, "<end_of_turn>\n");
        break;
    default:
        break;
    }
}

static bool
folds_system(rt_chat_template t)
{
    return t == RT_CHAT_LLAMA2 || t == RT_CHAT_GEMMA;
}

static bool
args_ok(rt_chat_template t, const rt_chat_tokens *tk, char *buf, size_t cap, size_t *ret_len)
{
    return (unsigned)t < _RT_CHAT_TEMPLATE_MAX && tk && tk->bos && tk->eos && (buf || !cap) &&
           ret_len;
}

int
rt_chat_render(rt_chat_template t, const rt_chat_tokens *tk, const rt_chat_msg *msgs, size_t n,
               bool add_generation_prompt, char *buf, size_t cap, size_t *ret_len)
{
    if (!args_ok(t, tk, buf, cap, ret_len) || (!msgs && n))
        return -EINVAL;
    out o = { buf, cap, 0 };
    seg_start(&o, t, tk);
    size_t i = 0;
    const char *sys = NULL;
    size_t sys_len = 0;
    if (n && msgs[0].role == RT_CHAT_SYSTEM) {
        if (!msgs[0].text && msgs[0].len)
            return -EINVAL;
        sys = msgs[0].text ? msgs[0].text : "";
        sys_len = msgs[0].len;
        if (!folds_system(t))
            seg_system(&o, t, tk, sys, sys_len);
        i = 1;
    }
    for (size_t k = 0; i < n; i++, k++) {
        const rt_chat_msg *m = &msgs[i];
        /* The templates raise on anything but user/assistant alternating. */
        if (m->role != (k % 2 == 0 ? RT_CHAT_USER : RT_CHAT_ASSISTANT) || (!m->text && m->len))
            return -EINVAL;
        const char *text = m->text ? m->text : "";
        if (m->role == RT_CHAT_USER) {
            bool first = k == 0 && folds_system(t);
            seg_user(&o, t, tk, first ? sys : NULL, first ? sys_len : 0, text, m->len);
        } else {
            seg_assistant_open(&o, t);
            seg_assistant_content(&o, t, text, m->len);
            seg_assistant_close(&o, t, tk);
        }
    }
    if (add_generation_prompt)
        seg_assistant_open(&o, t);
    else if (t == RT_CHAT_PHI3)
        puts_(&o, tk->eos); /* {% else %}{{ eos_token }} */
    return finish(&o, ret_len);
}

int
rt_chat_render_turn(rt_chat_template t, const rt_chat_tokens *tk, const char *system,
                    size_t system_len, size_t turn, const char *user, size_t user_len, char *buf,
                    size_t cap, size_t *ret_len)
{
    if (!args_ok(t, tk, buf, cap, ret_len) || (!user && user_len) || (!system && system_len))
        return -EINVAL;
    if (turn == 0) {
        rt_chat_msg m[2] = { { RT_CHAT_SYSTEM, system, system_len },
                             { RT_CHAT_USER, user, user_len } };
        return rt_chat_render(t, tk, system ? m : m + 1, system ? 2 : 1, true, buf, cap, ret_len);
    }
    out o = { buf, cap, 0 };
    seg_assistant_close(&o, t, tk);
    seg_user(&o, t, tk, NULL, 0, user ? user : "", user_len);
    seg_assistant_open(&o, t);
    return finish(&o, ret_len);
}
