/* SPDX-License-Identifier: MIT */
/*
 * nvx verify ID|--all: re-hash every chunk, check the manifest against its
 * id, and check every attached signature against the keyring.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/progress.h"
#include "cli/sigs.h"
#include "cli/stats.h"
#include "cli/store.h"
#include "libcas/store.h"

int cli_verify_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_verify = {
    .name = "verify",
    .main = cli_verify_main,
    .usage = "verify ID|NAME|--all [--require-trusted] [--json]",
    .summary = "Re-hash every chunk and check signatures; name any corrupt chunk",
};

enum {
    PROBLEMS_KEPT = 16, /* problems remembered per model for the report */
};

typedef struct vmodel {
    uint8_t id[CAS_HASH_LEN];
    bool ok;
    size_t n_problems;
    cas_store_problem problems[PROBLEMS_KEPT];
    cli_sig_result *sigs;
    size_t n_sigs, n_trusted, n_bad_sigs;
    bool partial; /* sound, but chunks are missing: not "ok" */
    uint64_t n_present, n_chunks;
} vmodel;

typedef struct vstate {
    vmodel *models;
    size_t n, cap;
    int oom;
    cli_progress pr;
} vstate;

static vmodel *
model_slot(vstate *st, const uint8_t id[CAS_HASH_LEN])
{
    if (st->n > 0 && memcmp(st->models[st->n - 1].id, id, CAS_HASH_LEN) == 0)
        return &st->models[st->n - 1];
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 8;
        vmodel *nm = realloc(st->models, cap * sizeof(*nm));
        if (!nm)
            return NULL;
        st->models = nm;
        st->cap = cap;
    }
    vmodel *m = &st->models[st->n++];
    memset(m, 0, sizeof(*m));
    memcpy(m->id, id, CAS_HASH_LEN);
    m->ok = true;
    return m;
}

static int
on_problem(void *userdata, const cas_store_problem *p)
{
    vstate *st = userdata;
    vmodel *m = model_slot(st, p->model);
    if (!m)
        return st->oom = -ENOMEM;
    m->ok = false;
    if (m->n_problems < PROBLEMS_KEPT)
        m->problems[m->n_problems] = *p;
    m->n_problems++;
    return 0;
}

static int
on_done(void *userdata, const uint8_t id[static CAS_HASH_LEN], bool ok)
{
    vstate *st = userdata;
    vmodel *m = model_slot(st, id);
    if (!m)
        return st->oom = -ENOMEM;
    m->ok = m->ok && ok;
    return 0;
}

static int
on_progress(void *userdata, uint64_t done, uint64_t total)
{
    vstate *st = userdata;
    cli_progress_cb(&st->pr, done, total);
    return 0;
}

/* Checks the signatures of every model verified, and notes which are
 * partial (verify checks only the chunks they hold). */
static void
check_sigs(cas_store *s, vstate *st)
{
    for (size_t i = 0; i < st->n; i++) {
        vmodel *m = &st->models[i];
        cas_model_info mi;
        if (cas_store_model_info(s, m->id, &mi) == 0 && mi.state == CAS_MODEL_PARTIAL) {
            m->partial = true;
            m->n_present = mi.n_present;
            m->n_chunks = mi.n_chunks;
        }
        uint8_t *mb = NULL;
        size_t ml = 0;
        if (cas_store_manifest_get(s, m->id, &mb, &ml) < 0)
            continue; /* verify already reported a damaged manifest */
        if (cli_sigs_check(s, m->id, mb, ml, &m->sigs, &m->n_sigs) == 0) {
            for (size_t k = 0; k < m->n_sigs; k++) {
                cli_sig_status ss = m->sigs[k].status;
                m->n_trusted += ss == CLI_SIG_TRUSTED;
                m->n_bad_sigs += ss == CLI_SIG_INVALID || ss == CLI_SIG_MALFORMED;
            }
        }
        free(mb);
    }
}

static const char *
problem_text(int error)
{
    switch (error) {
    case -EBADMSG:
        return "does not match its id";
    case -ENOENT:
        return "is missing";
    default:
        return strerror(error < 0 ? -error : error);
    }
}

static void
json_model(cli_json *j, const vmodel *m)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(m->id, hex);
    cli_json_obj_begin(j);
    cli_json_kv_str(j, "id", hex);
    cli_json_kv_bool(j, "ok", m->ok && m->n_bad_sigs == 0 && !m->partial);
    cli_json_kv_bool(j, "partial", m->partial);
    if (m->partial) {
        cli_json_kv_u64(j, "chunks_present", m->n_present);
        cli_json_kv_u64(j, "chunks", m->n_chunks);
    }
    cli_json_key(j, "problems");
    cli_json_arr_begin(j);
    for (size_t k = 0; k < m->n_problems && k < PROBLEMS_KEPT; k++) {
        const cas_store_problem *p = &m->problems[k];
        cli_json_obj_begin(j);
        if (p->chunk_index != CAS_STORE_NO_CHUNK) {
            cli_json_kv_u64(j, "chunk", p->chunk_index);
            cli_json_kv_u64(j, "offset", p->offset);
            cli_json_kv_u64(j, "len", p->len);
        }
        cli_json_kv_str(j, "error", problem_text(p->error));
        cli_json_obj_end(j);
    }
    cli_json_arr_end(j);
    cli_json_key(j, "signatures");
    cli_sigs_json(j, m->sigs, m->n_sigs);
    cli_json_obj_end(j);
}

/* "ok <id>  2 signatures, 1 trusted: KEYID (name, trusted), KEYID (untrusted)"
 * or one FAILED line per problem and per bad signature. */
static void
text_model(const vmodel *m)
{
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_hash_to_hex(m->id, hex);
    if (m->ok && m->n_bad_sigs == 0 && m->partial) {
        printf("partial %s  %" PRIu64 " of %" PRIu64 " chunks present\n", hex, m->n_present,
               m->n_chunks);
        return;
    }
    if (m->ok && m->n_bad_sigs == 0) {
        printf("ok      %s  %zu signature%s, %zu trusted", hex, m->n_sigs,
               m->n_sigs == 1 ? "" : "s", m->n_trusted);
        for (size_t k = 0; k < m->n_sigs; k++) {
            fputs(k ? ", " : ": ", stdout);
            cli_sig_print(stdout, &m->sigs[k]);
        }
        putchar('\n');
        return;
    }
    for (size_t k = 0; k < m->n_problems && k < PROBLEMS_KEPT; k++) {
        const cas_store_problem *p = &m->problems[k];
        if (p->chunk_index != CAS_STORE_NO_CHUNK)
            printf("FAILED  %s  chunk %" PRIu64 " (offset %" PRIu64 ", %u bytes) %s\n", hex,
                   p->chunk_index, p->offset, p->len, problem_text(p->error));
        else
            printf("FAILED  %s  data file or manifest %s\n", hex, problem_text(p->error));
    }
    for (size_t k = 0; k < m->n_sigs; k++) {
        cli_sig_status ss = m->sigs[k].status;
        if (ss != CLI_SIG_INVALID && ss != CLI_SIG_MALFORMED)
            continue;
        printf("FAILED  %s  signature by ", hex);
        cli_sig_print(stdout, &m->sigs[k]);
        putchar('\n');
    }
}

/* Prints the results; returns the exit code. */
static int
report(cli_ctx *ctx, vstate *st, bool require_trusted)
{
    size_t bad = 0, untrusted = 0, partial = 0;
    const vmodel *first = NULL, *first_partial = NULL;
    cli_json j;
    cli_json_init(&j, stdout);
    if (ctx->json) {
        cli_json_obj_begin(&j);
        cli_json_key(&j, "models");
        cli_json_arr_begin(&j);
    }
    for (size_t i = 0; i < st->n; i++) {
        const vmodel *m = &st->models[i];
        bool ok = m->ok && m->n_bad_sigs == 0;
        if (!ok && !first)
            first = m;
        bad += !ok;
        if (ok && m->partial && !first_partial)
            first_partial = m;
        partial += ok && m->partial;
        untrusted += ok && !m->partial && m->n_trusted == 0;
        if (ctx->json)
            json_model(&j, m);
        else if (!ctx->quiet || !ok)
            text_model(m);
    }
    if (ctx->json) {
        cli_json_arr_end(&j);
        cli_json_kv_bool(&j, "ok", bad == 0 && partial == 0);
        cli_json_obj_end(&j);
        cli_json_finish(&j);
    }
    if (first) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(first->id, hex);
        const cas_store_problem *p = &first->problems[0];
        if (first->n_problems && p->chunk_index != CAS_STORE_NO_CHUNK)
            return cli_fail(CLI_EXIT_CORRUPT,
                            "model %s is corrupt: chunk %" PRIu64 " (offset %" PRIu64
                            ") %s (failed: %zu of %zu models): run nvx repair %.16s [FILE]",
                            hex, p->chunk_index, p->offset, problem_text(p->error), bad, st->n,
                            hex);
        if (first->n_problems)
            return cli_fail(CLI_EXIT_CORRUPT,
                            "model %s is damaged: data file or manifest %s (failed: %zu of %zu "
                            "models): run nvx repair %.16s [FILE], or nvx rm it",
                            hex, problem_text(p->error), bad, st->n, hex);
        return cli_fail(CLI_EXIT_CORRUPT,
                        "model %s has an invalid signature (failed: %zu of %zu models): remove "
                        "it or check the keyring (nvx trust ls)",
                        hex, bad, st->n);
    }
    if (first_partial) {
        char hex[CAS_HASH_HEX_LEN + 1];
        cas_hash_to_hex(first_partial->id, hex);
        return cli_fail(CLI_EXIT_PARTIAL,
                        "model %s is partial: %" PRIu64 " of %" PRIu64
                        " chunks present, those verify (partial: %zu of %zu models): run nvx "
                        "fetch %.16s to complete it, or nvx rm it",
                        hex, first_partial->n_present, first_partial->n_chunks, partial, st->n,
                        hex);
    }
    if (require_trusted && untrusted)
        return cli_fail(CLI_EXIT_UNTRUSTED,
                        "no signature from a trusted key on %zu of %zu models: trust the "
                        "publisher's key (nvx trust add) or drop --require-trusted",
                        untrusted, st->n);
    return CLI_EXIT_OK;
}

int
cli_verify_main(cli_ctx *ctx, int argc, char **argv)
{
    bool all = false, require_trusted = false;
    const cli_opt opts[] = {
        { .lname = "all",
          .sname = 'a',
          .type = CLI_OPT_FLAG,
          .dest = &all,
          .help = "verify every model in the store" },
        { .lname = "require-trusted",
          .type = CLI_OPT_FLAG,
          .dest = &require_trusted,
          .help = "fail (exit 5) unless each model has a trusted signature" },
        { .lname = "stats",
          .type = CLI_OPT_FLAG,
          .dest = &ctx->stats,
          .help = "then print time, CPU s/GiB, hash path and write mode on stderr" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_verify, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_verify, npos, all ? 0 : 1, all ? 0 : 1)) != CLI_GO)
        return r;
    uint8_t id[CAS_HASH_LEN];
    cas_store *s;
    if (all)
        r = cli_store_open(ctx, CLI_STORE_EXISTING, &s);
    else
        r = cli_resolve(ctx, argv[0], id);
    if (r != CLI_GO)
        return r;
    s = ctx->store;
    vstate st = { 0 };
    cas_store_usage u = { 0 };
    cas_model_info mi = { 0 };
    uint64_t total = all ? (cas_store_usage_get(s, &u) == 0 ? u.bytes : 0)
                         : (cas_store_model_info(s, id, &mi) == 0 ? mi.size : 0);
    cli_progress_begin(&st.pr, ctx->progress, "verify", total);
    cas_store_verify_opts o = {
        .progress = on_progress, .problem = on_problem, .model_done = on_done, .userdata = &st
    };
    cli_stats stats;
    cli_stats_begin(ctx, &stats);
    int vr = cas_store_verify(s, all ? NULL : id, &o);
    cli_progress_end(&st.pr);
    cli_stats_end(&stats, "verify", total, NULL);
    if (vr < 0 && vr != -EBADMSG)
        r = cli_fail_errno(st.oom ? st.oom : vr, NULL, "verify stopped");
    else {
        check_sigs(s, &st);
        r = report(ctx, &st, require_trusted);
    }
    for (size_t i = 0; i < st.n; i++)
        free(st.models[i].sigs);
    free(st.models);
    return r;
}
