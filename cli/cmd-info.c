/* SPDX-License-Identifier: MIT */
/*
 * nvx info ID: what the store knows about one model.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/escape.h"
#include "cli/json.h"
#include "cli/modeldesc.h"
#include "cli/progress.h"
#include "cli/sigs.h"
#include "cli/store.h"
#include "libcas/store.h"
#include "runtime/types.h"

int cli_info_main(cli_ctx *ctx, int argc, char **argv);

const cli_command cli_cmd_info = {
    .name = "info",
    .main = cli_info_main,
    .usage = "info ID|NAME [--chunks] [--tensors] [--json]",
    .summary = "Show a model's architecture, parameters, tensor types, context length, size, "
               "chunks, signatures and pin state",
};

typedef struct info_data {
    uint8_t id[CAS_HASH_LEN];
    char hex[CAS_HASH_HEX_LEN + 1];
    cas_model_info mi;
    cas_manifest *m;
    char names[1024];
    cli_sig_result *sigs;
    size_t n_sigs;
    cli_modeldesc desc; /* from the data file's header; desc.known false when partial */
} info_data;

static void
print_desc(const cli_modeldesc *d)
{
    if (!d->known) {
        printf("arch       - (%s)\n", d->format[0] ? d->format : "no model header to read");
        return;
    }
    char n[16];
    printf("arch       %s (%s)\n", d->arch[0] ? d->arch : "-", d->format);
    printf("params     %s (%" PRIu64 ")\n", cli_modeldesc_fmt_count(d->n_params, n), d->n_params);
    fputs("types     ", stdout);
    for (size_t i = 0; i < d->n_types; i++)
        printf("%s %s: %" PRIu64 " tensor%s", i ? "," : "", rt_type_name(d->types[i].type),
               d->types[i].count, d->types[i].count == 1 ? "" : "s");
    if (d->other_count)
        printf(", other: %" PRIu64, d->other_count);
    if (d->ctx_len)
        printf("\ncontext    %" PRIu64 " tokens\n", d->ctx_len);
    else
        printf("\ncontext    -\n");
}

static void
json_chunks(cli_json *j, const cas_manifest *m)
{
    cli_json_arr_begin(j);
    for (size_t i = 0; i < cas_manifest_chunk_count(m); i++) {
        cas_chunk_info c;
        char hex[CAS_HASH_HEX_LEN + 1];
        if (cas_manifest_chunk(m, i, &c) < 0)
            break;
        cas_hash_to_hex(c.id, hex);
        cli_json_obj_begin(j);
        cli_json_kv_str(j, "id", hex);
        cli_json_kv_u64(j, "offset", c.offset);
        cli_json_kv_u64(j, "len", c.len);
        cli_json_obj_end(j);
    }
    cli_json_arr_end(j);
}

static void
json_tensors(cli_json *j, const cas_manifest *m)
{
    cli_json_arr_begin(j);
    for (size_t i = 0; i < cas_manifest_tensor_count(m); i++) {
        cas_tensor_info t;
        if (cas_manifest_tensor(m, i, &t) < 0)
            break;
        cli_json_obj_begin(j);
        cli_json_kv_str(j, "name", t.name);
        cli_json_kv_str(j, "type", rt_type_name(t.type));
        cli_json_kv_u64(j, "type_id", t.type);
        cli_json_key(j, "dims");
        cli_json_arr_begin(j);
        for (uint32_t d = 0; d < t.n_dims; d++)
            cli_json_u64(j, t.dims[d]);
        cli_json_arr_end(j);
        cli_json_kv_u64(j, "offset", t.offset);
        cli_json_kv_u64(j, "size", t.size);
        cli_json_obj_end(j);
    }
    cli_json_arr_end(j);
}

static int
print_json(cas_store *s, const info_data *d)
{
    cli_json j;
    cli_json_init(&j, stdout);
    cas_chunker_params p;
    cas_chunker_kind k = cas_manifest_chunker(d->m, &p);
    cli_json_obj_begin(&j);
    cli_json_kv_str(&j, "id", d->hex);
    cli_json_key(&j, "names");
    cli_model_names_json(s, d->id, &j);
    cli_json_kv_u64(&j, "size", d->mi.size);
    cli_json_kv_str(&j, "state", d->mi.state == CAS_MODEL_COMPLETE ? "complete" : "partial");
    cli_json_kv_bool(&j, "pinned", d->mi.pinned);
    cli_json_kv_u64(&j, "added", d->mi.added);
    cli_modeldesc_json(&j, &d->desc);
    cli_json_key(&j, "chunker");
    cli_json_obj_begin(&j);
    cli_json_kv_str(&j, "kind", cas_chunker_kind_to_string(k));
    cli_json_kv_u64(&j, "min", p.min);
    cli_json_kv_u64(&j, "avg", p.avg);
    cli_json_kv_u64(&j, "max", p.max);
    cli_json_obj_end(&j);
    cli_json_kv_u64(&j, "present", d->mi.n_present);
    cli_json_key(&j, "metadata");
    cli_json_obj_begin(&j);
    for (size_t i = 0; i < cas_manifest_meta_count(d->m); i++) {
        const char *key, *val;
        if (cas_manifest_meta(d->m, i, &key, &val) == 0) {
            cli_json_key(&j, key);
            cli_json_str(&j, val);
        }
    }
    cli_json_obj_end(&j);
    cli_json_key(&j, "chunks");
    json_chunks(&j, d->m);
    cli_json_key(&j, "tensors");
    json_tensors(&j, d->m);
    cli_json_key(&j, "signatures");
    cli_sigs_json(&j, d->sigs, d->n_sigs);
    cli_json_obj_end(&j);
    return cli_json_finish(&j) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static void
print_sigs(const info_data *d)
{
    printf("signatures %zu\n", d->n_sigs);
    for (size_t i = 0; i < d->n_sigs; i++) {
        const cli_sig_result *s = &d->sigs[i];
        fputs("  key ", stdout);
        cli_sig_print(stdout, s);
        if (s->status == CLI_SIG_TRUSTED && s->info.has_name) {
            fputs(" name ", stdout);
            cli_print_escaped_str(stdout, s->info.name);
        }
        putchar('\n');
    }
}

static void
print_lists(const info_data *d, bool chunks, bool tensors)
{
    for (size_t i = 0; chunks && i < cas_manifest_chunk_count(d->m); i++) {
        cas_chunk_info c;
        char hex[CAS_HASH_HEX_LEN + 1];
        if (cas_manifest_chunk(d->m, i, &c) < 0)
            break;
        cas_hash_to_hex(c.id, hex);
        printf("chunk %zu %s offset %" PRIu64 " len %u\n", i, hex, c.offset, c.len);
    }
    for (size_t i = 0; tensors && i < cas_manifest_tensor_count(d->m); i++) {
        cas_tensor_info t;
        if (cas_manifest_tensor(d->m, i, &t) < 0)
            break;
        fputs("tensor ", stdout);
        cli_print_escaped_str(stdout, t.name);
        printf(" %s dims", rt_type_name(t.type));
        for (uint32_t k = 0; k < t.n_dims; k++)
            printf("%c%" PRIu64, k ? 'x' : ' ', t.dims[k]);
        printf(" offset %" PRIu64 " size %" PRIu64 "\n", t.offset, t.size);
    }
}

static int
print_text(const info_data *d, bool chunks, bool tensors)
{
    char sz[16], when[64] = "?";
    cas_chunker_params p;
    cas_chunker_kind k = cas_manifest_chunker(d->m, &p);
    time_t t = (time_t)d->mi.added;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("id         %s\nnames      ", d->hex);
    cli_print_escaped_str(stdout, d->names[0] ? d->names : "-");
    printf("\nsize       %" PRIu64 " bytes (%s)\n", d->mi.size, cli_fmt_bytes(d->mi.size, sz));
    printf("state      %s (%" PRIu64 "/%" PRIu64 " chunks)\n",
           d->mi.state == CAS_MODEL_COMPLETE ? "complete" : "partial", d->mi.n_present,
           d->mi.n_chunks);
    printf("pinned     %s\nadded      %s\n", d->mi.pinned ? "yes" : "no", when);
    print_desc(&d->desc);
    printf("chunker    %s (min %u, avg %u, max %u)\n", cas_chunker_kind_to_string(k), p.min, p.avg,
           p.max);
    printf("chunks     %zu\ntensors    %zu\n", cas_manifest_chunk_count(d->m),
           cas_manifest_tensor_count(d->m));
    for (size_t i = 0; i < cas_manifest_meta_count(d->m); i++) {
        const char *key, *val;
        if (cas_manifest_meta(d->m, i, &key, &val) == 0) {
            printf("meta       %s=", key);
            cli_print_escaped_str(stdout, val);
            putchar('\n');
        }
    }
    print_sigs(d);
    print_lists(d, chunks, tensors);
    return CLI_EXIT_OK;
}

/* Loads everything shown; returns CLI_GO or an exit code. */
static int
load(cli_ctx *ctx, const char *what, info_data *d)
{
    cas_store *s = ctx->store;
    int r = cas_store_model_info(s, d->id, &d->mi);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot read model %s", what);
    uint8_t *mb = NULL;
    size_t ml = 0;
    r = cas_store_manifest_get(s, d->id, &mb, &ml);
    if (r == 0)
        r = cas_manifest_decode(mb, ml, &d->m);
    if (r == 0)
        r = cli_sigs_check(s, d->id, mb, ml, &d->sigs, &d->n_sigs);
    free(mb);
    if (r < 0)
        return cli_fail_errno(r, "run nvx verify", "cannot read the manifest of %s", what);
    if (cli_model_names(s, d->id, d->names, sizeof(d->names)) < 0)
        d->names[0] = '\0';
    r = cli_modeldesc_get(s, d->id, &d->desc);
    if (r == -EAGAIN)
        d->desc.format = "partial: the header may not be here yet";
    else if (r == -EBADMSG)
        d->desc.format = "not a model file the runtime reads";
    else if (r < 0) /* the rest is still worth showing; verify says what is wrong */
        d->desc.format = "cannot read its data file: run nvx verify";
    return CLI_GO;
}

int
cli_info_main(cli_ctx *ctx, int argc, char **argv)
{
    bool chunks = false, tensors = false;
    const cli_opt opts[] = {
        { .lname = "chunks",
          .type = CLI_OPT_FLAG,
          .dest = &chunks,
          .help = "list every chunk (id, offset, length)" },
        { .lname = "tensors",
          .type = CLI_OPT_FLAG,
          .dest = &tensors,
          .help = "list the tensor map" },
        CLI_OPT_END,
    };
    int npos, r = cli_parse(ctx, &cli_cmd_info, opts, argc, argv, &npos);
    if (r != CLI_GO)
        return r;
    if ((r = cli_want_args(&cli_cmd_info, npos, 1, 1)) != CLI_GO)
        return r;
    info_data d = { 0 };
    if ((r = cli_resolve(ctx, argv[0], d.id)) != CLI_GO)
        return r;
    cas_hash_to_hex(d.id, d.hex);
    r = load(ctx, argv[0], &d);
    if (r == CLI_GO)
        r = ctx->json ? print_json(ctx->store, &d) : print_text(&d, chunks, tensors);
    cas_manifest_free(d.m);
    free(d.sigs);
    return r;
}
