/* SPDX-License-Identifier: MIT */
/*
 * The runtime's file helpers: reading a tokenizer.bin from a path and
 * writing a GGUF file atomically. They need POSIX (open, read, fsync,
 * rename), so they live apart from the parsers and writers, which work on
 * memory buffers only; runtime/meson.build leaves this file out where
 * <unistd.h> is missing (a microcontroller build), and with it these two
 * functions. Their contracts are in tokenizer.h and gguf-write.h, beside
 * the buffer-based functions they wrap (model-file.c is the engine's
 * counterpart for mmap).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/gguf-write.h"
#include "runtime/tokenizer.h"

int
rt_tokenizer_load_llama2c_file(const char *path, uint32_t n_vocab, rt_tokenizer **ret)
{
    if (!path || !ret)
        return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t *buf = NULL;
    int r;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }
    if (st.st_size > RT_TOK_FILE_MAX) {
        r = -EMSGSIZE;
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            r = k < 0 ? -errno : -EBADMSG;
            goto out;
        }
        got += (size_t)k;
    }
    r = rt_tokenizer_load_llama2c(buf, len, n_vocab, ret);
out:
    free(buf);
    close(fd);
    return r;
}

static int
fd_sink(void *userdata, const void *buf, size_t len)
{
    int fd = *(int *)userdata;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int
rt_gguf_writer_write_file(const rt_gguf_writer *w, const char *path)
{
    if (!w || !path)
        return -EINVAL;
    size_t pn = strlen(path);
    char *tmp = malloc(pn + 5);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, pn);
    memcpy(tmp + pn, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int r = fd < 0 ? -errno : 0;
    if (r >= 0)
        r = rt_gguf_writer_write(w, fd_sink, &fd);
    if (r >= 0 && fsync(fd) < 0)
        r = -errno;
    if (fd >= 0 && close(fd) < 0 && r >= 0)
        r = -errno;
    if (r >= 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0 && fd >= 0)
        unlink(tmp);
    free(tmp);
    return r;
}
