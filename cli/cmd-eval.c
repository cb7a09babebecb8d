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

typedef struct built {
    void *arena;
    rt_model *m;
} built;

static int
build(const cli_rt_file *f, rt_kv_type kv, built *b)
{
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kv_type = kv;
    rt_arena_report rep;
    int r = rt_model_plan(f->data, f->len, &o, &rep);
    if (r < 0)
        return r;
    size_t size = (rep.total + 2 * RT_ARENA_ALIGN) / RT_ARENA_ALIGN * RT_ARENA_ALIGN;
    b->arena = aligned_alloc(RT_ARENA_ALIGN, size);
    if (!b->arena)
        return -ENOMEM;
    return rt_model_init(f->data, f->len, &o, b->arena, size, &b->m, NULL);
}

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

static size_t
sample_tokens(rt_model *m, uint64_t seed, int32_t *t, size_t n)
{
    const rt_config *c = rt_model_config(m);
    rt_sampler s;
    if (rt_sampler_init(&s, c->vocab_size, 1.0f, 1.0f, seed, NULL, 0) < 0)
        return 0;
    size_t k = 0;
    while (k < n) {
        int32_t tok = (int32_t)c->bos_id;
        t[k++] = tok;
        for (uint32_t pos = 0; pos + 1 < c->seq_len && k < n; pos++) {
            float *l = rt_forward(m, tok, (int)pos);
            if (!l)
                return k;
            tok = rt_sampler_sample(&s, l);
            if ((uint32_t)tok == c->bos_id || (uint32_t)tok == c->eos_id)
                break;
            t[k++] = tok;
        }
    }
    return k;
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

int
cli_eval_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *ref_text = NULL, *text = NULL, *tokenizer = NULL;
    uint64_t n_gen = 2048, seed = 1;
    bool gen_seen = false;
    int kv = 0;
    const cli_opt opts[] = {
        { .lname = "ref",
          .type = CLI_OPT_STR,
          .dest = &ref_text,
          .metavar = "REFMODEL",
          .help = "reference model (ID, NAME or FILE), e.g. the F32 original" },
        { .lname = "text",
          .type = CLI_OPT_STR,
          .dest = &text,
          .metavar = "FILE",
          .help = "evaluate on this text (encoded with the model's vocabulary)" },
        { .lname = "generate",
          .type = CLI_OPT_U64,
          .dest = &n_gen,
          .metavar = "N",
          .help = "evaluate on N positions the reference samples (default 2048)",
          .min = 2,
          .max = 1u << 24,
          .seen = &gen_seen },
        { .lname = "tokenizer",
          .type = CLI_OPT_STR,
          .dest = &tokenizer,
          .metavar = "FILE",
          .help = "llama2.c tokenizer.bin for --text with llama2.c models" },
        { .lname = "seed",
          .type = CLI_OPT_U64,
          .dest = &seed,
          .metavar = "S",
          .help = "seed of --generate (default 1)",
          .max = UINT64_MAX },
        { .lname = "kv",
          .type = CLI_OPT_CHOICE,
          .dest = &kv,
          .metavar = "f32|int8",
          .help = "KV cache type of MODEL (default f32)",
          .choices = kv_choices },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_eval, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_eval, npos, 1, 1)) != CLI_GO)
        return r;
    if (!ref_text)
        return cli_fail(CLI_EXIT_USAGE, "eval needs a reference: nvx eval %s --ref REFMODEL",
                        argv[0]);
    if (text && gen_seen)
        return cli_fail(CLI_EXIT_USAGE, "choose one of --text and --generate");
    cli_rt_file mf = { 0 }, rf = { 0 };
    built mb = { 0 }, rb = { 0 };
    rt_tokenizer *tok = NULL;
    rt_eval *e = NULL;
    int32_t *toks = NULL;
    char *body = NULL;
    size_t n = 0;
    r = cli_rt_open(ctx, argv[0], false, &mf);
    if (r == CLI_GO)
        r = cli_rt_open(ctx, ref_text, false, &rf);
    if (r != CLI_GO)
        goto out;
    int err = build(&mf, kv == 1 ? RT_KV_Q8 : RT_KV_F32, &mb);
    const char *bad = argv[0];
    if (err >= 0) {
        bad = ref_text;
        err = build(&rf, RT_KV_F32, &rb);
    }
    if (err < 0) {
        r = err == -EBADMSG ? cli_fail(CLI_EXIT_CORRUPT,
                                       "%s is not a model this runtime can run: "
                                       "check the file",
                                       bad)
                            : cli_fail_errno(err, NULL, "cannot load %s", bad);
        goto out;
    }
    const rt_config *mc = rt_model_config(mb.m), *rc = rt_model_config(rb.m);
    if (mc->vocab_size != rc->vocab_size) {
        r = cli_fail(CLI_EXIT_USAGE,
                     "%s has %" PRIu32 " tokens and %s %" PRIu32
                     ": compare models that share a vocabulary",
                     argv[0], mc->vocab_size, ref_text, rc->vocab_size);
        goto out;
    }
    char source[64];
    if (text) {
        r = cli_rt_tokenizer(&mf, tokenizer, mc->vocab_size, &tok);
        if (r != CLI_GO && !tokenizer) {
            /* The reference may carry the vocabulary instead. */
            r = cli_rt_tokenizer(&rf, NULL, mc->vocab_size, &tok);
        }
        if (r != CLI_GO)
            goto out;
        size_t len = 0;
        err = read_text(text, &body, &len);
        if (err < 0) {
            r = cli_fail_errno(err, NULL, "cannot read %s", text);
            goto out;
        }
        size_t cap = rt_tokenizer_encode_bound(len);
        toks = malloc(cap * sizeof(*toks));
        err = toks ? rt_tokenizer_encode(tok, body, len, RT_TOK_ADD_BOS, toks, cap, &n) : -ENOMEM;
        if (err < 0) {
            r = cli_fail_errno(err, NULL, "cannot encode %s", text);
            goto out;
        }
        snprintf(source, sizeof(source), "text, %zu tokens", n);
    } else {
        toks = malloc((size_t)n_gen * sizeof(*toks));
        if (!toks) {
            r = cli_fail_errno(-ENOMEM, NULL, "cannot sample %" PRIu64 " positions", n_gen);
            goto out;
        }
        n = sample_tokens(rb.m, seed, toks, (size_t)n_gen);
        snprintf(source, sizeof(source), "sampled from the reference, T=1, seed %" PRIu64, seed);
    }
    err = rt_eval_new(mc->vocab_size, 2 * (uint64_t)n + 8, &e);
    if (err >= 0)
        err = rt_eval_run(mb.m, rb.m, toks, n, (int32_t)rc->bos_id, e);
    if (err < 0) {
        r = cli_fail_errno(err, NULL, "evaluation failed");
        goto out;
    }
    rt_eval_result ev;
    rt_eval_result_get(e, &ev);
    print_result(ctx, &ev, argv[0], ref_text, source);
    r = CLI_EXIT_OK;
out:
    rt_eval_free(e);
    free(toks);
    free(body);
    rt_tokenizer_free(tok);
    free(mb.arena);
    free(rb.arena);
    cli_rt_close(&mf);
    cli_rt_close(&rf);
    return r;
}
