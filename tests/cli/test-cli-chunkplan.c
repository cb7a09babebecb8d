/* SPDX-License-Identifier: MIT */
/* Tensor-aware chunk plans from the real models and from bad files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/chunkplan.h"
#include "testutil.h"

static int
plan_path(const char *path, cli_chunker_mode mode, cli_chunk_plan *p, char *why)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    int r = cli_chunk_plan_make(fd, (uint64_t)st.st_size, mode, p, why, 256);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 0); /* pread only */
    close(fd);
    return r;
}

static void
check_model(const char *name, const char *format, size_t min_tensors)
{
    char *path = tu_model_path(name);
    if (!path)
        skip();
    cli_chunk_plan p;
    char why[256];
    assert_int_equal(plan_path(path, CLI_CHUNKER_AUTO, &p, why), 0);
    assert_string_equal(p.format, format);
    assert_true(p.n_tensors >= min_tensors);
    assert_true(p.n_regions >= 2);
    assert_int_equal(p.regions[0].offset, 0);
    for (size_t i = 1; i < p.n_regions; i++)
        assert_true(p.regions[i].offset > p.regions[i - 1].offset);
    /* Every tensor starts a region, and tensors do not overlap. */
    size_t r = 1;
    for (size_t i = 0; i < p.n_tensors; i++) {
        while (r < p.n_regions && p.regions[r].offset < p.tensors[i].offset)
            r++;
        assert_true(r < p.n_regions);
        assert_int_equal(p.regions[r].offset, p.tensors[i].offset);
        assert_true(p.tensors[i].size > 0);
        assert_true(strlen(p.tensors[i].name) > 0);
        if (i > 0)
            assert_true(p.tensors[i].offset >= p.tensors[i - 1].offset + p.tensors[i - 1].size);
    }
    /* Asking for the format explicitly gives the same plan. */
    cli_chunk_plan q;
    cli_chunker_mode m = strcmp(format, "gguf") == 0 ? CLI_CHUNKER_GGUF : CLI_CHUNKER_LLAMA2C;
    assert_int_equal(plan_path(path, m, &q, why), 0);
    assert_int_equal(q.n_regions, p.n_regions);
    /* ... and the other format is refused. */
    cli_chunk_plan z;
    m = m == CLI_CHUNKER_GGUF ? CLI_CHUNKER_LLAMA2C : CLI_CHUNKER_GGUF;
    assert_int_equal(plan_path(path, m, &z, why), -EBADMSG);
    assert_non_null(strstr(why, "not a"));
    cli_chunk_plan_free(&p);
    cli_chunk_plan_free(&q);
    free(path);
}

static void
test_models(void **state)
{
    check_model("aidreams260K.bin", "llama2c", 30);
    check_model("stories260K.bin", "llama2c", 30);
    check_model("aidreams260K-f32.gguf", "gguf", 30);
    check_model("aidreams260K-Q8_0-ffndownF16.gguf", "gguf", 30);
    check_model("aidreams260K-Q4_0-ffndownF16.gguf", "gguf", 30);
}

static void
test_bad_files(void **state)
{
    char *src = tu_model_path("aidreams260K-f32.gguf");
    if (!src)
        skip();
    uint8_t *buf;
    size_t len;
    assert_int_equal(tu_read_file(src, &buf, &len), 0);
    char *dir = tu_tmpdir("cli-plan");
    char path[4096];
    snprintf(path, sizeof(path), "%s/f", dir);
    cli_chunk_plan p;
    char why[256];
    /* Truncated GGUF: in the metadata, in the tensor infos, in the data. */
    size_t cuts[] = { 3, 20, 200, 2000, len / 2, len - 1 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        assert_int_equal(tu_write_file(path, buf, cuts[i]), 0);
        int r = plan_path(path, CLI_CHUNKER_GGUF, &p, why);
        assert_int_equal(r, -EBADMSG);
        assert_true(strlen(why) > 0);
        r = plan_path(path, CLI_CHUNKER_AUTO, &p, why);
        if (cuts[i] >= 4) /* the magic is there: auto must not fall back silently */
            assert_int_equal(r, -EBADMSG);
        else
            cli_chunk_plan_free(&p);
    }
    /* Garbage: auto falls back to CDC, gguf and llama2c refuse it. */
    tu_fill_random(buf, 100000, 7);
    assert_int_equal(tu_write_file(path, buf, 100000), 0);
    assert_int_equal(plan_path(path, CLI_CHUNKER_AUTO, &p, why), 0);
    assert_string_equal(p.format, "raw");
    assert_int_equal(p.n_tensors, 0);
    cli_chunk_plan_free(&p);
    assert_int_equal(plan_path(path, CLI_CHUNKER_GGUF, &p, why), -EBADMSG);
    assert_int_equal(plan_path(path, CLI_CHUNKER_LLAMA2C, &p, why), -EBADMSG);
    /* Fixed mode: one fixed region from 0. */
    assert_int_equal(plan_path(path, CLI_CHUNKER_FIXED, &p, why), 0);
    assert_int_equal(p.n_regions, 1);
    assert_int_equal(p.regions[0].mode, CAS_CHUNK_MODE_FIXED);
    cli_chunk_plan_free(&p);
    /* Empty file. */
    assert_int_equal(tu_write_file(path, buf, 0), 0);
    assert_int_equal(plan_path(path, CLI_CHUNKER_AUTO, &p, why), 0);
    cli_chunk_plan_free(&p);
    assert_int_equal(plan_path(path, CLI_CHUNKER_GGUF, &p, why), -EBADMSG);
    free(buf);
    tu_rm_rf(dir);
    free(dir);
    free(src);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
