/* SPDX-License-Identifier: MIT */
#ifndef NVX_DAEMON_LOG_H
#define NVX_DAEMON_LOG_H
/*
 * nvxd's logging: one line per event on stderr (journald adds the time and
 * unit), prefixed with the level in the form systemd understands ("<3>" for
 * error, "<4>" warn, "<6>" info, "<7>" debug) when stderr is not a
 * terminal, and with a word ("error: ") when it is.
 *
 * The macros check the level before evaluating their arguments (redis
 * serverLog), so a debug line costs one comparison when debug is off.
 * Anything a remote peer can trigger goes through log_peer(), which is
 * rate-limited per call site (at most NVX_LOG_BURST lines per
 * NVX_LOG_BURST_MS) so a hostile peer cannot flood the journal.
 *
 * Thread safety: lines may be written from any thread (one fprintf each,
 * stdio locks the stream); nvx_log_set_level() belongs to startup.
 */
#include <stdbool.h>
#include <stdint.h>

enum nvx_log_level {
    NVX_LOG_ERROR = 0,
    NVX_LOG_WARN = 1,
    NVX_LOG_INFO = 2,
    NVX_LOG_DEBUG = 3,
    _NVX_LOG_LEVEL_MAX,
};

enum {
    NVX_LOG_BURST = 10,      /* lines per call site per window */
    NVX_LOG_BURST_MS = 5000, /* rate-limit window */
    NVX_LOG_LINE_MAX = 1024, /* longer lines are cut */
};

extern int nvx__log_level;

/* Sets the level (enum nvx_log_level). */
void nvx_log_set_level(int level);

/* Parses "error", "warn", "info", "debug". Returns the level or -EINVAL. */
int nvx_log_level_parse(const char *s);

/* Name of a level ("info"). */
const char *nvx_log_level_name(int level);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void
nvx__log(int level, const char *fmt, ...);

/* A per-call-site rate limiter. */
typedef struct nvx_ratelimit {
    uint64_t window_start_ms;
    unsigned n;
    unsigned suppressed;
} nvx_ratelimit;

/* True when another line may be written now; counts suppressed lines. */
bool nvx_ratelimit_ok(nvx_ratelimit *rl);

#define nvx_log(level, ...)                 \
    do {                                    \
        if ((level) <= nvx__log_level)      \
            nvx__log((level), __VA_ARGS__); \
    } while (0)

#define log_error(...) nvx_log(NVX_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  nvx_log(NVX_LOG_WARN, __VA_ARGS__)
#define log_info(...)  nvx_log(NVX_LOG_INFO, __VA_ARGS__)
#define log_debug(...) nvx_log(NVX_LOG_DEBUG, __VA_ARGS__)

/* Logs at error level with ": strerror(-r)" appended; evaluates to r. */
#define log_error_errno(r, ...) \
    ((NVX_LOG_ERROR <= nvx__log_level) ? nvx__log_errno(NVX_LOG_ERROR, (r), __VA_ARGS__) : (r))
#define log_warn_errno(r, ...) \
    ((NVX_LOG_WARN <= nvx__log_level) ? nvx__log_errno(NVX_LOG_WARN, (r), __VA_ARGS__) : (r))

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int
nvx__log_errno(int level, int r, const char *fmt, ...);

/* A line a remote peer can trigger: level-checked, then rate-limited. */
#define log_peer(level, ...)                                     \
    do {                                                         \
        static nvx_ratelimit rl_;                                \
        if ((level) <= nvx__log_level && nvx_ratelimit_ok(&rl_)) \
            nvx__log((level), __VA_ARGS__);                      \
    } while (0)

/* strerror() of a negative errno (thread-safe, static strings). */
const char *nvx_strerror(int r);

/* The first 8 bytes of a node or model id in hex (16 characters), for log
 * lines. Returns buf. */
const char *nvx_short_id(const uint8_t id[static 32], char buf[static 17]);

#endif
