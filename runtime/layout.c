/* SPDX-License-Identifier: MIT */
#include "runtime/layout.h"

#include <errno.h>
#include <string.h>

rt_format
rt_layout_detect(const void *buf, size_t len, uint64_t file_size)
{
    if (rt_gguf_is_gguf(buf, len))
        return RT_FORMAT_GGUF;
    rt_llama2c m;
    if (len <= file_size && rt_llama2c_parse(buf, len, file_size, &m) == 0)
        return RT_FORMAT_LLAMA2C;
    return RT_FORMAT_UNKNOWN;
}

const char *
rt_format_name(rt_format f)
{
    switch (f) {
    case RT_FORMAT_GGUF:
        return "gguf";
    case RT_FORMAT_LLAMA2C:
        return "llama2c";
    default:
        return "unknown";
    }
}

int
rt_layout_parse(const void *buf, size_t len, uint64_t file_size, rt_layout *ret, uint64_t *ret_need)
{
    if ((!buf && len) || !ret || len > file_size)
        return -EINVAL;
    rt_layout l;
    memset(&l, 0, sizeof(l));
    l.file_size = file_size;
    if (len < 4 && file_size >= 4) {
        if (ret_need)
            *ret_need = file_size < RT_L2C_HEADER_SIZE ? 4 : RT_L2C_HEADER_SIZE;
        return -EAGAIN;
    }
    if (rt_gguf_is_gguf(buf, len)) {
        int r = rt_gguf_parse(buf, len, file_size, &l.u.gguf, ret_need);
        if (r < 0)
            return r;
        l.format = RT_FORMAT_GGUF;
        l.header_size = l.u.gguf.data_off;
        l.n_tensors = l.u.gguf.n_tensors;
    } else {
        int r = rt_llama2c_parse(buf, len, file_size, &l.u.l2c);
        if (r == -EAGAIN && ret_need)
            *ret_need = RT_L2C_HEADER_SIZE;
        if (r < 0)
            return r;
        l.format = RT_FORMAT_LLAMA2C;
        l.header_size = RT_L2C_HEADER_SIZE;
        l.n_tensors = l.u.l2c.n_tensors;
    }
    *ret = l;
    return 0;
}

int
rt_layout_next(const rt_layout *l, rt_layout_iter *it, rt_tensor_info *ret)
{
    if (l->format == RT_FORMAT_GGUF)
        return rt_gguf_tensor_next(&l->u.gguf, &it->g, ret);
    if (l->format != RT_FORMAT_LLAMA2C)
        return -EINVAL;
    if (it->index >= l->n_tensors)
        return 0;
    int r = rt_llama2c_tensor(&l->u.l2c, it->index, ret);
    if (r < 0)
        return r;
    it->index++;
    return 1;
}

int
rt_layout_find(const rt_layout *l, const char *name, rt_tensor_info *ret)
{
    rt_layout_iter it = RT_LAYOUT_ITER_INIT;
    rt_tensor_info t;
    int r;
    while ((r = rt_layout_next(l, &it, &t)) > 0) {
        if (strcmp(t.name, name) == 0) {
            *ret = t;
            return 0;
        }
    }
    return r < 0 ? r : -ENOENT;
}
