/* SPDX-License-Identifier: MIT */
#ifndef NVX_CLI_PROGRESS_H
#define NVX_CLI_PROGRESS_H
/*
 * A one-line progress bar on stderr for long add, verify and export:
 *
 *   adding  [#############.............]  412.0 MiB / 1.0 GiB  388 MiB/s  ETA 0:02
 *
 * Drawn only when enabled (cli_ctx.progress: stderr is a terminal and -q was
 * not given), first after CLI_PROGRESS_DELAY seconds (so short jobs never
 * flicker; $NVX_PROGRESS_DELAY overrides it, like git's GIT_PROGRESS_DELAY,
 * and the tests set it to 0 to see the bar deterministically), then at most
 * 10 times a second, and erased by cli_progress_end() so that error lines
 * and results start on a clean line. Not thread-safe: feed
 * it from one thread (libcas calls its progress callbacks from the caller's
 * thread).
 */
#include <stdbool.h>
#include <stdint.h>

#define CLI_PROGRESS_DELAY     0.1    /* seconds before the first draw */
#define CLI_PROGRESS_DELAY_MAX 3600.0 /* largest $NVX_PROGRESS_DELAY accepted */

typedef struct cli_progress {
    bool enabled;
    bool drawn;
    const char *label;
    uint64_t total; /* 0: unknown (no bar, no ETA) */
    uint64_t done;
    double delay; /* seconds before the first draw */
    double t_start;
    double t_last;
} cli_progress;

/* Starts a bar; total may be 0 when unknown. label is borrowed (a literal).
 * Reads $NVX_PROGRESS_DELAY (seconds, 0..CLI_PROGRESS_DELAY_MAX; anything
 * else means the default). */
void cli_progress_begin(cli_progress *p, bool enabled, const char *label, uint64_t total);

/* Sets the bytes done so far (monotonic) and redraws when due. */
void cli_progress_set(cli_progress *p, uint64_t done);

/* Erases the line if anything was drawn. Safe to call twice. */
void cli_progress_end(cli_progress *p);

/* Adapter with the shape of a libcas progress callback: userdata is a
 * cli_progress *, done/total are byte counts. */
void cli_progress_cb(void *userdata, uint64_t done, uint64_t total);

/* Formats a byte count as "12.3 MiB" into buf (at least 16 bytes). */
const char *cli_fmt_bytes(uint64_t n, char buf[static 16]);

/* Monotonic seconds. */
double cli_now(void);

#endif
