/* SPDX-License-Identifier: MIT */
#include "daemon/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int nvx__log_level = NVX_LOG_INFO;

static const char *const level_names[_NVX_LOG_LEVEL_MAX] = { "error", "warn", "info", "debug" };
/* syslog priorities: err, warning, info, debug */
static const int level_prio[_NVX_LOG_LEVEL_MAX] = { 3, 4, 6, 7 };

void
nvx_log_set_level(int level)
{
    if (level >= 0 && level < _NVX_LOG_LEVEL_MAX)
        nvx__log_level = level;
}

int
nvx_log_level_parse(const char *s)
{
    for (int i = 0; i < _NVX_LOG_LEVEL_MAX; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *
nvx_log_level_name(int level)
{
    if (level < 0 || level >= _NVX_LOG_LEVEL_MAX)
        return "?";
    return level_names[level];
}

const char *
nvx_strerror(int r)
{
    /* strerror() may use a static buffer only for unknown values; glibc and
     * musl return static strings for every known errno. */
    return strerror(r < 0 ? -r : r);
}

void
nvx__log(int level, const char *fmt, ...)
{
    char line[NVX_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (level < 0 || level >= _NVX_LOG_LEVEL_MAX)
        level = NVX_LOG_ERROR;
    /* One fprintf per line keeps lines whole across threads. */
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "nvxd: %s: %s\n", level_names[level], line);
    else
        fprintf(stderr, "<%d>%s: %s\n", level_prio[level], level_names[level], line);
}

int
nvx__log_errno(int level, int r, const char *fmt, ...)
{
    char line[NVX_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    nvx__log(level, "%s: %s", line, nvx_strerror(r));
    return r;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
nvx_ratelimit_ok(nvx_ratelimit *rl)
{
    uint64_t t = now_ms();
    if (t - rl->window_start_ms >= NVX_LOG_BURST_MS) {
        if (rl->suppressed > 0)
            nvx__log(NVX_LOG_WARN, "%u similar lines suppressed", rl->suppressed);
        rl->window_start_ms = t;
        rl->n = 0;
        rl->suppressed = 0;
    }
    if (rl->n < NVX_LOG_BURST) {
        rl->n++;
        return true;
    }
    rl->suppressed++;
    return false;
}

const char *
nvx_short_id(const uint8_t id[static 32], char buf[static 17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        buf[2 * i] = hex[id[i] >> 4];
        buf[2 * i + 1] = hex[id[i] & 15];
    }
    buf[16] = '\0';
    return buf;
}
