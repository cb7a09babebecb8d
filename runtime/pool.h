/* SPDX-License-Identifier: MIT */
#ifndef NVX_RUNTIME_POOL_H
#define NVX_RUNTIME_POOL_H
/*
 * A fixed pool of worker threads for the engine's matrix products
 * (model.h: rt_parallel). n threads in all: n - 1 pthreads created once,
 * plus the thread that calls run, which does a share itself. Each run
 * splits into RT_POOL_PARTS parts per thread, which the threads take
 * first come, and returns when all parts are done (a barrier per
 * product); no thread is created or joined per token.
 *
 * POSIX threads: a microcontroller build leaves this file out, and the
 * engine runs everything in the caller.
 *
 * Thread safety: one run at a time (the states of the models it is given
 * to must not run concurrently).
 */
#include "runtime/model.h"

enum {
    RT_THREADS_AUTO = 0,  /* the machine's online cores */
    RT_THREADS_MAX = 256, /* more is a caller's mistake */
    RT_POOL_SPIN = 20000, /* polls before a waiting thread sleeps */
    RT_POOL_PARTS = 4     /* parts per thread in a run, taken first come */
};

typedef struct rt_pool rt_pool;

/* Online cores (sysconf(_SC_NPROCESSORS_ONLN)), at least 1, at most
 * RT_THREADS_MAX. */
unsigned rt_threads_online(void);

/* Starts a pool of n_threads threads in all (RT_THREADS_AUTO: one per
 * online core; 1: no worker, everything runs in the caller). Returns 0 and
 * *ret (free with rt_pool_free); -EINVAL (n_threads > RT_THREADS_MAX),
 * -ENOMEM, or pthread_create's error negated. */
int rt_pool_new(unsigned n_threads, rt_pool **ret);

/* Threads in the pool, the caller's included. */
unsigned rt_pool_threads(const rt_pool *p);

/* The pool as the engine takes it (rt_model_set_parallel); valid until
 * rt_pool_free. */
const rt_parallel *rt_pool_parallel(const rt_pool *p);

/* Stops and joins the workers, frees p; NULL is fine. No run may be in
 * progress. */
void rt_pool_free(rt_pool *p);

#endif
