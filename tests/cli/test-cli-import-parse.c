/* SPDX-License-Identifier: MIT */
/*
 * The parsers of nvx import (cli/import-parse.c) on tables of good and
 * malformed input: Ollama manifests and names, Hugging Face cache repo
 * names, refs and blob names, quantization labels of file names.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/import-parse.h"

#define HEX_A             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UPPER_A           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define OLLAMA_MT(kind)   "\"application/vnd.ollama.image." kind "\""
#define MODEL_MT          OLLAMA_MT("model")
#define ML(dg, sz)        LAYER(MODEL_MT, dg, sz)
#define V2(layers)        "{\"schemaVersion\":2,\"layers\":[" layers "]}"
#define LAYER(mt, dg, sz) "{\"mediaType\":" mt ",\"digest\":\"" dg "\",\"size\":" sz "}"

static int
parse(const char *json, cli_ollama_manifest *m)
{
    char why[256] = "";
    int r = cli_ollama_manifest_parse(json, strlen(json), m, why, sizeof(why));
    if (r < 0 && why[0] == '\0')
        fail_msg("no reason given for %s", json);
    return r;
}

static void
test_manifest_good(void **state)
{
    (void)state;
    cli_ollama_manifest m;
    /* clang-format off */
    const char *j = "{\"schemaVersion\":2,\"mediaType\":\"x\",\"config\":{},\"layers\":["
        LAYER(MODEL_MT, "sha256:" HEX_B, "1321082688") ","
        LAYER(OLLAMA_MT("template"), "sha256:" HEX_A, "1429") ","
        LAYER(OLLAMA_MT("license"), "sha256:" HEX_A, "7") ","
        LAYER("\"text/x\"", "sha256:" HEX_A, "0") "]}";
    /* clang-format on */
    assert_int_equal(parse(j, &m), 0);
    assert_int_equal(m.size, 1321082688);
    assert_string_equal(m.hex, HEX_B);
    assert_int_equal(m.sha256[0], 0x01);
    assert_int_equal(m.sha256[31], 0xef);
    assert_int_equal(m.n_other, 3);
    assert_string_equal(m.other[0], "template");
    assert_string_equal(m.other[1], "license");
    assert_string_equal(m.other[2], "other");
}

static void
test_manifest_bad(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int want;
    } cases[] = {
        /* clang-format off */
        { "", -EBADMSG },
        { "[]", -EBADMSG },
        { "{\"schemaVersion\":1,\"layers\":[" ML("sha256:" HEX_A, "1") "]}", -EBADMSG },
        { "{\"schemaVersion\":2}", -EBADMSG },
        { "{\"schemaVersion\":2,\"layers\":[]}", -EBADMSG }, /* no model layer */
        { V2(ML("sha256:" HEX_A, "1") "," ML("sha256:" HEX_B, "2")), -EBADMSG },
        { V2(ML("sha256:" HEX_A, "-1")), -EBADMSG },
        { V2(ML("sha256:" HEX_A, "1.5")), -EBADMSG },
        { V2(ML("sha256:../../../etc/passwd", "1")), -EBADMSG },
        { V2(ML("sha256:" HEX_A "0", "1")), -EBADMSG },
        { V2(ML("sha256:" UPPER_A, "1")), -EBADMSG },
        { V2(ML("sha512:" HEX_A, "1")), -EBADMSG },
        { "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":" MODEL_MT ",\"size\":1}]}", -EBADMSG },
        { "{\"schemaVersion\":2,\"layers\":[\"x\"]}", -EBADMSG },
        /* Two "layers" keys could be read two ways: refused. */
        { "{\"schemaVersion\":2,\"layers\":[],"
          "\"layers\":[" ML("sha256:" HEX_A, "1") "]}", -EBADMSG },
        { "{\"schemaVersion\":2,\"layers\":[" ML("sha256:" HEX_A, "1") "]", -EBADMSG },
        /* clang-format on */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_ollama_manifest m;
        int r = parse(cases[i].json, &m);
        if (r != cases[i].want)
            fail_msg("case %zu: %d, want %d: %s", i, r, cases[i].want, cases[i].json);
    }
}

static void
test_manifest_limits(void **state)
{
    (void)state;
    /* CLI_OLLAMA_LAYERS_MAX layers pass, one more does not. */
    size_t cap = 64 * 1024;
    char *j = malloc(cap);
    for (int n = CLI_OLLAMA_LAYERS_MAX; n <= CLI_OLLAMA_LAYERS_MAX + 1; n++) {
        size_t o = (size_t)snprintf(j, cap, "{\"schemaVersion\":2,\"layers\":[%s",
                                    LAYER(MODEL_MT, "sha256:" HEX_A, "1"));
        for (int i = 1; i < n; i++)
            o += (size_t)snprintf(
                j + o, cap - o, ",%s",
                LAYER("\"application/vnd.ollama.image.params\"", "sha256:" HEX_B, "2"));
        snprintf(j + o, cap - o, "]}");
        cli_ollama_manifest m;
        assert_int_equal(parse(j, &m), n == CLI_OLLAMA_LAYERS_MAX ? 0 : -EMSGSIZE);
    }
    free(j);
    /* Bytes: the limit, and one more (padding is JSON white space). */
    char *big = malloc(CLI_OLLAMA_MANIFEST_MAX + 2);
    const char *body =
        "{\"schemaVersion\":2,\"layers\":[" LAYER(MODEL_MT, "sha256:" HEX_A, "1") "]}";
    size_t bl = strlen(body);
    for (size_t len = CLI_OLLAMA_MANIFEST_MAX; len <= CLI_OLLAMA_MANIFEST_MAX + 1; len++) {
        memset(big, ' ', len);
        memcpy(big + len - bl, body, bl);
        cli_ollama_manifest m;
        char why[256];
        assert_int_equal(cli_ollama_manifest_parse(big, len, &m, why, sizeof(why)),
                         len == CLI_OLLAMA_MANIFEST_MAX ? 0 : -EMSGSIZE);
    }
    free(big);
}

static void
test_ollama_names(void **state)
{
    (void)state;
    static const struct {
        const char *text, *name; /* name NULL: refused */
    } cases[] = {
        { "llama3.2", "llama3.2:latest" },
        { "llama3.2:1b", "llama3.2:1b" },
        { "library/llama3.2:1b", "llama3.2:1b" },
        { "registry.ollama.ai/library/qwen2:0.5b", "qwen2:0.5b" },
        { "jmorgan/tiny", "jmorgan/tiny:latest" },
        { "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M", "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M" },
        { "localhost:5000/me/m:v1", "localhost:5000/me/m:v1" },
        { "", NULL },
        { ":latest", NULL },
        { "m:", NULL },
        { "../m", NULL },
        { "..", NULL },
        { "m:..", NULL },
        { ".hidden", NULL },
        { "a/b/c/d", NULL },
        { "a//b", NULL },
        { "m:a:b", NULL },
        { "ns:1/m", NULL }, /* a colon only in the registry */
        { "m\n", NULL },
        { "m x", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_ollama_ref ref;
        int r = cli_ollama_ref_parse(cases[i].text, &ref);
        if (!cases[i].name) {
            if (r != -EINVAL)
                fail_msg("case %zu '%s' accepted", i, cases[i].text);
            continue;
        }
        if (r != 0)
            fail_msg("case %zu '%s' refused", i, cases[i].text);
        char name[256];
        assert_true(cli_ollama_ref_name(&ref, name, sizeof(name)) > 0);
        assert_string_equal(name, cases[i].name);
    }
    char long_part[CLI_IMPORT_PART_MAX + 2];
    memset(long_part, 'a', sizeof(long_part) - 1);
    long_part[sizeof(long_part) - 1] = '\0';
    cli_ollama_ref ref;
    assert_int_equal(cli_ollama_ref_parse(long_part, &ref), -EINVAL);
    long_part[CLI_IMPORT_PART_MAX] = '\0';
    assert_int_equal(cli_ollama_ref_parse(long_part, &ref), 0);
    char small[8];
    assert_int_equal(cli_ollama_ref_name(&ref, small, sizeof(small)), -EMSGSIZE);
}

static void
test_hf_names(void **state)
{
    (void)state;
    char org[CLI_IMPORT_PART_MAX + 1], name[CLI_IMPORT_PART_MAX + 1];
    assert_int_equal(cli_hf_repo_parse("models--TheBloke--Llama-2-7B-GGUF", org, name), 0);
    assert_string_equal(org, "TheBloke");
    assert_string_equal(name, "Llama-2-7B-GGUF");
    assert_int_equal(cli_hf_repo_parse("models--gpt2", org, name), 0);
    assert_string_equal(org, "");
    assert_string_equal(name, "gpt2");
    static const char *const bad_dirs[] = {
        "datasets--a--b", "models--",      "models----b",    "models--a--",   "models--a--b--c",
        "models--..--b",  "models--a--..", "models--a b--c", "models--.x--y",
    };
    for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++)
        if (cli_hf_repo_parse(bad_dirs[i], org, name) != -EINVAL)
            fail_msg("'%s' accepted", bad_dirs[i]);
    assert_int_equal(cli_hf_repo_arg("Qwen/Qwen2.5-0.5B-Instruct-GGUF", org, name), 0);
    assert_string_equal(org, "Qwen");
    assert_int_equal(cli_hf_repo_arg("gpt2", org, name), 0);
    assert_string_equal(org, "");
    static const char *const bad_args[] = { "",     "/x",   "a/",     "a/b/c",
                                            "../x", "a/..", "a--b/c", "a/b--c" };
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++)
        if (cli_hf_repo_arg(bad_args[i], org, name) != -EINVAL)
            fail_msg("'%s' accepted", bad_args[i]);

    char commit[65];
    assert_int_equal(cli_hf_ref_parse("0123456789abcdef0123456789abcdef01234567", 40, commit), 0);
    assert_string_equal(commit, "0123456789abcdef0123456789abcdef01234567");
    assert_int_equal(cli_hf_ref_parse(HEX_B "\n", 65, commit), 0);
    assert_string_equal(commit, HEX_B);
    static const char *const bad_refs[] = { "",
                                            "\n",
                                            "0123",
                                            "../../etc/passwd0123456789abcdef0123",
                                            "0123456789ABCDEF0123456789abcdef01234567",
                                            "0123456789abcdef0123456789abcdef01234567\n\n" };
    for (size_t i = 0; i < sizeof(bad_refs) / sizeof(bad_refs[0]); i++)
        if (cli_hf_ref_parse(bad_refs[i], strlen(bad_refs[i]), commit) != -EBADMSG)
            fail_msg("ref '%s' accepted", bad_refs[i]);

    uint8_t sha[CLI_IMPORT_SHA256_LEN];
    assert_true(cli_hf_blob_sha256(HEX_B, sha));
    assert_int_equal(sha[1], 0x23);
    assert_false(cli_hf_blob_sha256("0123456789abcdef0123456789abcdef01234567", sha));
    assert_false(cli_hf_blob_sha256(HEX_B "0", sha));
}

static void
test_quant_labels(void **state)
{
    (void)state;
    static const struct {
        const char *file, *label; /* "" when none */
    } cases[] = {
        { "llama-2-7b.Q4_K_M.gguf", "Q4_K_M" },
        { "qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0" },
        { "Llama-3.2-1B-Instruct-IQ2_XXS.gguf", "IQ2_XXS" },
        { "model-f16.gguf", "F16" },
        { "model-BF16.gguf", "BF16" },
        { "sub/dir/phi-3-mini.F32.gguf", "F32" },
        { "m-TQ1_0.gguf", "TQ1_0" },
        { "Q4_K_M/model-00001-of-00002.gguf", "" }, /* the file name only */
        { "model.gguf", "" },
        { "q4.gguf", "Q4" },
        { "Q.gguf", "" },
        { "Q4__K.gguf", "" },
        { "Q4_.gguf", "" },
        { "Q4_K-m.gguf", "Q4_K" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[32] = "";
        size_t n = cli_gguf_quant_label(cases[i].file, label, sizeof(label));
        if (strcmp(label, cases[i].label) != 0 || n != strlen(cases[i].label))
            fail_msg("%s: '%s', want '%s'", cases[i].file, label, cases[i].label);
    }
    char tiny[4];
    assert_int_equal(cli_gguf_quant_label("x.Q4_K_M.gguf", tiny, sizeof(tiny)), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_good),   cmocka_unit_test(test_manifest_bad),
        cmocka_unit_test(test_manifest_limits), cmocka_unit_test(test_ollama_names),
        cmocka_unit_test(test_hf_names),        cmocka_unit_test(test_quant_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
