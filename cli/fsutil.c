/* SPDX-License-Identifier: MIT */
#include "cli/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
cli_write_file_atomic(const char *path, const void *buf, size_t len)
{
    if (strcmp(path, "-") == 0) {
        fflush(stdout);
        return write_all(STDOUT_FILENO, buf, len);
    }
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n, "%s.nvx-XXXXXX", path);
    int fd = mkstemp(tmp);
    int r = 0;
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    r = write_all(fd, buf, len);
    if (r == 0 && fchmod(fd, 0644) < 0)
        r = -errno;
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
out:
    free(tmp);
    return r;
}

int
cli_mkdir_p(const char *path, bool last)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    int r = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        if (*s == '\0' && !last)
            break;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            r = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return r;
}
