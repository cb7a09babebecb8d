/* SPDX-License-Identifier: MIT */
/*
 * One-line error reporting. The whole formatted message goes through
 * cli_escape(), so a file name or tensor name holding a newline or a terminal
 * escape cannot break the "one line on stderr" contract.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/escape.h"

enum {
    MSG_MAX = 1024, /* bytes of a formatted message before escaping */
};

__attribute__((format(printf, 2, 0))) static void
emit(const char *prefix, const char *fmt, va_list ap, const char *tail)
{
    char msg[MSG_MAX], esc[4 * MSG_MAX + 8];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cli_escape(msg, strlen(msg), esc, sizeof(esc));
    fflush(stdout); /* keep results and errors in order on a shared terminal */
    fprintf(stderr, "nvx: %s%s%s\n", prefix, esc, tail ? tail : "");
    fflush(stderr);
}

int
cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("", fmt, ap, NULL);
    va_end(ap);
    return code;
}

void
cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("warning: ", fmt, ap, NULL);
    va_end(ap);
}

int
cli_exit_code(int r)
{
    switch (r) {
    case 0:
        return CLI_EXIT_OK;
    case -ENOENT:
        return CLI_EXIT_NOTFOUND;
    case -EBADMSG:
    case -EPROTO:
        return CLI_EXIT_CORRUPT;
    case -EINVAL:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_FAIL;
    }
}

/* What to do about common errors, for callers that have no better hint:
 * every error line should say what to do. NULL when nothing general fits. */
static const char *
default_hint(int r)
{
    switch (r) {
    case -ENOENT:
    case -ENOTDIR:
        return "check the path";
    case -EACCES:
    case -EPERM:
        return "check the permissions";
    case -EISDIR:
        return "give a file name, not a directory";
    case -EROFS:
        return "use a writable location";
    case -ENOSPC:
    case -EDQUOT:
    case -EFBIG:
        return "free some space and try again";
    case -EIO:
        return "check the disk (dmesg)";
    case -ENOMEM:
        return "free some memory and try again";
    case -EBADMSG:
        return "run nvx verify --all";
    default:
        return NULL;
    }
}

int
cli_fail_errno(int r, const char *hint, const char *fmt, ...)
{
    char tail[512];
    if (!hint)
        hint = default_hint(r);
    const char *why = r == -EBADMSG ? "corrupt or malformed data" : strerror(r < 0 ? -r : r);
    snprintf(tail, sizeof(tail), ": %s%s%s", why, hint ? ": " : "", hint ? hint : "");
    va_list ap;
    va_start(ap, fmt);
    emit("", fmt, ap, tail);
    va_end(ap);
    return cli_exit_code(r);
}
