/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/layout.h"
#include "synth.h"
#include "testutil.h"

static void
test_gguf_layout(void **state)
{
    synth s;
    size_t len;
    uint8_t *f = synth_small(&s, &len);
    assert_int_equal(rt_layout_detect(f, len, len), RT_FORMAT_GGUF);
    rt_layout l;
    uint64_t need;
    assert_int_equal(rt_layout_parse(f, 2, len, &l, &need), -EAGAIN);
    size_t have = 2;
    while (rt_layout_parse(f, have, len, &l, &need) == -EAGAIN)
        have = (size_t)need;
    assert_int_equal(l.format, RT_FORMAT_GGUF);
    assert_int_equal(l.header_size, s.data_off);
    assert_int_equal(l.n_tensors, 2);
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info t;
    assert_int_equal(rt_layout_next(&l, &it, &t), 1);
    assert_int_equal(t.offset, s.data_abs[0]);
    assert_int_equal(rt_layout_next(&l, &it, &t), 1);
    assert_int_equal(t.offset, s.data_abs[1]);
    assert_int_equal(rt_layout_next(&l, &it, &t), 0);
    assert_int_equal(rt_layout_find(&l, "b", &t), 0);
    assert_string_equal(rt_format_name(l.format), "gguf");
    free(f);
}

static void
test_unknown(void **state)
{
    uint8_t junk[100] = { 1, 2, 3 };
    rt_layout l;
    assert_int_equal(rt_layout_detect(junk, sizeof(junk), sizeof(junk)), RT_FORMAT_UNKNOWN);
    assert_int_equal(rt_layout_parse(junk, sizeof(junk), sizeof(junk), &l, NULL), -EBADMSG);
    assert_int_equal(rt_layout_parse(junk, 0, 0, &l, NULL), -EBADMSG);
    assert_int_equal(rt_layout_parse(junk, 10, 5, &l, NULL), -EINVAL);
}

static void
test_real(void **state)
{
    const char *names[] = { "aidreams260K.bin", "aidreams260K-Q4_0-ffndownF16.gguf" };
    for (int i = 0; i < 2; i++) {
        char *path = tu_model_path(names[i]);
        if (!path)
            skip();
        uint8_t *f;
        size_t len;
        assert_int_equal(tu_read_file(path, &f, &len), 0);
        rt_layout l;
        assert_int_equal(rt_layout_parse(f, len, len, &l, NULL), 0);
        assert_int_equal(l.format, i == 0 ? RT_FORMAT_LLAMA2C : RT_FORMAT_GGUF);
        /* Tensors are in file order, inside the file, after the header. */
        rt_layout_iter it = RT_LAYOUT_ITER_INIT;
        rt_tensor_info t;
        uint64_t prev_end = l.header_size, n = 0;
        while (rt_layout_next(&l, &it, &t) > 0) {
            assert_true(t.offset >= prev_end);
            assert_true(t.offset + t.size <= len);
            prev_end = t.offset + t.size;
            n++;
        }
        assert_int_equal(n, l.n_tensors);
        if (i == 0)
            assert_int_equal(prev_end, len);
        free(f);
        free(path);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_layout),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
