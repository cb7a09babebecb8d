/* SPDX-License-Identifier: MIT */
#include "clitest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/escape.h"
#include "testutil.h"

enum {
    MAX_ARGS = 32,
};

const char *
ct_nvx(void)
{
    static char *path;
    if (!path)
        path = tu_build_path("cli/nvx");
    return path;
}

int
ct_runv(const char *store, int n, char *const *args, char **ret_out, char **ret_err)
{
    char *argv[MAX_ARGS + 4];
    int k = 0;
    argv[k++] = (char *)ct_nvx();
    if (store) {
        argv[k++] = "--store";
        argv[k++] = (char *)store;
    }
    for (int i = 0; i < n && i < MAX_ARGS; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    return tu_run(argv, ret_out, ret_err);
}

/* Collects the NULL-terminated variable arguments into args (at most
 * MAX_ARGS); returns how many. */
static int
collect_args(va_list ap, char *args[MAX_ARGS])
{
    int n = 0;
    for (char *a; n < MAX_ARGS && (a = va_arg(ap, char *)) != NULL;)
        args[n++] = a;
    return n;
}

int
ct_run(const char *store, char **ret_out, char **ret_err, ...)
{
    char *args[MAX_ARGS];
    va_list ap;
    va_start(ap, ret_err);
    int n = collect_args(ap, args);
    va_end(ap);
    return ct_runv(store, n, args, ret_out, ret_err);
}

void
ct_ok(const char *store, char **ret_out, char **ret_err, ...)
{
    char *args[MAX_ARGS];
    va_list ap;
    va_start(ap, ret_err);
    int n = collect_args(ap, args);
    va_end(ap);
    char *err = NULL;
    int r = ct_runv(store, n, args, ret_out, &err);
    if (r != 0)
        fail_msg("nvx %s: exit %d: %s", n ? args[0] : "", r, err ? err : "");
    if (ret_err)
        *ret_err = err;
    else
        free(err);
}

int
ct_fixture_setup(void **state)
{
    ct_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = tu_tmpdir("cli");
    snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
    *state = f;
    return 0;
}

int
ct_fixture_teardown(void **state)
{
    ct_fixture *f = *state;
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

void
ct_assert_one_error(const char *err, const char *needle)
{
    size_t len = strlen(err);
    const char *nl = strchr(err, '\n');
    if (strncmp(err, "nvx: ", 5) != 0 || !nl || nl != err + len - 1 ||
        (needle && !strstr(err, needle)))
        fail_msg("expected one error line with '%s', got: '%s'", needle ? needle : "", err);
}

const char *
ct_last_word(const char *out)
{
    static char word[256];
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start > 0 && out[start - 1] != ' ' && out[start - 1] != '\n')
        start--;
    size_t n = len - start < sizeof(word) - 1 ? len - start : sizeof(word) - 1;
    memcpy(word, out + start, n);
    word[n] = '\0';
    return word;
}

void
ct_write_random(const char *path, size_t n, uint64_t seed)
{
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    tu_fill_random(buf, n, seed);
    assert_int_equal(tu_write_file(path, buf, n), 0);
    free(buf);
}

int
ct_files_equal(const char *a, const char *b)
{
    uint8_t *x, *y;
    size_t lx, ly;
    if (tu_read_file(a, &x, &lx) < 0)
        return 0;
    if (tu_read_file(b, &y, &ly) < 0) {
        free(x);
        return 0;
    }
    int eq = lx == ly && memcmp(x, y, lx) == 0;
    free(x);
    free(y);
    return eq;
}

void
ct_flip_byte(const char *path, uint64_t offset)
{
    chmod(path, 0644);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)offset), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)offset), 1);
    close(fd);
}

const char *
ct_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ % 8];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

/* A minimal strict JSON validator (recursive descent, depth-limited). */
static const char *json_value(const char *p, int depth);

static const char *
json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *
json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 5;
            } else if (*p && strchr("\"\\/bfnrt", *p)) {
                p++;
            } else {
                return NULL;
            }
            continue;
        }
        uint32_t cp;
        size_t n = cli_utf8_next((const unsigned char *)p, strlen(p), &cp);
        if (n == 0)
            return NULL;
        p += n;
    }
    return p + 1;
}

static const char *
json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *
json_container(const char *p, int depth, char close, bool obj)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (obj) {
            p = json_string(json_ws(p));
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p, depth + 1);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *
json_value(const char *p, int depth)
{
    if (depth > 64)
        return NULL;
    p = json_ws(p);
    switch (*p) {
    case '{':
        return json_container(p, depth, '}', true);
    case '[':
        return json_container(p, depth, ']', false);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p);
    }
}

int
ct_json_valid(const char *s)
{
    const char *end = json_value(s, 0);
    return end && strcmp(end, "\n") == 0;
}

void
ct_assert_json(const char *s)
{
    if (!ct_json_valid(s))
        fail_msg("not one JSON document + newline: '%s'", s);
}
