/* SPDX-License-Identifier: MIT */
/* mmap mode (POSIX). See model-file.h. */
#define _DEFAULT_SOURCE /* MAP_POPULATE */
#include "runtime/model-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct rt_model_file {
    void *map;
    size_t len;
    void *arena;
    rt_model *model;
};

int
rt_model_file_open(const char *path, const rt_model_opts *opts, rt_model_file **ret)
{
    if (!path || !ret)
        return -EINVAL;
    int r, fd = -1;
    size_t len = 0;
    void *map = MAP_FAILED, *arena = NULL;
    rt_model_file *f = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
        r = -EBADMSG;
        goto out;
    }
    len = (size_t)st.st_size;
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | RT_MAP_PREFAULT, fd, 0);
    if (map == MAP_FAILED) {
        r = -errno;
        goto out;
    }
    rt_arena_report rep;
    r = rt_model_plan(map, len, opts, &rep);
    if (r < 0)
        goto out;
    arena = aligned_alloc(RT_ARENA_ALIGN,
                          (rep.total + RT_ARENA_ALIGN - 1) / RT_ARENA_ALIGN * RT_ARENA_ALIGN);
    f = calloc(1, sizeof(*f));
    if (!arena || !f) {
        r = -ENOMEM;
        goto out;
    }
    r = rt_model_init(map, len, opts, arena, rep.total, &f->model, NULL);
    if (r < 0)
        goto out;
    f->map = map;
    f->len = len;
    f->arena = arena;
    *ret = f;
    f = NULL;
    arena = NULL;
    map = MAP_FAILED;
    r = 0;
out:
    free(f);
    free(arena);
    if (map != MAP_FAILED)
        munmap(map, len);
    if (fd >= 0)
        close(fd);
    return r;
}

rt_model *
rt_model_file_model(rt_model_file *f)
{
    return f->model;
}

const void *
rt_model_file_data(const rt_model_file *f, size_t *ret_len)
{
    *ret_len = f->len;
    return f->map;
}

void
rt_model_file_close(rt_model_file *f)
{
    if (!f)
        return;
    munmap(f->map, f->len);
    free(f->arena);
    free(f);
}
