/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for nvx import's parsers (cli/import-parse.c): the input as
 * an Ollama manifest, and as text for the Ollama name, hub cache repo,
 * refs and blob name parsers and the quantization label. What parses must
 * be safe to use as path components, and a parsed Ollama name must read
 * back the same from the name it prints.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/import-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the checks must stay in release (NDEBUG) builds too. */
#define CHECK(x)     \
    do {             \
        if (!(x))    \
            abort(); \
    } while (0)

static bool
part_ok(const char *s, bool colon)
{
    return cli_import_part_ok(s, strlen(s), colon);
}

static void
try_manifest(const uint8_t *data, size_t size)
{
    cli_ollama_manifest *m = malloc(sizeof(*m));
    char why[256];
    if (m && cli_ollama_manifest_parse(data, size, m, why, sizeof(why)) == 0) {
        CHECK(size <= CLI_OLLAMA_MANIFEST_MAX);
        CHECK(strlen(m->hex) == 64 && strspn(m->hex, "0123456789abcdef") == 64);
        CHECK(m->n_other < CLI_OLLAMA_LAYERS_MAX);
        for (size_t i = 0; i < m->n_other; i++)
            CHECK(part_ok(m->other[i], false));
    }
    free(m);
}

static void
try_text(const char *s, size_t len)
{
    cli_ollama_ref ref, back;
    if (cli_ollama_ref_parse(s, &ref) == 0) {
        CHECK(part_ok(ref.registry, true) && part_ok(ref.ns, false));
        CHECK(part_ok(ref.model, false) && part_ok(ref.tag, false));
        char name[4 * (CLI_IMPORT_PART_MAX + 1)];
        CHECK(cli_ollama_ref_name(&ref, name, sizeof(name)) > 0);
        CHECK(cli_ollama_ref_parse(name, &back) == 0 && memcmp(&ref, &back, sizeof(ref)) == 0);
    }
    char org[CLI_IMPORT_PART_MAX + 1], nm[CLI_IMPORT_PART_MAX + 1];
    if (cli_hf_repo_parse(s, org, nm) == 0)
        CHECK((org[0] == '\0' || part_ok(org, false)) && part_ok(nm, false));
    if (cli_hf_repo_arg(s, org, nm) == 0)
        CHECK((org[0] == '\0' || part_ok(org, false)) && part_ok(nm, false));
    char commit[65];
    if (cli_hf_ref_parse(s, len, commit) == 0)
        CHECK(part_ok(commit, false));
    uint8_t sha[CLI_IMPORT_SHA256_LEN];
    cli_hf_blob_sha256(s, sha);
    char label[32];
    size_t n = cli_gguf_quant_label(s, label, sizeof(label));
    CHECK(n < sizeof(label) && (n == 0 || (strlen(label) == n && part_ok(label, false))));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_manifest(data, size);
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    try_text(s, strlen(s));
    free(s);
    return 0;
}
