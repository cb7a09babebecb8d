/* SPDX-License-Identifier: MIT */
/*
 * nvx eval MODEL --ref REFMODEL [--text FILE | --generate N]: how far a
 * model's next-token distributions are from a reference model's on the same
 * tokens (teacher forcing): mean and 99th-percentile KL divergence, top-1
 * agreement, perplexity of both. The tokens are a text file encoded with the
 * model's vocabulary, or N positions the reference samples at temperature 1.
 */
#define _ISOC11_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-run.h"
#include "cli/json.h"
#include "runtime/eval.h"
#include "runtime/gguf.h"
#include "runtime/model.h"
#include "runtime/sampler.h"

enum {
    EVAL_TEXT_MAX = 64 << 20, /* bytes of --text read at most */
};

int cli_eval_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_eval = {
    .name = "eval",
    .main = cli_eval_main,
    .usage = "eval MODEL --ref REFMODEL [--text FILE | --generate N] [--tokenizer FILE] "
             "[--seed S] [--kv int8]",
    .summary = "Measure KL divergence, top-1 agreement and perplexity against a reference",
};

static int
read_text(const char *path, char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 16, len = 0;
    char *p = malloc(cap);
    int r = p ? 0 : -ENOMEM;
    while (r == 0) {
        if (len == cap) {
            if (cap >= EVAL_TEXT_MAX) {
                r = -EFBIG;
                break;
            }
            char *q = realloc(p, cap *= 2);
            if (!q) {
                r = -ENOMEM;
                break;
            }
            p = q;
        }
        size_t k = fread(p + len, 1, cap - len, f);
        if (k == 0) {
            r = ferror(f) ? -EIO : 1;
            break;
        }
        len += k;
    }
    fclose(f);
    if (r < 0) {
        free(p);
        return r;
    }
    *ret = p;
    *ret_len = len;
    return 0;
}

static void
print_result(cli_ctx *ctx, const rt_eval_result *ev, const char *model, const char *ref,
             const char *source)
{
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_key(&j, "model");
        cli_json_str(&j, model);
        cli_json_key(&j, "ref");
        cli_json_str(&j, ref);
        cli_json_key(&j, "tokens");
        cli_json_str(&j, source);
        cli_json_key(&j, "positions");
        cli_json_u64(&j, ev->n);
        cli_json_key(&j, "kl_mean");
        cli_json_double(&j, ev->kl_mean);
        cli_json_key(&j, "kl_p99");
        cli_json_double(&j, ev->kl_p99);
        cli_json_key(&j, "kl_max");
        cli_json_double(&j, ev->kl_max);
        cli_json_key(&j, "top1");
        cli_json_double(&j, ev->top1);
        cli_json_key(&j, "ppl");
        cli_json_double(&j, ev->ppl);
        cli_json_key(&j, "ppl_ref");
        cli_json_double(&j, ev->ppl_ref);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
        return;
    }
    printf("positions       %" PRIu64 " (%s)\n", ev->n, source);
    printf("kl_mean         %.6f\n", ev->kl_mean);
    printf("kl_p99          %.6f\n", ev->kl_p99);
    printf("kl_max          %.6f\n", ev->kl_max);
    printf("top1_agreement  %.2f%%\n", 100.0 * ev->top1);
    printf("perplexity      %.4f (ref %.4f, over %" PRIu64 " next tokens)\n", ev->ppl, ev->ppl_ref,
           ev->n_target);
}

static const char *const kv_choices[] = { "f32", "int8", NULL };

typedef struct e_args {
    const char *ref, *text, *tokenizer;
    uint64_t n_gen, seed;
    bool gen_seen;
    int kv;
} e_args;

enum {
    E_N_OPTS = 7,
};

static void
e_opts(e_args *a, cli_opt o[E_N_OPTS])
{
    int i = 0;
    o[i++] = (cli_opt){ .lname = "ref",
                        .type = CLI_OPT_STR,
                        .dest = &a->ref,
                        .metavar = "REFMODEL",
                        .help = "reference model (ID, NAME or FILE), e.g. the F32 original" };
    o[i++] = (cli_opt){ .lname = "text",
                        .type = CLI_OPT_STR,
                        .dest = &a->text,
                        .metavar = "FILE",
                        .help = "evaluate on this text (encoded with the model's vocabulary)" };
    o[i++] = (cli_opt){ .lname = "generate",
                        .type = CLI_OPT_U64,
                        .dest = &a->n_gen,
                        .metavar = "N",
                        .min = 2,
                        .max = 1u << 24,
                        .seen = &a->gen_seen,
                        .help = "evaluate on N positions the reference samples (default 2048)" };
    o[i++] = (cli_opt){ .lname = "tokenizer",
                        .type = CLI_OPT_STR,
                        .dest = &a->tokenizer,
                        .metavar = "FILE",
                        .help = "llama2.c tokenizer.bin for --text with llama2.c models" };
    o[i++] = (cli_opt){ .lname = "seed",
                        .type = CLI_OPT_U64,
                        .dest = &a->seed,
                        .metavar = "S",
                        .max = UINT64_MAX,
                        .help = "seed of --generate (default 1)" };
    o[i++] = (cli_opt){ .lname = "kv",
                        .type = CLI_OPT_CHOICE,
                        .dest = &a->kv,
                        .metavar = "f32|int8",
                        .choices = kv_choices,
                        .help = "KV cache type of MODEL (default f32)" };
    o[i] = (cli_opt)CLI_OPT_END;
}

/* Opens and builds MODEL and REF. Returns CLI_GO or an exit code. */
static int
open_both(cli_ctx *ctx, const e_args *a, const char *model, cli_rt_file *mf, cli_rt_file *rf,
          cli_rt_model *mb, cli_rt_model *rb)
{
    int r = cli_rt_open(ctx, model, 0, mf);
    if (r == CLI_GO)
        r = cli_rt_open(ctx, a->ref, 0, rf);
    if (r != CLI_GO)
        return r;
    int e = cli_rt_build(mf->data, mf->len, a->kv == 1 ? RT_KV_Q8 : RT_KV_F32, mb);
    const char *bad = model;
    if (e >= 0) {
        bad = a->ref;
        e = cli_rt_build(rf->data, rf->len, RT_KV_F32, rb);
    }
    if (e == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT, "%s is not a model this runtime can run: check the file",
                        bad);
    if (e < 0)
        return cli_fail_errno(e, NULL, "cannot load %s", bad);
    uint32_t vm = rt_model_config(mb->m)->vocab_size, vr = rt_model_config(rb->m)->vocab_size;
    if (vm != vr)
        return cli_fail(CLI_EXIT_USAGE,
                        "%s has %" PRIu32 " tokens and %s %" PRIu32
                        ": compare models that share a vocabulary",
                        model, vm, a->ref, vr);
    return CLI_GO;
}

/* The evaluation tokens: the encoded --text, or positions REF samples.
 * *ret_toks is malloc'd. Returns CLI_GO or an exit code. */
static int
eval_tokens(const e_args *a, const cli_rt_file *mf, const cli_rt_file *rf, const cli_rt_model *rb,
            int32_t **ret_toks, size_t *ret_n, char *source, size_t source_cap)
{
    uint32_t vocab = rt_model_config(rb->m)->vocab_size;
    if (!a->text) {
        *ret_toks = malloc((size_t)a->n_gen * sizeof(int32_t));
        if (!*ret_toks)
            return cli_fail_errno(-ENOMEM, NULL, "cannot sample %" PRIu64 " positions", a->n_gen);
        *ret_n = cli_rt_sample(rb->m, a->seed, *ret_toks, (size_t)a->n_gen);
        snprintf(source, source_cap, "sampled from the reference, T=1, seed %" PRIu64, a->seed);
        return CLI_GO;
    }
    rt_tokenizer *tok = NULL;
    /* A llama2.c MODEL has no vocabulary; a GGUF reference may carry it. */
    const cli_rt_file *vf =
        !a->tokenizer && !rt_gguf_is_gguf(mf->data, mf->len) && rt_gguf_is_gguf(rf->data, rf->len)
            ? rf
            : mf;
    int r = cli_rt_tokenizer(vf, a->tokenizer, vocab, &tok);
    if (r != CLI_GO)
        return r;
    char *body = NULL;
    size_t len = 0;
    int e = read_text(a->text, &body, &len);
    if (e < 0) {
        rt_tokenizer_free(tok);
        return cli_fail_errno(e, NULL, "cannot read %s", a->text);
    }
    size_t cap = rt_tokenizer_encode_bound(len);
    *ret_toks = malloc(cap * sizeof(int32_t));
    e = *ret_toks ? rt_tokenizer_encode(tok, body, len, RT_TOK_ADD_BOS, *ret_toks, cap, ret_n)
                  : -ENOMEM;
    free(body);
    rt_tokenizer_free(tok);
    if (e < 0)
        return cli_fail_errno(e, NULL, "cannot encode %s", a->text);
    /* BOS plus at least one token: else there is no next token to score
     * and the perplexity would be a meaningless 0. */
    if (*ret_n < 2)
        return cli_fail(CLI_EXIT_USAGE, "%s holds no text to score: give a longer text", a->text);
    snprintf(source, source_cap, "text, %zu tokens", *ret_n);
    return CLI_GO;
}

int
cli_eval_main(cli_ctx *ctx, int argc, char **argv)
{
    e_args a = { .n_gen = 2048, .seed = 1 };
    cli_opt opts[E_N_OPTS];
    e_opts(&a, opts);
    int npos, r = cli_parse(ctx, &cli_cmd_eval, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_eval, npos, 1, 1)) != CLI_GO)
        return r;
    if (!a.ref)
        return cli_fail(CLI_EXIT_USAGE, "eval needs a reference: nvx eval %s --ref REFMODEL",
                        argv[0]);
    if (a.text && a.gen_seen)
        return cli_fail(CLI_EXIT_USAGE, "choose one of --text and --generate");
    cli_rt_file mf = { 0 }, rf = { 0 };
    cli_rt_model mb = { 0 }, rb = { 0 };
    rt_eval *e = NULL;
    int32_t *toks = NULL;
    size_t n = 0;
    char source[96];
    r = open_both(ctx, &a, argv[0], &mf, &rf, &mb, &rb);
    if (r == CLI_GO)
        r = eval_tokens(&a, &mf, &rf, &rb, &toks, &n, source, sizeof(source));
    if (r == CLI_GO) {
        const rt_config *rc = rt_model_config(rb.m);
        int err = rt_eval_new(rc->vocab_size, 2 * (uint64_t)n + 8, &e);
        if (err >= 0)
            err = rt_eval_run(mb.m, rb.m, toks, n, (int32_t)rc->bos_id, e);
        if (err < 0) {
            r = cli_fail_errno(err, NULL, "evaluation failed");
        } else {
            rt_eval_result ev;
            rt_eval_result_get(e, &ev);
            print_result(ctx, &ev, argv[0], a.ref, source);
            r = CLI_EXIT_OK;
        }
    }
    rt_eval_free(e);
    free(toks);
    free(mb.arena);
    free(rb.arena);
    cli_rt_close(&mf);
    cli_rt_close(&rf);
    return r;
}
