/* SPDX-License-Identifier: MIT */
/*
 * `nvx --stats`: one line on stderr after add, verify and export with the
 * wall time, the CPU time of the process, the hash path and the write mode,
 * so a slow disk can be told from a slow code path (tests/bench/bench-store.sh
 * reads it).
 */
#ifndef NVX_CLI_STATS_H
#define NVX_CLI_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

typedef struct cli_ctx cli_ctx;

typedef struct cli_stats {
    bool on;
    struct timespec t0;
    double cpu0; /* user + system seconds at the start */
} cli_stats;

/* Starts the clock when ctx asked for --stats. */
void cli_stats_begin(const cli_ctx *ctx, cli_stats *st);

/* Prints "nvx: stats: CMD ... bytes ... s ... CPU ... hash ... writes WRITES"
 * on stderr when started with --stats. writes may be NULL (no output). */
void cli_stats_end(const cli_stats *st, const char *cmd, uint64_t bytes, const char *writes);

#endif
