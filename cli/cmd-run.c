/* SPDX-License-Identifier: MIT */
/*
 * nvx run ID|NAME|FILE -p PROMPT: stream text from a model with the bundled
 * runtime. A model from the store must be complete and is re-hashed before
 * each run, and with --require-trusted (or NVX_REQUIRE_TRUSTED=1) it must
 * carry a trusted signature (cli/run-check.h). The data file
 * is mapped, never copied (mmap mode), unless --arena BYTES asks for the
 * one-block arena mode, where weights are copied (or requantized) into a
 * block of exactly that size.
 */
#define _DEFAULT_SOURCE /* MAP_* on some libcs */
#include "cli/cmd-run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/run-check.h"
#include "cli/store.h"
#include "libcas/hash.h"
#include "libcas/store.h"
#include "runtime/generate.h"
#include "runtime/gguf.h"
#include "runtime/model-file.h"
#include "runtime/model.h"
#include "runtime/pool.h"

enum {
    RUN_WHY_MAX = 200, /* bytes of the runtime's reason for refusing a file */
};

int cli_run_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_run = {
    .name = "run",
    .main = cli_run_main,
    .usage =
        "run ID|NAME|FILE -p PROMPT [-n N] [-t T] [--top-p P] [--seed S] [--kv int8] "
        "[--threads N] [--tokenizer FILE] [--arena BYTES] [--requant q8_0|q4_0] [--arena-report] "
        "[--stats] [--require-trusted]",
    .summary = "Stream text from a verified model with the bundled runtime",
};

/* ---- shared helpers (cmd-run.h) ---- */

static bool
is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int
map_file(cli_rt_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (st.st_size == 0)
        r = -EBADMSG;
    else if ((uint64_t)st.st_size > SIZE_MAX)
        r = -EFBIG;
    if (r == 0) {
        /* runtime/model-file.h says why the pages are prefaulted. */
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | RT_MAP_PREFAULT, fd, 0);
        if (p == MAP_FAILED) {
            r = -errno;
        } else {
            f->data = p;
            f->len = (size_t)st.st_size;
        }
    }
    close(fd);
    return r;
}

static int
open_store_model(cli_ctx *ctx, const char *text, unsigned flags, cli_rt_file *f)
{
    uint8_t id[CAS_HASH_LEN];
    int r = cli_resolve(ctx, text, id);
    if (r != CLI_GO)
        return r;
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(id, hex);
    cas_model_info mi;
    r = cas_store_model_info(ctx->store, id, &mi);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot read model %s", text);
    if (mi.state != CAS_MODEL_COMPLETE || mi.n_present != mi.n_chunks)
        return cli_fail(CLI_EXIT_FAIL,
                        "model %s is not complete (%" PRIu64 " of %" PRIu64
                        " chunks verified): run nvx fetch %.16s to finish it, then nvx run again",
                        text, mi.n_present, mi.n_chunks, hex);
    if ((r = cli_run_check(ctx, id, text, flags)) != CLI_GO)
        return r;
    r = cas_store_data_path(ctx->store, id, &f->path);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot find the data of model %s", text);
    f->from_store = true;
    r = map_file(f);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot map model %s", text);
    if (f->len != mi.size)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s: data file is %zu bytes, the manifest says %" PRIu64
                        ": run nvx verify %.16s",
                        text, f->len, mi.size, hex);
    /* A use (run, chat, eval, quantize): the store quota evicts the least
     * recently used first. Best effort: a store we may not write to (a
     * system node's) still runs the model. */
    (void)cas_store_touch(ctx->store, id, 0);
    return CLI_GO;
}

/* True if text can only be a path (absolute or relative, or a model
 * file's suffix): never resolved in the store, so a typo in a path is
 * reported as a missing file, not as an unknown model. */
static bool
looks_like_path(const char *text)
{
    size_t n = strlen(text);
    return text[0] == '/' || strncmp(text, "./", 2) == 0 || strncmp(text, "../", 3) == 0 ||
           (n > 5 && strcmp(text + n - 5, ".gguf") == 0) ||
           (n > 4 && strcmp(text + n - 4, ".bin") == 0);
}

int
cli_rt_open(cli_ctx *ctx, const char *text, unsigned flags, cli_rt_file *ret)
{
    flags |= cli_run_check_env();
    memset(ret, 0, sizeof(*ret));
    ret->what = text;
    struct stat st;
    if (!is_file(text) && (looks_like_path(text) || stat(text, &st) == 0))
        return cli_fail(CLI_EXIT_NOTFOUND,
                        "%s is not a model file (%s): give a GGUF or llama2.c "
                        "file, or a model id or name from nvx ls",
                        text, stat(text, &st) == 0 ? "not a regular file" : "no such file");
    if (is_file(text) && (flags & CLI_RUN_REQUIRE_TRUSTED))
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "%s is a file, and a trusted signature is required: nvx add it and "
                        "check its signature with nvx verify, or drop --require-trusted (and "
                        "NVX_REQUIRE_TRUSTED)",
                        text);
    if (is_file(text)) {
        ret->path = strdup(text);
        if (!ret->path)
            return cli_fail_errno(-ENOMEM, NULL, "cannot open %s", text);
        int r = map_file(ret);
        if (r == -EBADMSG)
            return cli_fail(CLI_EXIT_CORRUPT, "%s is empty: give a GGUF or llama2.c model", text);
        if (r < 0)
            return cli_fail_errno(r, NULL, "cannot open %s", text);
        return CLI_GO;
    }
    return open_store_model(ctx, text, flags, ret);
}

void
cli_rt_close(cli_rt_file *f)
{
    if (f->data)
        munmap((void *)f->data, f->len);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

int
cli_rt_tokenizer(const cli_rt_file *f, const char *tokenizer_path, uint32_t n_vocab,
                 rt_tokenizer **ret)
{
    int r;
    if (tokenizer_path) {
        r = rt_tokenizer_load_llama2c_file(tokenizer_path, n_vocab, ret);
        if (r == -EBADMSG)
            return cli_fail(CLI_EXIT_CORRUPT,
                            "%s is not a llama2.c tokenizer.bin with %" PRIu32
                            " tokens: give the tokenizer made for this model",
                            tokenizer_path, n_vocab);
        if (r < 0)
            return cli_fail_errno(r, NULL, "cannot read tokenizer %s", tokenizer_path);
        return CLI_GO;
    }
    r = rt_tokenizer_load_gguf(f->data, f->len, ret);
    if (r == -ENOENT || r == -EBADMSG || r == -EAGAIN) {
        if (!rt_gguf_is_gguf(f->data, f->len))
            return cli_fail(CLI_EXIT_USAGE,
                            "%s is a llama2.c checkpoint, which carries no vocabulary: "
                            "pass --tokenizer tokenizer.bin",
                            f->what);
        return cli_fail(r == -ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_CORRUPT,
                        "%s has %s vocabulary: pass --tokenizer tokenizer.bin", f->what,
                        r == -ENOENT ? "no" : "a malformed");
    }
    if (r == -ENOTSUP) {
        const char *key = "tokenizer.ggml.model", *val = "?";
        size_t vl = 1;
        (void)rt_tokenizer_gguf_unsupported(f->data, f->len, &key, &val, &vl);
        /* cli_fail escapes the value: it is bytes from the file. */
        return cli_fail(CLI_EXIT_FAIL,
                        "%s: unsupported tokenizer: %s = \"%.*s\" (supported: model llama; "
                        "model gpt2 with pre gpt-2, phi-2, starcoder, refact)",
                        f->what, key, (int)(vl < 64 ? vl : 64), val);
    }
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot read the vocabulary of %s", f->what);
    return CLI_GO;
}

int
cli_rt_build(const void *data, size_t len, rt_kv_type kv, cli_rt_model *ret)
{
    rt_model_opts o = RT_MODEL_OPTS_INIT;
    o.kv_type = kv;
    rt_arena_report rep;
    int r = rt_model_plan(data, len, &o, &rep);
    if (r < 0)
        return r;
    size_t size = (rep.total + 2 * RT_ARENA_ALIGN) / RT_ARENA_ALIGN * RT_ARENA_ALIGN;
    void *arena = aligned_alloc(RT_ARENA_ALIGN, size);
    if (!arena)
        return -ENOMEM;
    r = rt_model_init(data, len, &o, arena, size, &ret->m, NULL);
    if (r < 0) {
        free(arena);
        return r;
    }
    ret->arena = arena;
    return 0;
}

size_t
cli_rt_sample(rt_model *m, uint64_t seed, int32_t *t, size_t n)
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

/* ---- nvx run ---- */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all its threads): on a shared
 * machine, what a benchmark compares beside wall time. */
static double
cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run_out {
    double t_first;
    uint32_t n;
    double *t_emit, *c_emit; /* --stats: when each token was out (wall, CPU) */
    size_t cap;
} run_out;

static int
emit(void *userdata, int32_t token, const char *piece, size_t len)
{
    run_out *o = userdata;
    (void)token;
    /* Model output is untrusted bytes: like llama2.c's safe_printf, drop a
     * lone control byte (other than newline and tab) rather than send
     * terminal escapes; UTF-8 and printable text pass as they are. */
    if (len == 1 && ((uint8_t)piece[0] < 0x20 || piece[0] == 0x7f) && piece[0] != '\n' &&
        piece[0] != '\t')
        len = 0;
    if (len && fwrite(piece, 1, len, stdout) != len)
        return -EPIPE;
    if (fflush(stdout) != 0)
        return -EPIPE;
    if (o->n == 0 || o->t_emit) {
        double t = now_s();
        if (o->n == 0)
            o->t_first = t;
        if (o->n < o->cap) {
            o->t_emit[o->n] = t;
            o->c_emit[o->n] = cpu_s();
        }
    }
    o->n++;
    return 0;
}

static void
print_report(FILE *out, const rt_arena_report *rep, const rt_model_opts *o)
{
    fprintf(out, "weights      %12zu\n", rep->weights);
    fprintf(out, "activations  %12zu\n", rep->activations);
    fprintf(out, "kv_cache     %12zu\n", rep->kv_cache);
    fprintf(out, "other        %12zu\n", rep->other);
    fprintf(out, "total        %12zu\n", rep->total);
    if (rep->file_weights)
        fprintf(out, "(read in place from the file, not in the arena: %zu bytes of weights%s)\n",
                rep->file_weights, o->copy_weights ? "" : "; --arena copies them in");
}

static const char *const kv_choices[] = { "f32", "int8", "f16", NULL };
static const rt_kv_type kv_values[] = { RT_KV_F32, RT_KV_Q8, RT_KV_F16 };
static const char *const requant_choices[] = { "none", "q8_0", "q4_0", NULL };

typedef struct run_args {
    const char *prompt, *tokenizer;
    uint64_t n_new, arena_bytes, seed, threads;
    double temp, top_p;
    int kv, requant;
    bool n_seen, arena_seen, seed_seen, threads_seen, report, stats, verify, require_trusted;
} run_args;

enum {
    RUN_N_OPTS = 15,
};

/* The option table of nvx run, bound to a. */
static void
run_opts(run_args *a, cli_opt o[RUN_N_OPTS])
{
    int i = 0;
    o[i++] = (cli_opt){ .lname = "prompt",
                        .sname = 'p',
                        .type = CLI_OPT_STR,
                        .dest = &a->prompt,
                        .metavar = "TEXT",
                        .help = "prompt (default: empty, start from BOS)" };
    o[i++] = (cli_opt){ .lname = "tokens",
                        .sname = 'n',
                        .type = CLI_OPT_U64,
                        .dest = &a->n_new,
                        .metavar = "N",
                        .max = UINT32_MAX,
                        .seen = &a->n_seen,
                        .help = "at most N new tokens (default: up to the context length)" };
    o[i++] = (cli_opt){ .lname = "temperature",
                        .sname = 't',
                        .type = CLI_OPT_DOUBLE,
                        .dest = &a->temp,
                        .metavar = "T",
                        .dmax = 100.0,
                        .help = "sampling temperature, 0 = greedy (default 1.0)" };
    o[i++] = (cli_opt){ .lname = "top-p",
                        .type = CLI_OPT_DOUBLE,
                        .dest = &a->top_p,
                        .metavar = "P",
                        .dmin = 1e-6,
                        .dmax = 1.0,
                        .help = "nucleus sampling mass, 1 = off (default 0.9)" };
    o[i++] = (cli_opt){ .lname = "seed",
                        .type = CLI_OPT_U64,
                        .dest = &a->seed,
                        .metavar = "S",
                        .max = UINT64_MAX,
                        .seen = &a->seed_seen,
                        .help = "random seed (default: from the clock)" };
    o[i++] = (cli_opt){ .lname = "kv",
                        .type = CLI_OPT_CHOICE,
                        .dest = &a->kv,
                        .metavar = "f32|int8|f16",
                        .choices = kv_choices,
                        .help = "KV cache type (default f32)" };
    o[i++] = (cli_opt){ .lname = "threads",
                        .type = CLI_OPT_U64,
                        .dest = &a->threads,
                        .metavar = "N",
                        .min = 1,
                        .max = RT_THREADS_MAX,
                        .seen = &a->threads_seen,
                        .help = "threads for the matrix products (default: the online cores; "
                                "1 with --arena, as on a microcontroller)" };
    o[i++] = (cli_opt){ .lname = "tokenizer",
                        .type = CLI_OPT_STR,
                        .dest = &a->tokenizer,
                        .metavar = "FILE",
                        .help = "llama2.c tokenizer.bin (needed for llama2.c checkpoints)" };
    o[i++] = (cli_opt){ .lname = "arena",
                        .type = CLI_OPT_SIZE,
                        .dest = &a->arena_bytes,
                        .metavar = "BYTES",
                        .min = 1,
                        .max = (uint64_t)SIZE_MAX / 2,
                        .seen = &a->arena_seen,
                        .help = "run in one block of BYTES (K/M/G suffixes), weights copied in" };
    o[i++] = (cli_opt){ .lname = "requant",
                        .type = CLI_OPT_CHOICE,
                        .dest = &a->requant,
                        .metavar = "q8_0|q4_0",
                        .choices = requant_choices,
                        .help = "quantize F32/F16 matrices at load time" };
    o[i++] = (cli_opt){ .lname = "arena-report",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->report,
                        .help = "print the exact bytes needed (weights, activations, KV cache, "
                                "total) and exit" };
    o[i++] = (cli_opt){ .lname = "stats",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->stats,
                        .help = "report tokens/s and time to first token on stderr" };
    o[i++] = (cli_opt){ .lname = "verify",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->verify,
                        .help = "(always on now) re-hash a store model before running" };
    o[i++] = (cli_opt){ .lname = "require-trusted",
                        .type = CLI_OPT_FLAG,
                        .dest = &a->require_trusted,
                        .help = "refuse a model without a signature from a trusted key "
                                "(also NVX_REQUIRE_TRUSTED=1)" };
    o[i] = (cli_opt)CLI_OPT_END;
}

/* Plans and builds the model of f as a asks; with --arena-report prints the
 * plan and returns CLI_EXIT_OK with *ret_m NULL. *ret_arena is the block
 * (the caller frees it). Returns CLI_GO or an exit code. */
static int
load_model(const run_args *a, const cli_rt_file *f, void **ret_arena, rt_model **ret_m,
           rt_arena_report *ret_rep)
{
    rt_model_opts mo = RT_MODEL_OPTS_INIT;
    mo.kv_type = kv_values[a->kv];
    mo.requant = a->requant == 1   ? RT_REQUANT_Q8_0
                 : a->requant == 2 ? RT_REQUANT_Q4_0
                                   : RT_REQUANT_NONE;
    mo.copy_weights = a->arena_seen;
    char why[RUN_WHY_MAX] = "";
    mo.why = why;
    mo.why_cap = sizeof(why);
    rt_arena_report rep;
    int e = rt_model_plan(f->data, f->len, &mo, &rep);
    if (e == -EBADMSG)
        return cli_fail(CLI_EXIT_CORRUPT,
                        "%s is not a model this runtime can run (%s): check the file", f->what,
                        why[0] ? why
                               : "malformed, or not a llama GGUF/llama2.c file with "
                                 "F32/F16/Q8_0/Q4_0 tensors");
    if (e < 0)
        return cli_fail_errno(e, NULL, "cannot load %s", f->what);
    /* --requant converts F32/F16 matrices only; on a file whose matrices are
     * all quantized already it would silently do nothing. Without copying,
     * the arena holds exactly the requantized weights. */
    rt_arena_report own = rep;
    if (mo.requant != RT_REQUANT_NONE && mo.copy_weights) {
        rt_model_opts nc = mo;
        nc.copy_weights = false;
        e = rt_model_plan(f->data, f->len, &nc, &own);
        if (e < 0)
            return cli_fail_errno(e, NULL, "cannot load %s", f->what);
    }
    if (mo.requant != RT_REQUANT_NONE && own.weights == 0)
        return cli_fail(CLI_EXIT_USAGE,
                        "--requant %s has nothing to do: every matrix of %s is quantized "
                        "already: leave --requant out",
                        requant_choices[a->requant], f->what);
    if (a->report) {
        print_report(stdout, &rep, &mo);
        return CLI_EXIT_OK;
    }
    size_t size = a->arena_seen ? (size_t)a->arena_bytes : rep.total + RT_ARENA_ALIGN;
    /* Aligned so that every byte of an --arena block is usable. */
    *ret_arena = aligned_alloc(RT_ARENA_ALIGN,
                               (size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    if (!*ret_arena)
        return cli_fail_errno(-ENOMEM, "try a smaller --arena", "cannot allocate %zu bytes", size);
    e = rt_model_init(f->data, f->len, &mo, *ret_arena, size, ret_m, &rep);
    if (e == -ENOMEM)
        return cli_fail(CLI_EXIT_FAIL,
                        "an arena of %zu bytes is too small: this model needs %zu bytes (weights "
                        "%zu, activations %zu, KV cache %zu): pass --arena %zu or more (--kv int8 "
                        "and --requant q4_0 shrink it)",
                        size, rep.total, rep.weights, rep.activations, rep.kv_cache, rep.total);
    if (e < 0)
        return cli_fail_errno(e, NULL, "cannot load %s", f->what);
    *ret_rep = rep;
    return CLI_GO;
}

/* Streams the text; returns an exit code. */
static int
generate_text(const run_args *a, rt_model *m, const rt_tokenizer *tok, size_t arena_size,
              unsigned threads, double t_start)
{
    const rt_config *cfg = rt_model_config(m);
    uint64_t seed = a->seed_seen ? a->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    size_t scratch_len = rt_sampler_scratch_size(cfg->vocab_size);
    void *scratch = malloc(scratch_len);
    rt_sampler smp;
    if (!scratch || rt_sampler_init(&smp, cfg->vocab_size, (float)a->temp, (float)a->top_p, seed,
                                    scratch, scratch_len) < 0) {
        free(scratch);
        return cli_fail(CLI_EXIT_USAGE, "bad sampling parameters: use -t >= 0, 0 < --top-p <= 1");
    }
    rt_generate_opts go = RT_GENERATE_OPTS_INIT;
    if (a->n_seen)
        go.max_new = (int64_t)a->n_new;
    run_out ro = { 0 };
    if (a->stats) { /* one entry per position at most */
        ro.t_emit = malloc(cfg->seq_len * sizeof(double));
        ro.c_emit = malloc(cfg->seq_len * sizeof(double));
        ro.cap = ro.t_emit && ro.c_emit ? cfg->seq_len : 0;
    }
    rt_generate_stats gs = { 0 };
    const char *p = a->prompt ? a->prompt : "";
    double t0 = now_s(), c0 = cpu_s();
    int e = rt_generate(m, tok, &smp, p, strlen(p), &go, emit, &ro, &gs);
    double gen = now_s() - t0;
    free(scratch);
    if (ro.n > 0)
        fputc('\n', stdout);
    fflush(stdout); /* the text's last line before the --stats line */
    if (e == -EMSGSIZE)
        return cli_fail(CLI_EXIT_USAGE,
                        "the prompt is %" PRIu32 " tokens, the model's context is %" PRIu32
                        ": shorten the prompt",
                        gs.n_prompt, cfg->seq_len);
    if (e == -EPIPE)
        return CLI_EXIT_FAIL; /* stdout went away: nothing more to say */
    if (e < 0)
        return cli_fail_errno(e, NULL, "generation failed");
    /* Prompt tokens are echoed as their batch finishes; the prompt's share
     * ends when the first sampled token (emit n_prompt - 1) is out, and
     * every later token took one forward pass (what benchmarks compare). */
    double t_prompt = 0.0, t_gen = 0.0, c_prompt = 0.0, c_gen = 0.0;
    uint32_t n_tail = 0;
    if (gs.n_prompt >= 1 && ro.n >= gs.n_prompt && ro.n <= ro.cap) {
        t_prompt = ro.t_emit[gs.n_prompt - 1] - t0;
        t_gen = ro.t_emit[ro.n - 1] - ro.t_emit[gs.n_prompt - 1];
        c_prompt = ro.c_emit[gs.n_prompt - 1] - c0;
        c_gen = ro.c_emit[ro.n - 1] - ro.c_emit[gs.n_prompt - 1];
        n_tail = ro.n - gs.n_prompt;
    }
    free(ro.t_emit);
    free(ro.c_emit);
    if (a->stats)
        fprintf(
            stderr,
            "nvx: %" PRIu32 " forward passes (%" PRIu32 " prompt tokens, %" PRIu32
            " new) in %.3f s: %.1f tok/s; first token %.1f ms after start; %s kernels, %u "
            "thread%s, %s KV, arena %zu bytes; prompt %.2f tok/s, generation %.2f tok/s; per CPU "
            "second: prompt %.2f, generation %.2f\n",
            gs.n_forward, gs.n_prompt, gs.n_generated, gen,
            gen > 0 ? (double)gs.n_forward / gen : 0.0,
            ro.n ? 1000.0 * (ro.t_first - t_start) : 0.0, rt_model_kernels(m), threads,
            threads == 1 ? "" : "s", kv_choices[a->kv], arena_size,
            t_prompt > 0 ? (double)gs.n_prompt / t_prompt : 0.0,
            t_gen > 0 ? (double)n_tail / t_gen : 0.0,
            c_prompt > 0 ? (double)gs.n_prompt / c_prompt : 0.0,
            c_gen > 0 ? (double)n_tail / c_gen : 0.0);
    return CLI_EXIT_OK;
}

int
cli_run_main(cli_ctx *ctx, int argc, char **argv)
{
    double t_start = now_s();
    run_args a = { .temp = 1.0, .top_p = 0.9 };
    cli_opt opts[RUN_N_OPTS];
    run_opts(&a, opts);
    int npos, r = cli_parse(ctx, &cli_cmd_run, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_run, npos, 1, 1)) != CLI_GO)
        return r;
    cli_rt_file f;
    rt_tokenizer *tok = NULL;
    void *arena = NULL;
    rt_model *m = NULL;
    rt_pool *pool = NULL;
    rt_arena_report rep = { 0 };
    r = cli_rt_open(ctx, argv[0], a.require_trusted ? CLI_RUN_REQUIRE_TRUSTED : 0, &f);
    if (r == CLI_GO)
        r = load_model(&a, &f, &arena, &m, &rep);
    if (r == CLI_GO)
        r = cli_rt_tokenizer(&f, a.tokenizer, rt_model_config(m)->vocab_size, &tok);
    if (r == CLI_GO && rt_tokenizer_n_vocab(tok) > rt_model_config(m)->vocab_size)
        r = cli_fail(CLI_EXIT_USAGE,
                     "the tokenizer has %" PRIu32 " tokens but %s only %" PRIu32
                     ": pass the tokenizer made for this model",
                     rt_tokenizer_n_vocab(tok), argv[0], rt_model_config(m)->vocab_size);
    /* The pool lives as long as the model: threads start once, not per
     * token. --arena mimics a microcontroller: one thread unless asked. */
    unsigned threads = a.threads_seen ? (unsigned)a.threads
                       : a.arena_seen ? 1
                                      : rt_threads_online();
    if (r == CLI_GO && threads > 1) {
        int e = rt_pool_new(threads, &pool);
        if (e < 0)
            r = cli_fail_errno(e, "try --threads 1", "cannot start %u threads", threads);
        else
            rt_model_set_parallel(m, rt_pool_parallel(pool));
    }
    if (r == CLI_GO)
        r = generate_text(&a, m, tok, rep.total, threads, t_start);
    rt_pool_free(pool);
    rt_tokenizer_free(tok);
    free(arena);
    cli_rt_close(&f);
    return r;
}
