/* SPDX-License-Identifier: MIT */
#ifndef NVX_TESTS_DAEMONUTIL_H
#define NVX_TESTS_DAEMONUTIL_H
/*
 * Real nvxd processes for the daemon tests: each with a store in a temp
 * dir, --listen 127.0.0.1:0 (ephemeral port), --no-discovery (so parallel
 * tests on this machine never find each other), --no-upnp (no SSDP or
 * NAT-PMP packet leaves the machine), debug logging into a file
 * the test can read, driven by the real nvx binary.
 *
 * Every daemon started is remembered until it is stopped or killed;
 * du_kill_all() (called by du_teardown() and at exit) SIGKILLs the ones
 * left, so a failing assertion — cmocka longjmps out of the test — never
 * leaves nvxd processes behind.
 *
 * Waits are polls with a bound (DU_START_MS, DU_WAIT_MS); none of them is a
 * timing assertion. Test-only code: it fails the running cmocka test on
 * errors and may abort on allocation failure.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    DU_START_MS = 10000, /* nvxd start-up: socket and "listening on" line */
    DU_STOP_MS = 10000,  /* SIGTERM to exit */
    DU_WAIT_MS = 20000,  /* peers connecting and other polls */
    DU_POLL_MS = 20,
    DU_DAEMONS_MAX = 16,
    DU_ARGS_MAX = 8,
};

typedef struct du_daemon {
    char dir[512];  /* the store */
    char log[600];  /* nvxd's stderr, appended to over restarts */
    char addr[128]; /* "127.0.0.1:PORT" of the current run */
    char id[65];    /* node id (hex) from the "node ..." log line */
    pid_t pid;      /* 0 when not running */
} du_daemon;

/* Finds the binaries (nvxd-test: nvxd with the test hooks; cli/nvx) under
 * $NVX_BUILD_ROOT and makes a temp root for stores and logs. Call from the
 * group setup. */
void du_setup(const char *tag);

/* Kills what is left, removes the temp root. Group teardown. */
void du_teardown(void);

/* The temp root ("/tmp/nvx-TAG-XXXX"). */
const char *du_root(void);

/* Paths of the nvx and nvxd-test binaries, valid until du_teardown(). */
const char *du_nvx_bin(void);
const char *du_nvxd_bin(void);

/* SIGKILLs and reaps every daemon still running. */
void du_kill_all(void);

/* Starts nvxd on store du_root()/name (the same dir and log again when d
 * was started before: a restart). env: NULL or a NULL-terminated list of
 * "NAME=VALUE" set in the child only. Returns once the control socket is
 * up and the "listening on" line of this run is logged; fails the test
 * (with the log) if nvxd exits or is not up within DU_START_MS. */
void du_start(du_daemon *d, const char *name, const char *const *env);

/* du_start() with extra nvxd arguments (NULL or a NULL-terminated list,
 * at most DU_ARGS_MAX), e.g. { "--serve", "all", NULL }. */
void du_start_args(du_daemon *d, const char *name, const char *const *env, const char *const *args);

/* SIGTERM and wait (bounded): nvxd must exit 0 after logging "stopped". */
void du_stop(du_daemon *d);

/* What main returns: r (cmocka_run_group_tests'), else 1 when a du_stop
 * failed, also in a group teardown (cmocka counts no test failed then). */
int du_exit_status(int r);

/* SIGKILL and reap. */
void du_kill(du_daemon *d);

/* SIGSTOP / SIGCONT a running daemon. */
void du_freeze(du_daemon *d, bool frozen);

/* Runs `nvx --store d->dir ARGS...` (NULL-terminated), output captured into
 * malloc'd strings (either may be NULL). Returns its exit status. */
int du_nvx(const du_daemon *d, char **ret_out, char **ret_err, ...);

/* Like du_nvx but fails the test unless it exits 0. */
void du_nvx_ok(const du_daemon *d, char **ret_out, ...);

/* The number after "KEY": in json (first occurrence), UINT64_MAX when absent. */
uint64_t du_json_u64(const char *json, const char *key);

/* Waits until `nvx peers --json` of d lists at least want established
 * sessions; fails the test after DU_WAIT_MS. */
void du_wait_peers(const du_daemon *d, int want);

/* The whole file as a malloc'd string ("" when unreadable). */
char *du_slurp(const char *path);

/* Prints the last bytes of d's log (for a failure message). */
void du_dump_log(const du_daemon *d);

/* Writes size random bytes (seed) to du_root()/name, adds the file to d
 * with `nvx add --pin` (nvxd serves pinned models by default), returns the
 * malloc'd hex id. */
char *du_add_model(const du_daemon *d, const char *name, size_t size, uint64_t seed);

/* `nvx verify ID` passes on d and `nvx export` gives exactly the bytes of
 * du_root()/name. */
void du_check_copy(const du_daemon *d, const char *id, const char *name);

/* A small runnable model (synthetic weights, byte vocabulary; the tool
 * tests/tools/nvx-mkmodel, which the test must depend on) at
 * du_root()/name. */
void du_mkmodel(const char *name);

void du_sleep_ms(unsigned ms);

/* Monotonic milliseconds. */
uint64_t du_now_ms(void);

#endif
