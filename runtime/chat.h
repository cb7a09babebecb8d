/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_CHAT_H
#define NVX_RUNTIME_CHAT_H
/*
 * Chat templates without Jinja: a model's tokenizer.chat_template (a Jinja
 * program) is recognised by distinctive markers as one of a few well-known
 * templates, each rendered here by hand-written code that produces exactly
 * the string the Jinja template produces (Hugging Face's settings:
 * trim_blocks and lstrip_blocks on). No I/O, no allocation.
 *
 * Conversations are an optional system message first, then user and
 * assistant messages alternating, starting with a user message.
 *
 *   name    marker(s) in the Jinja text             template followed
 *   chatml  <|im_start|>                            ChatML (Qwen, SmolLM, ...)
 *   llama3  <|start_header_id|>                     Meta Llama 3 Instruct
 *   gemma   <start_of_turn>                         Gemma 3 (system folded into
 *                                                   the first user turn)
 *   phi3    <|user|> and <|end|>                    Phi-3.5-mini-instruct
 *   zephyr  <|user|> (without <|end|>)              Zephyr (HuggingFaceH4)
 *   llama2  [INST]                                  Llama 2 Chat (<<SYS>>)
 *
 * Templates that call bos_token (llama2, llama3, gemma) render the BOS
 * piece as text; the others leave BOS to the vocabulary's add_bos_token,
 * as llama.cpp does. Phi-3-mini's first template drops system messages and
 * writes {{ bos_token }}; Phi-3.5's (followed here) keeps the system turn.
 */
#include <stdbool.h>
#include <stddef.h>

typedef enum rt_chat_template {
    RT_CHAT_CHATML = 0,
    RT_CHAT_LLAMA2 = 1,
    RT_CHAT_LLAMA3 = 2,
    RT_CHAT_PHI3 = 3,
    RT_CHAT_ZEPHYR = 4,
    RT_CHAT_GEMMA = 5,
    _RT_CHAT_TEMPLATE_MAX,
} rt_chat_template;

typedef enum rt_chat_role {
    RT_CHAT_SYSTEM = 0,
    RT_CHAT_USER = 1,
    RT_CHAT_ASSISTANT = 2,
    _RT_CHAT_ROLE_MAX,
} rt_chat_role;

/* One message; text[0..len) is borrowed, any bytes. */
typedef struct rt_chat_msg {
    rt_chat_role role;
    const char *text;
    size_t len;
} rt_chat_msg;

/* The BOS and EOS pieces the template writes as bos_token / eos_token
 * (NUL-terminated, borrowed; e.g. "<s>", "</s>"). */
typedef struct rt_chat_tokens {
    const char *bos;
    const char *eos;
} rt_chat_tokens;

enum {
    RT_CHAT_MAX_STOP = 4, /* stop strings of one template */
};

/* "chatml", "llama2", ... or "?". */
const char *rt_chat_template_name(rt_chat_template t);

/* The template called name (as rt_chat_template_name gives it).
 * Returns 0 and *ret, or -ENOENT. */
int rt_chat_template_from_name(const char *name, rt_chat_template *ret);

/* Recognises the Jinja text jinja[0..len) (outside bytes) by the markers of
 * the table above. Returns 0 and *ret, or -ENOTSUP when it is none of them. */
int rt_chat_template_detect(const char *jinja, size_t len, rt_chat_template *ret);

/* Whether the template writes bos_token itself (then the caller must not
 * add a BOS token in front of the rendered text). */
bool rt_chat_template_writes_bos(rt_chat_template t);

/* The end-of-turn strings of t, in order (besides the vocabulary's EOS,
 * which always stops a reply): *ret points to a static array of n strings;
 * returns n (<= RT_CHAT_MAX_STOP). eos_token is not among them. */
size_t rt_chat_template_stops(rt_chat_template t, const char *const **ret);

/* Renders msgs[0..n) as the Jinja template does, followed by the assistant
 * header when add_generation_prompt. Writes the text and a NUL to
 * buf[0..cap) when it fits. *ret_len is always written with the text's
 * length (without NUL), so a call with cap 0 sizes the buffer.
 * Returns 0; -EMSGSIZE when cap <= *ret_len; -EINVAL for a bad template,
 * role order or argument. */
int rt_chat_render(rt_chat_template t, const rt_chat_tokens *tk, const rt_chat_msg *msgs, size_t n,
                   bool add_generation_prompt, char *buf, size_t cap, size_t *ret_len);

/* The text to feed for user turn `turn` (0-based) of a conversation whose
 * earlier turns are already in the model's KV cache: for turn 0 the whole
 * render of [system,] user with the generation prompt; for later turns the
 * close of the previous assistant reply (whose content the model generated
 * itself), then the user message and the generation prompt. So that
 * turn 0 + reply 0 + turn 1 + ... equals rt_chat_render of the whole
 * conversation, with each reply spelled as the template renders its
 * content (llama2 puts a space before it). system may be NULL. Buffer
 * and returns as rt_chat_render. */
int rt_chat_render_turn(rt_chat_template t, const rt_chat_tokens *tk, const char *system,
                        size_t system_len, size_t turn, const char *user, size_t user_len,
                        char *buf, size_t cap, size_t *ret_len);

#endif
