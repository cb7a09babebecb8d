/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_IMPORT_PARSE_H
#define NVX_CLI_IMPORT_PARSE_H
/*
 * What `nvx import` reads from other tools' stores, parsed without I/O (so
 * tests/fuzz/fuzz-import.c drives it directly). Every byte here is outside
 * input: a store may have been copied from anywhere, so names and digests
 * that become path components are checked before any path is built.
 *
 * Ollama ($OLLAMA_MODELS, default ~/.ollama/models):
 *
 *   manifests/REGISTRY/NAMESPACE/MODEL/TAG   JSON (Docker image manifest v2):
 *       {"schemaVersion": 2, "mediaType": "...", "config": {...},
 *        "layers": [{"mediaType": "application/vnd.ollama.image.model",
 *                    "digest": "sha256:<64 hex>", "size": N}, ...]}
 *   blobs/sha256-<64 hex>                     a layer's bytes; the model
 *                                             layer is a GGUF file
 *
 *   Other layers (template, params, license, system, projector, adapter)
 *   are named, not imported. A model is shown the way `ollama list` shows
 *   it: MODEL:TAG on registry.ollama.ai/library, NAMESPACE/MODEL:TAG on
 *   registry.ollama.ai, REGISTRY/NAMESPACE/MODEL:TAG elsewhere (e.g.
 *   hf.co/ORG/NAME:Q4_K_M).
 *
 * Hugging Face hub cache ($HF_HUB_CACHE, default ~/.cache/huggingface/hub):
 *
 *   models--ORG--NAME/refs/main              the commit hash main points at
 *   models--ORG--NAME/snapshots/COMMIT/FILE  symlink to ../../blobs/ETAG
 *   models--ORG--NAME/blobs/ETAG             the bytes; an LFS file's etag
 *                                            is its SHA-256 (64 hex)
 *
 *   A GGUF file is named hf.co/ORG/NAME/FILE, and also hf.co/ORG/NAME:QUANT
 *   when its file name carries a quantization label (Q4_K_M, F16, ...) that
 *   no other GGUF file of the snapshot carries: the names Ollama gives to
 *   `ollama pull hf.co/ORG/NAME:QUANT`, so both imports of one file agree.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits. */
enum {
    CLI_OLLAMA_MANIFEST_MAX = 64 * 1024, /* bytes of a manifest (real ones: ~1 KiB) */
    CLI_OLLAMA_LAYERS_MAX = 64,          /* layers of a manifest */
    CLI_IMPORT_PART_MAX = 128,           /* bytes of one name component */
    CLI_IMPORT_KIND_MAX = 32,            /* bytes of a layer kind ("template") */
    CLI_HF_REF_MAX = 128,                /* bytes of a refs/ file */
    CLI_IMPORT_SHA256_LEN = 32,
};

#define CLI_OLLAMA_REGISTRY  "registry.ollama.ai"
#define CLI_OLLAMA_NAMESPACE "library"
#define CLI_OLLAMA_TAG       "latest"
#define CLI_OLLAMA_MODEL_MT  "application/vnd.ollama.image.model"
#define CLI_HF_PREFIX        "hf.co/" /* of the local names of Hugging Face models */

/* The parts of an Ollama model name; each a checked path component. */
typedef struct cli_ollama_ref {
    char registry[CLI_IMPORT_PART_MAX + 1];
    char ns[CLI_IMPORT_PART_MAX + 1];
    char model[CLI_IMPORT_PART_MAX + 1];
    char tag[CLI_IMPORT_PART_MAX + 1];
} cli_ollama_ref;

typedef struct cli_ollama_manifest {
    uint8_t sha256[CLI_IMPORT_SHA256_LEN]; /* the model layer's digest */
    char hex[65];                          /* the same in lowercase hex */
    uint64_t size;                         /* the model layer's size */
    size_t n_other;                        /* other layers, named below */
    char other[CLI_OLLAMA_LAYERS_MAX][CLI_IMPORT_KIND_MAX + 1];
} cli_ollama_manifest;

/*
 * True when s[0..len) may be a path component of an import: 1 to
 * CLI_IMPORT_PART_MAX bytes of [A-Za-z0-9._-] (with colon also ':', for a
 * registry's host:port), not starting with '.' (so never "." or "..", and
 * no hidden files), no '/' and no NUL.
 */
bool cli_import_part_ok(const char *s, size_t len, bool colon);

/*
 * Parses text as `ollama pull` takes it: [[REGISTRY/]NAMESPACE/]MODEL[:TAG],
 * the defaults filled in (registry.ollama.ai, library, latest). Returns 0,
 * or -EINVAL when a part is empty, too long or not a safe path component.
 */
int cli_ollama_ref_parse(const char *text, cli_ollama_ref *ret);

/* Writes the name `ollama list` shows for ref into buf (cap bytes).
 * Returns its length, or -EMSGSIZE when it does not fit. */
int cli_ollama_ref_name(const cli_ollama_ref *ref, char *buf, size_t cap);

/*
 * Parses an Ollama manifest (buf[0..len), at most CLI_OLLAMA_MANIFEST_MAX
 * bytes) with jansson: schemaVersion 2, a layers array of at most
 * CLI_OLLAMA_LAYERS_MAX objects, each with a mediaType string, a digest
 * "sha256:" + 64 lowercase hex and a size integer >= 0; exactly one layer
 * of CLI_OLLAMA_MODEL_MT. Returns 0 and fills *ret; -EMSGSIZE (too big, too
 * many layers), -EBADMSG (anything else), with a reason in why[0..why_cap).
 */
int cli_ollama_manifest_parse(const void *buf, size_t len, cli_ollama_manifest *ret, char *why,
                              size_t why_cap);

/*
 * Splits a hub cache directory name "models--ORG--NAME" (or "models--NAME"
 * for the few models without an organisation) into org ("" when none) and
 * name, each a checked component. Returns 0 or -EINVAL (not a model repo,
 * or an unsafe part).
 */
int cli_hf_repo_parse(const char *dirname, char org[static CLI_IMPORT_PART_MAX + 1],
                      char name[static CLI_IMPORT_PART_MAX + 1]);

/* Parses "ORG/NAME" or "NAME" as a user types a repo. Same returns. */
int cli_hf_repo_arg(const char *text, char org[static CLI_IMPORT_PART_MAX + 1],
                    char name[static CLI_IMPORT_PART_MAX + 1]);

/*
 * Parses the contents of a refs/ file: a commit hash of 40 (SHA-1) or 64
 * (SHA-256) lowercase hex characters, optionally followed by one newline.
 * Writes it NUL-terminated to ret. Returns 0 or -EBADMSG.
 */
int cli_hf_ref_parse(const void *buf, size_t len, char ret[static 65]);

/* True when a blob's file name is an LFS etag, i.e. the SHA-256 of its
 * bytes (64 lowercase hex), which it then writes to ret. */
bool cli_hf_blob_sha256(const char *blob_name, uint8_t ret[static CLI_IMPORT_SHA256_LEN]);

/*
 * The quantization label a GGUF file name carries, the way repos name them
 * ("llama-2-7b.Q4_K_M.gguf", "qwen2.5-0.5b-instruct-q8_0.gguf"): the last
 * '.'- or '-'-separated word of the base name (extension off) that reads
 * Q<digits>[_X...], IQ<digits>[_X...], TQ<digits>_<digit>, F16, BF16 or F32,
 * in upper case, into ret (cap bytes). Returns its length, 0 when there is
 * none or it does not fit.
 */
size_t cli_gguf_quant_label(const char *file_name, char *ret, size_t cap);

#endif
