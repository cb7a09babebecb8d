/* SPDX-License-Identifier: MIT */
/*
 * bench-ttft: time from starting `nvx run ID` to its first token on stdout,
 * for a model already in the store (target: <= 50 ms).
 *
 *   bench-ttft NVX MODEL_FILE [RUNS]
 *
 * Adds MODEL_FILE to a fresh temporary store, then starts
 * `nvx --store DIR run ID -t 0 -n 1` RUNS times (default 11) and measures,
 * from fork() to the first byte read from its stdout, the median, min and
 * max. The same with the file path instead of the id (no store lookup, no
 * verification) is the baseline, measured in the same invocation.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs argv; returns seconds to the first stdout byte (or -1), copies the
 * first line of stdout into out. */
static double
run(char *const argv[], char *out, size_t cap)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    double first = -1;
    size_t len = 0;
    char buf[4096];
    ssize_t k;
    while ((k = read(p[0], buf, sizeof(buf))) > 0) {
        if (first < 0)
            first = now() - t0;
        for (ssize_t i = 0; i < k && len + 1 < cap; i++)
            out[len++] = buf[i];
    }
    out[len] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return first;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
series(char *const argv[], int runs, double *ret_min, double *ret_max)
{
    double t[64];
    char out[256];
    for (int i = 0; i < runs; i++) {
        t[i] = run(argv, out, sizeof(out));
        if (t[i] < 0) {
            fprintf(stderr, "bench-ttft: %s %s failed\n", argv[0], argv[3]);
            exit(1);
        }
    }
    qsort(t, (size_t)runs, sizeof(double), cmp);
    *ret_min = t[0];
    *ret_max = t[runs - 1];
    return t[runs / 2];
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-ttft NVX MODEL_FILE [RUNS]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 11;
    if (runs < 5 || runs > 64)
        runs = 11;
    char dir[] = "/tmp/nvx-bench-ttft-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char id[256];
    char *add[] = { argv[1], "--store", dir, "-q", "add", argv[2], NULL };
    if (run(add, id, sizeof(id)) < 0) {
        fprintf(stderr, "bench-ttft: nvx add failed\n");
        return 1;
    }
    id[strcspn(id, "\n")] = '\0';
    char *by_id[] = { argv[1], "--store", dir, "run", id, "-t", "0", "-n", "1", NULL };
    char *by_file[] = { argv[1], "--store", dir, "run", argv[2], "-t", "0", "-n", "1", NULL };
    double mn, mx, bmn, bmx;
    double base = series(by_file, runs, &bmn, &bmx);
    double med = series(by_id, runs, &mn, &mx);
    printf("time to first token, %d runs each (median, min..max):\n", runs);
    printf("  nvx run FILE (baseline)  %7.2f ms  (%.2f..%.2f)\n", 1e3 * base, 1e3 * bmn, 1e3 * bmx);
    printf("  nvx run ID (store)       %7.2f ms  (%.2f..%.2f)  x%.2f of baseline; target <= 50 "
           "ms: %s\n",
           1e3 * med, 1e3 * mn, 1e3 * mx, med / base, med <= 0.050 ? "met" : "MISSED");
    char *rm[] = { "/bin/rm", "-rf", dir, NULL };
    char junk[8];
    run(rm, junk, sizeof(junk));
    return 0;
}
