/* SPDX-License-Identifier: MIT */
/*
 * nvx quantize IN -o OUT.gguf --type q4_k_m|q5_k_m|q6_k|q8_0|q4_0|f16|f32:
 * convert a llama2.c or GGUF model into a standard GGUF file (the K-quant
 * types are llama-quantize's mixtures, runtime/quantize.h), then say in
 * numbers what quality the conversion lost (KL divergence and top-1
 * agreement against the input over positions the input model samples
 * itself).
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
#include "runtime/quantize.h"
#include "runtime/sampler.h"

int cli_quantize_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_quantize = {
    .name = "quantize",
    .main = cli_quantize_main,
    .usage = "quantize IN -o OUT.gguf --type q4_k_m|q5_k_m|q6_k|q8_0|q4_0|f16|f32 [--awq|--search] "
             "[--tokenizer FILE] [--name STR] [--eval N] [--seed S]",
    .summary = "Write a quantized GGUF of a model and report the quality it lost",
};

static const char *const type_choices[] = { "q4_k_m", "q5_k_m", "q6_k", "q8_0",
                                            "q4_0",   "f16",    "f32",  NULL };
static const rt_type type_values[] = { RT_TYPE_Q4_K, RT_TYPE_Q5_K, RT_TYPE_Q6_K, RT_TYPE_Q8_0,
                                       RT_TYPE_Q4_0, RT_TYPE_F16,  RT_TYPE_F32 };

static bool
is_kquant(rt_type t)
{
    return t == RT_TYPE_Q4_K || t == RT_TYPE_Q5_K || t == RT_TYPE_Q6_K;
}

typedef struct mem {
    uint8_t *p;
    size_t len, cap;
} mem;

static int
mem_sink(void *ud, const void *p, size_t n)
{
    mem *m = ud;
    if (m->cap - m->len < n) {
        size_t cap = (m->len + n) * 2;
        uint8_t *q = realloc(m->p, cap);
        if (!q)
            return -ENOMEM;
        m->p = q;
        m->cap = cap;
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
    return 0;
}

/* Teacher-forces n sampled positions through both models. */
static int
measure(const cli_rt_file *in, const mem *out, uint64_t n, uint64_t seed, rt_eval_result *ret)
{
    cli_rt_model a = { 0 }, b = { 0 };
    int32_t *toks = malloc((size_t)n * sizeof(int32_t));
    rt_eval *e = NULL;
    int r = toks ? 0 : -ENOMEM;
    if (r >= 0)
        r = cli_rt_build(in->data, in->len, RT_KV_F32, &a);
    if (r >= 0)
        r = cli_rt_build(out->p, out->len, RT_KV_F32, &b);
    if (r >= 0 && rt_model_config(a.m)->vocab_size != rt_model_config(b.m)->vocab_size)
        r = -EBADMSG;
    if (r >= 0)
        r = rt_eval_new(rt_model_config(a.m)->vocab_size, 2 * n + 8, &e);
    if (r >= 0) {
        size_t k = cli_rt_sample(a.m, seed, toks, (size_t)n);
        r = rt_eval_run(b.m, a.m, toks, k, (int32_t)rt_model_config(a.m)->bos_id, e);
    }
    if (r >= 0)
        rt_eval_result_get(e, ret);
    rt_eval_free(e);
    free(toks);
    free(a.arena);
    free(b.arena);
    return r;
}

static void
print_result(cli_ctx *ctx, const char *out, size_t bytes, const rt_quant_report *rep,
             const char *type, const char *method, const rt_eval_result *ev, bool have_ev)
{
    if (ctx->json) {
        cli_json j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_key(&j, "file");
        cli_json_str(&j, out);
        cli_json_key(&j, "bytes");
        cli_json_u64(&j, bytes);
        cli_json_key(&j, "type");
        cli_json_str(&j, type);
        cli_json_key(&j, "method");
        cli_json_str(&j, method);
        cli_json_key(&j, "tensors");
        cli_json_u64(&j, rep->n_tensors);
        cli_json_key(&j, "quantized");
        cli_json_u64(&j, rep->n_quantized);
        cli_json_key(&j, "f16_fallback");
        cli_json_u64(&j, rep->n_f16);
        cli_json_key(&j, "tensor_types");
        cli_json_obj_begin(&j);
        for (int t = 0; t < _RT_TYPE_MAX; t++)
            if (rep->n_by_type[t]) {
                cli_json_key(&j, rt_type_name((uint32_t)t));
                cli_json_u64(&j, rep->n_by_type[t]);
            }
        cli_json_obj_end(&j);
        cli_json_key(&j, "weight_rmse");
        cli_json_double(&j, rep->weight_rmse);
        if (have_ev) {
            cli_json_key(&j, "positions");
            cli_json_u64(&j, ev->n);
            cli_json_key(&j, "kl_mean");
            cli_json_double(&j, ev->kl_mean);
            cli_json_key(&j, "kl_p99");
            cli_json_double(&j, ev->kl_p99);
            cli_json_key(&j, "top1");
            cli_json_double(&j, ev->top1);
            cli_json_key(&j, "ppl");
            cli_json_double(&j, ev->ppl);
            cli_json_key(&j, "ppl_ref");
            cli_json_double(&j, ev->ppl_ref);
        }
        cli_json_obj_end(&j);
        cli_json_finish(&j);
        return;
    }
    printf("wrote %s: %zu bytes, %" PRIu64 " tensors, %" PRIu64 " quantized for %s (%s):", out,
           bytes, rep->n_tensors, rep->n_quantized, type, method);
    for (int t = 0; t < _RT_TYPE_MAX; t++)
        if (rep->n_by_type[t])
            printf(" %s %" PRIu64, rt_type_name((uint32_t)t), rep->n_by_type[t]);
    if (rep->n_f16)
        printf(", %" PRIu64 " kept f16 (rows not a multiple of 32)", rep->n_f16);
    printf(", weight rmse %.3g\n", rep->weight_rmse);
    if (have_ev)
        printf("quality vs input over %" PRIu64 " positions the input samples: KL mean %.5f, "
               "p99 %.5f, top-1 agreement %.2f%%, perplexity %.3f (input %.3f)\n",
               ev->n, ev->kl_mean, ev->kl_p99, 100.0 * ev->top1, ev->ppl, ev->ppl_ref);
}

typedef struct q_args {
    const char *out, *tokenizer, *name;
    int type;
    bool awq, search, type_seen;
    uint64_t n_eval, seed;
} q_args;

enum {
    Q_N_OPTS = 9,
};

static void
q_opts(q_args *a, cli_opt o[Q_N_OPTS])
{
    int i = 0;
    o[i++] = (cli_opt){ .lname = "output",
                        .sname = 'o',
                        .type = CLI_OPT_STR,
                        .dest = &a->out,
                        .metavar = "OUT.gguf",
                        .help = "GGUF file to write (replaced atomically)" };
    o[i++] = (cli_opt){ .lname = "type",
                        .type = CLI_OPT_CHOICE,
                        .dest = &a->type,
                        .metavar = "q4_k_m|q5_k_m|q6_k|q8_0|q4_0|f16|f32",
                        .choices = type_choices,
                        .seen = &a->type_seen,
                        .help = "weight type of the matrices" };
    o[i++] = (cli_opt){ .lname = "awq",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->awq,
                        .help = "q4_0: activation-aware scales and error compensation, "
                                "calibrated on text the model samples itself" };
    o[i++] = (cli_opt){ .lname = "search",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->search,
                        .help = "q4_0: error-minimizing scale search per block, no calibration" };
    o[i++] = (cli_opt){ .lname = "tokenizer",
                        .type = CLI_OPT_STR,
                        .dest = &a->tokenizer,
                        .metavar = "FILE",
                        .help = "llama2.c tokenizer.bin to embed (llama2.c input)" };
    o[i++] = (cli_opt){ .lname = "name",
                        .type = CLI_OPT_STR,
                        .dest = &a->name,
                        .metavar = "STR",
                        .help = "general.name of the output" };
    o[i++] = (cli_opt){ .lname = "eval",
                        .type = CLI_OPT_U64,
                        .dest = &a->n_eval,
                        .metavar = "N",
                        .max = 1u << 24,
                        .help = "positions to measure the loss on, 0 = skip (default 512)" };
    o[i++] = (cli_opt){ .lname = "seed",
                        .type = CLI_OPT_U64,
                        .dest = &a->seed,
                        .metavar = "S",
                        .max = UINT64_MAX,
                        .help = "seed of the sampled calibration/eval text (default 1)" };
    o[i] = (cli_opt)CLI_OPT_END;
}

/* Checks the option combination; returns CLI_GO or a usage exit code. */
static int
q_check(const q_args *a, const char *in)
{
    if (!a->out || !*a->out)
        return cli_fail(CLI_EXIT_USAGE,
                        "quantize needs an output: nvx quantize %s -o OUT.gguf --type q4_k_m", in);
    if (!a->type_seen)
        return cli_fail(
            CLI_EXIT_USAGE,
            "quantize needs a type: --type q4_k_m, q5_k_m, q6_k, q8_0, q4_0, f16 or f32");
    if ((a->awq || a->search) && type_values[a->type] != RT_TYPE_Q4_0)
        return cli_fail(CLI_EXIT_USAGE, "--awq and --search apply to --type q4_0 only");
    if (a->awq && a->search)
        return cli_fail(CLI_EXIT_USAGE, "choose one of --awq and --search");
    return CLI_GO;
}

/* Converts in and writes a->out; the file's bytes are also left in *buf for
 * the quality measurement. Returns CLI_GO or an exit code. */
static int
convert(const q_args *a, const cli_rt_file *in, mem *buf, rt_quant_report *rep)
{
    rt_tokenizer *tok = NULL;
    rt_quant_result *res = NULL;
    bool gguf_in = rt_gguf_is_gguf(in->data, in->len);
    int r = CLI_GO;
    if (a->tokenizer)
        r = cli_rt_tokenizer(in, a->tokenizer, 0, &tok);
    else if (!gguf_in)
        cli_warn("%s is a llama2.c checkpoint and no --tokenizer was given: the GGUF will have "
                 "no vocabulary (nvx run will need --tokenizer)",
                 in->what);
    if (r != CLI_GO)
        return r;
    rt_quant_opts qo = { .type = type_values[a->type],
                         .method = a->awq      ? RT_QUANT_AWQ
                                   : a->search ? RT_QUANT_SEARCH
                                               : RT_QUANT_RTN,
                         .tok = gguf_in ? NULL : tok,
                         .name = a->name,
                         .seed = a->seed };
    int e = rt_quant_model(in->data, in->len, &qo, &res, rep);
    if (e == -EBADMSG)
        r = cli_fail(CLI_EXIT_CORRUPT,
                     "%s cannot be converted: give a llama2.c checkpoint or a GGUF of an "
                     "architecture nvx runs (llama, qwen2, phi3) with F32, F16, Q8_0, Q4_0 or "
                     "K-quant tensors",
                     in->what);
    else if (e == -ENOTSUP)
        r = cli_fail(CLI_EXIT_USAGE, "--awq calibrates llama models only: use --search for %s",
                     in->what);
    else if (e < 0)
        r = cli_fail_errno(e, NULL, "cannot convert %s", in->what);
    if (r == CLI_GO && rep->requantized)
        cli_warn("%s is already quantized: its tensors were decoded and quantized again, so "
                 "the output carries both roundings (quantize the F16/F32 original if you have it)",
                 in->what);
    if (r == CLI_GO) {
        e = rt_gguf_writer_write(rt_quant_result_writer(res), mem_sink, buf);
        if (e >= 0)
            e = rt_gguf_writer_write_file(rt_quant_result_writer(res), a->out);
        if (e < 0)
            r = cli_fail_errno(e, NULL, "cannot write %s", a->out);
    }
    rt_quant_result_free(res);
    rt_tokenizer_free(tok);
    return r;
}

int
cli_quantize_main(cli_ctx *ctx, int argc, char **argv)
{
    q_args a = { .type = -1, .n_eval = 512, .seed = 1 };
    cli_opt opts[Q_N_OPTS];
    q_opts(&a, opts);
    int npos, r = cli_parse(ctx, &cli_cmd_quantize, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_quantize, npos, 1, 1)) != CLI_GO)
        return r;
    if ((r = q_check(&a, argv[0])) != CLI_GO)
        return r;
    cli_rt_file in;
    mem buf = { 0 };
    rt_quant_report rep;
    r = cli_rt_open(ctx, argv[0], 0, &in);
    if (r == CLI_GO)
        r = convert(&a, &in, &buf, &rep);
    if (r == CLI_GO) {
        rt_eval_result ev = { 0 };
        bool have_ev = false;
        if (a.n_eval > 0) {
            int e = measure(&in, &buf, a.n_eval, a.seed + 1, &ev);
            if (e < 0)
                cli_warn("wrote %s, but could not measure its quality: %s", a.out, strerror(-e));
            have_ev = e >= 0;
        }
        print_result(ctx, a.out, buf.len, &rep, type_choices[a.type],
                     a.awq                            ? "awq"
                     : a.search                       ? "search"
                     : is_kquant(type_values[a.type]) ? "searched k-quant scales"
                                                      : "round to nearest",
                     &ev, have_ev);
        r = CLI_EXIT_OK;
    }
    free(buf.p);
    cli_rt_close(&in);
    return r;
}
