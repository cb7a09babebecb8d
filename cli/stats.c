/* SPDX-License-Identifier: MIT */
#include "cli/stats.h"

#include <stdio.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "libcas/hash.h"

static double
cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void
cli_stats_begin(const cli_ctx *ctx, cli_stats *st)
{
    *st = (cli_stats){ .on = ctx->stats };
    if (!st->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &st->t0);
    st->cpu0 = cpu_seconds();
}

void
cli_stats_end(const cli_stats *st, const char *cmd, uint64_t bytes, const char *writes)
{
    if (!st->on)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - st->t0.tv_sec) + (double)(t1.tv_nsec - st->t0.tv_nsec) / 1e9;
    double cpu = cpu_seconds() - st->cpu0;
    double gib = (double)bytes / (1024.0 * 1024.0 * 1024.0);
    fprintf(stderr,
            "nvx: stats: %s %llu bytes in %.3f s (%.0f MB/s), CPU %.3f s (%.2f s/GiB), "
            "hash %s, writes %s\n",
            cmd, (unsigned long long)bytes, wall, wall > 0 ? (double)bytes / wall / 1e6 : 0.0, cpu,
            gib > 0 ? cpu / gib : 0.0, cas_hash_many_path(), writes ? writes : "none");
}
