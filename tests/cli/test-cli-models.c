/* SPDX-License-Identifier: MIT */
/*
 * The real models in ../shared/models: added with auto chunking (format
 * detected, tensor map in the manifest), exported bit-identically, and
 * deduplicated against each other where they share tensors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clitest.h"
#include "libcas/manifest.h"
#include "testutil.h"

static const struct {
    const char *file, *format;
} models[] = {
    { "aidreams260K.bin", "\"format\":\"llama2c\"" },
    { "stories260K.bin", "\"format\":\"llama2c\"" },
    { "aidreams260K-f32.gguf", "\"format\":\"gguf\"" },
    { "aidreams260K-Q8_0-ffndownF16.gguf", "\"format\":\"gguf\"" },
    { "aidreams260K-Q4_0-ffndownF16.gguf", "\"format\":\"gguf\"" },
    { "tok512.bin", "\"format\":\"raw\"" },
};

/* Every tensor of a model file starts a chunk: read the manifest back and
 * check each tensor offset against the chunk list. */
static void
check_tensor_cuts(const char *store, const char *id, const char *mpath, const char *name)
{
    char *out, *err;
    ct_ok(store, &out, &err, "manifest", id, "-o", mpath, NULL);
    free(out);
    free(err);
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(mpath, &buf, &len), 0);
    cas_manifest *m;
    assert_int_equal(cas_manifest_decode(buf, len, &m), 0);
    size_t nt = cas_manifest_tensor_count(m);
    if (nt == 0)
        fail_msg("%s: no tensor map in the manifest", name);
    for (size_t i = 0; i < nt; i++) {
        cas_tensor_info t;
        size_t ci;
        cas_chunk_info c;
        assert_int_equal(cas_manifest_tensor(m, i, &t), 0);
        assert_int_equal(cas_manifest_chunk_at(m, t.offset, &ci), 0);
        assert_int_equal(cas_manifest_chunk(m, ci, &c), 0);
        if (c.offset != t.offset)
            fail_msg("%s: tensor %s at %llu is inside chunk %zu at %llu", name, t.name,
                     (unsigned long long)t.offset, ci, (unsigned long long)c.offset);
    }
    /* The header has chunks of its own: the first tensor starts a chunk
     * after at least one header chunk. */
    cas_tensor_info first;
    assert_int_equal(cas_manifest_tensor(m, 0, &first), 0);
    assert_true(first.offset > 0);
    cas_manifest_free(m);
    free(buf);
}

static void
test_models_roundtrip(void **state)
{
    char *probe = tu_model_path(models[0].file);
    if (!probe)
        skip();
    free(probe);
    char *dir = tu_tmpdir("cli-models");
    const char *store = ct_path(dir, "store");
    char store_s[4096];
    snprintf(store_s, sizeof(store_s), "%s", store);
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        char *path = tu_model_path(models[i].file);
        if (!path)
            continue;
        char *out, *err;
        int r = ct_run(store_s, &out, &err, "--json", "add", path, NULL);
        if (r != 0)
            fail_msg("add %s: %d %s", models[i].file, r, err);
        ct_assert_json(out);
        if (!strstr(out, models[i].format))
            fail_msg("%s: wanted %s in %s", models[i].file, models[i].format, out);
        const char *idp = strstr(out, "\"id\":\"");
        assert_non_null(idp);
        char id[65];
        memcpy(id, idp + 6, 64);
        id[64] = '\0';
        free(out);
        free(err);

        const char *copy = ct_path(dir, "copy");
        char copy_s[4096];
        snprintf(copy_s, sizeof(copy_s), "%s", copy);
        assert_int_equal(ct_run(store_s, &out, &err, "export", id, "-o", copy_s, NULL), 0);
        free(out);
        free(err);
        if (!ct_files_equal(path, copy_s))
            fail_msg("%s: export differs from the original", models[i].file);

        if (strcmp(models[i].format, "\"format\":\"raw\"") != 0)
            check_tensor_cuts(store_s, id, ct_path(dir, "m.nvxm"), models[i].file);

        /* The tensor map is in the manifest for the model formats. */
        assert_int_equal(ct_run(store_s, &out, &err, "info", id, "--json", NULL), 0);
        ct_assert_json(out);
        if (strcmp(models[i].format, "\"format\":\"raw\"") != 0)
            assert_non_null(strstr(out, "\"tensors\":[{\"name\":"));
        free(out);
        free(err);
        /* info --tensors lists as many tensors as info counts. */
        assert_int_equal(ct_run(store_s, &out, &err, "info", id, "--tensors", NULL), 0);
        const char *tl = strstr(out, "\ntensors    ");
        assert_non_null(tl);
        size_t listed = 0;
        for (const char *p = out; (p = strstr(p, "\ntensor ")) != NULL; p++)
            listed++;
        assert_int_equal(listed, strtoull(tl + strlen("\ntensors    "), NULL, 10));
        free(out);
        free(err);
        free(path);
    }
    char *out, *err;
    assert_int_equal(ct_run(store_s, &out, &err, "verify", "--all", NULL), 0);
    free(out);
    free(err);
    tu_rm_rf(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
