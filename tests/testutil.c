/* SPDX-License-Identifier: MIT */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *
xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r)
        abort();
    return r;
}

static char *
join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *r = malloc(n);
    if (!r)
        abort();
    snprintf(r, n, "%s/%s", a, b);
    return r;
}

char *
tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/nvx-test-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(tmpl))
        abort();
    return xstrdup(tmpl);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        chmod(path, 0700), rmdir(path);
    else
        chmod(path, 0600), unlink(path);
    return 0;
}

void
tu_rm_rf(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
tu_model_path(const char *name)
{
    const char *dir = getenv("NVX_SHARED_MODELS");
    if (!dir || !*dir) {
        printf("skipping: NVX_SHARED_MODELS is not set (point it at shared/models)\n");
        return NULL;
    }
    char *p = join(dir, name);
    if (access(p, R_OK) != 0) {
        printf("skipping: %s is absent (the shared models folder is not beside this clone)\n", p);
        free(p);
        return NULL;
    }
    return p;
}

int
tu_read_file(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    size_t off = 0;
    while (off < len) {
        ssize_t n = read(fd, buf + off, len - off);
        if (n <= 0) {
            int r = n < 0 ? -errno : -EIO;
            free(buf);
            close(fd);
            return r;
        }
        off += (size_t)n;
    }
    close(fd);
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

int
tu_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            int r = -errno;
            close(fd);
            return r;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) < 0 ? -errno : 0;
}

char *
tu_build_path(const char *rel)
{
    const char *root = getenv("NVX_BUILD_ROOT");
    return join(root && *root ? root : ".", rel);
}

/* Appends what is readable on fd to *buf. Returns 0 at EOF, 1 if more may come. */
static int
drain(int fd, char **buf, size_t *len)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n <= 0)
        return n < 0 && errno == EINTR ? 1 : 0;
    char *nb = realloc(*buf, *len + (size_t)n + 1);
    if (!nb)
        abort();
    memcpy(nb + *len, tmp, (size_t)n);
    *len += (size_t)n;
    nb[*len] = 0;
    *buf = nb;
    return 1;
}

/* execv, or the wrapper (searched in PATH) before a program of this build. */
static void
exec_wrapped(char *const argv[])
{
    const char *w = getenv("NVX_TEST_WRAPPER"), *root = getenv("NVX_BUILD_ROOT");
    if (w && *w && root && *root && strncmp(argv[0], root, strlen(root)) == 0) {
        size_t n = 0;
        while (argv[n])
            n++;
        char **wargv = calloc(n + 2, sizeof(*wargv));
        if (!wargv)
            return;
        wargv[0] = (char *)w;
        memcpy(wargv + 1, argv, (n + 1) * sizeof(*wargv));
        execvp(w, wargv);
        return;
    }
    execv(argv[0], argv);
}

int
tu_run(char *const argv[], char **ret_out, char **ret_err)
{
    int po[2], pe[2];
    if (pipe(po) < 0)
        return -errno;
    if (pipe(pe) < 0) {
        close(po[0]);
        close(po[1]);
        return -errno;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        exec_wrapped(argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    char *out = calloc(1, 1), *err = calloc(1, 1);
    size_t olen = 0, elen = 0;
    int open_o = 1, open_e = 1;
    while (open_o || open_e) {
        struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (open_o && (p[0].revents & (POLLIN | POLLHUP)))
            open_o = drain(po[0], &out, &olen);
        if (open_e && (p[1].revents & (POLLIN | POLLHUP)))
            open_e = drain(pe[0], &err, &elen);
        if (!open_o)
            p[0].fd = -1;
        if (!open_e)
            p[1].fd = -1;
    }
    close(po[0]);
    close(pe[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (ret_out)
        *ret_out = out;
    else
        free(out);
    if (ret_err)
        *ret_err = err;
    else
        free(err);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

void
tu_fill_random(void *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ull;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (uint8_t)(x >> ((i & 7) * 8));
    }
}

char *
tu_find_program(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs = xstrdup(path && *path ? path : "/usr/bin:/bin");
    char *save = NULL, *found = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = join(d, name);
        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(dirs);
    return found;
}

bool
tu_emulated(void)
{
    const char *e = getenv("NVX_TEST_EMULATED");
    return e && *e && strcmp(e, "0") != 0;
}
