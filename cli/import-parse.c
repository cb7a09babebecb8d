/* SPDX-License-Identifier: MIT */
/*
 * Parsers of nvx import (see import-parse.h): Ollama names and manifests,
 * Hugging Face cache directory names, refs and blob names. No I/O.
 */
#include "cli/import-parse.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define SHA256_PREFIX "sha256:"
#define OLLAMA_MT     "application/vnd.ollama.image."
#define HF_REPO       "models--"

static bool
is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Lowercase hex of exactly 2 * n characters into out[n]. */
static bool
from_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
    size_t got = 0;
    return len == 2 * n && is_lower_hex(s, len) &&
           sodium_hex2bin(out, n, s, len, NULL, &got, NULL) == 0 && got == n;
}

bool
cli_import_part_ok(const char *s, size_t len, bool colon)
{
    if (len == 0 || len > CLI_IMPORT_PART_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || (colon && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

static int
copy_part(char dst[static CLI_IMPORT_PART_MAX + 1], const char *s, size_t len, bool colon)
{
    if (!cli_import_part_ok(s, len, colon))
        return -EINVAL;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

int
cli_ollama_ref_parse(const char *text, cli_ollama_ref *ret)
{
    const char *parts[3];
    size_t lens[3], n = 0;
    for (const char *p = text;; n++) {
        const char *slash = strchr(p, '/');
        if (n == 3)
            return -EINVAL; /* more than REGISTRY/NAMESPACE/MODEL */
        parts[n] = p;
        lens[n] = slash ? (size_t)(slash - p) : strlen(p);
        if (!slash) {
            n++;
            break;
        }
        p = slash + 1;
    }
    cli_ollama_ref r = { 0 }; /* whole, so refs compare with memcmp */
    snprintf(r.registry, sizeof(r.registry), "%s", CLI_OLLAMA_REGISTRY);
    snprintf(r.ns, sizeof(r.ns), "%s", CLI_OLLAMA_NAMESPACE);
    snprintf(r.tag, sizeof(r.tag), "%s", CLI_OLLAMA_TAG);
    /* The tag follows a colon in the last part only: a registry part may
     * hold host:port. */
    const char *last = parts[n - 1];
    size_t last_len = lens[n - 1];
    const char *colon = memchr(last, ':', last_len);
    size_t model_len = colon ? (size_t)(colon - last) : last_len;
    if (copy_part(r.model, last, model_len, false) < 0)
        return -EINVAL;
    if (colon && copy_part(r.tag, colon + 1, last_len - model_len - 1, false) < 0)
        return -EINVAL;
    if (n >= 2 && copy_part(r.ns, parts[n - 2], lens[n - 2], false) < 0)
        return -EINVAL;
    if (n == 3 && copy_part(r.registry, parts[0], lens[0], true) < 0)
        return -EINVAL;
    *ret = r;
    return 0;
}

int
cli_ollama_ref_name(const cli_ollama_ref *ref, char *buf, size_t cap)
{
    int n;
    if (strcmp(ref->registry, CLI_OLLAMA_REGISTRY) != 0)
        n = snprintf(buf, cap, "%s/%s/%s:%s", ref->registry, ref->ns, ref->model, ref->tag);
    else if (strcmp(ref->ns, CLI_OLLAMA_NAMESPACE) != 0)
        n = snprintf(buf, cap, "%s/%s:%s", ref->ns, ref->model, ref->tag);
    else
        n = snprintf(buf, cap, "%s:%s", ref->model, ref->tag);
    return n < 0 || (size_t)n >= cap ? -EMSGSIZE : n;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
refuse(char *why, size_t cap, const char *fmt, ...)
{
    if (cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* One layer object: its kind (the media type's last word) into kind, its
 * digest and size. */
static int
parse_layer(json_t *l, size_t i, char kind[static CLI_IMPORT_KIND_MAX + 1],
            uint8_t sha[static CLI_IMPORT_SHA256_LEN], uint64_t *size, char *why, size_t cap)
{
    json_t *mt = json_object_get(l, "mediaType"), *dg = json_object_get(l, "digest"),
           *sz = json_object_get(l, "size");
    if (!json_is_object(l) || !json_is_string(mt) || !json_is_string(dg) || !json_is_integer(sz))
        return refuse(why, cap, "layer %zu lacks a mediaType, digest or size", i);
    const char *m = json_string_value(mt), *d = json_string_value(dg);
    size_t mlen = json_string_length(mt), dlen = json_string_length(dg);
    size_t plen = strlen(SHA256_PREFIX);
    if (dlen != plen + 64 || memcmp(d, SHA256_PREFIX, plen) != 0 ||
        !from_hex(d + plen, 64, sha, CLI_IMPORT_SHA256_LEN))
        return refuse(why, cap, "layer %zu: digest is not sha256: and 64 lowercase hex", i);
    if (json_integer_value(sz) < 0)
        return refuse(why, cap, "layer %zu: negative size", i);
    *size = (uint64_t)json_integer_value(sz);
    /* Kinds are printed: keep the last word of an Ollama media type when it
     * is a plain word, else call it "other". */
    size_t olen = strlen(OLLAMA_MT), klen = strlen("other");
    const char *k = "other";
    if (mlen > olen && memcmp(m, OLLAMA_MT, olen) == 0 && mlen - olen <= CLI_IMPORT_KIND_MAX &&
        cli_import_part_ok(m + olen, mlen - olen, false)) {
        k = m + olen;
        klen = mlen - olen;
    }
    memcpy(kind, k, klen);
    kind[klen] = '\0';
    return 0;
}

static int
parse_root(json_t *root, cli_ollama_manifest *ret, char *why, size_t cap)
{
    if (!json_is_object(root))
        return refuse(why, cap, "not a JSON object");
    json_t *v = json_object_get(root, "schemaVersion");
    if (!json_is_integer(v) || json_integer_value(v) != 2)
        return refuse(why, cap, "schemaVersion is not 2");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers))
        return refuse(why, cap, "no layers array");
    size_t n = json_array_size(layers);
    if (n > CLI_OLLAMA_LAYERS_MAX) {
        refuse(why, cap, "%zu layers, more than %d", n, CLI_OLLAMA_LAYERS_MAX);
        return -EMSGSIZE;
    }
    bool have_model = false;
    ret->n_other = 0;
    for (size_t i = 0; i < n; i++) {
        char kind[CLI_IMPORT_KIND_MAX + 1];
        uint8_t sha[CLI_IMPORT_SHA256_LEN];
        uint64_t size = 0;
        int r = parse_layer(json_array_get(layers, i), i, kind, sha, &size, why, cap);
        if (r < 0)
            return r;
        if (strcmp(kind, "model") != 0) {
            memcpy(ret->other[ret->n_other++], kind, sizeof(kind));
            continue;
        }
        if (have_model)
            return refuse(why, cap, "more than one model layer");
        have_model = true;
        memcpy(ret->sha256, sha, sizeof(sha));
        ret->size = size;
    }
    if (!have_model)
        return refuse(why, cap, "no model layer (%s)", CLI_OLLAMA_MODEL_MT);
    sodium_bin2hex(ret->hex, sizeof(ret->hex), ret->sha256, CLI_IMPORT_SHA256_LEN);
    return 0;
}

int
cli_ollama_manifest_parse(const void *buf, size_t len, cli_ollama_manifest *ret, char *why,
                          size_t why_cap)
{
    if (len > CLI_OLLAMA_MANIFEST_MAX) {
        refuse(why, why_cap, "%zu bytes, more than %d", len, CLI_OLLAMA_MANIFEST_MAX);
        return -EMSGSIZE;
    }
    json_error_t err;
    /* Duplicate keys refused: two "layers" must not be read two ways. */
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return refuse(why, why_cap, "not JSON (line %d: %s)", err.line, err.text);
    int r = parse_root(root, ret, why, why_cap);
    json_decref(root);
    return r;
}

int
cli_hf_repo_parse(const char *dirname, char org[static CLI_IMPORT_PART_MAX + 1],
                  char name[static CLI_IMPORT_PART_MAX + 1])
{
    size_t plen = strlen(HF_REPO);
    if (strncmp(dirname, HF_REPO, plen) != 0)
        return -EINVAL;
    const char *rest = dirname + plen;
    /* Hub repo names never hold "--", so the first one splits org/name. */
    const char *sep = strstr(rest, "--");
    if (!sep) {
        org[0] = '\0';
        return copy_part(name, rest, strlen(rest), false);
    }
    if (copy_part(org, rest, (size_t)(sep - rest), false) < 0 || strstr(sep + 2, "--"))
        return -EINVAL;
    return copy_part(name, sep + 2, strlen(sep + 2), false);
}

int
cli_hf_repo_arg(const char *text, char org[static CLI_IMPORT_PART_MAX + 1],
                char name[static CLI_IMPORT_PART_MAX + 1])
{
    const char *slash = strchr(text, '/');
    if (!slash) {
        org[0] = '\0';
        return copy_part(name, text, strlen(text), false);
    }
    if (copy_part(org, text, (size_t)(slash - text), false) < 0 || strstr(org, "--"))
        return -EINVAL;
    int r = copy_part(name, slash + 1, strlen(slash + 1), false);
    return r < 0 || strstr(name, "--") ? -EINVAL : 0;
}

int
cli_hf_ref_parse(const void *buf, size_t len, char ret[static 65])
{
    const char *s = buf;
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if ((len != 40 && len != 64) || !is_lower_hex(s, len))
        return -EBADMSG;
    memcpy(ret, s, len);
    ret[len] = '\0';
    return 0;
}

bool
cli_hf_blob_sha256(const char *blob_name, uint8_t ret[static CLI_IMPORT_SHA256_LEN])
{
    return from_hex(blob_name, strlen(blob_name), ret, CLI_IMPORT_SHA256_LEN);
}

/* word[0..len) upper-cased into out reads as a quantization label. */
static bool
is_quant(const char *out, size_t len)
{
    static const char *const plain[] = { "F16", "BF16", "F32" };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (len == strlen(plain[i]) && memcmp(out, plain[i], len) == 0)
            return true;
    size_t i = out[0] == 'I' || out[0] == 'T' ? 1 : 0;
    if (i >= len || out[i] != 'Q' || ++i >= len || out[i] < '0' || out[i] > '9')
        return false;
    while (i < len && out[i] >= '0' && out[i] <= '9')
        i++;
    /* Then _X groups of letters and digits: Q4_K_M, IQ2_XXS, Q4_0_4_4. */
    while (i < len) {
        if (out[i] != '_' || i + 1 >= len || out[i + 1] == '_')
            return false;
        i++;
        while (i < len && out[i] != '_') {
            if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9')))
                return false;
            i++;
        }
    }
    return true;
}

size_t
cli_gguf_quant_label(const char *file_name, char *ret, size_t cap)
{
    const char *base = strrchr(file_name, '/');
    base = base ? base + 1 : file_name;
    const char *dot = strrchr(base, '.');
    size_t len = dot ? (size_t)(dot - base) : strlen(base), found = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && base[j] != '.' && base[j] != '-')
            j++;
        size_t w = j - i;
        char up[CLI_IMPORT_PART_MAX + 1];
        if (w > 0 && w <= CLI_IMPORT_PART_MAX && w < cap) {
            for (size_t k = 0; k < w; k++)
                up[k] = base[i + k] >= 'a' && base[i + k] <= 'z' ? (char)(base[i + k] - 32)
                                                                 : base[i + k];
            if (is_quant(up, w)) {
                memcpy(ret, up, w);
                ret[w] = '\0';
                found = w;
            }
        }
        i = j + 1;
    }
    return found;
}
