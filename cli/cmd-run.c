/* SPDX-License-Identifier: MIT */
/*
 * nvx run ID|NAME|FILE -p PROMPT: stream text from a model with the bundled
 * runtime. A model from the store must be complete (every chunk verified as
 * it arrived); models up to RUN_REVERIFY_MAX bytes are re-hashed before each
 * run as well (a few milliseconds), larger ones with --verify. The data file
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

#include "cli/store.h"
#include "libcas/hash.h"
#include "libcas/store.h"
#include "runtime/generate.h"
#include "runtime/gguf.h"
#include "runtime/model.h"

enum {
    RUN_REVERIFY_MAX = 64 << 20, /* re-hash store models up to this size on every run */
};

int cli_run_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_run = {
    .name = "run",
    .main = cli_run_main,
    .usage = "run ID|NAME|FILE -p PROMPT [-n N] [-t T] [--top-p P] [--seed S] [--kv int8] "
             "[--tokenizer FILE] [--arena BYTES] [--requant q8_0|q4_0] [--arena-report] "
             "[--stats]",
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
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
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
open_store_model(cli_ctx *ctx, const char *text, bool verify, cli_rt_file *f)
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
    if (verify || mi.size <= RUN_REVERIFY_MAX) {
        r = cas_store_verify(ctx->store, id, NULL);
        if (r == -EBADMSG)
            return cli_fail(CLI_EXIT_CORRUPT,
                            "model %s failed verification (a chunk does not match its id): "
                            "run nvx verify %.16s to see which, then fetch or add it again",
                            text, hex);
        if (r < 0)
            return cli_fail_errno(r, "run nvx verify", "cannot verify model %s", text);
    }
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
    return CLI_GO;
}

int
cli_rt_open(cli_ctx *ctx, const char *text, bool verify, cli_rt_file *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->what = text;
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
    return open_store_model(ctx, text, verify, ret);
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
    if (r == -ENOTSUP)
        return cli_fail(CLI_EXIT_FAIL,
                        "%s uses a tokenizer other than SentencePiece (llama): "
                        "pass --tokenizer tokenizer.bin",
                        f->what);
    if (r < 0)
        return cli_fail_errno(r, NULL, "cannot read the vocabulary of %s", f->what);
    return CLI_GO;
}

/* ---- nvx run ---- */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run_out {
    double t_first;
    uint32_t n;
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
    if (o->n++ == 0)
        o->t_first = now_s();
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

static const char *const kv_choices[] = { "f32", "int8", NULL };
static const char *const requant_choices[] = { "none", "q8_0", "q4_0", NULL };

int
cli_run_main(cli_ctx *ctx, int argc, char **argv)
{
    const char *prompt = NULL, *tokenizer = NULL;
    uint64_t n_new = 0, arena_bytes = 0, seed = 0;
    double temp = 1.0, top_p = 0.9;
    int kv = 0, requant = 0;
    bool n_seen = false, arena_seen = false, seed_seen = false, report = false, stats = false,
         verify = false;
    const cli_opt opts[] = {
        { .lname = "prompt",
          .sname = 'p',
          .type = CLI_OPT_STR,
          .dest = &prompt,
          .metavar = "TEXT",
          .help = "prompt (default: empty, start from BOS)" },
        { .lname = "tokens",
          .sname = 'n',
          .type = CLI_OPT_U64,
          .dest = &n_new,
          .metavar = "N",
          .help = "at most N new tokens (default: up to the context length)",
          .max = UINT32_MAX,
          .seen = &n_seen },
        { .lname = "temperature",
          .sname = 't',
          .type = CLI_OPT_DOUBLE,
          .dest = &temp,
          .metavar = "T",
          .help = "sampling temperature, 0 = greedy (default 1.0)",
          .dmax = 100.0 },
        { .lname = "top-p",
          .type = CLI_OPT_DOUBLE,
          .dest = &top_p,
          .metavar = "P",
          .help = "nucleus sampling mass, 1 = off (default 0.9)",
          .dmin = 1e-6,
          .dmax = 1.0 },
        { .lname = "seed",
          .type = CLI_OPT_U64,
          .dest = &seed,
          .metavar = "S",
          .help = "random seed (default: from the clock)",
          .max = UINT64_MAX,
          .seen = &seed_seen },
        { .lname = "kv",
          .type = CLI_OPT_CHOICE,
          .dest = &kv,
          .metavar = "f32|int8",
          .help = "KV cache type (default f32)",
          .choices = kv_choices },
        { .lname = "tokenizer",
          .type = CLI_OPT_STR,
          .dest = &tokenizer,
          .metavar = "FILE",
          .help = "llama2.c tokenizer.bin (needed for llama2.c checkpoints)" },
        { .lname = "arena",
          .type = CLI_OPT_SIZE,
          .dest = &arena_bytes,
          .metavar = "BYTES",
          .help = "run in one block of BYTES (K/M/G suffixes), weights copied in",
          .min = 1,
          .max = (uint64_t)SIZE_MAX / 2,
          .seen = &arena_seen },
        { .lname = "requant",
          .type = CLI_OPT_CHOICE,
          .dest = &requant,
          .metavar = "q8_0|q4_0",
          .help = "quantize F32/F16 matrices at load time",
          .choices = requant_choices },
        { .lname = "arena-report",
          .type = CLI_OPT_FLAG,
          .dest = &report,
          .help = "print the exact bytes needed (weights, activations, KV cache, total) and exit" },
        { .lname = "stats",
          .type = CLI_OPT_FLAG,
          .dest = &stats,
          .help = "report tokens/s and time to first token on stderr" },
        { .lname = "verify",
          .type = CLI_OPT_FLAG,
          .dest = &verify,
          .help = "re-hash a store model before running even if it is large" },
        CLI_OPT_END,
    };
    double t_start = now_s();
    int npos, r = cli_parse(ctx, &cli_cmd_run, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_run, npos, 1, 1)) != CLI_GO)
        return r;
    cli_rt_file f;
    rt_tokenizer *tok = NULL;
    void *arena = NULL, *scratch = NULL;
    rt_model *m = NULL;
    r = cli_rt_open(ctx, argv[0], verify, &f);
    if (r != CLI_GO)
        goto out;

    rt_model_opts mo = RT_MODEL_OPTS_INIT;
    mo.kv_type = kv == 1 ? RT_KV_Q8 : RT_KV_F32;
    mo.requant = requant == 1 ? RT_REQUANT_Q8_0 : requant == 2 ? RT_REQUANT_Q4_0 : RT_REQUANT_NONE;
    mo.copy_weights = arena_seen;
    rt_arena_report rep;
    int e = rt_model_plan(f.data, f.len, &mo, &rep);
    if (e < 0) {
        r = e == -EBADMSG ? cli_fail(CLI_EXIT_CORRUPT,
                                     "%s is not a model this runtime can run (malformed, or not "
                                     "a llama GGUF/llama2.c file with F32/F16/Q8_0/Q4_0 tensors): "
                                     "check the file",
                                     argv[0])
                          : cli_fail_errno(e, NULL, "cannot load %s", argv[0]);
        goto out;
    }
    if (report) {
        print_report(stdout, &rep, &mo);
        r = CLI_EXIT_OK;
        goto out;
    }
    size_t size = arena_seen ? (size_t)arena_bytes : rep.total + RT_ARENA_ALIGN;
    /* Aligned so that every byte of an --arena block is usable. */
    arena = aligned_alloc(RT_ARENA_ALIGN,
                          (size + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    if (!arena) {
        r = cli_fail_errno(-ENOMEM, "try a smaller --arena", "cannot allocate %zu bytes", size);
        goto out;
    }
    e = rt_model_init(f.data, f.len, &mo, arena, size, &m, &rep);
    if (e == -ENOMEM) {
        r = cli_fail(CLI_EXIT_FAIL,
                     "an arena of %zu bytes is too small: this model needs %zu bytes (weights %zu, "
                     "activations %zu, KV cache %zu): pass --arena %zu or more (--kv int8 and "
                     "--requant q4_0 shrink it)",
                     size, rep.total, rep.weights, rep.activations, rep.kv_cache, rep.total);
        goto out;
    }
    if (e < 0) {
        r = cli_fail_errno(e, NULL, "cannot load %s", argv[0]);
        goto out;
    }
    const rt_config *cfg = rt_model_config(m);
    r = cli_rt_tokenizer(&f, tokenizer, cfg->vocab_size, &tok);
    if (r != CLI_GO)
        goto out;
    if (!seed_seen)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    rt_sampler smp;
    scratch = malloc(rt_sampler_scratch_size(cfg->vocab_size));
    if (!scratch || rt_sampler_init(&smp, cfg->vocab_size, (float)temp, (float)top_p, seed, scratch,
                                    rt_sampler_scratch_size(cfg->vocab_size)) < 0) {
        r = cli_fail(CLI_EXIT_USAGE, "bad sampling parameters: use -t >= 0 and 0 < --top-p <= 1");
        goto out;
    }
    rt_generate_opts go = RT_GENERATE_OPTS_INIT;
    if (n_seen)
        go.max_new = (int64_t)n_new;
    run_out ro = { 0 };
    rt_generate_stats gs = { 0 };
    const char *p = prompt ? prompt : "";
    double t0 = now_s();
    e = rt_generate(m, tok, &smp, p, strlen(p), &go, emit, &ro, &gs);
    double t1 = now_s();
    if (ro.n > 0)
        fputc('\n', stdout);
    if (e == -EMSGSIZE) {
        r = cli_fail(CLI_EXIT_USAGE,
                     "the prompt is %" PRIu32 " tokens, the model's context is %" PRIu32
                     ": shorten the prompt",
                     gs.n_prompt, cfg->seq_len);
        goto out;
    }
    if (e == -EPIPE) {
        r = CLI_EXIT_FAIL; /* stdout went away: nothing more to say */
        goto out;
    }
    if (e < 0) {
        r = cli_fail_errno(e, NULL, "generation failed");
        goto out;
    }
    if (stats) {
        double gen = t1 - t0;
        fprintf(stderr,
                "nvx: %" PRIu32 " tokens (%" PRIu32 " prompt, %" PRIu32 " new) in %.3f s: "
                "%.1f tok/s; first token %.1f ms after start; %s kernels, %s KV, arena %zu bytes\n",
                gs.n_forward, gs.n_prompt, gs.n_generated, gen,
                gen > 0 ? (double)gs.n_forward / gen : 0.0,
                ro.n ? 1000.0 * (ro.t_first - t_start) : 0.0, rt_model_kernels(m),
                kv == 1 ? "int8" : "f32", rep.total);
    }
    r = CLI_EXIT_OK;
out:
    free(scratch);
    rt_tokenizer_free(tok);
    free(arena);
    cli_rt_close(&f);
    return r;
}
