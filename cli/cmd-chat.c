/* SPDX-License-Identifier: MIT */
/*
 * nvx chat ID|NAME|FILE: an interactive chat with the bundled runtime.
 * Lines come from stdin (a terminal or a pipe, so sessions are scriptable);
 * each non-empty line is a user turn, its reply streams to stdout followed
 * by a newline. "/bye" or end of input ends the session. The chat template
 * comes from the model's tokenizer.chat_template (runtime/chat.h) or
 * --template; the KV cache is kept across turns (runtime/chat-session.h),
 * so a turn costs only its own tokens. A turn that would overflow the
 * context ends the session with a clear message (no turn is dropped:
 * dropping would mean re-processing the whole remaining history, and the
 * user would silently lose context). Store models are verified before they
 * run, as for nvx run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cmd-run.h"
#include "cli/opt.h"
#include "cli/run-check.h"
#include "runtime/chat-session.h"
#include "runtime/gguf.h"

enum {
    CHAT_LINE_MAX = 64 * 1024, /* bytes in one input line */
    CHAT_N_OPTS = 8,
};

int cli_chat_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_chat = {
    .name = "chat",
    .main = cli_chat_main,
    .usage = "chat ID|NAME|FILE [--template NAME] [--system TEXT] [-n N] [-t T] [--seed S] "
             "[--stats] [--require-trusted]",
    .summary = "Chat with a verified model, one line per turn, from stdin",
};

static const char *const template_choices[] = { "chatml", "llama2", "llama3", "phi3",
                                                "zephyr", "gemma",  NULL };

typedef struct chat_args {
    const char *system;
    uint64_t n_new, seed;
    double temp;
    int tmpl;
    bool n_seen, seed_seen, tmpl_seen, stats, require_trusted;
} chat_args;

static void
chat_opts(chat_args *a, cli_opt o[CHAT_N_OPTS])
{
    int i = 0;
    o[i++] = (cli_opt){ .lname = "template",
                        .type = CLI_OPT_CHOICE,
                        .dest = &a->tmpl,
                        .metavar = "NAME",
                        .choices = template_choices,
                        .seen = &a->tmpl_seen,
                        .help = "chat template: chatml, llama2, llama3, phi3, zephyr, gemma "
                                "(default: detected from the model)" };
    o[i++] = (cli_opt){ .lname = "system",
                        .type = CLI_OPT_STR,
                        .dest = &a->system,
                        .metavar = "TEXT",
                        .help = "system prompt" };
    o[i++] = (cli_opt){ .lname = "tokens",
                        .sname = 'n',
                        .type = CLI_OPT_U64,
                        .dest = &a->n_new,
                        .metavar = "N",
                        .max = UINT32_MAX,
                        .seen = &a->n_seen,
                        .help = "at most N tokens per reply (default: until end of turn)" };
    o[i++] = (cli_opt){ .lname = "temperature",
                        .sname = 't',
                        .type = CLI_OPT_DOUBLE,
                        .dest = &a->temp,
                        .metavar = "T",
                        .dmax = 100.0,
                        .help = "sampling temperature, 0 = greedy (default 0.7)" };
    o[i++] = (cli_opt){ .lname = "seed",
                        .type = CLI_OPT_U64,
                        .dest = &a->seed,
                        .metavar = "S",
                        .max = UINT64_MAX,
                        .seen = &a->seed_seen,
                        .help = "random seed (default: from the clock)" };
    o[i++] = (cli_opt){ .lname = "stats",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->stats,
                        .help = "per turn, report the tokens fed and generated on stderr" };
    o[i++] = (cli_opt){ .lname = "require-trusted",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->require_trusted,
                        .help = "refuse a model without a signature from a trusted key "
                                "(also NVX_REQUIRE_TRUSTED=1)" };
    o[i] = (cli_opt)CLI_OPT_END;
}

/* The template: --template, else detected from the file's metadata. */
static int
pick_template(const chat_args *a, const cli_rt_file *f, rt_chat_template *ret)
{
    if (a->tmpl_seen)
        return rt_chat_template_from_name(template_choices[a->tmpl], ret) < 0 ? CLI_EXIT_USAGE
                                                                              : CLI_GO;
    rt_gguf g;
    const char *s = NULL;
    uint64_t n = 0;
    if (rt_gguf_parse(f->data, f->len, f->len, &g, NULL) < 0 ||
        rt_gguf_get_str(&g, "tokenizer.chat_template", &s, &n) < 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "%s has no tokenizer.chat_template: pass --template "
                        "chatml|llama2|llama3|phi3|zephyr|gemma",
                        f->what);
    if (rt_chat_template_detect(s, n, ret) < 0) {
        /* Name what was found: its start, on one line (cli_fail escapes it). */
        int show = 0;
        while ((uint64_t)show < n && show < 60 && s[show] != '\n')
            show++;
        return cli_fail(CLI_EXIT_FAIL,
                        "%s: unknown chat template \"%.*s%s\" (not ChatML, Llama 2, Llama 3, "
                        "Phi-3, Zephyr or Gemma): pass --template NAME",
                        f->what, show, s, (uint64_t)show < n ? "..." : "");
    }
    return CLI_GO;
}

static int
emit(void *userdata, int32_t token, const char *piece, size_t len)
{
    (void)token;
    (void)userdata;
    /* Model output is untrusted bytes: drop a lone control byte (other
     * than newline and tab) rather than send terminal escapes. */
    if (len == 1 && ((uint8_t)piece[0] < 0x20 || piece[0] == 0x7f) && piece[0] != '\n' &&
        piece[0] != '\t')
        len = 0;
    if (len && fwrite(piece, 1, len, stdout) != len)
        return -EPIPE;
    return fflush(stdout) != 0 ? -EPIPE : 0;
}

/* Reads one line into buf (without its newline). Returns 1 and *ret_len,
 * 0 at end of input, -EMSGSIZE for a line over CHAT_LINE_MAX, -EIO. */
static int
read_line(char *buf, size_t *ret_len)
{
    if (!fgets(buf, CHAT_LINE_MAX + 2, stdin))
        return ferror(stdin) ? -EIO : 0;
    size_t n = strlen(buf); /* a NUL inside the line cuts it: fine */
    if (n && buf[n - 1] == '\n')
        n--;
    else if (n > CHAT_LINE_MAX)
        return -EMSGSIZE;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *ret_len = n;
    return 1;
}

/* The read-eval-print loop; returns an exit code. */
static int
converse(const chat_args *a, rt_chat_session *cs, rt_sampler *smp)
{
    char *line = malloc(CHAT_LINE_MAX + 2);
    if (!line)
        return cli_fail_errno(-ENOMEM, NULL, "cannot start the chat");
    bool tty = isatty(STDIN_FILENO);
    int r = CLI_EXIT_OK;
    for (uint32_t turn = 1;; turn++) {
        if (tty) {
            fputs("> ", stderr);
            fflush(stderr);
        }
        size_t len = 0;
        int e = read_line(line, &len);
        if (e == 0 || (e > 0 && strcmp(line, "/bye") == 0))
            break;
        if (e < 0) {
            r = e == -EMSGSIZE
                    ? cli_fail(CLI_EXIT_USAGE, "a line is longer than %d bytes: the session ends",
                               CHAT_LINE_MAX)
                    : cli_fail_errno(e, NULL, "cannot read stdin");
            break;
        }
        if (len == 0) {
            turn--;
            continue;
        }
        rt_chat_turn_stats st = { 0 };
        e = rt_chat_session_turn(cs, smp, line, len, a->n_seen ? (int64_t)a->n_new : -1, emit, NULL,
                                 &st);
        if (e == -EMSGSIZE) {
            r = cli_fail(CLI_EXIT_FAIL,
                         "turn %" PRIu32 " needs %" PRIu32 " tokens but only %" PRIu32
                         " of the context's %" PRIu32 " are left: the session ends",
                         turn, st.n_prompt, rt_chat_session_ctx(cs) - rt_chat_session_pos(cs),
                         rt_chat_session_ctx(cs));
            break;
        }
        if (e == -EPIPE) {
            r = CLI_EXIT_FAIL; /* stdout went away */
            break;
        }
        if (e < 0) {
            r = cli_fail_errno(e, NULL, "generation failed");
            break;
        }
        fputc('\n', stdout);
        fflush(stdout);
        if (a->stats)
            fprintf(stderr,
                    "nvx: turn %" PRIu32 ": %" PRIu32 " prompt tokens at position %" PRIu32
                    ", %" PRIu32 " generated%s\n",
                    turn, st.n_prompt, st.pos_start, st.n_generated,
                    st.context_full ? ", context full" : "");
        if (st.context_full) {
            r = cli_fail(CLI_EXIT_FAIL,
                         "the reply filled the context (%" PRIu32 " tokens): the session ends",
                         rt_chat_session_ctx(cs));
            break;
        }
    }
    free(line);
    return r;
}

int
cli_chat_main(cli_ctx *ctx, int argc, char **argv)
{
    chat_args a = { .temp = 0.7 };
    cli_opt opts[CHAT_N_OPTS];
    chat_opts(&a, opts);
    int npos, r = cli_parse(ctx, &cli_cmd_chat, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_chat, npos, 1, 1)) != CLI_GO)
        return r;
    cli_rt_file f;
    cli_rt_model cm = { 0 };
    rt_tokenizer *tok = NULL;
    rt_chat_session *cs = NULL;
    void *scratch = NULL;
    rt_chat_template t = RT_CHAT_CHATML;
    r = cli_rt_open(ctx, argv[0], a.require_trusted ? CLI_RUN_REQUIRE_TRUSTED : 0, &f);
    if (r == CLI_GO && !rt_gguf_is_gguf(f.data, f.len))
        r = cli_fail(CLI_EXIT_USAGE,
                     "%s is not a GGUF file: chat needs a model with its "
                     "vocabulary",
                     argv[0]);
    if (r == CLI_GO)
        r = pick_template(&a, &f, &t);
    if (r == CLI_GO) {
        int e = cli_rt_build(f.data, f.len, RT_KV_F32, &cm);
        if (e < 0)
            r = cli_fail_errno(e, NULL, "cannot load %s", argv[0]);
    }
    if (r == CLI_GO)
        r = cli_rt_tokenizer(&f, NULL, rt_model_config(cm.m)->vocab_size, &tok);
    const rt_config *cfg = cm.m ? rt_model_config(cm.m) : NULL;
    if (r == CLI_GO && rt_tokenizer_n_vocab(tok) > cfg->vocab_size)
        r = cli_fail(CLI_EXIT_CORRUPT, "%s: the vocabulary is larger than the model's", argv[0]);
    rt_sampler smp;
    if (r == CLI_GO) {
        uint64_t seed = a.seed_seen ? a.seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        size_t sl = rt_sampler_scratch_size(cfg->vocab_size);
        scratch = malloc(sl);
        if (!scratch ||
            rt_sampler_init(&smp, cfg->vocab_size, (float)a.temp, 0.9f, seed, scratch, sl) < 0)
            r = cli_fail(CLI_EXIT_USAGE, "bad sampling parameters: use -t >= 0");
    }
    if (r == CLI_GO) {
        int e = rt_chat_session_new(cm.m, tok, t, a.system, a.system ? strlen(a.system) : 0, &cs);
        if (e < 0)
            r = cli_fail_errno(e, NULL, "cannot start the chat");
    }
    if (r == CLI_GO && a.stats)
        fprintf(stderr, "nvx: template %s, context %" PRIu32 " tokens\n", rt_chat_template_name(t),
                cfg->seq_len);
    if (r == CLI_GO)
        r = converse(&a, cs, &smp);
    rt_chat_session_free(cs);
    free(scratch);
    rt_tokenizer_free(tok);
    free(cm.arena);
    cli_rt_close(&f);
    return r;
}
