/* SPDX-License-Identifier: MIT */
#include "cli/progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    BAR_WIDTH = 24,
};

#define REDRAW_INTERVAL 0.1 /* seconds between redraws */

double
cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
cli_fmt_bytes(uint64_t n, char buf[static 16])
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, 16, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, 16, "%.1f %s", v, units[u]);
    return buf;
}

/* $NVX_PROGRESS_DELAY, or the default when unset or not a number in range. */
static double
first_draw_delay(void)
{
    const char *env = getenv("NVX_PROGRESS_DELAY");
    if (!env || !*env)
        return CLI_PROGRESS_DELAY;
    char *end;
    double d = strtod(env, &end);
    if (*end != '\0' || !isfinite(d) || d < 0 || d > CLI_PROGRESS_DELAY_MAX)
        return CLI_PROGRESS_DELAY;
    return d;
}

void
cli_progress_begin(cli_progress *p, bool enabled, const char *label, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->enabled = enabled;
    p->delay = enabled ? first_draw_delay() : CLI_PROGRESS_DELAY;
    p->label = label;
    p->total = total;
    p->t_start = cli_now();
}

static void
draw(cli_progress *p, double now)
{
    char done_s[16], total_s[16], rate_s[16], bar[BAR_WIDTH + 1], eta[32] = "";
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    cli_fmt_bytes((uint64_t)rate, rate_s);
    cli_fmt_bytes(p->done, done_s);
    if (p->total) {
        uint64_t d = p->done > p->total ? p->total : p->done;
        int fill = (int)((double)d / (double)p->total * BAR_WIDTH);
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        if (rate > 0) {
            unsigned long s = (unsigned long)((double)(p->total - d) / rate);
            snprintf(eta, sizeof(eta), "  ETA %lu:%02lu", s / 60, s % 60);
        }
        fprintf(stderr, "\r%-8s [%s] %10s / %s  %s/s%s\x1b[K", p->label, bar, done_s,
                cli_fmt_bytes(p->total, total_s), rate_s, eta);
    } else {
        fprintf(stderr, "\r%-8s %10s  %s/s\x1b[K", p->label, done_s, rate_s);
    }
    fflush(stderr);
    p->drawn = true;
    p->t_last = now;
}

void
cli_progress_set(cli_progress *p, uint64_t done)
{
    p->done = done;
    if (!p->enabled)
        return;
    double now = cli_now();
    if (p->drawn && now - p->t_last < REDRAW_INTERVAL)
        return;
    if (!p->drawn && now - p->t_start < p->delay)
        return; /* short jobs finish without any flicker */
    draw(p, now);
}

void
cli_progress_end(cli_progress *p)
{
    if (p->enabled && p->drawn) {
        fputs("\r\x1b[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}

void
cli_progress_cb(void *userdata, uint64_t done, uint64_t total)
{
    cli_progress *p = userdata;
    if (total && !p->total)
        p->total = total;
    cli_progress_set(p, done);
}
